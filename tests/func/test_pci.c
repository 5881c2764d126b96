/* The PCI bus against the model: addresses, scan, open through an IOAS, driver matching, BARs, config space, interrupts, and nothing left behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/edu.h>
#include <upmd/uapi/vfio.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define EDU_A "0000:00:04.0"
#define EDU_B "0000:00:06.0"
#define EDU_OFF "0000:00:05.0"	/* present, bound to no driver */
#define ABSENT "0000:00:09.0"
#define SPEC "edu@" EDU_A ";edu@" EDU_B ";edu@" EDU_OFF ":driver=none"
#define EDU_ID 0x010000edu	/* the edu identification register, version 1.0 */
#define EDU_BAR0_LEN (1024 * 1024)

static struct upmd_model *model;
static struct upmd_ioas *ioas;

/* ---- helpers ---- */

static struct upmd_bus *bus(void)
{
	struct upmd_bus *b;

	for (b = upmd_bus_first(); b; b = b->next)
		if (!strcmp(b->name, "pci"))
			return b;
	return NULL;
}

static void stats(struct upmd_model_stats *st)
{
	CU_ASSERT_EQUAL_FATAL(upmd_model_get_stats(model, st), 0);
}

/* Undo everything; @check asserts the model is clean (not from suite
 * init/fini, where CUnit has no test to record a failure in). */
static void release(bool check)
{
	if (bus())
		bus()->cleanup();
	if (check)
		CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
	if (ioas) {
		upmd_ioas_close(ioas);
		ioas = NULL;
	}
	if (model) {
		if (check)
			assert_model_clean(model);
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(model);
		model = NULL;
	}
}

static void teardown(void)
{
	release(true);
}

/* Model + IOAS of @backend; scan with @n_allow -a values. @return scan's
 * rc, or -ENXIO if the model or the IOAS could not be set up. */
static int try_setup(const char *spec, enum upmd_ioas_backend backend, const char *const *allow,
		     unsigned n_allow)
{
	struct upmd_ioas_conf conf = { .size = sizeof(conf), .backend = backend };
	struct upmd_bus_conf bc = { .allow = allow, .n_allow = n_allow };

	if (!bus() || upmd_model_install(spec, &model) < 0)
		return -ENXIO;
	if (upmd_ioas_open(&conf, &ioas) < 0) {
		ioas = NULL;
		return -ENXIO;
	}
	return bus()->scan(&bc);
}

static int setup(const char *spec, enum upmd_ioas_backend backend, const char *const *allow,
		 unsigned n_allow)
{
	int rc;

	teardown();
	rc = try_setup(spec, backend, allow, n_allow);
	CU_ASSERT_NOT_EQUAL_FATAL(rc, -ENXIO);
	return rc;
}

/* Scan, attach and probe: the EAL's sequence minus memory. */
static void bring_up(const char *const *allow, unsigned n_allow)
{
	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, allow, n_allow), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->attach(ioas), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->probe(), 0);
}

/* The edu driver (drivers/dma/edu) is linked in and matches every edu
 * device; tests of matching and of driverless use take it out. */
static struct upmd_pci_driver *edu_drv;

static int edu_driver_out(void)
{
	const char *allow[] = { EDU_A };
	struct upmd_pci_device *d;

	release(false);
	if (try_setup(SPEC, UPMD_IOAS_BACKEND_AUTO, allow, 1) || bus()->attach(ioas) ||
	    bus()->probe()) {
		release(false);
		return 1;
	}
	d = upmd_pci_device_find(EDU_A);
	/* The registry links drivers through ->next, so it holds them
	 * mutable; the device only exposes a const view of the same one. */
	edu_drv = d ? (struct upmd_pci_driver *)d->driver : NULL;
	release(false);
	if (!edu_drv || strcmp(edu_drv->name, "dma_edu"))
		return 1;
	upmd_pci_unregister(edu_drv);
	return 0;
}

static int edu_driver_back(void)
{
	release(false);
	if (edu_drv)
		upmd_pci_register(edu_drv);
	return 0;
}

/* ---- addresses ---- */

