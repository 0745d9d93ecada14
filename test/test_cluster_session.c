/*
 * Unit tests of cluster/session.c: the sessions' bucket name, the key of a client id (a valid
 * NATS KV key, distinct ids distinct keys, readable when it can be), the owner's request
 * subject, and the three messages' codecs (round trips, every truncation refused, foreign
 * bytes refused, never a read past the end).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/envelope.h"
#include "cluster/session.h"
#include "starling/codec.h"
#include "testutil.h"

static bool kv_key_valid(const char *k)
{
	/* NATS's KV keys: [-/_=.a-zA-Z0-9]+, not starting or ending with '.'. */
	if (!*k || k[0] == '.' || k[strlen(k) - 1] == '.')
		return false;
	for (const char *p = k; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_=.",
		            *p))
			return false;
	return true;
}

static long key(const char *id, char *buf)
{
	return cluster_session_key((const uint8_t *)id, strlen(id), buf, CLUSTER_SESS_KEY_MAX);
}

static void test_bucket(void)
{
	char buf[CLUSTER_SESS_BUCKET_MAX];

	CU_ASSERT_EQUAL(cluster_sessions_bucket("starling", 8, buf, sizeof(buf)), 17);
	CU_ASSERT_STRING_EQUAL(buf, "sessions-starling");
	cluster_sessions_bucket("acme.prod", 9, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "sessions-acme_-prod");
	CU_ASSERT_EQUAL(cluster_sessions_bucket("a b", 3, buf, sizeof(buf)), -1);
	CU_ASSERT_EQUAL(cluster_sessions_bucket("starling", 8, buf, 17), -1);
	CU_ASSERT_EQUAL(cluster_sessions_bucket("starling", 8, buf, 18), 17);
}

