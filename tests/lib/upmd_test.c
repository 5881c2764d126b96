/* Shared CUnit runner for upmd test programs. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "upmd_test.h"

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
