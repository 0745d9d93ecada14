/*
 * Topic mapping of a bridge (topicmap.h). A bridge has a handful of `topic` rules, so each
 * mapping is a linear scan with the codec's reference matcher (st_topic_matches) and two
 * memcpy; the filters were joined and checked when the configuration was read.
 */
#include "topicmap.h"

#include <string.h>

#include "starling/topic.h"

#define TOPIC_MAX 65535 /* an MQTT string */

static unsigned list_subs(const struct config_bridge *b, uint8_t dir, bool local,
                          struct bridge_sub *subs, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->topic_count; i++) {
		const struct config_bridge_topic *t = &b->topics[i];
		const char *f = local ? t->local_topic : t->remote_topic;
		unsigned j;

		if ((t->dir & dir) == 0)
			continue;
		for (j = 0; j < n && strcmp(subs[j].filter, f) != 0; j++)
			;
		if (j < n) {
			subs[j].qos = t->qos; /* a later SUBSCRIBE replaces the QoS */
			continue;
		}
		if (n == max)
			continue;
		subs[n].filter = f;
		subs[n].len = strlen(f);
		subs[n].qos = t->qos;
		n++;
	}
	return n;
}

static bool remote_subscribed(const struct config_bridge *b, const char *f)
{
	for (unsigned i = 0; i < b->topic_count; i++)
		if ((b->topics[i].dir & CONFIG_BRIDGE_IN) &&
		    strcmp(b->topics[i].remote_topic, f) == 0)
			return true;
	return false;
}

unsigned bridge_remote_unsubs(const struct config_bridge *b, struct bridge_sub *subs, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->topic_count; i++) {
		const char *f = b->topics[i].remote_topic;
		unsigned j;

		if (b->topics[i].dir != CONFIG_BRIDGE_OUT || remote_subscribed(b, f))
			continue;
		for (j = 0; j < n && strcmp(subs[j].filter, f) != 0; j++)
			;
		if (j < n || n == max)
			continue;
		subs[n].filter = f;
		subs[n].len = strlen(f);
		subs[n].qos = 0;
		n++;
	}
	return n;
}

unsigned bridge_local_subs(const struct config_bridge *b, struct bridge_sub *subs, unsigned max)
{
	return list_subs(b, CONFIG_BRIDGE_OUT, true, subs, max);
}

unsigned bridge_remote_subs(const struct config_bridge *b, struct bridge_sub *subs, unsigned max)
{
	return list_subs(b, CONFIG_BRIDGE_IN, false, subs, max);
}

/* topic without `strip` (if it starts with it), with `add` in front, into buf. */
static long rename_topic(const char *strip, const char *add, const uint8_t *topic, size_t len,
                         uint8_t *buf, size_t cap)
{
	size_t ls = strlen(strip), la = strlen(add);

	if (ls <= len && memcmp(topic, strip, ls) == 0) {
		topic += ls;
		len -= ls;
	}
	if (la + len == 0)
		return BRIDGE_MAP_EMPTY;
	if (la + len > cap || la + len > TOPIC_MAX)
		return BRIDGE_MAP_TOO_LONG;
	memcpy(buf, add, la);
	memcpy(buf + la, topic, len);
	return (long)(la + len);
}

/* out: local -> remote by the out/both rules; else remote -> local by the in/both rules. */
static long map_topic(const struct config_bridge *b, bool out, const uint8_t *topic, size_t len,
                      uint8_t *buf, size_t cap)
{
	uint8_t dir = out ? CONFIG_BRIDGE_OUT : CONFIG_BRIDGE_IN;
	bool unchanged = false;

	for (unsigned i = 0; i < b->topic_count; i++) {
		const struct config_bridge_topic *t = &b->topics[i];
		const char *from = out ? t->local_prefix : t->remote_prefix;
		const char *to = out ? t->remote_prefix : t->local_prefix;
		const char *f = out ? t->local_topic : t->remote_topic;

		if ((t->dir & dir) == 0 ||
		    !st_topic_matches((const uint8_t *)f, strlen(f), topic, len))
			continue;
		if (from[0] != '\0' || to[0] != '\0')
			return rename_topic(from, to, topic, len, buf, cap);
		unchanged = true;
	}
	return unchanged ? rename_topic("", "", topic, len, buf, cap) : BRIDGE_MAP_NONE;
}

long bridge_map_out(const struct config_bridge *b, const uint8_t *topic, size_t len, uint8_t *buf,
                    size_t cap)
{
	return map_topic(b, true, topic, len, buf, cap);
}

long bridge_map_in(const struct config_bridge *b, const uint8_t *topic, size_t len, uint8_t *buf,
                   size_t cap)
{
	return map_topic(b, false, topic, len, buf, cap);
}
