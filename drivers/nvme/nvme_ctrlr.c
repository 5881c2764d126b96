/* NVMe controllers: bring-up within CAP.TO, the admin queue, Identify, namespaces, queue creation, reset and recovery, shutdown and detach. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/eal.h>
#include <upmd/iova.h>

#include "nvme_internal.h"

uint64_t nvme_tsc_hz;

static struct upmd_pci_driver nvme_pci_driver;
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upmd_nvme_ctrlr **ctrlrs;
static unsigned nctrlrs;
static unsigned next_index;

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

static void calibrate_tsc(void)
{
	struct timespec a, b, d = { 0, 10000000 };
	uint64_t t0, t1, ns;

	if (nvme_tsc_hz)
		return;
	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = nvme_rdtsc();
	nanosleep(&d, NULL);
	t1 = nvme_rdtsc();
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
	nvme_tsc_hz = ns ? (t1 - t0) * 1000000000ull / ns : 1000000000ull;
	if (!nvme_tsc_hz)
		nvme_tsc_hz = 1000000000ull;
}

static uint64_t rd64(const struct upmd_nvme_ctrlr *c, unsigned off)
{
	/* Two 4-byte reads, low half first: what every controller accepts. */
	uint64_t lo = nvme_rd32(c, off), hi = nvme_rd32(c, off + 4);

	return lo | (hi << 32);
}

static void wr64(struct upmd_nvme_ctrlr *c, unsigned off, uint64_t v)
{
	nvme_wr32(c, off, (uint32_t)v);
	nvme_wr32(c, off + 4, (uint32_t)(v >> 32));
}

/* Wait until CSTS.RDY is @want, within CAP.TO. */
static int wait_ready(struct upmd_nvme_ctrlr *c, uint32_t want)
{
	uint64_t deadline = now_ms() + c->timeout_ms;

	for (;;) {
		uint32_t csts = nvme_rd32(c, NVME_REG_CSTS);

		if (csts == UINT32_MAX) {
			UPMD_ERR(NVME_LOG, "%s: CSTS reads all ones: the controller is not responding", c->pdev->name);
			return -EIO;
		}
		if ((csts & NVME_CSTS_RDY) == want)
			return 0;
		if (want && (csts & NVME_CSTS_CFS)) {
			UPMD_ERR(NVME_LOG, "%s: controller fatal status (CSTS.CFS) while enabling", c->pdev->name);
			return -EIO;
		}
		if (now_ms() > deadline) {
			UPMD_ERR(NVME_LOG, "%s: CSTS.RDY did not become %u within CAP.TO (%u ms); CSTS 0x%x",
				 c->pdev->name, want, c->timeout_ms, csts);
			return -ETIMEDOUT;
		}
		tiny_sleep();
	}
}

static int ctrlr_disable(struct upmd_nvme_ctrlr *c)
{
	uint32_t cc = nvme_rd32(c, NVME_REG_CC);

	if (cc & NVME_CC_EN) {
		/* Spec: with EN 1 and RDY 0 the controller is still enabling;
		 * let it finish before clearing EN. */
		if (!(nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_RDY))
			wait_ready(c, 1);
		nvme_wr32(c, NVME_REG_CC, cc & ~NVME_CC_EN);
	}
	return wait_ready(c, 0);
}

static int ctrlr_enable(struct upmd_nvme_ctrlr *c)
{
	struct upmd_nvme_qpair *aq = c->adminq;
	uint32_t cc;

	nvme_qpair_reset_rings(aq);
	nvme_wr32(c, NVME_REG_AQA, ((aq->qsize - 1) << 16) | (aq->qsize - 1));
	wr64(c, NVME_REG_ASQ, aq->sq_mz->iova);
	wr64(c, NVME_REG_ACQ, aq->cq_mz->iova);
	cc = NVME_CC_EN | NVME_CC_CSS_NVM | NVME_CC_MPS(NVME_PAGE_SHIFT) | NVME_CC_AMS_RR | NVME_CC_IOSQES(6) |
	     NVME_CC_IOCQES(4);
	nvme_wr32(c, NVME_REG_CC, cc);
	return wait_ready(c, 1);
}

/* ---- admin commands ------------------------------------------------------------ */

struct sync_ctx {
	volatile bool done;
	struct upmd_nvme_cpl cpl;
};

static void sync_cb(void *arg, const struct upmd_nvme_cpl *cpl)
{
	struct sync_ctx *s = arg;

	s->cpl = *cpl;
	s->done = true;
}

static const char *adm_name(uint8_t opc)
{
	switch (opc) {
	case UPMD_NVME_ADM_DELETE_SQ: return "Delete I/O SQ";
	case UPMD_NVME_ADM_CREATE_SQ: return "Create I/O SQ";
	case UPMD_NVME_ADM_GET_LOG_PAGE: return "Get Log Page";
	case UPMD_NVME_ADM_DELETE_CQ: return "Delete I/O CQ";
	case UPMD_NVME_ADM_CREATE_CQ: return "Create I/O CQ";
	case UPMD_NVME_ADM_IDENTIFY: return "Identify";
	case UPMD_NVME_ADM_ABORT: return "Abort";
	case UPMD_NVME_ADM_SET_FEATURES: return "Set Features";
	case UPMD_NVME_ADM_GET_FEATURES: return "Get Features";
	default: return "admin command";
	}
}

