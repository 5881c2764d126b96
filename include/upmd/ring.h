/* Lock-free rings of pointers or fixed-size elements: single/multi producer and consumer, bulk and burst. */
#ifndef UPMD_RING_H
#define UPMD_RING_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A ring is an array of 2^k slots and two head/tail pairs, each 32-bit
 * counters that only grow (they wrap modulo 2^32; slot = counter & mask):
 *
 *   producers: prod.head (space reserved)  >= prod.tail (elements published)
 *   consumers: cons.head (elements claimed) >= cons.tail (slots released)
 *
 * An enqueue reserves [prod.head, prod.head + n) by moving prod.head (a
 * plain store for a single producer, a compare-and-swap for several),
 * writes the slots, then moves prod.tail past them. A dequeue does the
 * same with cons.head/cons.tail, reading the slots. Each side reads the
 * other side's tail only. With several producers each waits for the ones
 * that reserved before it to publish, so prod.tail moves in reservation
 * order and never past an unwritten slot; same for consumers.
 *
 * Bulk calls move all n or nothing; burst calls move as many as they can.
 * Without UPMD_RING_F_EXACT_SZ the count is a power of two and the ring
 * holds count - 1; with it the ring holds exactly count.
 */
#define UPMD_RING_NAMESIZE 28
#define UPMD_RING_F_SP_ENQ (1u << 0)	/* single producer */
#define UPMD_RING_F_SC_DEQ (1u << 1)	/* single consumer */
#define UPMD_RING_F_EXACT_SZ (1u << 2)	/* capacity is exactly the count asked for */
#define UPMD_RING_SZ_MASK 0x7fffffffu	/* the largest count */

struct upmd_ring_headtail {
	uint32_t head;
	uint32_t tail;
	uint32_t single;	/* 1: one thread only, no CAS, no waiting */
};

struct upmd_ring {
	char name[UPMD_RING_NAMESIZE + 4];
	uint32_t flags;
	uint32_t size;		/* slots, a power of two */
	uint32_t mask;		/* size - 1 */
	uint32_t capacity;	/* what it holds: size - 1, or the exact count */
	uint32_t esize;		/* bytes per element, a multiple of 4 */
	const void *mz;		/* the memzone holding it, if created in one */
	void *heap;		/* the allocation holding it, if on the heap */
	/* Producers and consumers each own two cache lines, so neither the
	 * line nor its adjacent-line prefetch partner is shared. */
	struct upmd_ring_headtail prod __attribute__((aligned(2 * UPMD_CACHE_LINE_SIZE)));
	struct upmd_ring_headtail cons __attribute__((aligned(2 * UPMD_CACHE_LINE_SIZE)));
	/* the slots follow, from the next pair of cache lines */
} __attribute__((aligned(2 * UPMD_CACHE_LINE_SIZE)));

/* Slots and callers' arrays are copied as 64-bit words whatever their
 * declared type (void *, a struct): may_alias keeps the compiler's
 * type-based alias analysis from reordering those copies. */
typedef uint64_t __attribute__((may_alias)) upmd_ring_word_;

static inline void *upmd_ring_slots_(const struct upmd_ring *r)
{
	return (void *)(uintptr_t)((const char *)r + sizeof(*r));
}

/**
 * Bytes a ring of @count elements of @esize bytes needs (header and
 * slots), for upmd_ring_init_elem() on memory of your own.
 * @return the size, or -EINVAL (esize not a non-zero multiple of 4, count
 * 0 or above UPMD_RING_SZ_MASK, or not a power of two when @exact is false).
 */
long upmd_ring_memsize_elem(unsigned esize, unsigned count, bool exact);

/**
 * Initialise a ring in @r (aligned to 128 bytes, upmd_ring_memsize_elem()
 * bytes). It is not registered by name. @return 0 or -EINVAL.
 */
int upmd_ring_init_elem(struct upmd_ring *r, const char *name, unsigned esize, unsigned count,
			unsigned flags);

/**
 * Create a named ring: from a memzone on @socket_id once the EAL is up
 * (UPMD_SOCKET_ID_ANY: the caller's node first), from the heap before.
 * @return 0 and *out; -EINVAL (bad name, size, esize or flags), -EEXIST
 * (the name is taken), -ENOMEM.
 */
int upmd_ring_create_elem(const char *name, unsigned esize, unsigned count, int socket_id,
			  unsigned flags, struct upmd_ring **out);
