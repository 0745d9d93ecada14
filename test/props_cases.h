/*
 * The reference model shared by the property codec's unit tests (test/test_props.c: table 2-4
 * and the parsing rules; test/test_props_writer.c: the writer, the iterator and golden packets),
 * each its own CUnit binary. It is written apart from src/codec/props.c: table 2-4 of MQTT 5.0
 * copied as text and parsed into packet sets, an encoder of blocks by the spec's type names, sample
 * values per type, the field each identifier must land in, and the checks every test runs on a
 * block (parse against the model, iterate, re-write, cut at every length). Every parse reads a
 * guard-page copy (testutil.h), so a read past the block faults. Functions are static inline so
 * a binary that does not use one does not warn.
 */
#ifndef STARLING_TEST_PROPS_CASES_H
#define STARLING_TEST_PROPS_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "starling/props.h"
#include "testutil.h"

#define NCTX    (ST_PCTX_AUTH + 1)
#define BLK_MAX 4096 /* larger than any block built here */

static const char *const ctx_names[NCTX] = {
        "CONNECT", "WILL",  "CONNACK",  "PUBLISH",    "ACK",  "SUBSCRIBE",
        "SUBACK",  "UNSUB", "UNSUBACK", "DISCONNECT", "AUTH",
};

/* --- table 2-4, as the spec prints it ---------------------------------------------------- */

struct spec_row {
	uint8_t id;          /* identifier (decimal column) */
	const char *type;    /* "Type" column */
	const char *packets; /* "Packet / Will Properties" column */
};

static const struct spec_row spec_rows[] = {
        {1, "Byte", "PUBLISH, Will Properties"},
        {2, "Four Byte Integer", "PUBLISH, Will Properties"},
        {3, "UTF-8 Encoded String", "PUBLISH, Will Properties"},
        {8, "UTF-8 Encoded String", "PUBLISH, Will Properties"},
        {9, "Binary Data", "PUBLISH, Will Properties"},
        {11, "Variable Byte Integer", "PUBLISH, SUBSCRIBE"},
        {17, "Four Byte Integer", "CONNECT, CONNACK, DISCONNECT"},
        {18, "UTF-8 Encoded String", "CONNACK"},
        {19, "Two Byte Integer", "CONNACK"},
        {21, "UTF-8 Encoded String", "CONNECT, CONNACK, AUTH"},
        {22, "Binary Data", "CONNECT, CONNACK, AUTH"},
        {23, "Byte", "CONNECT"},
        {24, "Four Byte Integer", "Will Properties"},
        {25, "Byte", "CONNECT"},
        {26, "UTF-8 Encoded String", "CONNACK"},
        {28, "UTF-8 Encoded String", "CONNACK, DISCONNECT"},
        {31, "UTF-8 Encoded String",
         "CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH"},
        {33, "Two Byte Integer", "CONNECT, CONNACK"},
        {34, "Two Byte Integer", "CONNECT, CONNACK"},
        {35, "Two Byte Integer", "PUBLISH"},
        {36, "Byte", "CONNACK"},
        {37, "Byte", "CONNACK"},
        {38, "UTF-8 String Pair",
         "CONNECT, CONNACK, PUBLISH, Will Properties, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, "
         "SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH"},
        {39, "Four Byte Integer", "CONNECT, CONNACK"},
        {40, "Byte", "CONNACK"},
        {41, "Byte", "CONNACK"},
        {42, "Byte", "CONNACK"},
};
#define NROWS (sizeof(spec_rows) / sizeof(spec_rows[0]))

static inline const struct spec_row *spec_row_of(unsigned id)
{
	for (size_t i = 0; i < NROWS; i++)
		if (spec_rows[i].id == id)
			return &spec_rows[i];
	return NULL;
}

/* The packet set of a row, one bit per st_prop_ctx; the four acks must come together. */
static inline unsigned spec_ctx_mask(const struct spec_row *r)
{
	static const struct {
		const char *name;
		int ctx;
	} names[] = {
	        {"CONNECT", ST_PCTX_CONNECT},
	        {"Will Properties", ST_PCTX_WILL},
	        {"CONNACK", ST_PCTX_CONNACK},
	        {"PUBLISH", ST_PCTX_PUBLISH},
	        {"PUBACK", ST_PCTX_ACK},
	        {"PUBREC", ST_PCTX_ACK},
	        {"PUBREL", ST_PCTX_ACK},
	        {"PUBCOMP", ST_PCTX_ACK},
	        {"SUBSCRIBE", ST_PCTX_SUBSCRIBE},
	        {"SUBACK", ST_PCTX_SUBACK},
	        {"UNSUBSCRIBE", ST_PCTX_UNSUBSCRIBE},
	        {"UNSUBACK", ST_PCTX_UNSUBACK},
	        {"DISCONNECT", ST_PCTX_DISCONNECT},
	        {"AUTH", ST_PCTX_AUTH},
	};
	unsigned mask = 0, acks = 0;
	const char *s = r->packets;

	while (*s) {
		size_t n = strcspn(s, ",");
		bool found = false;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
				mask |= 1u << names[i].ctx;
				acks += names[i].ctx == ST_PCTX_ACK;
				found = true;
			}
		}
		CU_ASSERT_FATAL(found);
		s += n;
		s += strspn(s, ", ");
	}
	CU_ASSERT_FATAL(acks == 0 || acks == 4);
	return mask;
}

