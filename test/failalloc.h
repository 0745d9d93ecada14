/*
 * Allocation-failure injection for unit tests, as SQLite's tests do it: this header defines
 * malloc, calloc and realloc, which forward to the next definitions in link order (ASan's in
 * the ASan build, libc's otherwise) until fa_fail_after(n) has let n allocations through; from
 * then on they return NULL until fa_reset(). A test walks every error path of an operation by
 * retrying it with n = 0, 1, 2, ... until it succeeds, checking after each failure that the
 * structure is unchanged. free is not wrapped: every pointer still comes from the real
 * allocator, so ASan keeps checking everything.
 *
 * Include it in exactly one file of a test binary; it holds that binary's only copy of the
 * countdown. Keep CUnit assertions outside the failing window: they allocate when they fail.
 */
#ifndef STARLING_TEST_FAILALLOC_H
#define STARLING_TEST_FAILALLOC_H

#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

static long fa_countdown = -1;  /* allocations still allowed; -1: never fail */
static unsigned long fa_failed; /* allocations refused since the start */
static bool fa_resolving;       /* inside dlsym, which may itself allocate */
static void *(*fa_real_malloc)(size_t);
static void *(*fa_real_calloc)(size_t, size_t);
static void *(*fa_real_realloc)(void *, size_t);

static void fa_fail_after(long n)
{
	fa_countdown = n;
}

static void fa_reset(void)
{
	fa_countdown = -1;
}

/* Looks the real functions up once; malloc last, as the "done" flag. */
static void fa_resolve(void)
{
	if (fa_real_malloc)
		return;
	fa_resolving = true;
	fa_real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	fa_real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	fa_real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	fa_resolving = false;
	if (!fa_real_malloc || !fa_real_calloc || !fa_real_realloc)
		abort();
}

/* True if this allocation is to fail. */
static bool fa_refuse(void)
{
	if (fa_countdown == 0) {
		fa_failed++;
		return true;
	}
	if (fa_countdown > 0)
		fa_countdown--;
	return false;
}

void *malloc(size_t n)
{
	if (fa_resolving)
		return NULL;
	fa_resolve();
	return fa_refuse() ? NULL : fa_real_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	/* dlsym's own error path may ask for memory while we resolve: it copes with NULL. */
	if (fa_resolving)
		return NULL;
	fa_resolve();
	return fa_refuse() ? NULL : fa_real_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	if (fa_resolving)
		return NULL;
	fa_resolve();
	return fa_refuse() ? NULL : fa_real_realloc(p, n);
}

#endif
