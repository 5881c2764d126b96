/* dmadev on the software engine dma_sw: every operation on memzone memory checked byte by byte, ring wrap and full, errors, stop/abort, lcore mode, stats, control-path checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/dmadev.h>
#include <upmd/iova.h>
#include <upmd/log.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define INIT(...)                                                                                 \
	upmd_eal_init((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)),          \
		      (char *[]){ "test", __VA_ARGS__, NULL })
/* The model gives an IOAS (there is no /dev/iommu here); IOVAs are
 * allocated, so they differ from the VAs and translation is exercised. */
#define MEM "--no-huge", "-m", "64", "--model", "", "--iova-mode", "alloc", "--log-level", "err"
#define BUF (4u << 20)
#define TIMEOUT_NS (20ull * 1000000000ull)

static const struct upmd_memzone *mz_src, *mz_dst, *mz_aux;
static int16_t dev = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void randomise(void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = (uint8_t)rnd();
}

static uint8_t *S, *D, *A;	/* the memzones' VAs */

/* EAL up with the given arguments, three zeroed 4 MiB memzones, the device dma_sw0. */
static int up_(int argc, char **argv)
{
	int rc = upmd_eal_init(argc, argv);

	if (rc < 0)
		return rc;
	if (upmd_memzone_reserve("dsrc", BUF, UPMD_SOCKET_ID_ANY, 4096, &mz_src) < 0 ||
	    upmd_memzone_reserve("ddst", BUF, UPMD_SOCKET_ID_ANY, 4096, &mz_dst) < 0 ||
	    upmd_memzone_reserve("daux", BUF, UPMD_SOCKET_ID_ANY, 4096, &mz_aux) < 0)
		return -ENOMEM;
	S = mz_src->addr;
	D = mz_dst->addr;
	A = mz_aux->addr;
	dev = (int16_t)upmd_dma_get_dev_id_by_name("dma_sw0");
	return dev;
}
#define UP(...) up_((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)), \
		    (char *[]){ "test", __VA_ARGS__, NULL })

static void down(void)
{
	int i;

	UPMD_DMA_FOREACH_DEV(i)
		upmd_dma_close((int16_t)i);
	if (mz_aux)
		upmd_memzone_free(mz_aux);
	if (mz_dst)
		upmd_memzone_free(mz_dst);
	if (mz_src)
		upmd_memzone_free(mz_src);
	mz_src = mz_dst = mz_aux = NULL;
	upmd_eal_cleanup();
	CU_ASSERT_EQUAL(upmd_dma_count_avail(), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
	dev = -1;
}

static int setup(int16_t id, uint16_t nb_vchans, uint16_t nb_desc)
{
	struct upmd_dma_conf conf = { .size = sizeof(conf), .nb_vchans = nb_vchans };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = nb_desc };
	int rc = upmd_dma_configure(id, &conf);

	for (uint16_t v = 0; rc == 0 && v < nb_vchans; v++)
		rc = upmd_dma_vchan_setup(id, v, &vc);
	if (rc == 0)
		rc = upmd_dma_start(id);
	return rc;
}

/* Collect @n statuses (failed or not) of vchan @v, waiting for them. @return how many came. */
static uint32_t reap(int16_t id, uint16_t v, uint32_t n, enum upmd_dma_status_code *st, uint16_t *last)
{
	uint64_t t0 = now_ns();
	uint32_t got = 0;

	while (got < n && now_ns() - t0 < TIMEOUT_NS) {
		uint16_t k = upmd_dma_completed_status(id, v, (uint16_t)UPMD_MIN(n - got, 65535u), last, st + got);

		got += k;
	}
	return got;
}

/* Wait for @n operations that must all succeed. @return how many did. */
static uint32_t reap_ok(int16_t id, uint16_t v, uint32_t n)
{
	enum upmd_dma_status_code st[512];
	uint32_t ok = 0;
	uint16_t last;

	while (n) {
		uint32_t k = UPMD_MIN(n, (uint32_t)UPMD_DIM(st)), got = reap(id, v, k, st, &last);

		for (uint32_t i = 0; i < got; i++)
			ok += st[i] == UPMD_DMA_STATUS_SUCCESSFUL;
		if (got < k)
			break;
		n -= k;
	}
	return ok;
}

static uint64_t io(const struct upmd_memzone *mz, size_t off)
{
	return mz->iova + off;
}

/* An IOVA that maps nothing (below the allocator's 1 MiB floor). */
static uint64_t unmapped_iova(void)
{
	uint64_t iova = 0x1000;

	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(iova));
	return iova;
}

/* ---- the vdev arguments ---- */

