/*
 * starling-sub: subscribe from the command line and print what arrives, Mosquitto's
 * mosquitto_sub with the same flags, output and exit codes.
 *
 * All -t filters go in one SUBSCRIBE at the -q QoS. Each message is printed as its payload
 * (or "topic payload" with -v) followed by a newline (none with -N), except those that -R
 * (retained, i.e. stale), -T (filtered out) or --retained-only (the first fresh message
 * ends the run) hold back. The run ends after -C printed messages, right after the SUBACK
 * with -E, after -W seconds (exit 27, "Timed out"), or on SIGINT/SIGTERM, with a clean
 * DISCONNECT so the broker discards the will; only an unclean end (a crash, SIGKILL, a lost
 * connection) publishes it.
 *
 * Signals arrive through a signalfd watched next to the socket, so no handler and no global
 * flag is needed.
 *
 * MQTT 5 (-V 5 or any -D) as mosquitto_sub: -D subscribe properties go with the SUBSCRIBE;
 * -R also asks the broker not to send retained messages (Retain Handling 2) and
 * --retain-as-published keeps their flag; the Receive Maximum announced is 20, or -C when
 * smaller; SIGINT, SIGTERM and -W end with DISCONNECT reason 0x04, so the broker publishes
 * the will, as mosquitto_sub does. A DISCONNECT from the broker ends the run with its reason
 * code as the exit status.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "starling/error.h"
#include "starling/props.h"
#include "starling/topic.h"
#include "starling/utf8.h"
#include "cli.h"
#include "client.h"

/* mosquitto_sub's exit status when -W expires. */
#define SUB_EXIT_TIMEOUT 27
#define SUB_LINGER_MS    2000
#define SUB_FINISH_MS    1000

enum sub_key {
	SUB_KEY_TOPIC = CLI_KEY_TOOL,
	SUB_KEY_COUNT,
	SUB_KEY_VERBOSE,
	SUB_KEY_NO_RETAINED,
	SUB_KEY_EXIT_AFTER_SUB,
	SUB_KEY_TIMEOUT,
	SUB_KEY_NO_EOL,
	SUB_KEY_FILTER_OUT,
	SUB_KEY_RETAINED_ONLY,
	SUB_KEY_RETAIN_AS_PUBLISHED,
};

static const struct cli_spec sub_specs[] = {
        {"-t", "--topic", "topic", CLI_SUB, SUB_KEY_TOPIC},
        {"-C", NULL, "count", CLI_SUB, SUB_KEY_COUNT},
        {"-v", "--verbose", NULL, CLI_SUB, SUB_KEY_VERBOSE},
        {"-R", NULL, NULL, CLI_SUB, SUB_KEY_NO_RETAINED},
        {"-E", NULL, NULL, CLI_SUB, SUB_KEY_EXIT_AFTER_SUB},
        {"-W", NULL, "timeout", CLI_SUB, SUB_KEY_TIMEOUT},
        {"-N", NULL, NULL, CLI_SUB, SUB_KEY_NO_EOL},
        {"-T", "--filter-out", "topic filter", CLI_SUB, SUB_KEY_FILTER_OUT},
        {"--retained-only", NULL, NULL, CLI_SUB, SUB_KEY_RETAINED_ONLY},
        {"--retain-as-published", NULL, NULL, CLI_SUB, SUB_KEY_RETAIN_AS_PUBLISHED},
};

struct sub_opts {
	struct cli_common common; /* connection, identity, will, -q, -d */
	const char **filters;     /* -t values, borrowed from argv; room for argc entries */
	size_t nfilters;          /* -t count */
	const char **filter_outs; /* -T values; room for argc entries */
	size_t nfilter_outs;      /* -T count */
	long count;               /* -C: exit after this many printed messages, 0 = never */
	long timeout_s;           /* -W: exit 27 after this many seconds, 0 = never */
	bool verbose;             /* -v: print the topic before the payload */
	bool eol;                 /* false with -N */
	bool no_retained;         /* -R: skip messages with the retain flag */
	bool retained_only;       /* --retained-only: stop at the first fresh message */
	bool exit_after_sub;      /* -E */
	bool retain_as_published; /* --retain-as-published (MQTT 5 subscription option) */
};

/* How a run ended, for the exit status. */
enum sub_end {
	SUB_END_DONE = 0, /* count reached, -E, --retained-only, a signal */
	SUB_END_TIMEOUT,  /* -W expired */
	SUB_END_DENIED,   /* every filter refused */
	SUB_END_SIGNAL,   /* SIGINT or SIGTERM */
	SUB_END_BROKER,   /* the broker sent DISCONNECT (MQTT 5) */
};

