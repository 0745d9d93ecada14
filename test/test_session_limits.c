/*
 * Unit tests of the session side of max_queued_bytes, max_inflight_bytes and
 * queue_qos0_messages (src/broker/session.c), and of persistent_client_expiration's bound
 * (broker/limits.h): payload bytes counted in and out of the queue and the window through every
 * path, Mosquitto's "below the bound, one more" rule, a QoS 0 delivery queued offline leaving
 * without a packet id, and every message reference given back.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "broker/limits.h"
#include "broker/session.h"
#include "index/msg.h"
#include "session_cases.h"
#include "testutil.h"

/* A message of n payload bytes ('x'); the caller holds its one reference. */
static struct msg *msg_bytes(size_t n)
{
	static char buf[1024];

	memset(buf, 'x', n);
	buf[n] = '\0';
	return msg_make(buf);
}

static void test_queued_bytes(void)
{
	struct session *s = sess_make(10, 0);
	struct msg *m = msg_bytes(300);
	struct sess_delivery d;
	uint16_t pid, sent;

	s->q_bytes_max = 1000;
	/* 0, 300, 600, 900 queued are under 1000: four are taken, the fifth is not. */
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(offer(s, m, 1, (uint32_t)i, false, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(s->q_bytes, 1200);
	CU_ASSERT_EQUAL(offer(s, m, 1, 4, false, &pid), SESS_OUT_DROPPED);
	CU_ASSERT_EQUAL(s->dropped, 1);
	CU_ASSERT_EQUAL(m->refs, 5);
	/* Into the window: the queue's bytes go down, the window's up. */
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &sent));
	CU_ASSERT_EQUAL(s->q_bytes, 900);
	CU_ASSERT_EQUAL(s->inflight_bytes, 300);
	CU_ASSERT_EQUAL(offer(s, m, 1, 5, false, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_TRUE(session_out_puback(s, sent));
	CU_ASSERT_EQUAL(s->inflight_bytes, 0);
	session_clear_messages(s);
	CU_ASSERT_EQUAL(s->q_bytes, 0);
	CU_ASSERT_EQUAL(s->inflight_bytes, 0);
	CU_ASSERT_EQUAL(m->refs, 1);
	session_free(s);
	msg_unref(m);
}

static void test_inflight_bytes(void)
{
	struct session *s = sess_make(10, 0);
	struct msg *small = msg_bytes(60), *big = msg_bytes(500);
	struct sess_delivery d;
	uint16_t p1, p2, p3, p;

	s->inflight_bytes_max = 100;
	CU_ASSERT_EQUAL(offer(s, small, 1, 1, true, &p1), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, small, 2, 2, true, &p2), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(s->inflight_bytes, 120);
	CU_ASSERT_EQUAL(offer(s, small, 1, 3, true, &p3), SESS_OUT_QUEUED);
	CU_ASSERT_FALSE(session_out_next(s, &d, &p));
	/* QoS 2: counted until PUBCOMP, when the flow ends. */
	CU_ASSERT_TRUE(session_out_pubrec(s, p2));
	CU_ASSERT_EQUAL(s->inflight_bytes, 120);
	CU_ASSERT_TRUE(session_out_puback(s, p1));
	CU_ASSERT_EQUAL(s->inflight_bytes, 60);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &p));
	CU_ASSERT_EQUAL(d.sub_id, 3);
	CU_ASSERT_TRUE(session_out_pubcomp(s, p2));
	CU_ASSERT_TRUE(session_out_puback(s, p));
	CU_ASSERT_EQUAL(s->inflight_bytes, 0);
	/* A message over the bound goes alone. */
	CU_ASSERT_EQUAL(offer(s, big, 1, 4, true, &p1), SESS_OUT_SEND);
	CU_ASSERT_EQUAL(offer(s, small, 1, 5, true, &p2), SESS_OUT_QUEUED);
	session_out_drop(s, p1);
	CU_ASSERT_EQUAL(s->inflight_bytes, 0);
	CU_ASSERT_TRUE(session_out_next(s, &d, &p));
	session_free(s);
	CU_ASSERT_EQUAL(small->refs, 1);
	CU_ASSERT_EQUAL(big->refs, 1);
	msg_unref(small);
	msg_unref(big);
}

static void test_qos0_queued_offline(void)
{
	struct session *s = sess_make(1, 3);
	struct msg *m = msg_bytes(10);
	struct sess_delivery d;
	uint16_t pid;

	CU_ASSERT_EQUAL(offer(s, m, 0, 1, false, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(offer(s, m, 1, 2, false, &pid), SESS_OUT_QUEUED);
	CU_ASSERT_EQUAL(offer(s, m, 0, 3, false, &pid), SESS_OUT_QUEUED);
	/* Counted in max_queued_messages as the others. */
	CU_ASSERT_EQUAL(offer(s, m, 0, 4, false, &pid), SESS_OUT_DROPPED);
	CU_ASSERT_EQUAL(m->refs, 4);
	/* QoS 0 leaves without a slot: pid 0, and its reference is the caller's. */
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(pid, 0);
	CU_ASSERT_EQUAL(d.qos, 0);
	CU_ASSERT_EQUAL(s->inflight, 0);
	sess_delivery_release(&d);
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(d.qos, 1);
	CU_ASSERT_NOT_EQUAL(pid, 0);
	/* The window of one is full now, but a QoS 0 message needs no slot: it leaves. */
	CU_ASSERT_TRUE_FATAL(session_out_next(s, &d, &pid));
	CU_ASSERT_EQUAL(pid, 0);
	sess_delivery_release(&d);
	CU_ASSERT_EQUAL(s->q_len, 0);
	CU_ASSERT_EQUAL(s->q_bytes, 0);
	session_free(s);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
}

static void test_expiry_bound(void)
{
	struct config cfg;

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(limits_session_expiry_s(&cfg, UINT32_MAX), UINT32_MAX);
	CU_ASSERT_EQUAL(limits_session_expiry_s(&cfg, 60), 60);
	cfg.limits.persistent_expiry_s = 3600;
	CU_ASSERT_EQUAL(limits_session_expiry_s(&cfg, UINT32_MAX), 3600);
	CU_ASSERT_EQUAL(limits_session_expiry_s(&cfg, 7200), 3600);
	CU_ASSERT_EQUAL(limits_session_expiry_s(&cfg, 60), 60);
	CU_ASSERT_EQUAL(limits_session_expiry_s(&cfg, 0), 0);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"max_queued_bytes", test_queued_bytes},
	        {"max_inflight_bytes", test_inflight_bytes},
	        {"queue_qos0_messages", test_qos0_queued_offline},
	        {"persistent_client_expiration bound", test_expiry_bound},
	        {NULL, NULL},
	};

	tu_add_suite("session_limits", tests);
	return tu_run_registry();
}
