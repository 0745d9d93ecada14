/*
 * MQTT packet decoding (3.1 "MQIsdp", 3.1.1 and 5.0): bytes in, views out.
 *
 * The decoder reads the caller's buffer in place. Every field of a decoded packet is a view
 * (st_bytes) into that buffer; nothing is allocated or copied. A body is walked with a cursor
 * (struct rd) whose reads check the bytes left first, so no read goes past the remaining length,
 * and the remaining length itself is checked against len before any body byte is touched.
 *
 * Every rule the spec states about a single packet is checked here, with its conformance id:
 * fixed-header flags, lengths, UTF-8, topic names and filters, packet identifiers, CONNECT
 * and subscription option bits, MQTT 5 reason codes. MQTT 5 property blocks are only framed
 * (their length must fit); a separate module parses the properties. Rules that depend on the
 * connection's state (a second CONNECT, a topic alias) are the caller's.
 *
 * MQTT 3.1 gave every fixed header DUP, QoS and RETAIN bits (a retried SUBSCRIBE carried DUP)
 * and had no reserved CONNECT flag, so at level 3 only PUBLISH's flags are checked, as
 * Mosquitto does.
 *
 * The hot path is PUBLISH: one varint byte, a two-byte topic length, a topic check that looks
 * at sixteen bytes per step (SSE2, or two words without it) for a byte that is non-ASCII,
 * zero, '+' or '#', then the payload view. About 13 ns for a 34-byte topic on this machine.
 */
#include "starling/codec.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "starling/topic.h"
#include "starling/utf8.h"
#include "wordscan.h"

#define CONNECT_RESERVED    0x01u
#define CONNECT_CLEAN       0x02u
#define CONNECT_WILL        0x04u
#define CONNECT_WILL_QOS    0x18u
#define CONNECT_WILL_RETAIN 0x20u
#define CONNECT_PASSWORD    0x40u
#define CONNECT_USERNAME    0x80u

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* --- body cursor ------------------------------------------------------------------------ */

/* A cursor over a packet body; reads never move p past end. */
struct rd {
	const uint8_t *p;   /* next unread byte */
	const uint8_t *end; /* one past the body's last byte */
};

static inline size_t rd_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

static inline int rd_u8(struct rd *r, uint8_t *v)
{
	if (r->p == r->end)
		return ST_ERR_LENGTH;
	*v = *r->p++;
	return ST_OK;
}

static inline int rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return ST_ERR_LENGTH;
	*v = be16(r->p);
	r->p += 2;
	return ST_OK;
}

/* A two-byte length and that many bytes: Binary Data, and the raw form of a string. */
static inline int rd_bin(struct rd *r, struct st_bytes *out)
{
	if (rd_left(r) < 2)
		return ST_ERR_LENGTH;
	size_t n = be16(r->p);

	if (rd_left(r) - 2 < n)
		return ST_ERR_LENGTH;
	out->ptr = r->p + 2;
	out->len = (uint32_t)n;
	r->p += 2 + n;
	return ST_OK;
}

/* A UTF-8 Encoded String [MQTT-1.5.4-1], [MQTT-1.5.4-2]. */
static int rd_utf8(struct rd *r, struct st_bytes *out)
{
	int rc = rd_bin(r, out);

	return rc ? rc : st_utf8_check(out->ptr, out->len);
}

/*
 * An MQTT 5 property block: a variable byte integer length, then that many bytes, returned
 * without the length. The properties themselves are not looked at here.
 */
static inline int rd_props(struct rd *r, struct st_bytes *out)
{
	uint32_t n;
	int k;

	if (r->p < r->end && r->p[0] < 0x80) { /* under 128 bytes of properties: the usual case */
		n = r->p[0];
		k = 1;
	} else if ((k = st_varint_decode(r->p, rd_left(r), &n)) < 0) {
		/* NEED_MORE here means the length runs past the packet. */
		return k == ST_ERR_NEED_MORE ? ST_ERR_LENGTH : ST_ERR_PROPERTY;
	}
	r->p += k;
	if (n > rd_left(r))
		return ST_ERR_LENGTH;
	out->ptr = r->p;
	out->len = n;
	r->p += n;
	return ST_OK;
}

