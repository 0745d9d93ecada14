/*
 * Unit tests of bridge/topicmap.c: mosquitto.conf(5)'s table of prefixes row by row, the
 * subscriptions of each side, rule precedence, and the two mappings against a plain model (a
 * level-by-level matcher of its own and string operations) over random rule sets read through
 * the real configuration parser and random topics.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "bridge/topicmap.h"
#include "starling/error.h"
#include "testutil.h"

static struct config cfg;
static char err[512];

/* A bridge from topic lines (NULL-terminated); the lines must all parse. */
static const struct config_bridge *bridge_of(const char *const *topics)
{
	unsigned line = 1;
	int rc;

	config_bridges_free(&cfg);
	config_defaults(&cfg);
	rc = config_parse_line(&cfg, "connection t", "m.conf", line++, err, sizeof(err));
	rc = rc ? rc : config_parse_line(&cfg, "address h", "m.conf", line++, err, sizeof(err));
	for (unsigned i = 0; topics[i] != NULL && rc == ST_OK; i++)
		rc = config_parse_line(&cfg, topics[i], "m.conf", line++, err, sizeof(err));
	rc = rc ? rc : config_bridge_finish(&cfg, err, sizeof(err));
	if (rc != ST_OK)
		fprintf(stderr, "\n  %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
	return &cfg.bridges[0];
}

/* out ? bridge_map_out : bridge_map_in of `topic`, as a string ("-1"... for the results). */
static const char *map(const struct config_bridge *b, bool out, const char *topic)
{
	static char buf[300];
	long n = (out ? bridge_map_out : bridge_map_in)(b, (const uint8_t *)topic, strlen(topic),
	                                                (uint8_t *)buf, sizeof(buf) - 1);

	if (n < 0)
		snprintf(buf, sizeof(buf), "%ld", n);
	else
		buf[n] = '\0';
	return buf;
}

/* mosquitto.conf(5)'s table, each valid row with a message each way. */
static void test_table_rows(void)
{
	const char *r1[] = {"topic pattern both 0 L/ R/", NULL};
	const char *r2[] = {"topic pattern both 0 L/ \"\"", NULL};
	const char *r3[] = {"topic pattern both 0 \"\" R/", NULL};
	const char *r4[] = {"topic pattern both 0 \"\" \"\"", NULL};
	const char *r5[] = {"topic \"\" both 0 local remote", NULL};
	const struct config_bridge *b;

	b = bridge_of(r1);
	CU_ASSERT_STRING_EQUAL(map(b, true, "L/pattern"), "R/pattern");
	CU_ASSERT_STRING_EQUAL(map(b, false, "R/pattern"), "L/pattern");
	CU_ASSERT_STRING_EQUAL(map(b, true, "pattern"), "-1");
	CU_ASSERT_STRING_EQUAL(map(b, false, "L/pattern"), "-1");
	b = bridge_of(r2);
	CU_ASSERT_STRING_EQUAL(map(b, true, "L/pattern"), "pattern");
	CU_ASSERT_STRING_EQUAL(map(b, false, "pattern"), "L/pattern");
	b = bridge_of(r3);
	CU_ASSERT_STRING_EQUAL(map(b, true, "pattern"), "R/pattern");
	CU_ASSERT_STRING_EQUAL(map(b, false, "R/pattern"), "pattern");
	b = bridge_of(r4);
	CU_ASSERT_STRING_EQUAL(map(b, true, "pattern"), "pattern");
	CU_ASSERT_STRING_EQUAL(map(b, false, "pattern"), "pattern");
	CU_ASSERT_STRING_EQUAL(map(b, false, "other"), "-1");
	b = bridge_of(r5);
	CU_ASSERT_STRING_EQUAL(map(b, true, "local"), "remote");
	CU_ASSERT_STRING_EQUAL(map(b, false, "remote"), "local");
	CU_ASSERT_STRING_EQUAL(map(b, true, "local/x"), "-1");
	CU_ASSERT_STRING_EQUAL(map(b, true, "remote"), "-1");
}

/* The man page's example: $SYS of test.mosquitto.org under a local tree. */
static void test_man_example(void)
{
	const char *t[] = {"topic clients/total in 0 test/mosquitto/org/ $SYS/broker/", NULL};
	const char *t2[] = {"topic # both 2 local/topic/ remote/topic/", NULL};
	const struct config_bridge *b = bridge_of(t);
	struct bridge_sub subs[4];

	CU_ASSERT_EQUAL_FATAL(bridge_remote_subs(b, subs, 4), 1);
	CU_ASSERT_STRING_EQUAL(subs[0].filter, "$SYS/broker/clients/total");
	CU_ASSERT_EQUAL(subs[0].len, strlen("$SYS/broker/clients/total"));
	CU_ASSERT_EQUAL(bridge_local_subs(b, subs, 4), 0);
	CU_ASSERT_STRING_EQUAL(map(b, false, "$SYS/broker/clients/total"),
	                       "test/mosquitto/org/clients/total");
	CU_ASSERT_STRING_EQUAL(map(b, true, "test/mosquitto/org/clients/total"), "-1");
	b = bridge_of(t2);
	CU_ASSERT_STRING_EQUAL(map(b, true, "local/topic/a/b"), "remote/topic/a/b");
	CU_ASSERT_STRING_EQUAL(map(b, false, "remote/topic/a/b"), "local/topic/a/b");
	/* "remote/topic/#" matches its parent "remote/topic" too, which Mosquitto does not strip
	 * (it does not start with "remote/topic/") and then prefixes. */
	CU_ASSERT_STRING_EQUAL(map(b, false, "remote/topic"), "local/topic/remote/topic");
	/* Stripping may leave nothing: no topic to publish on. */
	CU_ASSERT_STRING_EQUAL(map(b, false, "remote/topic/"), "local/topic/");
	{
		const char *t3[] = {"topic # out 0 L/ \"\"", NULL};

		b = bridge_of(t3);
		CU_ASSERT_EQUAL(bridge_map_out(b, (const uint8_t *)"L/", 2, (uint8_t[8]){0}, 8),
		                BRIDGE_MAP_EMPTY);
	}
}

static void test_subscriptions(void)
{
	const char *t[] = {"topic a out 1",         "topic b in 2",          "topic c both 1 L/ R/",
	                   "topic a out 2",         "topic d out 0 \"\" R/", "topic d in 1 \"\" R/",
	                   "topic e out 1 \"\" x/", "topic x/e in 0",        NULL};
	const struct config_bridge *b = bridge_of(t);
	struct bridge_sub s[8];
	unsigned n;

	n = bridge_local_subs(b, s, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	CU_ASSERT_STRING_EQUAL(s[0].filter, "a");
	CU_ASSERT_EQUAL(s[0].qos, 2); /* the later rule's QoS */
	CU_ASSERT_STRING_EQUAL(s[1].filter, "L/c");
	CU_ASSERT_EQUAL(s[1].qos, 1);
	CU_ASSERT_STRING_EQUAL(s[2].filter, "d");
	CU_ASSERT_STRING_EQUAL(s[3].filter, "e");
	n = bridge_remote_subs(b, s, 8);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	CU_ASSERT_STRING_EQUAL(s[0].filter, "b");
	CU_ASSERT_EQUAL(s[0].qos, 2);
	CU_ASSERT_STRING_EQUAL(s[1].filter, "R/c");
	CU_ASSERT_STRING_EQUAL(s[2].filter, "R/d");
	CU_ASSERT_EQUAL(s[2].qos, 1);
	CU_ASSERT_STRING_EQUAL(s[3].filter, "x/e");
	/* Out-only remote filters to unsubscribe from: "a" (once), not "R/d" nor "x/e", which
	 * in rules subscribe to. */
	n = bridge_remote_unsubs(b, s, 8);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(s[0].filter, "a");
	/* Bounded by max. */
	CU_ASSERT_EQUAL(bridge_local_subs(b, s, 2), 2);
	CU_ASSERT_EQUAL(bridge_remote_subs(b, s, 0), 0);
}

static void test_precedence(void)
{
	const char *t[] = {"topic # out",           "topic # out 0 a/ b/", "topic x out 0 a/ c/",
	                   "topic # in 0 in/ \"\"", "topic $SYS/# in",     NULL};
	const struct config_bridge *b = bridge_of(t);
	uint8_t small[4];

	/* A rule without prefixes renames nothing: the first renaming rule that matches wins. */
	CU_ASSERT_STRING_EQUAL(map(b, true, "a/x"), "b/x");
	CU_ASSERT_STRING_EQUAL(map(b, true, "z"), "z");
	/* '#' does not match a '$' topic. */
	CU_ASSERT_STRING_EQUAL(map(b, true, "$SYS/x"), "-1");
	CU_ASSERT_STRING_EQUAL(map(b, false, "$SYS/x"), "$SYS/x");
	CU_ASSERT_STRING_EQUAL(map(b, false, "q"), "in/q");
	CU_ASSERT_EQUAL(bridge_map_out(b, (const uint8_t *)"a/xyz", 5, small, sizeof(small)),
	                BRIDGE_MAP_TOO_LONG);
	CU_ASSERT_EQUAL(bridge_map_out(b, (const uint8_t *)"a/xy", 4, small, sizeof(small)), 4);
}

/* --- the model ------------------------------------------------------------------------------ */

/* Level by level, as MQTT 4.7 says, independent of the codec's matcher. */
static bool model_match(const char *f, const char *t)
{
	if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	for (;;) {
		const char *fe = strchr(f, '/'), *te = strchr(t, '/');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f),
		       tl = te ? (size_t)(te - t) : strlen(t);

		if (fl == 1 && f[0] == '#')
			return true;
		if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
			return false;
		if (fe == NULL || te == NULL)
			/* "a/#" matches "a": the filter's rest is exactly "/#". */
			return fe == NULL ? te == NULL : strcmp(fe, "/#") == 0;
		f = fe + 1;
		t = te + 1;
	}
}

static const char *model_map(const struct config_bridge *b, bool out, const char *topic)
{
	static char buf[600];
	bool unchanged = false;

	for (unsigned i = 0; i < b->topic_count; i++) {
		const struct config_bridge_topic *r = &b->topics[i];
		const char *from = out ? r->local_prefix : r->remote_prefix;
		const char *to = out ? r->remote_prefix : r->local_prefix;
		const char *rest = topic;

		if (!(r->dir & (out ? CONFIG_BRIDGE_OUT : CONFIG_BRIDGE_IN)) ||
		    !model_match(out ? r->local_topic : r->remote_topic, topic))
			continue;
		if (*from == '\0' && *to == '\0') {
			unchanged = true;
			continue;
		}
		if (strncmp(topic, from, strlen(from)) == 0)
			rest = topic + strlen(from);
		snprintf(buf, sizeof(buf), "%s%s", to, rest);
		return buf[0] == '\0' ? "-3" : buf;
	}
	if (!unchanged)
		return "-1";
	snprintf(buf, sizeof(buf), "%s", topic);
	return buf;
}

static const char *const prefixes[] = {"\"\"", "L/", "R/", "x", "a/", "pre/fix/", "$p/"};
#define NPREFIXES (sizeof(prefixes) / sizeof(prefixes[0]))

/* A random rule line; some are invalid (the parser refuses them, and they are skipped). */
static void random_rule(char *line, size_t size)
{
	static const char *const dirs[] = {"in", "out", "both"};
	char pat[40];

	if (tu_rand(8) == 0)
		strcpy(pat, "\"\"");
	else
		tu_random_topic(pat, true);
	snprintf(line, size, "topic %s %s %u %s %s", pat, dirs[tu_rand(3)], tu_rand(3),
	         prefixes[tu_rand(NPREFIXES)], prefixes[tu_rand(NPREFIXES)]);
}

/* A random topic name, under one of the prefixes half the time. */
static void random_name(char *s)
{
	char t[40];
	const char *p = prefixes[tu_rand(NPREFIXES)];

	tu_random_topic(t, false);
	if (tu_rand(2) == 0 || strcmp(p, "\"\"") == 0)
		strcpy(s, t);
	else
		sprintf(s, "%s%s", p, tu_rand(4) == 0 ? "" : t);
}

/* A topic name that a filter matches (wildcards filled with random levels), mostly. */
static void instantiate(char *s, const char *f)
{
	static const char *const levels[] = {"a", "b", ""};
	size_t n = 0;

	for (; *f != '\0'; f++) {
		if (*f == '+') {
			n += (size_t)sprintf(s + n, "%s", levels[tu_rand(3)]);
		} else if (*f == '#') {
			if (n > 0 && tu_rand(3) == 0)
				n--; /* '#' matches the parent level too: drop the '/' */
			else
				n += (size_t)sprintf(s + n, "%s%s", levels[tu_rand(3)],
				                     tu_rand(2) ? "/b" : "");
		} else {
			s[n++] = *f;
		}
	}
	s[n] = '\0';
	if (n == 0)
		strcpy(s, "a");
}

static void test_model(void)
{
	unsigned checked = 0, matched = 0;

	srand(12);
	for (int round = 0; round < 400; round++) {
		unsigned nrules = 1 + tu_rand(5), line = 3;
		int rc;

		config_bridges_free(&cfg);
		config_defaults(&cfg);
		rc = config_parse_line(&cfg, "connection m", "m.conf", 1, err, sizeof(err));
		rc = rc ? rc : config_parse_line(&cfg, "address h", "m.conf", 2, err, sizeof(err));
		CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
		for (unsigned i = 0; i < nrules; i++) {
			char text[128];

			random_rule(text, sizeof(text));
			(void)config_parse_line(&cfg, text, "m.conf", line++, err, sizeof(err));
		}
		if (cfg.bridges[0].topic_count == 0)
			continue;
		CU_ASSERT_EQUAL_FATAL(config_bridge_finish(&cfg, err, sizeof(err)), ST_OK);
		for (int k = 0; k < 50; k++) {
			char topic[64], want[600];
			bool out = tu_rand(2) == 0;

			if (tu_rand(2) == 0) {
				const struct config_bridge_topic *r =
				        &cfg.bridges[0].topics[tu_rand(cfg.bridges[0].topic_count)];

				instantiate(topic, tu_rand(2) ? r->local_topic : r->remote_topic);
			} else {
				random_name(topic);
			}
			strcpy(want, model_map(&cfg.bridges[0], out, topic));
			if (strcmp(map(&cfg.bridges[0], out, topic), want) != 0) {
				fprintf(stderr, "\n  %s [%s]: got [%s], model [%s]\n",
				        out ? "out" : "in", topic, map(&cfg.bridges[0], out, topic),
				        want);
				for (unsigned i = 0; i < cfg.bridges[0].topic_count; i++)
					fprintf(stderr, "    rule %s %d %s %s\n",
					        cfg.bridges[0].topics[i].pattern,
					        cfg.bridges[0].topics[i].dir,
					        cfg.bridges[0].topics[i].local_prefix,
					        cfg.bridges[0].topics[i].remote_prefix);
				CU_FAIL("mapping differs from the model");
				return;
			}
			checked++;
			matched += want[0] != '-';
		}
	}
	/* The generator must exercise both outcomes. */
	printf("(%u mapped of %u) ", matched, checked);
	CU_ASSERT_TRUE(checked > 5000);
	CU_ASSERT_TRUE(matched > checked / 10);
	CU_ASSERT_TRUE(matched < checked - checked / 10);
}

int main(void)
{
	int rc;
	static const struct tu_test tests[] = {
	        {"mosquitto.conf(5) table rows", test_table_rows},
	        {"man page examples", test_man_example},
	        {"subscriptions", test_subscriptions},
	        {"precedence", test_precedence},
	        {"model on random rules and topics", test_model},
	        {NULL, NULL},
	};

	tu_add_suite("bridge_topicmap", tests);
	rc = tu_run_registry();
	config_bridges_free(&cfg);
	return rc;
}
