/*
 * MQTT 5 properties on the command line: -D (--property) for starling-pub and starling-sub,
 * and Mosquitto's names for MQTT 5 reason codes.
 *
 * "-D command identifier value" (a user property takes a name and a value) is parsed as
 * mosquitto_pub/mosquitto_sub 2.0.11 parse it, with the same messages in the same order, as
 * scripts depend on them: the command name, the property name, whether that property belongs
 * on that packet (MQTT 5 table 2-4, as Mosquitto reads it), the number of arguments, the
 * commands Mosquitto refuses properties for, then the value. Numbers are read as atol()
 * reads them (digits up to the first other character; "abc" is 0) and range-checked for the
 * property's type. Once every option is read, cli_props_finish() checks each packet's list as
 * mosquitto_property_check_all() does (a byte property above 1, a Receive Maximum, Topic
 * Alias or Maximum Packet Size of 0, a Response Topic with a wildcard, a property given twice
 * where the spec allows one) and encodes it with the codec's property writer, in command-line
 * order, into one buffer.
 *
 * Parsed properties are small structs pointing into argv; nothing is copied until encoding.
 * The list has room for argc + 1 entries (each -D takes four argv entries; the session expiry
 * interval from -c or -x adds one), so adding never fails.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "starling/error.h"
#include "starling/props.h"
#include "starling/utf8.h"
#include "cli.h"

/* Property value types, numbered as Mosquitto numbers them (its messages print the number). */
enum prop_type {
	PT_BYTE = 1,
	PT_INT16 = 2,
	PT_INT32 = 3,
	PT_VARINT = 4,
	PT_BINARY = 5,
	PT_STRING = 6,
	PT_PAIR = 7,
};

struct prop_name {
	const char *name; /* as -D spells it (compared without case) */
	uint8_t id;       /* enum st_prop_id */
	uint8_t type;     /* enum prop_type */
};

static const struct prop_name prop_names[] = {
        {"payload-format-indicator", ST_PROP_PAYLOAD_FORMAT, PT_BYTE},
        {"message-expiry-interval", ST_PROP_MESSAGE_EXPIRY, PT_INT32},
        {"content-type", ST_PROP_CONTENT_TYPE, PT_STRING},
        {"response-topic", ST_PROP_RESPONSE_TOPIC, PT_STRING},
        {"correlation-data", ST_PROP_CORRELATION_DATA, PT_BINARY},
        {"subscription-identifier", ST_PROP_SUBSCRIPTION_ID, PT_VARINT},
        {"session-expiry-interval", ST_PROP_SESSION_EXPIRY, PT_INT32},
        {"assigned-client-identifier", ST_PROP_ASSIGNED_CLIENT_ID, PT_STRING},
        {"server-keep-alive", ST_PROP_SERVER_KEEP_ALIVE, PT_INT16},
        {"authentication-method", ST_PROP_AUTH_METHOD, PT_STRING},
        {"authentication-data", ST_PROP_AUTH_DATA, PT_BINARY},
        {"request-problem-information", ST_PROP_REQUEST_PROBLEM_INFO, PT_BYTE},
        {"will-delay-interval", ST_PROP_WILL_DELAY, PT_INT32},
        {"request-response-information", ST_PROP_REQUEST_RESPONSE_INFO, PT_BYTE},
        {"response-information", ST_PROP_RESPONSE_INFO, PT_STRING},
        {"server-reference", ST_PROP_SERVER_REFERENCE, PT_STRING},
        {"reason-string", ST_PROP_REASON_STRING, PT_STRING},
        {"receive-maximum", ST_PROP_RECEIVE_MAXIMUM, PT_INT16},
        {"topic-alias-maximum", ST_PROP_TOPIC_ALIAS_MAXIMUM, PT_INT16},
        {"topic-alias", ST_PROP_TOPIC_ALIAS, PT_INT16},
        {"maximum-qos", ST_PROP_MAXIMUM_QOS, PT_BYTE},
        {"retain-available", ST_PROP_RETAIN_AVAILABLE, PT_BYTE},
        {"user-property", ST_PROP_USER_PROPERTY, PT_PAIR},
        {"maximum-packet-size", ST_PROP_MAXIMUM_PACKET_SIZE, PT_INT32},
        {"wildcard-subscription-available", ST_PROP_WILDCARD_SUB_AVAILABLE, PT_BYTE},
        {"subscription-identifier-available", ST_PROP_SUB_ID_AVAILABLE, PT_BYTE},
        {"shared-subscription-available", ST_PROP_SHARED_SUB_AVAILABLE, PT_BYTE},
};

