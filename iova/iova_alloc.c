/*
 * The IOVA range allocator: free space as address-ordered blocks in an AVL
 * tree, each node augmented with the largest block span in its subtree.
 *
 * Blocks are kept as inclusive [start, last] so a range ending at
 * UINT64_MAX and sizes up to 2^64 - granule need no special cases; a
 * node's "span" is last - start (size - 1), which always fits.
 *
 * First fit with alignment (upmd_iova_alloc), in three steps:
 *  1. An in-order walk that skips subtrees whose largest span is below
 *     size - 1 and tries the exact test (the aligned start inside the block
 *     leaves room for size) on each remaining node: true first fit. With
 *     align <= granule every node it reaches fits, so it is one O(log n)
 *     descent. With larger alignments blocks of the right size may fail on
 *     alignment; the walk gives up after SCAN_BUDGET such candidates, so it
 *     stays O(log n + SCAN_BUDGET).
 *  2. Then the guaranteed descent: need = (size - 1) + (align - granule).
 *     Every block start is granule aligned, so a block whose span is >= need
 *     fits wherever it starts; the augmentation leads to the lowest such
 *     block in O(log n). Each node passed on its right (below that block in
 *     address order) is tried with the exact test on the way, and the first
 *     that passes is taken.
 *  3. Only when no block passes the guaranteed test (near exhaustion, or an
 *     alignment larger than any free block) does the walk of step 1 run
 *     without a budget, so -ENOSPC means that no free block fits at all.
 *     This is O(n) in the worst case.
 * Free coalesces with both neighbours (O(log n)). Nodes come from a slab
 * with a free list, so steady-state alloc/free do not call malloc. With
 * NDEBUG undefined a second tree of live allocations makes a free that does
 * not match one allocation exactly fail with -ENOENT.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/iova.h>

#ifndef NDEBUG
#define IOVA_TRACK_LIVE 1
#else
#define IOVA_TRACK_LIVE 0
#endif

/* AVL height is < 1.45 log2(n + 2): 96 covers any tree that fits in memory. */
#define MAX_DEPTH 96
/* Candidate nodes a first-fit scan may visit before the guaranteed descent. */
#define SCAN_BUDGET 32

struct node {
	struct node *l, *r;
	uint64_t start, last;	/* inclusive */
	uint64_t max;		/* the largest last - start in this subtree */
	int h;
};

struct chunk {
	struct chunk *next;
	size_t n;
	struct node nodes[];
};

struct upmd_iova_allocator {
	pthread_mutex_t lock;
	uint64_t granule;
	unsigned gshift;
	struct node *root;	/* free blocks */
	unsigned nblocks;
	uint64_t free_gr;	/* free granules (2^64 bytes would not fit) */
	struct upmd_iova_range *r;	/* allowed: sorted, trimmed, merged */
	unsigned nr;
	struct node *pool;	/* free nodes, linked through ->l */
	size_t npool;
	struct chunk *chunks;
	size_t next_chunk;
#if IOVA_TRACK_LIVE
	struct node *live;	/* live allocations, keyed by start */
#endif
};

/* ---- node storage ---- */

static int pool_reserve(struct upmd_iova_allocator *a, size_t k)
{
	while (a->npool < k) {
		size_t n = a->next_chunk, i;
		struct chunk *c = malloc(sizeof(*c) + n * sizeof(struct node));

		if (!c)
			return -ENOMEM;
		c->n = n;
		c->next = a->chunks;
		a->chunks = c;
		for (i = 0; i < n; i++) {
			c->nodes[i].l = a->pool;
			a->pool = &c->nodes[i];
		}
		a->npool += n;
		if (a->next_chunk < 4096)
			a->next_chunk *= 2;
	}
	return 0;
}

/* Only after pool_reserve() said there is one. */
static struct node *node_get(struct upmd_iova_allocator *a, uint64_t start, uint64_t last)
{
	struct node *n = a->pool;

