/* net_ring: ports whose queues are upmd rings in memory, cross-connected in pairs (peer=NAME) or looped back to themselves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>
#include <upmd/ring.h>
#include <upmd/vdev.h>

#define DRV "net_ring"
#define MAX_QUEUES 16
#define DEFAULT_RING 1024

/*
 * A link joins two ports, side A (probed first) and side B: queue q of
 * A's TX feeds ab[q], which is queue q of B's RX, and ba[q] the other way.
 * A port with no peer is a link with itself (ab == ba): what it sends it
 * receives. Each ring has one producer (one TX queue, one lcore) and one
 * consumer (one RX queue), so the rings are single-producer and
 * single-consumer.
 */
struct link {
	char a[UPMD_ETH_NAME_MAX], b[UPMD_ETH_NAME_MAX];
	bool a_up, b_up;		/* probed and not removed */
	unsigned queues, ring_size;
	struct upmd_ring *ab[MAX_QUEUES], *ba[MAX_QUEUES];
	struct link *next;
};

static struct link *links;
static unsigned link_seq;

struct ring_queue {
	struct upmd_eth_qstats st;
	struct upmd_ring *r;
	uint16_t port;
} __upmd_cache_aligned;

struct ring_priv {
	struct link *link;
	bool side_b;
};

static uint16_t ring_rx(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct ring_queue *q = queue;
	unsigned got = upmd_ring_dequeue_burst(q->r, (void **)pkts, n, NULL), i;
	uint64_t bytes = 0;

	for (i = 0; i < got; i++) {
		pkts[i]->port = q->port;
		bytes += pkts[i]->pkt_len;
	}
	q->st.packets += got;
	q->st.bytes += bytes;
	return (uint16_t)got;
}

static uint16_t ring_tx(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct ring_queue *q = queue;
	unsigned sent = upmd_ring_enqueue_burst(q->r, (void *const *)pkts, n, NULL), i;
	uint64_t bytes = 0;

	for (i = 0; i < sent; i++)
		bytes += pkts[i]->pkt_len;
	q->st.packets += sent;
	q->st.bytes += bytes;
	q->st.errors += n - sent;	/* the ring was full: the caller keeps them */
	return (uint16_t)sent;
}

static void ring_infos(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info)
{
	struct ring_priv *p = dev->priv;

	info->max_rx_queues = (uint16_t)p->link->queues;
	info->max_tx_queues = (uint16_t)p->link->queues;
	info->rx_desc_min = info->tx_desc_min = 1;
	info->rx_desc_max = info->tx_desc_max = 65535;	/* the ring's size is the link's, whatever is asked */
	info->max_mtu = 9000;
	info->max_rx_pktlen = 9000 + UPMD_ETHER_HDR_LEN;
	info->rx_offload_capa = UPMD_ETH_RX_OFFLOAD_SCATTER;
	info->tx_offload_capa = UPMD_ETH_TX_OFFLOAD_MULTI_SEGS;
	info->speed_capa_mbps = 10000;
}

static int queue_new(struct upmd_eth_dev *dev, struct upmd_ring *r, void **out)
{
	struct ring_queue *q;

	if (posix_memalign((void **)&q, UPMD_CACHE_LINE_SIZE, sizeof(*q)))
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->r = r;
	q->port = dev->port_id;
	*out = q;
	return 0;
}

static int ring_rxq_setup(struct upmd_eth_dev *dev, uint16_t qid, uint16_t nb_desc, int socket_id,
			  struct upmd_mempool *mp, void **out)
{
	struct ring_priv *p = dev->priv;

	(void)nb_desc;
	(void)socket_id;
	(void)mp;	/* packets arrive in the peer's mbufs */
	return queue_new(dev, p->side_b ? p->link->ab[qid] : p->link->ba[qid], out);
}

