/*
 * The subscription index of src/index/subidx.h.
 *
 * Data layout. A filter without wildcards is one `struct exact` in the `exact` table, keyed by
 * xxh3 of the whole filter. A filter with '+' or '#' is a path in a trie from `root`: each
 * level is an exact child (in the node's `kids` table, keyed by xxh3 of the level) or the '+'
 * child (`plus`); a filter ending in "/#" (or "#") ends on the node before the '#', in its
 * `multi` list, every other filter in its `subs` list. Both kinds of node keep their
 * subscriptions in a `struct subvec`: one inline subscription, or a contiguous array that gains
 * a subscriber -> position table past SUBVEC_INDEX_MIN entries so that subscribing thousands of
 * clients to one topic stays linear. Keys are hashed with a per-index random seed so that
 * clients cannot choose colliding filters.
 *
 * Matching walks the trie depth first without recursion and without a stack: each node keeps
 * its parent, a node has at most two children that match one topic level (the exact one, then
 * '+'), and climbing back recovers the topic position by scanning back over one level. The
 * walk's memory is constant, so a topic of 30,000 levels costs time, never stack. Each trie
 * node is entered and left at most once per match, which bounds the loop.
 *
 * Invariants: every trie node but the root holds a subscription or a child (empty nodes are
 * pruned as their last subscription goes); an empty subvec owns no memory; `count` is the sum
 * of all subvec lengths.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "starling/error.h"
#include "base/hmap.h"
#include "starling/topic.h"
#include "subidx.h"

/* Arrays longer than this get a subscriber -> position table; shorter ones are scanned. */
#define SUBVEC_INDEX_MIN 16u
/* The first heap array's capacity (a single subscription is held inline). */
#define SUBVEC_ARR_MIN 4u
/* Subscriptions per filter are bounded by the 32-bit length. */
#define SUBVEC_CAP_MAX (UINT32_MAX / 2)

struct sub {
	void *subscriber; /* the caller's opaque subscriber */
	uint64_t data;    /* the caller's 64 bits (QoS, options, subscription identifier) */
};

/* The heap part of a subvec holding more than one subscription. */
struct subarr {
	struct hmap by_sub; /* subscriber -> position + 1 in v; empty until n > SUBVEC_INDEX_MIN */
	struct sub v[];     /* cap entries, the first n used, in no particular order */
};

/* The subscriptions on one filter. */
struct subvec {
	union {
		struct sub one;     /* the subscription while cap == 1 */
		struct subarr *arr; /* the array while cap > 1 (n >= 2) */
	} u;
	uint32_t n;   /* subscriptions held */
	uint32_t cap; /* 0 (empty), 1 (inline), or the array's capacity */
};

/* A filter without wildcards: an entry of the exact table. */
struct exact {
	struct subvec subs; /* the subscriptions on this filter */
	uint32_t len;       /* filter length in bytes */
	uint8_t filter[];   /* the filter, not NUL-terminated */
};

/* A trie node: one level of one or more wildcard filters. */
struct tnode {
	struct hmap kids;     /* exact-level children, keyed by xxh3 of their level */
	struct tnode *plus;   /* the '+' child, or NULL */
	struct tnode *parent; /* NULL at the root */
	struct subvec subs;   /* filters that end at this node */
	struct subvec multi;  /* filters that end with a '#' level just below this node */
	uint32_t len;         /* level length in bytes */
	uint8_t level[];      /* the level, not NUL-terminated ("+" for a '+' child) */
};

struct subidx {
	struct hmap exact;  /* xxh3(filter) -> struct exact, filters without wildcards */
	struct tnode *root; /* the wildcard trie; never NULL, never pruned */
	size_t count;       /* (filter, subscriber) pairs held */
	size_t nodes;       /* trie nodes besides the root: bounds the match walk */
	uint64_t seed;      /* xxh3 seed of every key hashed by this index */
};

/* A byte string to compare against a stored key. */
struct bytes {
	const uint8_t *p; /* borrowed bytes */
	size_t len;       /* their length */
};

/* Looks a subscriber up in a subvec's position table. */
struct subkey {
	const struct sub *v;    /* the array the positions index */
	const void *subscriber; /* the subscriber looked for */
};

static uint64_t hash_bytes(const struct subidx *idx, const uint8_t *p, size_t len)
{
	return XXH3_64bits_withSeed(p, len, idx->seed);
}

