/* The model's paths: /dev/iommu, /dev/vfio/..., and a virtual sysfs (PCI devices, drivers, IOMMU groups) with driver_override binding. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_private.h"

/*
 * Paths are split into components and resolved like the kernel's sysfs:
 * /sys/bus/pci/devices/<BDF> is a link to the device directory, whose
 * iommu_group and driver entries are links again; a path through a link
 * continues at its target. Attribute text is what sysfs prints.
 */

#define MAX_COMP 16
#define SYS_PAGE 4096

enum node_kind {
	N_NONE,
	N_DIR,
	N_FILE,
	N_LINK,
	N_DEV_IOMMU,
	N_DEV_CONTAINER,
	N_DEV_GROUP,
	N_DEV_CDEV,
};

enum attr {
	A_NONE,
	A_VENDOR,
	A_DEVICE,
	A_SUBVENDOR,
	A_SUBDEVICE,
	A_CLASS,
	A_REVISION,
	A_NUMA,
	A_IRQ,
	A_OVERRIDE,
	A_BIND,
	A_UNBIND,
	A_PROBE,
	A_GROUP_TYPE,
	A_GROUP_RESV,
	A_CDEV_DEV,
};

enum dir_kind {
	D_ROOT_DEV_VFIO,
	D_VFIO_DEVICES,
	D_BUS_PCI,
	D_PCI_DEVICES,
	D_DEVICE,
	D_VFIO_DEV,
	D_CDEV_CLASS,
	D_DRIVERS,
	D_DRIVER,
	D_GROUPS,
	D_GROUP,
	D_GROUP_DEVICES,
};

struct node {
	enum node_kind kind;
	enum attr attr;
	enum dir_kind dir;
	struct upmd_model_dev *d;
	char drv[32];
	char link[160];
};

struct model_sysfile {
	struct upmd_model *m;
	enum attr attr;
	struct upmd_model_dev *d;
	char drv[32];
	bool rd, wr;
	char text[256];
	size_t len;
	off_t pos;
};

static bool vfio_nodes(const struct upmd_model *m)
{
	return !(m->flags & UPMD_MODEL_F_NO_VFIO);
}

/* A vfio cdev exists only with iommufd (CONFIG_VFIO_DEVICE_CDEV). */
static bool cdevs(const struct upmd_model *m)
{
	return !(m->flags & UPMD_MODEL_F_NO_IOMMUFD);
}

static unsigned split(const char *path, char comp[MAX_COMP][64])
{
	unsigned n = 0;
	const char *p = path;

	while (*p) {
		const char *s;
		size_t l;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		l = (size_t)(p - s);
		if (l == 1 && s[0] == '.')
			continue;
		if (n == MAX_COMP || l >= 64)
			return MAX_COMP + 1;
		memcpy(comp[n], s, l);
		comp[n][l] = '\0';
		n++;
	}
	return n;
}

static bool prefix(char comp[MAX_COMP][64], unsigned n, const char *a, const char *b,
		   const char *c)
{
	if (n < 2 || strcmp(comp[0], a) || strcmp(comp[1], b))
		return false;
	return !c || (n >= 3 && !strcmp(comp[2], c));
}

bool model_owns_path(struct upmd_model *m, const char *path)
{
	char comp[MAX_COMP][64];
	unsigned n;

	(void)m;
	if (path[0] != '/')
		return false;
	n = split(path, comp);
	if (n > MAX_COMP)
		return false;
	return prefix(comp, n, "dev", "iommu", NULL) || prefix(comp, n, "dev", "vfio", NULL) ||
	       prefix(comp, n, "sys", "bus", "pci") || prefix(comp, n, "sys", "kernel", "iommu_groups");
}

static bool driver_exists(struct upmd_model *m, const char *drv)
{
	unsigned i;

	if (!strcmp(drv, "vfio-pci"))
		return true;
	for (i = 0; i < m->ndevs; i++)
		if (m->devs[i]->native_driver[0] && !strcmp(m->devs[i]->native_driver, drv))
			return true;
	return false;
}

/* "vfioN" exactly, no leading zeros or trailing junk. */
static bool cdev_name_is(const struct upmd_model_dev *d, const char *name)
{
	char want[16];

	snprintf(want, sizeof(want), "vfio%d", d->cdev);
	return d->cdev >= 0 && !strcmp(want, name);
}

