/* dmadev: the device table, control-path checks, and the fast-path table the inline calls use. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/dmadev.h>
#include <upmd/log.h>

#define DMA_LOG "dmadev"

struct upmd_dma_fp upmd_dma_fp_[UPMD_DMA_MAX_DEVS];

static struct upmd_dma_dev *devs[UPMD_DMA_MAX_DEVS];
static pthread_mutex_t devs_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the stubs of a device not started -------------------------------------- */

static int stub_copy(void *p, uint16_t v, uint64_t s, uint64_t d, uint32_t l, uint64_t f)
{
	(void)p, (void)v, (void)s, (void)d, (void)l, (void)f;
	return -ENODEV;
}

static int stub_fill(void *p, uint16_t v, uint64_t pat, uint64_t d, uint32_t l, uint64_t f)
{
	(void)p, (void)v, (void)pat, (void)d, (void)l, (void)f;
	return -ENODEV;
}

static int stub_compare(void *p, uint16_t v, uint64_t s1, uint64_t s2, uint32_t l, uint64_t f)
{
	(void)p, (void)v, (void)s1, (void)s2, (void)l, (void)f;
	return -ENODEV;
}

static int stub_crc(void *p, uint16_t v, uint64_t s, uint32_t l, uint32_t seed, uint32_t *r, uint64_t f)
{
	(void)p, (void)v, (void)s, (void)l, (void)seed, (void)r, (void)f;
	return -ENODEV;
}

static int stub_submit(void *p, uint16_t v)
{
	(void)p, (void)v;
	return -ENODEV;
}

static uint16_t stub_completed(void *p, uint16_t v, uint16_t n, uint16_t *last, bool *err)
{
	(void)p, (void)v, (void)n, (void)last;
	*err = false;
	return 0;
}

static uint16_t stub_completed_status(void *p, uint16_t v, uint16_t n, uint16_t *last,
				      enum upmd_dma_status_code *st)
{
	(void)p, (void)v, (void)n, (void)last, (void)st;
	return 0;
}

static uint16_t stub_capacity(const void *p, uint16_t v)
{
	(void)p, (void)v;
	return 0;
}

/* A started device without an operation: -ENOTSUP (the driver's fp
 * replaces these for what it does). */
static int nosup_fill(void *p, uint16_t v, uint64_t pat, uint64_t d, uint32_t l, uint64_t f)
{
	(void)p, (void)v, (void)pat, (void)d, (void)l, (void)f;
	return -ENOTSUP;
}

static int nosup_compare(void *p, uint16_t v, uint64_t s1, uint64_t s2, uint32_t l, uint64_t f)
{
	(void)p, (void)v, (void)s1, (void)s2, (void)l, (void)f;
	return -ENOTSUP;
}

static int nosup_crc(void *p, uint16_t v, uint64_t s, uint32_t l, uint32_t seed, uint32_t *r, uint64_t f)
{
	(void)p, (void)v, (void)s, (void)l, (void)seed, (void)r, (void)f;
	return -ENOTSUP;
}

static void fp_stub(struct upmd_dma_fp *fp)
{
	fp->priv = NULL;
	fp->copy = stub_copy;
	fp->fill = stub_fill;
	fp->compare = stub_compare;
	fp->crc32c = stub_crc;
	fp->submit = stub_submit;
	fp->completed = stub_completed;
	fp->completed_status = stub_completed_status;
	fp->burst_capacity = stub_capacity;
}

__attribute__((constructor)) static void dma_fp_init(void)
{
	for (unsigned i = 0; i < UPMD_DMA_MAX_DEVS; i++)
		fp_stub(&upmd_dma_fp_[i]);
}

/* ---- the device table -------------------------------------------------------------- */

int upmd_dma_dev_allocate(const char *name, const struct upmd_dma_dev_ops *ops, size_t priv_size,
			  struct upmd_dma_dev **out)
{
	struct upmd_dma_dev *d;
	int id = -1;

