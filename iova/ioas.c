/* The process's one IOAS: iommufd (IOAS_ALLOC/MAP/UNMAP, cdev bind + attach) or the legacy VFIO type1 container. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upmd/ioas.h>
#include <upmd/iova.h>
#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#define IOAS_LOG "ioas"
#define IOAS_PAGE 4096ULL
/* IOVAs the IOAS picks itself stay above the first MiB (legacy DMA
 * windows, and IOVA 0 reads as "no address" in too many devices). */
#define IOAS_PICK_MIN (1ULL << 20)
#define IOAS_PICK_MAX_ALIGN (1ULL << 30)
#define IOAS_MAX_RANGES 64

struct ioas_mapping {
	uint64_t iova;
	uint64_t len;
	void *va;
	uint32_t flags;
};

struct ioas_group {
	int num;
	int fd;
	unsigned refs;
};

struct ioas_dev {
	int fd;
	uint32_t devid;		/* iommufd */
	int group;		/* index into groups (type1), or -1 */
	bool has_pasid;
	uint32_t pasid;
	char bdf[32];
};

struct upmd_ioas {
	enum upmd_ioas_backend kind;
	int fd;			/* /dev/iommu or the type1 container */
	uint32_t id;		/* the IOAS id (iommufd) */
	uint32_t features;
	uint64_t iova_align;
	pthread_mutex_t lock;

	struct upmd_iova_range ranges[IOAS_MAX_RANGES];
	unsigned nranges;

	struct upmd_iova_allocator *space;	/* free IOVA above IOAS_PICK_MIN */
	struct ioas_mapping *maps;	/* sorted by IOVA, never overlapping */
	unsigned nmaps, capmaps;

	struct ioas_dev *devs;
	unsigned ndevs, capdevs;

	struct ioas_group *groups;	/* type1 */
	unsigned ngroups, capgroups;
	bool iommu_set;			/* type1: VFIO_SET_IOMMU done */
};

static struct upmd_ioas *default_ioas;

struct upmd_ioas *upmd_ioas_default(void)
{
	return default_ioas;
}

void upmd_ioas_set_default(struct upmd_ioas *ioas)
{
	default_ioas = ioas;
}

enum upmd_ioas_backend upmd_ioas_backend_kind(const struct upmd_ioas *ioas)
{
	return ioas->kind;
}

const char *upmd_ioas_backend_name(const struct upmd_ioas *ioas)
{
	return ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD ? "iommufd" : "type1";
}

uint32_t upmd_ioas_features(const struct upmd_ioas *ioas)
{
	return ioas->features;
}

uint32_t upmd_ioas_id(const struct upmd_ioas *ioas)
{
	return ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD ? ioas->id : 0;
}

unsigned upmd_ioas_ranges(const struct upmd_ioas *ioas, const struct upmd_iova_range **r)
{
	*r = ioas->ranges;
	return ioas->nranges;
}

static bool allowed_locked(const struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	uint64_t last = iova + len - 1;
	unsigned i;

	if (!len || last < iova)
		return false;
	for (i = 0; i < ioas->nranges; i++)
		if (iova >= ioas->ranges[i].start && last <= ioas->ranges[i].last)
			return true;
	return false;
}

bool upmd_ioas_iova_allowed(const struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	return ioas && allowed_locked(ioas, iova, len);
}

/* ---- allowed ranges ---- */

static int iommufd_read_ranges(struct upmd_ioas *ioas)
{
	struct iommu_iova_range r[IOAS_MAX_RANGES];
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas->id,
		.num_iovas = IOAS_MAX_RANGES,
		.allowed_iovas = (uintptr_t)r,
	};
	unsigned i;
	int rc;

	rc = upmd_k_ioctl(ioas->fd, IOMMU_IOAS_IOVA_RANGES, &cmd);
	if (rc == -EMSGSIZE) {
		UPMD_ERR(IOAS_LOG, "the kernel reports %u allowed IOVA ranges; upmd handles at most %d",
			 cmd.num_iovas, IOAS_MAX_RANGES);
		return -E2BIG;
	}
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "IOMMU_IOAS_IOVA_RANGES failed: %s", strerror(-rc));
		return rc;
	}
	for (i = 0; i < cmd.num_iovas; i++) {
		ioas->ranges[i].start = r[i].start;
		ioas->ranges[i].last = r[i].last;
	}
	ioas->nranges = cmd.num_iovas;
	ioas->iova_align = cmd.out_iova_alignment ? cmd.out_iova_alignment : IOAS_PAGE;
	return 0;
}

