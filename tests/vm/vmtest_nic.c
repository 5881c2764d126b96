/*
 * In the guest, with only the public API: two NICs of one kind on one of
 * QEMU's hubs, driven by their PMD through the one IOAS (built twice, by
 * tests/vm/meson.build: the two e1000e on hub 1 with net_e1000e, the two
 * modern virtio-net on hub 0 with net_virtio). Link and MACs as run.sh
 * gave them; 10,000 UDP frames of varying length each way, every one
 * received once and byte for byte; a forwarding loop A -> B -> A; the
 * ethdev counters (and the e1000e's hardware counters) agreeing with
 * those counts; the unicast filter with promiscuous mode off and on; RX
 * on an empty pool (rx_nombuf, frames kept until mbufs are back); a
 * too-small mempool refused; every mbuf back in its pool after stop.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/ethdev.h>
#include <upmd/upmd.h>

#ifndef NIC_NAME			/* the e1000e build */
#define NIC_NAME "e1000e"
#define NIC_PMD "net_e1000e"
#define NIC_VENDOR 0x8086
#define NIC_DEVICE 0x10d3
#define NIC_MAC_A "52:54:00:00:00:02"	/* run.sh: n2, n3 on hub 1 */
#define NIC_MAC_B "52:54:00:00:00:04"
#define NIC_HW_COUNTERS 1
#define NIC_SMALL_ROOM (1024 + UPMD_PKTMBUF_HEADROOM)	/* it writes 2048-byte buffers */
#define NB_DESC 512
#endif

#define N_FRAMES 10000
#define POOL_SIZE 4095
#define BURST 32
#define MIN_LEN 60			/* without the CRC: the device pads nothing */
#define MAX_LEN 1514
#define HDRS (14 + 20 + 8)		/* Ethernet, IPv4, UDP */
#define MAGIC 0x75706d64u		/* "upmd" */
#define TIMEOUT_MS 120000		/* one phase, under TCG */
#define QUIET_MS 300			/* after the last frame: time for a duplicate to show */

static const struct upmd_ether_addr foreign = { { 0x02, 0x00, 0x00, 0x00, 0x00, 0x99 } };

static int fails;

#define CHECK(cond, ...)                              \
	do {                                          \
		if (cond) {                           \
			printf("PASS ");              \
		} else {                              \
			printf("FAIL ");              \
			fails++;                      \
		}                                     \
		printf(__VA_ARGS__);                  \
		printf("\n");                         \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- frames ---- */

static uint16_t frame_len(uint32_t seq)
{
	return (uint16_t)(MIN_LEN + (seq * 389u) % (MAX_LEN - MIN_LEN + 1));
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An Ethernet/IPv4/UDP frame of frame_len(seq) bytes whose payload says
 * MAGIC, dir, seq, then bytes that depend on both. */
static void frame_build(uint8_t *f, const struct upmd_ether_addr *dst, const struct upmd_ether_addr *src,
			uint32_t dir, uint32_t seq)
{
	uint16_t len = frame_len(seq);
	uint8_t *ip = f + 14, *udp = ip + 20, *pl = udp + 8;
	uint32_t sum = 0;
	unsigned i;

	memcpy(f, dst->addr_bytes, 6);
	memcpy(f + 6, src->addr_bytes, 6);
	put16(f + 12, UPMD_ETHER_TYPE_IPV4);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(len - 14));
	put16(ip + 4, (uint16_t)seq);
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, 0x0a000001);
	put32(ip + 16, 0x0a000002);
	for (i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, (uint16_t)~sum);
	put16(udp, (uint16_t)(1024 + dir));
	put16(udp + 2, 9);
	put16(udp + 4, (uint16_t)(len - 14 - 20));
	put16(udp + 6, 0);	/* no UDP checksum: allowed over IPv4 */
	put32(pl, MAGIC);
	put32(pl + 4, dir);
	put32(pl + 8, seq);
	for (i = HDRS + 12; i < len; i++)
		f[i] = (uint8_t)(seq * 7 + i * 13 + dir);
}

