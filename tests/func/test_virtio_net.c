/* The virtio-net PMD end to end against two cross-connected model devices: io and macswap forwarding of 10^6 packets with each one checked, chains, full queues, empty pools, filters, queue pairs, stop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/upmd.h>

#include "upmd_test.h"

#define A "0000:00:04.0"
#define B "0000:00:05.0"
#define SPEC(args) "virtio-net@" A ":peer=" B args ";virtio-net@" B ":mac=52:54:00:12:34:57" args
#define INIT(...)                                                                                 \
	upmd_eal_init((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)),          \
		      (char *[]){ "test", __VA_ARGS__, NULL })
#define MEM "-l", "0", "--no-huge", "-m", "128"
#define PKT_LEN 64
#define TOTAL 1000000u
#define INFLIGHT 64u

static struct upmd_model *model;
static struct upmd_mempool *pool;
static uint16_t pa, pb;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int up(const char *spec, uint16_t queues, uint16_t txd, unsigned nmbufs)
{
	int rc;
	uint16_t q;

	rc = upmd_model_install(spec, &model);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	rc = INIT(MEM, "-a", A, "-a", B);
	CU_ASSERT_FATAL(rc > 0);
	CU_ASSERT_EQUAL_FATAL(upmd_eth_dev_get_port_by_name(A, &pa), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_eth_dev_get_port_by_name(B, &pb), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_pool_create("vpool", nmbufs, 32, 0, UPMD_MBUF_DEFAULT_BUF_SIZE,
						       UPMD_SOCKET_ID_ANY, &pool), 0);
	for (uint16_t p = 0; p < 2; p++) {
		uint16_t port = p ? pb : pa;

		rc = upmd_eth_dev_configure(port, queues, queues, NULL);
		for (q = 0; rc == 0 && q < queues; q++)
			rc = upmd_eth_rx_queue_setup(port, q, 128, UPMD_SOCKET_ID_ANY, pool);
		for (q = 0; rc == 0 && q < queues; q++)
			rc = upmd_eth_tx_queue_setup(port, q, txd, UPMD_SOCKET_ID_ANY);
		if (rc == 0)
			rc = upmd_eth_dev_start(port);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
	}
	return 0;
}

static void down(void)
{
	uint16_t port;

	/* Ports first: their queues hold mbufs of the pool. */
	UPMD_ETH_FOREACH_DEV(port)
		upmd_eth_dev_close(port);
	if (pool)
		upmd_mempool_free(pool);
	pool = NULL;
	upmd_eal_cleanup();
	if (model) {
		assert_model_clean(model);
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(model);
		model = NULL;
	}
	CU_ASSERT_EQUAL(upmd_eth_dev_count_avail(), 0);
}

static uint8_t pattern(uint32_t seq, unsigned i)
{
	return (uint8_t)(seq * 7 + i * 13);
}

static const struct upmd_ether_addr mac_x = { { 0x02, 0xaa, 0, 0, 0, 1 } }, mac_y = { { 0x02, 0xbb, 0, 0, 0, 2 } };

static struct upmd_mbuf *make(uint32_t seq, uint16_t len)
{
	struct upmd_mbuf *m = upmd_pktmbuf_alloc(pool);
	uint8_t *p;

	if (!m)
		return NULL;
	p = (uint8_t *)upmd_pktmbuf_append(m, len);
	if (!p) {
		upmd_pktmbuf_free(m);
		return NULL;
	}
	memcpy(p, &mac_x, 6);
	memcpy(p + 6, &mac_y, 6);
	p[12] = 0x08;
	p[13] = 0x00;
	memcpy(p + 14, &seq, 4);
	for (unsigned i = 18; i < len; i++)
		p[i] = pattern(seq, i);
	return m;
}

/* The payload after the MACs is what make() wrote. */
static bool intact(const struct upmd_mbuf *m, uint32_t *seq_out)
{
	uint8_t buf[2048];
	const uint8_t *p = upmd_pktmbuf_read(m, 0, m->pkt_len, buf);
	uint32_t seq;

	if (!p || m->pkt_len < 18)
		return false;
	memcpy(&seq, p + 14, 4);
	for (unsigned i = 18; i < m->pkt_len; i++)
		if (p[i] != pattern(seq, i))
			return false;
	*seq_out = seq;
	return true;
}

