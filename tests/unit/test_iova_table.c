/* The VA->IOVA table: leaves and pieces, errors that change nothing, splits, reverse lookup, a randomized check against a page map, and readers during writes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/iova.h>

#include "upmd_test.h"

#define K4 4096ULL
#define M2 (2ULL << 20)
#define G1 (1ULL << 30)

static char *va_at(uint64_t a)
{
	return (char *)(uintptr_t)a;
}

static int reset(void)
{
	upmd_iova_table_reset();
	return 0;
}

static void test_unmapped(void)
{
	CU_ASSERT_EQUAL(upmd_iova_from_va(NULL), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(0x7f0000000000ULL)), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(1ULL << 48)), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(UINT64_MAX)), UPMD_BAD_IOVA);
}

static void test_hugepage_span(void)
{
	uint64_t base = 0x7f0000200000ULL;

	/* Four 2 MiB chunks at a compact IOVA, then the same at IOVA = VA. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(va_at(base), 0x1000000, 4 * M2), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base)), 0x1000000);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 12345)), 0x1000000 + 12345);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 4 * M2 - 1)), 0x1000000 + 4 * M2 - 1);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 4 * M2)), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base - 1)), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base + 8 * M2), base + 8 * M2, M2), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 8 * M2 + 7)), base + 8 * M2 + 7);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x1000000 + 3 * M2 + 5), va_at(base + 3 * M2 + 5));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x900000));
	CU_ASSERT_EQUAL(upmd_iova_table_clear(va_at(base), 4 * M2), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + M2)), UPMD_BAD_IOVA);
	upmd_iova_table_reset();
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 8 * M2)), UPMD_BAD_IOVA);
}

static void test_pieces_and_splits(void)
{
	uint64_t base = 0x7f0040000000ULL - M2;	/* the last 2 MiB before a GiB boundary */

	/* 4 KiB pieces with unrelated IOVAs inside one 2 MiB chunk. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base), 0x5000, K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base + K4), 0x900000, K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 10)), 0x5000 + 10);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + K4 + 10)), 0x900000 + 10);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 2 * K4)), UPMD_BAD_IOVA);
	/* A span across the 1 GiB boundary, partly pieces, partly a leaf. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base + 2 * K4), 0x10000000, M2 - 2 * K4 + M2), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + M2)), 0x10000000 + M2 - 2 * K4);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 2 * M2 - 1)), 0x10000000 + 2 * M2 - 2 * K4 - 1);
	/* Errors change nothing. */
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base + M2 - K4), 0x20000000, 2 * K4), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + M2 - K4)), 0x10000000 + M2 - 3 * K4);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(va_at(base + 2 * M2 - K4), 2 * K4), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + 2 * M2 - K4)), 0x10000000 + 2 * M2 - 3 * K4);
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base + 1), 0x1000, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base), 0x1001, K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(base), 0x1000, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_set(va_at((1ULL << 48) - K4), 0x1000, 2 * K4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_table_clear(va_at(base), 100), -EINVAL);
	/* Clearing a page out of the 2 MiB leaf splits it; the rest stays. */
	CU_ASSERT_EQUAL(upmd_iova_table_clear(va_at(base + M2 + 5 * K4), K4), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + M2 + 5 * K4)), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + M2 + 4 * K4)), 0x10000000 + M2 + 2 * K4);
	CU_ASSERT_EQUAL(upmd_iova_from_va(va_at(base + M2 + 6 * K4)), 0x10000000 + M2 + 4 * K4);
	CU_ASSERT_PTR_EQUAL(upmd_iova_table_to_va(0x10000000 + M2 + 4 * K4), va_at(base + M2 + 6 * K4));
	CU_ASSERT_PTR_NULL(upmd_iova_table_to_va(0x10000000 + M2 + 3 * K4));
	upmd_iova_table_reset();
}

