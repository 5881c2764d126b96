/* Device model of an Intel DSA 1.0 (8086:0b25): BAR0 capabilities, configuration tables and commands, BAR2 portals, dedicated and shared WQs, and the descriptor engine (memmove, fill, compare, compare pattern, CRC32C, copy+CRC, dualcast, batch, drain, no-op). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/dsa.h>

#include "model_private.h"

/*
 * What the driver sees (Intel DSA Architecture Specification 1.0; the
 * field encodings are in include/upmd/dsa.h):
 *
 *  - 8086:0b25, class 088000, PCI Express, function reset, PASID (20
 *    bits), MSI-X with 1 + wqs vectors: vector 0 for errors and commands
 *    (INTCAUSE), vector N for completion interrupts with handle N.
 *  - BAR0, 64-bit, 16 KiB, trapped: registers from 0, GRPCFG at 0x400,
 *    WQCFG at 0x800 (32-byte entries), the MSI-X permission table at
 *    0x1000, the MSI-X table at 0x2000 and its PBA at 0x3000.
 *  - BAR2, 64-bit prefetchable, 128 KiB: 4 portal pages a WQ for up to 8
 *    WQs. NOT trapped: plain shared memory the device thread watches.
 *  - Capabilities: wqs (default 4, 1..8) WQs sharing wq_size (default
 *    128) entries, dedicated and shared mode, 2 groups, 4 engines, max
 *    transfer 2^31 bytes, max batch 2^10 = 1024 descriptors (SPR's
 *    values), overlapping memmove, cache control. No block-on-fault (no
 *    page requests in the model: every fault is reported), no IMS, no
 *    read-buffer control, no event log, no CMDCAP.
 *  - OPCAP: no-op, batch, drain, memmove, fill, compare, compare pattern,
 *    dualcast, CRC generation, copy with CRC. CRC is CRC-32C (the
 *    reflected Castagnoli polynomial 0x82f63b78), computed as zlib-style
 *    crc32c(seed, data): the seed is inverted on entry and the result on
 *    exit, so seed 0 gives the standard CRC-32C and a result may be fed
 *    back as the seed of the next piece. (Which inversion the hardware
 *    applies is the model's choice here; a driver passes seeds through.)
 *
 * Registers. BAR0 accesses trap: a load gets its bytes from the model's
 * register image (dsa_read), a store goes to dsa_write, which applies it to
 * the image by the register's rules (configuration only while disabled,
 * RW1C bits, read-only ones ignored) and, for CMD, marks CMDSTATUS active
 * at once and leaves the command to the device thread, which clears
 * ACTIVE with the result: the driver writes CMD and polls CMDSTATUS until
 * ACTIVE is clear, as on hardware. The hooks run in a signal handler on
 * the driver's thread: they take no lock and touch the image with atomic
 * 32/64-bit accesses only. Without traps (UPMD_MODEL_NO_TRAP) the image
 * is published into BAR memory and the device thread picks up stores to
 * CMD (which then reads back 0 once taken), GENCFG, GENCTRL, GRPCFG and
 * WQCFG from there; RW1C registers (INTCAUSE, SWERR) cannot be cleared
 * and CMDSTATUS.ACTIVE shows only once the thread saw the CMD store, so
 * a driver polling it right away may read the previous result: partial
 * support, drivers and tests need traps.
 *
 * Submission, dedicated WQ. On hardware a descriptor is one 64-byte
 * posted write (MOVDIR64B) anywhere in one of the WQ's portal pages; the
 * device takes it in as a unit and the write leaves nothing readable
 * behind. The model cannot see a posted write to untrapped memory, and a
 * trapped one would be decoded a word at a time, so a portal page is a
 * ring of 64 slots of 64 bytes that the device thread polls:
 *
 *   - only the WQ's first portal page (unlimited, MSI-X:
 *     UPMD_DSA_PORTAL_OFFSET(wq, 0, 0)) is watched;
 *   - the n-th descriptor since the WQ was enabled goes to slot n % 64
 *     (byte offset 64 * (n % 64)); real hardware accepts any offset in
 *     the page, so the same rotation is right on both;
 *   - the descriptor's first qword (PASID dword + opcode/flags dword) is
 *     written last, with release ordering (or all 64 bytes at once with
 *     MOVDIR64B); the device takes a slot when that qword is non-zero,
 *     so a descriptor whose first qword is 0 (a no-op without flags,
 *     which has no effect anyway) is never seen;
 *   - the device copies the slot, then zeroes it (first qword last) and
 *     executes the copy: a slot is free again when its first qword reads
 *     0. A driver keeps at most min(WQ size, 64) descriptors outstanding
 *     (submitted and not completed), which on the model also guarantees
 *     the slot is free; reading it back is allowed on the model only.
 *
 * Submission, shared WQ: ENQCMD, which this machine does not have, is
 * upmd_model_dsa_enqcmd(): accepted (0) while the WQ's occupancy is below
 * its WQCFG threshold, else retry (1, ENQCMD's ZF=1); also retry when the
 * device or the WQ is not enabled. The PASID comes from the caller (a
 * CPU's IA32_PASID). Portal writes to a shared WQ are ignored.
 *
 * Execution: the device thread runs descriptors one at a time, in order
 * per WQ, the WQs taking turns; all memory access is DMA with the
 * descriptor's PASID (a dedicated WQ's WQCFG PASID when PASID_EN, else
 * none; a shared WQ's from the ENQCMD), page by page so that a fault
 * stops an operation where it happened: status page fault (bit 7 set
 * for a write), fault_addr, bytes_completed, memory beyond untouched. The
 * completion record is written when RCR is set, or on any failure when
 * CRAV is set, bytes 1..31 first and status last; a failure without CRAV,
 * or a record that cannot be written (its address unaligned, unmapped or
 * its PASID not attached: then nothing the device could write reaches
 * memory), goes to SWERR with INTCAUSE.SWERR (and vector 0 with
 * GENCTRL.SWERR_INT_EN). RCI signals MSI-X vector int_handle.
 */

#define DSA_BAR0 UPMD_DSA_BAR_MMIO
#define DSA_BAR2 UPMD_DSA_BAR_PORTAL
#define BAR0_SIZE 0x4000u
#define BAR2_SIZE 0x20000u
#define OFF_GRPCFG 0x400u
#define OFF_WQCFG 0x800u
#define OFF_MSIX_PERM 0x1000u
#define OFF_MSIX 0x2000u
#define OFF_PBA 0x3000u
#define PG 4096u

#define MAX_WQS 8
#define NGROUPS 2
#define NENGINES 4
#define XFER_SHIFT 31
#define BATCH_SHIFT 10
#define SLOTS (UPMD_DSA_PORTAL_SIZE / 64u)
#define PER_POLL 16			/* descriptors a WQ runs per poll: WQs take turns */
#define GRACE 20000			/* busy polls after the last descriptor: portals do not kick */

#define SUPPORTED_OPS                                                                         \
	((1ULL << UPMD_DSA_OP_NOOP) | (1ULL << UPMD_DSA_OP_BATCH) | (1ULL << UPMD_DSA_OP_DRAIN) | \
	 (1ULL << UPMD_DSA_OP_MEMMOVE) | (1ULL << UPMD_DSA_OP_FILL) |                          \
	 (1ULL << UPMD_DSA_OP_COMPARE) | (1ULL << UPMD_DSA_OP_COMPVAL) |                       \
	 (1ULL << UPMD_DSA_OP_DUALCAST) | (1ULL << UPMD_DSA_OP_CRCGEN) |                       \
	 (1ULL << UPMD_DSA_OP_COPY_CRC))

/* Flags any operation may carry; CR and CRC_READ_SEED depend on the opcode. */
#define GENERIC_FLAGS                                                                       \
	(UPMD_DSA_F_FENCE | UPMD_DSA_F_BOF | UPMD_DSA_F_CRAV | UPMD_DSA_F_RCR | UPMD_DSA_F_RCI | \
	 UPMD_DSA_F_CC | UPMD_DSA_F_ADDR1_TCS | UPMD_DSA_F_ADDR2_TCS | UPMD_DSA_F_ADDR3_TCS |   \
	 UPMD_DSA_F_CR_TCS | UPMD_DSA_F_STORD)

struct sdesc {				/* a descriptor queued in a shared WQ */
	struct upmd_dsa_desc d;
	uint32_t pasid;
};

