/* The edu dmadev PMD on the model: chunked copies and fills byte for byte, ring order and capacity, the DMA mask, faults, stop and close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <upmd/dmadev.h>
#include <upmd/edu.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define EDU "0000:00:04.0"
#define SPEC32 "edu@" EDU ":dma_mask=0xffffffff"
#define SPEC_DEFAULT "edu@" EDU
#define MASK32 0xffffffffULL
#define AREA (256 * 1024)	/* each of src and dst */
#define CANARY 0xee

static struct upmd_model *model;
static int16_t dev;
static const struct upmd_memzone *src_mz, *dst_mz;

static int init_args(int argc, char **argv)
{
	return upmd_eal_init(argc, argv);
}

#define INIT(...)                                                              \
	init_args((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)), \
		  (char *[]){ "test", __VA_ARGS__, NULL })

static int setup_dev(uint16_t nb_desc)
{
	struct upmd_dma_conf conf = { .size = sizeof(conf), .nb_vchans = 1 };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = nb_desc };
	int rc;

	rc = upmd_dma_configure(dev, &conf);
	if (!rc)
		rc = upmd_dma_vchan_setup(dev, 0, &vc);
	if (!rc)
		rc = upmd_dma_start(dev);
	return rc;
}

/* EAL on the model with one edu, the dmadev found by name, two zones. */
static int up(const char *spec, uint64_t mask, uint16_t nb_desc)
{
	int rc, id;

	rc = INIT("-l", "0", "--no-huge", "-m", "16", "--iova-mode", "alloc", "--model", (char *)spec, "-a", EDU,
		  "--log-level", "warning");
	if (rc != 14)
		printf("\n  upmd_eal_init: %d\n", rc);
	CU_ASSERT_EQUAL(rc, 14);
	if (rc < 0)
		return rc;
	/* --model installs the model as the kernel boundary: its context. */
	model = upmd_kernel.ctx;
	id = upmd_dma_get_dev_id_by_name(EDU);
	CU_ASSERT_TRUE(id >= 0);
	if (id < 0)
		return id;
	dev = (int16_t)id;
	if (mask)
		CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, mask), 0);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("t_src", AREA, UPMD_SOCKET_ID_ANY, 4096, &src_mz), 0);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("t_dst", AREA, UPMD_SOCKET_ID_ANY, 4096, &dst_mz), 0);
	if (!src_mz || !dst_mz)
		return -ENOMEM;
	rc = nb_desc ? setup_dev(nb_desc) : 0;
	CU_ASSERT_EQUAL(rc, 0);
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
	/* The PCI remove took the dmadev with it. */
	CU_ASSERT_EQUAL(upmd_dma_get_dev_id_by_name(EDU), -ENODEV);
}

