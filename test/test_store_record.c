/*
 * Tests of the persistence log's record codec and header (src/store/record.c): CRC32C against
 * its standard check value, a round trip of every record type with every field compared, the
 * header's refusals (not a log, corrupt, newer format, foreign worker count), lengths beyond
 * the bytes present or the bound, and payloads whose CRC is right but whose fields are not.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "store/record.h"
#include "store/segment.h"
#include "testutil.h"

#define B(s) ((struct st_bytes){(const uint8_t *)(s), (uint32_t)(sizeof(s) - 1)})

static void test_crc32c(void)
{
	static const char check[] = "123456789";
	uint8_t zeros[32] = {0};

	CU_ASSERT_EQUAL(store_crc32c(0, check, 9), 0xE3069283u);
	CU_ASSERT_EQUAL(store_crc32c(store_crc32c(0, check, 4), check + 4, 5), 0xE3069283u);
	CU_ASSERT_EQUAL(store_crc32c(0, check, 0), 0);
	/* RFC 3720 B.4: 32 bytes of zeros. */
	CU_ASSERT_EQUAL(store_crc32c(0, zeros, 32), 0x8A9136AAu);
}

static bool bytes_eq(struct st_bytes a, struct st_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool rec_eq(const struct store_rec *a, const struct store_rec *b)
{
	return a->type == b->type && a->qos == b->qos && a->retain == b->retain &&
	       a->protocol == b->protocol && a->options == b->options && a->stage == b->stage &&
	       a->packet_id == b->packet_id && a->sub_id == b->sub_id &&
	       a->expiry_interval_s == b->expiry_interval_s && a->expiry_ms == b->expiry_ms &&
	       a->msg_id == b->msg_id && a->origin == b->origin && a->source == b->source &&
	       a->origin_lo == b->origin_lo && bytes_eq(a->client, b->client) &&
	       bytes_eq(a->topic, b->topic) && bytes_eq(a->filter, b->filter) &&
	       bytes_eq(a->props, b->props) && bytes_eq(a->payload, b->payload) &&
	       a->has_user == b->has_user && a->listener == b->listener &&
	       bytes_eq(a->user, b->user);
}

/* One record of each type, every field its type carries set to a non-trivial value. */
static const struct store_rec samples[] = {
        {.type = STORE_REC_RETAIN_SET,
         .qos = 2,
         .expiry_ms = 0x0102030405060708ull,
         .topic = B("a/b/c"),
         .props = B("\x01\x01\x03\x00\x04text"),
         .payload = B("hello")},
        {.type = STORE_REC_RETAIN_SET, .qos = 0, .topic = B("empty/payload")},
        {.type = STORE_REC_RETAIN_DEL, .topic = B("a/b/c")},
        {.type = STORE_REC_SESSION_PUT,
         .protocol = 5,
         .expiry_interval_s = 0xfffffffe,
         .expiry_ms = 1765000000123ull,
         .client = B("client-1")},
        {.type = STORE_REC_SESSION_PUT,
         .protocol = 4,
         .expiry_interval_s = UINT32_MAX,
         .client = B("c")},
        {.type = STORE_REC_SESSION_DEL, .client = B("client-1")},
        {.type = STORE_REC_SUB_ADD,
         .options = 0x2e,
         .sub_id = 268435455,
         .client = B("client-1"),
         .filter = B("sport/+/score/#")},
        {.type = STORE_REC_SUB_ADD, .options = 1, .client = B("x"), .filter = B("$share/g/t")},
        {.type = STORE_REC_SUB_DEL, .client = B("client-1"), .filter = B("sport/+/score/#")},
        {.type = STORE_REC_QUEUE_ADD,
         .msg_id = UINT64_MAX,
         .expiry_ms = 99,
         .qos = 1,
         .retain = 1,
         .client = B("client-1"),
         .topic = B("t"),
         .props = B("\x23\x00\x05"),
         .payload = B("\x00\xff\x00")},
        {.type = STORE_REC_QUEUE_DEL, .msg_id = 42, .client = B("client-1")},
        {.type = STORE_REC_INFLIGHT_SET,
         .msg_id = 42,
         .packet_id = 65535,
         .stage = STORE_STAGE_PUBREL,
         .client = B("client-1")},
        {.type = STORE_REC_INFLIGHT_SET,
         .msg_id = 7,
         .packet_id = 1,
         .stage = STORE_STAGE_PUBLISH,
         .client = B("client-1")},
        {.type = STORE_REC_INFLIGHT_CLEAR, .packet_id = 65535, .client = B("client-1")},
        {.type = STORE_REC_INBOUND_ADD, .packet_id = 300, .client = B("client-1")},
        {.type = STORE_REC_INBOUND_DEL, .packet_id = 300, .client = B("client-1")},
        {.type = STORE_REC_WILL_SET,
         .qos = 1,
         .retain = 1,
         .expiry_ms = 1765000000999ull,
         .client = B("client-1"),
         .topic = B("last/will"),
         .props = B("\x18\x00\x00\x00\x3c"),
         .payload = B("gone")},
        {.type = STORE_REC_WILL_CLEAR, .client = B("client-1")},
        {.type = STORE_REC_COMMIT},
        {.type = STORE_REC_PAD},
        {.type = STORE_REC_SHARE_MARK,
         .source = 3,
         .origin = STORE_ORIGIN_MAX - 1,
         .filter = B("$share/g/sensors/+/t")},
        {.type = STORE_REC_RETAIN_SOURCE,
         .topic = B("a/b/c"),
         .client = B("setter"),
         .has_user = 1,
         .listener = 3,
         .user = B("writer")},
        {.type = STORE_REC_ORIGIN, .source = 3, .origin_lo = 2, .origin = STORE_ORIGIN_MAX - 1},
        {.type = STORE_REC_INBOUND_ORIGIN, .client = B("client-1"), .packet_id = 7, .origin = 1},
        {.type = STORE_REC_SESSION_AUTH,
         .client = B("client-1"),
         .has_user = 1,
         .listener = 65535,
         .user = B("us\xc3\xa9r")},
        {.type = STORE_REC_SESSION_AUTH, .client = B("client-1"), .has_user = 1},
        {.type = STORE_REC_SESSION_AUTH, .client = B("anonymous"), .listener = 2},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void test_round_trip_every_type(void)
{
	struct tu_guard guard = {0};
	struct store_buf b = {0};
	bool seen[STORE_REC__MAX + 1] = {false};

	for (size_t i = 0; i < NSAMPLES; i++) {
		struct store_rec r;
		const uint8_t *p;
		size_t used = 0;

		b.len = 0;
		CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b, &samples[i]), 0);
		p = tu_guard_copy(&guard, b.data, b.len);
		CU_ASSERT_EQUAL(store_rec_decode(p, b.len, &r, &used), 0);
		CU_ASSERT_EQUAL(used, b.len);
		CU_ASSERT(rec_eq(&r, &samples[i]));
		/* Views point into the input, not into a copy. */
		if (r.client.len)
			CU_ASSERT(r.client.ptr >= p && r.client.ptr < p + b.len);
		/* The layout: body length, then the CRC of type + payload, then the type. */
		CU_ASSERT_EQUAL(b.data[0] | b.data[1] << 8 | b.data[2] << 16 |
		                        (uint32_t)b.data[3] << 24,
		                b.len - STORE_REC_HDR_LEN);
		CU_ASSERT_EQUAL(b.data[4] | b.data[5] << 8 | b.data[6] << 16 |
		                        (uint32_t)b.data[7] << 24,
		                store_crc32c(0, b.data + 8, b.len - 8));
		CU_ASSERT_EQUAL(b.data[8], samples[i].type);
		seen[samples[i].type] = true;
	}
	for (unsigned t = 1; t <= STORE_REC__MAX; t++)
		CU_ASSERT(seen[t]);
	store_buf_free(&b);
	tu_guard_release(&guard);
}

