/*
 * Unit tests of src/cluster/natsproto.c: every server operation parsed (names in any case,
 * runs of blanks, with and without a reply, headers), every prefix of a stream asking for more
 * bytes and never reading past them, every malformed line refused with its code, and the
 * client's encoders byte for byte (with every too-small buffer refused).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/natsproto.h"
#include "starling/error.h"
#include "testutil.h"

static bool eq(struct st_bytes b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

static uint8_t *copies[64];
static unsigned ncopies;

static void free_copies(void)
{
	while (ncopies)
		free(copies[--ncopies]);
}

/*
 * Parses s whole from an exact-size copy, so that a read past the end is ASan's to catch;
 * the views point into the copy, kept until free_copies.
 */
static long parse(const char *s, size_t max, struct nats_op *op)
{
	size_t len = strlen(s);
	uint8_t *copy = malloc(len ? len : 1);

	if (ncopies == sizeof(copies) / sizeof(copies[0]))
		free_copies();
	copies[ncopies++] = copy;
	memcpy(copy, s, len);
	return nats_parse(copy, len, max, op);
}

static void test_operations(void)
{
	struct nats_op op;

	CU_ASSERT_EQUAL(parse("PING\r\n", 100, &op), 6);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_PING);
	CU_ASSERT_EQUAL(parse("pong\r\n", 100, &op), 6);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_PONG);
	CU_ASSERT_EQUAL(parse("+OK\r\n", 100, &op), 5);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_OK);
	CU_ASSERT_EQUAL(parse("-ERR 'Maximum Payload Violation'\r\n", 100, &op), 34);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_ERR);
	CU_ASSERT_TRUE(eq(op.text, "Maximum Payload Violation"));
	CU_ASSERT_EQUAL(parse("INFO {\"max_payload\":1048576} \r\n", 100, &op), 31);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_INFO);
	CU_ASSERT_TRUE(eq(op.text, "{\"max_payload\":1048576}"));
	CU_ASSERT_EQUAL(parse("MSG a.b 7 5\r\nhello\r\n", 100, &op), 20);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_MSG);
	CU_ASSERT_TRUE(eq(op.subject, "a.b"));
	CU_ASSERT_TRUE(eq(op.sid, "7"));
	CU_ASSERT_EQUAL(op.reply.len, 0);
	CU_ASSERT_TRUE(eq(op.payload, "hello"));
	CU_ASSERT_EQUAL(parse("msg\ta.b  \t 12   _INBOX.x 0\r\n\r\n", 100, &op), 30);
	CU_ASSERT_TRUE(eq(op.subject, "a.b"));
	CU_ASSERT_TRUE(eq(op.sid, "12"));
	CU_ASSERT_TRUE(eq(op.reply, "_INBOX.x"));
	CU_ASSERT_EQUAL(op.payload.len, 0);
	/* A payload may hold CRLF: its size says where it ends. */
	CU_ASSERT_EQUAL(parse("MSG s 1 4\r\n\r\n\r\n\r\n", 100, &op), 17);
	CU_ASSERT_TRUE(eq(op.payload, "\r\n\r\n"));
	CU_ASSERT_EQUAL(parse("HMSG s 3 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", 100, &op), 34);
	CU_ASSERT_EQUAL(op.kind, NATS_OP_HMSG);
	CU_ASSERT_TRUE(eq(op.reply, "r"));
	CU_ASSERT_TRUE(eq(op.headers, "NATS/1.0\r\n\r\n"));
	CU_ASSERT_TRUE(eq(op.payload, "hi"));
	CU_ASSERT_EQUAL(parse("HMSG s 3 12 12\r\nNATS/1.0\r\n\r\n\r\n", 100, &op), 30);
	CU_ASSERT_EQUAL(op.payload.len, 0);
}