static void dev_link(const struct upmd_model_dev *d, const char *up, char *out, size_t len)
{
	snprintf(out, len, "%sdevices/pci%.7s/%s", up, d->bdf, d->bdf);
}

static struct upmd_model_dev *group_dev(struct upmd_model *m, const char *s)
{
	char *end;
	long g = strtol(s, &end, 10);

	if (!*s || *end || g < 0 || g > 100000)
		return NULL;
	return model_dev_by_group(m, (int)g);
}

static int set_file(struct node *n, enum attr a, struct upmd_model_dev *d)
{
	n->kind = N_FILE;
	n->attr = a;
	n->d = d;
	return 0;
}

static int set_dir(struct node *n, enum dir_kind k, struct upmd_model_dev *d)
{
	n->kind = N_DIR;
	n->dir = k;
	n->d = d;
	return 0;
}

/*
 * Resolve comp[at..n) inside the device directory of @d. @follow: follow
 * a link in the last component too.
 */
static int resolve_from(struct upmd_model *m, char comp[MAX_COMP][64], unsigned n, struct node *out,
			bool follow, int depth);

static int resolve_device(struct upmd_model *m, struct upmd_model_dev *d, char comp[MAX_COMP][64],
			  unsigned at, unsigned n, struct node *out, bool follow, int depth)
{
	static const struct {
		const char *name;
		enum attr a;
	} attrs[] = {
		{ "vendor", A_VENDOR }, { "device", A_DEVICE },
		{ "subsystem_vendor", A_SUBVENDOR }, { "subsystem_device", A_SUBDEVICE },
		{ "class", A_CLASS }, { "revision", A_REVISION }, { "numa_node", A_NUMA },
		{ "irq", A_IRQ }, { "driver_override", A_OVERRIDE },
	};
	char redirect[MAX_COMP][64];
	const char *c;
	unsigned i, k;

	if (at == n)
		return set_dir(out, D_DEVICE, d);
	c = comp[at];
	for (i = 0; i < UPMD_DIM(attrs); i++)
		if (!strcmp(c, attrs[i].name))
			return at + 1 == n ? set_file(out, attrs[i].a, d) : -ENOTDIR;
	if (!strcmp(c, "iommu_group") || !strcmp(c, "driver")) {
		bool grp = c[0] == 'i';

		if (!grp && !d->driver[0])
			return -ENOENT;
		if (at + 1 == n && !follow) {
			out->kind = N_LINK;
			out->d = d;
			if (grp)
				snprintf(out->link, sizeof(out->link), "../../../kernel/iommu_groups/%d",
					 d->group);
			else
				snprintf(out->link, sizeof(out->link), "../../../bus/pci/drivers/%s",
					 d->driver);
			return 0;
		}
		/* Continue at the link's target. */
		if (depth > 4)
			return -ELOOP;
		k = 0;
		if (grp) {
			strcpy(redirect[k++], "sys");
			strcpy(redirect[k++], "kernel");
			strcpy(redirect[k++], "iommu_groups");
			snprintf(redirect[k++], 64, "%d", d->group);
		} else {
			strcpy(redirect[k++], "sys");
			strcpy(redirect[k++], "bus");
			strcpy(redirect[k++], "pci");
			strcpy(redirect[k++], "drivers");
			snprintf(redirect[k++], 64, "%s", d->driver);
		}
		for (i = at + 1; i < n && k < MAX_COMP; i++)
			strcpy(redirect[k++], comp[i]);
		return resolve_from(m, redirect, k, out, follow, depth + 1);
	}
	if (!strcmp(c, "vfio-dev")) {
		if (d->cdev < 0 || !cdevs(m))
			return -ENOENT;
		if (at + 1 == n)
			return set_dir(out, D_VFIO_DEV, d);
		if (!cdev_name_is(d, comp[at + 1]))
			return -ENOENT;
		if (at + 2 == n)
			return set_dir(out, D_CDEV_CLASS, d);
		if (!strcmp(comp[at + 2], "dev") && at + 3 == n)
			return set_file(out, A_CDEV_DEV, d);
		return -ENOENT;
	}
	return -ENOENT;
}