/* --- field rules ------------------------------------------------------------------------ */

/* Checks a topic name that is not ASCII from its first byte on: UTF-8, then wildcards. */
static int check_topic_name_tail(const uint8_t *s, size_t len)
{
	int rc = st_utf8_check(s, len);

	if (rc)
		return rc;
	return st_topic_name_is_valid(s, len) ? ST_OK : ST_ERR_TOPIC;
}

/*
 * High bit of each byte that stops the ASCII scan of a topic name: non-ASCII, zero, '+'
 * (0x2B) or '#' (0x23). The two wildcards differ only in bit 3, so OR-ing 0x08 into every
 * byte turns both into '+' and one zero test finds either. The lowest set bit is exact.
 */
static inline uint64_t topic_stop_mask(uint64_t w)
{
	uint64_t wild = (w | (WS_ONES * 0x08)) ^ (WS_ONES * '+');

	return (w & WS_HIGHS) | ws_zero_bytes(w) | ws_zero_bytes(wild);
}

#if defined(__SSE2__)
/* Index of the first byte of p[0..16) that stops the scan, or 16: one SSE2 pass. */
static inline unsigned topic_stop16(const uint8_t *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)p);
	__m128i wild = _mm_cmpeq_epi8(_mm_or_si128(v, _mm_set1_epi8(0x08)), _mm_set1_epi8('+'));
	__m128i zero = _mm_cmpeq_epi8(v, _mm_setzero_si128());
	/* movemask takes each byte's high bit: set for a match, and for a non-ASCII byte. */
	unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(wild, zero), v));

	return m ? (unsigned)__builtin_ctz(m) : 16;
}
#else
/* Index of the first byte of p[0..16) that stops the scan, or 16: two words. */
static inline unsigned topic_stop16(const uint8_t *p)
{
	uint64_t m = topic_stop_mask(ws_load(p));

	if (m)
		return ws_first(m);
	m = topic_stop_mask(ws_load(p + 8));
	return m ? 8 + ws_first(m) : 16;
}
#endif

/*
 * Where the ASCII scan of a topic name stops: the index of the first non-ASCII, zero, '+' or
 * '#' byte, or len if there is none. Blocks of 16 bytes, the last one overlapping the one
 * before it (bytes already seen are clean, so a stop found there is a new byte); names of 8
 * to 15 bytes take two overlapping words; shorter ones go byte by byte.
 */
static size_t topic_scan(const uint8_t *s, size_t len)
{
	if (len >= 16) {
		/* Each round advances 1..16 bytes and the last ends at len: len / 16 + 1 rounds. */
		for (size_t i = 0;;) {
			unsigned k = topic_stop16(s + i);

			if (k < 16)
				return i + k;
			if (i + 16 == len)
				return len;
			i = len - i - 16 >= 16 ? i + 16 : len - 16;
		}
	}
	if (len >= 8) {
		uint64_t m = topic_stop_mask(ws_load(s));

		if (m)
			return ws_first(m);
		m = topic_stop_mask(ws_load(s + len - 8));
		return m ? len - 8 + ws_first(m) : len;
	}
	size_t i = 0;

	while (i < len && s[i] < 0x80 && s[i] != 0 && s[i] != '+' && s[i] != '#')
		i++;
	return i;
}

/*
 * A topic name's UTF-8 [MQTT-3.3.2-1] and absence of wildcards [MQTT-3.3.2-2] in one pass;
 * emptiness is the caller's rule. ASCII is checked by the scan; from the first non-ASCII byte
 * on, the general UTF-8 check and a wildcard search take over.
 */
