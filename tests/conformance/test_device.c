/* uAPI conformance, the vfio device cdev: bind/attach ordering, argsz rules, PASID, device and region info, BAR access. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "conf.h"

#define PG 4096ull
#define R_RW (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
#define CONFIG_OFF VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX)

/* A command number vfio-pci does not know. */
#define VFIO_UNKNOWN_IOCTL _IO(VFIO_TYPE, VFIO_BASE + 40)

/*
 * IOMMU_GET_HW_INFO, as 6.12 (Debian's 6.12.117 already carries
 * out_max_pasid_log2; plain 6.12 has a zero __reserved u32 there, so the
 * byte reads 0 on either). The project's uAPI header does not carry it:
 * only this suite needs it, to learn whether the kernel reports PASID.
 */
struct conf_iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 out_data_type;
	__u8 out_max_pasid_log2;
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
_Static_assert(sizeof(struct conf_iommu_hw_info) == 40, "iommu_hw_info ABI");
#define CONF_IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)
#define CONF_HW_INFO_TYPE_INTEL_VTD 1
#define CONF_HW_INFO_VTD_LEN 24	/* struct iommu_hw_info_vtd: flags, __reserved, cap_reg, ecap_reg */

static bool need_a(void)
{
	return conf_need_dev(conf_dev_a, "a vfio device");
}

/* vfio_device_fops_*: until BIND_IOMMUFD succeeds every other ioctl, read,
 * write and mmap of a cdev fd is -EINVAL (df->access_granted). */
CONF_TEST(unbound_cdev_einval)
{
	struct vfio_device_info info;
	struct vfio_region_info ri;
	uint32_t pt = 1, cfg = 0;
	void *p = NULL;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	EXPECT_RC(c_dev_info(dfd, &info), -EINVAL);
	EXPECT_RC(c_region_info(dfd, VFIO_PCI_CONFIG_REGION_INDEX, &ri), -EINVAL);
	EXPECT_RC(c_attach(dfd, &pt), -EINVAL);
	EXPECT_RC(c_detach(dfd), -EINVAL);
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_UNKNOWN_IOCTL, &info), -EINVAL);
	EXPECT_RC(upmd_k_pread(dfd, &cfg, 4, CONFIG_OFF), -EINVAL);
	EXPECT_RC(upmd_k_pwrite(dfd, &cfg, 4, CONFIG_OFF + 0x40), -EINVAL);
	EXPECT_RC(fx_region_mmap(dfd, 0, PG, PROT_READ, MAP_SHARED, &p), -EINVAL);
	/* The refusals cost nothing: the device binds afterwards. */
	ifd = fx_iommufd();
	EXPECT_TRUE(fx_bind(dfd, ifd) != 0);
	EXPECT_RC(c_dev_info(dfd, &info), 0);
}

/* vfio_df_ioctl_bind_iommufd: argsz < 16, flags or a negative fd ->
 * -EINVAL; an fd that is not an iommufd -> -EBADFD
 * (iommufd_ctx_from_fd). None of them binds. */
CONF_TEST(bind_argument_errors)
{
	struct vfio_device_bind_iommufd b;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b) - 1, .iommufd = ifd };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), -EINVAL);
	b = (struct vfio_device_bind_iommufd){ .argsz = 0, .iommufd = ifd };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), -EINVAL);
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .flags = 1, .iommufd = ifd };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), -EINVAL);
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .iommufd = -1 };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), -EINVAL);
	b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(b), .iommufd = dfd };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &b), -EBADFD);
	/* Still unbound ... */
	EXPECT_RC(c_detach(dfd), -EINVAL);
	/* ... and bindable; bytes past the struct are not looked at (vfio copies minsz). */
	{
		struct {
			struct vfio_device_bind_iommufd b;
			uint32_t tail[2];
		} big = { { .argsz = sizeof(big), .iommufd = ifd }, { 0xdeadbeef, 0xdeadbeef } };

		EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_BIND_IOMMUFD, &big), 0);
		EXPECT_TRUE(big.b.out_devid != 0);
		EXPECT_EQ(big.tail[0], 0xdeadbeef);
	}
}