static uint64_t hash_subscriber(const struct subidx *idx, const void *subscriber)
{
	return XXH3_64bits_withSeed(&subscriber, sizeof(subscriber), idx->seed);
}

/* --- subvec ------------------------------------------------------------------------------ */

static struct sub *subvec_v(const struct subvec *sv)
{
	return sv->cap <= 1 ? (struct sub *)&sv->u.one : sv->u.arr->v;
}

static bool pos_eq(const void *val, const void *key)
{
	const struct subkey *k = key;

	return k->v[(uintptr_t)val - 1].subscriber == k->subscriber;
}

/* Position of subscriber in sv, or -1. */
static long subvec_find(const struct subidx *idx, const struct subvec *sv, const void *subscriber)
{
	const struct sub *v = subvec_v(sv);
	uint32_t i;

	if (sv->cap > 1 && sv->u.arr->by_sub.count) {
		struct subkey k = {v, subscriber};
		void *pos =
		        hmap_find(&sv->u.arr->by_sub, hash_subscriber(idx, subscriber), pos_eq, &k);

		return pos ? (long)((uintptr_t)pos - 1) : -1;
	}
	for (i = 0; i < sv->n; i++) {
		if (v[i].subscriber == subscriber)
			return (long)i;
	}
	return -1;
}

/* Makes room for one more subscription. Returns ST_OK or ST_ERR_NOMEM (sv unchanged). */
static int subvec_grow(struct subvec *sv)
{
	struct subarr *arr;
	uint32_t cap;

	if (sv->n < sv->cap)
		return ST_OK;
	if (sv->cap == 0) {
		sv->cap = 1;
		return ST_OK;
	}
	if (sv->cap >= SUBVEC_CAP_MAX)
		return ST_ERR_NOMEM;
	cap = sv->cap == 1 ? SUBVEC_ARR_MIN : sv->cap * 2;
	if (sv->cap == 1) {
		arr = malloc(sizeof(*arr) + cap * sizeof(struct sub));
		if (!arr)
			return ST_ERR_NOMEM;
		memset(&arr->by_sub, 0, sizeof(arr->by_sub));
		arr->v[0] = sv->u.one;
	} else {
		arr = realloc(sv->u.arr, sizeof(*arr) + cap * sizeof(struct sub));
		if (!arr)
			return ST_ERR_NOMEM;
	}
	sv->u.arr = arr;
	sv->cap = cap;
	return ST_OK;
}

/* Adds or replaces (subscriber, data). Returns 1 added, 0 replaced, or ST_ERR_NOMEM. */
static int subvec_put(const struct subidx *idx, struct subvec *sv, void *subscriber, uint64_t data)
{
	long found = subvec_find(idx, sv, subscriber);
	struct sub *v;
	uint32_t i;
	int err;

	if (found >= 0) {
		subvec_v(sv)[found].data = data;
		return 0;
	}
	err = subvec_grow(sv);
	if (err)
		return err;
	/* Once built, the position table follows the array until the array goes. */
	if (sv->cap > 1 && (sv->n + 1 > SUBVEC_INDEX_MIN || sv->u.arr->by_sub.count)) {
		struct hmap *by_sub = &sv->u.arr->by_sub;
		bool build = by_sub->count == 0;

		/* Reserve first: once room is made the inserts below cannot fail. */
		err = hmap_reserve(by_sub, (size_t)sv->n + 1);
		if (err)
			return err;
		for (i = 0; build && i < sv->n; i++)
			(void)hmap_insert(by_sub, hash_subscriber(idx, sv->u.arr->v[i].subscriber),
			                  (void *)(uintptr_t)(i + 1));
		(void)hmap_insert(by_sub, hash_subscriber(idx, subscriber),
		                  (void *)(uintptr_t)(sv->n + 1));
	}
	v = subvec_v(sv);
	v[sv->n].subscriber = subscriber;
	v[sv->n].data = data;
	sv->n++;
	return 1;
}

/* Returns the array's memory to the inline form or a smaller array when it emptied out. */
static void subvec_shrink(struct subvec *sv)
{
	struct subarr *arr = sv->u.arr, *smaller;

	assert(sv->cap > 1);
	if (sv->n <= 1) {
		struct sub last = arr->v[0];

		hmap_fini(&arr->by_sub);
		free(arr);
		sv->u.one = last;
		sv->cap = sv->n;
		return;
	}
	if (sv->cap > SUBVEC_ARR_MIN && sv->n * 4 <= sv->cap) {
		/* A failed shrink keeps the larger, still valid, array. */
		smaller = realloc(arr, sizeof(*arr) + (sv->cap / 2) * sizeof(struct sub));
		if (smaller) {
			sv->u.arr = smaller;
			sv->cap /= 2;
		}
	}
}

