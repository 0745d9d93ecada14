/*
 * Unit tests of the MQTT 5 property codec (src/props.c) and of the error codes it added.
 *
 * The reference here is written apart from the implementation: table 2-4 of MQTT 5.0 is copied
 * as text (identifier, type name, the "Packet / Will Properties" column), parsed into packet
 * sets, and every identifier 0..127 is tried on every packet against it. Values, duplicates and
 * truncations are checked for every property; writer -> parse -> iterate round trips cover
 * every property on every packet; golden bytes come from mosquitto_pub/mosquitto_sub 2.0.11,
 * paho 1.6.1 and Mosquitto 2.0.11 itself (captured through a relay on 127.0.0.1). Every parse
 * and walk reads a guard-page copy, so a read past the block faults. Random mutations end it.
 */
#include <stdio.h>
#include <stdlib.h>
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

static const struct spec_row *spec_row_of(unsigned id)
{
	for (size_t i = 0; i < NROWS; i++)
		if (spec_rows[i].id == id)
			return &spec_rows[i];
	return NULL;
}

/* The packet set of a row, one bit per st_prop_ctx; the four acks must come together. */
static unsigned spec_ctx_mask(const struct spec_row *r)
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

static void put(struct blk *k, const void *p, size_t n)
{
	CU_ASSERT_FATAL(k->n + n <= sizeof(k->b));
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static void put8(struct blk *k, uint8_t v)
{
	put(k, &v, 1);
}

static void put_str(struct blk *k, const void *s, size_t n)
{
	put8(k, (uint8_t)(n >> 8));
	put8(k, (uint8_t)n);
	put(k, s, n);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
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

static struct st_bytes exp_s(const struct exp_prop *e)
{
	if (e->s == NULL)
		return (struct st_bytes){NULL, 0};
	return (struct st_bytes){(const uint8_t *)e->s,
	                         (uint32_t)(e->slen ? e->slen : strlen(e->s))};
}

static struct st_bytes exp_s2(const struct exp_prop *e)
{
	return e->s2 ? (struct st_bytes){(const uint8_t *)e->s2, (uint32_t)strlen(e->s2)}
	             : (struct st_bytes){NULL, 0};
}

/* Encodes e by the type the spec gives its identifier (independent of src/props.c). */
static void put_prop(struct blk *k, const struct exp_prop *e)
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
static struct exp_prop sample(uint8_t id, unsigned variant)
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

/* CONNECT forbids Authentication Data without a method (3.1.2.11.10): a method to go first. */
static bool needs_method(uint8_t id, int ctx)
{
	return id == ST_PROP_AUTH_DATA && ctx == ST_PCTX_CONNECT;
}

static const struct exp_prop method_prop = {.id = ST_PROP_AUTH_METHOD, .s = "m"};

/* --- checks ----------------------------------------------------------------------------- */

static bool bytes_eq(struct st_bytes a, struct st_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int parse_guarded(struct tu_guard *g, const uint8_t *b, size_t n, int ctx,
                         struct st_props *out)
{
	const uint8_t *copy = tu_guard_copy(g, b, n);

	return st_props_parse((struct st_bytes){copy, (uint32_t)n}, ctx, out);
}

/* What st_props_parse must make of a property: the test's own id -> field mapping. */
static void model_apply(struct st_props *m, const struct exp_prop *e)
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

static void assert_props_equal(const struct st_props *a, const struct st_props *m)
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
static void check_block(struct tu_guard *g, const uint8_t *b, size_t len, int ctx,
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

/*
 * Cuts blk at every length: a cut on a property boundary is a valid shorter block, any other is
 * ST_ERR_PROPERTY; the iterator over a cut block stops at the last whole property. All reads
 * are from a guard-page copy. `bounds` lists the boundaries, 0 and len included.
 */
static void check_cuts(struct tu_guard *g, const uint8_t *b, size_t len, int ctx,
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

/* --- round trips through the writer --------------------------------------------------------- */

/* Appends e with the st_pw_* call its spec type calls for. */
static void write_prop(struct st_prop_writer *w, const struct exp_prop *e)
{
	const char *type = spec_row_of(e->id)->type;

	if (strcmp(type, "Byte") == 0)
		st_pw_byte(w, e->id, (uint8_t)e->value);
	else if (strcmp(type, "Two Byte Integer") == 0)
		st_pw_u16(w, e->id, (uint16_t)e->value);
	else if (strcmp(type, "Four Byte Integer") == 0)
		st_pw_u32(w, e->id, e->value);
	else if (strcmp(type, "Variable Byte Integer") == 0)
		st_pw_varint(w, e->id, e->value);
	else if (strcmp(type, "UTF-8 String Pair") == 0)
		st_pw_pair(w, e->id, exp_s(e), exp_s2(e));
	else
		st_pw_str(w, e->id, exp_s(e));
}

/* Every property each packet allows, written, parsed and walked; user properties thrice. */
static void test_roundtrip_every_packet(void)
{
	struct tu_guard g = {0};

	for (int ctx = 0; ctx < NCTX; ctx++) {
		for (unsigned v = 0; v < 4; v++) {
			struct exp_prop exp[64];
			size_t n = 0;

			/* Reverse order on odd variants: order is free (section 2.2.2.2). */
			for (size_t i = 0; i < NROWS; i++) {
				size_t r = v % 2 ? NROWS - 1 - i : i;

				if (!(spec_ctx_mask(&spec_rows[r]) & (1u << ctx)))
					continue;
				bool many = spec_rows[r].id == ST_PROP_USER_PROPERTY ||
				            (spec_rows[r].id == ST_PROP_SUBSCRIPTION_ID &&
				             ctx == ST_PCTX_PUBLISH);

				for (unsigned c = 0; c < (many ? 3u : 1u); c++)
					exp[n++] = sample(spec_rows[r].id, v + c);
			}
			uint8_t buf[BLK_MAX], built[BLK_MAX];
			struct st_prop_writer w;
			struct blk k = {.n = 0};

			st_pw_init(&w, buf, sizeof(buf));
			for (size_t i = 0; i < n; i++) {
				write_prop(&w, &exp[i]);
				put_prop(&k, &exp[i]);
			}
			CU_ASSERT_FALSE(w.overflow);
			/* The writer and the test's own encoder agree byte for byte. */
			CU_ASSERT_EQUAL_FATAL(st_pw_len(&w), k.n);
			memcpy(built, k.b, k.n);
			CU_ASSERT(memcmp(buf, built, k.n) == 0);
			check_block(&g, buf, st_pw_len(&w), ctx, exp, n);
		}
	}
	tu_guard_release(&g);
}

/* User properties keep their order; several Subscription Identifiers in one PUBLISH. */
static void test_order_and_sub_ids(void)
{
	struct tu_guard g = {0};
	const struct exp_prop exp[] = {
	        {.id = 0x26, .s = "b", .s2 = "1"},
	        {.id = 0x0B, .value = 5},
	        {.id = 0x26, .s = "a", .s2 = "2"},
	        {.id = 0x0B, .value = 268435455},
	        {.id = 0x26, .s = "b", .s2 = "3"},
	        {.id = 0x03, .s = "text/plain"},
	        {.id = 0x0B, .value = 128},
	        {.id = 0x26, .s = "", .s2 = ""},
	        {.id = 0x26, .s = "\xe2\x82\xac", .s2 = "euro"},
	};
	size_t n = sizeof(exp) / sizeof(exp[0]);
	struct blk k = {.n = 0};
	struct st_props out;

	for (size_t i = 0; i < n; i++)
		put_prop(&k, &exp[i]);
	check_block(&g, k.b, k.n, ST_PCTX_PUBLISH, exp, n);
	CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ST_PCTX_PUBLISH, &out), ST_OK);
	CU_ASSERT_EQUAL(out.user_count, 5);
	CU_ASSERT_EQUAL(out.subscription_id, 5);
	CU_ASSERT_EQUAL(out.subscription_id_count, 3);
	/* SUBSCRIBE allows one identifier only: the second is seen before the Content Type. */
	CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ST_PCTX_SUBSCRIBE, &out), ST_ERR_PROPERTY_DUP);
	tu_guard_release(&g);
}

static void test_empty_block(void)
{
	struct st_props out;
	struct st_prop_iter it;
	struct st_prop p;
	uint8_t one = 0x01;

	for (int ctx = 0; ctx < NCTX; ctx++) {
		memset(&out, 0xA5, sizeof(out));
		CU_ASSERT_EQUAL(st_props_parse((struct st_bytes){NULL, 0}, ctx, &out), ST_OK);
		CU_ASSERT_EQUAL(out.present, 0);
		CU_ASSERT_EQUAL(out.user_count, 0);
		CU_ASSERT_EQUAL(out.receive_maximum, 0); /* absent is zero: callers apply 65535 */
		CU_ASSERT_PTR_NULL(out.content_type.ptr);
		CU_ASSERT_EQUAL(st_props_parse((struct st_bytes){&one, 0}, ctx, &out), ST_OK);
	}
	st_prop_iter_init(&it, (struct st_bytes){NULL, 0});
	CU_ASSERT_FALSE(st_prop_iter_next(&it, &p));
	st_prop_iter_init(&it, (struct st_bytes){&one, 0});
	CU_ASSERT_FALSE(st_prop_iter_next(&it, &p));

	struct st_prop_writer w;

	st_pw_init(&w, NULL, 0);
	CU_ASSERT_EQUAL(st_pw_len(&w), 0);
	CU_ASSERT_FALSE(w.overflow);
	st_pw_raw(&w, (struct st_bytes){NULL, 0}); /* nothing to write fits anywhere */
	CU_ASSERT_FALSE(w.overflow);
	st_pw_byte(&w, ST_PROP_PAYLOAD_FORMAT, 1);
	CU_ASSERT_TRUE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), 0);
}

