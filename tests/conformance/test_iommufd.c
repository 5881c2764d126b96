/* uAPI conformance, /dev/iommu alone: IOAS objects, struct sizes, flags, map/unmap rules, IOVA ranges and options before any device. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

#define PG 4096ull

/* Every iommufd command's ABI size; on 6.12 each one's last field is its
 * last member, so the minimum (iommufd_ioctl_ops[].min_size) is the size. */
static const struct {
	const char *name;
	unsigned long req;
	uint32_t size;
} cmds[] = {
	{ "IOMMU_DESTROY", IOMMU_DESTROY, sizeof(struct iommu_destroy) },
	{ "IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC, sizeof(struct iommu_ioas_alloc) },
	{ "IOMMU_IOAS_IOVA_RANGES", IOMMU_IOAS_IOVA_RANGES, sizeof(struct iommu_ioas_iova_ranges) },
	{ "IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, sizeof(struct iommu_ioas_map) },
	{ "IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, sizeof(struct iommu_ioas_unmap) },
	{ "IOMMU_OPTION", IOMMU_OPTION, sizeof(struct iommu_option) },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

#define CHECK_RC_AS(rc, want, ...)                                             \
	do {                                                                   \
		char l_[160];                                                  \
		snprintf(l_, sizeof(l_), __VA_ARGS__);                         \
		conf_check_rc(false, (rc), (want), l_, __FILE__, __LINE__);    \
	} while (0)

/* IOAS ids are non-zero and distinct; DESTROY frees an id exactly once
 * (iommufd_object_remove: a missing id is -ENOENT). */
CONF_TEST(ioas_alloc_destroy)
{
	int ifd = fx_iommufd();
	uint32_t a = fx_ioas(ifd), b = fx_ioas(ifd);

	EXPECT_TRUE(a != 0);
	EXPECT_TRUE(b != 0);
	EXPECT_TRUE(a != b);
	EXPECT_RC(c_destroy(ifd, a), 0);
	EXPECT_RC(c_destroy(ifd, a), -ENOENT);
	EXPECT_RC(c_destroy(ifd, 0), -ENOENT);
	EXPECT_RC(c_destroy(ifd, 0xfffffff0u), -ENOENT);
	EXPECT_RC(c_destroy(ifd, b), 0);
}

/* iommufd_ioas_alloc_ioctl: any flag is unknown -> -EOPNOTSUPP. */
CONF_TEST(ioas_alloc_unknown_flags)
{
	int ifd = fx_iommufd();
	struct iommu_ioas_alloc a = { .size = sizeof(a), .flags = 1 };

	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &a), -EOPNOTSUPP);
	a.flags = 0x80000000u;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &a), -EOPNOTSUPP);
}

/* iommufd_fops_ioctl: user size < min_size -> -EINVAL before anything else. */
CONF_TEST(short_size_einval)
{
	int ifd = fx_iommufd();
	uint64_t buf[8];
	unsigned i;

	for (i = 0; i < NCMDS; i++) {
		uint32_t sizes[] = { 0, 4, cmds[i].size - 1 };

		for (unsigned j = 0; j < 3; j++) {
			memset(buf, 0, sizeof(buf));
			memcpy(buf, &sizes[j], sizeof(sizes[j]));
			CHECK_RC_AS(upmd_k_ioctl(ifd, cmds[i].req, buf), -EINVAL, "%s size %u",
				    cmds[i].name, sizes[j]);
		}
	}
}

/* copy_struct_from_user: bytes past the kernel's struct must be zero,
 * else -E2BIG, before the command runs. */
