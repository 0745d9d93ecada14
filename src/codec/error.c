/*
 * Error names and the one place where decode errors become MQTT 5 reason codes.
 *
 * Both functions are table lookups indexed by the negated error code, so they are safe to call
 * from any thread and on any path. The reason-code choice follows MQTT 5 sections 2.4 and
 * 4.13: a packet that cannot be parsed is a Malformed Packet (0x81); one that parses but
 * carries data the protocol forbids is a Protocol Error (0x82); a few errors have their own
 * code (0x84, 0x85, 0x8C, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x97, 0x99, 0x9A, 0x9B).
 */
#include "starling/error.h"

#include <stddef.h>

/* Indexed by -err; ST_ERR__MIN is the last entry. */
static const char *const err_names[] = {
        [0] = "success",
        [-ST_ERR_NEED_MORE] = "incomplete packet, more bytes needed",
        [-ST_ERR_REMLEN] = "remaining length longer than four bytes",
        [-ST_ERR_TOO_LARGE] = "packet larger than the maximum packet size",
        [-ST_ERR_TYPE] = "reserved or unsupported packet type",
        [-ST_ERR_FLAGS] = "reserved fixed-header flags set",
        [-ST_ERR_LENGTH] = "packet fields do not match the remaining length",
        [-ST_ERR_UTF8] = "ill-formed UTF-8 string",
        [-ST_ERR_UTF8_NUL] = "U+0000 in a UTF-8 string",
        [-ST_ERR_TOPIC] = "invalid topic name",
        [-ST_ERR_FILTER] = "invalid topic filter",
        [-ST_ERR_PACKET_ID] = "packet identifier 0 where a non-zero one is required",
        [-ST_ERR_QOS] = "QoS 3 is not a valid QoS",
        [-ST_ERR_NO_FILTERS] = "SUBSCRIBE or UNSUBSCRIBE without a topic filter",
        [-ST_ERR_PROTOCOL_NAME] = "unknown protocol name in CONNECT",
        [-ST_ERR_PROTOCOL_LEVEL] = "unsupported protocol level in CONNECT",
        [-ST_ERR_CONNECT_FLAGS] = "invalid CONNECT flags",
        [-ST_ERR_SUB_OPTIONS] = "invalid subscription options",
        [-ST_ERR_PROPERTY] = "malformed property",
        [-ST_ERR_PROPERTY_DUP] = "property given more than once",
        [-ST_ERR_PROPERTY_PACKET] = "property not allowed on this packet type",
        [-ST_ERR_REASON] = "reason code not allowed on this packet type",
        [-ST_ERR_NO_SPACE] = "output buffer too small",
        [-ST_ERR_NOMEM] = "out of memory",
        [-ST_ERR_PROTOCOL] = "protocol violation",
        [-ST_ERR_CLIENT_ID] = "client identifier not acceptable",
        [-ST_ERR_SYS] = "system call failed",
        [-ST_ERR_CONFIG] = "bad configuration",
        [-ST_ERR_LIMIT] = "a configured limit was reached",
        [-ST_ERR_PROPERTY_VALUE] = "property value the protocol forbids",
        [-ST_ERR_TOPIC_ALIAS] = "topic alias invalid",
        [-ST_ERR_RECEIVE_MAX] = "receive maximum exceeded",
        [-ST_ERR_AUTH_METHOD] = "bad authentication method",
        [-ST_ERR_RETAIN] = "retain not supported",
        [-ST_ERR_QOS_UNSUPPORTED] = "QoS not supported",
        [-ST_ERR_PAYLOAD_FORMAT] = "payload format invalid",
};

_Static_assert(sizeof(err_names) / sizeof(err_names[0]) == 1 - ST_ERR__MIN,
               "every st_err needs a name");

/* MQTT 5 reason codes used below (MQTT 5 section 2.4, table 2-6). */
enum {
	RC_SUCCESS = 0x00,
	RC_UNSPECIFIED = 0x80,
	RC_MALFORMED = 0x81,
	RC_PROTOCOL_ERROR = 0x82,
	RC_UNSUPPORTED_VERSION = 0x84,
	RC_CLIENT_ID_INVALID = 0x85,
	RC_BAD_AUTH_METHOD = 0x8C,
	RC_TOPIC_INVALID = 0x90,
	RC_RECEIVE_MAX_EXCEEDED = 0x93,
	RC_TOPIC_ALIAS_INVALID = 0x94,
	RC_PACKET_TOO_LARGE = 0x95,
	RC_QUOTA_EXCEEDED = 0x97,
	RC_PAYLOAD_FORMAT_INVALID = 0x99,
	RC_RETAIN_NOT_SUPPORTED = 0x9A,
	RC_QOS_NOT_SUPPORTED = 0x9B,
};

