/* Rings: sizing, creation and names, bulk/burst semantics, wrap-around, fixed-size elements, and 2 producers + 2 consumers moving 10^7 objects. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/upmd.h>

#include "upmd_test.h"

static void *P(uintptr_t v)
{
	return (void *)v;
}

static void test_sizes(void)
{
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(8, 0, false), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(8, 1000, false), -EINVAL);	/* not a power of two */
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(6, 1024, false), -EINVAL);	/* esize */
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(0, 1024, false), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(8, 1u << 31, false), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(8, 1024, false), (long)(sizeof(struct upmd_ring) + 8192));
	/* exact: 1000 -> 1024 slots; 1024 -> 2048 (capacity must be 1024) */
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(8, 1000, true), (long)(sizeof(struct upmd_ring) + 8192));
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(8, 1024, true), (long)(sizeof(struct upmd_ring) + 16384));
	CU_ASSERT_EQUAL(upmd_ring_memsize_elem(12, 3, true), (long)(sizeof(struct upmd_ring) + 128));
}

static void test_create_lookup_free(void)
{
	struct upmd_ring *r = NULL, *r2 = NULL;

	log_capture();
	CU_ASSERT_EQUAL(upmd_ring_create("", 64, UPMD_SOCKET_ID_ANY, 0, &r), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_create("a-name-that-is-far-too-long-for-it", 64, UPMD_SOCKET_ID_ANY, 0, &r),
			-EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_create("r", 63, UPMD_SOCKET_ID_ANY, 0, &r), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_create("r", 64, UPMD_SOCKET_ID_ANY, 0x80, &r), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ring_create("r", 64, UPMD_SOCKET_ID_ANY, 0, NULL), -EINVAL);
	ASSERT_LOG_HAS("count a power of two");
	log_release();

	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("r", 64, UPMD_SOCKET_ID_ANY, 0, &r), 0);
	CU_ASSERT_EQUAL((uintptr_t)r % 128, 0);
	CU_ASSERT_EQUAL(upmd_ring_get_capacity(r), 63);
	CU_ASSERT_PTR_EQUAL(upmd_ring_lookup("r"), r);
	CU_ASSERT_PTR_NULL(upmd_ring_lookup("q"));
	CU_ASSERT_EQUAL(upmd_ring_create("r", 128, UPMD_SOCKET_ID_ANY, 0, &r2), -EEXIST);
	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("r2", 100, UPMD_SOCKET_ID_ANY, UPMD_RING_F_EXACT_SZ, &r2), 0);
	CU_ASSERT_EQUAL(upmd_ring_get_capacity(r2), 100);
	upmd_ring_free(r);
	CU_ASSERT_PTR_NULL(upmd_ring_lookup("r"));
	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("r", 64, UPMD_SOCKET_ID_ANY, 0, &r), 0);	/* name free again */
	upmd_ring_free(r);
	upmd_ring_free(r2);
	upmd_ring_free(NULL);
}

