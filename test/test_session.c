/*
 * Tests of the session state machines (src/broker/session.c): what session.h promises, and the MQTT
 * 3.1.1 rules behind it: a new QoS 1/2 PUBLISH gets an unused packet id and stays
 * unacknowledged until its PUBACK, or its PUBREC then PUBCOMP [MQTT-4.3.2-1] [MQTT-4.3.3-1];
 * unacknowledged PUBLISH and PUBREL packets are resent with their original ids [MQTT-4.4.0-1],
 * PUBLISH in the order first sent and PUBREL in the order the PUBRECs arrived [MQTT-4.6.0-1]
 * [MQTT-4.6.0-4], which a server follows towards every subscriber [MQTT-4.6.0-6]; an inbound
 * QoS 2 PUBLISH is delivered once until its PUBREL, and its id is new again after that
 * [MQTT-4.3.3-2].
 *
 * Every message offered is a real refcounted struct msg, and the tests check m->refs around
 * each step: the test holds one reference, and every queued delivery and every inflight slot
 * before its PUBREC holds one more, so a leaked or doubly dropped reference shows at the step
 * that caused it (ASan reports the leak or the use after free besides).
 *
 * These are the hand-written cases; the random operations checked against plain models are in
 * test/test_session_model.c, and the helpers both use in test/session_cases.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "starling/error.h"
#include "index/msg.h"
#include "broker/session.h"
#include "store/record.h"
#include "session_cases.h"
#include "testutil.h"

/* A byte copy of the outbound state, to show that a refused acknowledgement changed nothing. */
struct snap {
	struct session s;           /* the struct itself */
	struct sess_slot slots[16]; /* the slot table */
	uint16_t free_ids[16];      /* the free id ring */
	uint32_t refs[4];           /* refs of the messages watched */
};

static void snap_take(struct snap *sn, const struct session *s, struct msg **ms, unsigned n)
{
	memset(sn, 0, sizeof(*sn));
	memcpy(&sn->s, s, sizeof(*s));
	if (s->slots_cap && s->slots_cap <= 16) {
		memcpy(sn->slots, s->slots, s->slots_cap * sizeof(*s->slots));
		memcpy(sn->free_ids, s->free_ids, s->slots_cap * sizeof(*s->free_ids));
	}
	for (unsigned i = 0; i < n; i++)
		sn->refs[i] = ms[i]->refs;
}

static bool snap_same(const struct snap *sn, const struct session *s, struct msg **ms, unsigned n)
{
	struct snap now;

	snap_take(&now, s, ms, n);
	return memcmp(&now, sn, sizeof(now)) == 0;
}

static void test_new_free(void)
{
	struct session *s = sess_make(20, 100);
	uint8_t id[3] = {'a', 'b', 'c'};
	struct session *t;

	CU_ASSERT_EQUAL(s->inflight_max, 20);
	CU_ASSERT_EQUAL(s->q_max, 100);
	CU_ASSERT_EQUAL(s->client_id_len, 8);
	CU_ASSERT_EQUAL(memcmp(s->client_id, "client-1", 8), 0);
	/* Nothing in flight and nothing queued: no table, no queue, no bitmap. */
	CU_ASSERT_PTR_NULL(s->slots);
	CU_ASSERT_PTR_NULL(s->q);
	CU_ASSERT_PTR_NULL(s->in_qos2);
	CU_ASSERT_EQUAL(s->inflight, 0);
	session_free(s);
	/* The client id is copied; a window of 0 becomes 1 (the window is 1..65535). */
	t = session_new(id, sizeof(id), 0, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	id[0] = 'z';
	CU_ASSERT_EQUAL(memcmp(t->client_id, "abc", 3), 0);
	CU_ASSERT_EQUAL(t->inflight_max, 1);
	session_free(t);
	session_free(NULL);
}

static void test_offer_window(void)
{
	struct session *s = sess_make(4, 10);
	struct msg *m[5];
	uint16_t pid[5];

	for (int i = 0; i < 5; i++)
		m[i] = msg_make("payload");
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(offer(s, m[i], 1 + i % 2, i, true, &pid[i]), SESS_OUT_SEND);
		CU_ASSERT_NOT_EQUAL(pid[i], 0);
		for (int j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(pid[i], pid[j]);
		CU_ASSERT_EQUAL(m[i]->refs, 2);
		CU_ASSERT_EQUAL(s->inflight, i + 1);
	}
	/* Window full: the fifth waits, with the session's own reference. */
	CU_ASSERT_EQUAL(offer(s, m[4], 1, 4, true, &pid[4]), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(m[4]->refs, 2);
	CU_ASSERT_EQUAL(s->inflight, 4);
	CU_ASSERT_EQUAL(s->q_len, 1);
	CU_ASSERT_EQUAL(s->dropped, 0);
	CU_ASSERT(s->inflight <= s->inflight_max);
	session_free(s);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(m[i]->refs, 1);
		msg_unref(m[i]);
	}
}

static void test_offline_queues(void)
{
	struct session *s = sess_make(4, 3);
	struct msg *m[4];
	struct sess_delivery d;
	uint16_t pid, seen[3];

	for (int i = 0; i < 4; i++)
		m[i] = msg_make("offline");
	/* A free window does not matter while the client is away. */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(offer(s, m[i], 2 - i % 2, 100 + i, false, &pid), SESS_OUT_QUEUED);
		CU_ASSERT_EQUAL(m[i]->refs, 2);
	}
	CU_ASSERT_EQUAL(s->inflight, 0);
	CU_ASSERT_EQUAL(offer(s, m[3], 1, 103, false, &pid), SESS_OUT_DROPPED);
	CU_ASSERT_EQUAL(m[3]->refs, 1);
	CU_ASSERT_EQUAL(s->dropped, 1);
	/* Reconnected: the queue drains oldest first, the reference moving into the slot. */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(session_out_next(s, &d, &seen[i]));
		CU_ASSERT_PTR_EQUAL(d.m, m[i]);
		CU_ASSERT_EQUAL(d.sub_id, 100 + i);
		CU_ASSERT_EQUAL(d.qos, 2 - i % 2);
		CU_ASSERT_NOT_EQUAL(seen[i], 0);
		CU_ASSERT_EQUAL(m[i]->refs, 2);
	}
	CU_ASSERT(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
	CU_ASSERT_FALSE(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(s->q_len, 0);
	CU_ASSERT_TRUE(session_out_puback(s, seen[1]));
	CU_ASSERT_EQUAL(m[1]->refs, 1);
	session_free(s);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(m[i]->refs, 1);
		msg_unref(m[i]);
	}
}

