/* dmadev PMD for QEMU's edu: copies and fills of any length, chunked through the device's 4 KiB buffer, one transfer at a time. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/dmadev.h>
#include <upmd/edu.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/pci.h>

#define LOG "dma_edu"
#define DRIVER_NAME "dma_edu"
#define MIN_DESC 16
#define MAX_DESC 4096
/* Longest a stop waits for the transfer in flight. QEMU's edu runs each
 * transfer from a 100 ms timer of the virtual clock. */
#define STOP_TIMEOUT_MS 10000

/*
 * The engine moves one transfer at a time between RAM and its buffer, so
 * an operation is a sequence of chunks of at most UPMD_EDU_DMA_MAX bytes,
 * always at buffer offset 0 (never near the buffer's last byte, which
 * QEMU 7.2 aborts the VM on). A copy chunk is RAM -> buffer, then
 * buffer -> RAM. A fill loads the pattern once (the staging page, written
 * by the CPU, -> buffer) and then writes buffer -> RAM chunk after chunk:
 * UPMD_EDU_DMA_MAX is a multiple of 8, so each chunk starts at the
 * pattern's first byte.
 */
_Static_assert(UPMD_EDU_DMA_MAX % 8 == 0, "fill chunks must keep the 8-byte pattern's phase");
_Static_assert(UPMD_EDU_DMA_MAX < UPMD_EDU_BUF_SIZE, "a transfer must not reach the buffer's last byte");
_Static_assert(MAX_DESC < 65536, "ring occupancy is computed from 16-bit ring indices");

enum { OP_COPY, OP_FILL };
enum { PH_IDLE, PH_TO_BUF, PH_TO_RAM };

struct edu_desc {
	uint64_t src;		/* copy: source IOVA; fill: the pattern */
	uint64_t dst;
	uint32_t len;
	uint16_t op;
	uint16_t status;	/* enum upmd_dma_status_code, once done */
};
_Static_assert(sizeof(struct edu_desc) == 24, "descriptor layout");

/*
 * Ring indices are free-running 16-bit counters, ops in ring order:
 * [reported, done) finished, status set, not yet reported;
 * [done, submitted) handed to the engine, ring[done] the one running;
 * [submitted, next) enqueued, not submitted.
 * One thread owns the vchan (dmadev's rule), so none of this is atomic.
 */
struct edu_dma {
	/* hot: the vchan */
	struct edu_desc *ring;
	volatile uint8_t *regs;
	uint64_t dma_mask;
	uint16_t ring_mask;	/* nb_desc - 1 */
	uint16_t nb_desc;
	uint16_t next, submitted, done, reported;
	uint8_t phase;		/* what the engine runs for ring[done] */
	uint32_t off;		/* bytes of ring[done] finished before the running chunk */
	uint32_t chunk;		/* bytes of the running chunk */
	struct upmd_dma_stats stats;
	/* cold */
	struct upmd_edu *edu;
	const struct upmd_memzone *stage;	/* the fill pattern's page */
	char name[UPMD_DMA_NAME_MAX];
};

static const struct upmd_dma_dev_ops edu_dma_ops;

static inline uint32_t rd32(const struct edu_dma *q, unsigned off)
{
	return upmd_mmio_read32(q->regs + off);
}

static inline void wr32(struct edu_dma *q, unsigned off, uint32_t v)
{
	upmd_mmio_write32(q->regs + off, v);
}

static inline void wr64(struct edu_dma *q, unsigned off, uint64_t v)
{
	upmd_mmio_write64(q->regs + off, v);
}

static inline bool engine_busy(const struct edu_dma *q)
{
	return rd32(q, UPMD_EDU_REG_DMA_CMD) & UPMD_EDU_DMA_CMD_START;
}