struct wq {
	bool enabled, dedicated, priv;
	uint32_t pasid;			/* UPMD_MODEL_NO_PASID when PASID_EN is clear */
	unsigned size, thresh;
	uint64_t max_xfer;
	unsigned max_batch;
	unsigned head;			/* dedicated: next portal slot */
	/* shared: the queue ENQCMD fills (q_lock) */
	struct sdesc *ring;
	unsigned rhead, rcount;
};

struct dsa {
	/* From the arguments. */
	unsigned nwqs, total_size;
	bool no_trap;

	/* The register image dsa_read serves (atomic 32/64-bit accesses). */
	_Alignas(8) uint8_t img[BAR0_SIZE];
	_Atomic uint32_t cmd_pending;	/* the CMD value waiting for the thread, 0 none */
	atomic_bool hold;		/* upmd_model_dsa_hold */

	/* Device state (d->lock). */
	uint32_t state;			/* UPMD_DSA_GENSTS_STATE_* */
	struct wq wq[MAX_WQS];
	unsigned rr, idle;
	struct upmd_model_dsa_stats st;
	uint32_t crc_table[256];
	uint32_t last_cmd;		/* untrapped: the CMD bytes last seen */

	pthread_mutex_t q_lock;		/* shared-WQ queues, occupancy */
	bool q_lock_init;

	/* scratch (d->lock) */
	uint8_t a[PG], b[PG];
};

static const struct upmd_model_dev_ops dsa_ops;

/* ---- the register image -------------------------------------------------------------- */

static uint32_t ild32(struct dsa *s, uint64_t off)
{
	return __atomic_load_n((uint32_t *)(void *)(s->img + off), __ATOMIC_ACQUIRE);
}

static uint64_t ild64(struct dsa *s, uint64_t off)
{
	return ild32(s, off) | ((uint64_t)ild32(s, off + 4) << 32);
}

static void ist32(struct upmd_model_dev *d, struct dsa *s, uint64_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)(s->img + off), v, __ATOMIC_RELEASE);
	if (s->no_trap)
		__atomic_store_n((uint32_t *)(void *)(upmd_model_dev_bar(d, DSA_BAR0) + off), v,
				 __ATOMIC_RELEASE);
}

static void ist64(struct upmd_model_dev *d, struct dsa *s, uint64_t off, uint64_t v)
{
	ist32(d, s, off, (uint32_t)v);
	ist32(d, s, off + 4, (uint32_t)(v >> 32));
}

static uint64_t gencap(void)
{
	return UPMD_DSA_GENCAP_OVERLAP_COPY | UPMD_DSA_GENCAP_CC_MEMORY | UPMD_DSA_GENCAP_CC_CACHE |
	       ((uint64_t)XFER_SHIFT << UPMD_DSA_GENCAP_XFER_SHIFT_SHIFT) |
	       ((uint64_t)BATCH_SHIFT << UPMD_DSA_GENCAP_BATCH_SHIFT_SHIFT) |
	       UPMD_DSA_GENCAP_CONFIG_SUPPORT;
}

static uint64_t wqcfg_off(unsigned wq, unsigned dw)
{
	return OFF_WQCFG + (uint64_t)wq * UPMD_DSA_WQCFG_SIZE + dw;
}

static uint64_t grpcfg_off(unsigned g, unsigned byte)
{
	return OFF_GRPCFG + (uint64_t)g * UPMD_DSA_GRPCFG_SIZE + byte;
}

/* Power-on values: capabilities, nothing configured, disabled. */
static void img_init(struct upmd_model_dev *d, struct dsa *s)
{
	uint64_t wqcap = s->total_size | ((uint64_t)s->nwqs << 16) | UPMD_DSA_WQCAP_SHARED_MODE |
			 UPMD_DSA_WQCAP_DEDICATED_MODE | UPMD_DSA_WQCAP_OCCUPANCY;
	uint64_t tbl = (OFF_GRPCFG / UPMD_DSA_TABLE_MULT) |
		       ((uint64_t)(OFF_WQCFG / UPMD_DSA_TABLE_MULT) << 16) |
		       ((uint64_t)(OFF_MSIX_PERM / UPMD_DSA_TABLE_MULT) << 32);
	unsigned i;

	for (i = 0; i < OFF_MSIX; i += 4)
		ist32(d, s, i, 0);
	ist32(d, s, UPMD_DSA_REG_VERSION, UPMD_DSA_VERSION_1_0);
	ist64(d, s, UPMD_DSA_REG_GENCAP, gencap());
	ist64(d, s, UPMD_DSA_REG_WQCAP, wqcap);
	ist64(d, s, UPMD_DSA_REG_GRPCAP, NGROUPS);
	ist64(d, s, UPMD_DSA_REG_ENGCAP, NENGINES);
	ist64(d, s, UPMD_DSA_REG_OPCAP, SUPPORTED_OPS);
	ist64(d, s, UPMD_DSA_REG_TABLE_OFFSET, tbl);
	for (i = 0; i < s->nwqs; i++)
		ist32(d, s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_STATE), UPMD_DSA_WQCFG_MODE_SUPPORT);
	s->last_cmd = 0;
}

/* ---- arguments and config space ------------------------------------------------------- */

