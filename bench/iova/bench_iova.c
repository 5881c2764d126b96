/*
 * bench/iova: the IOVA allocator, its magazine caches and the VA->IOVA
 * table, with DPDK 22.11's rte_mem_virt2iova measured in the same binary.
 * Prints one line per figure: the median of several runs, the target,
 * and the ratio where one is named. Never asserts a time.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_memory.h>
#include <rte_malloc.h>
#include <rte_version.h>
#include <valgrind/callgrind.h>

#include <upmd/eal.h>
#include <upmd/iova.h>
#include <upmd/log.h>

#define RUNS 7
#define LOOKUP_RUNS 21	/* short rounds, interleaved: more of them */
#define LIVE 10000
#define LOOKUP_SPAN (64ULL << 20)	/* 32 hugepage-sized chunks */
#define LOOKUPS 4096			/* addresses, cycled */

static struct upmd_iova_allocator *alloc;
static struct upmd_iova_cache *cache;
/* Per thread, so two lcores timing at once share no cache line here. */
static __thread volatile uint64_t sink;

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

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* xorshift64: cheap, reproducible. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- the cached pair ---- */

static double cached_pair_ns(uint64_t iters)
{
	uint64_t t0, i, iova;

	for (i = 0; i < 1000; i++) {	/* warm the magazines */
		upmd_iova_cache_alloc(cache, 4096, &iova);
		upmd_iova_cache_free(cache, iova, 4096);
	}
	t0 = now_ns();
	for (i = 0; i < iters; i++) {
		upmd_iova_cache_alloc(cache, 4096, &iova);
		sink = iova;
		upmd_iova_cache_free(cache, iova, 4096);
	}
	return (double)(now_ns() - t0) / (double)iters;
}

struct worker_arg {
	uint64_t iters;
	double ns;
};

static int cached_worker(void *p)
{
	struct worker_arg *w = p;

	w->ns = cached_pair_ns(w->iters);
	return 0;
}

/* ---- the uncached path with LIVE allocations ---- */

static double uncached_pair_ns(uint64_t iters)
{
	static uint64_t live[LIVE], live_sz[LIVE];
	uint64_t s = 42, t0, i, iova;
	unsigned k;
	double ns;

	for (k = 0; k < LIVE; k++) {
		live_sz[k] = (1 + rnd(&s) % 16) * 4096;
		if (upmd_iova_alloc(alloc, live_sz[k], 0, &live[k]) < 0)
			return -1;
	}
	/* Free every other one so the tree holds ~LIVE/2 free blocks too. */
	for (k = 0; k < LIVE; k += 2)
		upmd_iova_free(alloc, live[k], live_sz[k]);
	t0 = now_ns();
	for (i = 0; i < iters; i++) {
		uint64_t sz = (1 + (i & 7)) * 4096;

		upmd_iova_alloc(alloc, sz, 0, &iova);
		sink = iova;
		upmd_iova_free(alloc, iova, sz);
	}
	ns = (double)(now_ns() - t0) / (double)iters;
	for (k = 1; k < LIVE; k += 2)
		upmd_iova_free(alloc, live[k], live_sz[k]);
	return ns;
}

/* ---- VA -> IOVA ---- */

static void **lookup_addrs(char *base)
{
	static void *addrs[LOOKUPS];
	uint64_t s = 7;
	unsigned i;

	for (i = 0; i < LOOKUPS; i++)
		addrs[i] = base + rnd(&s) % LOOKUP_SPAN;
	return addrs;
}

/*
 * The same harness for every lookup: 8 lookups per turn of the loop, so
 * the loop's own counting weighs on each lookup an eighth as much, and
 * the sum of the results, so no lookup can be left out.
 */
#define LOOKUP_LOOP(iters, lookup)                                                      \
	do {                                                                            \
		uint64_t t0_ = now_ns(), acc_ = 0, i_;                                  \
                                                                                        \
		for (i_ = 0; i_ < (iters); i_ += 8) {                                   \
			void *const *p_ = &addrs[i_ & (LOOKUPS - 1)];                   \
                                                                                        \
			acc_ += lookup(p_[0]) + lookup(p_[1]) + lookup(p_[2]) + lookup(p_[3]); \
			acc_ += lookup(p_[4]) + lookup(p_[5]) + lookup(p_[6]) + lookup(p_[7]); \
		}                                                                       \
		sink = acc_;                                                            \
		return (double)(now_ns() - t0_) / (double)(iters);                     \
	} while (0)

