/*
 * The live state of a log (dir.h): what replaying a chain leaves, kept as the records
 * themselves. Each entry is one encoded record (length, CRC and all, as it would sit in a
 * segment) behind a 16-byte header naming where its key lies, so writing the state back out
 * is one memcpy per entry and nothing is held twice but the hash slot.
 *
 * Layout: retained messages in a hash map by topic; sessions in a hash map by client id, each
 * with its session-put and will entries and four maps (subscriptions by filter, queued
 * messages by msg_id, in-flight and inbound packet ids). A session's client id is read from its
 * session-put entry. Maps are base/hmap.h (xxh3 with a per-state random seed: client ids and
 * topics are chosen by clients). Workload: start-up resharding and compaction, millions of
 * retained messages and hundreds of thousands of sessions in one pass, then freed.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/hmap.h"
#include "base/ivset.h"
#include "starling/error.h"
#include "dir.h"

/* One record of the state. */
struct ent {
	union {
		struct {
			uint32_t off; /* offset of the key bytes in rec (topic, filter, client) */
			uint32_t len; /* their length */
		} b;
		uint64_t id; /* or the integer key: msg_id, packet id */
	} k;
	uint32_t len;  /* bytes of rec */
	uint8_t rec[]; /* the encoded record */
};

struct sess {
	struct ent *put;   /* the session-put record; its client id is the session's key */
	struct ent *auth;  /* the session-auth record, or NULL */
	struct ent *will;  /* the will-set record, or NULL */
	struct hmap subs;  /* struct ent by filter */
	struct hmap queue; /* struct ent by msg_id */
	struct hmap infl;  /* struct ent by packet id (in-flight) */
	struct hmap inb;   /* struct ent by packet id (inbound QoS 2) */
};

struct store_state {
	struct hmap retained;     /* struct ent by topic */
	struct hmap retained_src; /* struct ent by topic: retain-source of a retained message */
	struct hmap sessions;     /* struct sess by client id */
	uint64_t seed;            /* of every hash */
	uint64_t orphans;         /* records about a client without a session, ignored */
	struct ivset *origins;    /* per source worker: the origin numbers its records cover */
	struct hmap marks;        /* struct ent by its whole body: share-mark records */
	uint32_t norigins;        /* entries of origins */
	struct store_buf scratch; /* where a record is encoded before it is copied to its entry */
};

enum key_kind { K_TOPIC, K_CLIENT, K_FILTER, K_ID, K_BODY };

static uint64_t hash_bytes(const struct store_state *st, struct st_bytes b)
{
	return XXH3_64bits_withSeed(b.ptr, b.len, st->seed);
}

