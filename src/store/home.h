/*
 * The shard function: the worker (0 .. n - 1) that is home to a client id or shared group key
 * among n workers. The broker routes sessions with it (xw_home, src/broker/xw.c) and its log
 * files hold each session on its home worker's log, so whatever writes or reshards a
 * persistence directory (store_dir_recover, tools/starling-store-gen.c) must compute exactly
 * the same: it lives here, below both, and nowhere else.
 */
#ifndef STARLING_STORE_HOME_H
#define STARLING_STORE_HOME_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

/* A fixed seed: every worker, and every start of the broker, computes the same home. */
#define STORE_HOME_SEED 0x686f6d6521ull

static inline unsigned store_home(unsigned n, const uint8_t *key, size_t len)
{
	return n > 1 ? (unsigned)(XXH3_64bits_withSeed(key, len, STORE_HOME_SEED) % n) : 0;
}

#endif