static struct upmd_mbuf *frame_mbuf(struct upmd_mempool *mp, const struct upmd_ether_addr *dst,
				    const struct upmd_ether_addr *src, uint32_t dir, uint32_t seq)
{
	struct upmd_mbuf *m = upmd_pktmbuf_alloc(mp);
	uint8_t *p;

	if (!m)
		return NULL;
	p = (uint8_t *)upmd_pktmbuf_append(m, frame_len(seq));
	if (!p) {
		upmd_pktmbuf_free(m);
		return NULL;
	}
	frame_build(p, dst, src, dir, seq);
	return m;
}

/*
 * Check a received frame against the one it says it is. @return its
 * sequence number, or -1 if it is not a frame of phase @dir sent with
 * these addresses, or if any byte differs.
 */
static long frame_check(const struct upmd_mbuf *m, const struct upmd_ether_addr *dst,
			const struct upmd_ether_addr *src, uint32_t dir, unsigned n)
{
	uint8_t got[MAX_LEN], want[MAX_LEN];
	uint32_t seq;

	if (m->pkt_len < HDRS + 12 || m->pkt_len > MAX_LEN || !upmd_pktmbuf_read(m, 0, m->pkt_len, got))
		return -1;
	if (get32(got + HDRS) != MAGIC || get32(got + HDRS + 4) != dir)
		return -1;
	seq = get32(got + HDRS + 8);
	if (seq >= n || m->pkt_len != frame_len(seq))
		return -1;
	frame_build(want, dst, src, dir, seq);
	return memcmp(got, want, m->pkt_len) ? -1 : (long)seq;
}

/* ---- the ports ---- */

struct port {
	const char *what;		/* "A" or "B" */
	char bdf[16];
	uint16_t id;
	struct upmd_ether_addr mac;
	uint64_t tx_pkts, tx_bytes, rx_pkts, rx_bytes;	/* what this test sent and got */
};

/* The BDFs of every NIC_VENDOR:NIC_DEVICE in sysfs, sorted. @return how many (at most @max). */
static unsigned find_nics(char bdfs[][16], unsigned max)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		char path[300], buf[16];
		unsigned vendor = 0, device = 0;
		FILE *f;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= 16)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(buf, sizeof(buf), f))
				vendor = (unsigned)strtoul(buf, NULL, 16);
			fclose(f);
		}
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(buf, sizeof(buf), f))
				device = (unsigned)strtoul(buf, NULL, 16);
			fclose(f);
		}
		if (vendor == NIC_VENDOR && device == NIC_DEVICE)
			snprintf(bdfs[n++], 16, "%s", de->d_name);
	}
	closedir(d);
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && strcmp(bdfs[j - 1], bdfs[j]) > 0; j--) {
			char t[16];

			memcpy(t, bdfs[j], 16);
			memcpy(bdfs[j], bdfs[j - 1], 16);
			memcpy(bdfs[j - 1], t, 16);
		}
	return n;
}

static int port_setup(struct port *p, struct upmd_mempool *mp)
{
	int rc;

	rc = upmd_eth_dev_get_port_by_name(p->bdf, &p->id);
	if (rc < 0) {
		printf("FAIL port %s: no ethdev port for %s (did " NIC_PMD " probe it?)\n", p->what, p->bdf);
		return rc;
	}
	if ((rc = upmd_eth_dev_configure(p->id, 1, 1, NULL)) < 0 ||
	    (rc = upmd_eth_rx_queue_setup(p->id, 0, NB_DESC, UPMD_SOCKET_ID_ANY, mp)) < 0 ||
	    (rc = upmd_eth_tx_queue_setup(p->id, 0, NB_DESC, UPMD_SOCKET_ID_ANY)) < 0 ||
	    (rc = upmd_eth_dev_start(p->id)) < 0) {
		printf("FAIL port %s (%s): configure/queue setup/start: %s\n", p->what, p->bdf, strerror(-rc));
		return rc;
	}
	return upmd_eth_macaddr_get(p->id, &p->mac);
}

/* One measured transfer: N frames of phase @dir, and what arrived. */
struct phase {
	uint32_t dir;
	unsigned n;
	const struct upmd_ether_addr *dst, *src;	/* what the receiver must see */
	unsigned got, dups, bad;
	uint8_t *seen;
	uint64_t bytes;
};

static void rx_count(struct phase *ph, struct port *rx, struct upmd_mbuf *m)
{
	long seq = frame_check(m, ph->dst, ph->src, ph->dir, ph->n);

	rx->rx_pkts++;
	rx->rx_bytes += m->pkt_len;
	if (seq < 0 || m->port != rx->id)
		ph->bad++;
	else if (ph->seen[seq])
		ph->dups++;
	else {
		ph->seen[seq] = 1;
		ph->got++;
		ph->bytes += m->pkt_len;
	}
}

