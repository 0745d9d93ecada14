/*
 * The bridge options of mosquitto.conf(5) ("Configuring Bridges"), read into the
 * struct config_bridge of the `connection` block they follow (config_bridge.h). Every value
 * check here was compared with mosquitto 2.0.11 itself; where Starling is stricter it says so:
 * a number with trailing bytes (Mosquitto's atoi() takes "1x" as 1 and "x" as 0), a topic
 * filter that is not one (Mosquitto subscribes to it and fails at run time), an address with
 * no host, a remote_password without remote_username (which Mosquitto silently does not send),
 * bridge_certfile without its key or a CA, a bridge_psk that is not hexadecimal.
 *
 * Where Mosquitto accepts a value and uses another (keepalive_interval under 5, idle_timeout,
 * threshold or restart_timeout under 1), Starling does the same and keeps a notice naming the
 * line, so that a file Mosquitto runs, Starling runs too. A string option given twice in a
 * block is an error, as in Mosquitto ("Duplicate ... value"); a boolean or number given twice
 * takes the last value.
 *
 * The `topic` line and the addresses, which have their own grammar, are in
 * config_bridge_topic.c; this file holds the block's other options and the checks and
 * defaults of config_bridge_finish().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_bridge_parse.h"
#include "config_compat.h"
#include "starling/error.h"
#include "starling/topic.h"
#include "starling/utf8.h"

int bridge_fail(const struct bwhere *at, const char *fmt, ...)
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

int bridge_one_value(const char *name, unsigned n, const char *const *v, const struct bwhere *at)
{
	if (n == 0)
		return bridge_fail(at, "%s: missing value", name);
	if (n > 1)
		return bridge_fail(at, "%s: unexpected extra value \"%s\"", name, v[1]);
	return ST_OK;
}

/* Decimal digits only: 0, -1 if not a number, -2 if above max. */
int bridge_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return -2;
	}
	*out = (uint32_t)v;
	return 0;
}

static int get_u32(const char *name, const char *s, uint32_t max, uint32_t *out,
                   const struct bwhere *at)
{
	int rc = bridge_parse_u32(s, max, out);

	if (rc == -1)
		return bridge_fail(at, "%s: \"%s\" is not a decimal integer", name, s);
	if (rc == -2)
		return bridge_fail(at, "%s: %s is out of range (0..%u)", name, s, max);
	return ST_OK;
}

static int get_bool(const char *name, unsigned n, const char *const *v, bool *out,
                    const struct bwhere *at)
{
	int rc = bridge_one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(v[0], "true") == 0)
		*out = true;
	else if (strcmp(v[0], "false") == 0)
		*out = false;
	else
		return bridge_fail(at, "%s: expected true or false, got \"%s\"", name, v[0]);
	return ST_OK;
}

/* A string option: the rest of the line (client ids, user names, passwords and paths may hold
 * blanks), valid UTF-8 as Mosquitto requires, given once per block. */
static int get_string(const char *name, const char *rest, size_t max, char **dst,
                      const struct bwhere *at)
{
	size_t len = strlen(rest);

	if (*dst != NULL)
		return bridge_fail(at, "%s: given twice in this connection block", name);
	if (len == 0)
		return bridge_fail(at, "%s: missing value", name);
	if (len > max)
		return bridge_fail(at, "%s: value longer than %zu bytes", name, max);
	if (st_utf8_check((const uint8_t *)rest, len) != ST_OK)
		return bridge_fail(at, "%s: not valid UTF-8", name);
	*dst = strdup(rest);
	return *dst != NULL ? ST_OK : bridge_fail(at, "out of memory");
}

/* A path into a fixed field (the TLS files): the rest of the line, given once per block. */
static int get_path(const char *name, const char *rest, char *dst, size_t size,
                    const struct bwhere *at)
{
	size_t len = strlen(rest);

	if (dst[0] != '\0')
		return bridge_fail(at, "%s: given twice in this connection block", name);
	if (len == 0)
		return bridge_fail(at, "%s: missing value", name);
	if (len >= size)
		return bridge_fail(at, "%s: value longer than %zu bytes", name, size - 1);
	memcpy(dst, rest, len + 1);
	return ST_OK;
}

