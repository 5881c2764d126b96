/* NVMe queue pairs: rings in memzones, request trackers from a mempool, submission with PRPs or SGLs, completion on the phase bit, timeouts and recovery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/iova.h>

#include "nvme_internal.h"

/* How often a queue pair with requests outstanding looks at their age and
 * at the controller's status (CSTS): 50 ms. */
#define NVME_CHECK_MS 50

void nvme_qpair_noop_cb(void *arg, const struct upmd_nvme_cpl *cpl)
{
	(void)arg;
	(void)cpl;
}

static void trk_init(struct upmd_mempool *mp, void *arg, void *obj, unsigned idx)
{
	struct upmd_nvme_qpair *qp = arg;
	struct nvme_tracker *t = obj;

	(void)mp;
	memset(t, 0, sizeof(*t));
	t->cid = (uint16_t)idx;
	t->list_iova = upmd_mempool_virt2iova(t);
	qp->trk[idx] = t;
}

void nvme_qpair_reset_rings(struct upmd_nvme_qpair *qp)
{
	qp->sq_tail = qp->sq_db_tail = 0;
	qp->cq_head = 0;
	qp->sq_head = 0;
	qp->phase = 1;
	memset((void *)(uintptr_t)qp->cq, 0, (size_t)qp->qsize * sizeof(struct upmd_nvme_cpl));
	memset(qp->sq, 0, (size_t)qp->qsize * sizeof(struct upmd_nvme_cmd));
}

int nvme_qpair_init(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp, uint16_t qid, uint32_t qsize)
{
	int socket = c->opts.socket_id != UPMD_SOCKET_ID_ANY ? c->opts.socket_id : c->pdev->numa_node;
	unsigned ntrk = qsize - 1, cache;
	char name[32];
	int rc;

	if (socket < 0)
		socket = UPMD_SOCKET_ID_ANY;
	qp->ctrlr = c;
	qp->qid = qid;
	qp->qsize = qsize;
	qp->is_admin = qid == 0;
	qp->use_sgl = qid != 0 && c->use_sgl;
	qp->max_xfer = c->max_xfer ? c->max_xfer : NVME_MAX_XFER;
	qp->state = NVME_QP_CONNECTED;
	qp->sq_db = (volatile uint32_t *)(void *)(c->regs + NVME_REG_DBS + (2u * qid) * c->db_stride);
	qp->cq_db = (volatile uint32_t *)(void *)(c->regs + NVME_REG_DBS + (2u * qid + 1) * c->db_stride);
	snprintf(name, sizeof(name), "nvme%u_sq%u", c->index, qid);
	rc = upmd_memzone_reserve(name, (size_t)qsize * sizeof(struct upmd_nvme_cmd), socket, NVME_PAGE, &qp->sq_mz);
	if (rc < 0)
		goto fail;
	snprintf(name, sizeof(name), "nvme%u_cq%u", c->index, qid);
	rc = upmd_memzone_reserve(name, (size_t)qsize * sizeof(struct upmd_nvme_cpl), socket, NVME_PAGE, &qp->cq_mz);
	if (rc < 0)
		goto fail;
	qp->sq = qp->sq_mz->addr;
	qp->cq = qp->cq_mz->addr;
	qp->trk = calloc(ntrk, sizeof(*qp->trk));
	if (!qp->trk) {
		rc = -ENOMEM;
		goto fail;
	}
	/* One thread uses a queue pair: a single-producer, single-consumer
	 * ring behind the lcore cache. */
	cache = ntrk * 2 / 3;
	if (cache > UPMD_MEMPOOL_CACHE_MAX_SIZE)
		cache = UPMD_MEMPOOL_CACHE_MAX_SIZE;
	/* The admin queue is used from any thread (under the lock): lcore
	 * caches would strand its few trackers on one lcore. */
	if (qid == 0)
		cache = 0;
	snprintf(name, sizeof(name), "nvme%u_trk%u", c->index, qid);
	rc = upmd_mempool_create(name, ntrk, sizeof(struct nvme_tracker), cache, 0, socket,
				 UPMD_MEMPOOL_F_SP_PUT | UPMD_MEMPOOL_F_SC_GET | UPMD_MEMPOOL_F_NO_PAGE_CROSS, trk_init,
				 qp, &qp->trk_pool);
	if (rc < 0)
		goto fail;
	nvme_qpair_reset_rings(qp);
	return 0;
fail:
	UPMD_ERR(NVME_LOG, "%s: queue %u of %u entries: cannot allocate its rings and trackers: %s",
		 c->pdev->name, qid, qsize, strerror(-rc));
	nvme_qpair_fini(qp);
	return rc;
}

