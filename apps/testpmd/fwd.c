/* upmd-testpmd's forwarding engines: io, mac, macswap, rxonly, txonly and flowgen, each one burst of one stream per call. */
#include <string.h>

#include "testpmd.h"

struct tp_conf tp;

const char *const fwd_mode_names[FWD_MODES] = {
	[FWD_IO] = "io",	 [FWD_MAC] = "mac",	  [FWD_MACSWAP] = "macswap",
	[FWD_RXONLY] = "rxonly", [FWD_TXONLY] = "txonly", [FWD_FLOWGEN] = "flowgen",
	[FWD_DMACOPY] = "dmacopy",
};

/* Send what was received or made; what the queue does not take is freed
 * and counted as dropped. */
static inline void send(struct fwd_stream *fs, struct upmd_mbuf **pkts, uint16_t n)
{
	uint16_t sent = upmd_eth_tx_burst(fs->tx_port, fs->tx_queue, pkts, n);

	fs->tx_packets += sent;
	if (upmd_unlikely(sent < n)) {
		fs->fwd_dropped += n - sent;
		upmd_pktmbuf_free_bulk(&pkts[sent], n - sent);
	}
}

static inline uint16_t receive(struct fwd_stream *fs, struct upmd_mbuf **pkts)
{
	uint16_t n = upmd_eth_rx_burst(fs->rx_port, fs->rx_queue, pkts, tp.burst);

	fs->rx_packets += n;
	return n;
}

static void fwd_io(struct fwd_stream *fs)
{
	struct upmd_mbuf *pkts[MAX_BURST];
	uint16_t n = receive(fs, pkts);

	if (n)
		send(fs, pkts, n);
}

static inline struct upmd_ether_hdr *eth_of(struct upmd_mbuf *m)
{
	return (struct upmd_ether_hdr *)(void *)((char *)m->buf_addr + m->data_off);
}

static void fwd_mac(struct fwd_stream *fs)
{
	struct upmd_mbuf *pkts[MAX_BURST];
	uint16_t n = receive(fs, pkts), i;

	for (i = 0; i < n; i++) {
		struct upmd_ether_hdr *eh;

		if (upmd_unlikely(pkts[i]->data_len < UPMD_ETHER_HDR_LEN))
			continue;
		eh = eth_of(pkts[i]);
		eh->dst_addr = fs->tx_dst;
		eh->src_addr = fs->tx_src;
	}
	if (n)
		send(fs, pkts, n);
}

static void fwd_macswap(struct fwd_stream *fs)
{
	struct upmd_mbuf *pkts[MAX_BURST];
	uint16_t n = receive(fs, pkts), i;

	for (i = 0; i < n; i++) {
		struct upmd_ether_hdr *eh;
		struct upmd_ether_addr t;

		if (upmd_unlikely(pkts[i]->data_len < UPMD_ETHER_HDR_LEN))
			continue;
		eh = eth_of(pkts[i]);
		t = eh->dst_addr;
		eh->dst_addr = eh->src_addr;
		eh->src_addr = t;
	}
	if (n)
		send(fs, pkts, n);
}

static void fwd_rxonly(struct fwd_stream *fs)
{
	struct upmd_mbuf *pkts[MAX_BURST];
	uint16_t n = receive(fs, pkts);

	if (n)
		upmd_pktmbuf_free_bulk(pkts, n);
}

/* ---- generated packets: Ethernet + IPv4 + UDP, as DPDK's txonly ---- */

#define IP_SRC 0xc6120001u	/* 198.18.0.1 (the benchmarking range) */
#define IP_DST 0xc6120002u
#define UDP_PORT 9		/* discard */
#define HDRS_LEN (UPMD_ETHER_HDR_LEN + 20 + 8)

static uint16_t ip_cksum(const uint8_t *h)
{
	uint32_t sum = 0;
	unsigned i;

	for (i = 0; i < 20; i += 2)
		sum += (uint32_t)h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
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

/* The headers of a @len-byte frame to @ip_dst, port @sport. */
static void build_headers(uint8_t *p, const struct fwd_stream *fs, uint32_t len, uint32_t ip_dst, uint16_t sport)
{
	struct upmd_ether_hdr *eh = (struct upmd_ether_hdr *)(void *)p;
	uint8_t *ip = p + UPMD_ETHER_HDR_LEN, *udp = ip + 20;

	eh->dst_addr = fs->tx_dst;
	eh->src_addr = fs->tx_src;
	eh->ether_type = __builtin_bswap16(UPMD_ETHER_TYPE_IPV4);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(len - UPMD_ETHER_HDR_LEN));
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, IP_SRC);
	put32(ip + 16, ip_dst);
	put16(ip + 10, ip_cksum(ip));
	put16(udp, sport);
	put16(udp + 2, UDP_PORT);
	put16(udp + 4, (uint16_t)(len - UPMD_ETHER_HDR_LEN - 20));
	put16(udp + 6, 0);	/* no checksum: allowed for UDP over IPv4 */
}

/* One packet of tp.txpkts segments; NULL if the pool ran dry. */
static struct upmd_mbuf *make_packet(struct fwd_stream *fs, uint32_t ip_dst, uint16_t sport)
{
	struct upmd_mbuf *segs[MAX_SEGS];
	uint32_t total = 0;
	unsigned i;

