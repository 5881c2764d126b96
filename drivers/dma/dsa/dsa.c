/* dmadev PMD for Intel DSA: a PCI driver over vfio (groups, WQs, PASID) and the idxd char-device path, one dmadev per WQ. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <time.h>

#include <upmd/cpu.h>
#include <upmd/eal.h>
#include <upmd/ioas.h>
#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/model.h>
#include <upmd/pci.h>
#include <upmd/uapi/vfio.h>
#include <upmd/vdev.h>

#include "dsa_internal.h"

/*
 * Shape (docs/dma.md, "DSA PMD"): the probe puts every engine and the WQs
 * it configures into group 0 and makes one dmadev with one vchan per WQ,
 * named "<bdf>-wq<N>". A WQ is a queue the device serves on its own, so a
 * dmadev per WQ lets each lcore own one without sharing a ring; one dmadev
 * with a vchan per WQ would put every WQ's state behind one start/stop.
 *
 * UPMD_DSA_WQS (read at probe) lists the WQs, one letter each, comma
 * separated: 'd' dedicated (the default: "d"), 's' shared. A shared WQ
 * needs the IOAS attached at a PASID, since the device takes the PASID
 * from the ENQCMD that submits; through vfio it works on the model only
 * (check_modes() says why), real shared WQs are the idxd path's.
 */

struct dsa_dev {
	struct upmd_pci_device *pdev;
	volatile uint8_t *regs;		/* BAR0 */
	uint8_t *portals;		/* BAR2 */
	uint64_t portals_len;
	uint64_t gencap, wqcap, grpcap, engcap, opcap[4];
	uint32_t version;
	uint32_t wqcfg_off, grpcfg_off, wqcfg_size;
	unsigned num_wqs, num_groups, num_engines, total_wq_size;
	unsigned nwq;
	bool pasid_en;
	uint32_t pasid;
	struct upmd_model *model;	/* the in-process model the device lives in, or NULL */
	bool model_untrapped;		/* its BAR0 is plain memory (UPMD_MODEL_NO_TRAP) */
	struct upmd_dma_dev *wq[DSA_MAX_WQS];
	bool wq_shared[DSA_MAX_WQS];
};

static const struct upmd_dma_dev_ops dsa_dma_ops;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tiny_sleep(void)
{
	struct timespec ts = { 0, 20000 };

	nanosleep(&ts, NULL);
}

static uint32_t rd32(const struct dsa_dev *d, unsigned off)
{
	return upmd_mmio_read32(d->regs + off);
}

static void wr32(struct dsa_dev *d, unsigned off, uint32_t v)
{
	upmd_mmio_write32(d->regs + off, v);
}

/* Low dword first, as the spec allows for every 64-bit register. */
static uint64_t rd64(const struct dsa_dev *d, unsigned off)
{
	uint64_t lo = rd32(d, off), hi = rd32(d, off + 4);

	return lo | (hi << 32);
}

static void wr64(struct dsa_dev *d, unsigned off, uint64_t v)
{
	wr32(d, off, (uint32_t)v);
	wr32(d, off + 4, (uint32_t)(v >> 32));
}

/* The model installed as the kernel boundary, if any: its devices take
 * the emulated ENQCMD and accept the portal fallback store sequence. */
static struct upmd_model *current_model(void)
{
	return upmd_kernel.ops == upmd_model_kops() ? upmd_kernel.ctx : NULL;
}

/* ---- portals: how a descriptor reaches a WQ ------------------------------------ */

#if defined(__x86_64__)
/* MOVDIR64B (66 0F 38 F8 /r, ModRM 0x02: destination address in rax,
 * source in [rdx]): one 64-byte non-torn posted write. Spelt as bytes so
 * that assemblers without it still build; executed only after
 * upmd_cpu_has(UPMD_CPU_MOVDIR64B). */
static inline void movdir64b(void *dst, const void *src)
{
	__asm__ volatile(".byte 0x66, 0x0f, 0x38, 0xf8, 0x02" : : "a"(dst), "d"(src) : "memory");
}

/* ENQCMD (F2 0F 38 F8 /r, same operands): a non-posted 64-byte write the
 * device accepts or refuses; ZF=1 means refused (retry). The CPU puts
 * IA32_PASID in the descriptor's PASID field. */
static inline int enqcmd(void *dst, const void *src)
{
	uint8_t retry;

	__asm__ volatile(".byte 0xf2, 0x0f, 0x38, 0xf8, 0x02\n\tsetz %0"
			 : "=q"(retry) : "a"(dst), "d"(src) : "memory", "cc");
	return retry;
}
#else
static inline void movdir64b(void *dst, const void *src)
{
	(void)dst, (void)src;
	__builtin_trap();	/* never reached: upmd_cpu_has() is false off x86 */
}

static inline int enqcmd(void *dst, const void *src)
{
	(void)dst, (void)src;
	__builtin_trap();
	return 1;
}
#endif

/*
 * Dedicated WQs: the n-th portal write since the WQ was enabled goes to
 * the n % 64-th 64-byte slot of the portal page. Hardware takes a write
 * anywhere in the page; the model polls the slots in that order (its
 * header comment, model/dev_dsa.c), so the same rotation serves both.
 */
static inline void *portal_slot(struct dsa_wq *q)
{
	return (uint8_t *)q->portal_addr + (size_t)(q->portal_slot++ % DSA_PORTAL_SLOTS) * 64;
}

static int portal_movdir64b(struct dsa_wq *q, const void *desc)
{
	/* Release: the descriptor(s), the batch list and the source data were
	 * written with ordinary stores; MOVDIR64B is weakly ordered against
	 * older stores to other addresses (like a WC store), so fence first. */
	__asm__ volatile("sfence" ::: "memory");
	movdir64b(portal_slot(q), desc);
	return 0;
}

/*
 * The model's dedicated-portal protocol for CPUs without MOVDIR64B
 * (model/dev_dsa.c): qwords 1..7 of the descriptor into the slot, then
 * qword 0 (PASID, flags, opcode: never 0 for what this PMD builds) with a
 * release store; the device takes the slot when qword 0 turns non-zero.
 * Real hardware needs MOVDIR64B: separate stores would reach it as a torn
 * descriptor, so a dedicated WQ on a real device is refused without it.
 */
static int portal_model_stores(struct dsa_wq *q, const void *desc)
{
	const uint64_t *s = desc;
	uint64_t *p = portal_slot(q);

	for (unsigned i = 1; i < 8; i++)
		__atomic_store_n(&p[i], s[i], __ATOMIC_RELAXED);
	/* Release: the descriptor, its batch list and the data were written
	 * before; the device acquires qword 0. */
	__atomic_store_n(&p[0], s[0], __ATOMIC_RELEASE);
	return 0;
}

static int enq_hw(void *ctx, const void *desc)
{
	struct dsa_wq *q = ctx;

	return enqcmd(q->portal_addr, desc);
}

static int portal_enqcmd(struct dsa_wq *q, const void *desc)
{
	/* Release, as for MOVDIR64B. */
	__asm__ volatile("sfence" ::: "memory");
	return dsa_enq_retry(enq_hw, q, desc, DSA_ENQ_RETRIES, &q->enq_retries);
}

/* The emulated ENQCMD: the model takes the descriptor with the PASID the
 * CPU would have put in it (IA32_PASID) and answers as the instruction's
 * ZF would. Used on the model only, whatever the CPU has. */
static int enq_model(void *ctx, const void *desc)
{
	struct dsa_wq *q = ctx;

	return upmd_model_dsa_enqcmd(q->dev->model, q->dev->pdev->name, q->wq_id, desc, q->pasid);
}

static int portal_model_enqcmd(struct dsa_wq *q, const void *desc)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return dsa_enq_retry(enq_model, q, desc, DSA_ENQ_RETRIES, &q->enq_retries);
}

/* ---- data path ------------------------------------------------------------------- */

/*
 * Send [sent, pending) as portal writes: runs that neither wrap the ring
 * nor exceed a batch, each one WQ entry, while WQ entries are free.
 * @return 0, -EBUSY (a shared WQ stayed full or every entry is in use:
 * what is left goes at the next submit or completed call).
 */