static int check_topic_name(const uint8_t *s, size_t len)
{
	size_t i = topic_scan(s, len);

	if (i == len)
		return ST_OK;
	if (s[i] >= 0x80)
		return check_topic_name_tail(s + i, len - i);
	return s[i] == 0 ? ST_ERR_UTF8_NUL : ST_ERR_TOPIC;
}

/* Is code one of the n reason codes in set? Success (0) is in every set and tested first. */
static bool reason_in(uint8_t code, const uint8_t *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == code)
			return true;
	return false;
}

/* MQTT 5 reason codes each packet may carry (sections 3.2.2.2 to 3.15.2.1). */
static const uint8_t rc_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                     0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                     0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rc_pubrel[] = {0x00, 0x92}; /* also PUBCOMP */
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc_suback_v3[] = {0x00, 0x01, 0x02, 0x80}; /* [MQTT-3.9.3-2] */
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rc_disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                        0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                        0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};

#define REASON_IN(code, set) reason_in((code), (set), sizeof(set))

/* Fixed-header flags of each type at levels 4 and 5 [MQTT-2.2.2-1]; PUBLISH is separate. */
static const uint8_t required_flags[16] = {
        [ST_PUBREL] = 0x02,
        [ST_SUBSCRIBE] = 0x02,
        [ST_UNSUBSCRIBE] = 0x02,
};

/* The packet type and fixed-header flags, checkable from the first byte alone. */
static int check_type_flags(uint8_t type, uint8_t flags, uint8_t level)
{
	if (type == ST_PUBLISH) {
		if ((flags & (ST_PUBLISH_FLAG_QOS1 | ST_PUBLISH_FLAG_QOS2)) ==
		    (ST_PUBLISH_FLAG_QOS1 | ST_PUBLISH_FLAG_QOS2))
			return ST_ERR_QOS; /* [MQTT-3.3.1-4] */
		if (level != ST_MQTT_31 && (flags & (ST_PUBLISH_FLAG_QOS1 | ST_PUBLISH_FLAG_QOS2 |
		                                     ST_PUBLISH_FLAG_DUP)) == ST_PUBLISH_FLAG_DUP)
			return ST_ERR_FLAGS; /* [MQTT-3.3.1-2] no DUP on QoS 0 */
		return ST_OK;
	}
	if (type == 0 || (type == ST_AUTH && level != ST_MQTT_5))
		return ST_ERR_TYPE;
	/* CONNECT's rule depends on the protocol name inside it: decode_connect checks it. */
	if (type == ST_CONNECT || level == ST_MQTT_31)
		return ST_OK;
	/* [MQTT-2.2.2-2] invalid flags close the connection. */
	return flags == required_flags[type] ? ST_OK : ST_ERR_FLAGS;
}

/* --- CONNECT ---------------------------------------------------------------------------- */

/*
 * Protocol name and level [MQTT-3.1.2-1], [MQTT-3.1.2-2]. A known name with a level it does
 * not go with is ST_ERR_PROTOCOL_LEVEL, so the broker can answer CONNACK 0x01 (or 0x84).
 */
static int check_protocol(struct st_bytes name, uint8_t level)
{
	if (name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0)
		return level == ST_MQTT_311 || level == ST_MQTT_5 ? ST_OK : ST_ERR_PROTOCOL_LEVEL;
	if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0)
		return level == ST_MQTT_31 ? ST_OK : ST_ERR_PROTOCOL_LEVEL;
	return ST_ERR_PROTOCOL_NAME;
}

