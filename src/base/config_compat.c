/*
 * The mosquitto.conf options of Mosquitto 2.0 that Starling does not parse as settings of its
 * own: refused with a one-line reason that says what to use instead (plugins, OpenSSL engines),
 * accepted with a notice (deprecated options, knobs of libraries Starling does not use), or
 * Mosquitto's other names of an option Starling has. config.c asks here only for a name its
 * own table lacks, once per such line at start-up, so a linear scan of a short table is
 * plenty. The bridge options, old names included (`clientid`, `username`, `password`), are
 * config_bridge.c's.
 *
 * The list is mosquitto.conf(5) of 2.0.11 (Debian 12's package) plus the names the 2.0.11
 * broker accepts without documenting them (`plugin`, `plugin_opt_*`, `retry_interval`,
 * `retained_persistence`, `maximum_qos`), each checked against mosquitto 2.0.11 itself. The
 * README's table of every option says the same in prose; test_config.c and
 * test_mosquitto_conf.py hold both to it.
 */
#include <stdio.h>
#include <string.h>

#include "config_compat.h"

/* Why each refused option is refused: one line each, saying what to use instead. */
static const char why_plugin[] =
        "Mosquitto plugins are not supported (Starling does not load Mosquitto's plugin ABI): "
        "use password_file and acl_file, which Starling reads in Mosquitto's formats";
static const char why_plugin_opt[] =
        "an option of a Mosquitto plugin; plugins are not supported (use password_file and "
        "acl_file instead)";
static const char why_deny_special[] =
        "applies to Mosquitto auth plugins, which Starling does not load; Starling's own "
        "acl_file patterns never match a client id or user name holding '+' or '#'";
static const char why_engine[] =
        "OpenSSL engines (keys in hardware) are not supported: give keyfile a PEM key file";
static const char why_dhparam[] =
        "finite-field DHE is not offered: Starling's TLS listeners use ECDHE (TLS 1.2) and TLS "
        "1.3 key exchange, which need no DH parameters; remove the line";
/* A value check for accepted options, so a typo is still an error. */
enum compat_value {
	VALUE_NONE, /* refused whatever the value */
	VALUE_BOOL, /* true or false */
	VALUE_INT,  /* a decimal integer */
	VALUE_PEM,  /* tls_keyform: pem, the only form Starling reads (engine is refused) */
};

struct compat {
	const char *name;        /* as in mosquitto.conf(5); with prefix: the start of the name */
	bool prefix;             /* auth_opt_*, plugin_opt_*: every name starting with `name` */
	enum config_compat kind; /* refused, accepted, or another name of `alias` */
	enum compat_value value; /* what an accepted option's value must be */
	const char *why;         /* refused: the reason; accepted and alias: the notice */
	const char *alias;       /* CONFIG_COMPAT_ALIAS: the option it names */
};

#define REFUSED(n, w)                                                                              \
	{                                                                                          \
		.name = (n), .kind = CONFIG_COMPAT_REFUSED, .why = (w)                             \
	}
#define REFUSED_PREFIX(n, w)                                                                       \
	{                                                                                          \
		.name = (n), .prefix = true, .kind = CONFIG_COMPAT_REFUSED, .why = (w)             \
	}
#define ACCEPTED(n, v, w)                                                                          \
	{                                                                                          \
		.name = (n), .kind = CONFIG_COMPAT_ACCEPTED, .value = (v), .why = (w)              \
	}
#define ALIAS(n, a, w)                                                                             \
	{                                                                                          \
		.name = (n), .kind = CONFIG_COMPAT_ALIAS, .alias = (a), .why = (w)                 \
	}

