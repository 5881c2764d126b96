/* uAPI conformance suite: target choice, device discovery, the per-test fixture, raw uAPI calls and checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

const struct conf_target *conf_target;
struct conf_dev conf_devs[CONF_MAX_DEVS];
unsigned conf_ndevs;
int conf_dev_a = -1;
int conf_dev_b = -1;
bool conf_devices_required;

/* ---- checks ---------------------------------------------------------------- */

static const char *cur_test = "?";

const char *conf_rc_name(long rc)
{
	static char buf[4][32];
	static unsigned slot;
	const char *n;
	char *b = buf[slot++ % 4];

	if (rc >= 0) {
		snprintf(b, sizeof(buf[0]), "%ld", rc);
		return b;
	}
	n = rc > -4096 ? strerrorname_np((int)-rc) : NULL;
	if (n)
		snprintf(b, sizeof(buf[0]), "-%s", n);
	else
		snprintf(b, sizeof(buf[0]), "%ld", rc);
	return b;
}

static void report(bool fatal, bool ok, const char *msg, const char *file, unsigned line)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;

	printf("\n    %s %s:%u %s", ok ? "ok  " : "FAIL", base, line, msg);
	fflush(stdout);
	/* CUnit copies the condition text, so a stack buffer is fine. */
	CU_assertImplementation(ok, line, msg, base, cur_test, fatal);
}

void conf_check_rc(bool fatal, long got, long want, const char *what, const char *file,
		   unsigned line)
{
	char msg[512];

	if (got == want)
		snprintf(msg, sizeof(msg), "%s = %s", what, conf_rc_name(got));
	else
		snprintf(msg, sizeof(msg), "%s = %s, want %s", what, conf_rc_name(got),
			 conf_rc_name(want));
	report(fatal, got == want, msg, file, line);
}

void conf_check_u64(bool fatal, uint64_t got, uint64_t want, const char *what,
		    const char *file, unsigned line)
{
	char msg[512];

	if (got == want)
		snprintf(msg, sizeof(msg), "%s == 0x%llx", what, (unsigned long long)got);
	else
		snprintf(msg, sizeof(msg), "%s = 0x%llx, want 0x%llx", what,
			 (unsigned long long)got, (unsigned long long)want);
	report(fatal, got == want, msg, file, line);
}

void conf_check_true(bool fatal, bool ok, const char *what, const char *file, unsigned line)
{
	report(fatal, ok, what, file, line);
}

