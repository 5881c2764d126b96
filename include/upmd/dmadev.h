/* DMA engines (dmadev): devices, virtual channels, copy/fill/compare/CRC32C enqueue, submit, completion with status; hot calls inline. */
#ifndef UPMD_DMADEV_H
#define UPMD_DMADEV_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * DPDK's dmadev model. A device has virtual channels (vchans), each a ring
 * of operations owned by one thread: enqueue calls put operations on the
 * ring and return their ring index (a 16-bit counter that wraps), submit
 * hands everything enqueued to the engine (one doorbell), and completed
 * calls report what finished, in ring order. Addresses are IOVAs of
 * memory the IOAS maps (upmd_mem_virt2iova(), memzone->iova, mbuf
 * buf_iova): the engine sees what the NIC and the NVMe drive see.
 *
 * Hot calls (enqueue, submit, completed, burst capacity) are inline and
 * lock-free; they go through the device's fast-path table, like ethdev's
 * bursts, and do no argument checks beyond what the driver does
 * (UPMD_DMA_DEBUG adds them).
 */

#define UPMD_DMA_MAX_DEVS 64
#define UPMD_DMA_NAME_MAX 64

/* Capabilities. */
#define UPMD_DMA_CAPA_MEM_TO_MEM (1ull << 0)
#define UPMD_DMA_CAPA_SVA (1ull << 1)		/* addresses may be process VAs (shared virtual addressing) */
#define UPMD_DMA_CAPA_PASID (1ull << 2)		/* the device tags its DMA with a PASID */
#define UPMD_DMA_CAPA_OPS_COPY (1ull << 32)
#define UPMD_DMA_CAPA_OPS_FILL (1ull << 33)
#define UPMD_DMA_CAPA_OPS_COMPARE (1ull << 34)
#define UPMD_DMA_CAPA_OPS_CRC32C (1ull << 35)

/* Operation flags. */
#define UPMD_DMA_OP_FLAG_FENCE (1ull << 0)	/* start after every earlier operation of the vchan finished */
#define UPMD_DMA_OP_FLAG_SUBMIT (1ull << 1)	/* submit now (as upmd_dma_submit() after it) */

struct upmd_dma_info {
	const char *driver;
	const char *name;
	uint64_t capa;			/* UPMD_DMA_CAPA_* */
	uint16_t max_vchans;
	uint16_t nb_vchans;		/* configured */
	uint16_t min_desc, max_desc;	/* ring sizes a vchan takes */
	uint32_t max_length;		/* bytes one operation may move */
	int numa_node;
	uint32_t pasid;			/* UPMD_DMA_NO_PASID unless CAPA_PASID */
};
#define UPMD_DMA_NO_PASID UINT32_MAX

struct upmd_dma_conf {
	uint32_t size;			/* sizeof(struct upmd_dma_conf) */
	uint16_t nb_vchans;		/* 1..max_vchans */
	uint16_t flags;			/* 0 */
};

struct upmd_dma_vchan_conf {
	uint32_t size;			/* sizeof(struct upmd_dma_vchan_conf) */
	uint16_t nb_desc;		/* ring size, a power of two in [min_desc, max_desc] */
	uint16_t flags;			/* 0 */
};

struct upmd_dma_stats {
	uint64_t submitted;		/* operations handed to the engine */
	uint64_t completed;		/* reported done, successfully or not */
	uint64_t errors;		/* of those, with a non-zero status */
};

/** Status of one operation. */
enum upmd_dma_status_code {
	UPMD_DMA_STATUS_SUCCESSFUL = 0,
	UPMD_DMA_STATUS_USER_ABORT,		/* stopped by upmd_dma_stop() */
	UPMD_DMA_STATUS_NOT_ATTEMPTED,		/* an earlier operation of a batch or fence failed */
	UPMD_DMA_STATUS_INVALID_SRC_ADDR,
	UPMD_DMA_STATUS_INVALID_DST_ADDR,
	UPMD_DMA_STATUS_INVALID_ADDR,
	UPMD_DMA_STATUS_INVALID_LENGTH,
	UPMD_DMA_STATUS_INVALID_OPCODE,
	UPMD_DMA_STATUS_BUS_READ_ERROR,
	UPMD_DMA_STATUS_BUS_WRITE_ERROR,
	UPMD_DMA_STATUS_BUS_ERROR,
	UPMD_DMA_STATUS_DATA_POISON,
	UPMD_DMA_STATUS_DESCRIPTOR_READ_ERROR,
	UPMD_DMA_STATUS_DEV_LINK_ERROR,
	UPMD_DMA_STATUS_PAGE_FAULT,		/* the IOMMU refused an address (unmapped IOVA) */
	UPMD_DMA_STATUS_COMPARE_MISMATCH,	/* a compare found the buffers differ (not a failure of the engine) */
	UPMD_DMA_STATUS_PASID_ERROR,		/* the descriptor's PASID is not attached */
	UPMD_DMA_STATUS_ERROR_UNKNOWN = 0x100,
};

