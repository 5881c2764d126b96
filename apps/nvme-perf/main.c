/* upmd-nvme-perf: spdk_nvme_perf's measurements over the upmd NVMe driver: queue depth per queue pair, workloads, latency percentiles, data verification. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf.h"

/* With no device in the EAL arguments: the model NVMe controller (the
 * in-process model of the kernel and of the device), driven by the real
 * driver through the model's iommufd and vfio cdev. The model needs no
 * hugepages. */
#define EMBEDDED_BDF "0000:00:04.0"
static const char *const embedded_devices[] = {
	"--model", "nvme@" EMBEDDED_BDF,
	"-a", EMBEDDED_BDF,
};
static const char *const embedded_memory[] = { "--no-huge" };
static const char *const embedded_mem_size[] = { "-m", "256" };
/* ...and a run that proves the data path: mixed random I/O, verified. */
#define EMBEDDED_WORKLOAD WL_RANDRW
#define EMBEDDED_RWMIXREAD 70
#define EMBEDDED_TIME 2.0

#define MAX_CTRLRS 32
#define DEFAULT_VERIFY_SIZE (64 * UPMD_MB)

struct perf_conf pc;
const char *const workload_names[WL_COUNT] = { "read", "write", "randread", "randwrite", "rw", "randrw" };
volatile sig_atomic_t quit_signal;
double tsc_hz;

/* Human-readable output: stdout, or stderr with --json (which then owns stdout). */
static FILE *txt;

/* One namespace the run uses. */
struct sel_ns {
	struct upmd_nvme_ns *ns;
	struct upmd_nvme_ctrlr *ctrlr;
	const char *dev;
	uint32_t nsid;
	uint64_t n_ios;
	uint32_t io_blocks, pf_blocks;
};

static struct upmd_nvme_ctrlr *ctrlrs[MAX_CTRLRS];
static unsigned n_ctrlrs;
static struct sel_ns *sel;
static unsigned n_sel;
static struct ns_ctx **ctxs;
static unsigned n_ctx;
static struct lcore_work *works;
static unsigned n_works;

static void on_signal(int sig)
{
	quit_signal = sig;
}

/* ---- options ---- */

static void usage(const char *prg)
{
	printf("usage: %s [EAL options] -- [options]\n"
	       "  -q, --io-depth N       requests outstanding per queue pair (default 32)\n"
	       "  -o, --io-size BYTES    bytes per I/O, a multiple of the sector size, at most the\n"
	       "                         controller's max transfer (default 4096; k, m suffixes)\n"
	       "  -w, --workload W       read, write, randread, randwrite, rw, randrw (default randread)\n"
	       "  -M, --rwmixread PCT    reads in percent of rw/randrw (default 50)\n"
	       "  -t, --time SEC         measured seconds, fractions allowed (default 5; 0: until\n"
	       "                         SIGINT/SIGTERM)\n"
	       "      --warmup SEC       run this long before measuring (default 0)\n"
	       "  -n, --ns NSID[,NSID]   namespaces (on every controller that has them; default:\n"
	       "                         every active namespace of every controller)\n"
	       "      --verify           write a pattern of LBA, namespace and seed, check every read\n"
	       "                         byte for byte; the region is written first\n"
	       "      --verify-size B    bytes of each namespace verify uses (default the smaller of\n"
	       "                         the namespace and 64 MiB)\n"
	       "      --no-verify        turn verify off (the embedded default has it on)\n"
	       "      --seed N           seed of the pattern and the random offsets (default: new per run)\n"
	       "      --sgl              use SGLs for data where the controller offers them\n"
	       "      --json             one JSON object on stdout (the table goes to stderr)\n"
	       "  -h, --help             this text\n"
	       "Lcores come from the EAL's -l (default: one); every lcore, the main one too,\n"
	       "drives one queue pair per namespace. Exit status: 0, 1 on an I/O error or a\n"
	       "verify mismatch (or an environment failure), 2 for a usage error.\n"
	       "With no device in the EAL options it runs on its embedded default: the model NVMe\n"
	       "controller at %s (the in-process model of the kernel and the device),\n"
	       "-w randrw -M %d --verify -t %.0f -q 32 -o 4096.\n",
	       prg, EMBEDDED_BDF, EMBEDDED_RWMIXREAD, EMBEDDED_TIME);
}

static __upmd_printf(2, 3) int bad(const char *prg, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prg);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s -- --help'.\n", prg);
	return -EINVAL;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Bytes, with an optional binary suffix k, m or g. */
static int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v, mult = 1;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K':
		mult = UPMD_KB;
		end++;
		break;
	case 'm': case 'M':
		mult = UPMD_MB;
		end++;
		break;
	case 'g': case 'G':
		mult = UPMD_GB;
		end++;
		break;
	default:
		break;
	}
	if (*end || v > max / mult || v * mult < min)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e7)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_VERIFY = 256, OPT_NO_VERIFY, OPT_VERIFY_SIZE, OPT_JSON, OPT_SGL, OPT_WARMUP, OPT_SEED, OPT_HELP,
};

struct given {
	bool workload, rwmix, time, verify, verify_size, seed;
};

