/*
 * The log's record codec (record.h has the layout). Each record type is a schema, a short
 * list of fields in their on-disk order; one encoder and one decoder walk the schemas, so the
 * two cannot disagree on a type's layout. Decoding checks the length against the bytes
 * present before the CRC reads them, then the CRC before any field is parsed, then every
 * field's bound: a record never trusts its own length beyond the bytes given.
 */
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>

#include "record.h"
#include "starling/topic.h"

const uint8_t store_magic[STORE_MAGIC_LEN] = {0x89, 'S', 'T', 'L', 'O', 'G', '\r', '\n'};

enum field {
	F_END = 0,
	F_QOS,       /* u8 */
	F_RETAIN,    /* u8 */
	F_PROTOCOL,  /* u8 */
	F_OPTIONS,   /* u8 */
	F_STAGE,     /* u8 */
	F_PID,       /* u16 */
	F_SUB_ID,    /* u32 */
	F_INTERVAL,  /* u32 */
	F_EXPIRY,    /* u64 */
	F_MSG_ID,    /* u64 */
	F_CLIENT,    /* str */
	F_TOPIC,     /* str */
	F_FILTER,    /* str */
	F_PROPS,     /* blob */
	F_PAYLOAD,   /* blob */
	F_ORIGIN,    /* u64 */
	F_SOURCE,    /* u16 */
	F_ORIGIN_LO, /* u64 */
	F_HAS_USER,  /* u8 */
	F_LISTENER,  /* u16 */
	F_USER,      /* str */
};

#define FIELDS_MAX 9

/* Fixed-width fields first, then the variable ones, as record.h lists them per type. */
static const uint8_t schema[STORE_REC__MAX + 1][FIELDS_MAX] = {
        [STORE_REC_RETAIN_SET] = {F_EXPIRY, F_QOS, F_TOPIC, F_PROPS, F_PAYLOAD},
        [STORE_REC_RETAIN_DEL] = {F_TOPIC},
        [STORE_REC_SESSION_PUT] = {F_EXPIRY, F_INTERVAL, F_PROTOCOL, F_CLIENT},
        [STORE_REC_SESSION_DEL] = {F_CLIENT},
        [STORE_REC_SUB_ADD] = {F_SUB_ID, F_OPTIONS, F_CLIENT, F_FILTER},
        [STORE_REC_SUB_DEL] = {F_CLIENT, F_FILTER},
        [STORE_REC_QUEUE_ADD] = {F_MSG_ID, F_EXPIRY, F_QOS, F_RETAIN, F_CLIENT, F_TOPIC, F_PROPS,
                                 F_PAYLOAD},
        [STORE_REC_QUEUE_DEL] = {F_MSG_ID, F_CLIENT},
        [STORE_REC_INFLIGHT_SET] = {F_MSG_ID, F_PID, F_STAGE, F_CLIENT},
        [STORE_REC_INFLIGHT_CLEAR] = {F_PID, F_CLIENT},
        [STORE_REC_INBOUND_ADD] = {F_PID, F_CLIENT},
        [STORE_REC_INBOUND_DEL] = {F_PID, F_CLIENT},
        [STORE_REC_WILL_SET] = {F_EXPIRY, F_QOS, F_RETAIN, F_CLIENT, F_TOPIC, F_PROPS, F_PAYLOAD},
        [STORE_REC_WILL_CLEAR] = {F_CLIENT},
        [STORE_REC_COMMIT] = {F_END},
        [STORE_REC_ORIGIN] = {F_ORIGIN_LO, F_ORIGIN, F_SOURCE},
        [STORE_REC_INBOUND_ORIGIN] = {F_ORIGIN, F_PID, F_CLIENT},
        [STORE_REC_PAD] = {F_END}, /* its payload is skipped, whatever its length */
        [STORE_REC_SESSION_AUTH] = {F_HAS_USER, F_LISTENER, F_CLIENT, F_USER},
        [STORE_REC_RETAIN_SOURCE] = {F_HAS_USER, F_LISTENER, F_TOPIC, F_CLIENT, F_USER},
        [STORE_REC_SHARE_MARK] = {F_ORIGIN, F_SOURCE, F_FILTER},
};

