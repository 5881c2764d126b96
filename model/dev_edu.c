/* Device model of QEMU's edu (1234:11e8): liveness, factorial, interrupts and the DMA engine, with QEMU 7.2's register rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model_private.h"

/*
 * Register map (QEMU docs/specs/edu.rst). Accesses below 0x80 must be 4
 * bytes, from 0x80 on 4 or 8; anything else reads as all ones and writes
 * are dropped, exactly as QEMU's edu_mmio_read/write do. A 4-byte read of
 * the upper half of a 64-bit DMA register (0x84, ...) also reads ones.
 */
#define EDU_ID 0x010000edu
#define REG_ID 0x00
#define REG_LIVENESS 0x04
#define REG_FACT 0x08
#define REG_STATUS 0x20
#define REG_IRQ_STATUS 0x24
#define REG_IRQ_RAISE 0x60
#define REG_IRQ_ACK 0x64
#define REG_DMA_SRC 0x80
#define REG_DMA_DST 0x88
#define REG_DMA_CNT 0x90
#define REG_DMA_CMD 0x98

#define STATUS_COMPUTING 0x01
#define STATUS_IRQFACT 0x80
#define IRQ_FACT 0x001
#define IRQ_DMA 0x100
#define DMA_RUN 0x1
#define DMA_TO_RAM 0x2		/* EDU_DMA_TO_PCI: buffer -> RAM */
#define DMA_IRQ 0x4
#define DMA_START 0x40000
#define DMA_SIZE 4096

struct edu {
	uint32_t addr4, fact, status, irq_status;
	uint64_t src, dst, cnt, cmd;
	uint64_t dma_mask;
	uint8_t buf[DMA_SIZE];
};

static int edu_arg(struct upmd_model_dev *d, const char *key, const char *val)
{
	struct edu *e = upmd_model_dev_priv(d);
	char *end;
	unsigned long long v;

	if (strcmp(key, "dma_mask"))
		return -ENOENT;
	errno = 0;
	v = strtoull(val, &end, 0);
	if (errno || end == val || *end || v == 0) {
		UPMD_ERR(MODEL_LOG, "%s: bad dma_mask '%s' (e.g. dma_mask=0xffffffff)",
			 upmd_model_dev_name(d), val);
		return -EINVAL;
	}
	e->dma_mask = v;
	return 0;
}

static int edu_init(struct upmd_model_dev *d)
{
	struct edu *e = upmd_model_dev_priv(d);
	uint8_t *bar = upmd_model_dev_bar(d, 0);
	uint32_t id = EDU_ID;

	/* QEMU's default: 28 bits. */
	if (!e->dma_mask)
		e->dma_mask = (1ULL << 28) - 1;
	/* The BAR memory only carries values across a trapped access; give
	 * it the look of the register file anyway. */
	memset(bar, 0xff, 1 << 20);
	memcpy(bar + REG_ID, &id, sizeof(id));
	return 0;
}

/* edu_raise_irq / edu_lower_irq (d->lock held) */
static void raise_irq(struct upmd_model_dev *d, struct edu *e, uint32_t val)
{
	e->irq_status |= val;
	if (!e->irq_status)
		return;
	if (upmd_model_dev_msi_enabled(d))
		upmd_model_irq(d, 0);
	else
		upmd_model_dev_intx(d, true);
}

static void lower_irq(struct upmd_model_dev *d, struct edu *e, uint32_t val)
{
	e->irq_status &= ~val;
	if (!e->irq_status && !upmd_model_dev_msi_enabled(d))
		upmd_model_dev_intx(d, false);
}

static uint64_t edu_read(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size)
{
	struct edu *e = upmd_model_dev_priv(d);
	uint64_t v = ~0ULL;

	if (bar != 0 || (off < 0x80 && size != 4) || (off >= 0x80 && size != 4 && size != 8))
		return v;
	pthread_mutex_lock(&d->lock);
	switch (off) {
	case REG_ID:
		v = EDU_ID;
		break;
	case REG_LIVENESS:
		v = e->addr4;
		break;
	case REG_FACT:
		v = e->fact;
		break;
	case REG_STATUS:
		v = e->status;
		break;
	case REG_IRQ_STATUS:
		v = e->irq_status;
		break;
	case REG_DMA_SRC:
		v = e->src;
		break;
	case REG_DMA_DST:
		v = e->dst;
		break;
	case REG_DMA_CNT:
		v = e->cnt;
		break;
	case REG_DMA_CMD:
		v = e->cmd;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&d->lock);
	return size == 4 ? v & 0xffffffffULL : v;
}

static void edu_write(struct upmd_model_dev *d, unsigned bar, uint64_t off, unsigned size,
		      uint64_t val)
{
	struct edu *e = upmd_model_dev_priv(d);
	bool kick = false;

	if (bar != 0 || (off < 0x80 && size != 4) || (off >= 0x80 && size != 4 && size != 8))
		return;
	if (size == 4)
		val &= 0xffffffffULL;
	pthread_mutex_lock(&d->lock);
	switch (off) {
	case REG_LIVENESS:
		e->addr4 = ~(uint32_t)val;
		break;
	case REG_FACT:
		/* Ignored while a computation runs. */
		if (e->status & STATUS_COMPUTING)
			break;
		e->fact = (uint32_t)val;
		e->status |= STATUS_COMPUTING;
		kick = true;
		break;
	case REG_STATUS:
		if (val & STATUS_IRQFACT)
			e->status |= STATUS_IRQFACT;
		else
			e->status &= ~STATUS_IRQFACT;
		break;
	case REG_IRQ_RAISE:
		raise_irq(d, e, (uint32_t)val);
		break;
	case REG_IRQ_ACK:
		lower_irq(d, e, (uint32_t)val);
		break;
	/* DMA registers are frozen while a transfer runs (dma_rw). */
	case REG_DMA_SRC:
		if (!(e->cmd & DMA_RUN))
			e->src = val;
		break;
	case REG_DMA_DST:
		if (!(e->cmd & DMA_RUN))
			e->dst = val;
		break;
	case REG_DMA_CNT:
		if (!(e->cmd & DMA_RUN))
			e->cnt = val;
		break;
	case REG_DMA_CMD:
		/* Only a write with RUN starts anything. */
		if (!(val & DMA_RUN) || (e->cmd & DMA_RUN))
			break;
		e->cmd = val;
		kick = true;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&d->lock);
	if (kick)
		upmd_model_dev_kick(d);
}

