/* The IOVA range allocator and its per-lcore magazine caches: first fit, alignment, floor, holes, coalescing, misuse, restrict, a randomized model check, and two lcores through one cache. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/eal.h>
#include <upmd/iova.h>
#include <upmd/log.h>

#include "upmd_test.h"

#define G4K 4096ULL
#define HOLE_START 0xfee00000ULL
#define HOLE_LAST 0xfeefffffULL

static const struct upmd_iova_range hole_ranges[2] = {
	{ 0, HOLE_START - 1 },
	{ HOLE_LAST + 1, 0x17fffffffULL },
};

static struct upmd_iova_allocator *mk(const struct upmd_iova_range *r, unsigned n, uint64_t floor)
{
	struct upmd_iova_allocator *a = NULL;

	CU_ASSERT_EQUAL_FATAL(upmd_iova_allocator_create(r, n, G4K, floor, &a), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	return a;
}

static struct upmd_iova_allocator *mk1(uint64_t start, uint64_t last, uint64_t floor)
{
	struct upmd_iova_range r = { start, last };

	return mk(&r, 1, floor);
}

/* xorshift64*: reproducible. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the range allocator ---- */

static void test_create_errors(void)
{
	struct upmd_iova_range r[2] = { { 0x100000, 0x1fffff }, { 0x180000, 0x2fffff } };
	struct upmd_iova_range bad = { 0x200000, 0x100000 };
	struct upmd_iova_allocator *a = NULL;
	uint64_t iova;

	CU_ASSERT_EQUAL(upmd_iova_allocator_create(r, 1, G4K, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(NULL, 1, G4K, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(r, 0, G4K, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(r, 1, 0, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(r, 1, 2048, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(r, 1, 3 * G4K, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(&bad, 1, G4K, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_create(r, 2, G4K, 0, &a), -EINVAL);	/* overlap */
	CU_ASSERT_PTR_NULL(a);
	upmd_iova_allocator_destroy(NULL);

	/* Unsorted, adjacent ranges are fine (and merge); ranges trim inward. */
	r[0] = (struct upmd_iova_range){ 0x200000, 0x2fffff };
	r[1] = (struct upmd_iova_range){ 0x100001, 0x1fffff };
	CU_ASSERT_EQUAL_FATAL(upmd_iova_allocator_create(r, 2, G4K, 0, &a), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 0x200000 - G4K);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 0, 0, &iova), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 100, 0, &iova), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 3 * G4K, &iova), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc(NULL, G4K, 0, &iova), -EINVAL);
	/* An allocation may span the two merged ranges. */
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x1ff000, 2 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 0x1ff000, 2 * G4K), 0);
	upmd_iova_allocator_destroy(a);

	/* Larger granules trim to themselves. */
	r[0] = (struct upmd_iova_range){ 0x1000, 0x3fffff };
	CU_ASSERT_EQUAL_FATAL(upmd_iova_allocator_create(r, 1, 1ULL << 21, 0, &a), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 1ULL << 21);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &iova), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 1ULL << 21, 0, &iova), 0);
	CU_ASSERT_EQUAL(iova, 1ULL << 21);
	CU_ASSERT_EQUAL(upmd_iova_free(a, iova, 1ULL << 21), 0);
	upmd_iova_allocator_destroy(a);
}

static void test_first_fit(void)
{
	struct upmd_iova_allocator *a = mk1(0, 0x4ffffff, UPMD_MB);
	uint64_t x[4], y;
	unsigned i;

	for (i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x[i]), 0);
		CU_ASSERT_EQUAL(x[i], UPMD_MB + i * G4K);
	}
	CU_ASSERT_EQUAL(upmd_iova_free(a, x[1], G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x[2], G4K), 0);
	/* 12 KiB does not fit in the 8 KiB hole: it goes after the last one. */
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 3 * G4K, 0, &y), 0);
	CU_ASSERT_EQUAL(y, UPMD_MB + 4 * G4K);
	/* The lowest fit wins. */
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x[1]), 0);
	CU_ASSERT_EQUAL(x[1], UPMD_MB + G4K);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x[2]), 0);
	CU_ASSERT_EQUAL(x[2], UPMD_MB + 2 * G4K);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 3 * G4K), 0);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(upmd_iova_free(a, x[i], G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 0x5000000 - UPMD_MB);
	upmd_iova_allocator_destroy(a);
}