static int flush(struct dsa_wq *q)
{
	while (q->sent != q->pending) {
		uint16_t n = dsa_run_len(q->sent, q->pending, q->ring_mask, q->max_batch);
		uint16_t slot = q->sent & q->ring_mask;
		uint16_t s = q->sub_tail & q->sub_mask;
		dsa_desc_t bd;
		const void *what;
		int rc;

		if ((uint16_t)(q->sub_tail - q->sub_head) >= q->nb_sub)
			return -EBUSY;
		if (n == 1) {
			what = &q->desc[slot];
		} else {
			q->bcomp[s].status = 0;
			dsa_desc_batch(&bd, q->desc_iova + (uint64_t)slot * sizeof(dsa_desc_t), n, 0,
				       q->bcomp_iova + (uint64_t)s * sizeof(dsa_comp_t));
			what = &bd;
		}
		rc = q->portal(q, what);
		if (upmd_unlikely(rc != 0))
			return rc < 0 ? rc : -EBUSY;
		q->sub[s].start = q->sent;
		q->sub[s].count = n;
		q->sub_tail++;
		q->sent += n;
		q->stats.submitted += n;
	}
	return 0;
}

static inline int enqueue(struct dsa_wq *q, uint16_t vchan, uint32_t len, dsa_desc_t **out)
{
	uint16_t idx;

	if (upmd_unlikely(vchan != 0 || len == 0 || len > q->max_xfer))
		return -EINVAL;
	if (upmd_unlikely(dsa_used(q) >= q->nb_desc))
		return -ENOSPC;
	idx = q->next;
	*out = &q->desc[idx & q->ring_mask];
	return idx;
}

static inline int enqueued(struct dsa_wq *q, uint64_t flags)
{
	int idx = q->next++;

	if (flags & UPMD_DMA_OP_FLAG_SUBMIT) {
		q->pending = q->next;
		flush(q);
	}
	return idx;
}

static inline uint32_t dflags(uint64_t flags)
{
	/* A fence orders the operation after the earlier ones of its batch
	 * (DSA's fence is a batch-level flag: across submissions the WQ may
	 * run descriptors on several engines at once). */
	return (flags & UPMD_DMA_OP_FLAG_FENCE) ? UPMD_DSA_F_FENCE : 0;
}

static inline uint64_t comp_iova(const struct dsa_wq *q, uint16_t idx)
{
	return q->comp_iova + (uint64_t)(idx & q->ring_mask) * sizeof(dsa_comp_t);
}

static int dsa_copy(void *priv, uint16_t vchan, uint64_t src, uint64_t dst, uint32_t len, uint64_t flags)
{
	struct dsa_wq *q = priv;
	dsa_desc_t *d;
	int idx = enqueue(q, vchan, len, &d);

	if (upmd_unlikely(idx < 0))
		return idx;
	dsa_desc_memmove(d, src, dst, len, dflags(flags), comp_iova(q, (uint16_t)idx));
	return enqueued(q, flags);
}

static int dsa_fill(void *priv, uint16_t vchan, uint64_t pattern, uint64_t dst, uint32_t len, uint64_t flags)
{
	struct dsa_wq *q = priv;
	dsa_desc_t *d;
	int idx = enqueue(q, vchan, len, &d);

	if (upmd_unlikely(idx < 0))
		return idx;
	dsa_desc_fill(d, pattern, dst, len, dflags(flags), comp_iova(q, (uint16_t)idx));
	return enqueued(q, flags);
}

static int dsa_compare(void *priv, uint16_t vchan, uint64_t s1, uint64_t s2, uint32_t len, uint64_t flags)
{
	struct dsa_wq *q = priv;
	dsa_desc_t *d;
	int idx = enqueue(q, vchan, len, &d);

	if (upmd_unlikely(idx < 0))
		return idx;
	dsa_desc_compare(d, s1, s2, len, dflags(flags), comp_iova(q, (uint16_t)idx));
	return enqueued(q, flags);
}

static int dsa_crc32c(void *priv, uint16_t vchan, uint64_t src, uint32_t len, uint32_t seed, uint32_t *result,
		      uint64_t flags)
{
	struct dsa_wq *q = priv;
	dsa_desc_t *d;
	int idx;

	if (upmd_unlikely(!result))
		return -EINVAL;
	idx = enqueue(q, vchan, len, &d);
	if (upmd_unlikely(idx < 0))
		return idx;
	/* dmadev's CRC32C is the raw register (no inversion); the device
	 * inverts the seed on entry and the result on exit (zlib style), so
	 * both are inverted here and in op_status(). */
	dsa_desc_crcgen(d, src, len, ~seed, dflags(flags), comp_iova(q, (uint16_t)idx));
	q->crc_out[idx & q->ring_mask] = result;
	return enqueued(q, flags);
}

static int dsa_submit(void *priv, uint16_t vchan)
{
	struct dsa_wq *q = priv;

	if (upmd_unlikely(vchan != 0))
		return -EINVAL;
	q->pending = q->next;
	return flush(q);
}

/*
 * Retire the portal writes whose WQ entry the device has finished with:
 * a batch once its own record is written, a lone descriptor once its
 * record is. A batch that failed as a whole (its list unreadable, a bad
 * count) leaves the records of the descriptors it did not run unwritten:
 * they get the batch's status here, so completed() sees them fail.
 * Runs before the ring is scanned in every completed call.
 */
static void retire(struct dsa_wq *q)
{
	while (q->sub_head != q->sub_tail) {
		uint16_t s = q->sub_head & q->sub_mask;
		const struct dsa_sub *b = &q->sub[s];

		if (b->count == 1) {
			if ((int16_t)(q->reported - b->start) <= 0 &&
			    !__atomic_load_n(&q->comp[b->start & q->ring_mask].status, __ATOMIC_ACQUIRE))
				break;
		} else {
			uint8_t st = __atomic_load_n(&q->bcomp[s].status, __ATOMIC_ACQUIRE);
			uint8_t code = UPMD_DSA_COMP_STATUS(st);

			if (!st)
				break;
			/* Batch Fail with fewer descriptors completed than
			 * given: a fence after a failure abandoned the rest
			 * (they report NOT_ATTEMPTED, BATCH_FAIL's mapping). */
			if (code != UPMD_DSA_COMP_SUCCESS) {
				uint32_t done = q->bcomp[s].descs_completed;

				for (uint32_t i = done; i < b->count; i++) {
					dsa_comp_t *c = &q->comp[(b->start + i) & q->ring_mask];

					if (!c->status)
						c->status = st;
				}
			}
			q->bcomp[s].status = 0;
		}
		q->sub_head++;
	}
}

/*
 * A descriptor whose completion record cannot be written (its address
 * does not translate: the PASID is not attached, or the page is not
 * mapped) is reported only in SWERR. Looked at after DSA_SWERR_POLL empty
 * polls: an error naming one of this WQ's records completes that slot.
 */
static void swerr_check(struct dsa_wq *q)
{
	struct dsa_dev *d = q->dev;
	uint64_t e0, addr;

	if (!d)
		return;
	e0 = rd64(d, UPMD_DSA_REG_SWERR);
	if (!(e0 & UPMD_DSA_SWERR_VALID))
		return;
	if ((e0 & UPMD_DSA_SWERR_WQ_IDX_VALID) && UPMD_DSA_SWERR_WQ_IDX(e0) != q->wq_id)
		return;		/* another WQ's: its dmadev looks */
	addr = rd64(d, UPMD_DSA_REG_SWERR + 16);
	/* Where SWERR cannot be cleared (the model without traps), the same
	 * error stays: handle it once. */
	if (e0 == q->swerr_q0 && addr == q->swerr_addr)
		return;
	q->swerr_q0 = e0;
	q->swerr_addr = addr;
	UPMD_ERR(DSA_LOG, "%s: SWERR: error 0x%02x, operation 0x%02x, PASID %u%s, address 0x%" PRIx64 "%s", q->name,
		 (unsigned)UPMD_DSA_SWERR_ERROR(e0), (unsigned)UPMD_DSA_SWERR_OPERATION(e0),
		 (unsigned)UPMD_DSA_SWERR_PASID(e0), (e0 & UPMD_DSA_SWERR_BATCH) ? " (in a batch)" : "", addr,
		 (e0 & UPMD_DSA_SWERR_OVERFLOW) ? "; more errors were lost (overflow)" : "");
	if (addr >= q->comp_iova && addr < q->comp_iova + (uint64_t)q->nb_desc * sizeof(dsa_comp_t)) {
		uint16_t slot = (uint16_t)((addr - q->comp_iova) / sizeof(dsa_comp_t));
		uint16_t outstanding = (uint16_t)(q->sent - q->reported);
		uint8_t code = UPMD_DSA_SWERR_ERROR(e0);

		/* The record stays unwritten forever: complete it here, if it
		 * belongs to an operation still waiting. */
		if ((uint16_t)((slot - q->reported) & q->ring_mask) < outstanding && !q->comp[slot].status) {
			q->comp[slot].status = code ? code : UPMD_DSA_COMP_CRA_XLAT;
			q->comp[slot].result = 0;
		}
	}
	/* RW1C: write valid and overflow back to clear them. */
	wr32(d, UPMD_DSA_REG_SWERR, (uint32_t)(e0 & (UPMD_DSA_SWERR_VALID | UPMD_DSA_SWERR_OVERFLOW)));
}