static void test_refused(void)
{
	static const struct {
		const char *in;
		long rc;
	} cases[] = {
	        {"PUB a 1\r\nx\r\n", ST_ERR_PROTOCOL}, /* a client's operation */
	        {"HELLO\r\n", ST_ERR_PROTOCOL},
	        {"\r\n", ST_ERR_PROTOCOL},
	        {"PING\n", ST_ERR_PROTOCOL},
	        {"PING x\r\n", ST_ERR_PROTOCOL},
	        {"INFO\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 r x 2\r\nab\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 -1\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 1x\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 99999999999\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 2\r\nabc\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 2\r\nab\n\n", ST_ERR_PROTOCOL},
	        {"HMSG a 1 5 4\r\nabcd\r\n", ST_ERR_PROTOCOL}, /* headers past the total */
	        {"HMSG a 1 4\r\nabcd\r\n", ST_ERR_PROTOCOL},
	        {"MSG a 1 101\r\n", ST_ERR_TOO_LARGE},
	        {"HMSG a 1 2 101\r\n", ST_ERR_TOO_LARGE},
	};
	struct nats_op op;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long rc = parse(cases[i].in, 100, &op);

		if (rc != cases[i].rc) {
			printf("\n  [%s]: %ld, want %ld ", cases[i].in, rc, cases[i].rc);
			CU_FAIL("parse result");
		}
	}
}

static void test_line_bound(void)
{
	size_t len = NATS_LINE_MAX + 16;
	uint8_t *buf = malloc(len);
	struct nats_op op;

	memset(buf, 'x', len);
	memcpy(buf, "INFO ", 5);
	/* No newline within the bound: refused, whatever follows. */
	CU_ASSERT_EQUAL(nats_parse(buf, len, 100, &op), ST_ERR_TOO_LARGE);
	/* Short of the bound and no newline yet: wait. */
	CU_ASSERT_EQUAL(nats_parse(buf, NATS_LINE_MAX - 1, 100, &op), 0);
	free(buf);
}

/* A stream of operations: every cut asks for more, the whole parses op by op. */
static void test_stream(void)
{
	static const char stream[] = "INFO {}\r\nPING\r\nMSG x.y 1 3\r\nabc\r\n"
	                             "HMSG x.z 2 _I.1 12 13\r\nNATS/1.0\r\n\r\nd\r\n+OK\r\n";
	static const enum nats_op_kind kinds[] = {NATS_OP_INFO, NATS_OP_PING, NATS_OP_MSG,
	                                          NATS_OP_HMSG, NATS_OP_OK};
	size_t len = sizeof(stream) - 1, at = 0;
	struct nats_op op;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		long whole;

		for (size_t cut = 0;; cut++) {
			uint8_t *part = malloc(cut ? cut : 1);
			long n;

			memcpy(part, stream + at, cut);
			n = nats_parse(part, cut, 100, &op);
			free(part);
			if (n != 0) {
				CU_ASSERT_TRUE(n > 0);
				CU_ASSERT_EQUAL((size_t)n, cut);
				break;
			}
			CU_ASSERT_TRUE_FATAL(at + cut < len);
		}
		whole = nats_parse((const uint8_t *)stream + at, len - at, 100, &op);
		CU_ASSERT_TRUE_FATAL(whole > 0);
		CU_ASSERT_EQUAL(op.kind, kinds[k]);
		at += (size_t)whole;
	}
	CU_ASSERT_EQUAL(at, len);
}

/* enc(buf, cap) must write `want` exactly, and refuse every smaller buffer. */
static void check_encoder(long (*enc)(uint8_t *, size_t, const void *), const void *arg,
                          const char *want)
{
	uint8_t buf[512];
	size_t n = strlen(want);

	CU_ASSERT_EQUAL(enc(buf, sizeof(buf), arg), (long)n);
	CU_ASSERT_EQUAL(memcmp(buf, want, n), 0);
	for (size_t cap = 0; cap < n; cap++)
		CU_ASSERT_EQUAL(enc(buf, cap, arg), ST_ERR_NO_SPACE);
}

