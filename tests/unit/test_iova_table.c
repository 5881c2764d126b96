/* The VA->IOVA table: leaves and pieces, GiB boundaries, errors that change nothing, splits, the reverse lookup, reset, a randomized run against a list of extents, and readers during writes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/iova.h>

#include "upmd_test.h"

#define K4 4096ULL
#define M2 (2ULL << 20)
#define G1 (1ULL << 30)
#define VA_TOP (1ULL << UPMD_IOVA_TABLE_VA_BITS)

/* The table never dereferences a VA: any number will do. */
static void *V(uint64_t a)
{
	return (void *)(uintptr_t)a;
}

static uint64_t L(uint64_t va)
{
	return upmd_iova_from_va(V(va));
}

static uint64_t T(void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* The 2 MiB entry for @va, read through the published layout. */
static uint64_t l2_entry(uint64_t va)
{
	return upmd_iova_table_l2[va >> UPMD_IOVA_TABLE_L2_SHIFT];
}

static bool is_leaf(uint64_t va)
{
	uint64_t e = l2_entry(va);

	return (e & UPMD_IOVA_TE_VALID) && !(e & UPMD_IOVA_TE_TABLE);
}

static bool is_split(uint64_t va)
{
	return (l2_entry(va) & UPMD_IOVA_TE_TABLE) != 0;
}

/* The lookup of every page (at an offset inside it) of [va, va + pages * 4 KiB). */
static void snapshot(uint64_t va, unsigned pages, uint64_t *out)
{
	unsigned i;

	for (i = 0; i < pages; i++)
		out[i] = L(va + i * K4 + 0x123);
}

static int suite_reset(void)
{
	upmd_iova_table_reset();
	return 0;
}

static void test_unmapped(void)
{
	const uint64_t base = 0x100000000000ULL;

	upmd_iova_table_reset();
	CU_ASSERT_EQUAL(upmd_iova_from_va(NULL), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(0x7f0000000000ULL), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(VA_TOP - 1), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(VA_TOP), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(0xffff800000000000ULL), UPMD_BAD_IOVA);	/* kernel half */
	CU_ASSERT_EQUAL(L(UINT64_MAX), UPMD_BAD_IOVA);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(UPMD_BAD_IOVA));

	/* One chunk recorded: its neighbours, the rest of its GiB and the next GiB are not. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(base + 4 * M2), 0x200000, M2), 0);
	CU_ASSERT_EQUAL(L(base + 4 * M2), 0x200000);
	CU_ASSERT_EQUAL(L(base), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(base + 3 * M2 + M2 - 1), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(base + 5 * M2), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(base + G1 - 1), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(base + G1), UPMD_BAD_IOVA);
	CU_ASSERT_FALSE(upmd_iova_table_span_used_(V(base + G1)));
	CU_ASSERT_FALSE(upmd_iova_table_span_used_(V(base - G1)));
	/* The same VA with the high bits set is not the same address. */
	CU_ASSERT_EQUAL(L(base + 4 * M2 + VA_TOP), UPMD_BAD_IOVA);
	upmd_iova_table_reset();
}

static void check_span(uint64_t va, uint64_t iova, uint64_t len)
{
	CU_ASSERT_EQUAL(L(va), iova);
	CU_ASSERT_EQUAL(L(va + len / 2 + 123), iova + len / 2 + 123);
	CU_ASSERT_EQUAL(L(va + len - 1), iova + len - 1);
	CU_ASSERT_EQUAL(L(va + len), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(va - 1), UPMD_BAD_IOVA);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(iova), V(va));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(iova + len - 1), V(va + len - 1));
}

