/*
 * Command-line parsing shared by starling-pub and starling-sub: the option table both tools
 * accept, lookup of an argv entry in a tool's table and the common one, and the checks and
 * defaults that depend on several options at once.
 *
 * Messages copy Mosquitto's clients word for word ("Error: Invalid QoS given: 3") because
 * scripts and people grep for them; the exit status for every command-line error is 1, as
 * theirs is. The MQTT 5 property options (-D) live in cli_props.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starling/codec.h"
#include "starling/error.h"
#include "starling/props.h"
#include "starling/topic.h"
#include "starling/utf8.h"
#include "cli.h"
#include "client.h"

#define CLI_BOTH (CLI_PUB | CLI_SUB)

static const struct cli_spec common_specs[] = {
        {"--help", NULL, NULL, CLI_BOTH, CLI_KEY_HELP},
        {"-h", "--host", "host", CLI_BOTH, CLI_KEY_HOST},
        {"-p", "--port", "port", CLI_BOTH, CLI_KEY_PORT},
        {"-i", "--id", "id", CLI_BOTH, CLI_KEY_ID},
        {"-I", "--id-prefix", "id prefix", CLI_BOTH, CLI_KEY_ID_PREFIX},
        {"-k", "--keepalive", "keepalive", CLI_BOTH, CLI_KEY_KEEPALIVE},
        {"-q", "--qos", "QoS", CLI_BOTH, CLI_KEY_QOS},
        {"-c", "--disable-clean-session", NULL, CLI_BOTH, CLI_KEY_NO_CLEAN},
        {"-u", "--username", "username", CLI_BOTH, CLI_KEY_USERNAME},
        {"-P", "--pw", "password", CLI_BOTH, CLI_KEY_PASSWORD},
        {"-d", "--debug", NULL, CLI_BOTH, CLI_KEY_DEBUG},
        {"--quiet", NULL, NULL, CLI_BOTH, CLI_KEY_QUIET},
        {"--nodelay", NULL, NULL, CLI_BOTH, CLI_KEY_NODELAY},
        {"-V", "--protocol-version", "version", CLI_BOTH, CLI_KEY_VERSION},
        {"--will-topic", NULL, "will topic", CLI_BOTH, CLI_KEY_WILL_TOPIC},
        {"--will-payload", NULL, "will payload", CLI_BOTH, CLI_KEY_WILL_PAYLOAD},
        {"--will-qos", NULL, "will QoS", CLI_BOTH, CLI_KEY_WILL_QOS},
        {"--will-retain", NULL, NULL, CLI_BOTH, CLI_KEY_WILL_RETAIN},
        {"-D", "--property", NULL, CLI_BOTH, CLI_KEY_PROPERTY},
        {"-x", NULL, "session expiry interval", CLI_BOTH, CLI_KEY_SESSION_EXPIRY},
        {"--cafile", NULL, "cafile", CLI_BOTH, CLI_KEY_CAFILE},
        {"--capath", NULL, "capath", CLI_BOTH, CLI_KEY_CAPATH},
        {"--cert", NULL, "certificate", CLI_BOTH, CLI_KEY_CERT},
        {"--key", NULL, "key", CLI_BOTH, CLI_KEY_KEY},
        {"--insecure", NULL, NULL, CLI_BOTH, CLI_KEY_INSECURE},
        {"--tls-version", NULL, "TLS protocol version", CLI_BOTH, CLI_KEY_TLS_VERSION},
};

int cli_common_init(struct cli_common *o, const char *tool, uint8_t tool_mask, int argc)
{
	memset(o, 0, sizeof(*o));
	o->tool = tool;
	o->tool_mask = tool_mask;
	o->host = "localhost";
	o->port = 1883;
	o->keepalive_s = 60;
	o->clean_session = true;
	o->level = ST_MQTT_311;
	o->session_expiry_s = -1;
	/* Each -D takes at least four argv entries; -c/-x add one session expiry interval. */
	o->props.cap = (size_t)(argc > 0 ? argc : 0) + 1;
	o->props.list = calloc(o->props.cap, sizeof(*o->props.list));
	return o->props.list ? 0 : ST_ERR_NOMEM;
}

