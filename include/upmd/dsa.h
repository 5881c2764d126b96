/* Intel Data Streaming Accelerator (DSA) hardware facts: PCI ids, BAR0 registers, WQCFG/GRPCFG tables, portals, descriptors, completion records. */
#ifndef UPMD_DSA_H
#define UPMD_DSA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Facts only, from the Intel DSA Architecture Specification (revision 1.0
 * sizes: a WQCFG entry is 32 bytes, a GRPCFG entry 64 bytes). Shared by the
 * DSA PMD (drivers/dma/dsa) and the DSA device model (model/dev_dsa.c).
 * Registers are little-endian; 64-bit registers may be accessed as one
 * 64-bit access or two 32-bit ones (low dword first). Fields are given as
 * shifts and masks rather than C bit-fields so that their positions do not
 * depend on the compiler.
 */

/* ---- PCI ------------------------------------------------------------------ */

#define UPMD_DSA_VENDOR_ID 0x8086
#define UPMD_DSA_DEVICE_ID_SPR 0x0b25	/* DSA on Sapphire Rapids */
#define UPMD_DSA_CLASS 0x088000		/* base system peripheral, other */

#define UPMD_DSA_BAR_MMIO 0		/* BAR0: registers and tables */
#define UPMD_DSA_BAR_PORTAL 2		/* BAR2: WQ submission portals */

/* ---- BAR0 registers (offsets in bytes) ------------------------------------ */

#define UPMD_DSA_REG_VERSION 0x00	/* 32-bit RO */
#define UPMD_DSA_REG_GENCAP 0x10	/* 64-bit RO */
#define UPMD_DSA_REG_WQCAP 0x20		/* 64-bit RO */
#define UPMD_DSA_REG_GRPCAP 0x30	/* 64-bit RO */
#define UPMD_DSA_REG_ENGCAP 0x38	/* 64-bit RO */
#define UPMD_DSA_REG_OPCAP 0x40		/* 256-bit RO: 4 qwords, bit n = opcode n */
#define UPMD_DSA_REG_TABLE_OFFSET 0x60	/* 128-bit RO */
#define UPMD_DSA_REG_GENCFG 0x80	/* 32-bit RW (writable while disabled) */
#define UPMD_DSA_REG_GENCTRL 0x88	/* 32-bit RW */
#define UPMD_DSA_REG_GENSTS 0x90	/* 32-bit RO */
#define UPMD_DSA_REG_INTCAUSE 0x98	/* 32-bit RW1C */
#define UPMD_DSA_REG_CMD 0xa0		/* 32-bit RW */
#define UPMD_DSA_REG_CMDSTATUS 0xa8	/* 32-bit RO */
#define UPMD_DSA_REG_CMDCAP 0xb0	/* 32-bit RO (when GENCAP.CMD_CAP) */
#define UPMD_DSA_REG_SWERR 0xc0		/* 256-bit: 4 qwords, valid/overflow RW1C */
#define UPMD_DSA_SWERR_SIZE 32

/* VERSION: bits 7:4 major, 3:0 minor (0x100 for 1.0 in the Linux encoding). */
#define UPMD_DSA_VERSION_MAJOR(v) (((v) >> 4) & 0xfu)
#define UPMD_DSA_VERSION_MINOR(v) ((v) & 0xfu)
#define UPMD_DSA_VERSION_1_0 0x100

/* GENCAP */
#define UPMD_DSA_GENCAP_BOF (1ULL << 0)		/* block on fault supported */
#define UPMD_DSA_GENCAP_OVERLAP_COPY (1ULL << 1)	/* memmove handles overlap */
#define UPMD_DSA_GENCAP_CC_MEMORY (1ULL << 2)	/* cache control: to memory */
#define UPMD_DSA_GENCAP_CC_CACHE (1ULL << 3)	/* cache control: to cache */
#define UPMD_DSA_GENCAP_CMD_CAP (1ULL << 4)	/* CMDCAP register present */
#define UPMD_DSA_GENCAP_DEST_READBACK (1ULL << 8)
#define UPMD_DSA_GENCAP_DRAIN_READBACK (1ULL << 9)
#define UPMD_DSA_GENCAP_MAX_XFER_SHIFT(g) (((g) >> 16) & 0x1fu)	/* max transfer = 2^n bytes */
#define UPMD_DSA_GENCAP_MAX_BATCH_SHIFT(g) (((g) >> 21) & 0xfu)	/* max batch = 2^n descriptors */
#define UPMD_DSA_GENCAP_MAX_IMS_MULT(g) (((g) >> 25) & 0x3fu)	/* IMS entries = 256 * n */
#define UPMD_DSA_GENCAP_CONFIG_SUPPORT (1ULL << 31)	/* GRPCFG/WQCFG writable */
#define UPMD_DSA_GENCAP_XFER_SHIFT_SHIFT 16
#define UPMD_DSA_GENCAP_BATCH_SHIFT_SHIFT 21

