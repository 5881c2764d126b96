/* Small shared macros for upmd: compiler hints, alignment, cache lines. */
#ifndef UPMD_COMMON_H
#define UPMD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define UPMD_CACHE_LINE_SIZE 64
#define __upmd_cache_aligned __attribute__((aligned(UPMD_CACHE_LINE_SIZE)))
#define __upmd_unused __attribute__((unused))
#define __upmd_printf(a, b) __attribute__((format(printf, a, b)))
#define upmd_likely(x) __builtin_expect(!!(x), 1)
#define upmd_unlikely(x) __builtin_expect(!!(x), 0)

#define UPMD_ALIGN_UP(v, a) (((v) + ((a) - 1)) & ~((__typeof__(v))(a) - 1))
#define UPMD_ALIGN_DOWN(v, a) ((v) & ~((__typeof__(v))(a) - 1))
#define UPMD_IS_POW2(v) ((v) != 0 && (((v) & ((v) - 1)) == 0))
#define UPMD_DIM(a) (sizeof(a) / sizeof((a)[0]))
#define UPMD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define UPMD_MAX(a, b) ((a) > (b) ? (a) : (b))

#define UPMD_KB (1024ULL)
#define UPMD_MB (1024ULL * 1024)
#define UPMD_GB (1024ULL * 1024 * 1024)

#define upmd_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Maximum number of lcores and NUMA sockets the EAL tracks. */
#define UPMD_MAX_LCORE 128
#define UPMD_MAX_NUMA_NODES 8
#define UPMD_SOCKET_ID_ANY (-1)

#endif /* UPMD_COMMON_H */
