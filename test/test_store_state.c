/*
 * The live state of a log (src/store/state.c) against the plain model of store_model.h:
 * random record sequences (orphans included) applied to both must leave the same keys and
 * values; the state's encoding, decoded and applied to a fresh model or state, must rebuild
 * it (the round trip compaction and resharding rely on); the encoding keeps each session's
 * records together in the order dir.h promises; keep() and the retained switch select.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "failalloc.h"
#include "store/dir.h"
#include "store/segment.h"
#include "store_gen.h"
#include "store_model.h"
#include "testutil.h"

/* Decodes every record of b (no header) and applies it to m (and st, if not NULL). */
static uint64_t replay_buf(const struct store_buf *b, struct model *m, struct store_state *st)
{
	size_t off = 0, used;
	uint64_t n = 0;
	struct store_rec r;

	while (off < b->len) {
		int err = store_rec_decode(b->data + off, b->len - off, &r, &used);

		CU_ASSERT_EQUAL_FATAL(err, 0);
		if (m)
			model_apply(m, &r);
		if (st)
			CU_ASSERT_EQUAL(store_state_apply(st, &r), 0);
		off += used;
		n++;
	}
	return n;
}

/* Keys of the model that are sessions ("S" client "\0"). */
static uint64_t model_sessions(const struct model *m)
{
	uint64_t n = 0;

	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].key[0] == 'S' &&
		    memchr(m->e[i].key, '\0', m->e[i].klen) == m->e[i].key + m->e[i].klen - 1)
			n++;
	return n;
}

static uint64_t model_retained(const struct model *m)
{
	uint64_t n = 0;

	for (size_t i = 0; i < m->n; i++)
		n += m->e[i].key[0] == 'R';
	return n;
}

static void test_random_state_equals_model(void)
{
	struct sgen g = {.clients = 8, .orphan_1 = 20, .origins = true};

	srand(11);
	for (int round = 0; round < 40; round++) {
		struct model direct = {0}, from_state = {0}, again = {0};
		struct store_state *st = store_state_new(), *st2 = store_state_new();
		struct store_buf b = {0}, b2 = {0};
		unsigned n = 1 + tu_rand(800);
		uint64_t recs, recs2;

		CU_ASSERT_PTR_NOT_NULL_FATAL(st);
		for (unsigned i = 0; i < n; i++) {
			sgen_record(&g, &direct);
			CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &g.r), 0);
			model_apply(&direct, &g.r);
		}
		CU_ASSERT_EQUAL(store_state_orphans(st), direct.orphans);
		CU_ASSERT_EQUAL(store_state_sessions(st), model_sessions(&direct));
		CU_ASSERT_EQUAL(store_state_retained(st), model_retained(&direct));
		CU_ASSERT_EQUAL_FATAL(store_state_encode(st, &b, NULL, NULL, true), 0);
		recs = replay_buf(&b, &from_state, st2);
		CU_ASSERT_EQUAL(recs, direct.n); /* one record per key, nothing else */
		CU_ASSERT_EQUAL(from_state.orphans, 0);
		CU_ASSERT(model_equal(&direct, &from_state));
		/* The state rebuilt from the encoding encodes the same state again. */
		CU_ASSERT_EQUAL_FATAL(store_state_encode(st2, &b2, NULL, NULL, true), 0);
		recs2 = replay_buf(&b2, &again, NULL);
		CU_ASSERT_EQUAL(recs2, recs);
		CU_ASSERT_EQUAL(b2.len, b.len);
		CU_ASSERT(model_equal(&direct, &again));
		store_buf_free(&b);
		store_buf_free(&b2);
		store_state_free(st);
		store_state_free(st2);
		model_free(&direct);
		model_free(&from_state);
		model_free(&again);
	}
}

/* Rank of a record type in a session's encoding (dir.h's order). */
static int rank_of(uint8_t type)
{
	switch (type) {
	case STORE_REC_SESSION_PUT:
		return 0;
	case STORE_REC_WILL_SET:
		return 1;
	case STORE_REC_SUB_ADD:
		return 2;
	case STORE_REC_QUEUE_ADD:
		return 3;
	case STORE_REC_INFLIGHT_SET:
		return 4;
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_INBOUND_ORIGIN:
		return 5;
	case STORE_REC_ORIGIN:
	case STORE_REC_SHARE_MARK:
		return 7; /* after everything */
	default:
		return 6; /* retain-set */
	}
}

