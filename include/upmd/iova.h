/* IOVAs: the range allocator, per-lcore magazine caches in front of it, and the O(1) VA->IOVA table. */
#ifndef UPMD_IOVA_H
#define UPMD_IOVA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/common.h>
#include <upmd/eal.h>
#include <upmd/ioas.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef UPMD_BAD_IOVA
#define UPMD_BAD_IOVA UINT64_MAX
#endif

/* ---- the range allocator ---------------------------------------------------- */

/**
 * Free IOVA space as address-ordered blocks in a balanced tree, each node
 * knowing the largest free block beneath it: alloc is first fit (lowest
 * address that fits size and alignment), free coalesces with both
 * neighbours; both O(log n) worst case. Thread-safe (one lock).
 */
struct upmd_iova_allocator;

/**
 * Create over @n allowed ranges (inclusive, as IOVA_RANGES reports them;
 * they need not be sorted but must not overlap). Parts below @floor are
 * never handed out (upmd uses 1 MiB). @granule is the smallest unit and
 * alignment (a power of two, >= 4096); ranges are trimmed inward to it.
 * @return 0, -EINVAL, -ENOMEM.
 */
int upmd_iova_allocator_create(const struct upmd_iova_range *ranges, unsigned n, uint64_t granule,
			       uint64_t floor, struct upmd_iova_allocator **out);
void upmd_iova_allocator_destroy(struct upmd_iova_allocator *a);

/**
 * Allocate @size bytes (a multiple of the granule) aligned to @align (a
 * power of two; 0 means the granule). @return 0 and *iova, -EINVAL,
 * -ENOSPC when no free block fits, -ENOMEM if node storage cannot grow
 * (never in steady state).
 */
int upmd_iova_alloc(struct upmd_iova_allocator *a, uint64_t size, uint64_t align, uint64_t *iova);

/** Take exactly [iova, iova+size). @return 0, -EINVAL (unaligned, below
 * the floor, or not wholly inside the allowed ranges), -EEXIST (any part
 * already taken), -ENOMEM. */
int upmd_iova_alloc_fixed(struct upmd_iova_allocator *a, uint64_t iova, uint64_t size);

/**
 * Give back [iova, iova+size), as allocated. @return 0, -EINVAL (unaligned,
 * outside the allowed ranges), -ENOENT (some of it is already free: a
 * double free; in debug builds also a range that does not match one
 * allocation exactly).
 */
int upmd_iova_free(struct upmd_iova_allocator *a, uint64_t iova, uint64_t size);

/**
 * Narrow the allowed ranges (an attach added reserved regions): the space
 * becomes the overlap of the old and the new ranges; it never widens.
 * @return 0, -EBUSY (an allocation lies outside the new ranges; nothing
 * changed), -EINVAL (no ranges), -ENOMEM.
 */
int upmd_iova_allocator_restrict(struct upmd_iova_allocator *a, const struct upmd_iova_range *ranges,
				 unsigned n);

/** Free bytes and free blocks (for tests and stats). */
uint64_t upmd_iova_allocator_free_bytes(struct upmd_iova_allocator *a);
unsigned upmd_iova_allocator_free_blocks(struct upmd_iova_allocator *a);

/* ---- per-lcore magazine caches ---------------------------------------------- */

/**
 * Caches in front of an allocator for power-of-two sizes from 4 KiB to
 * UPMD_IOVA_CACHE_MAX_SIZE, aligned to their size: per lcore and size
 * class a loaded and a previous magazine, and a global depot of full
 * magazines. A cached alloc or free touches only the calling lcore's
 * magazines (no lock, no shared cache line); non-EAL threads and other
 * sizes go to the allocator.
 */
#define UPMD_IOVA_CACHE_MAX_SIZE (1ULL << 22)	/* 4 MiB */
#define UPMD_IOVA_MAG_SIZE 64

struct upmd_iova_cache;

#define UPMD_IOVA_CACHE_CLASS_SHIFT 12
#define UPMD_IOVA_CACHE_CLASSES 11
#define UPMD_IOVA_CACHE_CLASS_MASK \
	(((UPMD_IOVA_CACHE_MAX_SIZE << 1) - 1) & ~((1ULL << UPMD_IOVA_CACHE_CLASS_SHIFT) - 1))

/* Internal, here for the inline fast path: a magazine, and an lcore's
 * loaded and previous magazine per class. A cache starts with
 * UPMD_MAX_LCORE of the latter. */
struct upmd_iova_mag {
	unsigned n;
	struct upmd_iova_mag *next;
	uint64_t iova[UPMD_IOVA_MAG_SIZE];
};

struct upmd_iova_cache_slot {
	struct upmd_iova_mag *loaded;
	struct upmd_iova_mag *prev;
};

