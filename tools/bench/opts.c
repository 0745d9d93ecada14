/*
 * Command-line parsing for starling-bench (opts.h). Every number is range-checked: a typo is a
 * usage error naming the option, never a silently huge run. Scenario defaults are applied after
 * parsing, only to the counts the user did not give.
 */
#include "opts.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Marks a count the user did not give, replaced by the scenario's default. */
#define UNSET UINT32_MAX

static const char *const scenario_names[] = {"fanout", "fanin", "pairs", "wildcard", "connections"};

static const char usage_text[] =
        "usage: starling-bench SCENARIO [options]\n"
        "scenarios:\n"
        "  fanout       P publishers (1), T topics (1), S subscribers (50) spread over the topics\n"
        "  fanin        P publishers (50) on their own topics, S subscribers (1) on a wildcard\n"
        "  pairs        N publishers (50), each with its own subscriber and topic\n"
        "  wildcard     S subscribers (100) holding -n filters (100000): 60% exact, 30% '+',\n"
        "               10% '#'; P publishers (10) each cycling over T topics (100)\n"
        "  connections  N idle connections (10000) opened at --connect-rate and held\n"
        "options:\n"
        "  -h, --host ADDR          broker address (127.0.0.1)\n"
        "  -p, --port PORT          broker port (1883)\n"
        "  -P, --publishers N       publishing clients\n"
        "  -S, --subscribers N      subscribing clients\n"
        "  -c, --clients N          pairs: pairs; connections: connections\n"
        "  -t, --topics N           fanout: topics; wildcard: topics per publisher\n"
        "  -n, --subscriptions N    wildcard: filters over all subscribers\n"
        "  -q, --qos 0|1|2          QoS of publishes and subscriptions (0)\n"
        "  -s, --payload BYTES      payload size, 16..1048576 (16)\n"
        "  -r, --rate N             total publish rate, messages/s (unlimited)\n"
        "  -R, --rate-per-client N  publish rate per publisher, messages/s\n"
        "  -d, --duration SEC       measurement window; connections: hold time (10)\n"
        "  -w, --warmup SEC         publishing before the window opens (1)\n"
        "      --drain SEC          wait for in-flight messages after the window (2)\n"
        "  -V, --mqtt 311|5         protocol version (311)\n"
        "      --no-nodelay         leave Nagle's algorithm on (TCP_NODELAY is set by default)\n"
        "      --broker-pid PID     report the broker's CPU time per message and RSS\n"
        "      --threads N          io_uring loops (threads), clients spread over them, 1..64 (1)\n"
        "      --inflight N         QoS 1/2 publishes awaiting acks, per publisher (20)\n"
        "      --batch BYTES        most bytes of PUBLISHes per send, per publisher (65536)\n"
        "      --connect-rate N     new connections per second (unlimited)\n"
        "      --connect-parallel N handshakes in progress at once (64)\n"
        "      --setup-timeout SEC  bound on connecting and subscribing (60)\n"
        "      --keepalive SEC      CONNECT keep alive (60)\n"
        "      --tick-us N          wake-up period when rate-limited (1000)\n"
        "      --outstanding N      without a rate: deliveries in flight over all publishers,\n"
        "                           at most (10000; 0: no bound)\n"
        "      --queue-max N        without a rate: deliveries in flight to one subscriber (500)\n"
        "      --lost-after SEC     an outstanding message older than this counts as lost (3)\n"
        "      --coalesce-us N      sleep N us per loop iteration, letting completions gather:\n"
        "                           fewer wake-ups and sends (less CPU on both sides),\n"
        "                           up to 2N us more latency (0)\n"
        "      --share GROUP        fanout, fanin: subscribe as members of shared group GROUP\n"
        "                           ($share/GROUP/FILTER): each message to one member\n"
        "      --persistent         sessions that outlive their connections, so that a broker\n"
        "                           with persistence stores them: 3.1.1 clean session 0, 5.0\n"
        "                           session expiry 3600 s; every client id is first connected\n"
        "                           clean (nothing inherited) and again at the end (nothing\n"
        "                           left behind); not with --tls or --ws\n"
        "      --ext-publishers N   publisher ids 0..N-1 come from an outside source\n"
        "      --id-prefix STR      client identifier prefix (sb<pid>)\n"
        "      --username NAME      user name of every connection (password_file, acl_file)\n"
        "      --password PW        its password\n"
        "      --label STR          copied into the JSON line\n"
        "      --json               print only the JSON line\n"
        "      --tls                connect over TLS (the broker is not verified without\n"
        "                           --cafile or --capath)\n"
        "      --cafile FILE, --capath DIR   CAs that verify the broker (imply --tls)\n"
        "      --cert FILE, --key FILE       client certificate and key\n"
        "      --insecure           do not check that the certificate names --host\n"
        "      --tls-version tlsv1.2|tlsv1.3 lowest TLS version (tlsv1.2)\n"
        "      --ws                 MQTT over WebSockets (a `protocol websockets` listener;\n"
        "                           with --tls: wss), path /mqtt, subprotocol mqtt\n"
        "      --help\n"
        "Exit status: 0 run completed, 1 the run failed (reason on stderr), 2 usage error.\n";

