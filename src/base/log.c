/*
 * The broker's log: Mosquitto's line format ("<unix time>: <message>", or a strftime(3) stamp
 * with log_timestamp_format, or none with log_timestamp false) sent to the destinations of the
 * configuration.
 *
 * A line is formatted once into a stack buffer (LOG_LINE_MAX bytes, longer messages are cut
 * and end in "...") and leaves in one write(2) per file descriptor, so lines written by several
 * workers at once never interleave: O_APPEND files and pipes (up to PIPE_BUF) take each write
 * whole. Nothing is buffered in stdio, so a crash loses no line already logged. struct log is
 * read-only after log_open(), which is what lets workers share it without a lock. The one piece
 * of process state is syslog's: openlog(3) keeps its ident and options in libc, which is
 * acceptable for a process that has one log.
 *
 * The message part of every line goes through log_escape(): client ids, user names and topics
 * are the client's bytes, and MQTT allows control characters in them (only U+0000 is
 * forbidden), so a client id holding "\n" would otherwise write a line of its own choosing.
 * Escaping the whole message rather than each client string at its call site means no call
 * site, present or future, can forget. It costs one pass over a line already being formatted,
 * into a second stack buffer: no allocation.
 *
 * -v (cfg->verbose) turns every type on and leaves the destinations alone: mosquitto 2.0.11
 * with -v and `log_dest stdout` writes everything to stdout only, and with `log_dest none`
 * nothing at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "starling/error.h"

#define LOG_LINE_MAX      2048 /* Mosquitto cuts at 1000 */
#define LOG_WRITE_TRIES   4    /* a short write is resumed this many times, then dropped */
#define LOG_TRUNCATED_TAG "..."

/* syslog priority of a log type, as Mosquitto maps them. */
static int syslog_priority(uint32_t type)
{
	if (type & LOG_T_ERROR)
		return LOG_ERR;
	if (type & LOG_T_WARNING)
		return LOG_WARNING;
	if (type & (LOG_T_NOTICE | LOG_T_SUBSCRIBE | LOG_T_UNSUBSCRIBE))
		return LOG_NOTICE;
	if (type & LOG_T_INFORMATION)
		return LOG_INFO;
	return LOG_DEBUG; /* debug, websockets */
}

static int add_fd(struct log *lg, int fd)
{
	for (unsigned i = 0; i < lg->fd_count; i++)
		if (lg->fds[i] == fd)
			return ST_OK;
	if (lg->fd_count == CONFIG_LOG_DESTS_MAX)
		return ST_ERR_LIMIT; /* cannot happen: one fd per distinct destination kind */
	lg->fds[lg->fd_count++] = fd;
	return ST_OK;
}

