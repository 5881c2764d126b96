/* CPUID feature detection. */
#include <stdlib.h>

#include <upmd/cpu.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

uint32_t upmd_cpu_decode(uint32_t max_leaf, uint32_t leaf1_ecx, uint32_t leaf7_ecx)
{
	uint32_t f = 0;

	if (max_leaf >= 1 && (leaf1_ecx & (1u << 20)))
		f |= UPMD_CPU_SSE42;
	if (max_leaf >= 7) {
		if (leaf7_ecx & (1u << 27))
			f |= UPMD_CPU_MOVDIRI;
		if (leaf7_ecx & (1u << 28))
			f |= UPMD_CPU_MOVDIR64B;
		if (leaf7_ecx & (1u << 29))
			f |= UPMD_CPU_ENQCMD;
	}
	return f;
}

static uint32_t detect(void)
{
	uint32_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d, max, ecx1 = 0, ecx7 = 0;

	max = __get_cpuid_max(0, NULL);
	if (max >= 1 && __get_cpuid(1, &a, &b, &c, &d))
		ecx1 = c;
	if (max >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		ecx7 = c;
	}
	f = upmd_cpu_decode(max, ecx1, ecx7);
#endif
	{
		const char *m = getenv("UPMD_CPU_MASK");

		if (m && *m)
			f &= ~(uint32_t)strtoul(m, NULL, 16);
	}
	return f;
}

uint32_t upmd_cpu_flags(void)
{
	static uint32_t flags;
	static int done;

	if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&flags, detect(), __ATOMIC_RELAXED);
		__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	}
	return __atomic_load_n(&flags, __ATOMIC_RELAXED);
}

const char *upmd_cpu_flag_name(enum upmd_cpu_flag f)
{
	switch (f) {
	case UPMD_CPU_SSE42: return "sse4.2";
	case UPMD_CPU_MOVDIRI: return "movdiri";
	case UPMD_CPU_MOVDIR64B: return "movdir64b";
	case UPMD_CPU_ENQCMD: return "enqcmd";
	}
	return "?";
}
