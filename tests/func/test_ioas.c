/* The IOAS against the model: backend choice, allowed ranges, fixed and picked IOVAs, unmap rules, type1's late IOMMU, PASID attach, failure paths, and nothing left behind. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define EDU "0000:00:04.0"
#define PG 4096ULL
#define MSI_FIRST 0xfee00000ULL
#define MSI_LAST 0xfeefffffULL

static struct upmd_model *model;

static int install(const char *spec)
{
	int rc = upmd_model_install(spec, &model);

	CU_ASSERT_EQUAL(rc, 0);
	return rc;
}

static struct upmd_model_stats stats(void)
{
	struct upmd_model_stats st;

	memset(&st, 0xff, sizeof(st));
	CU_ASSERT_EQUAL(upmd_model_get_stats(model, &st), 0);
	return st;
}

/* Every test ends here: nothing pinned, open, bound or attached. */
static void uninstall(void)
{
	assert_model_clean(model);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(model);
	model = NULL;
}

static struct upmd_ioas *open_ioas(enum upmd_ioas_backend b)
{
	struct upmd_ioas_conf conf = { .size = sizeof(conf), .backend = b };
	struct upmd_ioas *ioas = NULL;

	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), 0);
	return ioas;
}

static int iommu_group(const char *bdf)
{
	char path[128], buf[128];
	const char *base;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (upmd_k_readlink(path, buf, sizeof(buf)) < 0)
		return -1;
	base = strrchr(buf, '/');
	return atoi(base ? base + 1 : buf);
}

static int dev_open(struct upmd_ioas *ioas, uint32_t flags, uint32_t pasid, int *fd)
{
	struct upmd_ioas_dev_req req = {
		.size = sizeof(req), .flags = flags, .bdf = EDU, .cdev = "vfio0",
		.iommu_group = iommu_group(EDU), .pasid = pasid,
	};
	return upmd_ioas_device_open(ioas, &req, fd);
}

/* Set Bus Master Enable in the function's command register, so it may DMA. */
static void bus_master(int fd)
{
	const off_t cmd = (off_t)VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX) + 4;
	uint16_t v = 0;

	CU_ASSERT_EQUAL(upmd_k_pread(fd, &v, 2, cmd), 2);
	v |= 1u << 2;
	CU_ASSERT_EQUAL(upmd_k_pwrite(fd, &v, 2, cmd), 2);
}

/* What the device reads at @iova, through the model's IOMMU. */
static int dev_read(uint32_t pasid, uint64_t iova, void *buf, size_t len)
{
	return upmd_model_dma_read(upmd_model_dev_find(model, EDU), pasid, iova, buf, len);
}

/* How often @s occurs in the captured log. */
static unsigned log_count(const char *s)
{
	const char *p = log_text();
	unsigned n = 0;

	while ((p = strstr(p, s)) != NULL) {
		n++;
		p += strlen(s);
	}
	return n;
}

/*
 * The model as the kernel boundary with one fault on top, for answers the
 * model (a 6.12/6.15 kernel with these devices) does not give by itself:
 * another kernel's answer to an ioctl, a group made non-viable by a device
 * the model does not have, or a device file some other holder (a forked
 * child) keeps open after this process closes it.
 */
static struct {
	unsigned long req;	/* answer this ioctl with rc instead of the model */
	int rc;
	bool with_fd_only;	/* IOMMU_IOAS_MAP_FILE: only calls with a real fd */
	bool not_viable;	/* VFIO_GROUP_GET_STATUS without FLAGS_VIABLE */
	int held_fd;		/* a close of this fd is not passed on */
} inj;
static struct upmd_kops inj_ops;

static int inj_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	int rc;

	if (inj.req && req == inj.req &&
	    !(inj.with_fd_only && ((struct iommu_ioas_map_file *)arg)->fd < 0))
		return inj.rc;
	rc = upmd_model_kops()->ioctl(ctx, fd, req, arg);
	if (rc == 0 && inj.not_viable && req == VFIO_GROUP_GET_STATUS)
		((struct vfio_group_status *)arg)->flags &= ~VFIO_GROUP_FLAGS_VIABLE;
	return rc;
}

static int inj_close(void *ctx, int fd)
{
	if (fd >= 0 && fd == inj.held_fd)
		return 0;
	return upmd_model_kops()->close(ctx, fd);
}

static int install_inj(const char *spec)
{
	if (install(spec) < 0)
		return -1;
	memset(&inj, 0, sizeof(inj));
	inj.held_fd = -1;
	inj_ops = *upmd_model_kops();
	inj_ops.name = "model+fault";
	inj_ops.ioctl = inj_ioctl;
	inj_ops.close = inj_close;
	upmd_kops_set(&inj_ops, model);
	return 0;
}

static int mappings(void)
{
	return upmd_model_mappings(model, NULL, 0);
}

static int dev_open_at(struct upmd_ioas *ioas, const char *bdf, const char *cdev, uint32_t flags,
		       uint32_t pasid, int *fd)
{
	struct upmd_ioas_dev_req req = {
		.size = sizeof(req), .flags = flags, .bdf = bdf, .cdev = cdev,
		.iommu_group = iommu_group(bdf), .pasid = pasid,
	};
	return upmd_ioas_device_open(ioas, &req, fd);
}