static int check_connect_flags(uint8_t flags, uint8_t level)
{
	uint8_t will_qos = (flags & CONNECT_WILL_QOS) >> 3;

	/* [MQTT-3.1.2-3]; 3.1 did not reserve the bit and Mosquitto does not check it there. */
	if (level != ST_MQTT_31 && (flags & CONNECT_RESERVED))
		return ST_ERR_CONNECT_FLAGS;
	/* 3.1.1 [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]; 5.0 [MQTT-3.1.2-11, -13]. */
	if (!(flags & CONNECT_WILL) && (flags & (CONNECT_WILL_QOS | CONNECT_WILL_RETAIN)))
		return ST_ERR_CONNECT_FLAGS;
	if (will_qos == 3) /* 3.1.1 [MQTT-3.1.2-14]; 5.0 [MQTT-3.1.2-12] */
		return ST_ERR_CONNECT_FLAGS;
	/* 3.1.1 [MQTT-3.1.2-22]; MQTT 5 allows a password without a user name. */
	if (level != ST_MQTT_5 && (flags & CONNECT_PASSWORD) && !(flags & CONNECT_USERNAME))
		return ST_ERR_CONNECT_FLAGS;
	return ST_OK;
}

/* The payload after the client identifier: will, user name, password [MQTT-3.1.3-1]. */
static int decode_connect_tail(struct rd *r, struct st_connect *c)
{
	int rc;

	if (c->will_flag) {
		if (c->level == ST_MQTT_5 && (rc = rd_props(r, &c->will_props)))
			return rc;
		if ((rc = rd_bin(r, &c->will_topic)))
			return rc;
		if (c->will_topic.len == 0) /* [MQTT-4.7.3-1]; no topic alias for a will */
			return ST_ERR_TOPIC;
		if ((rc = check_topic_name(c->will_topic.ptr, c->will_topic.len)))
			return rc;
		if ((rc = rd_bin(r, &c->will_payload)))
			return rc;
	}
	/* 3.1 clients set the flags without sending the field; Mosquitto ignores the flag. */
	if (c->username_flag && c->level == ST_MQTT_31 && rd_left(r) == 0)
		c->username_flag = false;
	if (c->username_flag && (rc = rd_utf8(r, &c->username))) /* [MQTT-3.1.3-11] */
		return rc;
	if (c->password_flag && c->level == ST_MQTT_31 && rd_left(r) == 0)
		c->password_flag = false;
	if (c->password_flag && (rc = rd_bin(r, &c->password)))
		return rc;
	return rd_left(r) ? ST_ERR_LENGTH : ST_OK;
}

static int decode_connect(struct rd *r, uint8_t fh_flags, struct st_connect *c)
{
	uint8_t flags;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = rd_bin(r, &c->protocol_name)) || (rc = rd_u8(r, &c->level)))
		return rc;
	/* A Mosquitto bridge's private bit (try_private): 0x83 and 0x84 only, since MQTT 5
	 * bridges use subscription options instead; 0x85 stays the unsupported level it is. */
	if ((c->level & ST_PROTOCOL_BRIDGE_BIT) &&
	    (c->level & ~ST_PROTOCOL_BRIDGE_BIT) != ST_MQTT_5) {
		c->level &= (uint8_t)~ST_PROTOCOL_BRIDGE_BIT;
		c->bridge = true;
	}
	if ((rc = check_protocol(c->protocol_name, c->level)))
		return rc;
	if (c->level != ST_MQTT_31 && fh_flags != 0) /* [MQTT-2.2.2-1] */
		return ST_ERR_FLAGS;
	if ((rc = rd_u8(r, &flags)) || (rc = rd_u16(r, &c->keepalive_s)))
		return rc;
	if ((rc = check_connect_flags(flags, c->level)))
		return rc;
	c->clean_start = flags & CONNECT_CLEAN;
	c->will_flag = flags & CONNECT_WILL;
	c->will_qos = (flags & CONNECT_WILL_QOS) >> 3;
	c->will_retain = flags & CONNECT_WILL_RETAIN;
	c->username_flag = flags & CONNECT_USERNAME;
	c->password_flag = flags & CONNECT_PASSWORD;
	if (c->level == ST_MQTT_5 && (rc = rd_props(r, &c->props)))
		return rc;
	/* [MQTT-3.1.3-4]; an empty or over-long identifier is the broker's call (CONNACK). */
	if ((rc = rd_utf8(r, &c->client_id)))
		return rc;
	return decode_connect_tail(r, c);
}