static uint64_t dma_bytes(void)
{
	struct upmd_model_stats st;

	upmd_model_get_stats(model, &st);
	return st.dma_bytes;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll until @n operations completed (status each), or 10 s. @return how many. */
static unsigned reap(unsigned n, uint16_t *last, enum upmd_dma_status_code *st)
{
	uint64_t deadline = now_ms() + 10000;
	unsigned got = 0;

	while (got < n && now_ms() < deadline) {
		uint16_t k = upmd_dma_completed_status(dev, 0, (uint16_t)(n - got), last, st + got);

		got += k;
		if (!k)
			usleep(10);
	}
	return got;
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

/* ---- tests ---- */

static void test_info(void)
{
	struct upmd_dma_info info;
	uint64_t m;

	if (up(SPEC32, 0, 0) < 0)
		goto out;
	CU_ASSERT_EQUAL(upmd_dma_info_get(dev, &info), 0);
	CU_ASSERT_STRING_EQUAL(info.driver, "dma_edu");
	CU_ASSERT_STRING_EQUAL(info.name, EDU);
	CU_ASSERT_EQUAL(info.capa, UPMD_DMA_CAPA_MEM_TO_MEM | UPMD_DMA_CAPA_OPS_COPY | UPMD_DMA_CAPA_OPS_FILL);
	CU_ASSERT_EQUAL(info.max_vchans, 1);
	CU_ASSERT_EQUAL(info.max_length, UPMD_EDU_DMADEV_MAX_LEN);
	CU_ASSERT_EQUAL(info.max_length, 1u << 20);
	/* Nothing said about the mask: QEMU's default, 28 bits. */
	CU_ASSERT_EQUAL(upmd_edu_dma_get_mask(EDU, &m), 0);
	CU_ASSERT_EQUAL(m, 0xfffffff);
	/* Not started: the core's stubs. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENODEV);
	CU_ASSERT_EQUAL(setup_dev(32), 0);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 32);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENOTSUP);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, (1u << 20) + 1, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 1, src_mz->iova, dst_mz->iova, 64, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 32);
out:
	down();
}

/* Copies of 1 B .. 64 KiB at offsets that straddle chunks and pages, byte for byte. */
static void test_copies(void)
{
	static const uint32_t lens[] = { 1, 7, 64, 4031, 4032, 4033, 4096, 8064, 8065, 12345, 32768,
					 65535, 65536 };
	static const uint32_t offs[][2] = { { 0, 0 }, { 1, 0 }, { 0, 13 }, { 4095, 4097 }, { 8000, 333 } };
	struct upmd_dma_stats ds;
	unsigned n = 0;

	if (up(SPEC32, MASK32, 64) < 0)
		goto out;
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (unsigned j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
			uint32_t len = lens[i], so = offs[j][0], dof = offs[j][1];
			uint8_t *s = src_mz->addr, *d = dst_mz->addr;
			enum upmd_dma_status_code st = UPMD_DMA_STATUS_ERROR_UNKNOWN;
			uint64_t before = dma_bytes();
			uint16_t last = 0;
			int idx;

			fill_random(s, AREA, i * 31 + j);
			memset(d, CANARY, AREA);
			idx = upmd_dma_copy(dev, 0, src_mz->iova + so, dst_mz->iova + dof, len, UPMD_DMA_OP_FLAG_SUBMIT);
			CU_ASSERT_EQUAL(idx, (int)n);
			CU_ASSERT_EQUAL_FATAL(reap(1, &last, &st), 1);
			CU_ASSERT_EQUAL(last, (uint16_t)n);
			CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
			if (memcmp(d + dof, s + so, len) || !all(d, dof, CANARY) ||
			    !all(d + dof + len, AREA - dof - len, CANARY)) {
				printf("\n  copy of %u bytes, src +%u, dst +%u: wrong bytes\n", len, so, dof);
				CU_FAIL("copy");
			}
			/* Through the device: RAM -> buffer -> RAM. */
			CU_ASSERT_EQUAL(dma_bytes() - before, 2ull * len);
			n++;
		}
	}
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &ds), 0);
	CU_ASSERT_EQUAL(ds.submitted, n);
	CU_ASSERT_EQUAL(ds.completed, n);
	CU_ASSERT_EQUAL(ds.errors, 0);

	/* The longest operation, 1 MiB, chunked 261 times, within one zone. */
	{
		const struct upmd_memzone *a, *b;
		enum upmd_dma_status_code st;
		uint16_t last;

		CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("t_big_a", 1 << 20, UPMD_SOCKET_ID_ANY, 4096, &a), 0);
		CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("t_big_b", 1 << 20, UPMD_SOCKET_ID_ANY, 4096, &b), 0);
		fill_random(a->addr, 1 << 20, 77);
		CU_ASSERT_TRUE(upmd_dma_copy(dev, 0, a->iova, b->iova, 1 << 20, UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
		CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
		CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
		CU_ASSERT_EQUAL(memcmp(a->addr, b->addr, 1 << 20), 0);
		upmd_memzone_free(b);
		upmd_memzone_free(a);
	}
out:
	down();
}

