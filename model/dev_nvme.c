/* Device model of an NVMe 1.4 controller over PCIe (QEMU's id 1b36:0010): the register file, admin and NVM I/O queues in host memory, PRPs and SGLs, RAM or file namespaces, and fault injection for recovery tests. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_private.h"

/*
 * What the driver sees (NVM Express Base Specification 1.4, the PCIe
 * transport; facts only):
 *
 *  - 1b36:0010, class 010802 (NVM Express I/O controller), PCI Express,
 *    FLR-capable (reset_works), MSI-X with queues + 1 vectors, INTA#.
 *  - BAR0, 64-bit, 16 KiB, trapped: registers at 0, doorbells from
 *    0x1000 with a 4-byte stride (CAP.DSTRD 0), the MSI-X table at
 *    0x2000 and its PBA at 0x3000 (plain memory the driver may touch).
 *
 * Registers live in BAR memory. A trapped store reaches nvme_write,
 * which stores the value into the model's own mapping and kicks the
 * device thread; a trapped load gets its bytes from nvme_read. Without
 * trapping (UPMD_MODEL_NO_TRAP, valgrind) the BAR is plain shared memory,
 * so everything with an effect is done by poll from what it finds in
 * BAR memory (CC, AQA/ASQ/ACQ, doorbells), and poll keeps the read-only
 * registers' bytes right. The same code runs either way.
 *
 * Commands run in the device thread under d->lock; nvme_read and
 * nvme_write run in a signal handler on the driver's thread and take no
 * lock (CSTS and the interrupt mask are atomics; the rest is BAR memory).
 */

#define NV_BAR 0
#define NV_BAR_SIZE 0x4000
#define PG 4096u
#define PG_MASK (PG - 1)

/* Controller registers. */
#define R_CAP 0x00
#define R_VS 0x08
#define R_INTMS 0x0c
#define R_INTMC 0x10
#define R_CC 0x14
#define R_CSTS 0x1c
#define R_NSSR 0x20
#define R_AQA 0x24
#define R_ASQ 0x28
#define R_ACQ 0x30
#define R_END 0x40
#define R_DB 0x1000
#define R_MSIX 0x2000
#define R_PBA 0x3000

#define CC_EN 0x1u
#define CC_CSS(v) (((v) >> 4) & 0x7)
#define CC_MPS(v) (((v) >> 7) & 0xf)
#define CC_AMS(v) (((v) >> 11) & 0x7)
#define CC_SHN(v) (((v) >> 14) & 0x3)
#define CC_IOSQES(v) (((v) >> 16) & 0xf)
#define CC_IOCQES(v) (((v) >> 20) & 0xf)
#define CSTS_RDY 0x1u
#define CSTS_CFS 0x2u
#define CSTS_SHST_DONE (2u << 2)
#define NV_VERSION 0x00010400u
#define CAP_TO 2			/* 500 ms units: 1 s to become ready */

/* Limits. */
#define MAX_IOQ 64
#define NQ (MAX_IOQ + 1)
#define MAX_NS 4
#define BATCH 16			/* commands per SQ per poll: queues take turns */
#define HELD_MAX 256
#define ABORT_PEND_MAX 8
#define AER_MAX 4			/* Identify AERL + 1 */
#define ACL 3				/* Identify ACL (0's based) */
#define SGL_HOPS_MAX 64			/* segments in one SGL */
#define NO_TRAP_GRACE 20000		/* busy polls after the last command, without traps */

/* Status field (completion DW3 bits 31:17): SC, SCT, DNR. */
#define SF(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define DNR 0x4000u
#define SC_OK 0
#define SC_INVALID_OPCODE (SF(0, 0x01) | DNR)
#define SC_INVALID_FIELD (SF(0, 0x02) | DNR)
#define SC_DATA_XFER SF(0, 0x04)
#define SC_ABORTED SF(0, 0x07)
#define SC_ABORTED_SQ_DEL SF(0, 0x08)
#define SC_INVALID_NS (SF(0, 0x0b) | DNR)
#define SC_CMD_SEQ (SF(0, 0x0c) | DNR)
#define SC_SGL_SEG (SF(0, 0x0d) | DNR)
#define SC_SGL_NUM (SF(0, 0x0e) | DNR)
#define SC_SGL_LEN (SF(0, 0x0f) | DNR)
#define SC_SGL_TYPE (SF(0, 0x11) | DNR)
#define SC_PRP_OFFSET (SF(0, 0x13) | DNR)
#define SC_LBA_RANGE (SF(0, 0x80) | DNR)
#define SC_CQ_INVALID (SF(1, 0x00) | DNR)
#define SC_QID_INVALID (SF(1, 0x01) | DNR)
#define SC_QSIZE_INVALID (SF(1, 0x02) | DNR)
#define SC_ABORT_LIMIT SF(1, 0x03)
#define SC_AER_LIMIT (SF(1, 0x05) | DNR)
#define SC_IV_INVALID (SF(1, 0x08) | DNR)
#define SC_LOG_INVALID (SF(1, 0x09) | DNR)
#define SC_QDEL_INVALID (SF(1, 0x0c) | DNR)
#define SC_NOT_SAVEABLE (SF(1, 0x0d) | DNR)
#define HOLD 0xffffu			/* internal: no completion now */

/* Opcodes. */
#define A_DELETE_SQ 0x00
#define A_CREATE_SQ 0x01
#define A_GET_LOG 0x02
#define A_DELETE_CQ 0x04
#define A_CREATE_CQ 0x05
#define A_IDENTIFY 0x06
#define A_ABORT 0x08
#define A_SET_FEAT 0x09
#define A_GET_FEAT 0x0a
#define A_AER 0x0c
#define IO_FLUSH 0x00
#define IO_WRITE 0x01
#define IO_READ 0x02
#define IO_WRITE_ZEROES 0x08
#define IO_DSM 0x09

/* Features the model keeps a value for. */
#define F_ARB 0x01
#define F_PM 0x02
#define F_TEMP 0x04
#define F_ERR_REC 0x05
#define F_VWC 0x06
#define F_NUM_QUEUES 0x07
#define F_IRQ_COAL 0x08
#define F_IRQ_CONF 0x09
#define F_WRITE_ATOM 0x0a
#define F_AEN 0x0b
#define F_MAX 0x0c

/* SGL descriptor types. */
#define SGL_DATA 0x0
#define SGL_SEGMENT 0x2
#define SGL_LAST 0x3

struct sq {
	uint64_t base;
	uint32_t size;			/* entries; 0: no such queue */
	uint32_t head;			/* next entry the controller fetches */
	uint16_t cqid;
};

struct cq {
	uint64_t base;
	uint32_t size;			/* entries; 0: no such queue */
	uint32_t head;			/* from the head doorbell */
	uint32_t tail;			/* next entry the controller posts */
	uint16_t iv;
	bool phase, ien, irq_due;
	unsigned nsq;			/* SQs completing into it */
};

/* A completion held back by DROP_CPL (or released by an Abort). */
struct held {
	uint16_t sqid, cid;
	uint32_t dw0;
	uint16_t sf;
	bool release;			/* post it (with sf) when the CQ has room */
};

struct ns {
	uint8_t *data;
	uint64_t nsze;			/* logical blocks */
	size_t bytes;
	bool anon;
};

struct seg {
	uint64_t addr;
	uint64_t len;
};

struct nvme {
	/* From the arguments; fixed for the device's life. */
	unsigned queues, mqes, mdts, nn, lba_shift;
	bool mdts_set, sgl_off;
	uint64_t ns_mb;
	char serial[21];
	char *file;
	int fd;				/* valid when fd_open */
	bool fd_open;
	struct ns ns[MAX_NS];
	uint64_t max_xfer;		/* bytes, MDTS (or the largest NLB when unlimited) */
	bool no_trap;
	/*
	 * With traps, what the driver wrote to the registers and doorbells.
	 * BAR memory cannot serve: a trapped store lands there for one
	 * instruction before the old bytes are put back and nvme_write
	 * stores the new ones, so a poll could see a doorbell go forward,
	 * back and forward again. Without traps BAR memory is the truth.
	 */
	_Alignas(8) uint8_t shadow[R_MSIX];

	/* Read by nvme_read in a signal handler: lock-free. */
	_Atomic uint32_t csts;
	_Atomic uint32_t intmask;
	_Atomic uint32_t cc_events;	/* EV_*: what nvme_write saw since the last poll */

