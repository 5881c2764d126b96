/* Driver for QEMU's edu PCI device (1234:11e8), a small DMA copy engine: memory <-> a 4 KiB device buffer. */
#ifndef UPMD_EDU_H
#define UPMD_EDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upmd/pci.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPMD_EDU_VENDOR_ID 0x1234
#define UPMD_EDU_DEVICE_ID 0x11e8

/* BAR0 registers (QEMU docs/specs/edu.rst). */
#define UPMD_EDU_REG_ID 0x00		/* 0xRRrr00ed: major, minor, 0x00ed */
#define UPMD_EDU_REG_LIVENESS 0x04	/* reads back the inverse of what was written */
#define UPMD_EDU_REG_FACT 0x08
#define UPMD_EDU_REG_STATUS 0x20
#define UPMD_EDU_REG_IRQ_STATUS 0x24
#define UPMD_EDU_REG_IRQ_RAISE 0x60
#define UPMD_EDU_REG_IRQ_ACK 0x64
#define UPMD_EDU_REG_DMA_SRC 0x80
#define UPMD_EDU_REG_DMA_DST 0x88
#define UPMD_EDU_REG_DMA_COUNT 0x90
#define UPMD_EDU_REG_DMA_CMD 0x98
#define UPMD_EDU_DMA_CMD_START 0x1
#define UPMD_EDU_DMA_CMD_TO_RAM 0x2	/* direction: device buffer -> RAM */
#define UPMD_EDU_DMA_CMD_IRQ 0x4
#define UPMD_EDU_ID_MAGIC 0x00ed	/* low 16 bits of the id register */

/* The device's DMA buffer, in the device's own address space. */
#define UPMD_EDU_BUF_ADDR 0x40000
/*
 * 4 KiB in the specification, but QEMU 7.2 aborts the whole VM on a
 * transfer that reaches the buffer's last byte; transfers are capped below
 * that so a driver bug cannot take a test VM down.
 */
#define UPMD_EDU_BUF_SIZE 4096
#define UPMD_EDU_DMA_MAX (UPMD_EDU_BUF_SIZE - 64)

struct upmd_dma_dev;

struct upmd_edu {
	struct upmd_pci_device *pdev;
	volatile uint8_t *regs;
	uint32_t id;
	struct upmd_dma_dev *dmadev;	/* internal: the dmadev registered at probe, or NULL */
};

/** The edu state the PCI driver attached to @pdev at probe, or NULL. */
struct upmd_edu *upmd_edu_get(struct upmd_pci_device *pdev);
/** The first edu device probed, or NULL. */
struct upmd_edu *upmd_edu_first(void);

/**
 * Copy @len bytes between RAM at @iova and the device buffer at
 * @buf_off (device buffer offset): @to_ram false reads RAM into the device,
 * true writes the device buffer to RAM. Polls for completion up to
 * @timeout_ms. @return 0, -EINVAL (@len/@buf_off outside the buffer),
 * -ETIMEDOUT (the device never finished: the IOVA may have faulted).
 * Not thread-safe per device.
 */
int upmd_edu_dma(struct upmd_edu *e, uint64_t iova, uint32_t buf_off, size_t len,
		 bool to_ram, int timeout_ms);

/** Liveness check: write @v, expect ~v. @return 0 or -EIO. */
int upmd_edu_check_alive(struct upmd_edu *e, uint32_t v);

/* ---- the dmadev (drivers/dma/edu/edu_dmadev.c, docs/dma.md) ------------------ */

/*
 * Every edu device the PCI driver probes is also a dmadev named after its
 * PCI address ("0000:00:04.0"), driver "dma_edu", one vchan, MEM_TO_MEM |
 * OPS_COPY | OPS_FILL. It shares the engine with upmd_edu_dma(): use one
 * or the other while the dmadev is started, not both.
 *
 * The device cannot report the DMA mask it was built with (QEMU's
 * dma_mask property: 28 bits unless given) and silently drops address
 * bits above it, so the PMD refuses, at enqueue, any operation whose
 * IOVAs do not fit the mask it believes in: UPMD_EDU_DMA_MASK_DEFAULT,
 * or the environment variable UPMD_EDU_DMA_MASK (read at probe, e.g.
 * UPMD_EDU_DMA_MASK=0xffffffff for every edu device), or
 * upmd_edu_dma_set_mask() per device.
 */
#define UPMD_EDU_DMA_MASK_DEFAULT ((1ULL << 28) - 1)	/* QEMU's edu default */
#define UPMD_EDU_DMADEV_MAX_LEN (1u << 20)		/* bytes one operation may move */

/**
 * Set the DMA mask the dmadev @dev_name assumes (as the device was started
 * with: QEMU's -device edu,dma_mask=M, the model's edu@BDF:dma_mask=M).
 * @mask must be 2^n - 1, n in 12..64. The dmadev must be stopped.
 * @return 0, -EINVAL (bad mask: logged), -ENODEV (no edu dmadev called
 * @dev_name), -EBUSY (started). Not thread-safe (control path).
 */
int upmd_edu_dma_set_mask(const char *dev_name, uint64_t mask);

/** The mask the dmadev @dev_name assumes. @return 0, -ENODEV, -EINVAL (NULL). */
int upmd_edu_dma_get_mask(const char *dev_name, uint64_t *mask);

/* Internal: the PCI driver's probe and remove call these. The attach
 * returns 0 or -errno (the edu driver then works without a dmadev). */
int upmd_edu_dmadev_attach_(struct upmd_edu *e);
void upmd_edu_dmadev_detach_(struct upmd_edu *e);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_EDU_H */
