/* The kernel's sysfs view of PCI functions, and binding them to a kernel driver (vfio-pci) through driver_override. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/pci.h>

#include "pci_private.h"

/* Longest path built here: the devices dir, a name, an attribute. */
#define PATH_LEN 256

static int dev_path(char *buf, const char *name, const char *attr)
{
	int n = snprintf(buf, PATH_LEN, PCI_SYSFS_DEVICES "/%s%s%s", name, attr ? "/" : "",
			 attr ? attr : "");

	return n > 0 && n < PATH_LEN ? 0 : -ENAMETOOLONG;
}

/* A hex attribute ("0x1234"); sysfs always writes the 0x. */
static int read_hex(const char *name, const char *attr, uint32_t *out)
{
	char path[PATH_LEN], buf[32], *end;
	unsigned long v;
	ssize_t n;

	if (dev_path(path, name, attr) < 0)
		return -ENAMETOOLONG;
	n = upmd_k_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	errno = 0;
	v = strtoul(buf, &end, 16);
	if (errno || end == buf || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* The last path component of a symlink's target ("../../drivers/vfio-pci" -> "vfio-pci"). */
static int read_link_base(const char *name, const char *attr, char *out, size_t len)
{
	char path[PATH_LEN], target[PATH_MAX];
	const char *base;
	ssize_t n;

	if (dev_path(path, name, attr) < 0)
		return -ENAMETOOLONG;
	n = upmd_k_readlink(path, target, sizeof(target));
	if (n < 0)
		return (int)n;
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	strcpy(out, base);
	return 0;
}

static int find_cdev(const char *entry, void *arg)
{
	char *out = arg;
	const char *p;

	if (strncmp(entry, "vfio", 4) || !entry[4])
		return 0;
	for (p = entry + 4; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	if (strlen(entry) >= sizeof(((struct upmd_pci_sysfs_dev *)0)->cdev))
		return 0;
	strcpy(out, entry);
	return 1;
}

int pci_sysfs_read_dev(const char *name, struct upmd_pci_sysfs_dev *out)
{
	char path[PATH_LEN], buf[32], group[16];
	uint32_t v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (upmd_pci_addr_parse(name, &out->addr) < 0)
		return -EINVAL;
	upmd_pci_addr_fmt(&out->addr, out->name, sizeof(out->name));

	/* vendor tells "no such device" apart from an unreadable one. */
	rc = read_hex(name, "vendor", &v);
	if (rc == -ENOENT)
		return -ENODEV;
	if (rc < 0)
		return rc;
	out->id.vendor_id = (uint16_t)v;
	rc = read_hex(name, "device", &v);
	if (rc < 0)
		return rc;
	out->id.device_id = (uint16_t)v;
	rc = read_hex(name, "class", &v);
	if (rc < 0)
		return rc;
	out->id.class_id = v & 0xffffff;
	/* Optional: a trimmed-down sysfs (or model) may lack these. */
	if (read_hex(name, "subsystem_vendor", &v) == 0)
		out->id.subsystem_vendor_id = (uint16_t)v;
	if (read_hex(name, "subsystem_device", &v) == 0)
		out->id.subsystem_device_id = (uint16_t)v;

	out->numa_node = -1;
	if (dev_path(path, name, "numa_node") == 0 &&
	    upmd_k_read_file(path, buf, sizeof(buf)) > 0) {
		char *end;
		long node = strtol(buf, &end, 10);

		if (!*end && node >= 0 && node < INT_MAX)
			out->numa_node = (int)node;
	}

	out->iommu_group = -1;
	if (read_link_base(name, "iommu_group", group, sizeof(group)) == 0) {
		char *end;
		long g = strtol(group, &end, 10);

		if (!*end && end != group && g >= 0 && g < INT_MAX)
			out->iommu_group = (int)g;
	}

	rc = read_link_base(name, "driver", out->driver, sizeof(out->driver));
	if (rc < 0 && rc != -ENOENT)
		return rc;

	/* The vfio cdev node's name is the one entry of vfio-dev/. */
	if (dev_path(path, name, "vfio-dev") == 0) {
		rc = upmd_k_listdir(path, find_cdev, out->cdev);
		if (rc < 0)
			out->cdev[0] = '\0';
	}
	return 0;
}

int upmd_pci_sysfs_read(const char *bdf, struct upmd_pci_sysfs_dev *out)
{
	struct upmd_pci_addr a;
	char name[16];

	if (!bdf || !out || upmd_pci_addr_parse(bdf, &a) < 0)
		return -EINVAL;
	upmd_pci_addr_fmt(&a, name, sizeof(name));
	return pci_sysfs_read_dev(name, out);
}

struct name_list {
	char (*names)[16];
	unsigned n, cap;
	int err;
};

static int collect(const char *entry, void *arg)
{
	struct name_list *l = arg;
	struct upmd_pci_addr a;

	/* Only function directories; anything else in there is not ours. */
	if (upmd_pci_addr_parse(entry, &a) < 0)
		return 0;
	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 32;
		void *p = realloc(l->names, cap * sizeof(*l->names));

		if (!p) {
			l->err = -ENOMEM;
			return 1;
		}
		l->names = p;
		l->cap = cap;
	}
	upmd_pci_addr_fmt(&a, l->names[l->n++], sizeof(l->names[0]));
	return 0;
}

static int cmp_dev(const void *x, const void *y)
{
	uint64_t a = pci_addr_key(&((const struct upmd_pci_sysfs_dev *)x)->addr);
	uint64_t b = pci_addr_key(&((const struct upmd_pci_sysfs_dev *)y)->addr);

	return a < b ? -1 : a > b;
}

int upmd_pci_sysfs_list(struct upmd_pci_sysfs_dev **out)
{
	struct name_list l = { 0 };
	struct upmd_pci_sysfs_dev *devs = NULL;
	unsigned i, n = 0;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = upmd_k_listdir(PCI_SYSFS_DEVICES, collect, &l);
	if (rc < 0 || l.err < 0) {
		free(l.names);
		return rc < 0 ? rc : l.err;
	}
	if (l.n) {
		devs = calloc(l.n, sizeof(*devs));
		if (!devs) {
			free(l.names);
			return -ENOMEM;
		}
	}
	for (i = 0; i < l.n; i++) {
		rc = pci_sysfs_read_dev(l.names[i], &devs[n]);
		/* A device hot-removed between the listing and the read is
		 * simply gone; any other failure is worth knowing. */
		if (rc == -ENODEV)
			continue;
		if (rc < 0) {
			UPMD_ERR(PCI_LOG, "cannot read %s/%s: %s", PCI_SYSFS_DEVICES, l.names[i],
				 strerror(-rc));
			free(devs);
			free(l.names);
			return rc;
		}
		n++;
	}
	free(l.names);
	if (n)
		qsort(devs, n, sizeof(*devs), cmp_dev);
	else {
		free(devs);
		devs = NULL;
	}
	*out = devs;
	return (int)n;
}

/* What to tell the user when a sysfs write fails. */
static const char *write_hint(int rc)
{
	if (rc == -EACCES || rc == -EPERM)
		return ": binding needs root (run it with sudo)";
	return "";
}

static int write_attr(const char *path, const char *val)
{
	ssize_t n = upmd_k_write_file(path, val);

	return n < 0 ? (int)n : 0;
}

static int canonical(const char *bdf, char *name, struct upmd_pci_sysfs_dev *dev)
{
	struct upmd_pci_addr a;
	int rc;

	if (!bdf || upmd_pci_addr_parse(bdf, &a) < 0) {
		UPMD_ERR(PCI_LOG, "'%s' is not a PCI address (expected e.g. 0000:00:04.0)",
			 bdf ? bdf : "(null)");
		return -EINVAL;
	}
	upmd_pci_addr_fmt(&a, name, 16);
	rc = pci_sysfs_read_dev(name, dev);
	if (rc == -ENODEV)
		UPMD_ERR(PCI_LOG, "device %s not found: check the address with 'upmd-devbind --status'",
			 name);
	else if (rc < 0)
		UPMD_ERR(PCI_LOG, "cannot read %s in sysfs: %s", name, strerror(-rc));
	return rc;
}

struct group_check {
	const char *self;
	const char *driver;
};

static int warn_group_member(const char *entry, void *arg)
{
	const struct group_check *g = arg;
	struct upmd_pci_sysfs_dev other;

	if (!strcmp(entry, g->self) || pci_sysfs_read_dev(entry, &other) < 0)
		return 0;
	/* Bridges and unbound functions do not make a group unusable. */
	if (other.driver[0] && strcmp(other.driver, g->driver) && strcmp(other.driver, "pcieport"))
		UPMD_WARN(PCI_LOG,
			  "%s shares its IOMMU group with %s (driver %s): %s can use the group only "
			  "once every device in it is bound to %s or unbound",
			  g->self, entry, other.driver, g->driver, g->driver);
	return 0;
}

int upmd_pci_sysfs_bind(const char *bdf, const char *driver)
{
	struct upmd_pci_sysfs_dev dev;
	struct group_check gc;
	char name[16], path[PATH_LEN];
	int rc;

	if (!driver || !*driver || strchr(driver, '/') || strlen(driver) >= sizeof(dev.driver)) {
		UPMD_ERR(PCI_LOG, "'%s' is not a kernel driver name", driver ? driver : "(null)");
		return -EINVAL;
	}
	rc = canonical(bdf, name, &dev);
	if (rc < 0)
		return rc;
	if (!strcmp(dev.driver, driver)) {
		UPMD_INFO(PCI_LOG, "%s is already bound to %s", name, driver);
		return 0;
	}
	/* Check before unbinding anything, so a missing module does not
	 * leave the device without any driver. */
	snprintf(path, sizeof(path), PCI_SYSFS_DRIVERS "/%s", driver);
	if (upmd_k_access(path, F_OK) < 0) {
		UPMD_ERR(PCI_LOG, "kernel driver %s is not loaded (no %s): load it with 'modprobe %s'",
			 driver, path, driver);
		return -ENOENT;
	}
	if (dev.iommu_group < 0 && !strcmp(driver, PCI_VFIO_DRIVER)) {
		UPMD_ERR(PCI_LOG,
			 "%s has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on "
			 "on the kernel command line) before binding it to vfio-pci", name);
		return -EIO;
	}
	if (dev.iommu_group >= 0) {
		gc.self = name;
		gc.driver = driver;
		snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/iommu_group/devices", name);
		upmd_k_listdir(path, warn_group_member, &gc);
	}

	/* driver_override makes only @driver eligible, so the reprobe below
	 * cannot hand the device back to its old driver. */
	dev_path(path, name, "driver_override");
	rc = write_attr(path, driver);
	if (rc < 0) {
		UPMD_ERR(PCI_LOG, "cannot set %s to %s: %s%s", path, driver, strerror(-rc),
			 write_hint(rc));
		return rc;
	}
	if (dev.driver[0]) {
		dev_path(path, name, "driver/unbind");
		rc = write_attr(path, name);
		if (rc < 0) {
			UPMD_ERR(PCI_LOG, "cannot unbind %s from %s: %s%s", name, dev.driver,
				 strerror(-rc), write_hint(rc));
			goto err_override;
		}
	}
	rc = write_attr("/sys/bus/pci/drivers_probe", name);
	if (rc < 0) {
		UPMD_ERR(PCI_LOG, "cannot probe %s for %s: %s%s", name, driver, strerror(-rc),
			 write_hint(rc));
		goto err_override;
	}

	rc = pci_sysfs_read_dev(name, &dev);
	if (rc < 0)
		return rc;
	if (strcmp(dev.driver, driver)) {
		UPMD_ERR(PCI_LOG,
			 "%s was not taken by %s (now bound to %s): see the kernel log (dmesg); for "
			 "vfio-pci every device of IOMMU group %d must be bound to vfio-pci or unbound",
			 name, driver, dev.driver[0] ? dev.driver : "no driver", dev.iommu_group);
		return -EIO;
	}
	if (!strcmp(driver, PCI_VFIO_DRIVER) && !dev.cdev[0])
		UPMD_WARN(PCI_LOG,
			  "%s is bound to vfio-pci but has no vfio cdev (/dev/vfio/devices/vfioN): the "
			  "kernel lacks CONFIG_VFIO_DEVICE_CDEV, so only --iommu type1 can use it", name);
	UPMD_INFO(PCI_LOG, "%s bound to %s", name, driver);
	return 0;

err_override:
	/* Leave driver_override as it was, so a later probe behaves as before. */
	dev_path(path, name, "driver_override");
	write_attr(path, "\n");
	return rc;
}

int upmd_pci_sysfs_unbind(const char *bdf)
{
	struct upmd_pci_sysfs_dev dev;
	char name[16], path[PATH_LEN];
	int rc;

	rc = canonical(bdf, name, &dev);
	if (rc < 0)
		return rc;
	if (dev.driver[0]) {
		dev_path(path, name, "driver/unbind");
		rc = write_attr(path, name);
		if (rc < 0) {
			UPMD_ERR(PCI_LOG, "cannot unbind %s from %s: %s%s", name, dev.driver,
				 strerror(-rc), write_hint(rc));
			return rc;
		}
	}
	/* A stale override would bind the device to vfio-pci again at the
	 * next probe (a rescan, a reboot of the driver); a lone newline
	 * clears it. Kernels without driver_override have nothing to clear. */
	dev_path(path, name, "driver_override");
	rc = write_attr(path, "\n");
	if (rc < 0 && rc != -ENOENT) {
		UPMD_ERR(PCI_LOG, "cannot clear %s: %s%s", path, strerror(-rc), write_hint(rc));
		return rc;
	}
	UPMD_INFO(PCI_LOG, "%s unbound%s%s", name, dev.driver[0] ? " from " : " (had no driver)",
		  dev.driver);
	return 0;
}
