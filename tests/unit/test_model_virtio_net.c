/* The virtio-net device model, driven like a driver would but only through the kops table and raw registers and rings: identity and capabilities, feature negotiation, traffic between two cross-connected ports, mergeable buffers, drops, the control queue, faults and reset. */
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

#define VN0 "0000:00:04.0"
#define VN1 "0000:00:05.0"
#define MAC0 "52:54:00:12:34:56"
#define MAC1 "52:54:00:12:34:57"
/* Only port 0 names its peer: the connection goes both ways. */
#define SPEC "virtio-net@" VN0 ":mac=" MAC0 ",queues=2,peer=" VN1 ";virtio-net@" VN1 ":mac=" MAC1

#define PG 4096UL
#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define CFG_OFF VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX)

/* virtio facts, written out here independently of the model */
#define VIRTIO_CAP_COMMON 1
#define VIRTIO_CAP_NOTIFY 2
#define VIRTIO_CAP_ISR 3
#define VIRTIO_CAP_DEVICE 4
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_GEN 0x15
#define CC_QSELECT 0x16
#define CC_QSIZE 0x18
#define CC_QMSIX 0x1a
#define CC_QENABLE 0x1c
#define CC_QNOTIFY_OFF 0x1e
#define CC_QDESC 0x20
#define CC_QDRIVER 0x28
#define CC_QDEVICE 0x30
#define ST_ACK 0x01
#define ST_DRIVER 0x02
#define ST_DRIVER_OK 0x04
#define ST_FEATURES_OK 0x08
#define ST_NEEDS_RESET 0x40
#define F(b) (1ULL << (b))
#define F_CSUM F(0)
#define F_MAC F(5)
#define F_MRG F(15)
#define F_STATUS F(16)
#define F_CTRL_VQ F(17)
#define F_CTRL_RX F(18)
#define F_MQ F(22)
#define F_CTRL_MAC F(23)
#define F_V1 F(32)
#define F_PLATFORM F(33)
#define D_NEXT 1
#define D_WRITE 2
#define NO_VEC 0xffff
#define HDR 12

/* The feature sets the two ports negotiate: port 0 with mergeable RX
 * buffers and multiqueue, port 1 without either. */
#define FEAT0 (F_V1 | F_PLATFORM | F_MAC | F_STATUS | F_MRG | F_CTRL_VQ | F_CTRL_RX | F_MQ | F_CTRL_MAC)
#define FEAT1 (F_V1 | F_PLATFORM | F_MAC | F_STATUS | F_CTRL_VQ | F_CTRL_RX | F_CTRL_MAC)

#define QSZ 64
#define NQ 5
#define PORT_MEM 0x80000UL
#define BUF_BASE 0x20000UL
#define RX_SLOTS 16
#define TX_SLOT0 16
#define TX_SLOTS 16
#define CTRL_SLOT 40

struct vring {
	uint16_t size;
	bool up;
	uint8_t *desc, *avail, *used;
	uint64_t desc_iova, avail_iova, used_iova;
	uint16_t avail_idx, used_seen, next_desc;
	volatile uint8_t *notify;
	uint8_t *buf_of[QSZ];		/* buffer VA per descriptor, RX */
};

struct port {
	const char *bdf;
	int dfd;
	uint8_t *bar;
	volatile uint8_t *cc, *isr, *dc, *nt;
	uint32_t mult;
	uint8_t *mem;
	uint64_t iova;
	unsigned rx_slot, tx_slot;
	struct vring q[NQ];
};

static struct upmd_model *m;
static int ifd;
static uint32_t ioas;
static uint8_t *ram;
static uint64_t ram_iova;
static struct port P[2];

/* ---- small helpers -------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static uint8_t r8(volatile uint8_t *b, unsigned o) { return *(volatile uint8_t *)(b + o); }
static uint16_t r16(volatile uint8_t *b, unsigned o) { return *(volatile uint16_t *)(b + o); }
static uint32_t r32(volatile uint8_t *b, unsigned o) { return *(volatile uint32_t *)(b + o); }
static uint64_t r64(volatile uint8_t *b, unsigned o) { return *(volatile uint64_t *)(b + o); }
static void w8(volatile uint8_t *b, unsigned o, uint8_t v) { *(volatile uint8_t *)(b + o) = v; }
static void w16(volatile uint8_t *b, unsigned o, uint16_t v) { *(volatile uint16_t *)(b + o) = v; }
static void w32(volatile uint8_t *b, unsigned o, uint32_t v) { *(volatile uint32_t *)(b + o) = v; }
static void w64(volatile uint8_t *b, unsigned o, uint64_t v) { *(volatile uint64_t *)(b + o) = v; }

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct upmd_model_virtio_net_stats vstats(int i)
{
	struct upmd_model_virtio_net_stats st;

	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(m, P[i].bdf, &st), 0);
	return st;
}

static int efd_count(int efd, int timeout_ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (upmd_k_read(efd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return (int)v;
}

static void cfg_read(int dfd, uint8_t *buf, unsigned len)
{
	CU_ASSERT_EQUAL_FATAL(upmd_k_pread(dfd, buf, len, (off_t)CFG_OFF), (ssize_t)len);
}

static uint64_t iova_of(struct port *p, const void *va)
{
	return p->iova + (uint64_t)((const uint8_t *)va - p->mem);
}

static uint8_t *slot(struct port *p, unsigned s)
{
	return p->mem + BUF_BASE + (uint64_t)s * PG;
}

/* ---- fixture: two ports bound to one iommufd, attached to one IOAS --------------- */

/* Find the virtio capabilities by walking config space. */
static void find_caps(struct port *p)
{
	uint8_t cfg[256];
	unsigned ptr, n = 0;

	cfg_read(p->dfd, cfg, sizeof(cfg));
	for (ptr = cfg[0x34]; ptr && n < 48; ptr = cfg[ptr + 1], n++) {
		uint32_t off = get32(&cfg[ptr + 8]);

		if (cfg[ptr] != 0x09)
			continue;
		CU_ASSERT_EQUAL(cfg[ptr + 4], 4);	/* everything in BAR4 */
		switch (cfg[ptr + 3]) {
		case VIRTIO_CAP_COMMON:
			p->cc = p->bar + off;
			break;
		case VIRTIO_CAP_ISR:
			p->isr = p->bar + off;
			break;
		case VIRTIO_CAP_DEVICE:
			p->dc = p->bar + off;
			break;
		case VIRTIO_CAP_NOTIFY:
			p->nt = p->bar + off;
			p->mult = get32(&cfg[ptr + 16]);
			break;
		default:
			break;
		}
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->cc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->isr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->dc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->nt);
}

