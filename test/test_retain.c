/*
 * Unit and property tests of the retained-message store (src/index/retain.c).
 *
 * The unit cases cover set, replace, delete and get with the ownership hand-back of the old
 * value, matching with exact levels, '+', '#' (which includes the parent level) and '$'
 * topics, pruning of empty nodes, release of every value on free, and topics deep enough
 * (20,000 levels) that a recursive walk would overflow the stack. The property test applies the
 * same random sets and deletes to the store and to a plain list of (topic, value) and checks
 * that random filters match the same values in both, the list through st_topic_matches.
 * Allocation failures are injected into sets (test/failalloc.h): a failed set changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "starling/error.h"
#include "starling/topic.h"
#include "index/retain.h"
#include "failalloc.h"
#include "testutil.h"

/* The most values one match collects. */
#define GOT_MAX 8192

/* The values one retain_match reported. */
struct got {
	void *v[GOT_MAX]; /* in report order, then sorted */
	size_t n;         /* values reported */
};

static void collect(void *ctx, void *value)
{
	struct got *g = ctx;

	CU_ASSERT_FATAL(g->n < GOT_MAX);
	CU_ASSERT_PTR_NOT_NULL(value);
	g->v[g->n++] = value;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void *val(unsigned i)
{
	return (void *)(uintptr_t)(0x1000 + 16 * (uintptr_t)i);
}

/* Sets topic to value and returns the old value. */
static void *set(struct retain *rs, const char *topic, void *value)
{
	void *old = val(999999);

	CU_ASSERT_FATAL(st_topic_name_is_valid((const uint8_t *)topic, strlen(topic)));
	CU_ASSERT_EQUAL(retain_set(rs, (const uint8_t *)topic, strlen(topic), value, &old), ST_OK);
	return old;
}

static void *get(const struct retain *rs, const char *topic)
{
	return retain_get(rs, (const uint8_t *)topic, strlen(topic));
}

/*
 * Matches filter, placed right before an unreadable page so that a read past its end faults,
 * and returns the values sorted; g is large, so static rather than on the stack.
 */
static struct got *match_len(const struct retain *rs, const char *filter, size_t len)
{
	static struct got g;
	static struct tu_guard guard;
	const uint8_t *f = tu_guard_copy(&guard, filter, len);

	CU_ASSERT_FATAL(st_topic_filter_is_valid(f, len));
	g.n = 0;
	retain_match(rs, f, len, collect, &g);
	qsort(g.v, g.n, sizeof(g.v[0]), ptr_cmp);
	return &g;
}

static size_t nmatch(const struct retain *rs, const char *filter)
{
	return match_len(rs, filter, strlen(filter))->n;
}

static void test_set_get_delete(void)
{
	struct retain *rs = retain_new();

	CU_ASSERT_FATAL(rs != NULL);
	CU_ASSERT_PTR_NULL(set(rs, "a/b", val(1)));
	CU_ASSERT_PTR_EQUAL(set(rs, "a/b", val(2)), val(1));
	CU_ASSERT_PTR_NULL(set(rs, "a", val(3)));
	CU_ASSERT_EQUAL(retain_count(rs), 2);
	CU_ASSERT_PTR_EQUAL(get(rs, "a/b"), val(2));
	CU_ASSERT_PTR_EQUAL(get(rs, "a"), val(3));
	CU_ASSERT_PTR_NULL(get(rs, "a/b/c"));
	CU_ASSERT_PTR_NULL(get(rs, "a/"));
	CU_ASSERT_PTR_NULL(get(rs, "b"));
	/* Deleting hands back the value; deleting what is not there is not an error. */
	CU_ASSERT_PTR_EQUAL(set(rs, "a/b", NULL), val(2));
	CU_ASSERT_PTR_NULL(set(rs, "a/b", NULL));
	CU_ASSERT_PTR_NULL(set(rs, "x/y/z", NULL));
	CU_ASSERT_PTR_NULL(get(rs, "a/b"));
	CU_ASSERT_EQUAL(retain_count(rs), 1);
	CU_ASSERT_EQUAL(retain_node_count(rs), 1);
	CU_ASSERT_PTR_EQUAL(set(rs, "a", NULL), val(3));
	CU_ASSERT_EQUAL(retain_count(rs), 0);
	CU_ASSERT_EQUAL(retain_node_count(rs), 0);
	retain_free(rs, NULL, NULL);
	retain_free(NULL, NULL, NULL);
}

static void test_pruning(void)
{
	struct retain *rs = retain_new();

	CU_ASSERT_FATAL(rs != NULL);
	set(rs, "a/b/c/d", val(1));
	CU_ASSERT_EQUAL(retain_node_count(rs), 4);
	set(rs, "a/b", val(2));
	set(rs, "a/x", val(3));
	CU_ASSERT_EQUAL(retain_node_count(rs), 5);
	set(rs, "a/b/c/d", NULL);
	/* "a/b" keeps its value: only "c" and "d" go. */
	CU_ASSERT_EQUAL(retain_node_count(rs), 3);
	set(rs, "a/b", NULL);
	CU_ASSERT_EQUAL(retain_node_count(rs), 2);
	set(rs, "a/x", NULL);
	CU_ASSERT_EQUAL(retain_node_count(rs), 0);
	/* Empty levels are levels: "//" is three nodes. */
	set(rs, "//", val(4));
	CU_ASSERT_EQUAL(retain_node_count(rs), 3);
	set(rs, "//", NULL);
	CU_ASSERT_EQUAL(retain_node_count(rs), 0);
	retain_free(rs, NULL, NULL);
}

static void test_match(void)
{
	struct retain *rs = retain_new();
	struct got *g;

	CU_ASSERT_FATAL(rs != NULL);
	set(rs, "sport", val(1));
	set(rs, "sport/tennis", val(2));
	set(rs, "sport/tennis/player1", val(3));
	set(rs, "sport/golf", val(4));
	set(rs, "/", val(5));
	set(rs, "a//b", val(6));
	set(rs, "$SYS/uptime", val(7));
	set(rs, "$SYS", val(8));
	set(rs, "x/$y", val(9));

	CU_ASSERT_EQUAL(nmatch(rs, "sport/tennis"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "sport/x"), 0);
	/* "sport/#" matches "sport" itself [MQTT spec 4.7.1.2]. */
	g = match_len(rs, "sport/#", 7);
	CU_ASSERT_EQUAL_FATAL(g->n, 4);
	CU_ASSERT_PTR_EQUAL(g->v[0], val(1));
	CU_ASSERT_PTR_EQUAL(g->v[3], val(4));
	CU_ASSERT_EQUAL(nmatch(rs, "sport/tennis/#"), 2);
	CU_ASSERT_EQUAL(nmatch(rs, "sport/+"), 2);
	CU_ASSERT_EQUAL(nmatch(rs, "sport/+/+"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "sport/+/#"), 3);
	CU_ASSERT_EQUAL(nmatch(rs, "+/tennis/+"), 1);
	/* [MQTT-4.7.2-1]: first-level wildcards skip "$SYS" topics; "$SYS/#" names them. */
	CU_ASSERT_EQUAL(nmatch(rs, "#"), 7);
	CU_ASSERT_EQUAL(nmatch(rs, "+"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "+/uptime"), 0);
	CU_ASSERT_EQUAL(nmatch(rs, "+/#"), 7);
	CU_ASSERT_EQUAL(nmatch(rs, "$SYS/#"), 2);
	CU_ASSERT_EQUAL(nmatch(rs, "$SYS/+"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "x/+"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "x/#"), 1);
	/* Empty levels. */
	CU_ASSERT_EQUAL(nmatch(rs, "+/+"), 4);
	CU_ASSERT_EQUAL(nmatch(rs, "/"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "/#"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "a/+/b"), 1);
	CU_ASSERT_EQUAL(nmatch(rs, "a/b"), 0);
	/* Lengths are honoured: "sport/tennis/player1" cut to "sport/t". */
	CU_ASSERT_EQUAL(match_len(rs, "sport/tennis/player1", 7)->n, 0);
	CU_ASSERT_EQUAL(match_len(rs, "sport/tennis/player1", 12)->n, 1);
	retain_free(rs, NULL, NULL);
}

static void count_release(void *ctx, void *value)
{
	size_t *n = ctx;

	CU_ASSERT_PTR_NOT_NULL(value);
	(*n)++;
}

static void test_free_releases(void)
{
	struct retain *rs = retain_new();
	size_t released = 0;
	char topic[32];
	unsigned i;

	CU_ASSERT_FATAL(rs != NULL);
	for (i = 0; i < 1000; i++) {
		snprintf(topic, sizeof(topic), "t/%u/%u", i % 7, i);
		set(rs, topic, val(i));
	}
	set(rs, "t/3/3", NULL);
	CU_ASSERT_EQUAL(retain_count(rs), 999);
	retain_free(rs, count_release, &released);
	CU_ASSERT_EQUAL(released, 999);
}

/* A string of `levels` levels, each `level`, joined by '/'; the caller frees it. */
static char *repeat_levels(const char *level, size_t levels, size_t *len)
{
	size_t ll = strlen(level), i;
	char *s = malloc(levels * (ll + 1));

	CU_ASSERT_FATAL(s != NULL);
	*len = 0;
	for (i = 0; i < levels; i++) {
		memcpy(s + *len, level, ll);
		*len += ll;
		if (i + 1 < levels)
			s[(*len)++] = '/';
	}
	return s;
}

static void test_deep(void)
{
	size_t tlen, plen;
	char *topic = repeat_levels("a", 20000, &tlen);
	char *pluses = repeat_levels("+", 20000, &plen);
	struct retain *rs = retain_new();
	void *old;

	CU_ASSERT_FATAL(rs != NULL);
	CU_ASSERT_EQUAL(retain_set(rs, (uint8_t *)topic, tlen, val(1), &old), ST_OK);
	CU_ASSERT_EQUAL(retain_set(rs, (uint8_t *)topic, tlen - 2, val(2), &old), ST_OK);
	CU_ASSERT_EQUAL(retain_node_count(rs), 20000);
	CU_ASSERT_PTR_EQUAL(retain_get(rs, (uint8_t *)topic, tlen), val(1));
	CU_ASSERT_EQUAL(nmatch(rs, "#"), 2);
	CU_ASSERT_EQUAL(nmatch(rs, "a/a/#"), 2);
	CU_ASSERT_EQUAL(match_len(rs, pluses, plen)->n, 1);
	CU_ASSERT_EQUAL(match_len(rs, pluses, plen - 2)->n, 1);
	CU_ASSERT_EQUAL(match_len(rs, topic, tlen)->n, 1);
	CU_ASSERT_EQUAL(retain_set(rs, (uint8_t *)topic, tlen, NULL, &old), ST_OK);
	CU_ASSERT_PTR_EQUAL(old, val(1));
	CU_ASSERT_EQUAL(retain_node_count(rs), 19999);
	/* The remaining 19,999-level path is left for retain_free. */
	retain_free(rs, NULL, NULL);
	free(topic);
	free(pluses);
}

/* A digest of the store's answers to a few filters, its counts included. */
static uint64_t probe_digest(const struct retain *rs)
{
	static const char *const probes[] = {"#", "a/#", "+/+", "a/b/c/d/e", "$SYS/#"};
	uint64_t d = retain_count(rs) * 31 + retain_node_count(rs);
	size_t i, j;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct got *g = match_len(rs, probes[i], strlen(probes[i]));

		d = d * 1000003 + g->n;
		for (j = 0; j < g->n; j++)
			d = d * 31 + (uintptr_t)g->v[j];
	}
	return d;
}

