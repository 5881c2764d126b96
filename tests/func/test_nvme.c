/* The NVMe driver end to end against the model controller: bring-up and Identify, write-then-verify at several depths and sizes from two lcores, SGLs, 4 KiB blocks, the other commands, errors and faults, tracker exhaustion and phase wrap, recovery from a fatal status and a lost completion, detach. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upmd/upmd.h>

#include "upmd_test.h"

#define C0 "0000:00:04.0"
#define INIT(...)                                                                                 \
	upmd_eal_init((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)),          \
		      (char *[]){ "test", __VA_ARGS__, NULL })
#define MEM "-l", "0-1", "--no-huge", "-m", "192"

static struct upmd_model *model;
static struct upmd_nvme_ctrlr *ctrlr;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void up(const char *spec, const struct upmd_nvme_ctrlr_opts *opts)
{
	CU_ASSERT_EQUAL_FATAL(upmd_model_install(spec, &model), 0);
	CU_ASSERT_FATAL(INIT(MEM, "-a", C0) > 0);
	CU_ASSERT_EQUAL_FATAL(upmd_nvme_attach(C0, opts, &ctrlr), 0);
}

static void down(void)
{
	if (ctrlr)
		CU_ASSERT_EQUAL(upmd_nvme_detach(ctrlr), 0);
	ctrlr = NULL;
	upmd_eal_cleanup();
	if (model) {
		assert_model_clean(model);
		upmd_kops_set(NULL, NULL);
		upmd_model_destroy(model);
		model = NULL;
	}
}

struct io {
	volatile int done;
	uint16_t status;
	unsigned *counter;
};

static void io_cb(void *arg, const struct upmd_nvme_cpl *cpl)
{
	struct io *io = arg;

	io->status = cpl->status & 0xfffe;
	io->done = 1;
	if (io->counter)
		(*io->counter)++;
}

/* Poll until @io is done (or 5 s). */
static int wait_io(struct upmd_nvme_qpair *qp, struct io *io)
{
	double end = now() + 5;

	while (!io->done && now() < end)
		if (upmd_nvme_qpair_process_completions(qp, 0) < 0)
			return -ENXIO;
	return io->done ? 0 : -ETIMEDOUT;
}

static void fill(uint8_t *p, size_t len, uint64_t lba, uint32_t ss, uint32_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = ((lba + i / ss) * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)seed << 32) ^ (i % ss);

		memcpy(p + i, &v, 8);
	}
}

