/* Mempools: creation and names, layout and IOVAs, the per-lcore cache's refill and flush, exhaustion, debug checks, two lcores and a non-EAL thread at once. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/upmd.h>

#include "upmd_test.h"

#define N 1000
#define ELT 100
#define CACHE 32

static void test_needs_eal(void)
{
	struct upmd_mempool *mp = NULL;

	log_capture();
	CU_ASSERT_EQUAL(upmd_mempool_create("p", N, ELT, 0, 0, UPMD_SOCKET_ID_ANY, 0, NULL, NULL, &mp), -ENODEV);
	ASSERT_LOG_HAS("initialise the EAL first");
	log_release();
	CU_ASSERT_PTR_NULL(mp);
}

static int eal_up(void)
{
	char *argv[] = { "test", "-l", "0-1", "--no-huge", "-m", "32", "--model", "", "--log-level", "err", NULL };

	return upmd_eal_init((int)UPMD_DIM(argv) - 1, argv) < 0 ? -1 : 0;
}

static int eal_down(void)
{
	return upmd_eal_cleanup() == 0 ? 0 : -1;
}

static void test_create_errors(void)
{
	struct upmd_mempool *mp = NULL, *mp2 = NULL;

	log_capture();
	CU_ASSERT_EQUAL(upmd_mempool_create("", N, ELT, 0, 0, -1, 0, NULL, NULL, &mp), -EINVAL);
	CU_ASSERT_EQUAL(upmd_mempool_create("a-pool-name-too-long-for-it", N, ELT, 0, 0, -1, 0, NULL, NULL, &mp),
			-EINVAL);
	CU_ASSERT_EQUAL(upmd_mempool_create("p", 0, ELT, 0, 0, -1, 0, NULL, NULL, &mp), -EINVAL);
	CU_ASSERT_EQUAL(upmd_mempool_create("p", N, 0, 0, 0, -1, 0, NULL, NULL, &mp), -EINVAL);
	CU_ASSERT_EQUAL(upmd_mempool_create("p", N, ELT, 513, 0, -1, 0, NULL, NULL, &mp), -EINVAL);
	CU_ASSERT_EQUAL(upmd_mempool_create("p", 40, ELT, 32, 0, -1, 0, NULL, NULL, &mp), -EINVAL);	/* 48 > 40 */
	CU_ASSERT_EQUAL(upmd_mempool_create("p", N, ELT, 0, 0, -1, 0x100, NULL, NULL, &mp), -EINVAL);
	CU_ASSERT_EQUAL(upmd_mempool_create("p", N, ELT, 0, 0, -1, 0, NULL, NULL, NULL), -EINVAL);
	ASSERT_LOG_HAS("bad arguments");
	/* More than the EAL has: a clear -ENOMEM, nothing left behind. */
	CU_ASSERT_EQUAL(upmd_mempool_create("big", 100000, 4096, 0, 0, -1, 0, NULL, NULL, &mp), -ENOMEM);
	ASSERT_LOG_HAS("reserve more hugepage memory");
	CU_ASSERT_PTR_NULL(upmd_mempool_lookup("big"));
	CU_ASSERT_PTR_NULL(upmd_ring_lookup("MP_big"));
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("MP_big"));
	log_release();

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("p", N, ELT, CACHE, 0, -1, 0, NULL, NULL, &mp), 0);
	CU_ASSERT_EQUAL(upmd_mempool_create("p", N, ELT, CACHE, 0, -1, 0, NULL, NULL, &mp2), -EEXIST);
	CU_ASSERT_PTR_EQUAL(upmd_mempool_lookup("p"), mp);
	upmd_mempool_free(mp);
	CU_ASSERT_PTR_NULL(upmd_mempool_lookup("p"));
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("MP_p"));
	upmd_mempool_free(NULL);
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

static void init_obj(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx)
{
	(void)mp;
	memset(obj, 0, ELT);
	*(unsigned *)obj = idx;
	(*(unsigned *)arg)++;
}

static void iter_obj(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx)
{
	uintptr_t *last = arg;

	(void)mp;
	if (*(unsigned *)obj != idx || (uintptr_t)obj <= *last)
		*last = UINTPTR_MAX;	/* out of order, or not the object init saw */
	else
		*last = (uintptr_t)obj;
}

