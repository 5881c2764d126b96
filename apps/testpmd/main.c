/* upmd-testpmd: DPDK testpmd's conventions over upmd ports: forwarding modes on lcores, periodic and final statistics, a clean stop. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testpmd.h"

/* With no device in the EAL arguments: two model virtio-net devices,
 * cross-connected, driven by the real virtio PMD through the model's
 * iommufd and vfio cdev, forwarding what --tx-first put on them, for a
 * few seconds. */
static const char *const embedded_default[] = {
	"--model", "virtio-net@0000:00:04.0:peer=0000:00:05.0;virtio-net@0000:00:05.0",
	"-a", "0000:00:04.0",
	"-a", "0000:00:05.0",
};
#define EMBEDDED_RUN_TIME 5.0
#define CACHE_SIZE 250

static volatile sig_atomic_t quit_signal;
static struct fwd_stream streams[MAX_STREAMS];
static unsigned nb_streams;
static struct fwd_lcore fwd_lcores[UPMD_MAX_LCORE];
static unsigned nb_fwd_lcores;
static uint16_t port_ids[UPMD_MAX_ETHPORTS];
static unsigned nb_ports;
static struct upmd_mempool *pool;
static uint64_t tx_first_sent[UPMD_MAX_ETHPORTS];	/* by port index */