/* Start one transfer; the engine is idle (the caller saw START clear). */
static void kick(struct edu_dma *q, uint64_t ram, uint32_t cnt, bool to_ram)
{
	uint64_t buf = UPMD_EDU_BUF_ADDR;

	wr64(q, UPMD_EDU_REG_DMA_SRC, to_ram ? buf : ram);
	wr64(q, UPMD_EDU_REG_DMA_DST, to_ram ? ram : buf);
	wr64(q, UPMD_EDU_REG_DMA_COUNT, cnt);
	/*
	 * Release: the data the application wrote to the source (ordinary
	 * stores) and the three register stores above must be visible before
	 * the command store starts the engine. x86 keeps stores in order;
	 * the fence stops the compiler from sinking the ordinary stores below
	 * the volatile doorbell store.
	 */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	wr32(q, UPMD_EDU_REG_DMA_CMD, UPMD_EDU_DMA_CMD_START | (to_ram ? UPMD_EDU_DMA_CMD_TO_RAM : 0));
	q->chunk = cnt;
	q->phase = to_ram ? PH_TO_RAM : PH_TO_BUF;
}

static inline uint32_t chunk_len(uint32_t rest)
{
	return rest < UPMD_EDU_DMA_MAX ? rest : UPMD_EDU_DMA_MAX;
}

/* Start ring[done] from its first chunk. */
static void start_op(struct edu_dma *q, struct edu_desc *d)
{
	q->off = 0;
	if (d->op == OP_FILL) {
		uint64_t *p = q->stage->addr;
		uint32_t n = chunk_len(d->len);

		for (uint32_t i = 0; i < (n + 7) / 8; i++)
			p[i] = d->src;
		kick(q, q->stage->iova, n, false);
	} else {
		kick(q, d->src, chunk_len(d->len), false);
	}
}

/*
 * Move the engine on as far as it has got: a finished chunk's second half
 * is started, a finished operation gets its status and the next submitted
 * one starts. Never waits: returns as soon as the engine is busy.
 */
static void advance(struct edu_dma *q)
{
	for (;;) {
		struct edu_desc *d = &q->ring[q->done & q->ring_mask];

		if (q->phase != PH_IDLE) {
			if (engine_busy(q))
				return;
			/* Acquire: the engine's writes to RAM happened before it
			 * cleared START; the application reads them after the
			 * completion this leads to. */
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (q->phase == PH_TO_BUF) {
				/* A fill's load covers the first chunk. */
				kick(q, d->dst + q->off, q->chunk, true);
				continue;
			}
			q->off += q->chunk;
			if (q->off < d->len) {
				uint32_t n = chunk_len(d->len - q->off);

				if (d->op == OP_FILL)
					kick(q, d->dst + q->off, n, true);
				else
					kick(q, d->src + q->off, n, false);
				continue;
			}
			/* edu has no error status: a transfer the IOMMU blocked
			 * finishes like any other (docs/dma.md). */
			d->status = UPMD_DMA_STATUS_SUCCESSFUL;
			q->done++;
			q->phase = PH_IDLE;
		}
		if (q->done == q->submitted)
			return;
		start_op(q, &q->ring[q->done & q->ring_mask]);
	}
}

/* ---- data path ------------------------------------------------------------ */

static bool fits(const struct edu_dma *q, const char *what, uint64_t iova, uint32_t len)
{
	uint64_t last = iova + len - 1;

	if (upmd_likely(last >= iova && last <= q->dma_mask))
		return true;
	UPMD_ERR(LOG, "%s: %s IOVA 0x%" PRIx64 " (+%u bytes, last byte 0x%" PRIx64 ") is beyond the device's DMA "
		 "mask 0x%" PRIx64 ": edu would silently drop the high bits; map the buffer lower (--iova-mode alloc) or, "
		 "if the device has a wider dma_mask, say so with upmd_edu_dma_set_mask() or UPMD_EDU_DMA_MASK",
		 q->name, what, iova, len, last, q->dma_mask);
	return false;
}

static int enqueue(struct edu_dma *q, uint16_t vchan, uint16_t op, uint64_t src, uint64_t dst, uint32_t len,
		   uint64_t flags)
{
	struct edu_desc *d;
	uint16_t idx;

	if (upmd_unlikely(vchan != 0 || len == 0 || len > UPMD_EDU_DMADEV_MAX_LEN))
		return -EINVAL;
	if (upmd_unlikely((uint16_t)(q->next - q->reported) >= q->nb_desc))
		return -ENOSPC;
	idx = q->next++;
	d = &q->ring[idx & q->ring_mask];
	d->src = src;
	d->dst = dst;
	d->len = len;
	d->op = op;
	d->status = UPMD_DMA_STATUS_ERROR_UNKNOWN;
	if (flags & UPMD_DMA_OP_FLAG_SUBMIT) {
		q->stats.submitted += (uint16_t)(q->next - q->submitted);
		q->submitted = q->next;
		advance(q);
	}
	/* FENCE needs nothing: operations run one after another. */
	return idx;
}