static void test_queue_bound(void)
{
	struct session *s = sess_make(2, 3);
	struct msg *m[7];
	struct sess_delivery d;
	uint16_t pid[7], p, none;

	for (int i = 0; i < 7; i++)
		m[i] = msg_make("bounded");
	CU_ASSERT_EQUAL(offer(s, m[0], 1, 0, true, &pid[0]), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, m[1], 1, 1, true, &pid[1]), SESS_OUT_SEND);
	for (int i = 2; i < 5; i++) {
		CU_ASSERT_EQUAL(offer(s, m[i], 1, i, true, &pid[i]), SESS_OUT_QUEUED);
		CU_ASSERT_EQUAL(m[i]->refs, 2);
	}
	/* q_max reached: dropped, counted, and the caller's reference untouched. */
	CU_ASSERT_EQUAL(offer(s, m[5], 1, 5, true, &pid[5]), SESS_OUT_DROPPED);
	CU_ASSERT_EQUAL(m[5]->refs, 1);
	CU_ASSERT_EQUAL(s->dropped, 1);
	CU_ASSERT_EQUAL(offer(s, m[5], 2, 5, false, &pid[5]), SESS_OUT_DROPPED);
	CU_ASSERT_EQUAL(m[5]->refs, 1);
	CU_ASSERT_EQUAL(s->dropped, 2);
	CU_ASSERT_EQUAL(s->q_len, 3);
	s->q_full_logged = true; /* the router logged the episode's first drop */
	/* A PUBACK frees a slot; the oldest queued delivery takes it. */
	CU_ASSERT_FALSE(session_out_next(s, &d, &none));
	CU_ASSERT_TRUE(session_out_puback(s, pid[0]));
	CU_ASSERT_EQUAL(m[0]->refs, 1);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &p));
	CU_ASSERT_PTR_EQUAL(d.m, m[2]);
	CU_ASSERT_EQUAL(m[2]->refs, 2);
	CU_ASSERT_TRUE(s->q_full_logged); /* the episode lasts until the queue has drained */
	CU_ASSERT_FALSE(session_out_next(s, &d, &none));
	/* Room in the queue again; still queued behind m[3], m[4]. */
	CU_ASSERT_EQUAL(offer(s, m[6], 1, 6, true, &pid[6]), SESS_OUT_QUEUED);
	for (int i = 3; i < 7; i++) {
		if (i == 5)
			continue;
		CU_ASSERT_TRUE(session_out_puback(s, p));
		CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &p));
		CU_ASSERT_PTR_EQUAL(d.m, m[i]);
		CU_ASSERT_EQUAL(d.sub_id, i);
		CU_ASSERT_EQUAL(s->q_full_logged, s->q_len > 0);
	}
	CU_ASSERT_FALSE(s->q_full_logged);
	CU_ASSERT_EQUAL(s->dropped, 2);
	session_free(s);
	for (int i = 0; i < 7; i++) {
		CU_ASSERT_EQUAL(m[i]->refs, 1);
		msg_unref(m[i]);
	}
}

