/*
 * Encoding of the packets the broker sends, straight into a connection's output buffer. The
 * PUBLISH encoder is the fan-out hot path: one reserve, the head written in place, the payload
 * copied (or spliced by reference when large); no allocation in the common case.
 */
#ifndef STARLING_OUT_H
#define STARLING_OUT_H

#include <stdbool.h>
#include <stdint.h>

#include "index/msg.h"
#include "starling/codec.h"

struct conn;

/* A PUBLISH's shared parts: views, and the message holding them once promoted. */
struct pub_view {
	struct st_bytes topic;   /* topic name */
	struct st_bytes props;   /* MQTT 5 properties forwarded from the publisher */
	struct st_bytes payload; /* application payload */
	struct msg *m;           /* holder of the bytes, or NULL if they are a receive buffer's */
	uint64_t expiry_ms;      /* monotonic expiry (MQTT 5 Message Expiry Interval), 0: never */
	uint64_t topic_hash;     /* XXH3 of the topic once computed (outbound aliases) */
	bool hashed;             /* topic_hash is set */
	uint64_t origin;         /* QoS 2 from a durable session: its origin number (persist.h) */
	uint16_t osrc;           /* ... and the worker that gave it */
};

static inline struct pub_view pub_view_of(struct msg *m)
{
	return (struct pub_view){
	        .topic = {msg_topic(m), m->topic_len},
	        .props = {msg_props(m), m->props_len},
	        .payload = {msg_payload(m), m->payload_len},
	        .m = m,
	        .expiry_ms = m->expiry_ms,
	        .origin = m->origin,
	        .osrc = m->osrc,
	};
}

/* The per-subscriber MQTT 5 parts of a PUBLISH: subscription identifiers. */
struct pub_extra {
	uint32_t sub_id;      /* first subscription identifier, 0: none */
	uint16_t nmore;       /* further identifiers */
	const uint32_t *more; /* borrowed */
};

/*
 * Queues a PUBLISH with `flags` (ST_PUBLISH_FLAG_*) and pid (qos > 0); x (may be NULL) adds
 * MQTT 5 subscription identifiers. For an MQTT 5 client the remaining Message Expiry Interval
 * and a topic alias are added as well. ST_OK or ST_ERR_NOMEM.
 */
int out_publish(struct conn *c, struct pub_view *v, uint8_t flags, uint16_t pid,
                const struct pub_extra *x);

/* out_publish for a 3.1/3.1.1 client: no properties. The fan-out hot path. */
int out_publish3(struct conn *c, const struct pub_view *v, uint8_t flags, uint16_t pid);

/* Bytes out_publish3 queues at most. */
static inline uint64_t out_publish3_size(const struct pub_view *v)
{
	return ST_PUBLISH_HEAD_MAX + (uint64_t)v->topic.len + v->payload.len;
}

/* The exact size of the PUBLISH out_publish would write for v on MQTT 5 connection c. */
uint64_t out_publish5_exact_size(struct conn *c, struct pub_view *v, const struct pub_extra *x,
                                 uint8_t qos);

/* The exact size of the PUBLISH out_publish3 would write for v on 3.x connection c. */
uint64_t out_publish3_exact_size(const struct conn *c, const struct pub_view *v, uint8_t qos);

/* Bytes out_publish would queue at most for v on c (the output bound). */
uint64_t out_publish_size(const struct conn *c, const struct pub_view *v,
                          const struct pub_extra *x);

/* PUBACK, PUBREC, PUBREL, PUBCOMP; reason is sent to MQTT 5 clients when not 0. */
void out_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason);

/* The same with a Reason String for MQTT 5 clients that accept problem information. */
void out_ack_why(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason, const char *why);
void out_connack(struct conn *c, bool session_present, uint8_t code);
void out_pingresp(struct conn *c);

/*
 * Starts a SUBACK (or UNSUBACK) for `count` filters. Returns the offset in c->out of the first
 * code byte, which the caller fills in with out_code_set(); or a negative st_err.
 */
int64_t out_suback_begin(struct conn *c, uint8_t type, uint16_t pid, uint32_t count);
void out_code_set(struct conn *c, int64_t off, uint32_t i, uint8_t code);

/* An UNSUBACK without reason codes (3.x). */
void out_unsuback(struct conn *c, uint16_t pid);

/* What an MQTT 5 CONNACK carries besides the flags and the code. */
struct connack5 {
	struct st_bytes assigned_id;   /* Assigned Client Identifier, empty: none */
	uint16_t server_keepalive_s;   /* Server Keep Alive */
	bool send_server_keepalive;    /* include Server Keep Alive */
	uint16_t receive_max;          /* the broker's Receive Maximum */
	uint16_t topic_alias_max;      /* the broker's Topic Alias Maximum */
	uint32_t max_packet;           /* the broker's Maximum Packet Size, 0: none */
	bool retain_unavailable;       /* Retain Available 0 */
	bool send_max_qos;             /* include Maximum QoS (max_qos below 2) */
	uint8_t max_qos;               /* Maximum QoS: 0 or 1 */
	struct st_bytes response_info; /* Response Information, empty: none */
	struct st_bytes reason_string; /* Reason String (a refusal's why), empty: none */
};

/* An MQTT 5 CONNACK with properties. */
void out_connack5(struct conn *c, bool session_present, uint8_t code, const struct connack5 *p);

/* An MQTT 5 DISCONNECT with reason code and, if why, a Reason String (nothing for 3.x). */
void out_disconnect(struct conn *c, uint8_t reason, const char *why);

#endif
