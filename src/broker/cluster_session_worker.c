/*
 * Persistent sessions across nodes, the workers' side (cluster_session.c has the design and the
 * sessions thread): a CONNECT parked and resumed, a session imported, another node's request
 * answered by the session's home worker, the bucket told what changed. No libnats call here
 * but natsMsg's accessors, which only read a message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <nats/nats.h>

#include "broker.h"
#include "cluster.h"
#include "cluster_impl.h"
#include "cluster_session_impl.h"
#include "conn.h"
#include "out.h"
#include "persist.h"
#include "session.h"
#include "starling/props.h"
#include "store/record.h"
#include "worker.h"

static uint64_t ss_conn_hash(const struct cl_sess *ss, uint64_t id)
{
	return XXH3_64bits_withSeed(&id, sizeof(id), ss->seed);
}

static bool ss_conn_eq(const void *val, const void *key)
{
	return ((const struct conn *)val)->id == *(const uint64_t *)key;
}

static struct cl_sjob *ss_job_new(struct worker *w, uint8_t kind, const uint8_t *id, size_t idlen)
{
	struct cl_sjob *j = calloc(1, sizeof(*j) + idlen);

	if (!j)
		return NULL;
	j->kind = kind;
	j->worker = (uint16_t)w->index;
	j->idlen = (uint32_t)idlen;
	memcpy(j->id, id, idlen);
	return j;
}

/* To the sessions thread; false (the job freed) when its channel is full. */
static bool ss_push(struct worker *w, struct cl_sjob *j)
{
	struct cl_sess *ss = w->b->cluster->ss;
	struct chan *ch = &ss->lanes[w->index].jobs;
	struct chan_entry e = {.kind = CL_E_SJOB, .p1 = j};

	if (!chan_push(ch, &e)) {
		log_msg(&w->log, LOG_T_WARNING,
		        "Cluster: too many session changes at once; client %.*s's is not shared.",
		        (int)j->idlen, (const char *)j->id);
		cluster_ss_free_job(j);
		return false;
	}
	chan_publish(ch);
	cluster_wake(&ss->idle, ss->efd);
	return true;
}

bool cluster_session_park(struct conn *c, const uint8_t *id, size_t idlen)
{
	struct worker *w = c->w;
	struct cluster *cl = w->b->cluster;
	struct cl_sslane *l;
	struct cl_sjob *j;

	if (!cl || c->cl_resolved || !atomic_load_explicit(&cl->connected, memory_order_relaxed))
		return false;
	l = &cl->ss->lanes[w->index];
	j = ss_job_new(w, SJ_TAKE, id, idlen);
	if (!j)
		return false;
	j->conn_id = c->id;
	if (hmap_insert(&l->parked, ss_conn_hash(cl->ss, c->id), c) != ST_OK) {
		cluster_ss_free_job(j);
		return false;
	}
	if (!ss_push(w, j)) {
		hmap_remove(&l->parked, ss_conn_hash(cl->ss, c->id), c);
		return false;
	}
	c->cl_parked = true;
	conn_handoff(c, w->index);
	return true;
}

void cluster_session_unpark(struct worker *w, struct conn *c)
{
	struct cl_sess *ss = w->b->cluster->ss;

	hmap_remove(&ss->lanes[w->index].parked, ss_conn_hash(ss, c->id), c);
	c->cl_parked = false;
}

/* Answered and its receive over: the CONNECT is handled again, on a connection of its own. */
static void ss_resume(struct conn *c)
{
	cluster_session_unpark(c->w, c);
	c->dead = true;
	worker_conn_resume(c->w, c);
}

void cluster_session_rx_ended(struct conn *c)
{
	c->cl_rx_ended = true;
	if (c->cl_answered)
		ss_resume(c);
}