	/* Controller state (d->lock). */
	uint32_t cc;			/* the CC the controller acted on */
	/* An enable refused, and what it saw: retried when any changes
	 * (untrapped, a quick EN 1->0->1 may not be seen). */
	bool refused;
	uint32_t ref_aqa, ref_cc;
	uint64_t ref_asq, ref_acq;
	bool ready, shutdown;
	struct sq sq[NQ];
	struct cq cq[NQ];
	unsigned nsqa, ncqa;		/* Number of Queues allocated (1's based) */
	uint32_t feat[F_MAX];
	struct held held[HELD_MAX];
	unsigned nheld, drop_pending;
	struct { uint16_t sqid, cid; } abort_pend[ABORT_PEND_MAX];
	unsigned nabort_pend;
	uint16_t aer_cid[AER_MAX];
	unsigned naer;
	unsigned rr;			/* I/O SQ the next poll starts with */
	unsigned idle;
	bool fatal_logged;
	struct upmd_model_nvme_stats st;

	/* Device thread scratch (d->lock). */
	struct seg *segs;
	unsigned nseg, max_segs;
	uint8_t list[PG];		/* a PRP list or SGL segment chunk */
	uint8_t buf[PG];		/* Identify, log and DSM data */
	uint8_t zero[PG];
	uint8_t sink[PG];
};

#define EV_DISABLE 0x1u			/* a CC write with EN 0 while EN was 1 */

static const struct upmd_model_dev_ops nvme_ops;

/* ASCII, space padded, no terminator (Identify strings). */
static void put_str(uint8_t *p, size_t len, const char *s)
{
	size_t n = strlen(s);

	memset(p, ' ', len);
	memcpy(p, s, UPMD_MIN(n, len));
}

/* ---- BAR memory: naturally aligned single accesses ---------------------------------- */

/* Where the driver's register writes are found (see struct nvme.shadow). */
static uint8_t *regs(struct upmd_model_dev *d)
{
	struct nvme *n = upmd_model_dev_priv(d);

	return n->no_trap ? upmd_model_dev_bar(d, NV_BAR) : n->shadow;
}

static uint32_t bar_ld32(struct upmd_model_dev *d, uint64_t off)
{
	return __atomic_load_n((uint32_t *)(void *)(regs(d) + off), __ATOMIC_ACQUIRE);
}

static uint64_t bar_ld64(struct upmd_model_dev *d, uint64_t off)
{
	/* Two halves: a driver may write a 64-bit register as two stores. */
	return bar_ld32(d, off) | ((uint64_t)bar_ld32(d, off + 4) << 32);
}

static void store_at(uint8_t *p, unsigned size, uint64_t v)
{
	switch (size) {
	case 1:
		__atomic_store_n(p, (uint8_t)v, __ATOMIC_RELEASE);
		break;
	case 2:
		__atomic_store_n((uint16_t *)(void *)p, (uint16_t)v, __ATOMIC_RELEASE);
		break;
	case 4:
		__atomic_store_n((uint32_t *)(void *)p, (uint32_t)v, __ATOMIC_RELEASE);
		break;
	default:
		__atomic_store_n((uint64_t *)(void *)p, v, __ATOMIC_RELEASE);
		break;
	}
}

/* A register value: into BAR memory and, with traps, the shadow. */
static void bar_store(struct upmd_model_dev *d, uint64_t off, unsigned size, uint64_t v)
{
	struct nvme *n = upmd_model_dev_priv(d);

	store_at(upmd_model_dev_bar(d, NV_BAR) + off, size, v);
	if (!n->no_trap && off < R_MSIX)
		store_at(n->shadow + off, size, v);
}

static void bar_st32(struct upmd_model_dev *d, uint64_t off, uint32_t v)
{
	bar_store(d, off, 4, v);
}

static uint64_t cap_value(const struct nvme *n)
{
	/* MQES, CQR, AMS 0 (round robin only), TO, DSTRD 0, CSS bit 0 (NVM
	 * command set, CAP bit 37), MPSMIN = MPSMAX = 0 (4 KiB). */
	return (uint64_t)n->mqes | (1ULL << 16) | ((uint64_t)CAP_TO << 24) | (1ULL << 37);
}

/* The read-only registers' bytes, for reads that do not trap. */
static void store_ro(struct upmd_model_dev *d, struct nvme *n)
{
	uint64_t cap = cap_value(n);
	uint32_t mask = atomic_load(&n->intmask);

	bar_st32(d, R_CAP, (uint32_t)cap);
	bar_st32(d, R_CAP + 4, (uint32_t)(cap >> 32));
	bar_st32(d, R_VS, NV_VERSION);
	bar_st32(d, R_INTMS, mask);
	bar_st32(d, R_INTMC, mask);
	bar_st32(d, R_CSTS, atomic_load(&n->csts));
	bar_st32(d, R_NSSR, 0);
}

static void set_csts(struct upmd_model_dev *d, struct nvme *n, uint32_t v)
{
	atomic_store(&n->csts, v);
	bar_st32(d, R_CSTS, v);
}

/* ---- arguments and config space ---------------------------------------------------- */