/* Fills: the 8-byte pattern, little-endian, repeated from the destination's first byte. */
static void test_fills(void)
{
	static const uint32_t lens[] = { 1, 5, 8, 4031, 4032, 4033, 10000, 65536 };
	const uint64_t pat = 0x0807060504030201ULL;

	if (up(SPEC32, MASK32, 16) < 0)
		goto out;
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *d = dst_mz->addr;
		enum upmd_dma_status_code st;
		uint32_t off = 3 + i;
		uint16_t last;
		bool ok = true;

		memset(d, CANARY, AREA);
		CU_ASSERT_TRUE(upmd_dma_fill(dev, 0, pat, dst_mz->iova + off, lens[i], UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
		CU_ASSERT_EQUAL_FATAL(reap(1, &last, &st), 1);
		CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
		for (uint32_t k = 0; k < lens[i]; k++)
			ok &= d[off + k] == (uint8_t)(k % 8 + 1);
		ok &= all(d, off, CANARY) && all(d + off + lens[i], AREA - off - lens[i], CANARY);
		if (!ok)
			printf("\n  fill of %u bytes: wrong bytes\n", lens[i]);
		CU_ASSERT_TRUE(ok);
	}
out:
	down();
}

/* Ring indices count up across the ring's wrap; completions come in order, in pieces. */
static void test_ring_order(void)
{
	uint8_t *s, *d;
	uint16_t expect = 0;

	if (up(SPEC32, MASK32, 16) < 0)
		goto out;
	s = src_mz->addr;
	d = dst_mz->addr;
	fill_random(s, AREA, 5);
	memset(d, 0, AREA);
	for (unsigned round = 0; round < 5; round++) {
		uint16_t first = expect, last = 0;
		unsigned got = 0;
		uint64_t deadline = now_ms() + 10000;

		/* 11 per round: slots wrap around the 16-entry ring. */
		for (unsigned k = 0; k < 11; k++) {
			unsigned op = round * 11 + k;
			int idx = upmd_dma_copy(dev, 0, src_mz->iova + op * 1000, dst_mz->iova + op * 1000, 1000, 0);

			CU_ASSERT_EQUAL(idx, (int)(uint16_t)(first + k));
		}
		CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 5);
		CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
		while (got < 11 && now_ms() < deadline) {
			bool err = true;
			uint16_t k = upmd_dma_completed(dev, 0, 3, &last, &err);

			CU_ASSERT_FALSE(err);
			CU_ASSERT_TRUE(k <= 3);
			if (k) {
				expect = (uint16_t)(expect + k);
				CU_ASSERT_EQUAL(last, (uint16_t)(expect - 1));
			}
			got += k;
		}
		CU_ASSERT_EQUAL(got, 11);
		/* Nothing more: last stays at the last one reported. */
		CU_ASSERT_EQUAL(upmd_dma_completed(dev, 0, 8, &last, NULL), 0);
		CU_ASSERT_EQUAL(last, (uint16_t)(expect - 1));
	}
	CU_ASSERT_EQUAL(memcmp(s, d, 55 * 1000), 0);
	CU_ASSERT_TRUE(all(d + 55 * 1000, 1000, 0));
out:
	down();
}

/* A ring holds nb_desc operations until they are reported, done or not. */
static void test_ring_full(void)
{
	enum upmd_dma_status_code st[16];
	uint16_t last;

	if (up(SPEC32, MASK32, 16) < 0)
		goto out;
	for (int k = 0; k < 16; k++)
		CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova + k * 64, dst_mz->iova + k * 64, 64, 0), k);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 0, dst_mz->iova, 64, 0), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	/* Finished is not reported: still full. */
	usleep(100000);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENOSPC);
	CU_ASSERT_EQUAL(reap(10, &last, st), 10);
	CU_ASSERT_EQUAL(last, 9);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 10);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, UPMD_DMA_OP_FLAG_SUBMIT), 16);
	CU_ASSERT_EQUAL(reap(7, &last, st), 7);
	CU_ASSERT_EQUAL(last, 16);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 16);
out:
	down();
}

