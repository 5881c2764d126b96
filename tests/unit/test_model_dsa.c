/* The DSA device model, driven through the kops table and raw registers only: capabilities, configuration and commands with their refusals, dedicated-WQ portal submission of every operation, batches, page faults, SWERR, shared WQs through the emulated ENQCMD, drain/abort, resets, arguments. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <upmd/common.h>
#include <upmd/dsa.h>
#include <upmd/kops.h>
#include <upmd/model.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#include "upmd_test.h"

#define BDF "0000:00:04.0"
#define PG 4096UL
#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define CFG_OFF VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX)
#define RAM_PAGES 64UL
#define BAR0_LEN 0x4000UL
#define BAR2_LEN 0x20000UL
#define PASID_OK 7u		/* attached to the IOAS */
#define PASID_NONE 9u		/* never attached */

/* Spec facts written out here too, so a wrong header shows as a failure. */
_Static_assert(UPMD_DSA_REG_CMD == 0xa0 && UPMD_DSA_REG_CMDSTATUS == 0xa8, "CMD, CMDSTATUS");
_Static_assert(UPMD_DSA_REG_SWERR == 0xc0 && UPMD_DSA_REG_GENSTS == 0x90, "SWERR, GENSTS");
_Static_assert(UPMD_DSA_OP_MEMMOVE == 3 && UPMD_DSA_OP_CRCGEN == 0x10, "opcodes");
_Static_assert(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 3) == 0x00600003u, "CMD encoding");

/* RAM layout (pages). */
#define P_CR 0			/* completion records, 32 bytes each */
#define P_LIST 1		/* batch descriptor lists */
#define P_DATA 8		/* 8..: data */

static struct upmd_model *m;
static int ifd, dfd;
static uint32_t ioas;
static volatile uint8_t *bar, *portals;
static uint8_t *ram;
static uint64_t ram_iova;
static unsigned submitted[8];	/* per dedicated WQ: descriptors written since enable */

static uint32_t r32(unsigned o) { return *(volatile uint32_t *)(bar + o); }
static uint64_t r64(unsigned o) { return *(volatile uint64_t *)(bar + o); }
static void w32(unsigned o, uint32_t v) { *(volatile uint32_t *)(bar + o) = v; }
static void w64(unsigned o, uint64_t v) { *(volatile uint64_t *)(bar + o) = v; }

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t *page(unsigned p) { return ram + p * PG; }
static uint64_t iova(const void *va) { return ram_iova + (uint64_t)((const uint8_t *)va - ram); }
static struct upmd_dsa_cr *cr(unsigned i) { return (struct upmd_dsa_cr *)(void *)(page(P_CR) + 32 * i); }

static struct upmd_model_dsa_stats dstats(void)
{
	struct upmd_model_dsa_stats st;

	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(upmd_model_dsa_stats(m, BDF, &st), 0);
	return st;
}

/* ---- fixture ------------------------------------------------------------------------ */

static int attach_pasid(uint32_t pasid)
{
	struct vfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a), .flags = VFIO_DEVICE_ATTACH_PASID, .pt_id = ioas, .pasid = pasid,
	};

	return upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

static void set_master(bool on)
{
	uint16_t cmd;

	CU_ASSERT_EQUAL(upmd_k_pread(dfd, &cmd, 2, (off_t)(CFG_OFF + 4)), 2);
	cmd = on ? (uint16_t)(cmd | 0x6) : (uint16_t)(cmd & ~0x4);
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &cmd, 2, (off_t)(CFG_OFF + 4)), 2);
}

static int up(const char *spec)
{
	void *p = NULL;

	if (model_open_device(spec, "/dev/vfio/devices/vfio0", &m, &ifd, &ioas, &dfd) < 0)
		return -1;
	CU_ASSERT_EQUAL_FATAL(attach_pasid(PASID_OK), 0);
	set_master(true);
	CU_ASSERT_EQUAL_FATAL(upmd_k_mmap(NULL, BAR0_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, dfd,
					  (off_t)VFIO_PCI_INDEX_TO_OFFSET(0), &p), 0);
	bar = p;
	CU_ASSERT_EQUAL_FATAL(upmd_k_mmap(NULL, BAR2_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, dfd,
					  (off_t)VFIO_PCI_INDEX_TO_OFFSET(2), &p), 0);
	portals = p;
	model_map_ram(ifd, ioas, RAM_PAGES * PG, &ram, &ram_iova);
	memset(submitted, 0, sizeof(submitted));
	upmd_model_stats_reset(m);
	return 0;
}

static void down(void)
{
	struct upmd_model_fault f;

	while (upmd_model_fault_pop(m, &f) == 0)
		;
	CU_ASSERT_EQUAL(upmd_k_munmap((void *)bar, BAR0_LEN), 0);
	CU_ASSERT_EQUAL(upmd_k_munmap((void *)portals, BAR2_LEN), 0);
	CU_ASSERT_EQUAL(upmd_k_close(dfd), 0);
	CU_ASSERT_EQUAL(upmd_k_close(ifd), 0);
	munmap(ram, RAM_PAGES * PG);
	assert_model_clean(m);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(m);
	m = NULL;
}

/* ---- registers and commands -------------------------------------------------------------- */

/* Write CMD, wait until CMDSTATUS is no longer active; its error byte. */
static int cmd(uint32_t v)
{
	uint64_t deadline = now_ms() + 2000;
	uint32_t st;

	w32(UPMD_DSA_REG_CMD, v);
	while ((st = r32(UPMD_DSA_REG_CMDSTATUS)) & UPMD_DSA_CMDSTS_ACTIVE) {
		if (now_ms() > deadline) {
			CU_FAIL("command still active after 2 s");
			return -1;
		}
		usleep(20);
	}
	return (int)UPMD_DSA_CMDSTS_ERR(st);
}

