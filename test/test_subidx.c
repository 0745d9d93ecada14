/*
 * Unit and property tests of the subscription index (src/index/subidx.c).
 *
 * The unit cases pin down the matching corners of MQTT section 4.7 ('#' includes the parent
 * level, '$' topics and first-level wildcards, empty levels) and the bookkeeping (replace,
 * remove, counts, pruning of trie nodes). The property test drives the index and a plain list
 * of (filter, subscriber, data) with the same random adds and removals, and checks that every
 * random topic matches the same multiset of (subscriber, data) pairs in both; the list is
 * matched with st_topic_matches, the reference matcher. Levels come from a tiny alphabet so
 * that most topics match something. Deep topics (20,000 and 32,768 levels) check that
 * matching, pruning and freeing neither recurse nor overflow. Allocation failures are injected
 * at every allocation of an add (test/failalloc.h) to check that a failed add changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "starling/error.h"
#include "starling/topic.h"
#include "index/subidx.h"
#include "failalloc.h"
#include "testutil.h"

/* The most matches one check collects. */
#define HITS_MAX 16384

struct hit {
	void *subscriber; /* reported subscriber */
	uint64_t data;    /* reported data */
};

/* What one subidx_match reported. */
struct hits {
	struct hit v[HITS_MAX]; /* reported pairs, in report order */
	size_t n;               /* pairs reported */
};

static void collect(void *ctx, void *subscriber, uint64_t data)
{
	struct hits *h = ctx;

	CU_ASSERT_FATAL(h->n < HITS_MAX);
	h->v[h->n].subscriber = subscriber;
	h->v[h->n].data = data;
	h->n++;
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	if (x->subscriber != y->subscriber)
		return (uintptr_t)x->subscriber < (uintptr_t)y->subscriber ? -1 : 1;
	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	return 0;
}

static void *sub_ptr(unsigned i)
{
	return (void *)(uintptr_t)(0x1000 + 16 * (uintptr_t)i);
}

static int add(struct subidx *idx, const char *filter, unsigned sub, uint64_t data)
{
	CU_ASSERT_FATAL(st_topic_filter_is_valid((const uint8_t *)filter, strlen(filter)));
	return subidx_add(idx, (const uint8_t *)filter, strlen(filter), sub_ptr(sub), data);
}

static int del(struct subidx *idx, const char *filter, unsigned sub)
{
	return subidx_remove(idx, (const uint8_t *)filter, strlen(filter), sub_ptr(sub));
}

/*
 * Matches topic, placed right before an unreadable page so that a read past its end faults,
 * and returns the reports sorted; h is large, so static rather than on the stack.
 */
static struct hits *match(const struct subidx *idx, const char *topic, size_t len)
{
	static struct hits h;
	static struct tu_guard guard;
	const uint8_t *t = tu_guard_copy(&guard, topic, len);

	h.n = 0;
	subidx_match(idx, t, len, collect, &h);
	qsort(h.v, h.n, sizeof(h.v[0]), hit_cmp);
	return &h;
}

/* The number of reports for topic. */
static size_t nmatch(const struct subidx *idx, const char *topic)
{
	return match(idx, topic, strlen(topic))->n;
}

