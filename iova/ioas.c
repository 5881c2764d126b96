/* The process's one IOAS: iommufd (IOAS_ALLOC/MAP/UNMAP, cdev bind + attach) or the legacy VFIO type1 container. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
	/* The IOVA alignment (and length granule) mappings need: never below
	 * IOAS_PAGE, and only ever raised (see ioas_geom). */
	uint64_t iova_align;
	pthread_mutex_t lock;

	/* The usable IOVA ranges: the overlap of every answer the kernel gave
	 * since open (see ioas_geom), so always inside its current ranges. */
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

static bool ranges_cover(const struct upmd_iova_range *r, unsigned n, uint64_t iova, uint64_t len)
{
	uint64_t last = iova + len - 1;
	unsigned i;

	if (!len || last < iova)
		return false;
	for (i = 0; i < n; i++)
		if (iova >= r[i].start && last <= r[i].last)
			return true;
	return false;
}

static bool allowed_locked(const struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	return ranges_cover(ioas->ranges, ioas->nranges, iova, len);
}

bool upmd_ioas_iova_allowed(const struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	return ioas && allowed_locked(ioas, iova, len);
}

/* "0x0-0xfedfffff, 0xfef00000-0x7fffffffff" for messages. */
static const char *ranges_str(const struct upmd_iova_range *r, unsigned n, char *buf, size_t len)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < n && used + 1 < len; i++) {
		int w = snprintf(buf + used, len - used, "%s0x%" PRIx64 "-0x%" PRIx64, i ? ", " : "",
				 r[i].start, r[i].last);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	return n ? buf : "none";
}

/* ---- allowed ranges ---- */

/*
 * What the IOAS learns from the kernel at open and at each attach. The
 * kernel's answer can widen again when a device detaches (its reserved
 * regions go) or, for iommufd, before any device is attached (alignment 1,
 * everything allowed). The IOAS never follows a widening: it keeps the
 * overlap of every answer and the largest alignment, so that a device that
 * attaches again (or one like it) still finds every mapping acceptable, and
 * the IOVA allocator, which can only narrow, always agrees with the ranges
 * this IOAS reports. The overlap of answers is always inside the kernel's
 * current ranges, so nothing is handed out where the kernel refuses it.
 */
struct ioas_geom {
	struct upmd_iova_range r[IOAS_MAX_RANGES];
	unsigned n;
	uint64_t align;
};

static void ranges_sort(struct upmd_iova_range *r, unsigned n)
{
	unsigned i, j;

	for (i = 1; i < n; i++) {
		struct upmd_iova_range t = r[i];

		for (j = i; j > 0 && r[j - 1].start > t.start; j--)
			r[j] = r[j - 1];
		r[j] = t;
	}
}

/* @g becomes the overlap of what the IOAS uses now and what the kernel
 * reported in @g; the alignment the larger of the two. */
static int geom_narrow(const struct upmd_ioas *ioas, struct ioas_geom *g)
{
	struct upmd_iova_range out[IOAS_MAX_RANGES];
	unsigned i = 0, j = 0, n = 0;

	while (i < ioas->nranges && j < g->n) {
		uint64_t lo = UPMD_MAX(ioas->ranges[i].start, g->r[j].start);
		uint64_t hi = UPMD_MIN(ioas->ranges[i].last, g->r[j].last);

		if (lo <= hi) {
			if (n == IOAS_MAX_RANGES) {
				UPMD_ERR(IOAS_LOG, "the allowed IOVA ranges split into more than %d pieces; upmd handles at most %d",
					 IOAS_MAX_RANGES, IOAS_MAX_RANGES);
				return -E2BIG;
			}
			out[n].start = lo;
			out[n++].last = hi;
		}
		if (ioas->ranges[i].last < g->r[j].last)
			i++;
		else
			j++;
	}
	if (!n) {
		char was[256], now[256];

		UPMD_ERR(IOAS_LOG, "no IOVA is allowed both by the IOMMU now (%s) and by the devices attached before (%s): these devices cannot share one IOAS",
			 ranges_str(g->r, g->n, now, sizeof(now)),
			 ranges_str(ioas->ranges, ioas->nranges, was, sizeof(was)));
		return -ENOSPC;
	}
	memcpy(g->r, out, n * sizeof(out[0]));
	g->n = n;
	g->align = UPMD_MAX(UPMD_MAX(g->align, ioas->iova_align), IOAS_PAGE);
	return 0;
}

