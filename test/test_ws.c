/*
 * Tests of WebSocket framing (src/io/ws.c).
 *
 * The property test builds a random stream of frames (binary messages, some fragmented into
 * continuations with pings and pongs between the fragments, as RFC 6455 5.4 allows) with
 * random masks, alongside the model: the concatenated data payload and the list of control
 * frames. The stream is fed in random pieces, each copied right before a guard page, with a
 * random, often tiny, output buffer, and what comes out must be exactly the model. Every rule
 * the decoder enforces gets a frame that breaks it and the close code RFC 6455 asks for.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "starling/error.h"
#include "io/ws.h"
#include "testutil.h"

#define STREAM_MAX (1u << 20)

struct stream {
	uint8_t *wire;   /* the frames */
	size_t wire_len; /* bytes of them */
	uint8_t *data;   /* model: data payloads, in order */
	size_t data_len;
	uint8_t ctl_op[64]; /* model: control frames, in order */
	uint8_t ctl_len[64];
	uint8_t ctl[64][WS_CONTROL_MAX];
	unsigned nctl;
};

static void put_frame(struct stream *s, unsigned op, bool fin, const uint8_t *p, size_t n)
{
	uint8_t key[4], hdr[WS_HEADER_MAX];
	size_t h;

	for (int i = 0; i < 4; i++)
		key[i] = (uint8_t)tu_rand(256);
	h = ws_frame_header(hdr, op, n, key);
	if (!fin)
		hdr[0] &= 0x7f;
	CU_ASSERT_FATAL(s->wire_len + h + n <= STREAM_MAX);
	memcpy(s->wire + s->wire_len, hdr, h);
	memcpy(s->wire + s->wire_len + h, p, n);
	ws_mask(s->wire + s->wire_len + h, n, key, 0);
	s->wire_len += h + n;
}

static void put_control(struct stream *s, unsigned op)
{
	uint8_t p[WS_CONTROL_MAX];
	size_t n = tu_rand(4) == 0 ? WS_CONTROL_MAX : tu_rand(20);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tu_rand(256);
	if (s->nctl == 64)
		return;
	s->ctl_op[s->nctl] = (uint8_t)op;
	s->ctl_len[s->nctl] = (uint8_t)n;
	memcpy(s->ctl[s->nctl++], p, n);
	put_frame(s, op, true, p, n);
}

static void put_message(struct stream *s)
{
	size_t sizes[] = {0, 1, 2, 125, 126, 127, 65535, 65536, 70000};
	size_t n = tu_rand(3) == 0 ? sizes[tu_rand(9)] : tu_rand(300);
	unsigned frags = 1 + (tu_rand(3) == 0 ? tu_rand(4) : 0);
	uint8_t *p = s->data + s->data_len;
	size_t off = 0;

	CU_ASSERT_FATAL(s->data_len + n <= STREAM_MAX);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tu_rand(256);
	s->data_len += n;
	for (unsigned f = 0; f < frags; f++) {
		size_t take = f + 1 == frags ? n - off : tu_rand((unsigned)(n - off + 1));

		put_frame(s, f == 0 ? WS_OP_BINARY : WS_OP_CONT, f + 1 == frags, p + off, take);
		off += take;
		if (f + 1 < frags && tu_rand(2))
			put_control(s, tu_rand(2) ? WS_OP_PING : WS_OP_PONG);
	}
}

