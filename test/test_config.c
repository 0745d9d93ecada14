/*
 * Unit tests of config.c: every option with good and bad values, the "FILE:LINE: reason" error
 * form, comments and blanks, the defaults, Mosquitto 2.0's listener and allow_anonymous rules,
 * the command line, and real files through config_load_file(). The expected listener results
 * were checked against mosquitto 2.0.11 itself (see the comment at the top of config.c).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "starling/error.h"
#include "testutil.h"

static char err[512];
static struct tu_guard guard; /* every parsed line ends right before an unreadable page */

/* Parses one line into cfg as line 7 of "t.conf". */
static int parse(struct config *cfg, const char *text)
{
	const char *copy = (const char *)tu_guard_copy(&guard, text, strlen(text) + 1);

	err[0] = '\0';
	return config_parse_line(cfg, copy, "t.conf", 7, err, sizeof(err));
}

/* A fresh default config after one line; the line must parse. */
static struct config after(const char *text)
{
	struct config cfg;

	config_defaults(&cfg);
	CU_ASSERT_EQUAL_FATAL(parse(&cfg, text), ST_OK);
	return cfg;
}

/* The line must fail on a default config, with the file, line and `reason` in the message. */
static void expect_error(const char *text, const char *reason)
{
	struct config cfg;
	int rc;

	config_defaults(&cfg);
	rc = parse(&cfg, text);
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(strncmp(err, "t.conf:7: ", 10), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	if (rc != ST_ERR_CONFIG || strstr(err, reason) == NULL)
		fprintf(stderr, "\n  line [%s]: rc %d, err [%s], wanted [%s]\n", text, rc, err,
		        reason);
}

static void test_defaults(void)
{
	struct config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(cfg.listener_count, 0);
	CU_ASSERT_EQUAL(cfg.default_port, 1883);
	CU_ASSERT_STRING_EQUAL(cfg.bind_address, "");
	CU_ASSERT_FALSE(cfg.default_listener_set);
	CU_ASSERT_EQUAL(cfg.default_opts.max_connections, 0);
	CU_ASSERT_FALSE(cfg.allow_anonymous_set);
	CU_ASSERT_EQUAL(cfg.max_inflight_messages, 65535);
	CU_ASSERT_EQUAL(cfg.receive_maximum, 20); /* Mosquitto's, unless the option is given */
	CU_ASSERT_EQUAL(cfg.max_queued_messages, 1000);
	CU_ASSERT_EQUAL(cfg.message_size_limit, 0);
	CU_ASSERT_EQUAL(cfg.max_packet_size, 0);
	CU_ASSERT_EQUAL(cfg.max_keepalive, 65535);
	CU_ASSERT_TRUE(cfg.retain_available);
	CU_ASSERT_TRUE(cfg.set_tcp_nodelay);
	CU_ASSERT_EQUAL(cfg.max_output_bytes, 4u << 20);
	CU_ASSERT_EQUAL(cfg.max_output_memory, 0);
	CU_ASSERT_EQUAL(cfg.client_send_buffer, 0);
	CU_ASSERT_EQUAL(cfg.max_batch_delay_us, 0);
	CU_ASSERT_EQUAL(cfg.sys_interval_s, 10);
	CU_ASSERT_EQUAL(cfg.log_types,
	                LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFORMATION);
	CU_ASSERT_FALSE(cfg.log_types_set);
	CU_ASSERT_EQUAL(cfg.log_dest_count, 0);
	CU_ASSERT_TRUE(cfg.log_timestamp);
	CU_ASSERT_STRING_EQUAL(cfg.log_timestamp_format, "");
	CU_ASSERT_STRING_EQUAL(cfg.pid_file, "");
	CU_ASSERT_FALSE(cfg.verbose);
	CU_ASSERT_FALSE(cfg.daemonize);
	CU_ASSERT_EQUAL(cfg.cmd_port_count, 0);
	CU_ASSERT_FALSE(cfg.finished);
}

static void test_comments_and_blanks(void)
{
	struct config cfg, ref;
	const char *ignored[] = {
	        "",  "   ", "\t\r\n", "# a comment", "   # indented comment", "#max_connections 5",
	        "\n"};

	config_defaults(&ref);
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		config_defaults(&cfg);
		CU_ASSERT_EQUAL(parse(&cfg, ignored[i]), ST_OK);
		CU_ASSERT_EQUAL(memcmp(&cfg, &ref, sizeof(cfg)), 0);
	}
	cfg = after("  \t max_connections \t  5 \t\r\n");
	CU_ASSERT_EQUAL(cfg.default_opts.max_connections, 5);
	cfg = after("max_connections\t6");
	CU_ASSERT_EQUAL(cfg.default_opts.max_connections, 6);
	/* A '#' after a value is not a comment: Mosquitto only knows whole-line comments. */
	expect_error("max_connections 5 # five", "unexpected extra value \"#\"");
}

static void test_unknown_option(void)
{
	expect_error("bogus_option 1", "unknown option \"bogus_option\"");
	expect_error("include /etc/mosquitto/conf.d", "unknown option \"include\"");
	expect_error("Max_connections 5", "unknown option");
	expect_error("max_connections=5", "unknown option");
}

/* One integer option: its field read back, and values it must take or refuse. */
struct int_case {
	const char *opt;                        /* option name */
	uint32_t (*get)(const struct config *); /* reads the field */
	const char *good[4];                    /* values accepted ... */
	uint32_t want[4];                       /* ... and what they store */
	const char *bad[6];                     /* values refused as out of range */
};

static uint32_t get_maxconn(const struct config *c)
{
	return c->default_opts.max_connections;
}
static uint32_t get_inflight(const struct config *c)
{
	return c->max_inflight_messages;
}
static uint32_t get_receive(const struct config *c)
{
	return c->receive_maximum;
}
static uint32_t get_queued(const struct config *c)
{
	return c->max_queued_messages;
}
static uint32_t get_msgsize(const struct config *c)
{
	return c->message_size_limit;
}
static uint32_t get_pktsize(const struct config *c)
{
	return c->max_packet_size;
}
static uint32_t get_keepalive(const struct config *c)
{
	return c->max_keepalive;
}
static uint32_t get_output(const struct config *c)
{
	return c->max_output_bytes;
}
static uint32_t get_sys(const struct config *c)
{
	return c->sys_interval_s;
}
static uint32_t get_workers(const struct config *c)
{
	return c->worker_threads;
}
static uint32_t get_batch_delay(const struct config *c)
{
	return c->max_batch_delay_us;
}