/* Before a type1 container has an IOMMU the kernel answers nothing; until
 * then assume an x86 IOMMU's 48-bit space without the MSI window. */
static void type1_default_ranges(struct upmd_ioas *ioas)
{
	ioas->ranges[0].start = 0;
	ioas->ranges[0].last = 0xfedfffffULL;
	ioas->ranges[1].start = 0xfef00000ULL;
	ioas->ranges[1].last = (1ULL << 48) - 1;
	ioas->nranges = 2;
	ioas->iova_align = IOAS_PAGE;
}

static int type1_read_ranges(struct upmd_ioas *ioas)
{
	struct vfio_iommu_type1_info *info;
	uint32_t argsz = sizeof(*info), off;
	unsigned i;
	int rc;

	for (;;) {
		info = calloc(1, argsz);
		if (!info)
			return -ENOMEM;
		info->argsz = argsz;
		rc = upmd_k_ioctl(ioas->fd, VFIO_IOMMU_GET_INFO, info);
		if (rc < 0) {
			free(info);
			UPMD_ERR(IOAS_LOG, "VFIO_IOMMU_GET_INFO failed: %s", strerror(-rc));
			return rc;
		}
		if (info->argsz <= argsz)
			break;
		argsz = info->argsz;
		free(info);
	}
	ioas->iova_align = IOAS_PAGE;
	if ((info->flags & VFIO_IOMMU_INFO_PGSIZES) && info->iova_pgsizes)
		ioas->iova_align = info->iova_pgsizes & -info->iova_pgsizes;
	ioas->nranges = 0;
	off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0;
	while (off && off + sizeof(struct vfio_info_cap_header) <= argsz) {
		const struct vfio_info_cap_header *h = (const void *)((const char *)info + off);

		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			const struct vfio_iommu_type1_info_cap_iova_range *c = (const void *)h;

			for (i = 0; i < c->nr_iovas && i < IOAS_MAX_RANGES; i++) {
				ioas->ranges[i].start = c->iova_ranges[i].start;
				ioas->ranges[i].last = c->iova_ranges[i].end;
			}
			ioas->nranges = i;
			break;
		}
		if (h->next <= off)
			break;
		off = h->next;
	}
	free(info);
	/* A kernel without the capability (before 5.4) allows everything. */
	if (!ioas->nranges) {
		ioas->ranges[0].start = 0;
		ioas->ranges[0].last = UINT64_MAX;
		ioas->nranges = 1;
	}
	return 0;
}

/* ---- mapping bookkeeping ---- */