static void test_vdev_args(void)
{
	static const struct {
		char *l, *vdev;
		const char *says;
	} bad[] = {
		{ "0", "dma_sw0,lcore=0", "lcore=0 is the main lcore" },
		{ "0-1", "dma_sw0,lcore=5", "lcore=5 is not enabled: add it to -l" },
		{ "0", "dma_sw0,vchans=0", "vchans=0: give a number from 1 to 16" },
		{ "0", "dma_sw0,vchans=17", "vchans=17: give a number from 1 to 16" },
		{ "0", "dma_sw0,lcore=x", "lcore=x: give a number" },
		{ "0", "dma_sw0,colour=red", "unknown argument 'colour' (it takes: lcore, vchans)" },
	};

	for (unsigned i = 0; i < UPMD_DIM(bad); i++) {
		int rc;

		log_capture();
		rc = INIT("-l", bad[i].l, MEM, "--vdev", bad[i].vdev);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		ASSERT_LOG_HAS(bad[i].says);
		log_release();
		if (rc >= 0)
			upmd_eal_cleanup();
		CU_ASSERT_FALSE(upmd_eal_initialized());
		CU_ASSERT_EQUAL(upmd_dma_count_avail(), 0);
		CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
	}
}

/* ---- the control path ---- */

static void test_control(void)
{
	struct upmd_dma_conf conf = { .size = sizeof(conf), .nb_vchans = 1 };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = 64 };
	struct upmd_dma_info info;
	uint32_t crc;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0,vchans=4") >= 0);
	CU_ASSERT_EQUAL(upmd_dma_count_avail(), 1);
	CU_ASSERT_EQUAL(upmd_dma_info_get(dev, &info), 0);
	CU_ASSERT_STRING_EQUAL(info.driver, "dma_sw");
	CU_ASSERT_STRING_EQUAL(info.name, "dma_sw0");
	CU_ASSERT_EQUAL(info.capa, UPMD_DMA_CAPA_MEM_TO_MEM | UPMD_DMA_CAPA_OPS_COPY | UPMD_DMA_CAPA_OPS_FILL |
				       UPMD_DMA_CAPA_OPS_COMPARE | UPMD_DMA_CAPA_OPS_CRC32C);
	CU_ASSERT_EQUAL(info.max_vchans, 4);
	CU_ASSERT_EQUAL(info.min_desc, 32);
	CU_ASSERT_EQUAL(info.max_desc, 32768);
	CU_ASSERT_EQUAL(info.max_length, (1u << 30) - 1);

	log_capture();
	/* Start before configure, or before every vchan is set up. */
	CU_ASSERT_EQUAL(upmd_dma_start(dev), -EINVAL);
	conf.nb_vchans = 5;
	CU_ASSERT_EQUAL(upmd_dma_configure(dev, &conf), -EINVAL);
	conf.nb_vchans = 2;
	CU_ASSERT_EQUAL(upmd_dma_configure(dev, &conf), 0);
	CU_ASSERT_EQUAL(upmd_dma_start(dev), -EINVAL);
	ASSERT_LOG_HAS("vchan 0 is not set up");
	/* Ring sizes: a power of two in 32..32768. */
	for (unsigned i = 0; i < 4; i++) {
		static const uint16_t bad[] = { 0, 16, 100, 65535 };

		vc.nb_desc = bad[i];
		CU_ASSERT_EQUAL(upmd_dma_vchan_setup(dev, 0, &vc), -EINVAL);
	}
	ASSERT_LOG_HAS("give a power of two in 32..32768");
	vc.nb_desc = 32;
	CU_ASSERT_EQUAL(upmd_dma_vchan_setup(dev, 0, &vc), 0);
	CU_ASSERT_EQUAL(upmd_dma_vchan_setup(dev, 2, &vc), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_start(dev), -EINVAL);	/* vchan 1 */
	vc.nb_desc = 32768;
	CU_ASSERT_EQUAL(upmd_dma_vchan_setup(dev, 1, &vc), 0);
	/* Not started: the data path refuses. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), 8, 0), -ENODEV);
	CU_ASSERT_EQUAL(upmd_dma_start(dev), 0);
	CU_ASSERT_TRUE(upmd_dma_is_started(dev));
	CU_ASSERT_EQUAL(upmd_dma_start(dev), -EBUSY);
	CU_ASSERT_EQUAL(upmd_dma_configure(dev, &conf), -EBUSY);
	ASSERT_LOG_HAS("configure while started");
	CU_ASSERT_EQUAL(upmd_dma_vchan_setup(dev, 0, &vc), -EBUSY);
	log_release();
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 32);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 1), 32768);
	/* Lengths: 1..max_length; a CRC needs somewhere to put its result. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), 1u << 30, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 0, io(mz_dst, 0), 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_crc32c(dev, 0, io(mz_src, 0), 8, 0, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 32);
	CU_ASSERT_EQUAL(upmd_dma_crc32c(dev, 0, io(mz_src, 0), 8, 0, &crc, UPMD_DMA_OP_FLAG_SUBMIT), 0);
	CU_ASSERT_EQUAL(reap_ok(dev, 0, 1), 1);
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	CU_ASSERT_FALSE(upmd_dma_is_started(dev));
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	/* Reconfigured: the vchans must be set up again. */
	conf.nb_vchans = 1;
	CU_ASSERT_EQUAL(upmd_dma_configure(dev, &conf), 0);
	log_capture();
	CU_ASSERT_EQUAL(upmd_dma_start(dev), -EINVAL);
	log_release();
	down();
}