int nvme_admin_sync_locked(struct upmd_nvme_ctrlr *c, struct upmd_nvme_cmd *cmd, void *buf, uint32_t len,
			   struct upmd_nvme_cpl *cpl)
{
	struct sync_ctx s = { .done = false };
	uint64_t deadline;
	uint8_t opc = cmd->opc;
	unsigned spins = 0;
	int rc;

	if (c->failed)
		return -ENXIO;
	rc = nvme_qpair_submit(c->adminq, cmd, buf, 0, len, NULL, sync_cb, &s);
	if (rc < 0)
		return rc;
	nvme_qpair_ring_sq(c->adminq);
	deadline = now_ms() + c->opts.admin_timeout_ms;
	while (!s.done) {
		nvme_qpair_reap(c->adminq, 0);
		if (s.done)
			break;
		if (++spins < 200) {
			sched_yield();
			continue;
		}
		if (nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_CFS) {
			/* Whatever happens to the command now, its completion must
			 * not write into this frame once we have returned. */
			c->adminq->trk[cmd->cid]->cb_arg = NULL;
			c->adminq->trk[cmd->cid]->cb = nvme_qpair_noop_cb;
			UPMD_ERR(NVME_LOG, "%s: fatal controller status during %s", c->pdev->name, adm_name(opc));
			if (!c->resetting)
				nvme_ctrlr_reset_locked(c, "fatal status (CSTS.CFS)");
			return -EIO;
		}
		if (now_ms() > deadline) {
			c->adminq->trk[cmd->cid]->cb_arg = NULL;
			c->adminq->trk[cmd->cid]->cb = nvme_qpair_noop_cb;
			UPMD_ERR(NVME_LOG, "%s: %s (opcode 0x%02x) not completed within %u ms", c->pdev->name,
				 adm_name(opc), opc, c->opts.admin_timeout_ms);
			if (!c->resetting)
				nvme_ctrlr_reset_locked(c, "admin command timed out");
			return -ETIMEDOUT;
		}
		tiny_sleep();
	}
	if (cpl)
		*cpl = s.cpl;
	return 0;
}

int upmd_nvme_ctrlr_admin_sync(struct upmd_nvme_ctrlr *c, const struct upmd_nvme_cmd *cmd, void *buf, uint32_t len,
			       struct upmd_nvme_cpl *cpl)
{
	struct upmd_nvme_cmd copy;
	int rc;

	if (!c || !cmd || (len && !buf) || len > NVME_MAX_XFER)
		return -EINVAL;
	copy = *cmd;
	copy.fuse_psdt &= 0x3;
	pthread_mutex_lock(&c->adm_lock);
	rc = nvme_admin_sync_locked(c, &copy, buf, len, cpl);
	pthread_mutex_unlock(&c->adm_lock);
	return rc;
}

int upmd_nvme_ctrlr_cmd_admin_raw(struct upmd_nvme_ctrlr *c, const struct upmd_nvme_cmd *cmd, void *buf,
				  uint32_t len, upmd_nvme_cmd_cb cb, void *cb_arg)
{
	struct upmd_nvme_cmd copy;
	int rc;

	if (!c || !cmd || (len && !buf) || len > NVME_MAX_XFER)
		return -EINVAL;
	copy = *cmd;
	copy.fuse_psdt &= 0x3;
	pthread_mutex_lock(&c->adm_lock);
	rc = c->failed ? -ENXIO : nvme_qpair_submit(c->adminq, &copy, buf, 0, len, NULL, cb, cb_arg);
	if (rc == 0)
		nvme_qpair_ring_sq(c->adminq);
	pthread_mutex_unlock(&c->adm_lock);
	return rc;
}

int upmd_nvme_ctrlr_process_admin_completions(struct upmd_nvme_ctrlr *c)
{
	int n;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->adm_lock);
	n = c->failed ? -ENXIO : nvme_qpair_reap(c->adminq, 0);
	pthread_mutex_unlock(&c->adm_lock);
	return n;
}

/* Run an admin command into/from the controller's 4 KiB buffer; an error
 * status is logged and returned as -EIO. */
static int admin_cmd(struct upmd_nvme_ctrlr *c, struct upmd_nvme_cmd *cmd, uint32_t len, struct upmd_nvme_cpl *out)
{
	struct upmd_nvme_cpl cpl;
	uint8_t opc = cmd->opc;
	int rc;

	rc = nvme_admin_sync_locked(c, cmd, len ? c->dma_buf->addr : NULL, len, &cpl);
	if (rc < 0)
		return rc;
	if (upmd_nvme_cpl_is_error(&cpl)) {
		UPMD_ERR(NVME_LOG, "%s: %s failed: %s", c->pdev->name, adm_name(opc), upmd_nvme_status_str(cpl.status));
		if (out)
			*out = cpl;
		return -EIO;
	}
	if (out)
		*out = cpl;
	return 0;
}

static int identify(struct upmd_nvme_ctrlr *c, uint8_t cns, uint32_t nsid, void *dst)
{
	struct upmd_nvme_cmd cmd;
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_ADM_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	memset(c->dma_buf->addr, 0, NVME_PAGE);
	rc = admin_cmd(c, &cmd, NVME_PAGE, NULL);
	if (rc == 0)
		memcpy(dst, c->dma_buf->addr, NVME_PAGE);
	return rc;
}

