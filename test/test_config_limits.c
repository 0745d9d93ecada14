/*
 * Unit tests of config_limits.c: the limits, queues and client-id options of issue 16 through
 * config_parse_line() and config_finish(): good values, bad ones (every error names the file
 * and line), durations with Mosquitto's units, and which listener a per-listener line reaches.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "starling/error.h"
#include "testutil.h"

static char err[512];

/* Parses lines into cfg (from config_defaults) as lines 1.. of "l.conf"; they must parse. */
static void load(struct config *cfg, const char *const *lines)
{
	config_defaults(cfg);
	for (unsigned i = 0; lines[i]; i++) {
		int rc = config_parse_line(cfg, lines[i], "l.conf", i + 1, err, sizeof(err));

		CU_ASSERT_EQUAL(rc, ST_OK);
		if (rc != ST_OK)
			fprintf(stderr, "\n  [%s]: %s\n", lines[i], err);
	}
}

static void expect_error(const char *text, const char *reason)
{
	struct config cfg;
	int rc;

	config_defaults(&cfg);
	err[0] = '\0';
	rc = config_parse_line(&cfg, text, "l.conf", 12, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(strncmp(err, "l.conf:12: ", 11), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	if (rc != ST_ERR_CONFIG || !strstr(err, reason))
		fprintf(stderr, "\n  [%s]: rc %d [%s], wanted [%s]\n", text, rc, err, reason);
}

static void test_defaults(void)
{
	struct config cfg;

	config_defaults(&cfg);
	config_finish(&cfg);
	CU_ASSERT_EQUAL(cfg.limits.memory_limit, 0);
	CU_ASSERT_EQUAL(cfg.limits.max_queued_bytes, 0);
	CU_ASSERT_EQUAL(cfg.limits.max_inflight_bytes, 0);
	CU_ASSERT_EQUAL(cfg.limits.persistent_expiry_s, 0);
	CU_ASSERT_FALSE(cfg.limits.queue_qos0_messages);
	CU_ASSERT_FALSE(cfg.limits.upgrade_outgoing_qos);
	CU_ASSERT_TRUE(cfg.limits.check_retain_source);
	CU_ASSERT_STRING_EQUAL(cfg.limits.clientid_prefixes, "");
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(config_listener_max_qos(&cfg.listeners[0].lim), 2);
	CU_ASSERT_FALSE(cfg.listeners[0].lim.use_username_as_clientid);
	CU_ASSERT_FALSE(cfg.listeners[0].lim.refuse_zero_length_clientid);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].lim.auto_id_prefix, "");
}

static void test_values(void)
{
	static const char *const lines[] = {
	        "memory_limit 1073741824",
	        "max_queued_bytes 65536",
	        "max_inflight_bytes 100",
	        "queue_qos0_messages true",
	        "upgrade_outgoing_qos true",
	        "check_retain_source false",
	        "persistent_client_expiration 14d",
	        "clientid_prefixes secure-",
	        NULL,
	};
	struct config cfg;

	load(&cfg, lines);
	CU_ASSERT_EQUAL(cfg.limits.memory_limit, 1073741824ull);
	CU_ASSERT_EQUAL(cfg.limits.max_queued_bytes, 65536);
	CU_ASSERT_EQUAL(cfg.limits.max_inflight_bytes, 100);
	CU_ASSERT_TRUE(cfg.limits.queue_qos0_messages);
	CU_ASSERT_TRUE(cfg.limits.upgrade_outgoing_qos);
	CU_ASSERT_FALSE(cfg.limits.check_retain_source);
	CU_ASSERT_EQUAL(cfg.limits.persistent_expiry_s, 14 * 86400);
	CU_ASSERT_STRING_EQUAL(cfg.limits.clientid_prefixes, "secure-");
}

