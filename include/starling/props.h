/*
 * MQTT 5 properties (MQTT 5.0 section 2.2.2): parsing and validating a property block, walking
 * it in order, and writing one.
 *
 * A decoded packet carries its property block as a raw view (st_bytes `props`, without the
 * length varint). st_props_parse() walks it once, checks every rule that concerns properties
 * alone - a known identifier allowed on this packet, well-formed values, no duplicate where
 * the spec allows one, values in range - and fills a struct of scalar values and views into
 * the block. Nothing is allocated or copied. User properties, and the subscription
 * identifiers a server may put several of in one PUBLISH, are counted here and walked with
 * st_prop_iter in their original order.
 *
 * Errors and the reason codes they become (st_err_reason_code): an unknown identifier or a
 * truncated value is ST_ERR_PROPERTY, an identifier not allowed on the packet
 * ST_ERR_PROPERTY_PACKET, ill-formed UTF-8 ST_ERR_UTF8 or ST_ERR_UTF8_NUL (all 0x81 Malformed
 * Packet, section 2.2.2.2); a second copy of a property allowed once is ST_ERR_PROPERTY_DUP
 * (0x82 Protocol Error); a value the spec forbids (Receive Maximum 0, Topic Alias 0,
 * Subscription Identifier 0, a byte property other than 0 or 1, Maximum QoS above 1, Maximum
 * Packet Size 0, a Response Topic that is no valid topic name, Authentication Data without
 * Authentication Method in CONNECT) is ST_ERR_PROPERTY_VALUE (0x82 Protocol Error).
 */
#ifndef STARLING_PROPS_H
#define STARLING_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

enum st_prop_id {
	ST_PROP_PAYLOAD_FORMAT = 0x01,         /* byte */
	ST_PROP_MESSAGE_EXPIRY = 0x02,         /* four-byte integer, seconds */
	ST_PROP_CONTENT_TYPE = 0x03,           /* UTF-8 string */
	ST_PROP_RESPONSE_TOPIC = 0x08,         /* UTF-8 string (a topic name) */
	ST_PROP_CORRELATION_DATA = 0x09,       /* binary data */
	ST_PROP_SUBSCRIPTION_ID = 0x0B,        /* variable byte integer, 1..268435455 */
	ST_PROP_SESSION_EXPIRY = 0x11,         /* four-byte integer, seconds */
	ST_PROP_ASSIGNED_CLIENT_ID = 0x12,     /* UTF-8 string */
	ST_PROP_SERVER_KEEP_ALIVE = 0x13,      /* two-byte integer, seconds */
	ST_PROP_AUTH_METHOD = 0x15,            /* UTF-8 string */
	ST_PROP_AUTH_DATA = 0x16,              /* binary data */
	ST_PROP_REQUEST_PROBLEM_INFO = 0x17,   /* byte, 0 or 1 */
	ST_PROP_WILL_DELAY = 0x18,             /* four-byte integer, seconds */
	ST_PROP_REQUEST_RESPONSE_INFO = 0x19,  /* byte, 0 or 1 */
	ST_PROP_RESPONSE_INFO = 0x1A,          /* UTF-8 string */
	ST_PROP_SERVER_REFERENCE = 0x1C,       /* UTF-8 string */
	ST_PROP_REASON_STRING = 0x1F,          /* UTF-8 string */
	ST_PROP_RECEIVE_MAXIMUM = 0x21,        /* two-byte integer, 1..65535 */
	ST_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,    /* two-byte integer */
	ST_PROP_TOPIC_ALIAS = 0x23,            /* two-byte integer, 1.. */
	ST_PROP_MAXIMUM_QOS = 0x24,            /* byte, 0 or 1 */
	ST_PROP_RETAIN_AVAILABLE = 0x25,       /* byte, 0 or 1 */
	ST_PROP_USER_PROPERTY = 0x26,          /* UTF-8 string pair, repeatable */
	ST_PROP_MAXIMUM_PACKET_SIZE = 0x27,    /* four-byte integer, 1.. */
	ST_PROP_WILDCARD_SUB_AVAILABLE = 0x28, /* byte, 0 or 1 */
	ST_PROP_SUB_ID_AVAILABLE = 0x29,       /* byte, 0 or 1 */
	ST_PROP_SHARED_SUB_AVAILABLE = 0x2A,   /* byte, 0 or 1 */
};

