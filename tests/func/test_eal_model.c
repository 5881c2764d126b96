/* The EAL end to end against the model: init, lcores, memory in the one IOAS, edu DMA and faults, every bad-input path, and nothing left behind. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <upmd/edu.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define EDU "0000:00:04.0"
#define XFER 2048

static struct upmd_model *model;

static int install(const char *spec)
{
	int rc = upmd_model_install(spec, &model);

	CU_ASSERT_EQUAL(rc, 0);
	return rc;
}

static void uninstall(void)
{
	if (!model)
		return;
	assert_model_clean(model);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(model);
	model = NULL;
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
}

static int init_args(int argc, char **argv)
{
	return upmd_eal_init(argc, argv);
}

#define INIT(...)                                                              \
	init_args((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)), \
		  (char *[]){ "test", __VA_ARGS__, NULL })

static int edu_roundtrip(struct upmd_edu *edu)
{
	const struct upmd_memzone *src, *dst;
	int rc, i;

	if (upmd_memzone_reserve("t_src", XFER, UPMD_SOCKET_ID_ANY, 4096, &src) < 0)
		return -ENOMEM;
	if (upmd_memzone_reserve("t_dst", XFER, UPMD_SOCKET_ID_ANY, 4096, &dst) < 0) {
		upmd_memzone_free(src);
		return -ENOMEM;
	}
	for (i = 0; i < XFER; i++)
		((uint8_t *)src->addr)[i] = (uint8_t)(i ^ 0xa5);
	rc = upmd_edu_dma(edu, src->iova, 0, XFER, false, 5000);
	if (!rc)
		rc = upmd_edu_dma(edu, dst->iova, 0, XFER, true, 5000);
	if (!rc && memcmp(src->addr, dst->addr, XFER))
		rc = -EIO;
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(src->addr), src->iova);
	upmd_memzone_free(dst);
	upmd_memzone_free(src);
	return rc;
}

static void test_init_dma_cleanup(void)
{
	struct upmd_model_stats st;
	struct upmd_pci_device *d;
	struct upmd_edu *edu;
	int rc;

	if (install("edu@" EDU) < 0)
		return;
	rc = INIT("-l", "0", "--no-huge", "-m", "8", "--iova-mode", "alloc", "-a", EDU, "--", "app-arg");
	CU_ASSERT_EQUAL_FATAL(rc, 11);	/* program name through "--" */
	CU_ASSERT_TRUE(upmd_eal_initialized());
	CU_ASSERT_EQUAL(upmd_eal_init(1, (char *[]){ "test", NULL }), -EALREADY);
	CU_ASSERT_EQUAL(upmd_eal_iova_mode(), UPMD_IOVA_MODE_ALLOC);
	CU_ASSERT_PTR_NOT_NULL(upmd_ioas_default());
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 1);
	d = upmd_pci_device_find(EDU);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->id.vendor_id, 0x1234);
	CU_ASSERT_STRING_EQUAL(d->cdev, "vfio0");

	/* Every segment is in the IOAS, at an allowed IOVA. */
	CU_ASSERT_TRUE(upmd_memseg_count() >= 1);
	for (unsigned i = 0; i < upmd_memseg_count(); i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);

		CU_ASSERT_NOT_EQUAL(ms->iova, UPMD_BAD_IOVA);
		CU_ASSERT_TRUE(upmd_ioas_iova_allowed(upmd_ioas_default(), ms->iova, ms->len));
		CU_ASSERT_EQUAL(ms->source, UPMD_MEMSEG_ANON);
	}
	upmd_model_get_stats(model, &st);
	CU_ASSERT_EQUAL(st.pinned_pages, 8 * UPMD_MB / 4096);
	CU_ASSERT_EQUAL(st.attached_devices, 1);

	edu = upmd_edu_first();
	CU_ASSERT_PTR_NOT_NULL_FATAL(edu);
	CU_ASSERT_EQUAL(edu_roundtrip(edu), 0);
	upmd_model_get_stats(model, &st);
	CU_ASSERT_EQUAL(st.dma_bytes, 2 * XFER);
	CU_ASSERT_EQUAL(st.faults, 0);

	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), -EALREADY);
	CU_ASSERT_PTR_NULL(upmd_ioas_default());
	uninstall();
}

