/* Process memory: hugepage discovery on fake trees, reservation (anonymous, memfd, hugetlbfs) and its failures, the IOAS mapping, VA->IOVA, memzones. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include <upmd/ioas.h>
#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/memory.h>
#include <upmd/model.h>

#include "eal/eal_private.h"
#include "upmd_test.h"

#define SYS_2M "/sys/kernel/mm/hugepages/hugepages-2048kB"

/* ---- fixtures ---- */

static char tmp[64];	/* per-program scratch dir, removed at the end */


static void mkdirs(const char *path)
{
	char buf[PATH_MAX], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

static void put(const char *path, const char *text)
{
	char dir[PATH_MAX], *slash;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void rm_tree(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh fake root under the scratch dir. */
static const char *fake_root(const char *name)
{
	static char root[128];

	snprintf(root, sizeof(root), "%s/%s", tmp, name);
	rm_tree(root);
	mkdirs(root);
	return root;
}

static void fake_pool(const char *root, unsigned kb, unsigned nr, unsigned nfree)
{
	char p[PATH_MAX], v[32];

	snprintf(p, sizeof(p), "%s/kernel/mm/hugepages/hugepages-%ukB/nr_hugepages", root, kb);
	snprintf(v, sizeof(v), "%u\n", nr);
	put(p, v);
	snprintf(p, sizeof(p), "%s/kernel/mm/hugepages/hugepages-%ukB/free_hugepages", root, kb);
	snprintf(v, sizeof(v), "%u\n", nfree);
	put(p, v);
}

static void fake_node_pool(const char *root, unsigned node, unsigned kb, unsigned nr, unsigned nfree)
{
	char p[PATH_MAX], v[32];

	snprintf(p, sizeof(p), "%s/devices/system/node/node%u/hugepages/hugepages-%ukB/nr_hugepages",
		 root, node, kb);
	snprintf(v, sizeof(v), "%u\n", nr);
	put(p, v);
	snprintf(p, sizeof(p), "%s/devices/system/node/node%u/hugepages/hugepages-%ukB/free_hugepages",
		 root, node, kb);
	snprintf(v, sizeof(v), "%u\n", nfree);
	put(p, v);
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* Hugetlb memory this process has mapped, from /proc/self/status. */
static long hugetlb_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugetlbPages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* True if a mapping whose name contains @s is in /proc/self/maps. */
static bool mapped_named(const char *s)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, s))
			found = true;
	fclose(f);
	return found;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static long read_long(const char *path)
{
	char buf[64];
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -errno;
	fprintf(f, "%ld\n", v);
	rc = fclose(f) ? -errno : 0;
	return rc;
}

/*
 * Real 2 MiB hugepages on node 0 (the tests ask for node 0 with
 * --socket-mem, so a NUMA machine gives one segment too): use free ones,
 * or as root add what is missing to node 0's pool and give it back at
 * exit (only if no one else resized the pool meanwhile).
 */
#define NODE0_2M "/sys/devices/system/node/node0/hugepages/hugepages-2048kB"

static struct {
	bool raised;
	long old, set;
	char nr[128];
} hp;

static const char *hp_file(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", access(NODE0_2M, F_OK) == 0 ? NODE0_2M : SYS_2M, name);
	return buf;
}

static bool hugepages_free(long want)
{
	char fr[128], nrp[128];
	long nfree = read_long(hp_file(fr, sizeof(fr), "free_hugepages")), nr;

	if (nfree >= want)
		return true;
	if (nfree < 0 || geteuid() != 0)
		return false;
	nr = read_long(hp_file(nrp, sizeof(nrp), "nr_hugepages"));
	if (!hp.raised) {
		hp.old = nr;
		snprintf(hp.nr, sizeof(hp.nr), "%s", nrp);
	}
	hp.set = nr + (want - nfree);
	if (write_long(nrp, hp.set) < 0)
		return false;
	hp.raised = true;
	return read_long(fr) >= want;
}

static void hp_restore(void)
{
	if (hp.raised && read_long(hp.nr) == hp.set)
		write_long(hp.nr, hp.old);
	hp.raised = false;
}

static void note(const char *why)
{
	printf("\n  note: %s: test skipped ", why);
	CU_PASS(why);
}

/* A conf reading only the fake tree @root: no mounts unless written. */
static struct eal_mem_conf fake_conf(const char *root)
{
	static char mounts[PATH_MAX], meminfo[PATH_MAX];
	struct eal_mem_conf c;

	memset(&c, 0, sizeof(c));
	snprintf(mounts, sizeof(mounts), "%s/mounts", root);
	snprintf(meminfo, sizeof(meminfo), "%s/meminfo", root);
	c.sysfs_root = root;
	c.mounts_path = mounts;
	c.meminfo_path = meminfo;
	return c;
}

/* The real sysfs, but no hugetlbfs mounts: the memfd path. */
static struct eal_mem_conf real_conf_no_mounts(void)
{
	static char mounts[PATH_MAX];
	struct eal_mem_conf c;

	memset(&c, 0, sizeof(c));
	snprintf(mounts, sizeof(mounts), "%s/no-mounts", tmp);
	put(mounts, "proc /proc proc rw 0 0\n");
	c.mounts_path = mounts;
	return c;
}

/* Everything released: no segment, no fd, no hugepage, no memfd mapping. */
static void assert_nothing_reserved(unsigned fds_before)
{
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
	CU_ASSERT_EQUAL(upmd_mem_total(UPMD_SOCKET_ID_ANY), 0);
	CU_ASSERT_EQUAL(open_fds(), fds_before);
	CU_ASSERT_EQUAL(hugetlb_kb(), 0);
	CU_ASSERT_FALSE(mapped_named("upmd-node"));
}

/* ---- discovery ---- */

static void test_discover_pools(void)
{
	const char *root = fake_root("pools");
	struct eal_mem_conf c = fake_conf(root);
	struct eal_hugepage_pool pools[4];
	char junk[PATH_MAX];

	fake_pool(root, 2048, 16, 10);
	fake_pool(root, 1048576, 2, 1);
	fake_node_pool(root, 0, 2048, 10, 6);
	fake_node_pool(root, 1, 2048, 6, 4);
	fake_node_pool(root, 0, 1048576, 2, 1);
	snprintf(junk, sizeof(junk), "%s/kernel/mm/hugepages/not-a-pool/x", root);
	put(junk, "1\n");

	CU_ASSERT_EQUAL_FATAL(eal_hugepage_discover(&c, pools, 4), 2);
	/* Sorted by size; totals and per-node figures as sysfs gives them. */
	CU_ASSERT_EQUAL(pools[0].page_sz, 2 * UPMD_MB);
	CU_ASSERT_EQUAL(pools[0].nr_total, 16);
	CU_ASSERT_EQUAL(pools[0].nr_free, 10);
	CU_ASSERT_EQUAL(pools[0].node_mask, 3);
	CU_ASSERT_EQUAL(pools[0].nr_free_node[0], 6);
	CU_ASSERT_EQUAL(pools[0].nr_free_node[1], 4);
	CU_ASSERT_EQUAL(pools[0].nr_total_node[0], 10);
	CU_ASSERT_EQUAL(pools[0].nr_total_node[1], 6);
	CU_ASSERT_EQUAL(pools[0].nr_free_node[2], 0);
	CU_ASSERT_STRING_EQUAL(pools[0].mount, "");
	CU_ASSERT_EQUAL(pools[1].page_sz, UPMD_GB);
	CU_ASSERT_EQUAL(pools[1].nr_total, 2);
	CU_ASSERT_EQUAL(pools[1].nr_free, 1);
	CU_ASSERT_EQUAL(pools[1].node_mask, 1);
	CU_ASSERT_EQUAL(pools[1].nr_free_node[0], 1);
	CU_ASSERT_STRING_EQUAL(pools[1].mount, "");

	/* A short array keeps the smallest sizes; bad arguments are -EINVAL. */
	memset(pools, 0xff, sizeof(pools));
	CU_ASSERT_EQUAL(eal_hugepage_discover(&c, pools, 1), 1);
	CU_ASSERT_EQUAL(pools[0].page_sz, 2 * UPMD_MB);
	CU_ASSERT_EQUAL(pools[1].page_sz, (size_t)-1);	/* untouched */
	CU_ASSERT_EQUAL(eal_hugepage_discover(&c, NULL, 0), 0);
	CU_ASSERT_EQUAL(eal_hugepage_discover(NULL, pools, 4), -EINVAL);
	CU_ASSERT_EQUAL(eal_hugepage_discover(&c, NULL, 4), -EINVAL);
}

static void test_discover_no_node_dirs(void)
{
	const char *root = fake_root("flat");
	struct eal_mem_conf c = fake_conf(root);
	struct eal_hugepage_pool pools[4];

	/* A kernel without NUMA has no node directories: all of it is node 0. */
	fake_pool(root, 2048, 8, 5);
	CU_ASSERT_EQUAL_FATAL(eal_hugepage_discover(&c, pools, 4), 1);
	CU_ASSERT_EQUAL(pools[0].node_mask, 1);
	CU_ASSERT_EQUAL(pools[0].nr_free_node[0], 5);
	CU_ASSERT_EQUAL(pools[0].nr_total_node[0], 8);
}

static void test_discover_mounts(void)
{
	const char *root = fake_root("mounts");
	struct eal_mem_conf c = fake_conf(root);
	struct eal_hugepage_pool pools[4];

	fake_pool(root, 2048, 4, 4);
	fake_pool(root, 1048576, 1, 1);
	put(c.mounts_path,
	    "proc /proc proc rw,nosuid 0 0\n"
	    "tmpfs /mnt/hugetlbfs tmpfs rw,pagesize=2M 0 0\n"
	    "none /mnt/huge\\0402m hugetlbfs rw,relatime,pagesize=2M 0 0\n"
	    "none /mnt/huge1g hugetlbfs rw,relatime,pagesize=1024M 0 0\n"
	    "none /mnt/second hugetlbfs rw,pagesize=2048k 0 0\n"
	    "none /mnt/odd hugetlbfs rw,pagesize=64K 0 0\n");
	CU_ASSERT_EQUAL_FATAL(eal_hugepage_discover(&c, pools, 4), 2);
	/* The first mount of a size wins; escapes are decoded; other
	 * filesystems and sizes without a pool are ignored. */
	CU_ASSERT_STRING_EQUAL(pools[0].mount, "/mnt/huge 2m");
	CU_ASSERT_STRING_EQUAL(pools[1].mount, "/mnt/huge1g");
}

static void test_discover_mount_default_size(void)
{
	const char *root = fake_root("defsize");
	struct eal_mem_conf c = fake_conf(root);
	struct eal_hugepage_pool pools[4];

	fake_pool(root, 2048, 4, 4);
	fake_pool(root, 1048576, 1, 1);
	put(c.mounts_path, "hugetlbfs /dev/hugepages hugetlbfs rw,relatime 0 0\n");

	/* Without pagesize= the mount serves the system's default size... */
	put(c.meminfo_path, "MemTotal:       1000 kB\nHugepagesize:    1048576 kB\nHugetlb: 0 kB\n");
	CU_ASSERT_EQUAL_FATAL(eal_hugepage_discover(&c, pools, 4), 2);
	CU_ASSERT_STRING_EQUAL(pools[0].mount, "");
	CU_ASSERT_STRING_EQUAL(pools[1].mount, "/dev/hugepages");

	/* ...and 2 MiB when the default cannot be read. */
	unlink(c.meminfo_path);
	CU_ASSERT_EQUAL_FATAL(eal_hugepage_discover(&c, pools, 4), 2);
	CU_ASSERT_STRING_EQUAL(pools[0].mount, "/dev/hugepages");
	CU_ASSERT_STRING_EQUAL(pools[1].mount, "");
}

static void test_discover_no_pools(void)
{
	const char *root = fake_root("nopools");
	struct eal_mem_conf c = fake_conf(root);
	struct eal_hugepage_pool pools[4];
	char dir[PATH_MAX];

	/* A kernel without hugetlb: no pools is an answer, not an error. */
	CU_ASSERT_EQUAL(eal_hugepage_discover(&c, pools, 4), 0);
	snprintf(dir, sizeof(dir), "%s/kernel/mm/hugepages", root);
	mkdirs(dir);
	put(c.mounts_path, "none /mnt/huge hugetlbfs rw,pagesize=2M 0 0\n");
	CU_ASSERT_EQUAL(eal_hugepage_discover(&c, pools, 4), 0);
}

static void test_discover_real(void)
{
	struct eal_mem_conf c;
	struct eal_hugepage_pool pools[8];
	int n, i;
	bool has2m = false;

	memset(&c, 0, sizeof(c));
	n = eal_hugepage_discover(&c, pools, 8);
	CU_ASSERT_TRUE(n >= 0);
	for (i = 0; i < n; i++) {
		has2m |= pools[i].page_sz == 2 * UPMD_MB;
		CU_ASSERT_TRUE(pools[i].node_mask & 1);
		CU_ASSERT_TRUE(pools[i].nr_free <= pools[i].nr_total || pools[i].nr_total == 0);
	}
	CU_ASSERT_EQUAL(has2m, access(SYS_2M, F_OK) == 0);
}

/* ---- reservation ---- */

static void test_no_huge(void)
{
	struct eal_mem_conf c;
	const struct upmd_memseg *ms;
	unsigned fds = open_fds();
	char *p;

	memset(&c, 0, sizeof(c));
	c.no_huge = true;
	c.total = 8 * UPMD_MB;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 1);
	ms = upmd_memseg_get(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ms);
	CU_ASSERT_PTR_NULL(upmd_memseg_get(1));
	CU_ASSERT_EQUAL(ms->source, UPMD_MEMSEG_ANON);
	CU_ASSERT_EQUAL(ms->page_sz, 4096);
	CU_ASSERT_EQUAL(ms->len, 8 * UPMD_MB);
	CU_ASSERT_EQUAL(ms->fd, -1);
	CU_ASSERT_EQUAL(ms->iova, UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL((uintptr_t)ms->va % 4096, 0);
	CU_ASSERT_TRUE(ms->socket_id >= 0 && ms->socket_id < UPMD_MAX_NUMA_NODES);
	CU_ASSERT_EQUAL(upmd_mem_total(UPMD_SOCKET_ID_ANY), 8 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_mem_total(ms->socket_id), 8 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_mem_total((ms->socket_id + 1) % UPMD_MAX_NUMA_NODES), 0);
	/* The memory is usable from end to end, and not in any IOAS yet. */
	p = ms->va;
	p[0] = 1;
	p[ms->len - 1] = 2;
	CU_ASSERT_EQUAL(p[0] + p[ms->len - 1], 3);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(p), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(hugetlb_kb(), 0);

	/* A second init without cleanup is refused and changes nothing. */
	CU_ASSERT_EQUAL(eal_memory_init(&c), -EALREADY);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 1);

	eal_memory_cleanup();
	assert_nothing_reserved(fds);
	eal_memory_cleanup();	/* twice is harmless */

	/* No -m: the default amount. */
	c.total = 0;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	CU_ASSERT_EQUAL(upmd_mem_total(UPMD_SOCKET_ID_ANY), EAL_DEFAULT_MEM);
	eal_memory_cleanup();
	assert_nothing_reserved(fds);
}

static void test_no_huge_socket_mem(void)
{
	struct eal_mem_conf c;

	memset(&c, 0, sizeof(c));
	c.no_huge = true;
	c.socket_mem_given = true;
	c.socket_mem[0] = 4 * UPMD_MB;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -EINVAL);
	ASSERT_LOG_HAS("--socket-mem");
	log_release();
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
	CU_ASSERT_EQUAL(eal_memory_init(NULL), -EINVAL);
}

