/*
 * The MQTT packet codec (3.1 "MQIsdp", 3.1.1 and 5.0), shared by the broker and the tools.
 *
 * Decoding never allocates and never copies: a decoded packet holds views (st_bytes) into the
 * caller's buffer, valid as long as that buffer is. The decoder never reads past `len`; an
 * incomplete packet is ST_ERR_NEED_MORE, a malformed one gets its own negative error code
 * (include/starling/error.h). Decoding validates everything the spec makes a packet-level
 * rule: reserved flags, UTF-8 strings, topic names and filters, packet identifiers, lengths.
 * What depends on connection state (a second CONNECT, a packet of the wrong direction) is the
 * caller's to check.
 * A filter in the shared-subscription form ("$share/...") is only checked for UTF-8 here: the
 * broker judges its share name and filter and answers with a SUBACK code.
 *
 * MQTT 5 property blocks are returned as raw views (props) here; include/starling/props.h
 * walks and validates them. Encoding writes into a caller buffer and reports ST_ERR_NO_SPACE
 * rather than writing past `cap`.
 */
#ifndef STARLING_CODEC_H
#define STARLING_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum st_packet_type {
	ST_CONNECT = 1,
	ST_CONNACK = 2,
	ST_PUBLISH = 3,
	ST_PUBACK = 4,
	ST_PUBREC = 5,
	ST_PUBREL = 6,
	ST_PUBCOMP = 7,
	ST_SUBSCRIBE = 8,
	ST_SUBACK = 9,
	ST_UNSUBSCRIBE = 10,
	ST_UNSUBACK = 11,
	ST_PINGREQ = 12,
	ST_PINGRESP = 13,
	ST_DISCONNECT = 14,
	ST_AUTH = 15,
};

/* Protocol levels as carried in CONNECT. */
enum st_protocol_level {
	ST_MQTT_31 = 3,
	ST_MQTT_311 = 4,
	ST_MQTT_5 = 5,
};

/*
 * A Mosquitto bridge with try_private (its default) sets the level's high bit on 3.1 and 3.1.1
 * (0x83, 0x84): "I am a bridge". st_connect.level is the level without it, .bridge says it was
 * set; MQTT 5 has No Local and Retain As Published instead and no such bit (0x85 is refused).
 */
#define ST_PROTOCOL_BRIDGE_BIT 0x80u

#define ST_REMLEN_MAX          268435455u /* largest value four length bytes can carry */
#define ST_FIXED_HEADER_MAX    5u         /* type byte + up to 4 length bytes */
#define ST_PUBLISH_FLAG_RETAIN 0x01u
#define ST_PUBLISH_FLAG_QOS1   0x02u
#define ST_PUBLISH_FLAG_QOS2   0x04u
#define ST_PUBLISH_FLAG_DUP    0x08u

/* Subscription options byte (SUBSCRIBE payload). Bits above QoS are MQTT 5 only. */
#define ST_SUBOPT_QOS_MASK              0x03u
#define ST_SUBOPT_NO_LOCAL              0x04u
#define ST_SUBOPT_RETAIN_AS_PUB         0x08u
#define ST_SUBOPT_RETAIN_HANDLING       0x30u /* 0: send, 1: send if new, 2: do not send */
#define ST_SUBOPT_RETAIN_HANDLING_SHIFT 4

/* SUBACK return code for a refused filter (3.1.1); 5.0 has more in props.h. */
#define ST_SUBACK_FAILURE 0x80u

/* CONNACK return codes of 3.1/3.1.1. */
enum st_connack_code {
	ST_CONNACK_ACCEPTED = 0x00,
	ST_CONNACK_BAD_PROTOCOL = 0x01,
	ST_CONNACK_ID_REJECTED = 0x02,
	ST_CONNACK_UNAVAILABLE = 0x03,
	ST_CONNACK_BAD_CREDENTIALS = 0x04,
	ST_CONNACK_NOT_AUTHORIZED = 0x05,
};

