/*
 * Cross-worker traffic (see xw.h): entries pushed into the channel to each target, an overflow
 * queue per target when the channel is full, one publish and one doorbell per target per loop
 * iteration, and the handling of what arrives.
 *
 * Entry layout (struct chan_entry): kind is enum xw_kind; for deliveries p1 is a message
 * reference and arg packs QoS (bits 0-1), retain (bit 2), a retained write (bit 3) and, for
 * shared deliveries, the subscription identifier (bits 4-31: identifiers are 28 bits).
 */
#include "xw.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/fifo.h"
#include "admit.h"
#include "broker.h"
#include "conn_tls.h"
#include "conn_ws.h"
#include "index/interest.h"
#include "index/msg.h"
#include "out.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "share.h"
#include "store/home.h"
#include "worker.h"

enum xw_kind {
	XW_DELIVER = 1,       /* p1 msg: route it here (and store it when XW_F_STORE) */
	XW_HANDOFF = 2,       /* arg fd, p1 struct xw_bytes: the connection's bytes so far */
	XW_SHARE_JOIN = 3,    /* p1 struct xw_share_req */
	XW_SHARE_LEAVE = 4,   /* p1 struct xw_share_req */
	XW_SHARE_ONLINE = 5,  /* p1 struct xw_share_req */
	XW_SHARE_DELIVER = 6, /* p1 msg, p2 group, u64 member generation */
	XW_SHARE_REHOME = 7,  /* p1 msg, p2 group, u64 leaving member's generation */
	XW_RETAIN_DROP = 8,   /* p1 msg: an expired retained message leaves every replica */
	XW_BULK = 9,          /* p1 struct xw_bulk: small QoS 0 messages, copied */
	XW_SHARE_DONE = 10,   /* u64 session generation, p1 connection id: join/leave applied */
	XW_SHARE_MARK = 11,   /* u64 origin, arg source, p1 group key hash: a copy (start-up) */
};

#define XW_BULK_BYTES   (16u << 10) /* a bulk buffer, header included */
#define XW_BULK_REC_MAX 2048u       /* largest record that travels in bulk */

/* Small QoS 0 messages for one worker, back to back (struct xw_rec, 8-byte aligned). */
struct xw_bulk {
	uint32_t used;  /* bytes of data used */
	uint32_t count; /* records */
	_Alignas(8) uint8_t data[XW_BULK_BYTES - 8];
};

/* One message in a bulk buffer: the header, then topic, properties and payload. */
struct xw_rec {
	uint32_t len;         /* bytes of the record, header included, rounded up to 8 */
	uint16_t topic_len;   /* bytes of topic */
	uint8_t retain;       /* retain flag as published */
	uint8_t pad;          /* zero */
	uint32_t props_len;   /* bytes of forwarded MQTT 5 properties */
	uint32_t payload_len; /* bytes of payload */
	uint64_t expiry_ms;   /* monotonic expiry, 0: none */
	uint8_t data[];       /* topic, properties, payload */
};

#define XW_F_QOS_MASK  0x3u
#define XW_F_RETAIN    0x4u
#define XW_F_STORE     0x8u
#define XW_F_SUB_SHIFT 4

/* Bytes a connection had read before it moved. */
struct xw_bytes {
	uint32_t len;         /* bytes in data */
	uint16_t from;        /* the worker that accepted it */
	uint16_t listener;    /* the configured listener it came in on (per_listener_settings) */
	struct conn_tls *tls; /* its TLS state (the SSL moves with it), or NULL */
	struct conn_ws *ws;   /* its WebSocket state (a frame may be half read), or NULL */
	uint8_t data[];       /* CONNECT and whatever followed, as plaintext */
};

/* A shared subscription request from a member's worker to the group's owner. */
struct xw_share_req {
	uint64_t gen;   /* the member session's generation */
	uint64_t data;  /* its subscription data (join) */
	uint64_t reply; /* the connection id to answer (XW_SHARE_DONE), or 0 */
	uint16_t from;  /* its worker */
	bool online;    /* join, online: whether it is connected */
	uint16_t len;   /* bytes of key */
	uint8_t key[];  /* "$share/name/filter" */
};

