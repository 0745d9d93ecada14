/* Interval sets (src/base/ivset.h), against a bitmap model. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "base/ivset.h"
#include "starling/error.h"
#include "testutil.h"

#define UNIVERSE 300

static bool model[UNIVERSE + 2];

/* The set's invariants: ascending, lo <= hi, gaps of at least one between intervals. */
static void check(const struct ivset *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		CU_ASSERT(s->v[i].lo <= s->v[i].hi);
		if (i)
			CU_ASSERT(s->v[i - 1].hi + 1 < s->v[i].lo);
	}
	for (uint64_t x = 0; x <= UNIVERSE + 1; x++)
		CU_ASSERT_EQUAL(ivset_has(s, x), model[x]);
}

static void test_random_against_model(void)
{
	srand(41);
	for (int round = 0; round < 50; round++) {
		struct ivset s = {0};
		uint64_t max = 0;

		memset(model, 0, sizeof(model));
		CU_ASSERT_FALSE(ivset_has(&s, 0));
		CU_ASSERT_EQUAL(ivset_max(&s), 0);
		for (int k = 0; k < 60; k++) {
			uint64_t lo = 1 + tu_rand(UNIVERSE),
			         len = tu_rand(4) ? tu_rand(3) : tu_rand(40);
			uint64_t hi = lo + len > UNIVERSE ? UNIVERSE : lo + len;

			CU_ASSERT_EQUAL_FATAL(ivset_add(&s, lo, hi), ST_OK);
			for (uint64_t x = lo; x <= hi; x++)
				model[x] = true;
			if (hi > max)
				max = hi;
			CU_ASSERT_EQUAL(ivset_max(&s), max);
		}
		check(&s);
		ivset_free(&s);
		CU_ASSERT_EQUAL(s.n, 0);
	}
}

/* In order one by one: one interval; a gap filled later merges both sides. */
static void test_in_order_and_gaps(void)
{
	struct ivset s = {0};

	for (uint64_t x = 1; x <= 1000; x++)
		CU_ASSERT_EQUAL(ivset_add(&s, x, x), ST_OK);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_EQUAL(ivset_add(&s, 1010, 1020), ST_OK);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_FALSE(ivset_has(&s, 1005));
	CU_ASSERT_EQUAL(ivset_add(&s, 1001, 1009), ST_OK);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_EQUAL(s.v[0].lo, 1);
	CU_ASSERT_EQUAL(s.v[0].hi, 1020);
	/* Extremes. */
	CU_ASSERT_EQUAL(ivset_add(&s, UINT64_MAX - 1, UINT64_MAX), ST_OK);
	CU_ASSERT_TRUE(ivset_has(&s, UINT64_MAX));
	CU_ASSERT_EQUAL(ivset_add(&s, 0, 0), ST_OK);
	CU_ASSERT_EQUAL(s.n, 2); /* 0 touches 1 */
	CU_ASSERT_EQUAL(ivset_max(&s), UINT64_MAX);
	ivset_free(&s);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"random intervals against a bitmap", test_random_against_model},
	        {"in order, gaps filled later", test_in_order_and_gaps},
	        {NULL, NULL},
	};

	tu_add_suite("ivset", tests);
	return tu_run_registry();
}