/* "one device cannot be bound twice": a second BIND on the same fd is
 * -EINVAL whatever the iommufd, and the first binding stays. */
CONF_TEST(bind_twice_einval)
{
	struct vfio_device_info info;
	uint32_t devid, again = 0;
	int dfd, ifd, ifd2;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	ifd2 = fx_iommufd();
	devid = fx_bind(dfd, ifd);
	EXPECT_TRUE(devid != 0);
	EXPECT_RC(c_bind(dfd, ifd, &again), -EINVAL);
	EXPECT_RC(c_bind(dfd, ifd2, &again), -EINVAL);
	EXPECT_RC(c_dev_info(dfd, &info), 0);
	/* The device object belongs to the first context only. */
	EXPECT_RC(c_destroy(ifd2, devid), -ENOENT);
}

/* vfio_df_open: the cdev path opens a device once. A second open of the
 * node succeeds but cannot bind while the first is bound (-EINVAL); an
 * open that never bound claims nothing; after close the device is free. */
CONF_TEST(bind_second_open)
{
	uint32_t id = 0;
	int d1, d2, ifd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	d1 = fx_dev_open(conf_dev_a);
	d2 = fx_dev_open(conf_dev_a);
	EXPECT_RC(c_bind(d2, ifd, &id), 0);
	EXPECT_RC(c_bind(d1, ifd, &id), -EINVAL);
	EXPECT_RC(fx_close(d2), 0);
	EXPECT_RC(c_bind(d1, ifd, &id), 0);
}

/*
 * Attach/detach on a bound device: DETACH when never attached succeeds
 * (vfio_iommufd_physical_detach_ioas returns quietly); ATTACH to an id
 * that does not exist -> -ENOENT; to an object that is neither IOAS nor
 * HWPT (the device itself) -> -EINVAL (iommufd_device_change_pt); argsz
 * below minsz or flags (6.12 knows none) -> -EINVAL.
 */
CONF_TEST(attach_detach_errors)
{
	struct vfio_device_attach_iommufd_pt at;
	struct vfio_device_detach_iommufd_pt dt;
	uint32_t devid, ioas, pt;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	devid = fx_bind(dfd, ifd);
	ioas = fx_ioas(ifd);

	EXPECT_RC(c_detach(dfd), 0);
	pt = 0;
	EXPECT_RC(c_attach(dfd, &pt), -ENOENT);
	pt = ioas + 1000;
	EXPECT_RC(c_attach(dfd, &pt), -ENOENT);
	pt = devid;
	EXPECT_RC(c_attach(dfd, &pt), -EINVAL);

	at = (struct vfio_device_attach_iommufd_pt){ .argsz = VFIO_DEVICE_ATTACH_MINSZ - 1, .pt_id = ioas };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at), -EINVAL);
	at = (struct vfio_device_attach_iommufd_pt){ .argsz = VFIO_DEVICE_ATTACH_MINSZ, .flags = 1u << 1,
						     .pt_id = ioas };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at), -EINVAL);
	at = (struct vfio_device_attach_iommufd_pt){ .argsz = VFIO_DEVICE_ATTACH_MINSZ, .flags = 1u << 31,
						     .pt_id = ioas };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at), -EINVAL);
	dt = (struct vfio_device_detach_iommufd_pt){ .argsz = VFIO_DEVICE_DETACH_MINSZ - 1 };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt), -EINVAL);
	dt = (struct vfio_device_detach_iommufd_pt){ .argsz = VFIO_DEVICE_DETACH_MINSZ, .flags = 1u << 1 };
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt), -EINVAL);
	/* None of that attached anything: the IOAS is free to go. */
	EXPECT_RC(c_destroy(ifd, ioas), 0);

	ioas = fx_ioas(ifd);
	pt = fx_attach(dfd, ioas);
	conf_note("IOAS %u -> HWPT %u", ioas, pt);
	EXPECT_TRUE(pt != 0 && pt != ioas && pt != devid);
	EXPECT_RC(c_detach(dfd), 0);
	EXPECT_RC(c_detach(dfd), 0);
	EXPECT_RC(c_destroy(ifd, ioas), 0);
}