/* A number that Mosquitto raises to `low` when under it, with a notice naming the line. */
static int get_floor(struct config *cfg, const char *name, unsigned n, const char *const *v,
                     uint32_t low, uint32_t max, uint32_t *out, const struct bwhere *at)
{
	char msg[CONFIG_NOTICE_SIZE];
	int rc = bridge_one_value(name, n, v, at);

	if (rc == ST_OK)
		rc = get_u32(name, v[0], max, out, at);
	if (rc != ST_OK || *out >= low)
		return rc;
	snprintf(msg, sizeof(msg), "%s %s is under %u: using %u, as Mosquitto does", name, v[0],
	         low, low);
	config_notice(cfg, at->path, at->line, msg);
	*out = low;
	return ST_OK;
}

/* restart_timeout CONSTANT, or restart_timeout BASE CAP (Decorrelated Jitter). */
static int opt_restart(struct config *cfg, struct config_bridge *b, const char *name, unsigned n,
                       const char *const *v, const struct bwhere *at)
{
	uint32_t base, cap;
	int rc;

	if (n == 0)
		return bridge_fail(at, "%s: missing value", name);
	if (n > 2)
		return bridge_fail(at, "%s: unexpected extra value \"%s\"", name, v[2]);
	rc = get_floor(cfg, name, 1, v, 1, INT32_MAX, &base, at);
	if (rc != ST_OK)
		return rc;
	cap = base;
	if (n == 2) {
		rc = get_u32(name, v[1], INT32_MAX, &cap, at);
		if (rc != ST_OK)
			return rc;
		if (cap < base)
			return bridge_fail(at, "%s: the cap %s is lower than the base %u", name,
			                   v[1], base);
	}
	b->restart_base_s = base;
	b->restart_cap_s = cap;
	return ST_OK;
}

static int opt_start_type(struct config_bridge *b, const char *name, unsigned n,
                          const char *const *v, const struct bwhere *at)
{
	int rc = bridge_one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(v[0], "automatic") == 0)
		b->start_type = CONFIG_BRIDGE_AUTOMATIC;
	else if (strcmp(v[0], "lazy") == 0)
		b->start_type = CONFIG_BRIDGE_LAZY;
	else if (strcmp(v[0], "once") == 0)
		b->start_type = CONFIG_BRIDGE_ONCE;
	else if (strcmp(v[0], "manual") == 0)
		return bridge_fail(at,
		                   "%s: manual is not supported (nor by Mosquitto): use "
		                   "automatic, lazy or once",
		                   name);
	else
		return bridge_fail(at, "%s: expected automatic, lazy or once, got \"%s\"", name,
		                   v[0]);
	return ST_OK;
}

static int opt_protocol_version(struct config_bridge *b, const char *name, unsigned n,
                                const char *const *v, const struct bwhere *at)
{
	int rc = bridge_one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(v[0], "mqttv31") == 0)
		b->protocol_version = 3;
	else if (strcmp(v[0], "mqttv311") == 0)
		b->protocol_version = 4;
	else if (strcmp(v[0], "mqttv50") == 0)
		b->protocol_version = 5;
	else
		return bridge_fail(at, "%s: expected mqttv50, mqttv311 or mqttv31, got \"%s\"",
		                   name, v[0]);
	return ST_OK;
}

static int opt_tls_version(struct config_bridge *b, const char *name, unsigned n,
                           const char *const *v, const struct bwhere *at)
{
	int rc = bridge_one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	if (strcmp(v[0], "tlsv1.2") == 0)
		b->tls_version = CONFIG_TLS_V12;
	else if (strcmp(v[0], "tlsv1.3") == 0)
		b->tls_version = CONFIG_TLS_V13;
	else if (strcmp(v[0], "tlsv1.1") == 0)
		return bridge_fail(at,
		                   "%s: TLS 1.1 is not offered (OpenSSL refuses it at its default "
		                   "security level, and Starling's listeners start at 1.2): use "
		                   "tlsv1.2, which also allows 1.3",
		                   name);
	else
		return bridge_fail(at, "%s: expected tlsv1.3, tlsv1.2 or tlsv1.1, got \"%s\"", name,
		                   v[0]);
	return ST_OK;
}