static void test_layout_iova(void)
{
	struct upmd_mempool *mp;
	void *objs[N];
	unsigned inits = 0, i;
	uintptr_t last = 0;

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("lay", N, ELT, CACHE, 64, -1, 0, init_obj, &inits, &mp), 0);
	CU_ASSERT_EQUAL(inits, N);
	CU_ASSERT_PTR_NOT_NULL(mp->priv);
	CU_ASSERT_EQUAL(upmd_mempool_obj_iter(mp, iter_obj, &last), N);
	CU_ASSERT_NOT_EQUAL(last, UINTPTR_MAX);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), N);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(mp), 0);

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_get_bulk(mp, objs, N), 0);	/* bigger than the cache: the ring */
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(mp), N);
	for (i = 0; i < N; i++) {
		uint64_t iova = upmd_mempool_virt2iova(objs[i]);

		CU_ASSERT_EQUAL((uintptr_t)objs[i] % UPMD_CACHE_LINE_SIZE, 0);
		CU_ASSERT_PTR_EQUAL(upmd_mempool_from_obj(objs[i]), mp);
		/* The IOVA in the header is the one the IOAS gave the memory. */
		CU_ASSERT_NOT_EQUAL(iova, UPMD_BAD_IOVA);
		CU_ASSERT_EQUAL(iova, upmd_mem_virt2iova(objs[i]));
		CU_ASSERT_EQUAL(iova + ELT - 1, upmd_mem_virt2iova((char *)objs[i] + ELT - 1));
	}
	/* Distinct and not overlapping: sorted, each at least ELT apart. */
	qsort(objs, N, sizeof(void *), ptr_cmp);
	for (i = 1; i < N; i++)
		CU_ASSERT_TRUE((char *)objs[i] - (char *)objs[i - 1] >= ELT);
	upmd_mempool_put_bulk(mp, objs, N);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), N);
	upmd_mempool_free(mp);
}

/*
 * The pools the NVMe and DMA drivers need, on the same mempool: PRP lists
 * that must not cross a 4 KiB page of IOVA space (F_NO_PAGE_CROSS), and
 * 64-byte DSA descriptors on their own cache lines (every pool's
 * objects start on one). Each object's IOVA is in its header.
 */
static void test_dma_structure_pools(void)
{
	static const unsigned sizes[] = { 8, 256, 1000, 2048, 4096 - 64 - 8 };
	struct upmd_mempool *mp;
	void *objs[64];
	unsigned k, i, crossed = 0, bad_iova = 0;

	for (k = 0; k < UPMD_DIM(sizes); k++) {
		char name[32];

		snprintf(name, sizeof(name), "prp%u", k);
		CU_ASSERT_EQUAL_FATAL(upmd_mempool_create(name, 64, sizes[k], 0, 0, -1, UPMD_MEMPOOL_F_NO_PAGE_CROSS,
							  NULL, NULL, &mp), 0);
		CU_ASSERT_EQUAL_FATAL(upmd_mempool_get_bulk(mp, objs, 64), 0);
		for (i = 0; i < 64; i++) {
			uint64_t iova = upmd_mempool_virt2iova(objs[i]);

			crossed += iova / 4096 != (iova + sizes[k] - 1) / 4096;
			crossed += (uintptr_t)objs[i] / 4096 != ((uintptr_t)objs[i] + sizes[k] - 1) / 4096;
			bad_iova += iova != upmd_mem_virt2iova(objs[i]) || iova % 8;
		}
		upmd_mempool_put_bulk(mp, objs, 64);
		upmd_mempool_free(mp);
	}
	CU_ASSERT_EQUAL(crossed, 0);
	CU_ASSERT_EQUAL(bad_iova, 0);
	/* Without the flag a 1000-byte object does cross pages, so the flag is what keeps them in. */
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("cross", 64, 1000, 0, 0, -1, 0, NULL, NULL, &mp), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_get_bulk(mp, objs, 64), 0);
	for (i = 0, crossed = 0; i < 64; i++)
		crossed += upmd_mempool_virt2iova(objs[i]) / 4096 != (upmd_mempool_virt2iova(objs[i]) + 999) / 4096;
	CU_ASSERT_TRUE(crossed > 0);
	upmd_mempool_put_bulk(mp, objs, 64);
	upmd_mempool_free(mp);
	/* Too large to stay in a page: refused, saying the limit. */
	log_capture();
	CU_ASSERT_EQUAL(upmd_mempool_create("huge", 8, 4096, 0, 0, -1, UPMD_MEMPOOL_F_NO_PAGE_CROSS, NULL, NULL, &mp),
			-EINVAL);
	ASSERT_LOG_HAS("cannot stay inside a 4 KiB page");
	log_release();
	/* DSA descriptors: 64 bytes, each on its own cache line, IOVA known. */
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("dsa_desc", 64, 64, 0, 0, -1, 0, NULL, NULL, &mp), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_get_bulk(mp, objs, 64), 0);
	for (i = 0, bad_iova = 0; i < 64; i++)
		bad_iova += (uintptr_t)objs[i] % 64 || upmd_mempool_virt2iova(objs[i]) % 64 ||
			    upmd_mempool_virt2iova(objs[i]) != upmd_mem_virt2iova(objs[i]);
	CU_ASSERT_EQUAL(bad_iova, 0);
	upmd_mempool_put_bulk(mp, objs, 64);
	upmd_mempool_free(mp);
}

