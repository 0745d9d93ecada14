/*
 * Outgoing packet encoders. Control packets are a handful of bytes written directly; the
 * PUBLISH head goes through the shared codec (st_encode_publish_head) so that broker and tools
 * agree on one encoding.
 */
#include "out.h"

#include <string.h>

#include "conn.h"
#include "starling/error.h"
#include "worker.h"

static bool out_splices(const struct pub_view *v)
{
	return v->m && v->payload.len >= OBUF_SPLICE_MIN;
}

/* Bytes of an MQTT 5 PUBLISH's property block (length and properties), 0 below 5. */
static uint32_t out_props_len(const struct conn *c, const struct pub_view *v)
{
	if (c->level < ST_MQTT_5)
		return 0;
	return (uint32_t)st_varint_size(v->props.len) + v->props.len;
}

uint64_t out_publish_size(const struct conn *c, const struct pub_view *v)
{
	return ST_PUBLISH_HEAD_MAX + (uint64_t)v->topic.len + out_props_len(c, v) + v->payload.len;
}

int out_publish(struct conn *c, const struct pub_view *v, uint8_t flags, uint16_t pid)
{
	bool splice = out_splices(v);
	uint32_t props_len = out_props_len(c, v);
	size_t room = ST_PUBLISH_HEAD_MAX + v->topic.len + props_len +
		      (splice ? 0 : v->payload.len);
	uint8_t *p = obuf_reserve(&c->out, room);
	size_t n;

	if (!p)
		return ST_ERR_NOMEM;
	n = st_encode_publish_head(p, flags, v->topic, pid, props_len + v->payload.len);
	if (props_len) {
		n += st_varint_encode(p + n, v->props.len);
		if (v->props.len)
			memcpy(p + n, v->props.ptr, v->props.len);
		n += v->props.len;
	}
	if (!splice && v->payload.len) {
		memcpy(p + n, v->payload.ptr, v->payload.len);
		n += v->payload.len;
	}
	obuf_commit(&c->out, n);
	if (splice && obuf_splice(&c->out, v->m, v->payload.ptr, v->payload.len) != ST_OK)
		return ST_ERR_NOMEM;
	c->w->stats.packets_sent++;
	conn_want_flush(c);
	return ST_OK;
}

void out_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
	uint8_t b[5] = {(uint8_t)(type << 4 | (type == ST_PUBREL ? 2 : 0)), 2, (uint8_t)(pid >> 8),
	                (uint8_t)pid, reason};
	size_t n = 4;

	if (c->level >= ST_MQTT_5 && reason) {
		b[1] = 3;
		n = 5;
	}
	conn_queue_bytes(c, b, n);
}

void out_connack(struct conn *c, bool session_present, uint8_t code)
{
	uint8_t b[5] = {ST_CONNACK << 4, 2, session_present ? 1 : 0, code, 0};
	size_t n = 4;

	if (c->level >= ST_MQTT_5) {
		b[1] = 3; /* empty property block */
		n = 5;
	}
	conn_queue_bytes(c, b, n);
}

void out_pingresp(struct conn *c)
{
	static const uint8_t b[2] = {ST_PINGRESP << 4, 0};

	conn_queue_bytes(c, b, sizeof(b));
}

int64_t out_suback_begin(struct conn *c, uint8_t type, uint16_t pid, uint32_t count)
{
	uint32_t rem = 2 + count + (c->level >= ST_MQTT_5 ? 1 : 0);
	size_t n = 0;
	uint8_t *p = obuf_reserve(&c->out, ST_FIXED_HEADER_MAX + rem);
	int64_t off;

	if (!p)
		return ST_ERR_NOMEM;
	p[n++] = (uint8_t)(type << 4);
	n += st_varint_encode(p + n, rem);
	p[n++] = (uint8_t)(pid >> 8);
	p[n++] = (uint8_t)pid;
	if (c->level >= ST_MQTT_5)
		p[n++] = 0; /* property length */
	off = (int64_t)c->out.len + (int64_t)n;
	memset(p + n, 0, count);
	obuf_commit(&c->out, n + count);
	c->w->stats.packets_sent++;
	conn_want_flush(c);
	return off;
}

void out_code_set(struct conn *c, int64_t off, uint32_t i, uint8_t code)
{
	c->out.data[off + i] = code;
}

void out_unsuback(struct conn *c, uint16_t pid)
{
	uint8_t b[4] = {ST_UNSUBACK << 4, 2, (uint8_t)(pid >> 8), (uint8_t)pid};

	conn_queue_bytes(c, b, sizeof(b));
}