static void test_bulk_burst(void)
{
	void *in[64], *out[64];
	unsigned i, fs = 0, av = 0;
	struct upmd_ring *r;

	for (i = 0; i < 64; i++)
		in[i] = P(0x1000 + i);
	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("bb", 16, UPMD_SOCKET_ID_ANY,
					       UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ, &r), 0);
	CU_ASSERT_TRUE(upmd_ring_empty(r));
	CU_ASSERT_EQUAL(upmd_ring_dequeue_bulk(r, out, 1, &av), 0);
	CU_ASSERT_EQUAL(av, 0);
	CU_ASSERT_EQUAL(upmd_ring_dequeue(r, out), -ENOENT);

	/* Bulk is all or nothing: 16 do not fit in 15. */
	CU_ASSERT_EQUAL(upmd_ring_enqueue_bulk(r, in, 16, &fs), 0);
	CU_ASSERT_EQUAL(fs, 15);
	CU_ASSERT_EQUAL(upmd_ring_enqueue_bulk(r, in, 10, &fs), 10);
	CU_ASSERT_EQUAL(fs, 5);
	CU_ASSERT_EQUAL(upmd_ring_count(r), 10);
	CU_ASSERT_EQUAL(upmd_ring_free_count(r), 5);
	/* Burst takes what fits. */
	CU_ASSERT_EQUAL(upmd_ring_enqueue_burst(r, in + 10, 8, &fs), 5);
	CU_ASSERT_EQUAL(fs, 0);
	CU_ASSERT_TRUE(upmd_ring_full(r));
	CU_ASSERT_EQUAL(upmd_ring_enqueue(r, in[0]), -ENOBUFS);

	CU_ASSERT_EQUAL(upmd_ring_dequeue_bulk(r, out, 16, &av), 0);
	CU_ASSERT_EQUAL(av, 15);
	CU_ASSERT_EQUAL(upmd_ring_dequeue_burst(r, out, 4, &av), 4);
	CU_ASSERT_EQUAL(av, 11);
	CU_ASSERT_EQUAL(upmd_ring_dequeue_burst(r, out + 4, 64, &av), 11);
	CU_ASSERT_EQUAL(av, 0);
	for (i = 0; i < 15; i++)
		CU_ASSERT_PTR_EQUAL(out[i], in[i]);	/* FIFO */

	/* Around the end many times: order held across the wrap. */
	for (unsigned round = 0; round < 100; round++) {
		unsigned n = 1 + round % 15;

		CU_ASSERT_EQUAL(upmd_ring_enqueue_bulk(r, in + round % 40, n, NULL), n);
		CU_ASSERT_EQUAL(upmd_ring_dequeue_bulk(r, out, n, NULL), n);
		CU_ASSERT_EQUAL(memcmp(in + round % 40, out, n * sizeof(void *)), 0);
	}
	upmd_ring_reset(r);
	CU_ASSERT_TRUE(upmd_ring_empty(r));
	upmd_ring_free(r);
}

static void test_counters_wrap_2_32(void)
{
	struct upmd_ring *r;
	void *o[8];

	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("w", 8, UPMD_SOCKET_ID_ANY, UPMD_RING_F_EXACT_SZ, &r), 0);
	/* Counters just below 2^32: they wrap mid-operation. */
	r->prod.head = r->prod.tail = r->cons.head = r->cons.tail = UINT32_MAX - 3;
	for (unsigned i = 0; i < 8; i++)
		o[i] = P(i + 1);
	CU_ASSERT_EQUAL(upmd_ring_enqueue_bulk(r, o, 8, NULL), 8);
	CU_ASSERT_EQUAL(upmd_ring_count(r), 8);
	CU_ASSERT_TRUE(upmd_ring_full(r));
	memset(o, 0, sizeof(o));
	CU_ASSERT_EQUAL(upmd_ring_dequeue_bulk(r, o, 8, NULL), 8);
	for (unsigned i = 0; i < 8; i++)
		CU_ASSERT_PTR_EQUAL(o[i], P(i + 1));
	CU_ASSERT_TRUE(upmd_ring_empty(r));
	upmd_ring_free(r);
}

struct e12 {
	uint32_t a, b, c;
};