unsigned xw_home(unsigned n, const uint8_t *key, size_t len)
{
	/* One definition for the broker and whatever writes its persistence directory. */
	return store_home(n, key, len);
}

int xw_init(struct worker *w)
{
	struct broker *b = w->b;

	w->xw.out = calloc(b->nworkers, sizeof(*w->xw.out));
	if (!w->xw.out)
		return ST_ERR_NOMEM;
	for (unsigned to = 0; to < b->nworkers; to++)
		w->xw.out[to].ch = &b->shared.chans[w->index * b->nworkers + to];
	w->xw.others =
	        (b->nworkers == 64 ? ~0ull : (1ull << b->nworkers) - 1) & ~(1ull << w->index);
	return ST_OK;
}

/* Releases what an entry holds that was never handled (overflow at exit, channels at exit). */
static void xw_entry_discard(const struct chan_entry *e)
{
	switch (e->kind) {
	case XW_DELIVER:
	case XW_RETAIN_DROP:
		msg_unref(e->p1);
		break;
	case XW_SHARE_DELIVER:
	case XW_SHARE_REHOME:
		msg_unref(e->p1);
		share_group_unref(e->p2);
		break;
	case XW_HANDOFF:
		close((int)e->arg);
		conn_tls_destroy(((struct xw_bytes *)e->p1)->tls);
		conn_ws_destroy(((struct xw_bytes *)e->p1)->ws);
		free(e->p1);
		break;
	case XW_BULK:
		/* Only QoS 0 travels in bulk: nothing in it is owed to anyone. */
		free(e->p1);
		break;
	case XW_SHARE_DONE:
	case XW_SHARE_MARK:
		break; /* p1 is a number */
	default:
		free(e->p1);
		break;
	}
}

void xw_fini(struct worker *w)
{
	if (!w->xw.out)
		return;
	for (unsigned to = 0; to < w->nworkers; to++) {
		struct xw_out *o = &w->xw.out[to];

		for (uint32_t i = 0; i < o->over_len; i++)
			xw_entry_discard(&o->over[(o->over_head + i) & (o->over_cap - 1)]);
		free(o->over);
		free(o->bulk);
	}
	free(w->xw.out);
	w->xw.out = NULL;
}

/* Appends e to the overflow queue of o. False when out of memory. */
static bool xw_over_push(struct xw *x, struct xw_out *o, const struct chan_entry *e)
{
	if (o->over_len == o->over_cap && fifo_grow((void **)&o->over, &o->over_head, o->over_len,
	                                            &o->over_cap, sizeof(*o->over), 256) != ST_OK)
		return false;
	o->over[(o->over_head + o->over_len) & (o->over_cap - 1)] = *e;
	o->over_len++;
	x->backlog++;
	x->stats.held++;
	return true;
}

/*
 * Queues e for worker `to`. Entries keep their order: once something waits in the overflow,
 * everything after it waits too. droppable: a QoS 0 message, dropped rather than held.
 * Returns false when e was not queued (the caller still owns what it holds).
 */
static bool xw_push_raw(struct worker *w, unsigned to, const struct chan_entry *e, bool droppable)
{
	struct xw_out *o = &w->xw.out[to];

	if (o->over_len == 0 && chan_push(o->ch, e)) {
		o->pushed = true;
		if (w->ps)
			w->ps->out_queued[to]++;
		return true;
	}
	if (droppable) {
		w->xw.stats.dropped++;
		w->stats.msgs_dropped++;
		return false;
	}
	if (xw_over_push(&w->xw, o, e)) {
		/* Counted as queued now: the overflow keeps the order they are handled in. */
		if (w->ps)
			w->ps->out_queued[to]++;
		return true;
	}
	w->stats.msgs_dropped++;
	return false;
}