CONF_TEST(long_size_nonzero_tail_e2big)
{
	int ifd = fx_iommufd();
	uint64_t buf[8];
	unsigned i;

	for (i = 0; i < NCMDS; i++) {
		uint32_t size = cmds[i].size + 8;

		memset(buf, 0, sizeof(buf));
		memcpy(buf, &size, sizeof(size));
		((uint8_t *)buf)[cmds[i].size + 7] = 1;
		CHECK_RC_AS(upmd_k_ioctl(ifd, cmds[i].req, buf), -E2BIG,
			    "%s size %u, last tail byte 1", cmds[i].name, size);
		((uint8_t *)buf)[cmds[i].size + 7] = 0;
		((uint8_t *)buf)[cmds[i].size] = 0x80;
		CHECK_RC_AS(upmd_k_ioctl(ifd, cmds[i].req, buf), -E2BIG,
			    "%s size %u, first tail byte 0x80", cmds[i].name, size);
	}
}

/* A larger struct with a zero tail is a newer caller: accepted, and the
 * kernel writes back no more than its own struct (the tail stays zero). */
CONF_TEST(long_size_zero_tail_accepted)
{
	int ifd = fx_iommufd();
	void *mem = fx_mem(PG);
	struct iommu_iova_range r[2];
	uint64_t tail = 0;
	union {
		struct iommu_ioas_alloc alloc;
		struct iommu_ioas_iova_ranges ranges;
		struct iommu_ioas_map map;
		struct iommu_ioas_unmap unmap;
		struct iommu_option option;
		struct iommu_destroy destroy;
		uint8_t raw[64];
	} u;
	uint32_t ioas;

	memset(&u, 0, sizeof(u));
	u.alloc.size = sizeof(u.alloc) + 8;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_ALLOC, &u), 0);
	ioas = u.alloc.out_ioas_id;
	EXPECT_TRUE(ioas != 0);
	memcpy(&tail, u.raw + sizeof(u.alloc), 8);
	EXPECT_EQ(tail, 0);

	memset(&u, 0, sizeof(u));
	u.ranges.size = sizeof(u.ranges) + 8;
	u.ranges.ioas_id = ioas;
	u.ranges.num_iovas = 2;
	u.ranges.allowed_iovas = (uintptr_t)r;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_IOVA_RANGES, &u), 0);
	EXPECT_EQ(u.ranges.num_iovas, 1);

	memset(&u, 0, sizeof(u));
	u.map.size = sizeof(u.map) + 8;
	u.map.flags = FIXED_RW;
	u.map.ioas_id = ioas;
	u.map.user_va = (uintptr_t)mem;
	u.map.length = PG;
	u.map.iova = 0x100000;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &u), 0);

	memset(&u, 0, sizeof(u));
	u.unmap.size = sizeof(u.unmap) + 8;
	u.unmap.ioas_id = ioas;
	u.unmap.iova = 0x100000;
	u.unmap.length = PG;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_UNMAP, &u), 0);
	EXPECT_EQ(u.unmap.length, PG);

	memset(&u, 0, sizeof(u));
	u.option.size = sizeof(u.option) + 8;
	u.option.option_id = IOMMU_OPTION_HUGE_PAGES;
	u.option.op = IOMMU_OPTION_OP_GET;
	u.option.object_id = ioas;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_OPTION, &u), 0);
	EXPECT_EQ(u.option.val64, 1);

	memset(&u, 0, sizeof(u));
	u.destroy.size = sizeof(u.destroy) + 8;
	u.destroy.id = ioas;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_DESTROY, &u), 0);
}

/*
 * Unknown ioctls -> -ENOTTY: a free command number inside iommufd's range
 * (op->ioctl_num mismatch -> -ENOIOCTLCMD), one past it and a VFIO number
 * (iommufd_vfio_ioctl default), and a known number with the wrong
 * direction bits (the whole cmd must match).
 */
CONF_TEST(unknown_ioctl_enotty)
{
	int ifd = fx_iommufd();
	uint64_t buf[8];

	memset(buf, 0, sizeof(buf));
	buf[0] = 64;	/* size; the kernel reads it before looking at the number */
	EXPECT_RC(upmd_k_ioctl(ifd, _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 0x1f), buf), -ENOTTY);
	EXPECT_RC(upmd_k_ioctl(ifd, _IO(IOMMUFD_TYPE, 0xff), buf), -ENOTTY);
	EXPECT_RC(upmd_k_ioctl(ifd, _IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC, struct iommu_ioas_alloc),
			       buf), -ENOTTY);
	EXPECT_RC(upmd_k_ioctl(ifd, VFIO_DEVICE_GET_INFO, buf), -ENOTTY);
	EXPECT_RC(upmd_k_ioctl(ifd, VFIO_DEVICE_BIND_IOMMUFD, buf), -ENOTTY);
}