/* --- the other packets ------------------------------------------------------------------ */

static int decode_connack(struct rd *r, uint8_t level, struct st_connack *a)
{
	size_t n = rd_left(r);
	uint8_t flags;
	int rc;

	a->props = (struct st_bytes){NULL, 0};
	if (level == ST_MQTT_5 ? n < 2 : n != 2)
		return ST_ERR_LENGTH;
	flags = r->p[0];
	a->code = r->p[1];
	r->p += 2;
	a->session_present = flags & 0x01;
	/* 3.1 left the whole byte unused; since 3.1.1 bits 7-1 are reserved [MQTT-3.2.2-1]. */
	if (level != ST_MQTT_31 && (flags & 0xFE))
		return ST_ERR_FLAGS;
	/*
	 * A 3.x server refusing a 5.0 CONNECT answers with a two-byte 3.x CONNACK (return code
	 * 0x01): accept it so the client can report "unsupported protocol version".
	 */
	if (level != ST_MQTT_5 || n == 2)
		return ST_OK;
	if (!REASON_IN(a->code, rc_connack))
		return ST_ERR_REASON;
	if ((rc = rd_props(r, &a->props)))
		return rc;
	return rd_left(r) ? ST_ERR_LENGTH : ST_OK;
}

static int decode_publish(struct rd *r, uint8_t flags, uint8_t level, struct st_publish *pub)
{
	uint8_t qos = (flags >> 1) & 0x03;
	int rc;

	pub->qos = qos;
	pub->dup = flags & ST_PUBLISH_FLAG_DUP;
	pub->retain = flags & ST_PUBLISH_FLAG_RETAIN;
	pub->packet_id = 0;
	pub->props = (struct st_bytes){NULL, 0};
	if ((rc = rd_bin(r, &pub->topic)))
		return rc;
	/* [MQTT-4.7.3-1]; MQTT 5 allows an empty name with a Topic Alias, the broker checks. */
	if (pub->topic.len == 0 && level != ST_MQTT_5)
		return ST_ERR_TOPIC;
	if ((rc = check_topic_name(pub->topic.ptr, pub->topic.len)))
		return rc;
	if (qos) {
		if ((rc = rd_u16(r, &pub->packet_id)))
			return rc;
		if (pub->packet_id == 0) /* [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3] */
			return ST_ERR_PACKET_ID;
	}
	if (level == ST_MQTT_5 && (rc = rd_props(r, &pub->props)))
		return rc;
	pub->payload = (struct st_bytes){r->p, (uint32_t)rd_left(r)};
	return ST_OK;
}

/*
 * PUBACK, PUBREC, PUBREL, PUBCOMP. 3.x: exactly a packet id. 5.0: the reason code and the
 * property length may be omitted (remaining length 2 or 3, section 3.4.2.1 and 3.4.2.2.1).
 */
static int decode_ack(struct rd *r, uint8_t type, uint8_t level, struct st_ack *a)
{
	size_t n = rd_left(r);
	int rc;

	a->reason = 0;
	a->props = (struct st_bytes){NULL, 0};
	if (level == ST_MQTT_5 ? n < 2 : n != 2)
		return ST_ERR_LENGTH;
	a->packet_id = be16(r->p);
	r->p += 2;
	if (a->packet_id == 0) /* it must echo a non-zero identifier [MQTT-2.3.1-1] */
		return ST_ERR_PACKET_ID;
	if (n == 2)
		return ST_OK;
	a->reason = *r->p++;
	bool ok = type == ST_PUBACK || type == ST_PUBREC ? REASON_IN(a->reason, rc_puback)
	                                                 : REASON_IN(a->reason, rc_pubrel);
	if (!ok) /* [MQTT-3.4.2-1], [MQTT-3.5.2-1], [MQTT-3.6.2-1], [MQTT-3.7.2-1] */
		return ST_ERR_REASON;
	if (n == 3)
		return ST_OK;
	if ((rc = rd_props(r, &a->props)))
		return rc;
	return rd_left(r) ? ST_ERR_LENGTH : ST_OK;
}