static void usage(void)
{
	printf("starling-sub is a simple mqtt client that will subscribe to a set of topics and "
	       "print all messages it receives.\n\n"
	       "Usage: starling-sub {[-h host] [-p port] [-u username] [-P password] -t topic}\n"
	       "                    [-c] [-k keepalive] [-q qos]\n"
	       "                    [-C msg_count] [-E] [-R] [--retained-only] [-T filter_out]\n"
	       "                    [-W timeout_secs] [-i id] [-I id_prefix] [-d] [-N] [--quiet] "
	       "[-v]\n"
	       "                    [-V protocol-version] [-x session-expiry] "
	       "[--retain-as-published]\n"
	       "                    [-D command identifier value]\n"
	       "                    [--will-topic [--will-payload payload] [--will-qos qos] "
	       "[--will-retain]]\n"
	       "       starling-sub --help\n\n");
	cli_common_usage();
	printf(" -C : disconnect and exit after receiving the 'msg_count' messages.\n"
	       " -E : Exit once all subscriptions have been acknowledged by the broker.\n"
	       " -N : do not add an end of line character when printing the payload.\n"
	       " -R : do not print stale messages (those with retain set); with MQTT v5 the\n"
	       "      broker is also asked not to send them.\n"
	       " -t : mqtt topic to subscribe to. May be repeated multiple times.\n"
	       " -T : topic string to filter out of results. May be repeated.\n"
	       " -v : print published messages verbosely.\n"
	       " -W : Specifies a timeout in seconds how long to process incoming MQTT messages.\n"
	       " --retain-as-published : (MQTT v5) keep the retain flag of messages as published.\n"
	       " --retained-only : only handle messages with the retained flag set, and exit when "
	       "the\n"
	       "                   first non-retained message is received.\n");
}

/* Validates a -t or -T filter: UTF-8 and wildcard placement. */
static int check_filter(const char *f, const char *opt, const char *kind)
{
	size_t len = strlen(f);

	if (st_utf8_check((const uint8_t *)f, len) != ST_OK) {
		fprintf(stderr, "Error: Malformed UTF-8 in %s argument.\n\n", opt);
		return ST_ERR_CONFIG;
	}
	if (!st_topic_filter_is_valid((const uint8_t *)f, len)) {
		fprintf(stderr,
		        "Error: Invalid %s topic '%s', are all '+' and '#' wildcards correct?\n",
		        kind, f);
		return ST_ERR_CONFIG;
	}
	return 0;
}

static int sub_apply_value(struct sub_opts *o, uint8_t key, const char *v)
{
	switch (key) {
	case SUB_KEY_TOPIC:
		if (check_filter(v, "-t", "subscription") < 0)
			return ST_ERR_CONFIG;
		o->filters[o->nfilters++] = v;
		return 0;
	case SUB_KEY_FILTER_OUT:
		if (check_filter(v, "-T", "filter") < 0)
			return ST_ERR_CONFIG;
		o->filter_outs[o->nfilter_outs++] = v;
		return 0;
	case SUB_KEY_COUNT:
		if (!cli_parse_long(v, 1, 2147483647L, &o->count)) {
			fprintf(stderr, "Error: Invalid message count \"%s\".\n\n", v);
			return ST_ERR_CONFIG;
		}
		return 0;
	default: /* SUB_KEY_TIMEOUT */
		if (!cli_parse_long(v, 1, 2147483L, &o->timeout_s)) {
			fprintf(stderr, "Error: Invalid timeout \"%s\".\n\n", v);
			return ST_ERR_CONFIG;
		}
		return 0;
	}
}

static int sub_apply(struct sub_opts *o, uint8_t key, const char *v)
{
	switch (key) {
	case SUB_KEY_VERBOSE:
		o->verbose = true;
		return 0;
	case SUB_KEY_NO_RETAINED:
		o->no_retained = true;
		return 0;
	case SUB_KEY_EXIT_AFTER_SUB:
		o->exit_after_sub = true;
		return 0;
	case SUB_KEY_NO_EOL:
		o->eol = false;
		return 0;
	case SUB_KEY_RETAINED_ONLY:
		o->retained_only = true;
		return 0;
	case SUB_KEY_RETAIN_AS_PUBLISHED:
		o->retain_as_published = true;
		return 0;
	default:
		return sub_apply_value(o, key, v);
	}
}

/* Checks what needs all options at once. Returns 0 or the exit status. */
static int finish_args(struct sub_opts *o)
{
	if (o->nfilters == 0) {
		fprintf(stderr, "Error: You must specify a topic to subscribe to.\n");
		cli_hint(&o->common);
		return CLI_EXIT_USAGE;
	}
	if (cli_common_finish(&o->common) < 0) {
		cli_hint(&o->common);
		return CLI_EXIT_USAGE;
	}
	if (o->no_retained && o->retained_only) {
		fprintf(stderr, "\nError: Combining '-R' and '--retained-only' makes no sense.\n");
		return CLI_EXIT_USAGE;
	}
	return cli_check_version(&o->common) < 0 ? 1 : 0;
}

