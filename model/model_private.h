/* Interfaces between the model's own files: the machine, its objects, the device-model ops table and the helpers device models use. */
#ifndef UPMD_MODEL_PRIVATE_H
#define UPMD_MODEL_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <upmd/log.h>
#include <upmd/model.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#define MODEL_LOG "model"
#define MODEL_MAX_DEVS 32
#define MODEL_PAGE 4096ULL
#define MODEL_NUM_BARS 6
#define MODEL_FIRST_GROUP 10
#define MODEL_FAULT_RING 256

/* x86 interrupt window: the intel-iommu reserved region (IOMMU_RESV_MSI). */
#define MODEL_MSI_FIRST 0xfee00000ULL
#define MODEL_MSI_LAST 0xfeefffffULL

/*
 * uAPI bits the project's headers do not carry (they are not used outside
 * the model). Values are the kernel's.
 */
#ifndef VFIO_DEVICE_DETACH_PASID
#define VFIO_DEVICE_DETACH_PASID (1 << 0)
#endif
#ifndef VFIO_DMA_MAP_FLAG_VADDR
#define VFIO_DMA_MAP_FLAG_VADDR (1 << 2)
#endif
#define MODEL_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1 << 0)
#define MODEL_DMA_UNMAP_FLAG_ALL (1 << 1)
#define MODEL_DMA_UNMAP_FLAG_VADDR (1 << 2)
#define MODEL_IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)
#define MODEL_HW_INFO_TYPE_INTEL_VTD 1
#define MODEL_VFIO_UNMAP_ALL 9		/* VFIO_CHECK_EXTENSION argument */
#define MODEL_VFIO_UPDATE_VADDR 10
#define MODEL_VFIO_DMA_CC_IOMMU 4
#define MODEL_TYPE1_CAP_MIGRATION 2
#define MODEL_TYPE1_CAP_DMA_AVAIL 3
#define MODEL_TYPE1_DMA_ENTRY_LIMIT 65535	/* vfio_iommu_type1 dma_entry_limit default */

/* PCI config space layout the model builds. */
#define PCI_CFG_VENDOR 0x00
#define PCI_CFG_DEVICE 0x02
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_REVISION 0x08
#define PCI_CFG_CLASS 0x09
#define PCI_CFG_CACHE_LINE 0x0c
#define PCI_CFG_LATENCY 0x0d
#define PCI_CFG_HEADER 0x0e
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_SUBSYS_ID 0x2e
#define PCI_CFG_ROM 0x30
#define PCI_CFG_CAP_PTR 0x34
#define PCI_CFG_INT_LINE 0x3c
#define PCI_CFG_INT_PIN 0x3d
#define PCI_CMD_IO 0x1
#define PCI_CMD_MEMORY 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_EXP 0x10
#define PCI_CAP_ID_MSIX 0x11

/* ---- device models ------------------------------------------------------- */

enum model_irq_kind {
	MODEL_IRQ_INTX_ONLY,
	MODEL_IRQ_MSI,		/* MSI capability with irq_vectors (power of two, <= 32) */
	MODEL_IRQ_MSIX,		/* MSI-X capability with irq_vectors entries */
};

/*
 * What a device model may add to the config space the framework builds
 * (model_dev_config_init), through the ops' config hook: capabilities of
 * its own (virtio's vendor capabilities), the vector count of this
 * instance (virtio-net's depends on its queue pairs) and where its MSI-X
 * table and PBA live. Devices without the hook get the framework's layout.
 */
#define MODEL_MAX_DEV_CAPS 8
#define MODEL_DEV_CAP_MAX 32
struct model_dev_cap {
	uint8_t id;				/* PCI_CAP_ID_* */
	uint8_t len;				/* bytes, id and next included: 4..MODEL_DEV_CAP_MAX */
	uint8_t body[MODEL_DEV_CAP_MAX - 2];	/* the bytes from offset 2 on */
};
struct model_dev_config {
	struct model_dev_cap caps[MODEL_MAX_DEV_CAPS];
	unsigned ncaps;
	uint16_t irq_vectors;		/* preset to ops->irq_vectors */
	uint32_t msix_table, msix_pba;	/* "offset | BIR" as in the MSI-X capability; preset 0 */
};

#define MODEL_BAR_64 0x1	/* 64-bit memory BAR (takes the next BAR slot) */
#define MODEL_BAR_PREFETCH 0x2
#define MODEL_BAR_IO 0x4	/* I/O port BAR: not mmappable */