/*
 * @tx sends N frames to @rx; with @fwd, @rx sends each one straight back
 * (addresses swapped) and @tx is where they must arrive. Polls until all
 * came or TIMEOUT_MS passed, then QUIET_MS more for duplicates.
 */
static void run_phase(struct phase *ph, struct port *tx, struct port *rx, bool fwd, struct upmd_mempool *mp)
{
	struct port *sink = fwd ? tx : rx;
	struct upmd_mbuf *pkts[BURST], *fw[BURST * 4];
	unsigned next = 0, nfw = 0, i;
	uint64_t deadline = now_ms() + TIMEOUT_MS, quiet_end = 0;

	ph->seen = calloc(ph->n, 1);
	for (;;) {
		uint16_t k, sent;

		if (next < ph->n) {
			unsigned want = UPMD_MIN((unsigned)BURST, ph->n - next);

			for (k = 0; k < want; k++) {
				pkts[k] = frame_mbuf(mp, &rx->mac, &tx->mac, ph->dir, next + k);
				if (!pkts[k])
					break;
			}
			sent = upmd_eth_tx_burst(tx->id, 0, pkts, k);
			for (i = 0; i < sent; i++) {
				tx->tx_pkts++;
				tx->tx_bytes += pkts[i]->pkt_len;
			}
			upmd_pktmbuf_free_bulk(pkts + sent, k - sent);
			next += sent;
		}
		if (fwd) {
			/* B: what came in goes back out, addresses swapped. */
			if (nfw < UPMD_DIM(fw) - BURST) {
				k = upmd_eth_rx_burst(rx->id, 0, fw + nfw, BURST);
				for (i = 0; i < k; i++) {
					uint8_t *e = upmd_pktmbuf_mtod(fw[nfw + i], uint8_t *);

					rx->rx_pkts++;
					rx->rx_bytes += fw[nfw + i]->pkt_len;
					memcpy(e, tx->mac.addr_bytes, 6);
					memcpy(e + 6, rx->mac.addr_bytes, 6);
				}
				nfw += k;
			}
			if (nfw) {
				sent = upmd_eth_tx_burst(rx->id, 0, fw, (uint16_t)nfw);
				for (i = 0; i < sent; i++) {
					rx->tx_pkts++;
					rx->tx_bytes += fw[i]->pkt_len;
				}
				memmove(fw, fw + sent, (nfw - sent) * sizeof(fw[0]));
				nfw -= sent;
			}
		}
		k = upmd_eth_rx_burst(sink->id, 0, pkts, BURST);
		for (i = 0; i < k; i++)
			rx_count(ph, sink, pkts[i]);
		upmd_pktmbuf_free_bulk(pkts, k);
		if (ph->got == ph->n && nfw == 0 && !quiet_end)
			quiet_end = now_ms() + QUIET_MS;
		if (quiet_end && now_ms() > quiet_end)
			break;
		if (now_ms() > deadline) {
			printf("  phase %u: timed out with %u of %u frames sent, %u received\n", ph->dir, next, ph->n,
			       ph->got);
			break;
		}
	}
	upmd_pktmbuf_free_bulk(fw, nfw);
	free(ph->seen);
}

static void phase_report(const char *name, const struct phase *ph)
{
	CHECK(ph->got == ph->n && ph->dups == 0 && ph->bad == 0,
	      "%s: %u frames sent, %u received intact, %u twice, %u wrong", name, ph->n, ph->got, ph->dups, ph->bad);
}

static __upmd_unused uint64_t xstat(uint16_t port, const char *name)
{
	struct upmd_eth_xstat xs[64];
	int n = upmd_eth_xstats_get(port, xs, UPMD_DIM(xs));

	for (int i = 0; i < n && i < (int)UPMD_DIM(xs); i++)
		if (!strcmp(xs[i].name, name))
			return xs[i].value;
	return UINT64_MAX;
}

/*
 * The driver's counters must be what the test counted; the device's too.
 * Its octet counters include 4 bytes of CRC per frame by the datasheet;
 * QEMU 7.2 counts them on RX but leaves them out of GOTC: either is
 * accepted, per counter, and nothing in between.
 */
