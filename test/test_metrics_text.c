/*
 * Tests of the Prometheus text exposition writer (src/http/metrics_text.c): families, samples
 * with and without labels, escaping of label values and HELP texts, histograms (cumulative
 * buckets ending with +Inf, _sum and _count agreeing with the +Inf bucket), floats, and the
 * buffer's growth past its first allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "http/metrics_text.h"
#include "testutil.h"

/* The text written so far, NUL-terminated (a static copy). */
static const char *text(const struct mtext *t)
{
	static char buf[1 << 16];
	size_t n = t->len < sizeof(buf) - 1 ? t->len : sizeof(buf) - 1;

	memcpy(buf, t->buf, n);
	buf[n] = '\0';
	return buf;
}

static void test_family_and_samples(void)
{
	struct mtext t;
	struct mtext_label l[2] = {{"listener", "127.0.0.1:1883"}, {"qos", "1"}};

	mtext_init(&t);
	mtext_family(&t, "starling_x_total", "counter", "Things counted.");
	mtext_sample(&t, "starling_x_total", NULL, 0, 18446744073709551615ull);
	mtext_sample(&t, "starling_x_total", l, 2, 0);
	CU_ASSERT(!t.failed);
	CU_ASSERT_STRING_EQUAL(text(&t),
	                       "# HELP starling_x_total Things counted.\n"
	                       "# TYPE starling_x_total counter\n"
	                       "starling_x_total 18446744073709551615\n"
	                       "starling_x_total{listener=\"127.0.0.1:1883\",qos=\"1\"} 0\n");
	mtext_free(&t);
	CU_ASSERT_PTR_NULL(t.buf);
}

static void test_escaping(void)
{
	struct mtext t;
	struct mtext_label l = {"path", "C:\\dir\n\"quoted\""};

	mtext_init(&t);
	/* HELP: backslash and line feed escaped, a double quote kept as it is. */
	mtext_family(&t, "m", "gauge", "a \\ b\nc \"d\"");
	mtext_sample(&t, "m", &l, 1, 7);
	CU_ASSERT_STRING_EQUAL(text(&t), "# HELP m a \\\\ b\\nc \"d\"\n"
	                                 "# TYPE m gauge\n"
	                                 "m{path=\"C:\\\\dir\\n\\\"quoted\\\"\"} 7\n");
	mtext_free(&t);
	/* Nothing to escape, and a value that is all escapes. */
	mtext_init(&t);
	mtext_escaped(&t, "plain", false);
	mtext_escaped(&t, "\\\"\n", false);
	mtext_escaped(&t, "", false);
	CU_ASSERT_STRING_EQUAL(text(&t), "plain\\\\\\\"\\n");
	mtext_free(&t);
}

static void test_floats(void)
{
	struct mtext t;

	mtext_init(&t);
	mtext_sample_f(&t, "a", NULL, 0, 0.1);
	mtext_sample_f(&t, "b", NULL, 0, 1.5e-9);
	mtext_sample_f(&t, "c", NULL, 0, 0.0);
	mtext_sample_f(&t, "d", NULL, 0, 1.0 / 0.0);
	mtext_sample_f(&t, "e", NULL, 0, -1.0 / 0.0);
	mtext_sample_f(&t, "f", NULL, 0, 0.0 / 0.0);
	mtext_sample_f(&t, "g", NULL, 0, 0.30000000000000004);
	CU_ASSERT_STRING_EQUAL(text(&t), "a 0.1\nb 1.5e-09\nc 0\nd +Inf\ne -Inf\nf NaN\n"
	                                 "g 0.30000000000000004\n");
	mtext_free(&t);
}

static void test_histogram(void)
{
	static const double bounds[3] = {0.005, 0.01, 2.5};
	static const uint64_t counts[4] = {3, 0, 5, 2}; /* per bucket; the last above 2.5 */
	struct mtext t;
	struct mtext_label l = {"worker", "1"};

	mtext_init(&t);
	mtext_family(&t, "h_seconds", "histogram", "Loop time.");
	mtext_histogram(&t, "h_seconds", &l, 1, bounds, counts, 3, 12.25);
	CU_ASSERT_STRING_EQUAL(text(&t), "# HELP h_seconds Loop time.\n"
	                                 "# TYPE h_seconds histogram\n"
	                                 "h_seconds_bucket{worker=\"1\",le=\"0.005\"} 3\n"
	                                 "h_seconds_bucket{worker=\"1\",le=\"0.01\"} 3\n"
	                                 "h_seconds_bucket{worker=\"1\",le=\"2.5\"} 8\n"
	                                 "h_seconds_bucket{worker=\"1\",le=\"+Inf\"} 10\n"
	                                 "h_seconds_sum{worker=\"1\"} 12.25\n"
	                                 "h_seconds_count{worker=\"1\"} 10\n");
	mtext_free(&t);
	/* Without labels, and empty. */
	mtext_init(&t);
	mtext_histogram(&t, "h", NULL, 0, bounds, (const uint64_t[4]){0}, 3, 0);
	CU_ASSERT_STRING_EQUAL(text(&t), "h_bucket{le=\"0.005\"} 0\n"
	                                 "h_bucket{le=\"0.01\"} 0\n"
	                                 "h_bucket{le=\"2.5\"} 0\n"
	                                 "h_bucket{le=\"+Inf\"} 0\n"
	                                 "h_sum 0\nh_count 0\n");
	mtext_free(&t);
}

/* Past the first allocation: everything is kept, in order. */
static void test_growth(void)
{
	struct mtext t;
	char expect[32];
	size_t off = 0;

	mtext_init(&t);
	for (unsigned i = 0; i < 5000; i++) {
		char num[12];
		struct mtext_label l = {"worker", num};

		snprintf(num, sizeof(num), "%u", i);
		mtext_sample(&t, "s", &l, 1, i);
	}
	CU_ASSERT(!t.failed);
	CU_ASSERT(t.cap >= t.len);
	for (unsigned i = 0; i < 5000 && !t.failed; i++) {
		int n = snprintf(expect, sizeof(expect), "s{worker=\"%u\"} %u\n", i, i);

		CU_ASSERT_FATAL(off + (size_t)n <= t.len);
		CU_ASSERT(memcmp(t.buf + off, expect, (size_t)n) == 0);
		off += (size_t)n;
	}
	CU_ASSERT_EQUAL(off, t.len);
	mtext_free(&t);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"families and samples", test_family_and_samples},
	        {"escaping of label values and HELP", test_escaping},
	        {"floats", test_floats},
	        {"histograms", test_histogram},
	        {"growth", test_growth},
	        {NULL, NULL},
	};

	tu_add_suite("metrics_text", tests);
	return tu_run_registry();
}
