/*
 * Parsing of the limits, queues and client-identity options (config_limits.h), with the same
 * strictness as config.c: a value with trailing bytes, out of range or followed by another
 * word is an error naming the file and line, where Mosquitto's atoi() would take a prefix.
 *
 * Where a line goes: max_qos and use_username_as_clientid belong to the last `listener` above
 * them (before any, to the default and local-only listeners); allow_zero_length_clientid and
 * auto_id_prefix are broker-wide unless per_listener_settings is true, when they follow the
 * same rule. Everything else is broker-wide.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_limits.h"
#include "starling/error.h"

/* Where a line came from and where its error goes. */
struct lwhere {
	const char *path; /* file name, for messages */
	unsigned line;    /* 1-based */
	char *err;        /* caller's buffer */
	size_t errlen;    /* its size */
};

__attribute__((format(printf, 2, 3))) static int lfail(const struct lwhere *at, const char *fmt,
                                                       ...)
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

void config_limits_defaults(struct config_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->check_retain_source = true;
}

/* Decimal digits only, no sign: 0, -1 if not a number, -2 if above max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int config_parse_duration(const char *s, uint32_t *out)
{
	static const struct {
		char unit;     /* Mosquitto's letter */
		uint32_t mult; /* seconds */
	} units[] = {{'s', 1},         {'h', 3600},       {'d', 86400},
	             {'w', 7 * 86400}, {'m', 30 * 86400}, {'y', 365 * 86400}};
	char digits[24];
	size_t len = strlen(s);
	uint64_t v;
	int rc;

	if (len < 2 || len - 1 >= sizeof(digits))
		return len < 2 ? -1 : -2;
	memcpy(digits, s, len - 1);
	digits[len - 1] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s[len - 1] != units[i].unit)
			continue;
		rc = parse_u64(digits, UINT32_MAX, &v);
		if (rc < 0)
			return rc;
		if (v == 0)
			return -2;
		if (v > (UINT32_MAX - 1) / units[i].mult)
			return -2;
		*out = (uint32_t)(v * units[i].mult);
		return 0;
	}
	return -1;
}

static int one_value(const char *name, unsigned n, const char *const *v, const struct lwhere *at)
{
	if (n == 0)
		return lfail(at, "%s: missing value", name);
	if (n > 1)
		return lfail(at, "%s: unexpected extra value \"%s\"", name, v[1]);
	return ST_OK;
}

static int get_bool(const char *name, unsigned n, const char *const *v, bool *out,
                    const struct lwhere *at)
{
	int rc = one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(v[0], "true") == 0)
		*out = true;
	else if (strcmp(v[0], "false") == 0)
		*out = false;
	else
		return lfail(at, "%s: expected true or false, got \"%s\"", name, v[0]);
	return ST_OK;
}

/* A byte count: 0 (no limit) up to max. */
static int get_bytes(const char *name, unsigned n, const char *const *v, uint64_t max,
                     uint64_t *out, const struct lwhere *at)
{
	int rc = one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	rc = parse_u64(v[0], max, out);
	if (rc == -1)
		return lfail(at, "%s: \"%s\" is not a decimal integer (bytes)", name, v[0]);
	if (rc == -2)
		return lfail(at, "%s: %s is out of range (0..%llu)", name, v[0],
		             (unsigned long long)max);
	return ST_OK;
}

/* The listener options a line sets: the last listener's, or before any, `first`. */
static struct config_listener_limits *listener_target(struct config *cfg)
{
	if (cfg->listener_count > 0)
		return &cfg->listeners[cfg->listener_count - 1].lim;
	return &cfg->limits.first;
}

/* allow_zero_length_clientid and auto_id_prefix: per listener with per_listener_settings. */
static struct config_listener_limits *id_target(struct config *cfg)
{
	return cfg->per_listener_settings ? listener_target(cfg) : &cfg->limits.first;
}

static int opt_max_qos(struct config *cfg, const char *name, unsigned n, const char *const *v,
                       const struct lwhere *at)
{
	struct config_listener_limits *l = listener_target(cfg);
	int rc = one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	if (strlen(v[0]) != 1 || v[0][0] < '0' || v[0][0] > '2')
		return lfail(at, "%s: expected 0, 1 or 2, got \"%s\"", name, v[0]);
	l->max_qos = (uint8_t)(v[0][0] - '0');
	l->max_qos_set = true;
	return ST_OK;
}

