/* The NVMe device model, driven like a driver would but only through the kops table, raw registers and queues in mapped memory: identity, enable, Identify, queue management, PRP and SGL I/O, errors, CQ wrap and back-pressure, reset, shutdown, fault injection, arguments. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <upmd/common.h>
#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/model.h>
#include <upmd/uapi/iommufd.h>
#include <upmd/uapi/vfio.h>

#include "upmd_test.h"

#define BDF "0000:00:04.0"
#define PG 4096UL
#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define CFG_OFF VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX)
#define RAM_PAGES 1024UL

/* NVMe facts, written out here independently of the model. */
#define CAP 0x00
#define VS 0x08
#define CC 0x14
#define CSTS 0x1c
#define AQA 0x24
#define ASQ 0x28
#define ACQ 0x30
#define CC_EN 1u
#define CC_IOQES ((6u << 16) | (4u << 20))
#define RDY 1u
#define CFS 2u
#define SHST(v) (((v) >> 2) & 3)

/* Status as (SCT << 8) | SC, DNR and More dropped. */
#define S(sct, sc) (((sct) << 8) | (sc))
#define OK 0
#define INVALID_OPCODE S(0, 0x01)
#define INVALID_FIELD S(0, 0x02)
#define DATA_XFER S(0, 0x04)
#define ABORTED S(0, 0x07)
#define INVALID_NS S(0, 0x0b)
#define CMD_SEQ S(0, 0x0c)
#define SGL_LEN S(0, 0x0f)
#define SGL_TYPE S(0, 0x11)
#define PRP_OFFSET S(0, 0x13)
#define LBA_RANGE S(0, 0x80)
#define CQ_INVALID S(1, 0x00)
#define QID_INVALID S(1, 0x01)
#define QSIZE_INVALID S(1, 0x02)
#define QDEL_INVALID S(1, 0x0c)
#define LOG_INVALID S(1, 0x09)

/* RAM layout (pages). */
#define P_ASQ 0
#define P_ACQ 1
#define P_SQ1 2
#define P_CQ1 4
#define P_SQ2 5
#define P_CQ2 6
#define P_IDENT 7
#define P_LIST 8		/* 8..15: PRP lists, SGL segments */
#define P_DATA 16		/* 16..: data buffers */
#define P_DATA2 512

struct q {
	uint8_t *sq, *cq;
	uint16_t qid, sqsize, cqsize, tail, head;
	bool phase;
};

struct cpl {
	uint32_t dw0;
	uint16_t sqhd, sqid, cid, status;
	bool dnr;
};

static struct upmd_model *m;
static int ifd, dfd;
static uint32_t ioas;
static volatile uint8_t *bar;
static uint8_t *ram;
static uint64_t ram_iova;
static struct q aq, q1, q2;
static uint16_t next_cid = 1;

/* ---- helpers ----------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

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

static struct upmd_model_nvme_stats nstats(void)
{
	struct upmd_model_nvme_stats st;

	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(m, BDF, &st), 0);
	return st;
}

static bool wait_csts(uint32_t mask, uint32_t want, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	while ((r32(CSTS) & mask) != want) {
		if (now_ms() > deadline)
			return false;
		usleep(100);
	}
	return true;
}

static void cfg_read(uint8_t *buf, unsigned len)
{
	CU_ASSERT_EQUAL_FATAL(upmd_k_pread(dfd, buf, len, (off_t)CFG_OFF), (ssize_t)len);
}

/* ---- fixture -------------------------------------------------------------------------- */

static int up(const char *spec)
{
	uint16_t cmd;
	void *p = NULL;

	if (model_open_device(spec, "/dev/vfio/devices/vfio0", &m, &ifd, &ioas, &dfd) < 0)
		return -1;
	CU_ASSERT_EQUAL(upmd_k_pread(dfd, &cmd, 2, (off_t)(CFG_OFF + 4)), 2);
	cmd |= 0x6;
	CU_ASSERT_EQUAL(upmd_k_pwrite(dfd, &cmd, 2, (off_t)(CFG_OFF + 4)), 2);
	CU_ASSERT_EQUAL_FATAL(upmd_k_mmap(NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, dfd,
					  (off_t)VFIO_PCI_INDEX_TO_OFFSET(0), &p), 0);
	bar = p;
	model_map_ram(ifd, ioas, RAM_PAGES * PG, &ram, &ram_iova);
	upmd_model_stats_reset(m);
	return 0;
}

static void down(void)
{
	w32(CC, 0);
	CU_ASSERT_EQUAL(upmd_k_munmap((void *)bar, 0x4000), 0);
	CU_ASSERT_EQUAL(upmd_k_close(dfd), 0);
	CU_ASSERT_EQUAL(upmd_k_close(ifd), 0);
	munmap(ram, RAM_PAGES * PG);
	assert_model_clean(m);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(m);
	m = NULL;
}

/* ---- the driver's side ------------------------------------------------------------------ */

static void q_init(struct q *q, uint16_t qid, unsigned sqp, unsigned cqp, uint16_t sqsize, uint16_t cqsize)
{
	q->qid = qid;
	q->sq = page(sqp);
	q->cq = page(cqp);
	q->sqsize = sqsize;
	q->cqsize = cqsize;
	q->tail = q->head = 0;
	q->phase = true;
	memset(q->sq, 0, (size_t)sqsize * 64);
	memset(q->cq, 0, (size_t)cqsize * 16);
}

/* Disable, then enable with the admin queue; whether RDY came. */
static bool enable_with(uint32_t aqa, uint64_t asq, uint64_t acq, uint32_t cc)
{
	w32(CC, 0);
	if (!wait_csts(RDY, 0, 2000))
		return false;
	w32(AQA, aqa);
	w64(ASQ, asq);
	w64(ACQ, acq);
	w32(CC, cc);
	return wait_csts(RDY, RDY, 300);
}

static bool enable(void)
{
	q_init(&aq, 0, P_ASQ, P_ACQ, 32, 16);
	return enable_with((15u << 16) | 31u, iova(aq.sq), iova(aq.cq), CC_EN | CC_IOQES);
}

static void sqe_init(uint8_t *e, uint8_t opc, uint32_t nsid)
{
	memset(e, 0, 64);
	e[0] = opc;
	put16(e + 2, next_cid++);
	put32(e + 4, nsid);
}

/* Put an entry on the SQ and ring; no waiting. */
static uint16_t push(struct q *q, const uint8_t *e)
{
	memcpy(q->sq + (size_t)q->tail * 64, e, 64);
	q->tail = (uint16_t)((q->tail + 1) % q->sqsize);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	w32(0x1000 + 8u * q->qid, q->tail);
	return get16(e + 2);
}

static bool cq_ready(struct q *q)
{
	uint32_t dw3 = __atomic_load_n((uint32_t *)(void *)(q->cq + (size_t)q->head * 16 + 12), __ATOMIC_ACQUIRE);

	return ((dw3 >> 16) & 1) == q->phase;
}

/* Take the next completion within @ms; false on timeout. */
static bool reap(struct q *q, struct cpl *c, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	const uint8_t *e;
	uint32_t dw3;

	while (!cq_ready(q)) {
		if (now_ms() > deadline)
			return false;
		usleep(50);
	}
	e = q->cq + (size_t)q->head * 16;
	dw3 = get32(e + 12);
	c->dw0 = get32(e);
	c->sqhd = get16(e + 8);
	c->sqid = get16(e + 10);
	c->cid = (uint16_t)dw3;
	c->status = (uint16_t)((dw3 >> 17) & 0x7ff);
	c->dnr = dw3 >> 31;
	if (++q->head == q->cqsize) {
		q->head = 0;
		q->phase = !q->phase;
	}
	w32(0x1000 + 8u * q->qid + 4, q->head);
	return true;
}

