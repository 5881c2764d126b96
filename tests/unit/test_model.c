/* The model of the kernel uAPI, driven only through the kops table with raw iommufd/vfio structs: every errno rule, the sysfs tree, type1, BARs, interrupts, edu DMA and faults, and nothing left behind. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/model.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#include "upmd_test.h"

#define EDU0 "0000:00:04.0"
#define EDU1 "0000:00:05.0"
#define PG 4096UL
#define MSI_FIRST 0xfee00000ULL
#define MSI_LAST 0xfeefffffULL
#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)

/* edu registers */
#define E_ID 0x00
#define E_LIVE 0x04
#define E_FACT 0x08
#define E_STATUS 0x20
#define E_IRQ_STATUS 0x24
#define E_IRQ_RAISE 0x60
#define E_IRQ_ACK 0x64
#define E_SRC 0x80
#define E_DST 0x88
#define E_CNT 0x90
#define E_CMD 0x98
#define E_BUF 0x40000

static struct upmd_model *m;

/* ---- fixture ------------------------------------------------------------------ */

static int install(const char *spec)
{
	int rc = upmd_model_install(spec, &m);

	CU_ASSERT_EQUAL(rc, 0);
	return rc;
}

/* Everything a test opened is closed: nothing pinned, open or attached. */
static void assert_clean(void)
{
	struct upmd_model_stats st;

	CU_ASSERT_EQUAL_FATAL(upmd_model_get_stats(m, &st), 0);
	CU_ASSERT_EQUAL(st.pinned_pages, 0);
	CU_ASSERT_EQUAL(st.open_fds, 0);
	CU_ASSERT_EQUAL(st.objects, 0);
	CU_ASSERT_EQUAL(st.bound_devices, 0);
	CU_ASSERT_EQUAL(st.attached_devices, 0);
	CU_ASSERT_EQUAL(st.bar_mappings, 0);
}

static void uninstall(void)
{
	if (!m)
		return;
	assert_clean();
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(m);
	m = NULL;
}

static struct upmd_model_stats stats(void)
{
	struct upmd_model_stats st;

	memset(&st, 0, sizeof(st));
	upmd_model_get_stats(m, &st);
	return st;
}

static void *mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);

	CU_ASSERT_NOT_EQUAL_FATAL(p, MAP_FAILED);
	return p;
}

/* ---- raw uAPI calls --------------------------------------------------------- */

static int iommufd(void)
{
	int fd = upmd_k_open("/dev/iommu", O_RDWR);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	return fd;
}

static uint32_t ioas_alloc(int ifd)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &a), 0);
	return a.out_ioas_id;
}

static int destroy(int ifd, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return upmd_k_ioctl(ifd, IOMMU_DESTROY, &d);
}

static int map(int ifd, uint32_t ioas, uint32_t flags, const void *va, uint64_t len, uint64_t *iova)
{
	struct iommu_ioas_map mp = {
		.size = sizeof(mp), .flags = flags, .ioas_id = ioas,
		.user_va = (uintptr_t)va, .length = len, .iova = iova ? *iova : 0,
	};
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &mp);

	if (rc == 0 && iova)
		*iova = mp.iova;
	return rc;
}

static int unmap(int ifd, uint32_t ioas, uint64_t iova, uint64_t len, uint64_t *done)
{
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = len };
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_UNMAP, &u);

	if (done)
		*done = u.length;
	return rc;
}

static int ranges(int ifd, uint32_t ioas, struct iommu_iova_range *r, uint32_t *n, uint64_t *align)
{
	struct iommu_ioas_iova_ranges c = {
		.size = sizeof(c), .ioas_id = ioas, .num_iovas = *n, .allowed_iovas = (uintptr_t)r,
	};
	int rc = upmd_k_ioctl(ifd, IOMMU_IOAS_IOVA_RANGES, &c);

	*n = c.num_iovas;
	if (align)
		*align = c.out_iova_alignment;
	return rc;
}

static int option(int ifd, uint32_t opt, uint16_t op, uint32_t obj, uint64_t *val)
{
	struct iommu_option o = {
		.size = sizeof(o), .option_id = opt, .op = op, .object_id = obj, .val64 = *val,
	};
	int rc = upmd_k_ioctl(ifd, IOMMU_OPTION, &o);

	*val = o.val64;
	return rc;
}

static int cdev_open(int n)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", n);
	fd = upmd_k_open(path, O_RDWR);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	return fd;
}

static int bind(int dfd, int ifd, uint32_t *devid)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = ifd };
	int rc = upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b);

	if (devid)
		*devid = b.out_devid;
	return rc;
}

static int attach(int dfd, uint32_t *pt)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = VFIO_DEVICE_ATTACH_MINSZ, .pt_id = *pt };
	int rc = upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);

	*pt = a.pt_id;
	return rc;
}

static int attach_pasid(int dfd, uint32_t pasid, uint32_t *pt)
{
	struct vfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .flags = VFIO_DEVICE_ATTACH_PASID, .pt_id = *pt, .pasid = pasid,
	};
	int rc = upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);

	*pt = a.pt_id;
	return rc;
}

static int detach(int dfd)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = VFIO_DEVICE_DETACH_MINSZ };

	return upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
}

/* A device bound to @ifd and attached to @ioas; returns its fd. */
static int dev_ready(int n, int ifd, uint32_t ioas, uint32_t *hwpt)
{
	int dfd = cdev_open(n);
	uint32_t pt = ioas;

	CU_ASSERT_EQUAL_FATAL(bind(dfd, ifd, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(attach(dfd, &pt), 0);
	if (hwpt)
		*hwpt = pt;
	return dfd;
}

static uint16_t cfg16(int dfd, unsigned off)
{
	uint16_t v = 0;

	CU_ASSERT_EQUAL(upmd_k_pread(dfd, &v, 2, (off_t)(VFIO_PCI_INDEX_TO_OFFSET(7) + off)), 2);
	return v;
}

static void bus_master(int dfd, bool on)
{
	uint16_t cmd = cfg16(dfd, 4);

	cmd = on ? (uint16_t)(cmd | 4) : (uint16_t)(cmd & ~4);
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &cmd, 2, (off_t)(VFIO_PCI_INDEX_TO_OFFSET(7) + 4)), 2);
}

static void *bar0(int dfd)
{
	void *p = NULL;

	CU_ASSERT_EQUAL_FATAL(upmd_k_mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0, &p), 0);
	return p;
}

static inline uint32_t rd32(volatile uint8_t *b, unsigned off)
{
	return *(volatile uint32_t *)(b + off);
}

static inline void wr32(volatile uint8_t *b, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(b + off) = v;
}

static inline void wr64(volatile uint8_t *b, unsigned off, uint64_t v)
{
	*(volatile uint64_t *)(b + off) = v;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Program an edu transfer through the mapped BAR and wait for RUN to clear. */
static int edu_dma(volatile uint8_t *b, uint64_t iova, uint32_t buf_off, uint32_t len, bool to_ram)
{
	uint64_t deadline = now_ms() + 5000;

	if (to_ram) {
		wr64(b, E_SRC, E_BUF + buf_off);
		wr64(b, E_DST, iova);
	} else {
		wr64(b, E_SRC, iova);
		wr64(b, E_DST, E_BUF + buf_off);
	}
	wr64(b, E_CNT, len);
	wr32(b, E_CMD, 1 | (to_ram ? 2 : 0));
	while (rd32(b, E_CMD) & 1) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
	return 0;
}

/* A capability in this process's effective set (containers drop some). */
static bool have_cap(int cap)
{
	char line[256];
	bool yes = false;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7))
			yes = (strtoull(line + 7, NULL, 16) >> cap) & 1;
	if (f)
		fclose(f);
	return yes;
}

