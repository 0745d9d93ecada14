/*
 * A session as the persistence log's records, for another node of a cluster (cluster_session.c):
 * the records a compaction writes for it, into a buffer of the caller's, whether or not this
 * broker has persistence on. One codec for the disk and the wire: the hand-over is as tested
 * as a restart, and a later format version reads both.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "persist.h"
#include "session.h"
#include "worker.h"

struct export_ctx {
	struct session *s;
	struct store_buf *b;
	size_t max;
	uint32_t dropped;
	uint64_t next_id; /* messages numbered anew: without persistence they have no number */
};

static void export_msg(struct export_ctx *x, const struct sess_delivery *d, uint16_t pid,
                       bool inflight)
{
	struct sess_delivery n = *d;

	n.sid = ++x->next_id;
	persist_queue_add(x->s, &n);
	if (inflight)
		persist_inflight_set(x->s, pid, n.sid, STORE_STAGE_PUBLISH);
}

/* Bytes a QUEUE_ADD of d takes, near enough to keep the hand-over under its bound. */
static size_t export_msg_size(const struct session *s, const struct sess_delivery *d)
{
	const struct msg *m = d->m;

	return 64 + s->client_id_len + m->topic_len + m->props_len + m->payload_len;
}

static bool export_fits(struct export_ctx *x, const struct sess_delivery *d)
{
	if (x->b->len + export_msg_size(x->s, d) <= x->max)
		return true;
	x->dropped++;
	return false;
}

/* In-flight slots in their first-transmission order, as a compaction keeps them. */
static void export_slot(void *ctx, uint16_t pid, const struct sess_slot *slot)
{
	struct export_ctx *x = ctx;

	if (slot->state == SLOT_WAIT_PUBCOMP) {
		persist_inflight_set(x->s, pid, ++x->next_id, STORE_STAGE_PUBREL);
		return;
	}
	if (!slot->d.m || !export_fits(x, &slot->d))
		return;
	export_msg(x, &slot->d, pid, true);
}

static uint64_t export_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int persist_export_session(struct worker *w, struct session *s, struct store_buf *b, size_t max,
                           bool meta_only, uint32_t *dropped)
{
	struct persist *ex = calloc(1, sizeof(*ex));
	struct persist *saved = s->ps;
	struct export_ctx x = {.s = s, .b = b, .max = max};

	if (!ex)
		return -1;
	ex->w = w;
	ex->wall_off_ms = export_wall_ms() - w->now_ms;
	ex->snap_to = b;
	ex->snap_max = (size_t)-1;
	/* Its client connects on the importing node, which judges it there (and a node of an
	 * older build would refuse the record, and the rest of the session with it). */
	ex->snap_no_auth = true;
	s->ps = ex;
	persist_session_put(s, s->protocol);
	for (uint32_t i = 0; i < s->nsubs; i++)
		persist_sub_add(s, s->subs[i].filter, s->subs[i].filter_len, s->subs[i].data);
	if (!meta_only) {
		if (s->will)
			persist_will_set(s);
		/* Origins number messages within one node's workers: none travels. */
		for (uint32_t i = 0; s->in_qos2 && i < 65536 / 64; i++)
			for (uint64_t bits = s->in_qos2[i]; bits; bits &= bits - 1)
				persist_inbound(
				        s, (uint16_t)(i * 64 + (unsigned)__builtin_ctzll(bits)),
				        true, 0);
		session_out_each_inflight(s, export_slot, &x);
		for (uint32_t i = 0; i < s->q_len; i++) {
			const struct sess_delivery *d = &s->q[(s->q_head + i) & (s->q_cap - 1)];

			if (export_fits(&x, d))
				export_msg(&x, d, 0, false);
		}
	}
	s->ps = saved;
	if (dropped)
		*dropped = x.dropped;
	int over = ex->snap_over;

	free(ex);
	return over ? -1 : 0;
}
