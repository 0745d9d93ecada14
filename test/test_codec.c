/*
 * Unit tests of the packet codec (src/codec_decode.c, src/codec_encode.c, src/error.c).
 *
 * 1. Round trips: every packet type at levels 3, 4 and 5 is encoded, decoded from a guard-page
 *    copy and compared field by field; every truncation must ask for more bytes, a following
 *    packet must not be consumed, and re-encoding the decoded packet gives the same bytes.
 * 2. Golden bytes captured from real clients (mosquitto_pub/sub 2.0.11, paho 1.6.1) and from
 *    Mosquitto's replies decode and re-encode to the same bytes.
 * 3. Each malformed variant is its own test with its own expected error (the MALFORMED table).
 * 4. Variable byte integers at every boundary, the PUBLISH head, encoder errors, error names,
 *    and random mutations of valid packets (never a crash, never a read past the end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/codec.h"
#include "testutil.h"

#define PKT_MAX 70000 /* larger than any packet built here */

static struct st_bytes B(const char *s) {
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static struct st_bytes
BN(const void *p, size_t n) {
	return (struct st_bytes){p, (uint32_t)n};
}

static bool
bytes_eq(struct st_bytes a, struct st_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The decoder's view of an absent or empty field is any view of length 0. */
#define ASSERT_BYTES(a, b) CU_ASSERT(bytes_eq((a), (b)))
#define NONE               ((struct st_bytes){NULL, 0})

/* Decodes a guarded copy of in[0..len); prints the error on a mismatch with want. */
static int decode_guarded(struct tu_guard *g, const uint8_t *in, size_t len, uint8_t level,
                          struct st_packet *pkt, size_t *consumed)
{
	const uint8_t *copy = tu_guard_copy(g, in, len);

	return st_decode_packet(copy, len, level, 0, pkt, consumed);
}

/* --- field comparison ------------------------------------------------------------------- */

static void compare_connect(const struct st_connect *got, const struct st_connect *want,
                            uint8_t level)
{
	bool v5 = level == ST_MQTT_5;

	ASSERT_BYTES(got->protocol_name, B(level == ST_MQTT_31 ? "MQIsdp" : "MQTT"));
	CU_ASSERT_EQUAL(got->level, level);
	CU_ASSERT_EQUAL(got->clean_start, want->clean_start);
	CU_ASSERT_EQUAL(got->will_flag, want->will_flag);
	CU_ASSERT_EQUAL(got->will_qos, want->will_flag ? want->will_qos : 0);
	CU_ASSERT_EQUAL(got->will_retain, want->will_flag && want->will_retain);
	CU_ASSERT_EQUAL(got->username_flag, want->username_flag);
	CU_ASSERT_EQUAL(got->password_flag, want->password_flag);
	CU_ASSERT_EQUAL(got->keepalive_s, want->keepalive_s);
	ASSERT_BYTES(got->props, v5 ? want->props : NONE);
	ASSERT_BYTES(got->client_id, want->client_id);
	ASSERT_BYTES(got->will_props, v5 && want->will_flag ? want->will_props : NONE);
	ASSERT_BYTES(got->will_topic, want->will_flag ? want->will_topic : NONE);
	ASSERT_BYTES(got->will_payload, want->will_flag ? want->will_payload : NONE);
	ASSERT_BYTES(got->username, want->username_flag ? want->username : NONE);
	ASSERT_BYTES(got->password, want->password_flag ? want->password : NONE);
}

static void compare_subscribe(const struct st_packet *got, const struct st_packet *want,
                              uint8_t level)
{
	struct st_sub_iter it;
	struct st_sub_entry e;
	uint32_t i = 0;

	CU_ASSERT_EQUAL(got->subscribe.packet_id, want->subscribe.packet_id);
	ASSERT_BYTES(got->subscribe.props, level == ST_MQTT_5 ? want->subscribe.props : NONE);
	CU_ASSERT_EQUAL(got->subscribe.count, want->subscribe.count);
	CU_ASSERT_PTR_NULL(got->subscribe.entries);
	st_sub_iter_init(&it, got);
	while (st_sub_iter_next(&it, &e) && i < want->subscribe.count) {
		const struct st_sub_entry *w = &want->subscribe.entries[i++];

		ASSERT_BYTES(e.filter, w->filter);
		CU_ASSERT_EQUAL(e.options, got->type == ST_SUBSCRIBE ? w->options : 0);
	}
	CU_ASSERT_EQUAL(i, want->subscribe.count);
	CU_ASSERT_FALSE(st_sub_iter_next(&it, &e));
}

static void compare_packet(const struct st_packet *got, const struct st_packet *want, uint8_t level)
{
	bool v5 = level == ST_MQTT_5;

	CU_ASSERT_EQUAL_FATAL(got->type, want->type);
	switch (want->type) {
	case ST_CONNECT:
		compare_connect(&got->connect, &want->connect, level);
		break;
	case ST_CONNACK:
		CU_ASSERT_EQUAL(got->connack.session_present, want->connack.session_present);
		CU_ASSERT_EQUAL(got->connack.code, want->connack.code);
		ASSERT_BYTES(got->connack.props, v5 ? want->connack.props : NONE);
		break;
	case ST_PUBLISH:
		CU_ASSERT_EQUAL(got->publish.qos, want->publish.qos);
		CU_ASSERT_EQUAL(got->publish.dup, want->publish.dup);
		CU_ASSERT_EQUAL(got->publish.retain, want->publish.retain);
		CU_ASSERT_EQUAL(got->publish.packet_id,
		                want->publish.qos ? want->publish.packet_id : 0);
		ASSERT_BYTES(got->publish.topic, want->publish.topic);
		ASSERT_BYTES(got->publish.props, v5 ? want->publish.props : NONE);
		ASSERT_BYTES(got->publish.payload, want->publish.payload);
		break;
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		CU_ASSERT_EQUAL(got->ack.packet_id, want->ack.packet_id);
		CU_ASSERT_EQUAL(got->ack.reason, v5 ? want->ack.reason : 0);
		ASSERT_BYTES(got->ack.props, v5 ? want->ack.props : NONE);
		break;
	case ST_SUBSCRIBE:
	case ST_UNSUBSCRIBE:
		compare_subscribe(got, want, level);
		break;
	case ST_SUBACK:
	case ST_UNSUBACK:
		CU_ASSERT_EQUAL(got->suback.packet_id, want->suback.packet_id);
		ASSERT_BYTES(got->suback.props, v5 ? want->suback.props : NONE);
		ASSERT_BYTES(got->suback.codes,
		             v5 || want->type == ST_SUBACK ? want->suback.codes : NONE);
		break;
	case ST_DISCONNECT:
	case ST_AUTH:
		CU_ASSERT_EQUAL(got->disconnect.reason, v5 ? want->disconnect.reason : 0);
		ASSERT_BYTES(got->disconnect.props, v5 ? want->disconnect.props : NONE);
		break;
	default:
		break;
	}
}

/* --- round trips ------------------------------------------------------------------------ */

/* The decode-side checks of one encoded packet: whole, truncated, followed, split. */
static void check_decode_forms(const uint8_t *enc, size_t n, const struct st_packet *want,
                               uint8_t level)
{
	static uint8_t two[2 * PKT_MAX];
	struct tu_guard g = {0};
	struct st_packet got;
	struct st_fixed_header fh;
	size_t used = 0;

	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, enc, n, level, &got, &used), ST_OK);
	CU_ASSERT_EQUAL(used, n);
	compare_packet(&got, want, level);
	/* Every truncation asks for more [picohttpparser's rule]; the guard catches over-reads. */
	for (size_t k = 0; k < n; k++) {
		int rc = decode_guarded(&g, enc, k, level, &got, &used);

		CU_ASSERT_EQUAL(rc, ST_ERR_NEED_MORE);
		if (rc != ST_ERR_NEED_MORE)
			fprintf(stderr, "truncation %zu of %zu: %s\n", k, n, st_strerror(rc));
	}
	/* A second packet behind the first is left alone. */
	memcpy(two, enc, n);
	memcpy(two + n, enc, n);
	CU_ASSERT_EQUAL(decode_guarded(&g, two, 2 * n, level, &got, &used), ST_OK);
	CU_ASSERT_EQUAL(used, n);
	/* The two-step API gives the same result. */
	const uint8_t *copy = tu_guard_copy(&g, enc, n);

