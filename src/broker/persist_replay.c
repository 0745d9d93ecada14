/*
 * Start-up (persist.h): the broker opens and recovers the persistence directory before any
 * worker runs; each worker then replays, in its own thread and arena, its own log's sessions
 * and worker 0's retained messages into its replica, and the last one to finish frees the
 * bytes read. Nothing here writes a record: sessions get their log (s->ps) only once rebuilt.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "auth/auth.h"
#include "broker.h"
#include "index/retain.h"
#include "limits.h"
#include "persist.h"
#include "session.h"
#include "share.h"
#include "store/dir.h"
#include "store/segment.h"
#include "starling/props.h"
#include "starling/topic.h"
#include "subdata.h"
#include "worker.h"
#include "xw.h"

/* Replayed retained writes are numbered below every live one (route.c's rseq). */
#define PERSIST_RSEQ_LIVE (1ull << 40)

int persist_broker_init(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	const char *dir = cfg->persistence_location[0] ? cfg->persistence_location : ".";
	struct broker_shared *sh = &b->shared;
	unsigned n = b->nworkers;
	struct timespec t0, t1;
	char err[1024];
	int ret;

	if (!cfg->persistence)
		return ST_OK;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	b->store = calloc(1, sizeof(*b->store));
	b->chains = calloc(n, sizeof(*b->chains));
	sh->persist_acks = calloc((size_t)n * n, sizeof(*sh->persist_acks));
	sh->persist_full = calloc((size_t)n * n, sizeof(*sh->persist_full));
	sh->persist_waiting = calloc(n, sizeof(*sh->persist_waiting));
	sh->persist_synced = calloc(n, sizeof(*sh->persist_synced));
	sh->origin_start = calloc(n, sizeof(*sh->origin_start));
	sh->origin_low = calloc(n, sizeof(*sh->origin_low));
	if (!b->store || !b->chains || !sh->persist_acks || !sh->persist_full ||
	    !sh->persist_waiting || !sh->persist_synced || !sh->origin_start || !sh->origin_low) {
		log_msg(&b->log, LOG_T_ERROR,
		        "Error: out of memory opening the persistence store.");
		return ST_ERR_NOMEM;
	}
	b->store->dfd = b->store->lock_fd = -1;
	ret = store_dir_open(b->store, dir, cfg->persistence_file, n, err, sizeof(err));
	if (ret < 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: persistence: %s", err);
		return ST_ERR_SYS;
	}
	ret = store_dir_recover(b->store, xw_home, &b->log, b->chains, err, sizeof(err));
	if (ret < 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: persistence: %s", err);
		return ST_ERR_SYS;
	}
	atomic_init(&sh->retain_seq, PERSIST_RSEQ_LIVE);
	atomic_init(&b->replay_left, n);
	atomic_init(&b->replay_flush_left, n);
	atomic_init(&b->replay_drain_left, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_msg(&b->log, LOG_T_NOTICE,
	        "Persistence: %s/%s.* (%u worker log%s, sync %s) read in %.1f ms.", dir,
	        cfg->persistence_file, n, n > 1 ? "s" : "",
	        cfg->persistence_sync ? "always" : "never",
	        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return ST_OK;
}

void persist_broker_fini(struct broker *b)
{
	if (b->chains)
		store_chains_free(b->chains, b->nworkers);
	free(b->chains);
	b->chains = NULL;
	if (b->store) {
		store_dir_close(b->store);
		free(b->store);
		b->store = NULL;
	}
	free(b->shared.persist_acks);
	free(b->shared.persist_full);
	free(b->shared.persist_waiting);
	free(b->shared.persist_synced);
	free(b->shared.origin_start);
	free(b->shared.origin_low);
}

struct replay {
	struct worker *w;
	uint64_t wall_ms;    /* wall clock now */
	uint64_t rseq;       /* numbers of replayed retained writes */
	uint64_t retained;   /* retained messages restored */
	uint64_t sessions;   /* sessions restored */
	uint64_t subs;       /* subscriptions */
	uint64_t queued;     /* messages queued or in flight */
	uint64_t records;    /* records applied */
	uint64_t expired;    /* messages dropped because they expired while down */
	bool from_w0;        /* replaying worker 0's log for the retained replica */
	uint64_t unknown;    /* sessions restored without their client's identity (ACL) */
	uint64_t acl_failed; /* sessions whose rules could not be resolved (no memory) */
};

/* A wall-clock deadline as the worker's monotonic time; one already past is "now". */
static uint64_t replay_mono(const struct replay *rp, uint64_t wall_ms)
{
	const struct worker *w = rp->w;

	if (!wall_ms)
		return 0;
	if (wall_ms <= rp->wall_ms)
		return w->now_ms ? w->now_ms : 1;
	return w->now_ms + (wall_ms - rp->wall_ms);
}

static void replay_retain(struct replay *rp, const struct store_rec *r)
{
	struct worker *w = rp->w;
	struct msg *m = NULL;
	void *old = NULL;

	if (r->type == STORE_REC_RETAIN_SET) {
		if (r->expiry_ms && r->expiry_ms <= rp->wall_ms) {
			rp->expired++;
		} else {
			m = msg_new(r->topic, r->props, r->payload, r->qos, true);
			if (!m)
				return;
			m->expiry_ms = replay_mono(rp, r->expiry_ms);
			m->rseq = ++rp->rseq;
		}
	}
	if (retain_set(w->retained, r->topic.ptr, r->topic.len, m, &old) != ST_OK) {
		if (m)
			msg_unref(m);
		return;
	}
	if (old)
		msg_unref(old);
}

/* Who set a retained message (check_retain_source), if it is still the one restored. */
static void replay_retain_source(struct replay *rp, const struct store_rec *r)
{
	struct msg *m = retain_get(rp->w->retained, r->topic.ptr, r->topic.len);

	if (m && m->payload_len)
		limits_retain_source_of(m, r->has_user != 0, r->user.ptr, r->user.len, r->listener,
		                        r->client.ptr, r->client.len);
}

static struct session *replay_session(struct replay *rp, const struct store_rec *r)
{
	return worker_session_find(rp->w, r->client.ptr, r->client.len);
}

static void replay_session_put(struct replay *rp, const struct store_rec *r)
{
	struct worker *w = rp->w;
	struct session *s = replay_session(rp, r);

	if (!s) {
		s = session_new(r->client.ptr, r->client.len, w->b->inflight_max,
		                w->b->cfg.max_queued_messages);
		if (!s)
			return;
		s->q_bytes_max = w->b->cfg.limits.max_queued_bytes;
		s->inflight_bytes_max = w->b->cfg.limits.max_inflight_bytes;
		if (worker_session_add(w, s) != ST_OK) {
			session_free(s);
			return;
		}
		rp->sessions++;
	}
	s->clean = false;
	s->expiry_s = r->expiry_interval_s;
	s->had_expiry = s->expiry_s != 0;
	s->protocol = r->protocol;
	/* 0: it was online when the broker stopped; its expiry counts from now (set below). */
	s->expire_at_ms = replay_mono(rp, r->expiry_ms);
}

/* A session that ended while logged: gone, with nothing published (its will went then). */
static void replay_session_del(struct replay *rp, struct session *s)
{
	if (s->will) {
		msg_unref(s->will);
		s->will = NULL;
	}
	worker_session_destroy(rp->w, s);
	rp->sessions--;
}

static void replay_sub(struct replay *rp, struct session *s, const struct store_rec *r)
{
	struct worker *w = rp->w;
	uint64_t data = subdata_make(r->options, r->sub_id);
	struct st_bytes inner;
	bool added;

	if (r->type == STORE_REC_SUB_DEL) {
		worker_unsubscribe(w, s, NULL, r->filter.ptr, r->filter.len);
		session_sub_remove(s, r->filter.ptr, r->filter.len);
		return;
	}
	if (share_parse(r->filter.ptr, r->filter.len, &inner) == 1) {
		if (worker_share_add(w, s, NULL, r->filter.ptr, r->filter.len, data, &added) !=
		    ST_OK)
			return;
	} else if (worker_sub_add(w, s, r->filter.ptr, r->filter.len, data) < 0) {
		return;
	}
	if (session_sub_find(s, r->filter.ptr, r->filter.len) < 0)
		rp->subs++;
	session_sub_add(s, r->filter.ptr, r->filter.len, data);
}

/*
 * The subscription identifiers a queued message goes out with are not logged: they are those
 * of the session's subscriptions that match its topic, which replay has rebuilt by then.
 */
static void replay_sub_ids(const struct session *s, struct st_bytes topic, struct sess_delivery *d)
{
	uint32_t ids[ROUTE_IDS_MAX];
	uint16_t n = 0;

	for (uint32_t i = 0; i < s->nsubs && n < ROUTE_IDS_MAX; i++) {
		const struct sess_sub *sub = &s->subs[i];
		struct st_bytes f = {sub->filter, sub->filter_len};
		uint32_t id = subdata_sub_id(sub->data);

		if (!id)
			continue;
		share_parse(sub->filter, sub->filter_len, &f);
		if (st_topic_matches(f.ptr, f.len, topic.ptr, topic.len))
			ids[n++] = id;
	}
	if (!n)
		return;
	d->sub_id = ids[0];
	if (n > 1) {
		d->more = malloc((n - 1) * sizeof(*d->more));
		if (d->more) {
			memcpy(d->more, ids + 1, (n - 1) * sizeof(*d->more));
			d->nmore = (uint16_t)(n - 1);
		}
	}
}

static void replay_queue(struct replay *rp, struct session *s, const struct store_rec *r)
{
	struct sess_delivery d = {.qos = r->qos, .retain = r->retain, .sid = r->msg_id};

	/* A compaction's snapshot is followed by records it already covers: a msg_id below the
	 * highest seen may be one the session holds (the log's ids only grow otherwise). */
	if (r->msg_id <= s->next_sid && session_holds_sid(s, r->msg_id))
		return;
	if (r->msg_id > s->next_sid)
		s->next_sid = r->msg_id;
	if (r->expiry_ms && r->expiry_ms <= rp->wall_ms) {
		rp->expired++;
		return;
	}
	d.m = msg_new(r->topic, r->props, r->payload, r->qos, r->retain);
	if (!d.m)
		return;
	d.m->expiry_ms = replay_mono(rp, r->expiry_ms);
	if (s->protocol == ST_MQTT_5)
		replay_sub_ids(s, r->topic, &d);
	if (session_restore_queued(s, &d) != ST_OK)
		sess_delivery_release(&d);
	else
		rp->queued++;
}

/* The will's properties, and its Message Expiry Interval if persist_will_set put it first. */
static void replay_will(struct replay *rp, struct session *s, const struct store_rec *r)
{
	struct st_bytes props = r->props;
	uint32_t expiry_s = 0;

	if (s->will)
		msg_unref(s->will);
	s->will = NULL;
	if (r->type == STORE_REC_WILL_CLEAR)
		return;
	if (props.len >= 5 && props.ptr[0] == ST_PROP_MESSAGE_EXPIRY) {
		expiry_s = (uint32_t)props.ptr[1] << 24 | (uint32_t)props.ptr[2] << 16 |
		           (uint32_t)props.ptr[3] << 8 | props.ptr[4];
		props.ptr += 5;
		props.len -= 5;
	}
	s->will = msg_new(r->topic, props, r->payload, r->qos, r->retain);
	s->will_expiry_s = expiry_s;
	s->will_at_ms = replay_mono(rp, r->expiry_ms);
	if (!s->will_at_ms)
		s->will_at_ms = rp->w->now_ms;
}

/* Who the session's client was: access_refresh (replay_finish) judges it by that. */
static void replay_auth(struct session *s, const struct store_rec *r)
{
	uint8_t *copy = NULL;

	if (r->has_user) {
		copy = malloc(r->user.len ? r->user.len : 1);
		if (!copy)
			return; /* stays unknown: reads nothing under an ACL until its client is
			           back */
		if (r->user.len)
			memcpy(copy, r->user.ptr, r->user.len);
	}
	free(s->auth_user);
	s->auth_user = copy;
	s->auth_user_len = (uint16_t)r->user.len;
	s->auth_has_user = r->has_user != 0;
	s->auth_listener = r->listener;
	s->auth_known = true;
}

/*
 * Origin intervals (persist.h, origins). In a worker's own log: its counter (source: itself)
 * or what it handled from another worker; worker 0's log also speaks for its retained replica,
 * which every replica copies, so worker 0's intervals are every replica's.
 */
static void replay_origin(struct replay *rp, const struct store_rec *r)
{
	struct worker *w = rp->w;
	struct persist *p = w->ps;
	unsigned src = r->source;

	if (src >= w->nworkers)
		return; /* written with more workers: a resharding starts them over */
	if (rp->from_w0) {
		ivset_add(&p->ret[src].done, r->origin_lo, r->origin);
		return;
	}
	if (src == w->index)
		p->origin_next = r->origin > p->origin_next ? r->origin : p->origin_next;
	else
		ivset_add(&p->sess[src].done, r->origin_lo, r->origin);
}

static void replay_apply(struct replay *rp, const struct store_rec *r)
{
	struct session *s;

	rp->records++;
	switch (r->type) {
	case STORE_REC_RETAIN_SET:
	case STORE_REC_RETAIN_DEL:
		replay_retain(rp, r);
		return;
	case STORE_REC_RETAIN_SOURCE:
		replay_retain_source(rp, r);
		return;
	case STORE_REC_SESSION_PUT:
		replay_session_put(rp, r);
		return;
	case STORE_REC_ORIGIN:
		replay_origin(rp, r);
		return;
	case STORE_REC_SHARE_MARK:
		if (!rp->from_w0)
			persist_marks_replayed(rp->w, r);
		return;
	case STORE_REC_COMMIT:
	case STORE_REC_PAD:
		return;
	default:
		break;
	}
	s = replay_session(rp, r);
	if (!s)
		return; /* about a session that is not there: nothing to apply it to */
	switch (r->type) {
	case STORE_REC_SESSION_DEL:
		replay_session_del(rp, s);
		break;
	case STORE_REC_SUB_ADD:
	case STORE_REC_SUB_DEL:
		replay_sub(rp, s, r);
		break;
	case STORE_REC_QUEUE_ADD:
		replay_queue(rp, s, r);
		break;
	case STORE_REC_QUEUE_DEL:
		session_restore_unqueue(s, r->msg_id);
		break;
	case STORE_REC_INFLIGHT_SET:
		session_restore_inflight(s, r->packet_id, r->msg_id, r->stage);
		break;
	case STORE_REC_INFLIGHT_CLEAR:
		session_restore_clear(s, r->packet_id);
		break;
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_INBOUND_ORIGIN:
		session_in_qos2_begin(s, r->packet_id, r->origin);
		if (rp->w->ps && r->origin > rp->w->ps->origin_next)
			rp->w->ps->origin_next = r->origin;
		break;
	case STORE_REC_INBOUND_DEL:
		session_in_qos2_release(s, r->packet_id);
		break;
	case STORE_REC_WILL_SET:
	case STORE_REC_WILL_CLEAR:
		replay_will(rp, s, r);
		break;
	case STORE_REC_SESSION_AUTH:
		replay_auth(s, r);
		break;
	default:
		break;
	}
}

/* Applies a chain's records; retained_only: only its retained writes (worker 0's log). */
static void replay_chain(struct replay *rp, const struct store_chain *c, bool retained_only)
{
	for (unsigned i = 0; i < c->nsegs; i++) {
		struct store_seg seg;
		struct store_rec r;

		/* store_dir_recover checked every header and cut every bad tail. */
		if (store_seg_open(&seg, c->segs[i].data, c->segs[i].len, 0) != STORE_OK)
			continue;
		while (store_seg_next(&seg, &r) > 0) {
			if (retained_only && r.type != STORE_REC_RETAIN_SET &&
			    r.type != STORE_REC_RETAIN_DEL && r.type != STORE_REC_RETAIN_SOURCE &&
			    r.type != STORE_REC_ORIGIN)
				continue;
			replay_apply(rp, &r);
		}
	}
}

/* Every restored session is offline: its expiry counts from now unless it had a deadline. */
static void replay_finish(struct replay *rp)
{
	struct worker *w = rp->w;

	for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions);
	     i = hmap_next(&w->sessions, i + 1)) {
		struct session *s = w->sessions.slots[i].val;

		uint32_t life_s = limits_session_expiry_s(&w->b->cfg, s->expiry_s);

		if (!s->expire_at_ms && life_s != UINT32_MAX)
			s->expire_at_ms = w->now_ms + (uint64_t)life_s * 1000;
		s->ps = w->ps;
		worker_session_timer(w, s);
		/* Under an ACL, checked as its client would be (access.h) from the first message.
		 */
		if (w->auth->any_acl) {
			if (!s->auth_known)
				rp->unknown++;
			if (access_refresh(w, s) != ST_OK)
				rp->acl_failed++;
		}
	}
	rp->retained = retain_count(w->retained);
}

