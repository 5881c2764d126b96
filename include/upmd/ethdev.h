/* Ethernet ports: enumeration, configuration, queues on mempools, start/stop, link, MAC, filters, statistics, and the inline burst calls. */
#ifndef UPMD_ETHDEV_H
#define UPMD_ETHDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <upmd/common.h>
#include <upmd/mbuf.h>
#include <upmd/mempool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A port is one Ethernet interface a poll-mode driver (PMD) found: a PCI
 * NIC, or a virtual device from --vdev. Its life, as in DPDK:
 *
 *   upmd_eth_dev_configure(port, nb_rxq, nb_txq, &conf)
 *   upmd_eth_rx_queue_setup(port, q, nb_desc, socket, mempool)   each RX queue
 *   upmd_eth_tx_queue_setup(port, q, nb_desc, socket)            each TX queue
 *   upmd_eth_dev_start(port)
 *   ... upmd_eth_rx_burst() / upmd_eth_tx_burst() on the lcores ...
 *   upmd_eth_dev_stop(port)        (no DMA after it returns)
 *   upmd_eth_dev_close(port)       (or left to upmd_eal_cleanup())
 *
 * Control calls (everything but the bursts) are not thread-safe: one
 * thread configures a port at a time. A burst call on a queue is
 * lock-free and belongs to one lcore at a time; different queues may run
 * on different lcores at once. Every int function returns 0 (or a count)
 * or -errno; a bad port id is -ENODEV.
 */
#define UPMD_MAX_ETHPORTS 32
#define UPMD_MAX_QUEUES_PER_PORT 16
#define UPMD_ETH_NAME_MAX 32
#define UPMD_ETHER_ADDR_LEN 6
#define UPMD_ETHER_HDR_LEN 14
#define UPMD_ETHER_CRC_LEN 4
#define UPMD_ETHER_MIN_LEN 64		/* with the CRC */
#define UPMD_ETHER_MTU 1500
#define UPMD_ETHER_TYPE_IPV4 0x0800
#define UPMD_ETHER_TYPE_IPV6 0x86dd
#define UPMD_ETHER_TYPE_VLAN 0x8100

struct upmd_ether_addr {
	uint8_t addr_bytes[UPMD_ETHER_ADDR_LEN];
} __attribute__((aligned(2)));

struct upmd_ether_hdr {
	struct upmd_ether_addr dst_addr;
	struct upmd_ether_addr src_addr;
	uint16_t ether_type;		/* big endian */
} __attribute__((aligned(2)));

_Static_assert(sizeof(struct upmd_ether_hdr) == UPMD_ETHER_HDR_LEN, "Ethernet header");

/* "52:54:00:12:34:56" (18 bytes with the NUL). */
#define UPMD_ETHER_ADDR_FMT_SIZE 18
void upmd_ether_format_addr(char *buf, size_t size, const struct upmd_ether_addr *a);
/** Parse "xx:xx:xx:xx:xx:xx" (or '-' separators). @return 0 or -EINVAL. */
int upmd_ether_unformat_addr(const char *s, struct upmd_ether_addr *a);

static inline bool upmd_is_multicast_ether_addr(const struct upmd_ether_addr *a)
{
	return a->addr_bytes[0] & 1;
}