static int parse_app_args(const char *prg, int argc, char **argv, struct given *g)
{
	static const struct option opts[] = {
		{ "io-depth", required_argument, NULL, 'q' },
		{ "io-size", required_argument, NULL, 'o' },
		{ "workload", required_argument, NULL, 'w' },
		{ "rwmixread", required_argument, NULL, 'M' },
		{ "time", required_argument, NULL, 't' },
		{ "ns", required_argument, NULL, 'n' },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
		{ "verify-size", required_argument, NULL, OPT_VERIFY_SIZE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "sgl", no_argument, NULL, OPT_SGL },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt, w;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":q:o:w:M:t:n:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			if (parse_u64(optarg, 1, 65535, &v))
				return bad(prg, "-q/--io-depth '%s': give the requests to keep outstanding per queue pair, 1 to 65535",
					   optarg);
			pc.io_depth = (uint32_t)v;
			break;
		case 'o':
			if (parse_size(optarg, 1, UINT32_MAX, &v))
				return bad(prg, "-o/--io-size '%s': give bytes per I/O (e.g. 4096 or 64k), a multiple of the sector size",
					   optarg);
			pc.io_size = (uint32_t)v;
			break;
		case 'w':
			for (w = 0; w < WL_COUNT && strcmp(optarg, workload_names[w]); w++)
				;
			if (w == WL_COUNT)
				return bad(prg, "unknown -w/--workload '%s' (read, write, randread, randwrite, rw, randrw)", optarg);
			pc.workload = (enum workload)w;
			g->workload = true;
			break;
		case 'M':
			if (parse_u64(optarg, 0, 100, &v))
				return bad(prg, "-M/--rwmixread '%s': give the percentage of reads, 0 to 100", optarg);
			pc.rwmixread = (unsigned)v;
			g->rwmix = true;
			break;
		case 't':
			if (parse_seconds(optarg, &pc.time_s))
				return bad(prg, "-t/--time '%s': give seconds to measure, e.g. 5 or 0.5 (0: until SIGINT)", optarg);
			g->time = true;
			break;
		case 'n': {
			char buf[512], *save = NULL, *tok;

			if (strlen(optarg) >= sizeof(buf))
				return bad(prg, "-n/--ns '%s': too long", optarg);
			strcpy(buf, optarg);
			pc.n_nsids = 0;
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (pc.n_nsids == MAX_NSIDS || parse_u64(tok, 1, 0xfffffffe, &v))
					return bad(prg, "-n/--ns '%s': give namespace ids (1 or more) separated by commas, at most %d",
						   optarg, MAX_NSIDS);
				pc.nsids[pc.n_nsids++] = (uint32_t)v;
			}
			if (!pc.n_nsids)
				return bad(prg, "-n/--ns '%s': give namespace ids (1 or more) separated by commas", optarg);
			break;
		}
		case OPT_VERIFY:
			pc.verify = true;
			g->verify = true;
			break;
		case OPT_NO_VERIFY:
			pc.verify = false;
			g->verify = true;
			break;
		case OPT_VERIFY_SIZE:
			if (parse_size(optarg, 1, UINT64_MAX, &v))
				return bad(prg, "--verify-size '%s': give bytes (e.g. 16m) of each namespace to verify", optarg);
			pc.verify_size = v;
			g->verify_size = true;
			break;
		case OPT_JSON:
			pc.json = true;
			break;
		case OPT_SGL:
			pc.sgl = true;
			break;
		case OPT_WARMUP:
			if (parse_seconds(optarg, &pc.warmup_s))
				return bad(prg, "--warmup '%s': give seconds, 0 or more", optarg);
			break;
		case OPT_SEED:
			if (parse_u64(optarg, 0, UINT64_MAX, &pc.seed))
				return bad(prg, "--seed '%s': give a number", optarg);
			g->seed = true;
			break;
		case OPT_HELP:
		case 'h':
			usage(prg);
			return 1;
		case ':':
			return bad(prg, "option '%s' needs a value", argv[optind - 1]);
		default:
			return bad(prg, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad(prg, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* After the embedded default's values are in: what only makes sense together. */
static int check_app_args(const char *prg, const struct given *g)
{
	if (g->rwmix && !wl_mixed(pc.workload))
		return bad(prg, "-M/--rwmixread applies to the rw and randrw workloads, not %s: add -w randrw or -w rw",
			   workload_names[pc.workload]);
	if (g->verify_size && !pc.verify)
		return bad(prg, "--verify-size needs --verify");
	if (!wl_mixed(pc.workload))
		pc.rwmixread = pc.workload == WL_READ || pc.workload == WL_RANDREAD ? 100 : 0;
	return 0;
}

static bool is_opt(const char *a, const char *shrt, const char *lng)
{
	size_t n = strlen(lng);

	return (shrt && !strncmp(a, shrt, 2)) || (!strncmp(a, lng, n) && (a[n] == '\0' || a[n] == '='));
}

/* Whether the EAL part of the command line names any device (testpmd's test). */
static bool has_devices(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-a") || !strncmp(argv[i], "--allow", 7) || !strncmp(argv[i], "--vdev", 6) ||
		    !strncmp(argv[i], "--model", 7) || !strncmp(argv[i], "-a", 2))
			return true;
	return false;
}

static bool has_eal_opt(int argc, char **argv, const char *shrt, const char *lng)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (is_opt(argv[i], shrt, lng))
			return true;
	return false;
}

/* The first CPU this process may run on: the one lcore of the default. */
static int first_cpu(void)
{
	cpu_set_t set;
	int i;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (i = 0; i < CPU_SETSIZE && i < UPMD_MAX_LCORE; i++)
			if (CPU_ISSET(i, &set))
				return i;
	return 0;
}

/* ---- the clock ---- */

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* TSC ticks per second, against CLOCK_MONOTONIC over 50 ms. */
static double measure_tsc_hz(void)
{
	struct timespec d = { 0, 50 * 1000 * 1000 };
	double m0, m1;
	uint64_t t0, t1;

	m0 = mono_s();
	t0 = tsc_now();
	while (nanosleep(&d, &d) < 0 && errno == EINTR)
		;
	m1 = mono_s();
	t1 = tsc_now();
	return (double)(t1 - t0) / (m1 - m0);
}

static double ticks_us(uint64_t t)
{
	return (double)t * 1e6 / tsc_hz;
}

/* ---- controllers and namespaces ---- */

static bool probe_cb(void *arg, const struct upmd_pci_device *dev, struct upmd_nvme_ctrlr_opts *opts)
{
	unsigned lcores = *(const unsigned *)arg;
	uint32_t want = lcores * (pc.n_nsids ? pc.n_nsids : 16);

	(void)dev;
	if (pc.sgl)
		opts->flags |= UPMD_NVME_CTRLR_F_SGL;
	/* One queue pair per lcore and namespace; the controller grants what it can. */
	if (want > 1024)
		want = 1024;
	if (opts->num_io_queues < want)
		opts->num_io_queues = want;
	return true;
}

static void trim(char *dst, const char *src, size_t n)
{
	size_t len = n;

	while (len && (src[len - 1] == ' ' || src[len - 1] == '\0'))
		len--;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int attach_all(const char *prg)
{
	unsigned lcores = upmd_lcore_count(), i;
	int rc;

	rc = upmd_nvme_probe(probe_cb, NULL, &lcores);
	if (rc < 0) {
		fprintf(stderr, "%s: attaching the NVMe controllers failed: %s (the log above says why)\n", prg, strerror(-rc));
		return -1;
	}
	n_ctrlrs = upmd_nvme_ctrlr_count();
	if (n_ctrlrs > MAX_CTRLRS)
		n_ctrlrs = MAX_CTRLRS;
	if (!n_ctrlrs) {
		fprintf(stderr, "%s: no NVMe controller: give one with -a BDF (an NVMe function, class 01:08:02, bound to "
			"vfio-pci), or --model 'nvme@0000:00:04.0' -a 0000:00:04.0 for the model\n", prg);
		return -1;
	}
	for (i = 0; i < n_ctrlrs; i++) {
		const struct upmd_nvme_ctrlr_data *cd;
		char mn[41], sn[21];

		ctrlrs[i] = upmd_nvme_ctrlr_get(i);
		cd = upmd_nvme_ctrlr_get_data(ctrlrs[i]);
		trim(mn, cd->mn, sizeof(cd->mn));
		trim(sn, cd->sn, sizeof(cd->sn));
		fprintf(txt, "Attached to NVMe controller at %s [%04x:%04x] %s (SN %s): %" PRIu32
			" I/O queue pairs, queues of up to %" PRIu32 " entries, max transfer %" PRIu32 " bytes, %s\n",
			upmd_nvme_ctrlr_get_pci(ctrlrs[i])->name, cd->vid, upmd_nvme_ctrlr_get_pci(ctrlrs[i])->id.device_id,
			mn, sn, upmd_nvme_ctrlr_max_io_qpairs(ctrlrs[i]), upmd_nvme_ctrlr_max_queue_size(ctrlrs[i]),
			upmd_nvme_ctrlr_max_xfer_size(ctrlrs[i]), upmd_nvme_ctrlr_uses_sgl(ctrlrs[i]) ? "SGLs" : "PRPs");
		if (pc.sgl && !upmd_nvme_ctrlr_uses_sgl(ctrlrs[i]))
			fprintf(stderr, "%s: --sgl: %s offers no SGLs (Identify SGLS is 0): using PRPs\n", prg,
				upmd_nvme_ctrlr_get_pci(ctrlrs[i])->name);
	}
	return 0;
}

static bool nsid_wanted(uint32_t nsid)
{
	unsigned i;

	if (!pc.n_nsids)
		return true;
	for (i = 0; i < pc.n_nsids; i++)
		if (pc.nsids[i] == nsid)
			return true;
	return false;
}

static void active_list(char *buf, size_t len)
{
	size_t off = 0;
	unsigned i;
	uint32_t id;

	buf[0] = '\0';
	for (i = 0; i < n_ctrlrs; i++) {
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s has", i ? "; " : "",
					upmd_nvme_ctrlr_get_pci(ctrlrs[i])->name);
		if (!upmd_nvme_ctrlr_first_active_ns(ctrlrs[i]))
			off += (size_t)snprintf(buf + off, off < len ? len - off : 0, " none");
		for (id = upmd_nvme_ctrlr_first_active_ns(ctrlrs[i]); id; id = upmd_nvme_ctrlr_next_active_ns(ctrlrs[i], id))
			off += (size_t)snprintf(buf + off, off < len ? len - off : 0, " %" PRIu32, id);
	}
}

/* Pick the namespaces and check the sizes against each. @return 0, or the exit code. */
static int select_namespaces(const char *prg)
{
	char list[512];
	unsigned i, k, cap = 0;
	uint32_t id;

	for (i = 0; i < n_ctrlrs; i++)
		cap += upmd_nvme_ctrlr_get_num_ns(ctrlrs[i]);
	sel = calloc(cap ? cap : 1, sizeof(*sel));
	if (!sel)
		return 1;
	for (k = 0; k < pc.n_nsids; k++) {
		bool found = false;

		for (i = 0; i < n_ctrlrs; i++)
			found |= upmd_nvme_ctrlr_get_ns(ctrlrs[i], pc.nsids[k]) != NULL;
		if (!found) {
			active_list(list, sizeof(list));
			fprintf(stderr, "%s: -n %" PRIu32 ": no attached controller has an active namespace %" PRIu32
				" (active namespaces: %s); give one of those\n", prg, pc.nsids[k], pc.nsids[k], list);
			return 2;
		}
	}
	for (i = 0; i < n_ctrlrs; i++) {
		struct upmd_nvme_ctrlr *ct = ctrlrs[i];
		const char *dev = upmd_nvme_ctrlr_get_pci(ct)->name;
		uint32_t max_xfer = upmd_nvme_ctrlr_max_xfer_size(ct), maxq = upmd_nvme_ctrlr_max_queue_size(ct);
		unsigned on_this = 0;

		for (id = upmd_nvme_ctrlr_first_active_ns(ct); id; id = upmd_nvme_ctrlr_next_active_ns(ct, id)) {
			struct upmd_nvme_ns *ns = upmd_nvme_ctrlr_get_ns(ct, id);
			struct sel_ns *s;
			uint32_t ss;
			uint64_t region, pf;

			if (!ns || !nsid_wanted(id) || n_sel == cap)
				continue;
			ss = upmd_nvme_ns_get_sector_size(ns);
			if (!ss || pc.io_size % ss) {
				fprintf(stderr, "%s: -o %" PRIu32 ": not a multiple of the sector size of %s nsid %" PRIu32
					" (%" PRIu32 " bytes): give a multiple of %" PRIu32 "\n", prg, pc.io_size, dev, id, ss, ss);
				return 2;
			}
			if (pc.io_size > max_xfer) {
				fprintf(stderr, "%s: -o %" PRIu32 ": more than %s moves in one command (max transfer %" PRIu32
					" bytes, from MDTS and the driver's limit): give at most %" PRIu32 "\n", prg, pc.io_size,
					dev, max_xfer, max_xfer);
				return 2;
			}
			region = upmd_nvme_ns_get_size(ns);
			if (pc.verify)
				region = UPMD_MIN(region, pc.verify_size);
			if (region < pc.io_size) {
				fprintf(stderr, "%s: -o %" PRIu32 ": larger than the %s%" PRIu64 " bytes of %s nsid %" PRIu32
					": give a smaller -o%s\n", prg, pc.io_size, pc.verify ? "verify region, " : "", region,
					dev, id, pc.verify ? " or a larger --verify-size" : "");
				return 2;
			}
			s = &sel[n_sel++];
			s->ns = ns;
			s->ctrlr = ct;
			s->dev = dev;
			s->nsid = id;
			s->n_ios = region / pc.io_size;
			s->io_blocks = pc.io_size / ss;
			/* The verify prefill moves up to PREFILL_XFER a command. */
			pf = UPMD_MAX((uint64_t)pc.io_size, UPMD_MIN((uint64_t)PREFILL_XFER, (uint64_t)max_xfer) /
								 pc.io_size * pc.io_size);
			s->pf_blocks = (uint32_t)(pf / ss);
			on_this++;
			fprintf(txt, "Namespace %s nsid %" PRIu32 ": %" PRIu64 " sectors of %" PRIu32 " bytes (%" PRIu64
				" MiB)%s", dev, id, upmd_nvme_ns_get_num_sectors(ns), ss,
				(uint64_t)(upmd_nvme_ns_get_size(ns) / UPMD_MB), pc.verify ? "" : "\n");
			if (pc.verify)
				fprintf(txt, ", verify region %" PRIu64 " bytes\n", s->n_ios * pc.io_size);
		}
		if (!on_this)
			continue;
		if (pc.io_depth + 1 > maxq) {
			fprintf(stderr, "%s: -q %" PRIu32 ": the I/O queues of %s hold at most %" PRIu32
				" entries (CAP.MQES + 1), so at most %" PRIu32 " requests outstanding: give -q %" PRIu32
				" or less\n", prg, pc.io_depth, dev, maxq, maxq - 1, maxq - 1);
			return 2;
		}
		if ((uint64_t)on_this * upmd_lcore_count() > upmd_nvme_ctrlr_max_io_qpairs(ct)) {
			fprintf(stderr, "%s: %u lcore(s) x %u namespace(s) need %u queue pairs on %s, which granted %" PRIu32
				": use fewer lcores (-l) or namespaces (-n)\n", prg, upmd_lcore_count(), on_this,
				upmd_lcore_count() * on_this, dev, upmd_nvme_ctrlr_max_io_qpairs(ct));
			return 2;
		}
	}
	if (!n_sel) {
		active_list(list, sizeof(list));
		fprintf(stderr, "%s: no active namespace to run on (%s)\n", prg, list);
		return 1;
	}
	return 0;
}

/* Zeroed room for @n cache-aligned objects (calloc only aligns to 16). */
static void *calloc_lines(size_t n, size_t size)
{
	size_t bytes = UPMD_ALIGN_UP(n * size, (size_t)UPMD_CACHE_LINE_SIZE);
	void *p = aligned_alloc(UPMD_CACHE_LINE_SIZE, bytes ? bytes : UPMD_CACHE_LINE_SIZE);

	if (p)
		memset(p, 0, bytes);
	return p;
}

/* Per lcore, a queue pair and io-depth buffers per namespace. @return 0, or the exit code. */
static int setup_contexts(const char *prg)
{
	unsigned lc, l, s, i;
	int rc;

	n_works = upmd_lcore_count();
	works = calloc_lines(n_works, sizeof(*works));
	ctxs = calloc_lines((size_t)n_works * n_sel, sizeof(*ctxs));
	if (!works || !ctxs)
		return 1;
	l = 0;
	works[l++].lcore = upmd_get_main_lcore();
	UPMD_LCORE_FOREACH_WORKER(lc)
		if (l < n_works)
			works[l++].lcore = lc;
	n_works = l;
	for (l = 0; l < n_works; l++) {
		struct lcore_work *w = &works[l];

		w->ctx = &ctxs[(size_t)l * n_sel];
		w->n_lcores = n_works;
		for (s = 0; s < n_sel; s++) {
			struct upmd_nvme_io_qpair_opts qo = { .size = sizeof(qo) };
			const struct sel_ns *sn = &sel[s];
			struct ns_ctx *c;
			char name[32];
			uint32_t stride;

			c = aligned_alloc(UPMD_CACHE_LINE_SIZE, UPMD_ALIGN_UP(sizeof(*c), UPMD_CACHE_LINE_SIZE));
			if (!c)
				return 1;
			memset(c, 0, sizeof(*c));
			ctxs[n_ctx++] = c;
			w->ctx[w->n_ctx++] = c;
			c->ns = sn->ns;
			c->nsid = sn->nsid;
			c->dev = sn->dev;
			c->lcore = w->lcore;
			c->lcore_idx = l;
			c->sector_size = upmd_nvme_ns_get_sector_size(sn->ns);
			c->io_blocks = sn->io_blocks;
			c->n_ios = sn->n_ios;
			c->region_blocks = sn->n_ios * sn->io_blocks;
			c->pf_blocks = sn->pf_blocks;
			c->pf_chunks = (c->region_blocks + c->pf_blocks - 1) / c->pf_blocks;
			/* Sequential workloads: lcores start spread over the region. */
			c->seq_next = c->n_ios * l / n_works;
			c->rng = pc.seed ^ (0x9e3779b97f4a7c15ull * (n_ctx + 1));
			if (!c->rng)
				c->rng = 1;
			c->buf_size = pc.verify && pc.rwmixread ? c->pf_blocks * c->sector_size : pc.io_size;
			stride = UPMD_ALIGN_UP(c->buf_size, 4096u);

			qo.qsize = UPMD_MIN(pc.io_depth + 2, upmd_nvme_ctrlr_max_queue_size(sn->ctrlr));
			rc = upmd_nvme_ctrlr_alloc_io_qpair(sn->ctrlr, &qo, &c->qp);
			if (rc < 0) {
				c->qp = NULL;
				fprintf(stderr, "%s: %s: cannot create an I/O queue pair of %" PRIu32 " entries for lcore %u: %s%s\n",
					prg, sn->dev, qo.qsize, w->lcore, strerror(-rc),
					rc == -ENOSPC ? " (every granted queue is in use: use fewer lcores or namespaces)" : "");
				return rc == -ENOSPC || rc == -EINVAL ? 2 : 1;
			}
			snprintf(name, sizeof(name), "nvme_perf_%u", n_ctx);
			rc = upmd_memzone_reserve(name, (size_t)stride * pc.io_depth, UPMD_SOCKET_ID_ANY, 4096, &c->mz);
			if (rc < 0) {
				c->mz = NULL;
				fprintf(stderr, "%s: cannot reserve %zu bytes of I/O buffers for lcore %u (%s): give the EAL more "
					"memory (-m) or use a smaller -q or -o\n", prg, (size_t)stride * pc.io_depth, w->lcore,
					strerror(-rc));
				return 1;
			}
			c->reqs = calloc(pc.io_depth, sizeof(*c->reqs));
			if (!c->reqs)
				return 1;
			for (i = 0; i < pc.io_depth; i++) {
				c->reqs[i].ctx = c;
				c->reqs[i].buf = (uint8_t *)c->mz->addr + (size_t)i * stride;
			}
			fprintf(txt, "Associating %s nsid %" PRIu32 " with lcore %u (queue pair %u, %" PRIu32 " entries)\n",
				sn->dev, sn->nsid, w->lcore, upmd_nvme_qpair_get_id(c->qp), upmd_nvme_qpair_get_size(c->qp));
		}
	}
	return 0;
}

static void teardown(void)
{
	unsigned i;

	for (i = 0; i < n_ctx; i++) {
		struct ns_ctx *c = ctxs[i];

		if (c->qp)
			upmd_nvme_ctrlr_free_io_qpair(c->qp);
		if (c->mz)
			upmd_memzone_free(c->mz);
		free(c->reqs);
		free(c);
	}
	free(ctxs);
	free(works);
	free(sel);
	for (i = 0; i < n_ctrlrs; i++)
		upmd_nvme_detach(ctrlrs[i]);
	n_ctrlrs = 0;
}

/* ---- results ---- */

struct figures {
	uint64_t ios, reads, writes, bytes, errors, verify_reads, verify_blocks, mismatches;
	double elapsed, iops, mibs, avg_us, min_us, max_us, p50_us, p99_us, p999_us;
};

static void figures_of(const uint64_t *hist, uint64_t ios, uint64_t lat_sum, uint64_t lat_min, uint64_t lat_max,
		       struct figures *f)
{
	if (!ios) {
		f->avg_us = f->min_us = f->max_us = f->p50_us = f->p99_us = f->p999_us = 0;
		return;
	}
	f->avg_us = ticks_us(lat_sum) / (double)ios;
	f->min_us = ticks_us(lat_min);
	f->max_us = ticks_us(lat_max);
	f->p50_us = ticks_us(perf_hist_quantile(hist, ios, 0.50, lat_min, lat_max));
	f->p99_us = ticks_us(perf_hist_quantile(hist, ios, 0.99, lat_min, lat_max));
	f->p999_us = ticks_us(perf_hist_quantile(hist, ios, 0.999, lat_min, lat_max));
}

static void ctx_figures(const struct ns_ctx *c, struct figures *f)
{
	memset(f, 0, sizeof(*f));
	f->ios = c->st.ios;
	f->reads = c->st.reads;
	f->writes = c->st.writes;
	f->bytes = c->st.bytes;
	f->errors = c->errors;
	f->verify_reads = c->verify_reads;
	f->verify_blocks = c->verify_blocks;
	f->mismatches = c->mismatches;
	f->elapsed = c->t_end > c->t_start ? (double)(c->t_end - c->t_start) / tsc_hz : 0;
	f->iops = f->elapsed > 0 ? (double)f->ios / f->elapsed : 0;
	f->mibs = f->elapsed > 0 ? (double)f->bytes / f->elapsed / (double)UPMD_MB : 0;
	figures_of(c->st.hist, c->st.ios, c->st.lat_sum, c->st.lat_min, c->st.lat_max, f);
}

/* The Total row: rates add up, latencies over every I/O of every row. */
static void total_figures(struct figures *t)
{
	static uint64_t hist[HIST_BUCKETS];
	uint64_t lat_sum = 0, lat_min = UINT64_MAX, lat_max = 0;
	unsigned i, b;

	memset(t, 0, sizeof(*t));
	memset(hist, 0, sizeof(hist));
	for (i = 0; i < n_ctx; i++) {
		const struct ns_ctx *c = ctxs[i];
		struct figures f;

		ctx_figures(c, &f);
		t->ios += f.ios;
		t->reads += f.reads;
		t->writes += f.writes;
		t->bytes += f.bytes;
		t->errors += f.errors;
		t->verify_reads += f.verify_reads;
		t->verify_blocks += f.verify_blocks;
		t->mismatches += f.mismatches;
		t->iops += f.iops;
		t->mibs += f.mibs;
		t->elapsed = UPMD_MAX(t->elapsed, f.elapsed);
		if (!c->st.ios)
			continue;
		lat_sum += c->st.lat_sum;
		lat_min = UPMD_MIN(lat_min, c->st.lat_min);
		lat_max = UPMD_MAX(lat_max, c->st.lat_max);
		for (b = 0; b < HIST_BUCKETS; b++)
			hist[b] += c->st.hist[b];
	}
	figures_of(hist, t->ios, lat_sum, lat_min, lat_max, t);
}

static void print_row(const char *label, const struct figures *f)
{
	fprintf(txt, "%-36s: %11.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %8" PRIu64 "\n", label, f->iops,
		f->mibs, f->avg_us, f->min_us, f->max_us, f->p50_us, f->p99_us, f->p999_us, f->errors);
}

static uint64_t prefill_writes(void)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < n_ctx; i++)
		n += ctxs[i]->pf_writes;
	return n;
}