/* A borrowed view of bytes; ptr is NULL only when len is 0 and the field was absent. */
struct st_bytes {
	const uint8_t *ptr; /* first byte; borrowed from the buffer being decoded */
	uint32_t len;       /* number of bytes */
};

struct st_fixed_header {
	uint8_t type;           /* enum st_packet_type */
	uint8_t flags;          /* low nibble of the first byte */
	uint8_t header_len;     /* bytes of type + remaining length (2..5) */
	uint32_t remaining_len; /* bytes after the fixed header */
};

struct st_connect {
	struct st_bytes protocol_name; /* "MQTT" or "MQIsdp" */
	uint8_t level;                 /* enum st_protocol_level */
	bool clean_start;              /* clean session (3.x) or clean start (5) */
	bool will_flag;                /* a will message is present */
	uint8_t will_qos;              /* 0..2, 0 without a will */
	bool will_retain;              /* will is retained, false without a will */
	bool username_flag;            /* username present */
	bool password_flag;            /* password present */
	uint16_t keepalive_s;          /* keep alive in seconds, 0 disables */
	struct st_bytes props;         /* MQTT 5 CONNECT properties (without length) */
	struct st_bytes client_id;     /* UTF-8, may be empty */
	struct st_bytes will_props;    /* MQTT 5 will properties (without length) */
	struct st_bytes will_topic;    /* UTF-8 topic name */
	struct st_bytes will_payload;  /* binary */
	struct st_bytes username;      /* UTF-8 */
	struct st_bytes password;      /* binary */
	bool bridge;                   /* 3.x level with ST_PROTOCOL_BRIDGE_BIT (try_private) */
};

struct st_connack {
	bool session_present; /* bit 0 of the acknowledge flags */
	uint8_t code;         /* 3.x return code or MQTT 5 reason code */
	struct st_bytes props;
};

