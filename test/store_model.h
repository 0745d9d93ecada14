/*
 * A plain model of the durable state for the store tests (test_store_*.c include it): what
 * replaying a log must rebuild, as a flat map from a key to a value, both byte strings.
 *
 *   "R" topic                         a retained message
 *   "r" topic                         who set it (retain-source; dropped with it or by a new one)
 *   "S" client "\0"                   a persistent session
 *   "S" client "\0" "s" filter        one of its subscriptions
 *   "S" client "\0" "q" msg_id        a queued message
 *   "S" client "\0" "i" packet_id     an outbound in-flight packet id and its stage
 *   "S" client "\0" "n" packet_id     an inbound QoS 2 packet id awaiting PUBREL
 *   "S" client "\0" "w"               its delayed will
 *   "S" client "\0" "a"               who it is (session-auth)
 *   "M" source origin filter          a share-mark (a set: the same one twice is one)
 *
 * The value is every field of the record that set it, serialised field by field here (not by
 * the codec under test). Deleting a session deletes every key under its prefix, as the broker
 * drops everything a session held. Records about a session the model does not hold are
 * counted as orphans and ignored (a consistent log has none). Linear search: tests hold a few
 * hundred keys. The model lives on the test side because the broker replays into its own
 * structures (the retained store, its sessions), never into this map.
 */
#ifndef STARLING_TEST_STORE_MODEL_H
#define STARLING_TEST_STORE_MODEL_H

#include <stdlib.h>
#include <string.h>

#include "store/record.h"

struct model_entry {
	uint8_t *key; /* owned */
	size_t klen;
	uint8_t *val; /* owned */
	size_t vlen;
};

struct model {
	struct model_entry *e; /* owned array */
	size_t n, cap;
	unsigned orphans; /* records about a session the model did not hold */
};

/* A small growable byte string for keys and values. */
struct mbytes {
	uint8_t b[1024 + 3 * 70000];
	size_t n;
};

static void mb_put(struct mbytes *m, const void *p, size_t n)
{
	if (m->n + n > sizeof(m->b))
		abort(); /* a test generating more than the model holds is a test bug */
	if (n)
		memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void mb_bytes(struct mbytes *m, struct st_bytes s)
{
	mb_put(m, &s.len, sizeof(s.len));
	mb_put(m, s.ptr, s.len);
}

static long model_find(const struct model *m, const uint8_t *key, size_t klen)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].klen == klen && memcmp(m->e[i].key, key, klen) == 0)
			return (long)i;
	return -1;
}

static void model_set(struct model *m, const struct mbytes *k, const struct mbytes *v)
{
	long i = model_find(m, k->b, k->n);
	struct model_entry *e;

	if (i < 0) {
		if (m->n == m->cap) {
			m->cap = m->cap ? 2 * m->cap : 64;
			m->e = realloc(m->e, m->cap * sizeof(*m->e));
			if (!m->e)
				abort();
		}
		e = &m->e[m->n++];
		e->key = malloc(k->n);
		e->klen = k->n;
		memcpy(e->key, k->b, k->n);
	} else {
		e = &m->e[i];
		free(e->val);
	}
	e->val = malloc(v->n ? v->n : 1);
	e->vlen = v->n;
	if (v->n)
		memcpy(e->val, v->b, v->n);
}

static void model_del_at(struct model *m, size_t i)
{
	free(m->e[i].key);
	free(m->e[i].val);
	m->e[i] = m->e[--m->n];
}

/* Deletes the key, or (prefix) every key that starts with it. */
static void model_del(struct model *m, const struct mbytes *k, bool prefix)
{
	for (size_t i = 0; i < m->n;) {
		struct model_entry *e = &m->e[i];

		if ((prefix ? e->klen >= k->n : e->klen == k->n) && memcmp(e->key, k->b, k->n) == 0)
			model_del_at(m, i);
		else
			i++;
	}
}

static void model_free(struct model *m)
{
	while (m->n)
		model_del_at(m, m->n - 1);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* Whether two models hold the same keys with the same values. */
static bool model_equal(const struct model *a, const struct model *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		long j = model_find(b, a->e[i].key, a->e[i].klen);

		if (j < 0 || b->e[j].vlen != a->e[i].vlen ||
		    memcmp(b->e[j].val, a->e[i].val, a->e[i].vlen) != 0)
			return false;
	}
	return true;
}

static void model_session_key(struct mbytes *k, const struct store_rec *r)
{
	k->n = 0;
	mb_put(k, "S", 1);
	mb_put(k, r->client.ptr, r->client.len);
	mb_put(k, "", 1);
}

/* Every field of the record, whatever its type: unused fields must be zero on both sides. */
static void model_value(struct mbytes *v, const struct store_rec *r)
{
	v->n = 0;
	mb_put(v, &r->type, 1);
	mb_put(v, &r->qos, 1);
	mb_put(v, &r->retain, 1);
	mb_put(v, &r->protocol, 1);
	mb_put(v, &r->options, 1);
	mb_put(v, &r->stage, 1);
	mb_put(v, &r->packet_id, 2);
	mb_put(v, &r->sub_id, 4);
	mb_put(v, &r->expiry_interval_s, 4);
	mb_put(v, &r->expiry_ms, 8);
	mb_put(v, &r->msg_id, 8);
	mb_put(v, &r->origin, 8);
	mb_put(v, &r->origin_lo, 8);
	mb_put(v, &r->source, 2);
	mb_bytes(v, r->client);
	mb_bytes(v, r->topic);
	mb_bytes(v, r->filter);
	mb_bytes(v, r->props);
	mb_bytes(v, r->payload);
	mb_put(v, &r->has_user, 1);
	mb_put(v, &r->listener, 2);
	mb_bytes(v, r->user);
}

