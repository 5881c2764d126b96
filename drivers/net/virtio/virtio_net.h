/* virtio-net PMD internals: the virtio 1.x PCI transport's registers, split virtqueue layouts, and the queue state the bursts use. */
#ifndef UPMD_VIRTIO_NET_H
#define UPMD_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <upmd/ethdev_driver.h>
#include <upmd/memory.h>
#include <upmd/pci.h>

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_NET_MODERN 0x1041	/* 0x1040 + device type 1 */
#define VIRTIO_PCI_DEVICE_NET_TRANSITIONAL 0x1000

/* virtio_pci_cap.cfg_type */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* struct virtio_pci_common_cfg, by offset */
#define VIRTIO_COMMON_DFSELECT 0x00
#define VIRTIO_COMMON_DF 0x04
#define VIRTIO_COMMON_GFSELECT 0x08
#define VIRTIO_COMMON_GF 0x0c
#define VIRTIO_COMMON_MSIX 0x10
#define VIRTIO_COMMON_NUMQ 0x12
#define VIRTIO_COMMON_STATUS 0x14
#define VIRTIO_COMMON_CFGGENERATION 0x15
#define VIRTIO_COMMON_Q_SELECT 0x16
#define VIRTIO_COMMON_Q_SIZE 0x18
#define VIRTIO_COMMON_Q_MSIX 0x1a
#define VIRTIO_COMMON_Q_ENABLE 0x1c
#define VIRTIO_COMMON_Q_NOFF 0x1e
#define VIRTIO_COMMON_Q_DESC 0x20
#define VIRTIO_COMMON_Q_AVAIL 0x28
#define VIRTIO_COMMON_Q_USED 0x30
#define VIRTIO_MSI_NO_VECTOR 0xffff

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_BIT(b) (1ULL << (b))
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* struct virtio_net_config, by offset */
#define VIRTIO_NET_CFG_MAC 0
#define VIRTIO_NET_CFG_STATUS 6
#define VIRTIO_NET_CFG_MAX_PAIRS 8
#define VIRTIO_NET_S_LINK_UP 1

/* The control queue */
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_CTRL_MAX_DATA 64

#define VIRTIO_MAX_PAIRS UPMD_MAX_QUEUES_PER_PORT

/* Split virtqueues (little-endian fields: upmd runs on little-endian CPUs) */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};

_Static_assert(sizeof(struct vring_desc) == 16, "virtq_desc is 16 bytes");
_Static_assert(sizeof(struct vring_used_elem) == 8, "virtq_used_elem is 8 bytes");

/* struct virtio_net_hdr with VIRTIO_F_VERSION_1: num_buffers is always there. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

#define VIRTIO_NET_HDR_SIZE 12
_Static_assert(sizeof(struct virtio_net_hdr) == VIRTIO_NET_HDR_SIZE, "virtio_net_hdr v1 is 12 bytes");
_Static_assert(UPMD_PKTMBUF_HEADROOM >= VIRTIO_NET_HDR_SIZE, "the RX header goes into the headroom");

struct virtio_hw;

/*
 * One virtqueue. The fields the bursts touch come first. RX: descriptor i
 * always holds the buffer cookie[i] (one descriptor a buffer), so a used
 * entry's id names the mbuf and the slot to refill. TX: chains come from
 * a free list; cookie[head] is the packet, ndesc[head] its length.
 */
struct virtqueue {
	struct upmd_eth_qstats st;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct upmd_mbuf **cookie;
	uint16_t *ndesc;
	volatile uint8_t *notify;	/* this queue's doorbell */
	uint16_t size, mask;
	uint16_t avail_idx;		/* shadow of avail->idx */
	uint16_t used_last;		/* next used entry to look at */
	uint16_t free_head, num_free;	/* TX descriptor free list */
	uint16_t index;			/* virtqueue number */
	uint16_t port;
	bool mrg;			/* RX: merged buffers (num_buffers may be > 1) */
	struct upmd_mempool *mp;	/* RX refills */
	/* cold */
	struct virtio_hw *hw;
	const struct upmd_memzone *mz;
	size_t hdr_off;			/* TX headers / control buffer, in mz */
	uint64_t desc_iova, avail_iova, used_iova;
} __upmd_cache_aligned;

struct virtio_hw {
	struct upmd_pci_device *pdev;
	volatile uint8_t *common, *notify_base, *isr, *devcfg;
	uint32_t notify_mult, notify_len;
	uint64_t features;
	uint16_t max_pairs, max_qsize;
	uint16_t port_id;
	bool started;
	struct virtqueue *cvq;
	struct virtqueue *rxq[VIRTIO_MAX_PAIRS], *txq[VIRTIO_MAX_PAIRS];
};

#define VRING_USED_F_NO_NOTIFY 1

/* Publish what was added to the avail ring and ring the doorbell, once. */
static inline void vq_kick(struct virtqueue *vq)
{
	/* Release: the descriptors and ring entries are written before the
	 * device can see the new index. */
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	/* The index must be visible before the device looks at the flag we
	 * read next, and before the doorbell's MMIO write makes it look:
	 * a full fence orders our store before both. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY))
		*(volatile uint16_t *)(volatile void *)vq->notify = vq->index;
}

/* Post an empty mbuf on RX descriptor @id; the header lands in its headroom. */
static inline void rx_post(struct virtqueue *vq, uint16_t id, struct upmd_mbuf *m)
{
	vq->cookie[id] = m;
	vq->desc[id].addr = m->buf_iova + m->data_off - VIRTIO_NET_HDR_SIZE;
	vq->desc[id].len = (uint32_t)(m->buf_len - m->data_off + VIRTIO_NET_HDR_SIZE);
	vq->desc[id].flags = VRING_DESC_F_WRITE;
	vq->avail->ring[vq->avail_idx & vq->mask] = id;
	vq->avail_idx++;
}

uint16_t virtio_recv_pkts(void *queue, struct upmd_mbuf **pkts, uint16_t n);
uint16_t virtio_xmit_pkts(void *queue, struct upmd_mbuf **pkts, uint16_t n);

#endif /* UPMD_VIRTIO_NET_H */