/* Submit and wait: the status, or -1 on timeout. */
static int run(struct q *q, const uint8_t *e, uint32_t *dw0)
{
	struct cpl c;
	uint16_t cid = push(q, e);

	if (!reap(q, &c, 3000))
		return -1;
	CU_ASSERT_EQUAL(c.cid, cid);
	CU_ASSERT_EQUAL(c.sqid, q->qid);
	CU_ASSERT_EQUAL(c.sqhd, q->tail);
	if (dw0)
		*dw0 = c.dw0;
	return c.status;
}

static int identify(uint32_t cns, uint32_t nsid)
{
	uint8_t e[64];

	sqe_init(e, 0x06, nsid);
	memset(page(P_IDENT), 0xee, PG);
	put64(e + 24, iova(page(P_IDENT)));
	put32(e + 40, cns);
	return run(&aq, e, NULL);
}

static int create_cq(uint16_t qid, uint8_t *base, uint16_t size, uint32_t flags)
{
	uint8_t e[64];

	sqe_init(e, 0x05, 0);
	put64(e + 24, iova(base));
	put32(e + 40, qid | ((uint32_t)(size - 1) << 16));
	put32(e + 44, flags);
	return run(&aq, e, NULL);
}

static int create_sq(uint16_t qid, uint8_t *base, uint16_t size, uint16_t cqid, uint32_t flags)
{
	uint8_t e[64];

	sqe_init(e, 0x01, 0);
	put64(e + 24, iova(base));
	put32(e + 40, qid | ((uint32_t)(size - 1) << 16));
	put32(e + 44, flags | ((uint32_t)cqid << 16));
	return run(&aq, e, NULL);
}

static int delete_q(uint8_t opc, uint16_t qid)
{
	uint8_t e[64];

	sqe_init(e, opc, 0);
	put32(e + 40, qid);
	return run(&aq, e, NULL);
}

/* I/O queue pair @q (qid, pages) with @size entries each. */
static void io_pair(struct q *q, uint16_t qid, unsigned sqp, unsigned cqp, uint16_t sqsize, uint16_t cqsize)
{
	q_init(q, qid, sqp, cqp, sqsize, cqsize);
	CU_ASSERT_EQUAL_FATAL(create_cq(qid, q->cq, cqsize, 0x1), OK);
	CU_ASSERT_EQUAL_FATAL(create_sq(qid, q->sq, sqsize, qid, 0x1), OK);
}

static void bring_up(void)
{
	CU_ASSERT_TRUE_FATAL(enable());
	io_pair(&q1, 1, P_SQ1, P_CQ1, 64, 64);
}

/* Read or write command with PRPs. */
static void rw_sqe(uint8_t *e, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t prp1,
		   uint64_t prp2)
{
	sqe_init(e, opc, nsid);
	put64(e + 24, prp1);
	put64(e + 32, prp2);
	put64(e + 40, slba);
	put32(e + 48, nlb - 1);
}

static int rw(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t prp1, uint64_t prp2)
{
	uint8_t e[64];

	rw_sqe(e, opc, nsid, slba, nlb, prp1, prp2);
	return run(&q1, e, NULL);
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed + (i >> 9));
}

static bool all(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_identity(void)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = 0 };
	uint8_t cfg[256];
	unsigned ptr, n = 0, msix = 0, exp = 0;
	uint64_t cap;

	if (up("nvme@" BDF ":queues=4") < 0)
		return;
	cfg_read(cfg, sizeof(cfg));
	CU_ASSERT_EQUAL(get16(&cfg[0]), 0x1b36);
	CU_ASSERT_EQUAL(get16(&cfg[2]), 0x0010);
	CU_ASSERT_EQUAL(cfg[0x09], 0x02);	/* class 01 08 02 */
	CU_ASSERT_EQUAL(cfg[0x0a], 0x08);
	CU_ASSERT_EQUAL(cfg[0x0b], 0x01);
	CU_ASSERT_EQUAL(get32(&cfg[0x10]) & 0x7, 0x4);	/* BAR0 64-bit memory */
	for (ptr = cfg[0x34]; ptr && n < 48; ptr = cfg[ptr + 1], n++) {
		if (cfg[ptr] == 0x11)
			msix = ptr;
		if (cfg[ptr] == 0x10)
			exp = ptr;
	}
	CU_ASSERT_NOT_EQUAL(exp, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(msix, 0);
	CU_ASSERT_EQUAL((get16(&cfg[msix + 2]) & 0x7ff) + 1, 5);	/* queues + 1 */
	CU_ASSERT_EQUAL(get32(&cfg[msix + 4]), 0x2000);		/* table: BAR0 + 0x2000 */
	CU_ASSERT_EQUAL(get32(&cfg[msix + 8]), 0x3000);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), 0);
	CU_ASSERT_EQUAL(ri.size, 0x4000);
	{
		struct vfio_device_info di = { .argsz = sizeof(di) };

		CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &di), 0);
		CU_ASSERT_TRUE(di.flags & VFIO_DEVICE_FLAGS_RESET);
	}

	cap = r64(CAP);
	CU_ASSERT_EQUAL(cap & 0xffff, 1023);		/* MQES */
	CU_ASSERT_TRUE((cap & (1ULL << 16)) != 0);		/* CQR */
	CU_ASSERT_EQUAL((cap >> 17) & 3, 0);		/* AMS */
	CU_ASSERT_EQUAL((cap >> 24) & 0xff, 2);		/* TO: 1 s */
	CU_ASSERT_EQUAL((cap >> 32) & 0xf, 0);		/* DSTRD */
	CU_ASSERT_TRUE((cap & (1ULL << 37)) != 0);		/* CSS: NVM */
	CU_ASSERT_EQUAL((cap >> 48) & 0xff, 0);		/* MPSMIN, MPSMAX */
	CU_ASSERT_EQUAL(r32(CAP + 4), (uint32_t)(cap >> 32));
	CU_ASSERT_EQUAL(r32(VS), 0x00010400);
	CU_ASSERT_EQUAL(r32(CSTS), 0);
	/* What needs traps: a plain-memory BAR shows the driver's bytes until
	 * the device thread puts them right. */
	if (getenv("UPMD_MODEL_NO_TRAP")) {
		down();
		return;
	}
	/* Read-only registers stay so. */
	w32(VS, 0x12345678);
	w32(CSTS, 0xff);
	CU_ASSERT_EQUAL(r32(VS), 0x00010400);
	CU_ASSERT_EQUAL(r32(CSTS), 0);
	/* INTMS / INTMC set and clear the mask. */
	w32(0x0c, 0x5);
	CU_ASSERT_EQUAL(r32(0x0c), 0x5);
	w32(0x10, 0x1);
	CU_ASSERT_EQUAL(r32(0x10), 0x4);
	w32(0x10, 0x4);
	CU_ASSERT_EQUAL(r32(0x0c), 0);
	/* AQA, ASQ, ACQ read back. */
	w32(AQA, 0x000f001f);
	w64(ASQ, 0x123456000ULL);
	CU_ASSERT_EQUAL(r32(AQA), 0x000f001f);
	CU_ASSERT_EQUAL(r64(ASQ), 0x123456000ULL);
	down();
}