static const struct int_case int_cases[] = {
        {"max_connections",
         get_maxconn,
         {"-1", "0", "100", "2147483647"},
         {0, 0, 100, 2147483647},
         {"-2", "2147483648", "-9223372036854775808"}},
        {"max_inflight_messages",
         get_inflight,
         {"0", "1", "20", "65535"},
         {65535, 1, 20, 65535},
         {"-1", "65536"}},
        /* The same option sets the Receive Maximum too. */
        {"max_inflight_messages",
         get_receive,
         {"0", "1", "20", "65535"},
         {65535, 1, 20, 65535},
         {"-1", "65536"}},
        {"max_queued_messages",
         get_queued,
         {"0", "1", "5000", "2147483647"},
         {0, 1, 5000, 2147483647},
         {"-1", "-5", "2147483648"}},
        {"message_size_limit",
         get_msgsize,
         {"0", "1", "1024", "268435455"},
         {0, 1, 1024, 268435455},
         {"-1", "268435456"}},
        {"max_packet_size",
         get_pktsize,
         {"20", "21", "1048576", "268435460"},
         {20, 21, 1048576, 268435460},
         {"0", "19", "268435461", "-1"}},
        {"max_keepalive",
         get_keepalive,
         {"10", "11", "60", "65535"},
         {10, 11, 60, 65535},
         {"0", "9", "65536", "-1"}},
        {"max_output_bytes",
         get_output,
         {"1", "65536", "8388608", "4294967295"},
         {1, 65536, 8388608, 4294967295u},
         {"0", "-1", "4294967296"}},
        {"sys_interval", get_sys, {"0", "1", "10", "65535"}, {0, 1, 10, 65535}, {"-1", "65536"}},
        /* 0 is the default: one worker per CPU the process may use. */
        {"worker_threads", get_workers, {"0", "1", "4", "64"}, {0, 1, 4, 64}, {"-1", "65", "1000"}},
        {"max_batch_delay_us",
         get_batch_delay,
         {"0", "100", "1000", "100000"},
         {0, 100, 1000, 100000},
         {"-1", "100001"}},
};

static void test_integer_options(void)
{
	/* Not numbers at all, for every integer option. */
	const char *garbage[] = {"5x", "x5", "+5", "0x10", "1e3", "5.0", "--5", "-", "5-"};
	char line[128], reason[128];

	for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
		const struct int_case *c = &int_cases[i];

		for (int k = 0; k < 4; k++) {
			struct config cfg;

			snprintf(line, sizeof(line), "%s %s", c->opt, c->good[k]);
			cfg = after(line);
			CU_ASSERT_EQUAL(c->get(&cfg), c->want[k]);
		}
		for (int k = 0; k < 6 && c->bad[k] != NULL; k++) {
			snprintf(line, sizeof(line), "%s %s", c->opt, c->bad[k]);
			snprintf(reason, sizeof(reason), "%s: %s is out of range", c->opt,
			         c->bad[k]);
			expect_error(line, reason);
		}
		for (size_t k = 0; k < sizeof(garbage) / sizeof(garbage[0]); k++) {
			snprintf(line, sizeof(line), "%s %s", c->opt, garbage[k]);
			expect_error(line, "is not a decimal integer");
		}
		snprintf(line, sizeof(line), "%s 99999999999999999999999", c->opt);
		expect_error(line, "out of range"); /* overflows 64 bits */
		snprintf(line, sizeof(line), "%s", c->opt);
		expect_error(line, "missing value");
		snprintf(line, sizeof(line), "%s 5 6", c->opt);
		expect_error(line, "unexpected extra value \"6\"");
	}
}

static void test_boolean_options(void)
{
	const char *opts[] = {"allow_anonymous", "retain_available", "set_tcp_nodelay",
	                      "log_timestamp"};
	const char *bad[] = {"TRUE", "False", "yes", "no", "1", "0", "on", "truex"};
	char line[128];

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		for (int v = 0; v < 2; v++) {
			struct config cfg;
			bool got;

			snprintf(line, sizeof(line), "%s %s", opts[i], v ? "true" : "false");
			cfg = after(line);
			got = i == 0   ? cfg.allow_anonymous
			      : i == 1 ? cfg.retain_available
			      : i == 2 ? cfg.set_tcp_nodelay
			               : cfg.log_timestamp;
			CU_ASSERT_EQUAL(got, v == 1);
			if (i == 0)
				CU_ASSERT_TRUE(cfg.allow_anonymous_set);
		}
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			snprintf(line, sizeof(line), "%s %s", opts[i], bad[k]);
			expect_error(line, "expected true or false");
		}
		snprintf(line, sizeof(line), "%s", opts[i]);
		expect_error(line, "missing value");
		snprintf(line, sizeof(line), "%s true false", opts[i]);
		expect_error(line, "unexpected extra value");
	}
}

static void test_listener_option(void)
{
	struct config cfg;
	char line[512];

	cfg = after("listener 1884");
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1884);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "");
	CU_ASSERT_FALSE(cfg.default_listener_set);

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1885 127.0.0.1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 0 localhost"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1885 ::1"), ST_OK);
	CU_ASSERT_EQUAL(cfg.listener_count, 3);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1885);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 0);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[2].bind, "::1");
	/* The same port and address twice would be two sockets fighting for one port. */
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1885 127.0.0.1"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "duplicate listener on port 1885"));
	CU_ASSERT_EQUAL(cfg.listener_count, 3);

	expect_error("listener", "missing port");
	expect_error("listener 70000", "out of range (0..65535)");
	expect_error("listener 65536", "out of range");
	expect_error("listener -1", "out of range");
	expect_error("listener abc", "not a decimal integer");
	expect_error("listener 1884 127.0.0.1 extra", "unexpected extra value \"extra\"");
	expect_error("listener 0 /tmp/mqtt.sock", "Unix socket listeners are not supported");
	memset(line, 0, sizeof(line));
	memcpy(line, "listener 1 ", 11);
	memset(line + 11, 'a', 256);
	expect_error(line, "value longer than 255 bytes");

	config_defaults(&cfg);
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX; i++) {
		snprintf(line, sizeof(line), "listener %u", 2000 + i);
		CU_ASSERT_EQUAL(parse(&cfg, line), ST_OK);
	}
	CU_ASSERT_EQUAL(parse(&cfg, "listener 3000"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than 16 listeners"));
	/* The default listener needs a slot of its own. */
	CU_ASSERT_EQUAL(parse(&cfg, "port 1883"), ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(parse(&cfg, "bind_address 127.0.0.1"), ST_ERR_CONFIG);
	CU_ASSERT_FALSE(cfg.default_listener_set);

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "port 1883"), ST_OK);
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX - 1; i++) {
		snprintf(line, sizeof(line), "listener %u", 2000 + i);
		CU_ASSERT_EQUAL(parse(&cfg, line), ST_OK);
	}
	CU_ASSERT_EQUAL(parse(&cfg, "listener 3000"), ST_ERR_CONFIG);
	config_finish(&cfg);
	CU_ASSERT_EQUAL(cfg.listener_count, CONFIG_LISTENERS_MAX);
}

