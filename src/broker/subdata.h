/*
 * What the broker stores in the subscription index's 64 data bits for each subscription:
 * granted QoS and MQTT 5 options in the low byte (the SUBSCRIBE options byte with QoS replaced
 * by the granted one), SUBDATA_SHARED for a shared group's entry, and the subscription
 * identifier in the high 32 bits.
 */
#ifndef STARLING_SUBDATA_H
#define STARLING_SUBDATA_H

#include <stdbool.h>
#include <stdint.h>

#include "starling/codec.h"

/* The index entry is a shared subscription group (its subscriber is a struct share_group). */
#define SUBDATA_SHARED (1ull << 16)
/* The ACL lets the subscriber read some of the topics the filter matches, not all: each
 * delivery asks access_can() (access.h). Never set without an acl_file. */
#define SUBDATA_ACL (1ull << 17)

static inline uint64_t subdata_make(uint8_t options, uint32_t sub_id)
{
	return (uint64_t)options | ((uint64_t)sub_id << 32);
}

/*
 * The options a bridge's 3.x subscription is kept with (a CONNECT level with the private bit,
 * codec.h): what Mosquitto gives its bridges, a 5.0 subscription's No Local (what the bridge
 * sent is not sent back to it, so two brokers bridged both ways do not ping-pong) and Retain
 * As Published (retained state crosses the bridge as retained). Not No Local on a shared
 * subscription, where MQTT 5 forbids it [MQTT-3.8.3-4] and Mosquitto does not apply it;
 * Retain Handling stays 0, retained messages are sent at every SUBSCRIBE as to 3.x clients.
 */
static inline uint8_t subdata_bridge_options(uint8_t options, bool shared)
{
	return (uint8_t)(options | ST_SUBOPT_RETAIN_AS_PUB | (shared ? 0 : ST_SUBOPT_NO_LOCAL));
}

static inline uint8_t subdata_qos(uint64_t d)
{
	return (uint8_t)(d & ST_SUBOPT_QOS_MASK);
}

static inline uint8_t subdata_options(uint64_t d)
{
	return (uint8_t)(d & 0xff);
}

static inline uint32_t subdata_sub_id(uint64_t d)
{
	return (uint32_t)(d >> 32);
}

#endif
