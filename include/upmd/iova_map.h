/* Dynamic IOVA mappings: application memory outside the hugepage segments, mapped into the process's one IOAS and the VA->IOVA table. */
#ifndef UPMD_IOVA_MAP_H
#define UPMD_IOVA_MAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Memory the EAL did not reserve (a buffer from malloc, a file mapping)
 * becomes reachable by every device of the process with upmd_iova_map():
 * its 4 KiB pages are mapped into the EAL's IOAS, at IOVA = VA in IOVA
 * mode va and at an IOVA from the IOAS's allocator in mode alloc, and
 * recorded in the VA->IOVA table, so upmd_iova_from_va() and
 * upmd_mem_virt2iova() find it like segment memory.
 *
 * The whole pages holding [va, va+len) are mapped: a device can reach the
 * rest of a partly used page, and two buffers sharing a page cannot both
 * be mapped (map the range that holds both, once).
 *
 * An ordinary mapping is unmapped when upmd_iova_unmap() returns: after
 * that no device can reach the memory, and it may be freed. An
 * EPHEMERAL mapping is for one-shot buffers: upmd_iova_unmap() forgets it
 * at once (lookups fail) but the IOAS unmap is deferred and batched, one
 * IOAS_UNMAP for each run of adjacent IOVAs, when UPMD_IOVA_UNMAP_BATCH
 * mappings or UPMD_IOVA_UNMAP_BATCH_BYTES are pending, when a map needs
 * the space or the pinned-memory budget, on upmd_iova_unmap_flush(), and
 * at EAL cleanup. Until then the pages stay pinned and a misbehaving
 * device could still write them, exactly as with the kernel's lazy IOTLB
 * mode: use it only for buffers whose device access has completed.
 *
 * Thread-safe (one lock: this is the control path, lookups take none).
 */
#define UPMD_IOVA_MAP_READ (1u << 0)	/* devices may read the memory */
#define UPMD_IOVA_MAP_WRITE (1u << 1)	/* devices may write it */
#define UPMD_IOVA_MAP_RW (UPMD_IOVA_MAP_READ | UPMD_IOVA_MAP_WRITE)
#define UPMD_IOVA_MAP_EPHEMERAL (1u << 2)	/* one-shot: the unmap is deferred and batched */

#define UPMD_IOVA_UNMAP_BATCH 64
#define UPMD_IOVA_UNMAP_BATCH_BYTES (64ULL << 20)

/**
 * Map the pages holding [va, va+len) for DMA by every device of the
 * process. @flags: READ and/or WRITE, optionally EPHEMERAL. @iova may be
 * NULL; otherwise it receives the IOVA of @va itself.
 * @return 0; -EINVAL (len 0, a range that wraps, bad flags, or in IOVA
 * mode va an address the IOMMU cannot use: the log says so); -EEXIST (a
 * page is already mapped: a hugepage segment or another mapping);
 * -ENODEV (no IOAS: the EAL is not initialised or found no IOMMU);
 * -ENOSPC (no free IOVA); -ENOMEM (the pinned-memory limit: the log gives
 * RLIMIT_MEMLOCK); -EFAULT (the memory is not mapped in the process); or
 * the kernel's -errno. Nothing stays mapped on failure.
 */
int upmd_iova_map(void *va, size_t len, uint32_t flags, uint64_t *iova);

/**
 * Unmap what upmd_iova_map(@va, @len, ...) mapped (the same pages).
 * @return 0, -EINVAL, -ENOENT (no mapping of exactly those pages), or the
 * kernel's -errno (the mapping stays, and is retried at cleanup).
 */
int upmd_iova_unmap(void *va, size_t len);

/** Carry out every deferred unmap now. @return 0 or the first -errno. */
int upmd_iova_unmap_flush(void);

struct upmd_iova_map_stats {
	unsigned mappings;		/* live dynamic mappings */
	uint64_t bytes;			/* and their bytes */
	unsigned pending;		/* ephemeral unmaps not yet carried out */
	uint64_t pending_bytes;
	uint64_t unmap_calls;		/* IOAS unmaps issued so far */
	uint64_t unmapped;		/* mappings those unmapped */
};

void upmd_iova_map_stats(struct upmd_iova_map_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_IOVA_MAP_H */
