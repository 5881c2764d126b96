/* Process memory: hugepage (or --no-huge) segments, all mapped into the one IOAS, and memzones carved from them. */
#ifndef UPMD_MEMORY_H
#define UPMD_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPMD_BAD_IOVA UINT64_MAX

/** How a segment's memory was obtained. */
enum upmd_memseg_source {
	UPMD_MEMSEG_HUGETLBFS,	/* a file on a hugetlbfs mount */
	UPMD_MEMSEG_MEMFD,	/* memfd_create(MFD_HUGETLB) */
	UPMD_MEMSEG_ANON,	/* --no-huge: anonymous 4 KiB pages */
};

/** One virtually contiguous piece of memory, mapped into the IOAS once. */
struct upmd_memseg {
	void *va;
	uint64_t iova;		/* UPMD_BAD_IOVA if not mapped into an IOAS */
	size_t len;
	size_t page_sz;
	int socket_id;
	enum upmd_memseg_source source;
	int fd;			/* backing file/memfd, or -1 */
};

/** Number of memory segments. */
unsigned upmd_memseg_count(void);
/** Segment @i, or NULL. */
const struct upmd_memseg *upmd_memseg_get(unsigned i);
/** Total bytes reserved on @socket_id (UPMD_SOCKET_ID_ANY: all). */
size_t upmd_mem_total(int socket_id);

/**
 * IOVA of a VA inside a memory segment or a dynamic mapping.
 * @return the IOVA, or UPMD_BAD_IOVA if @va is not in IOAS-mapped memory.
 * Thread-safe.
 */
uint64_t upmd_mem_virt2iova(const void *va);

/** A named, IOVA-contiguous block carved from one segment. */
struct upmd_memzone {
	char name[32];
	void *addr;
	uint64_t iova;
	size_t len;
	int socket_id;
};

/**
 * Reserve @len bytes aligned to @align (power of two, 0 = cache line) on
 * @socket_id (UPMD_SOCKET_ID_ANY: the caller's node first, then any), zeroed.
 * Once the memory is in the IOAS the alignment is that of the iova (devices
 * are what need it), which is also the addr's in IOVA=VA mode and whenever
 * @align is at most the alignment the IOAS gave the segment.
 * @return 0 and *mz, -EEXIST if the name is taken, -ENOMEM if no segment has
 *   room, -EINVAL for a bad argument. Thread-safe.
 */
int upmd_memzone_reserve(const char *name, size_t len, int socket_id, size_t align,
			 const struct upmd_memzone **mz);
/** Release a memzone. @return 0 or -EINVAL. Thread-safe. */
int upmd_memzone_free(const struct upmd_memzone *mz);
/** Find a memzone by name, or NULL. */
const struct upmd_memzone *upmd_memzone_lookup(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_MEMORY_H */