	CU_ASSERT_EQUAL_FATAL(st_decode_fixed_header(copy, n, 0, &fh), ST_OK);
	CU_ASSERT_EQUAL(fh.header_len + fh.remaining_len, n);
	CU_ASSERT_EQUAL(fh.type, want->type);
	CU_ASSERT_EQUAL(st_decode_body(&fh, copy + fh.header_len, level, &got), ST_OK);
	compare_packet(&got, want, level);
	/* max_packet: exactly n fits, n - 1 does not. */
	CU_ASSERT_EQUAL(st_decode_packet(copy, n, level, (uint32_t)n, &got, &used), ST_OK);
	CU_ASSERT_EQUAL(st_decode_packet(copy, n, level, (uint32_t)n - 1, &got, &used),
	                ST_ERR_TOO_LARGE);
	tu_guard_release(&g);
}

/* Encodes *pkt at level and runs every check; returns the encoded size. */
static size_t roundtrip(const struct st_packet *pkt, uint8_t level)
{
	static uint8_t enc[PKT_MAX], again[PKT_MAX];
	uint8_t zeros[PKT_MAX] = {0};
	struct tu_guard g = {0};
	struct st_packet got;
	size_t used;
	size_t n = st_packet_size(pkt, level);

	CU_ASSERT_FATAL(n > 0 && n <= PKT_MAX);
	/* The encoder writes exactly n bytes: encode into a buffer that ends at a guard page. */
	uint8_t *out = (uint8_t *)tu_guard_copy(&g, zeros, n);

	CU_ASSERT_EQUAL_FATAL(st_encode_packet(pkt, level, out, n), (int)n);
	memcpy(enc, out, n);
	/* One byte short is refused before anything is written. */
	memset(again, 0xA5, n);
	CU_ASSERT_EQUAL(st_encode_packet(pkt, level, again, n - 1), ST_ERR_NO_SPACE);
	CU_ASSERT_EQUAL(again[0], 0xA5);
	check_decode_forms(enc, n, pkt, level);
	/* Re-encoding what was decoded gives the same bytes. */
	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, enc, n, level, &got, &used), ST_OK);
	if (got.type != ST_SUBSCRIBE && got.type != ST_UNSUBSCRIBE) {
		CU_ASSERT_EQUAL(st_encode_packet(&got, level, again, sizeof(again)), (int)n);
		CU_ASSERT(memcmp(again, enc, n) == 0);
	}
	tu_guard_release(&g);
	return n;
}

static const uint8_t *filler(size_t n)
{
	static uint8_t buf[PKT_MAX];

	for (size_t i = 0; i < n && i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	return buf;
}

static void test_roundtrip_connect(void)
{
	static const uint8_t session_expiry[] = {0x11, 0x00, 0x00, 0x00, 0x64};
	static const uint8_t payload_format[] = {0x01, 0x01};
	char long_id[301];

	memset(long_id, 'x', 300);
	long_id[300] = '\0';
	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		struct st_packet p = {.type = ST_CONNECT};

		p.connect.clean_start = true;
		p.connect.keepalive_s = 60;
		p.connect.client_id = B("c");
		roundtrip(&p, level);

		p.connect.clean_start = false;
		p.connect.keepalive_s = 65535;
		p.connect.client_id = B("client-1");
		p.connect.props = BN(session_expiry, sizeof(session_expiry));
		p.connect.will_flag = true;
		p.connect.will_qos = 1;
		p.connect.will_retain = true;
		p.connect.will_props = BN(payload_format, sizeof(payload_format));
		p.connect.will_topic = B("w/t\xc3\xab");
		p.connect.will_payload = BN("b\0e", 3);
		p.connect.username_flag = p.connect.password_flag = true;
		p.connect.username = B("user");
		p.connect.password = BN("p\0ss", 4);
		roundtrip(&p, level);

		p.connect.client_id = B(""); /* empty identifier: the broker decides */
		p.connect.will_qos = 2;
		p.connect.will_retain = false;
		p.connect.will_topic = B(long_id);
		p.connect.will_payload = BN(filler(20000), 20000); /* three-byte remaining length */
		p.connect.username_flag = false;
		p.connect.password_flag = level == ST_MQTT_5; /* [MQTT-3.1.2-22] binds only 3.x */
		p.connect.password = B("pw");
		CU_ASSERT(roundtrip(&p, level) > 16384);
	}
}

static void test_roundtrip_connack(void)
{
	static const uint8_t props[] = {0x22, 0x00, 0x0a, 0x21, 0x00, 0x14};

	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		struct st_packet p = {.type = ST_CONNACK};

		roundtrip(&p, level);
		p.connack.session_present = true;
		p.connack.props = BN(props, sizeof(props));
		roundtrip(&p, level);
		p.connack.session_present = false;
		p.connack.code = level == ST_MQTT_5 ? 0x87 : ST_CONNACK_NOT_AUTHORIZED;
		roundtrip(&p, level);
	}
}

static void test_roundtrip_publish(void)
{
	static const uint8_t expiry[] = {0x02, 0x00, 0x00, 0x00, 0x3c};
	static const uint8_t alias[] = {0x23, 0x00, 0x05};
	char topic[201];

	memset(topic, 'a', 200);
	topic[100] = '/';
	topic[200] = '\0';
	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		struct st_packet p = {.type = ST_PUBLISH};

		p.publish.topic = B("a/b");
		p.publish.payload = B("hello");
		roundtrip(&p, level);

		p.publish.qos = 1;
		p.publish.dup = p.publish.retain = true;
		p.publish.packet_id = 7;
		p.publish.topic = B("sensors/temp/1");
		p.publish.payload = BN(filler(256), 256);
		p.publish.props = BN(expiry, sizeof(expiry));
		roundtrip(&p, level);

		p.publish.qos = 2;
		p.publish.dup = false;
		p.publish.packet_id = 65535;
		p.publish.topic = B("t\xc3\xabst/\xe2\x82\xac/\xf0\x9f\x98\x80");
		p.publish.payload = NONE;
		roundtrip(&p, level);

		p.publish.qos = 0;
		p.publish.retain = false;
		p.publish.topic = B(topic);
		p.publish.payload = BN(filler(20000), 20000);
		roundtrip(&p, level);

		if (level == ST_MQTT_5) { /* an empty topic with a Topic Alias */
			p.publish.topic = B("");
			p.publish.props = BN(alias, sizeof(alias));
			roundtrip(&p, level);
		}
	}
}

static void test_roundtrip_acks(void)
{
	static const uint8_t reason_string[] = {0x1F, 0x00, 0x02, 'h', 'i'};

	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		for (uint8_t type = ST_PUBACK; type <= ST_PUBCOMP; type++) {
			struct st_packet p = {.type = type};
			uint8_t reason = type <= ST_PUBREC ? 0x10 : 0x92;

			p.ack.packet_id = 1;
			CU_ASSERT_EQUAL(roundtrip(&p, level), 4);
			p.ack.packet_id = 0xFFFF;
			p.ack.reason = reason;
			CU_ASSERT_EQUAL(roundtrip(&p, level), level == ST_MQTT_5 ? 5 : 4);
			p.ack.reason = 0;
			p.ack.props = BN(reason_string, sizeof(reason_string));
			roundtrip(&p, level);
			p.ack.reason = reason;
			roundtrip(&p, level);
		}
	}
}

