/* net_af_packet: a port on a Linux network interface through AF_PACKET sockets with mmapped TPACKET_V2 rings, so upmd talks to the kernel's own stack. */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>
#include <upmd/vdev.h>

#define DRV "net_af_packet"
#define MAX_QUEUES 16
#define DEFAULT_FRAMES 512
#define FRAME_SIZE 2048		/* TPACKET2 header, sockaddr_ll and a 1518-byte frame fit */

/*
 * One queue pair is one socket bound to the interface with an RX and a TX
 * ring mapped together. Several pairs join a fanout group so the kernel
 * spreads received flows over them. A ring is frame_nr frames of
 * FRAME_SIZE; each frame starts with a struct tpacket2_hdr whose
 * tp_status says whose it is (the kernel's or ours).
 */
struct pk_ring {
	uint8_t *base;
	unsigned nr, next;
};

struct pk_queue {
	struct upmd_eth_qstats st;
	int fd;
	struct pk_ring ring;
	struct upmd_mempool *mp;	/* RX */
	uint16_t port;
	uint16_t mtu_frame;		/* TX: the largest frame the interface takes */
} __upmd_cache_aligned;

struct pk_pair {
	int fd;				/* -1: closed */
	uint8_t *map;
	size_t map_len;
	bool rx_used, tx_used;		/* the socket goes when neither is */
	struct pk_queue rx, tx;
};

struct pk_priv {
	char iface[IFNAMSIZ];
	int ifindex;
	unsigned frames, qpairs;
	struct pk_pair pair[MAX_QUEUES];
	int ctl;			/* an AF_INET socket for interface ioctls */
};

static inline struct tpacket2_hdr *frame_at(const struct pk_ring *r, unsigned i)
{
	return (struct tpacket2_hdr *)(void *)(r->base + (size_t)i * FRAME_SIZE);
}

/* tp_status is shared with the kernel: acquire when taking a frame over,
 * release when handing it back, so the frame's bytes travel with it. */
static inline uint32_t status_get(const struct tpacket2_hdr *h)
{
	return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
}

static inline void status_set(struct tpacket2_hdr *h, uint32_t v)
{
	__atomic_store_n(&h->tp_status, v, __ATOMIC_RELEASE);
}

static uint16_t pk_rx(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct pk_queue *q = queue;
	struct pk_ring *r = &q->ring;
	uint64_t bytes = 0;
	uint16_t nb = 0;

	while (nb < n) {
		struct tpacket2_hdr *h = frame_at(r, r->next);
		struct upmd_mbuf *m;
		uint32_t len;

		if (!(status_get(h) & TP_STATUS_USER))
			break;
		len = h->tp_snaplen;
		m = upmd_pktmbuf_alloc(q->mp);
		if (upmd_unlikely(!m)) {
			q->st.nombuf++;
			break;	/* the frame stays for the next call */
		}
		if (upmd_unlikely(len > upmd_pktmbuf_tailroom(m))) {
			q->st.errors++;	/* larger than an mbuf: dropped */
			upmd_pktmbuf_free(m);
		} else {
			memcpy(upmd_pktmbuf_append(m, (uint16_t)len), (uint8_t *)h + h->tp_mac, len);
			m->port = q->port;
			if (h->tp_status & TP_STATUS_VLAN_VALID) {
				m->vlan_tci = h->tp_vlan_tci;
				m->ol_flags |= UPMD_MBUF_F_RX_VLAN | UPMD_MBUF_F_RX_VLAN_STRIPPED;
			}
			bytes += len;
			pkts[nb++] = m;
		}
		status_set(h, TP_STATUS_KERNEL);
		r->next = r->next + 1 == r->nr ? 0 : r->next + 1;
	}
	q->st.packets += nb;
	q->st.bytes += bytes;
	return nb;
}

