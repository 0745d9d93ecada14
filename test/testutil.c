/*
 * Test helpers: guard-page buffers and the CUnit runner (see testutil.h).
 *
 * A guard buffer is one anonymous mapping of data pages followed by one PROT_NONE page. Input
 * is copied to the end of the data pages, so input + len is the first byte of the guard page.
 * ASan does not see PROT_NONE pages as its own, so an over-read shows up as SEGV, which fails
 * the test binary loudly; that is the point.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <CUnit/Basic.h>

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

const uint8_t *tu_guard_copy(struct tu_guard *g, const void *src, size_t len)
{
	size_t page = page_size();

	if (g->map == NULL || len > g->data_cap) {
		size_t cap = (len + page - 1) / page * page;

		if (cap == 0)
			cap = page;
		tu_guard_release(g);
		void *m = mmap(NULL, cap + page, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			perror("tu_guard_copy: mmap");
			abort();
		}
		if (mprotect((uint8_t *)m + cap, page, PROT_NONE) != 0) {
			perror("tu_guard_copy: mprotect");
			abort();
		}
		g->map = m;
		g->data_cap = cap;
	}
	uint8_t *dst = g->map + g->data_cap - len;

	if (len)
		memcpy(dst, src, len);
	return dst;
}

void tu_guard_release(struct tu_guard *g)
{
	if (g->map)
		munmap(g->map, g->data_cap + page_size());
	g->map = NULL;
	g->data_cap = 0;
}

void tu_add_suite(const char *suite_name, const struct tu_test *tests)
{
	if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
		abort();
	}
	CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);

	if (suite == NULL) {
		fprintf(stderr, "CUnit: suite %s: %s\n", suite_name, CU_get_error_msg());
		abort();
	}
	for (const struct tu_test *t = tests; t->name; t++) {
		if (CU_add_test(suite, t->name, t->fn) == NULL) {
			fprintf(stderr, "CUnit: test %s: %s\n", t->name, CU_get_error_msg());
			abort();
		}
	}
}

int tu_run_registry(void)
{
	if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_ErrorCode rc = CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	unsigned suites_failed = CU_get_number_of_suites_failed();
	unsigned tests_failed = CU_get_number_of_tests_failed();

	CU_cleanup_registry();
	return rc != CUE_SUCCESS || failed || suites_failed || tests_failed ? 1 : 0;
}

char *tu_hex(char *out, const void *bytes, size_t len)
{
	const uint8_t *b = bytes;
	char *p = out;

	for (size_t i = 0; i < len; i++)
		p += sprintf(p, i ? " %02x" : "%02x", b[i]);
	*p = '\0';
	return out;
}

unsigned tu_rand(unsigned n)
{
	return (unsigned)rand() % n;
}

void tu_random_topic(char *s, bool filter)
{
	static const char *const levels_of[] = {"a", "b", "c", "", "$s", "ab"};
	unsigned levels = 1 + tu_rand(5), i, r;
	size_t len = 0;

	for (i = 0; i < levels; i++) {
		r = tu_rand(10);
		if (filter && r < 3)
			len += (size_t)sprintf(s + len, "+");
		else if (filter && r == 3 && i + 1 == levels)
			len += (size_t)sprintf(s + len, "#");
		else
			len += (size_t)sprintf(s + len, "%s", levels_of[tu_rand(i == 0 ? 6 : 4)]);
		if (i + 1 < levels)
			s[len++] = '/';
	}
	/* One empty level is the empty string, neither a name nor a filter [MQTT-4.7.3-1]. */
	if (len == 0)
		s[len++] = 'a';
	s[len] = '\0';
}