/* 2 MiB-aligned spans take level-2 leaves, whatever the IOVA's alignment. */
static void test_hugepage_spans(void)
{
	const uint64_t base = 0x7f1234400000ULL, len = 4 * M2;
	uint64_t a;

	upmd_iova_table_reset();
	/* IOVA = VA. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(base), base, len), 0);
	check_span(base, base, len);
	for (a = base; a < base + len; a += M2) {
		CU_ASSERT_TRUE(is_leaf(a));
		CU_ASSERT_EQUAL(l2_entry(a), UPMD_IOVA_TE_VALID);	/* delta 0 */
	}
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(base), len), 0);
	CU_ASSERT_EQUAL(L(base), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(base + len - 1), UPMD_BAD_IOVA);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(base));

	/* A compact IOVA, only 4 KiB aligned: still one leaf per chunk. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(base), 0x1000, len), 0);
	check_span(base, 0x1000, len);
	for (a = base; a < base + len; a += M2) {
		CU_ASSERT_TRUE(is_leaf(a));
		CU_ASSERT_EQUAL(l2_entry(a) & ~UPMD_IOVA_TE_FLAGS, 0x1000 - base);
	}
	/* The next hugepage at the next compact IOVA. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(base + len), 0x1000 + len, M2), 0);
	check_span(base, 0x1000, len + M2);
	CU_ASSERT_TRUE(is_leaf(base + len));

	/* A 1 GiB page: 512 leaves. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(0x7e0000000000ULL), 0x40000000, G1), 0);
	check_span(0x7e0000000000ULL, 0x40000000, G1);
	CU_ASSERT_TRUE(is_leaf(0x7e0000000000ULL + G1 - M2));
	upmd_iova_table_reset();
}

/* 4 KiB pieces of one 2 MiB chunk, each at its own IOVA. */
static void test_pieces(void)
{
	const uint64_t c = 0x7f0000600000ULL;
	const unsigned pg[] = { 511, 0, 1, 7, 300 };
	const uint64_t io[] = { 0x9000, 0x3000, 0x7fff0000, 0x100000000ULL, 0x5000 };
	unsigned i;

	upmd_iova_table_reset();
	for (i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + pg[i] * K4), io[i], K4), 0);
	CU_ASSERT_TRUE(is_split(c));
	for (i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(L(c + pg[i] * K4), io[i]);
		CU_ASSERT_EQUAL(L(c + pg[i] * K4 + K4 - 1), io[i] + K4 - 1);
		CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io[i] + 9), V(c + pg[i] * K4 + 9));
	}
	CU_ASSERT_EQUAL(L(c + 2 * K4), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + 510 * K4), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + M2), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c - 1), UPMD_BAD_IOVA);

	/* Fill the rest with a run: every page right. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 2 * K4), 0x20000000, 5 * K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 8 * K4), 0x30000000, (300 - 8) * K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 301 * K4), 0x40000000, (511 - 301) * K4), 0);
	for (i = 0; i < 512; i++) {
		uint64_t want = i == 0 ? 0x3000 : i == 1 ? 0x7fff0000 : i < 7 ? 0x20000000 + (i - 2) * K4 :
				i == 7 ? 0x100000000ULL : i < 300 ? 0x30000000 + (i - 8) * K4 :
				i == 300 ? 0x5000 : i < 511 ? 0x40000000 + (i - 301) * K4 : 0x9000;

		CU_ASSERT_EQUAL(L(c + i * K4 + 17), want + 17);
	}

	/* Emptied, the level-3 table stays; a whole chunk set over it makes a leaf again. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c), M2), 0);
	CU_ASSERT_EQUAL(L(c), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + M2 - 1), UPMD_BAD_IOVA);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x9000));
	CU_ASSERT_TRUE(is_split(c));
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), 0x800000, M2), 0);
	check_span(c, 0x800000, M2);
	CU_ASSERT_TRUE(is_leaf(c));
	/* Split again (the retired table comes back), rejoin, clear. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + 9 * K4), K4), 0);
	CU_ASSERT_TRUE(is_split(c));
	CU_ASSERT_EQUAL(L(c + 8 * K4), 0x800000 + 8 * K4);
	CU_ASSERT_EQUAL(L(c + 9 * K4), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + 10 * K4), 0x800000 + 10 * K4);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 9 * K4), 0x800000 + 9 * K4, K4), 0);
	check_span(c, 0x800000, M2);
	upmd_iova_table_reset();
}

/* A span from 4 KiB pieces before a GiB boundary, over leaves, to pieces after it. */
static void test_gib_boundary(void)
{
	const uint64_t g = 0x7f0040000000ULL, va = g - 3 * M2 - 2 * K4, len = 3 * M2 + 2 * K4 + 2 * M2 + 3 * K4;
	const uint64_t iova = 0x2000000;
	uint64_t a;

	upmd_iova_table_reset();
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(va), iova, len), 0);
	for (a = va - K4; a < va + len + K4; a += K4) {
		uint64_t want = a < va || a >= va + len ? UPMD_BAD_IOVA : iova + (a - va) + 0xfff;

		if (L(a + 0xfff) != want) {
			printf("\n  VA %#llx: %#llx, not %#llx\n", (unsigned long long)a,
			       (unsigned long long)L(a + 0xfff), (unsigned long long)want);
			CU_FAIL("wrong lookup across the GiB boundary");
			break;
		}
	}
	check_span(va, iova, len);
	CU_ASSERT_EQUAL(L(g - 1), iova + (g - 1 - va));
	CU_ASSERT_EQUAL(L(g), iova + (g - va));
	CU_ASSERT_TRUE(is_split(g - 4 * M2));
	CU_ASSERT_TRUE(is_leaf(g - 2 * M2));
	CU_ASSERT_TRUE(is_leaf(g));
	CU_ASSERT_TRUE(is_leaf(g + M2));
	CU_ASSERT_TRUE(is_split(g + 2 * M2));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(iova + (g - va)), V(g));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(iova + (g - va) - 1), V(g - 1));

	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(va), len), 0);
	for (a = va; a < va + len; a += K4)
		if (L(a) != UPMD_BAD_IOVA) {
			CU_FAIL("a cleared page still looks recorded");
			break;
		}
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(iova));
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(va), len), -ENOENT);
	upmd_iova_table_reset();
}

