/* upmd-nvme-perf's I/O loop: keep io-depth requests outstanding per queue pair, time each one, write and check the verify pattern. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "perf.h"

static volatile int stop_all_flag;
static unsigned barrier_arrived;
static uint64_t prefill_failed;
static int first_error_told, first_mismatch_told;

void perf_stop_all(void)
{
	__atomic_store_n(&stop_all_flag, 1, __ATOMIC_RELAXED);
}

static inline bool must_stop(void)
{
	return quit_signal || __atomic_load_n(&stop_all_flag, __ATOMIC_RELAXED);
}

/* ---- random numbers and the pattern ---- */

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A uniform value in [0, n) without a division. */
static inline uint64_t below(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#define WEYL 0x9e3779b97f4a7c15ull

/* Every word of every block is distinct across blocks, namespaces and
 * runs (the seed), so stale data, a block from the wrong LBA and a
 * shifted copy all mismatch. It depends on nothing else: writes racing
 * reads of the same block on other queues always carry the same bytes,
 * so a read is checkable whatever order the device ran them in. */
static inline uint64_t block_key(uint32_t nsid, uint64_t lba)
{
	return mix64(pc.seed ^ mix64(((uint64_t)nsid << 48) ^ lba));
}

uint64_t perf_pattern_word(uint32_t nsid, uint64_t lba, uint64_t word)
{
	return block_key(nsid, lba) + word * WEYL;
}

static void fill_pattern(const struct ns_ctx *c, struct req *r)
{
	uint64_t *p = (uint64_t *)(void *)r->buf;
	uint32_t words = c->sector_size / 8, b, w;

	for (b = 0; b < r->nblocks; b++) {
		uint64_t key = block_key(c->nsid, r->lba + b);

		for (w = 0; w < words; w++)
			*p++ = key + (uint64_t)w * WEYL;
	}
}

static void tell_mismatch(const struct ns_ctx *c, uint64_t lba, uint32_t word, uint64_t exp, uint64_t got)
{
	unsigned byte;

	for (byte = 0; byte < 8; byte++)
		if (((exp >> (8 * byte)) & 0xff) != ((got >> (8 * byte)) & 0xff))
			break;
	if (__atomic_exchange_n(&first_mismatch_told, 1, __ATOMIC_RELAXED))
		return;
	fprintf(stderr,
		"verify: first mismatch: %s nsid %" PRIu32 " LBA %" PRIu64 " byte %u of the block (offset %" PRIu64
		" in the namespace): expected 0x%02x got 0x%02x (8 bytes at %u: expected 0x%016" PRIx64 " got 0x%016" PRIx64
		"; lcore %u)\n",
		c->dev, c->nsid, lba, word * 8 + byte, lba * c->sector_size + word * 8 + byte,
		(unsigned)((exp >> (8 * byte)) & 0xff), (unsigned)((got >> (8 * byte)) & 0xff), word * 8, exp, got,
		c->lcore);
}

static void check_pattern(struct ns_ctx *c, const struct req *r)
{
	const uint64_t *p = (const uint64_t *)(const void *)r->buf;
	uint32_t words = c->sector_size / 8, b, w;

	c->verify_reads++;
	for (b = 0; b < r->nblocks; b++, p += words) {
		uint64_t key = block_key(c->nsid, r->lba + b);

		c->verify_blocks++;
		for (w = 0; w < words; w++)
			if (upmd_unlikely(p[w] != key + (uint64_t)w * WEYL)) {
				c->mismatches++;
				tell_mismatch(c, r->lba + b, w, key + (uint64_t)w * WEYL, p[w]);
				break;
			}
	}
}

/* ---- submission and completion ---- */

static void tell_error(const struct ns_ctx *c, const struct req *r, const struct upmd_nvme_cpl *cpl, int rc)
{
	if (__atomic_exchange_n(&first_error_told, 1, __ATOMIC_RELAXED))
		return;
	if (cpl)
		fprintf(stderr,
			"first I/O error: %s of LBA %" PRIu64 " (%" PRIu32 " blocks) on %s nsid %" PRIu32
			", lcore %u: %s (SCT 0x%x SC 0x%02x%s)\n",
			r->is_read ? "read" : "write", r->lba, r->nblocks, c->dev, c->nsid, c->lcore,
			upmd_nvme_status_str(cpl->status), UPMD_NVME_STATUS_SCT(cpl->status),
			UPMD_NVME_STATUS_SC(cpl->status), UPMD_NVME_STATUS_DNR(cpl->status) ? ", do not retry" : "");
	else
		fprintf(stderr,
			"first I/O error: %s of LBA %" PRIu64 " (%" PRIu32 " blocks) on %s nsid %" PRIu32
			", lcore %u could not be submitted: %s; that queue pair stops\n",
			r->is_read ? "read" : "write", r->lba, r->nblocks, c->dev, c->nsid, c->lcore, strerror(-rc));
}

static void io_done(void *arg, const struct upmd_nvme_cpl *cpl);

static void submit(struct ns_ctx *c, struct req *r)
{
	int rc;

	r->tsc = tsc_now();
	if (r->is_read)
		rc = upmd_nvme_ns_cmd_read(c->ns, c->qp, r->buf, r->lba, r->nblocks, io_done, r, 0);
	else
		rc = upmd_nvme_ns_cmd_write(c->ns, c->qp, r->buf, r->lba, r->nblocks, io_done, r, 0);
	if (upmd_likely(rc == 0)) {
		r->inflight = true;
		c->outstanding++;
		return;
	}
	if (rc == -EAGAIN) {
		/* Every tracker busy (a driver may hold the tracker of the
		 * request completing while its callback runs): retried by the loop. */
		if (!r->pending) {
			r->pending = true;
			c->n_pending++;
		}
		return;
	}
	c->errors++;
	c->dead = true;
	if (c->prefill)
		__atomic_add_fetch(&prefill_failed, 1, __ATOMIC_RELAXED);
	tell_error(c, r, NULL, rc);
}

uint64_t perf_prefill_failed(void)
{
	return __atomic_load_n(&prefill_failed, __ATOMIC_ACQUIRE);
}

/* Choose the next I/O of the workload into @r and submit it. */
static void next_io(struct ns_ctx *c, struct req *r)
{
	uint64_t slot;

	if (wl_random(pc.workload)) {
		slot = below(xorshift(&c->rng), c->n_ios);
	} else {
		slot = c->seq_next;
		if (++c->seq_next == c->n_ios)
			c->seq_next = 0;
	}
	r->lba = slot * c->io_blocks;
	r->nblocks = c->io_blocks;
	if (pc.rwmixread >= 100)
		r->is_read = true;
	else if (pc.rwmixread == 0)
		r->is_read = false;
	else
		r->is_read = below(xorshift(&c->rng), 100) < pc.rwmixread;
	if (!r->is_read && pc.verify)
		fill_pattern(c, r);
	submit(c, r);
}

static void next_prefill(struct ns_ctx *c, struct req *r)
{
	uint64_t lba = c->pf_next * c->pf_blocks;

	c->pf_next += c->pf_step;
	r->lba = lba;
	r->nblocks = (uint32_t)UPMD_MIN((uint64_t)c->pf_blocks, c->region_blocks - lba);
	r->is_read = false;
	fill_pattern(c, r);
	submit(c, r);
}

static void record(struct ns_ctx *c, const struct req *r, uint64_t lat)
{
	struct perf_stats *s = &c->st;

	s->ios++;
	if (r->is_read)
		s->reads++;
	else
		s->writes++;
	s->bytes += (uint64_t)r->nblocks * c->sector_size;
	s->lat_sum += lat;
	if (lat < s->lat_min)
		s->lat_min = lat;
	if (lat > s->lat_max)
		s->lat_max = lat;
	s->hist[hist_index(lat)]++;
}

static void io_done(void *arg, const struct upmd_nvme_cpl *cpl)
{
	struct req *r = arg;
	struct ns_ctx *c = r->ctx;
	uint64_t now = tsc_now();

	if (upmd_unlikely(!r->inflight)) {
		/* The driver called back a request it had already completed:
		 * its data and timing mean nothing. */
		c->errors++;
		if (!__atomic_exchange_n(&first_error_told, 1, __ATOMIC_RELAXED))
			fprintf(stderr, "first I/O error: the driver completed a request twice (%s of LBA %" PRIu64
				" on %s nsid %" PRIu32 ", lcore %u, status %s)\n", r->is_read ? "read" : "write", r->lba,
				c->dev, c->nsid, c->lcore, upmd_nvme_status_str(cpl->status));
		return;
	}
	r->inflight = false;
	c->outstanding--;
	if (upmd_unlikely(upmd_nvme_cpl_is_error(cpl))) {
		c->errors++;
		tell_error(c, r, cpl, 0);
	} else if (r->is_read && pc.verify) {
		check_pattern(c, r);
	}
	if (c->prefill) {
		c->pf_writes++;
		if (upmd_nvme_cpl_is_error(cpl))
			__atomic_add_fetch(&prefill_failed, 1, __ATOMIC_RELAXED);
		if (!c->draining && !c->dead && c->pf_next < c->pf_chunks)
			next_prefill(c, r);
		return;
	}
	if (c->measuring)
		record(c, r, now - r->tsc);
	if (!c->draining && !c->dead)
		next_io(c, r);
}

/* ---- the loop ---- */

static void reset_stats(struct ns_ctx *c, uint64_t now)
{
	memset(&c->st, 0, sizeof(c->st));
	c->st.lat_min = UINT64_MAX;
	c->t_start = now;
	c->measuring = true;
}

static void poll_ctx(struct ns_ctx *c)
{
	unsigned i;
	int rc;

	if (!c->qp)
		return;
	rc = upmd_nvme_qpair_process_completions(c->qp, 0);
	if (upmd_unlikely(rc < 0)) {
		if (!c->dead)
			fprintf(stderr, "%s nsid %" PRIu32 ", lcore %u: polling the queue pair failed: %s%s\n", c->dev,
				c->nsid, c->lcore, strerror(-rc),
				rc == -ENXIO ? " (the controller failed and could not be reset)" : "");
		c->errors += !c->dead;
		c->dead = true;
		/* -ENXIO: what was outstanding has completed (with an error). */
		c->outstanding = upmd_nvme_qpair_outstanding(c->qp);
		return;
	}
	if (upmd_unlikely(c->n_pending) && !c->draining && !c->dead)
		for (i = 0; i < pc.io_depth && c->n_pending; i++)
			if (c->reqs[i].pending) {
				c->reqs[i].pending = false;
				c->n_pending--;
				submit(c, &c->reqs[i]);
			}
}

/* Stop submitting and reap what is outstanding. The driver times a
 * request out (abort, then reset) by itself; this only bounds a driver
 * that would not. */
static void drain(struct lcore_work *w)
{
	uint64_t limit = tsc_now() + (uint64_t)(60.0 * tsc_hz);
	unsigned i;
	bool busy;

	for (i = 0; i < w->n_ctx; i++) {
		struct ns_ctx *c = w->ctx[i];

		c->draining = true;
		c->n_pending = 0;
		for (unsigned k = 0; k < pc.io_depth; k++)
			c->reqs[k].pending = false;
	}
	do {
		busy = false;
		for (i = 0; i < w->n_ctx; i++) {
			struct ns_ctx *c = w->ctx[i];

			if (!c->outstanding)
				continue;
			poll_ctx(c);
			busy |= c->outstanding != 0;
		}
	} while (busy && tsc_now() < limit);
	for (i = 0; i < w->n_ctx; i++)
		if (w->ctx[i]->outstanding) {
			fprintf(stderr, "%s nsid %" PRIu32 ", lcore %u: %" PRIu32 " I/Os still outstanding after 60 s of draining\n",
				w->ctx[i]->dev, w->ctx[i]->nsid, w->ctx[i]->lcore, w->ctx[i]->outstanding);
			w->ctx[i]->errors += w->ctx[i]->outstanding;
			if (w->ctx[i]->prefill)
				__atomic_add_fetch(&prefill_failed, w->ctx[i]->outstanding, __ATOMIC_RELAXED);
		}
}

static void prefill(struct lcore_work *w)
{
	unsigned i, k;
	bool busy;

	for (i = 0; i < w->n_ctx; i++) {
		struct ns_ctx *c = w->ctx[i];

		c->prefill = true;
		c->draining = false;
		c->pf_next = w->ctx[i]->lcore_idx;
		c->pf_step = w->n_lcores;
		for (k = 0; k < pc.io_depth && c->pf_next < c->pf_chunks && !c->dead; k++)
			next_prefill(c, &c->reqs[k]);
	}
	do {
		busy = false;
		for (i = 0; i < w->n_ctx; i++) {
			struct ns_ctx *c = w->ctx[i];

			if (must_stop())
				c->draining = true;
			poll_ctx(c);
			busy |= c->outstanding != 0 || (c->n_pending != 0 && !c->draining && !c->dead);
		}
	} while (busy);
	drain(w);
	for (i = 0; i < w->n_ctx; i++) {
		w->ctx[i]->prefill = false;
		w->ctx[i]->draining = false;
	}
}

/* Every lcore's part of the region is written before any lcore reads. */
static void barrier(unsigned n)
{
	__atomic_add_fetch(&barrier_arrived, 1, __ATOMIC_ACQ_REL);
	/* Yield: the model's device thread may share the CPUs. */
	while (__atomic_load_n(&barrier_arrived, __ATOMIC_ACQUIRE) < n)
		sched_yield();
}

int perf_lcore_main(void *arg)
{
	struct lcore_work *w = arg;
	uint64_t t0, warm_end, end, now;
	bool measuring;
	unsigned i, k;

	if (pc.verify && pc.rwmixread > 0) {
		prefill(w);
		barrier(w->n_lcores);
		/* A block whose prefill write failed holds unknown data: no
		 * read of the region could be checked, so nothing is run. */
		if (perf_prefill_failed())
			perf_stop_all();
	}

	t0 = tsc_now();
	warm_end = t0 + (uint64_t)(pc.warmup_s * tsc_hz);
	end = pc.time_s > 0 ? warm_end + (uint64_t)(pc.time_s * tsc_hz) : UINT64_MAX;
	measuring = pc.warmup_s <= 0;
	for (i = 0; i < w->n_ctx; i++) {
		struct ns_ctx *c = w->ctx[i];

		reset_stats(c, t0);
		c->measuring = measuring;
		c->t_end = t0;
		if (must_stop())
			continue;
		for (k = 0; k < pc.io_depth && !c->dead; k++)
			next_io(c, &c->reqs[k]);
	}
	while (!must_stop()) {
		unsigned live = 0;

		for (i = 0; i < w->n_ctx; i++) {
			poll_ctx(w->ctx[i]);
			live += !w->ctx[i]->dead || w->ctx[i]->outstanding;
		}
		if (upmd_unlikely(!live))
			break;	/* every queue pair here failed: nothing left to time */
		now = tsc_now();
		if (upmd_unlikely(!measuring) && now >= warm_end) {
			for (i = 0; i < w->n_ctx; i++)
				reset_stats(w->ctx[i], now);
			measuring = true;
		}
		if (upmd_unlikely(now >= end))
			break;
	}
	now = tsc_now();
	for (i = 0; i < w->n_ctx; i++) {
		struct ns_ctx *c = w->ctx[i];

		if (!measuring)
			c->t_start = now;	/* stopped in the warm-up: nothing measured */
		c->t_end = now;
		c->measuring = false;	/* what completes while draining is not in the rates */
	}
	drain(w);
	return 0;
}

uint64_t perf_hist_quantile(const uint64_t *h, uint64_t n, double q, uint64_t min, uint64_t max)
{
	uint64_t want, seen = 0, low, width, v;
	unsigned i;

	if (!n)
		return 0;
	want = (uint64_t)(q * (double)n + 0.5);
	if (want < 1)
		want = 1;
	if (want > n)
		want = n;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen >= want)
			break;
	}
	if (i == HIST_BUCKETS)
		return max;
	hist_bucket(i, &low, &width);
	v = low + width / 2;
	return v < min ? min : v > max ? max : v;
}