static void open_port(struct port *p, int n, const char *bdf)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b) };
	struct vfio_device_attach_iommufd_pt a = { .argsz = VFIO_DEVICE_ATTACH_MINSZ };
	char path[64];
	uint16_t cmd;
	void *bar = NULL;

	memset(p, 0, sizeof(*p));
	p->bdf = bdf;
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", n);
	p->dfd = upmd_k_open(path, O_RDWR);
	CU_ASSERT_TRUE_FATAL(p->dfd >= 0);
	b.iommufd = ifd;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(p->dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), 0);
	a.pt_id = ioas;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(p->dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), 0);
	/* Bus mastering on: DMA and MSI-X need it. */
	CU_ASSERT_EQUAL(upmd_k_pread(p->dfd, &cmd, 2, (off_t)(CFG_OFF + 4)), 2);
	cmd |= 0x6;
	CU_ASSERT_EQUAL(upmd_k_pwrite(p->dfd, &cmd, 2, (off_t)(CFG_OFF + 4)), 2);
	CU_ASSERT_EQUAL_FATAL(upmd_k_mmap(NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, p->dfd,
					  (off_t)VFIO_PCI_INDEX_TO_OFFSET(4), &bar), 0);
	p->bar = bar;
	find_caps(p);
}

static void close_port(struct port *p)
{
	/* Reset first, so the device lets go of the rings. */
	w8(p->cc, CC_STATUS, 0);
	CU_ASSERT_EQUAL(upmd_k_munmap(p->bar, 0x4000), 0);
	CU_ASSERT_EQUAL(upmd_k_close(p->dfd), 0);
}

static int up(const char *spec)
{
	struct iommu_ioas_alloc al = { .size = sizeof(al) };
	struct iommu_ioas_map mp = { .size = sizeof(mp), .flags = RW };
	int i;

	if (upmd_model_install(spec, &m) < 0) {
		CU_FAIL("model spec refused");
		return -1;
	}
	ifd = upmd_k_open("/dev/iommu", O_RDWR);
	CU_ASSERT_TRUE_FATAL(ifd >= 0);
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &al), 0);
	ioas = al.out_ioas_id;
	open_port(&P[0], 0, VN0);
	open_port(&P[1], 1, VN1);
	/* Mapped after the attach: the domain pins it. */
	ram = mmap(NULL, 2 * PORT_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(ram, MAP_FAILED);
	mp.ioas_id = ioas;
	mp.user_va = (uintptr_t)ram;
	mp.length = 2 * PORT_MEM;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &mp), 0);
	ram_iova = mp.iova;
	for (i = 0; i < 2; i++) {
		P[i].mem = ram + i * PORT_MEM;
		P[i].iova = ram_iova + i * PORT_MEM;
	}
	return 0;
}

static void down(void)
{
	struct upmd_model_stats st;

	close_port(&P[0]);
	close_port(&P[1]);
	CU_ASSERT_EQUAL(upmd_k_close(ifd), 0);
	munmap(ram, 2 * PORT_MEM);
	assert_model_clean(m);
	CU_ASSERT_EQUAL(upmd_model_get_stats(m, &st), 0);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(m);
	m = NULL;
}

/* ---- the driver's side of the transport ---------------------------------------------- */

