/* dma_sw: a software DMA engine behind the dmadev API: per-vchan SPSC rings of copy/fill/compare/CRC32C on IOVAs, one engine thread per device. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <upmd/dmadev.h>
#include <upmd/eal.h>
#include <upmd/ethdev_driver.h>	/* kvargs */
#include <upmd/iova.h>
#include <upmd/log.h>
#include <upmd/ring.h>		/* upmd_pause */
#include <upmd/vdev.h>

#define DRV "dma_sw"
#define MAX_VCHANS 16
#define MIN_DESC 32
#define MAX_DESC 32768			/* the largest power of two a uint16_t nb_desc holds */
#define MAX_LEN ((1u << 30) - 1)	/* 1 GiB - 1 */
#define NO_LCORE UPMD_MAX_LCORE		/* the engine is a pthread of its own */

/* The engine publishes done after this many operations or bytes, so the
 * application sees progress while a long run of work goes on, and the
 * shared cache line moves once per chunk, not once per operation. */
#define CHUNK_OPS 32
#define CHUNK_BYTES (64 * 1024)

/* Idle back-off: spin with pause, then yield, then sleep. */
#define IDLE_SPIN 2048
#define IDLE_YIELD 256
#define IDLE_SLEEP_NS 20000

/* On a translation miss, how many pages (or 2 MiB spans) beyond the
 * operation's range are checked and cached, each way. */
#define XLATE_EXTRA 256

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dma_sw: fill patterns and slice-by-8 CRC32C assume a little-endian host"
#endif

enum { OP_COPY = 1, OP_FILL, OP_COMPARE, OP_CRC32C };

struct sw_desc {
	uint8_t op;
	uint8_t rsvd[3];
	uint32_t len;
	uint64_t a;			/* copy/crc: source; fill: pattern; compare: first source */
	uint64_t b;			/* copy/fill: destination; compare: second source; crc: uint32_t *result */
	uint32_t seed;			/* crc */
	uint32_t rsvd2;
};
_Static_assert(sizeof(struct sw_desc) == 32, "two descriptors per cache line");

/* The last range translated: IOVA [iova, iova+len) is VA [va, va+len). */
struct xcache {
	uint64_t iova;
	uint64_t len;			/* 0: empty */
	uint8_t *va;
};

typedef uint32_t (*crc_fn)(uint32_t crc, const uint8_t *p, size_t len);

struct sw_vchan {
	/* The application's side (enqueue, submit, completed): one thread. */
	struct sw_desc *ring;
	uint16_t *status;		/* per slot, written by the engine before done covers it */
	uint32_t mask;
	uint32_t nb_desc;
	uint32_t tail;			/* next slot enqueue fills (a free-running counter) */
	uint32_t head;			/* next slot completed reports */
	uint32_t last_sub;		/* tail at the last submit */
	uint64_t n_submitted, n_completed, n_errors;

	/* Written by submit (release), read by the engine (acquire). */
	uint32_t submitted __upmd_cache_aligned;

	/* Written by the engine (release), read by completed (acquire). */
	uint32_t done __upmd_cache_aligned;

	/* The engine's own; ring, status and mask copied so that the engine
	 * never reads the application's line that enqueue writes. */
	struct {
		struct sw_desc *ring;
		uint16_t *status;
		uint32_t mask;
		uint32_t next;		/* next slot to run */
		uint32_t seen;		/* submitted, as last loaded */
		crc_fn crc;
		struct xcache xc[2];	/* source side, destination side */
	} eng __upmd_cache_aligned;
};

struct sw_dev {
	struct sw_vchan *vc[MAX_VCHANS];	/* read by every data-path call */
	uint16_t nb_vchans;
	uint16_t max_vchans;
	unsigned lcore;			/* NO_LCORE: a pthread */
	bool running;			/* the engine runs while set (atomic) */
	bool thread_live;
	pthread_t thread;
	crc_fn crc;
	const char *name;
};

/* ---- CRC32C (Castagnoli, reflected, poly 0x82F63B78), no inversion ---------- */

static uint32_t crc_tab[8][256];
static bool have_sse42;

