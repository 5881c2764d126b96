/* The libc kernel boundary: each call made exactly once, errors as -errno, the file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <upmd/kops.h>

#include "upmd_test.h"

static char dir[64];

static int make_dir(void)
{
	strcpy(dir, "/tmp/upmd-kops-" "XX" "XX" "XX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* O_EXCL fails the second time: an open made twice would show here. */
static void test_open_once(void)
{
	char p[128];
	int fd;

	path_in(p, sizeof(p), "excl");
	fd = upmd_k_open(p, O_RDWR | O_CREAT | O_EXCL);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	/* A close made twice would answer -EBADF. */
	CU_ASSERT_EQUAL(upmd_k_close(fd), 0);
	CU_ASSERT_EQUAL(upmd_k_close(fd), -EBADF);
	CU_ASSERT_EQUAL(upmd_k_open(p, O_RDWR | O_CREAT | O_EXCL), -EEXIST);
	path_in(p, sizeof(p), "missing");
	CU_ASSERT_EQUAL(upmd_k_open(p, O_RDONLY), -ENOENT);
	/* Descriptors are close-on-exec. */
	path_in(p, sizeof(p), "excl");
	fd = upmd_k_open(p, O_RDONLY);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	upmd_k_close(fd);
}

/* A read made twice would consume the second message too. */
static void test_read_write_once(void)
{
	char buf[16] = { 0 };
	int p[2];

	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	CU_ASSERT_EQUAL(upmd_k_write(p[1], "one", 3), 3);
	CU_ASSERT_EQUAL(write(p[1], "two", 3), 3);
	CU_ASSERT_EQUAL(upmd_k_read(p[0], buf, 3), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "one", 3), 0);
	CU_ASSERT_EQUAL(read(p[0], buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "two", 3), 0);
	/* A write made twice would put two copies in the pipe. */
	CU_ASSERT_EQUAL(upmd_k_write(p[1], "x", 1), 1);
	close(p[1]);
	CU_ASSERT_EQUAL(read(p[0], buf, sizeof(buf)), 1);
	close(p[0]);
	CU_ASSERT_EQUAL(upmd_k_read(p[0], buf, 1), -EBADF);
}

static void test_pread_pwrite(void)
{
	char p[128], buf[8] = { 0 };
	int fd;

	path_in(p, sizeof(p), "rw");
	fd = upmd_k_open(p, O_RDWR | O_CREAT);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(upmd_k_pwrite(fd, "abcdef", 6, 10), 6);
	CU_ASSERT_EQUAL(upmd_k_pread(fd, buf, 3, 12), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "cde", 3), 0);
	CU_ASSERT_EQUAL(upmd_k_pread(fd, buf, 3, -1), -EINVAL);
	upmd_k_close(fd);
}

static void test_eventfd(void)
{
	uint64_t v = 0;
	int fd = upmd_k_eventfd(0, EFD_NONBLOCK);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(upmd_k_read(fd, &v, sizeof(v)), -EAGAIN);
	v = 1;
	CU_ASSERT_EQUAL(upmd_k_write(fd, &v, sizeof(v)), 8);
	v = 0;
	CU_ASSERT_EQUAL(upmd_k_read(fd, &v, sizeof(v)), 8);
	CU_ASSERT_EQUAL(v, 1);
	upmd_k_close(fd);
}

static int count_entries(const char *name, void *arg)
{
	(void)name;
	(*(int *)arg)++;
	return 0;
}

static int stop_at_first(const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return 42;
}

static void test_files_and_links(void)
{
	char p[128], l[128], buf[64];
	int n = 0;

	path_in(p, sizeof(p), "attr");
	CU_ASSERT_EQUAL(upmd_k_write_file(p, "0x1af4\n"), -ENOENT);
	CU_ASSERT_EQUAL(close(open(p, O_CREAT | O_WRONLY, 0644)), 0);
	CU_ASSERT_EQUAL(upmd_k_write_file(p, "0x1af4\n"), 7);
	/* The trailing newline is stripped, as sysfs attributes need. */
	CU_ASSERT_EQUAL(upmd_k_read_file(p, buf, sizeof(buf)), 6);
	CU_ASSERT_STRING_EQUAL(buf, "0x1af4");
	CU_ASSERT_EQUAL(upmd_k_read_file(p, buf, 4), 3);
	CU_ASSERT_STRING_EQUAL(buf, "0x1");
	CU_ASSERT_EQUAL(upmd_k_read_file(p, buf, 0), -EINVAL);

	path_in(l, sizeof(l), "link");
	CU_ASSERT_EQUAL(symlink("../../drivers/vfio-pci", l), 0);
	CU_ASSERT_EQUAL(upmd_k_readlink(l, buf, sizeof(buf)), 22);
	CU_ASSERT_STRING_EQUAL(buf, "../../drivers/vfio-pci");
	CU_ASSERT_EQUAL(upmd_k_readlink(p, buf, sizeof(buf)), -EINVAL);

	CU_ASSERT_EQUAL(upmd_k_access(p, F_OK), 0);
	CU_ASSERT_EQUAL(upmd_k_access(l, F_OK), -ENOENT);	/* follows the link */
	CU_ASSERT_EQUAL(upmd_k_access("/nonexistent/upmd", F_OK), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_listdir(dir, count_entries, &n), 0);
	CU_ASSERT_TRUE(n >= 2);
	CU_ASSERT_EQUAL(upmd_k_listdir(dir, stop_at_first, NULL), 42);
	CU_ASSERT_EQUAL(upmd_k_listdir("/nonexistent/upmd", count_entries, &n), -ENOENT);
}

static const struct upmd_test tests[] = {
	{ "open and close happen once", test_open_once },
	{ "read and write happen once", test_read_write_once },
	{ "pread / pwrite", test_pread_pwrite },
	{ "eventfd", test_eventfd },
	{ "files, links, access, listdir", test_files_and_links },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "libc kernel boundary", make_dir, remove_dir, tests })
