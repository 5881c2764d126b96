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
	/* Added after the first version (read only when size covers it):
	 * IOMMU address width, 32..64; 0 means 48. QEMU's intel-iommu
	 * default is 39 (aperture ends at 0x7fffffffff). */
	uint32_t aw_bits;
	uint32_t __reserved;
};

/**
 * Create a model machine with no devices. @conf NULL: defaults.
 * @return 0, -EINVAL (size below the first version, unknown flags,
 * aw_bits out of range), -ENOMEM.
 */
int upmd_model_create(const struct upmd_model_conf *conf, struct upmd_model **out);

/**
 * Add a device model of type @type ("edu", ...) at PCI address @bdf, bound
 * to vfio-pci, in its own IOMMU group. @args: type-specific "k=v,k=v" or
 * NULL. Generic keys: driver=NAME (bound to that kernel driver instead,
 * whose id table matches the device; "none": unbound; either way vfio-pci
 * takes it only through driver_override + drivers_probe, as on Linux),
 * numa_node=N, reset=0|1 (whether the function has a reset; edu: 0 like
 * QEMU's), pasid_bits=N (PASID support of that width, 0..20; edu: 0 like
 * QEMU's, so a PASID attach is EINVAL). edu: dma_mask=0x... (default
 * 0xfffffff, QEMU's 28 bits). virtio-net: mac=52:54:00:12:34:56
 * (default 52:54:00:12:34:56 plus the device's index), queues=N (queue
 * pairs, 1..16, default 1), peer=BDF (the virtio-net device its TX
 * frames go to and whose TX frames it receives; naming it on either side
 * connects both ways), iommu_platform=on|off, mrg_rxbuf=on|off,
 * ctrl_vq=on|off (QEMU's properties: off withholds the feature; the
 * model's DMA goes through its IOMMU either way). nvme: queues=N (I/O
 * queue pairs, 1..64, default 8; MSI-X has N + 1 vectors), mqes=N
 * (CAP.MQES, 1..4095, default 1023), mdts=N (0..10, default 7: 512 KiB;
 * 0 unlimited), nn=N (namespaces, 1..4, default 1), ns_mb=N (MiB per
 * namespace, default 64), lba=512|4096 (default 512), file=PATH (backs
 * namespace 1, opened O_RDWR, at least ns_mb MiB), sgl=on|off (default
 * on), serial=STR (up to 20 characters, default "UPMD-MODEL-<index>").
 * Groups are numbered from 10 in the order devices are added; a device
 * bound to vfio-pci gets the lowest free /dev/vfio/devices/vfioN.
 * Thread-safe. @return 0, -EEXIST (address taken), -ENOENT (unknown
 * type), -ENOSPC (too many devices), -EINVAL (bad address or argument,
 * logged).
 */
int upmd_model_add_device(struct upmd_model *m, const char *type, const char *bdf,
			  const char *args);

/**
 * Build a model from a spec string, as given to the EAL's --model:
 *
 *   spec   := item { ';' item }          (empty items are ignored)
 *   item   := device | "flags=" flag { ',' flag } | "aw=" BITS
 *   device := TYPE '@' BDF [ ':' arg { ',' arg } ]
 *   BDF    := [DDDD ':'] BB ':' DD '.' F (hex; canonical form "0000:00:04.0")
 *   arg    := KEY '=' VALUE              (see upmd_model_add_device)
 *   flag   := nomapfile | nopasid | noiommufd | novfio | unpriv
 *   BITS   := 32..64                     (IOMMU address width, default 48)
 *
 * e.g. "edu@0000:00:04.0:dma_mask=0xffffffff;edu@00:05.0;flags=unpriv,nopasid;aw=39".
 * flags= and aw= apply wherever they stand. Spaces around items are
 * ignored. Empty spec: a machine with no devices. @return 0, -EINVAL
 * (the log names the bad token), -ENOMEM.
 */
int upmd_model_parse(const char *spec, struct upmd_model **out);

/** Destroy the model (closes whatever is still open, unmaps BAR mappings
 * made through the table, stops the device thread). Uninstall it first
 * (upmd_kops_set(NULL, NULL)) if it is the table in force. */
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
/**
 * A snapshot of the counters. bound_devices counts devices with an open,
 * usable device file (cdev bound to an iommufd, or opened through a
 * group in a container); attached_devices those that can DMA through a
 * translation (attached to an IOAS by RID or PASID, or in a type1
 * container with its IOMMU set). faults and dma_bytes only grow.
 * Thread-safe. @return 0, -EINVAL.
 */
int upmd_model_get_stats(struct upmd_model *m, struct upmd_model_stats *st);

/** Zero the growing counters (faults, dma_bytes) and drop the recorded
 * faults, e.g. between the tests of a suite that checks for a clean
 * model. Thread-safe. */
void upmd_model_stats_reset(struct upmd_model *m);

