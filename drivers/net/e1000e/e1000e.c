/* net_e1000e: poll-mode driver for the Intel 82574L (QEMU's -device e1000e), one RX and one TX queue of legacy descriptors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/pci.h>

#define DRV "net_e1000e"

/* ---- the 82574 register map (BAR0, 128 KiB of MMIO) ---- */

#define REG_CTRL 0x0000
#define REG_STATUS 0x0008
#define REG_EECD 0x0010
#define REG_EERD 0x0014
#define REG_CTRL_EXT 0x0018
#define REG_ICR 0x00c0
#define REG_IMC 0x00d8
#define REG_RCTL 0x0100
#define REG_TCTL 0x0400
#define REG_TIPG 0x0410
#define REG_RDBAL 0x2800
#define REG_RDBAH 0x2804
#define REG_RDLEN 0x2808
#define REG_RDH 0x2810
#define REG_RDT 0x2818
#define REG_RDTR 0x2820
#define REG_RXDCTL 0x2828
#define REG_RADV 0x282c
#define REG_TDBAL 0x3800
#define REG_TDBAH 0x3804
#define REG_TDLEN 0x3808
#define REG_TDH 0x3810
#define REG_TDT 0x3818
#define REG_TIDV 0x3820
#define REG_TXDCTL 0x3828
#define REG_TADV 0x382c
#define REG_RFCTL 0x5008
#define REG_MTA 0x5200		/* 128 words: the multicast hash table */
#define REG_RAL(i) (0x5400 + 8 * (i))
#define REG_RAH(i) (0x5404 + 8 * (i))
#define NB_MTA 128
#define NB_RA 15			/* RA[0..14]: the receive address slots every 82571-family part has */
#define BAR0_MIN_LEN 0x20000

#define CTRL_FD (1u << 0)
#define CTRL_GIO_MASTER_DISABLE (1u << 2)
#define CTRL_LRST (1u << 3)
#define CTRL_ASDE (1u << 5)
#define CTRL_SLU (1u << 6)
#define CTRL_FRCSPD (1u << 11)
#define CTRL_FRCDPLX (1u << 12)
#define CTRL_RST (1u << 26)
#define CTRL_PHY_RST (1u << 31)

#define STATUS_FD (1u << 0)
#define STATUS_LU (1u << 1)
#define STATUS_SPEED_SHIFT 6
#define STATUS_SPEED_MASK (3u << STATUS_SPEED_SHIFT)
#define STATUS_GIO_MASTER_EN (1u << 19)

#define EECD_AUTO_RD (1u << 9)
#define EERD_START (1u << 0)
#define EERD_DONE (1u << 1)
#define EERD_ADDR_SHIFT 2
#define EERD_DATA_SHIFT 16

#define CTRL_EXT_DRV_LOAD (1u << 28)

#define RCTL_EN (1u << 1)
#define RCTL_UPE (1u << 3)
#define RCTL_MPE (1u << 4)
#define RCTL_LPE (1u << 5)
#define RCTL_BAM (1u << 15)
#define RCTL_BSIZE_2048 (0u << 16)	/* with BSEX clear */
#define RCTL_SECRC (1u << 26)

#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)
#define TCTL_CT(n) ((uint32_t)(n) << 4)
#define TCTL_COLD(n) ((uint32_t)(n) << 12)
#define TCTL_RTLC (1u << 24)

/* IPGT 8, IPGR1 8, IPGR2 6: the 82574's values for copper. */
#define TIPG_82574 (8u | (8u << 10) | (6u << 20))

#define DCTL_THRESH_MASK 0x003f3f3fu	/* PTHRESH, HTHRESH, WTHRESH */
#define DCTL_WTHRESH(n) ((uint32_t)(n) << 16)
#define DCTL_GRAN (1u << 24)		/* thresholds count descriptors, not cache lines */

#define RAH_AV (1u << 31)

/* Statistics: every one clears when read. A 64-bit pair clears when its
 * high half is read, so the low half is read first. */
#define REG_CRCERRS 0x4000
#define REG_ALGNERRC 0x4004
#define REG_RXERRC 0x400c
#define REG_MPC 0x4010
#define REG_COLC 0x4028
#define REG_RLEC 0x4040
#define REG_GPRC 0x4074
#define REG_BPRC 0x4078
#define REG_MPRC 0x407c
#define REG_GPTC 0x4080
#define REG_GORCL 0x4088
#define REG_GORCH 0x408c
#define REG_GOTCL 0x4090
#define REG_GOTCH 0x4094
#define REG_RNBC 0x40a0
#define REG_RUC 0x40a4
#define REG_ROC 0x40ac
#define REG_TPR 0x40d0
#define REG_TPT 0x40d4
#define REG_MPTC 0x40f0
#define REG_BPTC 0x40f4

/* ---- legacy descriptors ----
 * Little-endian, as the device reads and writes them; the code stores
 * the fields natively (and the upper 8 bytes as one 64-bit word). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "descriptor fields are stored in host byte order");

struct rx_desc {
	uint64_t addr;		/* buffer IOVA */
	uint16_t length;	/* written back: bytes stored in the buffer */
	uint16_t csum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
};
_Static_assert(sizeof(struct rx_desc) == 16, "legacy RX descriptor is 16 bytes");

