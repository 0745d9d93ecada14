/*
 * Command-line parsing shared by starling-pub and starling-sub.
 *
 * The tools accept the options users type for mosquitto_pub and mosquitto_sub, with the same
 * spellings, defaults and error messages, so scripts written for Mosquitto's clients work
 * unchanged. Like Mosquitto's clients (and unlike getopt), every option is its own argv
 * entry and an option that takes a value takes the next entry, whatever it looks like: `-m
 * -x` publishes "-x".
 *
 * Each tool describes its own options in a table of struct cli_spec and hands the options
 * common to both (connection, identity, will, protocol version) to cli_common_apply(). No
 * parsing state lives outside the structs the caller owns; values are borrowed from argv.
 *
 * MQTT 5 properties (-D command identifier value, tools/cli_props.c) are collected in
 * command-line order, checked as mosquitto 2.0.11 checks them (the same messages, in the same
 * order), and encoded once per packet type into property blocks the client sends as they are.
 */
#ifndef STARLING_TOOLS_CLI_H
#define STARLING_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

/* Which tool an option belongs to (a bit mask, so a spec can name both). */
#define CLI_PUB 0x01u
#define CLI_SUB 0x02u

/* Exit status for a bad command line, as Mosquitto's clients use. */
#define CLI_EXIT_USAGE 1

/* Keys of the options cli_common_apply() understands; tools number theirs from CLI_KEY_TOOL. */
enum cli_key {
	CLI_KEY_HELP = 1,
	CLI_KEY_HOST,
	CLI_KEY_PORT,
	CLI_KEY_ID,
	CLI_KEY_ID_PREFIX,
	CLI_KEY_KEEPALIVE,
	CLI_KEY_QOS,
	CLI_KEY_NO_CLEAN,
	CLI_KEY_USERNAME,
	CLI_KEY_PASSWORD,
	CLI_KEY_DEBUG,
	CLI_KEY_QUIET,
	CLI_KEY_NODELAY,
	CLI_KEY_VERSION,
	CLI_KEY_WILL_TOPIC,
	CLI_KEY_WILL_PAYLOAD,
	CLI_KEY_WILL_QOS,
	CLI_KEY_WILL_RETAIN,
	CLI_KEY_PROPERTY,
	CLI_KEY_SESSION_EXPIRY,
	CLI_KEY_CAFILE,
	CLI_KEY_CAPATH,
	CLI_KEY_CERT,
	CLI_KEY_KEY,
	CLI_KEY_INSECURE,
	CLI_KEY_TLS_VERSION,
	CLI_KEY_TOOL = 64,
};

/* One option: its spellings, whether it takes a value, and which tools accept it. */
struct cli_spec {
	const char *name;  /* short spelling, "-h" */
	const char *alias; /* long spelling, "--host", or NULL */
	const char *what;  /* the value's name for "no <what> specified", NULL for a flag */
	uint8_t tools;     /* CLI_PUB and/or CLI_SUB */
	uint8_t key;       /* enum cli_key or a tool's own key */
};

/* Longest client id cli_common_finish() generates (a prefix plus a pid). */
#define CLI_ID_MAX 256

/* The packets -D can give properties for, as mosquitto names them; the order is the order
 * in which mosquitto checks them after parsing. */
enum cli_prop_cmd {
	CLI_PCMD_CONNECT,
	CLI_PCMD_PUBLISH,
	CLI_PCMD_SUBSCRIBE,
	CLI_PCMD_UNSUBSCRIBE,
	CLI_PCMD_DISCONNECT,
	CLI_PCMD_WILL,
	CLI_PCMD_COUNT,
};

/* One property from -D (or -c/-x: the session expiry interval), before encoding. */
struct cli_prop {
	uint8_t cmd;     /* enum cli_prop_cmd */
	uint8_t id;      /* enum st_prop_id */
	uint32_t value;  /* integer properties */
	const char *str; /* string or binary value, or a user property's value; from argv */
	const char *key; /* a user property's name; from argv */
};

/* Every property given, and once checked, each packet's encoded property block. */
struct cli_props {
	struct cli_prop *list;                 /* command-line order; room for argc + 1 */
	size_t count;                          /* entries used */
	size_t cap;                            /* entries allocated */
	uint8_t *buf;                          /* all encoded blocks, one allocation */
	struct st_bytes block[CLI_PCMD_COUNT]; /* each packet's properties, views into buf */
};

/* The options both tools share, after parsing. Strings are borrowed from argv. */
struct cli_common {
	const char *tool;         /* "starling-pub", for messages and the default id */
	uint8_t tool_mask;        /* CLI_PUB or CLI_SUB */
	const char *host;         /* -h; "localhost" by default */
	uint16_t port;            /* -p; 1883 by default */
	const char *id;           /* -i, or the generated id after cli_common_finish() */
	const char *id_prefix;    /* -I: the id is this prefix followed by the pid */
	char id_buf[CLI_ID_MAX];  /* storage for a generated id */
	uint16_t keepalive_s;     /* -k; 60 by default, 5..65535 */
	uint8_t qos;              /* -q: publish QoS (pub) or requested QoS (sub) */
	bool clean_session;       /* false with -c */
	const char *username;     /* -u, NULL if absent */
	const char *password;     /* -P, NULL if absent */
	bool debug;               /* -d: print packets sent and received */
	bool quiet;               /* --quiet: no runtime error messages */
	bool help;                /* --help was given */
	uint8_t level;            /* -V: enum st_protocol_level; 3.1.1 by default */
	const char *will_topic;   /* --will-topic, NULL for no will */
	const char *will_payload; /* --will-payload, NULL for an empty will */
	uint8_t will_qos;         /* --will-qos */
	bool will_retain;         /* --will-retain */
	bool will_qos_given;      /* --will-qos was given (needs --will-topic) */
	int64_t session_expiry_s; /* -x: MQTT 5 session expiry interval, -1 when not given */
	struct cli_props props;   /* -D properties (MQTT 5) */
	bool port_given;          /* -p was given (TLS changes the default to 8883) */
	const char *cafile;       /* --cafile: TLS, verifying the broker with these CAs */
	const char *capath;       /* --capath: the same from a directory */
	const char *certfile;     /* --cert: client certificate */
	const char *keyfile;      /* --key: its private key */
	bool insecure;            /* --insecure: no host name check of the certificate */
	uint8_t tls_version;      /* --tls-version: 12 or 13 (the lowest), 0: default */
};

