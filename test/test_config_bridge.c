/*
 * Unit tests of config_bridge.c and config_bridge_topic.c: every bridge option of
 * mosquitto.conf(5) and its old name, every default, every error with its FILE:LINE, the
 * notices where Mosquitto raises a value, the per-file block rule through real files, and no
 * leak when a configuration with bridges is read and freed again (what a re-read would do).
 * The expectations were checked against mosquitto 2.0.11 (see config_bridge.c).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "starling/error.h"
#include "testutil.h"

static char err[1024];
static struct config cfg; /* large: static */

/* Reads lines[] as lines 1.. of "b.conf" into a default cfg, then config_bridge_finish. */
static int load(const char *const *lines)
{
	int rc = ST_OK;

	config_bridges_free(&cfg);
	config_defaults(&cfg);
	err[0] = '\0';
	for (unsigned i = 0; lines[i] != NULL && rc == ST_OK; i++)
		rc = config_parse_line(&cfg, lines[i], "b.conf", i + 1, err, sizeof(err));
	if (rc == ST_OK)
		rc = config_bridge_finish(&cfg, err, sizeof(err));
	return rc;
}

/* The lines must fail with "b.conf:LINE: " and `reason` in the message. */
static void expect_error_at(const char *const *lines, unsigned line, const char *reason)
{
	char where[32];
	int rc = load(lines);

	snprintf(where, sizeof(where), "b.conf:%u: ", line);
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(strncmp(err, where, strlen(where)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	if (rc != ST_ERR_CONFIG || strncmp(err, where, strlen(where)) != 0 ||
	    strstr(err, reason) == NULL)
		fprintf(stderr, "\n  rc %d, err [%s], wanted [%s%s]\n", rc, err, where, reason);
}

/* A minimal block (lines 1-3) and then `extra` as line 4, which must fail with `reason`. */
static void expect_line4(const char *extra, const char *reason)
{
	const char *lines[] = {"connection b", "address 127.0.0.1", "topic a/#", extra, NULL};

	expect_error_at(lines, 4, reason);
}

/* A minimal block and `extra` as line 4, which must be accepted; returns the bridge. */
static struct config_bridge *with_line4(const char *extra)
{
	const char *lines[] = {"connection b", "address 127.0.0.1", "topic a/#", extra, NULL};
	int rc = load(lines);

	if (rc != ST_OK)
		fprintf(stderr, "\n  [%s]: %s\n", extra, err);
	CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.bridge_count, 1);
	return &cfg.bridges[0];
}

static void test_defaults(void)
{
	const char *lines[] = {"connection edge", "address broker.example", "topic #", NULL};
	char host[256], want[300];
	struct config_bridge *b;

	CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.bridge_count, 1);
	b = &cfg.bridges[0];
	CU_ASSERT_STRING_EQUAL(b->name, "edge");
	CU_ASSERT_STRING_EQUAL(b->path, "b.conf");
	CU_ASSERT_EQUAL(b->line, 1);
	CU_ASSERT_EQUAL(b->addr_count, 1);
	CU_ASSERT_STRING_EQUAL(b->addrs[0].host, "broker.example");
	CU_ASSERT_EQUAL(b->addrs[0].port, 1883);
	CU_ASSERT_FALSE(b->round_robin);
	CU_ASSERT_EQUAL_FATAL(b->topic_count, 1);
	CU_ASSERT_STRING_EQUAL(b->topics[0].pattern, "#");
	CU_ASSERT_EQUAL(b->topics[0].dir, CONFIG_BRIDGE_OUT);
	CU_ASSERT_EQUAL(b->topics[0].qos, 0);
	CU_ASSERT_STRING_EQUAL(b->topics[0].local_prefix, "");
	CU_ASSERT_STRING_EQUAL(b->topics[0].remote_prefix, "");
	CU_ASSERT_STRING_EQUAL(b->topics[0].local_topic, "#");
	CU_ASSERT_STRING_EQUAL(b->topics[0].remote_topic, "#");
	/* mosquitto 2.0.11 connects as HOSTNAME.NAME (its manual says name.hostname). */
	CU_ASSERT_EQUAL_FATAL(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	snprintf(want, sizeof(want), "%s.edge", host);
	CU_ASSERT_STRING_EQUAL(b->remote_clientid, want);
	snprintf(want, sizeof(want), "local.%s.edge", host);
	CU_ASSERT_STRING_EQUAL(b->local_clientid, want);
	snprintf(want, sizeof(want), "$SYS/broker/connection/%s.edge/state", host);
	CU_ASSERT_STRING_EQUAL(b->notification_topic, want);
	CU_ASSERT_PTR_NULL(b->remote_username);
	CU_ASSERT_PTR_NULL(b->remote_password);
	CU_ASSERT_PTR_NULL(b->local_username);
	CU_ASSERT_PTR_NULL(b->local_password);
	CU_ASSERT_FALSE(b->cleansession);
	CU_ASSERT_FALSE(b->local_cleansession);
	CU_ASSERT_EQUAL(b->keepalive_s, 60);
	CU_ASSERT_EQUAL(b->idle_timeout_s, 60);
	CU_ASSERT_EQUAL(b->threshold, 10);
	CU_ASSERT_EQUAL(b->restart_base_s, 5);
	CU_ASSERT_EQUAL(b->restart_cap_s, 30);
	CU_ASSERT_EQUAL(b->start_type, CONFIG_BRIDGE_AUTOMATIC);
	CU_ASSERT_EQUAL(b->protocol_version, 4);
	CU_ASSERT_TRUE(b->try_private);
	CU_ASSERT_TRUE(b->notifications);
	CU_ASSERT_FALSE(b->notifications_local_only);
	CU_ASSERT_EQUAL(b->max_packet_size, 0);
	CU_ASSERT_TRUE(b->outgoing_retain);
	CU_ASSERT_TRUE(b->attempt_unsubscribe);
	CU_ASSERT_STRING_EQUAL(b->bind_address, "");
	CU_ASSERT_FALSE(b->tls);
	CU_ASSERT_STRING_EQUAL(b->cafile, "");
	CU_ASSERT_STRING_EQUAL(b->capath, "");
	CU_ASSERT_STRING_EQUAL(b->certfile, "");
	CU_ASSERT_STRING_EQUAL(b->keyfile, "");
	CU_ASSERT_FALSE(b->insecure);
	CU_ASSERT_EQUAL(b->tls_version, CONFIG_TLS_V12);
	CU_ASSERT_PTR_NULL(b->alpn);
	CU_ASSERT_PTR_NULL(b->psk_identity);
	CU_ASSERT_PTR_NULL(b->psk_hex);
	CU_ASSERT_FALSE(b->require_ocsp);
	CU_ASSERT_EQUAL(cfg.notice_count, 0);
	/* Finishing again changes nothing (config_load_file and a test may both call it). */
	CU_ASSERT_EQUAL(config_bridge_finish(&cfg, err, sizeof(err)), ST_OK);
	snprintf(want, sizeof(want), "local.%s.edge", host);
	CU_ASSERT_STRING_EQUAL(cfg.bridges[0].local_clientid, want);
}

/* Every option with a value other than its default, in the new names. */
static void test_every_option(void)
{
	const char *lines[] = {"connection cloud",
	                       "address a.example:8883 10.0.0.2 ::1:1884 [fe80::2]:1885",
	                       "topic sensors/# out 1 edge/ site1/",
	                       "remote_clientid remote id",
	                       "local_clientid local id",
	                       "remote_username ru",
	                       "remote_password rp with blanks",
	                       "local_username lu",
	                       "local_password lp",
	                       "round_robin true",
	                       "cleansession true",
	                       "local_cleansession false",
	                       "keepalive_interval 30",
	                       "idle_timeout 120",
	                       "threshold 50",
	                       "restart_timeout 10 60",
	                       "start_type lazy",
	                       "bridge_protocol_version mqttv50",
	                       "try_private false",
	                       "notifications false",
	                       "notifications_local_only true",
	                       "notification_topic bridges/cloud/state",
	                       "bridge_max_packet_size 10000",
	                       "bridge_outgoing_retain false",
	                       "bridge_attempt_unsubscribe false",
	                       "bridge_bind_address 10.0.0.9",
	                       "bridge_cafile /etc/ca dir/ca.pem",
	                       "bridge_capath /etc/ssl/certs",
	                       "bridge_certfile /etc/c.pem",
	                       "bridge_keyfile /etc/k.pem",
	                       "bridge_insecure true",
	                       "bridge_tls_version tlsv1.3",
	                       "bridge_alpn mqtt",
	                       "bridge_require_ocsp false",
	                       NULL};
	struct config_bridge *b;

	CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
	b = &cfg.bridges[0];
	CU_ASSERT_EQUAL_FATAL(b->addr_count, 4);
	CU_ASSERT_STRING_EQUAL(b->addrs[0].host, "a.example");
	CU_ASSERT_EQUAL(b->addrs[0].port, 8883);
	CU_ASSERT_STRING_EQUAL(b->addrs[1].host, "10.0.0.2");
	CU_ASSERT_EQUAL(b->addrs[1].port, 1883);
	CU_ASSERT_STRING_EQUAL(b->addrs[2].host, "::1");
	CU_ASSERT_EQUAL(b->addrs[2].port, 1884);
	CU_ASSERT_STRING_EQUAL(b->addrs[3].host, "fe80::2");
	CU_ASSERT_EQUAL(b->addrs[3].port, 1885);
	CU_ASSERT_EQUAL(b->topics[0].dir, CONFIG_BRIDGE_OUT);
	CU_ASSERT_EQUAL(b->topics[0].qos, 1);
	CU_ASSERT_STRING_EQUAL(b->topics[0].local_topic, "edge/sensors/#");
	CU_ASSERT_STRING_EQUAL(b->topics[0].remote_topic, "site1/sensors/#");
	CU_ASSERT_STRING_EQUAL(b->remote_clientid, "remote id");
	CU_ASSERT_STRING_EQUAL(b->local_clientid, "local id");
	CU_ASSERT_STRING_EQUAL(b->remote_username, "ru");
	CU_ASSERT_STRING_EQUAL(b->remote_password, "rp with blanks");
	CU_ASSERT_STRING_EQUAL(b->local_username, "lu");
	CU_ASSERT_STRING_EQUAL(b->local_password, "lp");
	CU_ASSERT_TRUE(b->round_robin);
	CU_ASSERT_TRUE(b->cleansession);
	CU_ASSERT_FALSE(b->local_cleansession); /* given: not cleansession's value */
	CU_ASSERT_EQUAL(b->keepalive_s, 30);
	CU_ASSERT_EQUAL(b->idle_timeout_s, 120);
	CU_ASSERT_EQUAL(b->threshold, 50);
	CU_ASSERT_EQUAL(b->restart_base_s, 10);
	CU_ASSERT_EQUAL(b->restart_cap_s, 60);
	CU_ASSERT_EQUAL(b->start_type, CONFIG_BRIDGE_LAZY);
	CU_ASSERT_EQUAL(b->protocol_version, 5);
	CU_ASSERT_FALSE(b->try_private);
	CU_ASSERT_FALSE(b->notifications);
	CU_ASSERT_TRUE(b->notifications_local_only);
	CU_ASSERT_STRING_EQUAL(b->notification_topic, "bridges/cloud/state");
	CU_ASSERT_EQUAL(b->max_packet_size, 10000);
	CU_ASSERT_FALSE(b->outgoing_retain);
	CU_ASSERT_FALSE(b->attempt_unsubscribe);
	CU_ASSERT_STRING_EQUAL(b->bind_address, "10.0.0.9");
	CU_ASSERT_TRUE(b->tls);
	CU_ASSERT_STRING_EQUAL(b->cafile, "/etc/ca dir/ca.pem");
	CU_ASSERT_STRING_EQUAL(b->capath, "/etc/ssl/certs");
	CU_ASSERT_STRING_EQUAL(b->certfile, "/etc/c.pem");
	CU_ASSERT_STRING_EQUAL(b->keyfile, "/etc/k.pem");
	CU_ASSERT_TRUE(b->insecure);
	CU_ASSERT_EQUAL(b->tls_version, CONFIG_TLS_V13);
	CU_ASSERT_STRING_EQUAL(b->alpn, "mqtt");
	CU_ASSERT_FALSE(b->require_ocsp);
	/* bridge_insecure true is worth a line in the log, as Mosquitto's warning. */
	CU_ASSERT_EQUAL_FATAL(cfg.notice_count, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(cfg.notices[0], "b.conf:31: bridge cloud does not check"));
}

/* Mosquitto's older names, the other values of the enumerations, PSK. */
static void test_old_names_and_values(void)
{
	const char *lines[] = {"connection old",
	                       "addresses h1:1 h2:2 # the rest is a comment",
	                       "topic a",
	                       "clientid cid",
	                       "username u",
	                       "password p",
	                       "cleansession true",
	                       "bridge_identity me",
	                       "bridge_psk 00ff11AA",
	                       "start_type once",
	                       "bridge_protocol_version mqttv31",
	                       "bridge_tls_version tlsv1.2",
	                       "restart_timeout 20",
	                       NULL};
	struct config_bridge *b;

	CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
	b = &cfg.bridges[0];
	CU_ASSERT_EQUAL(b->addr_count, 2);
	CU_ASSERT_EQUAL(b->addrs[1].port, 2);
	CU_ASSERT_STRING_EQUAL(b->remote_clientid, "cid");
	CU_ASSERT_STRING_EQUAL(b->local_clientid, "local.cid");
	CU_ASSERT_STRING_EQUAL(b->notification_topic, "$SYS/broker/connection/cid/state");
	CU_ASSERT_STRING_EQUAL(b->remote_username, "u");
	CU_ASSERT_STRING_EQUAL(b->remote_password, "p");
	CU_ASSERT_TRUE(b->local_cleansession); /* follows cleansession */
	CU_ASSERT_TRUE(b->tls);                /* PSK is TLS */
	CU_ASSERT_STRING_EQUAL(b->psk_identity, "me");
	CU_ASSERT_STRING_EQUAL(b->psk_hex, "00ff11AA");
	CU_ASSERT_EQUAL(b->start_type, CONFIG_BRIDGE_ONCE);
	CU_ASSERT_EQUAL(b->protocol_version, 3);
	CU_ASSERT_EQUAL(b->tls_version, CONFIG_TLS_V12);
	CU_ASSERT_EQUAL(b->restart_base_s, 20); /* a constant delay: base == cap */
	CU_ASSERT_EQUAL(b->restart_cap_s, 20);
	b = with_line4("start_type automatic");
	CU_ASSERT_EQUAL(b->start_type, CONFIG_BRIDGE_AUTOMATIC);
	b = with_line4("bridge_protocol_version mqttv311");
	CU_ASSERT_EQUAL(b->protocol_version, 4);
	/* A boolean given twice takes the last value, as in Mosquitto. */
	{
		const char *twice[] = {"connection b",      "address h",        "topic a",
		                       "try_private false", "try_private true", NULL};

		CU_ASSERT_EQUAL(load(twice), ST_OK);
		CU_ASSERT_TRUE(cfg.bridges[0].try_private);
	}
}

static void test_topic_forms(void)
{
	const char *lines[] = {"connection t",
	                       "address h",
	                       "topic a/+/c",
	                       "topic b IN",
	                       "topic c Both 2",
	                       "topic # in 1 local/ remote/",
	                       "topic d out 0 \"\" remote/",
	                       "topic e out 0 local/",
	                       "topic \"\" both 1 here there/x",
	                       "topic f both 0 \"\" \"\"",
	                       NULL};
	const struct config_bridge_topic *t;

	CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.bridges[0].topic_count, 8);
	t = cfg.bridges[0].topics;
	CU_ASSERT_EQUAL(t[0].dir, CONFIG_BRIDGE_OUT);
	CU_ASSERT_EQUAL(t[1].dir, CONFIG_BRIDGE_IN);
	CU_ASSERT_EQUAL(t[1].qos, 0);
	CU_ASSERT_EQUAL(t[2].dir, CONFIG_BRIDGE_BOTH);
	CU_ASSERT_EQUAL(t[2].qos, 2);
	CU_ASSERT_STRING_EQUAL(t[3].local_topic, "local/#");
	CU_ASSERT_STRING_EQUAL(t[3].remote_topic, "remote/#");
	CU_ASSERT_STRING_EQUAL(t[4].local_prefix, "");
	CU_ASSERT_STRING_EQUAL(t[4].local_topic, "d");
	CU_ASSERT_STRING_EQUAL(t[4].remote_topic, "remote/d");
	CU_ASSERT_STRING_EQUAL(t[5].local_topic, "local/e");
	CU_ASSERT_STRING_EQUAL(t[5].remote_prefix, "");
	CU_ASSERT_STRING_EQUAL(t[5].remote_topic, "e");
	/* The empty pattern remaps one topic. */
	CU_ASSERT_STRING_EQUAL(t[6].pattern, "");
	CU_ASSERT_STRING_EQUAL(t[6].local_topic, "here");
	CU_ASSERT_STRING_EQUAL(t[6].remote_topic, "there/x");
	CU_ASSERT_EQUAL(t[6].local_prefix_len, 4);
	CU_ASSERT_EQUAL(t[6].remote_prefix_len, 7);
	CU_ASSERT_EQUAL(t[6].local_topic_len, 4);
	CU_ASSERT_EQUAL(t[6].remote_topic_len, 7);
	CU_ASSERT_EQUAL(t[3].local_topic_len, strlen("local/#"));
	CU_ASSERT_EQUAL(t[3].remote_prefix_len, strlen("remote/"));
	CU_ASSERT_EQUAL(t[0].local_prefix_len, 0);
	CU_ASSERT_STRING_EQUAL(t[7].local_topic, "f");
	CU_ASSERT_STRING_EQUAL(t[7].remote_topic, "f");
}

