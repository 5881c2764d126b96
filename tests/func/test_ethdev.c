/* ethdev end to end on virtual ports: the vdev bus's errors, every control call's checks, statistics, and net_ring/net_null moving packets with each one accounted for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/ethdev_driver.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define INIT(...)                                                                                 \
	upmd_eal_init((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)),          \
		      (char *[]){ "test", __VA_ARGS__, NULL })
#define MEM "-l", "0", "--no-huge", "-m", "64"

static struct upmd_mempool *pool;

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
	CU_ASSERT_EQUAL(upmd_eth_dev_count_avail(), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
}

static int mkpool(unsigned n)
{
	return upmd_pktmbuf_pool_create("tpool", n, 32, 0, UPMD_MBUF_DEFAULT_BUF_SIZE, UPMD_SOCKET_ID_ANY, &pool);
}

/* Configure with one queue each way on @pool, and start. */
static int bring_up(uint16_t port)
{
	int rc = upmd_eth_dev_configure(port, 1, 1, NULL);

	if (rc == 0)
		rc = upmd_eth_rx_queue_setup(port, 0, 0, UPMD_SOCKET_ID_ANY, pool);
	if (rc == 0)
		rc = upmd_eth_tx_queue_setup(port, 0, 0, UPMD_SOCKET_ID_ANY);
	if (rc == 0)
		rc = upmd_eth_dev_start(port);
	return rc;
}

/* ---- the vdev bus ---- */

