/* The PCI bus: sysfs scan and allowlist, open through the IOAS, BARs, config space, interrupts on eventfds, and the driver registry. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <upmd/bus.h>
#include <upmd/ioas.h>
#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/pci.h>

#include "pci_private.h"

static struct {
	struct pci_dev **devs;		/* selected by scan, address order */
	unsigned n;
	struct upmd_ioas *ioas;		/* the IOAS the devices were opened in */
} pci;

static struct upmd_pci_driver *drivers;

/* ---- addresses ---- */

/* Exactly @min..@max hex digits at *s; advances *s. */
static int hex_field(const char **s, unsigned min, unsigned max, uint32_t *out)
{
	const char *p = *s;
	uint32_t v = 0;
	unsigned n = 0;

	for (;; p++, n++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (n == max)
			return -EINVAL;
		v = v << 4 | d;
	}
	if (n < min)
		return -EINVAL;
	*s = p;
	*out = v;
	return 0;
}

int upmd_pci_addr_parse(const char *s, struct upmd_pci_addr *addr)
{
	uint32_t domain = 0, bus, dev, fn;
	const char *p = s, *colon;

	if (!s || !addr)
		return -EINVAL;
	colon = strchr(s, ':');
	if (!colon)
		return -EINVAL;
	/* Two colons: a domain first. It may be wider than 4 digits (VMD
	 * domains are 0x10000 and up), never narrower: sysfs pads it. */
	if (strchr(colon + 1, ':') && (hex_field(&p, 4, 6, &domain) < 0 || *p++ != ':'))
		return -EINVAL;
	if (hex_field(&p, 2, 2, &bus) < 0 || *p++ != ':')
		return -EINVAL;
	if (hex_field(&p, 2, 2, &dev) < 0 || *p++ != '.')
		return -EINVAL;
	if (hex_field(&p, 1, 1, &fn) < 0 || *p != '\0')
		return -EINVAL;
	if (dev > 0x1f || fn > 7)
		return -EINVAL;
	addr->domain = domain;
	addr->bus = (uint8_t)bus;
	addr->dev = (uint8_t)dev;
	addr->fn = (uint8_t)fn;
	return 0;
}

void upmd_pci_addr_fmt(const struct upmd_pci_addr *addr, char *buf, size_t len)
{
	if (!buf || len == 0)
		return;
	snprintf(buf, len, "%04x:%02x:%02x.%x", addr->domain, addr->bus, addr->dev, addr->fn);
}

static int cmp_dev(const void *x, const void *y)
{
	uint64_t a = pci_addr_key(&(*(struct pci_dev *const *)x)->pub.addr);
	uint64_t b = pci_addr_key(&(*(struct pci_dev *const *)y)->pub.addr);

	return a < b ? -1 : a > b;
}

static bool addr_equal(const struct upmd_pci_addr *a, const struct upmd_pci_addr *b)
{
	return a->domain == b->domain && a->bus == b->bus && a->dev == b->dev && a->fn == b->fn;
}

/* ---- driver registry ---- */

void upmd_pci_register(struct upmd_pci_driver *drv)
{
	struct upmd_pci_driver **p = &drivers;

	/* Registration order is match order: append. */
	while (*p) {
		if (*p == drv)
			return;
		p = &(*p)->next;
	}
	drv->next = NULL;
	*p = drv;
}

static void remove_driver(struct pci_dev *d)
{
	struct upmd_pci_device *dev = &d->pub;
	const struct upmd_pci_driver *drv = dev->driver;
	int rc;

	if (!drv)
		return;
	if (drv->remove) {
		rc = drv->remove(dev);
		if (rc < 0)
			UPMD_WARN(PCI_LOG, "%s: driver %s remove failed: %s", dev->name, drv->name,
				  strerror(-rc));
	}
	dev->driver = NULL;
	dev->driver_data = NULL;
}

void upmd_pci_unregister(struct upmd_pci_driver *drv)
{
	struct upmd_pci_driver **p;
	unsigned i;

	/* A driver going away must let go of its devices first. */
	for (i = 0; i < pci.n; i++)
		if (pci.devs[i]->pub.driver == drv)
			remove_driver(pci.devs[i]);
	for (p = &drivers; *p; p = &(*p)->next)
		if (*p == drv) {
			*p = drv->next;
			drv->next = NULL;
			return;
		}
}