static void test_no_hugepages_error(void)
{
	const char *root = fake_root("short");
	struct eal_mem_conf c = fake_conf(root);
	unsigned fds = open_fds();
	char want[PATH_MAX + 64];

	/* One node, 32 pages in the pool, all taken. */
	fake_pool(root, 2048, 32, 0);
	fake_node_pool(root, 0, 2048, 32, 0);
	c.total = 64 * UPMD_MB;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -ENOMEM);
	ASSERT_LOG_HAS("no hugepages: 32 x 2 MiB needed on node 0, 0 free");
	ASSERT_LOG_HAS("'upmd-devbind --hugepages 64'");
	snprintf(want, sizeof(want), "'echo 64 > %s/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'", root);
	ASSERT_LOG_HAS(want);
	ASSERT_LOG_HAS("--no-huge");
	log_release();
	assert_nothing_reserved(fds);
}

static void test_no_hugepages_on_node(void)
{
	const char *root = fake_root("short-node");
	struct eal_mem_conf c = fake_conf(root);
	unsigned fds = open_fds();
	char want[PATH_MAX + 64];

	/* Node 1 has 5 pages, all taken; --socket-mem asks it for 4 MiB. */
	fake_pool(root, 2048, 13, 8);
	fake_node_pool(root, 0, 2048, 8, 8);
	fake_node_pool(root, 1, 2048, 5, 0);
	c.socket_mem_given = true;
	c.socket_mem[0] = 2 * UPMD_MB;
	c.socket_mem[1] = 4 * UPMD_MB;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -ENOMEM);
	ASSERT_LOG_HAS("no hugepages: 2 x 2 MiB needed on node 1, 0 free");
	ASSERT_LOG_HAS("'upmd-devbind --hugepages 7,1'");
	snprintf(want, sizeof(want), "'echo 7 > %s/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages'",
		 root);
	ASSERT_LOG_HAS(want);
	CU_ASSERT_PTR_NULL(strstr(log_text(), "on node 0"));	/* node 0 was fine */
	log_release();
	assert_nothing_reserved(fds);

	/* A node the machine does not have is a bad argument. */
	memset(c.socket_mem, 0, sizeof(c.socket_mem));
	c.socket_mem[3] = 2 * UPMD_MB;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -EINVAL);
	ASSERT_LOG_HAS("node 3");
	log_release();

	/* --socket-mem with nothing in it. */
	c.socket_mem[3] = 0;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -EINVAL);
	log_release();
	assert_nothing_reserved(fds);
}