static void test_enable(void)
{
	struct upmd_model_nvme_stats st;
	uint64_t sq, cq;

	if (up("nvme@" BDF) < 0)
		return;
	q_init(&aq, 0, P_ASQ, P_ACQ, 32, 16);
	sq = iova(aq.sq);
	cq = iova(aq.cq);
	/* Each of these leaves RDY 0: the driver would time out. */
	CU_ASSERT_FALSE(enable_with(0, sq, cq, CC_EN | CC_IOQES));			/* 1-entry queues */
	CU_ASSERT_FALSE(enable_with(0x000f0000, sq, cq, CC_EN | CC_IOQES));		/* ASQS 0 */
	CU_ASSERT_FALSE(enable_with(0x000f001f, sq + 64, cq, CC_EN | CC_IOQES));	/* misaligned */
	CU_ASSERT_FALSE(enable_with(0x000f001f, sq, cq + 0x800, CC_EN | CC_IOQES));
	CU_ASSERT_FALSE(enable_with(0x000f001f, sq, cq, CC_EN | CC_IOQES | (1u << 7)));	/* MPS 8 KiB */
	CU_ASSERT_FALSE(enable_with(0x000f001f, sq, cq, CC_EN | CC_IOQES | (1u << 4)));	/* CSS */
	CU_ASSERT_EQUAL(r32(CSTS) & CFS, 0);
	CU_ASSERT_TRUE(enable_with(0x000f001f, sq, cq, CC_EN | CC_IOQES));
	st = nstats();
	CU_ASSERT_EQUAL(st.csts & RDY, RDY);
	CU_ASSERT_EQUAL(st.cc, CC_EN | CC_IOQES);
	/* EN 1 -> 0: a reset, RDY drops. */
	w32(CC, 0);
	CU_ASSERT_TRUE(wait_csts(RDY, 0, 2000));
	CU_ASSERT_EQUAL(nstats().resets, st.resets + 1);
	CU_ASSERT_TRUE(enable());
	down();
}

static void test_identify(void)
{
	uint8_t e[64], *p;
	uint32_t dw0;

	if (up("nvme@" BDF ":nn=3,ns_mb=8,serial=SN-TEST-1,mdts=5") < 0)
		return;
	p = page(P_IDENT);
	CU_ASSERT_TRUE_FATAL(enable());
	CU_ASSERT_EQUAL(identify(1, 0), OK);
	CU_ASSERT_EQUAL(get16(p + 0), 0x1b36);
	CU_ASSERT_EQUAL(memcmp(p + 4, "SN-TEST-1           ", 20), 0);
	CU_ASSERT_EQUAL(memcmp(p + 24, "upmd model NVMe", 15), 0);
	CU_ASSERT_EQUAL(p[24 + 39], ' ');
	CU_ASSERT_EQUAL(memcmp(p + 64, "1.0     ", 8), 0);
	CU_ASSERT_EQUAL(p[77], 5);			/* MDTS */
	CU_ASSERT_EQUAL(get32(p + 80), 0x00010400);	/* VER */
	CU_ASSERT_EQUAL(p[512], 0x66);
	CU_ASSERT_EQUAL(p[513], 0x44);
	CU_ASSERT_EQUAL(get32(p + 516), 3);		/* NN */
	CU_ASSERT_EQUAL(get16(p + 520) & 0x0c, 0x0c);	/* ONCS: DSM, Write Zeroes */
	CU_ASSERT_EQUAL(p[525] & 1, 1);			/* VWC */
	CU_ASSERT_EQUAL(get32(p + 536), 1);		/* SGLS */
	CU_ASSERT_EQUAL(memcmp(p + 768, "nqn.", 4), 0);

	CU_ASSERT_EQUAL(identify(0, 2), OK);
	CU_ASSERT_EQUAL(get64(p + 0), 8ULL * 1024 * 1024 / 512);	/* NSZE */
	CU_ASSERT_EQUAL(get64(p + 8), get64(p + 0));
	CU_ASSERT_EQUAL(p[25], 0);			/* NLBAF */
	CU_ASSERT_EQUAL(p[26], 0);			/* FLBAS */
	CU_ASSERT_EQUAL((get32(p + 128) >> 16) & 0xff, 9);	/* LBADS */
	CU_ASSERT_EQUAL(get32(p + 128) & 0xffff, 0);	/* no metadata */
	CU_ASSERT_EQUAL(p[33] & 7, 1);			/* deallocated reads zeros */

	CU_ASSERT_EQUAL(identify(2, 0), OK);
	CU_ASSERT_EQUAL(get32(p + 0), 1);
	CU_ASSERT_EQUAL(get32(p + 4), 2);
	CU_ASSERT_EQUAL(get32(p + 8), 3);
	CU_ASSERT_EQUAL(get32(p + 12), 0);
	CU_ASSERT_EQUAL(identify(2, 1), OK);
	CU_ASSERT_EQUAL(get32(p + 0), 2);
	CU_ASSERT_EQUAL(identify(3, 1), OK);		/* NS identification descriptors */
	CU_ASSERT_EQUAL(p[0], 2);
	CU_ASSERT_EQUAL(p[1], 16);

	CU_ASSERT_EQUAL(identify(0, 0), INVALID_NS);
	CU_ASSERT_EQUAL(identify(0, 4), INVALID_NS);
	CU_ASSERT_EQUAL(identify(0x10, 0), INVALID_FIELD);
	sqe_init(e, 0x7f, 0);
	CU_ASSERT_EQUAL(run(&aq, e, NULL), INVALID_OPCODE);
	/* Error log page: zeros; an unknown log: Invalid Log Page. */
	sqe_init(e, 0x02, 0xffffffff);
	memset(p, 0xee, PG);
	put64(e + 24, iova(p));
	put32(e + 40, 0x01 | (15u << 16));		/* 16 dwords */
	CU_ASSERT_EQUAL(run(&aq, e, NULL), OK);
	CU_ASSERT_TRUE(all(p, 64, 0));
	CU_ASSERT_EQUAL(p[64], 0xee);
	put32(e + 40, 0x70 | (15u << 16));
	put16(e + 2, next_cid++);
	CU_ASSERT_EQUAL(run(&aq, e, NULL), LOG_INVALID);
	/* Volatile write cache feature. */
	sqe_init(e, 0x0a, 0);
	put32(e + 40, 0x06);
	CU_ASSERT_EQUAL(run(&aq, e, &dw0), OK);
	CU_ASSERT_EQUAL(dw0, 1);
	CU_ASSERT_EQUAL(nstats().admin_cmds, 12);
	down();
}

static void test_queues(void)
{
	uint8_t e[64];
	uint32_t dw0 = 0;
	struct upmd_model_nvme_stats st;

	if (up("nvme@" BDF ":queues=4,mqes=63") < 0)
		return;
	CU_ASSERT_TRUE_FATAL(enable());
	/* Number of Queues: min(requested, queues) - 1 in each half. */
	sqe_init(e, 0x09, 0);
	put32(e + 40, 0x07);
	put32(e + 44, 99 | (99u << 16));
	CU_ASSERT_EQUAL(run(&aq, e, &dw0), OK);
	CU_ASSERT_EQUAL(dw0, 3 | (3u << 16));
	put16(e + 2, next_cid++);
	put32(e + 44, 1 | (1u << 16));			/* two of each */
	CU_ASSERT_EQUAL(run(&aq, e, &dw0), OK);
	CU_ASSERT_EQUAL(dw0, 1 | (1u << 16));
	sqe_init(e, 0x0a, 0);
	put32(e + 40, 0x07);
	CU_ASSERT_EQUAL(run(&aq, e, &dw0), OK);
	CU_ASSERT_EQUAL(dw0, 1 | (1u << 16));

	q_init(&q1, 1, P_SQ1, P_CQ1, 64, 64);
	CU_ASSERT_EQUAL(create_cq(0, q1.cq, 64, 1), QID_INVALID);
	CU_ASSERT_EQUAL(create_cq(3, q1.cq, 64, 1), QID_INVALID);	/* beyond the two allocated */
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 1, 1), QSIZE_INVALID);
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 65, 1), QSIZE_INVALID);	/* > MQES + 1 */
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 64, 0), INVALID_FIELD);	/* PC 0 */
	CU_ASSERT_EQUAL(create_cq(1, q1.cq + 16, 64, 1), PRP_OFFSET);
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 64, 0x3 | (9u << 16)), S(1, 0x08));	/* vector 9 of 5 */
	CU_ASSERT_EQUAL(create_sq(1, q1.sq, 64, 1, 1), CQ_INVALID);	/* no CQ 1 yet */
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 64, 0x3 | (1u << 16)), OK);
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 64, 1), QID_INVALID);	/* exists */
	CU_ASSERT_EQUAL(create_sq(1, q1.sq, 64, 2, 1), CQ_INVALID);
	CU_ASSERT_EQUAL(create_sq(1, q1.sq, 64, 1, 0), INVALID_FIELD);
	CU_ASSERT_EQUAL(create_sq(1, q1.sq, 65, 1, 1), QSIZE_INVALID);
	CU_ASSERT_EQUAL(create_sq(1, q1.sq, 64, 1, 1), OK);
	CU_ASSERT_EQUAL(create_sq(2, page(P_SQ2), 16, 1, 1), OK);	/* two SQs on CQ 1 */
	st = nstats();
	CU_ASSERT_EQUAL(st.io_sqs, 2);
	CU_ASSERT_EQUAL(st.io_cqs, 1);
	/* Too late for Number of Queues now. */
	sqe_init(e, 0x09, 0);
	put32(e + 40, 0x07);
	put32(e + 44, 0);
	CU_ASSERT_EQUAL(run(&aq, e, NULL), CMD_SEQ);
	CU_ASSERT_EQUAL(delete_q(0x04, 1), QDEL_INVALID);		/* SQs use it */
	CU_ASSERT_EQUAL(delete_q(0x00, 2), OK);
	CU_ASSERT_EQUAL(delete_q(0x04, 1), QDEL_INVALID);
	CU_ASSERT_EQUAL(delete_q(0x00, 1), OK);
	CU_ASSERT_EQUAL(delete_q(0x00, 1), QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(0x00, 0), QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(0x04, 1), OK);
	CU_ASSERT_EQUAL(delete_q(0x04, 1), QID_INVALID);
	st = nstats();
	CU_ASSERT_EQUAL(st.io_sqs, 0);
	CU_ASSERT_EQUAL(st.io_cqs, 0);
	/* I/O queue entry sizes are checked at creation: IOCQES 0. */
	w32(CC, 0);
	CU_ASSERT_TRUE(wait_csts(RDY, 0, 2000));
	q_init(&aq, 0, P_ASQ, P_ACQ, 32, 16);
	CU_ASSERT_TRUE_FATAL(enable_with(0x000f001f, iova(aq.sq), iova(aq.cq), CC_EN | (6u << 16)));
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 64, 1), INVALID_FIELD);
	down();
}

