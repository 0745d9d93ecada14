/*
 * Unit tests of the MQTT 5 property parser (src/codec/props.c) and of the error codes it added:
 * table 2-4, value rules, strings, duplicates and truncations. The writer, the iterator's round
 * trips, golden packets and random mutations are in test/test_props_writer.c; the reference
 * model both use is in test/props_cases.h.
 *
 * The reference is written apart from the implementation: table 2-4 of MQTT 5.0 is copied as
 * text (identifier, type name, the "Packet / Will Properties" column), parsed into packet sets,
 * and every identifier 0..127 is tried on every packet against it. Values, duplicates and
 * truncations are checked for every property. Every parse and walk reads a guard-page copy, so
 * a read past the block faults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/props.h"
#include "props_cases.h"
#include "testutil.h"

/* CONNECT forbids Authentication Data without a method (3.1.2.11.10): a method to go first. */
static bool needs_method(uint8_t id, int ctx)
{
	return id == ST_PROP_AUTH_DATA && ctx == ST_PCTX_CONNECT;
}

static const struct exp_prop method_prop = {.id = ST_PROP_AUTH_METHOD, .s = "m"};

/* --- table 2-4 ---------------------------------------------------------------------------- */

static void test_spec_table(void)
{
	struct tu_guard g = {0};
	unsigned checked = 0;

	for (unsigned id = 0; id < 128; id++) {
		const struct spec_row *row = spec_row_of(id);
		unsigned mask = row ? spec_ctx_mask(row) : 0;

		for (int ctx = 0; ctx < NCTX; ctx++) {
			struct blk k = {.n = 0};
			struct exp_prop exp[2];
			size_t n = 0;
			struct st_props out;

			if (row == NULL) { /* an unknown identifier with a plausible value */
				put8(&k, (uint8_t)id);
				put8(&k, 0);
				CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ctx, &out),
				                ST_ERR_PROPERTY);
				continue;
			}
			if (needs_method((uint8_t)id, ctx))
				exp[n++] = method_prop;
			exp[n++] = sample((uint8_t)id, 1);
			for (size_t i = 0; i < n; i++)
				put_prop(&k, &exp[i]);
			int rc = parse_guarded(&g, k.b, k.n, ctx, &out);

			if (mask & (1u << ctx)) {
				/* Allowed: the value decodes as the spec's type says. */
				if (rc != ST_OK)
					fprintf(stderr, "\nid %u on %s: %s\n", id, ctx_names[ctx],
					        st_strerror(rc));
				check_block(&g, k.b, k.n, ctx, exp, n);
			} else {
				CU_ASSERT_EQUAL(rc, ST_ERR_PROPERTY_PACKET);
			}
			checked++;
		}
		/* The same identifier as a two-byte varint (non-minimal, or really >= 128). */
		uint8_t two[] = {(uint8_t)(0x80 | id), 0x00, 0x00, 0x00};
		uint8_t big[] = {(uint8_t)(0x80 | id), 0x01, 0x00, 0x00};
		struct st_props out;

		for (int ctx = 0; ctx < NCTX; ctx++) {
			CU_ASSERT_EQUAL(parse_guarded(&g, two, sizeof(two), ctx, &out),
			                ST_ERR_PROPERTY);
			CU_ASSERT_EQUAL(parse_guarded(&g, big, sizeof(big), ctx, &out),
			                ST_ERR_PROPERTY);
		}
	}
	CU_ASSERT_EQUAL(checked, NROWS * NCTX);
	/* The header's enum agrees with the identifiers of the table. */
	static const uint8_t ids[] = {
	        ST_PROP_PAYLOAD_FORMAT,
	        ST_PROP_MESSAGE_EXPIRY,
	        ST_PROP_CONTENT_TYPE,
	        ST_PROP_RESPONSE_TOPIC,
	        ST_PROP_CORRELATION_DATA,
	        ST_PROP_SUBSCRIPTION_ID,
	        ST_PROP_SESSION_EXPIRY,
	        ST_PROP_ASSIGNED_CLIENT_ID,
	        ST_PROP_SERVER_KEEP_ALIVE,
	        ST_PROP_AUTH_METHOD,
	        ST_PROP_AUTH_DATA,
	        ST_PROP_REQUEST_PROBLEM_INFO,
	        ST_PROP_WILL_DELAY,
	        ST_PROP_REQUEST_RESPONSE_INFO,
	        ST_PROP_RESPONSE_INFO,
	        ST_PROP_SERVER_REFERENCE,
	        ST_PROP_REASON_STRING,
	        ST_PROP_RECEIVE_MAXIMUM,
	        ST_PROP_TOPIC_ALIAS_MAXIMUM,
	        ST_PROP_TOPIC_ALIAS,
	        ST_PROP_MAXIMUM_QOS,
	        ST_PROP_RETAIN_AVAILABLE,
	        ST_PROP_USER_PROPERTY,
	        ST_PROP_MAXIMUM_PACKET_SIZE,
	        ST_PROP_WILDCARD_SUB_AVAILABLE,
	        ST_PROP_SUB_ID_AVAILABLE,
	        ST_PROP_SHARED_SUB_AVAILABLE,
	};
	CU_ASSERT_EQUAL(sizeof(ids), NROWS);
	for (size_t i = 0; i < NROWS; i++)
		CU_ASSERT_EQUAL(ids[i], spec_rows[i].id);
	tu_guard_release(&g);
}

