/* The model's vfio: device files (cdev and group), vfio-pci regions, config space and interrupts, BAR mmap, and the legacy type1 container and group. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model_private.h"

/*
 * The rules follow Linux 6.12 drivers/vfio (vfio_main.c, device_cdev.c,
 * group.c, container.c, vfio_iommu_type1.c, pci/vfio_pci_core.c,
 * pci/vfio_pci_config.c, pci/vfio_pci_intrs.c, pci/vfio_pci_rdwr.c); a
 * comment names the function that decides each answer.
 */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

/* ---- config space ------------------------------------------------------------ */

static bool bar_is_upper(const struct upmd_model_dev *d, unsigned i)
{
	return i > 0 && (d->ops->bar_flags[i - 1] & MODEL_BAR_64) && d->ops->bar_size[i - 1];
}

void model_dev_config_init(struct upmd_model_dev *d)
{
	const struct upmd_model_dev_ops *ops = d->ops;
	uint8_t *c = d->cfg, *w = d->wmask, cap = 0x40, *prev_next = &c[PCI_CFG_CAP_PTR];
	uint64_t mem32 = 0xc0000000ULL + (uint64_t)d->index * 0x04000000ULL;
	uint64_t mem64 = 0x8000000000ULL + (uint64_t)d->index * 0x100000000ULL;
	struct model_dev_config xc = { .ncaps = 0 };
	bool has_io = false;
	unsigned i, room;

	memset(c, 0, sizeof(d->cfg));
	memset(w, 0, sizeof(d->wmask));
	d->cfg_size = ops->pcie ? 4096 : 256;
	put16(&c[PCI_CFG_VENDOR], ops->vendor_id);
	put16(&c[PCI_CFG_DEVICE], ops->device_id);
	c[PCI_CFG_REVISION] = ops->revision;
	c[PCI_CFG_CLASS] = (uint8_t)ops->class_code;
	c[PCI_CFG_CLASS + 1] = (uint8_t)(ops->class_code >> 8);
	c[PCI_CFG_CLASS + 2] = (uint8_t)(ops->class_code >> 16);
	put16(&c[PCI_CFG_SUBSYS_VENDOR], ops->subsystem_vendor_id);
	put16(&c[PCI_CFG_SUBSYS_ID], ops->subsystem_device_id);
	c[PCI_CFG_INT_PIN] = ops->intx_pin;
	c[PCI_CFG_INT_LINE] = ops->intx_pin ? 11 : 0;
	/* The bits a driver may write: I/O, memory, master, parity, SERR,
	 * INTx disable; cache line, latency, interrupt line. */
	put16(&w[PCI_CFG_COMMAND], 0x0547);
	w[PCI_CFG_CACHE_LINE] = 0xff;
	w[PCI_CFG_LATENCY] = 0xff;
	w[PCI_CFG_INT_LINE] = 0xff;

	/* Addresses as firmware would have assigned them, each naturally
	 * aligned; the virtual BAR registers start there (vfio's vconfig). */
	for (i = 0; i < MODEL_NUM_BARS; i++) {
		uint64_t size = ops->bar_size[i], addr;
		uint8_t fl = ops->bar_flags[i];

		if (!size || bar_is_upper(d, i))
			continue;
		if (fl & MODEL_BAR_IO) {
			has_io = true;
			addr = 0xc000 + (uint64_t)d->index * 0x100;
			d->bar_reg[i] = (uint32_t)addr | 0x1;
		} else if (fl & MODEL_BAR_64) {
			mem64 = UPMD_ALIGN_UP(mem64, size);
			addr = mem64;
			mem64 += size;
			d->bar_reg[i] = (uint32_t)addr | 0x4 | ((fl & MODEL_BAR_PREFETCH) ? 0x8 : 0);
			if (i + 1 < MODEL_NUM_BARS)
				d->bar_reg[i + 1] = (uint32_t)(addr >> 32);
		} else {
			mem32 = UPMD_ALIGN_UP(mem32, UPMD_MAX(size, 16));
			addr = mem32;
			mem32 += size;
			d->bar_reg[i] = (uint32_t)addr | ((fl & MODEL_BAR_PREFETCH) ? 0x8 : 0);
		}
	}
	memcpy(d->bar_reg_init, d->bar_reg, sizeof(d->bar_reg));

	/* The device's own capabilities first (QEMU's virtio order). */
	room = 0x100 - (ops->pcie ? 0x3c : 0) -
	       (ops->irq_kind == MODEL_IRQ_MSI ? 0x10 : ops->irq_kind == MODEL_IRQ_MSIX ? 0x0c : 0);
	xc.irq_vectors = ops->irq_vectors;
	if (ops->config)
		ops->config(d, &xc);
	for (i = 0; i < xc.ncaps && i < MODEL_MAX_DEV_CAPS; i++) {
		const struct model_dev_cap *dc = &xc.caps[i];

		/* Room is left for the framework's capabilities after them. */
		if (dc->len < 4 || dc->len > MODEL_DEV_CAP_MAX || cap + UPMD_ALIGN_UP(dc->len, 4u) > room) {
			UPMD_ERR(MODEL_LOG, "%s: capability %u (id 0x%02x, %u bytes) does not fit: left out",
				 d->bdf, i, dc->id, dc->len);
			continue;
		}
		*prev_next = cap;
		c[cap] = dc->id;
		memcpy(&c[cap + 2], dc->body, dc->len - 2u);
		prev_next = &c[cap + 1];
		cap = (uint8_t)(cap + UPMD_ALIGN_UP(dc->len, 4u));
	}

	if (ops->pcie) {
		/* A minimal PCI Express endpoint capability (v2). */
		*prev_next = cap;
		c[cap] = PCI_CAP_ID_EXP;
		put16(&c[cap + 2], 0x0002);
		prev_next = &c[cap + 1];
		cap += 0x3c;
	}
	if (ops->irq_kind == MODEL_IRQ_MSI) {
		unsigned mmc = 0;

		while ((1u << mmc) < xc.irq_vectors && mmc < 5)
			mmc++;
		d->msi_cap = cap;
		*prev_next = cap;
		c[cap] = PCI_CAP_ID_MSI;
		/* 64-bit capable, Multiple Message Capable; enable and MME
		 * writable, then address and data (QEMU's msi_init). */
		put16(&c[cap + 2], (uint16_t)(0x0080 | (mmc << 1)));
		put16(&w[cap + 2], 0x0071);
		put32(&w[cap + 4], 0xfffffffc);
		put32(&w[cap + 8], 0xffffffff);
		put16(&w[cap + 12], 0xffff);
		prev_next = &c[cap + 1];
		cap += 0x10;
	} else if (ops->irq_kind == MODEL_IRQ_MSIX) {
		d->msix_cap = cap;
		*prev_next = cap;
		c[cap] = PCI_CAP_ID_MSIX;
		put16(&c[cap + 2], (uint16_t)((xc.irq_vectors ? xc.irq_vectors : 1) - 1));
		put16(&w[cap + 2], 0xc000);
		put32(&c[cap + 4], xc.msix_table);
		put32(&c[cap + 8], xc.msix_pba);
		prev_next = &c[cap + 1];
		cap += 0x0c;
	}
	if (c[PCI_CFG_CAP_PTR])
		put16(&c[PCI_CFG_STATUS], PCI_STATUS_CAP_LIST);
	/* Firmware left decoding on; bus mastering is the driver's call. */
	put16(&c[PCI_CFG_COMMAND], (uint16_t)(PCI_CMD_MEMORY | (has_io ? PCI_CMD_IO : 0)));
}

