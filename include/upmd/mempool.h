/* Mempools: fixed-size objects in IOAS-mapped hugepage memory, a ring behind them, per-lcore caches in front. */
#ifndef UPMD_MEMPOOL_H
#define UPMD_MEMPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <upmd/common.h>
#include <upmd/eal.h>
#include <upmd/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef UPMD_BAD_IOVA
#define UPMD_BAD_IOVA UINT64_MAX
#endif

/*
 * A pool carves n objects from one memzone (so from memory the EAL has
 * already mapped into the IOAS, on the NUMA node asked for). Each object
 * is preceded by a header that knows its pool and its IOVA:
 *
 *   | header (16 bytes, or 32 with checks) | object (elt_size, rounded to 8) | [trailer cookie] |
 *
 * and no object crosses a page of the memzone's IOVA mapping that is not
 * contiguous (a memzone is IOVA-contiguous). Free objects live in a ring;
 * in front of it each lcore has a cache (an array used as a stack) so a
 * get or put of a few objects touches only the calling lcore's cache:
 *
 *   get n: from the cache; if it holds fewer, first refill it from the ring
 *          with enough for n plus cache_size;
 *   put n: onto the cache; when it reaches the flush threshold (1.5 x
 *          cache_size), everything above cache_size goes back to the ring.
 *
 * Non-EAL threads, and bulks larger than the cache, use the ring directly.
 *
 * With UPMD_MEMPOOL_F_DEBUG (set on every pool when the library is built
 * without NDEBUG) each header holds a cookie that says free or in use and
 * each object is followed by a trailer cookie: a put of a free object (a
 * double free), of an object not from this pool, or of one whose trailer
 * was overwritten (an overrun) is refused with a logged error and counted
 * in upmd_mempool_debug_errors(), and the object is not put back.
 */
#define UPMD_MEMPOOL_NAMESIZE 25
#define UPMD_MEMPOOL_CACHE_MAX_SIZE 512
#define UPMD_MEMPOOL_F_SP_PUT (1u << 0)		/* the ring is single-producer */
#define UPMD_MEMPOOL_F_SC_GET (1u << 1)		/* the ring is single-consumer */
#define UPMD_MEMPOOL_F_DEBUG (1u << 2)		/* cookies: double free and overrun checks */
#define UPMD_MEMPOOL_F_NO_IOVA (1u << 3)	/* objects need no IOVA (memory outside the IOAS is fine) */
/* No object crosses a 4 KiB page of IOVA space (NVMe PRP lists, DMA
 * descriptor rings that must not): objects are laid out at a power-of-two
 * stride of at most 4 KiB, so elt_size may be at most 4096 minus the
 * header (64 bytes) and, with debug checks, the trailer. */
#define UPMD_MEMPOOL_F_NO_PAGE_CROSS (1u << 4)
#define UPMD_MEMPOOL_PAGE_SIZE 4096u

struct upmd_mempool;

struct upmd_mempool_objhdr {
	struct upmd_mempool *mp;
	uint64_t iova;			/* of the object, UPMD_BAD_IOVA without an IOAS */
};

struct upmd_mempool_cache {
	uint32_t size;			/* what a refill leaves */
	uint32_t flushthresh;		/* a put that reaches it flushes down to size */
	uint32_t len;			/* objects held now */
	uint32_t pad_;
	/* A put may find it one short of the threshold and add a threshold's worth. */
	void *objs[UPMD_MEMPOOL_CACHE_MAX_SIZE * 3];
} __upmd_cache_aligned;

struct upmd_mempool {
	char name[UPMD_MEMPOOL_NAMESIZE + 3];
	/* 1: the inline get/put may use the lcore caches (there is a cache and
	 * no debug checks); 0: every call goes out of line. One field, so the
	 * fast path tests one thing. */
	uint32_t fast;
	struct upmd_ring *ring;		/* the free objects */
	uint32_t flags;
	uint32_t size;			/* objects */
	uint32_t elt_size;		/* usable bytes per object */
	uint32_t header_size;		/* bytes before each object */
	uint32_t trailer_size;		/* bytes after it (cookie, padding) */
	uint32_t total_elt_size;	/* header + object + trailer */
	uint32_t cache_size;
	uint32_t private_data_size;
	int socket_id;
	char *base;			/* the first header */
	uint64_t base_iova;		/* its IOVA */
	size_t len;			/* bytes of objects */
	const void *mz;			/* the memzone holding the objects */
	uint64_t debug_errors;
	void *priv;			/* private data area (private_data_size bytes) */
	struct upmd_mempool_cache cache[UPMD_MAX_LCORE];
};

/**
 * Create a pool of @n objects of @elt_size bytes on @socket_id, with a
 * per-lcore cache of @cache_size objects (0: none; at most
 * UPMD_MEMPOOL_CACHE_MAX_SIZE and n / 1.5). @obj_init, if not NULL, runs
 * once on each object. The EAL must be up.
 * @return 0 and *out; -EINVAL (bad name, size or flags; logged), -EEXIST
 * (the name is taken), -ENOMEM (no segment has room on that node: the log
 * says how much was asked), -ENODEV (no EAL).
 */
int upmd_mempool_create(const char *name, unsigned n, unsigned elt_size, unsigned cache_size,
			unsigned private_data_size, int socket_id, unsigned flags,
			void (*obj_init)(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx),
			void *obj_init_arg, struct upmd_mempool **out);

/** Free a pool (NULL: nothing). Objects still out are lost with it; the log says how many. */
void upmd_mempool_free(struct upmd_mempool *mp);
/** The pool called @name, or NULL. */
struct upmd_mempool *upmd_mempool_lookup(const char *name);