static bool id_match(const struct upmd_pci_id *want, const struct upmd_pci_id *have)
{
	return (want->vendor_id == UPMD_PCI_ANY_ID || want->vendor_id == have->vendor_id) &&
	       (want->device_id == UPMD_PCI_ANY_ID || want->device_id == have->device_id) &&
	       (want->subsystem_vendor_id == UPMD_PCI_ANY_ID ||
		want->subsystem_vendor_id == have->subsystem_vendor_id) &&
	       (want->subsystem_device_id == UPMD_PCI_ANY_ID ||
		want->subsystem_device_id == have->subsystem_device_id) &&
	       (want->class_id == UPMD_PCI_ANY_ID || want->class_id == have->class_id);
}

static const struct upmd_pci_driver *match_driver(const struct upmd_pci_device *dev)
{
	const struct upmd_pci_driver *drv;
	const struct upmd_pci_id *id;

	for (drv = drivers; drv; drv = drv->next)
		for (id = drv->id_table; id && id->vendor_id; id++)
			if (id_match(id, &dev->id))
				return drv;
	return NULL;
}

/* ---- device list ---- */

unsigned upmd_pci_device_count(void)
{
	return pci.n;
}

struct upmd_pci_device *upmd_pci_device_get(unsigned i)
{
	return i < pci.n ? &pci.devs[i]->pub : NULL;
}

struct upmd_pci_device *upmd_pci_device_find(const char *bdf)
{
	struct upmd_pci_addr a;
	unsigned i;

	if (upmd_pci_addr_parse(bdf, &a) < 0)
		return NULL;
	for (i = 0; i < pci.n; i++)
		if (addr_equal(&pci.devs[i]->pub.addr, &a))
			return &pci.devs[i]->pub;
	return NULL;
}

/* ---- config space and regions ---- */

static int dev_open_check(const struct upmd_pci_device *dev)
{
	if (!dev)
		return -EINVAL;
	return dev->fd >= 0 ? 0 : -ENODEV;
}

static int region_io(struct upmd_pci_device *dev, uint64_t base, uint64_t size, void *rbuf,
		     const void *wbuf, size_t len, off_t off)
{
	ssize_t n;

	if (off < 0 || len > INT_MAX || (uint64_t)off > size || len > size - (uint64_t)off)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (rbuf)
		n = upmd_k_pread(dev->fd, rbuf, len, (off_t)(base + (uint64_t)off));
	else
		n = upmd_k_pwrite(dev->fd, wbuf, len, (off_t)(base + (uint64_t)off));
	return (int)n;
}

int upmd_pci_cfg_read(struct upmd_pci_device *dev, void *buf, size_t len, off_t off)
{
	int rc = dev_open_check(dev);

	if (rc < 0)
		return rc;
	return region_io(dev, dev->cfg_offset, pci_dev_of(dev)->cfg_size, buf, NULL, len, off);
}

int upmd_pci_cfg_write(struct upmd_pci_device *dev, const void *buf, size_t len, off_t off)
{
	int rc = dev_open_check(dev);

	if (rc < 0)
		return rc;
	return region_io(dev, dev->cfg_offset, pci_dev_of(dev)->cfg_size, NULL, buf, len, off);
}

static int bar_check(struct upmd_pci_device *dev, unsigned bar)
{
	int rc = dev_open_check(dev);

	if (rc < 0)
		return rc;
	if (bar >= UPMD_PCI_MAX_BARS)
		return -EINVAL;
	return dev->bar[bar].len ? 0 : -ENOENT;
}

int upmd_pci_bar_read(struct upmd_pci_device *dev, unsigned bar, void *buf, size_t len, off_t off)
{
	int rc = bar_check(dev, bar);

	if (rc < 0)
		return rc;
	return region_io(dev, dev->bar[bar].offset, dev->bar[bar].len, buf, NULL, len, off);
}