static unsigned grpcfg(void) { return UPMD_DSA_TABLE_GRPCFG(r64(UPMD_DSA_REG_TABLE_OFFSET)); }
static unsigned wqcfg(unsigned wq, unsigned dw)
{
	return UPMD_DSA_TABLE_WQCFG(r64(UPMD_DSA_REG_TABLE_OFFSET)) + wq * UPMD_DSA_WQCFG_SIZE + dw;
}

static void group(unsigned g, uint64_t wqs, uint64_t engines)
{
	w64(grpcfg() + g * UPMD_DSA_GRPCFG_SIZE + UPMD_DSA_GRPCFG_WQS, wqs);
	w64(grpcfg() + g * UPMD_DSA_GRPCFG_SIZE + UPMD_DSA_GRPCFG_ENGINES, engines);
}

static void wq_conf(unsigned wq, unsigned size, unsigned thresh, uint32_t mode)
{
	w32(wqcfg(wq, UPMD_DSA_WQCFG_DW_SIZE), size);
	w32(wqcfg(wq, UPMD_DSA_WQCFG_DW_THRESHOLD), thresh);
	w32(wqcfg(wq, UPMD_DSA_WQCFG_DW_MODE), mode);
}

#define DEDICATED (UPMD_DSA_WQCFG_MODE_DEDICATED | UPMD_DSA_WQCFG_PRIORITY(1))
#define SHARED (UPMD_DSA_WQCFG_PASID_EN | UPMD_DSA_WQCFG_PRIORITY(1))

/* WQ 0 dedicated (size 32, no PASID), WQ 1 dedicated with PASID @pasid1,
 * WQ 2 shared (size 8, threshold 4); all in group 0 with engines 0-1. */
static void bring_up(uint32_t pasid1)
{
	group(0, 0x7, 0x3);
	wq_conf(0, 32, 0, DEDICATED);
	wq_conf(1, 16, 0, DEDICATED | UPMD_DSA_WQCFG_PASID_EN | UPMD_DSA_WQCFG_PASID(pasid1));
	wq_conf(2, 8, 4, SHARED);
	CU_ASSERT_EQUAL_FATAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 1)), 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 2)), 0);
	memset(submitted, 0, sizeof(submitted));
}

/* ---- descriptors ------------------------------------------------------------------------ */

static struct upmd_dsa_desc desc(unsigned op, uint32_t flags, uint64_t a, uint64_t b, uint32_t size,
				 unsigned cr_idx)
{
	struct upmd_dsa_desc x;

	memset(&x, 0, sizeof(x));
	x.op_flags = UPMD_DSA_DESC_OP_FLAGS(op, flags | UPMD_DSA_F_CRAV | UPMD_DSA_F_RCR);
	x.completion_addr = iova(cr(cr_idx));
	x.src_addr = a;
	x.dst_addr = b;
	x.xfer_size = size;
	memset(cr(cr_idx), 0, 32);
	return x;
}

/* The model's portal protocol: slot n % 64, first qword last (release). */
static void submit(unsigned wq, const struct upmd_dsa_desc *x)
{
	volatile uint64_t *slot = (volatile uint64_t *)(void *)(portals + UPMD_DSA_PORTAL_OFFSET(wq, 0, 0) +
								 64 * (submitted[wq] % 64));
	uint64_t q[8];
	unsigned k;

	memcpy(q, x, 64);
	for (k = 1; k < 8; k++)
		slot[k] = q[k];
	__atomic_store_n((uint64_t *)(uintptr_t)slot, q[0], __ATOMIC_RELEASE);
	submitted[wq]++;
}

static uint8_t wait_cr(unsigned i)
{
	uint64_t deadline = now_ms() + 2000;
	uint8_t st;

	while (!(st = __atomic_load_n(&cr(i)->status, __ATOMIC_ACQUIRE))) {
		if (now_ms() > deadline)
			return 0;
		usleep(20);
	}
	return st;
}

static uint8_t run(unsigned wq, const struct upmd_dsa_desc *x, unsigned cr_idx)
{
	submit(wq, x);
	return wait_cr(cr_idx);
}

static void fill_rand(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 8)) ^ seed);
}

