/*
 * Unit tests of cluster/envelope.c: encode -> decode round trips at every QoS, retain and
 * level, with and without properties; what the encoder refuses; every malformed head the
 * decoder must refuse, each truncation of a valid head (read through a guard page, so a read
 * past the end faults), and random corruptions that must never be read past their end.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/envelope.h"
#include "starling/error.h"
#include "starling/props.h"
#include "testutil.h"

static struct tu_guard guard;

static struct st_bytes bytes(const char *s)
{
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* head + payload into out; returns the total length. */
static size_t encode(const struct cluster_msg *m, uint8_t *out, size_t cap)
{
	long n = cluster_env_encode_head(m, out, cap);

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL((size_t)n, cluster_env_head_size(m));
	if (m->payload.len > 0)
		memcpy(out + n, m->payload.ptr, m->payload.len);
	return (size_t)n + m->payload.len;
}

static int decode(const uint8_t *buf, size_t len, struct cluster_msg *out)
{
	return cluster_env_decode(tu_guard_copy(&guard, buf, len), len, out);
}

/* A valid MQTT 5 PUBLISH property block: content type, correlation data, user property. */
static size_t sample_props(uint8_t *buf, size_t cap)
{
	struct st_prop_writer w;
	static const uint8_t corr[] = {0, '\r', '\n', 0xff};

	st_pw_init(&w, buf, cap);
	st_pw_byte(&w, ST_PROP_PAYLOAD_FORMAT, 1);
	st_pw_u32(&w, ST_PROP_MESSAGE_EXPIRY, 60);
	st_pw_str(&w, ST_PROP_CONTENT_TYPE, bytes("text/plain"));
	st_pw_str(&w, ST_PROP_CORRELATION_DATA, (struct st_bytes){corr, sizeof(corr)});
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, bytes("k"), bytes("v"));
	CU_ASSERT_FATAL(!w.overflow);
	return st_pw_len(&w);
}

static void test_round_trip(void)
{
	uint8_t props[128], buf[512];
	size_t plen = sample_props(props, sizeof(props));

	for (uint8_t level = 3; level <= 5; level++)
		for (uint8_t qos = 0; qos <= 2; qos++)
			for (int retain = 0; retain <= 1; retain++)
				for (int with_props = 0; with_props <= (level == 5); with_props++) {
					struct cluster_msg
					        m =
					                {
					                        .qos = qos,
					                        .retain = retain,
					                        .level = level,
					                        .origin = bytes("node-a:1883"),
					                        .props = {with_props ? props : NULL,
					                                  with_props
					                                          ? (uint32_t)plen
					                                          : 0},
					                        .epoch = 0xA1B2C3D4u,
					                        .lane = level * 7u + qos,
					                        .seq = 0x0102030405060708ull +
					                               (uint64_t)retain,
					                        .expiry_s = qos ? 0 : 0xFFFFFFFFu,
					                        .payload = bytes("hello\0world"),
					                },
					        d;
					size_t n = encode(&m, buf, sizeof(buf));

					CU_ASSERT_EQUAL_FATAL(decode(buf, n, &d), ST_OK);
					CU_ASSERT_EQUAL(d.qos, qos);
					CU_ASSERT_EQUAL(d.retain, retain);
					CU_ASSERT_EQUAL(d.level, level);
					CU_ASSERT_EQUAL(d.origin.len, 11);
					CU_ASSERT_EQUAL(memcmp(d.origin.ptr, "node-a:1883", 11), 0);
					CU_ASSERT_EQUAL(d.props.len, m.props.len);
					CU_ASSERT_EQUAL(d.epoch, m.epoch);
					CU_ASSERT_EQUAL(d.lane, m.lane);
					CU_ASSERT_EQUAL(d.seq, m.seq);
					CU_ASSERT_EQUAL(d.expiry_s, m.expiry_s);
					if (with_props)
						CU_ASSERT_EQUAL(memcmp(d.props.ptr, props, plen),
						                0);
					CU_ASSERT_EQUAL(d.payload.len, 5);
					CU_ASSERT_EQUAL(memcmp(d.payload.ptr, "hello", 5), 0);
				}
	/* An empty payload (a retained message's deletion) and a long origin. */
	char origin[CLUSTER_NODE_ID_MAX + 1];
	memset(origin, 'n', CLUSTER_NODE_ID_MAX);
	origin[CLUSTER_NODE_ID_MAX] = '\0';
	struct cluster_msg m = {.qos = 1, .retain = true, .level = 4, .origin = bytes(origin)}, d;
	size_t n = encode(&m, buf, sizeof(buf));
	CU_ASSERT_EQUAL(n, CLUSTER_ENV_FIXED + CLUSTER_NODE_ID_MAX + CLUSTER_ENV_TAIL);
	CU_ASSERT_EQUAL_FATAL(decode(buf, n, &d), ST_OK);
	CU_ASSERT_EQUAL(d.payload.len, 0);
	CU_ASSERT_EQUAL(d.origin.len, CLUSTER_NODE_ID_MAX);
	/* The exact bytes of a small head. */
	static const uint8_t want[] = {0xC0, 0x53, 1, 0x06, 5, 1, 'A', 0,   0xDE, 0xAD,
	                               0xBE, 0xEF, 0, 0,    0, 9, 0,   0,   0,    0,
	                               0,    1,    2, 3,    0, 0, 0,   120, 'x'};
	struct cluster_msg s = {.qos = 2,
	                        .retain = true,
	                        .level = 5,
	                        .origin = bytes("A"),
	                        .epoch = 0xDEADBEEFu,
	                        .lane = 9,
	                        .seq = 0x10203,
	                        .expiry_s = 120,
	                        .payload = bytes("x")};
	CU_ASSERT_EQUAL(encode(&s, buf, sizeof(buf)), sizeof(want));
	CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
}