static int set_num_queues(struct upmd_nvme_ctrlr *c, uint32_t want)
{
	struct upmd_nvme_cmd cmd;
	struct upmd_nvme_cpl cpl;
	uint32_t nsq, ncq;
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_ADM_SET_FEATURES;
	cmd.cdw10 = UPMD_NVME_FEAT_NUM_QUEUES;
	cmd.cdw11 = ((want - 1) << 16) | (want - 1);
	rc = admin_cmd(c, &cmd, 0, &cpl);
	if (rc < 0)
		return rc;
	nsq = (cpl.cdw0 & 0xffff) + 1;
	ncq = (cpl.cdw0 >> 16) + 1;
	return (int)UPMD_MIN(want, UPMD_MIN(nsq, ncq));
}

int nvme_ctrlr_create_io_queues(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp)
{
	struct upmd_nvme_cmd cmd;
	struct upmd_nvme_cpl cpl;
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_ADM_CREATE_CQ;
	cmd.cdw10 = ((qp->qsize - 1) << 16) | qp->qid;
	cmd.cdw11 = 1;	/* physically contiguous; interrupts off: we poll */
	cmd.dptr.prp.prp1 = qp->cq_mz->iova;
	rc = nvme_admin_sync_locked(c, &cmd, NULL, NVME_DPTR_AS_IS, &cpl);
	if (rc == 0 && upmd_nvme_cpl_is_error(&cpl)) {
		UPMD_ERR(NVME_LOG, "%s: Create I/O CQ %u of %u entries failed: %s", c->pdev->name, qp->qid, qp->qsize,
			 upmd_nvme_status_str(cpl.status));
		return -EIO;
	}
	if (rc < 0)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_ADM_CREATE_SQ;
	cmd.cdw10 = ((qp->qsize - 1) << 16) | qp->qid;
	cmd.cdw11 = ((uint32_t)qp->qid << 16) | 1;	/* its CQ; contiguous; priority ignored (round robin) */
	cmd.dptr.prp.prp1 = qp->sq_mz->iova;
	rc = nvme_admin_sync_locked(c, &cmd, NULL, NVME_DPTR_AS_IS, &cpl);
	if (rc == 0 && upmd_nvme_cpl_is_error(&cpl)) {
		UPMD_ERR(NVME_LOG, "%s: Create I/O SQ %u of %u entries failed: %s", c->pdev->name, qp->qid, qp->qsize,
			 upmd_nvme_status_str(cpl.status));
		rc = -EIO;
	}
	if (rc < 0) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = UPMD_NVME_ADM_DELETE_CQ;
		cmd.cdw10 = qp->qid;
		nvme_admin_sync_locked(c, &cmd, NULL, 0, NULL);
		return rc;
	}
	return 0;
}

static int delete_io_queues(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp)
{
	struct upmd_nvme_cmd cmd;
	struct upmd_nvme_cpl cpl;
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_ADM_DELETE_SQ;
	cmd.cdw10 = qp->qid;
	rc = admin_cmd(c, &cmd, 0, &cpl);
	if (rc < 0)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_ADM_DELETE_CQ;
	cmd.cdw10 = qp->qid;
	return admin_cmd(c, &cmd, 0, &cpl);
}

/* ---- reset and health ----------------------------------------------------------- */

int nvme_ctrlr_reset_locked(struct upmd_nvme_ctrlr *c, const char *why)
{
	int rc, n;

	if (c->failed)
		return -ENXIO;
	c->resetting = 1;
	c->resets++;
	UPMD_NOTICE(NVME_LOG, "%s: resetting the controller: %s", c->pdev->name, why);
	rc = ctrlr_disable(c);
	if (rc < 0) {
		/* It would not disable: cut its bus mastering, so that no DMA
		 * reaches memory we are about to hand back. */
		UPMD_ERR(NVME_LOG, "%s: the controller did not disable; bus mastering turned off", c->pdev->name);
		upmd_pci_set_bus_master(c->pdev, false);
	}
	/* Disabled: the controller touches none of our memory any more, so
	 * what was outstanding can be failed and its buffers reused. */
	nvme_qpair_abort_all(c->adminq, UPMD_NVME_STATUS(UPMD_NVME_SCT_GENERIC, UPMD_NVME_SC_ABORTED_SQ_DELETION));
	for (unsigned q = 1; c->qpairs && q <= c->io_queues; q++)
		if (c->qpairs[q])
			__atomic_store_n(&c->qpairs[q]->state, NVME_QP_DISCONNECTED, __ATOMIC_RELEASE);
	if (rc == 0)
		rc = ctrlr_enable(c);
	if (rc == 0) {
		n = set_num_queues(c, c->io_queues);
		rc = n < 0 ? n : ((uint32_t)n < c->io_queues ? -EIO : 0);
	}
	c->resetting = 0;
	if (rc < 0) {
		UPMD_ERR(NVME_LOG, "%s: the controller did not come back from the reset (%s): it is failed; "
			 "detach it and check the device", c->pdev->name, strerror(-rc));
		c->failed = 1;
		for (unsigned q = 1; c->qpairs && q <= c->io_queues; q++)
			if (c->qpairs[q])
				__atomic_store_n(&c->qpairs[q]->state, NVME_QP_FAILED, __ATOMIC_RELEASE);
		if (ctrlr_disable(c) < 0)
			upmd_pci_set_bus_master(c->pdev, false);
		return -ENXIO;
	}
	return 0;
}

int upmd_nvme_ctrlr_reset(struct upmd_nvme_ctrlr *c)
{
	int rc;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->adm_lock);
	rc = nvme_ctrlr_reset_locked(c, "asked for");
	pthread_mutex_unlock(&c->adm_lock);
	return rc;
}

