/*
 * Unit tests of topic names and filters (src/codec/topic.c).
 *
 * The spec's own examples (MQTT 3.1.1 and 5.0 sections 4.7.1.2, 4.7.1.3, 4.7.2, 4.7.3) come
 * first, then st_topic_matches is compared with a naive model (split both strings into
 * levels, match recursively) on every pair drawn from a set of names and filters built from
 * short levels. All strings are passed from guard-page copies, without NUL terminators.
 */
#include <stdio.h>
#include <string.h>

#include "starling/topic.h"
#include "testutil.h"

static bool name_valid(const char *s)
{
	struct tu_guard g = {0};
	bool ok = st_topic_name_is_valid(tu_guard_copy(&g, s, strlen(s)), strlen(s));

	tu_guard_release(&g);
	return ok;
}

static bool filter_valid(const char *s)
{
	struct tu_guard g = {0};
	bool ok = st_topic_filter_is_valid(tu_guard_copy(&g, s, strlen(s)), strlen(s));

	tu_guard_release(&g);
	return ok;
}

static bool matches(const char *filter, const char *name)
{
	struct tu_guard gf = {0}, gn = {0};
	const uint8_t *f = tu_guard_copy(&gf, filter, strlen(filter));
	const uint8_t *n = tu_guard_copy(&gn, name, strlen(name));
	bool m = st_topic_matches(f, strlen(filter), n, strlen(name));

	tu_guard_release(&gf);
	tu_guard_release(&gn);
	return m;
}

static void test_name_validity(void)
{
	CU_ASSERT(name_valid("sport/tennis/player1"));
	CU_ASSERT(name_valid("/")); /* two empty levels */
	CU_ASSERT(name_valid("a//b"));
	CU_ASSERT(name_valid("/finance"));
	CU_ASSERT(name_valid("$SYS/broker"));
	CU_ASSERT(name_valid("Accounts payable")); /* spaces are allowed [4.7.3] */
	CU_ASSERT(name_valid("t\xc3\xabst/\xe2\x82\xac"));
	CU_ASSERT(!name_valid(""));  /* [MQTT-4.7.3-1] */
	CU_ASSERT(!name_valid("+")); /* [MQTT-4.7.1-1] */
	CU_ASSERT(!name_valid("#"));
	CU_ASSERT(!name_valid("sport/+/player1"));
	CU_ASSERT(!name_valid("sport/#"));
	CU_ASSERT(!name_valid("a+b"));
}

static void test_filter_validity(void)
{
	static const char *const valid[] = {
	        "#",
	        "+",
	        "sport/#",
	        "sport/tennis/#",
	        "sport/tennis/player1/#",
	        "+/tennis/#",
	        "sport/+/player1",
	        "/+",
	        "+/+",
	        "+/+/+",
	        "/",
	        "//",
	        "a//#",
	        "$SYS/#",
	        "$SYS/monitor/+",
	        "/finance",
	        "sport/+",
	        "+/#",
	        "a b/c",
	        "t\xc3\xabst/+",
	};
	static const char *const invalid[] = {
	        "",
	        "sport/tennis#",
	        "sport+",
	        "#/a",
	        "sport/#/ranking",
	        "a/b#",
	        "+a",
	        "a+/b",
	        "a/++",
	        "##",
	        "++",
	        "+#",
	        "#+",
	        "a/#/",
	        "#/",
	        "sport/+x",
	        "x+/y",
	        "a/b/c#",
	        "/#/",
	};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		CU_ASSERT(filter_valid(valid[i]));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		CU_ASSERT(!filter_valid(invalid[i]));
}

static void test_has_wildcard(void)
{
	CU_ASSERT(st_topic_filter_has_wildcard((const uint8_t *)"a/+", 3));
	CU_ASSERT(st_topic_filter_has_wildcard((const uint8_t *)"#", 1));
	CU_ASSERT(!st_topic_filter_has_wildcard((const uint8_t *)"a/b", 3));
	CU_ASSERT(!st_topic_filter_has_wildcard((const uint8_t *)"a/+", 2)); /* length is obeyed */
	CU_ASSERT(!st_topic_filter_has_wildcard(NULL, 0));
}

