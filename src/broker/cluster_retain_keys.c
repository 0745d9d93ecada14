/*
 * Last write wins everywhere (issue 14, cluster_retain.c): the bucket's stream orders every write
 * of every node, and every node ends up applying the last entry of each key. A node shows its own
 * writes at once, so an entry of the stream must not undo a newer local write: per key with writes
 * of this node in flight, the count of writes not yet acknowledged and the revision of the last
 * acknowledged one decide (cl_rt_decide). While a write is in flight, entries are held back (the
 * latest one is kept): the write may be stored before or after them. Once nothing is in flight, the
 * kept entry is applied if it is not older than this node's last write (it may be that write
 * itself: applying it again is harmless), and dropped otherwise; with nothing in flight, an
 * entry is applied unless older than the last acknowledged write. A failed write leaves the
 * replica holding what the bucket does not: the key is read back and that value applied.
 *
 * The state is per key with writes of this node in flight or not yet seen back, under the
 * bucket's mutex: the link thread counts puts, libnats's delivery thread acknowledgements,
 * and the watcher's thread decides and settles. A few keys at a time, as many as retained
 * writes in flight. The watcher decides about an entry only after cl_rt_fence (cluster_retain.c):
 * every local write numbered before the entry is counted in flight by then.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cluster_retain_impl.h"
#include "starling/error.h"

struct cl_rkey_key {
	const char *key;
	size_t len;
};

static bool cl_rkey_eq(const void *val, const void *key)
{
	const struct cl_rkey *k = val;
	const struct cl_rkey_key *q = key;

	return k->len == q->len && memcmp(k->key, q->key, q->len) == 0;
}

static uint64_t cl_rt_hash(const struct cl_retain *rt, const char *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, rt->seed);
}

struct cl_rkey *cl_rkey_find(struct cl_retain *rt, const char *key, size_t len, uint64_t *hash)
{
	struct cl_rkey_key q = {key, len};

	*hash = cl_rt_hash(rt, key, len);
	return hmap_find(&rt->keys, *hash, cl_rkey_eq, &q);
}

/* Forgets a key once nothing of this node is in flight, unseen or to settle (under mu). */
void cl_rkey_settle(struct cl_retain *rt, struct cl_rkey *k, uint64_t hash)
{
	if (k->pending == 0 && k->seen >= k->own_rev && !k->held && !k->queued) {
		hmap_remove(&rt->keys, hash, k);
		free(k);
	}
}

/* One more write of this node in flight for key (under mu). */
void cl_rkey_put(struct cl_retain *rt, const char *key, size_t len)
{
	uint64_t hash;
	struct cl_rkey *k = cl_rkey_find(rt, key, len, &hash);

	if (k) {
		k->pending++;
		return;
	}
	k = calloc(1, sizeof(*k) + len);
	if (!k || hmap_insert(&rt->keys, hash, k) != ST_OK) {
		/* Out of memory: the key's older entries may show until its own comes back. */
		free(k);
		return;
	}
	k->pending = 1;
	k->len = (uint16_t)len;
	memcpy(k->key, key, len);
}

/* Puts k on the release list, once (under mu). */
void cl_rkey_queue(struct cl_retain *rt, struct cl_rkey *k)
{
	struct cl_rrepair *r;

	if (k->queued)
		return;
	r = malloc(sizeof(*r) + k->len + 1u);
	if (!r)
		return;
	r->next = NULL;
	memcpy(r->key, k->key, k->len);
	r->key[k->len] = '\0';
	if (rt->repairs_tail)
		rt->repairs_tail->next = r;
	else
		rt->repairs = r;
	rt->repairs_tail = r;
	k->queued = true;
}

/* A write of key ended: acknowledged at rev, or failed (rev 0) (under mu). */
void cl_rkey_done(struct cl_retain *rt, const char *key, size_t len, uint64_t rev)
{
	uint64_t hash;
	struct cl_rkey *k = cl_rkey_find(rt, key, len, &hash);

	if (!k)
		return;
	if (k->pending)
		k->pending--;
	if (rev > k->own_rev)
		k->own_rev = rev;
	if (!rev)
		k->need_get = true;
	/* Nothing in flight any more: what was kept back is settled by this file's thread,
	 * the only one that applies entries (cl_rt_release). */
	if (k->pending == 0 && (k->held || k->need_get))
		cl_rkey_queue(rt, k);
	cl_rkey_settle(rt, k, hash);
}

/* What the watcher does with entry e of key (under mu); CL_RT_KEPT: e is the key's now. */
int cl_rt_decide(struct cl_retain *rt, const char *key, size_t len, kvEntry *e)
{
	uint64_t hash, rev = kvEntry_Revision(e);
	struct cl_rkey *k = cl_rkey_find(rt, key, len, &hash);
	int what = CL_RT_DROP;

	if (!k)
		return CL_RT_APPLY;
	if (rev > k->seen)
		k->seen = rev;
	if (k->pending) {
		/* Our write may be stored before or after it: keep the latest until all are
		 * answered. */
		kvEntry_Destroy(k->held);
		k->held = e;
		what = CL_RT_KEPT;
	} else {
		/* Later in the stream than what was kept: that one is of no use any more. */
		kvEntry_Destroy(k->held);
		k->held = NULL;
		if (rev >= k->own_rev)
			what = CL_RT_APPLY;
	}
	cl_rkey_settle(rt, k, hash);
	return what;
}
