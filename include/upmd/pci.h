/* PCI bus over the vfio cdev: scan, allowlist, device access (BARs, config space, MSI-X) and the driver registry. */
#ifndef UPMD_PCI_H
#define UPMD_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPMD_PCI_ANY_ID 0xffff
#define UPMD_PCI_MAX_BARS 6

struct upmd_pci_addr {
	uint32_t domain;
	uint8_t bus, dev, fn;
};

/**
 * Parse "DDDD:BB:DD.F" or "BB:DD.F" (hex, either case; domain 4 to 6
 * digits as sysfs prints it, bus and device 2 digits, device <= 0x1f,
 * function 0-7, nothing after). @return 0 or -EINVAL.
 */
int upmd_pci_addr_parse(const char *s, struct upmd_pci_addr *addr);
/** Format as "DDDD:BB:DD.F" into @buf (at least 13 bytes; 16 for any domain). */
void upmd_pci_addr_fmt(const struct upmd_pci_addr *addr, char *buf, size_t len);

struct upmd_pci_id {
	uint16_t vendor_id, device_id;
	uint16_t subsystem_vendor_id, subsystem_device_id;
	uint32_t class_id;	/* 24-bit class code, or UPMD_PCI_ANY_ID for any */
};

/** An id-table entry for @vend:@dev with any subsystem and class. */
#define UPMD_PCI_DEVICE(vend, dev)                                             \
	.vendor_id = (vend), .device_id = (dev),                               \
	.subsystem_vendor_id = UPMD_PCI_ANY_ID,                                \
	.subsystem_device_id = UPMD_PCI_ANY_ID, .class_id = UPMD_PCI_ANY_ID

struct upmd_pci_bar {
	void *addr;		/* mmapped, or NULL if not mappable / not mapped */
	uint64_t len;		/* region size (0: BAR absent) */
	uint64_t offset;	/* region offset in the device fd */
	uint32_t flags;		/* VFIO_REGION_INFO_FLAG_* */
};

struct upmd_pci_driver;

/** A PCI device opened through the IOAS. */
struct upmd_pci_device {
	struct upmd_pci_addr addr;
	char name[16];		/* "0000:00:04.0" */
	struct upmd_pci_id id;
	int numa_node;		/* -1 if unknown */
	int iommu_group;
	char cdev[16];		/* "vfio0", or "" */
	char kdriver[32];	/* kernel driver bound in sysfs ("vfio-pci") */
	int fd;			/* VFIO device fd, -1 if not opened */
	uint32_t num_regions, num_irqs;
	uint64_t cfg_offset;	/* config-space region offset */
	struct upmd_pci_bar bar[UPMD_PCI_MAX_BARS];
	int msix_count;		/* vectors enabled, 0 if none */
	int *msix_efd;		/* eventfd per enabled vector */
	const struct upmd_pci_driver *driver;
	void *driver_data;
};

/**
 * A driver: matched by id table, probed on each matching device. An entry
 * matches when vendor and device are equal or UPMD_PCI_ANY_ID, likewise the
 * subsystem ids, and class_id is the device's 24-bit class or
 * UPMD_PCI_ANY_ID (UPMD_PCI_DEVICE() fills the wildcards). The first
 * registered driver with a matching entry takes the device. A probe that
 * fails fails the bus probe (and so upmd_eal_init()). Registry calls are
 * not thread-safe: constructors, or before upmd_eal_init().
 */
struct upmd_pci_driver {
	const char *name;
	const struct upmd_pci_id *id_table;	/* ends with vendor_id == 0 */
	int (*probe)(struct upmd_pci_device *dev);
	int (*remove)(struct upmd_pci_device *dev);
	struct upmd_pci_driver *next;		/* registry link, set by register */
};

/** Add a driver to the registry (call from a constructor). */
void upmd_pci_register(struct upmd_pci_driver *drv);
void upmd_pci_unregister(struct upmd_pci_driver *drv);
/** Register a driver at load time. */
#define UPMD_PCI_REGISTER_DRIVER(drv)                                          \
	__attribute__((constructor)) static void upmdinitfn_##drv(void)        \
	{ upmd_pci_register(&(drv)); }