/* metrics_listener: repeatable, beside the MQTT listeners (it does not end local-only mode). */
static void test_metrics_listener_option(void)
{
	struct config cfg;

	cfg = after("metrics_listener 9100");
	CU_ASSERT_EQUAL(cfg.metrics_count, 1);
	CU_ASSERT_EQUAL(cfg.metrics[0].port, 9100);
	CU_ASSERT_STRING_EQUAL(cfg.metrics[0].bind, "");
	config_finish(&cfg);
	CU_ASSERT_TRUE(cfg.local_only);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 9100 127.0.0.1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 9100 ::1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 0 127.0.0.1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 0 127.0.0.1"), ST_OK);
	CU_ASSERT_EQUAL(cfg.metrics_count, 4);
	CU_ASSERT_STRING_EQUAL(cfg.metrics[1].bind, "::1");
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 9101"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than 4 metrics listeners"));
	CU_ASSERT_EQUAL(cfg.listener_count, 0);

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 9100 127.0.0.1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 9100 127.0.0.1"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(err, "t.conf:7: metrics_listener: duplicate metrics listener"));

	/* An MQTT listener and a metrics listener on one socket: refused at the second line,
	 * whichever comes first; another address or port is fine. */
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1883 127.0.0.1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 1883 127.0.0.1"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "metrics_listener: port 1883 is an MQTT listener's"));
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 1883"), ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 1883 ::1"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "metrics_listener 9100"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 9100 10.0.0.1"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "listener: port 9100 is a metrics_listener's"));
	CU_ASSERT_EQUAL(parse(&cfg, "listener 9101"), ST_OK);
	CU_ASSERT_EQUAL(cfg.metrics_count, 2);

	expect_error("metrics_listener", "missing port");
	expect_error("metrics_listener 70000", "out of range (0..65535)");
	expect_error("metrics_listener x", "not a decimal integer");
	expect_error("metrics_listener 9100 127.0.0.1 extra", "unexpected extra value \"extra\"");
	expect_error("metrics_listener 9100 /run/metrics.sock", "Unix socket listeners");
}

static void test_port_and_bind_address(void)
{
	struct config cfg;

	cfg = after("port 1999");
	CU_ASSERT_EQUAL(cfg.default_port, 1999);
	CU_ASSERT_TRUE(cfg.default_listener_set);
	CU_ASSERT_EQUAL(cfg.listener_count, 0);
	cfg = after("port 0");
	CU_ASSERT_EQUAL(cfg.default_port, 0);
	cfg = after("bind_address 192.0.2.1");
	CU_ASSERT_STRING_EQUAL(cfg.bind_address, "192.0.2.1");
	CU_ASSERT_TRUE(cfg.default_listener_set);
	CU_ASSERT_EQUAL(cfg.default_port, 1883);

	expect_error("port", "missing value");
	expect_error("port 65536", "port: 65536 is out of range (0..65535)");
	expect_error("port 18x", "not a decimal integer");
	expect_error("port 1 2", "unexpected extra value");
	expect_error("bind_address", "missing value");
	expect_error("bind_address a b", "unexpected extra value \"b\"");
}

static void test_log_type(void)
{
	struct config cfg;

	cfg = after("log_type debug");
	CU_ASSERT_EQUAL(cfg.log_types, LOG_T_DEBUG); /* the first line replaces the default */
	CU_ASSERT_TRUE(cfg.log_types_set);

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "log_type error"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_type subscribe"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_type unsubscribe websockets"), ST_OK);
	CU_ASSERT_EQUAL(cfg.log_types,
	                LOG_T_ERROR | LOG_T_SUBSCRIBE | LOG_T_UNSUBSCRIBE | LOG_T_WEBSOCKETS);
	CU_ASSERT_EQUAL(parse(&cfg, "log_type none"), ST_OK);
	CU_ASSERT_EQUAL(cfg.log_types, 0);
	CU_ASSERT_EQUAL(parse(&cfg, "log_type warning"), ST_OK);
	CU_ASSERT_EQUAL(cfg.log_types, LOG_T_WARNING);
	CU_ASSERT_EQUAL(parse(&cfg, "log_type notice information"), ST_OK);
	CU_ASSERT_EQUAL(cfg.log_types, LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFORMATION);

	cfg = after("log_type all");
	CU_ASSERT_EQUAL(cfg.log_types, LOG_T_ALL);
	cfg = after("log_type none");
	CU_ASSERT_EQUAL(cfg.log_types, 0);
	CU_ASSERT_TRUE(cfg.log_types_set);

	expect_error("log_type", "missing value");
	expect_error("log_type errors", "unknown type \"errors\"");
	expect_error("log_type error bogus", "unknown type \"bogus\"");
	expect_error("log_type ERROR", "unknown type");
}