static void test_identify(void)
{
	const struct upmd_nvme_ctrlr_data *cd;
	struct upmd_nvme_ctrlr *other;
	struct upmd_nvme_ctrlr_opts o;
	struct upmd_nvme_ns *ns;
	struct upmd_model_nvme_stats st;
	uint32_t id, n = 0;

	up("nvme@" C0 ":nn=2,ns_mb=16,queues=4", NULL);
	cd = upmd_nvme_ctrlr_get_data(ctrlr);
	CU_ASSERT_EQUAL(cd->vid, 0x1b36);
	CU_ASSERT_EQUAL(memcmp(cd->mn, "upmd model NVMe", 15), 0);
	CU_ASSERT_EQUAL(cd->nn, 2);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_get_num_ns(ctrlr), 2);
	for (id = upmd_nvme_ctrlr_first_active_ns(ctrlr); id; id = upmd_nvme_ctrlr_next_active_ns(ctrlr, id)) {
		ns = upmd_nvme_ctrlr_get_ns(ctrlr, id);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
		CU_ASSERT_EQUAL(upmd_nvme_ns_get_id(ns), id);
		CU_ASSERT_EQUAL(upmd_nvme_ns_get_sector_size(ns), 512);
		CU_ASSERT_EQUAL(upmd_nvme_ns_get_num_sectors(ns), 16 * 2048);
		CU_ASSERT_EQUAL(upmd_nvme_ns_get_size(ns), 16 * UPMD_MB);
		n++;
	}
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_PTR_NULL(upmd_nvme_ctrlr_get_ns(ctrlr, 3));
	CU_ASSERT_PTR_NULL(upmd_nvme_ctrlr_get_ns(ctrlr, 0));
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_max_xfer_size(ctrlr), 512 * 1024);	/* MDTS 7 */
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_max_io_qpairs(ctrlr), 4);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_max_queue_size(ctrlr), 1024);
	CU_ASSERT_FALSE(upmd_nvme_ctrlr_uses_sgl(ctrlr));
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_count(), 1);
	CU_ASSERT_PTR_EQUAL(upmd_nvme_ctrlr_get(0), ctrlr);
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_TRUE(st.csts & 1);	/* ready */

	/* Mistakes, each with what to do about it. */
	log_capture();
	CU_ASSERT_EQUAL(upmd_nvme_attach(C0, NULL, &other), -EBUSY);
	ASSERT_LOG_HAS("already attached");
	CU_ASSERT_EQUAL(upmd_nvme_attach("0000:00:09.0", NULL, &other), -ENODEV);
	ASSERT_LOG_HAS("-a 0000:00:09.0");
	upmd_nvme_ctrlr_opts_default(&o);
	o.size = 8;
	CU_ASSERT_EQUAL(upmd_nvme_attach(C0, &o, &other), -EINVAL);
	log_release();
	/* upmd_nvme_probe finds nothing more to attach. */
	CU_ASSERT_EQUAL(upmd_nvme_probe(NULL, NULL, NULL), 0);

	CU_ASSERT_EQUAL(upmd_nvme_detach(ctrlr), 0);
	ctrlr = NULL;
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_EQUAL(st.shutdowns, 1);
	CU_ASSERT_FALSE(st.csts & 1);
	CU_ASSERT_EQUAL(st.io_sqs, 0);
	/* probe attaches it again, then the EAL's cleanup detaches it. */
	CU_ASSERT_EQUAL(upmd_nvme_probe(NULL, NULL, NULL), 1);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_count(), 1);
	down();
}

/* ---- write then verify ---- */

struct wv {
	struct upmd_nvme_ns *ns;
	uint64_t first, count;	/* blocks */
	uint32_t qd, blocks;	/* per I/O */
	uint32_t seed;
	int rc;
	uint64_t ios, mismatches;
};

struct slot {
	struct io io;
	uint8_t *buf;
	uint64_t lba;
	bool busy;
};

/* Write [first, first + count) at depth qd, then read it all back and compare. */
static void *wv_run(void *arg)
{
	struct wv *w = arg;
	uint32_t ss = upmd_nvme_ns_get_sector_size(w->ns), len = w->blocks * ss;
	struct upmd_nvme_ctrlr *c = upmd_nvme_ns_get_ctrlr(w->ns);
	const struct upmd_memzone *mz;
	struct upmd_nvme_qpair *qp;
	struct slot *s;
	char name[32];
	int rc;

	snprintf(name, sizeof(name), "wv%lu_%u", (unsigned long)w->first, w->qd);
	rc = upmd_nvme_ctrlr_alloc_io_qpair(c, NULL, &qp);
	if (rc < 0) {
		w->rc = rc;
		return NULL;
	}
	rc = upmd_memzone_reserve(name, (size_t)w->qd * len, UPMD_SOCKET_ID_ANY, 4096, &mz);
	s = calloc(w->qd, sizeof(*s));
	if (rc < 0 || !s) {
		w->rc = rc < 0 ? rc : -ENOMEM;
		upmd_nvme_ctrlr_free_io_qpair(qp);
		free(s);
		return NULL;
	}
	for (uint32_t i = 0; i < w->qd; i++)
		s[i].buf = (uint8_t *)mz->addr + (size_t)i * len;
	for (int pass = 0; pass < 2 && w->rc == 0; pass++) {
		uint64_t next = w->first, end = w->first + w->count, done = 0, total = w->count / w->blocks;
		double deadline = now() + 60;

		while (done < total && w->rc == 0) {
			for (uint32_t i = 0; i < w->qd; i++) {
				struct slot *sl = &s[i];

				if (sl->busy && sl->io.done) {
					sl->busy = false;
					done++;
					w->ios++;
					if (sl->io.status) {
						printf("\n  lba %lu: %s\n", (unsigned long)sl->lba,
						       upmd_nvme_status_str(sl->io.status));
						w->rc = -EIO;
					} else if (pass == 1) {
						uint8_t *want = malloc(len);

						fill(want, len, sl->lba, ss, w->seed);
						if (memcmp(want, sl->buf, len))
							w->mismatches++;
						free(want);
					}
				}
				if (!sl->busy && next < end) {
					sl->lba = next;
					memset(&sl->io, 0, sizeof(sl->io));
					if (pass == 0) {
						fill(sl->buf, len, next, ss, w->seed);
						rc = upmd_nvme_ns_cmd_write(w->ns, qp, sl->buf, next, w->blocks, io_cb,
									    &sl->io, 0);
					} else {
						memset(sl->buf, 0, len);
						rc = upmd_nvme_ns_cmd_read(w->ns, qp, sl->buf, next, w->blocks, io_cb,
									   &sl->io, 0);
					}
					if (rc == -EAGAIN)
						continue;
					if (rc < 0) {
						w->rc = rc;
						break;
					}
					sl->busy = true;
					next += w->blocks;
				}
			}
			if (upmd_nvme_qpair_process_completions(qp, 0) < 0)
				w->rc = -ENXIO;
			if (now() > deadline)
				w->rc = -ETIMEDOUT;
		}
	}
	CU_ASSERT_EQUAL(upmd_nvme_qpair_outstanding(qp), 0);
	upmd_nvme_ctrlr_free_io_qpair(qp);
	upmd_memzone_free(mz);
	free(s);
	return NULL;
}