int upmd_pci_bar_write(struct upmd_pci_device *dev, unsigned bar, const void *buf, size_t len,
		       off_t off)
{
	int rc = bar_check(dev, bar);

	if (rc < 0)
		return rc;
	return region_io(dev, dev->bar[bar].offset, dev->bar[bar].len, NULL, buf, len, off);
}

int upmd_pci_map_bar(struct upmd_pci_device *dev, unsigned bar)
{
	struct pci_dev *d;
	size_t pg, len;
	void *p;
	int rc = bar_check(dev, bar);

	if (rc < 0)
		return rc;
	if (dev->bar[bar].addr)
		return 0;
	if (!(dev->bar[bar].flags & VFIO_REGION_INFO_FLAG_MMAP))
		return -ENOTSUP;
	d = pci_dev_of(dev);
	/* vfio-pci maps whole pages; a BAR smaller than a page is backed by
	 * a full page (the kernel reserves the rest). */
	pg = (size_t)sysconf(_SC_PAGESIZE);
	len = UPMD_ALIGN_UP((size_t)dev->bar[bar].len, pg);
	rc = upmd_k_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
			 (off_t)dev->bar[bar].offset, &p);
	if (rc < 0) {
		UPMD_ERR(PCI_LOG, "%s: cannot mmap BAR%u (%llu bytes): %s", dev->name, bar,
			 (unsigned long long)dev->bar[bar].len, strerror(-rc));
		return rc;
	}
	dev->bar[bar].addr = p;
	d->bar_map_len[bar] = len;
	return 0;
}

static void unmap_bars(struct pci_dev *d)
{
	unsigned i;

	for (i = 0; i < UPMD_PCI_MAX_BARS; i++)
		if (d->pub.bar[i].addr) {
			upmd_k_munmap(d->pub.bar[i].addr, d->bar_map_len[i]);
			d->pub.bar[i].addr = NULL;
			d->bar_map_len[i] = 0;
		}
}

int upmd_pci_set_bus_master(struct upmd_pci_device *dev, bool enable)
{
	uint16_t cmd, want;
	int rc;

	rc = upmd_pci_cfg_read(dev, &cmd, sizeof(cmd), PCI_CFG_COMMAND);
	if (rc >= 0 && rc != (int)sizeof(cmd))
		rc = -EIO;
	if (rc < 0)
		return rc;
	want = enable ? (uint16_t)(cmd | PCI_CMD_BUS_MASTER) : (uint16_t)(cmd & ~PCI_CMD_BUS_MASTER);
	if (want == cmd)
		return 0;
	rc = upmd_pci_cfg_write(dev, &want, sizeof(want), PCI_CFG_COMMAND);
	if (rc >= 0 && rc != (int)sizeof(want))
		rc = -EIO;
	return rc < 0 ? rc : 0;
}

int upmd_pci_reset(struct upmd_pci_device *dev)
{
	int rc = dev_open_check(dev);

	if (rc < 0)
		return rc;
	if (!(pci_dev_of(dev)->info_flags & VFIO_DEVICE_FLAGS_RESET)) {
		UPMD_ERR(PCI_LOG, "%s: the device offers no reset (no FLR, PM or bus reset)",
			 dev->name);
		return -ENOTSUP;
	}
	rc = upmd_k_ioctl(dev->fd, VFIO_DEVICE_RESET, NULL);
	if (rc < 0)
		UPMD_ERR(PCI_LOG, "%s: VFIO_DEVICE_RESET failed: %s", dev->name, strerror(-rc));
	return rc < 0 ? rc : 0;
}

/* ---- interrupts ---- */

static unsigned irq_index(enum upmd_pci_irq_type t)
{
	switch (t) {
	case UPMD_PCI_IRQ_INTX:
		return VFIO_PCI_INTX_IRQ_INDEX;
	case UPMD_PCI_IRQ_MSI:
		return VFIO_PCI_MSI_IRQ_INDEX;
	default:
		return VFIO_PCI_MSIX_IRQ_INDEX;
	}
}

static const char *irq_name(enum upmd_pci_irq_type t)
{
	static const char *const names[] = { "none", "INTx", "MSI", "MSI-X" };

	return (unsigned)t < UPMD_DIM(names) ? names[t] : "?";
}

