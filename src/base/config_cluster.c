/*
 * The cluster options (config_cluster.h). The URL list is checked here as far as a NATS client
 * would refuse it later, when the broker runs and the error has lost its file and line: the
 * scheme (nats:// or tls://), a host, a port in range.
 */
#include "config_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_bridge_parse.h"
#include "starling/error.h"

/* One value copied into dst[0..size) with its NUL. */
static int cl_string(const char *name, unsigned n, const char *const *v, char *dst, size_t size,
                     const struct bwhere *at)
{
	int rc = bridge_one_value(name, n, v, at);
	size_t len;

	if (rc != ST_OK)
		return rc;
	len = strlen(v[0]);
	if (len >= size)
		return bridge_fail(at, "%s: value longer than %zu bytes", name, size - 1);
	memcpy(dst, v[0], len + 1);
	return ST_OK;
}

/* "nats://HOST:PORT" or "tls://HOST:PORT", [user:pass@] allowed as NATS URLs allow it. */
static int cl_check_url(const char *url, size_t len, const struct bwhere *at)
{
	const char *p = url, *end = url + len, *colon = NULL, *host;
	uint32_t port;
	char digits[8];

	if (len > 7 && memcmp(p, "nats://", 7) == 0)
		p += 7;
	else if (len > 6 && memcmp(p, "tls://", 6) == 0)
		p += 6;
	else
		return bridge_fail(at,
		                   "cluster_nats_url: \"%.*s\" is not a NATS URL (nats://HOST:PORT "
		                   "or tls://HOST:PORT)",
		                   (int)len, url);
	host = memchr(p, '@', (size_t)(end - p));
	host = host ? host + 1 : p;
	for (const char *q = host; q < end; q++)
		if (*q == ':')
			colon = q;
	if (host[0] == '[' && colon && colon[-1] != ']')
		colon = NULL; /* an IPv6 address without a port */
	if (!colon || colon == host)
		return bridge_fail(at, "cluster_nats_url: \"%.*s\" needs a host and a port",
		                   (int)len, url);
	if ((size_t)(end - colon - 1) >= sizeof(digits) || end == colon + 1)
		return bridge_fail(at, "cluster_nats_url: \"%.*s\": bad port", (int)len, url);
	memcpy(digits, colon + 1, (size_t)(end - colon - 1));
	digits[end - colon - 1] = '\0';
	if (bridge_parse_u32(digits, 65535, &port) != 0 || port == 0)
		return bridge_fail(at, "cluster_nats_url: \"%.*s\": bad port", (int)len, url);
	return ST_OK;
}

static int cl_urls(struct config_cluster *c, unsigned n, const char *const *v,
                   const struct bwhere *at)
{
	const char *s, *comma;
	int rc = cl_string("cluster_nats_url", n, v, c->urls, sizeof(c->urls), at);

	if (rc != ST_OK)
		return rc;
	c->nurls = 0;
	for (s = c->urls;; s = comma + 1) {
		comma = strchr(s, ',');
		if (!comma)
			comma = s + strlen(s);
		if (comma == s)
			return bridge_fail(at, "cluster_nats_url: an empty URL in the list");
		rc = cl_check_url(s, (size_t)(comma - s), at);
		if (rc != ST_OK)
			return rc;
		if (++c->nurls > CONFIG_CLUSTER_URLS_MAX)
			return bridge_fail(at, "cluster_nats_url: more than %d URLs",
			                   CONFIG_CLUSTER_URLS_MAX);
		if (*comma == '\0')
			break;
	}
	return ST_OK;
}

int config_cluster_parse(struct config *cfg, const char *name, const char *const *v, unsigned n,
                         const char *path, unsigned line, char *err, size_t errlen)
{
	const struct bwhere at = {path, line, err, errlen};
	struct config_cluster *c = &cfg->cluster;

	if (strncmp(name, "cluster_", 8) != 0)
		return CONFIG_CLUSTER_NOT_MINE;
	if (strcmp(name, "cluster_nats_url") == 0)
		return cl_urls(c, n, v, &at);
	if (strcmp(name, "cluster_nats_user") == 0)
		return cl_string(name, n, v, c->user, sizeof(c->user), &at);
	if (strcmp(name, "cluster_nats_password") == 0)
		return cl_string(name, n, v, c->password, sizeof(c->password), &at);
	if (strcmp(name, "cluster_nats_cafile") == 0)
		return cl_string(name, n, v, c->cafile, sizeof(c->cafile), &at);
	if (strcmp(name, "cluster_nats_certfile") == 0)
		return cl_string(name, n, v, c->certfile, sizeof(c->certfile), &at);
	if (strcmp(name, "cluster_nats_keyfile") == 0)
		return cl_string(name, n, v, c->keyfile, sizeof(c->keyfile), &at);
	if (strcmp(name, "cluster_name") == 0)
		return cl_string(name, n, v, c->name, sizeof(c->name), &at);
	if (strcmp(name, "cluster_node_id") == 0)
		return cl_string(name, n, v, c->node_id, sizeof(c->node_id), &at);
	return CONFIG_CLUSTER_NOT_MINE;
}

int config_cluster_finish(struct config *cfg, char *err, size_t errlen)
{
	const struct config_cluster *c = &cfg->cluster;
	const char *why = NULL;

	if (!c->urls[0]) {
		if (c->user[0] || c->password[0] || c->cafile[0] || c->certfile[0] ||
		    c->keyfile[0] || c->name[0] || c->node_id[0])
			why = "cluster options without cluster_nats_url";
	} else if (!c->user[0] != !c->password[0]) {
		why = "cluster_nats_user and cluster_nats_password go together";
	} else if (!c->certfile[0] != !c->keyfile[0]) {
		why = "cluster_nats_certfile and cluster_nats_keyfile go together";
	}
	if (!why)
		return ST_OK;
	snprintf(err, errlen, "%s", why);
	return ST_ERR_CONFIG;
}

int config_cluster_url(const struct config_cluster *c, unsigned i, char *buf, size_t cap)
{
	const char *s = c->urls, *comma;
	size_t len;

	for (; i > 0 && s; i--) {
		s = strchr(s, ',');
		if (s)
			s++;
	}
	if (!s)
		return -1;
	comma = strchr(s, ',');
	len = comma ? (size_t)(comma - s) : strlen(s);
	if (len >= cap)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return (int)len;
}
