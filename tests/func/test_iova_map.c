/* IOVAs against the model: the IOAS's allocator and the model's IOMMU agree at every step, and dynamic mappings (strict, ephemeral, batched) end to end. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <upmd/edu.h>
#include <upmd/upmd.h>

#include "upmd_test.h"

#define EDU "0000:00:04.0"
#define PG 4096ULL

static struct upmd_model *model;

static int install(const char *spec)
{
	int rc = upmd_model_install(spec, &model);

	CU_ASSERT_EQUAL(rc, 0);
	return rc;
}

static void uninstall(void)
{
	if (!model)
		return;
	assert_model_clean(model);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(model);
	model = NULL;
}

#define INIT(...)                                                              \
	upmd_eal_init((int)(sizeof((char *[]){ "test", __VA_ARGS__ }) / sizeof(char *)), \
		      (char *[]){ "test", __VA_ARGS__, NULL })

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The model's mappings whose VA lies in [lo, hi), into @out; their count. */
static unsigned model_maps_in(uint64_t lo, uint64_t hi, struct upmd_model_mapping *out, unsigned max)
{
	static struct upmd_model_mapping all[4096];
	int n = upmd_model_mappings(model, all, 4096);
	unsigned i, k = 0;

	CU_ASSERT_TRUE_FATAL(n >= 0 && n <= 4096);
	for (i = 0; i < (unsigned)n; i++)
		if (all[i].va >= lo && all[i].va < hi && k < max)
			out[k++] = all[i];
	return k;
}

/* ---- the IOAS's picks and the model's IOMMU agree at every step ---------- */

struct ref_map {
	uint64_t va, iova, len;
};

#define REGION (64ULL << 20)
#define MAXREF 512

static struct ref_map ref[MAXREF];
static unsigned nref;

static bool ref_overlaps(uint64_t iova, uint64_t len)
{
	for (unsigned i = 0; i < nref; i++)
		if (ref[i].iova < iova + len && iova < ref[i].iova + ref[i].len)
			return true;
	return false;
}