/*
 * Sets the defaults: localhost:1883, keepalive 60, QoS 0, clean session, MQTT 3.1.1, and
 * room for the properties argc entries can give. Returns 0 or ST_ERR_NOMEM.
 */
int cli_common_init(struct cli_common *o, const char *tool, uint8_t tool_mask, int argc);

/* Frees what cli_common_init() and cli_common_finish() allocated. */
void cli_common_free(struct cli_common *o);

/*
 * Matches argv[*i] against the tool's table, then the common one. On a match stores the spec
 * in *spec and the value (argv[*i + 1], *i advanced past it) in *value, and returns 0. For an
 * unknown option or a missing value prints Mosquitto's message and returns ST_ERR_CONFIG.
 */
int cli_match(const struct cli_common *o, const struct cli_spec *table, size_t n, int argc,
              char **argv, int *i, const struct cli_spec **spec, const char **value);

/* Applies one common option. Returns 0, or ST_ERR_CONFIG after printing why. */
int cli_common_apply(struct cli_common *o, const struct cli_spec *spec, const char *value);

/* Applies one of a tool's own options (key >= CLI_KEY_TOOL) to its options struct. */
typedef int (*cli_tool_apply_fn)(void *tool, uint8_t key, const char *value);

/*
 * Walks argv[1..argc): the tool's options (applied through apply), the common ones and -D
 * properties. Returns 0, or the exit status to leave with: after a bad option (hint printed)
 * or --help (usage() printed, exit 1 as Mosquitto's tools).
 */
int cli_parse_argv(struct cli_common *o, const struct cli_spec *table, size_t n, int argc,
                   char **argv, cli_tool_apply_fn apply, void *tool, void (*usage)(void));

/*
 * Parses "-D command identifier value" (or "... user-property name value") starting at
 * argv[*i] (the -D), as mosquitto does, and moves *i to its last argument. A property makes
 * the protocol MQTT 5. Returns 0, or ST_ERR_CONFIG after printing mosquitto's message.
 */
int cli_props_parse(struct cli_common *o, int argc, char **argv, int *i);

/*
 * Checks every packet's properties as mosquitto does after parsing (values the protocol
 * forbids, duplicates) and encodes them into o->props.block[]. Returns 0, or ST_ERR_CONFIG
 * after printing why.
 */
int cli_props_finish(struct cli_common *o);

/*
 * Checks the combination of common options (a will payload without a will topic, -c without
 * -i, a session that never expires without -i in MQTT 5) and fills in the default client id
 * ("<tool>-<pid>", or the -I prefix and the pid; MQTT 5 sends an empty one and takes the id
 * the broker assigns, as mosquitto's clients do). Then checks and encodes the properties.
 * Returns 0, or ST_ERR_CONFIG after printing why.
 */
int cli_common_finish(struct cli_common *o);

struct client_config;

/* Fills a client configuration from the common options (strings stay borrowed from argv). */
void cli_client_config(const struct cli_common *o, struct client_config *cfg);

/* Parses a decimal integer in [min, max]; false if `s` is not one. */
bool cli_parse_long(const char *s, long min, long max, long *out);

/* Mosquitto's text for a 3.x CONNACK return code ("Connection Refused: not authorised."). */
const char *cli_connack_string(uint8_t code);

/* Mosquitto's text for an MQTT 5 reason code ("Not authorized"), mosquitto_reason_string(). */
const char *cli_reason_string(uint8_t code);

/*
 * Prints why the broker refused the connection, as mosquitto's clients do: "Connection error:
 * <text>" with the 3.x text or the MQTT 5 reason (0x84 gets advice to use MQTT 3.x).
 */
void cli_print_refusal(const struct cli_common *o, uint8_t code);

/*
 * Properties need MQTT 5: with a later -V 311 or 31, prints what mosquitto prints when it
 * fails to connect ("Error: Problem setting will." for will properties, "Unable to connect
 * (This feature is not supported.)." otherwise) and returns ST_ERR_CONFIG; else 0.
 */
int cli_check_version(const struct cli_common *o);

/*
 * Reports a DISCONNECT from the broker (MQTT 5): "Error: The broker disconnected: <reason>"
 * and its Reason String if it sent one. Returns the exit status: the reason code, or 1 for
 * 0x00 (the tool did not ask to stop). Mosquitto's clients print only a -d line here and
 * exit 0 or reconnect; an unrequested end is an error for scripts.
 */
int cli_broker_disconnect(const struct cli_common *o, uint8_t reason, struct st_bytes text);

/* Prints "Use '<tool> --help' to see usage." on stderr, as Mosquitto does after an error. */
void cli_hint(const struct cli_common *o);

/* Prints the options both tools share, for the tools' --help text. */
void cli_common_usage(void);

/* Prints an error unless --quiet: "Error: ..." lines for failures at run time. */
void cli_err(const struct cli_common *o, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif
