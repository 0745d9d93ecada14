/*
 * Unit tests of include_dir (config_include.c) and of the Mosquitto options Starling refuses,
 * accepts with a notice or knows under another name (config_compat.c), plus the logging
 * options of issue 16 (connection_messages, log_facility). Directories are real: each test
 * builds a tree under /tmp and loads a real main file through config_load_file(). The expected
 * orders and errors were checked against mosquitto 2.0.11 (config_include.c says how).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "base/config_include.h"
#include "starling/error.h"
#include "testutil.h"

static char err[1024];
static char root[64]; /* this test's temporary tree */

/* Writes root/rel (text) and returns nothing; directories on the way must exist. */
static void put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static void mkdir_in(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
}

/* A fresh tree for one test. */
static void fresh_root(void)
{
	snprintf(root, sizeof(root), "/tmp/test_config_include.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
}

static void remove_root(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Loads root/main.conf (after writing `text` there, with %s replaced by root) into *cfg. */
static int load_main(struct config *cfg, const char *fmt, ...)
{
	char text[4096], path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	put("main.conf", text);
	snprintf(path, sizeof(path), "%s/main.conf", root);
	config_defaults(cfg);
	err[0] = '\0';
	return config_load_file(cfg, path, err, sizeof(err));
}

static bool err_has(const char *s)
{
	if (strstr(err, s) != NULL)
		return true;
	fprintf(stderr, "\n  err [%s] lacks [%s]\n", err, s);
	return false;
}

static void test_order(void)
{
	/* mosquitto.conf(5)'s example order. */
	const char *manual[] = {"00.conf", "01.conf", "A.conf", "a.conf", "B.conf", "b.conf"};
	/* Pairs in the order mosquitto 2.0.11 read them. */
	const char *pairs[][2] = {
	        {"Ac.conf", "ab.conf"},   /* the first difference decides, 'A' before 'a' */
	        {"a-b.conf", "aZb.conf"}, /* '-' before letters */
	        {"aZb.conf", "a_b.conf"}, /* '_' after letters (as upper case) */
	        {"z.conf", "_x.conf"},
	        {"Z.conf", "z.conf"},
	        {"a.conf", "\xc3\xa9.conf"}, /* bytes above 0x7f after ASCII */
	        {"a.conf", "ab.conf"},       /* '.' before letters */
	        {"a", "a.conf"},             /* a prefix first */
	};
	const char *all[] = {"00.conf",  "01.conf", "A.conf",  "a.conf",   "B.conf",
	                     "b.conf",   "Ac.conf", "ab.conf", "a-b.conf", "aZb.conf",
	                     "a_b.conf", "_x.conf", "Z.conf",  "z.conf",   "\xc3\xa9.conf"};
	size_t n = sizeof(all) / sizeof(all[0]);

	for (size_t i = 0; i + 1 < sizeof(manual) / sizeof(manual[0]); i++)
		CU_ASSERT_TRUE(config_include_cmp(manual[i], manual[i + 1]) < 0);
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		CU_ASSERT_TRUE(config_include_cmp(pairs[i][0], pairs[i][1]) < 0);
		CU_ASSERT_TRUE(config_include_cmp(pairs[i][1], pairs[i][0]) > 0);
	}
	/* A total order: antisymmetric, equal only to itself. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = config_include_cmp(all[i], all[j]);
			int d = config_include_cmp(all[j], all[i]);

			CU_ASSERT_TRUE((c < 0 && d > 0) || (c > 0 && d < 0) || (c == 0 && i == j));
		}
}

static void test_wanted(void)
{
	CU_ASSERT_TRUE(config_include_wanted("x.conf"));
	CU_ASSERT_TRUE(config_include_wanted(".x.conf")); /* hidden files too, as Mosquitto */
	CU_ASSERT_TRUE(config_include_wanted("a.b.conf"));
	CU_ASSERT_FALSE(config_include_wanted(".conf")); /* nothing before the suffix */
	CU_ASSERT_FALSE(config_include_wanted("x.CONF"));
	CU_ASSERT_FALSE(config_include_wanted("x.conf~"));
	CU_ASSERT_FALSE(config_include_wanted("x.conf.bak"));
	CU_ASSERT_FALSE(config_include_wanted("README"));
	CU_ASSERT_FALSE(config_include_wanted("conf"));
	CU_ASSERT_FALSE(config_include_wanted(""));
}

static void test_empty_dir(void)
{
	struct config cfg, ref;

	fresh_root();
	mkdir_in("d");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_OK);
	config_defaults(&ref);
	CU_ASSERT_EQUAL(memcmp(&cfg, &ref, sizeof(cfg)), 0);
	remove_root();
}

