/* Trapped BAR mappings: every load and store a driver makes to a register BAR faults into the model, which runs the register's side effect. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "model_private.h"

/*
 * Why: a register file is not memory. QEMU's edu returns ~v from its
 * liveness register right after v was written, and the same driver code
 * (a store, then a load) must see that from the model too. No thread can
 * race a store that closely, so the model makes the mapping inaccessible
 * and takes the fault:
 *
 *  SIGSEGV at a trapped page: a load first refreshes the register's bytes
 *  from the device (mmio_read); a store snapshots them. The page is opened
 *  and the trap flag (EFLAGS.TF) set, so the CPU runs exactly the faulting
 *  instruction and raises SIGTRAP.
 *  SIGTRAP: the page is closed again; for a store the new bytes are
 *  handed to the device (mmio_write) and the old ones put back, so
 *  registers change only the way the device says.
 *
 * The access size comes from decoding the instruction (the mov forms
 * compilers emit for volatile accesses); anything else is handled as the
 * 4-byte words it changed. State is per thread, so several lcores may
 * trap at once; a thread touching the page while another has it open for
 * one instruction is not seen (a race the hardware would order). Faults
 * anywhere else go to the handler that was installed before ours.
 *
 * x86-64 only; elsewhere (or with UPMD_MODEL_NO_TRAP set) trapped BARs
 * are mapped as plain memory and only the device thread sees writes.
 */

#if defined(__x86_64__) && defined(__linux__)

#define TRAP_SLOTS 64
#define EFLAGS_TF 0x100
#define PF_WRITE 0x2

struct trap_slot {
	uintptr_t start, end;	/* end == 0: free; written last, read first */
	struct upmd_model_dev *dev;
	unsigned bar;
	uint64_t bar_off;
	int prot;
};

