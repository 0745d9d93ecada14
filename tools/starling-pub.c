/*
 * starling-pub: publish messages from the command line, Mosquitto's mosquitto_pub with the
 * same flags, messages and exit codes.
 *
 * The message comes from exactly one of -m (argument), -f (file), -s (all of stdin), -n
 * (empty) or -l (stdin, one message per line, sent as the lines arrive). The tool connects,
 * publishes, waits until every QoS 1/2 message has completed its flow (QoS 0 messages are
 * done once written), sends DISCONNECT and exits 0. A refused connection exits with the
 * CONNACK return code (MQTT 5: reason code), a DISCONNECT from the broker with its reason
 * code, a bad command line with 1, any other failure with 1. With -V 5 (or any -D), -D
 * publish properties go with every message; an MQTT 5 acknowledgement that refuses a message
 * (reason 0x80 or more) is a warning, as in mosquitto_pub, not a failure.
 *
 * Memory: one message (or one line) at a time, plus at most -M messages' worth of protocol
 * state; stdin in -l mode is read in chunks and never held whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starling/error.h"
#include "starling/props.h"
#include "starling/topic.h"
#include "starling/utf8.h"
#include "cli.h"
#include "client.h"

enum pub_mode {
	PUB_NONE = 0,
	PUB_MESSAGE,    /* -m */
	PUB_FILE,       /* -f */
	PUB_STDIN_LINE, /* -l */
	PUB_NULL,       /* -n */
	PUB_STDIN_FILE, /* -s */
};

enum pub_key {
	PUB_KEY_TOPIC = CLI_KEY_TOOL,
	PUB_KEY_MESSAGE,
	PUB_KEY_FILE,
	PUB_KEY_LINES,
	PUB_KEY_NULL,
	PUB_KEY_STDIN,
	PUB_KEY_RETAIN,
	PUB_KEY_REPEAT,
	PUB_KEY_REPEAT_DELAY,
	PUB_KEY_INFLIGHT,
};

static const struct cli_spec pub_specs[] = {
        {"-t", "--topic", "topic", CLI_PUB, PUB_KEY_TOPIC},
        {"-m", "--message", "message", CLI_PUB, PUB_KEY_MESSAGE},
        {"-f", "--file", "file", CLI_PUB, PUB_KEY_FILE},
        {"-l", "--stdin-line", NULL, CLI_PUB, PUB_KEY_LINES},
        {"-n", "--null-message", NULL, CLI_PUB, PUB_KEY_NULL},
        {"-s", "--stdin-file", NULL, CLI_PUB, PUB_KEY_STDIN},
        {"-r", "--retain", NULL, CLI_PUB, PUB_KEY_RETAIN},
        {"--repeat", NULL, "count", CLI_PUB, PUB_KEY_REPEAT},
        {"--repeat-delay", NULL, "time", CLI_PUB, PUB_KEY_REPEAT_DELAY},
        {"-M", NULL, "max_inflight", CLI_PUB, PUB_KEY_INFLIGHT},
};

/* Largest payload a PUBLISH can frame after a fixed header, topic and packet id. */
#define PUB_PAYLOAD_MAX (ST_REMLEN_MAX - 2u - UINT16_MAX - 2u)
/* How long DISCONNECT waits for the broker to close its side. */
#define PUB_LINGER_MS  2000
#define PUB_READ_CHUNK 65536u

struct pub_opts {
	struct cli_common common; /* connection, identity, will, -q, -d */
	const char *topic;        /* -t */
	enum pub_mode mode;       /* where the message comes from */
	const char *message;      /* -m */
	const char *file;         /* -f */
	bool retain;              /* -r */
	long repeat;              /* --repeat: times to publish a single message, >= 1 */
	long repeat_delay_ms;     /* --repeat-delay: pause after each completed publish */
	uint32_t inflight_max;    /* -M */
};

/* A growable byte buffer for the message or the pending part of stdin. */
struct pub_buf {
	uint8_t *data; /* bytes, NULL while empty */
	size_t len;    /* bytes in use */
	size_t cap;    /* bytes allocated */
};