/* The status of the operation at ring index @idx, whose record is written (@st != 0). */
static inline enum upmd_dma_status_code op_status(struct dsa_wq *q, uint16_t idx, uint8_t st)
{
	uint16_t slot = idx & q->ring_mask;
	const dsa_comp_t *c = &q->comp[slot];
	uint8_t opcode = (uint8_t)UPMD_DSA_DESC_OPCODE(q->desc[slot].op_flags);
	enum upmd_dma_status_code code;

	if (upmd_unlikely(st == DSA_ST_ABORTED))
		return UPMD_DMA_STATUS_USER_ABORT;
	code = dsa_status_map(st, c->result, opcode);
	if (upmd_unlikely(code == UPMD_DMA_STATUS_INVALID_ADDR && UPMD_DSA_COMP_STATUS(st) == UPMD_DSA_COMP_CRA_XLAT &&
			  q->dev && q->dev->pasid_en))
		code = UPMD_DMA_STATUS_PASID_ERROR;
	if (opcode == UPMD_DSA_OP_CRCGEN && code == UPMD_DMA_STATUS_SUCCESSFUL)
		*q->crc_out[slot] = ~c->crc_val;
	return code;
}

static inline void poll_prologue(struct dsa_wq *q)
{
	if (q->sub_head != q->sub_tail)
		retire(q);
	if (upmd_unlikely(q->sent != q->pending))
		flush(q);
}

static inline void poll_epilogue(struct dsa_wq *q, uint16_t n)
{
	if (n) {
		q->idle_polls = 0;
	} else if (q->reported != q->sent && ++q->idle_polls >= DSA_SWERR_POLL) {
		q->idle_polls = 0;
		swerr_check(q);
	}
}

static uint16_t dsa_completed(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx, bool *has_error)
{
	struct dsa_wq *q = priv;
	uint16_t n = 0;

	*has_error = false;
	if (upmd_unlikely(vchan != 0)) {
		*last_idx = (uint16_t)(q->reported - 1);
		return 0;
	}
	poll_prologue(q);
	while (n < nb_cpls && q->reported != q->sent) {
		dsa_comp_t *c = &q->comp[q->reported & q->ring_mask];
		/* Acquire: the device writes the status byte last; the data it
		 * moved and the rest of the record are visible after it. */
		uint8_t st = __atomic_load_n(&c->status, __ATOMIC_ACQUIRE);

		if (!st)
			break;
		if (op_status(q, q->reported, st) != UPMD_DMA_STATUS_SUCCESSFUL) {
			*has_error = true;
			break;
		}
		c->status = 0;
		q->reported++;
		n++;
	}
	q->stats.completed += n;
	*last_idx = (uint16_t)(q->reported - 1);
	poll_epilogue(q, n);
	return n;
}

static uint16_t dsa_completed_status(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
				     enum upmd_dma_status_code *status)
{
	struct dsa_wq *q = priv;
	uint16_t n = 0;

	if (upmd_unlikely(vchan != 0)) {
		*last_idx = (uint16_t)(q->reported - 1);
		return 0;
	}
	poll_prologue(q);
	while (n < nb_cpls && q->reported != q->sent) {
		dsa_comp_t *c = &q->comp[q->reported & q->ring_mask];
		uint8_t st = __atomic_load_n(&c->status, __ATOMIC_ACQUIRE);	/* acquire: as in completed */

		if (!st)
			break;
		status[n] = op_status(q, q->reported, st);
		q->stats.errors += status[n] != UPMD_DMA_STATUS_SUCCESSFUL;
		c->status = 0;
		q->reported++;
		n++;
	}
	q->stats.completed += n;
	*last_idx = (uint16_t)(q->reported - 1);
	poll_epilogue(q, n);
	return n;
}

static uint16_t dsa_burst_capacity(const void *priv, uint16_t vchan)
{
	const struct dsa_wq *q = priv;

	if (vchan != 0)
		return 0;
	return (uint16_t)(q->nb_desc - dsa_used(q));
}

/* ---- device commands ------------------------------------------------------------------ */

static const char *cmdsts_str(unsigned err)
{
	switch (err) {
	case UPMD_DSA_CMDSTS_INVAL_CMD: return "invalid command";
	case UPMD_DSA_CMDSTS_INVAL_WQIDX: return "invalid WQ index";
	case UPMD_DSA_CMDSTS_HW_ERR: return "hardware error";
	case UPMD_DSA_CMDSTS_ERR_DEV_ENABLED: return "device already enabled";
	case UPMD_DSA_CMDSTS_ERR_CONFIG: return "configuration error";
	case UPMD_DSA_CMDSTS_ERR_BUSMASTER_EN: return "PCI bus mastering is off";
	case UPMD_DSA_CMDSTS_ERR_PASID_INVAL: return "PASID enabled incorrectly";
	case UPMD_DSA_CMDSTS_ERR_WQ_SIZE_ERANGE: return "WQ sizes add up to more than the device has";
	case UPMD_DSA_CMDSTS_ERR_GRP_CONFIG: return "a WQ is in no group or in several";
	case UPMD_DSA_CMDSTS_ERR_GRP_CONFIG2: return "a group has WQs but no engine";
	case UPMD_DSA_CMDSTS_ERR_GRP_CONFIG3: return "an engine is in several groups";
	case UPMD_DSA_CMDSTS_ERR_GRP_CONFIG4: return "bad read-buffer configuration";
	case UPMD_DSA_CMDSTS_ERR_DEV_NOTEN: return "device not enabled";
	case UPMD_DSA_CMDSTS_ERR_WQ_ENABLED: return "WQ already enabled";
	case UPMD_DSA_CMDSTS_ERR_WQ_SIZE: return "WQ size is 0";
	case UPMD_DSA_CMDSTS_ERR_WQ_PRIOR: return "WQ priority is 0";
	case UPMD_DSA_CMDSTS_ERR_WQ_MODE: return "WQ mode not supported";
	case UPMD_DSA_CMDSTS_ERR_BOF_EN: return "block-on-fault enabled without support";
	case UPMD_DSA_CMDSTS_ERR_PASID_EN: return "PASID not enabled where the WQ mode needs it";
	case UPMD_DSA_CMDSTS_ERR_MAX_BATCH_SIZE: return "max batch size above the device's";
	case UPMD_DSA_CMDSTS_ERR_MAX_XFER_SIZE: return "max transfer size above the device's";
	case UPMD_DSA_CMDSTS_ERR_DIS_DEV_EN: return "device is not enabled";
	case UPMD_DSA_CMDSTS_ERR_DEV_NOT_EN: return "device is not enabled";
	default: return "unknown error";
	}
}

static const char *cmd_name(unsigned cmd)
{
	static const char *const n[] = {
		[UPMD_DSA_CMD_ENABLE_DEVICE] = "Enable Device", [UPMD_DSA_CMD_DISABLE_DEVICE] = "Disable Device",
		[UPMD_DSA_CMD_DRAIN_ALL] = "Drain All", [UPMD_DSA_CMD_ABORT_ALL] = "Abort All",
		[UPMD_DSA_CMD_RESET_DEVICE] = "Reset Device", [UPMD_DSA_CMD_ENABLE_WQ] = "Enable WQ",
		[UPMD_DSA_CMD_DISABLE_WQ] = "Disable WQ", [UPMD_DSA_CMD_DRAIN_WQ] = "Drain WQ",
		[UPMD_DSA_CMD_ABORT_WQ] = "Abort WQ", [UPMD_DSA_CMD_RESET_WQ] = "Reset WQ",
	};

	return cmd < sizeof(n) / sizeof(n[0]) && n[cmd] ? n[cmd] : "command";
}