static void test_prp(void)
{
	uint8_t *src, *dst, *l;
	uint64_t list;
	unsigned i;
	struct upmd_model_nvme_stats st;

	if (up("nvme@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA2);
	l = page(P_LIST);
	bring_up();
	/* One page. */
	fill(src, 8 * PG, 1);
	CU_ASSERT_EQUAL(rw(0x01, 1, 0, 8, iova(src), 0), OK);
	memset(dst, 0, 8 * PG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 8, iova(dst), 0), OK);
	CU_ASSERT_EQUAL(memcmp(src, dst, PG), 0);
	/* Two pages: PRP2 is the second page (not contiguous with the first). */
	CU_ASSERT_EQUAL(rw(0x01, 1, 100, 16, iova(src), iova(src + 4 * PG)), OK);
	memset(dst, 0, 8 * PG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 100, 16, iova(dst + 2 * PG), iova(dst)), OK);
	CU_ASSERT_EQUAL(memcmp(dst + 2 * PG, src, PG), 0);
	CU_ASSERT_EQUAL(memcmp(dst, src + 4 * PG, PG), 0);
	/* A PRP list of five pages, scattered. */
	fill(src, 8 * PG, 2);
	for (i = 0; i < 5; i++)
		put64(l + 8 * i, iova(src + (7 - i) * PG));
	CU_ASSERT_EQUAL(rw(0x01, 1, 200, 48, iova(src + PG), iova(l)), OK);
	memset(dst, 0, 8 * PG);
	for (i = 0; i < 5; i++)
		put64(l + PG + 8 * i, iova(dst + (i + 1) * PG));
	CU_ASSERT_EQUAL(rw(0x02, 1, 200, 48, iova(dst), iova(l + PG)), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src + PG, PG), 0);
	for (i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(memcmp(dst + (i + 1) * PG, src + (7 - i) * PG, PG), 0);
	/* A list starting 16 bytes before the end of its page: one entry,
	 * then a pointer to the next list page. */
	list = iova(l + 3 * PG - 16);
	put64(l + 3 * PG - 16, iova(dst + PG));
	put64(l + 3 * PG - 8, iova(l + 4 * PG));
	put64(l + 4 * PG, iova(dst + 2 * PG));
	put64(l + 4 * PG + 8, iova(dst + 3 * PG));
	memset(dst, 0, 8 * PG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 200, 32, iova(dst), list), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src + PG, PG), 0);
	CU_ASSERT_EQUAL(memcmp(dst + PG, src + 7 * PG, PG), 0);
	CU_ASSERT_EQUAL(memcmp(dst + 2 * PG, src + 6 * PG, PG), 0);
	CU_ASSERT_EQUAL(memcmp(dst + 3 * PG, src + 5 * PG, PG), 0);
	CU_ASSERT_TRUE(all(dst + 4 * PG, PG, 0));
	/* A chain pointer with an offset, a list entry with an offset. */
	put64(l + 3 * PG - 8, iova(l + 4 * PG) + 8);
	CU_ASSERT_EQUAL(rw(0x02, 1, 200, 32, iova(dst), list), PRP_OFFSET);
	put64(l + PG + 8, iova(dst) + 512);
	CU_ASSERT_EQUAL(rw(0x02, 1, 200, 48, iova(dst), iova(l + PG)), PRP_OFFSET);
	/* PRP2 as a data page must be aligned; PRP1 dword aligned. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 16, iova(dst), iova(dst + PG) + 4), PRP_OFFSET);
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 1, iova(dst) + 2, 0), PRP_OFFSET);
	/* An unaligned PRP1: 1 KiB into a page, 8 KiB spanning three pages. */
	fill(src, 8 * PG, 3);
	put64(l, iova(src + 5 * PG));
	put64(l + 8, iova(src + 2 * PG));
	CU_ASSERT_EQUAL(rw(0x01, 1, 300, 16, iova(src) + 1024, iova(l)), OK);
	memset(dst, 0, 8 * PG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 300, 16, iova(dst), 0 + iova(dst + PG)), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src + 1024, PG - 1024), 0);
	CU_ASSERT_EQUAL(memcmp(dst + PG - 1024, src + 5 * PG, 1024), 0);
	CU_ASSERT_EQUAL(memcmp(dst + PG, src + 5 * PG + 1024, PG - 1024), 0);
	CU_ASSERT_EQUAL(memcmp(dst + 2 * PG - 1024, src + 2 * PG, 1024), 0);
	st = nstats();
	CU_ASSERT_EQUAL(st.writes, 4);
	CU_ASSERT_EQUAL(st.reads, 5);
	CU_ASSERT_EQUAL(st.bytes_written, (8 + 16 + 48 + 16) * 512ULL);
	CU_ASSERT_EQUAL(st.errors, 4);
	CU_ASSERT_EQUAL(st.io_cmds, 13);
	down();
}

static void sgl_desc(uint8_t *p, uint64_t addr, uint32_t len, uint8_t type)
{
	put64(p, addr);
	put32(p + 8, len);
	memset(p + 12, 0, 3);
	p[15] = (uint8_t)(type << 4);
}

static int sgl_rw(uint8_t opc, uint64_t slba, uint32_t nlb, const uint8_t *sgl1)
{
	uint8_t e[64];

	rw_sqe(e, opc, 1, slba, nlb, 0, 0);
	e[1] = 0x40;		/* PSDT 01b: SGL */
	memcpy(e + 24, sgl1, 16);
	return run(&q1, e, NULL);
}