static int num_arg(struct upmd_model_dev *d, const char *key, const char *val, unsigned long min,
		   unsigned long max, const char *what, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 0);
	if (errno || end == val || *end || *val == '-' || v < min || v > max) {
		UPMD_ERR(MODEL_LOG, "%s: bad %s '%s' (%s, %lu..%lu)", upmd_model_dev_name(d), key, val,
			 what, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int dsa_arg(struct upmd_model_dev *d, const char *key, const char *val)
{
	struct dsa *s = upmd_model_dev_priv(d);
	unsigned long v = 0;
	int rc;

	if (!strcmp(key, "wqs")) {
		rc = num_arg(d, key, val, 1, MAX_WQS, "work queues", &v);
		if (rc == 0)
			s->nwqs = (unsigned)v;
		return rc;
	}
	if (!strcmp(key, "wq_size")) {
		rc = num_arg(d, key, val, 1, 1024, "WQ entries shared by all WQs", &v);
		if (rc == 0)
			s->total_size = (unsigned)v;
		return rc;
	}
	return -ENOENT;
}

static void defaults(struct dsa *s)
{
	if (!s->nwqs)
		s->nwqs = 4;
	if (!s->total_size)
		s->total_size = 128;
}

static void dsa_config(struct upmd_model_dev *d, struct model_dev_config *cfg)
{
	struct dsa *s = upmd_model_dev_priv(d);

	defaults(s);
	cfg->irq_vectors = (uint16_t)(1 + s->nwqs);
	cfg->msix_table = OFF_MSIX | DSA_BAR0;
	cfg->msix_pba = OFF_PBA | DSA_BAR0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint8_t *portal(struct upmd_model_dev *d, unsigned wq)
{
	return upmd_model_dev_bar(d, DSA_BAR2) + UPMD_DSA_PORTAL_OFFSET(wq, 0, 0);
}

static void portal_clear(struct upmd_model_dev *d, unsigned wq)
{
	uint64_t *p = (uint64_t *)(void *)portal(d, wq);
	unsigned i;

	for (i = 0; i < UPMD_DSA_PORTALS_PER_WQ * UPMD_DSA_PORTAL_SIZE / 8; i++)
		__atomic_store_n(&p[i], 0, __ATOMIC_RELEASE);
}

static void crc_init(struct dsa *s)
{
	unsigned i, k;

	for (i = 0; i < 256; i++) {
		uint32_t c = i;

		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
		s->crc_table[i] = c;
	}
}

/* Raw CRC state (not inverted). */
static uint32_t crc_run(const struct dsa *s, uint32_t c, const uint8_t *p, size_t n)
{
	while (n--)
		c = s->crc_table[(c ^ *p++) & 0xffu] ^ (c >> 8);
	return c;
}

static void raise_misc(struct upmd_model_dev *d, struct dsa *s, uint32_t cause, bool irq)
{
	__atomic_fetch_or((uint32_t *)(void *)(s->img + UPMD_DSA_REG_INTCAUSE), cause, __ATOMIC_ACQ_REL);
	if (s->no_trap)
		ist32(d, s, UPMD_DSA_REG_INTCAUSE, ild32(s, UPMD_DSA_REG_INTCAUSE));
	if (irq)
		upmd_model_irq(d, 0);
}

/* An error no completion record reports. */
struct swerr {
	unsigned wq;
	uint8_t error, op;
	uint32_t pasid;			/* UPMD_MODEL_NO_PASID: none */
	bool batch, write, priv;
	uint16_t batch_idx;
	uint32_t invalid_flags;
	uint64_t fault_addr;
};

static void swerr(struct upmd_model_dev *d, struct dsa *s, const struct swerr *e)
{
	uint64_t *q0 = (uint64_t *)(void *)(s->img + UPMD_DSA_REG_SWERR);
	uint64_t v = __atomic_load_n(q0, __ATOMIC_ACQUIRE);

	s->st.swerrs++;
	if (v & UPMD_DSA_SWERR_VALID) {
		/* The first error stays; the driver learns it missed some. */
		__atomic_fetch_or(q0, UPMD_DSA_SWERR_OVERFLOW, __ATOMIC_ACQ_REL);
	} else {
		v = UPMD_DSA_SWERR_VALID | UPMD_DSA_SWERR_DESC_VALID | UPMD_DSA_SWERR_WQ_IDX_VALID |
		    ((uint64_t)e->error << UPMD_DSA_SWERR_ERROR_SHIFT) |
		    ((uint64_t)e->wq << UPMD_DSA_SWERR_WQ_IDX_SHIFT) |
		    ((uint64_t)e->op << UPMD_DSA_SWERR_OPERATION_SHIFT);
		if (e->pasid != UPMD_MODEL_NO_PASID)
			v |= (uint64_t)(e->pasid & 0xfffffu) << UPMD_DSA_SWERR_PASID_SHIFT;
		if (e->batch)
			v |= UPMD_DSA_SWERR_BATCH;
		if (e->write)
			v |= UPMD_DSA_SWERR_FAULT_RW;
		if (e->priv)
			v |= UPMD_DSA_SWERR_PRIV;
		ist64(d, s, UPMD_DSA_REG_SWERR + 8, e->batch_idx | ((uint64_t)e->invalid_flags << 32));
		ist64(d, s, UPMD_DSA_REG_SWERR + 16, e->fault_addr);
		ist64(d, s, UPMD_DSA_REG_SWERR + 24, 0);
		/* Valid last: a driver that sees it sees the rest. */
		__atomic_store_n(q0, v, __ATOMIC_RELEASE);
	}
	if (s->no_trap)
		ist64(d, s, UPMD_DSA_REG_SWERR, __atomic_load_n(q0, __ATOMIC_ACQUIRE));
	raise_misc(d, s, UPMD_DSA_INTCAUSE_SWERR,
		   ild32(s, UPMD_DSA_REG_GENCTRL) & UPMD_DSA_GENCTRL_SWERR_INT_EN);
}

/* ---- descriptor execution ------------------------------------------------------------------- */

/* What one descriptor came to. */
struct res {
	uint8_t status;			/* with UPMD_DSA_COMP_STATUS_WRITE for a write fault */
	uint8_t result;
	uint32_t bytes;			/* bytes_completed / descs_completed */
	uint64_t fault_addr;
	uint32_t op_specific;		/* crc_val, invalid_flags */
};

/* Where this descriptor came from, for SWERR. */
struct ctx {
	unsigned wq;
	uint32_t pasid;
	bool priv;
	bool in_batch;
	uint16_t batch_idx;
};

static size_t chunk(uint64_t a, uint64_t b, uint64_t left)
{
	uint64_t n = UPMD_MIN(left, (uint64_t)PG - (a & (PG - 1)));

	n = UPMD_MIN(n, (uint64_t)PG - (b & (PG - 1)));
	return (size_t)n;
}

static void fault(struct res *r, uint64_t addr, uint64_t done, bool write)
{
	r->status = UPMD_DSA_COMP_PAGE_FAULT_NOBOF | (write ? UPMD_DSA_COMP_STATUS_WRITE : 0);
	r->fault_addr = addr;
	r->bytes = (uint32_t)done;
}

/*
 * Memmove, dualcast, copy with CRC (and CRC alone when @dst is 0 and
 * !@write): page by page; with @backward (overlap, dst above src) from the
 * end, result 1.
 */
static void do_copy(struct upmd_model_dev *d, struct dsa *s, uint32_t pasid, const struct upmd_dsa_desc *x,
		    uint64_t dst2, bool write, bool crc, uint32_t seed, struct res *r)
{
	uint64_t src = x->src_addr, dst = x->dst_addr, len = x->xfer_size, done = 0;
	bool backward = write && !crc && !dst2 && dst > src && dst < src + len;
	uint32_t c = ~seed;

	if (crc)
		r->op_specific = seed;
	r->result = backward;
	while (done < len) {
		size_t n;
		uint64_t so, dof;

		if (backward) {
			uint64_t end_s = src + len - done, end_d = dst + len - done;
			uint64_t n1 = ((end_s - 1) & (PG - 1)) + 1, n2 = ((end_d - 1) & (PG - 1)) + 1;

			n = (size_t)UPMD_MIN(UPMD_MIN(n1, n2), len - done);
			so = end_s - n;
			dof = end_d - n;
		} else {
			n = chunk(src + done, write ? dst + done : src + done, len - done);
			if (dst2)
				n = UPMD_MIN(n, chunk(dst2 + done, dst2 + done, len - done));
			so = src + done;
			dof = dst + done;
		}
		if (upmd_model_dma_read(d, pasid, so, s->a, n) < 0) {
			fault(r, so, done, false);
			return;
		}
		if (write && upmd_model_dma_write(d, pasid, dof, s->a, n) < 0) {
			fault(r, dof, done, true);
			return;
		}
		if (dst2 && upmd_model_dma_write(d, pasid, dst2 + done, s->a, n) < 0) {
			fault(r, dst2 + done, done, true);
			return;
		}
		if (crc) {
			c = crc_run(s, c, s->a, n);
			/* After a fault: the CRC of what was done, a seed to resume with. */
			r->op_specific = ~c;
		}
		done += n;
		s->st.bytes += n;
	}
	r->bytes = 0;
	r->status = UPMD_DSA_COMP_SUCCESS;
}

static void do_fill(struct upmd_model_dev *d, struct dsa *s, uint32_t pasid, const struct upmd_dsa_desc *x,
		    struct res *r)
{
	uint64_t dst = x->dst_addr, len = x->xfer_size, done = 0, pat = x->pattern;
	unsigned i;

	for (i = 0; i < PG; i++)
		s->a[i] = (uint8_t)(pat >> (8 * (i % 8)));
	while (done < len) {
		size_t n = chunk(dst + done, dst + done, len - done);
		/* The pattern runs on from the start of the destination. */
		unsigned ph = (unsigned)(done % 8);

		if (upmd_model_dma_write(d, pasid, dst + done, s->a + ph, n) < 0) {
			fault(r, dst + done, done, true);
			return;
		}
		done += n;
		s->st.bytes += n;
	}
	r->status = UPMD_DSA_COMP_SUCCESS;
}

/* Compare (@pattern false: src with src2) or compare pattern. */
static void do_compare(struct upmd_model_dev *d, struct dsa *s, uint32_t pasid, const struct upmd_dsa_desc *x,
		       uint32_t flags, bool pattern, struct res *r)
{
	uint64_t s1 = x->src_addr, s2 = x->src2_addr, len = x->xfer_size, done = 0;

	r->result = 0;
	while (done < len) {
		size_t n = chunk(s1 + done, pattern ? s1 + done : s2 + done, len - done), k;
		const uint8_t *want;

		if (upmd_model_dma_read(d, pasid, s1 + done, s->a, n) < 0) {
			fault(r, s1 + done, done, false);
			return;
		}
		if (pattern) {
			/* The pattern runs on from the start of the source. */
			unsigned ph = (unsigned)(done % 8);

			for (k = 0; k < n; k++)
				if (s->a[k] != (uint8_t)(x->comp_pattern >> (8 * ((ph + k) % 8))))
					break;
		} else {
			if (upmd_model_dma_read(d, pasid, s2 + done, s->b, n) < 0) {
				fault(r, s2 + done, done, false);
				return;
			}
			want = s->b;
			for (k = 0; k < n && s->a[k] == want[k]; k++)
				;
		}
		s->st.bytes += k;
		if (k < n) {
			r->result = 1;
			done += k;
			break;
		}
		done += n;
	}
	r->bytes = r->result ? (uint32_t)done : 0;
	r->status = UPMD_DSA_COMP_SUCCESS;
	if ((flags & UPMD_DSA_F_CR) && r->result != (x->expected_res & 1u))
		r->status = UPMD_DSA_COMP_SUCCESS_PRED;
}

static bool ok_status(uint8_t st)
{
	return st == UPMD_DSA_COMP_SUCCESS || st == UPMD_DSA_COMP_SUCCESS_PRED;
}

static uint8_t run_desc(struct upmd_model_dev *d, struct dsa *s, const struct upmd_dsa_desc *x,
			const struct ctx *c);

static void do_batch(struct upmd_model_dev *d, struct dsa *s, const struct upmd_dsa_desc *x,
		     const struct ctx *c, struct res *r)
{
	uint32_t i, n = x->desc_count;
	bool failed = false;

	s->st.batches++;
	for (i = 0; i < n; i++) {
		struct upmd_dsa_desc in;
		struct ctx ic = *c;

		if (upmd_model_dma_read(d, c->pasid, x->desc_list_addr + (uint64_t)i * 64, &in,
					sizeof(in)) < 0) {
			r->status = UPMD_DSA_COMP_BATCH_PAGE_FAULT;
			r->fault_addr = x->desc_list_addr + (uint64_t)i * 64;
			r->bytes = i;
			return;
		}
		/* A fence waits for the earlier ones, all done here; after a
		 * failure it abandons the rest of the batch. */
		if ((UPMD_DSA_DESC_FLAGS(in.op_flags) & UPMD_DSA_F_FENCE) && failed)
			break;
		ic.in_batch = true;
		ic.batch_idx = (uint16_t)i;
		/* Anything but plain success fails the batch (a false
		 * predicate too: that is what a fence after a compare is for). */
		if (run_desc(d, s, &in, &ic) != UPMD_DSA_COMP_SUCCESS)
			failed = true;
	}
	r->bytes = i;
	r->status = failed ? UPMD_DSA_COMP_BATCH_FAIL : UPMD_DSA_COMP_SUCCESS;
}

/* Checks before anything moves; 0 or the status that refuses it. */
static uint8_t check(struct dsa *s, const struct upmd_dsa_desc *x, const struct ctx *c, struct res *r)
{
	unsigned op = UPMD_DSA_DESC_OPCODE(x->op_flags);
	uint32_t flags = UPMD_DSA_DESC_FLAGS(x->op_flags), allowed = GENERIC_FLAGS;
	const struct wq *w = &s->wq[c->wq];
	bool data = op != UPMD_DSA_OP_NOOP && op != UPMD_DSA_OP_BATCH && op != UPMD_DSA_OP_DRAIN;

	if (op >= 64 || !(SUPPORTED_OPS & (1ULL << op)))
		return UPMD_DSA_COMP_BAD_OPCODE;
	if (c->in_batch && (op == UPMD_DSA_OP_BATCH || op == UPMD_DSA_OP_DRAIN))
		return UPMD_DSA_COMP_BAD_OPCODE;
	if (op == UPMD_DSA_OP_COMPARE || op == UPMD_DSA_OP_COMPVAL)
		allowed |= UPMD_DSA_F_CR;
	if (op == UPMD_DSA_OP_CRCGEN || op == UPMD_DSA_OP_COPY_CRC)
		allowed |= UPMD_DSA_F_CRC_READ_SEED;
	if ((flags & ~allowed) || ((flags & UPMD_DSA_F_RCR) && !(flags & UPMD_DSA_F_CRAV))) {
		r->op_specific = flags & ~allowed;
		if (!r->op_specific)
			r->op_specific = UPMD_DSA_F_RCR;
		return UPMD_DSA_COMP_INVALID_FLAGS;
	}
	if (x->rsvd1)
		return UPMD_DSA_COMP_NOZERO_RESERVE;
	if (data && (x->xfer_size == 0 || x->xfer_size > w->max_xfer))
		return UPMD_DSA_COMP_XFER_ERANGE;
	if (op == UPMD_DSA_OP_BATCH) {
		if (x->desc_count < 2 || x->desc_count > w->max_batch)
			return UPMD_DSA_COMP_DESC_CNT_ERANGE;
		if (x->desc_list_addr & (UPMD_DSA_DESC_ALIGN - 1))
			return UPMD_DSA_COMP_DESCLIST_ALIGN;
	}
	if (op == UPMD_DSA_OP_DUALCAST && ((x->dst_addr ^ x->dest2) & 0xfffu))
		return UPMD_DSA_COMP_DCAST_ERR;
	if (op == UPMD_DSA_OP_COPY_CRC || op == UPMD_DSA_OP_DUALCAST) {
		uint64_t a = x->src_addr, b = x->dst_addr, n = x->xfer_size;

		if (a < b + n && b < a + n)
			return UPMD_DSA_COMP_OVERLAP_BUFFERS;
		if (op == UPMD_DSA_OP_DUALCAST && ((a < x->dest2 + n && x->dest2 < a + n) ||
						   (b < x->dest2 + n && x->dest2 < b + n)))
			return UPMD_DSA_COMP_OVERLAP_BUFFERS;
	}
	return 0;
}

static void complete(struct upmd_model_dev *d, struct dsa *s, const struct upmd_dsa_desc *x,
		     const struct ctx *c, const struct res *r)
{
	uint32_t flags = UPMD_DSA_DESC_FLAGS(x->op_flags);
	uint8_t code = UPMD_DSA_COMP_STATUS(r->status);
	bool failed = !ok_status(code);
	struct swerr e = {
		.wq = c->wq, .op = (uint8_t)UPMD_DSA_DESC_OPCODE(x->op_flags), .pasid = c->pasid,
		.batch = c->in_batch, .batch_idx = c->batch_idx, .priv = c->priv,
	};

	if (failed)
		s->st.errors++;
	if (code == UPMD_DSA_COMP_PAGE_FAULT_NOBOF || code == UPMD_DSA_COMP_BATCH_PAGE_FAULT)
		s->st.page_faults++;
	if ((flags & UPMD_DSA_F_CRAV) && ((flags & UPMD_DSA_F_RCR) || failed ||
					  code == UPMD_DSA_COMP_SUCCESS_PRED)) {
		struct upmd_dsa_cr cr;

		memset(&cr, 0, sizeof(cr));
		cr.status = r->status;
		cr.result = r->result;
		cr.bytes_completed = r->bytes;
		cr.fault_addr = r->fault_addr;
		cr.crc_val = r->op_specific;
		if (x->completion_addr & (UPMD_DSA_CR_ALIGN - 1)) {
			e.error = UPMD_DSA_COMP_CRA_ALIGN;
			e.fault_addr = x->completion_addr;
			swerr(d, s, &e);
			return;
		}
		/* Status last: a driver polling it sees a whole record. */
		if (upmd_model_dma_write(d, c->pasid, x->completion_addr + 1, (uint8_t *)&cr + 1,
					 sizeof(cr) - 1) < 0 ||
		    upmd_model_dma_write(d, c->pasid, x->completion_addr, &cr.status, 1) < 0) {
			if (!failed)
				s->st.errors++;
			e.error = UPMD_DSA_COMP_CRA_XLAT;
			e.write = true;
			e.fault_addr = x->completion_addr;
			swerr(d, s, &e);
			return;
		}
	} else if (failed) {
		e.error = code;
		e.write = r->status & UPMD_DSA_COMP_STATUS_WRITE;
		e.fault_addr = r->fault_addr;
		if (code == UPMD_DSA_COMP_INVALID_FLAGS)
			e.invalid_flags = r->op_specific;
		swerr(d, s, &e);
		return;
	}
	if ((flags & UPMD_DSA_F_RCI) && x->int_handle > 0)
		upmd_model_irq(d, x->int_handle);
}

/* Run one descriptor; the status code it completed with. */
static uint8_t run_desc(struct upmd_model_dev *d, struct dsa *s, const struct upmd_dsa_desc *x,
			const struct ctx *c)
{
	unsigned op = UPMD_DSA_DESC_OPCODE(x->op_flags);
	uint32_t flags = UPMD_DSA_DESC_FLAGS(x->op_flags);
	struct res r;
	uint8_t bad;

	memset(&r, 0, sizeof(r));
	s->st.descs++;
	bad = check(s, x, c, &r);
	if (bad) {
		r.status = bad;
	} else {
		switch (op) {
		case UPMD_DSA_OP_NOOP:
		case UPMD_DSA_OP_DRAIN:	/* descriptors run in order: nothing is pending */
			r.status = UPMD_DSA_COMP_SUCCESS;
			break;
		case UPMD_DSA_OP_BATCH:
			do_batch(d, s, x, c, &r);
			break;
		case UPMD_DSA_OP_MEMMOVE:
			do_copy(d, s, c->pasid, x, 0, true, false, 0, &r);
			break;
		case UPMD_DSA_OP_DUALCAST:
			do_copy(d, s, c->pasid, x, x->dest2, true, false, 0, &r);
			break;
		case UPMD_DSA_OP_FILL:
			do_fill(d, s, c->pasid, x, &r);
			break;
		case UPMD_DSA_OP_COMPARE:
		case UPMD_DSA_OP_COMPVAL:
			do_compare(d, s, c->pasid, x, flags, op == UPMD_DSA_OP_COMPVAL, &r);
			break;
		case UPMD_DSA_OP_CRCGEN:
		case UPMD_DSA_OP_COPY_CRC: {
			uint32_t seed = x->crc_seed;

			if ((flags & UPMD_DSA_F_CRC_READ_SEED) &&
			    upmd_model_dma_read(d, c->pasid, x->crc_seed_addr, &seed, 4) < 0) {
				fault(&r, x->crc_seed_addr, 0, false);
				break;
			}
			do_copy(d, s, c->pasid, x, 0, op == UPMD_DSA_OP_COPY_CRC, true, seed, &r);
			break;
		}
		default:
			r.status = UPMD_DSA_COMP_BAD_OPCODE;
			break;
		}
	}
	complete(d, s, x, c, &r);
	return UPMD_DSA_COMP_STATUS(r.status);
}

/* ---- work queues ---------------------------------------------------------------------------- */

/* Take the next descriptor of WQ @i, if any: 1 taken, 0 none. */
static int wq_take(struct upmd_model_dev *d, struct dsa *s, unsigned i, struct upmd_dsa_desc *x,
		   uint32_t *pasid)
{
	struct wq *w = &s->wq[i];

	if (w->dedicated) {
		uint64_t *slot = (uint64_t *)(void *)(portal(d, i) + (size_t)(w->head % SLOTS) * 64);
		uint64_t q0 = __atomic_load_n(&slot[0], __ATOMIC_ACQUIRE);
		unsigned k;

		if (!q0)
			return 0;
		memcpy(x, &q0, 8);
		for (k = 1; k < 8; k++) {
			uint64_t v = __atomic_load_n(&slot[k], __ATOMIC_RELAXED);

			memcpy((uint8_t *)x + 8 * k, &v, 8);
		}
		for (k = 1; k < 8; k++)
			__atomic_store_n(&slot[k], 0, __ATOMIC_RELAXED);
		/* Free only once every byte is taken (release). */
		__atomic_store_n(&slot[0], 0, __ATOMIC_RELEASE);
		w->head++;
		*pasid = w->pasid;
		return 1;
	}
	pthread_mutex_lock(&s->q_lock);
	if (!w->rcount) {
		pthread_mutex_unlock(&s->q_lock);
		return 0;
	}
	*x = w->ring[w->rhead].d;
	*pasid = w->ring[w->rhead].pasid;
	w->rhead = (w->rhead + 1) % w->size;
	w->rcount--;
	pthread_mutex_unlock(&s->q_lock);
	return 1;
}

static void publish_occupancy(struct upmd_model_dev *d, struct dsa *s, unsigned i)
{
	uint32_t st = UPMD_DSA_WQCFG_MODE_SUPPORT;
	struct wq *w = &s->wq[i];

	if (w->enabled)
		st |= UPMD_DSA_WQ_STATE_ENABLED << 30;
	pthread_mutex_lock(&s->q_lock);
	if (w->enabled && !w->dedicated)
		st |= w->rcount & 0xffffu;
	pthread_mutex_unlock(&s->q_lock);
	ist32(d, s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_STATE), st);
}

/* Up to @max descriptors of WQ @i; @drain: even while held. */
static int wq_run(struct upmd_model_dev *d, struct dsa *s, unsigned i, unsigned max, bool drain)
{
	struct upmd_dsa_desc x;
	uint32_t pasid;
	unsigned n = 0;

	while (n < max && (drain || !atomic_load(&s->hold)) && wq_take(d, s, i, &x, &pasid)) {
		struct ctx c = { .wq = i, .pasid = pasid, .priv = s->wq[i].priv };

		run_desc(d, s, &x, &c);
		n++;
	}
	if (n && !s->wq[i].dedicated)
		publish_occupancy(d, s, i);
	return n > 0;
}

/* Drop what is queued (abort): no completion records. */
static void wq_abort(struct upmd_model_dev *d, struct dsa *s, unsigned i, bool by_pasid, uint32_t pasid)
{
	struct wq *w = &s->wq[i];
	unsigned k;

	if (!w->enabled)
		return;
	if (w->dedicated) {
		if (by_pasid && w->pasid != pasid)
			return;
		while (1) {
			uint64_t *slot = (uint64_t *)(void *)(portal(d, i) + (size_t)(w->head % SLOTS) * 64);

			if (!__atomic_load_n(&slot[0], __ATOMIC_ACQUIRE))
				break;
			for (k = 0; k < 8; k++)
				__atomic_store_n(&slot[k], 0, __ATOMIC_RELEASE);
			w->head++;
			s->st.aborted++;
		}
		return;
	}
	pthread_mutex_lock(&s->q_lock);
	if (!by_pasid) {
		s->st.aborted += w->rcount;
		w->rcount = 0;
	} else {
		/* Keep the others in order. */
		unsigned n = w->rcount, kept = 0;

		for (k = 0; k < n; k++) {
			struct sdesc e = w->ring[(w->rhead + k) % w->size];

			if (e.pasid == pasid)
				s->st.aborted++;
			else
				w->ring[(w->rhead + kept++) % w->size] = e;
		}
		w->rcount = kept;
	}
	pthread_mutex_unlock(&s->q_lock);
	publish_occupancy(d, s, i);
}

static void wq_drain(struct upmd_model_dev *d, struct dsa *s, unsigned i)
{
	if (s->wq[i].enabled && upmd_model_dev_bus_master(d))
		while (wq_run(d, s, i, SLOTS, true))
			;
}

static void wq_disable(struct upmd_model_dev *d, struct dsa *s, unsigned i)
{
	struct wq *w = &s->wq[i];

	pthread_mutex_lock(&s->q_lock);
	w->enabled = false;
	w->rcount = 0;
	pthread_mutex_unlock(&s->q_lock);
	portal_clear(d, i);
	publish_occupancy(d, s, i);
}

/* ---- commands ---------------------------------------------------------------------------------- */

static uint64_t grp_wqs(struct dsa *s, unsigned g)
{
	return ild64(s, grpcfg_off(g, UPMD_DSA_GRPCFG_WQS));
}

static uint64_t grp_engines(struct dsa *s, unsigned g)
{
	return ild64(s, grpcfg_off(g, UPMD_DSA_GRPCFG_ENGINES));
}

static uint32_t cmd_enable_device(struct upmd_model_dev *d, struct dsa *s)
{
	unsigned i, g, total = 0;
	uint64_t engines_seen = 0;

	if (s->state != UPMD_DSA_GENSTS_STATE_DISABLED)
		return UPMD_DSA_CMDSTS_ERR_DEV_ENABLED;
	if (!upmd_model_dev_bus_master(d))
		return UPMD_DSA_CMDSTS_ERR_BUSMASTER_EN;
	for (i = 0; i < s->nwqs; i++)
		total += ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_SIZE)) & UPMD_DSA_WQCFG_SIZE_MASK;
	if (total > s->total_size)
		return UPMD_DSA_CMDSTS_ERR_WQ_SIZE_ERANGE;
	for (g = 0; g < NGROUPS; g++) {
		uint64_t e = grp_engines(s, g), w = grp_wqs(s, g);

		/* Only the WQs and engines that exist. */
		if ((w & ~((1ULL << s->nwqs) - 1)) || ild64(s, grpcfg_off(g, 8)) ||
		    ild64(s, grpcfg_off(g, 16)) || ild64(s, grpcfg_off(g, 24)) ||
		    (e & ~((1ULL << NENGINES) - 1)))
			return UPMD_DSA_CMDSTS_ERR_GRP_CONFIG;
		if (e & engines_seen)
			return UPMD_DSA_CMDSTS_ERR_GRP_CONFIG3;
		engines_seen |= e;
		if (w && !e)
			return UPMD_DSA_CMDSTS_ERR_GRP_CONFIG2;
	}
	for (i = 0; i < s->nwqs; i++) {
		unsigned in = 0;

		for (g = 0; g < NGROUPS; g++)
			in += (grp_wqs(s, g) >> i) & 1;
		if (in > 1)
			return UPMD_DSA_CMDSTS_ERR_GRP_CONFIG;
		if (!in && (ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_SIZE)) & UPMD_DSA_WQCFG_SIZE_MASK))
			return UPMD_DSA_CMDSTS_ERR_GRP_CONFIG;
	}
	s->state = UPMD_DSA_GENSTS_STATE_ENABLED;
	ist32(d, s, UPMD_DSA_REG_GENSTS, s->state);
	return UPMD_DSA_CMDSTS_SUCCESS;
}