/* --- building blocks by hand ------------------------------------------------------------- */

struct blk {
	uint8_t b[BLK_MAX]; /* the block */
	size_t n;           /* bytes used */
};

static inline void put(struct blk *k, const void *p, size_t n)
{
	CU_ASSERT_FATAL(k->n + n <= sizeof(k->b));
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static inline void put8(struct blk *k, uint8_t v)
{
	put(k, &v, 1);
}

static inline void put_str(struct blk *k, const void *s, size_t n)
{
	put8(k, (uint8_t)(n >> 8));
	put8(k, (uint8_t)n);
	put(k, s, n);
}

static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; hex[0] && hex[1] && n < cap; hex += 2) {
		while (*hex == ' ')
			hex++;
		unsigned v;

		CU_ASSERT_FATAL(sscanf(hex, "%2x", &v) == 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* One expected property: integer value, or string/binary (s, slen; slen 0: strlen) and s2. */
struct exp_prop {
	uint8_t id;     /* 0 ends a list */
	uint32_t value; /* integer types */
	const char *s;  /* string or binary; a pair's name */
	size_t slen;    /* bytes of s; 0: strlen(s) */
	const char *s2; /* a pair's value */
};

static inline struct st_bytes exp_s(const struct exp_prop *e)
{
	if (e->s == NULL)
		return (struct st_bytes){NULL, 0};
	return (struct st_bytes){(const uint8_t *)e->s,
	                         (uint32_t)(e->slen ? e->slen : strlen(e->s))};
}

static inline struct st_bytes exp_s2(const struct exp_prop *e)
{
	return e->s2 ? (struct st_bytes){(const uint8_t *)e->s2, (uint32_t)strlen(e->s2)}
	             : (struct st_bytes){NULL, 0};
}

/* Encodes e by the type the spec gives its identifier (independent of src/codec/props.c). */
static inline void put_prop(struct blk *k, const struct exp_prop *e)
{
	const char *type = spec_row_of(e->id)->type;
	uint32_t v = e->value;

	put8(k, e->id);
	if (strcmp(type, "Byte") == 0) {
		put8(k, (uint8_t)v);
	} else if (strcmp(type, "Two Byte Integer") == 0) {
		put8(k, (uint8_t)(v >> 8));
		put8(k, (uint8_t)v);
	} else if (strcmp(type, "Four Byte Integer") == 0) {
		for (int sh = 24; sh >= 0; sh -= 8)
			put8(k, (uint8_t)(v >> sh));
	} else if (strcmp(type, "Variable Byte Integer") == 0) {
		do {
			put8(k, (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0)));
			v >>= 7;
		} while (v);
	} else {
		struct st_bytes s = exp_s(e), s2 = exp_s2(e);

		put_str(k, s.ptr, s.len);
		if (strcmp(type, "UTF-8 String Pair") == 0)
			put_str(k, s2.ptr, s2.len);
	}
}

/* A valid sample of an identifier's type; `variant` varies the value. */
static inline struct exp_prop sample(uint8_t id, unsigned variant)
{
	const char *type = spec_row_of(id)->type;
	static const char *const strs[] = {"a/b", "x", "topic/\xc3\xa9t\xc3\xa9", "q/r/s"};
	struct exp_prop e = {.id = id};

	if (strcmp(type, "Byte") == 0)
		e.value = variant & 1;
	else if (strcmp(type, "Two Byte Integer") == 0)
		e.value = 0x1234 + variant;
	else if (strcmp(type, "Four Byte Integer") == 0)
		e.value = 0x12345678u + variant;
	else if (strcmp(type, "Variable Byte Integer") == 0)
		e.value = (uint32_t[]){1, 300, 70000, 268435455}[variant % 4];
	else if (strcmp(type, "Binary Data") == 0)
		e.s = "\x00\xff\x80", e.slen = 3;
	else
		e.s = strs[variant % 4];
	if (strcmp(type, "UTF-8 String Pair") == 0)
		e.s2 = variant % 2 ? "" : "value";
	return e;
}

/* --- checks ----------------------------------------------------------------------------- */

static inline bool bytes_eq(struct st_bytes a, struct st_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int parse_guarded(struct tu_guard *g, const uint8_t *b, size_t n, int ctx,
                                struct st_props *out)
{
	const uint8_t *copy = tu_guard_copy(g, b, n);

	return st_props_parse((struct st_bytes){copy, (uint32_t)n}, ctx, out);
}

/* What st_props_parse must make of a property: the test's own id -> field mapping. */
static inline void model_apply(struct st_props *m, const struct exp_prop *e)
{
	struct st_bytes s = exp_s(e);

	m->present |= 1ull << e->id;
	switch (e->id) {
	case 0x01:
		m->payload_format = (uint8_t)e->value;
		break;
	case 0x02:
		m->message_expiry_s = e->value;
		break;
	case 0x03:
		m->content_type = s;
		break;
	case 0x08:
		m->response_topic = s;
		break;
	case 0x09:
		m->correlation_data = s;
		break;
	case 0x0B:
		if (m->subscription_id_count++ == 0)
			m->subscription_id = e->value;
		break;
	case 0x11:
		m->session_expiry_s = e->value;
		break;
	case 0x12:
		m->assigned_client_id = s;
		break;
	case 0x13:
		m->server_keep_alive_s = (uint16_t)e->value;
		break;
	case 0x15:
		m->auth_method = s;
		break;
	case 0x16:
		m->auth_data = s;
		break;
	case 0x17:
		m->request_problem_info = (uint8_t)e->value;
		break;
	case 0x18:
		m->will_delay_s = e->value;
		break;
	case 0x19:
		m->request_response_info = (uint8_t)e->value;
		break;
	case 0x1A:
		m->response_info = s;
		break;
	case 0x1C:
		m->server_reference = s;
		break;
	case 0x1F:
		m->reason_string = s;
		break;
	case 0x21:
		m->receive_maximum = (uint16_t)e->value;
		break;
	case 0x22:
		m->topic_alias_maximum = (uint16_t)e->value;
		break;
	case 0x23:
		m->topic_alias = (uint16_t)e->value;
		break;
	case 0x24:
		m->maximum_qos = (uint8_t)e->value;
		break;
	case 0x25:
		m->retain_available = (uint8_t)e->value;
		break;
	case 0x26:
		m->user_count++;
		break;
	case 0x27:
		m->maximum_packet_size = e->value;
		break;
	case 0x28:
		m->wildcard_sub_available = (uint8_t)e->value;
		break;
	case 0x29:
		m->sub_id_available = (uint8_t)e->value;
		break;
	case 0x2A:
		m->shared_sub_available = (uint8_t)e->value;
		break;
	default:
		CU_FAIL("model_apply: unknown id");
	}
}

static inline void assert_props_equal(const struct st_props *a, const struct st_props *m)
{
	CU_ASSERT_EQUAL(a->present, m->present);
	CU_ASSERT_EQUAL(a->payload_format, m->payload_format);
	CU_ASSERT_EQUAL(a->message_expiry_s, m->message_expiry_s);
	CU_ASSERT(bytes_eq(a->content_type, m->content_type));
	CU_ASSERT(bytes_eq(a->response_topic, m->response_topic));
	CU_ASSERT(bytes_eq(a->correlation_data, m->correlation_data));
	CU_ASSERT_EQUAL(a->subscription_id, m->subscription_id);
	CU_ASSERT_EQUAL(a->subscription_id_count, m->subscription_id_count);
	CU_ASSERT_EQUAL(a->session_expiry_s, m->session_expiry_s);
	CU_ASSERT(bytes_eq(a->assigned_client_id, m->assigned_client_id));
	CU_ASSERT_EQUAL(a->server_keep_alive_s, m->server_keep_alive_s);
	CU_ASSERT(bytes_eq(a->auth_method, m->auth_method));
	CU_ASSERT(bytes_eq(a->auth_data, m->auth_data));
	CU_ASSERT_EQUAL(a->request_problem_info, m->request_problem_info);
	CU_ASSERT_EQUAL(a->will_delay_s, m->will_delay_s);
	CU_ASSERT_EQUAL(a->request_response_info, m->request_response_info);
	CU_ASSERT(bytes_eq(a->response_info, m->response_info));
	CU_ASSERT(bytes_eq(a->server_reference, m->server_reference));
	CU_ASSERT(bytes_eq(a->reason_string, m->reason_string));
	CU_ASSERT_EQUAL(a->receive_maximum, m->receive_maximum);
	CU_ASSERT_EQUAL(a->topic_alias_maximum, m->topic_alias_maximum);
	CU_ASSERT_EQUAL(a->topic_alias, m->topic_alias);
	CU_ASSERT_EQUAL(a->maximum_qos, m->maximum_qos);
	CU_ASSERT_EQUAL(a->retain_available, m->retain_available);
	CU_ASSERT_EQUAL(a->maximum_packet_size, m->maximum_packet_size);
	CU_ASSERT_EQUAL(a->wildcard_sub_available, m->wildcard_sub_available);
	CU_ASSERT_EQUAL(a->sub_id_available, m->sub_id_available);
	CU_ASSERT_EQUAL(a->shared_sub_available, m->shared_sub_available);
	CU_ASSERT_EQUAL(a->user_count, m->user_count);
}

/*
 * Parses a guarded copy of blk as ctx, expecting ST_OK, the model's struct, and an iteration
 * that yields exp[0..n) in order with raws tiling the block; the raws re-written with
 * st_pw_raw give the block back.
 */
static inline void check_block(struct tu_guard *g, const uint8_t *b, size_t len, int ctx,
                               const struct exp_prop *exp, size_t n)
{
	const uint8_t *copy = tu_guard_copy(g, b, len);
	struct st_bytes raw = {copy, (uint32_t)len};
	struct st_props got, model = {0};
	int rc = st_props_parse(raw, ctx, &got);

	CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
	for (size_t i = 0; i < n; i++)
		model_apply(&model, &exp[i]);
	assert_props_equal(&got, &model);

	struct st_prop_iter it;
	struct st_prop p;
	const uint8_t *at = copy;
	uint8_t again[BLK_MAX];
	struct st_prop_writer w;
	size_t i = 0;

	st_prop_iter_init(&it, raw);
	st_pw_init(&w, again, sizeof(again));
	while (st_prop_iter_next(&it, &p)) {
		CU_ASSERT_FATAL(i < n);
		CU_ASSERT_EQUAL(p.id, exp[i].id);
		CU_ASSERT_EQUAL(p.value, exp[i].s ? 0 : exp[i].value);
		CU_ASSERT(bytes_eq(p.str, exp_s(&exp[i])));
		CU_ASSERT(bytes_eq(p.str2, exp_s2(&exp[i])));
		CU_ASSERT_PTR_EQUAL(p.raw.ptr, at);
		at += p.raw.len;
		st_pw_raw(&w, p.raw);
		i++;
	}
	CU_ASSERT_EQUAL(i, n);
	CU_ASSERT_PTR_EQUAL(at, copy + len);
	CU_ASSERT_FALSE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), len);
	CU_ASSERT(len == 0 || memcmp(again, b, len) == 0);
}