/* ---- copies ---- */

static void test_copy(void)
{
	static const uint32_t sizes[] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256,
					  1000, 1023, 1024, 4095, 4096, 4097, 8191, 65536, 65537, 1u << 20 };
	static const uint32_t offs[] = { 0, 1, 3, 7, 8, 13, 63, 64, 4095 };
	enum upmd_dma_status_code st;
	unsigned bad = 0, n = 0;
	uint16_t last;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 256), 0);
	randomise(S, BUF);
	for (unsigned i = 0; i < UPMD_DIM(sizes); i++)
		for (unsigned j = 0; j < UPMD_DIM(offs); j++) {
			uint32_t len = sizes[i], so = offs[j], dof = offs[(j + i) % UPMD_DIM(offs)];
			int idx;

			memset(D, 0x5a, so + dof + len + 8192);
			idx = upmd_dma_copy(dev, 0, io(mz_src, so), io(mz_dst, dof + 16), len, UPMD_DMA_OP_FLAG_SUBMIT);
			CU_ASSERT_EQUAL(idx, (int)n);
			if (idx < 0 || reap(dev, 0, 1, &st, &last) != 1) {
				bad++;
				continue;
			}
			n++;
			CU_ASSERT_EQUAL(last, idx);
			CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
			/* The bytes, and not one byte either side more. */
			if (memcmp(D + dof + 16, S + so, len) || D[dof + 15] != 0x5a || D[dof + 16 + len] != 0x5a) {
				printf("\n  copy of %u bytes, src +%u, dst +%u: wrong\n", len, so, dof + 16);
				bad++;
			}
		}
	CU_ASSERT_EQUAL(bad, 0);
	down();
}

/* Operations in ring order: a fenced copy reads what the one before wrote. */
static void test_fence_order(void)
{
	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 64), 0);
	randomise(S, 65536);
	for (unsigned r = 0; r < 16; r++) {
		memset(D, 0, 65536);
		memset(A, 0, 65536);
		CU_ASSERT(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), 65536, 0) >= 0);
		CU_ASSERT(upmd_dma_copy(dev, 0, io(mz_dst, 0), io(mz_aux, 0), 65536,
					UPMD_DMA_OP_FLAG_FENCE | UPMD_DMA_OP_FLAG_SUBMIT) >= 0);
		CU_ASSERT_EQUAL(reap_ok(dev, 0, 2), 2);
		CU_ASSERT_EQUAL(memcmp(A, S, 65536), 0);
	}
	down();
}

/* ---- fill ---- */

static void test_fill(void)
{
	static const uint64_t pats[] = { 0, 0xabababababababab, 0x0102030405060708, 0xdeadbeefcafef00d, ~0ull };
	static const uint32_t sizes[] = { 1, 2, 5, 7, 8, 9, 63, 64, 65, 100, 4096, 12345, 1u << 20 };
	enum upmd_dma_status_code st;
	unsigned bad = 0;
	uint16_t last;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 32), 0);
	for (unsigned p = 0; p < UPMD_DIM(pats); p++)
		for (unsigned i = 0; i < UPMD_DIM(sizes); i++) {
			uint32_t len = sizes[i], off = 100 + (i * 5) % 8;

			memset(D, 0x33, len + 256);
			CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, pats[p], io(mz_dst, off), len, UPMD_DMA_OP_FLAG_SUBMIT),
					(int)(p * UPMD_DIM(sizes) + i));
			if (reap(dev, 0, 1, &st, &last) != 1) {
				bad++;
				continue;
			}
			CU_ASSERT_EQUAL(st, UPMD_DMA_STATUS_SUCCESSFUL);
			for (uint32_t b = 0; b < len; b++)
				if (D[off + b] != (uint8_t)(pats[p] >> (8 * (b % 8)))) {
					printf("\n  fill %#llx, %u bytes: byte %u is %#x\n", (unsigned long long)pats[p],
					       len, b, D[off + b]);
					bad++;
					break;
				}
			if (D[off - 1] != 0x33 || D[off + len] != 0x33)
				bad++;
		}
	CU_ASSERT_EQUAL(bad, 0);
	down();
}