static inline bool upmd_is_broadcast_ether_addr(const struct upmd_ether_addr *a)
{
	static const uint8_t ff[UPMD_ETHER_ADDR_LEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	return memcmp(a->addr_bytes, ff, sizeof(ff)) == 0;
}

/* Offloads a port may offer (upmd_eth_dev_info) and a configuration may ask for. */
#define UPMD_ETH_RX_OFFLOAD_VLAN_STRIP (1ULL << 0)
#define UPMD_ETH_RX_OFFLOAD_IPV4_CKSUM (1ULL << 1)
#define UPMD_ETH_RX_OFFLOAD_UDP_CKSUM (1ULL << 2)
#define UPMD_ETH_RX_OFFLOAD_TCP_CKSUM (1ULL << 3)
#define UPMD_ETH_RX_OFFLOAD_SCATTER (1ULL << 13)	/* frames over one mbuf become chains */
#define UPMD_ETH_RX_OFFLOAD_RSS_HASH (1ULL << 19)
#define UPMD_ETH_TX_OFFLOAD_VLAN_INSERT (1ULL << 0)
#define UPMD_ETH_TX_OFFLOAD_IPV4_CKSUM (1ULL << 1)
#define UPMD_ETH_TX_OFFLOAD_UDP_CKSUM (1ULL << 2)
#define UPMD_ETH_TX_OFFLOAD_TCP_CKSUM (1ULL << 3)
#define UPMD_ETH_TX_OFFLOAD_TCP_TSO (1ULL << 5)
#define UPMD_ETH_TX_OFFLOAD_MULTI_SEGS (1ULL << 15)	/* chained mbufs may be sent */

/** What a port can do. */
struct upmd_eth_dev_info {
	const char *driver_name;
	uint16_t max_rx_queues, max_tx_queues;
	uint16_t rx_desc_min, rx_desc_max;	/* per queue */
	uint16_t tx_desc_min, tx_desc_max;
	uint16_t nb_rx_queues, nb_tx_queues;	/* as configured */
	uint32_t min_mtu, max_mtu;
	uint32_t max_rx_pktlen;			/* frame bytes, CRC excluded */
	uint64_t rx_offload_capa, tx_offload_capa;
	int numa_node;				/* UPMD_SOCKET_ID_ANY if unknown */
	uint32_t speed_capa_mbps;		/* the fastest link speed it supports */
};

/**
 * A port configuration, extensible like iommufd's structs: @size is
 * sizeof(struct upmd_eth_conf) as the caller knows it, @flags and the
 * reserved words must be 0, offloads the port does not offer are
 * -EINVAL (the log names them).
 */
struct upmd_eth_conf {
	uint32_t size;
	uint32_t flags;
	uint32_t mtu;			/* 0: UPMD_ETHER_MTU */
	uint32_t reserved0;
	uint64_t rx_offloads;
	uint64_t tx_offloads;
	uint64_t reserved[4];
};

struct upmd_eth_link {
	uint32_t speed_mbps;		/* 0: unknown */
	uint8_t up;
	uint8_t full_duplex;
	uint8_t autoneg;
	uint8_t pad_;
};

/** Basic statistics: port totals and, for the first queues, per queue. */
struct upmd_eth_stats {
	uint64_t ipackets, opackets;	/* received / sent (as the driver counts them) */
	uint64_t ibytes, obytes;	/* frame bytes without the CRC */
	uint64_t imissed;		/* dropped by the device: no RX descriptor free */
	uint64_t ierrors, oerrors;	/* bad frames received, sends that failed */
	uint64_t rx_nombuf;		/* RX refills that found the mempool empty */
	uint64_t q_ipackets[UPMD_MAX_QUEUES_PER_PORT], q_opackets[UPMD_MAX_QUEUES_PER_PORT];
	uint64_t q_ibytes[UPMD_MAX_QUEUES_PER_PORT], q_obytes[UPMD_MAX_QUEUES_PER_PORT];
	uint64_t q_errors[UPMD_MAX_QUEUES_PER_PORT];
};

/** An extended statistic: a name and its value. */
#define UPMD_ETH_XSTATS_NAME_SIZE 64
struct upmd_eth_xstat {
	char name[UPMD_ETH_XSTATS_NAME_SIZE];
	uint64_t value;
};

/* ---- ports -------------------------------------------------------------- */

/** Ports in use. */
unsigned upmd_eth_dev_count_avail(void);
/** Whether @port is a port in use. */
bool upmd_eth_dev_is_valid_port(uint16_t port);
/** The first port in use at or after @port, or UPMD_MAX_ETHPORTS. */
uint16_t upmd_eth_find_next(uint16_t port);
#define UPMD_ETH_FOREACH_DEV(p) \
	for ((p) = upmd_eth_find_next(0); (p) < UPMD_MAX_ETHPORTS; (p) = upmd_eth_find_next((uint16_t)((p) + 1)))

/** The port called @name (its device name: "net_null0", "0000:00:03.0"). @return 0, -ENODEV. */
int upmd_eth_dev_get_port_by_name(const char *name, uint16_t *port);
/** The port's name, or NULL. */
const char *upmd_eth_dev_name(uint16_t port);
/** The NUMA node of the port's device, or UPMD_SOCKET_ID_ANY. */
int upmd_eth_dev_socket_id(uint16_t port);
int upmd_eth_dev_info_get(uint16_t port, struct upmd_eth_dev_info *info);

/**
 * Set the number of queues and the configuration (NULL: defaults). The
 * port must be stopped; queues set up before are released. @return 0,
 * -ENODEV, -EBUSY (started), -EINVAL (queue counts 0 or above the
 * device's maximum, bad conf: logged), or the driver's error.
 */
int upmd_eth_dev_configure(uint16_t port, uint16_t nb_rxq, uint16_t nb_txq, const struct upmd_eth_conf *conf);

/**
 * Set up RX queue @q with @nb_desc descriptors (0: the driver's default)
 * on @socket_id, filling them with mbufs from @mp (whose buffers must be
 * large enough for the driver: -EINVAL says how large). @return 0,
 * -ENODEV, -EBUSY (started), -EINVAL, -ENOMEM.
 */
int upmd_eth_rx_queue_setup(uint16_t port, uint16_t q, uint16_t nb_desc, int socket_id, struct upmd_mempool *mp);
int upmd_eth_tx_queue_setup(uint16_t port, uint16_t q, uint16_t nb_desc, int socket_id);

/** Start: every configured queue must be set up (-EINVAL names the first that is not). */
int upmd_eth_dev_start(uint16_t port);
/** Stop: bursts return 0 from now on and the device does no more DMA. 0 if already stopped. */
int upmd_eth_dev_stop(uint16_t port);
/** Stop if needed, release the queues and the device; the port id is free again. */
int upmd_eth_dev_close(uint16_t port);
bool upmd_eth_dev_is_started(uint16_t port);

/** The link now (no waiting). */
int upmd_eth_link_get(uint16_t port, struct upmd_eth_link *link);
int upmd_eth_macaddr_get(uint16_t port, struct upmd_ether_addr *mac);
/** -EINVAL for a multicast or all-zero address, -ENOTSUP if the device cannot change it. */
int upmd_eth_dev_default_mac_addr_set(uint16_t port, const struct upmd_ether_addr *mac);
int upmd_eth_promiscuous_enable(uint16_t port);
int upmd_eth_promiscuous_disable(uint16_t port);
/** 1, 0, or -ENODEV. */
int upmd_eth_promiscuous_get(uint16_t port);
int upmd_eth_allmulticast_enable(uint16_t port);
int upmd_eth_allmulticast_disable(uint16_t port);
int upmd_eth_allmulticast_get(uint16_t port);
/** -EINVAL outside [min_mtu, max_mtu]. */
int upmd_eth_dev_set_mtu(uint16_t port, uint32_t mtu);
int upmd_eth_dev_get_mtu(uint16_t port, uint32_t *mtu);

int upmd_eth_stats_get(uint16_t port, struct upmd_eth_stats *stats);
int upmd_eth_stats_reset(uint16_t port);
/**
 * Extended statistics: the basic ones by name ("rx_good_packets",
 * "rx_q0_packets", ...) then the driver's own. Fills at most @n entries
 * of @xs (NULL with n = 0 asks for the count). @return how many exist
 * (more than @n: call again with room), or -ENODEV.
 */
int upmd_eth_xstats_get(uint16_t port, struct upmd_eth_xstat *xs, unsigned n);
int upmd_eth_xstats_reset(uint16_t port);

/* ---- the data path -------------------------------------------------------- */

typedef uint16_t (*upmd_eth_burst_t)(void *queue, struct upmd_mbuf **pkts, uint16_t n);

/* Internal, here for the inline bursts: per port, what the data path needs,
 * on its own cache lines. While a port is stopped the bursts are ones that
 * return 0, so a burst on a stopped port is harmless. */
struct upmd_eth_fp_ops {
	upmd_eth_burst_t rx_burst;
	upmd_eth_burst_t tx_burst;
	uint16_t nb_rxq, nb_txq;	/* queues set up; beyond them a burst returns 0 */
	uint32_t pad_;
	void *rxq[UPMD_MAX_QUEUES_PER_PORT];
	void *txq[UPMD_MAX_QUEUES_PER_PORT];
} __upmd_cache_aligned;

extern struct upmd_eth_fp_ops upmd_eth_fp_ops[UPMD_MAX_ETHPORTS];

/**
 * Receive up to @n packets from RX queue @q of @port into @pkts. @return
 * how many (0 when none arrived, the port is stopped, or port/queue are
 * out of range). Each mbuf is the caller's to free or send.
 */
static inline uint16_t upmd_eth_rx_burst(uint16_t port, uint16_t q, struct upmd_mbuf **pkts, uint16_t n)
{
	struct upmd_eth_fp_ops *fp;

	if (upmd_unlikely(port >= UPMD_MAX_ETHPORTS))
		return 0;
	fp = &upmd_eth_fp_ops[port];
	if (upmd_unlikely(q >= fp->nb_rxq))
		return 0;
	return fp->rx_burst(fp->rxq[q], pkts, n);
}

/**
 * Send up to @n packets on TX queue @q of @port. @return how many the
 * driver took (it frees them once sent); the rest, from pkts[ret] on, are
 * still the caller's (free them or try again).
 */
static inline uint16_t upmd_eth_tx_burst(uint16_t port, uint16_t q, struct upmd_mbuf **pkts, uint16_t n)
{
	struct upmd_eth_fp_ops *fp;

	if (upmd_unlikely(port >= UPMD_MAX_ETHPORTS))
		return 0;
	fp = &upmd_eth_fp_ops[port];
	if (upmd_unlikely(q >= fp->nb_txq))
		return 0;
	return fp->tx_burst(fp->txq[q], pkts, n);
}

#ifdef __cplusplus
}
#endif
#endif /* UPMD_ETHDEV_H */