/* --- cuts at every length, for the truncation and golden tests -------------------------- */

/*
 * Cuts blk at every length: a cut on a property boundary is a valid shorter block, any other is
 * ST_ERR_PROPERTY; the iterator over a cut block stops at the last whole property. All reads
 * are from a guard-page copy. `bounds` lists the boundaries, 0 and len included.
 */
static inline void check_cuts(struct tu_guard *g, const uint8_t *b, size_t len, int ctx,
                              const size_t *bounds, size_t nbounds)
{
	for (size_t cut = 0; cut <= len; cut++) {
		size_t whole = 0; /* whole properties before the cut */

		while (whole + 1 < nbounds && bounds[whole + 1] <= cut)
			whole++;
		bool on_bound = bounds[whole] == cut;
		struct st_props out;
		int rc = parse_guarded(g, b, cut, ctx, &out);

		CU_ASSERT_EQUAL(rc, on_bound ? ST_OK : ST_ERR_PROPERTY);
		if (rc != (on_bound ? ST_OK : ST_ERR_PROPERTY))
			fprintf(stderr, "\ncut %zu of %zu on %s: %s\n", cut, len, ctx_names[ctx],
			        st_strerror(rc));

		const uint8_t *copy = tu_guard_copy(g, b, cut);
		struct st_prop_iter it;
		struct st_prop p;
		size_t seen = 0;

		st_prop_iter_init(&it, (struct st_bytes){copy, (uint32_t)cut});
		while (seen <= whole && st_prop_iter_next(&it, &p))
			seen++;
		CU_ASSERT_EQUAL(seen, whole);
	}
}

#endif
