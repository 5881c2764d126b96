/* uAPI conformance suite: the two targets, the in-process model and the running kernel. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#ifdef CONF_HAVE_MODEL
#include <upmd/model.h>
#endif

/* ---- the kernel (libc table; in the QEMU guest) ----------------------------- */

static int kernel_setup(void)
{
	const char *vm = getenv("UPMD_IN_VM");

	upmd_kops_set(NULL, NULL);
	if (upmd_k_access("/dev/iommu", F_OK) < 0)
		upmd_test_skip("no /dev/iommu: the kernel target runs in the VM guest "
			       "(tests/vm/run.sh vmtest-conformance)");
	conf_devices_required = vm && !strcmp(vm, "1");
	return 0;
}

static int kernel_teardown(void)
{
	return 0;
}

const struct conf_target conf_target_kernel = {
	.name = "kernel",
	.is_model = false,
	.setup = kernel_setup,
	.check_idle = NULL,
	.teardown = kernel_teardown,
};

/* ---- the model ------------------------------------------------------------- */

/* Two edu devices, each in its own group; the aperture of QEMU's intel-iommu. */
const char *conf_model_spec = CONF_MODEL_SPEC;

#ifdef CONF_HAVE_MODEL
static struct upmd_model *model;

static int model_stats_dirty(char *why, size_t len)
{
	struct upmd_model_stats st;
	int rc;

	memset(&st, 0xff, sizeof(st));
	rc = upmd_model_get_stats(model, &st);
	if (rc < 0) {
		snprintf(why, len, "upmd_model_get_stats: %s", conf_rc_name(rc));
		return 1;
	}
	if (!st.pinned_pages && !st.open_fds && !st.objects && !st.bound_devices &&
	    !st.attached_devices && !st.bar_mappings && !st.faults && !st.dma_bytes)
		return 0;
	snprintf(why, len,
		 "pinned_pages %llu open_fds %u objects %u bound_devices %u attached_devices %u "
		 "bar_mappings %u faults %u dma_bytes %llu",
		 (unsigned long long)st.pinned_pages, st.open_fds, st.objects, st.bound_devices,
		 st.attached_devices, st.bar_mappings, st.faults, (unsigned long long)st.dma_bytes);
	return 1;
}

static int model_setup(void)
{
	int rc = upmd_model_install(conf_model_spec, &model);

	if (rc < 0)
		return rc;
	printf("conformance: model \"%s\"\n", conf_model_spec);
	conf_devices_required = true;
	return 0;
}

static int model_teardown(void)
{
	char why[256];
	int dirty = model_stats_dirty(why, sizeof(why));

	if (dirty)
		printf("conformance: model stats after the last test: %s\n", why);
	upmd_kops_set(NULL, NULL);
	upmd_model_destroy(model);
	model = NULL;
	return dirty;
}
#else
static int model_stats_dirty(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

static int model_setup(void)
{
	upmd_test_skip("the model (model/) is not built in this tree yet");
}

static int model_teardown(void)
{
	return 0;
}
#endif

const struct conf_target conf_target_model = {
	.name = "model",
	.is_model = true,
	.setup = model_setup,
	.check_idle = model_stats_dirty,
	.teardown = model_teardown,
};