static void test_sgl(void)
{
	uint8_t *src, *dst, *seg, d1[16];

	if (up("nvme@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA2);
	seg = page(P_LIST);
	bring_up();
	fill(src, 4 * PG, 9);
	/* A single Data Block. */
	sgl_desc(d1, iova(src), 4096, 0);
	CU_ASSERT_EQUAL(sgl_rw(0x01, 10, 8, d1), OK);
	/* Read back through a Segment (two blocks + Last Segment pointer) and a
	 * Last Segment (one block), odd lengths and addresses. */
	memset(dst, 0, 4 * PG);
	sgl_desc(seg, iova(dst + 3), 1000, 0);
	sgl_desc(seg + 16, iova(dst + PG + 7), 2000, 0);
	sgl_desc(seg + 32, iova(seg + 1024), 16, 3);
	sgl_desc(seg + 1024, iova(dst + 3 * PG), 1096, 0);
	sgl_desc(d1, iova(seg), 48, 2);
	CU_ASSERT_EQUAL(sgl_rw(0x02, 10, 8, d1), OK);
	CU_ASSERT_EQUAL(memcmp(dst + 3, src, 1000), 0);
	CU_ASSERT_EQUAL(memcmp(dst + PG + 7, src + 1000, 2000), 0);
	CU_ASSERT_EQUAL(memcmp(dst + 3 * PG, src + 3000, 1096), 0);
	CU_ASSERT_EQUAL(dst[0], 0);
	CU_ASSERT_EQUAL(dst[1003], 0);
	/* The lengths must add up to the transfer. */
	sgl_desc(d1, iova(dst), 4000, 0);
	CU_ASSERT_EQUAL(sgl_rw(0x02, 10, 8, d1), SGL_LEN);
	sgl_desc(seg + 1024, iova(dst + 3 * PG), 1000, 0);
	sgl_desc(d1, iova(seg), 48, 2);
	CU_ASSERT_EQUAL(sgl_rw(0x02, 10, 8, d1), SGL_LEN);
	/* Bit Bucket (type 1) is not supported; nor is a type 0xf. */
	sgl_desc(d1, iova(dst), 4096, 1);
	CU_ASSERT_EQUAL(sgl_rw(0x02, 10, 8, d1), SGL_TYPE);
	sgl_desc(seg + 1024, iova(dst), 1096, 0xf);
	sgl_desc(d1, iova(seg), 48, 2);
	CU_ASSERT_EQUAL(sgl_rw(0x02, 10, 8, d1), SGL_TYPE);
	/* Last Segment straight from the command. */
	sgl_desc(seg + 2048, iova(dst), 4096, 0);
	sgl_desc(d1, iova(seg + 2048), 16, 3);
	memset(dst, 0, PG);
	CU_ASSERT_EQUAL(sgl_rw(0x02, 10, 8, d1), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src, PG), 0);
	/* Admin commands take PRPs only. */
	{
		uint8_t e[64];

		sqe_init(e, 0x06, 0);
		e[1] = 0x40;
		put32(e + 40, 1);
		CU_ASSERT_EQUAL(run(&aq, e, NULL), INVALID_FIELD);
	}
	down();
	/* sgl=off: PSDT 01b is an invalid field; SGLS reads 0. */
	if (up("nvme@" BDF ":sgl=off") < 0)
		return;
	src = page(P_DATA);
	bring_up();
	sgl_desc(d1, iova(src), 4096, 0);
	CU_ASSERT_EQUAL(sgl_rw(0x01, 10, 8, d1), INVALID_FIELD);
	CU_ASSERT_EQUAL(identify(1, 0), OK);
	CU_ASSERT_EQUAL(get32(page(P_IDENT) + 536), 0);
	down();
}

static void test_errors(void)
{
	struct iommu_ioas_map mp = { .size = sizeof(mp), .flags = IOMMU_IOAS_MAP_READABLE };
	struct upmd_model_fault f;
	uint8_t *src, *ro;
	uint64_t bad, ro_iova;
	struct upmd_model_nvme_stats st;
	int old = upmd_log_level_cur;

	if (up("nvme@" BDF ":nn=2,ns_mb=1") < 0)
		return;
	src = page(P_DATA);
	bring_up();
	ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(ro, MAP_FAILED);
	memset(ro, 0x33, PG);
	mp.ioas_id = ioas;
	mp.user_va = (uintptr_t)ro;
	mp.length = PG;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &mp), 0);
	ro_iova = mp.iova;
	bad = UPMD_MAX(ram_iova + RAM_PAGES * PG, ro_iova + PG) + 0x10000000ULL;

	/* 1 MiB: 2048 blocks. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 2047, 1, iova(src), 0), OK);
	CU_ASSERT_EQUAL(rw(0x02, 1, 2047, 2, iova(src), 0), LBA_RANGE);
	CU_ASSERT_EQUAL(rw(0x02, 1, 2048, 1, iova(src), 0), LBA_RANGE);
	CU_ASSERT_EQUAL(rw(0x02, 1, ~0ULL, 2, iova(src), 0), LBA_RANGE);
	CU_ASSERT_EQUAL(rw(0x02, 3, 0, 1, iova(src), 0), INVALID_NS);
	CU_ASSERT_EQUAL(rw(0x02, 0, 0, 1, iova(src), 0), INVALID_NS);
	CU_ASSERT_EQUAL(rw(0x01, 2, 0, 1, iova(src), 0), OK);
	/* MDTS 7: 512 KiB; one block more is an invalid field. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 1025, iova(src), 0), INVALID_FIELD);
	{
		uint8_t e[64];

		rw_sqe(e, 0x55, 1, 0, 1, iova(src), 0);
		CU_ASSERT_EQUAL(run(&q1, e, NULL), INVALID_OPCODE);
	}
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), -ENOENT);

	/* Unmapped data page: Data Transfer Error, a fault, the controller fine. */
	upmd_log_set_level(UPMD_LOG_EMERG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 8, bad, 0), DATA_XFER);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_STRING_EQUAL(f.bdf, BDF);
	CU_ASSERT_EQUAL(f.iova, bad);
	CU_ASSERT_TRUE(f.write);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
	CU_ASSERT_EQUAL(rw(0x01, 1, 0, 16, iova(src), bad), DATA_XFER);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_FALSE(f.write);
	/* A PRP list at an unmapped IOVA. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 24, iova(src), bad), DATA_XFER);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
	/* A read into a read-only mapping: refused, the memory untouched. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 8, ro_iova, 0), DATA_XFER);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &f), 0);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_NO_WRITE);
	CU_ASSERT_TRUE(all(ro, PG, 0x33));
	upmd_log_set_level(old);
	st = nstats();
	CU_ASSERT_EQUAL(st.dma_faults, 4);
	CU_ASSERT_EQUAL(st.csts, RDY);			/* not fatal */
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 8, iova(src), 0), OK);

	/* An I/O CQ at an unmapped IOVA: fatal. */
	{
		uint8_t e[64];

		sqe_init(e, 0x05, 0);
		put64(e + 24, bad);
		put32(e + 40, 2 | (15u << 16));
		put32(e + 44, 1);
		CU_ASSERT_EQUAL(run(&aq, e, NULL), OK);
		q_init(&q2, 2, P_SQ2, P_CQ2, 16, 16);
		CU_ASSERT_EQUAL(create_sq(2, q2.sq, 16, 2, 1), OK);
		upmd_log_set_level(UPMD_LOG_EMERG);
		log_capture();
		rw_sqe(e, 0x00, 1, 0, 1, 0, 0);
		push(&q2, e);
		CU_ASSERT_TRUE(wait_csts(CFS, CFS, 3000));
		upmd_log_set_level(UPMD_LOG_WARNING);
		log_release();
		upmd_log_set_level(old);
		CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &f), 0);
		CU_ASSERT_EQUAL(f.iova, bad);
	}
	munmap(ro, PG);
	down();
}