/* Removes subscriber. Returns true if it was there. */
static bool subvec_del(const struct subidx *idx, struct subvec *sv, const void *subscriber)
{
	long found = subvec_find(idx, sv, subscriber);
	uint32_t i, last;
	struct sub *v;

	if (found < 0)
		return false;
	i = (uint32_t)found;
	last = sv->n - 1;
	v = subvec_v(sv);
	if (sv->cap > 1 && sv->u.arr->by_sub.count) {
		struct hmap *by_sub = &sv->u.arr->by_sub;

		hmap_remove(by_sub, hash_subscriber(idx, subscriber), (void *)(uintptr_t)(i + 1));
		if (i != last) {
			uint64_t h = hash_subscriber(idx, v[last].subscriber);

			by_sub->slots[hmap_slot_of(by_sub, h, (void *)(uintptr_t)(last + 1))].val =
			        (void *)(uintptr_t)(i + 1);
		}
	}
	v[i] = v[last];
	sv->n--;
	if (sv->cap == 1)
		sv->cap = 0;
	else
		subvec_shrink(sv);
	return true;
}

static void subvec_fini(struct subvec *sv)
{
	if (sv->cap > 1) {
		hmap_fini(&sv->u.arr->by_sub);
		free(sv->u.arr);
	}
	sv->n = 0;
	sv->cap = 0;
}

static void subvec_emit(const struct subvec *sv, subidx_match_fn fn, void *ctx)
{
	const struct sub *v = subvec_v(sv);
	uint32_t i;

	for (i = 0; i < sv->n; i++)
		fn(ctx, v[i].subscriber, v[i].data);
}

/* --- exact filters ----------------------------------------------------------------------- */

static bool exact_eq(const void *val, const void *key)
{
	const struct exact *e = val;
	const struct bytes *k = key;

	return e->len == k->len && memcmp(e->filter, k->p, k->len) == 0;
}

static int exact_add(struct subidx *idx, const uint8_t *filter, size_t len, void *subscriber,
                     uint64_t data)
{
	uint64_t h = hash_bytes(idx, filter, len);
	struct bytes k = {filter, len};
	struct exact *e = hmap_find(&idx->exact, h, exact_eq, &k);
	bool created = false;
	int ret;

	if (!e) {
		e = malloc(offsetof(struct exact, filter) + len);
		if (!e)
			return ST_ERR_NOMEM;
		memset(&e->subs, 0, sizeof(e->subs));
		e->len = (uint32_t)len;
		memcpy(e->filter, filter, len);
		if (hmap_insert(&idx->exact, h, e)) {
			free(e);
			return ST_ERR_NOMEM;
		}
		created = true;
	}
	ret = subvec_put(idx, &e->subs, subscriber, data);
	if (ret < 0 && created) {
		hmap_remove(&idx->exact, h, e);
		free(e);
	}
	return ret;
}

static int exact_remove(struct subidx *idx, const uint8_t *filter, size_t len,
                        const void *subscriber)
{
	uint64_t h = hash_bytes(idx, filter, len);
	struct bytes k = {filter, len};
	struct exact *e = hmap_find(&idx->exact, h, exact_eq, &k);

	if (!e || !subvec_del(idx, &e->subs, subscriber))
		return ST_ERR_FILTER;
	if (e->subs.n == 0) {
		hmap_remove(&idx->exact, h, e);
		free(e);
	}
	return ST_OK;
}

/* --- the wildcard trie ------------------------------------------------------------------- */

static bool node_eq(const void *val, const void *key)
{
	const struct tnode *x = val;
	const struct bytes *k = key;

	return x->len == k->len && memcmp(x->level, k->p, k->len) == 0;
}

static const struct tnode *kid_find(const struct subidx *idx, const struct tnode *x,
                                    const uint8_t *level, size_t len)
{
	struct bytes k = {level, len};

	if (x->kids.count == 0)
		return NULL;
	return hmap_find(&x->kids, hash_bytes(idx, level, len), node_eq, &k);
}

static struct tnode *node_new(struct tnode *parent, const uint8_t *level, size_t len)
{
	struct tnode *x = malloc(offsetof(struct tnode, level) + len);

