/* uAPI conformance, devices attached to an IOAS: IOVA ranges, the MSI window, the aperture, shared HWPTs, busy objects, close. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "conf.h"

#define PG 4096ull

static bool need_a(void)
{
	return conf_need_dev(conf_dev_a, "a vfio device");
}

/* A bound device attached to a fresh IOAS; returns the device fd. */
static int attached_dev(int idx, int ifd, uint32_t ioas, uint32_t *hwpt)
{
	int dfd = fx_dev_open(idx);
	uint32_t pt;

	fx_bind(dfd, ifd);
	pt = fx_attach(dfd, ioas);
	if (hwpt)
		*hwpt = pt;
	return dfd;
}

static void expect_qemu_ranges(int ifd, uint32_t ioas)
{
	struct iommu_iova_range r[4];
	uint64_t align = 0;
	uint32_t n = 4;

	memset(r, 0, sizeof(r));
	EXPECT_RC(c_ranges(ifd, ioas, r, &n, &align), 0);
	for (uint32_t i = 0; i < n && i < 4; i++)
		conf_note("range %u: 0x%llx-0x%llx", i, (unsigned long long)r[i].start,
			  (unsigned long long)r[i].last);
	EXPECT_EQ(n, 2);
	EXPECT_EQ(r[0].start, 0);
	EXPECT_EQ(r[0].last, QEMU_MSI_FIRST - 1);		/* 0xfedfffff */
	EXPECT_EQ(r[1].start, QEMU_MSI_LAST + 1);		/* 0xfef00000 */
	EXPECT_EQ(r[1].last, QEMU_APERTURE_LAST);
	EXPECT_EQ(align, PG);
}

/*
 * After an attach the IOAS reports what the domain and the device leave:
 * the aperture (iopt_table_add_domain reserves outside it) minus the
 * device's reserved regions (the x86 MSI window 0xfee00000-0xfeefffff,
 * IOMMU_RESV_MSI); iova_alignment becomes the domain's smallest page.
 * Too small an array: -EMSGSIZE, num_iovas still written and the
 * entries that fit filled in.
 */
CONF_TEST(iova_ranges_after_attach)
{
	struct iommu_iova_range r[1];
	uint32_t ioas, n;
	uint64_t align = 0;
	int ifd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	attached_dev(conf_dev_a, ifd, ioas, NULL);
	expect_qemu_ranges(ifd, ioas);

	memset(r, 0, sizeof(r));
	n = 1;
	EXPECT_RC(c_ranges(ifd, ioas, r, &n, &align), -EMSGSIZE);
	EXPECT_EQ(n, 2);
	EXPECT_EQ(r[0].start, 0);
	EXPECT_EQ(r[0].last, 0xfedfffffull);
	EXPECT_EQ(align, PG);
	n = 0;
	EXPECT_RC(c_ranges(ifd, ioas, NULL, &n, &align), -EMSGSIZE);
	EXPECT_EQ(n, 2);
}

/* Detaching the last device drops the auto HWPT and the device's
 * reserved regions: the IOAS is back to one unrestricted range,
 * alignment 1. */
CONF_TEST(iova_ranges_after_detach)
{
	struct iommu_iova_range r[4];
	uint64_t align = 0;
	uint32_t ioas, n = 4;
	int ifd, dfd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	dfd = attached_dev(conf_dev_a, ifd, ioas, NULL);
	EXPECT_RC(c_detach(dfd), 0);
	EXPECT_RC(c_ranges(ifd, ioas, r, &n, &align), 0);
	EXPECT_EQ(n, 1);
	EXPECT_EQ(r[0].start, 0);
	EXPECT_EQ(r[0].last, UINT64_MAX);
	EXPECT_EQ(align, 1);
}

/* iopt_check_iova: a FIXED map touching a reserved range -> -EINVAL: the
 * MSI window and anything straddling its edges; right next to it is fine. */
CONF_TEST(map_into_msi_window_fails)
{
	uint8_t *mem;
	uint64_t iova, n = 0;
	uint32_t ioas;
	int ifd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(2 * PG);
	attached_dev(conf_dev_a, ifd, ioas, NULL);

	iova = QEMU_MSI_FIRST;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EINVAL);
	iova = QEMU_MSI_LAST + 1 - PG;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EINVAL);
	iova = QEMU_MSI_FIRST + 0x80000;
	EXPECT_RC(c_map(ifd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, mem, PG, &iova),
		  -EINVAL);
	iova = QEMU_MSI_FIRST - PG;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 2 * PG, &iova), -EINVAL);
	iova = QEMU_MSI_LAST + 1 - PG;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 2 * PG, &iova), -EINVAL);
	/* Edges. */
	iova = QEMU_MSI_FIRST - PG;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	iova = QEMU_MSI_LAST + 1;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem + PG, PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 2 * PG);
}