/* IOVAs beyond the mask never reach the device: refused at enqueue, logged with the IOVA and the mask. */
static void test_mask32(void)
{
	struct upmd_model_fault f;
	enum upmd_dma_status_code st;
	uint64_t before, m;
	uint16_t last;
	uint8_t *d;

	if (up(SPEC32, 0, 0) < 0)
		goto out;
	/* Bad masks, unknown devices. */
	log_capture();
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, 0xff), -EINVAL);
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, 0xffff0fff), -EINVAL);
	ASSERT_LOG_HAS("DMA mask 0xffff0fff is not 2^n - 1");
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask("0000:00:09.0", MASK32), -ENODEV);
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(NULL, MASK32), -ENODEV);
	CU_ASSERT_EQUAL(upmd_edu_dma_get_mask("nosuch", &m), -ENODEV);
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, MASK32), 0);
	CU_ASSERT_EQUAL(upmd_edu_dma_get_mask(EDU, &m), 0);
	CU_ASSERT_EQUAL(m, MASK32);
	CU_ASSERT_EQUAL_FATAL(setup_dev(16), 0);
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, ~0ULL), -EBUSY);
	ASSERT_LOG_HAS("set the DMA mask while the dmadev is stopped");
	log_release();

	d = dst_mz->addr;
	memset(d, CANARY, 4096);
	before = dma_bytes();
	log_capture();
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, 0x100000000ULL, 64, UPMD_DMA_OP_FLAG_SUBMIT), -EINVAL);
	ASSERT_LOG_HAS("destination IOVA 0x100000000");
	ASSERT_LOG_HAS("DMA mask 0xffffffff");
	/* A range that starts below and ends above. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, 0xffffff00ULL, dst_mz->iova, 0x200, UPMD_DMA_OP_FLAG_SUBMIT), -EINVAL);
	ASSERT_LOG_HAS("source IOVA 0xffffff00 (+512 bytes, last byte 0x1000000ff)");
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 0, 0xfffffffcULL, 8, UPMD_DMA_OP_FLAG_SUBMIT), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, ~0ULL - 16, 64, 0), -EINVAL);	/* wraps */
	log_release();
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 16);
	usleep(20000);
	CU_ASSERT_EQUAL(dma_bytes(), before);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(model, &f), -ENOENT);

	/* Ending on the mask's last byte is allowed and reaches the device
	 * unmasked: nothing is mapped there, so the model faults at exactly
	 * that IOVA and the destination receives the zeros it read. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, 0xfffff000ULL, dst_mz->iova, 4096, UPMD_DMA_OP_FLAG_SUBMIT), 0);
	CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
	CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, 0xfffff000ULL);
	CU_ASSERT_FALSE(f.write);
	CU_ASSERT_TRUE(all(d, 4096, 0));
	while (upmd_model_fault_pop(model, &f) == 0)
		;
out:
	down();
}

/* The model's (and QEMU's) default 28-bit edu, the PMD's default mask, UPMD_EDU_DMA_MASK. */
static void test_mask_default(void)
{
	enum upmd_dma_status_code st;
	struct upmd_model_fault f;
	uint64_t m, alias;
	uint16_t last;
	uint8_t *s, *d;

	if (up(SPEC_DEFAULT, 0, 16) < 0)
		goto out;
	CU_ASSERT_EQUAL(upmd_edu_dma_get_mask(EDU, &m), 0);
	CU_ASSERT_EQUAL(m, 0xfffffff);
	s = src_mz->addr;
	d = dst_mz->addr;
	fill_random(s, 4096, 9);
	memset(d, CANARY, AREA);
	CU_ASSERT_TRUE_FATAL(dst_mz->iova + AREA <= 0x10000000);
	alias = dst_mz->iova | 0x10000000;
	log_capture();
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, alias, 4096, UPMD_DMA_OP_FLAG_SUBMIT), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, 0x10000000, 1, UPMD_DMA_OP_FLAG_SUBMIT), -EINVAL);
	ASSERT_LOG_HAS("destination IOVA 0x10000000 (+1 bytes, last byte 0x10000000) is beyond the device's DMA mask 0xfffffff");
	log_release();
	/* Below the mask it works. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 4096, UPMD_DMA_OP_FLAG_SUBMIT), 0);
	CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
	CU_ASSERT_EQUAL(memcmp(s, d, 4096), 0);

	/* Why: told a wider mask than the device has, the PMD lets the alias
	 * through and the device silently drops bit 28, writing the real
	 * buffer with no fault. */
	memset(d, CANARY, AREA);
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	CU_ASSERT_EQUAL(upmd_edu_dma_set_mask(EDU, MASK32), 0);
	CU_ASSERT_EQUAL(upmd_dma_start(dev), 0);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, alias, 4096, UPMD_DMA_OP_FLAG_SUBMIT), 1);
	CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
	CU_ASSERT_EQUAL(memcmp(s, d, 4096), 0);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(model, &f), -ENOENT);