/** A ring of pointers (esize 8). */
int upmd_ring_create(const char *name, unsigned count, int socket_id, unsigned flags,
		     struct upmd_ring **out);
/** Free a ring made by upmd_ring_create*() (NULL: nothing). */
void upmd_ring_free(struct upmd_ring *r);
/** The ring called @name, or NULL. */
struct upmd_ring *upmd_ring_lookup(const char *name);
/** Empty the ring; no enqueue or dequeue may run concurrently. */
void upmd_ring_reset(struct upmd_ring *r);

static inline void upmd_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* ---- the data path ------------------------------------------------------ */

/* Copy @n 64-bit words between arrays that never overlap. Four at a time,
 * then the rest: for the small counts of a burst that beats the loop a
 * compiler vectorises, whose set-up costs more than copying one to three
 * words. */
static inline void upmd_ring_copy_words_(upmd_ring_word_ *__restrict d, const upmd_ring_word_ *__restrict s,
					 uint32_t n)
{
	uint32_t k = 0;

	for (; k + 4 <= n; k += 4) {
		d[k] = s[k];
		d[k + 1] = s[k + 1];
		d[k + 2] = s[k + 2];
		d[k + 3] = s[k + 3];
	}
	/* The rest by its bits: two tests, where a switch is a chain of compares. */
	if (n & 2) {
		d[k] = s[k];
		d[k + 1] = s[k + 1];
		k += 2;
	}
	if (n & 1)
		d[k] = s[k];
}

/* Copy @n elements into the slots from counter @idx on, wrapping once. */
static inline void upmd_ring_copy_in_(struct upmd_ring *r, uint32_t idx, const void *__restrict objs, uint32_t n,
				      uint32_t esize)
{
	const uint32_t size = r->size;
	uint32_t i = idx & r->mask;

	if (esize == 8) {
		upmd_ring_word_ *s = (upmd_ring_word_ *)upmd_ring_slots_(r);
		const upmd_ring_word_ *o = (const upmd_ring_word_ *)objs;

		if (upmd_likely(i + n <= size)) {
			upmd_ring_copy_words_(&s[i], o, n);
		} else {
			upmd_ring_copy_words_(&s[i], o, size - i);
			upmd_ring_copy_words_(s, o + (size - i), n - (size - i));
		}
	} else {
		char *s = (char *)upmd_ring_slots_(r);
		const char *o = (const char *)objs;
		uint32_t first = UPMD_MIN(n, size - i);

		memcpy(s + (size_t)i * esize, o, (size_t)first * esize);
		memcpy(s, o + (size_t)first * esize, (size_t)(n - first) * esize);
	}
}

static inline void upmd_ring_copy_out_(const struct upmd_ring *r, uint32_t idx, void *__restrict objs, uint32_t n,
				       uint32_t esize)
{
	const uint32_t size = r->size;
	uint32_t i = idx & r->mask;

	if (esize == 8) {
		const upmd_ring_word_ *s = (const upmd_ring_word_ *)upmd_ring_slots_(r);
		upmd_ring_word_ *o = (upmd_ring_word_ *)objs;

		if (upmd_likely(i + n <= size)) {
			upmd_ring_copy_words_(o, &s[i], n);
		} else {
			upmd_ring_copy_words_(o, &s[i], size - i);
			upmd_ring_copy_words_(o + (size - i), s, n - (size - i));
		}
	} else {
		const char *s = (const char *)upmd_ring_slots_(r);
		char *o = (char *)objs;
		uint32_t first = UPMD_MIN(n, size - i);

		memcpy(o, s + (size_t)i * esize, (size_t)first * esize);
		memcpy(o + (size_t)first * esize, s, (size_t)(n - first) * esize);
	}
}

/*
 * Reserve up to @n slots for producers (@cons_side false) or claim up to
 * @n elements for consumers (true). Returns how many (0..n; with @fixed
 * only 0 or n), with the range in [*old_head, *old_head + ret) and, in
 * *left, the free slots or available elements that remain after it.
 */