/* A delivery offered while others wait is queued behind them [MQTT-4.6.0-6]. */
static void test_queued_go_first(void)
{
	struct session *s = sess_make(1, 0);
	struct msg *a = msg_make("a"), *b = msg_make("b"), *c = msg_make("c");
	struct sess_delivery d;
	uint16_t pa, pb, pc;

	CU_ASSERT_EQUAL(offer(s, a, 1, 1, true, &pa), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, b, 1, 2, true, &pb), SESS_OUT_QUEUED);
	CU_ASSERT_TRUE(session_out_puback(s, pa));
	/* The window has room, but b was first. */
	CU_ASSERT_EQUAL(offer(s, c, 1, 3, true, &pc), SESS_OUT_QUEUED);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pb));
	CU_ASSERT_PTR_EQUAL(d.m, b);
	CU_ASSERT_FALSE(session_out_next(s, &d, &pc));
	CU_ASSERT_TRUE(session_out_puback(s, pb));
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pc));
	CU_ASSERT_PTR_EQUAL(d.m, c);
	CU_ASSERT_EQUAL(a->refs, 1);
	CU_ASSERT_EQUAL(b->refs, 1);
	CU_ASSERT_EQUAL(c->refs, 2);
	session_free(s);
	CU_ASSERT_EQUAL(c->refs, 1);
	msg_unref(a);
	msg_unref(b);
	msg_unref(c);
}

/* QoS 2 out [MQTT-4.3.3-1]: after PUBREC the message goes, the id stays until PUBCOMP. */
static void test_qos2_flow(void)
{
	struct session *s = sess_make(1, 0);
	struct msg *m = msg_make("exactly once"), *n = msg_make("next");
	struct visit v[2];
	struct visits vs = {v, 0, 2};
	struct sess_delivery d;
	uint16_t pid, p2;

	CU_ASSERT_EQUAL(offer(s, m, 2, 7, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(m->refs, 2);
	CU_ASSERT_EQUAL(s->slots[pid - 1].state, SLOT_WAIT_PUBREC);
	CU_ASSERT_TRUE(session_out_pubrec(s, pid));
	CU_ASSERT_EQUAL(m->refs, 1);
	CU_ASSERT_EQUAL(s->slots[pid - 1].state, SLOT_WAIT_PUBCOMP);
	CU_ASSERT_PTR_NULL(s->slots[pid - 1].d.m);
	CU_ASSERT_EQUAL(s->inflight, 1);
	/* The id is still in use: the window (1) is full. */
	CU_ASSERT_EQUAL(offer(s, n, 2, 8, true, &p2), SESS_OUT_QUEUED);
	CU_ASSERT_FALSE(session_out_next(s, &d, &p2));
	/* Redelivery now is a PUBREL, never the PUBLISH again. */
	CU_ASSERT_EQUAL_FATAL(visits_collect(s, &vs), 1);
	CU_ASSERT_EQUAL(v[0].pid, pid);
	CU_ASSERT_EQUAL(v[0].state, SLOT_WAIT_PUBCOMP);
	CU_ASSERT_PTR_NULL(v[0].m);
	CU_ASSERT_TRUE(session_out_pubcomp(s, pid));
	CU_ASSERT_EQUAL(m->refs, 1);
	CU_ASSERT_EQUAL(s->inflight, 0);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &p2));
	CU_ASSERT_PTR_EQUAL(d.m, n);
	CU_ASSERT_EQUAL(n->refs, 2);
	CU_ASSERT_EQUAL(visits_collect(s, &vs), 1);
	CU_ASSERT_EQUAL(v[0].state, SLOT_WAIT_PUBREC);
	session_free(s);
	CU_ASSERT_EQUAL(n->refs, 1);
	msg_unref(m);
	msg_unref(n);
}

/*
 * Replay (persist_replay.c) rebuilds queue and window from log records: queued messages by
 * msg_id, stage 1 moves one into a given packet id, a message dropped (PUBREC, expiry) while
 * its id stays, stage 2 alone (a compacted log), then the session goes on as if never stopped.
 */
