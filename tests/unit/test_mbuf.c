/* Packet buffers: layout and IOVAs, headroom/tailroom edits, chains and reads across segments, zero-copy clones and reference counts (also across lcores), bulk free, metadata, checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/upmd.h>

#include "upmd_test.h"

#define NB 512
#define PRIV 16

static struct upmd_mempool *pool, *clones;

static int eal_up(void)
{
	char *argv[] = { "test", "-l", "0-1", "--no-huge", "-m", "32", "--model", "", "--log-level", "err", NULL };

	if (upmd_eal_init((int)UPMD_DIM(argv) - 1, argv) < 0)
		return -1;
	if (upmd_pktmbuf_pool_create("pkt", NB, 32, PRIV, UPMD_MBUF_DEFAULT_BUF_SIZE, -1, &pool) < 0 ||
	    upmd_pktmbuf_pool_create("clone", 64, 0, 0, UPMD_PKTMBUF_HEADROOM, -1, &clones) < 0)
		return -1;
	return 0;
}

static int eal_down(void)
{
	upmd_mempool_free(clones);
	upmd_mempool_free(pool);
	return upmd_eal_cleanup() == 0 ? 0 : -1;
}

/* Every mbuf back in its pool, the calling lcore's cache included. */
static void assert_pools_full(void)
{
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(pool), NB);
	CU_ASSERT_EQUAL(upmd_mempool_avail_count(clones), 64);
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(pool), 0);
	CU_ASSERT_EQUAL(upmd_mempool_debug_errors(clones), 0);
}

static void test_pool_args(void)
{
	struct upmd_mempool *mp;

	log_capture();
	CU_ASSERT_EQUAL(upmd_pktmbuf_pool_create("bad", 64, 0, 0, 64, -1, &mp), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pktmbuf_pool_create("bad", 64, 0, 12, 2048, -1, &mp), -EINVAL);
	ASSERT_LOG_HAS("must hold the 128-byte headroom");
	CU_ASSERT_EQUAL(upmd_pktmbuf_pool_create("pkt", 64, 0, 0, 2048, -1, &mp), -EEXIST);
	log_release();
	CU_ASSERT_EQUAL(upmd_pktmbuf_data_room_size(pool), UPMD_MBUF_DEFAULT_BUF_SIZE);
}

static void test_layout(void)
{
	struct upmd_mbuf *m = upmd_pktmbuf_alloc(pool);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->refcnt, 1);
	CU_ASSERT_EQUAL(m->nb_segs, 1);
	CU_ASSERT_PTR_NULL(m->next);
	CU_ASSERT_EQUAL(m->pkt_len, 0);
	CU_ASSERT_EQUAL(m->data_len, 0);
	CU_ASSERT_EQUAL(m->buf_len, UPMD_MBUF_DEFAULT_BUF_SIZE);
	CU_ASSERT_EQUAL(upmd_pktmbuf_headroom(m), UPMD_PKTMBUF_HEADROOM);
	CU_ASSERT_EQUAL(upmd_pktmbuf_tailroom(m), UPMD_MBUF_DEFAULT_DATAROOM);
	CU_ASSERT_PTR_EQUAL(m->buf_addr, (char *)m + sizeof(*m) + PRIV);
	CU_ASSERT_PTR_EQUAL(m->pool, pool);
	/* The IOVAs a descriptor takes are the IOAS's for that memory. */
	CU_ASSERT_NOT_EQUAL(m->buf_iova, UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(m->buf_iova, upmd_mem_virt2iova(m->buf_addr));
	CU_ASSERT_EQUAL(upmd_pktmbuf_data_iova(m), upmd_mem_virt2iova(upmd_pktmbuf_mtod(m, void *)));
	CU_ASSERT_EQUAL(upmd_pktmbuf_data_iova_default(m), m->buf_iova + UPMD_PKTMBUF_HEADROOM);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova((char *)m->buf_addr + m->buf_len - 1), m->buf_iova + m->buf_len - 1);
	upmd_pktmbuf_free(m);
	assert_pools_full();
}