static int efd_count(int efd, int timeout_ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (upmd_k_read(efd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return (int)v;
}

/* ---- spec and lifecycle ---------------------------------------------------------- */

static void test_spec(void)
{
	struct upmd_model_conf conf = { .size = sizeof(conf) };
	struct upmd_model *x = NULL;
	int old = upmd_log_level_cur;

	upmd_log_set_level(UPMD_LOG_EMERG);	/* the bad specs below log on purpose */
	CU_ASSERT_EQUAL(upmd_model_parse("", &x), 0);
	upmd_model_destroy(x);
	CU_ASSERT_EQUAL(upmd_model_parse(" ; ;", &x), 0);
	upmd_model_destroy(x);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04.0:dma_mask=0xffffffff;edu@00:05.0;flags=unpriv,nopasid;aw=39",
					 &x), 0);
	CU_ASSERT_PTR_NOT_NULL(upmd_model_dev_find(x, "00:05.0"));
	CU_ASSERT_PTR_NOT_NULL(upmd_model_dev_find(x, "0000:00:04.0"));
	CU_ASSERT_PTR_NULL(upmd_model_dev_find(x, "0000:00:06.0"));
	upmd_model_destroy(x);
	/* Each bad token is -EINVAL and no machine. */
	x = (void *)1;
	CU_ASSERT_EQUAL(upmd_model_parse("nosuch@0000:00:04.0", &x), -EINVAL);
	CU_ASSERT_PTR_NULL(x);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:20.0", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04.0x", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04.0;edu@00:04.0", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04.0:bogus=1", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04.0:dma_mask=zz", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@0000:00:04.0:novalue", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("flags=nopasid,bogus", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("aw=12", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse(NULL, &x), -EINVAL);
	CU_ASSERT_PTR_NULL(x);

	CU_ASSERT_EQUAL(upmd_model_create(&conf, &x), 0);
	CU_ASSERT_EQUAL(upmd_model_add_device(x, "edu", EDU0, NULL), 0);
	CU_ASSERT_EQUAL(upmd_model_add_device(x, "edu", "00:04.0", NULL), -EEXIST);
	CU_ASSERT_EQUAL(upmd_model_add_device(x, "nvme-nope", EDU1, NULL), -ENOENT);
	CU_ASSERT_EQUAL(upmd_model_add_device(x, "edu", "junk", NULL), -EINVAL);
	upmd_model_destroy(x);
	conf.flags = 1u << 30;
	CU_ASSERT_EQUAL(upmd_model_create(&conf, &x), -EINVAL);
	conf.flags = 0;
	conf.size = 4;
	CU_ASSERT_EQUAL(upmd_model_create(&conf, &x), -EINVAL);
	conf.size = sizeof(conf);
	conf.aw_bits = 70;
	CU_ASSERT_EQUAL(upmd_model_create(&conf, &x), -EINVAL);
	upmd_log_set_level(old);

	/* install puts the model in force; a fresh machine is clean. */
	if (install("edu@" EDU0) < 0)
		return;
	CU_ASSERT_PTR_EQUAL(upmd_kernel.ops, upmd_model_kops());
	CU_ASSERT_PTR_EQUAL(upmd_kernel.ctx, m);
	CU_ASSERT_STRING_EQUAL(upmd_model_fault_reason_name(UPMD_MODEL_FAULT_UNMAPPED), "IOVA not mapped");
	uninstall();
	CU_ASSERT_PTR_EQUAL(upmd_kernel.ops, &upmd_kops_libc);
}

/* ---- iommufd objects and size rules ------------------------------------------------- */

static void test_objects(void)
{
	struct iommu_ioas_alloc a;
	uint8_t big[64];
	int ifd, ifd2, dfd;
	uint32_t ioas, ioas2, devid, hwpt;

	if (install("edu@" EDU0) < 0)
		return;
	ifd = iommufd();
	CU_ASSERT_EQUAL(stats().open_fds, 1);

	/* Ids come from 1 and the lowest free one is reused. */
	ioas = ioas_alloc(ifd);
	CU_ASSERT_EQUAL(ioas, 1);
	ioas2 = ioas_alloc(ifd);
	CU_ASSERT_EQUAL(ioas2, 2);
	CU_ASSERT_EQUAL(destroy(ifd, ioas), 0);
	CU_ASSERT_EQUAL(destroy(ifd, ioas), -ENOENT);
	CU_ASSERT_EQUAL(ioas_alloc(ifd), 1);
	CU_ASSERT_EQUAL(stats().objects, 2);

	/* IOAS_ALLOC: flags must be 0. */
	a = (struct iommu_ioas_alloc){ .size = sizeof(a), .flags = 1 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &a), -EOPNOTSUPP);
	/* Size rules: short is EINVAL, longer with junk E2BIG, longer zeroed OK. */
	a = (struct iommu_ioas_alloc){ .size = 8 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &a), -EINVAL);
	memset(big, 0, sizeof(big));
	*(uint32_t *)big = sizeof(big);
	big[40] = 1;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, big), -E2BIG);
	big[40] = 0;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, big), 0);
	CU_ASSERT_EQUAL(((struct iommu_ioas_alloc *)big)->out_ioas_id, 3);
	CU_ASSERT_EQUAL(destroy(ifd, 3), 0);
	{
		struct iommu_destroy d = { .size = 4, .id = 1 };

		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_DESTROY, &d), -EINVAL);
	}
	/* Unknown commands, and a known number with other bits. */
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, _IO(IOMMUFD_TYPE, 0x9f), big), -ENOTTY);
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, _IOW(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC, int), big), -ENOTTY);
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, NULL), -EFAULT);
	/* The vfio compat answers on /dev/iommu. */
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, VFIO_GET_API_VERSION, NULL), VFIO_API_VERSION);
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, VFIO_CHECK_EXTENSION, (void *)VFIO_TYPE1v2_IOMMU), 1);
	/* Plain reads have no meaning on an iommufd. */
	CU_ASSERT_EQUAL(upmd_k_read(ifd, big, 4), -EINVAL);

	/* A bound device is an object of its own that vfio holds. */
	dfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, &devid), 0);
	CU_ASSERT_EQUAL(devid, 3);
	CU_ASSERT_EQUAL(destroy(ifd, devid), -EBUSY);
	hwpt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &hwpt), 0);
	CU_ASSERT_EQUAL(hwpt, 4);
	CU_ASSERT_EQUAL(stats().objects, 4);
	/* Attached: the IOAS and its HWPT are busy. */
	CU_ASSERT_EQUAL(destroy(ifd, ioas), -EBUSY);
	CU_ASSERT_EQUAL(destroy(ifd, hwpt), -EBUSY);
	CU_ASSERT_EQUAL(detach(dfd), 0);
	/* The auto-created HWPT goes with its last device. */
	CU_ASSERT_EQUAL(destroy(ifd, hwpt), -ENOENT);
	CU_ASSERT_EQUAL(stats().objects, 3);
	CU_ASSERT_EQUAL(destroy(ifd, ioas), 0);

	/* Closing the iommufd while a device is bound keeps the context
	 * (the device holds it) until the device goes. */
	ifd2 = ifd;
	CU_ASSERT_EQUAL(upmd_k_close(ifd2), 0);
	CU_ASSERT_EQUAL(stats().objects, 2);
	CU_ASSERT_EQUAL(stats().bound_devices, 1);
	CU_ASSERT_EQUAL(upmd_k_close(dfd), 0);
	CU_ASSERT_EQUAL(stats().objects, 0);
	uninstall();

	/* No /dev/iommu on this machine. */
	if (install("edu@" EDU0 ";flags=noiommufd") < 0)
		return;
	CU_ASSERT_EQUAL(upmd_k_open("/dev/iommu", O_RDWR), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_access("/dev/iommu", F_OK), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/devices/vfio0", O_RDWR), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_access("/dev/vfio/vfio", F_OK), 0);
	uninstall();
}

/* ---- IOVA ranges ---------------------------------------------------------------- */

static void test_ranges(void)
{
	struct iommu_iova_range r[4];
	uint64_t align;
	uint32_t n, ioas;
	int ifd, dfd, dfd2;
	uint32_t h1, h2;

	if (install("edu@" EDU0 ";edu@" EDU1 ";aw=39") < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);

	/* No domain: everything allowed, no alignment. */
	n = 4;
	CU_ASSERT_EQUAL(ranges(ifd, ioas, r, &n, &align), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(r[0].start, 0);
	CU_ASSERT_EQUAL(r[0].last, UINT64_MAX);
	CU_ASSERT_EQUAL(align, 1);
	/* Too small an array: EMSGSIZE with the count written. */
	n = 0;
	CU_ASSERT_EQUAL(ranges(ifd, ioas, NULL, &n, NULL), -EMSGSIZE);
	CU_ASSERT_EQUAL(n, 1);
	n = 4;
	CU_ASSERT_EQUAL(ranges(ifd, 99, r, &n, NULL), -ENOENT);
	{
		struct iommu_ioas_iova_ranges c = { .size = sizeof(c), .ioas_id = ioas, .__reserved = 1 };

		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_IOVA_RANGES, &c), -EOPNOTSUPP);
	}

	/* Attached: the MSI hole and QEMU's 39-bit aperture. */
	dfd = dev_ready(0, ifd, ioas, &h1);
	n = 4;
	CU_ASSERT_EQUAL(ranges(ifd, ioas, r, &n, &align), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(r[0].start, 0);
	CU_ASSERT_EQUAL(r[0].last, 0xfedfffffULL);
	CU_ASSERT_EQUAL(r[1].start, 0xfef00000ULL);
	CU_ASSERT_EQUAL(r[1].last, 0x7fffffffffULL);
	CU_ASSERT_EQUAL(align, 4096);
	n = 1;
	CU_ASSERT_EQUAL(ranges(ifd, ioas, r, &n, NULL), -EMSGSIZE);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(r[0].last, 0xfedfffffULL);	/* the first one was written */

	/* A second device of the same IOAS gets the same HWPT. */
	dfd2 = dev_ready(1, ifd, ioas, &h2);
	CU_ASSERT_EQUAL(h1, h2);
	CU_ASSERT_EQUAL(stats().attached_devices, 2);
	CU_ASSERT_EQUAL(upmd_k_close(dfd2), 0);
	CU_ASSERT_EQUAL(detach(dfd), 0);
	n = 4;
	CU_ASSERT_EQUAL(ranges(ifd, ioas, r, &n, &align), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(align, 1);
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	uninstall();

	/* The default aperture is 48 bits (user VAs fit: IOVA = VA works). */
	if (install("edu@" EDU0) < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = dev_ready(0, ifd, ioas, NULL);
	n = 4;
	CU_ASSERT_EQUAL(ranges(ifd, ioas, r, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(r[1].last, (1ULL << 48) - 1);
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	uninstall();
}

/* ---- IOAS_MAP / UNMAP rules -------------------------------------------------------- */

static void test_map_no_domain(void)
{
	struct iommu_ioas_map mp;
	uint8_t *buf, *hole;
	uint64_t iova, done;
	uint32_t ioas, pt;
	int ifd, dfd;

	if (install("edu@" EDU0) < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	buf = mem(16 * PG);

	/* iommufd_ioas_map's own checks. */
	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW | 0x8, buf, PG, &iova), -EOPNOTSUPP);
	mp = (struct iommu_ioas_map){ .size = sizeof(mp), .flags = FIXED_RW, .ioas_id = ioas,
				      .__reserved = 1, .user_va = (uintptr_t)buf, .length = PG,
				      .iova = 0x100000 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &mp), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(map(ifd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf, PG, &iova), -EINVAL);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 0, &iova), -EINVAL);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, UINT64_MAX, &iova), -EOVERFLOW);
	iova = UINT64_MAX;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EOVERFLOW);
	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, 77, FIXED_RW, buf, PG, &iova), -ENOENT);

	/* Without a domain the IOAS has no alignment: bytes map. */
	iova = 0x10001;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf + 1, 100, &iova), 0);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x10001, 100, &done), 0);
	CU_ASSERT_EQUAL(done, 100);

	/* The kernel picks from the bottom, never 0, keeping the page offset. */
	iova = 0;
	CU_ASSERT_EQUAL(map(ifd, ioas, RW, buf, PG, &iova), 0);
	CU_ASSERT_EQUAL(iova, PG);
	iova = 0;
	CU_ASSERT_EQUAL(map(ifd, ioas, RW, buf + 0x10, 64, &iova), 0);
	CU_ASSERT_EQUAL(iova & 0xfff, 0x10);
	CU_ASSERT_TRUE(iova > PG);
	iova = PG;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EEXIST);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, UINT64_MAX, &done), 0);
	CU_ASSERT_EQUAL(done, PG + 64);
	/* unmap-all of an empty IOAS succeeds with 0 bytes. */
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, UINT64_MAX, &done), 0);
	CU_ASSERT_EQUAL(done, 0);

	/* Lazy pinning: memory that is not there maps without a domain and
	 * fails at the attach that would pin it. */
	hole = mem(PG);
	munmap(hole, PG);
	iova = 0x200000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, hole, PG, &iova), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	dfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, NULL), 0);
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), -EFAULT);
	CU_ASSERT_EQUAL(stats().attached_devices, 0);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x200000, PG, NULL), 0);

	/* A mapping in the MSI window, or past the aperture, or not page
	 * aligned, blocks the attach that would reserve or need it. */
	iova = MSI_FIRST;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), 0);
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), -EADDRINUSE);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, MSI_FIRST, PG, NULL), 0);
	iova = 1ULL << 50;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), 0);
	CU_ASSERT_EQUAL(attach(dfd, &pt), -EADDRINUSE);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 1ULL << 50, PG, NULL), 0);
	iova = 0x10001;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf + 1, 100, &iova), 0);
	CU_ASSERT_EQUAL(attach(dfd, &pt), -EADDRINUSE);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, UINT64_MAX, NULL), 0);
	/* An allowed range over the MSI window blocks it too. */
	{
		struct iommu_iova_range r = { 0xfe000000ULL, 0xff000000ULL };
		struct iommu_ioas_allow_iovas al = { .size = sizeof(al), .ioas_id = ioas, .num_iovas = 1,
						     .allowed_iovas = (uintptr_t)&r };

		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &al), 0);
		CU_ASSERT_EQUAL(attach(dfd, &pt), -EADDRINUSE);
		al.num_iovas = 0;
		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &al), 0);
	}
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	munmap(buf, 16 * PG);
	uninstall();
}