/* The domain's aperture ends at 2^39 - 1: past it (or straddling it) a
 * FIXED map is -EINVAL; once a domain is there IOVA and length must be
 * page aligned (-EINVAL). */
CONF_TEST(map_outside_aperture_fails)
{
	uint8_t *mem;
	uint64_t iova, n = 0;
	uint32_t ioas;
	int ifd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(2 * PG);
	attached_dev(conf_dev_a, ifd, ioas, NULL);

	iova = QEMU_APERTURE_LAST + 1;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EINVAL);
	iova = 1ull << 47;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EINVAL);
	iova = QEMU_APERTURE_LAST + 1 - PG;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 2 * PG, &iova), -EINVAL);
	iova = 0x100800;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), -EINVAL);
	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG / 2, &iova), -EINVAL);
	iova = QEMU_APERTURE_LAST + 1 - PG;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, PG);
}

/*
 * Before any attach the IOAS has no reserved ranges, so a map may land in
 * what will be the MSI window or past the aperture, or (alignment 1) be
 * byte-granular; the attach then cannot reserve / realign and fails with
 * -EADDRINUSE (iopt_reserve_iova, iopt_check_iova_alignment). With the
 * offending area gone the attach works.
 */
CONF_TEST(attach_over_conflicting_map_eaddrinuse)
{
	uint8_t *mem;
	uint64_t iova, n = 0;
	uint32_t ioas, pt;
	int ifd, dfd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(PG);
	dfd = fx_dev_open(conf_dev_a);
	fx_bind(dfd, ifd);

	iova = QEMU_MSI_FIRST;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	pt = ioas;
	EXPECT_RC(c_attach(dfd, &pt), -EADDRINUSE);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, PG);

	iova = QEMU_APERTURE_LAST + 1;
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	pt = ioas;
	EXPECT_RC(c_attach(dfd, &pt), -EADDRINUSE);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);

	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, 100, &iova), 0);
	pt = ioas;
	EXPECT_RC(c_attach(dfd, &pt), -EADDRINUSE);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 100);

	pt = ioas;
	EXPECT_RC(c_attach(dfd, &pt), 0);
	expect_qemu_ranges(ifd, ioas);
}

static bool in_one_range(const struct iommu_iova_range *r, uint32_t n, uint64_t iova, uint64_t len)
{
	for (uint32_t i = 0; i < n; i++)
		if (iova >= r[i].start && iova + len - 1 <= r[i].last)
			return true;
	return false;
}

/* Kernel-chosen IOVAs after an attach: whole mapping inside one allowed
 * range, page aligned, non-zero, no overlap. Maps made before the attach
 * were placed without the MSI window in mind: still each inside a range. */
CONF_TEST(kernel_chosen_iova_in_allowed_range)
{
	static const uint64_t sizes[] = { PG, 16 * PG, 512 * PG, 3 * PG };
	struct iommu_iova_range r[4];
	uint64_t iova[4], align;
	uint32_t ioas, n = 4;
	uint8_t *mem;
	unsigned i, j;
	int ifd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(1024 * PG);
	attached_dev(conf_dev_a, ifd, ioas, NULL);
	REQUIRE_RC(c_ranges(ifd, ioas, r, &n, &align), 0);
	REQUIRE_TRUE(n >= 1 && n <= 4);
	for (i = 0; i < 4; i++) {
		iova[i] = 0;
		REQUIRE_RC(c_map(ifd, ioas, RW, mem + i * 256 * PG, sizes[i], &iova[i]), 0);
		conf_note("%llu KiB -> IOVA 0x%llx", (unsigned long long)(sizes[i] >> 10),
			  (unsigned long long)iova[i]);
		EXPECT_TRUE(iova[i] != 0);
		EXPECT_EQ(iova[i] % PG, 0);
		EXPECT_TRUE(in_one_range(r, n, iova[i], sizes[i]));
		for (j = 0; j < i; j++)
			EXPECT_TRUE(iova[i] + sizes[i] <= iova[j] || iova[j] + sizes[j] <= iova[i]);
	}
	/* The chosen IOVA is really taken. */
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova[0]), -EEXIST);
}