/* --- value rules ------------------------------------------------------------------------- */

struct value_case {
	int ctx;          /* st_prop_ctx */
	const char *hex;  /* the block */
	int want;         /* expected result */
	const char *what; /* printed on a mismatch */
};

static const struct value_case value_cases[] = {
        /* 3.3.2.3.2, 3.1.3.2.3: Payload Format Indicator 0 or 1. */
        {ST_PCTX_PUBLISH, "0100", ST_OK, "payload format 0"},
        {ST_PCTX_PUBLISH, "0101", ST_OK, "payload format 1"},
        {ST_PCTX_PUBLISH, "0102", ST_ERR_PROPERTY_VALUE, "payload format 2"},
        {ST_PCTX_WILL, "01ff", ST_ERR_PROPERTY_VALUE, "will payload format 255"},
        /* 3.1.2.11.6, 3.1.2.11.7 */
        {ST_PCTX_CONNECT, "1700", ST_OK, "request problem info 0"},
        {ST_PCTX_CONNECT, "1702", ST_ERR_PROPERTY_VALUE, "request problem info 2"},
        {ST_PCTX_CONNECT, "1901", ST_OK, "request response info 1"},
        {ST_PCTX_CONNECT, "1902", ST_ERR_PROPERTY_VALUE, "request response info 2"},
        /* 3.2.2.3.4, .5, .11, .12, .13 */
        {ST_PCTX_CONNACK, "2400", ST_OK, "maximum qos 0"},
        {ST_PCTX_CONNACK, "2401", ST_OK, "maximum qos 1"},
        {ST_PCTX_CONNACK, "2402", ST_ERR_PROPERTY_VALUE, "maximum qos 2"},
        {ST_PCTX_CONNACK, "2502", ST_ERR_PROPERTY_VALUE, "retain available 2"},
        {ST_PCTX_CONNACK, "2500", ST_OK, "retain available 0"},
        {ST_PCTX_CONNACK, "2802", ST_ERR_PROPERTY_VALUE, "wildcard available 2"},
        {ST_PCTX_CONNACK, "2980", ST_ERR_PROPERTY_VALUE, "sub id available 128"},
        {ST_PCTX_CONNACK, "2a02", ST_ERR_PROPERTY_VALUE, "shared available 2"},
        {ST_PCTX_CONNACK, "2a00", ST_OK, "shared available 0"},
        /* 3.1.2.11.3, 3.2.2.3.3: Receive Maximum 0 */
        {ST_PCTX_CONNECT, "210000", ST_ERR_PROPERTY_VALUE, "receive maximum 0"},
        {ST_PCTX_CONNACK, "210000", ST_ERR_PROPERTY_VALUE, "connack receive maximum 0"},
        {ST_PCTX_CONNECT, "21ffff", ST_OK, "receive maximum 65535"},
        /* 3.1.2.11.4, 3.2.2.3.6: Maximum Packet Size 0 */
        {ST_PCTX_CONNECT, "2700000000", ST_ERR_PROPERTY_VALUE, "maximum packet size 0"},
        {ST_PCTX_CONNACK, "2700000000", ST_ERR_PROPERTY_VALUE, "connack max packet size 0"},
        {ST_PCTX_CONNECT, "27ffffffff", ST_OK, "maximum packet size 2^32-1"},
        {ST_PCTX_CONNECT, "220000", ST_OK, "topic alias maximum 0 is fine"},
        {ST_PCTX_CONNECT, "11ffffffff", ST_OK, "session never expires"},
        /* [MQTT-3.3.2-8] */
        {ST_PCTX_PUBLISH, "230000", ST_ERR_PROPERTY_VALUE, "topic alias 0"},
        {ST_PCTX_PUBLISH, "23ffff", ST_OK, "topic alias 65535"},
        /* 3.3.2.3.8, 3.8.2.1.2: Subscription Identifier 1..268,435,455 */
        {ST_PCTX_PUBLISH, "0b00", ST_ERR_PROPERTY_VALUE, "subscription id 0"},
        {ST_PCTX_SUBSCRIBE, "0b00", ST_ERR_PROPERTY_VALUE, "subscribe subscription id 0"},
        {ST_PCTX_SUBSCRIBE, "0b8000", ST_ERR_PROPERTY_VALUE, "subscription id 0, two bytes"},
        {ST_PCTX_SUBSCRIBE, "0b01", ST_OK, "subscription id 1"},
        {ST_PCTX_SUBSCRIBE, "0bffffff7f", ST_OK, "subscription id 268435455"},
        {ST_PCTX_SUBSCRIBE, "0bffffffff01", ST_ERR_PROPERTY, "subscription id of five bytes"},
        {ST_PCTX_PUBLISH, "0b8080808000", ST_ERR_PROPERTY, "five-byte zero"},
        /* [MQTT-3.3.2-13], [MQTT-3.3.2-14]: a Response Topic is a topic name */
        {ST_PCTX_PUBLISH, "080003612f62", ST_OK, "response topic a/b"},
        {ST_PCTX_PUBLISH, "0800012f", ST_OK, "response topic /"},
        {ST_PCTX_PUBLISH, "080003612f2b", ST_ERR_PROPERTY_VALUE, "response topic a/+"},
        {ST_PCTX_WILL, "08000123", ST_ERR_PROPERTY_VALUE, "will response topic #"},
        {ST_PCTX_PUBLISH, "080000", ST_ERR_PROPERTY_VALUE, "empty response topic"},
        {ST_PCTX_PUBLISH, "080002c080", ST_ERR_UTF8, "response topic overlong NUL"},
        {ST_PCTX_PUBLISH, "08000100", ST_ERR_UTF8_NUL, "response topic U+0000"},
        /* Strings: [MQTT-1.5.4-1], [MQTT-1.5.4-2]; empty is a valid string. */
        {ST_PCTX_PUBLISH, "030000", ST_OK, "empty content type"},
        {ST_PCTX_PUBLISH, "0300026100", ST_ERR_UTF8_NUL, "content type with U+0000"},
        {ST_PCTX_PUBLISH, "030003eda080", ST_ERR_UTF8, "content type with a surrogate"},
        {ST_PCTX_PUBLISH, "260000000180", ST_ERR_UTF8, "user property value 0x80"},
        {ST_PCTX_PUBLISH, "2600000000", ST_OK, "empty user property"},
        /* Binary Data is any bytes. */
        {ST_PCTX_PUBLISH, "09000400ff80c0", ST_OK, "correlation data"},
        {ST_PCTX_AUTH, "15000161160002ff00", ST_OK, "auth data"},
        /* 3.1.2.11.10: Authentication Data needs a method in CONNECT; elsewhere it is the
         * caller's (AUTH's method depends on its reason code). */
        {ST_PCTX_CONNECT, "16000100", ST_ERR_PROPERTY_VALUE, "auth data without method"},
        {ST_PCTX_CONNECT, "1600010015000161", ST_OK, "auth data before its method"},
        {ST_PCTX_CONNACK, "16000100", ST_OK, "connack auth data alone"},
        {ST_PCTX_AUTH, "16000100", ST_OK, "auth data alone in AUTH"},
        /* Identifiers: 0, undefined, multi-byte (section 2.2.2.2). */
        {ST_PCTX_PUBLISH, "00", ST_ERR_PROPERTY, "identifier 0"},
        {ST_PCTX_PUBLISH, "0400", ST_ERR_PROPERTY, "identifier 4"},
        {ST_PCTX_CONNACK, "2b00", ST_ERR_PROPERTY, "identifier 43"},
        {ST_PCTX_PUBLISH, "7f00", ST_ERR_PROPERTY, "identifier 127"},
        {ST_PCTX_PUBLISH, "810000", ST_ERR_PROPERTY, "identifier 1 in two bytes"},
        {ST_PCTX_PUBLISH, "0101 00", ST_ERR_PROPERTY, "a valid property, then a zero byte"},
        /* The first error in block order wins. */
        {ST_PCTX_PUBLISH, "0102 0101", ST_ERR_PROPERTY_VALUE, "bad value before duplicate"},
        {ST_PCTX_PUBLISH, "0101 0101 0102", ST_ERR_PROPERTY_DUP, "duplicate before bad value"},
        {ST_PCTX_PUBLISH, "1700 0101", ST_ERR_PROPERTY_PACKET, "foreign before valid"},
};