/* Parses argv. Returns 0 to go on, or the exit status (after printing why or --help). */
static int sub_apply_cb(void *tool, uint8_t key, const char *v)
{
	return sub_apply(tool, key, v);
}

static int parse_args(struct sub_opts *o, int argc, char **argv)
{
	int rc;

	if (cli_common_init(&o->common, "starling-sub", CLI_SUB, argc) < 0) {
		fprintf(stderr, "Error: Out of memory.\n");
		return 1;
	}
	o->eol = true;
	/* Each -t or -T takes an argv entry, so argc entries are always enough. */
	o->filters = calloc((size_t)argc, sizeof(*o->filters));
	o->filter_outs = calloc((size_t)argc, sizeof(*o->filter_outs));
	if (!o->filters || !o->filter_outs) {
		fprintf(stderr, "Error: Out of memory.\n");
		return 1;
	}
	rc = cli_parse_argv(&o->common, sub_specs, sizeof(sub_specs) / sizeof(sub_specs[0]), argc,
	                    argv, sub_apply_cb, o, usage);
	return rc ? rc : finish_args(o);
}

/* --- running ------------------------------------------------------------------------- */

/* Blocks SIGINT and SIGTERM and returns a signalfd that reports them, or -1. */
static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void print_message(const struct sub_opts *o, const struct st_publish *m)
{
	/* As mosquitto_sub: an empty payload prints "topic (null)" with -v, nothing without. */
	if (o->verbose) {
		if (m->payload.len == 0) {
			if (o->eol)
				printf("%.*s (null)\n", (int)m->topic.len,
				       (const char *)m->topic.ptr);
		} else {
			fwrite(m->topic.ptr, 1, m->topic.len, stdout);
			putchar(' ');
			fwrite(m->payload.ptr, 1, m->payload.len, stdout);
			if (o->eol)
				putchar('\n');
		}
	} else if (m->payload.len > 0) {
		fwrite(m->payload.ptr, 1, m->payload.len, stdout);
		if (o->eol)
			putchar('\n');
	}
	fflush(stdout);
}

static bool filtered_out(const struct sub_opts *o, const struct st_publish *m)
{
	for (size_t k = 0; k < o->nfilter_outs; k++) {
		const char *f = o->filter_outs[k];

		if (st_topic_matches((const uint8_t *)f, strlen(f), m->topic.ptr, m->topic.len))
			return true;
	}
	return false;
}

/* Handles one message. Returns true when the run is over. */
static bool on_message(const struct sub_opts *o, const struct st_publish *m, long *printed)
{
	if (o->retained_only && !m->retain)
		return true; /* the first fresh message ends a --retained-only run */
	/* The broker sets retain only on messages sent because of a new subscription, i.e.
	 * stored ones [MQTT-3.3.1-8] [MQTT-3.3.1-9]: those are the stale ones -R skips. */
	if (m->retain && o->no_retained)
		return false;
	if (filtered_out(o, m))
		return false;
	print_message(o, m);
	if (ferror(stdout))
		return true;
	(*printed)++;
	return o->count > 0 && *printed >= o->count;
}

/* Handles the SUBACK. Returns true when the run is over (-E, or every filter refused). */
static bool on_suback(const struct sub_opts *o, const struct client_event *ev, enum sub_end *end)
{
	bool some_granted = false;

	if (o->common.debug)
		printf("Subscribed (mid: %u):", ev->packet_id);
	for (uint32_t k = 0; k < ev->codes.len; k++) {
		if (o->common.debug)
			printf("%s %u", k ? "," : "", ev->codes.ptr[k]);
		some_granted |= ev->codes.ptr[k] < ST_SUBACK_FAILURE;
	}
	if (o->common.debug) {
		putchar('\n');
		fflush(stdout);
	}
	if (!some_granted) {
		cli_err(&o->common, "All subscription requests were denied.\n");
		*end = SUB_END_DENIED;
		return true;
	}
	return o->exit_after_sub;
}