static void test_topic_errors(void)
{
	const char *outside[] = {"listener 1883", "topic a/# out 1", NULL};

	expect_error_at(outside, 2, "topic: a bridge option outside a connection block");
	expect_line4("topic a sideways", "topic: bad direction \"sideways\"");
	expect_line4("topic a in 3", "topic: bad QoS \"3\"");
	expect_line4("topic a in -1", "topic: bad QoS \"-1\"");
	expect_line4("topic a in x", "topic: bad QoS \"x\""); /* Mosquitto's atoi: 0 */
	expect_line4("topic a in 1x", "topic: bad QoS \"1x\"");
	expect_line4("topic", "topic: missing pattern");
	expect_line4("topic a in 1 l/ r/ extra", "topic: unexpected extra value \"extra\"");
	/* mosquitto.conf(5)'s table: an empty pattern needs both prefixes. */
	expect_line4("topic \"\"", "an empty pattern (\"\") needs a local and a remote prefix");
	expect_line4("topic \"\" both", "needs a local and a remote prefix");
	expect_line4("topic \"\" in 0 local \"\"", "needs a local and a remote prefix");
	expect_line4("topic \"\" in 0 \"\" remote", "needs a local and a remote prefix");
	expect_line4("topic \"\" in 0 \"\" \"\"", "needs a local and a remote prefix");
	expect_line4("topic a in 0 l/+/ r/", "topic: bad local prefix \"l/+/\"");
	expect_line4("topic a in 0 l/ r/#", "topic: bad remote prefix \"r/#\"");
	expect_line4(
	        "topic # out 0 local remote",
	        "the local prefix and the pattern make \"local#\", which is not a topic filter");
	expect_line4("topic + out 0 \"\" remote",
	             "the remote prefix and the pattern make \"remote+\"");
	expect_line4("topic a#b", "make \"a#b\", which is not a topic filter");
	expect_line4("topic a/#/b in", "not a topic filter");
	expect_line4("topic \"\" in 0 a\xff b", "bad local prefix");
}

