/*
 * Routing of published messages. The per-publish work is one index lookup, one pass merging
 * overlapping subscriptions per session (a generation stamp on the session, no allocation),
 * and one append per subscriber to its connection's output buffer. A message is promoted to a
 * refcounted struct msg only when something must hold it past this call: a QoS 1/2 delivery,
 * the retained store, or a payload large enough to be spliced instead of copied.
 *
 * MQTT 5 adds, at the cost of a flag test per match for 3.1.1 subscriptions: No Local (the
 * publisher's own subscription does not match), Retain As Published, the subscription
 * identifiers of every matching subscription (collected in a per-publish scratch list),
 * shared subscription groups (one member per group and message), message expiry and the
 * client's Maximum Packet Size.
 */
#include "route.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "access.h"
#include "bridge.h"
#include "broker.h"
#include "cluster.h"
#include "conn.h"
#include "index/retain.h"
#include "limits.h"
#include "persist.h"
#include "session.h"
#include "share.h"
#include "subdata.h"
#include "index/subidx.h"
#include "worker.h"
#include "xw.h"

static struct msg *route_promote_new(struct pub_view *v, uint8_t qos, bool retain)
{
	v->m = msg_new(v->topic, v->props, v->payload, qos, retain);
	if (v->m) {
		v->m->expiry_ms = v->expiry_ms;
		v->m->origin = v->origin;
		v->m->osrc = v->osrc;
		*v = pub_view_of(v->m);
	}
	return v->m;
}

/* Promotes the message to a struct msg if it is not one yet; NULL when out of memory. */
static inline struct msg *route_promote(struct pub_view *v, uint8_t qos, bool retain)
{
	return v->m ? v->m : route_promote_new(v, qos, retain);
}

static bool route_grow(void **arr, uint32_t *cap, size_t elem)
{
	uint32_t n = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, n * elem);

	if (!p)
		return false;
	*arr = p;
	*cap = n;
	return true;
}

/* Records a further subscription identifier for s (overlapping subscriptions). */
static void route_add_id(struct worker *w, struct session *s, uint32_t id)
{
	if (w->nids == w->ids_cap && !route_grow((void **)&w->ids, &w->ids_cap, sizeof(*w->ids)))
		return;
	w->ids[w->nids] = (struct route_id){.id = id, .next = s->match_ids};
	s->match_ids = ++w->nids;
}

static void route_match_cb(void *ctx, void *subscriber, uint64_t data)
{
	struct worker *w = ctx;
	struct session *s = subscriber;

	/* One test for the rare cases, so plain subscriptions pay a single branch. */
	if (data & (SUBDATA_SHARED | ST_SUBOPT_NO_LOCAL | SUBDATA_ACL)) {
		if (data & SUBDATA_SHARED) {
			if (w->nshared == w->shared_cap &&
			    !route_grow((void **)&w->shared, &w->shared_cap, sizeof(*w->shared)))
				return;
			w->shared[w->nshared++] = subscriber;
			return;
		}
		/* No Local: the publisher's own subscription does not match [MQTT-3.8.3-3]. */
		if ((data & ST_SUBOPT_NO_LOCAL) && s == w->route_origin)
			return;
		/* A filter the ACL lets s read only in part: this topic's answer, cached. */
		if ((data & SUBDATA_ACL) && !access_can(s, w->route_view, ACL_READ))
			return;
	}
	if (s->match_gen == w->route_gen) {
		/* Overlapping filters: deliver once, at the highest granted QoS [MQTT-3.3.5-1]. */
		uint64_t rap = (data | s->match_data) & ST_SUBOPT_RETAIN_AS_PUB;

		if (subdata_qos(data) > subdata_qos(s->match_data))
			s->match_data =
			        (s->match_data & ~(uint64_t)0xffffffff) | (data & 0xffffffff);
		s->match_data |= rap;
		if (subdata_sub_id(data)) {
			if (subdata_sub_id(s->match_data) == 0)
				s->match_data |= data & ~(uint64_t)0xffffffff;
			else
				route_add_id(w, s, subdata_sub_id(data));
		}
		return;
	}
	if (w->nmatches == w->matches_cap &&
	    !route_grow((void **)&w->matches, &w->matches_cap, sizeof(*w->matches)))
		return; /* out of memory: this subscriber misses the message */
	s->match_gen = w->route_gen;
	s->match_data = data;
	s->match_ids = 0;
	w->matches[w->nmatches++] = s;
}