static void test_values(void)
{
	struct tu_guard g = {0};

	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *c = &value_cases[i];
		uint8_t b[64];
		size_t n = unhex(c->hex, b, sizeof(b));
		struct st_props out;
		int rc = parse_guarded(&g, b, n, c->ctx, &out);

		CU_ASSERT_EQUAL(rc, c->want);
		if (rc != c->want)
			fprintf(stderr, "\n%s: got %s, want %s\n", c->what, st_strerror(rc),
			        st_strerror(c->want));
	}
	tu_guard_release(&g);
}

/* Every string property, and both halves of a pair, on every packet allowing it. */
static void test_utf8_everywhere(void)
{
	struct tu_guard g = {0};
	static const struct {
		const char *s;
		size_t n;
		int want;
	} bad[] = {{"\xc0\x80", 2, ST_ERR_UTF8},
	           {"\xff", 1, ST_ERR_UTF8},
	           {"ab\xe2\x82", 4, ST_ERR_UTF8},
	           {"a\0b", 3, ST_ERR_UTF8_NUL}};

	for (size_t r = 0; r < NROWS; r++) {
		bool str = strcmp(spec_rows[r].type, "UTF-8 Encoded String") == 0;
		bool pair = strcmp(spec_rows[r].type, "UTF-8 String Pair") == 0;
		unsigned mask = spec_ctx_mask(&spec_rows[r]);

		if (!str && !pair)
			continue;
		for (int ctx = 0; ctx < NCTX; ctx++) {
			if (!(mask & (1u << ctx)))
				continue;
			for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
				for (int half = 0; half < (pair ? 2 : 1); half++) {
					struct blk k = {.n = 0};
					struct st_props out;

					put8(&k, spec_rows[r].id);
					if (half == 1)
						put_str(&k, "ok", 2);
					put_str(&k, bad[i].s, bad[i].n);
					if (pair && half == 0)
						put_str(&k, "ok", 2);
					CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ctx, &out),
					                bad[i].want);
				}
			}
		}
	}
	tu_guard_release(&g);
}

