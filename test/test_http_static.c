/*
 * Unit tests of http/static.c: request paths made safe relative paths (escapes, "..", "."
 * and empty segments, index.html), every input read from right before a guard page, and the
 * content types.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "http/static.h"
#include "testutil.h"

static struct tu_guard guard;

static long path(const char *p, char *out, size_t cap)
{
	const char *g = (const char *)tu_guard_copy(&guard, p, strlen(p));

	return http_static_path(g, strlen(p), out, cap);
}

static void ok(const char *p, const char *want)
{
	char out[HTTP_STATIC_PATH_MAX];
	long n = path(p, out, sizeof(out));

	CU_ASSERT_EQUAL(n, (long)strlen(want));
	if (n >= 0)
		CU_ASSERT_STRING_EQUAL(out, want);
	if (n < 0 || strcmp(out, want))
		fprintf(stderr, "\n  [%s] -> %ld [%s], wanted [%s]\n", p, n, n >= 0 ? out : "",
		        want);
}

static void bad(const char *p, long status)
{
	char out[HTTP_STATIC_PATH_MAX];

	CU_ASSERT_EQUAL(path(p, out, sizeof(out)), status);
}

static void test_paths(void)
{
	ok("/", "index.html");
	ok("/index.html", "index.html");
	ok("/a/b.js", "a/b.js");
	ok("/a/", "a/index.html");
	ok("//a//b", "a/b");
	ok("/./a/./b", "a/b");
	ok("/a%20b.txt", "a b.txt");
	ok("/%41%62", "Ab");
	ok("/..a/b..", "..a/b..");
	ok("/.", "index.html");
}

static void test_refused(void)
{
	bad("", -400);
	bad("a/b", -400);
	bad("/..", -403);
	bad("/../x", -403);
	bad("/a/../../x", -403);
	bad("/a/..", -403);
	bad("/%2e%2e/x", -403);
	bad("/%2E%2e", -403);
	bad("/a%2f..%2fb", -403);
	bad("/a%", -400);
	bad("/a%4", -400);
	bad("/a%zz", -400);
	bad("/a%00b", -400);
	bad("/a%0ab", -400);
	bad("/a%7f", -400);
}

static void test_too_long(void)
{
	char p[HTTP_STATIC_PATH_MAX + 8], out[16];

	p[0] = '/';
	memset(p + 1, 'x', sizeof(p) - 2);
	p[sizeof(p) - 1] = '\0';
	CU_ASSERT_EQUAL(path(p, out, sizeof(out)), -414);
	CU_ASSERT_EQUAL(path("/abcdefghijklmnop", out, sizeof(out)), -414);
	CU_ASSERT_EQUAL(path("/abcdefghijklmno", out, sizeof(out)), 15);
	/* index.html must fit too. */
	CU_ASSERT_EQUAL(path("/abcdefgh/", out, sizeof(out)), -414);
}

static void test_types(void)
{
	CU_ASSERT_STRING_EQUAL(http_static_type("index.html"), "text/html; charset=utf-8");
	CU_ASSERT_STRING_EQUAL(http_static_type("a/b.JS"), "text/javascript; charset=utf-8");
	CU_ASSERT_STRING_EQUAL(http_static_type("x.png"), "image/png");
	CU_ASSERT_STRING_EQUAL(http_static_type("x.wasm"), "application/wasm");
	CU_ASSERT_STRING_EQUAL(http_static_type("noext"), "application/octet-stream");
	CU_ASSERT_STRING_EQUAL(http_static_type("dir.d/noext"), "application/octet-stream");
	CU_ASSERT_STRING_EQUAL(http_static_type("x."), "application/octet-stream");
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"paths", test_paths},
	        {"refused", test_refused},
	        {"too long", test_too_long},
	        {"content types", test_types},
	        {NULL, NULL},
	};
	int rc;

	tu_add_suite("http_static", tests);
	rc = tu_run_registry();
	tu_guard_release(&guard);
	return rc;
}