static void geom_commit(struct upmd_ioas *ioas, const struct ioas_geom *g)
{
	memcpy(ioas->ranges, g->r, g->n * sizeof(g->r[0]));
	ioas->nranges = g->n;
	ioas->iova_align = g->align;
}

static int iommufd_read_ranges(struct upmd_ioas *ioas, struct ioas_geom *g)
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
		g->r[i].start = r[i].start;
		g->r[i].last = r[i].last;
	}
	g->n = cmd.num_iovas;
	ranges_sort(g->r, g->n);
	/* Without a domain the kernel answers 1: it cannot know the IOMMU's
	 * page size yet. No domain maps less than a CPU page, so until an
	 * attach tells more the IOAS holds mappings to IOAS_PAGE. */
	g->align = UPMD_MAX(cmd.out_iova_alignment, IOAS_PAGE);
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

static int type1_read_ranges(struct upmd_ioas *ioas, struct ioas_geom *g)
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
	g->align = IOAS_PAGE;
	if ((info->flags & VFIO_IOMMU_INFO_PGSIZES) && info->iova_pgsizes)
		g->align = UPMD_MAX(info->iova_pgsizes & -info->iova_pgsizes, IOAS_PAGE);
	g->n = 0;
	off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0;
	while (off && off + sizeof(struct vfio_info_cap_header) <= argsz) {
		const struct vfio_info_cap_header *h = (const void *)((const char *)info + off);

		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			const struct vfio_iommu_type1_info_cap_iova_range *c = (const void *)h;

			for (i = 0; i < c->nr_iovas && i < IOAS_MAX_RANGES; i++) {
				g->r[i].start = c->iova_ranges[i].start;
				g->r[i].last = c->iova_ranges[i].end;
			}
			g->n = i;
			break;
		}
		if (h->next <= off)
			break;
		off = h->next;
	}
	free(info);
	/* A kernel without the capability (before 5.4) allows everything. */
	if (!g->n) {
		g->r[0].start = 0;
		g->r[0].last = UINT64_MAX;
		g->n = 1;
	}
	ranges_sort(g->r, g->n);
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
 * The IOVA space behind picked IOVAs: the usable ranges from
 * IOAS_PICK_MIN up, created at open and narrowed with the ranges (the
 * allocator can only narrow, which is why the ranges never widen either).
 */
static int space_create(struct upmd_ioas *ioas)
{
	return upmd_iova_allocator_create(ioas->ranges, ioas->nranges, IOAS_PAGE, IOAS_PICK_MIN,
					  &ioas->space);
}