static void usage(void)
{
	printf("starling-pub is a simple mqtt client that will publish a message on a single "
	       "topic and exit.\n\n"
	       "Usage: starling-pub {[-h host] [-p port] [-u username] [-P password] -t topic}\n"
	       "                    {-f file | -l | -n | -m message | -s}\n"
	       "                    [-c] [-k keepalive] [-q qos] [-r] [--repeat N] "
	       "[--repeat-delay time]\n"
	       "                    [-i id] [-I id_prefix] [-d] [--quiet] [-M max_inflight]\n"
	       "                    [-V protocol-version] [-x session-expiry]\n"
	       "                    [-D command identifier value]\n"
	       "                    [--will-topic [--will-payload payload] [--will-qos qos] "
	       "[--will-retain]]\n"
	       "       starling-pub --help\n\n");
	cli_common_usage();
	printf(" -f : send the contents of a file as the message.\n"
	       " -l : read messages from stdin, sending a separate message for each line.\n"
	       " -m : message payload to send.\n"
	       " -M : the maximum inflight messages for QoS 1/2. Defaults to 20.\n"
	       " -n : send a null (zero length) message.\n"
	       " -r : message should be retained.\n"
	       " -s : read message from stdin, sending the entire input as a message.\n"
	       " -t : mqtt topic to publish to.\n"
	       " --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.\n"
	       " --repeat-delay : if using --repeat, wait time seconds between publishes. "
	       "Defaults to 0.\n");
}

static int set_mode(struct pub_opts *o, enum pub_mode mode)
{
	if (o->mode != PUB_NONE) {
		fprintf(stderr, "Error: Only one type of message can be sent at once.\n\n");
		return ST_ERR_CONFIG;
	}
	o->mode = mode;
	return 0;
}

static int set_topic(struct pub_opts *o, const char *t)
{
	size_t len = strlen(t);

	if (st_utf8_check((const uint8_t *)t, len) != ST_OK) {
		fprintf(stderr, "Error: Malformed UTF-8 in -t argument.\n\n");
		return ST_ERR_CONFIG;
	}
	if (!st_topic_name_is_valid((const uint8_t *)t, len)) {
		fprintf(stderr, "Error: Invalid publish topic '%s', does it contain '+' or '#'?\n",
		        t);
		return ST_ERR_CONFIG;
	}
	o->topic = t;
	return 0;
}

static int set_repeat(struct pub_opts *o, uint8_t key, const char *v)
{
	long n;
	char *end = NULL;
	double d;

	if (key == PUB_KEY_REPEAT) {
		if (!cli_parse_long(v, 1, 1000000000L, &n)) {
			fprintf(stderr, "Error: --repeat argument must be >0.\n\n");
			return ST_ERR_CONFIG;
		}
		o->repeat = n;
		return 0;
	}
	d = strtod(v, &end);
	if (end == v || *end != '\0' || !(d >= 0.0) || d > 86400.0) {
		fprintf(stderr, "Error: --repeat-delay argument must be >=0.0.\n\n");
		return ST_ERR_CONFIG;
	}
	o->repeat_delay_ms = (long)(d * 1000.0);
	return 0;
}

static int pub_apply(struct pub_opts *o, uint8_t key, const char *v)
{
	long n;

	switch (key) {
	case PUB_KEY_TOPIC:
		return set_topic(o, v);
	case PUB_KEY_MESSAGE:
		o->message = v;
		return set_mode(o, PUB_MESSAGE);
	case PUB_KEY_FILE:
		o->file = v;
		return set_mode(o, PUB_FILE);
	case PUB_KEY_LINES:
		return set_mode(o, PUB_STDIN_LINE);
	case PUB_KEY_NULL:
		return set_mode(o, PUB_NULL);
	case PUB_KEY_STDIN:
		return set_mode(o, PUB_STDIN_FILE);
	case PUB_KEY_RETAIN:
		o->retain = true;
		return 0;
	case PUB_KEY_INFLIGHT:
		if (!cli_parse_long(v, 1, CLIENT_INFLIGHT_MAX, &n)) {
			fprintf(stderr,
			        "Error: Maximum inflight messages must be greater than 0.\n\n");
			return ST_ERR_CONFIG;
		}
		o->inflight_max = (uint32_t)n;
		return 0;
	default:
		return set_repeat(o, key, v);
	}
}

