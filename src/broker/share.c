/*
 * Shared subscription groups (see share.h). Joining and leaving are rare next to publishing;
 * share_pick is on the publish path and walks at most the member list once.
 */
#include "share.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster.h"
#include "index/interest.h"
#include "index/subidx.h"
#include "session.h"
#include "starling/topic.h"
#include "subdata.h"

static const char share_prefix[] = "$share/";
#define SHARE_PREFIX_LEN (sizeof(share_prefix) - 1)

int share_parse(const uint8_t *f, size_t len, struct st_bytes *filter)
{
	const uint8_t *name, *slash;
	size_t name_len;

	if (len < SHARE_PREFIX_LEN || memcmp(f, share_prefix, SHARE_PREFIX_LEN) != 0)
		return 0;
	name = f + SHARE_PREFIX_LEN;
	slash = memchr(name, '/', len - SHARE_PREFIX_LEN);
	if (!slash)
		return ST_ERR_FILTER;
	name_len = (size_t)(slash - name);
	if (name_len == 0 || memchr(name, '+', name_len) || memchr(name, '#', name_len))
		return ST_ERR_FILTER;
	filter->ptr = slash + 1;
	filter->len = (uint32_t)(len - SHARE_PREFIX_LEN - name_len - 1);
	if (filter->len == 0 || !st_topic_filter_is_valid(filter->ptr, filter->len))
		return ST_ERR_FILTER;
	return 1;
}

struct share_key {
	const uint8_t *ptr; /* the full "$share/..." filter */
	size_t len;         /* its bytes */
};

static bool share_eq(const void *val, const void *key)
{
	const struct share_group *g = val;
	const struct share_key *k = key;

	return g->key_len == k->len && memcmp(g->key, k->ptr, k->len) == 0;
}

static uint64_t share_hash(const struct share_registry *reg, const uint8_t *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, reg->seed);
}

struct share_group *share_find(struct share_registry *reg, const uint8_t *key, size_t len)
{
	struct share_key k = {key, len};

	return hmap_find(&reg->groups, share_hash(reg, key, len), share_eq, &k);
}

