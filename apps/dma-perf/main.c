/*
 * upmd-dma-perf: copies through dmadev channels, one channel per lcore,
 * keeping each ring busy in batches; prints GB/s, million operations per
 * second and per-operation latency (submit to completion seen), with
 * --verify comparing every copied byte.
 *
 *   upmd-dma-perf [EAL options] -- [-s BYTES] [-b BATCH] [-r RING] [-c CHANNELS]
 *                 [-t SECONDS] [--dev NAME] [--verify] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/upmd.h>

#define MAX_WORKERS 64
#define HIST_BUCKETS 64	/* log2 of nanoseconds */
#define POOL_BYTES (64u << 20)

/* With no device in the EAL options: the model DSA device, driven by the
 * real DSA PMD through the model's iommufd and vfio cdev (a dedicated work
 * queue; its descriptors and completion records go through the IOAS). */
static const char *const embedded_default[] = { "--no-huge", "-m", "256", "--model", "dsa@0000:00:04.0",
						"-a", "0000:00:04.0" };

struct conf {
	uint32_t size, batch, ring, channels;
	double secs;
	const char *dev;
	bool verify, json;
};

struct worker {
	unsigned lcore;
	int16_t dev;
	uint16_t vchan;
	const struct upmd_memzone *mz;
	uint8_t *src, *dst;
	uint64_t src_iova, dst_iova;
	uint32_t slots;
	uint64_t *t_sub;	/* per slot: when its copy was submitted (ns) */
	uint64_t ops, bytes, errors, mismatches, lat_sum, lat_max, lat_n;
	uint64_t hist[HIST_BUCKETS];
	uint16_t first_status;
	int rc;
};

static struct conf cf = { .size = 4096, .batch = 32, .ring = 1024, .channels = 1, .secs = 2 };
static struct worker workers[MAX_WORKERS];
static unsigned n_workers;
static volatile sig_atomic_t stop_now;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static int bad(const char *prg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const char *prg, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prg);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	return -1;
}

static void usage(const char *prg)
{
	printf("Usage: %s [EAL options] -- [options]\n"
	       "  -s, --size BYTES      bytes a copy (default 4096)\n"
	       "  -b, --batch N         copies enqueued per submit (default 32)\n"
	       "  -r, --ring N          descriptors a channel (power of two, default 1024)\n"
	       "  -c, --channels N      channels per device (default 1)\n"
	       "  -t, --time SECONDS    run time (default 2)\n"
	       "      --dev NAME        only this DMA device (default: every one)\n"
	       "      --verify          compare every copied byte with its source\n"
	       "      --json            one JSON object on stdout\n"
	       "Each lcore of -l drives one channel (device by device, channel by channel).\n"
	       "With no device in the EAL options it runs on the model DSA device through the DSA PMD\n"
	       "(--model dsa@0000:00:04.0 -a 0000:00:04.0); --vdev dma_sw0 gives the software engine.\n",
	       prg);
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* @return 0, 1 (help printed), -1 (bad). */
static int parse_args(const char *prg, int argc, char **argv)
{
	enum { OPT_DEV = 256, OPT_VERIFY, OPT_JSON };
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },   { "batch", required_argument, NULL, 'b' },
		{ "ring", required_argument, NULL, 'r' },   { "channels", required_argument, NULL, 'c' },
		{ "time", required_argument, NULL, 't' },   { "dev", required_argument, NULL, OPT_DEV },
		{ "verify", no_argument, NULL, OPT_VERIFY }, { "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:b:r:c:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_u32(optarg, 1, 1u << 30, &cf.size))
				return bad(prg, "-s/--size '%s': give bytes per copy, 1 to 1g (e.g. 4096, 64k)", optarg);
			break;
		case 'b':
			if (parse_u32(optarg, 1, 4096, &cf.batch))
				return bad(prg, "-b/--batch '%s': give copies per submit, 1 to 4096", optarg);
			break;
		case 'r':
			if (parse_u32(optarg, 2, 65536, &cf.ring) || !UPMD_IS_POW2(cf.ring))
				return bad(prg, "-r/--ring '%s': give a power of two, 2 to 65536", optarg);
			break;
		case 'c':
			if (parse_u32(optarg, 1, 64, &cf.channels))
				return bad(prg, "-c/--channels '%s': give 1 to 64", optarg);
			break;
		case 't':
			cf.secs = strtod(optarg, &end);
			if (*end || !(cf.secs > 0) || cf.secs > 86400)
				return bad(prg, "-t/--time '%s': give seconds above 0 (e.g. 2, 0.5)", optarg);
			break;
		case OPT_DEV:
			cf.dev = optarg;
			break;
		case OPT_VERIFY:
			cf.verify = true;
			break;
		case OPT_JSON:
			cf.json = true;
			break;
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
	if (cf.batch > cf.ring - 1)
		return bad(prg, "a batch of %u does not fit a ring of %u: give -b below -r", cf.batch, cf.ring);
	return 0;
}

static bool has_devices(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strncmp(argv[i], "-a", 2) || !strncmp(argv[i], "--allow", 7) || !strncmp(argv[i], "--vdev", 6) ||
		    !strncmp(argv[i], "--model", 7))
			return true;
	return false;
}