static void test_cache_refill_flush(void)
{
	struct upmd_mempool *mp;
	struct upmd_mempool_cache *c;
	void *objs[64], *one;

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("c", N, ELT, CACHE, 0, -1, 0, NULL, NULL, &mp), 0);
	c = upmd_mempool_default_cache(mp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->flushthresh, CACHE * 3 / 2);

	/* One object: the cache is refilled with cache_size beyond it. */
	CU_ASSERT_EQUAL(upmd_mempool_get(mp, &one), 0);
	CU_ASSERT_EQUAL(upmd_ring_count(mp->ring), N - CACHE - 1);
	CU_ASSERT_EQUAL(c->len, CACHE);
	/* Put and get again come from the cache: the ring does not move. */
	upmd_mempool_put(mp, one);
	CU_ASSERT_EQUAL(c->len, CACHE + 1);
	CU_ASSERT_EQUAL(upmd_mempool_get(mp, &objs[0]), 0);
	CU_ASSERT_PTR_EQUAL(objs[0], one);	/* the last put is the first got */
	CU_ASSERT_EQUAL(upmd_ring_count(mp->ring), N - CACHE - 1);

	/* Reaching the flush threshold sends everything above cache_size back. */
	CU_ASSERT_EQUAL(upmd_mempool_get_bulk(mp, objs + 1, 16), 0);	/* cache 32 -> 16 */
	CU_ASSERT_EQUAL(c->len, 16);
	upmd_mempool_put_bulk(mp, objs, 17);	/* 33: below 48 */
	CU_ASSERT_EQUAL(c->len, 33);
	CU_ASSERT_EQUAL(upmd_mempool_get_bulk(mp, objs, 15), 0);
	upmd_mempool_put_bulk(mp, objs, 15);	/* 33 */
	CU_ASSERT_EQUAL(upmd_mempool_get_bulk(mp, objs, 32), 0);	/* 1 */
	CU_ASSERT_EQUAL(upmd_mempool_get_bulk(mp, objs + 32, 32), 0);	/* refill: 1 + 63 - 32 = 32 */
	CU_ASSERT_EQUAL(c->len, CACHE);
	upmd_mempool_put_bulk(mp, objs, 20);	/* 52 >= 48: flush to 32 */
	CU_ASSERT_EQUAL(c->len, CACHE);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(mp), 44);
	upmd_mempool_put_bulk(mp, objs + 20, 44);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), N);
	upmd_mempool_cache_flush(mp);
	CU_ASSERT_EQUAL(c->len, 0);
	CU_ASSERT_EQUAL(upmd_ring_count(mp->ring), N);
	upmd_mempool_free(mp);
}

static void test_exhaustion(void)
{
	struct upmd_mempool *mp;
	static void *objs[N + 1];
	void *x;
	unsigned got = 0;

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("ex", N, ELT, CACHE, 0, -1, 0, NULL, NULL, &mp), 0);
	while (got < N && upmd_mempool_get_bulk(mp, objs + got, 8) == 0)
		got += 8;
	CU_ASSERT_EQUAL(got, N);
	CU_ASSERT_EQUAL(upmd_mempool_get(mp, &x), -ENOENT);
	CU_ASSERT_EQUAL(upmd_mempool_get_bulk(mp, objs, 8), -ENOENT);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), 0);
	upmd_mempool_put_bulk(mp, objs, N);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), N);
	/* All or nothing: N + 1 fails and takes nothing. */
	CU_ASSERT_EQUAL(upmd_mempool_get_bulk(mp, objs, N + 1), -ENOENT);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), N);
	upmd_mempool_free(mp);
}

static void test_debug_checks(void)
{
	struct upmd_mempool *mp;
	char stranger[256];
	void *a, *b;

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("dbg", 64, ELT, 0, 0, -1, UPMD_MEMPOOL_F_DEBUG, NULL, NULL, &mp), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_get(mp, &a), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_get(mp, &b), 0);
	log_capture();
	upmd_mempool_put(mp, a);
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(mp), 0);
	upmd_mempool_put(mp, a);	/* twice */
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(mp), 1);
	ASSERT_LOG_HAS("already free (a double free)");
	upmd_mempool_put(mp, stranger + 64);	/* never from this pool */
	upmd_mempool_put(mp, (char *)b + 8);	/* inside an object */
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(mp), 3);
	ASSERT_LOG_HAS("not an object of this pool");
	memset(b, 0xee, ELT + 8);	/* 8 bytes too many */
	upmd_mempool_put(mp, b);
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(mp), 4);
	ASSERT_LOG_HAS("overwritten (an overrun)");
	log_release();
	/* The refused puts went nowhere: 63 free, b still out. */
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(mp), 63);
	upmd_mempool_free(mp);
}