/**
 * Devices selected by the scan (those allowed with -a, or all vfio-bound
 * ones), in address order; after the attach each is open (fd >= 0) in the
 * IOAS whether or not a driver took it, so a program can drive it itself.
 * Device calls below are not thread-safe per device (control path).
 */
unsigned upmd_pci_device_count(void);
struct upmd_pci_device *upmd_pci_device_get(unsigned i);
/** The device with this BDF (any accepted spelling), or NULL. */
struct upmd_pci_device *upmd_pci_device_find(const char *bdf);

/**
 * Map BAR @bar read-write, shared, at bar[@bar].addr (idempotent; unmapped
 * by the bus cleanup). @return 0, -EINVAL (@bar >= 6), -ENODEV (device not
 * open), -ENOENT (absent: size 0), -ENOTSUP (not mmappable: use
 * upmd_pci_bar_read/write), or the kernel's -errno.
 */
int upmd_pci_map_bar(struct upmd_pci_device *dev, unsigned bar);

/**
 * Config-space access through the VFIO config region. @return bytes
 * transferred, -EINVAL (outside the region), -ENODEV (device not open), or
 * the kernel's -errno.
 */
int upmd_pci_cfg_read(struct upmd_pci_device *dev, void *buf, size_t len, off_t off);
int upmd_pci_cfg_write(struct upmd_pci_device *dev, const void *buf, size_t len, off_t off);

/** Set or clear Bus Master Enable in the command register (read-modify-write). @return 0 or -errno. */
int upmd_pci_set_bus_master(struct upmd_pci_device *dev, bool enable);

/**
 * Region access with pread/pwrite (for BARs that cannot be mmapped).
 * @return bytes transferred, -EINVAL (@bar >= 6 or outside the BAR),
 * -ENOENT (absent BAR), -ENODEV (device not open), or the kernel's -errno.
 */
int upmd_pci_bar_read(struct upmd_pci_device *dev, unsigned bar, void *buf, size_t len, off_t off);
int upmd_pci_bar_write(struct upmd_pci_device *dev, unsigned bar, const void *buf, size_t len, off_t off);

/**
 * Enable @nvec MSI-X vectors, each signalling its own eventfd
 * (dev->msix_efd[i]). @return 0, -ENOTSUP if the device has no MSI-X,
 * -EINVAL if @nvec is < 1 or exceeds its count, -EBUSY if interrupts are
 * already enabled. upmd_pci_irq_enable() falls back to MSI and INTx.
 * upmd_pci_msix_disable() disables whatever kind is enabled.
 */
int upmd_pci_msix_enable(struct upmd_pci_device *dev, int nvec);
int upmd_pci_msix_disable(struct upmd_pci_device *dev);
/**
 * Wait up to @timeout_ms (-1: forever, 0: just look) for vector @vec of
 * whatever kind is enabled; @return the count of interrupts since the last
 * call (>0), 0 on timeout, -EINVAL (no such vector enabled), or -errno.
 */
int upmd_pci_msix_wait(struct upmd_pci_device *dev, int vec, int timeout_ms);

/**
 * Interrupts of any kind on eventfds. QEMU's edu device, for one, has MSI
 * but no MSI-X, so a driver that only needs "an interrupt" calls this.
 */
enum upmd_pci_irq_type {
	UPMD_PCI_IRQ_NONE = 0,
	UPMD_PCI_IRQ_INTX,	/* one level-triggered line: see upmd_pci_irq_unmask() */
	UPMD_PCI_IRQ_MSI,
	UPMD_PCI_IRQ_MSIX,
};

/**
 * Enable @nvec vectors of the best kind the device offers: MSI-X, else MSI,
 * else INTx (INTx only for @nvec == 1). Each vector signals its own eventfd
 * (dev->msix_efd[i], dev->msix_count == @nvec whatever the kind); wait with
 * upmd_pci_msix_wait(), disable with upmd_pci_msix_disable() or
 * upmd_pci_irq_disable(). MSI and MSI-X messages are memory writes: the
 * device sends them only with bus mastering on (upmd_pci_set_bus_master).
 * @return the kind enabled (> 0), -EINVAL (@nvec < 1 or more than any kind
 *   offers), -ENOTSUP (no interrupt at all), -EBUSY (already enabled:
 *   disable first), or the kernel's -errno (nothing stays enabled).
 */