	if (!x)
		return NULL;
	memset(x, 0, offsetof(struct tnode, level));
	x->parent = parent;
	x->len = (uint32_t)len;
	memcpy(x->level, level, len);
	return x;
}

static bool node_is_empty(const struct tnode *x)
{
	return x->subs.n == 0 && x->multi.n == 0 && x->kids.count == 0 && !x->plus;
}

/* Frees x and its ancestors below the root while they hold nothing. */
static void prune(struct subidx *idx, struct tnode *x)
{
	struct tnode *p;

	while (x != idx->root && node_is_empty(x)) {
		p = x->parent;
		if (p->plus == x)
			p->plus = NULL;
		else
			hmap_remove(&p->kids, hash_bytes(idx, x->level, x->len), x);
		assert(idx->nodes > 0);
		idx->nodes--;
		free(x);
		x = p;
	}
}

/* The child of x for one filter level, created if `create`; NULL if absent or out of memory. */
static struct tnode *kid_get(struct subidx *idx, struct tnode *x, const uint8_t *level, size_t len,
                             bool create)
{
	bool plus = len == 1 && level[0] == '+';
	struct tnode *kid;

	if (plus)
		kid = x->plus;
	else
		kid = (struct tnode *)kid_find(idx, x, level, len);
	if (kid || !create)
		return kid;
	kid = node_new(x, level, len);
	if (!kid)
		return NULL;
	if (plus) {
		x->plus = kid;
	} else if (hmap_insert(&x->kids, hash_bytes(idx, level, len), kid)) {
		free(kid);
		return NULL;
	}
	idx->nodes++;
	return kid;
}

/*
 * Follows a wildcard filter from the root, creating missing nodes if `create`. Returns the
 * subvec the filter's subscriptions live in and its node in *node (the deepest node reached,
 * for pruning, when the walk fails), or NULL if a node is missing or could not be created.
 */
static struct subvec *trie_path(struct subidx *idx, const uint8_t *f, size_t len, bool create,
                                struct tnode **node)
{
	struct tnode *x = idx->root, *kid;
	size_t pos = 0, ll, n;

	*node = x;
	for (n = 0; n <= len; n++) {
		ll = st_topic_level_len(f + pos, len - pos);
		/* '#' is the whole last level [MQTT-4.7.1-2]: the filter ends in x's multi list. */
		if (ll == 1 && f[pos] == '#' && pos + 1 == len)
			return &x->multi;
		kid = kid_get(idx, x, f + pos, ll, create);
		if (!kid)
			return NULL;
		*node = x = kid;
		if (pos + ll == len)
			return &x->subs;
		pos += ll + 1;
	}
	assert(!"trie_path: more levels than bytes");
	return NULL;
}

/* Start of the level before the one that starts at pos (pos >= 1; pos - 1 is its '/'). */
static size_t level_start_before(const uint8_t *s, size_t pos)
{
	size_t j;

	for (j = pos - 1; j > 0; j--) {
		if (s[j - 1] == '/')
			return j;
	}
	return 0;
}

/*
 * Reports the trie's subscriptions matching topic t. x is the node being visited and pos the
 * start of the topic level below it (len + 1 once every level is consumed). A topic starting
 * with '$' is not matched by a first-level '+' or '#' [MQTT-4.7.2-1], so with `dollar` the
 * root's '#' list and '+' child are skipped.
 */
static void trie_match(const struct subidx *idx, const uint8_t *t, size_t len, subidx_match_fn fn,
                       void *ctx)
{
	const struct tnode *root = idx->root, *x = root, *p, *next;
	bool dollar = len > 0 && t[0] == '$', leaving = false;
	size_t pos = 0, ll, steps;

	for (steps = 0; steps <= 2 * idx->nodes + 2; steps++) {
		if (!leaving) {
			/* "a/#" matches "a" itself as well as everything below it. */
			if (x != root || !dollar)
				subvec_emit(&x->multi, fn, ctx);
			if (pos > len) {
				subvec_emit(&x->subs, fn, ctx);
				leaving = true;
				continue;
			}
			ll = st_topic_level_len(t + pos, len - pos);
			next = kid_find(idx, x, t + pos, ll);
			if (!next && (x != root || !dollar))
				next = x->plus;
			if (next) {
				x = next;
				pos += ll + 1;
			} else {
				leaving = true;
			}
			continue;
		}
		/* Leaving x: its '+' sibling is still to visit if x was the exact child. */
		if (x == root)
			return;
		p = x->parent;
		if (x != p->plus && p->plus && (p != root || !dollar)) {
			x = p->plus;
			leaving = false;
		} else {
			x = p;
			pos = level_start_before(t, pos);
		}
	}
	assert(!"trie_match: walk longer than the trie");
}