/*
 * The testpmd streams, by hand: what port A receives goes out of port B
 * and the reverse; the pair being cross-connected, each packet bounces
 * between them. 64 packets in flight until 10^6 have been received.
 */
static void forward(bool macswap)
{
	static uint8_t hops[INFLIGHT];
	struct upmd_eth_stats sa, sb;
	uint64_t rx = 0, tx = 0, dropped = 0, bad = 0, badmac = 0;
	struct upmd_mbuf *m[32];
	double t0, dt;
	unsigned i;

	up(SPEC(""), 1, 0, 2048);
	memset(hops, 0, sizeof(hops));
	for (i = 0; i < INFLIGHT; i++) {
		m[0] = make(i, PKT_LEN);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m[0]);
		CU_ASSERT_EQUAL_FATAL(upmd_eth_tx_burst(i & 1 ? pb : pa, 0, m, 1), 1);
		tx++;
	}
	t0 = now();
	while (rx < TOTAL && now() - t0 < 120) {
		for (unsigned side = 0; side < 2; side++) {
			uint16_t in = side ? pb : pa, out = side ? pa : pb;
			uint16_t n = upmd_eth_rx_burst(in, 0, m, 32), k, sent;

			for (k = 0; k < n; k++) {
				struct upmd_ether_hdr *eh = (struct upmd_ether_hdr *)(void *)((char *)m[k]->buf_addr +
												m[k]->data_off);
				uint32_t seq = 0;

				if (!intact(m[k], &seq) || seq >= INFLIGHT || m[k]->pkt_len != PKT_LEN) {
					bad++;
					continue;
				}
				if (macswap) {
					/* Swapped at every hop so far: even hops as made. */
					const struct upmd_ether_addr *want_dst = hops[seq] & 1 ? &mac_y : &mac_x;
					struct upmd_ether_addr t;

					badmac += memcmp(&eh->dst_addr, want_dst, 6) != 0;
					t = eh->dst_addr;
					eh->dst_addr = eh->src_addr;
					eh->src_addr = t;
					hops[seq]++;
				} else {
					badmac += memcmp(&eh->dst_addr, &mac_x, 6) || memcmp(&eh->src_addr, &mac_y, 6);
				}
			}
			rx += n;
			sent = n ? upmd_eth_tx_burst(out, 0, m, n) : 0;
			tx += sent;
			if (sent < n) {
				dropped += n - sent;
				upmd_pktmbuf_free_bulk(&m[sent], n - sent);
			}
		}
	}
	dt = now() - t0;
	CU_ASSERT_TRUE(rx >= TOTAL);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(badmac, 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(pa, &sa), 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(pb, &sb), 0);
	/* Every packet accounted for: received = sent - still in flight, and
	 * the ports' counters say the same as ours. */
	CU_ASSERT_EQUAL(sa.ipackets + sb.ipackets, rx);
	CU_ASSERT_EQUAL(sa.opackets + sb.opackets, tx);
	CU_ASSERT_EQUAL(tx - rx - dropped <= INFLIGHT, true);
	CU_ASSERT_EQUAL(tx + dropped >= rx, true);
	CU_ASSERT_EQUAL(sa.ierrors + sb.ierrors + sa.rx_nombuf + sb.rx_nombuf, 0);
	printf("\n  %s: %llu packets received, %llu sent, %llu dropped, %llu in flight at the end; %.3f Mpps\n",
	       macswap ? "macswap" : "io", (unsigned long long)rx, (unsigned long long)tx,
	       (unsigned long long)dropped, (unsigned long long)(tx - rx - dropped), (double)rx / dt / 1e6);
	down();
}

static void test_io(void)
{
	forward(false);
}

static void test_macswap(void)
{
	forward(true);
}