static void test_encode_refuses(void)
{
	uint8_t props[64], buf[512];
	size_t plen = sample_props(props, sizeof(props));
	struct cluster_msg ok = {.qos = 0, .level = 5, .origin = bytes("a")}, m;

	m = ok, m.qos = 3;
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	m = ok, m.level = 2;
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	m = ok, m.level = 6;
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	m = ok, m.origin = bytes("");
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	m = ok, m.origin = bytes("a b");
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	m = ok, m.level = 4, m.props = (struct st_bytes){props, (uint32_t)plen};
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, sizeof(buf)), ST_ERR_PROTOCOL);
	m = ok, m.props = (struct st_bytes){props, (uint32_t)plen};
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, cluster_env_head_size(&m) - 1),
	                ST_ERR_NO_SPACE);
	CU_ASSERT_EQUAL(cluster_env_encode_head(&m, buf, cluster_env_head_size(&m)),
	                (long)cluster_env_head_size(&m));
	CU_ASSERT_FALSE(cluster_node_id_is_valid((const uint8_t *)"\x7f", 1));
	CU_ASSERT_FALSE(cluster_node_id_is_valid((const uint8_t *)"\xc3\xa9", 2));
	CU_ASSERT_TRUE(cluster_node_id_is_valid((const uint8_t *)"host-1:1883", 11));
}

/* A head given byte by byte, then the expected decoder result. */
struct bad {
	const char *why;
	uint8_t b[24];
	size_t len;
	int rc;
};

