/*
 * Unit tests of the codec's smaller pieces (src/codec/codec_encode.c, src/codec/codec_decode.c,
 * src/codec/error.c): variable byte integers at every boundary, the PUBLISH head the broker writes
 * in front of a shared payload, the encoder's errors, error names and reason codes, and packet
 * names. The round trips are in test/test_codec.c, the shared helpers in test/codec_cases.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/codec.h"
#include "codec_cases.h"
#include "testutil.h"

/* --- variable byte integers and the PUBLISH head ----------------------------------------- */

static void test_varint_boundaries(void)
{
	static const struct {
		uint32_t value;
		uint8_t bytes[4];
		size_t n;
	} cases[] = {
	        {0, {0x00}, 1},
	        {127, {0x7F}, 1},
	        {128, {0x80, 0x01}, 2},
	        {16383, {0xFF, 0x7F}, 2},
	        {16384, {0x80, 0x80, 0x01}, 3},
	        {2097151, {0xFF, 0xFF, 0x7F}, 3},
	        {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
	        {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
	};
	struct tu_guard g = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[8] = {0};
		uint32_t v = 0xDEADBEEF;

		CU_ASSERT_EQUAL(st_varint_size(cases[i].value), cases[i].n);
		CU_ASSERT_EQUAL(st_varint_encode(out, cases[i].value), cases[i].n);
		CU_ASSERT(memcmp(out, cases[i].bytes, cases[i].n) == 0);
		const uint8_t *copy = tu_guard_copy(&g, cases[i].bytes, cases[i].n);

		CU_ASSERT_EQUAL(st_varint_decode(copy, cases[i].n, &v), (int)cases[i].n);
		CU_ASSERT_EQUAL(v, cases[i].value);
		for (size_t k = 0; k < cases[i].n; k++) {
			copy = tu_guard_copy(&g, cases[i].bytes, k);
			CU_ASSERT_EQUAL(st_varint_decode(copy, k, &v), ST_ERR_NEED_MORE);
		}
		/* As a remaining length: the header is parsed, the body is awaited. */
		uint8_t hdr[5] = {0x30};
		struct st_fixed_header fh;
		struct st_packet p;
		size_t used;

		memcpy(hdr + 1, cases[i].bytes, cases[i].n);
		copy = tu_guard_copy(&g, hdr, 1 + cases[i].n);
		CU_ASSERT_EQUAL(st_decode_fixed_header(copy, 1 + cases[i].n, 0, &fh), ST_OK);
		CU_ASSERT_EQUAL(fh.header_len, 1 + cases[i].n);
		CU_ASSERT_EQUAL(fh.remaining_len, cases[i].value);
		CU_ASSERT_EQUAL(st_decode_packet(copy, 1 + cases[i].n, 4, 0, &p, &used),
		                cases[i].value ? ST_ERR_NEED_MORE : ST_ERR_LENGTH);
	}
	/* Beyond four bytes. */
	uint8_t out[8];
	uint32_t v;

	CU_ASSERT_EQUAL(st_varint_size(268435456u), 0);
	CU_ASSERT_EQUAL(st_varint_encode(out, 268435456u), 0);
	CU_ASSERT_EQUAL(st_varint_decode((const uint8_t[]){0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, 5, &v),
	                ST_ERR_REMLEN);
	CU_ASSERT_EQUAL(st_varint_decode((const uint8_t[]){0x80, 0x80, 0x80, 0x80}, 4, &v),
	                ST_ERR_REMLEN);
	/* A non-minimal encoding is read (see st_varint_decode). */
	CU_ASSERT_EQUAL(st_varint_decode((const uint8_t[]){0x80, 0x00}, 2, &v), 2);
	CU_ASSERT_EQUAL(v, 0);
	tu_guard_release(&g);
}

/* The head plus what follows it is byte for byte the packet st_encode_packet writes. */
static void test_publish_head(void)
{
	static const uint8_t props[] = {0x02, 0x00, 0x00, 0x00, 0x3c};
	static uint8_t full[PKT_MAX];
	uint8_t head[ST_PUBLISH_HEAD_MAX + 64];
	const size_t sizes[] = {0, 16, 256, 20000};

	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		for (uint8_t qos = 0; qos <= 2; qos++) {
			for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
				struct st_packet p = {.type = ST_PUBLISH};

				p.publish.qos = qos;
				p.publish.retain = s & 1;
				p.publish.packet_id = qos ? 0x1234 : 0;
				p.publish.topic = B("sensors/temp/1");
				p.publish.props = BN(props, sizeof(props));
				p.publish.payload = BN(filler(sizes[s]), sizes[s]);
				int n = st_encode_packet(&p, level, full, sizeof(full));

				CU_ASSERT_FATAL(n > 0);
				uint32_t rest = (uint32_t)sizes[s];

				if (level == ST_MQTT_5)
					rest += 1 + sizeof(props);
				uint8_t flags = full[0] & 0x0F;
				size_t h = st_encode_publish_head(head, flags, p.publish.topic,
				                                  p.publish.packet_id, rest);

				CU_ASSERT_EQUAL(h + rest, (size_t)n);
				CU_ASSERT(memcmp(head, full, h) == 0);
			}
		}
	}
	CU_ASSERT_EQUAL(st_encode_publish_head(head, 0, B("t"), 0, ST_REMLEN_MAX), 0);
	CU_ASSERT_EQUAL(st_encode_publish_head(head, 0, B("t"), 0, ST_REMLEN_MAX - 3), 5 + 3);
}

