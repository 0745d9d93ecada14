/*
 * The two bridge lines with a grammar of their own: `topic` and `address` (config_bridge.h).
 *
 * topic PATTERN [in|out|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]], as mosquitto 2.0.11 reads
 * it: the direction defaults to out and is read without regard to case, the QoS to 0; the
 * word `""` is the empty place marker, for a prefix or for the pattern itself. The valid
 * combinations are mosquitto.conf(5)'s table: an empty pattern needs both prefixes (it remaps
 * one topic), anything else is valid. A prefix must be a topic name (no + or #), as Mosquitto
 * checks, and each prefix joined to the pattern must be a topic filter, which Mosquitto checks
 * only when a prefix is given ("topic a#b" passes its parser and fails at run time); Starling
 * checks it always.
 *
 * address HOST[:PORT] [HOST[:PORT] ...]: the port is what follows the last ':' (1..65535,
 * 1883 if absent), so an IPv6 address needs its port ("::1:1883"), as in Mosquitto. Starling
 * refuses an IPv6 address given without one instead of reading its last group as the port,
 * and also takes "[::1]:1883" and "[::1]". A word starting with '#' ends the list (Mosquitto's
 * comment rule for this line).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_bridge_parse.h"
#include "starling/error.h"
#include "starling/topic.h"
#include "starling/utf8.h"

#define TOPIC_MAX 65535 /* an MQTT string */

static bool is_marker(const char *s)
{
	return strcmp(s, "\"\"") == 0;
}

static int parse_dir(const char *s, uint8_t *dir, const struct bwhere *at)
{
	if (strcasecmp(s, "out") == 0)
		*dir = CONFIG_BRIDGE_OUT;
	else if (strcasecmp(s, "in") == 0)
		*dir = CONFIG_BRIDGE_IN;
	else if (strcasecmp(s, "both") == 0)
		*dir = CONFIG_BRIDGE_BOTH;
	else
		return bridge_fail(at, "topic: bad direction \"%s\" (expected in, out or both)", s);
	return ST_OK;
}

/* A prefix: `""` (none) or a topic name; *out is a new string. */
static int parse_prefix(const char *s, const char *which, char **out, const struct bwhere *at)
{
	if (is_marker(s))
		s = "";
	else if (st_utf8_check((const uint8_t *)s, strlen(s)) != ST_OK ||
	         !st_topic_name_is_valid((const uint8_t *)s, strlen(s)))
		return bridge_fail(at, "topic: bad %s prefix \"%s\" (a topic name: no + or #)",
		                   which, s);
	*out = strdup(s);
	return *out != NULL ? ST_OK : bridge_fail(at, "out of memory");
}

/* prefix + pattern, checked to be a topic filter. */
static int join_filter(const char *prefix, const char *pattern, const char *which, char **out,
                       const struct bwhere *at)
{
	size_t lp = strlen(prefix), lt = strlen(pattern);

	if (lp + lt > TOPIC_MAX)
		return bridge_fail(at, "topic: the %s topic is longer than %d bytes", which,
		                   TOPIC_MAX);
	*out = malloc(lp + lt + 1);
	if (*out == NULL)
		return bridge_fail(at, "out of memory");
	memcpy(*out, prefix, lp);
	memcpy(*out + lp, pattern, lt + 1);
	if (!st_topic_filter_is_valid((const uint8_t *)*out, lp + lt))
		return bridge_fail(
		        at,
		        "topic: the %s prefix and the pattern make \"%s\", which is not a "
		        "topic filter",
		        which, *out);
	return ST_OK;
}

static void topic_free(struct config_bridge_topic *t)
{
	free(t->pattern);
	free(t->local_prefix);
	free(t->remote_prefix);
	free(t->local_topic);
	free(t->remote_topic);
	memset(t, 0, sizeof(*t));
}

static int topic_fill(struct config_bridge_topic *t, const char *const *v, unsigned n,
                      const struct bwhere *at)
{
	const char *pat = is_marker(v[0]) ? "" : v[0];
	int rc = ST_OK;

	t->dir = CONFIG_BRIDGE_OUT;
	if (st_utf8_check((const uint8_t *)pat, strlen(pat)) != ST_OK)
		return bridge_fail(at, "topic: the pattern is not valid UTF-8");
	if ((t->pattern = strdup(pat)) == NULL)
		return bridge_fail(at, "out of memory");
	if (n > 1)
		rc = parse_dir(v[1], &t->dir, at);
	if (rc == ST_OK && n > 2) {
		if (strlen(v[2]) != 1 || v[2][0] < '0' || v[2][0] > '2')
			return bridge_fail(at, "topic: bad QoS \"%s\" (expected 0, 1 or 2)", v[2]);
		t->qos = (uint8_t)(v[2][0] - '0');
	}
	if (rc == ST_OK)
		rc = parse_prefix(n > 3 ? v[3] : "\"\"", "local", &t->local_prefix, at);
	if (rc == ST_OK)
		rc = parse_prefix(n > 4 ? v[4] : "\"\"", "remote", &t->remote_prefix, at);
	if (rc != ST_OK)
		return rc;
	if (pat[0] == '\0' && (t->local_prefix[0] == '\0' || t->remote_prefix[0] == '\0'))
		return bridge_fail(
		        at, "topic: an empty pattern (\"\") needs a local and a remote prefix "
		            "(it maps the one topic LOCAL_PREFIX to REMOTE_PREFIX; "
		            "mosquitto.conf(5)'s table)");
	rc = join_filter(t->local_prefix, pat, "local", &t->local_topic, at);
	if (rc == ST_OK)
		rc = join_filter(t->remote_prefix, pat, "remote", &t->remote_topic, at);
	if (rc != ST_OK)
		return rc;
	/* join_filter bounded each join, so each part, to TOPIC_MAX. */
	t->local_prefix_len = (uint16_t)strlen(t->local_prefix);
	t->remote_prefix_len = (uint16_t)strlen(t->remote_prefix);
	t->local_topic_len = (uint16_t)strlen(t->local_topic);
	t->remote_topic_len = (uint16_t)strlen(t->remote_topic);
	return ST_OK;
}

