/* DSA PMD encoding against the spec's byte offsets, completion-status mapping, batch runs, and the shared-WQ retry loop with a fake ENQCMD. */
#include <stdint.h>
#include <string.h>

#include "drivers/dma/dsa/dsa_internal.h"
#include "upmd_test.h"

/* Little-endian field reads at the spec's byte offsets, independent of the C struct. */
static uint64_t le(const void *base, unsigned off, unsigned size)
{
	const uint8_t *p = (const uint8_t *)base + off;
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Every byte of [off, off+len) zero. */
static bool zero(const void *base, unsigned off, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		if (((const uint8_t *)base)[off + i])
			return false;
	return true;
}

static void test_memmove(void)
{
	dsa_desc_t d;

	memset(&d, 0xa5, sizeof(d));	/* what was there before must not survive */
	dsa_desc_memmove(&d, 0x1122334455667788ULL, 0x0102030405060708ULL, 0xdeadbe, 0, 0xabcdef00ULL);
	CU_ASSERT_TRUE(zero(&d, 0, 4));				/* PASID dword: ENQCMD/WQCFG supply it */
	CU_ASSERT_EQUAL(le(&d, 7, 1), 0x03);			/* opcode, bits 31:24 of dword 1 */
	CU_ASSERT_EQUAL(le(&d, 4, 3), 0x0c);			/* flags: RCR (bit 3) | CRAV (bit 2) */
	CU_ASSERT_EQUAL(le(&d, 8, 8), 0xabcdef00ULL);		/* completion record address */
	CU_ASSERT_EQUAL(le(&d, 16, 8), 0x1122334455667788ULL);	/* source */
	CU_ASSERT_EQUAL(le(&d, 24, 8), 0x0102030405060708ULL);	/* destination */
	CU_ASSERT_EQUAL(le(&d, 32, 4), 0xdeadbe);		/* transfer size */
	CU_ASSERT_TRUE(zero(&d, 36, 28));			/* interrupt handle, reserved, op-specific */
	/* A fence is bit 0 of the flags. */
	dsa_desc_memmove(&d, 1, 2, 3, UPMD_DSA_F_FENCE, 0x40);
	CU_ASSERT_EQUAL(le(&d, 4, 3), 0x0d);
}

static void test_fill_compare_crc(void)
{
	dsa_desc_t d;

	memset(&d, 0xff, sizeof(d));
	dsa_desc_fill(&d, 0x8877665544332211ULL, 0x5000, 100, 0, 0x60);
	CU_ASSERT_EQUAL(le(&d, 7, 1), 0x04);
	CU_ASSERT_EQUAL(le(&d, 16, 8), 0x8877665544332211ULL);	/* pattern in the source field */
	CU_ASSERT_EQUAL(le(&d, 24, 8), 0x5000);
	CU_ASSERT_EQUAL(le(&d, 32, 4), 100);
	CU_ASSERT_TRUE(zero(&d, 36, 28));

	dsa_desc_compare(&d, 0x1000, 0x2000, 4096, 0, 0x80);
	CU_ASSERT_EQUAL(le(&d, 7, 1), 0x05);
	CU_ASSERT_EQUAL(le(&d, 4, 3), 0x0c);			/* no CR flag: the result byte tells */
	CU_ASSERT_EQUAL(le(&d, 16, 8), 0x1000);
	CU_ASSERT_EQUAL(le(&d, 24, 8), 0x2000);			/* source 2 */
	CU_ASSERT_EQUAL(le(&d, 40, 1), 0);			/* expected result */

	dsa_desc_crcgen(&d, 0x3000, 9, 0xcafef00d, 0, 0xa0);
	CU_ASSERT_EQUAL(le(&d, 7, 1), 0x10);
	CU_ASSERT_EQUAL(le(&d, 16, 8), 0x3000);
	CU_ASSERT_TRUE(zero(&d, 24, 8));			/* CRC generation has no destination */
	CU_ASSERT_EQUAL(le(&d, 32, 4), 9);
	CU_ASSERT_EQUAL(le(&d, 40, 4), 0xcafef00d);		/* CRC seed */
	CU_ASSERT_TRUE(zero(&d, 44, 20));			/* seed address unused (no READ_SEED flag) */
}

static void test_batch_desc(void)
{
	dsa_desc_t d;

	dsa_desc_batch(&d, 0x7000040ULL, 37, 0, 0x9000020ULL);
	CU_ASSERT_EQUAL(le(&d, 7, 1), 0x01);
	CU_ASSERT_EQUAL(le(&d, 4, 3), 0x0c);
	CU_ASSERT_EQUAL(le(&d, 8, 8), 0x9000020ULL);		/* the batch's own record */
	CU_ASSERT_EQUAL(le(&d, 16, 8), 0x7000040ULL);		/* descriptor list */
	CU_ASSERT_EQUAL(le(&d, 32, 4), 37);			/* descriptor count */
	CU_ASSERT_TRUE(zero(&d, 24, 8));
	CU_ASSERT_TRUE(zero(&d, 36, 28));
}

/* A record as the device writes it: status byte 0, result byte 1, CRC at byte 16. */
static void test_completion_record(void)
{
	uint8_t raw[32] = { 0 };
	dsa_comp_t *c = (dsa_comp_t *)raw;

	raw[0] = UPMD_DSA_COMP_SUCCESS;
	raw[1] = 1;
	raw[4] = 0x10;
	raw[16] = 0x78, raw[17] = 0x56, raw[18] = 0x34, raw[19] = 0x12;
	raw[8] = 0xef, raw[9] = 0xbe;
	CU_ASSERT_EQUAL(c->status, 1);
	CU_ASSERT_EQUAL(c->result, 1);
	CU_ASSERT_EQUAL(c->bytes_completed, 0x10);
	CU_ASSERT_EQUAL(c->crc_val, 0x12345678u);
	CU_ASSERT_EQUAL(c->fault_addr, 0xbeefu);
	/* Compare: result 0 equal, 1 different; other ops ignore result. */
	CU_ASSERT_EQUAL(dsa_status_map(raw[0], 0, UPMD_DSA_OP_COMPARE), UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL(dsa_status_map(raw[0], 1, UPMD_DSA_OP_COMPARE), UPMD_DMA_STATUS_COMPARE_MISMATCH);
	CU_ASSERT_EQUAL(dsa_status_map(raw[0], 1, UPMD_DSA_OP_MEMMOVE), UPMD_DMA_STATUS_SUCCESSFUL);
	/* Bit 7 (a write fault) does not change the code. */
	CU_ASSERT_EQUAL(dsa_status_map(0x80 | UPMD_DSA_COMP_PAGE_FAULT_NOBOF, 0, UPMD_DSA_OP_MEMMOVE),
			UPMD_DMA_STATUS_PAGE_FAULT);
	static const struct { uint8_t dsa; enum upmd_dma_status_code dma; } map[] = {
		{ 0x03, UPMD_DMA_STATUS_PAGE_FAULT }, { 0x04, UPMD_DMA_STATUS_PAGE_FAULT },
		{ 0x05, UPMD_DMA_STATUS_NOT_ATTEMPTED }, { 0x06, UPMD_DMA_STATUS_PAGE_FAULT },
		{ 0x10, UPMD_DMA_STATUS_INVALID_OPCODE }, { 0x13, UPMD_DMA_STATUS_INVALID_LENGTH },
		{ 0x14, UPMD_DMA_STATUS_INVALID_LENGTH }, { 0x18, UPMD_DMA_STATUS_INVALID_ADDR },
		{ 0x1a, UPMD_DMA_STATUS_INVALID_ADDR }, { 0x1b, UPMD_DMA_STATUS_INVALID_ADDR },
		{ 0x1c, UPMD_DMA_STATUS_INVALID_ADDR }, { 0x1f, UPMD_DMA_STATUS_DESCRIPTOR_READ_ERROR },
		{ 0x20, UPMD_DMA_STATUS_BUS_ERROR }, { 0x22, UPMD_DMA_STATUS_PAGE_FAULT },
		{ 0x11, UPMD_DMA_STATUS_ERROR_UNKNOWN }, { 0x7e, UPMD_DMA_STATUS_ERROR_UNKNOWN },
	};
	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		enum upmd_dma_status_code got = dsa_status_map(map[i].dsa, 0, UPMD_DSA_OP_MEMMOVE);

		if (got != map[i].dma)
			printf("\n  DSA status 0x%02x -> %d, want %d\n", map[i].dsa, got, map[i].dma);
		CU_ASSERT_EQUAL(got, map[i].dma);
	}
	/* The PMD's own "aborted" marker is no DSA code. */
	CU_ASSERT_TRUE(DSA_ST_ABORTED > UPMD_DSA_COMP_TRANSLATION_FAIL && DSA_ST_ABORTED <= 0x7f);
}

/* Runs a submit cuts [from, to) into: no wrap, at most max_batch, lone descriptors when batches are off. */
static void test_runs(void)
{
	CU_ASSERT_EQUAL(dsa_run_len(0, 0, 63, 1024), 0);
	CU_ASSERT_EQUAL(dsa_run_len(0, 1, 63, 1024), 1);
	CU_ASSERT_EQUAL(dsa_run_len(1, 41, 63, 1024), 40);
	CU_ASSERT_EQUAL(dsa_run_len(41, 81, 63, 1024), 23);	/* to the ring's end */
	CU_ASSERT_EQUAL(dsa_run_len(64, 81, 63, 1024), 17);	/* the rest, from slot 0 */
	CU_ASSERT_EQUAL(dsa_run_len(0, 100, 255, 32), 32);
	CU_ASSERT_EQUAL(dsa_run_len(0, 100, 255, 0), 1);
	CU_ASSERT_EQUAL(dsa_run_len(65530, 6, 255, 1024), 6);	/* 16-bit counters wrap too */
	CU_ASSERT_EQUAL(dsa_run_len(0, 6, 255, 1024), 6);
	/* A whole ring of 4096 at slot 0: one batch of max. */
	CU_ASSERT_EQUAL(dsa_run_len(4096, 8192, 4095, 1024), 1024);
	/* Cutting any range covers it exactly, each piece valid. */
	for (unsigned from = 0; from < 300; from += 7)
		for (unsigned n = 0; n < 300; n += 13) {
			uint16_t f = (uint16_t)(65400 + from), t = (uint16_t)(f + n), done = 0;
			bool ok = true;

			while (f != t) {
				uint16_t k = dsa_run_len(f, t, 127, 16);

				ok &= k >= 1 && k <= 16 && (f & 127) + k <= 128;
				f = (uint16_t)(f + k);
				done = (uint16_t)(done + k);
			}
			CU_ASSERT_TRUE(ok && done == n);
		}
}

/* A fake ENQCMD: says "retry" @busy times, then accepts (or fails with @fail). */
struct fake {
	int busy;
	int fail;
	int calls;
	const void *last;
};

static int fake_enq(void *ctx, const void *desc)
{
	struct fake *f = ctx;

	f->calls++;
	f->last = desc;
	if (f->busy > 0) {
		f->busy--;
		return 1;
	}
	return f->fail;
}

static void test_retry(void)
{
	uint8_t desc[64];
	uint64_t retries = 0;
	struct fake f = { .busy = 0 };

	CU_ASSERT_EQUAL(dsa_enq_retry(fake_enq, &f, desc, 64, &retries), 0);
	CU_ASSERT_EQUAL(f.calls, 1);
	CU_ASSERT_EQUAL(retries, 0);
	CU_ASSERT_PTR_EQUAL(f.last, desc);
	/* Full for a while: retried until accepted. */
	f = (struct fake){ .busy = 10 };
	CU_ASSERT_EQUAL(dsa_enq_retry(fake_enq, &f, desc, 64, &retries), 0);
	CU_ASSERT_EQUAL(f.calls, 11);
	CU_ASSERT_EQUAL(retries, 10);
	/* Full for good: exactly @tries attempts, then -EBUSY. */
	f = (struct fake){ .busy = 1000 };
	retries = 0;
	CU_ASSERT_EQUAL(dsa_enq_retry(fake_enq, &f, desc, 64, &retries), -EBUSY);
	CU_ASSERT_EQUAL(f.calls, 64);
	CU_ASSERT_EQUAL(retries, 64);
	/* Accepted on the last attempt. */
	f = (struct fake){ .busy = 63 };
	CU_ASSERT_EQUAL(dsa_enq_retry(fake_enq, &f, desc, 64, NULL), 0);
	CU_ASSERT_EQUAL(f.calls, 64);
	/* An error is returned at once, not retried. */
	f = (struct fake){ .busy = 2, .fail = -EINVAL };
	CU_ASSERT_EQUAL(dsa_enq_retry(fake_enq, &f, desc, 64, NULL), -EINVAL);
	CU_ASSERT_EQUAL(f.calls, 3);
	f = (struct fake){ .busy = 5 };
	CU_ASSERT_EQUAL(dsa_enq_retry(fake_enq, &f, desc, 0, NULL), -EBUSY);
	CU_ASSERT_EQUAL(f.calls, 0);
}

static const struct upmd_test dsa_tests[] = {
	{ "memmove descriptor at the spec's offsets", test_memmove },
	{ "fill, compare, CRC generation descriptors", test_fill_compare_crc },
	{ "batch descriptor", test_batch_desc },
	{ "completion record fields and status mapping", test_completion_record },
	{ "batch runs: wrap, max batch, 16-bit counters", test_runs },
	{ "shared-WQ retry loop with a fake ENQCMD", test_retry },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "dsa encoding", NULL, NULL, dsa_tests })
