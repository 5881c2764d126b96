/* Shared CUnit runner for upmd test programs. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include <fcntl.h>
#include <sys/mman.h>

#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/model.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#include "upmd_test.h"

static char *logbuf;
static size_t loglen;
static FILE *logf_;

void log_capture(void)
{
	logf_ = open_memstream(&logbuf, &loglen);
	upmd_log_set_stream(logf_);
}

const char *log_text(void)
{
	if (logf_)
		fflush(logf_);
	return logbuf ? logbuf : "";
}

void log_release(void)
{
	upmd_log_set_stream(NULL);
	if (logf_)
		fclose(logf_);
	free(logbuf);
	logf_ = NULL;
	logbuf = NULL;
	loglen = 0;
}

int model_open_device(const char *spec, const char *cdev, struct upmd_model **m, int *ifd, uint32_t *ioas,
		      int *dfd)
{
	struct iommu_ioas_alloc al = { .size = sizeof(al) };
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b) };
	struct vfio_device_attach_iommufd_pt a = { .argsz = VFIO_DEVICE_ATTACH_MINSZ };

	if (upmd_model_install(spec, m) < 0) {
		CU_FAIL("model spec refused");
		return -1;
	}
	*ifd = upmd_k_open("/dev/iommu", O_RDWR);
	CU_ASSERT_TRUE_FATAL(*ifd >= 0);
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(*ifd, IOMMU_IOAS_ALLOC, &al), 0);
	*ioas = al.out_ioas_id;
	*dfd = upmd_k_open(cdev, O_RDWR);
	CU_ASSERT_TRUE_FATAL(*dfd >= 0);
	b.iommufd = *ifd;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(*dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), 0);
	a.pt_id = *ioas;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(*dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), 0);
	return 0;
}

void model_map_ram(int ifd, uint32_t ioas, size_t len, uint8_t **va, uint64_t *iova)
{
	struct iommu_ioas_map mp = { .size = sizeof(mp),
				     .flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE };
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	CU_ASSERT_NOT_EQUAL_FATAL(p, MAP_FAILED);
	mp.ioas_id = ioas;
	mp.user_va = (uintptr_t)p;
	mp.length = len;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &mp), 0);
	*va = p;
	*iova = mp.iova;
}

void assert_model_clean(struct upmd_model *m)
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

int upmd_test_run(const struct upmd_suite *suites, unsigned n)
{
	unsigned i, failed, suite_failures;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: cannot initialise the registry\n");
		return 1;
	}
	for (i = 0; i < n; i++) {
		const struct upmd_test *t;
		CU_pSuite s = CU_add_suite(suites[i].name, suites[i].init, suites[i].fini);

		if (!s)
			goto err;
		for (t = suites[i].tests; t->name; t++)
			if (!CU_add_test(s, t->name, t->fn))
				goto err;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed();
	suite_failures = CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return (failed || suite_failures) ? 1 : 0;
err:
	fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 1;
}

void upmd_test_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	fflush(stdout);
	exit(77);
}
