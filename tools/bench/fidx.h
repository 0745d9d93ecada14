/*
 * A filter index for computing expected deliveries: which subscribers hold a filter matching a
 * topic name. It is the bench's own, deliberately unlike the broker's trie: the filters are
 * kept in one open-addressing multimap keyed by xxh3 of the filter string, and a topic is
 * looked up by enumerating every filter that could match it (each level literal or '+', and
 * each prefix followed by '#'), 2^L + 2^(L+1) - 1 probes for L levels. That is cheap for the
 * short topics of the scenarios (95 probes at 5 levels) and needs no wildcard logic beyond the
 * spec's definition, so it can check a broker's matching independently. Every hit is confirmed
 * with st_topic_matches, the reference matcher.
 */
#ifndef STARLING_BENCH_FIDX_H
#define STARLING_BENCH_FIDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_FIDX_LEVELS_MAX 8u /* topics with more levels cannot be looked up */

struct bench_fidx_entry {
	uint64_t hash;       /* xxh3 of the filter; 0 marks an empty slot */
	uint32_t subscriber; /* index of the subscriber holding the filter */
	uint32_t filter;     /* index of the filter string in the caller's table */
};

struct bench_fidx {
	struct bench_fidx_entry *slots; /* open addressing, linear probing */
	uint32_t mask;                  /* slot count - 1 (a power of two) */
	uint32_t count;                 /* entries inserted */
	uint32_t *stamp;                /* per subscriber: last lookup that matched it */
	uint32_t subscribers;           /* length of stamp */
	uint32_t lookup_id;             /* incremented per lookup, for stamp */
};

/* Allocates room for `capacity` entries and `subscribers` subscribers. Returns 0 or -ENOMEM. */
int bench_fidx_init(struct bench_fidx *ix, uint32_t capacity, uint32_t subscribers);
void bench_fidx_free(struct bench_fidx *ix);

/* Adds (filter string, subscriber); `filter` is an index the caller resolves with `text`. */
void bench_fidx_add(struct bench_fidx *ix, const char *text, size_t len, uint32_t subscriber,
                    uint32_t filter);

/* Resolves a filter index to its string, for confirming hits. */
typedef const char *(*bench_fidx_text_fn)(const void *ctx, uint32_t filter, size_t *len);

struct bench_fidx_result {
	uint32_t subscribers; /* distinct subscribers with at least one matching filter */
	uint32_t filters;     /* matching (filter, subscriber) entries */
};

/*
 * Counts the subscribers and filters matching topic name `topic`; if `subs` is not NULL, also
 * stores the distinct matching subscribers there (room for ix->subscribers entries). Returns 0,
 * or -E2BIG when the topic has more than BENCH_FIDX_LEVELS_MAX levels, or -EPROTO when a hit
 * fails the reference matcher (a bug in one of the two).
 */
int bench_fidx_match(struct bench_fidx *ix, const char *topic, bench_fidx_text_fn text,
                     const void *ctx, struct bench_fidx_result *res, uint32_t *subs);

#endif
