/* The DSA dmadev PMD on the model: every operation byte for byte, batches, ring wrap, a million copies, faults, PASIDs, shared WQs, stop, refusals. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <upmd/dmadev.h>
#include <upmd/dsa.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define DSA "0000:00:04.0"
#define WQ0 DSA "-wq0"
#define WQ1 DSA "-wq1"
#define SPEC "dsa@" DSA
#define SPEC_SMALL "dsa@" DSA ":wq_size=16"	/* 8 entries a WQ with two WQs */
#define AREA (2u << 20)				/* each of src and dst */
#define CANARY 0xee

static struct upmd_model *model;
static int16_t dev, sdev;
static const struct upmd_memzone *src_mz, *dst_mz;

#define INIT(...)                                                                        \
	upmd_eal_init((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)), \
		      (char *[]){ "test", __VA_ARGS__, NULL })

static int setup_dev(int16_t id, uint16_t nb_desc)
{
	struct upmd_dma_conf conf = { .size = sizeof(conf), .nb_vchans = 1 };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = nb_desc };
	int rc;

	rc = upmd_dma_configure(id, &conf);
	if (!rc)
		rc = upmd_dma_vchan_setup(id, 0, &vc);
	if (!rc)
		rc = upmd_dma_start(id);
	return rc;
}

/* EAL on the model with one DSA whose WQs are @wqs (UPMD_DSA_WQS); wq0 (and wq1 if any) started with @nb_desc. */
static int up(const char *spec, const char *wqs, uint16_t nb_desc)
{
	int rc, id;

	setenv("UPMD_DSA_WQS", wqs, 1);
	rc = INIT("-l", "0", "--no-huge", "-m", "128", "--model", (char *)spec, "-a", DSA, "--log-level",
		  "warning");
	if (rc < 0)
		printf("\n  upmd_eal_init: %d\n", rc);
	CU_ASSERT_TRUE(rc >= 0);
	if (rc < 0)
		return rc;
	model = upmd_kernel.ctx;
	id = upmd_dma_get_dev_id_by_name(WQ0);
	CU_ASSERT_TRUE(id >= 0);
	if (id < 0)
		return id;
	dev = (int16_t)id;
	id = upmd_dma_get_dev_id_by_name(WQ1);
	sdev = (int16_t)id;
	CU_ASSERT_EQUAL(upmd_memzone_reserve("t_src", AREA, UPMD_SOCKET_ID_ANY, 4096, &src_mz), 0);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("t_dst", AREA, UPMD_SOCKET_ID_ANY, 4096, &dst_mz), 0);
	if (!src_mz || !dst_mz)
		return -ENOMEM;
	if (!nb_desc)
		return 0;
	rc = setup_dev(dev, nb_desc);
	CU_ASSERT_EQUAL(rc, 0);
	if (rc == 0 && id >= 0) {
		rc = setup_dev(sdev, nb_desc);
		CU_ASSERT_EQUAL(rc, 0);
	}
	return rc;
}

