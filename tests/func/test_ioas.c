/* The IOAS against the model: backend choice, allowed ranges, fixed and picked IOVAs, unmap rules, type1's late IOMMU, PASID attach, and nothing left behind. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
	conf.flags = 1;
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

UPMD_TEST_MAIN({ "ioas open", NULL, NULL, open_tests },
	       { "ioas mappings and devices", NULL, NULL, map_tests })
