/*
 * Helpers shared by the CUnit unit tests (test/test_<module>.c); linked into every test.
 *
 * Guard buffers: a parser under test gets its input copied so that the last byte sits right
 * before a PROT_NONE page, so a read past the end faults at once instead of reading whatever
 * follows (picohttpparser's trick). Reuse one struct tu_guard for many inputs: the mapping
 * grows when needed and is released by tu_guard_release().
 *
 * Running: register suites (tu_add_suite takes a NULL-terminated table of tests), then
 * `return tu_run_registry();` from main(). Tests that need a missing kernel feature exit 77.
 */
#ifndef STARLING_TESTUTIL_H
#define STARLING_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

/* A copy of some bytes that ends right before an unreadable page. */
struct tu_guard {
	uint8_t *map;    /* the mapping (data pages + guard page); NULL before first use */
	size_t data_cap; /* bytes of readable pages before the guard page */
};

/*
 * Copies src[0..len) so it ends at the guard page and returns the copy, which stays valid
 * until the next call on g or tu_guard_release(). Aborts if the mapping fails: a broken test
 * environment is not a test failure to count.
 */
const uint8_t *tu_guard_copy(struct tu_guard *g, const void *src, size_t len);

/* Unmaps the guard buffer; g may be used again afterwards. */
void tu_guard_release(struct tu_guard *g);

/* One entry of a test table; the table ends with {NULL, NULL}. */
struct tu_test {
	const char *name; /* shown by the basic interface */
	CU_TestFunc fn;   /* the test */
};

/*
 * Adds a suite with the tests of a NULL-terminated table to the registry, creating the
 * registry on first use. Aborts on a CUnit error (out of memory, duplicate names).
 */
void tu_add_suite(const char *suite_name, const struct tu_test *tests);

/*
 * Runs every registered suite with the basic interface (verbose), frees the registry, and
 * returns 0 if all tests passed, 1 otherwise: main()'s exit status.
 */
int tu_run_registry(void);

/* Writes bytes as hex ("01 ab") into out, which needs 3 * len + 1 bytes; returns out. */
char *tu_hex(char *out, const void *bytes, size_t len);

/* rand() % n: the property tests seed rand() themselves, so runs repeat. */
unsigned tu_rand(unsigned n);

/*
 * A random valid topic filter (if `filter`) or topic name into s (room for 32 bytes): 1 to 5
 * levels drawn from a small alphabet (with "" and "$s" first levels) so that matches are
 * frequent, '+' and a final '#' in filters. For property tests against st_topic_matches.
 */
void tu_random_topic(char *s, bool filter);

#endif
