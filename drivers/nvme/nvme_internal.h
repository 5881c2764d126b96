/* The NVMe driver's private structures: controller registers, queue pairs and request trackers. */
#ifndef UPMD_NVME_INTERNAL_H
#define UPMD_NVME_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/mempool.h>
#include <upmd/nvme.h>
#include <upmd/pci.h>

#define NVME_LOG "nvme"

/* Controller registers (BAR0). */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_REG_DBS 0x1000

#define NVME_CAP_MQES(c) ((uint32_t)((c) & 0xffff))
#define NVME_CAP_CQR(c) (((c) >> 16) & 0x1)
#define NVME_CAP_TO(c) ((uint32_t)(((c) >> 24) & 0xff))	/* 500 ms units */
#define NVME_CAP_DSTRD(c) ((uint32_t)(((c) >> 32) & 0xf))
#define NVME_CAP_CSS_NVM(c) (((c) >> 37) & 0x1)
#define NVME_CAP_MPSMIN(c) ((uint32_t)(((c) >> 48) & 0xf))

#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS_NVM (0u << 4)
#define NVME_CC_MPS(shift) ((uint32_t)((shift) - 12) << 7)
#define NVME_CC_AMS_RR (0u << 11)
#define NVME_CC_SHN_MASK (3u << 14)
#define NVME_CC_SHN_NORMAL (1u << 14)
#define NVME_CC_IOSQES(l) ((uint32_t)(l) << 16)
#define NVME_CC_IOCQES(l) ((uint32_t)(l) << 20)

#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_DONE (2u << 2)

#define NVME_PAGE 4096u
#define NVME_PAGE_SHIFT 12

/* PSDT in command byte 1, bits 7:6. */
#define NVME_PSDT_SGL_MPTR_CONTIG (1u << 6)

/* SGL descriptor types (byte 15, bits 7:4). */
#define NVME_SGL_TYPE_DATA_BLOCK 0x0
#define NVME_SGL_TYPE_SEGMENT 0x2
#define NVME_SGL_TYPE_LAST_SEGMENT 0x3

/* What a tracker's list area holds: 256 PRP entries (a 1 MiB transfer at
 * any offset needs at most 256 besides PRP1) or 128 SGL descriptors or
 * 128 DSM ranges. The tracker never crosses a 4 KiB page
 * (UPMD_MEMPOOL_F_NO_PAGE_CROSS), so a PRP list never needs chaining. */
#define NVME_LIST_BYTES 2048u
#define NVME_PRP_LIST_MAX (NVME_LIST_BYTES / 8)
#define NVME_SGL_LIST_MAX (NVME_LIST_BYTES / 16)
#define NVME_DSM_MAX_RANGES (NVME_LIST_BYTES / 16)
#define NVME_MAX_XFER (1u << 20)
/* nvme_qpair_submit() with len NVME_DPTR_AS_IS and no buffer: the command
 * carries its own PRP1 (queue creation). */
#define NVME_DPTR_AS_IS 0xffffffffu

struct nvme_tracker {
	uint64_t list[NVME_PRP_LIST_MAX];	/* PRP list / SGL segment / DSM ranges */
	upmd_nvme_cmd_cb cb;			/* NULL: free */
	void *cb_arg;
	uint64_t submit_tsc;
	uint64_t list_iova;
	uint16_t cid;
	uint8_t aborting;			/* an Abort was sent for it */
};

enum nvme_qp_state {
	NVME_QP_CONNECTED = 0,
	NVME_QP_DISCONNECTED,	/* the controller was reset: fail and re-create */
	NVME_QP_FAILED,		/* the controller is gone */
};