/** A readable name ("SUCCESSFUL", "PAGE FAULT", ...); never NULL. */
const char *upmd_dma_status_str(enum upmd_dma_status_code st);

/* ---- control path (not thread-safe per device) ----------------------------- */

/** Devices that exist (configured or not). */
uint16_t upmd_dma_count_avail(void);
/** The id of the device called @name ("dma_sw0", "0000:00:05.0"), or -ENODEV. */
int upmd_dma_get_dev_id_by_name(const char *name);
/** The next device id at or after @start, or -1 (for loops). */
int upmd_dma_next_dev(int start);
#define UPMD_DMA_FOREACH_DEV(i) for ((i) = upmd_dma_next_dev(0); (i) >= 0; (i) = upmd_dma_next_dev((i) + 1))

/** @return 0, -EINVAL (no such device, NULL). */
int upmd_dma_info_get(int16_t dev_id, struct upmd_dma_info *info);
/** Stopped device only. @return 0, -EINVAL (bad conf: logged), -EBUSY (started). */
int upmd_dma_configure(int16_t dev_id, const struct upmd_dma_conf *conf);
/** After configure, before start. @return 0, -EINVAL (logged), -EBUSY, -ENOMEM. */
int upmd_dma_vchan_setup(int16_t dev_id, uint16_t vchan, const struct upmd_dma_vchan_conf *conf);
/** Every configured vchan must be set up. @return 0, -EINVAL, -EBUSY (started), or the driver's -errno. */
int upmd_dma_start(int16_t dev_id);
/** After it returns the device does no DMA; operations not completed
 * are reported as USER_ABORT by the next completed call. @return 0, -EINVAL. */
int upmd_dma_stop(int16_t dev_id);
/** Stop if started, free everything. @return 0, -EINVAL. */
int upmd_dma_close(int16_t dev_id);
bool upmd_dma_is_started(int16_t dev_id);

/** @vchan UINT16_MAX: all vchans summed. @return 0, -EINVAL. */
int upmd_dma_stats_get(int16_t dev_id, uint16_t vchan, struct upmd_dma_stats *stats);
int upmd_dma_stats_reset(int16_t dev_id, uint16_t vchan);

/* ---- data path ----------------------------------------------------------------- */

struct upmd_dma_fp {
	void *priv;
	int (*copy)(void *priv, uint16_t vchan, uint64_t src, uint64_t dst, uint32_t len, uint64_t flags);
	int (*fill)(void *priv, uint16_t vchan, uint64_t pattern, uint64_t dst, uint32_t len, uint64_t flags);
	int (*compare)(void *priv, uint16_t vchan, uint64_t src1, uint64_t src2, uint32_t len, uint64_t flags);
	int (*crc32c)(void *priv, uint16_t vchan, uint64_t src, uint32_t len, uint32_t seed, uint32_t *result,
		      uint64_t flags);
	int (*submit)(void *priv, uint16_t vchan);
	uint16_t (*completed)(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx, bool *has_error);
	uint16_t (*completed_status)(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
				     enum upmd_dma_status_code *status);
	uint16_t (*burst_capacity)(const void *priv, uint16_t vchan);
} __upmd_cache_aligned;

/* Internal: indexed by device id; a device not started has stubs that fail. */
extern struct upmd_dma_fp upmd_dma_fp_[UPMD_DMA_MAX_DEVS];

/**
 * Enqueue a copy of @len bytes from IOVA @src to IOVA @dst.
 * @return its ring index (0..65535), -ENOSPC (the ring is full: submit and
 * reap completions), -ENOTSUP (the device cannot), -EINVAL (len 0 or
 * above max_length), -ENODEV (not started).
 */
static inline int upmd_dma_copy(int16_t dev_id, uint16_t vchan, uint64_t src, uint64_t dst, uint32_t len,
				uint64_t flags)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];

	return fp->copy(fp->priv, vchan, src, dst, len, flags);
}

/** Fill @len bytes at @dst with the 8-byte @pattern (little-endian, repeated). Returns as copy. */
static inline int upmd_dma_fill(int16_t dev_id, uint16_t vchan, uint64_t pattern, uint64_t dst, uint32_t len,
				uint64_t flags)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];

	return fp->fill(fp->priv, vchan, pattern, dst, len, flags);
}