static void test_map_attached(void)
{
	struct iommu_iova_range r[2];
	uint8_t *buf, *hole, *ro, *big;
	uint64_t iova, done;
	uint32_t ioas;
	int ifd, dfd;

	if (install("edu@" EDU0 ";aw=39") < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = dev_ready(0, ifd, ioas, NULL);
	buf = mem(16 * PG);

	/* With a domain everything is page-aligned. */
	iova = 0x1001;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EINVAL);
	iova = 0x1000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 100, &iova), -EINVAL);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf + 1, PG, &iova), -EINVAL);
	/* Reserved IOVA (iopt_check_iova): the MSI window, past the aperture. */
	iova = MSI_FIRST;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EINVAL);
	iova = MSI_FIRST - PG;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 2 * PG, &iova), -EINVAL);
	iova = 1ULL << 39;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EINVAL);
	iova = (1ULL << 39) - PG;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), 0);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, iova, PG, NULL), 0);
	/* Pinning: no memory there, or read-only memory mapped writeable. */
	hole = mem(PG);
	munmap(hole, PG);
	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, hole, PG, &iova), -EFAULT);
	ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, ro, PG, &iova), -EFAULT);
	CU_ASSERT_EQUAL(map(ifd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ro, PG, &iova), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 1);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, iova, PG, NULL), 0);
	munmap(ro, PG);

	/* The allocator never hands out the hole: allowed ranges either side
	 * of it, the low one too small. */
	{
		struct iommu_iova_range al[2] = { { 0xfed00000ULL, 0xfedfffffULL },
						  { 0xfef00000ULL, 0xff0fffffULL } };
		struct iommu_ioas_allow_iovas a = { .size = sizeof(a), .ioas_id = ioas, .num_iovas = 2,
						    .allowed_iovas = (uintptr_t)al };

		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &a), 0);
		/* A user address aligned to 4 KiB only, so the IOVA needs no
		 * more (iopt_alloc_iova aligns to the lower of the length's
		 * and the address's alignment). */
		big = mem((2 << 20) + PG);
		{
			/* Bit 12 set: exactly 4 KiB-aligned, whatever ASLR gave. */
			uint8_t *va = ((uintptr_t)big & PG) ? big : big + PG;

			iova = 0;
			CU_ASSERT_EQUAL(map(ifd, ioas, RW, va, 2 << 20, &iova), 0);
		}
		CU_ASSERT_EQUAL(iova, 0xfef00000ULL);
		CU_ASSERT_EQUAL(unmap(ifd, ioas, iova, 2 << 20, NULL), 0);
		munmap(big, (2 << 20) + PG);
		/* Over the reserved window: EADDRINUSE; malformed: EINVAL. */
		al[0] = (struct iommu_iova_range){ 0xfe000000ULL, 0xff000000ULL };
		a.num_iovas = 1;
		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &a), -EADDRINUSE);
		al[0] = (struct iommu_iova_range){ 0x2000, 0x2000 };
		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &a), -EINVAL);
		al[0] = (struct iommu_iova_range){ 0x1000, 0x5fff };
		al[1] = (struct iommu_iova_range){ 0x4000, 0x8fff };
		a.num_iovas = 2;
		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &a), -EINVAL);
		a.num_iovas = 0;
		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOW_IOVAS, &a), 0);
	}

	/* Unmap covers whole areas or fails with ENOENT (no splitting). */
	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 2 * PG, &iova), 0);
	iova = 0x200000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf + 2 * PG, PG, &iova), 0);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x100000, PG, NULL), -ENOENT);
	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EEXIST);	/* still there */
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x300000, PG, NULL), -ENOENT);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x2000, UINT64_MAX - 0x1000, NULL), -EOVERFLOW);
	CU_ASSERT_EQUAL(unmap(ifd, 77, 0x100000, PG, NULL), -ENOENT);
	/* A range that covers the first area and cuts the second: the first
	 * goes, the answer is ENOENT (iopt_unmap_iova_range does not undo). */
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x100000, 0x100800, NULL), -ENOENT);
	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 2 * PG, &iova), 0);	/* was removed */
	iova = 0x200000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), -EEXIST);	/* was kept */
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x100000, 0x101000, &done), 0);
	CU_ASSERT_EQUAL(done, 3 * PG);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);

	/* Ranges after all that: unchanged. */
	{
		uint32_t n = 2;

		CU_ASSERT_EQUAL(ranges(ifd, ioas, r, &n, NULL), 0);
		CU_ASSERT_EQUAL(r[1].last, 0x7fffffffffULL);
	}
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	munmap(buf, 16 * PG);
	uninstall();
}

static void test_map_file_copy(void)
{
	struct iommu_ioas_map_file mf;
	struct iommu_ioas_copy cp;
	struct upmd_model_dev *d;
	uint8_t pat[2 * PG], back[2 * PG], *buf;
	uint32_t ioas, ioas2, pt;
	uint64_t iova;
	int ifd, dfd, mfd;
	unsigned i;

	if (install("edu@" EDU0) < 0)
		return;
	d = upmd_model_dev_find(m, EDU0);
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = dev_ready(0, ifd, ioas, NULL);
	bus_master(dfd, true);

	mfd = memfd_create("test-map-file", MFD_CLOEXEC);
	CU_ASSERT_TRUE_FATAL(mfd >= 0);
	for (i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	CU_ASSERT_EQUAL(pwrite(mfd, pat, sizeof(pat), 0), (ssize_t)sizeof(pat));
	mf = (struct iommu_ioas_map_file){ .size = sizeof(mf), .flags = RW, .ioas_id = ioas,
					   .fd = mfd, .start = 0, .length = sizeof(pat) };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf), 0);
	CU_ASSERT_NOT_EQUAL(mf.iova, 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	/* The device sees the file's pages, and writes land in the file. */
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, mf.iova, back, sizeof(back)), 0);
	CU_ASSERT_EQUAL(memcmp(back, pat, sizeof(pat)), 0);
	CU_ASSERT_EQUAL(upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, mf.iova + 10, "model", 5), 0);
	CU_ASSERT_EQUAL(pread(mfd, back, 5, 10), 5);
	CU_ASSERT_EQUAL(memcmp(back, "model", 5), 0);
	iova = mf.iova;

	/* IOAS_COPY: the same pages at another IOVA of another IOAS. */
	ioas2 = ioas_alloc(ifd);
	cp = (struct iommu_ioas_copy){ .size = sizeof(cp), .flags = IOMMU_IOAS_MAP_FIXED_IOVA | RW,
				       .dst_ioas_id = ioas2, .src_ioas_id = ioas, .length = sizeof(pat),
				       .dst_iova = 0x400000, .src_iova = iova };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_COPY, &cp), 0);
	cp.src_iova = 0x900000;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_COPY, &cp), -ENOENT);
	pt = ioas2;
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);	/* replace: now through ioas2 */
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, 0x400000 + 10, back, 5), 0);
	CU_ASSERT_EQUAL(memcmp(back, "model", 5), 0);
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, iova, back, 5), -EFAULT);
	{
		struct upmd_model_fault f;

		CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
		CU_ASSERT_EQUAL(f.iova, iova);
		CU_ASSERT_FALSE(f.write);
	}

	/* MAP_FILE errors. */
	mf.fd = 9999;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf), -EBADF);
	mf.fd = mfd;
	mf.length = 0;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf), -EINVAL);
	mf.length = 16 * PG;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf), -EINVAL);
	mf.flags = 0x8 | RW;
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf), -EOPNOTSUPP);

	upmd_k_close(dfd);
	upmd_k_close(ifd);
	close(mfd);
	uninstall();

	/* 6.12 has no MAP_FILE at all. */
	if (install("edu@" EDU0 ";flags=nomapfile") < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	buf = mem(PG);
	mfd = memfd_create("test-map-file", MFD_CLOEXEC);
	CU_ASSERT_EQUAL(ftruncate(mfd, PG), 0);
	mf = (struct iommu_ioas_map_file){ .size = sizeof(mf), .flags = RW, .ioas_id = ioas,
					   .fd = mfd, .length = PG };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf), -ENOTTY);
	close(mfd);
	munmap(buf, PG);
	upmd_k_close(ifd);
	uninstall();
}

static void test_options(void)
{
	uint64_t v;
	uint32_t ioas, n = 1;
	struct iommu_iova_range r;
	uint64_t align;
	int ifd;

	if (install("edu@" EDU0) < 0)
		return;
	ifd = iommufd();
	v = 7;
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	v = 0;
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 1, &v), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, 2, 0, &v), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(option(ifd, 5, IOMMU_OPTION_OP_GET, 0, &v), -EOPNOTSUPP);
	if (!have_cap(24 /* CAP_SYS_RESOURCE */)) {
		v = 1;
		CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v), -EPERM);
	} else {
		v = 2;
		CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v), -EINVAL);
		v = 1;
		CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v), 0);
		v = 0;
		CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v), 0);
		CU_ASSERT_EQUAL(v, 1);
	}
	ioas = ioas_alloc(ifd);
	/* Objects exist now: the mode is fixed. */
	v = 0;
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v),
			have_cap(24) ? -EBUSY : -EPERM);
	/* HUGE_PAGES is per IOAS, 1 by default; 0 makes it page-aligned. */
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &v), 0);
	CU_ASSERT_EQUAL(v, 1);
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 99, &v), -ENOENT);
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_HUGE_PAGES, 3, ioas, &v), -EOPNOTSUPP);
	v = 2;
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &v), -EINVAL);
	v = 0;
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &v), 0);
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(ranges(ifd, ioas, &r, &n, &align), 0);
	CU_ASSERT_EQUAL(align, 4096);
	{
		struct iommu_option o = { .size = sizeof(o), .option_id = IOMMU_OPTION_HUGE_PAGES,
					  .op = IOMMU_OPTION_OP_GET, .__reserved = 1, .object_id = ioas };

		CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, IOMMU_OPTION, &o), -EOPNOTSUPP);
	}
	upmd_k_close(ifd);
	uninstall();

	/* An unprivileged process cannot change the accounting mode. */
	if (install("edu@" EDU0 ";flags=unpriv") < 0)
		return;
	ifd = iommufd();
	v = 1;
	CU_ASSERT_EQUAL(option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v), -EPERM);
	upmd_k_close(ifd);
	uninstall();
}

/* ---- pinned-memory accounting ------------------------------------------------------ */

static void test_pinning(void)
{
	struct rlimit saved, small;
	uint8_t *buf;
	uint64_t iova;
	uint32_t ioas, pt;
	int ifd, dfd;

	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 8 * PG) {
		printf("\n  (RLIMIT_MEMLOCK hard limit below 32 KiB: accounting not exercised)\n");
		return;
	}
	small.rlim_cur = 8 * PG;
	small.rlim_max = saved.rlim_max;
	if (install("edu@" EDU0 ";flags=unpriv") < 0)
		return;
	buf = mem(32 * PG);
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = dev_ready(0, ifd, ioas, NULL);
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);

	iova = 0x100000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 16 * PG, &iova), -ENOMEM);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 8 * PG, &iova), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 8);
	iova = 0x200000;
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf + 8 * PG, PG, &iova), -ENOMEM);
	/* Released on unmap. */
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, UINT64_MAX, NULL), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 8 * PG, &iova), 0);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, UINT64_MAX, NULL), 0);

	/* Without a domain nothing is pinned, so nothing is charged until
	 * an attach: there the limit bites. */
	CU_ASSERT_EQUAL(detach(dfd), 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 16 * PG, &iova), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), -ENOMEM);
	CU_ASSERT_EQUAL(stats().attached_devices, 0);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, 0, UINT64_MAX, NULL), 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 4 * PG, &iova), 0);
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 4);
	/* Closing everything releases the pins. */
	upmd_k_close(dfd);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	upmd_k_close(ifd);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	uninstall();

	/* Privileged (CAP_IPC_LOCK): pinned, counted, not charged. */
	if (have_cap(14 /* CAP_IPC_LOCK */) && install("edu@" EDU0) == 0) {
		ifd = iommufd();
		ioas = ioas_alloc(ifd);
		dfd = dev_ready(0, ifd, ioas, NULL);
		CU_ASSERT_EQUAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);
		iova = 0x100000;
		CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, 32 * PG, &iova), 0);
		CU_ASSERT_EQUAL(stats().pinned_pages, 32);
		setrlimit(RLIMIT_MEMLOCK, &saved);
		upmd_k_close(dfd);
		upmd_k_close(ifd);
		uninstall();
	}
	munmap(buf, 32 * PG);
}