static const char *const type_names[STORE_REC__MAX + 1] = {
        [STORE_REC_RETAIN_SET] = "retain-set",
        [STORE_REC_RETAIN_DEL] = "retain-del",
        [STORE_REC_SESSION_PUT] = "session-put",
        [STORE_REC_SESSION_DEL] = "session-del",
        [STORE_REC_SUB_ADD] = "sub-add",
        [STORE_REC_SUB_DEL] = "sub-del",
        [STORE_REC_QUEUE_ADD] = "queue-add",
        [STORE_REC_QUEUE_DEL] = "queue-del",
        [STORE_REC_INFLIGHT_SET] = "inflight-set",
        [STORE_REC_INFLIGHT_CLEAR] = "inflight-clear",
        [STORE_REC_INBOUND_ADD] = "inbound-add",
        [STORE_REC_INBOUND_DEL] = "inbound-del",
        [STORE_REC_WILL_SET] = "will-set",
        [STORE_REC_WILL_CLEAR] = "will-clear",
        [STORE_REC_COMMIT] = "commit",
        [STORE_REC_PAD] = "pad",
        [STORE_REC_ORIGIN] = "origin",
        [STORE_REC_INBOUND_ORIGIN] = "inbound-origin",
        [STORE_REC_SESSION_AUTH] = "session-auth",
        [STORE_REC_RETAIN_SOURCE] = "retain-source",
        [STORE_REC_SHARE_MARK] = "share-mark",
};

const char *store_rec_type_name(unsigned type)
{
	return type >= 1 && type <= STORE_REC__MAX ? type_names[type] : "unknown";
}

const char *store_strerror(int err)
{
	static const char *const msg[] = {
	        [0] = "success",
	        [1] = "not a Starling log (too short, or wrong magic)",
	        [2] = "corrupt log header",
	        [3] = "log written by a newer format",
	        [4] = "log written by a broker with another worker count",
	        [5] = "record cut short (torn write)",
	        [6] = "record length out of bounds",
	        [7] = "record CRC32C mismatch",
	        [8] = "unknown record type",
	        [9] = "malformed record payload",
	        [10] = "out of memory",
	        [11] = "record field out of range",
	};

	if (err > 0 || err < STORE_E__MIN)
		return "unknown store error";
	return msg[-err];
}

uint32_t store_crc32c(uint32_t crc, const void *data, size_t len)
{
	/*
	 * ISA-L's crc32_iscsi() neither inverts its initial value nor its result (checked:
	 * crc32_iscsi("123456789", 9, 0xffffffff) == ~0xE3069283), so the usual CRC-32C is
	 * ~crc32_iscsi(data, len, ~crc). Its length is an int: callers stay far below INT_MAX
	 * (STORE_BODY_MAX), and larger inputs are fed in pieces.
	 */
	const uint8_t *p = data;

	crc = ~crc;
	while (len > 0) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return ~crc;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n);

