/*
 * A published application message, promoted once from the receive buffer into one refcounted
 * allocation: the struct, then the topic, the MQTT 5 properties that travel with it, and the
 * payload. Every holder (an inflight slot, a session queue, the retained store, a send that
 * references a large payload) owns one reference; the message is freed with the last.
 *
 * Messages are created only when needed: a QoS 0 message whose deliveries are all copied into
 * the subscribers' output buffers during the publish never becomes a struct msg.
 */
#ifndef STARLING_MSG_H
#define STARLING_MSG_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

struct msg {
	uint32_t refs;        /* references held; the message is freed when it reaches 0 */
	uint8_t qos;          /* QoS as published */
	bool retain;          /* retain flag as published */
	uint16_t topic_len;   /* bytes of topic at data[0] */
	uint32_t props_len;   /* bytes of forwarded MQTT 5 properties after the topic */
	uint32_t payload_len; /* bytes of payload after the properties */
	uint64_t expiry_ms;   /* monotonic ms at which the message expires; 0: never */
	void *origin;         /* the publishing session (for no-local), borrowed, may dangle */
	uint8_t data[];       /* topic, properties, payload */
};

static inline const uint8_t *msg_topic(const struct msg *m)
{
	return m->data;
}

static inline const uint8_t *msg_props(const struct msg *m)
{
	return m->data + m->topic_len;
}

static inline const uint8_t *msg_payload(const struct msg *m)
{
	return m->data + m->topic_len + m->props_len;
}

/*
 * Returns a new message (one reference, owned by the caller) holding copies of topic, props
 * and payload, or NULL when out of memory.
 */
struct msg *msg_new(struct st_bytes topic, struct st_bytes props, struct st_bytes payload,
                    uint8_t qos, bool retain);

/* Takes another reference. */
static inline struct msg *msg_ref(struct msg *m)
{
	assert(m->refs > 0);
	m->refs++;
	return m;
}

void msg_free(struct msg *m);

/* Drops a reference; frees the message with the last one. */
static inline void msg_unref(struct msg *m)
{
	assert(m->refs > 0);
	if (--m->refs == 0)
		msg_free(m);
}

#endif