static int wv_lcore(void *arg)
{
	wv_run(arg);
	return 0;
}

/* The namespace in two halves, one per lcore, each on its own queue pair. */
static void write_verify_2lcores(struct upmd_nvme_ns *ns, uint32_t qd, uint32_t blocks, uint64_t span, uint32_t seed)
{
	struct wv w[2];
	uint64_t half = span / 2 / blocks * blocks;
	unsigned worker = upmd_get_next_lcore((unsigned)-1, true);

	memset(w, 0, sizeof(w));
	for (int i = 0; i < 2; i++) {
		w[i].ns = ns;
		w[i].first = (uint64_t)i * half;
		w[i].count = half;
		w[i].qd = qd;
		w[i].blocks = blocks;
		w[i].seed = seed;
	}
	CU_ASSERT_EQUAL_FATAL(upmd_eal_remote_launch(wv_lcore, &w[1], worker), 0);
	wv_run(&w[0]);
	upmd_eal_wait_lcore(worker);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(w[i].rc, 0);
		CU_ASSERT_EQUAL(w[i].mismatches, 0);
		CU_ASSERT_EQUAL(w[i].ios, 2 * (half / blocks));
		if (w[i].rc || w[i].mismatches)
			printf("\n  qd %u, %u blocks, half %d: rc %d, %lu mismatches\n", qd, blocks, i, w[i].rc,
			       (unsigned long)w[i].mismatches);
	}
}

static void test_write_verify(void)
{
	static const struct {
		uint32_t qd, blocks;
	} runs[] = { { 1, 1 }, { 1, 8 }, { 8, 8 }, { 32, 8 }, { 32, 1 }, { 4, 32 }, { 16, 256 }, { 2, 1024 } };
	struct upmd_model_nvme_stats st;
	struct upmd_nvme_ns *ns;

	up("nvme@" C0 ":ns_mb=4", NULL);
	ns = upmd_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
	/* 4 MiB: every block written and read back in each run. */
	for (unsigned i = 0; i < UPMD_DIM(runs); i++)
		write_verify_2lcores(ns, runs[i].qd, runs[i].blocks, upmd_nvme_ns_get_num_sectors(ns), i + 1);
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT_EQUAL(st.dma_faults, 0);
	if (st.errors || st.dma_faults)
		printf("\n  model: %llu errors, %llu DMA faults, %llu admin commands, %llu I/O commands\n",
		       (unsigned long long)st.errors, (unsigned long long)st.dma_faults,
		       (unsigned long long)st.admin_cmds, (unsigned long long)st.io_cmds);
	CU_ASSERT_EQUAL(st.bytes_written, UPMD_DIM(runs) * 4 * UPMD_MB);
	CU_ASSERT_EQUAL(st.bytes_read, UPMD_DIM(runs) * 4 * UPMD_MB);
	down();
}