/* Hands over the bulk buffer gathered for `to` (dropped, counted, if the channel is full). */
static void xw_bulk_close(struct worker *w, unsigned to)
{
	struct xw_out *o = &w->xw.out[to];
	struct xw_bulk *bk = o->bulk;
	struct chan_entry e = {.kind = XW_BULK, .p1 = bk};

	if (!bk)
		return;
	o->bulk = NULL;
	if (xw_push_raw(w, to, &e, true)) {
		w->xw.stats.forwarded += bk->count;
		return;
	}
	/* xw_push_raw counted one drop: the buffer held count messages. */
	w->xw.stats.dropped += bk->count - 1;
	w->stats.msgs_dropped += bk->count - 1;
	free(bk);
}

/* Queues e for `to` after whatever small messages were gathered for it: order is kept. */
static bool xw_push(struct worker *w, unsigned to, const struct chan_entry *e, bool droppable)
{
	xw_bulk_close(w, to);
	return xw_push_raw(w, to, e, droppable);
}

bool xw_bulk_fits(const struct pub_view *v)
{
	return sizeof(struct xw_rec) + (size_t)v->topic.len + v->props.len + v->payload.len <=
	       XW_BULK_REC_MAX;
}

void xw_forward_small(struct worker *w, const struct pub_view *v, uint64_t targets, bool retain)
{
	uint32_t len = (uint32_t)(sizeof(struct xw_rec) + v->topic.len + v->props.len +
	                          v->payload.len + 7) &
	               ~7u;

	targets &= ~(1ull << w->index);
	for (unsigned to = 0; targets; to++, targets >>= 1) {
		struct xw_out *o = &w->xw.out[to];
		struct xw_rec *r;

		if (!(targets & 1) || to >= w->nworkers)
			continue;
		if (o->bulk && o->bulk->used + len > sizeof(o->bulk->data))
			xw_bulk_close(w, to);
		if (!o->bulk) {
			o->bulk = malloc(sizeof(*o->bulk));
			if (!o->bulk) {
				w->stats.msgs_dropped++;
				continue;
			}
			o->bulk->used = o->bulk->count = 0;
		}
		r = (struct xw_rec *)(void *)(o->bulk->data + o->bulk->used);
		*r = (struct xw_rec){.len = len,
		                     .topic_len = (uint16_t)v->topic.len,
		                     .retain = retain,
		                     .props_len = v->props.len,
		                     .payload_len = v->payload.len,
		                     .expiry_ms = v->expiry_ms};
		memcpy(r->data, v->topic.ptr, v->topic.len);
		if (v->props.len)
			memcpy(r->data + v->topic.len, v->props.ptr, v->props.len);
		memcpy(r->data + v->topic.len + v->props.len, v->payload.ptr, v->payload.len);
		o->bulk->used += len;
		o->bulk->count++;
	}
}

uint64_t xw_targets(struct worker *w, const uint8_t *topic, size_t len)
{
	return interest_targets(&w->b->shared.interest, topic, len, w->xw.others);
}

void xw_forward(struct worker *w, struct msg *m, uint64_t targets, uint8_t qos, bool retain,
                bool store, uint64_t commit, uint64_t origin)
{
	struct chan_entry e = {
	        .kind = XW_DELIVER,
	        .arg = (uint32_t)qos | (retain ? XW_F_RETAIN : 0) | (store ? XW_F_STORE : 0),
	        .u64 = commit,
	        .p1 = m,
	        .p2 = (void *)(uintptr_t)origin,
	};

	targets &= ~(1ull << w->index);
	for (unsigned to = 0; targets; to++, targets >>= 1) {
		if (!(targets & 1) || to >= w->nworkers)
			continue;
		msg_ref(m);
		/* A retained write is state, never dropped; a QoS 0 delivery may be. */
		if (xw_push(w, to, &e, qos == 0 && !store))
			w->xw.stats.forwarded++;
		else
			msg_unref(m);
	}
}