/** One IOVA mapping the model's IOMMU holds (an iommufd area or a type1 DMA). */
struct upmd_model_mapping {
	uint32_t ioas_id;	/* the IOAS id; 0 for a type1 container */
	uint32_t prot;		/* UPMD_MODEL_MAP_READ | UPMD_MODEL_MAP_WRITE */
	uint64_t iova;
	uint64_t len;
	uint64_t va;		/* the user VA it maps; 0 when mapped from a file */
};
#define UPMD_MODEL_MAP_READ 0x1u
#define UPMD_MODEL_MAP_WRITE 0x2u

/**
 * Every mapping of every IOAS and container, sorted by (ioas_id, iova),
 * so a test can check what the library believes against what the
 * "kernel" holds. Stores up to @max in @out. Thread-safe.
 * @return the total number (may exceed @max), or -EINVAL.
 */
int upmd_model_mappings(struct upmd_model *m, struct upmd_model_mapping *out, unsigned max);

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

/** Pop the oldest recorded fault (the last 256 are kept). Thread-safe.
 * @return 0, -ENOENT if none, -EINVAL. */
int upmd_model_fault_pop(struct upmd_model *m, struct upmd_model_fault *f);
/** Name of a fault reason. */
const char *upmd_model_fault_reason_name(enum upmd_model_fault_reason r);

/** What a "virtio-net" model device counted, and the state a test checks. */
struct upmd_model_virtio_net_stats {
	uint64_t tx_frames;		/* frames taken from TX queues (to the peer, or consumed without one) */
	uint64_t tx_bytes;		/* their bytes, virtio_net_hdr excluded */
	uint64_t tx_dropped;		/* TX chains longer than 64 KiB of frame: completed, not sent */
	uint64_t rx_frames;		/* frames written into RX buffers */
	uint64_t rx_bytes;		/* their bytes, virtio_net_hdr excluded */
	uint64_t rx_dropped;		/* arrived with no (large enough) RX buffer posted, or not running */
	uint64_t rx_filtered;		/* refused by the MAC filter (promiscuous mode off) */
	uint64_t ctrl_cmds;		/* control-queue commands answered, OK or ERR */
	uint64_t ctrl_errors;		/* of those, answered VIRTIO_NET_ERR */
	uint64_t resets_needed;		/* times the device set DEVICE_NEEDS_RESET */
	uint8_t status;			/* device_status as the driver reads it */
	bool promisc, allmulti;		/* receive filter (promiscuous after reset, as QEMU) */
	uint16_t active_pairs;		/* queue pairs in use (VQ_PAIRS_SET; 1 after reset) */
	uint8_t mac[6];			/* the current MAC (config space, VIRTIO_NET_CTRL_MAC_ADDR_SET) */
};

/**
 * Snapshot of the virtio-net model device at @bdf (any accepted
 * spelling). Counters grow for the life of the model (a device reset
 * does not clear them). Thread-safe. @return 0, -EINVAL (NULL
 * argument), -ENOENT (no device there), -ENODEV (not a virtio-net).
 */
int upmd_model_virtio_net_stats(struct upmd_model *m, const char *bdf,
				struct upmd_model_virtio_net_stats *st);

/* ---- nvme: error injection and introspection ---- */

/** What upmd_model_nvme_inject() breaks. */
enum upmd_model_nvme_fault {
	/* Set CSTS.CFS now: no queue is processed until CC.EN goes 0 (a
	 * controller reset clears it). */
	UPMD_MODEL_NVME_FATAL = 1,
	/* The next @count I/O commands (qid >= 1) are executed but their
	 * completion is held back (never posted) until an Abort names them
	 * (then completed ABORTED BY REQUEST) or the controller is reset
	 * (then dropped). @count 1..256. */
	UPMD_MODEL_NVME_DROP_CPL,
};

/**
 * Inject @f into the nvme model device at @bdf (any accepted spelling);
 * @count is used by UPMD_MODEL_NVME_DROP_CPL only. Thread-safe.
 * @return 0, -EINVAL (NULL, unknown fault, bad count), -ENOENT (no device
 * there), -ENODEV (not an nvme).
 */
int upmd_model_nvme_inject(struct upmd_model *m, const char *bdf, enum upmd_model_nvme_fault f,
			   unsigned count);

/** What an "nvme" model device counted, and the state a test checks. */
struct upmd_model_nvme_stats {
	uint64_t admin_cmds;		/* commands fetched from the admin SQ */
	uint64_t io_cmds;		/* commands fetched from I/O SQs */
	uint64_t reads, writes, flushes, write_zeroes, dsm;	/* successful I/O commands */
	uint64_t bytes_read;		/* moved to the host by Read */
	uint64_t bytes_written;		/* taken from the host by Write */
	uint64_t errors;		/* completions posted with a non-zero status */
	uint64_t dma_faults;		/* queue, PRP/SGL list or data DMAs that failed */
	uint64_t aborts;		/* commands completed ABORTED BY REQUEST by an Abort */
	uint64_t resets;		/* CC.EN 1->0 or function reset */
	uint64_t shutdowns;		/* CC.SHN notifications completed */
	uint32_t io_sqs, io_cqs;	/* I/O queues existing now */
	uint8_t csts;			/* CSTS as the driver reads it */
	uint32_t cc;			/* CC as the controller last acted on it */
};

