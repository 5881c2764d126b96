/* NVMe poll-mode driver: controllers over the vfio cdev and the one IOAS, namespaces, I/O queue pairs, commands and completions. */
#ifndef UPMD_NVME_H
#define UPMD_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/common.h>
#include <upmd/memory.h>
#include <upmd/pci.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Model of use (SPDK's): after upmd_eal_init() the PCI bus holds the NVMe
 * functions allowed with -a (class 01:08:02); upmd_nvme_probe() or
 * upmd_nvme_attach() brings controllers up; each lcore allocates its own
 * queue pair and submits and polls on it without locks; completions run
 * the request's callback from upmd_nvme_qpair_process_completions() on
 * that lcore. Buffers are process memory the IOAS maps (memzones, mempool
 * objects, mbufs, upmd_iova_map()'ed memory): the driver turns their
 * addresses into IOVAs itself. upmd_eal_cleanup() detaches whatever is
 * still attached, so no controller is left doing DMA.
 */

#define UPMD_NVME_CLASS 0x010802	/* mass storage, NVM, NVMe */

/* ---- the wire formats (NVMe base specification 1.4) ---------------------- */

/** A submission queue entry: 64 bytes. */
struct upmd_nvme_cmd {
	uint8_t opc;		/* opcode */
	uint8_t fuse_psdt;	/* bits 1:0 fused, 7:6 PSDT (0 PRP, 1 SGL) */
	uint16_t cid;		/* set by the driver */
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	union {
		struct {
			uint64_t prp1, prp2;
		} prp;
		struct {
			uint64_t addr;
			uint32_t len;
			uint8_t rsvd[3];
			uint8_t type;	/* bits 7:4 type, 3:0 subtype */
		} sgl;
	} dptr;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct upmd_nvme_cmd) == 64, "an NVMe command is 64 bytes");
_Static_assert(offsetof(struct upmd_nvme_cmd, dptr) == 24, "DPTR at byte 24");
_Static_assert(offsetof(struct upmd_nvme_cmd, cdw10) == 40, "CDW10 at byte 40");

/** A completion queue entry: 16 bytes. */
struct upmd_nvme_cpl {
	uint32_t cdw0;		/* command specific */
	uint32_t rsvd;
	uint16_t sqhd;		/* SQ head pointer */
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;	/* bit 0 phase, 8:1 SC, 11:9 SCT, 13:12 CRD, 14 More, 15 DNR */
};
_Static_assert(sizeof(struct upmd_nvme_cpl) == 16, "an NVMe completion is 16 bytes");

/* Status field: code type and code. */
#define UPMD_NVME_STATUS_SC(st) (((st) >> 1) & 0xffu)
#define UPMD_NVME_STATUS_SCT(st) (((st) >> 9) & 0x7u)
#define UPMD_NVME_STATUS_DNR(st) (((st) >> 15) & 0x1u)
/** Build a status field (phase 0) from a code type and code. */
#define UPMD_NVME_STATUS(sct, sc) ((uint16_t)((((sct) & 0x7u) << 9) | (((sc) & 0xffu) << 1)))

#define UPMD_NVME_SCT_GENERIC 0x0
#define UPMD_NVME_SCT_COMMAND_SPECIFIC 0x1
#define UPMD_NVME_SCT_MEDIA_ERROR 0x2
#define UPMD_NVME_SCT_PATH 0x3
#define UPMD_NVME_SCT_VENDOR 0x7

/* Generic command status codes the driver itself produces or tests for. */
#define UPMD_NVME_SC_SUCCESS 0x00
#define UPMD_NVME_SC_INVALID_OPCODE 0x01
#define UPMD_NVME_SC_INVALID_FIELD 0x02
#define UPMD_NVME_SC_DATA_TRANSFER_ERROR 0x04
#define UPMD_NVME_SC_ABORTED_BY_REQUEST 0x07
#define UPMD_NVME_SC_ABORTED_SQ_DELETION 0x08
#define UPMD_NVME_SC_INVALID_NAMESPACE 0x0b
#define UPMD_NVME_SC_LBA_OUT_OF_RANGE 0x80

/** True when the completion reports an error (code type or code non-zero). */
static inline bool upmd_nvme_cpl_is_error(const struct upmd_nvme_cpl *cpl)
{
	return ((cpl->status >> 1) & 0x7ffu) != 0;
}