static uint64_t dev_features(struct port *p)
{
	uint64_t f;

	w32(p->cc, CC_DFSELECT, 0);
	f = r32(p->cc, CC_DF);
	w32(p->cc, CC_DFSELECT, 1);
	return f | ((uint64_t)r32(p->cc, CC_DF) << 32);
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; the status read back. */
static uint8_t negotiate(struct port *p, uint64_t feat)
{
	w8(p->cc, CC_STATUS, 0);
	CU_ASSERT_EQUAL(r8(p->cc, CC_STATUS), 0);
	w8(p->cc, CC_STATUS, ST_ACK);
	w8(p->cc, CC_STATUS, ST_ACK | ST_DRIVER);
	w32(p->cc, CC_GFSELECT, 0);
	w32(p->cc, CC_GF, (uint32_t)feat);
	w32(p->cc, CC_GFSELECT, 1);
	w32(p->cc, CC_GF, (uint32_t)(feat >> 32));
	w8(p->cc, CC_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	return r8(p->cc, CC_STATUS);
}

static void setup_queue(struct port *p, unsigned qi, uint16_t vector)
{
	struct vring *r = &p->q[qi];
	uint8_t *base = p->mem + qi * 0x4000UL;

	memset(r, 0, sizeof(*r));
	memset(base, 0, 0x4000);
	r->size = QSZ;
	r->desc = base;
	r->avail = base + 0x1000;
	r->used = base + 0x2000;
	r->desc_iova = iova_of(p, r->desc);
	r->avail_iova = iova_of(p, r->avail);
	r->used_iova = iova_of(p, r->used);
	w16(p->cc, CC_QSELECT, (uint16_t)qi);
	CU_ASSERT_EQUAL(r16(p->cc, CC_QSIZE), 256);	/* the device's maximum */
	w16(p->cc, CC_QSIZE, QSZ);
	CU_ASSERT_EQUAL(r16(p->cc, CC_QSIZE), QSZ);
	w16(p->cc, CC_QMSIX, vector);
	w64(p->cc, CC_QDESC, r->desc_iova);
	/* 64-bit fields as two halves, as the spec allows. */
	w32(p->cc, CC_QDRIVER, (uint32_t)r->avail_iova);
	w32(p->cc, CC_QDRIVER + 4, (uint32_t)(r->avail_iova >> 32));
	w64(p->cc, CC_QDEVICE, r->used_iova);
	CU_ASSERT_EQUAL(r64(p->cc, CC_QDRIVER), r->avail_iova);
	CU_ASSERT_EQUAL(r64(p->cc, CC_QDEVICE), r->used_iova);
	r->notify = p->nt + (uint64_t)r16(p->cc, CC_QNOTIFY_OFF) * p->mult;
	w16(p->cc, CC_QENABLE, 1);
	CU_ASSERT_EQUAL(r16(p->cc, CC_QENABLE), 1);
	r->up = true;
}

/* Port 0: RX 0, TX 1, TX 3 (pair 1), control 4; port 1: RX 0, TX 1, control 2. */
static void bring_up(int i)
{
	struct port *p = &P[i];

	CU_ASSERT_EQUAL_FATAL(negotiate(p, i ? FEAT1 : FEAT0), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	p->rx_slot = p->tx_slot = 0;
	setup_queue(p, 0, 0);
	setup_queue(p, 1, 1);
	if (i == 0) {
		setup_queue(p, 3, 1);
		setup_queue(p, 4, NO_VEC);
	} else {
		setup_queue(p, 2, NO_VEC);
	}
	w16(p->cc, CC_MSIX, 2);
	w8(p->cc, CC_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	CU_ASSERT_EQUAL(r8(p->cc, CC_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
}

struct dbuf {
	uint64_t iova;
	uint32_t len;
	bool write;
};

/* Put a chain on the avail ring; its head. */
static uint16_t post(struct port *p, unsigned qi, const struct dbuf *b, unsigned n)
{
	struct vring *r = &p->q[qi];
	uint16_t head = r->next_desc;
	unsigned i;

	for (i = 0; i < n; i++) {
		uint16_t di = (uint16_t)((head + i) % r->size);
		uint8_t *d = r->desc + di * 16;

		put64(d, b[i].iova);
		put32(d + 8, b[i].len);
		put16(d + 12, (uint16_t)((b[i].write ? D_WRITE : 0) | (i + 1 < n ? D_NEXT : 0)));
		put16(d + 14, (uint16_t)((di + 1) % r->size));
	}
	r->next_desc = (uint16_t)((head + n) % r->size);
	put16(r->avail + 4 + 2 * (r->avail_idx % r->size), head);
	r->avail_idx++;
	/* Release: the descriptors and ring entry before the index. */
	__atomic_store_n((uint16_t *)(void *)(r->avail + 2), r->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void kick(struct port *p, unsigned qi)
{
	w16(p->q[qi].notify, 0, (uint16_t)qi);
}

static uint16_t used_idx(struct port *p, unsigned qi)
{
	return __atomic_load_n((uint16_t *)(void *)(p->q[qi].used + 2), __ATOMIC_ACQUIRE);
}

static bool wait_used(struct port *p, unsigned qi, uint16_t target)
{
	uint64_t deadline = now_ms() + 5000;

	while (used_idx(p, qi) != target) {
		if (now_ms() > deadline)
			return false;
		usleep(50);
	}
	return true;
}

static void used_elem(struct port *p, unsigned qi, uint16_t pos, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = p->q[qi].used + 4 + 8 * (pos % p->q[qi].size);

	*id = get32(e);
	*len = get32(e + 4);
}

static void post_rx(struct port *p, unsigned qi, unsigned count, uint32_t len)
{
	unsigned i;

	for (i = 0; i < count; i++) {
		uint8_t *b = slot(p, p->rx_slot++ % RX_SLOTS);
		struct dbuf d = { iova_of(p, b), len, true };
		uint16_t head;

		memset(b, 0xee, PG);
		head = post(p, qi, &d, 1);
		p->q[qi].buf_of[head] = b;
	}
	kick(p, qi);
}

static void make_frame(uint8_t *f, const char *dst, const char *src, size_t len, uint8_t seed)
{
	unsigned v[6], i;

	sscanf(dst, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
	for (i = 0; i < 6; i++)
		f[i] = (uint8_t)v[i];
	sscanf(src, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
	for (i = 0; i < 6; i++)
		f[6 + i] = (uint8_t)v[i];
	f[12] = 0x88;
	f[13] = 0xb5;	/* local experimental ethertype */
	for (i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
}

/* Transmit header + frame as a two-descriptor chain and wait for its completion. */
static bool send(struct port *p, unsigned qi, const uint8_t *frame, size_t len)
{
	uint8_t *h = slot(p, TX_SLOT0 + p->tx_slot++ % TX_SLOTS);
	uint8_t *f = slot(p, TX_SLOT0 + p->tx_slot++ % TX_SLOTS);
	struct dbuf d[2] = { { iova_of(p, h), HDR, false }, { iova_of(p, f), (uint32_t)len, false } };
	uint16_t target = (uint16_t)(used_idx(p, qi) + 1), head;
	uint32_t id, ulen;

	memset(h, 0, HDR);
	memcpy(f, frame, len);
	head = post(p, qi, d, 2);
	kick(p, qi);
	if (!wait_used(p, qi, target))
		return false;
	used_elem(p, qi, (uint16_t)(target - 1), &id, &ulen);
	CU_ASSERT_EQUAL(id, head);
	CU_ASSERT_EQUAL(ulen, 0);	/* the device wrote nothing into a TX chain */
	p->q[qi].used_seen = target;
	return true;
}

/* Take the next RX completion: its buffer and used length. */
static uint8_t *recv(struct port *p, unsigned qi, uint32_t *len)
{
	struct vring *r = &p->q[qi];
	uint32_t id;
	uint64_t deadline = now_ms() + 5000;

	/* Several may have completed at once: wait for any not taken yet. */
	while (used_idx(p, qi) == r->used_seen) {
		if (now_ms() > deadline)
			return NULL;
		usleep(50);
	}
	used_elem(p, qi, r->used_seen, &id, len);
	r->used_seen++;
	CU_ASSERT_TRUE_FATAL(id < QSZ && r->buf_of[id]);
	return r->buf_of[id];
}

/* A control command; returns the ack the device wrote. */
static int ctrl(struct port *p, unsigned qi, uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	uint8_t *b = slot(p, CTRL_SLOT);
	struct dbuf d[3] = {
		{ iova_of(p, b), 2, false },
		{ iova_of(p, b + 64), len, false },
		{ iova_of(p, b + 2048), 1, true },
	};
	uint16_t target = (uint16_t)(used_idx(p, qi) + 1), head;
	uint32_t id, ulen;

	b[0] = cls;
	b[1] = cmd;
	if (len)
		memcpy(b + 64, data, len);
	b[2048] = 0xaa;
	if (len) {
		head = post(p, qi, d, 3);
	} else {
		d[1] = d[2];
		head = post(p, qi, d, 2);
	}
	kick(p, qi);
	if (!wait_used(p, qi, target))
		return -ETIMEDOUT;
	used_elem(p, qi, (uint16_t)(target - 1), &id, &ulen);
	CU_ASSERT_EQUAL(id, head);
	CU_ASSERT_EQUAL(ulen, 1);
	return b[2048];
}

static bool wait_status(struct port *p, uint8_t bit)
{
	uint64_t deadline = now_ms() + 5000;

	while (!(r8(p->cc, CC_STATUS) & bit)) {
		if (now_ms() > deadline)
			return false;
		usleep(50);
	}
	return true;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_identity(void)
{
	static const struct { unsigned idx; uint64_t size; } regions[] = {
		{ 0, 0 }, { 1, 0x1000 }, { 2, 0 }, { 3, 0 }, { 4, 0x4000 }, { 5, 0 },
	};
	uint8_t cfg[256];
	unsigned ptr, n = 0, types = 0, i;
	uint8_t msix = 0;
	struct upmd_model_virtio_net_stats st;

	if (up(SPEC) < 0)
		return;
	cfg_read(P[0].dfd, cfg, sizeof(cfg));
	CU_ASSERT_EQUAL(get16(&cfg[0x00]), 0x1af4);
	CU_ASSERT_EQUAL(get16(&cfg[0x02]), 0x1041);
	CU_ASSERT_EQUAL(cfg[0x08], 1);			/* revision */
	CU_ASSERT_EQUAL(cfg[0x09], 0x00);		/* class 02 00 00 */
	CU_ASSERT_EQUAL(cfg[0x0a], 0x00);
	CU_ASSERT_EQUAL(cfg[0x0b], 0x02);
	CU_ASSERT_EQUAL(get16(&cfg[0x2c]), 0x1af4);
	CU_ASSERT_EQUAL(get16(&cfg[0x2e]), 1);
	CU_ASSERT_EQUAL(get32(&cfg[0x10]), 0);		/* no BAR0 */
	CU_ASSERT_EQUAL(get32(&cfg[0x20]) & 0xf, 0xc);	/* BAR4: 64-bit, prefetchable */
	CU_ASSERT_TRUE(get16(&cfg[0x06]) & 0x10);	/* capability list */
	CU_ASSERT_EQUAL(cfg[0x3d], 1);			/* INTA# */

	/* Capabilities at QEMU's offsets, everything in BAR4. */
	for (ptr = cfg[0x34]; ptr && n < 48; ptr = cfg[ptr + 1], n++) {
		if (cfg[ptr] == 0x11) {
			msix = (uint8_t)ptr;
			continue;
		}
		CU_ASSERT_EQUAL(cfg[ptr], 0x09);
		CU_ASSERT_EQUAL(cfg[ptr + 4], 4);
		types |= 1u << cfg[ptr + 3];
		switch (cfg[ptr + 3]) {
		case VIRTIO_CAP_COMMON:
			CU_ASSERT_EQUAL(ptr, 0x40);
			CU_ASSERT_EQUAL(cfg[ptr + 2], 16);
			CU_ASSERT_EQUAL(get32(&cfg[ptr + 8]), 0x0000);
			CU_ASSERT_TRUE(get32(&cfg[ptr + 12]) >= 0x38);
			break;
		case VIRTIO_CAP_ISR:
			CU_ASSERT_EQUAL(ptr, 0x50);
			CU_ASSERT_EQUAL(get32(&cfg[ptr + 8]), 0x1000);
			break;
		case VIRTIO_CAP_DEVICE:
			CU_ASSERT_EQUAL(ptr, 0x60);
			CU_ASSERT_EQUAL(get32(&cfg[ptr + 8]), 0x2000);
			CU_ASSERT_TRUE(get32(&cfg[ptr + 12]) >= 10);
			break;
		case VIRTIO_CAP_NOTIFY:
			CU_ASSERT_EQUAL(ptr, 0x70);
			CU_ASSERT_EQUAL(cfg[ptr + 2], 20);
			CU_ASSERT_EQUAL(get32(&cfg[ptr + 8]), 0x3000);
			CU_ASSERT_EQUAL(get32(&cfg[ptr + 16]), 4);
			break;
		default:
			CU_FAIL("unexpected virtio capability type");
		}
	}
	CU_ASSERT_EQUAL(types, 0x1e);
	/* MSI-X: 2 * 2 pairs + 2 vectors, table at BAR1 + 0, PBA at BAR1 + 0x800. */
	CU_ASSERT_EQUAL_FATAL(msix != 0, true);
	CU_ASSERT_EQUAL((get16(&cfg[msix + 2]) & 0x7ff) + 1, 6);
	CU_ASSERT_EQUAL(get32(&cfg[msix + 4]), 0x00000001);
	CU_ASSERT_EQUAL(get32(&cfg[msix + 8]), 0x00000801);
	cfg_read(P[1].dfd, cfg, sizeof(cfg));
	for (ptr = cfg[0x34], n = 0; ptr && cfg[ptr] != 0x11 && n < 48; ptr = cfg[ptr + 1], n++)
		;
	CU_ASSERT_EQUAL(cfg[ptr], 0x11);
	CU_ASSERT_EQUAL((get16(&cfg[ptr + 2]) & 0x7ff) + 1, 4);	/* one pair */

	/* vfio regions: BAR0 absent (verified on QEMU), BAR4 mmappable. */
	for (i = 0; i < UPMD_DIM(regions); i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = regions[i].idx };

		CU_ASSERT_EQUAL(upmd_k_ioctl(P[0].dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), 0);
		CU_ASSERT_EQUAL(ri.size, regions[i].size);
		if (regions[i].idx == 4)
			CU_ASSERT_TRUE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
	}
	{
		struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };

		CU_ASSERT_EQUAL(upmd_k_ioctl(P[0].dfd, VFIO_DEVICE_GET_IRQ_INFO, &ii), 0);
		CU_ASSERT_EQUAL(ii.count, 6);
	}

	/* Common and device configuration. */
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_NUMQ), 5);
	CU_ASSERT_EQUAL(r16(P[1].cc, CC_NUMQ), 3);
	CU_ASSERT_EQUAL(dev_features(&P[0]), F_V1 | F_PLATFORM | F_MAC | F_STATUS | F_MRG | F_CTRL_VQ |
						    F_CTRL_RX | F_MQ | F_CTRL_MAC);
	CU_ASSERT_EQUAL(dev_features(&P[1]), F_V1 | F_PLATFORM | F_MAC | F_STATUS | F_MRG | F_CTRL_VQ |
						    F_CTRL_RX | F_CTRL_MAC);
	CU_ASSERT_EQUAL(r8(P[0].dc, 0), 0x52);
	CU_ASSERT_EQUAL(r8(P[0].dc, 5), 0x56);
	CU_ASSERT_EQUAL(r8(P[1].dc, 5), 0x57);
	CU_ASSERT_EQUAL(r16(P[0].dc, 6), 1);		/* LINK_UP */
	CU_ASSERT_EQUAL(r16(P[0].dc, 8), 2);		/* max_virtqueue_pairs */
	CU_ASSERT_EQUAL(r16(P[1].dc, 8), 1);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_MSIX), NO_VEC);

	/* Queue registers: size shrinks to a power of two only; vectors
	 * past the table read NO_VECTOR; no such queue reads size 0. */
	w16(P[0].cc, CC_QSELECT, 3);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSELECT), 3);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSIZE), 256);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QNOTIFY_OFF), 3);
	w16(P[0].cc, CC_QSIZE, 128);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSIZE), 128);
	w16(P[0].cc, CC_QSIZE, 100);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSIZE), 128);
	w16(P[0].cc, CC_QSIZE, 512);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSIZE), 128);
	w16(P[0].cc, CC_QMSIX, 5);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QMSIX), 5);
	w16(P[0].cc, CC_QMSIX, 6);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QMSIX), NO_VEC);
	w64(P[0].cc, CC_QDESC, 0x123456789000ULL);
	CU_ASSERT_EQUAL(r64(P[0].cc, CC_QDESC), 0x123456789000ULL);
	w16(P[0].cc, CC_QSELECT, 5);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSIZE), 0);
	/* A reset puts every queue back. */
	w8(P[0].cc, CC_STATUS, ST_ACK);
	w8(P[0].cc, CC_STATUS, 0);
	CU_ASSERT_EQUAL(r8(P[0].cc, CC_STATUS), 0);
	w16(P[0].cc, CC_QSELECT, 3);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QSIZE), 256);
	CU_ASSERT_EQUAL(r16(P[0].cc, CC_QMSIX), NO_VEC);
	CU_ASSERT_EQUAL(r64(P[0].cc, CC_QDESC), 0);

	/* pread/pwrite on the BAR reach the same registers. */
	{
		uint16_t v = 0;

		CU_ASSERT_EQUAL(upmd_k_pread(P[0].dfd, &v, 2, (off_t)(VFIO_PCI_INDEX_TO_OFFSET(4) + CC_NUMQ)), 2);
		CU_ASSERT_EQUAL(v, 5);
	}
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(m, VN0, &st), 0);
	CU_ASSERT_TRUE(st.promisc);
	CU_ASSERT_EQUAL(st.active_pairs, 1);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(m, "00:06.0", &st), -ENOENT);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(m, NULL, &st), -EINVAL);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(NULL, VN0, &st), -EINVAL);
	down();
}