/* --- the writer at every capacity -------------------------------------------------------- */

/* One write of the sequence below. */
static void write_step(struct st_prop_writer *w, int step)
{
	static const uint8_t blob[100] = {1, 2, 3};
	static const uint8_t raw[] = {0x08, 0x00, 0x01, 'r'};

	switch (step) {
	case 0:
		st_pw_byte(w, ST_PROP_PAYLOAD_FORMAT, 1);
		break;
	case 1:
		st_pw_u16(w, ST_PROP_TOPIC_ALIAS, 0x0102);
		break;
	case 2:
		st_pw_u32(w, ST_PROP_MESSAGE_EXPIRY, 0x01020304);
		break;
	case 3:
		st_pw_varint(w, ST_PROP_SUBSCRIPTION_ID, 1);
		break;
	case 4:
		st_pw_varint(w, ST_PROP_SUBSCRIPTION_ID, 16384);
		break;
	case 5:
		st_pw_str(w, ST_PROP_CORRELATION_DATA, (struct st_bytes){blob, sizeof(blob)});
		break;
	case 6:
		st_pw_varint(w, ST_PROP_SUBSCRIPTION_ID, 268435455);
		break;
	case 7:
		st_pw_str(w, ST_PROP_CONTENT_TYPE, (struct st_bytes){(const uint8_t *)"t", 1});
		break;
	case 8:
		st_pw_pair(w, ST_PROP_USER_PROPERTY, (struct st_bytes){(const uint8_t *)"k", 1},
		           (struct st_bytes){(const uint8_t *)"vv", 2});
		break;
	case 9:
		st_pw_raw(w, (struct st_bytes){raw, sizeof(raw)});
		break;
	case 10:
		st_pw_pair(w, ST_PROP_USER_PROPERTY, (struct st_bytes){NULL, 0},
		           (struct st_bytes){NULL, 0});
		break;
	default:
		CU_FAIL("write_step");
		break;
	}
}