/* Random set/clear of 4 KiB-granular runs over 64 MiB against a page map. */
static void test_random_against_pages(void)
{
	enum { PAGES = 16384, OPS = 100000 };
	const uint64_t base = 0x7e0000000000ULL;
	static uint64_t ref[PAGES];	/* IOVA + 1 of each page, 0 if none */
	uint64_t s = 12345, next_iova = 0x100000;
	unsigned op, i;

	memset(ref, 0, sizeof(ref));
	for (op = 0; op < OPS; op++) {
		unsigned first, n, k;
		bool any = false, all = true;
		int rc;

		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		/* Mostly small runs, sometimes whole aligned 2 MiB chunks. */
		if (s % 8 == 0) {
			first = (unsigned)(s >> 8) % (PAGES / 512) * 512;
			n = 512;
		} else {
			first = (unsigned)(s >> 8) % PAGES;
			n = 1 + (unsigned)(s >> 40) % 16;
			if (first + n > PAGES)
				n = PAGES - first;
		}
		for (k = first; k < first + n; k++) {
			any |= ref[k] != 0;
			all &= ref[k] != 0;
		}
		if (s & 0x10000) {
			rc = upmd_iova_table_set(va_at(base + first * K4), next_iova, n * K4);
			CU_ASSERT_EQUAL(rc, any ? -EEXIST : 0);
			if (rc == 0) {
				for (k = 0; k < n; k++)
					ref[first + k] = next_iova + k * K4 + 1;
				next_iova += n * K4 + K4;
			}
		} else {
			rc = upmd_iova_table_clear(va_at(base + first * K4), n * K4);
			CU_ASSERT_EQUAL(rc, all ? 0 : -ENOENT);
			if (rc == 0)
				for (k = first; k < first + n; k++)
					ref[k] = 0;
		}
		if (op % 1000 == 0)
			for (i = 0; i < PAGES; i++)
				if (upmd_iova_from_va(va_at(base + i * K4 + 123)) != (ref[i] ? ref[i] - 1 + 123 : UPMD_BAD_IOVA)) {
					CU_FAIL("lookup disagrees with the page map");
					return;
				}
	}
	upmd_iova_table_reset();
}

struct reader {
	volatile bool *stop;
	uint64_t bad;
};

#define STABLE 0x7d0000000000ULL
#define CHURN 0x7d0000400000ULL

static void *reader_fn(void *p)
{
	struct reader *r = p;
	uint64_t i = 0;

	while (!*r->stop) {
		uint64_t off = (i++ * 4099) % M2, v;

		if (upmd_iova_from_va(va_at(STABLE + off)) != 0x40000000 + off)
			r->bad++;
		v = upmd_iova_from_va(va_at(CHURN + off));
		if (v != UPMD_BAD_IOVA && v != 0x50000000 + off)
			r->bad++;
	}
	return NULL;
}

static void test_readers_during_writes(void)
{
	volatile bool stop = false;
	struct reader r[2] = { { &stop, 0 }, { &stop, 0 } };
	pthread_t t[2];
	unsigned i, k;

	CU_ASSERT_EQUAL_FATAL(upmd_iova_table_set(va_at(STABLE), 0x40000000, M2), 0);
	for (i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, reader_fn, &r[i]), 0);
	for (k = 0; k < 2000; k++) {
		/* Whole leaf on, pages off (splits), then the rest off. */
		CU_ASSERT_EQUAL(upmd_iova_table_set(va_at(CHURN), 0x50000000, M2), 0);
		for (i = 0; i < 512; i += 37)
			CU_ASSERT_EQUAL(upmd_iova_table_clear(va_at(CHURN + i * K4), K4), 0);
		for (i = 0; i < 512; i++)
			if (i % 37)
				CU_ASSERT_EQUAL(upmd_iova_table_clear(va_at(CHURN + i * K4), K4), 0);
	}
	stop = true;
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(r[i].bad, 0);
	}
	upmd_iova_table_reset();
}

static const struct upmd_test tests[] = {
	{ "unmapped addresses", test_unmapped },
	{ "2 MiB spans: compact IOVA and IOVA = VA", test_hugepage_span },
	{ "4 KiB pieces, a GiB boundary, errors, splits", test_pieces_and_splits },
	{ "randomized against a page map", test_random_against_pages },
	{ "readers during writes", test_readers_during_writes },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "VA->IOVA table", NULL, reset, tests })
