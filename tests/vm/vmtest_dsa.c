/*
 * The DSA PMD on a real kernel: runs wherever an Intel DSA (8086:0b25) is
 * bound to vfio-pci — 1000 copies through its first work queue, each
 * checked byte for byte. QEMU 7.2 emulates no DSA, so in this project's VM
 * tier the test says so and is skipped (exit 77); the DSA paths are tested
 * against the model (tests/func/test_dsa.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upmd/upmd.h>

int main(int argc, char **argv)
{
	struct upmd_pci_sysfs_dev *list;
	char bdf[16] = "";
	int n = upmd_pci_sysfs_list(&list);
	unsigned bad = 0, done = 0;

	(void)argc;
	for (int i = 0; i < n; i++)
		if (!bdf[0] && list[i].id.vendor_id == 0x8086 && list[i].id.device_id == 0x0b25 &&
		    !strcmp(list[i].driver, "vfio-pci"))
			snprintf(bdf, sizeof(bdf), "%s", list[i].name);
	if (n >= 0)
		free(list);
	if (!bdf[0]) {
		printf("SKIP: no Intel DSA (8086:0b25) bound to vfio-pci%s: QEMU 7.2 emulates none, so the DSA PMD's "
		       "vfio and idxd paths cannot run here (they are tested on the model: tests/func/test_dsa.c)\n",
		       access("/dev/dsa", F_OK) == 0 ? "" : ", and no /dev/dsa");
		return 77;
	}
	{
		char *args[] = { argv[0], "-l", "0", "-m", "64", "-a", bdf, NULL };
		char name[32];
		const struct upmd_memzone *mz;
		struct upmd_dma_conf c = { .size = sizeof(c), .nb_vchans = 1 };
		struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = 64 };
		int dev;

		if (upmd_eal_init(7, args) < 0)
			return 1;
		snprintf(name, sizeof(name), "%s-wq0", bdf);
		dev = upmd_dma_get_dev_id_by_name(name);
		if (dev < 0 || upmd_dma_configure((int16_t)dev, &c) < 0 || upmd_dma_vchan_setup((int16_t)dev, 0, &vc) < 0 ||
		    upmd_dma_start((int16_t)dev) < 0 ||
		    upmd_memzone_reserve("dsa_vm", 2 * 4096, UPMD_SOCKET_ID_ANY, 4096, &mz) < 0) {
			printf("FAIL: %s: set-up\n", name);
			upmd_eal_cleanup();
			return 1;
		}
		for (unsigned k = 0; k < 1000; k++) {
			uint8_t *src = mz->addr, *dst = src + 4096;
			enum upmd_dma_status_code st;
			uint16_t last;

			memset(src, (int)(k & 0xff), 4096);
			memset(dst, 0, 4096);
			if (upmd_dma_copy((int16_t)dev, 0, mz->iova, mz->iova + 4096, 4096, UPMD_DMA_OP_FLAG_SUBMIT) < 0)
				break;
			for (int t = 0; t < 1000000 && !upmd_dma_completed_status((int16_t)dev, 0, 1, &last, &st); t++)
				;
			done++;
			bad += st != UPMD_DMA_STATUS_SUCCESSFUL || memcmp(src, dst, 4096) != 0;
		}
		printf("%s %s: %u copies of 4 KiB, %u wrong\n", done == 1000 && !bad ? "PASS" : "FAIL", name, done, bad);
		upmd_dma_stop((int16_t)dev);
		upmd_eal_cleanup();
	}
	return done == 1000 && !bad ? 0 : 1;
}
