/*
 * Tests of the open-addressing hash table (src/base/hmap.c) against a plain array.
 *
 * The hashes are chosen to hurt: few distinct low bits (long probe runs that wrap around the
 * end of the array) and equal full hashes for different keys (so the equality callback, not
 * the hash, decides). Random inserts and removals then check after each step that every key
 * present is found in its slot, every key absent is not, and iteration sees exactly the
 * present ones: backward-shift deletion must never strand an entry behind a hole.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "starling/error.h"
#include "base/hmap.h"
#include "testutil.h"

#define KEYS 2000

/* A value of the table: its key is its index in the keys array. */
struct item {
	unsigned key;  /* the key */
	uint64_t hash; /* the hash it is stored under */
	bool present;  /* in the table now */
};

static bool item_eq(const void *val, const void *key)
{
	return ((const struct item *)val)->key == *(const unsigned *)key;
}

/* A hostile hash: 16 home slots at most, and pairs of keys with the same full hash. */
static uint64_t bad_hash(unsigned key, unsigned spread)
{
	return ((uint64_t)(key / 2) % spread) * 0x10001ull + ((uint64_t)(key / 2) << 40);
}

static void check_all(const struct hmap *m, struct item *items, size_t present)
{
	size_t i, seen = 0;

	for (i = 0; i < KEYS; i++) {
		void *got = hmap_find(m, items[i].hash, item_eq, &items[i].key);

		CU_ASSERT_PTR_EQUAL(got, items[i].present ? &items[i] : NULL);
		if (items[i].present)
			CU_ASSERT_PTR_EQUAL(m->slots[hmap_slot_of(m, items[i].hash, &items[i])].val,
			                    &items[i]);
	}
	for (i = hmap_next(m, 0); i < hmap_cap(m); i = hmap_next(m, i + 1)) {
		CU_ASSERT(((struct item *)m->slots[i].val)->present);
		seen++;
	}
	CU_ASSERT_EQUAL(seen, present);
	CU_ASSERT_EQUAL(m->count, present);
	CU_ASSERT(m->count * 4 <= hmap_cap(m) * 3);
}

static void run(unsigned spread)
{
	static struct item items[KEYS];
	struct hmap m;
	size_t present = 0, step;
	unsigned k;

	memset(&m, 0, sizeof(m));
	for (k = 0; k < KEYS; k++) {
		items[k].key = k;
		items[k].hash = bad_hash(k, spread);
		items[k].present = false;
	}
	srand(spread);
	for (step = 0; step < 6000; step++) {
		/* Fill for a while, then drain, then refill: the table grows and shrinks. */
		bool fill = (step / 1500) % 2 == 0 ? rand() % 4 != 0 : rand() % 4 == 0;

		k = (unsigned)rand() % KEYS;
		if (fill && !items[k].present) {
			CU_ASSERT_EQUAL(hmap_insert(&m, items[k].hash, &items[k]), ST_OK);
			items[k].present = true;
			present++;
		} else if (!fill && items[k].present) {
			hmap_remove(&m, items[k].hash, &items[k]);
			items[k].present = false;
			present--;
		}
		if (step % 97 == 0)
			check_all(&m, items, present);
	}
	check_all(&m, items, present);
	for (k = 0; k < KEYS; k++) {
		if (items[k].present)
			hmap_remove(&m, items[k].hash, &items[k]);
	}
	/* An emptied table owns no memory. */
	CU_ASSERT_PTR_NULL(m.slots);
	CU_ASSERT_EQUAL(hmap_cap(&m), 0);
	hmap_fini(&m);
}

static void test_clustered(void)
{
	run(16);
}

static void test_spread(void)
{
	run(1u << 20);
}

static void test_reserve(void)
{
	static struct item items[100];
	struct hmap m;
	struct hmap_slot *slots;
	unsigned k;

	memset(&m, 0, sizeof(m));
	CU_ASSERT_PTR_NULL(hmap_find(&m, 1, item_eq, &k));
	CU_ASSERT_EQUAL(hmap_reserve(&m, 100), ST_OK);
	slots = m.slots;
	for (k = 0; k < 100; k++) {
		items[k].key = k;
		CU_ASSERT_EQUAL(hmap_insert(&m, k * 7919ull, &items[k]), ST_OK);
	}
	/* Reserved room means no reallocation while filling it. */
	CU_ASSERT_PTR_EQUAL(m.slots, slots);
	CU_ASSERT_EQUAL(m.count, 100);
	hmap_fini(&m);
	CU_ASSERT_PTR_NULL(m.slots);
	CU_ASSERT_EQUAL(m.count, 0);
	CU_ASSERT_NOT_EQUAL(hmap_seed_new(), hmap_seed_new());
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"clustered hashes, wrapping runs", test_clustered},
	        {"spread hashes", test_spread},
	        {"reserve, fini, seeds", test_reserve},
	        {NULL, NULL},
	};

	tu_add_suite("hmap", tests);
	return tu_run_registry();
}