static void test_nomem(void)
{
	static const char *const topics[] = {"a/b/c/d/e", "a/b/x", "a", "$SYS/broker/uptime",
	                                     "q/r/s"};
	struct retain *rs;
	unsigned failures = 0, i, n;
	uint64_t before;
	void *old;
	long k;
	int rc = ST_OK;

	fa_fail_after(0);
	rs = retain_new();
	fa_reset();
	CU_ASSERT_PTR_NULL(rs);
	rs = retain_new();
	CU_ASSERT_FATAL(rs != NULL);
	/* 200 siblings under "w" grow its child table several times. */
	for (n = 0; n < 200 + sizeof(topics) / sizeof(topics[0]); n++) {
		char topic[32];

		if (n < sizeof(topics) / sizeof(topics[0]))
			snprintf(topic, sizeof(topic), "%s", topics[n]);
		else
			snprintf(topic, sizeof(topic), "w/%u/z", n);
		before = probe_digest(rs);
		for (k = 0; k < 100; k++) {
			fa_fail_after(k);
			rc = retain_set(rs, (const uint8_t *)topic, strlen(topic), val(n + 1),
			                &old);
			fa_reset();
			if (rc != ST_ERR_NOMEM)
				break;
			failures++;
			CU_ASSERT_EQUAL(probe_digest(rs), before);
		}
		CU_ASSERT_EQUAL(rc, ST_OK);
		CU_ASSERT_PTR_NULL(old);
	}
	CU_ASSERT(failures >= 400);
	/* Replacing and deleting need no memory. */
	fa_fail_after(0);
	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		rc |= set(rs, topics[i], val(7)) != val(i + 1);
	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		rc |= set(rs, topics[i], NULL) != val(7);
	fa_reset();
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(retain_count(rs), 200);
	retain_free(rs, NULL, NULL);
}