/* The encoder's views are the decoder's: the same bytes of the buffer, the same fields. */
static void test_encode_views(void)
{
	struct store_buf b = {0};

	for (size_t i = 0; i < NSAMPLES; i++) {
		struct store_rec r, v;
		size_t used = 0, off;

		/* Something before the record: views are into the buffer, not from its start. */
		b.len = 0;
		CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b, &samples[0]), 0);
		off = b.len;
		CU_ASSERT_EQUAL_FATAL(store_rec_encode_views(&b, &samples[i], &v), 0);
		CU_ASSERT_EQUAL_FATAL(store_rec_decode(b.data + off, b.len - off, &r, &used), 0);
		CU_ASSERT(rec_eq(&v, &samples[i]));
		CU_ASSERT(v.client.ptr == r.client.ptr && v.topic.ptr == r.topic.ptr);
		CU_ASSERT(v.filter.ptr == r.filter.ptr && v.props.ptr == r.props.ptr);
		CU_ASSERT(v.payload.ptr == r.payload.ptr);
	}
	store_buf_free(&b);
}

/* Fields a type does not carry are neither written nor read back. */
static void test_other_fields_ignored(void)
{
	struct store_rec in = samples[2], out;
	struct store_buf b = {0};
	size_t used;

	in.qos = 2;
	in.client = B("ignored");
	in.payload = B("ignored");
	CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b, &in), 0);
	CU_ASSERT_EQUAL(store_rec_decode(b.data, b.len, &out, &used), 0);
	CU_ASSERT(rec_eq(&out, &samples[2]));
	/* type + u16 length + "a/b/c" */
	CU_ASSERT_EQUAL(b.len, STORE_REC_HDR_LEN + 1 + 2 + 5);
	store_buf_free(&b);
}

