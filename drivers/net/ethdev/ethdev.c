/* ethdev: the port table, argument and state checks in front of each driver op, statistics by name, and the no-op bursts of stopped ports. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>

#define LOG "ethdev"

struct upmd_eth_fp_ops upmd_eth_fp_ops[UPMD_MAX_ETHPORTS];
static struct upmd_eth_dev *ports[UPMD_MAX_ETHPORTS];

/* ---- MAC addresses ---- */

void upmd_ether_format_addr(char *buf, size_t size, const struct upmd_ether_addr *a)
{
	const uint8_t *b = a->addr_bytes;

	snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

int upmd_ether_unformat_addr(const char *s, struct upmd_ether_addr *a)
{
	struct upmd_ether_addr r;
	unsigned i;

	if (!s || !a)
		return -EINVAL;
	for (i = 0; i < UPMD_ETHER_ADDR_LEN; i++) {
		unsigned v = 0, k;

		for (k = 0; k < 2; k++, s++) {
			char c = *s;

			if (c >= '0' && c <= '9')
				v = v * 16 + (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (unsigned)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v = v * 16 + (unsigned)(c - 'A' + 10);
			else
				return -EINVAL;
		}
		r.addr_bytes[i] = (uint8_t)v;
		if (i < UPMD_ETHER_ADDR_LEN - 1) {
			if (*s != ':' && *s != '-')
				return -EINVAL;
			s++;
		}
	}
	if (*s)
		return -EINVAL;
	*a = r;
	return 0;
}

/* ---- the bursts of a port that is not running ---- */

static uint16_t burst_stopped(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	(void)queue;
	(void)pkts;
	(void)n;
	return 0;
}

/* Data path off: bursts return 0. The driver's stop follows, so whatever an
 * lcore still runs in the old burst must finish first: that is the
 * application's part, as in DPDK (stop forwarding, then stop the port). */
static void fp_off(uint16_t port)
{
	struct upmd_eth_fp_ops *fp = &upmd_eth_fp_ops[port];

	__atomic_store_n(&fp->nb_rxq, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&fp->nb_txq, 0, __ATOMIC_RELEASE);
	fp->rx_burst = burst_stopped;
	fp->tx_burst = burst_stopped;
}

static void fp_on(struct upmd_eth_dev *dev)
{
	struct upmd_eth_fp_ops *fp = &upmd_eth_fp_ops[dev->port_id];

	memcpy(fp->rxq, dev->rxq, sizeof(fp->rxq));
	memcpy(fp->txq, dev->txq, sizeof(fp->txq));
	fp->rx_burst = dev->rx_burst;
	fp->tx_burst = dev->tx_burst;
	/* Release: an lcore that sees the counts sees the queues and bursts. */
	__atomic_store_n(&fp->nb_rxq, dev->nb_rxq, __ATOMIC_RELEASE);
	__atomic_store_n(&fp->nb_txq, dev->nb_txq, __ATOMIC_RELEASE);
}

/* ---- the port table ---- */

struct upmd_eth_dev *upmd_eth_dev_get(uint16_t port)
{
	return port < UPMD_MAX_ETHPORTS ? ports[port] : NULL;
}

static struct upmd_eth_dev *dev_of(uint16_t port)
{
	struct upmd_eth_dev *dev = upmd_eth_dev_get(port);

	if (!dev)
		UPMD_ERR(LOG, "port %u does not exist (%u port(s) in use; see upmd_eth_dev_count_avail())", port,
			 upmd_eth_dev_count_avail());
	return dev;
}

unsigned upmd_eth_dev_count_avail(void)
{
	unsigned i, n = 0;

	for (i = 0; i < UPMD_MAX_ETHPORTS; i++)
		n += ports[i] != NULL;
	return n;
}

bool upmd_eth_dev_is_valid_port(uint16_t port)
{
	return upmd_eth_dev_get(port) != NULL;
}

uint16_t upmd_eth_find_next(uint16_t port)
{
	while (port < UPMD_MAX_ETHPORTS && !ports[port])
		port++;
	return port;
}

int upmd_eth_dev_get_port_by_name(const char *name, uint16_t *port)
{
	unsigned i;

	if (!name || !port)
		return -EINVAL;
	for (i = 0; i < UPMD_MAX_ETHPORTS; i++)
		if (ports[i] && !strcmp(ports[i]->name, name)) {
			*port = (uint16_t)i;
			return 0;
		}
	return -ENODEV;
}

const char *upmd_eth_dev_name(uint16_t port)
{
	struct upmd_eth_dev *dev = upmd_eth_dev_get(port);

	return dev ? dev->name : NULL;
}

int upmd_eth_dev_socket_id(uint16_t port)
{
	struct upmd_eth_dev *dev = upmd_eth_dev_get(port);

	return dev ? dev->numa_node : UPMD_SOCKET_ID_ANY;
}

int upmd_eth_dev_allocate(const char *name, const char *driver_name, const struct upmd_eth_dev_ops *ops,
			  upmd_eth_burst_t rx_burst, upmd_eth_burst_t tx_burst, size_t priv_size, int numa_node,
			  struct upmd_eth_dev **out)
{
	struct upmd_eth_dev *dev;
	uint16_t p;
	unsigned i;

	if (!name || !*name || strlen(name) >= UPMD_ETH_NAME_MAX || !ops || !ops->infos_get || !rx_burst ||
	    !tx_burst || !out)
		return -EINVAL;
	if (upmd_eth_dev_get_port_by_name(name, &p) == 0) {
		UPMD_ERR(LOG, "a port called %s exists already (port %u)", name, p);
		return -EEXIST;
	}
	for (i = 0; i < UPMD_MAX_ETHPORTS && ports[i]; i++)
		;
	if (i == UPMD_MAX_ETHPORTS) {
		UPMD_ERR(LOG, "%s: all %d ports are in use", name, UPMD_MAX_ETHPORTS);
		return -ENOSPC;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	if (priv_size) {
		dev->priv = calloc(1, priv_size);
		if (!dev->priv) {
			free(dev);
			return -ENOMEM;
		}
	}
	dev->port_id = (uint16_t)i;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->driver_name = driver_name ? driver_name : name;
	dev->ops = ops;
	dev->rx_burst = rx_burst;
	dev->tx_burst = tx_burst;
	dev->numa_node = numa_node;
	dev->mtu = UPMD_ETHER_MTU;
	dev->promisc = true;	/* until asked otherwise, as a port without filters is */
	fp_off(dev->port_id);
	ports[i] = dev;
	*out = dev;
	return 0;
}

static void queues_release(struct upmd_eth_dev *dev)
{
	unsigned q;

	for (q = 0; q < UPMD_MAX_QUEUES_PER_PORT; q++) {
		if (dev->rxq[q] && dev->ops->rx_queue_release)
			dev->ops->rx_queue_release(dev, dev->rxq[q]);
		if (dev->txq[q] && dev->ops->tx_queue_release)
			dev->ops->tx_queue_release(dev, dev->txq[q]);
		dev->rxq[q] = dev->txq[q] = NULL;
		dev->rx_mp[q] = NULL;
	}
}

void upmd_eth_dev_destroy(struct upmd_eth_dev *dev)
{
	if (!dev)
		return;
	if (dev->started)
		upmd_eth_dev_stop(dev->port_id);
	queues_release(dev);
	if (dev->ops->close)
		dev->ops->close(dev);
	fp_off(dev->port_id);
	ports[dev->port_id] = NULL;
	free(dev->priv);
	free(dev);
}

/* ---- configuration ---- */

static void infos(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->numa_node = dev->numa_node;
	info->min_mtu = 68;
	info->max_mtu = UPMD_ETHER_MTU;
	info->max_rx_pktlen = UPMD_ETHER_MTU + UPMD_ETHER_HDR_LEN;
	dev->ops->infos_get(dev, info);
	info->driver_name = dev->driver_name;
	info->nb_rx_queues = dev->nb_rxq;
	info->nb_tx_queues = dev->nb_txq;
}

int upmd_eth_dev_info_get(uint16_t port, struct upmd_eth_dev_info *info)
{
	struct upmd_eth_dev *dev = dev_of(port);

	if (!dev)
		return -ENODEV;
	if (!info)
		return -EINVAL;
	infos(dev, info);
	return 0;
}

static bool conf_zero_tail(const struct upmd_eth_conf *c)
{
	const uint8_t *p = (const uint8_t *)c + sizeof(*c), *end = (const uint8_t *)c + c->size;

	for (; p < end; p++)
		if (*p)
			return false;
	return true;
}

int upmd_eth_dev_configure(uint16_t port, uint16_t nb_rxq, uint16_t nb_txq, const struct upmd_eth_conf *conf)
{
	struct upmd_eth_dev *dev = dev_of(port);
	struct upmd_eth_conf c = { .size = sizeof(c) };
	struct upmd_eth_dev_info info;
	uint64_t bad;
	unsigned i;
	int rc;

	if (!dev)
		return -ENODEV;
	if (dev->started) {
		UPMD_ERR(LOG, "%s: configure needs a stopped port (upmd_eth_dev_stop() first)", dev->name);
		return -EBUSY;
	}
	if (conf) {
		/* A caller built against an older header passes a shorter
		 * struct; a newer one a longer struct whose new part must be 0. */
		if (conf->size < offsetof(struct upmd_eth_conf, reserved) || (conf->size > sizeof(c) && !conf_zero_tail(conf))) {
			UPMD_ERR(LOG, "%s: struct upmd_eth_conf size %u is wrong (set .size = sizeof(struct upmd_eth_conf))",
				 dev->name, conf->size);
			return -EINVAL;
		}
		memcpy(&c, conf, UPMD_MIN(conf->size, (uint32_t)sizeof(c)));
		c.size = sizeof(c);
		if (c.flags || c.reserved0) {
			UPMD_ERR(LOG, "%s: upmd_eth_conf flags 0x%x: no flags are defined, they must be 0", dev->name, c.flags);
			return -EINVAL;
		}
		for (i = 0; i < UPMD_DIM(c.reserved); i++)
			if (c.reserved[i]) {
				UPMD_ERR(LOG, "%s: upmd_eth_conf reserved fields must be 0", dev->name);
				return -EINVAL;
			}
	}
	infos(dev, &info);
	if (nb_rxq == 0 || nb_txq == 0 || nb_rxq > info.max_rx_queues || nb_txq > info.max_tx_queues ||
	    nb_rxq > UPMD_MAX_QUEUES_PER_PORT || nb_txq > UPMD_MAX_QUEUES_PER_PORT) {
		UPMD_ERR(LOG, "%s: %u RX and %u TX queues asked; the port has 1..%u RX and 1..%u TX", dev->name, nb_rxq,
			 nb_txq, UPMD_MIN(info.max_rx_queues, UPMD_MAX_QUEUES_PER_PORT),
			 UPMD_MIN(info.max_tx_queues, UPMD_MAX_QUEUES_PER_PORT));
		return -EINVAL;
	}
	bad = c.rx_offloads & ~info.rx_offload_capa;
	if (bad) {
		UPMD_ERR(LOG, "%s: RX offloads 0x%" PRIx64 " are not offered (the port offers 0x%" PRIx64 ")", dev->name,
			 bad, info.rx_offload_capa);
		return -EINVAL;
	}
	bad = c.tx_offloads & ~info.tx_offload_capa;
	if (bad) {
		UPMD_ERR(LOG, "%s: TX offloads 0x%" PRIx64 " are not offered (the port offers 0x%" PRIx64 ")", dev->name,
			 bad, info.tx_offload_capa);
		return -EINVAL;
	}
	if (!c.mtu)
		c.mtu = UPMD_ETHER_MTU;
	if (c.mtu < info.min_mtu || c.mtu > info.max_mtu) {
		UPMD_ERR(LOG, "%s: MTU %u is outside the port's %u..%u", dev->name, c.mtu, info.min_mtu, info.max_mtu);
		return -EINVAL;
	}
	queues_release(dev);
	dev->nb_rxq = nb_rxq;
	dev->nb_txq = nb_txq;
	dev->conf = c;
	dev->mtu = c.mtu;
	dev->configured = true;
	if (dev->ops->configure) {
		rc = dev->ops->configure(dev);
		if (rc < 0) {
			dev->configured = false;
			UPMD_ERR(LOG, "%s: the driver refused the configuration: %s", dev->name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int queue_check(struct upmd_eth_dev *dev, const char *kind, uint16_t q, uint16_t nb_q, uint16_t *nb_desc,
		       uint16_t min, uint16_t max)
{
	if (!dev->configured) {
		UPMD_ERR(LOG, "%s: set up %s queues after upmd_eth_dev_configure()", dev->name, kind);
		return -EINVAL;
	}
	if (dev->started) {
		UPMD_ERR(LOG, "%s: queue setup needs a stopped port", dev->name);
		return -EBUSY;
	}
	if (q >= nb_q) {
		UPMD_ERR(LOG, "%s: %s queue %u: the port was configured with %u", dev->name, kind, q, nb_q);
		return -EINVAL;
	}
	if (*nb_desc == 0)
		*nb_desc = UPMD_MAX(min, UPMD_MIN(max, (uint16_t)1024));
	if (*nb_desc < min || *nb_desc > max) {
		UPMD_ERR(LOG, "%s: %s queue %u: %u descriptors; the port takes %u..%u", dev->name, kind, q, *nb_desc,
			 min, max);
		return -EINVAL;
	}
	return 0;
}

int upmd_eth_rx_queue_setup(uint16_t port, uint16_t q, uint16_t nb_desc, int socket_id, struct upmd_mempool *mp)
{
	struct upmd_eth_dev *dev = dev_of(port);
	struct upmd_eth_dev_info info;
	void *queue = NULL;
	int rc;

	if (!dev)
		return -ENODEV;
	infos(dev, &info);
	rc = queue_check(dev, "RX", q, dev->nb_rxq, &nb_desc, info.rx_desc_min, info.rx_desc_max);
	if (rc < 0)
		return rc;
	if (!mp) {
		UPMD_ERR(LOG, "%s: RX queue %u needs a mempool of mbufs (upmd_pktmbuf_pool_create())", dev->name, q);
		return -EINVAL;
	}
	if (!dev->ops->rx_queue_setup)
		return -ENOTSUP;
	if (dev->rxq[q] && dev->ops->rx_queue_release)
		dev->ops->rx_queue_release(dev, dev->rxq[q]);
	dev->rxq[q] = NULL;
	rc = dev->ops->rx_queue_setup(dev, q, nb_desc, socket_id, mp, &queue);
	if (rc < 0)
		return rc;
	dev->rxq[q] = queue;
	dev->rx_mp[q] = mp;
	return 0;
}

int upmd_eth_tx_queue_setup(uint16_t port, uint16_t q, uint16_t nb_desc, int socket_id)
{
	struct upmd_eth_dev *dev = dev_of(port);
	struct upmd_eth_dev_info info;
	void *queue = NULL;
	int rc;

	if (!dev)
		return -ENODEV;
	infos(dev, &info);
	rc = queue_check(dev, "TX", q, dev->nb_txq, &nb_desc, info.tx_desc_min, info.tx_desc_max);
	if (rc < 0)
		return rc;
	if (!dev->ops->tx_queue_setup)
		return -ENOTSUP;
	if (dev->txq[q] && dev->ops->tx_queue_release)
		dev->ops->tx_queue_release(dev, dev->txq[q]);
	dev->txq[q] = NULL;
	rc = dev->ops->tx_queue_setup(dev, q, nb_desc, socket_id, &queue);
	if (rc < 0)
		return rc;
	dev->txq[q] = queue;
	return 0;
}

/* ---- start / stop / close ---- */

int upmd_eth_dev_start(uint16_t port)
{
	struct upmd_eth_dev *dev = dev_of(port);
	unsigned q;
	int rc;

	if (!dev)
		return -ENODEV;
	if (dev->started)
		return 0;
	if (!dev->configured) {
		UPMD_ERR(LOG, "%s: configure the port (upmd_eth_dev_configure()) before starting it", dev->name);
		return -EINVAL;
	}
	for (q = 0; q < dev->nb_rxq; q++)
		if (!dev->rxq[q]) {
			UPMD_ERR(LOG, "%s: RX queue %u is not set up (upmd_eth_rx_queue_setup())", dev->name, q);
			return -EINVAL;
		}
	for (q = 0; q < dev->nb_txq; q++)
		if (!dev->txq[q]) {
			UPMD_ERR(LOG, "%s: TX queue %u is not set up (upmd_eth_tx_queue_setup())", dev->name, q);
			return -EINVAL;
		}
	rc = dev->ops->start ? dev->ops->start(dev) : 0;
	if (rc < 0) {
		UPMD_ERR(LOG, "%s: start failed: %s", dev->name, strerror(-rc));
		return rc;
	}
	dev->started = true;
	fp_on(dev);
	return 0;
}

int upmd_eth_dev_stop(uint16_t port)
{
	struct upmd_eth_dev *dev = dev_of(port);
	int rc;

	if (!dev)
		return -ENODEV;
	if (!dev->started)
		return 0;
	fp_off(port);
	rc = dev->ops->stop ? dev->ops->stop(dev) : 0;
	dev->started = false;
	if (rc < 0)
		UPMD_ERR(LOG, "%s: stop failed: %s", dev->name, strerror(-rc));
	return rc;
}

bool upmd_eth_dev_is_started(uint16_t port)
{
	struct upmd_eth_dev *dev = upmd_eth_dev_get(port);

	return dev && dev->started;
}

int upmd_eth_dev_close(uint16_t port)
{
	struct upmd_eth_dev *dev = dev_of(port);

	if (!dev)
		return -ENODEV;
	upmd_eth_dev_destroy(dev);
	return 0;
}

/* ---- link, MAC, filters, MTU ---- */

int upmd_eth_link_get(uint16_t port, struct upmd_eth_link *link)
{
	struct upmd_eth_dev *dev = dev_of(port);
	struct upmd_eth_dev_info info;

	if (!dev)
		return -ENODEV;
	if (!link)
		return -EINVAL;
	memset(link, 0, sizeof(*link));
	if (dev->ops->link_update)
		return dev->ops->link_update(dev, link);
	infos(dev, &info);
	link->up = 1;
	link->full_duplex = 1;
	link->speed_mbps = info.speed_capa_mbps;
	return 0;
}

int upmd_eth_macaddr_get(uint16_t port, struct upmd_ether_addr *mac)
{
	struct upmd_eth_dev *dev = dev_of(port);

	if (!dev)
		return -ENODEV;
	if (!mac)
		return -EINVAL;
	*mac = dev->mac;
	return 0;
}

int upmd_eth_dev_default_mac_addr_set(uint16_t port, const struct upmd_ether_addr *mac)
{
	static const struct upmd_ether_addr zero;
	struct upmd_eth_dev *dev = dev_of(port);
	char s[UPMD_ETHER_ADDR_FMT_SIZE];
	int rc;

	if (!dev)
		return -ENODEV;
	if (!mac)
		return -EINVAL;
	if (upmd_is_multicast_ether_addr(mac) || !memcmp(mac, &zero, sizeof(zero))) {
		upmd_ether_format_addr(s, sizeof(s), mac);
		UPMD_ERR(LOG, "%s: %s cannot be a port's address (multicast or zero)", dev->name, s);
		return -EINVAL;
	}
	if (!dev->ops->mac_addr_set)
		return -ENOTSUP;
	rc = dev->ops->mac_addr_set(dev, mac);
	if (rc == 0)
		dev->mac = *mac;
	return rc;
}

static int filter_set(uint16_t port, bool allmulti, bool on)
{
	struct upmd_eth_dev *dev = dev_of(port);
	int (*op)(struct upmd_eth_dev *, bool);
	int rc = 0;

	if (!dev)
		return -ENODEV;
	op = allmulti ? dev->ops->allmulticast_set : dev->ops->promiscuous_set;
	if (op)
		rc = op(dev, on);
	if (rc < 0)
		return rc;
	if (allmulti)
		dev->allmulti = on;
	else
		dev->promisc = on;
	return 0;
}

int upmd_eth_promiscuous_enable(uint16_t port)
{
	return filter_set(port, false, true);
}

int upmd_eth_promiscuous_disable(uint16_t port)
{
	return filter_set(port, false, false);
}

int upmd_eth_promiscuous_get(uint16_t port)
{
	struct upmd_eth_dev *dev = upmd_eth_dev_get(port);

	return dev ? dev->promisc : -ENODEV;
}

int upmd_eth_allmulticast_enable(uint16_t port)
{
	return filter_set(port, true, true);
}

int upmd_eth_allmulticast_disable(uint16_t port)
{
	return filter_set(port, true, false);
}

int upmd_eth_allmulticast_get(uint16_t port)
{
	struct upmd_eth_dev *dev = upmd_eth_dev_get(port);

	return dev ? dev->allmulti : -ENODEV;
}

int upmd_eth_dev_set_mtu(uint16_t port, uint32_t mtu)
{
	struct upmd_eth_dev *dev = dev_of(port);
	struct upmd_eth_dev_info info;
	int rc;

	if (!dev)
		return -ENODEV;
	infos(dev, &info);
	if (mtu < info.min_mtu || mtu > info.max_mtu) {
		UPMD_ERR(LOG, "%s: MTU %u is outside the port's %u..%u", dev->name, mtu, info.min_mtu, info.max_mtu);
		return -EINVAL;
	}
	rc = dev->ops->mtu_set ? dev->ops->mtu_set(dev, mtu) : 0;
	if (rc == 0)
		dev->mtu = mtu;
	return rc;
}

int upmd_eth_dev_get_mtu(uint16_t port, uint32_t *mtu)
{
	struct upmd_eth_dev *dev = dev_of(port);

	if (!dev)
		return -ENODEV;
	if (!mtu)
		return -EINVAL;
	*mtu = dev->mtu;
	return 0;
}

/* ---- statistics ---- */

void upmd_eth_qstats_sum(struct upmd_eth_stats *s, const struct upmd_eth_qstats *const *rxq, unsigned nb_rxq,
			 const struct upmd_eth_qstats *const *txq, unsigned nb_txq)
{
	unsigned q;

	for (q = 0; q < nb_rxq; q++) {
		const struct upmd_eth_qstats *r = rxq[q];
		uint64_t pk, by, er;

		if (!r)
			continue;
		pk = __atomic_load_n(&r->packets, __ATOMIC_RELAXED);
		by = __atomic_load_n(&r->bytes, __ATOMIC_RELAXED);
		er = __atomic_load_n(&r->errors, __ATOMIC_RELAXED);
		s->ipackets += pk;
		s->ibytes += by;
		s->ierrors += er;
		s->rx_nombuf += __atomic_load_n(&r->nombuf, __ATOMIC_RELAXED);
		s->imissed += __atomic_load_n(&r->missed, __ATOMIC_RELAXED);
		if (q < UPMD_MAX_QUEUES_PER_PORT) {
			s->q_ipackets[q] += pk;
			s->q_ibytes[q] += by;
			s->q_errors[q] += er;
		}
	}
	for (q = 0; q < nb_txq; q++) {
		const struct upmd_eth_qstats *t = txq[q];
		uint64_t pk, by;

		if (!t)
			continue;
		pk = __atomic_load_n(&t->packets, __ATOMIC_RELAXED);
		by = __atomic_load_n(&t->bytes, __ATOMIC_RELAXED);
		s->opackets += pk;
		s->obytes += by;
		s->oerrors += __atomic_load_n(&t->errors, __ATOMIC_RELAXED);
		if (q < UPMD_MAX_QUEUES_PER_PORT) {
			s->q_opackets[q] += pk;
			s->q_obytes[q] += by;
		}
	}
}

int upmd_eth_queue_stats_get(struct upmd_eth_dev *dev, struct upmd_eth_stats *s)
{
	const struct upmd_eth_qstats *rx[UPMD_MAX_QUEUES_PER_PORT], *tx[UPMD_MAX_QUEUES_PER_PORT];
	unsigned q;

	for (q = 0; q < dev->nb_rxq; q++)
		rx[q] = dev->rxq[q];
	for (q = 0; q < dev->nb_txq; q++)
		tx[q] = dev->txq[q];
	upmd_eth_qstats_sum(s, rx, dev->nb_rxq, tx, dev->nb_txq);
	return 0;
}

int upmd_eth_queue_stats_reset(struct upmd_eth_dev *dev)
{
	unsigned q;

	for (q = 0; q < UPMD_MAX_QUEUES_PER_PORT; q++) {
		if (q < dev->nb_rxq && dev->rxq[q])
			memset(dev->rxq[q], 0, sizeof(struct upmd_eth_qstats));
		if (q < dev->nb_txq && dev->txq[q])
			memset(dev->txq[q], 0, sizeof(struct upmd_eth_qstats));
	}
	return 0;
}

int upmd_eth_stats_get(uint16_t port, struct upmd_eth_stats *stats)
{
	struct upmd_eth_dev *dev = dev_of(port);

	if (!dev)
		return -ENODEV;
	if (!stats)
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	return dev->ops->stats_get ? dev->ops->stats_get(dev, stats) : -ENOTSUP;
}

int upmd_eth_stats_reset(uint16_t port)
{
	struct upmd_eth_dev *dev = dev_of(port);

	if (!dev)
		return -ENODEV;
	return dev->ops->stats_reset ? dev->ops->stats_reset(dev) : -ENOTSUP;
}

/* The basic statistics under their xstats names, in this order. */
static unsigned basic_xstats(const struct upmd_eth_dev *dev, const struct upmd_eth_stats *s,
			     struct upmd_eth_xstat *xs, unsigned n)
{
	const struct {
		const char *name;
		uint64_t v;
	} tot[] = {
		{ "rx_good_packets", s->ipackets }, { "tx_good_packets", s->opackets },
		{ "rx_good_bytes", s->ibytes },	    { "tx_good_bytes", s->obytes },
		{ "rx_missed_errors", s->imissed }, { "rx_errors", s->ierrors },
		{ "tx_errors", s->oerrors },	    { "rx_mbuf_allocation_errors", s->rx_nombuf },
	};
	unsigned i, q, k = 0;

#define PUT(v, ...)                                                                     \
	do {                                                                            \
		if (k < n) {                                                            \
			snprintf(xs[k].name, sizeof(xs[k].name), __VA_ARGS__);          \
			xs[k].value = (v);                                              \
		}                                                                       \
		k++;                                                                    \
	} while (0)
	for (i = 0; i < UPMD_DIM(tot); i++)
		PUT(tot[i].v, "%s", tot[i].name);
	for (q = 0; q < dev->nb_rxq && q < UPMD_MAX_QUEUES_PER_PORT; q++) {
		PUT(s->q_ipackets[q], "rx_q%u_packets", q);
		PUT(s->q_ibytes[q], "rx_q%u_bytes", q);
		PUT(s->q_errors[q], "rx_q%u_errors", q);
	}
	for (q = 0; q < dev->nb_txq && q < UPMD_MAX_QUEUES_PER_PORT; q++) {
		PUT(s->q_opackets[q], "tx_q%u_packets", q);
		PUT(s->q_obytes[q], "tx_q%u_bytes", q);
	}
#undef PUT
	return k;
}

int upmd_eth_xstats_get(uint16_t port, struct upmd_eth_xstat *xs, unsigned n)
{
	struct upmd_eth_dev *dev = dev_of(port);
	struct upmd_eth_stats s;
	unsigned k;
	int rc, extra = 0;

	if (!dev)
		return -ENODEV;
	if (n && !xs)
		return -EINVAL;
	rc = upmd_eth_stats_get(port, &s);
	if (rc < 0)
		return rc;
	k = basic_xstats(dev, &s, xs, n);
	if (dev->ops->xstats_get) {
		extra = dev->ops->xstats_get(dev, k < n ? xs + k : NULL, k < n ? n - k : 0);
		if (extra < 0)
			return extra;
	}
	return (int)k + extra;
}

int upmd_eth_xstats_reset(uint16_t port)
{
	struct upmd_eth_dev *dev = dev_of(port);
	int rc;

	if (!dev)
		return -ENODEV;
	rc = upmd_eth_stats_reset(port);
	if (rc == 0 && dev->ops->xstats_reset)
		rc = dev->ops->xstats_reset(dev);
	return rc;
}