void conf_note(const char *fmt, ...)
{
	va_list ap;

	printf("\n    note ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* ---- fixture ------------------------------------------------------------- */

/* Fixture steps are not what a test asserts: silent when they work, a
 * fatal failure naming the step and its result when they do not. */
static void fx_require_rc(long rc, const char *what, unsigned line)
{
	if (rc < 0)
		conf_check_rc(true, rc, 0, what, __FILE__, line);
}

static void fx_require(bool ok, const char *what, unsigned line)
{
	if (!ok)
		report(true, false, what, __FILE__, line);
}

enum fx_kind { FX_IOMMUFD, FX_DEVICE };

#define FX_MAX 64

static struct {
	int fd;
	enum fx_kind kind;
} fx_fds[FX_MAX];
static unsigned fx_nfds;

static struct {
	void *p;
	size_t len;
} fx_bars[FX_MAX], fx_mems[FX_MAX];
static unsigned fx_nbars, fx_nmems;

static void track_fd(int fd, enum fx_kind kind)
{
	fx_require(fx_nfds < FX_MAX, "fixture: too many fds", __LINE__);
	fx_fds[fx_nfds].fd = fd;
	fx_fds[fx_nfds].kind = kind;
	fx_nfds++;
}

void fx_reset(void)
{
	unsigned i;

	/* A BAR mapping holds the device file open: unmap first. */
	for (i = fx_nbars; i-- > 0;)
		upmd_k_munmap(fx_bars[i].p, fx_bars[i].len);
	fx_nbars = 0;
	/* Device fds before iommufds: closing a device detaches and unbinds it. */
	for (i = fx_nfds; i-- > 0;)
		if (fx_fds[i].kind == FX_DEVICE)
			upmd_k_close(fx_fds[i].fd);
	for (i = fx_nfds; i-- > 0;)
		if (fx_fds[i].kind == FX_IOMMUFD)
			upmd_k_close(fx_fds[i].fd);
	fx_nfds = 0;
	for (i = fx_nmems; i-- > 0;)
		munmap(fx_mems[i].p, fx_mems[i].len);
	fx_nmems = 0;
}

void conf_test_begin(const char *name)
{
	cur_test = name;
	fx_reset();
}

void conf_test_end(void)
{
	char why[256] = "";

	fx_reset();
	if (conf_target->check_idle && conf_target->check_idle(why, sizeof(why))) {
		char msg[320];

		snprintf(msg, sizeof(msg), "target not idle after the test released everything: %s",
			 why);
		report(false, false, msg, __FILE__, __LINE__);
	}
	printf("\n  ");	/* CUnit's verdict on a line of its own */
}

int fx_iommufd(void)
{
	int fd = upmd_k_open("/dev/iommu", O_RDWR);

	fx_require_rc(fd, "open(/dev/iommu)", __LINE__);
	track_fd(fd, FX_IOMMUFD);
	return fd;
}

int fx_dev_open(int idx)
{
	int fd;

	fx_require(idx >= 0 && (unsigned)idx < conf_ndevs, "fixture: no such device", __LINE__);
	fd = upmd_k_open(conf_devs[idx].cdev, O_RDWR);
	fx_require_rc(fd, conf_devs[idx].cdev, __LINE__);
	track_fd(fd, FX_DEVICE);
	return fd;
}

int fx_close(int fd)
{
	unsigned i;

	for (i = 0; i < fx_nfds; i++) {
		if (fx_fds[i].fd == fd) {
			memmove(&fx_fds[i], &fx_fds[i + 1], (fx_nfds - i - 1) * sizeof(fx_fds[0]));
			fx_nfds--;
			break;
		}
	}
	return upmd_k_close(fd);
}

uint32_t fx_bind(int dfd, int ifd)
{
	uint32_t devid = 0;

	fx_require_rc(c_bind(dfd, ifd, &devid), "fixture: VFIO_DEVICE_BIND_IOMMUFD", __LINE__);
	return devid;
}

uint32_t fx_ioas(int ifd)
{
	uint32_t id = 0;

	fx_require_rc(c_ioas_alloc(ifd, &id), "fixture: IOMMU_IOAS_ALLOC", __LINE__);
	return id;
}

uint32_t fx_attach(int dfd, uint32_t pt)
{
	fx_require_rc(c_attach(dfd, &pt), "fixture: VFIO_DEVICE_ATTACH_IOMMUFD_PT", __LINE__);
	return pt;
}

void *fx_mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);

	fx_require(p != MAP_FAILED, "fixture: mmap of test memory", __LINE__);
	fx_require(fx_nmems < FX_MAX, "fixture: too many buffers", __LINE__);
	fx_mems[fx_nmems].p = p;
	fx_mems[fx_nmems].len = len;
	fx_nmems++;
	return p;
}

int fx_region_mmap(int dfd, uint64_t off, size_t len, int prot, int flags, void **out)
{
	int rc = upmd_k_mmap(NULL, len, prot, flags, dfd, (off_t)off, out);

	if (rc == 0) {
		fx_require(fx_nbars < FX_MAX, "fixture: too many BAR mappings", __LINE__);
		fx_bars[fx_nbars].p = *out;
		fx_bars[fx_nbars].len = len;
		fx_nbars++;
	}
	return rc;
}

int fx_region_munmap(void *p)
{
	unsigned i;

	for (i = 0; i < fx_nbars; i++) {
		if (fx_bars[i].p == p) {
			size_t len = fx_bars[i].len;

			memmove(&fx_bars[i], &fx_bars[i + 1], (fx_nbars - i - 1) * sizeof(fx_bars[0]));
			fx_nbars--;
			return upmd_k_munmap(p, len);
		}
	}
	return -EINVAL;
}