static void print_table(const struct figures *t)
{
	char label[64];
	unsigned i;

	fprintf(txt, "========================================================\n");
	fprintf(txt, "%*s%s\n", 36 + 2 + 12 + 11 + 1, "", "Latency(us)");
	fprintf(txt, "%-36s: %11s %10s %10s %10s %10s %10s %10s %10s %8s\n", "Device Information", "IOPS", "MiB/s",
		"Average", "min", "max", "p50", "p99", "p99.9", "errors");
	for (i = 0; i < n_ctx; i++) {
		struct figures f;

		ctx_figures(ctxs[i], &f);
		snprintf(label, sizeof(label), "%s NSID %" PRIu32 " from lcore %2u", ctxs[i]->dev, ctxs[i]->nsid,
			 ctxs[i]->lcore);
		print_row(label, &f);
	}
	fprintf(txt, "========================================================\n");
	print_row("Total", t);
	fprintf(txt, "\n");
	fprintf(txt, "errors: %" PRIu64 " (completions with an error status, failed submissions)\n", t->errors);
	if (pc.verify) {
		if (pc.rwmixread)
			fprintf(txt, "verify: %" PRIu64 " reads compared (%" PRIu64 " blocks), %" PRIu64
				" mismatches; the region was written first (%" PRIu64 " writes, %" PRIu64 " failed); seed 0x%016"
				PRIx64 "\n", t->verify_reads, t->verify_blocks, t->mismatches, prefill_writes(),
				perf_prefill_failed(), pc.seed);
		else
			fprintf(txt, "verify: write-only workload, every write carried the pattern, nothing was read back: "
				"0 reads compared, %" PRIu64 " mismatches; seed 0x%016" PRIx64 "\n", t->mismatches, pc.seed);
	}
}