static uint64_t hash_id(const struct store_state *st, uint64_t id)
{
	/* splitmix64's finaliser: hmap needs well-mixed low bits. */
	uint64_t z = id ^ st->seed;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct st_bytes ent_key(const struct ent *e)
{
	return (struct st_bytes){.ptr = e->rec + e->k.b.off, .len = e->k.b.len};
}

static bool bytes_eq(struct st_bytes a, struct st_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool ent_bytes_eq(const void *val, const void *key)
{
	return bytes_eq(ent_key(val), *(const struct st_bytes *)key);
}

static bool ent_id_eq(const void *val, const void *key)
{
	return ((const struct ent *)val)->k.id == *(const uint64_t *)key;
}

static bool sess_eq(const void *val, const void *key)
{
	return bytes_eq(ent_key(((const struct sess *)val)->put), *(const struct st_bytes *)key);
}

struct store_state *store_state_new(void)
{
	struct store_state *st = calloc(1, sizeof(*st));

	if (st)
		st->seed = hmap_seed_new();
	return st;
}

static void map_free_ents(struct hmap *m)
{
	for (size_t i = hmap_next(m, 0); i < hmap_cap(m); i = hmap_next(m, i + 1))
		free(m->slots[i].val);
	hmap_fini(m);
}

static void sess_free(struct sess *s)
{
	map_free_ents(&s->subs);
	map_free_ents(&s->queue);
	map_free_ents(&s->infl);
	map_free_ents(&s->inb);
	free(s->put);
	free(s->auth);
	free(s->will);
	free(s);
}

void store_state_free(struct store_state *st)
{
	struct hmap *m;

	if (!st)
		return;
	m = &st->sessions;
	for (size_t i = hmap_next(m, 0); i < hmap_cap(m); i = hmap_next(m, i + 1))
		sess_free(m->slots[i].val);
	hmap_fini(m);
	map_free_ents(&st->retained);
	map_free_ents(&st->retained_src);
	map_free_ents(&st->marks);
	for (uint32_t i = 0; i < st->norigins; i++)
		ivset_free(&st->origins[i]);
	free(st->origins);
	store_buf_free(&st->scratch);
	free(st);
}

/*
 * A new entry holding r encoded, its key located in the copy. Returns NULL with *err set
 * (STORE_E_FIELD for a record the codec refuses, STORE_E_NOMEM).
 */
static struct ent *ent_new(struct store_state *st, const struct store_rec *r, enum key_kind kk,
                           uint64_t id, int *err)
{
	struct store_buf *b = &st->scratch;
	struct store_rec d;
	struct st_bytes key;
	struct ent *e;

	b->len = 0;
	*err = store_rec_encode_views(b, r, &d);
	if (*err)
		return NULL;
	e = malloc(sizeof(*e) + b->len);
	if (!e) {
		*err = STORE_E_NOMEM;
		return NULL;
	}
	e->len = (uint32_t)b->len;
	memcpy(e->rec, b->data, b->len);
	if (kk == K_ID) {
		e->k.id = id;
		return e;
	}
	if (kk == K_BODY) {
		e->k.b.off = STORE_REC_HDR_LEN;
		e->k.b.len = e->len - STORE_REC_HDR_LEN;
		return e;
	}
	/* The encoder's views say where the key lies, whatever the schema. */
	key = kk == K_TOPIC ? d.topic : kk == K_CLIENT ? d.client : d.filter;
	e->k.b.off = key.len ? (uint32_t)(key.ptr - b->data) : 0;
	e->k.b.len = key.len;
	return e;
}

/* Puts (or replaces) the entry of r under a byte-string key. */
static int map_put_bytes(struct store_state *st, struct hmap *m, const struct store_rec *r,
                         enum key_kind kk, struct st_bytes key)
{
	uint64_t h = hash_bytes(st, key);
	struct ent *old = hmap_find(m, h, ent_bytes_eq, &key);
	int err;
	struct ent *e = ent_new(st, r, kk, 0, &err);

	if (!e)
		return err;
	if (old) {
		m->slots[hmap_slot_of(m, h, old)].val = e;
		free(old);
		return 0;
	}
	if (hmap_insert(m, h, e)) {
		free(e);
		return STORE_E_NOMEM;
	}
	return 0;
}

static void map_del_bytes(struct store_state *st, struct hmap *m, struct st_bytes key)
{
	uint64_t h = hash_bytes(st, key);
	struct ent *old = hmap_find(m, h, ent_bytes_eq, &key);

	if (old) {
		hmap_remove(m, h, old);
		free(old);
	}
}

static int map_put_id(struct store_state *st, struct hmap *m, const struct store_rec *r,
                      uint64_t id)
{
	uint64_t h = hash_id(st, id);
	struct ent *old = hmap_find(m, h, ent_id_eq, &id);
	int err;
	struct ent *e = ent_new(st, r, K_ID, id, &err);

	if (!e)
		return err;
	if (old) {
		m->slots[hmap_slot_of(m, h, old)].val = e;
		free(old);
		return 0;
	}
	if (hmap_insert(m, h, e)) {
		free(e);
		return STORE_E_NOMEM;
	}
	return 0;
}

static void map_del_id(struct store_state *st, struct hmap *m, uint64_t id)
{
	uint64_t h = hash_id(st, id);
	struct ent *old = hmap_find(m, h, ent_id_eq, &id);

	if (old) {
		hmap_remove(m, h, old);
		free(old);
	}
}

/* session-put: creates the session, or replaces its put record and keeps the rest. */
static int session_put(struct store_state *st, const struct store_rec *r)
{
	uint64_t h = hash_bytes(st, r->client);
	struct sess *s = hmap_find(&st->sessions, h, sess_eq, &r->client);
	int err;
	struct ent *e = ent_new(st, r, K_CLIENT, 0, &err);

	if (!e)
		return err;
	if (s) {
		/* Same client id, same hash: the slot stays, its key now read from e. */
		free(s->put);
		s->put = e;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (!s || hmap_insert(&st->sessions, h, s)) {
		free(s);
		free(e);
		return STORE_E_NOMEM;
	}
	s->put = e;
	return 0;
}

static int session_rec(struct store_state *st, const struct store_rec *r)
{
	uint64_t h = hash_bytes(st, r->client);
	struct sess *s = hmap_find(&st->sessions, h, sess_eq, &r->client);
	struct ent *e;
	int err;

	if (!s) {
		st->orphans++;
		return 0;
	}
	switch (r->type) {
	case STORE_REC_SESSION_DEL:
		hmap_remove(&st->sessions, h, s);
		sess_free(s);
		return 0;
	case STORE_REC_SUB_ADD:
		return map_put_bytes(st, &s->subs, r, K_FILTER, r->filter);
	case STORE_REC_SUB_DEL:
		map_del_bytes(st, &s->subs, r->filter);
		return 0;
	case STORE_REC_QUEUE_ADD:
		return map_put_id(st, &s->queue, r, r->msg_id);
	case STORE_REC_QUEUE_DEL:
		map_del_id(st, &s->queue, r->msg_id);
		return 0;
	case STORE_REC_INFLIGHT_SET:
		return map_put_id(st, &s->infl, r, r->packet_id);
	case STORE_REC_INFLIGHT_CLEAR:
		map_del_id(st, &s->infl, r->packet_id);
		return 0;
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_INBOUND_ORIGIN:
		return map_put_id(st, &s->inb, r, r->packet_id);
	case STORE_REC_INBOUND_DEL:
		map_del_id(st, &s->inb, r->packet_id);
		return 0;
	case STORE_REC_WILL_SET:
		e = ent_new(st, r, K_ID, 0, &err);
		if (!e)
			return err;
		free(s->will);
		s->will = e;
		return 0;
	case STORE_REC_SESSION_AUTH:
		e = ent_new(st, r, K_ID, 0, &err);
		if (!e)
			return err;
		free(s->auth);
		s->auth = e;
		return 0;
	default: /* STORE_REC_WILL_CLEAR */
		free(s->will);
		s->will = NULL;
		return 0;
	}
}

/* Origin intervals only grow (record.h, "Origins"). */
static int origin_mark(struct store_state *st, uint16_t source, uint64_t lo, uint64_t hi)
{
	if (source >= st->norigins) {
		uint32_t n = (uint32_t)source + 1;
		struct ivset *o = realloc(st->origins, n * sizeof(*o));

		if (!o)
			return STORE_E_NOMEM;
		memset(o + st->norigins, 0, (n - st->norigins) * sizeof(*o));
		st->origins = o;
		st->norigins = n;
	}
	return ivset_add(&st->origins[source], lo, hi) == ST_OK ? 0 : STORE_E_NOMEM;
}

/* A share-mark: one entry per distinct record (the same copy marked twice is one). */
static int share_mark(struct store_state *st, const struct store_rec *r)
{
	int err;
	struct ent *e = ent_new(st, r, K_BODY, 0, &err);
	struct st_bytes key;
	uint64_t h;

	if (!e)
		return err;
	key = ent_key(e);
	h = hash_bytes(st, key);
	if (hmap_find(&st->marks, h, ent_bytes_eq, &key)) {
		free(e);
		return 0;
	}
	if (hmap_insert(&st->marks, h, e)) {
		free(e);
		return STORE_E_NOMEM;
	}
	return 0;
}

int store_state_apply(struct store_state *st, const struct store_rec *r)
{
	switch (r->type) {
	case STORE_REC_RETAIN_SET:
		/* A new message: who set the old one does not carry over. */
		map_del_bytes(st, &st->retained_src, r->topic);
		return map_put_bytes(st, &st->retained, r, K_TOPIC, r->topic);
	case STORE_REC_RETAIN_DEL:
		map_del_bytes(st, &st->retained, r->topic);
		map_del_bytes(st, &st->retained_src, r->topic);
		return 0;
	case STORE_REC_RETAIN_SOURCE:
		if (!hmap_find(&st->retained, hash_bytes(st, r->topic), ent_bytes_eq, &r->topic)) {
			st->orphans++;
			return 0;
		}
		return map_put_bytes(st, &st->retained_src, r, K_TOPIC, r->topic);
	case STORE_REC_SESSION_PUT:
		return session_put(st, r);
	case STORE_REC_COMMIT:
	case STORE_REC_PAD:
		return 0;
	case STORE_REC_ORIGIN:
		return origin_mark(st, r->source, r->origin_lo, r->origin);
	case STORE_REC_SHARE_MARK:
		return share_mark(st, r);
	default:
		if (r->type < 1 || r->type > STORE_REC__MAX)
			return STORE_E_FIELD;
		return session_rec(st, r);
	}
}

uint64_t store_state_marks(const struct store_state *st)
{
	return st->marks.count;
}

uint64_t store_state_sessions(const struct store_state *st)
{
	return st->sessions.count;
}

uint64_t store_state_retained(const struct store_state *st)
{
	return st->retained.count;
}

uint64_t store_state_orphans(const struct store_state *st)
{
	return st->orphans;
}

/* The encoder's running output: the buffer, its flush and what went through it. */
struct writer {
	struct store_buf *b;
	int (*flush)(void *fctx, struct store_buf *b);
	void *fctx;
	uint64_t records;
	struct ent **sorted; /* scratch for a map's entries in key order */
	size_t sorted_cap;
	bool plain_inbound; /* resharding: inbound-origin records become inbound-add */
};

/* Past this many bytes the buffer goes to the flush callback: compaction's memory bound. */
#define WRITE_CHUNK ((size_t)1 << 20)

static int put_ent(struct writer *w, const struct ent *e)
{
	int err;

	/*
	 * Origin numbers name workers by index, which a resharding changes, and the marks that
	 * say which ones were handled are dropped with them (store_state_write). A packet id kept
	 * with its number would be forwarded again on a resend and delivered twice wherever it
	 * was handled; as a plain inbound id, a resend is the duplicate it is: PUBREC, nothing
	 * delivered. (A resharding follows a restart with another worker_threads; after a clean
	 * stop every worker had handled every forwarded message.)
	 */
	if (w->plain_inbound && e->len > STORE_REC_HDR_LEN &&
	    e->rec[STORE_REC_HDR_LEN] == STORE_REC_INBOUND_ORIGIN) {
		struct store_rec r;
		size_t used;

		if (store_rec_decode(e->rec, e->len, &r, &used) == 0) {
			struct store_rec in = {.type = STORE_REC_INBOUND_ADD,
			                       .client = r.client,
			                       .packet_id = r.packet_id};

			err = store_rec_encode(w->b, &in);
			if (err)
				return err;
			w->records++;
			return w->flush && w->b->len >= WRITE_CHUNK ? w->flush(w->fctx, w->b) : 0;
		}
	}
	if (store_buf_reserve(w->b, e->len))
		return STORE_E_NOMEM;
	memcpy(w->b->data + w->b->len, e->rec, e->len);
	w->b->len += e->len;
	w->records++;
	if (w->flush && w->b->len >= WRITE_CHUNK) {
		err = w->flush(w->fctx, w->b);
		if (err)
			return err;
	}
	return 0;
}

static int put_map(struct writer *w, const struct hmap *m)
{
	int err;

	for (size_t i = hmap_next(m, 0); i < hmap_cap(m); i = hmap_next(m, i + 1)) {
		err = put_ent(w, m->slots[i].val);
		if (err)
			return err;
	}
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = (*(struct ent *const *)a)->k.id, y = (*(struct ent *const *)b)->k.id;

	return x < y ? -1 : x > y;
}

/* A map of integer keys in key order: queued messages in the order the broker queued them. */
static int put_map_sorted(struct writer *w, const struct hmap *m)
{
	size_t n = 0;
	int err;

	if (m->count == 0)
		return 0;
	if (m->count > w->sorted_cap) {
		struct ent **p = realloc(w->sorted, m->count * sizeof(*p));

		if (!p)
			return STORE_E_NOMEM;
		w->sorted = p;
		w->sorted_cap = m->count;
	}
	for (size_t i = hmap_next(m, 0); i < hmap_cap(m); i = hmap_next(m, i + 1))
		w->sorted[n++] = m->slots[i].val;
	qsort(w->sorted, n, sizeof(*w->sorted), cmp_id);
	for (size_t i = 0; i < n; i++) {
		err = put_ent(w, w->sorted[i]);
		if (err)
			return err;
	}
	return 0;
}

/* Each retained message, then who set it if that is known. */
static int put_retained(struct writer *w, const struct store_state *st)
{
	const struct hmap *m = &st->retained;
	int err;

	for (size_t i = hmap_next(m, 0); i < hmap_cap(m); i = hmap_next(m, i + 1)) {
		const struct ent *e = m->slots[i].val;
		struct st_bytes t = ent_key(e);
		const struct ent *src;

		err = put_ent(w, e);
		if (err)
			return err;
		if (!st->retained_src.count)
			continue;
		src = hmap_find(&st->retained_src, hash_bytes(st, t), ent_bytes_eq, &t);
		if (src && (err = put_ent(w, src)) != 0)
			return err;
	}
	return 0;
}

static int put_sess(struct writer *w, const struct sess *s)
{
	int err = put_ent(w, s->put);

	if (!err && s->auth)
		err = put_ent(w, s->auth);
	if (!err && s->will)
		err = put_ent(w, s->will);
	if (!err)
		err = put_map(w, &s->subs);
	if (!err)
		err = put_map_sorted(w, &s->queue);
	if (!err)
		err = put_map_sorted(w, &s->infl);
	if (!err)
		err = put_map_sorted(w, &s->inb);
	return err;
}

int store_state_write(const struct store_state *st, struct store_buf *b,
                      bool (*keep)(void *ctx, const uint8_t *client, size_t len), void *ctx,
                      bool retained, int (*flush)(void *fctx, struct store_buf *b), void *fctx,
                      uint64_t *records)
{
	struct writer w = {.b = b, .flush = flush, .fctx = fctx, .plain_inbound = keep != NULL};
	const struct hmap *m = &st->sessions;
	int err = 0;

	for (size_t i = hmap_next(m, 0); !err && i < hmap_cap(m); i = hmap_next(m, i + 1)) {
		const struct sess *s = m->slots[i].val;
		struct st_bytes c = ent_key(s->put);

		if (!keep || keep(ctx, c.ptr, c.len))
			err = put_sess(&w, s);
	}
	if (!err && retained)
		err = put_retained(&w, st);
	/* Marks name workers by index: a resharding (keep) starts them over. */
	for (uint32_t src = 0; !keep && src < st->norigins; src++) {
		const struct ivset *is = &st->origins[src];

		for (uint32_t i = 0; !err && i < is->n; i++) {
			const struct store_rec o = {.type = STORE_REC_ORIGIN,
			                            .source = (uint16_t)src,
			                            .origin_lo = is->v[i].lo,
			                            .origin = is->v[i].hi};

			err = store_rec_encode(b, &o);
			w.records += !err;
		}
	}
	/* Share-marks too (they name their source worker by index). */
	for (size_t i = hmap_next(&st->marks, 0); !keep && !err && i < hmap_cap(&st->marks);
	     i = hmap_next(&st->marks, i + 1))
		err = put_ent(&w, st->marks.slots[i].val);
	if (!err && flush && b->len > 0)
		err = flush(fctx, b);
	free(w.sorted);
	if (records)
		*records = w.records;
	return err;
}

int store_state_encode(const struct store_state *st, struct store_buf *b,
                       bool (*keep)(void *ctx, const uint8_t *client, size_t len), void *ctx,
                       bool retained)
{
	return store_state_write(st, b, keep, ctx, retained, NULL, NULL, NULL);
}