static void stamp(uint8_t *p, uint32_t len, uint64_t seq)
{
	/* The op's number at both ends and a byte pattern between: a copy not
	 * done, done twice or torn shows. */
	if (len >= 16) {
		memcpy(p, &seq, 8);
		memcpy(p + len - 8, &seq, 8);
		p[len / 2] = (uint8_t)(seq * 31 + 7);
	} else {
		for (uint32_t i = 0; i < len; i++)
			p[i] = (uint8_t)(seq + i);
	}
}

/* Reap what finished; @return operations reaped. */
static unsigned reap(struct worker *w, uint64_t *done_seq)
{
	enum upmd_dma_status_code st[256];
	uint16_t last, n;
	uint64_t t = now_ns();
	uint32_t mask = w->slots - 1;

	n = upmd_dma_completed_status(w->dev, w->vchan, 256, &last, st);
	for (uint16_t i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)(*done_seq & mask);
		uint64_t lat = t - w->t_sub[slot];
		unsigned b = 0;

		while (b + 1 < HIST_BUCKETS && (lat >> (b + 1)))
			b++;
		w->hist[b]++;
		w->lat_sum += lat;
		w->lat_n++;
		if (lat > w->lat_max)
			w->lat_max = lat;
		if (st[i] != UPMD_DMA_STATUS_SUCCESSFUL) {
			if (!w->errors++)
				w->first_status = (uint16_t)st[i];
		} else {
			w->ops++;
			w->bytes += cf.size;
			if (cf.verify && memcmp(w->dst + (size_t)slot * cf.size, w->src + (size_t)slot * cf.size, cf.size)) {
				if (!w->mismatches++)
					fprintf(stderr, "verify: lcore %u, op %" PRIu64 ": destination differs from its source\n",
						w->lcore, *done_seq);
			}
		}
		(*done_seq)++;
	}
	(void)last;
	return n;
}

static int worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t end = now_ns() + (uint64_t)(cf.secs * 1e9), seq = 0, done = 0;
	uint32_t mask = w->slots - 1;

	while (!stop_now && now_ns() < end) {
		uint32_t k = 0;

		while (k < cf.batch && seq - done < w->slots - 1) {
			uint32_t slot = (uint32_t)(seq & mask);
			uint64_t off = (uint64_t)slot * cf.size;
			int rc;

			if (cf.verify)
				stamp(w->src + off, cf.size, seq);
			rc = upmd_dma_copy(w->dev, w->vchan, w->src_iova + off, w->dst_iova + off, cf.size, 0);
			if (rc == -ENOSPC)
				break;
			if (rc < 0) {
				w->rc = rc;
				return 0;
			}
			k++;
			seq++;
		}
		if (k) {
			uint64_t t = now_ns();

			for (uint64_t s = seq - k; s < seq; s++)
				w->t_sub[s & mask] = t;
			upmd_dma_submit(w->dev, w->vchan);
		}
		reap(w, &done);
	}
	/* Drain: everything enqueued is reported, done or aborted. */
	for (uint64_t t_end = now_ns() + 5000000000ull; done < seq && now_ns() < t_end;)
		reap(w, &done);
	if (done < seq)
		w->rc = -ETIMEDOUT;
	return 0;
}

static double pct(const struct worker *w, double p)
{
	uint64_t want = (uint64_t)(p * (double)w->lat_n), seen = 0;

	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += w->hist[b];
		if (seen > want)	/* the bucket's upper bound, but never above the maximum seen */
			return (double)UPMD_MIN(2ull << b, w->lat_max) / 1000.0;
	}
	return 0;
}