/* --- duplicates ---------------------------------------------------------------------------- */

static void test_duplicates(void)
{
	struct tu_guard g = {0};

	for (size_t r = 0; r < NROWS; r++) {
		uint8_t id = spec_rows[r].id;
		unsigned mask = spec_ctx_mask(&spec_rows[r]);

		for (int ctx = 0; ctx < NCTX; ctx++) {
			if (!(mask & (1u << ctx)))
				continue;
			/* Repeatable: User Property anywhere; Subscription Identifier in PUBLISH
			 * only (3.3.2.3.8), in SUBSCRIBE it is a Protocol Error (3.8.2.1.2). */
			bool repeats = id == ST_PROP_USER_PROPERTY ||
			               (id == ST_PROP_SUBSCRIPTION_ID && ctx == ST_PCTX_PUBLISH);

			for (int apart = 0; apart < 2; apart++) {
				struct exp_prop exp[4];
				struct blk k = {.n = 0};
				size_t n = 0;

				if (needs_method(id, ctx))
					exp[n++] = method_prop;
				exp[n++] = sample(id, 0);
				if (apart) /* another property between the two copies */
					exp[n++] =
					        (struct exp_prop){.id = 0x26, .s = "k", .s2 = "v"};
				exp[n++] = sample(id, 1);
				for (size_t i = 0; i < n; i++)
					put_prop(&k, &exp[i]);
				if (repeats) {
					check_block(&g, k.b, k.n, ctx, exp, n);
				} else {
					struct st_props out;

					CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ctx, &out),
					                ST_ERR_PROPERTY_DUP);
				}
			}
		}
	}
	tu_guard_release(&g);
}

/* --- truncation ---------------------------------------------------------------------------- */