static void test_addr_parse(void)
{
	static const struct {
		const char *s;
		uint32_t domain;
		uint8_t bus, dev, fn;
	} good[] = {
		{ "0000:00:04.0", 0, 0, 4, 0 },
		{ "00:04.0", 0, 0, 4, 0 },
		{ "0000:ff:1f.7", 0, 0xff, 0x1f, 7 },
		{ "0001:0A:1F.3", 1, 0x0a, 0x1f, 3 },
		{ "abcd:3b:00.1", 0xabcd, 0x3b, 0, 1 },
		{ "10000:01:00.0", 0x10000, 1, 0, 0 },	/* VMD domain */
	};
	static const char *const bad[] = {
		"", "0000:00:04", "0000:00:04.", "0000:00:20.0", "0000:00:04.8", "0000:00:04.0x",
		"0000:00:04.0 ", " 0000:00:04.0", "0000:00:04.0\n", "000:00:04.0", "0000:0:04.0",
		"0000:00:4.0", "0000:000:04.0", "g000:00:04.0", "0000:00:04.00", "0000:100:04.0",
		":00:04.0", "0000::04.0", "0000:00:04.0:", "0000:00:04:0", "00.04.0",
		"1234567:00:04.0", "0x00:04.0", "04.0", "0000:00:0g.0", "-000:00:04.0",
	};
	struct upmd_pci_addr a;
	unsigned i;

	for (i = 0; i < UPMD_DIM(good); i++) {
		memset(&a, 0xee, sizeof(a));
		CU_ASSERT_EQUAL(upmd_pci_addr_parse(good[i].s, &a), 0);
		CU_ASSERT_EQUAL(a.domain, good[i].domain);
		CU_ASSERT_EQUAL(a.bus, good[i].bus);
		CU_ASSERT_EQUAL(a.dev, good[i].dev);
		CU_ASSERT_EQUAL(a.fn, good[i].fn);
	}
	for (i = 0; i < UPMD_DIM(bad); i++) {
		int rc = upmd_pci_addr_parse(bad[i], &a);

		if (rc != -EINVAL)
			printf("\n  accepted '%s'", bad[i]);
		CU_ASSERT_EQUAL(rc, -EINVAL);
	}
	CU_ASSERT_EQUAL(upmd_pci_addr_parse(NULL, &a), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pci_addr_parse("0000:00:04.0", NULL), -EINVAL);
}

static void test_addr_fmt(void)
{
	struct upmd_pci_addr a = { .domain = 0, .bus = 0x3b, .dev = 0x1f, .fn = 7 }, b;
	char buf[16], small[8];

	upmd_pci_addr_fmt(&a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0000:3b:1f.7");
	CU_ASSERT_EQUAL(upmd_pci_addr_parse(buf, &b), 0);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	upmd_pci_addr_parse("00:04.0", &a);
	upmd_pci_addr_fmt(&a, buf, 13);	/* the documented minimum */
	CU_ASSERT_STRING_EQUAL(buf, "0000:00:04.0");
	upmd_pci_addr_fmt(&a, small, sizeof(small));	/* truncated, still terminated */
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	a.domain = 0x10000;
	upmd_pci_addr_fmt(&a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "10000:00:04.0");
}

static void test_bus_parse(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(bus());
	CU_ASSERT_PTR_NOT_NULL_FATAL(bus()->parse);
	CU_ASSERT_EQUAL(bus()->parse("0000:00:04.0"), 0);
	CU_ASSERT_EQUAL(bus()->parse("00:04.0"), 0);
	CU_ASSERT_EQUAL(bus()->parse("net_null0"), -EINVAL);
	CU_ASSERT_EQUAL(bus()->parse("0000:00:04.9"), -EINVAL);
}

/* ---- scan ---- */

static void test_sysfs_view(void)
{
	struct upmd_pci_sysfs_dev *devs = NULL, one;
	int n;

	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, NULL, 0), 0);
	n = upmd_pci_sysfs_list(&devs);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	/* Address order, whatever order the spec (or sysfs) gave. */
	CU_ASSERT_STRING_EQUAL(devs[0].name, EDU_A);
	CU_ASSERT_STRING_EQUAL(devs[1].name, EDU_OFF);
	CU_ASSERT_STRING_EQUAL(devs[2].name, EDU_B);
	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(devs[i].id.vendor_id, UPMD_EDU_VENDOR_ID);
		CU_ASSERT_EQUAL(devs[i].id.device_id, UPMD_EDU_DEVICE_ID);
		CU_ASSERT_EQUAL(devs[i].id.class_id, 0x00ff00);	/* "other" */
		CU_ASSERT_TRUE(devs[i].iommu_group >= 0);
	}
	/* Each model device is in its own IOMMU group. */
	CU_ASSERT_NOT_EQUAL(devs[0].iommu_group, devs[1].iommu_group);
	CU_ASSERT_NOT_EQUAL(devs[0].iommu_group, devs[2].iommu_group);
	CU_ASSERT_NOT_EQUAL(devs[1].iommu_group, devs[2].iommu_group);
	CU_ASSERT_STRING_EQUAL(devs[0].driver, "vfio-pci");
	CU_ASSERT_STRING_EQUAL(devs[2].driver, "vfio-pci");
	CU_ASSERT_STRING_EQUAL(devs[1].driver, "");
	CU_ASSERT_EQUAL(strncmp(devs[0].cdev, "vfio", 4), 0);
	CU_ASSERT_EQUAL(strncmp(devs[2].cdev, "vfio", 4), 0);
	CU_ASSERT_STRING_NOT_EQUAL(devs[0].cdev, devs[2].cdev);
	CU_ASSERT_STRING_EQUAL(devs[1].cdev, "");

	CU_ASSERT_EQUAL(upmd_pci_sysfs_read("00:04.0", &one), 0);
	CU_ASSERT_EQUAL(memcmp(&one, &devs[0], sizeof(one)), 0);
	CU_ASSERT_EQUAL(upmd_pci_sysfs_read(ABSENT, &one), -ENODEV);
	CU_ASSERT_EQUAL(upmd_pci_sysfs_read("nonsense", &one), -EINVAL);
	free(devs);
	teardown();
}