/* ---- the vfio device cdev ---------------------------------------------------------- */

static void test_device(void)
{
	struct vfio_device_info info;
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	uint32_t ioas, devid, pt, hwpt;
	int ifd, dfd, dfd2, efd;
	uint8_t b[64];
	void *p;
	unsigned i;

	if (install("edu@" EDU0 ":pasid_bits=20;edu@" EDU1) < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = cdev_open(0);

	/* Nothing but BIND before the bind. */
	info = (struct vfio_device_info){ .argsz = sizeof(info) };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_RESET, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, _IO(VFIO_TYPE, VFIO_BASE + 40), NULL), -EINVAL);
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_SHARED, dfd, 0, &p), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, b, 4, (off_t)VFIO_PCI_INDEX_TO_OFFSET(7)), -EINVAL);

	/* BIND_IOMMUFD argument checks. */
	{
		struct vfio_device_bind_iommufd bd = { .argsz = 8, .iommufd = ifd };

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &bd), -EINVAL);
		bd = (struct vfio_device_bind_iommufd){ .argsz = sizeof(bd), .flags = 1, .iommufd = ifd };
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &bd), -EINVAL);
	}
	CU_ASSERT_EQUAL(bind(dfd, -1, NULL), -EINVAL);
	CU_ASSERT_EQUAL(bind(dfd, 9999, NULL), -EBADF);
	efd = upmd_k_eventfd(0, 0);
	CU_ASSERT_EQUAL(bind(dfd, efd, NULL), -EBADFD);
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, &devid), 0);
	CU_ASSERT_EQUAL(devid, 2);
	CU_ASSERT_EQUAL(bind(dfd, ifd, NULL), -EINVAL);
	CU_ASSERT_EQUAL(stats().bound_devices, 1);
	/* The cdev opens the device once: another fd cannot bind. */
	dfd2 = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd2, ifd, NULL), -EINVAL);
	upmd_k_close(dfd2);

	/* ATTACH/DETACH argument checks. */
	{
		struct vfio_device_attach_iommufd_pt a = { .argsz = 8, .pt_id = ioas };

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), -EINVAL);
		a = (struct vfio_device_attach_iommufd_pt){ .argsz = 12, .flags = 2, .pt_id = ioas };
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), -EINVAL);
		/* PASID needs the longer struct. */
		a = (struct vfio_device_attach_iommufd_pt){ .argsz = 12, .flags = VFIO_DEVICE_ATTACH_PASID,
							    .pt_id = ioas };
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), -EINVAL);
	}
	pt = 99;
	CU_ASSERT_EQUAL(attach(dfd, &pt), -ENOENT);
	pt = devid;
	CU_ASSERT_EQUAL(attach(dfd, &pt), -EINVAL);
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);
	hwpt = pt;
	CU_ASSERT_NOT_EQUAL(hwpt, ioas);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	/* Attaching again, by IOAS or by HWPT, keeps the same HWPT. */
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);
	CU_ASSERT_EQUAL(pt, hwpt);
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);
	CU_ASSERT_EQUAL(pt, hwpt);
	/* A PASID of the same device into the same IOAS: the same HWPT. */
	pt = ioas;
	CU_ASSERT_EQUAL(attach_pasid(dfd, 5, &pt), 0);
	CU_ASSERT_EQUAL(pt, hwpt);
	pt = ioas;
	CU_ASSERT_EQUAL(attach_pasid(dfd, 0, &pt), -EINVAL);
	{
		struct vfio_device_detach_iommufd_pt dd = { .argsz = 4 };

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dd), -EINVAL);
		dd = (struct vfio_device_detach_iommufd_pt){ .argsz = 8, .flags = 2 };
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dd), -EINVAL);
		dd = (struct vfio_device_detach_iommufd_pt){ .argsz = 12, .flags = 1, .pasid = 5 };
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dd), 0);
	}
	CU_ASSERT_EQUAL(detach(dfd), 0);
	CU_ASSERT_EQUAL(detach(dfd), 0);	/* not attached: still fine */
	CU_ASSERT_EQUAL(stats().attached_devices, 0);

	/* GET_INFO */
	info = (struct vfio_device_info){ .argsz = 12 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), -EINVAL);
	info = (struct vfio_device_info){ .argsz = sizeof(info), .cap_offset = 77 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), 0);
	CU_ASSERT_EQUAL(info.flags, VFIO_DEVICE_FLAGS_PCI);	/* edu has no reset */
	CU_ASSERT_EQUAL(info.num_regions, 9);
	CU_ASSERT_EQUAL(info.num_irqs, 5);
	CU_ASSERT_EQUAL(info.cap_offset, 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_RESET, NULL), -EINVAL);

	/* GET_REGION_INFO */
	ri = (struct vfio_region_info){ .argsz = 16, .index = 0 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL);
	for (i = 0; i < 9; i++) {
		ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = i };
		if (i == VFIO_PCI_VGA_REGION_INDEX) {
			CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL);
			continue;
		}
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), 0);
		CU_ASSERT_EQUAL(ri.offset, (uint64_t)i << 40);
		if (i == 0) {
			CU_ASSERT_EQUAL(ri.size, 1 << 20);
			CU_ASSERT_EQUAL(ri.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
						  VFIO_REGION_INFO_FLAG_MMAP);
		} else if (i == VFIO_PCI_CONFIG_REGION_INDEX) {
			CU_ASSERT_EQUAL(ri.size, 256);	/* conventional PCI */
			CU_ASSERT_EQUAL(ri.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
		} else {
			CU_ASSERT_EQUAL(ri.size, 0);
			CU_ASSERT_EQUAL(ri.flags, 0);
		}
	}
	ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = 9 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL);

	/* GET_IRQ_INFO */
	ii = (struct vfio_irq_info){ .argsz = 12, .index = 0 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), -EINVAL);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_INTX_IRQ_INDEX };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), 0);
	CU_ASSERT_EQUAL(ii.count, 1);
	CU_ASSERT_EQUAL(ii.flags, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_MSI_IRQ_INDEX };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), 0);
	CU_ASSERT_EQUAL(ii.count, 1);
	CU_ASSERT_EQUAL(ii.flags, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), 0);
	CU_ASSERT_EQUAL(ii.count, 0);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_ERR_IRQ_INDEX };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), -EINVAL);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_REQ_IRQ_INDEX };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), 0);
	CU_ASSERT_EQUAL(ii.count, 1);
	ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = 5 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), -EINVAL);

	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, _IO(VFIO_TYPE, VFIO_BASE + 40), NULL), -ENOTTY);
	/* Closing the bound file unbinds. */
	upmd_k_close(dfd);
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	CU_ASSERT_EQUAL(stats().objects, 1);
	upmd_k_close(efd);
	upmd_k_close(ifd);
	uninstall();

	/* 6.12: no PASID field, flags must be 0. */
	if (install("edu@" EDU0 ";flags=nopasid") < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, NULL), 0);
	pt = ioas;
	CU_ASSERT_EQUAL(attach_pasid(dfd, 5, &pt), -EINVAL);
	{
		struct vfio_device_detach_iommufd_pt dd = { .argsz = 12, .flags = 1, .pasid = 5 };

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dd), -EINVAL);
	}
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	uninstall();

	/* A function with a reset: flag set, and the reset reaches the model. */
	if (install("edu@" EDU0 ":reset=1") < 0)
		return;
	ifd = iommufd();
	dfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, NULL), 0);
	info = (struct vfio_device_info){ .argsz = sizeof(info) };
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), 0);
	CU_ASSERT_EQUAL(info.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
	{
		uint32_t v = 0x0f0f0f0f, r = 0;

		CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &v, 4, E_LIVE), 4);
		CU_ASSERT_EQUAL(upmd_k_pread(dfd, &r, 4, E_LIVE), 4);
		CU_ASSERT_EQUAL(r, ~v);
		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_RESET, NULL), 0);
		CU_ASSERT_EQUAL(upmd_k_pread(dfd, &r, 4, E_LIVE), 4);
		CU_ASSERT_EQUAL(r, 0);
	}
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	uninstall();
}

/* ---- IOMMU_GET_HW_INFO and PASID support ------------------------------------------------ */

struct hw_info {
	uint32_t size, flags, dev_id, data_len;
	uint64_t data_uptr;
	uint32_t out_data_type;
	uint8_t out_max_pasid_log2, rsvd[3];
	uint64_t out_capabilities;
};
#define GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

static void test_hw_info(void)
{
	struct vfio_device_detach_iommufd_pt dd = { .argsz = 12, .flags = 1, .pasid = 1 };
	struct hw_info hi;
	uint8_t data[32];
	uint32_t devid, devid2, ioas, pt;
	int ifd, dfd, dfd2;

	if (install("edu@" EDU0 ";edu@" EDU1 ":pasid_bits=20;aw=39") < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = cdev_open(0);
	dfd2 = cdev_open(1);
	CU_ASSERT_EQUAL(bind(dfd, ifd, &devid), 0);
	CU_ASSERT_EQUAL(bind(dfd2, ifd, &devid2), 0);

	/* VT-d data, clipped to the caller's buffer and zero-padded. */
	memset(data, 0xee, sizeof(data));
	hi = (struct hw_info){ .size = sizeof(hi), .dev_id = devid, .data_len = sizeof(data),
			       .data_uptr = (uintptr_t)data, .out_max_pasid_log2 = 0xff };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), 0);
	CU_ASSERT_EQUAL(hi.out_data_type, 1);
	CU_ASSERT_EQUAL(hi.data_len, 24);
	CU_ASSERT_EQUAL(hi.out_max_pasid_log2, 0);	/* edu: no PASID */
	CU_ASSERT_EQUAL((*(uint64_t *)(data + 8) >> 16) & 0x3f, 38);	/* MGAW = aw - 1 */
	CU_ASSERT_EQUAL(data[24], 0);
	CU_ASSERT_EQUAL(data[31], 0);
	hi = (struct hw_info){ .size = sizeof(hi), .dev_id = devid2 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), 0);
	CU_ASSERT_EQUAL(hi.out_max_pasid_log2, 20);
	CU_ASSERT_EQUAL(hi.data_len, 24);
	hi = (struct hw_info){ .size = sizeof(hi), .dev_id = ioas };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), -ENOENT);
	hi = (struct hw_info){ .size = sizeof(hi), .dev_id = devid, .flags = 1 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), -EOPNOTSUPP);
	hi = (struct hw_info){ .size = 28, .dev_id = devid };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), -EINVAL);

	/* A device without PASID support refuses PASID attach and detach. */
	pt = ioas;
	CU_ASSERT_EQUAL(attach_pasid(dfd, 1, &pt), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dd), -EINVAL);
	CU_ASSERT_EQUAL(destroy(ifd, ioas), 0);
	ioas = ioas_alloc(ifd);
	pt = ioas;
	CU_ASSERT_EQUAL(attach_pasid(dfd2, 1, &pt), 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	CU_ASSERT_EQUAL(destroy(ifd, ioas), -EBUSY);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd2, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dd), 0);
	CU_ASSERT_EQUAL(destroy(ifd, ioas), 0);
	upmd_k_close(dfd);
	upmd_k_close(dfd2);
	upmd_k_close(ifd);
	uninstall();

	/* 6.12's struct: the byte after out_data_type is reserved. */
	if (install("edu@" EDU0 ";flags=nopasid") < 0)
		return;
	ifd = iommufd();
	dfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, &devid), 0);
	hi = (struct hw_info){ .size = sizeof(hi), .dev_id = devid, .out_max_pasid_log2 = 0xff };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), -EOPNOTSUPP);
	hi = (struct hw_info){ .size = sizeof(hi), .dev_id = devid };
	CU_ASSERT_EQUAL(upmd_k_ioctl(ifd, GET_HW_INFO, &hi), 0);
	CU_ASSERT_EQUAL(hi.out_data_type, 1);
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	uninstall();
}

