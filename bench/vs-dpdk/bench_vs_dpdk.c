/*
 * upmd and DPDK 22.11 side by side, in one process, on the same lcore:
 * rings (SP/SC and MP/MC, bulk 1, 8, 32), mempool get/put through the
 * per-lcore cache (bulk 1 and 32), mbuf alloc+free (bulk 32). Figures are
 * ns per element (per object, per mbuf), medians of RUNS rounds; each
 * round times upmd then DPDK back to back, and the last column is the
 * median of the rounds' upmd/DPDK ratios (goal: <= 1.0), so a slow spell
 * of a shared machine weighs on both alike. Printed, never asserted.
 *
 * Options: --iters N (elements per run), --only TEXT (only the figures
 * whose name contains TEXT), --bulk N (only that bulk size): with
 * valgrind --tool=callgrind, the last two isolate one figure so that
 * instructions per element can be read from upmd_*_run and dpdk_*_run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_version.h>

#include <upmd/upmd.h>

#define RUNS 7
#define RING_SIZE 4096
#define POOL_SIZE 8192
#define CACHE 256
#define MAX_BULK 32

static uint64_t iters = 4000000;
static volatile uint64_t sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(*v), cmp_double);
	return v[RUNS / 2];
}

/* One measurement: ns per element of @fn(arg, bulk, n). */
typedef double (*bench_fn)(void *arg, unsigned bulk, uint64_t n);

static const char *only;
static unsigned only_bulk;
static unsigned worse;

/* One figure: upmd's and DPDK's loops in interleaved rounds, one row. */
static void figure(const char *what, unsigned bulk, bench_fn ufn, void *uarg, bench_fn dfn, void *darg)
{
	double u[RUNS], d[RUNS], q[RUNS], ratio;
	uint64_t n = iters / bulk;

	if ((only && !strstr(what, only)) || (only_bulk && bulk != only_bulk))
		return;
	ufn(uarg, bulk, n / 10 + 1);	/* warm up */
	dfn(darg, bulk, n / 10 + 1);
	for (int r = 0; r < RUNS; r++) {
		u[r] = ufn(uarg, bulk, n);
		d[r] = dfn(darg, bulk, n);
		q[r] = u[r] / d[r];
	}
	ratio = median(q);
	worse += ratio > 1.0;
	printf("%-34s %5u %10.2f %10.2f %8.2f%s\n", what, bulk, median(u), median(d), ratio,
	       ratio > 1.0 ? "  *" : "");
}

/* ---- rings: enqueue a bulk, dequeue it ---- */

static double upmd_ring_run(void *arg, unsigned bulk, uint64_t n)
{
	struct upmd_ring *r = arg;
	void *objs[MAX_BULK];
	uint64_t t0, i;

	for (i = 0; i < MAX_BULK; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		upmd_ring_enqueue_bulk(r, objs, bulk, NULL);
		upmd_ring_dequeue_bulk(r, objs, bulk, NULL);
	}
	sink = (uintptr_t)objs[0];
	return (double)(now_ns() - t0) / (double)(n * bulk);
}

static double dpdk_ring_run(void *arg, unsigned bulk, uint64_t n)
{
	struct rte_ring *r = arg;
	void *objs[MAX_BULK];
	uint64_t t0, i;

	for (i = 0; i < MAX_BULK; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		rte_ring_enqueue_bulk(r, objs, bulk, NULL);
		rte_ring_dequeue_bulk(r, objs, bulk, NULL);
	}
	sink = (uintptr_t)objs[0];
	return (double)(now_ns() - t0) / (double)(n * bulk);
}

/* ---- mempools: get a bulk, put it back ---- */

static double upmd_pool_run(void *arg, unsigned bulk, uint64_t n)
{
	struct upmd_mempool *mp = arg;
	void *objs[MAX_BULK];
	uint64_t t0 = now_ns(), i;

	for (i = 0; i < n; i++) {
		if (upmd_mempool_get_bulk(mp, objs, bulk) == 0)
			upmd_mempool_put_bulk(mp, objs, bulk);
	}
	sink = (uintptr_t)objs[0];
	return (double)(now_ns() - t0) / (double)(n * bulk);
}

static double dpdk_pool_run(void *arg, unsigned bulk, uint64_t n)
{
	struct rte_mempool *mp = arg;
	void *objs[MAX_BULK];
	uint64_t t0 = now_ns(), i;

	for (i = 0; i < n; i++) {
		if (rte_mempool_get_bulk(mp, objs, bulk) == 0)
			rte_mempool_put_bulk(mp, objs, bulk);
	}
	sink = (uintptr_t)objs[0];
	return (double)(now_ns() - t0) / (double)(n * bulk);
}

/* ---- mbufs: allocate a bulk, free it ---- */

static double upmd_mbuf_run(void *arg, unsigned bulk, uint64_t n)
{
	struct upmd_mempool *mp = arg;
	struct upmd_mbuf *m[MAX_BULK];
	uint64_t t0 = now_ns(), i;

	for (i = 0; i < n; i++) {
		if (upmd_pktmbuf_alloc_bulk(mp, m, bulk) == 0)
			upmd_pktmbuf_free_bulk(m, bulk);
	}
	sink = (uintptr_t)m[0];
	return (double)(now_ns() - t0) / (double)(n * bulk);
}