static void test_dma_fault(void)
{
	struct upmd_model_fault f;
	struct upmd_edu *edu;
	uint8_t *page;
	uint64_t iova = 0;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "--iova-mode", "alloc",
				   "--log-level", "err"), 10);
	edu = upmd_edu_first();
	CU_ASSERT_PTR_NOT_NULL_FATAL(edu);

	/* A dynamic mapping works, then after unmap the same IOVA faults and
	 * the memory behind it is left untouched. */
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(page, MAP_FAILED);
	memset(page, 0x11, 4096);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_map(upmd_ioas_default(), page, 4096, &iova, UPMD_IOAS_MAP_RW), 0);
	CU_ASSERT_TRUE(iova < 0xfffffff);	/* inside edu's 28-bit DMA mask */
	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova, 0, 64, false, 5000), 0);
	/* The device buffer now holds 0x11s; RAM gets 0x22s, so a DMA that
	 * got through after the unmap would show up as 0x11 in RAM. */
	memset(page, 0x22, 4096);
	CU_ASSERT_EQUAL(upmd_ioas_unmap(upmd_ioas_default(), iova, 4096), 0);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(model, &f), -ENOENT);

	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova, 0, 64, true, 5000), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova);
	CU_ASSERT_TRUE(f.write);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
	CU_ASSERT_STRING_EQUAL(f.bdf, EDU);
	CU_ASSERT_EQUAL(page[0], 0x22);
	CU_ASSERT_EQUAL(page[63], 0x22);
	munmap(page, 4096);

	upmd_eal_cleanup();
	uninstall();
}

static int on_worker(void *arg)
{
	int *out = arg;

	out[0] = (int)upmd_lcore_id();
	out[1] = sched_getcpu();
	return 42;
}

static void test_lcores(void)
{
	int seen[2] = { -1, -1 };
	unsigned w;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		printf("\n  (one CPU: the worker-lcore test needs two)\n");
		return;
	}
	if (install("") < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(INIT("-l", "0-1", "--no-huge", "-m", "4"), 6);
	CU_ASSERT_EQUAL(upmd_lcore_count(), 2);
	CU_ASSERT_EQUAL(upmd_get_main_lcore(), 0);
	CU_ASSERT_EQUAL(upmd_lcore_id(), 0);
	w = upmd_get_next_lcore((unsigned)-1, true);
	CU_ASSERT_EQUAL(w, 1);
	CU_ASSERT_EQUAL(upmd_eal_remote_launch(on_worker, seen, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_eal_remote_launch(on_worker, seen, w), 0);
	CU_ASSERT_EQUAL(upmd_eal_wait_lcore(w), 42);
	CU_ASSERT_EQUAL(seen[0], 1);
	CU_ASSERT_EQUAL(seen[1], 1);
	CU_ASSERT_EQUAL(upmd_eal_get_lcore_state(w), UPMD_LCORE_WAIT);
	upmd_eal_cleanup();
	CU_ASSERT_EQUAL(upmd_lcore_count(), 0);
	uninstall();
}

static void test_hugepages(void)
{
	bool huge = false;
	int rc;

	if (install("edu@" EDU) < 0)
		return;
	rc = INIT("-l", "0", "-m", "4", "--log-level", "err");
	if (rc < 0) {
		/* No free hugepages here: the error must say how to get them. */
		CU_ASSERT_EQUAL(rc, -ENOMEM);
		uninstall();
		printf("\n  (no free 2 MiB hugepages: hugepage mapping not exercised)\n");
		return;
	}
	for (unsigned i = 0; i < upmd_memseg_count(); i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);

		huge |= ms->page_sz >= 2 * UPMD_MB && ms->source != UPMD_MEMSEG_ANON;
		CU_ASSERT_TRUE(upmd_ioas_iova_allowed(upmd_ioas_default(), ms->iova, ms->len));
	}
	CU_ASSERT_TRUE(huge);
	/* The model's default aperture (48 bits) covers user VAs: IOVA = VA. */
	CU_ASSERT_EQUAL(upmd_eal_iova_mode(), UPMD_IOVA_MODE_VA);
	CU_ASSERT_EQUAL(upmd_memseg_get(0)->iova, (uint64_t)(uintptr_t)upmd_memseg_get(0)->va);
	upmd_eal_cleanup();
	uninstall();
}