/* Feeds s in random pieces with a random output size; checks against the model. */
static void feed_check(const struct stream *s, struct tu_guard *g, size_t cap)
{
	struct ws_rx rx;
	uint8_t *out = malloc(cap), *got = malloc(s->data_len + 1);
	size_t got_len = 0, off = 0;
	unsigned nctl = 0;

	ws_rx_init(&rx, true, 1u << 20);
	while (off < s->wire_len) {
		size_t piece = 1 + tu_rand(tu_rand(2) ? 16 : 40000);
		const uint8_t *in;

		if (piece > s->wire_len - off)
			piece = s->wire_len - off;
		in = tu_guard_copy(g, s->wire + off, piece);
		while (piece > 0) {
			size_t used = 0, olen = 0;
			int ret = ws_rx_feed(&rx, in, piece, &used, out, cap, &olen);

			CU_ASSERT_FATAL(ret >= 0);
			CU_ASSERT_FATAL(used <= piece && olen <= cap);
			CU_ASSERT_FATAL(got_len + olen <= s->data_len);
			memcpy(got + got_len, out, olen);
			got_len += olen;
			in += used;
			piece -= used;
			off += used;
			if (ret == WS_RX_CONTROL) {
				CU_ASSERT_FATAL(nctl < s->nctl);
				CU_ASSERT_EQUAL(rx.ctl_op, s->ctl_op[nctl]);
				CU_ASSERT_EQUAL_FATAL(rx.ctl_len, s->ctl_len[nctl]);
				CU_ASSERT(memcmp(rx.ctl, s->ctl[nctl], rx.ctl_len) == 0);
				nctl++;
			} else {
				CU_ASSERT_FATAL(used > 0 || olen > 0 || piece == 0);
			}
		}
	}
	CU_ASSERT_EQUAL(got_len, s->data_len);
	CU_ASSERT(memcmp(got, s->data, got_len) == 0);
	CU_ASSERT_EQUAL(nctl, s->nctl);
	CU_ASSERT_FALSE(rx.in_payload || rx.hdr_len || rx.in_message);
	free(out);
	free(got);
}

static void test_random_streams(void)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct tu_guard g = {0};
	size_t caps[] = {1, 7, 64, 4096, 65536};

	s->wire = malloc(STREAM_MAX);
	s->data = malloc(STREAM_MAX);
	srand(11);
	for (int round = 0; round < 60; round++) {
		s->wire_len = s->data_len = 0;
		s->nctl = 0;
		for (unsigned m = 1 + tu_rand(12); m > 0; m--) {
			put_message(s);
			if (tu_rand(4) == 0)
				put_control(s, WS_OP_PING);
		}
		feed_check(s, &g, caps[tu_rand(5)]);
	}
	tu_guard_release(&g);
	free(s->wire);
	free(s->data);
	free(s);
}

/* Feeds one byte at a time; returns the first error (or the last result), code in *code. */
static int feed_bytes(const uint8_t *p, size_t n, bool want_mask, uint64_t max, uint16_t *code)
{
	struct ws_rx rx;
	uint8_t out[256];
	struct tu_guard g = {0};
	int ret = WS_RX_MORE;

	ws_rx_init(&rx, want_mask, max);
	for (size_t i = 0; i < n && ret >= 0; i++) {
		size_t used = 0, olen = 0;

		ret = ws_rx_feed(&rx, tu_guard_copy(&g, p + i, 1), 1, &used, out, sizeof(out),
		                 &olen);
	}
	tu_guard_release(&g);
	*code = rx.close_code;
	return ret;
}

/* A masked frame with the given first byte and payload. */
static size_t raw_frame(uint8_t *buf, uint8_t b0, const uint8_t *p, size_t n)
{
	static const uint8_t key[4] = {1, 2, 3, 4};
	size_t h = ws_frame_header(buf, b0 & 0x0f, n, key);

	buf[0] = b0;
	memcpy(buf + h, p, n);
	ws_mask(buf + h, n, key, 0);
	return h + n;
}

static void expect_error(const uint8_t *p, size_t n, uint16_t code, int err)
{
	uint16_t got = 0;

	CU_ASSERT_EQUAL(feed_bytes(p, n, true, 1000, &got), err);
	CU_ASSERT_EQUAL(got, code);
}