static void *pages(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	CU_ASSERT_NOT_EQUAL_FATAL(p, MAP_FAILED);
	return p;
}

/* ---- backend choice ---- */

static void test_auto_iommufd(void)
{
	struct upmd_ioas *ioas;

	if (install("edu@" EDU) < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL(upmd_ioas_backend_kind(ioas), UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_STRING_EQUAL(upmd_ioas_backend_name(ioas), "iommufd");
	CU_ASSERT_NOT_EQUAL(upmd_ioas_id(ioas), 0);
	CU_ASSERT_TRUE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_MAP_FILE);
	CU_ASSERT_TRUE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_KERNEL_IOVA);
	CU_ASSERT_EQUAL(stats().objects, 1);
	upmd_ioas_close(ioas);
	uninstall();
}

static void test_feature_detection(void)
{
	struct upmd_ioas *ioas;
	uint64_t iova = 0;
	char *buf;
	int fd = -1;

	/* The 6.12 shape: no MAP_FILE, no PASID. A file still maps, by VA. */
	if (install("edu@" EDU ";flags=nomapfile,nopasid") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_FALSE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_MAP_FILE);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	CU_ASSERT_FALSE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_PASID);
	buf = pages(PG);
	memset(buf, 0x5a, PG);
	CU_ASSERT_EQUAL(upmd_ioas_map_file(ioas, 0, 0, buf, PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 1);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(buf, PG);
	uninstall();
}

static void test_backend_override(void)
{
	struct upmd_ioas_conf conf = { .size = sizeof(conf) };
	struct upmd_ioas *ioas = NULL;

	if (install("edu@" EDU) < 0)
		return;
	setenv("UPMD_IOMMU", "type1", 1);
	ioas = open_ioas(UPMD_IOAS_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL(ioas);
	if (ioas) {
		CU_ASSERT_STRING_EQUAL(upmd_ioas_backend_name(ioas), "type1");
		CU_ASSERT_EQUAL(upmd_ioas_id(ioas), 0);
		upmd_ioas_close(ioas);
	}
	/* An explicit backend wins over the environment. */
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL(ioas);
	if (ioas) {
		CU_ASSERT_STRING_EQUAL(upmd_ioas_backend_name(ioas), "iommufd");
		upmd_ioas_close(ioas);
	}
	setenv("UPMD_IOMMU", "vfio", 1);
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -EINVAL);
	ASSERT_LOG_HAS("UPMD_IOMMU='vfio'");
	log_release();
	unsetenv("UPMD_IOMMU");

	/* Malformed configurations. */
	conf.size = 4;
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -EINVAL);
	conf.size = sizeof(conf);
	conf.flags = 2;		/* not a defined flag */
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -EINVAL);
	conf.flags = 0;
	conf.backend = (enum upmd_ioas_backend)7;
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ioas_open(NULL, &ioas), -EINVAL);
	uninstall();
}

static void test_missing_interfaces(void)
{
	struct upmd_ioas_conf conf = { .size = sizeof(conf) };
	struct upmd_ioas *ioas = NULL;

	/* No /dev/iommu: AUTO falls back to the legacy container. */
	if (install("edu@" EDU ";flags=noiommufd") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL(ioas);
	if (ioas)
		CU_ASSERT_STRING_EQUAL(upmd_ioas_backend_name(ioas), "type1");
	upmd_ioas_close(ioas);
	conf.backend = UPMD_IOAS_BACKEND_IOMMUFD;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -ENODEV);
	ASSERT_LOG_HAS("/dev/iommu does not exist");
	ASSERT_LOG_HAS("modprobe iommufd");
	log_release();
	uninstall();

	/* Neither: -ENODEV, naming both and how to get them. */
	if (install("edu@" EDU ";flags=noiommufd,novfio") < 0)
		return;
	conf.backend = UPMD_IOAS_BACKEND_AUTO;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -ENODEV);
	ASSERT_LOG_HAS("neither /dev/iommu (iommufd) nor /dev/vfio/vfio (VFIO) exists");
	ASSERT_LOG_HAS("modprobe iommufd vfio-pci");
	ASSERT_LOG_HAS("intel_iommu=on");
	log_release();
	/* A caller that can do without one: the same answer, no error. */
	conf.flags = UPMD_IOAS_F_OPTIONAL;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -ENODEV);
	CU_ASSERT_PTR_NULL(strstr(log_text(), "neither /dev/iommu"));
	log_release();
	/* But a backend asked for by name is still an error when missing. */
	conf.backend = UPMD_IOAS_BACKEND_TYPE1;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_open(&conf, &ioas), -ENODEV);
	ASSERT_LOG_HAS("/dev/vfio/vfio does not exist");
	log_release();
	uninstall();
}

/* ---- ranges and mappings ---- */

