/* Shared CUnit runner for upmd test programs: suites as tables, one summary, exit codes 0/1/77. */
#ifndef UPMD_TEST_H
#define UPMD_TEST_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct upmd_model;

struct upmd_test {
	const char *name;
	void (*fn)(void);
};

struct upmd_suite {
	const char *name;
	int (*init)(void);	/* may be NULL */
	int (*fini)(void);	/* may be NULL */
	const struct upmd_test *tests;	/* ends with { NULL, NULL } */
};

/**
 * Run the suites with CUnit's basic interface (verbose), print CUnit's run
 * summary, and return the process exit code: 0 if every test passed, 1 if
 * any failed or a suite could not initialise.
 */
int upmd_test_run(const struct upmd_suite *suites, unsigned n);

/** Skip the whole program (exit 77) with a reason, before any suite runs. */
void upmd_test_skip(const char *why) __attribute__((noreturn));

/**
 * Capture what the library logs, so a test can assert what the user is
 * told: log_capture() starts, log_text() is everything so far,
 * log_release() restores stderr and frees the text.
 */
void log_capture(void);
const char *log_text(void);
void log_release(void);

/** Assert the captured log holds @s; print the log when it does not. */
#define ASSERT_LOG_HAS(s)                                                      \
	do {                                                                   \
		bool found_ = strstr(log_text(), (s)) != NULL;                 \
		if (!found_)                                                   \
			printf("\n  missing \"%s\" in log:\n%s\n", (s), log_text()); \
		CU_ASSERT_TRUE(found_);                                        \
	} while (0)

/**
 * The rule every bad-input and cleanup path is held to: the model has
 * nothing pinned, open, bound, attached or BAR-mapped.
 */
void assert_model_clean(struct upmd_model *m);

/**
 * The fixture of a device-model test that drives the model only through
 * the kernel boundary: install the model @spec, open /dev/iommu with a new
 * IOAS, open the cdev @cdev ("/dev/vfio/devices/vfio0"), bind it to the
 * iommufd and attach it (by RID) to the IOAS. Fatal CUnit assertions on
 * failure. @return 0, or -1 when the spec is refused.
 */
int model_open_device(const char *spec, const char *cdev, struct upmd_model **m, int *ifd, uint32_t *ioas,
		      int *dfd);

/** Anonymous memory of @len bytes mapped read-write into @ioas; *va, *iova. Fatal assertions on failure. */
void model_map_ram(int ifd, uint32_t ioas, size_t len, uint8_t **va, uint64_t *iova);

#define UPMD_TEST_MAIN(...)                                                    \
	int main(void)                                                         \
	{                                                                      \
		static const struct upmd_suite s_[] = { __VA_ARGS__ };         \
		return upmd_test_run(s_, sizeof(s_) / sizeof(s_[0]));          \
	}

#endif