	if (upmd_pktmbuf_alloc_bulk(fs->mp, segs, tp.nb_txsegs) < 0)
		return NULL;
	for (i = 0; i < tp.nb_txsegs; i++)
		total += tp.txpkts[i];
	for (i = 0; i < tp.nb_txsegs; i++) {
		struct upmd_mbuf *m = segs[i];
		uint8_t *d = (uint8_t *)m->buf_addr + m->data_off;

		m->data_len = tp.txpkts[i];
		if (i == 0) {
			build_headers(d, fs, total, ip_dst, sport);
			memset(d + HDRS_LEN, 0, tp.txpkts[0] - HDRS_LEN);
		} else {
			memset(d, 0, tp.txpkts[i]);
			segs[i - 1]->next = m;
		}
	}
	segs[0]->pkt_len = total;
	segs[0]->nb_segs = (uint16_t)tp.nb_txsegs;
	segs[0]->port = fs->tx_port;
	return segs[0];
}

static void generate(struct fwd_stream *fs, bool flows)
{
	struct upmd_mbuf *pkts[MAX_BURST];
	uint16_t n;

	for (n = 0; n < tp.burst; n++) {
		uint32_t dst = IP_DST;
		uint16_t sport = UDP_PORT;

		if (flows) {
			/* Flows differ in destination address and source port. */
			dst += fs->flow;
			sport = (uint16_t)(1024 + fs->flow);
			fs->flow = fs->flow + 1 == tp.flows ? 0 : fs->flow + 1;
		}
		pkts[n] = make_packet(fs, dst, sport);
		if (!pkts[n]) {
			fs->alloc_failed++;
			break;
		}
	}
	if (n)
		send(fs, pkts, n);
}

void fwd_txonly(struct fwd_stream *fs)
{
	generate(fs, false);
}

static void fwd_flowgen(struct fwd_stream *fs)
{
	struct upmd_mbuf *pkts[MAX_BURST];
	uint16_t n = receive(fs, pkts);

	/* flowgen also takes in what comes back, as DPDK's does. */
	if (n)
		upmd_pktmbuf_free_bulk(pkts, n);
	generate(fs, true);
}

/*
 * dmacopy: each received packet is copied by the DMA engine into a new
 * mbuf (its data at buf_iova + data_off, as a NIC descriptor would carry),
 * the burst's copies submitted with one doorbell; once the engine reports
 * them done the new mbufs go out and the received ones are freed. A copy
 * that fails drops its packet (counted). Chained packets go as they are.
 */
static void fwd_dmacopy(struct fwd_stream *fs)
{
	struct upmd_mbuf *pkts[MAX_BURST], *out[MAX_BURST];
	enum upmd_dma_status_code st[MAX_BURST];
	bool copied[MAX_BURST];
	uint16_t n = receive(fs, pkts), k, done = 0, nout = 0, nq = 0, last;
	unsigned spins = 0;

	if (!n)
		return;
	if (upmd_pktmbuf_alloc_bulk(fs->mp, out, n) < 0) {
		fs->alloc_failed += n;
		send(fs, pkts, n);
		return;
	}
	for (k = 0; k < n; k++) {
		struct upmd_mbuf *m = pkts[k];

		copied[k] = false;
		if (m->nb_segs != 1 || m->data_len > out[k]->buf_len - out[k]->data_off)
			continue;
		if (upmd_dma_copy(tp.dma_dev, fs->dma_vchan, upmd_pktmbuf_data_iova(m), upmd_pktmbuf_data_iova(out[k]),
				  m->data_len, 0) < 0)
			continue;
		copied[k] = true;
		nq++;
	}
	if (nq)
		upmd_dma_submit(tp.dma_dev, fs->dma_vchan);
	while (done < nq && ++spins < 100000000u) {
		uint16_t got = upmd_dma_completed_status(tp.dma_dev, fs->dma_vchan, (uint16_t)(nq - done), &last,
							 st + done);

		done = (uint16_t)(done + got);
	}
	for (k = 0, nq = done, done = 0; k < n; k++) {
		struct upmd_mbuf *m = pkts[k], *c = out[k];

		if (!copied[k]) {
			upmd_pktmbuf_free(c);
			pkts[nout++] = m;	/* forwarded as it is */
			continue;
		}
		if (done >= nq) {
			/* The engine never reported it: it may still write into
			 * the new mbuf, which is therefore left alone (lost). */
			fs->dma_errors++;
			fs->fwd_dropped++;
			upmd_pktmbuf_free(m);
			continue;
		}
		if (st[done++] != UPMD_DMA_STATUS_SUCCESSFUL) {
			fs->dma_errors++;
			fs->fwd_dropped++;
			upmd_pktmbuf_free(c);
			upmd_pktmbuf_free(m);
			continue;
		}
		c->data_len = m->data_len;
		c->pkt_len = m->pkt_len;
		c->ol_flags = m->ol_flags;
		c->packet_type = m->packet_type;
		c->vlan_tci = m->vlan_tci;
		c->hash = m->hash;
		fs->dma_copied++;
		upmd_pktmbuf_free(m);
		pkts[nout++] = c;
	}
	if (nout)
		send(fs, pkts, nout);
}

const fwd_fn fwd_engines[FWD_MODES] = {
	[FWD_IO] = fwd_io,	   [FWD_MAC] = fwd_mac,		[FWD_MACSWAP] = fwd_macswap,
	[FWD_RXONLY] = fwd_rxonly, [FWD_TXONLY] = fwd_txonly, [FWD_FLOWGEN] = fwd_flowgen,
	[FWD_DMACOPY] = fwd_dmacopy,
};