/* WQCAP */
#define UPMD_DSA_WQCAP_TOTAL_WQ_SIZE(w) ((w) & 0xffffu)	/* WQ entries, all WQs */
#define UPMD_DSA_WQCAP_NUM_WQS(w) (((w) >> 16) & 0xffu)
#define UPMD_DSA_WQCAP_WQCFG_SIZE(w) (((w) >> 24) & 0xfu)	/* entry = 32 << n bytes */
#define UPMD_DSA_WQCAP_SHARED_MODE (1ULL << 48)
#define UPMD_DSA_WQCAP_DEDICATED_MODE (1ULL << 49)
#define UPMD_DSA_WQCAP_ATS (1ULL << 50)
#define UPMD_DSA_WQCAP_PRIORITY (1ULL << 51)
#define UPMD_DSA_WQCAP_OCCUPANCY (1ULL << 52)
#define UPMD_DSA_WQCAP_OCCUPANCY_INT (1ULL << 53)
#define UPMD_DSA_WQCAP_OP_CONFIG (1ULL << 54)
#define UPMD_DSA_WQCAP_PRS (1ULL << 55)

/* GRPCAP */
#define UPMD_DSA_GRPCAP_NUM_GROUPS(g) ((g) & 0xffu)
#define UPMD_DSA_GRPCAP_TOTAL_RDBUFS(g) (((g) >> 8) & 0xffu)
#define UPMD_DSA_GRPCAP_RDBUF_CTRL (1ULL << 16)
#define UPMD_DSA_GRPCAP_RDBUF_LIMIT (1ULL << 17)

/* ENGCAP */
#define UPMD_DSA_ENGCAP_NUM_ENGINES(e) ((e) & 0xffu)

/* OPCAP: 4 qwords; opcode n is supported when bit (n % 64) of qword n / 64 is set. */
#define UPMD_DSA_OPCAP_QWORD(op) ((unsigned)(op) / 64u)
#define UPMD_DSA_OPCAP_BIT(op) (1ULL << ((unsigned)(op) % 64u))

/* TABLE_OFFSET: table offsets from BAR0 in units of 0x100 bytes. */
#define UPMD_DSA_TABLE_MULT 0x100u
#define UPMD_DSA_TABLE_GRPCFG(q0) (((q0) & 0xffffu) * UPMD_DSA_TABLE_MULT)		/* qword 0 bits 15:0 */
#define UPMD_DSA_TABLE_WQCFG(q0) ((((q0) >> 16) & 0xffffu) * UPMD_DSA_TABLE_MULT)	/* qword 0 bits 31:16 */
#define UPMD_DSA_TABLE_MSIX_PERM(q0) ((((q0) >> 32) & 0xffffu) * UPMD_DSA_TABLE_MULT)	/* qword 0 bits 47:32 */
#define UPMD_DSA_TABLE_IMS(q0) ((((q0) >> 48) & 0xffffu) * UPMD_DSA_TABLE_MULT)	/* qword 0 bits 63:48 */
#define UPMD_DSA_TABLE_PERFMON(q1) (((q1) & 0xffffu) * UPMD_DSA_TABLE_MULT)		/* qword 1 bits 15:0 */

/* GENCFG */
#define UPMD_DSA_GENCFG_RDBUF_LIMIT(c) ((c) & 0xffu)
#define UPMD_DSA_GENCFG_USER_INT_EN (1u << 12)

/* GENCTRL */
#define UPMD_DSA_GENCTRL_SWERR_INT_EN (1u << 0)
#define UPMD_DSA_GENCTRL_HALT_INT_EN (1u << 1)