static void test_no_pools_error(void)
{
	const char *root = fake_root("none");
	struct eal_mem_conf c = fake_conf(root);
	unsigned fds = open_fds();

	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -ENOMEM);
	ASSERT_LOG_HAS("no hugepages");
	ASSERT_LOG_HAS("--no-huge");
	log_release();
	assert_nothing_reserved(fds);
}

static void test_huge_dir_not_mount(void)
{
	const char *root = fake_root("hugedir");
	struct eal_mem_conf c = fake_conf(root);
	unsigned fds = open_fds();
	char dir[PATH_MAX], line[PATH_MAX + 64], want[PATH_MAX + 64];

	fake_pool(root, 2048, 64, 64);
	snprintf(dir, sizeof(dir), "%s/plain", root);
	mkdirs(dir);
	c.huge_dir = dir;
	c.total = 4 * UPMD_MB;
	snprintf(want, sizeof(want), "--huge-dir %s is not a hugetlbfs mount", dir);

	/* Not in the mount table. */
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -EINVAL);
	ASSERT_LOG_HAS(want);
	log_release();
	assert_nothing_reserved(fds);

	/* Listed as hugetlbfs, but the filesystem says otherwise. */
	snprintf(line, sizeof(line), "none %s hugetlbfs rw,pagesize=2M 0 0\n", dir);
	put(c.mounts_path, line);
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -EINVAL);
	ASSERT_LOG_HAS(want);
	log_release();
	assert_nothing_reserved(fds);
	CU_ASSERT_TRUE(dir_empty(dir));
}

