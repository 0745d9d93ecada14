/*
 * The per-listener options of mosquitto.conf(5) (config_listener.h), read as Mosquitto 2.0.18
 * reads them:
 * - Each applies to the last `listener` line above it. Before any, bind_interface,
 *   socket_domain, max_connections (other than -1), http_dir and psk_hint configure the
 *   default listener and bring it into being, as `port` does (Mosquitto creates the default
 *   listener when any of them is set; it drops http_dir there, which Starling keeps).
 *   mount_point before any listener is an error, as in Mosquitto.
 * - psk_file is a security option: per listener with per_listener_settings true, else for
 *   the whole broker, like password_file.
 * - Values are checked here so that a mistake names the file and line: a mount_point must be
 *   a topic name without wildcards, a bind_interface must exist now, an http_dir must be a
 *   directory now.
 */
#include "config_listener.h"

#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "starling/error.h"
#include "starling/topic.h"

__attribute__((format(printf, 2, 3))) static int lfail(const struct config_line *ln,
                                                       const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ln->errlen == 0)
		return ST_ERR_CONFIG;
	n = snprintf(ln->err, ln->errlen, "%s:%u: %s: ", ln->path, ln->line, ln->name);
	if (n < 0 || (size_t)n >= ln->errlen)
		return ST_ERR_CONFIG;
	va_start(ap, fmt);
	vsnprintf(ln->err + n, ln->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ST_ERR_CONFIG;
}

static int one_value(const struct config_line *ln)
{
	if (ln->n == 0)
		return lfail(ln, "missing value");
	if (ln->n > 1)
		return lfail(ln, "unexpected extra value \"%s\"", ln->v[1]);
	return ST_OK;
}

/* Copies s into dst[size], refusing an empty value or one that does not fit. */
static int copy_str(const struct config_line *ln, char *dst, size_t size, const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return lfail(ln, "missing value");
	if (len >= size)
		return lfail(ln, "value longer than %zu bytes", size - 1);
	memcpy(dst, s, len + 1);
	return ST_OK;
}

/*
 * The options the line sets: the last listener's, or before any the default listener's,
 * which is then brought into being.
 */
static struct config_listener_opts *opts_target(struct config *cfg, const struct config_line *ln)
{
	(void)ln; /* before any listener, a slot is always free for the default one */
	if (cfg->listener_count > 0)
		return &cfg->listeners[cfg->listener_count - 1].opts;
	cfg->default_listener_set = true;
	return &cfg->default_opts;
}

static int opt_mount_point(struct config *cfg, const struct config_line *ln)
{
	struct config_listener_opts *o;
	char tmp[CONFIG_MOUNT_POINT_MAX];
	int rc = copy_str(ln, tmp, sizeof(tmp), ln->rest);

	if (rc != ST_OK)
		return rc;
	if (cfg->listener_count == 0)
		return lfail(ln, "a listener must come before it (as in Mosquitto)");
	if (!st_topic_name_is_valid((const uint8_t *)tmp, strlen(tmp)))
		return lfail(ln, "\"%s\" is not a valid topic name (no + or #, UTF-8)", tmp);
	o = &cfg->listeners[cfg->listener_count - 1].opts;
	memcpy(o->mount_point, tmp, strlen(tmp) + 1);
	return ST_OK;
}

static int opt_bind_interface(struct config *cfg, const struct config_line *ln)
{
	struct config_listener_opts *o;
	char tmp[CONFIG_IFNAME_MAX];
	int rc = one_value(ln);

	if (rc == ST_OK)
		rc = copy_str(ln, tmp, sizeof(tmp), ln->v[0]);
	if (rc != ST_OK)
		return rc;
	if (if_nametoindex(tmp) == 0)
		return lfail(ln, "no network interface \"%s\" (%s)", tmp, strerror(errno));
	if (!(o = opts_target(cfg, ln)))
		return ST_ERR_CONFIG;
	memcpy(o->bind_interface, tmp, sizeof(tmp));
	return ST_OK;
}