/* GENSTS: bits 1:0 device state, 3:2 reset type needed when halted. */
#define UPMD_DSA_GENSTS_STATE(s) ((s) & 0x3u)
#define UPMD_DSA_GENSTS_STATE_DISABLED 0u
#define UPMD_DSA_GENSTS_STATE_ENABLED 1u
#define UPMD_DSA_GENSTS_STATE_DRAIN 2u
#define UPMD_DSA_GENSTS_STATE_HALT 3u
#define UPMD_DSA_GENSTS_RESET_TYPE(s) (((s) >> 2) & 0x3u)	/* 0 software, 1 FLR, 2 warm, 3 cold */

/* INTCAUSE (write 1 to clear) */
#define UPMD_DSA_INTCAUSE_SWERR (1u << 0)
#define UPMD_DSA_INTCAUSE_CMD (1u << 1)
#define UPMD_DSA_INTCAUSE_OCCUPANCY (1u << 2)
#define UPMD_DSA_INTCAUSE_PERFMON (1u << 3)
#define UPMD_DSA_INTCAUSE_HALT (1u << 4)

/* CMD: bits 19:0 operand, 24:20 command, 31 request a completion interrupt. */
#define UPMD_DSA_CMD(cmd, operand) \
	((uint32_t)((((uint32_t)(cmd) & 0x1fu) << 20) | ((uint32_t)(operand) & 0xfffffu)))
#define UPMD_DSA_CMD_CODE(v) (((v) >> 20) & 0x1fu)
#define UPMD_DSA_CMD_OPERAND(v) ((v) & 0xfffffu)
#define UPMD_DSA_CMD_INT_REQ (1u << 31)

#define UPMD_DSA_CMD_ENABLE_DEVICE 0x01
#define UPMD_DSA_CMD_DISABLE_DEVICE 0x02
#define UPMD_DSA_CMD_DRAIN_ALL 0x03
#define UPMD_DSA_CMD_ABORT_ALL 0x04
#define UPMD_DSA_CMD_RESET_DEVICE 0x05
#define UPMD_DSA_CMD_ENABLE_WQ 0x06	/* operand: WQ index */
#define UPMD_DSA_CMD_DISABLE_WQ 0x07	/* operand: WQ bitmap, see below */
#define UPMD_DSA_CMD_DRAIN_WQ 0x08	/* operand: WQ bitmap */
#define UPMD_DSA_CMD_ABORT_WQ 0x09	/* operand: WQ bitmap */
#define UPMD_DSA_CMD_RESET_WQ 0x0a	/* operand: WQ bitmap */
#define UPMD_DSA_CMD_DRAIN_PASID 0x0b	/* operand: PASID */
#define UPMD_DSA_CMD_ABORT_PASID 0x0c	/* operand: PASID */
#define UPMD_DSA_CMD_REQUEST_INT_HANDLE 0x0d
#define UPMD_DSA_CMD_RELEASE_INT_HANDLE 0x0e

/*
 * Operand of Disable/Drain/Abort/Reset WQ: bits 15:0 a bitmap of 16 WQs,
 * bits 19:16 which block of 16 WQs the bitmap addresses.
 */
#define UPMD_DSA_CMD_WQ_OPERAND(wq) \
	((uint32_t)((1u << ((unsigned)(wq) % 16u)) | (((unsigned)(wq) / 16u) << 16)))

/* CMDSTATUS: bits 7:0 error, 23:8 result, 31 command active. */
#define UPMD_DSA_CMDSTS_ERR(v) ((v) & 0xffu)
#define UPMD_DSA_CMDSTS_RESULT(v) (((v) >> 8) & 0xffffu)
#define UPMD_DSA_CMDSTS_ACTIVE (1u << 31)

