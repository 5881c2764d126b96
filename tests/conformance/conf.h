/* uAPI conformance suite: the target abstraction, the per-test fixture and the checks shared by every test file. */
#ifndef UPMD_CONF_H
#define UPMD_CONF_H

/*
 * One source, two targets. The tests talk raw iommufd / vfio-cdev uAPI
 * through the upmd_k_* table only (no iova, EAL or driver code), so the
 * same checks run against the in-process model (conformance-model, every
 * CI run) and against the real kernel in the QEMU guest
 * (vmtest-conformance). Every expected value is the 6.12 kernel's answer;
 * where a test depends on a kernel detail the comment above it names the
 * kernel function that decides it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <CUnit/CUnit.h>
#include <upmd/kops.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#include "upmd_test.h"

/* ---- targets ------------------------------------------------------------- */

#define CONF_MAX_DEVS 16

struct conf_dev {
	char bdf[32];		/* 0000:00:05.0 */
	uint16_t vendor;
	uint16_t device;
	char cdev[80];		/* /dev/vfio/devices/vfioN */
};

struct conf_target {
	const char *name;
	bool is_model;
	/* Install the kernel boundary. 0, -errno; may exit 77 (skip). */
	int (*setup)(void);
	/* Called after every test's fixture reset: report (into @why) anything
	 * still held. NULL: the target cannot tell (the kernel). */
	int (*check_idle)(char *why, size_t len);
	/* Undo setup. 0 when the target was left clean. */
	int (*teardown)(void);
};

extern const struct conf_target conf_target_model;
/* The model machine (--model-spec); default CONF_MODEL_SPEC. */
#define CONF_MODEL_SPEC "edu@0000:00:04.0;edu@0000:00:05.0;aw=39"
extern const char *conf_model_spec;
extern const struct conf_target conf_target_kernel;

/* The target in force and what it offers (filled by main before the run). */
extern const struct conf_target *conf_target;
extern struct conf_dev conf_devs[CONF_MAX_DEVS];
extern unsigned conf_ndevs;
/* Index into conf_devs of the device under test (an edu if there is one)
 * and of a second device (an NVMe if there is one); -1 when absent. */
extern int conf_dev_a;
extern int conf_dev_b;
/* Missing devices fail the device tests (model, VM) instead of skipping. */
extern bool conf_devices_required;

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_ID_VALUE 0x010000edu	/* BAR0 offset 0 of QEMU's edu */
#define EDU_BAR0_SIZE (1u << 20)

/* QEMU's intel-iommu (aw-bits 39) as the 6.12 guest reports it. */
#define QEMU_MSI_FIRST 0xfee00000ull
#define QEMU_MSI_LAST 0xfeefffffull
#define QEMU_APERTURE_LAST 0x7fffffffffull

/* ---- per-test fixture ----------------------------------------------------- */

/*
 * CUnit's fatal asserts leave the test function with a longjmp, so nothing
 * after them runs. Every resource a test takes goes through fx_*, which
 * records it; fx_reset() releases all of it (BAR mappings, then device
 * fds, which detaches and unbinds, then iommufds, which destroys every
 * object, then test memory). CONF_TEST runs fx_reset() before and after
 * the body, so a test that failed half-way leaves nothing for the next.
 */
void fx_reset(void);

#define CONF_TEST(fn)                                                          \
	static void fn##_body(void);                                           \
	static void fn(void)                                                   \
	{                                                                      \
		conf_test_begin(#fn);                                          \
		fn##_body();                                                   \
		conf_test_end();                                               \
	}                                                                      \
	static void fn##_body(void)

void conf_test_begin(const char *name);
void conf_test_end(void);

/* Open /dev/iommu (fatal on failure). */
int fx_iommufd(void);
/* Open the cdev of conf_devs[idx] (fatal if idx < 0: the caller checked
 * with conf_need_dev()). */
int fx_dev_open(int idx);
/* Close a tracked fd now; returns close's result. */
int fx_close(int fd);
/* Bind @dfd to @ifd (fatal on failure); returns the device id. */
uint32_t fx_bind(int dfd, int ifd);
/* Allocate an IOAS (fatal on failure). */
uint32_t fx_ioas(int ifd);
/* Attach @dfd to @pt (fatal on failure); returns the HWPT id written back. */
uint32_t fx_attach(int dfd, uint32_t pt);
/* Anonymous read-write memory, populated (fatal on failure). */
void *fx_mem(size_t len);
/* mmap a device region through the table (tracked); -errno or 0. */
int fx_region_mmap(int dfd, uint64_t off, size_t len, int prot, int flags, void **out);
int fx_region_munmap(void *p);

/* False (and a SKIP line) when the test cannot run here; fails the test
 * instead when the target must have the device. */
bool conf_need_dev(int idx, const char *what);
bool conf_dev_is_edu(int idx);

/* ---- raw uAPI calls: each fills the struct and returns 0 or -errno ----- */

int c_ioas_alloc(int ifd, uint32_t *id);
int c_destroy(int ifd, uint32_t id);
int c_map(int ifd, uint32_t ioas, uint32_t flags, const void *va, uint64_t len,
	  uint64_t *iova);
int c_unmap(int ifd, uint32_t ioas, uint64_t iova, uint64_t len, uint64_t *unmapped);
/* @n in: array capacity, out: what the kernel wrote to num_iovas. */
int c_ranges(int ifd, uint32_t ioas, struct iommu_iova_range *r, uint32_t *n,
	     uint64_t *align);
int c_option(int ifd, uint32_t option, uint16_t op, uint32_t obj, uint64_t *val);
int c_bind(int dfd, int ifd, uint32_t *devid);
int c_attach(int dfd, uint32_t *pt);
int c_detach(int dfd);
int c_dev_info(int dfd, struct vfio_device_info *info);
int c_region_info(int dfd, uint32_t index, struct vfio_region_info *ri);

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)

/* ---- checks: print what was seen (the kernel's answers end up in the
 * guest log) and record a CUnit failure on a mismatch ------------------- */

const char *conf_rc_name(long rc);
void conf_check_rc(bool fatal, long got, long want, const char *what, const char *file,
		   unsigned line);
void conf_check_u64(bool fatal, uint64_t got, uint64_t want, const char *what,
		    const char *file, unsigned line);
void conf_check_true(bool fatal, bool ok, const char *what, const char *file, unsigned line);

/* rc of @call must be @want (0 or -Exxx). */
#define EXPECT_RC(call, want) conf_check_rc(false, (long)(call), (long)(want), #call, __FILE__, __LINE__)
#define REQUIRE_RC(call, want) conf_check_rc(true, (long)(call), (long)(want), #call, __FILE__, __LINE__)
#define EXPECT_EQ(got, want) conf_check_u64(false, (uint64_t)(got), (uint64_t)(want), #got, __FILE__, __LINE__)
#define REQUIRE_EQ(got, want) conf_check_u64(true, (uint64_t)(got), (uint64_t)(want), #got, __FILE__, __LINE__)
#define EXPECT_TRUE(cond) conf_check_true(false, (cond), #cond, __FILE__, __LINE__)
#define REQUIRE_TRUE(cond) conf_check_true(true, (cond), #cond, __FILE__, __LINE__)

/* Informational line in the test's output (also collected in the VM log). */
void conf_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the suites ----------------------------------------------------------- */

extern const struct upmd_test conf_iommufd_tests[];
extern const struct upmd_test conf_device_tests[];
extern const struct upmd_test conf_attach_tests[];

#endif /* UPMD_CONF_H */
