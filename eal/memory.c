/* Process memory: hugepage discovery, reservation per NUMA node, segments, and their one mapping into the IOAS. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/magic.h>

#include <numa.h>
#include <numaif.h>

#include <upmd/ioas.h>
#include <upmd/iova.h>
#include <upmd/log.h>
#include <upmd/memory.h>

#include "eal_private.h"

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26	/* <linux/memfd.h>, which clashes with glibc's MFD_* */
#endif

#define SYSFS_DEFAULT "/sys"
#define MOUNTS_DEFAULT "/proc/mounts"
#define MEMINFO_DEFAULT "/proc/meminfo"
#define HUGE_POOL_DIR "kernel/mm/hugepages"
#define MAX_POOLS 8
#define SMALL_PAGE 4096UL

/*
 * One page size per process and at most one segment per NUMA node: every
 * segment costs an IOAS mapping and a step in the VA->IOVA lookup, so a few
 * large ones beat many small ones.
 */
#define MAX_SEGS UPMD_MAX_NUMA_NODES

struct seg {
	struct upmd_memseg ms;		/* the public view: first, so get() can return it */
	struct upmd_ioas *ioas;		/* where it is mapped, or NULL */
};

static struct {
	struct seg segs[MAX_SEGS];
	unsigned n;
} mem;

/* ---- small helpers ---- */

static const char *size_str(size_t sz, char *buf, size_t len)
{
	if (sz >= UPMD_GB && sz % UPMD_GB == 0)
		snprintf(buf, len, "%zu GiB", (size_t)(sz / UPMD_GB));
	else if (sz >= UPMD_MB && sz % UPMD_MB == 0)
		snprintf(buf, len, "%zu MiB", (size_t)(sz / UPMD_MB));
	else
		snprintf(buf, len, "%zu KiB", (size_t)(sz / UPMD_KB));
	return buf;
}

static int read_ulong(const char *path, unsigned long *v)
{
	char buf[64], *end;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	errno = 0;
	*v = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && !isspace((unsigned char)*end)))
		return -EINVAL;
	return 0;
}

/* "2M", "2048k", "1G", "2097152": the forms hugetlbfs accepts for pagesize=. */
static size_t parse_size(const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (tolower((unsigned char)*end)) {
	case 'k':
		v *= UPMD_KB;
		end++;
		break;
	case 'm':
		v *= UPMD_MB;
		end++;
		break;
	case 'g':
		v *= UPMD_GB;
		end++;
		break;
	default:
		break;
	}
	if (*end && *end != ',')
		return 0;
	return (size_t)v;
}

/* The size hugetlbfs uses for a mount without pagesize=. */
static size_t default_huge_size(const struct eal_mem_conf *c)
{
	const char *path = c->meminfo_path ? c->meminfo_path : MEMINFO_DEFAULT;
	char line[256];
	size_t sz = 2 * UPMD_MB;
	unsigned long kb;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return sz;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1 && kb) {
			sz = kb * UPMD_KB;
			break;
		}
	fclose(f);
	return sz;
}

