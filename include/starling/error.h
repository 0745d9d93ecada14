/*
 * Error codes shared by every Starling module and tool.
 *
 * Functions return 0 (ST_OK) or one of these negative codes, never a bare 1. The decoder's
 * ST_ERR_NEED_MORE is not a failure: it asks the caller for more bytes. The MQTT reason code
 * that answers each protocol error is chosen in one place, st_err_reason_code().
 */
#ifndef STARLING_ERROR_H
#define STARLING_ERROR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum st_err {
	ST_OK = 0,
	ST_ERR_NEED_MORE = -1,        /* incomplete packet: feed more bytes */
	ST_ERR_REMLEN = -2,           /* remaining length longer than 4 bytes */
	ST_ERR_TOO_LARGE = -3,        /* packet over the configured maximum */
	ST_ERR_TYPE = -4,             /* reserved packet type (0, or 15 before MQTT 5) */
	ST_ERR_FLAGS = -5,            /* fixed-header flags the spec reserves */
	ST_ERR_LENGTH = -6,           /* fields overrun or underrun the remaining length */
	ST_ERR_UTF8 = -7,             /* ill-formed UTF-8 string */
	ST_ERR_UTF8_NUL = -8,         /* U+0000 inside a UTF-8 string */
	ST_ERR_TOPIC = -9,            /* invalid topic name (empty, or a wildcard) */
	ST_ERR_FILTER = -10,          /* invalid topic filter */
	ST_ERR_PACKET_ID = -11,       /* packet identifier 0 where one is required */
	ST_ERR_QOS = -12,             /* QoS 3 */
	ST_ERR_NO_FILTERS = -13,      /* SUBSCRIBE or UNSUBSCRIBE without a filter */
	ST_ERR_PROTOCOL_NAME = -14,   /* CONNECT protocol name is not MQTT/MQIsdp */
	ST_ERR_PROTOCOL_LEVEL = -15,  /* CONNECT protocol level not supported */
	ST_ERR_CONNECT_FLAGS = -16,   /* reserved bit, or inconsistent will/user/password flags */
	ST_ERR_SUB_OPTIONS = -17,     /* reserved subscription option bits, bad retain handling */
	ST_ERR_PROPERTY = -18,        /* malformed property block or property value */
	ST_ERR_PROPERTY_DUP = -19,    /* property given twice where once is allowed */
	ST_ERR_PROPERTY_PACKET = -20, /* property not allowed on this packet type */
	ST_ERR_REASON = -21,          /* reason code not allowed on this packet */
	ST_ERR_NO_SPACE = -22,        /* encoder output buffer too small */
	ST_ERR_NOMEM = -23,           /* allocation failed */
	ST_ERR_PROTOCOL = -24,        /* well-formed but violates the protocol state */
	ST_ERR_CLIENT_ID = -25,       /* client identifier not acceptable */
	ST_ERR_SYS = -26,             /* a system call failed; see errno */
	ST_ERR_CONFIG = -27,          /* bad configuration */
	ST_ERR_LIMIT = -28,           /* a configured bound was reached */
	ST_ERR_PROPERTY_VALUE = -29,  /* property value the protocol forbids */
	ST_ERR_TOPIC_ALIAS = -30,     /* topic alias 0 or above the maximum, or unknown */
	ST_ERR_RECEIVE_MAX = -31,     /* more unacknowledged QoS 1/2 PUBLISHes than allowed */
	ST_ERR_AUTH_METHOD = -32,     /* authentication method not supported */
	ST_ERR_RETAIN = -33,          /* retained message where retain is not available */
	ST_ERR_QOS_UNSUPPORTED = -34, /* QoS above the maximum QoS the receiver allows */
	ST_ERR_PAYLOAD_FORMAT = -35,  /* payload does not match its payload format indicator */
	ST_ERR__MIN = -35,
};

/* A sentence naming the error; never NULL. */
const char *st_strerror(int err);

/*
 * The MQTT 5 reason code a server sends (in DISCONNECT or CONNACK) for a decode error:
 * 0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet Too Large, 0x84 Unsupported
 * Protocol Version, ...
 */
uint8_t st_err_reason_code(int err);

#ifdef __cplusplus
}
#endif
#endif