static uint32_t sw_crc32c(uint32_t seed, const uint8_t *p, size_t n)
{
	uint32_t c = ~seed;
	unsigned k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
	}
	return ~c;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_identity(void)
{
	uint8_t cfg[64];
	uint64_t g;

	if (up("dsa@" BDF) < 0)
		return;
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, cfg, sizeof(cfg), (off_t)CFG_OFF), (ssize_t)sizeof(cfg));
	CU_ASSERT_EQUAL(cfg[0] | cfg[1] << 8, 0x8086);
	CU_ASSERT_EQUAL(cfg[2] | cfg[3] << 8, 0x0b25);
	CU_ASSERT_EQUAL(cfg[9] | cfg[10] << 8 | cfg[11] << 16, 0x088000);
	CU_ASSERT_EQUAL(r32(UPMD_DSA_REG_VERSION), 0x100);
	g = r64(UPMD_DSA_REG_GENCAP);
	CU_ASSERT_EQUAL(UPMD_DSA_GENCAP_MAX_XFER_SHIFT(g), 31);
	CU_ASSERT_EQUAL(UPMD_DSA_GENCAP_MAX_BATCH_SHIFT(g), 10);
	CU_ASSERT_TRUE(g & UPMD_DSA_GENCAP_CONFIG_SUPPORT);
	CU_ASSERT_TRUE(g & UPMD_DSA_GENCAP_OVERLAP_COPY);
	CU_ASSERT_FALSE(g & UPMD_DSA_GENCAP_BOF);
	g = r64(UPMD_DSA_REG_WQCAP);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCAP_NUM_WQS(g), 4);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCAP_TOTAL_WQ_SIZE(g), 128);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCAP_WQCFG_SIZE(g), 0);	/* 32-byte entries */
	CU_ASSERT_TRUE((g & UPMD_DSA_WQCAP_SHARED_MODE) && (g & UPMD_DSA_WQCAP_DEDICATED_MODE));
	CU_ASSERT_EQUAL(UPMD_DSA_GRPCAP_NUM_GROUPS(r64(UPMD_DSA_REG_GRPCAP)), 2);
	CU_ASSERT_EQUAL(UPMD_DSA_ENGCAP_NUM_ENGINES(r64(UPMD_DSA_REG_ENGCAP)), 4);
	g = r64(UPMD_DSA_REG_OPCAP);
	CU_ASSERT_EQUAL(g & 0x3ff, 0x27f);	/* 0-6 and 9: no delta records */
	CU_ASSERT_EQUAL((g >> 16) & 0x3f, 0x3);	/* CRC, copy+CRC; no DIF */
	CU_ASSERT_EQUAL(r64(UPMD_DSA_REG_OPCAP + 8), 0);
	CU_ASSERT_EQUAL(grpcfg(), 0x400);
	CU_ASSERT_EQUAL(wqcfg(0, 0), 0x800);
	CU_ASSERT_EQUAL(UPMD_DSA_GENSTS_STATE(r32(UPMD_DSA_REG_GENSTS)), UPMD_DSA_GENSTS_STATE_DISABLED);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_WQ_STATE(r32(wqcfg(3, UPMD_DSA_WQCFG_DW_STATE))), 0);
	/* Read-only registers ignore stores. */
	w64(UPMD_DSA_REG_GENCAP, 0);
	CU_ASSERT_EQUAL(UPMD_DSA_GENCAP_MAX_BATCH_SHIFT(r64(UPMD_DSA_REG_GENCAP)), 10);
	w32(UPMD_DSA_REG_GENSTS, 1);
	CU_ASSERT_EQUAL(r32(UPMD_DSA_REG_GENSTS), 0);
	/* Configuration reads back while disabled, masked to its fields. */
	w32(wqcfg(1, UPMD_DSA_WQCFG_DW_SIZE), 0x12345);
	CU_ASSERT_EQUAL(r32(wqcfg(1, UPMD_DSA_WQCFG_DW_SIZE)), 0x2345);
	group(1, 0x2, 0x8);
	CU_ASSERT_EQUAL(r64(grpcfg() + 64 + 32), 0x8);
	down();
}

static void test_commands(void)
{
	struct upmd_model_dsa_stats st;

	if (up("dsa@" BDF) < 0)
		return;
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), UPMD_DSA_CMDSTS_ERR_DEV_NOTEN);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DISABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_DIS_DEV_EN);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DISABLE_WQ, UPMD_DSA_CMD_WQ_OPERAND(0))),
			UPMD_DSA_CMDSTS_ERR_DEV_NOT_EN);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(0x1d, 0)), UPMD_DSA_CMDSTS_INVAL_CMD);
	/* Configuration errors, one at a time. */
	wq_conf(0, 100, 0, DEDICATED);
	wq_conf(1, 29, 0, DEDICATED);
	group(0, 0x3, 0x1);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_WQ_SIZE_ERANGE);
	wq_conf(1, 28, 0, DEDICATED);
	group(0, 0x1, 0x1);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_GRP_CONFIG);
	group(1, 0x2, 0x0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_GRP_CONFIG2);
	group(1, 0x2, 0x3);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_GRP_CONFIG3);
	group(1, 0x2, 0x2);
	set_master(false);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_BUSMASTER_EN);
	set_master(true);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_GENSTS_STATE(r32(UPMD_DSA_REG_GENSTS)), UPMD_DSA_GENSTS_STATE_ENABLED);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), UPMD_DSA_CMDSTS_ERR_DEV_ENABLED);
	/* Groups and WQ sizes are fixed while enabled. */
	group(0, 0x0, 0x0);
	CU_ASSERT_EQUAL(r64(grpcfg() + UPMD_DSA_GRPCFG_WQS), 0x1);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_SIZE), 5);
	CU_ASSERT_EQUAL(r32(wqcfg(0, UPMD_DSA_WQCFG_DW_SIZE)), 100);
	/* Enable WQ refusals. */
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 4)), UPMD_DSA_CMDSTS_INVAL_WQIDX);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 2)), UPMD_DSA_CMDSTS_ERR_WQ_SIZE);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_MODE), UPMD_DSA_WQCFG_MODE_DEDICATED);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), UPMD_DSA_CMDSTS_ERR_WQ_PRIOR);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_MODE), DEDICATED | UPMD_DSA_WQCFG_BOF_EN);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), UPMD_DSA_CMDSTS_ERR_BOF_EN);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_MODE), UPMD_DSA_WQCFG_PRIORITY(1));	/* shared, no PASID */
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), UPMD_DSA_CMDSTS_ERR_PASID_EN);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_MODE), DEDICATED);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_LIMITS), UPMD_DSA_WQCFG_MAX_BATCH_SHIFT(11));
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), UPMD_DSA_CMDSTS_ERR_MAX_BATCH_SIZE);
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_LIMITS), UPMD_DSA_WQCFG_MAX_XFER_SHIFT(31) |
						UPMD_DSA_WQCFG_MAX_BATCH_SHIFT(10));
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_WQ_STATE(r32(wqcfg(0, UPMD_DSA_WQCFG_DW_STATE))),
			UPMD_DSA_WQ_STATE_ENABLED);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), UPMD_DSA_CMDSTS_ERR_WQ_ENABLED);
	/* An enabled WQ's configuration is read-only. */
	w32(wqcfg(0, UPMD_DSA_WQCFG_DW_MODE), 0);
	CU_ASSERT_EQUAL(r32(wqcfg(0, UPMD_DSA_WQCFG_DW_MODE)), DEDICATED);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DISABLE_WQ, UPMD_DSA_CMD_WQ_OPERAND(5))),
			UPMD_DSA_CMDSTS_INVAL_WQIDX);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DISABLE_WQ, UPMD_DSA_CMD_WQ_OPERAND(0))), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_WQ_STATE(r32(wqcfg(0, UPMD_DSA_WQCFG_DW_STATE))), 0);
	st = dstats();
	CU_ASSERT_EQUAL(st.wqs_enabled, 0);
	CU_ASSERT_EQUAL(st.gensts, UPMD_DSA_GENSTS_STATE_ENABLED);
	CU_ASSERT_TRUE(st.cmd_errors >= 14);
	/* A command with INT_REQ sets INTCAUSE.CMD (RW1C). */
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DRAIN_ALL, 0) | UPMD_DSA_CMD_INT_REQ), 0);
	CU_ASSERT_TRUE(r32(UPMD_DSA_REG_INTCAUSE) & UPMD_DSA_INTCAUSE_CMD);
	w32(UPMD_DSA_REG_INTCAUSE, UPMD_DSA_INTCAUSE_CMD);
	CU_ASSERT_FALSE(r32(UPMD_DSA_REG_INTCAUSE) & UPMD_DSA_INTCAUSE_CMD);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DISABLE_DEVICE, 0)), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_GENSTS_STATE(r32(UPMD_DSA_REG_GENSTS)), UPMD_DSA_GENSTS_STATE_DISABLED);
	down();
}