static void test_decode_refuses(void)
{
	static const struct bad cases[] = {
	        {"empty", {0}, 0, ST_ERR_LENGTH},
	        {"magic only", {0xC0, 0x53}, 2, ST_ERR_LENGTH},
	        {"plain text", {'h', 'e', 'l', 'l', 'o', ' ', 'w'}, 7, ST_ERR_PROTOCOL},
	        {"short plain text", {'h', 'i'}, 2, ST_ERR_PROTOCOL},
	        {"second magic byte", {0xC0, 0x54, 1, 0, 4, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"version 0", {0xC0, 0x53, 0, 0, 4, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"version 2", {0xC0, 0x53, 2, 0, 4, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"QoS 3", {0xC0, 0x53, 1, 3, 4, 1, 'a', 0}, 8, ST_ERR_QOS},
	        {"reserved flag", {0xC0, 0x53, 1, 0x08, 4, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"reserved flag 7", {0xC0, 0x53, 1, 0x80, 4, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"level 2", {0xC0, 0x53, 1, 0, 2, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"level 6", {0xC0, 0x53, 1, 0, 6, 1, 'a', 0}, 8, ST_ERR_PROTOCOL},
	        {"empty origin", {0xC0, 0x53, 1, 0, 4, 0, 0}, 7, ST_ERR_PROTOCOL},
	        {"origin with space", {0xC0, 0x53, 1, 0, 4, 2, 'a', ' ', 0}, 9, ST_ERR_PROTOCOL},
	        {"origin with NUL", {0xC0, 0x53, 1, 0, 4, 2, 'a', 0, 0}, 9, ST_ERR_PROTOCOL},
	        {"origin past the end", {0xC0, 0x53, 1, 0, 4, 5, 'a', 'b', 0}, 9, ST_ERR_LENGTH},
	        {"no property length", {0xC0, 0x53, 1, 0, 4, 2, 'a', 'b'}, 8, ST_ERR_LENGTH},
	        {"property length cut", {0xC0, 0x53, 1, 0, 5, 1, 'a', 0x80}, 8, ST_ERR_LENGTH},
	        {"property length of five bytes",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 0x80, 0x80, 0x80, 0x80, 0x01},
	         12,
	         ST_ERR_REMLEN},
	        {"properties past the end",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 3, 0x01, 1},
	         10,
	         ST_ERR_LENGTH},
	        {"properties below level 5",
	         {0xC0, 0x53, 1, 0, 4, 1, 'a', 2, 0x01, 1},
	         10,
	         ST_ERR_PROTOCOL},
	        {"unknown property",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 2, 0x7F, 1},
	         10,
	         ST_ERR_PROPERTY},
	        {"CONNECT-only property",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 5, 0x11, 0, 0, 0, 1},
	         13,
	         ST_ERR_PROPERTY_PACKET},
	        {"topic alias",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 3, 0x23, 0, 1},
	         11,
	         ST_ERR_PROPERTY_PACKET},
	        {"subscription identifier",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 2, 0x0B, 5},
	         10,
	         ST_ERR_PROPERTY_PACKET},
	        {"payload format twice",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 4, 0x01, 1, 0x01, 1},
	         12,
	         ST_ERR_PROPERTY_DUP},
	        {"payload format 2",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 2, 0x01, 2},
	         10,
	         ST_ERR_PROPERTY_VALUE},
	        {"content type not UTF-8",
	         {0xC0, 0x53, 1, 0, 5, 1, 'a', 4, 0x03, 0, 1, 0xFF},
	         12,
	         ST_ERR_UTF8},
	};
	struct cluster_msg d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = decode(cases[i].b, cases[i].len, &d);

		if (rc != cases[i].rc) {
			printf("\n%s: %d (%s), want %d ", cases[i].why, rc, st_strerror(rc),
			       cases[i].rc);
			CU_FAIL("decoder result");
		}
	}
}

/* Every cut inside the head is refused; every cut in the payload is a shorter payload. */
static void test_truncations(void)
{
	uint8_t props[128], buf[512];
	size_t plen = sample_props(props, sizeof(props));
	struct cluster_msg m = {.qos = 1,
	                        .level = 5,
	                        .origin = bytes("node-b"),
	                        .props = {props, (uint32_t)plen},
	                        .payload = bytes("payload")},
	                   d;
	size_t head = cluster_env_head_size(&m), n = encode(&m, buf, sizeof(buf));

	for (size_t cut = 0; cut < n; cut++) {
		int rc = decode(buf, cut, &d);

		if (cut < head) {
			CU_ASSERT_NOT_EQUAL(rc, ST_OK);
		} else {
			CU_ASSERT_TRUE(rc == ST_OK && d.payload.len == cut - head);
		}
	}
}

/* Random corruptions of a valid message: never a read past the end (the guard page), and
 * whatever decodes is a message the encoder writes the same head for. */
static void test_corruptions(void)
{
	uint8_t props[128], buf[512], again[512];
	size_t plen = sample_props(props, sizeof(props));
	struct cluster_msg m = {.qos = 2,
	                        .retain = true,
	                        .level = 5,
	                        .origin = bytes("n1"),
	                        .props = {props, (uint32_t)plen},
	                        .payload = bytes("p")},
	                   d;
	size_t n = encode(&m, buf, sizeof(buf));
	unsigned ok = 0;

	srand(99);
	for (int i = 0; i < 50000; i++) {
		uint8_t copy[512];
		unsigned flips = 1 + tu_rand(3);

		memcpy(copy, buf, n);
		for (unsigned f = 0; f < flips; f++)
			copy[tu_rand((unsigned)n)] = (uint8_t)tu_rand(256);
		if (decode(copy, n, &d) != ST_OK)
			continue;
		ok++;
		long h = cluster_env_encode_head(&d, again, sizeof(again));
		CU_ASSERT_TRUE_FATAL(h > 0);
		CU_ASSERT_EQUAL(memcmp(again, copy, (size_t)h), 0);
	}
	printf("(%u of 50000 still decode) ", ok);
}

int main(void)
{
	int rc;
	static const struct tu_test tests[] = {
	        {"round trip", test_round_trip},          {"encoder refuses", test_encode_refuses},
	        {"decoder refuses", test_decode_refuses}, {"truncations", test_truncations},
	        {"corruptions", test_corruptions},        {NULL, NULL},
	};

	tu_add_suite("cluster_envelope", tests);
	rc = tu_run_registry();
	tu_guard_release(&guard);
	return rc;
}
