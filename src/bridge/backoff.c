/*
 * Reconnect delays of a bridge (backoff.h). Called once per connection attempt, so the cost
 * is nothing; what matters is that every delay stays within [base, cap], which the unit test
 * checks over long random sequences.
 */
#include "backoff.h"

#include <assert.h>

void bridge_backoff_init(struct bridge_backoff *bo, uint32_t base_s, uint32_t cap_s,
                         bridge_rand_fn rnd, void *rnd_ctx)
{
	assert(base_s <= cap_s);
	bo->base_ms = (uint64_t)base_s * 1000;
	bo->cap_ms = (uint64_t)cap_s * 1000;
	bo->prev_ms = bo->base_ms;
	bo->rnd = rnd;
	bo->rnd_ctx = rnd_ctx;
}

uint64_t bridge_backoff_next_ms(struct bridge_backoff *bo)
{
	uint64_t hi, d;

	if (bo->cap_ms == bo->base_ms)
		return bo->base_ms;
	/* random_between(base, prev * 3), inclusive; prev <= cap < 2^42, so no overflow. */
	hi = bo->prev_ms * 3;
	d = bo->base_ms + bo->rnd(bo->rnd_ctx) % (hi - bo->base_ms + 1);
	if (d > bo->cap_ms)
		d = bo->cap_ms;
	bo->prev_ms = d;
	return d;
}

void bridge_backoff_reset(struct bridge_backoff *bo)
{
	bo->prev_ms = bo->base_ms;
}

uint64_t bridge_rand_splitmix64(void *ctx)
{
	uint64_t *state = ctx;
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