static uint32_t cmd_enable_wq(struct upmd_model_dev *d, struct dsa *s, unsigned i)
{
	uint32_t size, thr, mode, lim;
	struct wq *w;
	struct sdesc *ring;

	if (s->state != UPMD_DSA_GENSTS_STATE_ENABLED)
		return UPMD_DSA_CMDSTS_ERR_DEV_NOTEN;
	if (i >= s->nwqs)
		return UPMD_DSA_CMDSTS_INVAL_WQIDX;
	w = &s->wq[i];
	if (w->enabled)
		return UPMD_DSA_CMDSTS_ERR_WQ_ENABLED;
	size = ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_SIZE)) & UPMD_DSA_WQCFG_SIZE_MASK;
	thr = ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_THRESHOLD)) & UPMD_DSA_WQCFG_THRESHOLD_MASK;
	mode = ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_MODE));
	lim = ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_LIMITS));
	if (size == 0)
		return UPMD_DSA_CMDSTS_ERR_WQ_SIZE;
	if (!(mode & UPMD_DSA_WQCFG_MODE_DEDICATED) && thr > size)
		return UPMD_DSA_CMDSTS_ERR_WQ_SIZE;
	if (UPMD_DSA_WQCFG_GET_PRIORITY(mode) == 0)
		return UPMD_DSA_CMDSTS_ERR_WQ_PRIOR;
	if (mode & UPMD_DSA_WQCFG_BOF_EN)
		return UPMD_DSA_CMDSTS_ERR_BOF_EN;	/* GENCAP.BOF is 0 */
	if (!(mode & UPMD_DSA_WQCFG_MODE_DEDICATED) && !(mode & UPMD_DSA_WQCFG_PASID_EN))
		return UPMD_DSA_CMDSTS_ERR_PASID_EN;	/* a shared WQ needs PASIDs */
	if (UPMD_DSA_WQCFG_GET_MAX_BATCH_SHIFT(lim) > BATCH_SHIFT)
		return UPMD_DSA_CMDSTS_ERR_MAX_BATCH_SIZE;
	if (UPMD_DSA_WQCFG_GET_MAX_XFER_SHIFT(lim) > XFER_SHIFT)
		return UPMD_DSA_CMDSTS_ERR_MAX_XFER_SIZE;
	ring = NULL;
	if (!(mode & UPMD_DSA_WQCFG_MODE_DEDICATED)) {
		ring = calloc(size, sizeof(*ring));
		if (!ring)
			return UPMD_DSA_CMDSTS_HW_ERR;
	}
	pthread_mutex_lock(&s->q_lock);
	free(w->ring);
	w->ring = ring;
	w->rhead = w->rcount = 0;
	w->size = size;
	w->thresh = thr;
	w->dedicated = mode & UPMD_DSA_WQCFG_MODE_DEDICATED;
	w->priv = mode & UPMD_DSA_WQCFG_PRIV;
	w->pasid = (mode & UPMD_DSA_WQCFG_PASID_EN) ? UPMD_DSA_WQCFG_GET_PASID(mode) : UPMD_MODEL_NO_PASID;
	/* Shift 0: the device's maximum. */
	w->max_xfer = 1ULL << (UPMD_DSA_WQCFG_GET_MAX_XFER_SHIFT(lim) ? UPMD_DSA_WQCFG_GET_MAX_XFER_SHIFT(lim)
									: XFER_SHIFT);
	w->max_batch = 1u << (UPMD_DSA_WQCFG_GET_MAX_BATCH_SHIFT(lim) ? UPMD_DSA_WQCFG_GET_MAX_BATCH_SHIFT(lim)
								      : BATCH_SHIFT);
	w->head = 0;
	w->enabled = true;
	pthread_mutex_unlock(&s->q_lock);
	portal_clear(d, i);
	publish_occupancy(d, s, i);
	return UPMD_DSA_CMDSTS_SUCCESS;
}