static void test_zeroes_dsm_flush(void)
{
	uint8_t *src, *dst, *r, *l, e[64];
	struct upmd_model_nvme_stats st;
	unsigned b;

	if (up("nvme@" BDF) < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA2);
	r = page(P_LIST);
	l = page(P_LIST + 2);
	bring_up();
	/* 32 blocks from LBA 64 (16 KiB, four pages of the namespace): block
	 * b holds src + PG + (b - 64) * 512. */
	fill(src, 8 * PG, 5);
	put64(l, iova(src + 2 * PG));
	put64(l + 8, iova(src + 3 * PG));
	put64(l + 16, iova(src + 4 * PG));
	CU_ASSERT_EQUAL(rw(0x01, 1, 64, 32, iova(src + PG), iova(l)), OK);
	/* Write Zeroes over blocks 66..67. */
	rw_sqe(e, 0x08, 1, 66, 2, 0, 0);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), OK);
	rw_sqe(e, 0x08, 1, 131000, 100, 0, 0);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), LBA_RANGE);

	/* DSM without AD: a hint, data kept. One range: blocks 72..87. */
	memset(r, 0, PG);
	put32(r + 4, 16);
	put64(r + 8, 72);
	sqe_init(e, 0x09, 1);
	put64(e + 24, iova(r));
	CU_ASSERT_EQUAL(run(&q1, e, NULL), OK);
	CU_ASSERT_EQUAL(rw(0x02, 1, 72, 16, iova(dst), iova(dst + PG)), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src + PG + 8 * 512, 2 * PG), 0);
	/* Deallocate two ranges: 72..87 (8 KiB, page aligned) and 93. */
	put32(r + 16 + 4, 1);
	put64(r + 16 + 8, 93);
	sqe_init(e, 0x09, 1);
	put64(e + 24, iova(r));
	put32(e + 40, 1);
	put32(e + 44, 1u << 2);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), OK);
	/* A range past the end. */
	put64(r + 16 + 8, 1ULL << 40);
	sqe_init(e, 0x09, 1);
	put64(e + 24, iova(r));
	put32(e + 40, 1);
	put32(e + 44, 1u << 2);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), LBA_RANGE);

	memset(dst, 0xee, 4 * PG);
	put64(l + 64, iova(dst + PG));
	put64(l + 72, iova(dst + 2 * PG));
	put64(l + 80, iova(dst + 3 * PG));
	CU_ASSERT_EQUAL(rw(0x02, 1, 64, 32, iova(dst), iova(l + 64)), OK);
	for (b = 64; b < 96; b++) {
		const uint8_t *got = dst + (b - 64) * 512;
		bool zero = b == 66 || b == 67 || (b >= 72 && b <= 87) || b == 93;

		if (zero) {
			CU_ASSERT_TRUE(all(got, 512, 0));
		} else {
			CU_ASSERT_EQUAL(memcmp(got, src + PG + (b - 64) * 512, 512), 0);
		}
	}
	/* Flush: one namespace, all of them, a bad one. */
	sqe_init(e, 0x00, 1);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), OK);
	sqe_init(e, 0x00, 0xffffffff);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), OK);
	sqe_init(e, 0x00, 2);
	CU_ASSERT_EQUAL(run(&q1, e, NULL), INVALID_NS);
	st = nstats();
	CU_ASSERT_EQUAL(st.write_zeroes, 1);
	CU_ASSERT_EQUAL(st.dsm, 2);
	CU_ASSERT_EQUAL(st.flushes, 2);
	CU_ASSERT_EQUAL(st.errors, 3);
	down();
}

/* CQ of 4 entries, 10 commands: the phase flips at each wrap; a CQ not
 * consumed holds the rest back. */
static void test_cq_wrap(void)
{
	uint8_t e[64];
	struct cpl c;
	unsigned i;
	uint32_t dw3;

	if (up("nvme@" BDF) < 0)
		return;
	CU_ASSERT_TRUE_FATAL(enable());
	io_pair(&q1, 1, P_SQ1, P_CQ1, 8, 4);
	for (i = 0; i < 10; i++) {
		uint16_t cid;

		sqe_init(e, 0x00, 1);
		cid = push(&q1, e);
		CU_ASSERT_FATAL(reap(&q1, &c, 3000));
		CU_ASSERT_EQUAL(c.cid, cid);
		CU_ASSERT_EQUAL(c.status, OK);
		CU_ASSERT_EQUAL(c.sqhd, (i + 1) % 8);
		dw3 = get32(q1.cq + ((i % 4) * 16) + 12);
		CU_ASSERT_EQUAL((dw3 >> 16) & 1, (i / 4) % 2 == 0 ? 1 : 0);
	}
	/* Five commands with the CQ head not moving: three fit (one entry
	 * stays free), two wait in the SQ. */
	for (i = 0; i < 5; i++) {
		sqe_init(e, 0x00, 1);
		memcpy(q1.sq + (size_t)q1.tail * 64, e, 64);
		q1.tail = (uint16_t)((q1.tail + 1) % q1.sqsize);
	}
	w32(0x1000 + 8, q1.tail);
	usleep(100000);
	CU_ASSERT_EQUAL(nstats().io_cmds, 13);
	for (i = 0; i < 3; i++) {
		uint32_t d3 = get32(q1.cq + ((q1.head + i) % 4) * 16 + 12);

		CU_ASSERT_EQUAL((d3 >> 16) & 1, (q1.head + i) / 4 % 2 == 0 ? q1.phase : !q1.phase);
	}
	/* Consuming them (reap rings the head doorbell) lets the rest in. */
	for (i = 0; i < 5; i++)
		CU_ASSERT_TRUE(reap(&q1, &c, 3000));
	CU_ASSERT_EQUAL(c.sqhd, q1.tail);
	CU_ASSERT_EQUAL(nstats().io_cmds, 15);
	CU_ASSERT_FALSE(reap(&q1, &c, 50));
	down();
}

static void test_reset_shutdown(void)
{
	struct upmd_model_nvme_stats st;
	uint8_t *src;

	if (up("nvme@" BDF) < 0)
		return;
	src = page(P_DATA);
	bring_up();
	fill(src, PG, 7);
	CU_ASSERT_EQUAL(rw(0x01, 1, 8, 8, iova(src), 0), OK);
	st = nstats();
	CU_ASSERT_EQUAL(st.io_sqs, 1);
	/* CC.EN 1 -> 0: every queue gone, RDY 0. */
	w32(CC, CC_IOQES);
	CU_ASSERT_TRUE(wait_csts(RDY, 0, 2000));
	st = nstats();
	CU_ASSERT_EQUAL(st.io_sqs, 0);
	CU_ASSERT_EQUAL(st.io_cqs, 0);
	CU_ASSERT_TRUE(st.resets >= 1);
	/* Up again: qid 1 is free; the namespace kept its data. */
	bring_up();
	memset(src, 0, PG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 8, 8, iova(src), 0), OK);
	{
		uint8_t want[PG];

		fill(want, PG, 7);
		CU_ASSERT_EQUAL(memcmp(src, want, PG), 0);
	}
	/* Normal shutdown: SHST complete, then a reset clears it. */
	w32(CC, r32(CC) | (1u << 14));
	CU_ASSERT_TRUE(wait_csts(0xc, 0x8, 2000));
	CU_ASSERT_EQUAL(nstats().shutdowns, 1);
	CU_ASSERT_EQUAL(r32(CSTS) & RDY, RDY);
	w32(CC, 0);
	CU_ASSERT_TRUE(wait_csts(0xd, 0, 2000));
	CU_ASSERT_TRUE(enable());
	/* Function reset: power-on state, registers included. */
	w32(AQA, 0x00010001);
	CU_ASSERT_EQUAL(upmd_k_ioctl(dfd, VFIO_DEVICE_RESET, NULL), 0);
	CU_ASSERT_EQUAL(r32(CSTS), 0);
	CU_ASSERT_EQUAL(r32(CC), 0);
	CU_ASSERT_EQUAL(r32(AQA), 0);
	CU_ASSERT_EQUAL(r64(CAP) & 0xffff, 1023);
	CU_ASSERT_TRUE(enable());
	down();
}