bool conf_need_dev(int idx, const char *what)
{
	if (idx >= 0)
		return true;
	if (conf_devices_required) {
		char msg[200];

		snprintf(msg, sizeof(msg), "the %s target must offer %s", conf_target->name, what);
		report(false, false, msg, __FILE__, __LINE__);
	} else {
		conf_note("SKIP: no %s here", what);
	}
	return false;
}

bool conf_dev_is_edu(int idx)
{
	return idx >= 0 && conf_devs[idx].vendor == EDU_VENDOR &&
	       conf_devs[idx].device == EDU_DEVICE;
}

/* ---- raw uAPI ------------------------------------------------------------ */

int c_ioas_alloc(int ifd, uint32_t *id)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &a);

	if (rc == 0)
		*id = a.out_ioas_id;
	return rc;
}

int c_destroy(int ifd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return upmd_k_ioctl(ifd, IOMMU_DESTROY, &d);
}

int c_map(int ifd, uint32_t ioas, uint32_t flags, const void *va, uint64_t len, uint64_t *iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = flags,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova ? *iova : 0,
	};
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m);

	if (rc == 0 && iova)
		*iova = m.iova;
	return rc;
}

int c_unmap(int ifd, uint32_t ioas, uint64_t iova, uint64_t len, uint64_t *unmapped)
{
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = len };
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_UNMAP, &u);

	if (rc == 0 && unmapped)
		*unmapped = u.length;
	return rc;
}

int c_ranges(int ifd, uint32_t ioas, struct iommu_iova_range *r, uint32_t *n, uint64_t *align)
{
	struct iommu_ioas_iova_ranges q = {
		.size = sizeof(q),
		.ioas_id = ioas,
		.num_iovas = *n,
		.allowed_iovas = (uintptr_t)r,
		.out_iova_alignment = 0xdeadbeef,
	};
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_IOVA_RANGES, &q);

	*n = q.num_iovas;
	if (align)
		*align = q.out_iova_alignment;
	return rc;
}

int c_option(int ifd, uint32_t option, uint16_t op, uint32_t obj, uint64_t *val)
{
	struct iommu_option o = {
		.size = sizeof(o),
		.option_id = option,
		.op = op,
		.object_id = obj,
		.val64 = *val,
	};
	int rc = upmd_k_ioctl(ifd, IOMMU_OPTION, &o);

	if (rc == 0)
		*val = o.val64;
	return rc;
}

int c_bind(int dfd, int ifd, uint32_t *devid)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = ifd };
	int rc = upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b);

	if (rc == 0 && devid)
		*devid = b.out_devid;
	return rc;
}

int c_attach(int dfd, uint32_t *pt)
{
	/* 6.12 knows argsz up to pt_id; a later kernel also accepts 16. */
	struct vfio_device_attach_iommufd_pt a = { .argsz = VFIO_DEVICE_ATTACH_MINSZ, .pt_id = *pt };
	int rc = upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);

	if (rc == 0)
		*pt = a.pt_id;
	return rc;
}

int c_detach(int dfd)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = VFIO_DEVICE_DETACH_MINSZ };

	return upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
}

int c_dev_info(int dfd, struct vfio_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, info);
}

int c_region_info(int dfd, uint32_t index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	return upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, ri);
}

/* ---- device discovery (sysfs through the table, as on the real machine) -- */

#define PCI_DEVICES "/sys/bus/pci/devices"

static int first_entry(const char *name, void *arg)
{
	snprintf(arg, 32, "%s", name);
	return 1;
}

