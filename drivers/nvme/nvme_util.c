/* NVMe data pointers (PRP lists and SGLs from a buffer's pages) and readable status names. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nvme_internal.h"

int upmd_nvme_build_prps(upmd_nvme_xlate_fn xlate, const void *ctx, uint32_t first_off, uint32_t len,
			 uint64_t *prp1, uint64_t *prp2, uint64_t *list, uint64_t list_iova, unsigned list_max)
{
	uint64_t first;
	uint32_t in_first, rest, pages, k;

	if (len == 0 || first_off >= NVME_PAGE || (first_off & 3))
		return -EINVAL;
	first = xlate(ctx, 0);
	if (first == UPMD_BAD_IOVA)
		return -EFAULT;
	if (first & (NVME_PAGE - 1))
		return -EINVAL;
	*prp1 = first + first_off;
	*prp2 = 0;
	in_first = NVME_PAGE - first_off;
	if (len <= in_first)
		return 0;
	rest = len - in_first;
	pages = (rest + NVME_PAGE - 1) / NVME_PAGE;
	if (pages == 1) {
		/* Two pages: PRP2 is the second page itself. */
		uint64_t p = xlate(ctx, 1);

		if (p == UPMD_BAD_IOVA)
			return -EFAULT;
		if (p & (NVME_PAGE - 1))
			return -EINVAL;
		*prp2 = p;
		return 0;
	}
	/* More: PRP2 points at a list of the remaining pages, every entry
	 * with offset 0. The list is in one page, so it never chains. */
	if (pages > list_max || (list_iova & 7) ||
	    (list_iova & (NVME_PAGE - 1)) + (uint64_t)pages * 8 > NVME_PAGE)
		return -EINVAL;
	for (k = 0; k < pages; k++) {
		uint64_t p = xlate(ctx, k + 1);

		if (p == UPMD_BAD_IOVA)
			return -EFAULT;
		if (p & (NVME_PAGE - 1))
			return -EINVAL;
		list[k] = p;
	}
	*prp2 = list_iova;
	return (int)pages;
}

struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type;
};
_Static_assert(sizeof(struct sgl_desc) == 16, "an SGL descriptor is 16 bytes");

int upmd_nvme_build_sgl(upmd_nvme_xlate_fn xlate, const void *ctx, uint32_t first_off, uint32_t len,
			struct upmd_nvme_cmd *cmd, void *list, uint64_t list_iova, unsigned list_max)
{
	struct sgl_desc *d = list;
	uint64_t addr, cur_addr;
	uint32_t cur_len, done, k, n = 0, chunk;

	if (len == 0 || first_off >= NVME_PAGE || !cmd)
		return -EINVAL;
	addr = xlate(ctx, 0);
	if (addr == UPMD_BAD_IOVA)
		return -EFAULT;
	if (addr & (NVME_PAGE - 1))
		return -EINVAL;
	cur_addr = addr + first_off;
	cur_len = UPMD_MIN(len, NVME_PAGE - first_off);
	done = cur_len;
	for (k = 1; done < len; k++) {
		addr = xlate(ctx, k);
		if (addr == UPMD_BAD_IOVA)
			return -EFAULT;
		if (addr & (NVME_PAGE - 1))
			return -EINVAL;
		chunk = UPMD_MIN(len - done, NVME_PAGE);
		if (addr == cur_addr + cur_len) {
			cur_len += chunk;	/* IOVA-contiguous with what came before */
		} else {
			if (n >= list_max)
				return -EINVAL;
			d[n].addr = cur_addr;
			d[n].len = cur_len;
			memset(d[n].rsvd, 0, sizeof(d[n].rsvd));
			d[n].type = NVME_SGL_TYPE_DATA_BLOCK << 4;
			n++;
			cur_addr = addr;
			cur_len = chunk;
		}
		done += chunk;
	}
	cmd->fuse_psdt = (uint8_t)((cmd->fuse_psdt & 0x3) | NVME_PSDT_SGL_MPTR_CONTIG);
	if (n == 0) {
		/* One piece: the data block descriptor sits in the command. */
		cmd->dptr.sgl.addr = cur_addr;
		cmd->dptr.sgl.len = cur_len;
		memset(cmd->dptr.sgl.rsvd, 0, sizeof(cmd->dptr.sgl.rsvd));
		cmd->dptr.sgl.type = NVME_SGL_TYPE_DATA_BLOCK << 4;
		return 0;
	}
	if (n >= list_max || (list_iova & 0xf) ||
	    (list_iova & (NVME_PAGE - 1)) + (uint64_t)(n + 1) * 16 > NVME_PAGE)
		return -EINVAL;
	d[n].addr = cur_addr;
	d[n].len = cur_len;
	memset(d[n].rsvd, 0, sizeof(d[n].rsvd));
	d[n].type = NVME_SGL_TYPE_DATA_BLOCK << 4;
	n++;
	/* The command points at the last (only) segment of descriptors. */
	cmd->dptr.sgl.addr = list_iova;
	cmd->dptr.sgl.len = n * 16;
	memset(cmd->dptr.sgl.rsvd, 0, sizeof(cmd->dptr.sgl.rsvd));
	cmd->dptr.sgl.type = NVME_SGL_TYPE_LAST_SEGMENT << 4;
	return (int)n;
}