static int check_sub_options(uint8_t opt, uint8_t level)
{
	if (level == ST_MQTT_5) {
		if (opt & 0xC0) /* [MQTT-3.8.3-5] */
			return ST_ERR_SUB_OPTIONS;
		if ((opt & ST_SUBOPT_QOS_MASK) == 3) /* section 3.8.3.1 */
			return ST_ERR_QOS;
		if ((opt & ST_SUBOPT_RETAIN_HANDLING) == ST_SUBOPT_RETAIN_HANDLING)
			return ST_ERR_PROTOCOL; /* retain handling 3: a Protocol Error (3.8.3.1) */
		return ST_OK;
	}
	if (opt & ~ST_SUBOPT_QOS_MASK) /* [MQTT-3-8.3-4] bits 7-2 reserved */
		return ST_ERR_SUB_OPTIONS;
	return opt == 3 ? ST_ERR_QOS : ST_OK;
}

/* SUBSCRIBE and UNSUBSCRIBE: validates every entry now so st_sub_iter needs no checks. */
static bool is_share_form(struct st_bytes f)
{
	static const char prefix[] = "$share/";

	return f.len >= sizeof(prefix) - 1 && memcmp(f.ptr, prefix, sizeof(prefix) - 1) == 0;
}

static int decode_subscribe(struct rd *r, uint8_t type, uint8_t level, struct st_subscribe *s)
{
	int rc;

	s->props = (struct st_bytes){NULL, 0};
	s->payload = (struct st_bytes){NULL, 0};
	s->count = 0;
	s->entries = NULL;
	if ((rc = rd_u16(r, &s->packet_id)))
		return rc;
	if (s->packet_id == 0) /* [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3] */
		return ST_ERR_PACKET_ID;
	if (level == ST_MQTT_5 && (rc = rd_props(r, &s->props)))
		return rc;
	if (rd_left(r) == 0) /* [MQTT-3.8.3-3], [MQTT-3.10.3-2]; 5.0 [MQTT-3.8.3-2] */
		return ST_ERR_NO_FILTERS;
	s->payload = (struct st_bytes){r->p, (uint32_t)rd_left(r)};
	/* Each entry takes at least two bytes, so this runs at most remaining_len / 2 times. */
	while (rd_left(r) > 0) {
		struct st_bytes filter;
		uint8_t opt;

		if ((rc = rd_utf8(r, &filter))) /* [MQTT-3.8.3-1], [MQTT-3.10.3-1] */
			return rc;
		/* Section 4.7.1. A shared subscription's form ($share/{ShareName}/{filter}) is the
		 * broker's to judge, so that one bad share name costs one SUBACK code rather than
		 * the connection (MQTT 5 section 4.8.2). */
		if (!is_share_form(filter) && !st_topic_filter_is_valid(filter.ptr, filter.len))
			return ST_ERR_FILTER;
		if (type == ST_SUBSCRIBE) {
			if ((rc = rd_u8(r, &opt)) || (rc = check_sub_options(opt, level)))
				return rc;
		}
		s->count++;
	}
	return ST_OK;
}

