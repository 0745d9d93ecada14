/*
 * The open-addressing hash table of src/base/hmap.h: linear probing, power-of-two capacity from 2
 * to 2^31, grown by doubling when an insert would pass a load of 3/4, halved when a removal
 * leaves it under 1/8 full, freed when it empties. Deletion shifts the rest of the probe run
 * back into the hole (Knuth's algorithm R), so there are no tombstones and a lookup's cost
 * depends only on the live entries.
 *
 * Expected workload: a few to a few million entries per table, lookups far more frequent than
 * changes. The hash must be well mixed in its low bits (xxh3 is): the home slot is hash & mask.
 */
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "starling/error.h"
#include "hmap.h"

/* The largest capacity: mask must fit in 32 bits. */
#define HMAP_CAP_MAX ((size_t)1 << 31)
/* The smallest capacity once the table holds something: two slots hold one value. */
#define HMAP_CAP_MIN ((size_t)2)

static bool load_fits(size_t count, size_t cap)
{
	return count * 4 <= cap * 3;
}

/* Puts (hash, val) in the first empty slot of its probe run; the table has room. */
static void place(struct hmap_slot *slots, size_t mask, uint64_t hash, void *val)
{
	size_t i = hash & mask;
	size_t n;

	for (n = 0; n <= mask; n++) {
		if (!slots[i].val) {
			slots[i].hash = hash;
			slots[i].val = val;
			return;
		}
		i = (i + 1) & mask;
	}
	assert(!"hmap place: no empty slot");
}

/* Moves every entry into a new array of `cap` slots. Returns ST_OK or ST_ERR_NOMEM. */
static int resize(struct hmap *m, size_t cap)
{
	struct hmap_slot *slots;
	size_t i, old_cap = hmap_cap(m);

	assert(cap >= HMAP_CAP_MIN && cap <= HMAP_CAP_MAX && (cap & (cap - 1)) == 0);
	assert(load_fits(m->count, cap));
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return ST_ERR_NOMEM;
	for (i = 0; i < old_cap; i++) {
		if (m->slots[i].val)
			place(slots, cap - 1, m->slots[i].hash, m->slots[i].val);
	}
	free(m->slots);
	m->slots = slots;
	m->mask = (uint32_t)(cap - 1);
	return ST_OK;
}

uint64_t hmap_seed_new(void)
{
	uint64_t seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* No entropy yet (early boot): a seed that differs per process and start is still far
	 * better than a constant one. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^
	       (uint64_t)(uintptr_t)&seed;
	return seed;
}

void hmap_fini(struct hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->mask = 0;
	m->count = 0;
}

int hmap_reserve(struct hmap *m, size_t count)
{
	size_t cap = hmap_cap(m);

	if (cap && load_fits(count, cap))
		return ST_OK;
	if (cap < HMAP_CAP_MIN)
		cap = HMAP_CAP_MIN;
	while (!load_fits(count, cap)) {
		if (cap >= HMAP_CAP_MAX)
			return ST_ERR_NOMEM;
		cap *= 2;
	}
	return resize(m, cap);
}

int hmap_insert(struct hmap *m, uint64_t hash, void *val)
{
	int err;

	assert(val);
	err = hmap_reserve(m, (size_t)m->count + 1);
	if (err)
		return err;
	place(m->slots, m->mask, hash, val);
	m->count++;
	return ST_OK;
}

size_t hmap_slot_of(const struct hmap *m, uint64_t hash, const void *val)
{
	size_t i, n;

	assert(m->count > 0);
	i = hash & m->mask;
	for (n = 0; n <= m->mask; n++) {
		if (m->slots[i].val == val)
			return i;
		assert(m->slots[i].val);
		i = (i + 1) & m->mask;
	}
	assert(!"hmap_slot_of: value not in the table");
	return 0;
}

/* True if home slot k lies cyclically in (hole, j]: the entry at j must then stay put. */
static bool home_between(size_t hole, size_t k, size_t j)
{
	if (hole <= j)
		return hole < k && k <= j;
	return hole < k || k <= j;
}

void hmap_remove(struct hmap *m, uint64_t hash, const void *val)
{
	size_t hole = hmap_slot_of(m, hash, val);
	size_t j = hole, n;

	/* Shift back every entry of the run after the hole whose home slot is not between the
	 * hole and itself: otherwise a later probe for it would stop at the hole. */
	for (n = 0; n <= m->mask; n++) {
		j = (j + 1) & m->mask;
		if (!m->slots[j].val)
			break;
		if (home_between(hole, m->slots[j].hash & m->mask, j))
			continue;
		m->slots[hole] = m->slots[j];
		hole = j;
	}
	m->slots[hole].val = NULL;
	m->slots[hole].hash = 0;
	m->count--;
	if (m->count == 0) {
		hmap_fini(m);
		return;
	}
	/* A failed shrink leaves a correct, merely roomy, table. */
	if (hmap_cap(m) > 8 && (size_t)m->count * 8 < hmap_cap(m))
		(void)resize(m, hmap_cap(m) / 2);
}
