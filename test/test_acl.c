/*
 * ACLs (src/auth/acl.c): the parser (every rule kind, errors naming the line), and the fast
 * path against a naive model. The model is Mosquitto 2.0.11's check as its source walks it:
 * per check, the client's user block (or the anonymous one), denies first, then the patterns
 * with %c and %u substituted afresh. Random rule sets, clients and topics are compared, and
 * acl_classify() is checked against every topic of a small universe: ACL_ALL must mean every
 * matching topic readable, ACL_NONE none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "starling/error.h"
#include "starling/topic.h"
#include "testutil.h"

static char err[512];

static struct acl *parse_ok(const char *text)
{
	struct acl *acl = NULL;
	int rc = acl_parse("acl", text, strlen(text), &acl, err, sizeof(err));

	if (rc != ST_OK)
		fprintf(stderr, "\n  parse failed: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
	return acl;
}

static void parse_bad(const char *text, const char *want)
{
	struct acl *acl = NULL;
	int rc = acl_parse("acl", text, strlen(text), &acl, err, sizeof(err));

	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(acl);
	if (rc != ST_ERR_CONFIG || !strstr(err, want))
		fprintf(stderr, "\n  [%s]: rc %d err [%s], wanted [%s]\n", text, rc, err, want);
}

static bool can(const struct acl *acl, const char *user, const char *id, const char *topic,
                unsigned access)
{
	struct acl_client *c = acl_client_new(acl, (const uint8_t *)user, user ? strlen(user) : 0,
	                                      (const uint8_t *)id, strlen(id));
	bool r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	r = acl_check(c, (const uint8_t *)topic, strlen(topic), access);
	acl_client_free(c);
	return r;
}

static void test_parse_and_rules(void)
{
	struct acl *acl = parse_ok("# anonymous\n"
	                           "topic read public/#\n"
	                           "topic  open\n"
	                           "\n"
	                           "user alice\n"
	                           "topic readwrite alice/#\n"
	                           "topic deny alice/secret\n"
	                           "topic write inbox/with space\n"
	                           "user bob\n"
	                           "topic read #\n"
	                           "topic read $SYS/#\n"
	                           "pattern write devices/%c/out\n"
	                           "pattern read users/%u/#\n"
	                           "pattern deny users/%u/private\n");

	CU_ASSERT_TRUE(can(acl, NULL, "x", "public/a", ACL_READ));
	CU_ASSERT_FALSE(can(acl, NULL, "x", "public/a", ACL_WRITE));
	CU_ASSERT_TRUE(can(acl, NULL, "x", "open", ACL_WRITE)); /* no access word: readwrite */
	CU_ASSERT_TRUE(can(acl, "alice", "x", "alice/a", ACL_WRITE));
	CU_ASSERT_FALSE(can(acl, "alice", "x", "alice/secret", ACL_READ));
	CU_ASSERT_TRUE(can(acl, "alice", "x", "inbox/with space", ACL_WRITE));
	CU_ASSERT_FALSE(can(acl, "alice", "x", "public/a", ACL_READ)); /* not anonymous */
	CU_ASSERT_TRUE(can(acl, "bob", "x", "anything/at/all", ACL_READ));
	CU_ASSERT_TRUE(can(acl, "bob", "x", "$SYS/broker/uptime", ACL_READ));
	CU_ASSERT_FALSE(can(acl, "alice", "x", "$SYS/broker/uptime", ACL_READ));
	/* Patterns, for everyone; %u skipped without a user name. */
	CU_ASSERT_TRUE(can(acl, NULL, "dev1", "devices/dev1/out", ACL_WRITE));
	CU_ASSERT_FALSE(can(acl, NULL, "dev1", "devices/dev2/out", ACL_WRITE));
	CU_ASSERT_TRUE(can(acl, "carol", "c", "users/carol/x", ACL_READ));
	CU_ASSERT_FALSE(can(acl, "carol", "c", "users/carol/private", ACL_READ));
	CU_ASSERT_FALSE(can(acl, "carol", "c", "users/dave/x", ACL_READ));
	/* A user without a block has patterns only; a dangerous id gets none. */
	CU_ASSERT_FALSE(can(acl, "carol", "c", "public/a", ACL_READ));
	CU_ASSERT_FALSE(can(acl, NULL, "d+", "devices/d+/out", ACL_WRITE));
	CU_ASSERT_FALSE(can(acl, "c#", "c", "users/c#/x", ACL_READ));
	/* Topic rules decide before patterns: a topic rule allowing wins over a pattern deny. */
	CU_ASSERT_TRUE(can(acl, "bob", "x", "users/bob/private", ACL_READ));
	acl_free(acl);

	acl = parse_ok("user a\ntopic read x\nuser b\ntopic read y\nuser a\ntopic read z\n");
	CU_ASSERT_TRUE(can(acl, "a", "i", "z", ACL_READ)); /* blocks of one user merge */
	CU_ASSERT_TRUE(can(acl, "a", "i", "x", ACL_READ));
	CU_ASSERT_FALSE(can(acl, "b", "i", "x", ACL_READ));
	acl_free(acl);
	acl = parse_ok("topic read\n"); /* Mosquitto: the topic "read", readwrite */
	CU_ASSERT_TRUE(can(acl, NULL, "i", "read", ACL_WRITE));
	acl_free(acl);

	parse_bad("topic\n", "acl:1: missing topic");
	parse_bad("\ntopic reed a/b\n", "acl:2: invalid access type \"reed\"");
	parse_bad("topic read a/#/b\n", "acl:1: invalid topic filter");
	parse_bad("pattern read a+\n", "acl:1: invalid topic filter");
	parse_bad("user\n", "acl:1: missing user name");
	parse_bad("group x\n", "acl:1: expected topic, user or pattern");
}