static void check_huge_seg(const struct upmd_memseg *ms, enum upmd_memseg_source src, size_t len)
{
	struct stat st;
	size_t i;

	CU_ASSERT_EQUAL(ms->source, src);
	CU_ASSERT_EQUAL(ms->page_sz, 2 * UPMD_MB);
	CU_ASSERT_EQUAL(ms->len, len);
	CU_ASSERT_EQUAL((uintptr_t)ms->va % (2 * UPMD_MB), 0);
	CU_ASSERT_EQUAL(ms->socket_id, 0);	/* every machine these tests run on has node 0 */
	CU_ASSERT_EQUAL(ms->iova, UPMD_BAD_IOVA);
	CU_ASSERT_TRUE_FATAL(ms->fd >= 0);
	CU_ASSERT_EQUAL(fstat(ms->fd, &st), 0);
	CU_ASSERT_EQUAL((size_t)st.st_size, len);
	CU_ASSERT_EQUAL(st.st_nlink, 0);	/* unlinked: nothing to leave behind */
	/* Every page is there (no SIGBUS) and holds what is written. */
	for (i = 0; i < len; i += 4096)
		((volatile uint32_t *)ms->va)[i / 4] = (uint32_t)i;
	for (i = 0; i < len; i += 4096)
		if (((volatile uint32_t *)ms->va)[i / 4] != (uint32_t)i)
			break;
	CU_ASSERT_EQUAL(i, len);
	CU_ASSERT_EQUAL(hugetlb_kb(), (long)(len / 1024));
}

static void test_memfd_hugepages(void)
{
	struct eal_mem_conf c = real_conf_no_mounts();
	unsigned fds = open_fds(), i;
	size_t sum = 0;

	if (!hugepages_free(8)) {
		note("fewer than 8 free 2 MiB hugepages on node 0 and they cannot be reserved here (not root?)");
		return;
	}
	c.socket_mem_given = true;
	c.socket_mem[0] = 8 * UPMD_MB;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 1);
	check_huge_seg(upmd_memseg_get(0), UPMD_MEMSEG_MEMFD, 8 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_mem_total(0), 8 * UPMD_MB);
	CU_ASSERT_TRUE(mapped_named("upmd-node0"));
	eal_memory_cleanup();
	assert_nothing_reserved(fds);

	/* An amount that is not a whole number of pages is rounded up. */
	c.socket_mem[0] = 3 * UPMD_MB;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 1);
	check_huge_seg(upmd_memseg_get(0), UPMD_MEMSEG_MEMFD, 4 * UPMD_MB);
	eal_memory_cleanup();
	assert_nothing_reserved(fds);

	/* -m: wherever the free pages are, one segment per node at most. */
	if (read_long(SYS_2M "/free_hugepages") < 4)
		return;
	c.socket_mem_given = false;
	c.socket_mem[0] = 0;
	c.total = 8 * UPMD_MB;
	if (eal_memory_init(&c) != 0) {
		note("-m 8: another process took the free pages meanwhile");
		return;
	}
	for (i = 0; i < upmd_memseg_count(); i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);

		CU_ASSERT_EQUAL(ms->source, UPMD_MEMSEG_MEMFD);
		CU_ASSERT_EQUAL(ms->page_sz, 2 * UPMD_MB);
		CU_ASSERT_TRUE(i == 0 || ms->socket_id > upmd_memseg_get(i - 1)->socket_id);
		sum += ms->len;
	}
	CU_ASSERT_EQUAL(sum, 8 * UPMD_MB);
	CU_ASSERT_EQUAL(upmd_mem_total(UPMD_SOCKET_ID_ANY), 8 * UPMD_MB);
	CU_ASSERT_EQUAL(hugetlb_kb(), 8192);
	eal_memory_cleanup();
	assert_nothing_reserved(fds);
}

/* Mount a hugetlbfs at @dir with @opts; false when this process may not. */
static bool mount_huge(const char *dir, const char *opts)
{
	mkdirs(dir);
	return mount("upmd-test", dir, "hugetlbfs", 0, opts) == 0;
}

static void test_hugetlbfs_hugepages(void)
{
	struct eal_mem_conf c;
	unsigned fds = open_fds();
	char mnt[PATH_MAX], small[PATH_MAX], mounts[PATH_MAX], line[3 * PATH_MAX];

	if (!hugepages_free(8)) {
		note("fewer than 8 free 2 MiB hugepages on node 0 and they cannot be reserved here (not root?)");
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s/hugetlbfs", tmp);
	snprintf(small, sizeof(small), "%s/hugetlbfs-4m", tmp);
	if (!mount_huge(mnt, "pagesize=2M")) {
		note("cannot mount a hugetlbfs here (needs CAP_SYS_ADMIN)");
		return;
	}
	if (!mount_huge(small, "pagesize=2M,size=4M")) {
		umount(mnt);
		note("cannot mount a hugetlbfs here (needs CAP_SYS_ADMIN)");
		return;
	}
	/* A mount table of our own, so other mounts on the machine do not matter. */
	snprintf(mounts, sizeof(mounts), "%s/huge-mounts", tmp);
	snprintf(line, sizeof(line),
		 "upmd-test %s hugetlbfs rw,relatime,pagesize=2M 0 0\n"
		 "upmd-test %s hugetlbfs rw,relatime,pagesize=2M,size=4194304 0 0\n", mnt, small);
	put(mounts, line);

	/* Found through the mount table. */
	memset(&c, 0, sizeof(c));
	c.mounts_path = mounts;
	c.socket_mem_given = true;
	c.socket_mem[0] = 8 * UPMD_MB;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	CU_ASSERT_EQUAL(upmd_memseg_count(), 1);
	check_huge_seg(upmd_memseg_get(0), UPMD_MEMSEG_HUGETLBFS, 8 * UPMD_MB);
	CU_ASSERT_TRUE(dir_empty(mnt));
	eal_memory_cleanup();
	assert_nothing_reserved(fds);

	/* Named with --huge-dir (trailing slash and all). */
	strcat(mnt, "/");
	c.huge_dir = mnt;
	c.socket_mem[0] = 4 * UPMD_MB;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	check_huge_seg(upmd_memseg_get(0), UPMD_MEMSEG_HUGETLBFS, 4 * UPMD_MB);
	CU_ASSERT_TRUE(dir_empty(mnt));
	eal_memory_cleanup();
	assert_nothing_reserved(fds);

	/* sysfs reports free pages but the kernel will not hand them out (here
	 * the mount's size= limit): a clean -ENOMEM, never a SIGBUS later. */
	c.huge_dir = small;
	c.socket_mem[0] = 16 * UPMD_MB;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -ENOMEM);
	ASSERT_LOG_HAS("could not supply 8 x 2 MiB on node 0");
	ASSERT_LOG_HAS("--no-huge");
	log_release();
	assert_nothing_reserved(fds);
	CU_ASSERT_TRUE(dir_empty(small));

	CU_ASSERT_EQUAL(umount(small), 0);
	mnt[strlen(mnt) - 1] = '\0';
	CU_ASSERT_EQUAL(umount(mnt), 0);
}