static void test_edit(void)
{
	struct upmd_mbuf *m = upmd_pktmbuf_alloc(pool);
	char *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	p = upmd_pktmbuf_append(m, 100);
	CU_ASSERT_PTR_EQUAL(p, upmd_pktmbuf_mtod(m, char *));
	memset(p, 'x', 100);
	CU_ASSERT_EQUAL(m->data_len, 100);
	CU_ASSERT_EQUAL(m->pkt_len, 100);
	CU_ASSERT_PTR_NULL(upmd_pktmbuf_append(m, UPMD_MBUF_DEFAULT_DATAROOM));	/* no room: nothing changes */
	CU_ASSERT_EQUAL(m->data_len, 100);
	/* An Ethernet header in front, then taken off again. */
	p = upmd_pktmbuf_prepend(m, 14);
	CU_ASSERT_PTR_EQUAL(p, (char *)m->buf_addr + UPMD_PKTMBUF_HEADROOM - 14);
	CU_ASSERT_EQUAL(m->pkt_len, 114);
	CU_ASSERT_PTR_NULL(upmd_pktmbuf_prepend(m, UPMD_PKTMBUF_HEADROOM));
	CU_ASSERT_PTR_EQUAL(upmd_pktmbuf_adj(m, 14), (char *)m->buf_addr + UPMD_PKTMBUF_HEADROOM);
	CU_ASSERT_PTR_NULL(upmd_pktmbuf_adj(m, 101));
	CU_ASSERT_EQUAL(upmd_pktmbuf_trim(m, 40), 0);
	CU_ASSERT_EQUAL(m->pkt_len, 60);
	CU_ASSERT_EQUAL(upmd_pktmbuf_trim(m, 61), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pktmbuf_check(m, NULL), 0);

	/* Metadata set by a driver is gone when the mbuf is next allocated. */
	m->ol_flags = UPMD_MBUF_F_RX_RSS_HASH | UPMD_MBUF_F_RX_VLAN_STRIPPED | UPMD_MBUF_F_RX_IP_CKSUM_GOOD;
	m->hash.rss = 0xdeadbeef;
	m->vlan_tci = 100;
	m->packet_type = UPMD_PTYPE_L2_ETHER | UPMD_PTYPE_L3_IPV4 | UPMD_PTYPE_L4_UDP;
	m->l2_len = 14;
	m->l3_len = 20;
	CU_ASSERT_EQUAL(m->tx_offload, 14 | (20 << 7));
	upmd_pktmbuf_free(m);
	m = upmd_pktmbuf_alloc(pool);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->ol_flags, 0);
	CU_ASSERT_EQUAL(m->packet_type, 0);
	CU_ASSERT_EQUAL(m->vlan_tci, 0);
	CU_ASSERT_EQUAL(m->tx_offload, 0);
	CU_ASSERT_EQUAL(m->data_off, UPMD_PKTMBUF_HEADROOM);
	upmd_pktmbuf_free(m);
	assert_pools_full();
}

/* A packet of @nseg segments of @each bytes, byte i of the packet = i * 7. */
static struct upmd_mbuf *make_chain(unsigned nseg, uint16_t each)
{
	struct upmd_mbuf *head = NULL;
	uint32_t k = 0;

	for (unsigned s = 0; s < nseg; s++) {
		struct upmd_mbuf *m = upmd_pktmbuf_alloc(pool);
		uint8_t *p;

		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		p = (uint8_t *)upmd_pktmbuf_append(m, each);
		for (unsigned i = 0; i < each; i++)
			p[i] = (uint8_t)(k++ * 7);
		if (!head)
			head = m;
		else
			CU_ASSERT_EQUAL(upmd_pktmbuf_chain(head, m), 0);
	}
	return head;
}