__attribute__((constructor)) static void crc_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		crc_tab[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc_tab[k][i] = (crc_tab[k - 1][i] >> 8) ^ crc_tab[0][crc_tab[k - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

/* Slice-by-8: eight table lookups per 8 bytes. */
static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= crc;
		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
		      crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		      crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/* The SSE4.2 crc32 instruction computes exactly this CRC, 8 bytes a step. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c;

	while (len && ((uintptr_t)p & 7)) {
		crc = __builtin_ia32_crc32qi(crc, *p++);
		len--;
	}
	c = crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

/* ---- the engine ------------------------------------------------------------------ */

/* The page or 2 MiB span holding VA @p, if it maps at IOVA - VA = @delta. */
static bool span_at(uintptr_t p, uint64_t delta, uintptr_t *lo, uintptr_t *hi)
{
	uint64_t i = p >> UPMD_IOVA_TABLE_L2_SHIFT, e;

	/* Also false beyond the table (upmd_iova_from_va checks the index). */
	if (upmd_iova_from_va((const void *)p) != (uint64_t)p + delta)
		return false;
	e = UPMD_IOVA_TE_READ(&upmd_iova_table_l2[i]);
	if (e & UPMD_IOVA_TE_VALID) {
		*lo = (uintptr_t)(i << UPMD_IOVA_TABLE_L2_SHIFT);
		*hi = (uintptr_t)((i + 1) << UPMD_IOVA_TABLE_L2_SHIFT);
	} else {
		*lo = p & ~(uintptr_t)((1u << UPMD_IOVA_TABLE_L3_SHIFT) - 1);
		*hi = *lo + (1u << UPMD_IOVA_TABLE_L3_SHIFT);
	}
	return true;
}

/*
 * A miss: the reverse lookup finds a VA for @iova; every page of the range
 * must then map forward at the same offset (one mapping, contiguous in VA
 * and IOVA), else the operation fails without touching memory. The range
 * cached is wider than the operation's, so a walk through a buffer mapped
 * in 4 KiB pieces misses once per XLATE_EXTRA pages, not once a page.
 */
static __attribute__((noinline)) uint8_t *xlate_slow(struct xcache *c, uint64_t iova, uint32_t len)
{
	uint8_t *va = upmd_iova_table_to_va(iova);
	uintptr_t a, end, lo, hi, slo, shi;
	uint64_t delta;
	unsigned extra;

	if (!va)
		return NULL;
	a = (uintptr_t)va;
	delta = iova - (uint64_t)a;
	end = a + len;
	if (end < a || !span_at(a, delta, &lo, &hi))
		return NULL;
	while (hi < end) {
		if (!span_at(hi, delta, &slo, &shi))
			return NULL;
		hi = shi;
	}
	for (extra = 0; extra < XLATE_EXTRA && span_at(hi, delta, &slo, &shi); extra++)
		hi = shi;
	for (extra = 0; extra < XLATE_EXTRA && lo && span_at(lo - 1, delta, &slo, &shi); extra++)
		lo = slo;
	c->va = (uint8_t *)lo;
	c->iova = (uint64_t)lo + delta;
	c->len = hi - lo;
	return va;
}

/* A hit costs two compares. */
static inline uint8_t *xlate(struct xcache *c, uint64_t iova, uint32_t len)
{
	uint64_t off = iova - c->iova;

	if (upmd_likely(off < c->len && len <= c->len - off))
		return c->va + off;
	return xlate_slow(c, iova, len);
}

/* The 8-byte pattern repeated, little-endian; a partial last word takes
 * the pattern's low bytes. */
static void fill(uint8_t *d, uint64_t pat, uint32_t len)
{
	uint64_t blk[8];

	if (pat == 0x0101010101010101ull * (uint8_t)pat) {
		memset(d, (uint8_t)pat, len);
		return;
	}
	for (unsigned i = 0; i < 8; i++)
		blk[i] = pat;
	for (; len >= sizeof(blk); d += sizeof(blk), len -= (uint32_t)sizeof(blk))
		memcpy(d, blk, sizeof(blk));
	memcpy(d, blk, len);
}

static inline uint16_t run_op(struct sw_vchan *vc, const struct sw_desc *d)
{
	uint32_t len = d->len;
	uint8_t *p, *q;

	switch (d->op) {
	case OP_COPY:
		p = xlate(&vc->eng.xc[0], d->a, len);
		if (upmd_unlikely(!p))
			return UPMD_DMA_STATUS_INVALID_SRC_ADDR;
		q = xlate(&vc->eng.xc[1], d->b, len);
		if (upmd_unlikely(!q))
			return UPMD_DMA_STATUS_INVALID_DST_ADDR;
		memcpy(q, p, len);
		return UPMD_DMA_STATUS_SUCCESSFUL;
	case OP_FILL:
		q = xlate(&vc->eng.xc[1], d->b, len);
		if (!q)
			return UPMD_DMA_STATUS_INVALID_DST_ADDR;
		fill(q, d->a, len);
		return UPMD_DMA_STATUS_SUCCESSFUL;
	case OP_COMPARE:
		p = xlate(&vc->eng.xc[0], d->a, len);
		if (!p)
			return UPMD_DMA_STATUS_INVALID_SRC_ADDR;
		q = xlate(&vc->eng.xc[1], d->b, len);
		if (!q)
			return UPMD_DMA_STATUS_INVALID_DST_ADDR;
		return memcmp(p, q, len) ? UPMD_DMA_STATUS_COMPARE_MISMATCH : UPMD_DMA_STATUS_SUCCESSFUL;
	case OP_CRC32C:
		p = xlate(&vc->eng.xc[0], d->a, len);
		if (!p)
			return UPMD_DMA_STATUS_INVALID_SRC_ADDR;
		*(uint32_t *)(uintptr_t)d->b = vc->eng.crc(d->seed, p, len);
		return UPMD_DMA_STATUS_SUCCESSFUL;
	}
	return UPMD_DMA_STATUS_INVALID_OPCODE;
}

/* Run up to a chunk of what was submitted; @return how many ran. */
static unsigned vchan_work(struct sw_vchan *vc)
{
	uint32_t next = vc->eng.next, end = vc->eng.seen, mask = vc->eng.mask;
	size_t bytes = 0;
	unsigned n = 0;

	if (next == end) {
		/* Acquire: pairs with submit's release, so the descriptors
		 * up to @end are written. */
		end = __atomic_load_n(&vc->submitted, __ATOMIC_ACQUIRE);
		if (next == end)
			return 0;
		vc->eng.seen = end;
	}
	do {
		const struct sw_desc *d = &vc->eng.ring[next & mask];

		vc->eng.status[next & mask] = run_op(vc, d);
		bytes += d->len;
		next++;
		n++;
	} while (next != end && n < CHUNK_OPS && bytes < CHUNK_BYTES);
	vc->eng.next = next;
	/* Release: what the operations wrote (memory, CRC results) and their
	 * statuses are visible before done says they are finished. */
	__atomic_store_n(&vc->done, next, __ATOMIC_RELEASE);
	return n;
}

static void engine(struct sw_dev *dev)
{
	unsigned idle = 0;

	/* Relaxed: stop clears the flag and then joins (or waits for) this
	 * thread, which orders everything after. */
	while (__atomic_load_n(&dev->running, __ATOMIC_RELAXED)) {
		unsigned n = 0;

		for (uint16_t v = 0; v < dev->nb_vchans; v++)
			n += vchan_work(dev->vc[v]);
		if (n) {
			idle = 0;
		} else if (idle < IDLE_SPIN) {
			idle++;
			upmd_pause();
		} else if (idle < IDLE_SPIN + IDLE_YIELD) {
			idle++;
			sched_yield();
		} else {
			struct timespec ts = { 0, IDLE_SLEEP_NS };

			nanosleep(&ts, NULL);
		}
	}
}

static void *engine_thread(void *arg)
{
	engine(arg);
	return NULL;
}

/*
 * A new thread inherits the creator's pinning, and the creator is usually
 * the main lcore: the engine would share its CPU with an application that
 * polls for completions. Like DPDK's control threads it goes to the CPUs no
 * lcore has, else to any but the main lcore's, else wherever it may.
 */
static void engine_thread_place(pthread_t t)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	int main_cpu = upmd_lcore_to_cpu(upmd_get_main_lcore());
	cpu_set_t set;

	if (ncpu <= 0 || ncpu > CPU_SETSIZE)
		ncpu = CPU_SETSIZE;
	for (int pass = 0; pass < 2; pass++) {
		unsigned l;

		CPU_ZERO(&set);
		for (long c = 0; c < ncpu; c++)
			CPU_SET((int)c, &set);
		if (pass == 0) {
			for (l = 0; l < UPMD_MAX_LCORE; l++)
				if (upmd_lcore_is_enabled(l) && upmd_lcore_to_cpu(l) >= 0)
					CPU_CLR(upmd_lcore_to_cpu(l), &set);
		} else if (main_cpu >= 0) {
			CPU_CLR(main_cpu, &set);
		}
		/* EINVAL: none of these is a CPU the process may use. */
		if (CPU_COUNT(&set) && pthread_setaffinity_np(t, sizeof(set), &set) == 0)
			return;
	}
	CPU_ZERO(&set);
	for (long c = 0; c < ncpu; c++)
		CPU_SET((int)c, &set);
	pthread_setaffinity_np(t, sizeof(set), &set);
}

static int engine_lcore(void *arg)
{
	engine(arg);
	return 0;
}

/* ---- the data path (the application's thread) ------------------------------------- */

static inline void vchan_submit(struct sw_vchan *vc)
{
	uint32_t t = vc->tail;

	vc->n_submitted += t - vc->last_sub;
	vc->last_sub = t;
	/* Release: the descriptors are written before the engine sees the index. */
	__atomic_store_n(&vc->submitted, t, __ATOMIC_RELEASE);
}

static inline int enqueue(void *priv, uint16_t vchan, uint8_t op, uint64_t a, uint64_t b, uint32_t len,
			  uint32_t seed, uint64_t flags)
{
	struct sw_vchan *vc = ((struct sw_dev *)priv)->vc[vchan];
	uint32_t t = vc->tail;
	struct sw_desc *d;

	if (upmd_unlikely(len - 1 >= MAX_LEN))
		return -EINVAL;
	if (upmd_unlikely(t - vc->head >= vc->nb_desc))
		return -ENOSPC;
	d = &vc->ring[t & vc->mask];
	d->op = op;
	d->len = len;
	d->a = a;
	d->b = b;
	d->seed = seed;
	vc->tail = t + 1;
	/* FENCE needs nothing: the engine runs a vchan's operations one
	 * after another, in ring order. */
	if (flags & UPMD_DMA_OP_FLAG_SUBMIT)
		vchan_submit(vc);
	return (uint16_t)t;
}

static int sw_copy(void *priv, uint16_t vchan, uint64_t src, uint64_t dst, uint32_t len, uint64_t flags)
{
	return enqueue(priv, vchan, OP_COPY, src, dst, len, 0, flags);
}

static int sw_fill(void *priv, uint16_t vchan, uint64_t pattern, uint64_t dst, uint32_t len, uint64_t flags)
{
	return enqueue(priv, vchan, OP_FILL, pattern, dst, len, 0, flags);
}

static int sw_compare(void *priv, uint16_t vchan, uint64_t src1, uint64_t src2, uint32_t len, uint64_t flags)
{
	return enqueue(priv, vchan, OP_COMPARE, src1, src2, len, 0, flags);
}

static int sw_crc32c(void *priv, uint16_t vchan, uint64_t src, uint32_t len, uint32_t seed, uint32_t *result,
		     uint64_t flags)
{
	if (upmd_unlikely(!result))
		return -EINVAL;
	return enqueue(priv, vchan, OP_CRC32C, src, (uint64_t)(uintptr_t)result, len, seed, flags);
}

static int sw_submit(void *priv, uint16_t vchan)
{
	vchan_submit(((struct sw_dev *)priv)->vc[vchan]);
	return 0;
}

/* OR of @n statuses from slot counter @from on, in at most two contiguous
 * runs (loops the compiler vectorises). */
static inline uint16_t status_or(const struct sw_vchan *vc, uint32_t from, uint32_t n)
{
	const uint16_t *s = vc->status;
	uint32_t i = from & vc->mask, first = UPMD_MIN(n, vc->nb_desc - i), k;
	uint16_t acc = 0;

	for (k = 0; k < first; k++)
		acc |= s[i + k];
	for (k = 0; k < n - first; k++)
		acc |= s[k];
	return acc;
}

static uint16_t sw_completed(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx, bool *has_error)
{
	struct sw_vchan *vc = ((struct sw_dev *)priv)->vc[vchan];
	uint32_t head = vc->head, n, ok;

	/* Acquire: pairs with the engine's release of done. */
	n = __atomic_load_n(&vc->done, __ATOMIC_ACQUIRE) - head;
	if (n > nb_cpls)
		n = nb_cpls;
	ok = n;
	*has_error = false;
	if (upmd_unlikely(n && status_or(vc, head, n))) {
		for (ok = 0; !vc->status[(head + ok) & vc->mask]; ok++)
			;
		*has_error = true;
	}
	head += ok;
	vc->head = head;
	vc->n_completed += ok;
	*last_idx = (uint16_t)(head - 1);
	return (uint16_t)ok;
}

static uint16_t sw_completed_status(void *priv, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
				    enum upmd_dma_status_code *status)
{
	struct sw_vchan *vc = ((struct sw_dev *)priv)->vc[vchan];
	uint32_t head = vc->head, n, errs = 0;

	n = __atomic_load_n(&vc->done, __ATOMIC_ACQUIRE) - head;	/* acquire: as in sw_completed */
	if (n > nb_cpls)
		n = nb_cpls;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t st = vc->status[(head + i) & vc->mask];

		status[i] = (enum upmd_dma_status_code)st;
		errs += st != 0;
	}
	head += n;
	vc->head = head;
	vc->n_completed += n;
	vc->n_errors += errs;
	*last_idx = (uint16_t)(head - 1);
	return (uint16_t)n;
}

static uint16_t sw_burst_capacity(const void *priv, uint16_t vchan)
{
	const struct sw_vchan *vc = ((const struct sw_dev *)priv)->vc[vchan];

	return (uint16_t)(vc->nb_desc - (vc->tail - vc->head));
}

/* ---- the control path --------------------------------------------------------------------- */

static void vchan_free(struct sw_vchan *vc)
{
	if (!vc)
		return;
	free(vc->ring);
	free(vc->status);
	free(vc);
}

static void vchans_free(struct sw_dev *dev)
{
	for (unsigned v = 0; v < MAX_VCHANS; v++) {
		vchan_free(dev->vc[v]);
		dev->vc[v] = NULL;
	}
	dev->nb_vchans = 0;
}

static void sw_info_get(const struct upmd_dma_dev *d, struct upmd_dma_info *info)
{
	const struct sw_dev *dev = d->priv;

	info->driver = DRV;
	info->capa = UPMD_DMA_CAPA_MEM_TO_MEM | UPMD_DMA_CAPA_OPS_COPY | UPMD_DMA_CAPA_OPS_FILL |
		     UPMD_DMA_CAPA_OPS_COMPARE | UPMD_DMA_CAPA_OPS_CRC32C;
	info->max_vchans = dev->max_vchans;
	info->min_desc = MIN_DESC;
	info->max_desc = MAX_DESC;
	info->max_length = MAX_LEN;
	if (dev->lcore != NO_LCORE)
		info->numa_node = upmd_lcore_to_socket_id(dev->lcore);
}

static int sw_configure(struct upmd_dma_dev *d, const struct upmd_dma_conf *conf)
{
	struct sw_dev *dev = d->priv;

	/* The vchans must be set up again (dmadev forgets them too). */
	vchans_free(dev);
	dev->nb_vchans = conf->nb_vchans;
	return 0;
}

static int sw_vchan_setup(struct upmd_dma_dev *d, uint16_t vchan, const struct upmd_dma_vchan_conf *conf)
{
	struct sw_dev *dev = d->priv;
	uint32_t nb = conf->nb_desc;
	struct sw_vchan *vc;

	if (vchan >= dev->nb_vchans || !UPMD_IS_POW2(nb) || nb < MIN_DESC || nb > MAX_DESC)
		return -EINVAL;	/* dmadev checked and logged already */
	if (posix_memalign((void **)&vc, UPMD_CACHE_LINE_SIZE, sizeof(*vc)))
		return -ENOMEM;
	memset(vc, 0, sizeof(*vc));
	if (posix_memalign((void **)&vc->ring, UPMD_CACHE_LINE_SIZE, nb * sizeof(*vc->ring))) {
		vc->ring = NULL;
		goto err_free;
	}
	vc->status = calloc(nb, sizeof(*vc->status));
	if (!vc->status)
		goto err_free;
	memset(vc->ring, 0, nb * sizeof(*vc->ring));
	vc->nb_desc = nb;
	vc->mask = nb - 1;
	vchan_free(dev->vc[vchan]);
	dev->vc[vchan] = vc;
	return 0;

err_free:
	vchan_free(vc);
	UPMD_ERR(DRV, "%s: vchan %u: no memory for %u descriptors", d->name, vchan, nb);
	return -ENOMEM;
}

/* A fresh ring: indices from 0, nothing cached (the IOVA map may have
 * changed while the device was stopped). */
static void vchan_reset(struct sw_vchan *vc, crc_fn crc)
{
	vc->tail = vc->head = vc->last_sub = 0;
	vc->submitted = 0;
	vc->done = 0;
	memset(&vc->eng, 0, sizeof(vc->eng));
	vc->eng.ring = vc->ring;
	vc->eng.status = vc->status;
	vc->eng.mask = vc->mask;
	vc->eng.crc = crc;
}

static int sw_start(struct upmd_dma_dev *d, struct upmd_dma_fp *fp)
{
	struct sw_dev *dev = d->priv;
	int rc;

	for (uint16_t v = 0; v < dev->nb_vchans; v++) {
		if (!dev->vc[v])
			return -EINVAL;	/* dmadev checks every vchan is set up */
		vchan_reset(dev->vc[v], dev->crc);
	}
	fp->priv = dev;
	fp->copy = sw_copy;
	fp->fill = sw_fill;
	fp->compare = sw_compare;
	fp->crc32c = sw_crc32c;
	fp->submit = sw_submit;
	fp->completed = sw_completed;
	fp->completed_status = sw_completed_status;
	fp->burst_capacity = sw_burst_capacity;
	/* pthread_create and the lcore launch order the resets above before
	 * the engine's first load. */
	__atomic_store_n(&dev->running, true, __ATOMIC_RELAXED);
	if (dev->lcore != NO_LCORE) {
		rc = upmd_eal_remote_launch(engine_lcore, dev, dev->lcore);
		if (rc < 0) {
			UPMD_ERR(DRV, "%s: cannot run the engine on lcore %u: %s", d->name, dev->lcore,
				 rc == -EBUSY ? "it is running something else (another device's engine?); "
						"give each device its own lcore=" : strerror(-rc));
			goto err_run;
		}
	} else {
		rc = -pthread_create(&dev->thread, NULL, engine_thread, dev);
		if (rc < 0) {
			UPMD_ERR(DRV, "%s: cannot create the engine thread: %s", d->name, strerror(-rc));
			goto err_run;
		}
		pthread_setname_np(dev->thread, "dma_sw");
		engine_thread_place(dev->thread);
	}
	dev->thread_live = true;
	return 0;

err_run:
	__atomic_store_n(&dev->running, false, __ATOMIC_RELAXED);
	return rc;
}

static int sw_stop(struct upmd_dma_dev *d)
{
	struct sw_dev *dev = d->priv;

	if (!dev->thread_live)
		return 0;
	__atomic_store_n(&dev->running, false, __ATOMIC_RELAXED);
	if (dev->lcore != NO_LCORE)
		upmd_eal_wait_lcore(dev->lcore);
	else
		pthread_join(dev->thread, NULL);
	dev->thread_live = false;
	/* The engine is gone (the join ordered its writes before ours):
	 * what it did not run, submitted or not, is aborted. */
	for (uint16_t v = 0; v < dev->nb_vchans; v++) {
		struct sw_vchan *vc = dev->vc[v];

		for (uint32_t i = vc->eng.next; i != vc->tail; i++)
			vc->status[i & vc->mask] = UPMD_DMA_STATUS_USER_ABORT;
		vc->eng.next = vc->tail;
		__atomic_store_n(&vc->done, vc->tail, __ATOMIC_RELEASE);
	}
	return 0;
}

static void sw_close(struct upmd_dma_dev *d)
{
	vchans_free(d->priv);
}

static int sw_stats_get(const struct upmd_dma_dev *d, uint16_t vchan, struct upmd_dma_stats *stats)
{
	const struct sw_dev *dev = d->priv;
	const struct sw_vchan *vc;

	if (vchan >= dev->nb_vchans || !dev->vc[vchan])
		return -EINVAL;
	vc = dev->vc[vchan];
	stats->submitted = vc->n_submitted;
	stats->completed = vc->n_completed;
	stats->errors = vc->n_errors;
	return 0;
}

static int sw_stats_reset(struct upmd_dma_dev *d, uint16_t vchan)
{
	struct sw_dev *dev = d->priv;
	struct sw_vchan *vc;

	if (vchan >= dev->nb_vchans || !dev->vc[vchan])
		return -EINVAL;
	vc = dev->vc[vchan];
	vc->n_submitted = vc->n_completed = vc->n_errors = 0;
	return 0;
}

static const struct upmd_dma_dev_ops sw_ops = {
	.info_get = sw_info_get,
	.configure = sw_configure,
	.vchan_setup = sw_vchan_setup,
	.start = sw_start,
	.stop = sw_stop,
	.close = sw_close,
	.stats_get = sw_stats_get,
	.stats_reset = sw_stats_reset,
};

/* ---- the vdev driver ------------------------------------------------------------------------ */

static int sw_probe(const char *name, const char *args)
{
	static const char *const known[] = { "lcore", "vchans", NULL };
	struct upmd_dma_dev *d;
	struct upmd_kvargs kv;
	struct sw_dev *dev;
	unsigned lcore, vchans;
	const char *env;
	int rc;

	rc = upmd_kvargs_parse(name, args, known, &kv);
	if (rc < 0)
		return rc;
	rc = upmd_kvargs_get_uint(&kv, name, "lcore", 0, UPMD_MAX_LCORE - 1, NO_LCORE, &lcore);
	if (rc == 0)
		rc = upmd_kvargs_get_uint(&kv, name, "vchans", 1, MAX_VCHANS, 1, &vchans);
	upmd_kvargs_free(&kv);
	if (rc < 0)
		return rc;
	if (lcore != NO_LCORE && lcore == upmd_get_main_lcore()) {
		UPMD_ERR(DRV, "%s: lcore=%u is the main lcore, which runs the application: give a worker lcore "
			 "(one of -l after the first), or leave lcore= out for an engine thread of its own", name, lcore);
		return -EINVAL;
	}
	if (lcore != NO_LCORE && !upmd_lcore_is_enabled(lcore)) {
		UPMD_ERR(DRV, "%s: lcore=%u is not enabled: add it to -l (e.g. -l %u,%u), or leave lcore= out for an "
			 "engine thread of its own", name, lcore, upmd_get_main_lcore(), lcore);
		return -EINVAL;
	}
	rc = upmd_dma_dev_allocate(name, &sw_ops, sizeof(*dev), &d);
	if (rc < 0)
		return rc;
	dev = d->priv;
	dev->lcore = lcore;
	dev->max_vchans = (uint16_t)vchans;
	dev->name = d->name;
	dev->crc = crc32c_sw;
#if defined(__x86_64__)
	/* UPMD_DMA_SW_NO_SSE42=1 takes the table-driven CRC (for tests). */
	env = getenv("UPMD_DMA_SW_NO_SSE42");
	if (have_sse42 && !(env && *env && strcmp(env, "0")))
		dev->crc = crc32c_sse42;
#else
	(void)env;
#endif
	UPMD_INFO(DRV, "%s: %u vchan(s), engine on %s, CRC32C %s", name, vchans,
		  lcore == NO_LCORE ? "a thread of its own" : "an lcore",
		  dev->crc == crc32c_sw ? "slice-by-8" : "SSE4.2");
	return 0;
}

static void sw_remove(const char *name)
{
	int id = upmd_dma_get_dev_id_by_name(name);

	if (id < 0)
		return;
	upmd_dma_close((int16_t)id);
	upmd_dma_dev_release(upmd_dma_dev_get((int16_t)id));
}

static struct upmd_vdev_driver sw_driver = {
	.name = DRV,
	.usage = "lcore=N (run the engine on worker lcore N; default: a thread of its own), "
		 "vchans=N (virtual channels, 1..16, default 1)",
	.probe = sw_probe,
	.remove = sw_remove,
};

UPMD_VDEV_REGISTER_DRIVER(sw_driver)