static void test_kernel_refuses_memfd(void)
{
	const char *root = fake_root("liar");
	struct eal_mem_conf c = fake_conf(root);
	unsigned fds = open_fds();

	/* sysfs (fake) says 64 free pages; the real kernel has none free, so
	 * the memfd's pages cannot be allocated. Only meaningful when the real
	 * pool is empty, or the test would take real pages. */
	if (read_long(SYS_2M "/free_hugepages") != 0 ||
	    read_long("/proc/sys/vm/nr_overcommit_hugepages") != 0) {
		note("the real 2 MiB pool has free or overcommit pages");
		return;
	}
	fake_pool(root, 2048, 64, 64);
	c.total = 8 * UPMD_MB;
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_init(&c), -ENOMEM);
	ASSERT_LOG_HAS("could not supply 4 x 2 MiB on node 0");
	log_release();
	assert_nothing_reserved(fds);
}

/* ---- the IOAS (against the in-process model) ---- */

static struct upmd_model *model;
static int model_dev_fd = -1;

/*
 * Install the model and open an IOAS. Like the kernel, the model pins
 * nothing for an IOAS without a device: with @attach the edu device
 * (vfio0) is attached first, so mappings are pinned as they are made.
 */
static int model_up(const char *spec, bool attach, struct upmd_ioas **ioas)
{
	struct upmd_ioas_dev_req req = {
		.size = sizeof(req), .bdf = "0000:00:04.0", .cdev = "vfio0", .iommu_group = -1,
	};
	struct upmd_ioas_conf conf = { .size = sizeof(conf) };
	int rc;

	rc = upmd_model_install(spec, &model);
	CU_ASSERT_EQUAL(rc, 0);
	if (rc < 0)
		return rc;
	rc = upmd_ioas_open(&conf, ioas);
	CU_ASSERT_EQUAL(rc, 0);
	if (rc == 0 && attach) {
		rc = upmd_ioas_device_open(*ioas, &req, &model_dev_fd);
		CU_ASSERT_EQUAL(rc, 0);
		if (rc < 0)
			upmd_ioas_close(*ioas);
	}
	if (rc < 0) {
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(model);
		model = NULL;
	}
	return rc;
}

static uint64_t pinned_pages(void)
{
	struct upmd_model_stats st;

	if (upmd_model_get_stats(model, &st) < 0)
		return UINT64_MAX;
	return st.pinned_pages;
}

static void model_down(struct upmd_ioas *ioas)
{
	if (model_dev_fd >= 0)
		CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, model_dev_fd), 0);
	model_dev_fd = -1;
	upmd_ioas_close(ioas);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(model);
	model = NULL;
}

static int no_huge_init(size_t len)
{
	struct eal_mem_conf c;

	memset(&c, 0, sizeof(c));
	c.no_huge = true;
	c.total = len;
	return eal_memory_init(&c);
}

static void test_map_va(void)
{
	const struct upmd_memseg *ms;
	const struct upmd_memzone *mz;
	enum upmd_iova_mode chosen = UPMD_IOVA_MODE_ALLOC;
	struct upmd_ioas *ioas;
	char *va;

	if (model_up("edu@0000:00:04.0", true, &ioas) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(no_huge_init(4 * UPMD_MB), 0);
	ms = upmd_memseg_get(0);
	va = ms->va;
	/* A zone reserved before the mapping has no IOVA until then. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("early", 100, UPMD_SOCKET_ID_ANY, 0, &mz), 0);
	CU_ASSERT_EQUAL(mz->iova, UPMD_BAD_IOVA);

	/* The model's aperture (48 bits) covers user VAs: AUTO picks VA. */
	CU_ASSERT_EQUAL_FATAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_AUTO, &chosen), 0);
	CU_ASSERT_EQUAL(chosen, UPMD_IOVA_MODE_VA);
	CU_ASSERT_EQUAL(ms->iova, (uint64_t)(uintptr_t)va);
	CU_ASSERT_EQUAL(pinned_pages(), 4 * UPMD_MB / 4096);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(va), (uint64_t)(uintptr_t)va);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(va + ms->len - 1), (uint64_t)(uintptr_t)va + ms->len - 1);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(va + ms->len), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(va - 1), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(&chosen), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(mz->iova, (uint64_t)(uintptr_t)mz->addr);
	/* Mapped exactly once: a second call is refused and pins nothing. */
	CU_ASSERT_EQUAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_AUTO, &chosen), -EALREADY);
	CU_ASSERT_EQUAL(pinned_pages(), 4 * UPMD_MB / 4096);
	CU_ASSERT_EQUAL(eal_memory_map_ioas(NULL, UPMD_IOVA_MODE_AUTO, &chosen), -EINVAL);

	eal_memory_unmap_ioas();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	CU_ASSERT_EQUAL(ms->iova, UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(mz->iova, UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(va), UPMD_BAD_IOVA);

	/* Forced VA works the same way; cleanup unmaps what is still mapped. */
	CU_ASSERT_EQUAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_VA, &chosen), 0);
	CU_ASSERT_EQUAL(chosen, UPMD_IOVA_MODE_VA);
	eal_memory_cleanup();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	model_down(ioas);
}

static void test_map_alloc(void)
{
	const struct upmd_memseg *ms;
	const struct upmd_memzone *mz;
	enum upmd_iova_mode chosen = UPMD_IOVA_MODE_VA;
	struct upmd_ioas *ioas;
	char *va;

	if (model_up("edu@0000:00:04.0", true, &ioas) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(no_huge_init(4 * UPMD_MB), 0);
	ms = upmd_memseg_get(0);
	va = ms->va;
	CU_ASSERT_EQUAL_FATAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_ALLOC, &chosen), 0);
	CU_ASSERT_EQUAL(chosen, UPMD_IOVA_MODE_ALLOC);
	CU_ASSERT_NOT_EQUAL(ms->iova, UPMD_BAD_IOVA);
	CU_ASSERT_TRUE(upmd_ioas_iova_allowed(ioas, ms->iova, ms->len));
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(va + 12345), ms->iova + 12345);
	CU_ASSERT_EQUAL(pinned_pages(), 4 * UPMD_MB / 4096);
	/* A zone's IOVA is its segment's plus the offset, and aligned. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("z", 5000, UPMD_SOCKET_ID_ANY, 4096, &mz), 0);
	CU_ASSERT_EQUAL(mz->iova, upmd_mem_virt2iova(mz->addr));
	CU_ASSERT_EQUAL(mz->iova % 4096, 0);
	CU_ASSERT_EQUAL((uintptr_t)mz->addr % 4096, 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(mz), 0);
	eal_memory_unmap_ioas();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	eal_memory_cleanup();
	model_down(ioas);
}

static void test_map_va_outside_aperture(void)
{
	struct upmd_ioas_dev_req req = {
		.size = sizeof(req), .bdf = "0000:00:04.0", .cdev = "vfio0", .iommu_group = -1,
	};
	enum upmd_iova_mode chosen = UPMD_IOVA_MODE_VA;
	struct upmd_ioas *ioas;
	int fd = -1;

	/* A 39-bit IOMMU (QEMU's intel-iommu default) narrows the IOAS once a
	 * device is attached: user VAs are no longer valid IOVAs. */
	if (model_up("edu@0000:00:04.0;aw=39", false, &ioas) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_device_open(ioas, &req, &fd), 0);
	CU_ASSERT_EQUAL_FATAL(no_huge_init(4 * UPMD_MB), 0);
	if ((uintptr_t)upmd_memseg_get(0)->va < (1ULL << 39)) {
		note("the segment landed below 2^39, so VA would be valid");
		goto out;
	}
	log_capture();
	CU_ASSERT_EQUAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_VA, &chosen), -EINVAL);
	ASSERT_LOG_HAS("--iova-mode alloc");
	log_release();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	CU_ASSERT_EQUAL(upmd_memseg_get(0)->iova, UPMD_BAD_IOVA);

	log_capture();
	CU_ASSERT_EQUAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_AUTO, &chosen), 0);
	CU_ASSERT_EQUAL(chosen, UPMD_IOVA_MODE_ALLOC);
	ASSERT_LOG_HAS("IOVA mode alloc");
	log_release();
	CU_ASSERT_TRUE(upmd_memseg_get(0)->iova < (1ULL << 39));
	CU_ASSERT_TRUE(upmd_ioas_iova_allowed(ioas, upmd_memseg_get(0)->iova, upmd_memseg_get(0)->len));
	eal_memory_unmap_ioas();