static void ss_import(struct worker *w, const struct cl_sans *a)
{
	struct session *s = worker_session_find(w, a->id, a->idlen);
	uint64_t nsubs = 0, nmsgs = 0;

	if (s && s->conn) {
		/* Another connection of that id came meanwhile and made a session: it stays. */
		log_msg(&w->log, LOG_T_WARNING,
		        "Cluster: the session of client %.*s from node %s was not used: the client "
		        "connected here again meanwhile.",
		        (int)a->idlen, (const char *)a->id, a->from);
		return;
	}
	if (s) {
		if (s->will) {
			msg_unref(s->will);
			s->will = NULL;
		}
		worker_session_destroy(w, s);
	}
	if (persist_import_session(w, a->records, a->len, a->id, a->idlen, &nsubs, &nmsgs) != 0)
		log_msg(&w->log, LOG_T_WARNING,
		        "Cluster: the session of client %.*s from node %s was cut short.",
		        (int)a->idlen, (const char *)a->id, a->from);
	if (a->how == SA_MOVED)
		log_msg(&w->log, LOG_T_NOTICE,
		        "Cluster: the session of client %.*s came from node %s (%" PRIu64
		        " subscriptions, %" PRIu64 " messages queued or in flight%s).",
		        (int)a->idlen, (const char *)a->id, a->from, nsubs, nmsgs,
		        a->dropped ? ", more dropped: too many to carry" : "");
	else
		log_msg(&w->log, LOG_T_NOTICE,
		        "Cluster: the session of client %.*s starts from the cluster's bucket "
		        "(%" PRIu64
		        " subscriptions; node %s did not hand it over, nor its messages).",
		        (int)a->idlen, (const char *)a->id, nsubs, a->from);
}

void cluster_session_drain(struct worker *w)
{
	struct cl_sess *ss = w->b->cluster->ss;
	struct cl_sslane *l = &ss->lanes[w->index];
	struct chan_entry e;
	bool any = false;

	for (unsigned n = 0; n < CL_SS_CHAN && chan_pop(&l->answers, &e); n++) {
		struct cl_sans *a = e.p1;
		struct conn *c;

		any = true;
		if (a->how != SA_NONE && a->len)
			ss_import(w, a);
		c = hmap_find(&l->parked, ss_conn_hash(ss, a->conn_id), ss_conn_eq, &a->conn_id);
		if (c) {
			c->cl_answered = true;
			if (c->cl_rx_ended)
				ss_resume(c);
		}
		free(a->records);
		free(a);
	}
	if (any)
		chan_release(&l->answers);
}

bool cluster_session_waiting(struct worker *w)
{
	return chan_peek(&w->b->cluster->ss->lanes[w->index].answers) != NULL;
}

/* This worker's session of client id went to `node` (a hand-over, or its connect there). */
static void ss_moved_note(struct worker *w, const uint8_t *id, size_t idlen, const uint8_t *node,
                          size_t node_len)
{
	struct cl_sslane *l = &w->b->cluster->ss->lanes[w->index];
	struct cl_moved *m = &l->moved[l->moved_next++ % CL_SS_MOVED_SLOTS];

	m->id_hash = XXH3_64bits(id, idlen);
	m->until_ms = w->now_ms + CL_SS_MOVED_MS;
	snprintf(m->node, sizeof(m->node), "%.*s", (int)node_len, (const char *)node);
}

/* Where a session that is not here went moments ago, or NULL. */
static const char *ss_moved_to(struct worker *w, const uint8_t *id, size_t idlen)
{
	struct cl_sslane *l = &w->b->cluster->ss->lanes[w->index];
	uint64_t h = XXH3_64bits(id, idlen);
	const struct cl_moved *best = NULL;

	for (unsigned i = 0; i < CL_SS_MOVED_SLOTS; i++) {
		const struct cl_moved *m = &l->moved[i];

		if (m->id_hash == h && m->until_ms > w->now_ms &&
		    (!best || m->until_ms > best->until_ms))
			best = m;
	}
	return best ? best->node : NULL;
}

void cluster_session_dropped(struct worker *w, const uint8_t *id, size_t idlen, const uint8_t *node,
                             size_t node_len)
{
	ss_moved_note(w, id, idlen, node, node_len);
}