/**
 * A readable name for a completion's status field ("SUCCESS", "LBA OUT
 * OF RANGE", "ABORTED - SQ DELETION", ...); unknown codes get their code
 * type and code in the text. Never NULL. The buffer is static per thread.
 */
const char *upmd_nvme_status_str(uint16_t status);

/* Opcodes. */
#define UPMD_NVME_OPC_FLUSH 0x00
#define UPMD_NVME_OPC_WRITE 0x01
#define UPMD_NVME_OPC_READ 0x02
#define UPMD_NVME_OPC_WRITE_ZEROES 0x08
#define UPMD_NVME_OPC_DSM 0x09

#define UPMD_NVME_ADM_DELETE_SQ 0x00
#define UPMD_NVME_ADM_CREATE_SQ 0x01
#define UPMD_NVME_ADM_GET_LOG_PAGE 0x02
#define UPMD_NVME_ADM_DELETE_CQ 0x04
#define UPMD_NVME_ADM_CREATE_CQ 0x05
#define UPMD_NVME_ADM_IDENTIFY 0x06
#define UPMD_NVME_ADM_ABORT 0x08
#define UPMD_NVME_ADM_SET_FEATURES 0x09
#define UPMD_NVME_ADM_GET_FEATURES 0x0a

#define UPMD_NVME_FEAT_NUM_QUEUES 0x07

/** Identify Controller data (CNS 1), the fields the driver reads; 4096 bytes. */
struct upmd_nvme_ctrlr_data {
	uint16_t vid, ssvid;
	char sn[20];		/* space padded, not NUL terminated */
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts;		/* max transfer 2^mdts minimum pages; 0: no limit */
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r, rtd3e;	/* resume / entry latency, microseconds */
	uint8_t rsvd92[256 - 92];
	uint16_t oacs;
	uint8_t acl, aerl, frmw, lpa, elpe, npss;
	uint8_t rsvd264[512 - 264];
	uint8_t sqes, cqes;	/* 3:0 required, 7:4 maximum entry size, log2 */
	uint16_t maxcmd;
	uint32_t nn;		/* number of namespaces */
	uint16_t oncs;		/* bit 2 DSM, bit 3 Write Zeroes */
	uint16_t fuses;
	uint8_t fna, vwc;
	uint16_t awun, awupf;
	uint8_t nvscc, nwpc;
	uint16_t acwu;
	uint16_t rsvd534;
	uint32_t sgls;		/* bits 1:0 non-zero: SGLs supported */
	uint8_t rsvd540[4096 - 540];
};
_Static_assert(sizeof(struct upmd_nvme_ctrlr_data) == 4096, "Identify Controller is 4096 bytes");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, mdts) == 77, "MDTS at byte 77");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, oacs) == 256, "OACS at byte 256");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, sqes) == 512, "SQES at byte 512");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, nn) == 516, "NN at byte 516");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, oncs) == 520, "ONCS at byte 520");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, vwc) == 525, "VWC at byte 525");
_Static_assert(offsetof(struct upmd_nvme_ctrlr_data, sgls) == 536, "SGLS at byte 536");

#define UPMD_NVME_ONCS_DSM (1u << 2)
#define UPMD_NVME_ONCS_WRITE_ZEROES (1u << 3)

/** An LBA format descriptor. */
struct upmd_nvme_lbaf {
	uint16_t ms;		/* metadata bytes per LBA */
	uint8_t lbads;		/* LBA data size, log2 */
	uint8_t rp;		/* relative performance, bits 1:0 */
};

/** Identify Namespace data (CNS 0); 4096 bytes. */
struct upmd_nvme_ns_data {
	uint64_t nsze, ncap, nuse;
	uint8_t nsfeat, nlbaf, flbas, mc, dpc, dps, nmic, rescap;
	uint8_t fpi, dlfeat;
	uint16_t nawun, nawupf, nacwu, nabsn, nabo, nabspf, noiob;
	uint8_t nvmcap[16];
	uint8_t rsvd64[128 - 64];
	struct upmd_nvme_lbaf lbaf[16];
	uint8_t rsvd192[4096 - 192];
};
_Static_assert(sizeof(struct upmd_nvme_ns_data) == 4096, "Identify Namespace is 4096 bytes");
_Static_assert(offsetof(struct upmd_nvme_ns_data, flbas) == 26, "FLBAS at byte 26");
_Static_assert(offsetof(struct upmd_nvme_ns_data, lbaf) == 128, "LBAF0 at byte 128");