out:
	eal_memory_cleanup();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	upmd_ioas_device_close(ioas, fd);
	model_down(ioas);
}

static int cap_ipc_lock(bool on)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	if (on)
		d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective |= CAP_TO_MASK(CAP_IPC_LOCK);
	else
		d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static void test_memlock(void)
{
	struct rlimit saved, small = { 1 << 20, 1 << 20 };
	enum upmd_iova_mode chosen;
	struct upmd_ioas *ioas;
	int rc;

	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	small.rlim_max = saved.rlim_max;

	/* The IOAS refuses the pin (the model charges even root here). */
	if (model_up("edu@0000:00:04.0;flags=unpriv", true, &ioas) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(no_huge_init(16 * UPMD_MB), 0);
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);
	log_capture();
	rc = eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_AUTO, &chosen);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	ASSERT_LOG_HAS("RLIMIT_MEMLOCK is 1024 KiB but 16384 KiB must be pinned");
	ASSERT_LOG_HAS("ulimit -l");
	log_release();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	CU_ASSERT_EQUAL(upmd_memseg_get(0)->iova, UPMD_BAD_IOVA);

	/* Without CAP_IPC_LOCK the check happens before anything is mapped. */
	if (cap_ipc_lock(false) < 0) {
		note("cannot drop CAP_IPC_LOCK");
		goto out;
	}
	CU_ASSERT_EQUAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);
	log_capture();
	rc = eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_ALLOC, &chosen);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	cap_ipc_lock(true);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	ASSERT_LOG_HAS("RLIMIT_MEMLOCK is 1024 KiB but 16384 KiB must be pinned");
	ASSERT_LOG_HAS("LimitMEMLOCK=");
	ASSERT_LOG_HAS("(-m)");
	/* Refused by the precheck: the IOAS never saw a map request, so it
	 * logged nothing of its own. */
	if (strstr(log_text(), "RLIMIT_MEMLOCK"))
		CU_ASSERT_PTR_NULL(strstr(strstr(log_text(), "RLIMIT_MEMLOCK") + 1, "RLIMIT_MEMLOCK"));
	log_release();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
out:
	eal_memory_cleanup();
	model_down(ioas);
}

static void test_map_hugepage_memfd(void)
{
	struct eal_mem_conf c = real_conf_no_mounts();
	enum upmd_iova_mode chosen;
	struct upmd_ioas *ioas;
	const struct upmd_memseg *ms;

	if (!hugepages_free(4)) {
		note("fewer than 4 free 2 MiB hugepages on node 0 and they cannot be reserved here (not root?)");
		return;
	}
	if (model_up("edu@0000:00:04.0", true, &ioas) < 0)
		return;
	c.socket_mem_given = true;
	c.socket_mem[0] = 4 * UPMD_MB;
	CU_ASSERT_EQUAL_FATAL(eal_memory_init(&c), 0);
	ms = upmd_memseg_get(0);
	CU_ASSERT_EQUAL(ms->source, UPMD_MEMSEG_MEMFD);
	/* fd-backed: mapped through map_file (or its by-VA fallback). */
	CU_ASSERT_EQUAL_FATAL(eal_memory_map_ioas(ioas, UPMD_IOVA_MODE_AUTO, &chosen), 0);
	CU_ASSERT_EQUAL(chosen, UPMD_IOVA_MODE_VA);
	CU_ASSERT_EQUAL(ms->iova, (uint64_t)(uintptr_t)ms->va);
	CU_ASSERT_EQUAL(pinned_pages(), 4 * UPMD_MB / 4096);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova((char *)ms->va + 3 * UPMD_MB), ms->iova + 3 * UPMD_MB);
	eal_memory_unmap_ioas();
	eal_memory_cleanup();
	CU_ASSERT_EQUAL(pinned_pages(), 0);
	CU_ASSERT_EQUAL(hugetlb_kb(), 0);
	model_down(ioas);
}

/* ---- memzones (over 4 MiB of --no-huge memory) ---- */

#define HEAP (4 * UPMD_MB)

static int mz_suite_init(void)
{
	return no_huge_init(HEAP) == 0 ? 0 : -1;
}

static int mz_suite_fini(void)
{
	eal_memory_cleanup();
	return 0;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static void test_mz_basic(void)
{
	const struct upmd_memseg *ms = upmd_memseg_get(0);
	const struct upmd_memzone *a, *b, *again;

	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("ring0", 1000, UPMD_SOCKET_ID_ANY, 0, &a), 0);
	CU_ASSERT_STRING_EQUAL(a->name, "ring0");
	CU_ASSERT_EQUAL(a->len, 1000);
	CU_ASSERT_EQUAL((uintptr_t)a->addr % UPMD_CACHE_LINE_SIZE, 0);
	CU_ASSERT_EQUAL(a->socket_id, ms->socket_id);
	CU_ASSERT_TRUE((char *)a->addr >= (char *)ms->va &&
		       (char *)a->addr + a->len <= (char *)ms->va + ms->len);
	CU_ASSERT_EQUAL(a->iova, UPMD_BAD_IOVA);	/* not in an IOAS in this suite */
	CU_ASSERT_TRUE(all_zero(a->addr, a->len));

	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("ring1", 64, ms->socket_id, 0, &b), 0);
	/* Distinct, non-overlapping, each in its own cache lines. */
	CU_ASSERT_TRUE((char *)b->addr >= (char *)a->addr + 1024 || (char *)b->addr + 64 <= (char *)a->addr);
	CU_ASSERT_PTR_EQUAL(upmd_memzone_lookup("ring0"), a);
	CU_ASSERT_PTR_EQUAL(upmd_memzone_lookup("ring1"), b);
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("ring2"));
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup(NULL));

	/* Names are unique while the zone lives. */
	again = NULL;
	CU_ASSERT_EQUAL(upmd_memzone_reserve("ring0", 10, UPMD_SOCKET_ID_ANY, 0, &again), -EEXIST);
	CU_ASSERT_PTR_NULL(again);

	CU_ASSERT_EQUAL(upmd_memzone_free(a), 0);
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("ring0"));
	CU_ASSERT_EQUAL(upmd_memzone_free(a), -EINVAL);	/* already freed */
	CU_ASSERT_EQUAL(upmd_memzone_free(NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_free((const struct upmd_memzone *)ms), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("ring0", 10, UPMD_SOCKET_ID_ANY, 0, &a), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(a), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(b), 0);
}