enum {
	OPT_DRAIN = 256,
	OPT_WS,
	OPT_NO_NODELAY,
	OPT_NODELAY,
	OPT_BROKER_PID,
	OPT_THREADS,
	OPT_INFLIGHT,
	OPT_BATCH,
	OPT_CONNECT_RATE,
	OPT_CONNECT_PARALLEL,
	OPT_SETUP_TIMEOUT,
	OPT_KEEPALIVE,
	OPT_TICK,
	OPT_OUTSTANDING,
	OPT_QUEUE_MAX,
	OPT_LOST_AFTER,
	OPT_COALESCE,
	OPT_EXT_PUBLISHERS,
	OPT_ID_PREFIX,
	OPT_USERNAME,
	OPT_PASSWORD,
	OPT_LABEL,
	OPT_SHARE,
	OPT_PERSISTENT,
	OPT_JSON,
	OPT_TLS,
	OPT_CAFILE,
	OPT_CAPATH,
	OPT_CERT,
	OPT_KEY,
	OPT_INSECURE,
	OPT_TLS_VERSION,
	OPT_HELP,
};

static const struct option long_options[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"publishers", required_argument, NULL, 'P'},
        {"subscribers", required_argument, NULL, 'S'},
        {"clients", required_argument, NULL, 'c'},
        {"topics", required_argument, NULL, 't'},
        {"subscriptions", required_argument, NULL, 'n'},
        {"qos", required_argument, NULL, 'q'},
        {"payload", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"rate-per-client", required_argument, NULL, 'R'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"mqtt", required_argument, NULL, 'V'},
        {"no-nodelay", no_argument, NULL, OPT_NO_NODELAY},
        {"nodelay", no_argument, NULL, OPT_NODELAY},
        {"broker-pid", required_argument, NULL, OPT_BROKER_PID},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
        {"connect-parallel", required_argument, NULL, OPT_CONNECT_PARALLEL},
        {"setup-timeout", required_argument, NULL, OPT_SETUP_TIMEOUT},
        {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
        {"tick-us", required_argument, NULL, OPT_TICK},
        {"outstanding", required_argument, NULL, OPT_OUTSTANDING},
        {"queue-max", required_argument, NULL, OPT_QUEUE_MAX},
        {"lost-after", required_argument, NULL, OPT_LOST_AFTER},
        {"coalesce-us", required_argument, NULL, OPT_COALESCE},
        {"ext-publishers", required_argument, NULL, OPT_EXT_PUBLISHERS},
        {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
        {"username", required_argument, NULL, OPT_USERNAME},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"label", required_argument, NULL, OPT_LABEL},
        {"share", required_argument, NULL, OPT_SHARE},
        {"persistent", no_argument, NULL, OPT_PERSISTENT},
        {"json", no_argument, NULL, OPT_JSON},
        {"tls", no_argument, NULL, OPT_TLS},
        {"ws", no_argument, NULL, OPT_WS},
        {"cafile", required_argument, NULL, OPT_CAFILE},
        {"capath", required_argument, NULL, OPT_CAPATH},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"tls-version", required_argument, NULL, OPT_TLS_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

const char *bench_scenario_name(enum bench_scenario s)
{
	return (unsigned)s < sizeof(scenario_names) / sizeof(scenario_names[0]) ? scenario_names[s]
	                                                                        : "?";
}

/* Parses an unsigned integer in [lo, hi]; prints the reason and returns -1 otherwise. */
static int parse_u32(const char *name, const char *arg, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end = NULL;
	unsigned long long v = strtoull(arg, &end, 10);
	if (arg[0] == '\0' || arg[0] == '-' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "starling-bench: --%s: expected an integer in %u..%u, got '%s'\n",
		        name, lo, hi, arg);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Parses a non-negative number (rates, seconds) up to hi. */
static int parse_double(const char *name, const char *arg, double hi, double *out)
{
	char *end = NULL;
	double v = strtod(arg, &end);
	if (arg[0] == '\0' || *end != '\0' || !isfinite(v) || v < 0 || v > hi) {
		fprintf(stderr, "starling-bench: --%s: expected a number in 0..%g, got '%s'\n",
		        name, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *name, const char *arg, uint64_t *ms)
{
	double s;
	if (parse_double(name, arg, 86400.0, &s) != 0)
		return -1;
	*ms = (uint64_t)(s * 1000.0 + 0.5);
	return 0;
}

static void set_defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 1883;
	o->level = 4;
	o->nodelay = true;
	o->payload_bytes = BENCH_PAYLOAD_MIN;
	o->duration_ms = 10000;
	o->warmup_ms = 1000;
	o->drain_ms = 2000;
	o->setup_timeout_ms = 60000;
	o->connect_parallel = 64;
	o->inflight_max = 20;
	o->batch_bytes = 65536;
	o->tick_us = 1000;
	o->outstanding_max = 10000;
	o->queue_max = 500;
	o->lost_after_ms = 3000;
	o->keepalive_s = 60;
	o->threads = 1;
	o->publishers = UNSET;
	o->subscribers = UNSET;
	o->clients = UNSET;
	o->topics = UNSET;
	o->subscriptions = UNSET;
}

static uint32_t or_default(uint32_t v, uint32_t def)
{
	return v == UNSET ? def : v;
}

/* Fills the counts the user left out and rejects the ones that make no sense for the scenario. */
static int apply_scenario(struct bench_opts *o)
{
	static const uint32_t def_pub[] = {1, 50, 0, 10, 0};
	static const uint32_t def_sub[] = {50, 1, 0, 100, 0};
	static const uint32_t def_clients[] = {0, 0, 50, 0, 10000};
	static const uint32_t def_topics[] = {1, 0, 0, 100, 0};
	enum bench_scenario s = o->scenario;
	bool by_clients = s == BENCH_PAIRS || s == BENCH_CONNECTIONS;

	if (by_clients && (o->publishers != UNSET || o->subscribers != UNSET)) {
		fprintf(stderr, "starling-bench: %s takes -c/--clients, not -P/-S\n",
		        bench_scenario_name(s));
		return -1;
	}
	if (!by_clients && o->clients != UNSET) {
		fprintf(stderr, "starling-bench: %s takes -P/-S, not -c/--clients\n",
		        bench_scenario_name(s));
		return -1;
	}
	o->clients = or_default(o->clients, def_clients[s]);
	if (s == BENCH_PAIRS) {
		o->publishers = o->clients;
		o->subscribers = o->clients;
	}
	o->publishers = or_default(o->publishers, def_pub[s]);
	o->subscribers = or_default(o->subscribers, def_sub[s]);
	o->topics = or_default(o->topics, def_topics[s]);
	o->subscriptions = or_default(o->subscriptions, s == BENCH_WILDCARD ? 100000 : 0);
	if (s == BENCH_FANOUT && o->topics == 0) {
		fprintf(stderr, "starling-bench: fanout needs at least one topic\n");
		return -1;
	}
	if (s == BENCH_WILDCARD &&
	    (o->topics == 0 || o->subscribers == 0 || o->subscriptions < o->subscribers)) {
		fprintf(stderr, "starling-bench: wildcard needs topics >= 1, subscribers >= 1 and "
		                "at least one subscription per subscriber\n");
		return -1;
	}
	if (s != BENCH_CONNECTIONS && o->publishers == 0 && o->subscribers == 0) {
		fprintf(stderr, "starling-bench: nothing to run: no publishers, no subscribers\n");
		return -1;
	}
	if (o->ext_publishers > 0 && o->qos != 0) {
		fprintf(stderr, "starling-bench: --ext-publishers is for QoS 0 sources only\n");
		return -1;
	}
	return 0;
}

static int parse_scenario(struct bench_opts *o, const char *name)
{
	for (unsigned i = 0; i < sizeof(scenario_names) / sizeof(scenario_names[0]); i++) {
		if (strcmp(name, scenario_names[i]) == 0) {
			o->scenario = (enum bench_scenario)i;
			return 0;
		}
	}
	fprintf(stderr, "starling-bench: unknown scenario '%s'\n%s", name, usage_text);
	return -1;
}

static int parse_level(struct bench_opts *o, const char *arg)
{
	if (strcmp(arg, "311") == 0 || strcmp(arg, "3.1.1") == 0 || strcmp(arg, "4") == 0) {
		o->level = 4;
		return 0;
	}
	if (strcmp(arg, "5") == 0 || strcmp(arg, "5.0") == 0) {
		o->level = 5;
		return 0;
	}
	fprintf(stderr, "starling-bench: --mqtt: expected 311 or 5, got '%s'\n", arg);
	return -1;
}

/* The TLS options, as mosquitto_pub takes them; any of them turns TLS on. */
static int parse_tls(struct bench_opts *o, int c, const char *arg)
{
	o->tls = true;
	switch (c) {
	case OPT_CAFILE:
		o->cafile = arg;
		break;
	case OPT_CAPATH:
		o->capath = arg;
		break;
	case OPT_CERT:
		o->certfile = arg;
		break;
	case OPT_KEY:
		o->keyfile = arg;
		break;
	case OPT_INSECURE:
		o->insecure = true;
		break;
	case OPT_TLS_VERSION:
		if (strcmp(arg, "tlsv1.3") == 0)
			o->tls_version = 13;
		else if (strcmp(arg, "tlsv1.2") == 0)
			o->tls_version = 12;
		else {
			fprintf(stderr,
			        "starling-bench: --tls-version: expected tlsv1.2 or tlsv1.3\n");
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Applies one tuning option (long only); returns 0, 1 for --help, or -1 on a usage error. */
static int parse_tuning(struct bench_opts *o, int c, const char *arg)
{
	uint32_t v = 0;
	int rc = 0;

	switch (c) {
	case OPT_NO_NODELAY:
		o->nodelay = false;
		break;
	case OPT_NODELAY:
		o->nodelay = true;
		break;
	case OPT_BROKER_PID:
		rc = parse_u32("broker-pid", arg, 1, 0x7fffffff, &v);
		o->broker_pid = (pid_t)v;
		break;
	case OPT_INFLIGHT:
		rc = parse_u32("inflight", arg, 1, 32768, &o->inflight_max);
		break;
	case OPT_BATCH:
		rc = parse_u32("batch", arg, 64, 16u << 20, &o->batch_bytes);
		break;
	case OPT_CONNECT_RATE:
		rc = parse_u32("connect-rate", arg, 0, 10000000, &o->connect_rate);
		break;
	case OPT_CONNECT_PARALLEL:
		rc = parse_u32("connect-parallel", arg, 1, 100000, &o->connect_parallel);
		break;
	case OPT_SETUP_TIMEOUT:
		rc = parse_seconds("setup-timeout", arg, &o->setup_timeout_ms);
		break;
	case OPT_KEEPALIVE:
		rc = parse_u32("keepalive", arg, 0, 65535, &v);
		o->keepalive_s = (uint16_t)v;
		break;
	case OPT_TICK:
		rc = parse_u32("tick-us", arg, 50, 1000000, &o->tick_us);
		break;
	case OPT_OUTSTANDING:
		rc = parse_u32("outstanding", arg, 0, 1u << 30, &o->outstanding_max);
		break;
	case OPT_QUEUE_MAX:
		rc = parse_u32("queue-max", arg, 0, 1u << 30, &o->queue_max);
		break;
	case OPT_LOST_AFTER:
		rc = parse_seconds("lost-after", arg, &o->lost_after_ms);
		break;
	case OPT_COALESCE:
		rc = parse_u32("coalesce-us", arg, 0, 1000000, &o->coalesce_us);
		break;
	case OPT_EXT_PUBLISHERS:
		rc = parse_u32("ext-publishers", arg, 0, 100000, &o->ext_publishers);
		break;
	case OPT_ID_PREFIX:
		o->id_prefix = arg;
		break;
	case OPT_USERNAME:
		o->username = arg;
		break;
	case OPT_PASSWORD:
		o->password = arg;
		break;
	case OPT_LABEL:
		o->label = arg;
		break;
	case OPT_SHARE:
		/* A share name is one topic level, no wildcards [MQTT-4.8.2-2]. */
		if (arg[0] == '\0' || strpbrk(arg, "/+#") != NULL) {
			fprintf(stderr,
			        "starling-bench: --share: a group name, without '/', '+' or "
			        "'#'\n");
			return -1;
		}
		o->share = arg;
		break;
	case OPT_PERSISTENT:
		o->persistent = true;
		break;
	case OPT_JSON:
		o->json_only = true;
		break;
	case OPT_TLS:
	case OPT_CAFILE:
	case OPT_CAPATH:
	case OPT_CERT:
	case OPT_KEY:
	case OPT_INSECURE:
	case OPT_TLS_VERSION:
		rc = parse_tls(o, c, arg);
		break;
	case OPT_WS:
		o->ws = true;
		break;
	case OPT_HELP:
		fputs(usage_text, stdout);
		return 1;
	default:
		fputs(usage_text, stderr);
		return -1;
	}
	return rc;
}

/* Applies one option of the run's shape (the short ones, and --threads); -1 on a usage error. */
static int parse_shape(struct bench_opts *o, int c, const char *arg)
{
	uint32_t v = 0;
	int rc = 0;

	switch (c) {
	case 'h':
		o->host = arg;
		break;
	case 'p':
		rc = parse_u32("port", arg, 1, 65535, &v);
		o->port = (uint16_t)v;
		break;
	case 'P':
		rc = parse_u32("publishers", arg, 0, 100000, &o->publishers);
		break;
	case 'S':
		rc = parse_u32("subscribers", arg, 0, 100000, &o->subscribers);
		break;
	case 'c':
		rc = parse_u32("clients", arg, 1, 1000000, &o->clients);
		break;
	case 't':
		rc = parse_u32("topics", arg, 1, 1000000, &o->topics);
		break;
	case 'n':
		rc = parse_u32("subscriptions", arg, 1, 10000000, &o->subscriptions);
		break;
	case 'q':
		rc = parse_u32("qos", arg, 0, 2, &v);
		o->qos = (uint8_t)v;
		break;
	case 's':
		rc = parse_u32("payload", arg, BENCH_PAYLOAD_MIN, BENCH_PAYLOAD_MAX,
		               &o->payload_bytes);
		break;
	case 'r':
		rc = parse_double("rate", arg, 1e9, &o->rate_total);
		break;
	case 'R':
		rc = parse_double("rate-per-client", arg, 1e9, &o->rate_per_client);
		break;
	case 'd':
		rc = parse_seconds("duration", arg, &o->duration_ms);
		break;
	case 'w':
		rc = parse_seconds("warmup", arg, &o->warmup_ms);
		break;
	case OPT_DRAIN:
		rc = parse_seconds("drain", arg, &o->drain_ms);
		break;
	case 'V':
		rc = parse_level(o, arg);
		break;
	case OPT_THREADS:
		rc = parse_u32("threads", arg, 1, BENCH_THREADS_MAX, &o->threads);
		break;
	default:
		return parse_tuning(o, c, arg);
	}
	return rc;
}

int bench_opts_parse(struct bench_opts *o, int argc, char **argv)
{
	set_defaults(o);
	if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, stdout);
		return 1;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage_text, stderr);
		return -1;
	}
	if (parse_scenario(o, argv[1]) != 0)
		return -1;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "h:p:P:S:c:t:n:q:s:r:R:d:w:V:", long_options, NULL)) !=
	       -1) {
		int rc = parse_shape(o, c, optarg);
		if (rc != 0)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "starling-bench: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->certfile != !o->keyfile) {
		fprintf(stderr, "starling-bench: --cert and --key go together\n");
		return -1;
	}
	if (o->rate_total > 0 && o->rate_per_client > 0) {
		fprintf(stderr, "starling-bench: give --rate or --rate-per-client, not both\n");
		return -1;
	}
	if (o->persistent && (o->tls || o->ws)) {
		/* The clean connects before and after the run are plain blocking sockets. */
		fprintf(stderr, "starling-bench: --persistent does not go with TLS or --ws yet\n");
		return -1;
	}
	if (o->share != NULL && o->scenario != BENCH_FANOUT && o->scenario != BENCH_FANIN) {
		fprintf(stderr, "starling-bench: --share goes with fanout or fanin\n");
		return -1;
	}
	return apply_scenario(o);
}

uint64_t bench_opts_budget_ms(const struct bench_opts *o)
{
	/* Setup, warm-up, window, drain, then up to 3 s to disconnect everyone. */
	uint64_t ms = o->setup_timeout_ms + o->warmup_ms + o->duration_ms + o->drain_ms + 3000;
	/* --persistent: the clean connects before and after, each bounded (session.c). */
	if (o->persistent)
		ms += 2 * BENCH_CLEAN_BUDGET_MS;
	return ms;
}