static int resolve_from(struct upmd_model *m, char comp[MAX_COMP][64], unsigned n, struct node *out,
			bool follow, int depth)
{
	struct upmd_model_dev *d;

	memset(out, 0, sizeof(*out));
	if (prefix(comp, n, "dev", "iommu", NULL)) {
		if (n != 2 || (m->flags & UPMD_MODEL_F_NO_IOMMUFD))
			return -ENOENT;
		out->kind = N_DEV_IOMMU;
		return 0;
	}
	if (prefix(comp, n, "dev", "vfio", NULL)) {
		if (!vfio_nodes(m))
			return -ENOENT;
		if (n == 2)
			return set_dir(out, D_ROOT_DEV_VFIO, NULL);
		if (!strcmp(comp[2], "vfio")) {
			if (n != 3)
				return -ENOTDIR;
			out->kind = N_DEV_CONTAINER;
			return 0;
		}
		if (!strcmp(comp[2], "devices")) {
			if (!cdevs(m))
				return -ENOENT;
			if (n == 3)
				return set_dir(out, D_VFIO_DEVICES, NULL);
			if (n != 4 || strncmp(comp[3], "vfio", 4) || !comp[3][4])
				return -ENOENT;
			d = model_dev_by_cdev(m, atoi(comp[3] + 4));
			if (!d || !cdev_name_is(d, comp[3]))
				return -ENOENT;
			out->kind = N_DEV_CDEV;
			out->d = d;
			return 0;
		}
		d = group_dev(m, comp[2]);
		if (!d || strcmp(d->driver, "vfio-pci") || n != 3)
			return -ENOENT;
		out->kind = N_DEV_GROUP;
		out->d = d;
		return 0;
	}
	if (prefix(comp, n, "sys", "kernel", "iommu_groups")) {
		if (n == 3)
			return set_dir(out, D_GROUPS, NULL);
		d = group_dev(m, comp[3]);
		if (!d)
			return -ENOENT;
		if (n == 4)
			return set_dir(out, D_GROUP, d);
		if (!strcmp(comp[4], "type") && n == 5)
			return set_file(out, A_GROUP_TYPE, d);
		if (!strcmp(comp[4], "reserved_regions") && n == 5)
			return set_file(out, A_GROUP_RESV, d);
		if (strcmp(comp[4], "devices"))
			return -ENOENT;
		if (n == 5)
			return set_dir(out, D_GROUP_DEVICES, d);
		if (strcmp(comp[5], d->bdf))
			return -ENOENT;
		if (n == 6 && !follow) {
			out->kind = N_LINK;
			out->d = d;
			dev_link(d, "../../../../", out->link, sizeof(out->link));
			return 0;
		}
		return resolve_device(m, d, comp, 6, n, out, follow, depth);
	}
	if (prefix(comp, n, "sys", "bus", "pci")) {
		if (n == 3)
			return set_dir(out, D_BUS_PCI, NULL);
		if (!strcmp(comp[3], "drivers_probe"))
			return n == 4 ? set_file(out, A_PROBE, NULL) : -ENOTDIR;
		if (!strcmp(comp[3], "devices")) {
			if (n == 4)
				return set_dir(out, D_PCI_DEVICES, NULL);
			d = model_dev_by_bdf(m, comp[4]);
			if (!d)
				return -ENOENT;
			if (n == 5 && !follow) {
				out->kind = N_LINK;
				out->d = d;
				dev_link(d, "../../../", out->link, sizeof(out->link));
				return 0;
			}
			return resolve_device(m, d, comp, 5, n, out, follow, depth);
		}
		if (!strcmp(comp[3], "drivers")) {
			if (n == 4)
				return set_dir(out, D_DRIVERS, NULL);
			if (!driver_exists(m, comp[4]))
				return -ENOENT;
			snprintf(out->drv, sizeof(out->drv), "%s", comp[4]);
			if (n == 5)
				return set_dir(out, D_DRIVER, NULL);
			if (!strcmp(comp[5], "bind") || !strcmp(comp[5], "unbind"))
				return n == 6 ? set_file(out, comp[5][0] == 'b' ? A_BIND : A_UNBIND, NULL)
					      : -ENOTDIR;
			d = model_dev_by_bdf(m, comp[5]);
			if (!d || strcmp(d->driver, comp[4]))
				return -ENOENT;
			if (n == 6 && !follow) {
				out->kind = N_LINK;
				out->d = d;
				dev_link(d, "../../../../", out->link, sizeof(out->link));
				return 0;
			}
			return resolve_device(m, d, comp, 6, n, out, follow, depth);
		}
		return -ENOENT;
	}
	return -ENOENT;
}

