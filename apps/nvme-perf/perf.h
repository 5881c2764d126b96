/* upmd-nvme-perf's shared state: the run's configuration, one I/O context per (namespace, lcore), the clock and the latency histogram. */
#ifndef UPMD_NVME_PERF_H
#define UPMD_NVME_PERF_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <upmd/upmd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#define MAX_NSIDS 32
#define PREFILL_XFER (64u * 1024)	/* bytes a verify prefill write aims for */

enum workload { WL_READ, WL_WRITE, WL_RANDREAD, WL_RANDWRITE, WL_RW, WL_RANDRW, WL_COUNT };

struct perf_conf {
	uint32_t io_depth;
	uint32_t io_size;
	enum workload workload;
	unsigned rwmixread;		/* percent of I/Os that are reads */
	double time_s;			/* measured seconds; 0: until SIGINT/SIGTERM */
	double warmup_s;		/* seconds run before measuring */
	uint32_t nsids[MAX_NSIDS];	/* -n; none: every active namespace */
	unsigned n_nsids;
	bool verify;
	uint64_t verify_size;		/* bytes of each namespace verify works on */
	uint64_t seed;			/* of the verify pattern and the offsets */
	bool json, sgl;
};

extern struct perf_conf pc;
extern const char *const workload_names[WL_COUNT];
extern volatile sig_atomic_t quit_signal;
extern double tsc_hz;

static inline bool wl_random(enum workload w)
{
	return w == WL_RANDREAD || w == WL_RANDWRITE || w == WL_RANDRW;
}

static inline bool wl_mixed(enum workload w)
{
	return w == WL_RW || w == WL_RANDRW;
}

/* ---- the clock: TSC ticks, converted with tsc_hz (measured at start) ---- */

static inline uint64_t tsc_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* ---- latency histogram, log-linear over ticks (HDR style) ----
 * Values below 32 have a bucket each; above, every power-of-two range
 * [2^k, 2^(k+1)) is split into 32 equal sub-buckets, so a bucket is at
 * most 1/32 (3%) of its values wide, whatever the scale. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

static inline unsigned hist_index(uint64_t v)
{
	unsigned k, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	k = 63u - (unsigned)__builtin_clzll(v);
	shift = k - HIST_SUB_BITS;
	return (k - HIST_SUB_BITS + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* Lowest value of bucket @i and its width. */
static inline void hist_bucket(unsigned i, uint64_t *low, uint64_t *width)
{
	unsigned g = i / HIST_SUB, sub = i % HIST_SUB;

	if (g == 0) {
		*low = i;
		*width = 1;
		return;
	}
	*low = (uint64_t)(HIST_SUB + sub) << (g - 1);
	*width = 1ull << (g - 1);
}

/* ---- per (namespace, lcore) I/O ---- */

struct ns_ctx;

struct req {
	struct ns_ctx *ctx;
	uint8_t *buf;
	uint64_t lba;
	uint64_t tsc;			/* at submission */
	uint32_t nblocks;
	bool is_read;
	bool pending;			/* -EAGAIN: submit again from the loop */
	bool inflight;			/* submitted, its callback not yet run */
};

/* What the measured window counts (reset when the warm-up ends). */
struct perf_stats {
	uint64_t ios, reads, writes, bytes;
	uint64_t lat_sum, lat_min, lat_max;	/* ticks */
	uint64_t hist[HIST_BUCKETS];
};

/*
 * Written only by the lcore that owns it while the run lasts; read by the
 * main thread once every lcore has returned. Hot fields first.
 */
struct ns_ctx {
	struct upmd_nvme_ns *ns;
	struct upmd_nvme_qpair *qp;
	struct req *reqs;
	uint64_t rng;			/* xorshift64* state, never 0 */
	uint64_t n_ios;			/* io-size slots in the region */
	uint64_t seq_next;		/* next slot of a sequential workload */
	uint64_t region_blocks;
	uint32_t io_blocks;
	uint32_t sector_size;
	uint32_t nsid;
	uint32_t outstanding;
	uint32_t n_pending;
	bool measuring;			/* completions count in st */
	bool draining;			/* submit nothing more */
	bool dead;			/* a submission failed hard or the controller failed */
	bool prefill;			/* completions belong to the verify prefill */
	/* the verify prefill: chunks pf_next, pf_next + pf_step, ... */
	uint64_t pf_next, pf_step, pf_chunks;
	uint32_t pf_blocks;		/* blocks a prefill chunk holds */
	uint64_t pf_writes;

	struct perf_stats st;
	/* never reset: what went wrong over the whole run */
	uint64_t errors;		/* error completions and failed submissions */
	uint64_t verify_reads, verify_blocks, mismatches;
	uint64_t t_start, t_end;	/* the measured window, ticks */

	unsigned lcore;
	unsigned lcore_idx;		/* position among the working lcores */
	const char *dev;		/* the controller's PCI name */
	const struct upmd_memzone *mz;
	uint32_t buf_size;		/* bytes of one request's buffer */
} __upmd_cache_aligned;

/* The contexts one lcore drives. */
struct lcore_work {
	unsigned lcore;
	unsigned n_ctx;
	struct ns_ctx **ctx;
	unsigned n_lcores;		/* working lcores in the run */
	int rc;
} __upmd_cache_aligned;

/* Run the verify prefill (if any), the warm-up and the measured window on
 * the calling lcore, then drain. Launched on every working lcore. */
int perf_lcore_main(void *arg);

/* Verify prefill writes that failed (then the timed run is not started). */
uint64_t perf_prefill_failed(void);

/* Set when the run must end early on every lcore. */
void perf_stop_all(void);

/* The verify pattern of the block at @lba of namespace @nsid, 8 bytes at @word. */
uint64_t perf_pattern_word(uint32_t nsid, uint64_t lba, uint64_t word);

/* The latency in ticks at quantile @q (0..1) of @h holding @n values, the
 * middle of the bucket it falls in, clipped to [@min, @max]. */
uint64_t perf_hist_quantile(const uint64_t *h, uint64_t n, double q, uint64_t min, uint64_t max);

#endif /* UPMD_NVME_PERF_H */