static void test_spec_args(void)
{
	static const char *const bad[] = {
		"virtio-net@00:04.0:mac=52:54:00:12:34",
		"virtio-net@00:04.0:mac=01:54:00:12:34:56",	/* multicast */
		"virtio-net@00:04.0:mac=52:54:00:12:34:zz",
		"virtio-net@00:04.0:queues=0",
		"virtio-net@00:04.0:queues=17",
		"virtio-net@00:04.0:peer=00:04.0",		/* itself */
		"virtio-net@00:04.0:peer=junk",
		"virtio-net@00:04.0:bogus=1",
	};
	struct upmd_model *x = NULL;
	struct upmd_model_virtio_net_stats st;
	unsigned i;
	int old = upmd_log_level_cur;

	upmd_log_set_level(UPMD_LOG_EMERG);
	for (i = 0; i < UPMD_DIM(bad); i++) {
		CU_ASSERT_EQUAL(upmd_model_parse(bad[i], &x), -EINVAL);
		CU_ASSERT_PTR_NULL(x);
	}
	upmd_log_set_level(old);
	/* Default MAC counts up from QEMU's with the device index. */
	CU_ASSERT_EQUAL_FATAL(upmd_model_parse("edu@00:03.0;virtio-net@00:04.0;virtio-net@00:05.0:queues=16", &x), 0);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(x, "00:04.0", &st), 0);
	CU_ASSERT_EQUAL(memcmp(st.mac, "\x52\x54\x00\x12\x34\x57", 6), 0);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(x, "0000:00:05.0", &st), 0);
	CU_ASSERT_EQUAL(st.mac[5], 0x58);
	CU_ASSERT_EQUAL(upmd_model_virtio_net_stats(x, "00:03.0", &st), -ENODEV);
	upmd_model_destroy(x);
}