/* VFIO_DEVICE_SET_IRQS with @count eventfds (@fds NULL: @flags' data is NONE). */
static int irq_set(struct upmd_pci_device *dev, unsigned index, uint32_t flags, unsigned count,
		   const int *fds)
{
	size_t sz = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
	struct vfio_irq_set *set = calloc(1, sz);
	unsigned i;
	int rc;

	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->flags = flags;
	set->index = index;
	set->start = 0;
	set->count = count;
	for (i = 0; fds && i < count; i++) {
		int32_t fd = fds[i];

		memcpy(set->data + i * sizeof(fd), &fd, sizeof(fd));
	}
	rc = upmd_k_ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, set);
	free(set);
	return rc < 0 ? rc : 0;
}

static void close_efds(int *efd, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (efd[i] >= 0)
			upmd_k_close(efd[i]);
	free(efd);
}

static int irq_enable_type(struct upmd_pci_device *dev, enum upmd_pci_irq_type type, int nvec)
{
	struct pci_dev *d = pci_dev_of(dev);
	int *efd, i, rc;

	efd = malloc((size_t)nvec * sizeof(*efd));
	if (!efd)
		return -ENOMEM;
	for (i = 0; i < nvec; i++)
		efd[i] = -1;
	for (i = 0; i < nvec; i++) {
		/* Non-blocking: a wait that finds the counter already drained
		 * (a racing reader) must not hang in read. */
		rc = upmd_k_eventfd(0, EFD_NONBLOCK);
		if (rc < 0)
			goto err;
		efd[i] = rc;
	}
	rc = irq_set(dev, irq_index(type), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		     (unsigned)nvec, efd);
	if (rc < 0)
		goto err;
	dev->msix_efd = efd;
	dev->msix_count = nvec;
	d->irq_type = type;
	UPMD_DEBUG(PCI_LOG, "%s: %d %s vector(s) on eventfds", dev->name, nvec, irq_name(type));
	return 0;
err:
	UPMD_ERR(PCI_LOG, "%s: cannot enable %d %s vector(s): %s", dev->name, nvec, irq_name(type),
		 strerror(-rc));
	close_efds(efd, nvec);
	return rc;
}

int upmd_pci_irq_count(const struct upmd_pci_device *dev, enum upmd_pci_irq_type type)
{
	const struct pci_dev *d;

	if (!dev || type == UPMD_PCI_IRQ_NONE || (unsigned)type > UPMD_PCI_IRQ_MSIX)
		return 0;
	d = upmd_container_of(dev, const struct pci_dev, pub);
	return (int)UPMD_MIN(d->irq_count[irq_index(type)], (uint32_t)INT_MAX);
}

enum upmd_pci_irq_type upmd_pci_irq_type(const struct upmd_pci_device *dev)
{
	return dev ? upmd_container_of(dev, const struct pci_dev, pub)->irq_type : UPMD_PCI_IRQ_NONE;
}

int upmd_pci_msix_enable(struct upmd_pci_device *dev, int nvec)
{
	int rc = dev_open_check(dev), n;

	if (rc < 0)
		return rc;
	n = upmd_pci_irq_count(dev, UPMD_PCI_IRQ_MSIX);
	if (n == 0)
		return -ENOTSUP;
	if (pci_dev_of(dev)->irq_type != UPMD_PCI_IRQ_NONE)
		return -EBUSY;
	if (nvec < 1 || nvec > n)
		return -EINVAL;
	return irq_enable_type(dev, UPMD_PCI_IRQ_MSIX, nvec);
}

