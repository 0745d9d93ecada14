/*
 * Logging to the destinations of the configuration (stderr, stdout, a file, syslog). One
 * struct log is owned by the broker and borrowed by its workers; each line leaves in one
 * write(2), so lines from several workers never interleave. Nothing on the per-message path
 * logs unless its log type is enabled, and the check is one bit test.
 */
#ifndef STARLING_LOG_H
#define STARLING_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Filled by log_open() and read-only afterwards, so workers may log through it concurrently. */
struct log {
	uint32_t types;                /* enum config_log_type bits enabled */
	int fds[CONFIG_LOG_DESTS_MAX]; /* file descriptors of stdout/stderr/file destinations */
	unsigned fd_count;             /* entries in fds */
	int file_fd;                   /* the `log_dest file` descriptor opened here, or -1 */
	bool to_syslog;                /* a syslog destination is configured */
	bool to_topic;                 /* a topic destination is configured */
	bool timestamp;                /* prefix lines with a time stamp */
	bool connection_messages;      /* log clients' connects and disconnects (Mosquitto's) */
	char timestamp_format[CONFIG_LOG_TIMESTAMP_FMT_SIZE]; /* strftime(3); empty: Unix time */
	/* Called for LOG_DEST_TOPIC lines (never for debug, as Mosquitto); NULL if none. Set by the
	 * broker after log_open; may be called from any thread that logs. line is borrowed, not
	 * NUL-terminated, without the newline. */
	void (*topic_fn)(void *ctx, uint32_t type, const char *line, unsigned len);
	void *topic_ctx; /* first argument of topic_fn */
};

/*
 * Opens the configured destinations (cfg is borrowed; nothing of it is kept). Returns ST_OK or
 * ST_ERR_SYS (message on stderr, nothing left open).
 */
int log_open(struct log *lg, const struct config *cfg);
/* Closes what log_open opened. */
void log_close(struct log *lg);

/*
 * Reopens the `log_dest file` (log rotation on SIGHUP): the path is opened anew and put in
 * place of the old descriptor with dup2(2), so every copy of this struct log (one per worker)
 * writes to the new file from then on without being told. Returns ST_OK (also when there is
 * no file destination) or ST_ERR_SYS with errno set, the old file still in use.
 */
int log_reopen(struct log *lg, const struct config *cfg);

static inline bool log_enabled(const struct log *lg, uint32_t type)
{
	return (lg->types & type) != 0;
}

/* Whether a client's "New client connected ..." and "Client ... disconnected." lines are
 * logged: `connection_messages` and the notice type both on. */
static inline bool log_connections(const struct log *lg)
{
	return lg->connection_messages && log_enabled(lg, LOG_T_NOTICE);
}

/* The longest escape of one byte (backslash, x, two hex digits). */
#define LOG_ESCAPE_MAX 4

/*
 * Escapes src[0..len) into dst (at most cap bytes, not NUL-terminated) so that it holds no
 * control character and reads back unambiguously: a backslash is doubled; newline, carriage
 * return and tab become backslash n, r, t; every other byte below 0x20, 0x7f, and both bytes
 * of a C1 control in UTF-8 (U+0080..U+009F: c2 80..c2 9f) become backslash x and two
 * lowercase hex digits. Other bytes pass unchanged. An escape is never split: when dst fills
 * up, escaping stops before the byte (or C1 pair) that does not fit. Returns the bytes
 * written; *consumed is how many bytes of src were escaped (len unless dst filled up).
 */
size_t log_escape(char *dst, size_t cap, const void *src, size_t len, size_t *consumed);

/* Formats "<unix time>: <message>\n" and writes it to every destination if type is enabled. */
void log_msg(struct log *lg, uint32_t type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void log_vmsg(struct log *lg, uint32_t type, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

#endif