void cli_common_free(struct cli_common *o)
{
	free(o->props.list);
	free(o->props.buf);
	o->props.list = NULL;
	o->props.buf = NULL;
}

static const struct cli_spec *lookup(const struct cli_spec *table, size_t n, const char *arg)
{
	for (size_t k = 0; k < n; k++) {
		if (strcmp(arg, table[k].name) == 0 ||
		    (table[k].alias && strcmp(arg, table[k].alias) == 0))
			return &table[k];
	}
	return NULL;
}

int cli_match(const struct cli_common *o, const struct cli_spec *table, size_t n, int argc,
              char **argv, int *i, const struct cli_spec **spec, const char **value)
{
	const char *arg = argv[*i];
	const struct cli_spec *s = lookup(table, n, arg);

	if (!s)
		s = lookup(common_specs, sizeof(common_specs) / sizeof(common_specs[0]), arg);
	if (!s || !(s->tools & o->tool_mask)) {
		fprintf(stderr, "Error: Unknown option '%s'.\n", arg);
		return ST_ERR_CONFIG;
	}
	*spec = s;
	*value = NULL;
	if (!s->what)
		return 0;
	if (*i + 1 >= argc) {
		/* Mosquitto names -V by its long form in this one message. */
		const char *shown = s->key == CLI_KEY_VERSION ? "--protocol-version" : s->name;
		fprintf(stderr, "Error: %s argument given but no %s specified.\n\n", shown,
		        s->what);
		return ST_ERR_CONFIG;
	}
	*i += 1;
	*value = argv[*i];
	return 0;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_version(struct cli_common *o, const char *v)
{
	if (strcmp(v, "mqttv31") == 0 || strcmp(v, "31") == 0) {
		o->level = ST_MQTT_31;
	} else if (strcmp(v, "mqttv311") == 0 || strcmp(v, "311") == 0) {
		o->level = ST_MQTT_311;
	} else if (strcmp(v, "mqttv5") == 0 || strcmp(v, "5") == 0) {
		o->level = ST_MQTT_5;
	} else {
		fprintf(stderr, "Error: Invalid protocol version argument given.\n\n");
		return ST_ERR_CONFIG;
	}
	return 0;
}

/* Parses a QoS; `will` picks the message for --will-qos over the one for -q. */
static int parse_qos(const char *v, bool will, uint8_t *qos)
{
	long q;

	if (!cli_parse_long(v, 0, 2, &q)) {
		if (will)
			fprintf(stderr, "Error: Invalid will QoS %s.\n\n", v);
		else
			fprintf(stderr, "Error: Invalid QoS given: %s\n", v);
		return ST_ERR_CONFIG;
	}
	*qos = (uint8_t)q;
	return 0;
}

/* A topic name for --will-topic (and pub's -t): valid UTF-8, no wildcard, not empty. */
static int check_will_topic(const char *t)
{
	size_t len = strlen(t);

	if (st_utf8_check((const uint8_t *)t, len) != ST_OK) {
		fprintf(stderr, "Error: Malformed UTF-8 in --will-topic argument.\n\n");
		return ST_ERR_CONFIG;
	}
	if (!st_topic_name_is_valid((const uint8_t *)t, len)) {
		fprintf(stderr, "Error: Invalid will topic '%s', does it contain '+' or '#'?\n", t);
		return ST_ERR_CONFIG;
	}
	return 0;
}

/*
 * -x: seconds, or -1, 4294967295 or "∞" for a session that never expires. As mosquitto, any
 * base strtol() accepts (0x10 is 16).
 */
static int parse_session_expiry(struct cli_common *o, const char *v)
{
	char *end = NULL;
	long long n;

	if (strcmp(v, "\xe2\x88\x9e") == 0) { /* "∞", U+221E in UTF-8 */
		o->session_expiry_s = UINT32_MAX;
		return 0;
	}
	errno = 0;
	n = strtoll(v, &end, 0);
	if (end == v || *end != '\0') {
		fprintf(stderr, "Error: session-expiry-interval not a number.\n\n");
		return ST_ERR_CONFIG;
	}
	if (errno == ERANGE || n > (long long)UINT32_MAX || n < -1) {
		fprintf(stderr, "Error: session-expiry-interval out of range.\n\n");
		return ST_ERR_CONFIG;
	}
	o->session_expiry_s = n == -1 ? (int64_t)UINT32_MAX : (int64_t)n;
	return 0;
}

static int apply_connection(struct cli_common *o, uint8_t key, const char *v)
{
	long n;

	switch (key) {
	case CLI_KEY_HOST:
		o->host = v;
		return 0;
	case CLI_KEY_PORT:
		if (!cli_parse_long(v, 1, 65535, &n)) {
			fprintf(stderr, "Error: Invalid port given: %s\n", v);
			return ST_ERR_CONFIG;
		}
		o->port = (uint16_t)n;
		o->port_given = true;
		return 0;
	case CLI_KEY_KEEPALIVE:
		if (!cli_parse_long(v, 5, 65535, &n)) {
			fprintf(stderr, "Error: Invalid keepalive given, it must be between 5 and "
			                "65535 inclusive.\n\n");
			return ST_ERR_CONFIG;
		}
		o->keepalive_s = (uint16_t)n;
		return 0;
	case CLI_KEY_VERSION:
		return parse_version(o, v);
	case CLI_KEY_SESSION_EXPIRY:
		return parse_session_expiry(o, v);
	default:
		return 1; /* not a connection option */
	}
}

static int apply_identity(struct cli_common *o, uint8_t key, const char *v)
{
	switch (key) {
	case CLI_KEY_ID:
		if (o->id_prefix) {
			fprintf(stderr, "Error: -i and -I argument cannot be used together.\n\n");
			return ST_ERR_CONFIG;
		}
		o->id = v;
		return 0;
	case CLI_KEY_ID_PREFIX:
		if (o->id) {
			fprintf(stderr, "Error: -i and -I argument cannot be used together.\n\n");
			return ST_ERR_CONFIG;
		}
		o->id_prefix = v;
		return 0;
	case CLI_KEY_USERNAME:
		o->username = v;
		return 0;
	case CLI_KEY_PASSWORD:
		o->password = v;
		return 0;
	default:
		return 1;
	}
}

/* mosquitto_pub's TLS options; --tls-version is the lowest version, as in Mosquitto 2. */
static int apply_tls(struct cli_common *o, uint8_t key, const char *v)
{
	switch (key) {
	case CLI_KEY_CAFILE:
		o->cafile = v;
		return 0;
	case CLI_KEY_CAPATH:
		o->capath = v;
		return 0;
	case CLI_KEY_CERT:
		o->certfile = v;
		return 0;
	case CLI_KEY_KEY:
		o->keyfile = v;
		return 0;
	case CLI_KEY_INSECURE:
		o->insecure = true;
		return 0;
	case CLI_KEY_TLS_VERSION:
		if (strcmp(v, "tlsv1.3") == 0)
			o->tls_version = 13;
		else if (strcmp(v, "tlsv1.2") == 0)
			o->tls_version = 12;
		else {
			fprintf(stderr,
			        "Error: Unsupported TLS version '%s' (tlsv1.2 or tlsv1.3).\n", v);
			return ST_ERR_CONFIG;
		}
		return 0;
	default:
		return 1;
	}
}

static int apply_will(struct cli_common *o, uint8_t key, const char *v)
{
	switch (key) {
	case CLI_KEY_WILL_TOPIC:
		if (check_will_topic(v) < 0)
			return ST_ERR_CONFIG;
		o->will_topic = v;
		return 0;
	case CLI_KEY_WILL_PAYLOAD:
		o->will_payload = v;
		return 0;
	case CLI_KEY_WILL_QOS:
		o->will_qos_given = true;
		return parse_qos(v, true, &o->will_qos);
	case CLI_KEY_WILL_RETAIN:
		o->will_retain = true;
		return 0;
	default:
		return 1;
	}
}

int cli_common_apply(struct cli_common *o, const struct cli_spec *spec, const char *value)
{
	int rc;

	switch (spec->key) {
	case CLI_KEY_HELP:
		o->help = true;
		return 0;
	case CLI_KEY_QOS:
		return parse_qos(value, false, &o->qos);
	case CLI_KEY_NO_CLEAN:
		o->clean_session = false;
		return 0;
	case CLI_KEY_DEBUG:
		o->debug = true;
		return 0;
	case CLI_KEY_QUIET:
		o->quiet = true;
		return 0;
	case CLI_KEY_NODELAY:
		/* Accepted for Mosquitto compatibility: the client always sets TCP_NODELAY. */
		return 0;
	default:
		break;
	}
	rc = apply_connection(o, spec->key, value);
	if (rc <= 0)
		return rc;
	rc = apply_identity(o, spec->key, value);
	if (rc <= 0)
		return rc;
	rc = apply_will(o, spec->key, value);
	if (rc <= 0)
		return rc;
	rc = apply_tls(o, spec->key, value);
	if (rc <= 0)
		return rc;
	fprintf(stderr, "Error: Unknown option '%s'.\n", spec->name);
	return ST_ERR_CONFIG;
}

/*
 * The client id rules that depend on the session: MQTT 3.x needs an id with -c; MQTT 5 turns
 * -c into a session that never expires (unless -x says otherwise), which needs an id too, and
 * sends the session expiry interval as a CONNECT property after those -D gave.
 */
static int check_session(struct cli_common *o)
{
	bool no_id = o->id_prefix || !o->id;

	if (o->level != ST_MQTT_5) {
		if (!o->clean_session && no_id) {
			/* A generated id would make the persistent session unreachable next time;
			 * an empty one is refused with clean session 0 [MQTT-3.1.3-7]. */
			fprintf(stderr,
			        "Error: You must provide a client id if you are using the -c "
			        "option.\n");
			return ST_ERR_CONFIG;
		}
		return 0;
	}
	if (!o->clean_session && o->session_expiry_s == -1)
		o->session_expiry_s = UINT32_MAX;
	if (o->session_expiry_s <= 0)
		return 0; /* absent means 0: the session ends with the connection */
	if (o->session_expiry_s == UINT32_MAX && no_id) {
		fprintf(stderr, "Error: You must provide a client id if you are using an infinite "
		                "session expiry interval.\n");
		return ST_ERR_CONFIG;
	}
	o->props.list[o->props.count++] = (struct cli_prop){
	        .cmd = CLI_PCMD_CONNECT,
	        .id = ST_PROP_SESSION_EXPIRY,
	        .value = (uint32_t)o->session_expiry_s,
	};
	return 0;
}

/* Fills in the client id: -i, the -I prefix and the pid, or a default. */
static int make_id(struct cli_common *o)
{
	if (o->id_prefix) {
		int n = snprintf(o->id_buf, sizeof(o->id_buf), "%s%ld", o->id_prefix,
		                 (long)getpid());
		if (n < 0 || (size_t)n >= sizeof(o->id_buf)) {
			fprintf(stderr, "Error: Client id prefix too long.\n");
			return ST_ERR_CONFIG;
		}
		o->id = o->id_buf;
	} else if (!o->id && o->level == ST_MQTT_5) {
		/* An empty id: the broker assigns one and says which in CONNACK
		 * [MQTT-3.2.2-16], as with mosquitto_pub -V 5. */
		o->id = "";
	} else if (!o->id) {
		snprintf(o->id_buf, sizeof(o->id_buf), "%s-%ld", o->tool, (long)getpid());
		o->id = o->id_buf;
	}
	if (st_utf8_check((const uint8_t *)o->id, strlen(o->id)) != ST_OK ||
	    strlen(o->id) > UINT16_MAX) {
		fprintf(stderr, "Error: Invalid client id '%s'.\n", o->id);
		return ST_ERR_CONFIG;
	}
	return 0;
}

int cli_common_finish(struct cli_common *o)
{
	if (o->will_payload && !o->will_topic) {
		fprintf(stderr, "Error: Will payload given, but no will topic given.\n");
		return ST_ERR_CONFIG;
	}
	if (o->will_retain && !o->will_topic) {
		fprintf(stderr, "Error: Will retain given, but no will topic given.\n");
		return ST_ERR_CONFIG;
	}
	if (o->password && !o->username && o->level != ST_MQTT_5) {
		/* MQTT 3.x has no password without a user name [MQTT-3.1.2-22]; MQTT 5 allows
		 * one (section 3.1.2.9). */
		fprintf(stderr, "Error: Problem setting username and/or password.\n");
		return ST_ERR_CONFIG;
	}
	if (!o->certfile != !o->keyfile) {
		fprintf(stderr, "Error: Both certfile and keyfile must be provided if one of them "
		                "is set.\n");
		return ST_ERR_CONFIG;
	}
	if ((o->certfile || o->insecure || o->tls_version) && !o->cafile && !o->capath) {
		/* As mosquitto's clients: TLS is on with a CA to verify the broker, only. */
		fprintf(stderr, "Error: TLS options need --cafile or --capath.\n");
		return ST_ERR_CONFIG;
	}
	if ((o->cafile || o->capath) && !o->port_given)
		o->port = 8883;
	if (check_session(o) < 0 || make_id(o) < 0)
		return ST_ERR_CONFIG;
	return cli_props_finish(o);
}

void cli_client_config(const struct cli_common *o, struct client_config *cfg)
{
	*cfg = (struct client_config){
	        .host = o->host,
	        .port = o->port,
	        .client_id = o->id,
	        .level = o->level,
	        .keepalive_s = o->keepalive_s,
	        .clean_session = o->clean_session,
	        .username = o->username,
	        .password = o->password,
	        .will_topic = o->will_topic,
	        .will_payload = (const uint8_t *)o->will_payload,
	        .will_payload_len = o->will_payload ? strlen(o->will_payload) : 0,
	        .will_qos = o->will_qos,
	        .will_retain = o->will_retain,
	        .debug = o->debug,
	        .inflight_max = CLIENT_INFLIGHT_DEFAULT,
	        .connect_props = o->props.block[CLI_PCMD_CONNECT],
	        .will_props = o->props.block[CLI_PCMD_WILL],
	        .publish_props = o->props.block[CLI_PCMD_PUBLISH],
	        .subscribe_props = o->props.block[CLI_PCMD_SUBSCRIBE],
	        .disconnect_props = o->props.block[CLI_PCMD_DISCONNECT],
	        .receive_max = CLIENT_INFLIGHT_DEFAULT,
	        .cafile = o->cafile,
	        .capath = o->capath,
	        .certfile = o->certfile,
	        .keyfile = o->keyfile,
	        .insecure = o->insecure,
	        .tls_version = o->tls_version,
	};
}

const char *cli_connack_string(uint8_t code)
{
	switch (code) {
	case ST_CONNACK_ACCEPTED:
		return "Connection Accepted.";
	case ST_CONNACK_BAD_PROTOCOL:
		return "Connection Refused: unacceptable protocol version.";
	case ST_CONNACK_ID_REJECTED:
		return "Connection Refused: identifier rejected.";
	case ST_CONNACK_UNAVAILABLE:
		return "Connection Refused: broker unavailable.";
	case ST_CONNACK_BAD_CREDENTIALS:
		return "Connection Refused: bad user name or password.";
	case ST_CONNACK_NOT_AUTHORIZED:
		return "Connection Refused: not authorised.";
	default:
		return "Connection Refused: unknown reason.";
	}
}

void cli_print_refusal(const struct cli_common *o, uint8_t code)
{
	if (o->level != ST_MQTT_5)
		cli_err(o, "Connection error: %s\n", cli_connack_string(code));
	else if (code == ST_RC_UNSUPPORTED_VERSION)
		cli_err(o,
		        "Connection error: %s. Try connecting to an MQTT v5 broker, or use MQTT "
		        "v3.x mode.\n",
		        cli_reason_string(code));
	else
		cli_err(o, "Connection error: %s\n", cli_reason_string(code));
}

int cli_check_version(const struct cli_common *o)
{
	if (o->level == ST_MQTT_5 || o->props.count == 0)
		return 0;
	if (o->will_topic && o->props.block[CLI_PCMD_WILL].len)
		cli_err(o, "Error: Problem setting will.\n");
	else
		cli_err(o, "Unable to connect (This feature is not supported.).\n");
	return ST_ERR_CONFIG;
}

int cli_broker_disconnect(const struct cli_common *o, uint8_t reason, struct st_bytes text)
{
	if (text.len)
		cli_err(o, "Error: The broker disconnected: %s (%.*s).\n",
		        cli_reason_string(reason), (int)text.len, (const char *)text.ptr);
	else
		cli_err(o, "Error: The broker disconnected: %s.\n", cli_reason_string(reason));
	return reason ? reason : 1;
}

int cli_parse_argv(struct cli_common *o, const struct cli_spec *table, size_t n, int argc,
                   char **argv, cli_tool_apply_fn apply, void *tool, void (*usage)(void))
{
	for (int i = 1; i < argc; i++) {
		const struct cli_spec *spec;
		const char *value;
		int rc = cli_match(o, table, n, argc, argv, &i, &spec, &value);

		if (rc == 0 && spec->key == CLI_KEY_PROPERTY)
			rc = cli_props_parse(o, argc, argv, &i);
		else if (rc == 0)
			rc = spec->key >= CLI_KEY_TOOL ? apply(tool, spec->key, value)
			                               : cli_common_apply(o, spec, value);
		if (rc < 0) {
			cli_hint(o);
			return CLI_EXIT_USAGE;
		}
		if (o->help) {
			usage();
			return CLI_EXIT_USAGE;
		}
	}
	return 0;
}

void cli_hint(const struct cli_common *o)
{
	fprintf(stderr, "\nUse '%s --help' to see usage.\n", o->tool);
}

void cli_common_usage(void)
{
	static const char text[] =
	        " -c : disable clean session/enable persistent client mode.\n"
	        "      The broker keeps the session (subscriptions, queued QoS 1/2 messages)\n"
	        "      for this client id; -i is required.\n"
	        " -d : enable debug messages (packets sent and received).\n"
	        " -D : define MQTT v5 properties: -D command identifier value, for the commands\n"
	        "      connect, publish, subscribe, unsubscribe, disconnect and will; e.g.\n"
	        "      -D publish user-property key value. Implies -V 5.\n"
	        " -h : mqtt host to connect to. Defaults to localhost.\n"
	        " -i : id to use for this client. Defaults to the tool name, '-' and the process "
	        "id\n"
	        "      (MQTT v5: none, and the broker assigns one).\n"
	        " -I : define the client id as id_prefix appended with the process id.\n"
	        " -k : keep alive in seconds for this client. Defaults to 60.\n"
	        " -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for "
	        "MQTT over TLS.\n"
	        " -P : provide a password\n"
	        " -q : quality of service level to use. Defaults to 0.\n"
	        " -u : provide a username\n"
	        " -V : specify the version of the MQTT protocol to use when connecting.\n"
	        "      Can be mqttv5 (5), mqttv311 (311) or mqttv31 (31). Defaults to mqttv311.\n"
	        " -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5).\n"
	        "      0-4294967294 seconds, or -1, 4294967295 or \xe2\x88\x9e for a session that "
	        "does\n"
	        "      not expire. Defaults to -1 if -c is also given, or 0 if -c not given.\n"
	        " --help : display this message.\n"
	        " --nodelay : accepted for compatibility; Nagle's algorithm is always off.\n"
	        " --quiet : don't print error messages.\n"
	        " --will-payload : payload for the client Will, which is sent by the broker in "
	        "case of\n"
	        "                  unexpected disconnection. If not given and will-topic is set, a "
	        "zero\n"
	        "                  length message will be sent.\n"
	        " --will-qos : QoS level for the client Will.\n"
	        " --will-retain : if given, make the client Will retained.\n"
	        " --will-topic : the topic on which to publish the client Will.\n"
	        " --cafile : path to a file containing trusted CA certificates to enable "
	        "encrypted\n"
	        "            communication.\n"
	        " --capath : path to a directory containing trusted CA certificates to enable\n"
	        "            encrypted communication (hashed with openssl rehash).\n"
	        " --cert : client certificate for authentication, if required by server.\n"
	        " --key : client private key for authentication, if required by server.\n"
	        " --insecure : do not check that the server certificate hostname matches the "
	        "remote\n"
	        "              hostname. Using this option means that you cannot be sure that "
	        "the\n"
	        "              remote host is the server you wish to connect to.\n"
	        " --tls-version : TLS protocol version, can be one of tlsv1.3 or tlsv1.2 (the "
	        "lowest\n"
	        "                 accepted). Defaults to allowing both.\n";
	fputs(text, stdout);
}

void cli_err(const struct cli_common *o, const char *fmt, ...)
{
	va_list ap;

	if (o->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}