int persist_replay(struct worker *w, const struct store_chain *own, const struct store_chain *w0)
{
	struct broker *b = w->b;
	struct replay rp = {.w = w};
	struct timespec t0, t1, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_REALTIME, &now);
	rp.wall_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	if (w->index != 0) {
		rp.from_w0 = true;
		replay_chain(&rp, w0, true);
		rp.from_w0 = false;
	}
	replay_chain(&rp, own, false);
	replay_finish(&rp);
	/* Before anyone routes: each group's worker learns which copies its groups kept. */
	persist_marks_report(w);
	/* Read by the others once every replay is done (worker_run waits for that). */
	b->shared.origin_start[w->index] = w->ps->origin_next;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_msg(&w->log, LOG_T_NOTICE,
	        "Persistence: worker %u restored %" PRIu64 " sessions (%" PRIu64
	        " subscriptions, %" PRIu64 " messages queued or in flight) and %" PRIu64
	        " retained messages from %" PRIu64 " records in %.1f ms%s.",
	        w->index, rp.sessions, rp.subs, rp.queued, rp.retained, rp.records,
	        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	        rp.expired ? " (messages expired while down were dropped)" : "");
	if (rp.unknown)
		log_msg(&w->log, LOG_T_WARNING,
		        "Persistence: worker %u restored %" PRIu64
		        " sessions without their client's "
		        "user name (a log written before it was kept): under the ACL they receive "
		        "nothing until their clients reconnect.",
		        w->index, rp.unknown);
	if (rp.acl_failed)
		log_msg(&w->log, LOG_T_ERROR,
		        "Persistence: worker %u could not resolve the ACL of %" PRIu64
		        " restored sessions (out of memory): their messages are not checked "
		        "against it until their clients reconnect.",
		        w->index, rp.acl_failed);
	/* The last worker done frees what every worker read. */
	if (atomic_fetch_sub_explicit(&b->replay_left, 1, memory_order_acq_rel) == 1) {
		store_chains_free(b->chains, b->nworkers);
		free(b->chains);
		b->chains = NULL;
	}
	return ST_OK;
}