static int setup(const char *prg)
{
	unsigned lc, next = 0;
	int dev;
	unsigned lcores[MAX_WORKERS], nl = 0;

	lcores[nl++] = upmd_get_main_lcore();
	UPMD_LCORE_FOREACH_WORKER(lc)
		if (nl < MAX_WORKERS)
			lcores[nl++] = lc;
	UPMD_DMA_FOREACH_DEV(dev) {
		struct upmd_dma_info info;
		struct upmd_dma_conf c = { .size = sizeof(c) };
		struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = (uint16_t)cf.ring };

		if (cf.dev && upmd_dma_get_dev_id_by_name(cf.dev) != dev)
			continue;
		upmd_dma_info_get((int16_t)dev, &info);
		if (!(info.capa & UPMD_DMA_CAPA_OPS_COPY))
			continue;
		if (cf.size > info.max_length) {
			fprintf(stderr, "%s: %s copies at most %u bytes an operation: give -s %u or less\n", prg, info.name,
				info.max_length, info.max_length);
			return 2;
		}
		if (cf.ring < info.min_desc || cf.ring > info.max_desc) {
			fprintf(stderr, "%s: %s takes rings of %u..%u descriptors: adjust -r\n", prg, info.name,
				info.min_desc, info.max_desc);
			return 2;
		}
		c.nb_vchans = (uint16_t)UPMD_MIN(cf.channels, info.max_vchans);
		if (upmd_dma_configure((int16_t)dev, &c) < 0)
			return 1;
		for (uint16_t v = 0; v < c.nb_vchans; v++)
			if (upmd_dma_vchan_setup((int16_t)dev, v, &vc) < 0)
				return 1;
		if (upmd_dma_start((int16_t)dev) < 0)
			return 1;
		for (uint16_t v = 0; v < c.nb_vchans && next < nl; v++) {
			struct worker *w = &workers[n_workers++];
			char name[32];
			size_t half;

			w->lcore = lcores[next++];
			w->dev = (int16_t)dev;
			w->vchan = v;
			w->slots = cf.ring;
			while ((uint64_t)w->slots * cf.size > POOL_BYTES / 2 && w->slots > 2 * cf.batch)
				w->slots /= 2;
			half = (size_t)w->slots * cf.size;
			snprintf(name, sizeof(name), "dmaperf%u", n_workers);
			if (upmd_memzone_reserve(name, 2 * half, UPMD_SOCKET_ID_ANY, 4096, &w->mz) < 0) {
				fprintf(stderr, "%s: no memory for %zu bytes of buffers: give fewer -r or a smaller -s, "
					"or more -m\n", prg, 2 * half);
				return 1;
			}
			w->src = w->mz->addr;
			w->dst = w->src + half;
			w->src_iova = w->mz->iova;
			w->dst_iova = w->mz->iova + half;
			memset(w->src, 0xa5, half);
			w->t_sub = calloc(w->slots, sizeof(*w->t_sub));
			if (!w->t_sub)
				return 1;
			printf("lcore %u: %s channel %u, %u-byte copies, batches of %u, ring %u (%u slots of buffer)\n",
			       w->lcore, info.name, v, cf.size, cf.batch, cf.ring, w->slots);
		}
	}
	if (!n_workers) {
		fprintf(stderr, "%s: no DMA device that copies%s%s: give one with --vdev dma_sw0 or -a BDF\n", prg,
			cf.dev ? " called " : "", cf.dev ? cf.dev : "");
		return 2;
	}
	return 0;
}