static void test_roundtrip_subscribe(void)
{
	static const uint8_t sub_id[] = {0x0B, 0x07};
	const struct st_sub_entry one[] = {{B("a/+"), 1}};
	const struct st_sub_entry three[] = {
	        {B("#"), 0}, {B("sport/tennis/+"), 1}, {B("$SYS/#"), 2}, {B("t\xc3\xabst"), 1}};
	const struct st_sub_entry v5opts[] = {{B("s/+/t"), 0x2E}, {B("x"), 0x1D}, {B("/"), 0x0C}};

	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		for (uint8_t type = ST_SUBSCRIBE; type <= ST_UNSUBSCRIBE; type += 2) {
			struct st_packet p = {.type = type};

			p.subscribe.packet_id = 1;
			p.subscribe.count = 1;
			p.subscribe.entries = one;
			roundtrip(&p, level);
			p.subscribe.packet_id = 0xFFFF;
			p.subscribe.count = 4;
			p.subscribe.entries = three;
			p.subscribe.props = BN(sub_id, sizeof(sub_id));
			roundtrip(&p, level);
			if (level == ST_MQTT_5 || type == ST_UNSUBSCRIBE) {
				p.subscribe.count = 3;
				p.subscribe.entries = v5opts;
				roundtrip(&p, level);
			}
		}
	}
}

static void test_roundtrip_suback(void)
{
	static const uint8_t v3codes[] = {0x00, 0x01, 0x02, 0x80};
	static const uint8_t v5codes[] = {0x00, 0x87, 0x8F, 0xA2, 0x02};
	static const uint8_t unsub_codes[] = {0x00, 0x11, 0x8F};
	static const uint8_t props[] = {0x1F, 0x00, 0x01, 'x'};

	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		struct st_packet p = {.type = ST_SUBACK};

		p.suback.packet_id = 1;
		p.suback.codes = BN(v3codes, 1);
		roundtrip(&p, level);
		p.suback.codes = BN(v3codes, sizeof(v3codes));
		roundtrip(&p, level);
		if (level == ST_MQTT_5) {
			p.suback.codes = BN(v5codes, sizeof(v5codes));
			p.suback.props = BN(props, sizeof(props));
			roundtrip(&p, level);
		}
		p.type = ST_UNSUBACK;
		p.suback.props = NONE;
		p.suback.codes = BN(unsub_codes, 1);
		CU_ASSERT_EQUAL(roundtrip(&p, level), level == ST_MQTT_5 ? 6 : 4);
		p.suback.codes = BN(unsub_codes, sizeof(unsub_codes));
		p.suback.props = BN(props, sizeof(props));
		roundtrip(&p, level);
	}
}

static void test_roundtrip_ping_disconnect_auth(void)
{
	static const uint8_t expiry[] = {0x11, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t method[] = {0x15, 0x00, 0x03, 'a', 'b', 'c'};

	for (uint8_t level = ST_MQTT_31; level <= ST_MQTT_5; level++) {
		struct st_packet p = {.type = ST_PINGREQ};

		CU_ASSERT_EQUAL(roundtrip(&p, level), 2);
		p.type = ST_PINGRESP;
		CU_ASSERT_EQUAL(roundtrip(&p, level), 2);
		p.type = ST_DISCONNECT;
		CU_ASSERT_EQUAL(roundtrip(&p, level), 2);
		if (level != ST_MQTT_5)
			continue;
		p.disconnect.reason = 0x04; /* with will message: remaining length 1 */
		CU_ASSERT_EQUAL(roundtrip(&p, level), 3);
		p.disconnect.reason = 0x8E;
		p.disconnect.props = BN(expiry, sizeof(expiry));
		roundtrip(&p, level);
		p.disconnect.reason = 0;
		roundtrip(&p, level);

		p = (struct st_packet){.type = ST_AUTH};
		CU_ASSERT_EQUAL(roundtrip(&p, level), 2);
		p.disconnect.reason = 0x18;
		CU_ASSERT_EQUAL(roundtrip(&p, level), 4); /* reason, then property length 0 */
		p.disconnect.props = BN(method, sizeof(method));
		roundtrip(&p, level);
		p.disconnect.reason = 0x19;
		roundtrip(&p, level);
	}
}

/* --- golden bytes from real clients and Mosquitto ---------------------------------------- */

struct golden {
	uint8_t level; /* connection level to decode at */
	const char *hex;
};

static const struct golden goldens[] = {
        /* mosquitto_pub -V mqttv31 -u user -P pass --will-* -q 1 */
        {3,
         "102900064d514973647003ee003c000570756233310003772f740003627965000475736572000470617373"},
        {3, "320c0003612f62000168656c6c6f"},
        {3, "e000"},
        /* mosquitto_sub -V mqttv31 (SUBSCRIBE with QoS 1 in its fixed header, as 3.1 said) */
        {3, "101300064d51497364700302003c00057375623331"},
        {3, "820800010003612f6201"},
        /* mosquitto_pub/sub -V mqttv311 */
        {4, "101200044d5154540402001e0006707562333131"},
        {4, "3316000e73656e736f72732f74656d702f31000132312e35"},
        {4, "82180001000f73706f72742f2b2f706c61796572310200012302"},
        /* mosquitto_pub/sub -V mqttv5 with -D properties */
        {5, "101c00044d5154540582003c081100000064210014000470756235000175"},
        {5, "32120003612f62000105020000003c68656c6c6f"},
        {5, "101400044d5154540502003c0321000a000473756235"},
        {5, "82130001020b070003612f23010005782f2b2f7901"},
        /* paho 1.6.1 MQTTv5: will QoS 2, SUBSCRIBE options 0x2e, UNSUBSCRIBE, PUBLISH QoS 2 */
        {5, "102300044d5154540516000f0000057061686f3500000877696c6c2fe282ac0004676f6e65"},
        {5, "820b0001000005732f2b2f742e"},
        {5, "a20d0002000005732f2b2f74000123"},
        {5, "3413000b74c3ab73742f746f706963000300000102"},
        /* Mosquitto 2.0.11's replies at 5.0 and 3.1.1 */
        {5, "200900000622000a210014"},
        {5, "900400010002"},
        {5, "b00400020011"},
        {5, "50020003"},
        {5, "70020003"},
        {5, "d000"},
        {4, "20020000"},
        {4, "9003000102"},
        {4, "b0020002"},
        /* Mosquitto's answer to CONNECT level 6: a 3.x CONNACK 0x01 */
        {5, "20020001"},
};

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; hex[0] && hex[1] && n < cap; hex += 2) {
		unsigned v;

		CU_ASSERT_FATAL(sscanf(hex, "%2x", &v) == 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void test_golden_bytes(void)
{
	struct tu_guard g = {0};
	uint8_t in[256], out[256];

	for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		size_t n = unhex(goldens[i].hex, in, sizeof(in));
		struct st_packet p;
		size_t used = 0;
		int rc = decode_guarded(&g, in, n, goldens[i].level, &p, &used);

		CU_ASSERT_EQUAL(rc, ST_OK);
		CU_ASSERT_EQUAL(used, n);
		if (rc != ST_OK) {
			fprintf(stderr, "golden %zu: %s\n", i, st_strerror(rc));
			continue;
		}
		for (size_t k = 0; k < n; k++)
			CU_ASSERT_EQUAL(decode_guarded(&g, in, k, goldens[i].level, &p, &used),
			                ST_ERR_NEED_MORE);
		if (p.type == ST_SUBSCRIBE ||
		    p.type == ST_UNSUBSCRIBE) /* entries come by iterator */
			continue;
		CU_ASSERT_EQUAL(decode_guarded(&g, in, n, goldens[i].level, &p, &used), ST_OK);
		uint8_t level = p.type == ST_CONNECT ? p.connect.level : goldens[i].level;

		/* The 3.x CONNACK in a 5.0 connection is accepted but not what we would send. */
		if (p.type == ST_CONNACK && level == ST_MQTT_5 && n == 4)
			continue;
		CU_ASSERT_EQUAL(st_encode_packet(&p, level, out, sizeof(out)), (int)n);
		CU_ASSERT(memcmp(in, out, n) == 0);
	}
	tu_guard_release(&g);
}

/* Fields of a few golden packets, checked by hand against the captures. */
static void test_golden_fields(void)
{
	struct tu_guard g = {0};
	uint8_t in[256];
	struct st_packet p;
	size_t used, n;

	n = unhex(goldens[0].hex, in, sizeof(in));
	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, in, n, ST_MQTT_311, &p, &used), ST_OK);
	CU_ASSERT_EQUAL(p.connect.level, ST_MQTT_31);
	CU_ASSERT(p.connect.will_flag && p.connect.will_retain && p.connect.will_qos == 1);
	ASSERT_BYTES(p.connect.will_topic, B("w/t"));
	ASSERT_BYTES(p.connect.will_payload, B("bye"));
	ASSERT_BYTES(p.connect.username, B("user"));
	ASSERT_BYTES(p.connect.password, B("pass"));
	ASSERT_BYTES(p.connect.client_id, B("pub31"));

	n = unhex(goldens[12].hex, in, sizeof(in));
	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, in, n, ST_MQTT_311, &p, &used), ST_OK);
	CU_ASSERT_EQUAL(p.connect.level, ST_MQTT_5);
	CU_ASSERT_EQUAL(p.connect.will_qos, 2);
	CU_ASSERT_EQUAL(p.connect.keepalive_s, 15);
	ASSERT_BYTES(p.connect.will_topic, B("will/\xe2\x82\xac"));
	CU_ASSERT_EQUAL(p.connect.props.len, 0);
	CU_ASSERT_PTR_NOT_NULL(p.connect.props.ptr); /* present, empty */

	n = unhex(goldens[13].hex, in, sizeof(in));
	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, in, n, ST_MQTT_5, &p, &used), ST_OK);
	struct st_sub_iter it;
	struct st_sub_entry e;

	st_sub_iter_init(&it, &p);
	CU_ASSERT_FATAL(st_sub_iter_next(&it, &e));
	ASSERT_BYTES(e.filter, B("s/+/t"));
	CU_ASSERT_EQUAL(e.options & ST_SUBOPT_QOS_MASK, 2);
	CU_ASSERT(e.options & ST_SUBOPT_NO_LOCAL);
	CU_ASSERT(e.options & ST_SUBOPT_RETAIN_AS_PUB);
	CU_ASSERT_EQUAL((e.options & ST_SUBOPT_RETAIN_HANDLING) >> ST_SUBOPT_RETAIN_HANDLING_SHIFT,
	                2);
	CU_ASSERT_FALSE(st_sub_iter_next(&it, &e));

	n = unhex(goldens[9].hex, in, sizeof(in));
	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, in, n, ST_MQTT_5, &p, &used), ST_OK);
	static const uint8_t expiry[] = {0x02, 0x00, 0x00, 0x00, 0x3c};

	ASSERT_BYTES(p.publish.props, BN(expiry, sizeof(expiry)));
	ASSERT_BYTES(p.publish.payload, B("hello"));
	CU_ASSERT_EQUAL(p.publish.packet_id, 1);
	tu_guard_release(&g);
}