static void test_write_verify_4k_sgl(void)
{
	struct upmd_nvme_ctrlr_opts o;
	struct upmd_nvme_ns *ns;

	upmd_nvme_ctrlr_opts_default(&o);
	o.flags = UPMD_NVME_CTRLR_F_SGL;
	up("nvme@" C0 ":ns_mb=4,lba=4096", &o);
	CU_ASSERT_TRUE(upmd_nvme_ctrlr_uses_sgl(ctrlr));
	ns = upmd_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
	CU_ASSERT_EQUAL(upmd_nvme_ns_get_sector_size(ns), 4096);
	CU_ASSERT_EQUAL(upmd_nvme_ns_get_num_sectors(ns), 1024);
	write_verify_2lcores(ns, 8, 1, 1024, 11);
	write_verify_2lcores(ns, 4, 16, 1024, 12);
	down();

	/* SGLs asked for but not offered: PRPs. */
	up("nvme@" C0 ":ns_mb=4,sgl=off", &o);
	CU_ASSERT_FALSE(upmd_nvme_ctrlr_uses_sgl(ctrlr));
	write_verify_2lcores(upmd_nvme_ctrlr_get_ns(ctrlr, 1), 8, 16, 8192, 13);
	down();
}

/* ---- the other commands, and errors ---- */

static void test_commands_and_errors(void)
{
	struct upmd_nvme_qpair *qp;
	const struct upmd_memzone *mz;
	struct upmd_nvme_ns *ns;
	struct upmd_nvme_cmd cmd;
	struct upmd_model_nvme_stats st;
	struct upmd_model_fault f;
	struct upmd_nvme_dsm_range r = { .attributes = 0, .length = 8, .starting_lba = 16 };
	struct io io;
	uint8_t *buf, heap_buf[512];
	int faults = 0;

	up("nvme@" C0 ":ns_mb=4", NULL);
	ns = upmd_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL_FATAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &qp), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("cmdbuf", 64 * 1024, UPMD_SOCKET_ID_ANY, 4096, &mz), 0);
	buf = mz->addr;

	/* write 32 blocks of 0xab, write zeroes over 8..15, deallocate 16..23, flush, read all back */
	memset(buf, 0xab, 32 * 512);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_write(ns, qp, buf, 0, 32, io_cb, &io, UPMD_NVME_IO_FLAGS_FUA), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_write_zeroes(ns, qp, 8, 8, io_cb, &io, 0), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_deallocate(ns, qp, &r, 1, io_cb, &io), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_flush(ns, qp, io_cb, &io), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	memset(buf, 0x55, 32 * 512);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, buf, 0, 32, io_cb, &io, 0), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	for (unsigned b = 0; b < 32; b++) {
		uint8_t want = b >= 8 && b < 24 ? 0 : 0xab;
		unsigned bad = 0;

		for (unsigned i = 0; i < 512; i++)
			bad += buf[b * 512 + i] != want;
		CU_ASSERT_EQUAL(bad, 0);
	}
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_EQUAL(st.write_zeroes, 1);
	CU_ASSERT_EQUAL(st.dsm, 1);
	CU_ASSERT_EQUAL(st.flushes, 1);

	/* The driver refuses what it can see is wrong, before the device. */
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, buf, 8191, 2, io_cb, &io, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, buf, 0, 0, io_cb, &io, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, buf, 0, 2048, io_cb, &io, 0), -EINVAL);	/* 1 MiB > MDTS */
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, NULL, 0, 1, io_cb, &io, 0), -EINVAL);
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, heap_buf, 0, 1, io_cb, &io, 0), -EFAULT);	/* not in the IOAS */
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, buf + 2, 0, 1, io_cb, &io, 0), -EINVAL);	/* not dword aligned */
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_deallocate(ns, qp, &r, 0, io_cb, &io), -EINVAL);
	CU_ASSERT_EQUAL(upmd_nvme_qpair_outstanding(qp), 0);

	/* What only the controller can say, as readable statuses. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_OPC_READ;
	cmd.nsid = 1;
	cmd.cdw10 = 8192;	/* past the end */
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_qpair_cmd_raw(qp, &cmd, buf, 512, io_cb, &io), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(io.status), "LBA OUT OF RANGE");
	cmd.cdw10 = 0;
	cmd.nsid = 9;
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_qpair_cmd_raw(qp, &cmd, buf, 512, io_cb, &io), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(io.status), "INVALID NAMESPACE OR FORMAT");
	cmd.nsid = 1;
	cmd.opc = 0x7f;
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_qpair_cmd_raw(qp, &cmd, NULL, 0, io_cb, &io), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(io.status), "INVALID OPCODE");

	/* A read into an IOVA the IOAS does not map: the IOMMU stops it,
	 * the command fails, nothing else is hurt and the queue goes on. */
	upmd_model_stats_reset(model);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = UPMD_NVME_OPC_READ;
	cmd.nsid = 1;
	cmd.cdw12 = 7;	/* 8 blocks */
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_qpair_cmd_raw_iova(qp, &cmd, 0x7f0000000000ull, 4096, io_cb, &io), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(io.status), "DATA TRANSFER ERROR");
	while (upmd_model_fault_pop(model, &f) == 0) {
		CU_ASSERT_STRING_EQUAL(f.bdf, C0);
		CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
		CU_ASSERT_TRUE(f.write);
		faults++;
	}
	CU_ASSERT_TRUE(faults >= 1);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, buf, 0, 1, io_cb, &io, 0), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	CU_ASSERT_EQUAL(buf[0], 0xab);

	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_free_io_qpair(qp), 0);
	upmd_memzone_free(mz);
	down();
}

