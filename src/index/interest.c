/*
 * The interest summary (see interest.h). Adding and removing filters are control-path
 * operations (SUBSCRIBE, UNSUBSCRIBE, a session's end); only interest_lookup runs per publish.
 */
#include "interest.h"

#include <assert.h>
#include <stdlib.h>
#include <xxhash.h>

#include "starling/error.h"
#include "starling/topic.h"

/* A fixed seed: every holder and every router must agree on the bucket of a topic. */
#define INTEREST_SEED 0x5374726c696e6721ull

int interest_init(struct interest *in, unsigned bits)
{
	size_t n = (size_t)1 << bits;

	assert(bits > 0 && bits <= 28);
	in->exact = calloc(n, sizeof(*in->exact));
	if (!in->exact)
		return ST_ERR_NOMEM;
	in->mask = (uint32_t)(n - 1);
	atomic_init(&in->wild, 0);
	atomic_init(&in->any, 0);
	return ST_OK;
}

void interest_fini(struct interest *in)
{
	free((void *)in->exact);
	in->exact = NULL;
}

int interest_local_init(struct interest_local *l, struct interest *in, unsigned holder)
{
	assert(holder < INTEREST_HOLDERS_MAX);
	l->shared = in;
	l->exact_count = calloc((size_t)in->mask + 1, sizeof(*l->exact_count));
	if (!l->exact_count)
		return ST_ERR_NOMEM;
	l->wild_count = 0;
	l->count = 0;
	l->bit = 1ull << holder;
	return ST_OK;
}

void interest_local_fini(struct interest_local *l)
{
	free(l->exact_count);
	l->exact_count = NULL;
}

uint64_t interest_hash(const uint8_t *topic, size_t len)
{
	return XXH3_64bits_withSeed(topic, len, INTEREST_SEED);
}

uint64_t interest_targets(const struct interest *in, const uint8_t *topic, size_t len,
                          uint64_t among)
{
	uint64_t wild = atomic_load_explicit(&in->wild, memory_order_relaxed) & among;

	if (wild == among)
		return wild;
	if (!(atomic_load_explicit(&in->any, memory_order_relaxed) & among))
		return 0;
	return (atomic_load_explicit(&in->exact[interest_hash(topic, len) & in->mask],
	                             memory_order_relaxed) |
	        wild) &
	       among;
}

void interest_add(struct interest_local *l, uint64_t hash, bool wild)
{
	struct interest *in = l->shared;

	/* "any" is set before a kind's bit and cleared after it. */
	if (l->count++ == 0)
		atomic_fetch_or_explicit(&in->any, l->bit, memory_order_release);
	if (wild) {
		if (l->wild_count++ == 0)
			atomic_fetch_or_explicit(&in->wild, l->bit, memory_order_release);
		return;
	}
	if (l->exact_count[hash & in->mask]++ == 0)
		atomic_fetch_or_explicit(&in->exact[hash & in->mask], l->bit, memory_order_release);
}

void interest_remove(struct interest_local *l, uint64_t hash, bool wild)
{
	struct interest *in = l->shared;

	assert(l->count > 0);
	if (--l->count == 0)
		atomic_fetch_and_explicit(&in->any, ~l->bit, memory_order_release);
	if (wild) {
		assert(l->wild_count > 0);
		if (--l->wild_count == 0)
			atomic_fetch_and_explicit(&in->wild, ~l->bit, memory_order_release);
		return;
	}
	assert(l->exact_count[hash & in->mask] > 0);
	if (--l->exact_count[hash & in->mask] == 0)
		atomic_fetch_and_explicit(&in->exact[hash & in->mask], ~l->bit,
		                          memory_order_release);
}

void interest_add_filter(struct interest_local *l, const uint8_t *filter, size_t len)
{
	bool wild;

	if (!l)
		return;
	wild = st_topic_filter_has_wildcard(filter, len);
	interest_add(l, wild ? 0 : interest_hash(filter, len), wild);
}

void interest_remove_filter(struct interest_local *l, const uint8_t *filter, size_t len)
{
	bool wild;

	if (!l)
		return;
	wild = st_topic_filter_has_wildcard(filter, len);
	interest_remove(l, wild ? 0 : interest_hash(filter, len), wild);
}
