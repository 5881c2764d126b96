/* virtio-net PMD: the modern virtio 1.x PCI transport through the vfio cdev, split virtqueues on mbuf IOVAs from the one IOAS, the control queue, several queue pairs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/pci.h>

#include "virtio_net.h"

#define DRV "net_virtio"

/* ---- register access ---- */

static inline uint8_t rd8(const volatile uint8_t *b, unsigned off)
{
	return *(const volatile uint8_t *)(b + off);
}

static inline uint16_t rd16(const volatile uint8_t *b, unsigned off)
{
	return *(const volatile uint16_t *)(const volatile void *)(b + off);
}

static inline uint32_t rd32(const volatile uint8_t *b, unsigned off)
{
	return upmd_mmio_read32(b + off);
}

static inline void wr8(volatile uint8_t *b, unsigned off, uint8_t v)
{
	*(volatile uint8_t *)(b + off) = v;
}

static inline void wr16(volatile uint8_t *b, unsigned off, uint16_t v)
{
	*(volatile uint16_t *)(volatile void *)(b + off) = v;
}

static inline void wr32(volatile uint8_t *b, unsigned off, uint32_t v)
{
	upmd_mmio_write32(b + off, v);
}

/* The spec: 64-bit fields as two 32-bit accesses, low half first. */
static inline void wr64(volatile uint8_t *b, unsigned off, uint64_t v)
{
	wr32(b, off, (uint32_t)v);
	wr32(b, off + 4, (uint32_t)(v >> 32));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the PCI capabilities ---- */

static int find_caps(struct virtio_hw *hw)
{
	struct upmd_pci_device *pdev = hw->pdev;
	uint8_t pos = 0, seen = 0;
	uint16_t status = 0;
	unsigned hops = 0;

	if (upmd_pci_cfg_read(pdev, &status, 2, 0x06) != 2 || !(status & 0x10) ||
	    upmd_pci_cfg_read(pdev, &pos, 1, 0x34) != 1) {
		UPMD_ERR(DRV, "%s: no PCI capability list: not a modern virtio device", pdev->name);
		return -ENODEV;
	}
	for (pos &= 0xfc; pos >= 0x40 && hops < 48; hops++) {
		uint8_t cap[20];
		uint32_t off, len;
		uint8_t type, bar;
		int rc;

		if (upmd_pci_cfg_read(pdev, cap, sizeof(cap), pos) != (int)sizeof(cap))
			break;
		if (cap[0] != 0x09)	/* vendor specific: virtio's */
			goto next;
		type = cap[3];
		bar = cap[4];
		memcpy(&off, cap + 8, 4);
		memcpy(&len, cap + 12, 4);
		if (type < VIRTIO_PCI_CAP_COMMON_CFG || type > VIRTIO_PCI_CAP_DEVICE_CFG || (seen & (1u << type)))
			goto next;	/* PCI_CFG access and repeats: the first of each kind is the one to use */
		if (bar >= UPMD_PCI_MAX_BARS) {
			UPMD_ERR(DRV, "%s: virtio capability %u names BAR %u", pdev->name, type, bar);
			return -ENODEV;
		}
		rc = upmd_pci_map_bar(pdev, bar);
		if (rc < 0 || !pdev->bar[bar].addr || (uint64_t)off + len > pdev->bar[bar].len) {
			UPMD_ERR(DRV, "%s: virtio capability %u: BAR %u offset 0x%x length 0x%x cannot be mapped (%s)",
				 pdev->name, type, bar, off, len, rc < 0 ? strerror(-rc) : "outside the BAR");
			return rc < 0 ? rc : -ENODEV;
		}
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			hw->common = (uint8_t *)pdev->bar[bar].addr + off;
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			hw->notify_base = (uint8_t *)pdev->bar[bar].addr + off;
			hw->notify_len = len;
			memcpy(&hw->notify_mult, cap + 16, 4);
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			hw->isr = (uint8_t *)pdev->bar[bar].addr + off;
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			hw->devcfg = (uint8_t *)pdev->bar[bar].addr + off;
			break;
		}
		seen |= (uint8_t)(1u << type);
next:
		pos = cap[1] & 0xfc;
	}
	if (!hw->common || !hw->notify_base || !hw->devcfg) {
		UPMD_ERR(DRV, "%s: virtio capabilities missing (common %s, notify %s, device %s): a legacy-only device? "
			 "upmd drives modern virtio (start QEMU's device with disable-legacy=on or a modern machine type)",
			 pdev->name, hw->common ? "ok" : "absent", hw->notify_base ? "ok" : "absent",
			 hw->devcfg ? "ok" : "absent");
		return -ENODEV;
	}
	return 0;
}

