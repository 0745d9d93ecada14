/*
 * The retained-message store: topic name -> one value (the broker stores a message reference).
 *
 * Layout: a tree of topic levels, each node holding a hash table of its children keyed by
 * xxh3_64 of the level, and the value retained on the topic that ends there. A SUBSCRIBE
 * walks the tree along its filter: exact levels are one probe, '+' visits every child, '#'
 * visits the whole subtree. Empty interior nodes are pruned when their last value goes.
 *
 * The store owns no values: it hands back the previous value on replacement so that the caller
 * drops its reference. It knows nothing of messages, sessions or sockets. Not thread-safe.
 */
#ifndef STARLING_RETAIN_H
#define STARLING_RETAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct retain;

typedef void (*retain_fn)(void *ctx, void *value);

/* Returns a new empty store, or NULL when out of memory. */
struct retain *retain_new(void);

/* Frees the store, calling release(value) for every value still held (release may be NULL). */
void retain_free(struct retain *rs, retain_fn release, void *ctx);

/*
 * Sets the value retained on topic name `topic` (valid, no wildcards); value NULL deletes it.
 * On success stores the value that was there before (or NULL) in *old, which the caller now
 * owns. Returns ST_OK or ST_ERR_NOMEM (the store is then unchanged).
 */
int retain_set(struct retain *rs, const uint8_t *topic, size_t len, void *value, void **old);

/* The value retained on `topic`, or NULL. */
void *retain_get(const struct retain *rs, const uint8_t *topic, size_t len);

/*
 * Calls fn(ctx, value) for every retained value whose topic matches filter (valid). Topics
 * starting with '$' are not matched by a first-level wildcard.
 */
void retain_match(const struct retain *rs, const uint8_t *filter, size_t len, retain_fn fn,
                  void *ctx);

/* Calls fn(ctx, value) for every value held, '$' topics included (a snapshot of the store). */
void retain_each(const struct retain *rs, retain_fn fn, void *ctx);

/* Number of values held. */
size_t retain_count(const struct retain *rs);

/* Topic-level nodes held, the root excepted: for tests and memory statistics. */
size_t retain_node_count(const struct retain *rs);

#ifdef __cplusplus
}
#endif
#endif