/* SUBACK and UNSUBACK: one return or reason code per filter (none in a 3.x UNSUBACK). */
static int decode_suback(struct rd *r, uint8_t type, uint8_t level, struct st_suback *s)
{
	int rc;

	s->props = (struct st_bytes){NULL, 0};
	s->codes = (struct st_bytes){NULL, 0};
	if ((rc = rd_u16(r, &s->packet_id)))
		return rc;
	if (s->packet_id == 0)
		return ST_ERR_PACKET_ID;
	if (type == ST_UNSUBACK && level != ST_MQTT_5)
		return rd_left(r) ? ST_ERR_LENGTH : ST_OK;
	if (level == ST_MQTT_5 && (rc = rd_props(r, &s->props)))
		return rc;
	if (rd_left(r) == 0) /* a SUBSCRIBE or UNSUBSCRIBE has at least one filter to answer */
		return ST_ERR_LENGTH;
	s->codes = (struct st_bytes){r->p, (uint32_t)rd_left(r)};
	for (uint32_t i = 0; i < s->codes.len; i++) {
		uint8_t c = s->codes.ptr[i];
		bool ok = type == ST_UNSUBACK  ? REASON_IN(c, rc_unsuback)
		          : level == ST_MQTT_5 ? REASON_IN(c, rc_suback)
		                               : REASON_IN(c, rc_suback_v3);
		if (!ok)
			return ST_ERR_REASON;
	}
	return ST_OK;
}

/*
 * DISCONNECT and AUTH. 3.x DISCONNECT is empty. 5.0: remaining length 0 means reason 0 and no
 * properties (3.14.2.1, 3.15.2.1); DISCONNECT may also stop after the reason code (3.14.2.2.1),
 * AUTH may not: its property length follows any reason code.
 */
static int decode_disconnect(struct rd *r, uint8_t type, uint8_t level, struct st_disconnect *d)
{
	size_t n = rd_left(r);
	int rc;

	d->reason = 0;
	d->props = (struct st_bytes){NULL, 0};
	if (level != ST_MQTT_5)
		return n ? ST_ERR_LENGTH : ST_OK; /* [MQTT-3.14.1-1] and no variable header */
	if (n == 0)
		return ST_OK;
	d->reason = *r->p++;
	bool ok = type == ST_DISCONNECT ? REASON_IN(d->reason, rc_disconnect)
	                                : REASON_IN(d->reason, rc_auth);
	if (!ok)
		return ST_ERR_REASON;
	if (n == 1)
		return type == ST_DISCONNECT ? ST_OK : ST_ERR_LENGTH;
	if ((rc = rd_props(r, &d->props)))
		return rc;
	return rd_left(r) ? ST_ERR_LENGTH : ST_OK;
}

/* --- entry points ----------------------------------------------------------------------- */

static inline int decode_fixed_header(const uint8_t *buf, size_t len, uint32_t max_packet,
                                      struct st_fixed_header *fh)
{
	uint32_t rem;
	int n;

	if (len < 2)
		return ST_ERR_NEED_MORE;
	if (buf[1] < 0x80) { /* the common case: under 128 bytes */
		rem = buf[1];
		n = 1;
	} else if ((n = st_varint_decode(buf + 1, len - 1, &rem)) < 0) {
		return n;
	}
	fh->type = buf[0] >> 4;
	fh->flags = buf[0] & 0x0F;
	fh->header_len = (uint8_t)(1 + n);
	fh->remaining_len = rem;
	if (max_packet && (uint64_t)fh->header_len + rem > max_packet)
		return ST_ERR_TOO_LARGE;
	return ST_OK;
}

int st_decode_fixed_header(const uint8_t *buf, size_t len, uint32_t max_packet,
                           struct st_fixed_header *fh)
{
	return decode_fixed_header(buf, len, max_packet, fh);
}

/* Decodes a body whose type and flags have been checked. */
static int decode_body(const struct st_fixed_header *fh, const uint8_t *body, uint8_t level,
                       struct st_packet *pkt)
{
	struct rd r = {body, body + fh->remaining_len};