static void test_large_payload(void)
{
	size_t n = 3u << 20;
	uint8_t *big = malloc(n);
	struct store_rec r = {.type = STORE_REC_QUEUE_ADD,
	                      .qos = 2,
	                      .client = B("big"),
	                      .topic = B("bulk"),
	                      .msg_id = 1},
	                 out;
	struct store_buf b = {0};
	size_t used;

	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 7);
	r.payload.ptr = big;
	r.payload.len = (uint32_t)n;
	CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b, &r), 0);
	CU_ASSERT_EQUAL(store_rec_decode(b.data, b.len, &out, &used), 0);
	CU_ASSERT(rec_eq(&out, &r));
	store_buf_free(&b);
	free(big);
}

static void test_encode_refuses_bad_fields(void)
{
	struct store_buf b = {0};
	struct store_rec r;
	static uint8_t long_topic[65536];

	memset(long_topic, 'a', sizeof(long_topic));
#define REFUSE(field, value, base)                                                                 \
	do {                                                                                       \
		r = samples[base];                                                                 \
		r.field = value;                                                                   \
		CU_ASSERT_EQUAL(store_rec_encode(&b, &r), STORE_E_FIELD);                          \
	} while (0)
	REFUSE(qos, 3, 0);
	REFUSE(type, 0, 0);
	REFUSE(type, STORE_REC__MAX + 1, 0);
	REFUSE(topic, B("a/+"), 0);
	REFUSE(topic, B(""), 0);
	REFUSE(client, B(""), 3);
	REFUSE(protocol, 6, 3);
	REFUSE(protocol, 2, 3);
	REFUSE(options, 0x40, 6);
	REFUSE(options, 0x03, 6);
	REFUSE(options, 0x30, 6);
	REFUSE(sub_id, 268435456, 6);
	REFUSE(filter, B("a/#/b"), 6);
	REFUSE(retain, 2, 9);
	REFUSE(packet_id, 0, 11);
	REFUSE(stage, 0, 11);
	REFUSE(stage, 3, 11);
	REFUSE(packet_id, 0, 14);
	/* Origins: 1 .. 2^48 - 1. */
	REFUSE(origin, 0, NSAMPLES - 5);
	REFUSE(origin, STORE_ORIGIN_MAX, NSAMPLES - 5);
	REFUSE(origin_lo, 0, NSAMPLES - 5);
	REFUSE(origin, 1, NSAMPLES - 5); /* an interval [2, 1] */
	REFUSE(origin, 0, NSAMPLES - 4);
	REFUSE(packet_id, 0, NSAMPLES - 4);
	/* Session-auth: a user name only with the flag that says one was given. */
	REFUSE(has_user, 2, NSAMPLES - 3);
	REFUSE(has_user, 0, NSAMPLES - 3);
	REFUSE(client, B(""), NSAMPLES - 1);
	/* Retain-source: a valid topic name, a client id, a user name only with its flag. */
	REFUSE(topic, B("a/+"), NSAMPLES - 6);
	REFUSE(client, B(""), NSAMPLES - 6);
	REFUSE(has_user, 0, NSAMPLES - 6);
	/* Share-mark: an origin number, a group key that is a filter. */
	REFUSE(origin, 0, NSAMPLES - 7);
	REFUSE(filter, B(""), NSAMPLES - 7);
	REFUSE(filter, B("$share/g/a/#/b"), NSAMPLES - 7);
	r = samples[0];
	r.topic.ptr = long_topic;
	r.topic.len = sizeof(long_topic);
	CU_ASSERT_EQUAL(store_rec_encode(&b, &r), STORE_E_FIELD);
	r.topic.len = sizeof(long_topic) - 1;
	CU_ASSERT_EQUAL(store_rec_encode(&b, &r), 0);
#undef REFUSE
	/* Nothing was appended by the refusals: only the last record is there. */
	CU_ASSERT_EQUAL(b.len, STORE_REC_HDR_LEN + 1 + 8 + 1 + 2 + 65535 + 4 + 9 + 4 + 5);
	store_buf_free(&b);
}