static void test_alignment(void)
{
	struct upmd_iova_allocator *a = mk1(0, (1ULL << 34) - 1, UPMD_MB);
	uint64_t x, y, z, w, al;

	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(x, UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 64 * UPMD_KB, 64 * UPMD_KB, &y), 0);
	CU_ASSERT_EQUAL(y, UPMD_MB + 64 * UPMD_KB);
	/* The space skipped for alignment is still used by a later first fit. */
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 60 * UPMD_KB, 0, &z), 0);
	CU_ASSERT_EQUAL(z, UPMD_MB + G4K);
	/* An aligned request takes an aligned start inside a small block. */
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 64 * UPMD_KB), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 32 * UPMD_KB, 32 * UPMD_KB, &w), 0);
	CU_ASSERT_EQUAL(w, UPMD_MB + 64 * UPMD_KB);
	CU_ASSERT_EQUAL(upmd_iova_free(a, w, 32 * UPMD_KB), 0);
	for (al = G4K; al <= (1ULL << 32); al <<= 1) {
		CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, al, &w), 0);
		CU_ASSERT_EQUAL(w & (al - 1), 0);
		CU_ASSERT_EQUAL(upmd_iova_free(a, w, G4K), 0);
	}
	/* Alignment smaller than the granule means the granule. */
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 512, &w), 0);
	CU_ASSERT_EQUAL(w, UPMD_MB + 64 * UPMD_KB);
	CU_ASSERT_EQUAL(upmd_iova_free(a, w, G4K), 0);
	/* Only an exact fit exists: a 4 MiB block aligned to 4 MiB. */
	upmd_iova_allocator_destroy(a);
	a = mk1(4 * UPMD_MB, 8 * UPMD_MB - 1, 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 4 * UPMD_MB, 4 * UPMD_MB, &w), 0);
	CU_ASSERT_EQUAL(w, 4 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &w), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 4 * UPMD_MB, 4 * UPMD_MB), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 2 * UPMD_MB, 8 * UPMD_MB, &w), -ENOSPC);
	upmd_iova_allocator_destroy(a);
	/* A small block with an aligned start beats a big one further up. */
	{
		const struct upmd_iova_range r3[3] = {
			{ 2 * UPMD_MB, 2 * UPMD_MB + 32 * UPMD_KB - 1 },
			{ 3 * UPMD_MB, 3 * UPMD_MB + G4K - 1 },
			{ 4 * UPMD_MB, UPMD_GB - 1 },
		};

		a = mk(r3, 3, 0);
		CU_ASSERT_EQUAL(upmd_iova_alloc(a, 32 * UPMD_KB, 32 * UPMD_KB, &w), 0);
		CU_ASSERT_EQUAL(w, 2 * UPMD_MB);
		CU_ASSERT_EQUAL(upmd_iova_alloc(a, 32 * UPMD_KB, 32 * UPMD_KB, &w), 0);
		CU_ASSERT_EQUAL(w, 4 * UPMD_MB);
		upmd_iova_allocator_destroy(a);
	}
	upmd_iova_allocator_destroy(mk1(0, 0x7ff, 0));	/* nothing left after trimming */
	upmd_iova_allocator_destroy(NULL);
	(void)z;
	CU_ASSERT_EQUAL(upmd_iova_free(NULL, 0, G4K), -EINVAL);
}

static void test_floor(void)
{
	struct upmd_iova_allocator *a = mk1(0, 16 * UPMD_MB - 1, UPMD_MB);
	uint64_t x;

	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 15 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(x, UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, UPMD_MB - G4K, 2 * G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, UPMD_MB - G4K, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, G4K), 0);
	upmd_iova_allocator_destroy(a);
	/* An unaligned floor rounds up. */
	a = mk1(0, 16 * UPMD_MB - 1, UPMD_MB + 1);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(x, UPMD_MB + G4K);
	upmd_iova_allocator_destroy(a);
	/* A floor above every range leaves nothing. */
	a = mk1(0, 16 * UPMD_MB - 1, 32 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x), -ENOSPC);
	upmd_iova_allocator_destroy(a);
	a = mk1(0, UINT64_MAX, UINT64_MAX);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 0);
	upmd_iova_allocator_destroy(a);
}

static void test_hole(void)
{
	struct upmd_iova_allocator *a = mk(hole_ranges, 2, UPMD_MB);
	uint64_t total = upmd_iova_allocator_free_bytes(a), x, n = 0, sz = 3 * UPMD_MB;
	uint64_t *v = malloc(sizeof(*v) * 4096);

	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(total, 0x180000000ULL - UPMD_MB - (HOLE_LAST - HOLE_START + 1));
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	while (upmd_iova_alloc(a, sz, 0, &x) == 0) {
		CU_ASSERT_TRUE(x + sz - 1 < HOLE_START || x > HOLE_LAST);
		CU_ASSERT_TRUE(x >= UPMD_MB && x + sz - 1 <= 0x17fffffffULL);
		v[n++] = x;
	}
	/* The rest: each side has less than 3 MiB left, in no case the hole. */
	while (upmd_iova_alloc(a, G4K, 0, &x) == 0) {
		CU_ASSERT_TRUE(x < HOLE_START || x > HOLE_LAST);
		CU_ASSERT_EQUAL(upmd_iova_free(a, x, G4K), 0);
		CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, x, G4K), 0);
		total -= G4K;
	}
	CU_ASSERT_EQUAL(n * sz, total);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, HOLE_START, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, HOLE_START - G4K, 2 * G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, HOLE_START, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, HOLE_LAST + 1 - G4K, 2 * G4K), -EINVAL);
	free(v);
	upmd_iova_allocator_destroy(a);
}

static void test_alloc_fixed(void)
{
	struct upmd_iova_allocator *a = mk(hole_ranges, 2, UPMD_MB);
	uint64_t x;

	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 2 * UPMD_MB, 4 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 2 * UPMD_MB, 4 * G4K), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 2 * UPMD_MB + G4K, G4K), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 2 * UPMD_MB - G4K, 2 * G4K), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 2 * UPMD_MB + 3 * G4K, 2 * G4K), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 2 * UPMD_MB + 1, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 3 * UPMD_MB, 100), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 3 * UPMD_MB, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x17ffff000ULL, 2 * G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x200000000ULL, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, UINT64_MAX - 4095, 2 * G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(NULL, 3 * UPMD_MB, G4K), -EINVAL);
	/* The neighbours are still free: 3 blocks. */
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 3);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, UPMD_MB, 2 * UPMD_MB - UPMD_MB), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(x, 2 * UPMD_MB + 4 * G4K);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, UPMD_MB, UPMD_MB), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 2 * UPMD_MB, 4 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	upmd_iova_allocator_destroy(a);
}