/* All or nothing: on failure the allocator is as it was. */
static int space_restrict(struct upmd_ioas *ioas, const struct ioas_geom *g)
{
	int rc = upmd_iova_allocator_restrict(ioas->space, g->r, g->n);

	if (rc == -EBUSY)
		UPMD_ERR(IOAS_LOG, "a mapping lies outside the IOVA ranges the IOMMU now allows");
	else if (rc < 0)
		UPMD_ERR(IOAS_LOG, "narrowing the IOVA allocator failed: %s", strerror(-rc));
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

/* Bytes of this IOAS's mappings the kernel holds pinned now: iommufd pins
 * once a domain exists (a device is attached), type1 once the container
 * has its IOMMU. */
static bool pins_now(const struct upmd_ioas *ioas)
{
	return ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD ? ioas->ndevs > 0 : ioas->iommu_set;
}

static uint64_t mapped_bytes(const struct upmd_ioas *ioas)
{
	uint64_t t = 0;
	unsigned i;

	for (i = 0; i < ioas->nmaps; i++)
		t += ioas->maps[i].len;
	return t;
}

/* ENOMEM from a pin is nearly always the locked-memory limit: the kernel
 * charges IOMMU pins to RLIMIT_MEMLOCK unless the process has
 * CAP_IPC_LOCK (iommufd per user, type1 per process). */
static void memlock_failed(const struct upmd_ioas *ioas, const char *what, uint64_t need)
{
	uint64_t held = pins_now(ioas) ? mapped_bytes(ioas) : 0;
	char lim[32] = "unknown";
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY) {
			UPMD_ERR(IOAS_LOG, "%s: the kernel could not pin %" PRIu64 " KiB (ENOMEM) although RLIMIT_MEMLOCK is unlimited: the machine is out of memory",
				 what, need / 1024);
			return;
		}
		snprintf(lim, sizeof(lim), "%llu KiB", (unsigned long long)(rl.rlim_cur / 1024));
	}
	UPMD_ERR(IOAS_LOG, "%s: the kernel could not pin %" PRIu64 " KiB (ENOMEM): pinned DMA memory counts against RLIMIT_MEMLOCK, which is %s, and this IOAS already has %" PRIu64 " KiB pinned; raise the limit ('ulimit -l unlimited' in the shell that starts the program, LimitMEMLOCK=infinity in a systemd unit, '--ulimit memlock=-1:-1' for a docker or podman container, memlock in /etc/security/limits.conf) or give the process CAP_IPC_LOCK",
		 what, need / 1024, lim, held / 1024);
}

static void map_failed(const struct upmd_ioas *ioas, const struct ioas_mapping *m, int rc)
{
	char what[128];

	snprintf(what, sizeof(what), "mapping VA %p len 0x%" PRIx64 " at IOVA 0x%" PRIx64, m->va, m->len,
		 m->iova);
	if (rc == -ENOMEM && pins_now(ioas))
		memlock_failed(ioas, what, m->len);
	else if (rc == -EFAULT)
		UPMD_ERR(IOAS_LOG, "%s failed (EFAULT): the memory is not mapped in this process, or is read-only while the device may write to it",
			 what);
	else
		UPMD_ERR(IOAS_LOG, "%s failed: %s", what, strerror(-rc));
}

/* The kernel said at open it had IOMMU_IOAS_MAP_FILE but now refuses it:
 * map files by VA from here on, and say so once. */
static void map_file_gone(struct upmd_ioas *ioas, int rc)
{
	ioas->features &= ~UPMD_IOAS_FEAT_MAP_FILE;
	UPMD_NOTICE(IOAS_LOG, "IOMMU_IOAS_MAP_FILE failed (%s): mapping files by their VA with IOMMU_IOAS_MAP from now on",
		    strerror(-rc));
}