/* Parses argv. Returns 0 to go on, or the exit status (after printing why or --help). */
static int pub_apply_cb(void *tool, uint8_t key, const char *v)
{
	return pub_apply(tool, key, v);
}

static int parse_args(struct pub_opts *o, int argc, char **argv)
{
	int rc;

	if (cli_common_init(&o->common, "starling-pub", CLI_PUB, argc) < 0) {
		fprintf(stderr, "Error: Out of memory.\n");
		return 1;
	}
	o->repeat = 1;
	o->inflight_max = CLIENT_INFLIGHT_DEFAULT;
	rc = cli_parse_argv(&o->common, pub_specs, sizeof(pub_specs) / sizeof(pub_specs[0]), argc,
	                    argv, pub_apply_cb, o, usage);
	if (rc)
		return rc;
	if (!o->topic || o->mode == PUB_NONE) {
		usage();
		fprintf(stderr, "Error: Both topic and message must be supplied.\n");
		return CLI_EXIT_USAGE;
	}
	if (cli_common_finish(&o->common) < 0) {
		cli_hint(&o->common);
		return CLI_EXIT_USAGE;
	}
	return cli_check_version(&o->common) < 0 ? 1 : 0;
}

/* --- reading the message ---------------------------------------------------------------- */

static int buf_reserve(struct pub_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : PUB_READ_CHUNK;
	uint8_t *p;

	if (b->len + more > PUB_PAYLOAD_MAX + (size_t)PUB_READ_CHUNK)
		return ST_ERR_TOO_LARGE;
	while (cap - b->len < more)
		cap *= 2;
	if (cap == b->cap)
		return ST_OK;
	p = realloc(b->data, cap);
	if (!p)
		return ST_ERR_NOMEM;
	b->data = p;
	b->cap = cap;
	return ST_OK;
}