/* Which packet a property block belongs to (MQTT 5 table 2-4 lists what each allows). */
enum st_prop_ctx {
	ST_PCTX_CONNECT,
	ST_PCTX_WILL, /* the will properties inside CONNECT's payload */
	ST_PCTX_CONNACK,
	ST_PCTX_PUBLISH,
	ST_PCTX_ACK, /* PUBACK, PUBREC, PUBREL, PUBCOMP */
	ST_PCTX_SUBSCRIBE,
	ST_PCTX_SUBACK,
	ST_PCTX_UNSUBSCRIBE,
	ST_PCTX_UNSUBACK,
	ST_PCTX_DISCONNECT,
	ST_PCTX_AUTH,
};

/* A parsed property block. Fields of absent properties are 0 / empty; see st_props_has(). */
struct st_props {
	uint64_t present;                   /* bit (1 << id) for every property present */
	uint8_t payload_format;             /* 0: unspecified bytes, 1: UTF-8 */
	uint32_t message_expiry_s;          /* message expiry interval */
	struct st_bytes content_type;       /* view */
	struct st_bytes response_topic;     /* view */
	struct st_bytes correlation_data;   /* view */
	uint32_t subscription_id;           /* the first subscription identifier */
	uint32_t subscription_id_count;     /* how many (several only in a server's PUBLISH) */
	uint32_t session_expiry_s;          /* session expiry interval */
	struct st_bytes assigned_client_id; /* view */
	uint16_t server_keep_alive_s;       /* server keep alive */
	struct st_bytes auth_method;        /* view */
	struct st_bytes auth_data;          /* view */
	uint8_t request_problem_info;       /* 0 or 1; the spec's default when absent is 1 */
	uint32_t will_delay_s;              /* will delay interval */
	uint8_t request_response_info;      /* 0 or 1 */
	struct st_bytes response_info;      /* view */
	struct st_bytes server_reference;   /* view */
	struct st_bytes reason_string;      /* view */
	uint16_t receive_maximum;           /* 1..65535; the default when absent is 65535 */
	uint16_t topic_alias_maximum;       /* 0 when absent */
	uint16_t topic_alias;               /* 1..65535 */
	uint8_t maximum_qos;                /* 0 or 1 (absent: 2) */
	uint8_t retain_available;           /* 0 or 1 (absent: 1) */
	uint32_t maximum_packet_size;       /* 1.. (absent: no limit) */
	uint8_t wildcard_sub_available;     /* 0 or 1 (absent: 1) */
	uint8_t sub_id_available;           /* 0 or 1 (absent: 1) */
	uint8_t shared_sub_available;       /* 0 or 1 (absent: 1) */
	uint32_t user_count;                /* number of user properties */
};

static inline bool st_props_has(const struct st_props *p, uint8_t id)
{
	return (p->present >> id) & 1u;
}

/*
 * Parses and validates `raw` (a property block without its length) for packet context ctx.
 * Returns ST_OK or ST_ERR_PROPERTY, ST_ERR_PROPERTY_PACKET, ST_ERR_PROPERTY_DUP,
 * ST_ERR_PROPERTY_VALUE, ST_ERR_UTF8, ST_ERR_UTF8_NUL. *out holds views into raw.
 */
int st_props_parse(struct st_bytes raw, enum st_prop_ctx ctx, struct st_props *out);

/* One property as st_prop_iter returns it. */
struct st_prop {
	uint8_t id;           /* enum st_prop_id */
	uint32_t value;       /* integer properties (byte, two-, four-byte, varint) */
	struct st_bytes str;  /* string or binary value; a user property's name */
	struct st_bytes str2; /* a user property's value */
	struct st_bytes raw;  /* the whole encoded property, identifier included */
};

/* Walks a block that st_props_parse() accepted, in order. */
struct st_prop_iter {
	const uint8_t *p;   /* next property */
	const uint8_t *end; /* end of the block */
};

void st_prop_iter_init(struct st_prop_iter *it, struct st_bytes raw);
bool st_prop_iter_next(struct st_prop_iter *it, struct st_prop *prop);

/*
 * Writes properties into buf[0..cap). Each st_pw_* call appends one property; when the buffer
 * is too small the writer records it (overflow) and writes nothing more, so a caller can
 * write everything and check once. A value that has no encoding (a string over 65,535 bytes,
 * a varint over 268,435,455) sets overflow too. st_pw_len() is the block's length without its
 * length varint; the caller writes that varint (st_varint_encode) in front.
 */