/* Indexed by -err, like err_names. */
static const uint8_t err_reason_codes[] = {
        [0] = RC_SUCCESS,
        /* A peer that leaves a packet unfinished sent bytes that are no packet at all. */
        [-ST_ERR_NEED_MORE] = RC_MALFORMED,
        [-ST_ERR_REMLEN] = RC_MALFORMED, /* [MQTT-1.5.5] at most four bytes */
        [-ST_ERR_TOO_LARGE] = RC_PACKET_TOO_LARGE,
        [-ST_ERR_TYPE] = RC_MALFORMED,
        [-ST_ERR_FLAGS] = RC_MALFORMED, /* section 2.1.3: invalid flags are malformed */
        [-ST_ERR_LENGTH] = RC_MALFORMED,
        [-ST_ERR_UTF8] = RC_MALFORMED,     /* [MQTT-1.5.4-1] */
        [-ST_ERR_UTF8_NUL] = RC_MALFORMED, /* [MQTT-1.5.4-2] */
        [-ST_ERR_TOPIC] = RC_TOPIC_INVALID,
        /* An ill-formed filter makes the SUBSCRIBE malformed; 0x8F is for well-formed
         * filters the server will not accept (section 2.4). */
        [-ST_ERR_FILTER] = RC_MALFORMED,
        /* Parsed, but a value the protocol forbids [MQTT-2.2.1-3]. */
        [-ST_ERR_PACKET_ID] = RC_PROTOCOL_ERROR,
        [-ST_ERR_QOS] = RC_MALFORMED, /* [MQTT-3.3.1-4]: QoS 3 is a Malformed Packet */
        /* Section 3.8.3 and 3.10.3: no payload is a Protocol Error. */
        [-ST_ERR_NO_FILTERS] = RC_PROTOCOL_ERROR,
        /* [MQTT-3.1.2-1] allows 0x84 for a wrong protocol name too. */
        [-ST_ERR_PROTOCOL_NAME] = RC_UNSUPPORTED_VERSION,
        [-ST_ERR_PROTOCOL_LEVEL] = RC_UNSUPPORTED_VERSION,
        [-ST_ERR_CONNECT_FLAGS] = RC_MALFORMED, /* [MQTT-3.1.2-3] reserved flag is malformed */
        [-ST_ERR_SUB_OPTIONS] = RC_MALFORMED,   /* [MQTT-3.8.3-5] reserved bits are malformed */
        [-ST_ERR_PROPERTY] = RC_MALFORMED,
        /* Section 3.x.2.2: "It is a Protocol Error to include ... more than once". */
        [-ST_ERR_PROPERTY_DUP] = RC_PROTOCOL_ERROR,
        /* Section 2.2.2.2: an identifier not valid for the packet type is malformed. */
        [-ST_ERR_PROPERTY_PACKET] = RC_MALFORMED,
        [-ST_ERR_REASON] = RC_PROTOCOL_ERROR,
        [-ST_ERR_NO_SPACE] = RC_UNSPECIFIED,
        [-ST_ERR_NOMEM] = RC_UNSPECIFIED,
        [-ST_ERR_PROTOCOL] = RC_PROTOCOL_ERROR,
        [-ST_ERR_CLIENT_ID] = RC_CLIENT_ID_INVALID,
        [-ST_ERR_SYS] = RC_UNSPECIFIED,
        [-ST_ERR_CONFIG] = RC_UNSPECIFIED,
        [-ST_ERR_LIMIT] = RC_QUOTA_EXCEEDED,
        /* Sections 3.1.2.11 and 3.3.2.3: "It is a Protocol Error ... to have the value 0". */
        [-ST_ERR_PROPERTY_VALUE] = RC_PROTOCOL_ERROR,
        [-ST_ERR_TOPIC_ALIAS] = RC_TOPIC_ALIAS_INVALID,       /* [MQTT-3.2.2-17], 3.3.2.3.4 */
        [-ST_ERR_RECEIVE_MAX] = RC_RECEIVE_MAX_EXCEEDED,      /* section 4.9 */
        [-ST_ERR_AUTH_METHOD] = RC_BAD_AUTH_METHOD,           /* section 4.12 */
        [-ST_ERR_RETAIN] = RC_RETAIN_NOT_SUPPORTED,           /* [MQTT-3.2.2-13], 3.2.2.3.5 */
        [-ST_ERR_QOS_UNSUPPORTED] = RC_QOS_NOT_SUPPORTED,     /* [MQTT-3.2.2-12], 3.2.2.3.4 */
        [-ST_ERR_PAYLOAD_FORMAT] = RC_PAYLOAD_FORMAT_INVALID, /* 3.3.2.3.2 */
};

_Static_assert(sizeof(err_reason_codes) == 1 - ST_ERR__MIN, "every st_err needs a reason code");

const char *st_strerror(int err)
{
	if (err > 0 || err < ST_ERR__MIN)
		return "unknown error";
	return err_names[-err];
}

uint8_t st_err_reason_code(int err)
{
	if (err > 0 || err < ST_ERR__MIN)
		return RC_UNSPECIFIED;
	return err_reason_codes[-err];
}