#define WRITE_STEPS 11

static void test_writer_overflow(void)
{
	static const size_t sizes[WRITE_STEPS] = {2, 3, 5, 2, 4, 103, 5, 4, 8, 4, 5};
	uint8_t full[256], buf[256 + 16];
	struct st_prop_writer w;
	size_t total = 0;

	st_pw_init(&w, full, sizeof(full));
	for (int s = 0; s < WRITE_STEPS; s++) {
		write_step(&w, s);
		total += sizes[s];
		CU_ASSERT_EQUAL(st_pw_len(&w), total);
	}
	CU_ASSERT_FALSE(w.overflow);
	/* The block parses as what was written (a PUBLISH may carry all of it). */
	struct st_props out;

	CU_ASSERT_EQUAL(
	        st_props_parse((struct st_bytes){full, (uint32_t)total}, ST_PCTX_PUBLISH, &out),
	        ST_OK);
	CU_ASSERT_EQUAL(out.subscription_id_count, 3);
	CU_ASSERT_EQUAL(out.topic_alias, 0x0102);
	for (size_t cap = 0; cap <= total; cap++) {
		size_t fit = 0; /* the writes that fit before the first that did not */

		for (int s = 0; s < WRITE_STEPS && fit + sizes[s] <= cap; s++)
			fit += sizes[s];
		memset(buf, 0xEE, sizeof(buf));
		st_pw_init(&w, buf, cap);
		for (int s = 0; s < WRITE_STEPS; s++)
			write_step(&w, s);
		CU_ASSERT_EQUAL(w.overflow, cap < total);
		CU_ASSERT_EQUAL(st_pw_len(&w), fit);
		CU_ASSERT(memcmp(buf, full, fit) == 0);
		/* After the first miss nothing is written, even what would still fit. */
		for (size_t i = fit; i < sizeof(buf); i++)
			CU_ASSERT_EQUAL_FATAL(buf[i], 0xEE);
	}
	/* Values without an encoding fail like a full buffer. */
	static uint8_t big[65536];
	struct st_bytes huge = {big, sizeof(big)}, max = {big, 65535}, k = {big, 1};
	static uint8_t room[70000 * 2 + 16];

	st_pw_init(&w, room, sizeof(room));
	st_pw_str(&w, ST_PROP_CORRELATION_DATA, max);
	CU_ASSERT_FALSE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), st_prop_size_str(max));
	CU_ASSERT_EQUAL(st_prop_size_str(max), 3 + 65535);
	st_pw_str(&w, ST_PROP_CORRELATION_DATA, huge);
	CU_ASSERT_TRUE(w.overflow);
	st_pw_init(&w, room, sizeof(room));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, k, huge);
	CU_ASSERT_TRUE(w.overflow);
	st_pw_init(&w, room, sizeof(room));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, huge, k);
	CU_ASSERT_TRUE(w.overflow);
	st_pw_init(&w, room, sizeof(room));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, max, max);
	CU_ASSERT_FALSE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), st_prop_size_pair(max, max));
	st_pw_init(&w, room, sizeof(room));
	st_pw_varint(&w, ST_PROP_SUBSCRIPTION_ID, 268435456);
	CU_ASSERT_TRUE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), 0);
}