struct upmd_iova_cache_lcore {
	struct upmd_iova_cache_slot s[UPMD_IOVA_CACHE_CLASSES];
	uint64_t gen;		/* the flush generation last honoured */
} __upmd_cache_aligned;

int upmd_iova_cache_create(struct upmd_iova_allocator *a, struct upmd_iova_cache **out);
/** Return every cached IOVA to the allocator and free the cache. */
void upmd_iova_cache_destroy(struct upmd_iova_cache *c);
/* out of line: magazine swaps, the depot, the allocator */
int upmd_iova_cache_alloc_slow_(struct upmd_iova_cache *c, uint64_t size, uint64_t *iova);
int upmd_iova_cache_free_slow_(struct upmd_iova_cache *c, uint64_t iova, uint64_t size);

static inline struct upmd_iova_mag *upmd_iova_cache_loaded_(struct upmd_iova_cache *c, unsigned lcore,
							    uint64_t size)
{
	return ((struct upmd_iova_cache_lcore *)(void *)c)[lcore]
		.s[__builtin_ctzll(size) - UPMD_IOVA_CACHE_CLASS_SHIFT].loaded;
}

static inline bool upmd_iova_cache_is_class_(uint64_t size)
{
	return (size & UPMD_IOVA_CACHE_CLASS_MASK) && !(size & (size - 1));
}

/**
 * Allocate @size bytes: a class size from the calling lcore's magazine
 * (aligned to the size), anything else from the allocator. @return as
 * upmd_iova_alloc().
 */
static inline int upmd_iova_cache_alloc(struct upmd_iova_cache *c, uint64_t size, uint64_t *iova)
{
	unsigned lcore = upmd_lcore_id();

	if (upmd_likely(lcore < UPMD_MAX_LCORE && upmd_iova_cache_is_class_(size))) {
		struct upmd_iova_mag *m = upmd_iova_cache_loaded_(c, lcore, size);

		if (upmd_likely(m && m->n)) {
			*iova = m->iova[--m->n];
			return 0;
		}
	}
	return upmd_iova_cache_alloc_slow_(c, size, iova);
}

/** Give back what upmd_iova_cache_alloc() gave. @return as upmd_iova_free();
 * in debug builds of the library (without NDEBUG) also -ENOENT, logged,
 * for anything the cache did not hand out exactly so (a double free, an
 * IOVA never allocated, the wrong size), cached classes included: there
 * every call takes the out-of-line path, which records what it hands out. */
static inline int upmd_iova_cache_free(struct upmd_iova_cache *c, uint64_t iova, uint64_t size)
{
	unsigned lcore = upmd_lcore_id();

	if (upmd_likely(lcore < UPMD_MAX_LCORE && upmd_iova_cache_is_class_(size) && !(iova & (size - 1)))) {
		struct upmd_iova_mag *m = upmd_iova_cache_loaded_(c, lcore, size);

		if (upmd_likely(m && m->n < UPMD_IOVA_MAG_SIZE)) {
			m->iova[m->n++] = iova;
			return 0;
		}
	}
	return upmd_iova_cache_free_slow_(c, iova, size);
}
/** Return every cached IOVA to the allocator (e.g. on -ENOSPC). */
void upmd_iova_cache_flush(struct upmd_iova_cache *c);

/* ---- the VA -> IOVA table --------------------------------------------------- */

/*
 * The table over the 48-bit user address space is one flat array with an
 * entry per 2 MiB (2^27 entries: 1 GiB of address space reserved with
 * MAP_NORESERVE when the library loads; only the pages that hold entries
 * in use cost memory). Where a 2 MiB span is mapped in 4 KiB pieces its
 * entry points to a level-3 table with an entry per 4 KiB. An entry holds
 * IOVA - VA for its span, with the low 12 bits as flags. A lookup of
 * hugepage memory is one load. Readers take no lock: level-3 tables are
 * published with release stores and freed only by upmd_iova_table_reset().
 */
#define UPMD_IOVA_TABLE_VA_BITS 48
#define UPMD_IOVA_TABLE_L2_SHIFT 21
#define UPMD_IOVA_TABLE_L3_SHIFT 12
#define UPMD_IOVA_TABLE_L2_ENTRIES (1ULL << (UPMD_IOVA_TABLE_VA_BITS - UPMD_IOVA_TABLE_L2_SHIFT))
#define UPMD_IOVA_TE_VALID 0x1ULL	/* the span is mapped */
#define UPMD_IOVA_TE_TABLE 0x2ULL	/* a 2 MiB entry only: points to a level-3 table */
#define UPMD_IOVA_TE_FLAGS 0xfffULL

/* The flat array of 2 MiB entries and how many it has: both set once,
 * before main(), and never changed after. The count is
 * UPMD_IOVA_TABLE_L2_ENTRIES, or 0 if the address space could not be
 * reserved: then nothing is ever recorded and every lookup fails without
 * touching the array. */
