/*
 * Random records for the store directory and state tests (test_store_dir.c,
 * test_store_state.c), in the spirit of test_store_replay.c's generator: small ranges of
 * client ids, topics, msg_ids and packet ids so that replacements and deletes often hit, and
 * now and then a record about a client without a session (an orphan the state must ignore).
 * The model (store_model.h) decides which sessions exist.
 */
#ifndef STARLING_TEST_STORE_GEN_H
#define STARLING_TEST_STORE_GEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/record.h"
#include "store_model.h"
#include "testutil.h"

/* Storage behind one generated record's views. */
struct sgen {
	char client[16], topic[32], filter[32];
	uint8_t props[24], payload[200];
	struct store_rec r;
	unsigned clients;  /* client ids c0 .. c<clients - 1> */
	unsigned orphan_1; /* one record in this many may be an orphan (0: never) */
	bool origins;      /* also origin marks (which a resharding drops) */
};

static void sgen_bytes(uint8_t *p, size_t cap, struct st_bytes *s)
{
	size_t n = tu_rand((unsigned)cap + 1);

	if (tu_rand(4) == 0)
		n = 0;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tu_rand(256);
	s->ptr = n ? p : NULL;
	s->len = (uint32_t)n;
}

static bool sgen_session_exists(const struct model *m, const char *client)
{
	static struct mbytes k;

	k.n = 0;
	mb_put(&k, "S", 1);
	mb_put(&k, client, strlen(client));
	mb_put(&k, "", 1);
	return model_find(m, k.b, k.n) >= 0;
}

/* The fields of a record of type t (client and type already set). */
static void sgen_fields(struct sgen *g)
{
	struct store_rec *r = &g->r;

	switch (r->type) {
	case STORE_REC_RETAIN_SET:
	case STORE_REC_QUEUE_ADD:
	case STORE_REC_WILL_SET:
		r->qos = (uint8_t)tu_rand(3);
		if (r->type != STORE_REC_RETAIN_SET)
			r->retain = (uint8_t)tu_rand(2);
		r->expiry_ms = tu_rand(2) ? 1700000000000ull + tu_rand(1u << 30) : 0;
		sgen_bytes(g->props, sizeof(g->props), &r->props);
		sgen_bytes(g->payload, sizeof(g->payload), &r->payload);
		if (r->type == STORE_REC_QUEUE_ADD)
			r->msg_id = 0x100000001ull * tu_rand(12);
		break;
	case STORE_REC_SESSION_PUT:
		r->protocol = (uint8_t)(3 + tu_rand(3));
		r->expiry_interval_s = tu_rand(3) ? tu_rand(100000) : UINT32_MAX;
		r->expiry_ms = tu_rand(2) ? 1700000000000ull + tu_rand(1u << 30) : 0;
		break;
	case STORE_REC_SUB_ADD:
		r->options =
		        (uint8_t)(tu_rand(3) | tu_rand(2) << 2 | tu_rand(2) << 3 | tu_rand(3) << 4);
		r->sub_id = tu_rand(3) ? 0 : 1 + tu_rand(268435455);
		break;
	case STORE_REC_QUEUE_DEL:
		r->msg_id = 0x100000001ull * tu_rand(12);
		break;
	case STORE_REC_INFLIGHT_SET:
		r->msg_id = 0x100000001ull * tu_rand(12);
		r->stage = (uint8_t)(1 + tu_rand(2));
		r->packet_id = (uint16_t)(1 + tu_rand(8));
		break;
	case STORE_REC_INFLIGHT_CLEAR:
	case STORE_REC_INBOUND_ADD:
	case STORE_REC_INBOUND_DEL:
		r->packet_id = (uint16_t)(1 + tu_rand(8));
		break;
	case STORE_REC_INBOUND_ORIGIN:
		r->packet_id = (uint16_t)(1 + tu_rand(8));
		r->origin = 1 + tu_rand(1u << 20);
		break;
	case STORE_REC_SESSION_AUTH:
	case STORE_REC_RETAIN_SOURCE:
		r->has_user = (uint8_t)tu_rand(2);
		r->listener = (uint16_t)tu_rand(3);
		if (r->has_user)
			sgen_bytes(g->payload, sizeof(g->payload), &r->user);
		break;
	case STORE_REC_SHARE_MARK:
		/* Few distinct ones, so that the same mark comes twice. */
		r->source = (uint16_t)tu_rand(4);
		r->origin = 1 + tu_rand(40);
		snprintf(g->filter, sizeof(g->filter), "$share/g%u/t/%u", tu_rand(3), tu_rand(3));
		r->filter.ptr = (const uint8_t *)g->filter;
		r->filter.len = (uint32_t)strlen(g->filter);
		break;
	case STORE_REC_ORIGIN:
		/* Intervals that often touch or overlap: few numbers, as a log holds. */
		r->source = (uint16_t)tu_rand(4);
		r->origin_lo = 1 + tu_rand(200);
		r->origin = r->origin_lo + (tu_rand(3) ? tu_rand(4) : tu_rand(60));
		break;
	default:
		break;
	}
	if (r->type == STORE_REC_RETAIN_SET || r->type == STORE_REC_RETAIN_DEL ||
	    r->type == STORE_REC_RETAIN_SOURCE || r->type == STORE_REC_QUEUE_ADD ||
	    r->type == STORE_REC_WILL_SET) {
		tu_random_topic(g->topic, false);
		r->topic.ptr = (const uint8_t *)g->topic;
		r->topic.len = (uint32_t)strlen(g->topic);
	}
	if (r->type == STORE_REC_SUB_ADD || r->type == STORE_REC_SUB_DEL) {
		tu_random_topic(g->filter, true);
		r->filter.ptr = (const uint8_t *)g->filter;
		r->filter.len = (uint32_t)strlen(g->filter);
	}
}

