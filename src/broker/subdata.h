/*
 * What the broker stores in the subscription index's 64 data bits for each subscription:
 * granted QoS and MQTT 5 options in the low byte (the SUBSCRIBE options byte with QoS replaced
 * by the granted one), SUBDATA_SHARED for a shared group's entry, and the subscription
 * identifier in the high 32 bits.
 */
#ifndef STARLING_SUBDATA_H
#define STARLING_SUBDATA_H

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