void nvme_ctrlr_check_health(struct upmd_nvme_ctrlr *c, struct upmd_nvme_qpair *qp, uint64_t now)
{
	uint32_t csts;

	(void)qp;
	(void)now;
	if (pthread_mutex_trylock(&c->adm_lock) != 0)
		return;	/* someone is at it: look again next time */
	if (!c->failed) {
		csts = nvme_rd32(c, NVME_REG_CSTS);
		if (csts == UINT32_MAX || (csts & NVME_CSTS_CFS))
			nvme_ctrlr_reset_locked(c, csts == UINT32_MAX ? "CSTS reads all ones"
								  : "fatal status (CSTS.CFS)");
		else
			nvme_qpair_reap(c->adminq, 0);	/* e.g. Aborts sent for timed-out requests */
	}
	pthread_mutex_unlock(&c->adm_lock);
}

/* ---- attach / detach ------------------------------------------------------------- */

void upmd_nvme_ctrlr_opts_default(struct upmd_nvme_ctrlr_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->num_io_queues = 16;
	o->io_queue_size = 256;
	o->admin_queue_size = 32;
	o->admin_timeout_ms = 5000;
	o->io_timeout_ms = 10000;
	o->socket_id = UPMD_SOCKET_ID_ANY;
}

static int check_opts(const char *name, const struct upmd_nvme_ctrlr_opts *o)
{
	if (o->size != sizeof(*o)) {
		UPMD_ERR(NVME_LOG, "%s: options size %u, expected %zu: fill them with upmd_nvme_ctrlr_opts_default()",
			 name, o->size, sizeof(*o));
		return -EINVAL;
	}
	if (o->flags & ~UPMD_NVME_CTRLR_F_SGL) {
		UPMD_ERR(NVME_LOG, "%s: unknown option flags 0x%x", name, o->flags & ~UPMD_NVME_CTRLR_F_SGL);
		return -EINVAL;
	}
	if (o->num_io_queues < 1 || o->num_io_queues > NVME_MAX_IO_QUEUES) {
		UPMD_ERR(NVME_LOG, "%s: num_io_queues %u: give 1..%u", name, o->num_io_queues, NVME_MAX_IO_QUEUES);
		return -EINVAL;
	}
	if (o->io_queue_size < 2 || o->io_queue_size > 65536) {
		UPMD_ERR(NVME_LOG, "%s: io_queue_size %u: give 2..65536 (the controller may allow fewer)", name,
			 o->io_queue_size);
		return -EINVAL;
	}
	if (o->admin_queue_size < 2 || o->admin_queue_size > 4096) {
		UPMD_ERR(NVME_LOG, "%s: admin_queue_size %u: give 2..4096", name, o->admin_queue_size);
		return -EINVAL;
	}
	if (o->admin_timeout_ms == 0) {
		UPMD_ERR(NVME_LOG, "%s: admin_timeout_ms must be above 0", name);
		return -EINVAL;
	}
	return 0;
}

static int scan_namespaces(struct upmd_nvme_ctrlr *c)
{
	uint32_t *ids = NULL, nids = 0, nsid;
	int rc;

	c->nn = c->cdata.nn;
	if (c->nn > 1024)
		c->nn = 1024;	/* what one active list page holds; enough for any drive here */
	c->ns = calloc(c->nn + 1, sizeof(*c->ns));
	ids = calloc(1024, sizeof(*ids));
	if (!c->ns || !ids) {
		free(ids);
		return -ENOMEM;
	}
	if (c->vs >= 0x10100) {
		rc = identify(c, 2, 0, ids);	/* active namespace id list */
		if (rc == 0)
			for (nids = 0; nids < 1024 && ids[nids]; nids++)
				;
	}
	if (nids == 0) {
		/* Before 1.1 (or no list): every id, active when NSZE != 0. */
		for (nsid = 1; nsid <= c->nn; nsid++)
			ids[nids++] = nsid;
	}
	for (uint32_t i = 0; i < nids; i++) {
		struct upmd_nvme_ns *ns;
		uint8_t lbads;

		nsid = ids[i];
		if (nsid == 0 || nsid > c->nn)
			continue;
		ns = calloc(1, sizeof(*ns));
		if (!ns) {
			free(ids);
			return -ENOMEM;
		}
		rc = identify(c, 0, nsid, &ns->data);
		if (rc < 0 || ns->data.nsze == 0) {
			free(ns);
			if (rc == -ETIMEDOUT || rc == -ENXIO) {
				free(ids);
				return rc;
			}
			continue;
		}
		lbads = ns->data.lbaf[ns->data.flbas & 0xf].lbads;
		if (lbads < 9 || lbads > 16) {
			UPMD_WARN(NVME_LOG, "%s: namespace %u has an LBA size of 2^%u bytes: not used", c->pdev->name,
				  nsid, lbads);
			free(ns);
			continue;
		}
		if (ns->data.lbaf[ns->data.flbas & 0xf].ms) {
			UPMD_WARN(NVME_LOG, "%s: namespace %u is formatted with %u metadata bytes per block: "
				  "not supported, not used", c->pdev->name, nsid, ns->data.lbaf[ns->data.flbas & 0xf].ms);
			free(ns);
			continue;
		}
		ns->ctrlr = c;
		ns->id = nsid;
		ns->sector_shift = lbads;
		ns->sector_size = 1u << lbads;
		ns->num_sectors = ns->data.nsze;
		c->ns[nsid] = ns;
	}
	free(ids);
	return 0;
}