static int resolve(struct upmd_model *m, const char *path, struct node *out, bool follow)
{
	char comp[MAX_COMP][64];
	unsigned n = split(path, comp);

	if (n > MAX_COMP)
		return -ENAMETOOLONG;
	return resolve_from(m, comp, n, out, follow, 0);
}

/* ---- attributes --------------------------------------------------------------------- */

static bool attr_readable(enum attr a)
{
	return a != A_BIND && a != A_UNBIND && a != A_PROBE;
}

static bool attr_writable(enum attr a)
{
	return a == A_OVERRIDE || a == A_BIND || a == A_UNBIND || a == A_PROBE;
}

static void attr_text(struct model_sysfile *sf)
{
	struct upmd_model_dev *d = sf->d;
	const struct upmd_model_dev_ops *o = d ? d->ops : NULL;
	int n = 0;

	switch (sf->attr) {
	case A_VENDOR:
		n = snprintf(sf->text, sizeof(sf->text), "0x%04x\n", o->vendor_id);
		break;
	case A_DEVICE:
		n = snprintf(sf->text, sizeof(sf->text), "0x%04x\n", o->device_id);
		break;
	case A_SUBVENDOR:
		n = snprintf(sf->text, sizeof(sf->text), "0x%04x\n", o->subsystem_vendor_id);
		break;
	case A_SUBDEVICE:
		n = snprintf(sf->text, sizeof(sf->text), "0x%04x\n", o->subsystem_device_id);
		break;
	case A_CLASS:
		n = snprintf(sf->text, sizeof(sf->text), "0x%06x\n", o->class_code);
		break;
	case A_REVISION:
		n = snprintf(sf->text, sizeof(sf->text), "0x%02x\n", o->revision);
		break;
	case A_NUMA:
		n = snprintf(sf->text, sizeof(sf->text), "%d\n", d->numa_node);
		break;
	case A_IRQ:
		n = snprintf(sf->text, sizeof(sf->text), "%u\n", d->cfg[PCI_CFG_INT_LINE]);
		break;
	case A_OVERRIDE:
		/* sysfs prints the NULL pointer as "(null)". */
		n = snprintf(sf->text, sizeof(sf->text), "%s\n",
			     d->driver_override ? d->driver_override : "(null)");
		break;
	case A_GROUP_TYPE:
		n = snprintf(sf->text, sizeof(sf->text), "DMA\n");
		break;
	case A_GROUP_RESV:
		n = snprintf(sf->text, sizeof(sf->text), "0x%016llx 0x%016llx msi\n",
			     (unsigned long long)MODEL_MSI_FIRST, (unsigned long long)MODEL_MSI_LAST);
		break;
	case A_CDEV_DEV:
		n = snprintf(sf->text, sizeof(sf->text), "%d:%d\n", 239, d->cdev);
		break;
	default:
		break;
	}
	sf->len = n > 0 ? UPMD_MIN((size_t)n, sizeof(sf->text) - 1) : 0;
}

/* The lowest free vfioN, like the kernel's ida. */
static int cdev_alloc(struct upmd_model *m)
{
	int i;

	for (i = 0;; i++)
		if (!model_dev_by_cdev(m, i))
			return i;
}

int model_bind_vfio(struct upmd_model_dev *d)
{
	snprintf(d->driver, sizeof(d->driver), "vfio-pci");
	d->cdev = cdevs(d->m) ? cdev_alloc(d->m) : -1;
	return 0;
}

static bool dev_in_use(const struct upmd_model_dev *d)
{
	return d->files || d->group_open;
}