static void test_coalesce(void)
{
	struct upmd_iova_allocator *a = mk(hole_ranges, 2, UPMD_MB);
	uint64_t total = upmd_iova_allocator_free_bytes(a), s = 1, x[2000], sz[2000];
	unsigned i, n = 2000;

	for (i = 0; i < n; i++) {
		sz[i] = (1 + rnd(&s) % 8) * G4K;
		CU_ASSERT_EQUAL_FATAL(upmd_iova_alloc(a, sz[i], 0, &x[i]), 0);
	}
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	/* Free in a shuffled order: blocks come and go and merge back. */
	for (i = n - 1; i > 0; i--) {
		unsigned j = (unsigned)(rnd(&s) % (i + 1));
		uint64_t t = x[i], u = sz[i];

		x[i] = x[j];
		sz[i] = sz[j];
		x[j] = t;
		sz[j] = u;
	}
	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(upmd_iova_free(a, x[i], sz[i]), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	/* Merging with the left, the right, and both neighbours. */
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 4 * UPMD_MB, 3 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 3);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 4 * UPMD_MB, 3 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	upmd_iova_allocator_destroy(a);
}

static void test_coalesce_sides(void)
{
	struct upmd_iova_allocator *a = mk1(0, 64 * UPMD_MB - 1, UPMD_MB);
	uint64_t b = 4 * UPMD_MB;

	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, b, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, b + G4K, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, b + 2 * G4K, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, b + 3 * G4K, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_EQUAL(upmd_iova_free(a, b, G4K), 0);	/* merges left */
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_EQUAL(upmd_iova_free(a, b + 3 * G4K, G4K), 0);	/* merges right */
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_EQUAL(upmd_iova_free(a, b + 2 * G4K, G4K), 0);	/* merges right */
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_EQUAL(upmd_iova_free(a, b + G4K, G4K), 0);	/* merges both */
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 63 * UPMD_MB);
	upmd_iova_allocator_destroy(a);
}

static void test_double_free(void)
{
	struct upmd_iova_allocator *a = mk(hole_ranges, 2, UPMD_MB);
	uint64_t x, y;

	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 4 * G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 4 * G4K, 0, &y), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, 4 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, 4 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x + G4K, G4K), -ENOENT);
	/* Partly free, partly allocated. */
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, 8 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 8 * G4K), -ENOENT);
	/* Never allocated, wholly free. */
	CU_ASSERT_EQUAL(upmd_iova_free(a, 64 * UPMD_MB, G4K), -ENOENT);
	/* Unaligned or outside. */
	CU_ASSERT_EQUAL(upmd_iova_free(a, y + 1, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 1), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 0x200000000ULL, G4K), -EINVAL);
#ifndef NDEBUG
	/* Debug builds: a part of one allocation, or a different size. */
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y + G4K, 3 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 2 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 32 * UPMD_MB, 2 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 32 * UPMD_MB + 2 * G4K, 2 * G4K), 0);
	/* Two adjacent allocations are not one. */
	CU_ASSERT_EQUAL(upmd_iova_free(a, 32 * UPMD_MB, 4 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 32 * UPMD_MB, 2 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 32 * UPMD_MB + 2 * G4K, 2 * G4K), 0);
#endif
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 4 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	upmd_iova_allocator_destroy(a);
}

static void test_restrict(void)
{
	struct upmd_iova_allocator *a = mk(hole_ranges, 2, UPMD_MB);
	uint64_t total = upmd_iova_allocator_free_bytes(a), x, y;
	struct upmd_iova_range nr[3] = {
		{ 0, 0x7fffffff },			/* drops [2 GiB, hole) */
		{ 0xfef00000ULL, 0x13fffffffULL },	/* drops the top 1 GiB */
		{ 0x200000000ULL, 0x2ffffffffULL },	/* never allowed: ignored */
	};
	struct upmd_iova_range bad[2] = { { 0, 0x7fffffff }, { 0x7ffff000, 0x8fffffff } };

	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x80000000ULL, 2 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 3);
	CU_ASSERT_EQUAL(upmd_iova_allocator_restrict(a, nr, 3), -EBUSY);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total - 3 * G4K);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 3);
	CU_ASSERT_EQUAL(upmd_iova_allocator_restrict(a, bad, 2), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_restrict(a, nr, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_restrict(NULL, nr, 3), -EINVAL);
	/* Nothing changed: the allocation outside is still there, the space too. */
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x80000000ULL, G4K), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x170000000ULL, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 0x170000000ULL, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, 0x80000000ULL, 2 * G4K), 0);

	CU_ASSERT_EQUAL(upmd_iova_allocator_restrict(a, nr, 3), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a),
			total - G4K - (HOLE_START - 0x80000000ULL) - 0x40000000ULL);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x80000000ULL, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, 0x170000000ULL, G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, G4K), 0);
	/* Fill up: nothing is handed out from the dropped parts. */
	while (upmd_iova_alloc(a, 64 * UPMD_MB, 0, &y) == 0)
		CU_ASSERT_TRUE((y >= UPMD_MB && y + 64 * UPMD_MB - 1 <= 0x7fffffffULL) ||
			       (y >= 0xfef00000ULL && y + 64 * UPMD_MB - 1 <= 0x13fffffffULL));
	upmd_iova_allocator_destroy(a);
}

static void test_exhaustion(void)
{
	struct upmd_iova_allocator *a = mk1(UPMD_MB, UPMD_MB + 256 * UPMD_KB - 1, 0);
	uint64_t x[64], y;
	unsigned i;

	for (i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &x[i]), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &y), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 1ULL << 40, 0, &y), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x[17], G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 2 * G4K, 0, &y), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &y), 0);
	CU_ASSERT_EQUAL(y, x[17]);
	for (i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(upmd_iova_free(a, x[i], G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 256 * UPMD_KB, 0, &y), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, 256 * UPMD_KB), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	upmd_iova_allocator_destroy(a);
}