static bool has_certs(const struct config_bridge *b)
{
	return b->cafile[0] != '\0' || b->capath[0] != '\0' || b->certfile[0] != '\0' ||
	       b->keyfile[0] != '\0';
}

static int certs_and_psk(const char *name, const struct bwhere *at)
{
	return bridge_fail(at,
	                   "%s: a bridge uses certificates (bridge_cafile, bridge_capath, "
	                   "bridge_certfile, bridge_keyfile) or a pre-shared key (bridge_identity, "
	                   "bridge_psk), not both",
	                   name);
}

static int opt_tls_file(struct config_bridge *b, const char *name, const char *rest, char *dst,
                        const struct bwhere *at)
{
	if (b->psk_identity != NULL || b->psk_hex != NULL)
		return certs_and_psk(name, at);
	return get_path(name, rest, dst, CONFIG_BRIDGE_PATH_MAX, at);
}

/* bridge_psk: hexadecimal without "0x"; 256 bytes at most (OpenSSL's PSK_MAX_PSK_LEN). */
static int opt_psk(struct config_bridge *b, const char *name, unsigned n, const char *const *v,
                   const struct bwhere *at)
{
	int rc;

	if (has_certs(b))
		return certs_and_psk(name, at);
	rc = bridge_one_value(name, n, v, at);
	if (rc != ST_OK)
		return rc;
	if (strlen(v[0]) > 512 || v[0][strspn(v[0], "0123456789abcdefABCDEF")] != '\0')
		return bridge_fail(at,
		                   "%s: expected the key in hexadecimal (no 0x), at most 512 "
		                   "digits",
		                   name);
	return get_string(name, v[0], 512, &b->psk_hex, at);
}

static int opt_insecure(struct config *cfg, struct config_bridge *b, const char *name, unsigned n,
                        const char *const *v, const struct bwhere *at)
{
	char msg[CONFIG_NOTICE_SIZE];
	int rc = get_bool(name, n, v, &b->insecure, at);

	if (rc == ST_OK && b->insecure) {
		snprintf(msg, sizeof(msg),
		         "bridge %s does not check the remote certificate's host name "
		         "(bridge_insecure true)",
		         b->name);
		config_notice(cfg, at->path, at->line, msg);
	}
	return rc;
}

static int opt_ocsp(struct config_bridge *b, const char *name, unsigned n, const char *const *v,
                    const struct bwhere *at)
{
	return get_bool(name, n, v, &b->require_ocsp, at);
}

static int opt_notification_topic(struct config_bridge *b, const char *name, const char *rest,
                                  const struct bwhere *at)
{
	int rc = get_string(name, rest, CONFIG_BRIDGE_ID_MAX - 1, &b->notification_topic, at);

	if (rc == ST_OK && !st_topic_name_is_valid((const uint8_t *)rest, strlen(rest)))
		return bridge_fail(at, "%s: \"%s\" is not a topic to publish on (no + or #)", name,
		                   rest);
	return rc;
}

static int opt_bind_address(struct config_bridge *b, const char *name, unsigned n,
                            const char *const *v, const struct bwhere *at)
{
	int rc = bridge_one_value(name, n, v, at);

	if (rc != ST_OK)
		return rc;
	return get_path(name, v[0], b->bind_address, sizeof(b->bind_address), at);
}

static int parse_tls_option(struct config *cfg, struct config_bridge *b, const char *name,
                            const char *const *v, unsigned n, const char *rest,
                            const struct bwhere *at);

/* The options of a block with one word or the rest of the line, by name. Returns
 * CONFIG_BRIDGE_NOT_MINE for a name that is none of them. */