/* ---- status names ------------------------------------------------------------- */

struct status_name {
	uint8_t sc;
	const char *name;
};

static const struct status_name generic[] = {
	{ 0x00, "SUCCESS" },
	{ 0x01, "INVALID OPCODE" },
	{ 0x02, "INVALID FIELD" },
	{ 0x03, "COMMAND ID CONFLICT" },
	{ 0x04, "DATA TRANSFER ERROR" },
	{ 0x05, "ABORTED - POWER LOSS" },
	{ 0x06, "INTERNAL DEVICE ERROR" },
	{ 0x07, "ABORTED - BY REQUEST" },
	{ 0x08, "ABORTED - SQ DELETION" },
	{ 0x09, "ABORTED - FAILED FUSED" },
	{ 0x0a, "ABORTED - MISSING FUSED" },
	{ 0x0b, "INVALID NAMESPACE OR FORMAT" },
	{ 0x0c, "COMMAND SEQUENCE ERROR" },
	{ 0x0d, "INVALID SGL SEGMENT DESCRIPTOR" },
	{ 0x0e, "INVALID NUMBER OF SGL DESCRIPTORS" },
	{ 0x0f, "DATA SGL LENGTH INVALID" },
	{ 0x10, "METADATA SGL LENGTH INVALID" },
	{ 0x11, "SGL DESCRIPTOR TYPE INVALID" },
	{ 0x12, "INVALID USE OF CONTROLLER MEMORY BUFFER" },
	{ 0x13, "INVALID PRP OFFSET" },
	{ 0x14, "ATOMIC WRITE UNIT EXCEEDED" },
	{ 0x15, "OPERATION DENIED" },
	{ 0x16, "INVALID SGL OFFSET" },
	{ 0x18, "HOST IDENTIFIER INCONSISTENT FORMAT" },
	{ 0x19, "KEEP ALIVE TIMEOUT EXPIRED" },
	{ 0x1a, "KEEP ALIVE TIMEOUT INVALID" },
	{ 0x1b, "ABORTED - PREEMPT AND ABORT" },
	{ 0x1c, "SANITIZE FAILED" },
	{ 0x1d, "SANITIZE IN PROGRESS" },
	{ 0x1e, "SGL DATA BLOCK GRANULARITY INVALID" },
	{ 0x1f, "COMMAND NOT SUPPORTED FOR QUEUE IN CMB" },
	{ 0x20, "NAMESPACE IS WRITE PROTECTED" },
	{ 0x21, "COMMAND INTERRUPTED" },
	{ 0x22, "TRANSIENT TRANSPORT ERROR" },
	{ 0x80, "LBA OUT OF RANGE" },
	{ 0x81, "CAPACITY EXCEEDED" },
	{ 0x82, "NAMESPACE NOT READY" },
	{ 0x83, "RESERVATION CONFLICT" },
	{ 0x84, "FORMAT IN PROGRESS" },
};