int upmd_pci_irq_enable(struct upmd_pci_device *dev, int nvec)
{
	static const enum upmd_pci_irq_type pref[] = {
		UPMD_PCI_IRQ_MSIX, UPMD_PCI_IRQ_MSI, UPMD_PCI_IRQ_INTX,
	};
	bool any = false;
	unsigned i;
	int rc = dev_open_check(dev);

	if (rc < 0)
		return rc;
	if (pci_dev_of(dev)->irq_type != UPMD_PCI_IRQ_NONE)
		return -EBUSY;
	if (nvec < 1)
		return -EINVAL;
	for (i = 0; i < UPMD_DIM(pref); i++) {
		int n = upmd_pci_irq_count(dev, pref[i]);

		any |= n > 0;
		if (n >= nvec) {
			rc = irq_enable_type(dev, pref[i], nvec);
			return rc < 0 ? rc : (int)pref[i];
		}
	}
	if (!any)
		return -ENOTSUP;
	UPMD_ERR(PCI_LOG, "%s: %d interrupt vectors asked for, the device offers %d MSI-X, %d MSI",
		 dev->name, nvec, upmd_pci_irq_count(dev, UPMD_PCI_IRQ_MSIX),
		 upmd_pci_irq_count(dev, UPMD_PCI_IRQ_MSI));
	return -EINVAL;
}

int upmd_pci_irq_disable(struct upmd_pci_device *dev)
{
	struct pci_dev *d;
	int rc;

	if (!dev)
		return -EINVAL;
	d = pci_dev_of(dev);
	if (d->irq_type == UPMD_PCI_IRQ_NONE)
		return 0;
	/* Detach the eventfds in the kernel before closing them, so nothing
	 * signals a closed fd. */
	rc = dev->fd >= 0 ? irq_set(dev, irq_index(d->irq_type),
				    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL)
			  : 0;
	if (rc < 0)
		UPMD_WARN(PCI_LOG, "%s: cannot disable %s: %s", dev->name, irq_name(d->irq_type),
			  strerror(-rc));
	close_efds(dev->msix_efd, dev->msix_count);
	dev->msix_efd = NULL;
	dev->msix_count = 0;
	d->irq_type = UPMD_PCI_IRQ_NONE;
	return rc;
}

int upmd_pci_msix_disable(struct upmd_pci_device *dev)
{
	return upmd_pci_irq_disable(dev);
}

