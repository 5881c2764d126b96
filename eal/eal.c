/* EAL init and cleanup: DPDK-style arguments, then model, buses, IOAS, memory and lcores in that order. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/bus.h>
#include <upmd/eal.h>
#include <upmd/ioas.h>
#include <upmd/kops.h>
#include <upmd/log.h>
#include <upmd/model.h>

#include "eal_private.h"

#define MAX_ALLOW 64
#define MAX_VDEV 32

/* Everything the arguments ask for; filled by parse_args(), which
 * allocates nothing, so a usage error leaves nothing behind. */
struct eal_args {
	bool lcores[UPMD_MAX_LCORE];
	bool lcores_given;
	const char *allow[MAX_ALLOW];
	unsigned n_allow;
	const char *vdev[MAX_VDEV];
	unsigned n_vdev;
	struct eal_mem_conf mem;
	enum upmd_iova_mode iova_mode;
	enum upmd_ioas_backend backend;
	int log_level;
	const char *model_spec;
	bool help;
};

static struct {
	bool initialized;
	bool usage_error;
	bool help;
	struct eal_args args;
	enum upmd_iova_mode iova_mode;
	struct upmd_ioas *ioas;
	struct upmd_model *model;	/* installed by --model: ours to destroy */
} eal;

enum {
	OPT_HELP = 'h',
	OPT_LCORES = 'l',
	OPT_ALLOW = 'a',
	OPT_MEM = 'm',
	OPT_CHANNELS = 'n',
	OPT_LONG_BASE = 256,
	OPT_VDEV,
	OPT_SOCKET_MEM,
	OPT_HUGE_DIR,
	OPT_NO_HUGE,
	OPT_IOVA_MODE,
	OPT_IOMMU,
	OPT_LOG_LEVEL,
	OPT_MODEL,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, OPT_HELP },
	{ "lcores", required_argument, NULL, OPT_LCORES },
	{ "allow", required_argument, NULL, OPT_ALLOW },
	{ "vdev", required_argument, NULL, OPT_VDEV },
	{ "socket-mem", required_argument, NULL, OPT_SOCKET_MEM },
	{ "huge-dir", required_argument, NULL, OPT_HUGE_DIR },
	{ "no-huge", no_argument, NULL, OPT_NO_HUGE },
	{ "iova-mode", required_argument, NULL, OPT_IOVA_MODE },
	{ "iommu", required_argument, NULL, OPT_IOMMU },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "model", required_argument, NULL, OPT_MODEL },
	{ NULL, 0, NULL, 0 },
};

void upmd_eal_usage(const char *prgname)
{
	printf("Usage: %s [EAL options] -- [application options]\n"
	       "\n"
	       "EAL options:\n"
	       "  -l, --lcores LIST      lcores to run on, e.g. 0-3,5 (default: every CPU this\n"
	       "                         process may use); the first is the main lcore\n"
	       "  -a, --allow BDF        use this PCI device (repeatable; default: every device\n"
	       "                         bound to vfio-pci)\n"
	       "  --vdev NAME[,ARGS]     add a virtual device (repeatable)\n"
	       "  -m MB                  memory to reserve (default %llu)\n"
	       "  --socket-mem MB,MB...  memory per NUMA node\n"
	       "  --huge-dir DIR         hugetlbfs mount to use\n"
	       "  --no-huge              use anonymous 4 KiB pages instead of hugepages\n"
	       "  --iova-mode va|alloc   IOVA = VA, or IOVAs from the allocator (default: va when\n"
	       "                         the IOMMU's allowed ranges cover the memory)\n"
	       "  --iommu iommufd|type1  IOMMU backend (default: iommufd when /dev/iommu exists)\n"
	       "  --log-level LEVEL      err, warning, notice, info, debug or 0-7\n"
	       "  --model SPEC           run on the in-process model of the kernel and devices,\n"
	       "                         e.g. 'edu@0000:00:04.0' (see docs/model.md)\n"
	       "  -n N                   accepted for DPDK compatibility, ignored\n"
	       "  -h, --help             this text\n",
	       prgname, (unsigned long long)(EAL_DEFAULT_MEM / UPMD_MB));
}