void xw_retain_drop(struct worker *w, struct msg *m)
{
	struct chan_entry e = {.kind = XW_RETAIN_DROP, .p1 = m};

	for (unsigned to = 0; to < w->nworkers; to++) {
		if (to == w->index)
			continue;
		msg_ref(m);
		if (!xw_push(w, to, &e, false))
			msg_unref(m);
	}
}

void xw_handoff(struct worker *w, unsigned to, int fd, unsigned listener, uint8_t *bytes,
                uint32_t len, struct conn_tls *tls, struct conn_ws *ws)
{
	struct xw_bytes *hb = malloc(sizeof(*hb) + len);
	struct chan_entry e = {.kind = XW_HANDOFF, .arg = (uint32_t)fd};

	if (!hb) {
		admit_release(w->b, listener);
		close(fd);
		free(bytes);
		conn_tls_destroy(tls);
		conn_ws_destroy(ws);
		return;
	}
	hb->len = len;
	hb->from = (uint16_t)w->index;
	hb->listener = (uint16_t)listener;
	hb->tls = tls;
	hb->ws = ws;
	memcpy(hb->data, bytes, len);
	free(bytes);
	e.p1 = hb;
	if (xw_push(w, to, &e, false)) {
		w->xw.stats.handoffs++;
	} else {
		admit_release(w->b, listener);
		xw_entry_discard(&e);
	}
}

static bool xw_share_send(struct worker *w, enum xw_kind kind, unsigned owner, const uint8_t *key,
                          size_t len, uint64_t gen, uint64_t data, bool online, uint64_t reply)
{
	struct xw_share_req *r = malloc(sizeof(*r) + len);
	struct chan_entry e = {.kind = kind};

	if (!r)
		return false;
	*r = (struct xw_share_req){.gen = gen,
	                           .data = data,
	                           .reply = reply,
	                           .from = (uint16_t)w->index,
	                           .online = online,
	                           .len = (uint16_t)len};
	memcpy(r->key, key, len);
	e.p1 = r;
	if (xw_push(w, owner, &e, false))
		return true;
	free(r);
	return false;
}

bool xw_share_join(struct worker *w, unsigned owner, const uint8_t *key, size_t len, uint64_t gen,
                   uint64_t data, bool online, uint64_t reply)
{
	return xw_share_send(w, XW_SHARE_JOIN, owner, key, len, gen, data, online, reply);
}

bool xw_share_leave(struct worker *w, unsigned owner, const uint8_t *key, size_t len, uint64_t gen,
                    uint64_t reply)
{
	return xw_share_send(w, XW_SHARE_LEAVE, owner, key, len, gen, 0, false, reply);
}

void xw_share_mark(struct worker *w, unsigned owner, unsigned src, uint64_t origin, uint64_t kh)
{
	struct chan_entry e = {
	        .kind = XW_SHARE_MARK, .arg = src, .u64 = origin, .p1 = (void *)(uintptr_t)kh};

	xw_push(w, owner, &e, false);
}

void xw_share_online(struct worker *w, unsigned owner, const uint8_t *key, size_t len, uint64_t gen,
                     bool online)
{
	xw_share_send(w, XW_SHARE_ONLINE, owner, key, len, gen, 0, online, 0);
}

static void xw_share_push(struct worker *w, enum xw_kind kind, unsigned to, uint64_t gen,
                          struct msg *m, struct share_group *g, uint32_t arg)
{
	struct chan_entry e = {.kind = kind, .arg = arg, .u64 = gen, .p1 = m, .p2 = g};

	if (!xw_push(w, to, &e, (arg & XW_F_QOS_MASK) == 0))
		xw_entry_discard(&e);
}

/* A session generation and a hop count in one word (generations stay far below 2^56). */
#define XW_GEN_BITS 56
#define XW_GEN_MASK ((UINT64_C(1) << XW_GEN_BITS) - 1)