/* --- malformed packets: one test each ---------------------------------------------------- */

/* Writes first, the remaining length of body, then body; returns the packet's size. */
static size_t frame(uint8_t *out, uint8_t first, const uint8_t *body, size_t body_len)
{
	out[0] = first;
	size_t h = 1 + st_varint_encode(out + 1, (uint32_t)body_len);

	memcpy(out + h, body, body_len);
	return h + body_len;
}

/* in[0] is the first byte, in[1..] the body. */
static void expect_malformed(const uint8_t *in, size_t in_len, uint8_t level, int want,
                             const char *name)
{
	uint8_t pkt[512];
	struct tu_guard g = {0};
	struct st_packet p;
	struct st_fixed_header fh;
	size_t used = 0;
	size_t n = frame(pkt, in[0], in + 1, in_len - 1);
	int rc = decode_guarded(&g, pkt, n, level, &p, &used);

	CU_ASSERT_EQUAL(rc, want);
	if (rc != want)
		fprintf(stderr, "\n%s: got %d (%s), want %d (%s)\n", name, rc, st_strerror(rc),
		        want, st_strerror(want));
	/* The two-step API finds the same error. */
	const uint8_t *copy = tu_guard_copy(&g, pkt, n);

	CU_ASSERT_EQUAL_FATAL(st_decode_fixed_header(copy, n, 0, &fh), ST_OK);
	CU_ASSERT_EQUAL(st_decode_body(&fh, copy + fh.header_len, level, &p), want);
	/* No prefix decodes, and none reads past its end. */
	for (size_t k = 0; k < n; k++)
		CU_ASSERT_NOT_EQUAL(decode_guarded(&g, pkt, k, level, &p, &used), ST_OK);
	tu_guard_release(&g);
}

/* Building blocks of bodies. */
#define S1(c) 0x00, 0x01, c
#define V3(f) 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, (f), 0x00, 0x3C
#define V4(f) 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, (f), 0x00, 0x3C
#define V5(f) 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, (f), 0x00, 0x3C, 0x00
#define SPORT_TENNIS_HASH                                                                          \
	0x00, 0x0D, 's', 'p', 'o', 'r', 't', '/', 't', 'e', 'n', 'n', 'i', 's', '#'

/*
 * X(name, level, expected error, first byte, body...): the remaining length is the body's
 * length, so each entry is framed right and fails for its own reason only.
 */
