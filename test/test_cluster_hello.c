/*
 * Unit tests of src/cluster/hello.c: round trips, the exact bytes of one announcement, every
 * truncation and extension refused, and the order that lets exactly one of two connects win.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "cluster/hello.h"
#include "starling/error.h"
#include "testutil.h"

static struct st_bytes bytes(const char *s)
{
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void test_round_trip(void)
{
	static const uint8_t want[] = {0xC0, 0x48, 1, 2, 'n', '1', 0, 0, 0,   7,   0,  0,
	                               0,    0,    0, 0, 1,   2,   0, 3, 'c', '/', 'x'};
	struct cluster_hello h = {.node = bytes("n1"),
	                          .epoch = 7,
	                          .since_ns = 0x102,
	                          .client = bytes("c/x")},
	                     d;
	uint8_t buf[64];
	long n = cluster_hello_encode(&h, buf, sizeof(buf));

	CU_ASSERT_EQUAL_FATAL(n, (long)sizeof(want));
	CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
	CU_ASSERT_EQUAL_FATAL(cluster_hello_decode(buf, (size_t)n, &d), ST_OK);
	CU_ASSERT_EQUAL(d.epoch, 7);
	CU_ASSERT_EQUAL(d.since_ns, 0x102);
	CU_ASSERT_EQUAL(d.node.len, 2);
	CU_ASSERT_EQUAL(memcmp(d.node.ptr, "n1", 2), 0);
	CU_ASSERT_EQUAL(d.client.len, 3);
	CU_ASSERT_EQUAL(memcmp(d.client.ptr, "c/x", 3), 0);
	/* Every cut and one byte more are refused; so is a short buffer for the encoder. */
	for (long cut = 0; cut < n; cut++)
		CU_ASSERT_NOT_EQUAL(cluster_hello_decode(buf, (size_t)cut, &d), ST_OK);
	buf[n] = 'y';
	CU_ASSERT_EQUAL(cluster_hello_decode(buf, (size_t)n + 1, &d), ST_ERR_LENGTH);
	CU_ASSERT_EQUAL(cluster_hello_encode(&h, buf, (size_t)n - 1), ST_ERR_NO_SPACE);
}

static void test_refused(void)
{
	struct cluster_hello h = {.node = bytes("a b"), .client = bytes("c")}, d;
	uint8_t buf[64] = {0xC0, 0x48, 2, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

	CU_ASSERT_EQUAL(cluster_hello_encode(&h, buf + 32, 32), ST_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(cluster_hello_decode(buf, 19, &d), ST_ERR_PROTOCOL); /* version 2 */
	buf[2] = 1;
	CU_ASSERT_EQUAL(cluster_hello_decode(buf, 19, &d), ST_OK); /* an empty client id */
	buf[4] = ' ';
	CU_ASSERT_EQUAL(cluster_hello_decode(buf, 19, &d), ST_ERR_PROTOCOL); /* node id */
	buf[1] = 0x53;
	CU_ASSERT_EQUAL(cluster_hello_decode(buf, 19, &d), ST_ERR_PROTOCOL); /* an envelope */
	CU_ASSERT_EQUAL(cluster_hello_decode((const uint8_t *)"hello", 5, &d), ST_ERR_PROTOCOL);
}

static void test_one_wins(void)
{
	struct cluster_hello a = {.node = bytes("node-a"), .since_ns = 100};
	struct cluster_hello b = {.node = bytes("node-b"), .since_ns = 100};
	struct cluster_hello bb = {.node = bytes("node-bb"), .since_ns = 100};

	/* Later wins, whatever the names. */
	CU_ASSERT_TRUE(cluster_hello_wins(&a, 99, (const uint8_t *)"node-z", 6));
	CU_ASSERT_FALSE(cluster_hello_wins(&a, 101, (const uint8_t *)"node-0", 6));
	/* At the same nanosecond exactly one of each pair wins. */
	CU_ASSERT_TRUE(cluster_hello_wins(&b, 100, (const uint8_t *)"node-a", 6));
	CU_ASSERT_FALSE(cluster_hello_wins(&a, 100, (const uint8_t *)"node-b", 6));
	CU_ASSERT_TRUE(cluster_hello_wins(&bb, 100, (const uint8_t *)"node-b", 6));
	CU_ASSERT_FALSE(cluster_hello_wins(&b, 100, (const uint8_t *)"node-bb", 7));
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"round trip", test_round_trip},
	        {"refused", test_refused},
	        {"one wins", test_one_wins},
	        {NULL, NULL},
	};

	tu_add_suite("cluster_hello", tests);
	return tu_run_registry();
}
