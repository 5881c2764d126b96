/* Device model of a modern (virtio 1.x, modern-only) virtio-net PCI function laid out like QEMU's virtio-net-pci, with split virtqueues, a control queue and a cross-connected peer port. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_private.h"

/*
 * What the driver sees (virtio 1.2, "Virtio Over PCI Bus" and "Network
 * Device"; layout as QEMU 7.2's virtio-net-pci with disable-legacy=on and
 * iommu_platform=on):
 *
 *  - 1af4:1041, subsystem 1af4:0001, class 020000, revision 1; no BAR0.
 *  - BAR4, 64-bit prefetchable, 16 KiB, trapped: common config at 0x0,
 *    ISR at 0x1000, device config at 0x2000, notifications at 0x3000
 *    (notify_off_multiplier 4, queue_notify_off = queue index), each
 *    described by a vendor capability (0x40, 0x50, 0x60, 0x70) with
 *    QEMU's region length 0x1000.
 *  - BAR1, 4 KiB: the MSI-X table at 0 and PBA at 0x800 (plain memory:
 *    interrupts are delivered through VFIO_DEVICE_SET_IRQS).
 *  - MSI-X with 2 * queue pairs + 2 vectors (QEMU's count), INTA#.
 *
 * Not modelled: VIRTIO_PCI_CAP_PCI_CFG (the config-space window onto the
 * BARs; QEMU has it at 0x84 and so puts MSI-X at 0x98, here MSI-X is at
 * 0x84), indirect descriptors, event index, packed rings, offloads.
 *
 * Data path: the one device thread takes a TX chain of device A under A's
 * lock, lets go, writes the frame into the peer's RX buffers under the
 * peer's lock, then completes the TX chain under A's lock again. So no
 * thread ever holds two device locks, and a TX completion means the frame
 * reached the peer (or was dropped there and counted). Every ring and
 * buffer access is DMA through the model IOMMU.
 */

#define VN_VENDOR 0x1af4
#define VN_BAR 4
#define VN_BAR_SIZE 0x4000
#define MSIX_BAR 1

/* BAR4 regions and the lengths QEMU's capabilities report. */
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define REGION_LEN 0x1000
#define NOTIFY_MULT 4

/* Vendor capability types (virtio_pci_cap.cfg_type). */
#define CAP_COMMON_CFG 1
#define CAP_NOTIFY_CFG 2
#define CAP_ISR_CFG 3
#define CAP_DEVICE_CFG 4

/* Common configuration structure (virtio_pci_common_cfg). */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_GENERATION 0x15
#define CC_QSELECT 0x16
#define CC_QSIZE 0x18
#define CC_QMSIX 0x1a
#define CC_QENABLE 0x1c
#define CC_QNOTIFY_OFF 0x1e
#define CC_QDESC 0x20
#define CC_QDRIVER 0x28
#define CC_QDEVICE 0x30
#define CC_LEN 0x38

/* device_status */
#define S_ACKNOWLEDGE 0x01
#define S_DRIVER 0x02
#define S_DRIVER_OK 0x04
#define S_FEATURES_OK 0x08
#define S_NEEDS_RESET 0x40
#define S_FAILED 0x80

/* Feature bits. */
#define F_MAC 5
#define F_MRG_RXBUF 15
#define F_STATUS 16
#define F_CTRL_VQ 17
#define F_CTRL_RX 18
#define F_MQ 22
#define F_CTRL_MAC_ADDR 23
#define F_VERSION_1 32
#define F_ACCESS_PLATFORM 33
#define BIT(f) (1ULL << (f))

/* Split virtqueue layout. */
#define DESC_SIZE 16
#define DESC_F_NEXT 0x1
#define DESC_F_WRITE 0x2
#define DESC_F_INDIRECT 0x4
#define AVAIL_F_NO_INTERRUPT 0x1
#define RING_HDR 4		/* flags, idx */
#define USED_ELEM 8		/* le32 id, le32 len */

/* virtio_net_hdr with VIRTIO_F_VERSION_1: num_buffers always there. */
#define HDR_LEN 12
#define HDR_NUM_BUFFERS 10
#define FRAME_MAX 65535

/* Device configuration (virtio_net_config) and its status bits. */
#define DC_MAC 0
#define DC_STATUS 6
#define DC_MAX_PAIRS 8
#define DC_LEN 10
#define NET_S_LINK_UP 0x1

/* Control queue. */
#define CTRL_RX 0
#define CTRL_RX_PROMISC 0
#define CTRL_RX_ALLMULTI 1
#define CTRL_MAC 1
#define CTRL_MAC_TABLE_SET 0
#define CTRL_MAC_ADDR_SET 1
#define CTRL_MQ 4
#define CTRL_MQ_VQ_PAIRS_SET 0
#define NET_OK 0
#define NET_ERR 1
#define CTRL_IN_MAX 1024	/* enough for two full MAC tables */

#define MAX_PAIRS 16
#define MAX_QUEUES (2 * MAX_PAIRS + 1)
#define QSIZE_MAX 256		/* QEMU's rx/tx_queue_size default, and the most offered */
#define NO_VECTOR 0xffff
#define MAC_TABLE 64		/* QEMU's MAC_TABLE_ENTRIES */
#define POLL_BUDGET 64		/* chains per device per poll, so ports take turns */
#define POLL_GRACE 20000	/* empty polls of a TX queue before doorbells are wanted again */
#define USED_F_NO_NOTIFY 1

_Static_assert(MAX_QUEUES <= 64, "pending queues are a 64-bit mask");

struct vq {
	uint64_t desc, driver, device;	/* IOVAs of the three areas */
	uint16_t size, vector;
	bool enabled;
	uint16_t last_avail;		/* free-running index of the next avail entry to take */
	uint16_t used_idx;		/* free-running used index published next */
	/* Notification suppression, as vhost does it: while a TX queue has
	 * work (and for a grace period after), the device polls it and sets
	 * VRING_USED_F_NO_NOTIFY so the driver does not ring; an RX queue
	 * never needs a doorbell (frames look for buffers when they come). */
	bool polling;
	bool rx_quiet;			/* RX: NO_NOTIFY written */
	unsigned idle;			/* empty polls in a row while polling */
};

struct seg {
	uint64_t addr;
	uint32_t len;
	bool write;
};

