/* The VA->IOVA table: a flat array of 2 MiB entries over the 48-bit user space, 4 KiB tables below it, lock-free readers, serialised writers, extents for the reverse lookup. */
#include <errno.h>
#include <sys/mman.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/iova.h>

#define L1_SHIFT 30	/* the writers' bookkeeping goes by 1 GiB span */
#define L1_SPAN (1ULL << L1_SHIFT)
#define L1_ENTRIES (1u << (UPMD_IOVA_TABLE_VA_BITS - L1_SHIFT))
#define L2_SPAN (1ULL << UPMD_IOVA_TABLE_L2_SHIFT)
#define L3_SPAN (1ULL << UPMD_IOVA_TABLE_L3_SHIFT)
#define VA_END (1ULL << UPMD_IOVA_TABLE_VA_BITS)
#define TE_ENTRIES 512u
#define TE_BYTES (TE_ENTRIES * sizeof(uint64_t))
#define TE_VALID UPMD_IOVA_TE_VALID
#define TE_TABLE UPMD_IOVA_TE_TABLE
#define TE_FLAGS UPMD_IOVA_TE_FLAGS

_Static_assert(TE_BYTES == 4096, "a level-3 table, and a 1 GiB span of the flat array, is one 4 KiB page");
_Static_assert(L1_SPAN / L2_SPAN == TE_ENTRIES && L2_SPAN / L3_SPAN == TE_ENTRIES,
	       "512 entries per level-2 and level-3 table");

uint64_t *upmd_iova_table_l2;
uint64_t upmd_iova_table_l2_n;

/*
 * Reserved before main() so that readers may load the pointer with a plain
 * read (and a compiler may keep it in a register across a loop of
 * lookups). Private anonymous memory reads as zeros (nothing recorded).
 * It is mapped read-only, and each 1 GiB span's page of entries is made
 * writable when something in the span is first recorded: a read-only
 * private mapping is never charged against the commit limit, even under
 * strict overcommit, so only the pages of entries in use cost memory, on
 * machines with less RAM than the 1 GiB too. If the reservation fails (a
 * low RLIMIT_AS), every lookup fails and every set says -ENOMEM.
 */