static void test_addresses(void)
{
	struct config_bridge *b;
	const char *nine[] = {"connection b", "address a b c d e f g h i", NULL};
	const char *two[] = {"connection b", "address a", "addresses b", NULL};

	b = with_line4("bridge_bind_address ::1");
	CU_ASSERT_STRING_EQUAL(b->addrs[0].host, "127.0.0.1");
	{
		const char *lines[] = {"connection b", "address [::1] 2001:db8::1:8883 h:65535",
		                       "topic a", NULL};

		CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
		b = &cfg.bridges[0];
		CU_ASSERT_STRING_EQUAL(b->addrs[0].host, "::1");
		CU_ASSERT_EQUAL(b->addrs[0].port, 1883);
		CU_ASSERT_STRING_EQUAL(b->addrs[1].host, "2001:db8::1");
		CU_ASSERT_EQUAL(b->addrs[1].port, 8883);
		CU_ASSERT_EQUAL(b->addrs[2].port, 65535);
	}
	expect_error_at(two, 3, "addresses: a second address line in this connection block");
	expect_error_at(nine, 2, "address: more than 8 addresses");
	{
		const char *lines[] = {"connection b", "address h:0", NULL};

		expect_error_at(lines, 2, "address: bad port \"0\" (1..65535)");
		lines[1] = "address h:65536";
		expect_error_at(lines, 2, "address: bad port \"65536\"");
		lines[1] = "address h:x";
		expect_error_at(lines, 2, "address: bad port \"x\"");
		lines[1] = "address h:";
		expect_error_at(lines, 2, "address: bad port \"\"");
		lines[1] = "address :1883";
		expect_error_at(lines, 2, "address: no host before the port");
		lines[1] = "address ::1";
		expect_error_at(lines, 2, "address: the IPv6 address \"::1\" needs a port");
		lines[1] = "address fe80::1";
		expect_error_at(lines, 2, "the IPv6 address \"fe80::1\" needs a port");
		lines[1] = "address a:b:1883";
		expect_error_at(lines, 2, "\"a:b\" is neither a host name nor an IPv6 address");
		lines[1] = "address [::1";
		expect_error_at(lines, 2, "address: bad address \"[::1\"");
		lines[1] = "address [h]:1";
		expect_error_at(lines, 2, "\"h\" is not an IPv6 address");
		lines[1] = "address # nothing";
		expect_error_at(lines, 2, "address: missing value");
		lines[1] = "address";
		expect_error_at(lines, 2, "address: missing value");
	}
}