/* Issue a CMD and wait for CMDSTATUS.ACTIVE to clear. @return 0, -ETIMEDOUT, -EIO (error decoded in the log). */
static int dsa_cmd(struct dsa_dev *d, unsigned cmd, uint32_t operand)
{
	uint64_t deadline = now_ms() + DSA_CMD_TIMEOUT_MS;
	uint32_t sts;

	while (rd32(d, UPMD_DSA_REG_CMDSTATUS) & UPMD_DSA_CMDSTS_ACTIVE) {
		if (now_ms() > deadline) {
			UPMD_ERR(DSA_LOG, "%s: a previous command is still active after %d ms; cannot issue %s",
				 d->pdev->name, DSA_CMD_TIMEOUT_MS, cmd_name(cmd));
			return -ETIMEDOUT;
		}
		tiny_sleep();
	}
	wr32(d, UPMD_DSA_REG_CMD, UPMD_DSA_CMD(cmd, operand));
	deadline = now_ms() + DSA_CMD_TIMEOUT_MS;
	/* The model without traps (UPMD_MODEL_NO_TRAP) sees the store only
	 * when its thread looks, and then clears CMD: until CMD reads 0 the
	 * old CMDSTATUS is still there. Trapped and on hardware, ACTIVE is
	 * set by the store itself. */
	while (d->model_untrapped && rd32(d, UPMD_DSA_REG_CMD) != 0) {
		if (now_ms() > deadline) {
			UPMD_ERR(DSA_LOG, "%s: the model did not take %s within %d ms", d->pdev->name, cmd_name(cmd),
				 DSA_CMD_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		tiny_sleep();
	}
	while ((sts = rd32(d, UPMD_DSA_REG_CMDSTATUS)) & UPMD_DSA_CMDSTS_ACTIVE) {
		if (now_ms() > deadline) {
			UPMD_ERR(DSA_LOG, "%s: %s (operand 0x%x) did not finish within %d ms (CMDSTATUS 0x%08x)",
				 d->pdev->name, cmd_name(cmd), operand, DSA_CMD_TIMEOUT_MS, sts);
			return -ETIMEDOUT;
		}
		tiny_sleep();
	}
	if (UPMD_DSA_CMDSTS_ERR(sts)) {
		UPMD_ERR(DSA_LOG, "%s: %s (operand 0x%x) failed: CMDSTATUS error 0x%02x, %s", d->pdev->name,
			 cmd_name(cmd), operand, UPMD_DSA_CMDSTS_ERR(sts), cmdsts_str(UPMD_DSA_CMDSTS_ERR(sts)));
		return -EIO;
	}
	return 0;
}

static unsigned wqcfg(const struct dsa_dev *d, unsigned wq, unsigned dw)
{
	return d->wqcfg_off + wq * d->wqcfg_size + dw;
}

static uint32_t wq_state(const struct dsa_dev *d, unsigned wq)
{
	return UPMD_DSA_WQCFG_WQ_STATE(rd32(d, wqcfg(d, wq, UPMD_DSA_WQCFG_DW_STATE)));
}

static int wq_enable(struct dsa_dev *d, unsigned wq)
{
	int rc;

	if (wq_state(d, wq) == UPMD_DSA_WQ_STATE_ENABLED)
		return 0;
	rc = dsa_cmd(d, UPMD_DSA_CMD_ENABLE_WQ, wq);
	if (rc == 0 && wq_state(d, wq) != UPMD_DSA_WQ_STATE_ENABLED) {
		UPMD_ERR(DSA_LOG, "%s: WQ %u: Enable WQ succeeded but WQCFG still says disabled", d->pdev->name, wq);
		rc = -EIO;
	}
	return rc;
}

/* Disable a WQ and check WQCFG says so (a command the device did not take
 * would otherwise pass for done): one more try, then an error. */
static int wq_disable(struct dsa_dev *d, unsigned wq)
{
	for (int tries = 0; tries < 2; tries++) {
		int rc = dsa_cmd(d, UPMD_DSA_CMD_DISABLE_WQ, UPMD_DSA_CMD_WQ_OPERAND(wq));

		if (rc < 0)
			return rc;
		if (wq_state(d, wq) == UPMD_DSA_WQ_STATE_DISABLED)
			return 0;
	}
	UPMD_ERR(DSA_LOG, "%s: WQ %u: Disable WQ succeeded but WQCFG still says enabled", d->pdev->name, wq);
	return -EIO;
}

/* ---- control path ---------------------------------------------------------------------- */

static void dsa_info_get(const struct upmd_dma_dev *dev, struct upmd_dma_info *info)
{
	const struct dsa_wq *q = dev->priv;

	info->driver = q->dev ? DSA_DRIVER_NAME : DSA_IDXD_DRIVER_NAME;
	info->capa = UPMD_DMA_CAPA_MEM_TO_MEM | UPMD_DMA_CAPA_OPS_COPY | UPMD_DMA_CAPA_OPS_FILL |
		     UPMD_DMA_CAPA_OPS_COMPARE | UPMD_DMA_CAPA_OPS_CRC32C;
	if (q->pasid != UPMD_DMA_NO_PASID) {
		info->capa |= UPMD_DMA_CAPA_PASID;
		info->pasid = q->pasid;
	}
	if (!q->dev)
		info->capa |= UPMD_DMA_CAPA_SVA;
	info->max_vchans = 1;
	info->min_desc = DSA_MIN_DESC;
	info->max_desc = DSA_MAX_DESC;
	info->max_length = q->max_xfer;
	info->numa_node = q->dev ? q->dev->pdev->numa_node : -1;
}

static int dsa_configure(struct upmd_dma_dev *dev, const struct upmd_dma_conf *conf)
{
	(void)dev, (void)conf;
	return 0;
}

static void ring_free(struct dsa_wq *q)
{
	if (q->mz)
		upmd_memzone_free(q->mz);
	q->mz = NULL;
	free(q->crc_out);
	free(q->sub);
	q->crc_out = NULL;
	q->sub = NULL;
	q->desc = NULL;
	q->comp = q->bcomp = NULL;
	q->nb_desc = 0;
}

static void ring_reset(struct dsa_wq *q)
{
	q->next = q->pending = q->sent = q->reported = 0;
	q->sub_head = q->sub_tail = 0;
	q->idle_polls = 0;
	memset(q->comp, 0, (size_t)q->nb_desc * sizeof(dsa_comp_t));
	memset(q->bcomp, 0, (size_t)q->nb_sub * sizeof(dsa_comp_t));
}

/*
 * One memzone per WQ: nb_desc descriptors (64-byte aligned: batches point
 * at runs of them), then nb_desc completion records parallel to them, then
 * one record per possible portal write for batches (32-byte aligned).
 */
static int dsa_vchan_setup(struct upmd_dma_dev *dev, uint16_t vchan, const struct upmd_dma_vchan_conf *conf)
{
	struct dsa_wq *q = dev->priv;
	size_t dlen = (size_t)conf->nb_desc * sizeof(dsa_desc_t), clen = (size_t)conf->nb_desc * sizeof(dsa_comp_t);
	uint16_t nsub = q->nb_sub ? q->nb_sub : 1;
	const struct upmd_memzone *mz;
	char name[32];
	int rc;

	(void)vchan;
	ring_free(q);
	snprintf(name, sizeof(name), "dsa_%.20s", q->name);
	rc = upmd_memzone_reserve(name, dlen + clen + (size_t)nsub * sizeof(dsa_comp_t), UPMD_SOCKET_ID_ANY, 4096,
				  &mz);
	if (rc < 0) {
		UPMD_ERR(DSA_LOG, "%s: cannot reserve %zu bytes for the descriptor ring (%s): give the EAL more "
			 "memory (-m) or use fewer descriptors", q->name, dlen + clen, strerror(-rc));
		return rc;
	}
	q->crc_out = calloc(conf->nb_desc, sizeof(*q->crc_out));
	q->sub = calloc(nsub, sizeof(*q->sub));
	if (!q->crc_out || !q->sub) {
		upmd_memzone_free(mz);
		free(q->crc_out);
		free(q->sub);
		q->crc_out = NULL;
		q->sub = NULL;
		return -ENOMEM;
	}
	q->mz = mz;
	q->desc = mz->addr;
	q->comp = (dsa_comp_t *)((uint8_t *)mz->addr + dlen);
	q->bcomp = (dsa_comp_t *)((uint8_t *)mz->addr + dlen + clen);
	/* On the idxd path the device sees process VAs (SVA). */
	q->desc_iova = q->dev ? mz->iova : (uint64_t)(uintptr_t)mz->addr;
	q->comp_iova = q->desc_iova + dlen;
	q->bcomp_iova = q->comp_iova + clen;
	q->nb_desc = conf->nb_desc;
	q->ring_mask = (uint16_t)(conf->nb_desc - 1);
	q->nb_sub = nsub;
	q->sub_mask = (uint16_t)(nsub - 1);
	ring_reset(q);
	memset(&q->stats, 0, sizeof(q->stats));
	return 0;
}

static int dsa_start(struct upmd_dma_dev *dev, struct upmd_dma_fp *fp)
{
	struct dsa_wq *q = dev->priv;
	int rc;

	if (q->dev) {
		rc = wq_enable(q->dev, q->wq_id);
		if (rc < 0)
			return rc;
	}
	ring_reset(q);
	q->portal_slot = 0;	/* the WQ was (re)enabled: slot 0 again */
	q->started = true;
	fp->copy = dsa_copy;
	fp->fill = dsa_fill;
	fp->compare = dsa_compare;
	fp->crc32c = dsa_crc32c;
	fp->submit = dsa_submit;
	fp->completed = dsa_completed;
	fp->completed_status = dsa_completed_status;
	fp->burst_capacity = dsa_burst_capacity;
	return 0;
}

/*
 * Abort the WQ (the device finishes or drops what it holds and writes no
 * more records for it once the command completes), disable it, and mark
 * every operation whose record is still unwritten as aborted. On the
 * idxd path the WQ belongs to the kernel driver: operations submitted are
 * waited for (bounded) instead.
 */
static int dsa_stop(struct upmd_dma_dev *dev)
{
	struct dsa_wq *q = dev->priv;
	int rc = 0;

	if (!q->started)
		return 0;
	if (q->dev) {
		rc = dsa_cmd(q->dev, UPMD_DSA_CMD_ABORT_WQ, UPMD_DSA_CMD_WQ_OPERAND(q->wq_id));
		if (wq_disable(q->dev, q->wq_id) < 0 && rc == 0)
			rc = -EIO;
		if (rc < 0)
			UPMD_ERR(DSA_LOG, "%s: the WQ did not stop cleanly; DMA stops for good when the device is "
				 "closed (bus mastering off)", q->name);
	} else {
		uint64_t deadline = now_ms() + DSA_CMD_TIMEOUT_MS;

		while (q->sub_head != q->sub_tail && now_ms() < deadline) {
			retire(q);
			tiny_sleep();
		}
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	/* Retire first: a batch that failed as a whole writes its status into its records. */
	retire(q);
	for (uint16_t i = q->reported; i != q->next; i++) {
		dsa_comp_t *c = &q->comp[i & q->ring_mask];

		if (!c->status)
			c->status = DSA_ST_ABORTED;
	}
	q->pending = q->sent = q->next;
	q->sub_head = q->sub_tail;
	q->started = false;
	return rc;
}

static void dsa_close(struct upmd_dma_dev *dev)
{
	ring_free(dev->priv);
}

static int dsa_stats_get(const struct upmd_dma_dev *dev, uint16_t vchan, struct upmd_dma_stats *stats)
{
	const struct dsa_wq *q = dev->priv;

	(void)vchan;
	*stats = q->stats;
	return 0;
}

static int dsa_stats_reset(struct upmd_dma_dev *dev, uint16_t vchan)
{
	struct dsa_wq *q = dev->priv;

	(void)vchan;
	memset(&q->stats, 0, sizeof(q->stats));
	return 0;
}

static const struct upmd_dma_dev_ops dsa_dma_ops = {
	.info_get = dsa_info_get,
	.configure = dsa_configure,
	.vchan_setup = dsa_vchan_setup,
	.start = dsa_start,
	.stop = dsa_stop,
	.close = dsa_close,
	.stats_get = dsa_stats_get,
	.stats_reset = dsa_stats_reset,
};

/* ---- the PCI driver ----------------------------------------------------------------------- */

static struct upmd_pci_driver dsa_pci_driver;

static uint16_t pow2_floor(unsigned v)
{
	unsigned p = 1;

	while (p * 2 <= v && p * 2 <= 32768)
		p *= 2;
	return (uint16_t)p;
}

/* UPMD_DSA_WQS: "d", "s", "d,s", ... @return the number of WQs, or -EINVAL (logged). */
static int parse_wqs(const char *bdf, bool *shared)
{
	const char *s = getenv("UPMD_DSA_WQS");
	int n = 0;

	if (!s || !*s)
		s = "d";
	for (const char *p = s; *p; p++) {
		if (*p == ',' || *p == ' ')
			continue;
		if ((*p != 'd' && *p != 's') || n == DSA_MAX_WQS) {
			UPMD_ERR(DSA_LOG, "%s: UPMD_DSA_WQS='%s': give up to %d WQ modes, 'd' (dedicated) or 's' "
				 "(shared), comma separated, e.g. \"d,s\"", bdf, s, DSA_MAX_WQS);
			return -EINVAL;
		}
		shared[n++] = *p == 's';
	}
	if (!n) {
		UPMD_ERR(DSA_LOG, "%s: UPMD_DSA_WQS='%s' names no WQ", bdf, s);
		return -EINVAL;
	}
	return n;
}

/*
 * Attach the device's DMA at a PASID to the EAL's IOAS, as well as by RID
 * (the bus did that). The ioas API attaches at a PASID only when it opens
 * a device, and the bus opens it by RID, so this is the same
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT ioctl on the device fd the bus opened;
 * closing the device fd detaches both. @return 0 or -errno (logged as info:
 * the caller goes on without a PASID).
 */
static int attach_pasid(struct dsa_dev *d, uint32_t pasid)
{
	struct upmd_ioas *ioas = upmd_ioas_default();
	struct vfio_device_attach_iommufd_pt att = {
		.argsz = sizeof(att), .flags = VFIO_DEVICE_ATTACH_PASID, .pasid = pasid,
	};
	int rc;

	if (!ioas || upmd_ioas_backend_kind(ioas) != UPMD_IOAS_BACKEND_IOMMUFD) {
		UPMD_INFO(DSA_LOG, "%s: no PASID: a PASID attach needs the iommufd backend; WQCFG PASID disabled",
			  d->pdev->name);
		return -EOPNOTSUPP;
	}
	if (!(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_PASID)) {
		UPMD_INFO(DSA_LOG, "%s: no PASID: the kernel (VFIO PASID attach needs 6.15+) or the IOMMU cannot "
			  "attach at a PASID; WQCFG PASID disabled, shared WQs unavailable", d->pdev->name);
		return -EOPNOTSUPP;
	}
	att.pt_id = upmd_ioas_id(ioas);
	rc = upmd_k_ioctl(d->pdev->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &att);
	if (rc < 0) {
		UPMD_INFO(DSA_LOG, "%s: attaching the IOAS at PASID %u failed (%s); WQCFG PASID disabled, shared "
			  "WQs unavailable", d->pdev->name, pasid, strerror(-rc));
		return rc;
	}
	return 0;
}

static void detach_pasid(struct dsa_dev *d)
{
	struct vfio_device_detach_iommufd_pt det = {
		.argsz = sizeof(det), .flags = VFIO_DEVICE_ATTACH_PASID, .pasid = d->pasid,
	};

	if (d->pasid_en && d->pdev->fd >= 0 && upmd_k_ioctl(d->pdev->fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &det) < 0)
		UPMD_WARN(DSA_LOG, "%s: detaching PASID %u failed (closing the device detaches it anyway)",
			  d->pdev->name, d->pasid);
	d->pasid_en = false;
}

static int read_caps(struct dsa_dev *d)
{
	const char *bdf = d->pdev->name;
	uint64_t t0;

	d->version = rd32(d, UPMD_DSA_REG_VERSION);
	d->gencap = rd64(d, UPMD_DSA_REG_GENCAP);
	d->wqcap = rd64(d, UPMD_DSA_REG_WQCAP);
	d->grpcap = rd64(d, UPMD_DSA_REG_GRPCAP);
	d->engcap = rd64(d, UPMD_DSA_REG_ENGCAP);
	for (unsigned i = 0; i < 4; i++)
		d->opcap[i] = rd64(d, UPMD_DSA_REG_OPCAP + 8 * i);
	t0 = rd64(d, UPMD_DSA_REG_TABLE_OFFSET);
	if (d->version == UINT32_MAX) {
		UPMD_ERR(DSA_LOG, "%s: VERSION reads all ones: the device is not responding", bdf);
		return -EIO;
	}
	d->num_wqs = UPMD_DSA_WQCAP_NUM_WQS(d->wqcap);
	d->total_wq_size = UPMD_DSA_WQCAP_TOTAL_WQ_SIZE(d->wqcap);
	d->wqcfg_size = 32u << UPMD_DSA_WQCAP_WQCFG_SIZE(d->wqcap);
	d->num_groups = UPMD_DSA_GRPCAP_NUM_GROUPS(d->grpcap);
	d->num_engines = UPMD_DSA_ENGCAP_NUM_ENGINES(d->engcap);
	d->wqcfg_off = UPMD_DSA_TABLE_WQCFG(t0);
	d->grpcfg_off = UPMD_DSA_TABLE_GRPCFG(t0);
	if (!d->num_wqs || !d->num_groups || !d->num_engines || !d->total_wq_size || !d->wqcfg_off ||
	    !d->grpcfg_off) {
		UPMD_ERR(DSA_LOG, "%s: implausible capabilities (%u WQs, %u groups, %u engines, WQ size %u, WQCFG at "
			 "0x%x, GRPCFG at 0x%x)", bdf, d->num_wqs, d->num_groups, d->num_engines, d->total_wq_size,
			 d->wqcfg_off, d->grpcfg_off);
		return -EIO;
	}
	if (!(d->gencap & UPMD_DSA_GENCAP_CONFIG_SUPPORT)) {
		UPMD_ERR(DSA_LOG, "%s: GENCAP says the configuration is fixed (not writable): this PMD configures "
			 "groups and WQs itself; use the idxd kernel driver (accel-config) and --vdev dma_idxd", bdf);
		return -ENOTSUP;
	}
	static const struct { uint8_t op; const char *name; } need[] = {
		{ UPMD_DSA_OP_BATCH, "batch" }, { UPMD_DSA_OP_MEMMOVE, "memmove" }, { UPMD_DSA_OP_FILL, "fill" },
		{ UPMD_DSA_OP_COMPARE, "compare" }, { UPMD_DSA_OP_CRCGEN, "CRC generation" },
	};
	for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!(d->opcap[UPMD_DSA_OPCAP_QWORD(need[i].op)] & UPMD_DSA_OPCAP_BIT(need[i].op))) {
			UPMD_ERR(DSA_LOG, "%s: OPCAP lacks %s (opcode 0x%02x), which this PMD needs", bdf, need[i].name,
				 need[i].op);
			return -ENOTSUP;
		}
	return 0;
}

/* Refuse what this CPU and device cannot do, with the reason. */
static int check_modes(struct dsa_dev *d, const bool *shared)
{
	const char *bdf = d->pdev->name;

	for (unsigned i = 0; i < d->nwq; i++) {
		if (shared[i]) {
			if (!(d->wqcap & UPMD_DSA_WQCAP_SHARED_MODE)) {
				UPMD_ERR(DSA_LOG, "%s: WQ %u: the device has no shared WQs (WQCAP); use 'd' in UPMD_DSA_WQS",
					 bdf, i);
				return -ENOTSUP;
			}
			if (!d->pasid_en) {
				UPMD_ERR(DSA_LOG, "%s: WQ %u: a shared WQ needs the device attached at a PASID, and that "
					 "failed (see above); use a dedicated WQ ('d' in UPMD_DSA_WQS)", bdf, i);
				return -ENOTSUP;
			}
			if (!d->model && !upmd_cpu_has(UPMD_CPU_ENQCMD)) {
				UPMD_ERR(DSA_LOG, "%s: WQ %u: a shared WQ is submitted to with the ENQCMD instruction, "
					 "which this CPU lacks (CPUID.(7,0):ECX[29]); use a dedicated WQ ('d' in UPMD_DSA_WQS)",
					 bdf, i);
				return -ENOTSUP;
			}
			/* ENQCMD sends IA32_PASID, which the kernel sets only for a
			 * process bound for SVA (the idxd char device); nothing
			 * sets it to the PASID this IOAS is attached at, and with
			 * it unset ENQCMD faults (#GP). Only the model, whose
			 * emulated ENQCMD takes the PASID as an argument, can. */
			if (!d->model) {
				UPMD_ERR(DSA_LOG, "%s: WQ %u: a shared WQ cannot be used through vfio: ENQCMD takes the "
					 "PASID from IA32_PASID, which the kernel sets only for a process bound for shared "
					 "virtual addressing, not to the PASID the IOAS is attached at; use a dedicated WQ "
					 "('d' in UPMD_DSA_WQS) or a shared WQ of the idxd driver (--vdev "
					 "dma_idxd,wq=/dev/dsa/wqD.Q)", bdf, i);
				return -ENOTSUP;
			}
		} else {
			if (!(d->wqcap & UPMD_DSA_WQCAP_DEDICATED_MODE)) {
				UPMD_ERR(DSA_LOG, "%s: WQ %u: the device has no dedicated WQs (WQCAP); use 's' in "
					 "UPMD_DSA_WQS", bdf, i);
				return -ENOTSUP;
			}
			if (!d->model && !upmd_cpu_has(UPMD_CPU_MOVDIR64B)) {
				UPMD_ERR(DSA_LOG, "%s: WQ %u: a dedicated WQ is submitted to with the MOVDIR64B "
					 "instruction, which this CPU lacks (CPUID.(7,0):ECX[28]); without it a descriptor "
					 "could reach the device torn", bdf, i);
				return -ENOTSUP;
			}
		}
	}
	return 0;
}

static void write_config(struct dsa_dev *d, const bool *shared, unsigned xshift, unsigned bshift)
{
	unsigned per = d->total_wq_size / d->nwq;
	uint64_t engines = d->num_engines >= 64 ? UINT64_MAX : (1ull << d->num_engines) - 1;

	for (unsigned w = 0; w < d->num_wqs; w++) {
		bool ours = w < d->nwq;
		uint32_t mode = UPMD_DSA_WQCFG_PRIORITY(1);

		if (ours && !shared[w])
			mode |= UPMD_DSA_WQCFG_MODE_DEDICATED;
		if (ours && d->pasid_en)
			mode |= UPMD_DSA_WQCFG_PASID_EN | UPMD_DSA_WQCFG_PASID(d->pasid);
		wr32(d, wqcfg(d, w, UPMD_DSA_WQCFG_DW_SIZE), ours ? per : 0);
		wr32(d, wqcfg(d, w, UPMD_DSA_WQCFG_DW_THRESHOLD), ours && shared[w] ? per : 0);
		wr32(d, wqcfg(d, w, UPMD_DSA_WQCFG_DW_MODE), ours ? mode : 0);
		wr32(d, wqcfg(d, w, UPMD_DSA_WQCFG_DW_LIMITS),
		     ours ? UPMD_DSA_WQCFG_MAX_XFER_SHIFT(xshift) | UPMD_DSA_WQCFG_MAX_BATCH_SHIFT(bshift) : 0);
		wr32(d, wqcfg(d, w, UPMD_DSA_WQCFG_DW_OCC_INT), 0);
		wr32(d, wqcfg(d, w, UPMD_DSA_WQCFG_DW_OCC_LIMIT), 0);
	}
	for (unsigned g = 0; g < d->num_groups; g++) {
		unsigned base = d->grpcfg_off + g * UPMD_DSA_GRPCFG_SIZE;
		uint64_t wqs = g == 0 ? (d->nwq >= 64 ? UINT64_MAX : (1ull << d->nwq) - 1) : 0;

		for (unsigned i = 0; i < 4; i++)
			wr64(d, base + UPMD_DSA_GRPCFG_WQS + 8 * i, i == 0 ? wqs : 0);
		wr64(d, base + UPMD_DSA_GRPCFG_ENGINES, g == 0 ? engines : 0);
		wr64(d, base + UPMD_DSA_GRPCFG_FLAGS, 0);
	}
}

static void dev_disable(struct dsa_dev *d)
{
	if (UPMD_DSA_GENSTS_STATE(rd32(d, UPMD_DSA_REG_GENSTS)) != UPMD_DSA_GENSTS_STATE_DISABLED)
		dsa_cmd(d, UPMD_DSA_CMD_DISABLE_DEVICE, 0);
}

static void dsa_teardown(struct dsa_dev *d)
{
	for (unsigned i = 0; i < DSA_MAX_WQS; i++) {
		if (!d->wq[i])
			continue;
		upmd_dma_close(d->wq[i]->dev_id);
		upmd_dma_dev_release(d->wq[i]);
		d->wq[i] = NULL;
	}
	/* Disabling the device aborts whatever any WQ still holds; with bus
	 * mastering off nothing can reach memory afterwards. */
	dev_disable(d);
	upmd_pci_set_bus_master(d->pdev, false);
	detach_pasid(d);
}

static int dsa_probe(struct upmd_pci_device *pdev)
{
	const char *bdf = pdev->name;
	bool shared[DSA_MAX_WQS] = { false };
	unsigned xshift, bshift;
	struct dsa_dev *d;
	uint32_t gensts;
	int n, rc;

	n = parse_wqs(bdf, shared);
	if (n < 0)
		return n;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->pdev = pdev;
	d->nwq = (unsigned)n;
	d->model = current_model();
	d->model_untrapped = d->model && getenv("UPMD_MODEL_NO_TRAP");
	rc = upmd_pci_map_bar(pdev, UPMD_DSA_BAR_MMIO);
	if (rc == 0)
		rc = upmd_pci_map_bar(pdev, UPMD_DSA_BAR_PORTAL);
	if (rc < 0) {
		UPMD_ERR(DSA_LOG, "%s: cannot map BAR%d: %s", bdf, pdev->bar[UPMD_DSA_BAR_MMIO].addr ? 2 : 0,
			 strerror(-rc));
		goto err_free;
	}
	d->regs = pdev->bar[UPMD_DSA_BAR_MMIO].addr;
	d->portals = pdev->bar[UPMD_DSA_BAR_PORTAL].addr;
	d->portals_len = pdev->bar[UPMD_DSA_BAR_PORTAL].len;
	rc = read_caps(d);
	if (rc < 0)
		goto err_free;
	if (d->nwq > d->num_wqs || d->nwq > d->total_wq_size ||
	    d->portals_len < UPMD_DSA_PORTAL_OFFSET(d->nwq, 0, 0)) {
		UPMD_ERR(DSA_LOG, "%s: UPMD_DSA_WQS asks for %u WQs; the device has %u (total WQ size %u, BAR2 %" PRIu64
			 " bytes)", bdf, d->nwq, d->num_wqs, d->total_wq_size, d->portals_len);
		rc = -EINVAL;
		goto err_free;
	}
	/* A device left enabled (an earlier process that died) is disabled
	 * first: its WQs and groups cannot be written while it is enabled. */
	gensts = rd32(d, UPMD_DSA_REG_GENSTS);
	if (UPMD_DSA_GENSTS_STATE(gensts) == UPMD_DSA_GENSTS_STATE_HALT) {
		UPMD_WARN(DSA_LOG, "%s: the device is halted (GENSTS 0x%x): resetting it", bdf, gensts);
		if ((rc = dsa_cmd(d, UPMD_DSA_CMD_RESET_DEVICE, 0)) < 0)
			goto err_free;
	} else if (UPMD_DSA_GENSTS_STATE(gensts) != UPMD_DSA_GENSTS_STATE_DISABLED) {
		UPMD_WARN(DSA_LOG, "%s: the device was left enabled (GENSTS 0x%x): disabling it first", bdf, gensts);
		if ((rc = dsa_cmd(d, UPMD_DSA_CMD_DISABLE_DEVICE, 0)) < 0)
			goto err_free;
	}
	if (!getenv("UPMD_DSA_NO_PASID") && attach_pasid(d, DSA_DEFAULT_PASID) == 0) {
		d->pasid_en = true;
		d->pasid = DSA_DEFAULT_PASID;
	}
	rc = check_modes(d, shared);
	if (rc < 0)
		goto err_pasid;
	xshift = UPMD_DSA_GENCAP_MAX_XFER_SHIFT(d->gencap);
	bshift = UPMD_DSA_GENCAP_MAX_BATCH_SHIFT(d->gencap);
	write_config(d, shared, xshift, bshift);
	rc = upmd_pci_set_bus_master(pdev, true);
	if (rc < 0) {
		UPMD_ERR(DSA_LOG, "%s: cannot enable bus mastering: %s", bdf, strerror(-rc));
		goto err_pasid;
	}
	rc = dsa_cmd(d, UPMD_DSA_CMD_ENABLE_DEVICE, 0);
	if (rc == 0 && UPMD_DSA_GENSTS_STATE(rd32(d, UPMD_DSA_REG_GENSTS)) != UPMD_DSA_GENSTS_STATE_ENABLED) {
		UPMD_ERR(DSA_LOG, "%s: Enable Device succeeded but GENSTS is 0x%x, not enabled", bdf,
			 rd32(d, UPMD_DSA_REG_GENSTS));
		rc = -EIO;
	}
	if (rc < 0)
		goto err_bm;
	for (unsigned w = 0; w < d->nwq; w++) {
		struct upmd_dma_dev *dev;
		struct dsa_wq *q;
		char name[UPMD_DMA_NAME_MAX];
		unsigned size = d->total_wq_size / d->nwq;

		rc = wq_enable(d, w);
		if (rc < 0)
			goto err_wqs;
		snprintf(name, sizeof(name), "%s-wq%u", bdf, w);
		rc = upmd_dma_dev_allocate(name, &dsa_dma_ops, sizeof(*q), &dev);
		if (rc < 0) {
			UPMD_ERR(DSA_LOG, "%s: cannot create dmadev %s: %s", bdf, name, strerror(-rc));
			goto err_wqs;
		}
		d->wq[w] = dev;
		d->wq_shared[w] = shared[w];
		q = dev->priv;
		q->dev = d;
		q->wq_id = w;
		q->shared = shared[w];
		snprintf(q->name, sizeof(q->name), "%s", name);
		q->portal_addr = d->portals + UPMD_DSA_PORTAL_OFFSET(w, UPMD_DSA_PORTAL_UNLIMITED,
								      UPMD_DSA_PORTAL_IRQ_MSIX);
		q->pasid = d->pasid_en ? d->pasid : UPMD_DMA_NO_PASID;
		q->max_xfer = xshift >= 32 ? UINT32_MAX : (uint32_t)1 << xshift;
		q->max_batch = bshift ? (uint16_t)(1u << (bshift > 15 ? 15 : bshift)) : 0;
		/* At most min(WQ size, 64) portal writes in the WQ: a dedicated
		 * portal drops what does not fit, and the model's 64 slots must
		 * be free again when their turn comes. A shared WQ refuses
		 * (ENQCMD's retry) rather than drops. */
		q->nb_sub = shared[w] ? DSA_PORTAL_SLOTS : pow2_floor(size < DSA_PORTAL_SLOTS ? size : DSA_PORTAL_SLOTS);
		if (shared[w])
			q->portal = d->model ? portal_model_enqcmd : portal_enqcmd;
		else
			q->portal = upmd_cpu_has(UPMD_CPU_MOVDIR64B) ? portal_movdir64b : portal_model_stores;
		UPMD_INFO(DSA_LOG, "%s: dmadev %d, %s WQ %u, %u entries, PASID %s, max transfer %u, max batch %u, "
			  "submitted with %s", name, dev->dev_id, shared[w] ? "shared" : "dedicated", w, size,
			  d->pasid_en ? "on" : "off", q->max_xfer, q->max_batch,
			  shared[w] ? (d->model ? "the model's emulated ENQCMD" : "ENQCMD")
				    : (q->portal == portal_movdir64b ? "MOVDIR64B" : "the model's store sequence (no MOVDIR64B)"));
	}
	/* Disabled again until each dmadev starts. */
	for (unsigned w = 0; w < d->nwq; w++)
		wq_disable(d, w);
	pdev->driver_data = d;
	UPMD_INFO(DSA_LOG, "%s: DSA %u.%u, %u engines, %u WQs configured (of %u), group 0", bdf,
		  UPMD_DSA_VERSION_MAJOR(d->version), UPMD_DSA_VERSION_MINOR(d->version), d->num_engines, d->nwq,
		  d->num_wqs);
	return 0;

err_wqs:
	for (unsigned w = 0; w < DSA_MAX_WQS; w++)
		if (d->wq[w]) {
			upmd_dma_dev_release(d->wq[w]);
			d->wq[w] = NULL;
		}
	dev_disable(d);
err_bm:
	upmd_pci_set_bus_master(pdev, false);
err_pasid:
	detach_pasid(d);
err_free:
	free(d);
	return rc;
}

static int dsa_remove(struct upmd_pci_device *pdev)
{
	struct dsa_dev *d = pdev->driver_data;

	if (!d)
		return 0;
	dsa_teardown(d);
	pdev->driver_data = NULL;
	free(d);
	return 0;
}

static const struct upmd_pci_id dsa_ids[] = {
	{ UPMD_PCI_DEVICE(UPMD_DSA_VENDOR_ID, UPMD_DSA_DEVICE_ID_SPR) },
	{ .vendor_id = 0 },
};

static struct upmd_pci_driver dsa_pci_driver = {
	.name = DSA_DRIVER_NAME,
	.id_table = dsa_ids,
	.probe = dsa_probe,
	.remove = dsa_remove,
};

UPMD_PCI_REGISTER_DRIVER(dsa_pci_driver)

/* ---- the idxd char-device path: --vdev dma_idxd,wq=/dev/dsa/wqX.Y ---------------------------- */

/*
 * A WQ the kernel's idxd driver owns, configured and enabled with
 * accel-config as a "user" WQ: the kernel bound our mm to the device
 * (SVA), so descriptors carry process VAs (IOVA = VA: --iova-mode va) and
 * the WQ's PASID is the process's. Shared WQs take ENQCMD, dedicated ones
 * MOVDIR64B; there is no emulation for either here.
 */
struct idxd_vdev {
	char name[UPMD_DMA_NAME_MAX];
	struct upmd_dma_dev *dev;
	void *portal;
	int fd;
	struct idxd_vdev *next;
};

static struct idxd_vdev *idxd_list;

static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = upmd_k_open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = upmd_k_read(fd, buf, len - 1);
	upmd_k_close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static unsigned long sysfs_ulong(const char *wq, const char *attr, unsigned long dflt)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), "/sys/bus/dsa/devices/%s/%s", wq, attr);
	if (sysfs_read(path, buf, sizeof(buf)) < 0)
		return dflt;
	return strtoul(buf, NULL, 0);
}