static void test_ops(void)
{
	uint8_t *src, *dst, *big;
	struct upmd_dsa_desc x;
	const size_t n = 10000;
	uint64_t pat = 0x0123456789abcdefULL;
	size_t i;

	if (up("dsa@" BDF) < 0)
		return;
	/* After up(): it maps the RAM anew. */
	src = page(P_DATA);
	dst = page(P_DATA + 8);
	big = page(P_DATA + 16);
	bring_up(PASID_OK);
	fill_rand(src, n, 1);
	memset(dst, 0xee, 3 * PG);
	/* memmove across pages */
	x = desc(UPMD_DSA_OP_MEMMOVE, UPMD_DSA_F_CC, iova(src), iova(dst), (uint32_t)n, 0);
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src, dst, n), 0);
	CU_ASSERT_EQUAL(dst[n], 0xee);
	/* fill: the 8-byte pattern from the destination's start */
	x = desc(UPMD_DSA_OP_FILL, 0, 0, iova(dst + 3), 5001, 1);
	x.pattern = pat;
	CU_ASSERT_EQUAL(run(0, &x, 1), UPMD_DSA_COMP_SUCCESS);
	for (i = 0; i < 5001; i++)
		if (dst[3 + i] != (uint8_t)(pat >> (8 * (i % 8))))
			break;
	CU_ASSERT_EQUAL(i, 5001);
	CU_ASSERT_EQUAL(dst[3 + 5001], src[3 + 5001]);
	/* compare: equal, then different at 4321 */
	memcpy(dst, src, n);
	x = desc(UPMD_DSA_OP_COMPARE, 0, iova(src), iova(dst), (uint32_t)n, 2);
	CU_ASSERT_EQUAL(run(0, &x, 2), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(2)->result, 0);
	dst[4321] ^= 1;
	x = desc(UPMD_DSA_OP_COMPARE, 0, iova(src), iova(dst), (uint32_t)n, 3);
	CU_ASSERT_EQUAL(run(0, &x, 3), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(3)->result, 1);
	CU_ASSERT_EQUAL(cr(3)->bytes_completed, 4321);
	/* check result: expected equal, found different -> false predicate */
	x = desc(UPMD_DSA_OP_COMPARE, UPMD_DSA_F_CR, iova(src), iova(dst), (uint32_t)n, 4);
	x.expected_res = 0;
	CU_ASSERT_EQUAL(run(0, &x, 4), UPMD_DSA_COMP_SUCCESS_PRED);
	x = desc(UPMD_DSA_OP_COMPARE, UPMD_DSA_F_CR, iova(src), iova(dst), (uint32_t)n, 5);
	x.expected_res = 1;
	CU_ASSERT_EQUAL(run(0, &x, 5), UPMD_DSA_COMP_SUCCESS);
	/* compare pattern */
	for (i = 0; i < 3000; i++)
		big[i] = (uint8_t)(pat >> (8 * (i % 8)));
	x = desc(UPMD_DSA_OP_COMPVAL, 0, iova(big), 0, 3000, 6);
	x.comp_pattern = pat;
	CU_ASSERT_EQUAL(run(0, &x, 6), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(6)->result, 0);
	big[2999] = 0;
	x = desc(UPMD_DSA_OP_COMPVAL, 0, iova(big), 0, 3000, 7);
	x.comp_pattern = pat;
	CU_ASSERT_EQUAL(run(0, &x, 7), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(7)->result, 1);
	CU_ASSERT_EQUAL(cr(7)->bytes_completed, 2999);
	/* CRC-32C: the check value, a seed, and copy with CRC */
	memcpy(big, "123456789", 9);
	x = desc(UPMD_DSA_OP_CRCGEN, 0, iova(big), 0, 9, 8);
	CU_ASSERT_EQUAL(run(0, &x, 8), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(8)->crc_val, 0xe3069283u);
	x = desc(UPMD_DSA_OP_CRCGEN, 0, iova(src + 4000), 0, 6000, 9);
	x.crc_seed = sw_crc32c(0, src, 4000);
	CU_ASSERT_EQUAL(run(0, &x, 9), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(9)->crc_val, sw_crc32c(0, src, (size_t)10000));
	memset(dst, 0, n);
	x = desc(UPMD_DSA_OP_COPY_CRC, 0, iova(src), iova(dst), (uint32_t)n, 10);
	CU_ASSERT_EQUAL(run(0, &x, 10), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(10)->crc_val, sw_crc32c(0, src, n));
	CU_ASSERT_EQUAL(memcmp(src, dst, n), 0);
	/* dualcast: both destinations, bits 11:0 equal */
	memset(dst, 0, 2 * PG);
	memset(big, 0, 2 * PG);
	x = desc(UPMD_DSA_OP_DUALCAST, 0, iova(src), iova(dst + 16), 3000, 11);
	x.dest2 = iova(big + 16);
	CU_ASSERT_EQUAL(run(0, &x, 11), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(dst + 16, src, 3000), 0);
	CU_ASSERT_EQUAL(memcmp(big + 16, src, 3000), 0);
	x.dest2 = iova(big + 32);
	memset(cr(11), 0, 32);
	CU_ASSERT_EQUAL(run(0, &x, 11), UPMD_DSA_COMP_DCAST_ERR);
	/* overlapping memmove, destination above: copied from the end */
	fill_rand(src, n, 2);
	memcpy(big, src, n);
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(src + 100), (uint32_t)(n - 100), 12);
	CU_ASSERT_EQUAL(run(0, &x, 12), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src + 100, big, n - 100), 0);
	/* refused descriptors: their status in the record */
	x = desc(UPMD_DSA_OP_DIF_CHECK, 0, iova(src), iova(dst), 512, 13);
	CU_ASSERT_EQUAL(run(0, &x, 13), UPMD_DSA_COMP_BAD_OPCODE);
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 0, 14);
	CU_ASSERT_EQUAL(run(0, &x, 14), UPMD_DSA_COMP_XFER_ERANGE);
	x = desc(UPMD_DSA_OP_MEMMOVE, UPMD_DSA_F_CR, iova(src), iova(dst), 8, 15);
	CU_ASSERT_EQUAL(run(0, &x, 15), UPMD_DSA_COMP_INVALID_FLAGS);
	CU_ASSERT_EQUAL(cr(15)->invalid_flags & 0xffffff, UPMD_DSA_F_CR);
	x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 16);
	CU_ASSERT_EQUAL(run(0, &x, 16), UPMD_DSA_COMP_SUCCESS);
	/* Many small ones: the portal's 64 slots wrap, 16 outstanding at most. */
	for (i = 0; i < 200; i++) {
		unsigned c = 32 + (unsigned)(i % 16);

		if (i >= 16)
			CU_ASSERT_EQUAL_FATAL(wait_cr(c), UPMD_DSA_COMP_SUCCESS);
		x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src + 8 * i), iova(dst + 8 * i), 8, c);
		submit(0, &x);
	}
	for (i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(wait_cr(32 + (unsigned)i), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src, dst, 1600), 0);
	CU_ASSERT_TRUE(dstats().descs >= 218);
	CU_ASSERT_EQUAL(dstats().swerrs, 0);
	down();
}

