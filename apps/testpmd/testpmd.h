/* upmd-testpmd's shared state: the configuration from the command line, forwarding streams and lcores, the forwarding engines. */
#ifndef UPMD_TESTPMD_H
#define UPMD_TESTPMD_H

#include <stdbool.h>
#include <stdint.h>
#include <upmd/upmd.h>

#define MAX_BURST 512
#define MAX_SEGS 8
#define MAX_STREAMS (UPMD_MAX_ETHPORTS * UPMD_MAX_QUEUES_PER_PORT)

enum fwd_mode { FWD_IO, FWD_MAC, FWD_MACSWAP, FWD_RXONLY, FWD_TXONLY, FWD_FLOWGEN, FWD_DMACOPY, FWD_MODES };

struct tp_conf {
	enum fwd_mode mode;
	unsigned nb_cores;
	uint16_t rxq, txq;
	uint16_t rxd, txd;
	uint16_t burst;
	unsigned total_mbufs;		/* 0: computed */
	uint16_t txpkts[MAX_SEGS];	/* segment lengths of generated packets */
	unsigned nb_txsegs;
	unsigned stats_period;		/* seconds, 0: only at the end */
	bool tx_first;
	double run_time;		/* seconds, 0: until SIGINT/SIGTERM */
	bool json;
	unsigned flows;			/* flowgen */
	struct upmd_ether_addr peer[UPMD_MAX_ETHPORTS];
	bool peer_given[UPMD_MAX_ETHPORTS];
	const char *dma_name;		/* dmacopy: --dma-dev, NULL: the first that copies */
	int16_t dma_dev;		/* dmacopy: the device, one vchan per forwarding lcore */
};

/*
 * A stream takes packets from one RX queue and sends them to one TX queue
 * (ports paired 0<->1, 2<->3; an odd last port to itself). Its counters
 * are written only by the lcore that runs it, read by the main lcore for
 * statistics.
 */
struct fwd_stream {
	uint16_t rx_port, rx_queue;
	uint16_t tx_port, tx_queue;
	uint64_t rx_packets;
	uint64_t tx_packets;
	uint64_t fwd_dropped;		/* received, not sent: freed */
	uint64_t alloc_failed;		/* txonly/flowgen: no mbuf */
	uint32_t flow;			/* flowgen's next flow */
	struct upmd_ether_addr tx_src, tx_dst;	/* MACs mac/txonly write */
	struct upmd_mempool *mp;	/* where generated packets come from */
	uint16_t dma_vchan;		/* dmacopy: its lcore's channel */
	uint64_t dma_copied;		/* dmacopy: packets copied by the engine */
	uint64_t dma_errors;		/* dmacopy: copies that failed (dropped) */
} __upmd_cache_aligned;

struct fwd_lcore {
	unsigned lcore;
	struct fwd_stream *streams[MAX_STREAMS];
	unsigned nb_streams;
	volatile bool stop;
} __upmd_cache_aligned;

extern struct tp_conf tp;

typedef void (*fwd_fn)(struct fwd_stream *fs);
extern const char *const fwd_mode_names[FWD_MODES];
extern const fwd_fn fwd_engines[FWD_MODES];

/* Generate one burst of packets on @fs's TX queue (txonly; --tx-first). */
void fwd_txonly(struct fwd_stream *fs);

#endif /* UPMD_TESTPMD_H */
