/* The model machine: devices, the spec parser, the fd table behind the kops table, the DMA port, faults, stats and the device thread. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "model_private.h"

/* ---- device-model registry ----------------------------------------------- */

#define MAX_DEV_TYPES 16
static const struct upmd_model_dev_ops *dev_types[MAX_DEV_TYPES];
static unsigned n_dev_types;

void model_register_dev_ops(const struct upmd_model_dev_ops *ops)
{
	/* Constructors run single-threaded before main. */
	if (n_dev_types < MAX_DEV_TYPES)
		dev_types[n_dev_types++] = ops;
}

const struct upmd_model_dev_ops *model_find_dev_ops(const char *type)
{
	unsigned i;

	for (i = 0; i < n_dev_types; i++)
		if (!strcmp(dev_types[i]->type, type))
			return dev_types[i];
	return NULL;
}

void model_dev_types(char *buf, size_t len)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < n_dev_types && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", dev_types[i]->type);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* ---- small helpers --------------------------------------------------------- */

bool model_has_cap(struct upmd_model *m, int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	/* The flag stands for an unprivileged user while tests run as root. */
	if (m->flags & UPMD_MODEL_F_UNPRIVILEGED)
		return false;
	if (syscall(SYS_capget, &h, data) < 0)
		return geteuid() == 0;
	return (data[cap / 32].effective >> (cap % 32)) & 1;
}

/*
 * What eventfd_ctx_fdget() answers: EBADF for no such fd, EINVAL for an
 * fd that is not an eventfd.
 */
int model_check_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -EBADF;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") ? -EINVAL : 0;
}

/* "[dddd:]bb:dd.f" (hex) into the canonical sysfs name; @end gets the
 * character after the function digit. */
static int parse_bdf(const char *s, char *out, size_t len, const char **end)
{
	unsigned long v[3];
	unsigned n = 0, fn;
	const char *p = s;

	for (;;) {
		char *e;

		if (!isxdigit((unsigned char)*p))
			return -EINVAL;
		v[n] = strtoul(p, &e, 16);
		if (e - p > 6)
			return -EINVAL;
		p = e;
		n++;
		if (*p == ':' && n < 3) {
			p++;
			continue;
		}
		break;
	}
	if (*p != '.' || n < 2 || !isdigit((unsigned char)p[1]))
		return -EINVAL;
	fn = (unsigned)(p[1] - '0');
	p += 2;
	if (n == 2) {
		v[2] = v[1];
		v[1] = v[0];
		v[0] = 0;
	}
	if (v[0] > 0xffff || v[1] > 0xff || v[2] > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, len, "%04lx:%02lx:%02lx.%x", v[0], v[1], v[2], fn);
	if (end)
		*end = p;
	else if (*p)
		return -EINVAL;
	return 0;
}

/* ---- devices --------------------------------------------------------------- */

struct upmd_model_dev *model_dev_by_bdf(struct upmd_model *m, const char *bdf)
{
	unsigned i;

	for (i = 0; i < m->ndevs; i++)
		if (!strcmp(m->devs[i]->bdf, bdf))
			return m->devs[i];
	return NULL;
}

struct upmd_model_dev *model_dev_by_group(struct upmd_model *m, int group)
{
	unsigned i;

	for (i = 0; i < m->ndevs; i++)
		if (m->devs[i]->group == group)
			return m->devs[i];
	return NULL;
}

struct upmd_model_dev *model_dev_by_cdev(struct upmd_model *m, int cdev)
{
	unsigned i;

	for (i = 0; i < m->ndevs; i++)
		if (m->devs[i]->cdev == cdev && cdev >= 0)
			return m->devs[i];
	return NULL;
}

struct upmd_model_dev *upmd_model_dev_find(struct upmd_model *m, const char *bdf)
{
	struct upmd_model_dev *d;
	char name[16];

	if (!m || !bdf || parse_bdf(bdf, name, sizeof(name), NULL) < 0)
		return NULL;
	pthread_mutex_lock(&m->lock);
	d = model_dev_by_bdf(m, name);
	pthread_mutex_unlock(&m->lock);
	return d;
}

void *upmd_model_dev_priv(struct upmd_model_dev *d)
{
	return d->priv;
}

uint8_t *upmd_model_dev_bar(struct upmd_model_dev *d, unsigned bar)
{
	return bar < MODEL_NUM_BARS ? d->bar_map[bar] : NULL;
}

const char *upmd_model_dev_name(const struct upmd_model_dev *d)
{
	return d->bdf;
}

bool upmd_model_dev_bus_master(struct upmd_model_dev *d)
{
	uint16_t cmd;

	memcpy(&cmd, &d->cfg[PCI_CFG_COMMAND], sizeof(cmd));
	return cmd & PCI_CMD_MASTER;
}

static void *dev_thread(void *arg);

void upmd_model_dev_kick(struct upmd_model_dev *d)
{
	struct upmd_model *m = d->m;

	pthread_mutex_lock(&m->thr_lock);
	m->kicks++;
	pthread_cond_signal(&m->thr_cond);
	pthread_mutex_unlock(&m->thr_lock);
}