/* Index of the first mapping ending after @iova. */
static unsigned map_lower(const struct upmd_ioas *ioas, uint64_t iova)
{
	unsigned lo = 0, hi = ioas->nmaps;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct ioas_mapping *m = &ioas->maps[mid];

		if (m->iova + m->len - 1 < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool map_overlaps(const struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	unsigned i = map_lower(ioas, iova);

	return i < ioas->nmaps && ioas->maps[i].iova <= iova + len - 1;
}

static int map_insert(struct upmd_ioas *ioas, const struct ioas_mapping *m)
{
	unsigned i;

	if (ioas->nmaps == ioas->capmaps) {
		unsigned n = ioas->capmaps ? ioas->capmaps * 2 : 16;
		struct ioas_mapping *t = realloc(ioas->maps, n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		ioas->maps = t;
		ioas->capmaps = n;
	}
	i = map_lower(ioas, m->iova);
	memmove(&ioas->maps[i + 1], &ioas->maps[i], (ioas->nmaps - i) * sizeof(*m));
	ioas->maps[i] = *m;
	ioas->nmaps++;
	return 0;
}

/*
 * The IOVA space behind picked IOVAs: the allowed ranges from
 * IOAS_PICK_MIN up. Created with the first ranges and narrowed when an
 * attach adds reserved regions (a detach that widens them again changes
 * nothing: the narrower space is always usable).
 */
static int space_update(struct upmd_ioas *ioas)
{
	int rc;

	if (!ioas->space)
		return upmd_iova_allocator_create(ioas->ranges, ioas->nranges,
						  UPMD_MAX(ioas->iova_align, IOAS_PAGE), IOAS_PICK_MIN,
						  &ioas->space);
	rc = upmd_iova_allocator_restrict(ioas->space, ioas->ranges, ioas->nranges);
	if (rc == -EBUSY)
		UPMD_ERR(IOAS_LOG, "a mapping lies outside the IOVA ranges the IOMMU now allows");
	return rc;
}

/* Take (fixed) or pick the IOVA space of a mapping; below IOAS_PICK_MIN
 * the mapping list alone guards against overlaps. */
static int space_take(struct upmd_ioas *ioas, struct ioas_mapping *m, bool fixed)
{
	uint64_t align = m->len & -m->len, lo, len;

	if (!fixed) {
		if (align > IOAS_PICK_MAX_ALIGN)
			align = IOAS_PICK_MAX_ALIGN;
		return upmd_iova_alloc(ioas->space, m->len, UPMD_MAX(align, ioas->iova_align), &m->iova);
	}
	if (m->iova + m->len - 1 < IOAS_PICK_MIN)
		return 0;
	lo = UPMD_MAX(m->iova, IOAS_PICK_MIN);
	len = m->iova + m->len - lo;
	return upmd_iova_alloc_fixed(ioas->space, lo, len);
}

static void space_give(struct upmd_ioas *ioas, const struct ioas_mapping *m)
{
	uint64_t lo, len;
	int rc;

	if (m->iova + m->len - 1 < IOAS_PICK_MIN)
		return;
	lo = UPMD_MAX(m->iova, IOAS_PICK_MIN);
	len = m->iova + m->len - lo;
	rc = upmd_iova_free(ioas->space, lo, len);
	if (rc < 0)
		UPMD_ERR(IOAS_LOG, "IOVA 0x%" PRIx64 " len 0x%" PRIx64 ": the allocator disagrees with the mapping list (%s)",
			 lo, len, strerror(-rc));
}

/* ---- kernel map / unmap ---- */

static int kernel_map(struct upmd_ioas *ioas, const struct ioas_mapping *m, int fd, uint64_t off)
{
	if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD) {
		uint32_t perm = ((m->flags & UPMD_IOAS_MAP_READ) ? IOMMU_IOAS_MAP_READABLE : 0) |
				((m->flags & UPMD_IOAS_MAP_WRITE) ? IOMMU_IOAS_MAP_WRITEABLE : 0);

		if (fd >= 0) {
			struct iommu_ioas_map_file cmd = {
				.size = sizeof(cmd),
				.flags = perm | IOMMU_IOAS_MAP_FIXED_IOVA,
				.ioas_id = ioas->id,
				.fd = fd,
				.start = off,
				.length = m->len,
				.iova = m->iova,
			};
			return upmd_k_ioctl(ioas->fd, IOMMU_IOAS_MAP_FILE, &cmd);
		} else {
			struct iommu_ioas_map cmd = {
				.size = sizeof(cmd),
				.flags = perm | IOMMU_IOAS_MAP_FIXED_IOVA,
				.ioas_id = ioas->id,
				.user_va = (uintptr_t)m->va,
				.length = m->len,
				.iova = m->iova,
			};
			return upmd_k_ioctl(ioas->fd, IOMMU_IOAS_MAP, &cmd);
		}
	} else {
		struct vfio_iommu_type1_dma_map cmd = {
			.argsz = sizeof(cmd),
			.flags = ((m->flags & UPMD_IOAS_MAP_READ) ? VFIO_DMA_MAP_FLAG_READ : 0) |
				 ((m->flags & UPMD_IOAS_MAP_WRITE) ? VFIO_DMA_MAP_FLAG_WRITE : 0),
			.vaddr = (uintptr_t)m->va,
			.iova = m->iova,
			.size = m->len,
		};

		/* Without a group the container has no IOMMU yet: the mapping
		 * is recorded and made when the first group joins. */
		if (!ioas->iommu_set)
			return 0;
		return upmd_k_ioctl(ioas->fd, VFIO_IOMMU_MAP_DMA, &cmd);
	}
}

static int kernel_unmap(struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD) {
		struct iommu_ioas_unmap cmd = {
			.size = sizeof(cmd),
			.ioas_id = ioas->id,
			.iova = iova,
			.length = len,
		};
		return upmd_k_ioctl(ioas->fd, IOMMU_IOAS_UNMAP, &cmd);
	} else {
		struct vfio_iommu_type1_dma_unmap cmd = {
			.argsz = sizeof(cmd),
			.iova = iova,
			.size = len,
		};

		if (!ioas->iommu_set)
			return 0;
		return upmd_k_ioctl(ioas->fd, VFIO_IOMMU_UNMAP_DMA, &cmd);
	}
}

static int do_map(struct upmd_ioas *ioas, int fd, uint64_t off, void *va, uint64_t len,
		  uint64_t *iova, uint32_t flags)
{
	struct ioas_mapping m = { .va = va, .len = len, .flags = flags & UPMD_IOAS_MAP_RW };
	int rc;

	if (!ioas || !iova || !len || (flags & ~(UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED)) ||
	    !(flags & UPMD_IOAS_MAP_RW) || ((uintptr_t)va | len | off) & (IOAS_PAGE - 1))
		return -EINVAL;
	pthread_mutex_lock(&ioas->lock);
	if (flags & UPMD_IOAS_MAP_FIXED) {
		m.iova = *iova;
		if (m.iova & (ioas->iova_align - 1) || !allowed_locked(ioas, m.iova, len)) {
			rc = -EINVAL;
			goto out;
		}
		if (map_overlaps(ioas, m.iova, len)) {
			rc = -EEXIST;
			goto out;
		}
	}
	rc = space_take(ioas, &m, flags & UPMD_IOAS_MAP_FIXED);
	if (rc < 0)
		goto out;
	rc = kernel_map(ioas, &m, fd, off);
	if (rc == 0) {
		rc = map_insert(ioas, &m);
		if (rc < 0)
			kernel_unmap(ioas, m.iova, len);
	}
	if (rc < 0) {
		space_give(ioas, &m);
		goto out;
	}
	*iova = m.iova;
	UPMD_DEBUG(IOAS_LOG, "mapped VA %p len 0x%" PRIx64 " at IOVA 0x%" PRIx64 "%s", va, len, m.iova,
		   fd >= 0 ? " (from its file)" : "");
out:
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

int upmd_ioas_map(struct upmd_ioas *ioas, void *va, uint64_t len, uint64_t *iova, uint32_t flags)
{
	return do_map(ioas, -1, 0, va, len, iova, flags);
}

int upmd_ioas_map_file(struct upmd_ioas *ioas, int fd, uint64_t off, void *va, uint64_t len,
		       uint64_t *iova, uint32_t flags)
{
	if (!ioas || fd < 0)
		return -EINVAL;
	if (!(ioas->features & UPMD_IOAS_FEAT_MAP_FILE))
		fd = -1;
	return do_map(ioas, fd, off, va, len, iova, flags);
}

int upmd_ioas_unmap(struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	unsigned first, end, i;
	int rc;

	if (!ioas || !len || iova + len - 1 < iova)
		return -EINVAL;
	pthread_mutex_lock(&ioas->lock);
	first = map_lower(ioas, iova);
	for (end = first; end < ioas->nmaps && ioas->maps[end].iova <= iova + len - 1; end++)
		;
	/* Nothing there, or the range cuts a mapping at either end. */
	if (first == end || ioas->maps[first].iova < iova ||
	    ioas->maps[end - 1].iova + ioas->maps[end - 1].len - 1 > iova + len - 1) {
		rc = -ENOENT;
		goto out;
	}
	rc = kernel_unmap(ioas, iova, len);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "unmapping IOVA 0x%" PRIx64 " len 0x%" PRIx64 " failed: %s", iova, len,
			 strerror(-rc));
		goto out;
	}
	for (i = first; i < end; i++)
		space_give(ioas, &ioas->maps[i]);
	memmove(&ioas->maps[first], &ioas->maps[end], (ioas->nmaps - end) * sizeof(*ioas->maps));
	ioas->nmaps -= end - first;
out:
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

/* ---- open / close ---- */

static bool path_exists(const char *path)
{
	return upmd_k_access(path, F_OK) == 0;
}

static void missing_message(enum upmd_ioas_backend want)
{
	if (want == UPMD_IOAS_BACKEND_IOMMUFD)
		UPMD_ERR(IOAS_LOG, "/dev/iommu does not exist: load iommufd (modprobe iommufd; the kernel needs CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV), boot with the IOMMU on (intel_iommu=on / amd_iommu=on), and give a container /dev/iommu; or use --iommu type1");
	else if (want == UPMD_IOAS_BACKEND_TYPE1)
		UPMD_ERR(IOAS_LOG, "/dev/vfio/vfio does not exist: load VFIO (modprobe vfio-pci), boot with the IOMMU on (intel_iommu=on / amd_iommu=on); or use --iommu iommufd");
	else
		UPMD_ERR(IOAS_LOG, "no IOMMU interface: neither /dev/iommu (iommufd) nor /dev/vfio/vfio (VFIO) exists. Load the modules (modprobe iommufd vfio-pci), boot with the IOMMU on (intel_iommu=on / amd_iommu=on), and give a container /dev/iommu and its /dev/vfio/devices/vfioN nodes");
}

static void open_failed(const char *path, int rc)
{
	if (rc == -EACCES || rc == -EPERM)
		UPMD_ERR(IOAS_LOG, "cannot open %s: %s; run as root or give this user access to it (a udev rule, or the container's device list)",
			 path, strerror(-rc));
	else
		UPMD_ERR(IOAS_LOG, "cannot open %s: %s", path, strerror(-rc));
}

/* IOMMU_IOAS_MAP_FILE with fd -1: a kernel that has it answers EBADF, one
 * that does not answers ENOTTY. Nothing is mapped either way. */
static void probe_map_file(struct upmd_ioas *ioas)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE,
		.ioas_id = ioas->id,
		.fd = -1,
		.length = IOAS_PAGE,
	};
	int rc = upmd_k_ioctl(ioas->fd, IOMMU_IOAS_MAP_FILE, &cmd);

	if (rc != -ENOTTY && rc != -EOPNOTSUPP)
		ioas->features |= UPMD_IOAS_FEAT_MAP_FILE;
	if (rc == 0) {	/* cannot happen; never leave it mapped */
		struct iommu_ioas_unmap un = { .size = sizeof(un), .ioas_id = ioas->id,
					       .iova = cmd.iova, .length = IOAS_PAGE };
		upmd_k_ioctl(ioas->fd, IOMMU_IOAS_UNMAP, &un);
	}
}

