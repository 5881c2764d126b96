/*
 * VM tier smoke test: proves the pipeline (kernel, initramfs, QEMU, device
 * binding, result parsing) end to end, with no upmd code involved.
 * In the guest it checks that /dev/iommu exists and opens, and that
 * /dev/vfio/devices/ holds at least the 4 devices run.sh gives the VM
 * (NVMe, virtio-net, e1000e, edu), printing what it found.
 *
 * Build: gcc -static -O2 -Wall -Werror -o /tmp/vmtest-smoke tests/vm/smoke.c
 * Exit: 0 pass, 1 fail, 77 skip (not running in the VM guest).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WANT_DEVICES 4

int main(void)
{
	const char *vfio_dir = "/dev/vfio/devices";
	struct stat st;
	struct dirent *de;
	DIR *dir;
	int fd, n = 0, fails = 0;

	if (!getenv("UPMD_IN_VM")) {
		printf("smoke: UPMD_IN_VM is not set: not in the VM guest, skipping\n");
		return 77;
	}

	if (stat("/dev/iommu", &st) != 0) {
		printf("smoke: FAIL /dev/iommu: %s\n", strerror(errno));
		fails++;
	} else if (!S_ISCHR(st.st_mode)) {
		printf("smoke: FAIL /dev/iommu is not a character device\n");
		fails++;
	} else {
		fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			printf("smoke: FAIL open /dev/iommu: %s\n", strerror(errno));
			fails++;
		} else {
			printf("smoke: /dev/iommu char %u:%u opened as fd %d\n",
			       major(st.st_rdev), minor(st.st_rdev), fd);
			close(fd);
		}
	}

	dir = opendir(vfio_dir);
	if (!dir) {
		printf("smoke: FAIL opendir %s: %s\n", vfio_dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(dir)) != NULL) {
		char path[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", vfio_dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode)) {
			printf("smoke: FAIL %s is not a character device\n", path);
			fails++;
			continue;
		}
		printf("smoke: %s char %u:%u\n", path, major(st.st_rdev), minor(st.st_rdev));
		n++;
	}
	closedir(dir);

	if (n < WANT_DEVICES) {
		printf("smoke: FAIL %d entries in %s, want at least %d\n", n, vfio_dir, WANT_DEVICES);
		fails++;
	}
	printf("smoke: %s (%d vfio device node(s))\n", fails ? "FAIL" : "OK", n);
	return fails ? 1 : 0;
}