static void dev_free(struct upmd_model_dev *d)
{
	unsigned i;

	if (d->ops && d->ops->fini && d->priv)
		d->ops->fini(d);
	for (i = 0; i < MODEL_NUM_BARS; i++) {
		if (d->bar_map[i])
			munmap(d->bar_map[i], d->bar_len[i]);
		if (d->bar_fd[i] >= 0)
			close(d->bar_fd[i]);
	}
	model_dev_irq_clear(d);
	free(d->driver_override);
	free(d->priv);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->irq_lock);
	pthread_rwlock_destroy(&d->attach_rw);
	free(d);
}

/* Generic device arguments; anything else goes to the device model. */
static int dev_arg(struct upmd_model_dev *d, const char *key, const char *val, char *drv)
{
	char *end;
	long v;
	int rc;

	if (!strcmp(key, "driver")) {
		if (!*val || strlen(val) >= sizeof(d->driver) || strchr(val, '/')) {
			UPMD_ERR(MODEL_LOG, "%s: bad driver name '%s' (a kernel driver name, or none)",
				 d->bdf, val);
			return -EINVAL;
		}
		snprintf(drv, sizeof(d->driver), "%s", val);
		return 0;
	}
	if (!strcmp(key, "numa_node") || !strcmp(key, "numa")) {
		errno = 0;
		v = strtol(val, &end, 0);
		if (errno || end == val || *end || v < -1 || v > 1023) {
			UPMD_ERR(MODEL_LOG, "%s: bad numa_node '%s' (-1 or a node number)", d->bdf, val);
			return -EINVAL;
		}
		d->numa_node = (int)v;
		return 0;
	}
	if (!strcmp(key, "pasid_bits")) {
		errno = 0;
		v = strtol(val, &end, 0);
		if (errno || end == val || *end || v < 0 || v > 20) {
			UPMD_ERR(MODEL_LOG, "%s: bad pasid_bits '%s' (0..20, 0: no PASID)", d->bdf, val);
			return -EINVAL;
		}
		d->pasid_bits = (uint8_t)v;
		return 0;
	}
	if (!strcmp(key, "reset")) {
		if (strcmp(val, "0") && strcmp(val, "1")) {
			UPMD_ERR(MODEL_LOG, "%s: bad reset '%s' (0 or 1)", d->bdf, val);
			return -EINVAL;
		}
		d->reset_works = val[0] == '1';
		return 0;
	}
	rc = d->ops->arg ? d->ops->arg(d, key, val) : -ENOENT;
	if (rc == -ENOENT)
		UPMD_ERR(MODEL_LOG, "%s: unknown argument '%s' for a %s device", d->bdf, key,
			 d->ops->type);
	return rc < 0 ? -EINVAL : 0;
}

/* @drv (sizeof(d->driver) bytes) receives a driver= value. */
static int dev_args(struct upmd_model_dev *d, const char *args, char *drv)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	if (!args || !*args)
		return 0;
	copy = strdup(args);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			UPMD_ERR(MODEL_LOG, "%s: bad argument '%s' (expected key=value)", d->bdf, tok);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		rc = dev_arg(d, tok, eq + 1, drv);
	}
	free(copy);
	return rc;
}

static int dev_bars(struct upmd_model_dev *d)
{
	unsigned i;

	for (i = 0; i < MODEL_NUM_BARS; i++) {
		uint64_t size = d->ops->bar_size[i];
		void *p;

		if (!size)
			continue;
		d->bar_len[i] = UPMD_ALIGN_UP(size, MODEL_PAGE);
		d->bar_fd[i] = memfd_create("upmd-model-bar", MFD_CLOEXEC);
		if (d->bar_fd[i] < 0 || ftruncate(d->bar_fd[i], (off_t)d->bar_len[i]) < 0)
			return -errno;
		p = mmap(NULL, d->bar_len[i], PROT_READ | PROT_WRITE, MAP_SHARED, d->bar_fd[i], 0);
		if (p == MAP_FAILED)
			return -errno;
		d->bar_map[i] = p;
	}
	return 0;
}

static int start_thread(struct upmd_model *m)
{
	int rc;

	if (m->thread_started)
		return 0;
	rc = pthread_create(&m->thread, NULL, dev_thread, m);
	if (rc)
		return -rc;
	m->thread_started = true;
	return 0;
}