static long enc_pub(uint8_t *b, size_t cap, const void *arg)
{
	(void)arg;
	return nats_pub_head(b, cap, "s.m.a", 5, "_INBOX.9", 8, 1234);
}

static long enc_pub_noreply(uint8_t *b, size_t cap, const void *arg)
{
	(void)arg;
	return nats_pub_head(b, cap, "s.m.a", 5, NULL, 0, 0);
}

static long enc_sub(uint8_t *b, size_t cap, const void *arg)
{
	(void)arg;
	return nats_sub(b, cap, "s.m.>", 5, "g.m.>", 5, 42);
}

static long enc_sub_noqueue(uint8_t *b, size_t cap, const void *arg)
{
	(void)arg;
	return nats_sub(b, cap, "s.m.*", 5, NULL, 0, 18446744073709551615ull);
}

static long enc_unsub(uint8_t *b, size_t cap, const void *arg)
{
	(void)arg;
	return nats_unsub(b, cap, 7);
}

static long enc_connect(uint8_t *b, size_t cap, const void *arg)
{
	return nats_connect(b, cap, arg);
}

static void test_encoders(void)
{
	struct nats_connect plain = {.name = "edge-1", .echo = false};
	struct nats_connect auth = {
	        .name = "n\"1\\", .user = "u", .pass = "p\n", .echo = true, .tls_required = true};

	check_encoder(enc_pub, NULL, "PUB s.m.a _INBOX.9 1234\r\n");
	CU_ASSERT_EQUAL(nats_pub_head_size(5, 8, 1234), strlen("PUB s.m.a _INBOX.9 1234\r\n"));
	check_encoder(enc_pub_noreply, NULL, "PUB s.m.a 0\r\n");
	CU_ASSERT_EQUAL(nats_pub_head_size(5, 0, 0), strlen("PUB s.m.a 0\r\n"));
	check_encoder(enc_sub, NULL, "SUB s.m.> g.m.> 42\r\n");
	check_encoder(enc_sub_noqueue, NULL, "SUB s.m.* 18446744073709551615\r\n");
	check_encoder(enc_unsub, NULL, "UNSUB 7\r\n");
	check_encoder(enc_connect, &plain,
	              "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"c\","
	              "\"version\":\"starling\",\"protocol\":1,\"headers\":true,"
	              "\"no_responders\":true,\"echo\":false,\"tls_required\":false,"
	              "\"name\":\"edge-1\"}\r\n");
	check_encoder(enc_connect, &auth,
	              "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"c\","
	              "\"version\":\"starling\",\"protocol\":1,\"headers\":true,"
	              "\"no_responders\":true,\"echo\":true,\"tls_required\":true,"
	              "\"name\":\"n\\\"1\\\\\",\"user\":\"u\",\"pass\":\"p\\u000a\"}\r\n");
}

static void test_sid_value(void)
{
	uint64_t v;

	CU_ASSERT_TRUE(nats_sid_value((struct st_bytes){(const uint8_t *)"42", 2}, &v));
	CU_ASSERT_EQUAL(v, 42);
	CU_ASSERT_TRUE(
	        nats_sid_value((struct st_bytes){(const uint8_t *)"9999999999999999999", 19}, &v));
	CU_ASSERT_FALSE(
	        nats_sid_value((struct st_bytes){(const uint8_t *)"99999999999999999999", 20}, &v));
	CU_ASSERT_FALSE(nats_sid_value((struct st_bytes){(const uint8_t *)"4a", 2}, &v));
	CU_ASSERT_FALSE(nats_sid_value((struct st_bytes){(const uint8_t *)"", 0}, &v));
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"operations", test_operations},
	        {"refused", test_refused},
	        {"line bound", test_line_bound},
	        {"stream", test_stream},
	        {"encoders", test_encoders},
	        {"sid value", test_sid_value},
	        {NULL, NULL},
	};

	int rc;

	tu_add_suite("cluster_natsproto", tests);
	rc = tu_run_registry();
	free_copies();
	return rc;
}
