/* Binding devices to vfio-pci through sysfs, against the model: the library calls, and the upmd-devbind tool run with --model. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <upmd/edu.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define EDU_ON "0000:00:04.0"
#define EDU_OFF "0000:00:05.0"
#define ABSENT "0000:00:09.0"
#define SPEC "edu@" EDU_ON ";edu@" EDU_OFF ":driver=none"

extern char **environ;

static struct upmd_model *model;

static void uninstall(void)
{
	if (!model)
		return;
	assert_model_clean(model);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(model);
	model = NULL;
}

/* Every test here runs on the model: binding on this (root) machine's
 * real sysfs would rebind its devices. */
static void install(void)
{
	uninstall();
	CU_ASSERT_EQUAL_FATAL(upmd_model_install(SPEC, &model), 0);
	CU_ASSERT_PTR_NOT_EQUAL_FATAL(upmd_kernel.ops, &upmd_kops_libc);
}

static struct upmd_pci_sysfs_dev read_dev(const char *bdf)
{
	struct upmd_pci_sysfs_dev d;

	CU_ASSERT_EQUAL(upmd_pci_sysfs_read(bdf, &d), 0);
	return d;
}

/* ---- the library calls ---- */

static void test_bind_unbind(void)
{
	struct upmd_pci_sysfs_dev on, off;
	char path[128], buf[64];

	install();
	on = read_dev(EDU_ON);
	off = read_dev(EDU_OFF);
	CU_ASSERT_STRING_EQUAL(on.driver, "vfio-pci");
	CU_ASSERT_NOT_EQUAL(on.cdev[0], '\0');
	CU_ASSERT_STRING_EQUAL(off.driver, "");
	CU_ASSERT_STRING_EQUAL(off.cdev, "");

	/* Bind: the vfio-dev node appears, with a cdev of its own. */
	CU_ASSERT_EQUAL_FATAL(upmd_pci_sysfs_bind(EDU_OFF, "vfio-pci"), 0);
	off = read_dev(EDU_OFF);
	CU_ASSERT_STRING_EQUAL(off.driver, "vfio-pci");
	CU_ASSERT_EQUAL(strncmp(off.cdev, "vfio", 4), 0);
	CU_ASSERT_STRING_NOT_EQUAL(off.cdev, on.cdev);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", EDU_OFF);
	CU_ASSERT_TRUE(upmd_k_read_file(path, buf, sizeof(buf)) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "vfio-pci");
	/* Already bound: nothing to do. */
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind("00:05.0", "vfio-pci"), 0);
	CU_ASSERT_STRING_EQUAL(read_dev(EDU_OFF).cdev, off.cdev);

	/* Unbind: the node goes, and driver_override is cleared. */
	CU_ASSERT_EQUAL(upmd_pci_sysfs_unbind(EDU_OFF), 0);
	off = read_dev(EDU_OFF);
	CU_ASSERT_STRING_EQUAL(off.driver, "");
	CU_ASSERT_STRING_EQUAL(off.cdev, "");
	if (upmd_k_read_file(path, buf, sizeof(buf)) >= 0)
		CU_ASSERT_TRUE(buf[0] == '\0' || !strcmp(buf, "(null)"));
	CU_ASSERT_EQUAL(upmd_pci_sysfs_unbind(EDU_OFF), 0);	/* nothing bound: fine */

	/* The device that started on vfio-pci goes and comes back. */
	CU_ASSERT_EQUAL(upmd_pci_sysfs_unbind(EDU_ON), 0);
	CU_ASSERT_STRING_EQUAL(read_dev(EDU_ON).cdev, "");
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind(EDU_ON, "vfio-pci"), 0);
	CU_ASSERT_STRING_EQUAL(read_dev(EDU_ON).driver, "vfio-pci");
	CU_ASSERT_NOT_EQUAL(read_dev(EDU_ON).cdev[0], '\0');
	uninstall();
}

static void test_bind_errors(void)
{
	install();
	log_capture();
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind(ABSENT, "vfio-pci"), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "device " ABSENT " not found"));
	CU_ASSERT_EQUAL(upmd_pci_sysfs_unbind(ABSENT), -ENODEV);
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind("0000:00:05", "vfio-pci"), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind(EDU_OFF, ""), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind(EDU_OFF, "../vfio-pci"), -EINVAL);
	/* A driver the kernel has not loaded: say which modprobe, and leave
	 * the device as it was. */
	CU_ASSERT_EQUAL(upmd_pci_sysfs_bind(EDU_ON, "nosuchdrv"), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "modprobe nosuchdrv"));
	log_release();
	CU_ASSERT_STRING_EQUAL(read_dev(EDU_ON).driver, "vfio-pci");
	uninstall();
}

