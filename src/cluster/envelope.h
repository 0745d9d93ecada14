/*
 * What a PUBLISH carries from one node to another besides its topic (the subject says that,
 * subject.h): QoS, retain, the publisher's protocol level, the origin node's id and the MQTT 5
 * properties. They travel as a small binary head in front of the payload inside the NATS
 * message, not as NATS headers: libnats builds a header map per message (natsMsg_Create,
 * natsMsgHeader_Set copy every key and value; natsMsgHeader_Get parses the block into a hash
 * map) and shows no raw header block, while a head in the payload is written once and read in
 * place from natsMsg_GetData, and the properties stay in MQTT's own encoding (binary
 * Correlation Data included, which a text header could only carry re-encoded).
 * kernel-notes/cluster.md compares the two.
 *
 * Layout (version 1), integers big-endian as in MQTT:
 *   0  0xC0 0x53        magic: 0xC0 never occurs in UTF-8 text, so a plain NATS message
 *                       published by a foreign client on a cluster subject is refused
 *   2  1                version; a node refuses any other (a cluster runs one version)
 *   3  flags            bits 0-1 QoS (0..2), bit 2 retain, bits 3-7 zero
 *   4  level            publisher's protocol level: 3 (3.1), 4 (3.1.1), 5 (5.0)
 *   5  n                origin node id length, 1..CLUSTER_NODE_ID_MAX
 *   6  id[n]            origin node id: printable ASCII, no space (loop prevention, logs)
 *      varint L         MQTT variable byte integer: property block length (0 below level 5)
 *      props[L]         the PUBLISH's MQTT 5 properties as the publisher sent them, less
 *                       Topic Alias (per connection) and Subscription Identifier (per
 *                       subscriber); validated with st_props_parse
 *      epoch[4]         the origin's incarnation (random at each start)
 *      lane[4]          the publisher's lane: messages of one lane are routed, on every
 *                       receiving node, by one worker, which keeps them in publisher order
 *      seq[8]           the origin's message number in this epoch, increasing: a node whose
 *                       overlapping NATS subscriptions each receive a copy keeps the first
 *      expiry[4]        what is left of the MQTT 5 Message Expiry Interval, in seconds
 *                       (rounded up); 0: the message does not expire
 *      payload          the rest of the NATS message
 * The head costs 27 + n bytes plus the properties; it counts against NATS's max_payload (1 MiB
 * by default) with the payload.
 */
#ifndef STARLING_CLUSTER_ENVELOPE_H
#define STARLING_CLUSTER_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

#define CLUSTER_ENV_VERSION 1
#define CLUSTER_NODE_ID_MAX 255
/* The head's size without the node id and the properties: magic, version, flags, level, n, L. */
#define CLUSTER_ENV_FIXED 7
/* The fixed fields after the properties: epoch, lane, seq, expiry. */
#define CLUSTER_ENV_TAIL 20

/* A PUBLISH between nodes; every view borrows the caller's buffer. */
struct cluster_msg {
	uint8_t qos;            /* 0..2: the QoS it was published with */
	bool retain;            /* the publisher's retain flag */
	uint8_t level;          /* enum st_protocol_level of the publisher: 3, 4 or 5 */
	struct st_bytes origin; /* the origin node's id */
	struct st_bytes props;  /* MQTT 5 property block without its length; empty below 5 */
	uint32_t epoch;         /* the origin's incarnation */
	uint32_t lane;          /* the publisher's lane (order is kept per lane) */
	uint64_t seq;           /* the origin's message number in its epoch */
	uint32_t expiry_s;      /* Message Expiry Interval left, seconds; 0: none */
	struct st_bytes payload;
};

/* A node id: 1..CLUSTER_NODE_ID_MAX bytes of printable ASCII without space (0x21..0x7E). */
bool cluster_node_id_is_valid(const uint8_t *id, size_t len);

/* Bytes cluster_env_encode_head writes for m (m->payload not counted). */
size_t cluster_env_head_size(const struct cluster_msg *m);

/*
 * Writes the head of m (everything before the payload) into buf[0..cap), so that the caller
 * can send head and payload as two pieces without copying the payload. Returns the head's
 * size, or ST_ERR_NO_SPACE, or ST_ERR_PROTOCOL for a message that has no encoding (QoS above
 * 2, a level other than 3..5, an invalid origin, properties below level 5 or longer than an
 * MQTT varint can say). Properties are the caller's to have stripped and validated.
 */
long cluster_env_encode_head(const struct cluster_msg *m, uint8_t *buf, size_t cap);

/*
 * Decodes a NATS message's data buf[0..len) (borrowed) into *out, whose views point into buf.
 * Returns ST_OK, or: ST_ERR_LENGTH (shorter than its head says), ST_ERR_PROTOCOL (no magic,
 * another version, reserved flag bits, a level other than 3..5, an invalid origin, properties
 * below level 5), ST_ERR_QOS (QoS 3), ST_ERR_REMLEN (a property length varint longer than four
 * bytes), ST_ERR_PROPERTY_PACKET (Topic Alias or Subscription Identifier in the properties),
 * or what st_props_parse returns for a bad property block.
 */
int cluster_env_decode(const uint8_t *buf, size_t len, struct cluster_msg *out);

#endif