	if (!name || !*name || strlen(name) >= UPMD_DMA_NAME_MAX || !ops || !out)
		return -EINVAL;
	pthread_mutex_lock(&devs_lock);
	for (int i = 0; i < UPMD_DMA_MAX_DEVS; i++) {
		if (devs[i] && !strcmp(devs[i]->name, name)) {
			pthread_mutex_unlock(&devs_lock);
			UPMD_ERR(DMA_LOG, "a DMA device called %s exists already", name);
			return -EEXIST;
		}
		if (!devs[i] && id < 0)
			id = i;
	}
	if (id < 0) {
		pthread_mutex_unlock(&devs_lock);
		UPMD_ERR(DMA_LOG, "%s: all %d DMA device slots are in use", name, UPMD_DMA_MAX_DEVS);
		return -ENOSPC;
	}
	d = calloc(1, sizeof(*d));
	if (d && priv_size)
		d->priv = calloc(1, priv_size);
	if (!d || (priv_size && !d->priv)) {
		pthread_mutex_unlock(&devs_lock);
		if (d)
			free(d);
		return -ENOMEM;
	}
	d->dev_id = (int16_t)id;
	strcpy(d->name, name);
	d->ops = ops;
	devs[id] = d;
	pthread_mutex_unlock(&devs_lock);
	*out = d;
	return 0;
}

void upmd_dma_dev_release(struct upmd_dma_dev *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&devs_lock);
	if (d->dev_id >= 0 && d->dev_id < UPMD_DMA_MAX_DEVS && devs[d->dev_id] == d) {
		devs[d->dev_id] = NULL;
		fp_stub(&upmd_dma_fp_[d->dev_id]);
	}
	pthread_mutex_unlock(&devs_lock);
	free(d->vchan_ready);
	free(d->priv);
	free(d);
}

struct upmd_dma_dev *upmd_dma_dev_get(int16_t dev_id)
{
	struct upmd_dma_dev *d;

	if (dev_id < 0 || dev_id >= UPMD_DMA_MAX_DEVS)
		return NULL;
	pthread_mutex_lock(&devs_lock);
	d = devs[dev_id];
	pthread_mutex_unlock(&devs_lock);
	return d;
}

uint16_t upmd_dma_count_avail(void)
{
	uint16_t n = 0;

	pthread_mutex_lock(&devs_lock);
	for (int i = 0; i < UPMD_DMA_MAX_DEVS; i++)
		n += devs[i] != NULL;
	pthread_mutex_unlock(&devs_lock);
	return n;
}

int upmd_dma_get_dev_id_by_name(const char *name)
{
	int id = -ENODEV;

	if (!name)
		return -ENODEV;
	pthread_mutex_lock(&devs_lock);
	for (int i = 0; i < UPMD_DMA_MAX_DEVS; i++)
		if (devs[i] && !strcmp(devs[i]->name, name)) {
			id = i;
			break;
		}
	pthread_mutex_unlock(&devs_lock);
	return id;
}

int upmd_dma_next_dev(int start)
{
	int id = -1;

	if (start < 0)
		start = 0;
	pthread_mutex_lock(&devs_lock);
	for (int i = start; i < UPMD_DMA_MAX_DEVS; i++)
		if (devs[i]) {
			id = i;
			break;
		}
	pthread_mutex_unlock(&devs_lock);
	return id;
}

/* ---- control path -------------------------------------------------------------------- */

int upmd_dma_info_get(int16_t dev_id, struct upmd_dma_info *info)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);

	if (!d || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->pasid = UPMD_DMA_NO_PASID;
	info->numa_node = -1;
	d->ops->info_get(d, info);
	info->name = d->name;
	info->nb_vchans = d->nb_vchans;
	return 0;
}