static void test_u64_max(void)
{
	struct upmd_iova_allocator *a = mk1(UINT64_MAX - UPMD_GB + 1, UINT64_MAX, UPMD_MB);
	uint64_t x, y;

	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), UPMD_GB);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, UINT64_MAX - 4095, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc_fixed(a, UINT64_MAX - 4095, 2 * G4K), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, UPMD_GB, 0, &x), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, UPMD_GB - G4K, 0, &x), 0);
	CU_ASSERT_EQUAL(x, UINT64_MAX - UPMD_GB + 1);
	CU_ASSERT_EQUAL(upmd_iova_free(a, UINT64_MAX - 4095, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, UINT64_MAX - 4095, G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, UPMD_GB - G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, UPMD_GB, UPMD_GB, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, UPMD_GB), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, UPMD_GB + G4K), -EINVAL);
	upmd_iova_allocator_destroy(a);

	/* All 2^64 bytes: free_bytes saturates; sizes near 2^64. */
	a = mk1(0, UINT64_MAX, 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), UINT64_MAX);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 1ULL << 63, &x), 0);
	CU_ASSERT_EQUAL(x, 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 1ULL << 63, &y), 0);
	CU_ASSERT_EQUAL(y, 1ULL << 63);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, UINT64_MAX - 2 * G4K + 1, 0, &y), 0);
	CU_ASSERT_EQUAL(y, G4K);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), G4K);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 2 * G4K, 0, &y), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 2 * G4K, &y), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &y), 0);
	CU_ASSERT_EQUAL(y, UINT64_MAX - 4095);
	CU_ASSERT_EQUAL(upmd_iova_free(a, G4K, UINT64_MAX - 2 * G4K + 1), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), UINT64_MAX);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, UINT64_MAX - 4095, 1ULL << 63, &y), 0);
	CU_ASSERT_EQUAL(y, 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, UINT64_MAX - 4095, 1ULL << 63, &y), -ENOSPC);
	upmd_iova_allocator_destroy(a);
}

/* ---- the randomized model check ---- */

struct blk {
	uint64_t s, l;	/* inclusive */
};

struct model {
	struct blk *b;
	unsigned n, cap;
	uint64_t free;
};

/* The index of the last block with s <= x, or -1. */
static int m_find(const struct model *m, uint64_t x)
{
	int lo = 0, hi = (int)m->n;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (m->b[mid].s <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

static bool m_contains(const struct model *m, uint64_t s, uint64_t l)
{
	int i = m_find(m, s);

	return i >= 0 && m->b[i].l >= l;
}

static void m_insert_at(struct model *m, unsigned i, uint64_t s, uint64_t l)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->b = realloc(m->b, m->cap * sizeof(*m->b));
		if (!m->b)
			abort();
	}
	memmove(&m->b[i + 1], &m->b[i], (m->n - i) * sizeof(*m->b));
	m->b[i] = (struct blk){ s, l };
	m->n++;
}

static void m_remove_at(struct model *m, unsigned i)
{
	memmove(&m->b[i], &m->b[i + 1], (m->n - i - 1) * sizeof(*m->b));
	m->n--;
}

/* Take [s, l], which m_contains(). */
static void m_take(struct model *m, uint64_t s, uint64_t l)
{
	int i = m_find(m, s);
	struct blk b = m->b[i];

	m->free -= l - s + 1;
	if (b.s == s && b.l == l) {
		m_remove_at(m, (unsigned)i);
	} else if (b.s == s) {
		m->b[i].s = l + 1;
	} else if (b.l == l) {
		m->b[i].l = s - 1;
	} else {
		m->b[i].l = s - 1;
		m_insert_at(m, (unsigned)i + 1, l + 1, b.l);
	}
}

static void m_give(struct model *m, uint64_t s, uint64_t l)
{
	int i = m_find(m, s);
	bool mp = i >= 0 && m->b[i].l + 1 == s;
	bool ms = (unsigned)(i + 1) < m->n && m->b[i + 1].s == l + 1;

	m->free += l - s + 1;
	if (mp && ms) {
		m->b[i].l = m->b[i + 1].l;
		m_remove_at(m, (unsigned)i + 1);
	} else if (mp) {
		m->b[i].l = l;
	} else if (ms) {
		m->b[i + 1].s = s;
	} else {
		m_insert_at(m, (unsigned)(i + 1), s, l);
	}
}

static bool m_exact(const struct blk *b, uint64_t size, uint64_t align, uint64_t *at)
{
	uint64_t a = UPMD_ALIGN_UP(b->s, align);

	if (a < b->s || a > b->l || b->l - a < size - 1)
		return false;
	*at = a;
	return true;
}

/* The lowest exact fit, or false. */
static bool m_first_fit(const struct model *m, uint64_t size, uint64_t align, uint64_t *at)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m_exact(&m->b[i], size, align, at))
			return true;
	return false;
}

/* The lowest block sure to fit wherever its start is, or -1. */
static int m_guaranteed(const struct model *m, uint64_t size, uint64_t align)
{
	uint64_t need = size - 1 + (align - G4K);

	for (unsigned i = 0; i < m->n; i++)
		if (m->b[i].l - m->b[i].s >= need)
			return (int)i;
	return -1;
}

struct live {
	uint64_t iova, size;
};

static uint64_t pick_size(uint64_t *s)
{
	uint64_t r = rnd(s) % 1000;

	if (r < 700)
		return (1 + rnd(s) % 16) * G4K;
	if (r < 900)
		return (1 + rnd(s) % 512) * G4K;
	if (r < 985)
		return (1 + rnd(s) % 16384) * G4K;
	return (64 + rnd(s) % 512) * 4 * UPMD_MB;	/* 256 MiB .. 2.25 GiB */
}

static uint64_t pick_align(uint64_t *s)
{
	uint64_t r = rnd(s) % 100;

	if (r < 50)
		return 0;
	if (r < 97)
		return 1ULL << (12 + rnd(s) % 13);	/* 4 KiB .. 16 MiB */
	return 1ULL << (25 + rnd(s) % 6);		/* 32 MiB .. 1 GiB */
}

static bool in_space(uint64_t s, uint64_t l)
{
	return s >= UPMD_MB && ((l < HOLE_START) || (s > HOLE_LAST && l <= hole_ranges[1].last));
}