int config_bridge_topic(struct config_bridge *b, const char *const *v, unsigned n,
                        const struct bwhere *at)
{
	struct config_bridge_topic t, *grown;
	int rc;

	if (n == 0)
		return bridge_fail(at, "topic: missing pattern");
	if (n > 5)
		return bridge_fail(at, "topic: unexpected extra value \"%s\"", v[5]);
	memset(&t, 0, sizeof(t));
	rc = topic_fill(&t, v, n, at);
	if (rc == ST_OK) {
		/* Topics are few and read once: growing by one keeps this simple. */
		grown = realloc(b->topics, (b->topic_count + 1) * sizeof(*grown));
		if (grown == NULL)
			rc = bridge_fail(at, "out of memory");
		else
			b->topics = grown;
	}
	if (rc != ST_OK) {
		topic_free(&t);
		return rc;
	}
	b->topics[b->topic_count++] = t;
	return ST_OK;
}

static bool is_ipv6(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, s, &a) == 1;
}

static bool prefix_is_ipv6(const char *s, size_t len)
{
	char host[INET6_ADDRSTRLEN + 1];

	if (len >= sizeof(host))
		return false;
	memcpy(host, s, len);
	host[len] = '\0';
	return is_ipv6(host);
}

static int parse_port(const char *s, uint16_t *port, const struct bwhere *at)
{
	uint32_t p;

	if (bridge_parse_u32(s, 65535, &p) != 0 || p == 0)
		return bridge_fail(at, "address: bad port \"%s\" (1..65535)", s);
	*port = (uint16_t)p;
	return ST_OK;
}

static int set_host(struct config_bridge_addr *a, const char *host, size_t len,
                    const struct bwhere *at)
{
	if (len == 0)
		return bridge_fail(at, "address: no host before the port");
	if (len >= sizeof(a->host))
		return bridge_fail(at, "address: host longer than %zu bytes", sizeof(a->host) - 1);
	memcpy(a->host, host, len);
	a->host[len] = '\0';
	if (memchr(host, ':', len) != NULL && !is_ipv6(a->host))
		return bridge_fail(at, "address: \"%s\" is neither a host name nor an IPv6 address",
		                   a->host);
	return ST_OK;
}

/* "[v6]" or "[v6]:PORT". */
static int parse_bracketed(struct config_bridge_addr *a, const char *w, const struct bwhere *at)
{
	const char *close = strchr(w, ']');
	int rc;

	if (close == NULL || (close[1] != '\0' && close[1] != ':'))
		return bridge_fail(at, "address: bad address \"%s\"", w);
	rc = set_host(a, w + 1, (size_t)(close - w - 1), at);
	if (rc == ST_OK && !is_ipv6(a->host))
		return bridge_fail(at, "address: \"%s\" is not an IPv6 address", a->host);
	a->port = 1883;
	return rc == ST_OK && close[1] == ':' ? parse_port(close + 2, &a->port, at) : rc;
}

static int parse_address(struct config_bridge_addr *a, const char *w, const struct bwhere *at)
{
	const char *colon = strrchr(w, ':');
	int rc;

	if (w[0] == '[')
		return parse_bracketed(a, w, at);
	if (colon == NULL) {
		a->port = 1883;
		return set_host(a, w, strlen(w), at);
	}
	/* A whole IPv6 address without a port: "fe80::1" would read as host "fe80:" and port 1,
	 * which is what Mosquitto does. With a port, what is left of the last ':' is an IPv6
	 * address too ("::1:1883"). */
	if (is_ipv6(w) && !prefix_is_ipv6(w, (size_t)(colon - w)))
		return bridge_fail(
		        at,
		        "address: the IPv6 address \"%s\" needs a port (ADDRESS:PORT, e.g. "
		        "::1:1883: Mosquitto reads what follows the last ':' as the port)",
		        w);
	rc = set_host(a, w, (size_t)(colon - w), at);
	return rc == ST_OK ? parse_port(colon + 1, &a->port, at) : rc;
}

int config_bridge_addresses(struct config_bridge *b, const char *name, const char *const *v,
                            unsigned n, const struct bwhere *at)
{
	unsigned count = 0;
	int rc;

	if (b->addr_count > 0)
		return bridge_fail(at,
		                   "%s: a second address line in this connection block (give every "
		                   "address on one line; Mosquitto refuses it too)",
		                   name);
	for (unsigned i = 0; i < n && v[i][0] != '#'; i++) {
		if (count == CONFIG_BRIDGE_ADDRS_MAX)
			return bridge_fail(at, "%s: more than %d addresses", name,
			                   CONFIG_BRIDGE_ADDRS_MAX);
		rc = parse_address(&b->addrs[count], v[i], at);
		if (rc != ST_OK)
			return rc;
		count++;
	}
	if (count == 0)
		return bridge_fail(at, "%s: missing value", name);
	b->addr_count = count;
	return ST_OK;
}