/* ---- compare, and completed() stopping at the first failure ---- */

static void test_compare(void)
{
	enum upmd_dma_status_code st[8];
	unsigned took = 0;
	uint16_t last = 0;
	bool err = false;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 32), 0);
	randomise(S, 8192);
	memcpy(D, S, 8192);
	D[4095] ^= 1;	/* differs in the last byte of the first 4 KiB */
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, io(mz_src, 4096), io(mz_dst, 4096), 4096, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, io(mz_src, 0), io(mz_dst, 0), 4095, 0), 1);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, io(mz_src, 0), io(mz_dst, 0), 4096, 0), 2);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, io(mz_src, 1), io(mz_dst, 1), 1, 0), 3);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, io(mz_src, 0), io(mz_dst, 0), 8192, UPMD_DMA_OP_FLAG_SUBMIT), 4);
	/* completed(): the first two are equal and counted; it stops before the mismatch. */
	for (uint64_t t0 = now_ns(); !err && now_ns() - t0 < TIMEOUT_NS;)
		took += upmd_dma_completed(dev, 0, 32, &last, &err);
	CU_ASSERT_EQUAL(took, 2);
	CU_ASSERT_EQUAL(last, 1);
	CU_ASSERT_TRUE(err);
	/* Nothing more until the failure is taken. */
	CU_ASSERT_EQUAL(upmd_dma_completed(dev, 0, 32, &last, &err), 0);
	CU_ASSERT_TRUE(err);
	CU_ASSERT_EQUAL(last, 1);
	CU_ASSERT_EQUAL(upmd_dma_completed_status(dev, 0, 1, &last, st), 1);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_COMPARE_MISMATCH);
	CU_ASSERT_EQUAL(last, 2);
	/* The fourth (equal), then the fifth (differs). */
	took = 0;
	for (uint64_t t0 = now_ns(); !took && now_ns() - t0 < TIMEOUT_NS;)
		took = upmd_dma_completed(dev, 0, 32, &last, &err);
	CU_ASSERT_EQUAL(took, 1);
	CU_ASSERT_EQUAL(last, 3);
	CU_ASSERT_EQUAL(reap(dev, 0, 1, st, &last), 1);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_COMPARE_MISMATCH);
	CU_ASSERT_EQUAL(last, 4);
	CU_ASSERT_EQUAL(upmd_dma_completed(dev, 0, 32, &last, &err), 0);
	CU_ASSERT_FALSE(err);
	CU_ASSERT_EQUAL(last, 4);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 32);
	down();
}

/* ---- CRC32C ---- */

/* Bit by bit, the definition. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

static uint32_t dma_crc(uint64_t iova, uint32_t len, uint32_t seed, bool *ok)
{
	enum upmd_dma_status_code st = UPMD_DMA_STATUS_ERROR_UNKNOWN;
	uint32_t r = 0x12345678;
	uint16_t last;

	*ok = upmd_dma_crc32c(dev, 0, iova, len, seed, &r, UPMD_DMA_OP_FLAG_SUBMIT) >= 0 &&
	      reap(dev, 0, 1, &st, &last) == 1 && st == UPMD_DMA_STATUS_SUCCESSFUL;
	return r;
}

static void crc_suite(const char *flavour)
{
	static const uint32_t sizes[] = { 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1000, 4096, 65537 };
	unsigned bad = 0;
	bool ok;

	log_capture();
	CU_ASSERT_FATAL(UP("-l", "0", "--no-huge", "-m", "64", "--model", "", "--iova-mode", "alloc", "--log-level",
			   "info", "--vdev", "dma_sw0") >= 0);
	ASSERT_LOG_HAS(flavour);
	log_release();
	upmd_log_set_level(UPMD_LOG_ERR);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 32), 0);
	memcpy(S, "123456789", 9);
	CU_ASSERT_EQUAL(~dma_crc(io(mz_src, 0), 9, ~0u, &ok), 0xE3069283u);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(crc_ref(~0u, S, 9), ~0xE3069283u);	/* the reference agrees */
	/* 32 bytes of zeros and of ones (RFC 3720's vectors). */
	memset(S, 0, 32);
	CU_ASSERT_EQUAL(~dma_crc(io(mz_src, 0), 32, ~0u, &ok), 0x8A9136AAu);
	memset(S, 0xff, 32);
	CU_ASSERT_EQUAL(~dma_crc(io(mz_src, 0), 32, ~0u, &ok), 0x62A8AB43u);
	randomise(S, 1u << 20);
	for (unsigned i = 0; i < UPMD_DIM(sizes); i++)
		for (unsigned off = 0; off < 9; off++) {
			uint32_t seed = (uint32_t)rnd(), got = dma_crc(io(mz_src, off), sizes[i], seed, &ok);

			if (!ok || got != crc_ref(seed, S + off, sizes[i])) {
				printf("\n  crc32c of %u bytes at +%u: %#x, reference %#x\n", sizes[i], off, got,
				       crc_ref(seed, S + off, sizes[i]));
				bad++;
			}
		}
	/* Seeding with a CRC continues it. */
	CU_ASSERT_EQUAL(dma_crc(io(mz_src, 1000), 3000, dma_crc(io(mz_src, 0), 1000, 7, &ok), &ok),
			dma_crc(io(mz_src, 0), 4000, 7, &ok));
	CU_ASSERT_EQUAL(bad, 0);
	down();
}