int upmd_dma_configure(int16_t dev_id, const struct upmd_dma_conf *conf)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);
	struct upmd_dma_info info;
	bool *ready;
	int rc;

	if (!d || !conf)
		return -EINVAL;
	if (d->started) {
		UPMD_ERR(DMA_LOG, "%s: configure while started: stop it first", d->name);
		return -EBUSY;
	}
	if (conf->size != sizeof(*conf) || conf->flags) {
		UPMD_ERR(DMA_LOG, "%s: bad configuration (size %u, flags 0x%x): set size = sizeof and flags = 0",
			 d->name, conf->size, conf->flags);
		return -EINVAL;
	}
	upmd_dma_info_get(dev_id, &info);
	if (conf->nb_vchans < 1 || conf->nb_vchans > info.max_vchans) {
		UPMD_ERR(DMA_LOG, "%s: %u virtual channels: the device has 1..%u", d->name, conf->nb_vchans,
			 info.max_vchans);
		return -EINVAL;
	}
	ready = calloc(conf->nb_vchans, sizeof(*ready));
	if (!ready)
		return -ENOMEM;
	rc = d->ops->configure ? d->ops->configure(d, conf) : 0;
	if (rc < 0) {
		free(ready);
		return rc;
	}
	free(d->vchan_ready);
	d->vchan_ready = ready;
	d->nb_vchans = conf->nb_vchans;
	d->configured = true;
	return 0;
}

int upmd_dma_vchan_setup(int16_t dev_id, uint16_t vchan, const struct upmd_dma_vchan_conf *conf)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);
	struct upmd_dma_info info;
	int rc;

	if (!d || !conf)
		return -EINVAL;
	if (d->started) {
		UPMD_ERR(DMA_LOG, "%s: vchan setup while started: stop it first", d->name);
		return -EBUSY;
	}
	if (!d->configured || vchan >= d->nb_vchans) {
		UPMD_ERR(DMA_LOG, "%s: vchan %u: configure the device first (it has %u vchans)", d->name, vchan,
			 d->nb_vchans);
		return -EINVAL;
	}
	upmd_dma_info_get(dev_id, &info);
	if (conf->size != sizeof(*conf) || conf->flags || !UPMD_IS_POW2(conf->nb_desc) ||
	    conf->nb_desc < info.min_desc || conf->nb_desc > info.max_desc) {
		UPMD_ERR(DMA_LOG, "%s: vchan %u: %u descriptors: give a power of two in %u..%u (and size = sizeof, "
			 "flags = 0)", d->name, vchan, conf->nb_desc, info.min_desc, info.max_desc);
		return -EINVAL;
	}
	rc = d->ops->vchan_setup(d, vchan, conf);
	if (rc == 0)
		d->vchan_ready[vchan] = true;
	return rc;
}

int upmd_dma_start(int16_t dev_id)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);
	struct upmd_dma_fp fp;
	int rc;

	if (!d)
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	if (!d->configured) {
		UPMD_ERR(DMA_LOG, "%s: start before configure", d->name);
		return -EINVAL;
	}
	for (uint16_t v = 0; v < d->nb_vchans; v++)
		if (!d->vchan_ready[v]) {
			UPMD_ERR(DMA_LOG, "%s: vchan %u is not set up (upmd_dma_vchan_setup)", d->name, v);
			return -EINVAL;
		}
	fp_stub(&fp);
	fp.priv = d->priv;
	fp.fill = nosup_fill;
	fp.compare = nosup_compare;
	fp.crc32c = nosup_crc;
	rc = d->ops->start(d, &fp);
	if (rc < 0)
		return rc;
	upmd_dma_fp_[d->dev_id] = fp;
	d->started = true;
	return 0;
}

int upmd_dma_stop(int16_t dev_id)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);
	int rc = 0;

	if (!d)
		return -EINVAL;
	if (!d->started)
		return 0;
	/* The driver's completed calls stay in the table: after the stop they
	 * report what was left as USER_ABORT. Enqueue and submit fail. */
	upmd_dma_fp_[d->dev_id].copy = stub_copy;
	upmd_dma_fp_[d->dev_id].fill = stub_fill;
	upmd_dma_fp_[d->dev_id].compare = stub_compare;
	upmd_dma_fp_[d->dev_id].crc32c = stub_crc;
	upmd_dma_fp_[d->dev_id].submit = stub_submit;
	if (d->ops->stop)
		rc = d->ops->stop(d);
	if (rc < 0)
		UPMD_ERR(DMA_LOG, "%s: the driver's stop failed (%s): treat the device as not quiesced; close it",
			 d->name, strerror(-rc));
	d->started = false;
	return rc;
}