	a->pool = n->l;
	a->npool--;
	n->l = n->r = NULL;
	n->start = start;
	n->last = last;
	n->max = last - start;
	n->h = 1;
	return n;
}

static void node_put(struct upmd_iova_allocator *a, struct node *n)
{
	n->l = a->pool;
	a->pool = n;
	a->npool++;
}

static void tree_release(struct upmd_iova_allocator *a, struct node *n)
{
	while (n) {
		struct node *r = n->r;

		tree_release(a, n->l);
		node_put(a, n);
		n = r;
	}
}

/* ---- the AVL tree ---- */

static inline int height(const struct node *n)
{
	return n ? n->h : 0;
}

static inline void fix(struct node *n)
{
	int hl = height(n->l), hr = height(n->r);
	uint64_t m = n->last - n->start;

	n->h = 1 + (hl > hr ? hl : hr);
	if (n->l && n->l->max > m)
		m = n->l->max;
	if (n->r && n->r->max > m)
		m = n->r->max;
	n->max = m;
}

static struct node *rot_right(struct node *n)
{
	struct node *x = n->l;

	n->l = x->r;
	x->r = n;
	fix(n);
	fix(x);
	return x;
}

static struct node *rot_left(struct node *n)
{
	struct node *x = n->r;

	n->r = x->l;
	x->l = n;
	fix(n);
	fix(x);
	return x;
}

static struct node *balance(struct node *n)
{
	int bf;

	if (!n)
		return NULL;
	fix(n);
	bf = height(n->l) - height(n->r);
	if (bf > 1) {
		if (height(n->l->l) < height(n->l->r))
			n->l = rot_left(n->l);
		return rot_right(n);
	}
	if (bf < -1) {
		if (height(n->r->r) < height(n->r->l))
			n->r = rot_right(n->r);
		return rot_left(n);
	}
	return n;
}

/*
 * Rebalance and refresh the augmentation bottom-up along @path. Every
 * link from index @keep down must be refreshed (the deepest may hold a
 * different subtree now: a removal moves a child up; a removal with two
 * children also changes a node higher on the path in place). Above them,
 * a subtree that kept its root, its height and its largest free block
 * changes nothing higher up, so the walk stops there: most changes stop
 * within a level or two instead of climbing to the root.
 */
static void retrace_keep(struct node ***path, int depth, int keep)
{
	while (depth-- > 0) {
		struct node *n = *path[depth], *b;
		int h = n ? n->h : -1;
		uint64_t m = n ? n->max : 0;

		b = balance(n);
		*path[depth] = b;
		if (depth < keep && b && b == n && b->h == h && b->max == m)
			return;
	}
}

/* The usual case: only the deepest link is new. */
static void retrace(struct node ***path, int depth)
{
	retrace_keep(path, depth, depth - 1);
}

static void tree_insert(struct node **root, struct node *nn)
{
	struct node **path[MAX_DEPTH], **link = root;
	int d = 0;

	while (*link) {
		path[d++] = link;
		link = nn->start < (*link)->start ? &(*link)->l : &(*link)->r;
	}
	*link = nn;
	retrace(path, d);
}

/* The path from the root to the node starting at @key, that node's link last. */
static int tree_path(struct node **root, uint64_t key, struct node ***path)
{
	struct node **link = root;
	int d = 0;

	while (*link) {
		path[d++] = link;
		if (key == (*link)->start)
			return d;
		link = key < (*link)->start ? &(*link)->l : &(*link)->r;
	}
	return -1;
}

/* Remove the node starting at @key (it exists) and return it. */
static struct node *tree_remove(struct node **root, uint64_t key)
{
	struct node **path[MAX_DEPTH], **link;
	struct node *n, *s;
	int d = tree_path(root, key, path), keep;

	link = path[d - 1];
	n = *link;
	if (!n->l || !n->r) {
		*link = n->l ? n->l : n->r;
		retrace(path, d);
		return n;
	}
	/* Two children: move the successor's block here and unlink it. */
	keep = d - 1;	/* @n's own link: its block changes in place */
	link = &n->r;
	path[d++] = link;
	while ((*link)->l) {
		link = &(*link)->l;
		path[d++] = link;
	}
	s = *link;
	*link = s->r;
	n->start = s->start;
	n->last = s->last;
	retrace_keep(path, d, keep);
	return s;
}