struct st_publish {
	uint8_t qos;        /* 0..2 */
	bool dup;           /* redelivery flag */
	bool retain;        /* retain flag */
	uint16_t packet_id; /* 0 for QoS 0 */
	struct st_bytes topic;
	struct st_bytes props;
	struct st_bytes payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct st_ack {
	uint16_t packet_id;
	uint8_t reason; /* MQTT 5 reason code; 0 for 3.x */
	struct st_bytes props;
};

/* One entry of a SUBSCRIBE (filter + options) or UNSUBSCRIBE (filter, options 0). */
struct st_sub_entry {
	struct st_bytes filter;
	uint8_t options;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE. The decoder fills `payload` and `count` and leaves `entries`
 * NULL: walk the validated payload with st_sub_iter. The encoder reads `entries`.
 */
struct st_subscribe {
	uint16_t packet_id;
	struct st_bytes props;
	struct st_bytes payload;            /* the entries, as received */
	uint32_t count;                     /* number of entries */
	const struct st_sub_entry *entries; /* encoder input, borrowed */
};

/* SUBACK and UNSUBACK (UNSUBACK has reason codes only in MQTT 5). */
struct st_suback {
	uint16_t packet_id;
	struct st_bytes props;
	struct st_bytes codes; /* one byte per filter */
};

/* DISCONNECT and AUTH. */
struct st_disconnect {
	uint8_t reason;
	struct st_bytes props;
};

struct st_packet {
	uint8_t type;  /* enum st_packet_type */
	uint8_t flags; /* fixed-header flags as received or to send */
	union {
		struct st_connect connect;
		struct st_connack connack;
		struct st_publish publish;
		struct st_ack ack;
		struct st_subscribe subscribe;   /* also UNSUBSCRIBE */
		struct st_suback suback;         /* also UNSUBACK */
		struct st_disconnect disconnect; /* also AUTH */
	};
};

/* Iterates a decoded SUBSCRIBE/UNSUBSCRIBE payload, which the decoder already validated. */
struct st_sub_iter {
	const uint8_t *p;   /* next entry */
	const uint8_t *end; /* end of payload */
	bool has_options;   /* SUBSCRIBE entries carry an options byte */
};

/*
 * Decodes a fixed header from buf[0..len). Returns ST_OK, ST_ERR_NEED_MORE, ST_ERR_REMLEN, or
 * ST_ERR_TOO_LARGE when header_len + remaining_len exceeds max_packet (0: no limit but the
 * protocol's).
 */
int st_decode_fixed_header(const uint8_t *buf, size_t len, uint32_t max_packet,
                           struct st_fixed_header *fh);

/*
 * Decodes one whole packet at buf[0..len) into *pkt (views into buf). `level` is the
 * connection's protocol level (ST_MQTT_311 before CONNECT: a CONNECT carries its own).
 * On ST_OK *consumed is the packet's size. Returns ST_ERR_NEED_MORE when buf holds less than
 * one packet, otherwise a negative st_err for a malformed packet. A bad first byte (type,
 * flags) or an oversized remaining length is reported as soon as it is seen. On
 * ST_ERR_PROTOCOL_LEVEL, pkt->connect.protocol_name and .level are set so the broker can
 * answer CONNACK 0x01 (3.x) or 0x84 (5.0).
 */
int st_decode_packet(const uint8_t *buf, size_t len, uint8_t level, uint32_t max_packet,
                     struct st_packet *pkt, size_t *consumed);

/* Decodes a packet body whose fixed header has been decoded; body_len == fh->remaining_len. */
int st_decode_body(const struct st_fixed_header *fh, const uint8_t *body, uint8_t level,
                   struct st_packet *pkt);

/* Starts iterating a decoded SUBSCRIBE or UNSUBSCRIBE. */
void st_sub_iter_init(struct st_sub_iter *it, const struct st_packet *pkt);

/* Next entry; false at the end. The entry borrows from the decoded buffer. */
bool st_sub_iter_next(struct st_sub_iter *it, struct st_sub_entry *entry);

/* Total encoded size of *pkt at `level`, or 0 if it cannot be encoded (a field too long). */
size_t st_packet_size(const struct st_packet *pkt, uint8_t level);

/*
 * Encodes *pkt for protocol `level` into out[0..cap). Returns the number of bytes written,
 * ST_ERR_NO_SPACE if cap is too small, or ST_ERR_LENGTH if a field cannot be encoded. PUBLISH
 * flags come from the publish fields; SUBSCRIBE, UNSUBSCRIBE and PUBREL get their fixed flags.
 */
int st_encode_packet(const struct st_packet *pkt, uint8_t level, uint8_t *out, size_t cap);

/*
 * The head of a PUBLISH for the broker's send path: first byte, remaining length, topic and
 * packet id (if qos > 0). `rest_len` is what follows: for MQTT 5 the encoded property length
 * and properties, then the payload. Returns bytes written, or 0 (nothing written) if the topic
 * is over 65,535 bytes or the packet over ST_REMLEN_MAX; out needs at least
 * ST_PUBLISH_HEAD_MAX + topic.len.
 */
#define ST_PUBLISH_HEAD_MAX (ST_FIXED_HEADER_MAX + 2u + 2u)
size_t st_encode_publish_head(uint8_t *out, uint8_t flags, struct st_bytes topic,
                              uint16_t packet_id, uint32_t rest_len);

/* Variable byte integer (remaining length, MQTT 5 lengths and identifiers). */
#define ST_VARINT_MAX 4u
size_t st_varint_size(uint32_t value);                 /* 1..4, 0 if over ST_REMLEN_MAX */
size_t st_varint_encode(uint8_t *out, uint32_t value); /* bytes written, 0 if too large */
/* Returns bytes read (1..4), ST_ERR_NEED_MORE, or ST_ERR_REMLEN for a fifth byte. */
int st_varint_decode(const uint8_t *buf, size_t len, uint32_t *value);

/* Name of a packet type for logs ("PUBLISH"); "RESERVED" for 0 and out-of-range values. */
const char *st_packet_name(uint8_t type);

#ifdef __cplusplus
}
#endif
#endif