/* -EEXIST for any overlap, and nothing changes. */
static void test_exists(void)
{
	const uint64_t c = 0x7f0000000000ULL + G1 - 4 * M2;	/* chunks c, c+2M, c+4M, c+6M (next GiB) */
	enum { PAGES = 4 * 512 };
	static uint64_t before[PAGES], after[PAGES];
	const struct { uint64_t va, len; } bad[] = {
		{ c + M2, M2 },			/* exactly the leaf */
		{ c + M2 - K4, 2 * K4 },		/* free page, then the leaf's first */
		{ c + 2 * M2 - K4, 2 * K4 },		/* the leaf's last, then a free page */
		{ c + M2 + 100 * K4, K4 },		/* one page inside the leaf */
		{ c, 4 * M2 },				/* a superset, across the GiB */
		{ c + 10 * K4, K4 },			/* exactly a piece */
		{ c + 2 * M2, 2 * M2 + 5 * K4 },	/* free except the piece in the next GiB */
	};
	unsigned i;

	upmd_iova_table_reset();
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c + M2), 0x10000000, M2), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c + 10 * K4), 0x20000000, K4), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c + 3 * M2 + 4 * K4), 0x30000000, K4), 0);
	snapshot(c, PAGES, before);
	for (i = 0; i < UPMD_DIM(bad); i++) {
		CU_ASSERT_EQUAL(upmd_iova_table_set(V(bad[i].va), 0x50000000, bad[i].len), -EEXIST);
		CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x50000000));
	}
	snapshot(c, PAGES, after);
	CU_ASSERT_EQUAL(memcmp(before, after, sizeof(before)), 0);
	CU_ASSERT_TRUE(is_leaf(c + M2));
	CU_ASSERT_FALSE(is_split(c + 2 * M2));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x10000000 + 5), V(c + M2 + 5));
	/* The free gaps between them are still free to take. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 2 * M2), 0x60000000, M2 + 4 * K4), 0);
	CU_ASSERT_EQUAL(L(c + 3 * M2 + 3 * K4), 0x60000000 + M2 + 3 * K4);
	CU_ASSERT_EQUAL(L(c + 3 * M2 + 4 * K4), 0x30000000);
	upmd_iova_table_reset();
}

/* Clearing part of a 2 MiB leaf splits it; the rest keeps its IOVAs. */
static void test_split(void)
{
	const uint64_t c = 0x7f0000c00000ULL, io = 0x40000000;
	uint64_t a;

	upmd_iova_table_reset();
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c), io, 3 * M2), 0);
	CU_ASSERT_TRUE(is_leaf(c + M2));
	/* One page out of the middle leaf. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + M2 + 5 * K4), K4), 0);
	CU_ASSERT_TRUE(is_split(c + M2));
	CU_ASSERT_TRUE(is_leaf(c));
	CU_ASSERT_TRUE(is_leaf(c + 2 * M2));
	CU_ASSERT_EQUAL(L(c + M2 + 5 * K4), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + M2 + 5 * K4 + K4 - 1), UPMD_BAD_IOVA);
	for (a = c; a < c + 3 * M2; a += K4)
		if (a != c + M2 + 5 * K4 && L(a + 7) != io + (a - c) + 7) {
			CU_FAIL("the split lost a page");
			break;
		}
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io + M2 + 5 * K4));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + M2 + 4 * K4), V(c + M2 + 4 * K4));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + M2 + 6 * K4), V(c + M2 + 6 * K4));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io), V(c));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + 3 * M2 - 1), V(c + 3 * M2 - 1));

	/* Across two leaves: the last pages of one, the first of the next. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + 2 * M2 - 3 * K4), 5 * K4), 0);
	CU_ASSERT_TRUE(is_split(c + 2 * M2));
	CU_ASSERT_EQUAL(L(c + 2 * M2 - 4 * K4), io + 2 * M2 - 4 * K4);
	CU_ASSERT_EQUAL(L(c + 2 * M2 - 3 * K4), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + 2 * M2 + K4), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(L(c + 2 * M2 + 2 * K4), io + 2 * M2 + 2 * K4);
	CU_ASSERT_EQUAL(L(c + 3 * M2 - 1), io + 3 * M2 - 1);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io + 2 * M2));

	/* Put a hole back: the extents join up again. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + M2 + 5 * K4), io + M2 + 5 * K4, K4), 0);
	CU_ASSERT_EQUAL(L(c + M2 + 5 * K4), io + M2 + 5 * K4);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + M2 + 5 * K4), V(c + M2 + 5 * K4));
	/* Now the hole at the chunk boundary is the only one: clearing over it fails. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c), 3 * M2), -ENOENT);
	CU_ASSERT_EQUAL(L(c), io);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c), 2 * M2 - 3 * K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + 2 * M2 + 2 * K4), M2 - 2 * K4), 0);
	for (a = c; a < c + 3 * M2; a += K4)
		if (L(a) != UPMD_BAD_IOVA) {
			CU_FAIL("a page is left");
			break;
		}
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io + M2));
	upmd_iova_table_reset();
}

/* -ENOENT when any part is not recorded, and nothing changes. */
static void test_not_recorded(void)
{
	const uint64_t c = 0x7f0000e00000ULL;
	enum { PAGES = 3 * 512 };
	static uint64_t before[PAGES], after[PAGES];

	upmd_iova_table_reset();
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(0x500000000000ULL), K4), -ENOENT);	/* untouched GiB */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c), 0x1000000, M2), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c + M2), 0x3000000, 10 * K4), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(c + M2 + 11 * K4), 0x4000000, 10 * K4), 0);
	snapshot(c, PAGES, before);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + 2 * M2), K4), -ENOENT);		/* empty chunk, known GiB */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c - K4), 2 * K4), -ENOENT);		/* free, then the leaf */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c), M2 + 21 * K4), -ENOENT);		/* a hole at piece 10 */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + M2 + 10 * K4), K4), -ENOENT);	/* just the hole */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + M2 + 20 * K4), 2 * K4), -ENOENT);	/* last piece and past */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + M2 - K4), M2), -ENOENT);
	snapshot(c, PAGES, after);
	CU_ASSERT_EQUAL(memcmp(before, after, sizeof(before)), 0);
	CU_ASSERT_TRUE(is_leaf(c));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x1000000 + M2 - 1), V(c + M2 - 1));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x4000000), V(c + M2 + 11 * K4));
	upmd_iova_table_reset();
}

