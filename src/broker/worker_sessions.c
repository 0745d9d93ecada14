/*
 * A worker's session table and its subscriptions as other workers see them: sessions by
 * client id (and by generation, for deliveries other workers address to one session), the
 * index and the interest summary kept in step, and shared subscriptions whose group lives on
 * another worker (join, leave, on- and offline travel there as messages).
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "broker.h"
#include "cluster.h"
#include "conn.h"
#include "index/interest.h"
#include "index/subidx.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "share.h"
#include "worker.h"
#include "xw.h"

static bool sess_eq(const void *val, const void *key)
{
	const struct session *s = val;
	const struct st_bytes *k = key;

	return s->client_id_len == k->len && memcmp(s->client_id, k->ptr, k->len) == 0;
}

static uint64_t sess_hash(const struct worker *w, const uint8_t *id, size_t len)
{
	return XXH3_64bits_withSeed(id, len, w->sess_seed);
}

static bool gen_eq(const void *val, const void *key)
{
	return ((const struct session *)val)->gen == *(const uint64_t *)key;
}

/* Generations are a counter: one multiply spreads them over the table. */
static uint64_t gen_hash(uint64_t gen)
{
	return gen * 0x9e3779b97f4a7c15ull;
}

unsigned worker_home(const struct worker *w, const uint8_t *id, size_t len)
{
	return xw_home(w->nworkers, id, len);
}

struct session *worker_session_find(struct worker *w, const uint8_t *id, size_t len)
{
	struct st_bytes key = {id, (uint32_t)len};

	return hmap_find(&w->sessions, sess_hash(w, id, len), sess_eq, &key);
}

struct session *worker_session_by_gen(struct worker *w, uint64_t gen)
{
	return hmap_find(&w->sessions_by_gen, gen_hash(gen), gen_eq, &gen);
}

int worker_session_add(struct worker *w, struct session *s)
{
	int ret;

	s->gen = ++w->next_sess_gen;
	if (w->nworkers > 1 && hmap_insert(&w->sessions_by_gen, gen_hash(s->gen), s) != ST_OK)
		return ST_ERR_NOMEM;
	ret = hmap_insert(&w->sessions, sess_hash(w, s->client_id, s->client_id_len), s);
	if (ret != ST_OK && w->nworkers > 1)
		hmap_remove(&w->sessions_by_gen, gen_hash(s->gen), s);
	if (ret == ST_OK && !s->q_acct) {
		/* What it queued before (a replayed session) counts from now on. */
		w->queued += s->q_len;
		s->q_acct = &w->queued;
	}
	return ret;
}

/* The owner of a shared group key, when it is another worker; else -1. */
static int worker_share_remote(struct worker *w, const uint8_t *key, size_t len)
{
	unsigned owner = xw_home(w->nworkers, key, len);

	return owner == w->index ? -1 : (int)owner;
}

int worker_sub_add(struct worker *w, struct session *s, const uint8_t *filter, size_t len,
                   uint64_t data)
{
	int added = subidx_add(w->subs, filter, len, s, data);

	if (added == 1 && w->nworkers > 1)
		interest_add_filter(&w->interest, filter, len);
	if (added == 1 && w->cl)
		cluster_interest(w, filter, len, true);
	return added;
}

/* One more answer for waiter to wait for (conn.h, share_wait). */
static uint64_t worker_share_wait(struct conn *waiter)
{
	if (!waiter)
		return 0;
	waiter->share_wait++;
	return waiter->id;
}

int worker_share_add(struct worker *w, struct session *s, struct conn *waiter, const uint8_t *key,
                     size_t len, uint64_t data, bool *added)
{
	struct share_member m = {.s = s, .data = data};
	int owner = w->nworkers > 1 ? worker_share_remote(w, key, len) : -1;
	uint64_t reply;

	if (owner < 0)
		return share_subscribe(&w->shares, w->subs, key, len, &m, added);
	/* The group lives on its owner: the member joins by message. */
	*added = session_sub_find(s, key, len) < 0;
	reply = worker_share_wait(waiter);
	if (!xw_share_join(w, (unsigned)owner, key, len, s->gen, data, s->conn != NULL, reply) &&
	    reply)
		waiter->share_wait--;
	return ST_OK;
}

void worker_share_answered(struct worker *w, uint64_t gen, uint64_t conn_id)
{
	struct session *s = worker_session_by_gen(w, gen);
	struct conn *c = s ? s->conn : NULL;

	/* A connection that has gone (or been taken over) waits for nothing. */
	if (!c || c->id != conn_id || !c->share_wait)
		return;
	if (--c->share_wait == 0)
		conn_flush(c);
}

/* Removes one of s's subscriptions from the index or its shared group. */
void worker_unsubscribe(struct worker *w, struct session *s, struct conn *waiter,
                        const uint8_t *filter, size_t len)
{
	struct st_bytes inner;

	if (share_parse(filter, len, &inner) == 1) {
		struct share_member who = {.s = s};
		int owner = w->nworkers > 1 ? worker_share_remote(w, filter, len) : -1;

		if (owner < 0)
			share_unsubscribe(&w->shares, w->subs, filter, len, &who);
		else {
			uint64_t reply = worker_share_wait(waiter);

			if (!xw_share_leave(w, (unsigned)owner, filter, len, s->gen, reply) &&
			    reply)
				waiter->share_wait--;
		}
	} else if (subidx_remove(w->subs, filter, len, s) == ST_OK) {
		if (w->nworkers > 1)
			interest_remove_filter(&w->interest, filter, len);
		if (w->cl)
			cluster_interest(w, filter, len, false);
	}
}

void worker_session_online(struct worker *w, struct session *s, bool online)
{
	if (w->nworkers == 1 || s->nshared == 0)
		return;
	for (uint32_t i = 0; i < s->nsubs; i++) {
		const struct sess_sub *sub = &s->subs[i];
		struct st_bytes inner;
		int owner;

		if (share_parse(sub->filter, sub->filter_len, &inner) != 1)
			continue;
		owner = worker_share_remote(w, sub->filter, sub->filter_len);
		if (owner >= 0)
			xw_share_online(w, (unsigned)owner, sub->filter, sub->filter_len, s->gen,
			                online);
	}
}

void worker_session_destroy(struct worker *w, struct session *s)
{
	/* The session ends: a will still waiting for its delay goes out now [MQTT-3.1.3-9]. */
	if (s->will) {
		struct msg *will = s->will;
		struct pub_view v = pub_view_of(will);

		s->will = NULL;
		route_publish(w, NULL, &v, will->qos, will->retain);
		msg_unref(will);
	}
	for (uint32_t i = 0; i < s->nsubs; i++)
		worker_unsubscribe(w, s, NULL, s->subs[i].filter, s->subs[i].filter_len);
	wheel_del(&w->sess_timers, &s->timer);
	hmap_remove(&w->sessions, sess_hash(w, s->client_id, s->client_id_len), s);
	if (w->nworkers > 1)
		hmap_remove(&w->sessions_by_gen, gen_hash(s->gen), s);
	persist_session_del(s);
	session_free(s);
}