/** Call @fn on every object (free or in use), in address order. @return how many. */
unsigned upmd_mempool_obj_iter(struct upmd_mempool *mp,
			       void (*fn)(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx),
			       void *arg);

/** Free objects: in the ring plus every lcore cache (a snapshot). */
unsigned upmd_mempool_avail_count(const struct upmd_mempool *mp);
/** Objects in use (size - avail). */
unsigned upmd_mempool_in_use_count(const struct upmd_mempool *mp);
/** Puts refused by the debug checks so far. */
uint64_t upmd_mempool_debug_errors(const struct upmd_mempool *mp);
/** Return the calling lcore's cached objects to the ring. */
void upmd_mempool_cache_flush(struct upmd_mempool *mp);

/* out of line: refills, flushes, no cache or no EAL lcore, and the
 * checked paths of F_DEBUG pools */
int upmd_mempool_get_slow_(struct upmd_mempool *mp, void **objs, unsigned n);
void upmd_mempool_put_slow_(struct upmd_mempool *mp, void *const *objs, unsigned n);

static inline struct upmd_mempool_objhdr *upmd_mempool_hdr_(const void *obj)
{
	return (struct upmd_mempool_objhdr *)(uintptr_t)((const char *)obj - sizeof(struct upmd_mempool_objhdr));
}

/** The IOVA of @obj (no lookup: it is in the object's header). */
static inline uint64_t upmd_mempool_virt2iova(const void *obj)
{
	return upmd_mempool_hdr_(obj)->iova;
}

/** The pool @obj belongs to. */
static inline struct upmd_mempool *upmd_mempool_from_obj(const void *obj)
{
	return upmd_mempool_hdr_(obj)->mp;
}

/** The calling lcore's cache, or NULL (non-EAL thread, or no cache). */
static inline struct upmd_mempool_cache *upmd_mempool_default_cache(struct upmd_mempool *mp)
{
	unsigned id = upmd_lcore_id();

	if (upmd_unlikely(id >= UPMD_MAX_LCORE || !mp->cache_size))
		return NULL;
	return &mp->cache[id];
}

/* Copy @n pointers; the arrays never overlap. Four at a time, then the
 * rest by its bits, like the ring's copy, but through void * so that the
 * compiler knows the copy touches no cache counter and keeps the count it
 * just stored in a register from a get to the put that follows. */
static inline void upmd_mempool_copy_(void **__restrict dst, void *const *__restrict src, unsigned n)
{
	unsigned i = 0;

	for (; i + 4 <= n; i += 4) {
		dst[i] = src[i];
		dst[i + 1] = src[i + 1];
		dst[i + 2] = src[i + 2];
		dst[i + 3] = src[i + 3];
	}
	if (n & 2) {
		dst[i] = src[i];
		dst[i + 1] = src[i + 1];
		i += 2;
	}
	if (n & 1)
		dst[i] = src[i];
}

/* Copy @n pointers from below @top, last first (the hottest objects). */
static inline void upmd_mempool_copy_rev_(void **__restrict dst, void *const *__restrict top, unsigned n)
{
	unsigned i = 0;

	for (; i + 4 <= n; i += 4, top -= 4) {
		dst[i] = top[-1];
		dst[i + 1] = top[-2];
		dst[i + 2] = top[-3];
		dst[i + 3] = top[-4];
	}
	if (n & 2) {
		dst[i] = top[-1];
		dst[i + 1] = top[-2];
		i += 2;
		top -= 2;
	}
	if (n & 1)
		dst[i] = top[-1];
}

/* The calling lcore's cache if the inline path may use it, else NULL. */
static inline struct upmd_mempool_cache *upmd_mempool_fast_cache_(struct upmd_mempool *mp)
{
	unsigned id = upmd_lcore_id();

	if (upmd_unlikely(id >= UPMD_MAX_LCORE || !mp->fast))
		return NULL;
	return &mp->cache[id];
}

/**
 * Get @n objects (all or none). @return 0, or -ENOENT when the pool has
 * fewer free than @n (nothing taken). The usual case takes them from the
 * top of the calling lcore's cache (the objects put last, the likeliest
 * to be in the CPU's cache); a refill from the ring is out of line.
 */
static inline int upmd_mempool_get_bulk(struct upmd_mempool *mp, void **objs, unsigned n)
{
	struct upmd_mempool_cache *c = upmd_mempool_fast_cache_(mp);

	uint32_t len;

	if (upmd_unlikely(!c || (len = c->len) < n))
		return upmd_mempool_get_slow_(mp, objs, n);
	c->len = len - n;
	upmd_mempool_copy_rev_(objs, &c->objs[len], n);
	return 0;
}

/** Put back @n objects taken from this pool. The usual case pushes them
 * onto the calling lcore's cache; a put that reaches the flush threshold
 * (it then flushes down to cache_size) is out of line. */
static inline void upmd_mempool_put_bulk(struct upmd_mempool *mp, void *const *objs, unsigned n)
{
	struct upmd_mempool_cache *c = upmd_mempool_fast_cache_(mp);

	uint32_t len;

	/* len < flushthresh always holds between calls, so no wrap here. */
	if (upmd_unlikely(!c || n >= c->flushthresh - (len = c->len))) {
		upmd_mempool_put_slow_(mp, objs, n);
		return;
	}
	c->len = len + n;
	upmd_mempool_copy_(&c->objs[len], objs, n);
}

static inline int upmd_mempool_get(struct upmd_mempool *mp, void **obj)
{
	return upmd_mempool_get_bulk(mp, obj, 1);
}

static inline void upmd_mempool_put(struct upmd_mempool *mp, void *obj)
{
	upmd_mempool_put_bulk(mp, &obj, 1);
}

#ifdef __cplusplus
}
#endif
#endif /* UPMD_MEMPOOL_H */