static int parse_block_option(struct config *cfg, struct config_bridge *b, const char *name,
                              const char *const *v, unsigned n, const char *rest,
                              const struct bwhere *at)
{
	const size_t id_max = CONFIG_BRIDGE_ID_MAX - 1;
	uint32_t u;
	int rc;

	if (strcmp(name, "remote_clientid") == 0 || strcmp(name, "clientid") == 0)
		return get_string(name, rest, id_max, &b->remote_clientid, at);
	if (strcmp(name, "local_clientid") == 0)
		return get_string(name, rest, id_max, &b->local_clientid, at);
	if (strcmp(name, "remote_username") == 0 || strcmp(name, "username") == 0)
		return get_string(name, rest, id_max, &b->remote_username, at);
	if (strcmp(name, "remote_password") == 0 || strcmp(name, "password") == 0)
		return get_string(name, rest, id_max, &b->remote_password, at);
	if (strcmp(name, "local_username") == 0)
		return get_string(name, rest, id_max, &b->local_username, at);
	if (strcmp(name, "local_password") == 0)
		return get_string(name, rest, id_max, &b->local_password, at);
	if (strcmp(name, "round_robin") == 0)
		return get_bool(name, n, v, &b->round_robin, at);
	if (strcmp(name, "cleansession") == 0)
		return get_bool(name, n, v, &b->cleansession, at);
	if (strcmp(name, "local_cleansession") == 0) {
		rc = get_bool(name, n, v, &b->local_cleansession, at);
		b->local_cleansession_set = rc == ST_OK;
		return rc;
	}
	if (strcmp(name, "keepalive_interval") == 0) {
		rc = get_floor(cfg, name, n, v, 5, UINT16_MAX, &u, at);
		b->keepalive_s = rc == ST_OK ? (uint16_t)u : b->keepalive_s;
		return rc;
	}
	if (strcmp(name, "idle_timeout") == 0)
		return get_floor(cfg, name, n, v, 1, INT32_MAX, &b->idle_timeout_s, at);
	if (strcmp(name, "threshold") == 0)
		return get_floor(cfg, name, n, v, 1, INT32_MAX, &b->threshold, at);
	if (strcmp(name, "restart_timeout") == 0)
		return opt_restart(cfg, b, name, n, v, at);
	if (strcmp(name, "start_type") == 0)
		return opt_start_type(b, name, n, v, at);
	if (strcmp(name, "bridge_protocol_version") == 0)
		return opt_protocol_version(b, name, n, v, at);
	if (strcmp(name, "try_private") == 0)
		return get_bool(name, n, v, &b->try_private, at);
	if (strcmp(name, "notifications") == 0)
		return get_bool(name, n, v, &b->notifications, at);
	if (strcmp(name, "notifications_local_only") == 0)
		return get_bool(name, n, v, &b->notifications_local_only, at);
	if (strcmp(name, "notification_topic") == 0)
		return opt_notification_topic(b, name, rest, at);
	if (strcmp(name, "bridge_max_packet_size") == 0) {
		rc = bridge_one_value(name, n, v, at);
		return rc != ST_OK ? rc : get_u32(name, v[0], 268435460, &b->max_packet_size, at);
	}
	if (strcmp(name, "bridge_outgoing_retain") == 0)
		return get_bool(name, n, v, &b->outgoing_retain, at);
	if (strcmp(name, "bridge_attempt_unsubscribe") == 0)
		return get_bool(name, n, v, &b->attempt_unsubscribe, at);
	if (strcmp(name, "bridge_bind_address") == 0)
		return opt_bind_address(b, name, n, v, at);
	return parse_tls_option(cfg, b, name, v, n, rest, at);
}