static void test_ranges_after_attach(void)
{
	const struct upmd_iova_range *r;
	struct upmd_ioas *ioas;
	unsigned n;
	int fd = -1;

	if (install("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	/* The attach narrowed the IOAS to the 39-bit aperture and took out
	 * the MSI window: exactly what the 6.12 kernel reports in QEMU. */
	n = upmd_ioas_ranges(ioas, &r);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(r[0].start, 0);
	CU_ASSERT_EQUAL(r[0].last, MSI_FIRST - 1);
	CU_ASSERT_EQUAL(r[1].start, MSI_LAST + 1);
	CU_ASSERT_EQUAL(r[1].last, (1ULL << 39) - 1);
	CU_ASSERT_TRUE(upmd_ioas_iova_allowed(ioas, 0x100000, PG));
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, MSI_FIRST, PG));
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, MSI_FIRST - PG, 2 * PG));
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, 1ULL << 39, PG));
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, 0x100000, 0));
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(NULL, 0x100000, PG));
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), -ENOENT);
	upmd_ioas_close(ioas);
	uninstall();
}

static void map_rules(enum upmd_ioas_backend b)
{
	struct upmd_ioas *ioas;
	uint64_t iova, iova2;
	char *buf, got[16];
	int fd = -1;

	if (install("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	bus_master(fd);
	buf = pages(4 * PG);
	strcpy(buf, "page zero");
	strcpy(buf + PG, "page one");

	/* Fixed IOVA: the device sees the memory there. */
	iova = 0x40000000;
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 2 * PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), 0);
	CU_ASSERT_EQUAL(iova, 0x40000000);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	CU_ASSERT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova + PG, got, 9), 0);
	CU_ASSERT_STRING_EQUAL(got, "page one");

	/* Overlap, the MSI window, outside the aperture, misalignment. */
	iova2 = 0x40000000 + PG;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf + 2 * PG, PG, &iova2, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EEXIST);
	iova2 = MSI_FIRST;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf + 2 * PG, PG, &iova2, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EINVAL);
	iova2 = 1ULL << 39;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf + 2 * PG, PG, &iova2, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EINVAL);
	iova2 = 0x50000000 + 8;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf + 2 * PG, PG, &iova2, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf + 8, PG, &iova2, UPMD_IOAS_MAP_RW), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, 0, &iova2, UPMD_IOAS_MAP_RW), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, PG, &iova2, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, PG, &iova2, UPMD_IOAS_MAP_RW | (1u << 9)), -EINVAL);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);

	/* Picked IOVA: allowed, above 1 MiB, naturally aligned, not overlapping. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf + 2 * PG, 2 * PG, &iova2, UPMD_IOAS_MAP_READ), 0);
	CU_ASSERT_TRUE(iova2 >= (1ULL << 20));
	CU_ASSERT_EQUAL(iova2 % (2 * PG), 0);
	CU_ASSERT_TRUE(upmd_ioas_iova_allowed(ioas, iova2, 2 * PG));
	CU_ASSERT_TRUE(iova2 + 2 * PG <= iova || iova2 >= iova + 2 * PG);
	CU_ASSERT_EQUAL(stats().pinned_pages, 4);

	/* Unmap is whole mappings only: part of one, or nothing, is -ENOENT. */
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, PG), -ENOENT);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova + PG, PG), -ENOENT);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, 0x70000000, PG), -ENOENT);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 0), -EINVAL);
	CU_ASSERT_EQUAL(stats().pinned_pages, 4);
	CU_ASSERT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova, got, 10), 0);
	CU_ASSERT_STRING_EQUAL(got, "page zero");
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 2 * PG), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	/* Now the device faults there. */
	CU_ASSERT_NOT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova, got, 8), 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 2 * PG), -ENOENT);

	/* A range that covers several mappings whole takes them all. */
	iova = 0x40000000;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), 0);
	iova = 0x40000000 + PG;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf + PG, PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, 0x40000000, 2 * PG), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);

	/* Close with a mapping and a device still there: all released. */
	upmd_ioas_close(ioas);
	munmap(buf, 4 * PG);
	uninstall();
}

static void test_map_rules_iommufd(void)
{
	map_rules(UPMD_IOAS_BACKEND_IOMMUFD);
}

static void test_map_rules_type1(void)
{
	map_rules(UPMD_IOAS_BACKEND_TYPE1);
}

static void test_pick_skips_hole(void)
{
	const uint64_t low = MSI_FIRST - (1ULL << 20);	/* [1 MiB, MSI window) */
	struct upmd_ioas *ioas;
	uint64_t iova = 1ULL << 20, iova2 = 0;
	char *big, *buf;
	int fd = -1;

	if (install("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	/* Fill everything a pick could use below the MSI window (never
	 * touched: the model pins by accounting, not by faulting in). */
	big = pages(low);
	buf = pages(2 * UPMD_MB);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, big, low, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 2 * UPMD_MB, &iova2, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_TRUE(iova2 > MSI_LAST);
	CU_ASSERT_EQUAL(iova2 % (2 * UPMD_MB), 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova2, 2 * UPMD_MB), 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, low), 0);
	/* Bigger than any allowed range: no space. */
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, big, 1ULL << 40, &iova2, UPMD_IOAS_MAP_RW), -ENOSPC);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(big, low);
	munmap(buf, 2 * UPMD_MB);
	uninstall();
}