/* The WQs a Disable/Drain/Abort/Reset WQ operand names; 0 if it names one that does not exist. */
static uint32_t wq_set(struct dsa *s, uint32_t operand)
{
	uint32_t block = (operand >> 16) & 0xfu, bits = operand & 0xffffu, set = 0;
	unsigned k;

	for (k = 0; k < 16; k++) {
		unsigned i = block * 16 + k;

		if (!(bits & (1u << k)))
			continue;
		if (i >= s->nwqs)
			return 0;
		set |= 1u << i;
	}
	return set;
}

static void wqcfg_reset(struct upmd_model_dev *d, struct dsa *s, unsigned i)
{
	unsigned dw;

	for (dw = 0; dw < UPMD_DSA_WQCFG_DW_STATE; dw += 4)
		ist32(d, s, wqcfg_off(i, dw), 0);
}

static void config_reset(struct upmd_model_dev *d, struct dsa *s)
{
	unsigned i;

	for (i = 0; i < NGROUPS * UPMD_DSA_GRPCFG_SIZE; i += 4)
		ist32(d, s, OFF_GRPCFG + i, 0);
	for (i = 0; i < s->nwqs; i++)
		wqcfg_reset(d, s, i);
	ist32(d, s, UPMD_DSA_REG_GENCFG, 0);
}