/* A string option: the rest of the line, which may hold blanks (client ids may). */
static int get_string(const char *name, const char *rest, char *dst, size_t size,
                      const struct lwhere *at)
{
	size_t len = strlen(rest);

	if (len == 0)
		return lfail(at, "%s: missing value", name);
	if (len >= size)
		return lfail(at, "%s: value longer than %zu bytes", name, size - 1);
	memcpy(dst, rest, len + 1);
	return ST_OK;
}

static int opt_expiration(struct config *cfg, const char *name, unsigned n, const char *const *v,
                          const struct lwhere *at)
{
	int rc = one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	rc = config_parse_duration(v[0], &cfg->limits.persistent_expiry_s);
	if (rc == -1)
		return lfail(at,
		             "%s: \"%s\" is not a duration (a number and one of h d w m y, e.g. "
		             "14d)",
		             name, v[0]);
	if (rc == -2)
		return lfail(at, "%s: %s is out of range (at least 1, at most %u seconds)", name,
		             v[0], UINT32_MAX - 1);
	return ST_OK;
}

int config_limits_parse(struct config *cfg, const char *name, const char *const *v, unsigned n,
                        const char *rest, const char *path, unsigned line, char *err, size_t errlen)
{
	const struct lwhere at = {path, line, err, errlen};
	struct config_limits *l = &cfg->limits;
	bool b = false;
	int rc;

	if (strcmp(name, "memory_limit") == 0)
		return get_bytes(name, n, v, INT64_MAX, &l->memory_limit, &at);
	if (strcmp(name, "max_queued_bytes") == 0)
		return get_bytes(name, n, v, INT64_MAX, &l->max_queued_bytes, &at);
	if (strcmp(name, "max_inflight_bytes") == 0)
		return get_bytes(name, n, v, INT64_MAX, &l->max_inflight_bytes, &at);
	if (strcmp(name, "queue_qos0_messages") == 0)
		return get_bool(name, n, v, &l->queue_qos0_messages, &at);
	if (strcmp(name, "upgrade_outgoing_qos") == 0)
		return get_bool(name, n, v, &l->upgrade_outgoing_qos, &at);
	if (strcmp(name, "check_retain_source") == 0)
		return get_bool(name, n, v, &l->check_retain_source, &at);
	if (strcmp(name, "persistent_client_expiration") == 0)
		return opt_expiration(cfg, name, n, v, &at);
	if (strcmp(name, "clientid_prefixes") == 0)
		return get_string(name, rest, l->clientid_prefixes, sizeof(l->clientid_prefixes),
		                  &at);
	/* Mosquitto spells it maximum_qos too. */
	if (strcmp(name, "max_qos") == 0 || strcmp(name, "maximum_qos") == 0)
		return opt_max_qos(cfg, name, n, v, &at);
	if (strcmp(name, "use_username_as_clientid") == 0) {
		rc = get_bool(name, n, v, &b, &at);
		if (rc == ST_OK)
			listener_target(cfg)->use_username_as_clientid = b;
		return rc;
	}
	if (strcmp(name, "allow_zero_length_clientid") == 0) {
		rc = get_bool(name, n, v, &b, &at);
		if (rc == ST_OK)
			id_target(cfg)->refuse_zero_length_clientid = !b;
		return rc;
	}
	if (strcmp(name, "auto_id_prefix") == 0) {
		struct config_listener_limits *t = id_target(cfg);

		return get_string(name, rest, t->auto_id_prefix, sizeof(t->auto_id_prefix), &at);
	}
	return CONFIG_LIMITS_NOT_MINE;
}

void config_limits_finish(struct config *cfg, unsigned first_appended)
{
	const struct config_listener_limits *first = &cfg->limits.first;

	for (unsigned i = 0; i < cfg->listener_count; i++) {
		struct config_listener_limits *l = &cfg->listeners[i].lim;

		if (i >= first_appended) {
			l->max_qos_set = first->max_qos_set;
			l->max_qos = first->max_qos;
			l->use_username_as_clientid = first->use_username_as_clientid;
		}
		if (!l->max_qos_set)
			l->max_qos = 2;
		if (!cfg->per_listener_settings || i >= first_appended) {
			l->refuse_zero_length_clientid = first->refuse_zero_length_clientid;
			memcpy(l->auto_id_prefix, first->auto_id_prefix, sizeof(l->auto_id_prefix));
		}
	}
}