static void test_batch(void)
{
	struct upmd_dsa_desc *list;
	uint8_t *src, *dst;
	struct upmd_dsa_desc x;

	if (up("dsa@" BDF) < 0)
		return;
	list = (struct upmd_dsa_desc *)(void *)page(P_LIST);
	src = page(P_DATA);
	dst = page(P_DATA + 4);
	bring_up(PASID_OK);
	fill_rand(src, PG, 3);
	memset(dst, 0, 2 * PG);
	list[0] = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 1000, 1);
	list[1] = desc(UPMD_DSA_OP_FILL, 0, 0, iova(dst + PG), 64, 2);
	list[1].pattern = 0x5a5a5a5a5a5a5a5aULL;
	list[2] = desc(UPMD_DSA_OP_NOOP, UPMD_DSA_F_FENCE, 0, 0, 0, 3);
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list), 0, 0, 0);
	x.desc_count = 3;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(0)->descs_completed, 3);
	CU_ASSERT_EQUAL(cr(1)->status, UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(2)->status, UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(3)->status, UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src, dst, 1000), 0);
	CU_ASSERT_EQUAL(dst[PG + 63], 0x5a);
	CU_ASSERT_EQUAL(dstats().batches, 1);
	/* A failure fails the batch; a fence after it abandons the rest. */
	list[0] = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 0, 1);
	list[1] = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 2);
	list[2] = desc(UPMD_DSA_OP_NOOP, UPMD_DSA_F_FENCE, 0, 0, 0, 3);
	list[3] = desc(UPMD_DSA_OP_BATCH, 0, 0, 0, 0, 4);
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list), 0, 0, 0);
	x.desc_count = 4;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_BATCH_FAIL);
	CU_ASSERT_EQUAL(cr(0)->descs_completed, 2);
	CU_ASSERT_EQUAL(cr(1)->status, UPMD_DSA_COMP_XFER_ERANGE);
	CU_ASSERT_EQUAL(cr(2)->status, UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(cr(3)->status, 0);
	CU_ASSERT_EQUAL(cr(4)->status, 0);
	/* Without the fence the nested batch runs, and is refused. */
	list[2] = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 3);
	list[3] = desc(UPMD_DSA_OP_BATCH, 0, 0, 0, 0, 4);
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list), 0, 0, 0);
	x.desc_count = 4;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_BATCH_FAIL);
	CU_ASSERT_EQUAL(cr(0)->descs_completed, 4);
	CU_ASSERT_EQUAL(cr(4)->status, UPMD_DSA_COMP_BAD_OPCODE);
	/* Count and alignment. */
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list), 0, 0, 0);
	x.desc_count = 1;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_DESC_CNT_ERANGE);
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list), 0, 0, 0);
	x.desc_count = 1025;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_DESC_CNT_ERANGE);
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list) + 32, 0, 0, 0);
	x.desc_count = 2;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_DESCLIST_ALIGN);
	/* A list running off the mapping: fault at the descriptor not read. */
	list = (struct upmd_dsa_desc *)(void *)(ram + RAM_PAGES * PG - 64);
	list[0] = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 1);
	x = desc(UPMD_DSA_OP_BATCH, 0, iova(list), 0, 0, 0);
	x.desc_count = 2;
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_BATCH_PAGE_FAULT);
	CU_ASSERT_EQUAL(cr(0)->descs_completed, 1);
	CU_ASSERT_EQUAL(cr(0)->fault_addr, ram_iova + RAM_PAGES * PG);
	CU_ASSERT_EQUAL(cr(1)->status, UPMD_DSA_COMP_SUCCESS);
	down();
}

