/* CPUID decoding for machines with and without each instruction, and this machine's answer agreeing with the compiler's view. */
#include <stdlib.h>

#include <upmd/cpu.h>

#include "upmd_test.h"

#define B(n) (1u << (n))

static void test_decode(void)
{
	/* A CPU with all three (Sapphire Rapids: MOVDIRI, MOVDIR64B, ENQCMD). */
	CU_ASSERT_EQUAL(upmd_cpu_decode(0x20, B(20), B(27) | B(28) | B(29)),
			UPMD_CPU_SSE42 | UPMD_CPU_MOVDIRI | UPMD_CPU_MOVDIR64B | UPMD_CPU_ENQCMD);
	/* MOVDIR64B and MOVDIRI without ENQCMD (this project's Intel hosts). */
	CU_ASSERT_EQUAL(upmd_cpu_decode(0x1b, B(20), B(27) | B(28)),
			UPMD_CPU_SSE42 | UPMD_CPU_MOVDIRI | UPMD_CPU_MOVDIR64B);
	/* None of them (an AMD EPYC of another host). */
	CU_ASSERT_EQUAL(upmd_cpu_decode(0x10, B(20), B(5) | B(22)), UPMD_CPU_SSE42);
	/* Each bit alone, and only its bit. */
	CU_ASSERT_EQUAL(upmd_cpu_decode(7, 0, B(27)), UPMD_CPU_MOVDIRI);
	CU_ASSERT_EQUAL(upmd_cpu_decode(7, 0, B(28)), UPMD_CPU_MOVDIR64B);
	CU_ASSERT_EQUAL(upmd_cpu_decode(7, 0, B(29)), UPMD_CPU_ENQCMD);
	CU_ASSERT_EQUAL(upmd_cpu_decode(7, 0, ~(B(27) | B(28) | B(29))), 0);
	/* Leaf 7 not there: its register is garbage and must be ignored. */
	CU_ASSERT_EQUAL(upmd_cpu_decode(6, B(20), 0xffffffffu), UPMD_CPU_SSE42);
	CU_ASSERT_EQUAL(upmd_cpu_decode(0, 0xffffffffu, 0xffffffffu), 0);
	CU_ASSERT_STRING_EQUAL(upmd_cpu_flag_name(UPMD_CPU_ENQCMD), "enqcmd");
	CU_ASSERT_STRING_EQUAL(upmd_cpu_flag_name(UPMD_CPU_MOVDIR64B), "movdir64b");
}

static void test_this_cpu(void)
{
	uint32_t f = upmd_cpu_flags();

	printf("\n  this CPU: sse4.2 %d, movdiri %d, movdir64b %d, enqcmd %d\n", !!(f & UPMD_CPU_SSE42),
	       !!(f & UPMD_CPU_MOVDIRI), !!(f & UPMD_CPU_MOVDIR64B), !!(f & UPMD_CPU_ENQCMD));
#if defined(__x86_64__)
	__builtin_cpu_init();
	CU_ASSERT_EQUAL(!!(f & UPMD_CPU_SSE42), !!__builtin_cpu_supports("sse4.2"));
#endif
	CU_ASSERT_EQUAL(upmd_cpu_has(UPMD_CPU_MOVDIR64B), !!(f & UPMD_CPU_MOVDIR64B));
}

static const struct upmd_test cpu_tests[] = {
	{ "CPUID decoding with and without each instruction", test_decode },
	{ "this CPU", test_this_cpu },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "cpu features", NULL, NULL, cpu_tests })