static void test_restore(void)
{
	struct session *s = sess_make(8, 0);
	struct msg *m[4];
	struct visit v[8];
	struct visits vs = {v, 0, 8};
	struct sess_delivery d;
	uint16_t pid;

	for (unsigned i = 0; i < 4; i++) {
		m[i] = msg_make("restored");
		d = (struct sess_delivery){
		        .m = msg_ref(m[i]), .qos = (uint8_t)(1 + i % 2), .sid = i + 1};
		CU_ASSERT_EQUAL(session_restore_queued(s, &d), ST_OK);
	}
	CU_ASSERT_EQUAL(s->q_len, 4);
	CU_ASSERT_TRUE(session_restore_inflight(s, 5, 1, STORE_STAGE_PUBLISH));
	CU_ASSERT_TRUE(session_restore_inflight(s, 3, 2, STORE_STAGE_PUBLISH));
	session_restore_unqueue(s, 2); /* its PUBREC: the message goes, the id stays */
	CU_ASSERT_EQUAL(m[1]->refs, 1);
	CU_ASSERT_TRUE(session_restore_inflight(s, 3, 2, STORE_STAGE_PUBREL));
	CU_ASSERT_TRUE(session_restore_inflight(s, 7, 99, STORE_STAGE_PUBREL));
	CU_ASSERT_FALSE(session_restore_inflight(s, 6, 42, STORE_STAGE_PUBLISH)); /* not queued */
	CU_ASSERT_FALSE(session_restore_inflight(s, 0, 3, STORE_STAGE_PUBLISH));
	CU_ASSERT_FALSE(session_restore_inflight(s, 5, 3, STORE_STAGE_PUBLISH)); /* id in use */
	CU_ASSERT_FALSE(session_restore_inflight(s, 9, 3, STORE_STAGE_PUBLISH)); /* past window */
	CU_ASSERT_EQUAL(s->inflight, 3);
	CU_ASSERT_EQUAL(s->q_len, 2);
	/* What it holds, queued or in a slot (a replayed record repeated after a snapshot). */
	CU_ASSERT_TRUE(session_holds_sid(s, 1)); /* slot 5 */
	CU_ASSERT_TRUE(session_holds_sid(s, 2)); /* slot 3, stage 2 */
	CU_ASSERT_TRUE(session_holds_sid(s, 3)); /* queued */
	CU_ASSERT_FALSE(session_holds_sid(s, 5));
	session_restore_unqueue(s, 4);
	CU_ASSERT_FALSE(session_holds_sid(s, 4));
	CU_ASSERT_EQUAL(s->q_len, 1);
	CU_ASSERT_EQUAL(m[3]->refs, 1);
	CU_ASSERT_EQUAL_FATAL(visits_collect(s, &vs), 3);
	CU_ASSERT_EQUAL(v[0].pid, 5);
	CU_ASSERT_EQUAL(v[0].state, SLOT_WAIT_PUBACK);
	CU_ASSERT_PTR_EQUAL(v[0].m, m[0]);
	CU_ASSERT_EQUAL(v[1].pid, 3);
	CU_ASSERT_EQUAL(v[1].state, SLOT_WAIT_PUBCOMP);
	CU_ASSERT_PTR_NULL(v[1].m);
	CU_ASSERT_EQUAL(v[2].pid, 7);
	CU_ASSERT_EQUAL(v[2].state, SLOT_WAIT_PUBCOMP);
	/* It goes on: ids 3 and 7 are not handed out while in use. */
	CU_ASSERT_TRUE(session_out_puback(s, 5));
	CU_ASSERT_EQUAL(m[0]->refs, 1);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_PTR_EQUAL(d.m, m[2]);
	CU_ASSERT(pid != 3 && pid != 7 && pid >= 1 && pid <= 8);
	CU_ASSERT_TRUE(session_out_pubcomp(s, 3));
	CU_ASSERT_TRUE(session_out_pubcomp(s, 7));
	session_restore_clear(s, pid);
	session_restore_clear(s, pid); /* twice: nothing */
	CU_ASSERT_EQUAL(s->inflight, 0);
	CU_ASSERT_EQUAL(s->nfree, s->slots_cap);
	session_free(s);
	for (unsigned i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(m[i]->refs, 1);
		msg_unref(m[i]);
	}
}

/* Every acknowledgement in the wrong state returns false and changes nothing. */
static void test_wrong_acks(void)
{
	struct session *s = sess_make(4, 0), *empty = sess_make(4, 0);
	struct msg *m[3] = {msg_make("q1"), msg_make("q2"), msg_make("q2 rec")};
	uint16_t a, b, c, unused = 0;
	struct snap sn;

	for (unsigned k = 0; k < 3; k++)
		CU_ASSERT_FALSE(ack(empty, k, 1)); /* no table at all yet */
	CU_ASSERT_EQUAL(session_out_qos(empty, 1), 0);
	session_free(empty);
	CU_ASSERT_EQUAL(offer(s, m[0], 1, 0, true, &a), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, m[1], 2, 1, true, &b), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, m[2], 2, 2, true, &c), SESS_OUT_SEND);
	CU_ASSERT_TRUE(session_out_pubrec(s, c));
	for (uint16_t id = 1; id <= s->slots_cap; id++)
		if (id != a && id != b && id != c)
			unused = id;
	CU_ASSERT_NOT_EQUAL_FATAL(unused, 0);
	/*
	 * Only PUBACK a, PUBREC b and PUBCOMP c are right. The rest: PUBACK for QoS 2 ids, PUBREC
	 * for QoS 1 and twice, PUBCOMP for QoS 1 and before PUBREC; and for each kind a free id in
	 * the table, id 0, the first id above the table and 65535.
	 */
	const uint16_t right[3] = {a, b, c};
	const uint16_t ids[7] = {a, b, c, unused, 0, (uint16_t)(s->slots_cap + 1), 65535};
	for (unsigned k = 0; k < 3; k++) {
		for (int i = 0; i < 7; i++) {
			if (ids[i] == right[k])
				continue;
			snap_take(&sn, s, m, 3);
			CU_ASSERT_FALSE(ack(s, k, ids[i]));
			CU_ASSERT_TRUE(snap_same(&sn, s, m, 3));
		}
	}
	/* What handle_ack asks before them: the QoS each id stands for, 0 for an unused one. */
	CU_ASSERT_EQUAL(session_out_qos(s, a), 1);
	CU_ASSERT_EQUAL(session_out_qos(s, b), 2); /* awaiting PUBREC */
	CU_ASSERT_EQUAL(session_out_qos(s, c), 2); /* awaiting PUBCOMP */
	for (int i = 3; i < 7; i++)
		CU_ASSERT_EQUAL(session_out_qos(s, ids[i]), 0);
	/* The right ones still work afterwards. */
	CU_ASSERT_TRUE(session_out_puback(s, a));
	CU_ASSERT_TRUE(session_out_pubrec(s, b));
	CU_ASSERT_TRUE(session_out_pubcomp(s, b));
	CU_ASSERT_TRUE(session_out_pubcomp(s, c));
	CU_ASSERT_EQUAL(s->inflight, 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(session_out_qos(s, right[i]), 0); /* free again */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(m[i]->refs, 1);
		msg_unref(m[i]);
	}
	session_free(s);
}