/* ---- status and features ---- */

static void set_status(struct virtio_hw *hw, uint8_t bits)
{
	wr8(hw->common, VIRTIO_COMMON_STATUS, (uint8_t)(rd8(hw->common, VIRTIO_COMMON_STATUS) | bits));
}

/* Reset the device: it stops all DMA and forgets the queues. */
static int dev_reset(struct virtio_hw *hw)
{
	uint64_t deadline = now_ms() + 1000;

	wr8(hw->common, VIRTIO_COMMON_STATUS, 0);
	/* The spec: the reset is done when status reads 0 again. */
	while (rd8(hw->common, VIRTIO_COMMON_STATUS) != 0) {
		if (now_ms() > deadline) {
			UPMD_ERR(DRV, "%s: the device did not finish its reset in 1 s", hw->pdev->name);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static uint64_t dev_features(struct virtio_hw *hw)
{
	uint64_t f;

	wr32(hw->common, VIRTIO_COMMON_DFSELECT, 0);
	f = rd32(hw->common, VIRTIO_COMMON_DF);
	wr32(hw->common, VIRTIO_COMMON_DFSELECT, 1);
	f |= (uint64_t)rd32(hw->common, VIRTIO_COMMON_DF) << 32;
	return f;
}

/* Reset, acknowledge, agree on features. */
static int negotiate(struct virtio_hw *hw)
{
	const uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) |
			      VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
			      VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
			      VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) | VIRTIO_BIT(VIRTIO_NET_F_MQ) |
			      VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
	uint64_t offered;
	int rc;

	rc = dev_reset(hw);
	if (rc < 0)
		return rc;
	set_status(hw, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(hw, VIRTIO_STATUS_DRIVER);
	offered = dev_features(hw);
	if (!(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		UPMD_ERR(DRV, "%s: the device does not offer VIRTIO_F_VERSION_1: upmd drives virtio 1.x devices only",
			 hw->pdev->name);
		goto fail;
	}
	if (!(offered & VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM))) {
		/* Without it the device uses physical addresses and bypasses
		 * the IOMMU, so the IOVAs upmd gives it would be wrong. */
		UPMD_ERR(DRV, "%s: the device does not offer VIRTIO_F_ACCESS_PLATFORM, so its DMA would bypass the IOMMU: "
			 "start QEMU's device with iommu_platform=on", hw->pdev->name);
		goto fail;
	}
	hw->features = offered & want;
	/* Options that need the control queue go with it. */
	if (!(hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)))
		hw->features &= ~(VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) | VIRTIO_BIT(VIRTIO_NET_F_MQ) |
				  VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR));
	wr32(hw->common, VIRTIO_COMMON_GFSELECT, 0);
	wr32(hw->common, VIRTIO_COMMON_GF, (uint32_t)hw->features);
	wr32(hw->common, VIRTIO_COMMON_GFSELECT, 1);
	wr32(hw->common, VIRTIO_COMMON_GF, (uint32_t)(hw->features >> 32));
	set_status(hw, VIRTIO_STATUS_FEATURES_OK);
	if (!(rd8(hw->common, VIRTIO_COMMON_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
		UPMD_ERR(DRV, "%s: the device refused features 0x%" PRIx64 " (it offered 0x%" PRIx64 ")", hw->pdev->name,
			 hw->features, offered);
		goto fail;
	}
	return 0;
fail:
	set_status(hw, VIRTIO_STATUS_FAILED);
	return -ENOTSUP;
}

/* ---- virtqueues ---- */

static size_t vq_bytes(uint16_t n, size_t *avail_off, size_t *used_off)
{
	size_t desc = (size_t)n * sizeof(struct vring_desc);
	size_t avail = 4 + 2 * (size_t)n + 2;

	*avail_off = desc;
	*used_off = UPMD_ALIGN_UP(desc + avail, (size_t)64);
	return *used_off + UPMD_ALIGN_UP(4 + 8 * (size_t)n + 2, (size_t)64);
}

/* A virtqueue's memory (rings, and room for TX headers) and shadow state;
 * the device is told about it only when the port starts. */
static int vq_create(struct virtio_hw *hw, uint16_t index, uint16_t want, int socket_id, struct virtqueue **out)
{
	struct virtqueue *vq;
	size_t avail_off, used_off, bytes;
	char name[32];
	uint16_t max, n;
	int rc;

	wr16(hw->common, VIRTIO_COMMON_Q_SELECT, index);
	max = rd16(hw->common, VIRTIO_COMMON_Q_SIZE);
	if (!max) {
		UPMD_ERR(DRV, "%s: the device has no virtqueue %u", hw->pdev->name, index);
		return -EINVAL;
	}
	/* A power of two (split queues need not be, but the masks want it), at most the device's. */
	for (n = 1; n * 2 <= UPMD_MIN(want ? want : max, max); n *= 2)
		;
	if (posix_memalign((void **)&vq, UPMD_CACHE_LINE_SIZE, sizeof(*vq)))
		return -ENOMEM;
	memset(vq, 0, sizeof(*vq));
	vq->cookie = calloc(n, sizeof(*vq->cookie));
	vq->ndesc = calloc(n, sizeof(*vq->ndesc));
	if (!vq->cookie || !vq->ndesc) {
		rc = -ENOMEM;
		goto err;
	}
	bytes = vq_bytes(n, &avail_off, &used_off);
	/* TX headers that cannot go into an mbuf's headroom: one per descriptor. */
	vq->hdr_off = UPMD_ALIGN_UP(bytes, (size_t)64);
	bytes = vq->hdr_off + (size_t)n * VIRTIO_NET_HDR_SIZE;
	snprintf(name, sizeof(name), "virtio_%s_q%u", hw->pdev->name, index);
	rc = upmd_memzone_reserve(name, bytes, socket_id, 4096, &vq->mz);
	if (rc < 0) {
		UPMD_ERR(DRV, "%s: no memory for virtqueue %u (%zu bytes): %s", hw->pdev->name, index, bytes,
			 strerror(-rc));
		goto err;
	}
	if (vq->mz->iova == UPMD_BAD_IOVA) {
		UPMD_ERR(DRV, "%s: virtqueue memory has no IOVA: the EAL has no IOAS (is the device attached?)",
			 hw->pdev->name);
		rc = -ENODEV;
		goto err;
	}
	memset(vq->mz->addr, 0, bytes);
	vq->hw = hw;
	vq->index = index;
	vq->size = n;
	vq->mask = (uint16_t)(n - 1);
	vq->desc = vq->mz->addr;
	vq->avail = (struct vring_avail *)(void *)((char *)vq->mz->addr + avail_off);
	vq->used = (struct vring_used *)(void *)((char *)vq->mz->addr + used_off);
	vq->desc_iova = vq->mz->iova;
	vq->avail_iova = vq->mz->iova + avail_off;
	vq->used_iova = vq->mz->iova + used_off;
	*out = vq;
	return 0;
err:
	if (vq->mz)
		upmd_memzone_free(vq->mz);
	free(vq->cookie);
	free(vq->ndesc);
	free(vq);
	return rc;
}

/* Back to empty: a free list of every descriptor, no mbufs. */
static void vq_reset_state(struct virtqueue *vq)
{
	uint16_t i;

	memset(vq->mz->addr, 0, vq->hdr_off);
	for (i = 0; i < vq->size; i++)
		vq->desc[i].next = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->num_free = vq->size;
	vq->avail_idx = 0;
	vq->used_last = 0;
	/* Poll mode: no interrupts, please. */
	vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
}

/* Give every mbuf the queue holds back to its pool. */
static void vq_drop_mbufs(struct virtqueue *vq)
{
	uint16_t i;

	for (i = 0; i < vq->size; i++)
		if (vq->cookie[i]) {
			upmd_pktmbuf_free(vq->cookie[i]);
			vq->cookie[i] = NULL;
		}
}

static void vq_free(struct virtqueue *vq)
{
	if (!vq)
		return;
	vq_drop_mbufs(vq);
	upmd_memzone_free(vq->mz);
	free(vq->cookie);
	free(vq->ndesc);
	free(vq);
}

/* Tell the device where the queue is and enable it (before DRIVER_OK). */
static int vq_program(struct virtqueue *vq)
{
	struct virtio_hw *hw = vq->hw;
	uint16_t off;

	wr16(hw->common, VIRTIO_COMMON_Q_SELECT, vq->index);
	wr16(hw->common, VIRTIO_COMMON_Q_SIZE, vq->size);
	wr16(hw->common, VIRTIO_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	wr64(hw->common, VIRTIO_COMMON_Q_DESC, vq->desc_iova);
	wr64(hw->common, VIRTIO_COMMON_Q_AVAIL, vq->avail_iova);
	wr64(hw->common, VIRTIO_COMMON_Q_USED, vq->used_iova);
	off = rd16(hw->common, VIRTIO_COMMON_Q_NOFF);
	if ((uint64_t)off * hw->notify_mult + 2 > hw->notify_len) {
		UPMD_ERR(DRV, "%s: queue %u's notify offset %u is outside the notify area", hw->pdev->name, vq->index,
			 off);
		return -EIO;
	}
	vq->notify = hw->notify_base + (size_t)off * hw->notify_mult;
	wr16(hw->common, VIRTIO_COMMON_Q_ENABLE, 1);
	return 0;
}

/* ---- the control queue ---- */

static int ctrl_cmd(struct virtio_hw *hw, uint8_t cls, uint8_t cmd, const void *data, uint16_t len)
{
	struct virtqueue *vq = hw->cvq;
	uint64_t iova, deadline;
	uint8_t *buf;
	uint16_t used;

	if (!vq)
		return -ENOTSUP;
	buf = (uint8_t *)vq->mz->addr + vq->hdr_off;
	iova = vq->mz->iova + vq->hdr_off;
	if (len > VIRTIO_CTRL_MAX_DATA)
		return -EINVAL;
	/* [class, cmd] [data] [ack], in the queue's header area. */
	buf[0] = cls;
	buf[1] = cmd;
	memcpy(buf + 2, data, len);
	buf[2 + len] = 0xff;
	vq->desc[0] = (struct vring_desc){ iova, 2, VRING_DESC_F_NEXT, 1 };
	vq->desc[1] = (struct vring_desc){ iova + 2, len, VRING_DESC_F_NEXT, 2 };
	vq->desc[2] = (struct vring_desc){ iova + 2 + len, 1, VRING_DESC_F_WRITE, 0 };
	vq->avail->ring[vq->avail_idx & vq->mask] = 0;
	vq->avail_idx++;
	vq_kick(vq);
	for (deadline = now_ms() + 2000;;) {
		used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
		if (used != vq->used_last)
			break;
		if (rd8(hw->common, VIRTIO_COMMON_STATUS) & VIRTIO_STATUS_NEEDS_RESET) {
			UPMD_ERR(DRV, "%s: the device needs a reset (it found an error in a queue)", hw->pdev->name);
			return -EIO;
		}
		if (now_ms() > deadline) {
			UPMD_ERR(DRV, "%s: control command %u/%u: no answer in 2 s", hw->pdev->name, cls, cmd);
			return -ETIMEDOUT;
		}
	}
	vq->used_last = used;
	if (*(volatile uint8_t *)(buf + 2 + len) != VIRTIO_NET_OK) {
		UPMD_ERR(DRV, "%s: the device refused control command class %u command %u", hw->pdev->name, cls, cmd);
		return -EIO;
	}
	return 0;
}

/* ---- ethdev ops ---- */

static struct virtio_hw *hw_of(struct upmd_eth_dev *dev)
{
	return dev->priv;
}

static void vn_infos(struct upmd_eth_dev *dev, struct upmd_eth_dev_info *info)
{
	struct virtio_hw *hw = hw_of(dev);

	info->max_rx_queues = hw->max_pairs;
	info->max_tx_queues = hw->max_pairs;
	info->rx_desc_min = info->tx_desc_min = 8;
	info->rx_desc_max = info->tx_desc_max = hw->max_qsize;
	info->max_mtu = 9000;
	info->max_rx_pktlen = 9000 + UPMD_ETHER_HDR_LEN;
	info->rx_offload_capa = (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) ? UPMD_ETH_RX_OFFLOAD_SCATTER : 0;
	info->tx_offload_capa = UPMD_ETH_TX_OFFLOAD_MULTI_SEGS;
	info->numa_node = hw->pdev->numa_node;
	info->speed_capa_mbps = 10000;
}

static int vn_rxq_setup(struct upmd_eth_dev *dev, uint16_t q, uint16_t nb_desc, int socket_id,
			struct upmd_mempool *mp, void **out)
{
	struct virtio_hw *hw = hw_of(dev);
	uint16_t room = upmd_pktmbuf_data_room_size(mp);
	struct virtqueue *vq;
	int rc;

	/* The header goes into the headroom; without merged buffers one
	 * buffer must hold a whole frame. */
	if (room < UPMD_PKTMBUF_HEADROOM + 64 ||
	    (!(hw->features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) &&
	     room < UPMD_PKTMBUF_HEADROOM + dev->mtu + UPMD_ETHER_HDR_LEN)) {
		UPMD_ERR(DRV, "%s: mbufs of pool %s have %u bytes of buffer; this port needs %u (headroom %u and %s)",
			 dev->name, mp->name, room,
			 UPMD_PKTMBUF_HEADROOM + ((hw->features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) ? 64 : dev->mtu + 14),
			 UPMD_PKTMBUF_HEADROOM,
			 (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) ? "64 of data" : "a whole frame");
		return -EINVAL;
	}
	if (hw->rxq[q]) {
		vq_free(hw->rxq[q]);
		hw->rxq[q] = NULL;
	}
	rc = vq_create(hw, (uint16_t)(2 * q), nb_desc, socket_id, &vq);
	if (rc < 0)
		return rc;
	vq->mp = mp;
	vq->port = dev->port_id;
	vq->mrg = (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) != 0;
	hw->rxq[q] = vq;
	*out = vq;
	return 0;
}

static int vn_txq_setup(struct upmd_eth_dev *dev, uint16_t q, uint16_t nb_desc, int socket_id, void **out)
{
	struct virtio_hw *hw = hw_of(dev);
	struct virtqueue *vq;
	int rc;

	if (hw->txq[q]) {
		vq_free(hw->txq[q]);
		hw->txq[q] = NULL;
	}
	rc = vq_create(hw, (uint16_t)(2 * q + 1), nb_desc, socket_id, &vq);
	if (rc < 0)
		return rc;
	vq->port = dev->port_id;
	hw->txq[q] = vq;
	*out = vq;
	return 0;
}

static void vn_queue_release(struct upmd_eth_dev *dev, void *queue)
{
	struct virtio_hw *hw = hw_of(dev);
	unsigned q;

	for (q = 0; q < VIRTIO_MAX_PAIRS; q++) {
		if (hw->rxq[q] == queue)
			hw->rxq[q] = NULL;
		if (hw->txq[q] == queue)
			hw->txq[q] = NULL;
	}
	vq_free(queue);
}

static int ctrl_filters(struct virtio_hw *hw, struct upmd_eth_dev *dev)
{
	uint8_t on;
	int rc = 0;

	if (!(hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX)))
		return 0;
	on = dev->promisc;
	rc = ctrl_cmd(hw, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1);
	on = dev->allmulti;
	if (rc == 0)
		rc = ctrl_cmd(hw, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1);
	return rc;
}

static int vn_start(struct upmd_eth_dev *dev)
{
	struct virtio_hw *hw = hw_of(dev);
	uint16_t pairs = UPMD_MAX(dev->nb_rxq, dev->nb_txq), q, i;
	int rc;

	rc = negotiate(hw);
	if (rc < 0)
		return rc;
	if (hw->cvq) {
		vq_reset_state(hw->cvq);
		rc = vq_program(hw->cvq);
		if (rc < 0)
			goto fail;
	}
	for (q = 0; q < dev->nb_rxq; q++) {
		struct virtqueue *vq = hw->rxq[q];

		vq_reset_state(vq);
		vq_drop_mbufs(vq);
		/* Fill it: descriptor i is always slot i's buffer. */
		for (i = 0; i < vq->size; i++) {
			struct upmd_mbuf *m = upmd_pktmbuf_alloc(vq->mp);

			if (!m) {
				UPMD_ERR(DRV, "%s: RX queue %u: pool %s ran out filling %u descriptors: give the pool more mbufs",
					 dev->name, q, vq->mp->name, vq->size);
				rc = -ENOMEM;
				goto fail;
			}
			rx_post(vq, i, m);
		}
		vq->num_free = 0;
		__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
		rc = vq_program(vq);
		if (rc < 0)
			goto fail;
	}
	for (q = 0; q < dev->nb_txq; q++) {
		vq_reset_state(hw->txq[q]);
		vq_drop_mbufs(hw->txq[q]);
		rc = vq_program(hw->txq[q]);
		if (rc < 0)
			goto fail;
	}
	set_status(hw, VIRTIO_STATUS_DRIVER_OK);
	if (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MQ)) {
		uint16_t p = pairs;

		rc = ctrl_cmd(hw, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p, 2);
		if (rc < 0)
			goto fail;
	} else if (pairs > 1) {
		UPMD_ERR(DRV, "%s: %u queue pairs asked but the device has one", dev->name, pairs);
		rc = -EINVAL;
		goto fail;
	}
	rc = ctrl_filters(hw, dev);
	if (rc == 0 && (hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR)))
		rc = ctrl_cmd(hw, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, dev->mac.addr_bytes, 6);
	if (rc < 0)
		goto fail;
	/* The RX buffers are there: tell the device. */
	for (q = 0; q < dev->nb_rxq; q++)
		vq_kick(hw->rxq[q]);
	hw->started = true;
	return 0;
