/*
 * The NVMe driver's own cost of a 4 KiB read, submission plus completion,
 * against the model controller: batches of 32 reads are submitted, the
 * model is given time to complete them all, and one poll reaps the batch,
 * so no empty poll is counted. Run under callgrind with collection on
 * only inside upmd_nvme_ns_cmd_read and upmd_nvme_qpair_process_completions
 * (bench/nvme/run.sh); alone it prints the reads done and checks each one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/upmd.h>

#define QD 32

static unsigned completed, errors;

static void read_done(void *arg, const struct upmd_nvme_cpl *cpl)
{
	(void)arg;
	completed++;
	errors += upmd_nvme_cpl_is_error(cpl);
}

int main(int argc, char **argv)
{
	char *eal[] = { argv[0], "-l", "0", "--no-huge", "-m", "128", "--model", "nvme@0000:00:04.0:ns_mb=16",
			"-a", "0000:00:04.0", "--log-level", "warning", NULL };
	unsigned batches = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 200;
	const struct upmd_memzone *mz;
	struct upmd_nvme_ctrlr *c;
	struct upmd_nvme_qpair *qp;
	struct upmd_nvme_ns *ns;
	struct timespec pause = { 0, 2000000 };
	unsigned want = 0;

	if (upmd_eal_init((int)UPMD_DIM(eal) - 1, eal) < 0 || upmd_nvme_attach("0000:00:04.0", NULL, &c) < 0 ||
	    !(ns = upmd_nvme_ctrlr_get_ns(c, 1)) || upmd_nvme_ctrlr_alloc_io_qpair(c, NULL, &qp) < 0 ||
	    upmd_memzone_reserve("bench_nvme", QD * 4096, UPMD_SOCKET_ID_ANY, 4096, &mz) < 0) {
		fprintf(stderr, "bench_nvme: set-up failed\n");
		return 1;
	}
	for (unsigned b = 0; b < batches; b++) {
		for (unsigned i = 0; i < QD; i++) {
			uint64_t lba = ((uint64_t)(b * QD + i) * 8) % (upmd_nvme_ns_get_num_sectors(ns) - 8);

			if (upmd_nvme_ns_cmd_read(ns, qp, (uint8_t *)mz->addr + i * 4096, lba, 8, read_done, NULL, 0) == 0)
				want++;
		}
		upmd_nvme_qpair_flush(qp);
		/* Let the model finish the batch; then one poll reaps it. */
		for (int tries = 0; completed < want && tries < 5000; tries++) {
			nanosleep(&pause, NULL);
			upmd_nvme_qpair_process_completions(qp, 0);
		}
	}
	printf("reads %u completed %u errors %u\n", want, completed, errors);
	upmd_memzone_free(mz);
	upmd_nvme_ctrlr_free_io_qpair(qp);
	upmd_nvme_detach(c);
	upmd_eal_cleanup();
	return completed == want && !errors ? 0 : 1;
}