/* --- golden bytes of real clients and of Mosquitto ----------------------------------------- */

struct golden {
	const char *what;       /* who sent it */
	const char *hex;        /* the whole packet */
	bool will;              /* the CONNECT's will properties, not its own */
	int ctx;                /* st_prop_ctx of the block */
	struct exp_prop exp[8]; /* its properties in order */
};

static const struct golden goldens[] = {
        {"mosquitto_sub -V mqttv5 CONNECT with -D connect ...",
         "103700044d5154540502003c24210014270001000022000a190117002600036170700008737461726c"
         "696e671100000e100006636170737562",
         false,
         ST_PCTX_CONNECT,
         {{.id = 0x21, .value = 20},
          {.id = 0x27, .value = 65536},
          {.id = 0x22, .value = 10},
          {.id = 0x19, .value = 1},
          {.id = 0x17, .value = 0},
          {.id = 0x26, .s = "app", .s2 = "starling"},
          {.id = 0x11, .value = 3600}}},
        {"mosquitto 2.0.11 CONNACK",
         "200900000622000a210014",
         false,
         ST_PCTX_CONNACK,
         {{.id = 0x22, .value = 10}, {.id = 0x21, .value = 20}}},
        {"mosquitto_sub SUBSCRIBE with a user property",
         "8218000109260002736b00027376000973656e736f72732f2301",
         false,
         ST_PCTX_SUBSCRIBE,
         {{.id = 0x26, .s = "sk", .s2 = "sv"}}},
        {"mosquitto_pub PUBLISH with every message property",
         "325e000a73656e736f72732f74310001450300106170706c69636174696f6e2f6a736f6e2600047369"
         "746500023432260004756e69740001430101020000003c08000a7265706c792f686572650900066162"
         "633132337b2274223a32312e357d",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x03, .s = "application/json"},
          {.id = 0x26, .s = "site", .s2 = "42"},
          {.id = 0x26, .s = "unit", .s2 = "C"},
          {.id = 0x01, .value = 1},
          {.id = 0x02, .value = 60},
          {.id = 0x08, .s = "reply/here"},
          {.id = 0x09, .s = "abc123"}}},
        {"mosquitto 2.0.11 forwarding it (its own order)",
         "325e000a73656e736f72732f74310001450300106170706c69636174696f6e2f6a736f6e2600047369"
         "746500023432260004756e6974000143010108000a7265706c792f68657265090006616263313233"
         "020000003c7b2274223a32312e357d",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x03, .s = "application/json"},
          {.id = 0x26, .s = "site", .s2 = "42"},
          {.id = 0x26, .s = "unit", .s2 = "C"},
          {.id = 0x01, .value = 1},
          {.id = 0x08, .s = "reply/here"},
          {.id = 0x09, .s = "abc123"},
          {.id = 0x02, .value = 60}}},
        {"mosquitto_pub CONNECT will properties",
         "104000044d5154540506003c032100140007636170707562321b03000a746578742f706c61696e1800"
         "000005260002776b00027776000677696c6c2f740003627965",
         true,
         ST_PCTX_WILL,
         {{.id = 0x03, .s = "text/plain"},
          {.id = 0x18, .value = 5},
          {.id = 0x26, .s = "wk", .s2 = "wv"}}},
        {"mosquitto_pub PUBLISH with a topic alias",
         "3011000a73656e736f72732f74320323000378",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x23, .value = 3}}},
        {"mosquitto_pub DISCONNECT with -D disconnect ...",
         "e010000e1100000000260002646b00026476",
         false,
         ST_PCTX_DISCONNECT,
         {{.id = 0x11, .value = 0}, {.id = 0x26, .s = "dk", .s2 = "dv"}}},
        {"mosquitto 2.0.11 CONNACK with an assigned client identifier",
         "203500003222000a1200296175746f2d44464437303235432d324345322d423332362d453046342d42"
         "3334324445453932344144210014",
         false,
         ST_PCTX_CONNACK,
         {{.id = 0x22, .value = 10},
          {.id = 0x12, .s = "auto-DFD7025C-2CE2-B326-E0F4-B342DEE924AD"},
          {.id = 0x21, .value = 20}}},
        {"paho SUBSCRIBE with subscription identifier 300",
         "82220002150bac0226000666696c74657200076d756c74692f2300076d756c74692f2301",
         false,
         ST_PCTX_SUBSCRIBE,
         {{.id = 0x0B, .value = 300}, {.id = 0x26, .s = "filter", .s2 = "multi/#"}}},
        {"mosquitto 2.0.11 PUBLISH with subscription identifier 300 and user properties",
         "322900076d756c74692f780002180bac02260001610001312600016200013226000161000133686"
         "56c6c6f",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x0B, .value = 300},
          {.id = 0x26, .s = "a", .s2 = "1"},
          {.id = 0x26, .s = "b", .s2 = "2"},
          {.id = 0x26, .s = "a", .s2 = "3"}}},
        {"paho UNSUBSCRIBE with a user property",
         "a21800040c2600037768790004646f6e6500076d756c74692f2b",
         false,
         ST_PCTX_UNSUBSCRIBE,
         {{.id = 0x26, .s = "why", .s2 = "done"}}},
        {"paho CONNECT with authentication method and data",
         "103300044d5154540502003c1f15000b534352414d2d5348412d3116000e0001636c69656e742d6669"
         "727374000761757468636170",
         false,
         ST_PCTX_CONNECT,
         {{.id = 0x15, .s = "SCRAM-SHA-1"},
          {.id = 0x16,
           .s = "\x00\x01"
                "client-first",
           .slen = 14}}},
};

