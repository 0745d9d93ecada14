/*
 * Tests of how work is split between workers: the shard function that gives every client id
 * (and shared group key) its home worker (src/broker/xw.c, xw_home), and the interest summary
 * that tells a publishing worker which others may hold a matching filter (src/index/interest.c).
 *
 * The shard function must be a function of the key and the worker count only (every worker
 * computes it), land in range, and spread ids evenly. The summary is compared against a plain
 * model (per holder, a multiset of filters) through random adds and removes: it may name a
 * holder that has no match (a shared bucket), never miss one that has.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "broker/xw.h"
#include "index/interest.h"
#include "starling/error.h"
#include "starling/topic.h"
#include "testutil.h"

static size_t id_of(char *buf, size_t cap, unsigned i)
{
	return (size_t)snprintf(buf, cap, "sensor-%u", i);
}

static void test_home_range_and_stability(void)
{
	char id[32];

	for (unsigned n = 1; n <= 64; n++) {
		for (unsigned i = 0; i < 2000; i++) {
			size_t len = id_of(id, sizeof(id), i);
			unsigned h = xw_home(n, (const uint8_t *)id, len);

			CU_ASSERT(h < n);
			CU_ASSERT_EQUAL(h, xw_home(n, (const uint8_t *)id, len));
		}
	}
	/* One worker: everything is home. The empty id too (it never reaches the function in
	 * the broker, which generates one, but the function must not care). */
	CU_ASSERT_EQUAL(xw_home(1, (const uint8_t *)"x", 1), 0);
	CU_ASSERT(xw_home(7, (const uint8_t *)"", 0) < 7);
}

static void test_home_spread(void)
{
	static const unsigned counts[] = {2, 3, 4, 7, 16, 64};
	char id[32];

	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		unsigned n = counts[k], per[64] = {0};
		const unsigned ids = 64000;

		for (unsigned i = 0; i < ids; i++) {
			size_t len = id_of(id, sizeof(id), i);

			per[xw_home(n, (const uint8_t *)id, len)]++;
		}
		/* Sequential ids, the usual fleet naming, within 10% of an even share. */
		for (unsigned w = 0; w < n; w++) {
			CU_ASSERT(per[w] > ids / n * 9 / 10);
			CU_ASSERT(per[w] < ids / n * 11 / 10);
		}
	}
}

#define HOLDERS  5
#define FILTERS  40
#define TOPICS   60
#define MAX_DUPS 3

/* The model: how many times each holder holds each filter. */
static unsigned model[HOLDERS][FILTERS];

static void test_interest_model(void)
{
	static char filters[FILTERS][32], topics[TOPICS][32];
	static bool match[FILTERS][TOPICS];
	struct interest in;
	struct interest_local l[HOLDERS];

	memset(model, 0, sizeof(model));
	srand(42);
	for (unsigned f = 0; f < FILTERS; f++)
		tu_random_topic(filters[f], f % 3 != 0);
	for (unsigned t = 0; t < TOPICS; t++)
		tu_random_topic(topics[t], false);
	for (unsigned f = 0; f < FILTERS; f++)
		for (unsigned t = 0; t < TOPICS; t++)
			match[f][t] =
			        st_topic_matches((const uint8_t *)filters[f], strlen(filters[f]),
			                         (const uint8_t *)topics[t], strlen(topics[t]));
	/* 4 buckets: most topics share one, so false positives are common and must be harmless. */
	CU_ASSERT_EQUAL_FATAL(interest_init(&in, 2), ST_OK);
	for (unsigned h = 0; h < HOLDERS; h++)
		CU_ASSERT_EQUAL_FATAL(interest_local_init(&l[h], &in, h * 13), ST_OK);
	for (unsigned step = 0; step < 5000; step++) {
		unsigned h = tu_rand(HOLDERS), f = tu_rand(FILTERS);
		const uint8_t *fp = (const uint8_t *)filters[f];
		size_t flen = strlen(filters[f]);

		if (tu_rand(2) && model[h][f] < MAX_DUPS) {
			interest_add_filter(&l[h], fp, flen);
			model[h][f]++;
		} else if (model[h][f]) {
			interest_remove_filter(&l[h], fp, flen);
			model[h][f]--;
		}
		for (unsigned t = 0; t < TOPICS; t++) {
			const uint8_t *tp = (const uint8_t *)topics[t];
			size_t tlen = strlen(topics[t]);
			uint64_t named = interest_lookup(&in, interest_hash(tp, tlen));
			uint64_t among = l[t % HOLDERS].bit | l[(t + 2) % HOLDERS].bit;

			/* The short cut (every holder asked about has a wildcard) answers the same.
			 */
			CU_ASSERT_EQUAL(interest_targets(&in, tp, tlen, among), named & among);

			for (unsigned hh = 0; hh < HOLDERS; hh++) {
				bool matches = false;

				for (unsigned ff = 0; ff < FILTERS && !matches; ff++)
					matches = model[hh][ff] && match[ff][t];
				if (matches)
					CU_ASSERT((named & l[hh].bit) != 0);
			}
		}
	}
	/* Everything removed: no holder is named for anything. */
	for (unsigned h = 0; h < HOLDERS; h++)
		for (unsigned f = 0; f < FILTERS; f++)
			while (model[h][f]--)
				interest_remove_filter(&l[h], (const uint8_t *)filters[f],
				                       strlen(filters[f]));
	for (unsigned t = 0; t < TOPICS; t++)
		CU_ASSERT_EQUAL(interest_lookup(&in, interest_hash((const uint8_t *)topics[t],
		                                                   strlen(topics[t]))),
		                0);
	for (unsigned h = 0; h < HOLDERS; h++)
		interest_local_fini(&l[h]);
	interest_fini(&in);
}

static void test_interest_exact_is_precise(void)
{
	struct interest in;
	struct interest_local a, b;

	/* With enough buckets, distinct exact topics do not share one here. */
	CU_ASSERT_EQUAL_FATAL(interest_init(&in, 16), ST_OK);
	CU_ASSERT_EQUAL_FATAL(interest_local_init(&a, &in, 0), ST_OK);
	CU_ASSERT_EQUAL_FATAL(interest_local_init(&b, &in, 63), ST_OK);
	interest_add_filter(&a, (const uint8_t *)"a/x", 3);
	interest_add_filter(&b, (const uint8_t *)"b/x", 3);
	CU_ASSERT_EQUAL(interest_lookup(&in, interest_hash((const uint8_t *)"a/x", 3)), a.bit);
	CU_ASSERT_EQUAL(interest_lookup(&in, interest_hash((const uint8_t *)"b/x", 3)), b.bit);
	/* A wildcard names its holder for every topic. */
	interest_add_filter(&b, (const uint8_t *)"+/y", 3);
	CU_ASSERT_EQUAL(interest_lookup(&in, interest_hash((const uint8_t *)"a/x", 3)),
	                a.bit | b.bit);
	interest_remove_filter(&b, (const uint8_t *)"+/y", 3);
	CU_ASSERT_EQUAL(interest_lookup(&in, interest_hash((const uint8_t *)"a/x", 3)), a.bit);
	interest_local_fini(&a);
	interest_local_fini(&b);
	interest_fini(&in);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"home: in range, stable", test_home_range_and_stability},
	        {"home: even spread", test_home_spread},
	        {"interest: superset of a model", test_interest_model},
	        {"interest: exact buckets, wildcards", test_interest_exact_is_precise},
	        {NULL, NULL},
	};

	tu_add_suite("shard", tests);
	return tu_run_registry();
}