int upmd_pci_irq_enable(struct upmd_pci_device *dev, int nvec);
/** Disable whatever kind is enabled and close its eventfds; 0 if none was. */
int upmd_pci_irq_disable(struct upmd_pci_device *dev);
/** The kind enabled now, UPMD_PCI_IRQ_NONE if none. */
enum upmd_pci_irq_type upmd_pci_irq_type(const struct upmd_pci_device *dev);
/** Vectors of @type the device offers (VFIO_DEVICE_GET_IRQ_INFO); 0 if none. */
int upmd_pci_irq_count(const struct upmd_pci_device *dev, enum upmd_pci_irq_type type);
/**
 * INTx is masked by the kernel when it fires (it is level-triggered): after
 * the interrupt has been acknowledged in the device, unmask it to get the
 * next one. A no-op (0) for MSI and MSI-X. @return 0 or -errno.
 */
int upmd_pci_irq_unmask(struct upmd_pci_device *dev);

/**
 * Function-level reset (VFIO_DEVICE_RESET). @return 0, -ENOTSUP if the
 * device cannot be reset, or the kernel's -errno.
 */
int upmd_pci_reset(struct upmd_pci_device *dev);

/* ---- the kernel's view in sysfs, and binding (for tools: upmd-devbind) ----
 * Everything here goes through the kernel boundary (upmd_k_*), so it runs
 * against the model as well. None of it needs upmd_eal_init(). */

/** A PCI function as sysfs describes it. */
struct upmd_pci_sysfs_dev {
	struct upmd_pci_addr addr;
	char name[16];		/* "0000:00:04.0" */
	struct upmd_pci_id id;
	int numa_node;		/* -1 if unknown */
	int iommu_group;	/* -1 if the device has no IOMMU group */
	char driver[32];	/* kernel driver bound, "" if none */
	char cdev[16];		/* "vfio0" when bound to vfio-pci with a cdev, else "" */
};

/**
 * Read one device (any accepted spelling of @bdf). @return 0, -EINVAL (bad
 * address), -ENODEV (no such device), or -errno reading sysfs.
 */
int upmd_pci_sysfs_read(const char *bdf, struct upmd_pci_sysfs_dev *out);

/**
 * Every PCI function, sorted by address, in *out (malloc'ed; free() it).
 * @return the number of devices, or -errno (nothing allocated).
 */
int upmd_pci_sysfs_list(struct upmd_pci_sysfs_dev **out);

/**
 * Bind @bdf to kernel driver @driver ("vfio-pci"): set driver_override,
 * unbind from the current driver, and ask the kernel to probe it. Returns 0
 * at once if it is already bound to @driver.
 * @return 0, -EINVAL (bad address or driver name), -ENODEV (no such
 *   device), -ENOENT (driver not loaded: the log says which modprobe),
 *   -EACCES/-EPERM (not root), -EIO (the driver did not take the device,
 *   e.g. its IOMMU group is not viable). Each failure is logged.
 */
int upmd_pci_sysfs_bind(const char *bdf, const char *driver);

/**
 * Unbind @bdf from its kernel driver and clear driver_override, so the
 * device stays driverless. @return 0 (also when it had no driver),
 * -EINVAL, -ENODEV, or -errno from sysfs (logged).
 */
int upmd_pci_sysfs_unbind(const char *bdf);

/** 32/64-bit MMIO accessors for a mapped BAR (volatile, no reordering by the compiler). */
static inline uint32_t upmd_mmio_read32(const volatile void *addr)
{ return *(const volatile uint32_t *)addr; }
static inline void upmd_mmio_write32(volatile void *addr, uint32_t v)
{ *(volatile uint32_t *)addr = v; }
static inline uint64_t upmd_mmio_read64(const volatile void *addr)
{ return *(const volatile uint64_t *)addr; }
static inline void upmd_mmio_write64(volatile void *addr, uint64_t v)
{ *(volatile uint64_t *)addr = v; }

#ifdef __cplusplus
}
#endif
#endif /* UPMD_PCI_H */
