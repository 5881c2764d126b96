/* DSA dmadev PMD, private: the per-WQ queue, descriptor and completion-record encoding, batching and the shared-WQ retry loop. */
#ifndef UPMD_DSA_INTERNAL_H
#define UPMD_DSA_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <upmd/common.h>
#include <upmd/dmadev.h>
#include <upmd/dsa.h>

/*
 * Everything here is inline and free of device access so that the unit
 * test (tests/unit/test_dsa.c) can check the encoding against the spec's
 * field offsets and drive the batching and retry logic with a fake portal.
 * The hardware facts (layouts, opcodes, flags, statuses, registers) come
 * from <upmd/dsa.h>; this file only decides how the PMD uses them.
 */

#define DSA_LOG "dma_dsa"
#define DSA_DRIVER_NAME "dma_dsa"
#define DSA_IDXD_DRIVER_NAME "dma_idxd"

#define DSA_MIN_DESC 32
#define DSA_MAX_DESC 4096		/* per WQ; the 16-bit ring counters need < 65536 */
#define DSA_MAX_WQS 8			/* WQs the PMD configures on one device */
#define DSA_DEFAULT_PASID 1		/* the PASID the IOAS is attached at when the kernel can */
#define DSA_ENQ_RETRIES 64		/* ENQCMD attempts per submission before -EBUSY */
#define DSA_CMD_TIMEOUT_MS 1000		/* a CMD register command (enable, drain, abort) */
#define DSA_SWERR_POLL 1024		/* empty completed() polls between SWERR looks */
#define DSA_PORTAL_SLOTS 64		/* 64-byte slots in a portal page, used in turn */

_Static_assert(DSA_MAX_DESC < 65536, "ring occupancy is computed from 16-bit ring indices");

/* ---- descriptor and completion-record encoding --------------------------------- */

typedef struct upmd_dsa_desc dsa_desc_t;
typedef struct upmd_dsa_cr dsa_comp_t;

_Static_assert(sizeof(dsa_desc_t) == 64, "a DSA descriptor is 64 bytes");
_Static_assert(sizeof(dsa_comp_t) == 32, "a DSA completion record is 32 bytes");

/* Not a DSA status code (the spec's end at 0x22): what stop() writes into
 * the records of operations the device will never complete. */
#define DSA_ST_ABORTED 0x7f

/* Completion record requested, and its address valid: every descriptor the
 * PMD builds asks for one, since completions are polled there. */
#define DSA_F_CR (UPMD_DSA_F_RCR | UPMD_DSA_F_CRAV)

static inline void dsa_desc_init(dsa_desc_t *d, uint8_t opcode, uint32_t flags, uint64_t comp_iova)
{
	memset(d, 0, sizeof(*d));
	d->op_flags = UPMD_DSA_DESC_OP_FLAGS(opcode, flags | DSA_F_CR);
	d->completion_addr = comp_iova;
}

static inline void dsa_desc_memmove(dsa_desc_t *d, uint64_t src, uint64_t dst, uint32_t len, uint32_t flags,
				    uint64_t comp)
{
	dsa_desc_init(d, UPMD_DSA_OP_MEMMOVE, flags, comp);
	d->src_addr = src;
	d->dst_addr = dst;
	d->xfer_size = len;
}

static inline void dsa_desc_fill(dsa_desc_t *d, uint64_t pattern, uint64_t dst, uint32_t len, uint32_t flags,
				 uint64_t comp)
{
	dsa_desc_init(d, UPMD_DSA_OP_FILL, flags, comp);
	d->pattern = pattern;		/* the pattern field shares bytes 16-23 with the source address */
	d->dst_addr = dst;
	d->xfer_size = len;
}

static inline void dsa_desc_compare(dsa_desc_t *d, uint64_t src1, uint64_t src2, uint32_t len, uint32_t flags,
				    uint64_t comp)
{
	dsa_desc_init(d, UPMD_DSA_OP_COMPARE, flags, comp);
	d->src_addr = src1;
	d->src2_addr = src2;		/* source 2 shares bytes 24-31 with the destination */
	d->xfer_size = len;
}