static int add_device(struct upmd_model *m, const char *type, const char *bdf, const char *args)
{
	const struct upmd_model_dev_ops *ops;
	struct upmd_model_dev *d;
	char drv[sizeof(((struct upmd_model_dev *)0)->driver)] = "vfio-pci";
	char name[16], types[128];
	unsigned i;
	int rc;

	if (!type || !bdf || parse_bdf(bdf, name, sizeof(name), NULL) < 0) {
		UPMD_ERR(MODEL_LOG, "'%s' is not a PCI address (e.g. 0000:00:04.0)", bdf ? bdf : "(null)");
		return -EINVAL;
	}
	ops = model_find_dev_ops(type);
	if (!ops) {
		model_dev_types(types, sizeof(types));
		UPMD_ERR(MODEL_LOG, "unknown device type '%s' (known: %s)", type, types);
		return -ENOENT;
	}
	if (model_dev_by_bdf(m, name)) {
		UPMD_ERR(MODEL_LOG, "PCI address %s is taken by another model device", name);
		return -EEXIST;
	}
	if (m->ndevs == MODEL_MAX_DEVS) {
		UPMD_ERR(MODEL_LOG, "too many model devices (at most %d)", MODEL_MAX_DEVS);
		return -ENOSPC;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->m = m;
	d->ops = ops;
	d->index = m->ndevs;
	snprintf(d->bdf, sizeof(d->bdf), "%s", name);
	d->group = MODEL_FIRST_GROUP + (int)d->index;
	d->cdev = -1;
	d->numa_node = -1;
	d->reset_works = ops->reset_works;
	d->pasid_bits = ops->pasid_bits;
	d->irq_type = IRQT_NONE;
	d->req_fd = -1;
	for (i = 0; i < MODEL_NUM_BARS; i++)
		d->bar_fd[i] = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->irq_lock, NULL);
	pthread_rwlock_init(&d->attach_rw, NULL);
	if (ops->priv_size) {
		d->priv = calloc(1, ops->priv_size);
		if (!d->priv) {
			rc = -ENOMEM;
			goto err;
		}
	}
	rc = dev_args(d, args, drv);
	if (rc < 0)
		goto err;
	rc = dev_bars(d);
	if (rc < 0)
		goto err;
	model_dev_config_init(d);
	if (ops->init) {
		rc = ops->init(d);
		if (rc < 0)
			goto err;
	}
	/* driver=X makes X the device's own kernel driver (its id table
	 * matches); vfio-pci binds only through driver_override. */
	if (strcmp(drv, "none") && strcmp(drv, "vfio-pci")) {
		snprintf(d->native_driver, sizeof(d->native_driver), "%s", drv);
		snprintf(d->driver, sizeof(d->driver), "%s", drv);
	}
	m->devs[m->ndevs] = d;
	/* The device thread reads ndevs without the lock: publish the slot
	 * before the count. */
	__atomic_store_n(&m->ndevs, m->ndevs + 1, __ATOMIC_RELEASE);
	if (!strcmp(drv, "vfio-pci"))
		model_bind_vfio(d);
	return start_thread(m);
err:
	dev_free(d);
	return rc;
}

int upmd_model_add_device(struct upmd_model *m, const char *type, const char *bdf,
			  const char *args)
{
	int rc;

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = add_device(m, type, bdf, args);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- machine ----------------------------------------------------------------- */

#define KNOWN_FLAGS                                                            \
	(UPMD_MODEL_F_NO_IOMMUFD | UPMD_MODEL_F_NO_VFIO | UPMD_MODEL_F_NO_MAP_FILE |    \
	 UPMD_MODEL_F_NO_PASID | UPMD_MODEL_F_UNPRIVILEGED)

int upmd_model_create(const struct upmd_model_conf *conf, struct upmd_model **out)
{
	struct upmd_model *m;
	uint32_t flags = 0;
	unsigned aw = 48;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (conf) {
		if (conf->size < offsetof(struct upmd_model_conf, flags) + sizeof(conf->flags) ||
		    (conf->flags & ~KNOWN_FLAGS))
			return -EINVAL;
		flags = conf->flags;
		if (conf->size >= offsetof(struct upmd_model_conf, aw_bits) + sizeof(conf->aw_bits) &&
		    conf->aw_bits) {
			if (conf->aw_bits < 32 || conf->aw_bits > 64)
				return -EINVAL;
			aw = conf->aw_bits;
		}
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->flags = flags;
	m->aw_bits = aw;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->fault_lock, NULL);
	pthread_mutex_init(&m->thr_lock, NULL);
	pthread_cond_init(&m->thr_cond, NULL);
	*out = m;
	return 0;
}

static void file_release(struct upmd_model *m, struct model_file *f)
{
	switch (f->kind) {
	case MF_IOMMUFD:
		f->u.ictx->fd_open = false;
		model_ictx_put(f->u.ictx);
		break;
	case MF_CONTAINER:
		f->u.c->fd_open = false;
		model_container_put(f->u.c);
		break;
	case MF_GROUP:
		model_group_put(f->u.dev);
		break;
	case MF_DEVICE:
		f->u.df->fd_open = false;
		model_devfile_put(f->u.df);
		break;
	case MF_SYSFS:
	case MF_DIR:
		model_sysfile_free(f->u.sf);
		break;
	}
	(void)m;
}

/* Close one model fd: the object first (the kernel's release), then the fd. */
static void file_close(struct upmd_model *m, int fd)
{
	struct model_file *f = m->fds[fd];

	m->fds[fd] = NULL;
	m->open_fds--;
	file_release(m, f);
	close(f->fd);
	free(f);
}

void upmd_model_destroy(struct upmd_model *m)
{
	unsigned i;
	int fd;

	if (!m)
		return;
	/* Stop the device thread first: nothing DMAs while state goes. */
	if (m->thread_started) {
		pthread_mutex_lock(&m->thr_lock);
		m->stop = true;
		pthread_cond_signal(&m->thr_cond);
		pthread_mutex_unlock(&m->thr_lock);
		pthread_join(m->thread, NULL);
	}
	pthread_mutex_lock(&m->lock);
	/* BAR mappings hold their device files: unmap them before closing. */
	while (m->barmaps) {
		struct model_barmap *bm = m->barmaps;
		bool handled;

		model_munmap(m, (void *)bm->start, bm->end - bm->start, &handled);
	}
	/* Device files before the iommufds and containers they hold. */
	for (fd = 0; fd < m->nfds; fd++)
		if (m->fds[fd] && m->fds[fd]->kind == MF_DEVICE)
			file_close(m, fd);
	for (fd = 0; fd < m->nfds; fd++)
		if (m->fds[fd] && m->fds[fd]->kind == MF_GROUP)
			file_close(m, fd);
	for (fd = 0; fd < m->nfds; fd++)
		if (m->fds[fd])
			file_close(m, fd);
	for (i = 0; i < m->ndevs; i++)
		dev_free(m->devs[i]);
	m->ndevs = 0;
	free(m->fds);
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->fault_lock);
	pthread_mutex_destroy(&m->thr_lock);
	pthread_cond_destroy(&m->thr_cond);
	free(m);
}