/* A random record; session records name sessions m holds, except the orphans. */
static void sgen_record(struct sgen *g, const struct model *m)
{
	static const uint8_t session_types[] = {
	        STORE_REC_SESSION_DEL,    STORE_REC_SUB_ADD,        STORE_REC_SUB_DEL,
	        STORE_REC_QUEUE_ADD,      STORE_REC_QUEUE_ADD,      STORE_REC_QUEUE_DEL,
	        STORE_REC_INFLIGHT_SET,   STORE_REC_INFLIGHT_CLEAR, STORE_REC_INBOUND_ADD,
	        STORE_REC_INBOUND_DEL,    STORE_REC_WILL_SET,       STORE_REC_WILL_CLEAR,
	        STORE_REC_SUB_ADD,        STORE_REC_QUEUE_ADD,      STORE_REC_INBOUND_ADD,
	        STORE_REC_INBOUND_ORIGIN, STORE_REC_SESSION_AUTH,
	};
	struct store_rec *r = &g->r;
	unsigned pick = tu_rand(10);
	bool orphan = g->orphan_1 && tu_rand(g->orphan_1) == 0;

	memset(r, 0, sizeof(*r));
	snprintf(g->client, sizeof(g->client), "c%u", tu_rand(g->clients ? g->clients : 6));
	r->client.ptr = (const uint8_t *)g->client;
	r->client.len = (uint32_t)strlen(g->client);
	if (g->origins && tu_rand(16) == 0) {
		r->type = tu_rand(2) ? STORE_REC_ORIGIN : STORE_REC_SHARE_MARK;
		memset(&r->client, 0, sizeof(r->client));
	} else if (pick < 3) {
		r->type = pick < 2 ? STORE_REC_RETAIN_SET : STORE_REC_RETAIN_DEL;
		memset(&r->client, 0, sizeof(r->client));
		if (pick == 0 && tu_rand(3) == 0) {
			/* Who set a retained message the model holds (never an orphan). */
			static struct mbytes k;

			r->type = STORE_REC_RETAIN_SOURCE;
			r->client.ptr = (const uint8_t *)g->client;
			r->client.len = (uint32_t)strlen(g->client);
			sgen_fields(g);
			k.n = 0;
			mb_put(&k, "R", 1);
			mb_put(&k, r->topic.ptr, r->topic.len);
			if (model_find(m, k.b, k.n) >= 0)
				return;
			memset(r, 0, sizeof(*r));
			r->type = STORE_REC_RETAIN_SET;
		}
	} else if (orphan || (pick >= 4 && sgen_session_exists(m, g->client))) {
		r->type = session_types[tu_rand(sizeof(session_types))];
	} else {
		r->type = STORE_REC_SESSION_PUT;
	}
	sgen_fields(g);
}

#endif