static int open_iommufd(struct upmd_ioas *ioas)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	int fd, rc;

	fd = upmd_k_open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (fd == -ENOENT)
			missing_message(UPMD_IOAS_BACKEND_IOMMUFD);
		else
			open_failed("/dev/iommu", fd);
		return fd == -ENOENT ? -ENODEV : fd;
	}
	ioas->fd = fd;
	rc = upmd_k_ioctl(fd, IOMMU_IOAS_ALLOC, &alloc);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "IOMMU_IOAS_ALLOC failed: %s", strerror(-rc));
		return rc;
	}
	ioas->id = alloc.out_ioas_id;
	ioas->features |= UPMD_IOAS_FEAT_KERNEL_IOVA;
	rc = iommufd_read_ranges(ioas);
	if (rc < 0)
		return rc;
	rc = space_update(ioas);
	if (rc < 0)
		return rc;
	probe_map_file(ioas);
	return 0;
}

static int open_type1(struct upmd_ioas *ioas)
{
	int fd, rc;

	fd = upmd_k_open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (fd == -ENOENT)
			missing_message(UPMD_IOAS_BACKEND_TYPE1);
		else
			open_failed("/dev/vfio/vfio", fd);
		return fd == -ENOENT ? -ENODEV : fd;
	}
	ioas->fd = fd;
	rc = upmd_k_ioctl(fd, VFIO_GET_API_VERSION, NULL);
	if (rc != VFIO_API_VERSION) {
		UPMD_ERR(IOAS_LOG, "/dev/vfio/vfio speaks VFIO API %d, upmd speaks %d", rc, VFIO_API_VERSION);
		return rc < 0 ? rc : -EPROTO;
	}
	rc = upmd_k_ioctl(fd, VFIO_CHECK_EXTENSION, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
	if (rc <= 0) {
		UPMD_ERR(IOAS_LOG, "the VFIO container has no type1v2 IOMMU (is vfio_iommu_type1 loaded?)");
		return rc < 0 ? rc : -ENODEV;
	}
	type1_default_ranges(ioas);
	return space_update(ioas);
}