static void test_level_len(void)
{
	CU_ASSERT_EQUAL(st_topic_level_len((const uint8_t *)"sport/tennis", 12), 5);
	CU_ASSERT_EQUAL(st_topic_level_len((const uint8_t *)"sport", 5), 5);
	CU_ASSERT_EQUAL(st_topic_level_len((const uint8_t *)"/x", 2), 0);
	CU_ASSERT_EQUAL(st_topic_level_len((const uint8_t *)"ab/c", 2), 2); /* stops at len */
	CU_ASSERT_EQUAL(st_topic_level_len(NULL, 0), 0);
}

/* Section 4.7.1.2: the multi-level wildcard. */
static void test_spec_multi_level(void)
{
	CU_ASSERT(matches("sport/tennis/player1/#", "sport/tennis/player1"));
	CU_ASSERT(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
	CU_ASSERT(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
	CU_ASSERT(matches("sport/#", "sport")); /* '#' includes the parent level */
	CU_ASSERT(matches("sport/#", "sport/"));
	CU_ASSERT(matches("#", "sport"));
	CU_ASSERT(matches("#", "sport/tennis/player1"));
	CU_ASSERT(matches("#", "/"));
	CU_ASSERT(matches("#", "/finance"));
	CU_ASSERT(!matches("sport/tennis/player1/#", "sport/tennis/player2"));
	CU_ASSERT(!matches("sport/tennis/player1/#", "sport/tennis"));
	CU_ASSERT(!matches("sport/#", "sports"));
}

/* Section 4.7.1.3: the single-level wildcard. */
static void test_spec_single_level(void)
{
	CU_ASSERT(matches("sport/tennis/+", "sport/tennis/player1"));
	CU_ASSERT(matches("sport/tennis/+", "sport/tennis/player2"));
	CU_ASSERT(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
	CU_ASSERT(!matches("sport/+", "sport"));
	CU_ASSERT(matches("sport/+", "sport/")); /* '+' matches an empty level */
	CU_ASSERT(matches("+/+", "/finance"));
	CU_ASSERT(matches("/+", "/finance"));
	CU_ASSERT(!matches("+", "/finance"));
	CU_ASSERT(matches("+/tennis/#", "sport/tennis/player1"));
	CU_ASSERT(matches("+/tennis/#", "sport/tennis"));
	CU_ASSERT(matches("sport/+/player1", "sport/tennis/player1"));
	CU_ASSERT(!matches("sport/+/player1", "sport/tennis/player2"));
	CU_ASSERT(matches("+", "sport"));
	CU_ASSERT(matches("+/+", "/"));
	CU_ASSERT(matches("+/#", "a"));
	CU_ASSERT(!matches("a/+/#", "a"));
	CU_ASSERT(matches("a/+/#", "a/b"));
}

/* Section 4.7.2: topics beginning with '$'. */
static void test_spec_dollar(void)
{
	CU_ASSERT(!matches("#", "$SYS")); /* [MQTT-4.7.2-1] */
	CU_ASSERT(!matches("#", "$SYS/broker/clients"));
	CU_ASSERT(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
	CU_ASSERT(!matches("+", "$SYS"));
	CU_ASSERT(matches("$SYS/#", "$SYS/monitor/Clients"));
	CU_ASSERT(matches("$SYS/#", "$SYS"));
	CU_ASSERT(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
	CU_ASSERT(matches("$SYS/monitor/Clients", "$SYS/monitor/Clients"));
	CU_ASSERT(matches("+/$x", "a/$x")); /* '$' only matters as the first character */
	CU_ASSERT(matches("#", "a/$SYS"));
}

/* Section 4.7.3: case, spaces and leading '/' all make distinct topics. */
static void test_spec_semantics(void)
{
	CU_ASSERT(!matches("ACCOUNTS", "Accounts"));
	CU_ASSERT(matches("Accounts payable", "Accounts payable"));
	CU_ASSERT(!matches("/finance", "finance"));
	CU_ASSERT(!matches("finance", "/finance"));
	CU_ASSERT(!matches("a/b", "a/b/"));
	CU_ASSERT(!matches("a/b/", "a/b"));
	CU_ASSERT(!matches("a/b", "a/bc"));
	CU_ASSERT(!matches("a/bc", "a/b"));
	CU_ASSERT(matches("t\xc3\xabst/+", "t\xc3\xabst/\xe2\x82\xac"));
}

/* --- naive model ----------------------------------------------------------------------- */

#define MODEL_LEVELS_MAX 8

/* A string split at '/' into NUL-terminated levels. */
struct levels {
	char text[64];                    /* the string with '/' replaced by NUL */
	const char *lv[MODEL_LEVELS_MAX]; /* start of each level in text */
	int n;                            /* number of levels */
};

static void split(struct levels *l, const char *s)
{
	strcpy(l->text, s);
	l->n = 0;
	l->lv[l->n++] = l->text;
	for (char *p = l->text; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			l->lv[l->n++] = p + 1;
		}
	}
}

static bool model_match_from(const struct levels *f, int fi, const struct levels *n, int ni)
{
	if (fi < f->n && strcmp(f->lv[fi], "#") == 0)
		return true;
	if (fi == f->n || ni == n->n)
		return fi == f->n && ni == n->n;
	if (strcmp(f->lv[fi], "+") != 0 && strcmp(f->lv[fi], n->lv[ni]) != 0)
		return false;
	return model_match_from(f, fi + 1, n, ni + 1);
}

static bool model_match(const char *filter, const char *name)
{
	struct levels f, n;

	if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	split(&f, filter);
	split(&n, name);
	return model_match_from(&f, 0, &n, 0);
}

/* Every string of up to three levels drawn from alphabet, joined by '/'. */
static size_t build_strings(char out[][40], size_t cap, const char *const *alphabet, size_t k)
{
	size_t n = 0;

	for (size_t levels = 1; levels <= 3; levels++) {
		size_t combos = 1;

		for (size_t i = 0; i < levels; i++)
			combos *= k;
		for (size_t c = 0; c < combos && n < cap; c++) {
			size_t x = c;

			out[n][0] = '\0';
			for (size_t i = 0; i < levels; i++, x /= k) {
				if (i)
					strcat(out[n], "/");
				strcat(out[n], alphabet[x % k]);
			}
			n++;
		}
	}
	return n;
}

static void test_against_model(void)
{
	/* Short levels for many shapes, long ones so the eight-byte paths run too. */
	static const char *const name_alpha[] = {"a", "b", "", "$s", "sensor12", "temperature"};
	static const char *const filter_alpha[] = {"a", "b", "", "+", "#", "$s", "sensor12"};
	char names[300][40], filters[500][40];
	size_t nn = build_strings(names, 300, name_alpha, 6);
	size_t nf = build_strings(filters, 500, filter_alpha, 7);
	struct tu_guard gf = {0}, gn = {0};
	unsigned compared = 0, mismatches = 0;

	for (size_t i = 0; i < nf; i++) {
		size_t fl = strlen(filters[i]);
		const uint8_t *f = tu_guard_copy(&gf, filters[i], fl);

		if (!st_topic_filter_is_valid(f, fl))
			continue;
		for (size_t j = 0; j < nn; j++) {
			size_t nl = strlen(names[j]);
			const uint8_t *n = tu_guard_copy(&gn, names[j], nl);

			if (!st_topic_name_is_valid(n, nl))
				continue;
			compared++;
			if (st_topic_matches(f, fl, n, nl) != model_match(filters[i], names[j])) {
				fprintf(stderr, "\"%s\" vs \"%s\"\n", filters[i], names[j]);
				mismatches++;
			}
		}
	}
	tu_guard_release(&gf);
	tu_guard_release(&gn);
	CU_ASSERT(compared > 20000);
	CU_ASSERT_EQUAL(mismatches, 0);
}

static const struct tu_test tests[] = {
        {"topic name validity", test_name_validity},
        {"topic filter validity", test_filter_validity},
        {"has wildcard", test_has_wildcard},
        {"level length", test_level_len},
        {"spec 4.7.1.2 multi-level wildcard", test_spec_multi_level},
        {"spec 4.7.1.3 single-level wildcard", test_spec_single_level},
        {"spec 4.7.2 topics beginning with $", test_spec_dollar},
        {"spec 4.7.3 topic semantics", test_spec_semantics},
        {"matcher against naive model", test_against_model},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("topic", tests);
	return tu_run_registry();
}