static void test_crc32c(void)
{
	crc_suite(__builtin_cpu_supports("sse4.2") ? "CRC32C SSE4.2" : "CRC32C slice-by-8");
}

static void test_crc32c_table(void)
{
	setenv("UPMD_DMA_SW_NO_SSE42", "1", 1);
	crc_suite("CRC32C slice-by-8");
	unsetenv("UPMD_DMA_SW_NO_SSE42");
}

/* ---- the ring: indices wrap, full is -ENOSPC ---- */

static void test_ring_wrap_full(void)
{
	const uint32_t total = 70000 + 13;	/* past 65536: the 16-bit index wraps */
	uint32_t sent = 0, reaped = 0, bad = 0;
	uint16_t expect_last = 0xffff;
	uint64_t t0 = now_ns();

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 32), 0);
	randomise(S, 32 * 64);
	/* Full: 32 enqueue, the 33rd does not (nothing submitted yet). */
	for (unsigned i = 0; i < 32; i++)
		CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, i * 64), io(mz_dst, i * 64), 64, 0), (int)i);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), 64, 0), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 1, io(mz_dst, 0), 64, 0), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	CU_ASSERT_EQUAL(reap_ok(dev, 0, 32), 32);
	CU_ASSERT_EQUAL(memcmp(D, S, 32 * 64), 0);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 32);
	sent = reaped = 32;
	expect_last = 31;
	/* Then on, past the wrap, every index and completion accounted. */
	while (reaped < total && now_ns() - t0 < TIMEOUT_NS) {
		uint16_t last, k;
		bool err;

		while (sent < total) {
			int idx = upmd_dma_copy(dev, 0, io(mz_src, (sent % 32) * 64), io(mz_aux, (sent % 32) * 64), 64,
						0);

			if (idx == -ENOSPC)
				break;
			if (idx != (int)(uint16_t)sent)
				bad++;
			sent++;
		}
		upmd_dma_submit(dev, 0);
		k = upmd_dma_completed(dev, 0, 16, &last, &err);
		if (err)
			bad++;
		if (k) {
			expect_last = (uint16_t)(expect_last + k);
			if (last != expect_last)
				bad++;
			reaped += k;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(reaped, total);
	CU_ASSERT_EQUAL(expect_last, (uint16_t)(total - 1));
	CU_ASSERT_EQUAL(memcmp(A, S, 32 * 64), 0);
	down();
}

/* ---- bad addresses: failed, and nothing touched ---- */

/* A segment whose end is not followed by its continuation in VA and IOVA. */
static const struct upmd_memseg *segment_with_edge(void)
{
	for (unsigned i = 0; i < upmd_memseg_count(); i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);
		uint8_t *next = upmd_iova_table_to_va(ms->iova + ms->len);

		if (next != (uint8_t *)ms->va + ms->len)
			return ms;
	}
	return NULL;
}

