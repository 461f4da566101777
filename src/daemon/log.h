/*
 * log.h - leveled logging to stderr for lwvhostd.
 *
 * Owns: the log level and the line format (time, level, message).
 * Must not: allocate, block on anything but stderr, or depend on daemon state.
 */
#ifndef LWV_LOG_H
#define LWV_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Any thread may log; the control thread may change the level at run time
 * (a reload), so it is read and written atomically. */
void log_set_level(int level);
int log_get_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_level_parse(const char *name);   /* -1 if unknown */
const char *log_level_name(int level);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