/*
 * IOMMU_IOAS_MAP_FILE arrived after 6.12 (-ENOTTY there). Either it is
 * absent, and then nothing got mapped, or it works: a 2-page memfd maps
 * at a kernel-chosen IOVA and unmaps as one 8 KiB area.
 */
CONF_TEST(map_file_absent_or_works)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	struct iommu_ioas_map_file mf;
	uint64_t n = 0;
	int mfd, rc;

	mfd = memfd_create("upmd-conformance", MFD_CLOEXEC);
	REQUIRE_TRUE(mfd >= 0);
	if (ftruncate(mfd, 2 * PG) < 0) {
		close(mfd);
		REQUIRE_TRUE(!"ftruncate(memfd)");
	}
	mf = (struct iommu_ioas_map_file){
		.size = sizeof(mf), .flags = RW, .ioas_id = ioas, .fd = mfd, .start = 0,
		.length = 2 * PG,
	};
	rc = upmd_k_ioctl(ifd, IOMMU_IOAS_MAP_FILE, &mf);
	if (rc == -ENOTTY) {
		conf_note("IOMMU_IOAS_MAP_FILE absent (ENOTTY), as on 6.12");
		EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
		EXPECT_EQ(n, 0);
	} else {
		conf_note("IOMMU_IOAS_MAP_FILE present");
		EXPECT_RC(rc, 0);
		EXPECT_TRUE(mf.iova != 0 && mf.iova % PG == 0);
		EXPECT_RC(c_unmap(ifd, ioas, mf.iova, 2 * PG, &n), 0);
		EXPECT_EQ(n, 2 * PG);
	}
	close(mfd);
}

/* iommufd_ioas_map: unknown flag or __reserved -> -EOPNOTSUPP (checked
 * first), iova/length >= ULONG_MAX -> -EOVERFLOW, neither READABLE nor
 * WRITEABLE -> -EINVAL, unknown IOAS -> -ENOENT, length 0 -> -EINVAL. */
CONF_TEST(map_argument_errors)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	void *mem = fx_mem(PG);
	struct iommu_ioas_map m;
	uint64_t iova;

#define MAP_INIT                                                               \
	(struct iommu_ioas_map){ .size = sizeof(m), .flags = FIXED_RW, .ioas_id = ioas, \
				 .user_va = (uintptr_t)mem, .length = PG, .iova = 0x200000 }
	m = MAP_INIT;
	m.flags |= 1u << 3;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EOPNOTSUPP);
	m = MAP_INIT;
	m.flags |= 1u << 31;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EOPNOTSUPP);
	m = MAP_INIT;
	m.__reserved = 1;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EOPNOTSUPP);
	m = MAP_INIT;
	m.iova = UINT64_MAX;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EOVERFLOW);
	m = MAP_INIT;
	m.length = UINT64_MAX;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EOVERFLOW);
	m = MAP_INIT;
	m.flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EINVAL);
	m = MAP_INIT;
	m.flags = 0;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EINVAL);
	m = MAP_INIT;
	m.ioas_id = ioas + 1000;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -ENOENT);
	m = MAP_INIT;
	m.length = 0;
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_MAP, &m), -EINVAL);
#undef MAP_INIT
	/* None of them left a mapping behind. */
	iova = 0x200000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	EXPECT_EQ(iova, 0x200000);
}

/* iopt_check_iova: a FIXED map touching an existing area -> -EEXIST;
 * areas may touch end to start. */