/* /proc/mounts escapes blanks and backslashes as \ooo octal. */
static void unescape_mount(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

struct huge_mount {
	char dir[PATH_MAX];
	size_t page_sz;
};

/*
 * Every hugetlbfs mount in the mounts file, in file order. A missing file
 * is no mounts (memfd serves then), not an error.
 */
static int scan_mounts(const struct eal_mem_conf *c, struct huge_mount *out, unsigned max)
{
	const char *path = c->mounts_path ? c->mounts_path : MOUNTS_DEFAULT;
	size_t def = 0;
	char *line = NULL;
	size_t cap = 0;
	unsigned n = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (n < max && getline(&line, &cap, f) > 0) {
		char *save = NULL, *dir, *type, *opts, *o;
		size_t sz = 0;

		if (!strtok_r(line, " \t\n", &save))
			continue;
		dir = strtok_r(NULL, " \t\n", &save);
		type = strtok_r(NULL, " \t\n", &save);
		opts = strtok_r(NULL, " \t\n", &save);
		if (!dir || !type || strcmp(type, "hugetlbfs"))
			continue;
		for (o = opts; o; o = strchr(o, ',')) {
			if (*o == ',')
				o++;
			if (!strncmp(o, "pagesize=", 9)) {
				sz = parse_size(o + 9);
				break;
			}
		}
		if (!sz) {
			if (!def)
				def = default_huge_size(c);
			sz = def;
		}
		unescape_mount(dir);
		if (strlen(dir) >= sizeof(out[n].dir))
			continue;
		strcpy(out[n].dir, dir);
		out[n].page_sz = sz;
		n++;
	}
	free(line);
	fclose(f);
	return (int)n;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- discovery ---- */

static int read_pool_nodes(const char *sysfs, struct eal_hugepage_pool *p)
{
	char path[PATH_MAX];
	unsigned long v;
	unsigned node;
	int rc;

	for (node = 0; node < UPMD_MAX_NUMA_NODES; node++) {
		snprintf(path, sizeof(path), "%s/devices/system/node/node%u/hugepages/hugepages-%zukB/free_hugepages",
			 sysfs, node, (size_t)(p->page_sz / UPMD_KB));
		rc = read_ulong(path, &v);
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			return rc;
		p->nr_free_node[node] = (unsigned)v;
		p->node_mask |= 1u << node;
		snprintf(path, sizeof(path), "%s/devices/system/node/node%u/hugepages/hugepages-%zukB/nr_hugepages",
			 sysfs, node, (size_t)(p->page_sz / UPMD_KB));
		if (read_ulong(path, &v) == 0)
			p->nr_total_node[node] = (unsigned)v;
	}
	if (!p->node_mask) {
		/* A kernel built without NUMA has no node directories: one node. */
		p->node_mask = 1;
		p->nr_free_node[0] = p->nr_free;
		p->nr_total_node[0] = p->nr_total;
	}
	return 0;
}

int eal_hugepage_discover(const struct eal_mem_conf *c, struct eal_hugepage_pool *pools,
			  unsigned max)
{
	const char *sysfs;
	struct huge_mount mounts[16];
	size_t sizes[32];
	char path[PATH_MAX];
	unsigned n = 0, i, j;
	struct dirent *e;
	int nm, rc = 0;
	DIR *d;

	if (!c || (!pools && max))
		return -EINVAL;
	sysfs = c->sysfs_root ? c->sysfs_root : SYSFS_DEFAULT;
	snprintf(path, sizeof(path), "%s/" HUGE_POOL_DIR, sysfs);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;	/* a kernel without hugetlb */
	while ((e = readdir(d)) && n < UPMD_DIM(sizes)) {
		unsigned long kb;
		char tail;

		if (sscanf(e->d_name, "hugepages-%lukB%c", &kb, &tail) == 1 && kb)
			sizes[n++] = kb * UPMD_KB;
	}
	closedir(d);
	qsort(sizes, n, sizeof(sizes[0]), cmp_size);
	if (n > max)
		n = max;

	for (i = 0; i < n; i++) {
		struct eal_hugepage_pool *p = &pools[i];
		unsigned long v;

		memset(p, 0, sizeof(*p));
		p->page_sz = sizes[i];
		snprintf(path, sizeof(path), "%s/" HUGE_POOL_DIR "/hugepages-%zukB/nr_hugepages",
			 sysfs, (size_t)(sizes[i] / UPMD_KB));
		rc = read_ulong(path, &v);
		if (rc < 0)
			return rc;
		p->nr_total = (unsigned)v;
		snprintf(path, sizeof(path), "%s/" HUGE_POOL_DIR "/hugepages-%zukB/free_hugepages",
			 sysfs, (size_t)(sizes[i] / UPMD_KB));
		rc = read_ulong(path, &v);
		if (rc < 0)
			return rc;
		p->nr_free = (unsigned)v;
		rc = read_pool_nodes(sysfs, p);
		if (rc < 0)
			return rc;
	}

	nm = scan_mounts(c, mounts, UPMD_DIM(mounts));
	if (nm < 0)
		return nm;
	/* The first mount of a size wins, as the kernel lists them in mount order. */
	for (j = 0; j < (unsigned)nm; j++)
		for (i = 0; i < n; i++)
			if (pools[i].page_sz == mounts[j].page_sz && !pools[i].mount[0])
				strcpy(pools[i].mount, mounts[j].dir);
	return (int)n;
}

/* ---- NUMA placement ---- */

struct saved_policy {
	int mode;
	struct bitmask *mask;	/* NULL: nothing was changed */
};

static int node_usable(unsigned node)
{
	if (numa_available() < 0)
		return node == 0 ? 0 : -EINVAL;
	if ((int)node >= numa_num_possible_nodes() || !numa_bitmask_isbitset(numa_all_nodes_ptr, node))
		return -EINVAL;
	return 0;
}

/*
 * Bind the calling thread's allocations to @node while the segment's pages
 * are allocated (fallocate below): hugetlbfs takes the task's policy for
 * that, and a strict BIND makes a short node fail instead of silently
 * spilling to another one. Restored by policy_restore().
 */
static int policy_bind(unsigned node, struct saved_policy *old)
{
	struct bitmask *bm;
	int rc = 0;

	old->mask = NULL;
	if (numa_available() < 0)
		return 0;
	old->mask = numa_allocate_nodemask();
	bm = numa_allocate_nodemask();
	if (!old->mask || !bm) {
		rc = -ENOMEM;
		goto err;
	}
	if (get_mempolicy(&old->mode, old->mask->maskp, old->mask->size + 1, NULL, 0) < 0) {
		rc = -errno;
		goto err;
	}
	numa_bitmask_setbit(bm, node);
	if (set_mempolicy(MPOL_BIND, bm->maskp, bm->size + 1) < 0) {
		rc = -errno;
		goto err;
	}
	numa_bitmask_free(bm);
	return 0;
err:
	if (bm)
		numa_bitmask_free(bm);
	if (old->mask)
		numa_bitmask_free(old->mask);
	old->mask = NULL;
	return rc;
}

static void policy_restore(struct saved_policy *old)
{
	if (!old->mask)
		return;
	set_mempolicy(old->mode, old->mask->maskp, old->mask->size + 1);
	numa_bitmask_free(old->mask);
	old->mask = NULL;
}

/*
 * Every page present and on @node: a hugetlb page that is not there would
 * be a SIGBUS at first touch, and one on the wrong node a silent
 * performance bug.
 */
static int verify_pages(void *va, size_t len, size_t page_sz, unsigned node)
{
	size_t off;

	for (off = 0; off < len; off += page_sz) {
		unsigned char in = 0;
		int where = -1;

		if (mincore((char *)va + off, SMALL_PAGE, &in) < 0)
			return -errno;
		if (!(in & 1)) {
			UPMD_ERR("mem", "hugepage at offset %zu of a %zu-byte segment is not resident after populate",
				 off, len);
			return -ENOMEM;
		}
		if (numa_available() < 0)
			continue;
		if (get_mempolicy(&where, NULL, 0, (char *)va + off, MPOL_F_NODE | MPOL_F_ADDR) < 0)
			continue;	/* cannot tell: trust the BIND */
		if (where != (int)node) {
			UPMD_ERR("mem", "hugepages for NUMA node %u were placed on node %d: is node %u outside this process's cpuset (cpuset.mems)?",
				 node, where, node);
			return -ENOMEM;
		}
	}
	return 0;
}

/* NUMA node of the CPU the caller runs on (0 without NUMA). */
static int current_node(void)
{
	int cpu, node;

	if (numa_available() < 0)
		return 0;
	cpu = sched_getcpu();
	node = cpu < 0 ? 0 : numa_node_of_cpu(cpu);
	return node < 0 ? 0 : node;
}

/* ---- segments ---- */

static void seg_release(struct seg *s)
{
	if (s->ms.va)
		munmap(s->ms.va, s->ms.len);
	if (s->ms.fd >= 0)
		close(s->ms.fd);
	memset(s, 0, sizeof(*s));
	s->ms.fd = -1;
}

static void release_all(void)
{
	unsigned i;

	for (i = 0; i < mem.n; i++)
		seg_release(&mem.segs[i]);
	mem.n = 0;
}

static struct seg *seg_add(void *va, size_t len, size_t page_sz, int node,
			   enum upmd_memseg_source src, int fd)
{
	struct seg *s = &mem.segs[mem.n++];

	memset(s, 0, sizeof(*s));
	s->ms.va = va;
	s->ms.iova = UPMD_BAD_IOVA;
	s->ms.len = len;
	s->ms.page_sz = page_sz;
	s->ms.socket_id = node;
	s->ms.source = src;
	s->ms.fd = fd;
	return s;
}

static int reserve_anon(size_t len)
{
	void *va;
	int node = current_node();

	if (mem.n == MAX_SEGS)
		return -ENOSPC;
	len = UPMD_ALIGN_UP(len, SMALL_PAGE);
	va = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (va == MAP_FAILED) {
		int rc = -errno;
		char sz[32];

		UPMD_ERR("mem", "cannot map %s of anonymous memory: %s; ask for less with -m",
			 size_str(len, sz, sizeof(sz)), strerror(-rc));
		return rc;
	}
	/* Nothing is touched yet, so a preference decides where pages land;
	 * PREFERRED rather than BIND because --no-huge is the fallback that
	 * should work anywhere. */
	if (numa_available() >= 0) {
		struct bitmask *bm = numa_allocate_nodemask();

		if (bm) {
			numa_bitmask_setbit(bm, (unsigned)node);
			if (mbind(va, len, MPOL_PREFERRED, bm->maskp, bm->size + 1, 0) < 0)
				UPMD_DEBUG("mem", "mbind(PREFERRED, node %d): %s", node, strerror(errno));
			numa_bitmask_free(bm);
		}
	}
	seg_add(va, len, SMALL_PAGE, node, UPMD_MEMSEG_ANON, -1);
	return 0;
}

/* A file on the hugetlbfs mount that no one can ever see by name. */
static int huge_file_open(const char *dir, unsigned node)
{
	char path[PATH_MAX];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* No O_TMPFILE on this hugetlbfs (before Linux 5.1): create (mkostemp's
	 * six-X template) and unlink at once, so a crash leaves at most one
	 * empty file behind. */
	if ((size_t)snprintf(path, sizeof(path), "%s/upmd.%d.node%u." "XX" "XX" "XX", dir, (int)getpid(), node) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int huge_memfd_open(size_t page_sz, unsigned node)
{
	char name[48];
	unsigned shift = (unsigned)__builtin_ctzll(page_sz);
	int fd;

	snprintf(name, sizeof(name), "upmd-node%u-%zukB", node, (size_t)(page_sz / UPMD_KB));
	fd = memfd_create(name, MFD_CLOEXEC | MFD_HUGETLB | (shift << MFD_HUGE_SHIFT));
	return fd < 0 ? -errno : fd;
}

struct huge_plan {
	const struct eal_hugepage_pool *pool;
	const char *dir;		/* hugetlbfs mount, or NULL: memfd */
	unsigned pages[UPMD_MAX_NUMA_NODES];
	const char *sysfs;
};

static void fix_hint(const struct huge_plan *p, int node, unsigned target, char *buf, size_t len)
{
	size_t kb = (size_t)(p->pool->page_sz / UPMD_KB);
	char path[PATH_MAX], devbind[64] = "";
	bool numa = node >= 0 && (p->pool->node_mask & ~1u);

	if (numa)
		snprintf(path, sizeof(path), "%s/devices/system/node/node%d/hugepages/hugepages-%zukB/nr_hugepages",
			 p->sysfs, node, kb);
	else
		snprintf(path, sizeof(path), "%s/" HUGE_POOL_DIR "/hugepages-%zukB/nr_hugepages", p->sysfs, kb);
	/* upmd-devbind sizes the 2 MiB pool only. */
	if (p->pool->page_sz == 2 * UPMD_MB) {
		if (numa)
			snprintf(devbind, sizeof(devbind), "'upmd-devbind --hugepages %u,%d' (or ", target, node);
		else
			snprintf(devbind, sizeof(devbind), "'upmd-devbind --hugepages %u' (or ", target);
	}
	snprintf(buf, len, "reserve them with %s'echo %u > %s'%s or pass --no-huge", devbind, target, path,
		 devbind[0] ? ")" : "");
}

/* @node < 0: a total across nodes. */
static void report_short(const struct huge_plan *p, int node, size_t need, size_t have)
{
	char sz[32], hint[PATH_MAX + 160];
	unsigned base = node >= 0 ? p->pool->nr_total_node[node] : p->pool->nr_total;

	fix_hint(p, node, base + (unsigned)(need - have), hint, sizeof(hint));
	size_str(p->pool->page_sz, sz, sizeof(sz));
	if (node >= 0)
		UPMD_ERR("mem", "no hugepages: %zu x %s needed on node %d, %zu free; %s", need, sz, node, have, hint);
	else
		UPMD_ERR("mem", "no hugepages: %zu x %s needed, %zu free across NUMA nodes; %s", need, sz, have, hint);
}

/*
 * Decide how many pages each node gives. --socket-mem is exact per node;
 * -m is spread evenly over the nodes that have free pages, and a node that
 * runs short passes its share on to the others.
 */
static int plan_pages(const struct eal_mem_conf *c, struct huge_plan *p, bool report)
{
	const struct eal_hugepage_pool *pool = p->pool;
	size_t ps = pool->page_sz, need, left, have = 0;
	unsigned node, usable = 0;
	int rc = 0;

	memset(p->pages, 0, sizeof(p->pages));
	if (c->socket_mem_given) {
		for (node = 0; node < UPMD_MAX_NUMA_NODES; node++) {
			if (!c->socket_mem[node])
				continue;
			need = (c->socket_mem[node] + ps - 1) / ps;
			if (need > pool->nr_free_node[node]) {
				if (report)
					report_short(p, (int)node, need, pool->nr_free_node[node]);
				rc = -ENOMEM;
				continue;
			}
			p->pages[node] = (unsigned)need;
		}
		return rc;
	}

	/* -m means "anywhere this process may allocate": nodes outside its
	 * cpuset (or that the kernel cannot bind to) are left out. */
	for (node = 0; node < UPMD_MAX_NUMA_NODES; node++)
		if ((pool->node_mask & (1u << node)) && node_usable(node) == 0) {
			usable |= 1u << node;
			have += pool->nr_free_node[node];
		}
	need = ((c->total ? c->total : EAL_DEFAULT_MEM) + ps - 1) / ps;
	if (have < need) {
		if (report)
			report_short(p, usable == 1 || pool->node_mask == 1 ? 0 : -1, need, have);
		return -ENOMEM;
	}
	for (left = need; left;) {
		unsigned open_nodes = 0;
		size_t share;

		for (node = 0; node < UPMD_MAX_NUMA_NODES; node++)
			if ((usable & (1u << node)) && pool->nr_free_node[node] > p->pages[node])
				open_nodes++;
		if (!open_nodes)
			return -ENOMEM;	/* cannot happen: have >= need */
		share = (left + open_nodes - 1) / open_nodes;
		for (node = 0; node < UPMD_MAX_NUMA_NODES && left; node++) {
			size_t give;

			if (!(usable & (1u << node)))
				continue;
			give = UPMD_MIN(UPMD_MIN(share, (size_t)(pool->nr_free_node[node] - p->pages[node])), left);
			p->pages[node] += (unsigned)give;
			left -= give;
		}
	}
	return 0;
}

/*
 * One segment of @pages hugepages on @node. The pages are allocated with
 * fallocate before anything maps them: a shortfall is then an error from
 * fallocate instead of a SIGBUS when a page is first touched, and MAP_POPULATE
 * only has to wire pages that already exist.
 */
static int reserve_huge_seg(const struct huge_plan *p, unsigned node)
{
	size_t ps = p->pool->page_sz, len = (size_t)p->pages[node] * ps;
	struct saved_policy pol;
	char sz[32], hint[PATH_MAX + 160];
	void *va;
	int fd, rc;

	if (mem.n == MAX_SEGS)
		return -ENOSPC;
	if (node_usable(node) < 0) {
		UPMD_ERR("mem", "NUMA node %u is not available to this process (%s); ask for memory on another node with --socket-mem",
			 node, numa_available() < 0 ? "the kernel has no NUMA support" : "offline or outside the cpuset");
		return -EINVAL;
	}
	fd = p->dir ? huge_file_open(p->dir, node) : huge_memfd_open(ps, node);
	if (fd < 0) {
		if (p->dir)
			UPMD_ERR("mem", "cannot create a hugepage file in %s: %s", p->dir, strerror(-fd));
		else
			UPMD_ERR("mem", "memfd_create(MFD_HUGETLB, %s pages) failed: %s%s",
				 size_str(ps, sz, sizeof(sz)), strerror(-fd),
				 fd == -EINVAL ? " (this kernel does not offer that page size)" : "");
		return fd;
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		rc = -errno;
		UPMD_ERR("mem", "cannot size a %zu-byte hugepage file: %s", len, strerror(-rc));
		goto err_close;
	}

	rc = policy_bind(node, &pol);
	if (rc < 0) {
		UPMD_ERR("mem", "cannot bind allocations to NUMA node %u: %s", node, strerror(-rc));
		goto err_close;
	}
	rc = fallocate(fd, 0, 0, (off_t)len) < 0 ? -errno : 0;
	policy_restore(&pol);
	if (rc < 0) {
		if (rc == -ENOSPC || rc == -ENOMEM) {
			fix_hint(p, (int)node, p->pool->nr_total_node[node] + p->pages[node], hint, sizeof(hint));
			UPMD_ERR("mem", "no hugepages: the kernel could not supply %u x %s on node %u (sysfs said %u free; other processes, a hugetlb cgroup limit or the cpuset may hold them back); %s",
				 p->pages[node], size_str(ps, sz, sizeof(sz)), node, p->pool->nr_free_node[node], hint);
			rc = -ENOMEM;
		} else {
			UPMD_ERR("mem", "cannot allocate %zu bytes of hugepages: fallocate: %s", len, strerror(-rc));
		}
		goto err_close;
	}

	va = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (va == MAP_FAILED) {
		rc = -errno;
		UPMD_ERR("mem", "cannot map %zu bytes of hugepages: %s", len, strerror(-rc));
		goto err_close;
	}
	rc = verify_pages(va, len, ps, node);
	if (rc < 0)
		goto err_unmap;
	seg_add(va, len, ps, (int)node, p->dir ? UPMD_MEMSEG_HUGETLBFS : UPMD_MEMSEG_MEMFD, fd);
	return 0;

err_unmap:
	munmap(va, len);
err_close:
	close(fd);	/* the file was never linked (or already unlinked): its pages go back */
	return rc;
}

static bool same_dir(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && !strncmp(a, b, la);
}

/* Trust the filesystem rather than the mounts file: a stale or fake entry
 * would otherwise hand out 4 KiB pages labelled as hugepages. */
static size_t hugetlbfs_page_size(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st) < 0 || (unsigned long)st.f_type != HUGETLBFS_MAGIC)
		return 0;
	return (size_t)st.f_bsize;
}

static int huge_dir_pool(const struct eal_mem_conf *c, struct eal_hugepage_pool *pools, unsigned np,
			 const struct eal_hugepage_pool **pool)
{
	struct huge_mount mounts[16];
	char real[PATH_MAX], sz[32];
	bool listed = false;
	size_t ps;
	unsigned i;
	int nm;

	nm = scan_mounts(c, mounts, UPMD_DIM(mounts));
	if (nm < 0)
		return nm;
	if (!realpath(c->huge_dir, real))
		snprintf(real, sizeof(real), "%s", c->huge_dir);
	for (i = 0; i < (unsigned)nm; i++)
		if (same_dir(mounts[i].dir, c->huge_dir) || same_dir(mounts[i].dir, real))
			listed = true;
	ps = hugetlbfs_page_size(c->huge_dir);
	if (!listed || !ps) {
		UPMD_ERR("mem", "--huge-dir %s is not a hugetlbfs mount; mount one with 'mount -t hugetlbfs -o pagesize=2M nodev %s', or leave --huge-dir out to use memfd hugepages",
			 c->huge_dir, c->huge_dir);
		return -EINVAL;
	}
	for (i = 0; i < np; i++)
		if (pools[i].page_sz == ps) {
			*pool = &pools[i];
			return 0;
		}
	UPMD_ERR("mem", "--huge-dir %s serves %s pages, which this kernel has no pool for; pass --no-huge or use another mount",
		 c->huge_dir, size_str(ps, sz, sizeof(sz)));
	return -ENOMEM;
}

/* Memory of every node wanted is a whole number of pages of this size. */
static bool fits_exactly(const struct eal_mem_conf *c, size_t ps)
{
	unsigned node;

	if (!c->socket_mem_given)
		return (c->total ? c->total : EAL_DEFAULT_MEM) % ps == 0;
	for (node = 0; node < UPMD_MAX_NUMA_NODES; node++)
		if (c->socket_mem[node] % ps)
			return false;
	return true;
}

static int reserve_huge(const struct eal_mem_conf *c)
{
	struct eal_hugepage_pool pools[MAX_POOLS];
	const struct eal_hugepage_pool *order[MAX_POOLS];
	struct huge_plan plan = { .sysfs = c->sysfs_root ? c->sysfs_root : SYSFS_DEFAULT };
	unsigned i, no = 0, node, nodes = 0;
	size_t def;
	int np, rc;

	np = eal_hugepage_discover(c, pools, MAX_POOLS);
	if (np < 0) {
		UPMD_ERR("mem", "cannot read the hugepage pools under %s/" HUGE_POOL_DIR ": %s", plan.sysfs,
			 strerror(-np));
		return np;
	}
	if (np == 0) {
		UPMD_ERR("mem", "no hugepages: this kernel offers none (%s/" HUGE_POOL_DIR " is missing or empty); pass --no-huge",
			 plan.sysfs);
		return -ENOMEM;
	}
	for (i = 0; i < (unsigned)np; i++)
		nodes |= pools[i].node_mask;
	if (c->socket_mem_given) {
		bool any = false;

		for (node = 0; node < UPMD_MAX_NUMA_NODES; node++) {
			if (!c->socket_mem[node])
				continue;
			any = true;
			if (!(nodes & (1u << node))) {
				UPMD_ERR("mem", "--socket-mem asks for memory on NUMA node %u, which this machine does not have",
					 node);
				return -EINVAL;
			}
		}
		if (!any) {
			UPMD_ERR("mem", "--socket-mem asks for no memory on any node");
			return -EINVAL;
		}
	}

	if (c->huge_dir) {
		rc = huge_dir_pool(c, pools, (unsigned)np, &plan.pool);
		if (rc < 0)
			return rc;
		plan.dir = c->huge_dir;
		rc = plan_pages(c, &plan, true);
		if (rc < 0)
			return rc;
	} else {
		/* The default size first: it is what the administrator sized.
		 * Another size only when it serves the request without waste. */
		def = default_huge_size(c);
		for (i = 0; i < (unsigned)np; i++)
			if (pools[i].page_sz == def)
				order[no++] = &pools[i];
		for (i = 0; i < (unsigned)np; i++)
			if (pools[i].page_sz != def && fits_exactly(c, pools[i].page_sz))
				order[no++] = &pools[i];
		if (!no)
			order[no++] = &pools[0];
		for (i = 0; i < no; i++) {
			plan.pool = order[i];
			if (plan_pages(c, &plan, false) == 0)
				break;
		}
		if (i == no) {
			plan.pool = order[0];
			return plan_pages(c, &plan, true);
		}
		plan.dir = NULL;
		if (plan.pool->mount[0]) {
			if (hugetlbfs_page_size(plan.pool->mount) == plan.pool->page_sz)
				plan.dir = plan.pool->mount;
			else
				UPMD_WARN("mem", "%s is listed as a hugetlbfs mount but is not one: using memfd hugepages",
					  plan.pool->mount);
		}
	}

	if (!fits_exactly(c, plan.pool->page_sz)) {
		char sz[32];

		UPMD_INFO("mem", "memory asked for is rounded up to whole %s pages",
			  size_str(plan.pool->page_sz, sz, sizeof(sz)));
	}
	for (node = 0; node < UPMD_MAX_NUMA_NODES; node++) {
		if (!plan.pages[node])
			continue;
		rc = reserve_huge_seg(&plan, node);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int eal_memory_init(const struct eal_mem_conf *c)
{
	char sz[32], psz[32];
	unsigned i;
	int rc;

	if (!c)
		return -EINVAL;
	if (mem.n)
		return -EALREADY;
	if (c->no_huge) {
		if (c->socket_mem_given) {
			UPMD_ERR("mem", "--socket-mem needs hugepages; with --no-huge use -m");
			return -EINVAL;
		}
		rc = reserve_anon(c->total ? c->total : EAL_DEFAULT_MEM);
	} else {
		rc = reserve_huge(c);
	}
	if (rc < 0)
		goto err_release;
	rc = eal_memzone_init();
	if (rc < 0)
		goto err_release;
	for (i = 0; i < mem.n; i++) {
		const struct upmd_memseg *ms = &mem.segs[i].ms;
		static const char *const src[] = { "hugetlbfs", "memfd", "anonymous" };

		UPMD_INFO("mem", "segment %u: %s of %s %s pages on node %d at %p", i,
			  size_str(ms->len, sz, sizeof(sz)), src[ms->source],
			  size_str(ms->page_sz, psz, sizeof(psz)), ms->socket_id, ms->va);
	}
	return 0;

err_release:
	release_all();
	return rc;
}

/* ---- the IOAS ---- */

static bool has_cap_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK);
}

static size_t mapped_total(void)
{
	size_t t = 0;
	unsigned i;

	for (i = 0; i < mem.n; i++)
		t += mem.segs[i].ms.len;
	return t;
}

static void memlock_message(size_t need)
{
	struct rlimit rl;
	char lim[32] = "unknown";

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY)
			snprintf(lim, sizeof(lim), "unlimited");
		else
			snprintf(lim, sizeof(lim), "%llu KiB", (unsigned long long)(rl.rlim_cur / 1024));
	}
	UPMD_ERR("mem", "RLIMIT_MEMLOCK is %s but %zu KiB must be pinned: raise it (ulimit -l, or LimitMEMLOCK= in a systemd unit / --ulimit memlock=-1 in a container) or ask for less memory (-m)",
		 lim, need / 1024);
}