static void test_add_replace_remove(void)
{
	struct subidx *idx = subidx_new();
	struct hits *h;

	CU_ASSERT_FATAL(idx != NULL);
	CU_ASSERT_EQUAL(add(idx, "a/b", 1, 10), 1);
	CU_ASSERT_EQUAL(add(idx, "a/b", 1, 11), 0);
	CU_ASSERT_EQUAL(add(idx, "a/+", 1, 20), 1);
	CU_ASSERT_EQUAL(add(idx, "a/+", 1, 21), 0);
	CU_ASSERT_EQUAL(add(idx, "a/b", 2, 30), 1);
	CU_ASSERT_EQUAL(subidx_count(idx), 3);
	h = match(idx, "a/b", 3);
	CU_ASSERT_EQUAL_FATAL(h->n, 3);
	/* One subscriber with two overlapping filters gets two reports, with each filter's data. */
	CU_ASSERT_PTR_EQUAL(h->v[0].subscriber, sub_ptr(1));
	CU_ASSERT_EQUAL(h->v[0].data, 11);
	CU_ASSERT_EQUAL(h->v[1].data, 21);
	CU_ASSERT_PTR_EQUAL(h->v[2].subscriber, sub_ptr(2));
	CU_ASSERT_EQUAL(h->v[2].data, 30);

	CU_ASSERT_EQUAL(del(idx, "a/b", 1), ST_OK);
	CU_ASSERT_EQUAL(del(idx, "a/b", 1), ST_ERR_FILTER);
	CU_ASSERT_EQUAL(del(idx, "a/c", 1), ST_ERR_FILTER);
	CU_ASSERT_EQUAL(del(idx, "a/+", 2), ST_ERR_FILTER);
	CU_ASSERT_EQUAL(del(idx, "x/+", 1), ST_ERR_FILTER);
	CU_ASSERT_EQUAL(subidx_count(idx), 2);
	CU_ASSERT_EQUAL(nmatch(idx, "a/b"), 2);
	CU_ASSERT_EQUAL(del(idx, "a/+", 1), ST_OK);
	CU_ASSERT_EQUAL(del(idx, "a/b", 2), ST_OK);
	CU_ASSERT_EQUAL(subidx_count(idx), 0);
	CU_ASSERT_EQUAL(nmatch(idx, "a/b"), 0);
	subidx_free(idx);
	subidx_free(NULL);
}

static void test_pruning(void)
{
	struct subidx *idx = subidx_new();

	CU_ASSERT_FATAL(idx != NULL);
	CU_ASSERT_EQUAL(add(idx, "a/b/c/+", 1, 0), 1);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 4);
	CU_ASSERT_EQUAL(add(idx, "a/b/#", 1, 0), 1);
	CU_ASSERT_EQUAL(add(idx, "a/+/c", 2, 0), 1);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 6);
	/* Exact filters never enter the trie. */
	CU_ASSERT_EQUAL(add(idx, "a/b/c", 1, 0), 1);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 6);

	CU_ASSERT_EQUAL(del(idx, "a/b/c/+", 1), ST_OK);
	/* "a/b" still holds the '#' subscription: only "c" and "+" went. */
	CU_ASSERT_EQUAL(subidx_node_count(idx), 4);
	CU_ASSERT_EQUAL(del(idx, "a/b/#", 1), ST_OK);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 3);
	CU_ASSERT_EQUAL(del(idx, "a/+/c", 2), ST_OK);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 0);
	CU_ASSERT_EQUAL(subidx_count(idx), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "a/b/c"), 1);
	/* A failed removal leaves no node behind. */
	CU_ASSERT_EQUAL(del(idx, "q/r/+", 1), ST_ERR_FILTER);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 0);
	subidx_free(idx);
}

static void test_dollar(void)
{
	struct subidx *idx = subidx_new();

	CU_ASSERT_FATAL(idx != NULL);
	add(idx, "#", 1, 0);
	add(idx, "+/x", 2, 0);
	add(idx, "+/#", 3, 0);
	add(idx, "$SYS/#", 4, 0);
	add(idx, "$SYS/+", 5, 0);
	add(idx, "$SYS/x", 6, 0);
	add(idx, "a/+", 7, 0);
	/* [MQTT-4.7.2-1]: no first-level wildcard matches a '$' topic. */
	CU_ASSERT_EQUAL(nmatch(idx, "$SYS/x"), 3);
	CU_ASSERT_EQUAL(nmatch(idx, "$SYS"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "$"), 0);
	/* Only the first character counts. */
	CU_ASSERT_EQUAL(nmatch(idx, "a/$x"), 3);
	CU_ASSERT_EQUAL(nmatch(idx, "S$YS/x"), 3);
	CU_ASSERT_EQUAL(nmatch(idx, "/x"), 3);
	subidx_free(idx);
}