static void test_filter_relations(void)
{
	static const struct {
		const char *a, *f;
		bool covers, meets;
	} cases[] = {
	        {"#", "a/b", true, true},           {"#", "$SYS/x", false, false},
	        {"$SYS/#", "$SYS/x/+", true, true}, {"$SYS/#", "#", false, false},
	        {"+/b", "a/b", true, true},         {"a/b", "+/b", false, true},
	        {"a/#", "a", true, true},           {"a", "a/#", false, true},
	        {"a/+", "a", false, false},         {"a/+", "a/#", false, true},
	        {"a/b", "a/c", false, false},       {"+", "$x", false, false},
	        {"a/+/c", "a/b/+", false, true},    {"a/+/#", "a/b/c/d", true, true},
	        {"a//b", "a/+/b", false, true},     {"+/+", "a", false, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *a = (const uint8_t *)cases[i].a, *f = (const uint8_t *)cases[i].f;
		bool c = acl_filter_covers(a, strlen(cases[i].a), f, strlen(cases[i].f));
		bool m = acl_filter_intersects(a, strlen(cases[i].a), f, strlen(cases[i].f));

		CU_ASSERT_EQUAL(c, cases[i].covers);
		CU_ASSERT_EQUAL(m, cases[i].meets);
		if (c != cases[i].covers || m != cases[i].meets)
			fprintf(stderr, "\n  %s vs %s: covers %d meets %d\n", cases[i].a,
			        cases[i].f, c, m);
	}
}

/* --- the naive model: Mosquitto's walk, substituting per check ------------------------------ */

static bool model_list(const struct acl_list *l, const char *topic, unsigned access, int *res)
{
	for (uint32_t i = 0; i < l->n; i++) {
		const struct acl_rule *r = &l->rules[i];

		if (r->access == ACL_DENY &&
		    st_topic_matches(r->filter, r->len, (const uint8_t *)topic, strlen(topic)))
			return *res = 0, true;
	}
	for (uint32_t i = 0; i < l->n; i++) {
		const struct acl_rule *r = &l->rules[i];

		if ((r->access & access) &&
		    st_topic_matches(r->filter, r->len, (const uint8_t *)topic, strlen(topic)))
			return *res = 1, true;
	}
	return false;
}

static bool model(const struct acl *acl, const char *user, const char *id, const char *topic,
                  unsigned access)
{
	const struct acl_list *mine =
	        acl_user_rules(acl, (const uint8_t *)user, user ? strlen(user) : 0);
	int res;

	if (mine && model_list(mine, topic, access, &res))
		return res;
	if (acl->pattern.n == 0)
		return false;
	if ((user && strpbrk(user, "+#")) || strpbrk(id, "+#"))
		return false;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < acl->pattern.n; i++) {
			const struct acl_rule *r = &acl->pattern.rules[i];
			char buf[256];
			size_t o = 0;

			if ((pass == 0) != (r->access == ACL_DENY))
				continue;
			if (pass == 1 && !(r->access & access))
				continue;
			if (r->uses_user && !user)
				continue;
			for (size_t k = 0; k < r->len; k++) {
				if (r->filter[k] == '%' && k + 1 < r->len &&
				    (r->filter[k + 1] == 'c' ||
				     (r->filter[k + 1] == 'u' && user))) {
					const char *s = r->filter[++k] == 'c' ? id : user;

					memcpy(buf + o, s, strlen(s));
					o += strlen(s);
				} else {
					buf[o++] = (char)r->filter[k];
				}
			}
			if (st_topic_filter_is_valid((const uint8_t *)buf, o) &&
			    st_topic_matches((const uint8_t *)buf, o, (const uint8_t *)topic,
			                     strlen(topic)))
				return pass == 1;
		}
	}
	return false;
}

static const char *const levels[] = {"a", "b", "$SYS", "", "u1", "c1"};
#define NLEVELS 6