/* Frames both ways: bytes, header, used lengths, counters, interrupts. */
static void test_traffic(void)
{
	uint8_t f[1514], *b;
	uint32_t len;
	int efd[3], i;
	struct upmd_model_virtio_net_stats s0, s1;
	struct upmd_model_stats ms;

	if (up(SPEC) < 0)
		return;
	bring_up(0);
	bring_up(1);
	/* MSI-X vectors 0..2 of port 0: RX, TX, config. */
	{
		struct {
			struct vfio_irq_set s;
			int32_t fd[3];
		} __attribute__((packed)) set = {
			{ .argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			  .index = VFIO_PCI_MSIX_IRQ_INDEX, .start = 0, .count = 3 },
			{ 0 },
		};

		for (i = 0; i < 3; i++) {
			efd[i] = upmd_k_eventfd(0, EFD_NONBLOCK);
			set.fd[i] = efd[i];
		}
		CU_ASSERT_EQUAL(upmd_k_ioctl(P[0].dfd, VFIO_DEVICE_SET_IRQS, &set), 0);
	}
	post_rx(&P[0], 0, 8, 2048);
	post_rx(&P[1], 0, 8, 2048);

	/* 0 -> 1, to port 1's MAC. */
	make_frame(f, MAC1, MAC0, 60, 1);
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, 60));
	b = recv(&P[1], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(len, HDR + 60);
	CU_ASSERT_EQUAL(b[0], 0);			/* flags */
	CU_ASSERT_EQUAL(b[1], 0);			/* GSO_NONE */
	CU_ASSERT_EQUAL(get16(b + 10), 1);		/* num_buffers */
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, 60), 0);
	CU_ASSERT_EQUAL(b[HDR + 60], 0xee);		/* nothing past the frame */
	CU_ASSERT_EQUAL(efd_count(efd[1], 1000), 1);	/* port 0's TX vector */

	/* 1 -> 0, full size, and port 0's RX vector fires. */
	make_frame(f, MAC0, MAC1, sizeof(f), 2);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	b = recv(&P[0], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(len, HDR + sizeof(f));
	CU_ASSERT_EQUAL(get16(b + 10), 1);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);
	CU_ASSERT_EQUAL(efd_count(efd[0], 1000), 1);

	/* VIRTQ_AVAIL_F_NO_INTERRUPT: used ring updated, no interrupt. */
	put16(P[0].q[0].avail, 1);
	CU_ASSERT_TRUE(send(&P[1], 1, f, 100));
	CU_ASSERT_PTR_NOT_NULL(recv(&P[0], 0, &len));
	CU_ASSERT_EQUAL(len, HDR + 100);
	CU_ASSERT_EQUAL(efd_count(efd[0], 100), 0);
	put16(P[0].q[0].avail, 0);
	CU_ASSERT_TRUE(send(&P[1], 1, f, 100));
	CU_ASSERT_PTR_NOT_NULL(recv(&P[0], 0, &len));
	CU_ASSERT_EQUAL(efd_count(efd[0], 1000), 1);
	/* The ISR recorded the queue interrupt; reading clears it. */
	CU_ASSERT_EQUAL(r8(P[0].isr, 0) & 1, 1);
	CU_ASSERT_EQUAL(r8(P[0].isr, 0), 0);

	/* Several frames posted before one kick all go. */
	{
		uint16_t t = used_idx(&P[0], 1);
		uint8_t *h = slot(&P[0], TX_SLOT0 + 10);
		struct dbuf d = { iova_of(&P[0], h), HDR + 64, false };

		memset(h, 0, HDR);
		make_frame(h + HDR, MAC1, MAC0, 64, 9);
		for (i = 0; i < 3; i++)
			post(&P[0], 1, &d, 1);
		kick(&P[0], 1);
		CU_ASSERT_TRUE(wait_used(&P[0], 1, (uint16_t)(t + 3)));
		for (i = 0; i < 3; i++) {
			b = recv(&P[1], 0, &len);
			CU_ASSERT_PTR_NOT_NULL_FATAL(b);
			CU_ASSERT_EQUAL(len, HDR + 64);
			CU_ASSERT_EQUAL(memcmp(b + HDR, h + HDR, 64), 0);
		}
	}
	s0 = vstats(0);
	s1 = vstats(1);
	CU_ASSERT_EQUAL(s0.tx_frames, 4);
	CU_ASSERT_EQUAL(s0.tx_bytes, 60 + 3 * 64);
	CU_ASSERT_EQUAL(s1.rx_frames, 4);
	CU_ASSERT_EQUAL(s1.rx_bytes, 60 + 3 * 64);
	CU_ASSERT_EQUAL(s1.tx_frames, 3);
	CU_ASSERT_EQUAL(s0.rx_frames, 3);
	CU_ASSERT_EQUAL(s0.rx_dropped + s1.rx_dropped + s0.rx_filtered + s1.rx_filtered, 0);
	CU_ASSERT_EQUAL(s0.resets_needed + s1.resets_needed, 0);
	CU_ASSERT_EQUAL(upmd_model_get_stats(m, &ms), 0);
	CU_ASSERT_EQUAL(ms.faults, 0);
	CU_ASSERT_TRUE(ms.dma_bytes > 0);
	for (i = 0; i < 3; i++)
		upmd_k_close(efd[i]);
	down();
}