static void test_log_dest(void)
{
	struct config cfg;

	cfg = after("log_dest stdout");
	CU_ASSERT_EQUAL(cfg.log_dest_count, 1);
	CU_ASSERT_EQUAL(cfg.log_dests[0].kind, LOG_DEST_STDOUT);

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest stderr"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest file  /var/log/my logs/starling.log  "), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest syslog"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest topic"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest stdout"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest stderr"), ST_OK); /* merged, as Mosquitto's mask */
	CU_ASSERT_EQUAL(cfg.log_dest_count, 5);
	CU_ASSERT_EQUAL(cfg.log_dests[0].kind, LOG_DEST_STDERR);
	CU_ASSERT_EQUAL(cfg.log_dests[1].kind, LOG_DEST_FILE);
	CU_ASSERT_STRING_EQUAL(cfg.log_dests[1].path, "/var/log/my logs/starling.log");
	CU_ASSERT_EQUAL(cfg.log_dests[2].kind, LOG_DEST_SYSLOG);
	CU_ASSERT_EQUAL(cfg.log_dests[3].kind, LOG_DEST_TOPIC);
	CU_ASSERT_EQUAL(cfg.log_dests[4].kind, LOG_DEST_STDOUT);
	/* Mosquitto: "Only a single file destination may be configured." */
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest file /tmp/other.log"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "t.conf:7: log_dest: only one file destination"));
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest none"), ST_OK);
	CU_ASSERT_EQUAL(cfg.log_dest_count, 1);
	CU_ASSERT_EQUAL(cfg.log_dests[0].kind, LOG_DEST_NONE);
	CU_ASSERT_EQUAL(parse(&cfg, "log_dest syslog"), ST_OK);
	CU_ASSERT_EQUAL(cfg.log_dest_count, 1);
	CU_ASSERT_EQUAL(cfg.log_dests[0].kind, LOG_DEST_SYSLOG);

	expect_error("log_dest", "missing value");
	expect_error("log_dest file", "file: missing path");
	expect_error("log_dest file   ", "file: missing path");
	expect_error("log_dest stderr now", "unexpected extra value \"now\"");
	expect_error("log_dest dlt", "log_dest dlt: the automotive Diagnostic Log and Trace daemon "
	                             "is not supported: use syslog");
	expect_error("log_dest STDERR", "unknown destination");
}

static void test_paths_and_strings(void)
{
	struct config cfg;
	char line[PATH_MAX + 64];

	cfg = after("pid_file /run/starling/starling.pid");
	CU_ASSERT_STRING_EQUAL(cfg.pid_file, "/run/starling/starling.pid");
	cfg = after("pid_file   /tmp/with space.pid  ");
	CU_ASSERT_STRING_EQUAL(cfg.pid_file, "/tmp/with space.pid");
	cfg = after("log_timestamp_format %Y-%m-%dT%H:%M:%S");
	CU_ASSERT_STRING_EQUAL(cfg.log_timestamp_format, "%Y-%m-%dT%H:%M:%S");
	cfg = after("log_timestamp_format %Y-%m-%d %H:%M:%S");
	CU_ASSERT_STRING_EQUAL(cfg.log_timestamp_format, "%Y-%m-%d %H:%M:%S");

	expect_error("pid_file", "pid_file: missing value");
	expect_error("log_timestamp_format", "missing value");
	memset(line, 0, sizeof(line));
	memcpy(line, "pid_file /", 10);
	memset(line + 10, 'p', PATH_MAX);
	expect_error(line, "value longer than");
	memset(line, 0, sizeof(line));
	memcpy(line, "log_timestamp_format ", 21);
	memset(line + 21, '%', 64);
	expect_error(line, "value longer than 63 bytes");
}

/* `user`: one existing user name; a name no user has is an error naming file and line. */
static void test_user_option(void)
{
	struct config cfg;
	char line[CONFIG_USER_MAX + 16];

	config_defaults(&cfg);
	CU_ASSERT_STRING_EQUAL(cfg.user, "");
	cfg = after("user root");
	CU_ASSERT_STRING_EQUAL(cfg.user, "root");
	cfg = after("user   nobody  ");
	CU_ASSERT_STRING_EQUAL(cfg.user, "nobody");
	expect_error("user", "user: missing value");
	expect_error("user no-such-user-starling-test", "user: no such user \"no-such-user-");
	expect_error("user root nobody", "unexpected extra value \"nobody\"");
	memset(line, 0, sizeof(line));
	memcpy(line, "user ", 5);
	memset(line + 5, 'u', CONFIG_USER_MAX);
	expect_error(line, "value longer than 255 bytes");
}

/*
 * The default configuration installed as /etc/starling/starling.conf (tools/dist/) shows each
 * option as "#name default": every such line, uncommented, must parse; one without a value must
 * name a known option; the active lines must parse too (a bridge option in a `connection`
 * block). `user` is left out: whether its user exists depends on the machine.
 */
static void test_default_config_file(void)
{
	FILE *f = fopen("tools/dist/starling.conf", "r");
	char line[1024];
	unsigned lineno = 0, checked = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof(line), f)) {
		char *text = line[0] == '#' ? line + 1 : line;
		struct config cfg;
		int rc;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0' || (line[0] == '#' && (line[1] < 'a' || line[1] > 'z')) ||
		    strncmp(text, "user ", 5) == 0)
			continue;
		config_defaults(&cfg);
		rc = config_parse_line(&cfg, text, "starling.conf", lineno, err, sizeof(err));
		if (rc != ST_OK && strstr(err, "outside a connection block") != NULL) {
			/* A bridge option: it is read in a `connection` block. */
			config_defaults(&cfg);
			CU_ASSERT_EQUAL(config_parse_line(&cfg, "connection dist", "starling.conf",
			                                  1, err, sizeof(err)),
			                ST_OK);
			rc = config_parse_line(&cfg, text, "starling.conf", lineno, err,
			                       sizeof(err));
		}
		config_bridges_free(&cfg);
		if (strchr(text, ' ')) {
			CU_ASSERT_EQUAL(rc, ST_OK);
		} else {
			CU_ASSERT_PTR_NULL(strstr(err, "unknown option"));
		}
		if ((strchr(text, ' ') && rc != ST_OK) || strstr(err, "unknown option"))
			fprintf(stderr, "\n  tools/dist/starling.conf:%u: [%s]: %s\n", lineno, text,
			        err);
		checked++;
	}
	fclose(f);
	CU_ASSERT(checked >= 50);
}

