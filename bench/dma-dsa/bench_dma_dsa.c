/*
 * The DSA PMD's own cost per descriptor against the model DSA device:
 * bursts of copies are enqueued and submitted (measure_submit), the model
 * is given time to finish them all, then they are reaped (measure_reap).
 * bench/dma-dsa/run.sh runs it under callgrind collecting only inside those
 * two functions, for a dedicated and a shared work queue.
 *   upmd-bench-dma-dsa d|s BURST ITERATIONS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upmd/upmd.h>

static int16_t dev;
static const struct upmd_memzone *mz;

__attribute__((noinline)) void measure_submit(unsigned burst);
__attribute__((noinline)) unsigned measure_reap(unsigned burst);

__attribute__((noinline)) void measure_submit(unsigned burst)
{
	for (unsigned i = 0; i < burst; i++)
		upmd_dma_copy(dev, 0, mz->iova + 64u * i, mz->iova + 65536 + 64u * i, 64, 0);
	upmd_dma_submit(dev, 0);
}

__attribute__((noinline)) unsigned measure_reap(unsigned burst)
{
	uint16_t last;
	bool err;

	return upmd_dma_completed(dev, 0, (uint16_t)burst, &last, &err);
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "d";
	unsigned burst = argc > 2 ? (unsigned)atoi(argv[2]) : 1, iters = argc > 3 ? (unsigned)atoi(argv[3]) : 2000;
	char *eal[] = { argv[0], "-l", "0", "--no-huge", "-m", "64", "--model", "dsa@0000:00:04.0", "-a",
			"0000:00:04.0", "--log-level", "error", NULL };
	struct upmd_dma_conf c = { .size = sizeof(c), .nb_vchans = 1 };
	struct upmd_dma_vchan_conf vc = { .size = sizeof(vc), .nb_desc = 256 };
	unsigned done = 0;

	if ((strcmp(kind, "d") && strcmp(kind, "s")) || burst < 1 || burst > 128) {
		fprintf(stderr, "usage: %s d|s BURST(1..128) ITERATIONS\n", argv[0]);
		return 2;
	}
	/* The PMD's work-queue modes: one WQ of the kind asked for. */
	setenv("UPMD_DSA_WQS", kind, 1);
	if (upmd_eal_init((int)UPMD_DIM(eal) - 1, eal) < 0)
		return 1;
	dev = (int16_t)upmd_dma_get_dev_id_by_name("0000:00:04.0-wq0");
	if (dev < 0 || upmd_dma_configure(dev, &c) || upmd_dma_vchan_setup(dev, 0, &vc) || upmd_dma_start(dev) ||
	    upmd_memzone_reserve("bench_dsa", 1 << 20, UPMD_SOCKET_ID_ANY, 4096, &mz)) {
		fprintf(stderr, "%s: set-up failed\n", argv[0]);
		return 1;
	}
	for (unsigned it = 0; it < iters; it++) {
		unsigned got = 0;

		measure_submit(burst);
		usleep(3000);	/* the model finishes the burst: the reap finds all of it */
		for (int tries = 0; got < burst && tries < 10000; tries++) {
			unsigned k = measure_reap(burst - got);

			got += k;
			if (!k)
				usleep(100);
		}
		done += got;
	}
	printf("descriptors %u of %u\n", done, burst * iters);
	upmd_dma_stop(dev);
	upmd_eal_cleanup();
	return done == burst * iters ? 0 : 1;
}