static void test_bad_addresses(void)
{
	const uint64_t hole = unmapped_iova();
	enum upmd_dma_status_code st[16];
	const struct upmd_memseg *ms;
	uint8_t edge[64];
	uint32_t crc = 0xabcdef01;
	unsigned took = 0;
	uint16_t last;
	bool err;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 32), 0);
	ms = segment_with_edge();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ms);
	memcpy(edge, (uint8_t *)ms->va + ms->len - 64, 64);
	randomise(S, 4096);
	memset(D, 0x77, 8192);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), 64, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, hole, io(mz_dst, 1024), 64, 0), 1);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), hole, 64, 0), 2);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 0x1122334455667788, hole, 64, 0), 3);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, hole, io(mz_src, 0), 64, 0), 4);
	CU_ASSERT_EQUAL(upmd_dma_compare(dev, 0, io(mz_src, 0), hole, 64, 0), 5);
	CU_ASSERT_EQUAL(upmd_dma_crc32c(dev, 0, hole, 64, 0, &crc, 0), 6);
	/* Ranges that start mapped and run past the end of their mapping. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, ms->iova + ms->len - 64, io(mz_dst, 2048), 128, 0), 7);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), ms->iova + ms->len - 64, 128, 0), 8);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 0, 0, ms->iova + ms->len - 64, 65, 0), 9);
	/* A range much larger than any mapping. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), (1u << 30) - 1, 0), 10);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 64), io(mz_dst, 64), 64, UPMD_DMA_OP_FLAG_SUBMIT), 11);

	/* completed() takes the first, stops at the second. */
	err = false;
	for (uint64_t t0 = now_ns(); !err && now_ns() - t0 < TIMEOUT_NS;)
		took += upmd_dma_completed(dev, 0, 32, &last, &err);
	CU_ASSERT_EQUAL(took, 1);
	CU_ASSERT_TRUE(err);
	CU_ASSERT_EQUAL(last, 0);
	CU_ASSERT_EQUAL(upmd_dma_completed(dev, 0, 32, &last, &err), 0);
	CU_ASSERT_TRUE(err);
	CU_ASSERT_EQUAL(reap(dev, 0, 11, st, &last), 11);
	CU_ASSERT_EQUAL(last, 11);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_INVALID_SRC_ADDR);
	CU_ASSERT_EQUAL(st[1], UPMD_DMA_STATUS_INVALID_DST_ADDR);
	CU_ASSERT_EQUAL(st[2], UPMD_DMA_STATUS_INVALID_DST_ADDR);
	CU_ASSERT_EQUAL(st[3], UPMD_DMA_STATUS_INVALID_SRC_ADDR);
	CU_ASSERT_EQUAL(st[4], UPMD_DMA_STATUS_INVALID_DST_ADDR);
	CU_ASSERT_EQUAL(st[5], UPMD_DMA_STATUS_INVALID_SRC_ADDR);
	CU_ASSERT_EQUAL(st[6], UPMD_DMA_STATUS_INVALID_SRC_ADDR);
	CU_ASSERT_EQUAL(st[7], UPMD_DMA_STATUS_INVALID_DST_ADDR);
	CU_ASSERT_EQUAL(st[8], UPMD_DMA_STATUS_INVALID_DST_ADDR);
	CU_ASSERT_EQUAL(st[9], UPMD_DMA_STATUS_INVALID_SRC_ADDR);
	CU_ASSERT_EQUAL(st[10], UPMD_DMA_STATUS_SUCCESSFUL);
	/* What succeeded is there; what failed wrote nothing. */
	CU_ASSERT_EQUAL(memcmp(D, S, 128), 0);
	for (unsigned i = 128; i < 8192; i++)
		if (D[i] != 0x77) {
			CU_FAIL("a failed operation wrote to the destination");
			break;
		}
	CU_ASSERT_EQUAL(memcmp(edge, (uint8_t *)ms->va + ms->len - 64, 64), 0);
	CU_ASSERT_EQUAL(crc, 0xabcdef01);
	down();
}

/* ---- stop with work outstanding ---- */

static void test_stop_abort(void)
{
	enum upmd_dma_status_code st[64];
	struct upmd_dma_stats s;
	unsigned ok = 0, aborted = 0, bad = 0;
	uint16_t last;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 64), 0);
	randomise(S, BUF);
	memset(A, 0x99, BUF);
	/* 32 copies of 4 MiB submitted (seconds of work under ASan), then 16 enqueued only. */
	for (unsigned i = 0; i < 32; i++)
		CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_dst, 0), BUF, 0), (int)i);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), 0);
	for (unsigned i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_aux, i * 4096), 4096, 0), (int)(32 + i));
	/* The first has run: the engine was at work when it was stopped. */
	CU_ASSERT_EQUAL(reap_ok(dev, 0, 1), 1);
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	/* Everything else is reported at once: what ran, then what did not. */
	CU_ASSERT_EQUAL(upmd_dma_completed_status(dev, 0, 64, &last, st), 47);
	CU_ASSERT_EQUAL(last, 47);
	ok = 1;
	for (unsigned i = 0; i < 47; i++) {
		if (st[i] == UPMD_DMA_STATUS_SUCCESSFUL && !aborted)
			ok++;
		else if (st[i] == UPMD_DMA_STATUS_USER_ABORT)
			aborted++;
		else
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(ok + aborted, 48);
	CU_ASSERT_EQUAL(memcmp(D, S, BUF), 0);
	CU_ASSERT_TRUE(aborted >= 16);
	printf(" (%u ran, %u aborted) ", ok, aborted);
	for (unsigned i = 0; i < BUF; i++)
		if (A[i] != 0x99) {
			CU_FAIL("an aborted copy wrote");
			break;
		}
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &s), 0);
	CU_ASSERT_EQUAL(s.submitted, 32);
	CU_ASSERT_EQUAL(s.completed, 48);
	CU_ASSERT_EQUAL(s.errors, aborted);
	/* Stopped: the data path refuses; started again, a fresh ring from index 0. */
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_aux, 0), 64, 0), -ENODEV);
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 0), -ENODEV);
	CU_ASSERT_EQUAL(upmd_dma_start(dev), 0);
	CU_ASSERT_EQUAL(upmd_dma_burst_capacity(dev, 0), 64);
	CU_ASSERT_EQUAL(upmd_dma_copy(dev, 0, io(mz_src, 0), io(mz_aux, 0), 4096, UPMD_DMA_OP_FLAG_SUBMIT), 0);
	CU_ASSERT_EQUAL(reap_ok(dev, 0, 1), 1);
	CU_ASSERT_EQUAL(memcmp(A, S, 4096), 0);
	/* Stopped with nothing outstanding: nothing to report. */
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	CU_ASSERT_EQUAL(upmd_dma_completed_status(dev, 0, 64, &last, st), 0);
	down();
}

