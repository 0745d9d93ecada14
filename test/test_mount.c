/*
 * Unit tests of mount.c's topic mapping: names and filters prefixed (shared subscriptions keep
 * "$share/GROUP/" first, malformed ones are left for the caller to refuse), the 64 KiB bound,
 * and the prefix taken off delivered topics only where it is there.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "base/config.h"
#include "broker/mount.h"
#include "starling/error.h"
#include "testutil.h"

#define M(s) (const uint8_t *)(s), (uint16_t)strlen(s)

static struct st_bytes B(const char *s) {
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static bool
eq(struct st_bytes b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

static uint8_t buf[CONFIG_MOUNT_POINT_MAX + MOUNT_TOPIC_MAX];

static void test_name(void)
{
	struct st_bytes out;

	CU_ASSERT_EQUAL(mount_name(M("tenant/"), B("a/b"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "tenant/a/b"));
	CU_ASSERT_EQUAL(mount_name(M("pre"), B("x"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "prex"));
	CU_ASSERT_EQUAL(mount_name(M("t/"), B("$SYS/x"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "t/$SYS/x"));
}

static void test_filter(void)
{
	struct st_bytes out;

	CU_ASSERT_EQUAL(mount_filter(M("tenant/"), B("a/#"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "tenant/a/#"));
	CU_ASSERT_EQUAL(mount_filter(M("tenant/"), B("#"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "tenant/#"));
	CU_ASSERT_EQUAL(mount_filter(M("tenant/"), B("$share/g/s/+"), buf, sizeof(buf), &out),
	                ST_OK);
	CU_ASSERT_TRUE(eq(out, "$share/g/tenant/s/+"));
	/* Malformed shared filters stay as they are: the subscription refuses them. */
	CU_ASSERT_EQUAL(mount_filter(M("tenant/"), B("$share/g"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "$share/g"));
	CU_ASSERT_EQUAL(mount_filter(M("tenant/"), B("$share//x"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "$share//x"));
	/* "$shared/..." is a plain filter. */
	CU_ASSERT_EQUAL(mount_filter(M("m/"), B("$shared/x"), buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_TRUE(eq(out, "m/$shared/x"));
}

static void test_bounds(void)
{
	static char big[MOUNT_TOPIC_MAX + 1];
	struct st_bytes out, t;

	memset(big, 'a', MOUNT_TOPIC_MAX);
	t = (struct st_bytes){(const uint8_t *)big, MOUNT_TOPIC_MAX - 3};
	CU_ASSERT_EQUAL(mount_name(M("abc"), t, buf, sizeof(buf), &out), ST_OK);
	CU_ASSERT_EQUAL(out.len, MOUNT_TOPIC_MAX);
	CU_ASSERT_EQUAL(mount_name(M("abcd"), t, buf, sizeof(buf), &out), ST_ERR_TOPIC);
	CU_ASSERT_EQUAL(mount_filter(M("abcd"), t, buf, sizeof(buf), &out), ST_ERR_FILTER);
	/* A buffer too small is refused, never overrun. */
	CU_ASSERT_EQUAL(mount_name(M("abc"), B("defg"), buf, 6, &out), ST_ERR_TOPIC);
}

static void test_strip(void)
{
	CU_ASSERT_TRUE(eq(mount_strip(M("tenant/"), B("tenant/a/b")), "a/b"));
	/* Not under the prefix (a session subscribed elsewhere): whole. */
	CU_ASSERT_TRUE(eq(mount_strip(M("tenant/"), B("other/a")), "other/a"));
	/* Nothing but the prefix: whole, since an empty topic cannot be sent. */
	CU_ASSERT_TRUE(eq(mount_strip(M("tenant/"), B("tenant/")), "tenant/"));
	CU_ASSERT_TRUE(eq(mount_strip(M("tenant/"), B("tenant")), "tenant"));
	CU_ASSERT_TRUE(eq(mount_strip(M("t"), B("tx")), "x"));
	/* Round trip for a name mounted then delivered. */
	{
		struct st_bytes out;

		CU_ASSERT_EQUAL(mount_name(M("p/"), B("q/r"), buf, sizeof(buf), &out), ST_OK);
		CU_ASSERT_TRUE(eq(mount_strip(M("p/"), out), "q/r"));
	}
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"names", test_name},
	        {"filters", test_filter},
	        {"bounds", test_bounds},
	        {"strip", test_strip},
	        {NULL, NULL},
	};

	tu_add_suite("mount", tests);
	return tu_run_registry();
}