static void test_durations(void)
{
	static const struct {
		const char *s;
		int rc;
		uint32_t v;
	} cases[] = {
	        {"1h", 0, 3600},
	        {"2d", 0, 172800},
	        {"1w", 0, 604800},
	        {"2m", 0, 2 * 30 * 86400},
	        {"1y", 0, 365 * 86400},
	        {"90s", 0, 90},
	        {"136y", 0, 136u * 365 * 86400},
	        {"137y", -2, 0},
	        {"4294967295s", -2, 0},
	        {"4294967294s", 0, 4294967294u},
	        {"0h", -2, 0},
	        {"99999999999999999999999d", -2, 0},
	        {"h", -1, 0},
	        {"", -1, 0},
	        {"10", -1, 0},
	        {"10x", -1, 0},
	        {"-1d", -1, 0},
	        {"+1d", -1, 0},
	        {"1 d", -1, 0},
	        {"1dd", -1, 0},
	        {"1H", -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = 0;
		int rc = config_parse_duration(cases[i].s, &v);

		CU_ASSERT_EQUAL(rc, cases[i].rc);
		if (rc == 0)
			CU_ASSERT_EQUAL(v, cases[i].v);
		if (rc != cases[i].rc || (rc == 0 && v != cases[i].v))
			fprintf(stderr, "\n  duration [%s]: rc %d v %u\n", cases[i].s, rc, v);
	}
}

static void test_errors(void)
{
	expect_error("memory_limit", "memory_limit: missing value");
	expect_error("memory_limit -1", "is not a decimal integer");
	expect_error("memory_limit 10M", "is not a decimal integer");
	expect_error("memory_limit 1 2", "unexpected extra value \"2\"");
	expect_error("memory_limit 9223372036854775808", "out of range");
	expect_error("max_queued_bytes 1.5", "max_queued_bytes");
	expect_error("max_inflight_bytes x", "max_inflight_bytes");
	expect_error("max_qos 3", "expected 0, 1 or 2");
	expect_error("max_qos -1", "expected 0, 1 or 2");
	expect_error("max_qos 01", "expected 0, 1 or 2");
	expect_error("maximum_qos", "missing value");
	expect_error("queue_qos0_messages yes", "expected true or false");
	expect_error("upgrade_outgoing_qos 1", "expected true or false");
	expect_error("check_retain_source", "missing value");
	expect_error("use_username_as_clientid on", "expected true or false");
	expect_error("allow_zero_length_clientid TRUE", "expected true or false");
	expect_error("persistent_client_expiration", "missing value");
	expect_error("persistent_client_expiration 10", "is not a duration");
	expect_error("persistent_client_expiration 0d", "out of range");
	expect_error("persistent_client_expiration 200y", "out of range");
	expect_error("persistent_client_expiration 1d 2h", "unexpected extra value");
	expect_error("clientid_prefixes", "missing value");
	expect_error("auto_id_prefix", "missing value");
	{
		char line[200];

		snprintf(line, sizeof(line), "auto_id_prefix %0*d", CONFIG_AUTO_ID_PREFIX_MAX + 1,
		         0);
		expect_error(line, "longer than 64 bytes");
	}
}

/* max_qos and use_username_as_clientid go to the listener above them, else the default. */
static void test_listener_scope(void)
{
	static const char *const lines[] = {
	        "max_qos 1",
	        "use_username_as_clientid true",
	        "port 1884",
	        "listener 1885",
	        "max_qos 0",
	        "listener 1886",
	        "use_username_as_clientid true",
	        "allow_zero_length_clientid false",
	        "auto_id_prefix dev-",
	        NULL,
	};
	struct config cfg;

	load(&cfg, lines);
	config_finish(&cfg);
	CU_ASSERT_EQUAL_FATAL(cfg.listener_count, 3);
	/* 1885, 1886, then the default listener 1884 (appended by config_finish). */
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1885);
	CU_ASSERT_EQUAL(config_listener_max_qos(&cfg.listeners[0].lim), 0);
	CU_ASSERT_FALSE(cfg.listeners[0].lim.use_username_as_clientid);
	CU_ASSERT_EQUAL(config_listener_max_qos(&cfg.listeners[1].lim), 2);
	CU_ASSERT_TRUE(cfg.listeners[1].lim.use_username_as_clientid);
	CU_ASSERT_EQUAL(cfg.listeners[2].port, 1884);
	CU_ASSERT_EQUAL(config_listener_max_qos(&cfg.listeners[2].lim), 1);
	CU_ASSERT_TRUE(cfg.listeners[2].lim.use_username_as_clientid);
	/* Without per_listener_settings the client-id options reach every listener. */
	for (unsigned i = 0; i < 3; i++) {
		CU_ASSERT_TRUE(cfg.listeners[i].lim.refuse_zero_length_clientid);
		CU_ASSERT_STRING_EQUAL(cfg.listeners[i].lim.auto_id_prefix, "dev-");
	}
}

static void test_per_listener_ids(void)
{
	static const char *const lines[] = {
	        "per_listener_settings true",
	        "auto_id_prefix first-",
	        "listener 1885",
	        "allow_zero_length_clientid false",
	        "listener 1886",
	        "auto_id_prefix b-",
	        NULL,
	};
	struct config cfg;

	load(&cfg, lines);
	config_finish(&cfg);
	CU_ASSERT_EQUAL_FATAL(cfg.listener_count, 2);
	CU_ASSERT_TRUE(cfg.listeners[0].lim.refuse_zero_length_clientid);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].lim.auto_id_prefix, "");
	CU_ASSERT_FALSE(cfg.listeners[1].lim.refuse_zero_length_clientid);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].lim.auto_id_prefix, "b-");
}

/* Local-only mode: the lines before any listener reach the loopback listeners. */
static void test_local_only(void)
{
	static const char *const lines[] = {"max_qos 1", "auto_id_prefix x-", NULL};
	struct config cfg;

	load(&cfg, lines);
	config_finish(&cfg);
	CU_ASSERT_TRUE(cfg.local_only);
	CU_ASSERT_EQUAL(config_listener_max_qos(&cfg.listeners[0].lim), 1);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].lim.auto_id_prefix, "x-");
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"defaults", test_defaults},
	        {"values", test_values},
	        {"durations", test_durations},
	        {"errors", test_errors},
	        {"listener scope", test_listener_scope},
	        {"per-listener client ids", test_per_listener_ids},
	        {"local-only", test_local_only},
	        {NULL, NULL},
	};

	tu_add_suite("config_limits", tests);
	return tu_run_registry();
}