/* ---- BAR mmap and config space ------------------------------------------------------- */

static void test_bar_config(void)
{
	const off_t cfg = (off_t)VFIO_PCI_INDEX_TO_OFFSET(7);
	uint8_t c[256];
	uint32_t v, ioas;
	uint16_t cmd;
	void *p, *q;
	int ifd, dfd;
	uint8_t *b;

	if (install("edu@" EDU0) < 0)
		return;
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = dev_ready(0, ifd, ioas, NULL);

	/* The BAR mapping reaches the device's registers, side effects
	 * included: the id, and liveness reading back the inverse at once. */
	b = bar0(dfd);
	CU_ASSERT_EQUAL(stats().bar_mappings, 1);
	CU_ASSERT_EQUAL(rd32(b, E_ID), 0x010000edu);
	wr32(b, E_LIVE, 0x12345678);
	CU_ASSERT_EQUAL(rd32(b, E_LIVE), ~0x12345678u);
	wr32(b, E_ID, 0);			/* read-only */
	CU_ASSERT_EQUAL(rd32(b, E_ID), 0x010000edu);
	CU_ASSERT_EQUAL(rd32(b, 0x1000), 0xffffffffu);	/* nothing there */
	CU_ASSERT_EQUAL(*(volatile uint16_t *)(b + E_ID), 0xffff);	/* not 4 bytes */

	/* vfio_pci_core_mmap rules. */
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_PRIVATE, dfd, 0, &p), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, 2 << 20, PROT_READ, MAP_SHARED, dfd, 0, &p), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_SHARED, dfd, 1 << 20, &p), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_SHARED, dfd, 100, &p), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_SHARED, dfd,
				    (off_t)VFIO_PCI_INDEX_TO_OFFSET(1), &p), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_SHARED, dfd, cfg, &p), -EINVAL);
	/* A window into the middle of the BAR, then a hole punched in it. */
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0, &q), 0);
	CU_ASSERT_EQUAL(stats().bar_mappings, 2);
	CU_ASSERT_EQUAL(upmd_k_munmap((uint8_t *)q + PG, PG), 0);
	CU_ASSERT_EQUAL(stats().bar_mappings, 3);
	CU_ASSERT_EQUAL(rd32((uint8_t *)q, E_ID), 0x010000edu);
	CU_ASSERT_EQUAL(upmd_k_munmap(q, 4 * PG), 0);
	CU_ASSERT_EQUAL(stats().bar_mappings, 1);

	/* Config space: ids read-only, command writable, BAR sizing, caps. */
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, sizeof(c), cfg), 256);
	CU_ASSERT_EQUAL(c[0] | c[1] << 8, 0x1234);
	CU_ASSERT_EQUAL(c[2] | c[3] << 8, 0x11e8);
	CU_ASSERT_EQUAL(c[8], 0x10);
	CU_ASSERT_EQUAL(c[9] | c[10] << 8 | c[11] << 16, 0x00ff00);
	CU_ASSERT_EQUAL(c[0x2c] | c[0x2d] << 8, 0x1af4);
	CU_ASSERT_EQUAL(c[0x2e] | c[0x2f] << 8, 0x1100);
	CU_ASSERT_TRUE((c[6] | c[7] << 8) & 0x10);	/* capability list */
	CU_ASSERT_EQUAL(c[0x3d], 1);			/* INTA# */
	CU_ASSERT_EQUAL_FATAL(c[0x34], 0x40);
	CU_ASSERT_EQUAL(c[0x40], 0x05);			/* MSI */
	CU_ASSERT_EQUAL(c[0x41], 0);
	CU_ASSERT_TRUE((c[0x42] | c[0x43] << 8) & 0x80);	/* 64-bit */
	CU_ASSERT_TRUE(cfg16(dfd, 4) & 2);		/* memory decode on */
	CU_ASSERT_FALSE(cfg16(dfd, 4) & 4);		/* no bus mastering yet */
	v = 0xdeadbeef;
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &v, 4, cfg), 4);
	CU_ASSERT_EQUAL(cfg16(dfd, 0), 0x1234);
	bus_master(dfd, true);
	CU_ASSERT_TRUE(cfg16(dfd, 4) & 4);
	memcpy(&v, &c[0x10], 4);
	{
		uint32_t ones = 0xffffffff, sz = 0;

		CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &ones, 4, cfg + 0x10), 4);
		CU_ASSERT_EQUAL(upmd_k_pread(dfd, &sz, 4, cfg + 0x10), 4);
		CU_ASSERT_EQUAL(sz, 0xfff00000u);	/* 1 MiB, 32-bit memory */
		CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &v, 4, cfg + 0x10), 4);
		CU_ASSERT_EQUAL(upmd_k_pread(dfd, &sz, 4, cfg + 0x10), 4);
		CU_ASSERT_EQUAL(sz, v);
	}
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 4, cfg + 254), -EFAULT);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 1, cfg + 256), -EFAULT);

	/* BAR read/write through the file: the same registers. */
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, &v, 4, 0), 4);
	CU_ASSERT_EQUAL(v, 0x010000edu);
	v = 0xa5a5a5a5;
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &v, 4, E_LIVE), 4);
	CU_ASSERT_EQUAL(rd32(b, E_LIVE), 0x5a5a5a5au);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 1, 0), 1);
	CU_ASSERT_EQUAL(c[0], 0xff);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 4, 1 << 20), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 8, (1 << 20) - 4), 4);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 4, (off_t)VFIO_PCI_INDEX_TO_OFFSET(6)), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 4, (off_t)VFIO_PCI_INDEX_TO_OFFSET(8)), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, c, 4, (off_t)VFIO_PCI_INDEX_TO_OFFSET(9)), -EINVAL);
	/* Memory decode off: BAR access through the file is EIO. */
	cmd = cfg16(dfd, 4) & ~2;
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &cmd, 2, cfg + 4), 2);
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, &v, 4, 0), -EIO);
	cmd |= 2;
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &cmd, 2, cfg + 4), 2);

	/* The mapping holds the device file: closing the fd does not unbind. */
	upmd_k_close(dfd);
	CU_ASSERT_EQUAL(stats().open_fds, 1);
	CU_ASSERT_EQUAL(stats().bound_devices, 1);
	CU_ASSERT_EQUAL(rd32(b, E_ID), 0x010000edu);
	CU_ASSERT_EQUAL(upmd_k_munmap(b, 1 << 20), 0);
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	upmd_k_close(ifd);
	uninstall();
}

/* ---- interrupts ------------------------------------------------------------------ */

static int set_irqs(int dfd, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
		    const int32_t *fds)
{
	uint8_t buf[sizeof(struct vfio_irq_set) + 8 * sizeof(int32_t)];
	struct vfio_irq_set *s = (void *)buf;

	memset(buf, 0, sizeof(buf));
	s->argsz = (uint32_t)(sizeof(*s) + (fds ? count * sizeof(int32_t) : 0));
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	if (fds)
		memcpy(s->data, fds, count * sizeof(int32_t));
	return upmd_k_ioctl(dfd, VFIO_DEVICE_SET_IRQS, s);
}

static void test_irqs(void)
{
	const uint32_t efd_trig = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	const uint32_t none_trig = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	int32_t fds[2];
	int ifd, dfd, efd, pfd[2];
	uint8_t *b;

	if (install("edu@" EDU0) < 0)
		return;
	ifd = iommufd();
	dfd = dev_ready(0, ifd, ioas_alloc(ifd), NULL);
	b = bar0(dfd);
	efd = upmd_k_eventfd(0, EFD_NONBLOCK);
	CU_ASSERT_TRUE_FATAL(efd >= 0);
	fds[0] = efd;
	fds[1] = efd;

	/* vfio_set_irqs_validate_and_prepare */
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 2, fds), -EINVAL);
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_MSI_IRQ_INDEX, 1, 1, fds), -EINVAL);
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, 5, 0, 1, fds), -EINVAL);
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig | 0x100, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds), -EINVAL);
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig | VFIO_IRQ_SET_DATA_BOOL, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds),
			-EINVAL);
	{
		struct vfio_irq_set s = { .argsz = sizeof(s), .flags = efd_trig,
					  .index = VFIO_PCI_MSI_IRQ_INDEX, .count = 1 };

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_SET_IRQS, &s), -EINVAL);	/* no data */
	}
	/* edu has no MSI-X: even "disable" is out of range. */
	CU_ASSERT_EQUAL(set_irqs(dfd, none_trig, VFIO_PCI_MSIX_IRQ_INDEX, 0, 0, NULL), -EINVAL);
	/* Disabling what is not enabled. */
	CU_ASSERT_EQUAL(set_irqs(dfd, none_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(set_irqs(dfd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
				 VFIO_PCI_MSI_IRQ_INDEX, 0, 1, NULL), -ENOTTY);
	/* eventfd_ctx_fdget: a closed fd, a fd that is no eventfd. */
	fds[0] = 9999;
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds), -EBADF);
	CU_ASSERT_EQUAL(pipe(pfd), 0);
	fds[0] = pfd[0];
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds), -EINVAL);
	close(pfd[0]);
	close(pfd[1]);

	/* MSI: the device's interrupt reaches the eventfd, with bus mastering. */
	fds[0] = efd;
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds), 0);
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, fds), -EINVAL);
	wr32(b, E_IRQ_RAISE, 1);
	CU_ASSERT_EQUAL(efd_count(efd, 100), 0);	/* bus mastering off: no MSI */
	wr32(b, E_IRQ_ACK, 1);
	bus_master(dfd, true);
	wr32(b, E_IRQ_RAISE, 1);
	CU_ASSERT_EQUAL(efd_count(efd, 1000), 1);
	CU_ASSERT_EQUAL(rd32(b, E_IRQ_STATUS), 1);
	wr32(b, E_IRQ_ACK, 1);
	CU_ASSERT_EQUAL(rd32(b, E_IRQ_STATUS), 0);
	/* Loopback trigger. */
	CU_ASSERT_EQUAL(set_irqs(dfd, none_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, NULL), 0);
	CU_ASSERT_EQUAL(efd_count(efd, 1000), 1);
	/* A factorial with "interrupt when done". */
	wr32(b, E_STATUS, 0x80);
	wr32(b, E_FACT, 6);
	CU_ASSERT_EQUAL(efd_count(efd, 2000), 1);
	CU_ASSERT_EQUAL(rd32(b, E_FACT), 720);
	CU_ASSERT_EQUAL(rd32(b, E_IRQ_STATUS), 1);
	wr32(b, E_IRQ_ACK, 1);
	wr32(b, E_STATUS, 0);
	/* Disable: no more signals. */
	CU_ASSERT_EQUAL(set_irqs(dfd, none_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 0, NULL), 0);
	wr32(b, E_IRQ_RAISE, 1);
	CU_ASSERT_EQUAL(efd_count(efd, 100), 0);
	wr32(b, E_IRQ_ACK, 1);

	/* INTx: level-triggered and automasked until UNMASK. */
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, fds), 0);
	wr32(b, E_IRQ_RAISE, 1);
	CU_ASSERT_EQUAL(efd_count(efd, 1000), 1);
	wr32(b, E_IRQ_ACK, 1);
	wr32(b, E_IRQ_RAISE, 1);
	CU_ASSERT_EQUAL(efd_count(efd, 100), 0);	/* masked */
	CU_ASSERT_EQUAL(set_irqs(dfd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
				 VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL), 0);
	CU_ASSERT_EQUAL(efd_count(efd, 1000), 1);	/* still asserted */
	wr32(b, E_IRQ_ACK, 1);
	CU_ASSERT_EQUAL(set_irqs(dfd, none_trig, VFIO_PCI_INTX_IRQ_INDEX, 0, 0, NULL), 0);

	/* The request interrupt. */
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, fds), 0);
	CU_ASSERT_EQUAL(set_irqs(dfd, none_trig, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, NULL), 0);
	CU_ASSERT_EQUAL(efd_count(efd, 1000), 1);

	/* Closing the user's eventfd does not drop the model's reference. */
	CU_ASSERT_EQUAL(set_irqs(dfd, efd_trig, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds), 0);
	upmd_k_munmap(b, 1 << 20);
	upmd_k_close(efd);
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	uninstall();
}

