/* upmd-devbind: show PCI devices and their IOMMU state, bind them to vfio-pci and back, and reserve hugepages. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upmd/upmd.h>

#define EXIT_USAGE 2
#define HUGEPAGE_DIR "hugepages/hugepages-2048kB/nr_hugepages"

enum action { ACT_NONE, ACT_STATUS, ACT_BIND, ACT_UNBIND, ACT_HUGEPAGES };

static const char *prg = "upmd-devbind";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] ACTION\n"
		"\n"
		"Actions (one per run):\n"
		"  -s, --status              list PCI devices with vendor:device, class, kernel\n"
		"                            driver, IOMMU group and vfio cdev, and whether the\n"
		"                            kernel offers /dev/iommu and vfio-pci\n"
		"  -b, --bind DRIVER BDF...  bind devices to a kernel driver (vfio-pci for upmd)\n"
		"  -u, --unbind BDF...       unbind devices from their kernel driver\n"
		"  --hugepages N[,NODE]      reserve N 2 MiB hugepages in total, or on NUMA node\n"
		"                            NODE, and report how many the kernel gave\n"
		"  -h, --help                this text\n"
		"\n"
		"Options for tests and demos:\n"
		"  --model SPEC              act on upmd's in-process model of the kernel instead\n"
		"                            of this machine, e.g.\n"
		"                            'edu@0000:00:04.0;edu@0000:00:05.0:driver=none'\n"
		"  --sysfs DIR               read and write hugepage settings under DIR instead\n"
		"                            of /sys\n"
		"\n"
		"BDF is a PCI address such as 0000:03:00.0 or 03:00.0. Binding, unbinding and\n"
		"reserving hugepages need root.\n",
		prg);
}

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prg);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	return EXIT_USAGE;
}

static bool present(const char *path)
{
	return upmd_k_access(path, F_OK) == 0;
}

static int do_status(void)
{
	struct upmd_pci_sysfs_dev *devs;
	int i, n;

	if (present("/dev/iommu"))
		printf("IOMMU: /dev/iommu present (iommufd)\n");
	else
		printf("IOMMU: no /dev/iommu (kernel without iommufd, or 'modprobe iommufd'); "
		       "upmd falls back to the legacy VFIO container\n");
	printf("VFIO: vfio-pci driver %s, legacy container /dev/vfio/vfio %s\n",
	       present("/sys/bus/pci/drivers/vfio-pci") ? "loaded" : "not loaded ('modprobe vfio-pci')",
	       present("/dev/vfio/vfio") ? "present" : "absent");

	n = upmd_pci_sysfs_list(&devs);
	if (n < 0) {
		fprintf(stderr, "%s: cannot list PCI devices: %s\n", prg, strerror(-n));
		return 1;
	}
	printf("\nPCI devices: %d\n", n);
	if (n)
		printf("%-13s %-9s %-6s %-16s %-5s %-4s %s\n", "BDF", "VEN:DEV", "CLASS", "DRIVER",
		       "GROUP", "NUMA", "VFIO CDEV");
	for (i = 0; i < n; i++) {
		const struct upmd_pci_sysfs_dev *d = &devs[i];
		char group[16], cdev[48];

		if (d->iommu_group >= 0)
			snprintf(group, sizeof(group), "%d", d->iommu_group);
		else
			snprintf(group, sizeof(group), "-");
		if (d->cdev[0])
			snprintf(cdev, sizeof(cdev), "/dev/vfio/devices/%s", d->cdev);
		else
			snprintf(cdev, sizeof(cdev), "-");
		printf("%-13s %04x:%04x %06x %-16s %-5s %-4d %s\n", d->name, d->id.vendor_id,
		       d->id.device_id, d->id.class_id, d->driver[0] ? d->driver : "-", group,
		       d->numa_node, cdev);
	}
	free(devs);
	return 0;
}

static int do_bind(const char *driver, char **bdfs, int n)
{
	struct upmd_pci_sysfs_dev d;
	int i, ret = 0;

	for (i = 0; i < n; i++) {
		/* The library logs why on failure; keep going with the rest. */
		if (upmd_pci_sysfs_bind(bdfs[i], driver) < 0 || upmd_pci_sysfs_read(bdfs[i], &d) < 0) {
			fprintf(stderr, "%s: %s: not bound to %s\n", prg, bdfs[i], driver);
			ret = 1;
			continue;
		}
		if (d.cdev[0])
			printf("%s: bound to %s, /dev/vfio/devices/%s\n", d.name, d.driver, d.cdev);
		else
			printf("%s: bound to %s\n", d.name, d.driver);
	}
	return ret;
}