/* Hand-made records with a right CRC: the codec must still refuse their payloads. */
static int decode_body(const uint8_t *body, size_t len)
{
	uint8_t buf[128];
	struct store_rec r;
	size_t used;
	uint32_t crc = store_crc32c(0, body, len);

	buf[0] = (uint8_t)len;
	buf[1] = buf[2] = buf[3] = 0;
	for (int i = 0; i < 4; i++)
		buf[4 + i] = (uint8_t)(crc >> (8 * i));
	memcpy(buf + 8, body, len);
	return store_rec_decode(buf, 8 + len, &r, &used);
}

static void test_decode_refuses_malformed(void)
{
	/* retain-del "a": type, u16 length 1, "a" */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02\x01\x00"
	                                             "a",
	                            4),
	                0);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02\x02\x00"
	                                             "a",
	                            4),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02\x01\x00"
	                                             "ab",
	                            5),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02\x01", 2), STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02\xff\xff"
	                                             "a",
	                            4),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02\x01\x00"
	                                             "#",
	                            4),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x02", 1), STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x00\x01\x00"
	                                             "a",
	                            4),
	                STORE_E_TYPE);
	/* Session-auth: has_user, listener, client "c", user "x": a user name needs the flag. */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x13\x01\x02\x00\x01\x00"
	                                             "c\x01\x00"
	                                             "x",
	                            10),
	                0);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x13\x00\x02\x00\x01\x00"
	                                             "c\x01\x00"
	                                             "x",
	                            10),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x13\x02\x02\x00\x01\x00"
	                                             "c\x00\x00",
	                            9),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x13\x01\x02\x00\x01\x00"
	                                             "c\x02\x00"
	                                             "x",
	                            10),
	                STORE_E_MALFORMED);
	/* An origin interval [5, 3]; then [3, 3], which is fine. */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x10\x05\x00\x00\x00\x00\x00\x00\x00"
	                                             "\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	                            19),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x10\x03\x00\x00\x00\x00\x00\x00\x00"
	                                             "\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	                            19),
	                0);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x16\x01\x00"
	                                             "a",
	                            4),
	                STORE_E_TYPE);
	/* A share-mark: origin 0, and a group key that is no filter. */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x15\x00\x00\x00\x00\x00\x00\x00\x00"
	                                             "\x01\x00\x03\x00"
	                                             "$/#",
	                            16),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x15\x05\x00\x00\x00\x00\x00\x00\x00"
	                                             "\x01\x00\x03\x00"
	                                             "a#b",
	                            16),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x15\x05\x00\x00\x00\x00\x00\x00\x00"
	                                             "\x01\x00\x03\x00"
	                                             "a/#",
	                            16),
	                0);
	/* A pad's payload is anything, of any length. */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x12\x01\x00"
	                                             "a",
	                            4),
	                0);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x12", 1), 0);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\xff", 1), STORE_E_TYPE);
	/* inbound-add: u16 packet id 0 */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x0b\x00\x00\x01\x00"
	                                             "c",
	                            6),
	                STORE_E_MALFORMED);
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x0b\x01\x00\x01\x00"
	                                             "c",
	                            6),
	                0);
	/* inbound-add with an empty client id */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x0b\x01\x00\x00\x00", 5), STORE_E_MALFORMED);
	/* session-put: expiry, interval, protocol 7, client */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x03\0\0\0\0\0\0\0\0\0\0\0\0\x07\x01\x00"
	                                             "c",
	                            17),
	                STORE_E_MALFORMED);
	/* retain-set whose payload blob length (u32) claims more than the body holds */
	CU_ASSERT_EQUAL(decode_body((const uint8_t *)"\x01\0\0\0\0\0\0\0\0\x01\x01\x00"
	                                             "t\x00\x00\x00\x00\xff\xff\xff\x7f",
	                            21),
	                STORE_E_MALFORMED);
}

