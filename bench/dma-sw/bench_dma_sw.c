/*
 * upmd's software DMA engine dma_sw against DPDK 22.11's dma_skeleton, in
 * one process: copies of 64 B, 1 KiB and 4 KiB, each engine on worker
 * lcore 1 (CPU 1) while the application thread on lcore 0 enqueues
 * batches of 32, submits, polls completions and keeps the ring busy, for a
 * fixed number of bytes a run. Figures are GB/s, medians of RUNS rounds;
 * each round runs upmd then DPDK back to back (only the measured device
 * started, so an idle engine never takes the other's CPU), and the ratio
 * column is the median of the rounds' upmd/DPDK ratios (goal >= 1.0).
 * Printed, never asserted.
 *
 * Both copy within a 2 MiB window (cache-resident: the figure is the
 * engine's and the API's, not DRAM's); the window is checked after the
 * warm-up. dma_skeleton takes the addresses as VAs; dma_sw takes IOVAs
 * and translates them, as the dmadev contract says.
 *
 * Options: --mib N (MiB a run, default 256), --size N (only that size),
 * --only upmd|dpdk, --icount N: no timing; N operations in batches of 32,
 * each batch enqueued and submitted by {upmd,dpdk}_app_enq and reaped by
 * one {upmd,dpdk}_app_cpl call after the engine has had time to finish it,
 * so that valgrind --tool=callgrind counts the application's instructions
 * per operation without the empty polls (run.sh does this).
 */
/* DPDK 22.11 still marks dmadev experimental. */
#define ALLOW_EXPERIMENTAL_API 1

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_dmadev.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_memzone.h>
#include <rte_version.h>

#include <upmd/upmd.h>
#include <upmd/dmadev.h>

#define RUNS 7
#define BATCH 32
#define RING 1024
#define WINDOW (2u << 20)
#define MAX_INFLIGHT_POLL 64

static uint64_t mib = 256;
static unsigned only_size;
static const char *only;
static uint64_t icount;

static int16_t up_dev = -1, dp_dev = -1;
static uint8_t *up_src, *up_dst, *dp_src, *dp_dst;
static uint64_t up_src_iova, up_dst_iova;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *in)
{
	double v[RUNS];

	memcpy(v, in, sizeof(v));
	qsort(v, RUNS, sizeof(*v), cmp_double);
	return v[RUNS / 2];
}

/* ---- the two loops: the same code, one API each ---- */

/* @n copies of @size bytes; @return GB/s, or a negative value on an error. */
static double upmd_run(uint32_t size, uint64_t n)
{
	uint64_t sent = 0, reaped = 0, t0 = now_ns(), ns;
	uint32_t per = WINDOW / size, slot = 0;

	while (reaped < n) {
		uint16_t last, k;
		bool err = false;

		if (sent < n && upmd_dma_burst_capacity(up_dev, 0) >= BATCH) {
			for (unsigned b = 0; b < BATCH; b++) {
				uint64_t off = (uint64_t)slot * size;

				upmd_dma_copy(up_dev, 0, up_src_iova + off, up_dst_iova + off, size, 0);
				slot = slot + 1 == per ? 0 : slot + 1;
			}
			upmd_dma_submit(up_dev, 0);
			sent += BATCH;
		}
		k = upmd_dma_completed(up_dev, 0, MAX_INFLIGHT_POLL, &last, &err);
		if (err)
			return -1;
		reaped += k;
	}
	ns = now_ns() - t0;
	return (double)(n * size) / (double)ns;
}

static double dpdk_run(uint32_t size, uint64_t n)
{
	uint64_t sent = 0, reaped = 0, t0 = now_ns(), ns;
	uint32_t per = WINDOW / size, slot = 0;

	while (reaped < n) {
		uint16_t last, k;
		bool err = false;

		if (sent < n && rte_dma_burst_capacity(dp_dev, 0) >= BATCH) {
			for (unsigned b = 0; b < BATCH; b++) {
				uint64_t off = (uint64_t)slot * size;

				rte_dma_copy(dp_dev, 0, (rte_iova_t)(uintptr_t)(dp_src + off),
					     (rte_iova_t)(uintptr_t)(dp_dst + off), size, 0);
				slot = slot + 1 == per ? 0 : slot + 1;
			}
			rte_dma_submit(dp_dev, 0);
			sent += BATCH;
		}
		k = rte_dma_completed(dp_dev, 0, MAX_INFLIGHT_POLL, &last, &err);
		if (err)
			return -1;
		reaped += k;
	}
	ns = now_ns() - t0;
	return (double)(n * size) / (double)ns;
}

/* ---- instruction counting (callgrind): the application's calls only ---- */

__attribute__((noinline)) void upmd_app_enq(uint32_t size, uint32_t slot);
__attribute__((noinline)) uint16_t upmd_app_cpl(void);
__attribute__((noinline)) void dpdk_app_enq(uint32_t size, uint32_t slot);
__attribute__((noinline)) uint16_t dpdk_app_cpl(void);