#define PROP_LIVE 300

static void test_property(void)
{
	struct upmd_iova_allocator *a = mk(hole_ranges, 2, UPMD_MB);
	static struct live live[PROP_LIVE];
	struct model m = { 0 };
	const char *env = getenv("UPMD_TEST_OPS");
	uint64_t ops = env ? strtoull(env, NULL, 0) : 1000000, total, seed = 0x1234567ULL, op;
	uint64_t n_alloc = 0, n_nospc = 0, n_free = 0, n_fixed = 0, n_bad = 0, n_aligned = 0, n_ff = 0;
	unsigned nl = 0, errors = 0, i;
	double t0 = now_s();

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c) && errors++ < 10)                                                \
			printf("\n  op %" PRIu64 ": check failed: %s (line %d)\n", op, #c, __LINE__); \
	} while (0)

	m_insert_at(&m, 0, UPMD_MB, HOLE_START - 1);
	m_insert_at(&m, 1, HOLE_LAST + 1, hole_ranges[1].last);
	m.free = (HOLE_START - UPMD_MB) + (hole_ranges[1].last - HOLE_LAST);
	total = m.free;
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	for (op = 0; op < ops && errors < 10; op++) {
		uint64_t r = rnd(&seed) % 1000, x = 0;
		int rc;

		if (nl == 0 || (nl < PROP_LIVE && r < 560)) {
			uint64_t size = pick_size(&seed), align = pick_align(&seed), al, want;
			int g;

			al = align < G4K ? G4K : align;
			rc = upmd_iova_alloc(a, size, align, &x);
			if (rc == -ENOSPC) {
				n_nospc++;
				CHECK(!m_first_fit(&m, size, al, &want));
			} else {
				CHECK(rc == 0);
				if (rc)
					continue;
				n_alloc++;
				CHECK((x & (al - 1)) == 0);
				CHECK(in_space(x, x + size - 1));
				CHECK(m_contains(&m, x, x + size - 1));
				g = m_guaranteed(&m, size, al);
				if (al == G4K || g < 0) {
					/* Plain first fit, or the full scan: the lowest exact fit. */
					CHECK(m_first_fit(&m, size, al, &want) && want == x);
				} else {
					/* Never above the lowest block sure to fit. */
					CHECK(m.b[m_find(&m, x)].s <= m.b[g].s);
					n_aligned++;
					n_ff += m_first_fit(&m, size, al, &want) && want == x;
				}
				if (m_contains(&m, x, x + size - 1))
					m_take(&m, x, x + size - 1);
				live[nl++] = (struct live){ x, size };
			}
		} else if (r < 960 || nl >= PROP_LIVE) {
			unsigned k = (unsigned)(rnd(&seed) % nl);
			struct live v = live[k];

			live[k] = live[--nl];
			CHECK(upmd_iova_free(a, v.iova, v.size) == 0);
			m_give(&m, v.iova, v.iova + v.size - 1);
			n_free++;
			if (r % 16 == 0) {	/* and again: a double free */
				CHECK(upmd_iova_free(a, v.iova, v.size) == -ENOENT);
				n_bad++;
			}
		} else if (r < 985) {
			/* A fixed range anywhere near the space. */
			uint64_t size = (1 + rnd(&seed) % 64) * G4K;
			uint64_t at = (rnd(&seed) % (0x190000000ULL / G4K)) * G4K, l = at + size - 1;
			int want = !in_space(at, l) ? -EINVAL : !m_contains(&m, at, l) ? -EEXIST : 0;

			rc = upmd_iova_alloc_fixed(a, at, size);
			CHECK(rc == want);
			if (rc == 0 && want == 0) {
				m_take(&m, at, l);
				live[nl++] = (struct live){ at, size };
				n_fixed++;
			}
		} else {
			/* Freeing what is free, or (debug) a part of an allocation. */
			if (m.n) {
				struct blk b = m.b[rnd(&seed) % m.n];

				CHECK(upmd_iova_free(a, b.s, G4K) == -ENOENT);
			}
#ifndef NDEBUG
			{
				struct live v = live[rnd(&seed) % nl];

				if (v.size > G4K)
					CHECK(upmd_iova_free(a, v.iova + G4K, v.size - G4K) == -ENOENT);
			}
#endif
			n_bad++;
		}
		CHECK(upmd_iova_allocator_free_bytes(a) == m.free);
		CHECK(upmd_iova_allocator_free_blocks(a) == m.n);
	}
	for (i = 0; i < nl; i++)
		CU_ASSERT_EQUAL(upmd_iova_free(a, live[i].iova, live[i].size), 0);
	CU_ASSERT_EQUAL(errors, 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 2);
	CU_ASSERT_TRUE(n_nospc > 0);
	printf("\n  %" PRIu64 " ops in %.2f s: %" PRIu64 " allocs, %" PRIu64 " -ENOSPC, %" PRIu64
	       " frees, %" PRIu64 " fixed, %" PRIu64 " misuse checks; aligned allocations at the true first fit: %"
	       PRIu64 "/%" PRIu64 " ",
	       op, now_s() - t0, n_alloc, n_nospc, n_free, n_fixed, n_bad, n_ff, n_aligned);
	free(m.b);
	upmd_iova_allocator_destroy(a);
#undef CHECK
}

/* ---- the magazine caches (on EAL lcores) ---- */

static int eal_up(void)
{
	char *argv[] = { "test", "-l", "0-1", "--no-huge", "-m", "4", "--model", "", NULL };
	int rc = upmd_eal_init((int)UPMD_DIM(argv) - 1, argv);

	if (rc < 0)
		fprintf(stderr, "upmd_eal_init: %d\n", rc);
	return rc < 0 ? -1 : 0;
}