int upmd_pci_irq_unmask(struct upmd_pci_device *dev)
{
	int rc = dev_open_check(dev);

	if (rc < 0)
		return rc;
	if (pci_dev_of(dev)->irq_type != UPMD_PCI_IRQ_INTX)
		return 0;
	return irq_set(dev, VFIO_PCI_INTX_IRQ_INDEX,
		       VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 1, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int upmd_pci_msix_wait(struct upmd_pci_device *dev, int vec, int timeout_ms)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct pollfd pfd;
	uint64_t cnt;
	ssize_t n;
	int rc;

	if (!dev || vec < 0 || vec >= dev->msix_count)
		return -EINVAL;
	/* Eventfds are ordinary kernel fds in production and in the model,
	 * so poll(2) is the wait; the counter is read through the boundary. */
	pfd.fd = dev->msix_efd[vec];
	pfd.events = POLLIN;
	for (;;) {
		int left = timeout_ms < 0 ? -1 : (int)UPMD_MAX(deadline - now_ms(), 0);

		pfd.revents = 0;
		rc = poll(&pfd, 1, left);
		if (rc > 0)
			break;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
	n = upmd_k_read(pfd.fd, &cnt, sizeof(cnt));
	if (n == -EAGAIN)
		return 0;
	if (n < 0)
		return (int)n;
	if (n != (ssize_t)sizeof(cnt))
		return -EIO;
	return cnt > INT_MAX ? INT_MAX : (int)cnt;
}

/* ---- open and close through the IOAS ---- */

static int region_info(struct pci_dev *d, unsigned index, struct vfio_region_info *ri)
{
	int rc;

	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	rc = upmd_k_ioctl(d->pub.fd, VFIO_DEVICE_GET_REGION_INFO, ri);
	if (rc < 0)
		UPMD_ERR(PCI_LOG, "%s: VFIO_DEVICE_GET_REGION_INFO(%u) failed: %s", d->pub.name,
			 index, strerror(-rc));
	return rc < 0 ? rc : 0;
}

static int read_device_info(struct pci_dev *d)
{
	struct upmd_pci_device *dev = &d->pub;
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri;
	unsigned i;
	int rc;

	rc = upmd_k_ioctl(dev->fd, VFIO_DEVICE_GET_INFO, &info);
	if (rc < 0) {
		UPMD_ERR(PCI_LOG, "%s: VFIO_DEVICE_GET_INFO failed: %s", dev->name, strerror(-rc));
		return rc;
	}
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		UPMD_ERR(PCI_LOG, "%s: VFIO reports no PCI device (flags 0x%x, %u regions)",
			 dev->name, info.flags, info.num_regions);
		return -ENODEV;
	}
	d->info_flags = info.flags;
	dev->num_regions = info.num_regions;
	dev->num_irqs = info.num_irqs;

	for (i = 0; i < UPMD_PCI_MAX_BARS; i++) {
		rc = region_info(d, VFIO_PCI_BAR0_REGION_INDEX + i, &ri);
		if (rc < 0)
			return rc;
		dev->bar[i].addr = NULL;
		dev->bar[i].len = ri.size;
		dev->bar[i].offset = ri.offset;
		dev->bar[i].flags = ri.flags;
	}
	rc = region_info(d, VFIO_PCI_CONFIG_REGION_INDEX, &ri);
	if (rc < 0)
		return rc;
	dev->cfg_offset = ri.offset;
	d->cfg_size = ri.size;
	d->cfg_flags = ri.flags;

	for (i = 0; i < VFIO_PCI_NUM_IRQS && i < info.num_irqs; i++) {
		struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = i };

		/* An index the kernel will not describe is one we do not use. */
		if (upmd_k_ioctl(dev->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0 &&
		    (ii.flags & VFIO_IRQ_INFO_EVENTFD))
			d->irq_count[i] = ii.count;
	}
	return 0;
}

static void close_dev(struct pci_dev *d)
{
	struct upmd_pci_device *dev = &d->pub;
	int rc;

	remove_driver(d);
	if (dev->fd < 0)
		return;
	/* Stop DMA before the device leaves the IOAS (and before the EAL
	 * unmaps the memory it may still be writing to). */
	upmd_pci_set_bus_master(dev, false);
	upmd_pci_irq_disable(dev);
	unmap_bars(d);
	rc = upmd_ioas_device_close(pci.ioas, dev->fd);
	if (rc < 0)
		UPMD_WARN(PCI_LOG, "%s: closing the device failed: %s", dev->name, strerror(-rc));
	dev->fd = -1;
}

static int open_dev(struct upmd_ioas *ioas, struct pci_dev *d)
{
	struct upmd_pci_device *dev = &d->pub;
	struct upmd_ioas_dev_req req = {
		.size = sizeof(req),
		.flags = 0,
		.bdf = dev->name,
		.cdev = dev->cdev[0] ? dev->cdev : NULL,
		.iommu_group = dev->iommu_group,
	};
	int fd, rc;

	if (upmd_ioas_backend_kind(ioas) == UPMD_IOAS_BACKEND_IOMMUFD && !dev->cdev[0]) {
		UPMD_ERR(PCI_LOG,
			 "%s: no vfio cdev (/sys/bus/pci/devices/%s/vfio-dev is missing): this kernel "
			 "lacks CONFIG_VFIO_DEVICE_CDEV; use the legacy container with --iommu type1",
			 dev->name, dev->name);
		return -ENODEV;
	}
	rc = upmd_ioas_device_open(ioas, &req, &fd);
	if (rc < 0)
		return rc;
	dev->fd = fd;
	rc = read_device_info(d);
	if (rc < 0) {
		close_dev(d);
		return rc;
	}
	UPMD_INFO(PCI_LOG, "%s: %04x:%04x open in the IOAS (%s%s, group %d), %u regions, %u irqs",
		  dev->name, dev->id.vendor_id, dev->id.device_id, dev->cdev[0] ? "cdev " : "type1",
		  dev->cdev, dev->iommu_group, dev->num_regions, dev->num_irqs);
	return 0;
}

/* ---- the bus ops ---- */

static void pci_cleanup(void)
{
	unsigned i;

	/* Reverse order: drivers that depend on an earlier device go first. */
	for (i = pci.n; i-- > 0;) {
		close_dev(pci.devs[i]);
		free(pci.devs[i]);
	}
	free(pci.devs);
	pci.devs = NULL;
	pci.n = 0;
	pci.ioas = NULL;
}

static void drop_dev(unsigned i)
{
	free(pci.devs[i]);
	memmove(&pci.devs[i], &pci.devs[i + 1], (pci.n - i - 1) * sizeof(*pci.devs));
	pci.n--;
}

static int pci_parse(const char *name)
{
	struct upmd_pci_addr a;

	return upmd_pci_addr_parse(name, &a);
}

static int add_dev(const struct upmd_pci_sysfs_dev *s, bool explicit_allow)
{
	struct pci_dev *d, **p;
	unsigned i;

	for (i = 0; i < pci.n; i++)
		if (addr_equal(&pci.devs[i]->pub.addr, &s->addr))
			return 0;	/* the same -a given twice */
	p = realloc(pci.devs, (pci.n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	pci.devs = p;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->explicit_allow = explicit_allow;
	d->pub.addr = s->addr;
	snprintf(d->pub.name, sizeof(d->pub.name), "%s", s->name);
	d->pub.id = s->id;
	d->pub.numa_node = s->numa_node;
	d->pub.iommu_group = s->iommu_group;
	snprintf(d->pub.cdev, sizeof(d->pub.cdev), "%s", s->cdev);
	snprintf(d->pub.kdriver, sizeof(d->pub.kdriver), "%s", s->driver);
	d->pub.fd = -1;
	pci.devs[pci.n++] = d;
	return 0;
}

/*
 * Can the device be opened at all? Through its cdev (iommufd), or through
 * its group node (type1). Neither means VFIO is missing from this kernel.
 */
static bool has_vfio_node(const struct upmd_pci_sysfs_dev *s)
{
	char path[32];

	if (s->cdev[0])
		return true;
	if (s->iommu_group < 0)
		return false;
	snprintf(path, sizeof(path), "/dev/vfio/%d", s->iommu_group);
	return upmd_k_access(path, F_OK) == 0;
}

static int check_usable(const struct upmd_pci_sysfs_dev *s)
{
	if (strcmp(s->driver, PCI_VFIO_DRIVER)) {
		if (s->driver[0])
			UPMD_ERR(PCI_LOG,
				 "device %s (from -a) is bound to kernel driver %s, not vfio-pci: "
				 "bind it with 'upmd-devbind --bind vfio-pci %s'",
				 s->name, s->driver, s->name);
		else
			UPMD_ERR(PCI_LOG,
				 "device %s (from -a) is not bound to any kernel driver, and upmd needs "
				 "vfio-pci: bind it with 'upmd-devbind --bind vfio-pci %s'",
				 s->name, s->name);
		return -ENODEV;
	}
	if (!has_vfio_node(s)) {
		UPMD_ERR(PCI_LOG,
			 "device %s (from -a) is bound to vfio-pci but has no VFIO node: no "
			 "/dev/vfio/devices/vfioN (the kernel lacks iommufd, /dev/iommu, or "
			 "CONFIG_VFIO_DEVICE_CDEV) and no legacy /dev/vfio/<group>: load the modules "
			 "with 'modprobe iommufd' and 'modprobe vfio-pci', or rebind it with "
			 "'upmd-devbind --bind vfio-pci %s'",
			 s->name, s->name);
		return -ENODEV;
	}
	return 0;
}

static int pci_scan(const struct upmd_bus_conf *conf)
{
	struct upmd_pci_sysfs_dev *all = NULL;
	unsigned i, j;
	int n, rc = 0;

	/* A scan starts from nothing: an earlier failed init leaves no state. */
	pci_cleanup();
	n = upmd_pci_sysfs_list(&all);
	if (n < 0) {
		if (conf->n_allow == 0 && n == -ENOENT) {
			/* No PCI bus at all (a container without /sys/bus/pci):
			 * nothing was asked for, so nothing is missing. */
			UPMD_DEBUG(PCI_LOG, "no %s: no PCI devices", PCI_SYSFS_DEVICES);
			return 0;
		}
		UPMD_ERR(PCI_LOG, "cannot list %s: %s", PCI_SYSFS_DEVICES, strerror(-n));
		return n;
	}

	if (conf->n_allow) {
		for (i = 0; i < conf->n_allow; i++) {
			struct upmd_pci_addr a;
			char name[16];

			if (upmd_pci_addr_parse(conf->allow[i], &a) < 0) {
				UPMD_ERR(PCI_LOG, "'%s' (from -a) is not a PCI address", conf->allow[i]);
				rc = -EINVAL;
				goto out;
			}
			upmd_pci_addr_fmt(&a, name, sizeof(name));
			for (j = 0; j < (unsigned)n; j++)
				if (addr_equal(&all[j].addr, &a))
					break;
			if (j == (unsigned)n) {
				UPMD_ERR(PCI_LOG,
					 "device %s (from -a) not found: check the address with "
					 "'upmd-devbind --status'", name);
				rc = -ENODEV;
				goto out;
			}
			rc = check_usable(&all[j]);
			if (rc == 0)
				rc = add_dev(&all[j], true);
			if (rc < 0)
				goto out;
		}
	} else {
		for (j = 0; j < (unsigned)n; j++) {
			if (strcmp(all[j].driver, PCI_VFIO_DRIVER))
				continue;
			if (!has_vfio_node(&all[j])) {
				UPMD_WARN(PCI_LOG, "%s is bound to vfio-pci but has no VFIO node: skipped",
					  all[j].name);
				continue;
			}
			rc = add_dev(&all[j], false);
			if (rc < 0)
				goto out;
		}
	}
	/* Address order, whatever order -a gave, so device indexes are stable. */
	if (pci.n > 1)
		qsort(pci.devs, pci.n, sizeof(*pci.devs), cmp_dev);
	UPMD_DEBUG(PCI_LOG, "scan: %d PCI functions, %u selected", n, pci.n);
out:
	free(all);
	if (rc < 0)
		pci_cleanup();
	return rc;
}

static int pci_attach(struct upmd_ioas *ioas)
{
	unsigned i;
	int rc;

	if (!ioas) {
		/* The EAL runs without an IOAS only when -a asked for nothing. */
		if (pci.n)
			UPMD_WARN(PCI_LOG, "no IOMMU: %u device(s) bound to vfio-pci left unused", pci.n);
		pci_cleanup();
		return 0;
	}
	pci.ioas = ioas;
	for (i = 0; i < pci.n;) {
		struct pci_dev *d = pci.devs[i];

		if (d->pub.fd >= 0) {
			i++;
			continue;
		}
		rc = open_dev(ioas, d);
		if (rc == 0) {
			i++;
			continue;
		}
		if (d->explicit_allow) {
			pci_cleanup();
			return rc;
		}
		/* Found by the catch-all scan, not asked for: skip it. */
		UPMD_WARN(PCI_LOG, "%s: cannot open (%s): skipped", d->pub.name, strerror(-rc));
		drop_dev(i);
	}
	return 0;
}

static int pci_probe(void)
{
	unsigned i;
	int rc;

	for (i = 0; i < pci.n; i++) {
		struct upmd_pci_device *dev = &pci.devs[i]->pub;
		const struct upmd_pci_driver *drv;

		if (dev->fd < 0 || dev->driver)
			continue;
		drv = match_driver(dev);
		if (!drv) {
			UPMD_INFO(PCI_LOG, "%s: %04x:%04x has no upmd driver: left open for the "
				  "application", dev->name, dev->id.vendor_id, dev->id.device_id);
			continue;
		}
		/* Set before probe so the driver's own lookups see itself. */
		dev->driver = drv;
		rc = drv->probe ? drv->probe(dev) : 0;
		if (rc < 0) {
			UPMD_ERR(PCI_LOG, "%s: driver %s failed to probe it: %s", dev->name, drv->name,
				 strerror(-rc));
			dev->driver = NULL;
			dev->driver_data = NULL;
			pci_cleanup();
			return rc;
		}
		UPMD_INFO(PCI_LOG, "%s: probed by %s", dev->name, drv->name);
	}
	return 0;
}

static struct upmd_bus pci_bus = {
	.name = "pci",
	.parse = pci_parse,
	.scan = pci_scan,
	.attach = pci_attach,
	.probe = pci_probe,
	.cleanup = pci_cleanup,
};

UPMD_REGISTER_BUS(pci_bus)