static void test_encode_errors(void)
{
	static uint8_t big[70000];
	uint8_t out[64];
	struct st_packet p = {.type = ST_CONNECT};

	p.connect.client_id = BN(big, 65536); /* one byte over a string's limit */
	CU_ASSERT_EQUAL(st_packet_size(&p, 4), 0);
	CU_ASSERT_EQUAL(st_encode_packet(&p, 4, out, sizeof(out)), ST_ERR_LENGTH);
	p.connect.client_id = BN(big, 65535);
	CU_ASSERT_EQUAL(st_packet_size(&p, 4), 1 + 3 + 10 + 2 + 65535);

	p = (struct st_packet){.type = ST_AUTH};
	CU_ASSERT_EQUAL(st_packet_size(&p, 4), 0); /* no AUTH before MQTT 5 */
	CU_ASSERT_EQUAL(st_encode_packet(&p, 4, out, sizeof(out)), ST_ERR_LENGTH);
	p.type = 0;
	CU_ASSERT_EQUAL(st_encode_packet(&p, 5, out, sizeof(out)), ST_ERR_LENGTH);

	p = (struct st_packet){.type = ST_PUBLISH};
	p.publish.topic = B("a");
	p.publish.payload = BN(big, sizeof(big));
	CU_ASSERT_EQUAL(st_encode_packet(&p, 4, out, sizeof(out)), ST_ERR_NO_SPACE);
	p.publish.payload = BN(big, ST_REMLEN_MAX); /* size only: never written */
	CU_ASSERT_EQUAL(st_packet_size(&p, 4), 0);
	p.publish.payload = BN(big, ST_REMLEN_MAX - 3);
	CU_ASSERT_EQUAL(st_packet_size(&p, 4), 1 + 4 + (size_t)ST_REMLEN_MAX);
}

static void test_error_table(void)
{
	for (int e = ST_ERR__MIN; e <= 0; e++) {
		CU_ASSERT_PTR_NOT_NULL(st_strerror(e));
		CU_ASSERT(strlen(st_strerror(e)) > 0);
		for (int f = ST_ERR__MIN; f < e; f++)
			CU_ASSERT(strcmp(st_strerror(e), st_strerror(f)) != 0);
	}
	CU_ASSERT_STRING_EQUAL(st_strerror(1), "unknown error");
	CU_ASSERT_STRING_EQUAL(st_strerror(ST_ERR__MIN - 1), "unknown error");
	CU_ASSERT_EQUAL(st_err_reason_code(ST_OK), 0x00);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_LENGTH), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_REMLEN), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_UTF8), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_FLAGS), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_PACKET_ID), 0x82);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_NO_FILTERS), 0x82);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_PROTOCOL), 0x82);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_TOO_LARGE), 0x95);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_PROTOCOL_LEVEL), 0x84);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_CLIENT_ID), 0x85);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_FILTER), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_TOPIC), 0x90);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_LIMIT), 0x97);
	CU_ASSERT_EQUAL(st_err_reason_code(-1000), 0x80);
	/* Every decode error is an error reason code (0x80 and above). */
	for (int e = ST_ERR__MIN; e < 0; e++)
		CU_ASSERT(st_err_reason_code(e) >= 0x80);
}

static void test_packet_names(void)
{
	CU_ASSERT_STRING_EQUAL(st_packet_name(ST_PUBLISH), "PUBLISH");
	CU_ASSERT_STRING_EQUAL(st_packet_name(ST_CONNECT), "CONNECT");
	CU_ASSERT_STRING_EQUAL(st_packet_name(ST_UNSUBACK), "UNSUBACK");
	CU_ASSERT_STRING_EQUAL(st_packet_name(ST_AUTH), "AUTH");
	CU_ASSERT_STRING_EQUAL(st_packet_name(0), "RESERVED");
	CU_ASSERT_STRING_EQUAL(st_packet_name(16), "RESERVED");
	CU_ASSERT_STRING_EQUAL(st_packet_name(255), "RESERVED");
}

static const struct tu_test encode_tests[] = {
        {"varint boundaries", test_varint_boundaries},
        {"PUBLISH head", test_publish_head},
        {"encoder errors", test_encode_errors},
        {"error names and reason codes", test_error_table},
        {"packet names", test_packet_names},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("codec", encode_tests);
	return tu_run_registry();
}