static void test_scan_selection(void)
{
	const char *allow[] = { "00:06.0", EDU_A, EDU_B };	/* any spelling, repeats */
	struct upmd_pci_device *d;

	/* Without -a: every device bound to vfio-pci, nothing opened yet. */
	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, NULL, 0), 0);
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 2);
	d = upmd_pci_device_get(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_STRING_EQUAL(d->name, EDU_A);
	CU_ASSERT_EQUAL(d->fd, -1);
	CU_ASSERT_STRING_EQUAL(d->kdriver, "vfio-pci");
	CU_ASSERT_EQUAL(strncmp(d->cdev, "vfio", 4), 0);
	CU_ASSERT_TRUE(d->iommu_group >= 0);
	CU_ASSERT_EQUAL(d->id.vendor_id, UPMD_EDU_VENDOR_ID);
	CU_ASSERT_EQUAL(d->id.device_id, UPMD_EDU_DEVICE_ID);
	CU_ASSERT_STRING_EQUAL(upmd_pci_device_get(1)->name, EDU_B);
	CU_ASSERT_PTR_NULL(upmd_pci_device_get(2));
	CU_ASSERT_PTR_NULL(upmd_pci_device_find(EDU_OFF));
	teardown();

	/* With -a: exactly those, once each, in address order. */
	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, allow, 3), 0);
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 2);
	CU_ASSERT_STRING_EQUAL(upmd_pci_device_get(0)->name, EDU_A);
	CU_ASSERT_PTR_EQUAL(upmd_pci_device_find("00:06.0"), upmd_pci_device_get(1));
	teardown();

	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, allow + 2, 1), 0);
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 1);
	CU_ASSERT_STRING_EQUAL(upmd_pci_device_get(0)->name, EDU_B);
	teardown();

	/* A machine without devices is not an error when none was asked for. */
	CU_ASSERT_EQUAL_FATAL(setup("", UPMD_IOAS_BACKEND_AUTO, NULL, 0), 0);
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
	teardown();
}

static void test_scan_errors(void)
{
	const char *off[] = { EDU_OFF }, *absent[] = { EDU_A, ABSENT };

	/* Present but bound to no driver: the message names the fix. */
	log_capture();
	CU_ASSERT_EQUAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, off, 1), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), EDU_OFF));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "upmd-devbind --bind vfio-pci " EDU_OFF));
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
	log_release();
	teardown();

	/* Absent: nothing kept of the devices found before it. */
	log_capture();
	CU_ASSERT_EQUAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, absent, 2), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "device " ABSENT " (from -a) not found"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "upmd-devbind --status"));
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
	log_release();
	teardown();
}