/* Queues one PUBLISH to a connection. */
static void route_send(struct conn *c, struct pub_view *v, uint8_t qos, bool retain, uint16_t pid,
                       bool dup, const struct pub_extra *x)
{
	uint8_t flags = (uint8_t)(qos << 1) | (retain ? ST_PUBLISH_FLAG_RETAIN : 0) |
	                (dup ? ST_PUBLISH_FLAG_DUP : 0);

	int ret = c->v5 ? out_publish(c, v, flags, pid, x) : out_publish3(c, v, flags, pid);

	if (ret != ST_OK) {
		conn_close_later(c, "out of memory");
		return;
	}
	c->w->stats.msgs_sent++;
	c->w->stats.pub_out[qos]++;
	c->w->stats.pub_out_bytes[qos] += v->payload.len;
}

/* Queues a PUBLISH to a 3.1/3.1.1 connection. */
static inline bool route_send3(struct worker *w, struct conn *c, const struct pub_view *v,
                               uint8_t flags, uint16_t pid)
{
	if (out_publish3(c, v, flags, pid) != ST_OK) {
		conn_close_later(c, "out of memory");
		return false;
	}
	w->stats.msgs_sent++;
	w->stats.pub_out[(flags >> 1) & 3]++;
	w->stats.pub_out_bytes[(flags >> 1) & 3] += v->payload.len;
	return true;
}

/*
 * A QoS 1/2 delivery the session could not take (max_queued_messages reached): counted, and
 * logged once per episode, which ends when the queue has drained (a collector that stays
 * behind would otherwise log a line per message).
 */
static void route_queue_full(struct worker *w, struct session *s)
{
	if (s->bridge)
		s->bridge->stats.dropped++;
	w->stats.msgs_dropped++;
	w->stats.queue_dropped++;
	if (s->q_full_logged)
		return;
	s->q_full_logged = true;
	log_msg(&w->log, LOG_T_WARNING,
	        "Outgoing messages are being dropped for client %.*s: %u queued "
	        "(max_queued_messages, max_queued_bytes).",
	        (int)s->client_id_len, (const char *)s->client_id, s->q_len);
}

/*
 * The common case, small enough to inline into the routing loop: a delivery to a connected
 * 3.1/3.1.1 client of a message without MQTT 5 expiry. Same rules as route_deliver; none of
 * the MQTT 5 fields are looked at.
 */
/*
 * The QoS of a delivery: the lower of the publish's and the subscription's [MQTT-3.8.4-8],
 * or with upgrade_outgoing_qos (Mosquitto's non-standard option) the subscription's: OR-ing
 * 3 into the publish's makes the subscription's the lower, without a branch.
 */
static inline uint8_t route_qos(const struct worker *w, uint8_t pub, uint8_t granted)
{
	pub |= w->qos_upgrade;
	return pub < granted ? pub : granted;
}

static inline bool route_deliver_v3(struct worker *w, struct session *s, struct conn *c,
                                    struct pub_view *v, uint8_t pub_qos, uint8_t qos, bool retain)
{
	uint8_t flags = retain ? ST_PUBLISH_FLAG_RETAIN : 0;
	struct sess_delivery d;
	uint16_t pid;

