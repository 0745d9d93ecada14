/*
 * Model-based random tests of the session state machines (src/broker/session.c); the hand-written
 * cases and the MQTT rules they check are in test/test_session.c, the helpers both use in
 * test/session_cases.h.
 *
 * The outbound side is driven by thousands of random offers, right and wrong
 * acknowledgements, window changes, disconnects and clears, and compared after every step with
 * a plain model: a table of inflight ids, a FIFO of free ids that grows like the slot table
 * (doubling from 8 up to the window: the policy session.c documents), and a FIFO of queued
 * deliveries. Each delivery carries a serial number in sub_id, so queue order and redelivery
 * order can be checked. Every message is a real refcounted struct msg, and the model counts
 * the references the session must hold on each. The inbound QoS 2 id set is driven by random
 * begins and releases against an array of flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "index/msg.h"
#include "broker/session.h"
#include "session_cases.h"
#include "testutil.h"

/* Records a check; on failure returns false from the calling step so a model run stops. */
#define MCHECK(cond)                                                                               \
	do {                                                                                       \
		bool ok_ = (cond);                                                                 \
		CU_assertImplementation(ok_, __LINE__, #cond, __FILE__, "", CU_FALSE);             \
		if (!ok_)                                                                          \
			return false;                                                              \
	} while (0)

/* --- the model-based random test ------------------------------------------------------ */

#define MODEL_MSGS  6     /* messages shared by the deliveries */
#define MODEL_QCAP  32768 /* model queue entries (more than the steps of a run) */
#define MODEL_STEPS 20000 /* steps per run */

struct mslot {
	uint8_t state;  /* enum sess_slot_state */
	int msg;        /* index in the message pool, -1 after PUBREC */
	uint8_t qos;    /* delivered QoS */
	uint32_t tag;   /* the delivery's serial (sub_id) */
	uint64_t order; /* when it was first sent */
};

struct mdel {
	int msg;      /* index in the message pool */
	uint8_t qos;  /* delivered QoS */
	uint32_t tag; /* serial */
};

struct model {
	struct msg *pool[MODEL_MSGS]; /* the messages */
	uint32_t holders[MODEL_MSGS]; /* references the session should hold on each */
	uint16_t window;              /* inflight_max */
	uint32_t q_max;               /* queue bound, 0: none */
	uint32_t cap;                 /* ids the table holds */
	uint16_t free_ids[65536];     /* FIFO ring of free ids, oldest freed first */
	uint32_t free_head, nfree;    /* its head and length */
	struct mslot slot[65536];     /* by packet id; slot[0] stays free */
	uint32_t inflight;            /* slots in use */
	uint32_t over;                /* inflight when the window last shrank below it */
	struct mdel q[MODEL_QCAP];    /* queued deliveries, a ring */
	uint32_t q_head, q_len;       /* its head and length */
	uint64_t dropped, sent;       /* drops; transmissions so far */
	uint32_t tag;                 /* last serial given */
	bool online;                  /* client connected */
	uint64_t rng;                 /* xorshift state */
};

/* xorshift64: a private, seeded stream, so a failing run can be replayed. */
static uint32_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (uint32_t)(*st >> 11);
}

static void m_free_push(struct model *md, uint16_t pid)
{
	md->free_ids[(md->free_head + md->nfree++) & 65535] = pid;
}

/* Takes the id the model says comes next (growing like the table) for d. */
static uint16_t m_take(struct model *md, const struct mdel *d)
{
	uint16_t pid;

	if (md->nfree == 0) {
		uint32_t cap = md->cap ? md->cap * 2 : 8;

		cap = cap > md->window ? md->window : cap;
		for (uint32_t id = md->cap + 1; id <= cap; id++)
			m_free_push(md, (uint16_t)id);
		md->cap = cap;
	}
	pid = md->free_ids[md->free_head];
	md->free_head = (md->free_head + 1) & 65535;
	md->nfree--;
	md->slot[pid] = (struct mslot){(uint8_t)(d->qos == 1 ? SLOT_WAIT_PUBACK : SLOT_WAIT_PUBREC),
	                               d->msg, d->qos, d->tag, md->sent++};
	md->inflight++;
	return pid;
}