/* ---- type1: the container has no IOMMU until a group joins ---- */

static void test_type1_late_iommu(void)
{
	struct upmd_ioas *ioas;
	uint64_t iova = 0;
	char *buf, got[8];
	int fd = -1;

	if (install("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_TYPE1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	buf = pages(PG);
	strcpy(buf, "early");
	/* Recorded, not yet made: nothing pinned. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	/* The first group sets the IOMMU; the mapping is made then. */
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	bus_master(fd);
	CU_ASSERT_EQUAL(stats().pinned_pages, 1);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	CU_ASSERT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova, got, 6), 0);
	CU_ASSERT_STRING_EQUAL(got, "early");
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, MSI_FIRST, PG));
	/* PASIDs need iommufd. */
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	CU_ASSERT_EQUAL(dev_open(ioas, UPMD_IOAS_DEV_F_PASID, 1, &fd), -EOPNOTSUPP);
	ASSERT_LOG_HAS("--iommu iommufd");
	log_release();
	/* The last group out took the container's mappings with it. */
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, PG), 0);
	upmd_ioas_close(ioas);
	munmap(buf, PG);
	uninstall();
}

/* ---- PASID ---- */

static void test_pasid_attach(void)
{
	struct upmd_ioas *ioas;
	uint64_t iova = 0;
	char *buf, got[8];
	int fd = -1;

	if (install("edu@" EDU ":pasid_bits=8") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, UPMD_IOAS_DEV_F_PASID, 5, &fd), 0);
	bus_master(fd);
	CU_ASSERT_TRUE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_PASID);
	buf = pages(PG);
	strcpy(buf, "pasid");
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW), 0);
	/* DMA tagged with PASID 5 translates; untagged DMA has no domain. */
	CU_ASSERT_EQUAL(dev_read(5, iova, got, 6), 0);
	CU_ASSERT_STRING_EQUAL(got, "pasid");
	CU_ASSERT_NOT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova, got, 6), 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	uninstall();

	/* A kernel without PASID attach (6.12): a clear -EOPNOTSUPP. */
	if (install("edu@" EDU ":pasid_bits=8;flags=nopasid") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	log_capture();
	CU_ASSERT_EQUAL(dev_open(ioas, UPMD_IOAS_DEV_F_PASID, 5, &fd), -EOPNOTSUPP);
	ASSERT_LOG_HAS("no PASID support");
	log_release();
	upmd_ioas_close(ioas);
	munmap(buf, PG);
	uninstall();
}

static void test_device_errors(void)
{
	struct upmd_ioas_dev_req req = { .size = sizeof(req), .bdf = EDU, .cdev = "vfio7", .iommu_group = -1 };
	struct upmd_ioas *ioas;
	int fd = -1, fd2 = -1;

	if (install("edu@" EDU) < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd), -ENOENT);
	ASSERT_LOG_HAS("/dev/vfio/devices/vfio7 does not exist");
	log_release();
	req.cdev = NULL;
	CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd), -EINVAL);
	req.cdev = "vfio0";
	req.size = 8;
	CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd), -EINVAL);
	req.size = sizeof(req);
	req.flags = 1u << 7;
	CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd), -EINVAL);
	req.flags = 0;
	/* A cdev is open once; the second open is refused and leaks nothing. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_device_open(ioas, &req, &fd), 0);
	CU_ASSERT_NOT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd2), 0);
	CU_ASSERT_EQUAL(stats().bound_devices, 1);
	/* type1: a device with no group. */
	upmd_ioas_close(ioas);
	CU_ASSERT_EQUAL(stats().open_fds, 0);
	ioas = open_ioas(UPMD_IOAS_BACKEND_TYPE1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd), -ENODEV);
	ASSERT_LOG_HAS("no IOMMU group");
	req.iommu_group = 4242;
	CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd), -ENOENT);
	ASSERT_LOG_HAS("upmd-devbind --bind vfio-pci " EDU);
	log_release();
	upmd_ioas_close(ioas);
	uninstall();
}

/* ---- concurrency ---- */

struct worker {
	struct upmd_ioas *ioas;
	char *mem;
	int errors;
};

static void *map_worker(void *arg)
{
	struct worker *w = arg;
	uint64_t iova[8];
	unsigned round, i;

	for (round = 0; round < 300; round++) {
		for (i = 0; i < 8; i++)
			if (upmd_ioas_map(w->ioas, w->mem + i * PG, PG, &iova[i], UPMD_IOAS_MAP_RW) < 0)
				w->errors++;
		for (i = 0; i < 8; i++)
			if (upmd_ioas_unmap(w->ioas, iova[i], PG) < 0)
				w->errors++;
	}
	return NULL;
}

