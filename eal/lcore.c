/* lcores: one pinned thread per worker lcore, remote launch and wait. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

#include <upmd/eal.h>
#include <upmd/log.h>

#include "eal_private.h"

/*
 * Launch and wait are control-path operations (a worker runs a poll loop
 * for seconds or forever), so a mutex and condition variable per lcore is
 * simpler than a lock-free mailbox and costs nothing that matters.
 */
struct lcore {
	bool enabled;
	int cpu;
	int socket;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum upmd_lcore_state state;
	upmd_lcore_function_t *f;
	void *arg;
	int ret;
	bool quit;
};

static struct lcore lcores[UPMD_MAX_LCORE];
static unsigned main_lcore = UPMD_MAX_LCORE;
static unsigned n_lcores;
static cpu_set_t saved_affinity;
static bool affinity_saved;
__thread unsigned upmd_this_lcore_ = UPMD_MAX_LCORE;

int eal_parse_mb(const char *s, size_t *bytes)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > (1ULL << 40) / UPMD_MB)
		return -EINVAL;
	*bytes = (size_t)(v * UPMD_MB);
	return 0;
}

static int parse_num(const char **p, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)**p))
		return -EINVAL;
	errno = 0;
	v = strtoul(*p, &end, 10);
	if (errno || v >= UPMD_MAX_LCORE)
		return -EINVAL;
	*p = end;
	*out = (unsigned)v;
	return 0;
}

int eal_parse_lcores(const char *s, bool *set)
{
	bool tmp[UPMD_MAX_LCORE] = { false };
	const char *p = s;
	unsigned a, b, i, n = 0;

	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		if (parse_num(&p, &a) < 0)
			return -EINVAL;
		b = a;
		if (*p == '-') {
			p++;
			if (parse_num(&p, &b) < 0 || b < a)
				return -EINVAL;
		}
		for (i = a; i <= b; i++) {
			if (tmp[i])
				return -EINVAL;	/* an lcore given twice is a typo */
			tmp[i] = true;
			n++;
		}
		if (*p == '\0')
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	if (!n)
		return -EINVAL;
	memcpy(set, tmp, sizeof(tmp));
	return 0;
}

static int cpu_socket(int cpu)
{
	int node;

	if (numa_available() < 0)
		return 0;
	node = numa_node_of_cpu(cpu);
	return node < 0 ? 0 : node;
}

static void *worker_main(void *argp)
{
	struct lcore *lc = argp;

	upmd_this_lcore_ = (unsigned)(lc - lcores);
	pthread_mutex_lock(&lc->lock);
	for (;;) {
		while (lc->state != UPMD_LCORE_RUNNING && !lc->quit)
			pthread_cond_wait(&lc->cond, &lc->lock);
		if (lc->quit)
			break;
		pthread_mutex_unlock(&lc->lock);
		{
			int ret = lc->f(lc->arg);

			pthread_mutex_lock(&lc->lock);
			lc->ret = ret;
		}
		lc->state = UPMD_LCORE_FINISHED;
		pthread_cond_broadcast(&lc->cond);
	}
	pthread_mutex_unlock(&lc->lock);
	return NULL;
}

static int pin(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(t, sizeof(set), &set);
}

int eal_lcores_check(const bool *set)
{
	cpu_set_t allowed;
	unsigned i;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -errno;
	for (i = 0; i < UPMD_MAX_LCORE; i++) {
		if (!set[i])
			continue;
		if (i >= CPU_SETSIZE || !CPU_ISSET(i, &allowed)) {
			UPMD_ERR("eal", "lcore %u cannot run: CPU %u is not available to this process "
				 "(see 'taskset -p $$' or the container's cpuset); pick lcores from the allowed CPUs",
				 i, i);
			return -EINVAL;
		}
	}
	return 0;
}

int eal_lcores_init(const bool *set)
{
	cpu_set_t allowed;
	unsigned i;
	int rc;

	rc = eal_lcores_check(set);
	if (rc < 0)
		return rc;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -errno;
	saved_affinity = allowed;
	affinity_saved = true;
	n_lcores = 0;
	main_lcore = UPMD_MAX_LCORE;
	for (i = 0; i < UPMD_MAX_LCORE; i++) {
		struct lcore *lc = &lcores[i];

		memset(lc, 0, sizeof(*lc));
		if (!set[i])
			continue;
		lc->enabled = true;
		lc->cpu = (int)i;
		lc->socket = cpu_socket((int)i);
		lc->state = UPMD_LCORE_WAIT;
		pthread_mutex_init(&lc->lock, NULL);
		pthread_cond_init(&lc->cond, NULL);
		n_lcores++;
		if (main_lcore == UPMD_MAX_LCORE) {
			main_lcore = i;
			upmd_this_lcore_ = i;
			rc = pin(pthread_self(), lc->cpu);
			if (rc < 0)
				goto err;
			continue;
		}
		rc = -pthread_create(&lc->thread, NULL, worker_main, lc);
		if (rc < 0)
			goto err;
		lc->thread_started = true;
		rc = pin(lc->thread, lc->cpu);
		if (rc < 0)
			goto err;
	}
	return 0;
err:
	UPMD_ERR("eal", "cannot start lcore %u: %s", i, strerror(-rc));
	eal_lcores_cleanup();
	return rc;
}