/* ---- the spec ---------------------------------------------------------------- */

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_flags(const char *list, uint32_t *flags)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} names[] = {
		{ "nomapfile", UPMD_MODEL_F_NO_MAP_FILE },
		{ "nopasid", UPMD_MODEL_F_NO_PASID },
		{ "noiommufd", UPMD_MODEL_F_NO_IOMMUFD },
		{ "novfio", UPMD_MODEL_F_NO_VFIO },
		{ "unpriv", UPMD_MODEL_F_UNPRIVILEGED },
	};
	char *copy = strdup(list), *tok, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned i;

		tok = trim(tok);
		for (i = 0; i < UPMD_DIM(names); i++)
			if (!strcmp(tok, names[i].name))
				break;
		if (i == UPMD_DIM(names)) {
			UPMD_ERR(MODEL_LOG,
				 "model spec: unknown flag '%s' (known: nomapfile, nopasid, noiommufd, "
				 "novfio, unpriv)", tok);
			rc = -EINVAL;
			break;
		}
		*flags |= names[i].flag;
	}
	free(copy);
	return rc;
}

int upmd_model_parse(const char *spec, struct upmd_model **out)
{
	struct upmd_model_conf conf = { .size = sizeof(conf) };
	struct upmd_model *m = NULL;
	char *copy, *item, *save = NULL;
	unsigned pass;
	int rc = 0;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!spec) {
		UPMD_ERR(MODEL_LOG, "model spec: none given");
		return -EINVAL;
	}
	copy = malloc(strlen(spec) + 1);
	if (!copy)
		return -ENOMEM;
	/* Two passes: machine options (flags, aw) apply whatever their place,
	 * then the devices. */
	for (pass = 0; pass < 2 && rc == 0; pass++) {
		strcpy(copy, spec);
		save = NULL;
		for (item = strtok_r(copy, ";", &save); item && rc == 0;
		     item = strtok_r(NULL, ";", &save)) {
			char *at, *args = NULL, *bdf_end_s;
			const char *bdf_end;
			char bdf[16];

			item = trim(item);
			if (!*item)
				continue;
			if (!strncmp(item, "flags=", 6)) {
				if (pass == 0)
					rc = parse_flags(item + 6, &conf.flags);
				continue;
			}
			if (!strncmp(item, "aw=", 3)) {
				char *end;
				unsigned long aw;

				if (pass)
					continue;
				errno = 0;
				aw = strtoul(item + 3, &end, 10);
				if (errno || end == item + 3 || *end || aw < 32 || aw > 64) {
					UPMD_ERR(MODEL_LOG,
						 "model spec: bad '%s' (IOMMU address width 32..64, e.g. aw=39)",
						 item);
					rc = -EINVAL;
				}
				conf.aw_bits = (uint32_t)aw;
				continue;
			}
			at = strchr(item, '@');
			if (!at || at == item) {
				UPMD_ERR(MODEL_LOG,
					 "model spec: bad item '%s' (expected TYPE@BDF[:ARGS], flags=... or aw=N)",
					 item);
				rc = -EINVAL;
				continue;
			}
			if (pass == 0)
				continue;
			*at = '\0';
			if (parse_bdf(at + 1, bdf, sizeof(bdf), &bdf_end) < 0 ||
			    (*bdf_end && *bdf_end != ':')) {
				UPMD_ERR(MODEL_LOG,
					 "model spec: bad PCI address in '%s@%s' (expected e.g. 0000:00:04.0)",
					 item, at + 1);
				rc = -EINVAL;
				continue;
			}
			bdf_end_s = at + 1 + (bdf_end - (at + 1));
			if (*bdf_end_s == ':') {
				*bdf_end_s = '\0';
				args = bdf_end_s + 1;
			}
			if (!m) {
				rc = upmd_model_create(&conf, &m);
				if (rc < 0)
					break;
			}
			rc = upmd_model_add_device(m, trim(item), bdf, args);
			if (rc < 0) {
				UPMD_ERR(MODEL_LOG, "model spec: cannot add '%s@%s%s%s'", item, bdf,
					 args ? ":" : "", args ? args : "");
				rc = -EINVAL;
			}
		}
	}
	free(copy);
	if (rc == 0 && !m)
		rc = upmd_model_create(&conf, &m);
	if (rc < 0) {
		upmd_model_destroy(m);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	*out = m;
	return 0;
}