/* What binding is for: the newly bound device is usable by the PCI bus. */
static void test_bind_then_use(void)
{
	struct upmd_ioas_conf conf = { .size = sizeof(conf) };
	const char *allow[] = { EDU_OFF };
	struct upmd_bus_conf bc = { .allow = allow, .n_allow = 1 };
	struct upmd_pci_device *d;
	struct upmd_ioas *ioas;
	struct upmd_bus *b;

	for (b = upmd_bus_first(); b && strcmp(b->name, "pci"); b = b->next)
		;
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	install();
	log_capture();
	CU_ASSERT_EQUAL(b->scan(&bc), -ENODEV);
	log_release();
	CU_ASSERT_EQUAL_FATAL(upmd_pci_sysfs_bind(EDU_OFF, "vfio-pci"), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_open(&conf, &ioas), 0);
	CU_ASSERT_EQUAL(b->scan(&bc), 0);
	CU_ASSERT_EQUAL(b->attach(ioas), 0);
	CU_ASSERT_EQUAL(b->probe(), 0);
	d = upmd_pci_device_find(EDU_OFF);
	CU_ASSERT_PTR_NOT_NULL(d);
	if (d) {
		CU_ASSERT_STRING_EQUAL(d->cdev, read_dev(EDU_OFF).cdev);
		CU_ASSERT_PTR_NOT_NULL(upmd_edu_get(d));
		if (upmd_edu_get(d))
			CU_ASSERT_EQUAL(upmd_edu_check_alive(upmd_edu_get(d), 0x1234), 0);
	}
	b->cleanup();
	upmd_ioas_close(ioas);
	CU_ASSERT_EQUAL(upmd_pci_sysfs_unbind(EDU_OFF), 0);
	uninstall();
}

/* ---- the tool ---- */

static char tool[PATH_MAX];

/* The build puts it at apps/devbind/ beside tests/func/. */
static int find_tool(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *p;
	int i;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	for (i = 0; i < 3; i++) {
		p = strrchr(self, '/');
		if (!p)
			return -1;
		*p = '\0';
	}
	if (strlen(self) + sizeof("/apps/devbind/upmd-devbind") > sizeof(tool))
		return -1;
	strcpy(tool, self);
	strcat(tool, "/apps/devbind/upmd-devbind");
	return access(tool, X_OK);
}

struct out {
	int code;		/* exit code, or -1 if it did not exit normally */
	char text[8192];	/* stdout */
	char err[8192];		/* stderr */
};

static void slurp(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static pid_t spawn(char *const argv[], FILE **fo, FILE **fe)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	*fo = tmpfile();
	*fe = tmpfile();
	if (!*fo || !*fe)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fileno(*fo), 1);
	posix_spawn_file_actions_adddup2(&fa, fileno(*fe), 2);
	rc = posix_spawn(&pid, tool, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc ? -1 : pid;
}

static void finish(pid_t pid, FILE *fo, FILE *fe, struct out *o)
{
	int status;

	o->code = -1;
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		o->code = WEXITSTATUS(status);
	slurp(fo, o->text, sizeof(o->text));
	slurp(fe, o->err, sizeof(o->err));
}

#define RUN(o, ...)                                                            \
	do {                                                                   \
		char *argv_[] = { tool, __VA_ARGS__, NULL };                   \
		FILE *fo_, *fe_;                                               \
		pid_t pid_ = spawn(argv_, &fo_, &fe_);                         \
		CU_ASSERT_TRUE_FATAL(pid_ > 0);                                \
		finish(pid_, fo_, fe_, (o));                                   \
	} while (0)

/* The line of @text that starts with @prefix, or "" (into @buf). */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t len)
{
	const char *p = text, *nl;

	buf[0] = '\0';
	for (; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (!strncmp(p, prefix, strlen(prefix))) {
			size_t n = nl ? (size_t)(nl - p) : strlen(p);

			n = n < len - 1 ? n : len - 1;
			memcpy(buf, p, n);
			buf[n] = '\0';
			break;
		}
	}
	return buf;
}