static int num_arg(struct upmd_model_dev *d, const char *key, const char *val, unsigned long min,
		   unsigned long max, const char *what, unsigned long example, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 0);
	if (errno || end == val || *end || *val == '-' || v < min || v > max) {
		UPMD_ERR(MODEL_LOG, "%s: bad %s '%s' (%s, %lu..%lu, e.g. %s=%lu)", upmd_model_dev_name(d),
			 key, val, what, min, max, key, example);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int nvme_arg(struct upmd_model_dev *d, const char *key, const char *val)
{
	struct nvme *n = upmd_model_dev_priv(d);
	unsigned long v;
	int rc;

	if (!strcmp(key, "queues")) {
		rc = num_arg(d, key, val, 1, MAX_IOQ, "I/O queue pairs", 8, &v);
		n->queues = (unsigned)v;
		return rc;
	}
	if (!strcmp(key, "mqes")) {
		rc = num_arg(d, key, val, 1, 4095, "CAP.MQES: entries per queue minus 1", 1023, &v);
		n->mqes = (unsigned)v;
		return rc;
	}
	if (!strcmp(key, "mdts")) {
		rc = num_arg(d, key, val, 0, 10, "max transfer as a power of two of 4 KiB pages, 0: unlimited", 7, &v);
		n->mdts = (unsigned)v;
		n->mdts_set = true;
		return rc;
	}
	if (!strcmp(key, "nn")) {
		rc = num_arg(d, key, val, 1, MAX_NS, "namespaces", 2, &v);
		n->nn = (unsigned)v;
		return rc;
	}
	if (!strcmp(key, "ns_mb")) {
		rc = num_arg(d, key, val, 1, 1UL << 20, "MiB per namespace", 64, &v);
		n->ns_mb = v;
		return rc;
	}
	if (!strcmp(key, "lba")) {
		if (strcmp(val, "512") && strcmp(val, "4096")) {
			UPMD_ERR(MODEL_LOG, "%s: bad lba '%s' (logical block size 512 or 4096, e.g. lba=4096)",
				 upmd_model_dev_name(d), val);
			return -EINVAL;
		}
		n->lba_shift = val[0] == '5' ? 9 : 12;
		return 0;
	}
	if (!strcmp(key, "sgl")) {
		if (strcmp(val, "on") && strcmp(val, "off")) {
			UPMD_ERR(MODEL_LOG, "%s: sgl=%s: give on or off (e.g. sgl=off)", upmd_model_dev_name(d), val);
			return -EINVAL;
		}
		n->sgl_off = !strcmp(val, "off");
		return 0;
	}
	if (!strcmp(key, "serial")) {
		size_t i, len = strlen(val);

		for (i = 0; i < len; i++)
			if (val[i] < 0x20 || val[i] > 0x7e)
				break;
		if (!len || len > 20 || i < len) {
			UPMD_ERR(MODEL_LOG, "%s: bad serial '%s' (1..20 printable ASCII characters, e.g. serial=SN0001)",
				 upmd_model_dev_name(d), val);
			return -EINVAL;
		}
		snprintf(n->serial, sizeof(n->serial), "%s", val);
		return 0;
	}
	if (!strcmp(key, "file")) {
		if (!*val) {
			UPMD_ERR(MODEL_LOG, "%s: empty file= (a path backing namespace 1, e.g. file=/tmp/ns1.img)",
				 upmd_model_dev_name(d));
			return -EINVAL;
		}
		free(n->file);
		n->file = strdup(val);
		return n->file ? 0 : -ENOMEM;
	}
	return -ENOENT;
}

static void defaults(struct nvme *n)
{
	if (!n->queues)
		n->queues = 8;
	if (!n->mqes)
		n->mqes = 1023;
	if (!n->mdts_set)
		n->mdts = 7;
	if (!n->nn)
		n->nn = 1;
	if (!n->ns_mb)
		n->ns_mb = 64;
	if (!n->lba_shift)
		n->lba_shift = 9;
}

static void nvme_config(struct upmd_model_dev *d, struct model_dev_config *cfg)
{
	struct nvme *n = upmd_model_dev_priv(d);

	/* Runs after the args: the vector count depends on queues=. */
	defaults(n);
	cfg->irq_vectors = (uint16_t)(n->queues + 1);
	cfg->msix_table = R_MSIX | NV_BAR;
	cfg->msix_pba = R_PBA | NV_BAR;
}

/* ---- controller state ------------------------------------------------------------------ */

static void feat_defaults(struct nvme *n)
{
	memset(n->feat, 0, sizeof(n->feat));
	n->feat[F_TEMP] = 343;		/* over-temperature threshold, kelvin */
	n->feat[F_VWC] = 1;		/* write cache enabled */
	n->nsqa = n->ncqa = n->queues;
}

/* Controller reset (CC.EN 1->0) and power-on: no queues, nothing pending. */
static void ctrl_reset(struct upmd_model_dev *d, struct nvme *n)
{
	/* The doorbells restart at 0 with the queues. */
	memset(upmd_model_dev_bar(d, NV_BAR) + R_DB, 0, 8 * NQ);
	memset(n->shadow + R_DB, 0, 8 * NQ);
	memset(n->sq, 0, sizeof(n->sq));
	memset(n->cq, 0, sizeof(n->cq));
	n->nheld = 0;
	n->drop_pending = 0;
	n->nabort_pend = 0;
	n->naer = 0;
	n->ready = false;
	n->shutdown = false;
	n->refused = false;
	n->rr = 0;
	n->fatal_logged = false;
	feat_defaults(n);
	set_csts(d, n, 0);
}

static void go_fatal(struct upmd_model_dev *d, struct nvme *n, const char *why)
{
	if (!n->fatal_logged)
		UPMD_WARN(MODEL_LOG, "%s: nvme: %s: controller fatal status (CSTS.CFS) until reset",
			  upmd_model_dev_name(d), why);
	n->fatal_logged = true;
	set_csts(d, n, atomic_load(&n->csts) | CSTS_CFS);
}

static bool fatal(const struct nvme *n)
{
	return atomic_load(&n->csts) & CSTS_CFS;
}

/* CC.EN 0->1: the admin queue from AQA/ASQ/ACQ, RDY only when all is valid. */
static void ctrl_enable(struct upmd_model_dev *d, struct nvme *n, uint32_t cc)
{
	uint32_t aqa = bar_ld32(d, R_AQA);
	uint64_t asq = bar_ld64(d, R_ASQ), acq = bar_ld64(d, R_ACQ);
	uint32_t asqs = (aqa & 0xfff) + 1, acqs = ((aqa >> 16) & 0xfff) + 1;
	const char *bad = NULL;

	if (asqs < 2 || acqs < 2)
		bad = "admin queue of one entry (AQA)";
	else if ((asq & PG_MASK) || (acq & PG_MASK))
		bad = "ASQ/ACQ not 4 KiB aligned";
	else if (CC_MPS(cc) != 0)
		bad = "CC.MPS other than 4 KiB";
	else if (CC_CSS(cc) != 0)
		bad = "CC.CSS other than the NVM command set";
	else if (CC_AMS(cc) != 0)
		bad = "CC.AMS other than round robin";
	if (bad) {
		/* As a real controller: it never becomes ready. */
		UPMD_DEBUG(MODEL_LOG, "%s: nvme: enable refused: %s", upmd_model_dev_name(d), bad);
		n->refused = true;
		n->ref_aqa = aqa;
		n->ref_cc = cc;
		n->ref_asq = asq;
		n->ref_acq = acq;
		return;
	}
	n->sq[0] = (struct sq){ .base = asq, .size = asqs, .cqid = 0 };
	n->cq[0] = (struct cq){ .base = acq, .size = acqs, .phase = true, .ien = true, .nsq = 1 };
	n->ready = true;
	n->refused = false;
	set_csts(d, n, atomic_load(&n->csts) | CSTS_RDY);
}

static void ctrl_shutdown(struct upmd_model_dev *d, struct nvme *n)
{
	unsigned i;

	/* Flush: a file-backed namespace reaches the file. */
	for (i = 0; i < n->nn; i++)
		if (!n->ns[i].anon)
			msync(n->ns[i].data, n->ns[i].bytes, MS_SYNC);
	n->shutdown = true;
	n->st.shutdowns++;
	set_csts(d, n, (atomic_load(&n->csts) & ~(3u << 2)) | CSTS_SHST_DONE);
}

static void handle_cc(struct upmd_model_dev *d, struct nvme *n)
{
	uint32_t ev = atomic_exchange(&n->cc_events, 0);
	uint32_t cc = bar_ld32(d, R_CC), old = n->cc;

	/* A disable the poll did not see in BAR memory (EN 1, 0, 1 between
	 * two polls) is still a reset. */
	if ((ev & EV_DISABLE) && (old & CC_EN)) {
		ctrl_reset(d, n);
		n->st.resets++;
		old &= ~CC_EN;
	}
	if (cc == old) {
		if ((cc & CC_EN) && n->refused && !n->ready &&
		    (bar_ld32(d, R_AQA) != n->ref_aqa || bar_ld64(d, R_ASQ) != n->ref_asq ||
		     bar_ld64(d, R_ACQ) != n->ref_acq))
			ctrl_enable(d, n, cc);
		return;
	}
	n->cc = cc;
	if ((old & CC_EN) && !(cc & CC_EN)) {
		ctrl_reset(d, n);
		n->st.resets++;
	} else if ((cc & CC_EN) && (!(old & CC_EN) || (n->refused && !n->ready))) {
		ctrl_enable(d, n, cc);
	}
	if (CC_SHN(cc) && !CC_SHN(old))
		ctrl_shutdown(d, n);
}

/* ---- queues ------------------------------------------------------------------------------ */

static uint64_t sq_db(unsigned qid)
{
	return R_DB + (2ULL * qid) * 4;
}

static uint64_t cq_db(unsigned qid)
{
	return R_DB + (2ULL * qid + 1) * 4;
}

/* Doorbells are read from BAR memory with or without traps: a trapped
 * store to one stays there as written (ops.trap_keep_start/end), so a
 * doorbell only moves forward, and one written by a thread while another
 * had the page open for its single step is seen as well. */
static uint32_t db_ld32(struct upmd_model_dev *d, uint64_t off)
{
	return __atomic_load_n((uint32_t *)(void *)(upmd_model_dev_bar(d, NV_BAR) + off), __ATOMIC_ACQUIRE);
}

static void cq_head_update(struct upmd_model_dev *d, unsigned qid, struct cq *cq)
{
	uint32_t h = db_ld32(d, cq_db(qid));

	/* An out-of-range head is an invalid doorbell write: ignored. */
	if (h < cq->size)
		cq->head = h;
}

static bool cq_full(struct upmd_model_dev *d, unsigned qid, struct cq *cq)
{
	cq_head_update(d, qid, cq);
	return (cq->tail + 1) % cq->size == cq->head;
}

/*
 * Post one completion entry. DW0..2 go first, then DW3 with the phase
 * tag, with a release fence between: a driver polling on the phase bit
 * sees the whole entry. A failed DMA is fatal (the queue is lost).
 */
static int post(struct upmd_model_dev *d, struct nvme *n, uint16_t sqid, uint16_t cid, uint32_t dw0,
		uint16_t sf)
{
	struct sq *sq = &n->sq[sqid];
	struct cq *cq = &n->cq[sq->cqid];
	uint8_t e[16];
	uint64_t addr = cq->base + (uint64_t)cq->tail * 16;

	st32(e, dw0);
	st32(e + 4, 0);
	st16(e + 8, (uint16_t)sq->head);
	st16(e + 10, sqid);
	st32(e + 12, (uint32_t)cid | ((uint32_t)cq->phase << 16) | ((uint32_t)sf << 17));
	if (upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, addr, e, 12) < 0)
		goto err;
	atomic_thread_fence(memory_order_release);
	if (upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, addr + 12, e + 12, 4) < 0)
		goto err;
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase = !cq->phase;
	}
	cq->irq_due = true;
	if (sf)
		n->st.errors++;
	return 0;
err:
	n->st.dma_faults++;
	go_fatal(d, n, "completion queue entry write failed");
	return -EIO;
}

static void raise_irqs(struct upmd_model_dev *d, struct nvme *n)
{
	bool msi = upmd_model_dev_msi_enabled(d);
	unsigned i;

	for (i = 0; i < NQ; i++) {
		struct cq *cq = &n->cq[i];

		if (!cq->irq_due)
			continue;
		cq->irq_due = false;
		if (!cq->size || !cq->ien)
			continue;
		if (msi)
			upmd_model_irq(d, cq->iv);
		else if (!(atomic_load(&n->intmask) & 1))
			upmd_model_irq(d, -1);
	}
}

static void held_remove(struct nvme *n, unsigned i)
{
	n->held[i] = n->held[--n->nheld];
}