static const struct compat compat_table[] = {
        REFUSED("auth_plugin", why_plugin),
        REFUSED("plugin", why_plugin),
        REFUSED_PREFIX("auth_opt_", why_plugin_opt),
        REFUSED_PREFIX("plugin_opt_", why_plugin_opt),
        REFUSED("auth_plugin_deny_special_chars", why_deny_special),
        REFUSED("tls_engine", why_engine),
        REFUSED("tls_engine_kpass_sha1", why_engine),
        REFUSED("dhparamfile", why_dhparam),
        /* pem is what keyfile always holds for Starling: honoured, so no notice. */
        ACCEPTED("tls_keyform", VALUE_PEM, NULL),
        /* Deprecated in 2.0, still accepted by Mosquitto: accepted here too. */
        ACCEPTED("allow_duplicate_messages", VALUE_BOOL,
                 "deprecated in Mosquitto 2.0 and ignored: Starling delivers a message once to "
                 "a client however many of its subscriptions match"),
        ACCEPTED("retry_interval", VALUE_INT,
                 "no longer used by Mosquitto 2.0 and ignored: unacknowledged QoS 1/2 messages "
                 "are sent again when the client reconnects, as MQTT 3.1.1 and 5 require"),
        ACCEPTED("websockets_log_level", VALUE_INT,
                 "a libwebsockets logging level, ignored: Starling's WebSocket code is its own "
                 "(log_type websockets logs each upgrade)"),
        /* Names mosquitto 2.0.11 accepts for options it documents under another name. */
        ALIAS("retained_persistence", "persistence",
              "retained_persistence is Mosquitto's older name of persistence"),
        ALIAS("maximum_qos", "max_qos", "maximum_qos is Mosquitto's older name of max_qos"),
};

static const struct compat *compat_find(const char *name)
{
	for (size_t i = 0; i < sizeof(compat_table) / sizeof(compat_table[0]); i++) {
		const struct compat *c = &compat_table[i];

		if (c->prefix ? strncmp(name, c->name, strlen(c->name)) == 0
		              : strcmp(name, c->name) == 0)
			return c;
	}
	return NULL;
}

/* Decimal, optional '-': what Mosquitto's atoi() would read whole. */
static bool is_decimal(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* An accepted option's value: one word of the right kind. NULL if good, else the reason. */
static const char *check_value(const struct compat *c, const char *const *v, unsigned n)
{
	if (n == 0)
		return "missing value";
	if (n > 1)
		return "unexpected extra value";
	if (c->value == VALUE_BOOL && strcmp(v[0], "true") != 0 && strcmp(v[0], "false") != 0)
		return "expected true or false";
	if (c->value == VALUE_INT && !is_decimal(v[0]))
		return "expected a decimal integer";
	if (c->value == VALUE_PEM && strcmp(v[0], "engine") == 0)
		return why_engine;
	if (c->value == VALUE_PEM && strcmp(v[0], "pem") != 0)
		return "expected pem or engine";
	return NULL;
}

enum config_compat config_compat_check(const char *name, const char *const *v, unsigned n,
                                       const char **alias, char *msg, size_t msglen)
{
	const struct compat *c = compat_find(name);
	const char *bad;

	*alias = NULL;
	if (msglen > 0)
		msg[0] = '\0';
	if (c == NULL)
		return CONFIG_COMPAT_UNKNOWN;
	switch (c->kind) {
	case CONFIG_COMPAT_REFUSED:
		snprintf(msg, msglen, "%s: %s", name, c->why);
		return CONFIG_COMPAT_REFUSED;
	case CONFIG_COMPAT_ALIAS:
		*alias = c->alias;
		snprintf(msg, msglen, "%s", c->why);
		return CONFIG_COMPAT_ALIAS;
	case CONFIG_COMPAT_ACCEPTED:
		bad = check_value(c, v, n);
		if (bad != NULL) {
			snprintf(msg, msglen, "%s: %s", name, bad);
			return CONFIG_COMPAT_REFUSED;
		}
		if (c->why != NULL)
			snprintf(msg, msglen, "%s: %s", name, c->why);
		return CONFIG_COMPAT_ACCEPTED;
	case CONFIG_COMPAT_UNKNOWN:
		break;
	}
	return CONFIG_COMPAT_UNKNOWN;
}

void config_notice(struct config *cfg, const char *path, unsigned line, const char *msg)
{
	if (cfg->notice_count == CONFIG_NOTICES_MAX) {
		cfg->notices_dropped++;
		return;
	}
	snprintf(cfg->notices[cfg->notice_count++], CONFIG_NOTICE_SIZE, "%s:%u: %s", path, line,
	         msg);
}