int upmd_ioas_open(const struct upmd_ioas_conf *conf, struct upmd_ioas **out)
{
	enum upmd_ioas_backend want;
	struct upmd_ioas *ioas;
	const char *env;
	int rc;

	if (!conf || !out || conf->size < sizeof(*conf) || conf->flags || conf->__reserved ||
	    conf->backend > UPMD_IOAS_BACKEND_TYPE1)
		return -EINVAL;
	want = conf->backend;
	if (want == UPMD_IOAS_BACKEND_AUTO) {
		env = getenv("UPMD_IOMMU");
		if (env && *env) {
			if (!strcmp(env, "iommufd")) {
				want = UPMD_IOAS_BACKEND_IOMMUFD;
			} else if (!strcmp(env, "type1")) {
				want = UPMD_IOAS_BACKEND_TYPE1;
			} else {
				UPMD_ERR(IOAS_LOG, "UPMD_IOMMU='%s': expected iommufd or type1", env);
				return -EINVAL;
			}
		} else if (path_exists("/dev/iommu")) {
			want = UPMD_IOAS_BACKEND_IOMMUFD;
		} else if (path_exists("/dev/vfio/vfio")) {
			want = UPMD_IOAS_BACKEND_TYPE1;
		} else {
			missing_message(UPMD_IOAS_BACKEND_AUTO);
			return -ENODEV;
		}
	}
	ioas = calloc(1, sizeof(*ioas));
	if (!ioas)
		return -ENOMEM;
	ioas->kind = want;
	ioas->fd = -1;
	ioas->iova_align = IOAS_PAGE;
	pthread_mutex_init(&ioas->lock, NULL);
	rc = want == UPMD_IOAS_BACKEND_IOMMUFD ? open_iommufd(ioas) : open_type1(ioas);
	if (rc < 0) {
		upmd_ioas_close(ioas);
		return rc;
	}
	UPMD_INFO(IOAS_LOG, "opened %s IOAS%s%.0u: %u allowed IOVA ranges%s", upmd_ioas_backend_name(ioas),
		  ioas->id ? " " : "", ioas->id, ioas->nranges,
		  (ioas->features & UPMD_IOAS_FEAT_MAP_FILE) ? ", MAP_FILE" : "");
	*out = ioas;
	return 0;
}