static void down(void)
{
	if (src_mz)
		upmd_memzone_free(src_mz);
	if (dst_mz)
		upmd_memzone_free(dst_mz);
	src_mz = dst_mz = NULL;
	upmd_eal_cleanup();
	model = NULL;
	CU_ASSERT_EQUAL(upmd_dma_get_dev_id_by_name(WQ0), -ENODEV);
	unsetenv("UPMD_DSA_WQS");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll @id until @n operations completed (status each), or 10 s. @return how many. */
static unsigned reap_on(int16_t id, unsigned n, uint16_t *last, enum upmd_dma_status_code *st)
{
	uint64_t deadline = now_ms() + 10000;
	unsigned got = 0;

	while (got < n && now_ms() < deadline) {
		uint16_t k = upmd_dma_completed_status(id, 0, (uint16_t)(n - got > 4096 ? 4096 : n - got), last,
						       st + got);

		got += k;
		if (!k)
			usleep(5);
	}
	return got;
}

static enum upmd_dma_status_code one(int16_t id)
{
	enum upmd_dma_status_code st = UPMD_DMA_STATUS_ERROR_UNKNOWN;
	uint16_t last;

	CU_ASSERT_EQUAL(reap_on(id, 1, &last, &st), 1);
	return st;
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* CRC32C, reflected 0x82F63B78, from @crc with no inversion: dmadev's convention. */
static uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc;
}

static struct upmd_model_dsa_stats mstats(void)
{
	struct upmd_model_dsa_stats st;

	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(upmd_model_dsa_stats(model, DSA, &st), 0);
	return st;
}

#define S(mz) ((uint8_t *)(mz)->addr)

/* ---- tests --------------------------------------------------------------------------- */

static void test_info(void)
{
	struct upmd_dma_info info;
	struct upmd_model_dsa_stats ms;

	if (up(SPEC, "d,s", 0) < 0)
		goto out;
	CU_ASSERT_TRUE(sdev >= 0);
	CU_ASSERT_EQUAL(upmd_dma_get_dev_id_by_name(DSA "-wq2"), -ENODEV);
	CU_ASSERT_EQUAL_FATAL(upmd_dma_info_get(dev, &info), 0);
	CU_ASSERT_STRING_EQUAL(info.driver, "dma_dsa");
	CU_ASSERT_STRING_EQUAL(info.name, WQ0);
	CU_ASSERT_EQUAL(info.max_vchans, 1);
	CU_ASSERT_TRUE((info.capa & UPMD_DMA_CAPA_OPS_COPY) != 0);
	CU_ASSERT_TRUE((info.capa & UPMD_DMA_CAPA_OPS_FILL) != 0);
	CU_ASSERT_TRUE((info.capa & UPMD_DMA_CAPA_OPS_COMPARE) != 0);
	CU_ASSERT_TRUE((info.capa & UPMD_DMA_CAPA_OPS_CRC32C) != 0);
	CU_ASSERT_TRUE((info.capa & UPMD_DMA_CAPA_PASID) != 0);
	CU_ASSERT_EQUAL(info.pasid, 1);
	CU_ASSERT_EQUAL(info.max_length, 1u << 31);
	/* Probe validated the configuration, then left the WQs off until start. */
	ms = mstats();
	CU_ASSERT_EQUAL(ms.gensts, UPMD_DSA_GENSTS_STATE_ENABLED);
	CU_ASSERT_EQUAL(ms.wqs_enabled, 0);
	CU_ASSERT_EQUAL(setup_dev(dev, 64), 0);
	CU_ASSERT_EQUAL(mstats().wqs_enabled, 1u);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 64);
	CU_ASSERT_EQUAL(setup_dev(sdev, 64), 0);
	CU_ASSERT_EQUAL(mstats().wqs_enabled, 3u);
	CU_ASSERT_EQUAL(upmd_dma_stop(sdev), 0);
	CU_ASSERT_EQUAL(mstats().wqs_enabled, 1u);
out:
	down();
}