/* ---- trackers, phase, queue pairs ---- */

static void test_trackers_and_phase(void)
{
	struct upmd_nvme_io_qpair_opts qo = { .size = sizeof(qo), .qsize = 4 };
	struct upmd_nvme_qpair *qp, *q2, *q3;
	const struct upmd_memzone *mz;
	struct upmd_nvme_ns *ns;
	struct io io[4];
	unsigned completed = 0, submitted = 0;
	double end;
	uint8_t *buf;

	up("nvme@" C0 ":ns_mb=4,queues=2", NULL);
	ns = upmd_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("tbuf", 4 * 4096, UPMD_SOCKET_ID_ANY, 4096, &mz), 0);
	buf = mz->addr;
	CU_ASSERT_EQUAL_FATAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, &qo, &qp), 0);
	CU_ASSERT_EQUAL(upmd_nvme_qpair_get_size(qp), 4);
	/* A queue of 4 entries has 3 trackers: the 4th submission waits. */
	memset(io, 0, sizeof(io));
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_write(ns, qp, buf + i * 4096, (uint64_t)i * 8, 8, io_cb, &io[i], 0), 0);
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_write(ns, qp, buf + 3 * 4096, 24, 8, io_cb, &io[3], 0), -EAGAIN);
	CU_ASSERT_EQUAL(upmd_nvme_qpair_outstanding(qp), 3);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(wait_io(qp, &io[i]), 0);
	CU_ASSERT_EQUAL(upmd_nvme_qpair_outstanding(qp), 0);
	/* 3000 commands through the 4-entry queue: the phase flips 750 times. */
	end = now() + 60;
	memset(io, 0, sizeof(io));
	for (int i = 0; i < 3; i++)
		io[i].done = 1;
	while (completed < 3000 && now() < end) {
		for (int i = 0; i < 3; i++) {
			if (!io[i].done || submitted >= 3000)
				continue;
			memset(&io[i], 0, sizeof(io[i]));
			io[i].counter = &completed;
			if (upmd_nvme_ns_cmd_read(ns, qp, buf + i * 4096, (uint64_t)(submitted % 64) * 8, 8, io_cb, &io[i],
						  0) == 0)
				submitted++;
			else
				io[i].done = 1;
		}
		CU_ASSERT_TRUE(upmd_nvme_qpair_process_completions(qp, 0) >= 0);
	}
	CU_ASSERT_EQUAL(completed, 3000);
	/* The model granted 2 queue pairs. */
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &q2), 0);
	log_capture();
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &q3), -ENOSPC);
	ASSERT_LOG_HAS("all 2 I/O queue pairs");
	qo.qsize = 4096;
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, &qo, &q3), -EINVAL);
	ASSERT_LOG_HAS("takes 2..1024");
	log_release();
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_free_io_qpair(q2), 0);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_free_io_qpair(qp), 0);
	upmd_memzone_free(mz);
	down();
}