/* Every command name mosquitto 2.0.11 knows (not suback or unsuback); only those with a
 * cli_prop_cmd carry properties. */
enum mcmd {
	MC_CONNECT,
	MC_CONNACK,
	MC_PUBLISH,
	MC_PUBACK,
	MC_PUBREC,
	MC_PUBREL,
	MC_PUBCOMP,
	MC_SUBSCRIBE,
	MC_UNSUBSCRIBE,
	MC_DISCONNECT,
	MC_AUTH,
	MC_WILL,
};

static const char *const mcmd_names[] = {
        "connect", "connack",   "publish",     "puback",     "pubrec", "pubrel",
        "pubcomp", "subscribe", "unsubscribe", "disconnect", "auth",   "will",
};

/* The packet names of "Error in <name> properties", by enum cli_prop_cmd. */
static const char *const pcmd_names[CLI_PCMD_COUNT] = {
        "CONNECT", "PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "DISCONNECT", "Will",
};

static const struct prop_name *find_prop(const char *name)
{
	for (size_t k = 0; k < sizeof(prop_names) / sizeof(prop_names[0]); k++) {
		if (strcasecmp(name, prop_names[k].name) == 0)
			return &prop_names[k];
	}
	return NULL;
}

static int find_mcmd(const char *name)
{
	for (size_t k = 0; k < sizeof(mcmd_names) / sizeof(mcmd_names[0]); k++) {
		if (strcasecmp(name, mcmd_names[k]) == 0)
			return (int)k;
	}
	return -1;
}

/* Whether a property may be given for a command, as mosquitto_property_check_command()
 * decides (MQTT 5 table 2-4, the will counted with PUBLISH's message properties). */
static bool prop_allowed(int cmd, uint8_t id)
{
	switch (id) {
	case ST_PROP_PAYLOAD_FORMAT:
	case ST_PROP_MESSAGE_EXPIRY:
	case ST_PROP_CONTENT_TYPE:
	case ST_PROP_RESPONSE_TOPIC:
	case ST_PROP_CORRELATION_DATA:
		return cmd == MC_PUBLISH || cmd == MC_WILL;
	case ST_PROP_SUBSCRIPTION_ID:
		return cmd == MC_PUBLISH || cmd == MC_SUBSCRIBE;
	case ST_PROP_SESSION_EXPIRY:
		return cmd == MC_CONNECT || cmd == MC_CONNACK || cmd == MC_DISCONNECT;
	case ST_PROP_AUTH_METHOD:
	case ST_PROP_AUTH_DATA:
		return cmd == MC_CONNECT || cmd == MC_CONNACK || cmd == MC_AUTH;
	case ST_PROP_WILL_DELAY:
		return cmd == MC_WILL;
	case ST_PROP_REQUEST_PROBLEM_INFO:
	case ST_PROP_REQUEST_RESPONSE_INFO:
		return cmd == MC_CONNECT;
	case ST_PROP_SERVER_REFERENCE:
		return cmd == MC_CONNACK || cmd == MC_DISCONNECT;
	case ST_PROP_REASON_STRING:
		return cmd != MC_CONNECT && cmd != MC_PUBLISH && cmd != MC_SUBSCRIBE &&
		       cmd != MC_UNSUBSCRIBE;
	case ST_PROP_RECEIVE_MAXIMUM:
	case ST_PROP_TOPIC_ALIAS_MAXIMUM:
	case ST_PROP_MAXIMUM_PACKET_SIZE:
		return cmd == MC_CONNECT || cmd == MC_CONNACK;
	case ST_PROP_TOPIC_ALIAS:
		return cmd == MC_PUBLISH;
	case ST_PROP_USER_PROPERTY:
		return true;
	default: /* assigned client id, server keep alive, the CONNACK capability flags */
		return cmd == MC_CONNACK;
	}
}