/* Post the completions an Abort released, as their CQs have room. */
static int flush_released(struct upmd_model_dev *d, struct nvme *n)
{
	unsigned i = 0;
	int work = 0;

	while (i < n->nheld) {
		struct held *h = &n->held[i];
		uint16_t cqid = n->sq[h->sqid].cqid;

		if (!h->release || cq_full(d, cqid, &n->cq[cqid])) {
			i++;
			continue;
		}
		if (post(d, n, h->sqid, h->cid, h->dw0, h->sf) < 0)
			return 1;
		held_remove(n, i);
		work = 1;
	}
	return work;
}

/* ---- data pointers: PRPs and SGLs ------------------------------------------------------ */

static int seg_add(struct nvme *n, uint64_t addr, uint64_t len)
{
	struct seg *s = n->nseg ? &n->segs[n->nseg - 1] : NULL;

	if (!len)
		return 0;
	/* Contiguous pages make one DMA. */
	if (s && s->addr + s->len == addr) {
		s->len += len;
		return 0;
	}
	if (n->nseg == n->max_segs)
		return -1;
	n->segs[n->nseg].addr = addr;
	n->segs[n->nseg].len = len;
	n->nseg++;
	return 0;
}

static uint16_t list_read(struct upmd_model_dev *d, struct nvme *n, uint64_t addr, size_t len)
{
	if (upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, addr, n->list, len) < 0) {
		n->st.dma_faults++;
		return SC_DATA_XFER;
	}
	return SC_OK;
}

/*
 * PRP1 may start anywhere dword aligned in a page; the rest are whole
 * pages: PRP2 itself when one more page ends the transfer, else PRP2
 * points to a PRP list (dword aligned, may start mid page) whose last
 * entry, when more entries follow, points to the next list page. Every
 * entry but PRP1 must have offset 0.
 */
static uint16_t map_prp(struct upmd_model_dev *d, struct nvme *n, uint64_t prp1, uint64_t prp2,
			uint64_t len)
{
	uint64_t first, left, list;
	uint16_t sf;

	if (prp1 & 3)
		return SC_PRP_OFFSET;
	first = UPMD_MIN(len, PG - (prp1 & PG_MASK));
	if (seg_add(n, prp1, first) < 0)
		return SC_INVALID_FIELD;
	left = len - first;
	if (!left)
		return SC_OK;
	if (left <= PG) {
		if (prp2 & PG_MASK)
			return SC_PRP_OFFSET;
		return seg_add(n, prp2, left) < 0 ? SC_INVALID_FIELD : SC_OK;
	}
	list = prp2;
	if (list & 7)
		return SC_PRP_OFFSET;
	while (left) {
		uint64_t need = (left + PG - 1) / PG;
		uint64_t slots = (PG - (list & PG_MASK)) / 8;
		bool chain = need > slots;
		unsigned cnt = (unsigned)(chain ? slots : need), ndata = chain ? cnt - 1 : cnt, i;

		sf = list_read(d, n, list, (size_t)cnt * 8);
		if (sf)
			return sf;
		for (i = 0; i < ndata; i++) {
			uint64_t e = ld64(n->list + 8 * i), l = UPMD_MIN(left, (uint64_t)PG);

			if (e & PG_MASK)
				return SC_PRP_OFFSET;
			if (seg_add(n, e, l) < 0)
				return SC_INVALID_FIELD;
			left -= l;
		}
		if (chain) {
			list = ld64(n->list + 8 * (cnt - 1));
			if (list & PG_MASK)
				return SC_PRP_OFFSET;
		}
	}
	return SC_OK;
}

/*
 * SGL1 is a Data Block (the whole transfer), or a Segment / Last Segment
 * descriptor pointing to a list of descriptors. A Segment ends with the
 * descriptor of the next segment; a Last Segment holds Data Blocks only.
 * The Data Blocks must add up to the transfer exactly (SGLS bit 16,
 * longer SGLs, is not offered).
 */
static uint16_t map_sgl(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sgl1, uint64_t len)
{
	uint8_t desc[16];
	uint64_t total = 0;
	unsigned hops = 0;
	uint8_t type;

	memcpy(desc, sgl1, 16);
	type = desc[15] >> 4;
	if ((desc[15] & 0xf) != 0)
		return SC_SGL_TYPE;
	if (type == SGL_DATA) {
		total = ld32(desc + 8);
		if (total != len)
			return SC_SGL_LEN;
		return seg_add(n, ld64(desc), total) < 0 ? SC_SGL_NUM : SC_OK;
	}
	while (type == SGL_SEGMENT || type == SGL_LAST) {
		uint64_t addr = ld64(desc);
		uint32_t slen = ld32(desc + 8), ndesc, i;
		bool last = type == SGL_LAST, next = false;

		if (!slen || slen % 16)
			return SC_SGL_SEG;
		if (++hops > SGL_HOPS_MAX)
			return SC_SGL_NUM;
		ndesc = slen / 16;
		for (i = 0; i < ndesc; i++) {
			const uint8_t *e;
			uint8_t t;

			if (i % (PG / 16) == 0) {
				uint16_t sf = list_read(d, n, addr + (uint64_t)i * 16,
							(size_t)UPMD_MIN(ndesc - i, PG / 16) * 16);

				if (sf)
					return sf;
			}
			e = n->list + (i % (PG / 16)) * 16;
			t = e[15] >> 4;
			if (e[15] & 0xf)
				return SC_SGL_TYPE;
			if (t == SGL_DATA) {
				uint32_t l = ld32(e + 8);

				total += l;
				if (total > len)
					return SC_SGL_LEN;
				if (seg_add(n, ld64(e), l) < 0)
					return SC_SGL_NUM;
			} else if (t == SGL_SEGMENT || t == SGL_LAST) {
				/* Only as the last descriptor of a Segment. */
				if (last || i != ndesc - 1)
					return SC_SGL_SEG;
				memcpy(desc, e, 16);
				next = true;
			} else {
				return SC_SGL_TYPE;
			}
		}
		if (last)
			break;
		if (!next)
			return SC_SGL_SEG;
		type = desc[15] >> 4;
	}
	if (type != SGL_SEGMENT && type != SGL_LAST)
		return SC_SGL_TYPE;
	return total == len ? SC_OK : SC_SGL_LEN;
}

/* The data pointer of @sqe for @len bytes, into n->segs. */
static uint16_t map_dptr(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe, uint64_t len,
			 bool admin)
{
	unsigned psdt = (sqe[1] >> 6) & 3;

	n->nseg = 0;
	if (psdt == 0)
		return map_prp(d, n, ld64(sqe + 24), ld64(sqe + 32), len);
	/* No SGLs for admin commands over PCIe; PSDT 10b (metadata SGL)
	 * means the same for data, and there is no metadata. */
	if (admin || n->sgl_off || psdt == 3)
		return SC_INVALID_FIELD;
	return map_sgl(d, n, sqe + 24, len);
}

/*
 * Move the mapped transfer: @have bytes from or to @buf, the rest of the
 * transfer as zeros (to the host) or discarded (from it).
 */
static uint16_t xfer(struct upmd_model_dev *d, struct nvme *n, uint8_t *buf, uint64_t have, bool to_host)
{
	uint64_t off = 0;
	unsigned i;

	for (i = 0; i < n->nseg; i++) {
		uint64_t a = n->segs[i].addr, l = n->segs[i].len;

		while (l) {
			uint64_t c = off < have ? UPMD_MIN(l, have - off) : UPMD_MIN(l, (uint64_t)PG);
			int rc;

			if (to_host)
				rc = upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, a,
							  off < have ? buf + off : n->zero, (size_t)c);
			else
				rc = upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, a,
							 off < have ? buf + off : n->sink, (size_t)c);
			if (rc < 0) {
				n->st.dma_faults++;
				return SC_DATA_XFER;
			}
			a += c;
			l -= c;
			off += c;
		}
	}
	return SC_OK;
}

/* ---- admin commands ------------------------------------------------------------------- */

