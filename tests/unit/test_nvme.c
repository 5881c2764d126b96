/* NVMe driver pieces that need no controller: PRP and SGL construction for every alignment and length, status decoding, the wire layouts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/nvme.h>

#include "upmd_test.h"

#define PG 4096u

/* A fake buffer: page k of it lives at IOVA pages[k]. */
struct fake_buf {
	uint64_t pages[600];
	unsigned npages;
	unsigned calls;
};

static uint64_t fake_xlate(const void *ctx, uint64_t k)
{
	struct fake_buf *b = (struct fake_buf *)(uintptr_t)ctx;

	b->calls++;
	return k < b->npages ? b->pages[k] : UPMD_BAD_IOVA;
}

/* Scattered pages: page k at 0x10000000 + k * 3 pages (never adjacent). */
static void fake_scattered(struct fake_buf *b, unsigned n)
{
	memset(b, 0, sizeof(*b));
	b->npages = n;
	for (unsigned k = 0; k < n; k++)
		b->pages[k] = 0x10000000ull + (uint64_t)k * 3 * PG;
}

static void fake_contiguous(struct fake_buf *b, unsigned n)
{
	memset(b, 0, sizeof(*b));
	b->npages = n;
	for (unsigned k = 0; k < n; k++)
		b->pages[k] = 0x20000000ull + (uint64_t)k * PG;
}

/* What a controller does with PRP1/PRP2/list: the bytes it would move,
 * page by page, compared with what the buffer is. */
static void check_prps(const struct fake_buf *b, uint32_t off, uint32_t len, uint64_t prp1, uint64_t prp2,
		       const uint64_t *list, uint64_t list_iova, int nlist)
{
	uint32_t in_first = PG - off, pages_after;

	CU_ASSERT_EQUAL(prp1, b->pages[0] + off);
	if (len <= in_first) {
		CU_ASSERT_EQUAL(prp2, 0);
		CU_ASSERT_EQUAL(nlist, 0);
		return;
	}
	pages_after = (len - in_first + PG - 1) / PG;
	if (pages_after == 1) {
		CU_ASSERT_EQUAL(nlist, 0);
		CU_ASSERT_EQUAL(prp2, b->pages[1]);
		return;
	}
	CU_ASSERT_EQUAL(prp2, list_iova);
	CU_ASSERT_EQUAL((unsigned)nlist, pages_after);
	for (unsigned k = 0; k < pages_after && k < (unsigned)nlist; k++) {
		CU_ASSERT_EQUAL(list[k], b->pages[k + 1]);
		CU_ASSERT_EQUAL(list[k] & (PG - 1), 0);	/* list entries have no offset */
	}
}

static void test_prp_every_case(void)
{
	static const uint32_t offs[] = { 0, 4, 8, 512, 2048, 4092 };
	static const uint32_t lens[] = { 4, 512, 1024, 4092, 4096, 4100, 8192, 8196, 12288, 65536, 65540,
					 131072, 1048576 - 8192, 1048576 };
	struct fake_buf b;
	uint64_t list[256];
	unsigned cases = 0;

	for (unsigned i = 0; i < UPMD_DIM(offs); i++)
		for (unsigned j = 0; j < UPMD_DIM(lens); j++) {
			uint32_t off = offs[i], len = lens[j];
			uint32_t need = (off + len + PG - 1) / PG;
			uint64_t prp1 = 1, prp2 = 1;
			int rc;

			fake_scattered(&b, need);
			memset(list, 0xee, sizeof(list));
			rc = upmd_nvme_build_prps(fake_xlate, &b, off, len, &prp1, &prp2, list, 0x7000000, 256);
			if (need - 1 > 256) {
				CU_ASSERT_EQUAL(rc, -EINVAL);
				continue;
			}
			CU_ASSERT_TRUE(rc >= 0);
			if (rc < 0) {
				printf("\n  off %u len %u: %d\n", off, len, rc);
				continue;
			}
			check_prps(&b, off, len, prp1, prp2, list, 0x7000000, rc);
			/* Only the pages the transfer touches are looked up. */
			CU_ASSERT_TRUE(b.calls <= need);
			cases++;
		}
	CU_ASSERT_TRUE(cases > 70);
}