/** A Dataset Management range: 16 bytes. */
struct upmd_nvme_dsm_range {
	uint32_t attributes;	/* context attributes */
	uint32_t length;	/* in logical blocks */
	uint64_t starting_lba;
};
_Static_assert(sizeof(struct upmd_nvme_dsm_range) == 16, "a DSM range is 16 bytes");

/* ---- controllers ------------------------------------------------------------ */

struct upmd_nvme_ctrlr;
struct upmd_nvme_ns;
struct upmd_nvme_qpair;

/** Use SGLs for data when the controller offers them (Identify SGLS);
 * PRPs otherwise, and always for the admin queue. */
#define UPMD_NVME_CTRLR_F_SGL (1u << 0)

/** Options of a controller; fill with upmd_nvme_ctrlr_opts_default(). */
struct upmd_nvme_ctrlr_opts {
	uint32_t size;			/* sizeof(struct upmd_nvme_ctrlr_opts) */
	uint32_t flags;			/* UPMD_NVME_CTRLR_F_* */
	uint32_t num_io_queues;		/* queue pairs to ask for (Set Features); default 16 */
	uint32_t io_queue_size;		/* entries of an I/O queue by default; 256, at most CAP.MQES + 1 */
	uint32_t admin_queue_size;	/* entries of the admin queues; default 32 */
	uint32_t admin_timeout_ms;	/* an admin command not done by then resets the controller; default 5000 */
	uint32_t io_timeout_ms;		/* an I/O not done by then is aborted, then the controller reset; default 10000, 0: none */
	int32_t socket_id;		/* node of the queues' memory; UPMD_SOCKET_ID_ANY: the device's */
};

void upmd_nvme_ctrlr_opts_default(struct upmd_nvme_ctrlr_opts *opts);

/**
 * Bring up the controller at @bdf (any accepted spelling; a device the PCI
 * bus opened, e.g. given with -a): disable, admin queues, enable within
 * CAP.TO, Identify controller and the active namespaces, Set Features
 * Number of Queues. @opts NULL: defaults.
 * @return 0 and *out; -ENODEV (no such device, or not an NVMe function: the
 *   log says what it is), -EBUSY (already attached), -EINVAL (bad options,
 *   logged), -ETIMEDOUT (the controller did not become ready, or an admin
 *   command did not complete: CAP.TO and the command are in the log), -EIO
 *   (it reported a fatal status or an admin command failed: the status is
 *   in the log), -ENXIO (a reset during bring-up failed), -ENOMEM. On
 *   failure nothing stays allocated and the
 *   controller is left disabled with bus mastering off.
 */
int upmd_nvme_attach(const char *bdf, const struct upmd_nvme_ctrlr_opts *opts, struct upmd_nvme_ctrlr **out);

/** Called per NVMe function not yet attached: return true to attach it, after adjusting *opts. */
typedef bool (*upmd_nvme_probe_cb)(void *ctx, const struct upmd_pci_device *dev, struct upmd_nvme_ctrlr_opts *opts);
/** Called per controller attached by upmd_nvme_probe(). */
typedef void (*upmd_nvme_attach_cb)(void *ctx, const struct upmd_pci_device *dev, struct upmd_nvme_ctrlr *ctrlr);

/**
 * Attach every NVMe function of the PCI bus that is not attached yet and
 * that @probe_cb accepts (NULL: all, with default options), calling
 * @attach_cb (may be NULL) for each.
 * @return the number attached, or the first error of upmd_nvme_attach()
 *   (those attached before it stay attached).
 */
int upmd_nvme_probe(upmd_nvme_probe_cb probe_cb, upmd_nvme_attach_cb attach_cb, void *ctx);

/**
 * Detach: frees its queue pairs (requests still outstanding complete with
 * ABORTED - SQ DELETION first), shuts the controller down (CC.SHN, up to
 * CAP.TO), disables it and turns bus mastering off. No queue pair of it
 * may be in use by another thread. @return 0, or -EINVAL.
 */
int upmd_nvme_detach(struct upmd_nvme_ctrlr *ctrlr);