/* ---- edu DMA through the IOAS, and IOMMU faults ------------------------------------ */

static void test_edu_dma(void)
{
	struct upmd_model_fault f;
	struct upmd_model_dev *d;
	struct upmd_model_stats st;
	uint8_t *src, *dst, *ro, tmp[64];
	uint64_t s_iova = 0, d_iova = 0, ro_iova = 0;
	uint32_t ioas, ioas2, pt;
	int ifd, dfd, efd, i;
	uint8_t *b;

	if (install("edu@" EDU0 ":pasid_bits=8") < 0)
		return;
	d = upmd_model_dev_find(m, EDU0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	src = mem(2 * PG);
	dst = mem(2 * PG);
	for (i = 0; i < 2048; i++)
		src[i] = (uint8_t)(i ^ 0xa5);

	/* Not attached yet: the port faults. */
	dfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(dfd, ifd, NULL), 0);
	bus_master(dfd, true);
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, 0x1000, tmp, 8), -EFAULT);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_NOT_ATTACHED);
	pt = ioas;
	CU_ASSERT_EQUAL(attach(dfd, &pt), 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, RW, src, 2 * PG, &s_iova), 0);
	CU_ASSERT_EQUAL(map(ifd, ioas, RW, dst, 2 * PG, &d_iova), 0);
	CU_ASSERT_TRUE(s_iova < (1 << 28) && d_iova < (1 << 28));	/* edu's 28-bit mask */
	b = bar0(dfd);

	/* RAM -> edu -> RAM. */
	CU_ASSERT_EQUAL(edu_dma(b, s_iova, 0, 2048, false), 0);
	CU_ASSERT_EQUAL(edu_dma(b, d_iova, 0, 2048, true), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, 2048), 0);
	st = stats();
	CU_ASSERT_EQUAL(st.dma_bytes, 4096);
	CU_ASSERT_EQUAL(st.faults, 1);

	/* Addresses above dma_mask are cut to 28 bits before translation. */
	memset(dst, 0, 64);
	CU_ASSERT_EQUAL(edu_dma(b, d_iova | (1ULL << 32), 0, 64, true), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, 64), 0);

	/* A transfer reaching the buffer's end is refused (QEMU 7.2 aborts). */
	{
		int old = upmd_log_level_cur;

		upmd_log_set_level(UPMD_LOG_EMERG);
		CU_ASSERT_EQUAL(edu_dma(b, d_iova, 0, 4096, true), 0);
		upmd_log_set_level(old);
		CU_ASSERT_EQUAL(stats().dma_bytes, st.dma_bytes + 64);
	}

	/* Write to an unmapped IOVA: a fault, memory untouched. */
	memset(dst, 0x22, 2 * PG);
	CU_ASSERT_EQUAL(unmap(ifd, ioas, d_iova, 2 * PG, NULL), 0);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), -ENOENT);
	CU_ASSERT_EQUAL(edu_dma(b, d_iova, 0, 64, true), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_EQUAL(f.iova, d_iova);
	CU_ASSERT_TRUE(f.write);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
	CU_ASSERT_STRING_EQUAL(f.bdf, EDU0);
	CU_ASSERT_EQUAL(f.pasid, UPMD_MODEL_NO_PASID);
	CU_ASSERT_EQUAL(dst[0], 0x22);
	CU_ASSERT_EQUAL(dst[63], 0x22);

	/* A device write into a read-only mapping. */
	ro = mem(PG);
	memset(ro, 0x33, PG);
	CU_ASSERT_EQUAL(map(ifd, ioas, IOMMU_IOAS_MAP_READABLE, ro, PG, &ro_iova), 0);
	CU_ASSERT_EQUAL(edu_dma(b, ro_iova, 0, 64, true), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_NO_WRITE);
	CU_ASSERT_EQUAL(f.iova, ro_iova);
	CU_ASSERT_EQUAL(ro[0], 0x33);
	/* ...which the device may read. */
	CU_ASSERT_EQUAL(edu_dma(b, ro_iova, 1024, 64, false), 0);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), -ENOENT);

	/* A read from an unmapped IOVA leaves zeros in the device buffer.
	 * (Not d_iova: the allocator may have given it to the page above.) */
	CU_ASSERT_EQUAL(edu_dma(b, 0x8000000, 0, 64, false), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_EQUAL(f.iova, 0x8000000);
	CU_ASSERT_FALSE(f.write);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
	memset(src, 0x44, 64);
	CU_ASSERT_EQUAL(edu_dma(b, s_iova, 0, 64, true), 0);
	for (i = 0; i < 64; i++)
		if (src[i]) {
			CU_FAIL("a faulting read put data in the edu buffer");
			break;
		}

	/* Completion interrupt (DMA command bit 2). */
	efd = upmd_k_eventfd(0, EFD_NONBLOCK);
	{
		struct {
			struct vfio_irq_set s;
			int32_t fd;
		} __attribute__((packed)) set = {
			{ .argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			  .index = VFIO_PCI_MSI_IRQ_INDEX, .count = 1 }, efd,
		};

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_SET_IRQS, &set), 0);
	}
	wr64(b, E_SRC, s_iova);
	wr64(b, E_DST, E_BUF);
	wr64(b, E_CNT, 16);
	wr32(b, E_CMD, 1 | 4);
	CU_ASSERT_EQUAL(efd_count(efd, 2000), 1);
	CU_ASSERT_EQUAL(rd32(b, E_IRQ_STATUS), 0x100);
	wr32(b, E_IRQ_ACK, 0x100);
	upmd_k_close(efd);

	/* The port itself: a PASID attached elsewhere translates elsewhere. */
	ioas2 = ioas_alloc(ifd);
	{
		uint64_t iova = 0x1000;

		memcpy(dst, "pasid", 5);
		CU_ASSERT_EQUAL(map(ifd, ioas2, FIXED_RW, dst, PG, &iova), 0);
	}
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, 7, 0x1000, tmp, 5), -EFAULT);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_EQUAL(f.pasid, 7);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_NOT_ATTACHED);
	pt = ioas2;
	CU_ASSERT_EQUAL(attach_pasid(dfd, 256, &pt), -EINVAL);	/* 8 bits wide */
	CU_ASSERT_EQUAL(attach_pasid(dfd, 7, &pt), 0);
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, 7, 0x1000, tmp, 5), 0);
	CU_ASSERT_EQUAL(memcmp(tmp, "pasid", 5), 0);
	CU_ASSERT_EQUAL(upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, s_iova, "rid", 3), 0);
	CU_ASSERT_EQUAL(memcmp(src, "rid", 3), 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	/* Bus mastering off: nothing leaves the device, nothing is a fault. */
	bus_master(dfd, false);
	CU_ASSERT_EQUAL(upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, s_iova, tmp, 4), -EIO);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), -ENOENT);
	/* Counters grow until reset. */
	CU_ASSERT_TRUE(stats().faults > 0 && stats().dma_bytes > 0);
	upmd_model_dma_read(d, 9, 0, tmp, 1);
	upmd_model_stats_reset(m);
	st = stats();
	CU_ASSERT_EQUAL(st.faults, 0);
	CU_ASSERT_EQUAL(st.dma_bytes, 0);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), -ENOENT);

	upmd_k_munmap(b, 1 << 20);
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	munmap(src, 2 * PG);
	munmap(dst, 2 * PG);
	munmap(ro, PG);
	uninstall();
}

/* ---- legacy type1: container and group ------------------------------------------------ */