int upmd_model_install(const char *spec, struct upmd_model **out)
{
	struct upmd_model *m;
	int rc = upmd_model_parse(spec, &m);

	if (rc < 0)
		return rc;
	upmd_kops_set(upmd_model_kops(), m);
	if (out)
		*out = m;
	return 0;
}

/* ---- faults and stats ---------------------------------------------------------- */

static const char *const reason_names[] = {
	[UPMD_MODEL_FAULT_UNMAPPED] = "IOVA not mapped",
	[UPMD_MODEL_FAULT_NO_READ] = "mapping not readable",
	[UPMD_MODEL_FAULT_NO_WRITE] = "mapping not writeable",
	[UPMD_MODEL_FAULT_NOT_ATTACHED] = "device not attached to an IOAS",
};

const char *upmd_model_fault_reason_name(enum upmd_model_fault_reason r)
{
	if ((unsigned)r < UPMD_DIM(reason_names) && reason_names[r])
		return reason_names[r];
	return "unknown";
}

void model_record_fault(struct upmd_model_dev *d, uint64_t iova, uint32_t pasid, bool write,
			enum upmd_model_fault_reason why)
{
	struct upmd_model *m = d->m;
	struct upmd_model_fault *f;
	unsigned slot;

	pthread_mutex_lock(&m->fault_lock);
	if (m->ring_count == MODEL_FAULT_RING) {
		/* Keep the newest: drop the oldest. */
		m->ring_head = (m->ring_head + 1) % MODEL_FAULT_RING;
		m->ring_count--;
	}
	slot = (m->ring_head + m->ring_count) % MODEL_FAULT_RING;
	f = &m->ring[slot];
	memset(f, 0, sizeof(*f));
	snprintf(f->bdf, sizeof(f->bdf), "%s", d->bdf);
	f->iova = iova;
	f->pasid = pasid;
	f->write = write;
	f->reason = why;
	m->ring_count++;
	pthread_mutex_unlock(&m->fault_lock);
	atomic_fetch_add(&m->faults, 1);
	/* Worded like the DMAR line the real kernel logs, so logs compare. */
	UPMD_INFO(MODEL_LOG, "DMAR: [DMA %s %s] Request device [%s] fault addr 0x%llx: %s",
		  write ? "Write" : "Read", pasid == UPMD_MODEL_NO_PASID ? "NO_PASID" : "PASID",
		  d->bdf + 5, (unsigned long long)iova, upmd_model_fault_reason_name(why));
}

int upmd_model_fault_pop(struct upmd_model *m, struct upmd_model_fault *f)
{
	int rc = -ENOENT;

	if (!m || !f)
		return -EINVAL;
	pthread_mutex_lock(&m->fault_lock);
	if (m->ring_count) {
		*f = m->ring[m->ring_head];
		m->ring_head = (m->ring_head + 1) % MODEL_FAULT_RING;
		m->ring_count--;
		rc = 0;
	}
	pthread_mutex_unlock(&m->fault_lock);
	return rc;
}

int upmd_model_get_stats(struct upmd_model *m, struct upmd_model_stats *st)
{
	unsigned i;

	if (!m || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&m->lock);
	st->pinned_pages = m->pinned_pages;
	st->open_fds = m->open_fds;
	st->objects = model_ictx_objects(m);
	for (i = 0; i < m->ndevs; i++) {
		struct upmd_model_dev *d = m->devs[i];
		bool attached = false;

		if (d->open_count)
			st->bound_devices++;
		if (d->idev)
			attached = d->idev->hwpt || d->idev->npasid;
		else if (d->open_count && d->container && d->container->iommu_set)
			attached = true;
		st->attached_devices += attached;
	}
	st->bar_mappings = m->nbarmaps;
	pthread_mutex_unlock(&m->lock);
	st->faults = atomic_load(&m->faults);
	st->dma_bytes = atomic_load(&m->dma_bytes);
	return 0;
}