static uint64_t xw_gen_hops(uint64_t gen, unsigned hops)
{
	return (gen & XW_GEN_MASK) | (uint64_t)(hops < XW_HOPS_MAX ? hops : XW_HOPS_MAX)
	                                     << XW_GEN_BITS;
}

void xw_share_deliver(struct worker *w, unsigned to, uint64_t gen, struct msg *m,
                      struct share_group *g, uint8_t qos, bool retain, uint32_t sub_id,
                      unsigned hops)
{
	msg_ref(m);
	share_group_ref(g);
	/* The member's worker stores it: a publisher's acknowledgement waits for that worker's
	 * sync, through this worker's full count when the publisher is on a third (persist.h). */
	if (w->ps && qos) {
		w->ps->pub_remote = true;
		w->ps->relay_in_fill = true;
	}
	xw_share_push(w, XW_SHARE_DELIVER, to, xw_gen_hops(gen, hops), m, g,
	              (uint32_t)qos | (retain ? XW_F_RETAIN : 0) | (sub_id << XW_F_SUB_SHIFT));
}

void xw_share_rehome(struct worker *w, uint64_t gen, struct msg *m, struct share_group *g,
                     uint8_t qos, bool retain, unsigned hops)
{
	xw_share_push(w, XW_SHARE_REHOME, g->owner, xw_gen_hops(gen, hops), m, g,
	              (uint32_t)qos | (retain ? XW_F_RETAIN : 0));
}

/* --- what arrives ------------------------------------------------------------------------ */

static void xw_on_deliver(struct worker *w, const struct chan_entry *e, unsigned from)
{
	struct msg *m = e->p1;
	struct pub_view v = pub_view_of(m);
	uint64_t origin = (uint64_t)(uintptr_t)e->p2;
	bool sess = true, rep = true;

	/* A resent message this worker has (persist.h, origins) is not applied twice. */
	if (origin && w->ps)
		persist_origin_apply(w, from, origin, &sess, &rep);
	if ((e->arg & XW_F_STORE) && rep)
		route_retain_apply(w, m);
	if (sess)
		route_local(w, NULL, &v, (uint8_t)(e->arg & XW_F_QOS_MASK),
		            (e->arg & XW_F_RETAIN) != 0);
	else if (origin && w->ps)
		/* Its groups here may still lack it (persist_marks.c). */
		route_resend_groups(w, &v, (uint8_t)(e->arg & XW_F_QOS_MASK),
		                    (e->arg & XW_F_RETAIN) != 0);
	msg_unref(m);
}

/* Routes every message of a bulk buffer, in order, from the buffer itself. */
static void xw_on_bulk(struct worker *w, struct xw_bulk *bk)
{
	for (uint32_t off = 0; off < bk->used;) {
		const struct xw_rec *r = (const struct xw_rec *)(const void *)(bk->data + off);
		struct pub_view v = {
		        .topic = {r->data, r->topic_len},
		        .props = {r->data + r->topic_len, r->props_len},
		        .payload = {r->data + r->topic_len + r->props_len, r->payload_len},
		        .expiry_ms = r->expiry_ms,
		};

		route_local(w, NULL, &v, 0, r->retain != 0);
		/* A shared group's remote member needed a struct msg: it was this call's. */
		if (v.m)
			msg_unref(v.m);
		off += r->len;
	}
	free(bk);
}

static void xw_on_share_req(struct worker *w, const struct chan_entry *e)
{
	struct xw_share_req *r = e->p1;
	struct share_member m = {
	        .data = r->data, .gen = r->gen, .worker = r->from, .online = r->online};
	bool added;

	if (e->kind == XW_SHARE_JOIN)
		share_subscribe(&w->shares, w->subs, r->key, r->len, &m, &added);
	else if (e->kind == XW_SHARE_LEAVE)
		share_unsubscribe(&w->shares, w->subs, r->key, r->len, &m);
	else
		share_set_online(&w->shares, r->key, r->len, &m, r->online);
	/* Applied, and the interest summary says so: the member's SUBACK (UNSUBACK) may leave.
	 * It follows every delivery to that member pushed before it (one channel, in order). */
	if (r->reply) {
		struct chan_entry done = {
		        .kind = XW_SHARE_DONE, .u64 = r->gen, .p1 = (void *)(uintptr_t)r->reply};

		xw_push(w, r->from, &done, false);
	}
	free(r);
}

