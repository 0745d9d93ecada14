/*
 * MQTT packet encoding (3.1 "MQIsdp", 3.1.1 and 5.0) into a caller's buffer.
 *
 * Encoding is two passes over the packet struct: body_size() adds up the remaining length
 * (and refuses a field the wire format cannot carry: a string over 65,535 bytes, a packet over
 * ST_REMLEN_MAX), then the writers fill out[] front to back, never past the size computed,
 * which is checked against cap first. The encoder writes what it is given; checking that the
 * packet makes sense (a QoS, a filter) is the caller's job, and the decoder's on the other side.
 *
 * MQTT 5 property blocks come from the `props` views, as raw property bytes, and are written
 * after their variable byte integer length. Acks, DISCONNECT and AUTH use the shortest form
 * the spec allows: no reason code when it is 0 with no properties, no property length when
 * there are no properties and the packet allows leaving it out.
 *
 * st_encode_publish_head() is the broker's send path: it writes only the head of a PUBLISH so
 * a message's topic, properties and payload can be shared by every subscriber.
 */
#include "starling/codec.h"

#include <assert.h>
#include <string.h>

/* A size no field can have: any sum that includes it is over ST_REMLEN_MAX. */
#define SIZE_BAD ((uint64_t)1 << 40)

size_t st_varint_size(uint32_t value)
{
	if (value < 128u)
		return 1;
	if (value < 16384u)
		return 2;
	if (value < 2097152u)
		return 3;
	return value <= ST_REMLEN_MAX ? 4 : 0;
}

size_t st_varint_encode(uint8_t *out, uint32_t value)
{
	size_t n = 0;

	if (value > ST_REMLEN_MAX) /* st_varint_size() is 0: nothing can be written */
		return 0;
	do {
		uint8_t b = value & 0x7F;

		value >>= 7;
		out[n++] = value ? (b | 0x80) : b;
	} while (value); /* at most four rounds: value <= 2^28 - 1 */
	return n;
}

/* --- sizes ------------------------------------------------------------------------------ */

/* A string or Binary Data field: two length bytes, then the bytes. */
static inline uint64_t str_size(struct st_bytes b)
{
	return b.len <= UINT16_MAX ? 2u + b.len : SIZE_BAD;
}

/* An MQTT 5 property block with its length. */
static inline uint64_t props_size(struct st_bytes b)
{
	size_t n = st_varint_size(b.len);

	return n ? n + b.len : SIZE_BAD;
}

static inline bool is_v5(uint8_t level)
{
	return level == ST_MQTT_5;
}

static const char *protocol_name(uint8_t level)
{
	return level == ST_MQTT_31 ? "MQIsdp" : "MQTT";
}

static uint64_t connect_size(const struct st_connect *c, uint8_t level)
{
	uint64_t n = 2 + strlen(protocol_name(level)) + 1 + 1 + 2; /* name, level, flags, ka */

	if (c->protocol_name.len)
		n = str_size(c->protocol_name) + 1 + 1 + 2;
	if (is_v5(level))
		n += props_size(c->props);
	n += str_size(c->client_id);
	if (c->will_flag) {
		if (is_v5(level))
			n += props_size(c->will_props);
		n += str_size(c->will_topic) + str_size(c->will_payload);
	}
	if (c->username_flag)
		n += str_size(c->username);
	if (c->password_flag)
		n += str_size(c->password);
	return n;
}

static uint64_t subscribe_size(const struct st_packet *pkt, uint8_t level)
{
	const struct st_subscribe *s = &pkt->subscribe;
	uint64_t n = 2 + (is_v5(level) ? props_size(s->props) : 0);

	for (uint32_t i = 0; i < s->count && n <= ST_REMLEN_MAX; i++)
		n += str_size(s->entries[i].filter) + (pkt->type == ST_SUBSCRIBE ? 1 : 0);
	return n;
}