/*
 * The packet a command's properties go in, or -1 after printing why there is none:
 * Mosquitto's clients send no PUBLISH with a subscription identifier [MQTT-3.3.4-6], no AUTH
 * and no acknowledgement with properties, and refuse CONNACK without a word.
 */
static int target_packet(int cmd, uint8_t id, const char *propname, const char *cmdname)
{
	static const int8_t map[] = {
	        [MC_CONNECT] = CLI_PCMD_CONNECT,
	        [MC_CONNACK] = -2,
	        [MC_PUBLISH] = CLI_PCMD_PUBLISH,
	        [MC_PUBACK] = -1,
	        [MC_PUBREC] = -1,
	        [MC_PUBREL] = -1,
	        [MC_PUBCOMP] = -1,
	        [MC_SUBSCRIBE] = CLI_PCMD_SUBSCRIBE,
	        [MC_UNSUBSCRIBE] = CLI_PCMD_UNSUBSCRIBE,
	        [MC_DISCONNECT] = CLI_PCMD_DISCONNECT,
	        [MC_AUTH] = -1,
	        [MC_WILL] = CLI_PCMD_WILL,
	};
	int packet = map[cmd];

	if (cmd == MC_PUBLISH && id == ST_PROP_SUBSCRIPTION_ID)
		packet = -1;
	if (packet == -1)
		fprintf(stderr,
		        "Error: %s property not supported for %s in --property argument.\n\n",
		        propname, cmdname);
	return packet < 0 ? -1 : packet;
}

/*
 * Whether a string is one Mosquitto accepts in a property: well-formed UTF-8 without U+0000
 * [MQTT-1.5.4-1] [MQTT-1.5.4-2], and, as mosquitto_validate_utf8() insists, without control
 * characters or non-characters (which the spec says SHOULD NOT appear, section 1.5.4).
 */
static bool utf8_acceptable(const char *s)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t len = strlen(s);

	if (len > UINT16_MAX || st_utf8_check(u, len) != ST_OK)
		return false;
	for (size_t i = 0; i < len;) {
		/* Well-formed, so the lead byte tells the length and continuations follow. */
		unsigned n = u[i] < 0x80 ? 1 : u[i] < 0xE0 ? 2 : u[i] < 0xF0 ? 3 : 4;
		uint32_t cp = n == 1 ? u[i] : u[i] & (0x7Fu >> n);

		for (unsigned k = 1; k < n; k++)
			cp = cp << 6 | (u[i + k] & 0x3Fu);
		i += n;
		if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
			return false;
		if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu)
			return false;
	}
	return true;
}

/* atol(): leading digits, 0 when there are none, saturated at the long's range. */
static long atol_like(const char *s)
{
	return strtol(s, NULL, 10);
}

/* Reads an integer property's value into p->value. Returns 0 or ST_ERR_CONFIG. Messages
 * name the property as the user spelt it, as Mosquitto's do. */
static int parse_number(const struct prop_name *pn, const char *propname, const char *v,
                        struct cli_prop *p)
{
	static const long max[] = {[PT_BYTE] = UINT8_MAX,
	                           [PT_INT16] = UINT16_MAX,
	                           [PT_INT32] = (long)UINT32_MAX,
	                           [PT_VARINT] = (long)UINT32_MAX};
	long n = atol_like(v);