/* ---- a million copies, every byte checked, none lost ---- */

#define SLOT 256

static unsigned run_many(int16_t id, uint16_t vchan, uint32_t total, uint16_t nb_desc, size_t dst_base)
{
	uint32_t *off = calloc(nb_desc, sizeof(*off)), *len = calloc(nb_desc, sizeof(*len));
	uint32_t sent = 0, reaped = 0, bad = 0, mask = nb_desc - 1u;
	uint64_t t0 = now_ns();
	int base = -1;	/* the ring index of the first: the ring may have run before */

	if (!off || !len) {
		free(off);
		free(len);
		return ~0u;
	}
	while (reaped < total && now_ns() - t0 < 10 * TIMEOUT_NS) {
		uint16_t last, k;
		bool err;

		/* Keep the ring busy, a batch at a time. */
		for (unsigned b = 0; b < 32 && sent < total; b++) {
			uint32_t slot = sent & mask, o = (uint32_t)(rnd() % (BUF - SLOT)), l = 1 + (uint32_t)(rnd() % SLOT);
			int idx = upmd_dma_copy(id, vchan, io(mz_src, o), io(mz_dst, dst_base + (size_t)slot * SLOT), l, 0);

			if (idx == -ENOSPC)
				break;
			if (base < 0)
				base = idx;
			if (idx != (int)(uint16_t)(base + sent))
				bad++;
			off[slot] = o;
			len[slot] = l;
			sent++;
		}
		upmd_dma_submit(id, vchan);
		k = upmd_dma_completed(id, vchan, 64, &last, &err);
		if (err)
			bad++;
		for (uint16_t i = 0; i < k; i++, reaped++) {
			uint32_t slot = reaped & mask;

			if (memcmp(D + dst_base + (size_t)slot * SLOT, S + off[slot], len[slot]))
				bad++;
		}
		if (k && last != (uint16_t)(base + reaped - 1))
			bad++;
	}
	free(off);
	free(len);
	return bad + (total - reaped);
}

static void test_million(void)
{
	struct upmd_dma_stats s;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 1024), 0);
	randomise(S, BUF);
	CU_ASSERT_EQUAL(run_many(dev, 0, 1000000, 1024, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &s), 0);
	CU_ASSERT_EQUAL(s.submitted, 1000000);
	CU_ASSERT_EQUAL(s.completed, 1000000);
	CU_ASSERT_EQUAL(s.errors, 0);
	down();
}

/* ---- the engine on a worker lcore ---- */