static int ref_cmp(const void *a, const void *b)
{
	const struct ref_map *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* Whether the model holds exactly the reference mappings; prints the first difference. */
static bool agree(struct upmd_ioas *ioas, uint64_t lo, unsigned step)
{
	static struct upmd_model_mapping mm[MAXREF + 8];
	uint32_t id = upmd_ioas_id(ioas);
	unsigned n = model_maps_in(lo, lo + REGION, mm, MAXREF + 8), i;

	qsort(ref, nref, sizeof(ref[0]), ref_cmp);
	if (n != nref) {
		printf("\n  step %u: the model holds %u mappings, the IOAS made %u\n", step, n, nref);
		return false;
	}
	for (i = 0; i < n; i++)
		if (mm[i].ioas_id != id || mm[i].iova != ref[i].iova || mm[i].len != ref[i].len ||
		    mm[i].va != ref[i].va) {
			printf("\n  step %u: model IOVA 0x%llx len 0x%llx VA 0x%llx, expected 0x%llx 0x%llx 0x%llx\n",
			       step, (unsigned long long)mm[i].iova, (unsigned long long)mm[i].len,
			       (unsigned long long)mm[i].va, (unsigned long long)ref[i].iova,
			       (unsigned long long)ref[i].len, (unsigned long long)ref[i].va);
			return false;
		}
	return true;
}

static bool allowed_in_ranges(struct upmd_ioas *ioas, uint64_t iova, uint64_t len)
{
	const struct upmd_iova_range *r;
	unsigned n = upmd_ioas_ranges(ioas, &r);

	for (unsigned i = 0; i < n; i++)
		if (iova >= r[i].start && iova + len - 1 <= r[i].last)
			return true;
	return false;
}

static void agreement(enum upmd_ioas_backend backend)
{
	struct upmd_ioas_conf conf = { .size = sizeof(conf), .backend = backend };
	struct upmd_ioas_dev_req req = {
		.size = sizeof(req), .bdf = EDU, .cdev = "vfio0", .iommu_group = 10,
	};
	unsigned step, maps = 0, fixed = 0, unmaps = 0, refused = 0;
	struct upmd_ioas *ioas = NULL;
	uint8_t *region;
	bool ok = true;
	int fd = -1;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_open(&conf, &ioas), 0);
	CU_ASSERT_EQUAL_FATAL(upmd_ioas_device_open(ioas, &req, &fd), 0);
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CU_ASSERT_NOT_EQUAL_FATAL(region, MAP_FAILED);
	nref = 0;

	for (step = 0; step < 3000 && ok; step++) {
		unsigned op = (unsigned)(rnd() % 8);

		if ((op < 5 || nref == 0) && nref < MAXREF) {
			/* Map 1..512 pages (sometimes a whole 2 MiB) of the region. */
			uint64_t pages = (rnd() % 4 == 0) ? 512 : 1 + rnd() % 64;
			uint64_t len = pages * PG;
			uint64_t off = (rnd() % (REGION / PG - pages)) * PG;
			uint64_t iova = 0;
			bool want_fixed = op == 4;
			int rc, expect = 0;

			if (want_fixed) {
				/* Somewhere low in the space, where picks also land. */
				iova = (1ULL << 20) + (rnd() % 65536) * PG;
				if (!allowed_in_ranges(ioas, iova, len))
					expect = -EINVAL;
				else if (ref_overlaps(iova, len))
					expect = -EEXIST;
			}
			rc = upmd_ioas_map(ioas, region + off, len, &iova,
					   UPMD_IOAS_MAP_RW | (want_fixed ? UPMD_IOAS_MAP_FIXED : 0));
			if (rc != expect) {
				printf("\n  step %u: map of 0x%llx bytes returned %d, expected %d\n", step,
				       (unsigned long long)len, rc, expect);
				ok = false;
				break;
			}
			if (rc < 0) {
				refused++;
			} else {
				/* A pick is aligned, allowed, and overlaps nothing the IOAS holds. */
				if (!want_fixed && (iova % PG || !allowed_in_ranges(ioas, iova, len) ||
						    ref_overlaps(iova, len))) {
					printf("\n  step %u: picked IOVA 0x%llx len 0x%llx is unusable\n", step,
					       (unsigned long long)iova, (unsigned long long)len);
					ok = false;
					break;
				}
				ref[nref++] = (struct ref_map){ (uintptr_t)(region + off), iova, len };
				maps++;
				fixed += want_fixed;
			}
		} else if (op == 7 && nref) {
			/* A range that cuts a mapping unmaps nothing. */
			struct ref_map *m = &ref[rnd() % nref];
			int rc = m->len > PG ? upmd_ioas_unmap(ioas, m->iova + PG, m->len - PG) : 0;

			if (m->len > PG && rc != -ENOENT) {
				printf("\n  step %u: cutting unmap returned %d\n", step, rc);
				ok = false;
			}
		} else if (nref) {
			unsigned i = (unsigned)(rnd() % nref);
			int rc = upmd_ioas_unmap(ioas, ref[i].iova, ref[i].len);

			if (rc != 0) {
				printf("\n  step %u: unmap returned %d\n", step, rc);
				ok = false;
				break;
			}
			ref[i] = ref[--nref];
			unmaps++;
		}
		if (ok)
			ok = agree(ioas, (uintptr_t)region, step);
	}
	printf("\n  %u steps: %u maps (%u fixed), %u refused as predicted, %u unmaps, up to %u live ",
	       step, maps, fixed, refused, unmaps, MAXREF);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_TRUE(maps > 500 && unmaps > 500 && refused > 0);

	/* Everything back: the whole space can be picked again at once. */
	while (nref) {
		CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, ref[nref - 1].iova, ref[nref - 1].len), 0);
		nref--;
	}
	CU_ASSERT_TRUE(agree(ioas, (uintptr_t)region, step));
	{
		uint64_t iova = 0;

		CU_ASSERT_EQUAL(upmd_ioas_map(ioas, region, REGION, &iova, UPMD_IOAS_MAP_RW), 0);
		CU_ASSERT_EQUAL(iova, 1ULL << 26);	/* first fit, aligned to its size */
		CU_ASSERT_EQUAL(upmd_ioas_unmap(ioas, iova, REGION), 0);
	}
	CU_ASSERT_EQUAL(upmd_ioas_device_close(ioas, fd), 0);
	upmd_ioas_close(ioas);
	munmap(region, REGION);
	uninstall();
}

