/*
 * The retained-message store of src/index/retain.h.
 *
 * Data layout: a tree of topic levels from `root` (which stands for no level and never holds a
 * value). Each node keeps its children in a hash table keyed by xxh3 of the level (seeded per
 * store, so clients cannot choose colliding topics), its parent, its own hash (to find its slot
 * in the parent), and the value retained on the topic that ends there.
 *
 * retain_match walks the tree along a filter depth first with no recursion and no stack: a
 * node knows its parent and its slot in the parent's table, so "the next child under a '+'" is
 * the next used slot after its own, and climbing recovers the filter position by scanning back
 * over one level. Walk memory is constant whatever the depth of the tree or the filter.
 * Wildcards at the first level enumerate the root's children, and only they do: that is where
 * topics beginning with '$' are skipped [MQTT-4.7.2-1].
 *
 * Invariants: every node but the root holds a value or a child (nodes are pruned as their last
 * value goes); `count` is the number of non-NULL values. The callbacks of retain_match must not
 * change the store. Expected workload: up to millions of topics, a SUBSCRIBE walking a few of
 * them, a retained PUBLISH setting one.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "starling/error.h"
#include "base/hmap.h"
#include "starling/topic.h"
#include "retain.h"

struct rnode {
	struct hmap kids;     /* children keyed by xxh3 of their level */
	struct rnode *parent; /* NULL at the root */
	void *value;          /* the caller's value retained on this topic, or NULL */
	uint64_t hash;        /* xxh3 of level: the key in parent->kids */
	uint32_t len;         /* level length in bytes */
	uint8_t level[];      /* the level, not NUL-terminated */
};

struct retain {
	struct rnode *root; /* the empty path; never NULL, never holds a value */
	size_t count;       /* values held */
	size_t nodes;       /* nodes besides the root: bounds the walks */
	uint64_t seed;      /* xxh3 seed of every level hashed by this store */
};

/* A level to compare against a node's. */
struct bytes {
	const uint8_t *p; /* borrowed bytes */
	size_t len;       /* their length */
};

static uint64_t hash_level(const struct retain *rs, const uint8_t *p, size_t len)
{
	return XXH3_64bits_withSeed(p, len, rs->seed);
}

static bool node_eq(const void *val, const void *key)
{
	const struct rnode *x = val;
	const struct bytes *k = key;

	return x->len == k->len && memcmp(x->level, k->p, k->len) == 0;
}

static struct rnode *kid_find(const struct retain *rs, const struct rnode *x, const uint8_t *level,
                              size_t len)
{
	struct bytes k = {level, len};

	if (x->kids.count == 0)
		return NULL;
	return hmap_find(&x->kids, hash_level(rs, level, len), node_eq, &k);
}

/*
 * The first child of x in a used slot at index >= i. The root's children whose level starts
 * with '$' are skipped: only a first-level wildcard enumerates them, and it must not match
 * such topics [MQTT-4.7.2-1].
 */
static struct rnode *kid_from(const struct retain *rs, const struct rnode *x, size_t i)
{
	const struct hmap *m = &x->kids;
	struct rnode *kid;

	for (i = hmap_next(m, i); i < hmap_cap(m); i = hmap_next(m, i + 1)) {
		kid = m->slots[i].val;
		if (x != rs->root || kid->len == 0 || kid->level[0] != '$')
			return kid;
	}
	return NULL;
}

/* The sibling enumerated after x (not the root), or NULL. */
static struct rnode *next_sibling(const struct retain *rs, const struct rnode *x)
{
	return kid_from(rs, x->parent, hmap_slot_of(&x->parent->kids, x->hash, x) + 1);
}

/* Frees x and its ancestors below the root while they hold nothing. */
static void prune(struct retain *rs, struct rnode *x)
{
	struct rnode *p;

	while (x != rs->root && !x->value && x->kids.count == 0) {
		p = x->parent;
		hmap_remove(&p->kids, x->hash, x);
		assert(rs->nodes > 0);
		rs->nodes--;
		free(x);
		x = p;
	}
}

static struct rnode *node_new(struct rnode *parent, const uint8_t *level, size_t len)
{
	struct rnode *x = malloc(offsetof(struct rnode, level) + len);

	if (!x)
		return NULL;
	memset(x, 0, offsetof(struct rnode, level));
	x->parent = parent;
	x->len = (uint32_t)len;
	memcpy(x->level, level, len);
	return x;
}

/*
 * The node of topic t, created with its missing ancestors if `create`. Returns NULL if absent,
 * or out of memory (having pruned what it created).
 */
static struct rnode *path(struct retain *rs, const uint8_t *t, size_t len, bool create)
{
	struct rnode *x = rs->root, *kid;
	size_t pos = 0, ll, n;
	uint64_t h;