extern uint64_t *upmd_iova_table_l2;
extern uint64_t upmd_iova_table_l2_n;

/**
 * Record that [va, va+len) is at [iova, iova+len). All three 4 KiB
 * aligned. 2 MiB-aligned spans take one 2 MiB entry. @return 0, -EINVAL
 * (unaligned, beyond the 48-bit user space, or an IOVA range that wraps or
 * reaches UPMD_BAD_IOVA), -EEXIST (part of it is already recorded; nothing
 * changed), -ENOMEM (nothing changed; also when the table's address space
 * could not be reserved). Writers are serialised internally; a reader
 * racing a set or clear sees, for each page, the old or the new value,
 * never a mix.
 */
int upmd_iova_table_set(const void *va, uint64_t iova, size_t len);
/** Forget [va, va+len). @return 0, -EINVAL, -ENOENT (part was not recorded; nothing changed). */
int upmd_iova_table_clear(const void *va, size_t len);
/** The VA at @iova (debugging, the model): O(log n) over recorded extents, under the writers' lock. NULL if none; one of them when several VAs share the IOVA. */
void *upmd_iova_table_to_va(uint64_t iova);
/** Forget everything and free the tables; no reader may run concurrently. */
void upmd_iova_table_reset(void);
/** For tests: how many 1 GiB spans of the address space hold the writers'
 * bookkeeping (a span is added when something in it is first recorded and
 * stays until reset). */
unsigned upmd_iova_table_spans_(void);
/** For tests: whether the 1 GiB span holding @va has that bookkeeping. */
bool upmd_iova_table_span_used_(const void *va);

/*
 * Readers load entries as the kernel's READ_ONCE() does: one volatile load
 * of an aligned 64-bit word, so read exactly once and never torn. Not a
 * C11 atomic load, because GCC will not keep the two globals above in
 * registers across one, and a loop of lookups would load each of them
 * again per lookup. Ordering: a leaf is a value (no ordering needed);
 * a level-3 table is reached through the pointer just loaded, and that
 * address dependency orders its loads after the pointer's (the kernel's
 * rcu_dereference() rests on the same rule) while the writer filled the
 * table before its release store published the pointer.
 */
#if defined(__x86_64__)
/* The same single load, written so that GCC folds the index into the
 * load's address (through a volatile pointer it computes the address in
 * a separate instruction, an eighth of a lookup). Volatile, so that it is
 * never cached or merged, as READ_ONCE(); no "memory" clobber, so that
 * other loads may still move across it. */
static inline uint64_t upmd_iova_te_read_(const uint64_t *p)
{
	uint64_t v;

	__asm__ volatile("movq %1, %0" : "=r"(v) : "m"(*p));
	return v;
}
#define UPMD_IOVA_TE_READ(p) upmd_iova_te_read_(p)
#else
#define UPMD_IOVA_TE_READ(p) (*(const volatile uint64_t *)(p))
#endif

/* Internal: a lookup that found no 2 MiB leaf (a level-3 table, or nothing). */
static inline uint64_t upmd_iova_from_va_l3_(uintptr_t a, uint64_t e)
{
	const uint64_t *t3 = (const uint64_t *)(uintptr_t)(e & ~UPMD_IOVA_TE_FLAGS);

	if (!(e & UPMD_IOVA_TE_TABLE))
		return UPMD_BAD_IOVA;
	e = UPMD_IOVA_TE_READ(&t3[(a >> UPMD_IOVA_TABLE_L3_SHIFT) & 511]);
	if (!(e & UPMD_IOVA_TE_VALID))
		return UPMD_BAD_IOVA;
	return a + e - UPMD_IOVA_TE_VALID;
}

/** The IOVA of @va, or UPMD_BAD_IOVA. O(1), lock-free: one load for memory
 * mapped in 2 MiB spans, two for 4 KiB pieces. */
static inline uint64_t upmd_iova_from_va(const void *va)
{
	uintptr_t a = (uintptr_t)va;
	uint64_t i = a >> UPMD_IOVA_TABLE_L2_SHIFT, e;

	/* Beyond the 48-bit user space, or no table: one test for both. */
	if (upmd_unlikely(i >= upmd_iova_table_l2_n))
		return UPMD_BAD_IOVA;
	e = UPMD_IOVA_TE_READ(&upmd_iova_table_l2[i]);
	/* A leaf holds (IOVA - VA) | VALID and no other flag: the common case
	 * is one test and one add. */
	if (upmd_likely(e & UPMD_IOVA_TE_VALID))
		return a + e - UPMD_IOVA_TE_VALID;
	return upmd_iova_from_va_l3_(a, e);
}

#ifdef __cplusplus
}
#endif
#endif /* UPMD_IOVA_H */