out:
	down();

	/* The environment sets the mask of every edu dmadev at probe. */
	setenv("UPMD_EDU_DMA_MASK", "0xffffffff", 1);
	if (up(SPEC32, 0, 0) == 0) {
		CU_ASSERT_EQUAL(upmd_edu_dma_get_mask(EDU, &m), 0);
		CU_ASSERT_EQUAL(m, MASK32);
	}
	down();
	setenv("UPMD_EDU_DMA_MASK", "0x12345", 1);
	log_capture();
	if (up(SPEC32, 0, 0) == 0) {
		CU_ASSERT_EQUAL(upmd_edu_dma_get_mask(EDU, &m), 0);
		CU_ASSERT_EQUAL(m, 0xfffffff);
		ASSERT_LOG_HAS("ignoring UPMD_EDU_DMA_MASK='0x12345'");
	}
	log_release();
	down();
	unsetenv("UPMD_EDU_DMA_MASK");
}

/* Unmapped IOVAs: memory untouched, a fault recorded, the operation "successful" (edu cannot tell). */
static void test_unmapped(void)
{
	enum upmd_dma_status_code st;
	struct upmd_model_fault f;
	struct upmd_dma_stats ds;
	uint64_t iova = 0;
	uint16_t last;
	uint8_t *page;

	if (up(SPEC32, MASK32, 16) < 0)
		goto out;
	page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(page, MAP_FAILED);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_map(page, 8192, UPMD_IOVA_MAP_RW, &iova), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_unmap(page, 8192), 0);
	memset(page, 0x22, 8192);
	fill_random(src_mz->addr, 8192, 3);

	/* To it: 5000 bytes, two chunks, two faulting writes. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, iova, 5000, UPMD_DMA_OP_FLAG_SUBMIT), 0);
	CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
	CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_TRUE(all(page, 8192, 0x22));
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova);
	CU_ASSERT_TRUE(f.write);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
	CU_ASSERT_STRING_EQUAL(f.bdf, EDU);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova + UPMD_EDU_DMA_MAX);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(model, &f), -ENOENT);

	/* From it: the destination gets the zeros the faulting read left in
	 * the buffer, never the page's bytes. */
	memset(dst_mz->addr, CANARY, AREA);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, iova, dst_mz->iova, 3000, UPMD_DMA_OP_FLAG_SUBMIT), 1);
	CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
	CU_ASSERT_TRUE(all(dst_mz->addr, 3000, 0));
	CU_ASSERT_TRUE(all((uint8_t *)dst_mz->addr + 3000, AREA - 3000, CANARY));
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova);
	CU_ASSERT_FALSE(f.write);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(model, &f), -ENOENT);

	/* And a fill to it. */
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 0x1111111111111111ULL, iova + 100, 64, UPMD_DMA_OP_FLAG_SUBMIT), 2);
	CU_ASSERT_EQUAL(reap(1, &last, &st), 1);
	CU_ASSERT_TRUE(all(page, 8192, 0x22));
	CU_ASSERT_EQUAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova + 100);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, UINT16_MAX, &ds), 0);
	CU_ASSERT_EQUAL(ds.completed, 3);
	CU_ASSERT_EQUAL(ds.errors, 0);
	munmap(page, 8192);
out:
	down();
}