static bool m_offer(struct session *s, struct model *md)
{
	struct mdel d;
	struct sess_delivery sd;
	uint16_t pid = 0;
	enum sess_out_result r;

	d.msg = (int)(rnd(&md->rng) % MODEL_MSGS);
	d.qos = (uint8_t)(1 + rnd(&md->rng) % 2);
	d.tag = ++md->tag;
	sd = (struct sess_delivery){.m = md->pool[d.msg], .qos = d.qos, .sub_id = d.tag};
	r = session_out_offer(s, &sd, md->online, &pid);

	if (md->online && md->q_len == 0 && md->inflight < md->window) {
		MCHECK(r == SESS_OUT_SEND);
		MCHECK(pid != 0 && md->slot[pid].state == SLOT_FREE); /* unused id [MQTT-2.3.1-4] */
		MCHECK(pid == m_take(md, &d));                        /* oldest freed first */
		md->holders[d.msg]++;
	} else if (md->q_max && md->q_len >= md->q_max) {
		MCHECK(r == SESS_OUT_DROPPED);
		md->dropped++;
	} else {
		MCHECK(r == SESS_OUT_QUEUED);
		md->q[(md->q_head + md->q_len++) % MODEL_QCAP] = d;
		md->holders[d.msg]++;
	}
	return true;
}

static bool m_next(struct session *s, struct model *md)
{
	struct sess_delivery d;
	uint16_t pid = 0;
	bool want = md->q_len && md->inflight < md->window;
	const struct mdel *h = &md->q[md->q_head];

	MCHECK(session_out_next(s, &d, &pid) == want);
	if (!want)
		return true;
	MCHECK(d.m == md->pool[h->msg] && d.sub_id == h->tag && d.qos == h->qos);
	MCHECK(pid != 0 && md->slot[pid].state == SLOT_FREE);
	MCHECK(pid == m_take(md, h));
	md->q_head = (md->q_head + 1) % MODEL_QCAP;
	md->q_len--;
	return true;
}

/* Acknowledges an inflight id (the right kind half the time) or a random one. */
static bool m_ack(struct session *s, struct model *md)
{
	unsigned kind = rnd(&md->rng) % 3;
	uint16_t pid = (uint16_t)(rnd(&md->rng) % (md->cap + 4)); /* 0, free ids, above the table */
	struct mslot *sl;
	bool want;

	if (md->inflight && rnd(&md->rng) % 4 != 0) {
		pid = (uint16_t)(1 + rnd(&md->rng) % md->cap);
		while (md->slot[pid].state == SLOT_FREE)
			pid = (uint16_t)(pid % md->cap + 1);
		if (rnd(&md->rng) % 2)
			kind = md->slot[pid].state - 1u;
	}
	sl = &md->slot[pid];
	MCHECK(session_out_qos(s, pid) == (sl->state == SLOT_FREE          ? 0
	                                   : sl->state == SLOT_WAIT_PUBACK ? 1
	                                                                   : 2));
	want = sl->state == kind + 1; /* PUBACK: state 1, PUBREC: 2, PUBCOMP: 3 */
	MCHECK(ack(s, kind, pid) == want);
	if (!want)
		return true;
	if (kind != 2)
		md->holders[sl->msg]--;
	if (kind == 1) {
		sl->state = SLOT_WAIT_PUBCOMP;
		sl->msg = -1;
		return true;
	}
	*sl = (struct mslot){0};
	md->inflight--;
	m_free_push(md, pid);
	return true;
}

/* Redelivery: every inflight id once, PUBLISHes in first-transmission order. */
static bool m_each(struct session *s, struct model *md)
{
	struct visits vs = {malloc((md->inflight + 1) * sizeof(struct visit)), 0, md->inflight + 1};
	uint64_t last = 0;
	bool ok = vs.v != NULL;

	ok = ok && visits_collect(s, &vs) == md->inflight;
	for (uint32_t i = 0; ok && i < vs.n; i++) {
		const struct visit *v = &vs.v[i];
		const struct mslot *sl = &md->slot[v->pid];

		ok = sl->state != SLOT_FREE && sl->state == v->state;
		if (ok && sl->state == SLOT_WAIT_PUBCOMP) {
			ok = v->m == NULL && sl->msg == -1;
			continue;
		}
		ok = ok && v->m == md->pool[sl->msg] && v->tag == sl->tag;
		ok = ok && (last == 0 || sl->order + 1 > last);
		last = sl->order + 1;
	}
	free(vs.v);
	MCHECK(ok);
	return true;
}

static void m_set_window(struct session *s, struct model *md, uint16_t base)
{
	uint16_t w = (uint16_t)(1 + rnd(&md->rng) % (2u * base));

	if (w < md->inflight)
		md->over = md->inflight;
	md->window = w;
	session_set_inflight_max(s, w);
}

static void m_clear(struct session *s, struct model *md)
{
	session_clear_messages(s);
	memset(md->holders, 0, sizeof(md->holders));
	memset(md->slot, 0, (md->cap + 1) * sizeof(md->slot[0]));
	md->cap = md->nfree = md->free_head = md->inflight = md->over = 0;
	md->q_len = 0;
}