static int eal_down(void)
{
	return upmd_eal_cleanup() == 0 ? 0 : -1;
}

static void mk_cache(uint64_t bytes, struct upmd_iova_allocator **a, struct upmd_iova_cache **c)
{
	*a = mk1(UPMD_MB, UPMD_MB + bytes - 1, UPMD_MB);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_cache_create(*a, c), 0);
}

static void test_cache_create(void)
{
	struct upmd_iova_allocator *a = mk1(UPMD_MB, 2 * UPMD_MB - 1, 0);
	struct upmd_iova_cache *c = NULL;

	CU_ASSERT_EQUAL(upmd_iova_cache_create(NULL, &c), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_cache_create(a, NULL), -EINVAL);
	CU_ASSERT_PTR_NULL(c);
	upmd_iova_cache_destroy(NULL);
	upmd_iova_cache_flush(NULL);
	upmd_iova_allocator_destroy(a);
}

static void test_cache_same_iova(void)
{
	struct upmd_iova_allocator *a;
	struct upmd_iova_cache *c;
	uint64_t x, y, total;
	unsigned i;

	CU_ASSERT_EQUAL_FATAL(upmd_lcore_id(), upmd_get_main_lcore());
	mk_cache(UPMD_GB, &a, &c);
	total = upmd_iova_allocator_free_bytes(a);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, G4K), 0);
	for (i = 0; i < 1000; i++) {
		CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &y), 0);
		CU_ASSERT_EQUAL(y, x);
		CU_ASSERT_EQUAL(upmd_iova_cache_free(c, y, G4K), 0);
	}
	/* The allocator sees them as taken while cached. */
	CU_ASSERT_TRUE(upmd_iova_allocator_free_bytes(a) < total);
	upmd_iova_cache_destroy(c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	upmd_iova_allocator_destroy(a);
}

static void test_cache_class_alignment(void)
{
	struct upmd_iova_allocator *a;
	struct upmd_iova_cache *c;
	uint64_t x[11][3], first, size, total;
	unsigned k, j;

	mk_cache(8 * UPMD_GB, &a, &c);
	total = upmd_iova_allocator_free_bytes(a);
	/* A 4 KiB one first so the others start unaligned. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &first), 0);
	for (k = 0, size = G4K; size <= UPMD_IOVA_CACHE_MAX_SIZE; k++, size <<= 1) {
		for (j = 0; j < 3; j++) {
			CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, size, &x[k][j]), 0);
			CU_ASSERT_EQUAL(x[k][j] & (size - 1), 0);
		}
	}
	for (k = 0, size = G4K; size <= UPMD_IOVA_CACHE_MAX_SIZE; k++, size <<= 1)
		for (j = 0; j < 3; j++)
			CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x[k][j], size), 0);
	upmd_iova_cache_flush(c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total - G4K);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, first, G4K), 0);
	upmd_iova_cache_destroy(c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	upmd_iova_allocator_destroy(a);
}

static void *non_eal_thread(void *p)
{
	struct upmd_iova_cache *c = p;
	uint64_t x;

	if (upmd_lcore_id() < UPMD_MAX_LCORE || upmd_iova_cache_alloc(c, 64 * UPMD_KB, &x))
		return (void *)1;
	if (x & (64 * UPMD_KB - 1))
		return (void *)2;
	return upmd_iova_cache_free(c, x, 64 * UPMD_KB) ? (void *)3 : NULL;
}

static void test_cache_fallthrough(void)
{
	struct upmd_iova_allocator *a;
	struct upmd_iova_cache *c;
	uint64_t x, y, total;
	pthread_t t;
	void *ret = (void *)9;

	mk_cache(UPMD_GB, &a, &c);
	total = upmd_iova_allocator_free_bytes(a);
	/* Not a power of two, too large, too small: straight to the allocator. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, 3 * G4K, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total - 3 * G4K);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 3 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, 8 * UPMD_MB, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total - 8 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 8 * UPMD_MB), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, 2048, &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, 0, &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 3 * G4K), -ENOENT);
	/* A class size at an address not aligned to it (so not from the
	 * cache): a debug build refuses it, a release build gives it back
	 * directly, never into a magazine. */
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, G4K, 0, &y), 0);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, 8 * G4K, 0, &x), 0);
	CU_ASSERT_NOT_EQUAL(x & (8 * G4K - 1), 0);
#ifndef NDEBUG
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 8 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_free(a, x, 8 * G4K), 0);
#else
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 8 * G4K), 0);
#endif
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	/* A non-EAL thread never caches. */
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, non_eal_thread, c), 0);
	pthread_join(t, &ret);
	CU_ASSERT_PTR_NULL(ret);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	upmd_iova_cache_destroy(c);
	upmd_iova_allocator_destroy(a);
}

static void test_cache_flush_destroy(void)
{
	struct upmd_iova_allocator *a;
	struct upmd_iova_cache *c;
	static uint64_t x[3][2000];
	const uint64_t sizes[3] = { G4K, 16 * G4K, UPMD_MB };
	uint64_t total;
	unsigned k, i, round;

	mk_cache(16 * UPMD_GB, &a, &c);
	total = upmd_iova_allocator_free_bytes(a);
	for (round = 0; round < 2; round++) {
		/* Enough to fill both magazines and put many in the depot. */
		for (k = 0; k < 3; k++)
			for (i = 0; i < 2000; i++)
				CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, sizes[k], &x[k][i]), 0);
		for (k = 0; k < 3; k++)
			for (i = 0; i < 2000; i++)
				CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x[k][i], sizes[k]), 0);
		CU_ASSERT_TRUE(upmd_iova_allocator_free_bytes(a) < total);
		if (round == 0) {
			upmd_iova_cache_flush(c);
			CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
			CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
		}
	}
	upmd_iova_cache_destroy(c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	upmd_iova_allocator_destroy(a);
}