static inline __attribute__((always_inline)) uint32_t
upmd_ring_move_head_(struct upmd_ring *r, bool cons_side, bool single, uint32_t n, bool fixed,
		     uint32_t *old_head, uint32_t *left)
{
	struct upmd_ring_headtail *mine = cons_side ? &r->cons : &r->prod;
	const struct upmd_ring_headtail *theirs = cons_side ? &r->prod : &r->cons;
	uint32_t head, other, avail, want;

	/* Relaxed: the head only orders us against our own side, and the
	 * compare-and-swap below catches a stale value. */
	head = __atomic_load_n(&mine->head, __ATOMIC_RELAXED);
	for (;;) {
		/*
		 * Acquire on the other side's tail. Producer: it pairs with the
		 * consumers' release of cons.tail, so their reads of the slots
		 * we are about to overwrite happened before our writes.
		 * Consumer: it pairs with the producers' release of prod.tail,
		 * so the slots we are about to read hold what they wrote.
		 * The subtraction is modulo 2^32, like the counters; a value
		 * stale against a newer head is harmless, the CAS fails.
		 */
		other = __atomic_load_n(&theirs->tail, __ATOMIC_ACQUIRE);
		avail = cons_side ? other - head : r->capacity + other - head;
		want = n;
		if (upmd_unlikely(want > avail))
			want = fixed ? 0 : avail;
		if (upmd_unlikely(want == 0)) {
			*left = avail;
			return 0;
		}
		if (single) {
			/* Nobody else moves this head: a relaxed store
			 * suffices; the tail's release publishes our work. */
			__atomic_store_n(&mine->head, head + want, __ATOMIC_RELAXED);
			break;
		}
		/* Relaxed CAS: it only has to make the reservation exclusive;
		 * the slots are ordered by the tails' acquire/release. On
		 * failure @head is reloaded and everything recomputed. */
		if (__atomic_compare_exchange_n(&mine->head, &head, head + want, true, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			break;
	}
	*old_head = head;
	*left = avail - want;
	return want;
}

/* Internal: wait until @ht's tail reaches @old (acquire), spinning, then
 * yielding: a thread that reserved earlier may have been preempted (more
 * threads than cores). */
void upmd_ring_wait_tail_(struct upmd_ring_headtail *ht, uint32_t old);

/* Publish [old, old + n) on our side's tail. */
static inline __attribute__((always_inline)) void upmd_ring_update_tail_(struct upmd_ring_headtail *ht, bool single,
									   uint32_t old, uint32_t n)
{
	/*
	 * Several of us: the ones that reserved earlier publish first. Acquire
	 * on the wait: their slot work then happens-before our release below,
	 * so whoever acquires our tail also sees theirs (a plain store does
	 * not extend their release sequence).
	 */
	/* The wait is out of line: with the yield inside, the compiler
	 * would save and restore registers around it on every call. */
	if (!single && upmd_unlikely(__atomic_load_n(&ht->tail, __ATOMIC_ACQUIRE) != old))
		upmd_ring_wait_tail_(ht, old);
	/* Release: our slot writes (enqueue) or reads (dequeue) happen-before
	 * the other side's acquire of this tail. */
	__atomic_store_n(&ht->tail, old + n, __ATOMIC_RELEASE);
}

/* One side's work, made twice by the compiler (single true and false), so
 * that each is straight-line code for its kind of ring. */
static inline __attribute__((always_inline)) unsigned
upmd_ring_do_enqueue_(struct upmd_ring *r, const void *objs, uint32_t esize, unsigned n, bool fixed, bool single,
		      unsigned *free_space)
{
	uint32_t head, left;
	uint32_t got = upmd_ring_move_head_(r, false, single, n, fixed, &head, &left);

	if (got) {
		upmd_ring_copy_in_(r, head, objs, got, esize);
		upmd_ring_update_tail_(&r->prod, single, head, got);
	}
	if (free_space)
		*free_space = left;
	return got;
}

static inline __attribute__((always_inline)) unsigned
upmd_ring_do_dequeue_(struct upmd_ring *r, void *objs, uint32_t esize, unsigned n, bool fixed, bool single,
		      unsigned *available)
{
	uint32_t head, left;
	uint32_t got = upmd_ring_move_head_(r, true, single, n, fixed, &head, &left);

	if (got) {
		upmd_ring_copy_out_(r, head, objs, got, esize);
		upmd_ring_update_tail_(&r->cons, single, head, got);
	}
	if (available)
		*available = left;
	return got;
}

/* The ring's kind is fixed at creation: test it once per call. */
static inline unsigned upmd_ring_enqueue_elem_(struct upmd_ring *r, const void *objs, uint32_t esize,
					       unsigned n, bool fixed, unsigned *free_space)
{
	if (r->prod.single)
		return upmd_ring_do_enqueue_(r, objs, esize, n, fixed, true, free_space);
	return upmd_ring_do_enqueue_(r, objs, esize, n, fixed, false, free_space);
}

static inline unsigned upmd_ring_dequeue_elem_(struct upmd_ring *r, void *objs, uint32_t esize, unsigned n,
					       bool fixed, unsigned *available)
{
	if (r->cons.single)
		return upmd_ring_do_dequeue_(r, objs, esize, n, fixed, true, available);
	return upmd_ring_do_dequeue_(r, objs, esize, n, fixed, false, available);
}

/**
 * Enqueue all @n pointers or none. @return n or 0; *free_space (may be
 * NULL) gets the free slots left. Single or multi producer as created.
 */
static inline unsigned upmd_ring_enqueue_bulk(struct upmd_ring *r, void *const *objs, unsigned n,
					      unsigned *free_space)
{
	return upmd_ring_enqueue_elem_(r, objs, 8, n, true, free_space);
}

/** Enqueue as many of @n pointers as fit. @return how many. */
static inline unsigned upmd_ring_enqueue_burst(struct upmd_ring *r, void *const *objs, unsigned n,
					       unsigned *free_space)
{
	return upmd_ring_enqueue_elem_(r, objs, 8, n, false, free_space);
}

/** Dequeue @n pointers or none. @return n or 0; *available (may be NULL) gets what is left. */
static inline unsigned upmd_ring_dequeue_bulk(struct upmd_ring *r, void **objs, unsigned n,
					      unsigned *available)
{
	return upmd_ring_dequeue_elem_(r, objs, 8, n, true, available);
}

/** Dequeue up to @n pointers. @return how many. */
static inline unsigned upmd_ring_dequeue_burst(struct upmd_ring *r, void **objs, unsigned n,
					       unsigned *available)
{
	return upmd_ring_dequeue_elem_(r, objs, 8, n, false, available);
}

/** One pointer. @return 0, or -ENOBUFS (full). */
static inline int upmd_ring_enqueue(struct upmd_ring *r, void *obj)
{
	return upmd_ring_enqueue_bulk(r, &obj, 1, NULL) ? 0 : -ENOBUFS;
}

/** One pointer. @return 0, or -ENOENT (empty). */
static inline int upmd_ring_dequeue(struct upmd_ring *r, void **obj)
{
	return upmd_ring_dequeue_bulk(r, obj, 1, NULL) ? 0 : -ENOENT;
}

/** Fixed-size elements: @esize must be the ring's, @objs aligned to 8 when it is 8. Bulk (all or none). */
static inline unsigned upmd_ring_enqueue_bulk_elem(struct upmd_ring *r, const void *objs, unsigned esize,
						   unsigned n, unsigned *free_space)
{
	return upmd_ring_enqueue_elem_(r, objs, esize, n, true, free_space);
}

static inline unsigned upmd_ring_enqueue_burst_elem(struct upmd_ring *r, const void *objs, unsigned esize,
						    unsigned n, unsigned *free_space)
{
	return upmd_ring_enqueue_elem_(r, objs, esize, n, false, free_space);
}

static inline unsigned upmd_ring_dequeue_bulk_elem(struct upmd_ring *r, void *objs, unsigned esize,
						   unsigned n, unsigned *available)
{
	return upmd_ring_dequeue_elem_(r, objs, esize, n, true, available);
}

static inline unsigned upmd_ring_dequeue_burst_elem(struct upmd_ring *r, void *objs, unsigned esize,
						    unsigned n, unsigned *available)
{
	return upmd_ring_dequeue_elem_(r, objs, esize, n, false, available);
}

/** Elements in the ring (a snapshot when others run). */
static inline unsigned upmd_ring_count(const struct upmd_ring *r)
{
	uint32_t prod = __atomic_load_n(&r->prod.tail, __ATOMIC_RELAXED);
	uint32_t cons = __atomic_load_n(&r->cons.tail, __ATOMIC_RELAXED);
	uint32_t c = (prod - cons) & r->mask;

	return c > r->capacity ? r->capacity : c;
}

static inline unsigned upmd_ring_free_count(const struct upmd_ring *r)
{
	return r->capacity - upmd_ring_count(r);
}

static inline bool upmd_ring_full(const struct upmd_ring *r)
{
	return upmd_ring_free_count(r) == 0;
}

static inline bool upmd_ring_empty(const struct upmd_ring *r)
{
	return upmd_ring_count(r) == 0;
}

static inline unsigned upmd_ring_get_capacity(const struct upmd_ring *r)
{
	return r->capacity;
}

#ifdef __cplusplus
}
#endif
#endif /* UPMD_RING_H */