fail:
	dev_reset(hw);
	for (q = 0; q < dev->nb_rxq; q++)
		vq_drop_mbufs(hw->rxq[q]);
	return rc;
}

static int vn_stop(struct upmd_eth_dev *dev)
{
	struct virtio_hw *hw = hw_of(dev);
	unsigned q;
	int rc;

	/* A reset stops the device's DMA; then the mbufs are ours again. */
	rc = dev_reset(hw);
	for (q = 0; q < dev->nb_rxq; q++)
		if (hw->rxq[q])
			vq_drop_mbufs(hw->rxq[q]);
	for (q = 0; q < dev->nb_txq; q++)
		if (hw->txq[q])
			vq_drop_mbufs(hw->txq[q]);
	hw->started = false;
	return rc;
}

static void vn_close(struct upmd_eth_dev *dev)
{
	struct virtio_hw *hw = hw_of(dev);

	dev_reset(hw);
	vq_free(hw->cvq);
	hw->cvq = NULL;
	upmd_pci_set_bus_master(hw->pdev, false);
	hw->pdev->driver_data = NULL;
}

static int vn_link(struct upmd_eth_dev *dev, struct upmd_eth_link *link)
{
	struct virtio_hw *hw = hw_of(dev);

	link->up = (hw->features & VIRTIO_BIT(VIRTIO_NET_F_STATUS)) ?
			   (rd16(hw->devcfg, VIRTIO_NET_CFG_STATUS) & VIRTIO_NET_S_LINK_UP) != 0 :
			   1;
	link->full_duplex = 1;
	link->speed_mbps = link->up ? 10000 : 0;
	return 0;
}

