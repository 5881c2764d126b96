/* Interfaces between the PCI bus's own files: the device's private state and the sysfs reader the scan shares with upmd-devbind. */
#ifndef UPMD_PCI_PRIVATE_H
#define UPMD_PCI_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upmd/pci.h>
#include <upmd/uapi/vfio.h>

#define PCI_LOG "pci"
#define PCI_SYSFS_DEVICES "/sys/bus/pci/devices"
#define PCI_SYSFS_DRIVERS "/sys/bus/pci/drivers"
#define PCI_VFIO_DRIVER "vfio-pci"

/* Config space offsets and bits the bus itself touches. */
#define PCI_CFG_COMMAND 0x04
#define PCI_CMD_BUS_MASTER (1u << 2)

/*
 * What the bus keeps about a device beyond the public struct. The public
 * part comes first so a struct upmd_pci_device pointer handed out by the
 * API converts back with upmd_container_of.
 */
struct pci_dev {
	struct upmd_pci_device pub;
	bool explicit_allow;		/* named with -a: failures are errors, not skips */
	uint32_t info_flags;		/* VFIO_DEVICE_FLAGS_* */
	uint64_t cfg_size;		/* config region size */
	uint32_t cfg_flags;		/* config region VFIO_REGION_INFO_FLAG_* */
	size_t bar_map_len[UPMD_PCI_MAX_BARS];	/* mmap length (page-rounded) */
	uint32_t irq_count[VFIO_PCI_NUM_IRQS];	/* vectors per VFIO irq index */
	enum upmd_pci_irq_type irq_type;	/* kind enabled now */
};

/* Sort key: address order is what lspci and sysfs show. */
static inline uint64_t pci_addr_key(const struct upmd_pci_addr *a)
{
	return ((uint64_t)a->domain << 16) | ((uint64_t)a->bus << 8) | ((uint64_t)a->dev << 3) | a->fn;
}

static inline struct pci_dev *pci_dev_of(struct upmd_pci_device *d)
{
	return upmd_container_of(d, struct pci_dev, pub);
}

/**
 * Read one device's sysfs directory (@name is canonical, "0000:00:04.0").
 * @return 0, -ENODEV if it does not exist, or -errno for an unreadable
 * mandatory attribute (vendor, device, class).
 */
int pci_sysfs_read_dev(const char *name, struct upmd_pci_sysfs_dev *out);

#endif /* UPMD_PCI_PRIVATE_H */