static void test_agree_iommufd(void)
{
	agreement(UPMD_IOAS_BACKEND_IOMMUFD);
}

static void test_agree_type1(void)
{
	agreement(UPMD_IOAS_BACKEND_TYPE1);
}

/* ---- dynamic mappings through the EAL ------------------------------------ */

static struct upmd_iova_map_stats stats(void)
{
	struct upmd_iova_map_stats st;

	upmd_iova_map_stats(&st);
	return st;
}

static void *pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CU_ASSERT_NOT_EQUAL_FATAL(p, MAP_FAILED);
	memset(p, 0, n * PG);
	return p;
}

static void test_map_dma_unmap(void)
{
	struct upmd_model_mapping mm[4];
	struct upmd_model_fault f;
	struct upmd_edu *edu;
	uint8_t *p, *buf;
	uint64_t iova = 0;
	int i;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_TRUE_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "--iova-mode", "alloc", "-a", EDU,
				   "--log-level", "err") > 0);
	edu = upmd_edu_first();
	CU_ASSERT_PTR_NOT_NULL_FATAL(edu);
	p = pages(3);
	buf = p + 100;	/* unaligned: the pages holding it are mapped */
	for (i = 0; i < 2048; i++)
		buf[i] = (uint8_t)(i * 7);

	CU_ASSERT_EQUAL_FATAL(upmd_iova_map(buf, 5000, UPMD_IOVA_MAP_RW, &iova), 0);
	CU_ASSERT_EQUAL(iova % PG, 100);
	CU_ASSERT_EQUAL(upmd_iova_from_va(buf), iova);
	CU_ASSERT_EQUAL(upmd_mem_virt2iova(buf + 4000), iova + 4000);
	CU_ASSERT_EQUAL(upmd_iova_from_va(p), iova - 100);
	CU_ASSERT_EQUAL(upmd_iova_from_va(p + 2 * PG), UPMD_BAD_IOVA);	/* 100 + 5000 < 2 pages */
	CU_ASSERT_EQUAL(upmd_iova_table_to_va(iova), buf);
	CU_ASSERT_EQUAL(model_maps_in((uintptr_t)p, (uintptr_t)p + 3 * PG, mm, 4), 1);
	CU_ASSERT_EQUAL(mm[0].iova, iova - 100);
	CU_ASSERT_EQUAL(mm[0].len, 2 * PG);
	CU_ASSERT_EQUAL(mm[0].prot, UPMD_MODEL_MAP_READ | UPMD_MODEL_MAP_WRITE);
	CU_ASSERT_EQUAL(stats().mappings, 1);
	CU_ASSERT_EQUAL(stats().bytes, 2 * PG);

	/* The device reaches it: RAM -> device -> RAM 2048 bytes further. */
	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova, 0, 2048, false, 5000), 0);
	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova + 2048, 0, 2048, true, 5000), 0);
	CU_ASSERT_EQUAL(memcmp(buf, buf + 2048, 2048), 0);

	/* A strict unmap: gone from the table and the IOMMU when it returns. */
	CU_ASSERT_EQUAL(upmd_iova_unmap(buf, 5000), 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(buf), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(model_maps_in((uintptr_t)p, (uintptr_t)p + 3 * PG, mm, 4), 0);
	CU_ASSERT_EQUAL(stats().mappings, 0);
	CU_ASSERT_EQUAL(stats().pending, 0);
	/* The device's write completes (as on QEMU) but is blocked and recorded. */
	memset(buf, 0x5a, 64);
	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova, 0, 64, true, 5000), 0);
	CU_ASSERT_EQUAL(buf[0], 0x5a);	/* untouched */
	CU_ASSERT_EQUAL(buf[63], 0x5a);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.iova, iova);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_UNMAPPED);
	CU_ASSERT_EQUAL(upmd_iova_unmap(buf, 5000), -ENOENT);

	/* Read-only for the device: its writes fault. */
	CU_ASSERT_EQUAL_FATAL(upmd_iova_map(p, PG, UPMD_IOVA_MAP_READ, &iova), 0);
	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova, 0, 64, false, 5000), 0);
	memset(p, 0x77, 64);
	CU_ASSERT_EQUAL(upmd_edu_dma(edu, iova, 0, 64, true, 5000), 0);
	CU_ASSERT_EQUAL(p[0], 0x77);
	CU_ASSERT_EQUAL_FATAL(upmd_model_fault_pop(model, &f), 0);
	CU_ASSERT_EQUAL(f.reason, UPMD_MODEL_FAULT_NO_WRITE);
	CU_ASSERT_TRUE(f.write);
	CU_ASSERT_EQUAL(upmd_iova_unmap(p, PG), 0);

	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	munmap(p, 3 * PG);
	uninstall();
}

