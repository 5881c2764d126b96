/* Mempools: carving objects from a memzone, the name registry, the checked (debug) get and put, counts. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/ioas.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/mempool.h>

#include "../eal/eal_private.h"

#define MP_LOG "mempool"
#define HDR_SIZE UPMD_CACHE_LINE_SIZE	/* objects start on a cache line */
#define COOKIE_FREE 0xf7eef7eef7eef7eeULL
#define COOKIE_USED 0x05ed05ed05ed05edULL
#define COOKIE_TAIL 0x7a11c00c1e7a11c0ULL

_Static_assert(sizeof(struct upmd_mempool_objhdr) + sizeof(uint64_t) <= HDR_SIZE,
	       "the header holds the object header and the debug cookie");

struct mp_entry {
	struct upmd_mempool *mp;
	struct mp_entry *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mp_entry *reg;

static inline uint64_t *cookie_of(const void *obj)
{
	return (uint64_t *)(uintptr_t)((const char *)obj - sizeof(struct upmd_mempool_objhdr) - sizeof(uint64_t));
}

static inline uint64_t *tail_of(const struct upmd_mempool *mp, const void *obj)
{
	return (uint64_t *)(uintptr_t)((const char *)obj + UPMD_ALIGN_UP(mp->elt_size, 8u));
}

static inline void *obj_at(const struct upmd_mempool *mp, unsigned i)
{
	return mp->base + (size_t)i * mp->total_elt_size + mp->header_size;
}

static bool name_ok(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strnlen(name, UPMD_MEMPOOL_NAMESIZE + 1);
	return n > 0 && n <= UPMD_MEMPOOL_NAMESIZE;
}

struct upmd_mempool *upmd_mempool_lookup(const char *name)
{
	struct upmd_mempool *mp = NULL;
	struct mp_entry *e;