/* A frame larger than one buffer spans several with MRG_RXBUF, and is dropped without. */
static void test_mrg_rxbuf(void)
{
	static uint8_t f[3000];
	uint8_t *b0, *b1, *b;
	uint32_t l0, l1, len;
	uint16_t before;

	if (up(SPEC) < 0)
		return;
	bring_up(0);
	bring_up(1);
	post_rx(&P[0], 0, 4, 2048);
	post_rx(&P[1], 0, 4, 2048);

	/* 1 -> 0: port 0 negotiated MRG_RXBUF. */
	make_frame(f, MAC0, MAC1, sizeof(f), 3);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	b0 = recv(&P[0], 0, &l0);
	b1 = recv(&P[0], 0, &l1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b1);
	CU_ASSERT_EQUAL(l0, 2048);
	CU_ASSERT_EQUAL(l1, HDR + sizeof(f) - 2048);
	CU_ASSERT_EQUAL(get16(b0 + 10), 2);		/* num_buffers */
	CU_ASSERT_EQUAL(memcmp(b0 + HDR, f, 2048 - HDR), 0);
	CU_ASSERT_EQUAL(memcmp(b1, f + 2048 - HDR, l1), 0);
	CU_ASSERT_EQUAL(used_idx(&P[0], 0), 2);
	CU_ASSERT_EQUAL(vstats(0).rx_frames, 1);

	/* 0 -> 1: port 1 did not; a 2 KiB buffer cannot hold it. */
	before = used_idx(&P[1], 0);
	make_frame(f, MAC1, MAC0, sizeof(f), 4);
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(vstats(1).rx_dropped, 1);
	CU_ASSERT_EQUAL(vstats(1).rx_frames, 0);
	CU_ASSERT_EQUAL(used_idx(&P[1], 0), before);	/* nothing consumed */
	/* ...and the buffer is still there for a frame that fits. */
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, 1000));
	b = recv(&P[1], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(len, HDR + 1000);
	CU_ASSERT_EQUAL(get16(b + 10), 1);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, 1000), 0);
	down();
}

/* No RX buffer posted: the frame is dropped and counted, the TX completes. */
static void test_no_rx_buffers(void)
{
	uint8_t f[128];
	struct upmd_model_virtio_net_stats s;

	if (up(SPEC) < 0)
		return;
	bring_up(0);
	bring_up(1);
	make_frame(f, MAC0, MAC1, sizeof(f), 5);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	s = vstats(0);
	CU_ASSERT_EQUAL(s.rx_dropped, 2);
	CU_ASSERT_EQUAL(s.rx_frames, 0);
	CU_ASSERT_EQUAL(vstats(1).tx_frames, 2);
	CU_ASSERT_EQUAL(used_idx(&P[0], 0), 0);
	/* Posted later, buffers take the next frame. */
	post_rx(&P[0], 0, 1, 2048);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(used_idx(&P[0], 0), 1);
	CU_ASSERT_EQUAL(vstats(0).rx_frames, 1);
	down();
}

/* One port alone: TX frames are consumed and counted. */
static void test_no_peer(void)
{
	uint8_t f[64];

	if (up("virtio-net@" VN0 ":queues=2;virtio-net@" VN1) < 0)
		return;
	bring_up(0);
	bring_up(1);
	post_rx(&P[1], 0, 2, 2048);
	make_frame(f, MAC1, MAC0, sizeof(f), 6);
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(vstats(0).tx_frames, 1);
	CU_ASSERT_EQUAL(vstats(1).rx_frames + vstats(1).rx_dropped, 0);
	CU_ASSERT_EQUAL(used_idx(&P[1], 0), 0);
	down();
}

