/*
 * Outgoing packet encoders. Control packets are a handful of bytes written directly; the
 * PUBLISH head goes through the shared codec (st_encode_publish_head) so that broker and tools
 * agree on one encoding.
 */
#include "out.h"

#include <string.h>

#include <xxhash.h>

#include "bridge.h"
#include "conn.h"
#include "mount.h"
#include "starling/error.h"
#include "starling/props.h"
#include "worker.h"

/* The view a mounted client gets: the topic without its listener's prefix (mount.h), and
 * an outbound alias hash of its own (the shared view's is the full topic's). A bridge's
 * remote gets the topic its out topic maps to (bridge.h). */
static inline struct pub_view out_mounted(const struct conn *c, const struct pub_view *v)
{
	struct pub_view mv = *v;

	if (c->bridge) {
		mv.hashed = !bridge_topic_out(c, &mv.topic) && v->hashed;
		return mv;
	}
	mv.topic = mount_strip(c->mount, c->mount_len, v->topic);
	mv.hashed = mv.topic.len == v->topic.len && v->hashed;
	return mv;
}

/* A PUBLISH to a bridge's remote: counted; with bridge_outgoing_retain false, without its
 * retain flag (bridge.h). */
static inline uint8_t out_bridge_flags(const struct conn *c, uint8_t flags)
{
	if (!c->bridge)
		return flags;
	c->bridge->stats.msgs_out++;
	if (!c->bridge->cfg->outgoing_retain)
		flags &= (uint8_t)~ST_PUBLISH_FLAG_RETAIN;
	return flags;
}

static bool out_splices(const struct pub_view *v)
{
	return v->m && v->payload.len >= OBUF_SPLICE_MIN;
}

/* The per-delivery MQTT 5 properties of one PUBLISH, decided before it is written. */
struct pub5 {
	uint32_t len;      /* property block length (per-delivery + forwarded) */
	uint32_t expiry_s; /* remaining Message Expiry Interval */
	bool has_expiry;   /* send expiry_s */
	uint16_t alias;    /* topic alias, 0: none */
	bool fresh;        /* the alias is new: the topic goes along */
};

static uint32_t sub_ids_len(const struct pub_extra *x)
{
	uint32_t len = 0;

	if (!x || !x->sub_id)
		return 0;
	len = 1 + (uint32_t)st_varint_size(x->sub_id);
	for (uint16_t i = 0; i < x->nmore; i++)
		len += 1 + (uint32_t)st_varint_size(x->more[i]);
	return len;
}

/*
 * Decides the per-delivery properties. With `assign` false nothing changes on the connection:
 * the alias a first send would assign is only predicted (for the exact size).
 */
static void out_pub5(struct conn *c, struct pub_view *v, const struct pub_extra *x, struct pub5 *p,
                     bool assign)
{
	uint64_t now = c->w->now_ms;

	*p = (struct pub5){.len = v->props.len + sub_ids_len(x)};
	if (v->expiry_ms) {
		/* The received value minus the time waited [MQTT-3.3.2-6], rounded down: never
		 * more than received, though the worker that received it may have read its clock
		 * a little after this one (rounding up sent 31 s for 30 across workers). At least
		 * 1: a message still alive never says 0 seconds left. */
		p->has_expiry = true;
		p->expiry_s =
		        v->expiry_ms > now + 1000 ? (uint32_t)((v->expiry_ms - now) / 1000) : 1;
		p->len += 5;
	}
	if (c->v5->alias_out.max) {
		if (!v->hashed) {
			v->topic_hash = XXH3_64bits(v->topic.ptr, v->topic.len);
			v->hashed = true;
		}
		p->alias = assign ? alias_out_get(&c->v5->alias_out, v->topic, v->topic_hash,
		                                  &p->fresh)
		                  : alias_out_peek(&c->v5->alias_out, v->topic, v->topic_hash,
		                                   &p->fresh);
		if (p->alias)
			p->len += 3;
	}
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	p = put_u16(p, (uint16_t)(v >> 16));
	return put_u16(p, (uint16_t)v);
}