static void test_tool_status(void)
{
	static struct out o;
	char line[256];

	RUN(&o, "--model", SPEC, "--status");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "/dev/iommu present"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "PCI devices: 2"));
	line_of(o.text, EDU_ON, line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " 1234:11e8 00ff00 vfio-pci "));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " /dev/vfio/devices/vfio"));
	line_of(o.text, EDU_OFF, line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, " 1234:11e8 00ff00 - "));
	CU_ASSERT_PTR_NULL(strstr(line, "/dev/vfio"));
	CU_ASSERT_STRING_EQUAL(o.err, "");

	RUN(&o, "-s", "--model", SPEC ";flags=noiommufd");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "no /dev/iommu"));

	RUN(&o, "--model", "", "--status");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "PCI devices: 0"));
}

static void test_tool_bind(void)
{
	static struct out o;

	RUN(&o, "--model", SPEC, "--bind", "vfio-pci", EDU_OFF);
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, EDU_OFF ": bound to vfio-pci, /dev/vfio/devices/vfio"));

	/* Short spelling, two at once, one already bound. */
	RUN(&o, "--model", SPEC, "-b", "vfio-pci", "00:04.0", "00:05.0");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, EDU_ON ": bound to vfio-pci"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, EDU_OFF ": bound to vfio-pci"));

	RUN(&o, "--model", SPEC, "--unbind", EDU_ON);
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, EDU_ON ": unbound from vfio-pci"));

	/* An absent device: an error (1), and the others still done. */
	RUN(&o, "--model", SPEC, "--bind", "vfio-pci", ABSENT, EDU_OFF);
	CU_ASSERT_EQUAL(o.code, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, ABSENT " not found"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, EDU_OFF ": bound to vfio-pci"));

	RUN(&o, "--model", SPEC, "-u", ABSENT);
	CU_ASSERT_EQUAL(o.code, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "no such device"));

	RUN(&o, "--model", SPEC, "--bind", "nosuchdrv", EDU_ON);
	CU_ASSERT_EQUAL(o.code, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "modprobe nosuchdrv"));
}

static void test_tool_usage(void)
{
	static struct out o;
	char *const *cases[] = {
		(char *[]){ NULL },
		(char *[]){ "--bogus", NULL },
		(char *[]){ "--status", "extra", NULL },
		(char *[]){ "--bind", "vfio-pci", NULL },
		(char *[]){ "--bind", EDU_ON, NULL },
		(char *[]){ "--bind", "vfio-pci", "0000:00:20.0", NULL },
		(char *[]){ "--unbind", NULL },
		(char *[]){ "--unbind", "04.0", NULL },
		(char *[]){ "--status", "--unbind", EDU_ON, NULL },
		(char *[]){ "--hugepages", "abc", NULL },
		(char *[]){ "--hugepages", "4,", NULL },
		(char *[]){ "--hugepages", "-4", NULL },
		(char *[]){ "--hugepages", NULL },
		(char *[]){ "--model", SPEC, "--hugepages", "4", NULL },	/* would touch real /sys */
		(char *[]){ "--model", "nosuch@0000:00:04.0", "--status", NULL },
	};
	unsigned i;

	for (i = 0; i < UPMD_DIM(cases); i++) {
		char *argv[8] = { tool };
		unsigned j;
		FILE *fo, *fe;
		pid_t pid;

		for (j = 0; cases[i][j] && j + 2 < UPMD_DIM(argv); j++)
			argv[j + 1] = cases[i][j];
		pid = spawn(argv, &fo, &fe);
		CU_ASSERT_TRUE_FATAL(pid > 0);
		finish(pid, fo, fe, &o);
		if (o.code != 2)
			printf("\n  case %u (%s ...) exited %d", i, argv[1] ? argv[1] : "", o.code);
		CU_ASSERT_EQUAL(o.code, 2);
		CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "Usage:"));
		CU_ASSERT_STRING_EQUAL(o.text, "");
	}
	RUN(&o, "--help");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "Usage:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "--bind DRIVER BDF"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "--model SPEC"));
}

/* A fake sysfs for hugepages: the real pool is never touched. */
static char hroot[64];

