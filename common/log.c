#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "err.h"
#include "timeutil.h"

/* One event never needs more; a longer one is cut and marked, never split
 * across two lines (a second line could interleave with another thread's). */
#define LOG_LINE_MAX 2048
#define LOG_PROG_MAX 64

/* Written by log_init before any thread starts, then only read (log_min
 * also by log_set_level, atomically). */
static char log_prog[LOG_PROG_MAX] = "pos";
static enum log_level log_min = LOG_LVL_INFO;
static int log_syslog;
static int log_journal;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

/* A thread's buffered lines (log_buffer_start); owned by that thread. */
struct log_buf {
	void (*on_first)(void *arg);
	void *arg;
	size_t len;
	int64_t first_us; /* when the oldest buffered line was made */
	char data[LOG_BUFFER_BYTES];
};

static _Thread_local struct log_buf *log_tb;

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connects to
 * stdout and stderr (systemd.exec(5)); a match with stderr's own device and
 * inode means the journal reads our lines, and a child whose stderr was
 * redirected elsewhere keeps plain text. */
static int log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int used = 0;

	if (!v || sscanf(v, "%llu:%llu%n", &dev, &ino, &used) != 2 || v[used] != '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_to_journal(void)
{
	return log_journal;
}

void log_set_level(enum log_level level)
{
	/* Worker threads read it while they log: one atomic word. */
	if (level >= LOG_LVL_DEBUG && level <= LOG_LVL_ERROR)
		__atomic_store_n(&log_min, level, __ATOMIC_RELAXED);
}

void log_init(const char *prog, enum log_level level, int use_syslog)
{
	size_t i = 0;

	log_journal = log_stderr_is_journal();

	if (prog) {
		/* The name lands unquoted in every line: keep it one logfmt token. */
		for (; prog[i] && i < sizeof log_prog - 1; i++) {
			unsigned char ch = (unsigned char)prog[i];
			log_prog[i] = (ch > ' ' && ch < 0x7f && ch != '=' && ch != '"') ? (char)ch : '_';
		}
		log_prog[i] = '\0';
	}
	if (level < LOG_LVL_DEBUG || level > LOG_LVL_ERROR)
		level = LOG_LVL_INFO;
	log_min = level;
	if (use_syslog && !log_syslog)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog ? 1 : 0;
}

int log_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

/* Appends with truncation; *off never passes cap - 1. */
static void log_append(char *buf, size_t cap, size_t *off, const char *s)
{
	size_t n = strlen(s);

	if (*off >= cap - 1)
		return;
	if (n > cap - 1 - *off)
		n = cap - 1 - *off;
	memcpy(buf + *off, s, n);
	*off += n;
	buf[*off] = '\0';
}

static void log_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report a failed log write */
		}
		p += w;
		n -= (size_t)w;
	}
}

int log_buffer_start(void (*on_first)(void *arg), void *arg)
{
	if (!log_tb && !(log_tb = malloc(sizeof *log_tb)))
		return POS_ENOMEM;
	log_tb->on_first = on_first;
	log_tb->arg = arg;
	log_tb->len = 0;
	return 0;
}

void log_buffer_flush(void)
{
	if (log_tb && log_tb->len > 0) {
		log_write_all(STDERR_FILENO, log_tb->data, log_tb->len);
		log_tb->len = 0;
	}
}

void log_buffer_stop(void)
{
	log_buffer_flush();
	free(log_tb);
	log_tb = NULL;
}

/* One finished line (with its newline) to stderr, through the thread's
 * buffer when it has one. */
static void log_emit(enum log_level level, const char *line, size_t n)
{
	struct log_buf *b = log_tb;
	int64_t now;

	if (!b || level >= LOG_LVL_WARN || n > sizeof b->data) {
		log_buffer_flush();
		log_write_all(STDERR_FILENO, line, n);
		return;
	}
	now = time_mono_us();
	if (b->len > 0 &&
	    (n > sizeof b->data - b->len || now - b->first_us >= LOG_BUFFER_AGE_MS * 1000))
		log_buffer_flush();
	memcpy(b->data + b->len, line, n);
	b->len += n;
	if (b->len == n) {
		b->first_us = now;
		if (b->on_first)
			b->on_first(b->arg);
	}
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	char ts[TIME_RFC3339_LEN];
	size_t off = 0, body;
	va_list ap;
	int saved = errno;

	if ((int)level < (int)__atomic_load_n(&log_min, __ATOMIC_RELAXED))
		return;
	if (level < LOG_LVL_DEBUG || level > LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	time_format_rfc3339(time_now_ms(), ts);
	line[0] = '\0';
	if (log_journal) {
		/* sd-daemon(3) priority prefix: journalctl -p filters on it. */
		static const char *const pfx[] = { "<7>", "<6>", "<4>", "<3>" };
		log_append(line, sizeof line, &off, pfx[level]);
	}
	log_append(line, sizeof line, &off, "ts=");
	log_append(line, sizeof line, &off, ts);
	body = off; /* syslog has its own timestamp */
	log_append(line, sizeof line, &off, " level=");
	log_append(line, sizeof line, &off, log_names[level]);
	log_append(line, sizeof line, &off, " prog=");
	log_append(line, sizeof line, &off, log_prog);
	log_append(line, sizeof line, &off, " event=");
	log_append(line, sizeof line, &off, event ? event : "unknown");
	if (fmt && fmt[0] && off < sizeof line - 2) {
		size_t start;
		int n;

		log_append(line, sizeof line, &off, " ");
		start = off;
		va_start(ap, fmt);
		n = vsnprintf(line + off, sizeof line - off, fmt, ap);
		va_end(ap);
		if (n > 0) {
			off += (size_t)n < sizeof line - off ? (size_t)n : sizeof line - off - 1;
			/* A newline in a value would forge a second log line. */
			for (size_t i = start; i < off; i++)
				if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
					line[i] = '_';
		} else {
			off = start - 1;
			line[off] = '\0';
		}
	}
	if (off >= sizeof line - 1) {
		static const char cut[] = " truncated=1";
		off = sizeof line - sizeof cut - 1;
		memcpy(line + off, cut, sizeof cut - 1);
		off += sizeof cut - 1;
	}
	line[off] = '\n';
	log_emit(level, line, off + 1);
	if (log_syslog) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		line[off] = '\0';
		syslog(prio[level], "%s", line + body + 1);
	}
	errno = saved;
}

static int log_needs_quotes(const char *s)
{
	if (!*s)
		return 1;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch <= ' ' || ch == '"' || ch == '=' || ch == '\\' || ch == 0x7f)
			return 1;
	}
	return 0;
}

const char *log_q(char *buf, size_t n, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!buf || n == 0)
		return "";
	if (!s)
		s = "";
	if (!log_needs_quotes(s)) {
		size_t l = strnlen(s, n - 1);
		memcpy(buf, s, l);
		buf[l] = '\0';
		return buf;
	}
	if (n < 3) {
		buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[5];
		size_t el;

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			el = 2;
		} else if (ch == '\n') {
			memcpy(esc, "\\n", 2);
			el = 2;
		} else if (ch == '\t') {
			memcpy(esc, "\\t", 2);
			el = 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[ch >> 4];
			esc[3] = hex[ch & 15];
			el = 4;
		} else {
			esc[0] = (char)ch;
			el = 1;
		}
		/* Keep room for the closing quote and the terminator. */
		if (o + el + 2 > n)
			break;
		memcpy(buf + o, esc, el);
		o += el;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