/* ---- two lcores and a non-EAL thread at once ---- */

#define MT_ROUNDS 200000
#define MT_HOLD 96

struct mt {
	struct upmd_mempool *mp;
	unsigned fails;
};

static void churn(struct mt *t, uint64_t seed)
{
	void *held[MT_HOLD];
	unsigned nheld = 0;

	for (unsigned r = 0; r < MT_ROUNDS; r++) {
		unsigned n;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		n = 1 + (unsigned)(seed % 32);
		if ((seed & 0x100) && nheld + n <= MT_HOLD) {
			if (upmd_mempool_get_bulk(t->mp, held + nheld, n) == 0) {
				for (unsigned k = 0; k < n; k++)	/* owned: write it */
					memset(held[nheld + k], (int)(seed & 0xff), ELT);
				nheld += n;
			}
		} else if (nheld) {
			n = UPMD_MIN(n, nheld);
			nheld -= n;
			upmd_mempool_put_bulk(t->mp, held + nheld, n);
		}
	}
	upmd_mempool_put_bulk(t->mp, held, nheld);
	upmd_mempool_cache_flush(t->mp);
}

static int lcore_churn(void *arg)
{
	churn(arg, 0x1234 + upmd_lcore_id());
	return 0;
}

static void *thread_churn(void *arg)
{
	churn(arg, 0x9999);
	return NULL;
}

static void test_concurrent(void)
{
	struct mt t = { 0 };
	static void *objs[N];
	unsigned worker = upmd_get_next_lcore(upmd_get_main_lcore(), true), i;
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("mt", N, ELT, CACHE, 0, -1, 0, NULL, NULL, &t.mp), 0);
	CU_ASSERT_TRUE_FATAL(worker < UPMD_MAX_LCORE);
	CU_ASSERT_EQUAL_FATAL(upmd_eal_remote_launch(lcore_churn, &t, worker), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, thread_churn, &t), 0);
	lcore_churn(&t);
	CU_ASSERT_EQUAL(upmd_eal_wait_lcore(worker), 0);
	pthread_join(th, NULL);

	/* Every object came back, once. */
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(t.mp), N);
	CU_ASSERT_EQUAL(upmd_ring_count(t.mp->ring), N);
	CU_ASSERT_EQUAL_FATAL(upmd_mempool_get_bulk(t.mp, objs, N), 0);
	qsort(objs, N, sizeof(void *), ptr_cmp);
	for (i = 1; i < N; i++)
		CU_ASSERT_PTR_NOT_EQUAL(objs[i], objs[i - 1]);
	upmd_mempool_put_bulk(t.mp, objs, N);
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(t.mp), 0);
	upmd_mempool_free(t.mp);
}

static void test_cleanup_frees_leftovers(void)
{
	struct upmd_mempool *mp;
	struct upmd_ring *r;
	void *o;

	CU_ASSERT_EQUAL_FATAL(upmd_mempool_create("left", 64, ELT, 0, 0, -1, 0, NULL, NULL, &mp), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("left-ring", 64, -1, 0, &r), 0);
	CU_ASSERT_EQUAL(upmd_mempool_get(mp, &o), 0);
	log_capture();
	upmd_log_set_level(UPMD_LOG_WARNING);
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	ASSERT_LOG_HAS("mempool \"left\" was not freed before EAL cleanup");
	ASSERT_LOG_HAS("1 of 64 objects still in use");
	ASSERT_LOG_HAS("ring \"left-ring\" was not freed before EAL cleanup");
	log_release();
	CU_ASSERT_PTR_NULL(upmd_mempool_lookup("left"));
	CU_ASSERT_PTR_NULL(upmd_ring_lookup("left-ring"));
	CU_ASSERT_EQUAL(eal_up(), 0);	/* for the suite's own cleanup */
}

static const struct upmd_test pre_tests[] = {
	{ "no EAL: -ENODEV", test_needs_eal },
	{ NULL, NULL },
};

static const struct upmd_test mp_tests[] = {
	{ "create errors, names, lookup, free", test_create_errors },
	{ "layout, obj_init, obj_iter, IOVAs in the headers", test_layout_iova },
	{ "DMA structure pools: PRP lists in a page, DSA descriptors on lines", test_dma_structure_pools },
	{ "per-lcore cache: refill and flush threshold", test_cache_refill_flush },
	{ "exhaustion is -ENOENT, all or nothing", test_exhaustion },
	{ "debug: double free, foreign pointer, overrun", test_debug_checks },
	{ "two lcores and a non-EAL thread: every object back once", test_concurrent },
	{ "EAL cleanup frees what was left", test_cleanup_frees_leftovers },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "mempool without EAL", NULL, NULL, pre_tests },
	       { "mempool", eal_up, eal_down, mp_tests })