/** Attached controllers, in attach order. */
unsigned upmd_nvme_ctrlr_count(void);
struct upmd_nvme_ctrlr *upmd_nvme_ctrlr_get(unsigned i);

const struct upmd_nvme_ctrlr_data *upmd_nvme_ctrlr_get_data(const struct upmd_nvme_ctrlr *ctrlr);
struct upmd_pci_device *upmd_nvme_ctrlr_get_pci(const struct upmd_nvme_ctrlr *ctrlr);
/** The bytes one command may move: MDTS, and the driver's own limit of 1 MiB. */
uint32_t upmd_nvme_ctrlr_max_xfer_size(const struct upmd_nvme_ctrlr *ctrlr);
/** I/O queue pairs the controller granted (Set Features Number of Queues). */
uint32_t upmd_nvme_ctrlr_max_io_qpairs(const struct upmd_nvme_ctrlr *ctrlr);
/** Largest I/O queue (CAP.MQES + 1). */
uint32_t upmd_nvme_ctrlr_max_queue_size(const struct upmd_nvme_ctrlr *ctrlr);
/** True when SGLs are in use for data (asked for and offered). */
bool upmd_nvme_ctrlr_uses_sgl(const struct upmd_nvme_ctrlr *ctrlr);
/** True once the controller failed and a reset did not bring it back: every call then fails with -ENXIO. */
bool upmd_nvme_ctrlr_is_failed(const struct upmd_nvme_ctrlr *ctrlr);
/** Resets done so far (by the application or by recovery). */
uint64_t upmd_nvme_ctrlr_reset_count(const struct upmd_nvme_ctrlr *ctrlr);

/**
 * Reset the controller (disable, enable, Number of Queues again) and
 * disconnect its I/O queue pairs: each one's owner then fails what it had
 * outstanding with ABORTED - SQ DELETION and re-creates its queues in its
 * next upmd_nvme_qpair_process_completions(). Called by the driver itself
 * on a fatal status (CSTS.CFS) or a timed-out command. Thread-safe.
 * @return 0, -ENXIO (it did not come back: the controller is failed), -EINVAL.
 */
int upmd_nvme_ctrlr_reset(struct upmd_nvme_ctrlr *ctrlr);

/* ---- namespaces -------------------------------------------------------------- */

/** Namespace ids run from 1 to this (Identify NN); not all need be active. */
uint32_t upmd_nvme_ctrlr_get_num_ns(const struct upmd_nvme_ctrlr *ctrlr);
/** The first active namespace id, or 0. */
uint32_t upmd_nvme_ctrlr_first_active_ns(const struct upmd_nvme_ctrlr *ctrlr);
/** The next active namespace id after @prev, or 0. */
uint32_t upmd_nvme_ctrlr_next_active_ns(const struct upmd_nvme_ctrlr *ctrlr, uint32_t prev);
/** An active namespace, or NULL. */
struct upmd_nvme_ns *upmd_nvme_ctrlr_get_ns(struct upmd_nvme_ctrlr *ctrlr, uint32_t nsid);

uint32_t upmd_nvme_ns_get_id(const struct upmd_nvme_ns *ns);
struct upmd_nvme_ctrlr *upmd_nvme_ns_get_ctrlr(const struct upmd_nvme_ns *ns);
/** Logical blocks (NSZE). */
uint64_t upmd_nvme_ns_get_num_sectors(const struct upmd_nvme_ns *ns);
/** Bytes per logical block of the formatted LBA format (512, 4096, ...). */
uint32_t upmd_nvme_ns_get_sector_size(const struct upmd_nvme_ns *ns);
/** Bytes: sectors times sector size. */
uint64_t upmd_nvme_ns_get_size(const struct upmd_nvme_ns *ns);
const struct upmd_nvme_ns_data *upmd_nvme_ns_get_data(const struct upmd_nvme_ns *ns);

/* ---- I/O queue pairs ---------------------------------------------------------- */

struct upmd_nvme_io_qpair_opts {
	uint32_t size;		/* sizeof(struct upmd_nvme_io_qpair_opts) */
	uint32_t qsize;		/* entries (2 .. max_queue_size); 0: the controller's io_queue_size */
};