/* ---- devices ---- */

static int dev_slot(struct upmd_ioas *ioas, struct ioas_dev **out)
{
	if (ioas->ndevs == ioas->capdevs) {
		unsigned n = ioas->capdevs ? ioas->capdevs * 2 : 8;
		struct ioas_dev *t = realloc(ioas->devs, n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		ioas->devs = t;
		ioas->capdevs = n;
	}
	*out = &ioas->devs[ioas->ndevs];
	memset(*out, 0, sizeof(**out));
	(*out)->fd = -1;
	(*out)->group = -1;
	return 0;
}

static int iommufd_dev_open(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req,
			    struct ioas_dev *d)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = ioas->fd };
	struct vfio_device_attach_iommufd_pt att = { .pt_id = ioas->id };
	struct iommu_hw_info hw = { .size = sizeof(hw) };
	char path[64];
	int rc;

	if (!req->cdev || !*req->cdev || strchr(req->cdev, '/')) {
		UPMD_ERR(IOAS_LOG, "%s: no vfio cdev name given", req->bdf);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", req->cdev);
	rc = upmd_k_open(path, O_RDWR | O_CLOEXEC);
	if (rc < 0) {
		if (rc == -ENOENT)
			UPMD_ERR(IOAS_LOG, "%s: %s does not exist; in a container, pass it in (--device %s)",
				 req->bdf, path, path);
		else if (rc == -EBUSY)
			UPMD_ERR(IOAS_LOG, "%s: %s is busy: another process (or its legacy group) has the device",
				 req->bdf, path);
		else
			open_failed(path, rc);
		return rc;
	}
	d->fd = rc;
	rc = upmd_k_ioctl(d->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "%s: VFIO_DEVICE_BIND_IOMMUFD failed: %s", req->bdf, strerror(-rc));
		return rc;
	}
	d->devid = bind.out_devid;
	hw.dev_id = d->devid;
	if (upmd_k_ioctl(ioas->fd, IOMMU_GET_HW_INFO, &hw) == 0 && hw.out_max_pasid_log2)
		ioas->features |= UPMD_IOAS_FEAT_PASID;
	if (req->flags & UPMD_IOAS_DEV_F_PASID) {
		if (!hw.out_max_pasid_log2) {
			UPMD_ERR(IOAS_LOG, "%s: cannot attach at PASID %u: the kernel (needs 6.15+) or the device's IOMMU has no PASID support",
				 req->bdf, req->pasid);
			return -EOPNOTSUPP;
		}
		att.argsz = sizeof(att);
		att.flags = VFIO_DEVICE_ATTACH_PASID;
		att.pasid = req->pasid;
	} else {
		att.argsz = VFIO_DEVICE_ATTACH_MINSZ;
	}
	rc = upmd_k_ioctl(d->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &att);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "%s: attaching to IOAS %u failed: %s", req->bdf, ioas->id, strerror(-rc));
		return rc;
	}
	d->has_pasid = req->flags & UPMD_IOAS_DEV_F_PASID;
	d->pasid = req->pasid;
	/* An attach adds the device's reserved regions (the MSI window). */
	rc = iommufd_read_ranges(ioas);
	if (rc < 0)
		return rc;
	return space_update(ioas);
}

static void iommufd_dev_detach(struct upmd_ioas *ioas, struct ioas_dev *d)
{
	struct vfio_device_detach_iommufd_pt det = { .argsz = VFIO_DEVICE_DETACH_MINSZ };
	int rc;

	if (d->has_pasid) {
		det.argsz = sizeof(det);
		det.flags = VFIO_DEVICE_ATTACH_PASID;
		det.pasid = d->pasid;
	}
	rc = upmd_k_ioctl(d->fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &det);
	if (rc < 0)
		UPMD_WARN(IOAS_LOG, "%s: detach failed: %s", d->bdf, strerror(-rc));
	(void)ioas;
}