static int unbind(struct upmd_model_dev *d)
{
	if (!strcmp(d->driver, "vfio-pci")) {
		/*
		 * The kernel's vfio_pci_remove waits (sending the REQ
		 * interrupt) until user space closes the device. A model
		 * call must not block a single-threaded test: say EBUSY.
		 */
		if (dev_in_use(d)) {
			UPMD_WARN(MODEL_LOG, "%s: unbind from vfio-pci while the device is open: EBUSY "
				  "(the kernel would wait for the close)", d->bdf);
			return -EBUSY;
		}
		d->cdev = -1;
	}
	d->driver[0] = '\0';
	return 0;
}

/* pci_match_device: driver_override decides alone when set; otherwise
 * only the driver whose id table has the device (vfio-pci has none). */
static bool driver_matches(const struct upmd_model_dev *d, const char *drv)
{
	if (d->driver_override)
		return !strcmp(d->driver_override, drv);
	return d->native_driver[0] && !strcmp(d->native_driver, drv);
}

static int bind_to(struct upmd_model_dev *d, const char *drv)
{
	if (!strcmp(drv, "vfio-pci"))
		return model_bind_vfio(d);
	snprintf(d->driver, sizeof(d->driver), "%s", drv);
	return 0;
}

/* The device named by a sysfs write (sysfs_streq: one trailing newline). */
static struct upmd_model_dev *written_dev(struct upmd_model *m, const char *buf, size_t n)
{
	char name[32];

	if (n && buf[n - 1] == '\n')
		n--;
	if (n == 0 || n >= sizeof(name))
		return NULL;
	memcpy(name, buf, n);
	name[n] = '\0';
	return model_dev_by_bdf(m, name);
}

ssize_t model_sysfile_write(struct model_sysfile *sf, const void *buf, size_t n)
{
	struct upmd_model *m = sf->m;
	struct upmd_model_dev *d;
	const char *s = buf;
	int rc;

	if (!sf->wr)
		return -EBADF;
	switch (sf->attr) {
	case A_OVERRIDE: {
		/* driver_set_override: up to the first newline; empty clears. */
		const char *nl;
		size_t l;
		char *v;

		if (n >= SYS_PAGE - 1)
			return -EINVAL;
		nl = memchr(s, '\n', n);
		l = nl ? (size_t)(nl - s) : n;
		d = sf->d;
		if (l == 0) {
			free(d->driver_override);
			d->driver_override = NULL;
			return (ssize_t)n;
		}
		v = strndup(s, l);
		if (!v)
			return -ENOMEM;
		free(d->driver_override);
		d->driver_override = v;
		return (ssize_t)n;
	}
	case A_BIND:
		/* bind_store: ENODEV unless the device exists and matches;
		 * a device that has a driver is EBUSY. */
		d = written_dev(m, s, n);
		if (!d || !driver_matches(d, sf->drv))
			return -ENODEV;
		if (d->driver[0])
			return -EBUSY;
		rc = bind_to(d, sf->drv);
		return rc < 0 ? rc : (ssize_t)n;
	case A_UNBIND:
		d = written_dev(m, s, n);
		if (!d || strcmp(d->driver, sf->drv))
			return -ENODEV;
		rc = unbind(d);
		return rc < 0 ? rc : (ssize_t)n;
	case A_PROBE: {
		/* drivers_probe_store: a probe that finds no driver is fine. */
		const char *drv;

		d = written_dev(m, s, n);
		if (!d)
			return -ENODEV;
		if (d->driver[0])
			return (ssize_t)n;
		drv = d->driver_override ? d->driver_override : d->native_driver;
		if (drv[0] && driver_exists(m, drv) && driver_matches(d, drv)) {
			rc = bind_to(d, drv);
			if (rc < 0)
				return rc;
		}
		return (ssize_t)n;
	}
	default:
		return -EIO;
	}
}

ssize_t model_sysfile_read(struct model_sysfile *sf, void *buf, size_t n, off_t off, bool use_pos)
{
	size_t k;

	if (!sf)
		return -EISDIR;
	if (!sf->rd)
		return -EBADF;
	if (use_pos)
		off = sf->pos;
	if (off < 0)
		return -EINVAL;
	/* seq_file starts over (fresh text) at offset 0. */
	if (off == 0)
		attr_text(sf);
	if ((size_t)off >= sf->len)
		return 0;
	k = UPMD_MIN(n, sf->len - (size_t)off);
	memcpy(buf, sf->text + off, k);
	if (use_pos)
		sf->pos += (off_t)k;
	return (ssize_t)k;
}