#define UPMD_DSA_CMDSTS_SUCCESS 0x00
#define UPMD_DSA_CMDSTS_INVAL_CMD 0x01
#define UPMD_DSA_CMDSTS_INVAL_WQIDX 0x02
#define UPMD_DSA_CMDSTS_HW_ERR 0x03
/* Enable Device */
#define UPMD_DSA_CMDSTS_ERR_DEV_ENABLED 0x10	/* device already enabled */
#define UPMD_DSA_CMDSTS_ERR_CONFIG 0x11		/* configuration error */
#define UPMD_DSA_CMDSTS_ERR_BUSMASTER_EN 0x12	/* PCI bus master disabled */
#define UPMD_DSA_CMDSTS_ERR_PASID_INVAL 0x13	/* PASID enabled incorrectly */
#define UPMD_DSA_CMDSTS_ERR_WQ_SIZE_ERANGE 0x14	/* sum of WQ sizes > total */
#define UPMD_DSA_CMDSTS_ERR_GRP_CONFIG 0x15	/* a WQ in no group / in several */
#define UPMD_DSA_CMDSTS_ERR_GRP_CONFIG2 0x16	/* a group with WQs and no engine */
#define UPMD_DSA_CMDSTS_ERR_GRP_CONFIG3 0x17	/* an engine in several groups */
#define UPMD_DSA_CMDSTS_ERR_GRP_CONFIG4 0x18	/* read-buffer configuration */
/* Enable WQ */
#define UPMD_DSA_CMDSTS_ERR_DEV_NOTEN 0x20	/* device not enabled */
#define UPMD_DSA_CMDSTS_ERR_WQ_ENABLED 0x21	/* WQ already enabled */
#define UPMD_DSA_CMDSTS_ERR_WQ_SIZE 0x22	/* WQ size is 0 */
#define UPMD_DSA_CMDSTS_ERR_WQ_PRIOR 0x23	/* priority 0 */
#define UPMD_DSA_CMDSTS_ERR_WQ_MODE 0x24	/* mode not supported */
#define UPMD_DSA_CMDSTS_ERR_BOF_EN 0x25		/* BOF enabled without support */
#define UPMD_DSA_CMDSTS_ERR_PASID_EN 0x26	/* PASID not enabled where required */
#define UPMD_DSA_CMDSTS_ERR_MAX_BATCH_SIZE 0x27
#define UPMD_DSA_CMDSTS_ERR_MAX_XFER_SIZE 0x28
/* Disable Device */
#define UPMD_DSA_CMDSTS_ERR_DIS_DEV_EN 0x31	/* device is not enabled */
/* Disable, Drain, Abort, Reset WQ */
#define UPMD_DSA_CMDSTS_ERR_DEV_NOT_EN 0x32	/* device is not enabled */
/* Request Interrupt Handle */
#define UPMD_DSA_CMDSTS_ERR_INVAL_INT_IDX 0x41
#define UPMD_DSA_CMDSTS_ERR_NO_HANDLE 0x42

/*
 * SWERR: 4 qwords. Qword 0 bits 0 valid, 1 overflow (both RW1C: write
 * them back to clear), 2 descriptor valid, 3 WQ index valid, 4 batch, 5
 * fault R/W (1 write), 6 privileged, 15:8 error code (a completion status
 * code), 23:16 WQ index, 39:32 operation, 59:40 PASID. Qword 1 bits 15:0
 * batch index, 63:32 invalid flags. Qword 2 fault address.
 */
#define UPMD_DSA_SWERR_VALID (1ULL << 0)
#define UPMD_DSA_SWERR_OVERFLOW (1ULL << 1)
#define UPMD_DSA_SWERR_DESC_VALID (1ULL << 2)
#define UPMD_DSA_SWERR_WQ_IDX_VALID (1ULL << 3)
#define UPMD_DSA_SWERR_BATCH (1ULL << 4)
#define UPMD_DSA_SWERR_FAULT_RW (1ULL << 5)
#define UPMD_DSA_SWERR_PRIV (1ULL << 6)
#define UPMD_DSA_SWERR_ERROR(q0) (((q0) >> 8) & 0xffu)
#define UPMD_DSA_SWERR_WQ_IDX(q0) (((q0) >> 16) & 0xffu)
#define UPMD_DSA_SWERR_OPERATION(q0) (((q0) >> 32) & 0xffu)
#define UPMD_DSA_SWERR_PASID(q0) (((q0) >> 40) & 0xfffffu)
#define UPMD_DSA_SWERR_BATCH_IDX(q1) ((q1) & 0xffffu)
#define UPMD_DSA_SWERR_INVALID_FLAGS(q1) ((q1) >> 32)
#define UPMD_DSA_SWERR_ERROR_SHIFT 8
#define UPMD_DSA_SWERR_WQ_IDX_SHIFT 16
#define UPMD_DSA_SWERR_OPERATION_SHIFT 32
#define UPMD_DSA_SWERR_PASID_SHIFT 40

/* ---- GRPCFG table: one 64-byte entry a group ------------------------------ */