static void test_mz_bad_args(void)
{
	const struct upmd_memzone *mz = NULL;
	char longname[64];

	memset(longname, 'n', sizeof(longname));
	longname[32] = '\0';	/* 32 characters: one too many for name[32] */
	CU_ASSERT_EQUAL(upmd_memzone_reserve(NULL, 64, UPMD_SOCKET_ID_ANY, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("", 64, UPMD_SOCKET_ID_ANY, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve(longname, 64, UPMD_SOCKET_ID_ANY, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("x", 0, UPMD_SOCKET_ID_ANY, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("x", SIZE_MAX, UPMD_SOCKET_ID_ANY, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("x", 64, UPMD_SOCKET_ID_ANY, 48, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("x", 64, UPMD_MAX_NUMA_NODES, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("x", 64, -2, 0, &mz), -EINVAL);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("x", 64, UPMD_SOCKET_ID_ANY, 0, NULL), -EINVAL);
	CU_ASSERT_PTR_NULL(mz);
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("x"));
	/* 31 characters fit. */
	longname[31] = '\0';
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve(longname, 64, UPMD_SOCKET_ID_ANY, 0, &mz), 0);
	CU_ASSERT_PTR_EQUAL(upmd_memzone_lookup(longname), mz);
	CU_ASSERT_EQUAL(upmd_memzone_free(mz), 0);
}

static void test_mz_alignment(void)
{
	static const size_t aligns[] = { 1, 8, 64, 128, 4096, 65536, UPMD_MB };
	const struct upmd_memzone *pad, *mz[UPMD_DIM(aligns)];
	char name[16];
	unsigned i;

	/* An odd-sized zone first, so no later one is aligned by luck. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("pad", 192, UPMD_SOCKET_ID_ANY, 0, &pad), 0);
	for (i = 0; i < UPMD_DIM(aligns); i++) {
		snprintf(name, sizeof(name), "al%u", i);
		CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve(name, 100, UPMD_SOCKET_ID_ANY, aligns[i], &mz[i]), 0);
		CU_ASSERT_EQUAL((uintptr_t)mz[i]->addr % aligns[i], 0);
		/* Never less than a cache line, whatever was asked. */
		CU_ASSERT_EQUAL((uintptr_t)mz[i]->addr % UPMD_CACHE_LINE_SIZE, 0);
	}
	for (i = 0; i < UPMD_DIM(aligns); i++)
		CU_ASSERT_EQUAL(upmd_memzone_free(mz[i]), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(pad), 0);
}

static void test_mz_zeroed_on_reuse(void)
{
	const struct upmd_memzone *a, *b;

	void *spot;

	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("dirty", 8192, UPMD_SOCKET_ID_ANY, 0, &a), 0);
	spot = a->addr;
	memset(a->addr, 0xa5, a->len);
	CU_ASSERT_EQUAL(upmd_memzone_free(a), 0);
	/* First fit over an empty heap hands out the same bytes again. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("clean", 8192, UPMD_SOCKET_ID_ANY, 0, &b), 0);
	CU_ASSERT_PTR_EQUAL(b->addr, spot);
	CU_ASSERT_TRUE(all_zero(b->addr, b->len));
	CU_ASSERT_EQUAL(upmd_memzone_free(b), 0);
}

static void test_mz_exhaustion(void)
{
	const struct upmd_memzone *all, *more = NULL, *other;
	int elsewhere = (upmd_memseg_get(0)->socket_id + 1) % UPMD_MAX_NUMA_NODES, rc;
	uintptr_t va;

	/* The whole segment in one zone, then nothing more fits. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("all", HEAP, UPMD_SOCKET_ID_ANY, 0, &all), 0);
	CU_ASSERT_PTR_EQUAL(all->addr, upmd_memseg_get(0)->va);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("more", 1, UPMD_SOCKET_ID_ANY, 0, &more), -ENOMEM);
	CU_ASSERT_PTR_NULL(more);
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("more"));
	CU_ASSERT_EQUAL(upmd_memzone_free(all), 0);
	/* More than there is, and on a node with no memory. */
	CU_ASSERT_EQUAL(upmd_memzone_reserve("big", HEAP + 1, UPMD_SOCKET_ID_ANY, 0, &more), -ENOMEM);
	CU_ASSERT_EQUAL(upmd_memzone_reserve("far", 64, elsewhere, 0, &more), -ENOMEM);
	/* Room enough, but not at the alignment asked: with one page taken,
	 * the rest of the segment holds a zone of its size only if it starts
	 * 1 MiB-aligned (1 time in 256, which the test then expects). */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("page", 4096, UPMD_SOCKET_ID_ANY, 0, &other), 0);
	va = (uintptr_t)upmd_memseg_get(0)->va;
	rc = upmd_memzone_reserve("al", HEAP - 4096, UPMD_SOCKET_ID_ANY, UPMD_MB, &more);
	CU_ASSERT_EQUAL(rc, (va + 4096) % UPMD_MB == 0 ? 0 : -ENOMEM);
	if (rc == 0)
		upmd_memzone_free(more);
	CU_ASSERT_EQUAL(upmd_memzone_free(other), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("other", 64, upmd_memseg_get(0)->socket_id, 0, &other), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(other), 0);
}

static void test_mz_coalescing(void)
{
	const struct upmd_memzone *z[4], *two, *all;
	char *base = upmd_memseg_get(0)->va;
	char name[8];
	unsigned i;

	/* Four quarters, in address order from the start of the segment. */
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "q%u", i);
		CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve(name, HEAP / 4, UPMD_SOCKET_ID_ANY, 0, &z[i]), 0);
		CU_ASSERT_PTR_EQUAL(z[i]->addr, base + i * (HEAP / 4));
	}
	/* Free the middle two in the order that needs both merges (with the
	 * next block, then with the previous), then half the heap fits there. */
	CU_ASSERT_EQUAL(upmd_memzone_free(z[2]), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(z[1]), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("half", HEAP / 2, UPMD_SOCKET_ID_ANY, 0, &two), 0);
	CU_ASSERT_PTR_EQUAL(two->addr, base + HEAP / 4);
	/* Free the outer ones first, then the middle joins all three. */
	CU_ASSERT_EQUAL(upmd_memzone_free(z[0]), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(z[3]), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(two), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("all", HEAP, UPMD_SOCKET_ID_ANY, 0, &all), 0);
	CU_ASSERT_PTR_EQUAL(all->addr, base);
	CU_ASSERT_EQUAL(upmd_memzone_free(all), 0);
}