static void ctrlr_free(struct upmd_nvme_ctrlr *c)
{
	if (c->ns) {
		for (uint32_t i = 0; i <= c->nn; i++)
			free(c->ns[i]);
		free(c->ns);
	}
	free(c->qpairs);
	if (c->adminq) {
		nvme_qpair_fini(c->adminq);
		free(c->adminq);
	}
	if (c->dma_buf)
		upmd_memzone_free(c->dma_buf);
	pthread_mutex_destroy(&c->adm_lock);
	free(c);
}

static void fix_string(char *dst, const char *src, size_t n)
{
	size_t len = n;

	memcpy(dst, src, n);
	while (len > 0 && (dst[len - 1] == ' ' || dst[len - 1] == 0))
		len--;
	dst[len] = 0;
}

int upmd_nvme_attach(const char *bdf, const struct upmd_nvme_ctrlr_opts *opts, struct upmd_nvme_ctrlr **out)
{
	struct upmd_nvme_ctrlr_opts def;
	struct upmd_pci_device *pdev;
	struct upmd_nvme_ctrlr *c;
	char mn[41], sn[21];
	uint32_t aqsize;
	int rc, n;

	if (!bdf || !out)
		return -EINVAL;
	if (!opts) {
		upmd_nvme_ctrlr_opts_default(&def);
		opts = &def;
	}
	rc = check_opts(bdf, opts);
	if (rc < 0)
		return rc;
	pdev = upmd_pci_device_find(bdf);
	if (!pdev) {
		UPMD_ERR(NVME_LOG, "%s: no such PCI device in this process: give it to the EAL with -a %s "
			 "(bound to vfio-pci: upmd-devbind --bind vfio-pci %s)", bdf, bdf, bdf);
		return -ENODEV;
	}
	if (pdev->driver != &nvme_pci_driver) {
		UPMD_ERR(NVME_LOG, "%s: not an NVMe controller (%04x:%04x, class %06x)", pdev->name, pdev->id.vendor_id,
			 pdev->id.device_id, pdev->id.class_id);
		return -ENODEV;
	}
	pthread_mutex_lock(&list_lock);
	if (pdev->driver_data) {
		pthread_mutex_unlock(&list_lock);
		UPMD_ERR(NVME_LOG, "%s: already attached (or being attached)", pdev->name);
		return -EBUSY;
	}
	/* Claimed while we bring it up: a second attach sees it taken. */
	pdev->driver_data = &nvme_pci_driver;
	pthread_mutex_unlock(&list_lock);
	rc = upmd_pci_map_bar(pdev, 0);
	if (rc < 0) {
		UPMD_ERR(NVME_LOG, "%s: cannot map BAR0: %s", pdev->name, strerror(-rc));
		pdev->driver_data = NULL;
		return rc;
	}
	if (pdev->bar[0].len < NVME_REG_DBS + 16) {
		UPMD_ERR(NVME_LOG, "%s: BAR0 of %llu bytes is too small for an NVMe controller", pdev->name,
			 (unsigned long long)pdev->bar[0].len);
		pdev->driver_data = NULL;
		return -ENODEV;
	}
	calibrate_tsc();
	c = calloc(1, sizeof(*c));
	if (!c) {
		pdev->driver_data = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&c->adm_lock, NULL);
	c->pdev = pdev;
	c->opts = *opts;
	c->regs = pdev->bar[0].addr;
	pthread_mutex_lock(&list_lock);
	c->index = next_index++;
	pthread_mutex_unlock(&list_lock);
	c->cap = rd64(c, NVME_REG_CAP);
	c->vs = nvme_rd32(c, NVME_REG_VS);
	if (c->cap == UINT64_MAX) {
		UPMD_ERR(NVME_LOG, "%s: CAP reads all ones: the controller is not responding", pdev->name);
		rc = -ENODEV;
		goto fail_free;
	}
	c->db_stride = 4u << NVME_CAP_DSTRD(c->cap);
	c->timeout_ms = UPMD_MAX(NVME_CAP_TO(c->cap), 1u) * 500;
	c->max_qsize = NVME_CAP_MQES(c->cap) + 1;
	if (!NVME_CAP_CSS_NVM(c->cap)) {
		UPMD_ERR(NVME_LOG, "%s: the controller does not offer the NVM command set (CAP.CSS)", pdev->name);
		rc = -ENODEV;
		goto fail_free;
	}
	if (NVME_CAP_MPSMIN(c->cap) != 0) {
		UPMD_ERR(NVME_LOG, "%s: the controller's smallest page is %u bytes; the driver uses 4096", pdev->name,
			 4096u << NVME_CAP_MPSMIN(c->cap));
		rc = -ENODEV;
		goto fail_free;
	}
	if (c->max_qsize < 2) {
		UPMD_ERR(NVME_LOG, "%s: CAP.MQES %u is below the minimum", pdev->name, NVME_CAP_MQES(c->cap));
		rc = -ENODEV;
		goto fail_free;
	}
	if ((uint64_t)NVME_REG_DBS + (2ull * opts->num_io_queues + 2) * c->db_stride > pdev->bar[0].len) {
		uint64_t pairs = (pdev->bar[0].len - NVME_REG_DBS) / (2ull * c->db_stride);

		if (pairs < 2) {
			UPMD_ERR(NVME_LOG, "%s: BAR0 of %llu bytes has no room for an I/O queue's doorbells (stride %u)",
				 pdev->name, (unsigned long long)pdev->bar[0].len, c->db_stride);
			rc = -ENODEV;
			goto fail_free;
		}
		c->opts.num_io_queues = (uint32_t)(pairs - 1);
	}
	rc = upmd_pci_set_bus_master(pdev, true);
	if (rc < 0)
		goto fail_free;
	rc = ctrlr_disable(c);
	if (rc < 0)
		goto fail_bm;
	c->adminq = calloc(1, sizeof(*c->adminq));
	if (!c->adminq) {
		rc = -ENOMEM;
		goto fail_bm;
	}
	aqsize = UPMD_MIN(opts->admin_queue_size, c->max_qsize);
	rc = nvme_qpair_init(c, c->adminq, 0, aqsize);
	if (rc < 0)
		goto fail_bm;
	c->adminq->timeout_tsc = 0;
	{
		char name[32];

		snprintf(name, sizeof(name), "nvme%u_buf", c->index);
		rc = upmd_memzone_reserve(name, NVME_PAGE, UPMD_SOCKET_ID_ANY, NVME_PAGE, &c->dma_buf);
		if (rc < 0) {
			UPMD_ERR(NVME_LOG, "%s: no memory for the Identify buffer: %s", pdev->name, strerror(-rc));
			goto fail_bm;
		}
	}
	rc = ctrlr_enable(c);
	if (rc < 0)
		goto fail_disable;
	/* Room for every queue pair asked for, before anything that can
	 * reset the controller (a reset walks it). */
	c->qpairs = calloc(c->opts.num_io_queues + 1, sizeof(*c->qpairs));
	if (!c->qpairs) {
		rc = -ENOMEM;
		goto fail_disable;
	}
	pthread_mutex_lock(&c->adm_lock);
	rc = identify(c, 1, 0, &c->cdata);
	if (rc == 0) {
		c->max_xfer = c->cdata.mdts && c->cdata.mdts < 9
				      ? (uint32_t)UPMD_MIN((uint64_t)NVME_PAGE << c->cdata.mdts, NVME_MAX_XFER)
				      : NVME_MAX_XFER;
		c->use_sgl = (opts->flags & UPMD_NVME_CTRLR_F_SGL) && (c->cdata.sgls & 0x3);
		n = set_num_queues(c, c->opts.num_io_queues);
		rc = n < 0 ? n : 0;
		if (n > 0)
			c->io_queues = (uint32_t)n;
	}
	if (rc == 0)
		rc = scan_namespaces(c);
	pthread_mutex_unlock(&c->adm_lock);
	if (rc < 0)
		goto fail_disable;
	pthread_mutex_lock(&list_lock);
	{
		struct upmd_nvme_ctrlr **l = realloc(ctrlrs, (nctrlrs + 1) * sizeof(*l));

		if (!l) {
			pthread_mutex_unlock(&list_lock);
			rc = -ENOMEM;
			goto fail_disable;
		}
		ctrlrs = l;
		ctrlrs[nctrlrs++] = c;
	}
	pthread_mutex_unlock(&list_lock);
	pdev->driver_data = c;
	fix_string(mn, c->cdata.mn, sizeof(c->cdata.mn));
	fix_string(sn, c->cdata.sn, sizeof(c->cdata.sn));
	UPMD_INFO(NVME_LOG, "%s: %s (serial %s), NVMe %u.%u, %u namespace(s), %u I/O queue pairs of up to %u "
		  "entries, max transfer %u KiB, %s", pdev->name, mn, sn, c->vs >> 16, (c->vs >> 8) & 0xff, c->nn,
		  c->io_queues, c->max_qsize, c->max_xfer / 1024, c->use_sgl ? "SGLs" : "PRPs");
	*out = c;
	return 0;
fail_disable:
	ctrlr_disable(c);
fail_bm:
	upmd_pci_set_bus_master(pdev, false);
fail_free:
	ctrlr_free(c);
	pdev->driver_data = NULL;
	return rc;
}