static void test_wildcard_corners(void)
{
	struct subidx *idx = subidx_new();

	CU_ASSERT_FATAL(idx != NULL);
	add(idx, "sport/#", 1, 0);
	add(idx, "+/+", 2, 0);
	add(idx, "+", 3, 0);
	add(idx, "/", 4, 0);
	add(idx, "a//b", 5, 0);
	add(idx, "a/+/b", 6, 0);
	add(idx, "/#", 7, 0);
	/* "sport/#" matches "sport" itself [MQTT spec 4.7.1.2], and "sport/". */
	CU_ASSERT_EQUAL(nmatch(idx, "sport"), 2);
	CU_ASSERT_EQUAL(nmatch(idx, "sport/"), 2);
	CU_ASSERT_EQUAL(nmatch(idx, "sport/tennis/player1"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "sports"), 1);
	/* "/" is two empty levels. */
	CU_ASSERT_EQUAL(nmatch(idx, "/"), 3);
	CU_ASSERT_EQUAL(nmatch(idx, "//"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "a//b"), 2);
	CU_ASSERT_EQUAL(nmatch(idx, "a/x/b"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "a/b"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "a"), 1);
	subidx_free(idx);

	idx = subidx_new();
	CU_ASSERT_FATAL(idx != NULL);
	add(idx, "#", 1, 5);
	CU_ASSERT_EQUAL(nmatch(idx, "a"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "/"), 1);
	CU_ASSERT_EQUAL(nmatch(idx, "a/b/c/d"), 1);
	CU_ASSERT_EQUAL(match(idx, "x", 1)->v[0].data, 5);
	/* Lengths are honoured: the bytes after len are not part of the topic. */
	add(idx, "a/b", 2, 0);
	CU_ASSERT_EQUAL(match(idx, "a/bc", 3)->n, 2);
	subidx_free(idx);
}

/* Thousands of subscribers on one filter: the position table keeps add and remove linear. */
static void test_fanout(void)
{
	enum { N = 5000 };
	struct subidx *idx = subidx_new();
	unsigned order[N], i, j, t;
	struct hits *h;

	CU_ASSERT_FATAL(idx != NULL);
	for (i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(add(idx, "fan/out", i, i), 1);
		CU_ASSERT_EQUAL(add(idx, "fan/+", i, i + N), 1);
		order[i] = i;
	}
	CU_ASSERT_EQUAL(add(idx, "fan/out", 77, 1), 0);
	CU_ASSERT_EQUAL(add(idx, "fan/out", 77, 77), 0);
	CU_ASSERT_EQUAL(nmatch(idx, "fan/out"), 2 * N);
	srand(7);
	for (i = N - 1; i > 0; i--) {
		j = (unsigned)rand() % (i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(del(idx, "fan/out", order[i]), ST_OK);
		CU_ASSERT_EQUAL(del(idx, "fan/out", order[i]), ST_ERR_FILTER);
		if (i % 997 == 0) {
			h = match(idx, "fan/out", 7);
			CU_ASSERT_EQUAL(h->n, 2 * N - i - 1);
		}
	}
	h = match(idx, "fan/out", 7);
	CU_ASSERT_EQUAL_FATAL(h->n, N);
	for (i = 0; i < N; i++)
		CU_ASSERT_EQUAL(h->v[i].data, i + N);
	subidx_free(idx);
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
	size_t tlen, plen, elen, deep_len;
	char *topic = repeat_levels("a", 20000, &tlen);
	char *pluses = repeat_levels("+", 20000, &plen);
	char *empty = repeat_levels("", 32768, &elen);
	char *deep = repeat_levels("+", 32768, &deep_len);
	struct subidx *idx = subidx_new();

	CU_ASSERT_FATAL(idx != NULL);
	CU_ASSERT_EQUAL(deep_len, 65535);
	CU_ASSERT_EQUAL(subidx_add(idx, (uint8_t *)topic, tlen, sub_ptr(1), 0), 1);
	CU_ASSERT_EQUAL(subidx_add(idx, (uint8_t *)pluses, plen, sub_ptr(2), 0), 1);
	CU_ASSERT_EQUAL(subidx_add(idx, (uint8_t *)deep, deep_len, sub_ptr(3), 0), 1);
	CU_ASSERT_EQUAL(add(idx, "a/a/#", 4, 0), 1);
	CU_ASSERT_EQUAL(add(idx, "a/+/b", 5, 0), 1);
	CU_ASSERT_EQUAL(match(idx, topic, tlen)->n, 3);
	CU_ASSERT_EQUAL(match(idx, topic, tlen - 2)->n, 1);
	CU_ASSERT_EQUAL(match(idx, empty, elen)->n, 1);
	CU_ASSERT(st_topic_matches((uint8_t *)deep, deep_len, (uint8_t *)empty, elen));
	CU_ASSERT_EQUAL(subidx_remove(idx, (uint8_t *)pluses, plen, sub_ptr(2)), ST_OK);
	CU_ASSERT_EQUAL(match(idx, topic, tlen)->n, 2);
	/* The 32,768-level trie stays for subidx_free to take down. */
	subidx_free(idx);
	free(topic);
	free(pluses);
	free(empty);
	free(deep);
}

/* A digest of what a few probe topics match: equal digests mean unchanged answers. */
static uint64_t probe_digest(const struct subidx *idx)
{
	static const char *const probes[] = {"a/b", "x/1/y", "x/1/y/z", "fan", "p/q/r/s/t/u", "q"};
	uint64_t d = subidx_count(idx) * 31 + subidx_node_count(idx);
	size_t i, j;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct hits *h = match(idx, probes[i], strlen(probes[i]));

		d = d * 1000003 + h->n;
		for (j = 0; j < h->n; j++)
			d = d * 31 + h->v[j].data + (uintptr_t)h->v[j].subscriber;
	}
	return d;
}