static int do_unbind(char **bdfs, int n)
{
	struct upmd_pci_sysfs_dev d;
	int i, rc, ret = 0;

	for (i = 0; i < n; i++) {
		/* Read first: the message says which driver it left. */
		rc = upmd_pci_sysfs_read(bdfs[i], &d);
		if (rc == -ENODEV)
			fprintf(stderr, "%s: %s: no such device (see '%s --status')\n", prg, bdfs[i],
				prg);
		else if (rc < 0 || upmd_pci_sysfs_unbind(bdfs[i]) < 0)
			fprintf(stderr, "%s: %s: not unbound\n", prg, bdfs[i]);
		else {
			printf("%s: unbound%s%s\n", d.name,
			       d.driver[0] ? " from " : " (had no driver)", d.driver);
			continue;
		}
		ret = 1;
	}
	return ret;
}

/* Hugepage pools are plain sysfs files, not part of the kernel boundary:
 * upmd never sizes them itself, only this tool does. */
static int read_count(const char *path, unsigned long *v)
{
	char buf[32], *end;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	errno = 0;
	*v = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n'))
		return -EINVAL;
	return 0;
}

static int write_count(const char *path, unsigned long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), len;
	ssize_t n;

	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%lu\n", v);
	n = write(fd, buf, (size_t)len);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (close(fd) < 0)
		return -errno;
	return 0;
}

static int do_hugepages(const char *root, unsigned long want, long node)
{
	char path[512], where[48];
	unsigned long got = 0;
	int rc;

	if (node >= 0) {
		snprintf(path, sizeof(path), "%s/devices/system/node/node%ld/" HUGEPAGE_DIR, root, node);
		snprintf(where, sizeof(where), " on NUMA node %ld", node);
	} else {
		snprintf(path, sizeof(path), "%s/kernel/mm/" HUGEPAGE_DIR, root);
		where[0] = '\0';
	}
	if (access(path, F_OK) < 0) {
		if (node >= 0)
			fprintf(stderr, "%s: no NUMA node %ld with 2 MiB hugepages (%s is missing)\n",
				prg, node, path);
		else
			fprintf(stderr, "%s: this kernel offers no 2 MiB hugepages (%s is missing: "
				"it needs CONFIG_HUGETLBFS)\n", prg, path);
		return 1;
	}
	rc = write_count(path, want);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot write %s: %s%s\n", prg, path, strerror(-rc),
			rc == -EACCES || rc == -EPERM ? " (reserving hugepages needs root)" : "");
		return 1;
	}
	rc = read_count(path, &got);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot read back %s: %s\n", prg, path, strerror(-rc));
		return 1;
	}
	printf("2 MiB hugepages%s: asked for %lu, the kernel has %lu (%lu MiB)\n", where, want, got,
	       got * 2);
	if (got < want) {
		fprintf(stderr,
			"%s: the kernel gave only %lu of %lu hugepages%s: memory is short or "
			"fragmented; free some (echo 3 > /proc/sys/vm/drop_caches; echo 1 > "
			"/proc/sys/vm/compact_memory) and retry, or reserve them at boot with "
			"hugepages=%lu on the kernel command line\n",
			prg, got, want, where, want);
		return 1;
	}
	return 0;
}

static int parse_hugepages(const char *s, unsigned long *n, long *node)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*n = strtoul(s, &end, 10);
	if (errno || *n > (1ul << 31))
		return -EINVAL;
	*node = -1;
	if (*end == ',') {
		s = end + 1;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		*node = strtol(s, &end, 10);
		if (errno || *node > 1023)
			return -EINVAL;
	}
	return *end ? -EINVAL : 0;
}