struct upmd_nvme_qpair {
	/* Hot: submission and completion. */
	struct upmd_nvme_cmd *sq;
	volatile struct upmd_nvme_cpl *cq;
	volatile uint32_t *sq_db;
	volatile uint32_t *cq_db;
	uint32_t sq_tail;
	uint32_t sq_db_tail;		/* the tail last written to the doorbell */
	uint32_t cq_head;
	uint32_t qsize;
	uint8_t phase;
	uint8_t use_sgl;
	uint8_t state;			/* enum nvme_qp_state, written by a reset */
	uint8_t is_admin;
	uint8_t deleting;		/* being freed: never re-created */
	uint8_t in_abort;		/* failing its requests: submissions refused */
	uint32_t outstanding;
	uint32_t max_xfer;
	struct upmd_mempool *trk_pool;
	struct nvme_tracker **trk;	/* by CID */
	uint64_t timeout_tsc;		/* 0: none */
	uint64_t next_check_tsc;
	struct upmd_nvme_ctrlr *ctrlr;
	/* Cold. */
	uint16_t qid;
	uint16_t sq_head;		/* from the last completion */
	const struct upmd_memzone *sq_mz, *cq_mz;
	uint64_t bad_cids;		/* completions naming no outstanding request */
	unsigned recreate_failures;	/* tries to re-create the queues after a reset */
};

struct upmd_nvme_ns {
	struct upmd_nvme_ctrlr *ctrlr;
	uint32_t id;
	uint32_t sector_size;
	uint32_t sector_shift;
	uint64_t num_sectors;
	struct upmd_nvme_ns_data data;
};

#define NVME_MAX_IO_QUEUES 1024

struct upmd_nvme_ctrlr {
	struct upmd_pci_device *pdev;
	volatile uint8_t *regs;
	uint64_t cap;
	uint32_t vs;
	uint32_t db_stride;		/* bytes */
	uint32_t timeout_ms;		/* CAP.TO */
	struct upmd_nvme_ctrlr_opts opts;
	struct upmd_nvme_ctrlr_data cdata;
	uint32_t max_xfer;
	uint32_t max_qsize;
	uint32_t io_queues;		/* granted */
	bool use_sgl;
	volatile int failed;
	volatile int resetting;
	uint64_t resets;
	unsigned index;
	/* The admin queue pair and everything that touches it. */
	pthread_mutex_t adm_lock;
	struct upmd_nvme_qpair *adminq;
	const struct upmd_memzone *dma_buf;	/* 4 KiB for Identify data, under adm_lock */
	struct upmd_nvme_qpair **qpairs;	/* by qid, [0] unused */
	/* Namespaces: ids 1..nn, NULL when inactive. */
	uint32_t nn;
	struct upmd_nvme_ns **ns;
};

extern uint64_t nvme_tsc_hz;

static inline uint64_t nvme_rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

static inline uint32_t nvme_rd32(const struct upmd_nvme_ctrlr *c, unsigned off)
{
	return upmd_mmio_read32(c->regs + off);
}

static inline void nvme_wr32(struct upmd_nvme_ctrlr *c, unsigned off, uint32_t v)
{
	upmd_mmio_write32(c->regs + off, v);
}

/* Queue pairs (nvme_qpair.c). */
int nvme_qpair_init(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp, uint16_t qid, uint32_t qsize);
void nvme_qpair_fini(struct upmd_nvme_qpair *qp);
void nvme_qpair_reset_rings(struct upmd_nvme_qpair *qp);
void nvme_qpair_noop_cb(void *arg, const struct upmd_nvme_cpl *cpl);
void nvme_qpair_abort_all(struct upmd_nvme_qpair *qp, uint16_t status);
/* Queue @cmd (CID and data pointer filled in here). The data: @len bytes at
 * VA @buf (translated), or at IOVA @iova when @buf is NULL, or, with
 * @inline_data, @len bytes copied into the tracker's own list area. */
int nvme_qpair_submit(struct upmd_nvme_qpair *qp, struct upmd_nvme_cmd *cmd, const void *buf, uint64_t iova,
		      uint32_t len, const void *inline_data, upmd_nvme_cmd_cb cb, void *cb_arg);
void nvme_qpair_ring_sq(struct upmd_nvme_qpair *qp);
int nvme_qpair_reap(struct upmd_nvme_qpair *qp, uint32_t max);

/* Controller (nvme_ctrlr.c). */
int nvme_ctrlr_create_io_queues(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp);
int nvme_ctrlr_reset_locked(struct upmd_nvme_ctrlr *c, const char *why);
int nvme_admin_sync_locked(struct upmd_nvme_ctrlr *c, struct upmd_nvme_cmd *cmd, void *buf, uint32_t len,
			   struct upmd_nvme_cpl *cpl);
void nvme_ctrlr_check_health(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp, uint64_t now);

#endif /* UPMD_NVME_INTERNAL_H */