struct upmd_dsa_grpcfg {
	uint64_t wqs[4];	/* bitmap of the WQs in the group (256 WQs) */
	uint64_t engines;	/* bitmap of the engines in the group */
	uint64_t flags;		/* traffic classes, read buffers */
	uint64_t rsvd[2];
};
_Static_assert(sizeof(struct upmd_dsa_grpcfg) == 64, "a GRPCFG entry is 64 bytes");
_Static_assert(offsetof(struct upmd_dsa_grpcfg, engines) == 32, "GRPENGCFG at byte 32");
_Static_assert(offsetof(struct upmd_dsa_grpcfg, flags) == 40, "GRPFLAGS at byte 40");

#define UPMD_DSA_GRPCFG_SIZE 64u
#define UPMD_DSA_GRPCFG_WQS 0u		/* offsets within an entry */
#define UPMD_DSA_GRPCFG_ENGINES 32u
#define UPMD_DSA_GRPCFG_FLAGS 40u
#define UPMD_DSA_GRPFLAGS_TC_A(f) ((f) & 0x7u)
#define UPMD_DSA_GRPFLAGS_TC_B(f) (((f) >> 3) & 0x7u)

/* ---- WQCFG table: one 32-byte entry a WQ (spec 1.0) ----------------------- */

struct upmd_dsa_wqcfg {
	uint32_t size;		/* dword 0: bits 15:0 WQ size (entries) */
	uint32_t threshold;	/* dword 1: bits 15:0 shared-WQ threshold */
	uint32_t mode;		/* dword 2: mode, BOF, priority, PASID; see below */
	uint32_t limits;	/* dword 3: bits 4:0 max transfer shift, 8:5 max batch shift */
	uint32_t occ_int;	/* dword 4: occupancy interrupt handle */
	uint32_t occ_limit;	/* dword 5: occupancy limit, interrupt enable */
	uint32_t state;		/* dword 6: RO bits 15:0 occupancy, 31:30 WQ state */
	uint32_t rsvd;		/* dword 7 */
};
_Static_assert(sizeof(struct upmd_dsa_wqcfg) == 32, "a WQCFG entry is 32 bytes (spec 1.0)");
_Static_assert(offsetof(struct upmd_dsa_wqcfg, mode) == 8, "WQ mode dword at byte 8");
_Static_assert(offsetof(struct upmd_dsa_wqcfg, state) == 24, "WQ state dword at byte 24");

#define UPMD_DSA_WQCFG_SIZE 32u
#define UPMD_DSA_WQCFG_DW_SIZE 0u	/* byte offsets within an entry */
#define UPMD_DSA_WQCFG_DW_THRESHOLD 4u
#define UPMD_DSA_WQCFG_DW_MODE 8u
#define UPMD_DSA_WQCFG_DW_LIMITS 12u
#define UPMD_DSA_WQCFG_DW_OCC_INT 16u
#define UPMD_DSA_WQCFG_DW_OCC_LIMIT 20u
#define UPMD_DSA_WQCFG_DW_STATE 24u

#define UPMD_DSA_WQCFG_SIZE_MASK 0xffffu
#define UPMD_DSA_WQCFG_THRESHOLD_MASK 0xffffu
/* dword 2 */
#define UPMD_DSA_WQCFG_MODE_DEDICATED (1u << 0)	/* 1 dedicated, 0 shared */
#define UPMD_DSA_WQCFG_BOF_EN (1u << 1)
#define UPMD_DSA_WQCFG_ATS_DISABLE (1u << 2)
#define UPMD_DSA_WQCFG_PRS_DISABLE (1u << 3)
#define UPMD_DSA_WQCFG_PRIORITY(v) (((v) & 0xfu) << 4)
#define UPMD_DSA_WQCFG_GET_PRIORITY(d) (((d) >> 4) & 0xfu)
#define UPMD_DSA_WQCFG_PASID(p) (((uint32_t)(p) & 0xfffffu) << 8)
#define UPMD_DSA_WQCFG_GET_PASID(d) (((d) >> 8) & 0xfffffu)
#define UPMD_DSA_WQCFG_PASID_EN (1u << 28)
#define UPMD_DSA_WQCFG_PRIV (1u << 29)
/* dword 3 */
#define UPMD_DSA_WQCFG_MAX_XFER_SHIFT(v) ((uint32_t)(v) & 0x1fu)
#define UPMD_DSA_WQCFG_MAX_BATCH_SHIFT(v) (((uint32_t)(v) & 0xfu) << 5)
#define UPMD_DSA_WQCFG_GET_MAX_XFER_SHIFT(d) ((d) & 0x1fu)
#define UPMD_DSA_WQCFG_GET_MAX_BATCH_SHIFT(d) (((d) >> 5) & 0xfu)
/* dword 6 (read-only) */
#define UPMD_DSA_WQCFG_OCCUPANCY(d) ((d) & 0xffffu)
#define UPMD_DSA_WQCFG_MODE_SUPPORT (1u << 29)
#define UPMD_DSA_WQCFG_WQ_STATE(d) (((d) >> 30) & 0x3u)
#define UPMD_DSA_WQ_STATE_DISABLED 0u
#define UPMD_DSA_WQ_STATE_ENABLED 1u