static int hw_info(int ifd, uint32_t dev_id, struct conf_iommu_hw_info *hi)
{
	memset(hi, 0, sizeof(*hi));
	hi->size = sizeof(*hi);
	hi->dev_id = dev_id;
	/* out_max_pasid_log2 stays 0 on input: plain 6.12 has a __reserved
	 * u32 there that must be zero (else -EOPNOTSUPP). */
	return upmd_k_ioctl(ifd, CONF_IOMMU_GET_HW_INFO, hi);
}

/* iommufd_get_hw_info: flags -> -EOPNOTSUPP; an id that is no bound
 * device -> -ENOENT; for a device behind QEMU's intel-iommu it reports
 * VT-d data (type 1, 24 bytes), and no PASID for the edu (log2 0). */
CONF_TEST(hw_info_bound_device)
{
	struct conf_iommu_hw_info hi;
	uint32_t devid, ioas;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	devid = fx_bind(dfd, ifd);
	ioas = fx_ioas(ifd);
	EXPECT_RC(hw_info(ifd, devid, &hi), 0);
	conf_note("GET_HW_INFO: type %u, data_len %u, max_pasid_log2 %u, capabilities 0x%llx",
		  hi.out_data_type, hi.data_len, hi.out_max_pasid_log2,
		  (unsigned long long)hi.out_capabilities);
	EXPECT_EQ(hi.out_data_type, CONF_HW_INFO_TYPE_INTEL_VTD);
	EXPECT_EQ(hi.data_len, CONF_HW_INFO_VTD_LEN);
	EXPECT_EQ(hi.out_max_pasid_log2, 0);	/* the edu has no PASID capability */
	EXPECT_RC(hw_info(ifd, ioas, &hi), -ENOENT);
	EXPECT_RC(hw_info(ifd, 0, &hi), -ENOENT);
	memset(&hi, 0, sizeof(hi));
	hi.size = sizeof(hi);
	hi.dev_id = devid;
	hi.flags = 1;
	EXPECT_RC(upmd_k_ioctl(ifd, CONF_IOMMU_GET_HW_INFO, &hi), -EOPNOTSUPP);
}

/*
 * ATTACH with VFIO_DEVICE_ATTACH_PASID. 6.12's vfio knows no attach flag,
 * so it is -EINVAL there. A kernel may accept it only if it reports PASID
 * support for the device (IOMMU_GET_HW_INFO out_max_pasid_log2 != 0); a
 * kernel reporting none must refuse it with -EINVAL. Either way a refused
 * PASID attach leaves the device unattached, and DETACH with the flag is
 * refused the same way.
 */