static void identify_ctrl(struct upmd_model_dev *d, struct nvme *n, uint8_t *p)
{
	char nqn[96];

	memset(p, 0, PG);
	st16(p + 0, nvme_ops.vendor_id);		/* VID */
	st16(p + 2, nvme_ops.subsystem_vendor_id);	/* SSVID */
	put_str(p + 4, 20, n->serial);			/* SN */
	put_str(p + 24, 40, "upmd model NVMe");		/* MN */
	put_str(p + 64, 8, "1.0");			/* FR */
	p[72] = 6;					/* RAB: bursts of 64 */
	p[73] = 0x00;					/* IEEE OUI 52:54:00, LSB first */
	p[74] = 0x54;
	p[75] = 0x52;
	p[77] = (uint8_t)n->mdts;			/* MDTS */
	st16(p + 78, (uint16_t)d->index);		/* CNTLID */
	st32(p + 80, NV_VERSION);			/* VER */
	p[111] = 1;					/* CNTRLTYPE: I/O controller */
	p[258] = ACL;					/* ACL */
	p[259] = AER_MAX - 1;				/* AERL */
	p[260] = 0x03;					/* FRMW: one slot, read-only */
	p[262] = 0;					/* ELPE: one error log entry */
	st16(p + 266, 343);				/* WCTEMP, kelvin */
	st16(p + 268, 373);				/* CCTEMP */
	p[512] = 0x66;					/* SQES: 64 bytes */
	p[513] = 0x44;					/* CQES: 16 bytes */
	st32(p + 516, n->nn);				/* NN */
	st16(p + 520, (1u << 2) | (1u << 3));		/* ONCS: DSM, Write Zeroes */
	p[525] = 0x07;					/* VWC present, Flush of NSID FFFFFFFFh */
	st32(p + 536, n->sgl_off ? 0 : 0x1);		/* SGLS */
	snprintf(nqn, sizeof(nqn), "nqn.2024-01.org.upmd:model-nvme:%s", n->serial);
	memcpy(p + 768, nqn, strlen(nqn));		/* SUBNQN, NUL padded */
	st16(p + 2048, 2500);				/* PSD0 MP: 25 W */
}

static void ns_nguid(const struct upmd_model_dev *d, unsigned nsid, uint8_t *g)
{
	memset(g, 0, 16);
	memcpy(g, "upmdnvme", 8);
	st32(g + 8, d->index);
	st32(g + 12, nsid);
}

static void identify_ns(struct upmd_model_dev *d, struct nvme *n, unsigned nsid, uint8_t *p)
{
	const struct ns *ns = &n->ns[nsid - 1];

	memset(p, 0, PG);
	st64(p + 0, ns->nsze);				/* NSZE */
	st64(p + 8, ns->nsze);				/* NCAP */
	st64(p + 16, ns->nsze);				/* NUSE: not thin provisioned */
	p[25] = 0;					/* NLBAF: one format */
	p[26] = 0;					/* FLBAS: format 0, no metadata */
	p[33] = 0x09;					/* DLFEAT: deallocated reads 0, WZ deallocates */
	ns_nguid(d, nsid, p + 104);			/* NGUID */
	st32(p + 128, (uint32_t)n->lba_shift << 16);	/* LBAF0: LBADS, MS 0, RP 0 */
}

static uint16_t admin_identify(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe)
{
	uint32_t nsid = ld32(sqe + 4), cns = ld32(sqe + 40) & 0xff, i, k = 0;
	uint16_t sf;

	switch (cns) {
	case 0x00:
		if (nsid == 0 || nsid > n->nn)
			return SC_INVALID_NS;
		identify_ns(d, n, nsid, n->buf);
		break;
	case 0x01:
		identify_ctrl(d, n, n->buf);
		break;
	case 0x02:
		if (nsid >= 0xfffffffeu)
			return SC_INVALID_NS;
		memset(n->buf, 0, PG);
		for (i = nsid + 1; i <= n->nn; i++)
			st32(n->buf + 4 * k++, i);
		break;
	case 0x03:
		if (nsid == 0 || nsid > n->nn)
			return SC_INVALID_NS;
		memset(n->buf, 0, PG);
		n->buf[0] = 2;				/* NIDT: NGUID */
		n->buf[1] = 16;				/* NIDL */
		ns_nguid(d, nsid, n->buf + 4);
		break;
	default:
		return SC_INVALID_FIELD;
	}
	sf = map_dptr(d, n, sqe, PG, true);
	return sf ? sf : xfer(d, n, n->buf, PG, true);
}

static uint16_t admin_get_log(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe)
{
	uint32_t dw10 = ld32(sqe + 40), dw11 = ld32(sqe + 44);
	uint64_t numd = ((dw10 >> 16) | ((uint64_t)(dw11 & 0xffff) << 16)) + 1, len = numd * 4;
	uint64_t off = ld32(sqe + 48) | ((uint64_t)ld32(sqe + 52) << 32);
	size_t size;
	uint16_t sf;
	uint8_t *p = n->buf;

	memset(p, 0, PG);
	switch (dw10 & 0xff) {
	case 0x01:				/* Error Information: no errors logged */
		size = 64;
		break;
	case 0x02: {				/* SMART / Health Information */
		uint64_t ur = (n->st.bytes_read + 511999) / 512000, uw = (n->st.bytes_written + 511999) / 512000;

		st16(p + 1, 321);		/* composite temperature, kelvin */
		p[3] = 100;			/* available spare */
		p[4] = 10;			/* threshold */
		st64(p + 32, ur);
		st64(p + 48, uw);
		st64(p + 64, n->st.reads);
		st64(p + 80, n->st.writes);
		st64(p + 112, 1);		/* power cycles */
		size = 512;
		break;
	}
	case 0x03:				/* Firmware Slot Information */
		p[0] = 1;
		put_str(p + 8, 8, "1.0");
		size = 512;
		break;
	default:
		return SC_LOG_INVALID;
	}
	if ((off & 3) || off >= size || len > n->max_xfer)
		return SC_INVALID_FIELD;
	sf = map_dptr(d, n, sqe, len, true);
	return sf ? sf : xfer(d, n, p + off, size - off, true);
}

static bool io_queues_exist(const struct nvme *n)
{
	unsigned i;

	for (i = 1; i < NQ; i++)
		if (n->sq[i].size || n->cq[i].size)
			return true;
	return false;
}

static uint16_t admin_create_cq(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe)
{
	uint32_t dw10 = ld32(sqe + 40), dw11 = ld32(sqe + 44);
	uint16_t qid = (uint16_t)dw10, iv = (uint16_t)(dw11 >> 16);
	uint32_t qsize = (dw10 >> 16) + 1;
	uint64_t base = ld64(sqe + 24);
	bool ien = dw11 & 2;

	if (qid == 0 || qid > n->ncqa || n->cq[qid].size)
		return SC_QID_INVALID;
	if (qsize < 2 || qsize > n->mqes + 1)
		return SC_QSIZE_INVALID;
	if (ien && iv > n->queues)
		return SC_IV_INVALID;
	/* CAP.CQR: physically contiguous queues only; CC.IOCQES 16 bytes. */
	if (!(dw11 & 1) || CC_IOCQES(n->cc) != 4)
		return SC_INVALID_FIELD;
	if (base & PG_MASK)
		return SC_PRP_OFFSET;
	n->cq[qid] = (struct cq){ .base = base, .size = qsize, .iv = iv, .ien = ien, .phase = true };
	/* A new queue starts at 0, whatever the doorbell held for the queue
	 * of that id before (the driver writes it only after this completes). */
	bar_st32(d, cq_db(qid), 0);
	return SC_OK;
}

static uint16_t admin_create_sq(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe)
{
	uint32_t dw10 = ld32(sqe + 40), dw11 = ld32(sqe + 44);
	uint16_t qid = (uint16_t)dw10, cqid = (uint16_t)(dw11 >> 16);
	uint32_t qsize = (dw10 >> 16) + 1;
	uint64_t base = ld64(sqe + 24);

	if (qid == 0 || qid > n->nsqa || n->sq[qid].size)
		return SC_QID_INVALID;
	if (qsize < 2 || qsize > n->mqes + 1)
		return SC_QSIZE_INVALID;
	if (cqid == 0 || cqid > MAX_IOQ || !n->cq[cqid].size)
		return SC_CQ_INVALID;
	if (!(dw11 & 1) || CC_IOSQES(n->cc) != 6)
		return SC_INVALID_FIELD;
	if (base & PG_MASK)
		return SC_PRP_OFFSET;
	n->sq[qid] = (struct sq){ .base = base, .size = qsize, .cqid = cqid };
	n->cq[cqid].nsq++;
	bar_st32(d, sq_db(qid), 0);
	return SC_OK;
}

static uint16_t admin_delete_sq(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe)
{
	uint16_t qid = (uint16_t)ld32(sqe + 40);
	struct cq *cq;
	unsigned i;

	if (qid == 0 || qid > MAX_IOQ || !n->sq[qid].size)
		return SC_QID_INVALID;
	cq = &n->cq[n->sq[qid].cqid];
	/* Its held commands complete as aborted by the deletion, room allowing. */
	for (i = 0; i < n->nheld;) {
		if (n->held[i].sqid != qid) {
			i++;
			continue;
		}
		if (!fatal(n) && !cq_full(d, n->sq[qid].cqid, cq))
			post(d, n, qid, n->held[i].cid, 0, SC_ABORTED_SQ_DEL);
		held_remove(n, i);
	}
	for (i = 0; i < n->nabort_pend;) {
		if (n->abort_pend[i].sqid == qid)
			n->abort_pend[i] = n->abort_pend[--n->nabort_pend];
		else
			i++;
	}
	cq->nsq--;
	memset(&n->sq[qid], 0, sizeof(n->sq[qid]));
	return SC_OK;
}