static int parse_tls_option(struct config *cfg, struct config_bridge *b, const char *name,
                            const char *const *v, unsigned n, const char *rest,
                            const struct bwhere *at)
{
	if (strcmp(name, "bridge_cafile") == 0)
		return opt_tls_file(b, name, rest, b->cafile, at);
	if (strcmp(name, "bridge_capath") == 0)
		return opt_tls_file(b, name, rest, b->capath, at);
	if (strcmp(name, "bridge_certfile") == 0)
		return opt_tls_file(b, name, rest, b->certfile, at);
	if (strcmp(name, "bridge_keyfile") == 0)
		return opt_tls_file(b, name, rest, b->keyfile, at);
	if (strcmp(name, "bridge_insecure") == 0)
		return opt_insecure(cfg, b, name, n, v, at);
	if (strcmp(name, "bridge_tls_version") == 0)
		return opt_tls_version(b, name, n, v, at);
	if (strcmp(name, "bridge_alpn") == 0)
		return get_string(name, rest, 255, &b->alpn, at);
	if (strcmp(name, "bridge_identity") == 0) {
		if (has_certs(b))
			return certs_and_psk(name, at);
		return get_string(name, rest, CONFIG_BRIDGE_ID_MAX - 1, &b->psk_identity, at);
	}
	if (strcmp(name, "bridge_psk") == 0)
		return opt_psk(b, name, n, v, at);
	if (strcmp(name, "bridge_require_ocsp") == 0)
		return opt_ocsp(b, name, n, v, at);
	return CONFIG_BRIDGE_NOT_MINE;
}

/* Every option name a block takes besides `connection`, for the "outside a block" check. */
static const char *const block_names[] = {
        "address",
        "addresses",
        "topic",
        "remote_clientid",
        "clientid",
        "local_clientid",
        "remote_username",
        "username",
        "remote_password",
        "password",
        "local_username",
        "local_password",
        "round_robin",
        "cleansession",
        "local_cleansession",
        "keepalive_interval",
        "idle_timeout",
        "threshold",
        "restart_timeout",
        "start_type",
        "bridge_protocol_version",
        "try_private",
        "notifications",
        "notifications_local_only",
        "notification_topic",
        "bridge_max_packet_size",
        "bridge_outgoing_retain",
        "bridge_attempt_unsubscribe",
        "bridge_bind_address",
        "bridge_cafile",
        "bridge_capath",
        "bridge_certfile",
        "bridge_keyfile",
        "bridge_insecure",
        "bridge_tls_version",
        "bridge_alpn",
        "bridge_identity",
        "bridge_psk",
        "bridge_require_ocsp",
};

bool config_bridge_is_option(const char *name)
{
	if (strcmp(name, "connection") == 0)
		return true;
	for (size_t i = 0; i < sizeof(block_names) / sizeof(block_names[0]); i++)
		if (strcmp(name, block_names[i]) == 0)
			return true;
	return false;
}

/* Mosquitto's defaults of a new block (its `connection` handler). */
static void bridge_defaults(struct config_bridge *b)
{
	memset(b, 0, sizeof(*b));
	b->keepalive_s = 60;
	b->idle_timeout_s = 60;
	b->threshold = 10;
	b->restart_base_s = 5;
	b->restart_cap_s = 30;
	b->start_type = CONFIG_BRIDGE_AUTOMATIC;
	b->protocol_version = 4;
	b->try_private = true;
	b->notifications = true;
	b->outgoing_retain = true;
	b->attempt_unsubscribe = true;
	b->tls_version = CONFIG_TLS_V12;
}