static void check_ops(int16_t id)
{
	static const uint32_t lens[] = { 1, 7, 64, 4095, 4096, 4097, 65536, 1u << 20 };
	static const uint64_t pats[] = { 0x0123456789abcdefULL, 0, 0xffffffffffffffffULL };
	static const uint32_t crclen[] = { 1, 9, 4096, 100000 };
	static const uint32_t seeds[] = { 0, 0xffffffffu, 0x12345678u };
	uint8_t *s = S(src_mz), *d = S(dst_mz);

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t n = lens[i];

		fill_random(s, n + 64, 10 + i);
		memset(d, CANARY, AREA);
		CU_ASSERT_TRUE(upmd_dma_copy(id, 0, src_mz->iova + 3, dst_mz->iova + 5, n, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
		CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_SUCCESSFUL);
		CU_ASSERT_EQUAL(memcmp(d + 5, s + 3, n), 0);
		CU_ASSERT_TRUE(all(d, 5, CANARY));
		CU_ASSERT_TRUE(all(d + 5 + n, 4096, CANARY));
	}
	for (unsigned i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
		for (unsigned j = 0; j < 5; j++) {
			uint32_t n = (uint32_t[]){ 1, 8, 13, 4096, 5003 }[j];
			bool ok = true;

			memset(d, CANARY, 16384);
			CU_ASSERT_TRUE(upmd_dma_fill(id, 0, pats[i], dst_mz->iova + 3, n, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
			CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_SUCCESSFUL);
			for (uint32_t k = 0; k < n; k++)
				ok &= d[3 + k] == (uint8_t)(pats[i] >> (8 * (k % 8)));
			CU_ASSERT_TRUE(ok);
			CU_ASSERT_TRUE(all(d, 3, CANARY));
			CU_ASSERT_TRUE(all(d + 3 + n, 1024, CANARY));
		}
	/* Compare: equal, a difference in the last byte, in the first. */
	fill_random(s, 8192, 7);
	memcpy(d, s, 8192);
	CU_ASSERT_TRUE(upmd_dma_compare(id, 0, src_mz->iova, dst_mz->iova, 8192, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_SUCCESSFUL);
	d[8191] ^= 1;
	CU_ASSERT_TRUE(upmd_dma_compare(id, 0, src_mz->iova, dst_mz->iova, 8192, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_COMPARE_MISMATCH);
	d[8191] ^= 1;
	d[0] ^= 0x80;
	CU_ASSERT_TRUE(upmd_dma_compare(id, 0, src_mz->iova, dst_mz->iova, 8192, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	{
		/* completed() stops before the mismatch and says so; completed_status() reports it. */
		uint64_t deadline = now_ms() + 5000;
		bool err = false;
		uint16_t last;
		enum upmd_dma_status_code st;

		while (!err && now_ms() < deadline)
			CU_ASSERT_EQUAL(upmd_dma_completed(id, 0, 4, &last, &err), 0);
		CU_ASSERT_TRUE(err);
		CU_ASSERT_EQUAL(upmd_dma_completed_status(id, 0, 4, &last, &st), 1);
		CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_COMPARE_MISMATCH);
	}
	/* CRC32C against the reference, and the check value of "123456789". */
	for (unsigned i = 0; i < sizeof(crclen) / sizeof(crclen[0]); i++)
		for (unsigned j = 0; j < 3; j++) {
			uint32_t res = 0xdeadbeef;

			fill_random(s, crclen[i], 20 + i);
			CU_ASSERT_TRUE(upmd_dma_crc32c(id, 0, src_mz->iova, crclen[i], seeds[j], &res,
						       UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
			CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_SUCCESSFUL);
			CU_ASSERT_EQUAL(res, crc32c_ref(seeds[j], s, crclen[i]));
		}
	{
		uint32_t res = 0;

		memcpy(s, "123456789", 9);
		CU_ASSERT_TRUE(upmd_dma_crc32c(id, 0, src_mz->iova, 9, ~0u, &res, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
		CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_SUCCESSFUL);
		CU_ASSERT_EQUAL(~res, 0xe3069283u);
	}
	/* Bad arguments never reach the device. */
	CU_ASSERT_EQUAL(upmd_dma_copy(id, 0, src_mz->iova, dst_mz->iova, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_copy(id, 1, src_mz->iova, dst_mz->iova, 8, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_crc32c(id, 0, src_mz->iova, 8, 0, NULL, 0), -EINVAL);
}

static void test_ops_dedicated(void)
{
	struct upmd_dma_stats ds;

	if (up(SPEC, "d", 64) < 0)
		goto out;
	check_ops(dev);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &ds), 0);
	CU_ASSERT_EQUAL(ds.submitted, ds.completed);
	CU_ASSERT_EQUAL(ds.errors, 2);	/* the two mismatches */
out:
	down();
}

/* One op submitted alone is one descriptor; many are one batch; a run that wraps the ring is cut in two. */
static void test_batches(void)
{
	enum upmd_dma_status_code st[64];
	struct upmd_model_dsa_stats a, b;
	uint32_t crc = 0;
	uint16_t last;
	uint8_t *s, *d;

	if (up(SPEC, "d", 64) < 0)
		goto out;
	s = S(src_mz);
	d = S(dst_mz);
	fill_random(s, 65536, 3);
	memset(d, CANARY, 65536);
	a = mstats();
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 100, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_SUCCESSFUL);
	b = mstats();
	CU_ASSERT_EQUAL(b.batches, a.batches);
	CU_ASSERT_EQUAL(b.descs, a.descs + 1);
	/* 40 mixed operations, one submit: one batch of 40. */
	for (int i = 0; i < 40; i++) {
		int idx;

		if (i == 39)
			idx = upmd_dma_crc32c(dev, 0, src_mz->iova, 1000, 0, &crc, 0);
		else if (i % 3 == 1)
			idx = upmd_dma_fill(dev, 0, 0x0101010101010101ULL * (uint8_t)i, dst_mz->iova + 1024u * i, 1000, 0);
		else
			idx = upmd_dma_copy(dev, 0, src_mz->iova + 1024u * i, dst_mz->iova + 1024u * i, 1000, 0);
		CU_ASSERT_EQUAL(idx, 1 + i);
	}
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(reap_on(dev, 40, &last, st), 40);
	CU_ASSERT_EQUAL(last, 40);
	for (int i = 0; i < 40; i++)
		CU_ASSERT_EQUAL(st[i], UPMD_DMA_STATUS_SUCCESSFUL);
	a = mstats();
	CU_ASSERT_EQUAL(a.batches, b.batches + 1);
	CU_ASSERT_EQUAL(a.descs, b.descs + 41);
	for (int i = 0; i < 39; i++) {
		if (i % 3 == 1) {
			CU_ASSERT_TRUE(all(d + 1024 * i, 1000, (uint8_t)i));
		} else {
			CU_ASSERT_EQUAL(memcmp(d + 1024 * i, s + 1024 * i, 1000), 0);
		}
		CU_ASSERT_TRUE(all(d + 1024 * i + 1000, 24, CANARY));
	}
	CU_ASSERT_EQUAL(crc, crc32c_ref(0, s, 1000));
	/* Ring of 64, at 41: 40 more wrap after 23: two batches. */
	for (int i = 0; i < 40; i++)
		CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova + 512u * i, dst_mz->iova + 32768 + 512u * i, 512, 0),
				41 + i);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(reap_on(dev, 40, &last, st), 40);
	CU_ASSERT_EQUAL(last, 80);
	b = mstats();
	CU_ASSERT_EQUAL(b.batches, a.batches + 2);
	CU_ASSERT_EQUAL(b.descs, a.descs + 42);
	CU_ASSERT_EQUAL(memcmp(d + 32768, s, 40 * 512), 0);
	/* A fault inside a batch fails that one only (no fence). */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), 81);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, 0xdead0000ULL, 64, 0), 82);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova + 64, 64, 0), 83);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(reap_on(dev, 3, &last, st), 3);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL(st[1], UPMD_DMA_STATUS_PAGE_FAULT);
	CU_ASSERT_EQUAL(st[2], UPMD_DMA_STATUS_SUCCESSFUL);
	/* With a fence the rest of the batch is not attempted. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, 0xdead0000ULL, 64, 0), 84);
	memset(d + 61440, CANARY, 64);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova + 61440, 64, UPMD_DMA_OP_FLAG_FENCE), 85);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(reap_on(dev, 2, &last, st), 2);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_PAGE_FAULT);
	CU_ASSERT_EQUAL(st[1], UPMD_DMA_STATUS_NOT_ATTEMPTED);
	CU_ASSERT_TRUE(all(d + 61440, 64, CANARY));
	/* Ring full: 64 enqueued, the 65th refused, all 64 done after one submit. */
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 7, dst_mz->iova + 64u * i, 64, 0), (86 + i) & 0xffff);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(reap_on(dev, 64, &last, st), 64);
	CU_ASSERT_EQUAL(last, 149);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 64);
	CU_ASSERT_TRUE(d[0] == 7 && all(d + 1, 7, 0) && d[64 * 63 + 56] == 7 && all(d + 64 * 63 + 57, 7, 0));
	while (upmd_model_fault_pop(model, &(struct upmd_model_fault){ 0 }) == 0)
		;