/* --- property test against the reference matcher ------------------------------------------ */

#define PROP_TOPICS  3000
#define PROP_LEN_MAX 40

/* One retained topic of the model. */
struct rec {
	char topic[PROP_LEN_MAX]; /* NUL-terminated topic name */
	void *value;              /* its value */
};

/* The model: a plain list, matched by scanning it. */
struct model {
	struct rec v[PROP_TOPICS]; /* topics with a value, unordered */
	size_t n;                  /* records in v */
};

static long model_find(const struct model *m, const char *topic)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (strcmp(m->v[i].topic, topic) == 0)
			return (long)i;
	}
	return -1;
}

/* A random set (or delete, when value is NULL) on both. */
static void prop_set(struct retain *rs, struct model *m, void *value)
{
	char topic[PROP_LEN_MAX];
	long at;
	void *old;

	tu_random_topic(topic, false);
	at = model_find(m, topic);
	old = set(rs, topic, value);
	CU_ASSERT_PTR_EQUAL(old, at >= 0 ? m->v[at].value : NULL);
	if (at >= 0 && value) {
		m->v[at].value = value;
	} else if (at >= 0) {
		m->v[at] = m->v[--m->n];
	} else if (value && m->n < PROP_TOPICS) {
		strcpy(m->v[m->n].topic, topic);
		m->v[m->n++].value = value;
	} else if (value) {
		set(rs, topic, NULL);
	}
}