/* Appends one read(2) from fd. Returns bytes read (0 at end of file) or a negative error. */
static ssize_t buf_read(struct pub_buf *b, int fd)
{
	ssize_t n;
	int rc = buf_reserve(b, PUB_READ_CHUNK);

	if (rc < 0)
		return rc;
	do {
		n = read(fd, b->data + b->len, b->cap - b->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return ST_ERR_SYS;
	b->len += (size_t)n;
	return n;
}

/* Reads all of fd into b. */
static int buf_slurp(struct pub_buf *b, int fd)
{
	for (;;) {
		ssize_t n = buf_read(b, fd);

		if (n == 0)
			break;
		if (n < 0)
			return (int)n;
	}
	return b->len > PUB_PAYLOAD_MAX ? ST_ERR_TOO_LARGE : ST_OK;
}

/* Loads the payload of a single-message mode (-m, -f, -s, -n) into *b. */
static int load_message(const struct pub_opts *o, struct pub_buf *b)
{
	int fd, rc;

	switch (o->mode) {
	case PUB_MESSAGE:
		b->data = (uint8_t *)strdup(o->message);
		if (!b->data)
			return ST_ERR_NOMEM;
		b->len = strlen(o->message);
		return ST_OK;
	case PUB_FILE:
		fd = open(o->file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "Error: Unable to open file \"%s\".\n", o->file);
			fprintf(stderr, "Error loading input file \"%s\".\n", o->file);
			return ST_ERR_SYS;
		}
		rc = buf_slurp(b, fd);
		close(fd);
		if (rc < 0)
			fprintf(stderr, "Error loading input file \"%s\".\n", o->file);
		return rc;
	case PUB_STDIN_FILE:
		rc = buf_slurp(b, STDIN_FILENO);
		if (rc < 0)
			fprintf(stderr, "Error loading input from stdin.\n");
		return rc;
	default: /* PUB_NULL: no payload */
		return ST_OK;
	}
}

/* --- publishing ---------------------------------------------------------------------- */

static void report_failure(const struct pub_opts *o, struct client *c, int rc)
{
	cli_err(&o->common, "Error: %s\n", client_error(c, rc));
}

/*
 * client_wait() for the publishing loops: warns about a message the broker refused (MQTT 5
 * reason 0x80 or more, and its Reason String) as mosquitto_pub does, and turns the broker's
 * DISCONNECT into an error (reported by run()).
 */
static int wait_event(const struct pub_opts *o, struct client *c, int64_t deadline_ms, int *fd,
                      struct client_event *ev)
{
	int rc = client_wait(c, deadline_ms, fd, fd ? 1 : 0, ev);

	if (rc < 0)
		return rc;
	if (ev->type == CLIENT_EV_PUBLISHED && ev->reason >= ST_RC_UNSPECIFIED) {
		cli_err(&o->common, "Warning: Publish %u failed: %s.\n", ev->packet_id,
		        cli_reason_string(ev->reason));
		if (ev->reason_string.len)
			cli_err(&o->common, "%.*s\n", (int)ev->reason_string.len,
			        (const char *)ev->reason_string.ptr);
	}
	if (ev->type == CLIENT_EV_DISCONNECTED) {
		cli_broker_disconnect(&o->common, ev->reason, ev->reason_string);
		return ST_ERR_PROTOCOL;
	}
	return ST_OK;
}

/* Publishes one message, first waiting for a free slot in the inflight window. */
static int publish_one(const struct pub_opts *o, struct client *c, const uint8_t *payload,
                       size_t len)
{
	for (;;) {
		struct client_event ev;
		int rc = client_publish(c, o->topic, payload, len, o->common.qos, o->retain, NULL);

		if (rc != ST_ERR_LIMIT)
			return rc;
		rc = wait_event(o, c, -1, NULL, &ev);
		if (rc < 0)
			return rc;
	}
}

/* Runs the connection until no QoS 1/2 message awaits acknowledgement. */
static int drain(const struct pub_opts *o, struct client *c)
{
	while (client_inflight(c) > 0) {
		struct client_event ev;
		int rc = wait_event(o, c, -1, NULL, &ev);

		if (rc < 0)
			return rc;
	}
	return ST_OK;
}

/* Keeps the connection alive (answering pings) for `ms` milliseconds. */
static int pause_ms(const struct pub_opts *o, struct client *c, long ms)
{
	int64_t deadline = client_now_ms() + ms;
	struct client_event ev;

	do {
		int rc = wait_event(o, c, deadline, NULL, &ev);
		if (rc < 0)
			return rc;
	} while (ev.type != CLIENT_EV_TIMEOUT);
	return ST_OK;
}

/* -m, -f, -s, -n: the same message --repeat times, each one delivered before the next. */
static int publish_single(const struct pub_opts *o, struct client *c, const struct pub_buf *b)
{
	for (long k = 0; k < o->repeat; k++) {
		int rc;

		if (k > 0 && o->repeat_delay_ms > 0) {
			rc = pause_ms(o, c, o->repeat_delay_ms);
			if (rc < 0)
				return rc;
		}
		rc = publish_one(o, c, b->data, b->len);
		if (rc == ST_OK)
			rc = drain(o, c);
		if (rc < 0)
			return rc;
	}
	return ST_OK;
}

/* Publishes every complete line in b (without its '\n') and keeps the partial rest. */
static int publish_lines(const struct pub_opts *o, struct client *c, struct pub_buf *b)
{
	size_t start = 0;
	int rc = ST_OK;

	while (start < b->len) {
		uint8_t *nl = memchr(b->data + start, '\n', b->len - start);
		size_t line_len;

		if (!nl)
			break;
		line_len = (size_t)(nl - (b->data + start));
		rc = publish_one(o, c, b->data + start, line_len);
		if (rc < 0)
			break;
		start += line_len + 1;
	}
	memmove(b->data, b->data + start, b->len - start);
	b->len -= start;
	if (rc == ST_OK && b->len > PUB_PAYLOAD_MAX)
		return ST_ERR_TOO_LARGE;
	return rc;
}

/* -l: lines are published as they arrive; the last one needs no '\n'. */
static int publish_stdin_lines(const struct pub_opts *o, struct client *c)
{
	struct pub_buf b = {0};
	int rc = ST_OK;

	for (;;) {
		int fd = STDIN_FILENO;
		struct client_event ev;
		ssize_t n;

		/* Stop reading stdin while the window is full: acks free it. */
		if (o->common.qos > 0 && client_inflight(c) >= client_inflight_max(c))
			fd = -1;
		rc = wait_event(o, c, -1, &fd, &ev);
		if (rc < 0)
			break;
		if (ev.type != CLIENT_EV_WATCH)
			continue; /* an acknowledgement freed a slot */
		n = buf_read(&b, STDIN_FILENO);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0) {
			if (b.len > 0)
				rc = publish_one(o, c, b.data, b.len);
			break;
		}
		rc = publish_lines(o, c, &b);
		if (rc < 0)
			break;
	}
	free(b.data);
	return rc < 0 ? rc : drain(o, c);
}