struct st_prop_writer {
	uint8_t *p;     /* next byte */
	uint8_t *end;   /* one past the buffer */
	uint8_t *start; /* first byte */
	bool overflow;  /* a write did not fit */
};

void st_pw_init(struct st_prop_writer *w, uint8_t *buf, size_t cap);
void st_pw_byte(struct st_prop_writer *w, uint8_t id, uint8_t v);
void st_pw_u16(struct st_prop_writer *w, uint8_t id, uint16_t v);
void st_pw_u32(struct st_prop_writer *w, uint8_t id, uint32_t v);
void st_pw_varint(struct st_prop_writer *w, uint8_t id, uint32_t v);
void st_pw_str(struct st_prop_writer *w, uint8_t id, struct st_bytes s); /* string or binary */
void st_pw_pair(struct st_prop_writer *w, uint8_t id, struct st_bytes k, struct st_bytes v);
void st_pw_raw(struct st_prop_writer *w, struct st_bytes encoded); /* st_prop.raw, copied */

static inline size_t st_pw_len(const struct st_prop_writer *w)
{
	return (size_t)(w->p - w->start);
}

/* Encoded sizes, identifier included, for sizing buffers. */
static inline size_t st_prop_size_str(struct st_bytes s)
{
	return 1 + 2 + s.len;
}

static inline size_t st_prop_size_pair(struct st_bytes k, struct st_bytes v)
{
	return 1 + 2 + k.len + 2 + v.len;
}

/* MQTT 5 reason codes the broker and tools use by name (MQTT 5 section 2.4). */
enum st_reason {
	ST_RC_SUCCESS = 0x00,
	ST_RC_GRANTED_QOS1 = 0x01,
	ST_RC_GRANTED_QOS2 = 0x02,
	ST_RC_DISCONNECT_WITH_WILL = 0x04,
	ST_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	ST_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	ST_RC_CONTINUE_AUTH = 0x18,
	ST_RC_REAUTHENTICATE = 0x19,
	ST_RC_UNSPECIFIED = 0x80,
	ST_RC_MALFORMED = 0x81,
	ST_RC_PROTOCOL_ERROR = 0x82,
	ST_RC_IMPLEMENTATION_SPECIFIC = 0x83,
	ST_RC_UNSUPPORTED_VERSION = 0x84,
	ST_RC_CLIENT_ID_INVALID = 0x85,
	ST_RC_BAD_USER_PASSWORD = 0x86,
	ST_RC_NOT_AUTHORIZED = 0x87,
	ST_RC_SERVER_UNAVAILABLE = 0x88,
	ST_RC_SERVER_BUSY = 0x89,
	ST_RC_BANNED = 0x8A,
	ST_RC_SERVER_SHUTTING_DOWN = 0x8B,
	ST_RC_BAD_AUTH_METHOD = 0x8C,
	ST_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	ST_RC_SESSION_TAKEN_OVER = 0x8E,
	ST_RC_FILTER_INVALID = 0x8F,
	ST_RC_TOPIC_INVALID = 0x90,
	ST_RC_PACKET_ID_IN_USE = 0x91,
	ST_RC_PACKET_ID_NOT_FOUND = 0x92,
	ST_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	ST_RC_TOPIC_ALIAS_INVALID = 0x94,
	ST_RC_PACKET_TOO_LARGE = 0x95,
	ST_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	ST_RC_QUOTA_EXCEEDED = 0x97,
	ST_RC_ADMINISTRATIVE_ACTION = 0x98,
	ST_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	ST_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	ST_RC_QOS_NOT_SUPPORTED = 0x9B,
	ST_RC_USE_ANOTHER_SERVER = 0x9C,
	ST_RC_SERVER_MOVED = 0x9D,
	ST_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
	ST_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	ST_RC_MAXIMUM_CONNECT_TIME = 0xA0,
	ST_RC_SUB_ID_NOT_SUPPORTED = 0xA1,
	ST_RC_WILDCARD_SUB_NOT_SUPPORTED = 0xA2,
};

/* A short English name of a reason code, for logs and tools ("Not authorized"). */
const char *st_reason_name(uint8_t code);

#ifdef __cplusplus
}
#endif
#endif