CONF_TEST(map_overlap_eexist)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	uint8_t *mem = fx_mem(8 * PG);
	uint64_t iova, n = 0;

	iova = 0x100000;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, 4 * PG, &iova), 0);
	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 4 * PG, &iova), -EEXIST);
	iova = 0x102000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EEXIST);
	iova = 0x0fe000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 4 * PG, &iova), -EEXIST);
	iova = 0x103000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 2 * PG, &iova), -EEXIST);
	iova = 0x0ff000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 6 * PG, &iova), -EEXIST);
	/* Adjacent on both sides is fine. */
	iova = 0x104000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem + 4 * PG, PG, &iova), 0);
	iova = 0x0ff000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem + 5 * PG, PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 6 * PG);
}

/* iopt_alloc_iova: without FIXED_IOVA the kernel picks a free, page-aligned
 * (for a page-aligned user VA), non-zero IOVA that avoids existing areas. */
CONF_TEST(map_kernel_chosen_iova_no_device)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	uint8_t *mem = fx_mem(32 * PG);
	uint64_t fixed = PG, a = 0, b = 0;

	/* Occupy where a first-fit allocator starts (the kernel's starts at PAGE_SIZE). */
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, 16 * PG, &fixed), 0);
	REQUIRE_RC(c_map(ifd, ioas, RW, mem + 16 * PG, 8 * PG, &a), 0);
	REQUIRE_RC(c_map(ifd, ioas, RW, mem + 24 * PG, 8 * PG, &b), 0);
	conf_note("kernel-chosen IOVAs 0x%llx, 0x%llx", (unsigned long long)a, (unsigned long long)b);
	EXPECT_TRUE(a != 0 && b != 0);
	EXPECT_EQ(a % PG, 0);
	EXPECT_EQ(b % PG, 0);
	EXPECT_TRUE(a + 8 * PG <= PG || a >= PG + 16 * PG);
	EXPECT_TRUE(b + 8 * PG <= PG || b >= PG + 16 * PG);
	EXPECT_TRUE(a + 8 * PG <= b || b + 8 * PG <= a);
}

/* iommufd_ioas_unmap: a range holding no area -> -ENOENT; length 0 ->
 * -EINVAL; an unknown IOAS -> -ENOENT. */
CONF_TEST(unmap_nothing_enoent)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	void *mem = fx_mem(PG);
	uint64_t iova = 0x400000, n = 0;

	EXPECT_RC(c_unmap(ifd, ioas, 0x400000, PG, &n), -ENOENT);
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0x800000, PG, &n), -ENOENT);
	EXPECT_RC(c_unmap(ifd, ioas, 0x400000, 0, &n), -EINVAL);
	EXPECT_RC(c_unmap(ifd, ioas + 1000, 0x400000, PG, &n), -ENOENT);
	EXPECT_RC(c_unmap(ifd, ioas, 0x400000, PG, &n), 0);
	EXPECT_EQ(n, PG);
	EXPECT_RC(c_unmap(ifd, ioas, 0x400000, PG, &n), -ENOENT);
}

/* iopt_unmap_iova_range: a range cutting an area -> -ENOENT (6.12; no
 * splitting), and the area stays mapped whole. */
CONF_TEST(unmap_partial_fails_keeps_mapping)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	void *mem = fx_mem(2 * PG);
	uint64_t iova = 0x500000, n = 0;

	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, 2 * PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0x500000, PG, &n), -ENOENT);
	EXPECT_RC(c_unmap(ifd, ioas, 0x501000, PG, &n), -ENOENT);
	EXPECT_RC(c_unmap(ifd, ioas, 0x4ff000, 2 * PG, &n), -ENOENT);
	iova = 0x501000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EEXIST);
	EXPECT_RC(c_unmap(ifd, ioas, 0x500000, 2 * PG, &n), 0);
	EXPECT_EQ(n, 2 * PG);
}

/* A range covering whole areas (and holes) unmaps them all and returns
 * their total. */