/* The EAL's view of the same rule: -a of an unbound device fails init. */
static void test_eal_unbound(void)
{
	char *argv[] = { "test", "-l", "0", "--no-huge", "-m", "4", "-a", EDU_OFF, "--model",
			 SPEC, NULL };
	int rc;

	teardown();
	log_capture();
	rc = upmd_eal_init((int)UPMD_DIM(argv) - 1, argv);
	CU_ASSERT_EQUAL(rc, -ENODEV);
	CU_ASSERT_EQUAL(upmd_eal_exit_code(rc), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "upmd-devbind --bind vfio-pci " EDU_OFF));
	log_release();
	CU_ASSERT_FALSE(upmd_eal_initialized());
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
}

/* ---- open and probe with the edu driver ---- */

static void test_attach_probe_edu(void)
{
	const char *allow[] = { EDU_A, EDU_B };
	struct upmd_model_stats st;
	struct upmd_pci_device *d;
	unsigned i;

	bring_up(allow, 2);
	stats(&st);
	CU_ASSERT_EQUAL(st.bound_devices, 2);
	CU_ASSERT_EQUAL(st.attached_devices, 2);
	for (i = 0; i < 2; i++) {
		d = upmd_pci_device_get(i);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_TRUE(d->fd >= 0);
		CU_ASSERT_TRUE(d->num_regions >= 8);
		CU_ASSERT_EQUAL(d->bar[0].len, EDU_BAR0_LEN);
		CU_ASSERT_TRUE(d->bar[0].flags & VFIO_REGION_INFO_FLAG_MMAP);
		CU_ASSERT_EQUAL(d->bar[1].len, 0);
		CU_ASSERT_NOT_EQUAL(d->cfg_offset, d->bar[0].offset);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d->driver);
		CU_ASSERT_STRING_EQUAL(d->driver->name, "dma_edu");
		CU_ASSERT_PTR_NOT_NULL(upmd_edu_get(d));
	}
	/* The driver mapped BAR0 and turned bus mastering on. */
	stats(&st);
	CU_ASSERT_EQUAL(st.bar_mappings, 2);

	/* Cleanup removes the drivers, detaches, unmaps and closes. */
	bus()->cleanup();
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
	CU_ASSERT_PTR_NULL(upmd_edu_first());
	stats(&st);
	CU_ASSERT_EQUAL(st.bound_devices, 0);
	CU_ASSERT_EQUAL(st.attached_devices, 0);
	CU_ASSERT_EQUAL(st.bar_mappings, 0);
	bus()->cleanup();	/* idempotent: the EAL may call it twice on a failed init */
	teardown();
}

static void test_type1_backend(void)
{
	const char *allow[] = { EDU_A };
	struct upmd_model_stats st;
	struct upmd_pci_device *d;

	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_TYPE1, allow, 1), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->attach(ioas), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->probe(), 0);
	d = upmd_pci_device_find(EDU_A);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_TRUE(d->fd >= 0);
	CU_ASSERT_PTR_NOT_NULL(upmd_edu_get(d));
	CU_ASSERT_EQUAL(upmd_edu_check_alive(upmd_edu_get(d), 0x12345678), 0);
	stats(&st);
	CU_ASSERT_EQUAL(st.attached_devices, 1);
	teardown();
}

/* ---- matching (the edu driver taken out) ---- */

static unsigned probed, removed, other_probed, shadow_probed;
static struct upmd_pci_device *probed_dev[4];
static int probe_rc;

static int t_probe(struct upmd_pci_device *d)
{
	if (probed < UPMD_DIM(probed_dev))
		probed_dev[probed] = d;
	probed++;
	d->driver_data = &probed;
	return probe_rc;
}

static int t_remove(struct upmd_pci_device *d)
{
	CU_ASSERT_PTR_EQUAL(d->driver_data, &probed);
	removed++;
	return 0;
}

static int other_probe(struct upmd_pci_device *d)
{
	(void)d;
	other_probed++;
	return 0;
}

static int shadow_probe(struct upmd_pci_device *d)
{
	(void)d;
	shadow_probed++;
	return 0;
}