	if (qos == 0) {
		if (conn_output_full(c, out_publish3_size(v))) {
			c->dropped++;
			w->stats.msgs_dropped++;
			w->stats.output_dropped++;
			return false;
		}
		return route_send3(w, c, v, flags, 0);
	}
	d = (struct sess_delivery){
	        .m = route_promote(v, pub_qos, retain), .qos = qos, .retain = retain};
	if (!d.m)
		return false;
	switch (session_out_offer(s, &d, conn_qos_room(c), &pid)) {
	case SESS_OUT_SEND:
		return route_send3(w, c, v, flags | (uint8_t)(qos << 1), pid);
	case SESS_OUT_QUEUED:
		return true;
	default:
		route_queue_full(w, s);
		return false;
	}
}

/* Too large for the client's Maximum Packet Size: dropped as if sent [MQTT-3.1.2-25]. So is
 * a message over bridge_max_packet_size for a bridge's 3.x remote (bridge.h). */
static bool route_too_large(struct conn *c, struct pub_view *v, const struct pub_extra *x,
                            uint8_t qos)
{
	if (!c)
		return false;
	if (c->v5)
		return c->v5->max_packet_out &&
		       out_publish5_exact_size(c, v, x, qos) > c->v5->max_packet_out;
	return c->bridge && c->bridge->cfg->max_packet_size &&
	       out_publish3_exact_size(c, v, qos) > c->bridge->cfg->max_packet_size;
}

/*
 * queue_qos0_messages: a QoS 0 message for an offline session waits in its queue, counted
 * against max_queued_messages and max_queued_bytes as Mosquitto counts it, and leaves as
 * QoS 0 when the client is back (route_pump).
 */
static bool route_queue_qos0(struct worker *w, struct session *s, struct pub_view *v, bool retain,
                             const struct pub_extra *x, struct share_group *group)
{
	struct sess_delivery d = {
	        .m = route_promote(v, v->m ? v->m->qos : 0, retain),
	        .retain = retain,
	        .sub_id = x ? x->sub_id : 0,
	        .nmore = x ? x->nmore : 0,
	        .more = x ? (uint32_t *)x->more : NULL,
	        .group = group,
	};
	uint16_t pid;

	if (!d.m)
		return false;
	if (session_out_offer(s, &d, false, &pid) == SESS_OUT_QUEUED)
		return true;
	route_queue_full(w, s);
	return false;
}

/*
 * Delivers one message to one session at `qos`. group is the shared subscription it came
 * through (the delivery takes a reference), or NULL. Returns true if it was delivered or
 * queued.
 */
static bool route_deliver(struct worker *w, struct session *s, struct pub_view *v, uint8_t qos,
                          bool retain, const struct pub_extra *x, struct share_group *group)
{
	struct conn *c = s->conn;
	uint16_t pid;

	/* A shared group's member was picked for its ACL (route_pick, xw_on_share_deliver);
	 * this only catches rules that changed on the way (a reload). */
	if (group && s->acl && !access_can(s, v, ACL_READ))
		return false;
	/* MQTT 5 limits, behind one branch: an expired message is not delivered
	 * [MQTT-3.3.2-5]; one over the client's Maximum Packet Size is dropped as if sent
	 * [MQTT-3.1.2-25]. */
	if (v->expiry_ms | (c ? (uintptr_t)c->v5 | (uintptr_t)c->bridge : 0)) {
		if (v->expiry_ms && v->expiry_ms <= w->now_ms) {
			w->stats.expired_dropped++;
			return false;
		}
		if (route_too_large(c, v, x, qos)) {
			w->stats.too_large_dropped++;
			return false;
		}
	}
	if (qos == 0) {
		/* QoS 0 is not queued for an offline client (unless queue_qos0_messages), nor past
		 * a slow reader's bound. */
		if (!c) {
			/* A bridge's remote that is away loses QoS 0, counted (bridge.h). */
			if (s->bridge && !w->b->cfg.limits.queue_qos0_messages)
				s->bridge->stats.dropped++;
			return w->b->cfg.limits.queue_qos0_messages &&
			       route_queue_qos0(w, s, v, retain, x, group);
		}
		if (conn_output_full(c, out_publish_size(c, v, x))) {
			c->dropped++;
			w->stats.msgs_dropped++;
			w->stats.output_dropped++;
			return false;
		}
		route_send(c, v, 0, retain, 0, false, x);
		return true;
	}

	struct sess_delivery d = {
	        .m = route_promote(v, v->m ? v->m->qos : qos, retain),
	        .qos = qos,
	        .retain = retain,
	        .sub_id = x ? x->sub_id : 0,
	        .nmore = x ? x->nmore : 0,
	        .more = x ? (uint32_t *)x->more : NULL,
	        .group = group,
	};

	if (!d.m)
		return false;
	switch (session_out_offer(s, &d, c && conn_qos_room(c), &pid)) {
	case SESS_OUT_SEND:
		if (group && d.m->origin && s->ps)
			persist_share_mark(s, d.m, group);
		route_send(c, v, qos, retain, pid, false, x);
		return true;
	case SESS_OUT_QUEUED:
		if (group && d.m->origin && s->ps)
			persist_share_mark(s, d.m, group);
		return true;
	default:
		route_queue_full(w, s);
		return false;
	}
}