/* Bad values of the other options, each naming its line. */
static void test_value_errors(void)
{
	static const struct {
		const char *line;   /* line 4 of a minimal block */
		const char *reason; /* in the message */
	} cases[] = {
	        {"round_robin maybe", "round_robin: expected true or false, got \"maybe\""},
	        {"cleansession yes", "cleansession: expected true or false"},
	        {"cleansession", "cleansession: missing value"},
	        {"cleansession true false", "cleansession: unexpected extra value \"false\""},
	        {"keepalive_interval 65536",
	         "keepalive_interval: 65536 is out of range (0..65535)"},
	        {"keepalive_interval x", "keepalive_interval: \"x\" is not a decimal integer"},
	        {"keepalive_interval -1", "is not a decimal integer"},
	        {"idle_timeout 1s", "idle_timeout: \"1s\" is not a decimal integer"},
	        {"threshold", "threshold: missing value"},
	        {"restart_timeout", "restart_timeout: missing value"},
	        {"restart_timeout 10 5", "restart_timeout: the cap 5 is lower than the base 10"},
	        {"restart_timeout 1 2 3", "restart_timeout: unexpected extra value \"3\""},
	        {"restart_timeout 5 x", "restart_timeout: \"x\" is not a decimal integer"},
	        {"start_type manual", "start_type: manual is not supported"},
	        {"start_type LAZY", "start_type: expected automatic, lazy or once, got \"LAZY\""},
	        {"bridge_protocol_version mqttv5", "expected mqttv50, mqttv311 or mqttv31"},
	        {"bridge_max_packet_size -5", "bridge_max_packet_size: \"-5\" is not a decimal"},
	        {"bridge_max_packet_size 268435461", "out of range (0..268435460)"},
	        {"bridge_tls_version tlsv1.1", "bridge_tls_version: TLS 1.1 is not offered"},
	        {"bridge_tls_version tlsv1", "expected tlsv1.3, tlsv1.2 or tlsv1.1"},
	        {"bridge_require_ocsp perhaps", "bridge_require_ocsp: expected true or false"},
	        {"bridge_psk 0x12", "bridge_psk: expected the key in hexadecimal"},
	        {"bridge_psk zz", "bridge_psk: expected the key in hexadecimal"},
	        {"notification_topic a/#", "notification_topic: \"a/#\" is not a topic to publish"},
	        {"remote_clientid", "remote_clientid: missing value"},
	        {"remote_clientid \xc3\x28", "remote_clientid: not valid UTF-8"},
	        {"bridge_bind_address a b", "bridge_bind_address: unexpected extra value"},
	        {"connection b", "connection: a second bridge named \"b\" (first at b.conf:1)"},
	        {"connection", "connection: missing value"},
	        {"bridge_unknown 1", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].reason != NULL) {
			expect_line4(cases[i].line, cases[i].reason);
		} else {
			/* Not a bridge option at all: config.c's answer. */
			expect_line4(cases[i].line, "unknown option \"bridge_unknown\"");
		}
	}
}