static void xw_on_share_deliver(struct worker *w, const struct chan_entry *e)
{
	uint64_t gen = e->u64 & XW_GEN_MASK;
	unsigned hops = (unsigned)(e->u64 >> XW_GEN_BITS);
	struct session *s = worker_session_by_gen(w, gen);
	struct share_group *g = e->p2;
	uint8_t qos = (uint8_t)(e->arg & XW_F_QOS_MASK);
	bool retain = (e->arg & XW_F_RETAIN) != 0;

	/* A member that has left (its UNSUBACK waits for the owner's answer, which follows this
	 * entry) takes nothing more from the group. */
	bool left = s && session_sub_find(s, g->key, g->key_len) < 0;

	if (s && !left && route_member_may_read(s, e->p1)) {
		route_deliver_member(w, s, e->p1, e->p2, qos, retain, e->arg >> XW_F_SUB_SHIFT);
	} else if (s || qos) {
		/* The member is gone or has left, or may not read this topic (its ACL lives here,
		 * not on the owner): the group chooses another, with the entry's references. */
		xw_share_rehome(w, gen, e->p1, e->p2, qos, retain, hops + 1);
		return;
	}
	msg_unref(e->p1);
	share_group_unref(e->p2);
}

static void xw_on_entry(struct worker *w, const struct chan_entry *e, unsigned from)
{
	struct share_member leaving;

	w->xw.stats.received++;
	switch (e->kind) {
	case XW_DELIVER:
		xw_on_deliver(w, e, from);
		break;
	case XW_HANDOFF: {
		struct xw_bytes *hb = e->p1;

		worker_conn_adopt(w, (int)e->arg, hb->listener, hb->data, hb->len, hb->from,
		                  hb->tls, hb->ws);
		free(hb);
		break;
	}
	case XW_SHARE_JOIN:
	case XW_SHARE_LEAVE:
	case XW_SHARE_ONLINE:
		xw_on_share_req(w, e);
		break;
	case XW_SHARE_DELIVER:
		xw_on_share_deliver(w, e);
		break;
	case XW_BULK:
		xw_on_bulk(w, e->p1);
		break;
	case XW_SHARE_DONE:
		worker_share_answered(w, e->u64, (uint64_t)(uintptr_t)e->p1);
		break;
	case XW_SHARE_MARK:
		persist_seen_add(w, e->arg, e->u64, (uint64_t)(uintptr_t)e->p1);
		break;
	case XW_RETAIN_DROP:
		route_retain_drop(w, e->p1);
		msg_unref(e->p1);
		break;
	case XW_SHARE_REHOME:
		leaving = (struct share_member){.gen = e->u64 & XW_GEN_MASK,
		                                .worker = (uint16_t)from};
		route_rehome_remote(w, e->p1, e->p2, &leaving, (uint8_t)(e->arg & XW_F_QOS_MASK),
		                    (e->arg & XW_F_RETAIN) != 0, (unsigned)(e->u64 >> XW_GEN_BITS));
		msg_unref(e->p1);
		share_group_unref(e->p2);
		break;
	default:
		abort(); /* a kind nobody sends: memory corruption */
	}
}

/*
 * An entry stamped with a commit of its sender that is not on disk yet waits, and everything
 * behind it from that sender with it (persist.h): what this worker stores must never depend
 * on a record the sender could still lose. Not while stopping: every log is flushed then.
 */
static bool xw_must_wait(const struct worker *w, const struct chan_entry *e, unsigned from)
{
	return e->kind == XW_DELIVER && e->u64 && w->ps && !w->stopping &&
	       !persist_synced_reached(w, from, e->u64);
}