static const struct upmd_pci_id t_ids[] = {
	{ UPMD_PCI_DEVICE(0x8086, 0x10d3) },
	{ .vendor_id = UPMD_EDU_VENDOR_ID, .device_id = UPMD_EDU_DEVICE_ID,
	  .subsystem_vendor_id = UPMD_PCI_ANY_ID, .subsystem_device_id = UPMD_PCI_ANY_ID,
	  .class_id = 0x00ff00 },
	{ .vendor_id = 0 },
};
static const struct upmd_pci_id other_ids[] = {
	{ UPMD_PCI_DEVICE(UPMD_EDU_VENDOR_ID, 0x11e9) },	/* another device id */
	{ .vendor_id = UPMD_EDU_VENDOR_ID, .device_id = UPMD_PCI_ANY_ID,	/* another class */
	  .subsystem_vendor_id = UPMD_PCI_ANY_ID, .subsystem_device_id = UPMD_PCI_ANY_ID,
	  .class_id = 0x010802 },
	{ .vendor_id = 0 },
};
static const struct upmd_pci_id any_ids[] = {
	{ UPMD_PCI_DEVICE(UPMD_PCI_ANY_ID, UPMD_PCI_ANY_ID) },
	{ .vendor_id = 0 },
};

static struct upmd_pci_driver t_drv = {
	.name = "test_edu", .id_table = t_ids, .probe = t_probe, .remove = t_remove,
};
static struct upmd_pci_driver other_drv = {
	.name = "test_other", .id_table = other_ids, .probe = other_probe,
};
static struct upmd_pci_driver shadow_drv = {
	.name = "test_shadow", .id_table = any_ids, .probe = shadow_probe,
};

static void reset_counts(void)
{
	probed = removed = other_probed = shadow_probed = 0;
	memset(probed_dev, 0, sizeof(probed_dev));
	probe_rc = 0;
}

static void test_driver_match(void)
{
	reset_counts();
	upmd_pci_register(&other_drv);
	upmd_pci_register(&t_drv);
	upmd_pci_register(&t_drv);	/* twice is once */
	upmd_pci_register(&shadow_drv);	/* matches anything, but registered later */

	bring_up(NULL, 0);
	CU_ASSERT_EQUAL(probed, 2);
	CU_ASSERT_EQUAL(other_probed, 0);
	CU_ASSERT_EQUAL(shadow_probed, 0);
	CU_ASSERT_PTR_EQUAL(probed_dev[0], upmd_pci_device_find(EDU_A));
	CU_ASSERT_PTR_EQUAL(probed_dev[1], upmd_pci_device_find(EDU_B));
	CU_ASSERT_PTR_EQUAL(upmd_pci_device_get(0)->driver, &t_drv);
	/* probe runs once per device, however often the bus probes */
	CU_ASSERT_EQUAL(bus()->probe(), 0);
	CU_ASSERT_EQUAL(probed, 2);
	bus()->cleanup();
	CU_ASSERT_EQUAL(removed, 2);
	teardown();

	/* Unregistering a driver removes it from its devices first. */
	reset_counts();
	bring_up(NULL, 0);
	upmd_pci_unregister(&t_drv);
	CU_ASSERT_EQUAL(removed, 2);
	CU_ASSERT_PTR_NULL(upmd_pci_device_get(0)->driver);
	teardown();
	CU_ASSERT_EQUAL(removed, 2);

	/* Now the catch-all is first in line. */
	reset_counts();
	bring_up(NULL, 0);
	CU_ASSERT_EQUAL(shadow_probed, 2);
	CU_ASSERT_EQUAL(probed, 0);
	teardown();

	upmd_pci_unregister(&shadow_drv);
	upmd_pci_unregister(&other_drv);
}

static void test_probe_failure(void)
{
	const char *allow[] = { EDU_A, EDU_B };

	reset_counts();
	probe_rc = -EIO;
	upmd_pci_register(&t_drv);
	CU_ASSERT_EQUAL_FATAL(setup(SPEC, UPMD_IOAS_BACKEND_AUTO, allow, 2), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->attach(ioas), 0);
	log_capture();
	CU_ASSERT_EQUAL(bus()->probe(), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), "test_edu"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), EDU_A));
	log_release();
	/* A failed probe closes every device, and remove is not called for
	 * the one whose probe failed. */
	CU_ASSERT_EQUAL(probed, 1);
	CU_ASSERT_EQUAL(removed, 0);
	CU_ASSERT_EQUAL(upmd_pci_device_count(), 0);
	upmd_pci_unregister(&t_drv);
	teardown();
}

/* ---- device access without a driver ---- */