static void test_type1(void)
{
	struct vfio_iommu_type1_dma_map mp;
	struct vfio_iommu_type1_dma_unmap um;
	struct vfio_group_status gs;
	uint8_t info_buf[256], *src, *dst, *b;
	struct vfio_iommu_type1_info *info = (void *)info_buf;
	int c, g, dfd, cdfd, ifd, efd, i;
	int32_t cfd;

	if (install("edu@" EDU0 ";edu@" EDU1) < 0)
		return;
	c = upmd_k_open("/dev/vfio/vfio", O_RDWR);
	CU_ASSERT_TRUE_FATAL(c >= 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_GET_API_VERSION, NULL), 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_CHECK_EXTENSION, (void *)VFIO_TYPE1v2_IOMMU), 1);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_CHECK_EXTENSION, (void *)5UL), 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), -EINVAL);
	mp = (struct vfio_iommu_type1_dma_map){ .argsz = sizeof(mp) };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);

	g = upmd_k_open("/dev/vfio/10", O_RDWR);
	CU_ASSERT_TRUE_FATAL(g >= 0);
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/10", O_RDWR), -EBUSY);
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/12", O_RDWR), -ENOENT);
	gs = (struct vfio_group_status){ .argsz = sizeof(gs) };
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_STATUS, &gs), 0);
	CU_ASSERT_EQUAL(gs.flags, VFIO_GROUP_FLAGS_VIABLE);
	gs.argsz = 4;
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_STATUS, &gs), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, EDU0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL);
	cfd = 9999;
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_SET_CONTAINER, &cfd), -EBADF);
	efd = upmd_k_eventfd(0, 0);
	cfd = efd;
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_SET_CONTAINER, &cfd), -EBADFD);
	cfd = c;
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_SET_CONTAINER, &cfd), 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_SET_CONTAINER, &cfd), -EINVAL);
	gs.argsz = sizeof(gs);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_STATUS, &gs), 0);
	CU_ASSERT_EQUAL(gs.flags, VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, EDU0), -EINVAL);	/* no IOMMU yet */
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_SET_IOMMU, (void *)99UL), -ENODEV);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), -EINVAL);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, _IO(VFIO_TYPE, VFIO_BASE + 40), NULL), -ENOTTY);

	/* GET_INFO: too small for the capabilities says how much it needs. */
	memset(info_buf, 0, sizeof(info_buf));
	info->argsz = 16;
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_GET_INFO, info), 0);
	CU_ASSERT_TRUE(info->argsz > sizeof(*info));
	CU_ASSERT_EQUAL(info->flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
	CU_ASSERT_TRUE(info->iova_pgsizes & 4096);
	info->argsz = sizeof(info_buf);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_GET_INFO, info), 0);
	CU_ASSERT_EQUAL_FATAL(info->cap_offset, sizeof(*info));
	{
		uint32_t off = info->cap_offset;
		bool found = false;

		for (i = 0; off && i < 8; i++) {
			struct vfio_info_cap_header *h = (void *)(info_buf + off);

			if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
				struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;

				found = true;
				CU_ASSERT_EQUAL(r->nr_iovas, 2);
				CU_ASSERT_EQUAL(r->iova_ranges[0].start, 0);
				CU_ASSERT_EQUAL(r->iova_ranges[0].end, 0xfedfffffULL);
				CU_ASSERT_EQUAL(r->iova_ranges[1].start, 0xfef00000ULL);
				CU_ASSERT_EQUAL(r->iova_ranges[1].end, (1ULL << 48) - 1);
			}
			off = h->next;
		}
		CU_ASSERT_TRUE(found);
	}

	/* MAP_DMA rules. */
	src = mem(2 * PG);
	dst = mem(2 * PG);
	for (i = 0; i < 2048; i++)
		src[i] = (uint8_t)(i * 3);
	mp = (struct vfio_iommu_type1_dma_map){ .argsz = sizeof(mp), .flags = 3,
						.vaddr = (uintptr_t)src, .iova = 0x100000, .size = 2 * PG };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), -EEXIST);
	mp.iova = 0x300800;
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);
	mp.iova = MSI_FIRST;
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);
	mp.iova = 0x300000;
	mp.flags = 0;
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);
	mp.flags = 3;
	mp.argsz = 16;
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);
	mp = (struct vfio_iommu_type1_dma_map){ .argsz = sizeof(mp), .flags = 3,
						.vaddr = (uintptr_t)dst, .iova = 0x300000, .size = 2 * PG };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_MAP_DMA, &mp), 0);

	/* A device through the group; its cdev cannot be bound meanwhile. */
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:09.0"), -ENODEV);
	dfd = upmd_k_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, EDU0);
	CU_ASSERT_TRUE_FATAL(dfd >= 0);
	CU_ASSERT_EQUAL(stats().bound_devices, 1);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	ifd = iommufd();
	cdfd = cdev_open(0);
	CU_ASSERT_EQUAL(bind(cdfd, ifd, NULL), -EBUSY);
	CU_ASSERT_EQUAL(bind(dfd, ifd, NULL), -EINVAL);
	{
		uint32_t pt = 1;

		CU_ASSERT_EQUAL(attach(dfd, &pt), -ENOTTY);
	}
	bus_master(dfd, true);
	b = bar0(dfd);
	CU_ASSERT_EQUAL(rd32(b, E_ID), 0x010000edu);
	CU_ASSERT_EQUAL(edu_dma(b, 0x100000, 0, 2048, false), 0);
	CU_ASSERT_EQUAL(edu_dma(b, 0x300000, 0, 2048, true), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, 2048), 0);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EBUSY);

	/* UNMAP_DMA (v2): no bisecting, exact ranges, sizes written back. */
	um = (struct vfio_iommu_type1_dma_unmap){ .argsz = sizeof(um), .iova = 0x100000, .size = PG };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_UNMAP_DMA, &um), -EINVAL);
	um.iova = 0x100800;
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_UNMAP_DMA, &um), -EINVAL);
	um = (struct vfio_iommu_type1_dma_unmap){ .argsz = sizeof(um), .flags = 2, .iova = 0x1000 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_UNMAP_DMA, &um), -EINVAL);
	um = (struct vfio_iommu_type1_dma_unmap){ .argsz = sizeof(um), .iova = 0x300000, .size = 2 * PG };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_UNMAP_DMA, &um), 0);
	CU_ASSERT_EQUAL(um.size, 2 * PG);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_UNMAP_DMA, &um), 0);
	CU_ASSERT_EQUAL(um.size, 0);
	/* The device's write to the old IOVA now faults. */
	memset(dst, 0x55, 64);
	CU_ASSERT_EQUAL(edu_dma(b, 0x300000, 0, 64, true), 0);
	{
		struct upmd_model_fault f;

		CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
		CU_ASSERT_EQUAL(f.iova, 0x300000);
		CU_ASSERT_EQUAL(dst[0], 0x55);
	}
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	um = (struct vfio_iommu_type1_dma_unmap){ .argsz = sizeof(um), .flags = 2 };
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_UNMAP_DMA, &um), 0);
	CU_ASSERT_EQUAL(um.size, 2 * PG);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);

	upmd_k_munmap(b, 1 << 20);
	upmd_k_close(dfd);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0);
	gs.argsz = sizeof(gs);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_GET_STATUS, &gs), 0);
	CU_ASSERT_EQUAL(gs.flags, VFIO_GROUP_FLAGS_VIABLE);
	/* The last group left: the container has no IOMMU any more. */
	info->argsz = sizeof(info_buf);
	CU_ASSERT_EQUAL(upmd_k_ioctl(c, VFIO_IOMMU_GET_INFO, info), -EINVAL);
	upmd_k_close(g);
	/* Now the cdev binds, and the group cannot open. */
	CU_ASSERT_EQUAL(bind(cdfd, ifd, NULL), 0);
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/10", O_RDWR), -EBUSY);
	upmd_k_close(cdfd);
	upmd_k_close(ifd);
	upmd_k_close(efd);
	upmd_k_close(c);
	munmap(src, 2 * PG);
	munmap(dst, 2 * PG);
	uninstall();

	/* No VFIO at all. */
	if (install("edu@" EDU0 ";flags=novfio") < 0)
		return;
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/vfio", O_RDWR), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/10", O_RDWR), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_access("/dev/vfio", F_OK), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_access("/dev/iommu", F_OK), 0);
	uninstall();
}

/* ---- the sysfs tree and driver binding --------------------------------------------------- */

struct namebuf {
	char s[512];
};

static int collect(const char *name, void *arg)
{
	struct namebuf *nb = arg;

	if (nb->s[0])
		strncat(nb->s, ",", sizeof(nb->s) - strlen(nb->s) - 1);
	strncat(nb->s, name, sizeof(nb->s) - strlen(nb->s) - 1);
	return 0;
}

static const char *ls(const char *path, int *rc)
{
	static struct namebuf nb;

	memset(&nb, 0, sizeof(nb));
	*rc = upmd_k_listdir(path, collect, &nb);
	return nb.s;
}

static const char *attr(const char *bdf, const char *name)
{
	static char buf[128];
	char path[160];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, name);
	if (upmd_k_read_file(path, buf, sizeof(buf)) < 0)
		return "<error>";
	return buf;
}

static const char *link_of(const char *path)
{
	static char buf[256];
	ssize_t n = upmd_k_readlink(path, buf, sizeof(buf));

	return n < 0 ? "<error>" : buf;
}

#define DEV(bdf, rest) "/sys/bus/pci/devices/" bdf rest

