/*
 * Routing of published messages. The per-publish work is one index lookup, one pass merging
 * overlapping subscriptions per session (a generation stamp on the session, no allocation),
 * and one append per subscriber to its connection's output buffer. A message is promoted to a
 * refcounted struct msg only when something must hold it past this call: a QoS 1/2 delivery,
 * the retained store, or a payload large enough to be spliced instead of copied.
 */
#include "route.h"

#include <stdlib.h>

#include "broker.h"
#include "conn.h"
#include "retain.h"
#include "session.h"
#include "subdata.h"
#include "subidx.h"
#include "worker.h"

/* Promotes the message to a struct msg if it is not one yet; NULL when out of memory. */
static struct msg *route_promote(struct pub_view *v, uint8_t qos, bool retain)
{
	if (!v->m) {
		v->m = msg_new(v->topic, v->props, v->payload, qos, retain);
		if (v->m)
			*v = pub_view_of(v->m);
	}
	return v->m;
}

static void route_match_cb(void *ctx, void *subscriber, uint64_t data)
{
	struct worker *w = ctx;
	struct session *s = subscriber;

	if (s->match_gen == w->route_gen) {
		/* Overlapping filters: deliver once, at the highest granted QoS. */
		if (subdata_qos(data) > subdata_qos(s->match_data))
			s->match_data = data;
		s->match_subs++;
		return;
	}
	if (w->nmatches == w->matches_cap) {
		uint32_t cap = w->matches_cap ? w->matches_cap * 2 : 64;
		struct session **m = realloc(w->matches, cap * sizeof(*m));

		if (!m)
			return; /* out of memory: this subscriber misses the message */
		w->matches = m;
		w->matches_cap = cap;
	}
	s->match_gen = w->route_gen;
	s->match_data = data;
	s->match_subs = 1;
	w->matches[w->nmatches++] = s;
}

/* Queues one PUBLISH to s's connection. */
static void route_send(struct conn *c, const struct pub_view *v, uint8_t qos, bool retain,
                       uint16_t pid, bool dup)
{
	uint8_t flags = (uint8_t)(qos << 1) | (retain ? ST_PUBLISH_FLAG_RETAIN : 0) |
	                (dup ? ST_PUBLISH_FLAG_DUP : 0);

	if (out_publish(c, v, flags, pid) != ST_OK) {
		conn_close(c, false, "out of memory");
		return;
	}
	c->w->stats.msgs_sent++;
}

/* Delivers one message to one session at `qos`. */
static void route_deliver(struct worker *w, struct session *s, struct pub_view *v, uint8_t qos,
                          bool retain, uint64_t data)
{
	struct conn *c = s->conn;

	if (qos == 0) {
		/* QoS 0 is not queued for an offline client, nor past a slow reader's bound. */
		if (!c)
			return;
		if (conn_output_bytes(c) + out_publish_size(c, v) > w->b->cfg.max_output_bytes) {
			c->dropped++;
			w->stats.msgs_dropped++;
			return;
		}
		route_send(c, v, 0, retain, 0, false);
		return;
	}

	struct sess_delivery d = {
	        .m = route_promote(v, v->m ? v->m->qos : qos, retain),
	        .qos = qos,
	        .retain = retain,
	        .sub_id = subdata_sub_id(data),
	};
	uint16_t pid;

	if (!d.m)
		return;
	switch (session_out_offer(s, &d, c != NULL, &pid)) {
	case SESS_OUT_SEND:
		route_send(c, v, qos, retain, pid, false);
		break;
	case SESS_OUT_QUEUED:
		break;
	case SESS_OUT_DROPPED:
		w->stats.msgs_dropped++;
		break;
	}
}

static void route_retain_store(struct worker *w, struct pub_view *v, uint8_t qos)
{
	void *old = NULL;
	struct msg *m = NULL;

	if (v->payload.len) {
		m = route_promote(v, qos, true);
		if (!m)
			return;
		msg_ref(m);
	}
	if (retain_set(w->retained, v->topic.ptr, v->topic.len, m, &old) != ST_OK) {
		if (m)
			msg_unref(m);
		return;
	}
	if (old)
		msg_unref(old);
}

int route_publish(struct worker *w, struct session *origin, struct pub_view *v, uint8_t qos,
                  bool retain)
{
	bool owned = v->m == NULL;

	(void)origin;
	/* Payloads worth splicing are promoted up front so deliveries reference them. */
	if (v->payload.len >= OBUF_SPLICE_MIN && !route_promote(v, qos, retain))
		return ST_ERR_NOMEM;
	if (retain && w->b->cfg.retain_available)
		route_retain_store(w, v, qos);

	w->route_gen++;
	w->nmatches = 0;
	subidx_match(w->subs, v->topic.ptr, v->topic.len, route_match_cb, w);
	for (uint32_t i = 0; i < w->nmatches; i++) {
		struct session *s = w->matches[i];
		uint8_t granted = subdata_qos(s->match_data);

		route_deliver(w, s, v, qos < granted ? qos : granted, false, s->match_data);
	}
	/* The view's promotion (if any) was this call's own reference. */
	if (owned && v->m)
		msg_unref(v->m);
	return ST_OK;
}

struct route_retained_ctx {
	struct worker *w;
	struct session *s;
	uint64_t data;
};

static void route_retained_cb(void *ctx, void *value)
{
	struct route_retained_ctx *rc = ctx;
	struct msg *m = value;
	struct pub_view v = pub_view_of(m);
	uint8_t granted = subdata_qos(rc->data);

	route_deliver(rc->w, rc->s, &v, m->qos < granted ? m->qos : granted, true, rc->data);
}

void route_retained(struct worker *w, struct session *s, const uint8_t *filter, size_t len,
                    uint64_t subdata)
{
	struct route_retained_ctx rc = {.w = w, .s = s, .data = subdata};

	retain_match(w->retained, filter, len, route_retained_cb, &rc);
}

void route_pump(struct session *s)
{
	struct sess_delivery d;
	uint16_t pid;

	if (!s->conn)
		return;
	while (session_out_next(s, &d, &pid)) {
		struct pub_view v = pub_view_of(d.m);

		route_send(s->conn, &v, d.qos, d.retain, pid, false);
	}
}

static void route_resend_cb(void *ctx, uint16_t pid, const struct sess_slot *slot)
{
	struct conn *c = ctx;

	if (slot->state == SLOT_WAIT_PUBCOMP) {
		out_ack(c, ST_PUBREL, pid, 0);
		return;
	}
	struct pub_view v = pub_view_of(slot->d.m);

	route_send(c, &v, slot->d.qos, slot->d.retain, pid, true);
}

void route_resume(struct session *s)
{
	if (!s->conn)
		return;
	session_out_each_inflight(s, route_resend_cb, s->conn);
	route_pump(s);
}