static void test_vdev_errors(void)
{
	struct {
		int rc;
		const char *says;
	} r[6];

	log_capture();
	r[0].rc = INIT(MEM, "--vdev", "net_bogus0");
	r[0].says = "no driver for 'net_bogus0'";
	r[1].rc = INIT(MEM, "--vdev", "net_null0", "--vdev", "net_null0,size=128");
	r[1].says = "--vdev net_null0 given twice";
	r[2].rc = INIT(MEM, "--vdev", "net_null0,size=abc");
	r[2].says = "size=abc: give a number from 14 to 2048";
	r[3].rc = INIT(MEM, "--vdev", "net_null0,colour=red");
	r[3].says = "unknown argument 'colour' (it takes: size, copy)";
	r[4].rc = INIT(MEM, "--vdev", "net_ring0,size=100");
	r[4].says = "size=100: a ring's size is a power of two";
	r[5].rc = INIT(MEM, "--vdev", "net_ring0,peer=net_ring1,queues=2", "--vdev", "net_ring1,peer=net_ring0");
	r[5].says = "give both the same";
	for (unsigned i = 0; i < UPMD_DIM(r); i++) {
		CU_ASSERT_EQUAL(r[i].rc, -EINVAL);
		ASSERT_LOG_HAS(r[i].says);
	}
	/* The known drivers are named, and nothing is left behind. */
	ASSERT_LOG_HAS("net_null");
	ASSERT_LOG_HAS("net_ring");
	log_release();
	CU_ASSERT_FALSE(upmd_eal_initialized());
	CU_ASSERT_EQUAL(upmd_eth_dev_count_avail(), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
	CU_ASSERT_EQUAL(upmd_vdev_count(), 0);
}

/* ---- the control path ---- */

static void test_control_checks(void)
{
	struct upmd_eth_conf conf = { .size = sizeof(conf) };
	struct upmd_eth_dev_info info;
	struct upmd_ether_addr mac, mc = { { 0x01, 0, 0x5e, 0, 0, 1 } }, good = { { 0x02, 1, 2, 3, 4, 5 } };
	struct upmd_mbuf *m[4];
	uint16_t port = 99;
	uint32_t mtu;

	CU_ASSERT_FATAL(INIT(MEM, "--vdev", "net_null0", "--vdev", "net_null1") > 0);
	CU_ASSERT_EQUAL_FATAL(mkpool(1024), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_count_avail(), 2);
	CU_ASSERT_EQUAL(upmd_eth_dev_get_port_by_name("net_null1", &port), 0);
	CU_ASSERT_EQUAL(port, 1);
	CU_ASSERT_EQUAL(upmd_eth_dev_get_port_by_name("net_null7", &port), -ENODEV);
	CU_ASSERT_STRING_EQUAL(upmd_eth_dev_name(0), "net_null0");
	CU_ASSERT_EQUAL(upmd_eth_find_next(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_find_next(2), UPMD_MAX_ETHPORTS);
	CU_ASSERT_EQUAL(upmd_eth_dev_info_get(0, &info), 0);
	CU_ASSERT_STRING_EQUAL(info.driver_name, "net_null");
	CU_ASSERT_EQUAL(info.max_rx_queues, 16);

	log_capture();
	/* Bad ports, bad queue counts, bad configurations. */
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(5, 1, 1, NULL), -ENODEV);
	ASSERT_LOG_HAS("port 5 does not exist");
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 0, 1, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 17, 1, NULL), -EINVAL);
	ASSERT_LOG_HAS("the port has 1..16 RX and 1..16 TX");
	conf.flags = 1;
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 1, 1, &conf), -EINVAL);
	ASSERT_LOG_HAS("no flags are defined");
	conf.flags = 0;
	conf.reserved[2] = 7;
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 1, 1, &conf), -EINVAL);
	conf.reserved[2] = 0;
	conf.size = 4;
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 1, 1, &conf), -EINVAL);
	ASSERT_LOG_HAS("set .size = sizeof(struct upmd_eth_conf)");
	conf.size = sizeof(conf);
	conf.rx_offloads = UPMD_ETH_RX_OFFLOAD_RSS_HASH;
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 1, 1, &conf), -EINVAL);
	ASSERT_LOG_HAS("RX offloads 0x80000 are not offered");
	conf.rx_offloads = 0;
	conf.mtu = 20000;
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 1, 1, &conf), -EINVAL);
	ASSERT_LOG_HAS("MTU 20000 is outside the port's 68..9000");
	conf.mtu = 0;
	/* Queues before configure, start without queues. */
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(1, 0, 0, UPMD_SOCKET_ID_ANY, pool), -EINVAL);
	ASSERT_LOG_HAS("after upmd_eth_dev_configure()");
	CU_ASSERT_EQUAL(upmd_eth_dev_start(1), -EINVAL);
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 2, 1, &conf), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(0, 2, 0, UPMD_SOCKET_ID_ANY, pool), -EINVAL);
	ASSERT_LOG_HAS("RX queue 2: the port was configured with 2");
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(0, 0, 0, UPMD_SOCKET_ID_ANY, NULL), -EINVAL);
	ASSERT_LOG_HAS("needs a mempool of mbufs");
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(0, 0, 0, UPMD_SOCKET_ID_ANY, pool), 0);
	CU_ASSERT_EQUAL(upmd_eth_tx_queue_setup(0, 0, 0, UPMD_SOCKET_ID_ANY), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_start(0), -EINVAL);
	ASSERT_LOG_HAS("RX queue 1 is not set up");
	CU_ASSERT_FALSE(upmd_eth_dev_is_started(0));
	/* Not started: bursts take nothing. */
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 0, m, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(0, 1, 0, UPMD_SOCKET_ID_ANY, pool), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_start(0), 0);
	CU_ASSERT_TRUE(upmd_eth_dev_is_started(0));
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 1, 1, NULL), -EBUSY);
	CU_ASSERT_EQUAL(upmd_eth_tx_queue_setup(0, 0, 0, UPMD_SOCKET_ID_ANY), -EBUSY);
	/* Out of range on the data path: 0, not a crash. */
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 2, m, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(0, 1, m, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(UPMD_MAX_ETHPORTS + 3, 0, m, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(1, 0, m, 4), 0);
	/* MAC, filters, MTU. */
	CU_ASSERT_EQUAL(upmd_eth_dev_default_mac_addr_set(0, &mc), -EINVAL);
	ASSERT_LOG_HAS("01:00:5e:00:00:01 cannot be a port's address");
	CU_ASSERT_EQUAL(upmd_eth_dev_default_mac_addr_set(0, &good), 0);
	CU_ASSERT_EQUAL(upmd_eth_macaddr_get(0, &mac), 0);
	CU_ASSERT_EQUAL(memcmp(&mac, &good, sizeof(mac)), 0);
	CU_ASSERT_EQUAL(upmd_eth_promiscuous_get(0), 1);
	CU_ASSERT_EQUAL(upmd_eth_promiscuous_disable(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_promiscuous_get(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_allmulticast_enable(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_allmulticast_get(0), 1);
	CU_ASSERT_EQUAL(upmd_eth_promiscuous_get(9), -ENODEV);
	CU_ASSERT_EQUAL(upmd_eth_dev_set_mtu(0, 67), -EINVAL);
	CU_ASSERT_EQUAL(upmd_eth_dev_set_mtu(0, 9000), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_get_mtu(0, &mtu), 0);
	CU_ASSERT_EQUAL(mtu, 9000);
	log_release();
	/* Stop: bursts take nothing again; close frees the id. */
	CU_ASSERT_EQUAL(upmd_eth_dev_stop(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 0, m, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_stop(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_close(0), 0);
	CU_ASSERT_FALSE(upmd_eth_dev_is_valid_port(0));
	CU_ASSERT_EQUAL(upmd_eth_dev_count_avail(), 1);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 0);
	/* The one left started goes at cleanup. */
	CU_ASSERT_EQUAL(bring_up(1), 0);
	down();
}

static const char *xname(const struct upmd_eth_xstat *xs, int n, const char *name, uint64_t *v)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(xs[i].name, name)) {
			*v = xs[i].value;
			return xs[i].name;
		}
	return NULL;
}

static void test_null_stats(void)
{
	struct upmd_mbuf *m[32];
	struct upmd_eth_stats st;
	struct upmd_eth_xstat xs[64];
	uint64_t v = 0;
	int n, k;

	CU_ASSERT_FATAL(INIT(MEM, "--vdev", "net_null0,size=100,copy=1") > 0);
	CU_ASSERT_EQUAL_FATAL(mkpool(512), 0);
	CU_ASSERT_EQUAL_FATAL(bring_up(0), 0);
	for (k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 0, m, 32), 32);
		/* copy=1: real frames, broadcast from the port's address. */
		CU_ASSERT_EQUAL(m[5]->pkt_len, 100);
		CU_ASSERT_EQUAL(m[5]->port, 0);
		CU_ASSERT_EQUAL(((uint8_t *)m[5]->buf_addr + m[5]->data_off)[0], 0xff);
		CU_ASSERT_EQUAL(((uint8_t *)m[5]->buf_addr + m[5]->data_off)[6], 0x02);
		CU_ASSERT_EQUAL(upmd_eth_tx_burst(0, 0, m, 32), 32);
	}
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(0, &st), 0);
	CU_ASSERT_EQUAL(st.ipackets, 96);
	CU_ASSERT_EQUAL(st.opackets, 96);
	CU_ASSERT_EQUAL(st.ibytes, 9600);
	CU_ASSERT_EQUAL(st.obytes, 9600);
	CU_ASSERT_EQUAL(st.q_ipackets[0], 96);
	/* The pool runs dry: RX counts it and hands out nothing. */
	while (upmd_eth_rx_burst(0, 0, m, 32) == 32)
		;
	CU_ASSERT_EQUAL(upmd_eth_stats_get(0, &st), 0);
	CU_ASSERT_TRUE(st.rx_nombuf >= 1);
	/* Extended statistics by name; asking for the count first. */
	n = upmd_eth_xstats_get(0, NULL, 0);
	CU_ASSERT_TRUE(n >= 13);
	CU_ASSERT_EQUAL(upmd_eth_xstats_get(0, xs, (unsigned)n), n);
	CU_ASSERT_PTR_NOT_NULL(xname(xs, n, "rx_good_packets", &v));
	CU_ASSERT_EQUAL(v, st.ipackets);
	CU_ASSERT_PTR_NOT_NULL(xname(xs, n, "tx_q0_bytes", &v));
	CU_ASSERT_EQUAL(v, 9600);
	CU_ASSERT_PTR_NOT_NULL(xname(xs, n, "rx_mbuf_allocation_errors", &v));
	CU_ASSERT_EQUAL(v, st.rx_nombuf);
	CU_ASSERT_EQUAL(upmd_eth_xstats_get(0, xs, 3), n);	/* too little room: the count */
	CU_ASSERT_EQUAL(upmd_eth_stats_reset(0), 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(0, &st), 0);
	CU_ASSERT_EQUAL(st.ipackets + st.opackets + st.rx_nombuf, 0);
	/* Mbufs the application still holds are lost with the pool: freed here. */
	down();
}

