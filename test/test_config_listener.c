/*
 * Unit tests of config_listener.c: mount_point, bind_interface, socket_domain, max_connections
 * per listener, http_dir, psk_hint and psk_file: where each lands (the listener above, or the
 * default listener before any, which it then brings into being), the values refused with the
 * file and line named, and what config_finish() makes of them (Mosquitto 2.0's rules).
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

/* Parses lines (NULL-terminated) as lines 1.. of "l.conf"; returns the first failure. */
static int parse_lines(struct config *cfg, const char *const *lines)
{
	config_defaults(cfg);
	err[0] = '\0';
	for (unsigned i = 0; lines[i]; i++) {
		int rc = config_parse_line(cfg, lines[i], "l.conf", i + 1, err, sizeof(err));

		if (rc != ST_OK)
			return rc;
	}
	return ST_OK;
}

/* The lines must fail at line `line` with `reason` in the message. */
static void expect_fail(const char *const *lines, unsigned line, const char *reason)
{
	struct config cfg;
	char where[32];
	int rc = parse_lines(&cfg, lines);

	snprintf(where, sizeof(where), "l.conf:%u: ", line);
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(strncmp(err, where, strlen(where)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	if (rc != ST_ERR_CONFIG || strncmp(err, where, strlen(where)) || !strstr(err, reason))
		fprintf(stderr, "\n  rc %d, err [%s], wanted [%s%s]\n", rc, err, where, reason);
}

static void test_mount_point(void)
{
	static const char *const ok[] = {"listener 1883", "mount_point tenant/a/", "listener 1884",
	                                 "mount_point with blanks inside", NULL};
	static const char *const before[] = {"mount_point x/", "listener 1883", NULL};
	static const char *const wild1[] = {"listener 1", "mount_point a/+/", NULL};
	static const char *const wild2[] = {"listener 1", "mount_point a/#", NULL};
	static const char *const empty[] = {"listener 1", "mount_point", NULL};
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, ok), ST_OK);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.mount_point, "tenant/a/");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].opts.mount_point, "with blanks inside");
	config_finish(&cfg);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.mount_point, "tenant/a/");
	expect_fail(before, 1, "mount_point: a listener must come before it");
	expect_fail(wild1, 2, "is not a valid topic name");
	expect_fail(wild2, 2, "is not a valid topic name");
	expect_fail(empty, 2, "mount_point: missing value");
}

static void test_bind_interface(void)
{
	static const char *const ok[] = {"listener 1883", "bind_interface lo", NULL};
	static const char *const def[] = {"bind_interface lo", NULL};
	static const char *const none[] = {"listener 1", "bind_interface nosuchif0", NULL};
	static const char *const two[] = {"listener 1", "bind_interface lo eth0", NULL};
	static const char *const toolong[] = {"listener 1", "bind_interface abcdefghijklmnopq",
	                                      NULL};
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, ok), ST_OK);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.bind_interface, "lo");
	/* Before any listener: the default listener's, which then exists (Mosquitto). */
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, def), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_FALSE(cfg.local_only);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_EQUAL(cfg.listeners[0].port, 1883);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.bind_interface, "lo");
	expect_fail(none, 2, "bind_interface: no network interface \"nosuchif0\"");
	expect_fail(two, 2, "unexpected extra value \"eth0\"");
	expect_fail(toolong, 2, "value longer than 15 bytes");
}

static void test_socket_domain(void)
{
	static const char *const ok[] = {"listener 1",         "socket_domain ipv4", "listener 2",
	                                 "socket_domain ipv6", "listener 3",         NULL};
	static const char *const bad[] = {"listener 1", "socket_domain ipv5", NULL};
	static const char *const caps[] = {"listener 1", "socket_domain IPv4", NULL};
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, ok), ST_OK);
	CU_ASSERT_EQUAL(cfg.listeners[0].opts.socket_domain, CONFIG_DOMAIN_IPV4);
	CU_ASSERT_EQUAL(cfg.listeners[1].opts.socket_domain, CONFIG_DOMAIN_IPV6);
	CU_ASSERT_EQUAL(cfg.listeners[2].opts.socket_domain, CONFIG_DOMAIN_ANY);
	expect_fail(bad, 2, "socket_domain: expected ipv4 or ipv6, got \"ipv5\"");
	expect_fail(caps, 2, "expected ipv4 or ipv6");
}

