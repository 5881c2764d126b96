/* upmd logging: levels, per-module prefixes, one sink. */
#ifndef UPMD_LOG_H
#define UPMD_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <upmd/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum upmd_log_level {
	UPMD_LOG_EMERG = 0,
	UPMD_LOG_ERR = 3,
	UPMD_LOG_WARNING = 4,
	UPMD_LOG_NOTICE = 5,
	UPMD_LOG_INFO = 6,
	UPMD_LOG_DEBUG = 7,
};

/** Current global level; messages above it are dropped. Default NOTICE. */
extern int upmd_log_level_cur;

/**
 * Set the global log level.
 * @return 0, or -EINVAL if @level is out of range.
 */
int upmd_log_set_level(int level);

/**
 * Parse a level name ("err", "warning", "notice", "info", "debug") or
 * number (0-7). @return the level, or -EINVAL.
 */
int upmd_log_parse_level(const char *s);

/** Redirect log output (default stderr). NULL restores stderr. */
void upmd_log_set_stream(FILE *f);

/**
 * Write one message. Thread-safe: each message is written with one call so
 * lines from different lcores do not interleave.
 */
void upmd_log(int level, const char *module, const char *fmt, ...) __upmd_printf(3, 4);
void upmd_vlog(int level, const char *module, const char *fmt, va_list ap);

#define UPMD_LOG(level, module, ...)                                           \
	do {                                                                   \
		if ((level) <= upmd_log_level_cur)                             \
			upmd_log((level), (module), __VA_ARGS__);              \
	} while (0)

#define UPMD_ERR(mod, ...) UPMD_LOG(UPMD_LOG_ERR, mod, __VA_ARGS__)
#define UPMD_WARN(mod, ...) UPMD_LOG(UPMD_LOG_WARNING, mod, __VA_ARGS__)
#define UPMD_NOTICE(mod, ...) UPMD_LOG(UPMD_LOG_NOTICE, mod, __VA_ARGS__)
#define UPMD_INFO(mod, ...) UPMD_LOG(UPMD_LOG_INFO, mod, __VA_ARGS__)
#define UPMD_DEBUG(mod, ...) UPMD_LOG(UPMD_LOG_DEBUG, mod, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* UPMD_LOG_H */