struct vnet {
	/* From the arguments; fixed for the device's life. */
	uint8_t mac_conf[6];
	bool mac_set;
	/* QEMU's device properties of the same names (default on): off
	 * withholds the feature, as an old or misconfigured QEMU would. */
	bool no_iommu_platform, no_mrg_rxbuf, no_ctrl_vq;
	uint16_t max_pairs;
	char peer_name[16];		/* canonical BDF, "" none */

	/* Transport registers (d->lock). */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint16_t msix_config, qsel;
	uint8_t status, generation, isr;
	struct vq q[MAX_QUEUES];
	uint64_t pending;		/* notified queues not drained yet, bit = index */
	unsigned rr;			/* where the next poll starts looking */
	unsigned epoch;			/* bumped by each reset: work taken before it is void */

	/* Net state (d->lock). */
	uint8_t mac[6];
	uint16_t pairs;
	bool promisc, allmulti;
	uint8_t uni[MAC_TABLE][6], multi[MAC_TABLE][6];
	unsigned nuni, nmulti;
	bool uni_overflow, multi_overflow;
	struct upmd_model_virtio_net_stats st;

	/* Device thread only. */
	struct upmd_model_dev *peer;
	bool peer_bad_logged;
	uint8_t txbuf[HDR_LEN + FRAME_MAX];	/* a TX chain's bytes */
	uint8_t rxbuf[HDR_LEN + FRAME_MAX];	/* header + frame going into RX buffers */
	struct seg segs[QSIZE_MAX];
	uint16_t heads[QSIZE_MAX];
	uint32_t written[QSIZE_MAX];
};

static const struct upmd_model_dev_ops vnet_ops;

/* ---- arguments and config space ---------------------------------------------- */

/* "[dddd:]bb:dd.f" in the model's canonical spelling. */
static int canon_bdf(const char *s, char *out, size_t len)
{
	unsigned dom = 0, bus, dev, fn;
	char tail;

	if (sscanf(s, "%x:%x:%x.%u%c", &dom, &bus, &dev, &fn, &tail) != 4) {
		dom = 0;
		if (sscanf(s, "%x:%x.%u%c", &bus, &dev, &fn, &tail) != 3)
			return -EINVAL;
	}
	if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	int i;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6)
		return -EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	/* A station address: not multicast (nor broadcast). */
	return (mac[0] & 1) ? -EINVAL : 0;
}