static int mapping_cmp(const void *a, const void *b)
{
	const struct upmd_model_mapping *x = a, *y = b;

	if (x->ioas_id != y->ioas_id)
		return x->ioas_id < y->ioas_id ? -1 : 1;
	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

int upmd_model_mappings(struct upmd_model *m, struct upmd_model_mapping *out, unsigned max)
{
	unsigned n;

	if (!m || (!out && max))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	n = model_ictx_mappings(m, out, max, 0);
	n = model_container_mappings(m, out, max, n);
	pthread_mutex_unlock(&m->lock);
	if (out)
		qsort(out, UPMD_MIN(n, max), sizeof(*out), mapping_cmp);
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

void upmd_model_stats_reset(struct upmd_model *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->fault_lock);
	m->ring_head = 0;
	m->ring_count = 0;
	atomic_store(&m->faults, 0);
	atomic_store(&m->dma_bytes, 0);
	pthread_mutex_unlock(&m->fault_lock);
}

/* ---- the DMA port ------------------------------------------------------------------ */

static struct model_ioas *pasid_ioas(struct model_idev *idev, uint32_t pasid)
{
	unsigned i;

	if (!idev)
		return NULL;
	if (pasid == UPMD_MODEL_NO_PASID)
		return idev->hwpt ? idev->hwpt->ioas : NULL;
	for (i = 0; i < idev->npasid; i++)
		if (idev->pasid[i].pasid == pasid)
			return idev->pasid[i].hwpt->ioas;
	return NULL;
}

static int dma(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova, void *buf, size_t len,
	       bool write)
{
	struct model_ioas *ioas;
	int rc;

	if (!d || (!buf && len))
		return -EINVAL;
	if (len == 0)
		return 0;
	/* With Bus Master Enable clear the function cannot issue requests at
	 * all (QEMU drops them): not an IOMMU fault, nothing recorded. */
	if (!upmd_model_dev_bus_master(d)) {
		if (!write)
			memset(buf, 0, len);
		UPMD_DEBUG(MODEL_LOG, "%s: DMA with bus mastering disabled dropped", d->bdf);
		return -EIO;
	}
	pthread_rwlock_rdlock(&d->attach_rw);
	ioas = pasid_ioas(d->idev, pasid);
	if (ioas) {
		rc = model_ioas_dma(ioas, d, pasid, iova, buf, len, write);
	} else if (pasid == UPMD_MODEL_NO_PASID && !d->idev && d->container &&
		   d->container->iommu_set) {
		rc = model_container_dma(d->container, d, iova, buf, len, write);
	} else {
		model_record_fault(d, iova, pasid, write, UPMD_MODEL_FAULT_NOT_ATTACHED);
		rc = -EFAULT;
	}
	pthread_rwlock_unlock(&d->attach_rw);
	if (rc == 0)
		atomic_fetch_add(&d->m->dma_bytes, len);
	else if (!write)
		/* What a device reads through a blocked translation on QEMU's
		 * vIOMMU: zeros. */
		memset(buf, 0, len);
	return rc;
}

int upmd_model_dma_read(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova, void *buf,
			size_t len)
{
	return dma(d, pasid, iova, buf, len, false);
}

int upmd_model_dma_write(struct upmd_model_dev *d, uint32_t pasid, uint64_t iova,
			 const void *buf, size_t len)
{
	return dma(d, pasid, iova, (void *)(uintptr_t)buf, len, true);
}

/* ---- interrupts --------------------------------------------------------------------- */

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		UPMD_DEBUG(MODEL_LOG, "eventfd %d: %s", fd, strerror(errno));
}

void upmd_model_irq(struct upmd_model_dev *d, int vec)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->irq_lock);
	if (vec < 0) {
		/* An edge on the INTx line: vfio-pci signals and masks. */
		if (d->irq_type == VFIO_PCI_INTX_IRQ_INDEX && !d->intx_masked && d->ntrig) {
			signal_fd(d->trig[0]);
			d->intx_masked = true;
		}
	} else if ((d->irq_type == VFIO_PCI_MSI_IRQ_INDEX || d->irq_type == VFIO_PCI_MSIX_IRQ_INDEX) &&
		   (unsigned)vec < d->ntrig && upmd_model_dev_bus_master(d)) {
		/* MSI is a memory write: no bus mastering, no interrupt. */
		signal_fd(d->trig[vec]);
	}
	pthread_mutex_unlock(&d->irq_lock);
}

bool upmd_model_dev_msi_enabled(struct upmd_model_dev *d)
{
	bool on;

	pthread_mutex_lock(&d->irq_lock);
	on = d->irq_type == VFIO_PCI_MSI_IRQ_INDEX || d->irq_type == VFIO_PCI_MSIX_IRQ_INDEX;
	pthread_mutex_unlock(&d->irq_lock);
	return on;
}

void upmd_model_dev_intx(struct upmd_model_dev *d, bool level)
{
	pthread_mutex_lock(&d->irq_lock);
	if (level && !d->intx_level && d->irq_type == VFIO_PCI_INTX_IRQ_INDEX && !d->intx_masked &&
	    d->ntrig) {
		signal_fd(d->trig[0]);
		d->intx_masked = true;
	}
	d->intx_level = level;
	pthread_mutex_unlock(&d->irq_lock);
}

void model_dev_irq_clear(struct upmd_model_dev *d)
{
	unsigned i;

	pthread_mutex_lock(&d->irq_lock);
	for (i = 0; i < d->ntrig; i++)
		if (d->trig[i] >= 0)
			close(d->trig[i]);
	free(d->trig);
	d->trig = NULL;
	d->ntrig = 0;
	d->irq_type = IRQT_NONE;
	d->intx_masked = false;
	if (d->req_fd >= 0)
		close(d->req_fd);
	d->req_fd = -1;
	pthread_mutex_unlock(&d->irq_lock);
}