/* Writes the property block (length first) of an MQTT 5 PUBLISH. */
static uint8_t *out_put_props5(uint8_t *p, const struct pub_view *v, const struct pub_extra *x,
                               const struct pub5 *p5)
{
	p += st_varint_encode(p, p5->len);
	if (p5->has_expiry) {
		*p++ = ST_PROP_MESSAGE_EXPIRY;
		p = put_u32(p, p5->expiry_s);
	}
	if (p5->alias) {
		*p++ = ST_PROP_TOPIC_ALIAS;
		p = put_u16(p, p5->alias);
	}
	if (x && x->sub_id) {
		*p++ = ST_PROP_SUBSCRIPTION_ID;
		p += st_varint_encode(p, x->sub_id);
		for (uint16_t i = 0; i < x->nmore; i++) {
			*p++ = ST_PROP_SUBSCRIPTION_ID;
			p += st_varint_encode(p, x->more[i]);
		}
	}
	if (v->props.len)
		memcpy(p, v->props.ptr, v->props.len);
	return p + v->props.len;
}

uint64_t out_publish5_exact_size(struct conn *c, struct pub_view *v, const struct pub_extra *x,
                                 uint8_t qos)
{
	struct pub5 p5;
	struct pub_view mv;
	uint64_t rem;

	if (c->mount_len || c->bridge) {
		mv = out_mounted(c, v);
		v = &mv;
	}
	out_pub5(c, v, x, &p5, false);
	rem = 2 + (p5.alias && !p5.fresh ? 0 : v->topic.len) + (qos ? 2 : 0) +
	      st_varint_size(p5.len) + p5.len + v->payload.len;
	return 1 + st_varint_size((uint32_t)rem) + rem;
}

uint64_t out_publish3_exact_size(const struct conn *c, const struct pub_view *v, uint8_t qos)
{
	struct pub_view mv;
	uint64_t rem;

	if (c->mount_len || c->bridge) {
		mv = out_mounted(c, v);
		v = &mv;
	}
	rem = 2 + (uint64_t)v->topic.len + (qos ? 2 : 0) + v->payload.len;
	return 1 + st_varint_size((uint32_t)rem) + rem;
}

uint64_t out_publish_size(const struct conn *c, const struct pub_view *v, const struct pub_extra *x)
{
	uint64_t n = ST_PUBLISH_HEAD_MAX + (uint64_t)v->topic.len + v->payload.len;

	if (c->level >= ST_MQTT_5)
		n += ST_VARINT_MAX + 5 + 3 + sub_ids_len(x) + v->props.len;
	return n;
}

/*
 * Ends a PUBLISH whose head (n bytes) is written at p in c->out: the payload is copied behind
 * it, or spliced by reference, and the packet committed.
 */
static inline int out_publish_payload(struct conn *c, const struct pub_view *v, uint8_t *p,
                                      size_t n, bool splice)
{
	if (!splice && v->payload.len) {
		memcpy(p + n, v->payload.ptr, v->payload.len);
		n += v->payload.len;
	}
	obuf_commit(&c->out, n);
	if (splice && obuf_splice(&c->out, v->m, v->payload.ptr, v->payload.len) != ST_OK)
		return ST_ERR_NOMEM;
	c->w->stats.packets_sent++;
	c->w->batch_bytes += n;
	conn_want_flush(c);
	return ST_OK;
}

int out_publish3(struct conn *c, const struct pub_view *v, uint8_t flags, uint16_t pid)
{
	bool splice = out_splices(v);
	struct pub_view mv;
	uint8_t *p;
	size_t n;

	/* One test of fields on a line the delivery reads anyway (mount.h). */
	if (c->mount_len || c->bridge) {
		mv = out_mounted(c, v);
		v = &mv;
		flags = out_bridge_flags(c, flags);
	}
	p = obuf_reserve(&c->out,
	                 ST_PUBLISH_HEAD_MAX + v->topic.len + (splice ? 0 : v->payload.len));
	if (!p)
		return ST_ERR_NOMEM;
	n = st_encode_publish_head(p, flags, v->topic, pid, v->payload.len);
	return out_publish_payload(c, v, p, n, splice);
}

int out_publish(struct conn *c, struct pub_view *v, uint8_t flags, uint16_t pid,
                const struct pub_extra *x)
{
	bool splice;
	struct pub5 p5;
	uint32_t props_len;
	struct st_bytes topic;
	struct pub_view mv;
	uint8_t *p;
	size_t n;

	if (c->level < ST_MQTT_5)
		return out_publish3(c, v, flags, pid);
	if (c->mount_len || c->bridge) {
		mv = out_mounted(c, v);
		v = &mv;
		flags = out_bridge_flags(c, flags);
	}
	topic = v->topic;
	splice = out_splices(v);
	out_pub5(c, v, x, &p5, true);
	props_len = (uint32_t)st_varint_size(p5.len) + p5.len;
	if (p5.alias && !p5.fresh)
		topic.len = 0; /* the alias stands for the topic */
	p = obuf_reserve(&c->out, ST_PUBLISH_HEAD_MAX + topic.len + props_len +
	                                  (splice ? 0 : v->payload.len));
	if (!p)
		return ST_ERR_NOMEM;
	n = st_encode_publish_head(p, flags, topic, pid, props_len + v->payload.len);
	n = (size_t)(out_put_props5(p + n, v, x, &p5) - p);
	return out_publish_payload(c, v, p, n, splice);
}