static void test_page_fault(void)
{
	uint8_t *end, *dst;
	struct upmd_dsa_desc x;
	struct upmd_model_fault f;

	if (up("dsa@" BDF) < 0)
		return;
	end = ram + RAM_PAGES * PG;
	dst = page(P_DATA);
	bring_up(PASID_OK);
	/* Source: two mapped pages, then the end of the mapping. */
	fill_rand(end - 2 * PG, 2 * PG, 4);
	memset(dst, 0xcc, 4 * PG);
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(end - 2 * PG), iova(dst), (uint32_t)(3 * PG), 0);
	CU_ASSERT_EQUAL(run(0, &x, 0), UPMD_DSA_COMP_PAGE_FAULT_NOBOF);
	CU_ASSERT_EQUAL(cr(0)->fault_addr, ram_iova + RAM_PAGES * PG);
	CU_ASSERT_EQUAL(cr(0)->bytes_completed, 2 * PG);
	CU_ASSERT_EQUAL(memcmp(dst, end - 2 * PG, 2 * PG), 0);
	CU_ASSERT_EQUAL(dst[2 * PG], 0xcc);	/* nothing beyond the fault */
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_FALSE(f.write);
	/* Destination fault: status with the write bit, BOF ignored (not enabled). */
	x = desc(UPMD_DSA_OP_MEMMOVE, UPMD_DSA_F_BOF, iova(dst), iova(end - 100), 1000, 1);
	CU_ASSERT_EQUAL(run(0, &x, 1), UPMD_DSA_COMP_PAGE_FAULT_NOBOF | UPMD_DSA_COMP_STATUS_WRITE);
	CU_ASSERT_EQUAL(cr(1)->fault_addr, ram_iova + RAM_PAGES * PG);
	CU_ASSERT_EQUAL(cr(1)->bytes_completed, 100);
	CU_ASSERT_EQUAL(memcmp(end - 100, dst, 100), 0);
	/* CRC faulting mid-way: the CRC so far, to resume with. */
	x = desc(UPMD_DSA_OP_CRCGEN, 0, iova(end - 300), 0, 1000, 2);
	CU_ASSERT_EQUAL(run(0, &x, 2), UPMD_DSA_COMP_PAGE_FAULT_NOBOF);
	CU_ASSERT_EQUAL(cr(2)->bytes_completed, 300);
	CU_ASSERT_EQUAL(cr(2)->crc_val, sw_crc32c(0, end - 300, 300));
	CU_ASSERT_EQUAL(dstats().page_faults, 3);
	CU_ASSERT_EQUAL(dstats().swerrs, 0);
	down();
}

