/*
 * Helpers shared by the session tests (test/test_session.c: the unit cases; and
 * test/test_session_model.c: the model-based random tests), each its own CUnit binary: a real
 * refcounted message, a session, an offer tagged with a serial in sub_id, the calls
 * session_out_each_inflight makes recorded in order, and the three acknowledgements by number.
 * Functions are static inline so a binary that does not use one does not warn.
 */
#ifndef STARLING_TEST_SESSION_CASES_H
#define STARLING_TEST_SESSION_CASES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/msg.h"
#include "broker/session.h"

/* A QoS 2 message on tele/x; the caller holds its one reference. Aborts if out of memory. */
static inline struct msg *msg_make(const char *payload)
{
	struct st_bytes topic = {(const uint8_t *)"tele/x", 6};
	struct st_bytes none = {NULL, 0};
	struct st_bytes body = {(const uint8_t *)payload, (uint32_t)strlen(payload)};
	struct msg *m = msg_new(topic, none, body, 2, false);

	if (!m)
		abort();
	return m;
}

/* A session of client-1 with the given window and queue bound. Aborts if out of memory. */
static inline struct session *sess_make(uint16_t inflight_max, uint32_t q_max)
{
	struct session *s = session_new((const uint8_t *)"client-1", 8, inflight_max, q_max);

	if (!s)
		abort();
	return s;
}

/* Offers m at qos with tag as its sub_id (the tests' delivery serial). */
static inline enum sess_out_result offer(struct session *s, struct msg *m, uint8_t qos,
                                         uint32_t tag, bool online, uint16_t *pid)
{
	struct sess_delivery d = {.m = m, .qos = qos, .retain = false, .sub_id = tag};

	*pid = 0;
	return session_out_offer(s, &d, online, pid);
}

/* What session_out_each_inflight showed, in call order. */
struct visit {
	uint16_t pid;        /* packet id */
	uint8_t state;       /* enum sess_slot_state */
	const struct msg *m; /* the slot's message, NULL after PUBREC */
	uint32_t tag;        /* the delivery's sub_id */
};

struct visits {
	struct visit *v; /* cap entries */
	uint32_t n;      /* calls seen (may exceed cap: then only counted) */
	uint32_t cap;    /* entries in v */
};

static inline void visit_cb(void *ctx, uint16_t pid, const struct sess_slot *slot)
{
	struct visits *vs = ctx;

	if (vs->n < vs->cap)
		vs->v[vs->n] = (struct visit){pid, slot->state, slot->d.m, slot->d.sub_id};
	vs->n++;
}

static inline uint32_t visits_collect(struct session *s, struct visits *vs)
{
	vs->n = 0;
	session_out_each_inflight(s, visit_cb, vs);
	return vs->n;
}

/* Calls the acknowledgement of kind 0 (PUBACK), 1 (PUBREC) or 2 (PUBCOMP). */
static inline bool ack(struct session *s, unsigned kind, uint16_t pid)
{
	if (kind == 0)
		return session_out_puback(s, pid);
	return kind == 1 ? session_out_pubrec(s, pid) : session_out_pubcomp(s, pid);
}

#endif