static void test_cache_enospc(void)
{
	struct upmd_iova_allocator *a;
	struct upmd_iova_cache *c;
	uint64_t x, y, z, total;

	mk_cache(UPMD_MB, &a, &c);
	total = upmd_iova_allocator_free_bytes(a);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, G4K), 0);
	CU_ASSERT_TRUE(upmd_iova_allocator_free_bytes(a) < total);
	/* Only after the cached 4 KiB pieces come back does this fit. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, UPMD_MB - G4K, &y), 0);
	CU_ASSERT_EQUAL(y, UPMD_MB);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, y, UPMD_MB - G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);

	/* The same from a refill: everything else is taken directly. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, G4K), 0);
	z = upmd_iova_allocator_free_bytes(a);
	CU_ASSERT_EQUAL(upmd_iova_alloc(a, z, 0, &y), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, 32 * G4K, &x), 0);
	CU_ASSERT_EQUAL(x & (32 * G4K - 1), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, UPMD_MB, &z), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 32 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_free(a, y, total - 32 * G4K), 0);
	upmd_iova_cache_destroy(c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	upmd_iova_allocator_destroy(a);
}

/* Two lcores through one cache; a bit per granule says who holds what. */
#define STRESS_SPACE (8 * UPMD_GB)
#define STRESS_LIVE 64
#define HANDOFF 256

static struct {
	struct upmd_iova_cache *c;
	uint64_t *owned;	/* a bit per granule from UPMD_MB */
	uint64_t ops;
	uint64_t allocs[2], handed;
	unsigned errors;
	pthread_mutex_t lock;	/* the handoff between lcores */
	struct live handoff[HANDOFF];
	unsigned nhand;
} st;

static void st_error(const char *what, uint64_t iova, uint64_t size)
{
	if (__atomic_fetch_add(&st.errors, 1, __ATOMIC_RELAXED) < 10)
		printf("\n  lcore %u: %s 0x%" PRIx64 "+0x%" PRIx64 " ", upmd_lcore_id(), what, iova, size);
}

/* Set (take) or clear the bits of [iova, iova+size); every bit must flip. */
static void st_mark(uint64_t iova, uint64_t size, bool take)
{
	uint64_t g = (iova - UPMD_MB) / G4K, n = size / G4K;

	if (iova < UPMD_MB || iova + size > UPMD_MB + STRESS_SPACE) {
		st_error("outside the space", iova, size);
		return;
	}
	while (n) {
		unsigned b = (unsigned)(g % 64), k = (unsigned)UPMD_MIN(n, 64 - (uint64_t)b);
		uint64_t mask = (k == 64 ? ~0ULL : ((1ULL << k) - 1)) << b, old;

		if (take) {
			old = __atomic_fetch_or(&st.owned[g / 64], mask, __ATOMIC_ACQ_REL);
			if (old & mask)
				st_error("handed to two holders", iova, size);
		} else {
			old = __atomic_fetch_and(&st.owned[g / 64], ~mask, __ATOMIC_ACQ_REL);
			if ((old & mask) != mask)
				st_error("freed while not held", iova, size);
		}
		g += k;
		n -= k;
	}
}

static void st_free(struct live v)
{
	st_mark(v.iova, v.size, false);
	if (upmd_iova_cache_free(st.c, v.iova, v.size) != 0)
		st_error("free failed", v.iova, v.size);
}

static int stress(void *arg)
{
	uint64_t seed = (uintptr_t)arg, i;
	struct live live[STRESS_LIVE];
	unsigned nl = 0;

	for (i = 0; i < st.ops; i++) {
		uint64_t r = rnd(&seed) % 100;

		if (nl < STRESS_LIVE && (nl == 0 || r < 52)) {
			uint64_t size, x;

			if (r % 25 == 0)
				size = (3 + 2 * (rnd(&seed) % 8)) * G4K;	/* not a class */
			else if (r % 10 == 1)
				size = G4K << (rnd(&seed) % 11);		/* up to 4 MiB */
			else
				size = G4K << (rnd(&seed) % 5);			/* up to 64 KiB */
			if (upmd_iova_cache_alloc(st.c, size, &x) != 0) {
				st_error("alloc failed", 0, size);
				continue;
			}
			if (!(size & (size - 1)) && (x & (size - 1)))
				st_error("unaligned", x, size);
			st_mark(x, size, true);
			__atomic_fetch_add(&st.allocs[upmd_lcore_id() != upmd_get_main_lcore()], 1, __ATOMIC_RELAXED);
			live[nl++] = (struct live){ x, size };
		} else if (r < 90 || nl == 0) {
			unsigned k = (unsigned)(rnd(&seed) % nl);
			struct live v = live[k];

			live[k] = live[--nl];
			if (r < 60) {
				/* The other lcore frees this one. */
				pthread_mutex_lock(&st.lock);
				if (st.nhand < HANDOFF) {
					st.handoff[st.nhand++] = v;
					st.handed++;
					v.size = 0;
				}
				pthread_mutex_unlock(&st.lock);
			}
			if (v.size)
				st_free(v);
		} else {
			struct live v = { 0, 0 };

			pthread_mutex_lock(&st.lock);
			if (st.nhand)
				v = st.handoff[--st.nhand];
			pthread_mutex_unlock(&st.lock);
			if (v.size)
				st_free(v);
		}
	}
	while (nl)
		st_free(live[--nl]);
	return 0;
}