/*
 * An MQTT 5 packet made of an optional packet id, a reason code and a Reason String property:
 * DISCONNECT, or an acknowledgement that failed.
 */
static void out_reason_packet(struct conn *c, uint8_t byte0, int32_t pid, uint8_t reason,
                              const char *why)
{
	size_t why_len = why ? strlen(why) : 0;
	uint32_t plen = why_len ? (uint32_t)(3 + why_len) : 0;
	uint32_t rem = (pid >= 0 ? 2 : 0) + 1 + (uint32_t)st_varint_size(plen) + plen;
	uint8_t *p = conn_reserve(c, 1 + ST_VARINT_MAX + rem), *start = p;

	if (!p)
		return;
	*p++ = byte0;
	p += st_varint_encode(p, rem);
	if (pid >= 0)
		p = put_u16(p, (uint16_t)pid);
	*p++ = reason;
	p += st_varint_encode(p, plen);
	if (why_len) {
		*p++ = ST_PROP_REASON_STRING;
		p = put_u16(p, (uint16_t)why_len);
		memcpy(p, why, why_len);
		p += why_len;
	}
	conn_commit(c, (size_t)(p - start));
}

void out_ack_why(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason, const char *why)
{
	/* Reason Strings only where the client asked for problem information [MQTT-3.1.2-29]. */
	if (c->v5 && c->v5->problem_info && why)
		out_reason_packet(c, (uint8_t)(type << 4 | (type == ST_PUBREL ? 2 : 0)), pid,
		                  reason, why);
	else
		out_ack(c, type, pid, reason);
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

void out_connack5(struct conn *c, bool session_present, uint8_t code, const struct connack5 *cp)
{
	size_t cap = 64 + st_prop_size_str(cp->assigned_id) + st_prop_size_str(cp->response_info) +
	             st_prop_size_str(cp->reason_string);
	struct st_prop_writer pw;
	uint32_t plen, rem;
	uint8_t *p, *start;

	p = start = conn_reserve(c, cap);
	if (!p)
		return;
	/* The properties go after the longest possible header, then the header in front. */
	st_pw_init(&pw, p + 1 + ST_VARINT_MAX + 2 + ST_VARINT_MAX, cap - 16);
	if (cp->assigned_id.len)
		st_pw_str(&pw, ST_PROP_ASSIGNED_CLIENT_ID, cp->assigned_id);
	if (cp->send_server_keepalive)
		st_pw_u16(&pw, ST_PROP_SERVER_KEEP_ALIVE, cp->server_keepalive_s);
	if (cp->receive_max && cp->receive_max < UINT16_MAX)
		st_pw_u16(&pw, ST_PROP_RECEIVE_MAXIMUM, cp->receive_max);
	if (cp->topic_alias_max)
		st_pw_u16(&pw, ST_PROP_TOPIC_ALIAS_MAXIMUM, cp->topic_alias_max);
	if (cp->max_packet)
		st_pw_u32(&pw, ST_PROP_MAXIMUM_PACKET_SIZE, cp->max_packet);
	if (cp->retain_unavailable)
		st_pw_byte(&pw, ST_PROP_RETAIN_AVAILABLE, 0);
	if (cp->send_max_qos)
		st_pw_byte(&pw, ST_PROP_MAXIMUM_QOS, cp->max_qos);
	if (cp->response_info.len)
		st_pw_str(&pw, ST_PROP_RESPONSE_INFO, cp->response_info);
	if (cp->reason_string.len)
		st_pw_str(&pw, ST_PROP_REASON_STRING, cp->reason_string);
	plen = (uint32_t)st_pw_len(&pw);
	rem = 2 + (uint32_t)st_varint_size(plen) + plen;
	*p++ = ST_CONNACK << 4;
	p += st_varint_encode(p, rem);
	*p++ = session_present ? 1 : 0;
	*p++ = code;
	p += st_varint_encode(p, plen);
	memmove(p, pw.start, plen);
	conn_commit(c, (size_t)(p - start) + plen);
}

void out_disconnect(struct conn *c, uint8_t reason, const char *why)
{
	if (c->level < ST_MQTT_5)
		return;
	out_reason_packet(c, ST_DISCONNECT << 4, -1, reason, why);
}