__attribute__((noinline)) void upmd_app_enq(uint32_t size, uint32_t slot)
{
	for (unsigned b = 0; b < BATCH; b++) {
		uint64_t off = (uint64_t)(slot + b) * size;

		upmd_dma_copy(up_dev, 0, up_src_iova + off, up_dst_iova + off, size, 0);
	}
	upmd_dma_submit(up_dev, 0);
}

__attribute__((noinline)) uint16_t upmd_app_cpl(void)
{
	uint16_t last;
	bool err;

	return upmd_dma_completed(up_dev, 0, BATCH, &last, &err);
}

__attribute__((noinline)) void dpdk_app_enq(uint32_t size, uint32_t slot)
{
	for (unsigned b = 0; b < BATCH; b++) {
		uint64_t off = (uint64_t)(slot + b) * size;

		rte_dma_copy(dp_dev, 0, (rte_iova_t)(uintptr_t)(dp_src + off), (rte_iova_t)(uintptr_t)(dp_dst + off),
			     size, 0);
	}
	rte_dma_submit(dp_dev, 0);
}

__attribute__((noinline)) uint16_t dpdk_app_cpl(void)
{
	uint16_t last;
	bool err;

	return rte_dma_completed(dp_dev, 0, BATCH, &last, &err);
}

/* Give the engine (serialised with us under valgrind) time to finish a batch. */
static void settle(void)
{
	struct timespec ts = { 0, 2000000 };

	nanosleep(&ts, NULL);
}

static int icount_run(bool is_upmd, uint32_t size)
{
	uint32_t per = WINDOW / size;

	for (uint64_t i = 0; i < icount; i += BATCH) {
		uint32_t slot = (uint32_t)((i % per) / BATCH * BATCH);
		unsigned got = 0, tries = 0;

		if (is_upmd)
			upmd_app_enq(size, slot);
		else
			dpdk_app_enq(size, slot);
		while (got < BATCH && tries++ < 1000) {
			settle();
			got += is_upmd ? upmd_app_cpl() : dpdk_app_cpl();
		}
		if (got != BATCH) {
			fprintf(stderr, "%s: a batch did not complete\n", is_upmd ? "upmd" : "dpdk");
			return -1;
		}
	}
	return 0;
}

/* ---- set-up ---- */

static int upmd_dev_start(void)
{
	struct upmd_dma_conf c = { .size = sizeof(c), .nb_vchans = 1 };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = RING };
	int rc = upmd_dma_configure(up_dev, &c);

	if (rc == 0)
		rc = upmd_dma_vchan_setup(up_dev, 0, &vc);
	if (rc == 0)
		rc = upmd_dma_start(up_dev);
	return rc;
}

static int dpdk_dev_start(void)
{
	struct rte_dma_conf c = { .nb_vchans = 1 };
	struct rte_dma_vchan_conf vc = { .direction = RTE_DMA_DIR_MEM_TO_MEM, .nb_desc = RING };
	int rc = rte_dma_configure(dp_dev, &c);

	if (rc == 0)
		rc = rte_dma_vchan_setup(dp_dev, 0, &vc);
	if (rc == 0)
		rc = rte_dma_start(dp_dev);
	return rc;
}