/**
 * Create an I/O completion and submission queue pair (the next free queue
 * id), with qsize - 1 request trackers from a mempool of its own. Use it
 * from one thread at a time (one per lcore). @opts NULL: defaults.
 * @return 0 and *out; -ENOSPC (every granted queue is in use), -EINVAL
 *   (qsize out of range: the log gives the range), -ENOMEM, -ENXIO
 *   (controller failed), -EIO/-ETIMEDOUT (the Create commands failed).
 */
int upmd_nvme_ctrlr_alloc_io_qpair(struct upmd_nvme_ctrlr *ctrlr, const struct upmd_nvme_io_qpair_opts *opts,
				   struct upmd_nvme_qpair **out);

/**
 * Delete the queues and free the pair; requests still outstanding complete
 * with ABORTED - SQ DELETION first (their callbacks run). @return 0, -EINVAL.
 */
int upmd_nvme_ctrlr_free_io_qpair(struct upmd_nvme_qpair *qp);

/** Called once per request, from upmd_nvme_qpair_process_completions()
 * (or when a reset, a queue pair's deletion or detach fails the request).
 * The request's tracker is free again when it runs, so a callback may
 * submit the next request at full depth. @cpl is valid during the call. */
typedef void (*upmd_nvme_cmd_cb)(void *arg, const struct upmd_nvme_cpl *cpl);

/* io_flags of reads and writes */
#define UPMD_NVME_IO_FLAGS_FUA (1u << 30)		/* force unit access */
#define UPMD_NVME_IO_FLAGS_LIMITED_RETRY (1u << 31)

/*
 * Submission calls queue the command; its doorbell is written once for
 * everything queued since, by the next upmd_nvme_qpair_process_completions()
 * (or upmd_nvme_qpair_flush()). They return 0; -EAGAIN when all trackers
 * are in use, or the controller was reset and this queue pair is not yet
 * re-created (process completions, then retry); -EINVAL (no blocks, a
 * range past the namespace's end, more than max_xfer_size, a buffer not
 * aligned to 4 bytes; @buf NULL); -EFAULT (@buf is not memory the IOAS maps);
 * -ENXIO (the controller failed). Nothing is queued on failure.
 */
int upmd_nvme_ns_cmd_read(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, void *buf, uint64_t lba,
			  uint32_t lba_count, upmd_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags);
int upmd_nvme_ns_cmd_write(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, const void *buf, uint64_t lba,
			   uint32_t lba_count, upmd_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags);
int upmd_nvme_ns_cmd_flush(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, upmd_nvme_cmd_cb cb, void *cb_arg);
/** -ENOTSUP when the controller lacks Write Zeroes (ONCS). */
int upmd_nvme_ns_cmd_write_zeroes(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, uint64_t lba,
				  uint32_t lba_count, upmd_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags);
/**
 * Deallocate @nranges (1..128) ranges (Dataset Management, AD). @ranges is
 * copied into the request, so it may live on the stack. -ENOTSUP when the
 * controller lacks DSM.
 */
int upmd_nvme_ns_cmd_deallocate(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp,
				const struct upmd_nvme_dsm_range *ranges, uint16_t nranges, upmd_nvme_cmd_cb cb,
				void *cb_arg);

/**
 * Submit @cmd as given (opcode, nsid, cdw2..15, fuse bits) with the data
 * at @buf (@len bytes, 0: none): the driver fills in the CID and the data
 * pointer (PRPs or an SGL). Same returns as above.
 */
int upmd_nvme_qpair_cmd_raw(struct upmd_nvme_qpair *qp, const struct upmd_nvme_cmd *cmd, void *buf, uint32_t len,
			    upmd_nvme_cmd_cb cb, void *cb_arg);
/** The same with the data at IOVAs [@iova, @iova + @len) the caller vouches for (no translation). */
int upmd_nvme_qpair_cmd_raw_iova(struct upmd_nvme_qpair *qp, const struct upmd_nvme_cmd *cmd, uint64_t iova,
				 uint32_t len, upmd_nvme_cmd_cb cb, void *cb_arg);

/** Write the SQ doorbell for what was queued since the last one. */
void upmd_nvme_qpair_flush(struct upmd_nvme_qpair *qp);