static void test_fatal(void)
{
	uint8_t e[64];
	struct cpl c;
	int old = upmd_log_level_cur;

	if (up("nvme@" BDF) < 0)
		return;
	bring_up();
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(m, BDF, UPMD_MODEL_NVME_FATAL, 0), 0);
	CU_ASSERT_EQUAL(r32(CSTS) & (CFS | RDY), CFS | RDY);
	CU_ASSERT_EQUAL(nstats().csts & CFS, CFS);
	/* Nothing is processed now. */
	sqe_init(e, 0x00, 1);
	push(&q1, e);
	CU_ASSERT_FALSE(reap(&q1, &c, 100));
	CU_ASSERT_EQUAL(nstats().io_cmds, 0);
	/* A controller reset clears it, and it works again. */
	w32(CC, 0);
	CU_ASSERT_TRUE(wait_csts(RDY | CFS, 0, 2000));
	bring_up();
	CU_ASSERT_EQUAL(rw(0x00, 1, 0, 1, 0, 0), OK);
	/* Injection arguments. */
	upmd_log_set_level(UPMD_LOG_EMERG);
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(m, BDF, (enum upmd_model_nvme_fault)9, 1), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(m, BDF, UPMD_MODEL_NVME_DROP_CPL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(m, "00:09.0", UPMD_MODEL_NVME_FATAL, 0), -ENOENT);
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(NULL, BDF, UPMD_MODEL_NVME_FATAL, 0), -EINVAL);
	upmd_log_set_level(old);
	down();
}

static int abort_cmd(uint16_t sqid, uint16_t cid, uint32_t *dw0)
{
	uint8_t e[64];

	sqe_init(e, 0x08, 0);
	put32(e + 40, sqid | ((uint32_t)cid << 16));
	return run(&aq, e, dw0);
}

static void test_drop_abort(void)
{
	uint8_t e[64], *dst;
	struct cpl c;
	uint32_t dw0 = 0;
	uint16_t cid, aer;
	struct upmd_model_nvme_stats st;

	if (up("nvme@" BDF) < 0)
		return;
	dst = page(P_DATA2);
	bring_up();
	fill(page(P_DATA), PG, 4);
	CU_ASSERT_EQUAL(rw(0x01, 1, 0, 8, iova(page(P_DATA)), 0), OK);
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(m, BDF, UPMD_MODEL_NVME_DROP_CPL, 1), 0);
	memset(dst, 0, PG);
	rw_sqe(e, 0x02, 1, 0, 8, iova(dst), 0);
	cid = push(&q1, e);
	CU_ASSERT_FALSE(reap(&q1, &c, 150));
	/* Executed all the same. */
	st = nstats();
	CU_ASSERT_EQUAL(st.reads, 1);
	CU_ASSERT_EQUAL(memcmp(dst, page(P_DATA), PG), 0);
	/* The next command completes normally. */
	CU_ASSERT_EQUAL(rw(0x00, 1, 0, 1, 0, 0), OK);
	/* Abort names it: aborted (DW0 bit 0 clear), and it completes so. */
	CU_ASSERT_EQUAL(abort_cmd(1, cid, &dw0), OK);
	CU_ASSERT_EQUAL(dw0 & 1, 0);
	CU_ASSERT_TRUE_FATAL(reap(&q1, &c, 3000));
	CU_ASSERT_EQUAL(c.cid, cid);
	CU_ASSERT_EQUAL(c.status, ABORTED);
	CU_ASSERT_FALSE(c.dnr);
	/* Aborting it again, or something never sent: not aborted. */
	CU_ASSERT_EQUAL(abort_cmd(1, cid, &dw0), OK);
	CU_ASSERT_EQUAL(dw0 & 1, 1);
	CU_ASSERT_EQUAL(abort_cmd(9, 77, &dw0), OK);
	CU_ASSERT_EQUAL(dw0 & 1, 1);
	/* Async Event Requests are held; an Abort completes one. */
	sqe_init(e, 0x0c, 0);
	aer = push(&aq, e);
	CU_ASSERT_FALSE(reap(&aq, &c, 100));
	sqe_init(e, 0x08, 0);
	put32(e + 40, (uint32_t)aer << 16);
	push(&aq, e);
	{
		struct cpl a, b;

		CU_ASSERT_TRUE_FATAL(reap(&aq, &a, 3000));
		CU_ASSERT_TRUE_FATAL(reap(&aq, &b, 3000));
		/* Either order; one is the AER aborted, one the Abort's. */
		if (a.cid != aer) {
			struct cpl t = a;

			a = b;
			b = t;
		}
		CU_ASSERT_EQUAL(a.cid, aer);
		CU_ASSERT_EQUAL(a.status, ABORTED);
		CU_ASSERT_EQUAL(b.status, OK);
		CU_ASSERT_EQUAL(b.dw0 & 1, 0);
	}
	st = nstats();
	CU_ASSERT_EQUAL(st.aborts, 2);
	/* A held completion is dropped by a controller reset. */
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(m, BDF, UPMD_MODEL_NVME_DROP_CPL, 2), 0);
	rw_sqe(e, 0x02, 1, 0, 8, iova(dst), 0);
	push(&q1, e);
	CU_ASSERT_FALSE(reap(&q1, &c, 100));
	w32(CC, 0);
	CU_ASSERT_TRUE(wait_csts(RDY, 0, 2000));
	bring_up();
	/* The second drop was cancelled by the reset too. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 8, iova(dst), 0), OK);
	down();
}

static void test_interrupts(void)
{
	struct {
		struct vfio_irq_set s;
		int32_t fd[2];
	} __attribute__((packed)) set = {
		{ .argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		  .index = VFIO_PCI_MSIX_IRQ_INDEX, .start = 0, .count = 2 },
		{ -1, -1 },
	};
	struct pollfd pf;
	uint64_t v;
	int efd[2], i;

	if (up("nvme@" BDF ":queues=2") < 0)
		return;
	for (i = 0; i < 2; i++)
		set.fd[i] = efd[i] = upmd_k_eventfd(0, EFD_NONBLOCK);
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(dfd, VFIO_DEVICE_SET_IRQS, &set), 0);
	CU_ASSERT_TRUE_FATAL(enable());
	/* Admin CQ: vector 0. */
	pf = (struct pollfd){ .fd = efd[0], .events = POLLIN };
	CU_ASSERT_EQUAL(poll(&pf, 1, 1000), 0);	/* nothing yet */
	q_init(&q1, 1, P_SQ1, P_CQ1, 16, 16);
	CU_ASSERT_EQUAL(create_cq(1, q1.cq, 16, 0x3 | (1u << 16)), OK);
	CU_ASSERT_EQUAL(poll(&pf, 1, 1000), 1);
	CU_ASSERT_EQUAL(upmd_k_read(efd[0], &v, sizeof(v)), sizeof(v));
	CU_ASSERT_EQUAL(create_sq(1, q1.sq, 16, 1, 1), OK);
	CU_ASSERT_EQUAL(upmd_k_read(efd[0], &v, sizeof(v)), sizeof(v));
	/* CQ 1 with IEN and IV 1. */
	CU_ASSERT_EQUAL(rw(0x00, 1, 0, 1, 0, 0), OK);
	pf.fd = efd[1];
	CU_ASSERT_EQUAL(poll(&pf, 1, 1000), 1);
	/* A CQ without IEN raises nothing. */
	CU_ASSERT_EQUAL(upmd_k_read(efd[1], &v, sizeof(v)), sizeof(v));
	q_init(&q2, 2, P_SQ2, P_CQ2, 16, 16);
	CU_ASSERT_EQUAL(create_cq(2, q2.cq, 16, 0x1 | (1u << 16)), OK);
	CU_ASSERT_EQUAL(create_sq(2, q2.sq, 16, 2, 1), OK);
	{
		uint8_t e[64];

		sqe_init(e, 0x00, 1);
		CU_ASSERT_EQUAL(run(&q2, e, NULL), OK);
	}
	CU_ASSERT_EQUAL(poll(&pf, 1, 50), 0);
	for (i = 0; i < 2; i++)
		upmd_k_close(efd[i]);
	down();
}