static double upmd_lookup_ns(void **addrs, uint64_t iters)
{
	LOOKUP_LOOP(iters, upmd_iova_from_va);
}

static double dpdk_lookup_ns(void **addrs, uint64_t iters)
{
	LOOKUP_LOOP(iters, rte_mem_virt2iova);
}

/* What DPDK does to find the IOVA of an address when IOVA != VA
 * (rte_malloc_virt2iova in PA mode): find the memseg, add the offset. */
static inline uint64_t dpdk_memseg_iova(const void *a)
{
	const struct rte_memseg *ms = rte_mem_virt2memseg(a, NULL);

	return ms ? ms->iova + (uint64_t)((const char *)a - (const char *)ms->addr) : 0;
}

static double dpdk_memseg_ns(void **addrs, uint64_t iters)
{
	LOOKUP_LOOP(iters, dpdk_memseg_iova);
}

static int dpdk_init(void)
{
	char *args[] = { "upmd-bench-iova", "--no-huge", "-m", "128", "-l", "0", "--no-pci",
			 "--iova-mode=pa", "--file-prefix=upmd-bench", "--log-level=error", NULL };

	return rte_eal_init((int)(sizeof(args) / sizeof(args[0])) - 1, args);
}

/* ---- callgrind: instructions of one cached pair ---- */

static int callgrind_pairs(uint64_t n)
{
	uint64_t i, iova;

	for (i = 0; i < 1000; i++) {
		upmd_iova_cache_alloc(cache, 4096, &iova);
		upmd_iova_cache_free(cache, iova, 4096);
	}
	CALLGRIND_ZERO_STATS;
	CALLGRIND_TOGGLE_COLLECT;
	for (i = 0; i < n; i++) {
		upmd_iova_cache_alloc(cache, 4096, &iova);
		upmd_iova_cache_free(cache, iova, 4096);
	}
	CALLGRIND_TOGGLE_COLLECT;
	printf("callgrind: %" PRIu64 " cached pairs collected\n", n);
	return 0;
}