/* Remaining length of *pkt at level, or more than ST_REMLEN_MAX if it cannot be encoded. */
static uint64_t body_size(const struct st_packet *pkt, uint8_t level)
{
	switch (pkt->type) {
	case ST_CONNECT:
		return connect_size(&pkt->connect, level);
	case ST_CONNACK:
		return 2 + (is_v5(level) ? props_size(pkt->connack.props) : 0);
	case ST_PUBLISH: {
		const struct st_publish *p = &pkt->publish;

		return str_size(p->topic) + ((p->qos & 3) ? 2 : 0) +
		       (is_v5(level) ? props_size(p->props) : 0) + p->payload.len;
	}
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		if (!is_v5(level) || (pkt->ack.reason == 0 && pkt->ack.props.len == 0))
			return 2;
		return pkt->ack.props.len == 0 ? 3 : 3 + props_size(pkt->ack.props);
	case ST_SUBSCRIBE:
	case ST_UNSUBSCRIBE:
		return subscribe_size(pkt, level);
	case ST_SUBACK:
	case ST_UNSUBACK:
		if (pkt->type == ST_UNSUBACK && !is_v5(level))
			return 2;
		return 2 + (is_v5(level) ? props_size(pkt->suback.props) : 0) +
		       pkt->suback.codes.len;
	case ST_PINGREQ:
	case ST_PINGRESP:
		return 0;
	case ST_DISCONNECT:
	case ST_AUTH: {
		const struct st_disconnect *d = &pkt->disconnect;

		if (!is_v5(level))
			return pkt->type == ST_DISCONNECT ? 0 : SIZE_BAD; /* no AUTH before 5.0 */
		if (d->reason == 0 && d->props.len == 0)
			return 0;
		/* Only DISCONNECT may end after its reason code (3.14.2.2.1). */
		if (d->props.len == 0 && pkt->type == ST_DISCONNECT)
			return 1;
		return 1 + props_size(d->props);
	}
	default:
		return SIZE_BAD;
	}
}

size_t st_packet_size(const struct st_packet *pkt, uint8_t level)
{
	uint64_t rem = body_size(pkt, level);

	if (rem > ST_REMLEN_MAX)
		return 0;
	return 1 + st_varint_size((uint32_t)rem) + (size_t)rem;
}

/* --- writers ---------------------------------------------------------------------------- */

static inline uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static inline uint8_t *put_raw(uint8_t *p, struct st_bytes b)
{
	if (b.len)
		memcpy(p, b.ptr, b.len);
	return p + b.len;
}

/* A string or Binary Data field; body_size() checked that the length fits 16 bits. */
static inline uint8_t *put_str(uint8_t *p, struct st_bytes b)
{
	return put_raw(put_u16(p, (uint16_t)b.len), b);
}

static inline uint8_t *put_props(uint8_t *p, struct st_bytes b)
{
	p += st_varint_encode(p, b.len);
	return put_raw(p, b);
}

static uint8_t *put_connect(uint8_t *p, const struct st_connect *c, uint8_t level)
{
	struct st_bytes name = c->protocol_name;
	uint8_t flags = 0;

	if (name.len == 0) {
		name.ptr = (const uint8_t *)protocol_name(level);
		name.len = (uint32_t)strlen((const char *)name.ptr);
	}
	if (c->clean_start)
		flags |= 0x02;
	if (c->will_flag)
		flags |= 0x04 | (uint8_t)((c->will_qos & 3) << 3) | (c->will_retain ? 0x20 : 0);
	if (c->password_flag)
		flags |= 0x40;
	if (c->username_flag)
		flags |= 0x80;
	p = put_str(p, name);
	/* try_private: a bridge says so in the level's high bit (3.x only, codec.h). */
	*p++ = c->bridge && !is_v5(level) ? (uint8_t)(level | ST_PROTOCOL_BRIDGE_BIT) : level;
	*p++ = flags;
	p = put_u16(p, c->keepalive_s);
	if (is_v5(level))
		p = put_props(p, c->props);
	p = put_str(p, c->client_id);
	if (c->will_flag) {
		if (is_v5(level))
			p = put_props(p, c->will_props);
		p = put_str(p, c->will_topic);
		p = put_str(p, c->will_payload);
	}
	if (c->username_flag)
		p = put_str(p, c->username);
	if (c->password_flag)
		p = put_str(p, c->password);
	return p;
}

static uint8_t *put_subscribe(uint8_t *p, const struct st_packet *pkt, uint8_t level)
{
	const struct st_subscribe *s = &pkt->subscribe;

	p = put_u16(p, s->packet_id);
	if (is_v5(level))
		p = put_props(p, s->props);
	for (uint32_t i = 0; i < s->count; i++) {
		p = put_str(p, s->entries[i].filter);
		if (pkt->type == ST_SUBSCRIBE)
			*p++ = s->entries[i].options;
	}
	return p;
}