void eal_lcores_cleanup(void)
{
	unsigned i;

	for (i = 0; i < UPMD_MAX_LCORE; i++) {
		struct lcore *lc = &lcores[i];

		if (!lc->enabled)
			continue;
		if (lc->thread_started) {
			pthread_mutex_lock(&lc->lock);
			lc->quit = true;
			pthread_cond_broadcast(&lc->cond);
			pthread_mutex_unlock(&lc->lock);
			pthread_join(lc->thread, NULL);
		}
		pthread_cond_destroy(&lc->cond);
		pthread_mutex_destroy(&lc->lock);
		memset(lc, 0, sizeof(*lc));
	}
	/* Give the main thread back the CPUs it had before init. */
	if (affinity_saved)
		sched_setaffinity(0, sizeof(saved_affinity), &saved_affinity);
	affinity_saved = false;
	main_lcore = UPMD_MAX_LCORE;
	upmd_this_lcore_ = UPMD_MAX_LCORE;
	n_lcores = 0;
}

unsigned upmd_get_main_lcore(void)
{
	return main_lcore;
}

unsigned upmd_lcore_count(void)
{
	return n_lcores;
}

bool upmd_lcore_is_enabled(unsigned lcore_id)
{
	return lcore_id < UPMD_MAX_LCORE && lcores[lcore_id].enabled;
}

int upmd_lcore_to_cpu(unsigned lcore_id)
{
	return upmd_lcore_is_enabled(lcore_id) ? lcores[lcore_id].cpu : -EINVAL;
}

int upmd_lcore_to_socket_id(unsigned lcore_id)
{
	return upmd_lcore_is_enabled(lcore_id) ? lcores[lcore_id].socket : -EINVAL;
}

int upmd_socket_id(void)
{
	int s = upmd_lcore_to_socket_id(upmd_this_lcore_);

	return s < 0 ? 0 : s;
}

unsigned upmd_get_next_lcore(unsigned i, bool skip_main)
{
	for (i++; i < UPMD_MAX_LCORE; i++) {
		if (!lcores[i].enabled)
			continue;
		if (skip_main && i == main_lcore)
			continue;
		return i;
	}
	return UPMD_MAX_LCORE;
}

static struct lcore *worker(unsigned id)
{
	if (id >= UPMD_MAX_LCORE || !lcores[id].enabled || !lcores[id].thread_started)
		return NULL;
	return &lcores[id];
}

int upmd_eal_remote_launch(upmd_lcore_function_t *f, void *arg, unsigned worker_id)
{
	struct lcore *lc = worker(worker_id);
	int rc = 0;

	if (!lc || !f)
		return -EINVAL;
	pthread_mutex_lock(&lc->lock);
	if (lc->state == UPMD_LCORE_RUNNING) {
		rc = -EBUSY;
	} else {
		lc->f = f;
		lc->arg = arg;
		lc->state = UPMD_LCORE_RUNNING;
		pthread_cond_broadcast(&lc->cond);
	}
	pthread_mutex_unlock(&lc->lock);
	return rc;
}

int upmd_eal_wait_lcore(unsigned worker_id)
{
	struct lcore *lc = worker(worker_id);
	int ret = 0;

	if (!lc)
		return -EINVAL;
	pthread_mutex_lock(&lc->lock);
	while (lc->state == UPMD_LCORE_RUNNING)
		pthread_cond_wait(&lc->cond, &lc->lock);
	if (lc->state == UPMD_LCORE_FINISHED) {
		ret = lc->ret;
		lc->state = UPMD_LCORE_WAIT;
	}
	pthread_mutex_unlock(&lc->lock);
	return ret;
}

void upmd_eal_mp_wait_lcore(void)
{
	unsigned i;

	UPMD_LCORE_FOREACH_WORKER(i)
		upmd_eal_wait_lcore(i);
}

enum upmd_lcore_state upmd_eal_get_lcore_state(unsigned lcore_id)
{
	enum upmd_lcore_state s;
	struct lcore *lc = worker(lcore_id);

	if (!lc)
		return UPMD_LCORE_WAIT;
	pthread_mutex_lock(&lc->lock);
	s = lc->state;
	pthread_mutex_unlock(&lc->lock);
	return s;
}