/* Runs the subscription until it ends. Returns ST_OK with *end set, or a negative error. */
static int loop(const struct sub_opts *o, struct client *c, int sig_fd, enum sub_end *end)
{
	int64_t deadline = o->timeout_s ? client_now_ms() + o->timeout_s * 1000 : -1;
	long printed = 0;
	int rc = client_subscribe(c, o->filters, o->nfilters, o->common.qos, NULL);

	*end = SUB_END_DONE;
	while (rc == ST_OK) {
		struct client_event ev;

		rc = client_wait(c, deadline, &sig_fd, 1, &ev);
		if (rc < 0)
			break;
		switch (ev.type) {
		case CLIENT_EV_TIMEOUT:
			*end = SUB_END_TIMEOUT;
			return ST_OK;
		case CLIENT_EV_WATCH: /* SIGINT or SIGTERM */
			*end = SUB_END_SIGNAL;
			return ST_OK;
		case CLIENT_EV_DISCONNECTED:
			cli_broker_disconnect(&o->common, ev.reason, ev.reason_string);
			*end = SUB_END_BROKER;
			return ST_OK;
		case CLIENT_EV_SUBACK:
			if (on_suback(o, &ev, end))
				return ST_OK;
			break;
		case CLIENT_EV_MESSAGE:
			if (on_message(o, &ev.msg, &printed))
				return ST_OK;
			break;
		default:
			break;
		}
	}
	return rc;
}

/*
 * Before a deliberate disconnect: take no more messages, but let the QoS 2 flows already
 * started complete (PUBREL answered by PUBCOMP), for at most SUB_FINISH_MS.
 */
static int finish_flows(struct client *c)
{
	int64_t deadline = client_now_ms() + SUB_FINISH_MS;

	client_refuse_messages(c);
	while (client_incoming_pending(c) > 0) {
		struct client_event ev;
		int rc = client_wait(c, deadline, NULL, 0, &ev);

		if (rc < 0)
			return rc;
		if (ev.type == CLIENT_EV_TIMEOUT)
			break;
	}
	return ST_OK;
}

/* A refused connection: mosquitto_sub's line, a DISCONNECT as it sends one, the code. */
static int refused(const struct sub_opts *o, struct client *c, uint8_t code)
{
	cli_print_refusal(&o->common, code);
	client_disconnect(c, ST_RC_SUCCESS, 0); /* the broker has closed already: no check */
	return code;                            /* mosquitto_sub exits with the CONNACK code */
}

/*
 * The DISCONNECT reason for a deliberate end: mosquitto_sub sends 0x04 (publish the will)
 * when a signal or -W stops it, 0 otherwise; MQTT 3.x has no reason code.
 */
static uint8_t end_reason(enum sub_end end)
{
	return end == SUB_END_SIGNAL || end == SUB_END_TIMEOUT ? ST_RC_DISCONNECT_WITH_WILL
	                                                       : ST_RC_SUCCESS;
}

static int run(const struct sub_opts *o, struct client *c, int sig_fd)
{
	uint8_t code = 0;
	bool session_present = false;
	enum sub_end end = SUB_END_DONE;
	int rc = client_connect(c, &code, &session_present);

	if (rc == ST_OK && code != 0)
		return refused(o, c, code);
	if (rc == ST_OK)
		rc = loop(o, c, sig_fd, &end);
	if (rc == ST_OK && end == SUB_END_BROKER) /* reported in loop() */
		return client_broker_reason(c) ? client_broker_reason(c) : 1;
	if (rc == ST_OK)
		rc = finish_flows(c);
	if (rc == ST_OK)
		rc = client_disconnect(c, end_reason(end), SUB_LINGER_MS);
	if (rc < 0) {
		cli_err(&o->common, "Error: %s\n", client_error(c, rc));
		return 1;
	}
	if (end == SUB_END_TIMEOUT) {
		cli_err(&o->common, "Timed out\n");
		return SUB_EXIT_TIMEOUT;
	}
	return end == SUB_END_DENIED ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sub_opts o = {0};
	struct client *c = NULL;
	struct client_config cfg;
	int sig_fd = -1;
	int status = parse_args(&o, argc, argv);

	if (status != 0)
		goto out;
	sig_fd = signal_fd();
	if (sig_fd < 0) {
		perror("Error: signalfd");
		status = 1;
		goto out;
	}
	cli_client_config(&o.common, &cfg);
	/* Announce no more than -C in flight, so no more arrive than will be taken. */
	if (o.count > 0 && o.count < cfg.receive_max)
		cfg.receive_max = (uint16_t)o.count;
	if (o.no_retained)
		cfg.sub_options |= 2u << ST_SUBOPT_RETAIN_HANDLING_SHIFT; /* [MQTT-3.3.1-11] */
	if (o.retain_as_published)
		cfg.sub_options |= ST_SUBOPT_RETAIN_AS_PUB; /* [MQTT-3.3.1-13] */
	if (client_new(&c, &cfg) < 0) {
		fprintf(stderr, "Error: Out of memory.\n");
		status = 1;
		goto out;
	}
	status = run(&o, c, sig_fd);
out:
	client_free(c);
	if (sig_fd >= 0)
		close(sig_fd);
	free(o.filters);
	free(o.filter_outs);
	cli_common_free(&o.common);
	return status;
}