	if (n < 0 || n > max[pn->type]) {
		fprintf(stderr, "Error: Property value (%ld) out of range for property %s.\n\n", n,
		        propname);
		return ST_ERR_CONFIG;
	}
	if (pn->type == PT_VARINT && n > (long)ST_REMLEN_MAX) {
		/* A variable byte integer holds at most 268,435,455 (section 1.5.5). */
		fprintf(stderr, "Error adding property %s %d\n", propname, pn->type);
		return ST_ERR_CONFIG;
	}
	p->value = (uint32_t)n;
	return 0;
}

/* Reads the value of `pn` from v (and the name k of a user property) into *p. */
static int parse_value(const struct prop_name *pn, const char *propname, const char *k,
                       const char *v, struct cli_prop *p)
{
	switch (pn->type) {
	case PT_BINARY:
		if (strlen(v) > UINT16_MAX) {
			fprintf(stderr, "Error: Property value too long for property %s.\n\n",
			        propname);
			return ST_ERR_CONFIG;
		}
		p->str = v;
		return 0;
	case PT_STRING:
	case PT_PAIR:
		if ((k && !utf8_acceptable(k)) || !utf8_acceptable(v)) {
			fprintf(stderr, "Error adding property %s %d\n", propname, pn->type);
			return ST_ERR_CONFIG;
		}
		p->key = k;
		p->str = v;
		return 0;
	default:
		return parse_number(pn, propname, v, p);
	}
}

int cli_props_parse(struct cli_common *o, int argc, char **argv, int *i)
{
	const struct prop_name *pn;
	const char *cmdname, *propname, *key = NULL, *value;
	struct cli_prop p = {0};
	int cmd, packet;

	if (*i + 3 > argc - 1)
		goto not_enough;
	cmdname = argv[*i + 1];
	propname = argv[*i + 2];
	cmd = find_mcmd(cmdname);
	if (cmd < 0) {
		fprintf(stderr, "Error: Invalid command given in --property argument.\n\n");
		return ST_ERR_CONFIG;
	}
	pn = find_prop(propname);
	if (!pn) {
		fprintf(stderr, "Error: Invalid property name given in --property argument.\n\n");
		return ST_ERR_CONFIG;
	}
	if (!prop_allowed(cmd, pn->id)) {
		fprintf(stderr, "Error: %s property not allowed for %s in --property argument.\n\n",
		        propname, cmdname);
		return ST_ERR_CONFIG;
	}
	if (pn->type == PT_PAIR) {
		if (*i + 4 > argc - 1)
			goto not_enough;
		key = argv[*i + 3];
	}
	value = argv[*i + (pn->type == PT_PAIR ? 4 : 3)];
	*i += pn->type == PT_PAIR ? 4 : 3;
	packet = target_packet(cmd, pn->id, propname, cmdname);
	if (packet < 0 || parse_value(pn, propname, key, value, &p) < 0)
		return ST_ERR_CONFIG;
	p.cmd = (uint8_t)packet;
	p.id = pn->id;
	if (o->props.count + 1 >= o->props.cap)
		return ST_ERR_CONFIG; /* cannot happen: argc bounds the entries */
	o->props.list[o->props.count++] = p;
	/* Properties exist only in MQTT 5; a later -V can still change the version. */
	o->level = ST_MQTT_5;
	return 0;
not_enough:
	fprintf(stderr, "Error: --property argument given but not enough arguments specified.\n\n");
	return ST_ERR_CONFIG;
}

/* --- checking and encoding ----------------------------------------------------------- */

static const struct prop_name *info_of(uint8_t id)
{
	for (size_t k = 0; k < sizeof(prop_names) / sizeof(prop_names[0]); k++) {
		if (prop_names[k].id == id)
			return &prop_names[k];
	}
	return NULL; /* every id in a list came from the table */
}

/*
 * A value the protocol forbids, as mosquitto_property_check_all() sees it. Two checks come
 * from later Mosquitto releases, not 2.0.11, which sends these and lets the broker refuse
 * them: a Payload Format Indicator above 1 and a Response Topic with a wildcard.
 */