/* Receive filter, MAC and queue pairs through the control queue. */
static void test_ctrl(void)
{
	static const char *const other = "52:54:00:aa:bb:cc";
	uint8_t f[64], on = 1, off = 0, mac[6] = { 0x52, 0x54, 0x00, 0x01, 0x02, 0x03 };
	uint8_t gen, *b;
	uint16_t pairs;
	uint32_t len;
	struct upmd_model_virtio_net_stats s;

	if (up(SPEC) < 0)
		return;
	bring_up(0);
	bring_up(1);
	post_rx(&P[0], 0, 16, 2048);
	post_rx(&P[1], 0, 16, 2048);

	/* After reset the device is promiscuous (QEMU's default). */
	make_frame(f, other, MAC1, sizeof(f), 7);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_PTR_NOT_NULL(recv(&P[0], 0, &len));

	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 0, 0, &off, 1), 0);	/* RX PROMISC off */
	CU_ASSERT_FALSE(vstats(0).promisc);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(vstats(0).rx_filtered, 1);
	make_frame(f, MAC0, MAC1, sizeof(f), 8);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	b = recv(&P[0], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);
	make_frame(f, "ff:ff:ff:ff:ff:ff", MAC1, sizeof(f), 9);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_PTR_NOT_NULL(recv(&P[0], 0, &len));
	make_frame(f, "01:00:5e:00:00:01", MAC1, sizeof(f), 10);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(vstats(0).rx_filtered, 2);
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 0, 1, &on, 1), 0);	/* RX ALLMULTI on */
	CU_ASSERT_TRUE(vstats(0).allmulti);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	b = recv(&P[0], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);
	CU_ASSERT_EQUAL(vstats(0).rx_filtered, 2);
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 0, 2, &on, 1), 1);	/* ALLUNI: not offered */

	/* MAC ADDR_SET: config space changes, the filter follows. */
	gen = r8(P[0].cc, CC_GEN);
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 1, 1, mac, 6), 0);
	CU_ASSERT_NOT_EQUAL(r8(P[0].cc, CC_GEN), gen);
	CU_ASSERT_EQUAL(r8(P[0].dc, 3), 0x01);
	CU_ASSERT_EQUAL(r8(P[0].dc, 5), 0x03);
	CU_ASSERT_EQUAL(memcmp(vstats(0).mac, mac, 6), 0);
	make_frame(f, MAC0, MAC1, sizeof(f), 11);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(vstats(0).rx_filtered, 3);
	make_frame(f, "52:54:00:01:02:03", MAC1, sizeof(f), 12);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_PTR_NOT_NULL(recv(&P[0], 0, &len));
	/* MAC TABLE_SET: one unicast entry, no multicast ones. */
	{
		uint8_t t[4 + 6 + 4] = { 1, 0, 0, 0, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, 0, 0, 0, 0 };

		make_frame(f, other, MAC1, sizeof(f), 18);
		CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
		CU_ASSERT_EQUAL(vstats(0).rx_filtered, 4);
		CU_ASSERT_EQUAL(ctrl(&P[0], 4, 1, 0, t, sizeof(t)), 0);
		CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
		b = recv(&P[0], 0, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);
		CU_ASSERT_EQUAL(vstats(0).rx_filtered, 4);
		t[0] = 2;	/* claims more entries than it carries */
		CU_ASSERT_EQUAL(ctrl(&P[0], 4, 1, 0, t, sizeof(t)), 1);
	}
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 1, 1, mac, 5), 1);	/* short */
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 9, 0, NULL, 0), 1);	/* unknown class */

	/* MQ VQ_PAIRS_SET within 1..max_virtqueue_pairs. */
	pairs = 2;
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 4, 0, &pairs, 2), 0);
	CU_ASSERT_EQUAL(vstats(0).active_pairs, 2);
	pairs = 3;
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 4, 0, &pairs, 2), 1);
	pairs = 0;
	CU_ASSERT_EQUAL(ctrl(&P[0], 4, 4, 0, &pairs, 2), 1);
	CU_ASSERT_EQUAL(vstats(0).active_pairs, 2);
	pairs = 1;
	CU_ASSERT_EQUAL(ctrl(&P[1], 2, 4, 0, &pairs, 2), 1);	/* port 1 has no MQ */
	s = vstats(0);
	CU_ASSERT_EQUAL(s.ctrl_cmds, 11);
	CU_ASSERT_EQUAL(s.ctrl_errors, 6);

	/* TX on pair 1 of port 0 lands on the peer's only pair. */
	make_frame(f, MAC1, MAC0, sizeof(f), 13);
	CU_ASSERT_TRUE_FATAL(send(&P[0], 3, f, sizeof(f)));
	b = recv(&P[1], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);
	/* Port 1's pair 0 lands on port 0's pair 0 of two. */
	make_frame(f, "52:54:00:01:02:03", MAC1, sizeof(f), 14);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	b = recv(&P[0], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);

	/* A reset restores the configured MAC, promiscuity and one pair. */
	w8(P[0].cc, CC_STATUS, 0);
	s = vstats(0);
	CU_ASSERT_TRUE(s.promisc);
	CU_ASSERT_FALSE(s.allmulti);
	CU_ASSERT_EQUAL(s.active_pairs, 1);
	CU_ASSERT_EQUAL(r8(P[0].dc, 5), 0x56);
	down();
}