/* The first group gives the container its IOMMU: set it, learn the ranges,
 * and make the mappings recorded until then. */
static int type1_set_iommu(struct upmd_ioas *ioas)
{
	unsigned i;
	int rc;

	rc = upmd_k_ioctl(ioas->fd, VFIO_SET_IOMMU, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "VFIO_SET_IOMMU(type1v2) failed: %s", strerror(-rc));
		return rc;
	}
	ioas->iommu_set = true;
	rc = type1_read_ranges(ioas);
	if (rc == 0)
		rc = space_update(ioas);
	if (rc < 0)
		return rc;
	for (i = 0; i < ioas->nmaps; i++) {
		const struct ioas_mapping *m = &ioas->maps[i];

		if (!allowed_locked(ioas, m->iova, m->len)) {
			UPMD_ERR(IOAS_LOG, "IOVA 0x%" PRIx64 " len 0x%" PRIx64 " was mapped before the IOMMU was known and lies outside its allowed ranges",
				 m->iova, m->len);
			return -EINVAL;
		}
		rc = kernel_map(ioas, m, -1, 0);
		if (rc < 0) {
			UPMD_ERR(IOAS_LOG, "mapping IOVA 0x%" PRIx64 " into the new container failed: %s", m->iova,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void type1_group_put(struct upmd_ioas *ioas, int idx)
{
	struct ioas_group *g = &ioas->groups[idx];

	if (--g->refs)
		return;
	upmd_k_ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
	upmd_k_close(g->fd);
	g->fd = -1;
	/* The last group out takes the container's IOMMU and its mappings
	 * with it; they are made again if a group joins. */
	for (idx = 0; idx < (int)ioas->ngroups; idx++)
		if (ioas->groups[idx].fd >= 0)
			return;
	ioas->iommu_set = false;
}

static int type1_group_get(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct ioas_group *g = NULL;
	char path[64];
	unsigned i;
	int rc, fd;

	for (i = 0; i < ioas->ngroups; i++)
		if (ioas->groups[i].num == req->iommu_group && ioas->groups[i].fd >= 0) {
			ioas->groups[i].refs++;
			return (int)i;
		}
	snprintf(path, sizeof(path), "/dev/vfio/%d", req->iommu_group);
	fd = upmd_k_open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (fd == -ENOENT)
			UPMD_ERR(IOAS_LOG, "%s: %s does not exist: is the device bound to vfio-pci? ('upmd-devbind --bind vfio-pci %s')",
				 req->bdf, path, req->bdf);
		else
			open_failed(path, fd);
		return fd;
	}
	rc = upmd_k_ioctl(fd, VFIO_GROUP_GET_STATUS, &st);
	if (rc < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		UPMD_ERR(IOAS_LOG, "%s: IOMMU group %d is not viable: every device in it must be bound to vfio-pci (see 'upmd-devbind --status')",
			 req->bdf, req->iommu_group);
		upmd_k_close(fd);
		return rc < 0 ? rc : -EPERM;
	}
	rc = upmd_k_ioctl(fd, VFIO_GROUP_SET_CONTAINER, &ioas->fd);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "%s: adding group %d to the container failed: %s", req->bdf,
			 req->iommu_group, strerror(-rc));
		upmd_k_close(fd);
		return rc;
	}
	for (i = 0; i < ioas->ngroups; i++)
		if (ioas->groups[i].fd < 0)
			g = &ioas->groups[i];
	if (!g) {
		if (ioas->ngroups == ioas->capgroups) {
			unsigned n = ioas->capgroups ? ioas->capgroups * 2 : 8;
			struct ioas_group *t = realloc(ioas->groups, n * sizeof(*t));

			if (!t) {
				upmd_k_ioctl(fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
				upmd_k_close(fd);
				return -ENOMEM;
			}
			ioas->groups = t;
			ioas->capgroups = n;
		}
		g = &ioas->groups[ioas->ngroups++];
	}
	g->num = req->iommu_group;
	g->fd = fd;
	g->refs = 1;
	if (!ioas->iommu_set) {
		rc = type1_set_iommu(ioas);
		if (rc < 0) {
			type1_group_put(ioas, (int)(g - ioas->groups));
			return rc;
		}
	} else {
		/* Another group may bring more reserved regions. */
		rc = type1_read_ranges(ioas);
		if (rc == 0)
			rc = space_update(ioas);
		if (rc < 0) {
			type1_group_put(ioas, (int)(g - ioas->groups));
			return rc;
		}
	}
	return (int)(g - ioas->groups);
}

static int type1_dev_open(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req,
			  struct ioas_dev *d)
{
	int rc;

	if (req->iommu_group < 0) {
		UPMD_ERR(IOAS_LOG, "%s: the device has no IOMMU group (no IOMMU, or the device is not behind one)",
			 req->bdf);
		return -ENODEV;
	}
	if (req->flags & UPMD_IOAS_DEV_F_PASID) {
		UPMD_ERR(IOAS_LOG, "%s: a PASID attach needs the iommufd backend (--iommu iommufd)", req->bdf);
		return -EOPNOTSUPP;
	}
	rc = type1_group_get(ioas, req);
	if (rc < 0)
		return rc;
	d->group = rc;
	rc = upmd_k_ioctl(ioas->groups[d->group].fd, VFIO_GROUP_GET_DEVICE_FD, (void *)req->bdf);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "%s: VFIO_GROUP_GET_DEVICE_FD failed: %s", req->bdf, strerror(-rc));
		type1_group_put(ioas, d->group);
		d->group = -1;
		return rc;
	}
	d->fd = rc;
	return 0;
}