static void test_chain_read(void)
{
	struct upmd_mbuf *m = make_chain(3, 1000);
	uint8_t buf[3000];
	const char *why = NULL;

	CU_ASSERT_EQUAL(m->nb_segs, 3);
	CU_ASSERT_EQUAL(m->pkt_len, 3000);
	CU_ASSERT_FALSE(upmd_pktmbuf_is_contiguous(m));
	CU_ASSERT_EQUAL(upmd_pktmbuf_check(m, NULL), 0);
	CU_ASSERT_PTR_EQUAL(upmd_pktmbuf_read(m, 900, 1200, buf), buf);	/* spans all three */
	for (unsigned i = 0; i < 1200; i++)
		if (buf[i] != (uint8_t)((900 + i) * 7)) {
			CU_FAIL("byte read across segments differs");
			break;
		}
	CU_ASSERT_PTR_EQUAL(upmd_pktmbuf_read(m, 0, 3000, buf), buf);
	CU_ASSERT_PTR_NULL(upmd_pktmbuf_read(m, 2001, 1000, buf));
	/* append and trim act on the last segment */
	CU_ASSERT_PTR_NOT_NULL(upmd_pktmbuf_append(m, 10));
	CU_ASSERT_EQUAL(upmd_pktmbuf_lastseg(m)->data_len, 1010);
	CU_ASSERT_EQUAL(upmd_pktmbuf_trim(m, 10), 0);
	/* A broken chain is caught. */
	m->pkt_len++;
	CU_ASSERT_EQUAL(upmd_pktmbuf_check(m, &why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(why);
	m->pkt_len--;
	m->nb_segs = 2;
	CU_ASSERT_EQUAL(upmd_pktmbuf_check(m, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "nb_segs does not match the chain");
	m->nb_segs = 3;
	upmd_pktmbuf_free(m);	/* every segment */
	assert_pools_full();
}

static void test_clone_refcnt(void)
{
	struct upmd_mbuf *md = make_chain(2, 500), *c1, *c2;
	uint8_t a[1000], b[1000];

	md->vlan_tci = 7;
	c1 = upmd_pktmbuf_clone(md, clones);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
	/* Zero copy: the same bytes at the same IOVA. */
	CU_ASSERT_PTR_EQUAL(upmd_pktmbuf_mtod(c1, void *), upmd_pktmbuf_mtod(md, void *));
	CU_ASSERT_EQUAL(upmd_pktmbuf_data_iova(c1), upmd_pktmbuf_data_iova(md));
	CU_ASSERT_EQUAL(c1->pkt_len, 1000);
	CU_ASSERT_EQUAL(c1->nb_segs, 2);
	CU_ASSERT_EQUAL(c1->vlan_tci, 7);
	CU_ASSERT_TRUE(!!(c1->ol_flags & UPMD_MBUF_F_INDIRECT));
	CU_ASSERT_PTR_EQUAL(upmd_mbuf_from_indirect(c1), md);
	CU_ASSERT_PTR_EQUAL(upmd_mbuf_from_indirect(c1->next), md->next);
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(md), 2);
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(md->next), 2);
	CU_ASSERT_EQUAL(upmd_pktmbuf_check(c1, NULL), 0);
	CU_ASSERT_PTR_EQUAL(upmd_pktmbuf_read(c1, 0, 1000, a), a);
	CU_ASSERT_PTR_EQUAL(upmd_pktmbuf_read(md, 0, 1000, b), b);
	CU_ASSERT_EQUAL(memcmp(a, b, 1000), 0);

	/* A clone of the clone refers to the original owner. */
	c2 = upmd_pktmbuf_clone(c1, clones);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_PTR_EQUAL(upmd_mbuf_from_indirect(c2), md);
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(md), 3);

	/* The original freed first: its buffers stay while clones use them. */
	upmd_pktmbuf_free(md);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 2);
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(upmd_mbuf_from_indirect(c1)), 2);
	upmd_pktmbuf_free(c1);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 2);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(clones), 2);
	upmd_pktmbuf_free(c2);	/* the last user: everything goes home */
	assert_pools_full();
	/* Clones came back with their own buffers. */
	c1 = upmd_pktmbuf_alloc(clones);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
	CU_ASSERT_FALSE(!!(c1->ol_flags & UPMD_MBUF_F_INDIRECT));
	CU_ASSERT_PTR_EQUAL(c1->buf_addr, (char *)c1 + sizeof(*c1));
	CU_ASSERT_EQUAL(c1->buf_len, UPMD_PKTMBUF_HEADROOM);
	upmd_pktmbuf_free(c1);
	assert_pools_full();
}