static double dpdk_mbuf_run(void *arg, unsigned bulk, uint64_t n)
{
	struct rte_mempool *mp = arg;
	struct rte_mbuf *m[MAX_BULK];
	uint64_t t0 = now_ns(), i;

	for (i = 0; i < n; i++) {
		if (rte_pktmbuf_alloc_bulk(mp, m, bulk) == 0)
			rte_pktmbuf_free_bulk(m, bulk);
	}
	sink = (uintptr_t)m[0];
	return (double)(now_ns() - t0) / (double)(n * bulk);
}

int main(int argc, char **argv)
{
	char *upmd_args[] = { "upmd-bench-vs-dpdk", "-l", "0", "--no-huge", "-m", "128", "--log-level", "err", NULL };
	char *dpdk_args[] = { "upmd-bench-vs-dpdk", "--no-huge", "-m", "256", "-l", "0", "--no-pci",
			      "--file-prefix=upmd-vs-dpdk", "--log-level=error", NULL };
	static const unsigned bulks[] = { 1, 8, 32 };
	struct upmd_mempool *up_pool, *up_mbufs;
	struct rte_mempool *dp_pool, *dp_mbufs;
	int rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--iters"))
			iters = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--only"))
			only = argv[i + 1];
		else if (!strcmp(argv[i], "--bulk"))
			only_bulk = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else {
			fprintf(stderr, "usage: %s [--iters N] [--only TEXT] [--bulk N]\n", argv[0]);
			return 2;
		}
	}
	if ((argc - 1) % 2 || !iters) {
		fprintf(stderr, "usage: %s [--iters N] [--only TEXT] [--bulk N]\n", argv[0]);
		return 2;
	}
	if (upmd_eal_init((int)UPMD_DIM(upmd_args) - 1, upmd_args) < 0) {
		fprintf(stderr, "upmd_eal_init failed\n");
		return 1;
	}
	if (rte_eal_init((int)UPMD_DIM(dpdk_args) - 1, dpdk_args) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		goto out_upmd;
	}
	/* Both libraries see this thread as their main lcore, so both use
	 * their per-lcore caches. */
	if (upmd_lcore_id() >= UPMD_MAX_LCORE || rte_lcore_id() == LCORE_ID_ANY) {
		fprintf(stderr, "the measuring thread is not an lcore of both libraries\n");
		goto out_dpdk;
	}
	printf("upmd vs %s, same thread (lcore %u / %u), %d runs each, median; ns per element\n",
	       rte_version(), upmd_lcore_id(), rte_lcore_id(), RUNS);
	printf("%-34s %5s %10s %10s %8s\n", "figure", "bulk", "upmd", "DPDK", "ratio");

	for (int mp = 0; mp < 2; mp++) {
		struct upmd_ring *ur;
		struct rte_ring *dr;
		char name[64];

		if (upmd_ring_create(mp ? "mpmc" : "spsc", RING_SIZE, -1,
				     mp ? 0 : UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ, &ur) < 0 ||
		    !(dr = rte_ring_create(mp ? "mpmc" : "spsc", RING_SIZE, SOCKET_ID_ANY,
					   mp ? 0 : RING_F_SP_ENQ | RING_F_SC_DEQ))) {
			fprintf(stderr, "ring create failed\n");
			goto out_dpdk;
		}
		snprintf(name, sizeof(name), "ring %s enqueue+dequeue", mp ? "MP/MC" : "SP/SC");
		for (unsigned b = 0; b < UPMD_DIM(bulks); b++)
			figure(name, bulks[b], upmd_ring_run, ur, dpdk_ring_run, dr);
		upmd_ring_free(ur);
		rte_ring_free(dr);
	}

	if (upmd_mempool_create("pool", POOL_SIZE, 64, CACHE, 0, -1, 0, NULL, NULL, &up_pool) < 0 ||
	    !(dp_pool = rte_mempool_create("pool", POOL_SIZE, 64, CACHE, 0, NULL, NULL, NULL, NULL,
					   SOCKET_ID_ANY, 0))) {
		fprintf(stderr, "mempool create failed\n");
		goto out_dpdk;
	}
	figure("mempool get+put, per-lcore cache", 1, upmd_pool_run, up_pool, dpdk_pool_run, dp_pool);
	figure("mempool get+put, per-lcore cache", 32, upmd_pool_run, up_pool, dpdk_pool_run, dp_pool);

	if (upmd_pktmbuf_pool_create("mbufs", POOL_SIZE, CACHE, 0, UPMD_MBUF_DEFAULT_BUF_SIZE, -1, &up_mbufs) < 0 ||
	    !(dp_mbufs = rte_pktmbuf_pool_create("mbufs", POOL_SIZE, CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
						 SOCKET_ID_ANY))) {
		fprintf(stderr, "mbuf pool create failed\n");
		goto out_dpdk;
	}
	figure("mbuf alloc+free", 32, upmd_mbuf_run, up_mbufs, dpdk_mbuf_run, dp_mbufs);
	printf("goal: every ratio <= 1.0 (upmd at least as fast); %u above%s\n", worse, worse ? " (marked *)" : "");

	upmd_mempool_free(up_mbufs);
	rte_mempool_free(dp_mbufs);
	upmd_mempool_free(up_pool);
	rte_mempool_free(dp_pool);
	rc = 0;
out_dpdk:
	rte_eal_cleanup();
out_upmd:
	upmd_eal_cleanup();
	return rc;
}