/*
 * The kernel charges IOMMU pins against RLIMIT_MEMLOCK unless the process
 * holds CAP_IPC_LOCK; checking first turns a half-done mapping into one
 * clear message.
 */
static int memlock_precheck(size_t need)
{
	struct rlimit rl;

	if (has_cap_ipc_lock() || getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_cur >= need)
		return 0;
	memlock_message(need);
	return -ENOMEM;
}

static void ranges_str(const struct upmd_ioas *ioas, char *buf, size_t len)
{
	const struct upmd_iova_range *r;
	unsigned n = upmd_ioas_ranges(ioas, &r), i;
	size_t used = 0;

	buf[0] = '\0';
	for (i = 0; i < n && used + 1 < len; i++) {
		int w = snprintf(buf + used, len - used, "%s0x%" PRIx64 "-0x%" PRIx64, i ? ", " : "",
				 r[i].start, r[i].last);

		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (!n)
		snprintf(buf, len, "none");
}

static void unmap_segs(void)
{
	unsigned i;

	for (i = 0; i < mem.n; i++) {
		struct seg *s = &mem.segs[i];
		int rc;

		if (!s->ioas)
			continue;
		upmd_iova_table_clear(s->ms.va, s->ms.len);
		rc = upmd_ioas_unmap(s->ioas, s->ms.iova, s->ms.len);
		if (rc < 0)
			UPMD_WARN("mem", "unmapping segment %u (IOVA 0x%" PRIx64 ") failed: %s", i, s->ms.iova,
				  strerror(-rc));
		s->ioas = NULL;
		s->ms.iova = UPMD_BAD_IOVA;
	}
}

int eal_memory_map_ioas(struct upmd_ioas *ioas, enum upmd_iova_mode mode,
			enum upmd_iova_mode *chosen)
{
	char ranges[256];
	unsigned i, bad = 0;
	bool va_ok = true;
	int rc;

	if (!ioas || !chosen || (mode != UPMD_IOVA_MODE_AUTO && mode != UPMD_IOVA_MODE_VA &&
				 mode != UPMD_IOVA_MODE_ALLOC))
		return -EINVAL;
	for (i = 0; i < mem.n; i++)
		if (mem.segs[i].ioas)
			return -EALREADY;

	rc = memlock_precheck(mapped_total());
	if (rc < 0)
		return rc;

	for (i = 0; i < mem.n && va_ok; i++) {
		const struct upmd_memseg *ms = &mem.segs[i].ms;

		if (!upmd_ioas_iova_allowed(ioas, (uint64_t)(uintptr_t)ms->va, ms->len)) {
			va_ok = false;
			bad = i;
		}
	}
	if (!va_ok)
		ranges_str(ioas, ranges, sizeof(ranges));

	switch (mode) {
	case UPMD_IOVA_MODE_VA:
		if (!va_ok) {
			const struct upmd_memseg *ms = &mem.segs[bad].ms;

			UPMD_ERR("mem", "--iova-mode va: segment %u at VA %p-%p lies outside the IOMMU's allowed IOVA ranges (%s); use --iova-mode alloc or leave the option out",
				 bad, ms->va, (void *)((char *)ms->va + ms->len - 1), ranges);
			return -EINVAL;
		}
		UPMD_INFO("mem", "IOVA mode va (asked for): every segment's VA is an allowed IOVA");
		break;
	case UPMD_IOVA_MODE_ALLOC:
		UPMD_INFO("mem", "IOVA mode alloc (asked for): IOVAs come from the IOAS's allowed ranges");
		break;
	default:
		if (va_ok) {
			mode = UPMD_IOVA_MODE_VA;
			UPMD_INFO("mem", "IOVA mode va: every segment's VA is an allowed IOVA");
		} else {
			mode = UPMD_IOVA_MODE_ALLOC;
			UPMD_NOTICE("mem", "IOVA mode alloc: segment %u's VA %p is outside the IOMMU's allowed ranges (%s)",
				    bad, mem.segs[bad].ms.va, ranges);
		}
		break;
	}

	for (i = 0; i < mem.n; i++) {
		struct seg *s = &mem.segs[i];
		uint32_t flags = UPMD_IOAS_MAP_RW;
		uint64_t iova = 0;

		if (mode == UPMD_IOVA_MODE_VA) {
			iova = (uint64_t)(uintptr_t)s->ms.va;
			flags |= UPMD_IOAS_MAP_FIXED;
		}
		if (s->ms.fd >= 0)
			rc = upmd_ioas_map_file(ioas, s->ms.fd, 0, s->ms.va, s->ms.len, &iova, flags);
		else
			rc = upmd_ioas_map(ioas, s->ms.va, s->ms.len, &iova, flags);
		if (rc < 0) {
			if (rc == -ENOMEM)
				memlock_message(mapped_total());
			else if (rc == -ENOSPC)
				UPMD_ERR("mem", "no free IOVA space for segment %u (%zu bytes) in the IOMMU's allowed ranges; ask for less memory (-m)",
					 i, s->ms.len);
			else
				UPMD_ERR("mem", "mapping segment %u (%zu bytes at %p) into the IOAS failed: %s", i,
					 s->ms.len, s->ms.va, strerror(-rc));
			goto err_unmap;
		}
		rc = upmd_iova_table_set(s->ms.va, iova, s->ms.len);
		if (rc < 0) {
			UPMD_ERR("mem", "recording segment %u (%zu bytes at %p) in the VA->IOVA table failed: %s", i,
				 s->ms.len, s->ms.va, strerror(-rc));
			upmd_ioas_unmap(ioas, iova, s->ms.len);
			goto err_unmap;
		}
		s->ioas = ioas;
		s->ms.iova = iova;
	}
	eal_memzone_iova_update();
	*chosen = mode;
	return 0;

err_unmap:
	unmap_segs();
	return rc;
}

void eal_memory_unmap_ioas(void)
{
	unmap_segs();
	eal_memzone_iova_update();
}

void eal_memory_cleanup(void)
{
	eal_memzone_cleanup();
	unmap_segs();
	release_all();
}

/* ---- public queries ---- */

unsigned upmd_memseg_count(void)
{
	return mem.n;
}

const struct upmd_memseg *upmd_memseg_get(unsigned i)
{
	return i < mem.n ? &mem.segs[i].ms : NULL;
}

size_t upmd_mem_total(int socket_id)
{
	size_t t = 0;
	unsigned i;

	for (i = 0; i < mem.n; i++)
		if (socket_id == UPMD_SOCKET_ID_ANY || mem.segs[i].ms.socket_id == socket_id)
			t += mem.segs[i].ms.len;
	return t;
}

/* Segments and dynamic mappings alike: the O(1) table. */
uint64_t upmd_mem_virt2iova(const void *va)
{
	return upmd_iova_from_va(va);
}
