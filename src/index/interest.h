/*
 * Interest summary: which holders (numbered 0..63) may have a subscription matching a topic,
 * read on every publish by whoever routes it, written only when a holder's subscriptions
 * change. It answers with a superset, never less: a holder that is named but has no match
 * costs a wasted look-up on its side, a holder that has a match is always named.
 *
 * Layout. The shared part is an array of 2^bits 64-bit masks indexed by the low bits of a
 * topic's XXH3 (bit h: holder h holds an exact filter hashing there) and one mask of the holders
 * that hold any wildcard filter. Each holder keeps its own counts beside it (exact filters per
 * bucket, wildcard filters), so it sets its bit when a count leaves zero and clears it when the
 * count returns to zero, with one atomic or/and on the shared word. Buckets shared by several
 * topics only cost false positives. The array is calloc'd: pages of buckets no filter hashes
 * to are never touched.
 *
 * Threads: the shared masks are atomics; each holder's counts belong to that holder's thread.
 * A publish that races with a subscription being added may miss it, exactly as if it had been
 * routed just before; once the adder has returned, every later look-up sees its bit.
 */
#ifndef STARLING_INTEREST_H
#define STARLING_INTEREST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INTEREST_HOLDERS_MAX 64

/* Shared by every holder. */
struct interest {
	_Atomic uint64_t any;    /* holders with at least one filter of either kind */
	_Atomic uint64_t wild;   /* holders with at least one wildcard filter */
	_Atomic uint64_t *exact; /* 2^bits masks: holders with an exact filter in the bucket */
	uint32_t mask;           /* 2^bits - 1 */
};

/* One holder's side: its counts and its bit. */
struct interest_local {
	struct interest *shared; /* borrowed */
	uint32_t *exact_count;   /* exact filters per bucket (2^bits entries) */
	uint64_t wild_count;     /* wildcard filters */
	uint64_t count;          /* filters of either kind */
	uint64_t bit;            /* 1 << holder number */
};

/* Sets up an empty summary of 2^bits buckets. ST_OK or ST_ERR_NOMEM. */
int interest_init(struct interest *in, unsigned bits);
void interest_fini(struct interest *in);

/* Sets up holder `holder`'s side of `in`. ST_OK or ST_ERR_NOMEM. */
int interest_local_init(struct interest_local *l, struct interest *in, unsigned holder);
void interest_local_fini(struct interest_local *l);

/* The hash of a topic name or exact filter, as both sides must compute it. */
uint64_t interest_hash(const uint8_t *topic, size_t len);

/* A filter was added (wild: it has '+' or '#'; hash: interest_hash of it otherwise). */
void interest_add(struct interest_local *l, uint64_t hash, bool wild);

/* A filter counted by interest_add was removed. */
void interest_remove(struct interest_local *l, uint64_t hash, bool wild);

/* interest_add/remove for a topic filter (a no-op when l is NULL: a single holder). */
void interest_add_filter(struct interest_local *l, const uint8_t *filter, size_t len);
void interest_remove_filter(struct interest_local *l, const uint8_t *filter, size_t len);

/*
 * Holders among `among` that may hold a filter matching topic. When every one of them holds a
 * wildcard filter (fan-in to a '#' collector), or none holds any filter, the answer is known
 * without hashing the topic.
 */
uint64_t interest_targets(const struct interest *in, const uint8_t *topic, size_t len,
                          uint64_t among);

/* Holders that may hold a filter matching a topic whose interest_hash is `hash`. */
static inline uint64_t interest_lookup(const struct interest *in, uint64_t hash)
{
	return atomic_load_explicit(&in->exact[hash & in->mask], memory_order_relaxed) |
	       atomic_load_explicit(&in->wild, memory_order_relaxed);
}

#endif