/* Each session's records together, put first, in rank and key order; retained last. */
static void test_encoding_order(void)
{
	struct sgen g = {.clients = 5, .origins = true};
	struct model m = {0};
	struct store_state *st = store_state_new();
	struct store_buf b = {0};
	char seen[64][16];
	unsigned nseen = 0;
	size_t off = 0, used;
	int last_rank = -1;
	uint8_t last_type = 0;
	uint64_t last_key = 0;
	struct st_bytes cur = {0};
	struct store_rec r;

	srand(12);
	for (int i = 0; i < 3000; i++) {
		sgen_record(&g, &m);
		model_apply(&m, &g.r);
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &g.r), 0);
	}
	CU_ASSERT_EQUAL_FATAL(store_state_encode(st, &b, NULL, NULL, true), 0);
	while (off < b.len) {
		int rank;

		CU_ASSERT_EQUAL_FATAL(store_rec_decode(b.data + off, b.len - off, &r, &used), 0);
		off += used;
		rank = rank_of(r.type);
		CU_ASSERT(r.type != STORE_REC_RETAIN_DEL && r.type != STORE_REC_SESSION_DEL);
		if (r.type == STORE_REC_SESSION_PUT) {
			CU_ASSERT(last_rank < 6);
			/* A session appears once. */
			for (unsigned k = 0; k < nseen; k++)
				CU_ASSERT(strlen(seen[k]) != r.client.len ||
				          memcmp(seen[k], r.client.ptr, r.client.len) != 0);
			CU_ASSERT_FATAL(nseen < 64 && r.client.len < 16);
			memcpy(seen[nseen], r.client.ptr, r.client.len);
			seen[nseen++][r.client.len] = '\0';
			cur = r.client;
			last_rank = 0;
			last_type = r.type;
			continue;
		}
		if (r.type == STORE_REC_SESSION_AUTH) {
			/* Right after its session's put, once. */
			CU_ASSERT(last_type == STORE_REC_SESSION_PUT);
			CU_ASSERT(r.client.len == cur.len &&
			          memcmp(r.client.ptr, cur.ptr, cur.len) == 0);
			last_type = r.type;
			continue;
		}
		last_type = r.type;
		if (rank >= 6) {
			CU_ASSERT(rank >= last_rank);
			last_rank = rank;
			continue;
		}
		CU_ASSERT(last_rank >= 0 && last_rank < 6);
		CU_ASSERT(r.client.len == cur.len && memcmp(r.client.ptr, cur.ptr, cur.len) == 0);
		CU_ASSERT(rank >= last_rank);
		if (rank == last_rank && (rank == 3 || rank == 4 || rank == 5)) {
			uint64_t key = rank == 3 ? r.msg_id : r.packet_id;

			CU_ASSERT(key > last_key);
		}
		if (rank == 1)
			CU_ASSERT(last_rank == 0);
		last_key = rank == 3 ? r.msg_id : r.packet_id;
		last_rank = rank;
	}
	CU_ASSERT_EQUAL(nseen, store_state_sessions(st));
	CU_ASSERT(nseen > 1);
	store_buf_free(&b);
	store_state_free(st);
	model_free(&m);
}

static bool keep_odd(void *ctx, const uint8_t *client, size_t len)
{
	(*(unsigned *)ctx)++;
	return (client[len - 1] - '0') % 2 == 1;
}

/* keep() picks sessions, retained switches the retained messages; the stream flushes. */
struct flush_ctx {
	struct store_buf all;
	unsigned calls;
};

static int flush_collect(void *fctx, struct store_buf *b)
{
	struct flush_ctx *f = fctx;

	f->calls++;
	CU_ASSERT_EQUAL_FATAL(store_buf_reserve(&f->all, b->len), 0);
	memcpy(f->all.data + f->all.len, b->data, b->len);
	f->all.len += b->len;
	b->len = 0;
	return 0;
}

static int flush_fail(void *fctx, struct store_buf *b)
{
	(void)b;
	(*(unsigned *)fctx)++;
	return -28; /* -ENOSPC */
}