/* ---- net_ring: packets across, each one once, in order, intact ---- */

#define SEQ_OFF 14

static void stamp(struct upmd_mbuf *m, uint32_t seq)
{
	char *p = upmd_pktmbuf_append(m, 64);

	memset(p, 0xab, 64);
	memcpy(p + SEQ_OFF, &seq, sizeof(seq));
}

static void test_ring_pair_accounting(void)
{
	const uint32_t total = 1000000;
	struct upmd_mbuf *m[32];
	struct upmd_eth_stats sa, sb;
	struct upmd_eth_link link;
	uint32_t sent = 0, got = 0, bad = 0, dropped = 0, turn = 0;
	uint16_t a, b;

	CU_ASSERT_FATAL(INIT(MEM, "--vdev", "net_ring0,peer=net_ring1,size=256", "--vdev",
				   "net_ring1,peer=net_ring0,size=256") > 0);
	CU_ASSERT_EQUAL_FATAL(mkpool(2048), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_get_port_by_name("net_ring0", &a), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_get_port_by_name("net_ring1", &b), 0);
	CU_ASSERT_EQUAL_FATAL(bring_up(a), 0);
	CU_ASSERT_EQUAL_FATAL(bring_up(b), 0);
	CU_ASSERT_EQUAL(upmd_eth_link_get(a, &link), 0);
	CU_ASSERT_EQUAL(link.up, 1);
	while (got < total) {
		uint16_t n = (uint16_t)UPMD_MIN(32u, total - sent), k, tx, rx;

		/* Send more than the ring holds now and then: the rest comes back. */
		if (n && upmd_pktmbuf_alloc_bulk(pool, m, n) == 0) {
			for (k = 0; k < n; k++)
				stamp(m[k], sent + k);
			tx = upmd_eth_tx_burst(a, 0, m, n);
			sent += tx;
			dropped += n - tx;
			if (tx < n)
				upmd_pktmbuf_free_bulk(&m[tx], n - tx);
		}
		/* Receive on 3 turns of 8 only, so the ring fills up at times. */
		if (sent < total && (++turn & 7) < 5)
			continue;
		rx = upmd_eth_rx_burst(b, 0, m, 32);
		for (k = 0; k < rx; k++) {
			uint32_t seq;

			memcpy(&seq, (char *)m[k]->buf_addr + m[k]->data_off + SEQ_OFF, sizeof(seq));
			bad += seq != got + k || m[k]->pkt_len != 64 || m[k]->port != b;
		}
		got += rx;
		upmd_pktmbuf_free_bulk(m, rx);
		if (sent == total && rx == 0)
			break;
	}
	CU_ASSERT_EQUAL(got, total);
	CU_ASSERT_EQUAL(sent, total);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(a, &sa), 0);
	CU_ASSERT_EQUAL(upmd_eth_stats_get(b, &sb), 0);
	/* Every packet accounted for: what B received is what A sent, and
	 * what A's ring refused is A's TX errors. */
	CU_ASSERT_EQUAL(sa.opackets, total);
	CU_ASSERT_EQUAL(sb.ipackets, total);
	CU_ASSERT_EQUAL(sb.ibytes, (uint64_t)total * 64);
	CU_ASSERT_EQUAL(sa.oerrors, dropped);
	CU_ASSERT_TRUE(dropped > 0);
	CU_ASSERT_EQUAL(sb.opackets + sa.ipackets, 0);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 0);
	printf("\n  %u packets A->B, each once and in order; %u refused by a full ring and counted\n", got, dropped);
	/* Packets left in a ring at cleanup go back to the pool. */
	CU_ASSERT_EQUAL(upmd_pktmbuf_alloc_bulk(pool, m, 8), 0);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(b, 0, m, 8), 8);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 8);
	CU_ASSERT_EQUAL(upmd_eth_dev_close(a), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_close(b), 0);
	CU_ASSERT_EQUAL(upmd_mempool_in_use_count(pool), 0);
	down();
}

