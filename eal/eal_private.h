/* Interfaces between the EAL's own files (init, lcores, memory). */
#ifndef UPMD_EAL_PRIVATE_H
#define UPMD_EAL_PRIVATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <upmd/eal.h>
#include <upmd/ioas.h>
#include <upmd/memory.h>

/* ---- memory (eal/memory.c, eal/memzone.c) ---- */

struct eal_mem_conf {
	size_t total;				/* -m, bytes; 0 = default */
	size_t socket_mem[UPMD_MAX_NUMA_NODES];	/* --socket-mem, bytes */
	bool socket_mem_given;
	bool no_huge;
	const char *huge_dir;			/* --huge-dir or NULL */
	/* Where to look; NULL means the real "/sys" and "/proc/mounts".
	 * Tests point these at fake trees. */
	const char *sysfs_root;
	const char *mounts_path;
	/* Where the default hugepage size ("Hugepagesize:") is read, for
	 * hugetlbfs mounts without pagesize=; NULL means "/proc/meminfo". */
	const char *meminfo_path;
};

/** Default memory when neither -m nor --socket-mem is given. */
#define EAL_DEFAULT_MEM (64 * UPMD_MB)

/** One hugepage size the machine offers. */
struct eal_hugepage_pool {
	size_t page_sz;
	unsigned nr_total;			/* nr_hugepages */
	unsigned nr_free;			/* free_hugepages */
	unsigned nr_free_node[UPMD_MAX_NUMA_NODES];	/* per node, if known */
	unsigned nr_total_node[UPMD_MAX_NUMA_NODES];	/* per node nr_hugepages */
	/* Nodes sysfs lists (bit n = node n). A kernel without per-node
	 * directories reports everything as node 0. */
	unsigned node_mask;
	char mount[PATH_MAX];			/* hugetlbfs mount for this size, or "" */
};

/**
 * Discover hugepage pools (sysfs) and hugetlbfs mounts (/proc/mounts).
 * @return number of pools written to @pools (<= max), or -errno.
 */
int eal_hugepage_discover(const struct eal_mem_conf *c, struct eal_hugepage_pool *pools,
			  unsigned max);

/**
 * Reserve the memory asked for: hugepages from a hugetlbfs mount (or
 * --huge-dir), memfd_create(MFD_HUGETLB) when none is mounted, placed per
 * NUMA node; anonymous memory with --no-huge.
 * @return 0, or -ENOMEM with a message giving the command that reserves
 *   hugepages and the --no-huge hint. On failure nothing stays reserved.
 */
int eal_memory_init(const struct eal_mem_conf *c);

/**
 * Map every segment into @ioas once. @mode AUTO picks VA when every
 * segment's VA range is an allowed IOVA range, ALLOC otherwise.
 * @return 0 and the mode used in *chosen, or -errno (nothing stays mapped).
 */
int eal_memory_map_ioas(struct upmd_ioas *ioas, enum upmd_iova_mode mode,
			enum upmd_iova_mode *chosen);
/** Unmap every segment from the IOAS it was mapped into. */
void eal_memory_unmap_ioas(void);
/* iova/iova_map.c: unmap every dynamic mapping, carry out deferred unmaps. */
void eal_iova_map_cleanup(void);
/* mempool/: free the pools and the memzone rings the application left. */
void eal_mempool_cleanup(void);
void eal_ring_cleanup(void);
/** Release every segment and memzone; unmaps from the IOAS first if still
 * mapped, so call it before the IOAS is closed. */
void eal_memory_cleanup(void);

/* Memzone heaps over the segments (eal/memzone.c), driven by memory.c. */
/** Build one free list per segment. @return 0 or -ENOMEM. */
int eal_memzone_init(void);
/** Refresh every memzone's iova after segments were mapped or unmapped. */
void eal_memzone_iova_update(void);
/** Forget every memzone and free list. */
void eal_memzone_cleanup(void);

/* ---- lcores (eal/lcore.c) ---- */

/**
 * Parse an lcore list ("0-3,5", "1", "0,2-3"). @return 0 and the set in
 * @set (bool[UPMD_MAX_LCORE]), or -EINVAL.
 */
int eal_parse_lcores(const char *s, bool *set);
/** Check every lcore of @set is a CPU this process may run on. 0 or -EINVAL. */
int eal_lcores_check(const bool *set);
/** Start pinned worker threads for @set; the first lcore is the main one. */
int eal_lcores_init(const bool *set);
void eal_lcores_cleanup(void);

/** Parse a size in MB ("512", "1024") for -m/--socket-mem. */
int eal_parse_mb(const char *s, size_t *bytes);

#endif /* UPMD_EAL_PRIVATE_H */