/*
 * One pass over the channels into w. early: stops each channel at its first handoff, which
 * waits for the batch end (below).
 */
static void xw_drain_pass(struct worker *w, bool early)
{
	struct broker *b = w->b;
	bool parked = false;

	for (unsigned from = 0; from < b->nworkers; from++) {
		struct chan *ch = &b->shared.chans[from * b->nworkers + w->index];
		const struct chan_entry *pe;
		struct chan_entry e;
		bool any = false;

		if (from == w->index)
			continue;
		while ((pe = chan_peek(ch)) != NULL) {
			if (early && pe->kind == XW_HANDOFF)
				break;
			if (xw_must_wait(w, pe, from)) {
				/* Asks to be rung, then looks again (Dekker with the sender's
				 * publish-then-check). */
				persist_park(w, true);
				if (xw_must_wait(w, pe, from)) {
					parked = true;
					break;
				}
			}
			chan_pop(ch, &e);
			xw_on_entry(w, &e, from);
			any = true;
			if (w->ps)
				w->ps->in_handled[from]++;
		}
		if (any)
			chan_release(ch);
	}
	if (w->ps && w->ps->parked != parked)
		persist_park(w, parked);
}

/*
 * Before the ring hands over input (ring_set_before_input): a worker queues its forwards in
 * the channels, publishes them, and only then sends the PUBACK or SUBACK that a client may
 * act on (worker_batch_end), so what the client does next (a SUBSCRIBE to a worker that holds
 * a forwarded message, a CONNECT where a retained message was forwarded) finds it here.
 * Handoffs wait for the batch end: a CONNECT that takes a session over must come after the
 * old connection's last bytes, which may be in this very batch (conn_drain_input reads what
 * is still in the socket).
 */
void xw_drain_early(struct ring *r, void *arg)
{
	struct worker *w = arg;

	(void)r;
	xw_drain_pass(w, true);
}

void xw_drain(struct worker *w)
{
	/* What is not a handoff first, from every channel: a client whose CONNECT was handed
	 * over may have sent its SUBSCRIBE with it, after what other workers forwarded. */
	xw_drain_pass(w, true);
	xw_drain_pass(w, false);
}

/* Moves what waits in o's overflow into its channel, in order, as far as there is room. */
static void xw_over_drain(struct xw *x, struct xw_out *o)
{
	while (o->over_len && chan_push(o->ch, &o->over[o->over_head])) {
		o->over_head = (o->over_head + 1) & (o->over_cap - 1);
		o->over_len--;
		x->backlog--;
		o->pushed = true;
	}
	if (o->over_len == 0 && o->over) {
		free(o->over);
		o->over = NULL;
		o->over_cap = o->over_head = 0;
	}
}

void xw_flush(struct worker *w)
{
	struct broker *b = w->b;

	for (unsigned to = 0; to < b->nworkers; to++) {
		struct xw_out *o = &w->xw.out[to];

		if (o->over_len)
			xw_over_drain(&w->xw, o);
		xw_bulk_close(w, to);
		if (!o->pushed)
			continue;
		o->pushed = false;
		if (chan_publish(o->ch)) {
			ring_msg(&w->ring, &b->workers[to].ring, &b->workers[to].xw.io, 0);
			w->xw.stats.doorbells++;
		}
	}
}

void xw_wake_all(struct worker *w)
{
	struct broker *b = w->b;

	for (unsigned to = 0; to < b->nworkers; to++)
		if (to != w->index)
			ring_msg(&w->ring, &b->workers[to].ring, &b->workers[to].xw.io, 0);
}

void xw_discard(struct broker *b)
{
	for (unsigned i = 0; i < b->nworkers * b->nworkers; i++) {
		struct chan *ch = &b->shared.chans[i];
		struct chan_entry e;

		if (!ch->slots)
			continue;
		/* Pushed but never published entries are still the producer's: publish them. */
		chan_publish(ch);
		while (chan_pop(ch, &e))
			xw_entry_discard(&e);
		chan_release(ch);
	}
}