static void test_concurrent_maps(void)
{
	struct worker w[2];
	pthread_t t[2];
	struct upmd_ioas *ioas;
	unsigned i;
	int fd = -1;

	if (install("edu@" EDU) < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	for (i = 0; i < 2; i++) {
		w[i].ioas = ioas;
		w[i].mem = pages(8 * PG);
		w[i].errors = 0;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, map_worker, &w[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(w[i].errors, 0);
		munmap(w[i].mem, 8 * PG);
	}
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	uninstall();
}

/* ---- failure paths: what is said, and what is left ---- */

#define EDU2 "0000:00:05.0"

/* Finding: a type1 group that cannot leave its container kept the
 * container's mappings pinned. */
static void test_type1_group_cannot_leave(void)
{
	struct upmd_ioas *ioas;
	uint64_t iova = 0;
	char *buf;
	int fd = -1;

	if (install_inj("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_TYPE1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	buf = pages(2 * PG);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 2 * PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	/* Someone else (a forked child) still holds the device file, so the
	 * group cannot leave the container: the model's EBUSY, as the
	 * kernel's container_users rule. */
	inj.held_fd = fd;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	ASSERT_LOG_HAS("IOMMU group 10: VFIO_GROUP_UNSET_CONTAINER failed (EBUSY)");
	ASSERT_LOG_HAS("a device file of the group is still open");
	ASSERT_LOG_HAS("none of this IOAS's mappings stays pinned");
	log_release();
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(mappings(), 0);
	/* The other holder closes it: the group leaves with its last file. */
	inj.held_fd = -1;
	CU_ASSERT_EQUAL(upmd_model_kops()->close(model, fd), 0);
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 0);
	/* Still recorded, so made again when a group joins. */
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 2 * PG), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(buf, 2 * PG);
	uninstall();
}

/* Finding: the alignment used before any attach was the kernel's 1. */
static void test_align_before_attach(void)
{
	struct upmd_ioas *ioas;
	uint64_t iova;
	char *buf, got[8];
	int fd = -1;

	if (install("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	buf = pages(2 * PG);
	/* No domain yet: the kernel answers alignment 1 (and takes this
	 * mapping), but the attach would refuse it; the IOAS holds every
	 * mapping to a page from the start. */
	iova = 0x800;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EINVAL);
	ASSERT_LOG_HAS("IOVA 0x800 len 0x1000: not aligned to 0x1000");
	ASSERT_LOG_HAS("even before a device is attached");
	log_release();
	CU_ASSERT_EQUAL(mappings(), 0);

	/* Aligned, but where only the attach tells it cannot be (the MSI
	 * window): the attach is refused, says why, and changes nothing. */
	iova = MSI_FIRST;
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), 0);
	log_capture();
	CU_ASSERT_EQUAL(dev_open(ioas, 0, 0, &fd), -EADDRINUSE);
	ASSERT_LOG_HAS("a mapping made before this attach (1 of them, in IOVA 0xfee00000-0xfee00fff)");
	ASSERT_LOG_HAS("map again after the attach");
	log_release();
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, MSI_FIRST, PG), 0);

	/* A mapping made before that fits stays valid through the attach. */
	strcpy(buf, "early");
	iova = 0;
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 2 * PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(iova % PG, 0);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	bus_master(fd);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	CU_ASSERT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova, got, 6), 0);
	CU_ASSERT_STRING_EQUAL(got, "early");
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 2 * PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	/* After the detach the kernel says 1 again; the IOAS keeps a page. */
	iova = 0x40000800;
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EINVAL);
	upmd_ioas_close(ioas);
	munmap(buf, 2 * PG);
	uninstall();
}

