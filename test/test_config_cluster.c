/*
 * Unit tests of config_cluster.c: the cluster options, their values, the URL list's checks
 * with FILE:LINE, the options that go together, and the list's URLs read back one by one.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "base/config_cluster.h"
#include "starling/error.h"
#include "testutil.h"

static char err[1024];
static struct config cfg; /* large: static */

/* Reads lines[] as lines 1.. of "c.conf" into a default cfg, then config_cluster_finish. */
static int load(const char *const *lines)
{
	int rc = ST_OK;

	config_bridges_free(&cfg);
	config_defaults(&cfg);
	err[0] = '\0';
	for (unsigned i = 0; lines[i] != NULL && rc == ST_OK; i++)
		rc = config_parse_line(&cfg, lines[i], "c.conf", i + 1, err, sizeof(err));
	if (rc == ST_OK)
		rc = config_cluster_finish(&cfg, err, sizeof(err));
	return rc;
}

static void expect_error(const char *const *lines, const char *where, const char *reason)
{
	int rc = load(lines);

	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	if (where)
		CU_ASSERT_EQUAL(strncmp(err, where, strlen(where)), 0);
	if (rc != ST_ERR_CONFIG || !strstr(err, reason) ||
	    (where && strncmp(err, where, strlen(where)) != 0))
		fprintf(stderr, "\n  rc %d, err [%s], wanted [%s] [%s]\n", rc, err,
		        where ? where : "", reason);
}

static void test_off_by_default(void)
{
	const char *lines[] = {"listener 1883", NULL};

	CU_ASSERT_EQUAL(load(lines), ST_OK);
	CU_ASSERT_EQUAL(cfg.cluster.urls[0], '\0');
	CU_ASSERT_EQUAL(cfg.cluster.nurls, 0);
}

static void test_every_option(void)
{
	const char *lines[] = {
	        "cluster_nats_url nats://10.0.0.1:4222,tls://nats.example:4443,nats://[::1]:4222",
	        "cluster_nats_user starling",
	        "cluster_nats_password s3cret",
	        "cluster_nats_cafile /etc/ca.pem",
	        "cluster_nats_certfile /etc/node.pem",
	        "cluster_nats_keyfile /etc/node.key",
	        "cluster_name acme.prod",
	        "cluster_node_id edge-7",
	        NULL,
	};
	char url[128];

	CU_ASSERT_EQUAL_FATAL(load(lines), ST_OK);
	CU_ASSERT_EQUAL(cfg.cluster.nurls, 3);
	CU_ASSERT_STRING_EQUAL(cfg.cluster.user, "starling");
	CU_ASSERT_STRING_EQUAL(cfg.cluster.password, "s3cret");
	CU_ASSERT_STRING_EQUAL(cfg.cluster.cafile, "/etc/ca.pem");
	CU_ASSERT_STRING_EQUAL(cfg.cluster.certfile, "/etc/node.pem");
	CU_ASSERT_STRING_EQUAL(cfg.cluster.keyfile, "/etc/node.key");
	CU_ASSERT_STRING_EQUAL(cfg.cluster.name, "acme.prod");
	CU_ASSERT_STRING_EQUAL(cfg.cluster.node_id, "edge-7");
	CU_ASSERT_EQUAL(config_cluster_url(&cfg.cluster, 0, url, sizeof(url)), 20);
	CU_ASSERT_STRING_EQUAL(url, "nats://10.0.0.1:4222");
	CU_ASSERT(config_cluster_url(&cfg.cluster, 1, url, sizeof(url)) > 0);
	CU_ASSERT_STRING_EQUAL(url, "tls://nats.example:4443");
	CU_ASSERT(config_cluster_url(&cfg.cluster, 2, url, sizeof(url)) > 0);
	CU_ASSERT_STRING_EQUAL(url, "nats://[::1]:4222");
	CU_ASSERT_EQUAL(config_cluster_url(&cfg.cluster, 3, url, sizeof(url)), -1);
	CU_ASSERT_EQUAL(config_cluster_url(&cfg.cluster, 0, url, 8), -1); /* does not fit */
}

