/*
 * Topic mapping of a bridge (mosquitto.conf(5), `topic`): which filters the bridge subscribes
 * to on each side, and how a topic is renamed as a message crosses. Protocol-free: it reads a
 * struct config_bridge and writes into the caller's buffers; nothing here allocates, so the
 * per-message calls (bridge_map_out, bridge_map_in) cost a scan of the bridge's few rules.
 *
 * Rule precedence is mosquitto 2.0.11's: a message is renamed by the first rule of its
 * direction, in file order, that has a prefix and whose filter matches; a rule without
 * prefixes renames nothing, so it passes the topic on unchanged only when no renaming rule
 * matches. Like Mosquitto, a prefix is removed only when the topic starts with it: a filter
 * "R/#" also matches "R" itself, which keeps its name and gets the other prefix ("L/R").
 */
#ifndef STARLING_BRIDGE_TOPICMAP_H
#define STARLING_BRIDGE_TOPICMAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/config_bridge.h"

/* A subscription a bridge makes: a filter of the config (borrowed) and its QoS. */
struct bridge_sub {
	const char *filter; /* NUL-terminated, valid filter; points into the config_bridge */
	size_t len;         /* strlen(filter) */
	uint8_t qos;        /* 0..2 */
};

/*
 * The subscriptions the bridge makes on the local broker (out and both rules: local_prefix +
 * pattern) or on the remote one (in and both rules: remote_prefix + pattern), into
 * subs[0..max). A filter named by several rules appears once, with the QoS of the last of
 * them: what subscribing to each in file order leaves, as Mosquitto does. Returns the count
 * (at most b->topic_count, and max).
 */
unsigned bridge_local_subs(const struct config_bridge *b, struct bridge_sub *subs, unsigned max);
unsigned bridge_remote_subs(const struct config_bridge *b, struct bridge_sub *subs, unsigned max);

/*
 * The remote filters to unsubscribe from after connecting when bridge_attempt_unsubscribe is
 * true: those of the out-only rules (so that a rule changed from in to out stops bringing
 * messages in, mosquitto.conf(5)), except a filter an in/both rule subscribes to (Mosquitto
 * sends its SUBSCRIBEs and UNSUBSCRIBEs in file order, where a later out rule would undo an
 * earlier in rule's subscription). subs[i].qos is 0. Returns the count.
 */
unsigned bridge_remote_unsubs(const struct config_bridge *b, struct bridge_sub *subs, unsigned max);

/* Results of the mappings besides a length. */
enum {
	BRIDGE_MAP_NONE = -1,     /* no rule of that direction matches the topic */
	BRIDGE_MAP_TOO_LONG = -2, /* the renamed topic does not fit buf (or an MQTT string) */
	BRIDGE_MAP_EMPTY = -3,    /* the renamed topic is empty ("L/" under prefix "L/", none) */
};

/*
 * The remote topic of a local message that an out/both rule sends (topic: a valid topic name,
 * borrowed). Writes it into buf[0..cap) without a NUL and returns its length, or one of the
 * BRIDGE_MAP_ values.
 */
long bridge_map_out(const struct config_bridge *b, const uint8_t *topic, size_t len, uint8_t *buf,
                    size_t cap);

/*
 * The local topic of a message received from the remote broker, by the in/both rules; as
 * bridge_map_out. BRIDGE_MAP_NONE happens when the remote sends a topic no in/both rule
 * subscribes to (a subscription a persistent remote session kept from an older
 * configuration): Mosquitto publishes such a message locally under its own name.
 */
long bridge_map_in(const struct config_bridge *b, const uint8_t *topic, size_t len, uint8_t *buf,
                   size_t cap);

#endif