static void test_prp_refusals(void)
{
	struct fake_buf b;
	uint64_t list[4], prp1, prp2;

	fake_scattered(&b, 8);
	/* zero length, odd offset (PRP1 must be dword aligned), offset past a page */
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 0, &prp1, &prp2, list, 0x1000, 4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 2, 512, &prp1, &prp2, list, 0x1000, 4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 4096, 512, &prp1, &prp2, list, 0x1000, 4), -EINVAL);
	/* more list entries than the list has */
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 6 * PG, &prp1, &prp2, list, 0x1000, 4), -EINVAL);
	/* a list that would cross its page */
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 4 * PG, &prp1, &prp2, list, 0x1ff0, 4), -EINVAL);
	/* exactly fits: 1 + 4 pages */
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 5 * PG, &prp1, &prp2, list, 0x1000, 4), 4);
	/* a page without an IOVA */
	b.pages[2] = UPMD_BAD_IOVA;
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 3 * PG, &prp1, &prp2, list, 0x1000, 4), -EFAULT);
	b.pages[0] = UPMD_BAD_IOVA;
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 512, &prp1, &prp2, list, 0x1000, 4), -EFAULT);
	/* an IOVA that is not page aligned: a broken translation */
	fake_scattered(&b, 8);
	b.pages[1] += 8;
	CU_ASSERT_EQUAL(upmd_nvme_build_prps(fake_xlate, &b, 0, 2 * PG, &prp1, &prp2, list, 0x1000, 4), -EINVAL);
}

struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type;
};

static void test_sgl(void)
{
	struct fake_buf b;
	struct upmd_nvme_cmd cmd;
	struct sgl_desc list[64];
	uint64_t total;
	int rc;

	/* Contiguous IOVAs: one data block in the command, whatever the length. */
	fake_contiguous(&b, 40);
	memset(&cmd, 0, sizeof(cmd));
	rc = upmd_nvme_build_sgl(fake_xlate, &b, 100, 30 * PG, &cmd, list, 0x9000, 64);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(cmd.fuse_psdt >> 6, 1);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.addr, b.pages[0] + 100);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.len, 30 * PG);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.type, 0x00);
	/* Odd offsets are fine for SGLs. */
	rc = upmd_nvme_build_sgl(fake_xlate, &b, 3, 5, &cmd, list, 0x9000, 64);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.addr, b.pages[0] + 3);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.len, 5);

	/* Scattered: a last segment of one data block per page. */
	fake_scattered(&b, 5);
	memset(&cmd, 0, sizeof(cmd));
	rc = upmd_nvme_build_sgl(fake_xlate, &b, 512, 4 * PG, &cmd, list, 0x9000, 64);
	CU_ASSERT_EQUAL(rc, 5);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.type, 0x30);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.addr, 0x9000);
	CU_ASSERT_EQUAL(cmd.dptr.sgl.len, 5 * 16);
	total = 0;
	for (int i = 0; i < rc; i++) {
		CU_ASSERT_EQUAL(list[i].type, 0x00);
		CU_ASSERT_EQUAL(list[i].addr, b.pages[i] + (i == 0 ? 512 : 0));
		total += list[i].len;
	}
	CU_ASSERT_EQUAL(list[0].len, PG - 512);
	CU_ASSERT_EQUAL(list[4].len, 512);
	CU_ASSERT_EQUAL(total, 4 * PG);

	/* Partly contiguous: pages 0-1 together, 2 alone, 3-4 together. */
	fake_contiguous(&b, 5);
	b.pages[2] += 100 * PG;
	b.pages[3] += 200 * PG;
	b.pages[4] += 200 * PG;
	rc = upmd_nvme_build_sgl(fake_xlate, &b, 0, 5 * PG, &cmd, list, 0x9000, 64);
	CU_ASSERT_EQUAL(rc, 3);
	CU_ASSERT_EQUAL(list[0].len, 2 * PG);
	CU_ASSERT_EQUAL(list[1].len, PG);
	CU_ASSERT_EQUAL(list[2].len, 2 * PG);
	CU_ASSERT_EQUAL(list[2].addr, b.pages[3]);

	/* Too many pieces for the list; a missing page. */
	fake_scattered(&b, 10);
	CU_ASSERT_EQUAL(upmd_nvme_build_sgl(fake_xlate, &b, 0, 10 * PG, &cmd, list, 0x9000, 4), -EINVAL);
	b.pages[3] = UPMD_BAD_IOVA;
	CU_ASSERT_EQUAL(upmd_nvme_build_sgl(fake_xlate, &b, 0, 10 * PG, &cmd, list, 0x9000, 64), -EFAULT);
	CU_ASSERT_EQUAL(upmd_nvme_build_sgl(fake_xlate, &b, 0, 0, &cmd, list, 0x9000, 64), -EINVAL);
}

