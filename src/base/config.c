/*
 * starlingd's configuration: Mosquitto 2.0's file format and command line, parsed into a plain
 * struct config that the broker reads at start-up.
 *
 * A file is read whole (at most CONFIG_FILE_MAX_BYTES) and split into lines; each line is
 * "name value..." with blanks around and between the words, or blank, or a comment ('#' as
 * its first non-blank character). Options are looked up in one table; each entry names its
 * parser and, for the plain integer and boolean options, the field, range and special value.
 * We are stricter than Mosquitto, which uses atoi() and ignores extra words: a value with
 * trailing garbage, out of range, or followed by another word is an error naming the file and
 * line, so a typo never silently becomes a default. Options Mosquitto has and Starling does
 * not implement yet are errors saying so, rather than being accepted and ignored; those it
 * cannot honour, deprecated ones and Mosquitto's other names are in config_compat.c, and
 * include_dir in config_include.c.
 *
 * Listener rules, checked against mosquitto 2.0.11 itself:
 * - `listener PORT [ADDRESS]` adds a listener (all interfaces without an address).
 * - `port` and `bind_address` configure the "default listener"; if either is given it is
 *   opened on bind_address (all interfaces if unset) at port (1883 if unset), in addition to
 *   the `listener`s.
 * - With neither, the broker is in local-only mode: it listens on 127.0.0.1 only, on each -p
 *   port (1883 without -p). If the file configures any listener, -p is ignored (mosquitto(8):
 *   "If both -p is used and a listener is defined in a configuration file, then the -p options
 *   are IGNORED"); cmd_ports_ignored tells the caller to warn about it.
 * - allow_anonymous defaults to true in local-only mode and false otherwise. Mosquitto 2.0.11
 *   also forces it to true in local-only mode when the file says false; Starling honours an
 *   explicit value, the stricter reading.
 * - The certificate-based TLS options (certfile, keyfile, cafile, capath, crlfile, ciphers,
 *   ciphers_tls1.3, tls_version, require_certificate, use_identity_as_username,
 *   use_subject_as_username) belong to the last `listener` line; given before any, they
 *   configure the default listener and bring it into being, as `port` does. So does
 *   `protocol mqtt|websockets`.
 * Port 0 (an ephemeral port) is accepted everywhere as a Starling extension for tests;
 * Mosquitto rejects it. The other per-listener options (mount_point, max_connections...) are
 * config_listener.c's.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_cluster.h"
#include "config_compat.h"
#include "config_include.h"
#include "config_listener.h"
#include "readfile.h"
#include "starling/error.h"

#define CONFIG_FILE_MAX_BYTES (1u << 20) /* a config file is a few KiB; this bounds the read */
#define CONFIG_LINE_MAX       8192       /* longer than "log_dest file " + PATH_MAX */
#define CONFIG_WORDS_MAX      16         /* values after the option name (bridge addresses) */
#define MQTT_PAYLOAD_MAX      268435455  /* largest Remaining Length (MQTT 5.0 1.5.5) */
#define MQTT_PACKET_MAX       (MQTT_PAYLOAD_MAX + 5) /* plus fixed header byte and 4-byte length */

static const char config_usage[] =
        "usage: starlingd [-c FILE] [-p PORT] [-t THREADS] [-v] [-d] [-h]";

/* Where a line came from, and where its error goes. */
struct where {
	const char *path; /* file name as given, for messages */
	unsigned line;    /* 1-based line number */
	char *err;        /* caller's error buffer */
	size_t errlen;    /* its size */
};

/* One line split into words; the pointers go into a local copy of the line. */
struct words {
	const char *name;                /* the option name */
	const char *v[CONFIG_WORDS_MAX]; /* the values */
	unsigned n;                      /* entries in v */
	const char *rest;                /* everything after the name, outer blanks trimmed */
};

struct option;
typedef int (*option_fn)(struct config *cfg, const struct option *o, const struct words *w,
                         const struct where *at);

/* An entry of the option table. */
struct option {
	const char *name; /* as in mosquitto.conf(5) */
	option_fn parse;  /* its parser */
	size_t off;       /* offsetof() the field, for the generic integer and boolean parsers */
	size_t size;      /* sizeof the field: 2 or 4 for integers */
	long long min;    /* smallest accepted integer */
	long long max;    /* largest accepted integer */
	long long from;   /* an accepted value stored as `to` (Mosquitto's "0 means no limit") */
	long long to;     /* what `from` is stored as; from == to: no mapping */
};