static int vn_promisc(struct upmd_eth_dev *dev, bool on)
{
	struct virtio_hw *hw = hw_of(dev);
	uint8_t v = on;

	if (!(hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX)))
		return on ? 0 : -ENOTSUP;	/* without filters the device takes everything */
	return hw->started ? ctrl_cmd(hw, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &v, 1) : 0;
}

static int vn_allmulti(struct upmd_eth_dev *dev, bool on)
{
	struct virtio_hw *hw = hw_of(dev);
	uint8_t v = on;

	if (!(hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX)))
		return on ? 0 : -ENOTSUP;
	return hw->started ? ctrl_cmd(hw, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &v, 1) : 0;
}

static int vn_mac_set(struct upmd_eth_dev *dev, const struct upmd_ether_addr *mac)
{
	struct virtio_hw *hw = hw_of(dev);

	if (!(hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR)))
		return -ENOTSUP;
	return hw->started ? ctrl_cmd(hw, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac->addr_bytes, 6) : 0;
}



static int vn_xstats(struct upmd_eth_dev *dev, struct upmd_eth_xstat *xs, unsigned n)
{
	struct virtio_hw *hw = hw_of(dev);
	const struct {
		const char *name;
		uint64_t v;
	} x[] = {
		{ "virtio_features", hw->features },
		{ "virtio_device_status", rd8(hw->common, VIRTIO_COMMON_STATUS) },
		{ "virtio_max_queue_pairs", hw->max_pairs },
	};
	unsigned i;

	for (i = 0; i < UPMD_DIM(x) && i < n; i++) {
		snprintf(xs[i].name, sizeof(xs[i].name), "%s", x[i].name);
		xs[i].value = x[i].v;
	}
	return (int)UPMD_DIM(x);
}