void route_retain_apply(struct worker *w, struct msg *m)
{
	struct msg *cur = retain_get(w->retained, msg_topic(m), m->topic_len);
	void *old = NULL;

	/* Replicas converge: a write older than what the store holds lost the race. */
	if (cur && cur->rseq > m->rseq)
		return;
	/* An empty message stays as a tombstone (its rseq beats older writes still in flight)
	 * until housekeeping removes it. */
	if (retain_set(w->retained, msg_topic(m), m->topic_len, msg_ref(m), &old) != ST_OK) {
		msg_unref(m);
		return;
	}
	/* Worker 0 logs the writes its replica takes, in the order it takes them. */
	if (w->ps && w->index == 0)
		persist_retain(w, (struct st_bytes){msg_topic(m), m->topic_len}, m);
	if (old) {
		w->tombs_stored -= ((struct msg *)old)->payload_len == 0;
		msg_unref(old);
	}
	if (m->payload_len == 0) {
		w->tombs_stored++;
		worker_tombstone(w, m);
	}
}

/*
 * A retained PUBLISH sets or deletes the topic's retained message. With several workers the
 * message is numbered (rseq) so that every replica keeps the same last write; so it is in a
 * cluster, whose bucket's writes race the local ones (cluster_retain.c).
 */
static void route_retain_store(struct worker *w, struct pub_view *v, uint8_t qos)
{
	void *old = NULL;
	struct msg *m = NULL;

	if (w->nworkers > 1 || w->cl) {
		m = route_promote(v, qos, true);
		if (!m)
			return;
		m->rseq = atomic_fetch_add_explicit(&w->b->shared.retain_seq, 1,
		                                    memory_order_relaxed) +
		          1;
		route_retain_apply(w, m);
		return;
	}
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
	if (w->ps)
		persist_retain(w, v->topic, m);
	if (old)
		msg_unref(old);
}

/* The identifiers of s's matching subscriptions for this publish, into w->idbuf. */
static void route_extra(struct worker *w, struct session *s, struct pub_extra *x)
{
	uint16_t n = 0;

	x->sub_id = subdata_sub_id(s->match_data);
	x->nmore = 0;
	x->more = NULL;
	for (uint32_t i = s->match_ids; i && n < w->idbuf_cap; i = w->ids[i - 1].next)
		w->idbuf[n++] = w->ids[i - 1].id;
	if (n) {
		x->nmore = n;
		x->more = w->idbuf;
	}
}