static void test_key_plain_and_hashed(void)
{
	char buf[CLUSTER_SESS_KEY_MAX], long_id[CLUSTER_SESS_PLAIN_MAX + 2];

	CU_ASSERT_EQUAL(key("sensor-12_a", buf), 13);
	CU_ASSERT_STRING_EQUAL(buf, "c_sensor-12_a");
	/* Anything NATS would not take, or too long, is hashed: "h_" and 32 hex digits. */
	CU_ASSERT_EQUAL(key("a.b", buf), 34);
	CU_ASSERT_EQUAL(strncmp(buf, "h_", 2), 0);
	CU_ASSERT_TRUE(kv_key_valid(buf));
	CU_ASSERT_EQUAL(key("é", buf), 34);
	CU_ASSERT_EQUAL(key("a b", buf), 34);
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[CLUSTER_SESS_PLAIN_MAX] = '\0';
	CU_ASSERT_EQUAL(key(long_id, buf), CLUSTER_SESS_PLAIN_MAX + 2);
	long_id[CLUSTER_SESS_PLAIN_MAX] = 'x';
	long_id[CLUSTER_SESS_PLAIN_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(key(long_id, buf), 34);
	/* An empty id (never a persistent session's, but any input) gets a key too. */
	CU_ASSERT_EQUAL(cluster_session_key((const uint8_t *)"", 0, buf, sizeof(buf)), 34);
	/* A buffer too small is refused, never overrun. */
	CU_ASSERT_EQUAL(cluster_session_key((const uint8_t *)"abc", 3, buf, 5), -1);
	CU_ASSERT_EQUAL(cluster_session_key((const uint8_t *)"abc", 3, buf, 6), 5);
	CU_ASSERT_EQUAL(cluster_session_key((const uint8_t *)"a.c", 3, buf, 34), -1);
}

/* Random ids of every byte: each key valid, and distinct ids get distinct keys. */
static void test_key_injective(void)
{
	enum { N = 3000 };
	char(*keys)[CLUSTER_SESS_KEY_MAX] = calloc(N, CLUSTER_SESS_KEY_MAX);
	uint8_t(*ids)[12] = calloc(N, 12);
	size_t *lens = calloc(N, sizeof(*lens));
	static const uint8_t alphabet[] = "ab_-.é Z\0/";

	srand(7);
	for (int i = 0; i < N; i++) {
		lens[i] = 1 + (size_t)rand() % 11;
		for (size_t j = 0; j < lens[i]; j++)
			ids[i][j] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
		CU_ASSERT_TRUE(cluster_session_key(ids[i], lens[i], keys[i], CLUSTER_SESS_KEY_MAX) >
		               0);
		CU_ASSERT_TRUE(kv_key_valid(keys[i]));
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++) {
			bool same_id = lens[i] == lens[j] && memcmp(ids[i], ids[j], lens[i]) == 0;

			if (same_id != (strcmp(keys[i], keys[j]) == 0)) {
				CU_FAIL("two ids, one key (or one id, two keys)");
				goto out;
			}
		}
out:
	free(keys);
	free(ids);
	free(lens);
}

static void test_subject(void)
{
	char buf[CLUSTER_SESS_SUBJECT_MAX];

	CU_ASSERT_EQUAL(cluster_session_subject("starling.", 9, (const uint8_t *)"n:1", 3, buf,
	                                        sizeof(buf)),
	                19);
	CU_ASSERT_STRING_EQUAL(buf, "starling.s.t.6e3a31");
	/* Node ids of every printable byte stay one token (no '.', '*', '>', space). */
	CU_ASSERT_TRUE(
	        cluster_session_subject("x.", 2, (const uint8_t *)"a.*>", 4, buf, sizeof(buf)) > 0);
	CU_ASSERT_STRING_EQUAL(buf, "x.s.t.612e2a3e");
	CU_ASSERT_EQUAL(cluster_session_subject("x.", 2, (const uint8_t *)"", 0, buf, sizeof(buf)),
	                -1);
	CU_ASSERT_EQUAL(cluster_session_subject("x.", 2, (const uint8_t *)"ab", 2, buf, 10), -1);
	CU_ASSERT_EQUAL(cluster_session_subject("x.", 2, (const uint8_t *)"ab", 2, buf, 11), 10);
}

static void test_entry_round_trip(void)
{
	uint8_t buf[64];
	struct cluster_sess_entry e;
	long n = cluster_sess_entry_head((const uint8_t *)"node1", 5, buf, sizeof(buf));

	CU_ASSERT_EQUAL(n, 9);
	memcpy(buf + n, "RECS", 4);
	CU_ASSERT_EQUAL(cluster_sess_entry_decode(buf, (size_t)n + 4, &e), ST_OK);
	CU_ASSERT_EQUAL(e.node.len, 5);
	CU_ASSERT_EQUAL(memcmp(e.node.ptr, "node1", 5), 0);
	CU_ASSERT_EQUAL(e.records.len, 4);
	CU_ASSERT_EQUAL(memcmp(e.records.ptr, "RECS", 4), 0);
	/* Without records: an owner alone. */
	CU_ASSERT_EQUAL(cluster_sess_entry_decode(buf, (size_t)n, &e), ST_OK);
	CU_ASSERT_EQUAL(e.records.len, 0);
	/* Every cut inside the head is refused. */
	for (long i = 0; i < n; i++)
		CU_ASSERT_EQUAL(cluster_sess_entry_decode(buf, (size_t)i, &e), ST_ERR_LENGTH);
	/* A request is not an entry; a bad node id is refused both ways. */
	n = cluster_sess_request_head((const uint8_t *)"node1", 5, buf, sizeof(buf));
	CU_ASSERT_EQUAL(cluster_sess_entry_decode(buf, (size_t)n, &e), ST_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(cluster_sess_entry_head((const uint8_t *)"a b", 3, buf, sizeof(buf)),
	                ST_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(cluster_sess_entry_head((const uint8_t *)"", 0, buf, sizeof(buf)),
	                ST_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(cluster_sess_entry_head((const uint8_t *)"node1", 5, buf, 8),
	                ST_ERR_NO_SPACE);
	n = cluster_sess_entry_head((const uint8_t *)"node1", 5, buf, sizeof(buf));
	buf[5] = ' '; /* a node id byte NATS ids never hold */
	CU_ASSERT_EQUAL(cluster_sess_entry_decode(buf, (size_t)n, &e), ST_ERR_PROTOCOL);
	buf[5] = 'o';
	buf[2] = 2; /* a later version */
	CU_ASSERT_EQUAL(cluster_sess_entry_decode(buf, (size_t)n, &e), ST_ERR_PROTOCOL);
}

static void test_request_round_trip(void)
{
	uint8_t buf[300];
	struct cluster_sess_request r;
	char node[CLUSTER_NODE_ID_MAX + 1];
	long n;

	memset(node, 'n', CLUSTER_NODE_ID_MAX);
	n = cluster_sess_request_head((const uint8_t *)node, CLUSTER_NODE_ID_MAX, buf, sizeof(buf));
	CU_ASSERT_EQUAL(n, 4 + CLUSTER_NODE_ID_MAX);
	memcpy(buf + n, "id\0x", 4);
	CU_ASSERT_EQUAL(cluster_sess_request_decode(buf, (size_t)n + 4, &r), ST_OK);
	CU_ASSERT_EQUAL(r.node.len, CLUSTER_NODE_ID_MAX);
	CU_ASSERT_EQUAL(r.client.len, 4);
	CU_ASSERT_EQUAL(memcmp(r.client.ptr, "id\0x", 4), 0);
	CU_ASSERT_EQUAL(cluster_sess_request_head((const uint8_t *)node, CLUSTER_NODE_ID_MAX + 1,
	                                          buf, sizeof(buf)),
	                ST_ERR_PROTOCOL);
	for (long i = 0; i < n; i++)
		CU_ASSERT_EQUAL(cluster_sess_request_decode(buf, (size_t)i, &r), ST_ERR_LENGTH);
}

static void test_answer_round_trip(void)
{
	uint8_t buf[32];
	struct cluster_sess_answer a;
	long n = cluster_sess_answer_head(CLUSTER_SESS_HERE, 0x01020304u, buf, sizeof(buf));

	CU_ASSERT_EQUAL(n, CLUSTER_SESS_ANSWER_HEAD);
	memcpy(buf + n, "RR", 2);
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n + 2, &a), ST_OK);
	CU_ASSERT_EQUAL(a.status, CLUSTER_SESS_HERE);
	CU_ASSERT_EQUAL(a.dropped, 0x01020304u);
	CU_ASSERT_EQUAL(a.records.len, 2);
	n = cluster_sess_answer_head(CLUSTER_SESS_NONE, 0, buf, sizeof(buf));
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n, &a), ST_OK);
	CU_ASSERT_EQUAL(a.status, CLUSTER_SESS_NONE);
	/* "None" carrying records is not an answer this codec writes. */
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n + 1, &a), ST_ERR_PROTOCOL);
	for (long i = 0; i < n; i++)
		CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)i, &a), ST_ERR_LENGTH);
	/* Elsewhere: a node id follows, which must be one. */
	n = cluster_sess_answer_head(CLUSTER_SESS_ELSEWHERE, 0, buf, sizeof(buf));
	memcpy(buf + n, "node2", 5);
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n + 5, &a), ST_OK);
	CU_ASSERT_EQUAL(a.status, CLUSTER_SESS_ELSEWHERE);
	CU_ASSERT_EQUAL(a.records.len, 5);
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n, &a), ST_ERR_PROTOCOL);
	buf[n + 2] = ' ';
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n + 5, &a), ST_ERR_PROTOCOL);
	n = cluster_sess_answer_head(CLUSTER_SESS_NONE, 0, buf, sizeof(buf));
	CU_ASSERT_EQUAL(cluster_sess_answer_head(3, 0, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(cluster_sess_answer_head(1, 0, buf, 7), ST_ERR_NO_SPACE);
	buf[3] = 3;
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n, &a), ST_ERR_PROTOCOL);
	buf[3] = 0;
	buf[1] = 'O';
	CU_ASSERT_EQUAL(cluster_sess_answer_decode(buf, (size_t)n, &a), ST_ERR_PROTOCOL);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"bucket", test_bucket},
	        {"key plain and hashed", test_key_plain_and_hashed},
	        {"key injective", test_key_injective},
	        {"subject", test_subject},
	        {"entry", test_entry_round_trip},
	        {"request", test_request_round_trip},
	        {"answer", test_answer_round_trip},
	        {NULL, NULL},
	};

	tu_add_suite("cluster_session", tests);
	return tu_run_registry();
}