/*
 * Origin intervals: one key per maximal interval, "O" source lo -> hi. Adding [lo, hi] takes
 * out every interval of the source that overlaps or touches it and puts back their union.
 */
static void model_origin(struct model *m, uint16_t source, uint64_t lo, uint64_t hi)
{
	static struct mbytes k, v;

	for (size_t i = 0; i < m->n;) {
		struct model_entry *e = &m->e[i];
		uint64_t elo, ehi;
		uint16_t src;

		if (e->klen != 1 + 2 + 8 || e->key[0] != 'O') {
			i++;
			continue;
		}
		memcpy(&src, e->key + 1, 2);
		memcpy(&elo, e->key + 3, 8);
		memcpy(&ehi, e->val, 8);
		if (src != source || ehi + 1 < lo || elo > hi + 1) {
			i++;
			continue;
		}
		lo = elo < lo ? elo : lo;
		hi = ehi > hi ? ehi : hi;
		model_del_at(m, i);
	}
	k.n = 0;
	mb_put(&k, "O", 1);
	mb_put(&k, &source, 2);
	mb_put(&k, &lo, 8);
	v.n = 0;
	mb_put(&v, &hi, 8);
	model_set(m, &k, &v);
}

/* Applies one record to the model, as replay at start-up will apply it to the broker. */
static void model_apply(struct model *m, const struct store_rec *r)
{
	static struct mbytes k, v;

	model_value(&v, r);
	if (r->type == STORE_REC_COMMIT)
		return;
	if (r->type == STORE_REC_ORIGIN) {
		model_origin(m, r->source, r->origin_lo, r->origin);
		return;
	}
	if (r->type == STORE_REC_SHARE_MARK) {
		k.n = 0;
		mb_put(&k, "M", 1);
		mb_put(&k, &r->source, 2);
		mb_put(&k, &r->origin, 8);
		mb_put(&k, r->filter.ptr, r->filter.len);
		model_set(m, &k, &v);
		return;
	}
	if (r->type == STORE_REC_RETAIN_SET || r->type == STORE_REC_RETAIN_DEL ||
	    r->type == STORE_REC_RETAIN_SOURCE) {
		static struct mbytes ks;

		k.n = ks.n = 0;
		mb_put(&k, "R", 1);
		mb_put(&k, r->topic.ptr, r->topic.len);
		mb_put(&ks, "r", 1);
		mb_put(&ks, r->topic.ptr, r->topic.len);
		if (r->type == STORE_REC_RETAIN_SOURCE) {
			if (model_find(m, k.b, k.n) < 0)
				m->orphans++;
			else
				model_set(m, &ks, &v);
			return;
		}
		if (model_find(m, ks.b, ks.n) >= 0)
			model_del(m, &ks, false);
		if (r->type == STORE_REC_RETAIN_SET)
			model_set(m, &k, &v);
		else
			model_del(m, &k, false);
		return;
	}
	model_session_key(&k, r);
	if (r->type == STORE_REC_SESSION_PUT) {
		model_set(m, &k, &v);
		return;
	}
	if (model_find(m, k.b, k.n) < 0) {
		m->orphans++;
		return;
	}
	switch (r->type) {
	case STORE_REC_SESSION_DEL:
		model_del(m, &k, true);
		return;
	case STORE_REC_SUB_ADD:
	case STORE_REC_SUB_DEL:
		mb_put(&k, "s", 1);
		mb_put(&k, r->filter.ptr, r->filter.len);
		break;
	case STORE_REC_QUEUE_ADD:
	case STORE_REC_QUEUE_DEL:
		mb_put(&k, "q", 1);
		mb_put(&k, &r->msg_id, 8);
		break;
	case STORE_REC_INFLIGHT_SET:
	case STORE_REC_INFLIGHT_CLEAR:
		mb_put(&k, "i", 1);
		mb_put(&k, &r->packet_id, 2);
		break;
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_INBOUND_ORIGIN:
	case STORE_REC_INBOUND_DEL:
		mb_put(&k, "n", 1);
		mb_put(&k, &r->packet_id, 2);
		break;
	case STORE_REC_SESSION_AUTH:
		mb_put(&k, "a", 1);
		break;
	default:
		mb_put(&k, "w", 1);
		break;
	}
	switch (r->type) {
	case STORE_REC_SUB_ADD:
	case STORE_REC_QUEUE_ADD:
	case STORE_REC_INFLIGHT_SET:
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_INBOUND_ORIGIN:
	case STORE_REC_WILL_SET:
	case STORE_REC_SESSION_AUTH:
		model_set(m, &k, &v);
		break;
	default:
		model_del(m, &k, false);
		break;
	}
}

/*
 * What a resharding keeps of m (store_state_write with keep): a held inbound packet id
 * without its origin number, an inbound-add (the origin sits at byte 32 of a value).
 */
static inline void model_reshard(struct model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		struct model_entry *e = &m->e[i];

		if (e->vlen >= 40 && e->val[0] == STORE_REC_INBOUND_ORIGIN) {
			e->val[0] = STORE_REC_INBOUND_ADD;
			memset(e->val + 32, 0, 8);
		}
	}
}

#endif