static struct upmd_pci_device *driverless(void)
{
	const char *allow[] = { EDU_A };
	struct upmd_pci_device *d;

	bring_up(allow, 1);
	d = upmd_pci_device_find(EDU_A);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_PTR_NULL(d->driver);
	CU_ASSERT_TRUE_FATAL(d->fd >= 0);
	return d;
}

static void test_bar_access(void)
{
	struct upmd_model_stats st;
	struct upmd_pci_device *d = driverless();
	volatile uint8_t *regs;
	uint32_t v, x = 0xdeadbeef;
	void *first;

	stats(&st);
	CU_ASSERT_EQUAL(st.bar_mappings, 0);
	CU_ASSERT_EQUAL_FATAL(upmd_pci_map_bar(d, 0), 0);
	first = d->bar[0].addr;
	CU_ASSERT_PTR_NOT_NULL_FATAL(first);
	CU_ASSERT_EQUAL(upmd_pci_map_bar(d, 0), 0);	/* idempotent */
	CU_ASSERT_PTR_EQUAL(d->bar[0].addr, first);
	stats(&st);
	CU_ASSERT_EQUAL(st.bar_mappings, 1);
	CU_ASSERT_EQUAL(upmd_pci_map_bar(d, 1), -ENOENT);
	CU_ASSERT_EQUAL(upmd_pci_map_bar(d, UPMD_PCI_MAX_BARS), -EINVAL);

	regs = d->bar[0].addr;
	CU_ASSERT_EQUAL(upmd_mmio_read32(regs + UPMD_EDU_REG_ID), EDU_ID);
	upmd_mmio_write32(regs + UPMD_EDU_REG_LIVENESS, x);
	CU_ASSERT_EQUAL(upmd_mmio_read32(regs + UPMD_EDU_REG_LIVENESS), ~x);

	/* The same registers through pread/pwrite of the region. */
	CU_ASSERT_EQUAL(upmd_pci_bar_read(d, 0, &v, sizeof(v), UPMD_EDU_REG_ID), 4);
	CU_ASSERT_EQUAL(v, EDU_ID);
	x = 0x00ff00ff;
	CU_ASSERT_EQUAL(upmd_pci_bar_write(d, 0, &x, sizeof(x), UPMD_EDU_REG_LIVENESS), 4);
	CU_ASSERT_EQUAL(upmd_pci_bar_read(d, 0, &v, sizeof(v), UPMD_EDU_REG_LIVENESS), 4);
	CU_ASSERT_EQUAL(v, ~x);
	CU_ASSERT_EQUAL(upmd_mmio_read32(regs + UPMD_EDU_REG_LIVENESS), ~x);
	/* Outside the BAR, or no BAR at all. */
	CU_ASSERT_EQUAL(upmd_pci_bar_read(d, 0, &v, sizeof(v), EDU_BAR0_LEN - 2), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pci_bar_read(d, 0, &v, sizeof(v), -4), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pci_bar_read(d, 2, &v, sizeof(v), 0), -ENOENT);
	CU_ASSERT_EQUAL(upmd_pci_bar_write(d, 7, &v, sizeof(v), 0), -EINVAL);

	/* Cleanup unmaps what the application mapped. */
	bus()->cleanup();
	stats(&st);
	CU_ASSERT_EQUAL(st.bar_mappings, 0);
	teardown();
}

static void test_config_space(void)
{
	struct upmd_pci_device *d = driverless();
	uint16_t vendor = 0, device = 0, cmd = 0;
	uint8_t hdr[64];

	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &vendor, 2, 0), 2);
	CU_ASSERT_EQUAL(vendor, UPMD_EDU_VENDOR_ID);
	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &device, 2, 2), 2);
	CU_ASSERT_EQUAL(device, UPMD_EDU_DEVICE_ID);
	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, hdr, sizeof(hdr), 0), (int)sizeof(hdr));
	/* The class code, prog-if at 0x09 up to the base class at 0x0b. */
	CU_ASSERT_EQUAL((uint32_t)hdr[0x0b] << 16 | (uint32_t)hdr[0x0a] << 8 | hdr[0x09],
			d->id.class_id);

	CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, true), 0);
	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &cmd, 2, 4), 2);
	CU_ASSERT_TRUE(cmd & (1u << 2));
	CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, true), 0);	/* already on */
	CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, false), 0);
	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &cmd, 2, 4), 2);
	CU_ASSERT_FALSE(cmd & (1u << 2));

	/* Cleanup turns bus mastering off even if the application left it on. */
	CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, true), 0);
	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &cmd, 2, 4), 2);
	CU_ASSERT_TRUE(cmd & (1u << 2));

	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &cmd, 2, -1), -EINVAL);
	CU_ASSERT_EQUAL(upmd_pci_cfg_read(d, &cmd, 2, 1 << 20), -EINVAL);
	teardown();
}