/* Frees the whole trie without recursion: pending nodes are chained through `parent`. */
static void trie_free(struct tnode *root)
{
	struct tnode *todo = root, *x, *kid;
	size_t i;

	root->parent = NULL;
	while (todo) {
		x = todo;
		todo = x->parent;
		for (i = hmap_next(&x->kids, 0); i < hmap_cap(&x->kids);
		     i = hmap_next(&x->kids, i + 1)) {
			kid = x->kids.slots[i].val;
			kid->parent = todo;
			todo = kid;
		}
		if (x->plus) {
			x->plus->parent = todo;
			todo = x->plus;
		}
		hmap_fini(&x->kids);
		subvec_fini(&x->subs);
		subvec_fini(&x->multi);
		free(x);
	}
}

/* --- the API ----------------------------------------------------------------------------- */

static bool has_wildcard(const uint8_t *f, size_t len)
{
	return memchr(f, '+', len) || memchr(f, '#', len);
}

struct subidx *subidx_new(void)
{
	struct subidx *idx = calloc(1, sizeof(*idx));

	if (!idx)
		return NULL;
	idx->root = node_new(NULL, (const uint8_t *)"", 0);
	if (!idx->root) {
		free(idx);
		return NULL;
	}
	idx->seed = hmap_seed_new();
	return idx;
}

void subidx_free(struct subidx *idx)
{
	size_t i;

	if (!idx)
		return;
	for (i = hmap_next(&idx->exact, 0); i < hmap_cap(&idx->exact);
	     i = hmap_next(&idx->exact, i + 1)) {
		struct exact *e = idx->exact.slots[i].val;

		subvec_fini(&e->subs);
		free(e);
	}
	hmap_fini(&idx->exact);
	trie_free(idx->root);
	free(idx);
}

int subidx_add(struct subidx *idx, const uint8_t *filter, size_t len, void *subscriber,
               uint64_t data)
{
	struct subvec *sv;
	struct tnode *node;
	int ret;

	/* Filters are at least one byte [MQTT-4.7.3-1] and fit an MQTT string. */
	assert(len > 0 && len <= UINT16_MAX);
	if (!has_wildcard(filter, len))
		ret = exact_add(idx, filter, len, subscriber, data);
	else {
		sv = trie_path(idx, filter, len, true, &node);
		ret = sv ? subvec_put(idx, sv, subscriber, data) : ST_ERR_NOMEM;
		if (ret < 0)
			prune(idx, node);
	}
	if (ret > 0)
		idx->count++;
	return ret;
}

int subidx_remove(struct subidx *idx, const uint8_t *filter, size_t len, void *subscriber)
{
	struct subvec *sv;
	struct tnode *node;
	int ret;

	assert(len > 0 && len <= UINT16_MAX);
	if (!has_wildcard(filter, len)) {
		ret = exact_remove(idx, filter, len, subscriber);
	} else {
		sv = trie_path(idx, filter, len, false, &node);
		if (!sv || !subvec_del(idx, sv, subscriber))
			return ST_ERR_FILTER;
		prune(idx, node);
		ret = ST_OK;
	}
	if (ret == ST_OK) {
		assert(idx->count > 0);
		idx->count--;
	}
	return ret;
}

void subidx_match(const struct subidx *idx, const uint8_t *topic, size_t len, subidx_match_fn fn,
                  void *ctx)
{
	const struct tnode *root = idx->root;

	/* Only wildcard filters (a '#' collector's index): no topic hash to compute. */
	if (idx->exact.count) {
		struct bytes k = {topic, len};
		const struct exact *e =
		        hmap_find(&idx->exact, hash_bytes(idx, topic, len), exact_eq, &k);

		if (e)
			subvec_emit(&e->subs, fn, ctx);
	}
	if (!node_is_empty(root))
		trie_match(idx, topic, len, fn, ctx);
}

size_t subidx_count(const struct subidx *idx)
{
	return idx->count;
}

size_t subidx_node_count(const struct subidx *idx)
{
	return idx->nodes;
}