static void test_swerr(void)
{
	uint8_t *src, *dst;
	struct upmd_dsa_desc x;
	uint64_t q0;

	if (up("dsa@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA + 2);
	bring_up(PASID_NONE);
	fill_rand(src, 512, 5);
	memset(dst, 0, 512);
	CU_ASSERT_EQUAL(r64(UPMD_DSA_REG_SWERR), 0);
	/* WQ 1's PASID is not attached: nothing reaches memory, not even the record. */
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 512, 0);
	CU_ASSERT_EQUAL(run(1, &x, 0), 0);
	CU_ASSERT_EQUAL(dst[0] | dst[511], 0);
	q0 = r64(UPMD_DSA_REG_SWERR);
	CU_ASSERT_TRUE(q0 & UPMD_DSA_SWERR_VALID);
	CU_ASSERT_TRUE(q0 & UPMD_DSA_SWERR_WQ_IDX_VALID);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_ERROR(q0), UPMD_DSA_COMP_CRA_XLAT);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_WQ_IDX(q0), 1);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_OPERATION(q0), UPMD_DSA_OP_MEMMOVE);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_PASID(q0), PASID_NONE);
	CU_ASSERT_EQUAL(r64(UPMD_DSA_REG_SWERR + 16), iova(cr(0)));
	CU_ASSERT_TRUE(r32(UPMD_DSA_REG_INTCAUSE) & UPMD_DSA_INTCAUSE_SWERR);
	/* A second one before the first is cleared: overflow, the first kept. */
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 0, 1);
	x.op_flags &= ~(uint32_t)(UPMD_DSA_F_CRAV | UPMD_DSA_F_RCR);
	CU_ASSERT_EQUAL(run(0, &x, 1), 0);	/* WQ 0 works, but there is no record to write */
	usleep(20000);
	q0 = r64(UPMD_DSA_REG_SWERR);
	CU_ASSERT_TRUE(q0 & UPMD_DSA_SWERR_OVERFLOW);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_WQ_IDX(q0), 1);
	w64(UPMD_DSA_REG_SWERR, UPMD_DSA_SWERR_VALID | UPMD_DSA_SWERR_OVERFLOW);
	CU_ASSERT_EQUAL(r64(UPMD_DSA_REG_SWERR) & 3, 0);
	w32(UPMD_DSA_REG_INTCAUSE, UPMD_DSA_INTCAUSE_SWERR);
	/* An error without CRAV: its own code in SWERR. */
	CU_ASSERT_EQUAL(run(0, &x, 1), 0);
	usleep(20000);
	q0 = r64(UPMD_DSA_REG_SWERR);
	CU_ASSERT_TRUE(q0 & UPMD_DSA_SWERR_VALID);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_ERROR(q0), UPMD_DSA_COMP_XFER_ERANGE);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_WQ_IDX(q0), 0);
	w64(UPMD_DSA_REG_SWERR, UPMD_DSA_SWERR_VALID);
	/* An unaligned completion record address. */
	x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 2);
	x.completion_addr += 8;
	CU_ASSERT_EQUAL(run(0, &x, 2), 0);
	usleep(20000);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_ERROR(r64(UPMD_DSA_REG_SWERR)), UPMD_DSA_COMP_CRA_ALIGN);
	CU_ASSERT_EQUAL(dstats().swerrs, 4);
	down();
}

static void test_pasid_wq(void)
{
	uint8_t *src, *dst;
	struct upmd_dsa_desc x;

	if (up("dsa@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA + 2);
	bring_up(PASID_OK);
	fill_rand(src, 700, 6);
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 700, 0);
	CU_ASSERT_EQUAL(run(1, &x, 0), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src, dst, 700), 0);
	CU_ASSERT_EQUAL(r64(UPMD_DSA_REG_SWERR), 0);
	down();
}

static void test_shared_wq(void)
{
	uint8_t *src, *dst;
	struct upmd_dsa_desc x;
	struct upmd_model_dsa_stats st;
	unsigned i;

	if (up("dsa@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA + 2);
	x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_OK), 1);	/* not enabled */
	bring_up(PASID_OK);
	fill_rand(src, 4 * 64, 7);
	memset(dst, 0, 4 * 64);
	CU_ASSERT_EQUAL(upmd_model_dsa_hold(m, BDF, true), 0);
	for (i = 0; i < 4; i++) {
		x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src + 64 * i), iova(dst + 64 * i), 64, i);
		CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_OK), 0);
	}
	/* Threshold 4 reached: retry, as ENQCMD's ZF=1. */
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 64, 4);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_OK), 1);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_OK), 1);
	st = dstats();
	CU_ASSERT_EQUAL(st.occupancy[2], 4);
	CU_ASSERT_EQUAL(st.enqcmds, 4);
	CU_ASSERT_EQUAL(st.enqcmd_retries, 3);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_OCCUPANCY(r32(wqcfg(2, UPMD_DSA_WQCFG_DW_STATE))), 4);
	usleep(10000);
	CU_ASSERT_EQUAL(cr(0)->status, 0);	/* held */
	CU_ASSERT_EQUAL(upmd_model_dsa_hold(m, BDF, false), 0);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(wait_cr(i), UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src, dst, 4 * 64), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_OCCUPANCY(r32(wqcfg(2, UPMD_DSA_WQCFG_DW_STATE))), 0);
	/* Room again. */
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_OK), 0);
	CU_ASSERT_EQUAL(wait_cr(4), UPMD_DSA_COMP_SUCCESS);
	/* A PASID that is not attached: SWERR with it. */
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 64, 5);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_NONE), 0);
	for (i = 0; i < 200 && !(r64(UPMD_DSA_REG_SWERR) & 1); i++)
		usleep(1000);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_PASID(r64(UPMD_DSA_REG_SWERR)), PASID_NONE);
	CU_ASSERT_EQUAL(UPMD_DSA_SWERR_WQ_IDX(r64(UPMD_DSA_REG_SWERR)), 2);
	CU_ASSERT_EQUAL(cr(5)->status, 0);
	/* Misuse. */
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 0, &x, PASID_OK), -EINVAL);	/* dedicated */
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 4, &x, PASID_OK), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, 1u << 20), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, NULL, PASID_OK), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, "0000:00:09.0", 2, &x, PASID_OK), -ENOENT);
	down();
}

