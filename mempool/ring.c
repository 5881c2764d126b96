/* Rings: sizing, creation in a memzone or on the heap, the name registry. The data path is inline in ring.h. */
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/eal.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/ring.h>

#include "../eal/eal_private.h"

#define RING_LOG "ring"

_Static_assert(sizeof(struct upmd_ring) % (2 * UPMD_CACHE_LINE_SIZE) == 0,
	       "slots start on their own pair of cache lines");
_Static_assert(offsetof(struct upmd_ring, cons) - offsetof(struct upmd_ring, prod) >= 2 * UPMD_CACHE_LINE_SIZE,
	       "producers and consumers share no cache line pair");

struct ring_entry {
	struct upmd_ring *r;
	struct ring_entry *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring_entry *reg;

/* The slot count for @count, or 0 if it cannot be made. */
static uint32_t slots_for(unsigned count, bool exact)
{
	if (!count || count > UPMD_RING_SZ_MASK)
		return 0;
	if (!exact)
		return UPMD_IS_POW2(count) ? count : 0;
	/* One slot more than asked, rounded up: count itself may be a
	 * power of two, and capacity is then still exactly count. */
	if (count >= (1u << 31))
		return 0;
	return 1u << (32 - __builtin_clz(count));
}

long upmd_ring_memsize_elem(unsigned esize, unsigned count, bool exact)
{
	uint32_t slots = slots_for(count, exact);

	if (!esize || esize % 4 || !slots)
		return -EINVAL;
	return (long)UPMD_ALIGN_UP(sizeof(struct upmd_ring) + (size_t)slots * esize,
				   2 * UPMD_CACHE_LINE_SIZE);
}

static bool name_ok(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strnlen(name, UPMD_RING_NAMESIZE + 1);
	return n > 0 && n <= UPMD_RING_NAMESIZE;
}

int upmd_ring_init_elem(struct upmd_ring *r, const char *name, unsigned esize, unsigned count,
			unsigned flags)
{
	bool exact = flags & UPMD_RING_F_EXACT_SZ;

	if (!r || ((uintptr_t)r & (2 * UPMD_CACHE_LINE_SIZE - 1)) || !name_ok(name) ||
	    (flags & ~(UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ | UPMD_RING_F_EXACT_SZ)) ||
	    upmd_ring_memsize_elem(esize, count, exact) < 0)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->flags = flags;
	r->size = slots_for(count, exact);
	r->mask = r->size - 1;
	r->capacity = exact ? count : r->size - 1;
	r->esize = esize;
	r->prod.single = !!(flags & UPMD_RING_F_SP_ENQ);
	r->cons.single = !!(flags & UPMD_RING_F_SC_DEQ);
	return 0;
}

void upmd_ring_reset(struct upmd_ring *r)
{
	r->prod.head = r->prod.tail = 0;
	r->cons.head = r->cons.tail = 0;
}

struct upmd_ring *upmd_ring_lookup(const char *name)
{
	struct upmd_ring *r = NULL;
	struct ring_entry *e;

	if (!name)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	for (e = reg; e; e = e->next)
		if (!strcmp(e->r->name, name)) {
			r = e->r;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	return r;
}

int upmd_ring_create_elem(const char *name, unsigned esize, unsigned count, int socket_id,
			  unsigned flags, struct upmd_ring **out)
{
	long sz = upmd_ring_memsize_elem(esize, count, flags & UPMD_RING_F_EXACT_SZ);
	const struct upmd_memzone *mz = NULL;
	struct ring_entry *e, *it;
	struct upmd_ring *r;
	char mzname[32];
	void *heap = NULL;
	int rc;

	if (!out || !name_ok(name) || sz < 0 ||
	    (flags & ~(UPMD_RING_F_SP_ENQ | UPMD_RING_F_SC_DEQ | UPMD_RING_F_EXACT_SZ))) {
		UPMD_ERR(RING_LOG, "ring \"%s\": bad arguments (name 1..%d characters, esize a multiple of 4, count %s)",
			 name ? name : "(null)", UPMD_RING_NAMESIZE,
			 (flags & UPMD_RING_F_EXACT_SZ) ? "1..2^31-1" : "a power of two");
		return -EINVAL;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	pthread_mutex_lock(&reg_lock);
	for (it = reg; it; it = it->next)
		if (!strcmp(it->r->name, name)) {
			rc = -EEXIST;
			goto err;
		}
	if (upmd_eal_initialized()) {
		snprintf(mzname, sizeof(mzname), "RG_%s", name);
		rc = upmd_memzone_reserve(mzname, (size_t)sz, socket_id, 2 * UPMD_CACHE_LINE_SIZE, &mz);
		if (rc < 0) {
			UPMD_ERR(RING_LOG, "ring \"%s\": no memory for %ld bytes on socket %d (%s)", name, sz,
				 socket_id, strerror(-rc));
			goto err;
		}
		r = mz->addr;
	} else {
		heap = aligned_alloc(2 * UPMD_CACHE_LINE_SIZE, (size_t)sz);
		if (!heap) {
			rc = -ENOMEM;
			goto err;
		}
		r = heap;
	}
	upmd_ring_init_elem(r, name, esize, count, flags);
	r->mz = mz;
	r->heap = heap;
	e->r = r;
	e->next = reg;
	reg = e;
	pthread_mutex_unlock(&reg_lock);
	*out = r;
	return 0;
err:
	pthread_mutex_unlock(&reg_lock);
	free(e);
	return rc;
}

int upmd_ring_create(const char *name, unsigned count, int socket_id, unsigned flags,
		     struct upmd_ring **out)
{
	return upmd_ring_create_elem(name, 8, count, socket_id, flags, out);
}

void upmd_ring_free(struct upmd_ring *r)
{
	struct ring_entry **pp, *e = NULL;

	if (!r)
		return;
	pthread_mutex_lock(&reg_lock);
	for (pp = &reg; *pp; pp = &(*pp)->next)
		if ((*pp)->r == r) {
			e = *pp;
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	if (!e) {
		UPMD_ERR(RING_LOG, "ring %p was not made by upmd_ring_create (or is freed already): left alone",
			 (void *)r);
		return;
	}
	free(e);
	if (r->mz)
		upmd_memzone_free(r->mz);
	else
		free(r->heap);
}

void eal_ring_cleanup(void)
{
	for (;;) {
		struct ring_entry *e;

		pthread_mutex_lock(&reg_lock);
		for (e = reg; e && !e->r->mz; e = e->next)
			;
		pthread_mutex_unlock(&reg_lock);
		if (!e)
			break;
		UPMD_WARN(RING_LOG, "ring \"%s\" was not freed before EAL cleanup: freeing it", e->r->name);
		upmd_ring_free(e->r);
	}
}

void upmd_ring_wait_tail_(struct upmd_ring_headtail *ht, uint32_t old)
{
	unsigned spins = 0;

	/* Acquire, as the inline test: the earlier reservers' slot work
	 * happens-before our release of the tail. */
	while (__atomic_load_n(&ht->tail, __ATOMIC_ACQUIRE) != old) {
		if (++spins < 256)
			upmd_pause();
		else
			sched_yield();
	}
}