/* Receive on @port until @want packets came or 5 s passed. */
static unsigned rx_wait(uint16_t port, uint16_t q, struct upmd_mbuf **m, unsigned want)
{
	unsigned got = 0;
	double t0 = now();

	while (got < want && now() - t0 < 5)
		got += upmd_eth_rx_burst(port, q, m + got, (uint16_t)UPMD_MIN(32u, want - got));
	return got;
}

static void test_chains_and_full_queue(void)
{
	struct upmd_mbuf *m[64], *r[4], *s2, *s3;
	struct upmd_eth_stats st;
	uint8_t got[3200], want[3200];
	unsigned i, n, acc;

	up(SPEC(""), 1, 8, 1024);
	/* A three-segment packet goes out as one frame. */
	m[0] = make(1, 100);
	s2 = make(2, 200);
	s3 = make(3, 1200);
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_chain(m[0], s2), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_chain(m[0], s3), 0);
	CU_ASSERT_EQUAL(m[0]->pkt_len, 1500);
	memcpy(want, upmd_pktmbuf_read(m[0], 0, 1500, want), 1500);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 1), 1);
	CU_ASSERT_EQUAL_FATAL(rx_wait(pb, 0, r, 1), 1);
	CU_ASSERT_EQUAL(r[0]->pkt_len, 1500);
	CU_ASSERT_EQUAL(memcmp(upmd_pktmbuf_read(r[0], 0, 1500, got), want, 1500), 0);
	upmd_pktmbuf_free(r[0]);
	/* 3000 bytes: more than one RX buffer, so merged buffers, a chain. */
	m[0] = make(4, 1500);
	s2 = make(5, 1500);
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_chain(m[0], s2), 0);
	memcpy(want, upmd_pktmbuf_read(m[0], 0, 3000, want), 3000);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 1), 1);
	CU_ASSERT_EQUAL_FATAL(rx_wait(pb, 0, r, 1), 1);
	CU_ASSERT_EQUAL(r[0]->pkt_len, 3000);
	CU_ASSERT_EQUAL(r[0]->nb_segs, 2);
	CU_ASSERT_EQUAL(memcmp(upmd_pktmbuf_read(r[0], 0, 3000, got), want, 3000), 0);
	CU_ASSERT_EQUAL(upmd_pktmbuf_check(r[0], NULL), 0);
	upmd_pktmbuf_free(r[0]);
	/* An 8-descriptor TX queue takes at most 8 of 64 packets at once;
	 * the rest stay the caller's. */
	for (i = 0; i < 64; i++)
		m[i] = make(i, 64);
	n = upmd_eth_tx_burst(pa, 0, m, 64);
	CU_ASSERT_TRUE(n >= 1 && n < 64);
	upmd_pktmbuf_free_bulk(&m[n], 64 - n);
	for (acc = 0; acc < n;) {
		unsigned k = rx_wait(pb, 0, r, UPMD_MIN(4u, n - acc));

		if (!k)
			break;
		upmd_pktmbuf_free_bulk(r, k);
		acc += k;
	}
	CU_ASSERT_EQUAL(acc, n);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(pa, &st), 0);
	CU_ASSERT_EQUAL(st.opackets, 2 + n);
	down();
}

/* Frames arrive while the pool is dry: the refill fails and is counted,
 * the frames wait in the ring, and come once mbufs are back. */