static uint32_t bar_read(struct upmd_model_dev *d, unsigned i)
{
	return d->bar_reg[i];
}

/* Writes to a BAR keep only the bits its size decodes, so writing all
 * ones reads back the size mask (vfio_bar_fixup). */
static void bar_write(struct upmd_model_dev *d, unsigned i, uint32_t v)
{
	const struct upmd_model_dev_ops *ops = d->ops;

	if (bar_is_upper(d, i)) {
		uint64_t size = ops->bar_size[i - 1];

		d->bar_reg[i] = v & (uint32_t)(~(size - 1) >> 32);
		return;
	}
	if (!ops->bar_size[i]) {
		d->bar_reg[i] = 0;
		return;
	}
	if (ops->bar_flags[i] & MODEL_BAR_IO)
		d->bar_reg[i] = (v & ~(uint32_t)(ops->bar_size[i] - 1) & ~3u) | 1;
	else
		d->bar_reg[i] = (v & ~(uint32_t)(ops->bar_size[i] - 1) & ~0xfu) |
				(d->bar_reg_init[i] & 0xf);
}

static void cfg_read(struct upmd_model_dev *d, uint8_t *buf, unsigned off, unsigned n)
{
	unsigned k;

	for (k = 0; k < n; k++) {
		unsigned o = off + k;

		if (o >= PCI_CFG_BAR0 && o < PCI_CFG_BAR0 + 24) {
			unsigned i = (o - PCI_CFG_BAR0) / 4;

			buf[k] = (uint8_t)(bar_read(d, i) >> (8 * (o % 4)));
		} else if (o >= PCI_CFG_ROM && o < PCI_CFG_ROM + 4) {
			buf[k] = 0;	/* no option ROM */
		} else {
			buf[k] = d->cfg[o];
		}
	}
}

static void cfg_write(struct upmd_model_dev *d, const uint8_t *buf, unsigned off, unsigned n)
{
	unsigned k;

	for (k = 0; k < n; k++) {
		unsigned o = off + k;

		if (o >= PCI_CFG_BAR0 && o < PCI_CFG_BAR0 + 24) {
			unsigned i = (o - PCI_CFG_BAR0) / 4, sh = 8 * (o % 4);
			uint32_t v = bar_read(d, i);

			v = (v & ~(0xffu << sh)) | ((uint32_t)buf[k] << sh);
			bar_write(d, i, v);
		} else if (o < d->cfg_size) {
			d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (buf[k] & d->wmask[o]));
		}
	}
}

/* vfio_config_do_rw: an access reaching past the config space is EFAULT. */
static ssize_t config_rw(struct upmd_model_dev *d, void *buf, size_t n, uint64_t pos, bool write)
{
	if (pos >= d->cfg_size || pos + n > d->cfg_size || pos + n < pos)
		return -EFAULT;
	pthread_mutex_lock(&d->lock);
	if (write)
		cfg_write(d, buf, (unsigned)pos, (unsigned)n);
	else
		cfg_read(d, buf, (unsigned)pos, (unsigned)n);
	pthread_mutex_unlock(&d->lock);
	return (ssize_t)n;
}

/* ---- BAR access ------------------------------------------------------------------- */

static bool mem_enabled(struct upmd_model_dev *d)
{
	return get16(&d->cfg[PCI_CFG_COMMAND]) & PCI_CMD_MEMORY;
}

/* vfio_pci_bar_rw + vfio_pci_core_do_io_rw: naturally aligned pieces of
 * at most 8 bytes, each one register access. */
static ssize_t bar_rw(struct upmd_model_dev *d, unsigned bar, uint8_t *buf, size_t n,
		      uint64_t pos, bool write)
{
	uint64_t size = d->ops->bar_size[bar];
	size_t done = 0;

	if (!size || bar_is_upper(d, bar))
		return -EINVAL;
	if (pos >= size)
		return -EINVAL;
	n = (size_t)UPMD_MIN((uint64_t)n, size - pos);
	if (!(d->ops->bar_flags[bar] & MODEL_BAR_IO) && !mem_enabled(d))
		return -EIO;
	while (done < n) {
		uint64_t off = pos + done;
		size_t left = n - done;
		unsigned sz = (left >= 8 && !(off % 8)) ? 8 : (left >= 4 && !(off % 4)) ? 4 :
			      (left >= 2 && !(off % 2)) ? 2 : 1;
		uint64_t v = 0;

		if (write) {
			memcpy(&v, buf + done, sz);
			if (d->ops->mmio_write)
				d->ops->mmio_write(d, bar, off, sz, v);
		} else {
			v = d->ops->mmio_read ? d->ops->mmio_read(d, bar, off, sz) : ~0ULL;
			memcpy(buf + done, &v, sz);
		}
		done += sz;
	}
	return (ssize_t)done;
}

ssize_t model_device_rw(struct model_devfile *df, void *buf, size_t n, off_t off, bool write)
{
	struct upmd_model_dev *d = df->dev;
	uint64_t index = (uint64_t)off >> VFIO_PCI_REGION_SHIFT;
	uint64_t pos = (uint64_t)off & ((1ULL << VFIO_PCI_REGION_SHIFT) - 1);

	/* vfio_device_fops_read/write: nothing before access is granted. */
	if (!df->access)
		return -EINVAL;
	if (off < 0 || index >= VFIO_PCI_NUM_REGIONS)
		return -EINVAL;
	if (n == 0)
		return 0;
	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		return config_rw(d, buf, n, pos, write);
	case VFIO_PCI_ROM_REGION_INDEX:
	case VFIO_PCI_VGA_REGION_INDEX:
		/* No option ROM and no VGA on model devices. */
		return -EINVAL;
	default:
		return bar_rw(d, (unsigned)index, buf, n, pos, write);
	}
}

/* ---- enable and disable (vfio_pci_core_enable / _disable) ------------------------- */

static void dev_enable(struct upmd_model_dev *d)
{
	/* pci_try_reset_function at open, when the function has a reset. */
	if (d->reset_works && d->ops->reset)
		d->ops->reset(d);
	pthread_mutex_lock(&d->lock);
	put16(&d->cfg[PCI_CFG_COMMAND], get16(&d->cfg[PCI_CFG_COMMAND]) | PCI_CMD_MEMORY);
	pthread_mutex_unlock(&d->lock);
}

/* The last close: interrupts off, bus mastering off, reset if it can,
 * config space back to what it was at open. */
void model_dev_disable(struct upmd_model_dev *d)
{
	model_dev_irq_clear(d);
	pthread_mutex_lock(&d->lock);
	put16(&d->cfg[PCI_CFG_COMMAND], get16(&d->cfg[PCI_CFG_COMMAND]) & ~PCI_CMD_MASTER);
	memcpy(d->bar_reg, d->bar_reg_init, sizeof(d->bar_reg));
	if (d->msi_cap)
		put16(&d->cfg[d->msi_cap + 2], get16(&d->cfg[d->msi_cap + 2]) & ~0x0071);
	if (d->msix_cap)
		put16(&d->cfg[d->msix_cap + 2], get16(&d->cfg[d->msix_cap + 2]) & ~0xc000);
	pthread_mutex_unlock(&d->lock);
	if (d->reset_works && d->ops->reset)
		d->ops->reset(d);
}

static void access_grant(struct upmd_model_dev *d, struct model_devfile *df)
{
	df->access = true;
	if (d->open_count++ == 0)
		dev_enable(d);
}