static struct st_bytes golden_block(const struct st_packet *p, bool will)
{
	switch (p->type) {
	case ST_CONNECT:
		return will ? p->connect.will_props : p->connect.props;
	case ST_CONNACK:
		return p->connack.props;
	case ST_PUBLISH:
		return p->publish.props;
	case ST_SUBSCRIBE:
	case ST_UNSUBSCRIBE:
		return p->subscribe.props;
	case ST_DISCONNECT:
		return p->disconnect.props;
	default:
		CU_FAIL("golden_block: unexpected packet");
		return (struct st_bytes){NULL, 0};
	}
}

static void test_goldens(void)
{
	struct tu_guard g = {0}, gp = {0};

	for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		const struct golden *gd = &goldens[i];
		uint8_t pkt[256];
		size_t n = unhex(gd->hex, pkt, sizeof(pkt)), used = 0, ne = 0;
		struct st_packet p;
		const uint8_t *copy = tu_guard_copy(&gp, pkt, n);

		CU_ASSERT_EQUAL_FATAL(st_decode_packet(copy, n, ST_MQTT_5, 0, &p, &used), ST_OK);
		CU_ASSERT_EQUAL(used, n);
		struct st_bytes blk = golden_block(&p, gd->will);
		size_t bounds[16] = {0}, nb = 1;
		struct st_prop_iter it;
		struct st_prop prop;

		while (ne < 8 && gd->exp[ne].id)
			ne++;
		unsigned failures = CU_get_number_of_failures();

		check_block(&g, blk.ptr, blk.len, gd->ctx, gd->exp, ne);
		st_prop_iter_init(&it, blk);
		while (st_prop_iter_next(&it, &prop) && nb < 16) {
			bounds[nb] = bounds[nb - 1] + prop.raw.len;
			nb++;
		}
		check_cuts(&g, blk.ptr, blk.len, gd->ctx, bounds, nb);
		if (CU_get_number_of_failures() != failures)
			fprintf(stderr, "\ngolden %s: failed\n", gd->what);
	}
	tu_guard_release(&g);
	tu_guard_release(&gp);
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