static void test_truncation(void)
{
	struct tu_guard g = {0};

	/* Every property alone, with each of its sample values (varints of 1 to 4 bytes). */
	for (size_t r = 0; r < NROWS; r++) {
		uint8_t id = spec_rows[r].id;
		unsigned mask = spec_ctx_mask(&spec_rows[r]);

		for (unsigned v = 0; v < 4; v++) {
			int ctx = __builtin_ctz(mask);
			struct blk k = {.n = 0};
			size_t bounds[3] = {0}, nb = 1;

			if (needs_method(id, ctx)) {
				put_prop(&k, &method_prop);
				bounds[nb++] = k.n;
			}
			struct exp_prop e = sample(id, v);

			put_prop(&k, &e);
			bounds[nb++] = k.n;
			check_cuts(&g, k.b, k.n, ctx, bounds, nb);
		}
	}
	/* A block with everything a PUBLISH may carry, cut everywhere. */
	static const uint8_t publish_ids[] = {0x01, 0x02, 0x03, 0x08, 0x09,
	                                      0x0B, 0x0B, 0x23, 0x26, 0x26};
	struct blk k = {.n = 0};
	size_t bounds[16] = {0}, nb = 1;

	for (size_t i = 0; i < sizeof(publish_ids); i++) {
		struct exp_prop e = sample(publish_ids[i], (unsigned)i);

		put_prop(&k, &e);
		bounds[nb++] = k.n;
	}
	check_cuts(&g, k.b, k.n, ST_PCTX_PUBLISH, bounds, nb);
	tu_guard_release(&g);
}

/* --- reason names and error codes ----------------------------------------------------------- */

static void test_reason_names(void)
{
	static const uint8_t codes[] = {
	        0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x81, 0x82,
	        0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D,
	        0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
	        0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
	};
	const char *unknown = st_reason_name(0x03);
	unsigned named = 0;

	for (size_t i = 0; i < sizeof(codes); i++) {
		const char *name = st_reason_name(codes[i]);

		CU_ASSERT_PTR_NOT_NULL_FATAL(name);
		CU_ASSERT(strcmp(name, unknown) != 0);
		for (size_t j = 0; j < i; j++)
			CU_ASSERT(strcmp(name, st_reason_name(codes[j])) != 0);
	}
	for (unsigned c = 0; c < 256; c++)
		named += strcmp(st_reason_name((uint8_t)c), unknown) != 0;
	CU_ASSERT_EQUAL(named, sizeof(codes)); /* every other byte is unknown */
	CU_ASSERT_STRING_EQUAL(st_reason_name(ST_RC_NOT_AUTHORIZED), "Not authorized");
	CU_ASSERT_STRING_EQUAL(st_reason_name(ST_RC_QUOTA_EXCEEDED), "Quota exceeded");
	CU_ASSERT_STRING_EQUAL(st_reason_name(ST_RC_SUCCESS), "Success");
	CU_ASSERT_STRING_EQUAL(st_reason_name(ST_RC_MALFORMED), "Malformed Packet");
	CU_ASSERT_STRING_EQUAL(st_reason_name(ST_RC_TOPIC_ALIAS_INVALID), "Topic Alias invalid");
	CU_ASSERT_STRING_EQUAL(unknown, "Unknown reason code");
}

static void test_error_codes(void)
{
	static const struct {
		int err;
		int value;
		uint8_t reason;
	} added[] = {
	        {ST_ERR_PROPERTY_VALUE, -29, 0x82}, {ST_ERR_TOPIC_ALIAS, -30, 0x94},
	        {ST_ERR_RECEIVE_MAX, -31, 0x93},    {ST_ERR_AUTH_METHOD, -32, 0x8C},
	        {ST_ERR_RETAIN, -33, 0x9A},         {ST_ERR_QOS_UNSUPPORTED, -34, 0x9B},
	        {ST_ERR_PAYLOAD_FORMAT, -35, 0x99},
	};

	CU_ASSERT_EQUAL(ST_ERR__MIN, -35);
	for (size_t i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
		CU_ASSERT_EQUAL(added[i].err, added[i].value);
		CU_ASSERT_EQUAL(st_err_reason_code(added[i].err), added[i].reason);
		CU_ASSERT(strcmp(st_strerror(added[i].err), "unknown error") != 0);
	}
	/* What the parser returns maps to Malformed Packet or Protocol Error (section 2.2.2.2). */
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_PROPERTY), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_PROPERTY_PACKET), 0x81);
	CU_ASSERT_EQUAL(st_err_reason_code(ST_ERR_PROPERTY_DUP), 0x82);
	CU_ASSERT_STRING_EQUAL(st_strerror(ST_ERR__MIN - 1), "unknown error");
	CU_ASSERT_EQUAL(st_reason_name(st_err_reason_code(ST_ERR_RECEIVE_MAX)),
	                st_reason_name(ST_RC_RECEIVE_MAX_EXCEEDED));
}

static const struct tu_test props_tests[] = {
        {"table 2-4: every identifier on every packet", test_spec_table},
        {"value rules", test_values},
        {"UTF-8 in every string property", test_utf8_everywhere},
        {"duplicates", test_duplicates},
        {"every truncation of every property", test_truncation},
        {"reason code names", test_reason_names},
        {"new error codes", test_error_codes},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("props", props_tests);
	return tu_run_registry();
}