static const struct upmd_eth_dev_ops vn_ops = {
	.infos_get = vn_infos,
	.rx_queue_setup = vn_rxq_setup,
	.tx_queue_setup = vn_txq_setup,
	.rx_queue_release = vn_queue_release,
	.tx_queue_release = vn_queue_release,
	.start = vn_start,
	.stop = vn_stop,
	.close = vn_close,
	.link_update = vn_link,
	.promiscuous_set = vn_promisc,
	.allmulticast_set = vn_allmulti,
	.mac_addr_set = vn_mac_set,
	.stats_get = upmd_eth_queue_stats_get,
	.stats_reset = upmd_eth_queue_stats_reset,
	.xstats_get = vn_xstats,
};

/* ---- probe / remove ---- */

static int vn_probe(struct upmd_pci_device *pdev)
{
	struct upmd_eth_dev *dev;
	struct virtio_hw *hw, tmp = { .pdev = pdev };
	uint16_t nq, ctrl_index, i;
	int rc;

	rc = find_caps(&tmp);
	if (rc < 0)
		return rc;
	rc = negotiate(&tmp);
	if (rc < 0)
		return rc;
	rc = upmd_pci_set_bus_master(pdev, true);
	if (rc < 0)
		return rc;
	rc = upmd_eth_dev_allocate(pdev->name, DRV, &vn_ops, virtio_recv_pkts, virtio_xmit_pkts, sizeof(*hw),
				   pdev->numa_node, &dev);
	if (rc < 0)
		goto err_bm;
	hw = dev->priv;
	*hw = tmp;
	hw->port_id = dev->port_id;
	nq = rd16(hw->common, VIRTIO_COMMON_NUMQ);
	hw->max_pairs = (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MQ)) ? rd16(hw->devcfg, VIRTIO_NET_CFG_MAX_PAIRS) : 1;
	if (hw->max_pairs < 1 || hw->max_pairs > VIRTIO_MAX_PAIRS)
		hw->max_pairs = (uint16_t)UPMD_MIN(UPMD_MAX(hw->max_pairs, 1), VIRTIO_MAX_PAIRS);
	hw->max_qsize = 0;
	for (i = 0; i < 2 * hw->max_pairs && i < nq; i++) {
		wr16(hw->common, VIRTIO_COMMON_Q_SELECT, i);
		hw->max_qsize = UPMD_MAX(hw->max_qsize, rd16(hw->common, VIRTIO_COMMON_Q_SIZE));
	}
	if (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MAC))
		for (i = 0; i < 6; i++)
			dev->mac.addr_bytes[i] = rd8(hw->devcfg, VIRTIO_NET_CFG_MAC + i);
	else
		dev->mac = (struct upmd_ether_addr){ { 0x02, 0, 0, 0, 0x02, (uint8_t)dev->port_id } };
	if (hw->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)) {
		ctrl_index = (hw->features & VIRTIO_BIT(VIRTIO_NET_F_MQ)) ? (uint16_t)(2 * hw->max_pairs) : 2;
		rc = vq_create(hw, ctrl_index, 64, pdev->numa_node, &hw->cvq);
		if (rc < 0)
			goto err_dev;
	}
	dev_reset(hw);
	pdev->driver_data = dev;
	{
		char mac[UPMD_ETHER_ADDR_FMT_SIZE];

		upmd_ether_format_addr(mac, sizeof(mac), &dev->mac);
		UPMD_INFO(DRV, "%s: port %u, MAC %s, %u queue pair(s) of up to %u descriptors, features 0x%" PRIx64,
			  pdev->name, dev->port_id, mac, hw->max_pairs, hw->max_qsize, hw->features);
	}
	return 0;
err_dev:
	upmd_eth_dev_destroy(dev);
err_bm:
	dev_reset(&tmp);
	upmd_pci_set_bus_master(pdev, false);
	return rc;
}

static int vn_remove(struct upmd_pci_device *pdev)
{
	struct upmd_eth_dev *dev = pdev->driver_data;

	/* An application may have closed the port (vn_close cleared this). */
	if (dev)
		upmd_eth_dev_destroy(dev);
	return 0;
}

static const struct upmd_pci_id vn_ids[] = {
	{ UPMD_PCI_DEVICE(VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_NET_MODERN) },
	{ UPMD_PCI_DEVICE(VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_NET_TRANSITIONAL) },
	{ .vendor_id = 0 },
};

static struct upmd_pci_driver vn_driver = {
	.name = DRV,
	.id_table = vn_ids,
	.probe = vn_probe,
	.remove = vn_remove,
};

UPMD_PCI_REGISTER_DRIVER(vn_driver)