/* The records another node may hand over for one session: no retained write, no origin. */
static bool import_allowed(uint8_t type)
{
	switch (type) {
	case STORE_REC_SESSION_PUT:
	case STORE_REC_SUB_ADD:
	case STORE_REC_QUEUE_ADD:
	case STORE_REC_INFLIGHT_SET:
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_WILL_SET:
		return true;
	default:
		return false;
	}
}

int persist_import_session(struct worker *w, const uint8_t *recs, size_t len, const uint8_t *id,
                           size_t idlen, uint64_t *nsubs, uint64_t *nmsgs)
{
	struct replay rp = {.w = w};
	struct timespec now;
	struct session *s;
	size_t off = 0;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	rp.wall_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	while (off < len) {
		struct store_rec r;
		size_t used = 0;

		if (store_rec_decode(recs + off, len - off, &r, &used) != STORE_OK || !used) {
			ret = -1; /* what came before stands: a session, fewer of its parts */
			break;
		}
		off += used;
		if (!import_allowed(r.type) || r.client.len != idlen ||
		    memcmp(r.client.ptr, id, idlen) != 0)
			continue;
		if (r.type != STORE_REC_SESSION_PUT && !worker_session_find(w, id, idlen))
			continue;
		replay_apply(&rp, &r);
	}
	s = worker_session_find(w, id, idlen);
	if (!s)
		return -1;
	if (!s->conn) {
		uint32_t life_s = limits_session_expiry_s(&w->b->cfg, s->expiry_s);

		if (!s->expire_at_ms && life_s != UINT32_MAX)
			s->expire_at_ms = w->now_ms + (uint64_t)life_s * 1000;
		worker_session_timer(w, s);
	}
	/* Durable here from now on, as if it had always been. */
	s->ps = w->ps;
	if (s->ps)
		persist_snap_session(s);
	*nsubs = rp.subs;
	*nmsgs = rp.queued;
	return ret;
}