/*
 * Pinning happens when a domain exists: after an attach a map of memory
 * that cannot be pinned fails (-EFAULT: a PROT_NONE range; read-only
 * memory mapped WRITEABLE), while read-only memory mapped READABLE only
 * works. Before any attach the kernel only records the range (lazy).
 */
CONF_TEST(map_pins_after_attach)
{
	uint64_t iova, n = 0;
	uint32_t ioas;
	void *none, *ro;
	int ifd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	none = fx_mem(PG);
	ro = fx_mem(PG);
	REQUIRE_TRUE(mprotect(none, PG, PROT_NONE) == 0);
	REQUIRE_TRUE(mprotect(ro, PG, PROT_READ) == 0);

	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, none, PG, &iova), 0);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, PG);

	attached_dev(conf_dev_a, ifd, ioas, NULL);
	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, none, PG, &iova), -EFAULT);
	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, FIXED_RW, ro, PG, &iova), -EFAULT);
	iova = 0x100000;
	EXPECT_RC(c_map(ifd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ro, PG, &iova), 0);
	/* The failed ones left nothing behind. */
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, PG);
}

/*
 * iommufd_object_remove: an object someone holds is -EBUSY. An attached
 * IOAS (its HWPT holds it), the auto HWPT (the device holds it) and the
 * bound device (vfio holds it) all refuse DESTROY; after DETACH the auto
 * HWPT is gone (-ENOENT) and the IOAS destroys.
 */
CONF_TEST(destroy_attached_ioas_ebusy)
{
	uint32_t ioas, hwpt, devid;
	void *mem;
	uint64_t iova = 0x100000;
	int ifd, dfd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(PG);
	dfd = fx_dev_open(conf_dev_a);
	devid = fx_bind(dfd, ifd);
	hwpt = fx_attach(dfd, ioas);
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);

	EXPECT_RC(c_destroy(ifd, ioas), -EBUSY);
	EXPECT_RC(c_destroy(ifd, hwpt), -EBUSY);
	EXPECT_RC(c_destroy(ifd, devid), -EBUSY);
	EXPECT_RC(c_detach(dfd), 0);
	EXPECT_RC(c_destroy(ifd, hwpt), -ENOENT);
	/* Destroying an IOAS with a mapping in it is fine: it unmaps. */
	EXPECT_RC(c_destroy(ifd, ioas), 0);
	EXPECT_RC(c_destroy(ifd, devid), -EBUSY);
}

/*
 * Two devices (own groups) attached to one IOAS share one auto HWPT (the
 * kernel reuses a compatible auto domain). The HWPT lives while either
 * device is attached; an attach by HWPT id works too.
 */
CONF_TEST(two_devices_one_ioas_same_hwpt)
{
	uint32_t ioas, ha, hb, pt;
	uint64_t iova = 0, n = 0;
	int ifd, da, db;
	void *mem;

	if (!need_a() || !conf_need_dev(conf_dev_b, "a second vfio device"))
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(16 * PG);
	da = attached_dev(conf_dev_a, ifd, ioas, &ha);
	db = attached_dev(conf_dev_b, ifd, ioas, &hb);
	conf_note("%s -> HWPT %u, %s -> HWPT %u", conf_devs[conf_dev_a].bdf, ha,
		  conf_devs[conf_dev_b].bdf, hb);
	EXPECT_EQ(hb, ha);
	expect_qemu_ranges(ifd, ioas);
	EXPECT_RC(c_map(ifd, ioas, RW, mem, 16 * PG, &iova), 0);

	EXPECT_RC(c_detach(da), 0);
	EXPECT_RC(c_destroy(ifd, ha), -EBUSY);
	EXPECT_RC(c_destroy(ifd, ioas), -EBUSY);
	pt = ha;
	EXPECT_RC(c_attach(da, &pt), 0);
	EXPECT_EQ(pt, ha);
	EXPECT_RC(c_detach(da), 0);
	EXPECT_RC(c_detach(db), 0);
	EXPECT_RC(c_destroy(ifd, ha), -ENOENT);
	EXPECT_RC(c_unmap(ifd, ioas, 0, UINT64_MAX, &n), 0);
	EXPECT_EQ(n, 16 * PG);
	EXPECT_RC(c_destroy(ifd, ioas), 0);
}