static void test_args(void)
{
	static const char *const bad[] = {
		"nvme@00:04.0:queues=0", "nvme@00:04.0:queues=65", "nvme@00:04.0:mqes=0",
		"nvme@00:04.0:mqes=4096", "nvme@00:04.0:mdts=11", "nvme@00:04.0:nn=0",
		"nvme@00:04.0:nn=5", "nvme@00:04.0:ns_mb=0", "nvme@00:04.0:lba=1024",
		"nvme@00:04.0:sgl=yes", "nvme@00:04.0:serial=", "nvme@00:04.0:serial=123456789012345678901",
		"nvme@00:04.0:file=/nonexistent/upmd-nvme.img", "nvme@00:04.0:queues=x",
		"nvme@00:04.0:bogus=1",
	};
	struct upmd_model *x = NULL;
	struct upmd_model_nvme_stats st;
	char path[] = "/tmp/upmd-nvme-......", spec[128];
	unsigned i;
	int fd, old = upmd_log_level_cur;

	/* mkstemp's template: six X at the end. */
	memset(path + sizeof(path) - 7, 'X', 6);

	upmd_log_set_level(UPMD_LOG_EMERG);
	for (i = 0; i < UPMD_DIM(bad); i++) {
		CU_ASSERT_EQUAL(upmd_model_parse(bad[i], &x), -EINVAL);
		CU_ASSERT_PTR_NULL(x);
	}
	upmd_log_set_level(old);
	log_capture();
	CU_ASSERT_EQUAL(upmd_model_parse("nvme@00:04.0:queues=99", &x), -EINVAL);
	ASSERT_LOG_HAS("bad queues '99'");
	ASSERT_LOG_HAS("queues=8");
	log_release();

	/* A backing file smaller than the namespace. */
	fd = mkstemp(path);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, 1 << 20), 0);
	snprintf(spec, sizeof(spec), "nvme@00:04.0:ns_mb=2,file=%s", path);
	log_capture();
	CU_ASSERT_EQUAL(upmd_model_parse(spec, &x), -EINVAL);
	ASSERT_LOG_HAS("namespace 1 needs 2097152");
	log_release();
	snprintf(spec, sizeof(spec), "nvme@00:04.0:ns_mb=1,file=%s", path);
	CU_ASSERT_EQUAL_FATAL(upmd_model_parse(spec, &x), 0);
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(x, "00:04.0", &st), 0);
	upmd_model_destroy(x);
	x = NULL;

	CU_ASSERT_EQUAL_FATAL(upmd_model_parse("edu@00:03.0;nvme@00:04.0", &x), 0);
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(x, "00:03.0", &st), -ENODEV);
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(x, "00:03.0", UPMD_MODEL_NVME_FATAL, 0), -ENODEV);
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(x, "00:05.0", &st), -ENOENT);
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(x, "00:04.0", NULL), -EINVAL);
	upmd_model_destroy(x);

	/* The file keeps what was written, after a flush. */
	snprintf(spec, sizeof(spec), "nvme@" BDF ":ns_mb=1,file=%s", path);
	if (up(spec) == 0) {
		uint8_t *src = page(P_DATA), back[PG];

		bring_up();
		fill(src, PG, 11);
		CU_ASSERT_EQUAL(rw(0x01, 1, 16, 8, iova(src), 0), OK);
		CU_ASSERT_EQUAL(rw(0x00, 1, 0, 1, 0, 0), OK);
		CU_ASSERT_EQUAL(pread(fd, back, PG, 16 * 512), (ssize_t)PG);
		CU_ASSERT_EQUAL(memcmp(back, src, PG), 0);
		down();
	}
	close(fd);
	unlink(path);
}

static void test_lba4096(void)
{
	uint8_t *src, *dst, *p;

	if (up("nvme@" BDF ":lba=4096,nn=2,ns_mb=4,mdts=1") < 0)
		return;
	src = page(P_DATA);
	dst = page(P_DATA2);
	p = page(P_IDENT);
	bring_up();
	CU_ASSERT_EQUAL(identify(0, 2), OK);
	CU_ASSERT_EQUAL(get64(p), 1024);
	CU_ASSERT_EQUAL((get32(p + 128) >> 16) & 0xff, 12);
	fill(src, 2 * PG, 8);
	CU_ASSERT_EQUAL(rw(0x01, 2, 1023, 1, iova(src), 0), OK);
	CU_ASSERT_EQUAL(rw(0x01, 2, 1022, 2, iova(src), iova(src + PG)), OK);
	CU_ASSERT_EQUAL(rw(0x01, 2, 1023, 2, iova(src), iova(src + PG)), LBA_RANGE);
	/* MDTS 1: 8 KiB at most. */
	CU_ASSERT_EQUAL(rw(0x02, 2, 0, 3, iova(dst), iova(page(P_LIST))), INVALID_FIELD);
	memset(dst, 0, 2 * PG);
	CU_ASSERT_EQUAL(rw(0x02, 2, 1022, 2, iova(dst), iova(dst + PG)), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src, 2 * PG), 0);
	/* Namespace 1 is another store. */
	CU_ASSERT_EQUAL(rw(0x02, 1, 1022, 2, iova(dst), iova(dst + PG)), OK);
	CU_ASSERT_TRUE(all(dst, 2 * PG, 0));
	down();
}

/* Without traps the BAR is plain memory: the device thread must find
 * CC and the doorbells there, and keep CSTS and CAP right. */
static void test_no_trap(void)
{
	uint8_t *src, *dst;
	char *was = getenv("UPMD_MODEL_NO_TRAP");

	setenv("UPMD_MODEL_NO_TRAP", "1", 1);
	if (up("nvme@" BDF) < 0)
		goto out;
	src = page(P_DATA);
	dst = page(P_DATA2);
	usleep(20000);
	CU_ASSERT_EQUAL(r64(CAP) & 0xffff, 1023);
	CU_ASSERT_EQUAL(r32(VS), 0x00010400);
	bring_up();
	CU_ASSERT_EQUAL(identify(1, 0), OK);
	CU_ASSERT_EQUAL(get16(page(P_IDENT)), 0x1b36);
	fill(src, 2 * PG, 6);
	CU_ASSERT_EQUAL(rw(0x01, 1, 0, 16, iova(src), iova(src + PG)), OK);
	memset(dst, 0, 2 * PG);
	CU_ASSERT_EQUAL(rw(0x02, 1, 0, 16, iova(dst), iova(dst + PG)), OK);
	CU_ASSERT_EQUAL(memcmp(dst, src, 2 * PG), 0);
	w32(CC, 0);
	CU_ASSERT_TRUE(wait_csts(RDY, 0, 2000));
	CU_ASSERT_EQUAL(nstats().io_sqs, 0);
	down();
out:
	if (!was)
		unsetenv("UPMD_MODEL_NO_TRAP");
}

static const struct upmd_test tests[] = {
	{ "identity, capabilities, registers", test_identity },
	{ "enable: bad and good admin queues", test_enable },
	{ "identify controller and namespaces", test_identify },
	{ "queue creation and deletion, number of queues", test_queues },
	{ "PRP: one, two, list, chained list, offsets", test_prp },
	{ "SGL: data block, segments, errors", test_sgl },
	{ "errors: range, namespace, MDTS, DMA faults", test_errors },
	{ "write zeroes, deallocate, flush", test_zeroes_dsm_flush },
	{ "CQ phase across wraps, a full CQ holds back", test_cq_wrap },
	{ "controller reset, shutdown, function reset", test_reset_shutdown },
	{ "FATAL injection: CFS until reset", test_fatal },
	{ "DROP_CPL, Abort, Async Event Requests", test_drop_abort },
	{ "MSI-X vectors of the CQs", test_interrupts },
	{ "arguments, backing file, introspection errors", test_args },
	{ "lba=4096, two namespaces, MDTS 1", test_lba4096 },
	{ "without traps (UPMD_MODEL_NO_TRAP)", test_no_trap },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "model nvme", NULL, NULL, tests })
