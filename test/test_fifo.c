/*
 * Tests of ring FIFO growth (src/base/fifo.c) against a plain array: random pushes and pops
 * move the head around the ring, so growth meets every split of the entries between the end of
 * the array and its start; after each step every entry must be where the ring says, in order.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "base/fifo.h"
#include "starling/error.h"
#include "testutil.h"

struct item {
	uint64_t n;   /* sequence number */
	char pad[12]; /* an element size that is not a power of two */
};

static void test_against_model(void)
{
	static uint64_t model[100000];
	struct item *ring = NULL;
	uint32_t head = 0, len = 0, cap = 0, mhead = 0, mlen = 0;
	uint64_t next = 0;

	srand(7);
	for (unsigned step = 0; step < 50000; step++) {
		if (tu_rand(3) != 0) { /* push, twice as often as pop: the ring grows */
			if (len == cap) {
				uint32_t old = cap;

				CU_ASSERT_EQUAL_FATAL(fifo_grow((void **)&ring, &head, len, &cap,
				                                sizeof(*ring), 4),
				                      ST_OK);
				CU_ASSERT_EQUAL(cap, old ? old * 2 : 4);
				CU_ASSERT_EQUAL(head, 0);
			}
			ring[(head + len++) & (cap - 1)] = (struct item){.n = next};
			model[mhead + mlen++] = next++;
		} else if (len) {
			CU_ASSERT_EQUAL(ring[head].n, model[mhead]);
			head = (head + 1) & (cap - 1);
			len--;
			mhead++;
			mlen--;
		}
		CU_ASSERT_EQUAL_FATAL(len, mlen);
		for (uint32_t i = 0; i < len; i += 1 + len / 16)
			CU_ASSERT_EQUAL(ring[(head + i) & (cap - 1)].n, model[mhead + i]);
	}
	free(ring);
}

static void test_empty_and_full_wrap(void)
{
	struct item *ring = NULL;
	uint32_t head = 0, cap = 0;

	/* An empty ring grows to `first`. */
	CU_ASSERT_EQUAL(fifo_grow((void **)&ring, &head, 0, &cap, sizeof(*ring), 8), ST_OK);
	CU_ASSERT_EQUAL(cap, 8);
	/* Full, with the oldest entry at index 5: 3 entries at the end, 5 at the start. */
	head = 5;
	for (uint32_t i = 0; i < 8; i++)
		ring[(head + i) & 7].n = 100 + i;
	CU_ASSERT_EQUAL(fifo_grow((void **)&ring, &head, 8, &cap, sizeof(*ring), 8), ST_OK);
	CU_ASSERT_EQUAL(cap, 16);
	for (uint32_t i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(ring[i].n, 100 + i);
	free(ring);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"against a model", test_against_model},
	        {"empty, and full across the wrap", test_empty_and_full_wrap},
	        {NULL, NULL},
	};

	tu_add_suite("fifo", tests);
	return tu_run_registry();
}