static void prop_check(const struct retain *rs, const struct model *m)
{
	static struct got want;
	char filter[PROP_LEN_MAX];
	struct got *g;
	size_t i, fl;

	tu_random_topic(filter, true);
	fl = strlen(filter);
	g = match_len(rs, filter, fl);
	want.n = 0;
	for (i = 0; i < m->n; i++) {
		if (st_topic_matches((const uint8_t *)filter, fl, (const uint8_t *)m->v[i].topic,
		                     strlen(m->v[i].topic)))
			collect(&want, m->v[i].value);
	}
	qsort(want.v, want.n, sizeof(want.v[0]), ptr_cmp);
	CU_ASSERT_EQUAL(g->n, want.n);
	if (g->n != want.n) {
		fprintf(stderr, "filter \"%s\": store %zu matches, model %zu\n", filter, g->n,
		        want.n);
		return;
	}
	for (i = 0; i < g->n; i++)
		CU_ASSERT_PTR_EQUAL(g->v[i], want.v[i]);
}

static void test_property(void)
{
	static struct model m;
	struct retain *rs = retain_new();
	unsigned op, round, next_val = 1;

	CU_ASSERT_FATAL(rs != NULL);
	srand(4242);
	m.n = 0;
	for (round = 0; round < 4; round++) {
		/* Even rounds mostly set, odd rounds mostly delete. */
		for (op = 0; op < 3000; op++) {
			bool del = round % 2 ? tu_rand(4) != 0 : tu_rand(5) == 0;

			prop_set(rs, &m, del ? NULL : val(next_val++));
			if (op % 4 == 0)
				prop_check(rs, &m);
			CU_ASSERT_EQUAL_FATAL(retain_count(rs), m.n);
		}
	}
	while (m.n > 0) {
		CU_ASSERT_PTR_EQUAL(set(rs, m.v[m.n - 1].topic, NULL), m.v[m.n - 1].value);
		m.n--;
	}
	CU_ASSERT_EQUAL(retain_count(rs), 0);
	CU_ASSERT_EQUAL(retain_node_count(rs), 0);
	retain_free(rs, NULL, NULL);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"set, get, replace, delete", test_set_get_delete},
	        {"pruning of empty nodes", test_pruning},
	        {"match: exact, '+', '#', '$'", test_match},
	        {"free releases every value", test_free_releases},
	        {"topics of 20,000 levels", test_deep},
	        {"random filters against st_topic_matches", test_property},
	        {"allocation failures", test_nomem},
	        {NULL, NULL},
	};

	tu_add_suite("retain", tests);
	return tu_run_registry();
}