static void test_lengths_bounded(void)
{
	uint8_t rec[16] = {0};
	struct store_rec r;
	size_t used;
	const uint32_t lens[] = {0, STORE_BODY_MAX + 1, UINT32_MAX, 0x80000000u};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int j = 0; j < 4; j++)
			rec[j] = (uint8_t)(lens[i] >> (8 * j));
		CU_ASSERT_EQUAL(store_rec_decode(rec, sizeof(rec), &r, &used), STORE_E_TOO_LONG);
	}
	/* Within the bound but beyond the bytes present: torn, never read. */
	rec[0] = 0;
	rec[1] = 0;
	rec[2] = 0;
	rec[3] = 0x10;
	CU_ASSERT_EQUAL(store_rec_decode(rec, sizeof(rec), &r, &used), STORE_E_TORN);
	rec[3] = 0;
	rec[0] = 9;
	CU_ASSERT_EQUAL(store_rec_decode(rec, sizeof(rec), &r, &used), STORE_E_TORN);
	rec[0] = 8;
	CU_ASSERT_EQUAL(store_rec_decode(rec, sizeof(rec), &r, &used), STORE_E_CRC);
	for (size_t n = 0; n < STORE_REC_HDR_LEN; n++)
		CU_ASSERT_EQUAL(store_rec_decode(rec, n, &r, &used), STORE_E_TORN);
}

/* A header with fields patched and its CRC made right again. */
static void patch_header(uint8_t *h, size_t off, uint64_t v, unsigned n)
{
	uint32_t crc;

	for (unsigned i = 0; i < n; i++)
		h[off + i] = (uint8_t)(v >> (8 * i));
	crc = store_crc32c(0, h, STORE_HEADER_LEN - 4);
	for (unsigned i = 0; i < 4; i++)
		h[28 + i] = (uint8_t)(crc >> (8 * i));
}