static int do_map(struct upmd_ioas *ioas, int fd, uint64_t off, void *va, uint64_t len,
		  uint64_t *iova, uint32_t flags)
{
	struct ioas_mapping m = { .va = va, .len = len, .flags = flags & UPMD_IOAS_MAP_RW };
	char rs[256];
	int rc;

	if (!ioas || !iova || !len || (flags & ~(UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED)) ||
	    !(flags & UPMD_IOAS_MAP_RW) || ((uintptr_t)va | len | off) & (IOAS_PAGE - 1))
		return -EINVAL;
	pthread_mutex_lock(&ioas->lock);
	if (!(ioas->features & UPMD_IOAS_FEAT_MAP_FILE))
		fd = -1;
	if (flags & UPMD_IOAS_MAP_FIXED)
		m.iova = *iova;
	/* An IOMMU maps whole pages of its own size; before any device is
	 * attached that size is not known and IOAS_PAGE stands in for it. */
	if ((len | ((flags & UPMD_IOAS_MAP_FIXED) ? m.iova : 0)) & (ioas->iova_align - 1)) {
		char at[40] = "";

		if (flags & UPMD_IOAS_MAP_FIXED)
			snprintf(at, sizeof(at), "IOVA 0x%" PRIx64 " ", m.iova);
		UPMD_ERR(IOAS_LOG, "%slen 0x%" PRIx64 ": not aligned to 0x%" PRIx64 ", the IOMMU's page size (a CPU page at least, even before a device is attached: every attach will need it); give an aligned IOVA and length",
			 at, len, ioas->iova_align);
		rc = -EINVAL;
		goto out;
	}
	if (flags & UPMD_IOAS_MAP_FIXED) {
		if (!allowed_locked(ioas, m.iova, len)) {
			UPMD_ERR(IOAS_LOG, "IOVA 0x%" PRIx64 " len 0x%" PRIx64 " is outside the allowed IOVA ranges (%s): the IOMMU reserves it (its MSI window, or past its aperture), or a device attached earlier did (the IOAS keeps the narrowest ranges it has seen, so that such a device can attach again); use an IOVA inside them, or let the IOAS pick one",
				 m.iova, len, ranges_str(ioas->ranges, ioas->nranges, rs, sizeof(rs)));
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
	if (fd >= 0 && (rc == -ENOTTY || rc == -EOPNOTSUPP)) {
		map_file_gone(ioas, rc);
		fd = -1;
		rc = kernel_map(ioas, &m, fd, 0);
	}
	if (rc < 0) {
		map_failed(ioas, &m, rc);
		goto err_give;
	}
	rc = map_insert(ioas, &m);
	if (rc < 0)
		goto err_unmap;
	*iova = m.iova;
	UPMD_DEBUG(IOAS_LOG, "mapped VA %p len 0x%" PRIx64 " at IOVA 0x%" PRIx64 "%s", va, len, m.iova,
		   fd >= 0 ? " (from its file)" : "");
	goto out;
err_unmap:
	kernel_unmap(ioas, m.iova, len);
err_give:
	space_give(ioas, &m);
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

/*
 * IOMMU_IOAS_MAP_FILE (6.13+) with fd -1: a kernel that has it finds the
 * IOAS and then fails fget() with EBADF, before anything is mapped or
 * pinned. Any other answer (ENOTTY from 6.12, EOPNOTSUPP, or EINVAL from a
 * kernel whose command differs) is taken as "absent": files are then
 * mapped by their VA with IOMMU_IOAS_MAP, which is said once, here. The
 * probe runs before any device is attached, so even a kernel that did map
 * something would have pinned nothing; it is unmapped at once regardless.
 */
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

	if (rc == -EBADF) {
		ioas->features |= UPMD_IOAS_FEAT_MAP_FILE;
		return;
	}
	if (rc == 0) {
		struct iommu_ioas_unmap un = { .size = sizeof(un), .ioas_id = ioas->id,
					       .iova = cmd.iova, .length = IOAS_PAGE };
		int urc = upmd_k_ioctl(ioas->fd, IOMMU_IOAS_UNMAP, &un);

		if (urc < 0)
			UPMD_ERR(IOAS_LOG, "the IOMMU_IOAS_MAP_FILE probe mapped IOVA 0x%" PRIx64 " and unmapping it failed: %s",
				 (uint64_t)cmd.iova, strerror(-urc));
	}
	UPMD_NOTICE(IOAS_LOG, "IOMMU_IOAS_MAP_FILE is not available (the probe got %s; it needs Linux 6.13+): files are mapped by their VA with IOMMU_IOAS_MAP",
		    rc ? strerror(-rc) : "a mapping");
}

static int open_iommufd(struct upmd_ioas *ioas)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct ioas_geom g;
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
	rc = iommufd_read_ranges(ioas, &g);
	if (rc < 0)
		return rc;
	geom_commit(ioas, &g);
	rc = space_create(ioas);
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
	return space_create(ioas);
}

int upmd_ioas_open(const struct upmd_ioas_conf *conf, struct upmd_ioas **out)
{
	enum upmd_ioas_backend want;
	struct upmd_ioas *ioas;
	const char *env;
	int rc;

	if (!conf || !out || conf->size < sizeof(*conf) || (conf->flags & ~UPMD_IOAS_F_OPTIONAL) || conf->__reserved ||
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
			if (!(conf->flags & UPMD_IOAS_F_OPTIONAL))
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

/* VFIO_DEVICE_BIND_IOMMUFD's refusals, in the user's terms. */
static void bind_failed(const struct upmd_ioas_dev_req *req, const char *path, int rc)
{
	char group[32] = "its legacy VFIO group";

	if (req->iommu_group >= 0)
		snprintf(group, sizeof(group), "/dev/vfio/%d", req->iommu_group);
	if (rc == -EBUSY)
		UPMD_ERR(IOAS_LOG, "%s: cannot bind %s to the iommufd (EBUSY): the device is in use through %s, which another process has open (a DPDK or QEMU process, or upmd with --iommu type1; 'fuser -v %s' shows it); stop that process, or open the device the way it does (--iommu type1)",
			 req->bdf, path, group, group);
	else if (rc == -EINVAL)
		UPMD_ERR(IOAS_LOG, "%s: cannot bind %s to the iommufd (EINVAL): the device is already open through another file, in another process or earlier in this one ('fuser -v %s' shows who); close that first. Check with 'upmd-devbind --status' that %s is bound to vfio-pci (else 'upmd-devbind --bind vfio-pci %s')",
			 req->bdf, path, path, req->bdf, req->bdf);
	else if (rc == -EPERM || rc == -EACCES)
		UPMD_ERR(IOAS_LOG, "%s: cannot bind %s to the iommufd: %s; run as root or give this user access to /dev/iommu and %s",
			 req->bdf, path, strerror(-rc), path);
	else
		UPMD_ERR(IOAS_LOG, "%s: VFIO_DEVICE_BIND_IOMMUFD on %s failed: %s", req->bdf, path,
			 strerror(-rc));
}

/* ATTACH_IOMMUFD_PT's refusals. The first attach gives the IOAS its domain,
 * which pins every mapping made before and checks each against the
 * device's reserved regions, aperture and page size. */
static void attach_failed(const struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req, int rc)
{
	const struct ioas_mapping *lo = ioas->maps, *hi = ioas->maps + ioas->nmaps - 1;
	char what[128];

	if (rc == -ENOMEM && ioas->nmaps && !ioas->ndevs) {
		snprintf(what, sizeof(what), "%s: attaching to IOAS %u pins its %u mapping(s)", req->bdf,
			 ioas->id, ioas->nmaps);
		memlock_failed(ioas, what, mapped_bytes(ioas));
	} else if (rc == -EADDRINUSE && ioas->nmaps) {
		UPMD_ERR(IOAS_LOG, "%s: the kernel refused to attach the device to IOAS %u (EADDRINUSE): a mapping made before this attach (%u of them, in IOVA 0x%" PRIx64 "-0x%" PRIx64 ") lies where this device's IOMMU cannot map: in its MSI window, past its aperture, or off its page size. Unmap it and map again after the attach, or let the IOAS pick IOVAs once the devices are attached (as the EAL does)",
			 req->bdf, ioas->id, ioas->nmaps, lo->iova, hi->iova + hi->len - 1);
	} else if (rc == -EFAULT && ioas->nmaps && !ioas->ndevs) {
		UPMD_ERR(IOAS_LOG, "%s: attaching to IOAS %u failed (EFAULT): a mapping made before the attach covers memory that cannot be pinned (no longer mapped, or read-only while the device may write); unmap it first",
			 req->bdf, ioas->id);
	} else {
		UPMD_ERR(IOAS_LOG, "%s: attaching to IOAS %u failed: %s", req->bdf, ioas->id, strerror(-rc));
	}
}

/*
 * Nothing of the IOAS changes until the device is attached and every
 * step after it has worked (the allocator's narrowing last: it is all or
 * nothing and cannot be undone), so a failed open leaves the IOAS, the
 * devices already in it and the allocator exactly as they were; the caller
 * closes the cdev, which detaches and unbinds it.
 */
static int iommufd_dev_open(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req,
			    struct ioas_dev *d)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = ioas->fd };
	struct vfio_device_attach_iommufd_pt att = { .pt_id = ioas->id };
	struct iommu_hw_info hw = { .size = sizeof(hw) };
	struct ioas_geom g;
	bool pasid_cap;
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
		bind_failed(req, path, rc);
		return rc;
	}
	d->devid = bind.out_devid;
	hw.dev_id = d->devid;
	pasid_cap = upmd_k_ioctl(ioas->fd, IOMMU_GET_HW_INFO, &hw) == 0 && hw.out_max_pasid_log2;
	if (req->flags & UPMD_IOAS_DEV_F_PASID) {
		if (!pasid_cap) {
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
		attach_failed(ioas, req, rc);
		return rc;
	}
	/* An attach adds the device's reserved regions (the MSI window) and
	 * tells the IOMMU's page size. */
	rc = iommufd_read_ranges(ioas, &g);
	if (rc == 0)
		rc = geom_narrow(ioas, &g);
	if (rc == 0)
		rc = space_restrict(ioas, &g);
	if (rc < 0)
		return rc;
	geom_commit(ioas, &g);
	if (pasid_cap)
		ioas->features |= UPMD_IOAS_FEAT_PASID;
	d->has_pasid = req->flags & UPMD_IOAS_DEV_F_PASID;
	d->pasid = req->pasid;
	return 0;
}

static void iommufd_dev_detach(struct ioas_dev *d)
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
		UPMD_WARN(IOAS_LOG, "%s: detach failed: %s (closing its cdev detaches it anyway)", d->bdf,
			  strerror(-rc));
}