/* ---- recovery ---- */

static void test_recovery_fatal(void)
{
	struct upmd_nvme_qpair *qp;
	const struct upmd_memzone *mz;
	struct upmd_nvme_ns *ns;
	struct upmd_model_nvme_stats st;
	struct io io[4];
	unsigned aborted = 0;
	double end;

	up("nvme@" C0 ":ns_mb=4", NULL);
	ns = upmd_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("fbuf", 4 * 4096, UPMD_SOCKET_ID_ANY, 4096, &mz), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &qp), 0);
	/* The controller fails with requests outstanding. */
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(model, C0, UPMD_MODEL_NVME_FATAL, 1), 0);
	memset(io, 0, sizeof(io));
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, (uint8_t *)mz->addr + i * 4096, (uint64_t)i * 8, 8, io_cb,
						      &io[i], 0), 0);
	log_capture();
	end = now() + 10;
	while (now() < end && !(io[0].done && io[1].done && io[2].done && io[3].done))
		upmd_nvme_qpair_process_completions(qp, 0);
	ASSERT_LOG_HAS("resetting the controller: fatal status (CSTS.CFS)");
	log_release();
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_TRUE(io[i].done);
		aborted += io[i].status == UPMD_NVME_STATUS(0, UPMD_NVME_SC_ABORTED_SQ_DELETION);
	}
	CU_ASSERT_EQUAL(aborted, 4);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_reset_count(ctrlr), 1);
	CU_ASSERT_FALSE(upmd_nvme_ctrlr_is_failed(ctrlr));
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_FALSE(st.csts & 2);
	CU_ASSERT_TRUE(st.resets >= 1);
	/* The same queue pair works again, data intact. */
	write_verify_2lcores(ns, 8, 8, 2048, 21);
	memset(io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, mz->addr, 0, 8, io_cb, &io[0], 0), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io[0]), 0);
	CU_ASSERT_EQUAL(io[0].status, 0);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_free_io_qpair(qp), 0);
	upmd_memzone_free(mz);
	down();
}

static void test_recovery_lost_completion(void)
{
	struct upmd_nvme_ctrlr_opts o;
	struct upmd_nvme_qpair *qp;
	const struct upmd_memzone *mz;
	struct upmd_nvme_ns *ns;
	struct upmd_model_nvme_stats st;
	struct io io;

	upmd_nvme_ctrlr_opts_default(&o);
	o.io_timeout_ms = 300;
	up("nvme@" C0 ":ns_mb=4", &o);
	ns = upmd_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("lbuf", 4096, UPMD_SOCKET_ID_ANY, 4096, &mz), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL, &qp), 0);
	/* The controller loses a completion: the driver aborts the command. */
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(model, C0, UPMD_MODEL_NVME_DROP_CPL, 1), 0);
	memset(&io, 0, sizeof(io));
	log_capture();
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, mz->addr, 0, 8, io_cb, &io, 0), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	ASSERT_LOG_HAS("not done after 300 ms: aborting it");
	log_release();
	CU_ASSERT_STRING_EQUAL(upmd_nvme_status_str(io.status), "ABORTED - BY REQUEST");
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_EQUAL(st.aborts, 1);
	CU_ASSERT_EQUAL(upmd_nvme_ctrlr_reset_count(ctrlr), 0);
	/* And carries on. */
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, mz->addr, 0, 8, io_cb, &io, 0), 0);
	CU_ASSERT_EQUAL(wait_io(qp, &io), 0);
	CU_ASSERT_EQUAL(io.status, 0);
	/* Detach with a request the controller sits on: it completes, aborted. */
	CU_ASSERT_EQUAL(upmd_model_nvme_inject(model, C0, UPMD_MODEL_NVME_DROP_CPL, 1), 0);
	memset(&io, 0, sizeof(io));
	CU_ASSERT_EQUAL(upmd_nvme_ns_cmd_read(ns, qp, mz->addr, 0, 8, io_cb, &io, 0), 0);
	upmd_nvme_qpair_flush(qp);
	CU_ASSERT_EQUAL(upmd_nvme_detach(ctrlr), 0);
	ctrlr = NULL;
	CU_ASSERT_TRUE(io.done);
	CU_ASSERT_TRUE(upmd_nvme_cpl_is_error(&(struct upmd_nvme_cpl){ .status = io.status }));
	CU_ASSERT_EQUAL(upmd_model_nvme_stats(model, C0, &st), 0);
	CU_ASSERT_EQUAL(st.io_sqs, 0);
	CU_ASSERT_EQUAL(st.io_cqs, 0);
	upmd_memzone_free(mz);
	down();
}