static int opt_connection(struct config *cfg, unsigned n, const char *const *v,
                          const struct bwhere *at)
{
	struct config_bridge *b;
	int rc = bridge_one_value("connection", n, v, at);

	if (rc != ST_OK)
		return rc;
	if (st_utf8_check((const uint8_t *)v[0], strlen(v[0])) != ST_OK)
		return bridge_fail(at, "connection: the name is not valid UTF-8");
	for (unsigned i = 0; i < cfg->bridge_count; i++)
		if (strcmp(cfg->bridges[i].name, v[0]) == 0)
			return bridge_fail(
			        at, "connection: a second bridge named \"%s\" (first at %s:%u)",
			        v[0], cfg->bridges[i].path, cfg->bridges[i].line);
	if (cfg->bridge_count == CONFIG_BRIDGES_MAX)
		return bridge_fail(at, "connection: more than %d bridges", CONFIG_BRIDGES_MAX);
	if (cfg->bridge_count == cfg->bridge_cap) {
		unsigned cap = cfg->bridge_cap == 0 ? 2 : cfg->bridge_cap * 2;
		struct config_bridge *grown = realloc(cfg->bridges, cap * sizeof(*grown));

		if (grown == NULL)
			return bridge_fail(at, "out of memory");
		cfg->bridges = grown;
		cfg->bridge_cap = cap;
	}
	b = &cfg->bridges[cfg->bridge_count];
	bridge_defaults(b);
	b->name = strdup(v[0]);
	b->path = strdup(at->path);
	b->line = at->line;
	if (b->name == NULL || b->path == NULL) {
		free(b->name);
		free(b->path);
		return bridge_fail(at, "out of memory");
	}
	cfg->bridge_count++;
	cfg->bridge_open = cfg->bridge_count;
	return ST_OK;
}

int config_bridge_parse(struct config *cfg, const char *name, const char *const *v, unsigned n,
                        const char *rest, const char *path, unsigned line, char *err, size_t errlen)
{
	const struct bwhere at = {path, line, err, errlen};
	struct config_bridge *b;
	int rc;

	if (!config_bridge_is_option(name))
		return CONFIG_BRIDGE_NOT_MINE;
	if (strcmp(name, "connection") == 0)
		return opt_connection(cfg, n, v, &at);
	if (cfg->bridge_open == 0)
		return bridge_fail(
		        &at,
		        "%s: a bridge option outside a connection block (it belongs after "
		        "a `connection NAME` line of the same file)",
		        name);
	b = &cfg->bridges[cfg->bridge_open - 1];
	if (strcmp(name, "topic") == 0)
		return config_bridge_topic(b, v, n, &at);
	if (strcmp(name, "address") == 0 || strcmp(name, "addresses") == 0)
		return config_bridge_addresses(b, name, v, n, &at);
	rc = parse_block_option(cfg, b, name, v, n, rest, &at);
	return rc == CONFIG_BRIDGE_NOT_MINE ? bridge_fail(&at, "%s: unknown", name) : rc;
}

/* s1 s2 s3 joined into a new string, or NULL. */
static char *concat3(const char *s1, const char *s2, const char *s3)
{
	size_t l1 = strlen(s1), l2 = strlen(s2), l3 = strlen(s3);
	char *s = malloc(l1 + l2 + l3 + 1);

	if (s != NULL) {
		memcpy(s, s1, l1);
		memcpy(s + l1, s2, l2);
		memcpy(s + l1 + l2, s3, l3 + 1);
	}
	return s;
}

/*
 * The defaults that depend on other values. The remote client id is "HOSTNAME.NAME": what
 * mosquitto 2.0.11 connects with (seen from a `mosquitto -v` remote), although its manual
 * says "name.hostname".
 */
static int bridge_fill(struct config_bridge *b, const struct bwhere *at)
{
	char host[256];

	if (b->remote_clientid == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		b->remote_clientid = concat3(host, ".", b->name);
	}
	if (b->local_clientid == NULL && b->remote_clientid != NULL)
		b->local_clientid = concat3("local.", b->remote_clientid, "");
	if (b->notification_topic == NULL && b->remote_clientid != NULL)
		b->notification_topic =
		        concat3("$SYS/broker/connection/", b->remote_clientid, "/state");
	if (b->remote_clientid == NULL || b->local_clientid == NULL ||
	    b->notification_topic == NULL)
		return bridge_fail(at, "out of memory");
	if (strlen(b->remote_clientid) >= CONFIG_BRIDGE_ID_MAX ||
	    strlen(b->local_clientid) >= CONFIG_BRIDGE_ID_MAX)
		return bridge_fail(at, "connection %s: client id longer than %d bytes", b->name,
		                   CONFIG_BRIDGE_ID_MAX - 1);
	if (!b->local_cleansession_set)
		b->local_cleansession = b->cleansession;
	b->tls = b->cafile[0] != '\0' || b->capath[0] != '\0' || b->psk_identity != NULL;
	return ST_OK;
}

