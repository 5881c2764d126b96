/* Driver arguments as "key=value,key=value" (the part of a --vdev after the device name). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upmd/ethdev_driver.h>
#include <upmd/log.h>

int upmd_kvargs_parse(const char *dev, const char *args, const char *const *known, struct upmd_kvargs *kv)
{
	char *save = NULL, *tok;

	memset(kv, 0, sizeof(*kv));
	if (!args || !*args)
		return 0;
	kv->buf_ = strdup(args);
	if (!kv->buf_)
		return -ENOMEM;
	for (tok = strtok_r(kv->buf_, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		unsigned i;

		if (eq)
			*eq = '\0';
		for (i = 0; known && known[i] && strcmp(known[i], tok); i++)
			;
		if (!known || !known[i]) {
			char list[256] = "";

			for (i = 0; known && known[i]; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, known[i], sizeof(list) - strlen(list) - 1);
			}
			UPMD_ERR("ethdev", "%s: unknown argument '%s' (it takes: %s)", dev, tok, *list ? list : "none");
			upmd_kvargs_free(kv);
			return -EINVAL;
		}
		if (kv->n == UPMD_DIM(kv->kv)) {
			UPMD_ERR("ethdev", "%s: more than %zu arguments", dev, UPMD_DIM(kv->kv));
			upmd_kvargs_free(kv);
			return -EINVAL;
		}
		kv->kv[kv->n].key = tok;
		kv->kv[kv->n].value = eq ? eq + 1 : tok + strlen(tok);
		kv->n++;
	}
	return 0;
}

void upmd_kvargs_free(struct upmd_kvargs *kv)
{
	free(kv->buf_);
	memset(kv, 0, sizeof(*kv));
}

const char *upmd_kvargs_get(const struct upmd_kvargs *kv, const char *key)
{
	const char *v = NULL;
	unsigned i;

	/* The last one given wins, as on a command line. */
	for (i = 0; i < kv->n; i++)
		if (!strcmp(kv->kv[i].key, key))
			v = kv->kv[i].value;
	return v;
}

int upmd_kvargs_get_uint(const struct upmd_kvargs *kv, const char *dev, const char *key, unsigned min,
			 unsigned max, unsigned def, unsigned *out)
{
	const char *v = upmd_kvargs_get(kv, key);
	unsigned long n;
	char *end;

	if (!v) {
		*out = def;
		return 0;
	}
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno || end == v || *end || *v == '-' || n < min || n > max) {
		UPMD_ERR("ethdev", "%s: %s=%s: give a number from %u to %u", dev, key, v, min, max);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}