/** Compare @len bytes at @src1 and @src2: completes with SUCCESSFUL when equal, COMPARE_MISMATCH when not. */
static inline int upmd_dma_compare(int16_t dev_id, uint16_t vchan, uint64_t src1, uint64_t src2, uint32_t len,
				   uint64_t flags)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];

	return fp->compare(fp->priv, vchan, src1, src2, len, flags);
}

/**
 * CRC32C (Castagnoli, reflected, as iSCSI) of @len bytes at @src, starting
 * from @seed (0 for a plain CRC32C; the value is not inverted before or
 * after: give ~0 and invert the result for the iSCSI convention). The
 * result is stored at @result (process memory) before the operation is
 * reported complete.
 */
static inline int upmd_dma_crc32c(int16_t dev_id, uint16_t vchan, uint64_t src, uint32_t len, uint32_t seed,
				  uint32_t *result, uint64_t flags)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];

	return fp->crc32c(fp->priv, vchan, src, len, seed, result, flags);
}

/** Hand everything enqueued to the engine: one doorbell. @return 0, -ENODEV. */
static inline int upmd_dma_submit(int16_t dev_id, uint16_t vchan)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];

	return fp->submit(fp->priv, vchan);
}

/**
 * Up to @nb_cpls operations completed successfully, in ring order; stops
 * before the first that failed (*has_error true: upmd_dma_completed_status()
 * then reports it). *last_idx: the ring index of the last one counted.
 * @return how many.
 */
static inline uint16_t upmd_dma_completed(int16_t dev_id, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
					  bool *has_error)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];
	uint16_t idx;
	bool err = false;

	return fp->completed(fp->priv, vchan, nb_cpls, last_idx ? last_idx : &idx, has_error ? has_error : &err);
}

/** Up to @nb_cpls finished operations, failed ones included, with a status each. @return how many. */
static inline uint16_t upmd_dma_completed_status(int16_t dev_id, uint16_t vchan, uint16_t nb_cpls,
						 uint16_t *last_idx, enum upmd_dma_status_code *status)
{
	struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];
	uint16_t idx;

	return fp->completed_status(fp->priv, vchan, nb_cpls, last_idx ? last_idx : &idx, status);
}

/** Operations that can still be enqueued before the ring is full. */
static inline uint16_t upmd_dma_burst_capacity(int16_t dev_id, uint16_t vchan)
{
	const struct upmd_dma_fp *fp = &upmd_dma_fp_[(uint16_t)dev_id % UPMD_DMA_MAX_DEVS];

	return fp->burst_capacity(fp->priv, vchan);
}

/* ---- for drivers ------------------------------------------------------------------ */

struct upmd_dma_dev;

struct upmd_dma_dev_ops {
	void (*info_get)(const struct upmd_dma_dev *dev, struct upmd_dma_info *info);
	int (*configure)(struct upmd_dma_dev *dev, const struct upmd_dma_conf *conf);
	int (*vchan_setup)(struct upmd_dma_dev *dev, uint16_t vchan, const struct upmd_dma_vchan_conf *conf);
	/* Fill *fp (dmadev sets priv first; the driver may change it). */
	int (*start)(struct upmd_dma_dev *dev, struct upmd_dma_fp *fp);
	int (*stop)(struct upmd_dma_dev *dev);
	void (*close)(struct upmd_dma_dev *dev);
	int (*stats_get)(const struct upmd_dma_dev *dev, uint16_t vchan, struct upmd_dma_stats *stats);
	int (*stats_reset)(struct upmd_dma_dev *dev, uint16_t vchan);
};

struct upmd_dma_dev {
	int16_t dev_id;
	char name[UPMD_DMA_NAME_MAX];
	const struct upmd_dma_dev_ops *ops;
	void *priv;			/* the driver's, zeroed */
	uint16_t nb_vchans;
	bool configured, started;
	bool *vchan_ready;		/* per vchan, after setup */
};

/** A new device called @name with @priv_size bytes of private data. @return 0, -EEXIST, -ENOSPC, -ENOMEM. */
int upmd_dma_dev_allocate(const char *name, const struct upmd_dma_dev_ops *ops, size_t priv_size,
			  struct upmd_dma_dev **out);
/** Release (after close). */
void upmd_dma_dev_release(struct upmd_dma_dev *dev);
struct upmd_dma_dev *upmd_dma_dev_get(int16_t dev_id);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_DMADEV_H */