static void disable_all(struct upmd_model_dev *d, struct dsa *s, bool drain)
{
	unsigned i;

	for (i = 0; i < s->nwqs; i++) {
		if (drain)
			wq_drain(d, s, i);
		else
			wq_abort(d, s, i, false, 0);
		if (s->wq[i].enabled)
			wq_disable(d, s, i);
	}
	s->state = UPMD_DSA_GENSTS_STATE_DISABLED;
	ist32(d, s, UPMD_DSA_REG_GENSTS, s->state);
}

static uint32_t command(struct upmd_model_dev *d, struct dsa *s, uint32_t v)
{
	uint32_t op = UPMD_DSA_CMD_OPERAND(v), set;
	unsigned code = UPMD_DSA_CMD_CODE(v), i;
	bool en = s->state == UPMD_DSA_GENSTS_STATE_ENABLED;

	s->st.cmds++;
	switch (code) {
	case UPMD_DSA_CMD_ENABLE_DEVICE:
		return cmd_enable_device(d, s);
	case UPMD_DSA_CMD_DISABLE_DEVICE:
		if (!en)
			return UPMD_DSA_CMDSTS_ERR_DIS_DEV_EN;
		disable_all(d, s, true);
		return UPMD_DSA_CMDSTS_SUCCESS;
	case UPMD_DSA_CMD_DRAIN_ALL:
	case UPMD_DSA_CMD_ABORT_ALL:
	case UPMD_DSA_CMD_DRAIN_PASID:
	case UPMD_DSA_CMD_ABORT_PASID:
		if (!en)
			return UPMD_DSA_CMDSTS_ERR_DEV_NOT_EN;
		for (i = 0; i < s->nwqs; i++) {
			if (code == UPMD_DSA_CMD_DRAIN_ALL || code == UPMD_DSA_CMD_DRAIN_PASID)
				wq_drain(d, s, i);
			else
				wq_abort(d, s, i, code == UPMD_DSA_CMD_ABORT_PASID, op);
		}
		return UPMD_DSA_CMDSTS_SUCCESS;
	case UPMD_DSA_CMD_RESET_DEVICE:
		disable_all(d, s, false);
		config_reset(d, s);
		for (i = 0; i < 4; i++)
			ist64(d, s, UPMD_DSA_REG_SWERR + 8 * i, 0);
		return UPMD_DSA_CMDSTS_SUCCESS;
	case UPMD_DSA_CMD_ENABLE_WQ:
		return cmd_enable_wq(d, s, op);
	case UPMD_DSA_CMD_DISABLE_WQ:
	case UPMD_DSA_CMD_DRAIN_WQ:
	case UPMD_DSA_CMD_ABORT_WQ:
	case UPMD_DSA_CMD_RESET_WQ:
		if (!en)
			return UPMD_DSA_CMDSTS_ERR_DEV_NOT_EN;
		set = wq_set(s, op);
		if (!set)
			return UPMD_DSA_CMDSTS_INVAL_WQIDX;
		for (i = 0; i < s->nwqs; i++) {
			if (!(set & (1u << i)))
				continue;
			if (code == UPMD_DSA_CMD_DISABLE_WQ || code == UPMD_DSA_CMD_DRAIN_WQ)
				wq_drain(d, s, i);
			else
				wq_abort(d, s, i, false, 0);
			if (code == UPMD_DSA_CMD_DISABLE_WQ || code == UPMD_DSA_CMD_RESET_WQ)
				if (s->wq[i].enabled)
					wq_disable(d, s, i);
			if (code == UPMD_DSA_CMD_RESET_WQ)
				wqcfg_reset(d, s, i);
		}
		return UPMD_DSA_CMDSTS_SUCCESS;
	default:
		/* Interrupt handles (IMS) and unknown codes. */
		return UPMD_DSA_CMDSTS_INVAL_CMD;
	}
}