static void test_type1_backend(void)
{
	struct upmd_edu *edu;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "--iommu", "type1",
				   "--iova-mode", "alloc"), 10);
	CU_ASSERT_STRING_EQUAL(upmd_ioas_backend_name(upmd_ioas_default()), "type1");
	edu = upmd_edu_first();
	CU_ASSERT_PTR_NOT_NULL_FATAL(edu);
	CU_ASSERT_EQUAL(edu_roundtrip(edu), 0);
	upmd_eal_cleanup();
	uninstall();
}

static void test_no_iommu(void)
{
	int rc;

	if (install("edu@" EDU ";flags=noiommufd,novfio") < 0)
		return;
	log_capture();
	rc = INIT("-l", "0", "--no-huge", "-m", "4", "-a", EDU);
	CU_ASSERT_EQUAL(rc, -ENODEV);
	CU_ASSERT_EQUAL(upmd_eal_exit_code(rc), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "/dev/iommu"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "modprobe"));
	log_release();
	CU_ASSERT_FALSE(upmd_eal_initialized());
	uninstall();

	/* Without -a the same machine runs, device-less. */
	if (install("edu@" EDU ";flags=noiommufd,novfio") < 0)
		return;
	CU_ASSERT_EQUAL(INIT("-l", "0", "--no-huge", "-m", "4", "--log-level", "err"), 8);
	CU_ASSERT_PTR_NULL(upmd_ioas_default());
	upmd_eal_cleanup();
	uninstall();
}

static void test_device_not_bound(void)
{
	int rc;

	if (install("edu@" EDU ":driver=none") < 0)
		return;
	log_capture();
	rc = INIT("-l", "0", "--no-huge", "-m", "4", "-a", EDU);
	CU_ASSERT_EQUAL(rc, -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), EDU));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "upmd-devbind --bind vfio-pci " EDU));
	log_release();
	uninstall();

	if (install("edu@" EDU) < 0)
		return;
	log_capture();
	rc = INIT("-l", "0", "--no-huge", "-m", "4", "-a", "0000:00:09.0");
	CU_ASSERT_EQUAL(rc, -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "0000:00:09.0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "not found"));
	log_release();
	uninstall();
}

static void test_not_enough_hugepages(void)
{
	int rc;

	if (install("edu@" EDU) < 0)
		return;
	log_capture();
	/* 512 GiB of hugepages exists on no machine these tests run on. */
	rc = INIT("-l", "0", "-m", "524288", "-a", EDU);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "hugepages"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "--no-huge"));
	log_release();
	uninstall();
}

static void test_memlock_too_small(void)
{
	struct rlimit saved, small = { 1 << 20, 1 << 20 };
	int rc;

	if (install("edu@" EDU ";flags=unpriv") < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	small.rlim_max = saved.rlim_max;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_MEMLOCK, &small), 0);
	log_capture();
	rc = INIT("-l", "0", "--no-huge", "-m", "16", "-a", EDU);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "RLIMIT_MEMLOCK"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "16384 KiB"));
	log_release();
	uninstall();
}

static void test_bad_model_spec(void)
{
	FILE *saved = stderr;
	int rc;

	stderr = fopen("/dev/null", "w");
	log_capture();
	rc = INIT("--no-huge", "--model", "nosuchdevice@0000:00:04.0");
	log_release();
	fclose(stderr);
	stderr = saved;
	CU_ASSERT_EQUAL(upmd_eal_exit_code(rc), 2);
	CU_ASSERT_FALSE(upmd_eal_initialized());
	CU_ASSERT_PTR_EQUAL(upmd_kernel.ops, &upmd_kops_libc);
}

static const struct upmd_test tests[] = {
	{ "init, edu DMA through the IOAS, cleanup leaves nothing", test_init_dma_cleanup },
	{ "DMA to an unmapped IOVA is an IOMMU fault", test_dma_fault },
	{ "worker lcores run pinned", test_lcores },
	{ "hugepage memory in IOVA=VA mode", test_hugepages },
	{ "legacy type1 backend", test_type1_backend },
	{ "no /dev/iommu and no VFIO", test_no_iommu },
	{ "device absent or not bound to vfio-pci", test_device_not_bound },
	{ "not enough hugepages", test_not_enough_hugepages },
	{ "RLIMIT_MEMLOCK too small", test_memlock_too_small },
	{ "bad --model spec", test_bad_model_spec },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "eal on the model", NULL, NULL, tests })