static void usage(const char *prg)
{
	printf("Usage: %s [--iters N] [--callgrind-pairs N]\n"
	       "  Runs every figure of the iova benchmark (medians of %d runs).\n"
	       "  --callgrind-pairs N only runs N cached pairs with collection on, for\n"
	       "  valgrind --tool=callgrind --collect-atstart=no (see bench/iova/run.sh).\n",
	       prg, RUNS);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iters", required_argument, NULL, 'i' },
		{ "callgrind-pairs", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *eal_args[] = { argv[0], "-l", "0-1", "--no-huge", "-m", "4", "--model", "",
			     "--log-level", "warning", NULL };
	struct upmd_iova_range ranges[2] = {
		{ 0, 0xfedfffffULL },
		{ 0xfef00000ULL, (1ULL << 39) - 1 },
	};
	double v[LOOKUP_RUNS], dv[LOOKUP_RUNS], mv[LOOKUP_RUNS], rdv[LOOKUP_RUNS], rmv[LOOKUP_RUNS], one, two;
	uint64_t iters = 2000000, cg = 0;
	struct worker_arg w = { 0 };
	unsigned r, worker;
	void **addrs;
	char *region;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			iters = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			cg = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (iters < 1000) {
		fprintf(stderr, "%s: --iters must be at least 1000\n", argv[0]);
		return 2;
	}
	rc = upmd_eal_init((int)(sizeof(eal_args) / sizeof(eal_args[0])) - 1, eal_args);
	if (rc < 0)
		return upmd_eal_exit_code(rc);
	if (upmd_iova_allocator_create(ranges, 2, 4096, 1ULL << 20, &alloc) < 0 ||
	    upmd_iova_cache_create(alloc, &cache) < 0) {
		fprintf(stderr, "%s: cannot create the allocator\n", argv[0]);
		return 1;
	}
	if (cg) {
		rc = callgrind_pairs(cg);
		goto out;
	}

	printf("upmd iova benchmark: %d runs each, median; %" PRIu64 " iterations per run\n", RUNS, iters);
	for (r = 0; r < RUNS; r++)
		v[r] = cached_pair_ns(iters);
	one = median(v, RUNS);
	printf("cached alloc+free pair (4 KiB, 1 lcore): %.2f ns (target <= 25 ns)\n", one);

	worker = upmd_lcore_count() > 1 ? 1 : 0;
	if (worker) {
		for (r = 0; r < RUNS; r++) {
			w.iters = iters;
			upmd_eal_remote_launch(cached_worker, &w, worker);
			v[r] = cached_pair_ns(iters);
			upmd_eal_wait_lcore(worker);
			v[r] = (v[r] + w.ns) / 2;
		}
		two = median(v, RUNS);
		printf("cached alloc+free pair, 2 lcores at once: %.2f ns per lcore, %.2fx of 1 lcore (target <= 1.2x)\n",
		       two, two / one);
	} else {
		printf("cached pair scaling: skipped, only one lcore\n");
	}

	for (r = 0; r < RUNS; r++)
		v[r] = uncached_pair_ns(iters / 10);
	printf("uncached alloc+free pair with %d live allocations: %.2f ns (target <= 300 ns)\n", LIVE,
	       median(v, RUNS));

	/* The same 64 MiB, laid out as DPDK lays out its memory: mapped in
	 * 2 MiB pieces at a compact IOVA. */
	rc = dpdk_init();
	if (rc < 0) {
		fprintf(stderr, "%s: rte_eal_init failed (%d); DPDK comparison unavailable\n", argv[0], rc);
		rc = 1;
		goto out;
	}
	region = rte_malloc("upmd-bench", LOOKUP_SPAN, 2 << 20);
	if (!region) {
		fprintf(stderr, "%s: rte_malloc of %llu MiB failed\n", argv[0], LOOKUP_SPAN >> 20);
		rc = 1;
		goto out_dpdk;
	}
	rc = upmd_iova_table_set(region, 1ULL << 30, LOOKUP_SPAN);
	if (rc < 0) {
		fprintf(stderr, "%s: upmd_iova_table_set: %s\n", argv[0], strerror(-rc));
		goto out_free;
	}
	addrs = lookup_addrs(region);
	/* Interleaved rounds, so a slow spell of the machine (a shared host)
	 * weighs on all three alike; each ratio is the median of the rounds'
	 * ratios. */
	for (r = 0; r < LOOKUP_RUNS; r++) {
		v[r] = upmd_lookup_ns(addrs, iters * 10);
		dv[r] = dpdk_lookup_ns(addrs, iters);
		mv[r] = dpdk_memseg_ns(addrs, iters);
		rdv[r] = dv[r] / v[r];
		rmv[r] = mv[r] / v[r];
	}
	printf("VA->IOVA lookup: upmd_iova_from_va %.2f ns (target <= 3 ns), %s rte_mem_virt2iova %.2f ns (IOVA mode %s): %.1fx faster (target >= 10x)\n",
	       median(v, LOOKUP_RUNS), rte_version(), median(dv, LOOKUP_RUNS), rte_eal_iova_mode() == RTE_IOVA_PA ? "pa" : "va",
	       median(rdv, LOOKUP_RUNS));
	if (rte_eal_iova_mode() == RTE_IOVA_VA)
		printf("  (DPDK chose IOVA as VA, as it must --no-huge: there rte_mem_virt2iova returns its argument, a call and no lookup)\n");
	printf("VA->IOVA lookup vs DPDK's lookup when IOVA != VA (rte_mem_virt2memseg + offset, as rte_malloc_virt2iova in PA mode): %.2f ns: %.1fx faster (target >= 10x)\n",
	       median(mv, LOOKUP_RUNS), median(rmv, LOOKUP_RUNS));
	upmd_iova_table_clear(region, LOOKUP_SPAN);
	rc = 0;
out_free:
	rte_free(region);
out_dpdk:
	rte_eal_cleanup();
out:
	upmd_iova_cache_destroy(cache);
	upmd_iova_allocator_destroy(alloc);
	upmd_eal_cleanup();
	return rc ? 1 : 0;
}
