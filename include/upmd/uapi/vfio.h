/* VFIO uAPI (device cdev, legacy group/container, vfio-pci): layouts and ioctl numbers, written for upmd. */
#ifndef UPMD_UAPI_VFIO_H
#define UPMD_UAPI_VFIO_H
/*
 * Debian 12's <linux/vfio.h> (6.1) predates the cdev ioctls. Include this
 * header instead; the guard below makes a later #include <linux/vfio.h> a
 * no-op so the two never disagree inside one translation unit.
 */
#define VFIO_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <stddef.h>

#define VFIO_API_VERSION 0
#define VFIO_TYPE (';')
#define VFIO_BASE 100

/* ---- container (legacy type1) ---- */
#define VFIO_TYPE1_IOMMU 1
#define VFIO_TYPE1v2_IOMMU 3

#define VFIO_GET_API_VERSION _IO(VFIO_TYPE, VFIO_BASE + 0)
#define VFIO_CHECK_EXTENSION _IO(VFIO_TYPE, VFIO_BASE + 1)
#define VFIO_SET_IOMMU _IO(VFIO_TYPE, VFIO_BASE + 2)

/* ---- group (legacy) ---- */
struct vfio_group_status {
	__u32 argsz;
	__u32 flags;
};
#define VFIO_GROUP_FLAGS_VIABLE (1 << 0)
#define VFIO_GROUP_FLAGS_CONTAINER_SET (1 << 1)
#define VFIO_GROUP_GET_STATUS _IO(VFIO_TYPE, VFIO_BASE + 3)
#define VFIO_GROUP_SET_CONTAINER _IO(VFIO_TYPE, VFIO_BASE + 4)	/* arg: int *container_fd */
#define VFIO_GROUP_UNSET_CONTAINER _IO(VFIO_TYPE, VFIO_BASE + 5)
#define VFIO_GROUP_GET_DEVICE_FD _IO(VFIO_TYPE, VFIO_BASE + 6)	/* arg: char *name */

/* ---- device ---- */
struct vfio_device_info {
	__u32 argsz;
	__u32 flags;
	__u32 num_regions;
	__u32 num_irqs;
	__u32 cap_offset;
	__u32 pad;
};
#define VFIO_DEVICE_FLAGS_RESET (1 << 0)
#define VFIO_DEVICE_FLAGS_PCI (1 << 1)
#define VFIO_DEVICE_FLAGS_CAPS (1 << 7)
#define VFIO_DEVICE_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 7)
/* The kernel requires argsz >= offsetofend(num_irqs). */
#define VFIO_DEVICE_INFO_MINSZ (offsetof(struct vfio_device_info, num_irqs) + sizeof(__u32))

struct vfio_region_info {
	__u32 argsz;
	__u32 flags;
	__u32 index;
	__u32 cap_offset;
	__aligned_u64 size;
	__aligned_u64 offset;
};
#define VFIO_REGION_INFO_FLAG_READ (1 << 0)
#define VFIO_REGION_INFO_FLAG_WRITE (1 << 1)
#define VFIO_REGION_INFO_FLAG_MMAP (1 << 2)
#define VFIO_REGION_INFO_FLAG_CAPS (1 << 3)
#define VFIO_DEVICE_GET_REGION_INFO _IO(VFIO_TYPE, VFIO_BASE + 8)
#define VFIO_REGION_INFO_MINSZ (offsetof(struct vfio_region_info, offset) + sizeof(__u64))

struct vfio_irq_info {
	__u32 argsz;
	__u32 flags;
	__u32 index;
	__u32 count;
};
#define VFIO_IRQ_INFO_EVENTFD (1 << 0)
#define VFIO_IRQ_INFO_MASKABLE (1 << 1)
#define VFIO_IRQ_INFO_AUTOMASKED (1 << 2)
#define VFIO_IRQ_INFO_NORESIZE (1 << 3)
#define VFIO_DEVICE_GET_IRQ_INFO _IO(VFIO_TYPE, VFIO_BASE + 9)

struct vfio_irq_set {
	__u32 argsz;
	__u32 flags;
	__u32 index;
	__u32 start;
	__u32 count;
	__u8 data[];
};
#define VFIO_IRQ_SET_DATA_NONE (1 << 0)
#define VFIO_IRQ_SET_DATA_BOOL (1 << 1)
#define VFIO_IRQ_SET_DATA_EVENTFD (1 << 2)
#define VFIO_IRQ_SET_ACTION_MASK (1 << 3)
#define VFIO_IRQ_SET_ACTION_UNMASK (1 << 4)
#define VFIO_IRQ_SET_ACTION_TRIGGER (1 << 5)
#define VFIO_IRQ_SET_DATA_TYPE_MASK \
	(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD)
#define VFIO_IRQ_SET_ACTION_TYPE_MASK \
	(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER)
#define VFIO_DEVICE_SET_IRQS _IO(VFIO_TYPE, VFIO_BASE + 10)