/* Finding: BIND_IOMMUFD's EBUSY and EINVAL said only strerror. */
static void test_bind_errors(void)
{
	struct upmd_ioas *ioas, *other;
	char group[32];
	int fd = -1, ofd = -1, gfd;

	if (install("edu@" EDU) < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	/* Another process uses the device through its legacy group. */
	snprintf(group, sizeof(group), "/dev/vfio/%d", iommu_group(EDU));
	gfd = upmd_k_open(group, O_RDWR);
	CU_ASSERT_TRUE_FATAL(gfd >= 0);
	log_capture();
	CU_ASSERT_EQUAL(dev_open(ioas, 0, 0, &fd), -EBUSY);
	ASSERT_LOG_HAS("cannot bind /dev/vfio/devices/vfio0 to the iommufd (EBUSY)");
	ASSERT_LOG_HAS("/dev/vfio/10, which another process has open");
	ASSERT_LOG_HAS("--iommu type1");
	log_release();
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	CU_ASSERT_EQUAL(upmd_k_close(gfd), 0);

	/* Another process has it bound through the cdev. */
	other = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	CU_ASSERT_EQUAL_FATAL(dev_open(other, 0, 0, &ofd), 0);
	log_capture();
	CU_ASSERT_EQUAL(dev_open(ioas, 0, 0, &fd), -EINVAL);
	ASSERT_LOG_HAS("(EINVAL): the device is already open through another file");
	ASSERT_LOG_HAS("fuser -v /dev/vfio/devices/vfio0");
	ASSERT_LOG_HAS("'upmd-devbind --status'");
	ASSERT_LOG_HAS("'upmd-devbind --bind vfio-pci " EDU "'");
	log_release();
	CU_ASSERT_EQUAL(stats().bound_devices, 1);
	upmd_ioas_close(other);
	/* With the other user gone it binds. */
	CU_ASSERT_EQUAL(dev_open(ioas, 0, 0, &fd), 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	uninstall();
}

/* Finding: ranges widened on detach while the allocator kept the narrow
 * space, so the IOAS said "allowed" where it then refused to map. */
static void test_detach_keeps_ranges(void)
{
	struct upmd_iova_range before[4];
	const struct upmd_iova_range *r;
	struct upmd_ioas *ioas;
	uint64_t iova;
	unsigned n, i;
	char *buf;
	int fd = -1;

	if (install("edu@" EDU ";aw=39") < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	n = upmd_ioas_ranges(ioas, &r);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	memcpy(before, r, n * sizeof(*r));
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	/* The kernel allows everything again; the IOAS keeps what the
	 * device needed, so the device (or one like it) can come back. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_ranges(ioas, &r), n);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(r[i].start, before[i].start);
		CU_ASSERT_EQUAL(r[i].last, before[i].last);
	}
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, MSI_FIRST, PG));
	CU_ASSERT_FALSE(upmd_ioas_iova_allowed(ioas, 1ULL << 39, PG));
	buf = pages(2 * PG);
	iova = 1ULL << 39;
	log_capture();
	CU_ASSERT_EQUAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW | UPMD_IOAS_MAP_FIXED), -EINVAL);
	ASSERT_LOG_HAS("outside the allowed IOVA ranges (0x0-0xfedfffff, 0xfef00000-0x7fffffffff)");
	ASSERT_LOG_HAS("keeps the narrowest ranges it has seen");
	log_release();
	/* Picks stay inside them, and the device attaches over them again. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 2 * PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_TRUE(upmd_ioas_iova_allowed(ioas, iova, 2 * PG));
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	CU_ASSERT_EQUAL(upmd_ioas_ranges(ioas, &r), n);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 2 * PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(buf, 2 * PG);
	uninstall();
}

/* Map two pages of a memfd through upmd_ioas_map_file; they must have
 * been mapped by VA (the model records va 0 for a file mapping). */
static void map_file_by_va(struct upmd_ioas *ioas)
{
	struct upmd_model_mapping mm[2];
	uint64_t iova[2];
	int mfd, fd = -1;
	char *p;

	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	mfd = memfd_create("test-ioas", MFD_CLOEXEC);
	CU_ASSERT_TRUE_FATAL(mfd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(mfd, 2 * PG), 0);
	p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(p, MAP_FAILED);
	CU_ASSERT_EQUAL(upmd_ioas_map_file(ioas, mfd, 0, p, PG, &iova[0], UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(upmd_ioas_map_file(ioas, mfd, PG, p + PG, PG, &iova[1], UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_model_mappings(model, mm, 2), 2);
	CU_ASSERT_EQUAL(mm[0].va, (uint64_t)(uintptr_t)p);
	CU_ASSERT_EQUAL(mm[1].va, (uint64_t)(uintptr_t)(p + PG));
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova[0], PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova[1], PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	munmap(p, 2 * PG);
	close(mfd);
}

/* Finding: only ENOTTY/EOPNOTSUPP meant "no MAP_FILE", and nothing said so. */
static void test_map_file_probe(void)
{
	static const int other[] = { -EOPNOTSUPP, -EINVAL };
	struct upmd_ioas *ioas;
	unsigned i;

	/* The model as 6.12: ENOTTY. */
	if (install("edu@" EDU ";flags=nomapfile") < 0)
		return;
	log_capture();
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_FALSE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_MAP_FILE);
	ASSERT_LOG_HAS("IOMMU_IOAS_MAP_FILE is not available (the probe got Inappropriate ioctl for device");
	CU_ASSERT_EQUAL(mappings(), 0);
	map_file_by_va(ioas);
	CU_ASSERT_EQUAL(log_count("IOMMU_IOAS_MAP_FILE"), 1);
	log_release();
	upmd_ioas_close(ioas);
	uninstall();

	/* Other kernels' ways of saying no. */
	for (i = 0; i < UPMD_DIM(other); i++) {
		if (install_inj("edu@" EDU) < 0)
			return;
		inj.req = IOMMU_IOAS_MAP_FILE;
		inj.rc = other[i];
		log_capture();
		ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
		CU_ASSERT_FALSE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_MAP_FILE);
		ASSERT_LOG_HAS("IOMMU_IOAS_MAP_FILE is not available");
		ASSERT_LOG_HAS(strerror(-other[i]));
		CU_ASSERT_EQUAL(mappings(), 0);
		map_file_by_va(ioas);
		CU_ASSERT_EQUAL(log_count("IOMMU_IOAS_MAP_FILE"), 1);
		log_release();
		upmd_ioas_close(ioas);
		uninstall();
	}

	/* The probe passes but the real call is refused: map by VA, say it once. */
	if (install_inj("edu@" EDU) < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_IOMMUFD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_TRUE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_MAP_FILE);
	inj.req = IOMMU_IOAS_MAP_FILE;
	inj.rc = -EOPNOTSUPP;
	inj.with_fd_only = true;
	log_capture();
	map_file_by_va(ioas);
	CU_ASSERT_EQUAL(log_count("IOMMU_IOAS_MAP_FILE failed (Operation not supported)"), 1);
	log_release();
	CU_ASSERT_FALSE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_MAP_FILE);
	upmd_ioas_close(ioas);
	uninstall();
}

/* Finding: ENOMEM from the pin had no message at all. */
static void memlock_case(enum upmd_ioas_backend b)
{
	struct rlimit saved, small;
	struct upmd_ioas *ioas;
	uint64_t iova = 0;
	char *buf;
	int fd = -1, rc;

	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	small.rlim_cur = 4 * PG;
	small.rlim_max = saved.rlim_max;
	/* unpriv: the model charges pins even though the tests run as root. */
	if (install("edu@" EDU ";flags=unpriv") < 0)
		return;
	ioas = open_ioas(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	buf = pages(8 * PG);
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);
	log_capture();
	rc = upmd_ioas_map(ioas, buf, 8 * PG, &iova, UPMD_IOAS_MAP_RW);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	ASSERT_LOG_HAS("the kernel could not pin 32 KiB (ENOMEM)");
	ASSERT_LOG_HAS("RLIMIT_MEMLOCK, which is 16 KiB");
	ASSERT_LOG_HAS("'ulimit -l unlimited'");
	ASSERT_LOG_HAS("'--ulimit memlock=-1:-1'");
	log_release();
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(mappings(), 0);
	/* The IOVA went back: the next pick is the first one there is. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 8 * PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(iova, 1ULL << 20);
	CU_ASSERT_EQUAL(stats().pinned_pages, 8);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 8 * PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);

	/* Mapped before any device: pinned by the attach (iommufd) or when
	 * the first group joins (type1), and refused there. */
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, 8 * PG, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);
	log_capture();
	rc = dev_open(ioas, 0, 0, &fd);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	ASSERT_LOG_HAS("the kernel could not pin 32 KiB (ENOMEM)");
	ASSERT_LOG_HAS("RLIMIT_MEMLOCK");
	log_release();
	CU_ASSERT_EQUAL(stats().pinned_pages, 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 0);
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	/* With the limit back the same device attaches and pins it. */
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	CU_ASSERT_EQUAL(stats().pinned_pages, 8);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, 8 * PG), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(buf, 8 * PG);
	uninstall();
}

static void test_memlock_iommufd(void)
{
	memlock_case(UPMD_IOAS_BACKEND_IOMMUFD);
}

static void test_memlock_type1(void)
{
	memlock_case(UPMD_IOAS_BACKEND_TYPE1);
}

/* Finding: a non-viable group, and a failing GET_STATUS, need to say so. */
static void test_group_not_viable(void)
{
	struct upmd_ioas *ioas;
	int fd = -1;

	if (install_inj("edu@" EDU) < 0)
		return;
	ioas = open_ioas(UPMD_IOAS_BACKEND_TYPE1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	/* As if another function of the group were bound to a host driver. */
	inj.not_viable = true;
	log_capture();
	CU_ASSERT_EQUAL(dev_open(ioas, 0, 0, &fd), -EPERM);
	ASSERT_LOG_HAS(EDU ": IOMMU group 10 (/dev/vfio/10) is not viable");
	ASSERT_LOG_HAS("/sys/kernel/iommu_groups/10/devices");
	ASSERT_LOG_HAS("'upmd-devbind --bind vfio-pci BDF'");
	log_release();
	CU_ASSERT_EQUAL(stats().open_fds, 1);	/* the container only */
	CU_ASSERT_EQUAL(stats().bound_devices, 0);
	inj.not_viable = false;
	/* GET_STATUS itself failing is that, not "not viable". */
	inj.req = VFIO_GROUP_GET_STATUS;
	inj.rc = -EIO;
	log_capture();
	CU_ASSERT_EQUAL(dev_open(ioas, 0, 0, &fd), -EIO);
	ASSERT_LOG_HAS("VFIO_GROUP_GET_STATUS on /dev/vfio/10 failed");
	CU_ASSERT_PTR_NULL(strstr(log_text(), "not viable"));
	log_release();
	CU_ASSERT_EQUAL(stats().open_fds, 1);
	inj.req = 0;
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 1);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	uninstall();
}

/* Finding: a failed second attach must leave everything as it was. */
static void second_attach_case(enum upmd_ioas_backend b)
{
	struct upmd_iova_range before[4];
	const struct upmd_iova_range *r;
	struct upmd_model_stats st0, st;
	struct upmd_ioas *ioas;
	uint64_t iova = 0, iova2 = 0;
	uint32_t feat;
	unsigned n, i;
	char *buf, got[8];
	int fd = -1, fd2 = -1;

	if (install("edu@" EDU ";edu@" EDU2 ":pasid_bits=8;aw=39") < 0)
		return;
	ioas = open_ioas(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ioas);
	CU_ASSERT_EQUAL_FATAL(dev_open(ioas, 0, 0, &fd), 0);
	bus_master(fd);
	buf = pages(2 * PG);
	strcpy(buf, "first");
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf, PG, &iova, UPMD_IOAS_MAP_RW), 0);
	n = upmd_ioas_ranges(ioas, &r);
	CU_ASSERT_FATAL(n > 0 && n <= 4);
	memcpy(before, r, n * sizeof(*r));
	feat = upmd_ioas_features(ioas);
	st0 = stats();

	if (b == UPMD_IOAS_BACKEND_IOMMUFD) {
		/* A PASID beyond the device's 8 bits: bound, then the attach
		 * is refused (after GET_HW_INFO reported PASID support). */
		CU_ASSERT_NOT_EQUAL(dev_open_at(ioas, EDU2, "vfio1", UPMD_IOAS_DEV_F_PASID, 1u << 9, &fd2), 0);
	} else {
		/* The second device's group, asked for a name not in it: the
		 * group joins the container, then GET_DEVICE_FD fails. */
		struct upmd_ioas_dev_req req = {
			.size = sizeof(req), .bdf = "0000:00:05.1", .iommu_group = iommu_group(EDU2),
		};
		CU_ASSERT_EQUAL(upmd_ioas_device_open(ioas, &req, &fd2), -ENODEV);
	}
	/* The IOAS, the first device and the allocator are as they were. */
	CU_ASSERT_EQUAL(upmd_ioas_features(ioas), feat);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_ranges(ioas, &r), n);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(r[i].start, before[i].start);
		CU_ASSERT_EQUAL(r[i].last, before[i].last);
	}
	st = stats();
	CU_ASSERT_EQUAL(st.open_fds, st0.open_fds);
	CU_ASSERT_EQUAL(st.objects, st0.objects);
	CU_ASSERT_EQUAL(st.bound_devices, 1);
	CU_ASSERT_EQUAL(st.attached_devices, 1);
	CU_ASSERT_EQUAL(st.pinned_pages, 1);
	CU_ASSERT_EQUAL(dev_read(UPMD_MODEL_NO_PASID, iova, got, 6), 0);
	CU_ASSERT_STRING_EQUAL(got, "first");
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(ioas, buf + PG, PG, &iova2, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_EQUAL(iova2, iova + PG);

	/* A good device attaches afterwards. */
	CU_ASSERT_EQUAL_FATAL(dev_open_at(ioas, EDU2, "vfio1", 0, 0, &fd2), 0);
	CU_ASSERT_EQUAL(stats().attached_devices, 2);
	CU_ASSERT_EQUAL(stats().pinned_pages, 2);
	if (b == UPMD_IOAS_BACKEND_IOMMUFD)
		CU_ASSERT_TRUE(upmd_ioas_features(ioas) & UPMD_IOAS_FEAT_PASID);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd2), 0);
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(buf, 2 * PG);
	uninstall();
}