static __upmd_unused bool octets_agree(uint64_t hw, uint64_t bytes, uint64_t pkts)
{
	return hw == bytes + 4 * pkts || hw == bytes;
}

static void counters_check(const struct port *p)
{
	struct upmd_eth_stats s;
#if NIC_HW_COUNTERS
	uint64_t hw_rx, hw_tx, hw_rxb, hw_txb;
#endif

	if (upmd_eth_stats_get(p->id, &s) < 0) {
		CHECK(0, "port %s: stats_get", p->what);
		return;
	}
#if NIC_HW_COUNTERS
	hw_rx = xstat(p->id, "hw_rx_good_packets");
	hw_tx = xstat(p->id, "hw_tx_good_packets");
	hw_rxb = xstat(p->id, "hw_rx_good_bytes");
	hw_txb = xstat(p->id, "hw_tx_good_bytes");
#endif
	printf("port %s %s: ipackets %llu ibytes %llu opackets %llu obytes %llu imissed %llu ierrors %llu "
	       "oerrors %llu rx_nombuf %llu\n", p->what, p->bdf, (unsigned long long)s.ipackets,
	       (unsigned long long)s.ibytes, (unsigned long long)s.opackets, (unsigned long long)s.obytes,
	       (unsigned long long)s.imissed, (unsigned long long)s.ierrors, (unsigned long long)s.oerrors,
	       (unsigned long long)s.rx_nombuf);
#if NIC_HW_COUNTERS
	printf("port %s hardware: GPRC %llu GORC %llu GPTC %llu GOTC %llu MPC %llu\n", p->what,
	       (unsigned long long)hw_rx, (unsigned long long)hw_rxb, (unsigned long long)hw_tx,
	       (unsigned long long)hw_txb, (unsigned long long)xstat(p->id, "hw_rx_missed_packets"));
#endif
	CHECK(s.ipackets == p->rx_pkts && s.ibytes == p->rx_bytes && s.opackets == p->tx_pkts &&
	      s.obytes == p->tx_bytes && s.imissed == 0 && s.ierrors == 0 && s.oerrors == 0,
	      "port %s: ethdev counters = the test's (%llu in, %llu out), no drops or errors", p->what,
	      (unsigned long long)p->rx_pkts, (unsigned long long)p->tx_pkts);
#if NIC_HW_COUNTERS
	CHECK(hw_rx == p->rx_pkts && hw_tx == p->tx_pkts && octets_agree(hw_rxb, p->rx_bytes, p->rx_pkts) &&
	      octets_agree(hw_txb, p->tx_bytes, p->tx_pkts),
	      "port %s: hardware GPRC %llu GPTC %llu = the test's counts; GORC %s, GOTC %s", p->what,
	      (unsigned long long)hw_rx, (unsigned long long)hw_tx,
	      hw_rxb == p->rx_bytes ? "= its bytes" : "= its bytes + 4 CRC a frame",
	      hw_txb == p->tx_bytes ? "= its bytes" : "= its bytes + 4 CRC a frame");
#endif
}

/* Promiscuous off: B takes the frames to its address and not those to another one; on: both. */
static void filter_check(struct port *a, struct port *b, struct upmd_mempool *mp)
{
	const unsigned n = 64;
	unsigned round, got[2] = { 0, 0 };

	for (round = 0; round < 2; round++) {
		uint64_t end;
		unsigned i;

		if (round == 0)
			upmd_eth_promiscuous_disable(b->id);
		else
			upmd_eth_promiscuous_enable(b->id);
		for (i = 0; i < 2 * n; i++) {
			struct upmd_mbuf *m = frame_mbuf(mp, i % 2 ? &foreign : &b->mac, &a->mac, 10 + round, i);

			if (!m || upmd_eth_tx_burst(a->id, 0, &m, 1) != 1)
				upmd_pktmbuf_free(m);
		}
		end = now_ms() + 2000;
		while (now_ms() < end) {
			struct upmd_mbuf *pkts[BURST];
			uint16_t k = upmd_eth_rx_burst(b->id, 0, pkts, BURST);

			got[round] += k;
			upmd_pktmbuf_free_bulk(pkts, k);
		}
	}
	CHECK(got[0] == n && got[1] == 2 * n,
	      "unicast filter: promiscuous off %u of %u frames (only those to B), on %u of %u", got[0], 2 * n, got[1],
	      2 * n);
}