#define THREAD_ROUNDS 3000

struct worker {
	unsigned id;
	unsigned failures;
	unsigned reserved;
};

/* Each thread keeps up to 8 zones of its own alive, fills each with its
 * pattern and checks it before freeing: an overlap with the other thread
 * (or a zone handed out twice) shows up as a wrong byte. */
static void *mz_worker(void *arg)
{
	struct worker *w = arg;
	const struct upmd_memzone *live[8] = { NULL };
	unsigned seed = w->id * 7919 + 1, r, slot;
	char name[32];

	for (r = 0; r < THREAD_ROUNDS; r++) {
		seed = seed * 1103515245 + 12345;
		slot = (seed >> 8) % 8;
		if (live[slot]) {
			const unsigned char *p = live[slot]->addr;
			size_t i;

			for (i = 0; i < live[slot]->len; i++)
				if (p[i] != (unsigned char)(w->id + slot))
					break;
			if (i != live[slot]->len || upmd_memzone_free(live[slot]) != 0)
				w->failures++;
			live[slot] = NULL;
		} else {
			size_t len = 64 + (seed >> 12) % 20000;

			snprintf(name, sizeof(name), "t%u-%u", w->id, r);
			if (upmd_memzone_reserve(name, len, UPMD_SOCKET_ID_ANY, 64u << (seed % 4), &live[slot]) != 0) {
				w->failures++;
				continue;
			}
			if (!all_zero(live[slot]->addr, len))
				w->failures++;
			memset(live[slot]->addr, (unsigned char)(w->id + slot), len);
			w->reserved++;
		}
	}
	for (slot = 0; slot < 8; slot++)
		if (live[slot] && upmd_memzone_free(live[slot]) != 0)
			w->failures++;
	return NULL;
}

static void test_mz_threads(void)
{
	struct worker w[2] = { { .id = 1 }, { .id = 2 } };
	pthread_t t[2];
	const struct upmd_memzone *all;
	unsigned i;

	for (i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, mz_worker, &w[i]), 0);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(w[i].failures, 0);
		CU_ASSERT_TRUE(w[i].reserved > THREAD_ROUNDS / 4);
	}
	/* Everything was given back and merged again. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("all", HEAP, UPMD_SOCKET_ID_ANY, 0, &all), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(all), 0);
}

static void test_mz_cleanup(void)
{
	const struct upmd_memzone *a;

	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("left", 4096, UPMD_SOCKET_ID_ANY, 0, &a), 0);
	/* Cleanup forgets every zone; a new memory init starts empty. */
	eal_memory_cleanup();
	CU_ASSERT_PTR_NULL(upmd_memzone_lookup("left"));
	CU_ASSERT_EQUAL(upmd_memzone_reserve("none", 64, UPMD_SOCKET_ID_ANY, 0, &a), -ENOMEM);
	CU_ASSERT_EQUAL_FATAL(no_huge_init(HEAP), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("left", HEAP, UPMD_SOCKET_ID_ANY, 0, &a), 0);
	CU_ASSERT_EQUAL(upmd_memzone_free(a), 0);
}

/* ---- suites ---- */

static void top_fini(void)
{
	hp_restore();
	if (tmp[0])
		rm_tree(tmp);
}

/* The first suite's init; the scratch dir and any hugepages this program
 * added to the pool are given back at exit, whichever suites ran. */
static int top_init(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/upmd-test-memory." "XX" "XX" "XX");
	if (!mkdtemp(tmp)) {
		tmp[0] = '\0';
		return -1;
	}
	atexit(top_fini);
	return 0;
}

static const struct upmd_test discovery_tests[] = {
	{ "pools, sizes and per-node counts from sysfs", test_discover_pools },
	{ "a kernel without NUMA directories is node 0", test_discover_no_node_dirs },
	{ "hugetlbfs mounts with pagesize=", test_discover_mounts },
	{ "a mount without pagesize= serves the default size", test_discover_mount_default_size },
	{ "no pools at all", test_discover_no_pools },
	{ "the real machine", test_discover_real },
	{ NULL, NULL },
};

static const struct upmd_test reserve_tests[] = {
	{ "--no-huge: anonymous 4 KiB memory", test_no_huge },
	{ "--no-huge with --socket-mem is refused", test_no_huge_socket_mem },
	{ "too few hugepages: -ENOMEM, the fix, nothing left", test_no_hugepages_error },
	{ "too few hugepages on one node of two", test_no_hugepages_on_node },
	{ "no hugepage pools at all", test_no_pools_error },
	{ "--huge-dir that is not a hugetlbfs mount", test_huge_dir_not_mount },
	{ "sysfs says free, the kernel refuses (memfd)", test_kernel_refuses_memfd },
	{ "real hugepages through memfd", test_memfd_hugepages },
	{ "real hugepages through hugetlbfs, and a mount that refuses", test_hugetlbfs_hugepages },
	{ NULL, NULL },
};

static const struct upmd_test ioas_tests[] = {
	{ "IOVA = VA, unmap, remap, cleanup", test_map_va },
	{ "IOVAs from the allocator", test_map_alloc },
	{ "VA outside a 39-bit aperture: va refused, auto picks alloc", test_map_va_outside_aperture },
	{ "RLIMIT_MEMLOCK too small", test_memlock },
	{ "memfd hugepages through map_file", test_map_hugepage_memfd },
	{ NULL, NULL },
};

static const struct upmd_test memzone_tests[] = {
	{ "reserve, lookup, free", test_mz_basic },
	{ "bad arguments", test_mz_bad_args },
	{ "alignment", test_mz_alignment },
	{ "zeroed when reused", test_mz_zeroed_on_reuse },
	{ "exhaustion", test_mz_exhaustion },
	{ "free blocks coalesce", test_mz_coalescing },
	{ "two threads reserve and free at once", test_mz_threads },
	{ "cleanup frees every zone", test_mz_cleanup },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "hugepage discovery", top_init, NULL, discovery_tests },
	       { "reservation", NULL, NULL, reserve_tests },
	       { "IOAS mapping and VA->IOVA", NULL, NULL, ioas_tests },
	       { "memzones", mz_suite_init, mz_suite_fini, memzone_tests })