void model_sysfile_free(struct model_sysfile *sf)
{
	free(sf);
}

/* ---- open, readlink, listdir, access ---------------------------------------------- */

int model_path_open(struct upmd_model *m, const char *path, int flags)
{
	int acc = flags & O_ACCMODE;
	struct model_sysfile *sf;
	struct model_container *c;
	struct model_devfile *df;
	struct model_ictx *ictx;
	struct node n;
	int rc, fd;

	rc = resolve(m, path, &n, true);
	if (rc < 0)
		return rc;
	switch (n.kind) {
	case N_DEV_IOMMU:
		ictx = model_ictx_new(m);
		if (!ictx)
			return -ENOMEM;
		fd = model_fd_new(m, MF_IOMMUFD, "upmd-model-iommufd", ictx);
		if (fd < 0) {
			ictx->fd_open = false;
			model_ictx_put(ictx);
		}
		return fd;
	case N_DEV_CONTAINER:
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->m = m;
		c->refs = 1;
		c->fd_open = true;
		pthread_rwlock_init(&c->rw, NULL);
		c->next = m->containers;
		m->containers = c;
		fd = model_fd_new(m, MF_CONTAINER, "upmd-model-vfio-container", c);
		if (fd < 0)
			model_container_put(c);
		return fd;
	case N_DEV_GROUP:
		rc = model_group_open(n.d);
		if (rc < 0)
			return rc;
		fd = model_fd_new(m, MF_GROUP, "upmd-model-vfio-group", n.d);
		if (fd < 0)
			model_group_put(n.d);
		return fd;
	case N_DEV_CDEV:
		df = model_devfile_new(n.d, false);
		if (!df)
			return -ENOMEM;
		fd = model_fd_new(m, MF_DEVICE, "upmd-model-vfio-cdev", df);
		if (fd < 0) {
			df->fd_open = false;
			model_devfile_put(df);
		}
		return fd;
	case N_DIR:
		if (acc != O_RDONLY)
			return -EISDIR;
		return model_fd_new(m, MF_DIR, "upmd-model-sysfs-dir", NULL);
	case N_FILE:
		/* kernfs_fop_open: the access mode needs the matching op. */
		if ((acc != O_WRONLY && !attr_readable(n.attr)) ||
		    (acc != O_RDONLY && !attr_writable(n.attr)))
			return -EACCES;
		sf = calloc(1, sizeof(*sf));
		if (!sf)
			return -ENOMEM;
		sf->m = m;
		sf->attr = n.attr;
		sf->d = n.d;
		snprintf(sf->drv, sizeof(sf->drv), "%s", n.drv);
		sf->rd = acc != O_WRONLY;
		sf->wr = acc != O_RDONLY;
		fd = model_fd_new(m, MF_SYSFS, "upmd-model-sysfs", sf);
		if (fd < 0)
			free(sf);
		return fd;
	default:
		return -ENOENT;
	}
}

ssize_t model_readlink(struct upmd_model *m, const char *path, char *buf, size_t len)
{
	struct node n;
	size_t l;
	int rc;

	if (!buf || len == 0)
		return -EINVAL;
	rc = resolve(m, path, &n, false);
	if (rc < 0)
		return rc;
	if (n.kind != N_LINK)
		return -EINVAL;
	/* readlink(2) truncates silently; the table NUL-terminates. */
	l = UPMD_MIN(strlen(n.link), len - 1);
	memcpy(buf, n.link, l);
	buf[l] = '\0';
	return (ssize_t)l;
}

struct names {
	char (*v)[64];
	unsigned n, cap;
};

static void add_name(struct names *l, const char *s)
{
	if (l->n == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 32;
		void *p = realloc(l->v, cap * sizeof(*l->v));

		if (!p)
			return;
		l->v = p;
		l->cap = cap;
	}
	snprintf(l->v[l->n++], 64, "%s", s);
}