/* The whole state against the model. */
static bool m_check(const struct session *s, const struct model *md)
{
	MCHECK(s->inflight == md->inflight && s->q_len == md->q_len);
	MCHECK(s->inflight <= s->inflight_max || s->inflight <= md->over);
	MCHECK(s->dropped == md->dropped && s->inflight_max == md->window);
	MCHECK(s->slots_cap == md->cap && s->nfree + s->inflight == s->slots_cap);
	for (uint32_t pid = 1; pid <= md->cap; pid++) {
		const struct sess_slot *ss = &s->slots[pid - 1];
		const struct mslot *ms = &md->slot[pid];

		MCHECK(ss->state == ms->state);
		if (ms->state == SLOT_WAIT_PUBACK || ms->state == SLOT_WAIT_PUBREC)
			MCHECK(ss->d.m == md->pool[ms->msg] && ss->d.sub_id == ms->tag);
		else
			MCHECK(ss->d.m == NULL);
	}
	for (uint32_t i = 0; i < md->q_len; i++) {
		const struct sess_delivery *d = &s->q[(s->q_head + i) & (s->q_cap - 1)];
		const struct mdel *e = &md->q[(md->q_head + i) % MODEL_QCAP];

		MCHECK(d->sub_id == e->tag && d->m == md->pool[e->msg] && d->qos == e->qos);
	}
	for (int i = 0; i < MODEL_MSGS; i++)
		MCHECK(md->pool[i]->refs == 1 + md->holders[i]);
	return true;
}

static bool m_step(struct session *s, struct model *md, uint16_t base)
{
	unsigned op = rnd(&md->rng) % 1000;

	if (op < 300)
		return m_offer(s, md);
	if (op < 960 && !md->online)
		return true; /* an offline client sends no acknowledgements */
	if (op < 650)
		return m_ack(s, md);
	if (op < 900)
		return m_next(s, md);
	if (op < 940)
		return m_each(s, md);
	if (op < 975) {
		md->online = !md->online;
		return !md->online || m_each(s, md); /* reconnect: redeliver */
	}
	if (op < 998)
		m_set_window(s, md, base);
	else
		m_clear(s, md);
	return true;
}

static void model_run(uint16_t window, uint32_t q_max, uint64_t seed)
{
	struct model *md = calloc(1, sizeof(*md));
	struct session *s = sess_make(window, q_max);
	uint32_t step;
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	for (int i = 0; i < MODEL_MSGS; i++)
		md->pool[i] = msg_make("model");
	md->window = window;
	md->q_max = q_max;
	md->online = true;
	md->rng = seed;
	for (step = 0; step < MODEL_STEPS && ok; step++)
		ok = m_step(s, md, window) && m_check(s, md);
	if (!ok)
		printf("\n  model diverged: window %u q_max %u seed %llu step %u\n", window, q_max,
		       (unsigned long long)seed, step - 1);
	session_free(s);
	for (int i = 0; i < MODEL_MSGS; i++) {
		CU_ASSERT_EQUAL(md->pool[i]->refs, 1);
		msg_unref(md->pool[i]);
	}
	free(md);
}

static void test_model(void)
{
	model_run(1, 4, 0x9e3779b97f4a7c15ull);
	model_run(3, 0, 0x243f6a8885a308d3ull);
	model_run(8, 16, 0x13198a2e03707344ull);
	model_run(20, 50, 0xa4093822299f31d0ull);
	model_run(64, 200, 0x082efa98ec4e6c89ull);
}

/* --- inbound QoS 2 ------------------------------------------------------------------ */

/* Random begins and releases against an array of 65536 flags. */
static void test_in_qos2_model(void)
{
	struct session *s = sess_make(1, 0);
	bool *set = calloc(65536, sizeof(bool));
	uint64_t rng = 0x5851f42d4c957f2dull;
	uint32_t count = 0, bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	for (int step = 0; step < 40000; step++) {
		uint32_t r = rnd(&rng);
		uint16_t pid =
		        (uint16_t)(r % 5 == 0 ? 65535 - rnd(&rng) % 70 : 1 + rnd(&rng) % 130);

		if (r % 7 < 4) {
			if (session_in_qos2_begin(s, pid, 0) != (set[pid] ? 0 : 1))
				bad++;
			count += !set[pid];
			set[pid] = true;
		} else {
			if (session_in_qos2_release(s, pid) != set[pid])
				bad++;
			count -= set[pid];
			set[pid] = false;
		}
		if (s->in_qos2_count != count || (s->in_qos2 == NULL) != (count == 0))
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	session_free(s);
	free(set);
}

int main(void)
{
	static const struct tu_test out[] = {
	        {"random operations against a model", test_model},
	        {NULL, NULL},
	};
	static const struct tu_test in[] = {
	        {"QoS 2 inbound against a model", test_in_qos2_model},
	        {NULL, NULL},
	};

	tu_add_suite("session outbound", out);
	tu_add_suite("session inbound and subscriptions", in);
	return tu_run_registry();
}