/* N single pages of one region, mapped EPHEMERAL, then unmapped. */
static void ephemeral_run(uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		CU_ASSERT_EQUAL(upmd_iova_map(p + i * PG, PG, UPMD_IOVA_MAP_RW | UPMD_IOVA_MAP_EPHEMERAL, NULL), 0);
	for (unsigned i = 0; i < n; i++)
		CU_ASSERT_EQUAL(upmd_iova_unmap(p + i * PG, PG), 0);
}

static void ephemeral_batches(char *mode)
{
	struct upmd_model_mapping mm[80];
	struct upmd_iova_map_stats st0, st;
	uint8_t *p;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_TRUE_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "--iova-mode", mode, "-a", EDU,
				   "--log-level", "err") > 0);
	p = pages(UPMD_IOVA_UNMAP_BATCH + 8);

	/* Ten unmaps wait: forgotten by the table, still in the IOMMU. */
	st0 = stats();
	ephemeral_run(p, 10);
	st = stats();
	CU_ASSERT_EQUAL(st.mappings, 0);
	CU_ASSERT_EQUAL(st.pending, 10);
	CU_ASSERT_EQUAL(st.pending_bytes, 10 * PG);
	CU_ASSERT_EQUAL(st.unmap_calls, st0.unmap_calls);
	CU_ASSERT_EQUAL(upmd_iova_from_va(p), UPMD_BAD_IOVA);
	CU_ASSERT_EQUAL(model_maps_in((uintptr_t)p, (uintptr_t)p + 80 * PG, mm, 80), 10);

	/* Adjacent IOVAs: one IOAS unmap for all ten. */
	CU_ASSERT_EQUAL(upmd_iova_unmap_flush(), 0);
	st = stats();
	CU_ASSERT_EQUAL(st.pending, 0);
	CU_ASSERT_EQUAL(st.unmap_calls, st0.unmap_calls + 1);
	CU_ASSERT_EQUAL(st.unmapped, st0.unmapped + 10);
	CU_ASSERT_EQUAL(model_maps_in((uintptr_t)p, (uintptr_t)p + 80 * PG, mm, 80), 0);

	/* A full batch goes by itself, in one call. */
	st0 = stats();
	ephemeral_run(p, UPMD_IOVA_UNMAP_BATCH);
	st = stats();
	CU_ASSERT_EQUAL(st.pending, 0);
	CU_ASSERT_EQUAL(st.unmap_calls, st0.unmap_calls + 1);
	CU_ASSERT_EQUAL(st.unmapped, st0.unmapped + UPMD_IOVA_UNMAP_BATCH);
	CU_ASSERT_EQUAL(model_maps_in((uintptr_t)p, (uintptr_t)p + 80 * PG, mm, 80), 0);

	/* Pages whose old mapping still waits are mapped anew: the old goes first. */
	ephemeral_run(p, 2);
	CU_ASSERT_EQUAL(stats().pending, 2);
	CU_ASSERT_EQUAL(upmd_iova_map(p, 2 * PG, UPMD_IOVA_MAP_RW, NULL), 0);
	CU_ASSERT_EQUAL(stats().pending, 0);
	CU_ASSERT_EQUAL(model_maps_in((uintptr_t)p, (uintptr_t)p + 80 * PG, mm, 80), 1);
	CU_ASSERT_EQUAL(mm[0].len, 2 * PG);
	if (!strcmp(mode, "va"))
		CU_ASSERT_EQUAL(upmd_iova_from_va(p + PG), (uintptr_t)p + PG);
	CU_ASSERT_EQUAL(upmd_iova_unmap(p, 2 * PG), 0);

	/* Left pending at cleanup: carried out there. */
	ephemeral_run(p, 3);
	CU_ASSERT_EQUAL(stats().pending, 3);
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	CU_ASSERT_EQUAL(stats().pending, 0);
	munmap(p, (UPMD_IOVA_UNMAP_BATCH + 8) * PG);
	uninstall();
}