static void random_filter(char *buf, bool pattern, bool topic_only)
{
	unsigned n = 1 + tu_rand(3);
	size_t o = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned k = tu_rand(NLEVELS + (topic_only ? 0 : 2) + (pattern ? 2 : 0));
		const char *l = k < NLEVELS        ? levels[k]
		                : topic_only       ? "a"
		                : k == NLEVELS     ? "+"
		                : k == NLEVELS + 1 ? (i == n - 1 ? "#" : "+")
		                : k == NLEVELS + 2 ? "%c"
		                                   : "%u";

		if (i > 0 && k < NLEVELS && levels[k][0] == '$')
			l = "a"; /* '$' only leads */
		if (i)
			buf[o++] = '/';
		memcpy(buf + o, l, strlen(l));
		o += strlen(l);
	}
	buf[o] = '\0';
}

/* Every topic of up to three levels over `levels` (the universe classify is checked on). */
static char universe[400][24];
static unsigned nuniverse;

static void build_universe(void)
{
	for (unsigned a = 0; a < NLEVELS; a++) {
		snprintf(universe[nuniverse++], 24, "%s", levels[a]);
		for (unsigned b = 0; b < NLEVELS; b++) {
			if (levels[b][0] == '$')
				continue;
			snprintf(universe[nuniverse++], 24, "%s/%s", levels[a], levels[b]);
			for (unsigned c = 0; c < NLEVELS; c++)
				if (levels[c][0] != '$')
					snprintf(universe[nuniverse++], 24, "%s/%s/%s", levels[a],
					         levels[b], levels[c]);
		}
	}
}

static void test_model(void)
{
	static const char *const access_words[] = {"read", "write", "readwrite", "deny"};
	static const char *const users[] = {NULL, "u1", "u2", "u+"};
	static const char *const ids[] = {"c1", "c2", "c#"};
	unsigned mismatches = 0, classified[3] = {0};

	build_universe();
	for (int round = 0; round < 300; round++) {
		char text[4096], f[64];
		size_t o = 0;
		struct acl *acl;
		unsigned nrules = tu_rand(8);

		for (unsigned i = 0; i < nrules; i++) {
			unsigned kind = tu_rand(4); /* topic, user line, pattern */

			if (kind == 1) {
				o += (size_t)snprintf(text + o, sizeof(text) - o, "user u%u\n",
				                      1 + tu_rand(2));
				continue;
			}
			random_filter(f, kind == 2, false);
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s %s %s\n",
			                      kind == 2 ? "pattern" : "topic",
			                      access_words[tu_rand(4)], f);
		}
		text[o] = '\0';
		acl = parse_ok(text);
		for (int q = 0; q < 40; q++) {
			const char *user = users[tu_rand(4)], *id = ids[tu_rand(3)];
			struct acl_client *c =
			        acl_client_new(acl, (const uint8_t *)user, user ? strlen(user) : 0,
			                       (const uint8_t *)id, strlen(id));
			enum acl_class cls;

			CU_ASSERT_PTR_NOT_NULL_FATAL(c);
			for (unsigned t = 0; t < nuniverse; t += 1 + tu_rand(7)) {
				unsigned acc = 1 + tu_rand(2);
				bool want = model(acl, user, id, universe[t], acc);
				bool got = acl_check(c, (const uint8_t *)universe[t],
				                     strlen(universe[t]), acc);

				if (want != got && mismatches++ < 5)
					fprintf(stderr,
					        "\n  check %s %s %s %u: model %d fast %d\n%s",
					        user ? user : "-", id, universe[t], acc, want, got,
					        text);
			}
			random_filter(f, false, false);
			cls = acl_classify(c, (const uint8_t *)f, strlen(f));
			classified[cls]++;
			for (unsigned t = 0; t < nuniverse; t++) {
				bool m = st_topic_matches((const uint8_t *)f, strlen(f),
				                          (const uint8_t *)universe[t],
				                          strlen(universe[t]));
				bool r = model(acl, user, id, universe[t], ACL_READ);

				if (m && ((cls == ACL_ALL && !r) || (cls == ACL_NONE && r)) &&
				    mismatches++ < 5)
					fprintf(stderr,
					        "\n  classify %s %s %s = %d, but %s is %d\n%s",
					        user ? user : "-", id, f, cls, universe[t], r,
					        text);
			}
			acl_client_free(c);
		}
		acl_free(acl);
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	/* The classification must decide often, or the fast path is not one. */
	CU_ASSERT_TRUE(classified[ACL_ALL] > 200 && classified[ACL_NONE] > 200);
	printf(" (none %u, some %u, all %u)", classified[0], classified[1], classified[2]);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"parse and rules", test_parse_and_rules},
	        {"filter relations", test_filter_relations},
	        {"fast path against the naive model", test_model},
	        {NULL, NULL},
	};

	srand(11);
	tu_add_suite("acl", tests);
	return tu_run_registry();
}