#define RXD_STAT_DD (1u << 0)
#define RXD_STAT_EOP (1u << 1)
/* CE (CRC/alignment), SE (symbol), SEQ (sequence), CXE (carrier extension), RXE (RX data error):
 * the frame itself is bad. TCPE/IPE only speak of checksums, which are not offloaded. */
#define RXD_ERR_FRAME 0x97u

struct tx_desc {
	uint64_t addr;		/* buffer IOVA */
	uint16_t length;
	uint8_t cso;
	uint8_t cmd;
	uint8_t status;
	uint8_t css;
	uint16_t special;
};
_Static_assert(sizeof(struct tx_desc) == 16, "legacy TX descriptor is 16 bytes");

#define TXD_CMD_EOP (1u << 0)
#define TXD_CMD_IFCS (1u << 1)
#define TXD_CMD_RS (1u << 3)
#define TXD_STAT_DD (1u << 0)

/* ---- limits ---- */

#define RX_BUF_SIZE 2048			/* RCTL.BSIZE above */
#define MAX_FRAME 1518				/* CRC excluded; 1522 on the wire with a VLAN tag */
#define DESC_MIN 32
#define DESC_MAX 4096
#define DESC_ALIGN 8				/* RDLEN/TDLEN are multiples of 128 bytes */
#define RING_ALIGN 4096				/* the device needs 128; a page keeps it apart */
#define RESET_TIMEOUT_MS 100
#define MASTER_TIMEOUT_MS 100
#define EERD_TIMEOUT_MS 10

struct e1k_rxq {
	struct upmd_eth_qstats st;	/* first: written on every burst */
	volatile struct rx_desc *ring;
	struct upmd_mbuf **sw;		/* the mbuf behind each descriptor */
	volatile uint8_t *rdt;
	struct upmd_mempool *mp;
	uint16_t nb_desc;
	uint16_t next;			/* the next descriptor to look at */
	uint16_t port;
	bool dropping;			/* inside a frame that spans descriptors: drop to its EOP */
	const struct upmd_memzone *mz;
} __upmd_cache_aligned;

struct tx_slot {
	struct upmd_mbuf *m;		/* the segment this descriptor sends */
	uint16_t last;			/* on a packet's first descriptor: its last one (with RS) */
};

struct e1k_txq {
	struct upmd_eth_qstats st;
	volatile struct tx_desc *ring;
	struct tx_slot *sw;
	volatile uint8_t *tdt;
	uint16_t nb_desc;
	uint16_t tail;			/* the next descriptor to fill */
	uint16_t clean;			/* the oldest descriptor not yet reclaimed */
	uint16_t nb_free;		/* at most nb_desc - 1: TDH == TDT means empty */
	const struct upmd_memzone *mz;
} __upmd_cache_aligned;

/* The hardware counters, accumulated (the registers clear on read). */
struct hw_counters {
	uint64_t gprc, gptc, gorc, gotc, tpr, tpt;
	uint64_t bprc, mprc, bptc, mptc;
	uint64_t mpc, rnbc, crcerrs, algnerrc, rxerrc, rlec, ruc, roc, colc;
};

struct e1k_priv {
	struct upmd_pci_device *pdev;
	volatile uint8_t *regs;
	struct hw_counters hw;
};

static const struct upmd_eth_dev_ops e1k_ops;

static inline uint32_t rd32(const struct e1k_priv *p, unsigned off)
{
	return upmd_mmio_read32(p->regs + off);
}