static uint16_t admin_delete_cq(struct nvme *n, const uint8_t *sqe)
{
	uint16_t qid = (uint16_t)ld32(sqe + 40);

	if (qid == 0 || qid > MAX_IOQ || !n->cq[qid].size)
		return SC_QID_INVALID;
	if (n->cq[qid].nsq)
		return SC_QDEL_INVALID;
	memset(&n->cq[qid], 0, sizeof(n->cq[qid]));
	return SC_OK;
}

static bool feat_known(unsigned fid)
{
	switch (fid) {
	case F_ARB: case F_PM: case F_TEMP: case F_ERR_REC: case F_VWC: case F_NUM_QUEUES:
	case F_IRQ_COAL: case F_IRQ_CONF: case F_WRITE_ATOM: case F_AEN:
		return true;
	default:
		return false;
	}
}

static uint16_t admin_set_feat(struct nvme *n, const uint8_t *sqe, uint32_t *dw0)
{
	uint32_t dw10 = ld32(sqe + 40), dw11 = ld32(sqe + 44), fid = dw10 & 0xff;

	if (!feat_known(fid))
		return SC_INVALID_FIELD;
	if (dw10 & (1u << 31))
		return SC_NOT_SAVEABLE;
	if (fid == F_NUM_QUEUES) {
		uint32_t nsqr = dw11 & 0xffff, ncqr = dw11 >> 16;

		if (nsqr == 0xffff || ncqr == 0xffff)
			return SC_INVALID_FIELD;
		/* Only before any I/O queue is created. */
		if (io_queues_exist(n))
			return SC_CMD_SEQ;
		n->nsqa = UPMD_MIN(nsqr + 1, n->queues);
		n->ncqa = UPMD_MIN(ncqr + 1, n->queues);
		*dw0 = (n->nsqa - 1) | ((n->ncqa - 1) << 16);
		return SC_OK;
	}
	n->feat[fid] = fid == F_VWC ? (dw11 & 1) : dw11;
	return SC_OK;
}

static uint16_t admin_get_feat(struct nvme *n, const uint8_t *sqe, uint32_t *dw0)
{
	uint32_t dw10 = ld32(sqe + 40), fid = dw10 & 0xff, sel = (dw10 >> 8) & 7;

	if (!feat_known(fid) || sel > 3)
		return SC_INVALID_FIELD;
	if (sel == 3) {
		*dw0 = 0x4;			/* changeable, not saveable, controller-wide */
		return SC_OK;
	}
	if (fid == F_NUM_QUEUES) {
		unsigned s = sel == 0 ? n->nsqa : n->queues, c = sel == 0 ? n->ncqa : n->queues;

		*dw0 = (s - 1) | ((c - 1) << 16);
		return SC_OK;
	}
	if (sel == 0) {
		*dw0 = n->feat[fid];
	} else {
		*dw0 = fid == F_VWC ? 1 : fid == F_TEMP ? 343 : 0;
	}
	return SC_OK;
}

/* Is command @cid still in SQ @sqid between head and the tail doorbell? */
static bool in_sq(struct upmd_model_dev *d, struct nvme *n, uint16_t sqid, uint16_t cid)
{
	struct sq *sq = &n->sq[sqid];
	uint32_t tail = db_ld32(d, sq_db(sqid)), i;

	if (tail >= sq->size)
		return false;
	for (i = sq->head; i != tail; i = (i + 1) % sq->size) {
		uint8_t dw0[4];

		if (upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, sq->base + (uint64_t)i * 64, dw0, 4) < 0) {
			n->st.dma_faults++;
			return false;
		}
		if (ld16(dw0 + 2) == cid)
			return true;
	}
	return false;
}

/*
 * Abort: a held completion is released as ABORTED BY REQUEST, an
 * outstanding Async Event Request completes so, a command not fetched yet
 * completes so when the controller reaches it. DW0 bit 0: 0 aborted,
 * 1 not (it had completed, or was never there).
 */
static uint16_t admin_abort(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe, uint32_t *dw0)
{
	uint32_t dw10 = ld32(sqe + 40);
	uint16_t sqid = (uint16_t)dw10, cid = (uint16_t)(dw10 >> 16);
	unsigned i;

	*dw0 = 1;
	if (sqid > MAX_IOQ || !n->sq[sqid].size)
		return SC_OK;
	for (i = 0; i < n->nheld; i++) {
		struct held *h = &n->held[i];

		if (h->sqid == sqid && h->cid == cid && !h->release) {
			h->release = true;
			h->sf = SC_ABORTED;
			h->dw0 = 0;
			n->st.aborts++;
			*dw0 = 0;
			return SC_OK;
		}
	}
	if (sqid == 0) {
		for (i = 0; i < n->naer; i++) {
			if (n->aer_cid[i] != cid)
				continue;
			if (n->nheld == HELD_MAX)
				return SC_OK;
			n->aer_cid[i] = n->aer_cid[--n->naer];
			/* Posted once the admin CQ has room past this Abort's
			 * own entry. */
			n->held[n->nheld++] = (struct held){ .sqid = 0, .cid = cid, .sf = SC_ABORTED,
							     .release = true };
			n->st.aborts++;
			*dw0 = 0;
			return SC_OK;
		}
	}
	if (!in_sq(d, n, sqid, cid))
		return SC_OK;
	if (n->nabort_pend == ABORT_PEND_MAX)
		return SC_ABORT_LIMIT;
	n->abort_pend[n->nabort_pend].sqid = sqid;
	n->abort_pend[n->nabort_pend].cid = cid;
	n->nabort_pend++;
	*dw0 = 0;
	return SC_OK;
}

static uint16_t admin_cmd(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe, uint32_t *dw0)
{
	/* Fused operations are not supported (FUSES 0). */
	if (sqe[1] & 3)
		return SC_INVALID_FIELD;
	switch (sqe[0]) {
	case A_DELETE_SQ:
		return admin_delete_sq(d, n, sqe);
	case A_CREATE_SQ:
		return admin_create_sq(d, n, sqe);
	case A_GET_LOG:
		return admin_get_log(d, n, sqe);
	case A_DELETE_CQ:
		return admin_delete_cq(n, sqe);
	case A_CREATE_CQ:
		return admin_create_cq(d, n, sqe);
	case A_IDENTIFY:
		return admin_identify(d, n, sqe);
	case A_ABORT:
		return admin_abort(d, n, sqe, dw0);
	case A_SET_FEAT:
		return admin_set_feat(n, sqe, dw0);
	case A_GET_FEAT:
		return admin_get_feat(n, sqe, dw0);
	case A_AER:
		/* Held: the model raises no asynchronous events. */
		if (n->naer == AER_MAX)
			return SC_AER_LIMIT;
		n->aer_cid[n->naer++] = ld16(sqe + 2);
		return HOLD;
	default:
		return SC_INVALID_OPCODE;
	}
}

/* ---- I/O commands ---------------------------------------------------------------------- */

/* Zeros over [off, off + len) of a namespace: dropped pages read as zero. */
static void ns_zero(struct ns *ns, uint64_t off, uint64_t len)
{
	uint64_t a = UPMD_ALIGN_UP(off, (uint64_t)PG), b = UPMD_ALIGN_DOWN(off + len, (uint64_t)PG);

	if (!ns->anon || a >= b) {
		memset(ns->data + off, 0, (size_t)len);
		return;
	}
	memset(ns->data + off, 0, (size_t)(a - off));
	if (madvise(ns->data + a, (size_t)(b - a), MADV_DONTNEED) < 0)
		memset(ns->data + a, 0, (size_t)(b - a));
	memset(ns->data + b, 0, (size_t)(off + len - b));
}

static bool lba_ok(const struct ns *ns, uint64_t slba, uint64_t nlb)
{
	return slba < ns->nsze && nlb <= ns->nsze - slba;
}

static uint16_t io_rw(struct upmd_model_dev *d, struct nvme *n, struct ns *ns, const uint8_t *sqe, bool write)
{
	uint64_t slba = ld64(sqe + 40), nlb = (ld32(sqe + 48) & 0xffff) + 1;
	uint64_t len = nlb << n->lba_shift;
	uint16_t sf;

	if (!lba_ok(ns, slba, nlb))
		return SC_LBA_RANGE;
	if (len > n->max_xfer)
		return SC_INVALID_FIELD;
	sf = map_dptr(d, n, sqe, len, false);
	if (sf)
		return sf;
	sf = xfer(d, n, ns->data + (slba << n->lba_shift), len, !write);
	if (sf)
		return sf;
	if (write) {
		n->st.writes++;
		n->st.bytes_written += len;
	} else {
		n->st.reads++;
		n->st.bytes_read += len;
	}
	return SC_OK;
}

