/*
 * A set of 64-bit numbers kept as sorted, disjoint, non-adjacent closed intervals: which origin
 * numbers a worker has handled from another (broker/persist.h). Numbers arrive mostly in order,
 * so the set is one interval most of the time and a few after restarts; lookups bisect.
 * A zeroed struct is an empty set that owns no memory.
 */
#ifndef STARLING_IVSET_H
#define STARLING_IVSET_H

#include <stdbool.h>
#include <stdint.h>

struct iv {
	uint64_t lo, hi; /* lo <= hi */
};

struct ivset {
	struct iv *v; /* n intervals, ascending, with gaps of at least one number between them */
	uint32_t n;
	uint32_t cap;
};

/* Whether x is in the set. */
bool ivset_has(const struct ivset *s, uint64_t x);

/* Adds [lo, hi] (lo <= hi), merging what it touches. ST_OK or ST_ERR_NOMEM (set unchanged). */
int ivset_add(struct ivset *s, uint64_t lo, uint64_t hi);

/* The largest number in the set, 0 if empty. */
uint64_t ivset_max(const struct ivset *s);

void ivset_free(struct ivset *s);

#endif