struct upmd_model_dev_ops {
	const char *type;		/* name in specs: "edu" */
	uint16_t vendor_id, device_id;
	uint16_t subsystem_vendor_id, subsystem_device_id;
	uint32_t class_code;		/* 24 bits */
	uint8_t revision;
	bool pcie;			/* PCI Express: 4 KiB config space, ERR irq index */
	bool reset_works;		/* has FLR or PM reset (QEMU's edu has neither) */
	uint8_t pasid_bits;		/* PASID capability width, 0: none (edu: none) */
	uint64_t bar_size[MODEL_NUM_BARS];	/* power of two, 0: absent */
	uint8_t bar_flags[MODEL_NUM_BARS];	/* MODEL_BAR_* */
	/*
	 * BARs whose mmap traps every access into mmio_read/mmio_write
	 * (register files with side effects: edu's liveness register must
	 * read back ~v right after the write). Other BARs are plain shared
	 * memory the device polls.
	 */
	uint32_t trap_bars;
	/*
	 * Offsets [trap_keep_start, trap_keep_end) of trapped BARs where a
	 * store is the register's new value: it stays in BAR memory as
	 * written (mmio_write is still called) instead of the old bytes being
	 * put back for mmio_write to decide. For doorbells a device thread
	 * reads from memory: nothing else sees them go back and forth, and a
	 * store another thread makes while a page is open for one step is
	 * not lost. 0, 0: none.
	 */
	uint64_t trap_keep_start, trap_keep_end;
	enum model_irq_kind irq_kind;
	uint16_t irq_vectors;
	uint8_t intx_pin;		/* 0: none, 1: INTA# */
	size_t priv_size;		/* zeroed private state, upmd_model_dev_priv() */

	/*
	 * Optional, while config space is built (after the args, before
	 * init): fill @cfg. Its capabilities are placed from 0x40 in order,
	 * ahead of the framework's own (PCI Express, MSI, MSI-X), which is
	 * how QEMU lays out a virtio function.
	 */
	void (*config)(struct upmd_model_dev *d, struct model_dev_config *cfg);
	/* Device-specific "key=value" argument; -EINVAL logs and rejects. */
	int (*arg)(struct upmd_model_dev *d, const char *key, const char *val);
	/* Called once after the args, BAR memory mapped; 0 or -errno. */
	int (*init)(struct upmd_model_dev *d);
	void (*fini)(struct upmd_model_dev *d);
	/* Function reset (VFIO_DEVICE_RESET, open/close when reset_works). */
	void (*reset)(struct upmd_model_dev *d);
	/* From the model's device thread; non-zero if it did work. */
	int (*poll)(struct upmd_model_dev *d);
	/* Register access of 1, 2, 4 or 8 bytes, naturally aligned. */
	uint64_t (*mmio_read)(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size);
	void (*mmio_write)(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size,
			   uint64_t val);
};

void model_register_dev_ops(const struct upmd_model_dev_ops *ops);
const struct upmd_model_dev_ops *model_find_dev_ops(const char *type);
/* "a, b" list of registered types, for messages. */
void model_dev_types(char *buf, size_t len);

#define UPMD_MODEL_REGISTER_DEV(ops)                                           \
	__attribute__((constructor)) static void upmd_model_reg_##ops(void)    \
	{ model_register_dev_ops(&(ops)); }

/* Little-endian fields of device structures (descriptors, queue entries,
 * configuration space), byte by byte: any alignment, any host order. */
static inline uint16_t ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t ld32(const uint8_t *p)
{
	return ld16(p) | ((uint32_t)ld16(p + 2) << 16);
}

static inline uint64_t ld64(const uint8_t *p)
{
	return ld32(p) | ((uint64_t)ld32(p + 4) << 32);
}

static inline void st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	st16(p, (uint16_t)v);
	st16(p + 2, (uint16_t)(v >> 16));
}

static inline void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

/* Helpers for device models. */
void *upmd_model_dev_priv(struct upmd_model_dev *d);
/* The model's own (never trapped) mapping of a BAR's memory. */
uint8_t *upmd_model_dev_bar(struct upmd_model_dev *d, unsigned bar);
const char *upmd_model_dev_name(const struct upmd_model_dev *d);
/* Wake the device thread now (a doorbell was written). */
void upmd_model_dev_kick(struct upmd_model_dev *d);
/* The interrupt mode the driver enabled through VFIO_DEVICE_SET_IRQS. */
bool upmd_model_dev_msi_enabled(struct upmd_model_dev *d);
/* Drive the INTx line (level-triggered, automasked like vfio-pci). */
void upmd_model_dev_intx(struct upmd_model_dev *d, bool level);
/* Bus Master Enable in the command register: DMA and MSI need it. */
bool upmd_model_dev_bus_master(struct upmd_model_dev *d);