	for (n = 0; n <= len; n++) {
		ll = st_topic_level_len(t + pos, len - pos);
		kid = kid_find(rs, x, t + pos, ll);
		if (!kid && create) {
			h = hash_level(rs, t + pos, ll);
			kid = node_new(x, t + pos, ll);
			if (kid && hmap_insert(&x->kids, h, kid)) {
				free(kid);
				kid = NULL;
			}
			if (!kid) {
				prune(rs, x);
				return NULL;
			}
			kid->hash = h;
			rs->nodes++;
		}
		if (!kid)
			return NULL;
		x = kid;
		if (pos + ll == len)
			return x;
		pos += ll + 1;
	}
	assert(!"retain path: more levels than bytes");
	return NULL;
}

struct retain *retain_new(void)
{
	struct retain *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	rs->root = node_new(NULL, (const uint8_t *)"", 0);
	if (!rs->root) {
		free(rs);
		return NULL;
	}
	rs->seed = hmap_seed_new();
	return rs;
}

/* Frees the tree without recursion: pending nodes are chained through `parent`. */
void retain_free(struct retain *rs, retain_fn release, void *ctx)
{
	struct rnode *todo, *x, *kid;
	size_t i;

	if (!rs)
		return;
	todo = rs->root;
	while (todo) {
		x = todo;
		todo = x->parent;
		for (i = hmap_next(&x->kids, 0); i < hmap_cap(&x->kids);
		     i = hmap_next(&x->kids, i + 1)) {
			kid = x->kids.slots[i].val;
			kid->parent = todo;
			todo = kid;
		}
		if (x->value && release)
			release(ctx, x->value);
		hmap_fini(&x->kids);
		free(x);
	}
	free(rs);
}

int retain_set(struct retain *rs, const uint8_t *topic, size_t len, void *value, void **old)
{
	struct rnode *x;

	/* Topic names are at least one byte [MQTT-4.7.3-1] and fit an MQTT string. */
	assert(len > 0 && len <= UINT16_MAX);
	*old = NULL;
	x = path(rs, topic, len, value != NULL);
	if (!x)
		return value ? ST_ERR_NOMEM : ST_OK;
	*old = x->value;
	x->value = value;
	if (*old && !value) {
		assert(rs->count > 0);
		rs->count--;
		prune(rs, x);
	} else if (!*old && value) {
		rs->count++;
	}
	return ST_OK;
}

void *retain_get(const struct retain *rs, const uint8_t *topic, size_t len)
{
	struct rnode *x = path((struct retain *)rs, topic, len, false);

	return x ? x->value : NULL;
}

/* Reports every value in the subtree of top, top included, in preorder. */
static void emit_subtree(const struct retain *rs, const struct rnode *top, retain_fn fn, void *ctx)
{
	const struct rnode *y = top, *next;
	size_t steps;

	for (steps = 0; steps <= rs->nodes + 1; steps++) {
		if (y->value)
			fn(ctx, y->value);
		next = kid_from(rs, y, 0);
		/* Climb until a node has a sibling left; bounded by the depth of y below top. */
		while (!next && y != top) {
			next = next_sibling(rs, y);
			y = y->parent;
		}
		if (!next)
			return;
		y = next;
	}
	assert(!"retain emit_subtree: walk longer than the tree");
}

void retain_each(const struct retain *rs, retain_fn fn, void *ctx)
{
	emit_subtree(rs, rs->root, fn, ctx);
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
 * x is the node being visited and pos the start of the filter level below it (len + 1 once
 * every level is consumed). Every node is entered once and left once, which bounds the loop.
 */
void retain_match(const struct retain *rs, const uint8_t *filter, size_t len, retain_fn fn,
                  void *ctx)
{
	const struct rnode *root = rs->root, *x = root, *next;
	size_t pos = 0, ll, ppos, steps;
	bool leaving = false;

	assert(len > 0 && len <= UINT16_MAX);
	for (steps = 0; steps <= 2 * rs->nodes + 2; steps++) {
		if (!leaving) {
			leaving = true;
			if (pos > len) {
				if (x->value)
					fn(ctx, x->value);
				continue;
			}
			ll = st_topic_level_len(filter + pos, len - pos);
			/* '#' matches x's own topic too: "sport/#" matches "sport". */
			if (ll == 1 && filter[pos] == '#') {
				emit_subtree(rs, x, fn, ctx);
				continue;
			}
			if (ll == 1 && filter[pos] == '+')
				next = kid_from(rs, x, 0);
			else
				next = kid_find(rs, x, filter + pos, ll);
			if (next) {
				x = next;
				pos += ll + 1;
				leaving = false;
			}
			continue;
		}
		if (x == root)
			return;
		/* Leaving x: under a '+' its next sibling is the next candidate. A valid filter has
		 * '+' only as a whole level [MQTT-4.7.1-3], so one byte tells; the level may be the
		 * empty last one, which ends at len. */
		ppos = level_start_before(filter, pos);
		if (ppos < len && filter[ppos] == '+' && (next = next_sibling(rs, x))) {
			x = next;
			leaving = false;
			continue;
		}
		x = x->parent;
		pos = ppos;
	}
	assert(!"retain_match: walk longer than the tree");
}

size_t retain_count(const struct retain *rs)
{
	return rs->count;
}

size_t retain_node_count(const struct retain *rs)
{
	return rs->nodes;
}