static void test_drain_abort_reset(void)
{
	uint8_t *src, *dst;
	struct upmd_dsa_desc x;
	uint64_t resets;
	unsigned i;

	if (up("dsa@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA + 2);
	bring_up(PASID_OK);
	fill_rand(src, 512, 8);
	/* Held descriptors: Drain WQ runs them, Abort WQ drops them. */
	CU_ASSERT_EQUAL(upmd_model_dsa_hold(m, BDF, true), 0);
	x = desc(UPMD_DSA_OP_MEMMOVE, 0, iova(src), iova(dst), 512, 0);
	submit(0, &x);
	x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 1);
	CU_ASSERT_EQUAL(upmd_model_dsa_enqcmd(m, BDF, 2, &x, PASID_OK), 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DRAIN_WQ, UPMD_DSA_CMD_WQ_OPERAND(0))), 0);
	CU_ASSERT_EQUAL(cr(0)->status, UPMD_DSA_COMP_SUCCESS);
	CU_ASSERT_EQUAL(memcmp(src, dst, 512), 0);
	CU_ASSERT_EQUAL(cr(1)->status, 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ABORT_WQ, UPMD_DSA_CMD_WQ_OPERAND(2))), 0);
	CU_ASSERT_EQUAL(dstats().aborted, 1);
	CU_ASSERT_EQUAL(dstats().occupancy[2], 0);
	for (i = 0; i < 3; i++) {
		x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 2 + i);
		submit(0, &x);
	}
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ABORT_ALL, 0)), 0);
	CU_ASSERT_EQUAL(dstats().aborted, 4);
	CU_ASSERT_EQUAL(upmd_model_dsa_hold(m, BDF, false), 0);
	usleep(10000);
	CU_ASSERT_EQUAL(cr(2)->status, 0);
	/* The portal restarts at slot 0 after a WQ is re-enabled. */
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_DISABLE_WQ, UPMD_DSA_CMD_WQ_OPERAND(0))), 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 0)), 0);
	submitted[0] = 0;
	x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 6);
	CU_ASSERT_EQUAL(run(0, &x, 6), UPMD_DSA_COMP_SUCCESS);
	/* Reset WQ: disabled and unconfigured. */
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_RESET_WQ, UPMD_DSA_CMD_WQ_OPERAND(1))), 0);
	CU_ASSERT_EQUAL(r32(wqcfg(1, UPMD_DSA_WQCFG_DW_MODE)), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCFG_WQ_STATE(r32(wqcfg(1, UPMD_DSA_WQCFG_DW_STATE))), 0);
	/* Reset Device: everything disabled, configuration cleared. */
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_RESET_DEVICE, 0)), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_GENSTS_STATE(r32(UPMD_DSA_REG_GENSTS)), UPMD_DSA_GENSTS_STATE_DISABLED);
	CU_ASSERT_EQUAL(r32(wqcfg(0, UPMD_DSA_WQCFG_DW_SIZE)), 0);
	CU_ASSERT_EQUAL(r64(grpcfg()), 0);
	CU_ASSERT_EQUAL(dstats().wqs_enabled, 0);
	/* Function reset (VFIO_DEVICE_RESET) does the same. */
	bring_up(PASID_OK);
	resets = dstats().resets;
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_RESET, NULL), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_GENSTS_STATE(r32(UPMD_DSA_REG_GENSTS)), UPMD_DSA_GENSTS_STATE_DISABLED);
	CU_ASSERT_EQUAL(r32(wqcfg(2, UPMD_DSA_WQCFG_DW_THRESHOLD)), 0);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCAP_NUM_WQS(r64(UPMD_DSA_REG_WQCAP)), 4);
	CU_ASSERT_EQUAL(dstats().resets, resets + 1);
	set_master(true);
	bring_up(PASID_OK);
	x = desc(UPMD_DSA_OP_NOOP, 0, 0, 0, 0, 7);
	CU_ASSERT_EQUAL(run(0, &x, 7), UPMD_DSA_COMP_SUCCESS);
	down();
}

static void test_args(void)
{
	struct upmd_model *x = NULL;
	struct upmd_model_dsa_stats st;

	CU_ASSERT_EQUAL(upmd_model_parse("dsa@" BDF ":wqs=9", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("dsa@" BDF ":wq_size=0", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("dsa@" BDF ":bogus=1", &x), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_parse("edu@" BDF, &x), 0);
	CU_ASSERT_EQUAL(upmd_model_dsa_stats(x, BDF, &st), -ENODEV);
	CU_ASSERT_EQUAL(upmd_model_dsa_stats(x, "0000:00:07.0", &st), -ENOENT);
	CU_ASSERT_EQUAL(upmd_model_dsa_stats(x, BDF, NULL), -EINVAL);
	upmd_model_destroy(x);
	if (up("dsa@" BDF ":wqs=2,wq_size=64") < 0)
		return;
	CU_ASSERT_EQUAL(UPMD_DSA_WQCAP_NUM_WQS(r64(UPMD_DSA_REG_WQCAP)), 2);
	CU_ASSERT_EQUAL(UPMD_DSA_WQCAP_TOTAL_WQ_SIZE(r64(UPMD_DSA_REG_WQCAP)), 64);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_DEVICE, 0)), 0);
	CU_ASSERT_EQUAL(cmd(UPMD_DSA_CMD(UPMD_DSA_CMD_ENABLE_WQ, 2)), UPMD_DSA_CMDSTS_INVAL_WQIDX);
	down();
}

static const struct upmd_test tests[] = {
	{ "identity, capabilities, register access rules", test_identity },
	{ "commands: enable/disable device and WQ, refusals", test_commands },
	{ "dedicated WQ: every operation through the portal", test_ops },
	{ "batch: members, failure, fence, count, alignment, list fault", test_batch },
	{ "page faults: address, bytes completed, nothing beyond", test_page_fault },
	{ "SWERR: PASID not attached, no CRAV, overflow, alignment", test_swerr },
	{ "dedicated WQ with an attached PASID", test_pasid_wq },
	{ "shared WQ: ENQCMD accept and retry, occupancy, PASID", test_shared_wq },
	{ "drain, abort, reset WQ, reset device, function reset", test_drain_abort_reset },
	{ "arguments and introspection errors", test_args },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "model dsa", NULL, NULL, tests })
