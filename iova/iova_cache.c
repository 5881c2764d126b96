/*
 * Per-lcore magazine caches in front of the IOVA range allocator.
 *
 * Size classes are the powers of two from 4 KiB to UPMD_IOVA_CACHE_MAX_SIZE;
 * every IOVA of a class is aligned to its size (also when a non-EAL thread
 * takes it straight from the allocator, so any lcore may cache it later).
 * Each lcore has, per class, a loaded and a previous magazine of
 * UPMD_IOVA_MAG_SIZE entries, touched only by that lcore: the fast path is
 * a pop or push on the loaded magazine with no lock and no atomic. The
 * per-lcore state is cache-line aligned so lcores share no line. Behind
 * them, per class, a depot under a mutex holds full magazines (at most
 * DEPOT_MAX; beyond that a full magazine is returned to the allocator) and
 * a list of empty ones.
 *
 * Flushing: no thread may touch another lcore's magazines (that would need
 * a lock or atomic on the fast path), so upmd_iova_cache_flush() returns the
 * depot and the calling lcore's magazines at once, and raises a flush
 * generation; every other lcore returns its own magazines at its next
 * slow-path operation. destroy() requires that no cached call runs
 * concurrently and returns everything.
 *
 * Debug builds (the library built without NDEBUG) catch a double free, a
 * free of an IOVA the cache never handed out, and a free with the wrong
 * size, also for cached classes, where a magazine would otherwise take
 * the IOVA without a word: every IOVA handed out is recorded until it
 * comes back. The inline fast path cannot do that, so there the lcores'
 * slots that iova.h reads stay empty and every call comes out of line,
 * where the real magazines are kept apart.
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/eal.h>
#include <upmd/iova.h>
#include <upmd/log.h>

#define CLASS_SHIFT UPMD_IOVA_CACHE_CLASS_SHIFT
#define NCLASS UPMD_IOVA_CACHE_CLASSES	/* 4 KiB .. 4 MiB */
#define CLASS_MASK UPMD_IOVA_CACHE_CLASS_MASK
#define DEPOT_MAX 32
#define REFILL (UPMD_IOVA_MAG_SIZE / 2)

_Static_assert(UPMD_IOVA_CACHE_MAX_SIZE == 1ULL << (CLASS_SHIFT + NCLASS - 1), "class count");

/* The magazines and per-lcore slots are in iova.h: the fast path is inline there. */
#define mag upmd_iova_mag
#define slot upmd_iova_cache_slot
#define lcore_cache upmd_iova_cache_lcore

struct depot {
	pthread_mutex_t lock;
	struct mag *full;
	unsigned nfull;
	struct mag *empty;
} __upmd_cache_aligned;

#ifndef NDEBUG
#define LIVE_BUCKETS 4096u

struct live_node {
	uint64_t iova, size;
	struct live_node *next;
};

/* The IOVAs handed out and not yet given back. */
struct live {
	pthread_mutex_t lock;
	size_t n;
	struct live_node *b[LIVE_BUCKETS];
};
#endif

struct upmd_iova_cache {
	struct lcore_cache lc[UPMD_MAX_LCORE];	/* first: the inline fast path finds it at the start */
	struct upmd_iova_allocator *a;	/* read-mostly line */
	uint64_t gen;			/* flush generation; written only by flush */
	struct depot depot[NCLASS];
#ifndef NDEBUG
	struct lcore_cache dlc[UPMD_MAX_LCORE];	/* the magazines; lc[] stays empty */
	struct live live;
#endif
};

/* The magazines of @lcore: where the fast path sees them, or in debug
 * builds apart from it. */
#ifndef NDEBUG
#define LC(c, lcore) (&(c)->dlc[lcore])
#else
#define LC(c, lcore) (&(c)->lc[lcore])
#endif

_Static_assert(offsetof(struct upmd_iova_cache, lc) == 0, "the lcore caches open the cache");

static inline bool is_class(uint64_t size)
{
	return (size & CLASS_MASK) && !(size & (size - 1));
}

static inline unsigned class_of(uint64_t size)
{
	return (unsigned)__builtin_ctzll(size) - CLASS_SHIFT;
}

/* ---- the debug record of IOVAs handed out ---- */