static int vnet_arg(struct upmd_model_dev *d, const char *key, const char *val)
{
	struct vnet *n = upmd_model_dev_priv(d);
	char *end;
	unsigned long v;

	if (!strcmp(key, "mac")) {
		if (parse_mac(val, n->mac_conf) < 0) {
			UPMD_ERR(MODEL_LOG, "%s: bad mac '%s' (a unicast address, e.g. mac=52:54:00:12:34:56)",
				 upmd_model_dev_name(d), val);
			return -EINVAL;
		}
		n->mac_set = true;
		return 0;
	}
	if (!strcmp(key, "queues")) {
		errno = 0;
		v = strtoul(val, &end, 0);
		if (errno || end == val || *end || v < 1 || v > MAX_PAIRS) {
			UPMD_ERR(MODEL_LOG, "%s: bad queues '%s' (queue pairs, 1..%d)",
				 upmd_model_dev_name(d), val, MAX_PAIRS);
			return -EINVAL;
		}
		n->max_pairs = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "iommu_platform") || !strcmp(key, "mrg_rxbuf") || !strcmp(key, "ctrl_vq")) {
		bool *off = !strcmp(key, "iommu_platform") ? &n->no_iommu_platform :
			    !strcmp(key, "mrg_rxbuf")	   ? &n->no_mrg_rxbuf :
							     &n->no_ctrl_vq;

		if (strcmp(val, "on") && strcmp(val, "off")) {
			UPMD_ERR(MODEL_LOG, "%s: %s=%s: give on or off", upmd_model_dev_name(d), key, val);
			return -EINVAL;
		}
		*off = !strcmp(val, "off");
		return 0;
	}
	if (!strcmp(key, "peer")) {
		if (canon_bdf(val, n->peer_name, sizeof(n->peer_name)) < 0 ||
		    !strcmp(n->peer_name, upmd_model_dev_name(d))) {
			UPMD_ERR(MODEL_LOG,
				 "%s: bad peer '%s' (the PCI address of another virtio-net model device, "
				 "e.g. peer=0000:00:05.0)", upmd_model_dev_name(d), val);
			n->peer_name[0] = '\0';
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

static uint16_t nvectors(const struct vnet *n)
{
	return (uint16_t)(2 * n->max_pairs + 2);
}

static uint16_t nqueues(const struct vnet *n)
{
	return (uint16_t)(2 * n->max_pairs + 1);
}

static void vendor_cap(struct model_dev_config *cfg, uint8_t type, uint32_t off, uint32_t len,
		       bool notify)
{
	struct model_dev_cap *c = &cfg->caps[cfg->ncaps++];

	/* virtio_pci_cap: cap_len, cfg_type, bar, id, padding[2], offset,
	 * length (body starts at byte 2); the notify cap adds the multiplier. */
	c->id = PCI_CAP_ID_VNDR;
	c->len = notify ? 20 : 16;
	c->body[0] = c->len;
	c->body[1] = type;
	c->body[2] = VN_BAR;
	st32(&c->body[6], off);
	st32(&c->body[10], len);
	if (notify)
		st32(&c->body[14], NOTIFY_MULT);
}

static void vnet_config(struct upmd_model_dev *d, struct model_dev_config *cfg)
{
	struct vnet *n = upmd_model_dev_priv(d);

	/* Runs after the args: the vector count depends on queues=. */
	if (!n->max_pairs)
		n->max_pairs = 1;
	vendor_cap(cfg, CAP_COMMON_CFG, OFF_COMMON, REGION_LEN, false);
	vendor_cap(cfg, CAP_ISR_CFG, OFF_ISR, REGION_LEN, false);
	vendor_cap(cfg, CAP_DEVICE_CFG, OFF_DEVICE, REGION_LEN, false);
	vendor_cap(cfg, CAP_NOTIFY_CFG, OFF_NOTIFY, REGION_LEN, true);
	cfg->irq_vectors = nvectors(n);
	cfg->msix_table = 0x000 | MSIX_BAR;
	cfg->msix_pba = 0x800 | MSIX_BAR;
}

/* ---- state ----------------------------------------------------------------------- */

static uint64_t offered(const struct vnet *n)
{
	uint64_t f = BIT(F_VERSION_1) | BIT(F_MAC) | BIT(F_STATUS);

	if (!n->no_iommu_platform)
		f |= BIT(F_ACCESS_PLATFORM);
	if (!n->no_mrg_rxbuf)
		f |= BIT(F_MRG_RXBUF);
	/* The control-queue features go with the control queue. */
	if (!n->no_ctrl_vq)
		f |= BIT(F_CTRL_VQ) | BIT(F_CTRL_RX) | BIT(F_CTRL_MAC_ADDR) | (n->max_pairs > 1 ? BIT(F_MQ) : 0);
	return f;
}

static bool has(const struct vnet *n, unsigned f)
{
	return n->driver_features & BIT(f);
}

/*
 * What FEATURES_OK accepts: nothing the device did not offer, VERSION_1
 * (modern only) and ACCESS_PLATFORM (the device sits behind an IOMMU:
 * a driver that thinks it DMAs to physical addresses would be wrong),
 * and no control-queue feature without the control queue (the spec's
 * dependencies, which Linux's virtnet_validate_features checks too).
 */
static bool features_ok(const struct vnet *n)
{
	uint64_t f = n->driver_features;
	uint64_t need_cvq = BIT(F_CTRL_RX) | BIT(F_MQ) | BIT(F_CTRL_MAC_ADDR);

	if (f & ~offered(n))
		return false;
	/* Without iommu_platform the device bypasses the IOMMU (as QEMU's
	 * does): then ACCESS_PLATFORM cannot be, and need not be, accepted. */
	if (!(f & BIT(F_VERSION_1)) || (!(f & BIT(F_ACCESS_PLATFORM)) && !n->no_iommu_platform))
		return false;
	return !((f & need_cvq) && !(f & BIT(F_CTRL_VQ)));
}

static bool running(const struct vnet *n)
{
	return (n->status & (S_DRIVER_OK | S_FEATURES_OK | S_NEEDS_RESET | S_FAILED)) ==
	       (S_DRIVER_OK | S_FEATURES_OK);
}

/* The control queue follows the pairs in use by the feature set: 2 without MQ. */
static int ctrl_index(const struct vnet *n)
{
	if (!has(n, F_CTRL_VQ))
		return -1;
	return 2 * (has(n, F_MQ) ? n->max_pairs : 1);
}

/* Device reset (status 0 or a function reset), d->lock held. */
static void reset_locked(struct upmd_model_dev *d, struct vnet *n)
{
	unsigned i;

	n->dfselect = n->gfselect = 0;
	n->driver_features = 0;
	n->msix_config = NO_VECTOR;
	n->qsel = 0;
	n->status = 0;
	n->isr = 0;
	for (i = 0; i < MAX_QUEUES; i++) {
		memset(&n->q[i], 0, sizeof(n->q[i]));
		n->q[i].size = QSIZE_MAX;
		n->q[i].vector = NO_VECTOR;
	}
	n->pending = 0;
	n->epoch++;
	memcpy(n->mac, n->mac_conf, 6);
	n->pairs = 1;
	/* QEMU's virtio_net_reset: back to "compatibility mode", promiscuous. */
	n->promisc = true;
	n->allmulti = false;
	n->nuni = n->nmulti = 0;
	n->uni_overflow = n->multi_overflow = false;
	upmd_model_dev_intx(d, false);
}

static void config_irq(struct upmd_model_dev *d, struct vnet *n)
{
	n->isr |= 0x2;
	if (upmd_model_dev_msi_enabled(d)) {
		if (n->msix_config != NO_VECTOR)
			upmd_model_irq(d, n->msix_config);
	} else {
		upmd_model_dev_intx(d, true);
	}
}

static void queue_irq(struct upmd_model_dev *d, struct vnet *n, struct vq *q)
{
	n->isr |= 0x1;
	if (upmd_model_dev_msi_enabled(d)) {
		if (q->vector != NO_VECTOR)
			upmd_model_irq(d, q->vector);
	} else {
		upmd_model_dev_intx(d, true);
	}
}

/*
 * The driver's rings are unusable (an IOMMU fault, a malformed chain):
 * DEVICE_NEEDS_RESET, a configuration interrupt if the driver is up, and
 * no more processing until a reset (d->lock held). Returns -EIO.
 */
static int broken(struct upmd_model_dev *d, struct vnet *n, unsigned qi, const char *why)
{
	if (!(n->status & S_NEEDS_RESET)) {
		UPMD_WARN(MODEL_LOG, "%s: virtio-net: queue %u: %s: device needs reset",
			  upmd_model_dev_name(d), qi, why);
		n->status |= S_NEEDS_RESET;
		n->st.resets_needed++;
		if (n->status & S_DRIVER_OK)
			config_irq(d, n);
	}
	return -EIO;
}

/* ---- split virtqueues --------------------------------------------------------------- */

static int dma_rd(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint64_t iova, void *buf,
		  size_t len)
{
	int rc = upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, iova, buf, len);

	/* -EFAULT: the port recorded the IOMMU fault; -EIO: bus mastering
	 * went off under us. Either way the queue state is lost. */
	return rc < 0 ? broken(d, n, qi, rc == -EFAULT ? "DMA read faulted in the IOMMU" :
					  "DMA read failed") : 0;
}

static int dma_wr(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint64_t iova,
		  const void *buf, size_t len)
{
	int rc = upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, iova, buf, len);

	return rc < 0 ? broken(d, n, qi, rc == -EFAULT ? "DMA write faulted in the IOMMU" :
					  "DMA write failed") : 0;
}

/*
 * avail->idx, then an acquire fence so the ring entries and descriptors
 * read after it are at least as new as the index (the driver wrote them
 * before its release store of idx). A DMA read is a copy that may move
 * byte by byte, so a 16-bit index being stored meanwhile could be taken
 * torn: read until two reads agree. An index more than a ring ahead of
 * what the device took is a driver bug.
 */