static void test_ephemeral_va(void)
{
	ephemeral_batches((char[]){ "va" });
}

static void test_ephemeral_alloc(void)
{
	ephemeral_batches((char[]){ "alloc" });
}

static void test_bad_input(void)
{
	const struct upmd_memzone *mz;
	uint8_t *p, *hole;

	/* No EAL, no IOAS. */
	log_capture();
	p = pages(2);
	CU_ASSERT_EQUAL(upmd_iova_map(p, PG, UPMD_IOVA_MAP_RW, NULL), -ENODEV);
	ASSERT_LOG_HAS("no IOAS");
	log_release();

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_TRUE_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "-a", EDU, "--log-level", "err") > 0);
	CU_ASSERT_EQUAL(upmd_iova_map(p, PG, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_map(p, PG, UPMD_IOVA_MAP_RW | 0x100, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_map(p, 0, UPMD_IOVA_MAP_RW, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_map((void *)(uintptr_t)(UINT64_MAX - 100), 200, UPMD_IOVA_MAP_RW, NULL), -EINVAL);
	CU_ASSERT_EQUAL(upmd_iova_unmap(p, 0), -EINVAL);

	/* Segment memory is mapped already. */
	CU_ASSERT_EQUAL_FATAL(upmd_memzone_reserve("t_mz", 8192, UPMD_SOCKET_ID_ANY, 4096, &mz), 0);
	CU_ASSERT_EQUAL(upmd_iova_map(mz->addr, 8192, UPMD_IOVA_MAP_RW, NULL), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_from_va(mz->addr), mz->iova);
	CU_ASSERT_EQUAL(upmd_memzone_free(mz), 0);

	/* Twice, or overlapping: refused, and the first stays as it was. */
	CU_ASSERT_EQUAL(upmd_iova_map(p, PG, UPMD_IOVA_MAP_RW, NULL), 0);
	CU_ASSERT_EQUAL(upmd_iova_map(p, PG, UPMD_IOVA_MAP_RW, NULL), -EEXIST);
	CU_ASSERT_EQUAL(upmd_iova_map(p + 10, 2 * PG, UPMD_IOVA_MAP_RW, NULL), -EEXIST);
	CU_ASSERT_EQUAL(stats().mappings, 1);
	CU_ASSERT_EQUAL(upmd_iova_from_va(p + PG), UPMD_BAD_IOVA);
	/* Unmap must name the same pages. */
	CU_ASSERT_EQUAL(upmd_iova_unmap(p, 2 * PG), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_unmap(p + PG, PG), -ENOENT);
	CU_ASSERT_EQUAL(upmd_iova_unmap(p + 5, 10), 0);	/* the same page */

	/* Memory the process does not have: the kernel cannot pin it. */
	hole = pages(3);
	munmap(hole + PG, PG);
	CU_ASSERT_EQUAL(upmd_iova_map(hole, 3 * PG, UPMD_IOVA_MAP_RW, NULL), -EFAULT);
	CU_ASSERT_EQUAL(stats().mappings, 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(hole), UPMD_BAD_IOVA);
	munmap(hole, PG);
	munmap(hole + 2 * PG, PG);

	/* IOVA mode va cannot map an address inside the MSI window. (The
	 * window lies in AddressSanitizer's shadow gap; there the mmap fails.) */
	if (upmd_eal_iova_mode() == UPMD_IOVA_MODE_VA) {
		void *msi = mmap((void *)0xfee00000UL, PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

#if !defined(__SANITIZE_ADDRESS__)
		CU_ASSERT_EQUAL(msi, (void *)0xfee00000UL);
#endif
		if (msi == (void *)0xfee00000UL) {
			log_capture();
			CU_ASSERT_EQUAL(upmd_iova_map(msi, PG, UPMD_IOVA_MAP_RW, NULL), -EINVAL);
			ASSERT_LOG_HAS("--iova-mode alloc");
			log_release();
			munmap(msi, PG);
		} else if (msi != MAP_FAILED) {
			munmap(msi, PG);
		}
	}
	CU_ASSERT_EQUAL(upmd_eal_iova_mode(), UPMD_IOVA_MODE_VA);
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	munmap(p, 2 * PG);
	uninstall();
}

/* The pinned-memory budget is spent on pending unmaps: a map flushes them and succeeds. */
static void test_memlock_flush(void)
{
	struct rlimit saved, lim;
	uint8_t *a, *b;

	if (install("edu@" EDU ";flags=unpriv") < 0)
		return;
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
	lim.rlim_cur = 5 << 20;
	lim.rlim_max = saved.rlim_max;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
	CU_ASSERT_TRUE_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "-a", EDU, "--log-level", "err") > 0);
	a = pages(192);
	b = pages(192);
	CU_ASSERT_EQUAL(upmd_iova_map(a, 192 * PG, UPMD_IOVA_MAP_RW | UPMD_IOVA_MAP_EPHEMERAL, NULL), 0);
	CU_ASSERT_EQUAL(upmd_iova_unmap(a, 192 * PG), 0);
	CU_ASSERT_EQUAL(stats().pending, 1);
	/* 4 MiB + 768 KiB pinned; 768 KiB more fits only once the pending goes. */
	CU_ASSERT_EQUAL(upmd_iova_map(b, 192 * PG, UPMD_IOVA_MAP_RW, NULL), 0);
	CU_ASSERT_EQUAL(stats().pending, 0);
	/* And with nothing to give back, the limit is a clear -ENOMEM. */
	log_capture();
	CU_ASSERT_EQUAL(upmd_iova_map(a, 192 * PG, UPMD_IOVA_MAP_RW, NULL), -ENOMEM);
	log_release();
	CU_ASSERT_EQUAL(stats().mappings, 1);
	CU_ASSERT_EQUAL(upmd_iova_unmap(b, 192 * PG), 0);
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	setrlimit(RLIMIT_MEMLOCK, &saved);
	munmap(a, 192 * PG);
	munmap(b, 192 * PG);
	uninstall();
}

static void test_cleanup_unmaps_leftovers(void)
{
	uint8_t *p;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_TRUE_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "-a", EDU, "--log-level", "warning") > 0);
	p = pages(4);
	CU_ASSERT_EQUAL(upmd_iova_map(p, PG, UPMD_IOVA_MAP_RW, NULL), 0);
	CU_ASSERT_EQUAL(upmd_iova_map(p + PG, PG, UPMD_IOVA_MAP_RW | UPMD_IOVA_MAP_EPHEMERAL, NULL), 0);
	CU_ASSERT_EQUAL(upmd_iova_map(p + 2 * PG, PG, UPMD_IOVA_MAP_RW | UPMD_IOVA_MAP_EPHEMERAL, NULL), 0);
	CU_ASSERT_EQUAL(upmd_iova_unmap(p + 2 * PG, PG), 0);
	log_capture();
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	ASSERT_LOG_HAS("2 dynamic mapping(s) (8192 bytes) still mapped at cleanup");
	log_release();
	CU_ASSERT_EQUAL(stats().mappings, 0);
	CU_ASSERT_EQUAL(upmd_iova_from_va(p), UPMD_BAD_IOVA);
	munmap(p, 4 * PG);
	uninstall();	/* nothing pinned, nothing mapped */
}