/* The node with the greatest start <= key, or NULL. */
static struct node *tree_floor(struct node *n, uint64_t key)
{
	struct node *best = NULL;

	while (n) {
		if (n->start <= key) {
			best = n;
			n = n->r;
		} else {
			n = n->l;
		}
	}
	return best;
}

/* The node with the smallest start > key, or NULL. */
static struct node *tree_above(struct node *n, uint64_t key)
{
	struct node *best = NULL;

	while (n) {
		if (n->start > key) {
			best = n;
			n = n->l;
		} else {
			n = n->r;
		}
	}
	return best;
}

/* Build a balanced tree from sorted blocks (heights differ by at most one). */
static struct node *tree_build(struct upmd_iova_allocator *a, const struct upmd_iova_range *b, size_t n)
{
	size_t mid = n / 2;
	struct node *x;

	if (!n)
		return NULL;
	x = node_get(a, b[mid].start, b[mid].last);
	x->l = tree_build(a, b, mid);
	x->r = tree_build(a, b + mid + 1, n - mid - 1);
	fix(x);
	return x;
}

/* ---- ranges ---- */

static int cmp_range(const void *x, const void *y)
{
	const struct upmd_iova_range *p = x, *q = y;

	return p->start < q->start ? -1 : p->start > q->start;
}

/*
 * Validate, sort, trim to the granule and the floor, merge adjacent ones.
 * Returns the number kept in *out (malloc'd, may be 0 entries).
 */
static int ranges_normalize(const struct upmd_iova_range *in, unsigned n, uint64_t granule, uint64_t floor,
			    struct upmd_iova_range **out, unsigned *nout)
{
	struct upmd_iova_range *v;
	uint64_t lo;
	bool floor_ok = floor <= UINT64_MAX - (granule - 1);
	unsigned i, k = 0;

	if (!in || !n)
		return -EINVAL;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, in, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_range);
	for (i = 0; i < n; i++) {
		if (v[i].start > v[i].last || (i && v[i].start <= v[i - 1].last)) {
			free(v);
			return -EINVAL;
		}
	}
	lo = floor_ok ? UPMD_ALIGN_UP(floor, granule) : 0;
	for (i = 0; i < n && floor_ok; i++) {
		uint64_t s = UPMD_MAX(v[i].start, lo), l = v[i].last;

		if (s > UINT64_MAX - (granule - 1))
			continue;
		s = UPMD_ALIGN_UP(s, granule);
		if (l != UINT64_MAX) {
			if (UPMD_ALIGN_DOWN(l + 1, granule) == 0)
				continue;
			l = UPMD_ALIGN_DOWN(l + 1, granule) - 1;
		}
		if (s > l)
			continue;
		if (k && v[k - 1].last != UINT64_MAX && v[k - 1].last + 1 == s) {
			v[k - 1].last = l;
		} else {
			v[k].start = s;
			v[k].last = l;
			k++;
		}
	}
	*out = v;
	*nout = k;
	return 0;
}