/* ---- device files -------------------------------------------------------------- */

struct model_devfile *model_devfile_new(struct upmd_model_dev *d, bool via_group)
{
	struct model_devfile *df = calloc(1, sizeof(*df));

	if (!df)
		return NULL;
	df->dev = d;
	df->via_group = via_group;
	df->refs = 1;
	df->fd_open = true;
	d->files++;
	return df;
}

/* The last reference (fd closed, BAR mappings gone) is the file's
 * release: unbind and detach, or leave the group's container. */
void model_devfile_put(struct model_devfile *df)
{
	struct upmd_model_dev *d = df->dev;

	if (--df->refs)
		return;
	if (df->access) {
		if (df->via_group) {
			model_group_put(d);
		} else {
			model_idev_unbind(df->idev);
			d->cdev_bound = NULL;
		}
		if (--d->open_count == 0)
			model_dev_disable(d);
	}
	d->files--;
	free(df);
}

/* vfio_df_ioctl_bind_iommufd */
static int dev_bind(struct model_devfile *df, void *arg)
{
	struct upmd_model_dev *d = df->dev;
	struct vfio_device_bind_iommufd bind;
	struct model_file *f;
	int rc;

	if (!arg)
		return -EFAULT;
	memcpy(&bind, arg, sizeof(bind));
	if (bind.argsz < sizeof(bind) || bind.flags || bind.iommufd < 0)
		return -EINVAL;
	if (df->via_group)
		return -EINVAL;
	/* vfio_device_block_group: the group's own file is open. */
	if (d->group_open)
		return -EBUSY;
	if (df->access)
		return -EINVAL;
	/* iommufd_ctx_from_fd */
	if (fcntl(bind.iommufd, F_GETFD) < 0)
		return -EBADF;
	f = model_file_get(d->m, bind.iommufd);
	if (!f || f->kind != MF_IOMMUFD)
		return -EBADFD;
	/* vfio_df_open: a cdev opens the device once. */
	if (d->open_count)
		return -EINVAL;
	rc = model_idev_bind(f->u.ictx, d, &df->idev);
	if (rc < 0)
		return rc;
	df->ictx = f->u.ictx;
	d->cdev_bound = df;
	access_grant(d, df);
	memcpy((uint8_t *)arg + offsetof(struct vfio_device_bind_iommufd, out_devid),
	       &df->idev->obj.id, sizeof(uint32_t));
	return 0;
}

/*
 * A PASID the device can carry: it needs PASID support at all (what
 * GET_HW_INFO reports as max_pasid_log2), a value inside its width, and
 * not 0 (IOMMU_NO_PASID, the RID's own).
 */
static bool pasid_ok(const struct upmd_model_dev *d, uint32_t pasid)
{
	return d->pasid_bits && pasid > 0 && pasid < (1u << d->pasid_bits);
}

/* vfio_df_ioctl_attach_pt (6.12; with PASID as 6.15) */
static int dev_attach(struct model_devfile *df, void *arg)
{
	struct vfio_device_attach_iommufd_pt at = { 0 };
	bool no_pasid = df->dev->m->flags & UPMD_MODEL_F_NO_PASID;
	bool has_pasid;
	int rc;

	if (!arg)
		return -EFAULT;
	memcpy(&at, arg, VFIO_DEVICE_ATTACH_MINSZ);
	if (at.argsz < VFIO_DEVICE_ATTACH_MINSZ)
		return -EINVAL;
	if (no_pasid ? at.flags != 0 : (at.flags & ~VFIO_DEVICE_ATTACH_PASID) != 0)
		return -EINVAL;
	has_pasid = at.flags & VFIO_DEVICE_ATTACH_PASID;
	if (has_pasid) {
		if (at.argsz < sizeof(at))
			return -EINVAL;
		memcpy(&at.pasid, (uint8_t *)arg + offsetof(struct vfio_device_attach_iommufd_pt, pasid),
		       sizeof(at.pasid));
		if (!pasid_ok(df->dev, at.pasid))
			return -EINVAL;
	}
	rc = model_idev_attach(df->idev, at.pasid, has_pasid, &at.pt_id);
	if (rc < 0)
		return rc;
	memcpy((uint8_t *)arg + offsetof(struct vfio_device_attach_iommufd_pt, pt_id), &at.pt_id,
	       sizeof(at.pt_id));
	return 0;
}

/* vfio_df_ioctl_detach_pt: detaching what is not attached is fine. */
static int dev_detach(struct model_devfile *df, void *arg)
{
	struct vfio_device_detach_iommufd_pt dt = { 0 };
	bool no_pasid = df->dev->m->flags & UPMD_MODEL_F_NO_PASID;
	bool has_pasid;

	if (!arg)
		return -EFAULT;
	memcpy(&dt, arg, VFIO_DEVICE_DETACH_MINSZ);
	if (dt.argsz < VFIO_DEVICE_DETACH_MINSZ)
		return -EINVAL;
	if (no_pasid ? dt.flags != 0 : (dt.flags & ~VFIO_DEVICE_DETACH_PASID) != 0)
		return -EINVAL;
	has_pasid = dt.flags & VFIO_DEVICE_DETACH_PASID;
	if (has_pasid) {
		if (dt.argsz < sizeof(dt))
			return -EINVAL;
		memcpy(&dt.pasid, (uint8_t *)arg + offsetof(struct vfio_device_detach_iommufd_pt, pasid),
		       sizeof(dt.pasid));
		if (!pasid_ok(df->dev, dt.pasid))
			return -EINVAL;
	}
	model_idev_detach(df->idev, dt.pasid, has_pasid);
	return 0;
}

/* vfio_pci_ioctl_get_info */
static int dev_get_info(struct upmd_model_dev *d, void *arg)
{
	struct vfio_device_info info = { 0 };

	if (!arg)
		return -EFAULT;
	memcpy(&info, arg, VFIO_DEVICE_INFO_MINSZ);
	if (info.argsz < VFIO_DEVICE_INFO_MINSZ)
		return -EINVAL;
	info.flags = VFIO_DEVICE_FLAGS_PCI | (d->reset_works ? VFIO_DEVICE_FLAGS_RESET : 0);
	info.num_regions = VFIO_PCI_NUM_REGIONS;
	info.num_irqs = VFIO_PCI_NUM_IRQS;
	info.cap_offset = 0;
	info.pad = 0;
	memcpy(arg, &info, UPMD_MIN((size_t)info.argsz, sizeof(info)));
	return 0;
}

static bool bar_mmappable(const struct upmd_model_dev *d, unsigned i)
{
	/* vfio_pci_core_enable: memory BARs of at least a page. */
	return d->ops->bar_size[i] >= MODEL_PAGE && !(d->ops->bar_flags[i] & MODEL_BAR_IO) &&
	       !bar_is_upper(d, i);
}