int upmd_dma_close(int16_t dev_id)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);

	if (!d)
		return -EINVAL;
	upmd_dma_stop(dev_id);
	fp_stub(&upmd_dma_fp_[d->dev_id]);
	if (d->ops->close)
		d->ops->close(d);
	d->configured = false;
	for (uint16_t v = 0; v < d->nb_vchans && d->vchan_ready; v++)
		d->vchan_ready[v] = false;
	return 0;
}

bool upmd_dma_is_started(int16_t dev_id)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);

	return d && d->started;
}

int upmd_dma_stats_get(int16_t dev_id, uint16_t vchan, struct upmd_dma_stats *stats)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);

	if (!d || !stats || !d->configured || (vchan != UINT16_MAX && vchan >= d->nb_vchans))
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	if (!d->ops->stats_get)
		return 0;
	if (vchan != UINT16_MAX)
		return d->ops->stats_get(d, vchan, stats);
	for (uint16_t v = 0; v < d->nb_vchans; v++) {
		struct upmd_dma_stats s;
		int rc;

		memset(&s, 0, sizeof(s));
		rc = d->ops->stats_get(d, v, &s);
		if (rc < 0)
			return rc;
		stats->submitted += s.submitted;
		stats->completed += s.completed;
		stats->errors += s.errors;
	}
	return 0;
}

int upmd_dma_stats_reset(int16_t dev_id, uint16_t vchan)
{
	struct upmd_dma_dev *d = upmd_dma_dev_get(dev_id);

	if (!d || !d->configured || (vchan != UINT16_MAX && vchan >= d->nb_vchans))
		return -EINVAL;
	if (!d->ops->stats_reset)
		return 0;
	if (vchan != UINT16_MAX)
		return d->ops->stats_reset(d, vchan);
	for (uint16_t v = 0; v < d->nb_vchans; v++)
		d->ops->stats_reset(d, v);
	return 0;
}

const char *upmd_dma_status_str(enum upmd_dma_status_code st)
{
	switch (st) {
	case UPMD_DMA_STATUS_SUCCESSFUL: return "SUCCESSFUL";
	case UPMD_DMA_STATUS_USER_ABORT: return "USER ABORT";
	case UPMD_DMA_STATUS_NOT_ATTEMPTED: return "NOT ATTEMPTED";
	case UPMD_DMA_STATUS_INVALID_SRC_ADDR: return "INVALID SOURCE ADDRESS";
	case UPMD_DMA_STATUS_INVALID_DST_ADDR: return "INVALID DESTINATION ADDRESS";
	case UPMD_DMA_STATUS_INVALID_ADDR: return "INVALID ADDRESS";
	case UPMD_DMA_STATUS_INVALID_LENGTH: return "INVALID LENGTH";
	case UPMD_DMA_STATUS_INVALID_OPCODE: return "INVALID OPCODE";
	case UPMD_DMA_STATUS_BUS_READ_ERROR: return "BUS READ ERROR";
	case UPMD_DMA_STATUS_BUS_WRITE_ERROR: return "BUS WRITE ERROR";
	case UPMD_DMA_STATUS_BUS_ERROR: return "BUS ERROR";
	case UPMD_DMA_STATUS_DATA_POISON: return "DATA POISON";
	case UPMD_DMA_STATUS_DESCRIPTOR_READ_ERROR: return "DESCRIPTOR READ ERROR";
	case UPMD_DMA_STATUS_DEV_LINK_ERROR: return "DEVICE LINK ERROR";
	case UPMD_DMA_STATUS_PAGE_FAULT: return "PAGE FAULT";
	case UPMD_DMA_STATUS_COMPARE_MISMATCH: return "COMPARE MISMATCH";
	case UPMD_DMA_STATUS_PASID_ERROR: return "PASID NOT ATTACHED";
	case UPMD_DMA_STATUS_ERROR_UNKNOWN: return "UNKNOWN ERROR";
	}
	return "UNKNOWN STATUS";
}

/* At EAL cleanup devices left open are closed by their drivers' remove
 * hooks (vdev remove, PCI remove); nothing here outlives them. */
