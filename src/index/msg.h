/*
 * A published application message, promoted once from the receive buffer into one refcounted
 * allocation: the struct, then the topic, the MQTT 5 properties that travel with it, and the
 * payload. Every holder (an inflight slot, a session queue, the retained store, a send that
 * references a large payload) owns one reference; the message is freed with the last.
 *
 * Messages are created only when needed: a QoS 0 message whose deliveries are all copied into
 * the subscribers' output buffers during the publish never becomes a struct msg.
 *
 * A message is immutable once handed to another worker, and its references are counted
 * atomically: subscribers on several workers hold one message. Dropping the last reference
 * tests for "only holder" first, so a message that never left its worker is freed without an
 * atomic read-modify-write.
 */
#ifndef STARLING_MSG_H
#define STARLING_MSG_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

/*
 * Who published a retained message, for check_retain_source: the publisher's identity as the
 * access rules see it. Opaque to this layer; owned by the message.
 */
struct msg_source {
	uint16_t listener; /* configured listener it came in on (its security domain) */
	bool has_user;     /* it gave a user name */
	uint16_t user_len; /* bytes of user name at data[0] */
	uint16_t id_len;   /* bytes of client id after it */
	uint8_t data[];    /* user name, client id */
};

struct msg {
	_Atomic uint32_t refs; /* references held, by any worker; freed when it reaches 0 */
	uint8_t qos;           /* QoS as published */
	bool retain;           /* retain flag as published */
	uint16_t topic_len;    /* bytes of topic at data[0] */
	uint32_t props_len;    /* bytes of forwarded MQTT 5 properties after the topic */
	uint32_t payload_len;  /* bytes of payload after the properties */
	uint64_t expiry_ms;    /* monotonic ms at which the message expires; 0: never */
	uint64_t rseq;         /* retained write order across workers (0: none) */
	/* Its publisher's worker's number for it (persistence: below 2^48), 0: none; and that
	 * worker: one word (the header is 48 bytes, 40 before origins). */
	uint64_t origin : 48;
	uint64_t osrc : 16;
	struct msg_source
	        *src;   /* retained: its publisher (owned, set before it is shared), or NULL */
	uint8_t data[]; /* topic, properties, payload */
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

/* Takes another reference (the caller holds one, so the count cannot reach 0 meanwhile). */
static inline struct msg *msg_ref(struct msg *m)
{
	assert(atomic_load_explicit(&m->refs, memory_order_relaxed) > 0);
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void msg_free(struct msg *m);

/*
 * Drops a reference; frees the message with the last one. A count of 1 seen with acquire
 * ordering means the caller holds the only reference: nobody else can take one, and every
 * other holder's use of the message happened before its release.
 */
static inline void msg_unref(struct msg *m)
{
	uint32_t refs = atomic_load_explicit(&m->refs, memory_order_acquire);

	assert(refs > 0);
	if (refs == 1 || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		msg_free(m);
}

#endif