CONF_TEST(attach_pasid_precise)
{
	struct vfio_device_attach_iommufd_pt at;
	struct vfio_device_detach_iommufd_pt dt;
	struct conf_iommu_hw_info hi;
	unsigned pasid_log2 = 0;
	uint32_t devid, ioas;
	int dfd, ifd, rc;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	devid = fx_bind(dfd, ifd);
	ioas = fx_ioas(ifd);
	rc = hw_info(ifd, devid, &hi);
	if (rc == 0)
		pasid_log2 = hi.out_max_pasid_log2;
	conf_note("GET_HW_INFO %s, max_pasid_log2 %u", conf_rc_name(rc), pasid_log2);

	at = (struct vfio_device_attach_iommufd_pt){ .argsz = sizeof(at), .flags = VFIO_DEVICE_ATTACH_PASID,
						     .pt_id = ioas, .pasid = 1 };
	rc = upmd_k_ioctl(dfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
	dt = (struct vfio_device_detach_iommufd_pt){ .argsz = sizeof(dt),
						     .flags = VFIO_DEVICE_ATTACH_PASID, .pasid = 1 };
	if (rc == 0 && pasid_log2 != 0) {
		conf_note("PASID attach supported: pasid 1 -> pt %u", at.pt_id);
		EXPECT_RC(c_destroy(ifd, ioas), -EBUSY);
		EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt), 0);
		EXPECT_RC(c_destroy(ifd, ioas), 0);
		return;
	}
	if (pasid_log2 != 0)
		conf_note("PASID reported, yet this kernel refuses the PASID attach");
	/* No PASID reported: the attach must be refused, as 6.12 does. */
	EXPECT_RC(rc, -EINVAL);
	if (rc == 0)
		return;	/* fx_reset detaches by closing the device */
	/* Nothing got attached, and DETACH with the flag is refused too. */
	EXPECT_RC(c_destroy(ifd, ioas), 0);
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt), -EINVAL);
}

/* vfio_pci_ioctl_get_info: argsz < 16 -> -EINVAL; the kernel writes back
 * min(argsz, 24) bytes and ignores anything past its struct; a PCI device
 * has 9 regions (no device-specific ones here) and 5 IRQ indexes. */
CONF_TEST(get_info)
{
	struct {
		struct vfio_device_info info;
		uint32_t tail[4];
	} big;
	struct vfio_device_info info;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	fx_bind(dfd, ifd);

	EXPECT_RC(c_dev_info(dfd, &info), 0);
	conf_note("flags 0x%x regions %u irqs %u", info.flags, info.num_regions, info.num_irqs);
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_EQ(info.num_regions, VFIO_PCI_NUM_REGIONS);
	EXPECT_EQ(info.num_irqs, VFIO_PCI_NUM_IRQS);

	memset(&info, 0, sizeof(info));
	info.argsz = VFIO_DEVICE_INFO_MINSZ - 1;
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), -EINVAL);
	info.argsz = 0;
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), -EINVAL);

	/* Exactly the minimum: cap_offset and pad are not written. */
	memset(&info, 0xa5, sizeof(info));
	info.argsz = VFIO_DEVICE_INFO_MINSZ;
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &info), 0);
	EXPECT_EQ(info.num_regions, VFIO_PCI_NUM_REGIONS);
	EXPECT_EQ(info.cap_offset, 0xa5a5a5a5u);
	EXPECT_EQ(info.pad, 0xa5a5a5a5u);

	/* Larger, with a non-zero tail: accepted (vfio has no E2BIG). */
	memset(&big, 0x5a, sizeof(big));
	big.info.argsz = sizeof(big);
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_INFO, &big), 0);
	EXPECT_EQ(big.info.num_regions, VFIO_PCI_NUM_REGIONS);
	if (!(big.info.flags & VFIO_DEVICE_FLAGS_CAPS))
		EXPECT_EQ(big.tail[0], 0x5a5a5a5au);
}

/*
 * vfio_pci_ioctl_get_region_info: argsz < 32 -> -EINVAL; an index past
 * the regions -> -EINVAL, and so is VGA on a device without one. Config
 * space is read/write (never mmap) at index 7 << 40. For QEMU's edu,
 * a conventional PCI device: 256 bytes of config space, BAR0 1 MiB
 * read/write/mmap at offset 0, every other BAR and the ROM empty.
 */
