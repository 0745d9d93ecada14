/*
 * MQTT 5 topic aliases of one connection (MQTT 5.0 section 3.3.2.3.4).
 *
 * Inbound: the client maps aliases 1..max (max: the broker's Topic Alias Maximum) to topics;
 * the table is allocated on first use. Outbound: the broker gives aliases to the first
 * distinct topics it sends, up to the client's Topic Alias Maximum, and keeps them for the
 * connection's life: a telemetry client usually receives a small, stable set of topics, so
 * this simple policy catches the common case with one hash probe per delivery and no
 * eviction bookkeeping; topics past the limit go out in full.
 */
#ifndef STARLING_ALIAS_H
#define STARLING_ALIAS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/hmap.h"
#include "starling/codec.h"

struct alias_in {
	uint8_t **topics; /* alias - 1 -> owned copy, or NULL while unset */
	uint16_t *lens;   /* their lengths */
	uint16_t max;     /* aliases the client may use (the broker's maximum) */
};

struct alias_out {
	struct hmap map; /* topic hash -> struct alias_entry */
	uint16_t max;    /* aliases the client accepts; 0: none */
	uint16_t used;   /* aliases assigned */
};

/* Maps alias (1..max) to topic (copied). ST_OK, ST_ERR_TOPIC_ALIAS, ST_ERR_NOMEM. */
int alias_in_set(struct alias_in *a, uint16_t alias, struct st_bytes topic);

/* The topic of alias, or ST_ERR_TOPIC_ALIAS if out of range, ST_ERR_PROTOCOL if unset. */
int alias_in_get(const struct alias_in *a, uint16_t alias, struct st_bytes *topic);

void alias_in_free(struct alias_in *a);

/*
 * The alias to send topic (whose XXH3 hash is `hash`) with: 0 for none. *fresh says that the
 * alias is new and the topic must go along this time.
 */
uint16_t alias_out_get(struct alias_out *a, struct st_bytes topic, uint64_t hash, bool *fresh);

/* What alias_out_get would answer, without assigning anything. */
uint16_t alias_out_peek(const struct alias_out *a, struct st_bytes topic, uint64_t hash,
                        bool *fresh);

void alias_out_free(struct alias_out *a);

#endif