int upmd_nvme_probe(upmd_nvme_probe_cb probe_cb, upmd_nvme_attach_cb attach_cb, void *ctx)
{
	unsigned i, n = upmd_pci_device_count();
	int attached = 0, rc;

	for (i = 0; i < n; i++) {
		struct upmd_pci_device *d = upmd_pci_device_get(i);
		struct upmd_nvme_ctrlr_opts opts;
		struct upmd_nvme_ctrlr *c;

		if (!d || d->driver != &nvme_pci_driver || d->driver_data)
			continue;
		upmd_nvme_ctrlr_opts_default(&opts);
		if (probe_cb && !probe_cb(ctx, d, &opts))
			continue;
		rc = upmd_nvme_attach(d->name, &opts, &c);
		if (rc < 0)
			return rc;
		attached++;
		if (attach_cb)
			attach_cb(ctx, d, c);
	}
	return attached;
}

int upmd_nvme_ctrlr_free_io_qpair(struct upmd_nvme_qpair *qp)
{
	struct upmd_nvme_ctrlr *c;

	if (!qp || !qp->ctrlr || qp->is_admin)
		return -EINVAL;
	c = qp->ctrlr;
	pthread_mutex_lock(&c->adm_lock);
	/* Delete the queues first: the controller then no longer touches the
	 * requests' buffers, and they can be failed. If it does not answer,
	 * reset it, which stops it too. */
	{
		uint64_t resets = c->resets;

		/* The queue pair is going: nothing may re-create it, whatever
		 * its callbacks do below. */
		qp->deleting = 1;
		if (!c->failed && qp->state == NVME_QP_CONNECTED && delete_io_queues(c, qp) < 0 && !c->failed &&
		    c->resets == resets)
			nvme_ctrlr_reset_locked(c, "deleting an I/O queue pair failed");
	}
	qp->state = NVME_QP_DISCONNECTED;
	c->qpairs[qp->qid] = NULL;
	pthread_mutex_unlock(&c->adm_lock);
	/* The SQ is deleted (or the controller stopped): what it completed
	 * before is reported as it was, the rest as aborted. */
	nvme_qpair_reap(qp, 0);
	nvme_qpair_abort_all(qp, UPMD_NVME_STATUS(UPMD_NVME_SCT_GENERIC, UPMD_NVME_SC_ABORTED_SQ_DELETION));
	nvme_qpair_fini(qp);
	free(qp);
	return 0;
}