static void test_others_ignored(void)
{
	struct config cfg;

	fresh_root();
	mkdir_in("d");
	mkdir_in("d/sub"); /* a directory not named *.conf is skipped too */
	put("d/README", "bogus 1\n");
	put("d/x.CONF", "bogus 1\n");
	put("d/x.conf.bak", "bogus 1\n");
	put("d/x.conf~", "bogus 1\n");
	put("d/.conf", "bogus 1\n");
	put("d/sub/y.conf", "bogus 1\n"); /* not recursive */
	put("d/a.conf", "max_keepalive 40\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_OK);
	CU_ASSERT_EQUAL(cfg.max_keepalive, 40);
	remove_root();
}

/* Files are read in order, each as if it stood at the include_dir line. */
static void test_sorted_and_in_place(void)
{
	struct config cfg;

	fresh_root();
	mkdir_in("d");
	put("d/b.conf", "listener 1005\nmax_keepalive 20\n");
	put("d/A.conf", "listener 1002\nmax_keepalive 10\n");
	put("d/a.conf", "listener 1003\n");
	put("d/B.conf", "listener 1004\n");
	put("d/00.conf", "listener 1001\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "listener 1000\ninclude_dir %s/d/\nlistener 1006\n", root),
	                ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.listener_count, 7);
	for (unsigned i = 0; i < 7; i++)
		CU_ASSERT_EQUAL(cfg.listeners[i].port, 1000 + i);
	CU_ASSERT_EQUAL(cfg.max_keepalive, 20); /* b.conf, the last, wins */
	/* The main file's later line wins over the included ones. */
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\nmax_keepalive 90\n", root), ST_OK);
	CU_ASSERT_EQUAL(cfg.max_keepalive, 90);
	CU_ASSERT_PTR_NULL(cfg.main_path);
	CU_ASSERT_EQUAL(cfg.include_depth, 0);
	remove_root();
}

/* mosquitto.conf(5): several include_dir lines are each read whole, in file order. */
static void test_two_dirs(void)
{
	struct config cfg;

	fresh_root();
	mkdir_in("one.d");
	mkdir_in("two.d");
	put("one.d/B.conf", "listener 1000\n");
	put("one.d/C.conf", "listener 1001\n");
	put("two.d/A.conf", "listener 1002\n");
	put("two.d/D.conf", "listener 1003\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/one.d\ninclude_dir %s/two.d\n", root, root),
	                ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.listener_count, 4);
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(cfg.listeners[i].port, 1000 + i);
	remove_root();
}

static void test_error_names_included_file(void)
{
	struct config cfg;
	char want[PATH_MAX + 64];

	fresh_root();
	mkdir_in("d");
	put("d/a.conf", "max_keepalive 10\n");
	put("d/b.conf", "# two\n\nmax_qos_typo 1\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "# one\ninclude_dir %s/d\n", root), ST_ERR_CONFIG);
	snprintf(want, sizeof(want),
	         "%s/d/b.conf:3: unknown option \"max_qos_typo\" (included "
	         "from %s/main.conf:2)",
	         root, root);
	CU_ASSERT_STRING_EQUAL(err, want);
	CU_ASSERT_EQUAL(cfg.include_depth, 0);
	/* A trailing slash does not double in the names. */
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d/\n", root), ST_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s/d/b.conf:3: ", root);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	/* A refused option in an included file: its reason, that file and line. */
	put("d/b.conf", "auth_plugin /usr/lib/x.so\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s/d/b.conf:1: auth_plugin: ", root);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT_TRUE(err_has("use password_file and acl_file"));
	remove_root();
}