/* ---- BAR2 portals --------------------------------------------------------- */

/*
 * Each WQ owns 4 consecutive 4 KiB portal pages: unlimited MSI-X, limited
 * MSI-X, unlimited IMS, limited IMS. A descriptor is submitted with one
 * 64-byte store anywhere in a page: MOVDIR64B to a dedicated WQ, ENQCMD(S)
 * to a shared WQ (ENQCMD reports ZF=1, "retry", when the WQ is full).
 */
#define UPMD_DSA_PORTAL_SIZE 4096u
#define UPMD_DSA_PORTALS_PER_WQ 4u
#define UPMD_DSA_PORTAL_UNLIMITED 0u
#define UPMD_DSA_PORTAL_LIMITED 1u
#define UPMD_DSA_PORTAL_IRQ_MSIX 0u
#define UPMD_DSA_PORTAL_IRQ_IMS 1u
/** Offset in BAR2 of WQ @p wq's portal (@p prot limited or not, @p irq MSI-X or IMS). */
#define UPMD_DSA_PORTAL_OFFSET(wq, prot, irq) \
	(((size_t)(wq) * UPMD_DSA_PORTALS_PER_WQ + (size_t)(irq) * 2u + (size_t)(prot)) * \
	 UPMD_DSA_PORTAL_SIZE)

/* ---- descriptors ----------------------------------------------------------- */

/* Opcodes */
#define UPMD_DSA_OP_NOOP 0x00
#define UPMD_DSA_OP_BATCH 0x01
#define UPMD_DSA_OP_DRAIN 0x02
#define UPMD_DSA_OP_MEMMOVE 0x03
#define UPMD_DSA_OP_FILL 0x04
#define UPMD_DSA_OP_COMPARE 0x05
#define UPMD_DSA_OP_COMPVAL 0x06	/* compare with an 8-byte pattern */
#define UPMD_DSA_OP_CR_DELTA 0x07
#define UPMD_DSA_OP_AP_DELTA 0x08
#define UPMD_DSA_OP_DUALCAST 0x09
#define UPMD_DSA_OP_CRCGEN 0x10		/* CRC32C over the source */
#define UPMD_DSA_OP_COPY_CRC 0x11
#define UPMD_DSA_OP_DIF_CHECK 0x12
#define UPMD_DSA_OP_DIF_INS 0x13
#define UPMD_DSA_OP_DIF_STRP 0x14
#define UPMD_DSA_OP_DIF_UPDT 0x15
#define UPMD_DSA_OP_CFLUSH 0x20

/* Descriptor flags: bits 23:0 of the dword at byte 4 (bits 23:16 op-specific). */
#define UPMD_DSA_F_FENCE (1u << 0)	/* in a batch: wait for, and stop on failure of, earlier ones */
#define UPMD_DSA_F_BOF (1u << 1)	/* block on fault (if the WQ enables it) */
#define UPMD_DSA_F_CRAV (1u << 2)	/* completion record address valid */
#define UPMD_DSA_F_RCR (1u << 3)	/* request a completion record (also on success) */
#define UPMD_DSA_F_RCI (1u << 4)	/* request a completion interrupt */
#define UPMD_DSA_F_CRSTS (1u << 5)	/* completion record steering tag selector */
#define UPMD_DSA_F_CR (1u << 7)		/* check result (compare ops) */
#define UPMD_DSA_F_CC (1u << 8)		/* cache control: destination writes to cache */
#define UPMD_DSA_F_ADDR1_TCS (1u << 9)
#define UPMD_DSA_F_ADDR2_TCS (1u << 10)
#define UPMD_DSA_F_ADDR3_TCS (1u << 11)
#define UPMD_DSA_F_CR_TCS (1u << 12)
#define UPMD_DSA_F_STORD (1u << 13)	/* strict ordering */
#define UPMD_DSA_F_DRDBK (1u << 14)	/* destination readback */
#define UPMD_DSA_F_DSTS (1u << 15)
#define UPMD_DSA_F_CRC_READ_SEED (1u << 16)	/* CRC ops: read the seed from seed_addr */
#define UPMD_DSA_FLAGS_MASK 0xffffffu

