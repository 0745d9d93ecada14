/*
 * Unit tests of the packet decoder's refusals and rules (src/codec/codec_decode.c); the round trips
 * are in test/test_codec.c, the helpers shared with it in test/codec_cases.h.
 *
 * 1. Each malformed variant is its own test with its own expected error (the MALFORMED table):
 *    the one-call and the two-step API agree, and no prefix decodes or reads past its end.
 * 2. Decoder rules: remaining length limits, errors known early (from the fixed header or the
 *    first byte), the protocol level reported for a refused CONNECT, what MQTT 3.1 and 5.0
 *    allow, a topic defect at every offset, and several packets in one buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/codec.h"
#include "codec_cases.h"
#include "testutil.h"

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
	X(connect_mqtt_level_5_bridge, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x85, 0x02, 0x00, 0x3C, 0x00, S1('c')) \
	X(connect_mqtt_level_3_bridge, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x83, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_mqisdp_level_4_bridge, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x84, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_mqtt_level_0x80, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x80, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_mqtt_level_0xff, 4, ST_ERR_PROTOCOL_LEVEL, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0xFF, 0x02, 0x00, 0x3C, S1('c')) \
	X(connect_bridge_reserved_bit, 4, ST_ERR_CONNECT_FLAGS, 0x10, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x84, 0x03, 0x00, 0x3C, S1('c')) \
	X(connect_bridge_flags_v4, 4, ST_ERR_FLAGS, 0x12, \
	  0x00, 0x04, 'M', 'Q', 'T', 'T', 0x84, 0x02, 0x00, 0x3C, S1('c')) \
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
	/* A bridge's private bit on 5.0 is no level: reported as sent (CONNACK 0x01). */
	CU_ASSERT_EQUAL(DECODE(4, 0x10, &p, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x85, 0x02, 0x00, 0x3C,
	                       0x00, S1('c')),
	                ST_ERR_PROTOCOL_LEVEL);
	CU_ASSERT_EQUAL(p.connect.level, 0x85);
	CU_ASSERT_FALSE(p.connect.bridge);
	/* ...and on a level its name does not go with, the level without it. */
	CU_ASSERT_EQUAL(DECODE(4, 0x10, &p, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x84, 0x02,
	                       0x00, 0x3C, S1('c')),
	                ST_ERR_PROTOCOL_LEVEL);
	CU_ASSERT_EQUAL(p.connect.level, 4);
	/* A 3.1 bridge keeps 3.1's allowances (fixed-header flags are not checked). */
	CU_ASSERT_EQUAL(DECODE(4, 0x12, &p, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x83, 0x02,
	                       0x00, 0x3C, S1('c')),
	                ST_OK);
	CU_ASSERT_EQUAL(p.connect.level, 3);
	CU_ASSERT(p.connect.bridge);
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

static const struct tu_test rule_tests[] = {
        {"remaining length limits", test_remaining_length_limits},
        {"early errors", test_early_errors},
        {"protocol level reported", test_protocol_level_reported},
        {"MQTT 3.1 allowances", test_level3_allowances},
        {"MQTT 5 allowances", test_v5_allowances},
        {"topic defect at every offset", test_topic_defect_at_every_offset},
        {"several packets in one buffer", test_several_packets_in_one_buffer},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("codec", rule_tests);
	tu_add_suite("codec malformed", malformed_tests);
	return tu_run_registry();
}