static void test_keep_retained_stream(void)
{
	struct sgen g = {.clients = 10};
	struct model m = {0}, sel = {0};
	struct store_state *st = store_state_new();
	struct store_buf b = {0}, whole = {0};
	struct flush_ctx f = {0};
	unsigned calls = 0, fails = 0;
	uint64_t recs = 0;
	struct store_rec r;
	size_t off = 0, used;

	srand(13);
	for (int i = 0; i < 2000; i++) {
		sgen_record(&g, &m);
		model_apply(&m, &g.r);
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &g.r), 0);
	}
	CU_ASSERT_EQUAL_FATAL(store_state_encode(st, &b, keep_odd, &calls, false), 0);
	CU_ASSERT_EQUAL(calls, store_state_sessions(st));
	while (off < b.len) {
		CU_ASSERT_EQUAL_FATAL(store_rec_decode(b.data + off, b.len - off, &r, &used), 0);
		off += used;
		CU_ASSERT(r.type != STORE_REC_RETAIN_SET);
		CU_ASSERT((r.client.ptr[r.client.len - 1] - '0') % 2 == 1);
		model_apply(&sel, &r);
	}
	CU_ASSERT(sel.n > 0);
	/* What was selected equals the model's keys of odd sessions. */
	for (size_t i = 0; i < m.n; i++) {
		const struct model_entry *e = &m.e[i];
		size_t c = 1;

		while (c < e->klen && e->key[c] != '\0')
			c++;
		if (e->key[0] == 'S' && (e->key[c - 1] - '0') % 2 == 1)
			CU_ASSERT(model_find(&sel, e->key, e->klen) >= 0);
	}
	/* Streaming in 1 MiB chunks gives the bytes of the one-buffer encoding. */
	CU_ASSERT_EQUAL_FATAL(store_state_encode(st, &whole, NULL, NULL, true), 0);
	b.len = 0;
	CU_ASSERT_EQUAL(store_state_write(st, &b, NULL, NULL, true, flush_collect, &f, &recs), 0);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT(f.calls >= 1);
	CU_ASSERT_EQUAL(f.all.len, whole.len);
	CU_ASSERT(memcmp(f.all.data, whole.data, whole.len) == 0);
	CU_ASSERT_EQUAL(recs, m.n);
	/* A flush error ends the walk and is returned. */
	b.len = 0;
	CU_ASSERT_EQUAL(store_state_write(st, &b, NULL, NULL, true, flush_fail, &fails, NULL), -28);
	CU_ASSERT_EQUAL(fails, 1);
	store_buf_free(&f.all);
	store_buf_free(&whole);
	store_buf_free(&b);
	store_state_free(st);
	model_free(&m);
	model_free(&sel);
}

/* A session-put replaces only the put record; a session-del drops everything. */
static void test_session_rules(void)
{
	struct store_state *st = store_state_new();
	struct store_buf b = {0};
	struct model m = {0};
	struct store_rec r = {0};

	r.type = STORE_REC_SUB_ADD;
	r.client = (struct st_bytes){.ptr = (const uint8_t *)"x", .len = 1};
	r.filter = (struct st_bytes){.ptr = (const uint8_t *)"a/#", .len = 3};
	CU_ASSERT_EQUAL(store_state_apply(st, &r), 0); /* orphan */
	CU_ASSERT_EQUAL(store_state_orphans(st), 1);
	CU_ASSERT_EQUAL(store_state_sessions(st), 0);
	r.type = STORE_REC_SESSION_PUT;
	r.protocol = 5;
	r.filter = (struct st_bytes){0};
	CU_ASSERT_EQUAL(store_state_apply(st, &r), 0);
	r.type = STORE_REC_SUB_ADD;
	r.protocol = 0;
	r.filter = (struct st_bytes){.ptr = (const uint8_t *)"a/#", .len = 3};
	CU_ASSERT_EQUAL(store_state_apply(st, &r), 0);
	r.type = STORE_REC_SESSION_PUT;
	r.protocol = 4;
	r.expiry_interval_s = 60;
	r.filter = (struct st_bytes){0};
	CU_ASSERT_EQUAL(store_state_apply(st, &r), 0);
	CU_ASSERT_EQUAL(store_state_sessions(st), 1);
	CU_ASSERT_EQUAL(store_state_encode(st, &b, NULL, NULL, true), 0);
	CU_ASSERT_EQUAL(replay_buf(&b, &m, NULL), 2); /* the new put and the subscription */
	CU_ASSERT_EQUAL(m.n, 2);
	/* A record the codec refuses is refused, the state unchanged. */
	r.type = STORE_REC_SUB_ADD;
	r.filter = (struct st_bytes){.ptr = (const uint8_t *)"a/#/b", .len = 5};
	CU_ASSERT_EQUAL(store_state_apply(st, &r), STORE_E_FIELD);
	r.type = 0;
	CU_ASSERT_EQUAL(store_state_apply(st, &r), STORE_E_FIELD);
	r.type = STORE_REC_SESSION_DEL;
	CU_ASSERT_EQUAL(store_state_apply(st, &r), 0);
	CU_ASSERT_EQUAL(store_state_sessions(st), 0);
	b.len = 0;
	CU_ASSERT_EQUAL(store_state_encode(st, &b, NULL, NULL, true), 0);
	CU_ASSERT_EQUAL(b.len, 0);
	store_buf_free(&b);
	store_state_free(st);
	model_free(&m);
}