static inline void dsa_desc_crcgen(dsa_desc_t *d, uint64_t src, uint32_t len, uint32_t seed, uint32_t flags,
				   uint64_t comp)
{
	dsa_desc_init(d, UPMD_DSA_OP_CRCGEN, flags, comp);
	d->src_addr = src;
	d->xfer_size = len;
	d->crc_seed = seed;
}

/* A batch of @count (2..max) descriptors at IOVA @list (64-byte aligned). */
static inline void dsa_desc_batch(dsa_desc_t *d, uint64_t list, uint32_t count, uint32_t flags, uint64_t comp)
{
	dsa_desc_init(d, UPMD_DSA_OP_BATCH, flags, comp);
	d->desc_list_addr = list;
	d->desc_count = count;
}

/*
 * A completion record's status as dmadev reports it. @opcode: what the
 * descriptor did (a compare that found a difference completes with
 * SUCCESS and result 1: a mismatch, not a failure of the engine).
 */
static inline enum upmd_dma_status_code dsa_status_map(uint8_t raw, uint8_t result, uint8_t opcode)
{
	switch (UPMD_DSA_COMP_STATUS(raw)) {
	case UPMD_DSA_COMP_SUCCESS:
		if (opcode == UPMD_DSA_OP_COMPARE && result != 0)
			return UPMD_DMA_STATUS_COMPARE_MISMATCH;
		return UPMD_DMA_STATUS_SUCCESSFUL;
	case UPMD_DSA_COMP_SUCCESS_PRED:
		return opcode == UPMD_DSA_OP_COMPARE ? UPMD_DMA_STATUS_COMPARE_MISMATCH : UPMD_DMA_STATUS_SUCCESSFUL;
	case UPMD_DSA_COMP_PAGE_FAULT_NOBOF:
	case UPMD_DSA_COMP_PAGE_FAULT_IR:
	case UPMD_DSA_COMP_BATCH_PAGE_FAULT:
	case UPMD_DSA_COMP_TRANSLATION_FAIL:
		return UPMD_DMA_STATUS_PAGE_FAULT;
	case UPMD_DSA_COMP_BATCH_FAIL:
		return UPMD_DMA_STATUS_NOT_ATTEMPTED;
	case UPMD_DSA_COMP_BAD_OPCODE:
		return UPMD_DMA_STATUS_INVALID_OPCODE;
	case UPMD_DSA_COMP_XFER_ERANGE:
	case UPMD_DSA_COMP_DESC_CNT_ERANGE:
		return UPMD_DMA_STATUS_INVALID_LENGTH;
	case UPMD_DSA_COMP_OVERLAP_BUFFERS:
	case UPMD_DSA_COMP_ADDR_ALIGN:
	case UPMD_DSA_COMP_CRA_ALIGN:
	case UPMD_DSA_COMP_CRA_XLAT:
	case UPMD_DSA_COMP_DESCLIST_ALIGN:
		return UPMD_DMA_STATUS_INVALID_ADDR;
	case UPMD_DSA_COMP_PFAULT_RDBA:
		return UPMD_DMA_STATUS_DESCRIPTOR_READ_ERROR;
	case UPMD_DSA_COMP_HW_ERR1:
	case UPMD_DSA_COMP_HW_ERR_DRB:
		return UPMD_DMA_STATUS_BUS_ERROR;
	default:
		return UPMD_DMA_STATUS_ERROR_UNKNOWN;
	}
}

/* ---- the queue ---------------------------------------------------------------------- */

struct dsa_wq;

/*
 * Hand one 64-byte descriptor to the WQ: a portal write (MOVDIR64B, or the
 * model's fallback store sequence) for a dedicated WQ, ENQCMD (or the
 * model's emulation of it) for a shared one. @return 0 accepted, 1 the
 * shared WQ is full (retry), -errno.
 */
typedef int (*dsa_portal_fn)(struct dsa_wq *q, const void *desc64);

/* A portal write: one descriptor or one batch the device holds as one WQ entry. */
struct dsa_sub {
	uint16_t start;		/* ring index of its first operation */
	uint16_t count;		/* operations (1: sent alone) */
};