// clang-format off
#define MALFORMED(X) \
	/* fixed-header flags [MQTT-2.2.2-1], [MQTT-2.2.2-2] */ \
	X(pubrel_flags_0, 4, ST_ERR_FLAGS, 0x60, 0x00, 0x01) \
	X(pubrel_flags_3_v5, 5, ST_ERR_FLAGS, 0x63, 0x00, 0x01) \
	X(subscribe_flags_0, 4, ST_ERR_FLAGS, 0x80, 0x00, 0x01, S1('a'), 0x00) \
	X(unsubscribe_flags_0, 4, ST_ERR_FLAGS, 0xA0, 0x00, 0x01, S1('a')) \
	X(unsubscribe_flags_3_v5, 5, ST_ERR_FLAGS, 0xA3, 0x00, 0x01, 0x00, S1('a')) \
	X(puback_flags_2, 4, ST_ERR_FLAGS, 0x42, 0x00, 0x01) \
	X(pubrec_flags_1, 4, ST_ERR_FLAGS, 0x51, 0x00, 0x01) \
	X(pubcomp_flags_8_v5, 5, ST_ERR_FLAGS, 0x78, 0x00, 0x01) \
	X(connect_flags_1, 4, ST_ERR_FLAGS, 0x11, V4(0x02), S1('c')) \
	X(connack_flags_4, 4, ST_ERR_FLAGS, 0x24, 0x00, 0x00) \
	X(suback_flags_2, 4, ST_ERR_FLAGS, 0x92, 0x00, 0x01, 0x00) \
	X(unsuback_flags_1, 4, ST_ERR_FLAGS, 0xB1, 0x00, 0x01) \
	X(pingreq_flags_1, 4, ST_ERR_FLAGS, 0xC1) \
	X(pingresp_flags_2, 5, ST_ERR_FLAGS, 0xD2) \
	X(disconnect_flags_1, 4, ST_ERR_FLAGS, 0xE1) \
	X(auth_flags_1, 5, ST_ERR_FLAGS, 0xF1) \
	/* packet types */ \
	X(type_0, 4, ST_ERR_TYPE, 0x00) \
	X(type_0_v5, 5, ST_ERR_TYPE, 0x00, 0x00) \
	X(auth_v4, 4, ST_ERR_TYPE, 0xF0) \
	X(auth_v3, 3, ST_ERR_TYPE, 0xF0) \
	/* PUBLISH */ \
	X(publish_qos3, 4, ST_ERR_QOS, 0x36, S1('a'), 0x00, 0x01) \
	X(publish_qos3_v3, 3, ST_ERR_QOS, 0x37, S1('a'), 0x00, 0x01) \
	X(publish_dup_qos0, 4, ST_ERR_FLAGS, 0x38, S1('a')) \
	X(publish_dup_qos0_v5, 5, ST_ERR_FLAGS, 0x39, S1('a'), 0x00) \
	X(publish_qos1_id_0, 4, ST_ERR_PACKET_ID, 0x32, S1('a'), 0x00, 0x00) \
	X(publish_qos2_id_0_v5, 5, ST_ERR_PACKET_ID, 0x34, S1('a'), 0x00, 0x00, 0x00) \
	X(publish_qos1_id_cut, 4, ST_ERR_LENGTH, 0x32, S1('a'), 0x00) \
	X(publish_topic_overrun, 4, ST_ERR_LENGTH, 0x30, 0x00, 0x05, 'a') \
	X(publish_one_byte, 4, ST_ERR_LENGTH, 0x30, 0x00) \
	X(publish_empty_body, 4, ST_ERR_LENGTH, 0x30) \
	X(publish_topic_empty_v4, 4, ST_ERR_TOPIC, 0x30, 0x00, 0x00, 'x') \
	X(publish_topic_empty_v3, 3, ST_ERR_TOPIC, 0x30, 0x00, 0x00) \
	X(publish_topic_plus, 4, ST_ERR_TOPIC, 0x30, 0x00, 0x03, 'a', '/', '+') \
	X(publish_topic_hash, 5, ST_ERR_TOPIC, 0x30, 0x00, 0x03, 'a', '/', '#', 0x00) \
	X(publish_topic_hash_word2, 4, ST_ERR_TOPIC, 0x30, 0x00, 0x0B, \
	  'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', '#') \
	X(publish_topic_plus_after_utf8, 4, ST_ERR_TOPIC, 0x30, 0x00, 0x04, 0xC3, 0xA9, '/', '+') \
	X(publish_topic_utf8, 4, ST_ERR_UTF8, 0x30, 0x00, 0x02, 0xC3, 0x28) \
	X(publish_topic_surrogate_v5, 5, ST_ERR_UTF8, 0x30, 0x00, 0x03, 0xED, 0xA0, 0x80, 0x00) \
	X(publish_topic_overlong_nul, 3, ST_ERR_UTF8, 0x30, 0x00, 0x03, 'a', 0xC0, 0x80) \
	X(publish_topic_nul, 4, ST_ERR_UTF8_NUL, 0x30, 0x00, 0x03, 'a', 0x00, 'b') \
	X(publish_topic_nul_word2, 4, ST_ERR_UTF8_NUL, 0x30, 0x00, 0x0C, \
	  'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 0x00, 'k', 'l') \
	X(publish_props_missing_v5, 5, ST_ERR_LENGTH, 0x30, S1('a')) \
	X(publish_props_overrun_v5, 5, ST_ERR_LENGTH, 0x30, S1('a'), 0x05, 0x01) \
	X(publish_props_varint_cut_v5, 5, ST_ERR_LENGTH, 0x30, S1('a'), 0x80) \
	X(publish_props_varint_5_v5, 5, ST_ERR_PROPERTY, 0x30, S1('a'), 0xFF, 0xFF, 0xFF, 0xFF, 0x01) \
	/* PUBACK, PUBREC, PUBREL, PUBCOMP */ \
	X(puback_len3_v4, 4, ST_ERR_LENGTH, 0x40, 0x00, 0x01, 0x00) \
	X(puback_len1_v4, 4, ST_ERR_LENGTH, 0x40, 0x00) \
	X(pubrec_len0_v3, 3, ST_ERR_LENGTH, 0x50) \
	X(pubcomp_len1_v5, 5, ST_ERR_LENGTH, 0x70, 0x00) \
	X(puback_id_0, 4, ST_ERR_PACKET_ID, 0x40, 0x00, 0x00) \
	X(pubrec_id_0_v5, 5, ST_ERR_PACKET_ID, 0x50, 0x00, 0x00) \
	X(pubrel_id_0, 4, ST_ERR_PACKET_ID, 0x62, 0x00, 0x00) \
	X(pubcomp_id_0_v3, 3, ST_ERR_PACKET_ID, 0x70, 0x00, 0x00) \
	X(puback_reason_v5, 5, ST_ERR_REASON, 0x40, 0x00, 0x01, 0x92) \
	X(pubrec_reason_v5, 5, ST_ERR_REASON, 0x50, 0x00, 0x01, 0x01, 0x00) \
	X(pubrel_reason_v5, 5, ST_ERR_REASON, 0x62, 0x00, 0x01, 0x10) \
	X(puback_props_overrun_v5, 5, ST_ERR_LENGTH, 0x40, 0x00, 0x01, 0x00, 0x05, 0x26) \
	X(puback_trailing_v5, 5, ST_ERR_LENGTH, 0x40, 0x00, 0x01, 0x00, 0x00, 0xAA) \
	X(puback_props_varint_5_v5, 5, ST_ERR_PROPERTY, 0x40, 0x00, 0x01, 0x00, \
	  0xFF, 0xFF, 0xFF, 0xFF, 0x01) \
	X(pubcomp_props_cut_v5, 5, ST_ERR_LENGTH, 0x70, 0x00, 0x01, 0x92, 0x80) \
	/* CONNECT */ \
	X(connect_reserved_bit, 4, ST_ERR_CONNECT_FLAGS, 0x10, V4(0x03), S1('c')) \
	X(connect_reserved_bit_v5, 5, ST_ERR_CONNECT_FLAGS, 0x10, V5(0x01), S1('c')) \
	X(connect_will_qos_no_will, 4, ST_ERR_CONNECT_FLAGS, 0x10, V4(0x0A), S1('c')) \
	X(connect_will_retain_no_will_v5, 5, ST_ERR_CONNECT_FLAGS, 0x10, V5(0x22), S1('c')) \
	X(connect_will_retain_no_will_v3, 3, ST_ERR_CONNECT_FLAGS, 0x10, V3(0x22), S1('c')) \
	X(connect_will_qos3, 4, ST_ERR_CONNECT_FLAGS, 0x10, V4(0x1E), S1('c'), S1('w'), 0x00, 0x00) \
	X(connect_password_no_user, 4, ST_ERR_CONNECT_FLAGS, 0x10, V4(0x42), S1('c'), S1('p')) \
	X(connect_password_no_user_v3, 3, ST_ERR_CONNECT_FLAGS, 0x10, V3(0x42), S1('c'), S1('p')) \
	X(connect_name_mqtx, 4, ST_ERR_PROTOCOL_NAME, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_name_lowercase, 4, ST_ERR_PROTOCOL_NAME, 0x10, \
	  0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_name_mqisd, 4, ST_ERR_PROTOCOL_NAME, 0x10, \
	  0x00, 0x05, 'M', 'Q', 'I', 's', 'd', 0x03, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_mqtt_level_3, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_mqtt_level_6, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_mqisdp_level_4, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_trailing_byte, 4, ST_ERR_LENGTH, 0x10, V4(0x02), S1('c'), 0xAA) \
	X(connect_no_client_id, 4, ST_ERR_LENGTH, 0x10, V4(0x02)) \
	X(connect_client_id_overrun, 4, ST_ERR_LENGTH, 0x10, V4(0x02), 0x00, 0x05, 'c') \
	X(connect_no_keepalive, 4, ST_ERR_LENGTH, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00) \
	X(connect_name_overrun, 4, ST_ERR_LENGTH, 0x10, 0x00, 0x09, 'M', 'Q', 'T', 'T') \
	X(connect_client_id_utf8, 4, ST_ERR_UTF8, 0x10, V4(0x02), 0x00, 0x02, 0xC0, 0x80) \
	X(connect_client_id_nul_v5, 5, ST_ERR_UTF8_NUL, 0x10, V5(0x02), 0x00, 0x01, 0x00) \
	X(connect_will_topic_utf8, 4, ST_ERR_UTF8, 0x10, V4(0x06), S1('c'), S1(0xFF), 0x00, 0x00) \
	X(connect_will_topic_wildcard, 4, ST_ERR_TOPIC, 0x10, V4(0x06), S1('c'), \
	  0x00, 0x03, 'a', '/', '#', 0x00, 0x00) \
	X(connect_will_topic_empty_v5, 5, ST_ERR_TOPIC, 0x10, V5(0x06), S1('c'), 0x00, \
	  0x00, 0x00, 0x00, 0x00) \
	X(connect_will_payload_missing, 4, ST_ERR_LENGTH, 0x10, V4(0x06), S1('c'), S1('w')) \
	X(connect_will_props_overrun_v5, 5, ST_ERR_LENGTH, 0x10, V5(0x06), S1('c'), 0x05) \
	X(connect_props_overrun_v5, 5, ST_ERR_LENGTH, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C, 0x09, 0x11) \
	X(connect_username_utf8, 4, ST_ERR_UTF8, 0x10, V4(0x82), S1('c'), S1(0x80)) \
	X(connect_username_missing, 4, ST_ERR_LENGTH, 0x10, V4(0x82), S1('c')) \
	X(connect_password_missing, 5, ST_ERR_LENGTH, 0x10, V5(0xC2), S1('c'), S1('u')) \
	/* CONNACK */ \
	X(connack_len3_v4, 4, ST_ERR_LENGTH, 0x20, 0x00, 0x00, 0x00) \
	X(connack_len1_v4, 4, ST_ERR_LENGTH, 0x20, 0x00) \
	X(connack_len1_v5, 5, ST_ERR_LENGTH, 0x20, 0x00) \
	X(connack_reserved_flags_v4, 4, ST_ERR_FLAGS, 0x20, 0x02, 0x00) \
	X(connack_reserved_flags_v5, 5, ST_ERR_FLAGS, 0x20, 0x80, 0x00, 0x00) \
	X(connack_reason_v5, 5, ST_ERR_REASON, 0x20, 0x00, 0x01, 0x00) \
	X(connack_props_overrun_v5, 5, ST_ERR_LENGTH, 0x20, 0x00, 0x00, 0x03, 0x21) \
	X(connack_trailing_v5, 5, ST_ERR_LENGTH, 0x20, 0x00, 0x00, 0x00, 0xAA) \
	/* SUBSCRIBE */ \
	X(subscribe_no_filters, 4, ST_ERR_NO_FILTERS, 0x82, 0x00, 0x01) \
	X(subscribe_no_filters_v5, 5, ST_ERR_NO_FILTERS, 0x82, 0x00, 0x01, 0x00) \
	X(subscribe_id_0, 4, ST_ERR_PACKET_ID, 0x82, 0x00, 0x00, S1('a'), 0x00) \
	X(subscribe_id_cut, 4, ST_ERR_LENGTH, 0x82, 0x00) \
	X(subscribe_options_missing, 4, ST_ERR_LENGTH, 0x82, 0x00, 0x01, S1('a')) \
	X(subscribe_filter_overrun, 4, ST_ERR_LENGTH, 0x82, 0x00, 0x01, 0x00, 0x05, 'a', 0x00) \
	X(subscribe_props_overrun_v5, 5, ST_ERR_LENGTH, 0x82, 0x00, 0x01, 0x08, 0x0B) \
	X(subscribe_filter_utf8, 4, ST_ERR_UTF8, 0x82, 0x00, 0x01, 0x00, 0x02, 0xE0, 0x80, 0x00) \
	X(subscribe_filter_nul_v5, 5, ST_ERR_UTF8_NUL, 0x82, 0x00, 0x01, 0x00, S1(0x00), 0x00) \
	X(subscribe_filter_hash_in_level, 4, ST_ERR_FILTER, 0x82, 0x00, 0x01, SPORT_TENNIS_HASH, 0x00) \
	X(subscribe_filter_plus_in_level, 4, ST_ERR_FILTER, 0x82, 0x00, 0x01, \
	  0x00, 0x06, 's', 'p', 'o', 'r', 't', '+', 0x00) \
	X(subscribe_filter_hash_not_last, 5, ST_ERR_FILTER, 0x82, 0x00, 0x01, 0x00, \
	  0x00, 0x03, '#', '/', 'a', 0x00) \
	X(subscribe_filter_empty, 4, ST_ERR_FILTER, 0x82, 0x00, 0x01, 0x00, 0x00, 0x00) \
	X(subscribe_second_filter_bad, 3, ST_ERR_FILTER, 0x82, 0x00, 0x01, S1('a'), 0x00, \
	  0x00, 0x02, 'a', '#', 0x00) \
	X(subscribe_options_bit2_v4, 4, ST_ERR_SUB_OPTIONS, 0x82, 0x00, 0x01, S1('a'), 0x04) \
	X(subscribe_options_bit7_v4, 4, ST_ERR_SUB_OPTIONS, 0x82, 0x00, 0x01, S1('a'), 0x80) \
	X(subscribe_options_bit4_v3, 3, ST_ERR_SUB_OPTIONS, 0x82, 0x00, 0x01, S1('a'), 0x11) \
	X(subscribe_qos3_v4, 4, ST_ERR_QOS, 0x82, 0x00, 0x01, S1('a'), 0x03) \
	X(subscribe_options_bit6_v5, 5, ST_ERR_SUB_OPTIONS, 0x82, 0x00, 0x01, 0x00, S1('a'), 0x40) \
	X(subscribe_retain_handling_3_v5, 5, ST_ERR_PROTOCOL, 0x82, 0x00, 0x01, 0x00, S1('a'), 0x31) \
	X(subscribe_qos3_v5, 5, ST_ERR_QOS, 0x82, 0x00, 0x01, 0x00, S1('a'), 0x2F) \
	/* UNSUBSCRIBE */ \
	X(unsubscribe_no_filters, 4, ST_ERR_NO_FILTERS, 0xA2, 0x00, 0x01) \
	X(unsubscribe_no_filters_v5, 5, ST_ERR_NO_FILTERS, 0xA2, 0x00, 0x01, 0x00) \
	X(unsubscribe_id_0, 4, ST_ERR_PACKET_ID, 0xA2, 0x00, 0x00, S1('a')) \
	X(unsubscribe_filter_bad, 4, ST_ERR_FILTER, 0xA2, 0x00, 0x01, 0x00, 0x02, 'a', '+') \
	X(unsubscribe_filter_utf8_v5, 5, ST_ERR_UTF8, 0xA2, 0x00, 0x01, 0x00, S1(0xFE)) \
	X(unsubscribe_filter_overrun, 4, ST_ERR_LENGTH, 0xA2, 0x00, 0x01, 0x00, 0x03, 'a') \
	/* SUBACK, UNSUBACK */ \
	X(suback_id_0, 4, ST_ERR_PACKET_ID, 0x90, 0x00, 0x00, 0x00) \
	X(suback_no_codes, 4, ST_ERR_LENGTH, 0x90, 0x00, 0x01) \
	X(suback_no_codes_v5, 5, ST_ERR_LENGTH, 0x90, 0x00, 0x01, 0x00) \
	X(suback_code_3_v4, 4, ST_ERR_REASON, 0x90, 0x00, 0x01, 0x03) \
	X(suback_code_11_v5, 5, ST_ERR_REASON, 0x90, 0x00, 0x01, 0x00, 0x00, 0x11) \
	X(suback_props_overrun_v5, 5, ST_ERR_LENGTH, 0x90, 0x00, 0x01, 0x04, 0x00) \
	X(unsuback_len3_v4, 4, ST_ERR_LENGTH, 0xB0, 0x00, 0x01, 0x00) \
	X(unsuback_id_0, 4, ST_ERR_PACKET_ID, 0xB0, 0x00, 0x00) \
	X(unsuback_no_codes_v5, 5, ST_ERR_LENGTH, 0xB0, 0x00, 0x01, 0x00) \
	X(unsuback_code_1_v5, 5, ST_ERR_REASON, 0xB0, 0x00, 0x01, 0x00, 0x01) \
	/* PINGREQ, PINGRESP, DISCONNECT, AUTH */ \
	X(pingreq_len1, 4, ST_ERR_LENGTH, 0xC0, 0x00) \
	X(pingresp_len2_v5, 5, ST_ERR_LENGTH, 0xD0, 0x00, 0x00) \
	X(disconnect_len1_v4, 4, ST_ERR_LENGTH, 0xE0, 0x00) \
	X(disconnect_reason_v5, 5, ST_ERR_REASON, 0xE0, 0x01) \
	X(disconnect_props_overrun_v5, 5, ST_ERR_LENGTH, 0xE0, 0x00, 0x05, 0x11) \
	X(disconnect_trailing_v5, 5, ST_ERR_LENGTH, 0xE0, 0x00, 0x00, 0xAA) \
	X(auth_len1_v5, 5, ST_ERR_LENGTH, 0xF0, 0x18) \
	X(auth_reason_v5, 5, ST_ERR_REASON, 0xF0, 0x01, 0x00) \
	X(auth_props_overrun_v5, 5, ST_ERR_LENGTH, 0xF0, 0x18, 0x03, 0x15)
// clang-format on

#define DEFINE_MALFORMED(name, level, err, ...)                                                    \
	static void name(void)                                                                     \
	{                                                                                          \
		static const uint8_t in[] = {__VA_ARGS__};                                         \
		expect_malformed(in, sizeof(in), level, err, #name);                               \
	}
MALFORMED(DEFINE_MALFORMED)

#define LIST_MALFORMED(name, level, err, ...) {#name, name},
static const struct tu_test malformed_tests[] = {MALFORMED(LIST_MALFORMED){NULL, NULL}};

/* --- decoder rules that are not errors, and early errors --------------------------------- */

/* Frames first + body and decodes it at level from a copy in g; *p borrows from g. */
static int decode_body_bytes(struct tu_guard *g, uint8_t level, uint8_t first, const uint8_t *body,
                             size_t body_len, struct st_packet *p)
{
	uint8_t pkt[512];
	size_t used;
	size_t n = frame(pkt, first, body, body_len);

	return decode_guarded(g, pkt, n, level, p, &used);
}

/* Needs a struct tu_guard g in scope. */
#define DECODE(level, first, p, ...)                                                               \
	decode_body_bytes(&g, level, first, (const uint8_t[]){__VA_ARGS__},                        \
	                  sizeof((const uint8_t[]){__VA_ARGS__}), p)

static void test_remaining_length_limits(void)
{
	static const uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
	static const uint8_t four_cont[] = {0x30, 0x80, 0x80, 0x80, 0x80};
	static const uint8_t three_cont[] = {0x30, 0x80, 0x80, 0x80};
	struct tu_guard g = {0};
	struct st_packet p;
	struct st_fixed_header fh;
	size_t used;

	CU_ASSERT_EQUAL(decode_guarded(&g, five, sizeof(five), 4, &p, &used), ST_ERR_REMLEN);
	/* The fourth byte's continuation bit is enough to know. */
	CU_ASSERT_EQUAL(decode_guarded(&g, four_cont, sizeof(four_cont), 4, &p, &used),
	                ST_ERR_REMLEN);
	CU_ASSERT_EQUAL(st_decode_fixed_header(tu_guard_copy(&g, four_cont, 5), 5, 0, &fh),
	                ST_ERR_REMLEN);
	CU_ASSERT_EQUAL(decode_guarded(&g, three_cont, sizeof(three_cont), 4, &p, &used),
	                ST_ERR_NEED_MORE);
	tu_guard_release(&g);
}

static void test_early_errors(void)
{
	static const uint8_t big[] = {0x30, 0x64}; /* remaining length 100, no body yet */
	static const uint8_t ok[] = {0x30, 0x08, 0x00, 0x03, 'a', '/', 'b', 'x', 'y', 'z'};
	struct tu_guard g = {0};
	struct st_packet p;
	size_t used;

	/* Too large is known from the fixed header alone. */
	CU_ASSERT_EQUAL(st_decode_packet(tu_guard_copy(&g, big, 2), 2, 4, 10, &p, &used),
	                ST_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(st_decode_packet(tu_guard_copy(&g, ok, 10), 10, 4, 10, &p, &used), ST_OK);
	CU_ASSERT_EQUAL(st_decode_packet(tu_guard_copy(&g, ok, 10), 10, 4, 9, &p, &used),
	                ST_ERR_TOO_LARGE);
	/* A bad first byte is known from the first byte alone. */
	CU_ASSERT_EQUAL(decode_guarded(&g, (const uint8_t[]){0x00}, 1, 4, &p, &used), ST_ERR_TYPE);
	CU_ASSERT_EQUAL(decode_guarded(&g, (const uint8_t[]){0x60}, 1, 4, &p, &used), ST_ERR_FLAGS);
	CU_ASSERT_EQUAL(decode_guarded(&g, (const uint8_t[]){0x36}, 1, 4, &p, &used), ST_ERR_QOS);
	CU_ASSERT_EQUAL(decode_guarded(&g, (const uint8_t[]){0xF0}, 1, 4, &p, &used), ST_ERR_TYPE);
	CU_ASSERT_EQUAL(decode_guarded(&g, (const uint8_t[]){0x30}, 1, 4, &p, &used),
	                ST_ERR_NEED_MORE);
	CU_ASSERT_EQUAL(decode_guarded(&g, NULL, 0, 4, &p, &used), ST_ERR_NEED_MORE);
	tu_guard_release(&g);
}

static void test_protocol_level_reported(void)
{
	struct tu_guard g = {0};
	struct st_packet p;

	CU_ASSERT_EQUAL(DECODE(4, 0x10, &p, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x3C,
	                       S1('c')),
	                ST_ERR_PROTOCOL_LEVEL);
	CU_ASSERT_EQUAL(p.connect.level, 6);
	ASSERT_BYTES(p.connect.protocol_name, B("MQTT"));
	CU_ASSERT_EQUAL(DECODE(4, 0x10, &p, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x05, 0x02,
	                       0x00, 0x3C, S1('c')),
	                ST_ERR_PROTOCOL_LEVEL);
	CU_ASSERT_EQUAL(p.connect.level, 5);
	ASSERT_BYTES(p.connect.protocol_name, B("MQIsdp"));
	/* The connection's level does not matter for a CONNECT: it carries its own. */
	CU_ASSERT_EQUAL(DECODE(3, 0x10, &p, V5(0x02), S1('c')), ST_OK);
	CU_ASSERT_EQUAL(p.connect.level, 5);
	tu_guard_release(&g);
}

/* MQTT 3.1 had DUP/QoS/RETAIN in every fixed header and no reserved CONNECT bit. */
static void test_level3_allowances(void)
{
	struct tu_guard g = {0};
	struct st_packet p;

	CU_ASSERT_EQUAL(DECODE(3, 0x8A, &p, 0x00, 0x01, S1('a'), 0x01), ST_OK); /* DUP, QoS 1 */
	CU_ASSERT_EQUAL(DECODE(4, 0x8A, &p, 0x00, 0x01, S1('a'), 0x01), ST_ERR_FLAGS);
	CU_ASSERT_EQUAL(DECODE(3, 0x42, &p, 0x00, 0x01), ST_OK);
	CU_ASSERT_EQUAL(DECODE(3, 0xA0, &p, 0x00, 0x01, S1('a')), ST_OK);
	CU_ASSERT_EQUAL(DECODE(3, 0x38, &p, S1('a')), ST_OK);    /* DUP on QoS 0 */
	CU_ASSERT_EQUAL(DECODE(3, 0x20, &p, 0x02, 0x00), ST_OK); /* CONNACK byte 1 unused */
	CU_ASSERT_EQUAL(DECODE(3, 0x12, &p, V3(0x03), S1('c')), ST_OK);
	CU_ASSERT_EQUAL(DECODE(4, 0x12, &p, V3(0x03), S1('c')), ST_OK); /* level from CONNECT */
	/* 3.1 clients may set the user name and password flags and send neither. */
	CU_ASSERT_EQUAL(DECODE(3, 0x10, &p, V3(0xC2), S1('c')), ST_OK);
	CU_ASSERT_FALSE(p.connect.username_flag);
	CU_ASSERT_FALSE(p.connect.password_flag);
	CU_ASSERT_EQUAL(DECODE(3, 0x10, &p, V3(0xC2), S1('c'), S1('u')), ST_OK);
	CU_ASSERT_TRUE(p.connect.username_flag);
	CU_ASSERT_FALSE(p.connect.password_flag);
	ASSERT_BYTES(p.connect.username, B("u"));
	tu_guard_release(&g);
}

static void test_v5_allowances(void)
{
	struct tu_guard g = {0};
	struct st_packet p;

	CU_ASSERT_EQUAL(DECODE(5, 0x30, &p, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'x'), ST_OK);
	CU_ASSERT_EQUAL(p.publish.topic.len, 0); /* Topic Alias: the broker resolves it */
	ASSERT_BYTES(p.publish.payload, B("x"));
	CU_ASSERT_EQUAL(DECODE(5, 0x10, &p, V5(0x42), S1('c'), S1('p')), ST_OK);
	CU_ASSERT(p.connect.password_flag && !p.connect.username_flag);
	CU_ASSERT_EQUAL(DECODE(5, 0x20, &p, 0x00, 0x01), ST_OK); /* a 3.x server's refusal */
	CU_ASSERT_EQUAL(p.connack.code, ST_CONNACK_BAD_PROTOCOL);
	CU_ASSERT_EQUAL(DECODE(5, 0x40, &p, 0x00, 0x07, 0x10), ST_OK);
	CU_ASSERT_EQUAL(p.ack.packet_id, 7);
	CU_ASSERT_EQUAL(p.ack.reason, 0x10);
	CU_ASSERT_EQUAL(DECODE(5, 0xE0, &p, 0x04), ST_OK);
	CU_ASSERT_EQUAL(p.disconnect.reason, 0x04);
	CU_ASSERT_EQUAL(DECODE(5, 0xF0, &p, 0x19, 0x00), ST_OK);
	CU_ASSERT_EQUAL(p.disconnect.reason, 0x19);
	CU_ASSERT_EQUAL(DECODE(5, 0x82, &p, 0x00, 0x01, 0x00, S1('a'), 0x2E), ST_OK);
	CU_ASSERT_EQUAL(p.subscribe.count, 1);
	tu_guard_release(&g);
}

/*
 * A defect at every offset of PUBLISH topics of every length up to 40: every lane of the
 * blocks, the overlapping last block, the two words of 8..15-byte names and the byte loop.
 */
static void test_topic_defect_at_every_offset(void)
{
	static const struct {
		const char *bytes;
		size_t len;
		int want;
	} defects[] = {
	        {"+", 1, ST_ERR_TOPIC},
	        {"#", 1, ST_ERR_TOPIC},
	        {"\0", 1, ST_ERR_UTF8_NUL},
	        {"\xc3", 1, ST_ERR_UTF8},
	        {"\xc3\xa9", 2, ST_OK},
	        {"\xe2\x82\xac", 3, ST_OK},
	        {"\x2a", 1, ST_OK},
	        {"\x2c", 1, ST_OK},
	        {"\x22\x24\x03\xab", 4, ST_ERR_UTF8},
	        {"\xc3\xa9+", 3, ST_ERR_TOPIC},
	};
	struct tu_guard g = {0};
	uint8_t body[2 + 40], pkt[48];
	struct st_packet p;
	size_t used;
	unsigned wrong = 0;

	for (size_t d = 0; d < sizeof(defects) / sizeof(defects[0]); d++) {
		for (size_t len = defects[d].len; len <= 40; len++) {
			for (size_t off = 0; off + defects[d].len <= len; off++) {
				body[0] = 0x00;
				body[1] = (uint8_t)len;
				memset(body + 2, 'a', len);
				memcpy(body + 2 + off, defects[d].bytes, defects[d].len);
				size_t n = frame(pkt, 0x30, body, 2 + len);
				int rc = decode_guarded(&g, pkt, n, ST_MQTT_311, &p, &used);

				if (rc != defects[d].want) {
					fprintf(stderr, "defect %zu at %zu of %zu: %s\n", d, off,
					        len, st_strerror(rc));
					wrong++;
				}
			}
		}
	}
	tu_guard_release(&g);
	CU_ASSERT_EQUAL(wrong, 0);
}

static void test_several_packets_in_one_buffer(void)
{
	static const char *const hex = "30050001616161"
	                               "3003000162"
	                               "40020009"
	                               "c000"
	                               "e000";
	static const uint8_t types[] = {ST_PUBLISH, ST_PUBLISH, ST_PUBACK, ST_PINGREQ,
	                                ST_DISCONNECT};
	uint8_t in[64];
	struct tu_guard g = {0};
	size_t n = unhex(hex, in, sizeof(in)), off = 0, i = 0;
	const uint8_t *copy = tu_guard_copy(&g, in, n);

	/* Bounded by the buffer: each packet consumes at least two bytes. */
	while (off < n && i < sizeof(types)) {
		struct st_packet p;
		size_t used = 0;

		CU_ASSERT_EQUAL_FATAL(st_decode_packet(copy + off, n - off, 4, 0, &p, &used),
		                      ST_OK);
		CU_ASSERT_EQUAL(p.type, types[i]);
		off += used;
		i++;
	}
	CU_ASSERT_EQUAL(off, n);
	CU_ASSERT_EQUAL(i, sizeof(types));
	tu_guard_release(&g);
}

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

/* --- mutations ----------------------------------------------------------------------------- */

static uint64_t next_rand(uint64_t *state)
{
	uint64_t x = *state; /* xorshift64 */

	x ^= x << 13, x ^= x >> 7, x ^= x << 17;
	return *state = x;
}

/*
 * Random byte flips, insertions and cuts of the golden packets: the decoder must answer OK or
 * a known error without reading past the end; a PUBLISH it accepts must re-encode and decode
 * to the same fields.
 */
static void test_mutations(void)
{
	uint64_t rng = 0x2545F4914F6CDD1Dull;
	struct tu_guard g = {0}, g2 = {0}; /* p borrows from g while p2 is decoded from g2 */
	uint8_t in[300], again[300];
	unsigned accepted = 0;

	for (int iter = 0; iter < 60000; iter++) {
		const struct golden *gold = &goldens[iter % (sizeof(goldens) / sizeof(goldens[0]))];
		size_t n = unhex(gold->hex, in, 256);
		uint64_t r = next_rand(&rng);

		for (int m = 0; m < 1 + (int)(r % 3); m++) {
			uint64_t q = next_rand(&rng);
			size_t at = q % n;

			if ((q >> 32) % 8 == 0 && n > 1)
				n--; /* cut the last byte */
			else if ((q >> 32) % 8 == 1 && n < 256)
				in[n++] = (uint8_t)(q >> 40); /* grow */
			else
				in[at] ^= (uint8_t)(1u << ((q >> 40) % 8));
		}
		uint8_t level = (uint8_t)(3 + (r >> 16) % 3);
		struct st_packet p, p2;
		size_t used = 0, used2 = 0;
		int rc = decode_guarded(&g, in, n, level, &p, &used);

		CU_ASSERT(rc <= 0 && rc >= ST_ERR__MIN);
		if (rc != ST_OK)
			continue;
		accepted++;
		CU_ASSERT(used <= n);
		if (p.type != ST_PUBLISH)
			continue;
		int k = st_encode_packet(&p, level, again, sizeof(again));

		CU_ASSERT_FATAL(k > 0);
		CU_ASSERT_EQUAL(decode_guarded(&g2, again, (size_t)k, level, &p2, &used2), ST_OK);
		compare_packet(&p2, &p, level);
	}
	CU_ASSERT(accepted > 1000); /* the mutations do not all produce garbage */
	tu_guard_release(&g);
	tu_guard_release(&g2);
}

static const struct tu_test codec_tests[] = {
        {"round trip CONNECT", test_roundtrip_connect},
        {"round trip CONNACK", test_roundtrip_connack},
        {"round trip PUBLISH", test_roundtrip_publish},
        {"round trip PUBACK PUBREC PUBREL PUBCOMP", test_roundtrip_acks},
        {"round trip SUBSCRIBE UNSUBSCRIBE", test_roundtrip_subscribe},
        {"round trip SUBACK UNSUBACK", test_roundtrip_suback},
        {"round trip PINGREQ PINGRESP DISCONNECT AUTH", test_roundtrip_ping_disconnect_auth},
        {"golden bytes of real clients", test_golden_bytes},
        {"golden packet fields", test_golden_fields},
        {"remaining length limits", test_remaining_length_limits},
        {"early errors", test_early_errors},
        {"protocol level reported", test_protocol_level_reported},
        {"MQTT 3.1 allowances", test_level3_allowances},
        {"MQTT 5 allowances", test_v5_allowances},
        {"topic defect at every offset", test_topic_defect_at_every_offset},
        {"several packets in one buffer", test_several_packets_in_one_buffer},
        {"varint boundaries", test_varint_boundaries},
        {"PUBLISH head", test_publish_head},
        {"encoder errors", test_encode_errors},
        {"error names and reason codes", test_error_table},
        {"packet names", test_packet_names},
        {"random mutations", test_mutations},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("codec", codec_tests);
	tu_add_suite("codec malformed", malformed_tests);
	return tu_run_registry();
}