static struct trap_slot slots[TRAP_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction old_segv, old_trap;
static bool installed;

struct trap_state {
	int active;
	uintptr_t page[2];
	int npages;
	struct upmd_model_dev *dev;
	unsigned bar;
	uint64_t off;		/* BAR offset of the access */
	int size;		/* decoded, 0 if unknown */
	bool write;
	uint64_t win;		/* BAR offset of the snapshot */
	unsigned win_len;
	uint8_t before[16];
};

/* Signal handlers must not allocate TLS lazily. */
static __thread struct trap_state ts __attribute__((tls_model("initial-exec")));
/* Set while this thread runs a guarded copy (model_guarded_copy). */
static __thread sigjmp_buf *copy_env __attribute__((tls_model("initial-exec")));

static int slot_find(uintptr_t a)
{
	int i;

	for (i = 0; i < TRAP_SLOTS; i++) {
		uintptr_t end = __atomic_load_n(&slots[i].end, __ATOMIC_ACQUIRE);

		if (end && a >= slots[i].start && a < end)
			return i;
	}
	return -1;
}

/*
 * Operand size of a memory access: legacy prefixes, REX.W, then the
 * opcode. 0 when the instruction is not one of the forms known here.
 */
static int insn_size(const uint8_t *p)
{
	bool opsz16 = false, rexw = false;
	int i;

	for (i = 0; i < 4; i++) {
		uint8_t b = *p;

		if (b == 0x66)
			opsz16 = true;
		else if (b != 0x67 && b != 0xf0 && b != 0xf2 && b != 0xf3 && b != 0x2e && b != 0x36 &&
			 b != 0x3e && b != 0x26 && b != 0x64 && b != 0x65)
			break;
		p++;
	}
	if ((*p & 0xf0) == 0x40) {
		rexw = (*p >> 3) & 1;
		p++;
	}
	switch (*p) {
	case 0x88: case 0x8a: case 0xc6: case 0x80: case 0x84: case 0x86: case 0x38:
	case 0x3a: case 0x00: case 0x02: case 0x08: case 0x0a: case 0x20: case 0x22:
	case 0x30: case 0x32: case 0xf6: case 0xfe:
		return 1;
	case 0x89: case 0x8b: case 0xc7: case 0x81: case 0x83: case 0x85: case 0x87:
	case 0x39: case 0x3b: case 0x01: case 0x03: case 0x09: case 0x0b: case 0x21:
	case 0x23: case 0x31: case 0x33: case 0xf7: case 0xff:
		return rexw ? 8 : opsz16 ? 2 : 4;
	case 0x0f:
		if (p[1] == 0xb6 || p[1] == 0xbe)
			return 1;
		if (p[1] == 0xb7 || p[1] == 0xbf)
			return 2;
		return 0;
	default:
		return 0;
	}
}

static void chain(struct sigaction *old, int sig, siginfo_t *si, void *uc)
{
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	/* No handler before ours: the default action, as if we were not here.
	 * A fault re-executes and dies; a trap is raised again. */
	signal(sig, SIG_DFL);
	if (sig == SIGTRAP)
		raise(sig);
}

static uint64_t bar_size(const struct upmd_model_dev *d, unsigned bar)
{
	return d->ops->bar_size[bar];
}

static void on_segv(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t a = (uintptr_t)si->si_addr, page = a & ~(uintptr_t)(MODEL_PAGE - 1);
	struct upmd_model_dev *d;
	struct trap_slot *s;
	uint8_t *mem;
	bool write;
	int i;

	/* A device's copy touched memory the process unmapped: the copy
	 * fails, as the kernel's would with EFAULT. The kernel blocked
	 * SIGSEGV for this handler and we leave it without returning, so
	 * unblock it first (sigsetjmp did not save the mask: that would
	 * cost a system call on every copy). */
	if (copy_env) {
		sigjmp_buf *e = copy_env;
		sigset_t set;

		copy_env = NULL;
		sigemptyset(&set);
		sigaddset(&set, SIGSEGV);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		siglongjmp(*e, 1);
	}
	i = slot_find(a);
	if (i < 0) {
		chain(&old_segv, sig, si, ucv);
		return;
	}
	s = &slots[i];
	if (ts.active) {
		/* Another thread's single step ended and closed the page we
		 * had opened for ours before our instruction ran: open it
		 * again (the trap flag is still set, the step still ours). */
		for (i = 0; i < ts.npages; i++)
			if (page == ts.page[i]) {
				mprotect((void *)page, MODEL_PAGE, PROT_READ | PROT_WRITE);
				return;
			}
		/* The stepped instruction crossed into the next trapped page. */
		if (ts.npages < 2 && page != ts.page[0]) {
			ts.page[ts.npages++] = page;
			mprotect((void *)page, MODEL_PAGE, PROT_READ | PROT_WRITE);
			return;
		}
		chain(&old_segv, sig, si, ucv);
		return;
	}
	write = uc->uc_mcontext.gregs[REG_ERR] & PF_WRITE;
	if (!(s->prot & (write ? PROT_WRITE : PROT_READ))) {
		chain(&old_segv, sig, si, ucv);
		return;
	}
	d = s->dev;
	mem = d->bar_map[s->bar];
	ts.dev = d;
	ts.bar = s->bar;
	ts.off = s->bar_off + (a - s->start);
	ts.size = insn_size((const uint8_t *)uc->uc_mcontext.gregs[REG_RIP]);
	ts.write = write;
	if (write) {
		ts.win = ts.off & ~(uint64_t)3;
		ts.win_len = (unsigned)UPMD_MIN((uint64_t)sizeof(ts.before), d->bar_len[ts.bar] - ts.win);
		memcpy(ts.before, mem + ts.win, ts.win_len);
	} else if (d->ops->mmio_read) {
		unsigned sz = ts.size ? (unsigned)ts.size : 4;
		uint64_t roff = ts.off & ~(uint64_t)(sz - 1), v;

		if (roff + sz <= bar_size(d, ts.bar)) {
			v = d->ops->mmio_read(d, ts.bar, roff, sz);
			memcpy(mem + roff, &v, sz);
		}
	}
	ts.page[0] = page;
	ts.npages = 1;
	ts.active = 1;
	mprotect((void *)page, MODEL_PAGE, PROT_READ | PROT_WRITE);
	uc->uc_mcontext.gregs[REG_EFL] |= EFLAGS_TF;
}

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	struct upmd_model_dev *d = ts.dev;
	uint8_t *mem;
	int i;

	if (!ts.active) {
		chain(&old_trap, sig, si, ucv);
		return;
	}
	uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)EFLAGS_TF;
	for (i = 0; i < ts.npages; i++)
		mprotect((void *)ts.page[i], MODEL_PAGE, PROT_NONE);
	ts.active = 0;
	if (!ts.write || !d->ops->mmio_write)
		return;
	mem = d->bar_map[ts.bar];
	if (ts.size && ts.off % (unsigned)ts.size == 0 && ts.off + (unsigned)ts.size <= bar_size(d, ts.bar) &&
	    ts.off + (unsigned)ts.size <= ts.win + ts.win_len) {
		uint64_t v = 0;

		memcpy(&v, mem + ts.off, (size_t)ts.size);
		if (ts.off < d->ops->trap_keep_start || ts.off + (unsigned)ts.size > d->ops->trap_keep_end)
			memcpy(mem + ts.off, ts.before + (ts.off - ts.win), (size_t)ts.size);
		d->ops->mmio_write(d, ts.bar, ts.off, (unsigned)ts.size, v);
		return;
	}
	/* Unknown form: each 4-byte word it changed is one register write. */
	for (unsigned w = 0; w + 4 <= ts.win_len; w += 4) {
		uint32_t now;

		if (!memcmp(mem + ts.win + w, ts.before + w, 4))
			continue;
		memcpy(&now, mem + ts.win + w, 4);
		memcpy(mem + ts.win + w, ts.before + w, 4);
		if (ts.win + w + 4 <= bar_size(d, ts.bar))
			d->ops->mmio_write(d, ts.bar, ts.win + w, 4, now);
	}
}

