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
 * Parse "DDDD:BB:DD.F" or "BB:DD.F". @return 0 or -EINVAL.
 */
int upmd_pci_addr_parse(const char *s, struct upmd_pci_addr *addr);
/** Format as "DDDD:BB:DD.F" into @buf (at least 13 bytes). */
void upmd_pci_addr_fmt(const struct upmd_pci_addr *addr, char *buf, size_t len);

struct upmd_pci_id {
	uint16_t vendor_id, device_id;
	uint16_t subsystem_vendor_id, subsystem_device_id;
	uint32_t class_id;	/* 24-bit class code, or UPMD_PCI_ANY_ID for any */
};

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

/** A driver: matched by id table, probed on each matching device. */
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

/** Devices opened by the EAL (those allowed with -a, or all vfio-bound ones). */
unsigned upmd_pci_device_count(void);
struct upmd_pci_device *upmd_pci_device_get(unsigned i);
/** The device with this BDF (any accepted spelling), or NULL. */
struct upmd_pci_device *upmd_pci_device_find(const char *bdf);

/** Map BAR @bar (idempotent). @return 0, -ENOENT (absent), -ENOTSUP (not mmappable), -errno. */
int upmd_pci_map_bar(struct upmd_pci_device *dev, unsigned bar);

/** Config-space access through the VFIO config region. @return bytes or -errno. */
int upmd_pci_cfg_read(struct upmd_pci_device *dev, void *buf, size_t len, off_t off);
int upmd_pci_cfg_write(struct upmd_pci_device *dev, const void *buf, size_t len, off_t off);

/** Set or clear Bus Master Enable in the command register. */
int upmd_pci_set_bus_master(struct upmd_pci_device *dev, bool enable);

/** Region access with pread/pwrite (for BARs that cannot be mmapped). */
int upmd_pci_bar_read(struct upmd_pci_device *dev, unsigned bar, void *buf, size_t len, off_t off);
int upmd_pci_bar_write(struct upmd_pci_device *dev, unsigned bar, const void *buf, size_t len, off_t off);

/**
 * Enable @nvec MSI-X vectors, each signalling its own eventfd
 * (dev->msix_efd[i]). @return 0, -ENOTSUP if the device has no MSI-X,
 * -EINVAL if @nvec exceeds its count.
 */
int upmd_pci_msix_enable(struct upmd_pci_device *dev, int nvec);
int upmd_pci_msix_disable(struct upmd_pci_device *dev);
/**
 * Wait up to @timeout_ms for vector @vec; @return the count of interrupts
 * since the last call (>0), 0 on timeout, or -errno.
 */
int upmd_pci_msix_wait(struct upmd_pci_device *dev, int vec, int timeout_ms);

/** Function-level reset (VFIO_DEVICE_RESET). */
int upmd_pci_reset(struct upmd_pci_device *dev);

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