static int avail_idx(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint16_t *idx)
{
	struct vq *q = &n->q[qi];
	uint8_t a[2], b[2];
	int i, rc;

	rc = dma_rd(d, n, qi, q->driver + 2, a, 2);
	for (i = 0; rc == 0 && i < 8; i++) {
		rc = dma_rd(d, n, qi, q->driver + 2, b, 2);
		if (rc == 0 && !memcmp(a, b, 2))
			break;
		memcpy(a, b, 2);
	}
	if (rc < 0)
		return rc;
	atomic_thread_fence(memory_order_acquire);
	*idx = ld16(a);
	if ((uint16_t)(*idx - q->last_avail) > q->size)
		return broken(d, n, qi, "avail index more than a ring ahead");
	return 0;
}

static int ring_head(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint16_t pos,
		     uint16_t *head)
{
	struct vq *q = &n->q[qi];
	uint8_t e[2];
	int rc = dma_rd(d, n, qi, q->driver + RING_HDR + 2ULL * (pos % q->size), e, 2);

	if (rc < 0)
		return rc;
	*head = ld16(e);
	return 0;
}

/*
 * The descriptor chain at @head into @segs (room for @max). Checks what
 * the spec asks of the driver: indices inside the ring, no INDIRECT
 * (not offered), no more descriptors than the ring holds (which also
 * catches loops), device-writable descriptors only after the readable
 * ones. @return the number of segments, or -EIO (broken).
 */
static int walk(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint16_t head,
		struct seg *segs, unsigned max)
{
	struct vq *q = &n->q[qi];
	uint16_t i = head;
	unsigned k = 0;
	bool seen_write = false;

	for (;;) {
		uint8_t desc[DESC_SIZE];
		uint16_t flags;
		int rc;

		if (i >= q->size)
			return broken(d, n, qi, "descriptor index outside the ring");
		if (k == q->size || k == max)
			return broken(d, n, qi, "descriptor chain longer than the ring (a loop?)");
		rc = dma_rd(d, n, qi, q->desc + (uint64_t)i * DESC_SIZE, desc, sizeof(desc));
		if (rc < 0)
			return rc;
		flags = ld16(desc + 12);
		if (flags & DESC_F_INDIRECT)
			return broken(d, n, qi, "indirect descriptor (not offered)");
		segs[k].addr = ld64(desc);
		segs[k].len = ld32(desc + 8);
		segs[k].write = flags & DESC_F_WRITE;
		if (!segs[k].write && seen_write)
			return broken(d, n, qi, "device-readable descriptor after a writable one");
		seen_write |= segs[k].write;
		k++;
		if (!(flags & DESC_F_NEXT))
			return (int)k;
		i = ld16(desc + 14);
	}
}

/*
 * Publish @count used elements (n->heads / n->written) and the new
 * used->idx, then interrupt unless the driver asked not to.
 */
static int push_used(struct upmd_model_dev *d, struct vnet *n, unsigned qi, const uint16_t *heads,
		     const uint32_t *lens, unsigned count)
{
	struct vq *q = &n->q[qi];
	uint8_t e[USED_ELEM], idx[2], flags[2];
	unsigned i;
	int rc;

	for (i = 0; i < count; i++) {
		uint16_t pos = (uint16_t)((q->used_idx + i) % q->size);

		st32(e, heads[i]);
		st32(e + 4, lens[i]);
		rc = dma_wr(d, n, qi, q->device + RING_HDR + (uint64_t)pos * USED_ELEM, e, sizeof(e));
		if (rc < 0)
			return rc;
	}
	/* Release: the elements are visible before the index that hands
	 * them to the driver polling from another thread. */
	atomic_thread_fence(memory_order_release);
	q->used_idx = (uint16_t)(q->used_idx + count);
	st16(idx, q->used_idx);
	rc = dma_wr(d, n, qi, q->device + 2, idx, 2);
	if (rc < 0)
		return rc;
	/* Full fence: the index store is ordered before the flags load, or
	 * a driver that clears NO_INTERRUPT and then checks used->idx could
	 * miss both the entries and the interrupt. */
	atomic_thread_fence(memory_order_seq_cst);
	rc = dma_rd(d, n, qi, q->driver, flags, 2);
	if (rc < 0)
		return rc;
	if (!(ld16(flags) & AVAIL_F_NO_INTERRUPT))
		queue_irq(d, n, q);
	return 0;
}

static bool queue_live(const struct vnet *n, unsigned qi)
{
	return qi < nqueues(n) && n->q[qi].enabled && n->q[qi].size;
}

/* Write the used ring's flags (DMA, like every ring access). */
static int used_flags(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint16_t flags)
{
	return dma_wr(d, n, qi, n->q[qi].device, &flags, sizeof(flags));
}

/*
 * A TX queue found empty: keep polling it for a while (the driver is
 * likely to add more soon), then ask for doorbells again. Clearing
 * NO_NOTIFY and looking at avail once more closes the race with a driver
 * that added a chain while it still saw the flag. Returns whether the
 * queue stays pending. d->lock held.
 */
static bool tx_idle(struct upmd_model_dev *d, struct vnet *n, unsigned qi)
{
	struct vq *q = &n->q[qi];
	uint16_t idx;

	if (!q->polling) {
		q->polling = true;
		q->idle = 0;
		return used_flags(d, n, qi, USED_F_NO_NOTIFY) == 0;
	}
	if (++q->idle < POLL_GRACE)
		return true;
	q->polling = false;
	if (used_flags(d, n, qi, 0) < 0)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx(d, n, qi, &idx) == 0 && idx != q->last_avail;
}

/* ---- TX ---------------------------------------------------------------------------- */

/*
 * Take the next chain of TX queue @qi into n->txbuf. @return 1 with a
 * frame of *len bytes (after the header), 2 with a chain to complete
 * but nothing to send, 0 when the ring is empty, -EIO when broken.
 */