static void test_elem_sizes(void)
{
	static const unsigned sizes[] = { 4, 12, 16, 20, 64 };

	for (unsigned s = 0; s < UPMD_DIM(sizes); s++) {
		unsigned es = sizes[s], i;
		uint8_t in[64 * 20], out[64 * 20];
		struct upmd_ring *r;

		CU_ASSERT_EQUAL_FATAL(upmd_ring_create_elem("e", es, 20, UPMD_SOCKET_ID_ANY, UPMD_RING_F_EXACT_SZ, &r), 0);
		for (i = 0; i < sizeof(in); i++)
			in[i] = (uint8_t)(i * 31 + es);
		for (unsigned round = 0; round < 50; round++) {
			unsigned n = 1 + (round * 7) % 20;

			CU_ASSERT_EQUAL(upmd_ring_enqueue_bulk_elem(r, in, es, n, NULL), n);
			CU_ASSERT_EQUAL(upmd_ring_enqueue_burst_elem(r, in, es, 20, NULL), 20 - n);
			CU_ASSERT_EQUAL(upmd_ring_dequeue_bulk_elem(r, out, es, n, NULL), n);
			CU_ASSERT_EQUAL(memcmp(in, out, (size_t)n * es), 0);
			CU_ASSERT_EQUAL(upmd_ring_dequeue_burst_elem(r, out, es, 64, NULL), 20 - n);
			CU_ASSERT_EQUAL(memcmp(in, out, (size_t)(20 - n) * es), 0);
		}
		upmd_ring_free(r);
	}
	/* A ring in memory of one's own, of structs. */
	{
		long sz = upmd_ring_memsize_elem(sizeof(struct e12), 4, false);
		struct upmd_ring *r = aligned_alloc(128, (size_t)sz);
		struct e12 a[3] = { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } }, b[3];

		CU_ASSERT_EQUAL(upmd_ring_init_elem((void *)((char *)r + 64), "own", 12, 4, 0), -EINVAL);
		CU_ASSERT_EQUAL_FATAL(upmd_ring_init_elem(r, "own", 12, 4, 0), 0);
		CU_ASSERT_PTR_NULL(upmd_ring_lookup("own"));	/* not registered */
		CU_ASSERT_EQUAL(upmd_ring_enqueue_bulk_elem(r, a, 12, 3, NULL), 3);
		CU_ASSERT_EQUAL(upmd_ring_dequeue_bulk_elem(r, b, 12, 3, NULL), 3);
		CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
		free(r);
	}
}

/* ---- 2 producers, 2 consumers, 10^7 objects ---------------------------- */

#define MT_PRODUCERS 2
#define MT_CONSUMERS 2

struct mt {
	struct upmd_ring *r;
	uint64_t per_producer;
	uint8_t *seen[MT_PRODUCERS];	/* one counter per object */
	unsigned done_producers;
	uint64_t consumed[MT_CONSUMERS];
	uint64_t bad;
};

struct mt_arg {
	struct mt *mt;
	unsigned id;
};