static void json_figures(const struct figures *f)
{
	printf("\"ios\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"bytes\":%" PRIu64
	       ",\"elapsed_s\":%.6f,\"iops\":%.3f,\"mib_s\":%.3f,\"lat_avg_us\":%.3f,\"lat_min_us\":%.3f"
	       ",\"lat_max_us\":%.3f,\"lat_p50_us\":%.3f,\"lat_p99_us\":%.3f,\"lat_p999_us\":%.3f,\"errors\":%" PRIu64
	       ",\"verify_reads\":%" PRIu64 ",\"verify_blocks\":%" PRIu64 ",\"mismatches\":%" PRIu64,
	       f->ios, f->reads, f->writes, f->bytes, f->elapsed, f->iops, f->mibs, f->avg_us, f->min_us, f->max_us,
	       f->p50_us, f->p99_us, f->p999_us, f->errors, f->verify_reads, f->verify_blocks, f->mismatches);
}

static void print_json(const struct figures *t, bool embedded)
{
	unsigned i, k;

	printf("{\"program\":\"upmd-nvme-perf\",\"embedded_default\":%s,\"workload\":\"%s\",\"rwmixread\":%u"
	       ",\"io_size\":%" PRIu32 ",\"io_depth\":%" PRIu32 ",\"time_s\":%.3f,\"warmup_s\":%.3f,\"verify\":%s"
	       ",\"verify_size\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"sgl\":%s,\"tsc_hz\":%.0f,\"lcores\":%u,\"signal\":%d"
	       ",\"prefill_writes\":%" PRIu64 ",\"controllers\":[",
	       embedded ? "true" : "false", workload_names[pc.workload], pc.rwmixread, pc.io_size, pc.io_depth, pc.time_s,
	       pc.warmup_s, pc.verify ? "true" : "false", pc.verify ? pc.verify_size : 0, pc.seed,
	       pc.sgl ? "true" : "false", tsc_hz, n_works, (int)quit_signal, prefill_writes());
	for (i = 0; i < n_ctrlrs; i++) {
		bool first = true;

		printf("%s{\"device\":\"%s\",\"max_xfer_size\":%" PRIu32 ",\"max_io_qpairs\":%" PRIu32
		       ",\"max_queue_size\":%" PRIu32 ",\"sgl\":%s,\"namespaces\":[",
		       i ? "," : "", upmd_nvme_ctrlr_get_pci(ctrlrs[i])->name, upmd_nvme_ctrlr_max_xfer_size(ctrlrs[i]),
		       upmd_nvme_ctrlr_max_io_qpairs(ctrlrs[i]), upmd_nvme_ctrlr_max_queue_size(ctrlrs[i]),
		       upmd_nvme_ctrlr_uses_sgl(ctrlrs[i]) ? "true" : "false");
		for (k = 0; k < n_sel; k++) {
			if (sel[k].ctrlr != ctrlrs[i])
				continue;
			printf("%s{\"nsid\":%" PRIu32 ",\"sectors\":%" PRIu64 ",\"sector_size\":%" PRIu32
			       ",\"region_bytes\":%" PRIu64 "}",
			       first ? "" : ",", sel[k].nsid, upmd_nvme_ns_get_num_sectors(sel[k].ns),
			       upmd_nvme_ns_get_sector_size(sel[k].ns), sel[k].n_ios * pc.io_size);
			first = false;
		}
		printf("]}");
	}
	printf("],\"rows\":[");
	for (i = 0; i < n_ctx; i++) {
		struct figures f;

		ctx_figures(ctxs[i], &f);
		printf("%s{\"device\":\"%s\",\"nsid\":%" PRIu32 ",\"lcore\":%u,\"qpair\":%u,", i ? "," : "", ctxs[i]->dev,
		       ctxs[i]->nsid, ctxs[i]->lcore, ctxs[i]->qp ? upmd_nvme_qpair_get_id(ctxs[i]->qp) : 0);
		json_figures(&f);
		printf("}");
	}
	printf("],\"total\":{");
	json_figures(t);
	printf("},\"errors\":%" PRIu64 ",\"mismatches\":%" PRIu64 "}\n", t->errors, t->mismatches);
	fflush(stdout);
}