/**
 * Snapshot of the nvme model device at @bdf. Counters grow for the life
 * of the model (resets do not clear them). Thread-safe. @return 0,
 * -EINVAL (NULL argument), -ENOENT (no device there), -ENODEV (not nvme).
 */
int upmd_model_nvme_stats(struct upmd_model *m, const char *bdf, struct upmd_model_nvme_stats *st);

/* ---- dsa: shared-WQ submission, a hold for back-pressure tests, introspection ---- */

/*
 * The "dsa" device (8086:0b25, Intel DSA 1.0; see model/dev_dsa.c for the
 * portal protocol of dedicated WQs). Arguments: wqs=N (1..8, default 4),
 * wq_size=N (WQ entries shared by all WQs, 1..1024, default 128); 2
 * groups, 4 engines, max transfer 2^31, max batch 1024, PASIDs of 20 bits.
 */

/**
 * ENQCMD of the 64-byte descriptor @desc64 to shared WQ @wq of the dsa
 * device at @bdf, with PASID @pasid (what IA32_PASID gives a real CPU's
 * ENQCMD; it replaces the descriptor's PASID field). For CPUs without
 * ENQCMD, and for every CPU against the model. Thread-safe (any number of
 * submitters). @return 0 accepted; 1 retry (ZF=1: the WQ holds its
 * WQCFG threshold of descriptors, or the device or the WQ is not
 * enabled); -EINVAL (NULL, @pasid above 20 bits, @wq beyond WQCAP, or a
 * dedicated WQ: those take portal writes), -ENOENT (no device there),
 * -ENODEV (not a dsa).
 */
int upmd_model_dsa_enqcmd(struct upmd_model *m, const char *bdf, unsigned wq, const void *desc64,
			  uint32_t pasid);

/**
 * While @hold, the engines of the dsa at @bdf take nothing from its WQs:
 * shared WQs fill up (ENQCMD then retries), portal slots stay written.
 * Commands still run (Drain and Disable still execute what is queued).
 * Survives resets. Thread-safe. @return 0, -EINVAL, -ENOENT, -ENODEV.
 */
int upmd_model_dsa_hold(struct upmd_model *m, const char *bdf, bool hold);

/** What a "dsa" model device counted, and the state a test checks. */
struct upmd_model_dsa_stats {
	uint64_t descs;			/* descriptors executed, batch members included */
	uint64_t batches;		/* batch descriptors executed */
	uint64_t bytes;			/* bytes moved, filled, compared or CRCed */
	uint64_t errors;		/* completions other than success / false predicate */
	uint64_t page_faults;		/* of those, page faults (descriptor list ones included) */
	uint64_t swerrs;		/* errors reported in SWERR (overflows included) */
	uint64_t enqcmds;		/* ENQCMDs accepted */
	uint64_t enqcmd_retries;	/* ENQCMDs answered retry */
	uint64_t aborted;		/* queued descriptors dropped by Abort/Reset/Disable */
	uint64_t cmds, cmd_errors;	/* CMD writes executed, and those with a CMDSTATUS error */
	uint64_t resets;		/* function resets */
	uint32_t gensts;		/* GENSTS state */
	uint32_t wqs_enabled;		/* bit i: WQ i enabled */
	uint32_t occupancy[8];		/* shared WQs: descriptors queued now */
};

/**
 * Snapshot of the dsa model device at @bdf. Counters grow for the life
 * of the model (resets do not clear them). Thread-safe. @return 0,
 * -EINVAL (NULL argument), -ENOENT (no device there), -ENODEV (not dsa).
 */
int upmd_model_dsa_stats(struct upmd_model *m, const char *bdf, struct upmd_model_dsa_stats *st);

/* ---- for device models ---- */

/** The device model at @bdf (any accepted spelling), or NULL. */
struct upmd_model_dev *upmd_model_dev_find(struct upmd_model *m, const char *bdf);

/**
 * DMA through the device's port: translated through the IOAS the device
 * (or, with @pasid != UPMD_MODEL_NO_PASID, that PASID) is attached to, or
 * through its group's type1 container; READABLE/WRITEABLE checked per
 * mapping. The whole range is checked before anything moves, and an
 * unmap waits for a DMA in flight through it. @return 0; -EFAULT with a
 * fault recorded (unmapped IOVA, missing permission, nothing attached),
 * nothing written to RAM, and for a read @buf zero-filled (what a device
 * reads through a blocked translation on QEMU's vIOMMU); -EIO when the
 * function's Bus Master Enable is clear (no request leaves the device,
 * no fault); -EINVAL. Thread-safe.
 */
int upmd_model_dma_read(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova, void *buf, size_t len);
int upmd_model_dma_write(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova, const void *buf, size_t len);
/**
 * Signal vector @vec of the MSI or MSI-X mode the driver enabled (needs
 * Bus Master Enable, MSI being a memory write), or pulse INTx for @vec <
 * 0 (automasked until VFIO_IRQ_SET_ACTION_UNMASK, as vfio-pci does):
 * writes 1 to the eventfd the driver set. Thread-safe.
 */
void upmd_model_irq(struct upmd_model_dev *d, int vec);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_MODEL_H */