out:
	down();
}

/* Ring indices wrap at 65536 and stay in order; data checked for every op. */
static void test_ring_wrap(void)
{
	enum upmd_dma_status_code st[32];
	uint32_t next = 0;
	bool ok = true, order = true;
	uint16_t last;
	uint8_t *s, *d;

	if (up(SPEC, "d", 256) < 0)
		goto out;
	s = S(src_mz);
	d = S(dst_mz);
	fill_random(s, 32 * 64 + 4096, 5);
	while (next < 70000) {
		memset(d, 0, 32 * 64);
		for (unsigned i = 0; i < 32; i++) {
			int idx = upmd_dma_copy(dev, 0, src_mz->iova + ((next + i) % 4096), dst_mz->iova + 64u * i, 64, 0);

			order &= idx == (int)((next + i) & 0xffff);
		}
		upmd_dma_submit(dev, 0);
		if (reap_on(dev, 32, &last, st) != 32) {
			ok = false;
			break;
		}
		order &= last == (uint16_t)(next + 31);
		for (unsigned i = 0; i < 32; i++)
			ok &= st[i] == UPMD_DMA_STATUS_SUCCESSFUL && !memcmp(d + 64 * i, s + ((next + i) % 4096), 64);
		next += 32;
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_TRUE(order);
	CU_ASSERT_TRUE(next >= 70000);
out:
	down();
}

/* A million copies, the ring kept full, each destination checked when reported: none lost, none twice. */
static void test_million(void)
{
	enum { N = 1000000, SLOTS = 1024, SZ = 64 };
	uint64_t *s, *d;
	uint32_t sent = 0, done = 0, bad = 0;
	uint64_t deadline;
	struct upmd_dma_stats ds;
	bool order = true;

	if (up(SPEC, "d", 1024) < 0)
		goto out;
	s = src_mz->addr;
	d = dst_mz->addr;
	deadline = now_ms() + 120000;
	while (done < N && now_ms() < deadline) {
		uint16_t cap = upmd_dma_burst_capacity(dev, 0), last, n;
		bool err = false;

		for (uint16_t i = 0; i < cap && i < 64 && sent < N; i++, sent++) {
			uint64_t *p = s + (size_t)(sent % SLOTS) * (SZ / 8);

			for (unsigned k = 0; k < SZ / 8; k++)
				p[k] = ((uint64_t)sent << 8) | k;
			if (upmd_dma_copy(dev, 0, src_mz->iova + (uint64_t)(sent % SLOTS) * SZ,
					  dst_mz->iova + (uint64_t)(sent % SLOTS) * SZ, SZ, 0) != (int)(sent & 0xffff))
				order = false;
		}
		upmd_dma_submit(dev, 0);
		n = upmd_dma_completed(dev, 0, 256, &last, &err);
		if (err)
			break;
		for (uint16_t i = 0; i < n; i++, done++) {
			const uint64_t *p = d + (size_t)(done % SLOTS) * (SZ / 8);

			for (unsigned k = 0; k < SZ / 8; k++)
				bad += p[k] != (((uint64_t)done << 8) | k);
		}
		if (n && last != (uint16_t)(done - 1))
			order = false;
	}
	CU_ASSERT_EQUAL(done, N);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_TRUE(order);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &ds), 0);
	CU_ASSERT_EQUAL(ds.completed, N);
	CU_ASSERT_EQUAL(ds.submitted, N);
	CU_ASSERT_EQUAL(ds.errors, 0);
	printf(" [%u copies, %" PRIu64 " batches] ", done, mstats().batches);