/* vfio_pci_ioctl_get_region_info */
static int dev_region_info(struct upmd_model_dev *d, void *arg)
{
	struct vfio_region_info ri;

	if (!arg)
		return -EFAULT;
	memcpy(&ri, arg, VFIO_REGION_INFO_MINSZ);
	if (ri.argsz < VFIO_REGION_INFO_MINSZ)
		return -EINVAL;
	ri.cap_offset = 0;
	switch (ri.index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		ri.offset = VFIO_PCI_INDEX_TO_OFFSET(ri.index);
		ri.size = d->cfg_size;
		ri.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		break;
	case VFIO_PCI_BAR0_REGION_INDEX ... VFIO_PCI_BAR5_REGION_INDEX:
		ri.offset = VFIO_PCI_INDEX_TO_OFFSET(ri.index);
		ri.size = bar_is_upper(d, ri.index) ? 0 : d->ops->bar_size[ri.index];
		if (!ri.size) {
			ri.flags = 0;
			break;
		}
		ri.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		if (bar_mmappable(d, ri.index))
			ri.flags |= VFIO_REGION_INFO_FLAG_MMAP;
		break;
	case VFIO_PCI_ROM_REGION_INDEX:
		/* No ROM BAR: size 0, no flags. */
		ri.offset = VFIO_PCI_INDEX_TO_OFFSET(ri.index);
		ri.size = 0;
		ri.flags = 0;
		break;
	default:
		/* VGA only for VGA devices; nothing past it. */
		return -EINVAL;
	}
	memcpy(arg, &ri, VFIO_REGION_INFO_MINSZ);
	return 0;
}

/* vfio_pci_get_irq_count */
static unsigned irq_count(struct upmd_model_dev *d, unsigned index)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		return d->cfg[PCI_CFG_INT_PIN] ? 1 : 0;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return d->msi_cap ? 1u << ((get16(&d->cfg[d->msi_cap + 2]) & 0x000e) >> 1) : 0;
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return d->msix_cap ? (get16(&d->cfg[d->msix_cap + 2]) & 0x07ff) + 1u : 0;
	case VFIO_PCI_ERR_IRQ_INDEX:
		return d->ops->pcie ? 1 : 0;
	case VFIO_PCI_REQ_IRQ_INDEX:
		return 1;
	default:
		return 0;
	}
}

/* vfio_pci_ioctl_get_irq_info */
static int dev_irq_info(struct upmd_model_dev *d, void *arg)
{
	struct vfio_irq_info ii;

	if (!arg)
		return -EFAULT;
	memcpy(&ii, arg, sizeof(ii));
	if (ii.argsz < sizeof(ii) || ii.index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;
	if (ii.index == VFIO_PCI_ERR_IRQ_INDEX && !d->ops->pcie)
		return -EINVAL;
	ii.flags = VFIO_IRQ_INFO_EVENTFD;
	ii.count = irq_count(d, ii.index);
	if (ii.index == VFIO_PCI_INTX_IRQ_INDEX)
		ii.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
	else
		ii.flags |= VFIO_IRQ_INFO_NORESIZE;
	memcpy(arg, &ii, sizeof(ii));
	return 0;
}

/* Take a reference on the eventfd, as eventfd_ctx_fdget does. */
static int efd_get(int32_t fd, int *out)
{
	int rc = model_check_eventfd(fd);

	if (rc < 0)
		return rc;
	*out = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return *out < 0 ? -errno : 0;
}

static void efd_put(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* vfio_pci_set_msi_trigger (irq_lock held) */
static int set_msi_trigger(struct upmd_model_dev *d, unsigned index, uint32_t start,
			   uint32_t count, uint32_t flags, const uint8_t *data)
{
	unsigned i;
	int rc;

	if (d->irq_type == (int)index && !count && (flags & VFIO_IRQ_SET_DATA_NONE)) {
		for (i = 0; i < d->ntrig; i++)
			efd_put(&d->trig[i]);
		free(d->trig);
		d->trig = NULL;
		d->ntrig = 0;
		d->irq_type = IRQT_NONE;
		return 0;
	}
	if (!(d->irq_type == (int)index || d->irq_type == IRQT_NONE))
		return -EINVAL;
	if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
		bool enabling = d->irq_type == IRQT_NONE;

		if (enabling) {
			/* vfio_msi_enable: start + count vectors. */
			d->trig = malloc((start + count) * sizeof(int));
			if (!d->trig)
				return -ENOMEM;
			d->ntrig = start + count;
			for (i = 0; i < d->ntrig; i++)
				d->trig[i] = -1;
			d->irq_type = (int)index;
		} else if (start + count > d->ntrig) {
			return -EINVAL;
		}
		/* vfio_msi_set_block: undo this call's vectors on failure. */
		for (i = 0; i < count; i++) {
			int32_t fd;
			int nfd = -1;

			memcpy(&fd, data + i * sizeof(fd), sizeof(fd));
			if (fd >= 0) {
				rc = efd_get(fd, &nfd);
				if (rc < 0) {
					while (i--)
						efd_put(&d->trig[start + i]);
					if (enabling) {
						free(d->trig);
						d->trig = NULL;
						d->ntrig = 0;
						d->irq_type = IRQT_NONE;
					}
					return rc;
				}
			}
			efd_put(&d->trig[start + i]);
			d->trig[start + i] = nfd;
		}
		return 0;
	}
	if (d->irq_type != (int)index)
		return -EINVAL;
	/* DATA_NONE / DATA_BOOL: loopback triggers. */
	for (i = start; i < start + count && i < d->ntrig; i++) {
		uint64_t one = 1;

		if ((flags & VFIO_IRQ_SET_DATA_BOOL) && !data[i - start])
			continue;
		if (d->trig[i] >= 0 && write(d->trig[i], &one, sizeof(one)) < 0)
			UPMD_DEBUG(MODEL_LOG, "%s: eventfd: %s", d->bdf, strerror(errno));
	}
	return 0;
}

/* vfio_pci_set_intx_trigger / _mask / _unmask (irq_lock held) */
static int set_intx(struct upmd_model_dev *d, uint32_t action, uint32_t start, uint32_t count,
		    uint32_t flags, const uint8_t *data)
{
	bool is_intx = d->irq_type == VFIO_PCI_INTX_IRQ_INDEX;
	uint64_t one = 1;
	int32_t fd;
	int rc, nfd = -1;

	if (action == VFIO_IRQ_SET_ACTION_MASK || action == VFIO_IRQ_SET_ACTION_UNMASK) {
		bool set;

		if (!is_intx || start != 0 || count != 1)
			return -EINVAL;
		if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
			/* An unmask irqfd: accepted, the model unmasks itself. */
			memcpy(&fd, data, sizeof(fd));
			return fd >= 0 ? model_check_eventfd(fd) : 0;
		}
		set = (flags & VFIO_IRQ_SET_DATA_BOOL) ? data[0] != 0 : true;
		if (!set)
			return 0;
		if (action == VFIO_IRQ_SET_ACTION_MASK) {
			d->intx_masked = true;
		} else if (d->intx_masked) {
			d->intx_masked = false;
			/* Still asserted: vfio sees the line again at once. */
			if (d->intx_level && d->ntrig && d->trig[0] >= 0) {
				if (write(d->trig[0], &one, sizeof(one)) < 0)
					UPMD_DEBUG(MODEL_LOG, "%s: eventfd: %s", d->bdf, strerror(errno));
				d->intx_masked = true;
			}
		}
		return 0;
	}
	if (is_intx && !count && (flags & VFIO_IRQ_SET_DATA_NONE)) {
		efd_put(&d->trig[0]);
		free(d->trig);
		d->trig = NULL;
		d->ntrig = 0;
		d->irq_type = IRQT_NONE;
		d->intx_masked = false;
		return 0;
	}
	if (!(is_intx || d->irq_type == IRQT_NONE) || start != 0 || count != 1)
		return -EINVAL;
	if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
		memcpy(&fd, data, sizeof(fd));
		if (fd >= 0) {
			rc = efd_get(fd, &nfd);
			if (rc < 0)
				return rc;
		}
		if (!is_intx) {
			d->trig = malloc(sizeof(int));
			if (!d->trig) {
				efd_put(&nfd);
				return -ENOMEM;
			}
			d->trig[0] = -1;
			d->ntrig = 1;
			d->irq_type = VFIO_PCI_INTX_IRQ_INDEX;
			d->intx_masked = false;
		}
		efd_put(&d->trig[0]);
		d->trig[0] = nfd;
		return 0;
	}
	if (!is_intx)
		return -EINVAL;
	if (((flags & VFIO_IRQ_SET_DATA_BOOL) ? data[0] != 0 : true) && d->trig[0] >= 0 &&
	    write(d->trig[0], &one, sizeof(one)) < 0)
		UPMD_DEBUG(MODEL_LOG, "%s: eventfd: %s", d->bdf, strerror(errno));
	return 0;
}

