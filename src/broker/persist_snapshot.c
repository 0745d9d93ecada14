/*
 * A snapshot of a worker's durable state from memory (persist.h), for compaction when that
 * state is small: encoding it takes microseconds, where replaying the segments it replaces
 * (a log that grows at the message rate when messages come and go) would cost a thread a
 * second of CPU per 64 MiB. Taken at the switch to a new segment, between two iterations: it
 * covers every record of the old segments, and replaying the new one on top of it repeats
 * nothing that is not idempotent (every record sets or deletes keys).
 */
#include "index/retain.h"
#include "persist.h"
#include "session.h"
#include "worker.h"

struct snap_ctx {
	struct session *s;
};

/* In-flight slots in their first-transmission order, so redelivery keeps it. */
static void snap_slot(void *ctx, uint16_t pid, const struct sess_slot *slot)
{
	struct session *s = ((struct snap_ctx *)ctx)->s;

	if (slot->state == SLOT_WAIT_PUBCOMP) {
		persist_inflight_set(s, pid, slot->d.sid, STORE_STAGE_PUBREL);
		return;
	}
	if (!slot->d.m)
		return;
	persist_queue_add(s, &slot->d);
	persist_inflight_set(s, pid, slot->d.sid, STORE_STAGE_PUBLISH);
}

void persist_snap_session(struct session *s)
{
	struct snap_ctx ctx = {s};

	persist_session_put(s, s->protocol);
	if (s->will)
		persist_will_set(s);
	for (uint32_t i = 0; i < s->nsubs; i++)
		persist_sub_add(s, s->subs[i].filter, s->subs[i].filter_len, s->subs[i].data);
	session_out_each_inflight(s, snap_slot, &ctx);
	for (uint32_t i = 0; i < s->q_len; i++)
		persist_queue_add(s, &s->q[(s->q_head + i) & (s->q_cap - 1)]);
	for (uint32_t i = 0; s->in_qos2 && i < 65536 / 64; i++)
		for (uint64_t bits = s->in_qos2[i]; bits; bits &= bits - 1) {
			uint16_t pid = (uint16_t)(i * 64 + (unsigned)__builtin_ctzll(bits));

			persist_inbound(s, pid, true, session_in_qos2_origin(s, pid));
		}
}

struct snap_retain {
	struct worker *w;
};

static void snap_retained(void *ctx, void *value)
{
	struct worker *w = ((struct snap_retain *)ctx)->w;
	const struct msg *m = value;

	/* Tombstones (empty) and expired messages are not state. */
	if (!m->payload_len || (m->expiry_ms && m->expiry_ms <= w->now_ms))
		return;
	persist_retain(w, (struct st_bytes){msg_topic(m), m->topic_len}, m);
}

int persist_snapshot(struct worker *w, struct store_buf *b, size_t max)
{
	struct persist *p = w->ps;
	struct snap_retain rc = {w};

	/* Clearly too large (a record is 30 bytes or more): not walked at all. */
	if (w->sessions.count > max / 32 || (w->index == 0 && retain_count(w->retained) > max / 32))
		return -1;
	p->snap_to = b;
	p->snap_max = max;
	p->snap_over = false;
	for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions) && !p->snap_over;
	     i = hmap_next(&w->sessions, i + 1)) {
		struct session *s = w->sessions.slots[i].val;

		if (s->ps)
			persist_snap_session(s);
	}
	if (w->index == 0 && !p->snap_over)
		retain_each(w->retained, snap_retained, &rc);
	if (!p->snap_over)
		persist_origin_marks(p, true);
	if (!p->snap_over)
		persist_marks_snapshot(p);
	p->snap_to = NULL;
	return p->snap_over ? -1 : 0;
}