/* Dword 0: bits 19:0 PASID, 31 U/S (privileged). Dword 1: flags, bits 31:24 opcode. */
#define UPMD_DSA_DESC_PASID(p) ((uint32_t)(p) & 0xfffffu)
#define UPMD_DSA_DESC_PRIV (1u << 31)
#define UPMD_DSA_DESC_OP_FLAGS(op, flags) \
	((uint32_t)((((uint32_t)(op) & 0xffu) << 24) | ((uint32_t)(flags) & UPMD_DSA_FLAGS_MASK)))
#define UPMD_DSA_DESC_OPCODE(opf) (((opf) >> 24) & 0xffu)
#define UPMD_DSA_DESC_FLAGS(opf) ((opf) & UPMD_DSA_FLAGS_MASK)

/**
 * A work descriptor: 64 bytes, 64-byte aligned when it sits in a batch's
 * descriptor list. The PASID dword is used only by ENQCMDS (privileged
 * submission); ENQCMD fills it from IA32_PASID and a dedicated WQ uses the
 * PASID in its WQCFG.
 */
struct upmd_dsa_desc {
	uint32_t pasid;		/* bits 19:0 PASID, 31 privileged */
	uint32_t op_flags;	/* bits 23:0 flags, 31:24 opcode */
	uint64_t completion_addr;	/* 32-byte aligned */
	union {
		uint64_t src_addr;
		uint64_t pattern;		/* fill */
		uint64_t desc_list_addr;	/* batch, 64-byte aligned */
		uint64_t rdback_addr;		/* drain readback */
	};
	union {
		uint64_t dst_addr;
		uint64_t src2_addr;		/* compare */
		uint64_t comp_pattern;		/* compare pattern */
		uint64_t rdback_addr2;
	};
	union {
		uint32_t xfer_size;	/* bytes */
		uint32_t desc_count;	/* batch */
	};
	uint16_t int_handle;
	uint16_t rsvd1;
	union {
		uint8_t expected_res;	/* compare ops with UPMD_DSA_F_CR */
		uint64_t dest2;		/* dualcast */
		struct {
			uint32_t crc_seed;
			uint32_t crc_rsvd;
			uint64_t crc_seed_addr;	/* with UPMD_DSA_F_CRC_READ_SEED */
		};
		uint8_t op_specific[24];
	};
};
_Static_assert(sizeof(struct upmd_dsa_desc) == 64, "a DSA descriptor is 64 bytes");
_Static_assert(offsetof(struct upmd_dsa_desc, op_flags) == 4, "flags/opcode at byte 4");
_Static_assert(offsetof(struct upmd_dsa_desc, completion_addr) == 8, "completion address at byte 8");
_Static_assert(offsetof(struct upmd_dsa_desc, src_addr) == 16, "source address at byte 16");
_Static_assert(offsetof(struct upmd_dsa_desc, dst_addr) == 24, "destination address at byte 24");
_Static_assert(offsetof(struct upmd_dsa_desc, xfer_size) == 32, "transfer size at byte 32");
_Static_assert(offsetof(struct upmd_dsa_desc, int_handle) == 36, "interrupt handle at byte 36");
_Static_assert(offsetof(struct upmd_dsa_desc, expected_res) == 40, "expected result at byte 40");
_Static_assert(offsetof(struct upmd_dsa_desc, crc_seed) == 40, "CRC seed at byte 40");
_Static_assert(offsetof(struct upmd_dsa_desc, crc_seed_addr) == 48, "CRC seed address at byte 48");
_Static_assert(offsetof(struct upmd_dsa_desc, dest2) == 40, "dualcast destination 2 at byte 40");

/* ---- completion records ---------------------------------------------------- */

/**
 * A completion record: 32 bytes, 32-byte aligned. The device writes status
 * last; software polls status (an acquire load) and zeroes it before reuse.
 * For a batch, bytes_completed is the number of descriptors completed.
 */
