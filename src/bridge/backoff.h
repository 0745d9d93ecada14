/*
 * The delay before a bridge tries to connect again (mosquitto.conf(5), restart_timeout): a
 * constant (`restart_timeout 20`, base == cap), or "Decorrelated Jitter" between a base and a
 * cap (`restart_timeout 10 60`; the default is base 5, cap 30):
 *     delay = min(cap, random_between(base, previous_delay * 3)),  previous_delay starts at base
 * (the formula Mosquitto cites, from the AWS Architecture Blog's "Exponential Backoff And
 * Jitter"). A successful connection starts the sequence over. Milliseconds, so the jitter is
 * finer than Mosquitto's whole seconds. The random source is the caller's (tests give a fixed
 * sequence); bridge_rand_splitmix64 is a small one for the broker.
 */
#ifndef STARLING_BRIDGE_BACKOFF_H
#define STARLING_BRIDGE_BACKOFF_H

#include <stdint.h>

/* Returns 64 uniformly random bits; ctx is the caller's state. */
typedef uint64_t (*bridge_rand_fn)(void *ctx);

struct bridge_backoff {
	uint64_t base_ms;   /* the first delay, and the lowest */
	uint64_t cap_ms;    /* the highest; == base_ms: a constant delay */
	uint64_t prev_ms;   /* the last delay given (base_ms after a reset) */
	bridge_rand_fn rnd; /* random source */
	void *rnd_ctx;      /* its state, borrowed */
};

/* base_s <= cap_s (config_bridge.c checks it), in seconds as restart_timeout gives them. */
void bridge_backoff_init(struct bridge_backoff *bo, uint32_t base_s, uint32_t cap_s,
                         bridge_rand_fn rnd, void *rnd_ctx);

/* The delay before the next attempt, within [base_ms, cap_ms]. */
uint64_t bridge_backoff_next_ms(struct bridge_backoff *bo);

/* After a connection that succeeded: the next delay starts from the base again. */
void bridge_backoff_reset(struct bridge_backoff *bo);

/* SplitMix64 over the 64-bit state *ctx (seed it with anything, e.g. getrandom()). */
uint64_t bridge_rand_splitmix64(void *ctx);

#endif
