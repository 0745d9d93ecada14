/*
 * Unit tests of bridge/backoff.c and bridge/address.c: the constant delay, Decorrelated
 * Jitter's bounds and its formula step by step with a scripted random source, the spread it
 * reaches with a real one, the reset; the address choice with and without round_robin and the
 * checks of the main address.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "bridge/address.h"
#include "bridge/backoff.h"
#include "testutil.h"

/* A scripted random source: returns the values in turn, then repeats the last. */
struct script {
	const uint64_t *v; /* the values */
	unsigned n, i;     /* count, next */
};

static uint64_t scripted(void *ctx)
{
	struct script *s = ctx;
	uint64_t v = s->v[s->i];

	if (s->i + 1 < s->n)
		s->i++;
	return v;
}

static void test_constant(void)
{
	struct script s = {(const uint64_t[]){12345}, 1, 0};
	struct bridge_backoff bo;

	bridge_backoff_init(&bo, 20, 20, scripted, &s);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(bridge_backoff_next_ms(&bo), 20000);
	CU_ASSERT_EQUAL(s.i, 0); /* a constant delay draws nothing */
}

/* delay = min(cap, base + r % (prev * 3 - base + 1)), prev starting at base. */
static void test_jitter_formula(void)
{
	static const uint64_t r[] = {0, 9999, 10000, 40000, UINT64_MAX};
	struct script s = {r, 5, 0};
	struct bridge_backoff bo;

	bridge_backoff_init(&bo, 5, 30, scripted, &s);
	/* prev 5000: range [5000, 15000]. */
	CU_ASSERT_EQUAL(bridge_backoff_next_ms(&bo), 5000);
	CU_ASSERT_EQUAL(bridge_backoff_next_ms(&bo), 5000 + 9999);
	/* prev 14999: [5000, 44997]; then prev 15000: [5000, 45000], capped at 30000. */
	CU_ASSERT_EQUAL(bridge_backoff_next_ms(&bo), 15000);
	CU_ASSERT_EQUAL(bridge_backoff_next_ms(&bo), 30000);
	/* prev 30000: [5000, 90000]. */
	{
		uint64_t want = 5000 + UINT64_MAX % 85001;

		CU_ASSERT_EQUAL(bridge_backoff_next_ms(&bo), want > 30000 ? 30000 : want);
	}
	bridge_backoff_reset(&bo);
	CU_ASSERT_EQUAL(bo.prev_ms, 5000);
}

static void test_jitter_bounds_and_spread(void)
{
	static const struct {
		uint32_t base, cap; /* seconds */
	} cases[] = {{5, 30}, {1, 1000}, {10, 11}, {1, 2}, {3600, 86400}};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint64_t seed = 42 + c, lo = UINT64_MAX, hi = 0, base, cap;
		unsigned at_cap = 0;
		struct bridge_backoff bo;

		bridge_backoff_init(&bo, cases[c].base, cases[c].cap, bridge_rand_splitmix64,
		                    &seed);
		base = (uint64_t)cases[c].base * 1000;
		cap = (uint64_t)cases[c].cap * 1000;
		for (int i = 0; i < 20000; i++) {
			uint64_t d = bridge_backoff_next_ms(&bo);

			CU_ASSERT_TRUE(d >= base && d <= cap);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			at_cap += d == cap;
			if (i % 1000 == 999)
				bridge_backoff_reset(&bo);
		}
		/* The whole range is reached, near both ends. */
		CU_ASSERT_TRUE(lo < base + (cap - base) / 50 + 1);
		CU_ASSERT_TRUE(hi == cap);
		CU_ASSERT_TRUE(at_cap > 0);
	}
}