static void test_empty_pool(void)
{
	struct upmd_mbuf *m[32], *held[600], *spare[64];
	struct upmd_eth_stats st;
	unsigned nheld = 0, nspare = 0, i, got;

	/* 128 RX descriptors a port take 256 of the 400 mbufs. */
	up(SPEC(""), 1, 0, 400);
	while (nspare < UPMD_DIM(spare) && (spare[nspare] = upmd_pktmbuf_alloc(pool)) != NULL)
		nspare++;
	CU_ASSERT_EQUAL(nspare, UPMD_DIM(spare));
	for (i = 0; i < 8; i++)
		m[i] = make(100 + i, 64);
	/* Hold whatever else is left. */
	while (nheld < UPMD_DIM(held) && (held[nheld] = upmd_pktmbuf_alloc(pool)) != NULL)
		nheld++;
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 8), 8);
	for (double t0 = now(); now() - t0 < 1;)
		CU_ASSERT_EQUAL(upmd_eth_rx_burst(pb, 0, m, 32), 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(pb, &st), 0);
	CU_ASSERT_TRUE(st.rx_nombuf > 0);
	CU_ASSERT_EQUAL(st.ipackets, 0);
	upmd_pktmbuf_free_bulk(spare, nspare);
	got = rx_wait(pb, 0, m, 8);
	CU_ASSERT_EQUAL(got, 8);
	for (i = 0; i < got; i++) {
		uint32_t seq = 0;

		CU_ASSERT_TRUE(intact(m[i], &seq) && seq == 100 + i);
	}
	upmd_pktmbuf_free_bulk(m, got);
	upmd_pktmbuf_free_bulk(held, nheld);
	down();
}

static void test_filters_mac_queues(void)
{
	struct upmd_model_virtio_net_stats ms;
	struct upmd_ether_addr mac, mine = { { 0x02, 0x12, 0x34, 0x56, 0x78, 0x9a } };
	struct upmd_mbuf *m[4];
	struct upmd_eth_dev_info info;
	struct upmd_eth_link link;

	up(SPEC(",queues=2"), 2, 0, 2048);
	CU_ASSERT_EQUAL(upmd_eth_dev_info_get(pb, &info), 0);
	CU_ASSERT_EQUAL(info.max_rx_queues, 2);
	CU_ASSERT_EQUAL(upmd_eth_link_get(pb, &link), 0);
	CU_ASSERT_EQUAL(link.up, 1);
	CU_ASSERT_EQUAL(upmd_eth_macaddr_get(pb, &mac), 0);
	CU_ASSERT_EQUAL(memcmp(mac.addr_bytes, "\x52\x54\x00\x12\x34", 5), 0);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(model, B, &ms), 0);
	CU_ASSERT_EQUAL(ms.active_pairs, 2);
	CU_ASSERT_TRUE(ms.promisc);
	/* Queue 1 of A feeds queue 1 of B. */
	m[0] = make(7, 64);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 1, m, 1), 1);
	CU_ASSERT_EQUAL(rx_wait(pb, 1, m, 1), 1);
	upmd_pktmbuf_free(m[0]);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(pb, 0, m, 4), 0);
	/* Promiscuous off: a frame to another MAC is filtered by the device;
	 * to B's own address (set through the control queue) it passes. */
	CU_ASSERT_EQUAL(upmd_eth_promiscuous_disable(pb), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_default_mac_addr_set(pb, &mine), 0);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(model, B, &ms), 0);
	CU_ASSERT_FALSE(ms.promisc);
	CU_ASSERT_EQUAL(memcmp(ms.mac, mine.addr_bytes, 6), 0);
	m[0] = make(8, 64);	/* to 02:aa:..., not B */
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 1), 1);
	m[0] = make(9, 64);
	memcpy((char *)m[0]->buf_addr + m[0]->data_off, mine.addr_bytes, 6);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 1), 1);
	CU_ASSERT_EQUAL(rx_wait(pb, 0, m, 1), 1);
	{
		uint32_t seq = 0;

		CU_ASSERT_TRUE(intact(m[0], &seq) && seq == 9);
	}
	upmd_pktmbuf_free(m[0]);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(model, B, &ms), 0);
	CU_ASSERT_EQUAL(ms.rx_filtered, 1);
	/* Stop: the device is reset (no DMA), and every RX buffer is back. */
	CU_ASSERT_EQUAL(upmd_eth_dev_stop(pb), 0);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(model, B, &ms), 0);
	CU_ASSERT_EQUAL(ms.status, 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_stop(pa), 0);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 0);
	/* And it starts again. */
	CU_ASSERT_EQUAL(upmd_eth_dev_start(pa), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_start(pb), 0);
	m[0] = make(10, 64);
	memcpy((char *)m[0]->buf_addr + m[0]->data_off, mine.addr_bytes, 6);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 1), 1);
	CU_ASSERT_EQUAL(rx_wait(pb, 0, m, 1), 1);
	upmd_pktmbuf_free(m[0]);
	down();
}