int log_open(struct log *lg, const struct config *cfg)
{
	int rc = ST_OK;

	memset(lg, 0, sizeof(*lg));
	lg->file_fd = -1;
	lg->types = cfg->verbose ? LOG_T_ALL : cfg->log_types;
	lg->timestamp = cfg->log_timestamp;
	lg->connection_messages = cfg->connection_messages;
	memcpy(lg->timestamp_format, cfg->log_timestamp_format, sizeof(lg->timestamp_format));
	lg->timestamp_format[sizeof(lg->timestamp_format) - 1] = '\0';
	if (cfg->log_dest_count == 0) /* Mosquitto's default destination */
		return add_fd(lg, STDERR_FILENO);
	for (unsigned i = 0; i < cfg->log_dest_count && rc == ST_OK; i++) {
		const struct config_log_dest *d = &cfg->log_dests[i];

		switch (d->kind) {
		case LOG_DEST_STDERR:
			rc = add_fd(lg, STDERR_FILENO);
			break;
		case LOG_DEST_STDOUT:
			rc = add_fd(lg, STDOUT_FILENO);
			break;
		case LOG_DEST_FILE:
			if (lg->file_fd >= 0)
				break; /* config allows one; keep the first */
			lg->file_fd =
			        open(d->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (lg->file_fd < 0) {
				fprintf(stderr,
				        "Error: Unable to open log file %s for writing: %s\n",
				        d->path, strerror(errno));
				rc = ST_ERR_SYS;
				break;
			}
			rc = add_fd(lg, lg->file_fd);
			break;
		case LOG_DEST_SYSLOG:
			if (!lg->to_syslog)
				openlog("starlingd", LOG_PID | LOG_NDELAY,
				        cfg->log_facility < 0 ? LOG_DAEMON
				                              : LOG_LOCAL0 + cfg->log_facility * 8);
			lg->to_syslog = true;
			break;
		case LOG_DEST_TOPIC:
			lg->to_topic = true;
			break;
		case LOG_DEST_NONE:
			break;
		}
	}
	if (rc != ST_OK)
		log_close(lg);
	return rc;
}

void log_close(struct log *lg)
{
	if (lg->file_fd >= 0)
		close(lg->file_fd);
	if (lg->to_syslog)
		closelog();
	lg->file_fd = -1;
	lg->fd_count = 0;
	lg->to_syslog = false;
	lg->to_topic = false;
	lg->types = 0;
}

int log_reopen(struct log *lg, const struct config *cfg)
{
	int fd;

	if (lg->file_fd < 0)
		return ST_OK;
	for (unsigned i = 0; i < cfg->log_dest_count; i++) {
		if (cfg->log_dests[i].kind != LOG_DEST_FILE)
			continue;
		fd = open(cfg->log_dests[i].path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return ST_ERR_SYS;
		/* dup2 replaces the descriptor atomically: a line written meanwhile by another
		 * worker goes whole to the old file or whole to the new one. */
		if (dup3(fd, lg->file_fd, O_CLOEXEC) < 0) {
			int err = errno;

			close(fd);
			errno = err;
			return ST_ERR_SYS;
		}
		close(fd);
		return ST_OK;
	}
	return ST_OK;
}

/* The format is the user's log_timestamp_format, as Mosquitto passes it to strftime(3). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static size_t format_user_time(char *buf, size_t size, const char *fmt, const struct tm *tm)
{
	return strftime(buf, size, fmt, tm);
}
#pragma GCC diagnostic pop

/* Writes the stamp and ": " into buf; returns the bytes written (0 without a stamp). */
static size_t format_stamp(const struct log *lg, char *buf, size_t size)
{
	time_t now = time(NULL);
	size_t n;

	if (!lg->timestamp)
		return 0;
	if (lg->timestamp_format[0] != '\0') {
		struct tm tm;

		n = 0;
		if (localtime_r(&now, &tm) != NULL)
			n = format_user_time(buf, size, lg->timestamp_format, &tm);
		if (n == 0) /* Mosquitto's wording when the time cannot be formatted */
			n = (size_t)snprintf(buf, size, "Time error");
	} else {
		n = (size_t)snprintf(buf, size, "%" PRId64, (int64_t)now);
	}
	if (n + 2 < size) {
		buf[n++] = ':';
		buf[n++] = ' ';
	}
	return n;
}

/* Bytes escaped: controls (C0, DEL), the backslash, and 0xc2 when a C1 control follows. */
static bool escaped(const uint8_t *s, size_t i, size_t len)
{
	uint8_t b = s[i];

	if (b < 0x20 || b == 0x7f || b == '\\')
		return true;
	/* U+0080..U+009F, the C1 controls: terminals act on some (U+009B is CSI). */
	return b == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f;
}

/* The escape of b at d (d has LOG_ESCAPE_MAX bytes); returns its length. */
static size_t escape_byte(char *d, uint8_t b)
{
	static const char hex[] = "0123456789abcdef";
	char short_form = b == '\\'   ? '\\'
	                  : b == '\n' ? 'n'
	                  : b == '\r' ? 'r'
	                  : b == '\t' ? 't'
	                              : 0;

	d[0] = '\\';
	if (short_form) {
		d[1] = short_form;
		return 2;
	}
	d[1] = 'x';
	d[2] = hex[b >> 4];
	d[3] = hex[b & 15];
	return 4;
}

size_t log_escape(char *dst, size_t cap, const void *src, size_t len, size_t *consumed)
{
	const uint8_t *s = src;
	size_t i = 0, o = 0;

	while (i < len) {
		char esc[2 * LOG_ESCAPE_MAX];
		size_t n = 0, took = 1;

		if (!escaped(s, i, len)) {
			if (o == cap)
				break;
			dst[o++] = (char)s[i++];
			continue;
		}
		n = escape_byte(esc, s[i]);
		if (s[i] == 0xc2) {
			/* A C1 control: the continuation byte goes with it. */
			n += escape_byte(esc + n, s[i + 1]);
			took = 2;
		}
		if (cap - o < n)
			break;
		memcpy(dst + o, esc, n);
		o += n;
		i += took;
	}
	*consumed = i;
	return o;
}

/* One write(2) normally; a short write (a full pipe, a signal) is resumed a bounded number of
 * times. Errors are dropped: there is nowhere left to report a failing log. */
static void write_line(int fd, const char *p, size_t len)
{
	for (int tries = 0; tries < LOG_WRITE_TRIES && len > 0; tries++) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void log_vmsg(struct log *lg, uint32_t type, const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX], line[LOG_LINE_MAX];
	size_t len, room, raw_len, used;
	int n;

	if (!log_enabled(lg, type))
		return;
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	raw_len = n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
	/* One byte is kept back for the newline, which replaces the terminating NUL, and room
	 * for the tag that marks a cut line. */
	room = sizeof(line) - 1 - strlen(LOG_TRUNCATED_TAG);
	len = format_stamp(lg, line, room);
	len += log_escape(line + len, room - len, raw, raw_len, &used);
	if (used < raw_len || (n > 0 && (size_t)n > raw_len)) {
		memcpy(line + len, LOG_TRUNCATED_TAG, strlen(LOG_TRUNCATED_TAG));
		len += strlen(LOG_TRUNCATED_TAG);
	}
	line[len] = '\n';
	for (unsigned i = 0; i < lg->fd_count; i++)
		write_line(lg->fds[i], line, len + 1);
	line[len] = '\0';
	if (lg->to_syslog)
		syslog(syslog_priority(type), "%s", line);
	/* Mosquitto never publishes debug lines: they would feed on themselves. */
	if (lg->to_topic && lg->topic_fn != NULL && (type & LOG_T_DEBUG) == 0)
		lg->topic_fn(lg->topic_ctx, type, line, (unsigned)len);
}

void log_msg(struct log *lg, uint32_t type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lg, type, fmt, ap);
	va_end(ap);
}