static int tx_take(struct upmd_model_dev *d, struct vnet *n, unsigned qi, uint16_t *head,
		   size_t *len)
{
	struct vq *q = &n->q[qi];
	uint64_t total = 0, off = 0;
	uint16_t idx;
	int k, i, rc;

	rc = avail_idx(d, n, qi, &idx);
	if (rc < 0 || idx == q->last_avail)
		return rc;
	rc = ring_head(d, n, qi, q->last_avail, head);
	if (rc < 0)
		return rc;
	k = walk(d, n, qi, *head, n->segs, QSIZE_MAX);
	if (k < 0)
		return k;
	for (i = 0; i < k; i++) {
		if (n->segs[i].write)
			return broken(d, n, qi, "device-writable descriptor in a TX chain");
		total += n->segs[i].len;
	}
	if (total < HDR_LEN)
		return broken(d, n, qi, "TX chain shorter than the virtio-net header");
	q->last_avail++;
	if (total > sizeof(n->txbuf)) {
		n->st.tx_dropped++;
		return 2;
	}
	for (i = 0; i < k; i++) {
		rc = dma_rd(d, n, qi, n->segs[i].addr, n->txbuf + off, n->segs[i].len);
		if (rc < 0)
			return rc;
		off += n->segs[i].len;
	}
	/* The header asks for nothing this device offered (no checksum or
	 * GSO offload), so it is only stripped. */
	*len = (size_t)(total - HDR_LEN);
	n->st.tx_frames++;
	n->st.tx_bytes += *len;
	return 1;
}

/* ---- RX ---------------------------------------------------------------------------- */

static bool in_table(const uint8_t (*t)[6], unsigned nt, const uint8_t *mac)
{
	unsigned i;

	for (i = 0; i < nt; i++)
		if (!memcmp(t[i], mac, 6))
			return true;
	return false;
}

/*
 * The receive filter, as QEMU's receive_filter without VLANs: everything
 * when promiscuous; broadcast always; other multicast only with ALLMULTI
 * or in the multicast table; unicast to the device's MAC or in the
 * unicast table. A table that overflowed accepts its whole class.
 */
static bool accept(const struct vnet *n, const uint8_t *f, size_t len)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (n->promisc)
		return true;
	if (len < 6)
		return false;
	if (f[0] & 1) {
		if (!memcmp(f, bcast, 6))
			return true;
		return n->allmulti || n->multi_overflow || in_table(n->multi, n->nmulti, f);
	}
	return !memcmp(f, n->mac, 6) || n->uni_overflow || in_table(n->uni, n->nuni, f);
}

/*
 * Write header + frame (n->rxbuf, @need bytes) into the RX queue's posted
 * buffers: one chain, or with MRG_RXBUF as many as it takes. Nothing is
 * consumed when they do not hold it all: the frame is dropped.
 */
static int rx_fill(struct upmd_model_dev *d, struct vnet *n, unsigned qi, size_t need)
{
	struct vq *q = &n->q[qi];
	bool mrg = has(n, F_MRG_RXBUF);
	unsigned nchains = 0, nseg = 0, c, s;
	uint64_t room = 0, off = 0;
	uint16_t idx, navail;
	int k, rc;

	rc = avail_idx(d, n, qi, &idx);
	if (rc < 0)
		return rc;
	navail = (uint16_t)(idx - q->last_avail);
	while (room < need) {
		if (nchains == navail || (!mrg && nchains == 1)) {
			n->st.rx_dropped++;
			return 0;
		}
		rc = ring_head(d, n, qi, (uint16_t)(q->last_avail + nchains), &n->heads[nchains]);
		if (rc < 0)
			return rc;
		k = walk(d, n, qi, n->heads[nchains], n->segs + nseg, QSIZE_MAX - nseg);
		if (k < 0)
			return k;
		for (s = nseg; s < nseg + (unsigned)k; s++) {
			if (!n->segs[s].write)
				return broken(d, n, qi, "device-readable descriptor in an RX chain");
			room += n->segs[s].len;
		}
		n->written[nchains] = (uint32_t)nseg;	/* first segment, for now */
		nseg += (unsigned)k;
		nchains++;
	}
	st16(n->rxbuf + HDR_NUM_BUFFERS, (uint16_t)nchains);
	for (c = 0; c < nchains; c++) {
		unsigned first = n->written[c], last = c + 1 < nchains ? n->written[c + 1] : nseg;
		uint32_t done = 0;

		for (s = first; s < last && off < need; s++) {
			uint32_t chunk = (uint32_t)UPMD_MIN((uint64_t)n->segs[s].len, need - off);

			rc = dma_wr(d, n, qi, n->segs[s].addr, n->rxbuf + off, chunk);
			if (rc < 0)
				return rc;
			off += chunk;
			done += chunk;
		}
		n->written[c] = done;
	}
	q->last_avail = (uint16_t)(q->last_avail + nchains);
	rc = push_used(d, n, qi, n->heads, n->written, nchains);
	if (rc < 0)
		return rc;
	n->st.rx_frames++;
	n->st.rx_bytes += need - HDR_LEN;
	return 0;
}

/* A frame from the peer's TX pair @pair arrives at @d. */
static void rx_deliver(struct upmd_model_dev *d, unsigned pair, const uint8_t *frame, size_t len)
{
	struct vnet *n = upmd_model_dev_priv(d);
	unsigned qi;

	pthread_mutex_lock(&d->lock);
	if (!running(n) || !upmd_model_dev_bus_master(d)) {
		n->st.rx_dropped++;
		goto out;
	}
	if (!accept(n, frame, len)) {
		n->st.rx_filtered++;
		goto out;
	}
	qi = 2 * (pair % n->pairs);
	if (!queue_live(n, qi)) {
		n->st.rx_dropped++;
		goto out;
	}
	memset(n->rxbuf, 0, HDR_LEN);	/* no flags, GSO_NONE */
	memcpy(n->rxbuf + HDR_LEN, frame, len);
	rx_fill(d, n, qi, HDR_LEN + len);
out:
	pthread_mutex_unlock(&d->lock);
}

/*
 * The peer: the device named by peer=, or one whose peer= names us. Found
 * by the device thread without the model lock: devices are only added
 * (slot before count) until the thread has stopped.
 */
static struct upmd_model_dev *find_peer(struct upmd_model_dev *d, struct vnet *n)
{
	struct upmd_model *m = d->m;
	unsigned i, nd;