static bool keep_all(void *ctx, const uint8_t *client, size_t len)
{
	(void)ctx;
	(void)client;
	(void)len;
	return true;
}

/*
 * A resharding (keep given) writes an inbound QoS 2 packet id held with its origin number as a
 * plain inbound-add (origin numbers name workers by index, and their marks are not written);
 * a compaction (keep NULL) keeps the number and the marks.
 */
static void test_reshard_drops_origins(void)
{
	static const uint8_t cid[] = "pub";
	struct store_state *st = store_state_new();
	struct store_buf b = {0};
	struct store_rec r = {
	        .type = STORE_REC_SESSION_PUT, .protocol = 5, .expiry_interval_s = 60};
	unsigned types[3] = {0};

	r.client = (struct st_bytes){.ptr = cid, .len = 3};
	CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
	r = (struct store_rec){.type = STORE_REC_INBOUND_ORIGIN, .packet_id = 7, .origin = 41};
	r.client = (struct st_bytes){.ptr = cid, .len = 3};
	CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
	r = (struct store_rec){.type = STORE_REC_ORIGIN, .source = 1, .origin_lo = 1, .origin = 50};
	CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
	for (int pass = 0; pass < 2; pass++) {
		size_t off = 0, used;

		b.len = 0;
		memset(types, 0, sizeof(types));
		CU_ASSERT_EQUAL_FATAL(
		        store_state_encode(st, &b, pass ? keep_all : NULL, NULL, true), 0);
		while (off < b.len) {
			CU_ASSERT_EQUAL_FATAL(
			        store_rec_decode(b.data + off, b.len - off, &r, &used), 0);
			if (r.type == STORE_REC_INBOUND_ORIGIN || r.type == STORE_REC_INBOUND_ADD) {
				CU_ASSERT_EQUAL(r.packet_id, 7);
				CU_ASSERT_EQUAL(r.client.len, 3);
			}
			types[0] += r.type == STORE_REC_INBOUND_ORIGIN;
			types[1] += r.type == STORE_REC_INBOUND_ADD;
			types[2] += r.type == STORE_REC_ORIGIN;
			off += used;
		}
		if (pass == 0) {
			CU_ASSERT(types[0] == 1 && types[1] == 0 && types[2] == 1);
		} else {
			CU_ASSERT(types[0] == 0 && types[1] == 1 && types[2] == 0);
		}
	}
	store_buf_free(&b);
	store_state_free(st);
}