void nvme_qpair_fini(struct upmd_nvme_qpair *qp)
{
	if (qp->trk_pool)
		upmd_mempool_free(qp->trk_pool);
	qp->trk_pool = NULL;
	free(qp->trk);
	qp->trk = NULL;
	if (qp->sq_mz)
		upmd_memzone_free(qp->sq_mz);
	if (qp->cq_mz)
		upmd_memzone_free(qp->cq_mz);
	qp->sq_mz = qp->cq_mz = NULL;
	qp->sq = NULL;
	qp->cq = NULL;
}

/* Complete every outstanding request with @status, as if the controller had. */
void nvme_qpair_abort_all(struct upmd_nvme_qpair *qp, uint16_t status)
{
	unsigned i;

	if (!qp->trk)
		return;
	/* Callbacks below may submit (refused: -EAGAIN, or -ENXIO when the
	 * pair is being freed) or poll (nothing happens) but not re-create
	 * the queues under us. */
	qp->in_abort = 1;
	for (i = 0; i < qp->qsize - 1; i++) {
		struct nvme_tracker *t = qp->trk[i];
		struct upmd_nvme_cpl cpl = { .sqhd = (uint16_t)qp->sq_head, .sqid = qp->qid, .cid = t->cid,
					     .status = status };
		upmd_nvme_cmd_cb cb = t->cb;
		void *arg = t->cb_arg;

		if (!cb)
			continue;
		t->cb = NULL;
		upmd_mempool_put(qp->trk_pool, t);
		qp->outstanding--;
		cb(arg, &cpl);
	}
	qp->in_abort = 0;
}