static void test_persistence_options(void)
{
	struct config cfg;

	config_defaults(&cfg);
	CU_ASSERT_FALSE(cfg.persistence);
	CU_ASSERT_STRING_EQUAL(cfg.persistence_location, "");
	CU_ASSERT_STRING_EQUAL(cfg.persistence_file, "starling.db");
	CU_ASSERT_EQUAL(cfg.autosave_interval, 1800);
	CU_ASSERT_FALSE(cfg.autosave_on_changes);
	CU_ASSERT_TRUE(cfg.persistence_sync);
	cfg = after("persistence true");
	CU_ASSERT_TRUE(cfg.persistence);
	cfg = after("persistence_location /var/lib/mosquitto/");
	CU_ASSERT_STRING_EQUAL(cfg.persistence_location, "/var/lib/mosquitto/");
	cfg = after("persistence_file mosquitto.db");
	CU_ASSERT_STRING_EQUAL(cfg.persistence_file, "mosquitto.db");
	cfg = after("autosave_interval 0");
	CU_ASSERT_EQUAL(cfg.autosave_interval, 0);
	cfg = after("autosave_interval 4294967295");
	CU_ASSERT_EQUAL(cfg.autosave_interval, UINT32_MAX);
	cfg = after("autosave_on_changes true");
	CU_ASSERT_TRUE(cfg.autosave_on_changes);
	cfg = after("persistence_sync never");
	CU_ASSERT_FALSE(cfg.persistence_sync);
	cfg = after("persistence_sync always");
	CU_ASSERT_TRUE(cfg.persistence_sync);

	expect_error("persistence yes", "persistence");
	expect_error("persistence_location", "missing value");
	expect_error("persistence_file a/b.db", "without '/'");
	expect_error("persistence_file ..", "without '/'");
	expect_error("persistence_file", "missing value");
	expect_error("autosave_interval -1", "autosave_interval");
	expect_error("autosave_interval 4294967296", "autosave_interval");
	expect_error("persistence_sync sometimes", "'always' or 'never' expected");
	expect_error("persistence_sync", "persistence_sync");
}

/* Every option of the table is implemented now; what Starling cannot honour is refused with
 * its reason (config_compat.c). Bridges are parsed (test_config_bridge.c); a bridge option
 * outside a `connection` block is an error. */
static void test_unsupported_options(void)
{
	expect_error("plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so", "plugin");
	expect_error("topic sensors/# out 1", "topic: a bridge option outside a connection block");
	expect_error("remote_clientid x", "outside a connection block");
}

static void test_long_line_and_small_err(void)
{
	struct config cfg;
	char *big = malloc(20000);
	char tiny[12];

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	memcpy(big, "pid_file ", 9);
	expect_error(big, "line longer than");
	free(big);
	/* The message is cut to the buffer, never overrun (ASan watches). */
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_parse_line(&cfg, "bogus 1", "a-long-file-name.conf", 123, tiny,
	                                  sizeof(tiny)),
	                ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(strlen(tiny), sizeof(tiny) - 1);
	CU_ASSERT_EQUAL(config_parse_line(&cfg, "bogus 1", "f", 1, tiny, 0), ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(config_parse_line(&cfg, "bogus 1", "f", 1, tiny, 1), ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(tiny[0], '\0');
}

/* Defaults, the given lines, then config_finish(). */
static struct config finished(const char *const *lines, const uint16_t *ports, unsigned nports)
{
	struct config cfg;

	config_defaults(&cfg);
	for (unsigned i = 0; i < nports; i++)
		cfg.cmd_ports[cfg.cmd_port_count++] = ports[i];
	for (; lines != NULL && *lines != NULL; lines++)
		CU_ASSERT_EQUAL_FATAL(parse(&cfg, *lines), ST_OK);
	config_finish(&cfg);
	return cfg;
}

static void test_allow_anonymous_derivation(void)
{
	const char *listener[] = {"listener 1884", NULL};
	const char *port[] = {"port 1884", NULL};
	const char *bind[] = {"bind_address 127.0.0.1", NULL};
	const char *local_false[] = {"allow_anonymous false", NULL};
	const char *listener_true[] = {"listener 1884", "allow_anonymous true", NULL};
	const char *true_listener[] = {"allow_anonymous true", "listener 1884", NULL};

	CU_ASSERT_TRUE(finished(NULL, NULL, 0).allow_anonymous); /* local-only */
	CU_ASSERT_FALSE(finished(listener, NULL, 0).allow_anonymous);
	CU_ASSERT_FALSE(finished(port, NULL, 0).allow_anonymous);
	CU_ASSERT_FALSE(finished(bind, NULL, 0).allow_anonymous);
	/* An explicit value wins (Mosquitto 2.0.11 would force true in local-only mode). */
	CU_ASSERT_FALSE(finished(local_false, NULL, 0).allow_anonymous);
	CU_ASSERT_TRUE(finished(listener_true, NULL, 0).allow_anonymous);
	CU_ASSERT_TRUE(finished(true_listener, NULL, 0).allow_anonymous);
}

/* password_file, acl_file, allow_anonymous: broker-wide, or per listener. */
static void test_security_options(void)
{
	const char *global[] = {"password_file /etc/pw file", "acl_file /etc/acl", "listener 1884",
	                        "allow_anonymous true",       "listener 1885",     NULL};
	const char *per[] = {"per_listener_settings true",
	                     "password_file /before",
	                     "listener 1884",
	                     "password_file /one",
	                     "allow_anonymous true",
	                     "listener 1885",
	                     "acl_file /two",
	                     "port 1886",
	                     NULL};
	struct config cfg = finished(global, NULL, 0);

	CU_ASSERT_STRING_EQUAL(cfg.password_file, "/etc/pw file");
	CU_ASSERT_STRING_EQUAL(cfg.acl_file, "/etc/acl");
	CU_ASSERT_FALSE(cfg.per_listener_settings);
	for (unsigned i = 0; i < cfg.listener_count; i++) {
		CU_ASSERT_STRING_EQUAL(cfg.listeners[i].auth.password_file, "/etc/pw file");
		CU_ASSERT_TRUE(cfg.listeners[i].auth.allow_anonymous);
	}
	cfg = finished(per, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(cfg.listener_count, 3);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].auth.password_file, "/one");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].auth.acl_file, "");
	CU_ASSERT_TRUE(cfg.listeners[0].auth.allow_anonymous);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].auth.password_file, "");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].auth.acl_file, "/two");
	CU_ASSERT_FALSE(cfg.listeners[1].auth.allow_anonymous); /* Mosquitto's default */
	/* The default listener (port) takes what came before any listener. */
	CU_ASSERT_STRING_EQUAL(cfg.listeners[2].auth.password_file, "/before");
	CU_ASSERT_FALSE(cfg.listeners[2].auth.allow_anonymous);

	expect_error("password_file", "password_file: missing value");
	expect_error("per_listener_settings maybe", "expected true or false");
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1884"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "per_listener_settings true"), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "must come before"));
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "acl_file /x"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "per_listener_settings true"), ST_ERR_CONFIG);
}

