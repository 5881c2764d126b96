/* upmd-demo: EAL init, then a copy engine DMAs a buffer through the one IOAS, and a DMA to an unmapped IOVA faults. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/edu.h>
#include <upmd/upmd.h>

/* Used when no EAL arguments are given: the in-process model of the
 * kernel with one edu copy engine, all memory from the default pool. */
#define DEMO_MODEL "edu@0000:00:04.0"
#define DEMO_BDF "0000:00:04.0"
#define XFER 2048
#define DMA_TIMEOUT_MS 5000

static const char *source_name(enum upmd_memseg_source s)
{
	switch (s) {
	case UPMD_MEMSEG_HUGETLBFS:
		return "hugetlbfs";
	case UPMD_MEMSEG_MEMFD:
		return "memfd hugepages";
	default:
		return "anonymous 4 KiB pages (--no-huge)";
	}
}

static void show_environment(void)
{
	const struct upmd_iova_range *r;
	struct upmd_ioas *ioas = upmd_ioas_default();
	unsigned i, n;

	printf("EAL: %u lcore(s), main lcore %u\n", upmd_lcore_count(), upmd_get_main_lcore());
	for (i = 0; i < upmd_memseg_count(); i++) {
		const struct upmd_memseg *ms = upmd_memseg_get(i);

		printf("memory segment %u: %zu MiB of %s, page %zu KiB, node %d, VA %p -> IOVA 0x%llx\n",
		       i, (size_t)(ms->len / UPMD_MB), source_name(ms->source), ms->page_sz / 1024,
		       ms->socket_id, ms->va, (unsigned long long)ms->iova);
	}
	if (!ioas) {
		printf("IOAS: none (no IOMMU)\n");
		return;
	}
	printf("IOAS: backend %s, id %u, IOVA mode %s\n", upmd_ioas_backend_name(ioas),
	       upmd_ioas_id(ioas), upmd_iova_mode_name(upmd_eal_iova_mode()));
	n = upmd_ioas_ranges(ioas, &r);
	for (i = 0; i < n; i++)
		printf("  allowed IOVA range 0x%llx-0x%llx\n", (unsigned long long)r[i].start,
		       (unsigned long long)r[i].last);
	for (i = 0; i < upmd_pci_device_count(); i++) {
		struct upmd_pci_device *d = upmd_pci_device_get(i);

		printf("device %s %04x:%04x via /dev/vfio/devices/%s (IOMMU group %d), driver %s\n",
		       d->name, d->id.vendor_id, d->id.device_id, d->cdev, d->iommu_group,
		       d->driver ? d->driver->name : "none");
	}
}

static int copy_through_device(struct upmd_edu *edu)
{
	const struct upmd_memzone *src, *dst;
	unsigned i;
	int rc;

	rc = upmd_memzone_reserve("demo_src", XFER, UPMD_SOCKET_ID_ANY, 4096, &src);
	if (rc < 0)
		return rc;
	rc = upmd_memzone_reserve("demo_dst", XFER, UPMD_SOCKET_ID_ANY, 4096, &dst);
	if (rc < 0) {
		upmd_memzone_free(src);
		return rc;
	}
	for (i = 0; i < XFER; i++)
		((uint8_t *)src->addr)[i] = (uint8_t)(i * 7 + 3);

	rc = upmd_edu_dma(edu, src->iova, 0, XFER, false, DMA_TIMEOUT_MS);
	if (rc == 0)
		rc = upmd_edu_dma(edu, dst->iova, 0, XFER, true, DMA_TIMEOUT_MS);
	if (rc == 0) {
		rc = memcmp(src->addr, dst->addr, XFER) ? -EIO : 0;
		printf("DMA: %d bytes RAM (IOVA 0x%llx) -> device buffer -> RAM (IOVA 0x%llx): %s\n",
		       XFER, (unsigned long long)src->iova, (unsigned long long)dst->iova,
		       rc ? "MISMATCH" : "identical");
	}
	upmd_memzone_free(dst);
	upmd_memzone_free(src);
	return rc;
}

/* An IOVA nothing is mapped at: the top of the lowest allowed range. */
static uint64_t unmapped_iova(void)
{
	const struct upmd_iova_range *r;
	unsigned n = upmd_ioas_ranges(upmd_ioas_default(), &r);

	return n ? (UPMD_MIN(r[0].last, 0xfffffffULL) & ~0xfffULL) - 0x10000 : 0x100000;
}

static int fault_demo(struct upmd_edu *edu, struct upmd_model *model)
{
	struct upmd_model_fault f;
	uint64_t iova = unmapped_iova();
	int rc;

	if (upmd_mem_virt2iova(NULL) != UPMD_BAD_IOVA)
		return -EIO;
	rc = upmd_edu_dma(edu, iova, 0, 64, true, DMA_TIMEOUT_MS);
	if (rc < 0)
		return rc;
	if (!model) {
		printf("fault: DMA to unmapped IOVA 0x%llx issued; the kernel logs the IOMMU fault\n",
		       (unsigned long long)iova);
		return 0;
	}
	if (upmd_model_fault_pop(model, &f) < 0) {
		printf("fault: DMA to unmapped IOVA 0x%llx was NOT caught\n", (unsigned long long)iova);
		return -EIO;
	}
	printf("fault: device %s %s IOVA 0x%llx blocked by the IOMMU: %s\n", f.bdf,
	       f.write ? "write to" : "read from", (unsigned long long)f.iova,
	       upmd_model_fault_reason_name(f.reason));
	return 0;
}

int main(int argc, char **argv)
{
	/* The edu engine masks DMA addresses to 28 bits (QEMU's default
	 * dma_mask), so the demo asks for compact IOVAs from the allocator. */
	char *def_argv[] = { argv[0], "-l", "0", "-m", "16", "--iova-mode", "alloc",
			     "-a", DEMO_BDF, NULL };
	struct upmd_model *model = NULL;
	struct upmd_model_stats st;
	struct upmd_edu *edu;
	int rc, ret;

	if (argc == 1) {
		printf("upmd-demo: no arguments: running on the in-process model (%s)\n", DEMO_MODEL);
		rc = upmd_model_install(DEMO_MODEL, &model);
		if (rc < 0)
			return 1;
		argv = def_argv;
		argc = (int)UPMD_DIM(def_argv) - 1;
	}
	rc = upmd_eal_init(argc, argv);
	if (rc < 0) {
		ret = upmd_eal_exit_code(rc);
		goto out;
	}
	show_environment();

	edu = upmd_edu_first();
	if (!edu) {
		fprintf(stderr, "upmd-demo: no edu copy engine among the devices (give one with -a)\n");
		ret = 1;
		goto out_cleanup;
	}
	rc = copy_through_device(edu);
	if (rc == 0)
		rc = fault_demo(edu, model);
	ret = rc ? 1 : 0;

out_cleanup:
	upmd_eal_cleanup();
out:
	if (model) {
		upmd_model_get_stats(model, &st);
		printf("after cleanup: %llu pages pinned, %u model fds open, %u devices attached, %llu bytes DMAed\n",
		       (unsigned long long)st.pinned_pages, st.open_fds, st.attached_devices,
		       (unsigned long long)st.dma_bytes);
		if (st.pinned_pages || st.open_fds || st.attached_devices)
			ret = 1;
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(model);
	}
	/* A usage error already said what was wrong. */
	if (ret != 2)
		printf("upmd-demo: %s\n", ret ? "FAILED" : "OK");
	return ret;
}