/* vfio_pci_set_ctx_trigger_single for the request interrupt. */
static int set_req(struct upmd_model_dev *d, uint32_t count, uint32_t flags, const uint8_t *data)
{
	uint64_t one = 1;
	int32_t fd;
	int rc, nfd;

	if (flags & VFIO_IRQ_SET_DATA_NONE) {
		if (d->req_fd >= 0) {
			if (count) {
				if (write(d->req_fd, &one, sizeof(one)) < 0)
					UPMD_DEBUG(MODEL_LOG, "%s: eventfd: %s", d->bdf, strerror(errno));
			} else {
				efd_put(&d->req_fd);
			}
		}
		return 0;
	}
	if (!count)
		return -EINVAL;
	if (flags & VFIO_IRQ_SET_DATA_BOOL) {
		if (data[0] && d->req_fd >= 0 && write(d->req_fd, &one, sizeof(one)) < 0)
			UPMD_DEBUG(MODEL_LOG, "%s: eventfd: %s", d->bdf, strerror(errno));
		return 0;
	}
	memcpy(&fd, data, sizeof(fd));
	if (fd == -1) {
		efd_put(&d->req_fd);
	} else if (fd >= 0) {
		rc = efd_get(fd, &nfd);
		if (rc < 0)
			return rc;
		efd_put(&d->req_fd);
		d->req_fd = nfd;
	}
	return 0;
}

/* vfio_pci_ioctl_set_irqs + vfio_set_irqs_validate_and_prepare */
static int dev_set_irqs(struct upmd_model_dev *d, void *arg)
{
	const size_t minsz = offsetof(struct vfio_irq_set, count) + sizeof(uint32_t);
	struct vfio_irq_set hdr;
	uint32_t action, max;
	size_t size;
	int rc;

	if (!arg)
		return -EFAULT;
	memcpy(&hdr, arg, minsz);
	max = hdr.index < VFIO_PCI_NUM_IRQS ? irq_count(d, hdr.index) : 0;
	if (hdr.argsz < minsz || hdr.index >= VFIO_PCI_NUM_IRQS ||
	    hdr.count >= UINT32_MAX - hdr.start ||
	    (hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)))
		return -EINVAL;
	if (hdr.start >= max || hdr.start + hdr.count > max)
		return -EINVAL;
	switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_NONE:
		size = 0;
		break;
	case VFIO_IRQ_SET_DATA_BOOL:
		size = 1;
		break;
	case VFIO_IRQ_SET_DATA_EVENTFD:
		size = sizeof(int32_t);
		break;
	default:
		return -EINVAL;
	}
	if (size && hdr.argsz - minsz < (size_t)hdr.count * size)
		return -EINVAL;

	/* vfio_pci_set_irqs_ioctl: no handler for the pair is ENOTTY. */
	action = hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	if (action != VFIO_IRQ_SET_ACTION_MASK && action != VFIO_IRQ_SET_ACTION_UNMASK &&
	    action != VFIO_IRQ_SET_ACTION_TRIGGER)
		return -ENOTTY;
	pthread_mutex_lock(&d->irq_lock);
	switch (hdr.index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		rc = set_intx(d, action, hdr.start, hdr.count, hdr.flags, (uint8_t *)arg + minsz);
		break;
	case VFIO_PCI_MSI_IRQ_INDEX:
	case VFIO_PCI_MSIX_IRQ_INDEX:
		rc = action == VFIO_IRQ_SET_ACTION_TRIGGER
			     ? set_msi_trigger(d, hdr.index, hdr.start, hdr.count, hdr.flags,
					       (uint8_t *)arg + minsz)
			     : -ENOTTY;
		break;
	case VFIO_PCI_ERR_IRQ_INDEX:
		/* Only PCIe functions count an ERR vector (checked above). */
		rc = action == VFIO_IRQ_SET_ACTION_TRIGGER ? 0 : -ENOTTY;
		break;
	default:
		rc = action == VFIO_IRQ_SET_ACTION_TRIGGER
			     ? set_req(d, hdr.count, hdr.flags, (uint8_t *)arg + minsz)
			     : -ENOTTY;
		break;
	}
	pthread_mutex_unlock(&d->irq_lock);
	return rc;
}

int model_device_ioctl(struct model_devfile *df, unsigned long req, void *arg)
{
	struct upmd_model_dev *d = df->dev;

	if (req == VFIO_DEVICE_BIND_IOMMUFD)
		return dev_bind(df, arg);
	/* vfio_device_fops_unl_ioctl: nothing else before access. */
	if (!df->access)
		return -EINVAL;
	if (!df->via_group) {
		if (req == VFIO_DEVICE_ATTACH_IOMMUFD_PT)
			return dev_attach(df, arg);
		if (req == VFIO_DEVICE_DETACH_IOMMUFD_PT)
			return dev_detach(df, arg);
	}
	switch (req) {
	case VFIO_DEVICE_GET_INFO:
		return dev_get_info(d, arg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return dev_region_info(d, arg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return dev_irq_info(d, arg);
	case VFIO_DEVICE_SET_IRQS:
		return dev_set_irqs(d, arg);
	case VFIO_DEVICE_RESET:
		if (!d->reset_works)
			return -EINVAL;
		if (d->ops->reset)
			d->ops->reset(d);
		return 0;
	default:
		return -ENOTTY;
	}
}

/* ---- BAR mmap ---------------------------------------------------------------------- */

/* vfio_pci_core_mmap */
int model_device_mmap(struct model_devfile *df, void *addr, size_t len, int prot, int flags,
		      off_t off, void **out)
{
	struct upmd_model_dev *d = df->dev;
	struct upmd_model *m = d->m;
	uint64_t index = (uint64_t)off >> VFIO_PCI_REGION_SHIFT;
	uint64_t start = (uint64_t)off & ((1ULL << VFIO_PCI_REGION_SHIFT) - 1);
	struct model_barmap *bm;
	bool trap;
	void *p;
	int rc;

	if (!out)
		return -EFAULT;
	/* mmap(2) itself: zero length or an unaligned offset. */
	if (len == 0 || off < 0 || (off & (off_t)(MODEL_PAGE - 1)))
		return -EINVAL;
	if (!df->access)
		return -EINVAL;
	if (index >= VFIO_PCI_NUM_REGIONS || !(flags & MAP_SHARED))
		return -EINVAL;
	if (index >= VFIO_PCI_ROM_REGION_INDEX || !bar_mmappable(d, (unsigned)index))
		return -EINVAL;
	if (start + len > d->bar_len[index] || start + len < start)
		return -EINVAL;
	bm = calloc(1, sizeof(*bm));
	if (!bm)
		return -ENOMEM;
	trap = (d->ops->trap_bars & (1u << index)) && model_trap_supported();
	/* A trapped mapping is inaccessible: every access faults into the
	 * model, which runs the register's side effect (model_trap.c). */
	p = mmap(addr, len, trap ? PROT_NONE : prot,
		 MAP_SHARED | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE)),
		 d->bar_fd[index], (off_t)start);
	if (p == MAP_FAILED) {
		rc = -errno;
		free(bm);
		return rc;
	}
	bm->start = (uintptr_t)p;
	bm->end = (uintptr_t)p + UPMD_ALIGN_UP(len, MODEL_PAGE);
	bm->dev = d;
	bm->df = df;
	bm->bar = (unsigned)index;
	bm->bar_off = start;
	bm->prot = prot;
	bm->trapped = trap;
	bm->trap_slot = -1;
	if (trap) {
		rc = model_trap_add(bm);
		if (rc < 0) {
			munmap(p, len);
			free(bm);
			return rc;
		}
	}
	df->refs++;
	bm->next = m->barmaps;
	m->barmaps = bm;
	m->nbarmaps++;
	*out = p;
	return 0;
}