CONF_TEST(region_info)
{
	struct vfio_region_info ri;
	bool edu = conf_dev_is_edu(conf_dev_a);
	int dfd, ifd;
	uint32_t i;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	fx_bind(dfd, ifd);

	EXPECT_RC(c_region_info(dfd, VFIO_PCI_CONFIG_REGION_INDEX, &ri), 0);
	conf_note("config: size 0x%llx flags 0x%x offset 0x%llx", (unsigned long long)ri.size,
		  ri.flags, (unsigned long long)ri.offset);
	EXPECT_EQ(ri.offset, CONFIG_OFF);
	EXPECT_EQ(ri.flags, R_RW);
	EXPECT_EQ(ri.index, VFIO_PCI_CONFIG_REGION_INDEX);
	if (edu)
		EXPECT_EQ(ri.size, 256);
	else
		EXPECT_TRUE(ri.size == 256 || ri.size == 4096);

	EXPECT_RC(c_region_info(dfd, VFIO_PCI_BAR0_REGION_INDEX, &ri), 0);
	conf_note("BAR0: size 0x%llx flags 0x%x offset 0x%llx", (unsigned long long)ri.size,
		  ri.flags, (unsigned long long)ri.offset);
	EXPECT_EQ(ri.offset, 0);
	if (edu) {
		EXPECT_EQ(ri.size, EDU_BAR0_SIZE);
		EXPECT_EQ(ri.flags, R_RW | VFIO_REGION_INFO_FLAG_MMAP);
		for (i = VFIO_PCI_BAR1_REGION_INDEX; i <= VFIO_PCI_ROM_REGION_INDEX; i++) {
			EXPECT_RC(c_region_info(dfd, i, &ri), 0);
			EXPECT_EQ(ri.size, 0);
			EXPECT_EQ(ri.flags, 0);
			EXPECT_EQ(ri.offset, VFIO_PCI_INDEX_TO_OFFSET(i));
		}
	}

	EXPECT_RC(c_region_info(dfd, VFIO_PCI_VGA_REGION_INDEX, &ri), -EINVAL);
	EXPECT_RC(c_region_info(dfd, VFIO_PCI_NUM_REGIONS, &ri), -EINVAL);
	EXPECT_RC(c_region_info(dfd, 0xffffffffu, &ri), -EINVAL);
	memset(&ri, 0, sizeof(ri));
	ri.argsz = VFIO_REGION_INFO_MINSZ - 1;
	ri.index = VFIO_PCI_CONFIG_REGION_INDEX;
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL);
}

/* Config space through the region: vendor and device ID match sysfs. */
CONF_TEST(config_space_read)
{
	uint32_t id = 0;
	uint16_t cmd = 0;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	fx_bind(dfd, ifd);
	EXPECT_RC(upmd_k_pread(dfd, &id, 4, CONFIG_OFF), 4);
	EXPECT_EQ(id & 0xffff, conf_devs[conf_dev_a].vendor);
	EXPECT_EQ(id >> 16, conf_devs[conf_dev_a].device);
	/* vfio-pci enabled memory decode when the device was opened. */
	EXPECT_RC(upmd_k_pread(dfd, &cmd, 2, CONFIG_OFF + 4), 2);
	EXPECT_TRUE(cmd & 0x2);
}

/*
 * BAR0 mmap: the edu's ID register (offset 0) reads 0x010000ed through
 * the mapping and through pread of the region; the liveness register
 * (0x04) reads back the inverse of what was written, by either path.
 */
CONF_TEST(bar0_mmap_read_id)
{
	struct vfio_region_info ri;
	volatile uint32_t *bar;
	uint32_t v = 0, w;
	void *p = NULL;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	fx_bind(dfd, ifd);
	REQUIRE_RC(c_region_info(dfd, VFIO_PCI_BAR0_REGION_INDEX, &ri), 0);
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || ri.size < PG) {
		EXPECT_TRUE(!conf_dev_is_edu(conf_dev_a));
		conf_note("SKIP: BAR0 of %s is not mmappable", conf_devs[conf_dev_a].bdf);
		return;
	}
	REQUIRE_RC(fx_region_mmap(dfd, ri.offset, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, &p), 0);
	bar = p;
	EXPECT_RC(upmd_k_pread(dfd, &v, 4, ri.offset), 4);
	EXPECT_EQ(bar[0], v);
	if (conf_dev_is_edu(conf_dev_a)) {
		EXPECT_EQ(bar[0], EDU_ID_VALUE);
		EXPECT_EQ(v, EDU_ID_VALUE);
		bar[1] = 0x12345678u;
		EXPECT_EQ(bar[1], ~0x12345678u);
		w = 0x0f0f0f0fu;
		EXPECT_RC(upmd_k_pwrite(dfd, &w, 4, ri.offset + 4), 4);
		EXPECT_RC(upmd_k_pread(dfd, &v, 4, ri.offset + 4), 4);
		EXPECT_EQ(v, ~0x0f0f0f0fu);
		EXPECT_EQ(bar[1], ~0x0f0f0f0fu);
	}
	EXPECT_RC(fx_region_munmap(p), 0);
}

