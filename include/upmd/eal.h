/* Environment abstraction layer: arguments, lcores, init and cleanup. */
#ifndef UPMD_EAL_H
#define UPMD_EAL_H

#include <stdbool.h>
#include <stdint.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Initialise upmd from DPDK-style arguments: -l/--lcores, -a/--allow BDF
 * (repeatable), --vdev, -m MB, --socket-mem MB[,MB...], --huge-dir DIR,
 * --no-huge, --iova-mode va|alloc, --iommu iommufd|type1, --log-level L,
 * --model SPEC, --help. argv[0] is the program name; parsing stops at "--".
 *
 * Reserves memory, opens the one IOAS, maps every memory segment into it,
 * scans the PCI bus and attaches every allowed device to that IOAS, and
 * starts one pinned thread per worker lcore.
 *
 * @return the number of arguments consumed (including argv[0] and "--"),
 *   or -errno: -EINVAL for malformed arguments (a usage message has been
 *   printed, nothing was allocated), -ECANCELED after --help, -EALREADY if
 *   already initialised, -ENODEV/-ENOENT/-ENOMEM/-EPERM for environment
 *   problems (the log says what is missing and how to fix it). After a
 *   failure everything that was acquired has been released.
 * Not thread-safe; call once from the main thread.
 */
int upmd_eal_init(int argc, char **argv);

/**
 * The process exit code an application should use after upmd_eal_init()
 * returned @rc < 0: 0 after --help, 2 for a usage error, 1 otherwise.
 */
int upmd_eal_exit_code(int rc);

/**
 * Stop worker threads, detach and close every device, unmap memory from the
 * IOAS, release memory. Workers must have returned (upmd_eal_mp_wait_lcore).
 * @return 0, or -EALREADY if not initialised.
 */
int upmd_eal_cleanup(void);

/** Print the EAL usage to stdout. */
void upmd_eal_usage(const char *prgname);

/* ---- lcores ---- */

typedef int (upmd_lcore_function_t)(void *arg);

enum upmd_lcore_state { UPMD_LCORE_WAIT, UPMD_LCORE_RUNNING, UPMD_LCORE_FINISHED };

/* The calling thread's lcore id (internal: use upmd_lcore_id()). Initial
 * exec: one thread-pointer-relative load, as the data paths need. */
extern __thread unsigned upmd_this_lcore_ __attribute__((tls_model("initial-exec")));

/** Id of the calling lcore, or UPMD_MAX_LCORE for a non-EAL thread. */
static inline unsigned upmd_lcore_id(void)
{
	return upmd_this_lcore_;
}
/** The main lcore (the first of -l). */
unsigned upmd_get_main_lcore(void);
/** Number of enabled lcores. */
unsigned upmd_lcore_count(void);
/** True if @lcore_id was given in -l. */
bool upmd_lcore_is_enabled(unsigned lcore_id);
/** CPU the lcore is pinned to, or -EINVAL. */
int upmd_lcore_to_cpu(unsigned lcore_id);
/** NUMA node of the lcore's CPU (0 on machines without NUMA). */
int upmd_lcore_to_socket_id(unsigned lcore_id);
/** NUMA node of the calling lcore. */
int upmd_socket_id(void);
/**
 * Next enabled lcore after @i (start with -1 cast to unsigned), optionally
 * skipping the main lcore; returns UPMD_MAX_LCORE at the end.
 */
unsigned upmd_get_next_lcore(unsigned i, bool skip_main);

#define UPMD_LCORE_FOREACH_WORKER(i)                                           \
	for ((i) = upmd_get_next_lcore((unsigned)-1, true); (i) < UPMD_MAX_LCORE; \
	     (i) = upmd_get_next_lcore((i), true))

/**
 * Run @f(@arg) on worker @worker_id.
 * @return 0, -EBUSY if that lcore is running something, -EINVAL for the
 *   main lcore or a disabled one.
 */
int upmd_eal_remote_launch(upmd_lcore_function_t *f, void *arg, unsigned worker_id);
/** Wait for @worker_id to finish; returns its function's return value (or 0 if idle). */
int upmd_eal_wait_lcore(unsigned worker_id);
/** Wait for every worker. */
void upmd_eal_mp_wait_lcore(void);
enum upmd_lcore_state upmd_eal_get_lcore_state(unsigned lcore_id);

/* ---- run-time configuration chosen by init ---- */

enum upmd_iova_mode { UPMD_IOVA_MODE_AUTO = 0, UPMD_IOVA_MODE_VA, UPMD_IOVA_MODE_ALLOC };
enum upmd_iova_mode upmd_eal_iova_mode(void);
const char *upmd_iova_mode_name(enum upmd_iova_mode m);
/** True once upmd_eal_init() has succeeded and until cleanup. */
bool upmd_eal_initialized(void);
/** Values of --vdev, in order. */
unsigned upmd_eal_vdev_count(void);
const char *upmd_eal_vdev(unsigned i);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_EAL_H */