/*
 * Ring indices are free-running 16-bit counters, operations in ring order:
 * [reported, sent)  handed to the device, not yet reported;
 * [sent, pending)   submitted by the application but not yet accepted by
 *                   the WQ (a full shared WQ, or every WQ entry in use):
 *                   completed() and the next submit send them;
 * [pending, next)   enqueued, not submitted.
 * Submissions (struct dsa_sub) retire in order once their completion record
 * (a batch's own, or the single descriptor's) has been written: at most
 * nb_sub are ever in the WQ, so a dedicated WQ (whose portal drops what does
 * not fit) never overflows. One thread owns the WQ (dmadev's rule).
 */
struct dsa_wq {
	/* hot */
	dsa_desc_t *desc;		/* nb_desc descriptors (memzone) */
	dsa_comp_t *comp;		/* nb_desc completion records, parallel to desc */
	dsa_comp_t *bcomp;		/* nb_sub batch completion records */
	uint64_t desc_iova, comp_iova, bcomp_iova;
	uint32_t **crc_out;		/* per slot: where a CRC result goes */
	struct dsa_sub *sub;
	dsa_portal_fn portal;
	void *portal_addr;		/* the WQ's portal page */
	uint16_t ring_mask, nb_desc;
	uint16_t sub_mask, nb_sub;
	uint16_t next, pending, sent, reported;
	uint16_t sub_head, sub_tail;	/* [head, tail) in the WQ */
	uint16_t max_batch;		/* descriptors one batch may hold (>= 2), 0: no batches */
	uint32_t max_xfer;
	uint32_t idle_polls;
	uint32_t pasid;			/* for ENQCMD (the model's emulation); UPMD_DMA_NO_PASID if none */
	uint32_t portal_slot;		/* portal writes since the WQ was enabled: the 64-byte slot is this % 64 */
	struct upmd_dma_stats stats;
	/* cold */
	struct dsa_dev *dev;		/* NULL on the idxd char-device path */
	unsigned wq_id;
	bool shared;
	bool started;
	uint64_t enq_retries;		/* ENQCMD said "retry" (shared WQ full) */
	uint64_t swerr_q0, swerr_addr;	/* the SWERR last handled */
	const struct upmd_memzone *mz;
	char name[UPMD_DMA_NAME_MAX];
};

static inline void dsa_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline uint16_t dsa_used(const struct dsa_wq *q)
{
	return (uint16_t)(q->next - q->reported);
}

/*
 * Submit a descriptor to a shared WQ: ENQCMD answers "retry" (ZF set) when
 * the WQ is full or the device refuses; back off (doubling pause loops up
 * to 1024) and try again up to @tries times. @return 0, -EBUSY (still
 * full: the caller keeps the descriptor and tries later), or the submit
 * function's -errno.
 */
static inline int dsa_enq_retry(int (*fn)(void *ctx, const void *desc64), void *ctx, const void *desc64,
				unsigned tries, uint64_t *retries)
{
	unsigned spin = 1;

	for (unsigned i = 0; i < tries; i++) {
		int rc = fn(ctx, desc64);

		if (rc <= 0)
			return rc;
		if (retries)
			(*retries)++;
		for (unsigned s = 0; s < spin; s++)
			dsa_pause();
		if (spin < 1024)
			spin <<= 1;
	}
	return -EBUSY;
}

/*
 * Cut [from, to) into portal writes: each a run that does not wrap the
 * ring (a batch's list is contiguous) and holds at most @max_batch
 * descriptors (a run of one goes alone: DSA batches hold 2 or more).
 * @return the length of the first run.
 */
static inline uint16_t dsa_run_len(uint16_t from, uint16_t to, uint16_t ring_mask, uint16_t max_batch)
{
	uint16_t n = (uint16_t)(to - from);
	uint16_t to_end = (uint16_t)(ring_mask + 1 - (from & ring_mask));

	if (n > to_end)
		n = to_end;
	if (max_batch < 2)
		return n ? 1 : 0;
	if (n > max_batch)
		n = max_batch;
	return n;
}

#endif /* UPMD_DSA_INTERNAL_H */
