/* The VA->IOVA table: three levels over the 48-bit user space, lock-free readers, serialised writers. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/iova.h>

#define L2_SPAN (1ULL << UPMD_IOVA_TABLE_L2_SHIFT)
#define L3_SPAN (1ULL << UPMD_IOVA_TABLE_L3_SHIFT)
#define ENTRIES 512

uint64_t *upmd_iova_table_l1[UPMD_IOVA_TABLE_L1_ENTRIES];

/* Recorded extents, sorted by VA, for the reverse lookup. */
struct extent {
	uintptr_t va;
	uint64_t iova;
	size_t len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct extent *ext;
static unsigned next, capext;

static uint64_t *table_new(void)
{
	return aligned_alloc(4096, ENTRIES * sizeof(uint64_t));
}

static void publish(uint64_t *slot, uint64_t v)
{
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
}

/* The level-2 entry slot for @va, creating the level-2 table if asked. */
static uint64_t *l2_slot(uintptr_t va, bool create)
{
	uint64_t **l1 = &upmd_iova_table_l1[va >> UPMD_IOVA_TABLE_L1_SHIFT];
	uint64_t *t = *l1;

	if (!t) {
		if (!create || !(t = table_new()))
			return NULL;
		memset(t, 0, ENTRIES * sizeof(uint64_t));
		__atomic_store_n(l1, t, __ATOMIC_RELEASE);
	}
	return &t[(va >> UPMD_IOVA_TABLE_L2_SHIFT) & (ENTRIES - 1)];
}

/* The level-3 table under a level-2 slot, splitting a 2 MiB leaf into
 * 4 KiB entries (same deltas) or creating an empty one. */
static uint64_t *l3_table(uint64_t *slot)
{
	uint64_t e = *slot, *t;
	unsigned i;

	if (e & UPMD_IOVA_TE_TABLE)
		return (uint64_t *)(uintptr_t)(e & ~UPMD_IOVA_TE_FLAGS);
	t = table_new();
	if (!t)
		return NULL;
	for (i = 0; i < ENTRIES; i++)
		t[i] = e;	/* 0, or the leaf's delta | VALID */
	publish(slot, (uint64_t)(uintptr_t)t | UPMD_IOVA_TE_TABLE);
	return t;
}

/* The entry covering @va (4 KiB resolution), 0 if none. Writer side. */
static uint64_t entry_at(uintptr_t va)
{
	uint64_t *slot = l2_slot(va, false), e;

	if (!slot)
		return 0;
	e = *slot;
	if (e & UPMD_IOVA_TE_TABLE)
		e = ((uint64_t *)(uintptr_t)(e & ~UPMD_IOVA_TE_FLAGS))[(va >> UPMD_IOVA_TABLE_L3_SHIFT) & (ENTRIES - 1)];
	return e;
}

static bool args_ok(uintptr_t va, uint64_t iova, size_t len)
{
	return len && !((va | iova | len) & (L3_SPAN - 1)) && va + len > va &&
	       (va + len) <= (1ULL << UPMD_IOVA_TABLE_VA_BITS);
}

/* Write [va, va+len) -> delta (0 clears), whole 2 MiB chunks as leaves. */
static int write_range(uintptr_t va, size_t len, uint64_t delta, bool set)
{
	uintptr_t end = va + len;

	while (va < end) {
		uint64_t *slot = l2_slot(va, set), v = set ? delta | UPMD_IOVA_TE_VALID : 0;

		if (!slot)
			return -ENOMEM;
		if (!(va & (L2_SPAN - 1)) && end - va >= L2_SPAN && !(*slot & UPMD_IOVA_TE_TABLE)) {
			publish(slot, v);
			va += L2_SPAN;
		} else {
			uint64_t *t = l3_table(slot);

			if (!t)
				return -ENOMEM;
			publish(&t[(va >> UPMD_IOVA_TABLE_L3_SHIFT) & (ENTRIES - 1)], v);
			va += L3_SPAN;
		}
	}
	return 0;
}

static int extent_add(uintptr_t va, uint64_t iova, size_t len)
{
	unsigned i;

	if (next == capext) {
		unsigned n = capext ? capext * 2 : 16;
		struct extent *t = realloc(ext, n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		ext = t;
		capext = n;
	}
	for (i = next; i > 0 && ext[i - 1].va > va; i--)
		ext[i] = ext[i - 1];
	ext[i] = (struct extent){ va, iova, len };
	next++;
	return 0;
}

/* Cut [va, va+len) out of the extents (it is wholly recorded). */
static int extent_cut(uintptr_t va, size_t len)
{
	uintptr_t end = va + len;
	unsigned i;

	for (i = 0; i < next; i++) {
		struct extent *x = &ext[i];
		uintptr_t xend = x->va + x->len;

		if (xend <= va || x->va >= end)
			continue;
		if (x->va < va && xend > end) {	/* a hole in the middle: split */
			struct extent tail = { end, x->iova + (end - x->va), xend - end };

			x->len = va - x->va;
			return extent_add(tail.va, tail.iova, tail.len);
		}
		if (x->va < va) {
			x->len = va - x->va;
		} else if (xend > end) {
			x->iova += end - x->va;
			x->len = xend - end;
			x->va = end;
		} else {
			memmove(x, x + 1, (next - i - 1) * sizeof(*x));
			next--;
			i--;
		}
	}
	return 0;
}

int upmd_iova_table_set(const void *vap, uint64_t iova, size_t len)
{
	uintptr_t va = (uintptr_t)vap, a;
	int rc = 0;

	if (!args_ok(va, iova, len))
		return -EINVAL;
	pthread_mutex_lock(&lock);
	for (a = va; a < va + len; a += L3_SPAN)
		if (entry_at(a) & UPMD_IOVA_TE_VALID) {
			rc = -EEXIST;
			goto out;
		}
	/* Room for the extent first, so a failure leaves the table as it was. */
	rc = extent_add(va, iova, len);
	if (rc < 0)
		goto out;
	rc = write_range(va, len, iova - va, true);
	if (rc < 0) {
		write_range(va, len, 0, false);
		extent_cut(va, len);
	}
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

int upmd_iova_table_clear(const void *vap, size_t len)
{
	uintptr_t va = (uintptr_t)vap, a;
	int rc = 0;

	if (!args_ok(va, 0, len))
		return -EINVAL;
	pthread_mutex_lock(&lock);
	for (a = va; a < va + len; a += L3_SPAN)
		if (!(entry_at(a) & UPMD_IOVA_TE_VALID)) {
			rc = -ENOENT;
			goto out;
		}
	/* Clearing never allocates, except to split a 2 MiB leaf. */
	rc = write_range(va, len, 0, false);
	if (rc == 0)
		rc = extent_cut(va, len);
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

void *upmd_iova_table_to_va(uint64_t iova)
{
	void *va = NULL;
	unsigned i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < next; i++)
		if (iova >= ext[i].iova && iova - ext[i].iova < ext[i].len) {
			va = (void *)(ext[i].va + (uintptr_t)(iova - ext[i].iova));
			break;
		}
	pthread_mutex_unlock(&lock);
	return va;
}

void upmd_iova_table_reset(void)
{
	unsigned i, j;

	pthread_mutex_lock(&lock);
	for (i = 0; i < UPMD_IOVA_TABLE_L1_ENTRIES; i++) {
		uint64_t *t = upmd_iova_table_l1[i];

		if (!t)
			continue;
		for (j = 0; j < ENTRIES; j++)
			if (t[j] & UPMD_IOVA_TE_TABLE)
				free((void *)(uintptr_t)(t[j] & ~UPMD_IOVA_TE_FLAGS));
		upmd_iova_table_l1[i] = NULL;
		free(t);
	}
	free(ext);
	ext = NULL;
	next = capext = 0;
	pthread_mutex_unlock(&lock);
}