/* Freed ids come back oldest-freed first (session.c's FIFO of free ids). */
static void test_id_reuse_order(void)
{
	struct session *s = sess_make(8, 0);
	struct msg *m = msg_make("ids");
	const uint16_t freed[] = {5, 2, 7};
	uint16_t pid, seen = 0;

	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(offer(s, m, 1, i, true, &pid), SESS_OUT_SEND);
		CU_ASSERT(pid >= 1 && pid <= 8);
		seen |= (uint16_t)(1u << (pid - 1));
	}
	CU_ASSERT_EQUAL(seen, 0xff);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_TRUE(session_out_puback(s, freed[i]));
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(offer(s, m, 1, 10 + i, true, &pid), SESS_OUT_SEND);
		CU_ASSERT_EQUAL(pid, freed[i]);
	}
	/* One slot cycling: the id moves on instead of coming straight back. */
	CU_ASSERT_TRUE(session_out_puback(s, 2));
	CU_ASSERT_TRUE(session_out_puback(s, 4));
	CU_ASSERT_EQUAL(offer(s, m, 1, 20, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(pid, 2);
	CU_ASSERT_TRUE(session_out_puback(s, 2));
	CU_ASSERT_EQUAL(offer(s, m, 1, 21, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(pid, 4);
	session_free(s);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
}

/* Redelivery visits slots in first-transmission order, not id order [MQTT-4.6.0-1]. */
static void test_each_inflight_order(void)
{
	struct session *s = sess_make(8, 0);
	struct msg *m = msg_make("order");
	struct visit v[9];
	struct visits vs = {v, 0, 9};
	uint16_t pid;

	CU_ASSERT_EQUAL(visits_collect(s, &vs), 0);
	for (uint32_t i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(offer(s, m, 1 + i % 2, i, true, &pid), SESS_OUT_SEND);
	/* Out-of-order acknowledgements; the ids come back (5 then 3) for newer messages. */
	CU_ASSERT_TRUE(session_out_puback(s, 5));
	CU_ASSERT_TRUE(session_out_pubrec(s, 4));
	CU_ASSERT_TRUE(session_out_pubcomp(s, 4));
	CU_ASSERT_TRUE(session_out_puback(s, 3));
	CU_ASSERT_EQUAL(offer(s, m, 1, 100, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(pid, 5);
	CU_ASSERT_EQUAL(offer(s, m, 2, 101, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(pid, 4);
	CU_ASSERT_EQUAL(offer(s, m, 1, 102, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(pid, 3);
	/* Transmission order: 1 2 6 7 8 (old), then 5 4 3 (new). */
	const uint16_t order[] = {1, 2, 6, 7, 8, 5, 4, 3};
	CU_ASSERT_EQUAL_FATAL(visits_collect(s, &vs), 8);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(v[i].pid, order[i]);
		CU_ASSERT_PTR_EQUAL(v[i].m, m);
	}
	CU_ASSERT_EQUAL(v[5].tag, 100);
	CU_ASSERT_EQUAL(v[7].tag, 102);
	session_free(s);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
}

/*
 * PUBRELs are resent in the order their PUBRECs arrived [MQTT-4.6.0-4], while PUBLISHes keep
 * their first-transmission order [MQTT-4.6.0-1]; a server follows both towards each
 * subscriber [MQTT-4.6.0-6]. The interleaving of the two kinds is free.
 */
static void test_pubrel_order(void)
{
	struct session *s = sess_make(8, 0);
	struct msg *m = msg_make("pubrel order");
	const uint16_t rec_order[] = {6, 3, 8, 1};
	const uint16_t pub_order[] = {2, 4, 5, 7};
	struct visit v[8];
	struct visits vs = {v, 0, 8};
	unsigned nrel = 0, npub = 0;
	uint16_t pid;

	for (uint32_t i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(offer(s, m, 2, i, true, &pid), SESS_OUT_SEND);
		CU_ASSERT_EQUAL(pid, i + 1);
	}
	for (int i = 0; i < 4; i++)
		CU_ASSERT_TRUE(session_out_pubrec(s, rec_order[i]));
	CU_ASSERT_EQUAL_FATAL(visits_collect(s, &vs), 8);
	for (int i = 0; i < 8; i++) {
		if (v[i].state == SLOT_WAIT_PUBCOMP) {
			CU_ASSERT_EQUAL(v[i].pid, rec_order[nrel]);
			nrel++;
		} else {
			CU_ASSERT_EQUAL(v[i].pid, pub_order[npub]);
			npub++;
		}
	}
	CU_ASSERT_EQUAL(nrel, 4);
	CU_ASSERT_EQUAL(npub, 4);
	session_free(s);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
}

static void test_set_inflight_max(void)
{
	struct session *s = sess_make(8, 0);
	struct msg *m = msg_make("window");
	struct sess_delivery d;
	uint16_t pid;

	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(offer(s, m, 1, i, true, &pid), SESS_OUT_SEND);
	/* Shrink to 2: the 8 in flight stay until acknowledged; nothing new goes out. */
	session_set_inflight_max(s, 2);
	CU_ASSERT_EQUAL(s->inflight, 8);
	CU_ASSERT_TRUE(session_out_puback(s, 1));
	CU_ASSERT_EQUAL(offer(s, m, 1, 50, true, &pid), SESS_OUT_QUEUED);
	for (uint16_t id = 2; id <= 6; id++) {
		CU_ASSERT_FALSE(session_out_next(s, &d, &pid));
		CU_ASSERT_TRUE(session_out_puback(s, id));
	}
	CU_ASSERT_EQUAL(s->inflight, 2);
	CU_ASSERT_FALSE(session_out_next(s, &d, &pid));
	CU_ASSERT_TRUE(session_out_puback(s, 7));
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(d.sub_id, 50);
	CU_ASSERT_EQUAL(s->inflight, 2);
	CU_ASSERT_EQUAL(offer(s, m, 1, 51, true, &pid), SESS_OUT_QUEUED);
	/* Grow to 20: the queue drains, then offers go straight out up to 20. */
	session_set_inflight_max(s, 20);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(d.sub_id, 51);
	for (int i = 3; i < 20; i++)
		CU_ASSERT_EQUAL(offer(s, m, 2, 60 + i, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(s->inflight, 20);
	CU_ASSERT(s->slots_cap >= 20);
	CU_ASSERT_EQUAL(offer(s, m, 1, 99, true, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(m->refs, 22);
	session_set_inflight_max(s, 0);
	CU_ASSERT_EQUAL(s->inflight_max, 1);
	session_free(s);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
}

/* Slots the table should hold after k first offers: doubling from 8, up to 65535. */
static uint32_t table_after(uint32_t k)
{
	uint32_t cap = 8;

	while (cap < k)
		cap *= 2;
	return cap > 65535 ? 65535 : cap;
}

/* The widest window: every id 1..65535 in use once, the table doubling up to it. */
static void test_window_65535(void)
{
	struct session *s = sess_make(65535, 0);
	struct msg *m = msg_make("wide");
	uint8_t *seen = calloc(65536, 1);
	struct visits vs = {calloc(65535, sizeof(struct visit)), 0, 65535};
	unsigned bad = 0, bad_cap = 0, bad_order = 0;
	struct sess_delivery d;
	uint16_t pid;

	CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vs.v);
	for (uint32_t i = 0; i < 65535; i++) {
		if (offer(s, m, 1 + i % 2, i, true, &pid) != SESS_OUT_SEND || pid == 0 || seen[pid])
			bad++;
		seen[pid] = 1;
		if (s->slots_cap != table_after(i + 1))
			bad_cap++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(bad_cap, 0);
	CU_ASSERT_EQUAL(s->slots_cap, 65535);
	CU_ASSERT_EQUAL(m->refs, 65536);
	CU_ASSERT_EQUAL(offer(s, m, 1, 70000, true, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_TRUE(session_out_puback(s, 40000) || session_out_pubrec(s, 40000));
	if (s->slots[40000 - 1].state == SLOT_WAIT_PUBCOMP)
		CU_ASSERT_TRUE(session_out_pubcomp(s, 40000));
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(pid, 40000);
	CU_ASSERT_EQUAL(d.sub_id, 70000);
	CU_ASSERT_EQUAL_FATAL(visits_collect(s, &vs), 65535);
	for (uint32_t i = 1; i < 65535; i++)
		if (vs.v[i - 1].tag >= vs.v[i].tag)
			bad_order++;
	CU_ASSERT_EQUAL(bad_order, 0);
	CU_ASSERT_EQUAL(vs.v[65534].pid, 40000);
	session_free(s);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
	free(seen);
	free(vs.v);
}

/* Fills a session with every kind of held message, for clear and free. */
static void fill_everything(struct session *s, struct msg **m)
{
	uint16_t pid;

	CU_ASSERT_EQUAL(offer(s, m[0], 1, 0, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, m[1], 2, 1, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, m[2], 2, 2, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_TRUE(session_out_pubrec(s, pid));
	CU_ASSERT_EQUAL(offer(s, m[3], 1, 3, true, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(offer(s, m[0], 2, 4, false, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 77, 0), 1);
	CU_ASSERT_EQUAL(session_sub_add(s, (const uint8_t *)"a/#", 3, 9), ST_OK);
	CU_ASSERT_EQUAL(m[0]->refs, 3);
	CU_ASSERT_EQUAL(m[1]->refs, 2);
	CU_ASSERT_EQUAL(m[2]->refs, 1);
	CU_ASSERT_EQUAL(m[3]->refs, 2);
}

static void test_clear_and_free(void)
{
	struct session *s = sess_make(3, 10);
	struct msg *m[4] = {msg_make("0"), msg_make("1"), msg_make("2"), msg_make("3")};
	uint16_t pid;

	fill_everything(s, m);
	session_clear_messages(s);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(m[i]->refs, 1);
	CU_ASSERT_EQUAL(s->inflight, 0);
	CU_ASSERT_EQUAL(s->q_len, 0);
	CU_ASSERT_PTR_NULL(s->in_qos2);
	CU_ASSERT_EQUAL(s->nsubs, 1); /* subscriptions are not messages */
	/* Usable again, and a cleared QoS 2 id is new. */
	CU_ASSERT_EQUAL(offer(s, m[0], 1, 5, true, &pid), SESS_OUT_SEND);
	CU_ASSERT_NOT_EQUAL(pid, 0);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 77, 0), 1);
	CU_ASSERT_EQUAL(m[0]->refs, 2);
	session_clear_messages(s);
	session_clear_messages(s);
	fill_everything(s, m);
	session_free(s);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(m[i]->refs, 1);
		msg_unref(m[i]);
	}
}

/* --- inbound QoS 2 and subscriptions ------------------------------------------------ */

/* Exactly once in [MQTT-4.3.3-2]: a duplicate before PUBREL is not delivered again. */
static void test_in_qos2(void)
{
	struct session *s = sess_make(1, 0);

	CU_ASSERT_FALSE(session_in_qos2_release(s, 1)); /* no bitmap yet */
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 0), 1);
	CU_ASSERT_PTR_NOT_NULL(s->in_qos2);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 0), 0);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 65535, 0), 1);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 65535, 0), 0);
	CU_ASSERT_EQUAL(s->in_qos2_count, 2);
	CU_ASSERT_FALSE(session_in_qos2_release(s, 2));
	CU_ASSERT_FALSE(session_in_qos2_release(s, 0));
	CU_ASSERT_FALSE(session_in_qos2_release(s, 65534));
	CU_ASSERT_TRUE(session_in_qos2_release(s, 1));
	CU_ASSERT_FALSE(session_in_qos2_release(s, 1));
	CU_ASSERT_PTR_NOT_NULL(s->in_qos2);
	CU_ASSERT_TRUE(session_in_qos2_release(s, 65535));
	CU_ASSERT_PTR_NULL(s->in_qos2); /* freed when empty */
	CU_ASSERT_EQUAL(s->in_qos2_count, 0);
	CU_ASSERT_FALSE(session_in_qos2_release(s, 65535));
	/* After PUBCOMP the id is a new publication. */
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 0), 1);
	/* Word boundaries of the bitmap are independent bits. */
	const uint16_t edge[] = {63, 64, 127, 128, 65472, 65534};
	for (int i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(session_in_qos2_begin(s, edge[i], 0), 1);
	for (int i = 0; i < 6; i++) {
		CU_ASSERT_TRUE(session_in_qos2_release(s, edge[i]));
		CU_ASSERT_FALSE(session_in_qos2_release(s, edge[i]));
		CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 0), 0);
	}
	CU_ASSERT_EQUAL(s->in_qos2_count, 1);
	session_free(s); /* with the bitmap still allocated */
}

/* Origin numbers (persist.h) stay with their inbound id until PUBREL, and only there. */
static void test_in_qos2_origin(void)
{
	struct session *s = sess_make(1, 0);
	const uint64_t big = (1ull << 48) - 1;

	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 1), 0); /* nothing held */
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 5), 1);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 2, 0), 1); /* an id without a number */
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 65535, big), 1);
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 1), 5);
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 2), 0);
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 65535), big);
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 3), 0);
	/* A duplicate keeps the first number. */
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 9), 0);
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 1), 5);
	CU_ASSERT_TRUE(session_in_qos2_release(s, 1));
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 1), 0);
	CU_ASSERT_EQUAL(session_in_qos2_begin(s, 1, 0), 1); /* reused: no number */
	CU_ASSERT_EQUAL(session_in_qos2_origin(s, 1), 0);
	/* Many ids: the map grows and shrinks with them. */
	for (unsigned pid = 100; pid < 3100; pid++)
		CU_ASSERT_EQUAL(session_in_qos2_begin(s, (uint16_t)pid, pid * 7), 1);
	for (unsigned pid = 100; pid < 3100; pid += 2)
		CU_ASSERT_TRUE(session_in_qos2_release(s, (uint16_t)pid));
	for (unsigned pid = 100; pid < 3100; pid++)
		CU_ASSERT_EQUAL(session_in_qos2_origin(s, (uint16_t)pid), pid % 2 ? pid * 7 : 0);
	CU_ASSERT_EQUAL(s->in_origin.count, 1 + 1500);
	session_free(s); /* with numbers still held */
}