static void test_listener_derivation(void)
{
	const char *listener[] = {"listener 1884", NULL};
	const char *port[] = {"port 1890", NULL};
	const char *all[] = {"bind_address 192.0.2.7", "listener 1884", "port 1890",
	                     "listener 1885 ::1", NULL};
	const uint16_t two[] = {1999, 2000};
	struct config cfg;

	cfg = finished(NULL, NULL, 0); /* Mosquitto 2's local-only mode */
	CU_ASSERT_TRUE(cfg.local_only);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "127.0.0.1");
	CU_ASSERT_FALSE(cfg.cmd_ports_ignored);

	cfg = finished(NULL, two, 2); /* -p 1999 -p 2000, no listener in the file */
	CU_ASSERT_TRUE(cfg.local_only);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1999);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 2000);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].bind, "127.0.0.1");

	cfg = finished(listener, two, 2); /* mosquitto(8): -p is IGNORED */
	CU_ASSERT_FALSE(cfg.local_only);
	CU_ASSERT_TRUE(cfg.cmd_ports_ignored);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1884);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "");

	cfg = finished(port, two, 1); /* `port` alone: all interfaces, -p ignored */
	CU_ASSERT_FALSE(cfg.local_only);
	CU_ASSERT_TRUE(cfg.cmd_ports_ignored);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1890);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "");

	cfg = finished(all, NULL, 0); /* listeners in order, then the default one */
	CU_ASSERT_EQUAL(cfg.listener_count, 3);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1884);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 1885);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].bind, "::1");
	CU_ASSERT_EQUAL(cfg.listeners[2].port, 1890);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[2].bind, "192.0.2.7");

	config_finish(&cfg); /* a second call changes nothing */
	CU_ASSERT_EQUAL(cfg.listener_count, 3);
	CU_ASSERT_FALSE(cfg.allow_anonymous);
}

/* `protocol`: per listener (before any: the default listener), mqtt by default. */
static void test_protocol_option(void)
{
	const char *ws[] = {"listener 1884", "listener 8080", "protocol websockets", NULL};
	const char *dflt[] = {"protocol websockets", "listener 1884", "protocol mqtt", NULL};
	struct config cfg;

	cfg = finished(ws, NULL, 0);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].protocol, CONFIG_PROTO_MQTT);
	CU_ASSERT_EQUAL(cfg.listeners[1].protocol, CONFIG_PROTO_WEBSOCKETS);
	cfg = finished(dflt, NULL, 0); /* the default listener (on 1883) speaks websockets */
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].protocol, CONFIG_PROTO_MQTT);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 1883);
	CU_ASSERT_EQUAL(cfg.listeners[1].protocol, CONFIG_PROTO_WEBSOCKETS);
	expect_error("protocol http", "protocol: expected mqtt or websockets, got \"http\"");
	expect_error("protocol", "protocol: missing value");
	expect_error("protocol mqtt websockets", "protocol: unexpected extra value");
	cfg = finished(NULL, NULL, 0);
	CU_ASSERT_EQUAL(cfg.websockets_headers_size, 8192);
	CU_ASSERT_EQUAL(after("websockets_headers_size 1024").websockets_headers_size, 1024);
	CU_ASSERT_EQUAL(after("websockets_headers_size 0").websockets_headers_size, 8192);
	expect_error("websockets_headers_size 65537", "websockets_headers_size");
	expect_error("http_dir /nonexistent/www", "http_dir: /nonexistent/www: No such file");
}

/* Runs config_from_args on a NULL-terminated argument list. */
static int from_args(struct config *cfg, const char *const *args)
{
	char *argv[2 * CONFIG_LISTENERS_MAX + 4];
	int argc = 0;

	argv[argc++] = (char *)"starlingd";
	for (; *args != NULL && argc < (int)(sizeof(argv) / sizeof(argv[0])) - 1; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	config_defaults(cfg);
	err[0] = '\0';
	return config_from_args(cfg, argc, argv, err, sizeof(err));
}

static void expect_usage_error(const char *const *args, const char *reason)
{
	struct config cfg;

	CU_ASSERT_EQUAL(from_args(&cfg, args), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(err, "\nusage: starlingd [-c FILE] [-p PORT] [-t THREADS] [-v] [-d] [-h]"));
}

static void test_args_good(void)
{
	const char *none[] = {NULL};
	const char *shorts[] = {"-p", "1999", "-v", "-d", "-p", "2000", NULL};
	const char *longs[] = {"--port", "0", "--verbose", "--daemon", NULL};
	struct config cfg;

	CU_ASSERT_EQUAL(from_args(&cfg, none), ST_OK);
	CU_ASSERT_TRUE(cfg.finished);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);
	CU_ASSERT_FALSE(cfg.verbose);
	CU_ASSERT_FALSE(cfg.daemonize);
	CU_ASSERT_STRING_EQUAL(cfg.config_path, "");

	CU_ASSERT_EQUAL(from_args(&cfg, shorts), ST_OK);
	CU_ASSERT_TRUE(cfg.verbose);
	CU_ASSERT_TRUE(cfg.daemonize);
	CU_ASSERT_EQUAL(cfg.cmd_port_count, 2);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1999);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 2000);
	CU_ASSERT_TRUE(cfg.allow_anonymous);

	CU_ASSERT_EQUAL(from_args(&cfg, longs), ST_OK);
	CU_ASSERT_TRUE(cfg.verbose);
	CU_ASSERT_TRUE(cfg.daemonize);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 0);
	CU_ASSERT_EQUAL(cfg.worker_threads, 0);
	CU_ASSERT_FALSE(cfg.cpu_affinity);

	{
		const char *t[] = {"-t", "4", NULL};
		const char *threads[] = {"--threads", "64", NULL};

		CU_ASSERT_EQUAL(from_args(&cfg, t), ST_OK);
		CU_ASSERT_EQUAL(cfg.worker_threads, 4);
		CU_ASSERT_EQUAL(from_args(&cfg, threads), ST_OK);
		CU_ASSERT_EQUAL(cfg.worker_threads, 64);
	}
}

static void test_args_help(void)
{
	const char *h[] = {"-h", NULL};
	const char *help[] = {"-v", "--help", "--bogus", NULL};
	struct config cfg;
	int saved = dup(STDOUT_FILENO);
	FILE *sink = tmpfile();

	/* The help text goes to stdout; keep it out of the test report. */
	CU_ASSERT_FATAL(saved >= 0 && sink != NULL);
	fflush(stdout);
	dup2(fileno(sink), STDOUT_FILENO);
	CU_ASSERT_EQUAL(from_args(&cfg, h), 1);
	CU_ASSERT_EQUAL(from_args(&cfg, help), 1);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	CU_ASSERT_EQUAL(fseek(sink, 0, SEEK_END), 0);
	CU_ASSERT(ftell(sink) > 100);
	fclose(sink);
}