static void test_header(void)
{
	struct store_header in = {.worker = 3, .workers = 8, .segment = 0x1122334455667788ull}, out;
	struct store_buf b = {0};
	struct store_seg seg;
	uint8_t h[STORE_HEADER_LEN];
	size_t hl = 0;

	CU_ASSERT_EQUAL_FATAL(store_header_encode(&b, &in), 0);
	CU_ASSERT_EQUAL_FATAL(b.len, STORE_HEADER_LEN);
	CU_ASSERT_EQUAL(memcmp(b.data, store_magic, STORE_MAGIC_LEN), 0);
	CU_ASSERT_EQUAL(store_header_decode(b.data, b.len, &out, &hl), 0);
	CU_ASSERT_EQUAL(hl, STORE_HEADER_LEN);
	CU_ASSERT_EQUAL(out.version, STORE_VERSION);
	CU_ASSERT_EQUAL(out.worker, 3);
	CU_ASSERT_EQUAL(out.workers, 8);
	CU_ASSERT_EQUAL(out.segment, in.segment);
	CU_ASSERT_EQUAL(out.flags, 0);

	CU_ASSERT_EQUAL(store_seg_open(&seg, b.data, b.len, 8), 0);
	CU_ASSERT_EQUAL(store_seg_open(&seg, b.data, b.len, 0), 0);
	CU_ASSERT_EQUAL(store_seg_open(&seg, b.data, b.len, 4), STORE_E_FOREIGN);
	{
		struct store_rec r;

		CU_ASSERT_EQUAL(store_seg_next(&seg, &r), 0);
		CU_ASSERT_EQUAL(seg.records, 0);
	}
	CU_ASSERT_EQUAL(store_seg_open(&seg, b.data, b.len - 1, 8), STORE_E_NOT_LOG);
	CU_ASSERT_EQUAL(store_seg_open(&seg, (const uint8_t *)"# mosquitto.db", 14, 8),
	                STORE_E_NOT_LOG);

	memcpy(h, b.data, sizeof(h));
	h[0] = 0;
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_NOT_LOG);
	memcpy(h, b.data, sizeof(h));
	h[20] ^= 1; /* segment number, CRC not fixed */
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_HEADER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 8, STORE_VERSION + 1, 2);
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_NEWER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 8, 0, 2);
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_HEADER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 12, 1u << 31, 4);
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_NEWER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 16, 8, 2); /* worker 8 of 8 */
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_HEADER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 18, 0, 2); /* 0 workers */
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_HEADER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 10, 64, 2); /* a header longer than the file */
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_HEADER);
	memcpy(h, b.data, sizeof(h));
	patch_header(h, 10, 16, 2); /* shorter than version 1's */
	CU_ASSERT_EQUAL(store_header_decode(h, sizeof(h), &out, &hl), STORE_E_HEADER);

	/* A newer version with a longer header is "newer", not "corrupt". */
	{
		uint8_t h2[48] = {0};
		uint32_t crc;

		memcpy(h2, b.data, 28);
		h2[8] = STORE_VERSION + 1;
		h2[10] = 48;
		crc = store_crc32c(0, h2, 44);
		for (int i = 0; i < 4; i++)
			h2[44 + i] = (uint8_t)(crc >> (8 * i));
		CU_ASSERT_EQUAL(store_header_decode(h2, sizeof(h2), &out, &hl), STORE_E_NEWER);
	}
	in.worker = 8;
	CU_ASSERT_EQUAL(store_header_encode(&b, &in), STORE_E_FIELD);
	in.workers = 0;
	in.worker = 0;
	CU_ASSERT_EQUAL(store_header_encode(&b, &in), STORE_E_FIELD);
	CU_ASSERT_EQUAL(b.len, STORE_HEADER_LEN);
	store_buf_free(&b);
}

static void test_strerror_and_names(void)
{
	for (int e = STORE_E__MIN; e <= 0; e++)
		CU_ASSERT_PTR_NOT_NULL(store_strerror(e));
	CU_ASSERT_STRING_EQUAL(store_strerror(1), "unknown store error");
	CU_ASSERT_STRING_EQUAL(store_strerror(STORE_E__MIN - 1), "unknown store error");
	CU_ASSERT_STRING_EQUAL(store_rec_type_name(STORE_REC_WILL_CLEAR), "will-clear");
	CU_ASSERT_STRING_EQUAL(store_rec_type_name(0), "unknown");
	CU_ASSERT_STRING_EQUAL(store_rec_type_name(STORE_REC__MAX + 1), "unknown");
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"CRC32C check values", test_crc32c},
	        {"round trip of every record type", test_round_trip_every_type},
	        {"the encoder's views are the decoder's", test_encode_views},
	        {"fields a type does not carry are ignored", test_other_fields_ignored},
	        {"a 3 MiB payload round trip", test_large_payload},
	        {"encode refuses out-of-range fields", test_encode_refuses_bad_fields},
	        {"decode refuses malformed payloads with a right CRC",
	         test_decode_refuses_malformed},
	        {"lengths are bounded and never trusted", test_lengths_bounded},
	        {"header round trip and refusals", test_header},
	        {"strerror and type names", test_strerror_and_names},
	        {NULL, NULL},
	};

	tu_add_suite("store record", tests);
	return tu_run_registry();
}