static int edu_copy(void *priv, uint16_t vchan, uint64_t src, uint64_t dst, uint32_t len, uint64_t flags)
{
	struct edu_dma *q = priv;

	if (upmd_unlikely(len && (!fits(q, "source", src, len) || !fits(q, "destination", dst, len))))
		return -EINVAL;
	return enqueue(q, vchan, OP_COPY, src, dst, len, flags);
}

static int edu_fill(void *priv, uint16_t vchan, uint64_t pattern, uint64_t dst, uint32_t len, uint64_t flags)
{
	struct edu_dma *q = priv;

	if (upmd_unlikely(len && (!fits(q, "destination", dst, len) ||
				  !fits(q, "fill staging", q->stage->iova, UPMD_EDU_DMA_MAX))))
		return -EINVAL;
	return enqueue(q, vchan, OP_FILL, pattern, dst, len, flags);
}

static int edu_compare(void *priv, uint16_t vchan, uint64_t s1, uint64_t s2, uint32_t len, uint64_t flags)
{
	(void)priv, (void)vchan, (void)s1, (void)s2, (void)len, (void)flags;
	return -ENOTSUP;
}

static int edu_crc32c(void *priv, uint16_t vchan, uint64_t src, uint32_t len, uint32_t seed, uint32_t *result,
		      uint64_t flags)
{
	(void)priv, (void)vchan, (void)src, (void)len, (void)seed, (void)result, (void)flags;
	return -ENOTSUP;
}

static int edu_submit(void *priv, uint16_t vchan)
{
	struct edu_dma *q = priv;

	if (upmd_unlikely(vchan != 0))
		return -EINVAL;
	q->stats.submitted += (uint16_t)(q->next - q->submitted);
	q->submitted = q->next;
	/* Starts the first chunk if the engine is idle; never waits. */
	advance(q);
	return 0;
}

static uint16_t edu_completed(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx, bool *has_error)
{
	struct edu_dma *q = priv;
	uint16_t n = 0;

	*has_error = false;
	if (upmd_unlikely(vchan != 0)) {
		*last_idx = (uint16_t)(q->reported - 1);
		return 0;
	}
	advance(q);
	while (n < nb_cpls && q->reported != q->done) {
		if (q->ring[q->reported & q->ring_mask].status != UPMD_DMA_STATUS_SUCCESSFUL) {
			*has_error = true;
			break;
		}
		q->reported++;
		n++;
	}
	q->stats.completed += n;
	*last_idx = (uint16_t)(q->reported - 1);
	return n;
}

static uint16_t edu_completed_status(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
				     enum upmd_dma_status_code *status)
{
	struct edu_dma *q = priv;
	uint16_t n = 0;

	if (upmd_unlikely(vchan != 0)) {
		*last_idx = (uint16_t)(q->reported - 1);
		return 0;
	}
	advance(q);
	while (n < nb_cpls && q->reported != q->done) {
		status[n] = q->ring[q->reported & q->ring_mask].status;
		q->stats.errors += status[n] != UPMD_DMA_STATUS_SUCCESSFUL;
		q->reported++;
		n++;
	}
	q->stats.completed += n;
	*last_idx = (uint16_t)(q->reported - 1);
	return n;
}

static uint16_t edu_burst_capacity(const void *priv, uint16_t vchan)
{
	const struct edu_dma *q = priv;

	if (vchan != 0)
		return 0;
	return (uint16_t)(q->nb_desc - (uint16_t)(q->next - q->reported));
}