/* Every name of a block is parsed somewhere: none comes back as unknown, whatever its value. */
static void test_every_name_known(void)
{
	static const char *const names[] = {"address",
	                                    "addresses",
	                                    "topic",
	                                    "remote_clientid",
	                                    "clientid",
	                                    "local_clientid",
	                                    "remote_username",
	                                    "username",
	                                    "remote_password",
	                                    "password",
	                                    "local_username",
	                                    "local_password",
	                                    "round_robin",
	                                    "cleansession",
	                                    "local_cleansession",
	                                    "keepalive_interval",
	                                    "idle_timeout",
	                                    "threshold",
	                                    "restart_timeout",
	                                    "start_type",
	                                    "bridge_protocol_version",
	                                    "try_private",
	                                    "notifications",
	                                    "notifications_local_only",
	                                    "notification_topic",
	                                    "bridge_max_packet_size",
	                                    "bridge_outgoing_retain",
	                                    "bridge_attempt_unsubscribe",
	                                    "bridge_bind_address",
	                                    "bridge_cafile",
	                                    "bridge_capath",
	                                    "bridge_certfile",
	                                    "bridge_keyfile",
	                                    "bridge_insecure",
	                                    "bridge_tls_version",
	                                    "bridge_alpn",
	                                    "bridge_identity",
	                                    "bridge_psk",
	                                    "bridge_require_ocsp"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char l2[64];
		const char *lines[] = {"connection b", l2, NULL};

		snprintf(l2, sizeof(l2), "%s x", names[i]);
		(void)load(lines);
		CU_ASSERT_PTR_NULL(strstr(err, "unknown"));
		/* Outside a block each is refused as a bridge option. */
		CU_ASSERT_EQUAL(
		        config_parse_line(&cfg, "listener 1", "b.conf", 3, err, sizeof(err)),
		        ST_OK);
		config_bridges_free(&cfg);
		config_defaults(&cfg);
		CU_ASSERT_EQUAL(config_parse_line(&cfg, l2, "b.conf", 9, err, sizeof(err)),
		                ST_ERR_CONFIG);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "b.conf:9: "));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "a bridge option outside a connection block"));
	}
}

