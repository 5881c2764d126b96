/* Logging: one sink, levels, each message written with a single call. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <upmd/log.h>

int upmd_log_level_cur = UPMD_LOG_NOTICE;
static FILE *log_stream;

static const char *const level_names[] = {
	[UPMD_LOG_EMERG] = "emerg", [1] = "alert", [2] = "crit",
	[UPMD_LOG_ERR] = "err", [UPMD_LOG_WARNING] = "warning",
	[UPMD_LOG_NOTICE] = "notice", [UPMD_LOG_INFO] = "info",
	[UPMD_LOG_DEBUG] = "debug",
};

int upmd_log_set_level(int level)
{
	if (level < UPMD_LOG_EMERG || level > UPMD_LOG_DEBUG)
		return -EINVAL;
	upmd_log_level_cur = level;
	return 0;
}

int upmd_log_parse_level(const char *s)
{
	char *end;
	long v;
	size_t i;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (!errno && *end == '\0')
		return (v >= UPMD_LOG_EMERG && v <= UPMD_LOG_DEBUG) ? (int)v : -EINVAL;
	for (i = 0; i < UPMD_DIM(level_names); i++)
		if (!strcasecmp(s, level_names[i]))
			return (int)i;
	if (!strcasecmp(s, "error"))
		return UPMD_LOG_ERR;
	if (!strcasecmp(s, "warn"))
		return UPMD_LOG_WARNING;
	return -EINVAL;
}

void upmd_log_set_stream(FILE *f)
{
	log_stream = f;
}

void upmd_vlog(int level, const char *module, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (level > upmd_log_level_cur)
		return;
	n = snprintf(buf, sizeof(buf), "upmd: %s: ", module ? module : "-");
	if (n < 0)
		return;
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (n >= (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
	/* One fwrite per message so concurrent lcores never interleave a line. */
	if (buf[n - 1] != '\n')
		buf[n++] = '\n';
	fwrite(buf, 1, (size_t)n, log_stream ? log_stream : stderr);
	fflush(log_stream ? log_stream : stderr);
}

void upmd_log(int level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	upmd_vlog(level, module, fmt, ap);
	va_end(ap);
}