static void on_signal(int sig)
{
	quit_signal = sig;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- options ---- */

static void usage(const char *prg)
{
	printf("usage: %s [EAL options] -- [options]\n"
	       "  --forward-mode=MODE   io (default), mac, macswap, rxonly, txonly, flowgen, dmacopy\n"
	       "  --nb-cores=N          forwarding lcores (default 1; the main lcore prints statistics)\n"
	       "  --rxq=N --txq=N       queues per port (default 1)\n"
	       "  --rxd=N --txd=N       descriptors per queue (default: the port's, at most 1024)\n"
	       "  --burst=N             packets per burst (default 32, at most %d)\n"
	       "  --total-num-mbufs=N   mbufs in the pool (default: enough for every queue)\n"
	       "  --txpkts=L[,L...]     segment lengths of generated packets (default 64)\n"
	       "  --flowgen-flows=N     flows of flowgen (default 1024)\n"
	       "  --dma-dev=NAME        dmacopy: the DMA device (default: the first that copies)\n"
	       "  --eth-peer=P,MAC      destination MAC for port P in mac/txonly/flowgen\n"
	       "  --stats-period=S      print statistics every S seconds\n"
	       "  --tx-first            send a burst on every stream before forwarding\n"
	       "  -a, --auto-start      start forwarding at once (always: there is no prompt)\n"
	       "  --run-time=S          stop after S seconds (default: at SIGINT/SIGTERM)\n"
	       "  --json                print the final summary as JSON\n"
	       "With no device in the EAL options it runs on its embedded default: two model\n"
	       "virtio-net ports cross-connected (the in-process model of the kernel and the\n"
	       "devices), io forwarding with --tx-first, for %.0f s.\n",
	       prg, MAX_BURST, EMBEDDED_RUN_TIME);
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

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_FWD = 256, OPT_NB_CORES, OPT_RXQ, OPT_TXQ, OPT_RXD, OPT_TXD, OPT_BURST, OPT_MBUFS, OPT_TXPKTS,
	OPT_FLOWS, OPT_PEER, OPT_STATS, OPT_TXFIRST, OPT_RUNTIME, OPT_JSON, OPT_DMADEV, OPT_HELP,
};

static int parse_app_args(const char *prg, int argc, char **argv, bool *run_time_given, bool *tx_first_given)
{
	static const struct option opts[] = {
		{ "forward-mode", required_argument, NULL, OPT_FWD },
		{ "nb-cores", required_argument, NULL, OPT_NB_CORES },
		{ "rxq", required_argument, NULL, OPT_RXQ },
		{ "txq", required_argument, NULL, OPT_TXQ },
		{ "rxd", required_argument, NULL, OPT_RXD },
		{ "txd", required_argument, NULL, OPT_TXD },
		{ "burst", required_argument, NULL, OPT_BURST },
		{ "total-num-mbufs", required_argument, NULL, OPT_MBUFS },
		{ "txpkts", required_argument, NULL, OPT_TXPKTS },
		{ "flowgen-flows", required_argument, NULL, OPT_FLOWS },
		{ "eth-peer", required_argument, NULL, OPT_PEER },
		{ "stats-period", required_argument, NULL, OPT_STATS },
		{ "tx-first", no_argument, NULL, OPT_TXFIRST },
		{ "auto-start", no_argument, NULL, 'a' },
		{ "run-time", required_argument, NULL, OPT_RUNTIME },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "dma-dev", required_argument, NULL, OPT_DMADEV },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	int opt, m;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_FWD:
			for (m = 0; m < FWD_MODES && strcmp(optarg, fwd_mode_names[m]); m++)
				;
			if (m == FWD_MODES)
				return bad(prg, "unknown --forward-mode '%s' (io, mac, macswap, rxonly, txonly, flowgen, dmacopy)",
					   optarg);
			tp.mode = (enum fwd_mode)m;
			break;
		case OPT_NB_CORES:
			if (parse_uint(optarg, 1, UPMD_MAX_LCORE, &v))
				return bad(prg, "--nb-cores '%s': give a number of forwarding lcores, 1 or more", optarg);
			tp.nb_cores = (unsigned)v;
			break;
		case OPT_RXQ:
		case OPT_TXQ:
			if (parse_uint(optarg, 1, UPMD_MAX_QUEUES_PER_PORT, &v))
				return bad(prg, "--rxq/--txq '%s': give 1 to 16", optarg);
			if (opt == OPT_RXQ)
				tp.rxq = (uint16_t)v;
			else
				tp.txq = (uint16_t)v;
			break;
		case OPT_RXD:
		case OPT_TXD:
			if (parse_uint(optarg, 1, 65535, &v))
				return bad(prg, "--rxd/--txd '%s': give 1 to 65535", optarg);
			if (opt == OPT_RXD)
				tp.rxd = (uint16_t)v;
			else
				tp.txd = (uint16_t)v;
			break;
		case OPT_BURST:
			if (parse_uint(optarg, 1, MAX_BURST, &v))
				return bad(prg, "--burst '%s': give 1 to 512", optarg);
			tp.burst = (uint16_t)v;
			break;
		case OPT_MBUFS:
			if (parse_uint(optarg, 64, 1u << 24, &v))
				return bad(prg, "--total-num-mbufs '%s': give 64 or more", optarg);
			tp.total_mbufs = (unsigned)v;
			break;
		case OPT_TXPKTS: {
			char buf[128], *save = NULL, *tok;

			snprintf(buf, sizeof(buf), "%s", optarg);
			tp.nb_txsegs = 0;
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (tp.nb_txsegs == MAX_SEGS || parse_uint(tok, 1, UPMD_MBUF_DEFAULT_DATAROOM, &v))
					return bad(prg, "--txpkts '%s': up to 8 segment lengths of 1..2048 bytes", optarg);
				tp.txpkts[tp.nb_txsegs++] = (uint16_t)v;
			}
			if (!tp.nb_txsegs || tp.txpkts[0] < UPMD_ETHER_HDR_LEN + 28)
				return bad(prg, "--txpkts '%s': the first segment holds the Ethernet, IPv4 and UDP headers: 42 bytes at least",
					   optarg);
			break;
		}
		case OPT_FLOWS:
			if (parse_uint(optarg, 1, 65535, &v))
				return bad(prg, "--flowgen-flows '%s': give 1 to 65535", optarg);
			tp.flows = (unsigned)v;
			break;
		case OPT_PEER: {
			const char *comma = strchr(optarg, ',');
			char num[16];

			if (!comma || (size_t)(comma - optarg) >= sizeof(num))
				return bad(prg, "--eth-peer '%s': give PORT,MAC (0,02:00:00:00:00:01)", optarg);
			memcpy(num, optarg, (size_t)(comma - optarg));
			num[comma - optarg] = '\0';
			if (parse_uint(num, 0, UPMD_MAX_ETHPORTS - 1, &v) ||
			    upmd_ether_unformat_addr(comma + 1, &tp.peer[v]) < 0)
				return bad(prg, "--eth-peer '%s': give PORT,MAC (0,02:00:00:00:00:01)", optarg);
			tp.peer_given[v] = true;
			break;
		}
		case OPT_STATS:
			if (parse_uint(optarg, 1, 86400, &v))
				return bad(prg, "--stats-period '%s': give seconds, 1 or more", optarg);
			tp.stats_period = (unsigned)v;
			break;
		case OPT_TXFIRST:
			tp.tx_first = true;
			*tx_first_given = true;
			break;
		case 'a':
			break;
		case OPT_RUNTIME: {
			char *end;

			errno = 0;
			tp.run_time = strtod(optarg, &end);
			if (errno || end == optarg || *end || tp.run_time < 0 || tp.run_time > 1e7)
				return bad(prg, "--run-time '%s': give seconds (0: until a signal)", optarg);
			*run_time_given = true;
			break;
		}
		case OPT_JSON:
			tp.json = true;
			break;
		case OPT_DMADEV:
			tp.dma_name = optarg;
			break;
		case OPT_HELP:
		case 'h':
			usage(prg);
			return 1;
		default:
			return bad(prg, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad(prg, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* Whether the EAL part of the command line names any device. */
static bool has_devices(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-a") || !strncmp(argv[i], "--allow", 7) || !strncmp(argv[i], "--vdev", 6) ||
		    !strncmp(argv[i], "--model", 7) || !strncmp(argv[i], "-a", 2))
			return true;
	return false;
}

/* ---- ports and streams ---- */

static int setup_ports(const char *prg)
{
	struct upmd_eth_conf conf = { .size = sizeof(conf) };
	unsigned i, q, need;
	uint16_t p;
	int rc;

	nb_ports = 0;
	UPMD_ETH_FOREACH_DEV(p)
		port_ids[nb_ports++] = p;
	if (!nb_ports) {
		fprintf(stderr, "%s: no ports: give devices with -a BDF (bound to vfio-pci) or --vdev net_null0\n", prg);
		return -ENODEV;
	}
	/* 0 descriptors: each port's default, at most 1024. */
	need = nb_ports * (tp.rxq * (tp.rxd ? tp.rxd : 1024u) + tp.txq * (tp.txd ? tp.txd : 1024u) + tp.burst * MAX_SEGS) +
	       (tp.nb_cores + 1) * CACHE_SIZE * 3 / 2 + 1024;
	if (!tp.total_mbufs)
		tp.total_mbufs = UPMD_MAX(need, 8192u);
	rc = upmd_pktmbuf_pool_create("mbuf_pool", tp.total_mbufs, CACHE_SIZE, 0, UPMD_MBUF_DEFAULT_BUF_SIZE,
				      UPMD_SOCKET_ID_ANY, &pool);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot create a pool of %u mbufs (%s): give the EAL more memory (-m) or --total-num-mbufs fewer\n",
			prg, tp.total_mbufs, strerror(-rc));
		return rc;
	}
	for (i = 0; i < nb_ports; i++) {
		p = port_ids[i];
		rc = upmd_eth_dev_configure(p, tp.rxq, tp.txq, &conf);
		for (q = 0; rc == 0 && q < tp.rxq; q++)
			rc = upmd_eth_rx_queue_setup(p, (uint16_t)q, tp.rxd, upmd_eth_dev_socket_id(p), pool);
		for (q = 0; rc == 0 && q < tp.txq; q++)
			rc = upmd_eth_tx_queue_setup(p, (uint16_t)q, tp.txd, upmd_eth_dev_socket_id(p));
		if (rc == 0)
			rc = upmd_eth_dev_start(p);
		if (rc == 0)
			rc = upmd_eth_promiscuous_enable(p);
		if (rc < 0 && rc != -ENOTSUP) {
			fprintf(stderr, "%s: port %u (%s): setup failed: %s\n", prg, p, upmd_eth_dev_name(p), strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void setup_streams(void)
{
	unsigned i, q, k;
	unsigned nq = UPMD_MIN(tp.rxq, tp.txq);

	nb_streams = 0;
	for (i = 0; i < nb_ports; i++) {
		/* Paired: 0<->1, 2<->3; an odd last port sends to itself. */
		unsigned peer = (i ^ 1) < nb_ports ? (i ^ 1) : i;

		for (q = 0; q < nq; q++) {
			struct fwd_stream *fs = &streams[nb_streams++];

			memset(fs, 0, sizeof(*fs));
			fs->rx_port = port_ids[i];
			fs->rx_queue = (uint16_t)q;
			fs->tx_port = port_ids[peer];
			fs->tx_queue = (uint16_t)q;
			fs->mp = pool;
			upmd_eth_macaddr_get(fs->tx_port, &fs->tx_src);
			fs->tx_dst = tp.peer[fs->tx_port];
		}
	}
	for (k = 0; k < nb_fwd_lcores; k++)
		fwd_lcores[k].nb_streams = 0;
	for (i = 0; i < nb_streams; i++) {
		struct fwd_lcore *fl = &fwd_lcores[i % nb_fwd_lcores];

		streams[i].dma_vchan = (uint16_t)(i % nb_fwd_lcores);
		fl->streams[fl->nb_streams++] = &streams[i];
	}
}

/* dmacopy: the DMA device, one channel per forwarding lcore. @return 0 or the exit code. */
static int setup_dma(const char *prg)
{
	struct upmd_dma_info info;
	struct upmd_dma_conf c = { .size = sizeof(c), .nb_vchans = (uint16_t)nb_fwd_lcores };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc) };
	int dev = -1, d;

	if (tp.dma_name) {
		dev = upmd_dma_get_dev_id_by_name(tp.dma_name);
		if (dev < 0) {
			fprintf(stderr, "%s: no DMA device called %s: give it to the EAL (--vdev dma_sw0, -a BDF)\n", prg,
				tp.dma_name);
			return 2;
		}
	} else {
		UPMD_DMA_FOREACH_DEV(d) {
			if (upmd_dma_info_get((int16_t)d, &info) == 0 && (info.capa & UPMD_DMA_CAPA_OPS_COPY)) {
				dev = d;
				break;
			}
		}
		if (dev < 0) {
			fprintf(stderr, "%s: --forward-mode=dmacopy needs a DMA device: add --vdev dma_sw0 (or -a a DMA "
				"engine) to the EAL options\n", prg);
			return 2;
		}
	}
	upmd_dma_info_get((int16_t)dev, &info);
	if (!(info.capa & UPMD_DMA_CAPA_OPS_COPY) || info.max_vchans < nb_fwd_lcores) {
		fprintf(stderr, "%s: %s cannot give %u forwarding lcore(s) a copy channel each (it has %u): use fewer "
			"--nb-cores or another --dma-dev\n", prg, info.name, nb_fwd_lcores, info.max_vchans);
		return 2;
	}
	vc.nb_desc = 1024;
	while (vc.nb_desc < 2u * tp.burst)
		vc.nb_desc = (uint16_t)(vc.nb_desc * 2);
	vc.nb_desc = (uint16_t)UPMD_MAX(UPMD_MIN(vc.nb_desc, info.max_desc), info.min_desc);
	if (upmd_dma_configure((int16_t)dev, &c) < 0)
		return 1;
	for (uint16_t v = 0; v < c.nb_vchans; v++)
		if (upmd_dma_vchan_setup((int16_t)dev, v, &vc) < 0)
			return 1;
	if (upmd_dma_start((int16_t)dev) < 0)
		return 1;
	tp.dma_dev = (int16_t)dev;
	printf("dmacopy: every packet copied by %s (%u channel(s) of %u descriptors)\n", info.name, c.nb_vchans,
	       vc.nb_desc);
	return 0;
}

static int fwd_loop(void *arg)
{
	struct fwd_lcore *fl = arg;
	const fwd_fn fn = fwd_engines[tp.mode];

	while (!fl->stop)
		for (unsigned i = 0; i < fl->nb_streams; i++)
			fn(fl->streams[i]);
	return 0;
}

/* ---- statistics ---- */

struct port_snap {
	struct upmd_eth_stats s;
	uint64_t dropped;
};

static void snap(unsigned i, struct port_snap *ps)
{
	unsigned k;

	upmd_eth_stats_get(port_ids[i], &ps->s);
	ps->dropped = 0;
	for (k = 0; k < nb_streams; k++)
		if (streams[k].rx_port == port_ids[i])
			ps->dropped += __atomic_load_n(&streams[k].fwd_dropped, __ATOMIC_RELAXED);
}

static void print_rates(const char *what, const struct port_snap *a, const struct port_snap *b, double dt)
{
	printf("  %-24s RX %8.3f Mpps %7.3f Gbit/s | TX %8.3f Mpps %7.3f Gbit/s | RX-packets %" PRIu64
	       " TX-packets %" PRIu64 "\n",
	       what, (double)(b->s.ipackets - a->s.ipackets) / dt / 1e6, (double)(b->s.ibytes - a->s.ibytes) * 8 / dt / 1e9,
	       (double)(b->s.opackets - a->s.opackets) / dt / 1e6, (double)(b->s.obytes - a->s.obytes) * 8 / dt / 1e9,
	       b->s.ipackets, b->s.opackets);
}

static void add(struct port_snap *t, const struct port_snap *p)
{
	t->s.ipackets += p->s.ipackets;
	t->s.opackets += p->s.opackets;
	t->s.ibytes += p->s.ibytes;
	t->s.obytes += p->s.obytes;
	t->s.imissed += p->s.imissed;
	t->s.ierrors += p->s.ierrors;
	t->s.oerrors += p->s.oerrors;
	t->s.rx_nombuf += p->s.rx_nombuf;
	t->dropped += p->dropped;
}

static void print_final(const struct port_snap *start, const struct port_snap *end, double dt)
{
	struct port_snap t0 = { 0 }, t1 = { 0 };
	uint64_t alloc_failed = 0;
	unsigned i;

	for (i = 0; i < nb_streams; i++)
		alloc_failed += streams[i].alloc_failed;
	for (i = 0; i < nb_ports; i++) {
		const struct upmd_eth_stats *s = &end[i].s;

		printf("  ---------------------- Forward statistics for port %-2u (%s) ----------------------\n",
		       port_ids[i], upmd_eth_dev_name(port_ids[i]));
		printf("  RX-packets: %-14" PRIu64 " RX-dropped: %-14" PRIu64 " RX-nombuf: %-10" PRIu64 " RX-bytes: %" PRIu64 "\n",
		       s->ipackets - start[i].s.ipackets, (s->imissed + s->ierrors) - (start[i].s.imissed + start[i].s.ierrors),
		       s->rx_nombuf - start[i].s.rx_nombuf, s->ibytes - start[i].s.ibytes);
		printf("  TX-packets: %-14" PRIu64 " TX-dropped: %-14" PRIu64 " TX-errors: %-10" PRIu64 " TX-bytes: %" PRIu64 "\n",
		       s->opackets - start[i].s.opackets, end[i].dropped - start[i].dropped,
		       s->oerrors - start[i].s.oerrors, s->obytes - start[i].s.obytes);
		add(&t0, &start[i]);
		add(&t1, &end[i]);
	}
	printf("  ++++++++++++++++ Accumulated forward statistics for all ports ++++++++++++++++\n");
	printf("  RX-packets: %-14" PRIu64 " RX-dropped: %-14" PRIu64 " TX-packets: %-14" PRIu64 " TX-dropped: %" PRIu64 "\n",
	       t1.s.ipackets - t0.s.ipackets, (t1.s.imissed + t1.s.ierrors) - (t0.s.imissed + t0.s.ierrors),
	       t1.s.opackets - t0.s.opackets, t1.dropped - t0.dropped);
	if (alloc_failed)
		printf("  generated packets that found no mbuf: %" PRIu64 "\n", alloc_failed);
	print_rates("all ports", &t0, &t1, dt);
	printf("upmd-testpmd: %s forwarding on %u port(s), %u lcore(s), burst %u: %.3f Mpps (TX), %.3f Gbit/s, over %.2f s\n",
	       fwd_mode_names[tp.mode], nb_ports, nb_fwd_lcores, tp.burst,
	       (double)(t1.s.opackets - t0.s.opackets) / dt / 1e6, (double)(t1.s.obytes - t0.s.obytes) * 8 / dt / 1e9, dt);
	fflush(stdout);
}

static void print_json(const struct port_snap *start, const struct port_snap *end, double dt)
{
	struct port_snap t0 = { 0 }, t1 = { 0 };
	unsigned i;

	printf("{\"forward_mode\":\"%s\",\"nb_ports\":%u,\"nb_cores\":%u,\"burst\":%u,\"elapsed_s\":%.6f,\"ports\":[",
	       fwd_mode_names[tp.mode], nb_ports, nb_fwd_lcores, tp.burst, dt);
	for (i = 0; i < nb_ports; i++) {
		const struct upmd_eth_stats *s = &end[i].s, *b = &start[i].s;

		printf("%s{\"port\":%u,\"name\":\"%s\",\"rx_packets\":%" PRIu64 ",\"tx_packets\":%" PRIu64
		       ",\"rx_bytes\":%" PRIu64 ",\"tx_bytes\":%" PRIu64 ",\"rx_missed\":%" PRIu64 ",\"rx_errors\":%" PRIu64
		       ",\"rx_nombuf\":%" PRIu64 ",\"tx_errors\":%" PRIu64 ",\"fwd_dropped\":%" PRIu64
		       ",\"tx_first_packets\":%" PRIu64
		       ",\"rx_mpps\":%.6f,\"tx_mpps\":%.6f,\"rx_gbps\":%.6f,\"tx_gbps\":%.6f}",
		       i ? "," : "", port_ids[i], upmd_eth_dev_name(port_ids[i]), s->ipackets - b->ipackets,
		       s->opackets - b->opackets, s->ibytes - b->ibytes, s->obytes - b->obytes, s->imissed - b->imissed,
		       s->ierrors - b->ierrors, s->rx_nombuf - b->rx_nombuf, s->oerrors - b->oerrors,
		       end[i].dropped - start[i].dropped, tx_first_sent[i], (double)(s->ipackets - b->ipackets) / dt / 1e6,
		       (double)(s->opackets - b->opackets) / dt / 1e6, (double)(s->ibytes - b->ibytes) * 8 / dt / 1e9,
		       (double)(s->obytes - b->obytes) * 8 / dt / 1e9);
		add(&t0, &start[i]);
		add(&t1, &end[i]);
	}
	printf("],\"total\":{\"rx_packets\":%" PRIu64 ",\"tx_packets\":%" PRIu64 ",\"fwd_dropped\":%" PRIu64
	       ",\"rx_mpps\":%.6f,\"tx_mpps\":%.6f,\"tx_gbps\":%.6f}}\n",
	       t1.s.ipackets - t0.s.ipackets, t1.s.opackets - t0.s.opackets, t1.dropped - t0.dropped,
	       (double)(t1.s.ipackets - t0.s.ipackets) / dt / 1e6, (double)(t1.s.opackets - t0.s.opackets) / dt / 1e6,
	       (double)(t1.s.obytes - t0.s.obytes) * 8 / dt / 1e9);
	fflush(stdout);
}

/* ---- main ---- */

static void stop_all(void)
{
	unsigned i;

	for (i = 0; i < nb_ports; i++)
		upmd_eth_dev_close(port_ids[i]);
	nb_ports = 0;
	upmd_mempool_free(pool);
	pool = NULL;
}

int main(int argc, char **argv)
{
	const char *prg = argc > 0 ? argv[0] : "upmd-testpmd";
	struct port_snap start[UPMD_MAX_ETHPORTS], last[UPMD_MAX_ETHPORTS], cur[UPMD_MAX_ETHPORTS];
	bool embedded = !has_devices(argc, argv), run_time_given = false, tx_first_given = false;
	char **eal_argv, **app_argv;
	int eal_argc, consumed, app_argc, rc, i, k;
	double t_start, t_last, t_end;
	unsigned lc, w;
	bool inline_fwd;

	/* The EAL options, with the embedded default's devices when none is given. */
	eal_argv = calloc((size_t)argc + UPMD_DIM(embedded_default) + 2, sizeof(*eal_argv));
	app_argv = calloc((size_t)argc + 2, sizeof(*app_argv));
	if (!eal_argv || !app_argv)
		return 1;
	eal_argc = 0;
	eal_argv[eal_argc++] = argv[0];
	if (embedded)
		for (k = 0; k < (int)UPMD_DIM(embedded_default); k++)
			eal_argv[eal_argc++] = (char *)(uintptr_t)embedded_default[k];
	for (i = 1; i < argc; i++)
		eal_argv[eal_argc++] = argv[i];

	tp = (struct tp_conf){ .mode = FWD_IO, .nb_cores = 1, .rxq = 1, .txq = 1, .rxd = 0, .txd = 0,
			       .burst = 32, .txpkts = { 64 }, .nb_txsegs = 1, .flows = 1024 };
	for (i = 0; i < UPMD_MAX_ETHPORTS; i++)
		tp.peer[i] = (struct upmd_ether_addr){ { 0x02, 0x00, 0x00, 0x00, 0x00, (uint8_t)i } };

	/* Our options first (so --help and mistakes cost no EAL init). */
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		;
	app_argc = 0;
	app_argv[app_argc++] = argv[0];
	for (i = i + 1; i < argc; i++)
		app_argv[app_argc++] = argv[i];
	rc = parse_app_args(prg, app_argc, app_argv, &run_time_given, &tx_first_given);
	if (rc) {
		free(eal_argv);
		free(app_argv);
		return rc > 0 ? 0 : 2;
	}
	if (embedded) {
		if (!run_time_given)
			tp.run_time = EMBEDDED_RUN_TIME;
		if (!tx_first_given && tp.mode != FWD_TXONLY && tp.mode != FWD_FLOWGEN)
			tp.tx_first = true;
	}

	consumed = upmd_eal_init(eal_argc, eal_argv);
	if (consumed < 0) {
		rc = upmd_eal_exit_code(consumed);
		free(eal_argv);
		free(app_argv);
		return rc;
	}
	if (embedded)
		printf("no device in the EAL options: the embedded default, two model virtio-net ports cross-connected, "
		       "driven by the virtio PMD through the model's iommufd; %s forwarding%s for %.0f s\n",
		       fwd_mode_names[tp.mode], tp.tx_first ? " after --tx-first" : "", tp.run_time);

	/* Forwarding lcores: the workers; with none, the main lcore forwards
	 * and checks the clock between rounds. */
	nb_fwd_lcores = 0;
	UPMD_LCORE_FOREACH_WORKER(lc)
	{
		if (nb_fwd_lcores == tp.nb_cores)
			break;
		fwd_lcores[nb_fwd_lcores++].lcore = lc;
	}
	inline_fwd = nb_fwd_lcores == 0;
	if (inline_fwd) {
		fwd_lcores[0].lcore = upmd_get_main_lcore();
		nb_fwd_lcores = 1;
	} else if (nb_fwd_lcores < tp.nb_cores) {
		fprintf(stderr, "%s: --nb-cores=%u but the EAL has %u worker lcore(s): give more with -l, or fewer cores\n",
			prg, tp.nb_cores, nb_fwd_lcores);
		rc = 2;
		goto out;
	}

	rc = setup_ports(prg);
	if (rc < 0) {
		rc = 1;
		goto out;
	}
	setup_streams();
	if (tp.mode == FWD_DMACOPY) {
		rc = setup_dma(prg);
		if (rc)
			goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	for (i = 0; i < (int)nb_ports; i++)
		snap((unsigned)i, &start[i]);
	if (tp.tx_first)
		for (unsigned s = 0; s < nb_streams; s++) {
			fwd_txonly(&streams[s]);
			for (unsigned p = 0; p < nb_ports; p++)
				if (port_ids[p] == streams[s].tx_port)
					tx_first_sent[p] += streams[s].tx_packets;
			streams[s].tx_packets = 0;
		}

	printf("%s forwarding: %u port(s), %u stream(s) on %u lcore(s), burst %u, %u mbufs\n", fwd_mode_names[tp.mode],
	       nb_ports, nb_streams, nb_fwd_lcores, tp.burst, tp.total_mbufs);
	fflush(stdout);
	t_start = t_last = now_s();
	memcpy(last, start, sizeof(start));
	if (!inline_fwd)
		for (w = 0; w < nb_fwd_lcores; w++) {
			fwd_lcores[w].stop = false;
			upmd_eal_remote_launch(fwd_loop, &fwd_lcores[w], fwd_lcores[w].lcore);
		}

	for (;;) {
		double t = now_s();

		if (quit_signal || (tp.run_time > 0 && t - t_start >= tp.run_time))
			break;
		if (tp.stats_period && t - t_last >= tp.stats_period) {
			printf("statistics after %.1f s:\n", t - t_start);
			for (i = 0; i < (int)nb_ports; i++) {
				char what[64];

				snap((unsigned)i, &cur[i]);
				snprintf(what, sizeof(what), "port %u (%s)", port_ids[i], upmd_eth_dev_name(port_ids[i]));
				print_rates(what, &last[i], &cur[i], t - t_last);
				last[i] = cur[i];
			}
			fflush(stdout);
			t_last = t;
		}
		if (inline_fwd) {
			for (k = 0; k < 4096; k++)
				for (unsigned s = 0; s < fwd_lcores[0].nb_streams; s++)
					fwd_engines[tp.mode](fwd_lcores[0].streams[s]);
		} else {
			usleep(10000);
		}
	}
	for (w = 0; !inline_fwd && w < nb_fwd_lcores; w++)
		fwd_lcores[w].stop = true;
	if (!inline_fwd)
		upmd_eal_mp_wait_lcore();
	t_end = now_s();
	if (quit_signal)
		printf("signal %d: stopping\n", (int)quit_signal);
	for (i = 0; i < (int)nb_ports; i++)
		snap((unsigned)i, &cur[i]);
	print_final(start, cur, t_end - t_start);
	if (tp.mode == FWD_DMACOPY) {
		uint64_t copied = 0, failed = 0;

		for (unsigned s = 0; s < nb_streams; s++) {
			copied += streams[s].dma_copied;
			failed += streams[s].dma_errors;
		}
		printf("dmacopy: %" PRIu64 " packets copied by the DMA engine, %" PRIu64 " copies failed\n", copied,
		       failed);
		upmd_dma_stop(tp.dma_dev);
	}
	if (tp.json)
		print_json(start, cur, t_end - t_start);
	rc = 0;
out:
	stop_all();
	upmd_eal_cleanup();
	free(eal_argv);
	free(app_argv);
	return rc;
}