static void test_bad_dirs(void)
{
	struct config cfg;
	char want[PATH_MAX + 64];

	fresh_root();
	CU_ASSERT_EQUAL(load_main(&cfg, "\ninclude_dir %s/missing\n", root), ST_ERR_CONFIG);
	snprintf(want, sizeof(want),
	         "%s/main.conf:2: include_dir: cannot open \"%s/missing\": ", root, root);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT_TRUE(err_has("No such file or directory"));
	put("plain", "max_connections 1\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/plain\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("Not a directory"));
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir\n"), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("main.conf:1: include_dir: missing value"));
	/* Unreadable: permissions bind only a user without CAP_DAC_OVERRIDE. */
	mkdir_in("locked");
	put("locked/a.conf", "max_connections 1\n");
	if (geteuid() != 0) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/locked", root);
		CU_ASSERT_EQUAL(chmod(path, 0), 0);
		CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/locked\n", root), ST_ERR_CONFIG);
		CU_ASSERT_TRUE(err_has("Permission denied"));
		CU_ASSERT_EQUAL(chmod(path, 0755), 0);
	}
	/* An unreadable included file: "included.conf: Permission denied" as root cannot be
	 * made, so a dangling symbolic link stands for it (Mosquitto: an error too). */
	mkdir_in("d");
	{
		char target[PATH_MAX], link[PATH_MAX];

		snprintf(target, sizeof(target), "%s/nowhere", root);
		snprintf(link, sizeof(link), "%s/d/x.conf", root);
		CU_ASSERT_EQUAL(symlink(target, link), 0);
	}
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("/d/x.conf"));
	CU_ASSERT_TRUE(err_has("(included from "));
	remove_root();
}

static void test_dir_named_conf(void)
{
	struct config cfg;

	fresh_root();
	mkdir_in("d");
	mkdir_in("d/sub.conf");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("main.conf:1: include_dir: "));
	CU_ASSERT_TRUE(err_has("/d/sub.conf is a directory"));
	remove_root();
}

/* Mosquitto ignores include_dir in an included file without a word; Starling refuses it. */
static void test_nested(void)
{
	struct config cfg;
	char want[PATH_MAX + 64];

	fresh_root();
	mkdir_in("d");
	mkdir_in("d2");
	put("d2/x.conf", "max_keepalive 70\n");
	{
		char text[PATH_MAX];

		snprintf(text, sizeof(text), "max_keepalive 10\n\ninclude_dir %s/d2\n", root);
		put("d/a.conf", text);
	}
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_ERR_CONFIG);
	snprintf(want, sizeof(want),
	         "%s/d/a.conf:3: include_dir is only read in the main "
	         "configuration file",
	         root);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT_TRUE(err_has("(included from "));
	remove_root();
}