static int ring_txq_setup(struct upmd_eth_dev *dev, uint16_t qid, uint16_t nb_desc, int socket_id, void **out)
{
	struct ring_priv *p = dev->priv;

	(void)nb_desc;
	(void)socket_id;
	return queue_new(dev, p->side_b ? p->link->ba[qid] : p->link->ab[qid], out);
}

static void ring_queue_release(struct upmd_eth_dev *dev, void *q)
{
	(void)dev;
	free(q);
}

static int ring_start(struct upmd_eth_dev *dev)
{
	(void)dev;
	return 0;
}

static int ring_stop(struct upmd_eth_dev *dev)
{
	(void)dev;
	return 0;
}

static int ring_link(struct upmd_eth_dev *dev, struct upmd_eth_link *l)
{
	struct ring_priv *p = dev->priv;

	l->up = p->side_b ? p->link->a_up : p->link->b_up;
	l->full_duplex = 1;
	l->speed_mbps = l->up ? 10000 : 0;
	return 0;
}

static int ring_mac_set(struct upmd_eth_dev *dev, const struct upmd_ether_addr *mac)
{
	(void)dev;
	(void)mac;
	return 0;
}



static void link_free(struct link *l);

/* The port goes: the last side of a link out frees its rings (and the
 * packets in them, back to their pools, which the application frees only
 * after closing its ports); so does a side A whose peer never came. */
static void ring_close(struct upmd_eth_dev *dev)
{
	struct ring_priv *p = dev->priv;
	struct link *l = p->link;

	if (p->side_b)
		l->b_up = false;
	else
		l->a_up = false;
	if (!strcmp(l->a, l->b))
		l->b_up = false;
	if (!l->a_up && !l->b_up)
		link_free(l);
}

static const struct upmd_eth_dev_ops ring_ops = {
	.close = ring_close,
	.infos_get = ring_infos,
	.rx_queue_setup = ring_rxq_setup,
	.tx_queue_setup = ring_txq_setup,
	.rx_queue_release = ring_queue_release,
	.tx_queue_release = ring_queue_release,
	.start = ring_start,
	.stop = ring_stop,
	.link_update = ring_link,
	.mac_addr_set = ring_mac_set,
	.stats_get = upmd_eth_queue_stats_get,
	.stats_reset = upmd_eth_queue_stats_reset,
};