static void test_status(void)
{
	struct upmd_nvme_cpl cpl;

	memset(&cpl, 0, sizeof(cpl));
	cpl.status = 1;	/* phase only */
	CU_ASSERT_FALSE(upmd_nvme_cpl_is_error(&cpl));
	cpl.status = UPMD_NVME_STATUS(0, UPMD_NVME_SC_LBA_OUT_OF_RANGE) | 1;
	CU_ASSERT_TRUE(upmd_nvme_cpl_is_error(&cpl));
	CU_ASSERT_EQUAL(UPMD_NVME_STATUS_SC(cpl.status), 0x80);
	CU_ASSERT_EQUAL(UPMD_NVME_STATUS_SCT(cpl.status), 0);
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(cpl.status), "LBA OUT OF RANGE");
	/* Code type alone is an error too; DNR and More bits are not the code. */
	cpl.status = UPMD_NVME_STATUS(UPMD_NVME_SCT_MEDIA_ERROR, 0x81) | (1u << 15);
	CU_ASSERT_TRUE(upmd_nvme_cpl_is_error(&cpl));
	CU_ASSERT_EQUAL(UPMD_NVME_STATUS_DNR(cpl.status), 1);
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(cpl.status), "UNRECOVERED READ ERROR");
	cpl.status = (1u << 15) | (1u << 14);
	CU_ASSERT_FALSE(upmd_nvme_cpl_is_error(&cpl));
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(UPMD_NVME_STATUS(0, 0)), "SUCCESS");
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(UPMD_NVME_STATUS(0, 0x08)), "ABORTED - SQ DELETION");
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(UPMD_NVME_STATUS(0, 0x04)), "DATA TRANSFER ERROR");
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(UPMD_NVME_STATUS(1, 0x01)), "INVALID QUEUE IDENTIFIER");
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(UPMD_NVME_STATUS(1, 0x0c)), "INVALID QUEUE DELETION");
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(UPMD_NVME_STATUS(3, 0x71)), "COMMAND ABORTED BY HOST");
	/* Unknown codes say what they are. */
	CU_ASSERT_PTR_NOT_NULL(strstr(upmd_nvme_status_str(UPMD_NVME_STATUS(0, 0x7e)), "generic status 0x7e"));
	CU_ASSERT_PTR_NOT_NULL(strstr(upmd_nvme_status_str(UPMD_NVME_STATUS(7, 0x12)), "vendor specific"));
	CU_ASSERT_PTR_NOT_NULL(strstr(upmd_nvme_status_str(UPMD_NVME_STATUS(5, 0x01)), "SCT 5"));
}

static void test_layouts(void)
{
	struct upmd_nvme_cmd cmd;
	uint8_t *p = (uint8_t *)&cmd;

	/* CDW0: opcode byte 0, PSDT bits 7:6 of byte 1, CID bytes 2-3. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = 0x02;
	cmd.fuse_psdt = 0x40;
	cmd.cid = 0x1234;
	cmd.nsid = 7;
	cmd.dptr.prp.prp1 = 0x1122334455667788ull;
	cmd.cdw10 = 0xaabbccdd;
	CU_ASSERT_EQUAL(p[0], 0x02);
	CU_ASSERT_EQUAL(p[1], 0x40);
	CU_ASSERT_EQUAL(p[2], 0x34);
	CU_ASSERT_EQUAL(p[3], 0x12);
	CU_ASSERT_EQUAL(p[4], 7);
	CU_ASSERT_EQUAL(p[24], 0x88);
	CU_ASSERT_EQUAL(p[40], 0xdd);
	/* The SGL descriptor overlays PRP1/PRP2: type in byte 15 of DPTR (39). */
	cmd.dptr.sgl.type = 0x30;
	CU_ASSERT_EQUAL(p[39], 0x30);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_cpl, status), 14);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_cpl, cid), 12);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_ns_data, nsze), 0);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_ns_data, nlbaf), 25);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_ctrlr_data, sn), 4);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_ctrlr_data, mn), 24);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_ctrlr_data, fr), 64);
	CU_ASSERT_EQUAL(offsetof(struct upmd_nvme_ctrlr_data, ver), 80);
}

static const struct upmd_test prp_tests[] = {
	{ "PRP1/PRP2/list for every offset and length", test_prp_every_case },
	{ "PRP refusals: zero, odd offset, list too small or crossing its page, no IOVA", test_prp_refusals },
	{ "SGL: one data block, a last segment, merged contiguous pieces, refusals", test_sgl },
	{ "status codes: error test, fields, readable names", test_status },
	{ "command and completion layouts", test_layouts },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "nvme data pointers and status", NULL, NULL, prp_tests })
