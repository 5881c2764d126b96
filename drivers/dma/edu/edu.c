/* Driver for QEMU's edu device: the copy engine that proves DMA through the IOAS, on the model and in the VM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/edu.h>
#include <upmd/log.h>
#include <upmd/pci.h>

static struct upmd_pci_driver edu_driver;
static struct upmd_edu *first_edu;

static inline uint32_t rd32(struct upmd_edu *e, unsigned off)
{
	return upmd_mmio_read32(e->regs + off);
}

static inline void wr32(struct upmd_edu *e, unsigned off, uint32_t v)
{
	upmd_mmio_write32(e->regs + off, v);
}

static inline void wr64(struct upmd_edu *e, unsigned off, uint64_t v)
{
	upmd_mmio_write64(e->regs + off, v);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int upmd_edu_check_alive(struct upmd_edu *e, uint32_t v)
{
	wr32(e, UPMD_EDU_REG_LIVENESS, v);
	return rd32(e, UPMD_EDU_REG_LIVENESS) == ~v ? 0 : -EIO;
}

int upmd_edu_dma(struct upmd_edu *e, uint64_t iova, uint32_t buf_off, size_t len,
		 bool to_ram, int timeout_ms)
{
	uint64_t dev_addr = UPMD_EDU_BUF_ADDR + (uint64_t)buf_off;
	uint64_t deadline;
	uint32_t cmd = UPMD_EDU_DMA_CMD_START;

	if (len == 0 || buf_off > UPMD_EDU_DMA_MAX || len > UPMD_EDU_DMA_MAX - buf_off)
		return -EINVAL;
	if (rd32(e, UPMD_EDU_REG_DMA_CMD) & UPMD_EDU_DMA_CMD_START)
		return -EBUSY;
	if (to_ram) {
		wr64(e, UPMD_EDU_REG_DMA_SRC, dev_addr);
		wr64(e, UPMD_EDU_REG_DMA_DST, iova);
		cmd |= UPMD_EDU_DMA_CMD_TO_RAM;
	} else {
		wr64(e, UPMD_EDU_REG_DMA_SRC, iova);
		wr64(e, UPMD_EDU_REG_DMA_DST, dev_addr);
	}
	wr64(e, UPMD_EDU_REG_DMA_COUNT, len);
	/*
	 * The address and count stores must reach the device before the
	 * command store starts it. MMIO to an uncached BAR is not reordered
	 * by x86, but the compiler may reorder plain volatile accesses to
	 * different objects only around non-volatile code: a release fence
	 * keeps the buffer contents the caller wrote (ordinary stores)
	 * ahead of the doorbell too.
	 */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	wr32(e, UPMD_EDU_REG_DMA_CMD, cmd);

	deadline = now_ms() + (uint64_t)timeout_ms;
	while (rd32(e, UPMD_EDU_REG_DMA_CMD) & UPMD_EDU_DMA_CMD_START) {
		struct timespec pause = { 0, 50000 };

		if (now_ms() > deadline) {
			UPMD_ERR("edu", "%s: DMA of %zu bytes at IOVA 0x%llx did not finish in %d ms",
				 e->pdev->name, len, (unsigned long long)iova, timeout_ms);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
	/* The device finished writing RAM before it cleared START: order
	 * the caller's reads of the buffer after our read of the flag. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return 0;
}

static int edu_probe(struct upmd_pci_device *pdev)
{
	struct upmd_edu *e;
	int rc;

	rc = upmd_pci_map_bar(pdev, 0);
	if (rc < 0) {
		UPMD_ERR("edu", "%s: cannot map BAR0: %s", pdev->name, strerror(-rc));
		return rc;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->pdev = pdev;
	e->regs = pdev->bar[0].addr;
	e->id = rd32(e, UPMD_EDU_REG_ID);
	if ((e->id & 0xffff) != UPMD_EDU_ID_MAGIC || upmd_edu_check_alive(e, 0x5a5aa5a5) < 0) {
		UPMD_ERR("edu", "%s: not an edu device (id register 0x%08x)", pdev->name, e->id);
		free(e);
		return -ENODEV;
	}
	rc = upmd_pci_set_bus_master(pdev, true);
	if (rc < 0) {
		free(e);
		return rc;
	}
	pdev->driver_data = e;
	if (!first_edu)
		first_edu = e;
	UPMD_INFO("edu", "%s: edu v%u.%u ready", pdev->name, e->id >> 24, (e->id >> 16) & 0xff);
	/* The dmadev is an extra view of the engine: without it (no free
	 * dmadev slot) upmd_edu_dma() still works, so the probe succeeds. */
	rc = upmd_edu_dmadev_attach_(e);
	if (rc < 0)
		UPMD_WARN("edu", "%s: no dmadev (%s); upmd_edu_dma() still works", pdev->name, strerror(-rc));
	return 0;
}

static int edu_remove(struct upmd_pci_device *pdev)
{
	struct upmd_edu *e = pdev->driver_data;

	if (!e)
		return 0;
	/* The dmadev first: it waits for a transfer in flight. */
	upmd_edu_dmadev_detach_(e);
	/* Stop DMA before the IOAS mappings it might use go away. */
	upmd_pci_set_bus_master(pdev, false);
	if (first_edu == e)
		first_edu = NULL;
	pdev->driver_data = NULL;
	free(e);
	return 0;
}

struct upmd_edu *upmd_edu_get(struct upmd_pci_device *pdev)
{
	if (!pdev || pdev->driver != &edu_driver)
		return NULL;
	return pdev->driver_data;
}

struct upmd_edu *upmd_edu_first(void)
{
	return first_edu;
}

static const struct upmd_pci_id edu_ids[] = {
	{ .vendor_id = UPMD_EDU_VENDOR_ID, .device_id = UPMD_EDU_DEVICE_ID,
	  .subsystem_vendor_id = UPMD_PCI_ANY_ID, .subsystem_device_id = UPMD_PCI_ANY_ID,
	  .class_id = UPMD_PCI_ANY_ID },
	{ .vendor_id = 0 },
};

static struct upmd_pci_driver edu_driver = {
	.name = "dma_edu",
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};

UPMD_PCI_REGISTER_DRIVER(edu_driver)