static void test_violations(void)
{
	uint8_t f[400], big[200];
	size_t n;

	memset(big, 'x', sizeof(big));
	/* An unmasked frame from a client; a masked one towards a client. */
	n = ws_frame_header(f, WS_OP_BINARY, 1, NULL);
	f[n++] = 0xc0;
	expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	n = raw_frame(f, 0x82, big, 3);
	{
		uint16_t code;

		CU_ASSERT_EQUAL(feed_bytes(f, n, false, 1000, &code), ST_ERR_PROTOCOL);
		CU_ASSERT_EQUAL(code, WS_CLOSE_PROTOCOL);
	}
	/* Reserved bits, reserved opcodes. */
	for (unsigned rsv = 1; rsv < 8; rsv++) {
		n = raw_frame(f, (uint8_t)(0x82 | rsv << 4), big, 1);
		expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	}
	for (unsigned op = 3; op < 16; op++) {
		if (op >= 8 && op <= 10)
			continue;
		n = raw_frame(f, (uint8_t)(0x80 | op), big, 1);
		expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	}
	/* Text is not MQTT: 1003. */
	n = raw_frame(f, 0x81, big, 2);
	expect_error(f, n, WS_CLOSE_UNSUPPORTED, ST_ERR_PROTOCOL);
	/* Control frames: over 125 bytes, fragmented. */
	n = raw_frame(f, 0x89, big, 126);
	expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	n = raw_frame(f, 0x09, big, 1);
	expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	n = raw_frame(f, 0x08, big, 0);
	expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	/* Continuation without a message; a new message inside one. */
	n = raw_frame(f, 0x80, big, 1);
	expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	n = raw_frame(f, 0x02, big, 1);
	n += raw_frame(f + n, 0x82, big, 1);
	expect_error(f, n, WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	/* Oversize (1009), refused from the header alone. */
	n = raw_frame(f, 0x82, big, 0);
	f[1] = 0x80 | 127;
	memset(f + 2, 0, 8);
	f[4] = 1; /* 2^40 */
	expect_error(f, 14, WS_CLOSE_TOO_BIG, ST_ERR_TOO_LARGE);
	/* A 200-byte frame: over a limit of 199, within one of 200. */
	n = raw_frame(f, 0x82, big, 200);
	{
		uint16_t code = 0;

		CU_ASSERT_EQUAL(feed_bytes(f, n, true, 199, &code), ST_ERR_TOO_LARGE);
		CU_ASSERT_EQUAL(code, WS_CLOSE_TOO_BIG);
		CU_ASSERT_EQUAL(feed_bytes(f, n, true, 200, &code), WS_RX_MORE);
	}
	/* Lengths not in their shortest form, and the 64-bit length's top bit. */
	{
		const uint8_t l16[] = {0x82, 0x80 | 126, 0, 125, 1, 2, 3, 4};
		const uint8_t l64[] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
		const uint8_t top[] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};

		expect_error(l16, sizeof(l16), WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
		expect_error(l64, sizeof(l64), WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
		expect_error(top, sizeof(top), WS_CLOSE_PROTOCOL, ST_ERR_PROTOCOL);
	}
}

/* The first two bytes decide: a bad frame fails before its length or payload arrive. */
static void test_fails_early(void)
{
	const uint8_t unmasked[] = {0x82, 0x05};
	struct ws_rx rx;
	uint8_t out[8];
	size_t used = 0, olen = 0;

	ws_rx_init(&rx, true, 100);
	CU_ASSERT_EQUAL(ws_rx_feed(&rx, unmasked, 2, &used, out, sizeof(out), &olen),
	                ST_ERR_PROTOCOL);
	CU_ASSERT_PTR_NOT_NULL(rx.why);
}

static void test_close_payloads(void)
{
	uint16_t code;
	const uint8_t ok_reason[] = {0x03, 0xe8, 'b', 'y', 'e', 0, 0xc3, 0xa9};
	const uint8_t bad_utf8[] = {0x03, 0xe8, 0xc3};
	struct {
		uint16_t code;
		int want;
	} codes[] = {{999, WS_CLOSE_PROTOCOL},
	             {1000, 0},
	             {1003, 0},
	             {1004, WS_CLOSE_PROTOCOL},
	             {1005, WS_CLOSE_PROTOCOL},
	             {1006, WS_CLOSE_PROTOCOL},
	             {1007, 0},
	             {1014, 0},
	             {1015, WS_CLOSE_PROTOCOL},
	             {2999, WS_CLOSE_PROTOCOL},
	             {3000, 0},
	             {4999, 0},
	             {5000, WS_CLOSE_PROTOCOL}};

	CU_ASSERT_EQUAL(ws_close_parse(NULL, 0, &code), 0);
	CU_ASSERT_EQUAL(code, WS_CLOSE_NO_STATUS);
	CU_ASSERT_EQUAL(ws_close_parse(ok_reason, 1, &code), WS_CLOSE_PROTOCOL);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		uint8_t p[2] = {(uint8_t)(codes[i].code >> 8), (uint8_t)codes[i].code};

		CU_ASSERT_EQUAL(ws_close_parse(p, 2, &code), codes[i].want);
		CU_ASSERT_EQUAL(code, codes[i].code);
	}
	CU_ASSERT_EQUAL(ws_close_parse(ok_reason, sizeof(ok_reason), &code), 0);
	CU_ASSERT_EQUAL(code, 1000);
	CU_ASSERT_EQUAL(ws_close_parse(bad_utf8, sizeof(bad_utf8), &code), WS_CLOSE_INVALID);
}

static void test_header_lengths(void)
{
	uint8_t h[WS_HEADER_MAX];
	const uint8_t key[4] = {9, 8, 7, 6};

	CU_ASSERT_EQUAL(ws_frame_header(h, WS_OP_BINARY, 125, NULL), 2);
	CU_ASSERT_EQUAL(h[0], 0x82);
	CU_ASSERT_EQUAL(h[1], 125);
	CU_ASSERT_EQUAL(ws_frame_header(h, WS_OP_BINARY, 126, NULL), 4);
	CU_ASSERT_EQUAL(h[1], 126);
	CU_ASSERT_EQUAL(h[2] << 8 | h[3], 126);
	CU_ASSERT_EQUAL(ws_frame_header(h, WS_OP_BINARY, 65535, NULL), 4);
	CU_ASSERT_EQUAL(ws_frame_header(h, WS_OP_BINARY, 65536, NULL), 10);
	CU_ASSERT_EQUAL(h[1], 127);
	CU_ASSERT_EQUAL(h[7], 1);
	CU_ASSERT_EQUAL(ws_frame_header(h, WS_OP_CLOSE, 2, key), 6);
	CU_ASSERT_EQUAL(h[0], 0x88);
	CU_ASSERT_EQUAL(h[1], 0x82);
	CU_ASSERT(memcmp(h + 2, key, 4) == 0);
}

/* Masking at any offset equals byte-wise XOR (the fast path works eight bytes at a time). */
static void test_mask_offsets(void)
{
	uint8_t a[100], b[100];
	const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};

	for (size_t off = 0; off < 8; off++) {
		for (size_t i = 0; i < sizeof(a); i++)
			a[i] = b[i] = (uint8_t)i;
		ws_mask(a, sizeof(a), key, off);
		for (size_t i = 0; i < sizeof(b); i++)
			CU_ASSERT_EQUAL(a[i], b[i] ^ key[(off + i) & 3]);
	}
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"random streams in random pieces", test_random_streams},
	        {"violations and their close codes", test_violations},
	        {"a bad frame fails from its first two bytes", test_fails_early},
	        {"close payloads", test_close_payloads},
	        {"header lengths", test_header_lengths},
	        {"masking at any offset", test_mask_offsets},
	        {NULL, NULL},
	};

	tu_add_suite("ws", tests);
	return tu_run_registry();
}