static void test_features(void)
{
	static const uint64_t refused[] = {
		FEAT1 & ~F_PLATFORM,		/* the device is behind an IOMMU */
		FEAT1 & ~F_V1,			/* modern only */
		FEAT1 | F_CSUM,			/* not offered */
		FEAT1 | F_MQ,			/* not offered by port 1 */
		(FEAT1 & ~F_CTRL_VQ),		/* CTRL_RX without the control queue */
	};
	unsigned i;

	if (up(SPEC) < 0)
		return;
	for (i = 0; i < UPMD_DIM(refused); i++)
		CU_ASSERT_EQUAL(negotiate(&P[1], refused[i]), ST_ACK | ST_DRIVER);
	CU_ASSERT_EQUAL(negotiate(&P[1], F_V1 | F_PLATFORM), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	CU_ASSERT_EQUAL(negotiate(&P[1], FEAT1), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	/* Fixed once FEATURES_OK is set. */
	w32(P[1].cc, CC_GFSELECT, 0);
	w32(P[1].cc, CC_GF, 0);
	CU_ASSERT_EQUAL(r32(P[1].cc, CC_GF), (uint32_t)FEAT1);
	w32(P[1].cc, CC_GFSELECT, 1);
	CU_ASSERT_EQUAL(r32(P[1].cc, CC_GF), (uint32_t)(FEAT1 >> 32));
	CU_ASSERT_EQUAL(negotiate(&P[0], FEAT0), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	/* A reset forgets the features. */
	w8(P[1].cc, CC_STATUS, 0);
	CU_ASSERT_EQUAL(r8(P[1].cc, CC_STATUS), 0);
	w32(P[1].cc, CC_GFSELECT, 0);
	CU_ASSERT_EQUAL(r32(P[1].cc, CC_GF), 0);
	/* The whole dance with queues works after all that. */
	bring_up(1);
	CU_ASSERT_EQUAL(vstats(1).status, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	down();
}

/* IOMMU faults and malformed rings: DEVICE_NEEDS_RESET until a reset. */
static void test_faults(void)
{
	struct iommu_ioas_map mp = { .size = sizeof(mp), .flags = IOMMU_IOAS_MAP_READABLE };
	struct upmd_model_fault flt;
	uint8_t f[100], *ro, *b;
	uint64_t bad, ro_iova;
	uint32_t len;
	uint16_t t;
	int efd, old = upmd_log_level_cur;

	if (up(SPEC) < 0)
		return;
	ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(ro, MAP_FAILED);
	memset(ro, 0x33, PG);
	mp.ioas_id = ioas;
	mp.user_va = (uintptr_t)ro;
	mp.length = PG;
	CU_ASSERT_EQUAL_FATAL(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &mp), 0);
	ro_iova = mp.iova;
	/* Far from both mappings. */
	bad = UPMD_MAX(ram_iova + 2 * PORT_MEM, ro_iova + PG) + 0x10000000ULL;
	bring_up(0);
	bring_up(1);
	{
		struct {
			struct vfio_irq_set s;
			int32_t fd[3];
		} __attribute__((packed)) set = {
			{ .argsz = sizeof(set), .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			  .index = VFIO_PCI_MSIX_IRQ_INDEX, .start = 0, .count = 3 },
			{ -1, -1, 0 },
		};

		efd = upmd_k_eventfd(0, EFD_NONBLOCK);
		set.fd[2] = efd;
		CU_ASSERT_EQUAL(upmd_k_ioctl(P[0].dfd, VFIO_DEVICE_SET_IRQS, &set), 0);
	}
	post_rx(&P[1], 0, 4, 2048);
	upmd_model_stats_reset(m);

	/* A TX descriptor at an unmapped IOVA. */
	log_capture();
	{
		struct dbuf d = { bad, 64, false };

		t = used_idx(&P[0], 1);
		post(&P[0], 1, &d, 1);
		kick(&P[0], 1);
	}
	CU_ASSERT_TRUE_FATAL(wait_status(&P[0], ST_NEEDS_RESET));
	ASSERT_LOG_HAS("device needs reset");
	log_release();
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &flt), 0);
	CU_ASSERT_STRING_EQUAL(flt.bdf, VN0);
	CU_ASSERT_EQUAL(flt.iova, bad);
	CU_ASSERT_FALSE(flt.write);
	CU_ASSERT_EQUAL(flt.reason, UPMD_MODEL_FAULT_UNMAPPED);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &flt), -ENOENT);
	CU_ASSERT_EQUAL(used_idx(&P[0], 1), t);
	CU_ASSERT_EQUAL(efd_count(efd, 1000), 1);		/* configuration interrupt */
	CU_ASSERT_EQUAL(r8(P[0].isr, 0) & 2, 2);
	CU_ASSERT_EQUAL(vstats(0).resets_needed, 1);
	/* Stopped: a good frame now is not taken. */
	{
		uint8_t *h = slot(&P[0], TX_SLOT0);
		struct dbuf d = { iova_of(&P[0], h), HDR + 64, false };

		memset(h, 0, HDR + 64);
		post(&P[0], 1, &d, 1);
		kick(&P[0], 1);
		usleep(50000);
		CU_ASSERT_EQUAL(used_idx(&P[0], 1), t);
		CU_ASSERT_EQUAL(vstats(0).tx_frames, 0);
	}
	/* Frames sent to a device that needs reset are dropped. */
	make_frame(f, MAC0, MAC1, sizeof(f), 15);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	CU_ASSERT_EQUAL(vstats(0).rx_dropped, 1);
	/* Reset, and it works again. */
	w8(P[0].cc, CC_STATUS, 0);
	CU_ASSERT_EQUAL(r8(P[0].cc, CC_STATUS), 0);
	bring_up(0);
	make_frame(f, MAC1, MAC0, sizeof(f), 16);
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, sizeof(f)));
	b = recv(&P[1], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);

	/* An RX buffer in a read-only mapping: a write fault at the receiver,
	 * the memory untouched; the sender's TX still completes. */
	upmd_log_set_level(UPMD_LOG_EMERG);
	{
		struct dbuf d = { ro_iova, 2048, true };

		bring_up(1);
		post(&P[1], 0, &d, 1);
		kick(&P[1], 0);
	}
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, sizeof(f)));
	CU_ASSERT_TRUE_FATAL(wait_status(&P[1], ST_NEEDS_RESET));
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(m, &flt), 0);
	CU_ASSERT_STRING_EQUAL(flt.bdf, VN1);
	CU_ASSERT_TRUE(flt.write);
	CU_ASSERT_EQUAL(flt.reason, UPMD_MODEL_FAULT_NO_WRITE);
	CU_ASSERT_TRUE(flt.iova >= ro_iova && flt.iova < ro_iova + PG);
	CU_ASSERT_EQUAL(ro[0], 0x33);
	CU_ASSERT_EQUAL(ro[100], 0x33);
	CU_ASSERT_EQUAL(used_idx(&P[1], 0), 0);

	/* A device-writable descriptor in a TX chain: needs reset, no fault. */
	bring_up(1);
	{
		uint8_t *h = slot(&P[1], TX_SLOT0);
		struct dbuf d[2] = { { iova_of(&P[1], h), HDR, false }, { iova_of(&P[1], h + 64), 64, true } };

		memset(h, 0, 128);
		post(&P[1], 1, d, 2);
		kick(&P[1], 1);
	}
	CU_ASSERT_TRUE(wait_status(&P[1], ST_NEEDS_RESET));
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &flt), -ENOENT);
	CU_ASSERT_EQUAL(used_idx(&P[1], 1), 0);

	/* A chain that loops back on itself. */
	bring_up(1);
	{
		uint8_t *dsc = P[1].q[1].desc, *h = slot(&P[1], TX_SLOT0);

		memset(h, 0, 128);
		put64(dsc, iova_of(&P[1], h));
		put32(dsc + 8, 64);
		put16(dsc + 12, D_NEXT);
		put16(dsc + 14, 0);
		put16(P[1].q[1].avail + 4, 0);
		__atomic_store_n((uint16_t *)(void *)(P[1].q[1].avail + 2), 1, __ATOMIC_RELEASE);
		kick(&P[1], 1);
	}
	CU_ASSERT_TRUE(wait_status(&P[1], ST_NEEDS_RESET));
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &flt), -ENOENT);
	/* An avail index far ahead of the ring. */
	bring_up(1);
	__atomic_store_n((uint16_t *)(void *)(P[1].q[1].avail + 2), 1000, __ATOMIC_RELEASE);
	kick(&P[1], 1);
	CU_ASSERT_TRUE(wait_status(&P[1], ST_NEEDS_RESET));
	upmd_log_set_level(old);
	CU_ASSERT_EQUAL(vstats(1).resets_needed, 4);

	/* And after a reset, both ways again. */
	bring_up(1);
	post_rx(&P[1], 0, 2, 2048);
	post_rx(&P[0], 0, 2, 2048);
	CU_ASSERT_TRUE_FATAL(send(&P[0], 1, f, sizeof(f)));
	CU_ASSERT_PTR_NOT_NULL(recv(&P[1], 0, &len));
	make_frame(f, MAC0, MAC1, sizeof(f), 17);
	CU_ASSERT_TRUE_FATAL(send(&P[1], 1, f, sizeof(f)));
	b = recv(&P[0], 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(memcmp(b + HDR, f, sizeof(f)), 0);
	CU_ASSERT_EQUAL(upmd_model_fault_pop(m, &flt), -ENOENT);

	upmd_k_close(efd);
	down();
	munmap(ro, PG);
}

static const struct upmd_test tests[] = {
	{ "identity, capabilities, registers", test_identity },
	{ "spec arguments and introspection", test_spec_args },
	{ "feature negotiation", test_features },
	{ "traffic both ways, header, interrupts", test_traffic },
	{ "MRG_RXBUF spanning, and dropping without it", test_mrg_rxbuf },
	{ "no RX buffers: dropped and counted", test_no_rx_buffers },
	{ "no peer: TX consumed", test_no_peer },
	{ "control queue: filter, MAC, queue pairs", test_ctrl },
	{ "faults and malformed rings: needs reset, then works", test_faults },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "model virtio-net", NULL, NULL, tests })