static bool value_forbidden(const struct cli_prop *p)
{
	const struct prop_name *pn = info_of(p->id);

	if (pn->type == PT_BYTE)
		return p->value > 1; /* section 2.2.2.2: the byte properties are 0 or 1 */
	switch (p->id) {
	case ST_PROP_MAXIMUM_PACKET_SIZE: /* section 3.1.2.11.4 */
	case ST_PROP_RECEIVE_MAXIMUM:     /* section 3.1.2.11.3 */
	case ST_PROP_TOPIC_ALIAS:         /* [MQTT-3.3.2-8] */
	case ST_PROP_SUBSCRIPTION_ID:     /* section 3.8.2.1.2 (Mosquitto does not check this) */
		return p->value == 0;
	case ST_PROP_RESPONSE_TOPIC: /* [MQTT-3.3.2-14] */
		return strpbrk(p->str, "+#") != NULL;
	default:
		return false;
	}
}

/* Whether a packet's list has a property. */
static bool packet_has(const struct cli_props *ps, unsigned packet, uint8_t id)
{
	for (size_t k = 0; k < ps->count; k++) {
		if (ps->list[k].cmd == packet && ps->list[k].id == id)
			return true;
	}
	return false;
}

/* Checks one packet's properties; prints "Error in <packet> properties: ..." on failure. */
static int check_packet(const struct cli_common *o, unsigned packet)
{
	const struct cli_props *ps = &o->props;

	/* Authentication Data without an Authentication Method is a Protocol Error (section
	 * 3.1.2.11.10); Mosquitto sends it and the broker refuses. */
	if (packet_has(ps, packet, ST_PROP_AUTH_DATA) &&
	    !packet_has(ps, packet, ST_PROP_AUTH_METHOD)) {
		cli_err(o,
		        "Error in %s properties: A network protocol error occurred when "
		        "communicating with the broker.\n",
		        pcmd_names[packet]);
		return ST_ERR_CONFIG;
	}
	for (size_t k = 0; k < ps->count; k++) {
		const struct cli_prop *p = &ps->list[k];

		if (p->cmd != packet)
			continue;
		if (value_forbidden(p)) {
			cli_err(o,
			        "Error in %s properties: A network protocol error occurred when "
			        "communicating with the broker.\n",
			        pcmd_names[packet]);
			return ST_ERR_CONFIG;
		}
		if (p->id == ST_PROP_USER_PROPERTY)
			continue; /* the one property that may repeat (section 3.1.2.11.8) */
		for (size_t j = k + 1; j < ps->count; j++) {
			if (ps->list[j].cmd == packet && ps->list[j].id == p->id) {
				cli_err(o,
				        "Error in %s properties: Duplicate property in property "
				        "list\n",
				        pcmd_names[packet]);
				return ST_ERR_CONFIG;
			}
		}
	}
	return 0;
}

/* Encoded size of one property, identifier included. */
static size_t prop_size(const struct cli_prop *p)
{
	switch (info_of(p->id)->type) {
	case PT_BYTE:
		return 2;
	case PT_INT16:
		return 3;
	case PT_INT32:
		return 5;
	case PT_VARINT:
		return 1 + st_varint_size(p->value);
	case PT_PAIR:
		return 5 + strlen(p->key) + strlen(p->str);
	default:
		return 3 + strlen(p->str);
	}
}