/*
 * Adds (filter, sub) failing the first, second, ... allocation until it succeeds; each failed
 * attempt must report ST_ERR_NOMEM and leave the index as it was. Returns the failures seen.
 */
static unsigned add_through_failures(struct subidx *idx, const char *filter, unsigned sub)
{
	uint64_t before = probe_digest(idx);
	unsigned failures = 0;
	long k;
	int rc;

	for (k = 0; k < 100; k++) {
		fa_fail_after(k);
		rc = add(idx, filter, sub, sub);
		fa_reset();
		if (rc != ST_ERR_NOMEM)
			break;
		failures++;
		CU_ASSERT_EQUAL(probe_digest(idx), before);
	}
	CU_ASSERT_EQUAL(rc, 1);
	return failures;
}

static void test_nomem(void)
{
	static const char *const filters[] = {"a/b", "x/+/y/#", "p/q/r/s/t/+", "fan", "#", "+"};
	struct subidx *idx;
	unsigned failures = 0, sub, i;
	int rc[40 * 6];
	size_t nrc = 0;

	fa_fail_after(0);
	idx = subidx_new();
	fa_fail_after(1);
	CU_ASSERT_PTR_NULL(idx);
	idx = subidx_new();
	fa_reset();
	CU_ASSERT_PTR_NULL(idx);
	idx = subidx_new();
	CU_ASSERT_FATAL(idx != NULL);
	/* 40 subscribers per filter walk the inline entry, array growth and the position table. */
	for (sub = 0; sub < 40; sub++) {
		for (i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
			failures += add_through_failures(idx, filters[i], sub);
	}
	/* Every allocation point was hit: 6 filters x (creation + 5 array growths), and more. */
	CU_ASSERT(failures >= 50);
	CU_ASSERT_EQUAL(subidx_count(idx), 240);
	/* Removal needs no memory: it succeeds with every allocation refused. */
	fa_fail_after(0);
	for (sub = 0; sub < 40; sub++) {
		for (i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
			rc[nrc++] = del(idx, filters[i], (sub * 7) % 40);
	}
	fa_reset();
	for (i = 0; i < nrc; i++)
		CU_ASSERT_EQUAL(rc[i], ST_OK);
	CU_ASSERT_EQUAL(subidx_count(idx), 0);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 0);
	subidx_free(idx);
}

/* --- property test against the reference matcher ------------------------------------------ */

#define PROP_RECORDS 6000
#define PROP_SUBS    300
#define PROP_LEN_MAX 40

/* One (filter, subscriber, data) of the model. */
struct rec {
	char filter[PROP_LEN_MAX]; /* NUL-terminated filter */
	unsigned sub;              /* subscriber number */
	uint64_t data;             /* its data */
};

/* The model: a plain list, matched by scanning it. */
struct model {
	struct rec v[PROP_RECORDS]; /* live records, unordered */
	size_t n;                   /* records in v */
};

static long model_find(const struct model *m, const char *filter, unsigned sub)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (m->v[i].sub == sub && strcmp(m->v[i].filter, filter) == 0)
			return (long)i;
	}
	return -1;
}