/* mosquitto.conf(5): the directory must not hold the main file. */
static void test_main_file_in_dir(void)
{
	struct config cfg;
	char path[PATH_MAX];

	fresh_root();
	snprintf(path, sizeof(path), "%s/main.conf", root);
	CU_ASSERT_EQUAL(load_main(&cfg, "listener 1000\ninclude_dir %s\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("is the main configuration file"));
	CU_ASSERT_TRUE(err_has("main.conf:2: include_dir: "));
	/* Through a relative path to the same file: the same inode is recognised. */
	CU_ASSERT_EQUAL(load_main(&cfg, "listener 1000\ninclude_dir %s/.\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("is the main configuration file"));
	(void)path;
	remove_root();
}

/* "The listener above" is per file, as in Mosquitto: a line that would change another file's
 * listener is refused; global options and a file's own listeners are unaffected. */
static void test_listener_of_another_file(void)
{
	struct config cfg;

	fresh_root();
	mkdir_in("d");
	put("d/a.conf", "listener 2000\n");
	put("d/b.conf", "max_keepalive 100\nprotocol websockets\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "listener 1000\ninclude_dir %s/d\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("/d/b.conf:2: protocol: the listener above this line is defined in "
	                       "another file"));
	CU_ASSERT_TRUE(err_has("(included from "));
	/* The same line in the main file after the include_dir: refused too. */
	put("d/b.conf", "max_keepalive 100\n");
	CU_ASSERT_EQUAL(
	        load_main(&cfg, "listener 1000\ninclude_dir %s/d\nprotocol websockets\n", root),
	        ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("main.conf:3: protocol: the listener above"));
	/* ...until the main file has a listener of its own again. */
	CU_ASSERT_EQUAL(load_main(&cfg,
	                          "listener 1000\ninclude_dir %s/d\nlistener 3000\n"
	                          "protocol websockets\n",
	                          root),
	                ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.listener_count, 3);
	CU_ASSERT_EQUAL(cfg.listeners[0].protocol, CONFIG_PROTO_MQTT);
	CU_ASSERT_EQUAL(cfg.listeners[1].protocol, CONFIG_PROTO_MQTT);
	CU_ASSERT_EQUAL(cfg.listeners[2].protocol, CONFIG_PROTO_WEBSOCKETS);
	CU_ASSERT_EQUAL(cfg.max_keepalive, 100);
	CU_ASSERT_FALSE(cfg.listener_foreign);
	/* An include_dir that adds no listener leaves the main file's listener its own. */
	put("d/a.conf", "max_keepalive 200\n");
	CU_ASSERT_EQUAL(
	        load_main(&cfg, "listener 1000\ninclude_dir %s/d\nprotocol websockets\n", root),
	        ST_OK);
	CU_ASSERT_EQUAL(cfg.listeners[0].protocol, CONFIG_PROTO_WEBSOCKETS);
	/* Without any listener, an included file's listener option is the default listener's,
	 * as in the main file (and in Mosquitto). */
	put("d/a.conf", "protocol websockets\n");
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_OK);
	CU_ASSERT_TRUE(cfg.default_listener_set);
	CU_ASSERT_EQUAL(cfg.default_protocol, CONFIG_PROTO_WEBSOCKETS);
	/* per_listener_settings: security options are listener options too. */
	put("d/a.conf", "password_file /etc/passwd-x\n");
	CU_ASSERT_EQUAL(load_main(&cfg,
	                          "per_listener_settings true\nlistener 1000\n"
	                          "include_dir %s/d\n",
	                          root),
	                ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("a.conf:1: password_file: the listener above"));
	remove_root();
}

static void test_too_many_files(void)
{
	struct config cfg;

	fresh_root();
	mkdir_in("d");
	for (int i = 0; i <= CONFIG_INCLUDE_FILES_MAX; i++) {
		char name[64];

		snprintf(name, sizeof(name), "d/%04d.conf", i);
		put(name, "# nothing\n");
	}
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_ERR_CONFIG);
	CU_ASSERT_TRUE(err_has("more than 1024 .conf files"));
	{
		char last[PATH_MAX];

		snprintf(last, sizeof(last), "%s/d/1024.conf", root);
		CU_ASSERT_EQUAL(unlink(last), 0);
	}
	CU_ASSERT_EQUAL(load_main(&cfg, "include_dir %s/d\n", root), ST_OK);
	remove_root();
}

/* Parses one line as line 7 of t.conf into a default cfg. */
static int line(struct config *cfg, const char *text)
{
	config_defaults(cfg);
	err[0] = '\0';
	return config_parse_line(cfg, text, "t.conf", 7, err, sizeof(err));
}

static void expect_refused(const char *text, const char *reason)
{
	struct config cfg;

	CU_ASSERT_EQUAL(line(&cfg, text), ST_ERR_CONFIG);
	CU_ASSERT_EQUAL(strncmp(err, "t.conf:7: ", 10), 0);
	CU_ASSERT_TRUE(err_has(reason));
}

static void test_refused(void)
{
	/* Bridge options are parsed now (test_config_bridge.c); outside a block they are refused.
	 */
	static const char *const bridge[] = {"address 10.0.0.1:1883",
	                                     "addresses a:1 b:2",
	                                     "bridge_attempt_unsubscribe true",
	                                     "bridge_bind_address 10.0.0.2",
	                                     "bridge_max_packet_size 1000",
	                                     "bridge_outgoing_retain true",
	                                     "bridge_protocol_version mqttv50",
	                                     "cleansession true",
	                                     "local_cleansession true",
	                                     "keepalive_interval 60",
	                                     "idle_timeout 60",
	                                     "local_clientid x",
	                                     "local_password x",
	                                     "local_username x",
	                                     "notifications true",
	                                     "notifications_local_only true",
	                                     "notification_topic x",
	                                     "remote_clientid x",
	                                     "remote_password x",
	                                     "remote_username x",
	                                     "clientid x",
	                                     "username x",
	                                     "password x",
	                                     "restart_timeout 5 30",
	                                     "round_robin true",
	                                     "start_type automatic",
	                                     "threshold 10",
	                                     "topic # both 0",
	                                     "try_private true",
	                                     "bridge_alpn x",
	                                     "bridge_cafile x",
	                                     "bridge_capath x",
	                                     "bridge_certfile x",
	                                     "bridge_identity x",
	                                     "bridge_insecure true",
	                                     "bridge_keyfile x",
	                                     "bridge_psk x",
	                                     "bridge_require_ocsp true",
	                                     "bridge_tls_version tlsv1.2"};

	expect_refused("auth_plugin /usr/lib/mosquitto-go-auth.so",
	               "auth_plugin: Mosquitto plugins are not supported");
	expect_refused("plugin /usr/lib/mosquitto_dynamic_security.so",
	               "use password_file and acl_file");
	expect_refused("plugin_opt_config_file /etc/dynsec.json", "plugin_opt_config_file: an "
	                                                          "option of a Mosquitto plugin");
	expect_refused("auth_opt_backends files", "auth_opt_backends: an option of a Mosquitto");
	expect_refused("auth_plugin_deny_special_chars false", "applies to Mosquitto auth plugins");
	expect_refused("tls_engine pkcs11", "tls_engine: OpenSSL engines");
	expect_refused("tls_engine_kpass_sha1 0123", "give keyfile a PEM key file");
	expect_refused("tls_keyform engine", "tls_keyform: OpenSSL engines");
	expect_refused("tls_keyform der", "tls_keyform: expected pem or engine");
	expect_refused("tls_keyform", "tls_keyform: missing value");
	expect_refused("dhparamfile /etc/dh.pem", "dhparamfile: finite-field DHE is not offered");
	expect_refused("log_dest dlt", "Diagnostic Log and Trace");
	for (size_t i = 0; i < sizeof(bridge) / sizeof(bridge[0]); i++)
		expect_refused(bridge[i], "a bridge option outside a connection block");
	/* A prefix is a prefix: these are not options at all. */
	expect_refused("auth_op_x 1", "unknown option \"auth_op_x\"");
	expect_refused("plugins /x.so", "unknown option \"plugins\"");
}

static void test_accepted(void)
{
	struct config cfg, ref;

	config_defaults(&ref);
	CU_ASSERT_EQUAL(line(&cfg, "tls_keyform pem"), ST_OK);
	CU_ASSERT_EQUAL(cfg.notice_count, 0); /* honoured: nothing to say */
	CU_ASSERT_EQUAL(line(&cfg, "allow_duplicate_messages true"), ST_OK);
	CU_ASSERT_EQUAL_FATAL(cfg.notice_count, 1);
	CU_ASSERT_EQUAL(
	        strncmp(cfg.notices[0], "t.conf:7: allow_duplicate_messages: deprecated", 46), 0);
	cfg.notice_count = 0;
	memset(cfg.notices, 0, sizeof(cfg.notices));
	CU_ASSERT_EQUAL(memcmp(&cfg, &ref, sizeof(cfg)), 0); /* nothing else changed */
	CU_ASSERT_EQUAL(line(&cfg, "allow_duplicate_messages false"), ST_OK);
	expect_refused("allow_duplicate_messages maybe", "expected true or false");
	expect_refused("allow_duplicate_messages", "allow_duplicate_messages: missing value");
	expect_refused("allow_duplicate_messages true false", "unexpected extra value");
	CU_ASSERT_EQUAL(line(&cfg, "retry_interval 20"), ST_OK);
	CU_ASSERT_TRUE(strstr(cfg.notices[0], "retry_interval: no longer used") != NULL);
	expect_refused("retry_interval soon", "retry_interval: expected a decimal integer");
	CU_ASSERT_EQUAL(line(&cfg, "websockets_log_level 255"), ST_OK);
	CU_ASSERT_TRUE(strstr(cfg.notices[0], "libwebsockets") != NULL);
	CU_ASSERT_EQUAL(line(&cfg, "websockets_log_level -1"), ST_OK);
	expect_refused("websockets_log_level high", "expected a decimal integer");
	expect_refused("websockets_log_level", "missing value");
}

static void test_aliases(void)
{
	struct config cfg, direct;
	int a, b;

	CU_ASSERT_EQUAL(line(&cfg, "retained_persistence true"), ST_OK);
	CU_ASSERT_TRUE(cfg.persistence);
	CU_ASSERT_EQUAL_FATAL(cfg.notice_count, 1);
	CU_ASSERT_TRUE(strstr(cfg.notices[0], "older name of persistence") != NULL);
	expect_refused("retained_persistence maybe", "persistence: expected true or false");
	/* maximum_qos does what max_qos does, whether or not this build has max_qos. */
	a = line(&cfg, "maximum_qos 1");
	if (a != ST_OK)
		CU_ASSERT_TRUE(err_has("Mosquitto's other name of max_qos"));
	cfg.notice_count = 0;
	memset(cfg.notices, 0, sizeof(cfg.notices));
	b = line(&direct, "max_qos 1");
	CU_ASSERT_EQUAL(a == ST_OK, b == ST_OK);
	if (a == ST_OK && b == ST_OK)
		CU_ASSERT_EQUAL(memcmp(&cfg, &direct, sizeof(cfg)), 0);
}

static void test_notices_bounded(void)
{
	struct config cfg;

	config_defaults(&cfg);
	for (unsigned i = 0; i < CONFIG_NOTICES_MAX + 5; i++)
		CU_ASSERT_EQUAL(config_parse_line(&cfg, "retry_interval 10", "t.conf", i + 1, err,
		                                  sizeof(err)),
		                ST_OK);
	CU_ASSERT_EQUAL(cfg.notice_count, CONFIG_NOTICES_MAX);
	CU_ASSERT_EQUAL(cfg.notices_dropped, 5);
	CU_ASSERT_EQUAL(strncmp(cfg.notices[CONFIG_NOTICES_MAX - 1], "t.conf:16: ", 11), 0);
}

static void test_logging_options(void)
{
	struct config cfg;

	config_defaults(&cfg);
	CU_ASSERT_TRUE(cfg.connection_messages);
	CU_ASSERT_EQUAL(cfg.log_facility, -1);
	CU_ASSERT_EQUAL(line(&cfg, "connection_messages false"), ST_OK);
	CU_ASSERT_FALSE(cfg.connection_messages);
	expect_refused("connection_messages no", "connection_messages: expected true or false");
	for (int i = 0; i <= 7; i++) {
		char text[32];

		snprintf(text, sizeof(text), "log_facility %d", i);
		CU_ASSERT_EQUAL(line(&cfg, text), ST_OK);
		CU_ASSERT_EQUAL(cfg.log_facility, i);
	}
	expect_refused("log_facility 8", "log_facility: 8 is out of range (0..7)");
	expect_refused("log_facility -1", "out of range");
	expect_refused("log_facility local5", "not a decimal integer");
	expect_refused("log_facility", "missing value");
}

/*
 * Every option of mosquitto.conf(5) 2.0.11 that this branch handles (itself or by refusing it
 * with a reason) is known: none of them is an "unknown option". The limits, identity and
 * listener options of issue 16 (memory_limit, mount_point...) are not in this list; their own
 * tests cover them.
 */
static void test_every_mosquitto_option_known(void)
{
	static const char *const lines[] = {"acl_file /x",
	                                    "allow_anonymous true",
	                                    "allow_duplicate_messages true",
	                                    "auth_opt_x 1",
	                                    "auth_plugin /x",
	                                    "auth_plugin_deny_special_chars true",
	                                    "autosave_interval 10",
	                                    "autosave_on_changes true",
	                                    "connection_messages true",
	                                    "include_dir /nonexistent",
	                                    "log_dest stderr",
	                                    "log_facility 1",
	                                    "log_timestamp true",
	                                    "log_timestamp_format %s",
	                                    "log_type all",
	                                    "max_inflight_messages 1",
	                                    "max_keepalive 60",
	                                    "max_packet_size 100",
	                                    "max_queued_messages 1",
	                                    "message_size_limit 1",
	                                    "password_file /x",
	                                    "per_listener_settings true",
	                                    "persistence true",
	                                    "persistence_file x",
	                                    "persistence_location /x",
	                                    "pid_file /x",
	                                    "retain_available true",
	                                    "set_tcp_nodelay true",
	                                    "sys_interval 1",
	                                    "user root",
	                                    "bind_address 1.2.3.4",
	                                    "listener 1",
	                                    "max_topic_alias 1",
	                                    "port 1",
	                                    "protocol mqtt",
	                                    "websockets_log_level 1",
	                                    "websockets_headers_size 1",
	                                    "cafile /x",
	                                    "capath /x",
	                                    "certfile /x",
	                                    "ciphers x",
	                                    "ciphers_tls1.3 x",
	                                    "crlfile /x",
	                                    "dhparamfile /x",
	                                    "keyfile /x",
	                                    "require_certificate true",
	                                    "tls_engine x",
	                                    "tls_engine_kpass_sha1 x",
	                                    "tls_keyform pem",
	                                    "tls_version tlsv1.2",
	                                    "use_identity_as_username true",
	                                    "use_subject_as_username true",
	                                    "plugin /x",
	                                    "plugin_opt_x 1",
	                                    "retry_interval 1",
	                                    "retained_persistence true"};
	struct config cfg;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		line(&cfg, lines[i]);
		if (strstr(err, "unknown option") != NULL)
			fprintf(stderr, "\n  [%s]: %s\n", lines[i], err);
		CU_ASSERT_PTR_NULL(strstr(err, "unknown option"));
	}
}

int main(void)
{
	int rc;
	static const struct tu_test tests[] = {
	        {"include order", test_order},
	        {"which names are read", test_wanted},
	        {"empty directory", test_empty_dir},
	        {"other files ignored", test_others_ignored},
	        {"sorted, in place", test_sorted_and_in_place},
	        {"two include_dir lines", test_two_dirs},
	        {"error names the included file", test_error_names_included_file},
	        {"missing and unreadable directories", test_bad_dirs},
	        {"directory named x.conf", test_dir_named_conf},
	        {"nested include_dir", test_nested},
	        {"main file in the directory", test_main_file_in_dir},
	        {"listener of another file", test_listener_of_another_file},
	        {"too many files", test_too_many_files},
	        {"refused options", test_refused},
	        {"accepted options", test_accepted},
	        {"other names", test_aliases},
	        {"notices bounded", test_notices_bounded},
	        {"logging options", test_logging_options},
	        {"every mosquitto.conf option known", test_every_mosquitto_option_known},
	        {NULL, NULL},
	};

	tu_add_suite("config_include", tests);
	rc = tu_run_registry();
	return rc;
}
