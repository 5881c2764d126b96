/* net_null: a port whose RX hands out fresh packets from the queue's mempool and whose TX frees what it is given (a benchmark peer). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>
#include <upmd/vdev.h>

#define DRV "net_null"
#define MAX_QUEUES 16
#define DEFAULT_SIZE 64

struct null_queue {
	struct upmd_eth_qstats st;	/* first: written on every burst */
	struct upmd_mempool *mp;	/* RX only */
	uint32_t pkt_size;
	uint16_t port;
	bool copy;			/* RX writes a frame, TX reads it (as DPDK's copy=1) */
	struct upmd_ether_hdr hdr;	/* what copy mode writes */
	uint8_t *sink;			/* where copy mode's TX reads to */
} __upmd_cache_aligned;

struct null_priv {
	uint32_t pkt_size;
	bool copy;
	uint8_t frame[UPMD_MBUF_DEFAULT_DATAROOM];	/* copy mode's TX sink */
};

/*
 * RX: n mbufs straight from the pool, each a packet of pkt_size bytes.
 * Without copy the bytes are whatever the buffer held (as DPDK's net_null:
 * a peer to measure the forwarding path, not a traffic source); with copy
 * each gets an Ethernet header and zeros.
 */
static uint16_t null_rx(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct null_queue *q = queue;
	uint16_t i;

	if (upmd_unlikely(upmd_pktmbuf_alloc_bulk(q->mp, pkts, n) < 0)) {
		q->st.nombuf++;
		return 0;
	}
	for (i = 0; i < n; i++) {
		struct upmd_mbuf *m = pkts[i];

		m->data_len = (uint16_t)q->pkt_size;
		m->pkt_len = q->pkt_size;
		m->port = q->port;
		if (q->copy) {
			char *p = (char *)m->buf_addr + m->data_off;

			memcpy(p, &q->hdr, sizeof(q->hdr));
			memset(p + sizeof(q->hdr), 0, q->pkt_size - sizeof(q->hdr));
		}
	}
	q->st.packets += n;
	q->st.bytes += (uint64_t)n * q->pkt_size;
	return n;
}

static uint16_t null_tx(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct null_queue *q = queue;
	uint64_t bytes = 0;
	uint16_t i;

	for (i = 0; i < n; i++) {
		bytes += pkts[i]->pkt_len;
		/* Copy mode reads each packet as a device would. */
		if (q->copy) {
			uint32_t len = UPMD_MIN(pkts[i]->pkt_len, (uint32_t)UPMD_MBUF_DEFAULT_DATAROOM);
			const void *p = upmd_pktmbuf_read(pkts[i], 0, len, q->sink);

			if (p && p != q->sink)
				memcpy(q->sink, p, len);
		}
	}
	upmd_pktmbuf_free_bulk(pkts, n);
	q->st.packets += n;
	q->st.bytes += bytes;
	return n;
}

static void null_infos(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info)
{
	(void)dev;
	info->max_rx_queues = MAX_QUEUES;
	info->max_tx_queues = MAX_QUEUES;
	info->rx_desc_min = 1;
	info->rx_desc_max = 65535;
	info->tx_desc_min = 1;
	info->tx_desc_max = 65535;
	info->max_mtu = 9000;
	info->max_rx_pktlen = 9000 + UPMD_ETHER_HDR_LEN;
	info->tx_offload_capa = UPMD_ETH_TX_OFFLOAD_MULTI_SEGS;
	info->speed_capa_mbps = 10000;
}

static struct null_queue *queue_new(struct upmd_eth_dev *dev, int socket_id)
{
	struct null_priv *priv = dev->priv;
	struct null_queue *q;

	(void)socket_id;
	if (posix_memalign((void **)&q, UPMD_CACHE_LINE_SIZE, sizeof(*q)))
		return NULL;
	memset(q, 0, sizeof(*q));
	q->pkt_size = priv->pkt_size;
	q->copy = priv->copy;
	q->sink = priv->frame;
	q->port = dev->port_id;
	memset(&q->hdr.dst_addr, 0xff, sizeof(q->hdr.dst_addr));
	q->hdr.src_addr = dev->mac;
	q->hdr.ether_type = __builtin_bswap16(UPMD_ETHER_TYPE_IPV4);
	return q;
}