	if (n->peer)
		return n->peer;
	nd = __atomic_load_n(&m->ndevs, __ATOMIC_ACQUIRE);
	for (i = 0; i < nd; i++) {
		struct upmd_model_dev *o = m->devs[i];
		bool named = n->peer_name[0] && !strcmp(o->bdf, n->peer_name);

		if (o == d)
			continue;
		if (named && o->ops != &vnet_ops) {
			if (!n->peer_bad_logged)
				UPMD_ERR(MODEL_LOG, "%s: peer %s is a %s device, not virtio-net: no peer",
					 d->bdf, o->bdf, o->ops->type);
			n->peer_bad_logged = true;
			return NULL;
		}
		if (named || (!n->peer_name[0] && o->ops == &vnet_ops &&
			      !strcmp(((struct vnet *)o->priv)->peer_name, d->bdf))) {
			n->peer = o;
			return o;
		}
	}
	return NULL;
}

/* ---- control queue ------------------------------------------------------------------- */

static uint8_t ctrl_mac_table(struct vnet *n, const uint8_t *p, size_t len)
{
	uint32_t nu, nm;
	size_t off;

	/* Two virtio_net_ctrl_mac: le32 entries, then entries MACs. */
	if (len < 4)
		return NET_ERR;
	nu = ld32(p);
	if ((uint64_t)nu * 6 > len - 4 || len - 4 - (size_t)nu * 6 < 4)
		return NET_ERR;
	off = 4 + (size_t)nu * 6;
	nm = ld32(p + off);
	if ((uint64_t)nm * 6 != len - off - 4)
		return NET_ERR;
	n->uni_overflow = nu > MAC_TABLE;
	n->nuni = n->uni_overflow ? 0 : nu;
	memcpy(n->uni, p + 4, (size_t)n->nuni * 6);
	n->multi_overflow = nm > MAC_TABLE;
	n->nmulti = n->multi_overflow ? 0 : nm;
	memcpy(n->multi, p + off + 4, (size_t)n->nmulti * 6);
	return NET_OK;
}

static uint8_t ctrl_cmd(struct vnet *n, uint8_t cls, uint8_t cmd, const uint8_t *p, size_t len)
{
	switch (cls) {
	case CTRL_RX:
		if (!has(n, F_CTRL_RX) || len < 1)
			return NET_ERR;
		if (cmd == CTRL_RX_PROMISC)
			n->promisc = p[0] != 0;
		else if (cmd == CTRL_RX_ALLMULTI)
			n->allmulti = p[0] != 0;
		else
			return NET_ERR;	/* ALLUNI and the rest need CTRL_RX_EXTRA */
		return NET_OK;
	case CTRL_MAC:
		if (cmd == CTRL_MAC_TABLE_SET)
			return has(n, F_CTRL_RX) ? ctrl_mac_table(n, p, len) : NET_ERR;
		if (cmd != CTRL_MAC_ADDR_SET || len != 6 || (p[0] & 1))
			return NET_ERR;
		/* Accepted with the control queue alone, as QEMU does. The MAC is
		 * device configuration: its generation moves. */
		memcpy(n->mac, p, 6);
		n->generation++;
		return NET_OK;
	case CTRL_MQ:
		if (cmd != CTRL_MQ_VQ_PAIRS_SET || !has(n, F_MQ) || len != 2)
			return NET_ERR;
		if (ld16(p) < 1 || ld16(p) > n->max_pairs)
			return NET_ERR;
		n->pairs = ld16(p);
		return NET_OK;
	default:
		return NET_ERR;
	}
}

/*
 * One command: class, command and data in device-readable descriptors,
 * the ack byte in the first device-writable one. @return 1 done, 0 ring
 * empty, -EIO broken.
 */
static int ctrl_one(struct upmd_model_dev *d, struct vnet *n, unsigned qi)
{
	struct vq *q = &n->q[qi];
	uint8_t in[CTRL_IN_MAX], ack;
	uint64_t inlen = 0, ack_addr = 0;
	bool have_ack = false;
	uint16_t idx, head;
	uint32_t one = 1;
	int k, i, rc;

	rc = avail_idx(d, n, qi, &idx);
	if (rc < 0 || idx == q->last_avail)
		return rc;
	rc = ring_head(d, n, qi, q->last_avail, &head);
	if (rc < 0)
		return rc;
	k = walk(d, n, qi, head, n->segs, QSIZE_MAX);
	if (k < 0)
		return k;
	for (i = 0; i < k; i++) {
		const struct seg *s = &n->segs[i];

		if (s->write) {
			if (!have_ack && s->len) {
				ack_addr = s->addr;
				have_ack = true;
			}
			continue;
		}
		if (inlen + s->len <= sizeof(in)) {
			rc = dma_rd(d, n, qi, s->addr, in + inlen, s->len);
			if (rc < 0)
				return rc;
		}
		inlen += s->len;
	}
	if (inlen < 2 || !have_ack)
		return broken(d, n, qi, "control command without its header or ack byte");
	ack = inlen > sizeof(in) ? NET_ERR : ctrl_cmd(n, in[0], in[1], in + 2, (size_t)inlen - 2);
	rc = dma_wr(d, n, qi, ack_addr, &ack, 1);
	if (rc < 0)
		return rc;
	q->last_avail++;
	n->st.ctrl_cmds++;
	if (ack != NET_OK)
		n->st.ctrl_errors++;
	rc = push_used(d, n, qi, &head, &one, 1);
	return rc < 0 ? rc : 1;
}

/* ---- the device thread ------------------------------------------------------------------ */

static int next_pending(struct vnet *n)
{
	unsigned i;

	for (i = 0; i < MAX_QUEUES; i++) {
		unsigned qi = (n->rr + i) % MAX_QUEUES;

		if (n->pending & (1ULL << qi)) {
			n->rr = qi + 1;
			return (int)qi;
		}
	}
	return -1;
}

