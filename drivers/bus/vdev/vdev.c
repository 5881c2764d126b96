/* The vdev bus: --vdev values checked against the driver registry at scan, probed in order, removed in reverse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/bus.h>
#include <upmd/eal.h>
#include <upmd/log.h>
#include <upmd/vdev.h>

#define LOG "vdev"
#define MAX_VDEVS 64

static struct upmd_vdev_driver *drivers;

struct vdev {
	char name[64];
	const char *args;		/* into the EAL's copy of the argument */
	struct upmd_vdev_driver *drv;
	bool probed;
};

static struct vdev devs[MAX_VDEVS];
static unsigned ndevs;

void upmd_vdev_register(struct upmd_vdev_driver *drv)
{
	drv->next = drivers;
	drivers = drv;
}

unsigned upmd_vdev_count(void)
{
	unsigned i, n = 0;

	for (i = 0; i < ndevs; i++)
		n += devs[i].probed;
	return n;
}

static struct upmd_vdev_driver *find_driver(const char *name)
{
	struct upmd_vdev_driver *d, *best = NULL;

	for (d = drivers; d; d = d->next)
		if (!strncmp(name, d->name, strlen(d->name)) && (!best || strlen(d->name) > strlen(best->name)))
			best = d;
	return best;
}

static void known_list(char *buf, size_t len)
{
	struct upmd_vdev_driver *d;

	buf[0] = '\0';
	for (d = drivers; d; d = d->next) {
		strncat(buf, d == drivers ? "" : ", ", len - strlen(buf) - 1);
		strncat(buf, d->name, len - strlen(buf) - 1);
	}
}

static void vdev_cleanup(void)
{
	while (ndevs) {
		struct vdev *v = &devs[--ndevs];

		if (v->probed && v->drv->remove)
			v->drv->remove(v->name);
		v->probed = false;
	}
}

static int vdev_scan(const struct upmd_bus_conf *conf)
{
	unsigned i, j, n = upmd_eal_vdev_count();
	char known[256];

	(void)conf;
	vdev_cleanup();
	if (n > MAX_VDEVS) {
		UPMD_ERR(LOG, "%u --vdev options: at most %d", n, MAX_VDEVS);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		const char *s = upmd_eal_vdev(i), *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		struct vdev *v = &devs[ndevs];

		if (len == 0 || len >= sizeof(v->name)) {
			UPMD_ERR(LOG, "--vdev '%s': the device name must be 1 to %zu characters", s, sizeof(v->name) - 1);
			return -EINVAL;
		}
		memcpy(v->name, s, len);
		v->name[len] = '\0';
		v->args = comma ? comma + 1 : "";
		v->drv = find_driver(v->name);
		v->probed = false;
		if (!v->drv) {
			known_list(known, sizeof(known));
			UPMD_ERR(LOG, "--vdev '%s': no driver for '%s' (a name starts with the driver's: %s)", s, v->name,
				 *known ? known : "none registered");
			return -EINVAL;
		}
		for (j = 0; j < ndevs; j++)
			if (!strcmp(devs[j].name, v->name)) {
				UPMD_ERR(LOG, "--vdev %s given twice: each virtual device needs its own name (%s0, %s1...)",
					 v->name, v->drv->name, v->drv->name);
				return -EINVAL;
			}
		ndevs++;
	}
	return 0;
}

static int vdev_probe(void)
{
	unsigned i;
	int rc;

	for (i = 0; i < ndevs; i++) {
		struct vdev *v = &devs[i];

		rc = v->drv->probe(v->name, v->args);
		if (rc < 0) {
			UPMD_ERR(LOG, "--vdev %s%s%s: %s failed (%s)%s%s", v->name, *v->args ? "," : "", v->args,
				 v->drv->name, strerror(-rc), v->drv->usage ? "; it takes " : "",
				 v->drv->usage ? v->drv->usage : "");
			return rc;
		}
		v->probed = true;
		UPMD_INFO(LOG, "%s: probed by %s", v->name, v->drv->name);
	}
	return 0;
}

static struct upmd_bus vdev_bus = {
	.name = "vdev",
	.scan = vdev_scan,
	.probe = vdev_probe,
	.cleanup = vdev_cleanup,
};

UPMD_REGISTER_BUS(vdev_bus)