static void test_invalid(void)
{
	const uint64_t c = 0x7f0001000000ULL;

	upmd_iova_table_reset();
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 1), 0x1000, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c + 2048), 0x1000, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), 0x1001, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), 0x1000, K4 + 512), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), 0x1000, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(VA_TOP), 0x1000, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(VA_TOP - K4), 0x1000, 2 * K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(UINT64_MAX & ~0xfffULL), 0x1000, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), 0x1000, SIZE_MAX & ~(size_t)0xfff), -EINVAL);
	/* The IOVA range may not wrap or reach UPMD_BAD_IOVA. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), UINT64_MAX & ~0xfffULL, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(c), UINT64_MAX & ~0xfffULL, 2 * K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c + 8), K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c), 100), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(c), 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(VA_TOP - K4), 2 * K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(VA_TOP), K4), -EINVAL);
	CU_ASSERT_EQUAL(L(c), UPMD_BAD_IOVA);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x1000));

	/* The edges themselves are fine: the last user page, the last IOVA page. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(VA_TOP - K4), 0xffffffffffffe000ULL, K4), 0);
	CU_ASSERT_EQUAL(L(VA_TOP - 1), 0xffffffffffffefffULL);
	CU_ASSERT_EQUAL(L(VA_TOP - K4), 0xffffffffffffe000ULL);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0xffffffffffffefffULL), V(VA_TOP - 1));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(UINT64_MAX));
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(VA_TOP - K4), K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(0), 0, M2), 0);	/* page 0 at IOVA 0 */
	CU_ASSERT_EQUAL(L(0x10), 0x10);
	CU_ASSERT_EQUAL(upmd_iova_from_va(NULL), 0);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(M2 - 1), V(M2 - 1));
	upmd_iova_table_reset();
}