/*
 * ATTACH on an attached device replaces (vfio_iommufd_physical_attach_ioas
 * -> iommufd_device_replace): to the same IOAS it keeps the HWPT; to
 * another IOAS it moves there with a new HWPT and frees the old IOAS.
 */
CONF_TEST(attach_again_replaces)
{
	uint32_t a, b, ha, hb, pt;
	int ifd, dfd;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	a = fx_ioas(ifd);
	b = fx_ioas(ifd);
	dfd = attached_dev(conf_dev_a, ifd, a, &ha);
	pt = a;
	EXPECT_RC(c_attach(dfd, &pt), 0);
	EXPECT_EQ(pt, ha);
	pt = b;
	EXPECT_RC(c_attach(dfd, &pt), 0);
	hb = pt;
	conf_note("IOAS %u HWPT %u -> IOAS %u HWPT %u", a, ha, b, hb);
	EXPECT_TRUE(hb != ha && hb != a && hb != b);
	EXPECT_RC(c_destroy(ifd, ha), -ENOENT);
	EXPECT_RC(c_destroy(ifd, a), 0);
	EXPECT_RC(c_destroy(ifd, b), -EBUSY);
	expect_qemu_ranges(ifd, b);
}

/* Closing the device fd unbinds it, which detaches it: the IOAS it kept
 * busy destroys, and the device can be opened and bound again. */
CONF_TEST(close_device_auto_detaches)
{
	uint32_t ioas, devid;
	uint64_t iova = 0x100000;
	int ifd, dfd;
	void *mem;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(PG);
	dfd = fx_dev_open(conf_dev_a);
	devid = fx_bind(dfd, ifd);
	fx_attach(dfd, ioas);
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	EXPECT_RC(c_destroy(ifd, ioas), -EBUSY);
	EXPECT_RC(fx_close(dfd), 0);
	EXPECT_RC(c_destroy(ifd, devid), -ENOENT);
	EXPECT_RC(c_destroy(ifd, ioas), 0);

	dfd = fx_dev_open(conf_dev_a);
	EXPECT_TRUE(fx_bind(dfd, ifd) != 0);
}

/*
 * A bound device holds its iommufd context (vfio takes a file reference
 * at BIND): after the process closes its /dev/iommu fd the device keeps
 * working, DETACH and a new ATTACH by the old IOAS id succeed, and
 * everything goes when the device fd is closed.
 */
CONF_TEST(close_iommufd_while_bound)
{
	struct vfio_device_info info;
	uint32_t ioas, pt;
	uint64_t iova = 0x100000;
	int ifd, dfd;
	void *mem;

	if (!need_a())
		return;
	ifd = fx_iommufd();
	ioas = fx_ioas(ifd);
	mem = fx_mem(PG);
	dfd = attached_dev(conf_dev_a, ifd, ioas, NULL);
	REQUIRE_RC(c_map(ifd, ioas, FIXED_RW, mem, PG, &iova), 0);
	EXPECT_RC(fx_close(ifd), 0);
	EXPECT_RC(c_dev_info(dfd, &info), 0);
	EXPECT_RC(c_detach(dfd), 0);
	pt = ioas;
	EXPECT_RC(c_attach(dfd, &pt), 0);
	EXPECT_RC(fx_close(dfd), 0);
}

const struct upmd_test conf_attach_tests[] = {
	{ "IOVA ranges after attach (QEMU intel-iommu), EMSGSIZE", iova_ranges_after_attach },
	{ "IOVA ranges after the last detach", iova_ranges_after_detach },
	{ "map into the MSI window fails", map_into_msi_window_fails },
	{ "map outside the aperture / unaligned fails", map_outside_aperture_fails },
	{ "attach over a conflicting map -> EADDRINUSE", attach_over_conflicting_map_eaddrinuse },
	{ "kernel-chosen IOVA in an allowed range", kernel_chosen_iova_in_allowed_range },
	{ "map pins once a device is attached", map_pins_after_attach },
	{ "destroy attached IOAS -> EBUSY, works after detach", destroy_attached_ioas_ebusy },
	{ "two devices, one IOAS, same HWPT", two_devices_one_ioas_same_hwpt },
	{ "ATTACH again replaces", attach_again_replaces },
	{ "close of the device fd auto-detaches", close_device_auto_detaches },
	{ "close of the iommufd while a device is bound", close_iommufd_while_bound },
	{ NULL, NULL },
};
