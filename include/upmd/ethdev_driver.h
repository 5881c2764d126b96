/* The poll-mode driver's side of ethdev: the ops table a NIC driver fills, port allocation and release, queue statistics. */
#ifndef UPMD_ETHDEV_DRIVER_H
#define UPMD_ETHDEV_DRIVER_H

#include <upmd/ethdev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upmd_eth_dev;

/*
 * What a driver implements. ethdev checks ports, states and arguments
 * before calling, so an op sees only sane requests: queue ids below the
 * configured counts, descriptor counts inside the driver's limits, a
 * stopped port for setup and configure. Ops left NULL are -ENOTSUP,
 * except those marked optional, which ethdev handles itself.
 */
struct upmd_eth_dev_ops {
	void (*infos_get)(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info);
	/* optional: nb_rxq, nb_txq and conf are in dev already */
	int (*configure)(struct upmd_eth_dev *dev);
	/* Make queue @q; *out is what the burst functions get. */
	int (*rx_queue_setup)(struct upmd_eth_dev *dev, uint16_t q, uint16_t nb_desc, int socket_id,
			      struct upmd_mempool *mp, void **out);
	int (*tx_queue_setup)(struct upmd_eth_dev *dev, uint16_t q, uint16_t nb_desc, int socket_id, void **out);
	void (*rx_queue_release)(struct upmd_eth_dev *dev, void *queue);
	void (*tx_queue_release)(struct upmd_eth_dev *dev, void *queue);
	int (*start)(struct upmd_eth_dev *dev);
	/* After it returns the device does no DMA. The data path is already
	 * off: ethdev switched the bursts to no-ops first. */
	int (*stop)(struct upmd_eth_dev *dev);
	/* optional: free what the driver holds (queues are released already) */
	void (*close)(struct upmd_eth_dev *dev);
	/* optional (link always up, speed from infos) */
	int (*link_update)(struct upmd_eth_dev *dev, struct upmd_eth_link *link);
	/* optional: a port without filters accepts everything anyway */
	int (*promiscuous_set)(struct upmd_eth_dev *dev, bool on);
	int (*allmulticast_set)(struct upmd_eth_dev *dev, bool on);
	int (*mac_addr_set)(struct upmd_eth_dev *dev, const struct upmd_ether_addr *mac);
	/* optional: accepted if inside [min_mtu, max_mtu] */
	int (*mtu_set)(struct upmd_eth_dev *dev, uint32_t mtu);
	/* Fill the totals and queue counters the driver keeps. */
	int (*stats_get)(struct upmd_eth_dev *dev, struct upmd_eth_stats *stats);
	int (*stats_reset)(struct upmd_eth_dev *dev);
	/* optional: the driver's own extended statistics (as upmd_eth_xstats_get) */
	int (*xstats_get)(struct upmd_eth_dev *dev, struct upmd_eth_xstat *xs, unsigned n);
	int (*xstats_reset)(struct upmd_eth_dev *dev);
};

/** A port as its driver sees it. Fields are read-only for the driver but priv. */
struct upmd_eth_dev {
	uint16_t port_id;
	char name[UPMD_ETH_NAME_MAX];
	const char *driver_name;
	const struct upmd_eth_dev_ops *ops;
	upmd_eth_burst_t rx_burst, tx_burst;	/* the driver's, installed at start */
	void *priv;				/* the driver's (priv_size bytes, zeroed) */
	int numa_node;
	bool configured, started, promisc, allmulti;
	uint16_t nb_rxq, nb_txq;
	struct upmd_eth_conf conf;
	struct upmd_ether_addr mac;
	uint32_t mtu;
	void *rxq[UPMD_MAX_QUEUES_PER_PORT];
	void *txq[UPMD_MAX_QUEUES_PER_PORT];
	struct upmd_mempool *rx_mp[UPMD_MAX_QUEUES_PER_PORT];
};

/**
 * Make a port for a device the driver found. @name must be unique (-EEXIST).
 * @return 0 and *out, -ENOSPC (all UPMD_MAX_ETHPORTS in use), -EINVAL, -ENOMEM.
 */
int upmd_eth_dev_allocate(const char *name, const char *driver_name, const struct upmd_eth_dev_ops *ops,
			  upmd_eth_burst_t rx_burst, upmd_eth_burst_t tx_burst, size_t priv_size, int numa_node,
			  struct upmd_eth_dev **out);
/** The port's device, or NULL. */
struct upmd_eth_dev *upmd_eth_dev_get(uint16_t port);
/** Stop, release queues, close and free the port (the driver's remove path). NULL: nothing. */
void upmd_eth_dev_destroy(struct upmd_eth_dev *dev);

/*
 * Counters a queue keeps for itself: written only by the lcore that runs
 * the queue's bursts (plain adds, no atomics), read by stats_get from
 * another thread (a slightly stale 64-bit value is fine, never a torn one
 * on the 64-bit targets upmd runs on).
 */
struct upmd_eth_qstats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t errors;	/* RX: bad frames; TX: packets refused */
	uint64_t nombuf;	/* RX: refills that found no mbuf */
	uint64_t missed;	/* RX: frames dropped for lack of room */
};

/**
 * stats_get and stats_reset for a driver whose every queue (what its
 * setup put in *out) begins with a struct upmd_eth_qstats: the sum of
 * the queues, and zeroing them. Most drivers need nothing else.
 */
int upmd_eth_queue_stats_get(struct upmd_eth_dev *dev, struct upmd_eth_stats *stats);
int upmd_eth_queue_stats_reset(struct upmd_eth_dev *dev);

/** Add each queue's counters into @stats (totals and per queue). */
void upmd_eth_qstats_sum(struct upmd_eth_stats *stats, const struct upmd_eth_qstats *const *rxq, unsigned nb_rxq,
			 const struct upmd_eth_qstats *const *txq, unsigned nb_txq);

/** A driver's "key=value,key=value" arguments (from --vdev). */
struct upmd_kvargs {
	unsigned n;
	struct {
		char *key;
		char *value;		/* "" when the pair has no '=' */
	} kv[16];
	char *buf_;
};
/** Split @args (may be NULL or ""); keys not in @known (NULL-terminated) are -EINVAL (logged). */
int upmd_kvargs_parse(const char *dev, const char *args, const char *const *known, struct upmd_kvargs *kv);
void upmd_kvargs_free(struct upmd_kvargs *kv);
/** The value of @key, or NULL. */
const char *upmd_kvargs_get(const struct upmd_kvargs *kv, const char *key);
/** @key as an unsigned in [min, max] (absent: @def). -EINVAL logged. */
int upmd_kvargs_get_uint(const struct upmd_kvargs *kv, const char *dev, const char *key, unsigned min,
			 unsigned max, unsigned def, unsigned *out);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_ETHDEV_DRIVER_H */