__attribute__((format(printf, 2, 3))) static int fail(const struct where *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (at->errlen == 0)
		return ST_ERR_CONFIG;
	n = snprintf(at->err, at->errlen, "%s:%u: ", at->path, at->line);
	if (n < 0 || (size_t)n >= at->errlen)
		return ST_ERR_CONFIG;
	va_start(ap, fmt);
	vsnprintf(at->err + n, at->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ST_ERR_CONFIG;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/*
 * Decimal integer, optional '-', nothing else: no '+', no hex, no blanks, no trailing bytes.
 * Returns 0, -1 if it is not a number, -2 if it does not fit in a long long.
 */
static int parse_ll(const char *s, long long *out)
{
	bool neg = *s == '-';
	unsigned long long v = 0, lim;
	const char *p = s + neg;

	if (*p == '\0')
		return -1;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; *p != '\0'; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return -1;
		d = (unsigned)(*p - '0');
		if (v > (lim - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	/* LLONG_MIN's magnitude does not fit a long long, so negatives are built from v - 1. */
	*out = !neg ? (long long)v : v == 0 ? 0 : -(long long)(v - 1) - 1;
	return 0;
}

/* Parses an integer value of option `name` within [min, max]. */
static int parse_range(const char *name, const char *s, long long min, long long max,
                       long long *out, const struct where *at)
{
	int rc = parse_ll(s, out);

	if (rc == -1)
		return fail(at, "%s: \"%s\" is not a decimal integer", name, s);
	if (rc == -2 || *out < min || *out > max)
		return fail(at, "%s: %s is out of range (%lld..%lld)", name, s, min, max);
	return ST_OK;
}

/* Mosquitto's booleans are the words true and false, nothing else. */
static int parse_bool(const char *name, const char *s, bool *out, const struct where *at)
{
	if (strcmp(s, "true") == 0)
		*out = true;
	else if (strcmp(s, "false") == 0)
		*out = false;
	else
		return fail(at, "%s: expected true or false, got \"%s\"", name, s);
	return ST_OK;
}

static int want_one(const struct words *w, const struct where *at)
{
	if (w->n == 0)
		return fail(at, "%s: missing value", w->name);
	if (w->n > 1)
		return fail(at, "%s: unexpected extra value \"%s\"", w->name, w->v[1]);
	return ST_OK;
}

/* Copies a value into a fixed field, refusing what does not fit rather than truncating. */
static int copy_value(const char *name, char *dst, size_t size, const char *s,
                      const struct where *at)
{
	size_t len = strlen(s);

	if (len == 0)
		return fail(at, "%s: missing value", name);
	if (len >= size)
		return fail(at, "%s: value longer than %zu bytes", name, size - 1);
	memcpy(dst, s, len + 1);
	return ST_OK;
}

static int opt_int(struct config *cfg, const struct option *o, const struct words *w,
                   const struct where *at)
{
	long long v;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_range(o->name, w->v[0], o->min, o->max, &v, at);
	if (rc != ST_OK)
		return rc;
	if (v == o->from)
		v = o->to;
	if (o->size == sizeof(uint16_t))
		*(uint16_t *)(void *)((char *)cfg + o->off) = (uint16_t)v;
	else
		*(uint32_t *)(void *)((char *)cfg + o->off) = (uint32_t)v;
	return ST_OK;
}

/* max_inflight_messages: the outbound window and, as in Mosquitto, the Receive Maximum. */
static int opt_inflight(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	int rc = opt_int(cfg, o, w, at);

	if (rc == ST_OK)
		cfg->receive_maximum = cfg->max_inflight_messages;
	return rc;
}

static int opt_bool(struct config *cfg, const struct option *o, const struct words *w,
                    const struct where *at)
{
	int rc = want_one(w, at);

	if (rc != ST_OK)
		return rc;
	return parse_bool(o->name, w->v[0], (bool *)(void *)((char *)cfg + o->off), at);
}

/*
 * The security options a line sets: with per_listener_settings, those of the last `listener`
 * above it (the default listener's before any), else the broker-wide ones. NULL: broker-wide.
 */
static struct config_auth *auth_target(struct config *cfg)
{
	if (!cfg->per_listener_settings || cfg->listener_count == 0)
		return NULL;
	return &cfg->listeners[cfg->listener_count - 1].auth;
}

static int opt_allow_anonymous(struct config *cfg, const struct option *o, const struct words *w,
                               const struct where *at)
{
	struct config_auth *a = auth_target(cfg);
	bool v = false;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_bool(o->name, w->v[0], &v, at);
	if (rc != ST_OK)
		return rc;
	cfg->security_seen = true;
	if (a) {
		a->allow_anonymous = v;
		a->allow_anonymous_set = true;
	} else {
		cfg->allow_anonymous = v;
		cfg->allow_anonymous_set = true;
	}
	return ST_OK;
}

/* password_file and acl_file: a path, the rest of the line (it may hold blanks). */
static int opt_auth_file(struct config *cfg, const struct option *o, const struct words *w,
                         const struct where *at)
{
	struct config_auth *a = auth_target(cfg);
	bool pw = strcmp(o->name, "password_file") == 0;
	char *dst = a ? (pw ? a->password_file : a->acl_file)
	              : (pw ? cfg->password_file : cfg->acl_file);

	cfg->security_seen = true;
	return copy_value(o->name, dst, PATH_MAX, w->rest, at);
}

/* Mosquitto: it changes what the security options after it mean, so it comes first. */
static int opt_per_listener(struct config *cfg, const struct option *o, const struct words *w,
                            const struct where *at)
{
	bool v = false;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_bool(o->name, w->v[0], &v, at);
	if (rc != ST_OK)
		return rc;
	if (v != cfg->per_listener_settings && (cfg->security_seen || cfg->listener_count > 0))
		return fail(at, "%s must come before any listener and security option", o->name);
	cfg->per_listener_settings = v;
	return ST_OK;
}

/*
 * Two listeners whose sockets would collide at bind(): the same port, and the same address or
 * either on every address (no address given). Said at the line, not as a bind error at start.
 */
static bool same_socket(uint16_t port_a, const char *bind_a, uint16_t port_b, const char *bind_b)
{
	return port_a != 0 && port_a == port_b &&
	       (!bind_a[0] || !bind_b[0] || strcmp(bind_a, bind_b) == 0);
}
/* Listener slots still free once the default listener, if configured, has its own. */
static unsigned listener_room(const struct config *cfg)
{
	unsigned used = cfg->listener_count + (cfg->default_listener_set ? 1u : 0u);

	return used >= CONFIG_LISTENERS_MAX ? 0 : CONFIG_LISTENERS_MAX - used;
}

static int opt_listener(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	struct config_listener l;
	long long port;
	int rc;

	if (w->n == 0)
		return fail(at, "%s: missing port", o->name);
	if (w->n > 2)
		return fail(at, "%s: unexpected extra value \"%s\"", o->name, w->v[2]);
	rc = parse_range(o->name, w->v[0], 0, 65535, &port, at);
	if (rc != ST_OK)
		return rc;
	memset(&l, 0, sizeof(l));
	l.port = (uint16_t)port;
	if (w->n == 2) {
		/* Mosquitto takes a path here for a Unix socket listener. */
		if (strchr(w->v[1], '/') != NULL)
			return fail(at, "%s: Unix socket listeners are not supported", o->name);
		rc = copy_value(o->name, l.bind, sizeof(l.bind), w->v[1], at);
		if (rc != ST_OK)
			return rc;
	}
	if (listener_room(cfg) == 0)
		return fail(at, "%s: more than %d listeners", o->name, CONFIG_LISTENERS_MAX);
	for (unsigned i = 0; i < cfg->listener_count; i++) {
		const struct config_listener *p = &cfg->listeners[i];

		if (l.port != 0 && p->port == l.port && strcmp(p->bind, l.bind) == 0)
			return fail(at, "%s: duplicate listener on port %u", o->name, l.port);
	}
	for (unsigned i = 0; i < cfg->metrics_count; i++)
		if (same_socket(l.port, l.bind, cfg->metrics[i].port, cfg->metrics[i].bind))
			return fail(at, "%s: port %u is a metrics_listener's", o->name, l.port);
	cfg->listeners[cfg->listener_count++] = l;
	return ST_OK;
}

/*
 * `metrics_listener PORT [ADDRESS]`: an HTTP listener for Prometheus, beside the MQTT ones (it
 * is not a `listener`: it does not end local-only mode nor take the TLS and security options
 * that follow it). Repeatable, as `listener` is: one on loopback and one on a private
 * interface, say.
 */
static int opt_metrics_listener(struct config *cfg, const struct option *o, const struct words *w,
                                const struct where *at)
{
	struct config_metrics_listener l;
	long long port;
	int rc;

	if (w->n == 0)
		return fail(at, "%s: missing port", o->name);
	if (w->n > 2)
		return fail(at, "%s: unexpected extra value \"%s\"", o->name, w->v[2]);
	rc = parse_range(o->name, w->v[0], 0, 65535, &port, at);
	if (rc != ST_OK)
		return rc;
	memset(&l, 0, sizeof(l));
	l.port = (uint16_t)port;
	if (w->n == 2) {
		if (strchr(w->v[1], '/') != NULL)
			return fail(at, "%s: Unix socket listeners are not supported", o->name);
		rc = copy_value(o->name, l.bind, sizeof(l.bind), w->v[1], at);
		if (rc != ST_OK)
			return rc;
	}
	if (cfg->metrics_count == CONFIG_METRICS_MAX)
		return fail(at, "%s: more than %d metrics listeners", o->name, CONFIG_METRICS_MAX);
	for (unsigned i = 0; i < cfg->metrics_count; i++)
		if (l.port != 0 && cfg->metrics[i].port == l.port &&
		    strcmp(cfg->metrics[i].bind, l.bind) == 0)
			return fail(at, "%s: duplicate metrics listener on port %u", o->name,
			            l.port);
	for (unsigned i = 0; i < cfg->listener_count; i++)
		if (same_socket(l.port, l.bind, cfg->listeners[i].port, cfg->listeners[i].bind))
			return fail(at, "%s: port %u is an MQTT listener's", o->name, l.port);
	cfg->metrics[cfg->metrics_count++] = l;
	return ST_OK;
}

/* `port` and `bind_address` both configure the default listener, which then takes a slot. */
static int claim_default_listener(struct config *cfg, const char *name, const struct where *at)
{
	if (!cfg->default_listener_set && listener_room(cfg) == 0)
		return fail(at, "%s: more than %d listeners", name, CONFIG_LISTENERS_MAX);
	cfg->default_listener_set = true;
	return ST_OK;
}

static int opt_port(struct config *cfg, const struct option *o, const struct words *w,
                    const struct where *at)
{
	long long port;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_range(o->name, w->v[0], 0, 65535, &port, at);
	if (rc == ST_OK)
		rc = claim_default_listener(cfg, o->name, at);
	if (rc == ST_OK)
		cfg->default_port = (uint16_t)port;
	return rc;
}

static int opt_bind_address(struct config *cfg, const struct option *o, const struct words *w,
                            const struct where *at)
{
	char tmp[sizeof(cfg->bind_address)];
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = copy_value(o->name, tmp, sizeof(tmp), w->v[0], at);
	if (rc == ST_OK)
		rc = claim_default_listener(cfg, o->name, at);
	if (rc == ST_OK)
		memcpy(cfg->bind_address, tmp, sizeof(tmp));
	return rc;
}

static const struct {
	const char *name; /* mosquitto.conf(5) spelling */
	uint32_t bits;    /* enum config_log_type */
} log_type_names[] = {
        {"error", LOG_T_ERROR},
        {"warning", LOG_T_WARNING},
        {"notice", LOG_T_NOTICE},
        {"information", LOG_T_INFORMATION},
        {"debug", LOG_T_DEBUG},
        {"subscribe", LOG_T_SUBSCRIBE},
        {"unsubscribe", LOG_T_UNSUBSCRIBE},
        {"websockets", LOG_T_WEBSOCKETS},
        {"all", LOG_T_ALL},
        {"none", 0},
};

/*
 * log_type lines add up, and the first one replaces the default set. "none" clears what came
 * before it, as Mosquitto assigns rather than ors it. Mosquitto reads one type per line; more
 * than one is accepted here instead of silently ignoring the rest.
 */
static int opt_log_type(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	uint32_t types = cfg->log_types_set ? cfg->log_types : 0;

	if (w->n == 0)
		return fail(at, "%s: missing value", o->name);
	for (unsigned i = 0; i < w->n; i++) {
		size_t k, count = sizeof(log_type_names) / sizeof(log_type_names[0]);

		for (k = 0; k < count; k++)
			if (strcmp(w->v[i], log_type_names[k].name) == 0)
				break;
		if (k == count)
			return fail(at, "%s: unknown type \"%s\"", o->name, w->v[i]);
		if (log_type_names[k].bits == 0)
			types = 0;
		else
			types |= log_type_names[k].bits;
	}
	cfg->log_types = types;
	cfg->log_types_set = true;
	return ST_OK;
}

static const char *const log_dest_names[] = {
        [LOG_DEST_STDERR] = "stderr", [LOG_DEST_STDOUT] = "stdout", [LOG_DEST_FILE] = "file",
        [LOG_DEST_SYSLOG] = "syslog", [LOG_DEST_TOPIC] = "topic",   [LOG_DEST_NONE] = "none",
};

/* Adds one destination: kinds merge as in Mosquitto's bit mask; "none" stands alone. */
static int add_log_dest(struct config *cfg, enum config_log_dest_kind kind, const char *path,
                        const struct where *at)
{
	struct config_log_dest *d;

	if (kind == LOG_DEST_NONE ||
	    (cfg->log_dest_count == 1 && cfg->log_dests[0].kind == LOG_DEST_NONE))
		cfg->log_dest_count = 0;
	for (unsigned i = 0; i < cfg->log_dest_count; i++) {
		if (cfg->log_dests[i].kind != kind)
			continue;
		if (kind == LOG_DEST_FILE) /* Mosquitto: "Only a single file destination" */
			return fail(at, "log_dest: only one file destination may be given");
		return ST_OK;
	}
	/* Distinct kinds never exceed the array, so this is a programmer error if it fires. */
	if (cfg->log_dest_count >= CONFIG_LOG_DESTS_MAX)
		return fail(at, "log_dest: too many destinations");
	d = &cfg->log_dests[cfg->log_dest_count];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	if (kind == LOG_DEST_FILE)
		memcpy(d->path, path, strlen(path) + 1);
	cfg->log_dest_count++;
	return ST_OK;
}

static int opt_log_dest(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	char path[PATH_MAX] = "";
	size_t kind, count = sizeof(log_dest_names) / sizeof(log_dest_names[0]);

	if (w->n == 0)
		return fail(at, "%s: missing value", o->name);
	for (kind = 0; kind < count; kind++)
		if (strcmp(w->v[0], log_dest_names[kind]) == 0)
			break;
	if (kind == count && strcmp(w->v[0], "dlt") == 0)
		return fail(at,
		            "%s dlt: the automotive Diagnostic Log and Trace daemon is not "
		            "supported: use syslog, file or topic",
		            o->name);
	if (kind == count)
		return fail(at, "%s: unknown destination \"%s\"", o->name, w->v[0]);
	if (kind == LOG_DEST_FILE) {
		/* The path is the rest of the line, so it may hold blanks (as in Mosquitto). */
		const char *p = w->rest + strlen("file");
		int rc;

		while (is_blank(*p))
			p++;
		if (*p == '\0')
			return fail(at, "%s: file: missing path", o->name);
		rc = copy_value("log_dest file", path, sizeof(path), p, at);
		if (rc != ST_OK)
			return rc;
	} else if (w->n > 1) {
		return fail(at, "%s: unexpected extra value \"%s\"", o->name, w->v[1]);
	}
	return add_log_dest(cfg, (enum config_log_dest_kind)kind, path, at);
}

static int opt_pid_file(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	return copy_value(o->name, cfg->pid_file, sizeof(cfg->pid_file), w->rest, at);
}

/* The user must exist when the file is read: a typo is an error here, not at the drop. */
static int opt_user(struct config *cfg, const struct option *o, const struct words *w,
                    const struct where *at)
{
	char buf[16384];
	struct passwd pw, *res = NULL;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = copy_value(o->name, cfg->user, sizeof(cfg->user), w->v[0], at);
	if (rc != ST_OK)
		return rc;
	rc = getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &res);
	if (!res && (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM))
		return fail(at, "%s: no such user \"%s\"", o->name, cfg->user);
	if (!res)
		return fail(at, "%s: cannot look up \"%s\": %s", o->name, cfg->user, strerror(rc));
	return ST_OK;
}

static int opt_log_timestamp_format(struct config *cfg, const struct option *o,
                                    const struct words *w, const struct where *at)
{
	return copy_value(o->name, cfg->log_timestamp_format, sizeof(cfg->log_timestamp_format),
	                  w->rest, at);
}

static int opt_persistence_location(struct config *cfg, const struct option *o,
                                    const struct words *w, const struct where *at)
{
	return copy_value(o->name, cfg->persistence_location, sizeof(cfg->persistence_location),
	                  w->rest, at);
}

/* A name, not a path: the segments are NAME.<worker>.<seq> next to it in the directory. */
static int opt_persistence_file(struct config *cfg, const struct option *o, const struct words *w,
                                const struct where *at)
{
	int rc = copy_value(o->name, cfg->persistence_file, sizeof(cfg->persistence_file) - 24,
	                    w->rest, at);

	if (rc == ST_OK &&
	    (strchr(cfg->persistence_file, '/') || strcmp(cfg->persistence_file, ".") == 0 ||
	     strcmp(cfg->persistence_file, "..") == 0))
		return fail(at,
		            "%s: a file name without '/' is expected (the directory is "
		            "persistence_location)",
		            o->name);
	return rc;
}

/* always: an acknowledgement leaves only once what it depends on is synced; never: at once. */
static int opt_persistence_sync(struct config *cfg, const struct option *o, const struct words *w,
                                const struct where *at)
{
	int rc = want_one(w, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(w->v[0], "always") == 0)
		cfg->persistence_sync = true;
	else if (strcmp(w->v[0], "never") == 0)
		cfg->persistence_sync = false;
	else
		return fail(at, "%s: 'always' or 'never' expected, not '%s'", o->name, w->v[0]);
	return ST_OK;
}

/* auto: io_uring where it works, else epoll; io_uring or epoll: that one or no start. */
static int opt_event_backend(struct config *cfg, const struct option *o, const struct words *w,
                             const struct where *at)
{
	int rc = want_one(w, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(w->v[0], "auto") == 0)
		cfg->event_backend = CONFIG_BACKEND_AUTO;
	else if (strcmp(w->v[0], "io_uring") == 0)
		cfg->event_backend = CONFIG_BACKEND_IO_URING;
	else if (strcmp(w->v[0], "epoll") == 0)
		cfg->event_backend = CONFIG_BACKEND_EPOLL;
	else
		return fail(at, "%s: 'auto', 'io_uring' or 'epoll' expected, not '%s'", o->name,
		            w->v[0]);
	return ST_OK;
}

/* Bytes of output all connections may hold; 0 asks for the default (a share of the RAM). */
static int opt_output_memory(struct config *cfg, const struct option *o, const struct words *w,
                             const struct where *at)
{
	long long v;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_range(o->name, w->v[0], 0, LLONG_MAX, &v, at);
	if (rc == ST_OK)
		cfg->max_output_memory = (uint64_t)v;
	return rc;
}

/* Entries of each channel between two workers: a power of two (0: chosen by worker count). */
static int opt_channel_size(struct config *cfg, const struct option *o, const struct words *w,
                            const struct where *at)
{
	long long v;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_range(o->name, w->v[0], 0, 1 << 20, &v, at);
	if (rc != ST_OK)
		return rc;
	if (v != 0 && (v < 2 || (v & (v - 1)) != 0))
		return fail(at, "%s: %lld is not a power of two from 2 to 1048576", o->name, v);
	cfg->worker_channel_size = (uint32_t)v;
	return ST_OK;
}

/*
 * The listener a per-listener TLS option configures: the last `listener` line, or before any,
 * the default listener (Mosquitto's rule), which the option then brings into being as `port`
 * does. NULL when no slot is left (err filled).
 */
static struct config_tls *tls_target(struct config *cfg, const char *name, const struct where *at)
{
	if (cfg->listener_count > 0)
		return &cfg->listeners[cfg->listener_count - 1].tls;
	if (claim_default_listener(cfg, name, at) != ST_OK)
		return NULL;
	return &cfg->default_tls;
}

/* A path option (cafile, certfile...): the rest of the line, so it may hold blanks. */
static int opt_tls_path(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	char tmp[CONFIG_TLS_PATH_MAX];
	struct config_tls *t;
	int rc = copy_value(o->name, tmp, sizeof(tmp), w->rest, at);

	if (rc != ST_OK)
		return rc;
	if (!(t = tls_target(cfg, o->name, at)))
		return ST_ERR_CONFIG;
	memcpy((char *)t + o->off, tmp, strlen(tmp) + 1);
	return ST_OK;
}

static int opt_tls_ciphers(struct config *cfg, const struct option *o, const struct words *w,
                           const struct where *at)
{
	char tmp[CONFIG_TLS_CIPHERS_MAX];
	struct config_tls *t;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = copy_value(o->name, tmp, sizeof(tmp), w->v[0], at);
	if (rc != ST_OK)
		return rc;
	if (!(t = tls_target(cfg, o->name, at)))
		return ST_ERR_CONFIG;
	memcpy((char *)t + o->off, tmp, strlen(tmp) + 1);
	return ST_OK;
}

static int opt_tls_bool(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	struct config_tls *t;
	bool v = false;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_bool(o->name, w->v[0], &v, at);
	if (rc != ST_OK)
		return rc;
	if (!(t = tls_target(cfg, o->name, at)))
		return ST_ERR_CONFIG;
	*(bool *)(void *)((char *)t + o->off) = v;
	return ST_OK;
}

/*
 * The lowest version accepted (Mosquitto 2; 1.6 took it as the only one). tlsv1.1, which
 * Mosquitto still accepts, is refused: OpenSSL 3's default security level refuses TLS 1.1
 * handshakes anyway, so the option would promise what never works.
 */
static int opt_tls_version(struct config *cfg, const struct option *o, const struct words *w,
                           const struct where *at)
{
	struct config_tls *t;
	uint8_t v;
	int rc = want_one(w, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(w->v[0], "tlsv1.3") == 0)
		v = CONFIG_TLS_V13;
	else if (strcmp(w->v[0], "tlsv1.2") == 0)
		v = CONFIG_TLS_V12;
	else if (strcmp(w->v[0], "tlsv1.1") == 0)
		return fail(at, "%s: tlsv1.1 is not supported (OpenSSL 3 refuses it by default)",
		            o->name);
	else
		return fail(at, "%s: expected tlsv1.2 or tlsv1.3, got \"%s\"", o->name, w->v[0]);
	if (!(t = tls_target(cfg, o->name, at)))
		return ST_ERR_CONFIG;
	t->version = v;
	return ST_OK;
}

/* `protocol mqtt|websockets`, for the listener above (before any: the default listener). */
static int opt_protocol(struct config *cfg, const struct option *o, const struct words *w,
                        const struct where *at)
{
	uint8_t v;
	int rc = want_one(w, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(w->v[0], "mqtt") == 0)
		v = CONFIG_PROTO_MQTT;
	else if (strcmp(w->v[0], "websockets") == 0)
		v = CONFIG_PROTO_WEBSOCKETS;
	else
		return fail(at, "%s: expected mqtt or websockets, got \"%s\"", o->name, w->v[0]);
	if (cfg->listener_count > 0) {
		cfg->listeners[cfg->listener_count - 1].protocol = v;
		return ST_OK;
	}
	rc = claim_default_listener(cfg, o->name, at);
	if (rc == ST_OK)
		cfg->default_protocol = v;
	return rc;
}

/* `log_facility N`: syslog's local0..local7 instead of daemon (mosquitto.conf(5)). */
static int opt_log_facility(struct config *cfg, const struct option *o, const struct words *w,
                            const struct where *at)
{
	long long v;
	int rc = want_one(w, at);

	if (rc == ST_OK)
		rc = parse_range(o->name, w->v[0], 0, 7, &v, at);
	if (rc == ST_OK)
		cfg->log_facility = (int8_t)v;
	return rc;
}

/* The directory is the rest of the line, so it may hold blanks; config_include.c reads it. */
static int opt_include_dir(struct config *cfg, const struct option *o, const struct words *w,
                           const struct where *at)
{
	if (w->rest[0] == '\0')
		return fail(at, "%s: missing value", o->name);
	return config_include_dir(cfg, w->rest, at->path, at->line, at->err, at->errlen);
}

/* The per-listener options of config_listener.c. */
static int opt_listener_more(struct config *cfg, const struct option *o, const struct words *w,
                             const struct where *at)
{
	const struct config_line ln = {.name = o->name,
	                               .v = w->v,
	                               .n = w->n,
	                               .rest = w->rest,
	                               .path = at->path,
	                               .line = at->line,
	                               .err = at->err,
	                               .errlen = at->errlen};

	return config_listener_option(cfg, &ln);
}

#define INT_OPT(n, field, lo, hi, f, t)                                                            \
	{                                                                                          \
		.name = #n, .parse = opt_int, .off = offsetof(struct config, field),               \
		.size = sizeof(((struct config *)0)->field), .min = (lo), .max = (hi),             \
		.from = (f), .to = (t)                                                             \
	}
#define BOOL_OPT(n, field, fn)                                                                     \
	{                                                                                          \
		.name = #n, .parse = fn, .off = offsetof(struct config, field)                     \
	}
#define TLS_OPT(n, field, fn)                                                                      \
	{                                                                                          \
		.name = n, .parse = fn, .off = offsetof(struct config_tls, field)                  \
	}
#define FN_OPT(n, fn)                                                                              \
	{                                                                                          \
		.name = #n, .parse = fn                                                            \
	}

static const struct option options[] = {
        FN_OPT(listener, opt_listener),
        FN_OPT(port, opt_port),
        FN_OPT(bind_address, opt_bind_address),
        FN_OPT(max_connections, opt_listener_more),
        FN_OPT(allow_anonymous, opt_allow_anonymous),
        /* 0 is "no maximum"; Receive Maximum is a Two Byte Integer (MQTT 5.0 3.2.2.3.3). */
        {.name = "max_inflight_messages",
         .parse = opt_inflight,
         .off = offsetof(struct config, max_inflight_messages),
         .size = sizeof(((struct config *)0)->max_inflight_messages),
         .min = 0,
         .max = 65535,
         .from = 0,
         .to = 65535},
        INT_OPT(max_queued_messages, max_queued_messages, 0, INT32_MAX, 0, 0),
        INT_OPT(message_size_limit, message_size_limit, 0, MQTT_PAYLOAD_MAX, 0, 0),
        /* Mosquitto forbids below 20 bytes: normal clients' packets would not fit. */
        INT_OPT(max_packet_size, max_packet_size, 20, MQTT_PACKET_MAX, 20, 20),
        /* Mosquitto: "Do not set below 10 seconds", and it refuses to. */
        INT_OPT(max_keepalive, max_keepalive, 10, 65535, 10, 10),
        BOOL_OPT(retain_available, retain_available, opt_bool),
        /* MQTT 5 Topic Alias Maximum the broker accepts from each client (Mosquitto's). */
        INT_OPT(max_topic_alias, max_topic_alias, 0, 65535, 0, 0),
        BOOL_OPT(set_tcp_nodelay, set_tcp_nodelay, opt_bool),
        INT_OPT(max_output_bytes, max_output_bytes, 1, UINT32_MAX, 1, 1),
        FN_OPT(max_output_memory, opt_output_memory),
        INT_OPT(client_send_buffer, client_send_buffer, 0, INT32_MAX / 2, 0, 0),
        INT_OPT(sys_interval, sys_interval_s, 0, 65535, 0, 0),
        /* 0: one worker per CPU the process may run on (the default). */
        INT_OPT(worker_threads, worker_threads, 0, CONFIG_WORKERS_MAX, 0, 0),
        BOOL_OPT(cpu_affinity, cpu_affinity, opt_bool),
        FN_OPT(worker_channel_size, opt_channel_size),
        /* At most 100 ms: a budget is a latency bound, not a polling period. */
        INT_OPT(max_batch_delay_us, max_batch_delay_us, 0, 100000, 0, 0),
        FN_OPT(log_type, opt_log_type),
        FN_OPT(log_dest, opt_log_dest),
        BOOL_OPT(log_timestamp, log_timestamp, opt_bool),
        FN_OPT(log_timestamp_format, opt_log_timestamp_format),
        FN_OPT(pid_file, opt_pid_file),
        FN_OPT(user, opt_user),
        FN_OPT(password_file, opt_auth_file),
        FN_OPT(acl_file, opt_auth_file),
        FN_OPT(per_listener_settings, opt_per_listener),
        /* Per listener (mosquitto.conf(5), "Certificate based SSL/TLS Support"). */
        TLS_OPT("cafile", cafile, opt_tls_path),
        TLS_OPT("capath", capath, opt_tls_path),
        TLS_OPT("certfile", certfile, opt_tls_path),
        TLS_OPT("keyfile", keyfile, opt_tls_path),
        TLS_OPT("crlfile", crlfile, opt_tls_path),
        TLS_OPT("ciphers", ciphers, opt_tls_ciphers),
        TLS_OPT("ciphers_tls1.3", ciphers_tls13, opt_tls_ciphers),
        TLS_OPT("tls_version", version, opt_tls_version),
        TLS_OPT("require_certificate", require_certificate, opt_tls_bool),
        TLS_OPT("use_identity_as_username", use_identity_as_username, opt_tls_bool),
        TLS_OPT("use_subject_as_username", use_subject_as_username, opt_tls_bool),
        BOOL_OPT(persistence, persistence, opt_bool),
        FN_OPT(persistence_location, opt_persistence_location),
        FN_OPT(persistence_file, opt_persistence_file),
        /* Mosquitto takes any non-negative count; 0 turns periodic saving off there and
         * periodic compaction off here (the log is still compacted by size). */
        INT_OPT(autosave_interval, autosave_interval, 0, UINT32_MAX, 0, 0),
        BOOL_OPT(autosave_on_changes, autosave_on_changes, opt_bool),
        FN_OPT(persistence_sync, opt_persistence_sync),
        FN_OPT(event_backend, opt_event_backend),
        FN_OPT(protocol, opt_protocol),
        /* Per listener (mosquitto.conf(5), "Listeners"): config_listener.c. */
        FN_OPT(http_dir, opt_listener_more),
        FN_OPT(mount_point, opt_listener_more),
        FN_OPT(bind_interface, opt_listener_more),
        FN_OPT(socket_domain, opt_listener_more),
        FN_OPT(psk_hint, opt_listener_more),
        FN_OPT(psk_file, opt_listener_more),
        /* Mosquitto's libwebsockets default is 1024; browsers with cookies send more. */
        INT_OPT(websockets_headers_size, websockets_headers_size, 0, 65536, 0, 8192),
        FN_OPT(metrics_listener, opt_metrics_listener),
        FN_OPT(include_dir, opt_include_dir),
        BOOL_OPT(connection_messages, connection_messages, opt_bool),
        FN_OPT(log_facility, opt_log_facility),
};

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->default_port = 1883;
	cfg->max_inflight_messages = 65535; /* see README, "max_inflight_messages" */
	cfg->receive_maximum = 20;
	cfg->max_queued_messages = 1000;
	cfg->message_size_limit = 0;
	cfg->max_packet_size = 0;
	cfg->max_keepalive = 65535;
	cfg->retain_available = true;
	cfg->max_topic_alias = 10;
	cfg->set_tcp_nodelay = true; /* Mosquitto: false; fan-out latency matters more here */
	cfg->max_output_bytes = 4u << 20;
	cfg->sys_interval_s = 10;
	cfg->worker_threads = 0;
	cfg->cmd_worker_threads = -1;
	cfg->log_types = LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFORMATION;
	cfg->log_timestamp = true;
	strcpy(cfg->persistence_file, "starling.db");
	cfg->autosave_interval = 1800;
	cfg->persistence_sync = true;
	cfg->websockets_headers_size = 8192;
	cfg->connection_messages = true;
	cfg->log_facility = -1;
	config_limits_defaults(&cfg->limits);
}

/* Splits buf (modified in place) into the option name, its values and the raw rest. */
static int split_words(char *buf, struct words *w, const struct where *at)
{
	char *p = buf;

	memset(w, 0, sizeof(*w));
	w->name = p;
	while (*p != '\0' && !is_blank(*p))
		p++;
	if (*p != '\0')
		*p++ = '\0';
	while (is_blank(*p))
		p++;
	w->rest = p;
	/* The words are cut from a second copy, after the first, so that `rest` keeps its inner
	 * blanks; buf holds twice the longest line. */
	p += strlen(p) + 1;
	memcpy(p, w->rest, strlen(w->rest) + 1);
	while (*p != '\0') {
		if (w->n == CONFIG_WORDS_MAX)
			return fail(at, "%s: too many values", w->name);
		w->v[w->n++] = p;
		while (*p != '\0' && !is_blank(*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
		while (is_blank(*p))
			p++;
	}
	return ST_OK;
}

static const struct option *find_option(const char *name)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(name, options[i].name) == 0)
			return &options[i];
	return NULL;
}

/* A name our table lacks: a Mosquitto option refused, accepted or renamed (config_compat.c),
 * or unknown. */
static int parse_compat(struct config *cfg, const struct words *w, const struct where *at)
{
	char msg[CONFIG_NOTICE_SIZE];
	const char *alias;
	const struct option *o;
	int rc;

	/* The limits, queues and client-id options have their own file (config_limits.c). */
	rc = config_limits_parse(cfg, w->name, w->v, w->n, w->rest, at->path, at->line, at->err,
	                         at->errlen);
	if (rc != CONFIG_LIMITS_NOT_MINE)
		return rc;
	/* So have the cluster's (config_cluster.c). */
	rc = config_cluster_parse(cfg, w->name, w->v, w->n, at->path, at->line, at->err,
	                          at->errlen);
	if (rc != CONFIG_CLUSTER_NOT_MINE)
		return rc;
	/* So have the bridges' `connection` blocks (config_bridge.c). */
	rc = config_bridge_parse(cfg, w->name, w->v, w->n, w->rest, at->path, at->line, at->err,
	                         at->errlen);
	if (rc != CONFIG_BRIDGE_NOT_MINE)
		return rc;
	switch (config_compat_check(w->name, w->v, w->n, &alias, msg, sizeof(msg))) {
	case CONFIG_COMPAT_REFUSED:
		return fail(at, "%s", msg);
	case CONFIG_COMPAT_ACCEPTED:
		if (msg[0] != '\0')
			config_notice(cfg, at->path, at->line, msg);
		return ST_OK;
	case CONFIG_COMPAT_ALIAS:
		if ((o = find_option(alias)) == NULL) {
			rc = config_limits_parse(cfg, alias, w->v, w->n, w->rest, at->path,
			                         at->line, at->err, at->errlen);
			if (rc != CONFIG_LIMITS_NOT_MINE) {
				if (rc == ST_OK)
					config_notice(cfg, at->path, at->line, msg);
				return rc;
			}
		}
		if (o == NULL)
			return fail(at,
			            "%s (Mosquitto's other name of %s): %s is not supported yet",
			            w->name, alias, alias);
		config_notice(cfg, at->path, at->line, msg);
		return o->parse(cfg, o, w, at);
	case CONFIG_COMPAT_UNKNOWN:
		break;
	}
	return fail(at, "unknown option \"%s\"", w->name);
}

/*
 * A line read while the last listener comes from another file (included, or the included
 * files after an include_dir line of the main file): mosquitto 2.0.11 keeps "the listener
 * above" per file and gives a listener option there to the default listener, so applying it
 * to another file's listener would silently differ. A line that would change that listener
 * is refused instead, whatever the option (those of later Starlings too).
 */
static int parse_guarded(struct config *cfg, const struct option *o, const struct words *w,
                         const struct where *at)
{
	unsigned n = cfg->listener_count;
	struct config_listener *before = malloc(sizeof(*before));
	int rc;

	if (before == NULL)
		return fail(at, "out of memory");
	memcpy(before, &cfg->listeners[n - 1], sizeof(*before));
	rc = o != NULL ? o->parse(cfg, o, w, at) : parse_compat(cfg, w, at);
	if (rc == ST_OK && cfg->listener_count == n &&
	    memcmp(before, &cfg->listeners[n - 1], sizeof(*before)) != 0) {
		memcpy(&cfg->listeners[n - 1], before, sizeof(*before));
		rc = fail(at,
		          "%s: the listener above this line is defined in another file; "
		          "Mosquitto applies listener options only under a `listener` line of "
		          "the same file (else to the default listener): add one above it here",
		          w->name);
	}
	if (cfg->listener_count != n)
		cfg->listener_foreign = false;
	free(before);
	return rc;
}

int config_parse_line(struct config *cfg, const char *text, const char *path, unsigned line,
                      char *err, size_t errlen)
{
	const struct where at = {.path = path, .line = line, .err = err, .errlen = errlen};
	char buf[2 * CONFIG_LINE_MAX + 2];
	const struct option *o;
	struct words w;
	size_t len;
	int rc;

	while (is_blank(*text))
		text++;
	len = strlen(text);
	while (len > 0 && is_blank(text[len - 1]))
		len--;
	if (len == 0 || text[0] == '#')
		return ST_OK;
	if (len > CONFIG_LINE_MAX)
		return fail(&at, "line longer than %d bytes", CONFIG_LINE_MAX);
	memcpy(buf, text, len);
	buf[len] = '\0';
	rc = split_words(buf, &w, &at);
	if (rc != ST_OK)
		return rc;
	o = find_option(w.name);
	if (cfg->listener_foreign && cfg->listener_count > 0)
		return parse_guarded(cfg, o, &w, &at);
	return o != NULL ? o->parse(cfg, o, &w, &at) : parse_compat(cfg, &w, &at);
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char *buf, *p, *end;
	unsigned line = 0, bridge_open = cfg->bridge_open;
	size_t len;
	int rc = base_read_file(path, CONFIG_FILE_MAX_BYTES, &buf, &len, err, errlen);

	if (rc != ST_OK)
		return rc;
	if (cfg->include_depth == 0)
		cfg->main_path = path; /* include_dir refuses to read it a second time */
	cfg->bridge_open = 0;
	end = buf + len;
	for (p = buf; p < end && rc == ST_OK;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl != NULL ? nl : end;

		line++;
		*eol = '\0';
		if (strlen(p) != (size_t)(eol - p)) {
			const struct where at = {path, line, err, errlen};

			rc = fail(&at, "NUL byte in line");
			break;
		}
		rc = config_parse_line(cfg, p, path, line, err, errlen);
		p = eol + 1;
	}
	free(buf);
	cfg->bridge_open = bridge_open;
	if (cfg->include_depth == 0) {
		cfg->main_path = NULL;
		/* Every file is read: each bridge block is complete. */
		if (rc == ST_OK)
			rc = config_bridge_finish(cfg, err, errlen);
		if (rc == ST_OK)
			rc = config_cluster_finish(cfg, err, errlen);
	}
	return rc;
}

/*
 * Every listener's auth becomes the one in effect for it: its own (per_listener_settings, with
 * Mosquitto's default allow_anonymous false for a `listener`), or the broker-wide one, which
 * the default and local-only listeners (from `first_appended` on) always take.
 */
static void config_finish_auth(struct config *cfg, unsigned first_appended)
{
	struct config_auth global;

	memset(&global, 0, sizeof(global));
	memcpy(global.password_file, cfg->password_file, sizeof(global.password_file));
	memcpy(global.acl_file, cfg->acl_file, sizeof(global.acl_file));
	memcpy(global.psk_file, cfg->psk_file, sizeof(global.psk_file));
	global.allow_anonymous = cfg->allow_anonymous;
	global.allow_anonymous_set = cfg->allow_anonymous_set;
	for (unsigned i = 0; i < cfg->listener_count; i++) {
		struct config_auth *a = &cfg->listeners[i].auth;

		if (!cfg->per_listener_settings || i >= first_appended)
			*a = global;
		else if (!a->allow_anonymous_set)
			a->allow_anonymous = false;
	}
}

void config_finish(struct config *cfg)
{
	unsigned first_appended;

	if (cfg->finished)
		return;
	cfg->finished = true;
	first_appended = cfg->listener_count;
	cfg->local_only = cfg->listener_count == 0 && !cfg->default_listener_set;
	if (cfg->local_only) {
		/* Mosquitto 2 listens on 127.0.0.1 and on ::1 when it can. */
		unsigned n = cfg->cmd_port_count;

		for (unsigned i = 0; i < (n == 0 ? 1 : n); i++) {
			struct config_listener *l = &cfg->listeners[cfg->listener_count++];

			memset(l, 0, sizeof(*l));
			l->port = n == 0 ? cfg->default_port : cfg->cmd_ports[i];
			memcpy(l->bind, "127.0.0.1", sizeof("127.0.0.1"));
			l->loopback_v6 = true;
		}
	} else {
		cfg->cmd_ports_ignored = cfg->cmd_port_count > 0;
		if (cfg->default_listener_set) {
			/* Parsing kept a slot free for it (listener_room). */
			struct config_listener *l = &cfg->listeners[cfg->listener_count++];

			memset(l, 0, sizeof(*l));
			l->port = cfg->default_port;
			memcpy(l->bind, cfg->bind_address, sizeof(l->bind));
			l->tls = cfg->default_tls;
			l->protocol = cfg->default_protocol;
			l->opts = cfg->default_opts;
		}
	}
	if (!cfg->allow_anonymous_set)
		cfg->allow_anonymous = cfg->local_only;
	config_finish_auth(cfg, first_appended);
	config_limits_finish(cfg, first_appended);
}

__attribute__((format(printf, 3, 4))) static int usage_error(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, "\n%s", config_usage);
	return ST_ERR_CONFIG;
}

static void print_help(void)
{
	printf("starlingd: an MQTT 5.0/3.1.1/3.1 broker\n\n"
	       "%s\n\n"
	       " -c, --config-file FILE  load configuration from FILE (mosquitto.conf format)\n"
	       " -p, --port PORT         listen on PORT on 127.0.0.1 (repeatable); ignored when\n"
	       "                         FILE defines listeners, as in Mosquitto 2\n"
	       " -t, --threads N         worker threads (default: one per CPU the process may\n"
	       "                         use; overrides worker_threads in FILE)\n"
	       " -v, --verbose           log every message type (log_type all)\n"
	       " -d, --daemon            run in the background\n"
	       " -h, --help              print this help and exit\n",
	       config_usage);
}

static bool is_flag(const char *arg, const char *s, const char *l)
{
	return strcmp(arg, s) == 0 || strcmp(arg, l) == 0;
}

/* -p PORT: kept apart from the file's listeners, config_finish() decides what it means. */
static int add_cmd_port(struct config *cfg, const char *v, char *err, size_t errlen)
{
	long long port;

	if (parse_ll(v, &port) != 0 || port < 0 || port > 65535)
		return usage_error(err, errlen, "starlingd: bad port \"%s\"", v);
	if (cfg->cmd_port_count == CONFIG_LISTENERS_MAX)
		return usage_error(err, errlen, "starlingd: more than %d -p ports",
		                   CONFIG_LISTENERS_MAX);
	cfg->cmd_ports[cfg->cmd_port_count++] = (uint16_t)port;
	return ST_OK;
}

int config_from_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	const char *file = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool takes_value = is_flag(a, "-c", "--config-file") ||
		                   is_flag(a, "-p", "--port") || is_flag(a, "-t", "--threads");
		int rc;

		if (takes_value && i + 1 >= argc)
			return usage_error(err, errlen, "starlingd: %s needs a value", a);
		if (is_flag(a, "-c", "--config-file")) {
			if (file != NULL)
				return usage_error(err, errlen, "starlingd: %s given twice", a);
			file = argv[++i];
			if (strlen(file) == 0 || strlen(file) >= sizeof(cfg->config_path))
				return usage_error(err, errlen, "starlingd: bad file name for %s",
				                   a);
		} else if (is_flag(a, "-p", "--port")) {
			rc = add_cmd_port(cfg, argv[++i], err, errlen);
			if (rc != ST_OK)
				return rc;
		} else if (is_flag(a, "-t", "--threads")) {
			long long n;

			if (parse_ll(argv[++i], &n) != 0 || n < 0 || n > CONFIG_WORKERS_MAX)
				return usage_error(err, errlen,
				                   "starlingd: bad thread count \"%s\" (0 to %d)",
				                   argv[i], CONFIG_WORKERS_MAX);
			cfg->cmd_worker_threads = (int32_t)n;
		} else if (is_flag(a, "-v", "--verbose")) {
			cfg->verbose = true;
		} else if (is_flag(a, "-d", "--daemon")) {
			cfg->daemonize = true;
		} else if (is_flag(a, "-h", "--help")) {
			print_help();
			return 1;
		} else {
			return usage_error(err, errlen, "starlingd: unknown option \"%s\"", a);
		}
	}
	if (file != NULL) {
		int rc;

		/* After all flags, as Mosquitto: -v and -p mean the same wherever they stand. */
		memcpy(cfg->config_path, file, strlen(file) + 1);
		rc = config_load_file(cfg, file, err, errlen);
		if (rc != ST_OK)
			return rc;
	}
	if (cfg->cmd_worker_threads >= 0)
		cfg->worker_threads = (uint32_t)cfg->cmd_worker_threads;
	config_finish(cfg);
	return ST_OK;
}
