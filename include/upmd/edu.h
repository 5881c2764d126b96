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

struct upmd_edu {
	struct upmd_pci_device *pdev;
	volatile uint8_t *regs;
	uint32_t id;
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

#ifdef __cplusplus
}
#endif
#endif /* UPMD_EDU_H */