static void test_args_bad(void)
{
	const char *unknown[] = {"-x", NULL};
	const char *unknown_long[] = {"--config", "f", NULL};
	const char *positional[] = {"mosquitto.conf", NULL};
	const char *c_missing[] = {"-c", NULL};
	const char *p_missing[] = {"--port", NULL};
	const char *p_bad[] = {"-p", "65536", NULL};
	const char *p_word[] = {"-p", "http", NULL};
	const char *p_neg[] = {"-p", "-1", NULL};
	const char *p_empty[] = {"-p", "", NULL};
	const char *c_twice[] = {"-c", "a.conf", "--config-file", "b.conf", NULL};
	const char *c_empty[] = {"-c", "", NULL};
	const char *c_absent[] = {"-c", "/nonexistent/starling.conf", NULL};
	const char *t_missing[] = {"-t", NULL};
	const char *t_big[] = {"--threads", "65", NULL};
	const char *t_word[] = {"-t", "all", NULL};
	struct config cfg;

	expect_usage_error(t_missing, "-t needs a value");
	expect_usage_error(t_big, "bad thread count \"65\" (0 to 64)");
	expect_usage_error(t_word, "bad thread count \"all\"");
	expect_usage_error(unknown, "unknown option \"-x\"");
	expect_usage_error(unknown_long, "unknown option \"--config\"");
	expect_usage_error(positional, "unknown option \"mosquitto.conf\"");
	expect_usage_error(c_missing, "-c needs a value");
	expect_usage_error(p_missing, "--port needs a value");
	expect_usage_error(p_bad, "bad port \"65536\"");
	expect_usage_error(p_word, "bad port \"http\"");
	expect_usage_error(p_neg, "bad port \"-1\"");
	expect_usage_error(p_empty, "bad port");
	expect_usage_error(c_twice, "--config-file given twice");
	expect_usage_error(c_empty, "bad file name");
	{
		const char *many[2 * CONFIG_LISTENERS_MAX + 3];
		int n = 0;

		for (int i = 0; i <= CONFIG_LISTENERS_MAX; i++) {
			many[n++] = "-p";
			many[n++] = "1884";
		}
		many[n] = NULL;
		expect_usage_error(many, "more than 16 -p ports");
	}
	CU_ASSERT_EQUAL(from_args(&cfg, c_absent), ST_ERR_CONFIG);
	CU_ASSERT_STRING_EQUAL(err, "/nonexistent/starling.conf: cannot open: No such file or "
	                            "directory");
}

/* Writes text to a new temporary file; its name goes to path. */
static void write_temp(char *path, size_t size, const void *text, size_t len)
{
	int fd;

	snprintf(path, size, "/tmp/test_config.XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
	close(fd);
}

/* TLS options belong to the last listener; before any, to the default listener. */
static void test_tls_options(void)
{
	struct config cfg;

	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1883"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 8883"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "certfile /etc/certs/server cert.pem"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "keyfile /etc/certs/server.key"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "cafile /etc/certs/ca.pem"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "capath /etc/certs/ca.d"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "crlfile /etc/certs/crl.pem"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "require_certificate true"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "use_identity_as_username true"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "use_subject_as_username true"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "tls_version tlsv1.3"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "ciphers ECDHE-ECDSA-AES128-GCM-SHA256:HIGH"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "ciphers_tls1.3 TLS_AES_128_GCM_SHA256"), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_FALSE(config_listener_is_tls(&cfg.listeners[0]));
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].tls.cafile, "");
	CU_ASSERT_TRUE(config_listener_is_tls(&cfg.listeners[1]));
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.certfile, "/etc/certs/server cert.pem");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.keyfile, "/etc/certs/server.key");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.cafile, "/etc/certs/ca.pem");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.capath, "/etc/certs/ca.d");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.crlfile, "/etc/certs/crl.pem");
	CU_ASSERT_TRUE(cfg.listeners[1].tls.require_certificate);
	CU_ASSERT_TRUE(cfg.listeners[1].tls.use_identity_as_username);
	CU_ASSERT_TRUE(cfg.listeners[1].tls.use_subject_as_username);
	CU_ASSERT_EQUAL(cfg.listeners[1].tls.version, CONFIG_TLS_V13);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:HIGH");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].tls.ciphers_tls13, "TLS_AES_128_GCM_SHA256");

	/* Before any listener: the default listener, which the option brings into being. */
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(parse(&cfg, "certfile a.pem"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "keyfile a.key"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "tls_version tlsv1.2"), ST_OK);
	CU_ASSERT_EQUAL(parse(&cfg, "listener 1884"), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_FALSE(cfg.local_only);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_FALSE(config_listener_is_tls(&cfg.listeners[0]));
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 1883);
	CU_ASSERT_TRUE(config_listener_is_tls(&cfg.listeners[1]));
	CU_ASSERT_EQUAL(cfg.listeners[1].tls.version, CONFIG_TLS_V12);

	expect_error("tls_version tlsv1.1", "tlsv1.1 is not supported");
	expect_error("tls_version tlsv1", "expected tlsv1.2 or tlsv1.3");
	expect_error("tls_version", "missing value");
	expect_error("require_certificate yes", "expected true or false");
	expect_error("use_identity_as_username", "missing value");
	expect_error("ciphers A B", "unexpected extra value");
	expect_error("certfile", "missing value");
}