/* Gives one message of group g to member m, here or on its own worker. */
static bool route_to_member(struct worker *w, struct share_group *g, const struct share_member *m,
                            struct pub_view *v, uint8_t qos, bool retain, unsigned hops)
{
	struct pub_extra x = {.sub_id = subdata_sub_id(m->data)};
	uint8_t granted = subdata_qos(m->data);

	qos = route_qos(w, qos, granted);
	retain = retain && (m->data & ST_SUBOPT_RETAIN_AS_PUB);
	if (m->s)
		return route_deliver(w, m->s, v, qos, retain, &x, g);
	if (!route_promote(v, v->m ? v->m->qos : qos, retain))
		return false;
	xw_share_deliver(w, m->worker, m->gen, v->m, g, qos, retain, x.sub_id, hops);
	return true;
}

/*
 * The next member of g in turn that may read the topic: a local member whose subscription the
 * ACL makes only partly readable is asked here and skipped if refused; a member on another
 * worker is asked there, and gives the message back if refused (xw_on_share_deliver).
 */
static struct share_member *route_pick(struct share_group *g, struct pub_view *v,
                                       const struct share_member *except)
{
	for (uint32_t n = 0; n < g->nmembers; n++) {
		struct share_member *m = share_pick(g, except);

		if (!m || !m->s || !(m->data & SUBDATA_ACL) || access_can(m->s, v, ACL_READ))
			return m;
	}
	return NULL;
}

static uint32_t route_shared(struct worker *w, struct pub_view *v, uint8_t qos, bool retain)
{
	uint32_t delivered = 0;

	for (uint32_t i = 0; i < w->nshared; i++) {
		struct share_group *g = w->shared[i];
		struct share_member *m;

		if (g->clustered)
			continue; /* its messages come through the cluster's queue group */
		/* A resend after a restart: a group that kept its copy does not take it twice. */
		if (v->origin && w->ps && persist_seen_take(w, v->osrc, v->origin, g))
			continue;
		m = route_pick(g, v, NULL);
		if (m && route_to_member(w, g, m, v, qos, retain, 0))
			delivered++;
	}
	return delivered;
}

bool route_group(struct worker *w, struct share_group *g, struct pub_view *v, uint8_t qos,
                 bool retain)
{
	struct share_member *m = route_pick(g, v, NULL);

	return m && route_to_member(w, g, m, v, qos, retain, 0);
}

/* route_local; groups_only: the shared groups here and no other subscriber (a resend whose
 * origin the sessions here handled before a restart, route_resend_groups). */
static int route_local_some(struct worker *w, struct session *origin, struct pub_view *v,
                            uint8_t qos, bool retain, bool groups_only)
{
	uint32_t delivered = 0;

	w->route_gen++;
	w->route_origin = origin;
	w->route_view = v;
	w->nmatches = 0;
	w->nshared = 0;
	w->nids = 0;
	subidx_match(w->subs, v->topic.ptr, v->topic.len, route_match_cb, w);
	for (uint32_t i = 0; !groups_only && i < w->nmatches; i++) {
		struct session *s = w->matches[i];
		uint64_t data = s->match_data;
		uint8_t granted = subdata_qos(data);
		bool rap = retain && (data & ST_SUBOPT_RETAIN_AS_PUB);
		struct conn *c = s->conn;
		struct pub_extra x, *xp = NULL;

		if (c && !c->v5 && !v->expiry_ms && !c->bridge) {
			delivered +=
			        route_deliver_v3(w, s, c, v, qos, route_qos(w, qos, granted), rap);
			continue;
		}
		if (subdata_sub_id(data) || s->match_ids) {
			route_extra(w, s, &x);
			xp = &x;
		}
		/* Live deliveries clear retain unless Retain As Published [MQTT-3.3.1-12]. */
		delivered += route_deliver(w, s, v, route_qos(w, qos, granted), rap, xp, NULL);
	}
	if (w->nshared)
		delivered += route_shared(w, v, qos, retain);
	return (int)delivered;
}