static void test_ring_loopback_and_queues(void)
{
	struct upmd_mbuf *m[4], *r[4];
	struct upmd_eth_dev_info info;
	uint16_t q;

	CU_ASSERT_FATAL(INIT(MEM, "--vdev", "net_ring0,queues=4") > 0);
	CU_ASSERT_EQUAL_FATAL(mkpool(256), 0);
	CU_ASSERT_EQUAL(upmd_eth_dev_info_get(0, &info), 0);
	CU_ASSERT_EQUAL(info.max_rx_queues, 4);
	CU_ASSERT_EQUAL(upmd_eth_dev_configure(0, 5, 5, NULL), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(upmd_eth_dev_configure(0, 4, 4, NULL), 0);
	for (q = 0; q < 4; q++) {
		CU_ASSERT_EQUAL(upmd_eth_rx_queue_setup(0, q, 0, UPMD_SOCKET_ID_ANY, pool), 0);
		CU_ASSERT_EQUAL(upmd_eth_tx_queue_setup(0, q, 0, UPMD_SOCKET_ID_ANY), 0);
	}
	CU_ASSERT_EQUAL_FATAL(upmd_eth_dev_start(0), 0);
	/* What queue 2 sends, queue 2 receives; the other queues see nothing. */
	CU_ASSERT_EQUAL_FATAL(upmd_pktmbuf_alloc_bulk(pool, m, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_tx_burst(0, 2, m, 4), 4);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 0, r, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 3, r, 4), 0);
	CU_ASSERT_EQUAL(upmd_eth_rx_burst(0, 2, r, 4), 4);
	CU_ASSERT_PTR_EQUAL(r[0], m[0]);
	CU_ASSERT_PTR_EQUAL(r[3], m[3]);
	upmd_pktmbuf_free_bulk(r, 4);
	down();
}

static const struct upmd_test tests[] = {
	{ "vdev bus: unknown, duplicate and badly argued devices", test_vdev_errors },
	{ "control calls: every check, message and state", test_control_checks },
	{ "net_null: packets, statistics, xstats, no mbufs", test_null_stats },
	{ "net_ring pair: 10^6 packets, each once, in order", test_ring_pair_accounting },
	{ "net_ring loopback with 4 queues", test_ring_loopback_and_queues },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "ethdev", NULL, NULL, tests })
