/*
 * The subscription index: topic filter -> subscribers, looked up once per PUBLISH.
 *
 * Layout. Filters without wildcards live in one open-addressing hash table keyed by
 * xxh3_64 of the whole filter: a publish to an exact topic is one probe, then a walk of a
 * contiguous array of (subscriber, data) pairs. Filters with '+' or '#' live in a trie whose
 * nodes each hold a hash table of children keyed by xxh3_64 of the level, a '+' child, and the
 * subscriptions ending there ('#' subscriptions separately). Matching walks the topic's levels
 * once, following the exact child and the '+' child at each level.
 *
 * The index knows nothing of sessions or sockets: a subscriber is an opaque pointer and each
 * subscription carries 64 opaque bits of caller data (the broker keeps QoS, options and the
 * MQTT 5 subscription identifier there). A (filter, subscriber) pair is unique. Matching
 * reports one call per matching (filter, subscriber) pair; overlapping filters of one subscriber
 * produce several calls and the caller merges them. A topic starting with '$' is not matched by
 * a filter whose first level is a wildcard.
 *
 * Expected workload: 1 to 1M filters; fan-out of thousands of subscribers on one exact topic;
 * lookups far outnumber changes. Not thread-safe: one index per worker.
 */
#ifndef STARLING_SUBIDX_H
#define STARLING_SUBIDX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct subidx;

/* Called once per matching subscription; must not modify the index. */
typedef void (*subidx_match_fn)(void *ctx, void *subscriber, uint64_t data);

/* Returns a new empty index, or NULL when out of memory. */
struct subidx *subidx_new(void);
void subidx_free(struct subidx *idx);

/*
 * Adds (filter, subscriber) with `data`, or replaces the data of an existing pair. The filter
 * must be valid (st_topic_filter_is_valid); it is copied. Returns 1 if added, 0 if replaced,
 * ST_ERR_NOMEM.
 */
int subidx_add(struct subidx *idx, const uint8_t *filter, size_t len, void *subscriber,
               uint64_t data);

/* Removes (filter, subscriber). Returns ST_OK, or ST_ERR_FILTER if the pair was not there. */
int subidx_remove(struct subidx *idx, const uint8_t *filter, size_t len, void *subscriber);

/* Calls fn for every subscription whose filter matches topic name `topic`. */
void subidx_match(const struct subidx *idx, const uint8_t *topic, size_t len, subidx_match_fn fn,
                  void *ctx);

/* Number of (filter, subscriber) pairs held. */
size_t subidx_count(const struct subidx *idx);

/* Trie nodes held for wildcard filters, the root excepted: for tests and memory statistics. */
size_t subidx_node_count(const struct subidx *idx);

#ifdef __cplusplus
}
#endif
#endif
