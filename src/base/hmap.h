/*
 * A small open-addressing hash table of non-NULL pointers keyed by a 64-bit hash, shared by the
 * subscription index (src/index/subidx.c) and the retained-message store (src/index/retain.c).
 *
 * The table stores (hash, value) pairs and never looks at keys: the caller hashes its key
 * (xxh3) and compares keys through an equality callback, so a value can be a node that holds
 * its own key bytes and no key is stored twice. Linear probing over a power-of-two array; the
 * load stays at or under 3/4 so a probe always meets an empty slot; deletion shifts the
 * following run back (no tombstones), so lookups never slow down after churn. A zeroed struct
 * is an empty table that owns no memory: the trie's many leaves carry no child array.
 *
 * Lookups are static inline so that the caller's equality function inlines into the probe
 * loop: a level lookup in the subscription trie is on the PUBLISH path.
 */
#ifndef STARLING_HMAP_H
#define STARLING_HMAP_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One slot; val == NULL marks it empty. */
struct hmap_slot {
	uint64_t hash; /* the caller's hash of the key of val */
	void *val;     /* the caller's value, never NULL while the slot is used */
};

struct hmap {
	struct hmap_slot *slots; /* mask + 1 slots, or NULL while the table has never held one */
	uint32_t mask;           /* capacity - 1; capacity is a power of two (0 when slots NULL) */
	uint32_t count;          /* used slots, at most 3/4 of the capacity */
};

/* True when val (a value of the table) is the one whose key is `key` (caller-defined). */
typedef bool (*hmap_eq_fn)(const void *val, const void *key);

/*
 * A random seed for hashing keys that clients choose (topic levels, filters): with a fixed
 * seed a client could pick filters whose hashes share their low bits and turn every probe into
 * a walk of one long run.
 */
uint64_t hmap_seed_new(void);

/* Frees the slot array; the values are the caller's. The table is empty and reusable after. */
void hmap_fini(struct hmap *m);

/*
 * Makes room for `count` values in total without a further allocation. Returns ST_OK or
 * ST_ERR_NOMEM (the table is then unchanged).
 */
int hmap_reserve(struct hmap *m, size_t count);

/*
 * Inserts val (non-NULL) under hash. The caller has checked that its key is absent. Returns
 * ST_OK or ST_ERR_NOMEM (table unchanged); cannot fail after hmap_reserve() made room.
 */
int hmap_insert(struct hmap *m, uint64_t hash, void *val);

/* Removes the slot holding exactly `val` under hash; val must be present. May shrink. */
void hmap_remove(struct hmap *m, uint64_t hash, const void *val);

/* Index of the slot holding exactly `val` under hash; val must be present. */
size_t hmap_slot_of(const struct hmap *m, uint64_t hash, const void *val);

static inline size_t hmap_cap(const struct hmap *m)
{
	return m->slots ? (size_t)m->mask + 1 : 0;
}

/* The first used slot at index >= i, or hmap_cap(m) when there is none: iteration. */
static inline size_t hmap_next(const struct hmap *m, size_t i)
{
	size_t cap = hmap_cap(m);

	for (; i < cap; i++) {
		if (m->slots[i].val)
			return i;
	}
	return cap;
}

/* The value whose key equals `key` (eq decides) under hash, or NULL. */
static inline void *hmap_find(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key)
{
	size_t i, n;

	if (m->count == 0)
		return NULL;
	i = hash & m->mask;
	/* The load bound keeps an empty slot in every table, so the walk ends well before the
	 * bound; the bound only makes that termination explicit. */
	for (n = 0; n <= m->mask; n++) {
		const struct hmap_slot *s = &m->slots[i];

		if (!s->val)
			return NULL;
		if (s->hash == hash && eq(s->val, key))
			return s->val;
		i = (i + 1) & m->mask;
	}
	assert(!"hmap_find: table without an empty slot");
	return NULL;
}

#ifdef __cplusplus
}
#endif
#endif