static inline void wr32(const struct e1k_priv *p, unsigned off, uint32_t v)
{
	upmd_mmio_write32(p->regs + off, v);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Poll @reg until (value & mask) == want, for up to @timeout_ms. @return 0 or -ETIMEDOUT. */
static int poll_reg(const struct e1k_priv *p, unsigned reg, uint32_t mask, uint32_t want, unsigned timeout_ms)
{
	uint64_t end = now_us() + (uint64_t)timeout_ms * 1000;

	for (;;) {
		if ((rd32(p, reg) & mask) == want)
			return 0;
		if (now_us() > end)
			return -ETIMEDOUT;
		sleep_us(100);
	}
}

static inline uint16_t ring_next(uint16_t i, uint16_t n)
{
	return (uint16_t)(i + 1 == n ? 0 : i + 1);
}

/* ---- the data path ---- */

static uint16_t e1k_rx_burst(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct e1k_rxq *q = queue;
	uint16_t idx = q->next, got = 0, used = 0;
	uint64_t bytes = 0;

	while (got < n) {
		volatile struct rx_desc *d = &q->ring[idx];
		struct upmd_mbuf *m, *fresh;
		uint8_t status = d->status, errors;
		uint16_t len;

		if (!(status & RXD_STAT_DD))
			break;
		/* The device writes DD after the rest of the descriptor and
		 * the frame: read them only after seeing it. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		/* The replacement first: without one the descriptor stays
		 * as it is, done, for the next call to pick up. */
		fresh = upmd_pktmbuf_alloc(q->mp);
		if (upmd_unlikely(!fresh)) {
			q->st.nombuf++;
			break;
		}
		len = d->length;
		errors = d->errors;
		m = q->sw[idx];
		q->sw[idx] = fresh;
		d->addr = upmd_pktmbuf_data_iova_default(fresh);
		/* Clear the written-back half (length, status, errors) so
		 * that a stale DD is never seen on the next lap. */
		*(volatile uint64_t *)((volatile uint8_t *)d + 8) = 0;
		idx = ring_next(idx, q->nb_desc);
		used++;

		if (upmd_unlikely(!(status & RXD_STAT_EOP))) {
			/* Frames are at most MAX_FRAME bytes (RCTL.LPE is off)
			 * and buffers 2048: a frame over several descriptors
			 * is not one this port accepts. Drop all its pieces. */
			if (!q->dropping)
				q->st.errors++;
			q->dropping = true;
			upmd_pktmbuf_free(m);
			continue;
		}
		if (upmd_unlikely(q->dropping || (errors & RXD_ERR_FRAME) || len == 0)) {
			if (!q->dropping)
				q->st.errors++;
			q->dropping = false;
			upmd_pktmbuf_free(m);
			continue;
		}
		m->data_len = len;
		m->pkt_len = len;
		m->port = q->port;
		m->packet_type = UPMD_PTYPE_L2_ETHER;
		pkts[got++] = m;
		bytes += len;
	}
	if (used) {
		q->next = idx;
		/* The refilled descriptors must be in memory before the new
		 * tail tells the device it may use them. The tail stays one
		 * behind next: RDH == RDT means "no descriptors" to the device. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		upmd_mmio_write32(q->rdt, idx == 0 ? (uint32_t)q->nb_desc - 1 : (uint32_t)idx - 1);
	}
	q->st.packets += got;
	q->st.bytes += bytes;
	return got;
}

/* Give back the mbufs of every packet whose last descriptor (the one with
 * RS) the device has written back as done. */
static void tx_reclaim(struct e1k_txq *q)
{
	while (q->clean != q->tail) {
		uint16_t last = q->sw[q->clean].last, idx = q->clean;

		if (!(q->ring[last].status & TXD_STAT_DD))
			break;
		/* DD means the device has read the buffers: order our frees
		 * (and the pool's reuse) after that read of the status. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		for (;;) {
			if (q->sw[idx].m) {
				upmd_pktmbuf_free_seg(q->sw[idx].m);
				q->sw[idx].m = NULL;
			}
			q->nb_free++;
			if (idx == last)
				break;
			idx = ring_next(idx, q->nb_desc);
		}
		q->clean = ring_next(last, q->nb_desc);
	}
}

static uint16_t e1k_tx_burst(void *queue, struct upmd_mbuf **pkts, uint16_t n)
{
	struct e1k_txq *q = queue;
	uint16_t i, tail = q->tail;
	uint64_t bytes = 0, sent = 0;

	tx_reclaim(q);
	for (i = 0; i < n; i++) {
		struct upmd_mbuf *m = pkts[i], *s, *next;
		uint32_t len = m->pkt_len;	/* m itself may be freed below */
		unsigned need = 0;
		uint16_t first = tail, last = tail;

		for (s = m; s; s = s->next)
			need += s->data_len != 0;
		/* A packet the device cannot send is taken and dropped (it
		 * would come back on every retry otherwise), and counted. */
		if (upmd_unlikely(need == 0 || need > (unsigned)q->nb_desc - 1 || len < UPMD_ETHER_HDR_LEN ||
				  len > MAX_FRAME)) {
			q->st.errors++;
			upmd_pktmbuf_free(m);
			continue;
		}
		if (need > q->nb_free)
			break;
		for (s = m; s; s = next) {
			volatile struct tx_desc *d;

			next = s->next;
			if (s->data_len == 0) {
				/* Nothing for the device to read: free it now. */
				upmd_pktmbuf_free_seg(s);
				continue;
			}
			d = &q->ring[tail];
			d->addr = upmd_pktmbuf_data_iova(s);
			/* length, cso, cmd, status, css, special in one store:
			 * cmd is set on the last descriptor below, status
			 * (DD) starts cleared. */
			*(volatile uint64_t *)((volatile uint8_t *)d + 8) = s->data_len;
			q->sw[tail].m = s;
			last = tail;
			tail = ring_next(tail, q->nb_desc);
		}
		q->ring[last].cmd = TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS;
		q->sw[first].last = last;
		q->nb_free = (uint16_t)(q->nb_free - need);
		bytes += len;
		sent++;
	}
	if (tail != q->tail) {
		q->tail = tail;
		/* Descriptors in memory before the doorbell that hands them over. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		upmd_mmio_write32(q->tdt, tail);
	}
	q->st.packets += sent;
	q->st.bytes += bytes;
	return i;
}

/* ---- queues ---- */

/* Memzone names are unique: the BDF (at most 15 characters) tells ports apart. */
static void ring_name(char *buf, size_t len, const struct e1k_priv *p, const char *kind, uint16_t q)
{
	snprintf(buf, len, "e1k_%s_%s%u", p->pdev->name, kind, q);
}

static bool desc_count_ok(const struct upmd_eth_dev *dev, const char *kind, uint16_t nb_desc)
{
	if (nb_desc % DESC_ALIGN == 0)
		return true;
	UPMD_ERR(DRV, "%s: %u %s descriptors: the 82574 takes a multiple of %u (the ring length is in 128-byte units)",
		 dev->name, nb_desc, kind, DESC_ALIGN);
	return false;
}

/* Give every empty RX slot an mbuf. @return 0 or -ENOMEM (the ring keeps what it got). */
static int rxq_fill(struct upmd_eth_dev *dev, struct e1k_rxq *q)
{
	unsigned i, filled = 0;

	for (i = 0; i < q->nb_desc; i++) {
		if (!q->sw[i]) {
			q->sw[i] = upmd_pktmbuf_alloc(q->mp);
			if (!q->sw[i]) {
				UPMD_ERR(DRV, "%s: mempool %s ran out after %u of the %u mbufs the RX ring holds: "
					 "make the pool larger than the RX ring plus what TX and the application keep",
					 dev->name, q->mp->name, filled, q->nb_desc);
				return -ENOMEM;
			}
		}
		filled++;
		q->ring[i].addr = upmd_pktmbuf_data_iova_default(q->sw[i]);
		*(volatile uint64_t *)((volatile uint8_t *)&q->ring[i] + 8) = 0;
	}
	q->next = 0;
	q->dropping = false;
	return 0;
}

static void rxq_drain(struct e1k_rxq *q)
{
	unsigned i;

	for (i = 0; i < q->nb_desc; i++) {
		if (q->sw[i]) {
			upmd_pktmbuf_free_seg(q->sw[i]);
			q->sw[i] = NULL;
		}
	}
}

static void txq_drain(struct e1k_txq *q)
{
	unsigned i;

	for (i = 0; i < q->nb_desc; i++) {
		if (q->sw[i].m) {
			upmd_pktmbuf_free_seg(q->sw[i].m);
			q->sw[i].m = NULL;
		}
	}
	memset((void *)q->ring, 0, (size_t)q->nb_desc * sizeof(struct tx_desc));
	q->tail = q->clean = 0;
	q->nb_free = (uint16_t)(q->nb_desc - 1);
}

static void e1k_rxq_release(struct upmd_eth_dev *dev, void *queue)
{
	struct e1k_rxq *q = queue;

	(void)dev;
	if (!q)
		return;
	rxq_drain(q);
	free(q->sw);
	if (q->mz)
		upmd_memzone_free(q->mz);
	free(q);
}

static void e1k_txq_release(struct upmd_eth_dev *dev, void *queue)
{
	struct e1k_txq *q = queue;

	(void)dev;
	if (!q)
		return;
	if (q->sw)
		txq_drain(q);
	free(q->sw);
	if (q->mz)
		upmd_memzone_free(q->mz);
	free(q);
}

static int e1k_rxq_setup(struct upmd_eth_dev *dev, uint16_t qid, uint16_t nb_desc, int socket_id,
			 struct upmd_mempool *mp, void **out)
{
	struct e1k_priv *p = dev->priv;
	unsigned room = upmd_pktmbuf_data_room_size(mp);
	char name[32];
	struct e1k_rxq *q;
	int rc;

	if (!desc_count_ok(dev, "RX", nb_desc))
		return -EINVAL;
	if (room < UPMD_PKTMBUF_HEADROOM + RX_BUF_SIZE) {
		UPMD_ERR(DRV, "%s: mempool %s has %u-byte buffers, but the 82574 receives into %u bytes after the %u-byte "
			 "headroom: create it with a data room of at least %u (UPMD_MBUF_DEFAULT_BUF_SIZE)",
			 dev->name, mp->name, room, RX_BUF_SIZE, UPMD_PKTMBUF_HEADROOM,
			 UPMD_PKTMBUF_HEADROOM + RX_BUF_SIZE);
		return -EINVAL;
	}
	if (posix_memalign((void **)&q, UPMD_CACHE_LINE_SIZE, sizeof(*q)))
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->nb_desc = nb_desc;
	q->mp = mp;
	q->port = dev->port_id;
	q->rdt = p->regs + REG_RDT;
	q->sw = calloc(nb_desc, sizeof(*q->sw));
	if (!q->sw) {
		rc = -ENOMEM;
		goto err_free;
	}
	ring_name(name, sizeof(name), p, "rx", qid);
	rc = upmd_memzone_reserve(name, (size_t)nb_desc * sizeof(struct rx_desc), socket_id, RING_ALIGN, &q->mz);
	if (rc < 0) {
		UPMD_ERR(DRV, "%s: no memory for an RX ring of %u descriptors (%s): reserve more with -m",
			 dev->name, nb_desc, strerror(-rc));
		goto err_free;
	}
	q->ring = q->mz->addr;
	rc = rxq_fill(dev, q);
	if (rc < 0)
		goto err_free;
	*out = q;
	return 0;
err_free:
	e1k_rxq_release(dev, q);
	return rc;
}

static int e1k_txq_setup(struct upmd_eth_dev *dev, uint16_t qid, uint16_t nb_desc, int socket_id, void **out)
{
	struct e1k_priv *p = dev->priv;
	char name[32];
	struct e1k_txq *q;
	int rc;

	if (!desc_count_ok(dev, "TX", nb_desc))
		return -EINVAL;
	if (posix_memalign((void **)&q, UPMD_CACHE_LINE_SIZE, sizeof(*q)))
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->nb_desc = nb_desc;
	q->tdt = p->regs + REG_TDT;
	q->sw = calloc(nb_desc, sizeof(*q->sw));
	if (!q->sw) {
		rc = -ENOMEM;
		goto err_free;
	}
	ring_name(name, sizeof(name), p, "tx", qid);
	rc = upmd_memzone_reserve(name, (size_t)nb_desc * sizeof(struct tx_desc), socket_id, RING_ALIGN, &q->mz);
	if (rc < 0) {
		UPMD_ERR(DRV, "%s: no memory for a TX ring of %u descriptors (%s): reserve more with -m",
			 dev->name, nb_desc, strerror(-rc));
		goto err_free;
	}
	q->ring = q->mz->addr;
	txq_drain(q);
	*out = q;
	return 0;
err_free:
	e1k_txq_release(dev, q);
	return rc;
}

/* ---- the device ---- */

/* @rctl with UPE/MPE as these promiscuous and allmulticast settings ask. */
static uint32_t rctl_filters(uint32_t rctl, bool promisc, bool allmulti)
{
	rctl &= ~(RCTL_UPE | RCTL_MPE);
	if (promisc)
		rctl |= RCTL_UPE | RCTL_MPE;
	else if (allmulti)
		rctl |= RCTL_MPE;
	return rctl;
}

/*
 * Turn RX and TX off and make sure the device has no DMA in flight: it
 * finishes the frame at hand after EN drops, so wait, then ask the bus
 * interface to stop mastering and poll until it says no request is
 * pending. Mastering is allowed again afterwards: with RX and TX off the
 * device has nothing to fetch or store.
 */
static int quiesce(struct e1k_priv *p, const char *name)
{
	int rc;

	wr32(p, REG_RCTL, rd32(p, REG_RCTL) & ~RCTL_EN);
	wr32(p, REG_TCTL, rd32(p, REG_TCTL) & ~TCTL_EN);
	(void)rd32(p, REG_STATUS);	/* flush the posted writes */
	sleep_us(10000);
	wr32(p, REG_CTRL, rd32(p, REG_CTRL) | CTRL_GIO_MASTER_DISABLE);
	rc = poll_reg(p, REG_STATUS, STATUS_GIO_MASTER_EN, 0, MASTER_TIMEOUT_MS);
	if (rc < 0)
		UPMD_WARN(DRV, "%s: DMA requests still pending %u ms after RX and TX were disabled: "
			  "resetting the device to stop them", name, MASTER_TIMEOUT_MS);
	wr32(p, REG_CTRL, rd32(p, REG_CTRL) & ~CTRL_GIO_MASTER_DISABLE);
	return rc;
}

/* Read the clear-on-read counters into the accumulated ones. */
static void hw_accumulate(struct e1k_priv *p)
{
	struct hw_counters *h = &p->hw;
	uint64_t lo;

	h->gprc += rd32(p, REG_GPRC);
	h->gptc += rd32(p, REG_GPTC);
	lo = rd32(p, REG_GORCL);
	h->gorc += lo | (uint64_t)rd32(p, REG_GORCH) << 32;
	lo = rd32(p, REG_GOTCL);
	h->gotc += lo | (uint64_t)rd32(p, REG_GOTCH) << 32;
	h->tpr += rd32(p, REG_TPR);
	h->tpt += rd32(p, REG_TPT);
	h->bprc += rd32(p, REG_BPRC);
	h->mprc += rd32(p, REG_MPRC);
	h->bptc += rd32(p, REG_BPTC);
	h->mptc += rd32(p, REG_MPTC);
	h->mpc += rd32(p, REG_MPC);
	h->rnbc += rd32(p, REG_RNBC);
	h->crcerrs += rd32(p, REG_CRCERRS);
	h->algnerrc += rd32(p, REG_ALGNERRC);
	h->rxerrc += rd32(p, REG_RXERRC);
	h->rlec += rd32(p, REG_RLEC);
	h->ruc += rd32(p, REG_RUC);
	h->roc += rd32(p, REG_ROC);
	h->colc += rd32(p, REG_COLC);
}

static void e1k_infos(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info)
{
	(void)dev;
	info->max_rx_queues = 1;
	info->max_tx_queues = 1;
	info->rx_desc_min = info->tx_desc_min = DESC_MIN;
	info->rx_desc_max = info->tx_desc_max = DESC_MAX;
	info->max_mtu = UPMD_ETHER_MTU;
	info->max_rx_pktlen = MAX_FRAME;
	info->tx_offload_capa = UPMD_ETH_TX_OFFLOAD_MULTI_SEGS;
	info->speed_capa_mbps = 1000;
}

static int e1k_start(struct upmd_eth_dev *dev)
{
	struct e1k_priv *p = dev->priv;
	struct e1k_rxq *rxq = dev->rxq[0];
	struct e1k_txq *txq = dev->txq[0];
	uint32_t v;
	unsigned i;
	int rc;

	wr32(p, REG_IMC, 0xffffffffu);
	wr32(p, REG_CTRL, (rd32(p, REG_CTRL) | CTRL_SLU) & ~CTRL_GIO_MASTER_DISABLE);

	/* RX: legacy descriptors (RFCTL.EXSTEN clear), no interrupt delays,
	 * no multicast hash bits (allmulticast is RCTL.MPE). */
	wr32(p, REG_RCTL, 0);
	rc = rxq_fill(dev, rxq);
	if (rc < 0)
		return rc;
	wr32(p, REG_RFCTL, 0);
	for (i = 0; i < NB_MTA; i++)
		wr32(p, REG_MTA + 4 * i, 0);
	wr32(p, REG_RDBAL, (uint32_t)rxq->mz->iova);
	wr32(p, REG_RDBAH, (uint32_t)(rxq->mz->iova >> 32));
	wr32(p, REG_RDLEN, (uint32_t)rxq->nb_desc * sizeof(struct rx_desc));
	wr32(p, REG_RDH, 0);
	wr32(p, REG_RDT, 0);
	wr32(p, REG_RDTR, 0);
	wr32(p, REG_RADV, 0);
	v = rd32(p, REG_RXDCTL) & ~DCTL_THRESH_MASK;
	wr32(p, REG_RXDCTL, v | DCTL_GRAN | DCTL_WTHRESH(1));

	/* TX */
	wr32(p, REG_TCTL, 0);
	txq_drain(txq);
	wr32(p, REG_TDBAL, (uint32_t)txq->mz->iova);
	wr32(p, REG_TDBAH, (uint32_t)(txq->mz->iova >> 32));
	wr32(p, REG_TDLEN, (uint32_t)txq->nb_desc * sizeof(struct tx_desc));
	wr32(p, REG_TDH, 0);
	wr32(p, REG_TDT, 0);
	wr32(p, REG_TIDV, 0);
	wr32(p, REG_TADV, 0);
	wr32(p, REG_TIPG, TIPG_82574);
	v = rd32(p, REG_TXDCTL) & ~DCTL_THRESH_MASK;
	wr32(p, REG_TXDCTL, v | DCTL_GRAN | DCTL_WTHRESH(1));

	/* The ring contents before the device may read them. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	wr32(p, REG_RDT, (uint32_t)rxq->nb_desc - 1);
	/* Broadcasts accepted, CRC stripped (lengths exclude it), 2048-byte buffers, no long frames. */
	wr32(p, REG_RCTL, rctl_filters(RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_BSIZE_2048, dev->promisc, dev->allmulti));
	/* Short frames padded to 64; 15 retries, full-duplex collision distance. */
	wr32(p, REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT(15) | TCTL_COLD(63) | TCTL_RTLC);
	(void)rd32(p, REG_STATUS);
	return 0;
}

static int reset(struct e1k_priv *p, const char *name);
static void mac_setup(struct e1k_priv *p, const struct upmd_ether_addr *mac);

static int e1k_stop(struct upmd_eth_dev *dev)
{
	struct e1k_priv *p = dev->priv;
	int rc = 0;

	if (quiesce(p, dev->name) < 0) {
		/* A device that will not stop mastering is reset: that stops
		 * it for sure, and the rings' mbufs must not be written after
		 * they go back to the pool. */
		rc = reset(p, dev->name);
		if (rc == 0)
			mac_setup(p, &dev->mac);
	}
	if (dev->rxq[0])
		rxq_drain(dev->rxq[0]);
	if (dev->txq[0])
		txq_drain(dev->txq[0]);
	return rc;
}

static void e1k_close(struct upmd_eth_dev *dev)
{
	struct e1k_priv *p = dev->priv;

	/* Leave the device quiet: no interrupts, no DMA, until a new owner resets it. */
	wr32(p, REG_IMC, 0xffffffffu);
	if (quiesce(p, dev->name) < 0)
		(void)reset(p, dev->name);
	upmd_pci_set_bus_master(p->pdev, false);
	p->pdev->driver_data = NULL;
}

static int e1k_link_update(struct upmd_eth_dev *dev, struct upmd_eth_link *link)
{
	struct e1k_priv *p = dev->priv;
	uint32_t status = rd32(p, REG_STATUS), ctrl = rd32(p, REG_CTRL);
	static const uint32_t speeds[4] = { 10, 100, 1000, 1000 };

	link->up = !!(status & STATUS_LU);
	link->full_duplex = !!(status & STATUS_FD);
	link->speed_mbps = link->up ? speeds[(status & STATUS_SPEED_MASK) >> STATUS_SPEED_SHIFT] : 0;
	link->autoneg = !(ctrl & (CTRL_FRCSPD | CTRL_FRCDPLX));
	return 0;
}

static int e1k_promisc_set(struct upmd_eth_dev *dev, bool on)
{
	struct e1k_priv *p = dev->priv;

	wr32(p, REG_RCTL, rctl_filters(rd32(p, REG_RCTL), on, dev->allmulti));
	return 0;
}

static int e1k_allmulti_set(struct upmd_eth_dev *dev, bool on)
{
	struct e1k_priv *p = dev->priv;

	wr32(p, REG_RCTL, rctl_filters(rd32(p, REG_RCTL), dev->promisc, on));
	return 0;
}

static void write_ra0(struct e1k_priv *p, const struct upmd_ether_addr *mac)
{
	const uint8_t *b = mac->addr_bytes;

	/* Invalidate first so the filter never matches half an address. */
	wr32(p, REG_RAH(0), 0);
	wr32(p, REG_RAL(0), (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
	wr32(p, REG_RAH(0), (uint32_t)b[4] | (uint32_t)b[5] << 8 | RAH_AV);
}

static int e1k_mac_set(struct upmd_eth_dev *dev, const struct upmd_ether_addr *mac)
{
	write_ra0(dev->priv, mac);
	return 0;
}

static int e1k_stats_get(struct upmd_eth_dev *dev, struct upmd_eth_stats *s)
{
	const struct upmd_eth_qstats *rx[1] = { dev->rxq[0] }, *tx[1] = { dev->txq[0] };
	struct e1k_priv *p = dev->priv;
	const struct hw_counters *h = &p->hw;

	upmd_eth_qstats_sum(s, rx, dev->nb_rxq ? 1 : 0, tx, dev->nb_txq ? 1 : 0);
	hw_accumulate(p);
	/* Packets and bytes are what the driver handed over; what only the
	 * device saw comes from its counters. */
	s->imissed += h->mpc;
	s->ierrors += h->crcerrs + h->algnerrc + h->rxerrc + h->rlec + h->ruc + h->roc;
	return 0;
}

static int e1k_stats_reset(struct upmd_eth_dev *dev)
{
	struct e1k_priv *p = dev->priv;

	hw_accumulate(p);	/* reading clears the registers */
	memset(&p->hw, 0, sizeof(p->hw));
	if (dev->rxq[0])
		memset(&((struct e1k_rxq *)dev->rxq[0])->st, 0, sizeof(struct upmd_eth_qstats));
	if (dev->txq[0])
		memset(&((struct e1k_txq *)dev->txq[0])->st, 0, sizeof(struct upmd_eth_qstats));
	return 0;
}

/* The device's own counters, as the hardware counted them (its byte counts include the CRC). */
static int e1k_xstats_get(struct upmd_eth_dev *dev, struct upmd_eth_xstat *xs, unsigned n)
{
	struct e1k_priv *p = dev->priv;
	const struct hw_counters *h = &p->hw;
	const struct {
		const char *name;
		uint64_t v;
	} t[] = {
		{ "hw_rx_good_packets", h->gprc },	{ "hw_tx_good_packets", h->gptc },
		{ "hw_rx_good_bytes", h->gorc },	{ "hw_tx_good_bytes", h->gotc },
		{ "hw_rx_total_packets", h->tpr },	{ "hw_tx_total_packets", h->tpt },
		{ "hw_rx_broadcast_packets", h->bprc }, { "hw_rx_multicast_packets", h->mprc },
		{ "hw_tx_broadcast_packets", h->bptc }, { "hw_tx_multicast_packets", h->mptc },
		{ "hw_rx_missed_packets", h->mpc },	{ "hw_rx_no_buffer", h->rnbc },
		{ "hw_rx_crc_errors", h->crcerrs },	{ "hw_rx_alignment_errors", h->algnerrc },
		{ "hw_rx_errors", h->rxerrc },		{ "hw_rx_length_errors", h->rlec },
		{ "hw_rx_undersize_packets", h->ruc },	{ "hw_rx_oversize_packets", h->roc },
		{ "hw_collisions", h->colc },
	};
	unsigned i;

	hw_accumulate(p);
	for (i = 0; i < UPMD_DIM(t) && i < n; i++) {
		snprintf(xs[i].name, sizeof(xs[i].name), "%s", t[i].name);
		xs[i].value = t[i].v;
	}
	return (int)UPMD_DIM(t);
}

static const struct upmd_eth_dev_ops e1k_ops = {
	.infos_get = e1k_infos,
	.rx_queue_setup = e1k_rxq_setup,
	.tx_queue_setup = e1k_txq_setup,
	.rx_queue_release = e1k_rxq_release,
	.tx_queue_release = e1k_txq_release,
	.start = e1k_start,
	.stop = e1k_stop,
	.close = e1k_close,
	.link_update = e1k_link_update,
	.promiscuous_set = e1k_promisc_set,
	.allmulticast_set = e1k_allmulti_set,
	.mac_addr_set = e1k_mac_set,
	.stats_get = e1k_stats_get,
	.stats_reset = e1k_stats_reset,
	.xstats_get = e1k_xstats_get,
};

/* ---- probe ---- */

/* One 16-bit EEPROM word through EERD. @return 0 or -ETIMEDOUT. */
static int eeprom_read(struct e1k_priv *p, unsigned word, uint16_t *out)
{
	int rc;

	wr32(p, REG_EERD, (uint32_t)word << EERD_ADDR_SHIFT | EERD_START);
	rc = poll_reg(p, REG_EERD, EERD_DONE, EERD_DONE, EERD_TIMEOUT_MS);
	if (rc == 0)
		*out = (uint16_t)(rd32(p, REG_EERD) >> EERD_DATA_SHIFT);
	return rc;
}

static bool mac_usable(const struct upmd_ether_addr *a)
{
	static const struct upmd_ether_addr zero;

	return !upmd_is_multicast_ether_addr(a) && memcmp(a, &zero, sizeof(zero)) != 0;
}

/* The address the device came with: RA[0] as the reset loaded it, else words 0-2 of the EEPROM. */
static int read_mac(struct e1k_priv *p, const char *name, struct upmd_ether_addr *mac)
{
	uint32_t ral = rd32(p, REG_RAL(0)), rah = rd32(p, REG_RAH(0));
	unsigned i;

	for (i = 0; i < 4; i++)
		mac->addr_bytes[i] = (uint8_t)(ral >> (8 * i));
	mac->addr_bytes[4] = (uint8_t)rah;
	mac->addr_bytes[5] = (uint8_t)(rah >> 8);
	if ((rah & RAH_AV) && mac_usable(mac))
		return 0;
	for (i = 0; i < 3; i++) {
		uint16_t w = 0;
		int rc = eeprom_read(p, i, &w);

		if (rc < 0) {
			UPMD_ERR(DRV, "%s: RA[0] holds no address and the EEPROM did not answer a read of word %u: "
				 "is this an 82574 with its NVM present?", name, i);
			return rc;
		}
		mac->addr_bytes[2 * i] = (uint8_t)w;
		mac->addr_bytes[2 * i + 1] = (uint8_t)(w >> 8);
	}
	if (!mac_usable(mac)) {
		UPMD_ERR(DRV, "%s: neither RA[0] nor the EEPROM holds a unicast address; "
			 "program one in the NVM (or give QEMU mac=...)", name);
		return -EIO;
	}
	return 0;
}

/* Software reset: quiet the device, assert CTRL.RST, wait for it to clear and the NVM auto-read to finish. */
static int reset(struct e1k_priv *p, const char *name)
{
	int rc;

	wr32(p, REG_IMC, 0xffffffffu);
	quiesce(p, name);
	wr32(p, REG_CTRL, rd32(p, REG_CTRL) | CTRL_RST);
	/* The device does not answer register accesses at once after RST. */
	sleep_us(1000);
	rc = poll_reg(p, REG_CTRL, CTRL_RST, 0, RESET_TIMEOUT_MS);
	if (rc < 0) {
		UPMD_ERR(DRV, "%s: CTRL.RST still set %u ms after a software reset: the device is stuck "
			 "(a function-level reset or a reboot may recover it)", name, RESET_TIMEOUT_MS);
		return rc;
	}
	/* The reset reloads the MAC address from the NVM; wait for that
	 * (an absent NVM never sets AUTO_RD: the EERD read reports it). */
	(void)poll_reg(p, REG_EECD, EECD_AUTO_RD, EECD_AUTO_RD, 10);
	wr32(p, REG_IMC, 0xffffffffu);
	(void)rd32(p, REG_ICR);	/* clear causes latched before the mask */
	return 0;
}

/* After a reset: @mac in RA[0] (the other slots unused), autonegotiated
 * speed and duplex with the link forced up on the MAC side, and the
 * manageability firmware told that a driver owns the device. */
static void mac_setup(struct e1k_priv *p, const struct upmd_ether_addr *mac)
{
	uint32_t ctrl;
	unsigned i;

	write_ra0(p, mac);
	for (i = 1; i < NB_RA; i++)
		wr32(p, REG_RAH(i), 0);
	ctrl = rd32(p, REG_CTRL) & ~(CTRL_FRCSPD | CTRL_FRCDPLX | CTRL_LRST | CTRL_PHY_RST);
	wr32(p, REG_CTRL, ctrl | CTRL_SLU | CTRL_ASDE);
	wr32(p, REG_CTRL_EXT, rd32(p, REG_CTRL_EXT) | CTRL_EXT_DRV_LOAD);
}

static int e1k_probe(struct upmd_pci_device *pdev)
{
	struct upmd_eth_dev *dev;
	struct e1k_priv *p;
	struct upmd_ether_addr mac;
	char macs[UPMD_ETHER_ADDR_FMT_SIZE];
	int rc;

	rc = upmd_pci_map_bar(pdev, 0);
	if (rc < 0) {
		UPMD_ERR(DRV, "%s: cannot map BAR0 (the register space): %s", pdev->name, strerror(-rc));
		return rc;
	}
	if (pdev->bar[0].len < BAR0_MIN_LEN) {
		UPMD_ERR(DRV, "%s: BAR0 is %llu bytes; an 82574 has %u: not the device the id says", pdev->name,
			 (unsigned long long)pdev->bar[0].len, BAR0_MIN_LEN);
		return -ENODEV;
	}
	rc = upmd_eth_dev_allocate(pdev->name, DRV, &e1k_ops, e1k_rx_burst, e1k_tx_burst, sizeof(*p),
				   pdev->numa_node < 0 ? UPMD_SOCKET_ID_ANY : pdev->numa_node, &dev);
	if (rc < 0)
		return rc;
	p = dev->priv;
	p->pdev = pdev;
	p->regs = pdev->bar[0].addr;

	rc = reset(p, pdev->name);
	if (rc < 0)
		goto err_port;
	rc = read_mac(p, pdev->name, &mac);
	if (rc < 0)
		goto err_port;
	mac_setup(p, &mac);
	dev->mac = mac;
	hw_accumulate(p);
	memset(&p->hw, 0, sizeof(p->hw));	/* whatever was counted before us */
	rc = upmd_pci_set_bus_master(pdev, true);
	if (rc < 0) {
		UPMD_ERR(DRV, "%s: cannot enable bus mastering: %s", pdev->name, strerror(-rc));
		goto err_port;
	}
	pdev->driver_data = dev;
	upmd_ether_format_addr(macs, sizeof(macs), &mac);
	UPMD_INFO(DRV, "%s: 82574 port %u, MAC %s, link %s", pdev->name, dev->port_id, macs,
		  rd32(p, REG_STATUS) & STATUS_LU ? "up" : "down");
	return 0;
err_port:
	upmd_eth_dev_destroy(dev);
	return rc;
}

static int e1k_remove(struct upmd_pci_device *pdev)
{
	struct upmd_eth_dev *dev;
	uint16_t port;

	/* The application may have closed the port already. */
	if (upmd_eth_dev_get_port_by_name(pdev->name, &port) == 0) {
		dev = upmd_eth_dev_get(port);
		if (dev && dev->ops == &e1k_ops)
			upmd_eth_dev_destroy(dev);
	}
	pdev->driver_data = NULL;
	return 0;
}

static const struct upmd_pci_id e1k_ids[] = {
	{ UPMD_PCI_DEVICE(0x8086, 0x10d3) },	/* 82574L */
	{ .vendor_id = 0 },
};

static struct upmd_pci_driver e1k_driver = {
	.name = DRV,
	.id_table = e1k_ids,
	.probe = e1k_probe,
	.remove = e1k_remove,
};

UPMD_PCI_REGISTER_DRIVER(e1k_driver)