static void test_url_forms(void)
{
	static const char *const good[] = {
	        "nats://127.0.0.1:4222",
	        "nats://user:pw@host:1",
	        "tls://h:65535",
	        "nats://a:1,nats://b:2",
	};

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char line[128];
		const char *lines[] = {line, NULL};

		snprintf(line, sizeof(line), "cluster_nats_url %s", good[i]);
		CU_ASSERT_EQUAL(load(lines), ST_OK);
		if (err[0])
			fprintf(stderr, "\n  %s: %s\n", good[i], err);
	}
}

static void test_url_errors(void)
{
	static const struct {
		const char *url, *reason;
	} bad[] = {
	        {"http://h:80", "is not a NATS URL"},
	        {"127.0.0.1:4222", "is not a NATS URL"},
	        {"nats://", "is not a NATS URL"},
	        {"nats://host", "needs a host and a port"},
	        {"nats://:4222", "needs a host and a port"},
	        {"nats://h:", "bad port"},
	        {"nats://h:0", "bad port"},
	        {"nats://h:65536", "bad port"},
	        {"nats://h:12x", "bad port"},
	        {"nats://[::1]", "needs a host and a port"},
	        {"nats://a:1,,nats://b:2", "an empty URL"},
	        {"nats://a:1,", "an empty URL"},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[128];
		const char *lines[] = {"listener 1883", line, NULL};

		snprintf(line, sizeof(line), "cluster_nats_url %s", bad[i].url);
		expect_error(lines, "c.conf:2: ", bad[i].reason);
	}
}

static void test_too_many_urls(void)
{
	char line[2048] = "cluster_nats_url ";
	const char *lines[] = {line, NULL};

	for (unsigned i = 0; i <= CONFIG_CLUSTER_URLS_MAX; i++) {
		char one[32];

		snprintf(one, sizeof(one), "%snats://h%u:1", i ? "," : "", i);
		strcat(line, one);
	}
	expect_error(lines, "c.conf:1: ", "more than");
}

static void test_value_errors(void)
{
	const char *missing[] = {"cluster_name", NULL};
	const char *two[] = {"cluster_node_id a b", NULL};
	const char *long_name[] = {
	        "cluster_name "
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	        NULL};
	const char *unknown[] = {"cluster_nats_token x", NULL};

	expect_error(missing, "c.conf:1: ", "cluster_name");
	expect_error(two, "c.conf:1: ", "cluster_node_id");
	expect_error(long_name, "c.conf:1: ", "longer than 64 bytes");
	CU_ASSERT_EQUAL(load(unknown), ST_ERR_CONFIG);
}

static void test_finish_errors(void)
{
	const char *no_url[] = {"cluster_name x", NULL};
	const char *user_only[] = {"cluster_nats_url nats://h:1", "cluster_nats_user u", NULL};
	const char *pass_only[] = {"cluster_nats_url nats://h:1", "cluster_nats_password p", NULL};
	const char *cert_only[] = {"cluster_nats_url nats://h:1", "cluster_nats_certfile c", NULL};
	const char *key_only[] = {"cluster_nats_url nats://h:1", "cluster_nats_keyfile k", NULL};

	expect_error(no_url, NULL, "without cluster_nats_url");
	expect_error(user_only, NULL, "go together");
	expect_error(pass_only, NULL, "go together");
	expect_error(cert_only, NULL, "go together");
	expect_error(key_only, NULL, "go together");
}

int main(void)
{
	int rc;
	static const struct tu_test tests[] = {
	        {"off by default", test_off_by_default}, {"every option", test_every_option},
	        {"url forms", test_url_forms},           {"url errors", test_url_errors},
	        {"too many urls", test_too_many_urls},   {"value errors", test_value_errors},
	        {"finish errors", test_finish_errors},   {NULL, NULL},
	};

	tu_add_suite("config_cluster", tests);
	rc = tu_run_registry();
	config_bridges_free(&cfg);
	return rc;
}