/* Untrapped: take what the driver stored into BAR memory. */
static void no_trap_upkeep(struct upmd_model_dev *d, struct dsa *s)
{
	uint8_t *bar = upmd_model_dev_bar(d, DSA_BAR0);
	uint32_t v = __atomic_load_n((uint32_t *)(void *)(bar + UPMD_DSA_REG_CMD), __ATOMIC_ACQUIRE);
	unsigned i, k;

#define BAR32(o) __atomic_load_n((uint32_t *)(void *)(bar + (o)), __ATOMIC_ACQUIRE)
	if (s->state == UPMD_DSA_GENSTS_STATE_DISABLED) {
		ist32(d, s, UPMD_DSA_REG_GENCFG, BAR32(UPMD_DSA_REG_GENCFG));
		for (i = 0; i < NGROUPS * UPMD_DSA_GRPCFG_SIZE; i += 4)
			ist32(d, s, OFF_GRPCFG + i, BAR32(OFF_GRPCFG + i));
	}
	ist32(d, s, UPMD_DSA_REG_GENCTRL, BAR32(UPMD_DSA_REG_GENCTRL));
	for (i = 0; i < s->nwqs; i++)
		for (k = 0; k < UPMD_DSA_WQCFG_DW_STATE; k += 4)
			if (!s->wq[i].enabled && (k || s->state == UPMD_DSA_GENSTS_STATE_DISABLED))
				ist32(d, s, wqcfg_off(i, k), BAR32(wqcfg_off(i, k)));
#undef BAR32
	if (v && !atomic_load(&s->cmd_pending)) {
		ist32(d, s, UPMD_DSA_REG_CMDSTATUS, UPMD_DSA_CMDSTS_ACTIVE);
		ist32(d, s, UPMD_DSA_REG_CMD, 0);
		atomic_store(&s->cmd_pending, v);
	}
}

/* ---- the device thread ------------------------------------------------------------------------ */

static int dsa_poll(struct upmd_model_dev *d)
{
	struct dsa *s = upmd_model_dev_priv(d);
	uint32_t v;
	int work = 0;
	unsigned k;
	bool any = false;

	pthread_mutex_lock(&d->lock);
	if (s->no_trap)
		no_trap_upkeep(d, s);
	v = atomic_load(&s->cmd_pending);
	if (v) {
		uint32_t err = command(d, s, v);

		if (err)
			s->st.cmd_errors++;
		/* Free for the next command before the driver can see this one
		 * done: its next CMD store must not find it still pending. */
		atomic_store(&s->cmd_pending, 0);
		ist32(d, s, UPMD_DSA_REG_CMDSTATUS, err);
		if (v & UPMD_DSA_CMD_INT_REQ)
			raise_misc(d, s, UPMD_DSA_INTCAUSE_CMD, true);
		work = 1;
	}
	if (s->state == UPMD_DSA_GENSTS_STATE_ENABLED && upmd_model_dev_bus_master(d) &&
	    !atomic_load(&s->hold)) {
		for (k = 0; k < s->nwqs; k++) {
			unsigned i = (s->rr + k) % s->nwqs;

			if (!s->wq[i].enabled)
				continue;
			any = any || s->wq[i].dedicated;
			work |= wq_run(d, s, i, PER_POLL, false);
		}
		s->rr = (s->rr + 1) % s->nwqs;
	}
	/* Portal stores kick nothing: keep looking for a while after the
	 * last descriptor while a dedicated WQ is enabled. */
	if (work)
		s->idle = 0;
	else if (any && s->idle < GRACE)
		work = ++s->idle < GRACE;
	pthread_mutex_unlock(&d->lock);
	return work;
}

/* ---- registers ---------------------------------------------------------------------------------- */

/* No logging and no locks: a trapped load runs this in a signal handler. */
static uint64_t dsa_read(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size)
{
	struct dsa *s = upmd_model_dev_priv(d);
	uint64_t v = 0;

	if (bar != DSA_BAR0 || off + size > BAR0_SIZE)
		return ~0ULL;
	if (size == 8)
		return ild64(s, off);
	if (size == 4)
		return ild32(s, off);
	memcpy(&v, s->img + off, size);
	return v;
}

static bool writable(struct dsa *s, uint64_t off, unsigned *wq)
{
	bool dev_off = UPMD_DSA_GENSTS_STATE(ild32(s, UPMD_DSA_REG_GENSTS)) ==
		       UPMD_DSA_GENSTS_STATE_DISABLED;

	if (off >= OFF_GRPCFG && off < OFF_GRPCFG + NGROUPS * UPMD_DSA_GRPCFG_SIZE)
		return dev_off && (off - OFF_GRPCFG) % UPMD_DSA_GRPCFG_SIZE < 48;
	if (off >= OFF_WQCFG && off < OFF_WQCFG + (uint64_t)s->nwqs * UPMD_DSA_WQCFG_SIZE) {
		unsigned i = (unsigned)((off - OFF_WQCFG) / UPMD_DSA_WQCFG_SIZE);
		unsigned dw = (unsigned)((off - OFF_WQCFG) % UPMD_DSA_WQCFG_SIZE);
		uint32_t st = ild32(s, wqcfg_off(i, UPMD_DSA_WQCFG_DW_STATE));

		*wq = i;
		if (UPMD_DSA_WQCFG_WQ_STATE(st) != UPMD_DSA_WQ_STATE_DISABLED)
			return false;
		/* Sizes are fixed while the device is enabled. */
		return dw < UPMD_DSA_WQCFG_DW_STATE && (dw != UPMD_DSA_WQCFG_DW_SIZE || dev_off);
	}
	return false;
}

static uint32_t wqcfg_mask(uint64_t off)
{
	switch ((off - OFF_WQCFG) % UPMD_DSA_WQCFG_SIZE) {
	case UPMD_DSA_WQCFG_DW_SIZE:
	case UPMD_DSA_WQCFG_DW_THRESHOLD:
	case UPMD_DSA_WQCFG_DW_OCC_INT:
		return 0xffffu;
	case UPMD_DSA_WQCFG_DW_MODE:
		return 0x3fffffffu;
	case UPMD_DSA_WQCFG_DW_LIMITS:
		return 0x1ffu;
	case UPMD_DSA_WQCFG_DW_OCC_LIMIT:
		return 0x1ffffu;
	default:
		return 0;
	}
}