static uint16_t pk_tx(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct pk_queue *q = queue;
	struct pk_ring *r = &q->ring;
	const size_t off = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
	uint64_t bytes = 0;
	uint16_t i, queued = 0;

	for (i = 0; i < n; i++) {
		struct tpacket2_hdr *h = frame_at(r, r->next);
		struct upmd_mbuf *m = pkts[i];
		uint32_t st = status_get(h);

		if (st != TP_STATUS_AVAILABLE && st != TP_STATUS_WRONG_FORMAT)
			break;	/* the ring is full: the rest stay the caller's */
		if (upmd_unlikely(m->pkt_len > q->mtu_frame || m->pkt_len > FRAME_SIZE - off ||
				  m->pkt_len < UPMD_ETHER_HDR_LEN)) {
			/* It could never go out: taken and counted, not sent. */
			q->st.errors++;
			upmd_pktmbuf_free(m);
			continue;
		}
		{
			uint8_t *dst = (uint8_t *)h + off;
			const void *src = upmd_pktmbuf_read(m, 0, m->pkt_len, dst);

			/* A contiguous packet is not copied by the read: copy it. */
			if (src && src != dst)
				memcpy(dst, src, m->pkt_len);
		}
		h->tp_len = m->pkt_len;
		bytes += m->pkt_len;
		status_set(h, TP_STATUS_SEND_REQUEST);
		r->next = r->next + 1 == r->nr ? 0 : r->next + 1;
		upmd_pktmbuf_free(m);
		queued++;
	}
	/* One system call a burst: the kernel sends every frame marked. */
	if (queued && sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN && errno != ENOBUFS)
		q->st.errors++;
	q->st.packets += queued;
	q->st.bytes += bytes;
	return i;
}

/* ---- control ---- */