static int idxd_probe(const char *name, const char *args)
{
	char path[96] = "", mode[32] = "", sysp[128];
	const char *wq, *base;
	struct idxd_vdev *v;
	struct dsa_wq *q;
	bool shared;
	void *portal;
	unsigned long size, mbatch, mxfer;
	int fd, rc;

	for (const char *p = args; p && *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l > 3 && !strncmp(p, "wq=", 3) && l - 3 < sizeof(path)) {
			memcpy(path, p + 3, l - 3);
			path[l - 3] = 0;
		} else {
			UPMD_ERR(DSA_LOG, "%s: unknown argument '%.*s': give wq=/dev/dsa/wqD.Q", name, (int)l, p);
			return -EINVAL;
		}
		p = e ? e + 1 : p + l;
	}
	if (!*path) {
		UPMD_ERR(DSA_LOG, "%s: no WQ given: --vdev %s,wq=/dev/dsa/wqD.Q (a user WQ enabled with accel-config)",
			 name, name);
		return -EINVAL;
	}
	base = strrchr(path, '/');
	wq = base ? base + 1 : path;
	fd = upmd_k_open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (fd == -ENOENT)
			UPMD_ERR(DSA_LOG, "%s: %s does not exist: no idxd work queue is enabled there. Load the idxd "
				 "driver and configure a user WQ with accel-config (e.g. 'accel-config config-wq "
				 "dsa0/%s --group-id=0 --mode=dedicated --type=user --name=upmd --size=16 "
				 "--priority=10', 'accel-config config-engine dsa0/engine0.0 --group-id=0', "
				 "'accel-config enable-device dsa0', 'accel-config enable-wq dsa0/%s'), or bind the "
				 "device to vfio-pci and use the vfio path (-a <bdf>)", name, path, wq, wq);
		else if (fd == -EACCES || fd == -EPERM)
			UPMD_ERR(DSA_LOG, "%s: %s: permission denied: the WQ's node belongs to root; change its "
				 "owner or run as root", name, path);
		else
			UPMD_ERR(DSA_LOG, "%s: cannot open %s: %s", name, path, strerror(-fd));
		return fd;
	}
	if (upmd_eal_iova_mode() != UPMD_IOVA_MODE_VA) {
		UPMD_ERR(DSA_LOG, "%s: an idxd WQ works on process virtual addresses (SVA): start with "
			 "--iova-mode va so that IOVAs are VAs", name);
		rc = -EINVAL;
		goto err_close;
	}
	snprintf(sysp, sizeof(sysp), "/sys/bus/dsa/devices/%s/mode", wq);
	if (sysfs_read(sysp, mode, sizeof(mode)) < 0) {
		UPMD_ERR(DSA_LOG, "%s: cannot read %s: is %s an idxd WQ?", name, sysp, path);
		rc = -ENODEV;
		goto err_close;
	}
	shared = !strcmp(mode, "shared");
	if (shared && !upmd_cpu_has(UPMD_CPU_ENQCMD)) {
		UPMD_ERR(DSA_LOG, "%s: %s is a shared WQ, submitted to with the ENQCMD instruction, which this CPU "
			 "lacks (CPUID.(7,0):ECX[29]); configure a dedicated WQ (--mode=dedicated)", name, path);
		rc = -ENOTSUP;
		goto err_close;
	}
	if (!shared && !upmd_cpu_has(UPMD_CPU_MOVDIR64B)) {
		UPMD_ERR(DSA_LOG, "%s: %s is a dedicated WQ, submitted to with the MOVDIR64B instruction, which this "
			 "CPU lacks (CPUID.(7,0):ECX[28])", name, path);
		rc = -ENOTSUP;
		goto err_close;
	}
	size = sysfs_ulong(wq, "size", 16);
	mbatch = sysfs_ulong(wq, "max_batch_size", 32);
	mxfer = sysfs_ulong(wq, "max_transfer_size", 1ul << 21);
	rc = upmd_k_mmap(NULL, UPMD_DSA_PORTAL_SIZE, PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0, &portal);
	if (rc < 0) {
		UPMD_ERR(DSA_LOG, "%s: cannot map the portal of %s: %s", name, path, strerror(-rc));
		goto err_close;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto err_unmap;
	}
	rc = upmd_dma_dev_allocate(name, &dsa_dma_ops, sizeof(*q), &v->dev);
	if (rc < 0) {
		free(v);
		goto err_unmap;
	}
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->fd = fd;
	v->portal = portal;
	q = v->dev->priv;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->shared = shared;
	q->portal_addr = portal;
	q->portal = shared ? portal_enqcmd : portal_movdir64b;
	q->pasid = UPMD_DMA_NO_PASID;	/* the kernel's, not ours to name */
	q->max_xfer = mxfer > UINT32_MAX ? UINT32_MAX : (uint32_t)mxfer;
	q->max_batch = mbatch >= 2 ? (uint16_t)(mbatch > 32768 ? 32768 : mbatch) : 0;
	q->nb_sub = pow2_floor((unsigned)(size ? size : 1));
	v->next = idxd_list;
	idxd_list = v;
	UPMD_INFO(DSA_LOG, "%s: dmadev %d on %s (%s WQ, %lu entries, SVA)", name, v->dev->dev_id, path, mode, size);
	return 0;

err_unmap:
	upmd_k_munmap(portal, UPMD_DSA_PORTAL_SIZE);
err_close:
	upmd_k_close(fd);
	return rc;
}

static void idxd_remove(const char *name)
{
	for (struct idxd_vdev **pp = &idxd_list; *pp; pp = &(*pp)->next) {
		struct idxd_vdev *v = *pp;

		if (strcmp(v->name, name))
			continue;
		upmd_dma_close(v->dev->dev_id);
		upmd_dma_dev_release(v->dev);
		upmd_k_munmap(v->portal, UPMD_DSA_PORTAL_SIZE);
		upmd_k_close(v->fd);
		*pp = v->next;
		free(v);
		return;
	}
}

static struct upmd_vdev_driver idxd_vdev_driver = {
	.name = DSA_IDXD_DRIVER_NAME,
	.usage = "wq=/dev/dsa/wqD.Q",
	.probe = idxd_probe,
	.remove = idxd_remove,
};

UPMD_VDEV_REGISTER_DRIVER(idxd_vdev_driver)