static void test_cache_two_lcores(void)
{
	struct upmd_iova_allocator *a;
	const char *env = getenv("UPMD_TEST_OPS");
	uint64_t total;
	unsigned worker = upmd_get_next_lcore((unsigned)-1, true);
	double t0 = now_s();
	int rc;

	CU_ASSERT_EQUAL_FATAL(upmd_lcore_count(), 2);
	CU_ASSERT_FATAL(worker < UPMD_MAX_LCORE);
	memset(&st, 0, sizeof(st));
	pthread_mutex_init(&st.lock, NULL);
	st.ops = (env ? strtoull(env, NULL, 0) : 1000000) / 2;
	st.owned = calloc(STRESS_SPACE / G4K / 64, sizeof(uint64_t));
	CU_ASSERT_PTR_NOT_NULL_FATAL(st.owned);
	mk_cache(STRESS_SPACE, &a, &st.c);
	total = upmd_iova_allocator_free_bytes(a);
	CU_ASSERT_EQUAL_FATAL(upmd_eal_remote_launch(stress, (void *)(uintptr_t)0xabcdef, worker), 0);
	rc = stress((void *)(uintptr_t)0x123457);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(upmd_eal_wait_lcore(worker), 0);
	while (st.nhand)
		st_free(st.handoff[--st.nhand]);
	CU_ASSERT_EQUAL(st.errors, 0);
	for (uint64_t i = 0; i < STRESS_SPACE / G4K / 64; i++)
		if (st.owned[i] && st.errors++ < 10)
			printf("\n  granule bits 0x%" PRIx64 " still held at word %" PRIu64 " ", st.owned[i], i);
	CU_ASSERT_EQUAL(st.errors, 0);
	upmd_iova_cache_destroy(st.c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_blocks(a), 1);
	CU_ASSERT_TRUE(st.allocs[0] > st.ops / 4 && st.allocs[1] > st.ops / 4);
	printf("\n  2 lcores x %" PRIu64 " ops in %.2f s (allocations %" PRIu64 " + %" PRIu64
	       ", %" PRIu64 " freed by the other lcore) ",
	       st.ops, now_s() - t0, st.allocs[0], st.allocs[1], st.handed);
	upmd_iova_allocator_destroy(a);
	free(st.owned);
	pthread_mutex_destroy(&st.lock);
}

static const struct upmd_test alloc_tests[] = {
	{ "create and argument errors", test_create_errors },
	{ "first fit: lowest address", test_first_fit },
	{ "alignment", test_alignment },
	{ "nothing below the floor", test_floor },
	{ "nothing in the hole between ranges", test_hole },
	{ "alloc_fixed: EEXIST, EINVAL", test_alloc_fixed },
	{ "free coalesces back to the initial blocks", test_coalesce },
	{ "free merges left, right, both", test_coalesce_sides },
	{ "double free and never-allocated ranges", test_double_free },
	{ "restrict: EBUSY changes nothing, success narrows", test_restrict },
	{ "exhaustion: ENOSPC, then recovery", test_exhaustion },
	{ "ranges ending at UINT64_MAX, sizes near 2^64", test_u64_max },
	{ "randomized against a reference model", test_property },
	{ NULL, NULL },
};

#ifndef NDEBUG
static void *free_on_other_thread(void *arg)
{
	uint64_t *v = arg;

	return upmd_iova_cache_free((struct upmd_iova_cache *)(uintptr_t)v[0], v[1], G4K) ? (void *)1 : NULL;
}

/* Debug builds: a cached class too refuses what the cache did not hand
 * out, where a magazine would otherwise take it and hand it out twice. */
static void test_cache_debug_bad_free(void)
{
	struct upmd_iova_allocator *a;
	struct upmd_iova_cache *c;
	uint64_t x, y, z, total, arg[2];
	pthread_t t;
	void *ret = (void *)9;

	mk_cache(UPMD_GB, &a, &c);
	total = upmd_iova_allocator_free_bytes(a);
	/* Double free of a cached 4 KiB IOVA, while the magazine has room. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, G4K), -ENOENT);
	/* So it is handed out once, not twice. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &y), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, G4K, &z), 0);
	CU_ASSERT_NOT_EQUAL(y, z);
	/* The wrong size, then the right one. */
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, y, 2 * G4K), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, y, G4K), 0);
	/* Never allocated (aligned, inside the space, and free). */
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, UPMD_ALIGN_UP(z + 64 * UPMD_MB, 64 * UPMD_MB), G4K), -ENOENT);
	/* Other sizes too: a 3-page IOVA twice. */
	CU_ASSERT_EQUAL(upmd_iova_cache_alloc(c, 3 * G4K, &x), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 3 * G4K), 0);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, x, 3 * G4K), -ENOENT);
	/* Handed out on this lcore, given back by a non-EAL thread: fine, once. */
	arg[0] = (uint64_t)(uintptr_t)c;
	arg[1] = z;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, free_on_other_thread, arg), 0);
	pthread_join(t, &ret);
	CU_ASSERT_PTR_NULL(ret);
	CU_ASSERT_EQUAL(upmd_iova_cache_free(c, z, G4K), -ENOENT);
	/* Nothing refused went astray: everything comes back. */
	upmd_iova_cache_flush(c);
	CU_ASSERT_EQUAL(upmd_iova_allocator_free_bytes(a), total);
	upmd_iova_cache_destroy(c);
	upmd_iova_allocator_destroy(a);
}
#endif

static const struct upmd_test cache_tests[] = {
	{ "cache create errors", test_cache_create },
	{ "cached pairs return the same IOVA", test_cache_same_iova },
	{ "class sizes are aligned to their size", test_cache_class_alignment },
	{ "other sizes and non-EAL threads go to the allocator", test_cache_fallthrough },
	{ "flush and destroy return everything", test_cache_flush_destroy },
	{ "ENOSPC: flush and retry once", test_cache_enospc },
	{ "two lcores through one cache", test_cache_two_lcores },
#ifndef NDEBUG
	{ "debug: double, foreign and wrong-size frees refused", test_cache_debug_bad_free },
#endif
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "iova_alloc", NULL, NULL, alloc_tests },
	       { "iova_cache", eal_up, eal_down, cache_tests })