static struct st_bytes cstr(const char *s)
{
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void write_prop(struct st_prop_writer *w, const struct cli_prop *p)
{
	switch (info_of(p->id)->type) {
	case PT_BYTE:
		st_pw_byte(w, p->id, (uint8_t)p->value);
		break;
	case PT_INT16:
		st_pw_u16(w, p->id, (uint16_t)p->value);
		break;
	case PT_INT32:
		st_pw_u32(w, p->id, p->value);
		break;
	case PT_VARINT:
		st_pw_varint(w, p->id, p->value);
		break;
	case PT_PAIR:
		st_pw_pair(w, p->id, cstr(p->key), cstr(p->str));
		break;
	default:
		st_pw_str(w, p->id, cstr(p->str));
		break;
	}
}

int cli_props_finish(struct cli_common *o)
{
	struct cli_props *ps = &o->props;
	size_t total = 0, off = 0;

	for (unsigned packet = 0; packet < CLI_PCMD_COUNT; packet++) {
		if (check_packet(o, packet) < 0)
			return ST_ERR_CONFIG;
	}
	for (size_t k = 0; k < ps->count; k++)
		total += prop_size(&ps->list[k]);
	if (total == 0)
		return 0;
	ps->buf = malloc(total);
	if (!ps->buf) {
		fprintf(stderr, "Error: Out of memory.\n");
		return ST_ERR_CONFIG;
	}
	/* One writer per packet over its slice of the buffer, properties in argv order. */
	for (unsigned packet = 0; packet < CLI_PCMD_COUNT; packet++) {
		struct st_prop_writer w;

		st_pw_init(&w, ps->buf + off, total - off);
		for (size_t k = 0; k < ps->count; k++) {
			if (ps->list[k].cmd == packet)
				write_prop(&w, &ps->list[k]);
		}
		if (w.overflow || st_pw_len(&w) > ST_REMLEN_MAX) {
			fprintf(stderr, "Error: %s properties are too long.\n", pcmd_names[packet]);
			return ST_ERR_CONFIG;
		}
		ps->block[packet] = (struct st_bytes){ps->buf + off, (uint32_t)st_pw_len(&w)};
		off += st_pw_len(&w);
	}
	return 0;
}

/* --- reason codes ---------------------------------------------------------------------- */

const char *cli_reason_string(uint8_t code)
{
	/* mosquitto_reason_string()'s words, which mosquitto_pub/mosquitto_sub print. */
	static const char *const names[256] = {
	        [0x00] = "Success",
	        [0x01] = "Granted QoS 1",
	        [0x02] = "Granted QoS 2",
	        [0x04] = "Disconnect with Will Message",
	        [0x10] = "No matching subscribers",
	        [0x11] = "No subscription existed",
	        [0x18] = "Continue authentication",
	        [0x19] = "Re-authenticate",
	        [0x80] = "Unspecified error",
	        [0x81] = "Malformed Packet",
	        [0x82] = "Protocol Error",
	        [0x83] = "Implementation specific error",
	        [0x84] = "Unsupported Protocol Version",
	        [0x85] = "Client Identifier not valid",
	        [0x86] = "Bad User Name or Password",
	        [0x87] = "Not authorized",
	        [0x88] = "Server unavailable",
	        [0x89] = "Server busy",
	        [0x8A] = "Banned",
	        [0x8B] = "Server shutting down",
	        [0x8C] = "Bad authentication method",
	        [0x8D] = "Keep Alive timeout",
	        [0x8E] = "Session taken over",
	        [0x8F] = "Topic Filter invalid",
	        [0x90] = "Topic Name invalid",
	        [0x91] = "Packet Identifier in use",
	        [0x92] = "Packet Identifier not found",
	        [0x93] = "Receive Maximum exceeded",
	        [0x94] = "Topic Alias invalid",
	        [0x95] = "Packet too large",
	        [0x96] = "Message rate too high",
	        [0x97] = "Quota exceeded",
	        [0x98] = "Administrative action",
	        [0x99] = "Payload format invalid",
	        [0x9A] = "Retain not supported",
	        [0x9B] = "QoS not supported",
	        [0x9C] = "Use another server",
	        [0x9D] = "Server moved",
	        [0x9E] = "Shared Subscriptions not supported",
	        [0x9F] = "Connection rate exceeded",
	        [0xA0] = "Maximum connect time",
	        [0xA1] = "Subscription identifiers not supported",
	        [0xA2] = "Wildcard Subscriptions not supported",
	};

	return names[code] ? names[code] : "Unknown reason";
}