/* What one block must hold, checked once its last line is read. */
static int bridge_check(const struct config_bridge *b, const struct bwhere *at)
{
	if (b->addr_count == 0)
		return bridge_fail(at, "connection %s: no address line", b->name);
	if (b->topic_count == 0)
		return bridge_fail(at, "connection %s: no topic line (Mosquitto requires one)",
		                   b->name);
	if (b->remote_password != NULL && b->remote_username == NULL)
		return bridge_fail(at,
		                   "connection %s: remote_password without remote_username (MQTT "
		                   "sends a password only with a user name)",
		                   b->name);
	if (b->local_password != NULL && b->local_username == NULL)
		return bridge_fail(at, "connection %s: local_password without local_username",
		                   b->name);
	if (b->psk_hex != NULL && b->psk_identity == NULL)
		return bridge_fail(at, "connection %s: bridge_psk without bridge_identity",
		                   b->name);
	if (b->psk_identity != NULL && b->psk_hex == NULL)
		return bridge_fail(at, "connection %s: bridge_identity without bridge_psk",
		                   b->name);
	/* A stapled OCSP response speaks of a certificate: TLS-PSK has none (io/tls.h). */
	if (b->require_ocsp && b->psk_identity != NULL)
		return bridge_fail(at,
		                   "connection %s: bridge_require_ocsp needs certificates, not "
		                   "bridge_identity/bridge_psk",
		                   b->name);
	if ((b->certfile[0] != '\0') != (b->keyfile[0] != '\0'))
		return bridge_fail(at,
		                   "connection %s: bridge_certfile and bridge_keyfile go together",
		                   b->name);
	if (b->certfile[0] != '\0' && b->cafile[0] == '\0' && b->capath[0] == '\0')
		return bridge_fail(at,
		                   "connection %s: bridge_certfile without bridge_cafile or "
		                   "bridge_capath (TLS is on only with one of them)",
		                   b->name);
	return ST_OK;
}

int config_bridge_finish(struct config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->bridge_count; i++) {
		struct config_bridge *b = &cfg->bridges[i];
		const struct bwhere at = {b->path, b->line, err, errlen};
		int rc = bridge_check(b, &at);

		if (rc == ST_OK)
			rc = bridge_fill(b, &at);
		if (rc != ST_OK)
			return rc;
		/* Two bridges with one local client id would take each other's session. */
		for (unsigned j = 0; j < i; j++)
			if (strcmp(cfg->bridges[j].local_clientid, b->local_clientid) == 0)
				return bridge_fail(&at,
				                   "connection %s: local_clientid \"%s\" is also "
				                   "bridge %s's; set local_clientid (or "
				                   "remote_clientid) of one of them",
				                   b->name, b->local_clientid,
				                   cfg->bridges[j].name);
	}
	return ST_OK;
}

void config_bridges_free(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->bridge_count; i++) {
		struct config_bridge *b = &cfg->bridges[i];

		for (unsigned t = 0; t < b->topic_count; t++) {
			free(b->topics[t].pattern);
			free(b->topics[t].local_prefix);
			free(b->topics[t].remote_prefix);
			free(b->topics[t].local_topic);
			free(b->topics[t].remote_topic);
		}
		free(b->topics);
		free(b->name);
		free(b->path);
		free(b->remote_clientid);
		free(b->local_clientid);
		free(b->remote_username);
		free(b->remote_password);
		free(b->local_username);
		free(b->local_password);
		free(b->notification_topic);
		free(b->alpn);
		free(b->psk_identity);
		free(b->psk_hex);
	}
	free(cfg->bridges);
	cfg->bridges = NULL;
	cfg->bridge_count = 0;
	cfg->bridge_cap = 0;
	cfg->bridge_open = 0;
}