/* The reverse lookup follows merges, cuts and IOVAs shared by two VAs. */
static void test_to_va(void)
{
	const uint64_t a = 0x7f0002000000ULL, io = 0x70000000;
	unsigned i;

	upmd_iova_table_reset();
	/* Three pieces contiguous in VA and IOVA, in an odd order, then one elsewhere. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(a + 4 * K4), io + 4 * K4, 4 * K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(a), io, 4 * K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(a + 8 * K4), io + 8 * K4, 4 * K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(a + 12 * K4), 0x1000, 4 * K4), 0);
	for (i = 0; i < 12; i++)
		CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + i * K4 + 99), V(a + i * K4 + 99));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x1000), V(a + 12 * K4));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x4fff), V(a + 16 * K4 - 1));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x5000));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0xfff));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io + 12 * K4));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io - 1));
	/* A hole in the middle of the merged extent. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(a + 6 * K4), K4), 0);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io + 6 * K4));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + 6 * K4 - 1), V(a + 6 * K4 - 1));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io + 7 * K4), V(a + 7 * K4));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(io), V(a));
	/* One clear over pieces at unrelated IOVAs. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(a + 7 * K4), 7 * K4), 0);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(io + 8 * K4));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x1000));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x3000), V(a + 14 * K4));

	/* The same IOVA at two VAs (a double mapping): either answer, then the one left. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(0x600000000000ULL), 0x90000000, 2 * M2), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(0x600000000000ULL + 4 * M2), 0x90000000, 2 * M2), 0);
	CU_ASSERT_EQUAL(L(0x600000000000ULL + 4 * M2 + 5), 0x90000000 + 5);
	{
		uint64_t p = T(upmd_iova_table_to_va(0x90000000 + M2));

		CU_ASSERT_TRUE(p == 0x600000000000ULL + M2 || p == 0x600000000000ULL + 5 * M2);
	}
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(0x600000000000ULL + 4 * M2), M2), 0);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x90000000 + 5), V(0x600000000000ULL + 5));
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(0x600000000000ULL), 2 * M2), 0);
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x90000000 + 5));
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x90000000 + M2 + 5), V(0x600000000000ULL + 5 * M2 + 5));
	upmd_iova_table_reset();
}

static void test_reset(void)
{
	const uint64_t vas[] = { 0x1000, 0x7f0003000000ULL, 0x7f0003200000ULL + 5 * K4, 0x400000000000ULL, VA_TOP - M2 };
	unsigned i;

	upmd_iova_table_reset();
	for (i = 0; i < UPMD_DIM(vas); i++)
		CU_ASSERT_EQUAL(upmd_iova_table_set(V(vas[i]), 0x100000 * (i + 1), i == 2 ? K4 : M2 - K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(0x7f0003000000ULL + 8 * K4), K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_spans_(), 4);
	upmd_iova_table_reset();
	for (i = 0; i < UPMD_DIM(vas); i++) {
		CU_ASSERT_EQUAL(L(vas[i]), UPMD_BAD_IOVA);
		CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x100000 * (i + 1)));
	}
	CU_ASSERT_EQUAL(upmd_iova_table_spans_(), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(V(vas[1]), K4), -ENOENT);
	/* Usable again, and twice in a row is fine. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(V(vas[1]), 0x100000, M2), 0);
	CU_ASSERT_EQUAL(L(vas[1] + 5), 0x100000 + 5);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x100000 + 5), V(vas[1] + 5));
	upmd_iova_table_reset();
	upmd_iova_table_reset();
	CU_ASSERT_EQUAL(L(vas[1]), UPMD_BAD_IOVA);
}

/* ---- randomized, against a sorted list of extents ---------------------------- */

struct rext {
	uint64_t va, iova, len;
};

static struct rext *ref;
static size_t ref_n, ref_cap, ref_max;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? rng % n : rng;
}