out:
	down();
}

/* An unmapped IOVA: PAGE_FAULT, nothing written, the fault in the IOMMU's log, the WQ still working. */
static void test_page_fault(void)
{
	struct upmd_model_fault f;
	uint64_t iova = 0;
	uint8_t *page;

	if (up(SPEC, "d", 64) < 0)
		goto out;
	page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(page, MAP_FAILED);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_map(page, 8192, UPMD_IOVA_MAP_RW, &iova), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_unmap(page, 8192), 0);
	memset(page, 0x22, 8192);
	fill_random(S(src_mz), 8192, 3);
	while (upmd_model_fault_pop(model, &f) == 0)
		;
	CU_ASSERT_TRUE(upmd_dma_copy(dev, 0, src_mz->iova, iova, 5000, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_PAGE_FAULT);
	CU_ASSERT_TRUE(all(page, 8192, 0x22));
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova);
	CU_ASSERT_TRUE(f.write);
	CU_ASSERT_STRING_EQUAL(f.bdf, DSA);
	/* From it: the destination untouched. */
	memset(S(dst_mz), CANARY, 8192);
	CU_ASSERT_TRUE(upmd_dma_copy(dev, 0, iova, dst_mz->iova, 3000, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_PAGE_FAULT);
	CU_ASSERT_TRUE(all(S(dst_mz), 8192, CANARY));
	CU_ASSERT_TRUE(upmd_dma_fill(dev, 0, 1, iova + 64, 64, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_PAGE_FAULT);
	CU_ASSERT_TRUE(all(page, 8192, 0x22));
	/* Still works. */
	CU_ASSERT_TRUE(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 4096, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL(memcmp(S(dst_mz), S(src_mz), 4096), 0);
	while (upmd_model_fault_pop(model, &f) == 0)
		;
	munmap(page, 8192);
out:
	down();
}

/*
 * A WQ whose WQCFG names a PASID nothing is attached at (the test rewrites
 * it while the WQ is off, as a misconfiguration would): nothing reaches
 * memory, not even the completion record, so the device reports in SWERR;
 * the PMD finds the record's address there and completes the op with
 * PASID_ERROR.
 */
static void test_pasid_not_attached(void)
{
	struct upmd_pci_device *p;
	struct upmd_model_dsa_stats a;
	volatile uint8_t *regs;
	uint64_t t0;
	uint32_t off, mode;

	if (up(SPEC, "d", 64) < 0)
		goto out;
	p = upmd_pci_device_find(DSA);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	regs = p->bar[0].addr;
	CU_ASSERT_PTR_NOT_NULL_FATAL(regs);
	t0 = upmd_mmio_read32(regs + UPMD_DSA_REG_TABLE_OFFSET);
	off = UPMD_DSA_TABLE_WQCFG(t0) + UPMD_DSA_WQCFG_DW_MODE;
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	mode = upmd_mmio_read32(regs + off);
	CU_ASSERT_TRUE((mode & UPMD_DSA_WQCFG_PASID_EN) != 0);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_GET_PASID(mode), 1);
	upmd_mmio_write32(regs + off, (mode & ~UPMD_DSA_WQCFG_PASID(0xfffff)) | UPMD_DSA_WQCFG_PASID(77));
	CU_ASSERT_EQUAL_FATAL(upmd_dma_start(dev), 0);
	a = mstats();
	memset(S(dst_mz), CANARY, 4096);
	fill_random(S(src_mz), 4096, 9);
	log_capture();
	CU_ASSERT_TRUE(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 4096, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_PASID_ERROR);
	ASSERT_LOG_HAS("SWERR: error 0x1a");
	ASSERT_LOG_HAS("PASID 77");
	log_release();
	CU_ASSERT_TRUE(all(S(dst_mz), 4096, CANARY));
	CU_ASSERT_EQUAL(mstats().swerrs, a.swerrs + 1);
	/* The PMD cleared SWERR (RW1C) for the next one (the model cannot clear it without traps). */
	if (!getenv("UPMD_MODEL_NO_TRAP"))
		CU_ASSERT_FALSE((upmd_mmio_read32(regs + UPMD_DSA_REG_SWERR) & UPMD_DSA_SWERR_VALID) != 0);
	while (upmd_model_fault_pop(model, &(struct upmd_model_fault){ 0 }) == 0)
		;
out:
	down();
}

/* A shared WQ through the emulated ENQCMD: every op, batches, and a full WQ: retry, -EBUSY, sent later. */
static void test_shared(void)
{
	enum upmd_dma_status_code st[16];
	struct upmd_model_dsa_stats a, b;
	struct upmd_dma_info info;
	uint16_t last;
	uint8_t *s, *d;
	int rc;

	if (up(SPEC_SMALL, "d,s", 64) < 0)
		goto out;
	s = S(src_mz);
	d = S(dst_mz);
	CU_ASSERT_EQUAL(upmd_dma_info_get(sdev, &info), 0);
	CU_ASSERT_TRUE((info.capa & UPMD_DMA_CAPA_PASID) != 0);
	a = mstats();
	check_ops(sdev);
	b = mstats();
	CU_ASSERT_TRUE(b.enqcmds > a.enqcmds + 20);
	/* A batch of 5 through one ENQCMD. */
	fill_random(s, 8192, 11);
	memset(d, CANARY, 8192);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_TRUE(upmd_dma_copy(sdev, 0, src_mz->iova + 1000u * i, dst_mz->iova + 1000u * i, 1000, 0) >= 0);
	CU_ASSERT_EQUAL(upmd_dma_submit(sdev, 0), 0);
	CU_ASSERT_EQUAL(reap_on(sdev, 5, &last, st), 5);
	CU_ASSERT_EQUAL(memcmp(d, s, 5000), 0);
	CU_ASSERT_TRUE(all(d + 5000, 1000, CANARY));
	a = mstats();
	CU_ASSERT_EQUAL(a.enqcmds, b.enqcmds + 1);
	CU_ASSERT_EQUAL(a.batches, b.batches + 1);

	/* Full: the engines hold; 8 entries (wq_size 16 over two WQs) take 8 single submits, the 9th is refused. */
	memset(d, CANARY, 8192);
	CU_ASSERT_EQUAL(upmd_model_dsa_hold(model, DSA, true), 0);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_TRUE(upmd_dma_copy(sdev, 0, src_mz->iova + 512u * i, dst_mz->iova + 512u * i, 512, 0) >= 0);
		CU_ASSERT_EQUAL(upmd_dma_submit(sdev, 0), 0);
	}
	CU_ASSERT_TRUE(upmd_dma_copy(sdev, 0, src_mz->iova + 4096, dst_mz->iova + 4096, 512, 0) >= 0);
	rc = upmd_dma_submit(sdev, 0);
	CU_ASSERT_EQUAL(rc, -EBUSY);
	b = mstats();
	CU_ASSERT_EQUAL(b.occupancy[1], 8);
	CU_ASSERT_TRUE(b.enqcmd_retries >= a.enqcmd_retries + 64);
	/* Nothing ran. */
	CU_ASSERT_TRUE(all(d, 8192, CANARY));
	/* Released: completed() sends the 9th itself; all 9 done and right. */
	CU_ASSERT_EQUAL(upmd_model_dsa_hold(model, DSA, false), 0);
	CU_ASSERT_EQUAL(reap_on(sdev, 9, &last, st), 9);
	for (int i = 0; i < 9; i++)
		CU_ASSERT_EQUAL(st[i], UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL(memcmp(d, s, 4096 + 512), 0);
	/* The dedicated WQ beside it kept working. */
	CU_ASSERT_TRUE(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova + 65536, 4096, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
	CU_ASSERT_EQUAL(one(dev), UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL(memcmp(d + 65536, s, 4096), 0);
out:
	down();
}

/* Stop with ops in the WQ and ops not submitted: all USER_ABORT, nothing written; restart works; close leaves no DMA. */
static void test_stop(void)
{
	enum upmd_dma_status_code st[16];
	struct upmd_model_dsa_stats a, b;
	uint16_t last;

	for (int shared = 0; shared < 2; shared++) {
		int16_t id;

		if (up(SPEC, shared ? "d,s" : "d", 64) < 0)
			goto out;
		id = shared ? sdev : dev;
		fill_random(S(src_mz), 65536, 13);
		memset(S(dst_mz), CANARY, 65536);
		CU_ASSERT_EQUAL(upmd_model_dsa_hold(model, DSA, true), 0);
		a = mstats();
		for (int i = 0; i < 6; i++)
			CU_ASSERT_TRUE(upmd_dma_copy(id, 0, src_mz->iova, dst_mz->iova + 4096u * i, 4096,
						     i < 4 ? UPMD_DMA_OP_FLAG_SUBMIT : 0) >= 0);
		CU_ASSERT_EQUAL(upmd_dma_stop(id), 0);
		CU_ASSERT_EQUAL(upmd_dma_copy(id, 0, src_mz->iova, dst_mz->iova, 8, 0), -ENODEV);
		CU_ASSERT_EQUAL(upmd_model_dsa_hold(model, DSA, false), 0);
		CU_ASSERT_EQUAL(reap_on(id, 6, &last, st), 6);
		CU_ASSERT_EQUAL(last, 5);
		for (int i = 0; i < 6; i++)
			CU_ASSERT_EQUAL(st[i], UPMD_DMA_STATUS_USER_ABORT);
		usleep(20000);
		CU_ASSERT_TRUE(all(S(dst_mz), 65536, CANARY));
		b = mstats();
		CU_ASSERT_EQUAL(b.aborted, a.aborted + 4);
		CU_ASSERT_EQUAL(b.descs, a.descs);
		CU_ASSERT_EQUAL(b.wqs_enabled & (1u << (shared ? 1 : 0)), 0);
		/* Start again: a fresh ring. */
		CU_ASSERT_EQUAL(upmd_dma_start(id), 0);
		CU_ASSERT_EQUAL(upmd_dma_copy(id, 0, src_mz->iova, dst_mz->iova, 4096, UPMD_DMA_OP_FLAG_SUBMIT), 0);
		CU_ASSERT_EQUAL(one(id), UPMD_DMA_STATUS_SUCCESSFUL);
		CU_ASSERT_EQUAL(memcmp(S(dst_mz), S(src_mz), 4096), 0);
		/* Close: the WQ off; the device stays enabled for the other WQs until the PCI remove. */
		CU_ASSERT_EQUAL(upmd_dma_close(id), 0);
		CU_ASSERT_EQUAL(mstats().wqs_enabled & (1u << (shared ? 1 : 0)), 0);
		down();
	}
	return;
out:
	down();
}

/* ---- refusals and the idxd path, each in a child (UPMD_CPU_MASK is read once a process) ---------- */

static int child_up(const char *spec, const char *wqs, const char *vdev)
{
	setenv("UPMD_DSA_WQS", wqs, 1);
	if (vdev)
		return INIT("-l", "0", "--no-huge", "-m", "128", "--model", (char *)spec, "--vdev", (char *)vdev,
			    "--log-level", "info");
	return INIT("-l", "0", "--no-huge", "-m", "128", "--model", (char *)spec, "-a", DSA, "--log-level",
		    "info");
}

/* Run @fn in a child; @return its exit code (0 passed). */
static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int rc = fn();

		fflush(stdout);
		_exit(rc);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 99;
	return WEXITSTATUS(status);
}

#define CHILD_CHECK(c)                                                              \
	do {                                                                        \
		if (!(c)) {                                                         \
			printf("\n  child: %s:%d: %s failed\n%s\n", __FILE__, __LINE__, #c, log_text()); \
			return 1;                                                   \
		}                                                                   \
	} while (0)

/* MOVDIR64B masked: on the model a dedicated WQ still works, through the model's store sequence. */
static int child_no_movdir64b(void)
{
	const struct upmd_memzone *a, *b;
	enum upmd_dma_status_code st;
	int16_t id;
	uint16_t last;

	setenv("UPMD_CPU_MASK", "4", 1);
	log_capture();
	CHILD_CHECK(!upmd_cpu_has(UPMD_CPU_MOVDIR64B));
	CHILD_CHECK(child_up(SPEC, "d", NULL) >= 0);
	CHILD_CHECK(strstr(log_text(), "the model's store sequence (no MOVDIR64B)"));
	id = (int16_t)upmd_dma_get_dev_id_by_name(WQ0);
	CHILD_CHECK(id >= 0 && setup_dev(id, 64) == 0);
	CHILD_CHECK(upmd_memzone_reserve("a", 65536, UPMD_SOCKET_ID_ANY, 4096, &a) == 0);
	CHILD_CHECK(upmd_memzone_reserve("b", 65536, UPMD_SOCKET_ID_ANY, 4096, &b) == 0);
	for (int round = 0; round < 200; round++) {	/* past the 64 portal slots, several times */
		fill_random(a->addr, 65536, (unsigned)round);
		CHILD_CHECK(upmd_dma_copy(id, 0, a->iova, b->iova, 65536, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
		CHILD_CHECK(reap_on(id, 1, &last, &st) == 1 && st == UPMD_DMA_STATUS_SUCCESSFUL);
		CHILD_CHECK(!memcmp(a->addr, b->addr, 65536));
	}
	upmd_memzone_free(a);
	upmd_memzone_free(b);
	upmd_eal_cleanup();
	log_release();
	return 0;
}

/* No PASID attach (a 6.12-like kernel): dedicated WQs without PASID; a shared WQ refused, saying why. */
static int child_nopasid_dedicated(void)
{
	struct upmd_dma_info info;
	int16_t id;

	log_capture();
	CHILD_CHECK(child_up(SPEC ";flags=nopasid", "d", NULL) >= 0);
	CHILD_CHECK(strstr(log_text(), "WQCFG PASID disabled"));
	id = (int16_t)upmd_dma_get_dev_id_by_name(WQ0);
	CHILD_CHECK(id >= 0 && upmd_dma_info_get(id, &info) == 0);
	CHILD_CHECK(!(info.capa & UPMD_DMA_CAPA_PASID) && info.pasid == UPMD_DMA_NO_PASID);
	upmd_eal_cleanup();
	log_release();
	return 0;
}

static int child_nopasid_shared(void)
{
	log_capture();
	CHILD_CHECK(child_up(SPEC ";flags=nopasid", "d,s", NULL) < 0);
	CHILD_CHECK(strstr(log_text(), "WQ 1: a shared WQ needs the device attached at a PASID"));
	CHILD_CHECK(upmd_dma_get_dev_id_by_name(WQ0) == -ENODEV);
	log_release();
	return 0;
}

static int child_bad_wqs(void)
{
	log_capture();
	CHILD_CHECK(child_up(SPEC, "d,x", NULL) < 0);
	CHILD_CHECK(strstr(log_text(), "UPMD_DSA_WQS='d,x'"));
	log_release();
	log_capture();
	CHILD_CHECK(child_up("dsa@" DSA ":wqs=2", "d,d,d", NULL) < 0);
	CHILD_CHECK(strstr(log_text(), "asks for 3 WQs; the device has 2"));
	log_release();
	return 0;
}

static int child_idxd_missing(void)
{
	log_capture();
	CHILD_CHECK(child_up("", "d", "dma_idxd0,wq=/dev/dsa/wq0.0") < 0);
	CHILD_CHECK(strstr(log_text(), "/dev/dsa/wq0.0 does not exist"));
	CHILD_CHECK(strstr(log_text(), "accel-config"));
	CHILD_CHECK(upmd_dma_get_dev_id_by_name("dma_idxd0") == -ENODEV);
	log_release();
	log_capture();
	CHILD_CHECK(child_up("", "d", "dma_idxd0") < 0);
	CHILD_CHECK(strstr(log_text(), "no WQ given"));
	log_release();
	return 0;
}

static void test_refusals(void)
{
	CU_ASSERT_EQUAL(in_child(child_no_movdir64b), 0);
	CU_ASSERT_EQUAL(in_child(child_nopasid_dedicated), 0);
	CU_ASSERT_EQUAL(in_child(child_nopasid_shared), 0);
	CU_ASSERT_EQUAL(in_child(child_bad_wqs), 0);
	CU_ASSERT_EQUAL(in_child(child_idxd_missing), 0);
}

static const struct upmd_test tests[] = {
	/* First: the children must not inherit CPU flags this process already read. */
	{ "refusals and the idxd path", test_refusals },
	{ "info, names, WQs enabled by start", test_info },
	{ "dedicated WQ: copy, fill, compare, CRC32C byte for byte", test_ops_dedicated },
	{ "batches: 1 alone, many as one, wrap cut in two, faults, fence", test_batches },
	{ "ring wrap past 65536", test_ring_wrap },
	{ "a million copies, none lost", test_million },
	{ "unmapped IOVA: PAGE_FAULT, memory untouched", test_page_fault },
	{ "PASID not attached: SWERR, PASID_ERROR", test_pasid_not_attached },
	{ "shared WQ: emulated ENQCMD, full queue retry", test_shared },
	{ "stop with ops outstanding, restart, close", test_stop },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "DSA dmadev on the model", NULL, NULL, tests })
