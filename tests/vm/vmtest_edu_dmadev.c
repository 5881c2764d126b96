/*
 * In the guest: the edu dmadev on QEMU's real edu behind the vIOMMU.
 * Copies and a fill through the dmadev checked byte for byte; a copy to
 * an IOVA that was unmapped leaves the memory untouched and the kernel
 * logs the DMAR fault; a copy from one delivers zeros, never the old
 * bytes; an IOVA above the 32-bit mask (run.sh starts edu with
 * dma_mask=0xffffffff) is refused at enqueue. Runs on both IOAS backends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <upmd/dmadev.h>
#include <upmd/edu.h>
#include <upmd/upmd.h>

#define AREA (128 * 1024)
#define CANARY 0x5a

static int16_t dev;

static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Print the DMAR lines that appeared. @return 2 if one names @what
 * ("DMA Write"), 1 if there were only others ("DRHD: handling fault status
 * reg 2": QEMU's intel-iommu may collapse a fault into one still pending,
 * and the kernel ratelimits the detail lines), 0 if none. */
static int kmsg_saw_fault(int fd, const char *what)
{
	char line[1024];
	ssize_t n;
	int seen = 0;

	if (fd < 0)
		return 0;
	for (int tries = 0; tries < 100 && seen < 2; tries++) {
		while ((n = read(fd, line, sizeof(line) - 1)) > 0) {
			line[n] = '\0';
			if (strstr(line, "DMAR")) {
				printf("kernel: %s", strchr(line, ';') ? strchr(line, ';') + 1 : line);
				if (strstr(line, what))
					seen = 2;
				else if (!seen)
					seen = 1;
			}
		}
		if (seen < 2)
			usleep(20000);
	}
	return seen;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Submit what is enqueued and wait (QEMU's edu takes 100 ms a transfer) for one operation. */
static int wait_one(int idx, enum upmd_dma_status_code *st)
{
	uint64_t deadline = now_ms() + 30000;
	uint16_t last;

	if (idx < 0)
		return idx;
	while (now_ms() < deadline) {
		if (upmd_dma_completed_status(dev, 0, 1, &last, st) == 1)
			return last == (uint16_t)idx ? 0 : -EIO;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static int copy_check(const struct upmd_memzone *src, const struct upmd_memzone *dst, uint32_t so, uint32_t dof,
		      uint32_t len, const char *backend)
{
	enum upmd_dma_status_code st = UPMD_DMA_STATUS_ERROR_UNKNOWN;
	uint8_t *s = src->addr, *d = dst->addr;
	uint64_t t0 = now_ms();
	int rc;

	for (uint32_t i = 0; i < AREA; i++)
		s[i] = (uint8_t)(i * 7 + len);
	memset(d, 0xee, AREA);
	rc = wait_one(upmd_dma_copy(dev, 0, src->iova + so, dst->iova + dof, len, UPMD_DMA_OP_FLAG_SUBMIT), &st);
	if (rc || st != UPMD_DMA_STATUS_SUCCESSFUL || memcmp(d + dof, s + so, len) || !all(d, dof, 0xee) ||
	    !all(d + dof + len, AREA - dof - len, 0xee)) {
		printf("FAIL: [%s] copy of %u bytes (src +%u, dst +%u): rc %d, status %s\n", backend, len, so, dof,
		       rc, upmd_dma_status_str(st));
		return 1;
	}
	printf("[%s] copied %u bytes IOVA 0x%llx -> 0x%llx in %llu ms, byte for byte\n", backend, len,
	       (unsigned long long)(src->iova + so), (unsigned long long)(dst->iova + dof),
	       (unsigned long long)(now_ms() - t0));
	return 0;
}

static int run(const char *backend, bool full)
{
	char *args[] = { "vmtest-edu-dmadev", "-l", "0", "-m", "16", "--iommu", (char *)backend, NULL };
	struct upmd_dma_conf conf = { .size = sizeof(conf), .nb_vchans = 1 };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = 64 };
	const struct upmd_memzone *src = NULL, *dst = NULL;
	enum upmd_dma_status_code st;
	struct upmd_dma_info info;
	struct upmd_edu *edu;
	uint64_t iova = 0, mask = 0;
	uint8_t *canary;
	int fails = 0, kfd, id;

	if (upmd_eal_init(7, args) < 0)
		return 1;
	edu = upmd_edu_first();
	if (!edu) {
		printf("FAIL: no edu device\n");
		upmd_eal_cleanup();
		return 1;
	}
	id = upmd_dma_get_dev_id_by_name(edu->pdev->name);
	if (id < 0 || upmd_dma_info_get((int16_t)id, &info)) {
		printf("FAIL: no dmadev called %s\n", edu->pdev->name);
		upmd_eal_cleanup();
		return 1;
	}
	dev = (int16_t)id;
	/* run.sh: -device edu,dma_mask=0xffffffff */
	if (upmd_edu_dma_set_mask(edu->pdev->name, 0xffffffff) || upmd_edu_dma_get_mask(edu->pdev->name, &mask) ||
	    upmd_dma_configure(dev, &conf) || upmd_dma_vchan_setup(dev, 0, &vc) || upmd_dma_start(dev) ||
	    upmd_memzone_reserve("src", AREA, UPMD_SOCKET_ID_ANY, 4096, &src) ||
	    upmd_memzone_reserve("dst", AREA, UPMD_SOCKET_ID_ANY, 4096, &dst)) {
		printf("FAIL: dmadev setup\n");
		upmd_eal_cleanup();
		return 1;
	}
	printf("[%s] IOAS backend %s, IOVA mode %s; dmadev %d '%s' driver %s, max_length %u, DMA mask 0x%llx\n",
	       backend, upmd_ioas_backend_name(upmd_ioas_default()), upmd_iova_mode_name(upmd_eal_iova_mode()),
	       dev, info.name, info.driver, info.max_length, (unsigned long long)mask);

	fails += copy_check(src, dst, 0, 0, 8192, backend);
	if (full) {
		fails += copy_check(src, dst, 0, 0, 1, backend);
		fails += copy_check(src, dst, 3, 5, UPMD_EDU_DMA_MAX, backend);
		fails += copy_check(src, dst, 4095, 1, UPMD_EDU_DMA_MAX + 1, backend);
		fails += copy_check(src, dst, 100, 4000, 65536, backend);
		/* A fill: the pattern loaded once, then written chunk by chunk. */
		memset(dst->addr, 0xee, AREA);
		if (wait_one(upmd_dma_fill(dev, 0, 0x8877665544332211ULL, dst->iova + 1, 10000,
					   UPMD_DMA_OP_FLAG_SUBMIT), &st) || st != UPMD_DMA_STATUS_SUCCESSFUL) {
			printf("FAIL: [%s] fill\n", backend);
			fails++;
		} else {
			uint8_t *d = dst->addr;
			bool ok = d[0] == 0xee && d[10001] == 0xee;

			for (uint32_t k = 0; k < 10000; k++)
				ok &= d[1 + k] == (uint8_t)(0x11 * (k % 8 + 1));
			printf("%s[%s] filled 10000 bytes with an 8-byte pattern%s\n", ok ? "" : "FAIL: ", backend,
			       ok ? ", byte for byte" : ": wrong bytes");
			fails += !ok;
		}
	}

	/* Above the mask: refused before it reaches the device. */
	if (upmd_dma_copy(dev, 0, src->iova, 0x100000000ULL, 64, UPMD_DMA_OP_FLAG_SUBMIT) != -EINVAL ||
	    upmd_dma_copy(dev, 0, 0xffffffc0ULL, dst->iova, 128, UPMD_DMA_OP_FLAG_SUBMIT) != -EINVAL ||
	    upmd_dma_burst_capacity(dev, 0) != 64) {
		printf("FAIL: [%s] an IOVA above the mask was accepted\n", backend);
		fails++;
	} else {
		printf("[%s] IOVAs above the mask 0x%llx refused at enqueue (-EINVAL)\n", backend,
		       (unsigned long long)mask);
	}

	/* A canary page, mapped, then unmapped: its IOVA now leads nowhere. */
	canary = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (canary == MAP_FAILED || upmd_iova_map(canary, 4096, UPMD_IOVA_MAP_RW, &iova) ||
	    upmd_iova_unmap(canary, 4096) || upmd_iova_from_va(canary) != UPMD_BAD_IOVA) {
		printf("FAIL: [%s] canary map/unmap\n", backend);
		fails++;
		goto out;
	}
	memset(canary, CANARY, 4096);

	/* To it: edu cannot tell, the op completes; the IOMMU blocked the write. */
	kfd = kmsg_open();
	memset(src->addr, 0x11, 4096);
	if (wait_one(upmd_dma_copy(dev, 0, src->iova, iova, 256, UPMD_DMA_OP_FLAG_SUBMIT), &st) ||
	    !all(canary, 4096, CANARY)) {
		printf("FAIL: [%s] a copy to unmapped IOVA 0x%llx reached memory\n", backend, (unsigned long long)iova);
		fails++;
	} else {
		printf("[%s] copy to unmapped IOVA 0x%llx: reported %s (edu has no error status), canary untouched\n",
		       backend, (unsigned long long)iova, upmd_dma_status_str(st));
	}
	if (kmsg_saw_fault(kfd, "DMA Write") < 2) {
		printf("FAIL: [%s] the kernel logged no DMAR write fault\n", backend);
		fails++;
	}
	if (kfd >= 0)
		close(kfd);

	/* From it: QEMU reads zeros through the blocked translation. */
	kfd = kmsg_open();
	memset(dst->addr, 0xee, AREA);
	if (wait_one(upmd_dma_copy(dev, 0, iova, dst->iova, 256, UPMD_DMA_OP_FLAG_SUBMIT), &st) ||
	    !all(dst->addr, 256, 0) || !all((uint8_t *)dst->addr + 256, AREA - 256, 0xee)) {
		printf("FAIL: [%s] a copy from unmapped IOVA 0x%llx did not deliver zeros (first byte 0x%02x)\n",
		       backend, (unsigned long long)iova, ((uint8_t *)dst->addr)[0]);
		fails++;
	} else {
		printf("[%s] copy from unmapped IOVA 0x%llx: the destination got zeros, not the canary's 0x%02x\n",
		       backend, (unsigned long long)iova, CANARY);
	}
	switch (kmsg_saw_fault(kfd, "DMA Read")) {
	case 0:
		printf("FAIL: [%s] the kernel logged no DMAR fault for the read\n", backend);
		fails++;
		break;
	case 1:
		printf("[%s] the kernel handled the read fault without a detail line (collapsed or ratelimited)\n",
		       backend);
		break;
	}
	if (kfd >= 0)
		close(kfd);
	munmap(canary, 4096);

	/* And the engine still works after the faults. */
	fails += copy_check(src, dst, 0, 0, 4096, backend);
out:
	{
		struct upmd_dma_stats ds;

		if (upmd_dma_stats_get(dev, 0, &ds) == 0)
			printf("[%s] stats: submitted %llu, completed %llu, errors %llu\n", backend,
			       (unsigned long long)ds.submitted, (unsigned long long)ds.completed,
			       (unsigned long long)ds.errors);
	}
	upmd_dma_stop(dev);
	upmd_memzone_free(dst);
	upmd_memzone_free(src);
	upmd_eal_cleanup();
	return fails;
}

int main(void)
{
	int fails = run("iommufd", true);

	fails += run("type1", false);
	printf("%s\n", fails ? "FAILED" : "OK");
	return fails ? 1 : 0;
}