/* The ack-like packets whose optional tail is (reason code, properties). */
static uint8_t *put_reason_tail(uint8_t *p, uint8_t reason, struct st_bytes props,
                                uint32_t tail_len)
{
	if (tail_len >= 1)
		*p++ = reason;
	if (tail_len >= 2)
		p = put_props(p, props);
	return p;
}

static uint8_t *put_body(uint8_t *p, const struct st_packet *pkt, uint8_t level, uint32_t rem)
{
	switch (pkt->type) {
	case ST_CONNECT:
		return put_connect(p, &pkt->connect, level);
	case ST_CONNACK:
		*p++ = pkt->connack.session_present ? 1 : 0;
		*p++ = pkt->connack.code;
		return is_v5(level) ? put_props(p, pkt->connack.props) : p;
	case ST_PUBLISH:
		p = put_str(p, pkt->publish.topic);
		if (pkt->publish.qos & 3)
			p = put_u16(p, pkt->publish.packet_id);
		if (is_v5(level))
			p = put_props(p, pkt->publish.props);
		return put_raw(p, pkt->publish.payload);
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		p = put_u16(p, pkt->ack.packet_id);
		return put_reason_tail(p, pkt->ack.reason, pkt->ack.props, rem - 2);
	case ST_SUBSCRIBE:
	case ST_UNSUBSCRIBE:
		return put_subscribe(p, pkt, level);
	case ST_SUBACK:
	case ST_UNSUBACK:
		p = put_u16(p, pkt->suback.packet_id);
		if (pkt->type == ST_UNSUBACK && !is_v5(level))
			return p;
		if (is_v5(level))
			p = put_props(p, pkt->suback.props);
		return put_raw(p, pkt->suback.codes);
	case ST_DISCONNECT:
	case ST_AUTH:
		return put_reason_tail(p, pkt->disconnect.reason, pkt->disconnect.props, rem);
	default: /* PINGREQ, PINGRESP: no body; other types were refused by body_size() */
		return p;
	}
}

static uint8_t first_byte(const struct st_packet *pkt)
{
	uint8_t flags = 0;

	if (pkt->type == ST_PUBLISH) {
		const struct st_publish *pub = &pkt->publish;

		flags = (uint8_t)((pub->qos & 3) << 1) | (pub->dup ? ST_PUBLISH_FLAG_DUP : 0) |
		        (pub->retain ? ST_PUBLISH_FLAG_RETAIN : 0);
	} else if (pkt->type == ST_PUBREL || pkt->type == ST_SUBSCRIBE ||
	           pkt->type == ST_UNSUBSCRIBE) {
		flags = 0x02; /* [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1] */
	}
	return (uint8_t)(pkt->type << 4 | flags);
}

int st_encode_packet(const struct st_packet *pkt, uint8_t level, uint8_t *out, size_t cap)
{
	uint64_t rem = body_size(pkt, level);

	if (rem > ST_REMLEN_MAX)
		return ST_ERR_LENGTH;
	size_t total = 1 + st_varint_size((uint32_t)rem) + (size_t)rem;

	if (total > cap)
		return ST_ERR_NO_SPACE;
	uint8_t *p = out;

	*p++ = first_byte(pkt);
	p += st_varint_encode(p, (uint32_t)rem);
	p = put_body(p, pkt, level, (uint32_t)rem);
	assert((size_t)(p - out) == total); /* body_size() and put_body() must agree */
	return (int)total;
}

size_t st_encode_publish_head(uint8_t *out, uint8_t flags, struct st_bytes topic,
                              uint16_t packet_id, uint32_t rest_len)
{
	bool has_id = (flags & (ST_PUBLISH_FLAG_QOS1 | ST_PUBLISH_FLAG_QOS2)) != 0;
	uint64_t rem = 2u + (uint64_t)topic.len + (has_id ? 2u : 0u) + rest_len;
	uint8_t *p = out;

	if (topic.len > UINT16_MAX || rem > ST_REMLEN_MAX)
		return 0;
	*p++ = (uint8_t)(ST_PUBLISH << 4 | (flags & 0x0F));
	p += st_varint_encode(p, (uint32_t)rem);
	p = put_str(p, topic);
	if (has_id)
		p = put_u16(p, packet_id);
	return (size_t)(p - out);
}