/* Two threads map and unmap their own pages while a third looks up. */
#define THR_PAGES 32
#define THR_ROUNDS 300

struct thr {
	uint8_t *p;
	unsigned bad;
};

static void *mapper(void *arg)
{
	struct thr *t = arg;

	for (unsigned r = 0; r < THR_ROUNDS; r++)
		for (unsigned i = 0; i < THR_PAGES; i += 4) {
			uint32_t fl = UPMD_IOVA_MAP_RW | ((r + i) % 8 ? UPMD_IOVA_MAP_EPHEMERAL : 0);
			uint64_t iova;

			if (upmd_iova_map(t->p + i * PG, 4 * PG, fl, &iova) ||
			    upmd_iova_from_va(t->p + i * PG + 4095) != iova + 4095 ||
			    upmd_iova_unmap(t->p + i * PG, 4 * PG))
				t->bad++;
		}
	return NULL;
}

static void test_threads(void)
{
	struct upmd_model_mapping mm[8];
	struct thr t[2];
	pthread_t th[2];
	int i;

	if (install("edu@" EDU) < 0)
		return;
	CU_ASSERT_TRUE_FATAL(INIT("-l", "0", "--no-huge", "-m", "4", "--iova-mode", "alloc", "-a", EDU,
				   "--log-level", "err") > 0);
	for (i = 0; i < 2; i++) {
		t[i] = (struct thr){ .p = pages(THR_PAGES) };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, mapper, &t[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(t[i].bad, 0);
	}
	CU_ASSERT_EQUAL(upmd_iova_unmap_flush(), 0);
	CU_ASSERT_EQUAL(stats().mappings, 0);
	CU_ASSERT_EQUAL(stats().pending, 0);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(model_maps_in((uintptr_t)t[i].p, (uintptr_t)t[i].p + THR_PAGES * PG, mm, 8), 0);
		munmap(t[i].p, THR_PAGES * PG);
	}
	CU_ASSERT_EQUAL(upmd_eal_cleanup(), 0);
	uninstall();
}

static const struct upmd_test agree_tests[] = {
	{ "iommufd: 3000 random maps/unmaps, IOAS and model agree", test_agree_iommufd },
	{ "type1: 3000 random maps/unmaps, IOAS and model agree", test_agree_type1 },
	{ NULL, NULL },
};

static const struct upmd_test dyn_tests[] = {
	{ "map, DMA, strict unmap, fault", test_map_dma_unmap },
	{ "ephemeral unmaps batched (IOVA mode va)", test_ephemeral_va },
	{ "ephemeral unmaps batched (IOVA mode alloc)", test_ephemeral_alloc },
	{ "bad input", test_bad_input },
	{ "pinned-memory limit: pending unmaps flushed", test_memlock_flush },
	{ "cleanup unmaps what is left", test_cleanup_unmaps_leftovers },
	{ "two threads mapping, unmapping, looking up", test_threads },
	{ NULL, NULL },
};

UPMD_TEST_MAIN({ "IOAS allocator vs model", NULL, NULL, agree_tests },
	       { "dynamic mappings", NULL, NULL, dyn_tests })