/* Another node asks for a session whose home worker is this one. */
void cluster_session_take(struct worker *w, void *nm)
{
	struct cluster *cl = w->b->cluster;
	struct cl_sess *ss = cl->ss;
	struct cluster_sess_request rq;
	struct store_buf b = {0};
	uint8_t status = CLUSTER_SESS_NONE;
	uint32_t dropped = 0;
	/* natsMsg's accessors only read the message: no lock, no wait. */
	const char *reply = natsMsg_GetReply(nm);
	struct session *s;
	struct cl_sjob *j;

	if (cluster_sess_request_decode((const uint8_t *)natsMsg_GetData(nm),
	                                (size_t)natsMsg_GetDataLength(nm), &rq) != ST_OK ||
	    !reply || store_buf_reserve(&b, CLUSTER_SESS_ANSWER_HEAD) != 0)
		return;
	b.len = CLUSTER_SESS_ANSWER_HEAD;
	s = worker_session_find(w, rq.client.ptr, rq.client.len);
	if (s && !s->bridge && s->conn) {
		/* [MQTT-3.1.4-3] across nodes: the client is now the other node's. */
		out_disconnect(s->conn, ST_RC_SESSION_TAKEN_OVER,
		               "the session moved to another node");
		conn_close(s->conn, false, "session taken over by another node");
		s = worker_session_find(w, rq.client.ptr, rq.client.len);
	}
	if (s && !s->bridge && !s->clean) {
		if (persist_export_session(
		            w, s, &b, atomic_load_explicit(&ss->move_max, memory_order_relaxed),
		            false, &dropped) == 0) {
			status = CLUSTER_SESS_HERE;
			if (dropped)
				log_msg(&w->log, LOG_T_NOTICE,
				        "Cluster: the session of client %.*s went to node %.*s (%u "
				        "subscriptions; %" PRIu32
				        " queued messages left behind: too many "
				        "to carry).",
				        (int)s->client_id_len, (const char *)s->client_id,
				        (int)rq.node.len, (const char *)rq.node.ptr, s->nsubs,
				        dropped);
			else
				log_msg(&w->log, LOG_T_NOTICE,
				        "Cluster: the session of client %.*s went to node %.*s (%u "
				        "subscriptions).",
				        (int)s->client_id_len, (const char *)s->client_id,
				        (int)rq.node.len, (const char *)rq.node.ptr, s->nsubs);
			/* Its pending will went with it. */
			if (s->will) {
				msg_unref(s->will);
				s->will = NULL;
			}
			worker_session_destroy(w, s);
			atomic_fetch_add_explicit(&ss->sent, 1, memory_order_relaxed);
			ss_moved_note(w, rq.client.ptr, rq.client.len, rq.node.ptr, rq.node.len);
		} else {
			b.len = CLUSTER_SESS_ANSWER_HEAD;
			dropped = 0;
		}
	}
	if (status == CLUSTER_SESS_NONE && !s) {
		/* Gone moments ago: the asking node follows it there (not back to itself). */
		const char *to = ss_moved_to(w, rq.client.ptr, rq.client.len);
		size_t tlen = to ? strlen(to) : 0;

		if (to && !(tlen == rq.node.len && memcmp(to, rq.node.ptr, tlen) == 0) &&
		    store_buf_reserve(&b, tlen) == 0) {
			memcpy(b.data + b.len, to, tlen);
			b.len += tlen;
			status = CLUSTER_SESS_ELSEWHERE;
		}
	}
	cluster_sess_answer_head(status, dropped, b.data, CLUSTER_SESS_ANSWER_HEAD);
	j = ss_job_new(w, SJ_REPLY, rq.client.ptr, rq.client.len);
	if (!j || !(j->subject = strdup(reply))) {
		if (j)
			cluster_ss_free_job(j);
		store_buf_free(&b);
		return;
	}
	j->payload = b.data;
	j->len = (uint32_t)b.len;
	ss_push(w, j);
}

void cluster_session_update(struct worker *w, struct session *s)
{
	struct cluster *cl = w->b->cluster;
	struct store_buf b = {0};
	size_t head = 4 + cl->node_id_len;
	uint64_t h;
	struct cl_sjob *j;

	if (s->bridge || s->clean || store_buf_reserve(&b, head) != 0)
		return;
	b.len = head;
	if (persist_export_session(w, s, &b, (size_t)-1, true, NULL) != 0) {
		store_buf_free(&b);
		return;
	}
	h = XXH3_64bits(b.data + head, b.len - head);
	if (h == s->cl_meta_hash) {
		store_buf_free(&b);
		return; /* the bucket has it already */
	}
	s->cl_meta_hash = h;
	cluster_sess_entry_head((const uint8_t *)cl->node_id, cl->node_id_len, b.data, head);
	j = ss_job_new(w, SJ_PUT, s->client_id, s->client_id_len);
	if (!j) {
		store_buf_free(&b);
		return;
	}
	j->payload = b.data;
	j->len = (uint32_t)b.len;
	ss_push(w, j);
}

void cluster_session_ended(struct worker *w, struct session *s)
{
	struct cl_sjob *j;

	if (s->bridge || s->clean)
		return;
	j = ss_job_new(w, SJ_DEL, s->client_id, s->client_id_len);
	if (j)
		ss_push(w, j);
}