static void test_reset(void)
{
	const char *allow[] = { EDU_A };
	struct upmd_pci_device *d = driverless();
	uint32_t v = 0x5a5a5a5a;

	/* QEMU's edu has neither FLR nor PM reset: vfio-pci offers none. */
	log_capture();
	CU_ASSERT_EQUAL(upmd_pci_reset(d), -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text(), EDU_A));
	log_release();
	teardown();

	/* A device that can be reset comes back with its registers at reset
	 * values and still usable. */
	CU_ASSERT_EQUAL_FATAL(setup("edu@" EDU_A ":reset=1", UPMD_IOAS_BACKEND_AUTO, allow, 1), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->attach(ioas), 0);
	CU_ASSERT_EQUAL_FATAL(bus()->probe(), 0);
	d = upmd_pci_device_find(EDU_A);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, true), 0);
	CU_ASSERT_EQUAL(upmd_pci_reset(d), 0);
	CU_ASSERT_EQUAL(upmd_pci_bar_write(d, 0, &v, sizeof(v), UPMD_EDU_REG_LIVENESS), 4);
	CU_ASSERT_EQUAL(upmd_pci_bar_read(d, 0, &v, sizeof(v), UPMD_EDU_REG_LIVENESS), 4);
	CU_ASSERT_EQUAL(v, ~0x5a5a5a5au);
	teardown();
}

static void test_interrupts(void)
{
	struct upmd_pci_device *d = driverless();
	volatile uint8_t *regs;
	int n_msix, n_msi, max, kind;

	CU_ASSERT_EQUAL_FATAL(upmd_pci_map_bar(d, 0), 0);
	regs = d->bar[0].addr;
	n_msix = upmd_pci_irq_count(d, UPMD_PCI_IRQ_MSIX);
	n_msi = upmd_pci_irq_count(d, UPMD_PCI_IRQ_MSI);
	/* QEMU's edu has MSI and no MSI-X. */
	CU_ASSERT_EQUAL(n_msix, 0);
	CU_ASSERT_TRUE(n_msi >= 1);
	CU_ASSERT_EQUAL(upmd_pci_msix_enable(d, 1), -ENOTSUP);
	CU_ASSERT_EQUAL(upmd_pci_irq_type(d), UPMD_PCI_IRQ_NONE);

	max = UPMD_MAX(UPMD_MAX(n_msix, n_msi), upmd_pci_irq_count(d, UPMD_PCI_IRQ_INTX));
	log_capture();
	CU_ASSERT_EQUAL(upmd_pci_irq_enable(d, max + 1), -EINVAL);
	log_release();
	CU_ASSERT_EQUAL(upmd_pci_irq_enable(d, 0), -EINVAL);

	kind = upmd_pci_irq_enable(d, 1);
	CU_ASSERT_EQUAL_FATAL(kind, UPMD_PCI_IRQ_MSI);
	CU_ASSERT_EQUAL(upmd_pci_irq_type(d), UPMD_PCI_IRQ_MSI);
	CU_ASSERT_EQUAL(d->msix_count, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d->msix_efd);
	CU_ASSERT_TRUE(d->msix_efd[0] >= 0);
	CU_ASSERT_EQUAL(upmd_pci_irq_enable(d, 1), -EBUSY);
	CU_ASSERT_EQUAL(upmd_pci_msix_wait(d, 0, 0), 0);	/* nothing yet */
	CU_ASSERT_EQUAL(upmd_pci_msix_wait(d, 1, 0), -EINVAL);

	/* The device raises an interrupt: it arrives on the eventfd. An MSI is
	 * a memory write, so the device needs bus mastering to send it. */
	CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, true), 0);
	upmd_mmio_write32(regs + UPMD_EDU_REG_IRQ_RAISE, 0x4);
	CU_ASSERT_EQUAL(upmd_pci_msix_wait(d, 0, 5000), 1);
	CU_ASSERT_EQUAL(upmd_mmio_read32(regs + UPMD_EDU_REG_IRQ_STATUS) & 0x4, 0x4);
	upmd_mmio_write32(regs + UPMD_EDU_REG_IRQ_ACK, 0x4);
	CU_ASSERT_EQUAL(upmd_mmio_read32(regs + UPMD_EDU_REG_IRQ_STATUS) & 0x4, 0);
	CU_ASSERT_EQUAL(upmd_pci_msix_wait(d, 0, 0), 0);	/* counted once */
	CU_ASSERT_EQUAL(upmd_pci_irq_unmask(d), 0);	/* a no-op for MSI */

	/* Disabled: raising does not signal, and it can be enabled again. */
	CU_ASSERT_EQUAL(upmd_pci_irq_disable(d), 0);
	CU_ASSERT_EQUAL(d->msix_count, 0);
	CU_ASSERT_PTR_NULL(d->msix_efd);
	CU_ASSERT_EQUAL(upmd_pci_irq_disable(d), 0);
	CU_ASSERT_EQUAL(upmd_pci_irq_enable(d, 1), UPMD_PCI_IRQ_MSI);
	upmd_mmio_write32(regs + UPMD_EDU_REG_IRQ_RAISE, 0x1);
	CU_ASSERT_EQUAL(upmd_pci_msix_wait(d, 0, 5000), 1);
	upmd_mmio_write32(regs + UPMD_EDU_REG_IRQ_ACK, 0x1);
	/* Left enabled on purpose: cleanup must disable and close it. */
	teardown();
}