static int read_hex16(const char *bdf, const char *attr, uint16_t *out)
{
	char path[256], buf[32], *end;
	unsigned long v;
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
	n = upmd_k_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	v = strtoul(buf, &end, 16);
	if (end == buf || v > 0xffff)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int add_dev(const char *bdf, void *arg)
{
	struct conf_dev *d = &conf_devs[conf_ndevs];
	char path[256], node[32] = "";

	(void)arg;
	if (conf_ndevs == CONF_MAX_DEVS)
		return 0;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", bdf);
	if (upmd_k_listdir(path, first_entry, node) < 0 || !node[0])
		return 0;	/* not bound to vfio-pci (or no cdev) */
	memset(d, 0, sizeof(*d));
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);
	snprintf(d->cdev, sizeof(d->cdev), "/dev/vfio/devices/%s", node);
	if (read_hex16(bdf, "vendor", &d->vendor) < 0 || read_hex16(bdf, "device", &d->device) < 0)
		return 0;
	conf_ndevs++;
	return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(((const struct conf_dev *)a)->bdf, ((const struct conf_dev *)b)->bdf);
}

static void discover(void)
{
	unsigned i;
	int rc;

	conf_ndevs = 0;
	rc = upmd_k_listdir(PCI_DEVICES, add_dev, NULL);
	if (rc < 0)
		printf("conformance: cannot list " PCI_DEVICES ": %s\n", conf_rc_name(rc));
	qsort(conf_devs, conf_ndevs, sizeof(conf_devs[0]), cmp_bdf);

	for (i = 0; i < conf_ndevs; i++)
		if (conf_dev_a < 0 && conf_dev_is_edu((int)i))
			conf_dev_a = (int)i;
	if (conf_dev_a < 0 && conf_ndevs)
		conf_dev_a = 0;
	/* The second device: an NVMe if there is one, else any other. */
	for (i = 0; i < conf_ndevs; i++)
		if ((int)i != conf_dev_a && conf_devs[i].vendor == 0x1b36 &&
		    conf_devs[i].device == 0x0010 && conf_dev_b < 0)
			conf_dev_b = (int)i;
	for (i = 0; i < conf_ndevs && conf_dev_b < 0; i++)
		if ((int)i != conf_dev_a)
			conf_dev_b = (int)i;

	for (i = 0; i < conf_ndevs; i++)
		printf("conformance: device %s %04x:%04x %s%s\n", conf_devs[i].bdf,
		       conf_devs[i].vendor, conf_devs[i].device, conf_devs[i].cdev,
		       (int)i == conf_dev_a ? " (device A)" : (int)i == conf_dev_b ? " (device B)" : "");
}

/* ---- main ------------------------------------------------------------------- */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--model [--model-spec SPEC] | --kernel]\n"
		"  --model             the in-process model (default)\n"
		"  --model-spec SPEC   the model machine (default \"%s\")\n"
		"  --kernel            the running kernel (default when UPMD_IN_VM=1)\n",
		prog, CONF_MODEL_SPEC);
}

int main(int argc, char **argv)
{
	static const struct upmd_suite suites[] = {
		{ "iommufd", NULL, NULL, conf_iommufd_tests },
		{ "vfio-device", NULL, NULL, conf_device_tests },
		{ "attach", NULL, NULL, conf_attach_tests },
	};
	const char *vm = getenv("UPMD_IN_VM");
	int rc, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	conf_target = (vm && !strcmp(vm, "1")) ? &conf_target_kernel : &conf_target_model;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kernel")) {
			conf_target = &conf_target_kernel;
		} else if (!strcmp(argv[i], "--model")) {
			conf_target = &conf_target_model;
		} else if (!strcmp(argv[i], "--model-spec") && i + 1 < argc) {
			conf_target = &conf_target_model;
			conf_model_spec = argv[++i];
		} else {
			usage(argv[0]);
			return 2;
		}
	}
	printf("conformance: target %s\n", conf_target->name);
	rc = conf_target->setup();
	if (rc < 0) {
		printf("conformance: cannot set up the %s target: %s\n", conf_target->name,
		       conf_rc_name(rc));
		return 1;
	}
	discover();

	rc = upmd_test_run(suites, sizeof(suites) / sizeof(suites[0]));
	fx_reset();
	if (conf_target->teardown() != 0) {
		printf("conformance: FAIL: the %s target was not left clean\n", conf_target->name);
		rc = 1;
	}
	printf("conformance: %s on the %s target\n", rc ? "FAILED" : "passed", conf_target->name);
	return rc;
}