static void test_lcore_mode(void)
{
	struct upmd_dma_stats s;
	int16_t dev1;

	CU_ASSERT_FATAL(UP("-l", "0-1", MEM, "--vdev", "dma_sw0,lcore=1", "--vdev", "dma_sw1,lcore=1") >= 0);
	dev1 = (int16_t)upmd_dma_get_dev_id_by_name("dma_sw1");
	CU_ASSERT_FATAL(dev1 >= 0);
	CU_ASSERT_EQUAL(upmd_eal_get_lcore_state(1), UPMD_LCORE_WAIT);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 1, 256), 0);
	CU_ASSERT_EQUAL(upmd_eal_get_lcore_state(1), UPMD_LCORE_RUNNING);
	/* The lcore runs one device's engine: a second is refused, and says why. */
	log_capture();
	CU_ASSERT_EQUAL(setup(dev1, 1, 32), -EBUSY);
	ASSERT_LOG_HAS("dma_sw1: cannot run the engine on lcore 1");
	log_release();
	CU_ASSERT_FALSE(upmd_dma_is_started(dev1));
	randomise(S, BUF);
	CU_ASSERT_EQUAL(run_many(dev, 0, 100000, 256, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &s), 0);
	CU_ASSERT_EQUAL(s.completed, 100000);
	CU_ASSERT_EQUAL(upmd_dma_stop(dev), 0);
	CU_ASSERT_NOT_EQUAL(upmd_eal_get_lcore_state(1), UPMD_LCORE_RUNNING);
	/* Now the other may have it. */
	CU_ASSERT_EQUAL(upmd_dma_start(dev1), 0);
	CU_ASSERT_EQUAL(run_many(dev1, 0, 10000, 32, 0), 0);
	down();
	CU_ASSERT_FALSE(upmd_eal_initialized());
}

/* ---- several vchans, statistics ---- */

static void test_vchans_stats(void)
{
	enum upmd_dma_status_code st[4];
	struct upmd_dma_stats s;
	uint16_t last;

	CU_ASSERT_FATAL(UP("-l", "0", MEM, "--vdev", "dma_sw0,vchans=3") >= 0);
	CU_ASSERT_EQUAL_FATAL(setup(dev, 3, 128), 0);
	randomise(S, BUF);
	/* vchans 0 and 1 interleaved into separate halves of the destination. */
	for (unsigned r = 0; r < 20; r++) {
		CU_ASSERT_EQUAL(run_many(dev, 0, 500, 128, 0), 0);
		CU_ASSERT_EQUAL(run_many(dev, 1, 700, 128, BUF / 2), 0);
	}
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 2, 0, unmapped_iova(), 8, 0), 0);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 2, 0, io(mz_aux, 0), 8, 0), 1);
	CU_ASSERT_EQUAL(upmd_dma_fill(dev, 2, 0, io(mz_aux, 0), 8, 0), 2);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 2, &s), 0);
	CU_ASSERT_EQUAL(s.submitted, 0);	/* enqueued is not submitted */
	CU_ASSERT_EQUAL(upmd_dma_submit(dev, 2), 0);
	CU_ASSERT_EQUAL(reap(dev, 2, 3, st, &last), 3);
	CU_ASSERT_EQUAL(st[0], UPMD_DMA_STATUS_INVALID_DST_ADDR);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 0, &s), 0);
	CU_ASSERT_EQUAL(s.submitted, 10000);
	CU_ASSERT_EQUAL(s.completed, 10000);
	CU_ASSERT_EQUAL(s.errors, 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 2, &s), 0);
	CU_ASSERT_EQUAL(s.submitted, 3);
	CU_ASSERT_EQUAL(s.completed, 3);
	CU_ASSERT_EQUAL(s.errors, 1);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, UINT16_MAX, &s), 0);
	CU_ASSERT_EQUAL(s.submitted, 10000 + 14000 + 3);
	CU_ASSERT_EQUAL(s.completed, 10000 + 14000 + 3);
	CU_ASSERT_EQUAL(s.errors, 1);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 3, &s), -EINVAL);
	CU_ASSERT_EQUAL(upmd_dma_stats_reset(dev, 1), 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, 1, &s), 0);
	CU_ASSERT_EQUAL(s.submitted + s.completed + s.errors, 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_reset(dev, UINT16_MAX), 0);
	CU_ASSERT_EQUAL(upmd_dma_stats_get(dev, UINT16_MAX, &s), 0);
	CU_ASSERT_EQUAL(s.submitted + s.completed + s.errors, 0);
	down();
}

static const struct upmd_test tests[] = {
	{ "vdev arguments refused with messages", test_vdev_args },
	{ "control path checks", test_control },
	{ "copy: sizes and alignments", test_copy },
	{ "fence: in order", test_fence_order },
	{ "fill patterns", test_fill },
	{ "compare, completed() stops at the mismatch", test_compare },
	{ "crc32c vectors (run-time choice)", test_crc32c },
	{ "crc32c vectors (slice-by-8)", test_crc32c_table },
	{ "ring: full -ENOSPC, index wrap", test_ring_wrap_full },
	{ "unmapped and partly mapped IOVAs", test_bad_addresses },
	{ "stop with work outstanding: USER_ABORT", test_stop_abort },
	{ "10^6 copies, every byte checked", test_million },
	{ "engine on lcore 1", test_lcore_mode },
	{ "vchans and statistics", test_vchans_stats },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "dmadev/dma_sw", NULL, NULL, tests })
