/*
 * Topic mapping of a bridge (topicmap.h). A bridge has a handful of `topic` rules, so each
 * mapping is a linear scan with the codec's reference matcher (st_topic_matches) and two
 * memcpy; the filters were joined, checked and measured when the configuration was read.
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
		subs[n].len = local ? t->local_topic_len : t->remote_topic_len;
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

/* A string and its length (the config keeps both). */
struct part {
	const char *s;
	size_t len;
};

/* topic without `strip` (if it starts with it), with `add` in front, into buf. */
static long rename_topic(struct part strip, struct part add, const uint8_t *topic, size_t len,
                         uint8_t *buf, size_t cap)
{
	if (strip.len <= len && memcmp(topic, strip.s, strip.len) == 0) {
		topic += strip.len;
		len -= strip.len;
	}
	if (add.len + len == 0)
		return BRIDGE_MAP_EMPTY;
	if (add.len + len > cap || add.len + len > TOPIC_MAX)
		return BRIDGE_MAP_TOO_LONG;
	memcpy(buf, add.s, add.len);
	memcpy(buf + add.len, topic, len);
	return (long)(add.len + len);
}

/* out: local -> remote by the out/both rules; else remote -> local by the in/both rules. */
static long map_topic(const struct config_bridge *b, bool out, const uint8_t *topic, size_t len,
                      uint8_t *buf, size_t cap)
{
	static const struct part none = {"", 0};
	uint8_t dir = out ? CONFIG_BRIDGE_OUT : CONFIG_BRIDGE_IN;
	bool unchanged = false;

	for (unsigned i = 0; i < b->topic_count; i++) {
		const struct config_bridge_topic *t = &b->topics[i];
		struct part local = {t->local_prefix, t->local_prefix_len};
		struct part remote = {t->remote_prefix, t->remote_prefix_len};
		const char *f = out ? t->local_topic : t->remote_topic;
		size_t flen = out ? t->local_topic_len : t->remote_topic_len;

		if ((t->dir & dir) == 0 || !st_topic_matches((const uint8_t *)f, flen, topic, len))
			continue;
		if (local.len != 0 || remote.len != 0)
			return out ? rename_topic(local, remote, topic, len, buf, cap)
			           : rename_topic(remote, local, topic, len, buf, cap);
		unchanged = true;
	}
	return unchanged ? rename_topic(none, none, topic, len, buf, cap) : BRIDGE_MAP_NONE;
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
