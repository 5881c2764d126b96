/* CPU features the drivers need, from CPUID, detected at run time: an instruction the CPU lacks is never executed. */
#ifndef UPMD_CPU_H
#define UPMD_CPU_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum upmd_cpu_flag {
	UPMD_CPU_SSE42 = 1u << 0,	/* CPUID.1:ECX[20]: the crc32 instruction */
	UPMD_CPU_MOVDIRI = 1u << 1,	/* CPUID.(7,0):ECX[27]: direct 4/8-byte stores */
	UPMD_CPU_MOVDIR64B = 1u << 2,	/* CPUID.(7,0):ECX[28]: 64-byte atomic store (DSA dedicated queues) */
	UPMD_CPU_ENQCMD = 1u << 3,	/* CPUID.(7,0):ECX[29]: enqueue with the PASID (DSA shared queues) */
};

/**
 * The flags a CPU with these CPUID results has: @max_leaf (CPUID.0:EAX),
 * @leaf1_ecx (CPUID.1:ECX), @leaf7_ecx (CPUID.(7,0):ECX, ignored when
 * max_leaf < 7). Pure: tests feed it the registers of machines with and
 * without each instruction.
 */
uint32_t upmd_cpu_decode(uint32_t max_leaf, uint32_t leaf1_ecx, uint32_t leaf7_ecx);

/** This CPU's flags (CPUID once; 0 off x86). UPMD_CPU_MASK in the
 * environment (a hex mask) clears flags, to test fallbacks on a CPU that has them. */
uint32_t upmd_cpu_flags(void);

static inline bool upmd_cpu_has(enum upmd_cpu_flag f)
{
	return (upmd_cpu_flags() & (uint32_t)f) != 0;
}

/** "movdir64b", "enqcmd", ...; "?" for anything else. */
const char *upmd_cpu_flag_name(enum upmd_cpu_flag f);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_CPU_H */