/*
 * An empty pool: B's RX finds frames done but no mbuf to put in their
 * place, so it hands out nothing, counts rx_nombuf and leaves them; once
 * the pool has mbufs again every frame comes, intact and in order.
 */
static void nombuf_check(struct port *a, struct port *b, struct upmd_mempool *mp)
{
	const unsigned n = 16;
	struct upmd_mbuf *pkts[16], *got[BURST], **hoard = calloc(POOL_SIZE, sizeof(*hoard));
	struct upmd_eth_stats s0, s1;
	unsigned nh = 0, held_rx = 0, rx = 0, in_order = 0, i;
	uint16_t k;
	uint64_t end;

	if (!hoard)
		return;
	upmd_eth_stats_get(b->id, &s0);
	for (i = 0; i < n; i++)
		pkts[i] = frame_mbuf(mp, &b->mac, &a->mac, 20, i);
	k = upmd_eth_tx_burst(a->id, 0, pkts, (uint16_t)n);
	for (i = 0; i < k; i++) {
		a->tx_pkts++;
		a->tx_bytes += pkts[i]->pkt_len;
	}
	upmd_pktmbuf_free_bulk(pkts + k, n - k);
	/* After the send: its reclaim put earlier frames back in the pool. */
	while (nh < POOL_SIZE && (hoard[nh] = upmd_pktmbuf_alloc(mp)) != NULL)
		nh++;
	end = now_ms() + 500;
	while (now_ms() < end) {
		k = upmd_eth_rx_burst(b->id, 0, got, BURST);
		held_rx += k;
		upmd_pktmbuf_free_bulk(got, k);
	}
	upmd_eth_stats_get(b->id, &s1);
	upmd_pktmbuf_free_bulk(hoard, nh);
	free(hoard);
	end = now_ms() + 2000;
	while (rx < n && now_ms() < end) {
		k = upmd_eth_rx_burst(b->id, 0, got, BURST);
		for (i = 0; i < k; i++) {
			b->rx_pkts++;
			b->rx_bytes += got[i]->pkt_len;
			in_order += frame_check(got[i], &b->mac, &a->mac, 20, n) == (long)rx;
			rx++;
		}
		upmd_pktmbuf_free_bulk(got, k);
	}
	CHECK(held_rx == 0 && s1.rx_nombuf > s0.rx_nombuf && rx == n && in_order == n,
	      "empty pool (%u mbufs held): %u frames handed out, rx_nombuf +%llu; refilled: %u of %u frames, %u "
	      "intact and in order", nh, held_rx, (unsigned long long)(s1.rx_nombuf - s0.rx_nombuf), rx, n, in_order);
}