static void dsa_write(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size, uint64_t val)
{
	struct dsa *s = upmd_model_dev_priv(d);
	unsigned wq = 0, k;

	if (bar != DSA_BAR0 || off + size > BAR0_SIZE)
		return;
	if (size < 8)
		val &= (1ULL << (8 * size)) - 1;
	if (off >= OFF_MSIX_PERM) {
		/* MSI-X permissions, table and PBA: plain storage. */
		if (size >= 4) {
			for (k = 0; k < size; k += 4)
				ist32(d, s, off + k, (uint32_t)(val >> (8 * k)));
		} else {
			memcpy(s->img + off, &val, size);
		}
		return;
	}
	if (size < 4)
		return;			/* registers take 32- and 64-bit accesses */
	if (off == UPMD_DSA_REG_CMD && size == 4) {
		/* One command at a time: a store while one runs is dropped.
		 * ACTIVE before the command is handed over, so the thread's
		 * result always lands after it. */
		if (atomic_load(&s->cmd_pending))
			return;
		ist32(d, s, UPMD_DSA_REG_CMDSTATUS, UPMD_DSA_CMDSTS_ACTIVE);
		ist32(d, s, UPMD_DSA_REG_CMD, (uint32_t)val);
		atomic_store(&s->cmd_pending, (uint32_t)val ? (uint32_t)val : UPMD_DSA_CMD(0x1f, 0));
		upmd_model_dev_kick(d);
		return;
	}
	if (off == UPMD_DSA_REG_GENCFG && size == 4) {
		if (UPMD_DSA_GENSTS_STATE(ild32(s, UPMD_DSA_REG_GENSTS)) == UPMD_DSA_GENSTS_STATE_DISABLED)
			ist32(d, s, off, (uint32_t)val & (0xffu | UPMD_DSA_GENCFG_USER_INT_EN));
		return;
	}
	if (off == UPMD_DSA_REG_GENCTRL && size == 4) {
		ist32(d, s, off, (uint32_t)val & 0x3u);
		return;
	}
	if (off == UPMD_DSA_REG_INTCAUSE && size == 4) {
		__atomic_fetch_and((uint32_t *)(void *)(s->img + off), ~(uint32_t)val, __ATOMIC_ACQ_REL);
		return;
	}
	if (off == UPMD_DSA_REG_SWERR) {
		__atomic_fetch_and((uint64_t *)(void *)(s->img + off),
				   ~(val & (UPMD_DSA_SWERR_VALID | UPMD_DSA_SWERR_OVERFLOW)), __ATOMIC_ACQ_REL);
		return;
	}
	for (k = 0; k < size; k += 4) {
		uint64_t o = off + k;
		uint32_t v = (uint32_t)(val >> (8 * k));

		if (!writable(s, o, &wq))
			continue;
		if (o >= OFF_WQCFG)
			v &= wqcfg_mask(o);
		ist32(d, s, o, v);
	}
	(void)wq;
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

static void power_on(struct upmd_model_dev *d, struct dsa *s)
{
	unsigned i;

	for (i = 0; i < MAX_WQS; i++) {
		pthread_mutex_lock(&s->q_lock);
		free(s->wq[i].ring);
		memset(&s->wq[i], 0, sizeof(s->wq[i]));
		pthread_mutex_unlock(&s->q_lock);
	}
	memset(upmd_model_dev_bar(d, DSA_BAR2), 0, BAR2_SIZE);
	memset(s->img + OFF_MSIX, 0, BAR0_SIZE - OFF_MSIX);
	if (s->no_trap)
		memset(upmd_model_dev_bar(d, DSA_BAR0), 0, BAR0_SIZE);
	atomic_store(&s->cmd_pending, 0);
	s->state = UPMD_DSA_GENSTS_STATE_DISABLED;
	s->rr = 0;
	s->idle = 0;
	img_init(d, s);
}

static int dsa_init(struct upmd_model_dev *d)
{
	struct dsa *s = upmd_model_dev_priv(d);

	defaults(s);
	if (pthread_mutex_init(&s->q_lock, NULL))
		return -ENOMEM;
	s->q_lock_init = true;
	s->no_trap = !model_trap_supported();
	crc_init(s);
	pthread_mutex_lock(&d->lock);
	power_on(d, s);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void dsa_fini(struct upmd_model_dev *d)
{
	struct dsa *s = upmd_model_dev_priv(d);
	unsigned i;

	for (i = 0; i < MAX_WQS; i++)
		free(s->wq[i].ring);
	if (s->q_lock_init)
		pthread_mutex_destroy(&s->q_lock);
}

/* Function reset: power-on state, configuration and queues gone. */
static void dsa_reset(struct upmd_model_dev *d)
{
	struct dsa *s = upmd_model_dev_priv(d);

	pthread_mutex_lock(&d->lock);
	power_on(d, s);
	s->st.resets++;
	pthread_mutex_unlock(&d->lock);
}

static struct upmd_model_dev *find_dsa(struct upmd_model *m, const char *bdf, int *rc)
{
	struct upmd_model_dev *d;

	*rc = 0;
	if (!m || !bdf) {
		*rc = -EINVAL;
		return NULL;
	}
	d = upmd_model_dev_find(m, bdf);
	if (!d)
		*rc = -ENOENT;
	else if (d->ops != &dsa_ops)
		*rc = -ENODEV;
	return *rc ? NULL : d;
}

int upmd_model_dsa_enqcmd(struct upmd_model *m, const char *bdf, unsigned wq, const void *desc64,
			  uint32_t pasid)
{
	struct upmd_model_dev *d;
	struct dsa *s;
	struct wq *w;
	int rc;

	if (!desc64 || pasid > 0xfffffu)
		return -EINVAL;
	d = find_dsa(m, bdf, &rc);
	if (!d)
		return rc;
	s = upmd_model_dev_priv(d);
	if (wq >= s->nwqs)
		return -EINVAL;
	w = &s->wq[wq];
	pthread_mutex_lock(&s->q_lock);
	if (w->enabled && w->dedicated) {
		pthread_mutex_unlock(&s->q_lock);
		UPMD_ERR(MODEL_LOG, "%s: ENQCMD to WQ %u, a dedicated WQ: submit to its portal instead",
			 upmd_model_dev_name(d), wq);
		return -EINVAL;
	}
	if (!w->enabled || w->rcount >= w->thresh) {
		s->st.enqcmd_retries++;
		pthread_mutex_unlock(&s->q_lock);
		return 1;
	}
	memcpy(&w->ring[(w->rhead + w->rcount) % w->size].d, desc64, sizeof(struct upmd_dsa_desc));
	w->ring[(w->rhead + w->rcount) % w->size].pasid = pasid;
	w->rcount++;
	s->st.enqcmds++;
	ist32(d, s, wqcfg_off(wq, UPMD_DSA_WQCFG_DW_STATE),
	      UPMD_DSA_WQCFG_MODE_SUPPORT | (UPMD_DSA_WQ_STATE_ENABLED << 30) | (w->rcount & 0xffffu));
	pthread_mutex_unlock(&s->q_lock);
	upmd_model_dev_kick(d);
	return 0;
}

int upmd_model_dsa_hold(struct upmd_model *m, const char *bdf, bool hold)
{
	struct upmd_model_dev *d;
	int rc;

	d = find_dsa(m, bdf, &rc);
	if (!d)
		return rc;
	/* Under the device lock: no poll that saw the old value is still running. */
	pthread_mutex_lock(&d->lock);
	atomic_store(&((struct dsa *)upmd_model_dev_priv(d))->hold, hold);
	pthread_mutex_unlock(&d->lock);
	upmd_model_dev_kick(d);
	return 0;
}

int upmd_model_dsa_stats(struct upmd_model *m, const char *bdf, struct upmd_model_dsa_stats *st)
{
	struct upmd_model_dev *d;
	struct dsa *s;
	unsigned i;
	int rc;

	if (!st)
		return -EINVAL;
	d = find_dsa(m, bdf, &rc);
	if (!d)
		return rc;
	s = upmd_model_dev_priv(d);
	pthread_mutex_lock(&d->lock);
	*st = s->st;
	st->gensts = s->state;
	st->wqs_enabled = 0;
	pthread_mutex_lock(&s->q_lock);
	for (i = 0; i < s->nwqs; i++) {
		if (s->wq[i].enabled)
			st->wqs_enabled |= 1u << i;
		st->occupancy[i] = s->wq[i].enabled && !s->wq[i].dedicated ? s->wq[i].rcount : 0;
	}
	pthread_mutex_unlock(&s->q_lock);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static const struct upmd_model_dev_ops dsa_ops = {
	.type = "dsa",
	.vendor_id = UPMD_DSA_VENDOR_ID,
	.device_id = UPMD_DSA_DEVICE_ID_SPR,
	.subsystem_vendor_id = UPMD_DSA_VENDOR_ID,
	.subsystem_device_id = 0x0000,
	.class_code = UPMD_DSA_CLASS,
	.revision = 0x01,
	.pcie = true,
	.reset_works = true,
	.pasid_bits = 20,
	.bar_size = { [DSA_BAR0] = BAR0_SIZE, [DSA_BAR2] = BAR2_SIZE },
	.bar_flags = { [DSA_BAR0] = MODEL_BAR_64, [DSA_BAR2] = MODEL_BAR_64 | MODEL_BAR_PREFETCH },
	.trap_bars = 1u << DSA_BAR0,
	.irq_kind = MODEL_IRQ_MSIX,
	.irq_vectors = 5,		/* wqs=4; the config hook sets each instance's */
	.intx_pin = 0,
	.priv_size = sizeof(struct dsa),
	.config = dsa_config,
	.arg = dsa_arg,
	.init = dsa_init,
	.fini = dsa_fini,
	.reset = dsa_reset,
	.poll = dsa_poll,
	.mmio_read = dsa_read,
	.mmio_write = dsa_write,
};

UPMD_MODEL_REGISTER_DEV(dsa_ops)
