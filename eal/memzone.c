/* Memzones: named, zeroed, aligned blocks carved first-fit from the memory segments. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

#include <upmd/eal.h>
#include <upmd/log.h>
#include <upmd/memory.h>

#include "eal_private.h"

/*
 * Memzones are a control-path allocator (queues, rings, pools are carved
 * once at start-up), so one mutex, a sorted free list per segment and a
 * linear name search are all it needs.
 */

/* A free range of a segment, as an offset from the segment's start. */
struct blk {
	size_t off, len;
	struct blk *next;
};

struct heap {
	unsigned seg;		/* index for upmd_memseg_get() */
	int socket;
	struct blk *free;	/* sorted by offset, never adjacent (coalesced) */
};

struct zone {
	struct upmd_memzone mz;	/* the caller's view: first, for the cast back */
	struct zone *next;
	unsigned heap;
	size_t off, len;	/* the carved range (len rounded to a cache line) */
	/* Kept for the free, so that returning a block never has to allocate
	 * and so cannot fail. */
	struct blk *spare;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *heaps;
static unsigned n_heaps;
static struct zone *zones;

int eal_memzone_init(void)
{
	unsigned n = upmd_memseg_count(), i;
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (heaps) {
		rc = -EALREADY;
		goto out;
	}
	heaps = calloc(n ? n : 1, sizeof(*heaps));
	if (!heaps) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);
		struct blk *b = malloc(sizeof(*b));

		if (!b) {
			n_heaps = i;
			pthread_mutex_unlock(&lock);
			eal_memzone_cleanup();
			return -ENOMEM;
		}
		b->off = 0;
		b->len = ms->len;
		b->next = NULL;
		heaps[i].seg = i;
		heaps[i].socket = ms->socket_id;
		heaps[i].free = b;
	}
	n_heaps = n;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

void eal_memzone_cleanup(void)
{
	unsigned i;

	pthread_mutex_lock(&lock);
	while (zones) {
		struct zone *z = zones;

		zones = z->next;
		free(z->spare);
		free(z);
	}
	for (i = 0; i < n_heaps; i++)
		while (heaps[i].free) {
			struct blk *b = heaps[i].free;

			heaps[i].free = b->next;
			free(b);
		}
	free(heaps);
	heaps = NULL;
	n_heaps = 0;
	pthread_mutex_unlock(&lock);
}

static uint64_t zone_iova(const struct zone *z)
{
	const struct upmd_memseg *ms = upmd_memseg_get(heaps[z->heap].seg);

	return !ms || ms->iova == UPMD_BAD_IOVA ? UPMD_BAD_IOVA : ms->iova + z->off;
}

void eal_memzone_iova_update(void)
{
	struct zone *z;

	pthread_mutex_lock(&lock);
	for (z = zones; z; z = z->next)
		z->mz.iova = zone_iova(z);
	pthread_mutex_unlock(&lock);
}

static struct zone *find(const char *name)
{
	struct zone *z;

	for (z = zones; z; z = z->next)
		if (!strncmp(z->mz.name, name, sizeof(z->mz.name)))
			return z;
	return NULL;
}

/*
 * First fit. Alignment is taken on the IOVA once the segment is mapped
 * (devices are the ones with alignment rules; with IOVA = VA, or an IOVA
 * congruent to the VA, the address is aligned as well) and on the VA before.
 * @split is a spare block for the case where the carve leaves free space on
 * both sides; it is consumed (set to NULL) if used.
 */
static int carve(struct heap *h, size_t len, size_t align, struct blk **split, size_t *out)
{
	const struct upmd_memseg *ms = upmd_memseg_get(h->seg);
	uint64_t base = ms->iova != UPMD_BAD_IOVA ? ms->iova : (uint64_t)(uintptr_t)ms->va;
	struct blk **pp, *b;

	for (pp = &h->free; (b = *pp); pp = &b->next) {
		uint64_t start = UPMD_ALIGN_UP(base + b->off, (uint64_t)align) - base;
		size_t head, tail;

		if (start < b->off || start - b->off > b->len || b->len - (start - b->off) < len)
			continue;
		head = (size_t)(start - b->off);
		tail = b->len - head - len;
		if (head && tail) {
			struct blk *t = *split;

			*split = NULL;
			t->off = (size_t)start + len;
			t->len = tail;
			t->next = b->next;
			b->len = head;
			b->next = t;
		} else if (head) {
			b->len = head;
		} else if (tail) {
			b->off = (size_t)start + len;
			b->len = tail;
		} else {
			*pp = b->next;
			free(b);
		}
		*out = (size_t)start;
		return 0;
	}
	return -ENOMEM;
}