static uint16_t io_dsm(struct upmd_model_dev *d, struct nvme *n, struct ns *ns, const uint8_t *sqe)
{
	uint32_t nr = (ld32(sqe + 40) & 0xff) + 1, ad = ld32(sqe + 44) & (1u << 2), i;
	uint16_t sf;

	sf = map_dptr(d, n, sqe, (uint64_t)nr * 16, false);
	if (!sf)
		sf = xfer(d, n, n->buf, (uint64_t)nr * 16, false);
	if (sf)
		return sf;
	/* Ranges: context attributes, length in blocks, starting LBA. */
	for (i = 0; i < nr; i++)
		if (!lba_ok(ns, ld64(n->buf + 16 * i + 8), ld32(n->buf + 16 * i + 4)))
			return SC_LBA_RANGE;
	if (ad)
		for (i = 0; i < nr; i++)
			ns_zero(ns, ld64(n->buf + 16 * i + 8) << n->lba_shift,
				(uint64_t)ld32(n->buf + 16 * i + 4) << n->lba_shift);
	n->st.dsm++;
	return SC_OK;
}

static uint16_t io_cmd(struct upmd_model_dev *d, struct nvme *n, const uint8_t *sqe)
{
	uint32_t nsid = ld32(sqe + 4);
	struct ns *ns;
	unsigned i;

	if (sqe[1] & 3)
		return SC_INVALID_FIELD;
	if (sqe[0] == IO_FLUSH && nsid == 0xffffffffu) {
		for (i = 0; i < n->nn; i++)
			if (!n->ns[i].anon)
				msync(n->ns[i].data, n->ns[i].bytes, MS_SYNC);
		n->st.flushes++;
		return SC_OK;
	}
	if (nsid == 0 || nsid > n->nn)
		return SC_INVALID_NS;
	ns = &n->ns[nsid - 1];
	switch (sqe[0]) {
	case IO_FLUSH:
		if (!ns->anon)
			msync(ns->data, ns->bytes, MS_SYNC);
		n->st.flushes++;
		return SC_OK;
	case IO_WRITE:
		return io_rw(d, n, ns, sqe, true);
	case IO_READ:
		return io_rw(d, n, ns, sqe, false);
	case IO_WRITE_ZEROES: {
		uint64_t slba = ld64(sqe + 40), nlb = (ld32(sqe + 48) & 0xffff) + 1;

		/* No data moves: MDTS does not apply. */
		if (!lba_ok(ns, slba, nlb))
			return SC_LBA_RANGE;
		ns_zero(ns, slba << n->lba_shift, nlb << n->lba_shift);
		n->st.write_zeroes++;
		return SC_OK;
	}
	case IO_DSM:
		return io_dsm(d, n, ns, sqe);
	default:
		return SC_INVALID_OPCODE;
	}
}

/* ---- the device thread ------------------------------------------------------------------ */

static bool abort_pending(struct nvme *n, uint16_t sqid, uint16_t cid)
{
	unsigned i;

	for (i = 0; i < n->nabort_pend; i++) {
		if (n->abort_pend[i].sqid == sqid && n->abort_pend[i].cid == cid) {
			n->abort_pend[i] = n->abort_pend[--n->nabort_pend];
			return true;
		}
	}
	return false;
}

/* Up to BATCH commands of SQ @qid, each only when its CQ has room. */
static int process_sq(struct upmd_model_dev *d, struct nvme *n, uint16_t qid)
{
	struct sq *sq = &n->sq[qid];
	uint32_t tail = db_ld32(d, sq_db(qid));
	int work = 0, k;

	/* An out-of-range tail is an invalid doorbell write: ignored. */
	if (tail >= sq->size)
		return 0;
	for (k = 0; k < BATCH && sq->head != tail && n->ready && !fatal(n); k++) {
		uint8_t sqe[64];
		uint32_t dw0 = 0;
		uint16_t cid, sf;

		if (cq_full(d, sq->cqid, &n->cq[sq->cqid]))
			break;
		/* The doorbell load (acquire) orders this read after the
		 * driver's entry. */
		if (upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, sq->base + (uint64_t)sq->head * 64, sqe,
					sizeof(sqe)) < 0) {
			n->st.dma_faults++;
			go_fatal(d, n, "submission queue entry read failed");
			return 1;
		}
		sq->head = (sq->head + 1) % sq->size;
		cid = ld16(sqe + 2);
		work = 1;
		if (qid == 0)
			n->st.admin_cmds++;
		else
			n->st.io_cmds++;
		if (abort_pending(n, qid, cid)) {
			n->st.aborts++;
			post(d, n, qid, cid, 0, SC_ABORTED);
			continue;
		}
		sf = qid == 0 ? admin_cmd(d, n, sqe, &dw0) : io_cmd(d, n, sqe);
		if (sf == HOLD)
			continue;
		if (qid != 0 && n->drop_pending && n->nheld < HELD_MAX) {
			n->drop_pending--;
			n->held[n->nheld++] = (struct held){ .sqid = qid, .cid = cid, .dw0 = dw0, .sf = sf };
			continue;
		}
		post(d, n, qid, cid, dw0, sf);
		/* A Delete SQ or a reset of state may have taken this queue. */
		if (!sq->size)
			break;
	}
	return work;
}

static void mask_upkeep(struct upmd_model_dev *d, struct nvme *n)
{
	uint32_t mask = atomic_load(&n->intmask), s = bar_ld32(d, R_INTMS), c = bar_ld32(d, R_INTMC);

	/* Untrapped: a store to INTMS/INTMC shows as bytes differing from
	 * the mask (set and clear semantics, as far as that can tell). */
	if (s != mask)
		mask |= s;
	if (c != atomic_load(&n->intmask))
		mask &= ~c;
	atomic_store(&n->intmask, mask);
}

static int nvme_poll(struct upmd_model_dev *d)
{
	struct nvme *n = upmd_model_dev_priv(d);
	int work = 0;
	unsigned i;

	pthread_mutex_lock(&d->lock);
	if (n->no_trap)
		mask_upkeep(d, n);
	handle_cc(d, n);
	/* Without bus mastering nothing can be fetched: doorbells wait. */
	if (n->ready && !fatal(n) && !n->shutdown && upmd_model_dev_bus_master(d)) {
		work |= flush_released(d, n);
		work |= process_sq(d, n, 0);
		for (i = 0; i < MAX_IOQ && n->ready && !fatal(n); i++) {
			unsigned q = 1 + (n->rr + i) % MAX_IOQ;

			if (n->sq[q].size)
				work |= process_sq(d, n, (uint16_t)q);
		}
		n->rr = (n->rr + 1) % MAX_IOQ;
		raise_irqs(d, n);
	}
	/* Trapped loads get their bytes from nvme_read; storing here too
	 * could land a stale mask after a trapped INTMC store. */
	if (n->no_trap)
		store_ro(d, n);
	if (n->no_trap && n->ready) {
		/* Nothing kicks the thread when stores do not trap: keep
		 * looking for a while after the last command. */
		if (work)
			n->idle = 0;
		else if (n->idle < NO_TRAP_GRACE)
			work = ++n->idle < NO_TRAP_GRACE;
	}
	pthread_mutex_unlock(&d->lock);
	return work;
}

/* ---- registers ---------------------------------------------------------------------------- */

/* No logging and no locks: a trapped load runs this in a signal handler. */
static uint64_t nvme_read(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size)
{
	struct nvme *n = upmd_model_dev_priv(d);
	uint8_t img[R_END];
	uint64_t v = 0;

	if (bar != NV_BAR || off + size > NV_BAR_SIZE)
		return ~0ULL;
	if (off >= R_END) {
		memcpy(&v, (off < R_MSIX ? regs(d) : upmd_model_dev_bar(d, NV_BAR)) + off, size);
		return v;
	}
	memcpy(img, regs(d), R_END);
	st64(img + R_CAP, cap_value(n));
	st32(img + R_VS, NV_VERSION);
	st32(img + R_INTMS, atomic_load(&n->intmask));
	st32(img + R_INTMC, atomic_load(&n->intmask));
	st32(img + R_CSTS, atomic_load(&n->csts));
	st32(img + R_NSSR, 0);
	st32(img + 0x18, 0);
	memset(img + 0x38, 0, R_END - 0x38);	/* no CMB, no boot partitions */
	if (off + size <= R_END)
		memcpy(&v, img + off, size);
	return v;
}

