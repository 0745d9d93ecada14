/*
 * The cluster on a worker's side (cluster.h): what a worker sends to the cluster is written,
 * subject and envelope included, into a bulk buffer of its own and handed to the link thread
 * once per loop iteration, so the per-message cost here is the subject mapping and one copy,
 * with no lock, no system call and one allocation per buffer of many messages. What NATS
 * delivered for this worker waits in its inbound channel and is routed at the batch end as a
 * local publish that is not sent to the cluster again.
 */
#include "cluster.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "cluster/hello.h"
#include "conn.h"
#include "cluster_impl.h"
#include "out.h"
#include "route.h"
#include "session.h"
#include "share.h"
#include "starling/props.h"
#include "worker.h"

#define CL_DRAIN_MAX 4096 /* messages routed per batch end; the rest next iteration */

static inline uint32_t cl_align8(uint32_t n)
{
	return (n + 7u) & ~7u;
}

static void cl_on_doorbell(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe);

static void cl_arm(struct cluster_lane *l)
{
	if (l->efd_armed || l->w->stopping)
		return;
	ring_read(&l->w->ring, &l->efd_io, l->efd, &l->efd_val, sizeof(l->efd_val));
	l->efd_armed = true;
}

/* The delivery thread rang: the messages are drained at the batch end (cluster_drain). */
static void cl_on_doorbell(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct cluster_lane *l =
	        (struct cluster_lane *)((char *)io - offsetof(struct cluster_lane, efd_io));

	(void)r;
	l->efd_armed = false;
	if (cqe->res == -ECANCELED)
		return;
	cl_arm(l);
}

int cluster_worker_init(struct worker *w)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_lane *l;

	if (!cl)
		return ST_OK;
	l = &cl->lanes[w->index];
	l->w = w;
	l->efd_io.fn = cl_on_doorbell;
	l->topic = malloc(CLUSTER_SUBJECT_MAX + 1);
	if (!l->topic)
		return ST_ERR_NOMEM;
	w->cl = l;
	cluster_retain_worker_init(w);
	cl_arm(l);
	return ST_OK;
}

/* Gives the buffer being filled to the link thread, or holds it while the channel is full. */
static void cl_hand(struct cluster_lane *l)
{
	struct chan_entry e = {.kind = CL_E_BUF, .arg = l->len, .p1 = l->buf};

	if (!l->buf)
		return;
	if (l->held_head || !chan_push(&l->out, &e)) {
		struct cl_held h = {.next = NULL, .len = l->len};

		memcpy(l->buf, &h, sizeof(h));
		if (l->held_tail)
			memcpy(l->held_tail + offsetof(struct cl_held, next), &l->buf,
			       sizeof(uint8_t *));
		else
			l->held_head = l->buf;
		l->held_tail = l->buf;
		l->held_bytes += l->len;
	}
	l->buf = NULL;
	l->len = l->cap = 0;
}

/* Room for a record of `need` bytes (header included) at l->buf + l->len; NULL: none. */
static uint8_t *cl_reserve(struct cluster_lane *l, uint32_t need)
{
	if (l->buf && l->len + need > l->cap)
		cl_hand(l);
	if (!l->buf) {
		uint32_t cap = need + CL_BUF_HEAD > CL_BUF_SIZE ? need + CL_BUF_HEAD : CL_BUF_SIZE;

		l->buf = malloc(cap);
		if (!l->buf)
			return NULL;
		l->cap = cap;
		l->len = CL_BUF_HEAD;
	}
	return l->buf + l->len;
}

static void cl_commit(struct cluster_lane *l, uint8_t type, uint32_t a, uint32_t b)
{
	struct cl_rec *r = (struct cl_rec *)(l->buf + l->len);

	*r = (struct cl_rec){.type = type, .a = (uint16_t)a, .b = b};
	l->len += cl_align8((uint32_t)sizeof(*r) + a + b);
}

