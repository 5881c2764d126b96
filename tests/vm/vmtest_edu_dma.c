/*
 * In the guest: QEMU's edu copy engine DMAs a buffer through the one IOAS
 * (RAM -> device -> RAM), and after the IOVA is unmapped a DMA to it is
 * blocked by the real IOMMU: memory stays untouched and the kernel logs a
 * DMAR fault. Runs on both IOAS backends (iommufd, then type1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upmd/edu.h>
#include <upmd/upmd.h>

#define XFER 2048

/* Drain /dev/kmsg (non-blocking) and report whether a DMAR fault line appeared. */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

static int kmsg_saw_fault(int fd)
{
	char line[1024];
	ssize_t n;
	int seen = 0;

	for (int tries = 0; tries < 50 && !seen; tries++) {
		while ((n = read(fd, line, sizeof(line) - 1)) > 0) {
			line[n] = '\0';
			if (strstr(line, "DMAR") && strstr(line, "fault")) {
				printf("kernel: %s", strchr(line, ';') ? strchr(line, ';') + 1 : line);
				seen = 1;
			}
		}
		if (!seen)
			usleep(20000);
	}
	return seen;
}

static int run(const char *backend)
{
	char *args[] = { "vmtest-edu-dma", "-l", "0", "-m", "16", "--iommu", (char *)backend, NULL };
	const struct upmd_memzone *src, *dst;
	struct upmd_edu *edu;
	uint8_t *page;
	uint64_t iova = 0;
	int fails = 0, kfd;

	if (upmd_eal_init(7, args) < 0)
		return 1;
	printf("[%s] IOAS backend %s, IOVA mode %s\n", backend,
	       upmd_ioas_backend_name(upmd_ioas_default()), upmd_iova_mode_name(upmd_eal_iova_mode()));
	edu = upmd_edu_first();
	if (!edu) {
		printf("FAIL: no edu device\n");
		upmd_eal_cleanup();
		return 1;
	}
	if (upmd_memzone_reserve("src", XFER, UPMD_SOCKET_ID_ANY, 4096, &src) ||
	    upmd_memzone_reserve("dst", XFER, UPMD_SOCKET_ID_ANY, 4096, &dst)) {
		upmd_eal_cleanup();
		return 1;
	}
	for (int i = 0; i < XFER; i++)
		((uint8_t *)src->addr)[i] = (uint8_t)(i * 13 + 1);
	if (upmd_edu_dma(edu, src->iova, 0, XFER, false, 10000) ||
	    upmd_edu_dma(edu, dst->iova, 0, XFER, true, 10000) ||
	    memcmp(src->addr, dst->addr, XFER)) {
		printf("FAIL: RAM -> edu -> RAM copy through the IOAS\n");
		fails++;
	} else {
		printf("[%s] copied %d bytes RAM (IOVA 0x%llx) -> edu -> RAM (IOVA 0x%llx)\n", backend,
		       XFER, (unsigned long long)src->iova, (unsigned long long)dst->iova);
	}

	/* An ephemeral dynamic mapping, used, then unmapped (deferred, then
	 * flushed): the next DMA must fault. */
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	memset(page, 0x22, 4096);
	if (upmd_iova_map(page, 4096, UPMD_IOVA_MAP_RW | UPMD_IOVA_MAP_EPHEMERAL, &iova) ||
	    upmd_iova_from_va(page + 8) != iova + 8 ||
	    upmd_edu_dma(edu, iova, 0, 64, true, 10000) || page[0] != (uint8_t)1) {
		printf("FAIL: DMA into a dynamic mapping\n");
		fails++;
	} else {
		printf("[%s] dynamic mapping of %p at IOVA 0x%llx: DMA landed\n", backend, (void *)page,
		       (unsigned long long)iova);
	}
	memset(page, 0x22, 4096);
	kfd = kmsg_open();
	if (upmd_iova_unmap(page, 4096) || upmd_iova_from_va(page) != UPMD_BAD_IOVA ||
	    upmd_iova_unmap_flush()) {
		printf("FAIL: unmap\n");
		fails++;
	}
	upmd_edu_dma(edu, iova, 0, 64, true, 10000);
	if (page[0] != 0x22 || page[63] != 0x22) {
		printf("FAIL: DMA to an unmapped IOVA reached memory\n");
		fails++;
	} else {
		printf("[%s] DMA to unmapped IOVA 0x%llx left memory untouched\n", backend,
		       (unsigned long long)iova);
	}
	if (kfd < 0 || !kmsg_saw_fault(kfd)) {
		printf("FAIL: the kernel logged no DMAR fault\n");
		fails++;
	}
	if (kfd >= 0)
		close(kfd);
	munmap(page, 4096);
	upmd_memzone_free(dst);
	upmd_memzone_free(src);
	upmd_eal_cleanup();
	return fails;
}

int main(void)
{
	int fails = run("iommufd");

	fails += run("type1");
	printf("%s\n", fails ? "FAILED" : "OK");
	return fails ? 1 : 0;
}
