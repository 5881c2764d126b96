/*
 * In the guest, with only the public API: bring up QEMU's NVMe through the
 * vfio cdev and the one IOAS with hugepage memory, issue an admin Identify
 * and print the model string; read the virtio-net and e1000e BARs through
 * the same IOAS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/upmd.h>

/* NVMe controller registers (NVMe base specification, BAR0). */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_DOORBELL_BASE 0x1000
#define NVME_CC_EN 0x1
#define NVME_CC_IOSQES_64 (6u << 16)
#define NVME_CC_IOCQES_16 (4u << 20)
#define NVME_CSTS_RDY 0x1
#define NVME_CSTS_CFS 0x2
#define NVME_ADMIN_IDENTIFY 0x06
#define NVME_IDENTIFY_CNS_CTRL 1
#define QDEPTH 16

struct nvme_sqe {
	uint32_t cdw0;		/* opcode | command id << 16 */
	uint32_t nsid;
	uint64_t rsvd;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct nvme_sqe) == 64, "NVMe SQ entry is 64 bytes");

struct nvme_cqe {
	uint32_t dw0, dw1;
	uint16_t sq_head, sq_id;
	uint16_t cid;
	uint16_t status;	/* bit 0: phase tag */
};
_Static_assert(sizeof(struct nvme_cqe) == 16, "NVMe CQ entry is 16 bytes");

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int wait_rdy(volatile uint8_t *bar, uint32_t want, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	while ((upmd_mmio_read32(bar + NVME_REG_CSTS) & NVME_CSTS_RDY) != want) {
		if (upmd_mmio_read32(bar + NVME_REG_CSTS) & NVME_CSTS_CFS)
			return -EIO;
		if (now_ms() > end)
			return -ETIMEDOUT;
	}
	return 0;
}

static struct upmd_pci_device *find(uint16_t vendor, uint16_t device)
{
	for (unsigned i = 0; i < upmd_pci_device_count(); i++) {
		struct upmd_pci_device *d = upmd_pci_device_get(i);

		if (d->id.vendor_id == vendor && d->id.device_id == device)
			return d;
	}
	return NULL;
}