CONF_TEST(unmap_superset_range)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	uint8_t *mem = fx_mem(4 * PG);
	uint64_t iova, n = 0;

	iova = 0x600000;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	iova = 0x610000;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem + PG, 2 * PG, &iova), 0);
	iova = 0x700000;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem + 3 * PG, PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0x5ff000, 0x20000, &n), 0);
	EXPECT_EQ(n, 3 * PG);
	EXPECT_RC(c_unmap(ifd, ioas, 0x600000, 0x20000, &n), -ENOENT);
	EXPECT_RC(c_unmap(ifd, ioas, 0x700000, PG, &n), 0);
	EXPECT_EQ(n, PG);
}

/* iova 0 + length UINT64_MAX unmaps everything and returns the total; on
 * an empty IOAS it succeeds with 0 (iopt_unmap_all, no -ENOENT). */
CONF_TEST(unmap_all_returns_total)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	uint8_t *mem = fx_mem(32 * PG);
	uint64_t iova, n = 1;

	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 0);
	iova = 0x100000;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	iova = 0x200000;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem + PG, 2 * PG, &iova), 0);
	iova = 0;
	REQUIRE_RC(c_map(ifd, ioas, RW, mem + 16 * PG, 16 * PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 19 * PG);
	EXPECT_RC(c_unmap(ifd, ioas, 0x100000, PG, &n), -ENOENT);
	n = 1;
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 0);
	/* Not the magic pair: an overflowing range. */
	EXPECT_RC(c_unmap(ifd, ioas, PG, UINT64_MAX, &n), -EOVERFLOW);
}

/*
 * iommufd_ioas_iova_ranges on an IOAS no device is attached to: no
 * reserved region yet, so one range, the whole 64-bit space, and
 * iova_alignment 1 (iopt_init_table: software tables have no alignment).
 * num_iovas is always written; too small an array -> -EMSGSIZE.
 */
CONF_TEST(iova_ranges_no_device)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	struct iommu_iova_range r[4];
	struct iommu_ioas_iova_ranges q;
	uint64_t align = 0;
	uint32_t n;

	memset(r, 0xa5, sizeof(r));
	n = 4;
	EXPECT_RC(c_ranges(ifd, ioas, r, &n, &align), 0);
	EXPECT_EQ(n, 1);
	EXPECT_EQ(r[0].start, 0);
	EXPECT_EQ(r[0].last, UINT64_MAX);
	EXPECT_EQ(align, 1);
	EXPECT_EQ(r[1].start, 0xa5a5a5a5a5a5a5a5ull);

	n = 0;
	EXPECT_RC(c_ranges(ifd, ioas, NULL, &n, &align), -EMSGSIZE);
	EXPECT_EQ(n, 1);

	q = (struct iommu_ioas_iova_ranges){ .size = sizeof(q), .ioas_id = ioas, .num_iovas = 4,
					     .allowed_iovas = (uintptr_t)r, .__reserved = 1 };
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_IOAS_IOVA_RANGES, &q), -EOPNOTSUPP);
	n = 4;
	EXPECT_RC(c_ranges(ifd, ioas + 1000, r, &n, &align), -ENOENT);
}

/*
 * IOMMU_OPTION_HUGE_PAGES on an IOAS: 1 by default; 0 turns large pages
 * off, which raises the IOAS's iova_alignment to PAGE_SIZE
 * (iopt_calculate_iova_alignment), 1 restores both; other values -EINVAL.
 */
CONF_TEST(option_huge_pages)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	struct iommu_iova_range r[2];
	uint64_t v, align = 0;
	uint32_t n;

	v = 42;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &v), 0);
	EXPECT_EQ(v, 1);
	v = 0;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &v), 0);
	v = 42;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &v), 0);
	EXPECT_EQ(v, 0);
	n = 2;
	EXPECT_RC(c_ranges(ifd, ioas, r, &n, &align), 0);
	EXPECT_EQ(align, PG);
	v = 1;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &v), 0);
	v = 42;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &v), 0);
	EXPECT_EQ(v, 1);
	n = 2;
	EXPECT_RC(c_ranges(ifd, ioas, r, &n, &align), 0);
	EXPECT_EQ(align, 1);
	v = 2;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &v), -EINVAL);
}