/* ---- the device thread ----------------------------------------------------------- */

/*
 * One thread polls every device. It spins while there is work, yields for
 * a short while when there is none, then sleeps with a growing timeout a
 * doorbell (upmd_model_dev_kick) cuts short: an idle model costs almost
 * no CPU and a kicked one answers in microseconds.
 */
#define SPIN_ROUNDS 64
#define SLEEP_MIN_NS 20000L
#define SLEEP_MAX_NS 2000000L

static void *dev_thread(void *arg)
{
	struct upmd_model *m = arg;
	unsigned idle = 0;
	long sleep_ns = SLEEP_MIN_NS;

	for (;;) {
		unsigned i, n, kicks;
		int work = 0;

		pthread_mutex_lock(&m->thr_lock);
		kicks = m->kicks;
		m->kicks = 0;
		if (m->stop) {
			pthread_mutex_unlock(&m->thr_lock);
			break;
		}
		pthread_mutex_unlock(&m->thr_lock);

		n = __atomic_load_n(&m->ndevs, __ATOMIC_ACQUIRE);
		for (i = 0; i < n; i++) {
			struct upmd_model_dev *d = m->devs[i];

			if (d->ops->poll)
				work |= d->ops->poll(d);
		}
		if (work || kicks) {
			idle = 0;
			sleep_ns = SLEEP_MIN_NS;
			continue;
		}
		if (++idle < SPIN_ROUNDS) {
			sched_yield();
			continue;
		}
		pthread_mutex_lock(&m->thr_lock);
		if (!m->kicks && !m->stop) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += sleep_ns;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&m->thr_cond, &m->thr_lock, &ts);
			sleep_ns = UPMD_MIN(sleep_ns * 2, SLEEP_MAX_NS);
		}
		pthread_mutex_unlock(&m->thr_lock);
	}
	return NULL;
}

/* ---- the fd table ------------------------------------------------------------------ */

/*
 * Model fds are real fds (memfds named after what they stand for), so
 * their numbers never collide with the process's own and tools like
 * /proc/self/fd show what is open.
 */
int model_fd_new(struct upmd_model *m, enum model_file_kind kind, const char *name, void *obj)
{
	struct model_file *f;
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fd >= m->nfds) {
		int n = UPMD_MAX(fd + 1, m->nfds * 2);
		struct model_file **t = realloc(m->fds, (size_t)n * sizeof(*t));

		if (!t) {
			close(fd);
			return -ENOMEM;
		}
		memset(t + m->nfds, 0, (size_t)(n - m->nfds) * sizeof(*t));
		m->fds = t;
		m->nfds = n;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->kind = kind;
	f->fd = fd;
	f->u.ictx = obj;
	m->fds[fd] = f;
	m->open_fds++;
	return fd;
}

struct model_file *model_file_get(struct upmd_model *m, int fd)
{
	return fd >= 0 && fd < m->nfds ? m->fds[fd] : NULL;
}

/* ---- pass-through ------------------------------------------------------------------ */

/* What is not the model's goes to the libc table, one call per call. */
#define LIBC(op, ...) upmd_kops_libc.op(NULL, __VA_ARGS__)

/* ---- the kops table --------------------------------------------------------------- */