int upmd_nvme_ctrlr_alloc_io_qpair(struct upmd_nvme_ctrlr *c, const struct upmd_nvme_io_qpair_opts *opts,
				   struct upmd_nvme_qpair **out)
{
	struct upmd_nvme_qpair *qp;
	uint32_t qsize, qid;
	int rc;

	if (!c || !out)
		return -EINVAL;
	if (opts && opts->size != sizeof(*opts)) {
		UPMD_ERR(NVME_LOG, "%s: queue pair options size %u, expected %zu", c->pdev->name, opts->size,
			 sizeof(*opts));
		return -EINVAL;
	}
	qsize = opts && opts->qsize ? opts->qsize : UPMD_MIN(c->opts.io_queue_size, c->max_qsize);
	if (qsize < 2 || qsize > c->max_qsize) {
		UPMD_ERR(NVME_LOG, "%s: queue size %u: this controller takes 2..%u (CAP.MQES + 1)", c->pdev->name, qsize,
			 c->max_qsize);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->adm_lock);
	if (c->failed) {
		pthread_mutex_unlock(&c->adm_lock);
		return -ENXIO;
	}
	for (qid = 1; qid <= c->io_queues && c->qpairs[qid]; qid++)
		;
	if (qid > c->io_queues) {
		pthread_mutex_unlock(&c->adm_lock);
		UPMD_ERR(NVME_LOG, "%s: all %u I/O queue pairs the controller granted are in use (free one, or ask "
			 "for more with num_io_queues)", c->pdev->name, c->io_queues);
		return -ENOSPC;
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		pthread_mutex_unlock(&c->adm_lock);
		return -ENOMEM;
	}
	rc = nvme_qpair_init(c, qp, (uint16_t)qid, qsize);
	if (rc == 0) {
		qp->timeout_tsc = c->opts.io_timeout_ms ? nvme_tsc_hz / 1000 * c->opts.io_timeout_ms : 0;
		rc = nvme_ctrlr_create_io_queues(c, qp);
		if (rc < 0)
			nvme_qpair_fini(qp);
	}
	if (rc < 0) {
		pthread_mutex_unlock(&c->adm_lock);
		free(qp);
		return rc;
	}
	c->qpairs[qid] = qp;
	pthread_mutex_unlock(&c->adm_lock);
	*out = qp;
	return 0;
}