/* vfio_pci_core_mmap: MAP_PRIVATE, config space, past the end of the BAR,
 * an empty BAR and an index past the regions are all -EINVAL. */
CONF_TEST(mmap_errors)
{
	struct vfio_region_info ri;
	void *p = NULL;
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	fx_bind(dfd, ifd);
	REQUIRE_RC(c_region_info(dfd, VFIO_PCI_BAR0_REGION_INDEX, &ri), 0);
	EXPECT_RC(fx_region_mmap(dfd, CONFIG_OFF, PG, PROT_READ, MAP_SHARED, &p), -EINVAL);
	EXPECT_RC(fx_region_mmap(dfd, VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_NUM_REGIONS), PG, PROT_READ,
				 MAP_SHARED, &p), -EINVAL);
	if (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		EXPECT_RC(fx_region_mmap(dfd, 0, PG, PROT_READ, MAP_PRIVATE, &p), -EINVAL);
		EXPECT_RC(fx_region_mmap(dfd, 0, 2 * ri.size, PROT_READ, MAP_SHARED, &p), -EINVAL);
		EXPECT_RC(fx_region_mmap(dfd, ri.size, PG, PROT_READ, MAP_SHARED, &p), -EINVAL);
	}
	if (conf_dev_is_edu(conf_dev_a))
		EXPECT_RC(fx_region_mmap(dfd, VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_BAR1_REGION_INDEX), PG,
					 PROT_READ, MAP_SHARED, &p), -EINVAL);
}

/* On a bound device an unknown command reaches vfio_pci_core_ioctl's
 * default: -ENOTTY; so does an iommufd command sent to the device. */
CONF_TEST(unknown_device_ioctl_enotty)
{
	uint64_t buf[8];
	int dfd, ifd;

	if (!need_a())
		return;
	dfd = fx_dev_open(conf_dev_a);
	ifd = fx_iommufd();
	fx_bind(dfd, ifd);
	memset(buf, 0, sizeof(buf));
	buf[0] = 64;
	EXPECT_RC(upmd_k_ioctl(dfd, VFIO_UNKNOWN_IOCTL, buf), -ENOTTY);
	EXPECT_RC(upmd_k_ioctl(dfd, IOMMU_IOAS_ALLOC, buf), -ENOTTY);
}

const struct upmd_test conf_device_tests[] = {
	{ "unbound cdev: everything but BIND -> EINVAL", unbound_cdev_einval },
	{ "BIND argument errors", bind_argument_errors },
	{ "BIND twice -> EINVAL", bind_twice_einval },
	{ "second open of a bound device cannot bind", bind_second_open },
	{ "ATTACH/DETACH ordering and argument errors", attach_detach_errors },
	{ "GET_HW_INFO of a bound device", hw_info_bound_device },
	{ "PASID attach: only if reported", attach_pasid_precise },
	{ "GET_INFO", get_info },
	{ "GET_REGION_INFO", region_info },
	{ "config space read", config_space_read },
	{ "BAR0 mmap, edu ID register", bar0_mmap_read_id },
	{ "region mmap errors", mmap_errors },
	{ "unknown device ioctl -> ENOTTY", unknown_device_ioctl_enotty },
	{ NULL, NULL },
};