/* Give [off, off+len) back, merged with its neighbours. */
static void give_back(struct heap *h, size_t off, size_t len, struct blk *spare)
{
	struct blk **pp = &h->free, *prev = NULL, *next;

	while (*pp && (*pp)->off < off) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	next = *pp;
	if (prev && prev->off + prev->len == off) {
		prev->len += len;
		if (next && prev->off + prev->len == next->off) {
			prev->len += next->len;
			prev->next = next->next;
			free(next);
		}
		free(spare);
		return;
	}
	if (next && off + len == next->off) {
		next->off = off;
		next->len += len;
		free(spare);
		return;
	}
	spare->off = off;
	spare->len = len;
	spare->next = next;
	*pp = spare;
}

/* NUMA node of the caller: its lcore's, or its CPU's for a non-EAL thread. */
static int caller_socket(void)
{
	int cpu, node;

	if (upmd_lcore_id() < UPMD_MAX_LCORE)
		return upmd_socket_id();
	if (numa_available() < 0)
		return 0;
	cpu = sched_getcpu();
	node = cpu < 0 ? -1 : numa_node_of_cpu(cpu);
	return node < 0 ? 0 : node;
}

int upmd_memzone_reserve(const char *name, size_t len, int socket_id, size_t align,
			 const struct upmd_memzone **mz)
{
	struct zone *z;
	struct blk *split;
	size_t rlen, off = 0;
	unsigned pass, i;
	int want, rc = -ENOMEM;

	if (!name || !*name || strlen(name) >= sizeof(z->mz.name) || !mz || len == 0 ||
	    len > SIZE_MAX / 2 || (align && !UPMD_IS_POW2(align)) ||
	    (socket_id != UPMD_SOCKET_ID_ANY && (socket_id < 0 || socket_id >= UPMD_MAX_NUMA_NODES)))
		return -EINVAL;
	/* Whole cache lines, so neighbouring zones never share one. */
	rlen = UPMD_ALIGN_UP(len, (size_t)UPMD_CACHE_LINE_SIZE);
	align = UPMD_MAX(align, (size_t)UPMD_CACHE_LINE_SIZE);

	z = calloc(1, sizeof(*z));
	split = malloc(sizeof(*split));
	if (z)
		z->spare = malloc(sizeof(*z->spare));
	if (!z || !split || !z->spare) {
		rc = -ENOMEM;
		goto err_free;
	}

	pthread_mutex_lock(&lock);
	if (find(name)) {
		rc = -EEXIST;
		goto err_unlock;
	}
	want = socket_id == UPMD_SOCKET_ID_ANY ? caller_socket() : socket_id;
	/* Pass 0: the socket asked for (or the caller's); pass 1, for ANY only:
	 * any other. */
	for (pass = 0; pass < 2 && rc < 0; pass++) {
		if (pass == 1 && socket_id != UPMD_SOCKET_ID_ANY)
			break;
		for (i = 0; i < n_heaps && rc < 0; i++) {
			if ((heaps[i].socket == want) != (pass == 0))
				continue;
			rc = carve(&heaps[i], rlen, align, &split, &off);
			if (rc == 0)
				z->heap = i;
		}
	}
	if (rc < 0)
		goto err_unlock;

	snprintf(z->mz.name, sizeof(z->mz.name), "%s", name);
	z->off = off;
	z->len = rlen;
	z->mz.addr = (char *)upmd_memseg_get(heaps[z->heap].seg)->va + off;
	z->mz.iova = zone_iova(z);
	z->mz.len = len;
	z->mz.socket_id = heaps[z->heap].socket;
	/* Zeroed under the lock: once the name is visible the contents must
	 * be what the caller was promised. */
	memset(z->mz.addr, 0, rlen);
	z->next = zones;
	zones = z;
	pthread_mutex_unlock(&lock);
	free(split);
	*mz = &z->mz;
	return 0;

err_unlock:
	pthread_mutex_unlock(&lock);
	if (rc == -ENOMEM)
		UPMD_DEBUG("mem", "memzone '%s': no segment on %s%d has %zu free bytes aligned to %zu", name,
			   socket_id == UPMD_SOCKET_ID_ANY ? "any node, preferring " : "node ",
			   socket_id == UPMD_SOCKET_ID_ANY ? caller_socket() : socket_id, rlen, align);
err_free:
	free(split);
	if (z)
		free(z->spare);
	free(z);
	return rc;
}

int upmd_memzone_free(const struct upmd_memzone *mz)
{
	struct zone **pp, *z;

	if (!mz)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	/* Found by address before it is touched: a stale or foreign pointer
	 * is an -EINVAL, not a corruption. */
	for (pp = &zones; (z = *pp); pp = &z->next)
		if (&z->mz == mz)
			break;
	if (!z) {
		pthread_mutex_unlock(&lock);
		return -EINVAL;
	}
	*pp = z->next;
	give_back(&heaps[z->heap], z->off, z->len, z->spare);
	pthread_mutex_unlock(&lock);
	free(z);
	return 0;
}

const struct upmd_memzone *upmd_memzone_lookup(const char *name)
{
	struct zone *z;

	if (!name)
		return NULL;
	pthread_mutex_lock(&lock);
	z = find(name);
	pthread_mutex_unlock(&lock);
	return z ? &z->mz : NULL;
}