int upmd_ioas_device_open(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req, int *fd)
{
	struct ioas_dev *d;
	int rc;

	if (!ioas || !req || !fd || req->size < sizeof(*req) || !req->bdf ||
	    (req->flags & ~UPMD_IOAS_DEV_F_PASID))
		return -EINVAL;
	pthread_mutex_lock(&ioas->lock);
	rc = dev_slot(ioas, &d);
	if (rc < 0)
		goto out;
	snprintf(d->bdf, sizeof(d->bdf), "%s", req->bdf);
	if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD)
		rc = iommufd_dev_open(ioas, req, d);
	else
		rc = type1_dev_open(ioas, req, d);
	if (rc < 0) {
		/* Closing an iommufd-bound cdev unbinds (and detaches) it. */
		if (d->fd >= 0)
			upmd_k_close(d->fd);
		goto out;
	}
	ioas->ndevs++;
	*fd = d->fd;
	UPMD_DEBUG(IOAS_LOG, "%s: open in the %s IOAS (fd %d)", req->bdf, upmd_ioas_backend_name(ioas), d->fd);
out:
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

static void dev_release(struct upmd_ioas *ioas, unsigned i)
{
	struct ioas_dev *d = &ioas->devs[i];

	if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD)
		iommufd_dev_detach(ioas, d);
	upmd_k_close(d->fd);
	if (d->group >= 0)
		type1_group_put(ioas, d->group);
	memmove(d, d + 1, (ioas->ndevs - i - 1) * sizeof(*d));
	ioas->ndevs--;
	if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD)
		iommufd_read_ranges(ioas);
}

int upmd_ioas_device_close(struct upmd_ioas *ioas, int fd)
{
	unsigned i;
	int rc = -ENOENT;

	if (!ioas || fd < 0)
		return -EINVAL;
	pthread_mutex_lock(&ioas->lock);
	for (i = 0; i < ioas->ndevs; i++)
		if (ioas->devs[i].fd == fd) {
			dev_release(ioas, i);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

void upmd_ioas_close(struct upmd_ioas *ioas)
{
	if (!ioas)
		return;
	if (default_ioas == ioas)
		default_ioas = NULL;
	pthread_mutex_lock(&ioas->lock);
	while (ioas->ndevs) {
		UPMD_WARN(IOAS_LOG, "%s: still open when its IOAS closed: detaching it", ioas->devs[0].bdf);
		dev_release(ioas, 0);
	}
	if (ioas->fd >= 0) {
		if (ioas->nmaps && kernel_unmap(ioas, 0, UINT64_MAX) < 0 &&
		    ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD)
			UPMD_WARN(IOAS_LOG, "unmapping everything from IOAS %u failed", ioas->id);
		if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD && ioas->id) {
			struct iommu_destroy d = { .size = sizeof(d), .id = ioas->id };

			upmd_k_ioctl(ioas->fd, IOMMU_DESTROY, &d);
		}
		upmd_k_close(ioas->fd);
	}
	pthread_mutex_unlock(&ioas->lock);
	pthread_mutex_destroy(&ioas->lock);
	if (ioas->space)
		upmd_iova_allocator_destroy(ioas->space);
	free(ioas->maps);
	free(ioas->devs);
	free(ioas->groups);
	free(ioas);
}