static int null_rxq_setup(struct upmd_eth_dev *dev, uint16_t qid, uint16_t nb_desc, int socket_id,
			  struct upmd_mempool *mp, void **out)
{
	struct null_priv *priv = dev->priv;
	struct null_queue *q;

	(void)qid;
	(void)nb_desc;
	if (upmd_pktmbuf_data_room_size(mp) < UPMD_PKTMBUF_HEADROOM + priv->pkt_size) {
		UPMD_ERR(DRV, "%s: mbufs of pool %s hold %u bytes after the headroom; size=%u needs more",
			 dev->name, mp->name, upmd_pktmbuf_data_room_size(mp) - UPMD_PKTMBUF_HEADROOM, priv->pkt_size);
		return -EINVAL;
	}
	q = queue_new(dev, socket_id);
	if (!q)
		return -ENOMEM;
	q->mp = mp;
	*out = q;
	return 0;
}

static int null_txq_setup(struct upmd_eth_dev *dev, uint16_t qid, uint16_t nb_desc, int socket_id, void **out)
{
	struct null_queue *q;

	(void)qid;
	(void)nb_desc;
	q = queue_new(dev, socket_id);
	if (!q)
		return -ENOMEM;
	*out = q;
	return 0;
}

static void null_queue_release(struct upmd_eth_dev *dev, void *q)
{
	(void)dev;
	free(q);
}

static int null_start(struct upmd_eth_dev *dev)
{
	(void)dev;
	return 0;
}

static int null_stop(struct upmd_eth_dev *dev)
{
	(void)dev;
	return 0;
}

static int null_mac_set(struct upmd_eth_dev *dev, const struct upmd_ether_addr *mac)
{
	unsigned q;

	for (q = 0; q < dev->nb_rxq; q++)
		if (dev->rxq[q])
			((struct null_queue *)dev->rxq[q])->hdr.src_addr = *mac;
	return 0;
}



static const struct upmd_eth_dev_ops null_ops = {
	.infos_get = null_infos,
	.rx_queue_setup = null_rxq_setup,
	.tx_queue_setup = null_txq_setup,
	.rx_queue_release = null_queue_release,
	.tx_queue_release = null_queue_release,
	.start = null_start,
	.stop = null_stop,
	.mac_addr_set = null_mac_set,
	.stats_get = upmd_eth_queue_stats_get,
	.stats_reset = upmd_eth_queue_stats_reset,
};

static int null_probe(const char *name, const char *args)
{
	static const char *const known[] = { "size", "copy", NULL };
	struct upmd_eth_dev *dev;
	struct null_priv *priv;
	struct upmd_kvargs kv;
	unsigned size, copy;
	int rc;

	rc = upmd_kvargs_parse(name, args, known, &kv);
	if (rc < 0)
		return rc;
	rc = upmd_kvargs_get_uint(&kv, name, "size", UPMD_ETHER_HDR_LEN, UPMD_MBUF_DEFAULT_DATAROOM, DEFAULT_SIZE,
				  &size);
	if (rc == 0)
		rc = upmd_kvargs_get_uint(&kv, name, "copy", 0, 1, 0, &copy);
	upmd_kvargs_free(&kv);
	if (rc < 0)
		return rc;
	rc = upmd_eth_dev_allocate(name, DRV, &null_ops, null_rx, null_tx, sizeof(*priv), UPMD_SOCKET_ID_ANY, &dev);
	if (rc < 0)
		return rc;
	priv = dev->priv;
	priv->pkt_size = size;
	priv->copy = copy;
	/* A locally administered unicast address with the port id in it. */
	dev->mac = (struct upmd_ether_addr){ { 0x02, 0x00, 0x00, 0x00, 0x00, (uint8_t)dev->port_id } };
	return 0;
}

static void null_remove(const char *name)
{
	uint16_t port;

	if (upmd_eth_dev_get_port_by_name(name, &port) == 0)
		upmd_eth_dev_destroy(upmd_eth_dev_get(port));
}

static struct upmd_vdev_driver null_driver = {
	.name = DRV,
	.usage = "size=N (packet bytes, 14..2048, default 64), copy=0|1 (write and read the packets)",
	.probe = null_probe,
	.remove = null_remove,
};

UPMD_VDEV_REGISTER_DRIVER(null_driver)