/* Stop waits for the transfer in flight and aborts the rest; start again works; close frees. */
static void test_stop_close(void)
{
	enum upmd_dma_status_code st[8];
	const struct upmd_memzone *big;
	struct upmd_dma_stats ds;
	unsigned ok = 0, aborted = 0;
	uint64_t after;
	uint16_t last;
	int idx;

	if (up(SPEC32, MASK32, 16) < 0)
		goto out;
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("t_big", 2 << 20, UPMD_SOCKET_ID_ANY, 4096, &big), 0);
	for (int k = 0; k < 4; k++)
		CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, big->iova, big->iova + (1 << 20), 1 << 20, 0), k);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	/* Two more, never submitted. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), 4);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), 5);
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	CU_ASSERT_FALSE(upmd_dma_is_started(dev));
	after = dma_bytes();
	usleep(50000);
	CU_ASSERT_EQUAL(dma_bytes(), after);	/* no DMA after stop */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENODEV);

	/* completed() stops at the first aborted one; completed_status() reports all. */
	{
		bool err = false;
		uint16_t k = upmd_dma_completed(dev, 0, 8, &last, &err);

		CU_ASSERT_TRUE(err);
		CU_ASSERT_TRUE(k < 4);
		ok = k;
	}
	CU_ASSERT_EQUAL(upmd_dma_completed_status(dev, 0, 8, &last, st), 6 - ok);
	CU_ASSERT_EQUAL(last, 5);
	for (unsigned k = 0; k < 6 - ok; k++) {
		if (st[k] == UPMD_DMA_STATUS_USER_ABORT)
			aborted++;
		else
			CU_ASSERT_TRUE(st[k] == UPMD_DMA_STATUS_SUCCESSFUL && aborted == 0);
	}
	CU_ASSERT_TRUE(aborted >= 3);	/* the two unsubmitted, and the 1 MiB ones not started */
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &ds), 0);
	CU_ASSERT_EQUAL(ds.submitted, 4);
	CU_ASSERT_EQUAL(ds.completed, 6);
	CU_ASSERT_EQUAL(ds.errors, aborted);
	CU_ASSERT_EQUAL(upmd_dma_stats_reset(dev, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &ds), 0);
	CU_ASSERT_EQUAL(ds.completed, 0);

	/* Start again: indices go on. */
	CU_ASSERT_EQUAL(upmd_dma_start(dev), 0);
	fill_random(src_mz->addr, 4096, 1);
	idx = upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 4096, UPMD_DMA_OP_FLAG_SUBMIT);
	CU_ASSERT_EQUAL(idx, 6);
	CU_ASSERT_EQUAL(reap(1, &last, st), 1);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_SUCCESSFUL);
	CU_ASSERT_EQUAL(memcmp(src_mz->addr, dst_mz->addr, 4096), 0);

	/* Close: the fill staging page goes; the device stays until the PCI
	 * remove, and can be set up again. */
	CU_ASSERT_PTR_NOT_NULL(upmd_memzone_lookup("edu_fill_" EDU));
	CU_ASSERT_EQUAL(upmd_dma_close(dev), 0);
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("edu_fill_" EDU));
	CU_ASSERT_EQUAL(upmd_dma_get_dev_id_by_name(EDU), dev);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, 0), -ENODEV);
	CU_ASSERT_EQUAL(setup_dev(16), 0);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, src_mz->iova, dst_mz->iova, 64, UPMD_DMA_OP_FLAG_SUBMIT), 0);
	CU_ASSERT_EQUAL(reap(1, &last, st), 1);
	/* Left started: the EAL cleanup closes it (PCI remove). */
	upmd_memzone_free(big);
out:
	down();
}

/* upmd_edu_dma() still works beside the dmadev, and the dmadev refuses to start on a busy engine. */
static void test_edu_api_intact(void)
{
	struct upmd_edu *e;

	if (up(SPEC32, MASK32, 0) < 0)
		goto out;
	e = upmd_edu_first();
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL(e->dmadev);
	fill_random(src_mz->addr, 2048, 4);
	CU_ASSERT_EQUAL(upmd_edu_dma(e, src_mz->iova, 0, 2048, false, 5000), 0);
	CU_ASSERT_EQUAL(upmd_edu_dma(e, dst_mz->iova, 0, 2048, true, 5000), 0);
	CU_ASSERT_EQUAL(memcmp(src_mz->addr, dst_mz->addr, 2048), 0);
out:
	down();
}

static const struct upmd_test tests[] = {
	{ "info, name, limits", test_info },
	{ "copies of 1 B to 1 MiB byte for byte", test_copies },
	{ "fills", test_fills },
	{ "ring index order", test_ring_order },
	{ "ring full", test_ring_full },
	{ "IOVAs beyond a 32-bit mask refused", test_mask32 },
	{ "the default 28-bit mask, UPMD_EDU_DMA_MASK", test_mask_default },
	{ "unmapped IOVAs: untouched, faults recorded", test_unmapped },
	{ "stop, restart, close", test_stop_close },
	{ "upmd_edu_dma() beside the dmadev", test_edu_api_intact },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "edu dmadev on the model", NULL, NULL, tests })