__attribute__((constructor)) static void table_reserve(void)
{
	void *p = mmap(NULL, UPMD_IOVA_TABLE_L2_ENTRIES * sizeof(uint64_t), PROT_READ,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return;
	upmd_iova_table_l2 = p;
	upmd_iova_table_l2_n = UPMD_IOVA_TABLE_L2_ENTRIES;
}

/*
 * Writers' bookkeeping per 1 GiB span, present once anything in the span
 * has been recorded: for each 2 MiB chunk, the level-3 table it owns. A
 * chunk gets one the first time it is split and keeps it: published in
 * its entry while split, kept aside while the chunk is a leaf or empty,
 * taken back by the next split, so split and rejoin cycles cost no
 * memory. That is safe for a reader still holding the old pointer: it can
 * only ever see values this chunk's entries held while it looked. Tables
 * are freed only by reset, from here (the flat array is not heap memory,
 * so this is also what shows a leak checker that they are still owned).
 * Spans without bookkeeping hold no entries, so scans skip them whole.
 */
static uint64_t **span_l3[L1_ENTRIES];

/*
 * Writers hold table_lock. Readers (upmd_iova_from_va) take no lock: every
 * table is filled completely before a release store makes it reachable,
 * and no table is freed or reused before upmd_iova_table_reset().
 */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The recorded extents, for the reverse lookup: maximal runs of pages that
 * are contiguous in VA and in IOVA (so the set is a function of the table
 * alone), sorted by (iova, va). Different VAs may share an IOVA, so IOVA
 * ranges may overlap; maxend[i] is the largest iova+len of ext[0..i], which
 * bounds the backward walk of a search (one step when nothing overlaps).
 */
struct extent {
	uint64_t va;
	uint64_t iova;
	uint64_t len;
};

static struct extent *ext;
static uint64_t *ext_maxend;
static size_t ext_n, ext_cap;

/* ---- table access (writer side, under table_lock) --------------------------- */

static inline uint64_t te_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void te_publish(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Filling a table before it is published: one a chunk takes back may
 * still be read by a reader that loaded it long ago, so no plain stores. */
static inline void te_fill(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* The 512 entries of the 1 GiB span holding @va, or NULL if nothing in it
 * was ever recorded. */
static inline uint64_t *l2_table(uint64_t va)
{
	uint64_t span = va >> L1_SHIFT;

	return span_l3[span] ? &upmd_iova_table_l2[span * TE_ENTRIES] : NULL;
}

/* Where the chunk at @va keeps the level-3 table it owns (its span has bookkeeping). */
static inline uint64_t **owned_slot(uint64_t va)
{
	return &span_l3[va >> L1_SHIFT][(va >> UPMD_IOVA_TABLE_L2_SHIFT) & (TE_ENTRIES - 1)];
}

static inline uint64_t *l3_table(uint64_t e)
{
	return (uint64_t *)(uintptr_t)(e & ~TE_FLAGS);
}

static inline unsigned l2_index(uint64_t va)
{
	return (unsigned)(va >> UPMD_IOVA_TABLE_L2_SHIFT) & (TE_ENTRIES - 1);
}

static inline unsigned l3_index(uint64_t va)
{
	return (unsigned)(va >> UPMD_IOVA_TABLE_L3_SHIFT) & (TE_ENTRIES - 1);
}

/* The end of the 2 MiB chunk holding @va, or @end if that comes first. */
static inline uint64_t chunk_end(uint64_t va, uint64_t end)
{
	return UPMD_MIN(UPMD_ALIGN_DOWN(va, L2_SPAN) + L2_SPAN, end);
}

static inline bool whole_chunk(uint64_t va, uint64_t next)
{
	return !(va & (L2_SPAN - 1)) && next - va == L2_SPAN;
}

static uint64_t *table_alloc(void)
{
	return aligned_alloc(TE_BYTES, TE_BYTES);
}

/* The entry for the 4 KiB page at @va (0 when nothing is recorded). */
static uint64_t entry_at(uint64_t va)
{
	const uint64_t *t = l2_table(va);
	uint64_t e;

	if (!t)
		return 0;
	e = te_load(&t[l2_index(va)]);
	if (e & TE_TABLE)
		e = te_load(&l3_table(e)[l3_index(va)]);
	return e;
}

/* Whether any page of [va, end) is recorded. */
static bool range_any(uint64_t va, uint64_t end)
{
	while (va < end) {
		const uint64_t *t = l2_table(va);
		uint64_t next, e;

		if (!t) {
			va = UPMD_ALIGN_DOWN(va, L1_SPAN) + L1_SPAN;
			continue;
		}
		next = chunk_end(va, end);
		e = te_load(&t[l2_index(va)]);
		if (e & TE_TABLE) {
			const uint64_t *t3 = l3_table(e);

			for (; va < next; va += L3_SPAN)
				if (te_load(&t3[l3_index(va)]) & TE_VALID)
					return true;
		} else if (e & TE_VALID) {
			return true;
		}
		va = next;
	}
	return false;
}

/* Whether every page of [va, end) is recorded. */
static bool range_all(uint64_t va, uint64_t end)
{
	while (va < end) {
		const uint64_t *t = l2_table(va);
		uint64_t next, e;

		if (!t)
			return false;
		next = chunk_end(va, end);
		e = te_load(&t[l2_index(va)]);
		if (e & TE_TABLE) {
			const uint64_t *t3 = l3_table(e);

			for (; va < next; va += L3_SPAN)
				if (!(te_load(&t3[l3_index(va)]) & TE_VALID))
					return false;
		} else if (!(e & TE_VALID)) {
			return false;
		}
		va = next;
	}
	return true;
}

/* From @va (whose entry is @e0) up to @end, where the entry first differs. */
static uint64_t run_end(uint64_t va, uint64_t end, uint64_t e0)
{
	while (va < end) {
		const uint64_t *t = l2_table(va);
		uint64_t next, e;

		if (!t)
			return va;
		next = chunk_end(va, end);
		e = te_load(&t[l2_index(va)]);
		if (e & TE_TABLE) {
			const uint64_t *t3 = l3_table(e);

			for (; va < next; va += L3_SPAN)
				if (te_load(&t3[l3_index(va)]) != e0)
					return va;
		} else if (e != e0) {
			return va;
		}
		va = next;
	}
	return end;
}

/* Make sure every GiB of [va, end) has its bookkeeping. Bookkeeping over
 * empty entries changes no lookup, so one left behind by a later failure
 * does no harm. */
static int l2_tables_ensure(uint64_t va, uint64_t end)
{
	if (!upmd_iova_table_l2)
		return -ENOMEM;
	for (va = UPMD_ALIGN_DOWN(va, L1_SPAN); va < end; va += L1_SPAN) {
		uint64_t ***r = &span_l3[va >> L1_SHIFT];
		uint64_t *t = &upmd_iova_table_l2[(va >> L1_SHIFT) * TE_ENTRIES];

		if (*r)
			continue;
		/* The span's entries are one page: writable from now on. */
		if (mprotect(t, TE_BYTES, PROT_READ | PROT_WRITE) != 0)
			return -ENOMEM;
		*r = calloc(TE_ENTRIES, sizeof(**r));
		if (!*r)
			return -ENOMEM;
	}
	return 0;
}

/*
 * New level-3 tables an operation needs, allocated before anything
 * changes. Only the first and the last chunk of a range can be partial,
 * so two suffice: set needs one for a partial chunk with no entry, clear
 * one to split a 2 MiB leaf it only partly covers (unless the chunk
 * already owns a table to take back).
 */
struct l3_spares {
	uint64_t *t[2];
	unsigned n, used;
};

static int spares_get(struct l3_spares *s, uint64_t va, uint64_t end)
{
	const uint64_t last = UPMD_MAX(UPMD_ALIGN_DOWN(end - 1, L2_SPAN), va);
	const uint64_t starts[2] = { va, last };
	unsigned i;

	s->n = s->used = 0;
	for (i = 0; i < (last == va ? 1u : 2u); i++) {
		uint64_t a = starts[i], next = chunk_end(a, end);

		/* A chunk that owns a table (published or kept) needs no new one. */
		if (whole_chunk(a, next) || *owned_slot(a))
			continue;
		s->t[s->n] = table_alloc();
		if (!s->t[s->n]) {
			while (s->n)
				free(s->t[--s->n]);
			return -ENOMEM;
		}
		s->n++;
	}
	return 0;
}

/* A level-3 table for the chunk at @va, which has none published: the
 * one it owns, or a spare that it owns from now on. */
static uint64_t *l3_take(uint64_t va, struct l3_spares *s)
{
	uint64_t **r = owned_slot(va);

	if (!*r)
		*r = s->t[s->used++];
	return *r;
}

/* Free what the operation did not use (only on paths that failed early). */
static void spares_put(struct l3_spares *s)
{
	while (s->n > s->used)
		free(s->t[--s->n]);
}

/* Record [va, end) -> delta; every page is free and every GiB has its bookkeeping. */
static void write_set(uint64_t va, uint64_t end, uint64_t delta, struct l3_spares *s)
{
	const uint64_t v = delta | TE_VALID;

	while (va < end) {
		uint64_t *slot = &l2_table(va)[l2_index(va)];
		uint64_t next = chunk_end(va, end), e = te_load(slot), *t3;

		if (whole_chunk(va, next)) {
			/* One leaf; a level-3 table here (empty: checked) stays
			 * with the chunk for its next split. */
			te_publish(slot, v);
		} else if (e & TE_TABLE) {
			for (t3 = l3_table(e); va < next; va += L3_SPAN)
				te_publish(&t3[l3_index(va)], v);
			continue;
		} else {
			t3 = l3_take(va, s);
			for (unsigned i = 0; i < TE_ENTRIES; i++)
				te_fill(&t3[i], 0);
			for (uint64_t a = va; a < next; a += L3_SPAN)
				te_fill(&t3[l3_index(a)], v);
			te_publish(slot, (uint64_t)(uintptr_t)t3 | TE_TABLE);
		}
		va = next;
	}
}

/* Forget [va, end); every page is recorded. */
static void write_clear(uint64_t va, uint64_t end, struct l3_spares *s)
{
	while (va < end) {
		uint64_t *slot = &l2_table(va)[l2_index(va)];
		uint64_t next = chunk_end(va, end), e = te_load(slot), *t3;
		unsigned i;

		if (e & TE_TABLE) {
			/* An emptied level-3 table stays: a reader may hold it. */
			for (t3 = l3_table(e); va < next; va += L3_SPAN)
				te_publish(&t3[l3_index(va)], 0);
			continue;
		}
		if (whole_chunk(va, next)) {
			te_publish(slot, 0);
		} else {
			/* Split the 2 MiB leaf: every page keeps its delta but these. */
			t3 = l3_take(va, s);
			for (i = 0; i < TE_ENTRIES; i++)
				te_fill(&t3[i], e);
			for (uint64_t a = va; a < next; a += L3_SPAN)
				te_fill(&t3[l3_index(a)], 0);
			te_publish(slot, (uint64_t)(uintptr_t)t3 | TE_TABLE);
		}
		va = next;
	}
}

/* ---- the extents -------------------------------------------------------------- */

static int ext_reserve(size_t extra)
{
	size_t cap;
	struct extent *e;
	uint64_t *m;

	if (ext_n + extra <= ext_cap)
		return 0;
	cap = ext_cap ? ext_cap * 2 : 64;
	while (cap < ext_n + extra)
		cap *= 2;
	e = realloc(ext, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	ext = e;
	m = realloc(ext_maxend, cap * sizeof(*m));
	if (!m)
		return -ENOMEM;	/* ext is larger than needed: harmless */
	ext_maxend = m;
	ext_cap = cap;
	return 0;
}

static void ext_fix_maxend(size_t from)
{
	size_t i;

	for (i = from; i < ext_n; i++) {
		uint64_t end = ext[i].iova + ext[i].len;

		ext_maxend[i] = i && ext_maxend[i - 1] > end ? ext_maxend[i - 1] : end;
	}
}

/* The first extent ordered after (iova, va). */
static size_t ext_upper(uint64_t iova, uint64_t va)
{
	size_t lo = 0, hi = ext_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ext[mid].iova < iova || (ext[mid].iova == iova && ext[mid].va <= va))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room is reserved. */
static void ext_insert(uint64_t va, uint64_t iova, uint64_t len)
{
	size_t i = ext_upper(iova, va);

	memmove(&ext[i + 1], &ext[i], (ext_n - i) * sizeof(*ext));
	ext[i] = (struct extent){ va, iova, len };
	ext_n++;
	ext_fix_maxend(i);
}

static void ext_remove(size_t i)
{
	memmove(&ext[i], &ext[i + 1], (ext_n - i - 1) * sizeof(*ext));
	ext_n--;
	ext_fix_maxend(i);
}

/* The extent holding byte @iova, at byte @va unless @any_va. */
static bool ext_find(uint64_t iova, uint64_t va, bool any_va, size_t *out)
{
	size_t i = ext_upper(iova, UINT64_MAX);

	while (i-- > 0 && ext_maxend[i] > iova) {
		const struct extent *x = &ext[i];

		if (iova - x->iova < x->len && (any_va || x->va + (iova - x->iova) == va)) {
			*out = i;
			return true;
		}
	}
	return false;
}

/* [va, va+len) at @iova is about to be recorded: add it, merged with the
 * extents on either side that continue it in both VA and IOVA. */
static void ext_add(uint64_t va, uint64_t iova, uint64_t len)
{
	const uint64_t v = (iova - va) | TE_VALID;
	size_t i;

	if (va && iova && entry_at(va - L3_SPAN) == v && ext_find(iova - 1, va - 1, false, &i)) {
		va = ext[i].va;
		iova = ext[i].iova;
		len += ext[i].len;
		ext_remove(i);
	}
	if (va + len < VA_END && entry_at(va + len) == v && ext_find(iova + len, va + len, false, &i)) {
		len += ext[i].len;
		ext_remove(i);
	}
	ext_insert(va, iova, len);
}

/* [va, end), all recorded, is about to be forgotten: cut it out, one run
 * of equal entries (one extent or part of one) at a time. Only the first
 * and the last cut can leave a piece, and only a single cut two. */
static void ext_cut(uint64_t va, uint64_t end)
{
	while (va < end) {
		uint64_t e = entry_at(va), run = run_end(va, end, e), stop;
		struct extent x;
		size_t i;

		if (!ext_find(va + (e & ~TE_FLAGS), va, false, &i)) {
			va = run;	/* not reached: every recorded page has its extent */
			continue;
		}
		x = ext[i];
		stop = UPMD_MIN(run, x.va + x.len);
		ext_remove(i);
		if (x.va < va)
			ext_insert(x.va, x.iova, va - x.va);
		if (x.va + x.len > stop)
			ext_insert(stop, x.iova + (stop - x.va), x.va + x.len - stop);
		va = stop;
	}
}

/* ---- the API -------------------------------------------------------------------- */

static bool va_range_ok(uint64_t va, uint64_t len)
{
	return len && !((va | len) & (L3_SPAN - 1)) && va < VA_END && len <= VA_END - va;
}

int upmd_iova_table_set(const void *vap, uint64_t iova, size_t size)
{
	uint64_t va = (uintptr_t)vap, len = size, end;
	struct l3_spares s;
	int rc;

	/* The IOVA range may not wrap, and no byte of it may be UPMD_BAD_IOVA. */
	if (!va_range_ok(va, len) || (iova & (L3_SPAN - 1)) || len > UINT64_MAX - iova)
		return -EINVAL;
	end = va + len;
	pthread_mutex_lock(&table_lock);
	if (range_any(va, end)) {
		rc = -EEXIST;
		goto out;
	}
	rc = ext_reserve(1);
	if (rc == 0)
		rc = l2_tables_ensure(va, end);
	if (rc == 0)
		rc = spares_get(&s, va, end);
	if (rc < 0)
		goto out;
	/* Nothing below can fail. */
	ext_add(va, iova, len);
	write_set(va, end, iova - va, &s);
	spares_put(&s);
out:
	pthread_mutex_unlock(&table_lock);
	return rc;
}

int upmd_iova_table_clear(const void *vap, size_t size)
{
	uint64_t va = (uintptr_t)vap, len = size, end;
	struct l3_spares s;
	int rc;

	if (!va_range_ok(va, len))
		return -EINVAL;
	end = va + len;
	pthread_mutex_lock(&table_lock);
	if (!range_all(va, end)) {
		rc = -ENOENT;
		goto out;
	}
	rc = ext_reserve(1);	/* cutting out of one extent's middle */
	if (rc == 0)
		rc = spares_get(&s, va, end);
	if (rc < 0)
		goto out;
	ext_cut(va, end);	/* reads the entries: before they go */
	write_clear(va, end, &s);
	spares_put(&s);
out:
	pthread_mutex_unlock(&table_lock);
	return rc;
}

void *upmd_iova_table_to_va(uint64_t iova)
{
	void *va = NULL;
	size_t i;

	pthread_mutex_lock(&table_lock);
	if (ext_find(iova, 0, true, &i))
		va = (void *)(uintptr_t)(ext[i].va + (iova - ext[i].iova));
	pthread_mutex_unlock(&table_lock);
	return va;
}

void upmd_iova_table_reset(void)
{
	unsigned i, j;

	pthread_mutex_lock(&table_lock);
	for (i = 0; i < L1_ENTRIES; i++) {
		uint64_t **r = span_l3[i], *t = &upmd_iova_table_l2[(uint64_t)i * TE_ENTRIES];

		if (!r)
			continue;
		for (j = 0; j < TE_ENTRIES; j++)
			free(r[j]);	/* published or not, the chunk owns it */
		/* The span's entries are one page: give it back (it reads as
		 * zeros again) and make it read-only as it was. */
		if (madvise(t, TE_BYTES, MADV_DONTNEED) != 0)
			memset(t, 0, TE_BYTES);
		mprotect(t, TE_BYTES, PROT_READ);
		free(r);
		span_l3[i] = NULL;
	}
	free(ext);
	free(ext_maxend);
	ext = NULL;
	ext_maxend = NULL;
	ext_n = ext_cap = 0;
	pthread_mutex_unlock(&table_lock);
}

unsigned upmd_iova_table_spans_(void)
{
	unsigned i, n = 0;

	pthread_mutex_lock(&table_lock);
	for (i = 0; i < L1_ENTRIES; i++)
		n += span_l3[i] != NULL;
	pthread_mutex_unlock(&table_lock);
	return n;
}

bool upmd_iova_table_span_used_(const void *va)
{
	uint64_t a = (uintptr_t)va;
	bool used;

	if (a >> UPMD_IOVA_TABLE_VA_BITS)
		return false;
	pthread_mutex_lock(&table_lock);
	used = span_l3[a >> L1_SHIFT] != NULL;
	pthread_mutex_unlock(&table_lock);
	return used;
}
