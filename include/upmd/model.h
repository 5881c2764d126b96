/* The in-process model of the iommufd + vfio-pci uAPI and of PCI devices whose DMA goes through a model IOAS. */
#ifndef UPMD_MODEL_H
#define UPMD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/kops.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upmd_model;
struct upmd_model_dev;

/* What the modelled machine offers. */
#define UPMD_MODEL_F_NO_IOMMUFD (1u << 0)	/* no /dev/iommu */
#define UPMD_MODEL_F_NO_VFIO (1u << 1)		/* no /dev/vfio at all (container, groups, cdevs) */
#define UPMD_MODEL_F_NO_MAP_FILE (1u << 2)	/* IOMMU_IOAS_MAP_FILE -> ENOTTY, like 6.12 */
#define UPMD_MODEL_F_NO_PASID (1u << 3)		/* ATTACH with a PASID -> EINVAL, like 6.12 */
#define UPMD_MODEL_F_UNPRIVILEGED (1u << 4)	/* account pins against RLIMIT_MEMLOCK even as root */

struct upmd_model_conf {
	uint32_t size;		/* sizeof(struct upmd_model_conf) */
	uint32_t flags;		/* UPMD_MODEL_F_* */
};

/**
 * Create a model machine with no devices. @return 0, -EINVAL (bad conf),
 * -ENOMEM.
 */
int upmd_model_create(const struct upmd_model_conf *conf, struct upmd_model **out);

/**
 * Add a device model of type @type ("edu", ...) at PCI address @bdf, bound
 * to vfio-pci, in its own IOMMU group. @args: type-specific "k=v,k=v" or
 * NULL. @return 0, -EEXIST (address taken), -ENOENT (unknown type),
 * -EINVAL.
 */
int upmd_model_add_device(struct upmd_model *m, const char *type, const char *bdf,
			  const char *args);

/**
 * Build a model from a spec string, as given to the EAL's --model:
 * "TYPE@BDF[:ARGS][;TYPE@BDF...][;flags=nomapfile|nopasid|noiommufd|novfio|unpriv...]".
 * Empty spec: a machine with no devices. @return 0 or -EINVAL with a log.
 */
int upmd_model_parse(const char *spec, struct upmd_model **out);

/** Destroy the model (closes whatever is still open, stops device threads). */
void upmd_model_destroy(struct upmd_model *m);

/** The kernel-boundary table implemented by the model; ctx is the model. */
const struct upmd_kops *upmd_model_kops(void);

/** Convenience: create from spec and install as the kernel boundary. */
int upmd_model_install(const char *spec, struct upmd_model **out);

struct upmd_model_stats {
	uint64_t pinned_pages;		/* 4 KiB pages pinned by IOAS maps */
	uint32_t open_fds;		/* model fds open (iommufd, cdevs, groups, containers) */
	uint32_t objects;		/* live iommufd objects (IOAS, devices, HWPTs) */
	uint32_t bound_devices;		/* devices bound to an iommufd or container */
	uint32_t attached_devices;	/* devices attached to an IOAS (any PASID) */
	uint32_t bar_mappings;		/* live BAR mmaps */
	uint32_t faults;		/* IOMMU faults recorded so far */
	uint64_t dma_bytes;		/* bytes moved by device DMA */
};
int upmd_model_get_stats(struct upmd_model *m, struct upmd_model_stats *st);

enum upmd_model_fault_reason {
	UPMD_MODEL_FAULT_UNMAPPED = 1,	/* no mapping at that IOVA */
	UPMD_MODEL_FAULT_NO_READ,	/* mapping lacks READABLE */
	UPMD_MODEL_FAULT_NO_WRITE,	/* mapping lacks WRITEABLE */
	UPMD_MODEL_FAULT_NOT_ATTACHED,	/* device (or PASID) not attached to any IOAS */
};

struct upmd_model_fault {
	char bdf[16];
	uint64_t iova;
	uint32_t pasid;		/* UPMD_MODEL_NO_PASID if none */
	bool write;
	enum upmd_model_fault_reason reason;
};
#define UPMD_MODEL_NO_PASID UINT32_MAX

/** Pop the oldest recorded fault. @return 0, or -ENOENT if none. */
int upmd_model_fault_pop(struct upmd_model *m, struct upmd_model_fault *f);
/** Name of a fault reason. */
const char *upmd_model_fault_reason_name(enum upmd_model_fault_reason r);

/* ---- for device models ---- */

/** DMA through the device's IOAS port (translated, permission-checked). 0 or -EFAULT (fault recorded). */
int upmd_model_dma_read(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova, void *buf, size_t len);
int upmd_model_dma_write(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova, const void *buf, size_t len);
/** Signal MSI-X vector @vec (or INTx for vec < 0) if the driver set an eventfd. */
void upmd_model_irq(struct upmd_model_dev *d, int vec);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_MODEL_H */