static void test_second_attach_iommufd(void)
{
	second_attach_case(UPMD_IOAS_BACKEND_IOMMUFD);
}

static void test_second_attach_type1(void)
{
	second_attach_case(UPMD_IOAS_BACKEND_TYPE1);
}

static const struct upmd_test open_tests[] = {
	{ "AUTO picks iommufd; features detected", test_auto_iommufd },
	{ "6.12 shape: no MAP_FILE, no PASID", test_feature_detection },
	{ "UPMD_IOMMU override and bad configurations", test_backend_override },
	{ "missing /dev/iommu, missing VFIO", test_missing_interfaces },
	{ NULL, NULL },
};

static const struct upmd_test map_tests[] = {
	{ "allowed ranges after attach (aw=39, MSI window)", test_ranges_after_attach },
	{ "map/unmap rules, iommufd", test_map_rules_iommufd },
	{ "map/unmap rules, type1", test_map_rules_type1 },
	{ "picked IOVAs skip the MSI window", test_pick_skips_hole },
	{ "type1: mappings wait for the first group", test_type1_late_iommu },
	{ "attach at a PASID", test_pasid_attach },
	{ "device open errors", test_device_errors },
	{ "two threads mapping and unmapping", test_concurrent_maps },
	{ NULL, NULL },
};

static const struct upmd_test failure_tests[] = {
	{ "type1: a group that cannot leave keeps nothing pinned", test_type1_group_cannot_leave },
	{ "alignment before the first attach; maps made then", test_align_before_attach },
	{ "bind refused: EBUSY and EINVAL explained", test_bind_errors },
	{ "detach keeps the narrower ranges", test_detach_keeps_ranges },
	{ "MAP_FILE probe and fallback, said once", test_map_file_probe },
	{ "ENOMEM names RLIMIT_MEMLOCK, iommufd", test_memlock_iommufd },
	{ "ENOMEM names RLIMIT_MEMLOCK, type1", test_memlock_type1 },
	{ "type1: group not viable, GET_STATUS failing", test_group_not_viable },
	{ "failed second attach changes nothing, iommufd", test_second_attach_iommufd },
	{ "failed second attach changes nothing, type1", test_second_attach_type1 },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "ioas open", NULL, NULL, open_tests },
	       { "ioas mappings and devices", NULL, NULL, map_tests },
	       { "ioas failure paths", NULL, NULL, failure_tests })