static void test_sysfs(void)
{
	const char *EDU2 = "0000:00:06.0";
	char buf[64];
	int rc, fd;

	if (install("edu@" EDU0 ";edu@" EDU1 ":driver=none;edu@0000:00:06.0:driver=uio_pci_generic,numa_node=0") < 0)
		return;
	CU_ASSERT_STRING_EQUAL(ls("/sys/bus/pci/devices", &rc), EDU0 "," EDU1 ",0000:00:06.0");
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "vendor"), "0x1234");
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "device"), "0x11e8");
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "subsystem_vendor"), "0x1af4");
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "subsystem_device"), "0x1100");
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "class"), "0x00ff00");
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "numa_node"), "-1");
	CU_ASSERT_STRING_EQUAL(attr(EDU2, "numa_node"), "0");
	CU_ASSERT_STRING_EQUAL(attr(EDU0, "driver_override"), "(null)");
	/* Raw text, newline included, like sysfs. */
	fd = upmd_k_open(DEV(EDU0, "/vendor"), O_RDONLY);
	CU_ASSERT_EQUAL(upmd_k_read(fd, buf, sizeof(buf)), 7);
	CU_ASSERT_EQUAL(memcmp(buf, "0x1234\n", 7), 0);
	CU_ASSERT_EQUAL(upmd_k_read(fd, buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(upmd_k_pread(fd, buf, 2, 4), 2);
	CU_ASSERT_EQUAL(memcmp(buf, "34", 2), 0);
	upmd_k_close(fd);

	/* Links. */
	CU_ASSERT_STRING_EQUAL(link_of(DEV(EDU0, "/iommu_group")), "../../../kernel/iommu_groups/10");
	CU_ASSERT_STRING_EQUAL(link_of(DEV(EDU1, "/iommu_group")), "../../../kernel/iommu_groups/11");
	CU_ASSERT_STRING_EQUAL(link_of(DEV(EDU0, "/driver")), "../../../bus/pci/drivers/vfio-pci");
	CU_ASSERT_STRING_EQUAL(link_of(DEV("0000:00:06.0", "/driver")), "../../../bus/pci/drivers/uio_pci_generic");
	CU_ASSERT_EQUAL(upmd_k_readlink(DEV(EDU1, "/driver"), buf, sizeof(buf)), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_readlink(DEV(EDU0, "/vendor"), buf, sizeof(buf)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(ls(DEV(EDU0, "/vfio-dev"), &rc), "vfio0");
	ls(DEV(EDU1, "/vfio-dev"), &rc);
	CU_ASSERT_EQUAL(rc, -ENOENT);
	CU_ASSERT_STRING_EQUAL(ls("/sys/kernel/iommu_groups/11/devices", &rc), EDU1);
	CU_ASSERT_STRING_EQUAL(ls(DEV(EDU1, "/iommu_group/devices"), &rc), EDU1);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(ls("/sys/bus/pci/drivers", &rc), "vfio-pci,uio_pci_generic");
	CU_ASSERT_STRING_EQUAL(ls("/sys/bus/pci/drivers/vfio-pci", &rc), "bind,unbind," EDU0);
	ls(DEV(EDU0, "/vendor"), &rc);
	CU_ASSERT_EQUAL(rc, -ENOTDIR);
	CU_ASSERT_EQUAL(upmd_k_access(DEV("0000:00:09.0", "/vendor"), F_OK), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_access("/dev/vfio/10", F_OK), 0);
	CU_ASSERT_EQUAL(upmd_k_access("/dev/vfio/11", F_OK), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_access("/sys/bus/pci/drivers/vfio-pci", F_OK), 0);
	CU_ASSERT_EQUAL(upmd_k_access("/sys/bus/pci/drivers/nvme", F_OK), -ENOENT);
	CU_ASSERT_STRING_EQUAL(ls("/dev/vfio/devices", &rc), "vfio0");
	/* Attribute permissions (kernfs_fop_open). */
	CU_ASSERT_EQUAL(upmd_k_open(DEV(EDU0, "/vendor"), O_WRONLY), -EACCES);
	CU_ASSERT_EQUAL(upmd_k_open("/sys/bus/pci/drivers/vfio-pci/bind", O_RDONLY), -EACCES);

	/* vfio-pci takes a device only through driver_override. */
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers/vfio-pci/bind", EDU1), -ENODEV);
	CU_ASSERT_EQUAL(upmd_k_write_file(DEV(EDU1, "/driver_override"), "vfio-pci\n"), 9);
	CU_ASSERT_STRING_EQUAL(attr(EDU1, "driver_override"), "vfio-pci");
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers_probe", EDU1), 12);
	CU_ASSERT_STRING_EQUAL(link_of(DEV(EDU1, "/driver")), "../../../bus/pci/drivers/vfio-pci");
	CU_ASSERT_STRING_EQUAL(ls(DEV(EDU1, "/vfio-dev"), &rc), "vfio1");
	CU_ASSERT_EQUAL(upmd_k_access("/dev/vfio/11", F_OK), 0);
	fd = cdev_open(1);
	upmd_k_close(fd);
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers/vfio-pci/bind", EDU1), -EBUSY);
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers_probe", "0000:00:09.0"), -ENODEV);
	/* Unbind through the device's driver link. */
	CU_ASSERT_EQUAL(upmd_k_write_file(DEV(EDU1, "/driver/unbind"), EDU1), 12);
	CU_ASSERT_EQUAL(upmd_k_readlink(DEV(EDU1, "/driver"), buf, sizeof(buf)), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_open("/dev/vfio/devices/vfio1", O_RDWR), -ENOENT);
	/* The override stays, so the next probe binds it again. */
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers_probe", EDU1), 12);
	CU_ASSERT_STRING_EQUAL(ls(DEV(EDU1, "/vfio-dev"), &rc), "vfio1");

	/* A device in use does not leave vfio-pci (the kernel would wait). */
	fd = cdev_open(0);
	{
		int old = upmd_log_level_cur;

		upmd_log_set_level(UPMD_LOG_EMERG);
		CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers/vfio-pci/unbind", EDU0), -EBUSY);
		upmd_log_set_level(old);
	}
	upmd_k_close(fd);
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers/vfio-pci/unbind", EDU0), 12);
	CU_ASSERT_STRING_EQUAL(ls("/dev/vfio/devices", &rc), "vfio1");
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers/vfio-pci/unbind", EDU0), -ENODEV);

	/* From a kernel driver to vfio-pci, the way upmd-devbind does it. */
	CU_ASSERT_EQUAL(upmd_k_write_file(DEV("0000:00:06.0", "/driver_override"), "vfio-pci"), 8);
	CU_ASSERT_EQUAL(upmd_k_write_file(DEV("0000:00:06.0", "/driver/unbind"), EDU2), 12);
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers_probe", EDU2), 12);
	CU_ASSERT_STRING_EQUAL(link_of(DEV("0000:00:06.0", "/driver")), "../../../bus/pci/drivers/vfio-pci");
	CU_ASSERT_STRING_EQUAL(ls(DEV("0000:00:06.0", "/vfio-dev"), &rc), "vfio0");	/* lowest free */
	/* And back: a cleared override lets its own driver take it again. */
	CU_ASSERT_EQUAL(upmd_k_write_file(DEV("0000:00:06.0", "/driver/unbind"), EDU2), 12);
	CU_ASSERT_EQUAL(upmd_k_write_file(DEV("0000:00:06.0", "/driver_override"), "\n"), 1);
	CU_ASSERT_STRING_EQUAL(attr(EDU2, "driver_override"), "(null)");
	CU_ASSERT_EQUAL(upmd_k_write_file("/sys/bus/pci/drivers_probe", EDU2), 12);
	CU_ASSERT_STRING_EQUAL(link_of(DEV("0000:00:06.0", "/driver")), "../../../bus/pci/drivers/uio_pci_generic");
	uninstall();
}

/* ---- paths and fds the model does not own pass through to libc ------------------------ */

static void test_passthrough(void)
{
	char buf[256];
	uint64_t v = 0;
	void *p = NULL;
	int fd, efd, rc;

	if (install("edu@" EDU0) < 0)
		return;
	efd = upmd_k_eventfd(3, EFD_NONBLOCK);
	CU_ASSERT_TRUE_FATAL(efd >= 0);
	CU_ASSERT_EQUAL(upmd_k_read(efd, &v, sizeof(v)), sizeof(v));
	CU_ASSERT_EQUAL(v, 3);
	CU_ASSERT_EQUAL(upmd_k_read(efd, &v, sizeof(v)), -EAGAIN);
	CU_ASSERT_EQUAL(upmd_k_close(efd), 0);
	fd = upmd_k_open("/proc/self/status", O_RDONLY);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_TRUE(upmd_k_read(fd, buf, sizeof(buf)) > 0);
	CU_ASSERT_EQUAL(upmd_k_close(fd), 0);
	CU_ASSERT_EQUAL(upmd_k_close(fd), -EBADF);
	CU_ASSERT_TRUE(upmd_k_readlink("/proc/self/exe", buf, sizeof(buf)) > 0);
	ls("/proc/self/fd", &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(upmd_k_access("/nonexistent/upmd", F_OK), -ENOENT);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p), 0);
	memset(p, 1, PG);
	CU_ASSERT_EQUAL(upmd_k_munmap(p, PG), 0);
	uninstall();
}

/* ---- DMA racing map/unmap ------------------------------------------------------------ */

struct racer {
	struct upmd_model_dev *d;
	volatile bool stop;
	unsigned ok, faults, bad;
};

static void *race_dma(void *arg)
{
	struct racer *r = arg;
	uint8_t tmp[256], fill[256];

	memset(fill, 0x77, sizeof(fill));
	while (!r->stop) {
		int rc = upmd_model_dma_read(r->d, UPMD_MODEL_NO_PASID, 0x100000, tmp, sizeof(tmp));

		if (rc == 0) {
			r->ok++;
			for (unsigned i = 0; i < sizeof(tmp); i++)
				if (tmp[i] != 0x5a && tmp[i] != 0x77) {
					r->bad++;
					break;
				}
		} else if (rc == -EFAULT) {
			r->faults++;
		} else {
			r->bad++;
		}
		upmd_model_dma_write(r->d, UPMD_MODEL_NO_PASID, 0x100000, fill, sizeof(fill));
	}
	return NULL;
}

static void test_concurrency(void)
{
	struct racer r = { 0 };
	struct upmd_model_fault f;
	pthread_t t;
	uint8_t *buf;
	uint64_t iova;
	int ifd, dfd, i, j, touched = 0;
	uint32_t ioas;

	if (install("edu@" EDU0) < 0)
		return;
	r.d = upmd_model_dev_find(m, EDU0);
	ifd = iommufd();
	ioas = ioas_alloc(ifd);
	dfd = dev_ready(0, ifd, ioas, NULL);
	bus_master(dfd, true);
	buf = mem(PG);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, race_dma, &r), 0);
	for (i = 0; i < 300; i++) {
		memset(buf, 0x5a, PG);
		iova = 0x100000;
		CU_ASSERT_EQUAL(map(ifd, ioas, FIXED_RW, buf, PG, &iova), 0);
		usleep(100);
		CU_ASSERT_EQUAL(unmap(ifd, ioas, 0x100000, PG, NULL), 0);
		/* After the unmap returned, no DMA may land. */
		memset(buf, 0, PG);
		for (j = 0; j < 2000; j++)
			__asm__ volatile("" ::: "memory");
		for (j = 0; j < (int)PG; j++)
			touched |= buf[j];
	}
	r.stop = true;
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(touched, 0);
	CU_ASSERT_EQUAL(r.bad, 0);
	CU_ASSERT_TRUE(r.ok + r.faults > 0);
	while (upmd_model_fault_pop(m, &f) == 0)
		;
	upmd_k_close(dfd);
	upmd_k_close(ifd);
	munmap(buf, PG);
	uninstall();
}

/* ---- destroy with everything still open -------------------------------------------------- */

static void test_destroy_open(void)
{
	uint8_t *buf = mem(4 * PG);
	uint64_t iova = 0x100000;
	int ifd, dfd, c, g;
	void *p;

	if (install("edu@" EDU0 ";edu@" EDU1) < 0)
		return;
	ifd = iommufd();
	dfd = dev_ready(0, ifd, ioas_alloc(ifd), NULL);
	CU_ASSERT_EQUAL(map(ifd, 1, FIXED_RW, buf, 4 * PG, &iova), 0);
	CU_ASSERT_EQUAL(upmd_k_mmap(NULL, PG, PROT_READ, MAP_SHARED, dfd, 0, &p), 0);
	c = upmd_k_open("/dev/vfio/vfio", O_RDWR);
	g = upmd_k_open("/dev/vfio/11", O_RDWR);
	CU_ASSERT_EQUAL(upmd_k_ioctl(g, VFIO_GROUP_SET_CONTAINER, &c), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 4);
	CU_ASSERT_EQUAL(stats().open_fds, 4);
	/* destroy closes all of it (ASan reports anything leaked). */
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(m);
	m = NULL;
	munmap(buf, 4 * PG);
}

static const struct upmd_test spec_tests[] = {
	{ "spec grammar, bad tokens, create and install", test_spec },
	{ NULL, NULL },
};

static const struct upmd_test iommufd_tests[] = {
	{ "objects, ids, size rules, destroy, close", test_objects },
	{ "IOVA ranges before and after attach", test_ranges },
	{ "IOAS_MAP/UNMAP without a domain, attach conflicts", test_map_no_domain },
	{ "IOAS_MAP/UNMAP with a domain", test_map_attached },
	{ "IOAS_MAP_FILE and IOAS_COPY", test_map_file_copy },
	{ "IOMMU_OPTION", test_options },
	{ "pinned-page accounting and RLIMIT_MEMLOCK", test_pinning },
	{ NULL, NULL },
};

static const struct upmd_test vfio_tests[] = {
	{ "device cdev: bind, attach, detach, info", test_device },
	{ "IOMMU_GET_HW_INFO and PASID support", test_hw_info },
	{ "BAR mmap, BAR and config access", test_bar_config },
	{ "SET_IRQS: MSI, INTx, REQ", test_irqs },
	{ "edu DMA through the IOAS, faults, PASID", test_edu_dma },
	{ "legacy type1 container and group", test_type1 },
	{ NULL, NULL },
};

static const struct upmd_test sys_tests[] = {
	{ "sysfs tree and driver_override binding", test_sysfs },
	{ "non-model paths and fds pass through", test_passthrough },
	{ "DMA racing map/unmap", test_concurrency },
	{ "destroy with everything open", test_destroy_open },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "model spec", NULL, NULL, spec_tests },
	       { "model iommufd", NULL, NULL, iommufd_tests },
	       { "model vfio", NULL, NULL, vfio_tests },
	       { "model sysfs and threads", NULL, NULL, sys_tests })