/*
 * The first group gives the container its IOMMU, and the mappings
 * recorded until then are made now. Each must fit what the IOMMU turned
 * out to allow (@g); all are checked before any is made, so a misfit pins
 * nothing.
 */
static int type1_replay(struct upmd_ioas *ioas, const struct ioas_geom *g)
{
	char rs[256], what[128];
	unsigned i;
	int rc;

	for (i = 0; i < ioas->nmaps; i++) {
		const struct ioas_mapping *m = &ioas->maps[i];

		if (!ranges_cover(g->r, g->n, m->iova, m->len) || ((m->iova | m->len) & (g->align - 1))) {
			UPMD_ERR(IOAS_LOG, "IOVA 0x%" PRIx64 " len 0x%" PRIx64 " was mapped before the container had an IOMMU and does not fit it (allowed ranges %s, page size 0x%" PRIx64 "); unmap it and map again once a device is open",
				 m->iova, m->len, ranges_str(g->r, g->n, rs, sizeof(rs)), g->align);
			return -EINVAL;
		}
	}
	for (i = 0; i < ioas->nmaps; i++) {
		const struct ioas_mapping *m = &ioas->maps[i];

		rc = kernel_map(ioas, m, -1, 0);
		if (rc == -ENOMEM) {
			snprintf(what, sizeof(what), "making the %u mapping(s) recorded before the container had an IOMMU",
				 ioas->nmaps);
			memlock_failed(ioas, what, mapped_bytes(ioas));
		} else if (rc < 0) {
			UPMD_ERR(IOAS_LOG, "mapping IOVA 0x%" PRIx64 " into the new container failed: %s",
				 m->iova, strerror(-rc));
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Take every recorded mapping out of the container: what the last group
 * does on its way out, so that nothing stays pinned even when the group
 * cannot leave. Mappings that were never made unmap as nothing. */
static unsigned type1_unmap_all(struct upmd_ioas *ioas)
{
	unsigned i, failed = 0;
	int rc;

	for (i = 0; i < ioas->nmaps; i++) {
		rc = kernel_unmap(ioas, ioas->maps[i].iova, ioas->maps[i].len);
		if (rc < 0) {
			UPMD_ERR(IOAS_LOG, "unmapping IOVA 0x%" PRIx64 " len 0x%" PRIx64 " from the container failed: %s",
				 ioas->maps[i].iova, ioas->maps[i].len, strerror(-rc));
			failed++;
		}
	}
	return failed;
}

/*
 * Drop a reference to a group; the last one takes it out of the container
 * and closes it. The last group out of the container also takes the
 * container's IOMMU and every mapping with it (in the kernel: the mappings
 * stay recorded here and are made again if a group joins). Mappings are
 * unmapped before the group leaves rather than left to the kernel, so that
 * a group that cannot leave (VFIO_GROUP_UNSET_CONTAINER fails: a device
 * file of the group is still open somewhere) does not keep them pinned.
 */
static void type1_group_put(struct upmd_ioas *ioas, int idx)
{
	struct ioas_group *g = &ioas->groups[idx];
	unsigned i, stuck = 0;
	bool last = true;
	int rc;

	if (--g->refs)
		return;
	for (i = 0; i < ioas->ngroups; i++)
		if ((int)i != idx && ioas->groups[i].fd >= 0)
			last = false;
	if (last && ioas->iommu_set)
		stuck = type1_unmap_all(ioas);
	rc = upmd_k_ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
	if (rc < 0) {
		if (rc == -EBUSY)
			UPMD_ERR(IOAS_LOG, "IOMMU group %d: VFIO_GROUP_UNSET_CONTAINER failed (EBUSY): a device file of the group is still open (a dup()ed fd, a forked child, or a device fd closed without upmd_ioas_device_close()); the group stays in the container until that file is closed%s",
				 g->num, stuck ? ", and so do the mappings that failed to unmap (still pinned)" : "; none of this IOAS's mappings stays pinned");
		else
			UPMD_ERR(IOAS_LOG, "IOMMU group %d: VFIO_GROUP_UNSET_CONTAINER failed: %s; closing the group instead%s",
				 g->num, strerror(-rc), stuck ? " (mappings that failed to unmap may stay pinned until it is released)" : "");
	}
	rc = upmd_k_close(g->fd);
	if (rc < 0)
		UPMD_ERR(IOAS_LOG, "IOMMU group %d: closing /dev/vfio/%d failed: %s", g->num, g->num,
			 strerror(-rc));
	g->fd = -1;
	if (last)
		ioas->iommu_set = false;
}

/* Open the device's group and put it in the container, or take another
 * reference to it. @return the group's index. */
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
		else if (fd == -EBUSY)
			UPMD_ERR(IOAS_LOG, "%s: %s is busy: another process has the group open, or the device is bound through its cdev (/dev/vfio/devices/...); stop that user, or use --iommu iommufd as it does",
				 req->bdf, path);
		else
			open_failed(path, fd);
		return fd;
	}
	rc = upmd_k_ioctl(fd, VFIO_GROUP_GET_STATUS, &st);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "%s: VFIO_GROUP_GET_STATUS on %s failed: %s", req->bdf, path, strerror(-rc));
		goto err_close;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		UPMD_ERR(IOAS_LOG, "%s: IOMMU group %d (%s) is not viable: VFIO hands out a group only when every device in it is bound to vfio-pci (or to no driver), and one is bound to a host driver. Bind each device listed in /sys/kernel/iommu_groups/%d/devices with 'upmd-devbind --bind vfio-pci BDF' (or unbind it); 'upmd-devbind --status' shows their drivers",
			 req->bdf, req->iommu_group, path, req->iommu_group);
		rc = -EPERM;
		goto err_close;
	}
	rc = upmd_k_ioctl(fd, VFIO_GROUP_SET_CONTAINER, &ioas->fd);
	if (rc < 0) {
		if (st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET)
			UPMD_ERR(IOAS_LOG, "%s: IOMMU group %d is already in a VFIO container: another process uses it; stop that process",
				 req->bdf, req->iommu_group);
		else
			UPMD_ERR(IOAS_LOG, "%s: adding group %d to the container failed: %s", req->bdf,
				 req->iommu_group, strerror(-rc));
		goto err_close;
	}
	for (i = 0; i < ioas->ngroups; i++)
		if (ioas->groups[i].fd < 0)
			g = &ioas->groups[i];
	if (!g) {
		if (ioas->ngroups == ioas->capgroups) {
			unsigned n = ioas->capgroups ? ioas->capgroups * 2 : 8;
			struct ioas_group *t = realloc(ioas->groups, n * sizeof(*t));

			if (!t) {
				rc = -ENOMEM;
				goto err_unset;
			}
			ioas->groups = t;
			ioas->capgroups = n;
		}
		g = &ioas->groups[ioas->ngroups++];
	}
	g->num = req->iommu_group;
	g->fd = fd;
	g->refs = 1;
	return (int)(g - ioas->groups);