static void model_match(const struct model *m, const char *topic, struct hits *h)
{
	size_t i, tl = strlen(topic);

	h->n = 0;
	for (i = 0; i < m->n; i++) {
		const struct rec *r = &m->v[i];

		if (st_topic_matches((const uint8_t *)r->filter, strlen(r->filter),
		                     (const uint8_t *)topic, tl))
			collect(h, sub_ptr(r->sub), r->data);
	}
	qsort(h->v, h->n, sizeof(h->v[0]), hit_cmp);
}

static void prop_add(struct subidx *idx, struct model *m)
{
	struct rec r;
	long at;

	tu_random_topic(r.filter, true);
	r.sub = tu_rand(PROP_SUBS);
	r.data = ((uint64_t)rand() << 32) | (uint64_t)rand();
	at = model_find(m, r.filter, r.sub);
	CU_ASSERT_EQUAL(add(idx, r.filter, r.sub, r.data), at < 0 ? 1 : 0);
	if (at >= 0)
		m->v[at].data = r.data;
	else if (m->n < PROP_RECORDS)
		m->v[m->n++] = r;
	else
		CU_ASSERT_EQUAL(del(idx, r.filter, r.sub), ST_OK);
}

static void prop_remove(struct subidx *idx, struct model *m)
{
	size_t i;
	char filter[PROP_LEN_MAX];
	unsigned sub;

	if (m->n == 0)
		return;
	i = tu_rand((unsigned)m->n);
	CU_ASSERT_EQUAL(del(idx, m->v[i].filter, m->v[i].sub), ST_OK);
	m->v[i] = m->v[--m->n];
	/* A pair that is not there is refused and changes nothing. */
	tu_random_topic(filter, tu_rand(2));
	sub = tu_rand(PROP_SUBS);
	if (model_find(m, filter, sub) < 0)
		CU_ASSERT_EQUAL(del(idx, filter, sub), ST_ERR_FILTER);
}

static void prop_check(const struct subidx *idx, const struct model *m)
{
	static struct hits want;
	struct hits *got;
	char topic[PROP_LEN_MAX];
	size_t i;

	tu_random_topic(topic, false);
	got = match(idx, topic, strlen(topic));
	model_match(m, topic, &want);
	CU_ASSERT_EQUAL(got->n, want.n);
	if (got->n != want.n) {
		fprintf(stderr, "topic \"%s\": index %zu matches, model %zu\n", topic, got->n,
		        want.n);
		return;
	}
	for (i = 0; i < got->n; i++)
		CU_ASSERT(hit_cmp(&got->v[i], &want.v[i]) == 0);
}

static void test_property(void)
{
	static struct model m;
	struct subidx *idx = subidx_new();
	unsigned op, round;

	CU_ASSERT_FATAL(idx != NULL);
	srand(12345);
	m.n = 0;
	for (round = 0; round < 4; round++) {
		/* Grow to thousands of filters, then shrink to a few hundred, then grow again. */
		for (op = 0; op < 4000; op++) {
			if (tu_rand(4) == 0 && round % 2 == 1)
				prop_add(idx, &m);
			else if (round % 2 == 1 || tu_rand(5) == 0)
				prop_remove(idx, &m);
			else
				prop_add(idx, &m);
			if (op % 8 == 0)
				prop_check(idx, &m);
			CU_ASSERT_EQUAL_FATAL(subidx_count(idx), m.n);
		}
	}
	while (m.n > 0)
		prop_remove(idx, &m);
	CU_ASSERT_EQUAL(subidx_count(idx), 0);
	CU_ASSERT_EQUAL(subidx_node_count(idx), 0);
	subidx_free(idx);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"add, replace, remove", test_add_replace_remove},
	        {"pruning of trie nodes", test_pruning},
	        {"'$' topics and first-level wildcards", test_dollar},
	        {"'#', '+', empty levels", test_wildcard_corners},
	        {"fan-out to thousands of subscribers", test_fanout},
	        {"topics of 20,000 and 32,768 levels", test_deep},
	        {"random filters against st_topic_matches", test_property},
	        {"allocation failures", test_nomem},
	        {NULL, NULL},
	};

	tu_add_suite("subidx", tests);
	return tu_run_registry();
}