static int __upmd_printf(2, 3) usage_error(const char *prgname, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prgname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for the EAL options.\n", prgname);
	return -EINVAL;
}

static int parse_socket_mem(const char *s, struct eal_mem_conf *mem)
{
	char buf[256], *tok, *save = NULL;
	unsigned node = 0;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (node >= UPMD_MAX_NUMA_NODES || eal_parse_mb(tok, &mem->socket_mem[node]) < 0)
			return -EINVAL;
		node++;
	}
	if (node == 0)
		return -EINVAL;
	mem->socket_mem_given = true;
	return 0;
}

static int valid_device_name(const char *name)
{
	struct upmd_bus *b;

	for (b = upmd_bus_first(); b; b = b->next)
		if (b->parse && b->parse(name) == 0)
			return 0;
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct eal_args *a)
{
	const char *prg = argc > 0 && argv[0] ? argv[0] : "upmd";
	int end, opt, idx, rc;

	memset(a, 0, sizeof(*a));
	a->log_level = -1;
	/* Only what precedes "--" is ours; getopt must not see the rest. */
	for (end = 1; end < argc; end++)
		if (!strcmp(argv[end], "--"))
			break;

	optind = 0;	/* glibc: full re-initialisation, so init can run twice */
	opterr = 0;
	while ((opt = getopt_long(end, argv, "+:hl:a:m:n:", long_opts, &idx)) != -1) {
		switch (opt) {
		case OPT_HELP:
			a->help = true;
			break;
		case OPT_LCORES:
			if (eal_parse_lcores(optarg, a->lcores) < 0)
				return usage_error(prg, "invalid lcore list '%s' (expected e.g. 0-3,5)", optarg);
			if (eal_lcores_check(a->lcores) < 0)
				return usage_error(prg, "lcore list '%s' names CPUs this process cannot use", optarg);
			a->lcores_given = true;
			break;
		case OPT_ALLOW:
			if (valid_device_name(optarg) < 0)
				return usage_error(prg, "invalid device '%s' for -a (expected a PCI address such as 0000:00:04.0)", optarg);
			if (a->n_allow == MAX_ALLOW)
				return usage_error(prg, "too many -a options (at most %d)", MAX_ALLOW);
			a->allow[a->n_allow++] = optarg;
			break;
		case OPT_VDEV:
			if (!*optarg)
				return usage_error(prg, "empty --vdev");
			if (a->n_vdev == MAX_VDEV)
				return usage_error(prg, "too many --vdev options (at most %d)", MAX_VDEV);
			a->vdev[a->n_vdev++] = optarg;
			break;
		case OPT_MEM:
			if (eal_parse_mb(optarg, &a->mem.total) < 0 || a->mem.total == 0)
				return usage_error(prg, "invalid memory size '%s' for -m (megabytes)", optarg);
			break;
		case OPT_CHANNELS:
			break;
		case OPT_SOCKET_MEM:
			if (parse_socket_mem(optarg, &a->mem) < 0)
				return usage_error(prg, "invalid --socket-mem '%s' (expected MB per node, e.g. 512,512)", optarg);
			break;
		case OPT_HUGE_DIR:
			a->mem.huge_dir = optarg;
			break;
		case OPT_NO_HUGE:
			a->mem.no_huge = true;
			break;
		case OPT_IOVA_MODE:
			if (!strcmp(optarg, "va"))
				a->iova_mode = UPMD_IOVA_MODE_VA;
			else if (!strcmp(optarg, "alloc") || !strcmp(optarg, "pa"))
				a->iova_mode = UPMD_IOVA_MODE_ALLOC;
			else
				return usage_error(prg, "invalid --iova-mode '%s' (expected va or alloc)", optarg);
			break;
		case OPT_IOMMU:
			if (!strcmp(optarg, "iommufd"))
				a->backend = UPMD_IOAS_BACKEND_IOMMUFD;
			else if (!strcmp(optarg, "type1"))
				a->backend = UPMD_IOAS_BACKEND_TYPE1;
			else
				return usage_error(prg, "invalid --iommu '%s' (expected iommufd or type1)", optarg);
			break;
		case OPT_LOG_LEVEL:
			rc = upmd_log_parse_level(optarg);
			if (rc < 0)
				return usage_error(prg, "invalid --log-level '%s' (err, warning, notice, info, debug or 0-7)", optarg);
			a->log_level = rc;
			break;
		case OPT_MODEL:
			a->model_spec = optarg;
			break;
		case ':':
			return usage_error(prg, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error(prg, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < end)
		return usage_error(prg, "unexpected argument '%s' (application options go after --)", argv[optind]);
	if (a->mem.total && a->mem.socket_mem_given)
		return usage_error(prg, "-m and --socket-mem are mutually exclusive");
	if (a->mem.no_huge && a->mem.socket_mem_given)
		return usage_error(prg, "--socket-mem needs hugepages; with --no-huge use -m");
	return end < argc ? end + 1 : end;
}

static int default_lcores(bool *set)
{
	cpu_set_t cpus;
	unsigned i, n = 0;

	if (sched_getaffinity(0, sizeof(cpus), &cpus) < 0)
		return -errno;
	for (i = 0; i < UPMD_MAX_LCORE && i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &cpus)) {
			set[i] = true;
			n++;
		}
	return n ? 0 : -ENODEV;
}

static struct upmd_bus_conf bus_conf(void)
{
	struct upmd_bus_conf c = {
		.allow = eal.args.allow,
		.n_allow = eal.args.n_allow,
	};
	return c;
}

static void buses_cleanup(void)
{
	struct upmd_bus *b;

	for (b = upmd_bus_first(); b; b = b->next)
		if (b->cleanup)
			b->cleanup();
}

static int open_ioas(void)
{
	struct upmd_ioas_conf conf = {
		.size = sizeof(conf),
		.flags = eal.args.n_allow ? 0 : UPMD_IOAS_F_OPTIONAL,
		.backend = eal.args.backend,
	};
	int rc;

	rc = upmd_ioas_open(&conf, &eal.ioas);
	if (rc == -ENODEV && eal.args.n_allow == 0) {
		/* Nothing asked for a device: run without one (memory only,
		 * virtual devices); the IOAS's absence is worth a notice. */
		UPMD_NOTICE("eal", "no IOMMU interface (/dev/iommu, /dev/vfio/vfio): running without PCI devices");
		eal.ioas = NULL;
		return 0;
	}
	if (rc < 0) {
		if (eal.args.n_allow)
			UPMD_ERR("eal", "devices were asked for with -a but no IOAS could be opened (%s)",
				 strerror(-rc));
		return rc;
	}
	upmd_ioas_set_default(eal.ioas);
	return 0;
}

int upmd_eal_init(int argc, char **argv)
{
	const char *prg = argc > 0 && argv[0] ? argv[0] : "upmd";
	struct upmd_bus_conf bc;
	struct upmd_bus *b;
	int consumed, rc;

	eal.usage_error = false;
	eal.help = false;
	if (eal.initialized)
		return -EALREADY;

	consumed = parse_args(argc, argv, &eal.args);
	if (consumed < 0) {
		eal.usage_error = true;
		return consumed;
	}
	if (eal.args.help) {
		upmd_eal_usage(prg);
		eal.help = true;
		return -ECANCELED;
	}
	if (eal.args.log_level >= 0)
		upmd_log_set_level(eal.args.log_level);
	if (!eal.args.lcores_given) {
		rc = default_lcores(eal.args.lcores);
		if (rc < 0)
			return rc;
	}

	if (eal.args.model_spec) {
		rc = upmd_model_install(eal.args.model_spec, &eal.model);
		if (rc < 0) {
			UPMD_ERR("eal", "invalid --model '%s'", eal.args.model_spec);
			eal.usage_error = true;
			return rc;
		}
	}

	/* Scan first: a missing or unbound device is reported before any
	 * memory is reserved or any IOMMU state is created. */
	bc = bus_conf();
	for (b = upmd_bus_first(); b; b = b->next) {
		rc = b->scan ? b->scan(&bc) : 0;
		if (rc < 0)
			goto err_buses;
	}

	rc = open_ioas();
	if (rc < 0)
		goto err_buses;

	rc = eal_memory_init(&eal.args.mem);
	if (rc < 0)
		goto err_ioas;

	/* Attach before mapping: an attach may add reserved ranges and
	 * narrow the aperture, which decides the IOVA mode. */
	for (b = upmd_bus_first(); b; b = b->next) {
		rc = b->attach ? b->attach(eal.ioas) : 0;
		if (rc < 0)
			goto err_memory;
	}

	eal.iova_mode = eal.args.iova_mode;
	if (eal.ioas) {
		rc = eal_memory_map_ioas(eal.ioas, eal.args.iova_mode, &eal.iova_mode);
		if (rc < 0)
			goto err_memory;
	}

	rc = eal_lcores_init(eal.args.lcores);
	if (rc < 0)
		goto err_unmap;

	for (b = upmd_bus_first(); b; b = b->next) {
		rc = b->probe ? b->probe() : 0;
		if (rc < 0)
			goto err_lcores;
	}

	eal.initialized = true;
	UPMD_INFO("eal", "initialised: %u lcores, %zu MiB in %u segments, IOMMU %s, IOVA mode %s",
		  upmd_lcore_count(), (size_t)(upmd_mem_total(UPMD_SOCKET_ID_ANY) / UPMD_MB),
		  upmd_memseg_count(), eal.ioas ? upmd_ioas_backend_name(eal.ioas) : "none",
		  upmd_iova_mode_name(eal.iova_mode));
	return consumed;

err_lcores:
	eal_lcores_cleanup();
err_unmap:
err_memory:
	/* Devices stop (bus master off, detached) before their memory goes. */
	buses_cleanup();
	eal_memory_unmap_ioas();
	eal_memory_cleanup();
err_ioas:
	if (eal.ioas) {
		upmd_ioas_set_default(NULL);
		upmd_ioas_close(eal.ioas);
		eal.ioas = NULL;
	}
err_buses:
	buses_cleanup();
	if (eal.model) {
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(eal.model);
		eal.model = NULL;
	}
	return rc;
}

int upmd_eal_exit_code(int rc)
{
	if (rc >= 0)
		return 0;
	if (eal.help)
		return 0;
	return eal.usage_error ? 2 : 1;
}

int upmd_eal_cleanup(void)
{
	if (!eal.initialized)
		return -EALREADY;
	/* Devices first, so no DMA is in flight when memory is unmapped. */
	buses_cleanup();
	eal_lcores_cleanup();
	eal_mempool_cleanup();
	eal_ring_cleanup();
	eal_iova_map_cleanup();
	eal_memory_unmap_ioas();
	eal_memory_cleanup();
	if (eal.ioas) {
		upmd_ioas_set_default(NULL);
		upmd_ioas_close(eal.ioas);
		eal.ioas = NULL;
	}
	if (eal.model) {
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(eal.model);
		eal.model = NULL;
	}
	eal.initialized = false;
	return 0;
}

bool upmd_eal_initialized(void)
{
	return eal.initialized;
}

enum upmd_iova_mode upmd_eal_iova_mode(void)
{
	return eal.iova_mode;
}

const char *upmd_iova_mode_name(enum upmd_iova_mode m)
{
	switch (m) {
	case UPMD_IOVA_MODE_VA:
		return "va";
	case UPMD_IOVA_MODE_ALLOC:
		return "alloc";
	default:
		return "auto";
	}
}

unsigned upmd_eal_vdev_count(void)
{
	return eal.args.n_vdev;
}

const char *upmd_eal_vdev(unsigned i)
{
	return i < eal.args.n_vdev ? eal.args.vdev[i] : NULL;
}