struct upmd_dsa_cr {
	uint8_t status;		/* bits 6:0 status code, 7 fault on a write */
	uint8_t result;		/* compare: 0 equal, 1 different */
	uint16_t rsvd;
	union {
		uint32_t bytes_completed;
		uint32_t descs_completed;	/* batch */
	};
	uint64_t fault_addr;
	union {
		uint32_t crc_val;	/* CRC ops */
		uint32_t invalid_flags;	/* status UPMD_DSA_COMP_INVALID_FLAGS: bits 23:0 */
		uint8_t op_specific[16];
	};
};
_Static_assert(sizeof(struct upmd_dsa_cr) == 32, "a DSA completion record is 32 bytes");
_Static_assert(offsetof(struct upmd_dsa_cr, result) == 1, "result at byte 1");
_Static_assert(offsetof(struct upmd_dsa_cr, bytes_completed) == 4, "bytes completed at byte 4");
_Static_assert(offsetof(struct upmd_dsa_cr, fault_addr) == 8, "fault address at byte 8");
_Static_assert(offsetof(struct upmd_dsa_cr, crc_val) == 16, "CRC value at byte 16");

#define UPMD_DSA_CR_ALIGN 32u
#define UPMD_DSA_DESC_ALIGN 64u

/* Completion status: bits 6:0 of the status byte; bit 7 = the faulting access was a write. */
#define UPMD_DSA_COMP_STATUS(s) ((s) & 0x7fu)
#define UPMD_DSA_COMP_STATUS_WRITE 0x80u

#define UPMD_DSA_COMP_NONE 0x00			/* not yet completed */
#define UPMD_DSA_COMP_SUCCESS 0x01
#define UPMD_DSA_COMP_SUCCESS_PRED 0x02		/* success with false predicate */
#define UPMD_DSA_COMP_PAGE_FAULT_NOBOF 0x03	/* page fault, BOF clear or not enabled */
#define UPMD_DSA_COMP_PAGE_FAULT_IR 0x04	/* page fault, invalid page response */
#define UPMD_DSA_COMP_BATCH_FAIL 0x05		/* a descriptor in the batch failed */
#define UPMD_DSA_COMP_BATCH_PAGE_FAULT 0x06	/* page fault reading the descriptor list */
#define UPMD_DSA_COMP_DR_OFFSET_NOINC 0x07
#define UPMD_DSA_COMP_DR_OFFSET_ERANGE 0x08
#define UPMD_DSA_COMP_DIF_ERR 0x09
#define UPMD_DSA_COMP_BAD_OPCODE 0x10		/* unsupported / not allowed here */
#define UPMD_DSA_COMP_INVALID_FLAGS 0x11
#define UPMD_DSA_COMP_NOZERO_RESERVE 0x12	/* a reserved field is not zero */
#define UPMD_DSA_COMP_XFER_ERANGE 0x13		/* transfer size 0 or too large */
#define UPMD_DSA_COMP_DESC_CNT_ERANGE 0x14	/* batch count < 2 or > max batch */
#define UPMD_DSA_COMP_DR_ERANGE 0x15
#define UPMD_DSA_COMP_OVERLAP_BUFFERS 0x16
#define UPMD_DSA_COMP_DCAST_ERR 0x17
#define UPMD_DSA_COMP_DESCLIST_ALIGN 0x18	/* batch list not 64-byte aligned */
#define UPMD_DSA_COMP_INT_HANDLE_INVAL 0x19
#define UPMD_DSA_COMP_CRA_XLAT 0x1a		/* completion record address translation failed */
#define UPMD_DSA_COMP_CRA_ALIGN 0x1b		/* completion record address not 32-byte aligned */
#define UPMD_DSA_COMP_ADDR_ALIGN 0x1c
#define UPMD_DSA_COMP_PRIV_BAD 0x1d
#define UPMD_DSA_COMP_TRAFFIC_CLASS_CONF 0x1e
#define UPMD_DSA_COMP_PFAULT_RDBA 0x1f
#define UPMD_DSA_COMP_HW_ERR1 0x20
#define UPMD_DSA_COMP_HW_ERR_DRB 0x21
#define UPMD_DSA_COMP_TRANSLATION_FAIL 0x22	/* address translation failed (not a page fault) */

#ifdef __cplusplus
}
#endif

#endif /* UPMD_DSA_H */