static void randomise(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static int usage(const char *prg)
{
	fprintf(stderr, "usage: %s [--mib N] [--size 64|1024|4096] [--only upmd|dpdk] [--icount N]\n", prg);
	return 2;
}

int main(int argc, char **argv)
{
	char *upmd_args[] = { "upmd-bench-dma-sw", "-l", "0-1", "--no-huge", "-m", "64", "--model", "",
			      "--log-level", "err", "--vdev", "dma_sw0,lcore=1", NULL };
	char *dpdk_args[] = { "upmd-bench-dma-sw", "--no-huge", "-m", "256", "-l", "0-1", "--no-pci",
			      "--file-prefix=upmd-dma-sw", "--log-level=error", "--vdev", "dma_skeleton,lcore=1", NULL };
	static const uint32_t sizes[] = { 64, 1024, 4096 };
	const struct upmd_memzone *uz_src, *uz_dst;
	const struct rte_memzone *dz_src, *dz_dst;
	unsigned worse = 0;
	int rc = 1;

	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return usage(argv[0]);
		if (!strcmp(argv[i], "--mib"))
			mib = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--size"))
			only_size = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--only"))
			only = argv[i + 1];
		else if (!strcmp(argv[i], "--icount"))
			icount = strtoull(argv[i + 1], NULL, 0);
		else
			return usage(argv[0]);
	}
	if (!mib || (only && strcmp(only, "upmd") && strcmp(only, "dpdk")))
		return usage(argv[0]);

	if (upmd_eal_init((int)UPMD_DIM(upmd_args) - 1, upmd_args) < 0) {
		fprintf(stderr, "upmd_eal_init failed\n");
		return 1;
	}
	if (rte_eal_init((int)UPMD_DIM(dpdk_args) - 1, dpdk_args) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		goto out_upmd;
	}
	up_dev = (int16_t)upmd_dma_get_dev_id_by_name("dma_sw0");
	dp_dev = (int16_t)rte_dma_get_dev_id_by_name("dma_skeleton");
	if (up_dev < 0 || dp_dev < 0) {
		/* Debian's EAL loads every PMD from its plugin directory,
		 * the skeleton among them; the --vdev above creates it with
		 * its copy thread pinned to lcore 1, as dma_sw's engine. */
		fprintf(stderr, "no dma_sw0 (%d) or dma_skeleton (%d): is librte_dma_skeleton.so in "
			"/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0?\n", up_dev, dp_dev);
		goto out_dpdk;
	}
	if (upmd_memzone_reserve("bsrc", 2 * WINDOW, UPMD_SOCKET_ID_ANY, 4096, &uz_src) < 0 ||
	    upmd_memzone_reserve("bdst", 2 * WINDOW, UPMD_SOCKET_ID_ANY, 4096, &uz_dst) < 0 ||
	    !(dz_src = rte_memzone_reserve_aligned("bsrc", 2 * WINDOW, SOCKET_ID_ANY, 0, 4096)) ||
	    !(dz_dst = rte_memzone_reserve_aligned("bdst", 2 * WINDOW, SOCKET_ID_ANY, 0, 4096))) {
		fprintf(stderr, "memzone reserve failed\n");
		goto out_dpdk;
	}
	up_src = uz_src->addr;
	up_dst = uz_dst->addr;
	up_src_iova = uz_src->iova;
	up_dst_iova = uz_dst->iova;
	dp_src = dz_src->addr;
	dp_dst = dz_dst->addr;
	randomise(up_src, WINDOW, 1);
	randomise(dp_src, WINDOW, 1);

	if (icount) {
		uint32_t size = only_size ? only_size : 64;
		bool is_upmd = !only || !strcmp(only, "upmd");

		if ((is_upmd ? upmd_dev_start() : dpdk_dev_start()) < 0) {
			fprintf(stderr, "device start failed\n");
			goto out_dpdk;
		}
		rc = icount_run(is_upmd, size) < 0;
		if (is_upmd)
			upmd_dma_stop(up_dev);
		else
			rte_dma_stop(dp_dev);
		goto out_dpdk;
	}

	printf("upmd dma_sw vs %s dma_skeleton: copies, batches of %u, ring %u, engines on lcore 1, "
	       "%" PRIu64 " MiB a run, %d runs, median\n", rte_version(), BATCH, RING, mib, RUNS);
	printf("%-8s %12s %12s %10s %10s %8s\n", "size", "upmd GB/s", "DPDK GB/s", "upmd Mop/s", "DPDK Mop/s",
	       "ratio");
	for (unsigned s = 0; s < UPMD_DIM(sizes); s++) {
		uint32_t size = sizes[s];
		uint64_t n = (mib << 20) / size / BATCH * BATCH;
		double u[RUNS], d[RUNS], q[RUNS], ratio;

		if (only_size && size != only_size)
			continue;
		/* Warm up, and check that both really copy. */
		memset(up_dst, 0, WINDOW);
		memset(dp_dst, 0, WINDOW);
		if (upmd_dev_start() < 0 || upmd_run(size, WINDOW / size) < 0 || upmd_dma_stop(up_dev) < 0 ||
		    dpdk_dev_start() < 0 || dpdk_run(size, WINDOW / size) < 0 || rte_dma_stop(dp_dev) < 0) {
			fprintf(stderr, "warm-up failed\n");
			goto out_dpdk;
		}
		if (memcmp(up_dst, up_src, WINDOW) || memcmp(dp_dst, dp_src, WINDOW)) {
			fprintf(stderr, "%u B: the destination does not hold the source (upmd %s, DPDK %s)\n", size,
				memcmp(up_dst, up_src, WINDOW) ? "wrong" : "ok",
				memcmp(dp_dst, dp_src, WINDOW) ? "wrong" : "ok");
			goto out_dpdk;
		}
		for (int r = 0; r < RUNS; r++) {
			upmd_dev_start();
			u[r] = upmd_run(size, n);
			upmd_dma_stop(up_dev);
			dpdk_dev_start();
			d[r] = dpdk_run(size, n);
			rte_dma_stop(dp_dev);
			if (u[r] < 0 || d[r] < 0) {
				fprintf(stderr, "a copy failed\n");
				goto out_dpdk;
			}
			q[r] = u[r] / d[r];
		}
		ratio = median(q);
		worse += ratio < 1.0;
		printf("%-8u %12.2f %12.2f %10.2f %10.2f %8.2f%s\n", size, median(u), median(d),
		       median(u) * 1e3 / size, median(d) * 1e3 / size, ratio, ratio < 1.0 ? "  *" : "");
	}
	printf("goal: every ratio >= 1.0 (upmd at least as fast); %u below%s\n", worse, worse ? " (marked *)" : "");
	rc = 0;
out_dpdk:
	if (dp_dev >= 0)
		rte_dma_close(dp_dev);
	rte_eal_cleanup();
out_upmd:
	upmd_eal_cleanup();
	return rc;
}
