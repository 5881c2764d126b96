/* EAL argument parsing: usage errors allocate nothing and map to exit code 2; lists and sizes parse exactly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/upmd.h>

#include "eal/eal_private.h"
#include "upmd_test.h"

#define ARGV(...) ((char *[]){ "prog", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "prog", __VA_ARGS__ }) / sizeof(char *)))
#define INIT(...) upmd_eal_init(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static FILE *quiet;

static int suite_init(void)
{
	/* Usage errors go to stderr by design; keep the test log readable. */
	quiet = fopen("/dev/null", "w");
	return quiet ? 0 : -1;
}

static int suite_fini(void)
{
	fclose(quiet);
	return 0;
}

static void expect_usage_error(int rc)
{
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_EQUAL(upmd_eal_exit_code(rc), 2);
	/* Nothing was reserved, opened or started. */
	CU_ASSERT_FALSE(upmd_eal_initialized());
	CU_ASSERT_EQUAL(upmd_memseg_count(), 0);
	CU_ASSERT_EQUAL(upmd_lcore_count(), 0);
	CU_ASSERT_PTR_NULL(upmd_ioas_default());
}

static void test_bad_args(void)
{
	FILE *saved = stderr;

	stderr = quiet;
	expect_usage_error(INIT("--no-such-option"));
	expect_usage_error(INIT("-l", "0-"));
	expect_usage_error(INIT("-l", "3-1"));
	expect_usage_error(INIT("-l", "0,0"));
	expect_usage_error(INIT("-l", "x"));
	expect_usage_error(INIT("-l", "100000"));
	expect_usage_error(INIT("-a", "00:1f.8"));
	expect_usage_error(INIT("-a", "0000:00:04"));
	expect_usage_error(INIT("-a", "zz:00.0"));
	expect_usage_error(INIT("-a", "0000:00:04.0junk"));
	expect_usage_error(INIT("-m", "lots"));
	expect_usage_error(INIT("-m", "0"));
	expect_usage_error(INIT("--socket-mem", "512,x"));
	expect_usage_error(INIT("--iova-mode", "pa-ish"));
	expect_usage_error(INIT("--iommu", "vfio2"));
	expect_usage_error(INIT("--log-level", "loud"));
	expect_usage_error(INIT("-m", "64", "--socket-mem", "64"));
	expect_usage_error(INIT("--no-huge", "--socket-mem", "64"));
	expect_usage_error(INIT("stray"));
	expect_usage_error(INIT("-l"));
	stderr = saved;
}

static void test_help(void)
{
	FILE *saved = stdout;
	int rc;

	stdout = quiet;
	rc = INIT("--help");
	stdout = saved;
	CU_ASSERT_EQUAL(rc, -ECANCELED);
	CU_ASSERT_EQUAL(upmd_eal_exit_code(rc), 0);
	CU_ASSERT_FALSE(upmd_eal_initialized());
}

static void test_parse_lcores(void)
{
	bool set[UPMD_MAX_LCORE];
	unsigned i, n = 0;

	CU_ASSERT_EQUAL(eal_parse_lcores("0-3,5", set), 0);
	for (i = 0; i < UPMD_MAX_LCORE; i++)
		n += set[i];
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_TRUE(set[0] && set[3] && set[5]);
	CU_ASSERT_FALSE(set[4]);
	CU_ASSERT_EQUAL(eal_parse_lcores("7", set), 0);
	CU_ASSERT_TRUE(set[7]);
	CU_ASSERT_FALSE(set[0]);
	CU_ASSERT_EQUAL(eal_parse_lcores("", set), -EINVAL);
	CU_ASSERT_EQUAL(eal_parse_lcores("1,", set), -EINVAL);
	CU_ASSERT_EQUAL(eal_parse_lcores("1-2-3", set), -EINVAL);
	CU_ASSERT_EQUAL(eal_parse_lcores("-1", set), -EINVAL);
	CU_ASSERT_EQUAL(eal_parse_lcores("0-200", set), -EINVAL);
}

static void test_parse_mb(void)
{
	size_t b = 1;

	CU_ASSERT_EQUAL(eal_parse_mb("512", &b), 0);
	CU_ASSERT_EQUAL(b, 512 * UPMD_MB);
	CU_ASSERT_EQUAL(eal_parse_mb("0", &b), 0);
	CU_ASSERT_EQUAL(b, 0);
	CU_ASSERT_EQUAL(eal_parse_mb("-5", &b), -EINVAL);
	CU_ASSERT_EQUAL(eal_parse_mb("5M", &b), -EINVAL);
	CU_ASSERT_EQUAL(eal_parse_mb("99999999999999", &b), -EINVAL);
}

static void test_log_levels(void)
{
	int saved = upmd_log_level_cur;

	CU_ASSERT_EQUAL(upmd_log_parse_level("debug"), UPMD_LOG_DEBUG);
	CU_ASSERT_EQUAL(upmd_log_parse_level("ERR"), UPMD_LOG_ERR);
	CU_ASSERT_EQUAL(upmd_log_parse_level("warn"), UPMD_LOG_WARNING);
	CU_ASSERT_EQUAL(upmd_log_parse_level("6"), UPMD_LOG_INFO);
	CU_ASSERT_EQUAL(upmd_log_parse_level("8"), -EINVAL);
	CU_ASSERT_EQUAL(upmd_log_parse_level(""), -EINVAL);
	CU_ASSERT_EQUAL(upmd_log_set_level(9), -EINVAL);
	CU_ASSERT_EQUAL(upmd_log_set_level(UPMD_LOG_ERR), 0);
	CU_ASSERT_EQUAL(upmd_log_level_cur, UPMD_LOG_ERR);
	upmd_log_set_level(saved);
}

static void test_log_output(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int saved = upmd_log_level_cur;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
	upmd_log_set_stream(mem);
	upmd_log_set_level(UPMD_LOG_NOTICE);
	UPMD_INFO("t", "hidden %d", 1);
	UPMD_ERR("t", "shown %d", 2);
	upmd_log_set_stream(NULL);
	fclose(mem);
	CU_ASSERT_PTR_NULL(strstr(buf, "hidden"));
	CU_ASSERT_STRING_EQUAL(buf, "upmd: t: shown 2\n");
	free(buf);
	upmd_log_set_level(saved);
}

static const struct upmd_test args_tests[] = {
	{ "malformed arguments are usage errors", test_bad_args },
	{ "--help", test_help },
	{ "lcore lists", test_parse_lcores },
	{ "sizes in MB", test_parse_mb },
	{ NULL, NULL },
};

static const struct upmd_test log_tests[] = {
	{ "level names", test_log_levels },
	{ "filtering and format", test_log_output },
	{ NULL, NULL },
};

UPMD_TEST_MAIN(
	{ "eal arguments", suite_init, suite_fini, args_tests },
	{ "log", NULL, NULL, log_tests },
)