static int iface_flags(struct pk_priv *p, short *flags)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", p->iface);
	if (ioctl(p->ctl, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	*flags = ifr.ifr_flags;
	return 0;
}

static void pk_infos(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info)
{
	struct pk_priv *p = dev->priv;

	info->max_rx_queues = (uint16_t)p->qpairs;
	info->max_tx_queues = (uint16_t)p->qpairs;
	info->rx_desc_min = info->tx_desc_min = 1;
	info->rx_desc_max = info->tx_desc_max = 65535;	/* the rings are frames=, whatever is asked */
	info->max_mtu = FRAME_SIZE - TPACKET2_HDRLEN - UPMD_ETHER_HDR_LEN - 16;
	info->max_rx_pktlen = info->max_mtu + UPMD_ETHER_HDR_LEN;
	info->tx_offload_capa = UPMD_ETH_TX_OFFLOAD_MULTI_SEGS;
	info->speed_capa_mbps = 10000;
}

static void pair_close(struct pk_pair *pp)
{
	if (pp->map && pp->map != MAP_FAILED)
		munmap(pp->map, pp->map_len);
	if (pp->fd >= 0)
		close(pp->fd);
	memset(pp, 0, sizeof(*pp));
	pp->fd = -1;
}

static int pair_open(struct upmd_eth_dev *dev, unsigned qi)
{
	struct pk_priv *p = dev->priv;
	struct pk_pair *pp = &p->pair[qi];
	struct tpacket_req req = {
		.tp_block_size = FRAME_SIZE * 2,
		.tp_block_nr = p->frames / 2,
		.tp_frame_size = FRAME_SIZE,
		.tp_frame_nr = p->frames,
	};
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = p->ifindex };
	int v = TPACKET_V2, rc, one = 1;

	if (pp->fd >= 0)
		return 0;
	pp->fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (pp->fd < 0) {
		rc = -errno;
		UPMD_ERR(DRV, "%s: AF_PACKET socket: %s%s", dev->name, strerror(-rc),
			 rc == -EPERM ? " (it needs CAP_NET_RAW: run as root or give the capability)" : "");
		return rc;
	}
	if (setsockopt(pp->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
	    setsockopt(pp->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0 ||
	    setsockopt(pp->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0 ||
	    /* Frames we send are not seen again on our own RX ring. */
	    setsockopt(pp->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
		rc = -errno;
		UPMD_ERR(DRV, "%s: setting up the packet rings: %s", dev->name, strerror(-rc));
		goto err;
	}
	pp->map_len = (size_t)2 * p->frames * FRAME_SIZE;
	pp->map = mmap(NULL, pp->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, pp->fd, 0);
	if (pp->map == MAP_FAILED) {
		/* MAP_LOCKED counts against RLIMIT_MEMLOCK: try without. */
		pp->map = mmap(NULL, pp->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, pp->fd, 0);
		if (pp->map == MAP_FAILED) {
			rc = -errno;
			UPMD_ERR(DRV, "%s: mmap of the packet rings (%zu KiB): %s", dev->name, pp->map_len / 1024,
				 strerror(-rc));
			goto err;
		}
	}
	if (bind(pp->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		rc = -errno;
		UPMD_ERR(DRV, "%s: bind to %s: %s", dev->name, p->iface, strerror(-rc));
		goto err;
	}
	if (p->qpairs > 1) {
		/* Spread flows over the queue pairs by hash. */
		int fanout = (int)((dev->port_id + 1) & 0xffff) | (PACKET_FANOUT_HASH << 16);

		if (setsockopt(pp->fd, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout)) < 0) {
			rc = -errno;
			UPMD_ERR(DRV, "%s: PACKET_FANOUT: %s", dev->name, strerror(-rc));
			goto err;
		}
	}
	pp->rx.ring = (struct pk_ring){ pp->map, p->frames, 0 };
	pp->tx.ring = (struct pk_ring){ pp->map + (size_t)p->frames * FRAME_SIZE, p->frames, 0 };
	pp->rx.fd = pp->tx.fd = pp->fd;
	pp->rx.port = pp->tx.port = dev->port_id;
	return 0;
err:
	pair_close(pp);
	return rc;
}

static int pk_rxq_setup(struct upmd_eth_dev *dev, uint16_t q, uint16_t nb_desc, int socket_id,
			struct upmd_mempool *mp, void **out)
{
	struct pk_priv *p = dev->priv;
	int rc;

	(void)nb_desc;
	(void)socket_id;
	rc = pair_open(dev, q);
	if (rc < 0)
		return rc;
	p->pair[q].rx.mp = mp;
	p->pair[q].rx_used = true;
	*out = &p->pair[q].rx;
	return 0;
}

static int pk_txq_setup(struct upmd_eth_dev *dev, uint16_t q, uint16_t nb_desc, int socket_id, void **out)
{
	struct pk_priv *p = dev->priv;
	int rc;

	(void)nb_desc;
	(void)socket_id;
	rc = pair_open(dev, q);
	if (rc < 0)
		return rc;
	p->pair[q].tx.mtu_frame = (uint16_t)(dev->mtu + UPMD_ETHER_HDR_LEN + 4);	/* room for a VLAN tag */
	p->pair[q].tx_used = true;
	*out = &p->pair[q].tx;
	return 0;
}

static void pk_queue_release(struct upmd_eth_dev *dev, void *queue)
{
	struct pk_priv *p = dev->priv;
	unsigned q;

	for (q = 0; q < MAX_QUEUES; q++) {
		struct pk_pair *pp = &p->pair[q];

		if (queue == &pp->rx)
			pp->rx_used = false;
		else if (queue == &pp->tx)
			pp->tx_used = false;
		else
			continue;
		if (!pp->rx_used && !pp->tx_used && pp->fd >= 0)
			pair_close(pp);
	}
}

static int pk_start(struct upmd_eth_dev *dev)
{
	struct pk_priv *p = dev->priv;
	short flags = 0;
	int rc = iface_flags(p, &flags);

	if (rc == 0 && !(flags & IFF_UP))
		UPMD_WARN(DRV, "%s: interface %s is down: nothing will pass until 'ip link set %s up'", dev->name,
			  p->iface, p->iface);
	return 0;
}

static int pk_stop(struct upmd_eth_dev *dev)
{
	(void)dev;
	return 0;
}

static void pk_close(struct upmd_eth_dev *dev)
{
	struct pk_priv *p = dev->priv;
	unsigned q;

	for (q = 0; q < MAX_QUEUES; q++)
		if (p->pair[q].fd >= 0)
			pair_close(&p->pair[q]);
	if (p->ctl >= 0)
		close(p->ctl);
	p->ctl = -1;
}

static int pk_link(struct upmd_eth_dev *dev, struct upmd_eth_link *link)
{
	short flags = 0;

	if (iface_flags(dev->priv, &flags) == 0)
		link->up = (flags & IFF_UP) && (flags & IFF_RUNNING);
	link->full_duplex = 1;
	link->speed_mbps = link->up ? 10000 : 0;
	return 0;
}

static int pk_promisc(struct upmd_eth_dev *dev, bool on)
{
	struct pk_priv *p = dev->priv;
	struct packet_mreq mr = { .mr_ifindex = p->ifindex, .mr_type = PACKET_MR_PROMISC };
	unsigned q;

	for (q = 0; q < MAX_QUEUES; q++)
		if (p->pair[q].fd >= 0 &&
		    setsockopt(p->pair[q].fd, SOL_PACKET, on ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mr,
			       sizeof(mr)) < 0 && on)
			return -errno;
	return 0;
}

static int pk_stats_get(struct upmd_eth_dev *dev, struct upmd_eth_stats *s)
{
	struct pk_priv *p = dev->priv;
	unsigned q;

	upmd_eth_queue_stats_get(dev, s);
	/* Frames the kernel dropped because our ring was full (the counter
	 * clears on read: keep a running total in the queue's missed). */
	for (q = 0; q < dev->nb_rxq; q++) {
		struct tpacket_stats ks;
		socklen_t len = sizeof(ks);

		if (p->pair[q].fd >= 0 && getsockopt(p->pair[q].fd, SOL_PACKET, PACKET_STATISTICS, &ks, &len) == 0) {
			p->pair[q].rx.st.missed += ks.tp_drops;
			s->imissed += ks.tp_drops;
		}
	}
	return 0;
}

static int pk_stats_reset(struct upmd_eth_dev *dev)
{
	struct pk_priv *p = dev->priv;
	unsigned q;

	for (q = 0; q < MAX_QUEUES; q++) {
		struct tpacket_stats ks;
		socklen_t len = sizeof(ks);

		memset(&p->pair[q].rx.st, 0, sizeof(p->pair[q].rx.st));
		memset(&p->pair[q].tx.st, 0, sizeof(p->pair[q].tx.st));
		if (p->pair[q].fd >= 0)
			getsockopt(p->pair[q].fd, SOL_PACKET, PACKET_STATISTICS, &ks, &len);
	}
	return 0;
}

static const struct upmd_eth_dev_ops pk_ops = {
	.infos_get = pk_infos,
	.rx_queue_setup = pk_rxq_setup,
	.tx_queue_setup = pk_txq_setup,
	.rx_queue_release = pk_queue_release,
	.tx_queue_release = pk_queue_release,
	.start = pk_start,
	.stop = pk_stop,
	.close = pk_close,
	.link_update = pk_link,
	.promiscuous_set = pk_promisc,
	.stats_get = pk_stats_get,
	.stats_reset = pk_stats_reset,
};

static int pk_probe(const char *name, const char *args)
{
	static const char *const known[] = { "iface", "qpairs", "frames", NULL };
	struct upmd_eth_dev *dev;
	struct pk_priv *p;
	struct upmd_kvargs kv;
	struct ifreq ifr = { 0 };
	const char *iface;
	unsigned qpairs, frames, q;
	int rc, ifindex, ctl;

	rc = upmd_kvargs_parse(name, args, known, &kv);
	if (rc < 0)
		return rc;
	iface = upmd_kvargs_get(&kv, "iface");
	rc = upmd_kvargs_get_uint(&kv, name, "qpairs", 1, MAX_QUEUES, 1, &qpairs);
	if (rc == 0)
		rc = upmd_kvargs_get_uint(&kv, name, "frames", 16, 65536, DEFAULT_FRAMES, &frames);
	if (rc == 0 && (!iface || !*iface || strlen(iface) >= IFNAMSIZ)) {
		UPMD_ERR(DRV, "%s: give the interface: --vdev %s,iface=eth0", name, name);
		rc = -EINVAL;
	}
	if (rc == 0 && frames % 2) {
		UPMD_ERR(DRV, "%s: frames=%u: give an even number", name, frames);
		rc = -EINVAL;
	}
	if (rc < 0)
		goto out;
	ifindex = (int)if_nametoindex(iface);
	if (!ifindex) {
		UPMD_ERR(DRV, "%s: no network interface '%s' ('ip link' lists them)", name, iface);
		rc = -ENODEV;
		goto out;
	}
	ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl < 0) {
		rc = -errno;
		goto out;
	}
	rc = upmd_eth_dev_allocate(name, DRV, &pk_ops, pk_rx, pk_tx, sizeof(*p), UPMD_SOCKET_ID_ANY, &dev);
	if (rc < 0) {
		close(ctl);
		goto out;
	}
	p = dev->priv;
	snprintf(p->iface, sizeof(p->iface), "%s", iface);
	p->ifindex = ifindex;
	p->qpairs = qpairs;
	p->frames = frames;
	p->ctl = ctl;
	for (q = 0; q < MAX_QUEUES; q++)
		p->pair[q].fd = -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (ioctl(ctl, SIOCGIFHWADDR, &ifr) == 0)
		memcpy(dev->mac.addr_bytes, ifr.ifr_hwaddr.sa_data, UPMD_ETHER_ADDR_LEN);
	if (ioctl(ctl, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		dev->mtu = (uint32_t)ifr.ifr_mtu;
	UPMD_INFO(DRV, "%s: port %u on %s (ifindex %d), %u queue pair(s) of %u frames", name, dev->port_id, iface,
		  ifindex, qpairs, frames);
out:
	upmd_kvargs_free(&kv);
	return rc;
}

static void pk_remove(const char *name)
{
	uint16_t port;

	if (upmd_eth_dev_get_port_by_name(name, &port) == 0)
		upmd_eth_dev_destroy(upmd_eth_dev_get(port));
}

static struct upmd_vdev_driver pk_driver = {
	.name = DRV,
	.usage = "iface=NAME (a Linux interface), qpairs=N (1..16), frames=N (per ring, even)",
	.probe = pk_probe,
	.remove = pk_remove,
};

UPMD_VDEV_REGISTER_DRIVER(pk_driver)