/* The data remembered for filter f, UINT64_MAX if f is not remembered. */
static uint64_t sub_data(const struct session *s, const char *f)
{
	for (uint32_t i = 0; i < s->nsubs; i++)
		if (s->subs[i].filter_len == strlen(f) && !memcmp(s->subs[i].filter, f, strlen(f)))
			return s->subs[i].data;
	return UINT64_MAX;
}

static void test_subs(void)
{
	struct session *s = sess_make(1, 0);
	char buf[16] = "a/b";
	char name[40][16];

	CU_ASSERT_EQUAL(session_sub_add(s, (const uint8_t *)buf, 3, 1), ST_OK);
	buf[0] = 'x'; /* the filter was copied */
	CU_ASSERT_EQUAL(sub_data(s, "a/b"), 1);
	CU_ASSERT_EQUAL(session_sub_add(s, (const uint8_t *)"a/+", 3, 2), ST_OK);
	CU_ASSERT_EQUAL(session_sub_add(s, (const uint8_t *)"a/b", 3, 3), ST_OK); /* replace */
	CU_ASSERT_EQUAL(s->nsubs, 2);
	CU_ASSERT_EQUAL(sub_data(s, "a/b"), 3);
	CU_ASSERT_EQUAL(sub_data(s, "a/+"), 2);
	CU_ASSERT_FALSE(session_sub_remove(s, (const uint8_t *)"a", 1));     /* prefix */
	CU_ASSERT_FALSE(session_sub_remove(s, (const uint8_t *)"a/b/c", 5)); /* longer */
	CU_ASSERT_TRUE(session_sub_remove(s, (const uint8_t *)"a/b", 3));
	CU_ASSERT_FALSE(session_sub_remove(s, (const uint8_t *)"a/b", 3));
	CU_ASSERT_EQUAL(s->nsubs, 1);
	CU_ASSERT_EQUAL(sub_data(s, "a/+"), 2);
	/* Many: growth, then removal in another order, the rest intact each time. */
	for (int i = 0; i < 40; i++) {
		snprintf(name[i], sizeof(name[i]), "f/%d", i);
		CU_ASSERT_EQUAL(session_sub_add(s, (const uint8_t *)name[i], strlen(name[i]), i),
		                ST_OK);
	}
	CU_ASSERT_EQUAL(s->nsubs, 41);
	for (int k = 0; k < 40; k++) {
		int i = (k * 17) % 40;

		CU_ASSERT_TRUE(session_sub_remove(s, (const uint8_t *)name[i], strlen(name[i])));
		CU_ASSERT_EQUAL(sub_data(s, name[i]), UINT64_MAX);
		for (int j = k + 1; j < 40; j++)
			CU_ASSERT_EQUAL(sub_data(s, name[(j * 17) % 40]),
			                (uint64_t)((j * 17) % 40));
	}
	CU_ASSERT_EQUAL(s->nsubs, 1);
	session_free(s);
}