#ifndef NDEBUG
static struct live_node **live_bucket(struct upmd_iova_cache *c, uint64_t iova)
{
	return &c->live.b[((iova >> CLASS_SHIFT) * 0x9e3779b97f4a7c15ULL) >> 52];
}

static int live_add(struct upmd_iova_cache *c, uint64_t iova, uint64_t size)
{
	struct live_node *n = malloc(sizeof(*n)), **b;

	if (!n)
		return -ENOMEM;
	n->iova = iova;
	n->size = size;
	pthread_mutex_lock(&c->live.lock);
	b = live_bucket(c, iova);
	n->next = *b;
	*b = n;
	c->live.n++;
	pthread_mutex_unlock(&c->live.lock);
	return 0;
}

/* Forget [iova, iova+size) if it was handed out exactly so. */
static bool live_del(struct upmd_iova_cache *c, uint64_t iova, uint64_t size)
{
	struct live_node **p, *n = NULL;

	pthread_mutex_lock(&c->live.lock);
	for (p = live_bucket(c, iova); *p; p = &(*p)->next) {
		if ((*p)->iova == iova && (*p)->size == size) {
			n = *p;
			*p = n->next;
			c->live.n--;
			break;
		}
	}
	pthread_mutex_unlock(&c->live.lock);
	free(n);
	return n != NULL;
}