/* ---- objects --------------------------------------------------------------- */

struct model_pages;
struct model_ioas;
struct model_hwpt;
struct model_idev;
struct model_ictx;
struct model_container;
struct model_devfile;
struct model_sysfile;

/* An iommufd object (id in its context's table). */
enum model_obj_type { MOBJ_IOAS = 1, MOBJ_DEVICE, MOBJ_HWPT };
struct model_obj {
	enum model_obj_type type;
	uint32_t id;
	unsigned users;		/* references besides the table's (EBUSY on destroy) */
};

/* The pinnable memory behind one or more areas (iopt_pages). */
enum { ACCT_NONE, ACCT_USER, ACCT_MM, ACCT_TYPE1 };
struct model_pages {
	unsigned refs;		/* areas using it */
	unsigned pin_users;	/* of those, areas in an IOAS that has a domain */
	uintptr_t base;		/* page-aligned start: user VA, or our file mapping */
	uint64_t npages;
	bool writable;
	bool is_file;		/* base is the model's own MAP_SHARED mapping */
	int acct;
};

struct model_area {
	uint64_t iova, last;	/* inclusive */
	uint64_t start_byte;	/* offset of iova in pages (from pages->base) */
	struct model_pages *pages;
	uint32_t prot;		/* IOMMU_IOAS_MAP_READABLE | WRITEABLE */
};

struct model_range {
	uint64_t start, last;
};

struct model_ioas {
	struct model_obj obj;
	struct model_ictx *ictx;
	/* Taken for writing by every change of the areas, for reading by DMA:
	 * an unmap returns only after in-flight DMA through it finished. */
	pthread_rwlock_t rw;
	struct model_area *areas;	/* sorted by iova, disjoint */
	unsigned nareas, cap;
	struct model_range *allowed;
	unsigned nallowed;
	bool disable_large_pages;
	unsigned ndomains;		/* HWPTs on this IOAS */
};

struct model_hwpt {
	struct model_obj obj;
	struct model_ioas *ioas;
	unsigned ndevs;			/* RID and PASID attachments */
};

#define MODEL_MAX_PASIDS 16
struct model_pasid_att {
	uint32_t pasid;
	struct model_hwpt *hwpt;
};

struct model_idev {
	struct model_obj obj;
	struct model_ictx *ictx;
	struct upmd_model_dev *dev;
	struct model_hwpt *hwpt;	/* RID attachment, or NULL */
	struct model_pasid_att pasid[MODEL_MAX_PASIDS];
	unsigned npasid;
};

/* An open /dev/iommu (iommufd_ctx). */
struct model_ictx {
	struct upmd_model *m;
	unsigned refs;			/* its fd + bound devices */
	bool fd_open;
	int account_mode;		/* ACCT_USER or ACCT_MM */
	struct model_obj **objs;	/* index = id; [0] unused */
	uint32_t nobjs;
	struct model_ictx *next;
};

struct model_t1dma {
	uint64_t iova, size, vaddr;
	uint32_t prot;			/* VFIO_DMA_MAP_FLAG_READ | WRITE */
	uint64_t npages;
	bool pinned;
	bool lock_cap;			/* not accounted (CAP_IPC_LOCK) */
};

/* An open /dev/vfio/vfio (vfio_container + vfio_iommu). */
struct model_container {
	struct upmd_model *m;
	unsigned refs;			/* its fd + attached groups */
	bool fd_open;
	bool iommu_set;
	bool v2;
	unsigned ngroups;
	pthread_rwlock_t rw;		/* as model_ioas.rw */
	struct model_t1dma *dmas;	/* sorted by iova */
	unsigned ndmas, cap;
	struct model_container *next;
};

/* An open device file: a cdev fd, or one from VFIO_GROUP_GET_DEVICE_FD. */
struct model_devfile {
	struct upmd_model_dev *dev;
	bool via_group;
	bool access;			/* bound (cdev) or opened through the group */
	struct model_ictx *ictx;	/* cdev binding */
	struct model_idev *idev;
	unsigned refs;			/* fd + BAR mappings */
	bool fd_open;
	off_t pos;			/* read/write file position */
};

/* BAR mappings handed to the process (mmap through the table). */
struct model_barmap {
	uintptr_t start, end;
	struct upmd_model_dev *dev;
	struct model_devfile *df;
	unsigned bar;
	uint64_t bar_off;		/* BAR offset of start */
	int prot;			/* what the caller asked for */
	bool trapped;
	int trap_slot;
	struct model_barmap *next;
};