static void nvme_write(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size, uint64_t val)
{
	struct nvme *n = upmd_model_dev_priv(d);

	if (bar != NV_BAR || off + size > NV_BAR_SIZE)
		return;
	if (size < 8)
		val &= (1ULL << (8 * size)) - 1;
	if (off == R_INTMS && size == 4) {
		uint32_t m = atomic_fetch_or(&n->intmask, (uint32_t)val) | (uint32_t)val;

		bar_st32(d, R_INTMS, m);
		bar_st32(d, R_INTMC, m);
	} else if (off == R_INTMC && size == 4) {
		uint32_t m = atomic_fetch_and(&n->intmask, ~(uint32_t)val) & ~(uint32_t)val;

		bar_st32(d, R_INTMS, m);
		bar_st32(d, R_INTMC, m);
	} else if (off == R_CC && size == 4) {
		if (!(val & CC_EN) && (bar_ld32(d, R_CC) & CC_EN))
			atomic_fetch_or(&n->cc_events, EV_DISABLE);
		bar_store(d, off, size, val);
		upmd_model_dev_kick(d);
	} else if (off >= R_AQA && off + size <= R_ACQ + 8 && (size == 4 || size == 8)) {
		bar_store(d, off, size, val);
	} else if (off >= R_DB && off + size <= R_DB + 8ULL * (n->queues + 1) && size == 4) {
		bar_store(d, off, size, val);
		upmd_model_dev_kick(d);
	} else if (off >= R_MSIX) {
		bar_store(d, off, size, val);
	}
	/* CAP, VS, CSTS, NSSR (no subsystem reset) and reserved: read-only. */
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static int ns_setup(struct upmd_model_dev *d, struct nvme *n)
{
	unsigned i;

	for (i = 0; i < n->nn; i++) {
		struct ns *ns = &n->ns[i];
		void *p;

		ns->bytes = (size_t)(n->ns_mb << 20);
		ns->nsze = ns->bytes >> n->lba_shift;
		if (i == 0 && n->file) {
			struct stat sb;

			n->fd = open(n->file, O_RDWR | O_CLOEXEC);
			n->fd_open = n->fd >= 0;
			if (n->fd < 0) {
				int rc = -errno;

				UPMD_ERR(MODEL_LOG, "%s: file=%s: cannot open for reading and writing: %s",
					 upmd_model_dev_name(d), n->file, strerror(-rc));
				return rc == -ENOENT || rc == -EACCES ? -EINVAL : rc;
			}
			if (fstat(n->fd, &sb) < 0 || (uint64_t)sb.st_size < ns->bytes) {
				UPMD_ERR(MODEL_LOG,
					 "%s: file=%s holds %lld bytes, namespace 1 needs %zu (ns_mb=%llu): "
					 "grow it (truncate -s %lluM %s) or give a smaller ns_mb",
					 upmd_model_dev_name(d), n->file, (long long)sb.st_size, ns->bytes,
					 (unsigned long long)n->ns_mb, (unsigned long long)n->ns_mb, n->file);
				return -EINVAL;
			}
			p = mmap(NULL, ns->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, n->fd, 0);
		} else {
			p = mmap(NULL, ns->bytes, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			ns->anon = true;
		}
		if (p == MAP_FAILED) {
			UPMD_ERR(MODEL_LOG, "%s: namespace %u: cannot map %zu bytes: %s", upmd_model_dev_name(d),
				 i + 1, ns->bytes, strerror(errno));
			return -ENOMEM;
		}
		ns->data = p;
	}
	return 0;
}

static void nvme_fini(struct upmd_model_dev *d)
{
	struct nvme *n = upmd_model_dev_priv(d);
	unsigned i;

	for (i = 0; i < MAX_NS; i++)
		if (n->ns[i].data)
			munmap(n->ns[i].data, n->ns[i].bytes);
	if (n->fd_open)
		close(n->fd);
	free(n->segs);
	free(n->file);
}

static int nvme_init(struct upmd_model_dev *d)
{
	struct nvme *n = upmd_model_dev_priv(d);
	int rc;

	defaults(n);
	if (!n->serial[0])
		snprintf(n->serial, sizeof(n->serial), "UPMD-MODEL-%u", d->index);
	n->max_xfer = n->mdts ? (uint64_t)PG << n->mdts : 65536ULL << n->lba_shift;
	/* Enough for a PRP per page of the largest transfer; an SGL with
	 * more (byte-sized) blocks than that is refused. */
	n->max_segs = (unsigned)(n->max_xfer / PG + 2);
	n->max_segs = UPMD_MAX(n->max_segs, 256u);
	n->segs = calloc(n->max_segs, sizeof(*n->segs));
	if (!n->segs)
		return -ENOMEM;
	rc = ns_setup(d, n);
	if (rc < 0)
		return rc;	/* fini undoes it */
	n->no_trap = !model_trap_supported();
	pthread_mutex_lock(&d->lock);
	ctrl_reset(d, n);
	store_ro(d, n);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Function reset: the controller's power-on state, registers included. */
static void nvme_reset(struct upmd_model_dev *d)
{
	struct nvme *n = upmd_model_dev_priv(d);

	pthread_mutex_lock(&d->lock);
	memset(upmd_model_dev_bar(d, NV_BAR), 0, R_MSIX);
	memset(n->shadow, 0, sizeof(n->shadow));
	atomic_store(&n->intmask, 0);
	atomic_store(&n->cc_events, 0);
	ctrl_reset(d, n);
	n->cc = 0;
	n->st.resets++;
	store_ro(d, n);
	pthread_mutex_unlock(&d->lock);
}

static struct upmd_model_dev *find_nvme(struct upmd_model *m, const char *bdf, int *rc)
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
	else if (d->ops != &nvme_ops)
		*rc = -ENODEV;
	return *rc ? NULL : d;
}

int upmd_model_nvme_inject(struct upmd_model *m, const char *bdf, enum upmd_model_nvme_fault f,
			   unsigned count)
{
	struct upmd_model_dev *d;
	struct nvme *n;
	int rc;

	if (f != UPMD_MODEL_NVME_FATAL && f != UPMD_MODEL_NVME_DROP_CPL)
		return -EINVAL;
	if (f == UPMD_MODEL_NVME_DROP_CPL && (count == 0 || count > HELD_MAX))
		return -EINVAL;
	d = find_nvme(m, bdf, &rc);
	if (!d)
		return rc;
	n = upmd_model_dev_priv(d);
	pthread_mutex_lock(&d->lock);
	if (f == UPMD_MODEL_NVME_FATAL) {
		n->fatal_logged = true;		/* asked for: no warning */
		set_csts(d, n, atomic_load(&n->csts) | CSTS_CFS);
	} else {
		n->drop_pending = UPMD_MIN(n->drop_pending + count, (unsigned)HELD_MAX);
	}
	pthread_mutex_unlock(&d->lock);
	upmd_model_dev_kick(d);
	return 0;
}

int upmd_model_nvme_stats(struct upmd_model *m, const char *bdf, struct upmd_model_nvme_stats *st)
{
	struct upmd_model_dev *d;
	struct nvme *n;
	unsigned i;
	int rc;

	if (!st)
		return -EINVAL;
	d = find_nvme(m, bdf, &rc);
	if (!d)
		return rc;
	n = upmd_model_dev_priv(d);
	pthread_mutex_lock(&d->lock);
	*st = n->st;
	st->io_sqs = st->io_cqs = 0;
	for (i = 1; i < NQ; i++) {
		st->io_sqs += n->sq[i].size != 0;
		st->io_cqs += n->cq[i].size != 0;
	}
	st->csts = (uint8_t)atomic_load(&n->csts);
	st->cc = n->cc;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static const struct upmd_model_dev_ops nvme_ops = {
	.type = "nvme",
	.vendor_id = 0x1b36,		/* Red Hat, QEMU's NVMe controller */
	.device_id = 0x0010,
	.subsystem_vendor_id = 0x1af4,
	.subsystem_device_id = 0x1100,
	.class_code = 0x010802,		/* mass storage, NVM, NVM Express */
	.revision = 0x02,
	.pcie = true,
	.reset_works = true,
	.bar_size = { [NV_BAR] = NV_BAR_SIZE },
	.bar_flags = { [NV_BAR] = MODEL_BAR_64 },
	.trap_bars = 1u << NV_BAR,
	.trap_keep_start = R_DB,
	.trap_keep_end = R_MSIX,
	.irq_kind = MODEL_IRQ_MSIX,
	.irq_vectors = 9,		/* queues=8; the config hook sets each instance's */
	.intx_pin = 1,
	.priv_size = sizeof(struct nvme),
	.config = nvme_config,
	.arg = nvme_arg,
	.init = nvme_init,
	.fini = nvme_fini,
	.reset = nvme_reset,
	.poll = nvme_poll,
	.mmio_read = nvme_read,
	.mmio_write = nvme_write,
};

UPMD_MODEL_REGISTER_DEV(nvme_ops)
