/*
 * Unit tests of the packet codec (src/codec/codec_decode.c, src/codec/codec_encode.c): round trips
 * and the bytes of real clients. The malformed variants and other decoder rules are in
 * test/test_codec_malformed.c, variable byte integers, the encoder's errors and the name tables
 * in test/test_codec_encode.c; the helpers they share in test/codec_cases.h.
 *
 * 1. Round trips: every packet type at levels 3, 4 and 5 is encoded, decoded from a guard-page
 *    copy and compared field by field; every truncation must ask for more bytes, a following
 *    packet must not be consumed, and re-encoding the decoded packet gives the same bytes.
 * 2. Golden bytes captured from real clients (mosquitto_pub/sub 2.0.11, paho 1.6.1) and from
 *    Mosquitto's replies decode and re-encode to the same bytes.
 * 3. Random mutations of the golden packets: never a crash, never a read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/codec.h"
#include "codec_cases.h"
#include "testutil.h"

/* --- field comparison ------------------------------------------------------------------- */

static void compare_connect(const struct st_connect *got, const struct st_connect *want,
                            uint8_t level)
{
	bool v5 = level == ST_MQTT_5;

	ASSERT_BYTES(got->protocol_name, B(level == ST_MQTT_31 ? "MQIsdp" : "MQTT"));
	CU_ASSERT_EQUAL(got->level, level);
	CU_ASSERT_EQUAL(got->bridge, want->bridge && !v5); /* the private bit is 3.x only */
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
		p.connect.bridge = true; /* try_private: 0x83, 0x84; 5.0 is sent as 5 */
		roundtrip(&p, level);
		p.connect.bridge = false;

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
        /* A mosquitto 2.0.11 bridge's CONNECT (try_private, cleansession false, the
         * notification topic as will, remote_username/password): 3.1.1 (0x84) and 3.1 (0x83) */
        {4, "104000044d51545484ec003c0005766d2e62310022245359532f62726f6b65722f636f6e6e656374"
            "696f6e2f766d2e62312f73746174650001300002627500026270"},
        {3, "104200064d514973647083ec003c0005766d2e62310022245359532f62726f6b65722f636f6e6e65"
            "6374696f6e2f766d2e62312f73746174650001300002627500026270"},
};

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

	/* Mosquitto's bridges: the level without its private bit, the bit as .bridge. */
	for (size_t i = 26; i <= 27; i++) {
		n = unhex(goldens[i].hex, in, sizeof(in));
		CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, in, n, ST_MQTT_311, &p, &used), ST_OK);
		CU_ASSERT_EQUAL(p.connect.level, i == 26 ? ST_MQTT_311 : ST_MQTT_31);
		CU_ASSERT(p.connect.bridge);
		CU_ASSERT_FALSE(p.connect.clean_start);
		ASSERT_BYTES(p.connect.client_id, B("vm.b1"));
		ASSERT_BYTES(p.connect.will_topic, B("$SYS/broker/connection/vm.b1/state"));
		ASSERT_BYTES(p.connect.will_payload, B("0"));
		CU_ASSERT(p.connect.will_retain && p.connect.will_qos == 1);
		ASSERT_BYTES(p.connect.username, B("bu"));
	}
	n = unhex(goldens[5].hex, in, sizeof(in));
	CU_ASSERT_EQUAL_FATAL(decode_guarded(&g, in, n, ST_MQTT_311, &p, &used), ST_OK);
	CU_ASSERT_EQUAL(p.connect.level, ST_MQTT_311);
	CU_ASSERT_FALSE(p.connect.bridge);
	tu_guard_release(&g);
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
        {"random mutations", test_mutations},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("codec", codec_tests);
	return tu_run_registry();
}