enum model_irq_type { IRQT_NONE = -1 };	/* else a VFIO_PCI_*_IRQ_INDEX */

struct upmd_model_dev {
	struct upmd_model *m;
	const struct upmd_model_dev_ops *ops;
	unsigned index;
	char bdf[16];
	int group;
	int cdev;			/* vfioN, -1 when not bound to vfio-pci or no cdev */
	char driver[32];		/* "" when unbound */
	char native_driver[32];		/* the driver its id table matches, "" none */
	char *driver_override;		/* NULL: "(null)" */
	int numa_node;
	bool reset_works;
	uint8_t pasid_bits;		/* 0: no PASID support (attach with a PASID: EINVAL) */
	void *priv;

	/* Device state (config space, registers): taken by mmio hooks,
	 * config access and the device thread. Never held while taking the
	 * model lock. */
	pthread_mutex_t lock;
	uint8_t cfg[4096];
	uint8_t wmask[4096];
	uint32_t cfg_size;
	uint8_t msi_cap, msix_cap;
	uint32_t bar_reg[MODEL_NUM_BARS];	/* virtual BAR registers (vfio's vconfig) */
	uint32_t bar_reg_init[MODEL_NUM_BARS];
	int bar_fd[MODEL_NUM_BARS];
	uint8_t *bar_map[MODEL_NUM_BARS];
	uint64_t bar_len[MODEL_NUM_BARS];	/* mapping length (page-rounded) */

	/* interrupts, under irq_lock (signalled from the device thread) */
	pthread_mutex_t irq_lock;
	int irq_type;			/* IRQT_NONE or VFIO_PCI_{INTX,MSI,MSIX}_IRQ_INDEX */
	int *trig;			/* dup'd eventfds, -1 unset */
	unsigned ntrig;
	bool intx_masked, intx_level;
	int req_fd;

	/* vfio state, under the model lock */
	unsigned open_count;		/* device files with access */
	unsigned files;			/* device files of any kind (cdev fds, group ones) */
	bool group_open;		/* the group file is open (or held by device files) */
	unsigned group_refs;		/* group fd + device files from it */
	struct model_container *container;	/* the group's container */
	struct model_devfile *cdev_bound;	/* the cdev file bound to an iommufd */

	/* DMA translation: readers are DMAs, writers change attachments. */
	pthread_rwlock_t attach_rw;
	struct model_idev *idev;	/* iommufd binding */
};

struct upmd_model {
	pthread_mutex_t lock;		/* control plane: every table op */
	uint32_t flags;
	unsigned aw_bits;
	struct upmd_model_dev *devs[MODEL_MAX_DEVS];
	unsigned ndevs;

	/* fd -> object */
	struct model_file **fds;
	int nfds;
	unsigned open_fds;

	struct model_ictx *ictxs;
	struct model_container *containers;
	struct model_barmap *barmaps;
	unsigned nbarmaps;

	/* Pinned pages, and those charged per accounting mode. */
	uint64_t pinned_pages;
	uint64_t charged[4];

	atomic_uint_fast64_t dma_bytes;
	atomic_uint faults;
	pthread_mutex_t fault_lock;
	struct upmd_model_fault ring[MODEL_FAULT_RING];
	unsigned ring_head, ring_count;

	/* the device thread */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t thr_lock;
	pthread_cond_t thr_cond;
	bool stop;
	unsigned kicks;
};

/* What a model fd is. */
enum model_file_kind { MF_IOMMUFD = 1, MF_CONTAINER, MF_GROUP, MF_DEVICE, MF_SYSFS, MF_DIR };
struct model_file {
	enum model_file_kind kind;
	int fd;
	union {
		struct model_ictx *ictx;
		struct model_container *c;
		struct upmd_model_dev *dev;	/* MF_GROUP */
		struct model_devfile *df;
		struct model_sysfile *sf;
	} u;
};

/* ---- across the model's files (model lock held unless said) ------------- */

/* model.c */
struct model_file *model_file_get(struct upmd_model *m, int fd);
int model_fd_new(struct upmd_model *m, enum model_file_kind kind, const char *name, void *obj);
struct upmd_model_dev *model_dev_by_bdf(struct upmd_model *m, const char *bdf);
struct upmd_model_dev *model_dev_by_group(struct upmd_model *m, int group);
struct upmd_model_dev *model_dev_by_cdev(struct upmd_model *m, int cdev);
void model_record_fault(struct upmd_model_dev *d, uint64_t iova, uint32_t pasid, bool write,
			enum upmd_model_fault_reason why);