/* Many entries: the maps grow and shrink through deletes without losing one. */
static void test_many(void)
{
	struct store_state *st = store_state_new();
	struct store_rec r = {0};
	char topic[32], client[32];

	for (unsigned i = 0; i < 20000; i++) {
		snprintf(topic, sizeof(topic), "t/%u", i);
		r = (struct store_rec){.type = STORE_REC_RETAIN_SET};
		r.topic = (struct st_bytes){.ptr = (const uint8_t *)topic, .len = strlen(topic)};
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
		snprintf(client, sizeof(client), "client-%u", i % 3000);
		r = (struct store_rec){.type = STORE_REC_SESSION_PUT, .protocol = 5};
		r.client = (struct st_bytes){.ptr = (const uint8_t *)client, .len = strlen(client)};
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
		r.type = STORE_REC_QUEUE_ADD;
		r.msg_id = i;
		r.topic = (struct st_bytes){.ptr = (const uint8_t *)topic, .len = strlen(topic)};
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
	}
	CU_ASSERT_EQUAL(store_state_retained(st), 20000);
	CU_ASSERT_EQUAL(store_state_sessions(st), 3000);
	for (unsigned i = 0; i < 20000; i += 2) {
		snprintf(topic, sizeof(topic), "t/%u", i);
		r = (struct store_rec){.type = STORE_REC_RETAIN_DEL};
		r.topic = (struct st_bytes){.ptr = (const uint8_t *)topic, .len = strlen(topic)};
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
	}
	for (unsigned i = 0; i < 3000; i += 3) {
		snprintf(client, sizeof(client), "client-%u", i);
		r = (struct store_rec){.type = STORE_REC_SESSION_DEL};
		r.client = (struct st_bytes){.ptr = (const uint8_t *)client, .len = strlen(client)};
		CU_ASSERT_EQUAL_FATAL(store_state_apply(st, &r), 0);
	}
	CU_ASSERT_EQUAL(store_state_retained(st), 10000);
	CU_ASSERT_EQUAL(store_state_sessions(st), 2000);
	store_state_free(st);
}

/* The state's records as a model (allocates: outside a failing window). */
static void state_model(const struct store_state *st, struct model *m)
{
	struct store_buf b = {0};

	CU_ASSERT_EQUAL_FATAL(store_state_encode(st, &b, NULL, NULL, true), 0);
	replay_buf(&b, m, NULL);
	store_buf_free(&b);
}

/*
 * Every allocation of an apply and of an encode refused in turn: STORE_E_NOMEM, the state
 * unchanged, nothing leaked (ASan), and the retry succeeds.
 */
static void test_allocation_failures(void)
{
	struct sgen g = {.clients = 5, .orphan_1 = 30};
	struct store_state *st = store_state_new();
	struct model m = {0};
	unsigned long refused = 0;

	srand(14);
	for (int i = 0; i < 400; i++) {
		struct model before = {0}, after = {0};
		int err = 0;
		long n;

		sgen_record(&g, &m);
		state_model(st, &before);
		for (n = 0; n < 100; n++) {
			fa_fail_after(n);
			err = store_state_apply(st, &g.r);
			fa_reset();
			if (err == 0)
				break;
			CU_ASSERT_EQUAL(err, STORE_E_NOMEM);
			refused++;
			state_model(st, &after);
			CU_ASSERT(model_equal(&before, &after));
			model_free(&after);
		}
		CU_ASSERT_EQUAL(err, 0);
		model_apply(&m, &g.r);
		model_free(&before);
	}
	CU_ASSERT(refused > 100);
	{
		struct model now = {0};
		struct store_buf b = {0};
		int err = 0;

		/* The state after the retries is the model's. */
		state_model(st, &now);
		CU_ASSERT(model_equal(&m, &now));
		model_free(&now);
		for (long n = 0; n < 100; n++) {
			b.len = 0;
			fa_fail_after(n);
			err = store_state_encode(st, &b, NULL, NULL, true);
			fa_reset();
			if (err == 0)
				break;
			CU_ASSERT_EQUAL(err, STORE_E_NOMEM);
		}
		CU_ASSERT_EQUAL(err, 0);
		replay_buf(&b, &now, NULL);
		CU_ASSERT(model_equal(&m, &now));
		model_free(&now);
		store_buf_free(&b);
	}
	CU_ASSERT_PTR_NULL((fa_fail_after(0), store_state_new()));
	fa_reset();
	store_state_free(st);
	model_free(&m);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"random records: the state equals the model, encoding round-trips",
	         test_random_state_equals_model},
	        {"encoding: sessions together, put first, ordered; retained last",
	         test_encoding_order},
	        {"keep() and retained select; streaming equals one buffer",
	         test_keep_retained_stream},
	        {"session-put replaces, session-del drops, bad records refused",
	         test_session_rules},
	        {"20,000 retained, 3,000 sessions, deletes", test_many},
	        {"a resharding writes held QoS 2 ids without their origins",
	         test_reshard_drops_origins},
	        {"every allocation failure leaves the state unchanged", test_allocation_failures},
	        {NULL, NULL},
	};

	tu_add_suite("store state", tests);
	return tu_run_registry();
}