static void live_clear(struct upmd_iova_cache *c)
{
	unsigned i;

	if (c->live.n)
		UPMD_DEBUG("iova", "cache destroyed with %zu IOVAs still handed out", c->live.n);
	for (i = 0; i < LIVE_BUCKETS; i++) {
		struct live_node *n = c->live.b[i], *next;

		for (; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	pthread_mutex_destroy(&c->live.lock);
}
#endif

/* ---- magazines ---- */

static void mag_drain(struct upmd_iova_cache *c, struct mag *m, uint64_t size)
{
	while (m->n) {
		uint64_t iova = m->iova[--m->n];
		int rc = upmd_iova_free(c->a, iova, size);

		if (rc < 0)
			UPMD_ERR("iova", "cached IOVA 0x%llx (size 0x%llx) was not allocated: %d "
				 "(double free or bad free through the cache)",
				 (unsigned long long)iova, (unsigned long long)size, rc);
	}
}

static struct mag *mag_get_empty(struct depot *d)
{
	struct mag *m;

	pthread_mutex_lock(&d->lock);
	m = d->empty;
	if (m)
		d->empty = m->next;
	pthread_mutex_unlock(&d->lock);
	if (!m) {
		m = malloc(sizeof(*m));
		if (!m)
			return NULL;
	}
	m->n = 0;
	m->next = NULL;
	return m;
}

static void mag_put_empty(struct depot *d, struct mag *m)
{
	pthread_mutex_lock(&d->lock);
	m->next = d->empty;
	d->empty = m;
	pthread_mutex_unlock(&d->lock);
}

static int slot_init(struct upmd_iova_cache *c, unsigned cls, struct slot *s)
{
	struct depot *d = &c->depot[cls];

	s->loaded = mag_get_empty(d);
	s->prev = s->loaded ? mag_get_empty(d) : NULL;
	if (!s->prev) {
		if (s->loaded)
			mag_put_empty(d, s->loaded);
		s->loaded = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void lcore_drain(struct upmd_iova_cache *c, struct lcore_cache *lc)
{
	unsigned k;

	for (k = 0; k < NCLASS; k++) {
		uint64_t size = 1ULL << (k + CLASS_SHIFT);

		if (lc->s[k].loaded)
			mag_drain(c, lc->s[k].loaded, size);
		if (lc->s[k].prev)
			mag_drain(c, lc->s[k].prev, size);
	}
}

/* Honour a flush another thread asked for. */
static inline void check_gen(struct upmd_iova_cache *c, struct lcore_cache *lc)
{
	uint64_t g = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);

	if (upmd_unlikely(lc->gen != g)) {
		lc->gen = g;
		lcore_drain(c, lc);
	}
}

/* ---- create / destroy / flush ---- */

int upmd_iova_cache_create(struct upmd_iova_allocator *a, struct upmd_iova_cache **out)
{
	struct upmd_iova_cache *c;
	unsigned k;

	if (!a || !out)
		return -EINVAL;
	if (posix_memalign((void **)&c, UPMD_CACHE_LINE_SIZE, sizeof(*c)))
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->a = a;
	for (k = 0; k < NCLASS; k++)
		pthread_mutex_init(&c->depot[k].lock, NULL);
#ifndef NDEBUG
	pthread_mutex_init(&c->live.lock, NULL);
#endif
	*out = c;
	return 0;
}

void upmd_iova_cache_flush(struct upmd_iova_cache *c)
{
	unsigned lcore = upmd_lcore_id(), k;
	uint64_t g;

	if (!c)
		return;
	g = __atomic_add_fetch(&c->gen, 1, __ATOMIC_ACQ_REL);
	if (lcore < UPMD_MAX_LCORE) {
		LC(c, lcore)->gen = g;
		lcore_drain(c, LC(c, lcore));
	}
	for (k = 0; k < NCLASS; k++) {
		struct depot *d = &c->depot[k];
		struct mag *m, *next;

		pthread_mutex_lock(&d->lock);
		m = d->full;
		d->full = NULL;
		d->nfull = 0;
		pthread_mutex_unlock(&d->lock);
		for (; m; m = next) {
			next = m->next;
			mag_drain(c, m, 1ULL << (k + CLASS_SHIFT));
			mag_put_empty(d, m);
		}
	}
}

static void mag_free_list(struct mag *m)
{
	struct mag *next;

	for (; m; m = next) {
		next = m->next;
		free(m);
	}
}

void upmd_iova_cache_destroy(struct upmd_iova_cache *c)
{
	unsigned i, k;

	if (!c)
		return;
	for (i = 0; i < UPMD_MAX_LCORE; i++) {
		lcore_drain(c, LC(c, i));
		for (k = 0; k < NCLASS; k++) {
			free(LC(c, i)->s[k].loaded);
			free(LC(c, i)->s[k].prev);
		}
	}
	for (k = 0; k < NCLASS; k++) {
		struct depot *d = &c->depot[k];
		struct mag *m;

		for (m = d->full; m; m = m->next)
			mag_drain(c, m, 1ULL << (k + CLASS_SHIFT));
		mag_free_list(d->full);
		mag_free_list(d->empty);
		pthread_mutex_destroy(&d->lock);
	}
#ifndef NDEBUG
	live_clear(c);
#endif
	free(c);
}

/* ---- alloc ---- */

/* Straight to the allocator; on -ENOSPC flush every cache and retry once. */
static __attribute__((noinline)) int alloc_direct(struct upmd_iova_cache *c, uint64_t size, uint64_t *iova)
{
	uint64_t align = is_class(size) ? size : 0;
	int rc = upmd_iova_alloc(c->a, size, align, iova);

	if (rc == -ENOSPC) {
		upmd_iova_cache_flush(c);
		rc = upmd_iova_alloc(c->a, size, align, iova);
	}
	return rc;
}

static __attribute__((noinline)) int alloc_slow(struct upmd_iova_cache *c, unsigned lcore, uint64_t size,
						uint64_t *iova)
{
	unsigned cls = class_of(size);
	struct lcore_cache *lc = LC(c, lcore);
	struct slot *s = &lc->s[cls];
	struct depot *d = &c->depot[cls];
	struct mag *m;
	int rc = 0;

	check_gen(c, lc);
	if (!s->loaded && slot_init(c, cls, s) < 0)
		return alloc_direct(c, size, iova);
	if (!s->loaded->n) {
		if (s->prev->n) {
			m = s->loaded;
			s->loaded = s->prev;
			s->prev = m;
		} else {
			pthread_mutex_lock(&d->lock);
			m = d->full;
			if (m) {
				d->full = m->next;
				d->nfull--;
				s->loaded->next = d->empty;
				d->empty = s->loaded;
				s->loaded = m;
			}
			pthread_mutex_unlock(&d->lock);
		}
	}
	m = s->loaded;
	if (!m->n) {
		/* Refill from the allocator: several IOVAs for one trip here. */
		unsigned i;

		for (i = 0; i < REFILL; i++) {
			rc = upmd_iova_alloc(c->a, size, size, &m->iova[m->n]);
			if (rc < 0)
				break;
			m->n++;
		}
		if (!m->n) {
			if (rc != -ENOSPC)
				return rc;
			upmd_iova_cache_flush(c);
			return upmd_iova_alloc(c->a, size, size, iova);
		}
	}
	*iova = m->iova[--m->n];
	return 0;
}

static int cache_alloc(struct upmd_iova_cache *c, uint64_t size, uint64_t *iova)
{
	unsigned lcore = upmd_lcore_id();

	if (upmd_likely(lcore < UPMD_MAX_LCORE && is_class(size))) {
		struct mag *m = LC(c, lcore)->s[class_of(size)].loaded;

		if (upmd_likely(m && m->n)) {
			*iova = m->iova[--m->n];
			return 0;
		}
		return alloc_slow(c, lcore, size, iova);
	}
	return alloc_direct(c, size, iova);
}

/* ---- free ---- */

static __attribute__((noinline)) int free_slow(struct upmd_iova_cache *c, unsigned lcore, uint64_t iova,
					       uint64_t size)
{
	unsigned cls = class_of(size);
	struct lcore_cache *lc = LC(c, lcore);
	struct slot *s = &lc->s[cls];
	struct depot *d = &c->depot[cls];
	struct mag *m;
	bool depot_room;

	check_gen(c, lc);
	if (!s->loaded && slot_init(c, cls, s) < 0)
		return upmd_iova_free(c->a, iova, size);
	if (s->loaded->n == UPMD_IOVA_MAG_SIZE) {
		if (!s->prev->n) {
			m = s->loaded;
			s->loaded = s->prev;
			s->prev = m;
		} else {
			/* Trade the full magazine for an empty one at the depot. */
			pthread_mutex_lock(&d->lock);
			depot_room = d->nfull < DEPOT_MAX;
			m = depot_room ? d->empty : NULL;
			if (m) {
				d->empty = m->next;
				s->loaded->next = d->full;
				d->full = s->loaded;
				d->nfull++;
			}
			pthread_mutex_unlock(&d->lock);
			if (m) {
				m->n = 0;
				s->loaded = m;
			} else if (depot_room && (m = mag_get_empty(d)) != NULL) {
				pthread_mutex_lock(&d->lock);
				s->loaded->next = d->full;
				d->full = s->loaded;
				d->nfull++;
				pthread_mutex_unlock(&d->lock);
				s->loaded = m;
			} else {
				/* The depot is full (or no memory): give these back. */
				mag_drain(c, s->loaded, size);
			}
		}
	}
	m = s->loaded;
	m->iova[m->n++] = iova;
	return 0;
}

static int cache_free(struct upmd_iova_cache *c, uint64_t iova, uint64_t size)
{
	unsigned lcore = upmd_lcore_id();

	if (upmd_likely(lcore < UPMD_MAX_LCORE && is_class(size) && !(iova & (size - 1)))) {
		struct mag *m = LC(c, lcore)->s[class_of(size)].loaded;

		if (upmd_likely(m && m->n < UPMD_IOVA_MAG_SIZE)) {
			m->iova[m->n++] = iova;
			return 0;
		}
		return free_slow(c, lcore, iova, size);
	}
	return upmd_iova_free(c->a, iova, size);
}

int upmd_iova_cache_alloc_slow_(struct upmd_iova_cache *c, uint64_t size, uint64_t *iova)
{
	int rc = cache_alloc(c, size, iova);

#ifndef NDEBUG
	if (rc == 0 && live_add(c, *iova, size) < 0) {
		cache_free(c, *iova, size);
		rc = -ENOMEM;
	}
#endif
	return rc;
}

int upmd_iova_cache_free_slow_(struct upmd_iova_cache *c, uint64_t iova, uint64_t size)
{
#ifndef NDEBUG
	if (!live_del(c, iova, size)) {
		UPMD_ERR("iova", "IOVA 0x%llx (size 0x%llx) given back to the cache was not handed out by it "
			 "(a double free, a free of an IOVA never allocated, or the wrong size): refused",
			 (unsigned long long)iova, (unsigned long long)size);
		return -ENOENT;
	}
#endif
	return cache_free(c, iova, size);
}