bool model_has_cap(struct upmd_model *m, int cap);
int model_check_eventfd(int fd);

/* model_iommufd.c */
struct model_ictx *model_ictx_new(struct upmd_model *m);
void model_ictx_put(struct model_ictx *ictx);
int model_iommufd_ioctl(struct model_ictx *ictx, unsigned long req, void *arg);
int model_idev_bind(struct model_ictx *ictx, struct upmd_model_dev *d, struct model_idev **out);
void model_idev_unbind(struct model_idev *idev);
int model_idev_attach(struct model_idev *idev, uint32_t pasid, bool has_pasid, uint32_t *pt_id);
void model_idev_detach(struct model_idev *idev, uint32_t pasid, bool has_pasid);
unsigned model_ictx_objects(struct upmd_model *m);
/* Append every IOAS area to @out (up to @max), counting all; m->lock held. */
unsigned model_ictx_mappings(struct upmd_model *m, struct upmd_model_mapping *out, unsigned max, unsigned n);
/* The same for type1 containers. */
unsigned model_container_mappings(struct upmd_model *m, struct upmd_model_mapping *out, unsigned max, unsigned n);
/* Translate and copy through @ioas (attach_rw held for reading). */
int model_ioas_dma(struct model_ioas *ioas, struct upmd_model_dev *d, uint32_t pasid,
		   uint64_t iova, void *buf, size_t len, bool write);
/* Pin checks shared with type1: EFAULT if [va, va+len) is not mapped with
 * the needed access, ENOMEM over RLIMIT_MEMLOCK. */
int model_pin_check(struct upmd_model *m, uintptr_t va, uint64_t len, bool write);
int model_charge(struct upmd_model *m, int acct, uint64_t npages);
void model_uncharge(struct upmd_model *m, int acct, uint64_t npages);
/* Copy between @buf and [@va, +@len) of this process, never crashing. */
int model_copy(void *dst, const void *src, size_t len, bool to_user);
/* memcpy that returns -EFAULT instead of crashing on an unmapped page
 * (-ENOTSUP where the model cannot trap faults). */
int model_guarded_copy(void *dst, const void *src, size_t len);

/* model_vfio.c */
int model_container_ioctl(struct model_container *c, unsigned long req, void *arg);
void model_container_put(struct model_container *c);
int model_group_ioctl(struct upmd_model_dev *d, unsigned long req, void *arg);
int model_group_open(struct upmd_model_dev *d);
void model_group_put(struct upmd_model_dev *d);
struct model_devfile *model_devfile_new(struct upmd_model_dev *d, bool via_group);
void model_devfile_put(struct model_devfile *df);
int model_device_ioctl(struct model_devfile *df, unsigned long req, void *arg);
ssize_t model_device_rw(struct model_devfile *df, void *buf, size_t n, off_t off, bool write);
int model_device_mmap(struct model_devfile *df, void *addr, size_t len, int prot, int flags,
		      off_t off, void **out);
int model_munmap(struct upmd_model *m, void *addr, size_t len, bool *handled);
void model_dev_config_init(struct upmd_model_dev *d);
void model_dev_disable(struct upmd_model_dev *d);
void model_dev_irq_clear(struct upmd_model_dev *d);
int model_container_dma(struct model_container *c, struct upmd_model_dev *d, uint64_t iova,
			void *buf, size_t len, bool write);

/* model_sysfs.c */
bool model_owns_path(struct upmd_model *m, const char *path);
int model_path_open(struct upmd_model *m, const char *path, int flags);
ssize_t model_sysfile_read(struct model_sysfile *sf, void *buf, size_t n, off_t off, bool use_pos);
ssize_t model_sysfile_write(struct model_sysfile *sf, const void *buf, size_t n);
void model_sysfile_free(struct model_sysfile *sf);
ssize_t model_readlink(struct upmd_model *m, const char *path, char *buf, size_t len);
int model_listdir(struct upmd_model *m, const char *path, int (*cb)(const char *, void *),
		  void *arg);
int model_access(struct upmd_model *m, const char *path, int mode);
int model_bind_vfio(struct upmd_model_dev *d);

/* model_trap.c: trapped BAR mappings (any thread, no model lock). */
int model_trap_add(struct model_barmap *bm);
void model_trap_del(struct model_barmap *bm);
bool model_trap_supported(void);

#endif /* UPMD_MODEL_PRIVATE_H */