err_unset:
	upmd_k_ioctl(fd, VFIO_GROUP_UNSET_CONTAINER, NULL);
err_close:
	upmd_k_close(fd);
	return rc;
}

/*
 * Group in the container (with the IOMMU set if it is the first), device
 * fd, then what the kernel now allows, the recorded mappings made (first
 * group), and only then the allocator narrowed and the IOAS updated: a
 * failure anywhere leaves the IOAS, its other devices and the allocator as
 * they were.
 */
static int type1_dev_open(struct upmd_ioas *ioas, const struct upmd_ioas_dev_req *req,
			  struct ioas_dev *d)
{
	struct ioas_geom g;
	bool first, joined;
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
	joined = ioas->groups[d->group].refs == 1;
	first = !ioas->iommu_set;
	if (first) {
		/* VFIO_SET_IOMMU needs a group in the container. */
		rc = upmd_k_ioctl(ioas->fd, VFIO_SET_IOMMU, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
		if (rc < 0) {
			UPMD_ERR(IOAS_LOG, "VFIO_SET_IOMMU(type1v2) failed: %s", strerror(-rc));
			goto err_put_group;
		}
		ioas->iommu_set = true;
	}
	rc = upmd_k_ioctl(ioas->groups[d->group].fd, VFIO_GROUP_GET_DEVICE_FD, (void *)req->bdf);
	if (rc < 0) {
		UPMD_ERR(IOAS_LOG, "%s: VFIO_GROUP_GET_DEVICE_FD failed: %s%s", req->bdf, strerror(-rc),
			 rc == -ENODEV ? " (the device is not in that IOMMU group)" : "");
		goto err_put_group;
	}
	d->fd = rc;
	if (joined) {
		/* A new group may bring reserved regions of its own. */
		rc = type1_read_ranges(ioas, &g);
		if (rc == 0)
			rc = geom_narrow(ioas, &g);
		if (rc == 0 && first)
			rc = type1_replay(ioas, &g);
		if (rc == 0)
			rc = space_restrict(ioas, &g);
		if (rc < 0)
			goto err_close_dev;
		geom_commit(ioas, &g);
	}
	return 0;
err_close_dev:
	/* Before the group is put: a group with an open device cannot leave. */
	upmd_k_close(d->fd);
	d->fd = -1;
err_put_group:
	type1_group_put(ioas, d->group);
	d->group = -1;
	return rc;
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

/*
 * A detach can widen what the kernel allows (the device's reserved regions
 * go), but the IOAS keeps its narrower ranges (see ioas_geom), so nothing
 * is re-read here.
 */
static void dev_release(struct upmd_ioas *ioas, unsigned i)
{
	struct ioas_dev *d = &ioas->devs[i];

	if (ioas->kind == UPMD_IOAS_BACKEND_IOMMUFD)
		iommufd_dev_detach(d);
	upmd_k_close(d->fd);
	if (d->group >= 0)
		type1_group_put(ioas, d->group);
	memmove(d, d + 1, (ioas->ndevs - i - 1) * sizeof(*d));
	ioas->ndevs--;
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