int main(int argc, char **argv)
{
	char bdfs[4][16];
	char *args[] = { argv[0], "-l", "0", "-m", "64", "-a", bdfs[0], "-a", bdfs[1], NULL };
	struct port a = { .what = "A" }, b = { .what = "B" };
	struct upmd_mempool *mp = NULL, *small = NULL;
	struct upmd_eth_link la, lb;
	char ma[UPMD_ETHER_ADDR_FMT_SIZE], mb[UPMD_ETHER_ADDR_FMT_SIZE];
	struct phase ph;
	uint64_t end;
	int rc;

	(void)argc;
	if (find_nics(bdfs, 4) < 2) {
		if (!getenv("UPMD_IN_VM")) {
			printf("SKIP: fewer than two " NIC_NAME " (%04x:%04x) devices and not in the VM guest\n",
			       NIC_VENDOR, NIC_DEVICE);
			return 77;
		}
		printf("FAIL: run.sh gives the guest two " NIC_NAME " (%04x:%04x); sysfs has fewer\n", NIC_VENDOR,
		       NIC_DEVICE);
		return 1;
	}
	snprintf(a.bdf, sizeof(a.bdf), "%s", bdfs[0]);
	snprintf(b.bdf, sizeof(b.bdf), "%s", bdfs[1]);
	printf(NIC_NAME " A %s, B %s\n", a.bdf, b.bdf);
	if (upmd_eal_init(9, args) < 0) {
		printf("FAIL: EAL init with -a %s -a %s\n", a.bdf, b.bdf);
		return 1;
	}
	CHECK(upmd_eth_dev_count_avail() == 2, "%u ethdev ports", upmd_eth_dev_count_avail());
	rc = upmd_pktmbuf_pool_create("nic_pool", POOL_SIZE, 256, 0, UPMD_MBUF_DEFAULT_BUF_SIZE, UPMD_SOCKET_ID_ANY,
				      &mp);
	if (rc < 0) {
		printf("FAIL: mbuf pool: %s\n", strerror(-rc));
		goto out;
	}

	/* Bad input first: buffers too small for what the NIC writes. */
	if (upmd_eth_dev_get_port_by_name(a.bdf, &a.id) == 0 && upmd_eth_dev_configure(a.id, 1, 1, NULL) == 0 &&
	    upmd_pktmbuf_pool_create("nic_small", 63, 0, 0, NIC_SMALL_ROOM, UPMD_SOCKET_ID_ANY, &small) == 0) {
		rc = upmd_eth_rx_queue_setup(a.id, 0, NB_DESC, UPMD_SOCKET_ID_ANY, small);
		CHECK(rc == -EINVAL, "RX queue on %u-byte buffers refused: %s", NIC_SMALL_ROOM - UPMD_PKTMBUF_HEADROOM,
		      strerror(-rc));
		upmd_mempool_free(small);
	}

	if (port_setup(&a, mp) < 0 || port_setup(&b, mp) < 0) {
		fails++;
		goto out;
	}
	end = now_ms() + 5000;
	do {
		upmd_eth_link_get(a.id, &la);
		upmd_eth_link_get(b.id, &lb);
	} while (!(la.up && lb.up) && now_ms() < end);
	CHECK(la.up && lb.up, "link A %s %u Mb/s %s, B %s %u Mb/s %s", la.up ? "up" : "down", la.speed_mbps,
	      la.full_duplex ? "full duplex" : "half duplex", lb.up ? "up" : "down", lb.speed_mbps,
	      lb.full_duplex ? "full duplex" : "half duplex");
	upmd_ether_format_addr(ma, sizeof(ma), &a.mac);
	upmd_ether_format_addr(mb, sizeof(mb), &b.mac);
	CHECK(!strcmp(ma, NIC_MAC_A) && !strcmp(mb, NIC_MAC_B), "MAC A %s, B %s", ma, mb);
	upmd_eth_stats_reset(a.id);
	upmd_eth_stats_reset(b.id);

	ph = (struct phase){ .dir = 1, .n = N_FRAMES, .dst = &b.mac, .src = &a.mac };
	end = now_ms();
	run_phase(&ph, &a, &b, false, mp);
	phase_report("A -> B", &ph);
	printf("  A -> B took %llu ms, %llu frame bytes\n", (unsigned long long)(now_ms() - end),
	       (unsigned long long)ph.bytes);

	ph = (struct phase){ .dir = 2, .n = N_FRAMES, .dst = &a.mac, .src = &b.mac };
	end = now_ms();
	run_phase(&ph, &b, &a, false, mp);
	phase_report("B -> A", &ph);
	printf("  B -> A took %llu ms\n", (unsigned long long)(now_ms() - end));

	ph = (struct phase){ .dir = 3, .n = N_FRAMES, .dst = &a.mac, .src = &b.mac };
	end = now_ms();
	run_phase(&ph, &a, &b, true, mp);
	phase_report("forward A -> B -> A", &ph);
	printf("  A -> B -> A took %llu ms\n", (unsigned long long)(now_ms() - end));

	counters_check(&a);
	counters_check(&b);
	filter_check(&a, &b, mp);
	nombuf_check(&a, &b, mp);

	rc = upmd_eth_dev_stop(a.id);
	rc = rc ? rc : upmd_eth_dev_stop(b.id);
	upmd_mempool_cache_flush(mp);
	CHECK(rc == 0 && upmd_mempool_avail_count(mp) == POOL_SIZE,
	      "stop: %u of %u mbufs back in the pool (the rings' and the unreclaimed TX ones)",
	      upmd_mempool_avail_count(mp), POOL_SIZE);
	upmd_eth_dev_close(a.id);
	upmd_eth_dev_close(b.id);
out:
	upmd_mempool_free(mp);
	upmd_eal_cleanup();
	printf("%s\n", fails ? "FAILED" : "OK");
	return fails ? 1 : 0;
}