/* A string option given twice in one block is an error, as Mosquitto's "Duplicate". */
static void test_duplicates(void)
{
	static const char *const names[] = {
	        "remote_clientid",     "local_clientid", "remote_username",    "remote_password",
	        "local_username",      "local_password", "notification_topic", "bridge_alpn",
	        "bridge_cafile",       "bridge_capath",  "bridge_certfile",    "bridge_keyfile",
	        "bridge_bind_address", "bridge_identity"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char l4[64], l5[64];
		const char *lines[] = {"connection b", "address h", "topic a", l4, l5, NULL};

		snprintf(l4, sizeof(l4), "%s x", names[i]);
		snprintf(l5, sizeof(l5), "%s y", names[i]);
		expect_error_at(lines, 5, "given twice in this connection block");
	}
	{
		const char *lines[] = {"connection b", "address h",         "topic a",
		                       "clientid x",   "remote_clientid y", NULL};

		expect_error_at(lines, 5, "remote_clientid: given twice");
	}
}

/* Values Mosquitto raises, with the notice it logs; Starling logs it with FILE:LINE. */
static void test_raised_values(void)
{
	struct config_bridge *b;

	b = with_line4("keepalive_interval 2");
	CU_ASSERT_EQUAL(b->keepalive_s, 5);
	CU_ASSERT_EQUAL_FATAL(cfg.notice_count, 1);
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(cfg.notices[0], "b.conf:4: keepalive_interval 2 is under 5: using 5"));
	b = with_line4("keepalive_interval 5");
	CU_ASSERT_EQUAL(b->keepalive_s, 5);
	CU_ASSERT_EQUAL(cfg.notice_count, 0);
	b = with_line4("idle_timeout 0");
	CU_ASSERT_EQUAL(b->idle_timeout_s, 1);
	CU_ASSERT_EQUAL(cfg.notice_count, 1);
	b = with_line4("threshold 0");
	CU_ASSERT_EQUAL(b->threshold, 1);
	CU_ASSERT_EQUAL(cfg.notice_count, 1);
	b = with_line4("restart_timeout 0");
	CU_ASSERT_EQUAL(b->restart_base_s, 1);
	CU_ASSERT_EQUAL(b->restart_cap_s, 1);
	CU_ASSERT_EQUAL(cfg.notice_count, 1);
	/* "0 0" raises the base to 1, and then the cap 0 is under it (Mosquitto too). */
	expect_line4("restart_timeout 0 0", "restart_timeout: the cap 0 is lower than the base 1");
}