static void mkpath(const char *rel, const char *content)
{
	char path[256], *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", hroot, rel);
	for (p = path + strlen(hroot) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	if (!content) {
		CU_ASSERT_EQUAL(mkfifo(path, 0600), 0);
		return;
	}
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(content, f);
	fclose(f);
}

static unsigned long file_count(const char *rel)
{
	char path[256];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", hroot, rel);
	f = fopen(path, "r");
	if (!f)
		return ~0ul;
	if (fscanf(f, "%lu", &v) != 1)
		v = ~0ul;
	fclose(f);
	return v;
}

#define HP_TOTAL "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
#define HP_NODE0 "devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
#define HP_NODE1 "devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A kernel that gives fewer pages than asked: nr_hugepages is a FIFO, so
 * the test reads what the tool writes and answers the read-back itself.
 */
static void short_kernel(const char *fifo, const char *answer, char *got, size_t len)
{
	int64_t end = now_ms() + 10000;
	struct pollfd p;
	ssize_t n = 0;
	int fd;

	fd = open(fifo, O_RDONLY | O_NONBLOCK);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	p.fd = fd;
	p.events = POLLIN;
	/* Wait for the tool's write (POLLHUP alone: not opened yet). */
	while (now_ms() < end) {
		if (poll(&p, 1, 100) > 0 && (p.revents & POLLIN)) {
			n = read(fd, got, len - 1);
			break;
		}
	}
	close(fd);
	got[n > 0 ? n : 0] = '\0';
	/* Then answer its read-back once it opens the FIFO to read. */
	while (now_ms() < end) {
		fd = open(fifo, O_WRONLY | O_NONBLOCK);
		if (fd >= 0) {
			CU_ASSERT_EQUAL(write(fd, answer, strlen(answer)), (ssize_t)strlen(answer));
			close(fd);
			return;
		}
		usleep(10000);
	}
	CU_FAIL("the tool never read nr_hugepages back");
}

static void test_tool_hugepages(void)
{
	static struct out o;
	char fifo[256], got[32];
	FILE *fo, *fe;
	pid_t pid;

	/* mkdtemp's template: six X's after the prefix. */
	strcpy(hroot, "/tmp/upmd-devbind-");
	memset(hroot + strlen(hroot), 'X', 6);
	hroot[sizeof("/tmp/upmd-devbind-") - 1 + 6] = '\0';
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(hroot));
	mkpath(HP_TOTAL, "0\n");
	mkpath(HP_NODE0, "0\n");

	RUN(&o, "--sysfs", hroot, "--hugepages", "8");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "asked for 8, the kernel has 8 (16 MiB)"));
	CU_ASSERT_EQUAL(file_count(HP_TOTAL), 8);

	RUN(&o, "--sysfs", hroot, "--hugepages", "4,0");
	CU_ASSERT_EQUAL(o.code, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "on NUMA node 0: asked for 4, the kernel has 4"));
	CU_ASSERT_EQUAL(file_count(HP_NODE0), 4);

	RUN(&o, "--sysfs", hroot, "--hugepages", "4,3");
	CU_ASSERT_EQUAL(o.code, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "no NUMA node 3"));

	/* The model has no hugepages; --sysfs makes the combination safe. */
	RUN(&o, "--model", SPEC, "--sysfs", hroot, "--hugepages", "2");
	CU_ASSERT_EQUAL(o.code, 0);

	/* Fewer than asked: an error that says so. */
	mkpath(HP_NODE1, NULL);
	snprintf(fifo, sizeof(fifo), "%s/%s", hroot, HP_NODE1);
	{
		char *argv[] = { tool, "--sysfs", hroot, "--hugepages", "16,1", NULL };

		pid = spawn(argv, &fo, &fe);
		CU_ASSERT_TRUE_FATAL(pid > 0);
		short_kernel(fifo, "5\n", got, sizeof(got));
		finish(pid, fo, fe, &o);
	}
	CU_ASSERT_STRING_EQUAL(got, "16\n");
	CU_ASSERT_EQUAL(o.code, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.text, "asked for 16, the kernel has 5"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.err, "only 5 of 16"));

	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hroot);
		CU_ASSERT_EQUAL(system(cmd), 0);
	}
}

static int tool_init(void)
{
	if (find_tool() < 0) {
		fprintf(stderr, "upmd-devbind not found at %s (is apps/devbind built?)\n", tool);
		return 1;
	}
	return 0;
}

static const struct upmd_test lib_tests[] = {
	{ "bind and unbind through driver_override", test_bind_unbind },
	{ "bind errors: absent device, bad names, driver not loaded", test_bind_errors },
	{ "a device bound by name is then usable by the PCI bus", test_bind_then_use },
	{ NULL, NULL },
};

static const struct upmd_test tool_tests[] = {
	{ "--status", test_tool_status },
	{ "--bind and --unbind", test_tool_bind },
	{ "usage errors exit 2", test_tool_usage },
	{ "--hugepages on a fake sysfs", test_tool_hugepages },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "devbind library calls on the model", NULL, NULL, lib_tests },
	       { "upmd-devbind --model", tool_init, NULL, tool_tests })