static void barmap_unlink(struct upmd_model *m, struct model_barmap *bm)
{
	struct model_barmap **pp;

	for (pp = &m->barmaps; *pp; pp = &(*pp)->next)
		if (*pp == bm) {
			*pp = bm->next;
			break;
		}
	m->nbarmaps--;
}

/*
 * munmap through the table: BAR mappings are trimmed or split like the
 * VMAs they are, and a device file lives until its last mapping goes
 * (the mapping holds the file, as vma->vm_file does).
 */
int model_munmap(struct upmd_model *m, void *addr, size_t len, bool *handled)
{
	uintptr_t a = (uintptr_t)addr, e = a + UPMD_ALIGN_UP(len, MODEL_PAGE);
	struct model_barmap *bm, *next;
	int rc = 0;

	*handled = false;
	if (len == 0 || (a & (MODEL_PAGE - 1)) || e < a)
		return -EINVAL;
	for (bm = m->barmaps; bm; bm = next) {
		next = bm->next;
		if (bm->end <= a || e <= bm->start)
			continue;
		*handled = true;
		if (bm->trapped)
			model_trap_del(bm);
		if (a <= bm->start && e >= bm->end) {
			struct model_devfile *df = bm->df;

			barmap_unlink(m, bm);
			free(bm);
			model_devfile_put(df);
			continue;
		}
		if (a > bm->start && e < bm->end) {
			/* A hole in the middle: the tail becomes a mapping of its own. */
			struct model_barmap *tail = malloc(sizeof(*tail));

			if (!tail)
				return -ENOMEM;
			*tail = *bm;
			tail->start = e;
			tail->bar_off = bm->bar_off + (e - bm->start);
			tail->trap_slot = -1;
			bm->end = a;
			bm->df->refs++;
			tail->next = m->barmaps;
			m->barmaps = tail;
			m->nbarmaps++;
			if (tail->trapped && model_trap_add(tail) < 0)
				tail->trapped = false;
		} else if (a <= bm->start) {
			bm->bar_off += e - bm->start;
			bm->start = e;
		} else {
			bm->end = a;
		}
		if (bm->trapped && model_trap_add(bm) < 0)
			bm->trapped = false;
	}
	if (*handled && munmap(addr, len) < 0)
		rc = -errno;
	return rc;
}

/* ---- legacy type1 container ---------------------------------------------------------- */

static void t1_unpin(struct upmd_model *m, struct model_t1dma *dma)
{
	if (!dma->pinned)
		return;
	if (!dma->lock_cap)
		model_uncharge(m, ACCT_TYPE1, dma->npages);
	m->pinned_pages -= dma->npages;
	dma->pinned = false;
}

static void t1_drop_all(struct model_container *c)
{
	unsigned i;

	pthread_rwlock_wrlock(&c->rw);
	for (i = 0; i < c->ndmas; i++)
		t1_unpin(c->m, &c->dmas[i]);
	c->ndmas = 0;
	pthread_rwlock_unlock(&c->rw);
}

