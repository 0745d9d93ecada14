/*
 * Encoding of the packets the broker sends, straight into a connection's output buffer. The
 * PUBLISH encoder is the fan-out hot path: one reserve, the head written in place, the payload
 * copied (or spliced by reference when large); no allocation in the common case.
 */
#ifndef STARLING_OUT_H
#define STARLING_OUT_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "starling/codec.h"

struct conn;

/* A PUBLISH's shared parts: views, and the message holding them once promoted. */
struct pub_view {
	struct st_bytes topic;   /* topic name */
	struct st_bytes props;   /* MQTT 5 properties forwarded from the publisher */
	struct st_bytes payload; /* application payload */
	struct msg *m;           /* holder of the bytes, or NULL if they are a receive buffer's */
};

static inline struct pub_view pub_view_of(struct msg *m)
{
	return (struct pub_view){
	        .topic = {msg_topic(m), m->topic_len},
	        .props = {msg_props(m), m->props_len},
	        .payload = {msg_payload(m), m->payload_len},
	        .m = m,
	};
}

/* Queues a PUBLISH with `flags` (ST_PUBLISH_FLAG_*) and pid (qos > 0). ST_OK or NOMEM. */
int out_publish(struct conn *c, const struct pub_view *v, uint8_t flags, uint16_t pid);

/* Bytes out_publish would queue for v on c (for the output bound). */
uint64_t out_publish_size(const struct conn *c, const struct pub_view *v);

/* PUBACK, PUBREC, PUBREL, PUBCOMP; reason is sent to MQTT 5 clients when not 0. */
void out_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason);
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

#endif