static int vnet_poll(struct upmd_model_dev *d)
{
	struct vnet *n = upmd_model_dev_priv(d);
	int budget, work = 0;
	bool polled = false;

	for (budget = 0; budget < POLL_BUDGET; budget++) {
		struct upmd_model_dev *peer;
		uint16_t head = 0;
		size_t len = 0;
		unsigned epoch;
		uint32_t zero = 0;
		int qi, rc;

		pthread_mutex_lock(&d->lock);
		/* Without bus mastering nothing can be read: notifications wait. */
		if (!n->pending || !running(n) || !upmd_model_dev_bus_master(d)) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		qi = next_pending(n);
		if (!queue_live(n, (unsigned)qi) || (qi % 2 == 0 && qi != ctrl_index(n))) {
			/* RX buffers wait for frames; disabled queues do nothing. */
			if (queue_live(n, (unsigned)qi) && !n->q[qi].rx_quiet)
				n->q[qi].rx_quiet = used_flags(d, n, (unsigned)qi, USED_F_NO_NOTIFY) == 0;
			n->pending &= ~(1ULL << qi);
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		if (qi == ctrl_index(n)) {
			rc = ctrl_one(d, n, (unsigned)qi);
			if (rc == 0)
				n->pending &= ~(1ULL << qi);
			pthread_mutex_unlock(&d->lock);
			work |= rc != 0;
			continue;
		}
		rc = tx_take(d, n, (unsigned)qi, &head, &len);
		if (rc == 0 && !tx_idle(d, n, (unsigned)qi))
			n->pending &= ~(1ULL << qi);
		else if (rc == 0)
			polled = true;	/* nothing yet, but keep the thread looking */
		else
			n->q[qi].idle = 0;
		epoch = n->epoch;
		pthread_mutex_unlock(&d->lock);
		if (rc <= 0) {
			work |= rc < 0;
			continue;
		}
		work = 1;
		peer = rc == 1 ? find_peer(d, n) : NULL;
		if (peer)
			rx_deliver(peer, (unsigned)qi / 2, n->txbuf + HDR_LEN, len);
		pthread_mutex_lock(&d->lock);
		/* A reset meanwhile took the ring away from the device. */
		if (n->epoch == epoch && running(n))
			push_used(d, n, (unsigned)qi, &head, &zero, 1);
		pthread_mutex_unlock(&d->lock);
	}
	return work || polled;
}

/* ---- registers ------------------------------------------------------------------------- */

static void common_image(const struct vnet *n, uint8_t *c)
{
	uint64_t f = n->dfselect == 0 ? offered(n) & 0xffffffffULL :
		     n->dfselect == 1 ? offered(n) >> 32 : 0;
	uint64_t g = n->gfselect == 0 ? n->driver_features & 0xffffffffULL :
		     n->gfselect == 1 ? n->driver_features >> 32 : 0;
	bool valid = n->qsel < nqueues(n);
	const struct vq *q = &n->q[valid ? n->qsel : 0];

	memset(c, 0, CC_LEN);
	st32(c + CC_DFSELECT, n->dfselect);
	st32(c + CC_DF, (uint32_t)f);
	st32(c + CC_GFSELECT, n->gfselect);
	st32(c + CC_GF, (uint32_t)g);
	st16(c + CC_MSIX, n->msix_config);
	st16(c + CC_NUMQ, nqueues(n));
	c[CC_STATUS] = n->status;
	c[CC_GENERATION] = n->generation;
	st16(c + CC_QSELECT, n->qsel);
	/* queue_size 0: no such queue. */
	if (!valid)
		return;
	st16(c + CC_QSIZE, q->size);
	st16(c + CC_QMSIX, q->vector);
	st16(c + CC_QENABLE, q->enabled);
	st16(c + CC_QNOTIFY_OFF, n->qsel);
	st64(c + CC_QDESC, q->desc);
	st64(c + CC_QDRIVER, q->driver);
	st64(c + CC_QDEVICE, q->device);
}

static void device_image(const struct vnet *n, uint8_t *c)
{
	memcpy(c + DC_MAC, n->mac, 6);
	st16(c + DC_STATUS, NET_S_LINK_UP);
	st16(c + DC_MAX_PAIRS, n->max_pairs);
}

static uint64_t region_read(const uint8_t *img, size_t len, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	if (off + size <= len)
		memcpy(&v, img + off, size);
	return v;
}

static uint64_t vnet_read(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size)
{
	struct vnet *n = upmd_model_dev_priv(d);
	uint8_t img[CC_LEN];
	uint64_t v = 0;

	if (bar == MSIX_BAR) {
		/* The MSI-X table is memory (vfio owns the real vectors). */
		memcpy(&v, upmd_model_dev_bar(d, bar) + off, size);
		return v;
	}
	if (bar != VN_BAR)
		return ~0ULL;
	/* No logging here: a trapped load runs this in a signal handler. */
	pthread_mutex_lock(&d->lock);
	if (off < OFF_COMMON + REGION_LEN) {
		common_image(n, img);
		v = region_read(img, CC_LEN, off - OFF_COMMON, size);
	} else if (off < OFF_ISR + REGION_LEN) {
		/* Reading the ISR acknowledges it and drops the INTx line. */
		if (off == OFF_ISR) {
			v = n->isr;
			n->isr = 0;
			upmd_model_dev_intx(d, false);
		}
	} else if (off < OFF_DEVICE + REGION_LEN) {
		device_image(n, img);
		v = region_read(img, DC_LEN, off - OFF_DEVICE, size);
	}
	pthread_mutex_unlock(&d->lock);
	return v;
}

static void status_write(struct upmd_model_dev *d, struct vnet *n, uint8_t v)
{
	uint8_t old = n->status;

	if (v == 0) {
		reset_locked(d, n);
		return;
	}
	/* NEEDS_RESET is the device's; FEATURES_OK only sticks when the
	 * features are acceptable, and is cleared on read-back otherwise. */
	v = (uint8_t)((v & ~S_NEEDS_RESET) | (old & S_NEEDS_RESET));
	if ((v & S_FEATURES_OK) && !(old & S_FEATURES_OK) && !features_ok(n))
		v &= (uint8_t)~S_FEATURES_OK;
	n->status = v;
	/* Buffers posted before DRIVER_OK are looked at once it is set. */
	if ((v & S_DRIVER_OK) && !(old & S_DRIVER_OK))
		n->pending = (1ULL << nqueues(n)) - 1;
}

static void queue_write(struct vnet *n, uint64_t off, unsigned size, uint64_t val)
{
	struct vq *q = &n->q[n->qsel];
	uint64_t *addr = NULL;
	uint64_t base = 0;

	if (n->qsel >= nqueues(n))
		return;
	switch (off) {
	case CC_QSIZE:
		/* A power of two up to what the device offers, before enabling. */
		if (size == 2 && !q->enabled && val && val <= QSIZE_MAX && !(val & (val - 1)))
			q->size = (uint16_t)val;
		return;
	case CC_QMSIX:
		if (size == 2)
			q->vector = val < nvectors(n) ? (uint16_t)val : NO_VECTOR;
		return;
	case CC_QENABLE:
		/* Only 1 means anything (0 needs RING_RESET, not offered). */
		if (size == 2 && val == 1 && !q->enabled) {
			q->enabled = true;
			q->last_avail = q->used_idx = 0;
		}
		return;
	default:
		break;
	}
	if (off >= CC_QDESC && off < CC_QDEVICE + 8) {
		base = CC_QDESC + (off - CC_QDESC) / 8 * 8;
		addr = base == CC_QDESC ? &q->desc : base == CC_QDRIVER ? &q->driver : &q->device;
	}
	if (!addr || q->enabled)
		return;
	/* 64-bit fields: one 8-byte access or two 4-byte halves. */
	if (size == 8 && off == base)
		*addr = val;
	else if (size == 4 && off == base)
		*addr = (*addr & ~0xffffffffULL) | val;
	else if (size == 4 && off == base + 4)
		*addr = (*addr & 0xffffffffULL) | (val << 32);
}

static void vnet_write(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size,
		       uint64_t val)
{
	struct vnet *n = upmd_model_dev_priv(d);
	bool kick = false;

	if (bar == MSIX_BAR) {
		memcpy(upmd_model_dev_bar(d, bar) + off, &val, size);
		return;
	}
	if (bar != VN_BAR)
		return;
	if (size < 8)
		val &= (1ULL << (8 * size)) - 1;
	pthread_mutex_lock(&d->lock);
	if (off >= OFF_NOTIFY && off < OFF_NOTIFY + REGION_LEN) {
		/* queue_notify_off = index and a multiplier of 4: the address
		 * names the queue (the value written is its index too). */
		unsigned qi = (unsigned)((off - OFF_NOTIFY) / NOTIFY_MULT);

		if ((size == 2 || size == 4) && qi < nqueues(n)) {
			n->pending |= 1ULL << qi;
			kick = true;
		}
	} else if (off < OFF_COMMON + REGION_LEN) {
		switch (off) {
		case CC_DFSELECT:
			if (size == 4)
				n->dfselect = (uint32_t)val;
			break;
		case CC_GFSELECT:
			if (size == 4)
				n->gfselect = (uint32_t)val;
			break;
		case CC_GF:
			/* Features are fixed once FEATURES_OK is set. */
			if (size == 4 && !(n->status & S_FEATURES_OK) && n->gfselect < 2) {
				unsigned sh = 32 * n->gfselect;

				n->driver_features = (n->driver_features & ~(0xffffffffULL << sh)) | (val << sh);
			}
			break;
		case CC_MSIX:
			if (size == 2)
				n->msix_config = val < nvectors(n) ? (uint16_t)val : NO_VECTOR;
			break;
		case CC_STATUS:
			if (size == 1)
				status_write(d, n, (uint8_t)val);
			break;
		case CC_QSELECT:
			if (size == 2)
				n->qsel = (uint16_t)val;
			break;
		default:
			queue_write(n, off, size, val);
			break;
		}
	}
	/* ISR and device config are read-only (VERSION_1: no MAC writes). */
	pthread_mutex_unlock(&d->lock);
	if (kick)
		upmd_model_dev_kick(d);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static int vnet_init(struct upmd_model_dev *d)
{
	struct vnet *n = upmd_model_dev_priv(d);

	/* QEMU's default MAC is 52:54:00:12:34:56 for the first NIC and
	 * counts up; the model counts with the device index. */
	if (!n->mac_set) {
		static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

		memcpy(n->mac_conf, base, 6);
		n->mac_conf[5] = (uint8_t)(base[5] + d->index);
	}
	pthread_mutex_lock(&d->lock);
	reset_locked(d, n);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void vnet_reset(struct upmd_model_dev *d)
{
	struct vnet *n = upmd_model_dev_priv(d);

	pthread_mutex_lock(&d->lock);
	reset_locked(d, n);
	pthread_mutex_unlock(&d->lock);
}

int upmd_model_virtio_net_stats(struct upmd_model *m, const char *bdf,
				struct upmd_model_virtio_net_stats *st)
{
	struct upmd_model_dev *d;
	struct vnet *n;

	if (!m || !bdf || !st)
		return -EINVAL;
	d = upmd_model_dev_find(m, bdf);
	if (!d)
		return -ENOENT;
	if (d->ops != &vnet_ops)
		return -ENODEV;
	n = upmd_model_dev_priv(d);
	pthread_mutex_lock(&d->lock);
	*st = n->st;
	st->status = n->status;
	st->promisc = n->promisc;
	st->allmulti = n->allmulti;
	st->active_pairs = n->pairs;
	memcpy(st->mac, n->mac, 6);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static const struct upmd_model_dev_ops vnet_ops = {
	.type = "virtio-net",
	.vendor_id = VN_VENDOR,
	.device_id = 0x1041,		/* 0x1040 + VIRTIO_ID_NET: modern only */
	.subsystem_vendor_id = VN_VENDOR,
	.subsystem_device_id = 1,	/* VIRTIO_ID_NET, as QEMU sets it */
	.class_code = 0x020000,
	.revision = 1,			/* modern virtio-pci devices have revision >= 1 */
	/* On QEMU's root bus a virtio function is conventional PCI, and
	 * has no FLR or PM reset there (reset=1 gives it one). */
	.pcie = false,
	.reset_works = false,
	.bar_size = { [MSIX_BAR] = 0x1000, [VN_BAR] = VN_BAR_SIZE },
	.bar_flags = { [VN_BAR] = MODEL_BAR_64 | MODEL_BAR_PREFETCH },
	.trap_bars = 1u << VN_BAR,
	.irq_kind = MODEL_IRQ_MSIX,
	.irq_vectors = 4,		/* queues=1; the config hook sets each instance's */
	.intx_pin = 1,
	.priv_size = sizeof(struct vnet),
	.config = vnet_config,
	.arg = vnet_arg,
	.init = vnet_init,
	.reset = vnet_reset,
	.poll = vnet_poll,
	.mmio_read = vnet_read,
	.mmio_write = vnet_write,
};

UPMD_MODEL_REGISTER_DEV(vnet_ops)