/* True if [s, l] lies inside one allowed range. */
static bool inside(const struct upmd_iova_allocator *a, uint64_t s, uint64_t l)
{
	unsigned lo = 0, hi = a->nr;

	while (lo < hi) {	/* the first range with start > s */
		unsigned mid = (lo + hi) / 2;

		if (a->r[mid].start <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && l <= a->r[lo - 1].last;
}

/* Validate (iova, size): granule aligned, no wrap, inside the ranges. */
static int check_span(const struct upmd_iova_allocator *a, uint64_t iova, uint64_t size, uint64_t *last)
{
	uint64_t m = a->granule - 1;

	if (!size || (size & m) || (iova & m) || size - 1 > UINT64_MAX - iova)
		return -EINVAL;
	*last = iova + (size - 1);
	return inside(a, iova, *last) ? 0 : -EINVAL;
}

/* ---- create / destroy ---- */

int upmd_iova_allocator_create(const struct upmd_iova_range *ranges, unsigned n, uint64_t granule,
			       uint64_t floor, struct upmd_iova_allocator **out)
{
	struct upmd_iova_allocator *a;
	int rc;

	if (!out || !UPMD_IS_POW2(granule) || granule < 4096)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->granule = granule;
	a->gshift = (unsigned)__builtin_ctzll(granule);
	a->next_chunk = 64;
	rc = ranges_normalize(ranges, n, granule, floor, &a->r, &a->nr);
	if (rc < 0) {
		pthread_mutex_destroy(&a->lock);
		free(a);
		return rc;
	}
	rc = pool_reserve(a, a->nr + 16);
	if (rc < 0) {
		upmd_iova_allocator_destroy(a);
		return rc;
	}
	a->root = tree_build(a, a->r, a->nr);
	a->nblocks = a->nr;
	for (unsigned i = 0; i < a->nr; i++)
		a->free_gr += ((a->r[i].last - a->r[i].start) >> a->gshift) + 1;
	*out = a;
	return 0;
}

void upmd_iova_allocator_destroy(struct upmd_iova_allocator *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a->r);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* ---- alloc ---- */

/* Could [start, last] hold size (span m1 = size - 1) at an @align boundary? */
static inline bool fits_exact(const struct node *n, uint64_t m1, uint64_t align, uint64_t *at)
{
	uint64_t off = n->start & (align - 1), inc = off ? align - off : 0;

	if (inc > n->last - n->start || n->last - (n->start + inc) < m1)
		return false;
	*at = n->start + inc;
	return true;
}

/*
 * The lowest exact fit in the subtree, skipping subtrees too small for it.
 * Gives up (NULL, *budget == 0) after visiting *budget candidate nodes.
 */
static struct node *scan_exact(struct node *n, uint64_t m1, uint64_t align, uint64_t *at, unsigned *budget)
{
	while (n && n->max >= m1) {
		struct node *x = scan_exact(n->l, m1, align, at, budget);

		if (x || !*budget)
			return x;
		--*budget;
		if (fits_exact(n, m1, align, at))
			return n;
		n = n->r;
	}
	return NULL;
}

static struct node *find_fit(const struct upmd_iova_allocator *a, uint64_t size, uint64_t align, uint64_t *at)
{
	uint64_t m1 = size - 1, slack = align - a->granule, need;
	unsigned budget = SCAN_BUDGET;
	struct node *n = a->root, *x;

	if (!n)
		return NULL;
	/* True first fit, as long as few candidates fail on alignment. */
	x = scan_exact(n, m1, align, at, &budget);
	if (x || budget)
		return x;
	if (m1 <= UINT64_MAX - slack && n->max >= (need = m1 + slack)) {
		while (n) {
			if (n->l && n->l->max >= need) {
				n = n->l;
				continue;
			}
			/* Below every remaining candidate: take it if it fits exactly. */
			if (fits_exact(n, m1, align, at))
				return n;
			n = n->r;
		}
		return NULL;	/* not reached: the guaranteed block fits exactly */
	}
	budget = UINT32_MAX;
	return scan_exact(a->root, m1, align, at, &budget);
}

/* Take [s, l] out of free block @n (it contains it); nodes are reserved. */
static void carve(struct upmd_iova_allocator *a, struct node *n, uint64_t s, uint64_t l)
{
	struct node **path[MAX_DEPTH];
	bool has_l = s > n->start, has_r = l < n->last;
	uint64_t old_last = n->last;
	int d;

	a->free_gr -= ((l - s) >> a->gshift) + 1;
	if (!has_l && !has_r) {
		node_put(a, tree_remove(&a->root, n->start));
		a->nblocks--;
		return;
	}
	d = tree_path(&a->root, n->start, path);
	if (has_l)
		n->last = s - 1;
	else
		n->start = l + 1;	/* still between its neighbours */
	retrace(path, d);
	if (has_l && has_r) {
		tree_insert(&a->root, node_get(a, l + 1, old_last));
		a->nblocks++;
	}
}

static void live_add(struct upmd_iova_allocator *a, uint64_t s, uint64_t l)
{
#if IOVA_TRACK_LIVE
	tree_insert(&a->live, node_get(a, s, l));
#else
	(void)a;
	(void)s;
	(void)l;
#endif
}

int upmd_iova_alloc(struct upmd_iova_allocator *a, uint64_t size, uint64_t align, uint64_t *iova)
{
	struct node *n;
	uint64_t at;
	int rc;

	if (!a || !iova || !size || (size & (a->granule - 1)) || (align && !UPMD_IS_POW2(align)))
		return -EINVAL;
	if (align < a->granule)
		align = a->granule;
	pthread_mutex_lock(&a->lock);
	rc = pool_reserve(a, 2);
	if (rc < 0)
		goto out;
	n = find_fit(a, size, align, &at);
	if (!n) {
		rc = -ENOSPC;
		goto out;
	}
	carve(a, n, at, at + (size - 1));
	live_add(a, at, at + (size - 1));
	*iova = at;
out:
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int upmd_iova_alloc_fixed(struct upmd_iova_allocator *a, uint64_t iova, uint64_t size)
{
	struct node *n;
	uint64_t l;
	int rc;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	rc = check_span(a, iova, size, &l);
	if (rc < 0)
		goto out;
	rc = pool_reserve(a, 2);
	if (rc < 0)
		goto out;
	n = tree_floor(a->root, iova);
	if (!n || n->last < l) {
		rc = -EEXIST;
		goto out;
	}
	carve(a, n, iova, l);
	live_add(a, iova, l);
out:
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* ---- free ---- */

int upmd_iova_free(struct upmd_iova_allocator *a, uint64_t iova, uint64_t size)
{
	struct node *p, *s;
	bool mp, ms;
	uint64_t l;
	int rc;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	rc = check_span(a, iova, size, &l);
	if (rc < 0)
		goto out;
	p = tree_floor(a->root, l);
	if (p && p->last >= iova) {
		rc = -ENOENT;	/* part of it is free already */
		goto out;
	}
#if IOVA_TRACK_LIVE
	{
		struct node *x = tree_floor(a->live, iova);

		if (!x || x->start != iova || x->last != l) {
			rc = -ENOENT;	/* not one allocation */
			goto out;
		}
		node_put(a, tree_remove(&a->live, iova));	/* so the pool has a node */
	}
#endif
	s = tree_above(a->root, l);
	mp = p && p->last + 1 == iova;
	ms = s && l + 1 == s->start;
	if (!mp && !ms && pool_reserve(a, 1) < 0) {
		rc = -ENOMEM;	/* release builds only: debug builds just freed a node */
		goto out;
	}
	if (mp && ms) {
		uint64_t s_last = s->last;
		struct node **path[MAX_DEPTH];
		int d;

		node_put(a, tree_remove(&a->root, s->start));
		a->nblocks--;
		/* @p may have moved into another node: find it again. */
		p = tree_floor(a->root, iova);
		d = tree_path(&a->root, p->start, path);
		p->last = s_last;
		retrace(path, d);
	} else if (mp || ms) {
		struct node *x = mp ? p : s, **path[MAX_DEPTH];
		int d = tree_path(&a->root, x->start, path);

		if (mp)
			x->last = l;
		else
			x->start = iova;
		retrace(path, d);
	} else {
		tree_insert(&a->root, node_get(a, iova, l));
		a->nblocks++;
	}
	a->free_gr += ((l - iova) >> a->gshift) + 1;
out:
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* ---- restrict ---- */

/* Is [s, l] wholly free? */
static bool span_free(const struct upmd_iova_allocator *a, uint64_t s, uint64_t l)
{
	const struct node *p = tree_floor(a->root, s);

	return p && p->last >= l;
}

struct collect {
	const struct upmd_iova_range *e;
	unsigned ne, i;
	struct upmd_iova_range *out;
	size_t n;
	uint64_t gr;
	unsigned shift;
};

/* In order: intersect each free block with the new ranges. */
static void collect(struct collect *c, const struct node *n)
{
	for (; n; n = n->r) {
		collect(c, n->l);
		while (c->i < c->ne && c->e[c->i].last < n->start)
			c->i++;
		for (unsigned j = c->i; j < c->ne && c->e[j].start <= n->last; j++) {
			uint64_t s = UPMD_MAX(n->start, c->e[j].start), l = UPMD_MIN(n->last, c->e[j].last);

			c->out[c->n].start = s;
			c->out[c->n].last = l;
			c->n++;
			c->gr += ((l - s) >> c->shift) + 1;
		}
	}
}

int upmd_iova_allocator_restrict(struct upmd_iova_allocator *a, const struct upmd_iova_range *ranges,
				 unsigned n)
{
	struct upmd_iova_range *nr = NULL, *e = NULL, *pieces = NULL;
	unsigned nn, ne = 0, i, j;
	struct collect c;
	int rc;

	if (!a)
		return -EINVAL;
	rc = ranges_normalize(ranges, n, a->granule, 0, &nr, &nn);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&a->lock);
	/* The new allowed space is the old one intersected with @ranges. */
	e = malloc((size_t)(a->nr + nn + 1) * sizeof(*e));
	pieces = malloc((size_t)(a->nblocks + a->nr + nn + 1) * sizeof(*pieces));
	if (!e || !pieces) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0, j = 0; i < a->nr && j < nn;) {
		uint64_t s = UPMD_MAX(a->r[i].start, nr[j].start), l = UPMD_MIN(a->r[i].last, nr[j].last);

		if (s <= l) {
			e[ne].start = s;
			e[ne].last = l;
			ne++;
		}
		if (a->r[i].last < nr[j].last)
			i++;
		else
			j++;
	}
	/* Whatever of the old space is dropped must be free. */
	for (i = 0, j = 0; i < a->nr; i++) {
		uint64_t cur = a->r[i].start;
		bool done = false;

		for (; j < ne && e[j].start <= a->r[i].last; j++) {
			if (e[j].start > cur && !span_free(a, cur, e[j].start - 1))
				goto busy;
			if (e[j].last == a->r[i].last) {
				done = true;
			} else {
				cur = e[j].last + 1;
			}
		}
		if (!done && !span_free(a, cur, a->r[i].last))
			goto busy;
	}
	c = (struct collect){ .e = e, .ne = ne, .out = pieces, .shift = a->gshift };
	collect(&c, a->root);
	if (a->npool + a->nblocks < c.n && pool_reserve(a, c.n - a->nblocks) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	tree_release(a, a->root);
	a->root = tree_build(a, pieces, c.n);
	a->nblocks = (unsigned)c.n;
	a->free_gr = c.gr;
	free(a->r);
	a->r = e;
	a->nr = ne;
	e = NULL;
	rc = 0;
	goto out;
busy:
	rc = -EBUSY;
out:
	pthread_mutex_unlock(&a->lock);
	free(nr);
	free(e);
	free(pieces);
	return rc;
}

/* ---- stats ---- */

uint64_t upmd_iova_allocator_free_bytes(struct upmd_iova_allocator *a)
{
	uint64_t gr;

	pthread_mutex_lock(&a->lock);
	gr = a->free_gr;
	pthread_mutex_unlock(&a->lock);
	/* The whole 64-bit space is 2^64 bytes: saturate. */
	return gr > (UINT64_MAX >> a->gshift) ? UINT64_MAX : gr << a->gshift;
}

unsigned upmd_iova_allocator_free_blocks(struct upmd_iova_allocator *a)
{
	unsigned n;

	pthread_mutex_lock(&a->lock);
	n = a->nblocks;
	pthread_mutex_unlock(&a->lock);
	return n;
}