/**
 * Write the SQ doorbell if commands were queued, then reap up to
 * @max_completions (0: up to the queue size) completions, running each
 * request's callback (which may submit more), and write the CQ doorbell
 * once. Also looks for timed-out requests (abort, then reset) and, when
 * the controller was reset, fails the requests outstanding here with
 * ABORTED - SQ DELETION and re-creates the queues.
 * @return completions reaped (>= 0), or -ENXIO (the controller failed; all
 *   requests that were outstanding have completed with an error).
 */
int upmd_nvme_qpair_process_completions(struct upmd_nvme_qpair *qp, uint32_t max_completions);

/** Requests submitted and not yet completed. */
uint32_t upmd_nvme_qpair_outstanding(const struct upmd_nvme_qpair *qp);
/** Queue id (1..) and entries. */
uint16_t upmd_nvme_qpair_get_id(const struct upmd_nvme_qpair *qp);
uint32_t upmd_nvme_qpair_get_size(const struct upmd_nvme_qpair *qp);

/* ---- admin ----------------------------------------------------------------------- */

/**
 * Submit an admin command (CID and data pointer filled in as for raw I/O;
 * @buf must be IOAS-mapped; PRPs only). Thread-safe. Its callback runs
 * from upmd_nvme_ctrlr_process_admin_completions(). Same returns as I/O.
 */
int upmd_nvme_ctrlr_cmd_admin_raw(struct upmd_nvme_ctrlr *ctrlr, const struct upmd_nvme_cmd *cmd, void *buf,
				  uint32_t len, upmd_nvme_cmd_cb cb, void *cb_arg);
/** Reap admin completions. Thread-safe. @return how many, or -ENXIO.
 * Admin callbacks run with the controller's admin lock held, from
 * whichever thread reaps (this call, a waiting upmd_nvme_ctrlr_admin_sync(),
 * a queue pair's periodic health check, a reset): they must not submit
 * admin commands themselves. */
int upmd_nvme_ctrlr_process_admin_completions(struct upmd_nvme_ctrlr *ctrlr);

/**
 * Run an admin command and wait for it (up to admin_timeout_ms; a timeout
 * resets the controller). @cpl (may be NULL) gets the completion.
 * @return 0 (completed, whatever its status: look at @cpl), -ETIMEDOUT,
 *   -EIO (the controller reported a fatal status meanwhile: it is reset),
 *   -ENXIO, or a submission error.
 */
int upmd_nvme_ctrlr_admin_sync(struct upmd_nvme_ctrlr *ctrlr, const struct upmd_nvme_cmd *cmd, void *buf,
			       uint32_t len, struct upmd_nvme_cpl *cpl);

/* ---- data pointers (exposed for tests and for drivers of NVMe-like devices) ---- */

/** How the driver translates a buffer: one IOVA per 4 KiB page it touches. */
typedef uint64_t (*upmd_nvme_xlate_fn)(const void *ctx, uint64_t off);

/**
 * Build PRP1/PRP2 (and the PRP list at @list, whose IOVA is @list_iova,
 * @list_max entries, all in one 4 KiB page) for @len bytes starting
 * @first_off bytes into the page @xlate gives for offset 0; @xlate(ctx, k)
 * returns the IOVA of the k-th 4 KiB page of the buffer (page aligned).
 * @return the number of list entries used (0: none needed), or -EINVAL
 *   (@len 0, a @first_off not a multiple of 4, more entries than @list_max, an IOVA not
 *   page aligned or UPMD_BAD_IOVA from @xlate: -EFAULT).
 */
int upmd_nvme_build_prps(upmd_nvme_xlate_fn xlate, const void *ctx, uint32_t first_off, uint32_t len,
			 uint64_t *prp1, uint64_t *prp2, uint64_t *list, uint64_t list_iova, unsigned list_max);

/**
 * Build an SGL for the same buffer description: one Data Block descriptor
 * in @dptr when the IOVAs are contiguous, else a Last Segment descriptor
 * in @dptr pointing at @list (@list_iova, up to @list_max 16-byte
 * descriptors) holding one Data Block per IOVA-contiguous piece.
 * @return descriptors in @list (0: none), -EINVAL, -EFAULT as above.
 */
int upmd_nvme_build_sgl(upmd_nvme_xlate_fn xlate, const void *ctx, uint32_t first_off, uint32_t len,
			struct upmd_nvme_cmd *cmd, void *list, uint64_t list_iova, unsigned list_max);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_NVME_H */