/* Free a link's rings, and the packets still in them. */
static void link_free(struct link *l)
{
	struct link **pp;
	unsigned q;

	for (pp = &links; *pp && *pp != l; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = l->next;
	for (q = 0; q < MAX_QUEUES; q++) {
		struct upmd_ring *rs[2] = { l->ab[q], l->ba[q] == l->ab[q] ? NULL : l->ba[q] };

		for (unsigned k = 0; k < 2; k++) {
			struct upmd_mbuf *m[32];
			unsigned got;

			if (!rs[k])
				continue;
			while ((got = upmd_ring_dequeue_burst(rs[k], (void **)m, 32, NULL)) != 0)
				upmd_pktmbuf_free_bulk(m, got);
			upmd_ring_free(rs[k]);
		}
	}
	free(l);
}

static int link_new(const char *a, const char *b, unsigned queues, unsigned size, struct link **out)
{
	struct link *l = calloc(1, sizeof(*l));
	unsigned seq = link_seq++, q;
	char name[UPMD_RING_NAMESIZE];
	int rc;

	if (!l)
		return -ENOMEM;
	snprintf(l->a, sizeof(l->a), "%s", a);
	snprintf(l->b, sizeof(l->b), "%s", b);
	l->queues = queues;
	l->ring_size = size;
	l->next = links;
	links = l;
	for (q = 0; q < queues; q++) {
		snprintf(name, sizeof(name), "net_ring%u_q%u_ab", seq, q);
		rc = upmd_ring_create(name, size, UPMD_SOCKET_ID_ANY, UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ,
				      &l->ab[q]);
		if (rc < 0)
			goto err;
		if (!strcmp(a, b)) {
			l->ba[q] = l->ab[q];
			continue;
		}
		snprintf(name, sizeof(name), "net_ring%u_q%u_ba", seq, q);
		rc = upmd_ring_create(name, size, UPMD_SOCKET_ID_ANY, UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ,
				      &l->ba[q]);
		if (rc < 0)
			goto err;
	}
	*out = l;
	return 0;
err:
	link_free(l);
	return rc;
}

static int ring_probe(const char *name, const char *args)
{
	static const char *const known[] = { "peer", "queues", "size", NULL };
	struct upmd_eth_dev *dev;
	struct ring_priv *priv;
	struct upmd_kvargs kv;
	struct link *l;
	const char *peer;
	unsigned queues, size;
	bool side_b = false;
	int rc;

	rc = upmd_kvargs_parse(name, args, known, &kv);
	if (rc < 0)
		return rc;
	rc = upmd_kvargs_get_uint(&kv, name, "queues", 1, MAX_QUEUES, 1, &queues);
	if (rc == 0)
		rc = upmd_kvargs_get_uint(&kv, name, "size", 2, 1u << 20, DEFAULT_RING, &size);
	peer = upmd_kvargs_get(&kv, "peer");
	if (rc == 0 && !UPMD_IS_POW2(size)) {
		UPMD_ERR(DRV, "%s: size=%u: a ring's size is a power of two", name, size);
		rc = -EINVAL;
	}
	if (rc == 0 && peer && (!*peer || strlen(peer) >= UPMD_ETH_NAME_MAX)) {
		UPMD_ERR(DRV, "%s: peer= needs the name of another net_ring port", name);
		rc = -EINVAL;
	}
	if (rc < 0)
		goto out;
	if (!peer)
		peer = name;
	/* Side B of a link its peer made, or side A of a new one. */
	for (l = links; l; l = l->next)
		if (!strcmp(l->a, peer) && !strcmp(l->b, name) && strcmp(peer, name))
			break;
	if (l) {
		if (l->b_up) {
			UPMD_ERR(DRV, "%s: already joined to %s", name, peer);
			rc = -EEXIST;
			goto out;
		}
		if (l->queues != queues || l->ring_size != size) {
			UPMD_ERR(DRV, "%s: queues=%u,size=%u but its peer %s has queues=%u,size=%u: give both the same",
				 name, queues, size, peer, l->queues, l->ring_size);
			rc = -EINVAL;
			goto out;
		}
		side_b = true;
	} else {
		rc = link_new(name, peer, queues, size, &l);
		if (rc < 0)
			goto out;
	}
	rc = upmd_eth_dev_allocate(name, DRV, &ring_ops, ring_rx, ring_tx, sizeof(*priv), UPMD_SOCKET_ID_ANY, &dev);
	if (rc < 0) {
		if (!side_b)
			link_free(l);
		goto out;
	}
	priv = dev->priv;
	priv->link = l;
	priv->side_b = side_b;
	if (side_b)
		l->b_up = true;
	else
		l->a_up = true;
	if (!strcmp(l->a, l->b))
		l->b_up = true;
	dev->mac = (struct upmd_ether_addr){ { 0x02, 0x00, 0x00, 0x00, 0x01, (uint8_t)dev->port_id } };
out:
	upmd_kvargs_free(&kv);
	return rc;
}

static void ring_remove(const char *name)
{
	uint16_t port;

	/* An application may have closed the port already. */
	if (upmd_eth_dev_get_port_by_name(name, &port) == 0)
		upmd_eth_dev_destroy(upmd_eth_dev_get(port));
}

static struct upmd_vdev_driver ring_driver = {
	.name = DRV,
	.usage = "peer=NAME (cross-connect with that net_ring port; none: loop back), queues=N (1..16), size=N (ring slots, a power of two)",
	.probe = ring_probe,
	.remove = ring_remove,
};

UPMD_VDEV_REGISTER_DRIVER(ring_driver)