/* ---- main ---- */

static uint64_t new_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48) ^ tsc_now();
}

int main(int argc, char **argv)
{
	const char *prg = argc > 0 ? argv[0] : "upmd-nvme-perf";
	bool embedded = !has_devices(argc, argv);
	struct given g = { 0 };
	struct sigaction sa;
	char **eal_argv, **app_argv, lcore_arg[16];
	int eal_argc, app_argc, consumed, rc, i;
	unsigned k, l;
	struct figures total;
	double t0, t1;

	eal_argv = calloc((size_t)argc + 16, sizeof(*eal_argv));
	app_argv = calloc((size_t)argc + 2, sizeof(*app_argv));
	if (!eal_argv || !app_argv)
		return 1;

	pc = (struct perf_conf){ .io_depth = 32, .io_size = 4096, .workload = WL_RANDREAD, .rwmixread = 50,
				 .time_s = 5.0, .verify_size = DEFAULT_VERIFY_SIZE };

	/* Our options first (so --help and mistakes cost no EAL init). */
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		;
	app_argc = 0;
	app_argv[app_argc++] = argv[0];
	for (i = i + 1; i < argc; i++)
		app_argv[app_argc++] = argv[i];
	rc = parse_app_args(prg, app_argc, app_argv, &g);
	if (rc == 0 && embedded) {
		if (!g.workload)
			pc.workload = EMBEDDED_WORKLOAD;
		if (!g.rwmix)
			pc.rwmixread = EMBEDDED_RWMIXREAD;
		if (!g.time)
			pc.time_s = EMBEDDED_TIME;
		if (!g.verify)
			pc.verify = true;
	}
	if (rc == 0)
		rc = check_app_args(prg, &g);
	if (rc) {
		free(eal_argv);
		free(app_argv);
		return rc > 0 ? 0 : 2;
	}
	txt = pc.json ? stderr : stdout;

	/* The EAL options: the embedded default's device and memory when no
	 * device is given; one lcore unless -l says otherwise (like
	 * spdk_nvme_perf's core mask 0x1: every lcore drives queue pairs). */
	eal_argc = 0;
	eal_argv[eal_argc++] = argv[0];
	if (embedded) {
		for (k = 0; k < UPMD_DIM(embedded_devices); k++)
			eal_argv[eal_argc++] = (char *)(uintptr_t)embedded_devices[k];
		if (!has_eal_opt(argc, argv, NULL, "--no-huge") && !has_eal_opt(argc, argv, NULL, "--socket-mem") &&
		    !has_eal_opt(argc, argv, NULL, "--huge-dir"))
			for (k = 0; k < UPMD_DIM(embedded_memory); k++)
				eal_argv[eal_argc++] = (char *)(uintptr_t)embedded_memory[k];
		if (!has_eal_opt(argc, argv, "-m", "--socket-mem"))
			for (k = 0; k < UPMD_DIM(embedded_mem_size); k++)
				eal_argv[eal_argc++] = (char *)(uintptr_t)embedded_mem_size[k];
	}
	if (!has_eal_opt(argc, argv, "-l", "--lcores")) {
		snprintf(lcore_arg, sizeof(lcore_arg), "%d", first_cpu());
		eal_argv[eal_argc++] = (char *)(uintptr_t)"-l";
		eal_argv[eal_argc++] = lcore_arg;
	}
	for (i = 1; i < argc; i++)
		eal_argv[eal_argc++] = argv[i];

	consumed = upmd_eal_init(eal_argc, eal_argv);
	if (consumed < 0) {
		rc = upmd_eal_exit_code(consumed);
		free(eal_argv);
		free(app_argv);
		return rc;
	}
	if (!g.seed)
		pc.seed = new_seed();
	tsc_hz = measure_tsc_hz();
	if (embedded)
		fprintf(txt, "no device in the EAL options: the embedded default, the model NVMe controller at %s (the "
			"in-process model of the kernel and the device) driven by the NVMe driver through the model's "
			"iommufd; -w %s -M %u%s -t %g -q %" PRIu32 " -o %" PRIu32 "\n",
			EMBEDDED_BDF, workload_names[pc.workload], pc.rwmixread, pc.verify ? " --verify" : "", pc.time_s,
			pc.io_depth, pc.io_size);

	if (attach_all(prg) < 0) {
		rc = 1;
		goto out;
	}
	rc = select_namespaces(prg);
	if (rc)
		goto out;
	rc = setup_contexts(prg);
	if (rc)
		goto out;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	fprintf(txt, "Initialization complete: %s", workload_names[pc.workload]);
	if (wl_mixed(pc.workload))
		fprintf(txt, " (%u%% reads)", pc.rwmixread);
	fprintf(txt, ", %" PRIu32 "-byte I/Os, queue depth %" PRIu32 ", %u namespace(s) on %u lcore(s), ", pc.io_size,
		pc.io_depth, n_sel, n_works);
	if (pc.warmup_s > 0)
		fprintf(txt, "%g s warm-up, ", pc.warmup_s);
	if (pc.time_s > 0)
		fprintf(txt, "%g s", pc.time_s);
	else
		fprintf(txt, "until SIGINT/SIGTERM");
	fprintf(txt, "%s. Launching workers.\n", pc.verify ? ", verified" : "");
	if (pc.verify && pc.rwmixread)
		fprintf(txt, "verify: writing the region of each namespace first\n");
	fflush(txt);

	t0 = mono_s();
	for (l = 1; l < n_works; l++) {
		rc = upmd_eal_remote_launch(perf_lcore_main, &works[l], works[l].lcore);
		if (rc < 0) {
			fprintf(stderr, "%s: cannot launch lcore %u: %s\n", prg, works[l].lcore, strerror(-rc));
			perf_stop_all();
			upmd_eal_mp_wait_lcore();
			rc = 1;
			goto out;
		}
	}
	perf_lcore_main(&works[0]);
	upmd_eal_mp_wait_lcore();
	t1 = mono_s();
	if (quit_signal)
		fprintf(txt, "signal %d: stopping\n", (int)quit_signal);
	if (perf_prefill_failed())
		fprintf(stderr, "%s: verify: %" PRIu64 " writes of the region failed (see the first I/O error above), so "
			"its content is unknown and no read could be checked: the timed run was not started\n", prg,
			perf_prefill_failed());

	total_figures(&total);
	print_table(&total);
	fprintf(txt, "%s: %s, %" PRIu32 "-byte I/Os, qd %" PRIu32 ", %u namespace(s) x %u lcore(s): %.0f IOPS, %.2f MiB/s, "
		"average %.2f us, p99 %.2f us over %.2f s (%.2f s with setup and drain); %" PRIu64 " errors%s\n",
		prg, workload_names[pc.workload], pc.io_size, pc.io_depth, n_sel, n_works, total.iops, total.mibs,
		total.avg_us, total.p99_us, total.elapsed, t1 - t0, total.errors,
		!pc.verify ? "" : total.mismatches ? ", VERIFY MISMATCHES" :
		perf_prefill_failed() ? ", not verified (the region could not be written)" : ", verified");
	fflush(txt);
	if (pc.json)
		print_json(&total, embedded);
	rc = total.errors || total.mismatches ? 1 : 0;
out:
	teardown();
	upmd_eal_cleanup();
	free(eal_argv);
	free(app_argv);
	return rc;
}