	pkt->type = fh->type;
	pkt->flags = fh->flags;
	switch (fh->type) {
	case ST_PUBLISH:
		return decode_publish(&r, fh->flags, level, &pkt->publish);
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		return decode_ack(&r, fh->type, level, &pkt->ack);
	case ST_CONNECT:
		return decode_connect(&r, fh->flags, &pkt->connect);
	case ST_CONNACK:
		return decode_connack(&r, level, &pkt->connack);
	case ST_SUBSCRIBE:
	case ST_UNSUBSCRIBE:
		return decode_subscribe(&r, fh->type, level, &pkt->subscribe);
	case ST_SUBACK:
	case ST_UNSUBACK:
		return decode_suback(&r, fh->type, level, &pkt->suback);
	case ST_PINGREQ:
	case ST_PINGRESP:
		return fh->remaining_len ? ST_ERR_LENGTH : ST_OK; /* section 3.12, 3.13 */
	case ST_DISCONNECT:
	case ST_AUTH:
		return decode_disconnect(&r, fh->type, level, &pkt->disconnect);
	default:
		return ST_ERR_TYPE;
	}
}

int st_decode_body(const struct st_fixed_header *fh, const uint8_t *body, uint8_t level,
                   struct st_packet *pkt)
{
	int rc = check_type_flags(fh->type, fh->flags, level);

	return rc ? rc : decode_body(fh, body, level, pkt);
}

int st_decode_packet(const uint8_t *buf, size_t len, uint8_t level, uint32_t max_packet,
                     struct st_packet *pkt, size_t *consumed)
{
	struct st_fixed_header fh;
	int rc;

	if (len == 0)
		return ST_ERR_NEED_MORE;
	/* Reject a bad first byte before waiting for the rest of the packet. */
	if ((rc = check_type_flags(buf[0] >> 4, buf[0] & 0x0F, level)))
		return rc;
	if ((rc = decode_fixed_header(buf, len, max_packet, &fh)))
		return rc;
	if (len - fh.header_len < fh.remaining_len)
		return ST_ERR_NEED_MORE;
	if ((rc = decode_body(&fh, buf + fh.header_len, level, pkt)))
		return rc;
	*consumed = (size_t)fh.header_len + fh.remaining_len;
	return ST_OK;
}

void st_sub_iter_init(struct st_sub_iter *it, const struct st_packet *pkt)
{
	it->p = pkt->subscribe.payload.ptr;
	it->end = it->p ? it->p + pkt->subscribe.payload.len : NULL;
	it->has_options = pkt->type == ST_SUBSCRIBE;
}

bool st_sub_iter_next(struct st_sub_iter *it, struct st_sub_entry *entry)
{
	/* The decoder validated the payload; the bounds checks only keep a misuse in bounds. */
	if (it->p == NULL || it->end - it->p < 2)
		return false;
	size_t n = be16(it->p);
	size_t need = 2 + n + (it->has_options ? 1 : 0);

	if ((size_t)(it->end - it->p) < need)
		return false;
	entry->filter = (struct st_bytes){it->p + 2, (uint32_t)n};
	entry->options = it->has_options ? it->p[2 + n] : 0;
	it->p += need;
	return true;
}

int st_varint_decode(const uint8_t *buf, size_t len, uint32_t *value)
{
	uint32_t v = 0;

	/*
	 * A non-minimal encoding (0x80 0x00) is accepted: 5.0 [MQTT-1.5.5-1] binds the sender and
	 * 3.1.1 states no rule, and rejecting it protects nothing.
	 */
	for (size_t i = 0; i < ST_VARINT_MAX; i++) {
		if (i == len)
			return ST_ERR_NEED_MORE;
		v |= (uint32_t)(buf[i] & 0x7F) << (7 * i);
		if (!(buf[i] & 0x80)) {
			*value = v;
			return (int)i + 1;
		}
	}
	return ST_ERR_REMLEN;
}

const char *st_packet_name(uint8_t type)
{
	static const char *const names[16] = {
	        "RESERVED", "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
	        "PUBREL",   "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
	        "PINGREQ",  "PINGRESP", "DISCONNECT", "AUTH",
	};

	return type < 16 ? names[type] : "RESERVED";
}