static void dir_names(struct upmd_model *m, const struct node *nd, struct names *l)
{
	static const char *const dev_attrs[] = {
		"vendor", "device", "subsystem_vendor", "subsystem_device", "class", "revision",
		"numa_node", "irq", "driver_override", "iommu_group",
	};
	char s[64];
	unsigned i, j;

	switch (nd->dir) {
	case D_ROOT_DEV_VFIO:
		add_name(l, "vfio");
		if (cdevs(m))
			add_name(l, "devices");
		for (i = 0; i < m->ndevs; i++)
			if (!strcmp(m->devs[i]->driver, "vfio-pci")) {
				snprintf(s, sizeof(s), "%d", m->devs[i]->group);
				add_name(l, s);
			}
		break;
	case D_VFIO_DEVICES:
		for (i = 0; i < m->ndevs; i++)
			if (m->devs[i]->cdev >= 0) {
				snprintf(s, sizeof(s), "vfio%d", m->devs[i]->cdev);
				add_name(l, s);
			}
		break;
	case D_BUS_PCI:
		add_name(l, "devices");
		add_name(l, "drivers");
		add_name(l, "drivers_probe");
		break;
	case D_PCI_DEVICES:
		for (i = 0; i < m->ndevs; i++)
			add_name(l, m->devs[i]->bdf);
		break;
	case D_DEVICE:
		for (i = 0; i < UPMD_DIM(dev_attrs); i++)
			add_name(l, dev_attrs[i]);
		if (nd->d->driver[0])
			add_name(l, "driver");
		if (nd->d->cdev >= 0 && cdevs(m))
			add_name(l, "vfio-dev");
		break;
	case D_VFIO_DEV:
		snprintf(s, sizeof(s), "vfio%d", nd->d->cdev);
		add_name(l, s);
		break;
	case D_CDEV_CLASS:
		add_name(l, "dev");
		break;
	case D_DRIVERS:
		add_name(l, "vfio-pci");
		for (i = 0; i < m->ndevs; i++) {
			const char *drv = m->devs[i]->native_driver;
			bool dup = false;

			if (!drv[0])
				continue;
			for (j = 0; j < i; j++)
				dup |= !strcmp(m->devs[j]->native_driver, drv);
			if (!dup && strcmp(drv, "vfio-pci"))
				add_name(l, drv);
		}
		break;
	case D_DRIVER:
		add_name(l, "bind");
		add_name(l, "unbind");
		for (i = 0; i < m->ndevs; i++)
			if (!strcmp(m->devs[i]->driver, nd->drv))
				add_name(l, m->devs[i]->bdf);
		break;
	case D_GROUPS:
		for (i = 0; i < m->ndevs; i++) {
			snprintf(s, sizeof(s), "%d", m->devs[i]->group);
			add_name(l, s);
		}
		break;
	case D_GROUP:
		add_name(l, "devices");
		add_name(l, "reserved_regions");
		add_name(l, "type");
		break;
	case D_GROUP_DEVICES:
		add_name(l, nd->d->bdf);
		break;
	}
}

int model_listdir(struct upmd_model *m, const char *path, int (*cb)(const char *, void *),
		  void *arg)
{
	struct names l = { 0 };
	struct node n;
	unsigned i;
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = resolve(m, path, &n, true);
	if (rc == 0 && n.kind != N_DIR)
		rc = -ENOTDIR;
	if (rc == 0)
		dir_names(m, &n, &l);
	pthread_mutex_unlock(&m->lock);
	for (i = 0; rc == 0 && i < l.n; i++)
		rc = cb(l.v[i], arg);
	free(l.v);
	return rc;
}

int model_access(struct upmd_model *m, const char *path, int mode)
{
	struct node n;
	int rc = resolve(m, path, &n, true);

	if (rc < 0)
		return rc;
	if (mode == F_OK)
		return 0;
	if ((mode & X_OK) && n.kind != N_DIR)
		return -EACCES;
	/* Root passes read and write checks (DAC override), as access(2). */
	if (geteuid() == 0)
		return 0;
	if (n.kind == N_FILE && (((mode & R_OK) && !attr_readable(n.attr)) ||
				 ((mode & W_OK) && !attr_writable(n.attr))))
		return -EACCES;
	if ((n.kind == N_DEV_GROUP || n.kind == N_DEV_CDEV) && (mode & (R_OK | W_OK)))
		return -EACCES;
	return 0;
}