static int k_open(void *ctx, const char *path, int flags)
{
	struct upmd_model *m = ctx;
	int rc;

	if (!path)
		return -EFAULT;
	if (!model_owns_path(m, path))
		return LIBC(open, path, flags);
	pthread_mutex_lock(&m->lock);
	rc = model_path_open(m, path, flags);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int k_close(void *ctx, int fd)
{
	struct upmd_model *m = ctx;

	pthread_mutex_lock(&m->lock);
	if (!model_file_get(m, fd)) {
		pthread_mutex_unlock(&m->lock);
		return LIBC(close, fd);
	}
	file_close(m, fd);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int k_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct upmd_model *m = ctx;
	struct model_file *f;
	int rc;

	pthread_mutex_lock(&m->lock);
	f = model_file_get(m, fd);
	if (!f) {
		pthread_mutex_unlock(&m->lock);
		return LIBC(ioctl, fd, req, arg);
	}
	switch (f->kind) {
	case MF_IOMMUFD:
		rc = model_iommufd_ioctl(f->u.ictx, req, arg);
		break;
	case MF_CONTAINER:
		rc = model_container_ioctl(f->u.c, req, arg);
		break;
	case MF_GROUP:
		rc = model_group_ioctl(f->u.dev, req, arg);
		break;
	case MF_DEVICE:
		rc = model_device_ioctl(f->u.df, req, arg);
		break;
	default:
		rc = -ENOTTY;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int k_mmap(void *ctx, void *addr, size_t len, int prot, int flags, int fd, off_t off,
		  void **out)
{
	struct upmd_model *m = ctx;
	struct model_file *f;
	int rc;

	pthread_mutex_lock(&m->lock);
	f = model_file_get(m, fd);
	if (!f) {
		pthread_mutex_unlock(&m->lock);
		return LIBC(mmap, addr, len, prot, flags, fd, off, out);
	}
	/* Only device files implement mmap; the others have no mmap op. */
	rc = f->kind == MF_DEVICE ? model_device_mmap(f->u.df, addr, len, prot, flags, off, out)
				  : -ENODEV;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int k_munmap(void *ctx, void *addr, size_t len)
{
	struct upmd_model *m = ctx;
	bool handled = false;
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = model_munmap(m, addr, len, &handled);
	pthread_mutex_unlock(&m->lock);
	return handled ? rc : LIBC(munmap, addr, len);
}

static ssize_t file_rw(struct upmd_model *m, int fd, void *buf, size_t n, off_t off, bool use_pos,
		       bool write, bool *handled)
{
	struct model_file *f = model_file_get(m, fd);
	ssize_t rc;

	*handled = f != NULL;
	if (!f)
		return 0;
	switch (f->kind) {
	case MF_DEVICE:
		if (use_pos)
			off = f->u.df->pos;
		rc = model_device_rw(f->u.df, buf, n, off, write);
		if (use_pos && rc > 0)
			f->u.df->pos += rc;
		return rc;
	case MF_SYSFS:
		return write ? model_sysfile_write(f->u.sf, buf, n)
			     : model_sysfile_read(f->u.sf, buf, n, off, use_pos);
	case MF_DIR:
		return -EISDIR;
	default:
		/* iommufd, containers and groups have no read/write ops. */
		return -EINVAL;
	}
}

static ssize_t k_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
	struct upmd_model *m = ctx;
	bool handled;
	ssize_t rc;

	pthread_mutex_lock(&m->lock);
	rc = file_rw(m, fd, buf, n, off, false, false, &handled);
	pthread_mutex_unlock(&m->lock);
	return handled ? rc : LIBC(pread, fd, buf, n, off);
}

static ssize_t k_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	struct upmd_model *m = ctx;
	bool handled;
	ssize_t rc;

	pthread_mutex_lock(&m->lock);
	rc = file_rw(m, fd, (void *)(uintptr_t)buf, n, off, false, true, &handled);
	pthread_mutex_unlock(&m->lock);
	return handled ? rc : LIBC(pwrite, fd, buf, n, off);
}

static ssize_t k_read(void *ctx, int fd, void *buf, size_t n)
{
	struct upmd_model *m = ctx;
	bool handled;
	ssize_t rc;

	pthread_mutex_lock(&m->lock);
	rc = file_rw(m, fd, buf, n, 0, true, false, &handled);
	pthread_mutex_unlock(&m->lock);
	return handled ? rc : LIBC(read, fd, buf, n);
}

static ssize_t k_write(void *ctx, int fd, const void *buf, size_t n)
{
	struct upmd_model *m = ctx;
	bool handled;
	ssize_t rc;

	pthread_mutex_lock(&m->lock);
	rc = file_rw(m, fd, (void *)(uintptr_t)buf, n, 0, true, true, &handled);
	pthread_mutex_unlock(&m->lock);
	return handled ? rc : LIBC(write, fd, buf, n);
}

static int k_eventfd(void *ctx, unsigned int initval, int flags)
{
	(void)ctx;
	/* Real eventfds: the model signals them with write(2) like the
	 * kernel's eventfd_signal, and the driver polls them. */
	return LIBC(eventfd, initval, flags);
}

static ssize_t k_readlink(void *ctx, const char *path, char *buf, size_t len)
{
	struct upmd_model *m = ctx;
	ssize_t rc;

	if (!path)
		return -EFAULT;
	if (!model_owns_path(m, path))
		return LIBC(readlink, path, buf, len);
	pthread_mutex_lock(&m->lock);
	rc = model_readlink(m, path, buf, len);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int k_listdir(void *ctx, const char *path, int (*cb)(const char *, void *), void *arg)
{
	struct upmd_model *m = ctx;

	if (!path || !cb)
		return -EFAULT;
	if (!model_owns_path(m, path))
		return LIBC(listdir, path, cb, arg);
	/* model_listdir collects the names under the lock and calls @cb
	 * without it, so a callback may use the table again. */
	return model_listdir(m, path, cb, arg);
}

static int k_access(void *ctx, const char *path, int mode)
{
	struct upmd_model *m = ctx;
	int rc;

	if (!path)
		return -EFAULT;
	if (!model_owns_path(m, path))
		return LIBC(access, path, mode);
	pthread_mutex_lock(&m->lock);
	rc = model_access(m, path, mode);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static const struct upmd_kops model_kops = {
	.name = "model",
	.open = k_open,
	.close = k_close,
	.ioctl = k_ioctl,
	.mmap = k_mmap,
	.munmap = k_munmap,
	.pread = k_pread,
	.pwrite = k_pwrite,
	.read = k_read,
	.write = k_write,
	.eventfd = k_eventfd,
	.readlink = k_readlink,
	.listdir = k_listdir,
	.access = k_access,
};

const struct upmd_kops *upmd_model_kops(void)
{
	return &model_kops;
}