/* The first extent that ends after @va. */
static size_t ref_after(uint64_t va)
{
	size_t lo = 0, hi = ref_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ref[mid].va + ref[mid].len <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t ref_lookup(uint64_t va)
{
	size_t i = ref_after(va);

	return i < ref_n && ref[i].va <= va ? ref[i].iova + (va - ref[i].va) : UPMD_BAD_IOVA;
}

static bool ref_any(uint64_t va, uint64_t len)
{
	size_t i = ref_after(va);

	return i < ref_n && ref[i].va < va + len;
}

static bool ref_all(uint64_t va, uint64_t len)
{
	size_t i = ref_after(va);
	uint64_t a = va;

	for (; a < va + len; i++) {
		if (i >= ref_n || ref[i].va > a)
			return false;
		a = ref[i].va + ref[i].len;
	}
	return true;
}

static void ref_insert_at(size_t i, uint64_t va, uint64_t iova, uint64_t len)
{
	if (ref_n == ref_cap) {
		ref_cap = ref_cap ? ref_cap * 2 : 1024;
		ref = realloc(ref, ref_cap * sizeof(*ref));
		CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
	}
	memmove(&ref[i + 1], &ref[i], (ref_n - i) * sizeof(*ref));
	ref[i] = (struct rext){ va, iova, len };
	ref_n++;
	if (ref_n > ref_max)
		ref_max = ref_n;
}

static void ref_set(uint64_t va, uint64_t iova, uint64_t len)
{
	ref_insert_at(ref_after(va), va, iova, len);
}

/* Wholly recorded: cut [va, va+len) out. */
static void ref_clear(uint64_t va, uint64_t len)
{
	uint64_t end = va + len;
	size_t i = ref_after(va);

	while (i < ref_n && ref[i].va < end) {
		struct rext x = ref[i];
		uint64_t xend = x.va + x.len;

		if (x.va < va && xend > end) {
			ref[i].len = va - x.va;
			ref_insert_at(i + 1, end, x.iova + (end - x.va), xend - end);
			return;
		}
		if (x.va < va) {
			ref[i].len = va - x.va;
			i++;
		} else if (xend > end) {
			ref[i] = (struct rext){ end, x.iova + (end - x.va), xend - end };
			return;
		} else {
			memmove(&ref[i], &ref[i + 1], (ref_n - i - 1) * sizeof(*ref));
			ref_n--;
		}
	}
}

#define R_BASE (0x200000000000ULL + G1 - 3 * M2)	/* starts 3 MiB below a GiB boundary */
#define R_PAGES (1ULL << 20)				/* 4 GiB: five level-2 tables */
#define R_HOT (R_BASE + 2 * G1 + 3 * M2 - 16 * M2)	/* 32 MiB around a GiB boundary */
#define R_HOT_PAGES 8192
#define R_IDENT (1ULL << 56)				/* IOVA = VA + R_IDENT */

static uint64_t pick_va(void)
{
	return rnd(2) ? R_BASE + rnd(R_PAGES) * K4 : R_HOT + rnd(R_HOT_PAGES) * K4;
}

static uint64_t pick_pages(uint64_t va)
{
	uint64_t n, left = (R_BASE + R_PAGES * K4 - va) / K4;

	switch (rnd(10)) {
	case 0: case 1: case 2: case 3:
		n = 1 + rnd(8);
		break;
	case 4: case 5:
		n = 1 + rnd(700);
		break;
	case 6: case 7: case 8:
		n = 512 * (1 + rnd(3));	/* whole chunks when va is chunk-aligned */
		break;
	default:
		n = 1 + rnd(16384);
		break;
	}
	return n < left ? n : left;
}

static int by_iova(const void *a, const void *b)
{
	const struct rext *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* The reverse lookup in a copy of the reference sorted by IOVA (IOVAs are unique here). */
static void *ref_to_va(const struct rext *s, size_t n, uint64_t iova)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s[mid].iova + s[mid].len <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && s[lo].iova <= iova ? V(s[lo].va + (iova - s[lo].iova)) : NULL;
}

/* Every page of the space; both ends of every extent, and just outside them, both ways. */
static bool full_check(void)
{
	struct rext *s = malloc((ref_n + 1) * sizeof(*s));
	uint64_t p;
	size_t i = 0;
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memcpy(s, ref, ref_n * sizeof(*s));
	qsort(s, ref_n, sizeof(*s), by_iova);
	for (i = 0; i < ref_n && ok; i++)
		ok = upmd_iova_table_to_va(ref[i].iova - 1) == ref_to_va(s, ref_n, ref[i].iova - 1) &&
		     upmd_iova_table_to_va(ref[i].iova + ref[i].len) == ref_to_va(s, ref_n, ref[i].iova + ref[i].len);
	free(s);
	if (!ok) {
		printf("\n  reverse lookup next to an extent wrong\n");
		return false;
	}
	i = 0;

	for (p = 0; p < R_PAGES; p++) {
		uint64_t va = R_BASE + p * K4, want = UPMD_BAD_IOVA;

		while (i < ref_n && ref[i].va + ref[i].len <= va)
			i++;
		if (i < ref_n && ref[i].va <= va)
			want = ref[i].iova + (va - ref[i].va);
		if (L(va) != want || L(va + K4 - 1) != (want == UPMD_BAD_IOVA ? want : want + K4 - 1)) {
			printf("\n  VA %#llx: %#llx, not %#llx\n", (unsigned long long)va,
			       (unsigned long long)L(va), (unsigned long long)want);
			return false;
		}
	}
	for (i = 0; i < ref_n; i++)
		if (upmd_iova_table_to_va(ref[i].iova) != V(ref[i].va) ||
		    upmd_iova_table_to_va(ref[i].iova + ref[i].len - 1) != V(ref[i].va + ref[i].len - 1)) {
			printf("\n  reverse lookup of %#llx wrong\n", (unsigned long long)ref[i].iova);
			return false;
		}
	return true;
}

static void test_random(void)
{
	enum { OPS = 100000 };
	uint64_t next_iova = 0x100000, sets = 0, clears = 0, eexist = 0, enoent = 0, leaves = 0, splits = 0;
	unsigned op;
	bool ok = true;

	upmd_iova_table_reset();
	ref_n = ref_max = 0;
	rng = 0x9e3779b97f4a7c15ULL;
	for (op = 0; op < OPS && ok; op++) {
		uint64_t va, n, len, r = rnd(100);
		int rc;

		if (r < 45) {
			/* Set: a compact IOVA never used before, or IOVA = VA + constant. */
			uint64_t iova;
			bool ident = rnd(2);

			va = pick_va();
			if (rnd(3) == 0)
				va &= ~(M2 - 1);
			if (va < R_BASE)
				va = R_BASE;
			n = pick_pages(va);
			len = n * K4;
			iova = ident ? va + R_IDENT : next_iova;
			rc = upmd_iova_table_set(V(va), iova, len);
			if (ref_any(va, len)) {
				ok &= rc == -EEXIST;
				eexist++;
				if (!ident)
					ok &= upmd_iova_table_to_va(iova) == NULL;
			} else {
				ok &= rc == 0;
				ref_set(va, iova, len);
				sets++;
				if (!ident)
					next_iova += len + K4 * (1 + rnd(4));
				if (!(va & (M2 - 1)) && len >= M2)
					leaves += is_leaf(va);
			}
		} else if (r < 95) {
			/* Clear: mostly inside or across recorded extents, sometimes anywhere. */
			if (ref_n && rnd(5)) {
				const struct rext *x = &ref[rnd(ref_n)];
				uint64_t xp = x->len / K4, first = rnd(xp);

				va = x->va + first * K4;
				switch (rnd(4)) {
				case 0:
					n = xp - first;			/* to its end */
					break;
				case 1:
					n = 1 + rnd(xp - first);		/* inside it */
					break;
				case 2:
					n = xp - first + 1 + rnd(1024);	/* past its end */
					break;
				default:
					va = x->va;
					n = xp;				/* exactly it */
					break;
				}
				if (va + n * K4 > R_BASE + R_PAGES * K4)
					n = (R_BASE + R_PAGES * K4 - va) / K4;
			} else {
				va = pick_va();
				n = pick_pages(va);
			}
			len = n * K4;
			{
				bool split = !is_split(va & ~(M2 - 1)) && is_leaf(va) && (va & (M2 - 1));

				rc = upmd_iova_table_clear(V(va), len);
				if (ref_all(va, len)) {
					uint64_t probe[8], k;

					/* IOVAs are never shared here: the cleared ones are gone. */
					probe[0] = va;
					probe[1] = va + len - 1;
					for (k = 2; k < 8; k++)
						probe[k] = va + rnd(len);
					for (k = 0; k < 8; k++)
						probe[k] = ref_lookup(probe[k]);
					ok &= rc == 0;
					ref_clear(va, len);
					clears++;
					splits += split && is_split(va);
					for (k = 0; k < 8; k++)
						ok &= upmd_iova_table_to_va(probe[k]) == NULL;
				} else {
					ok &= rc == -ENOENT;
					enoent++;
				}
			}
		}
		/* Lookups: anywhere, inside an extent, one past an extent. */
		va = pick_va() + rnd(K4);
		ok &= L(va) == ref_lookup(va);
		if (ref_n) {
			const struct rext *x = &ref[rnd(ref_n)];
			uint64_t off = rnd(x->len);

			ok &= L(x->va + off) == x->iova + off;
			ok &= upmd_iova_table_to_va(x->iova + off) == V(x->va + off);
			ok &= L(x->va + x->len) == ref_lookup(x->va + x->len);
		}
		if (!ok)
			printf("\n  op %u disagrees with the reference\n", op);
		if (ok && op % 10000 == 9999)
			ok = full_check();
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_TRUE(full_check());
	/* The run did exercise what it is for. */
	printf("\n  %llu sets, %llu clears, %llu -EEXIST, %llu -ENOENT, %llu leaves, %llu splits, up to %zu extents ",
	       (unsigned long long)sets, (unsigned long long)clears, (unsigned long long)eexist,
	       (unsigned long long)enoent, (unsigned long long)leaves, (unsigned long long)splits, ref_max);
	CU_ASSERT_TRUE(sets > 10000 && clears > 10000 && eexist > 1000 && enoent > 1000);
	CU_ASSERT_TRUE(leaves > 100 && splits > 100);
	upmd_iova_table_reset();
	free(ref);
	ref = NULL;
	ref_n = ref_cap = 0;
}

/* ---- readers during writes ------------------------------------------------------ */

/*
 * Around the GiB boundary G: [G-8M, G-6M) one stable leaf; [G-6M, G-4M)
 * pages 0-63 stable pieces, 64-511 churned pieces; [G-4M, G-2M) and
 * [G, G+2M) churned as leaves, pieces and splits (the level-2 table of
 * G's GiB is first published while the readers run); [G-2M, G) never
 * recorded. Every page has the one IOVA it may ever be recorded at.
 */
#define C_G 0x3c0000000000ULL
#define C_STABLE (C_G - 4 * M2)
#define C_MIXED (C_G - 3 * M2)
#define C_CHURN1 (C_G - 2 * M2)
#define C_CHURN2 C_G

static uint64_t c_expect(uint64_t va)
{
	uint64_t p = (va & (M2 - 1)) / K4, off = va & (K4 - 1);

	if (va >= C_STABLE && va < C_STABLE + M2)
		return 0x10000000 + (va - C_STABLE);
	if (va >= C_MIXED && va < C_MIXED + M2)
		return p < 64 ? 0x20000000 + (63 - p) * K4 + off : 0x30000000 + (p * 37 % 512) * K4 + off;
	if (va >= C_CHURN1 && va < C_CHURN1 + M2)
		return 0x123456000ULL + (va - C_CHURN1);
	if (va >= C_CHURN2 && va < C_CHURN2 + M2)
		return 0x5000 + (va - C_CHURN2);
	return UPMD_BAD_IOVA;
}

struct reader {
	bool stop;
	uint64_t lookups, wrong, churn_bad, churn_good;
	uint64_t seed;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t s = r->seed;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		unsigned k;

		for (k = 0; k < 256; k++) {
			uint64_t va, got;
			bool stable;

			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			va = C_STABLE + s % (5 * M2);
			got = L(va);
			stable = va < C_MIXED || (va < C_MIXED + M2 && (va - C_MIXED) < 64 * K4);
			r->lookups++;
			if (stable) {
				r->wrong += got != c_expect(va);
			} else if (got == UPMD_BAD_IOVA) {
				r->churn_bad++;
			} else {
				r->churn_good++;
				r->wrong += got != c_expect(va);
			}
		}
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A churned page run [p, p+n) of chunk @c (pages p..p+n-1), set or cleared. */
static int churn_op(uint64_t c, unsigned p, unsigned n, bool set, bool *map)
{
	unsigned i;
	int rc;

	for (i = p; i < p + n; i++)
		if (map[i] != !set)
			return 1;	/* not all in the state this op needs */
	if (set)
		rc = upmd_iova_table_set(V(c + p * K4), c_expect(c + p * K4), n * K4);
	else
		rc = upmd_iova_table_clear(V(c + p * K4), n * K4);
	if (rc == 0)
		for (i = p; i < p + n; i++)
			map[i] = set;
	return rc;
}

static void test_readers_during_writes(void)
{
	static bool map[3][512];	/* mixed, churn1, churn2 */
	const uint64_t chunks[3] = { C_MIXED, C_CHURN1, C_CHURN2 };
	struct reader r[2];
	pthread_t th[2];
	uint64_t s = 42, ops = 0, failures = 0, leaves = 0;
	unsigned i, k;
	double end;

	upmd_iova_table_reset();
	memset(map, 0, sizeof(map));
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(C_STABLE), c_expect(C_STABLE), M2), 0);
	for (k = 0; k < 64; k++)
		CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(V(C_MIXED + k * K4), c_expect(C_MIXED + k * K4), K4), 0);
	CU_ASSERT_FALSE(upmd_iova_table_span_used_(V(C_G)));
	for (i = 0; i < 2; i++) {
		r[i] = (struct reader){ .seed = 0x1234567 + i };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
	}
	for (end = now() + 1.0; now() < end;) {
		for (k = 0; k < 64; k++) {
			unsigned c, p, n;
			int rc;

			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			c = s % 3;
			if (c && s % 97 == 0) {
				/* The whole chunk: a leaf on, or everything off. */
				bool on = !map[c][0];

				for (p = 0; p < 512; p++)
					if (map[c][p] == on)
						churn_op(chunks[c], p, 1, !on, map[c]);
				rc = churn_op(chunks[c], 0, 512, on, map[c]);
				leaves += on && rc == 0 && is_leaf(chunks[c]);
			} else {
				p = c ? (s >> 8) % 512 : 64 + (s >> 8) % 448;
				n = c ? 1 + (s >> 20) % 4 : 1;	/* mixed: scattered IOVAs */
				if (p + n > 512)
					n = 512 - p;
				rc = churn_op(chunks[c], p, n, !map[c][p], map[c]);
			}
			failures += rc < 0;
			ops++;
		}
	}
	for (i = 0; i < 2; i++)
		__atomic_store_n(&r[i].stop, true, __ATOMIC_RELAXED);
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		printf("\n  reader %u: %llu lookups, %llu churned BAD, %llu churned right, %llu wrong", i,
		       (unsigned long long)r[i].lookups, (unsigned long long)r[i].churn_bad,
		       (unsigned long long)r[i].churn_good, (unsigned long long)r[i].wrong);
		CU_ASSERT_EQUAL(r[i].wrong, 0);
		CU_ASSERT_TRUE(r[i].lookups > 0);
	}
	printf("\n  writer: %llu ops, %llu leaves ", (unsigned long long)ops, (unsigned long long)leaves);
	CU_ASSERT_EQUAL(failures, 0);
	CU_ASSERT_TRUE(leaves > 0);
	/* The writer's view is exact afterwards. */
	for (i = 0; i < 3; i++)
		for (k = 0; k < 512; k++) {
			uint64_t va = chunks[i] + k * K4 + 5;

			if (i == 0 && k < 64)
				continue;
			if (L(va) != (map[i][k] ? c_expect(va) : UPMD_BAD_IOVA)) {
				CU_FAIL("the table disagrees with the writer's map");
				i = 3;
				break;
			}
		}
	upmd_iova_table_reset();
}

static const struct upmd_test tests[] = {
	{ "unmapped addresses", test_unmapped },
	{ "2 MiB spans: IOVA = VA and compact IOVAs", test_hugepage_spans },
	{ "4 KiB pieces of one chunk", test_pieces },
	{ "a span across a GiB boundary", test_gib_boundary },
	{ "-EEXIST changes nothing", test_exists },
	{ "clearing part of a 2 MiB leaf splits it", test_split },
	{ "-ENOENT changes nothing", test_not_recorded },
	{ "-EINVAL, and the edges", test_invalid },
	{ "reverse lookup", test_to_va },
	{ "reset", test_reset },
	{ "100,000 random operations against a list of extents", test_random },
	{ "readers during writes", test_readers_during_writes },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "VA->IOVA table", NULL, suite_reset, tests })
