/* The virtual device bus: drivers for devices named by --vdev (net_null0, net_ring0,...), found by name prefix. */
#ifndef UPMD_VDEV_H
#define UPMD_VDEV_H

#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A virtual device driver. "--vdev NAME[,ARGS]" goes to the registered
 * driver whose name is the longest prefix of NAME (net_ring0 and
 * net_ring_a both go to net_ring). probe gets the whole NAME and ARGS
 * ("" if none) during upmd_eal_init(), after memory is up; a probe that
 * fails fails the init. remove runs at upmd_eal_cleanup(), in reverse
 * order. Registry calls are not thread-safe: constructors only.
 */
struct upmd_vdev_driver {
	const char *name;
	const char *usage;		/* "size=N,copy=0|1", for messages */
	int (*probe)(const char *name, const char *args);
	void (*remove)(const char *name);
	struct upmd_vdev_driver *next;
};

void upmd_vdev_register(struct upmd_vdev_driver *drv);
#define UPMD_VDEV_REGISTER_DRIVER(drv)                                         \
	__attribute__((constructor)) static void upmdvdevinit_##drv(void)      \
	{ upmd_vdev_register(&(drv)); }

/** Virtual devices probed so far. */
unsigned upmd_vdev_count(void);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_VDEV_H */
