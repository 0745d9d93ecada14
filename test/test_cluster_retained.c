/*
 * Unit tests of cluster/retained.c: the bucket name of a cluster_name (valid for NATS, distinct
 * for distinct names, refused when it cannot fit) and the expiry left when a node reads an
 * entry (never lengthened, expired at the boundary).
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/retained.h"
#include "cluster/subject.h"
#include "testutil.h"

static long bucket(const char *name, char *buf, size_t cap)
{
	return cluster_retained_bucket(name, strlen(name), buf, cap);
}

static void test_bucket_examples(void)
{
	char buf[CLUSTER_BUCKET_MAX];

	CU_ASSERT_EQUAL(bucket("starling", buf, sizeof(buf)), 17);
	CU_ASSERT_STRING_EQUAL(buf, "retained-starling");
	bucket("acme.prod", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "retained-acme_-prod");
	bucket("a_b", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "retained-a__b");
	bucket("a-b", buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "retained-a-b");
	/* Only what cluster_name allows has a bucket. */
	CU_ASSERT_EQUAL(bucket("a b", buf, sizeof(buf)), -1);
	CU_ASSERT_EQUAL(bucket("a*", buf, sizeof(buf)), -1);
	CU_ASSERT_EQUAL(bucket("", buf, sizeof(buf)), -1);
	/* Too small a buffer is refused, never overrun. */
	CU_ASSERT_EQUAL(bucket("starling", buf, 17), -1);
	CU_ASSERT_EQUAL(bucket("starling", buf, 18), 17);
	CU_ASSERT_EQUAL(bucket("a.", buf, 12), -1);
}

/* The longest names fit CLUSTER_BUCKET_MAX; every byte of the result is a bucket byte. */
static void test_bucket_longest(void)
{
	char name[CLUSTER_NAME_MAX + 1], buf[CLUSTER_BUCKET_MAX];

	memset(name, '_', CLUSTER_NAME_MAX);
	name[0] = 'a';
	name[CLUSTER_NAME_MAX] = '\0';
	CU_ASSERT_TRUE(cluster_name_is_valid(name, CLUSTER_NAME_MAX));
	CU_ASSERT_EQUAL(bucket(name, buf, sizeof(buf)), 9 + 1 + 2 * (CLUSTER_NAME_MAX - 1));
	for (const char *p = buf; *p; p++)
		CU_ASSERT_TRUE(
		        strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
		               *p) != NULL);
}

/* Distinct valid names get distinct buckets (random names over a small alphabet). */
static void test_bucket_injective(void)
{
	static const char alpha[] = "a_.-";
	enum { N = 4000 };
	static char names[N][12], buckets[N][CLUSTER_BUCKET_MAX];
	unsigned n = 0;

	srand(14);
	while (n < N) {
		unsigned len = 1 + tu_rand(10);

		for (unsigned i = 0; i < len; i++)
			names[n][i] = alpha[tu_rand(4)];
		names[n][len] = '\0';
		if (!cluster_name_is_valid(names[n], len))
			continue;
		CU_ASSERT_FATAL(bucket(names[n], buckets[n], sizeof(buckets[n])) > 0);
		n++;
	}
	for (unsigned i = 0; i < N; i++)
		for (unsigned j = i + 1; j < N; j++)
			if (strcmp(names[i], names[j]) != 0)
				CU_ASSERT_TRUE_FATAL(strcmp(buckets[i], buckets[j]) != 0);
}

static void test_left_ms(void)
{
	const int64_t s = 1000000000, ms = 1000000, t0 = 1700000000 * s;

	CU_ASSERT_EQUAL(cluster_retained_left_ms(0, t0, t0 + 100 * s), 0);
	CU_ASSERT_EQUAL(cluster_retained_left_ms(10, t0, t0), 10000);
	CU_ASSERT_EQUAL(cluster_retained_left_ms(10, t0, t0 + 3 * s + 250 * ms), 6750);
	CU_ASSERT_EQUAL(cluster_retained_left_ms(10, t0, t0 + 10 * s - ms), 1);
	CU_ASSERT_EQUAL(cluster_retained_left_ms(10, t0, t0 + 10 * s), -1);
	CU_ASSERT_EQUAL(cluster_retained_left_ms(10, t0, t0 + 11 * s), -1);
	/* A server clock ahead of this host's: never more than the envelope said. */
	CU_ASSERT_EQUAL(cluster_retained_left_ms(10, t0 + 5 * s, t0), 10000);
	/* The largest interval does not overflow. */
	CU_ASSERT_EQUAL(cluster_retained_left_ms(UINT32_MAX, t0, t0), (int64_t)UINT32_MAX * 1000);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"bucket examples", test_bucket_examples},
	        {"bucket longest", test_bucket_longest},
	        {"bucket injective", test_bucket_injective},
	        {"expiry left", test_left_ms},
	        {NULL, NULL},
	};

	tu_add_suite("cluster_retained", tests);
	return tu_run_registry();
}
