/*
 * upmd-nvme-perf itself, in the guest, on QEMU's NVMe: the application's
 * sources are compiled in here with its main() renamed, and each run is a
 * child process, exactly as a user would start it: --verify at QD 1 and at
 * QD 32, which must finish with no errors and no mismatches (exit 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <upmd/upmd.h>

int upmd_nvme_perf_main(int argc, char **argv);
#define main upmd_nvme_perf_main
#include "../../apps/nvme-perf/main.c"
#undef main

static int run(char **argv)
{
	int status, argc = 0;
	pid_t pid;

	while (argv[argc])
		argc++;
	printf("run:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(upmd_nvme_perf_main(argc, argv));
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int find_nvme(char *bdf, size_t len)
{
	struct upmd_pci_sysfs_dev *list;
	int n = upmd_pci_sysfs_list(&list), found = -1;

	for (int i = 0; i < n; i++)
		if (found < 0 && list[i].id.vendor_id == 0x1b36 && list[i].id.device_id == 0x0010 &&
		    !strcmp(list[i].driver, "vfio-pci")) {
			snprintf(bdf, len, "%s", list[i].name);
			found = i;
		}
	if (n >= 0)
		free(list);
	return found;
}

int main(void)
{
	char bdf[16];
	char *qd1[] = { "upmd-nvme-perf", "-l", "0", "-m", "64", "-a", bdf, "--", "-q", "1", "-o", "4096", "-w",
			"randrw", "-M", "50", "--verify", "--verify-size", "8388608", "-t", "2", NULL };
	char *qd32[] = { "upmd-nvme-perf", "-l", "0", "-m", "64", "-a", bdf, "--", "-q", "32", "-o", "4096", "-w",
			 "randrw", "-M", "70", "--verify", "--verify-size", "16777216", "-t", "3", NULL };
	int a, b;

	if (find_nvme(bdf, sizeof(bdf)) < 0) {
		if (!getenv("UPMD_IN_VM")) {
			printf("SKIP: no QEMU NVMe (1b36:0010) bound to vfio-pci and not in the VM guest\n");
			return 77;
		}
		printf("FAIL: run.sh gives the guest a QEMU NVMe bound to vfio-pci; sysfs has none\n");
		return 1;
	}
	a = run(qd1);
	printf("%s upmd-nvme-perf --verify, QD 1: exit %d\n", a == 0 ? "PASS" : "FAIL", a);
	b = run(qd32);
	printf("%s upmd-nvme-perf --verify, QD 32: exit %d\n", b == 0 ? "PASS" : "FAIL", b);
	return a == 0 && b == 0 ? 0 : 1;
}