	if (!name)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	for (e = reg; e; e = e->next)
		if (!strcmp(e->mp->name, name)) {
			mp = e->mp;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	return mp;
}

int upmd_mempool_create(const char *name, unsigned n, unsigned elt_size, unsigned cache_size,
			unsigned private_data_size, int socket_id, unsigned flags,
			void (*obj_init)(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx),
			void *obj_init_arg, struct upmd_mempool **out)
{
	const unsigned known = UPMD_MEMPOOL_F_SP_PUT | UPMD_MEMPOOL_F_SC_GET | UPMD_MEMPOOL_F_DEBUG |
			       UPMD_MEMPOOL_F_NO_IOVA | UPMD_MEMPOOL_F_NO_PAGE_CROSS;
	const struct upmd_memzone *mz = NULL;
	struct upmd_mempool *mp = NULL;
	struct mp_entry *e = NULL, *it;
	unsigned i, total, trailer;
	char zname[32];
	size_t bytes;
	int rc;

	if (!out || !name_ok(name) || !n || n > UPMD_RING_SZ_MASK / 2 || !elt_size ||
	    elt_size > (1u << 30) || (flags & ~known) || cache_size > UPMD_MEMPOOL_CACHE_MAX_SIZE ||
	    (uint64_t)cache_size * 3 / 2 > n) {
		UPMD_ERR(MP_LOG, "mempool \"%s\": bad arguments (name 1..%d characters, 1..2^30 objects of 1..2^30 bytes, cache at most %d and at most 2/3 of the objects, flags 0x%x unknown)",
			 name ? name : "(null)", UPMD_MEMPOOL_NAMESIZE, UPMD_MEMPOOL_CACHE_MAX_SIZE, flags & ~known);
		return -EINVAL;
	}
	if (!upmd_eal_initialized()) {
		UPMD_ERR(MP_LOG, "mempool \"%s\": initialise the EAL first (objects come from its memory)", name);
		return -ENODEV;
	}
#ifndef NDEBUG
	flags |= UPMD_MEMPOOL_F_DEBUG;
#endif
	trailer = (flags & UPMD_MEMPOOL_F_DEBUG) ? sizeof(uint64_t) : 0;
	total = UPMD_ALIGN_UP(HDR_SIZE + UPMD_ALIGN_UP(elt_size, 8u) + trailer, (unsigned)UPMD_CACHE_LINE_SIZE);
	if (flags & UPMD_MEMPOOL_F_NO_PAGE_CROSS) {
		/* A power-of-two stride divides the page and the memzone is
		 * page-aligned and IOVA-contiguous: every stride, header and
		 * object, lies inside one page in VA and in IOVA. */
		unsigned stride = UPMD_CACHE_LINE_SIZE;

		while (stride < total)
			stride *= 2;
		if (stride > UPMD_MEMPOOL_PAGE_SIZE) {
			UPMD_ERR(MP_LOG, "mempool \"%s\": objects of %u bytes cannot stay inside a 4 KiB page with their %u-byte header%s: at most %u bytes",
				 name, elt_size, HDR_SIZE, trailer ? " and debug trailer" : "",
				 UPMD_MEMPOOL_PAGE_SIZE - HDR_SIZE - trailer);
			return -EINVAL;
		}
		total = stride;
	}
	bytes = (size_t)n * total;

	/* The pool and its caches on the heap (an lcore's cache pages are
	 * touched only when it is used); the objects in a memzone. */
	if (posix_memalign((void **)&mp, UPMD_CACHE_LINE_SIZE, sizeof(*mp) + private_data_size))
		return -ENOMEM;
	memset(mp, 0, sizeof(*mp) + private_data_size);
	e = malloc(sizeof(*e));
	if (!e) {
		free(mp);
		return -ENOMEM;
	}
	snprintf(mp->name, sizeof(mp->name), "%s", name);
	mp->flags = flags;
	mp->size = n;
	mp->elt_size = elt_size;
	mp->header_size = HDR_SIZE;
	mp->trailer_size = total - HDR_SIZE - elt_size;
	mp->total_elt_size = total;
	mp->cache_size = cache_size;
	mp->fast = cache_size && !(flags & UPMD_MEMPOOL_F_DEBUG);
	mp->private_data_size = private_data_size;
	mp->priv = private_data_size ? (char *)mp + sizeof(*mp) : NULL;
	for (i = 0; i < UPMD_MAX_LCORE; i++) {
		mp->cache[i].size = cache_size;
		mp->cache[i].flushthresh = cache_size * 3 / 2;
	}

	pthread_mutex_lock(&reg_lock);
	for (it = reg; it; it = it->next)
		if (!strcmp(it->mp->name, name)) {
			rc = -EEXIST;
			goto err;
		}
	snprintf(zname, sizeof(zname), "MP_%s", name);
	rc = upmd_ring_create(zname, n, socket_id,
			      UPMD_RING_F_EXACT_SZ | ((flags & UPMD_MEMPOOL_F_SP_PUT) ? UPMD_RING_F_SP_ENQ : 0) |
				      ((flags & UPMD_MEMPOOL_F_SC_GET) ? UPMD_RING_F_SC_DEQ : 0),
			      &mp->ring);
	if (rc < 0)
		goto err;
	rc = upmd_memzone_reserve(zname, bytes, socket_id, 4096, &mz);
	if (rc < 0) {
		UPMD_ERR(MP_LOG, "mempool \"%s\": no memory for %u objects of %u bytes (%zu KiB) on socket %d: %s; reserve more hugepage memory (-m, --socket-mem) or ask for fewer objects",
			 name, n, elt_size, bytes >> 10, socket_id, strerror(-rc));
		goto err;
	}
	if (mz->iova == UPMD_BAD_IOVA && !(flags & UPMD_MEMPOOL_F_NO_IOVA) && upmd_ioas_default())
		UPMD_WARN(MP_LOG, "mempool \"%s\": its memory has no IOVA", name);
	mp->mz = mz;
	mp->base = mz->addr;
	mp->base_iova = mz->iova;
	mp->len = bytes;
	mp->socket_id = mz->socket_id;

	for (i = 0; i < n; i++) {
		void *obj = obj_at(mp, i);
		struct upmd_mempool_objhdr *h = upmd_mempool_hdr_(obj);
		uint64_t off = (uint64_t)((char *)obj - mp->base);

		h->mp = mp;
		h->iova = mz->iova == UPMD_BAD_IOVA ? UPMD_BAD_IOVA : mz->iova + off;
		if (flags & UPMD_MEMPOOL_F_DEBUG) {
			*cookie_of(obj) = COOKIE_FREE;
			*tail_of(mp, obj) = COOKIE_TAIL;
		}
		if (obj_init)
			obj_init(mp, obj_init_arg, obj, i);
		upmd_ring_enqueue_bulk(mp->ring, &obj, 1, NULL);
	}
	e->mp = mp;
	e->next = reg;
	reg = e;
	pthread_mutex_unlock(&reg_lock);
	UPMD_DEBUG(MP_LOG, "mempool \"%s\": %u objects of %u bytes (%u with header) on socket %d, cache %u%s", name,
		   n, elt_size, total, mp->socket_id, cache_size,
		   (flags & UPMD_MEMPOOL_F_DEBUG) ? ", debug checks" : "");
	*out = mp;
	return 0;
err:
	pthread_mutex_unlock(&reg_lock);
	upmd_ring_free(mp->ring);
	free(e);
	free(mp);
	return rc;
}

unsigned upmd_mempool_avail_count(const struct upmd_mempool *mp)
{
	unsigned n = upmd_ring_count(mp->ring), i;

	if (mp->cache_size)
		for (i = 0; i < UPMD_MAX_LCORE; i++)
			n += __atomic_load_n(&mp->cache[i].len, __ATOMIC_RELAXED);
	return n > mp->size ? mp->size : n;
}

unsigned upmd_mempool_in_use_count(const struct upmd_mempool *mp)
{
	return mp->size - upmd_mempool_avail_count(mp);
}

uint64_t upmd_mempool_debug_errors(const struct upmd_mempool *mp)
{
	return __atomic_load_n(&mp->debug_errors, __ATOMIC_RELAXED);
}

void upmd_mempool_cache_flush(struct upmd_mempool *mp)
{
	struct upmd_mempool_cache *c = upmd_mempool_default_cache(mp);

	if (!c || !c->len)
		return;
	upmd_ring_enqueue_bulk(mp->ring, c->objs, c->len, NULL);
	c->len = 0;
}

unsigned upmd_mempool_obj_iter(struct upmd_mempool *mp,
			       void (*fn)(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx),
			       void *arg)
{
	unsigned i;

	for (i = 0; i < mp->size; i++)
		fn(mp, arg, obj_at(mp, i), i);
	return mp->size;
}

/* ---- the slow paths: the cache behind the inline fast path ---------------- */

static void put_cached(struct upmd_mempool *mp, void *const *objs, unsigned n)
{
	struct upmd_mempool_cache *c = upmd_mempool_default_cache(mp);

	if (upmd_unlikely(!c || n > c->flushthresh)) {
		upmd_ring_enqueue_bulk(mp->ring, objs, n, NULL);	/* the ring holds every object: it fits */
		return;
	}
	upmd_mempool_copy_(&c->objs[c->len], objs, n);
	c->len += n;
	if (c->len >= c->flushthresh) {
		upmd_ring_enqueue_bulk(mp->ring, &c->objs[c->size], c->len - c->size, NULL);
		c->len = c->size;
	}
}

static int get_cached(struct upmd_mempool *mp, void **objs, unsigned n)
{
	struct upmd_mempool_cache *c = upmd_mempool_default_cache(mp);

	if (!c || n > c->size)
		return upmd_ring_dequeue_bulk(mp->ring, objs, n, NULL) ? 0 : -ENOENT;
	if (c->len < n) {
		/* Refill to cache_size beyond what is asked; if the ring
		 * holds less, take what the request needs, or fail. */
		unsigned want = c->size + n - c->len;

		if (!upmd_ring_dequeue_bulk(mp->ring, &c->objs[c->len], want, NULL)) {
			want = n - c->len;
			if (!upmd_ring_dequeue_bulk(mp->ring, &c->objs[c->len], want, NULL))
				return -ENOENT;
		}
		c->len += want;
	}
	upmd_mempool_copy_rev_(objs, &c->objs[c->len], n);
	c->len -= n;
	return 0;
}

/* ---- the checked paths (UPMD_MEMPOOL_F_DEBUG) ---------------------------- */

static void debug_error(struct upmd_mempool *mp, const void *obj, const char *what)
{
	__atomic_add_fetch(&mp->debug_errors, 1, __ATOMIC_RELAXED);
	UPMD_ERR(MP_LOG, "mempool \"%s\": put of %p refused: %s", mp->name, obj, what);
}

/* Why @obj cannot be put back into @mp, or NULL if it can. */
static const char *put_refusal(const struct upmd_mempool *mp, const void *obj)
{
	const char *p = obj;

	if (!obj)
		return "a NULL object";
	if (p < mp->base + mp->header_size || p >= mp->base + mp->len ||
	    (size_t)(p - mp->base - mp->header_size) % mp->total_elt_size)
		return "not an object of this pool";
	if (*cookie_of(obj) == COOKIE_FREE)
		return "it is already free (a double free)";
	if (*cookie_of(obj) != COOKIE_USED || upmd_mempool_hdr_(obj)->mp != mp)
		return "its header was overwritten (an underrun of the object before it?)";
	if (*tail_of(mp, obj) != COOKIE_TAIL)
		return "the bytes after it were overwritten (an overrun)";
	return NULL;
}

static void put_checked(struct upmd_mempool *mp, void *const *objs, unsigned n)
{
	void *ok[64];
	unsigned i, k = 0;

	for (i = 0; i < n; i++) {
		const char *why = put_refusal(mp, objs[i]);

		if (why) {
			debug_error(mp, objs[i], why);
			continue;
		}
		*cookie_of(objs[i]) = COOKIE_FREE;
		ok[k++] = objs[i];
		if (k == UPMD_DIM(ok)) {
			put_cached(mp, ok, k);
			k = 0;
		}
	}
	if (k)
		put_cached(mp, ok, k);
}

static int get_checked(struct upmd_mempool *mp, void **objs, unsigned n)
{
	int rc = get_cached(mp, objs, n);
	unsigned i;

	if (rc < 0)
		return rc;
	for (i = 0; i < n; i++) {
		if (*cookie_of(objs[i]) != COOKIE_FREE || *tail_of(mp, objs[i]) != COOKIE_TAIL)
			UPMD_ERR(MP_LOG, "mempool \"%s\": free object %p was written while free (a use after free?)",
				 mp->name, objs[i]);
		*cookie_of(objs[i]) = COOKIE_USED;
		*tail_of(mp, objs[i]) = COOKIE_TAIL;
	}
	return 0;
}

int upmd_mempool_get_slow_(struct upmd_mempool *mp, void **objs, unsigned n)
{
	if (upmd_unlikely(mp->flags & UPMD_MEMPOOL_F_DEBUG))
		return get_checked(mp, objs, n);
	return get_cached(mp, objs, n);
}

void upmd_mempool_put_slow_(struct upmd_mempool *mp, void *const *objs, unsigned n)
{
	if (upmd_unlikely(mp->flags & UPMD_MEMPOOL_F_DEBUG))
		put_checked(mp, objs, n);
	else
		put_cached(mp, objs, n);
}

/* ---- free ------------------------------------------------------------------ */

static bool unregister(struct upmd_mempool *mp)
{
	struct mp_entry **pp, *e = NULL;

	pthread_mutex_lock(&reg_lock);
	for (pp = &reg; *pp; pp = &(*pp)->next)
		if ((*pp)->mp == mp) {
			e = *pp;
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	free(e);
	return e != NULL;
}

static void destroy(struct upmd_mempool *mp)
{
	unsigned out = upmd_mempool_in_use_count(mp);

	if (out)
		UPMD_WARN(MP_LOG, "mempool \"%s\" freed with %u of %u objects still in use", mp->name, out, mp->size);
	upmd_ring_free(mp->ring);
	upmd_memzone_free(mp->mz);
	free(mp);
}

void upmd_mempool_free(struct upmd_mempool *mp)
{
	if (!mp)
		return;
	if (!unregister(mp)) {
		UPMD_ERR(MP_LOG, "mempool %p is not a live pool: left alone", (void *)mp);
		return;
	}
	destroy(mp);
}

void eal_mempool_cleanup(void)
{
	for (;;) {
		struct upmd_mempool *mp;

		pthread_mutex_lock(&reg_lock);
		mp = reg ? reg->mp : NULL;
		pthread_mutex_unlock(&reg_lock);
		if (!mp)
			break;
		UPMD_WARN(MP_LOG, "mempool \"%s\" was not freed before EAL cleanup: freeing it", mp->name);
		unregister(mp);
		destroy(mp);
	}
}