#define VFIO_DEVICE_RESET _IO(VFIO_TYPE, VFIO_BASE + 11)

/* vfio-pci region and irq indexes; region offsets are index << 40. */
enum {
	VFIO_PCI_BAR0_REGION_INDEX,
	VFIO_PCI_BAR1_REGION_INDEX,
	VFIO_PCI_BAR2_REGION_INDEX,
	VFIO_PCI_BAR3_REGION_INDEX,
	VFIO_PCI_BAR4_REGION_INDEX,
	VFIO_PCI_BAR5_REGION_INDEX,
	VFIO_PCI_ROM_REGION_INDEX,
	VFIO_PCI_CONFIG_REGION_INDEX,
	VFIO_PCI_VGA_REGION_INDEX,
	VFIO_PCI_NUM_REGIONS = 9
};
enum {
	VFIO_PCI_INTX_IRQ_INDEX,
	VFIO_PCI_MSI_IRQ_INDEX,
	VFIO_PCI_MSIX_IRQ_INDEX,
	VFIO_PCI_ERR_IRQ_INDEX,
	VFIO_PCI_REQ_IRQ_INDEX,
	VFIO_PCI_NUM_IRQS
};
#define VFIO_PCI_REGION_SHIFT 40
#define VFIO_PCI_INDEX_TO_OFFSET(index) ((__u64)(index) << VFIO_PCI_REGION_SHIFT)

/* ---- device cdev + iommufd (6.6+) ---- */
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;	/* must be 0 */
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

/*
 * ATTACH/DETACH: pt_id is an IOAS or HWPT id and is written back with the
 * HWPT actually used. The pasid field and VFIO_DEVICE_ATTACH_PASID arrived
 * in 6.15; older kernels require argsz >= offsetofend(pt_id) and flags == 0.
 */
struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
	__u32 pasid;
};
#define VFIO_DEVICE_ATTACH_PASID (1 << 0)
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#define VFIO_DEVICE_ATTACH_MINSZ (offsetof(struct vfio_device_attach_iommufd_pt, pt_id) + sizeof(__u32))

struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pasid;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#define VFIO_DEVICE_DETACH_MINSZ (offsetof(struct vfio_device_detach_iommufd_pt, flags) + sizeof(__u32))

/* ---- type1 IOMMU (container) ---- */
struct vfio_info_cap_header {
	__u16 id;
	__u16 version;
	__u32 next;
};

struct vfio_iommu_type1_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 iova_pgsizes;
	__u32 cap_offset;
	__u32 pad;
};
#define VFIO_IOMMU_INFO_PGSIZES (1 << 0)
#define VFIO_IOMMU_INFO_CAPS (1 << 1)
#define VFIO_IOMMU_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 12)

struct vfio_iova_range {
	__u64 start;
	__u64 end;	/* inclusive */
};
#define VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE 1
struct vfio_iommu_type1_info_cap_iova_range {
	struct vfio_info_cap_header header;
	__u32 nr_iovas;
	__u32 reserved;
	struct vfio_iova_range iova_ranges[];
};

struct vfio_iommu_type1_dma_map {
	__u32 argsz;
	__u32 flags;
	__u64 vaddr;
	__u64 iova;
	__u64 size;
};
#define VFIO_DMA_MAP_FLAG_READ (1 << 0)
#define VFIO_DMA_MAP_FLAG_WRITE (1 << 1)
#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)

struct vfio_iommu_type1_dma_unmap {
	__u32 argsz;
	__u32 flags;
	__u64 iova;
	__u64 size;
	__u8 data[];
};
#define VFIO_IOMMU_UNMAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 14)

_Static_assert(sizeof(struct vfio_group_status) == 8, "vfio_group_status ABI");
_Static_assert(sizeof(struct vfio_device_info) == 24, "vfio_device_info ABI");
_Static_assert(sizeof(struct vfio_region_info) == 32, "vfio_region_info ABI");
_Static_assert(sizeof(struct vfio_irq_info) == 16, "vfio_irq_info ABI");
_Static_assert(sizeof(struct vfio_irq_set) == 20, "vfio_irq_set ABI");
_Static_assert(sizeof(struct vfio_device_bind_iommufd) == 16, "bind_iommufd ABI");
_Static_assert(sizeof(struct vfio_device_attach_iommufd_pt) == 16, "attach_iommufd_pt ABI");
_Static_assert(sizeof(struct vfio_device_detach_iommufd_pt) == 12, "detach_iommufd_pt ABI");
_Static_assert(sizeof(struct vfio_iommu_type1_info) == 24, "type1_info ABI");
_Static_assert(sizeof(struct vfio_iommu_type1_dma_map) == 32, "type1_dma_map ABI");
_Static_assert(sizeof(struct vfio_iommu_type1_dma_unmap) == 24, "type1_dma_unmap ABI");
_Static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76, "ioctl number");

#endif /* UPMD_UAPI_VFIO_H */