static int install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = on_segv;
	if (sigaction(SIGSEGV, &sa, &old_segv) < 0)
		return -errno;
	sa.sa_sigaction = on_trap;
	if (sigaction(SIGTRAP, &sa, &old_trap) < 0) {
		int rc = -errno;

		sigaction(SIGSEGV, &old_segv, NULL);
		return rc;
	}
	/* Stays installed for the life of the process: another library may
	 * have chained behind us since, and unhooking would cut it out. */
	installed = true;
	return 0;
}

bool model_trap_supported(void)
{
	return !getenv("UPMD_MODEL_NO_TRAP");
}

int model_guarded_copy(void *dst, const void *src, size_t len)
{
	sigjmp_buf env;
	int rc = 0;

	if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&slots_lock);
		if (!installed)
			rc = install();
		pthread_mutex_unlock(&slots_lock);
		if (rc < 0)
			return rc;
	}
	if (sigsetjmp(env, 0)) {
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		return -EFAULT;
	}
	copy_env = &env;
	/* The handler must see copy_env set before the copy can fault. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memcpy(dst, src, len);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	copy_env = NULL;
	return 0;
}

int model_trap_add(struct model_barmap *bm)
{
	int i, rc = 0;

	pthread_mutex_lock(&slots_lock);
	if (!installed)
		rc = install();
	for (i = 0; rc == 0 && i < TRAP_SLOTS; i++)
		if (!slots[i].end)
			break;
	if (rc == 0 && i == TRAP_SLOTS)
		rc = -ENOSPC;
	if (rc == 0) {
		slots[i].start = bm->start;
		slots[i].dev = bm->dev;
		slots[i].bar = bm->bar;
		slots[i].bar_off = bm->bar_off;
		slots[i].prot = bm->prot;
		/* Publish the slot only once it is complete. */
		__atomic_store_n(&slots[i].end, bm->end, __ATOMIC_RELEASE);
		bm->trap_slot = i;
	}
	pthread_mutex_unlock(&slots_lock);
	return rc;
}

void model_trap_del(struct model_barmap *bm)
{
	pthread_mutex_lock(&slots_lock);
	if (bm->trap_slot >= 0 && bm->trap_slot < TRAP_SLOTS)
		__atomic_store_n(&slots[bm->trap_slot].end, 0, __ATOMIC_RELEASE);
	bm->trap_slot = -1;
	pthread_mutex_unlock(&slots_lock);
}

#else /* !x86-64 Linux */

bool model_trap_supported(void)
{
	return false;
}

int model_guarded_copy(void *dst, const void *src, size_t len)
{
	(void)dst;
	(void)src;
	(void)len;
	return -ENOTSUP;
}

int model_trap_add(struct model_barmap *bm)
{
	(void)bm;
	return -ENOTSUP;
}

void model_trap_del(struct model_barmap *bm)
{
	(void)bm;
}

#endif