/*
 * edu_check_range as in QEMU 7.2: the transfer starts inside the buffer
 * and its end (exclusive) lies strictly inside it too, within(end1,
 * start, end2) being start <= end1 < end2. So a transfer that reaches the
 * buffer's last byte (4096 bytes from 0x40000) is out of bounds: 7.2
 * aborts the VM there; the model drops the transfer and says so.
 */
static bool range_ok(uint64_t addr, uint64_t cnt)
{
	uint64_t end1 = addr + cnt, end2 = DMA_START + DMA_SIZE;

	return addr >= DMA_START && addr < end2 && end1 > addr && end1 >= DMA_START && end1 < end2;
}

static uint64_t clamp(struct upmd_model_dev *d, struct edu *e, uint64_t addr)
{
	uint64_t r = addr & e->dma_mask;

	if (r != addr)
		UPMD_DEBUG(MODEL_LOG, "%s: EDU: clamping DMA 0x%016llx to 0x%016llx",
			   upmd_model_dev_name(d), (unsigned long long)addr, (unsigned long long)r);
	return r;
}

/* edu_dma_timer: the transfer runs in the device thread. */
static void run_dma(struct upmd_model_dev *d, struct edu *e)
{
	bool to_ram = e->cmd & DMA_TO_RAM;
	uint64_t dev_addr = to_ram ? e->src : e->dst;

	if (!range_ok(dev_addr, e->cnt)) {
		UPMD_ERR(MODEL_LOG,
			 "%s: EDU: DMA range 0x%016llx-0x%016llx out of bounds (0x%016x-0x%016x): "
			 "QEMU 7.2 would abort the VM; the model drops the transfer",
			 upmd_model_dev_name(d), (unsigned long long)dev_addr,
			 (unsigned long long)(dev_addr + e->cnt - 1), DMA_START, DMA_START + DMA_SIZE - 1);
	} else if (to_ram) {
		/* A fault is recorded by the port; RAM stays untouched. */
		upmd_model_dma_write(d, UPMD_MODEL_NO_PASID, clamp(d, e, e->dst),
				     e->buf + (dev_addr - DMA_START), (size_t)e->cnt);
	} else {
		/* A faulting read leaves zeros in the buffer, as on QEMU. */
		upmd_model_dma_read(d, UPMD_MODEL_NO_PASID, clamp(d, e, e->src),
				    e->buf + (dev_addr - DMA_START), (size_t)e->cnt);
	}
	e->cmd &= ~(uint64_t)DMA_RUN;
	if (e->cmd & DMA_IRQ)
		raise_irq(d, e, IRQ_DMA);
}

static int edu_poll(struct upmd_model_dev *d)
{
	struct edu *e = upmd_model_dev_priv(d);
	int work = 0;

	pthread_mutex_lock(&d->lock);
	if (e->status & STATUS_COMPUTING) {
		uint32_t n = e->fact, r = 1;

		while (n > 0)
			r *= n--;
		e->fact = r;
		e->status &= ~STATUS_COMPUTING;
		if (e->status & STATUS_IRQFACT)
			raise_irq(d, e, IRQ_FACT);
		work = 1;
	}
	if (e->cmd & DMA_RUN) {
		run_dma(d, e);
		work = 1;
	}
	pthread_mutex_unlock(&d->lock);
	return work;
}

/* Only with the model argument reset=1: QEMU's edu has no reset method. */
static void edu_reset(struct upmd_model_dev *d)
{
	struct edu *e = upmd_model_dev_priv(d);

	pthread_mutex_lock(&d->lock);
	e->addr4 = 0;
	e->fact = 0;
	e->status = 0;
	e->irq_status = 0;
	e->src = e->dst = e->cnt = e->cmd = 0;
	pthread_mutex_unlock(&d->lock);
	upmd_model_dev_intx(d, false);
}

static const struct upmd_model_dev_ops edu_ops = {
	.type = "edu",
	.vendor_id = 0x1234,
	.device_id = 0x11e8,
	/* QEMU's defaults for devices that set none (Red Hat, QEMU). */
	.subsystem_vendor_id = 0x1af4,
	.subsystem_device_id = 0x1100,
	.class_code = 0x00ff00,
	.revision = 0x10,
	.pcie = false,		/* a conventional PCI device: 256 bytes of config space */
	.reset_works = false,	/* no FLR, no PM capability, on the root bus */
	.bar_size = { 1 << 20 },
	.trap_bars = 1u << 0,
	.irq_kind = MODEL_IRQ_MSI,
	.irq_vectors = 1,
	.intx_pin = 1,
	.priv_size = sizeof(struct edu),
	.arg = edu_arg,
	.init = edu_init,
	.reset = edu_reset,
	.poll = edu_poll,
	.mmio_read = edu_read,
	.mmio_write = edu_write,
};

UPMD_MODEL_REGISTER_DEV(edu_ops)