static void test_bad_pool(void)
{
	struct upmd_mempool *small;

	up(SPEC(""), 1, 0, 1024);
	CU_ASSERT_EQUAL(upmd_eth_dev_stop(pa), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_pool_create("tiny", 256, 0, 0, 160, UPMD_SOCKET_ID_ANY, &small), 0);
	log_capture();
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(pa, 0, 0, UPMD_SOCKET_ID_ANY, small), -EINVAL);
	ASSERT_LOG_HAS("have 160 bytes of buffer; this port needs 192");
	log_release();
	upmd_mempool_free(small);
	down();
}

/* What the device offers decides: a device that would bypass the IOMMU
 * is refused at probe, with the QEMU option that fixes it; without merged
 * buffers a frame must fit one buffer; without a control queue there are
 * no filters and one queue pair. */
static void test_negotiation(void)
{
	struct upmd_mempool *mid;
	struct upmd_mbuf *m[2];
	struct upmd_eth_dev_info info;
	int rc;

	CU_ASSERT_EQUAL_FATAL(upmd_model_install(SPEC(",iommu_platform=off"), &model), 0);
	log_capture();
	rc = INIT(MEM, "-a", A, "-a", B);
	CU_ASSERT_EQUAL(rc, -ENOTSUP);
	ASSERT_LOG_HAS("does not offer VIRTIO_F_ACCESS_PLATFORM, so its DMA would bypass the IOMMU");
	ASSERT_LOG_HAS("iommu_platform=on");
	log_release();
	CU_ASSERT_EQUAL(upmd_eth_dev_count_avail(), 0);
	down();

	up(SPEC(",mrg_rxbuf=off,ctrl_vq=off,queues=2"), 1, 0, 1024);
	CU_ASSERT_EQUAL(upmd_eth_dev_info_get(pa, &info), 0);
	CU_ASSERT_EQUAL(info.max_rx_queues, 1);	/* MQ needs the control queue */
	CU_ASSERT_EQUAL(info.rx_offload_capa & UPMD_ETH_RX_OFFLOAD_SCATTER, 0);
	CU_ASSERT_EQUAL(upmd_eth_promiscuous_disable(pb), -ENOTSUP);
	/* Traffic still flows, a frame a buffer. */
	m[0] = make(11, 1500);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(pa, 0, m, 1), 1);
	CU_ASSERT_EQUAL_FATAL(rx_wait(pb, 0, m, 1), 1);
	CU_ASSERT_EQUAL(m[0]->pkt_len, 1500);
	CU_ASSERT_EQUAL(m[0]->nb_segs, 1);
	upmd_pktmbuf_free(m[0]);
	/* Buffers that cannot hold a whole frame are refused. */
	CU_ASSERT_EQUAL(upmd_eth_dev_stop(pa), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_pool_create("mid", 256, 0, 0, 1024, UPMD_SOCKET_ID_ANY, &mid), 0);
	log_capture();
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(pa, 0, 0, UPMD_SOCKET_ID_ANY, mid), -EINVAL);
	ASSERT_LOG_HAS("a whole frame");
	log_release();
	upmd_mempool_free(mid);
	down();
}

static const struct upmd_test tests[] = {
	{ "io forwarding: 10^6 packets, each one checked", test_io },
	{ "macswap forwarding: 10^6 packets, MACs swapped at every hop", test_macswap },
	{ "multi-segment TX, merged RX buffers, a full TX queue", test_chains_and_full_queue },
	{ "an empty pool: counted, nothing lost", test_empty_pool },
	{ "filters, MAC, two queue pairs, stop and start", test_filters_mac_queues },
	{ "a pool with buffers too small", test_bad_pool },
	{ "negotiation: no ACCESS_PLATFORM refused; no merged buffers; no control queue", test_negotiation },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "virtio_net", NULL, NULL, tests })