void cluster_publish(struct worker *w, struct session *origin, const struct pub_view *v,
                     uint8_t qos, bool retain)
{
	struct cluster_lane *l = w->cl;
	struct cluster *cl = w->b->cluster;
	struct cluster_msg m = {
	        .qos = qos,
	        .retain = retain,
	        .level = v->props.len ? ST_MQTT_5 : ST_MQTT_311,
	        .origin = {(const uint8_t *)cl->node_id, (uint32_t)cl->node_id_len},
	        .props = v->props,
	        .epoch = l->epoch,
	        .payload = v->payload,
	};
	size_t subj_max = cl->prefix.len + 3 + (size_t)v->topic.len * 3 + 1;
	uint32_t head, need;
	uint8_t *p;
	long n, h;

	if (v->expiry_ms) {
		/* What is left of the interval, rounded up; an expired message goes nowhere. */
		if (v->expiry_ms <= w->now_ms)
			return;
		m.expiry_s = (uint32_t)((v->expiry_ms - w->now_ms + 999) / 1000);
	}
	if (subj_max > CLUSTER_SUBJECT_MAX + 1)
		subj_max = CLUSTER_SUBJECT_MAX + 1;
	/* A publisher's messages share a lane, so every node routes them on one worker, in
	 * order; messages without a session take the worker's own. */
	m.lane = origin ? (uint32_t)((origin->gen * 0x9E3779B97F4A7C15ull) >> 32) ^ w->index
	                : w->index;
	head = (uint32_t)cluster_env_head_size(&m);
	if (l->held_bytes + l->len > CL_BACKLOG_MAX) {
		atomic_fetch_add_explicit(&l->dropped, 1, memory_order_relaxed);
		return;
	}
	need = (uint32_t)(sizeof(struct cl_rec) + subj_max + head + v->payload.len + 8);
	p = cl_reserve(l, need);
	if (!p) {
		atomic_fetch_add_explicit(&l->dropped, 1, memory_order_relaxed);
		return;
	}
	p += sizeof(struct cl_rec);
	n = cluster_subject_of_topic(&cl->prefix, v->topic.ptr, v->topic.len, (char *)p, subj_max);
	if (n == CLUSTER_MAP_LOCAL)
		return; /* $SYS: this node's own */
	if (n < 0) {
		atomic_fetch_add_explicit(&cl->too_long, 1, memory_order_relaxed);
		return;
	}
	p += n + 1;
	m.seq = ++l->seq;
	h = cluster_env_encode_head(&m, p, head);
	if (h < 0) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		return;
	}
	memcpy(p + h, v->payload.ptr, v->payload.len);
	/* A retained write also goes to the bucket (cluster_retain.c). */
	if (retain && w->b->cfg.retain_available) {
		cl_commit(l, CL_REC_PUB_RETAIN, (uint32_t)n + 1, (uint32_t)h + v->payload.len);
		cluster_retain_committed(w);
		return;
	}
	cl_commit(l, CL_REC_PUB, (uint32_t)n + 1, (uint32_t)h + v->payload.len);
}

void cluster_interest(struct worker *w, const uint8_t *filter, size_t len, bool add)
{
	struct cluster_lane *l = w->cl;
	uint8_t *p = cl_reserve(l, (uint32_t)(sizeof(struct cl_rec) + len + 8));

	if (!p) {
		/* The node's interest would be wrong from now on: say so, it is not recoverable
		 * short of memory. */
		log_msg(&w->log, LOG_T_ERROR, "Cluster: out of memory recording a filter.");
		return;
	}
	memcpy(p + sizeof(struct cl_rec), filter, len);
	cl_commit(l, add ? CL_REC_SUB : CL_REC_UNSUB, (uint32_t)len, 0);
}

bool cluster_share(struct worker *w, const uint8_t *key, size_t len, bool add)
{
	struct cluster *cl = w->b->cluster;
	char queue[CLUSTER_SUBJECT_MAX + 1], subj[CLUSTER_SUBJECT_MAX + 1];
	size_t qlen, parent;
	uint8_t *p;

	if (add && (cluster_subjects_of_share(&cl->prefix, key, len, queue, sizeof(queue), &qlen,
	                                      subj, sizeof(subj), &parent) < 0 ||
	            qlen + strlen(subj) > CLUSTER_SUBJECT_MAX))
		return false; /* $SYS, or too long for NATS: the group stays on this node */
	p = cl_reserve(w->cl, (uint32_t)(sizeof(struct cl_rec) + len + 8));
	if (!p) {
		log_msg(&w->log, LOG_T_ERROR, "Cluster: out of memory recording a shared group.");
		return false;
	}
	memcpy(p + sizeof(struct cl_rec), key, len);
	cl_commit(w->cl, add ? CL_REC_QSUB : CL_REC_QUNSUB, (uint32_t)len, 0);
	return true;
}

void cluster_connected(struct worker *w, struct session *s)
{
	struct timespec ts;
	uint64_t ns;
	uint8_t *p;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	s->cl_since_ns = ns;
	p = cl_reserve(w->cl, (uint32_t)(sizeof(struct cl_rec) + s->client_id_len + 16));
	if (!p) {
		log_msg(&w->log, LOG_T_ERROR, "Cluster: out of memory announcing a client.");
		return;
	}
	p += sizeof(struct cl_rec);
	memcpy(p, s->client_id, s->client_id_len);
	memcpy(p + s->client_id_len, &ns, sizeof(ns));
	cl_commit(w->cl, CL_REC_HELLO, s->client_id_len, sizeof(ns));
}