enum { OPT_HUGEPAGES = 256, OPT_MODEL, OPT_SYSFS };

static const struct option opts[] = {
	{ "status", no_argument, NULL, 's' },
	{ "bind", required_argument, NULL, 'b' },
	{ "unbind", no_argument, NULL, 'u' },
	{ "hugepages", required_argument, NULL, OPT_HUGEPAGES },
	{ "model", required_argument, NULL, OPT_MODEL },
	{ "sysfs", required_argument, NULL, OPT_SYSFS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	const char *driver = NULL, *model_spec = NULL, *sysfs = NULL, *hp_arg = NULL;
	enum action act = ACT_NONE;
	struct upmd_model *model = NULL;
	unsigned long hp_n = 0;
	long hp_node = -1;
	int opt, i, rc;

	if (argc > 0 && argv[0]) {
		const char *slash = strrchr(argv[0], '/');

		prg = slash ? slash + 1 : argv[0];
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":sb:uh", opts, NULL)) != -1) {
		enum action a = ACT_NONE;

		switch (opt) {
		case 's':
			a = ACT_STATUS;
			break;
		case 'b':
			a = ACT_BIND;
			driver = optarg;
			break;
		case 'u':
			a = ACT_UNBIND;
			break;
		case OPT_HUGEPAGES:
			a = ACT_HUGEPAGES;
			hp_arg = optarg;
			break;
		case OPT_MODEL:
			model_spec = optarg;
			break;
		case OPT_SYSFS:
			sysfs = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
		if (a != ACT_NONE) {
			if (act != ACT_NONE && act != a)
				return usage_error("one action per run (--status, --bind, --unbind or "
						   "--hugepages)");
			act = a;
		}
	}
	if (act == ACT_NONE)
		return usage_error("no action given");
	if (act == ACT_BIND && upmd_pci_addr_parse(driver, &(struct upmd_pci_addr){ 0 }) == 0)
		return usage_error("--bind takes the driver first: --bind vfio-pci %s", driver);
	if ((act == ACT_BIND || act == ACT_UNBIND) && optind == argc)
		return usage_error("%s needs at least one PCI address",
				   act == ACT_BIND ? "--bind" : "--unbind");
	if ((act == ACT_STATUS || act == ACT_HUGEPAGES) && optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (act == ACT_BIND && (!*driver || strchr(driver, '/') || driver[0] == '-'))
		return usage_error("'%s' is not a kernel driver name (e.g. --bind vfio-pci BDF)",
				   driver);
	for (i = optind; i < argc; i++) {
		struct upmd_pci_addr a;

		if (upmd_pci_addr_parse(argv[i], &a) < 0)
			return usage_error("'%s' is not a PCI address (expected e.g. 0000:03:00.0)",
					   argv[i]);
	}
	if (act == ACT_HUGEPAGES) {
		if (parse_hugepages(hp_arg, &hp_n, &hp_node) < 0)
			return usage_error("invalid --hugepages '%s' (expected N or N,NODE)", hp_arg);
		/* The model has no hugepage pools: a demo must not resize the
		 * real machine's by accident. */
		if (model_spec && !sysfs)
			return usage_error("--hugepages acts on the real kernel; with --model give "
					   "--sysfs DIR too");
	}

	if (model_spec) {
		rc = upmd_model_install(model_spec, &model);
		if (rc < 0)
			return usage_error("invalid --model '%s'", model_spec);
	}

	switch (act) {
	case ACT_STATUS:
		rc = do_status();
		break;
	case ACT_BIND:
		rc = do_bind(driver, argv + optind, argc - optind);
		break;
	case ACT_UNBIND:
		rc = do_unbind(argv + optind, argc - optind);
		break;
	default:
		rc = do_hugepages(sysfs ? sysfs : "/sys", hp_n, hp_node);
		break;
	}

	if (model) {
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(model);
	}
	return rc;
}