/* ---- control path ------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void edu_info_get(const struct upmd_dma_dev *dev, struct upmd_dma_info *info)
{
	const struct edu_dma *q = dev->priv;

	info->driver = DRIVER_NAME;
	info->capa = UPMD_DMA_CAPA_MEM_TO_MEM | UPMD_DMA_CAPA_OPS_COPY | UPMD_DMA_CAPA_OPS_FILL;
	info->max_vchans = 1;
	info->min_desc = MIN_DESC;
	info->max_desc = MAX_DESC;
	info->max_length = UPMD_EDU_DMADEV_MAX_LEN;
	info->numa_node = q->edu && q->edu->pdev ? q->edu->pdev->numa_node : -1;
}

static int edu_configure(struct upmd_dma_dev *dev, const struct upmd_dma_conf *conf)
{
	(void)dev, (void)conf;
	return 0;
}

static int edu_vchan_setup(struct upmd_dma_dev *dev, uint16_t vchan, const struct upmd_dma_vchan_conf *conf)
{
	struct edu_dma *q = dev->priv;
	struct edu_desc *ring;
	int rc;

	(void)vchan;
	ring = calloc(conf->nb_desc, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	if (!q->stage) {
		char mz[32];

		snprintf(mz, sizeof(mz), "edu_fill_%.16s", q->name);
		rc = upmd_memzone_reserve(mz, UPMD_EDU_BUF_SIZE, q->edu->pdev->numa_node, UPMD_EDU_BUF_SIZE,
					  &q->stage);
		if (rc < 0) {
			UPMD_ERR(LOG, "%s: cannot reserve the 4 KiB page fills are staged in (%s): give the EAL "
				 "memory (-m)", q->name, strerror(-rc));
			free(ring);
			return rc;
		}
	}
	free(q->ring);
	q->ring = ring;
	q->nb_desc = conf->nb_desc;
	q->ring_mask = (uint16_t)(conf->nb_desc - 1);
	q->next = q->submitted = q->done = q->reported = 0;
	q->phase = PH_IDLE;
	memset(&q->stats, 0, sizeof(q->stats));
	return 0;
}

static int edu_start(struct upmd_dma_dev *dev, struct upmd_dma_fp *fp)
{
	struct edu_dma *q = dev->priv;

	if (engine_busy(q)) {
		UPMD_ERR(LOG, "%s: the engine is running a transfer (upmd_edu_dma() in another thread?): the "
			 "dmadev needs it to itself", q->name);
		return -EBUSY;
	}
	fp->copy = edu_copy;
	fp->fill = edu_fill;
	fp->compare = edu_compare;
	fp->crc32c = edu_crc32c;
	fp->submit = edu_submit;
	fp->completed = edu_completed;
	fp->completed_status = edu_completed_status;
	fp->burst_capacity = edu_burst_capacity;
	return 0;
}

static int edu_stop(struct upmd_dma_dev *dev)
{
	struct edu_dma *q = dev->priv;
	uint64_t deadline = now_ms() + STOP_TIMEOUT_MS;
	int rc = 0;

	if (!q->ring)
		return 0;
	/* The transfer in flight cannot be cancelled: wait for it. */
	while (q->phase != PH_IDLE && engine_busy(q)) {
		struct timespec pause = { 0, 50000 };

		if (now_ms() > deadline) {
			UPMD_ERR(LOG, "%s: the transfer in flight did not finish in %d ms; the device may still "
				 "write IOVA 0x%" PRIx64 " until bus mastering is turned off", q->name,
				 STOP_TIMEOUT_MS, q->ring[q->done & q->ring_mask].dst + q->off);
			rc = -ETIMEDOUT;
			break;
		}
		nanosleep(&pause, NULL);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (rc == 0 && q->phase == PH_TO_RAM && q->off + q->chunk >= q->ring[q->done & q->ring_mask].len) {
		/* The last chunk finished: that operation is done. */
		q->ring[q->done & q->ring_mask].status = UPMD_DMA_STATUS_SUCCESSFUL;
		q->done++;
	}
	q->phase = PH_IDLE;
	q->off = 0;
	/* Everything else, submitted or not, is reported as aborted. */
	for (; q->done != q->next; q->done++)
		q->ring[q->done & q->ring_mask].status = UPMD_DMA_STATUS_USER_ABORT;
	q->submitted = q->next;
	return rc;
}

static void edu_close(struct upmd_dma_dev *dev)
{
	struct edu_dma *q = dev->priv;

	free(q->ring);
	q->ring = NULL;
	q->nb_desc = 0;
	q->ring_mask = 0;
	q->next = q->submitted = q->done = q->reported = 0;
	if (q->stage) {
		upmd_memzone_free(q->stage);
		q->stage = NULL;
	}
}