/* A refused connection: mosquitto_pub's two lines, and the code as the exit status. */
static int refused(const struct pub_opts *o, uint8_t code)
{
	bool v5 = o->common.level == ST_MQTT_5;

	cli_print_refusal(&o->common, code);
	/* libmosquitto's words for what its loop returns: "refused" for the 3.x codes (and
	 * MQTT 5 codes 1 to 5), a protocol error for any other MQTT 5 reason. */
	if (!v5 || (code >= 1 && code <= 5))
		cli_err(&o->common, "Error: The connection was refused.\n");
	else
		cli_err(&o->common, "Error: A network protocol error occurred when communicating "
		                    "with the broker.\n");
	return code;
}

static int run(const struct pub_opts *o, struct client *c, const struct pub_buf *b)
{
	uint8_t code = 0;
	bool session_present = false;
	int rc = client_connect(c, &code, &session_present);

	if (rc < 0) {
		report_failure(o, c, rc);
		return 1;
	}
	if (code != 0)
		return refused(o, code);
	rc = o->mode == PUB_STDIN_LINE ? publish_stdin_lines(o, c) : publish_single(o, c, b);
	if (rc == ST_ERR_QOS_UNSUPPORTED || rc == ST_ERR_TOO_LARGE) {
		/* Refused before sending, above a limit the broker set in CONNACK: the
		 * connection is fine, so it ends cleanly (the will is dropped) as mosquitto_pub
		 * ends it; unlike mosquitto_pub, the exit status says it failed. */
		report_failure(o, c, rc);
		client_disconnect(c, ST_RC_SUCCESS, PUB_LINGER_MS);
		return 1;
	}
	if (rc == ST_OK)
		rc = client_disconnect(c, ST_RC_SUCCESS, PUB_LINGER_MS);
	if (rc < 0 && client_broker_reason(c) >= 0) /* reported by wait_event() */
		return client_broker_reason(c) ? client_broker_reason(c) : 1;
	if (rc < 0) {
		report_failure(o, c, rc);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pub_opts o = {0};
	struct pub_buf b = {0};
	struct client *c = NULL;
	struct client_config cfg;
	int status = parse_args(&o, argc, argv);

	if (status != 0)
		goto out;
	status = 1;
	if (o.mode != PUB_STDIN_LINE && load_message(&o, &b) < 0)
		goto out;
	cli_client_config(&o.common, &cfg);
	cfg.inflight_max = o.inflight_max;
	if (client_new(&c, &cfg) < 0) {
		fprintf(stderr, "Error: Out of memory.\n");
		goto out;
	}
	status = run(&o, c, &b);
out:
	client_free(c);
	free(b.data);
	cli_common_free(&o.common);
	return status;
}