static const struct status_name command_specific[] = {
	{ 0x00, "COMPLETION QUEUE INVALID" },
	{ 0x01, "INVALID QUEUE IDENTIFIER" },
	{ 0x02, "INVALID QUEUE SIZE" },
	{ 0x03, "ABORT COMMAND LIMIT EXCEEDED" },
	{ 0x05, "ASYNCHRONOUS EVENT REQUEST LIMIT EXCEEDED" },
	{ 0x06, "INVALID FIRMWARE SLOT" },
	{ 0x07, "INVALID FIRMWARE IMAGE" },
	{ 0x08, "INVALID INTERRUPT VECTOR" },
	{ 0x09, "INVALID LOG PAGE" },
	{ 0x0a, "INVALID FORMAT" },
	{ 0x0b, "FIRMWARE ACTIVATION REQUIRES CONVENTIONAL RESET" },
	{ 0x0c, "INVALID QUEUE DELETION" },
	{ 0x0d, "FEATURE IDENTIFIER NOT SAVEABLE" },
	{ 0x0e, "FEATURE NOT CHANGEABLE" },
	{ 0x0f, "FEATURE NOT NAMESPACE SPECIFIC" },
	{ 0x14, "OVERLAPPING RANGE" },
	{ 0x15, "NAMESPACE INSUFFICIENT CAPACITY" },
	{ 0x16, "NAMESPACE ID UNAVAILABLE" },
	{ 0x18, "NAMESPACE ALREADY ATTACHED" },
	{ 0x19, "NAMESPACE IS PRIVATE" },
	{ 0x1a, "NAMESPACE NOT ATTACHED" },
	{ 0x1b, "THIN PROVISIONING NOT SUPPORTED" },
	{ 0x1c, "CONTROLLER LIST INVALID" },
	{ 0x80, "CONFLICTING ATTRIBUTES" },
	{ 0x81, "INVALID PROTECTION INFORMATION" },
	{ 0x82, "ATTEMPTED WRITE TO READ ONLY RANGE" },
};

static const struct status_name media[] = {
	{ 0x80, "WRITE FAULTS" },
	{ 0x81, "UNRECOVERED READ ERROR" },
	{ 0x82, "GUARD CHECK ERROR" },
	{ 0x83, "APPLICATION TAG CHECK ERROR" },
	{ 0x84, "REFERENCE TAG CHECK ERROR" },
	{ 0x85, "COMPARE FAILURE" },
	{ 0x86, "ACCESS DENIED" },
	{ 0x87, "DEALLOCATED OR UNWRITTEN LOGICAL BLOCK" },
};

static const struct status_name path[] = {
	{ 0x00, "INTERNAL PATH ERROR" },
	{ 0x01, "ASYMMETRIC ACCESS PERSISTENT LOSS" },
	{ 0x02, "ASYMMETRIC ACCESS INACCESSIBLE" },
	{ 0x03, "ASYMMETRIC ACCESS TRANSITION" },
	{ 0x60, "CONTROLLER PATHING ERROR" },
	{ 0x70, "HOST PATHING ERROR" },
	{ 0x71, "COMMAND ABORTED BY HOST" },
};

static const char *lookup(const struct status_name *t, size_t n, unsigned sc)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].sc == sc)
			return t[i].name;
	return NULL;
}

const char *upmd_nvme_status_str(uint16_t status)
{
	static __thread char buf[96];
	unsigned sct = UPMD_NVME_STATUS_SCT(status), sc = UPMD_NVME_STATUS_SC(status);
	const char *name = NULL, *kind = "unknown status code type";

	switch (sct) {
	case UPMD_NVME_SCT_GENERIC:
		name = lookup(generic, UPMD_DIM(generic), sc);
		kind = "generic";
		break;
	case UPMD_NVME_SCT_COMMAND_SPECIFIC:
		name = lookup(command_specific, UPMD_DIM(command_specific), sc);
		kind = "command specific";
		break;
	case UPMD_NVME_SCT_MEDIA_ERROR:
		name = lookup(media, UPMD_DIM(media), sc);
		kind = "media error";
		break;
	case UPMD_NVME_SCT_PATH:
		name = lookup(path, UPMD_DIM(path), sc);
		kind = "path";
		break;
	case UPMD_NVME_SCT_VENDOR:
		kind = "vendor specific";
		break;
	default:
		break;
	}
	if (name)
		return name;
	snprintf(buf, sizeof(buf), "%s status 0x%02x (SCT %u)", kind, sc, sct);
	return buf;
}