int upmd_nvme_detach(struct upmd_nvme_ctrlr *c)
{
	uint64_t deadline;

	if (!c)
		return -EINVAL;
	for (uint32_t q = 1; q <= c->io_queues; q++)
		if (c->qpairs[q])
			upmd_nvme_ctrlr_free_io_qpair(c->qpairs[q]);
	pthread_mutex_lock(&c->adm_lock);
	if (!c->failed) {
		/* Normal shutdown: the controller flushes what it cached. */
		uint32_t cc = nvme_rd32(c, NVME_REG_CC);

		/* CAP.TO is the time to become ready; a drive flushing its cache
		 * may take longer to shut down: RTD3E, at least 5 s (as Linux). */
		uint32_t shn_ms = UPMD_MAX(UPMD_MAX(c->timeout_ms, 5000u), c->cdata.rtd3e / 1000);

		nvme_wr32(c, NVME_REG_CC, (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SHN_NORMAL);
		deadline = now_ms() + shn_ms;
		while ((nvme_rd32(c, NVME_REG_CSTS) & NVME_CSTS_SHST_MASK) != NVME_CSTS_SHST_DONE) {
			if (now_ms() > deadline) {
				UPMD_WARN(NVME_LOG, "%s: shutdown not complete within %u ms; disabling anyway",
					  c->pdev->name, shn_ms);
				break;
			}
			tiny_sleep();
		}
	}
	if (ctrlr_disable(c) < 0)
		upmd_pci_set_bus_master(c->pdev, false);
	nvme_qpair_abort_all(c->adminq, UPMD_NVME_STATUS(UPMD_NVME_SCT_GENERIC, UPMD_NVME_SC_ABORTED_SQ_DELETION));
	pthread_mutex_unlock(&c->adm_lock);
	upmd_pci_set_bus_master(c->pdev, false);
	pthread_mutex_lock(&list_lock);
	for (unsigned i = 0; i < nctrlrs; i++)
		if (ctrlrs[i] == c) {
			memmove(&ctrlrs[i], &ctrlrs[i + 1], (nctrlrs - i - 1) * sizeof(*ctrlrs));
			nctrlrs--;
			break;
		}
	if (nctrlrs == 0) {
		free(ctrlrs);
		ctrlrs = NULL;
	}
	pthread_mutex_unlock(&list_lock);
	c->pdev->driver_data = NULL;
	UPMD_INFO(NVME_LOG, "%s: detached", c->pdev->name);
	ctrlr_free(c);
	return 0;
}

/* ---- queries ------------------------------------------------------------------------ */

unsigned upmd_nvme_ctrlr_count(void)
{
	unsigned n;

	pthread_mutex_lock(&list_lock);
	n = nctrlrs;
	pthread_mutex_unlock(&list_lock);
	return n;
}

struct upmd_nvme_ctrlr *upmd_nvme_ctrlr_get(unsigned i)
{
	struct upmd_nvme_ctrlr *c;

	pthread_mutex_lock(&list_lock);
	c = i < nctrlrs ? ctrlrs[i] : NULL;
	pthread_mutex_unlock(&list_lock);
	return c;
}

const struct upmd_nvme_ctrlr_data *upmd_nvme_ctrlr_get_data(const struct upmd_nvme_ctrlr *c)
{
	return c ? &c->cdata : NULL;
}

struct upmd_pci_device *upmd_nvme_ctrlr_get_pci(const struct upmd_nvme_ctrlr *c)
{
	return c ? c->pdev : NULL;
}

uint32_t upmd_nvme_ctrlr_max_xfer_size(const struct upmd_nvme_ctrlr *c)
{
	return c ? c->max_xfer : 0;
}

uint32_t upmd_nvme_ctrlr_max_io_qpairs(const struct upmd_nvme_ctrlr *c)
{
	return c ? c->io_queues : 0;
}

uint32_t upmd_nvme_ctrlr_max_queue_size(const struct upmd_nvme_ctrlr *c)
{
	return c ? c->max_qsize : 0;
}

bool upmd_nvme_ctrlr_uses_sgl(const struct upmd_nvme_ctrlr *c)
{
	return c && c->use_sgl;
}

bool upmd_nvme_ctrlr_is_failed(const struct upmd_nvme_ctrlr *c)
{
	return c && c->failed;
}

uint64_t upmd_nvme_ctrlr_reset_count(const struct upmd_nvme_ctrlr *c)
{
	return c ? c->resets : 0;
}

uint32_t upmd_nvme_ctrlr_get_num_ns(const struct upmd_nvme_ctrlr *c)
{
	return c ? c->nn : 0;
}

uint32_t upmd_nvme_ctrlr_next_active_ns(const struct upmd_nvme_ctrlr *c, uint32_t prev)
{
	if (!c)
		return 0;
	for (uint32_t id = prev + 1; id <= c->nn; id++)
		if (c->ns[id])
			return id;
	return 0;
}

uint32_t upmd_nvme_ctrlr_first_active_ns(const struct upmd_nvme_ctrlr *c)
{
	return upmd_nvme_ctrlr_next_active_ns(c, 0);
}

struct upmd_nvme_ns *upmd_nvme_ctrlr_get_ns(struct upmd_nvme_ctrlr *c, uint32_t nsid)
{
	return c && nsid >= 1 && nsid <= c->nn ? c->ns[nsid] : NULL;
}

uint32_t upmd_nvme_ns_get_id(const struct upmd_nvme_ns *ns)
{
	return ns ? ns->id : 0;
}

struct upmd_nvme_ctrlr *upmd_nvme_ns_get_ctrlr(const struct upmd_nvme_ns *ns)
{
	return ns ? ns->ctrlr : NULL;
}

uint64_t upmd_nvme_ns_get_num_sectors(const struct upmd_nvme_ns *ns)
{
	return ns ? ns->num_sectors : 0;
}

uint32_t upmd_nvme_ns_get_sector_size(const struct upmd_nvme_ns *ns)
{
	return ns ? ns->sector_size : 0;
}

uint64_t upmd_nvme_ns_get_size(const struct upmd_nvme_ns *ns)
{
	return ns ? ns->num_sectors << ns->sector_shift : 0;
}

const struct upmd_nvme_ns_data *upmd_nvme_ns_get_data(const struct upmd_nvme_ns *ns)
{
	return ns ? &ns->data : NULL;
}

/* ---- the PCI driver: takes NVMe functions so the bus knows them; upmd_nvme_attach() brings them up ---- */

static int nvme_pci_probe(struct upmd_pci_device *pdev)
{
	pdev->driver_data = NULL;
	UPMD_DEBUG(NVME_LOG, "%s: NVMe controller found (attach with upmd_nvme_attach or upmd_nvme_probe)",
		   pdev->name);
	return 0;
}

static int nvme_pci_remove(struct upmd_pci_device *pdev)
{
	/* (&nvme_pci_driver marks an attach in progress: nothing to detach.) */
	if (pdev->driver_data && pdev->driver_data != &nvme_pci_driver)
		return upmd_nvme_detach(pdev->driver_data);
	return 0;
}

static const struct upmd_pci_id nvme_ids[] = {
	{ .vendor_id = UPMD_PCI_ANY_ID, .device_id = UPMD_PCI_ANY_ID, .subsystem_vendor_id = UPMD_PCI_ANY_ID,
	  .subsystem_device_id = UPMD_PCI_ANY_ID, .class_id = UPMD_NVME_CLASS },
	{ .vendor_id = 0 },
};

static struct upmd_pci_driver nvme_pci_driver = {
	.name = "nvme",
	.id_table = nvme_ids,
	.probe = nvme_pci_probe,
	.remove = nvme_pci_remove,
};

UPMD_PCI_REGISTER_DRIVER(nvme_pci_driver)