int main(void)
{
	static const struct tu_test out[] = {
	        {"new and free", test_new_free},
	        {"offers within and beyond the window", test_offer_window},
	        {"offline: queued, drained in order", test_offline_queues},
	        {"queue bound: dropped and counted", test_queue_bound},
	        {"queued deliveries go first", test_queued_go_first},
	        {"QoS 2: PUBREC then PUBCOMP", test_qos2_flow},
	        {"wrong acknowledgements change nothing", test_wrong_acks},
	        {"ids reused oldest-freed first", test_id_reuse_order},
	        {"redelivery in transmission order", test_each_inflight_order},
	        {"PUBREL redelivery in PUBREC order", test_pubrel_order},
	        {"window shrinks and grows", test_set_inflight_max},
	        {"window of 65535", test_window_65535},
	        {"clear and free release everything", test_clear_and_free},
	        {NULL, NULL},
	};
	static const struct tu_test in[] = {
	        {"QoS 2 inbound: once until PUBREL", test_in_qos2},
	        {"inbound QoS 2 ids keep their origin numbers", test_in_qos2_origin},
	        {"subscription list", test_subs},
	        {"restored from log records", test_restore},
	        {NULL, NULL},
	};

	tu_add_suite("session outbound", out);
	tu_add_suite("session inbound and subscriptions", in);
	return tu_run_registry();
}
