/* Dynamic mappings: application buffers into the one IOAS and the VA->IOVA table, with ephemeral unmaps deferred and batched. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/eal.h>
#include <upmd/ioas.h>
#include <upmd/iova.h>
#include <upmd/iova_map.h>
#include <upmd/log.h>

#include "../eal/eal_private.h"

#define MAP_LOG "iova"
#define PAGE 4096ULL

struct dyn_map {
	uint64_t va;		/* page aligned */
	uint64_t len;		/* whole pages */
	uint64_t iova;
	uint32_t flags;
};

/*
 * Live mappings sorted by VA (they never overlap: the table refuses a
 * second mapping of a page), and the ephemeral ones already forgotten
 * whose IOAS unmap is pending. Both belong to @ioas, the IOAS they were
 * made in; cleanup empties them before that IOAS closes.
 */
static struct {
	pthread_mutex_t lock;
	struct upmd_ioas *ioas;
	struct dyn_map *live;
	unsigned nlive, caplive;
	uint64_t live_bytes;
	struct dyn_map pend[UPMD_IOVA_UNMAP_BATCH];
	unsigned npend;
	uint64_t pend_bytes;
	uint64_t unmap_calls, unmapped;
} dm = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The first live mapping whose VA is >= @va. */
static unsigned live_lower(uint64_t va)
{
	unsigned lo = 0, hi = dm.nlive;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (dm.live[mid].va < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int live_insert(const struct dyn_map *m)
{
	unsigned i;

	if (dm.nlive == dm.caplive) {
		unsigned n = dm.caplive ? dm.caplive * 2 : 16;
		struct dyn_map *t = realloc(dm.live, n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		dm.live = t;
		dm.caplive = n;
	}
	i = live_lower(m->va);
	memmove(&dm.live[i + 1], &dm.live[i], (dm.nlive - i) * sizeof(*m));
	dm.live[i] = *m;
	dm.nlive++;
	dm.live_bytes += m->len;
	return 0;
}

static void live_remove(unsigned i)
{
	dm.live_bytes -= dm.live[i].len;
	memmove(&dm.live[i], &dm.live[i + 1], (dm.nlive - i - 1) * sizeof(*dm.live));
	dm.nlive--;
}

static int pend_cmp(const void *a, const void *b)
{
	const struct dyn_map *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/*
 * Carry out the pending unmaps: sorted by IOVA, each run of adjacent
 * IOVAs in one IOAS unmap (the IOAS unmaps every mapping a range covers
 * whole). A run that fails stays pending, to be retried; the rest go.
 */
static int flush_locked(void)
{
	unsigned i = 0, kept = 0;
	int first_rc = 0;

	if (!dm.npend)
		return 0;
	qsort(dm.pend, dm.npend, sizeof(dm.pend[0]), pend_cmp);
	while (i < dm.npend) {
		unsigned j = i + 1;
		uint64_t end = dm.pend[i].iova + dm.pend[i].len;
		int rc;

		while (j < dm.npend && dm.pend[j].iova == end)
			end += dm.pend[j++].len;
		rc = upmd_ioas_unmap(dm.ioas, dm.pend[i].iova, end - dm.pend[i].iova);
		dm.unmap_calls++;
		if (rc < 0) {
			UPMD_ERR(MAP_LOG, "deferred unmap of IOVA 0x%" PRIx64 "-0x%" PRIx64 " failed (%s); kept, retried on the next flush",
				 dm.pend[i].iova, end - 1, strerror(-rc));
			if (!first_rc)
				first_rc = rc;
			for (; i < j; i++)
				dm.pend[kept++] = dm.pend[i];
			continue;
		}
		dm.unmapped += j - i;
		for (; i < j; i++)
			dm.pend_bytes -= dm.pend[i].len;
	}
	dm.npend = kept;
	return first_rc;
}

/* Whether a pending unmap covers any page of [va, va+len). */
static bool pend_overlaps(uint64_t va, uint64_t len)
{
	unsigned i;

	for (i = 0; i < dm.npend; i++)
		if (dm.pend[i].va < va + len && va < dm.pend[i].va + dm.pend[i].len)
			return true;
	return false;
}

/* The pages holding [va, va+len), or -EINVAL. */
static int page_span(const void *va, size_t len, uint64_t *pva, uint64_t *plen)
{
	uint64_t a = (uintptr_t)va, end;

	if (!len || a + len < a || a + len > UINT64_MAX - PAGE)
		return -EINVAL;
	end = UPMD_ALIGN_UP(a + len, PAGE);
	*pva = UPMD_ALIGN_DOWN(a, PAGE);
	*plen = end - *pva;
	return 0;
}

static int ioas_map_once(struct dyn_map *m)
{
	uint32_t f = ((m->flags & UPMD_IOVA_MAP_READ) ? UPMD_IOAS_MAP_READ : 0) |
		     ((m->flags & UPMD_IOVA_MAP_WRITE) ? UPMD_IOAS_MAP_WRITE : 0);

	if (upmd_eal_iova_mode() == UPMD_IOVA_MODE_VA) {
		m->iova = m->va;
		f |= UPMD_IOAS_MAP_FIXED;
	}
	return upmd_ioas_map(dm.ioas, (void *)(uintptr_t)m->va, m->len, &m->iova, f);
}

int upmd_iova_map(void *va, size_t len, uint32_t flags, uint64_t *iova)
{
	struct dyn_map m = { .flags = flags };
	int rc;

	if ((flags & ~(UPMD_IOVA_MAP_RW | UPMD_IOVA_MAP_EPHEMERAL)) || !(flags & UPMD_IOVA_MAP_RW) ||
	    page_span(va, len, &m.va, &m.len) < 0)
		return -EINVAL;
	pthread_mutex_lock(&dm.lock);
	if (!dm.ioas)
		dm.ioas = upmd_ioas_default();
	if (!dm.ioas) {
		UPMD_ERR(MAP_LOG, "cannot map %p for DMA: no IOAS (initialise the EAL with a device bound to vfio-pci)", va);
		rc = -ENODEV;
		goto out;
	}
	if (upmd_eal_iova_mode() == UPMD_IOVA_MODE_VA && !upmd_ioas_iova_allowed(dm.ioas, m.va, m.len)) {
		UPMD_ERR(MAP_LOG, "cannot map %p (%zu bytes) in IOVA mode va: the IOMMU does not allow IOVA 0x%" PRIx64 "-0x%" PRIx64 "; start with --iova-mode alloc",
			 va, len, m.va, m.va + m.len - 1);
		rc = -EINVAL;
		goto out;
	}
	/* An old mapping of these pages still waits to go: let it, first. */
	if (pend_overlaps(m.va, m.len)) {
		rc = flush_locked();
		if (rc < 0)
			goto out;
	}
	rc = ioas_map_once(&m);
	/* Out of IOVA space or of pinned-memory budget: what is pending
	 * holds both, so give it back and try once more. */
	if ((rc == -ENOSPC || rc == -ENOMEM) && dm.npend && flush_locked() == 0)
		rc = ioas_map_once(&m);
	if (rc < 0) {
		if (rc == -EEXIST)
			UPMD_DEBUG(MAP_LOG, "IOVA 0x%" PRIx64 " of %p is already mapped", m.iova, va);
		goto out;
	}
	/* In mode alloc the IOAS maps a page twice at two IOVAs; the table
	 * is what refuses a second mapping of a page. */
	rc = upmd_iova_table_set((void *)(uintptr_t)m.va, m.iova, m.len);
	if (rc < 0) {
		upmd_ioas_unmap(dm.ioas, m.iova, m.len);
		goto out;
	}
	rc = live_insert(&m);
	if (rc < 0) {
		upmd_iova_table_clear((void *)(uintptr_t)m.va, m.len);
		upmd_ioas_unmap(dm.ioas, m.iova, m.len);
		goto out;
	}
	if (iova)
		*iova = m.iova + ((uintptr_t)va - m.va);
	UPMD_DEBUG(MAP_LOG, "mapped %p (%zu bytes) at IOVA 0x%" PRIx64 "%s", va, len, m.iova + ((uintptr_t)va - m.va),
		   (flags & UPMD_IOVA_MAP_EPHEMERAL) ? " (ephemeral)" : "");
out:
	pthread_mutex_unlock(&dm.lock);
	return rc;
}

int upmd_iova_unmap(void *va, size_t len)
{
	uint64_t pva, plen;
	struct dyn_map m;
	unsigned i;
	int rc;

	if (page_span(va, len, &pva, &plen) < 0)
		return -EINVAL;
	pthread_mutex_lock(&dm.lock);
	i = live_lower(pva);
	if (i == dm.nlive || dm.live[i].va != pva || dm.live[i].len != plen) {
		rc = -ENOENT;
		goto out;
	}
	m = dm.live[i];
	if (!(m.flags & UPMD_IOVA_MAP_EPHEMERAL)) {
		rc = upmd_ioas_unmap(dm.ioas, m.iova, m.len);
		dm.unmap_calls++;
		if (rc < 0)
			goto out;	/* still mapped, still recorded */
		dm.unmapped++;
	} else if (dm.npend == UPMD_IOVA_UNMAP_BATCH) {
		/* Only failed unmaps fill the batch now: give up on batching
		 * this one rather than lose track of it. */
		rc = upmd_ioas_unmap(dm.ioas, m.iova, m.len);
		dm.unmap_calls++;
		if (rc < 0)
			goto out;
		dm.unmapped++;
	} else {
		dm.pend[dm.npend++] = m;
		dm.pend_bytes += m.len;
	}
	upmd_iova_table_clear((void *)(uintptr_t)m.va, m.len);
	live_remove(i);
	rc = 0;
	if (dm.npend == UPMD_IOVA_UNMAP_BATCH || dm.pend_bytes >= UPMD_IOVA_UNMAP_BATCH_BYTES)
		flush_locked();	/* a failure keeps them pending and is logged */
out:
	pthread_mutex_unlock(&dm.lock);
	return rc;
}

int upmd_iova_unmap_flush(void)
{
	int rc;

	pthread_mutex_lock(&dm.lock);
	rc = flush_locked();
	pthread_mutex_unlock(&dm.lock);
	return rc;
}

void upmd_iova_map_stats(struct upmd_iova_map_stats *st)
{
	pthread_mutex_lock(&dm.lock);
	*st = (struct upmd_iova_map_stats){
		.mappings = dm.nlive,
		.bytes = dm.live_bytes,
		.pending = dm.npend,
		.pending_bytes = dm.pend_bytes,
		.unmap_calls = dm.unmap_calls,
		.unmapped = dm.unmapped,
	};
	pthread_mutex_unlock(&dm.lock);
}

/* EAL cleanup, devices already stopped: everything dynamic goes. */
void eal_iova_map_cleanup(void)
{
	unsigned i;

	pthread_mutex_lock(&dm.lock);
	if (dm.nlive)
		UPMD_WARN(MAP_LOG, "%u dynamic mapping(s) (%" PRIu64 " bytes) still mapped at cleanup: unmapping them",
			  dm.nlive, dm.live_bytes);
	for (i = 0; i < dm.nlive; i++) {
		const struct dyn_map *m = &dm.live[i];
		int rc = upmd_ioas_unmap(dm.ioas, m->iova, m->len);

		if (rc < 0)
			UPMD_ERR(MAP_LOG, "unmapping IOVA 0x%" PRIx64 " at cleanup failed: %s", m->iova,
				 strerror(-rc));
		upmd_iova_table_clear((void *)(uintptr_t)m->va, m->len);
	}
	flush_locked();
	free(dm.live);
	dm.live = NULL;
	dm.nlive = dm.caplive = 0;
	dm.live_bytes = 0;
	dm.npend = 0;
	dm.pend_bytes = 0;
	dm.unmap_calls = dm.unmapped = 0;
	dm.ioas = NULL;
	pthread_mutex_unlock(&dm.lock);
}