static int edu_stats_get(const struct upmd_dma_dev *dev, uint16_t vchan, struct upmd_dma_stats *stats)
{
	const struct edu_dma *q = dev->priv;

	(void)vchan;
	*stats = q->stats;
	return 0;
}

static int edu_stats_reset(struct upmd_dma_dev *dev, uint16_t vchan)
{
	struct edu_dma *q = dev->priv;

	(void)vchan;
	memset(&q->stats, 0, sizeof(q->stats));
	return 0;
}

static const struct upmd_dma_dev_ops edu_dma_ops = {
	.info_get = edu_info_get,
	.configure = edu_configure,
	.vchan_setup = edu_vchan_setup,
	.start = edu_start,
	.stop = edu_stop,
	.close = edu_close,
	.stats_get = edu_stats_get,
	.stats_reset = edu_stats_reset,
};

/* ---- the DMA mask ----------------------------------------------------------------- */

static int mask_ok(uint64_t mask)
{
	/* 2^n - 1 with n >= 12: mask + 1 is a power of two (or wraps to 0). */
	return mask >= 0xfff && (mask & (mask + 1)) == 0;
}

static struct upmd_dma_dev *edu_dev(const char *dev_name)
{
	int id = upmd_dma_get_dev_id_by_name(dev_name);
	struct upmd_dma_dev *dev = id < 0 ? NULL : upmd_dma_dev_get((int16_t)id);

	return dev && dev->ops == &edu_dma_ops ? dev : NULL;
}

int upmd_edu_dma_set_mask(const char *dev_name, uint64_t mask)
{
	struct upmd_dma_dev *dev;
	struct edu_dma *q;

	if (!dev_name || !(dev = edu_dev(dev_name)))
		return -ENODEV;
	q = dev->priv;
	if (!mask_ok(mask)) {
		UPMD_ERR(LOG, "%s: DMA mask 0x%" PRIx64 " is not 2^n - 1 with n >= 12 (e.g. 0xffffffff)", q->name,
			 mask);
		return -EINVAL;
	}
	if (dev->started) {
		UPMD_ERR(LOG, "%s: set the DMA mask while the dmadev is stopped", q->name);
		return -EBUSY;
	}
	q->dma_mask = mask;
	return 0;
}

int upmd_edu_dma_get_mask(const char *dev_name, uint64_t *mask)
{
	struct upmd_dma_dev *dev;

	if (!mask)
		return -EINVAL;
	if (!dev_name || !(dev = edu_dev(dev_name)))
		return -ENODEV;
	*mask = ((struct edu_dma *)dev->priv)->dma_mask;
	return 0;
}

static uint64_t env_mask(const char *name)
{
	const char *s = getenv("UPMD_EDU_DMA_MASK");
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return UPMD_EDU_DMA_MASK_DEFAULT;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || !mask_ok(v)) {
		UPMD_WARN(LOG, "%s: ignoring UPMD_EDU_DMA_MASK='%s' (give 2^n - 1, n >= 12, e.g. 0xffffffff); "
			  "assuming QEMU's default 0x%llx", name, s, (unsigned long long)UPMD_EDU_DMA_MASK_DEFAULT);
		return UPMD_EDU_DMA_MASK_DEFAULT;
	}
	return v;
}

/* ---- the PCI driver's hooks ------------------------------------------------------- */

int upmd_edu_dmadev_attach_(struct upmd_edu *e)
{
	struct upmd_dma_dev *dev;
	struct edu_dma *q;
	int rc;

	rc = upmd_dma_dev_allocate(e->pdev->name, &edu_dma_ops, sizeof(*q), &dev);
	if (rc < 0)
		return rc;
	q = dev->priv;
	q->edu = e;
	q->regs = e->regs;
	snprintf(q->name, sizeof(q->name), "%s", e->pdev->name);
	q->dma_mask = env_mask(q->name);
	e->dmadev = dev;
	UPMD_INFO(LOG, "%s: dmadev %d, DMA mask 0x%" PRIx64, q->name, dev->dev_id, q->dma_mask);
	return 0;
}

void upmd_edu_dmadev_detach_(struct upmd_edu *e)
{
	if (!e->dmadev)
		return;
	/* Waits for a transfer in flight, frees the ring and staging page. */
	upmd_dma_close(e->dmadev->dev_id);
	upmd_dma_dev_release(e->dmadev);
	e->dmadev = NULL;
}