int route_local(struct worker *w, struct session *origin, struct pub_view *v, uint8_t qos,
                bool retain)
{
	return route_local_some(w, origin, v, qos, retain, false);
}

void route_resend_groups(struct worker *w, struct pub_view *v, uint8_t qos, bool retain)
{
	if (persist_origin_old(w, v->osrc, v->origin))
		route_local_some(w, NULL, v, qos, retain, true);
}

int route_publish(struct worker *w, struct session *origin, struct pub_view *v, uint8_t qos,
                  bool retain)
{
	bool owned = v->m == NULL, store = retain && w->b->cfg.retain_available && !w->cl_inbound;
	uint64_t targets = 0;
	int delivered;

	/* Once to the cluster, unless it came from there (cluster.h). */
	if (w->cl && !w->cl_inbound)
		cluster_publish(w, origin, v, qos, retain);
	/* Payloads worth splicing are promoted up front so deliveries reference them. */
	if (v->payload.len >= OBUF_SPLICE_MIN && !route_promote(v, qos, retain))
		return ST_ERR_NOMEM;
	if (w->nworkers > 1) {
		/* Other workers with a matching filter get the message; a retained write goes to
		 * every worker's replica of the store. */
		targets = xw_targets(w, v->topic.ptr, v->topic.len);
		if (store && !route_promote(v, qos, retain))
			return ST_ERR_NOMEM;
	}
	if (store) {
		/* check_retain_source: the message remembers who set it, before anyone holds it
		 * (under an acl_file only: without rules there is no right to lose). */
		if (origin && origin->acl && v->payload.len &&
		    w->b->cfg.limits.check_retain_source && route_promote(v, qos, retain) &&
		    !v->m->src)
			limits_retain_source(v->m, origin);
		route_retain_store(w, v, qos);
	}
	if (store && v->origin) {
		bool sess, rep;

		/* This replica has it (a resend finds it so). */
		persist_origin_apply(w, w->index, v->origin, &sess, &rep);
	}
	delivered = route_local(w, origin, v, qos, retain);
	if (targets && !store && !v->m && qos == 0 && xw_bulk_fits(v)) {
		/* Small QoS 0 that nothing here promoted: copied in bulk, never a struct msg. */
		xw_forward_small(w, v, targets, retain);
		delivered++;
	} else if (targets || store) {
		if (!route_promote(v, qos, retain))
			return ST_ERR_NOMEM;
		xw_forward(w, v->m, store ? w->xw.others : targets, qos, retain, store,
		           w->ps && qos == 2 && origin && origin->ps ? persist_stamp(w) : 0,
		           v->origin);
		/* Records on other workers may follow: the publisher's acknowledgement waits. */
		if (w->ps && (qos || store))
			w->ps->pub_remote = true;
		/* Whether another worker's subscribers match is not known here: report a
		 * delivery, since "no matching subscribers" is only a MAY [MQTT-3.4.2.1]. */
		if (targets)
			delivered++;
	}
	/* The view's promotion (if any) was this call's own reference. */
	if (owned && v->m)
		msg_unref(v->m);
	return delivered;
}

int route_resend(struct worker *w, struct pub_view *v, bool retain)
{
	bool owned = v->m == NULL, store = retain && w->b->cfg.retain_available, sess, rep;
	uint64_t targets;
	struct msg *m;

	if (w->nworkers < 2)
		return 0;
	/* The sessions here went into the packet id's commit, but a group here may have picked
	 * a member elsewhere that lost its copy (persist_marks.c). */
	route_resend_groups(w, v, 2, retain);
	targets = xw_targets(w, v->topic.ptr, v->topic.len);
	if (!targets && !store) {
		if (owned && v->m)
			msg_unref(v->m);
		return 0;
	}
	m = route_promote(v, 2, retain);
	if (!m)
		return ST_ERR_NOMEM;
	if (store) {
		m->rseq = atomic_fetch_add_explicit(&w->b->shared.retain_seq, 1,
		                                    memory_order_relaxed) +
		          1;
		/* Worker 0's replica went into the packet id's commit; another one may be behind.
		 */
		persist_origin_apply(w, w->index, v->origin, &sess, &rep);
		if (rep && w->index != 0)
			route_retain_apply(w, m);
	}
	/* Only other workers may lack it. */
	xw_forward(w, m, store ? w->xw.others : targets, 2, retain, store, persist_stamp(w),
	           v->origin);
	w->ps->pub_remote = true;
	if (owned)
		msg_unref(m);
	return 0;
}