static int nvme_identify(struct upmd_pci_device *d)
{
	const struct upmd_memzone *sq, *cq, *buf;
	volatile uint8_t *bar;
	volatile struct nvme_cqe *cqe;
	struct nvme_sqe *sqe;
	uint64_t cap, end;
	unsigned timeout_ms, dstrd;
	char mn[41], sn[21];
	int rc;

	if (upmd_pci_map_bar(d, 0) < 0)
		return -EIO;
	bar = d->bar[0].addr;
	cap = upmd_mmio_read64(bar + NVME_REG_CAP);
	timeout_ms = (unsigned)((cap >> 24) & 0xff) * 500 + 500;
	dstrd = (unsigned)((cap >> 32) & 0xf);
	printf("nvme %s: CAP 0x%016llx VS 0x%08x\n", d->name, (unsigned long long)cap,
	       upmd_mmio_read32(bar + NVME_REG_VS));

	/* Queues and the data buffer come from hugepage memory already in the IOAS. */
	if (upmd_memzone_reserve("nvme_asq", QDEPTH * sizeof(*sqe), UPMD_SOCKET_ID_ANY, 4096, &sq) ||
	    upmd_memzone_reserve("nvme_acq", QDEPTH * sizeof(*cqe), UPMD_SOCKET_ID_ANY, 4096, &cq) ||
	    upmd_memzone_reserve("nvme_id", 4096, UPMD_SOCKET_ID_ANY, 4096, &buf))
		return -ENOMEM;

	upmd_pci_set_bus_master(d, true);
	upmd_mmio_write32(bar + NVME_REG_CC, 0);
	rc = wait_rdy(bar, 0, timeout_ms);
	if (rc)
		return rc;
	upmd_mmio_write32(bar + NVME_REG_AQA, (QDEPTH - 1) | ((QDEPTH - 1) << 16));
	upmd_mmio_write64(bar + NVME_REG_ASQ, sq->iova);
	upmd_mmio_write64(bar + NVME_REG_ACQ, cq->iova);
	upmd_mmio_write32(bar + NVME_REG_CC, NVME_CC_EN | NVME_CC_IOSQES_64 | NVME_CC_IOCQES_16);
	rc = wait_rdy(bar, 1, timeout_ms);
	if (rc)
		return rc;

	sqe = sq->addr;
	memset(sqe, 0, sizeof(*sqe));
	sqe->cdw0 = NVME_ADMIN_IDENTIFY | (0x1234u << 16);
	sqe->prp1 = buf->iova;
	sqe->cdw10 = NVME_IDENTIFY_CNS_CTRL;
	/* The entry must be in memory before the doorbell tells the device. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	upmd_mmio_write32(bar + NVME_DOORBELL_BASE, 1);	/* admin SQ tail = 1 */

	cqe = cq->addr;
	end = now_ms() + 5000;
	while (!(cqe->status & 1)) {
		if (now_ms() > end) {
			printf("nvme %s: no completion for Identify\n", d->name);
			return -ETIMEDOUT;
		}
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	upmd_mmio_write32(bar + NVME_DOORBELL_BASE + (4u << dstrd), 1);	/* admin CQ head */
	if (cqe->cid != 0x1234 || (cqe->status >> 1)) {
		printf("nvme %s: Identify failed: cid 0x%x status 0x%x\n", d->name, cqe->cid,
		       cqe->status >> 1);
		return -EIO;
	}
	memcpy(sn, (uint8_t *)buf->addr + 4, 20);
	sn[20] = '\0';
	memcpy(mn, (uint8_t *)buf->addr + 24, 40);
	mn[40] = '\0';
	for (int i = 39; i >= 0 && mn[i] == ' '; i--)
		mn[i] = '\0';
	printf("nvme %s: Identify Controller: model \"%s\", serial \"%.20s\", vendor 0x%04x\n",
	       d->name, mn, sn, *(uint16_t *)buf->addr);

	/* Leave the controller disabled and unable to DMA. */
	upmd_mmio_write32(bar + NVME_REG_CC, 0);
	wait_rdy(bar, 0, timeout_ms);
	upmd_pci_set_bus_master(d, false);
	upmd_memzone_free(buf);
	upmd_memzone_free(cq);
	upmd_memzone_free(sq);
	return strstr(mn, "QEMU NVMe") ? 0 : -EIO;
}

static int e1000e_bar(struct upmd_pci_device *d)
{
	volatile uint8_t *bar;
	uint32_t ral, rah, status;

	if (upmd_pci_map_bar(d, 0) < 0)
		return -EIO;
	bar = d->bar[0].addr;
	status = upmd_mmio_read32(bar + 0x0008);	/* STATUS */
	ral = upmd_mmio_read32(bar + 0x5400);		/* RAL0 */
	rah = upmd_mmio_read32(bar + 0x5404);		/* RAH0 */
	printf("e1000e %s: STATUS 0x%08x, MAC %02x:%02x:%02x:%02x:%02x:%02x (RAH valid %u)\n",
	       d->name, status, ral & 0xff, (ral >> 8) & 0xff, (ral >> 16) & 0xff, ral >> 24,
	       rah & 0xff, (rah >> 8) & 0xff, rah >> 31);
	/* run.sh gives the e1000e 52:54:00:00:00:02 */
	return (ral == 0x00005452 && (rah & 0xffff) == 0x0200) ? 0 : -EIO;
}

/* Find the virtio common configuration through the vendor capabilities. */
static int virtio_bar(struct upmd_pci_device *d)
{
	uint8_t pos = 0, cap[16];
	uint32_t lo, hi;

	if (upmd_pci_cfg_read(d, &pos, 1, 0x34) != 1)
		return -EIO;
	while (pos) {
		if (upmd_pci_cfg_read(d, cap, sizeof(cap), pos) != sizeof(cap))
			return -EIO;
		if (cap[0] == 0x09 && cap[3] == 1) {	/* vendor cap, VIRTIO_PCI_CAP_COMMON_CFG */
			unsigned bar = cap[4];
			uint32_t off;
			volatile uint8_t *cfg;

			memcpy(&off, cap + 8, 4);
			if (bar >= UPMD_PCI_MAX_BARS || upmd_pci_map_bar(d, bar) < 0)
				return -EIO;
			cfg = (volatile uint8_t *)d->bar[bar].addr + off;
			upmd_mmio_write32(cfg + 0x00, 0);	/* device_feature_select */
			lo = upmd_mmio_read32(cfg + 0x04);
			upmd_mmio_write32(cfg + 0x00, 1);
			hi = upmd_mmio_read32(cfg + 0x04);
			printf("virtio-net %s: common config in BAR%u at 0x%x, device features 0x%08x%08x, "
			       "%u queues (BAR0 size %llu)\n", d->name, bar, off, hi, lo,
			       *(volatile uint16_t *)(cfg + 0x12), (unsigned long long)d->bar[0].len);
			/* VIRTIO_F_VERSION_1 (bit 32) and ACCESS_PLATFORM (bit 33). */
			return (hi & 0x3) == 0x3 ? 0 : -EIO;
		}
		pos = cap[1];
	}
	return -ENOENT;
}

int main(int argc, char **argv)
{
	char *args[] = { argv[0], "-l", "0", "-m", "32", NULL };
	struct upmd_pci_device *nvme, *virtio, *e1000e;
	int rc, fails = 0;

	(void)argc;
	rc = upmd_eal_init(5, args);
	if (rc < 0)
		return 1;
	for (unsigned i = 0; i < upmd_memseg_count(); i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);

		printf("segment %u: %zu KiB pages, %zu MiB, VA %p IOVA 0x%llx\n", i, ms->page_sz / 1024,
		       ms->len >> 20, ms->va, (unsigned long long)ms->iova);
		if (ms->source == UPMD_MEMSEG_ANON) {
			printf("FAIL: memory is not from hugepages\n");
			fails++;
		}
	}
	printf("IOAS %u (%s), IOVA mode %s, %u devices attached\n",
	       upmd_ioas_id(upmd_ioas_default()), upmd_ioas_backend_name(upmd_ioas_default()),
	       upmd_iova_mode_name(upmd_eal_iova_mode()), upmd_pci_device_count());

	nvme = find(0x1b36, 0x0010);
	virtio = find(0x1af4, 0x1041);
	e1000e = find(0x8086, 0x10d3);
	if (!nvme || !virtio || !e1000e) {
		printf("FAIL: expected NVMe, virtio-net and e1000e behind vfio-pci\n");
		upmd_eal_cleanup();
		return 1;
	}
	if (nvme_identify(nvme) < 0) {
		printf("FAIL: NVMe Identify\n");
		fails++;
	}
	if (virtio_bar(virtio) < 0) {
		printf("FAIL: virtio-net BAR\n");
		fails++;
	}
	if (e1000e_bar(e1000e) < 0) {
		printf("FAIL: e1000e BAR\n");
		fails++;
	}
	upmd_eal_cleanup();
	printf("%s\n", fails ? "FAILED" : "OK");
	return fails ? 1 : 0;
}
