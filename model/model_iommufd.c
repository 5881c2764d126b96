/* The model's /dev/iommu: objects and ids, IOAS mappings with the kernel's checks, pinned-page accounting, device attach and DMA translation. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "model_private.h"

/*
 * Every rule here follows Linux 6.12 drivers/iommu/iommufd (main.c,
 * ioas.c, io_pagetable.c, pages.c, device.c, hw_pagetable.c); the
 * function named in a comment is the one that decides the answer. The
 * conformance suite compares these answers with the real kernel's.
 */

#define ULONG_MAX_ UINT64_MAX

/* ---- objects ---------------------------------------------------------------- */

struct model_ictx *model_ictx_new(struct upmd_model *m)
{
	struct model_ictx *ictx = calloc(1, sizeof(*ictx));

	if (!ictx)
		return NULL;
	ictx->m = m;
	ictx->refs = 1;
	ictx->fd_open = true;
	ictx->account_mode = ACCT_USER;
	ictx->next = m->ictxs;
	m->ictxs = ictx;
	return ictx;
}

/* xa_alloc with XA_FLAGS_ALLOC1: the lowest free id, from 1. */
static int obj_add(struct model_ictx *ictx, struct model_obj *obj)
{
	uint32_t id;

	for (id = 1; id < ictx->nobjs; id++)
		if (!ictx->objs[id])
			break;
	if (id >= ictx->nobjs) {
		uint32_t n = ictx->nobjs ? ictx->nobjs * 2 : 16;
		struct model_obj **t = realloc(ictx->objs, n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		memset(t + ictx->nobjs, 0, (n - ictx->nobjs) * sizeof(*t));
		ictx->objs = t;
		if (id == 0)
			id = 1;
		ictx->nobjs = n;
	}
	obj->id = id;
	ictx->objs[id] = obj;
	return 0;
}

static void obj_remove(struct model_ictx *ictx, struct model_obj *obj)
{
	if (obj->id < ictx->nobjs && ictx->objs[obj->id] == obj)
		ictx->objs[obj->id] = NULL;
}

static struct model_obj *obj_get(struct model_ictx *ictx, uint32_t id, enum model_obj_type type)
{
	struct model_obj *o = id < ictx->nobjs ? ictx->objs[id] : NULL;

	/* iommufd_get_object: a missing id or one of another type is ENOENT. */
	if (!o || (type && o->type != type))
		return NULL;
	return o;
}

unsigned model_ictx_objects(struct upmd_model *m)
{
	struct model_ictx *ictx;
	unsigned n = 0;
	uint32_t i;

	for (ictx = m->ictxs; ictx; ictx = ictx->next)
		for (i = 1; i < ictx->nobjs; i++)
			n += ictx->objs[i] != NULL;
	return n;
}

unsigned model_ictx_mappings(struct upmd_model *m, struct upmd_model_mapping *out, unsigned max, unsigned n)
{
	struct model_ictx *ictx;
	uint32_t i;
	unsigned j;

	for (ictx = m->ictxs; ictx; ictx = ictx->next)
		for (i = 1; i < ictx->nobjs; i++) {
			struct model_ioas *ioas;

			if (!ictx->objs[i] || ictx->objs[i]->type != MOBJ_IOAS)
				continue;
			ioas = (struct model_ioas *)ictx->objs[i];
			pthread_rwlock_rdlock(&ioas->rw);
			for (j = 0; j < ioas->nareas; j++, n++) {
				const struct model_area *a = &ioas->areas[j];

				if (n >= max)
					continue;
				out[n] = (struct upmd_model_mapping){
					.ioas_id = ioas->obj.id,
					.prot = ((a->prot & IOMMU_IOAS_MAP_READABLE) ? UPMD_MODEL_MAP_READ : 0) |
						((a->prot & IOMMU_IOAS_MAP_WRITEABLE) ? UPMD_MODEL_MAP_WRITE : 0),
					.iova = a->iova,
					.len = a->last - a->iova + 1,
					.va = a->pages->is_file ? 0 : a->pages->base + a->start_byte,
				};
			}
			pthread_rwlock_unlock(&ioas->rw);
		}
	return n;
}

/* ---- accounting and pinning ----------------------------------------------- */

int model_charge(struct upmd_model *m, int acct, uint64_t npages)
{
	struct rlimit rl;
	uint64_t limit;

	if (acct == ACCT_NONE)
		return 0;
	/* incr_user_locked_vm / vfio_lock_acct: the limit is read at pin time. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		limit = UINT64_MAX;
	else
		limit = (uint64_t)rl.rlim_cur / MODEL_PAGE;
	if (m->charged[acct] + npages > limit || m->charged[acct] + npages < npages)
		return -ENOMEM;
	m->charged[acct] += npages;
	return 0;
}

void model_uncharge(struct upmd_model *m, int acct, uint64_t npages)
{
	if (acct != ACCT_NONE)
		m->charged[acct] -= npages;
}

/*
 * pin_user_pages(FOLL_LONGTERM [| FOLL_WRITE]) fails with EFAULT on a
 * hole, on a VMA without read (or write) permission and on VM_IO/PFNMAP
 * VMAs such as a vfio BAR mapping. /proc/self/maps tells all of that
 * without touching the memory.
 */
int model_pin_check(struct upmd_model *m, uintptr_t va, uint64_t len, bool write)
{
	struct model_barmap *bm;
	uintptr_t cur = va, end = va + len;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (len == 0 || end < va)
		return -EFAULT;
	for (bm = m->barmaps; bm; bm = bm->next)
		if (bm->start < end && va < bm->end)
			return -EFAULT;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -EFAULT;
	/* Lines are in address order; a file path may make one long. */
	while (cur < end && getline(&line, &cap, f) > 0) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (hi <= cur)
			continue;
		if (lo > cur)
			break;	/* a hole at cur */
		if (strstr(line, "[vvar]") || strstr(line, "[vsyscall]") ||
		    perms[write ? 1 : 0] == '-')
			break;
		cur = hi;
	}
	free(line);
	fclose(f);
	return cur >= end ? 0 : -EFAULT;
}

static int pages_pin(struct upmd_model *m, struct model_pages *p)
{
	int rc;

	if (p->pin_users++)
		return 0;
	if (!p->is_file) {
		rc = model_pin_check(m, p->base, p->npages * MODEL_PAGE, p->writable);
		if (rc < 0)
			goto err;
	}
	rc = model_charge(m, p->acct, p->npages);
	if (rc < 0)
		goto err;
	m->pinned_pages += p->npages;
	return 0;
err:
	p->pin_users--;
	return rc;
}

static void pages_unpin(struct upmd_model *m, struct model_pages *p)
{
	if (--p->pin_users)
		return;
	model_uncharge(m, p->acct, p->npages);
	m->pinned_pages -= p->npages;
}

static void pages_put(struct model_pages *p)
{
	if (--p->refs)
		return;
	if (p->is_file)
		munmap((void *)p->base, p->npages * MODEL_PAGE);
	free(p);
}

/* ---- IOAS geometry ----------------------------------------------------------- */

static uint64_t ioas_align(const struct model_ioas *ioas)
{
	/* iopt_init_table starts at 1; a domain (4 KiB pages here) or
	 * HUGE_PAGES=0 raises it to PAGE_SIZE. */
	return ioas->ndomains || ioas->disable_large_pages ? MODEL_PAGE : 1;
}

static bool ioas_has_rid_dev(struct model_ioas *ioas)
{
	struct model_ictx *ictx = ioas->ictx;
	uint32_t i;

	for (i = 1; i < ictx->nobjs; i++) {
		struct model_obj *o = ictx->objs[i];

		if (o && o->type == MOBJ_DEVICE) {
			struct model_idev *idev = (struct model_idev *)o;

			if (idev->hwpt && idev->hwpt->ioas == ioas)
				return true;
		}
	}
	return false;
}

/* The reserved IOVA of @ioas: the aperture's outside once a domain
 * exists, the MSI window once a device is attached (not by PASID). */
static unsigned ioas_reserved(struct model_ioas *ioas, struct model_range r[2])
{
	unsigned aw = ioas->ictx->m->aw_bits, n = 0;

	if (ioas_has_rid_dev(ioas))
		r[n++] = (struct model_range){ MODEL_MSI_FIRST, MODEL_MSI_LAST };
	if (ioas->ndomains && aw < 64)
		r[n++] = (struct model_range){ 1ULL << aw, ULONG_MAX_ };
	return n;
}

static bool reserved_hits(struct model_ioas *ioas, uint64_t start, uint64_t last)
{
	struct model_range r[2];
	unsigned i, n = ioas_reserved(ioas, r);

	for (i = 0; i < n; i++)
		if (r[i].start <= last && start <= r[i].last)
			return true;
	return false;
}

/* Index of the first area with last >= @iova. */
static unsigned area_lower(struct model_ioas *ioas, uint64_t iova)
{
	unsigned lo = 0, hi = ioas->nareas;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (ioas->areas[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct model_area *area_first(struct model_ioas *ioas, uint64_t start, uint64_t last)
{
	unsigned i = area_lower(ioas, start);

	if (i < ioas->nareas && ioas->areas[i].iova <= last)
		return &ioas->areas[i];
	return NULL;
}

/* iopt_reserve_iova: a new reservation may not cover an area or an
 * allowed range. */
static int reserve_check(struct model_ioas *ioas, uint64_t start, uint64_t last)
{
	unsigned i;

	if (area_first(ioas, start, last))
		return -EADDRINUSE;
	for (i = 0; i < ioas->nallowed; i++)
		if (ioas->allowed[i].start <= last && start <= ioas->allowed[i].last)
			return -EADDRINUSE;
	return 0;
}

static int area_insert(struct model_ioas *ioas, const struct model_area *a)
{
	unsigned i;

	if (ioas->nareas == ioas->cap) {
		unsigned n = ioas->cap ? ioas->cap * 2 : 16;
		struct model_area *t = realloc(ioas->areas, n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		ioas->areas = t;
		ioas->cap = n;
	}
	i = area_lower(ioas, a->iova);
	memmove(&ioas->areas[i + 1], &ioas->areas[i], (ioas->nareas - i) * sizeof(*a));
	ioas->areas[i] = *a;
	ioas->nareas++;
	return 0;
}

static void area_remove(struct model_ioas *ioas, unsigned i)
{
	struct upmd_model *m = ioas->ictx->m;
	struct model_pages *p = ioas->areas[i].pages;

	if (ioas->ndomains)
		pages_unpin(m, p);
	pages_put(p);
	memmove(&ioas->areas[i], &ioas->areas[i + 1], (ioas->nareas - i - 1) * sizeof(ioas->areas[0]));
	ioas->nareas--;
}

/* iopt_check_iova */
static int check_iova(struct model_ioas *ioas, uint64_t iova, uint64_t length)
{
	uint64_t last;

	if (iova & (ioas_align(ioas) - 1))
		return -EINVAL;
	if (__builtin_add_overflow(iova, length - 1, &last))
		return -EOVERFLOW;
	if (reserved_hits(ioas, iova, last))
		return -EINVAL;
	if (area_first(ioas, iova, last))
		return -EEXIST;
	return 0;
}

static uint64_t roundup_pow2(uint64_t v)
{
	return v <= 1 ? 1 : 1ULL << (64 - __builtin_clzll(v - 1));
}

/* The spans of [lo, hi] not covered by reserved ranges or areas. */
static bool fit_in_holes(struct model_ioas *ioas, uint64_t lo, uint64_t hi, uint64_t length,
			 uint64_t align, uint64_t page_offset, uint64_t *out)
{
	struct model_range used[2 + 1] = { 0 };
	struct model_range r[2] = { 0 };
	unsigned nr = ioas_reserved(ioas, r), i, ai;
	uint64_t cur = lo;

	/* Walk areas and reserved ranges in address order together. */
	memcpy(used, r, sizeof(r));
	if (nr == 2 && used[1].start < used[0].start) {
		struct model_range t = used[0];

		used[0] = used[1];
		used[1] = t;
	}
	ai = area_lower(ioas, lo);
	i = 0;
	for (;;) {
		uint64_t next_start = ULONG_MAX_, next_last = 0, hole_last, start;
		bool have = false;

		while (i < nr && used[i].last < cur)
			i++;
		while (ai < ioas->nareas && ioas->areas[ai].last < cur)
			ai++;
		if (i < nr) {
			next_start = used[i].start;
			next_last = used[i].last;
			have = true;
		}
		if (ai < ioas->nareas && (!have || ioas->areas[ai].iova < next_start)) {
			next_start = ioas->areas[ai].iova;
			next_last = ioas->areas[ai].last;
			have = true;
		}
		if (have && next_start <= cur) {
			if (next_last >= hi)
				return false;
			cur = next_last + 1;
			continue;
		}
		hole_last = have && next_start <= hi ? next_start - 1 : hi;
		/* __alloc_iova_check_hole */
		if (hole_last - cur >= length - 1) {
			start = UPMD_ALIGN_UP(cur, align) | page_offset;
			if (start >= cur && start <= hole_last && hole_last - start >= length - 1) {
				*out = start;
				return true;
			}
		}
		if (!have || next_start > hi || next_last >= hi)
			return false;
		cur = next_last + 1;
	}
}

/* iopt_alloc_iova: first fit from the bottom, never IOVA 0. */
static int alloc_iova(struct model_ioas *ioas, uint64_t uptr, uint64_t length, uint64_t *iova)
{
	uint64_t page_offset = uptr % MODEL_PAGE, align, lo = MODEL_PAGE, hi = ULONG_MAX_ - MODEL_PAGE;
	unsigned i;

	if (length == 0 || length >= ULONG_MAX_ / 2)
		return -EOVERFLOW;
	align = roundup_pow2(length);
	if (uptr)
		align = UPMD_MIN(align, 1ULL << __builtin_ctzll(uptr));
	if (align < ioas_align(ioas))
		return -EINVAL;
	if (!ioas->nallowed) {
		uint64_t start = UPMD_ALIGN_UP(lo, align) | page_offset;

		if (start <= hi && hi - start >= length - 1 &&
		    fit_in_holes(ioas, start, hi, length, align, page_offset, iova))
			return 0;
		return -ENOSPC;
	}
	for (i = 0; i < ioas->nallowed; i++) {
		uint64_t s = UPMD_MAX(ioas->allowed[i].start, lo);
		uint64_t l = UPMD_MIN(ioas->allowed[i].last, hi);

		if (s > l || l - s < length - 1)
			continue;
		s = UPMD_ALIGN_UP(s, align) | page_offset;
		if (s > l || l - s < length - 1)
			continue;
		if (fit_in_holes(ioas, s, l, length, align, page_offset, iova))
			return 0;
	}
	return -ENOSPC;
}

/* ---- the IOAS object ------------------------------------------------------------ */

static struct model_ioas *ioas_new(struct model_ictx *ictx)
{
	struct model_ioas *ioas = calloc(1, sizeof(*ioas));

	if (!ioas)
		return NULL;
	ioas->obj.type = MOBJ_IOAS;
	ioas->ictx = ictx;
	pthread_rwlock_init(&ioas->rw, NULL);
	if (obj_add(ictx, &ioas->obj) < 0) {
		pthread_rwlock_destroy(&ioas->rw);
		free(ioas);
		return NULL;
	}
	return ioas;
}

static void ioas_free(struct model_ioas *ioas)
{
	pthread_rwlock_wrlock(&ioas->rw);
	while (ioas->nareas)
		area_remove(ioas, ioas->nareas - 1);
	pthread_rwlock_unlock(&ioas->rw);
	obj_remove(ioas->ictx, &ioas->obj);
	pthread_rwlock_destroy(&ioas->rw);
	free(ioas->areas);
	free(ioas->allowed);
	free(ioas);
}

static struct model_ioas *get_ioas(struct model_ictx *ictx, uint32_t id)
{
	return (struct model_ioas *)obj_get(ictx, id, MOBJ_IOAS);
}

/* ---- ioctls --------------------------------------------------------------------- */

static int cmd_ioas_alloc(struct model_ictx *ictx, struct iommu_ioas_alloc *cmd)
{
	struct model_ioas *ioas;

	if (cmd->flags)
		return -EOPNOTSUPP;
	ioas = ioas_new(ictx);
	if (!ioas)
		return -ENOMEM;
	cmd->out_ioas_id = ioas->obj.id;
	return 0;
}

static void hwpt_destroy(struct model_hwpt *hwpt);

/* iommufd_destroy -> iommufd_object_remove: EBUSY while anything holds it. */
static int cmd_destroy(struct model_ictx *ictx, struct iommu_destroy *cmd)
{
	struct model_obj *o = obj_get(ictx, cmd->id, 0);

	if (!o)
		return -ENOENT;
	if (o->users)
		return -EBUSY;
	switch (o->type) {
	case MOBJ_IOAS:
		ioas_free((struct model_ioas *)o);
		break;
	case MOBJ_HWPT:
		hwpt_destroy((struct model_hwpt *)o);
		break;
	case MOBJ_DEVICE:
		/* A device object always has its vfio user while it exists. */
		return -EBUSY;
	}
	return 0;
}

/* iommufd_ioas_iova_ranges: the holes between reserved ranges (the
 * allowed list narrows only what the kernel picks, not this answer). */
static int cmd_iova_ranges(struct model_ictx *ictx, struct iommu_ioas_iova_ranges *cmd)
{
	struct iommu_iova_range *out = (void *)(uintptr_t)cmd->allowed_iovas;
	struct model_range r[2], holes[3];
	struct model_ioas *ioas;
	uint32_t max, n = 0, i;
	unsigned nr, k;
	uint64_t cur = 0;
	bool end = false;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	ioas = get_ioas(ictx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	nr = ioas_reserved(ioas, r);
	if (nr == 2 && r[1].start < r[0].start) {
		struct model_range t = r[0];

		r[0] = r[1];
		r[1] = t;
	}
	for (k = 0; k < nr && !end; k++) {
		if (r[k].start > cur)
			holes[n++] = (struct model_range){ cur, r[k].start - 1 };
		if (r[k].last == ULONG_MAX_)
			end = true;
		else
			cur = UPMD_MAX(cur, r[k].last + 1);
	}
	if (!end)
		holes[n++] = (struct model_range){ cur, ULONG_MAX_ };
	max = cmd->num_iovas;
	for (i = 0; i < n && i < max; i++) {
		if (!out)
			return -EFAULT;
		out[i].start = holes[i].start;
		out[i].last = holes[i].last;
	}
	cmd->num_iovas = n;
	cmd->out_iova_alignment = ioas_align(ioas);
	return n > max ? -EMSGSIZE : 0;
}

static int cmd_allow_iovas(struct model_ictx *ictx, struct iommu_ioas_allow_iovas *cmd)
{
	const struct iommu_iova_range *in = (const void *)(uintptr_t)cmd->allowed_iovas;
	struct model_range *nr = NULL, r[2];
	struct model_ioas *ioas;
	unsigned i, j, nres;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	ioas = get_ioas(ictx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	if (cmd->num_iovas) {
		if (!in)
			return -EFAULT;
		nr = calloc(cmd->num_iovas, sizeof(*nr));
		if (!nr)
			return -ENOMEM;
	}
	/* iommufd_ioas_load_iovas: start < last, no overlap among them. */
	for (i = 0; i < cmd->num_iovas; i++) {
		if (in[i].start >= in[i].last)
			goto einval;
		for (j = 0; j < i; j++)
			if (nr[j].start <= in[i].last && in[i].start <= nr[j].last)
				goto einval;
		nr[i].start = in[i].start;
		nr[i].last = in[i].last;
	}
	/* iopt_set_allow_iova: none may cover a reserved range. */
	nres = ioas_reserved(ioas, r);
	for (i = 0; i < cmd->num_iovas; i++)
		for (j = 0; j < nres; j++)
			if (r[j].start <= nr[i].last && nr[i].start <= r[j].last) {
				free(nr);
				return -EADDRINUSE;
			}
	/* Sorted, so the allocator walks them bottom up like the tree. */
	for (i = 1; i < cmd->num_iovas; i++)
		for (j = i; j > 0 && nr[j].start < nr[j - 1].start; j--) {
			struct model_range t = nr[j];

			nr[j] = nr[j - 1];
			nr[j - 1] = t;
		}
	free(ioas->allowed);
	ioas->allowed = nr;
	ioas->nallowed = cmd->num_iovas;
	return 0;
einval:
	free(nr);
	return -EINVAL;
}

/* Map new pages at *iova (iopt_map_pages). The pages reference is the caller's. */
static int ioas_map_pages(struct model_ioas *ioas, struct model_pages **pl, uint64_t *starts,
			  uint64_t *lens, unsigned n, uint64_t length, uint64_t *iova, uint32_t prot,
			  bool alloc, uint64_t uptr_hint)
{
	struct upmd_model *m = ioas->ictx->m;
	uint64_t align, cur;
	unsigned i, done = 0;
	int rc;

	pthread_rwlock_wrlock(&ioas->rw);
	align = ioas_align(ioas);
	/* iopt_alloc_area_pages */
	if ((length & (align - 1)) || !length) {
		rc = -EINVAL;
		goto out;
	}
	rc = alloc ? alloc_iova(ioas, uptr_hint, length, iova) : check_iova(ioas, *iova, length);
	if (rc < 0)
		goto out;
	/* iopt_insert_area */
	for (i = 0; i < n; i++) {
		if ((prot & IOMMU_IOAS_MAP_WRITEABLE) && !pl[i]->writable) {
			rc = -EPERM;
			goto out;
		}
		if ((starts[i] % MODEL_PAGE) & (align - 1)) {
			rc = -EINVAL;
			goto out;
		}
	}
	/* iopt_fill_domains_pages: pins only when a domain exists. */
	if (ioas->ndomains) {
		for (done = 0; done < n; done++) {
			rc = pages_pin(m, pl[done]);
			if (rc < 0)
				goto err_unpin;
		}
	}
	cur = *iova;
	for (i = 0; i < n; i++) {
		struct model_area a = {
			.iova = cur,
			.last = cur + lens[i] - 1,
			.start_byte = starts[i],
			.pages = pl[i],
			.prot = prot,
		};

		rc = area_insert(ioas, &a);
		if (rc < 0) {
			/* Only allocation can fail here; undo what went in. */
			while (i--)
				area_remove(ioas, area_lower(ioas, cur - lens[i]));
			goto out;
		}
		pl[i]->refs++;
		cur += lens[i];
	}
	rc = 0;
	goto out;
err_unpin:
	while (done--)
		pages_unpin(m, pl[done]);
out:
	pthread_rwlock_unlock(&ioas->rw);
	return rc;
}

static struct model_pages *pages_new(struct model_ictx *ictx, uintptr_t uptr, uint64_t length,
				     bool writable, int *rc)
{
	struct model_pages *p;
	uint64_t end;

	/* iopt_alloc_pages */
	if (length == 0 || length > SIZE_MAX - MODEL_PAGE) {
		*rc = -EINVAL;
		return NULL;
	}
	if (__builtin_add_overflow((uint64_t)uptr, length, &end)) {
		*rc = -EOVERFLOW;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		*rc = -ENOMEM;
		return NULL;
	}
	p->base = UPMD_ALIGN_DOWN(uptr, MODEL_PAGE);
	p->npages = (UPMD_ALIGN_UP(end, MODEL_PAGE) - p->base) / MODEL_PAGE;
	p->writable = writable;
	/* Decided at map time like iopt_alloc_pages: CAP_IPC_LOCK is exempt. */
	p->acct = model_has_cap(ictx->m, CAP_IPC_LOCK) ? ACCT_NONE : ictx->account_mode;
	return p;
}

static int cmd_ioas_map(struct model_ictx *ictx, struct iommu_ioas_map *cmd)
{
	const uint32_t known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
			       IOMMU_IOAS_MAP_READABLE;
	struct model_pages *p;
	struct model_ioas *ioas;
	uint64_t iova = cmd->iova, start, len;
	int rc;

	/* iommufd_ioas_map */
	if ((cmd->flags & ~known) || cmd->__reserved)
		return -EOPNOTSUPP;
	if (cmd->iova >= ULONG_MAX_ || cmd->length >= ULONG_MAX_)
		return -EOVERFLOW;
	if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
		return -EINVAL;
	ioas = get_ioas(ictx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	p = pages_new(ictx, (uintptr_t)cmd->user_va, cmd->length,
		      cmd->flags & IOMMU_IOAS_MAP_WRITEABLE, &rc);
	if (!p)
		return rc;
	p->refs = 1;
	start = cmd->user_va - p->base;
	len = cmd->length;
	rc = ioas_map_pages(ioas, &p, &start, &len, 1, cmd->length, &iova,
			    cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE),
			    !(cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA), cmd->user_va);
	pages_put(p);
	if (rc < 0)
		return rc;
	cmd->iova = iova;
	return 0;
}

/* IOMMU_IOAS_MAP_FILE (6.13+): the model maps the file itself so DMA
 * reaches the same pages the process sees through its own mappings. */
static int cmd_ioas_map_file(struct model_ictx *ictx, struct iommu_ioas_map_file *cmd)
{
	const uint32_t known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
			       IOMMU_IOAS_MAP_READABLE;
	bool writable = cmd->flags & IOMMU_IOAS_MAP_WRITEABLE;
	struct model_pages *p;
	struct model_ioas *ioas;
	uint64_t iova = cmd->iova, start_byte, end, len;
	uint64_t map_off;
	struct stat st;
	void *map;
	int rc;

	if (cmd->flags & ~known)
		return -EOPNOTSUPP;
	if (cmd->iova >= ULONG_MAX_ || cmd->length >= ULONG_MAX_)
		return -EOVERFLOW;
	if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
		return -EINVAL;
	ioas = get_ioas(ictx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	if (cmd->fd < 0 || fstat(cmd->fd, &st) < 0)
		return -EBADF;
	if (cmd->length == 0 || cmd->length > SIZE_MAX - MODEL_PAGE)
		return -EINVAL;
	if (__builtin_add_overflow(cmd->start, cmd->length, &end))
		return -EOVERFLOW;
	/* memfd_pin_folios takes shmem and hugetlbfs files only. */
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (end > (uint64_t)st.st_size)
		return -EINVAL;
	map_off = UPMD_ALIGN_DOWN(cmd->start, MODEL_PAGE);
	start_byte = cmd->start - map_off;
	len = UPMD_ALIGN_UP(end, MODEL_PAGE) - map_off;
	map = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, cmd->fd,
		   (off_t)map_off);
	if (map == MAP_FAILED)
		return errno == EACCES ? -EPERM : -errno;
	p = calloc(1, sizeof(*p));
	if (!p) {
		munmap(map, len);
		return -ENOMEM;
	}
	p->base = (uintptr_t)map;
	p->npages = len / MODEL_PAGE;
	p->writable = writable;
	p->is_file = true;
	p->acct = model_has_cap(ictx->m, CAP_IPC_LOCK) ? ACCT_NONE : ictx->account_mode;
	p->refs = 1;
	rc = ioas_map_pages(ioas, &p, &start_byte, &(uint64_t){ cmd->length }, 1, cmd->length,
			    &iova, cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE),
			    /* for a file the allocator's alignment hint is the
			     * offset (pages->start + start_byte) */
			    !(cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA), cmd->start);
	pages_put(p);
	if (rc < 0)
		return rc;
	cmd->iova = iova;
	return 0;
}

/*
 * iopt_unmap_iova_range: areas go lowest first while each lies wholly in
 * [start, last]. An area that sticks out either side stops the walk with
 * ENOENT (the kernel does not split IOAS areas, and it does NOT undo the
 * whole areas already removed before it). Nothing in range: ENOENT.
 */
static int unmap_range(struct model_ioas *ioas, uint64_t start, uint64_t last, uint64_t *unmapped)
{
	uint64_t bytes = 0;
	int rc = -ENOENT;

	pthread_rwlock_wrlock(&ioas->rw);
	for (;;) {
		unsigned i = area_lower(ioas, start);
		struct model_area *a;

		if (i >= ioas->nareas || ioas->areas[i].iova > last)
			break;
		a = &ioas->areas[i];
		if (a->iova < start || a->last > last) {
			rc = -ENOENT;
			goto out;
		}
		bytes += a->last - a->iova + 1;
		area_remove(ioas, i);
	}
	if (bytes)
		rc = 0;
out:
	pthread_rwlock_unlock(&ioas->rw);
	*unmapped = bytes;
	return rc;
}

static int cmd_ioas_unmap(struct model_ictx *ictx, struct iommu_ioas_unmap *cmd)
{
	struct model_ioas *ioas = get_ioas(ictx, cmd->ioas_id);
	uint64_t unmapped = 0, last;
	int rc;

	if (!ioas)
		return -ENOENT;
	if (cmd->iova == 0 && cmd->length == UINT64_MAX) {
		/* iopt_unmap_all: an empty IOAS unmaps "all" successfully. */
		rc = unmap_range(ioas, 0, ULONG_MAX_, &unmapped);
		if (rc == -ENOENT)
			rc = 0;
	} else {
		if (cmd->iova >= ULONG_MAX_ || cmd->length >= ULONG_MAX_)
			return -EOVERFLOW;
		if (!cmd->length)
			return -EINVAL;
		if (__builtin_add_overflow(cmd->iova, cmd->length - 1, &last))
			return -EOVERFLOW;
		rc = unmap_range(ioas, cmd->iova, last, &unmapped);
	}
	if (rc < 0)
		return rc;
	cmd->length = unmapped;
	return 0;
}

/* iommufd_ioas_copy: new areas over the same pages. */
static int cmd_ioas_copy(struct model_ictx *ictx, struct iommu_ioas_copy *cmd)
{
	const uint32_t known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
			       IOMMU_IOAS_MAP_READABLE;
	struct model_pages **pl = NULL;
	uint64_t *starts = NULL, *lens = NULL, cur, last, iova;
	struct model_ioas *src, *dst;
	unsigned n = 0, i;
	int rc;

	if (cmd->flags & ~known)
		return -EOPNOTSUPP;
	if (cmd->length >= ULONG_MAX_ || cmd->src_iova >= ULONG_MAX_ || cmd->dst_iova >= ULONG_MAX_)
		return -EOVERFLOW;
	if (!(cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
		return -EINVAL;
	src = get_ioas(ictx, cmd->src_ioas_id);
	if (!src)
		return -ENOENT;
	/* iopt_get_pages: contiguous areas covering the whole range. */
	if (!cmd->length)
		return -EINVAL;
	if (__builtin_add_overflow(cmd->src_iova, cmd->length - 1, &last))
		return -EOVERFLOW;
	pthread_rwlock_rdlock(&src->rw);
	for (cur = cmd->src_iova, i = area_lower(src, cur); cur <= last; i++) {
		struct model_area *a = i < src->nareas ? &src->areas[i] : NULL;
		uint64_t end;

		if (!a || a->iova > cur) {
			rc = -ENOENT;
			goto err_unlock;
		}
		pl = realloc(pl, (n + 1) * sizeof(*pl));
		starts = realloc(starts, (n + 1) * sizeof(*starts));
		lens = realloc(lens, (n + 1) * sizeof(*lens));
		if (!pl || !starts || !lens) {
			rc = -ENOMEM;
			goto err_unlock;
		}
		end = UPMD_MIN(a->last, last);
		pl[n] = a->pages;
		starts[n] = a->start_byte + (cur - a->iova);
		lens[n] = end - cur + 1;
		a->pages->refs++;
		n++;
		if (end == last)
			break;
		cur = end + 1;
	}
	pthread_rwlock_unlock(&src->rw);
	dst = get_ioas(ictx, cmd->dst_ioas_id);
	if (!dst) {
		rc = -ENOENT;
		goto out;
	}
	iova = cmd->dst_iova;
	rc = ioas_map_pages(dst, pl, starts, lens, n, cmd->length, &iova,
			    cmd->flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE),
			    !(cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA), pl[0]->base + starts[0]);
	if (rc == 0)
		cmd->dst_iova = iova;
	goto out;
err_unlock:
	pthread_rwlock_unlock(&src->rw);
out:
	for (i = 0; i < n; i++)
		pages_put(pl[i]);
	free(pl);
	free(starts);
	free(lens);
	return rc;
}

static int cmd_option(struct model_ictx *ictx, struct iommu_option *cmd)
{
	struct model_ioas *ioas;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	switch (cmd->option_id) {
	case IOMMU_OPTION_RLIMIT_MODE:
		/* iommufd_option_rlimit_mode */
		if (cmd->object_id)
			return -EOPNOTSUPP;
		if (cmd->op == IOMMU_OPTION_OP_GET) {
			cmd->val64 = ictx->account_mode == ACCT_MM;
			return 0;
		}
		if (cmd->op != IOMMU_OPTION_OP_SET)
			return -EOPNOTSUPP;
		if (!model_has_cap(ictx->m, CAP_SYS_RESOURCE))
			return -EPERM;
		/* Only an empty context may change how it charges. */
		for (uint32_t i = 1; i < ictx->nobjs; i++)
			if (ictx->objs[i])
				return -EBUSY;
		if (cmd->val64 > 1)
			return -EINVAL;
		ictx->account_mode = cmd->val64 ? ACCT_MM : ACCT_USER;
		return 0;
	case IOMMU_OPTION_HUGE_PAGES:
		/* iommufd_ioas_option: the object first, then the op. */
		ioas = get_ioas(ictx, cmd->object_id);
		if (!ioas)
			return -ENOENT;
		if (cmd->op == IOMMU_OPTION_OP_GET) {
			cmd->val64 = !ioas->disable_large_pages;
			return 0;
		}
		if (cmd->op != IOMMU_OPTION_OP_SET)
			return -EOPNOTSUPP;
		if (cmd->val64 == 1) {
			ioas->disable_large_pages = false;
			return 0;
		}
		if (cmd->val64 != 0)
			return -EINVAL;
		/* iopt_disable_large_pages */
		if (ioas->disable_large_pages)
			return 0;
		if (ioas->ndomains && ioas->nareas)
			return -EINVAL;
		if (ioas_align(ioas) < MODEL_PAGE) {
			unsigned i;

			/* iopt_check_iova_alignment */
			for (i = 0; i < ioas->nareas; i++) {
				struct model_area *a = &ioas->areas[i];

				if ((a->iova | (a->last + 1) | a->start_byte) & (MODEL_PAGE - 1))
					return -EADDRINUSE;
			}
		}
		ioas->disable_large_pages = true;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

/*
 * IOMMU_GET_HW_INFO (iommufd_get_hw_info). Its struct grew in 6.15: the
 * u32 __reserved after out_data_type became out_max_pasid_log2 plus three
 * reserved bytes. The 6.12 machine (nopasid) checks the whole word.
 */
struct model_hw_info {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t out_data_type;
	uint8_t out_max_pasid_log2;	/* 6.12: first byte of __reserved */
	uint8_t __reserved[3];
	uint64_t out_capabilities;
};
_Static_assert(sizeof(struct model_hw_info) == 40, "iommu_hw_info ABI");

/* struct iommu_hw_info_vtd */
struct model_hw_info_vtd {
	uint32_t flags;
	uint32_t __reserved;
	uint64_t cap_reg;
	uint64_t ecap_reg;
};

static int cmd_hw_info(struct model_ictx *ictx, struct model_hw_info *cmd)
{
	bool v612 = ictx->m->flags & UPMD_MODEL_F_NO_PASID;
	unsigned aw = ictx->m->aw_bits;
	struct model_hw_info_vtd vtd = { 0 };
	struct model_idev *idev;
	uint8_t *out = (uint8_t *)(uintptr_t)cmd->data_uptr;
	size_t n;

	if (cmd->flags || cmd->__reserved[0] || cmd->__reserved[1] || cmd->__reserved[2] ||
	    (v612 && cmd->out_max_pasid_log2))
		return -EOPNOTSUPP;
	idev = (struct model_idev *)obj_get(ictx, cmd->dev_id, MOBJ_DEVICE);
	if (!idev)
		return -ENOENT;
	/* Register values in the shape of QEMU's intel-iommu: MGAW = aw - 1,
	 * SAGAW for 3- or 4-level tables, 2 MiB and 1 GiB second-level
	 * pages, caching mode; ecap: queued invalidation, interrupt
	 * remapping with x2APIC, pass-through. Approximate by design. */
	vtd.cap_reg = ((uint64_t)(aw - 1) << 16) | ((aw > 39 ? 0x4ULL : 0x2ULL) << 8) |
		      (3ULL << 34) | (1ULL << 7) | 0x2;
	vtd.ecap_reg = (1ULL << 1) | (1ULL << 3) | (1ULL << 4) | (1ULL << 6);
	if (cmd->data_len) {
		if (!out)
			return -EFAULT;
		n = UPMD_MIN((size_t)cmd->data_len, sizeof(vtd));
		memcpy(out, &vtd, n);
		/* The kernel clears the rest of a bigger user buffer. */
		if (cmd->data_len > n)
			memset(out + n, 0, cmd->data_len - n);
	}
	cmd->data_len = sizeof(vtd);
	cmd->out_data_type = MODEL_HW_INFO_TYPE_INTEL_VTD;
	cmd->out_capabilities = 0;
	if (!v612)
		cmd->out_max_pasid_log2 = idev->dev->pasid_bits;
	return 0;
}

/*
 * The vfio compat ioctls iommufd answers on its own fd (vfio_compat.c).
 * Only the two that need no compat IOAS; the rest find none (ENODEV),
 * since IOMMU_VFIO_IOAS is not modelled.
 */
static int vfio_compat(struct model_ictx *ictx, unsigned long req, void *arg)
{
	(void)ictx;
	switch (req) {
	case VFIO_GET_API_VERSION:
		return VFIO_API_VERSION;
	case VFIO_CHECK_EXTENSION:
		switch ((unsigned long)arg) {
		case VFIO_TYPE1_IOMMU:
		case VFIO_TYPE1v2_IOMMU:
		case MODEL_VFIO_UNMAP_ALL:
			return 1;
		default:
			return 0;
		}
	case VFIO_SET_IOMMU:
	case VFIO_IOMMU_GET_INFO:
	case VFIO_IOMMU_MAP_DMA:
	case VFIO_IOMMU_UNMAP_DMA:
		return -ENODEV;
	default:
		return -ENOTTY;
	}
}

/*
 * iommufd_fops_ioctl: the size word first (EFAULT), an exact ioctl
 * number (else ENOTTY), size >= the struct's first version (EINVAL), any
 * bytes past the struct zero (E2BIG, copy_struct_from_user). The answer
 * is copied back up to the smaller of the two sizes.
 */
struct cmd_op {
	unsigned long req;
	size_t size, min_size;
	int (*fn)(struct model_ictx *ictx, void *cmd);
};

#define OP(req, type, last, fn)                                                \
	{ req, sizeof(type), offsetof(type, last) + sizeof(((type *)0)->last),      \
	  (int (*)(struct model_ictx *, void *))(fn) }

static const struct cmd_op cmd_ops[] = {
	OP(IOMMU_DESTROY, struct iommu_destroy, id, cmd_destroy),
	OP(IOMMU_IOAS_ALLOC, struct iommu_ioas_alloc, out_ioas_id, cmd_ioas_alloc),
	OP(IOMMU_IOAS_ALLOW_IOVAS, struct iommu_ioas_allow_iovas, allowed_iovas, cmd_allow_iovas),
	OP(IOMMU_IOAS_COPY, struct iommu_ioas_copy, src_iova, cmd_ioas_copy),
	OP(IOMMU_IOAS_IOVA_RANGES, struct iommu_ioas_iova_ranges, out_iova_alignment, cmd_iova_ranges),
	OP(IOMMU_IOAS_MAP, struct iommu_ioas_map, iova, cmd_ioas_map),
	OP(IOMMU_IOAS_UNMAP, struct iommu_ioas_unmap, length, cmd_ioas_unmap),
	OP(IOMMU_OPTION, struct iommu_option, val64, cmd_option),
	OP(IOMMU_IOAS_MAP_FILE, struct iommu_ioas_map_file, iova, cmd_ioas_map_file),
	/* 6.12's first version ends at __reserved: offset 32. */
	{ MODEL_IOMMU_GET_HW_INFO, sizeof(struct model_hw_info), 32,
	  (int (*)(struct model_ictx *, void *))cmd_hw_info },
};

int model_iommufd_ioctl(struct model_ictx *ictx, unsigned long req, void *arg)
{
	union {
		struct iommu_destroy destroy;
		struct iommu_ioas_alloc alloc;
		struct iommu_ioas_allow_iovas allow;
		struct iommu_ioas_copy copy;
		struct iommu_ioas_iova_ranges ranges;
		struct iommu_ioas_map map;
		struct iommu_ioas_map_file map_file;
		struct iommu_ioas_unmap unmap;
		struct iommu_option option;
		struct model_hw_info hw_info;
	} buf;
	const struct cmd_op *op = NULL;
	unsigned nr = _IOC_NR(req), i;
	uint32_t user_size;
	int rc;

	if (nr < IOMMUFD_CMD_BASE)
		return vfio_compat(ictx, req, arg);
	/* 6.12 has no IOMMU_IOAS_MAP_FILE: its number is an empty slot. */
	if (req == IOMMU_IOAS_MAP_FILE && (ictx->m->flags & UPMD_MODEL_F_NO_MAP_FILE))
		return -ENOTTY;
	if (!arg)
		return -EFAULT;
	memcpy(&user_size, arg, sizeof(user_size));
	for (i = 0; i < UPMD_DIM(cmd_ops); i++)
		if (cmd_ops[i].req == req)
			op = &cmd_ops[i];
	if (!op)
		return -ENOTTY;
	if (user_size < op->min_size)
		return -EINVAL;
	if (user_size > op->size) {
		const uint8_t *p = arg;
		size_t k;

		for (k = op->size; k < user_size; k++)
			if (p[k])
				return -E2BIG;
	}
	memset(&buf, 0, sizeof(buf));
	memcpy(&buf, arg, UPMD_MIN((size_t)user_size, op->size));
	rc = op->fn(ictx, &buf);
	/* iommufd_ucmd_respond: the answer goes back on success and, for
	 * IOVA_RANGES, with EMSGSIZE so the caller learns the count. */
	if (rc == 0 || (rc == -EMSGSIZE && req == IOMMU_IOAS_IOVA_RANGES))
		memcpy(arg, &buf, UPMD_MIN((size_t)user_size, op->size));
	return rc;
}

/* ---- devices: bind, attach, detach ------------------------------------------ */

int model_idev_bind(struct model_ictx *ictx, struct upmd_model_dev *d, struct model_idev **out)
{
	struct model_idev *idev = calloc(1, sizeof(*idev));

	if (!idev)
		return -ENOMEM;
	idev->obj.type = MOBJ_DEVICE;
	idev->obj.users = 1;	/* vfio holds it until unbind */
	idev->ictx = ictx;
	idev->dev = d;
	if (obj_add(ictx, &idev->obj) < 0) {
		free(idev);
		return -ENOMEM;
	}
	ictx->refs++;
	pthread_rwlock_wrlock(&d->attach_rw);
	d->idev = idev;
	pthread_rwlock_unlock(&d->attach_rw);
	*out = idev;
	return 0;
}

static void hwpt_destroy(struct model_hwpt *hwpt)
{
	struct model_ioas *ioas = hwpt->ioas;
	struct upmd_model *m = ioas->ictx->m;
	unsigned i;

	pthread_rwlock_wrlock(&ioas->rw);
	/* iopt_table_remove_domain: the last domain unpins every area. */
	if (--ioas->ndomains == 0)
		for (i = 0; i < ioas->nareas; i++)
			pages_unpin(m, ioas->areas[i].pages);
	pthread_rwlock_unlock(&ioas->rw);
	ioas->obj.users--;
	obj_remove(ioas->ictx, &hwpt->obj);
	free(hwpt);
}

/* iommufd_hw_pagetable_put: an auto domain goes with its last device. */
static void hwpt_put(struct model_hwpt *hwpt)
{
	hwpt->obj.users--;
	if (--hwpt->ndevs == 0)
		hwpt_destroy(hwpt);
}

static struct model_hwpt *ioas_hwpt(struct model_ioas *ioas)
{
	struct model_ictx *ictx = ioas->ictx;
	uint32_t i;

	for (i = 1; i < ictx->nobjs; i++) {
		struct model_obj *o = ictx->objs[i];

		if (o && o->type == MOBJ_HWPT && ((struct model_hwpt *)o)->ioas == ioas)
			return (struct model_hwpt *)o;
	}
	return NULL;
}

/*
 * iommufd_hwpt_paging_alloc + iopt_table_add_domain for the first device
 * of an IOAS: the MSI window was checked by the caller; the new domain
 * needs 4 KiB-aligned areas (EADDRINUSE), nothing beyond its aperture
 * (EADDRINUSE), and pins every area (EFAULT, ENOMEM).
 */
static int hwpt_new(struct model_ioas *ioas, struct model_hwpt **out)
{
	struct upmd_model *m = ioas->ictx->m;
	struct model_hwpt *hwpt;
	unsigned i, done;
	int rc;

	pthread_rwlock_wrlock(&ioas->rw);
	if (ioas_align(ioas) < MODEL_PAGE)
		for (i = 0; i < ioas->nareas; i++) {
			struct model_area *a = &ioas->areas[i];

			if ((a->iova | (a->last + 1) | (a->start_byte % MODEL_PAGE)) & (MODEL_PAGE - 1)) {
				rc = -EADDRINUSE;
				goto err_unlock;
			}
		}
	if (m->aw_bits < 64) {
		rc = reserve_check(ioas, 1ULL << m->aw_bits, ULONG_MAX_);
		if (rc < 0)
			goto err_unlock;
	}
	if (ioas->ndomains == 0)
		for (done = 0; done < ioas->nareas; done++) {
			rc = pages_pin(m, ioas->areas[done].pages);
			if (rc < 0) {
				while (done--)
					pages_unpin(m, ioas->areas[done].pages);
				goto err_unlock;
			}
		}
	hwpt = calloc(1, sizeof(*hwpt));
	if (!hwpt || obj_add(ioas->ictx, &hwpt->obj) < 0) {
		free(hwpt);
		if (ioas->ndomains == 0)
			for (i = 0; i < ioas->nareas; i++)
				pages_unpin(m, ioas->areas[i].pages);
		rc = -ENOMEM;
		goto err_unlock;
	}
	hwpt->obj.type = MOBJ_HWPT;
	hwpt->ioas = ioas;
	ioas->ndomains++;
	ioas->obj.users++;
	pthread_rwlock_unlock(&ioas->rw);
	*out = hwpt;
	return 0;
err_unlock:
	pthread_rwlock_unlock(&ioas->rw);
	return rc;
}

static struct model_pasid_att *pasid_find(struct model_idev *idev, uint32_t pasid)
{
	unsigned i;

	for (i = 0; i < idev->npasid; i++)
		if (idev->pasid[i].pasid == pasid)
			return &idev->pasid[i];
	return NULL;
}

int model_idev_attach(struct model_idev *idev, uint32_t pasid, bool has_pasid, uint32_t *pt_id)
{
	struct upmd_model_dev *d = idev->dev;
	struct model_hwpt *hwpt = NULL, *old;
	struct model_pasid_att *pa = NULL;
	struct model_obj *o;
	struct model_ioas *ioas;
	bool created = false;
	int rc;

	/* iommufd_device_change_pt */
	o = obj_get(idev->ictx, *pt_id, 0);
	if (!o)
		return -ENOENT;
	if (o->type == MOBJ_HWPT) {
		hwpt = (struct model_hwpt *)o;
		ioas = hwpt->ioas;
	} else if (o->type == MOBJ_IOAS) {
		ioas = (struct model_ioas *)o;
		/* iommufd_device_auto_get_domain: every model device is
		 * compatible with every model domain, so an IOAS has at most
		 * one auto HWPT and all its devices share its id. */
		hwpt = ioas_hwpt(ioas);
	} else {
		return -EINVAL;
	}
	if (has_pasid) {
		pa = pasid_find(idev, pasid);
		old = pa ? pa->hwpt : NULL;
		if (!pa && idev->npasid == MODEL_MAX_PASIDS)
			return -ENOSPC;
	} else {
		old = idev->hwpt;
	}
	if (old && hwpt == old) {
		*pt_id = hwpt->obj.id;
		return 0;
	}
	/* iopt_table_enforce_dev_resv_regions (the RID only): the MSI window
	 * becomes reserved, which no mapping or allowed range may cover. */
	if (!has_pasid && !(old && old->ioas == ioas)) {
		pthread_rwlock_rdlock(&ioas->rw);
		rc = reserve_check(ioas, MODEL_MSI_FIRST, MODEL_MSI_LAST);
		pthread_rwlock_unlock(&ioas->rw);
		if (rc < 0)
			return rc;
	}
	if (!hwpt) {
		rc = hwpt_new(ioas, &hwpt);
		if (rc < 0)
			return rc;
		created = true;
	}
	pthread_rwlock_wrlock(&d->attach_rw);
	if (has_pasid) {
		if (!pa) {
			pa = &idev->pasid[idev->npasid++];
			pa->pasid = pasid;
		}
		pa->hwpt = hwpt;
	} else {
		idev->hwpt = hwpt;
	}
	hwpt->ndevs++;
	hwpt->obj.users++;
	pthread_rwlock_unlock(&d->attach_rw);
	if (old)
		hwpt_put(old);
	(void)created;
	*pt_id = hwpt->obj.id;
	return 0;
}

void model_idev_detach(struct model_idev *idev, uint32_t pasid, bool has_pasid)
{
	struct upmd_model_dev *d = idev->dev;
	struct model_hwpt *old = NULL;

	pthread_rwlock_wrlock(&d->attach_rw);
	if (has_pasid) {
		struct model_pasid_att *pa = pasid_find(idev, pasid);

		if (pa) {
			old = pa->hwpt;
			*pa = idev->pasid[--idev->npasid];
		}
	} else {
		old = idev->hwpt;
		idev->hwpt = NULL;
	}
	pthread_rwlock_unlock(&d->attach_rw);
	if (old)
		hwpt_put(old);
}

void model_idev_unbind(struct model_idev *idev)
{
	struct upmd_model_dev *d = idev->dev;
	struct model_ictx *ictx = idev->ictx;

	while (idev->npasid)
		model_idev_detach(idev, idev->pasid[0].pasid, true);
	model_idev_detach(idev, 0, false);
	pthread_rwlock_wrlock(&d->attach_rw);
	d->idev = NULL;
	pthread_rwlock_unlock(&d->attach_rw);
	obj_remove(ictx, &idev->obj);
	free(idev);
	model_ictx_put(ictx);
}

/* iommufd_fops_release: with the last reference every object goes. */
void model_ictx_put(struct model_ictx *ictx)
{
	struct upmd_model *m = ictx->m;
	struct model_ictx **pp;
	uint32_t i;

	if (--ictx->refs)
		return;
	/* No device is bound any more (each held a reference), so no HWPT
	 * is left either: only IOASes remain. */
	for (i = 1; i < ictx->nobjs; i++)
		if (ictx->objs[i] && ictx->objs[i]->type == MOBJ_IOAS)
			ioas_free((struct model_ioas *)ictx->objs[i]);
	for (pp = &m->ictxs; *pp; pp = &(*pp)->next)
		if (*pp == ictx) {
			*pp = ictx->next;
			break;
		}
	free(ictx->objs);
	free(ictx);
}

/* ---- DMA ----------------------------------------------------------------------- */

static bool vm_copy_broken;

/*
 * Device access to process memory. A page the process unmapped behind the
 * IOMMU's back must give EFAULT, not a crash in the device thread. The
 * fast way is a memcpy that the model's SIGSEGV handler (model_trap.c)
 * turns into EFAULT; where that cannot be (no trapping on this machine,
 * UPMD_MODEL_NO_TRAP), process_vm_readv/writev on ourselves, a system call
 * per copy; where that syscall is not allowed (seccomp), plain memcpy.
 */
int model_copy(void *dst, const void *src, size_t len, bool to_user)
{
	struct iovec local, remote;
	ssize_t n;
	int rc;

	if (model_trap_supported()) {
		rc = model_guarded_copy(dst, src, len);
		if (rc != -ENOTSUP)
			return rc;
	}
	if (!vm_copy_broken) {
		local.iov_base = to_user ? (void *)(uintptr_t)src : dst;
		remote.iov_base = to_user ? dst : (void *)(uintptr_t)src;
		while (len) {
			local.iov_len = remote.iov_len = len;
			n = to_user ? process_vm_writev(getpid(), &local, 1, &remote, 1, 0)
				    : process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
			if (n > 0) {
				local.iov_base = (char *)local.iov_base + n;
				remote.iov_base = (char *)remote.iov_base + n;
				len -= (size_t)n;
				continue;
			}
			if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
				vm_copy_broken = true;
				break;
			}
			return -EFAULT;
		}
		if (!len)
			return 0;
		dst = to_user ? remote.iov_base : local.iov_base;
		src = to_user ? local.iov_base : remote.iov_base;
	}
	memcpy(dst, src, len);
	return 0;
}

int model_ioas_dma(struct model_ioas *ioas, struct upmd_model_dev *d, uint32_t pasid,
		   uint64_t iova, void *buf, size_t len, bool write)
{
	uint32_t need = write ? IOMMU_IOAS_MAP_WRITEABLE : IOMMU_IOAS_MAP_READABLE;
	uint64_t cur = iova, last;
	size_t done = 0;
	unsigned i;
	int rc = 0;

	pthread_rwlock_rdlock(&ioas->rw);
	/* Translate all of it first: a faulting DMA moves nothing. */
	if (__builtin_add_overflow(iova, (uint64_t)len - 1, &last)) {
		model_record_fault(d, UINT64_MAX, pasid, write, UPMD_MODEL_FAULT_UNMAPPED);
		rc = -EFAULT;
		goto out;
	}
	for (i = area_lower(ioas, cur);; i++) {
		struct model_area *a = i < ioas->nareas ? &ioas->areas[i] : NULL;

		if (!a || a->iova > cur) {
			model_record_fault(d, cur, pasid, write, UPMD_MODEL_FAULT_UNMAPPED);
			rc = -EFAULT;
			goto out;
		}
		if (!(a->prot & need)) {
			model_record_fault(d, cur, pasid, write,
					   write ? UPMD_MODEL_FAULT_NO_WRITE : UPMD_MODEL_FAULT_NO_READ);
			rc = -EFAULT;
			goto out;
		}
		if (a->last >= last)
			break;
		cur = a->last + 1;
	}
	for (cur = iova, i = area_lower(ioas, cur); done < len; i++) {
		struct model_area *a = &ioas->areas[i];
		size_t chunk = (size_t)(UPMD_MIN(a->last, last) - cur + 1);
		char *mem = (char *)(a->pages->base + a->start_byte + (cur - a->iova));

		if (a->pages->is_file) {
			if (write)
				memcpy(mem, (char *)buf + done, chunk);
			else
				memcpy((char *)buf + done, mem, chunk);
		} else {
			rc = write ? model_copy(mem, (char *)buf + done, chunk, true)
				   : model_copy((char *)buf + done, mem, chunk, false);
			if (rc < 0) {
				UPMD_WARN(MODEL_LOG, "%s: DMA to IOVA 0x%llx: the process unmapped the "
					  "pinned memory at %p", d->bdf, (unsigned long long)cur, (void *)mem);
				goto out;
			}
		}
		done += chunk;
		cur += chunk;
	}
out:
	pthread_rwlock_unlock(&ioas->rw);
	return rc;
}