#define ROUTE_EXPIRED_MAX 16 /* expired retained messages dropped per SUBSCRIBE walk */

struct route_retained_ctx {
	struct worker *w;                       /* the worker */
	struct session *s;                      /* the subscriber */
	uint64_t data;                          /* its subscription's data */
	struct msg *expired[ROUTE_EXPIRED_MAX]; /* expired messages met (references) */
	unsigned nexpired;                      /* entries used */
	struct limits_src_cache src;            /* check_retain_source (limits.h) */
};

static void route_retained_cb(void *ctx, void *value)
{
	struct route_retained_ctx *rc = ctx;
	struct msg *m = value;
	struct pub_view v = pub_view_of(m);
	uint8_t granted = subdata_qos(rc->data);
	struct pub_extra x = {.sub_id = subdata_sub_id(rc->data)};

	if (m->payload_len == 0)
		return; /* a tombstone of another worker's delete (route_retain_apply) */
	if ((rc->data & SUBDATA_ACL) && !access_can(rc->s, &v, ACL_READ))
		return; /* retained messages are judged when delivered, as live ones */
	if (m->src && !limits_source_may_write(rc->w, m, &rc->src))
		return; /* its publisher lost the right to write it (check_retain_source) */
	if (m->expiry_ms && m->expiry_ms <= rc->w->now_ms) {
		/* Expired: not sent [MQTT-3.3.2-5], and dropped from the store after the walk. */
		if (rc->nexpired < ROUTE_EXPIRED_MAX)
			rc->expired[rc->nexpired++] = msg_ref(m);
		return;
	}
	/* Retained messages are sent with retain set [MQTT-3.3.1-8]. */
	route_deliver(rc->w, rc->s, &v, route_qos(rc->w, m->qos, granted), true, &x, NULL);
}

void route_retained(struct worker *w, struct session *s, const uint8_t *filter, size_t len,
                    uint64_t subdata)
{
	struct route_retained_ctx rc = {.w = w, .s = s, .data = subdata};

	retain_match(w->retained, filter, len, route_retained_cb, &rc);
	limits_src_cache_fini(&rc.src);
	for (unsigned i = 0; i < rc.nexpired; i++) {
		struct msg *m = rc.expired[i];

		route_retain_drop(w, m);
		if (w->nworkers > 1)
			xw_retain_drop(w, m);
		msg_unref(m);
	}
}

void route_retain_drop(struct worker *w, struct msg *m)
{
	void *old = NULL;

	/* The store may hold a newer message for the topic by now: only this one goes. */
	if (retain_get(w->retained, msg_topic(m), m->topic_len) == m &&
	    retain_set(w->retained, msg_topic(m), m->topic_len, NULL, &old) == ST_OK && old)
		msg_unref(old);
}

static struct pub_extra route_extra_of(const struct sess_delivery *d)
{
	return (struct pub_extra){.sub_id = d->sub_id, .nmore = d->nmore, .more = d->more};
}