/* --- random mutations ------------------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Mutated blocks (bit flips, cuts, inserted bytes) parsed as random packets: never a crash or a
 * read past the end; an accepted block walks to its end exactly, its user properties and
 * subscription identifiers counted as parsed, and its raws re-written give it back.
 */
static void test_mutations(void)
{
	struct tu_guard g = {0};
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	unsigned accepted = 0;
	struct blk base[NCTX];

	for (int ctx = 0; ctx < NCTX; ctx++) {
		base[ctx].n = 0;
		for (size_t r = 0; r < NROWS; r++) {
			if (spec_ctx_mask(&spec_rows[r]) & (1u << ctx)) {
				struct exp_prop e = sample(spec_rows[r].id, (unsigned)r);

				put_prop(&base[ctx], &e);
			}
		}
	}
	for (int iter = 0; iter < 30000; iter++) {
		uint64_t r = xorshift(&seed);
		int ctx = (int)(r % NCTX);
		struct blk k = base[(r >> 8) % NCTX];

		for (int m = 0; m < 1 + (int)((r >> 16) % 3); m++) {
			uint64_t q = xorshift(&seed);
			size_t at = k.n ? (size_t)(q % k.n) : 0;

			if ((q >> 32) % 6 == 0)
				k.n = at; /* cut */
			else if ((q >> 32) % 6 == 1 && k.n < BLK_MAX - 1)
				memmove(k.b + at + 1, k.b + at, k.n++ - at),
				        k.b[at] = (uint8_t)(q >> 40);
			else if (k.n)
				k.b[at] ^= (uint8_t)(1u << ((q >> 40) % 8));
		}
		struct st_props out;
		int rc = parse_guarded(&g, k.b, k.n, ctx, &out);

		CU_ASSERT(rc <= 0 && rc >= ST_ERR__MIN);
		if (rc != ST_OK)
			continue;
		accepted++;
		const uint8_t *copy = tu_guard_copy(&g, k.b, k.n);
		struct st_prop_iter it;
		struct st_prop p;
		uint8_t again[BLK_MAX];
		struct st_prop_writer w;
		uint32_t users = 0, sub_ids = 0;
		size_t walked = 0;

		st_pw_init(&w, again, sizeof(again));
		st_prop_iter_init(&it, (struct st_bytes){copy, (uint32_t)k.n});
		while (st_prop_iter_next(&it, &p)) {
			CU_ASSERT_FATAL(p.raw.ptr == copy + walked);
			walked += p.raw.len;
			users += p.id == ST_PROP_USER_PROPERTY;
			sub_ids += p.id == ST_PROP_SUBSCRIPTION_ID;
			st_pw_raw(&w, p.raw);
		}
		CU_ASSERT_EQUAL(walked, k.n);
		CU_ASSERT_EQUAL(users, out.user_count);
		CU_ASSERT_EQUAL(sub_ids, out.subscription_id_count);
		CU_ASSERT(st_pw_len(&w) == k.n && (k.n == 0 || memcmp(again, k.b, k.n) == 0));
	}
	CU_ASSERT(accepted > 1000); /* the mutations do not all produce garbage */
	tu_guard_release(&g);
}

static const struct tu_test props_tests[] = {
        {"table 2-4: every identifier on every packet", test_spec_table},
        {"value rules", test_values},
        {"UTF-8 in every string property", test_utf8_everywhere},
        {"duplicates", test_duplicates},
        {"every truncation of every property", test_truncation},
        {"round trip on every packet", test_roundtrip_every_packet},
        {"user property order, several subscription ids", test_order_and_sub_ids},
        {"empty block", test_empty_block},
        {"writer overflow at every cut", test_writer_overflow},
        {"golden bytes of mosquitto and paho", test_goldens},
        {"reason code names", test_reason_names},
        {"new error codes", test_error_codes},
        {"random mutations", test_mutations},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("props", props_tests);
	return tu_run_registry();
}