/* A new allocation of cap bytes holding the buffer's bytes, at b->align if it has one. */
static int buf_move(struct store_buf *b, size_t cap)
{
	uint8_t *p;

	if (!b->align) {
		p = realloc(b->data, cap);
		if (!p)
			return STORE_E_NOMEM;
	} else {
		p = aligned_alloc(b->align, cap);
		if (!p)
			return STORE_E_NOMEM;
		if (b->len)
			memcpy(p, b->data, b->len);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int store_buf_reserve(struct store_buf *b, size_t more)
{
	size_t need, cap;

	if (more > SIZE_MAX / 2 - b->len)
		return STORE_E_NOMEM;
	need = b->len + more;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need || cap < b->align)
		cap *= 2;
	return buf_move(b, cap);
}

int store_buf_align(struct store_buf *b, size_t align)
{
	size_t was = b->align;

	b->align = align;
	if (!align || !b->data || ((uintptr_t)b->data & (align - 1)) == 0)
		return 0;
	if (buf_move(b, b->cap < align ? align : b->cap) != 0) {
		b->align = was;
		return STORE_E_NOMEM;
	}
	return 0;
}

int store_pad_encode(struct store_buf *b, size_t total)
{
	uint8_t *p;

	if (total < STORE_PAD_MIN || total - STORE_REC_HDR_LEN > STORE_BODY_MAX)
		return STORE_E_FIELD;
	if (store_buf_reserve(b, total))
		return STORE_E_NOMEM;
	p = b->data + b->len;
	memset(p, 0, total);
	put_le(p, total - STORE_REC_HDR_LEN, 4);
	p[STORE_REC_HDR_LEN] = STORE_REC_PAD;
	put_le(p + 4, store_crc32c(0, p + STORE_REC_HDR_LEN, total - STORE_REC_HDR_LEN), 4);
	b->len += total;
	return 0;
}

void store_buf_free(struct store_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int store_header_encode(struct store_buf *b, const struct store_header *h)
{
	uint8_t *p;

	if (h->workers == 0 || h->worker >= h->workers)
		return STORE_E_FIELD;
	if (store_buf_reserve(b, STORE_HEADER_LEN))
		return STORE_E_NOMEM;
	p = b->data + b->len;
	memcpy(p, store_magic, STORE_MAGIC_LEN);
	put_le(p + 8, STORE_VERSION, 2);
	put_le(p + 10, STORE_HEADER_LEN, 2);
	put_le(p + 12, h->flags, 4);
	put_le(p + 16, h->worker, 2);
	put_le(p + 18, h->workers, 2);
	put_le(p + 20, h->segment, 8);
	put_le(p + 28, store_crc32c(0, p, 28), 4);
	b->len += STORE_HEADER_LEN;
	return 0;
}

int store_header_decode(const uint8_t *data, size_t len, struct store_header *h, size_t *hdr_len)
{
	size_t hl;

	if (len < STORE_HEADER_LEN || memcmp(data, store_magic, STORE_MAGIC_LEN) != 0)
		return STORE_E_NOT_LOG;
	h->version = (uint16_t)get_le(data + 8, 2);
	hl = (size_t)get_le(data + 10, 2);
	/*
	 * Every version keeps the first 28 bytes' meaning and puts its CRC in the header's last
	 * 4 bytes, so that an old reader can say "newer format" of a sound header rather than
	 * "corrupt" of one that is only longer.
	 */
	if (hl < STORE_HEADER_LEN || hl > len || (hl & 3) != 0)
		return STORE_E_HEADER;
	if ((uint32_t)get_le(data + hl - 4, 4) != store_crc32c(0, data, hl - 4))
		return STORE_E_HEADER;
	h->flags = (uint32_t)get_le(data + 12, 4);
	h->worker = (uint16_t)get_le(data + 16, 2);
	h->workers = (uint16_t)get_le(data + 18, 2);
	h->segment = get_le(data + 20, 8);
	if (h->version == 0)
		return STORE_E_HEADER;
	if (h->version > STORE_VERSION || (h->flags & ~STORE_FLAGS_KNOWN) != 0)
		return STORE_E_NEWER;
	if (hl != STORE_HEADER_LEN || h->workers == 0 || h->worker >= h->workers)
		return STORE_E_HEADER;
	*hdr_len = hl;
	return 0;
}

static unsigned field_width(uint8_t f)
{
	switch (f) {
	case F_PID:
	case F_SOURCE:
	case F_LISTENER:
		return 2;
	case F_SUB_ID:
	case F_INTERVAL:
		return 4;
	case F_EXPIRY:
	case F_MSG_ID:
	case F_ORIGIN:
	case F_ORIGIN_LO:
		return 8;
	case F_CLIENT:
	case F_TOPIC:
	case F_FILTER:
	case F_USER:
		return 0; /* str: u16 length */
	case F_PROPS:
	case F_PAYLOAD:
		return 0; /* blob: u32 length */
	default:
		return 1;
	}
}

static bool field_is_blob(uint8_t f)
{
	return f == F_PROPS || f == F_PAYLOAD;
}

/* The record's view or integer behind a field. */
static struct st_bytes *field_bytes(struct store_rec *r, uint8_t f)
{
	switch (f) {
	case F_CLIENT:
		return &r->client;
	case F_TOPIC:
		return &r->topic;
	case F_FILTER:
		return &r->filter;
	case F_PROPS:
		return &r->props;
	case F_USER:
		return &r->user;
	default:
		return &r->payload;
	}
}

static uint64_t field_int(const struct store_rec *r, uint8_t f)
{
	switch (f) {
	case F_QOS:
		return r->qos;
	case F_RETAIN:
		return r->retain;
	case F_PROTOCOL:
		return r->protocol;
	case F_OPTIONS:
		return r->options;
	case F_STAGE:
		return r->stage;
	case F_PID:
		return r->packet_id;
	case F_SUB_ID:
		return r->sub_id;
	case F_INTERVAL:
		return r->expiry_interval_s;
	case F_EXPIRY:
		return r->expiry_ms;
	case F_ORIGIN:
		return r->origin;
	case F_ORIGIN_LO:
		return r->origin_lo;
	case F_SOURCE:
		return r->source;
	case F_HAS_USER:
		return r->has_user;
	case F_LISTENER:
		return r->listener;
	default:
		return r->msg_id;
	}
}

static void set_field_int(struct store_rec *r, uint8_t f, uint64_t v)
{
	switch (f) {
	case F_QOS:
		r->qos = (uint8_t)v;
		break;
	case F_RETAIN:
		r->retain = (uint8_t)v;
		break;
	case F_PROTOCOL:
		r->protocol = (uint8_t)v;
		break;
	case F_OPTIONS:
		r->options = (uint8_t)v;
		break;
	case F_STAGE:
		r->stage = (uint8_t)v;
		break;
	case F_PID:
		r->packet_id = (uint16_t)v;
		break;
	case F_SUB_ID:
		r->sub_id = (uint32_t)v;
		break;
	case F_INTERVAL:
		r->expiry_interval_s = (uint32_t)v;
		break;
	case F_EXPIRY:
		r->expiry_ms = v;
		break;
	case F_ORIGIN:
		r->origin = v;
		break;
	case F_ORIGIN_LO:
		r->origin_lo = v;
		break;
	case F_SOURCE:
		r->source = (uint16_t)v;
		break;
	case F_HAS_USER:
		r->has_user = (uint8_t)v;
		break;
	case F_LISTENER:
		r->listener = (uint16_t)v;
		break;
	default:
		r->msg_id = v;
		break;
	}
}

/*
 * Whether a field's value is one the broker could have written. The encoder refuses what the
 * decoder would call malformed, so a log holds only records that replay.
 */
static bool int_is_valid(uint8_t f, uint64_t v)
{
	switch (f) {
	case F_QOS:
		return v <= 2;
	case F_RETAIN:
	case F_HAS_USER:
		return v <= 1;
	case F_PROTOCOL:
		return v >= 3 && v <= 5;
	case F_OPTIONS:
		/* Reserved bits 6-7 clear, QoS and retain handling 0..2 (MQTT 5 3.8.3.1). */
		return (v & 0xc0) == 0 && (v & 3) != 3 && ((v >> 4) & 3) != 3;
	case F_STAGE:
		return v == STORE_STAGE_PUBLISH || v == STORE_STAGE_PUBREL;
	case F_PID:
		return v != 0;
	case F_SUB_ID:
		return v <= 268435455; /* a variable byte integer's maximum */
	case F_ORIGIN:
	case F_ORIGIN_LO:
		return v != 0 && v < STORE_ORIGIN_MAX;
	default:
		return true;
	}
}

static bool bytes_are_valid(uint8_t f, struct st_bytes s)
{
	switch (f) {
	case F_CLIENT:
		return s.len >= 1 && s.len <= UINT16_MAX;
	case F_TOPIC:
		return s.len <= UINT16_MAX && st_topic_name_is_valid(s.ptr, s.len);
	case F_FILTER:
		return s.len <= UINT16_MAX && st_topic_filter_is_valid(s.ptr, s.len);
	default:
		return s.len == 0 || s.ptr != NULL;
	}
}

int store_rec_encode(struct store_buf *b, const struct store_rec *r)
{
	return store_rec_encode_views(b, r, NULL);
}

int store_rec_encode_views(struct store_buf *b, const struct store_rec *r, struct store_rec *out)
{
	const uint8_t *fs;
	uint64_t body = 1;
	uint8_t *p;

	if (r->type < 1 || r->type > STORE_REC__MAX)
		return STORE_E_FIELD;
	if (r->type == STORE_REC_ORIGIN && r->origin_lo > r->origin)
		return STORE_E_FIELD;
	if ((r->type == STORE_REC_SESSION_AUTH || r->type == STORE_REC_RETAIN_SOURCE) &&
	    !r->has_user && r->user.len)
		return STORE_E_FIELD;
	fs = schema[r->type];
	for (unsigned i = 0; i < FIELDS_MAX && fs[i] != F_END; i++) {
		struct st_bytes s;

		if (field_width(fs[i])) {
			if (!int_is_valid(fs[i], field_int(r, fs[i])))
				return STORE_E_FIELD;
			body += field_width(fs[i]);
			continue;
		}
		s = *field_bytes((struct store_rec *)r, fs[i]);
		if (!bytes_are_valid(fs[i], s))
			return STORE_E_FIELD;
		body += (field_is_blob(fs[i]) ? 4 : 2) + (uint64_t)s.len;
	}
	if (body > STORE_BODY_MAX)
		return STORE_E_FIELD;
	if (store_buf_reserve(b, STORE_REC_HDR_LEN + body))
		return STORE_E_NOMEM;
	if (out)
		*out = *r;
	p = b->data + b->len;
	put_le(p, body, 4);
	p[8] = r->type;
	p += 9;
	for (unsigned i = 0; i < FIELDS_MAX && fs[i] != F_END; i++) {
		unsigned w = field_width(fs[i]), lw;
		struct st_bytes s;

		if (w) {
			put_le(p, field_int(r, fs[i]), w);
			p += w;
			continue;
		}
		s = *field_bytes((struct store_rec *)r, fs[i]);
		lw = field_is_blob(fs[i]) ? 4 : 2;
		put_le(p, s.len, lw);
		if (s.len)
			memcpy(p + lw, s.ptr, s.len);
		if (out)
			*field_bytes(out, fs[i]) =
			        (struct st_bytes){.ptr = s.len ? p + lw : NULL, .len = s.len};
		p += lw + s.len;
	}
	put_le(b->data + b->len + 4, store_crc32c(0, b->data + b->len + 8, body), 4);
	b->len += STORE_REC_HDR_LEN + body;
	return 0;
}

/* Parses a body (type + payload) whose CRC matched. */
static int decode_body(const uint8_t *p, size_t len, struct store_rec *r)
{
	const uint8_t *end = p + len;
	const uint8_t *fs;

	memset(r, 0, sizeof(*r));
	r->type = p[0];
	if (r->type < 1 || r->type > STORE_REC__MAX)
		return STORE_E_TYPE;
	if (r->type == STORE_REC_PAD)
		return 0;
	fs = schema[r->type];
	p++;
	for (unsigned i = 0; i < FIELDS_MAX && fs[i] != F_END; i++) {
		unsigned w = field_width(fs[i]), lw;
		struct st_bytes *s;
		uint64_t n;

		if (w) {
			if ((size_t)(end - p) < w)
				return STORE_E_MALFORMED;
			n = get_le(p, w);
			if (!int_is_valid(fs[i], n))
				return STORE_E_MALFORMED;
			set_field_int(r, fs[i], n);
			p += w;
			continue;
		}
		lw = field_is_blob(fs[i]) ? 4 : 2;
		if ((size_t)(end - p) < lw)
			return STORE_E_MALFORMED;
		n = get_le(p, lw);
		p += lw;
		if ((size_t)(end - p) < n)
			return STORE_E_MALFORMED;
		s = field_bytes(r, fs[i]);
		s->ptr = n ? p : NULL;
		s->len = (uint32_t)n;
		if (!bytes_are_valid(fs[i], *s))
			return STORE_E_MALFORMED;
		p += n;
	}
	if (r->type == STORE_REC_ORIGIN && r->origin_lo > r->origin)
		return STORE_E_MALFORMED; /* an interval ends where it starts or later */
	if ((r->type == STORE_REC_SESSION_AUTH || r->type == STORE_REC_RETAIN_SOURCE) &&
	    !r->has_user && r->user.len)
		return STORE_E_MALFORMED; /* a user name without the flag that says one was given */
	return p == end ? 0 : STORE_E_MALFORMED;
}

int store_rec_decode(const uint8_t *data, size_t len, struct store_rec *r, size_t *used)
{
	uint32_t body, crc;
	int err;

	if (len < STORE_REC_HDR_LEN)
		return STORE_E_TORN;
	body = (uint32_t)get_le(data, 4);
	if (body == 0 || body > STORE_BODY_MAX)
		return STORE_E_TOO_LONG;
	if (len - STORE_REC_HDR_LEN < body)
		return STORE_E_TORN;
	crc = (uint32_t)get_le(data + 4, 4);
	if (crc != store_crc32c(0, data + STORE_REC_HDR_LEN, body))
		return STORE_E_CRC;
	err = decode_body(data + STORE_REC_HDR_LEN, body, r);
	if (err)
		return err;
	*used = STORE_REC_HDR_LEN + body;
	return 0;
}