/* What a block must hold, checked at the end: the error names the `connection` line. */
static void test_finish_errors(void)
{
	const char *no_addr[] = {"# c", "connection b", "topic a", NULL};
	const char *no_topic[] = {"connection b", "address h", NULL};
	const char *second[] = {"connection a", "address h", "topic x",
	                        "connection b", "address h", NULL};
	const char *same_id[] = {"connection a",
	                         "address h",
	                         "topic x",
	                         "remote_clientid same",
	                         "connection b",
	                         "address h",
	                         "topic x",
	                         "clientid same",
	                         NULL};
	const char *local_same[] = {"connection a",     "address h",        "topic x",
	                            "local_clientid l", "connection b",     "address h",
	                            "topic x",          "local_clientid l", NULL};

	expect_error_at(no_addr, 2, "connection b: no address line");
	expect_error_at(no_topic, 1, "connection b: no topic line");
	expect_error_at(second, 4, "connection b: no topic line");
	expect_error_at(same_id, 5, "local_clientid \"local.same\" is also bridge a's");
	expect_error_at(local_same, 5, "local_clientid \"l\" is also bridge a's");
	{
		const char *lines[] = {"connection b", "address h", "topic a", NULL,
		                       NULL,           NULL,        NULL};

		lines[3] = "remote_password p";
		expect_error_at(lines, 1, "connection b: remote_password without remote_username");
		lines[3] = "local_password p";
		expect_error_at(lines, 1, "connection b: local_password without local_username");
		lines[3] = "bridge_psk 00";
		expect_error_at(lines, 1, "connection b: bridge_psk without bridge_identity");
		lines[3] = "bridge_identity me";
		expect_error_at(lines, 1, "connection b: bridge_identity without bridge_psk");
		lines[3] = "bridge_identity me";
		lines[4] = "bridge_psk 00";
		lines[5] = "bridge_require_ocsp true";
		expect_error_at(lines, 1,
		                "bridge_require_ocsp needs certificates, not bridge_identity");
		lines[5] = NULL;
		lines[3] = "bridge_certfile c.pem";
		lines[4] = "bridge_cafile ca.pem";
		expect_error_at(lines, 1, "bridge_certfile and bridge_keyfile go together");
		lines[3] = "bridge_keyfile k.pem";
		expect_error_at(lines, 1, "bridge_certfile and bridge_keyfile go together");
		lines[3] = "bridge_certfile c.pem";
		lines[4] = "bridge_keyfile k.pem";
		expect_error_at(lines, 1, "bridge_certfile without bridge_cafile or bridge_capath");
	}
	/* Certificates and PSK: refused on the line that mixes them, either way round. */
	{
		const char *lines[] = {"connection b",     "address h",          "topic a",
		                       "bridge_cafile ca", "bridge_identity me", NULL};

		expect_error_at(lines, 5, "bridge_identity: a bridge uses certificates");
		lines[3] = "bridge_psk 00";
		lines[4] = "bridge_capath /etc/ssl/certs";
		expect_error_at(lines, 5, "bridge_capath: a bridge uses certificates");
		lines[3] = "bridge_keyfile k";
		lines[4] = "bridge_psk 00";
		expect_error_at(lines, 5, "bridge_psk: a bridge uses certificates");
	}
}

/* Two blocks, general options between them: each option goes to the block above it. */
static void test_blocks(void)
{
	const char *lines[] = {"connection one",
	                       "address h1",
	                       "topic a",
	                       "max_queued_messages 5",
	                       "topic b",
	                       "listener 1884",
	                       "keepalive_interval 9",
	                       "connection two",
	                       "address h2",
	                       "topic c in",
	                       NULL};

	CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.bridge_count, 2);
	CU_ASSERT_EQUAL(cfg.max_queued_messages, 5);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.bridges[0].topic_count, 2);
	CU_ASSERT_EQUAL(cfg.bridges[0].keepalive_s, 9);
	CU_ASSERT_EQUAL(cfg.bridges[1].topic_count, 1);
	CU_ASSERT_EQUAL(cfg.bridges[1].keepalive_s, 60);
	CU_ASSERT_EQUAL(cfg.bridges[1].line, 8);
}

