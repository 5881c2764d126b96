/* The process's one I/O address space: iommufd IOAS or legacy VFIO type1 container, chosen at run time. */
#ifndef UPMD_IOAS_H
#define UPMD_IOAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upmd_ioas;

enum upmd_ioas_backend {
	UPMD_IOAS_BACKEND_AUTO = 0,	/* iommufd if /dev/iommu exists, else type1 */
	UPMD_IOAS_BACKEND_IOMMUFD,
	UPMD_IOAS_BACKEND_TYPE1,
};

/** Features detected when the IOAS was opened. */
#define UPMD_IOAS_FEAT_MAP_FILE (1u << 0)	/* IOMMU_IOAS_MAP_FILE */
#define UPMD_IOAS_FEAT_PASID (1u << 1)		/* VFIO_DEVICE_ATTACH_PASID */
#define UPMD_IOAS_FEAT_KERNEL_IOVA (1u << 2)	/* the kernel can choose IOVAs */

/** Map flags. */
#define UPMD_IOAS_MAP_READ (1u << 0)	/* device may read */
#define UPMD_IOAS_MAP_WRITE (1u << 1)	/* device may write */
#define UPMD_IOAS_MAP_FIXED (1u << 2)	/* use *iova as given */
#define UPMD_IOAS_MAP_RW (UPMD_IOAS_MAP_READ | UPMD_IOAS_MAP_WRITE)

struct upmd_iova_range {
	uint64_t start;
	uint64_t last;	/* inclusive */
};

/** Options for upmd_ioas_open(); extensible: size first, flags, reserved zero. */
/* The caller can run without an IOAS: when the machine has no IOMMU
 * interface at all, -ENODEV comes without an error in the log (the caller
 * says what it does instead). A missing interface named by the backend or
 * UPMD_IOMMU is still an error. */
#define UPMD_IOAS_F_OPTIONAL (1u << 0)

struct upmd_ioas_conf {
	uint32_t size;		/* sizeof(struct upmd_ioas_conf) */
	uint32_t flags;		/* UPMD_IOAS_F_*, others must be 0 */
	enum upmd_ioas_backend backend;
	uint32_t __reserved;
};

/**
 * Open an IOAS. With BACKEND_AUTO the environment variable UPMD_IOMMU
 * (iommufd|type1) overrides the choice.
 * @return 0, -ENODEV if neither /dev/iommu nor /dev/vfio/vfio exists (the
 *   log names what is missing and how to enable it), -EINVAL for a bad conf,
 *   or the kernel's -errno.
 */
int upmd_ioas_open(const struct upmd_ioas_conf *conf, struct upmd_ioas **out);

/** Detach and close every device opened through it, unmap all, close. */
void upmd_ioas_close(struct upmd_ioas *ioas);

/** The EAL's IOAS (NULL before init or when the process has none). */
struct upmd_ioas *upmd_ioas_default(void);

/** Make @ioas the default (the EAL does this; NULL clears it). */
void upmd_ioas_set_default(struct upmd_ioas *ioas);

enum upmd_ioas_backend upmd_ioas_backend_kind(const struct upmd_ioas *ioas);
const char *upmd_ioas_backend_name(const struct upmd_ioas *ioas);
uint32_t upmd_ioas_features(const struct upmd_ioas *ioas);
/** The kernel's IOAS id (iommufd) or 0 (type1). */
uint32_t upmd_ioas_id(const struct upmd_ioas *ioas);

/**
 * Allowed IOVA ranges as the kernel reported them (holes such as the MSI
 * window excluded), sorted. Re-read after each device attach, since an
 * attach can narrow them. @return the number of ranges; *r points inside
 * the IOAS and stays valid until the next attach or close.
 */
unsigned upmd_ioas_ranges(const struct upmd_ioas *ioas, const struct upmd_iova_range **r);

/** True if [iova, iova+len) lies wholly inside one allowed range. */
bool upmd_ioas_iova_allowed(const struct upmd_ioas *ioas, uint64_t iova, uint64_t len);

/**
 * Map [va, va+len) (page aligned). With UPMD_IOAS_MAP_FIXED the IOVA is
 * *iova; otherwise the IOAS picks one inside the allowed ranges and stores
 * it in *iova. @return 0, -EINVAL (unaligned, outside the allowed ranges,
 * in a hole), -EEXIST (overlaps a mapping), -ENOMEM (pinned-memory limit:
 * the log gives RLIMIT_MEMLOCK and the amount needed), -ENOSPC (no free
 * IOVA), or the kernel's -errno. Thread-safe.
 */
int upmd_ioas_map(struct upmd_ioas *ioas, void *va, uint64_t len, uint64_t *iova,
		  uint32_t flags);

/**
 * Map [off, off+len) of file @fd, which is also mapped at @va. Uses
 * IOMMU_IOAS_MAP_FILE where the kernel has it, else maps by @va.
 * Same returns as upmd_ioas_map().
 */
int upmd_ioas_map_file(struct upmd_ioas *ioas, int fd, uint64_t off, void *va, uint64_t len,
		       uint64_t *iova, uint32_t flags);

/**
 * Unmap exactly the mapping(s) covering [iova, iova+len).
 * @return 0, -ENOENT if nothing is mapped there or the range cuts a
 *   mapping, or the kernel's -errno. Thread-safe.
 */
int upmd_ioas_unmap(struct upmd_ioas *ioas, uint64_t iova, uint64_t len);

/** A device to open through the IOAS. */
struct upmd_ioas_dev_req {
	uint32_t size;		/* sizeof(struct upmd_ioas_dev_req) */
	uint32_t flags;		/* UPMD_IOAS_DEV_F_* */
	const char *bdf;	/* "0000:00:04.0" */
	const char *cdev;	/* "vfio3" (iommufd backend), or NULL */
	int iommu_group;	/* group number (type1 backend), or -1 */
	uint32_t pasid;		/* with UPMD_IOAS_DEV_F_PASID */
};
#define UPMD_IOAS_DEV_F_PASID (1u << 0)	/* attach at a PASID (fails -EOPNOTSUPP without kernel support) */

/**
 * Open the device's VFIO fd and put it in this IOAS: for iommufd open
 * /dev/vfio/devices/<cdev>, BIND_IOMMUFD and ATTACH_IOMMUFD_PT (at @pasid
 * if asked); for type1 open /dev/vfio/<group>, join the container, and
 * GET_DEVICE_FD. @return 0 and the device fd in *fd, or -errno with a
 * message naming the BDF.
 */
int upmd_ioas_device_open(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req, int *fd);

/** Detach and close a device fd obtained from upmd_ioas_device_open(). */
int upmd_ioas_device_close(struct upmd_ioas *ioas, int fd);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_IOAS_H */