/* Another node announced a client: a connection of the same id here since earlier goes. */
static void cl_hello(struct worker *w, void *nm)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_hello h;
	struct session *s;
	const char *subj;
	const uint8_t *data;
	uint32_t len;

	cluster_msg_view(nm, &subj, &data, &len);
	if (cluster_hello_decode(data, len, &h) != ST_OK) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		return;
	}
	s = worker_session_find(w, h.client.ptr, h.client.len);
	if (!s || s->bridge ||
	    !cluster_hello_wins(&h, s->cl_since_ns, (const uint8_t *)cl->node_id, cl->node_id_len))
		return;
	log_msg(&w->log, LOG_T_NOTICE, "Client %.*s connected to node %.*s of the cluster.",
	        (int)s->client_id_len, (const char *)s->client_id, (int)h.node.len,
	        (const char *)h.node.ptr);
	if (s->conn) {
		/* [MQTT-3.1.4-3] over the cluster: the existing connection is closed (MQTT 5:
		 * 0x8E). */
		out_disconnect(s->conn, ST_RC_SESSION_TAKEN_OVER, "another node took the session");
		conn_close(s->conn, false, "session taken over by another node");
	}
	/* The client's session is the other node's now (it asked for this one's, or started
	 * anew): a copy left here is stale, and its bucket entry too if it still names us. */
	s = worker_session_find(w, h.client.ptr, h.client.len);
	if (s && !s->conn && !s->bridge) {
		cluster_session_ended(w, s);
		cluster_session_dropped(w, h.client.ptr, h.client.len, h.node.ptr, h.node.len);
		worker_session_destroy(w, s);
	}
}

void cluster_flush(struct worker *w)
{
	struct cluster_lane *l = w->cl;
	struct cluster *cl = w->b->cluster;
	bool pushed = false;

	if (l->buf && l->len > CL_BUF_HEAD) {
		pushed = !l->held_head;
		cl_hand(l);
	}
	while (l->held_head) {
		struct cl_held h;
		struct chan_entry e = {.kind = CL_E_BUF, .p1 = l->held_head};

		memcpy(&h, l->held_head, sizeof(h));
		e.arg = h.len;
		if (!chan_push(&l->out, &e))
			break;
		pushed = true;
		l->held_bytes -= h.len;
		l->held_head = h.next;
		if (!h.next)
			l->held_tail = NULL;
	}
	if (pushed && chan_publish(&l->out))
		cluster_wake(&cl->idle, cl->efd);
}

/*
 * One message from NATS: routed here as a local publish, not sent to the cluster again; for
 * a shared group's queue subscription (qg), to that group alone.
 */
static void cl_route(struct worker *w, struct cluster_lane *l, void *nm, const struct cl_qgroup *qg)
{
	struct cluster *cl = w->b->cluster;
	const char *subj;
	const uint8_t *data;
	uint32_t len;
	struct cluster_msg m;
	long tl;

	cluster_msg_view(nm, &subj, &data, &len);
	tl = cluster_topic_of_subject(&cl->prefix, subj, strlen(subj), l->topic,
	                              CLUSTER_SUBJECT_MAX);
	if (tl <= 0 || cluster_env_decode(data, len, &m) != ST_OK) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		return;
	}
	struct pub_view v = {
	        .topic = {l->topic, (uint32_t)tl},
	        .props = m.props,
	        .payload = m.payload,
	        .expiry_ms = m.expiry_s ? w->now_ms + (uint64_t)m.expiry_s * 1000 : 0,
	};
	w->cl_inbound = true;
	if (!qg) {
		route_publish(w, NULL, &v, m.qos, m.retain);
	} else {
		struct share_group *g = share_find(&w->shares, qg->key, qg->len);

		/* The group went (its last member left) while the message was on its way: lost,
		 * and counted. */
		if (!g || !route_group(w, g, &v, m.qos, m.retain))
			atomic_fetch_add_explicit(&cl->dropped_in, 1, memory_order_relaxed);
		/* A delivery that had to keep the message promoted it: that reference was
		 * this call's (as route_publish's own). */
		if (v.m)
			msg_unref(v.m);
	}
	w->cl_inbound = false;
}

void cluster_drain(struct worker *w)
{
	struct cluster_lane *l = w->cl;
	struct chan_entry e;
	unsigned n = 0;

	while (n < CL_DRAIN_MAX && chan_pop(&l->in, &e)) {
		if (e.kind == CL_E_HELLO)
			cl_hello(w, e.p1);
		else if (e.kind == CL_E_TAKE)
			cluster_session_take(w, e.p1);
		else
			cl_route(w, l, e.p1, e.kind == CL_E_QMSG ? e.p2 : NULL);
		cluster_msg_free(e.p1);
		n++;
	}
	if (n)
		chan_release(&l->in);
	cluster_retain_drain(w);
	cluster_session_drain(w);
}

bool cluster_before_wait(struct worker *w)
{
	struct cluster_lane *l = w->cl;

	atomic_store_explicit(&l->idle, true, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	if (chan_peek(&l->in) || cluster_retain_waiting(w) || cluster_session_waiting(w)) {
		atomic_store_explicit(&l->idle, false, memory_order_relaxed);
		return false;
	}
	return true;
}

void cluster_after_wait(struct worker *w)
{
	atomic_store_explicit(&w->cl->idle, false, memory_order_relaxed);
}

void cluster_wake(_Atomic bool *idle, int efd)
{
	static const uint64_t one = 1;

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(idle, memory_order_relaxed) &&
	    atomic_exchange_explicit(idle, false, memory_order_acq_rel)) {
		/* A full counter (never, at one write per wake-up) would still wake the reader. */
		ssize_t r = write(efd, &one, sizeof(one));
		(void)r;
	}
}