static void test_max_connections(void)
{
	static const char *const per[] = {"listener 1",         "max_connections 5", "listener 2",
	                                  "max_connections -1", "listener 3",        NULL};
	static const char *const minus_one[] = {"max_connections -1", NULL};
	static const char *const def[] = {"max_connections 7", "listener 1", NULL};
	static const char *const bad[] = {"listener 1", "max_connections -2", NULL};
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, per), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_EQUAL(cfg.listeners[0].opts.max_connections, 5);
	CU_ASSERT_EQUAL(cfg.listeners[1].opts.max_connections, 0);
	CU_ASSERT_EQUAL(cfg.listeners[2].opts.max_connections, 0);
	CU_ASSERT_EQUAL(cfg.listener_count, 3);
	/* -1 before any listener is the default: local-only mode stays. */
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, minus_one), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_TRUE(cfg.local_only);
	/* Another count there is the default listener's, which then opens beside listener 1. */
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, def), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_EQUAL(cfg.listener_count, 2);
	CU_ASSERT_EQUAL(cfg.listeners[0].opts.max_connections, 0);
	CU_ASSERT_EQUAL(cfg.listeners[1].port, 1883);
	CU_ASSERT_EQUAL(cfg.listeners[1].opts.max_connections, 7);
	expect_fail(bad, 2, "max_connections: -2 is out of range");
}

static void test_http_dir(void)
{
	char dir[] = "/tmp/st-httpdir-XXXXXX", file[64], line[128];
	const char *ok[] = {"listener 1", "protocol websockets", line, NULL};
	const char *notdir[] = {"listener 1", line, NULL};
	static const char *const missing[] = {"listener 1", "http_dir /nonexistent/dir", NULL};
	struct config cfg;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(line, sizeof(line), "http_dir %s", dir);
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, ok), ST_OK);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.http_dir, dir);
	snprintf(file, sizeof(file), "%s/index.html", dir);
	f = fopen(file, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	snprintf(line, sizeof(line), "http_dir %s", file);
	expect_fail(notdir, 2, "is not a directory");
	expect_fail(missing, 2, "http_dir: /nonexistent/dir: No such file or directory");
	unlink(file);
	rmdir(dir);
}

static void test_psk(void)
{
	static const char *const ok[] = {"psk_file /etc/psk", "listener 8883",
	                                 "psk_hint Starling hint", NULL};
	static const char *const per[] = {"per_listener_settings true", "listener 1", "psk_file /a",
	                                  "listener 2", NULL};
	static const char *const hint_def[] = {"psk_hint h", NULL};
	char longhint[160] = "psk_hint ";
	const char *toolong[] = {"listener 1", longhint, NULL};
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, ok), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_STRING_EQUAL(cfg.psk_file, "/etc/psk");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.psk_hint, "Starling hint");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].auth.psk_file, "/etc/psk");
	/* A psk_hint makes a TLS listener even without a certificate (mosquitto.conf(5)). */
	CU_ASSERT_TRUE(config_listener_is_tls(&cfg.listeners[0]));
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, per), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].auth.psk_file, "/a");
	CU_ASSERT_STRING_EQUAL(cfg.listeners[1].auth.psk_file, "");
	CU_ASSERT_FALSE(config_listener_is_tls(&cfg.listeners[1]));
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, hint_def), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_EQUAL(cfg.listener_count, 1);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].opts.psk_hint, "h");
	memset(longhint + strlen(longhint), 'x', 129);
	expect_fail(toolong, 2, "psk_hint: value longer than 128 bytes");
}

/* Local-only mode listens on 127.0.0.1 and asks for ::1 too; other listeners do not. */
static void test_local_only_both_families(void)
{
	static const char *const none[] = {NULL};
	static const char *const one[] = {"listener 1883", NULL};
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, none), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_TRUE(cfg.local_only);
	CU_ASSERT_STRING_EQUAL(cfg.listeners[0].bind, "127.0.0.1");
	CU_ASSERT_TRUE(cfg.listeners[0].loopback_v6);
	CU_ASSERT_EQUAL_FATAL(parse_lines(&cfg, one), ST_OK);
	config_finish(&cfg);
	CU_ASSERT_FALSE(cfg.listeners[0].loopback_v6);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"mount_point", test_mount_point},
	        {"bind_interface", test_bind_interface},
	        {"socket_domain", test_socket_domain},
	        {"max_connections per listener", test_max_connections},
	        {"http_dir", test_http_dir},
	        {"psk_hint and psk_file", test_psk},
	        {"local-only on both families", test_local_only_both_families},
	        {NULL, NULL},
	};

	tu_add_suite("config_listener", tests);
	return tu_run_registry();
}