/* Right after a reset the delay is at most 3 * base: the sequence starts over. */
static void test_reset_starts_over(void)
{
	uint64_t seed = 7;
	struct bridge_backoff bo;

	bridge_backoff_init(&bo, 2, 600, bridge_rand_splitmix64, &seed);
	for (int round = 0; round < 1000; round++) {
		for (int i = 0; i < 10; i++)
			(void)bridge_backoff_next_ms(&bo);
		bridge_backoff_reset(&bo);
		CU_ASSERT_TRUE(bridge_backoff_next_ms(&bo) <= 6000);
	}
}

static void test_splitmix(void)
{
	uint64_t a = 1, b = 1, c = 2;
	uint64_t x = bridge_rand_splitmix64(&a);

	CU_ASSERT_EQUAL(x, bridge_rand_splitmix64(&b)); /* same seed, same sequence */
	CU_ASSERT_NOT_EQUAL(x, bridge_rand_splitmix64(&c));
	CU_ASSERT_NOT_EQUAL(x, bridge_rand_splitmix64(&a));
}

static struct config_bridge with_addrs(unsigned n, bool round_robin)
{
	struct config_bridge b;

	memset(&b, 0, sizeof(b));
	b.addr_count = n;
	b.round_robin = round_robin;
	return b;
}

static void test_round_robin(void)
{
	struct config_bridge b = with_addrs(3, true);
	struct bridge_addr_sel s;

	bridge_addr_init(&s, &b);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 0);
	bridge_addr_failed(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 1);
	bridge_addr_connected(&s, 1000);
	/* Equals: no going back to the first while connected. */
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, 1000 + 10 * BRIDGE_MAIN_RETRY_MS));
	bridge_addr_failed(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 2);
	bridge_addr_failed(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 0); /* wraps */
}

static void test_main_address(void)
{
	struct config_bridge b = with_addrs(3, false);
	struct bridge_addr_sel s;

	bridge_addr_init(&s, &b);
	bridge_addr_connected(&s, 500);
	/* On the main address: nothing to check. */
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, 500 + 100 * BRIDGE_MAIN_RETRY_MS));
	bridge_addr_failed(&s);
	bridge_addr_failed(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 2);
	/* Not connected yet: no check either. */
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, 1u << 30));
	bridge_addr_connected(&s, 10000);
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, 10000));
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, 10000 + BRIDGE_MAIN_RETRY_MS - 1));
	CU_ASSERT_TRUE(bridge_addr_main_due(&s, 10000 + BRIDGE_MAIN_RETRY_MS));
	bridge_addr_main_down(&s, 16000);
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, 16000 + BRIDGE_MAIN_RETRY_MS - 1));
	CU_ASSERT_TRUE(bridge_addr_main_due(&s, 16000 + BRIDGE_MAIN_RETRY_MS));
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 2);
	bridge_addr_main_up(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 0);
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, UINT64_MAX));
	/* The secondary connection lost: the next address, and no check pending. */
	bridge_addr_failed(&s);
	bridge_addr_connected(&s, 0 + 1);
	bridge_addr_failed(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 2);
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, UINT64_MAX));
	/* A probe result after the connection is gone schedules nothing. */
	bridge_addr_main_down(&s, 5);
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, UINT64_MAX));
}

static void test_one_address(void)
{
	struct config_bridge b = with_addrs(1, false);
	struct bridge_addr_sel s;

	bridge_addr_init(&s, &b);
	bridge_addr_failed(&s);
	CU_ASSERT_EQUAL(bridge_addr_current(&s), 0);
	bridge_addr_connected(&s, 3);
	CU_ASSERT_FALSE(bridge_addr_main_due(&s, UINT64_MAX));
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"constant delay", test_constant},
	        {"jitter formula", test_jitter_formula},
	        {"jitter bounds and spread", test_jitter_bounds_and_spread},
	        {"reset starts over", test_reset_starts_over},
	        {"splitmix64", test_splitmix},
	        {"round robin", test_round_robin},
	        {"main address", test_main_address},
	        {"one address", test_one_address},
	        {NULL, NULL},
	};

	tu_add_suite("bridge_backoff", tests);
	return tu_run_registry();
}