void share_group_ref(struct share_group *g)
{
	assert(atomic_load_explicit(&g->refs, memory_order_relaxed) > 0);
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void share_group_unref(struct share_group *g)
{
	uint32_t refs = atomic_load_explicit(&g->refs, memory_order_acquire);

	assert(refs > 0);
	if (refs != 1 && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	assert(g->nmembers == 0);
	free(g->members);
	free(g->key);
	free(g);
}

static struct share_group *share_new(struct share_registry *reg, struct subidx *idx,
                                     const uint8_t *key, size_t len)
{
	struct share_group *g = calloc(1, sizeof(*g));
	struct st_bytes filter;

	if (!g)
		return NULL;
	g->key = malloc(len);
	if (!g->key || share_parse(key, len, &filter) != 1)
		goto fail;
	memcpy(g->key, key, len);
	g->key_len = (uint16_t)len;
	g->filter_off = (uint16_t)(filter.ptr - key);
	g->owner = reg->owner;
	atomic_init(&g->refs, 1);
	if (hmap_reserve(&reg->groups, reg->groups.count + 1) != ST_OK)
		goto fail;
	if (subidx_add(idx, g->key + g->filter_off, len - g->filter_off, g,
	               subdata_make(0, 0) | SUBDATA_SHARED) < 0)
		goto fail;
	interest_add_filter(reg->interest, g->key + g->filter_off, len - g->filter_off);
	if (reg->cluster)
		g->clustered = cluster_share(reg->cluster, g->key, len, true);
	hmap_insert(&reg->groups, share_hash(reg, key, len), g);
	return g;
fail:
	free(g->key);
	free(g);
	return NULL;
}

/* The same member: the same local session, or the same remote (worker, generation). */
static bool share_same(const struct share_member *a, const struct share_member *b)
{
	return a->s ? a->s == b->s : !b->s && a->worker == b->worker && a->gen == b->gen;
}

static struct share_member *share_member_find(struct share_group *g, const struct share_member *who)
{
	for (uint32_t i = 0; i < g->nmembers; i++)
		if (share_same(&g->members[i], who))
			return &g->members[i];
	return NULL;
}

int share_subscribe(struct share_registry *reg, struct subidx *idx, const uint8_t *key, size_t len,
                    const struct share_member *m, bool *added)
{
	struct share_group *g = share_find(reg, key, len);
	struct share_member *old;

	if (!g) {
		g = share_new(reg, idx, key, len);
		if (!g)
			return ST_ERR_NOMEM;
	}
	old = share_member_find(g, m);
	if (old) {
		old->data = m->data;
		old->online = m->online;
		*added = false;
		return ST_OK;
	}
	if (g->nmembers == g->cap) {
		uint32_t cap = g->cap ? g->cap * 2 : 4;
		struct share_member *mem = realloc(g->members, cap * sizeof(*mem));

		if (!mem) {
			if (g->nmembers == 0)
				share_unsubscribe(reg, idx, key, len, NULL);
			return ST_ERR_NOMEM;
		}
		g->members = mem;
		g->cap = cap;
	}
	g->members[g->nmembers++] = *m;
	*added = true;
	return ST_OK;
}

int share_unsubscribe(struct share_registry *reg, struct subidx *idx, const uint8_t *key,
                      size_t len, const struct share_member *who)
{
	struct share_group *g = share_find(reg, key, len);
	struct share_member *m;
	uint32_t i;

	if (!g)
		return ST_ERR_FILTER;
	m = who ? share_member_find(g, who) : NULL;
	i = m ? (uint32_t)(m - g->members) : g->nmembers;
	if (i < g->nmembers) {
		memmove(&g->members[i], &g->members[i + 1],
		        (g->nmembers - i - 1) * sizeof(*g->members));
		g->nmembers--;
		if (g->next > i)
			g->next--;
	} else if (who) {
		return ST_ERR_FILTER;
	}
	if (g->nmembers == 0) {
		subidx_remove(idx, g->key + g->filter_off, g->key_len - g->filter_off, g);
		interest_remove_filter(reg->interest, g->key + g->filter_off,
		                       g->key_len - g->filter_off);
		if (g->clustered)
			cluster_share(reg->cluster, g->key, g->key_len, false);
		hmap_remove(&reg->groups, share_hash(reg, key, len), g);
		share_group_unref(g);
	}
	return ST_OK;
}

void share_set_online(struct share_registry *reg, const uint8_t *key, size_t len,
                      const struct share_member *who, bool online)
{
	struct share_group *g = share_find(reg, key, len);
	struct share_member *m = g ? share_member_find(g, who) : NULL;

	if (m)
		m->online = online;
}

struct share_member *share_pick(struct share_group *g, const struct share_member *except)
{
	struct share_member *fallback = NULL;

	for (uint32_t n = 0; n < g->nmembers; n++) {
		uint32_t i = (g->next + n) % g->nmembers;
		struct share_member *m = &g->members[i];

		if (except && share_same(m, except))
			continue;
		if (m->s ? m->s->conn != NULL : m->online) {
			g->next = (i + 1) % g->nmembers;
			return m;
		}
		if (!fallback)
			fallback = m;
	}
	if (!fallback)
		return NULL;
	g->next = (uint32_t)((fallback - g->members) + 1) % g->nmembers;
	return fallback;
}

void share_registry_fini(struct share_registry *reg, struct subidx *idx)
{
	for (size_t i = hmap_next(&reg->groups, 0); i < hmap_cap(&reg->groups);
	     i = hmap_next(&reg->groups, i + 1)) {
		struct share_group *g = reg->groups.slots[i].val;

		subidx_remove(idx, g->key + g->filter_off, g->key_len - g->filter_off, g);
		interest_remove_filter(reg->interest, g->key + g->filter_off,
		                       g->key_len - g->filter_off);
		if (g->clustered)
			cluster_share(reg->cluster, g->key, g->key_len, false);
		g->nmembers = 0;
		share_group_unref(g);
	}
	hmap_fini(&reg->groups);
}