void route_pump(struct session *s)
{
	struct sess_delivery d;
	uint16_t pid;

	if (!s->conn)
		return;
	while (conn_qos_room(s->conn) && session_out_next(s, &d, &pid)) {
		struct pub_view v = pub_view_of(d.m);
		struct pub_extra x = route_extra_of(&d);

		/* An expired message is not sent; the slot is given back [MQTT-3.3.2-5]. */
		if (v.expiry_ms && v.expiry_ms <= s->conn->w->now_ms) {
			s->conn->w->stats.expired_dropped++;
			if (pid)
				session_out_drop(s, pid);
			else
				sess_delivery_release(&d);
			continue;
		}
		route_send(s->conn, &v, d.qos, d.retain, pid, false, &x);
		if (!pid) /* a queued QoS 0 message (queue_qos0_messages) is ours once sent */
			sess_delivery_release(&d);
		if (!s->conn)
			return;
	}
}

static void route_resend_cb(void *ctx, uint16_t pid, const struct sess_slot *slot)
{
	struct conn *c = ctx;
	struct pub_view v;
	struct pub_extra x;

	if (slot->state == SLOT_WAIT_PUBCOMP) {
		out_ack(c, ST_PUBREL, pid, 0);
		return;
	}
	if (!slot->d.m)
		return; /* restored without its message (persist_replay.c): nothing to resend */
	v = pub_view_of(slot->d.m);
	x = route_extra_of(&slot->d);
	route_send(c, &v, slot->d.qos, slot->d.retain, pid, true, &x);
}

void route_resume(struct session *s)
{
	if (!s->conn)
		return;
	session_out_each_inflight(s, route_resend_cb, s->conn);
	route_pump(s);
}

struct route_rehome_ctx {
	struct worker *w;  /* the leaving session's worker */
	struct session *s; /* the leaving session */
};

/*
 * Gives a leaving member's shared delivery to a connected member of the same group; a group
 * owned by another worker gets it back to choose.
 */
static bool route_rehome_cb(void *ctx, struct sess_delivery *d)
{
	struct route_rehome_ctx *rc = ctx;
	struct share_member except = {.s = rc->s}, *to;
	struct pub_view v;

	if (d->group->owner != rc->w->index) {
		xw_share_rehome(rc->w, rc->s->gen, d->m, d->group, d->qos, d->retain, 0);
		d->m = NULL;
		d->group = NULL; /* both references went with the message */
		sess_delivery_release(d);
		return true;
	}
	v = pub_view_of(d->m);
	to = route_pick(d->group, &v, &except);
	if (!to || !(to->s ? to->s->conn != NULL : to->online))
		return false; /* nobody to take it: it stays with the leaving session */
	route_to_member(rc->w, d->group, to, &v, d->qos, d->retain, 0);
	sess_delivery_release(d);
	return true;
}

void route_rehome_shared(struct worker *w, struct session *s)
{
	struct route_rehome_ctx rc = {.w = w, .s = s};

	session_take_shared(s, route_rehome_cb, &rc);
}

void route_rehome_remote(struct worker *w, struct msg *m, struct share_group *g,
                         const struct share_member *leaving, uint8_t qos, bool retain,
                         unsigned hops)
{
	struct pub_view v = pub_view_of(m);
	struct share_member *to = hops <= g->nmembers ? route_pick(g, &v, leaving) : NULL;

	/* The group may have lost every other member meanwhile, or none may read the topic:
	 * the message is dropped. */
	if (!to || !route_to_member(w, g, to, &v, qos, retain, hops))
		w->stats.msgs_dropped++;
}

bool route_member_may_read(struct session *s, struct msg *m)
{
	struct pub_view v;

	if (!s->acl)
		return true;
	v = pub_view_of(m);
	return access_can(s, &v, ACL_READ);
}

bool route_deliver_member(struct worker *w, struct session *s, struct msg *m, struct share_group *g,
                          uint8_t qos, bool retain, uint32_t sub_id)
{
	struct pub_view v = pub_view_of(m);
	struct pub_extra x = {.sub_id = sub_id};

	return route_deliver(w, s, &v, qos, retain, &x, g);
}