static void test_clone_exhausted(void)
{
	struct upmd_mbuf *hold[65], *md = make_chain(3, 100);

	/* Room for two of the three segments' clones only. */
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_alloc_bulk(clones, hold, 62), 0);
	CU_ASSERT_PTR_NULL(upmd_pktmbuf_clone(md, clones));
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(md), 1);	/* references taken were dropped */
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(md->next), 1);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(clones), 62);
	CU_ASSERT_EQUAL(upmd_pktmbuf_alloc_bulk(clones, hold + 62, 3), -ENOENT);	/* all or nothing */
	upmd_pktmbuf_free_bulk(hold, 62);
	upmd_pktmbuf_free(md);
	assert_pools_full();
}

static void test_free_bulk(void)
{
	struct upmd_mbuf *v[40];
	unsigned i;

	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_alloc_bulk(pool, v, 32), 0);
	v[32] = make_chain(4, 10);
	v[33] = NULL;
	v[34] = upmd_pktmbuf_clone(v[32], clones);
	v[35] = upmd_pktmbuf_alloc(clones);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v[34]);
	for (i = 0; i < 32; i++)
		CU_ASSERT_EQUAL(v[i]->refcnt, 1);
	upmd_pktmbuf_free_bulk(v, 36);
	assert_pools_full();
}

/* ---- reference counts across lcores ---- */

#define XFER 200000

struct xfer {
	struct upmd_ring *r;
	struct upmd_mbuf *md;
	unsigned cloned, freed, failed;
};

static int freer(void *arg)
{
	struct xfer *x = arg;
	void *objs[16];

	while (__atomic_load_n(&x->freed, __ATOMIC_RELAXED) < XFER) {
		unsigned n = upmd_ring_dequeue_burst(x->r, objs, 16, NULL);

		upmd_pktmbuf_free_bulk((struct upmd_mbuf **)objs, n);
		__atomic_add_fetch(&x->freed, n, __ATOMIC_RELAXED);
	}
	return 0;
}

static void test_refcnt_two_lcores(void)
{
	struct xfer x = { 0 };
	unsigned worker = upmd_get_next_lcore(upmd_get_main_lcore(), true);

	CU_ASSERT_EQUAL_FATAL(upmd_ring_create("xfer", 64, -1, UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ, &x.r), 0);
	x.md = make_chain(1, 64);
	CU_ASSERT_EQUAL_FATAL(upmd_eal_remote_launch(freer, &x, worker), 0);
	/* Clone here, free there, while this lcore also drops its own clones. */
	while (x.cloned < XFER) {
		struct upmd_mbuf *c = upmd_pktmbuf_clone(x.md, clones);

		if (!c) {
			x.failed++;
			continue;
		}
		if (x.cloned % 4 == 3) {
			upmd_pktmbuf_free(c);
			__atomic_add_fetch(&x.freed, 1, __ATOMIC_RELAXED);
		} else {
			while (upmd_ring_enqueue(x.r, c) < 0)
				;
		}
		x.cloned++;
	}
	CU_ASSERT_EQUAL(upmd_eal_wait_lcore(worker), 0);
	CU_ASSERT_EQUAL(x.freed, XFER);
	CU_ASSERT_EQUAL(upmd_mbuf_refcnt_read(x.md), 1);	/* every clone's reference dropped exactly once */
	upmd_pktmbuf_free(x.md);
	upmd_ring_free(x.r);
	assert_pools_full();
}

static const struct upmd_test mbuf_tests[] = {
	{ "pool arguments", test_pool_args },
	{ "layout, headroom, IOVAs", test_layout },
	{ "append, prepend, adj, trim; metadata reset on alloc", test_edit },
	{ "chains: read across segments, checks", test_chain_read },
	{ "clones: zero copy, reference counts, clone of a clone", test_clone_refcnt },
	{ "clone with its pool exhausted changes nothing", test_clone_exhausted },
	{ "bulk free: chains, clones, two pools, NULLs", test_free_bulk },
	{ "clones freed on another lcore: counts exact", test_refcnt_two_lcores },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "mbuf", eal_up, eal_down, mbuf_tests })