void model_container_put(struct model_container *c)
{
	struct model_container **pp;

	if (--c->refs)
		return;
	t1_drop_all(c);
	for (pp = &c->m->containers; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_rwlock_destroy(&c->rw);
	free(c->dmas);
	free(c);
}

/* The type1 IOVA list: the aperture minus the reserved regions. */
static unsigned t1_ranges(struct model_container *c, struct vfio_iova_range r[2])
{
	unsigned aw = c->m->aw_bits;

	r[0].start = 0;
	r[0].end = MODEL_MSI_FIRST - 1;
	r[1].start = MODEL_MSI_LAST + 1;
	r[1].end = aw < 64 ? (1ULL << aw) - 1 : UINT64_MAX;
	return 2;
}

/* vfio_iommu_type1_get_info with its capability chain (migration,
 * dma_avail, iova ranges, in that order, each 8-byte aligned). */
static int t1_get_info(struct model_container *c, void *arg)
{
	const size_t minsz = offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + sizeof(uint64_t);
	struct vfio_iommu_type1_info info;
	struct vfio_iova_range r[2];
	uint8_t caps[32 + 16 + 16 + 2 * 16];
	size_t csize = 0, user_argsz;
	unsigned nr = t1_ranges(c, r);
	struct vfio_info_cap_header *h;

	if (!arg)
		return -EFAULT;
	memset(&info, 0, sizeof(info));
	memcpy(&info, arg, minsz);
	if (info.argsz < minsz)
		return -EINVAL;
	user_argsz = info.argsz;
	memset(caps, 0, sizeof(caps));
	/* migration: {hdr, u32 flags, u64 pgsize_bitmap, u64 max_dirty_bitmap_size} */
	h = (void *)caps;
	h->id = MODEL_TYPE1_CAP_MIGRATION;
	h->version = 1;
	{
		uint64_t pgsize = MODEL_PAGE, maxdirty = 0x10000000ULL;

		memcpy(caps + 16, &pgsize, 8);
		memcpy(caps + 24, &maxdirty, 8);
	}
	csize = 32;
	/* dma_avail: {hdr, u32 avail} padded to 16 */
	h->next = (uint32_t)csize;
	h = (void *)(caps + csize);
	h->id = MODEL_TYPE1_CAP_DMA_AVAIL;
	h->version = 1;
	{
		uint32_t avail = MODEL_TYPE1_DMA_ENTRY_LIMIT - c->ndmas;

		memcpy(caps + csize + 8, &avail, 4);
	}
	csize += 16;
	/* iova ranges: {hdr, u32 nr, u32 reserved, ranges[]} */
	h->next = (uint32_t)csize;
	h = (void *)(caps + csize);
	h->id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
	h->version = 1;
	memcpy(caps + csize + 8, &nr, 4);
	memcpy(caps + csize + 16, r, nr * sizeof(r[0]));
	csize += 16 + nr * sizeof(r[0]);

	info.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
	/* 4 KiB, 2 MiB and 1 GiB: QEMU's intel-iommu second-level pages. */
	info.iova_pgsizes = MODEL_PAGE | (2ULL << 20) | (1ULL << 30);
	info.cap_offset = 0;
	if (user_argsz < sizeof(info) + csize) {
		info.argsz = (uint32_t)(sizeof(info) + csize);
	} else {
		/* vfio_info_cap_shift: offsets count from the info struct. */
		uint8_t *dst = (uint8_t *)arg + sizeof(info);
		size_t o = 0;

		for (;;) {
			struct vfio_info_cap_header *ch = (void *)(caps + o);
			size_t nx = ch->next;

			if (nx)
				ch->next += (uint32_t)sizeof(info);
			if (!nx)
				break;
			o = nx;
		}
		memcpy(dst, caps, csize);
		info.cap_offset = sizeof(info);
	}
	memcpy(arg, &info, UPMD_MIN(user_argsz, sizeof(info)));
	return 0;
}

unsigned model_container_mappings(struct upmd_model *m, struct upmd_model_mapping *out, unsigned max, unsigned n)
{
	struct model_container *c;
	unsigned i;

	for (c = m->containers; c; c = c->next) {
		pthread_rwlock_rdlock(&c->rw);
		for (i = 0; i < c->ndmas; i++, n++) {
			const struct model_t1dma *d = &c->dmas[i];

			if (n >= max)
				continue;
			out[n] = (struct upmd_model_mapping){
				.prot = ((d->prot & VFIO_DMA_MAP_FLAG_READ) ? UPMD_MODEL_MAP_READ : 0) |
					((d->prot & VFIO_DMA_MAP_FLAG_WRITE) ? UPMD_MODEL_MAP_WRITE : 0),
				.iova = d->iova,
				.len = d->size,
				.va = d->vaddr,
			};
		}
		pthread_rwlock_unlock(&c->rw);
	}
	return n;
}

static struct model_t1dma *t1_find(struct model_container *c, uint64_t start, uint64_t size)
{
	unsigned i;

	for (i = 0; i < c->ndmas; i++)
		if (c->dmas[i].iova < start + size && start < c->dmas[i].iova + c->dmas[i].size)
			return &c->dmas[i];
	return NULL;
}

/* vfio_iommu_type1_map_dma + vfio_dma_do_map */
static int t1_map(struct model_container *c, void *arg)
{
	const size_t minsz = offsetof(struct vfio_iommu_type1_dma_map, size) + sizeof(uint64_t);
	const uint32_t mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
	struct upmd_model *m = c->m;
	struct vfio_iommu_type1_dma_map map;
	struct vfio_iova_range r[2];
	struct model_t1dma dma = { 0 };
	unsigned nr, i;
	bool valid = false;
	int rc;

	if (!arg)
		return -EFAULT;
	memcpy(&map, arg, minsz);
	if (map.argsz < minsz || (map.flags & ~mask))
		return -EINVAL;
	dma.prot = map.flags & (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
	if (!!dma.prot == !!(map.flags & VFIO_DMA_MAP_FLAG_VADDR))
		return -EINVAL;
	/* Updating a vaddr (live update) is not modelled: no mapping has
	 * one to update. */
	if (map.flags & VFIO_DMA_MAP_FLAG_VADDR)
		return -EINVAL;
	if (!map.size || ((map.size | map.iova | map.vaddr) & (MODEL_PAGE - 1)))
		return -EINVAL;
	if (map.iova + map.size - 1 < map.iova || map.vaddr + map.size - 1 < map.vaddr)
		return -EINVAL;
	if (t1_find(c, map.iova, map.size))
		return -EEXIST;
	if (c->ndmas >= MODEL_TYPE1_DMA_ENTRY_LIMIT)
		return -ENOSPC;
	/* vfio_iommu_iova_dma_valid: wholly inside one IOVA range. */
	nr = t1_ranges(c, r);
	for (i = 0; i < nr; i++)
		if (map.iova >= r[i].start && map.iova + map.size - 1 <= r[i].end)
			valid = true;
	if (!valid)
		return -EINVAL;
	dma.iova = map.iova;
	dma.size = map.size;
	dma.vaddr = map.vaddr;
	dma.npages = map.size / MODEL_PAGE;
	dma.lock_cap = model_has_cap(m, CAP_IPC_LOCK);
	/* vfio_pin_map_dma: pin (EFAULT), then charge locked_vm (ENOMEM). */
	rc = model_pin_check(m, (uintptr_t)map.vaddr, map.size, dma.prot & VFIO_DMA_MAP_FLAG_WRITE);
	if (rc < 0)
		return rc;
	if (!dma.lock_cap) {
		rc = model_charge(m, ACCT_TYPE1, dma.npages);
		if (rc < 0)
			return rc;
	}
	dma.pinned = true;
	m->pinned_pages += dma.npages;
	pthread_rwlock_wrlock(&c->rw);
	if (c->ndmas == c->cap) {
		unsigned n = c->cap ? c->cap * 2 : 16;
		struct model_t1dma *t = realloc(c->dmas, n * sizeof(*t));

		if (!t) {
			pthread_rwlock_unlock(&c->rw);
			t1_unpin(m, &dma);
			return -ENOMEM;
		}
		c->dmas = t;
		c->cap = n;
	}
	for (i = c->ndmas; i > 0 && c->dmas[i - 1].iova > dma.iova; i--)
		c->dmas[i] = c->dmas[i - 1];
	c->dmas[i] = dma;
	c->ndmas++;
	pthread_rwlock_unlock(&c->rw);
	return 0;
}

/* vfio_iommu_type1_unmap_dma + vfio_dma_do_unmap */
static int t1_unmap(struct model_container *c, void *arg)
{
	const size_t minsz = offsetof(struct vfio_iommu_type1_dma_unmap, size) + sizeof(uint64_t);
	const uint32_t mask = MODEL_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | MODEL_DMA_UNMAP_FLAG_VADDR |
			      MODEL_DMA_UNMAP_FLAG_ALL;
	struct vfio_iommu_type1_dma_unmap un;
	uint64_t iova, size, unmapped = 0;
	struct model_t1dma *dma;
	unsigned i;

	if (!arg)
		return -EFAULT;
	memcpy(&un, arg, minsz);
	if (un.argsz < minsz || (un.flags & ~mask))
		return -EINVAL;
	if ((un.flags & MODEL_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) &&
	    (un.flags & (MODEL_DMA_UNMAP_FLAG_ALL | MODEL_DMA_UNMAP_FLAG_VADDR)))
		return -EINVAL;
	/* No dirty tracking and no vaddr invalidation in the model. */
	if (un.flags & (MODEL_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | MODEL_DMA_UNMAP_FLAG_VADDR))
		return -EINVAL;
	iova = un.iova;
	size = un.size;
	if (iova & (MODEL_PAGE - 1))
		return -EINVAL;
	if (un.flags & MODEL_DMA_UNMAP_FLAG_ALL) {
		if (iova || size)
			return -EINVAL;
		size = UINT64_MAX;
	} else if (!size || (size & (MODEL_PAGE - 1)) || iova + size - 1 < iova) {
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&c->rw);
	/* v2: a range may not bisect a mapping at either end. */
	if (c->v2 && !(un.flags & MODEL_DMA_UNMAP_FLAG_ALL)) {
		dma = t1_find(c, iova, 1);
		if (dma && dma->iova != iova)
			goto einval;
		dma = t1_find(c, iova + size - 1, 1);
		if (dma && dma->iova + dma->size != iova + size)
			goto einval;
	}
	for (i = 0; i < c->ndmas;) {
		dma = &c->dmas[i];
		if (dma->iova + dma->size <= iova || (size != UINT64_MAX && dma->iova >= iova + size)) {
			i++;
			continue;
		}
		/* v1: a mapping starting before the range stays, unmapped 0. */
		if (!c->v2 && iova > dma->iova)
			break;
		unmapped += dma->size;
		t1_unpin(c->m, dma);
		memmove(dma, dma + 1, (c->ndmas - i - 1) * sizeof(*dma));
		c->ndmas--;
	}
	pthread_rwlock_unlock(&c->rw);
	un.size = unmapped;
	memcpy(arg, &un, minsz);
	return 0;
einval:
	pthread_rwlock_unlock(&c->rw);
	return -EINVAL;
}

/* vfio_fops_unl_ioctl + vfio_iommu_type1_ioctl */
int model_container_ioctl(struct model_container *c, unsigned long req, void *arg)
{
	unsigned long ext = (unsigned long)arg;

	switch (req) {
	case VFIO_GET_API_VERSION:
		return VFIO_API_VERSION;
	case VFIO_CHECK_EXTENSION:
		if (ext == VFIO_TYPE1_IOMMU || ext == VFIO_TYPE1v2_IOMMU || ext == MODEL_VFIO_UNMAP_ALL)
			return 1;
		if (ext == MODEL_VFIO_UPDATE_VADDR)
			return c->iommu_set ? 1 : 0;
		return 0;
	case VFIO_SET_IOMMU:
		/* vfio_ioctl_set_iommu: needs a group, and only once. */
		if (!c->ngroups || c->iommu_set)
			return -EINVAL;
		if (ext != VFIO_TYPE1_IOMMU && ext != VFIO_TYPE1v2_IOMMU)
			return -ENODEV;
		c->iommu_set = true;
		c->v2 = ext == VFIO_TYPE1v2_IOMMU;
		return 0;
	default:
		break;
	}
	if (!c->iommu_set)
		return -EINVAL;
	switch (req) {
	case VFIO_IOMMU_GET_INFO:
		return t1_get_info(c, arg);
	case VFIO_IOMMU_MAP_DMA:
		return t1_map(c, arg);
	case VFIO_IOMMU_UNMAP_DMA:
		return t1_unmap(c, arg);
	default:
		return -ENOTTY;
	}
}

int model_container_dma(struct model_container *c, struct upmd_model_dev *d, uint64_t iova,
			void *buf, size_t len, bool write)
{
	uint32_t need = write ? VFIO_DMA_MAP_FLAG_WRITE : VFIO_DMA_MAP_FLAG_READ;
	uint64_t cur = iova, last = iova + len - 1;
	size_t done = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&c->rw);
	if (last < iova) {
		model_record_fault(d, UINT64_MAX, UPMD_MODEL_NO_PASID, write, UPMD_MODEL_FAULT_UNMAPPED);
		rc = -EFAULT;
		goto out;
	}
	/* Check it all, then copy: a faulting DMA moves nothing. */
	while (cur <= last) {
		struct model_t1dma *dma = t1_find(c, cur, 1);

		if (!dma || !(dma->prot & need)) {
			model_record_fault(d, cur, UPMD_MODEL_NO_PASID, write,
					   !dma ? UPMD_MODEL_FAULT_UNMAPPED
					   : write ? UPMD_MODEL_FAULT_NO_WRITE : UPMD_MODEL_FAULT_NO_READ);
			rc = -EFAULT;
			goto out;
		}
		if (dma->iova + dma->size - 1 >= last)
			break;
		cur = dma->iova + dma->size;
	}
	for (cur = iova; done < len;) {
		struct model_t1dma *dma = t1_find(c, cur, 1);
		size_t chunk = (size_t)(UPMD_MIN(dma->iova + dma->size - 1, last) - cur + 1);
		void *mem = (void *)(uintptr_t)(dma->vaddr + (cur - dma->iova));

		rc = write ? model_copy(mem, (char *)buf + done, chunk, true)
			   : model_copy((char *)buf + done, mem, chunk, false);
		if (rc < 0)
			goto out;
		done += chunk;
		cur += chunk;
	}
out:
	pthread_rwlock_unlock(&c->rw);
	return rc;
}

/* ---- legacy group ------------------------------------------------------------------- */

/* vfio_group_fops_open */
int model_group_open(struct upmd_model_dev *d)
{
	if (d->group_open)
		return -EBUSY;
	/* A device bound through its cdev blocks the group (cdev_device_open_cnt). */
	if (d->cdev_bound)
		return -EBUSY;
	d->group_open = true;
	d->group_refs = 1;
	return 0;
}

static void group_detach_container(struct upmd_model_dev *d)
{
	struct model_container *c = d->container;

	pthread_rwlock_wrlock(&d->attach_rw);
	d->container = NULL;
	pthread_rwlock_unlock(&d->attach_rw);
	/* vfio_group_detach_container: the last group takes the IOMMU and
	 * every mapping with it. */
	if (--c->ngroups == 0) {
		t1_drop_all(c);
		c->iommu_set = false;
	}
	model_container_put(c);
}

/* The group file lives while its fd or a device file from it does. */
void model_group_put(struct upmd_model_dev *d)
{
	if (--d->group_refs)
		return;
	if (d->container)
		group_detach_container(d);
	d->group_open = false;
}

/* vfio_group_ioctl_* */
int model_group_ioctl(struct upmd_model_dev *d, unsigned long req, void *arg)
{
	struct upmd_model *m = d->m;
	struct model_devfile *df;
	struct model_file *f;
	int fd, rc;

	switch (req) {
	case VFIO_GROUP_GET_STATUS: {
		struct vfio_group_status st;

		if (!arg)
			return -EFAULT;
		memcpy(&st, arg, sizeof(st));
		if (st.argsz < sizeof(st))
			return -EINVAL;
		st.flags = VFIO_GROUP_FLAGS_VIABLE | (d->container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
		memcpy(arg, &st, sizeof(st));
		return 0;
	}
	case VFIO_GROUP_SET_CONTAINER:
		if (!arg)
			return -EFAULT;
		memcpy(&fd, arg, sizeof(fd));
		if (fd < 0 || fcntl(fd, F_GETFD) < 0)
			return -EBADF;
		if (d->container)
			return -EINVAL;
		f = model_file_get(m, fd);
		/* An iommufd as the container (iommufd's vfio compat) is not
		 * modelled; anything else is not recognised either. */
		if (!f || f->kind != MF_CONTAINER)
			return -EBADFD;
		f->u.c->refs++;
		f->u.c->ngroups++;
		pthread_rwlock_wrlock(&d->attach_rw);
		d->container = f->u.c;
		pthread_rwlock_unlock(&d->attach_rw);
		return 0;
	case VFIO_GROUP_UNSET_CONTAINER:
		if (!d->container)
			return -EINVAL;
		/* container_users: the group itself plus each open device. */
		if (d->group_refs != 1)
			return -EBUSY;
		group_detach_container(d);
		return 0;
	case VFIO_GROUP_GET_DEVICE_FD: {
		const char *name = arg;
		size_t bl = strlen(d->bdf);

		if (!name)
			return -EFAULT;
		/* vfio_pci_core_match: the device name, optionally followed
		 * by " vf_token=...". */
		if (strncmp(name, d->bdf, bl) || (name[bl] && name[bl] != ' '))
			return -ENODEV;
		/* vfio_group_use_container: the container's IOMMU is set. */
		if (!d->container || !d->container->iommu_set)
			return -EINVAL;
		df = model_devfile_new(d, true);
		if (!df)
			return -ENOMEM;
		rc = model_fd_new(m, MF_DEVICE, "upmd-model-vfio-device", df);
		if (rc < 0) {
			d->files--;
			free(df);
			return rc;
		}
		d->group_refs++;
		access_grant(d, df);
		return rc;
	}
	default:
		return -ENOTTY;
	}
}