/* ---- cleanup ---- */

static void test_cleanup_everything(void)
{
	const char *allow[] = { EDU_A, EDU_B };
	struct upmd_model_stats st;
	unsigned i;

	bring_up(allow, 2);
	for (i = 0; i < upmd_pci_device_count(); i++) {
		struct upmd_pci_device *d = upmd_pci_device_get(i);

		CU_ASSERT_EQUAL(upmd_pci_map_bar(d, 0), 0);
		CU_ASSERT_EQUAL(upmd_pci_set_bus_master(d, true), 0);
		CU_ASSERT_TRUE(upmd_pci_irq_enable(d, 1) > 0);
	}
	stats(&st);
	CU_ASSERT_EQUAL(st.bar_mappings, 2);
	CU_ASSERT_EQUAL(st.attached_devices, 2);
	bus()->cleanup();
	stats(&st);
	CU_ASSERT_EQUAL(st.bar_mappings, 0);
	CU_ASSERT_EQUAL(st.attached_devices, 0);
	CU_ASSERT_EQUAL(st.bound_devices, 0);
	upmd_ioas_close(ioas);
	ioas = NULL;
	assert_model_clean(model);
	teardown();
}

static const struct upmd_test addr_tests[] = {
	{ "parse: accepted and rejected spellings", test_addr_parse },
	{ "format", test_addr_fmt },
	{ "bus parse op (validates -a)", test_bus_parse },
	{ NULL, NULL },
};

static const struct upmd_test scan_tests[] = {
	{ "sysfs view: ids, groups, drivers, cdevs", test_sysfs_view },
	{ "selection: vfio-bound, or exactly -a", test_scan_selection },
	{ "-a of an unbound or absent device", test_scan_errors },
	{ "EAL init with -a of an unbound device", test_eal_unbound },
	{ "attach and probe with the edu driver", test_attach_probe_edu },
	{ "legacy type1 backend", test_type1_backend },
	{ NULL, NULL },
};

static const struct upmd_test nodrv_tests[] = {
	{ "driver matching and registry order", test_driver_match },
	{ "a failing probe closes everything", test_probe_failure },
	{ "BAR mmap and region read/write", test_bar_access },
	{ "config space and bus master", test_config_space },
	{ "function reset", test_reset },
	{ "MSI on eventfds, raised by the device", test_interrupts },
	{ "cleanup leaves nothing open, mapped or attached", test_cleanup_everything },
	{ NULL, NULL },
};

static int fini_release(void)
{
	release(false);
	return 0;
}

UPMD_TEST_MAIN({ "pci addresses", NULL, NULL, addr_tests },
	       { "pci scan and probe on the model", NULL, fini_release, scan_tests },
	       { "pci devices without the edu driver", edu_driver_out, edu_driver_back, nodrv_tests })
