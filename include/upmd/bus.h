/* Bus registry: the EAL scans and probes every registered bus through this table. */
#ifndef UPMD_BUS_H
#define UPMD_BUS_H

#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upmd_ioas;

/** What the EAL's arguments ask of the buses. */
struct upmd_bus_conf {
	const char *const *allow;	/* -a values, as given */
	unsigned n_allow;
};

struct upmd_bus {
	const char *name;
	/* Is @name (an -a value) a device name of this bus? 0 or -EINVAL.
	 * Used while parsing arguments, before anything is allocated. */
	int (*parse)(const char *name);
	/* Discover devices (no device is opened). 0 or -errno with a log. */
	int (*scan)(const struct upmd_bus_conf *conf);
	/* Open each selected device and attach it to @ioas (NULL: no IOAS).
	 * Runs before memory is mapped, because an attach can add reserved
	 * IOVA regions (the MSI window) and narrow the aperture. */
	int (*attach)(struct upmd_ioas *ioas);
	/* Run matching drivers on the attached devices; memory is mapped. */
	int (*probe)(void);
	/* Remove drivers, stop DMA, detach and close every device. */
	void (*cleanup)(void);
	struct upmd_bus *next;
};

void upmd_bus_register(struct upmd_bus *bus);
/** First registered bus (walk with ->next). */
struct upmd_bus *upmd_bus_first(void);

#define UPMD_REGISTER_BUS(b)                                                   \
	__attribute__((constructor)) static void upmdbusinit_##b(void)         \
	{ upmd_bus_register(&(b)); }

#ifdef __cplusplus
}
#endif
#endif /* UPMD_BUS_H */