void nvme_qpair_ring_sq(struct upmd_nvme_qpair *qp)
{
	if (qp->sq_tail != qp->sq_db_tail) {
		/* The entries (ordinary stores) reach memory before the
		 * doorbell store: a release fence orders them for the
		 * compiler and, off x86, for the CPU. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		*qp->sq_db = qp->sq_tail;
		qp->sq_db_tail = qp->sq_tail;
	}
}

struct xlate_va {
	uintptr_t base;
};

static uint64_t xlate_va(const void *ctx, uint64_t k)
{
	const struct xlate_va *x = ctx;

	return upmd_iova_from_va((const void *)(x->base + (uintptr_t)(k << NVME_PAGE_SHIFT)));
}

static uint64_t xlate_iova(const void *ctx, uint64_t k)
{
	return *(const uint64_t *)ctx + (k << NVME_PAGE_SHIFT);
}

/* The data pointer of a buffer that needs more than the command's two
 * PRP entries or one SGL descriptor. */
static int nvme_build_dptr_long(struct upmd_nvme_qpair *qp, struct nvme_tracker *t, struct upmd_nvme_cmd *cmd,
				const void *buf, uint64_t iova, uint32_t len)
{
	struct xlate_va xv;
	uint64_t base_iova;
	upmd_nvme_xlate_fn fn;
	const void *ctx;
	uint32_t off;
	int rc;

	if (buf) {
		off = (uint32_t)((uintptr_t)buf & (NVME_PAGE - 1));
		xv.base = (uintptr_t)buf - off;
		fn = xlate_va;
		ctx = &xv;
	} else {
		off = (uint32_t)(iova & (NVME_PAGE - 1));
		base_iova = iova - off;
		fn = xlate_iova;
		ctx = &base_iova;
	}
	if (qp->use_sgl) {
		rc = upmd_nvme_build_sgl(fn, ctx, off, len, cmd, t->list, t->list_iova, NVME_SGL_LIST_MAX);
		if (rc != -EINVAL)
			return rc < 0 ? rc : 0;
		/* Too many pieces for one segment: PRPs take any layout. */
		cmd->fuse_psdt &= 0x3;
	}
	rc = upmd_nvme_build_prps(fn, ctx, off, len, &cmd->dptr.prp.prp1, &cmd->dptr.prp.prp2, t->list, t->list_iova,
				  NVME_PRP_LIST_MAX);
	return rc < 0 ? rc : 0;
}

int nvme_qpair_submit(struct upmd_nvme_qpair *qp, struct upmd_nvme_cmd *cmd, const void *buf, uint64_t iova,
		      uint32_t len, const void *inline_data, upmd_nvme_cmd_cb cb, void *cb_arg)
{
	struct nvme_tracker *t;
	uint32_t tail;

	if (upmd_unlikely(__atomic_load_n(&qp->state, __ATOMIC_RELAXED) != NVME_QP_CONNECTED || qp->in_abort))
		return qp->state == NVME_QP_FAILED || qp->ctrlr->failed || qp->deleting ? -ENXIO : -EAGAIN;
	if (upmd_unlikely(upmd_mempool_get(qp->trk_pool, (void **)&t) < 0))
		return -EAGAIN;
	cmd->cid = t->cid;
	if (len == NVME_DPTR_AS_IS) {
		/* the command carries its own PRP1 */
	} else if (len == 0) {
		cmd->dptr.prp.prp1 = 0;
		cmd->dptr.prp.prp2 = 0;
	} else if (upmd_unlikely(inline_data != NULL)) {
		memcpy(t->list, inline_data, len);
		cmd->dptr.prp.prp1 = t->list_iova;
		cmd->dptr.prp.prp2 = 0;
	} else {
		uint32_t off;
		uint64_t first;

		if (buf) {
			off = (uint32_t)((uintptr_t)buf & (NVME_PAGE - 1));
			first = upmd_iova_from_va(buf);
		} else {
			off = (uint32_t)(iova & (NVME_PAGE - 1));
			first = iova;
		}
		if (upmd_likely(off + len <= NVME_PAGE && first != UPMD_BAD_IOVA && !(off & 3) && !qp->use_sgl)) {
			/* The usual case: one page, PRP1 alone. */
			cmd->dptr.prp.prp1 = first;
			cmd->dptr.prp.prp2 = 0;
		} else {
			int rc = first == UPMD_BAD_IOVA ? -EFAULT : nvme_build_dptr_long(qp, t, cmd, buf, iova, len);

			if (upmd_unlikely(rc < 0)) {
				upmd_mempool_put(qp->trk_pool, t);
				return rc;
			}
		}
	}
	t->cb = cb ? cb : nvme_qpair_noop_cb;
	t->cb_arg = cb_arg;
	t->aborting = 0;
	t->submit_tsc = qp->timeout_tsc ? nvme_rdtsc() : 0;
	tail = qp->sq_tail;
	memcpy(&qp->sq[tail], cmd, sizeof(*cmd));
	qp->sq_tail = ++tail == qp->qsize ? 0 : tail;
	qp->outstanding++;
	return 0;
}

/* Reap up to @max completions; the CQ doorbell once at the end. */
int nvme_qpair_reap(struct upmd_nvme_qpair *qp, uint32_t max)
{
	uint32_t head = qp->cq_head, n = 0;
	uint8_t phase = qp->phase;

	for (;;) {
		volatile struct upmd_nvme_cpl *cpl = &qp->cq[head];
		uint16_t status = cpl->status;
		struct nvme_tracker *t;
		upmd_nvme_cmd_cb cb;
		void *arg;
		uint16_t cid;

		if ((status & 1) != phase)
			break;
		/* The rest of the entry was written before its phase bit:
		 * read it after (compiler ordering; x86 keeps loads in order). */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (++head == qp->qsize) {
			head = 0;
			phase ^= 1;
		}
		cid = cpl->cid;
		qp->sq_head = cpl->sqhd;
		if (upmd_unlikely(cid >= qp->qsize - 1 || !(t = qp->trk[cid])->cb)) {
			/* The controller named a command we do not have. */
			qp->bad_cids++;
			continue;
		}
		cb = t->cb;
		arg = t->cb_arg;
		t->cb = NULL;
		upmd_mempool_put(qp->trk_pool, t);
		qp->outstanding--;
		cb(arg, (const struct upmd_nvme_cpl *)(uintptr_t)cpl);
		if (++n == max)
			break;
	}
	if (head != qp->cq_head || phase != qp->phase) {
		qp->cq_head = head;
		qp->phase = phase;
		*qp->cq_db = head;
	}
	return (int)n;
}

/* Requests older than the timeout: abort them; one already aborted: reset. */
static void nvme_qpair_check_timeouts(struct upmd_nvme_qpair *qp, uint64_t now)
{
	struct upmd_nvme_ctrlr *c = qp->ctrlr;
	unsigned i;

	for (i = 0; i < qp->qsize - 1; i++) {
		struct nvme_tracker *t = qp->trk[i];
		struct upmd_nvme_cmd abort_cmd;
		int rc;

		if (!t->cb || !t->submit_tsc || now - t->submit_tsc < qp->timeout_tsc)
			continue;
		if (t->aborting) {
			UPMD_ERR(NVME_LOG, "%s: queue %u command %u: not done %u ms after it was aborted: resetting the controller",
				 c->pdev->name, qp->qid, t->cid, c->opts.io_timeout_ms);
			upmd_nvme_ctrlr_reset(c);
			return;
		}
		UPMD_WARN(NVME_LOG, "%s: queue %u command %u: not done after %u ms: aborting it", c->pdev->name,
			  qp->qid, t->cid, c->opts.io_timeout_ms);
		memset(&abort_cmd, 0, sizeof(abort_cmd));
		abort_cmd.opc = UPMD_NVME_ADM_ABORT;
		abort_cmd.cdw10 = ((uint32_t)t->cid << 16) | qp->qid;
		rc = upmd_nvme_ctrlr_cmd_admin_raw(c, &abort_cmd, NULL, 0, NULL, NULL);
		if (rc == -EAGAIN)
			return;	/* the admin queue is full: the next check tries again */
		if (rc < 0) {
			upmd_nvme_ctrlr_reset(c);
			return;
		}
		t->aborting = 1;
		t->submit_tsc = now;
	}
}

/* The controller was reset (or failed): fail what was outstanding and,
 * if it is back, re-create the queues. */
static int nvme_qpair_recover(struct upmd_nvme_qpair *qp)
{
	struct upmd_nvme_ctrlr *c = qp->ctrlr;
	int rc = 0;

	if (qp->in_abort || qp->deleting)
		return qp->deleting ? -ENXIO : 0;
	/* The controller is disabled: what it completed before is reported
	 * as it was, the rest fails. */
	nvme_qpair_reap(qp, 0);
	nvme_qpair_abort_all(qp, UPMD_NVME_STATUS(UPMD_NVME_SCT_GENERIC, UPMD_NVME_SC_ABORTED_SQ_DELETION));
	pthread_mutex_lock(&c->adm_lock);
	if (c->failed) {
		qp->state = NVME_QP_FAILED;
		rc = -ENXIO;
	} else if (qp->state == NVME_QP_DISCONNECTED) {
		nvme_qpair_reset_rings(qp);
		rc = nvme_ctrlr_create_io_queues(c, qp);
		if (rc == 0) {
			qp->recreate_failures = 0;
			__atomic_store_n(&qp->state, NVME_QP_CONNECTED, __ATOMIC_RELEASE);
		} else if (c->failed) {
			rc = -ENXIO;
		} else if (++qp->recreate_failures >= 3) {
			UPMD_ERR(NVME_LOG, "%s: queue pair %u could not be re-created after the reset (3 tries): it is "
				 "failed; free it and allocate another", c->pdev->name, qp->qid);
			qp->state = NVME_QP_FAILED;
			rc = -ENXIO;
		} else {
			rc = 0;
		}
	} else if (qp->state == NVME_QP_FAILED) {
		rc = -ENXIO;
	}
	pthread_mutex_unlock(&c->adm_lock);
	return rc;
}

int upmd_nvme_qpair_process_completions(struct upmd_nvme_qpair *qp, uint32_t max_completions)
{
	int n;

	if (upmd_unlikely(qp->in_abort))
		return 0;	/* a callback of the requests being failed polls: nothing to do */
	if (upmd_unlikely(__atomic_load_n(&qp->state, __ATOMIC_ACQUIRE) != NVME_QP_CONNECTED)) {
		int rc = nvme_qpair_recover(qp);

		if (rc < 0 || qp->state != NVME_QP_CONNECTED)
			return rc;
	}
	nvme_qpair_ring_sq(qp);
	if (max_completions == 0 || max_completions > qp->qsize)
		max_completions = qp->qsize;
	n = nvme_qpair_reap(qp, max_completions);
	/* What the callbacks submitted. */
	nvme_qpair_ring_sq(qp);
	if (qp->outstanding) {
		uint64_t now = nvme_rdtsc();

		if (upmd_unlikely(now >= qp->next_check_tsc)) {
			qp->next_check_tsc = now + nvme_tsc_hz / (1000 / NVME_CHECK_MS);
			nvme_ctrlr_check_health(qp->ctrlr, qp, now);
			if (qp->timeout_tsc && qp->state == NVME_QP_CONNECTED)
				nvme_qpair_check_timeouts(qp, now);
		}
	}
	return n;
}

void upmd_nvme_qpair_flush(struct upmd_nvme_qpair *qp)
{
	nvme_qpair_ring_sq(qp);
}

uint32_t upmd_nvme_qpair_outstanding(const struct upmd_nvme_qpair *qp)
{
	return qp->outstanding;
}

uint16_t upmd_nvme_qpair_get_id(const struct upmd_nvme_qpair *qp)
{
	return qp->qid;
}

uint32_t upmd_nvme_qpair_get_size(const struct upmd_nvme_qpair *qp)
{
	return qp->qsize;
}

/* ---- commands ------------------------------------------------------------------- */

static inline int rw_check(const struct upmd_nvme_ns *ns, const struct upmd_nvme_qpair *qp, const void *buf,
			   uint64_t lba, uint32_t lba_count, uint32_t *len)
{
	uint64_t bytes;

	if (upmd_unlikely(!ns || !qp || !buf || lba_count == 0 || lba_count > 65536 ||
			  lba >= ns->num_sectors || lba_count > ns->num_sectors - lba))
		return -EINVAL;
	bytes = (uint64_t)lba_count << ns->sector_shift;
	if (upmd_unlikely(bytes > qp->max_xfer))
		return -EINVAL;
	*len = (uint32_t)bytes;
	return 0;
}

static inline void cmd_rw(struct upmd_nvme_cmd *cmd, uint8_t opc, uint32_t nsid, uint64_t lba, uint32_t lba_count,
			  uint32_t io_flags)
{
	cmd->opc = opc;
	cmd->fuse_psdt = 0;
	cmd->nsid = nsid;
	cmd->cdw2 = 0;
	cmd->cdw3 = 0;
	cmd->mptr = 0;
	cmd->cdw10 = (uint32_t)lba;
	cmd->cdw11 = (uint32_t)(lba >> 32);
	cmd->cdw12 = (lba_count - 1) | (io_flags & (UPMD_NVME_IO_FLAGS_FUA | UPMD_NVME_IO_FLAGS_LIMITED_RETRY));
	cmd->cdw13 = 0;
	cmd->cdw14 = 0;
	cmd->cdw15 = 0;
}

int upmd_nvme_ns_cmd_read(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, void *buf, uint64_t lba,
			  uint32_t lba_count, upmd_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags)
{
	struct upmd_nvme_cmd cmd;
	uint32_t len;
	int rc = rw_check(ns, qp, buf, lba, lba_count, &len);

	if (upmd_unlikely(rc < 0))
		return rc;
	cmd_rw(&cmd, UPMD_NVME_OPC_READ, ns->id, lba, lba_count, io_flags);
	return nvme_qpair_submit(qp, &cmd, buf, 0, len, NULL, cb, cb_arg);
}

int upmd_nvme_ns_cmd_write(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, const void *buf, uint64_t lba,
			   uint32_t lba_count, upmd_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags)
{
	struct upmd_nvme_cmd cmd;
	uint32_t len;
	int rc = rw_check(ns, qp, buf, lba, lba_count, &len);

	if (upmd_unlikely(rc < 0))
		return rc;
	cmd_rw(&cmd, UPMD_NVME_OPC_WRITE, ns->id, lba, lba_count, io_flags);
	return nvme_qpair_submit(qp, &cmd, buf, 0, len, NULL, cb, cb_arg);
}

int upmd_nvme_ns_cmd_flush(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, upmd_nvme_cmd_cb cb, void *cb_arg)
{
	struct upmd_nvme_cmd cmd;

	if (!ns || !qp)
		return -EINVAL;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_OPC_FLUSH;
	cmd.nsid = ns->id;
	return nvme_qpair_submit(qp, &cmd, NULL, 0, 0, NULL, cb, cb_arg);
}

int upmd_nvme_ns_cmd_write_zeroes(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp, uint64_t lba,
				  uint32_t lba_count, upmd_nvme_cmd_cb cb, void *cb_arg, uint32_t io_flags)
{
	struct upmd_nvme_cmd cmd;

	if (!ns || !qp || lba_count == 0 || lba_count > 65536 || lba >= ns->num_sectors ||
	    lba_count > ns->num_sectors - lba)
		return -EINVAL;
	if (!(ns->ctrlr->cdata.oncs & UPMD_NVME_ONCS_WRITE_ZEROES))
		return -ENOTSUP;
	memset(&cmd, 0, sizeof(cmd));
	cmd_rw(&cmd, UPMD_NVME_OPC_WRITE_ZEROES, ns->id, lba, lba_count, io_flags);
	return nvme_qpair_submit(qp, &cmd, NULL, 0, 0, NULL, cb, cb_arg);
}

int upmd_nvme_ns_cmd_deallocate(struct upmd_nvme_ns *ns, struct upmd_nvme_qpair *qp,
				const struct upmd_nvme_dsm_range *ranges, uint16_t nranges, upmd_nvme_cmd_cb cb,
				void *cb_arg)
{
	struct upmd_nvme_cmd cmd;

	if (!ns || !qp || !ranges || nranges == 0 || nranges > NVME_DSM_MAX_RANGES)
		return -EINVAL;
	for (unsigned i = 0; i < nranges; i++)
		if (ranges[i].starting_lba >= ns->num_sectors ||
		    ranges[i].length > ns->num_sectors - ranges[i].starting_lba)
			return -EINVAL;
	if (!(ns->ctrlr->cdata.oncs & UPMD_NVME_ONCS_DSM))
		return -ENOTSUP;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_OPC_DSM;
	cmd.nsid = ns->id;
	cmd.cdw10 = (uint32_t)nranges - 1;
	cmd.cdw11 = 1u << 2;	/* AD: deallocate */
	return nvme_qpair_submit(qp, &cmd, NULL, 0, (uint32_t)nranges * sizeof(*ranges), ranges, cb, cb_arg);
}

int upmd_nvme_qpair_cmd_raw(struct upmd_nvme_qpair *qp, const struct upmd_nvme_cmd *cmd, void *buf, uint32_t len,
			    upmd_nvme_cmd_cb cb, void *cb_arg)
{
	struct upmd_nvme_cmd c;

	if (!qp || !cmd || (len && !buf) || len > qp->max_xfer)
		return -EINVAL;
	c = *cmd;
	c.fuse_psdt &= 0x3;
	return nvme_qpair_submit(qp, &c, buf, 0, len, NULL, cb, cb_arg);
}

int upmd_nvme_qpair_cmd_raw_iova(struct upmd_nvme_qpair *qp, const struct upmd_nvme_cmd *cmd, uint64_t iova,
				 uint32_t len, upmd_nvme_cmd_cb cb, void *cb_arg)
{
	struct upmd_nvme_cmd c;

	if (!qp || !cmd || len > qp->max_xfer || (len && iova == UPMD_BAD_IOVA))
		return -EINVAL;
	c = *cmd;
	c.fuse_psdt &= 0x3;
	return nvme_qpair_submit(qp, &c, NULL, iova, len, NULL, cb, cb_arg);
}