static void report(double secs)
{
	uint64_t ops = 0, bytes = 0, errors = 0, mism = 0;
	unsigned i;

	if (cf.json)
		printf("{\"size\":%u,\"batch\":%u,\"ring\":%u,\"seconds\":%.3f,\"verify\":%s,\"channels\":[", cf.size,
		       cf.batch, cf.ring, secs, cf.verify ? "true" : "false");
	else
		printf("%-8s %-20s %4s %10s %10s %10s %10s %10s %10s %8s\n", "lcore", "device", "ch", "GB/s", "Mops",
		       "avg us", "p50 us", "p99 us", "max us", "errors");
	for (i = 0; i < n_workers; i++) {
		struct worker *w = &workers[i];
		struct upmd_dma_info info;
		double avg = w->lat_n ? (double)w->lat_sum / (double)w->lat_n / 1000.0 : 0;

		upmd_dma_info_get(w->dev, &info);
		ops += w->ops;
		bytes += w->bytes;
		errors += w->errors;
		mism += w->mismatches;
		if (cf.json)
			printf("%s{\"lcore\":%u,\"device\":\"%s\",\"channel\":%u,\"ops\":%" PRIu64 ",\"bytes\":%" PRIu64
			       ",\"gbps\":%.4f,\"mops\":%.4f,\"lat_avg_us\":%.3f,\"lat_p50_us\":%.3f,\"lat_p99_us\":%.3f,"
			       "\"lat_max_us\":%.3f,\"errors\":%" PRIu64 ",\"mismatches\":%" PRIu64 "}",
			       i ? "," : "", w->lcore, info.name, w->vchan, w->ops, w->bytes, (double)w->bytes / secs / 1e9,
			       (double)w->ops / secs / 1e6, avg, pct(w, 0.5), pct(w, 0.99), (double)w->lat_max / 1000.0,
			       w->errors, w->mismatches);
		else
			printf("%-8u %-20s %4u %10.3f %10.3f %10.2f %10.2f %10.2f %10.2f %8" PRIu64 "\n", w->lcore,
			       info.name, w->vchan, (double)w->bytes / secs / 1e9, (double)w->ops / secs / 1e6, avg,
			       pct(w, 0.5), pct(w, 0.99), (double)w->lat_max / 1000.0, w->errors);
		if (w->errors && !cf.json)
			fprintf(stderr, "lcore %u: %" PRIu64 " copies failed, the first: %s\n", w->lcore, w->errors,
				upmd_dma_status_str((enum upmd_dma_status_code)w->first_status));
	}
	if (cf.json) {
		printf("],\"total\":{\"ops\":%" PRIu64 ",\"gbps\":%.4f,\"mops\":%.4f,\"errors\":%" PRIu64
		       ",\"mismatches\":%" PRIu64 "}}\n", ops, (double)bytes / secs / 1e9, (double)ops / secs / 1e6, errors,
		       mism);
		return;
	}
	printf("%-8s %-20s %4s %10.3f %10.3f\n", "total", "", "", (double)bytes / secs / 1e9, (double)ops / secs / 1e6);
	if (cf.verify)
		printf("verify: %" PRIu64 " copies compared byte for byte, %" PRIu64 " mismatches\n", ops, mism);
	printf("errors: %" PRIu64 "\n", errors);
}

int main(int argc, char **argv)
{
	const char *prg = argc > 0 ? argv[0] : "upmd-dma-perf";
	bool embedded = !has_devices(argc, argv);
	char **eal_argv, **app_argv;
	int eal_argc = 0, app_argc = 0, i, rc, exit_rc = 0;
	uint64_t t0;
	double secs;

	eal_argv = calloc((size_t)argc + UPMD_DIM(embedded_default) + 2, sizeof(*eal_argv));
	app_argv = calloc((size_t)argc + 2, sizeof(*app_argv));
	if (!eal_argv || !app_argv)
		return 1;
	eal_argv[eal_argc++] = argv[0];
	if (embedded)
		for (unsigned k = 0; k < UPMD_DIM(embedded_default); k++)
			eal_argv[eal_argc++] = (char *)(uintptr_t)embedded_default[k];
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		eal_argv[eal_argc++] = argv[i];
	app_argv[app_argc++] = argv[0];
	for (i = i + 1; i < argc; i++)
		app_argv[app_argc++] = argv[i];
	rc = parse_args(prg, app_argc, app_argv);
	if (rc) {
		free(eal_argv);
		free(app_argv);
		return rc > 0 ? 0 : 2;
	}
	if (embedded) {
		/* The default run proves the data, not only the speed. */
		cf.verify = true;
		printf("no device in the EAL options: the embedded default, the model DSA device at 0000:00:04.0 "
		       "(the in-process model of the kernel and the device) driven by the DSA PMD, dedicated work queue, "
		       "--verify\n");
	}
	rc = upmd_eal_init(eal_argc, eal_argv);
	free(eal_argv);
	free(app_argv);
	if (rc < 0)
		return upmd_eal_exit_code(rc);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = setup(prg);
	if (rc == 0) {
		t0 = now_ns();
		for (unsigned k = 1; k < n_workers; k++)
			upmd_eal_remote_launch(worker_main, &workers[k], workers[k].lcore);
		worker_main(&workers[0]);
		upmd_eal_mp_wait_lcore();
		secs = (double)(now_ns() - t0) / 1e9;
		report(secs);
		for (unsigned k = 0; k < n_workers; k++)
			if (workers[k].rc || workers[k].errors || workers[k].mismatches)
				exit_rc = 1;
	} else {
		exit_rc = rc;
	}
	for (unsigned k = 0; k < n_workers; k++) {
		free(workers[k].t_sub);
		if (workers[k].mz)
			upmd_memzone_free(workers[k].mz);
	}
	{
		int dev;

		UPMD_DMA_FOREACH_DEV(dev)
			upmd_dma_stop((int16_t)dev);
	}
	upmd_eal_cleanup();
	return exit_rc;
}