/* A fatal status while attach is still identifying namespaces. */
static volatile int inject_done;

static void *inject_during_attach(void *arg)
{
	struct upmd_model_nvme_stats st;
	double end = now() + 10;

	(void)arg;
	while (now() < end) {
		if (upmd_model_nvme_stats(model, C0, &st) == 0 && st.admin_cmds >= 3) {
			upmd_model_nvme_inject(model, C0, UPMD_MODEL_NVME_FATAL, 1);
			break;
		}
	}
	inject_done = 1;
	return NULL;
}

static void test_fatal_during_attach(void)
{
	pthread_t th;
	int rc;

	CU_ASSERT_EQUAL_FATAL(upmd_model_install("nvme@" C0 ":nn=4,ns_mb=4", &model), 0);
	CU_ASSERT_FATAL(INIT(MEM, "-a", C0) > 0);
	inject_done = 0;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, inject_during_attach, NULL), 0);
	log_capture();
	rc = upmd_nvme_attach(C0, NULL, &ctrlr);
	pthread_join(th, NULL);
	log_release();
	/* Either the reset brought it back and the attach finished, or the
	 * attach failed and left nothing behind: never a crash. */
	CU_ASSERT_TRUE(rc == 0 || rc == -EIO || rc == -ETIMEDOUT || rc == -ENXIO);
	if (rc == 0) {
		struct upmd_nvme_ns *ns = upmd_nvme_ctrlr_get_ns(ctrlr, upmd_nvme_ctrlr_first_active_ns(ctrlr));
		struct upmd_model_nvme_stats st;

		/* On a slow run the status may have been set only after the
		 * attach finished: then it is an ordinary fatal status, and the
		 * reset the application asks for brings the controller back. */
		if (upmd_model_nvme_stats(model, C0, &st) == 0 && (st.csts & 2))
			CU_ASSERT_EQUAL(upmd_nvme_ctrlr_reset(ctrlr), 0);
		CU_ASSERT_PTR_NOT_NULL(ns);
		if (ns)
			write_verify_2lcores(ns, 4, 8, 1024, 31);
	} else {
		ctrlr = NULL;
		CU_ASSERT_EQUAL(upmd_nvme_ctrlr_count(), 0);
	}
	down();
}

static const struct upmd_test nvme_tests[] = {
	{ "bring-up, Identify, namespaces, mistakes, detach and probe", test_identify },
	{ "write then verify: QD 1..32, 512 B..512 KiB, two lcores", test_write_verify },
	{ "write then verify: 4 KiB blocks with SGLs; SGLs not offered", test_write_verify_4k_sgl },
	{ "write zeroes, deallocate, flush; refusals; controller statuses; unmapped IOVA", test_commands_and_errors },
	{ "tracker exhaustion, phase across 750 wraps, queue pair limits", test_trackers_and_phase },
	{ "recovery: fatal status with requests outstanding", test_recovery_fatal },
	{ "recovery: lost completion aborted on timeout; detach with one outstanding", test_recovery_lost_completion },
	{ "recovery: fatal status while attach identifies namespaces", test_fatal_during_attach },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "nvme driver on the model controller", NULL, NULL, nvme_tests })
