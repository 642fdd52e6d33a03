#ifndef POS_LOG_H
#define POS_LOG_H
/*
 * One line per event, logfmt style, to stderr and optionally syslog:
 *   ts=2026-11-23T12:00:00.123Z level=info prog=pos-central event=request route=/v1/resolve status=200
 * The caller passes the event name and its key=value pairs as a printf
 * format. Values that may hold spaces or quotes go through log_q().
 * common/ never logs above debug: daemons log each error once, where handled.
 * Never pass a TID, PAN, track or phone number to these functions.
 */
#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* prog: program name; level: minimum printed; use_syslog: also send to syslog. */
void log_init(const char *prog, enum log_level level, int use_syslog);
/* When stderr is systemd's journal stream (JOURNAL_STREAM names stderr's
 * device and inode), each line starts with its sd-daemon priority: <7>
 * debug, <6> info, <4> warn, <3> error; on a terminal or a file, plain
 * text. Decided at every log_init. */
int log_to_journal(void);
/* Changes the minimum level printed (a reload); other settings stay. Meant
 * for the thread that owns logging setup, before or between bursts. */
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_level_parse(const char *s);
void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_debug(ev, ...) log_event(LOG_LVL_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_event(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_event(LOG_LVL_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_LVL_ERROR, ev, __VA_ARGS__)

/*
 * Buffered lines for a busy thread (a server worker's request log, one line
 * per request): after log_buffer_start, this thread's debug and info lines
 * collect in a buffer of its own and leave with one write(2) at
 * log_buffer_flush, when the buffer is full, or with the first line after
 * the oldest is LOG_BUFFER_AGE_MS old. Warnings and errors flush what is
 * buffered and go out at once, so nothing that matters waits and the order
 * of lines is kept. syslog, when on, still gets every line at once.
 * on_first(arg) runs when a line enters an empty buffer: the caller
 * schedules a flush there (a worker arms a timer of a few milliseconds,
 * so a loop carrying one request a turn still writes once for many).
 * Returns 0, or POS_ENOMEM and the thread keeps writing at once.
 */
#define LOG_BUFFER_BYTES 32768
#define LOG_BUFFER_AGE_MS 500
int log_buffer_start(void (*on_first)(void *arg), void *arg);
void log_buffer_flush(void);
/* Flushes and frees the buffer: lines are written at once again. */
void log_buffer_stop(void);

/* Quotes s for a logfmt value ("a b" -> "\"a b\"", escapes \ " and control
 * characters) into buf; returns buf. Truncates to fit n. */
const char *log_q(char *buf, size_t n, const char *s);

#endif