static int opt_socket_domain(struct config *cfg, const struct config_line *ln)
{
	struct config_listener_opts *o;
	uint8_t v;
	int rc = one_value(ln);

	if (rc != ST_OK)
		return rc;
	if (strcmp(ln->v[0], "ipv4") == 0)
		v = CONFIG_DOMAIN_IPV4;
	else if (strcmp(ln->v[0], "ipv6") == 0)
		v = CONFIG_DOMAIN_IPV6;
	else
		return lfail(ln, "expected ipv4 or ipv6, got \"%s\"", ln->v[0]);
	if (!(o = opts_target(cfg, ln)))
		return ST_ERR_CONFIG;
	o->socket_domain = v;
	return ST_OK;
}

/* -1 (Mosquitto's "unlimited"; any negative number there) or a count; 0 is unlimited too. */
static int opt_max_connections(struct config *cfg, const struct config_line *ln)
{
	struct config_listener_opts *o;
	char *end;
	long long v;
	int rc = one_value(ln);

	if (rc != ST_OK)
		return rc;
	errno = 0;
	v = strtoll(ln->v[0], &end, 10);
	if (end == ln->v[0] || *end != '\0' || ln->v[0][0] == '+')
		return lfail(ln, "\"%s\" is not a decimal integer", ln->v[0]);
	if (errno == ERANGE || v < -1 || v > INT32_MAX)
		return lfail(ln, "%s is out of range (-1..%d)", ln->v[0], INT32_MAX);
	/* -1 before any listener leaves the default listener as it is, as in Mosquitto. */
	if (v == -1 && cfg->listener_count == 0)
		return ST_OK;
	if (!(o = opts_target(cfg, ln)))
		return ST_ERR_CONFIG;
	o->max_connections = v < 0 ? 0 : (uint32_t)v;
	return ST_OK;
}

static int opt_http_dir(struct config *cfg, const struct config_line *ln)
{
	struct config_listener_opts *o;
	char tmp[PATH_MAX];
	struct stat st;
	int rc = copy_str(ln, tmp, sizeof(tmp), ln->rest);

	if (rc != ST_OK)
		return rc;
	if (stat(tmp, &st) != 0)
		return lfail(ln, "%s: %s", tmp, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return lfail(ln, "%s is not a directory", tmp);
	if (!(o = opts_target(cfg, ln)))
		return ST_ERR_CONFIG;
	memcpy(o->http_dir, tmp, strlen(tmp) + 1);
	return ST_OK;
}

static int opt_psk_hint(struct config *cfg, const struct config_line *ln)
{
	struct config_listener_opts *o;
	char tmp[CONFIG_PSK_HINT_MAX];
	int rc = copy_str(ln, tmp, sizeof(tmp), ln->rest);

	if (rc != ST_OK)
		return rc;
	if (!(o = opts_target(cfg, ln)))
		return ST_ERR_CONFIG;
	memcpy(o->psk_hint, tmp, strlen(tmp) + 1);
	return ST_OK;
}

/* Like password_file: the listener's with per_listener_settings (after a listener), else the
 * broker's. */
static int opt_psk_file(struct config *cfg, const struct config_line *ln)
{
	char *dst = cfg->per_listener_settings && cfg->listener_count > 0
	                    ? cfg->listeners[cfg->listener_count - 1].auth.psk_file
	                    : cfg->psk_file;

	cfg->security_seen = true;
	return copy_str(ln, dst, PATH_MAX, ln->rest);
}

static const struct {
	const char *name;
	int (*parse)(struct config *cfg, const struct config_line *ln);
} listener_options[] = {
        {"mount_point", opt_mount_point},     {"bind_interface", opt_bind_interface},
        {"socket_domain", opt_socket_domain}, {"max_connections", opt_max_connections},
        {"http_dir", opt_http_dir},           {"psk_hint", opt_psk_hint},
        {"psk_file", opt_psk_file},
};

int config_listener_option(struct config *cfg, const struct config_line *ln)
{
	for (size_t i = 0; i < sizeof(listener_options) / sizeof(listener_options[0]); i++)
		if (strcmp(ln->name, listener_options[i].name) == 0)
			return listener_options[i].parse(cfg, ln);
	return lfail(ln, "not a listener option"); /* a programmer error in config.c's table */
}