static void test_bridges_max(void)
{
	int rc = ST_OK;

	config_bridges_free(&cfg);
	config_defaults(&cfg);
	for (unsigned i = 0; i <= CONFIG_BRIDGES_MAX && rc == ST_OK; i++) {
		char text[64];

		snprintf(text, sizeof(text), "connection b%u", i);
		rc = config_parse_line(&cfg, text, "b.conf", 3 * i + 1, err, sizeof(err));
		if (rc == ST_OK)
			rc = config_parse_line(&cfg, "address h", "b.conf", 3 * i + 2, err,
			                       sizeof(err));
		if (rc == ST_OK)
			rc = config_parse_line(&cfg, "topic #", "b.conf", 3 * i + 3, err,
			                       sizeof(err));
	}
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(cfg.bridge_count, CONFIG_BRIDGES_MAX);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "connection: more than 64 bridges"));
	CU_ASSERT_EQUAL(config_bridge_finish(&cfg, err, sizeof(err)), ST_OK);
	config_bridges_free(&cfg);
	CU_ASSERT_PTR_NULL(cfg.bridges);
	CU_ASSERT_EQUAL(cfg.bridge_count, 0);
}

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/* Real files: the block rule is per file (an included file starts outside any block, and
 * the main file's block goes on after include_dir), errors name the file, and a second read
 * into a fresh config, after freeing the first, leaks nothing (ASan's leak check). */
static void test_files(void)
{
	char main_conf[128], text[512], want[256];

	snprintf(dir, sizeof(dir), "/tmp/test_config_bridge.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(main_conf, sizeof(main_conf), "%s/main.conf", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(strcat(strcpy(text, dir), "/d"), 0700), 0);
	put("d/a.conf", "connection inc\naddress h\ntopic i\n");
	snprintf(text, sizeof(text),
	         "connection main\naddress h\ninclude_dir %s/d\ntopic m1\ntopic m2 in\n", dir);
	put("main.conf", text);
	for (int round = 0; round < 2; round++) {
		config_bridges_free(&cfg);
		config_defaults(&cfg);
		CU_ASSERT_EQUAL_FATAL(config_load_file(&cfg, main_conf, err, sizeof(err)), ST_OK);
		CU_ASSERT_EQUAL_FATAL(cfg.bridge_count, 2);
		CU_ASSERT_STRING_EQUAL(cfg.bridges[0].name, "main");
		CU_ASSERT_EQUAL(cfg.bridges[0].topic_count, 2);
		CU_ASSERT_STRING_EQUAL(cfg.bridges[1].name, "inc");
		CU_ASSERT_EQUAL(cfg.bridges[1].topic_count, 1);
		snprintf(want, sizeof(want), "%s/d/a.conf", dir);
		CU_ASSERT_STRING_EQUAL(cfg.bridges[1].path, want);
		CU_ASSERT_PTR_NOT_NULL(cfg.bridges[0].remote_clientid); /* finished */
		CU_ASSERT_EQUAL(cfg.bridge_open, 0);
	}
	/* An included file does not continue the main file's block. */
	put("d/a.conf", "# a comment\ntopic x\n");
	config_bridges_free(&cfg);
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_load_file(&cfg, main_conf, err, sizeof(err)), ST_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s/d/a.conf:2: topic: a bridge option outside", dir);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	/* The checks at the end run when the main file is read. */
	put("d/a.conf", "connection inc\naddress h\n");
	config_bridges_free(&cfg);
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(config_load_file(&cfg, main_conf, err, sizeof(err)), ST_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s/d/a.conf:1: connection inc: no topic line", dir);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	config_bridges_free(&cfg);
	unlink(want); /* best effort clean-up below */
	snprintf(text, sizeof(text), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(text), 0);
}

int main(void)
{
	int rc;
	static const struct tu_test tests[] = {
	        {"defaults", test_defaults},
	        {"every option", test_every_option},
	        {"old names and other values", test_old_names_and_values},
	        {"topic forms", test_topic_forms},
	        {"topic errors", test_topic_errors},
	        {"addresses", test_addresses},
	        {"value errors", test_value_errors},
	        {"duplicates", test_duplicates},
	        {"every name known", test_every_name_known},
	        {"raised values", test_raised_values},
	        {"finish errors", test_finish_errors},
	        {"blocks", test_blocks},
	        {"bridges max", test_bridges_max},
	        {"files", test_files},
	        {NULL, NULL},
	};

	tu_add_suite("config_bridge", tests);
	rc = tu_run_registry();
	config_bridges_free(&cfg);
	return rc;
}