/*
 * iommufd_option: __reserved or an unknown option -> -EOPNOTSUPP; an
 * unknown op -> -EOPNOTSUPP; HUGE_PAGES on an id that is no IOAS ->
 * -ENOENT; RLIMIT_MODE is per context: object_id must be 0
 * (-EOPNOTSUPP otherwise) and a /dev/iommu context starts in user mode (0).
 */
CONF_TEST(option_errors)
{
	int ifd = fx_iommufd();
	uint32_t ioas = fx_ioas(ifd);
	struct iommu_option o;
	uint64_t v;

	v = 0;
	EXPECT_RC(c_option(ifd, 7, IOMMU_OPTION_OP_GET, ioas, &v), -EOPNOTSUPP);
	EXPECT_RC(c_option(ifd, 0xffffffffu, IOMMU_OPTION_OP_GET, 0, &v), -EOPNOTSUPP);
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, 2, ioas, &v), -EOPNOTSUPP);
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 0, &v), -ENOENT);
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas + 1000, &v),
		  -ENOENT);
	o = (struct iommu_option){ .size = sizeof(o), .option_id = IOMMU_OPTION_HUGE_PAGES,
				   .op = IOMMU_OPTION_OP_GET, .__reserved = 1, .object_id = ioas };
	EXPECT_RC(upmd_k_ioctl(ifd, IOMMU_OPTION, &o), -EOPNOTSUPP);

	v = 42;
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v), 0);
	EXPECT_EQ(v, 0);
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, ioas, &v),
		  -EOPNOTSUPP);
	EXPECT_RC(c_option(ifd, IOMMU_OPTION_RLIMIT_MODE, 2, 0, &v), -EOPNOTSUPP);
}

/* Objects belong to their context: another /dev/iommu open sees none of
 * them, and closing a context frees what it held. */
CONF_TEST(objects_per_context)
{
	int a = fx_iommufd(), b = fx_iommufd();
	uint32_t ioas = fx_ioas(a);
	void *mem = fx_mem(PG);
	uint64_t iova = 0x100000, n = 0;
	uint32_t nr = 1;
	struct iommu_iova_range r;

	REQUIRE_RC(c_map(a, ioas, FIXED_RW, mem, PG, &iova), 0);
	EXPECT_RC(c_ranges(b, ioas, &r, &nr, NULL), -ENOENT);
	EXPECT_RC(c_unmap(b, ioas, 0, UINT64_MAX, &n), -ENOENT);
	EXPECT_RC(c_destroy(b, ioas), -ENOENT);
	EXPECT_RC(fx_close(a), 0);
}

const struct upmd_test conf_iommufd_tests[] = {
	{ "IOAS alloc ids, destroy once", ioas_alloc_destroy },
	{ "IOAS_ALLOC unknown flags -> EOPNOTSUPP", ioas_alloc_unknown_flags },
	{ "short size -> EINVAL, each command", short_size_einval },
	{ "larger size, non-zero tail -> E2BIG, each command", long_size_nonzero_tail_e2big },
	{ "larger size, zero tail -> accepted", long_size_zero_tail_accepted },
	{ "unknown ioctl -> ENOTTY", unknown_ioctl_enotty },
	{ "MAP_FILE absent (ENOTTY) or works", map_file_absent_or_works },
	{ "MAP argument errors", map_argument_errors },
	{ "overlapping map -> EEXIST", map_overlap_eexist },
	{ "kernel-chosen IOVA, no device", map_kernel_chosen_iova_no_device },
	{ "unmap of nothing -> ENOENT", unmap_nothing_enoent },
	{ "partial unmap fails, mapping stays", unmap_partial_fails_keeps_mapping },
	{ "unmap of a superset range", unmap_superset_range },
	{ "unmap-all returns the total", unmap_all_returns_total },
	{ "IOVA ranges, no device attached", iova_ranges_no_device },
	{ "OPTION HUGE_PAGES get/set", option_huge_pages },
	{ "OPTION errors, RLIMIT_MODE", option_errors },
	{ "objects are per context", objects_per_context },
	{ NULL, NULL },
};