static void test_load_file(void)
{
	static const char text[] = "# Starling test configuration\r\n"
	                           "\n"
	                           "listener 18830 127.0.0.1\r\n"
	                           "  listener 18831\n"
	                           "max_inflight_messages 0\n"
	                           "\t# indented comment\n"
	                           "allow_anonymous true\n"
	                           "log_type error\n"
	                           "log_type warning\n"
	                           "log_dest file /tmp/starling test.log\n"
	                           "sys_interval 0\n"
	                           "set_tcp_nodelay false"; /* no final newline */
	const char *args[] = {"-c", NULL, "-p", "1999", NULL};
	char path[64];
	struct config cfg;

	write_temp(path, sizeof(path), text, strlen(text));
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, err, sizeof(err)), ST_OK);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.max_inflight_messages, 65535);
	CU_ASSERT_EQUAL(cfg.receive_maximum, 65535);
	CU_ASSERT_EQUAL(cfg.log_types, LOG_T_ERROR | LOG_T_WARNING);
	CU_ASSERT_STRING_EQUAL(cfg.log_dests[0].path, "/tmp/starling test.log");
	CU_ASSERT_EQUAL(cfg.sys_interval_s, 0);
	CU_ASSERT_FALSE(cfg.set_tcp_nodelay);

	args[1] = path;
	CU_ASSERT_EQUAL(from_args(&cfg, args), ST_OK);
	CU_ASSERT_STRING_EQUAL(cfg.config_path, path);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 18830);
	CU_ASSERT_TRUE(cfg.cmd_ports_ignored);
	CU_ASSERT_TRUE(cfg.allow_anonymous);
	unlink(path);
}

static void test_threads_file_and_flag(void)
{
	static const char text[] = "worker_threads 3\ncpu_affinity true\n";
	const char *file_only[] = {"-c", NULL, NULL};
	const char *flag_wins[] = {"-t", "1", "-c", NULL, NULL};
	char path[64];
	struct config cfg;

	write_temp(path, sizeof(path), text, strlen(text));
	file_only[1] = path;
	CU_ASSERT_EQUAL(from_args(&cfg, file_only), ST_OK);
	CU_ASSERT_EQUAL(cfg.worker_threads, 3);
	CU_ASSERT_TRUE(cfg.cpu_affinity);
	/* -t wins over the file wherever it stands, as -v and -p do. */
	flag_wins[3] = path;
	CU_ASSERT_EQUAL(from_args(&cfg, flag_wins), ST_OK);
	CU_ASSERT_EQUAL(cfg.worker_threads, 1);
	CU_ASSERT_TRUE(cfg.cpu_affinity);
	unlink(path);
	cfg = after("cpu_affinity false");
	CU_ASSERT_FALSE(cfg.cpu_affinity);
	cfg = after("worker_channel_size 4");
	CU_ASSERT_EQUAL(cfg.worker_channel_size, 4);
	cfg = after("worker_channel_size 0");
	CU_ASSERT_EQUAL(cfg.worker_channel_size, 0);
	cfg = after("worker_channel_size 1048576");
	CU_ASSERT_EQUAL(cfg.worker_channel_size, 1048576);
	expect_error("worker_channel_size 3", "3 is not a power of two");
	expect_error("worker_channel_size 1", "1 is not a power of two");
	expect_error("worker_channel_size 2097152", "out of range");
	cfg = after("max_output_memory 17179869184");
	CU_ASSERT_EQUAL(cfg.max_output_memory, 17179869184ull);
	cfg = after("client_send_buffer 65536");
	CU_ASSERT_EQUAL(cfg.client_send_buffer, 65536);
	expect_error("max_output_memory -1", "out of range");
	expect_error("max_output_memory 1G", "not a decimal integer");
}

static void test_load_file_errors(void)
{
	static const char bad_line[] = "# ok\nlistener 1884\n\nmax_keepalive 5\nbogus\n";
	static const char nul[] = "max_connections 5\nmax_conn\0ections 6\n";
	char path[64], want[160];
	struct config cfg;
	char *big;

	write_temp(path, sizeof(path), bad_line, strlen(bad_line));
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, err, sizeof(err)), ST_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:4: max_keepalive: 5 is out of range (10..65535)", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	unlink(path);

	write_temp(path, sizeof(path), nul, sizeof(nul) - 1);
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, err, sizeof(err)), ST_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	CU_ASSERT_EQUAL(cfg.default_opts.max_connections, 5);
	unlink(path);

	/* Over the 1 MiB bound: a blank file that large is still refused. */
	big = calloc(1, (1u << 20) + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, '\n', (1u << 20) + 1);
	write_temp(path, sizeof(path), big, (1u << 20) + 1);
	free(big);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than 1048576 bytes"));
	unlink(path);

	CU_ASSERT_EQUAL(config_load_file(&cfg, "/nonexistent.conf", err, sizeof(err)),
	                ST_ERR_CONFIG);
	CU_ASSERT_STRING_EQUAL(err, "/nonexistent.conf: cannot open: No such file or directory");
	CU_ASSERT_EQUAL(config_load_file(&cfg, "/tmp", err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/tmp: cannot read: Is a directory"));
}

/* A file right at the size bound is read whole. */
static void test_exactly_one_mib(void)
{
	char path[64];
	char *buf = malloc(1u << 20);
	struct config cfg;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memset(buf, ' ', 1u << 20);
	memcpy(buf, "max_connections 9\n", 18);
	write_temp(path, sizeof(path), buf, 1u << 20);
	free(buf);
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, err, sizeof(err)), ST_OK);
	CU_ASSERT_EQUAL(cfg.default_opts.max_connections, 9);
	unlink(path);
}

int main(void)
{
	int rc;
	static const struct tu_test tests[] = {
	        {"defaults", test_defaults},
	        {"comments and blanks", test_comments_and_blanks},
	        {"unknown option", test_unknown_option},
	        {"integer options", test_integer_options},
	        {"boolean options", test_boolean_options},
	        {"listener", test_listener_option},
	        {"metrics_listener", test_metrics_listener_option},
	        {"port and bind_address", test_port_and_bind_address},
	        {"log_type", test_log_type},
	        {"log_dest", test_log_dest},
	        {"paths and strings", test_paths_and_strings},
	        {"user option", test_user_option},
	        {"default configuration file", test_default_config_file},
	        {"persistence options", test_persistence_options},
	        {"unsupported options", test_unsupported_options},
	        {"security options", test_security_options},
	        {"long line, small error buffer", test_long_line_and_small_err},
	        {"allow_anonymous derivation", test_allow_anonymous_derivation},
	        {"listener derivation", test_listener_derivation},
	        {"protocol", test_protocol_option},
	        {"argv good", test_args_good},
	        {"argv help", test_args_help},
	        {"argv bad", test_args_bad},
	        {"worker_threads, cpu_affinity, -t", test_threads_file_and_flag},
	        {"TLS options", test_tls_options},
	        {"load file", test_load_file},
	        {"load file errors", test_load_file_errors},
	        {"file of exactly 1 MiB", test_exactly_one_mib},
	        {NULL, NULL},
	};

	tu_add_suite("config", tests);
	rc = tu_run_registry();
	tu_guard_release(&guard);
	return rc;
}