static void *producer(void *p)
{
	struct mt_arg *a = p;
	struct mt *mt = a->mt;
	uint64_t seq = 0, rng = 0x12345 + a->id;
	void *objs[32];

	while (seq < mt->per_producer) {
		unsigned n, k, got;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		n = 1 + (unsigned)(rng % 32);
		if (n > mt->per_producer - seq)
			n = (unsigned)(mt->per_producer - seq);
		for (k = 0; k < n; k++)	/* objects are never 0: producer id + 1 in the top bits */
			objs[k] = P(((uint64_t)(a->id + 1) << 40) | (seq + k));
		got = (rng & 64) ? upmd_ring_enqueue_bulk(mt->r, objs, n, NULL)
				 : upmd_ring_enqueue_burst(mt->r, objs, n, NULL);
		if (!got)
			sched_yield();
		seq += got;
	}
	__atomic_add_fetch(&mt->done_producers, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *consumer(void *p)
{
	struct mt_arg *a = p;
	struct mt *mt = a->mt;
	uint64_t rng = 0x777 + a->id;
	void *objs[32];

	for (;;) {
		unsigned n, got, k;
		bool last = __atomic_load_n(&mt->done_producers, __ATOMIC_ACQUIRE) == MT_PRODUCERS;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		n = 1 + (unsigned)(rng % 32);
		got = (rng & 64) ? upmd_ring_dequeue_bulk(mt->r, objs, n, NULL)
				 : upmd_ring_dequeue_burst(mt->r, objs, n, NULL);
		for (k = 0; k < got; k++) {
			uint64_t v = (uint64_t)(uintptr_t)objs[k], prod = (v >> 40) - 1, seq = v & ((1ULL << 40) - 1);

			if (prod >= MT_PRODUCERS || seq >= mt->per_producer)
				__atomic_add_fetch(&mt->bad, 1, __ATOMIC_RELAXED);
			else
				__atomic_add_fetch(&mt->seen[prod][seq], 1, __ATOMIC_RELAXED);
		}
		mt->consumed[a->id] += got;
		/* Done when every producer finished and the ring is drained. */
		if (!got && last && upmd_ring_empty(mt->r))
			break;
		if (!got)
			sched_yield();
	}
	return NULL;
}

static void test_mpmc_10e7(void)
{
	const char *env = getenv("UPMD_TEST_RING_OBJS");
	uint64_t total = env ? strtoull(env, NULL, 0) : 10000000, lost = 0, dup = 0, sum = 0;
	struct mt mt = { .per_producer = total / MT_PRODUCERS };
	struct mt_arg pa[MT_PRODUCERS], ca[MT_CONSUMERS];
	pthread_t pt[MT_PRODUCERS], ct[MT_CONSUMERS];
	unsigned i;

	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("mpmc", 1024, UPMD_SOCKET_ID_ANY, 0, &mt.r), 0);
	for (i = 0; i < MT_PRODUCERS; i++) {
		mt.seen[i] = calloc(mt.per_producer, 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(mt.seen[i]);
	}
	for (i = 0; i < MT_CONSUMERS; i++) {
		ca[i] = (struct mt_arg){ &mt, i };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&ct[i], NULL, consumer, &ca[i]), 0);
	}
	for (i = 0; i < MT_PRODUCERS; i++) {
		pa[i] = (struct mt_arg){ &mt, i };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&pt[i], NULL, producer, &pa[i]), 0);
	}
	for (i = 0; i < MT_PRODUCERS; i++)
		pthread_join(pt[i], NULL);
	for (i = 0; i < MT_CONSUMERS; i++) {
		pthread_join(ct[i], NULL);
		sum += mt.consumed[i];
	}
	for (i = 0; i < MT_PRODUCERS; i++) {
		for (uint64_t s = 0; s < mt.per_producer; s++) {
			lost += mt.seen[i][s] == 0;
			dup += mt.seen[i][s] > 1;
		}
		free(mt.seen[i]);
	}
	printf("\n  %" PRIu64 " objects: consumer 0 took %" PRIu64 ", consumer 1 %" PRIu64 "; %" PRIu64
	       " lost, %" PRIu64 " duplicated, %" PRIu64 " corrupt ",
	       sum, mt.consumed[0], mt.consumed[1], lost, dup, mt.bad);
	CU_ASSERT_EQUAL(sum, mt.per_producer * MT_PRODUCERS);
	CU_ASSERT_EQUAL(lost, 0);
	CU_ASSERT_EQUAL(dup, 0);
	CU_ASSERT_EQUAL(mt.bad, 0);
	CU_ASSERT_TRUE(mt.consumed[0] > 0 && mt.consumed[1] > 0);
	CU_ASSERT_TRUE(upmd_ring_empty(mt.r));
	upmd_ring_free(mt.r);
}

static const struct upmd_test ring_tests[] = {
	{ "sizes", test_sizes },
	{ "create, lookup, free, names", test_create_lookup_free },
	{ "bulk is all or nothing, burst what fits, FIFO across the wrap", test_bulk_burst },
	{ "counters wrapping at 2^32", test_counters_wrap_2_32 },
	{ "element sizes 4..64, a ring in own memory", test_elem_sizes },
	{ "2 producers, 2 consumers, 10^7 objects: none lost or duplicated", test_mpmc_10e7 },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "ring", NULL, NULL, ring_tests })
