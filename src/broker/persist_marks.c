/*
 * Share-marks (persist.h): where a shared group's copies of QoS 2 messages with an origin
 * were stored, so that after a crash a resent PUBLISH reaches each group exactly once.
 *
 * The worker C that stores a group's copy in a member's session writes a share-mark record in
 * the same commit, and keeps the mark in memory (snapshots rewrite it). At start-up every
 * worker sends the marks of its log to the groups' workers (G, the home of the group's key);
 * G keeps (source, origin, key hash) in `seen` and, for a message whose origin predates the
 * run, routes to a group only if `seen` has no copy for it (persist_seen_take, route.c).
 *
 * Forgetting: a mark matters while the publisher may resend the PUBLISH, i.e. while its
 * worker holds the packet id awaiting PUBREL (a client that has PUBREC sends PUBREL, never the
 * PUBLISH again). Each worker publishes the lowest origin it still holds (origin_low), from a
 * scan of its sessions every PERSIST_MARKS_SCAN_MS; a stale value is lower, so never drops a
 * mark too early. Marks and `seen` entries below their source's value are dropped, and the
 * dropped marks count as changes for the next compaction, which leaves them out of the log.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/log.h"
#include "broker.h"
#include "persist.h"
#include "session.h"
#include "share.h"
#include "worker.h"
#include "xw.h"

#define PERSIST_MARKS_SCAN_MS 2000

static uint64_t seen_hash(unsigned src, uint64_t o, uint64_t kh)
{
	uint64_t z = kh ^ (o * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)src << 48);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool seen_eq(const void *val, const void *key)
{
	const struct persist_seen *a = val, *b = key;

	return a->origin == b->origin && a->khash == b->khash && a->src == b->src;
}

/* Adds (src, o, kh) to seen unless there; returns whether it was there. */
static bool seen_put(struct persist *p, unsigned src, uint64_t o, uint64_t kh)
{
	struct persist_seen k = {.origin = o, .khash = kh, .src = (uint16_t)src}, *e;
	uint64_t h = seen_hash(src, o, kh);

	if (hmap_find(&p->seen, h, seen_eq, &k))
		return true;
	e = malloc(sizeof(*e));
	if (!e || hmap_insert(&p->seen, h, e)) {
		free(e);
		log_msg(&p->w->log, LOG_T_ERROR,
		        "Persistence: out of memory for a shared group's copy record.");
	} else {
		*e = k;
	}
	return false;
}

static void marks_keep(struct persist *p, unsigned src, uint64_t o, const uint8_t *key, size_t klen)
{
	struct persist_mark *m;
	uint8_t *copy;

	if (p->nmarks == p->marks_cap) {
		uint32_t cap = p->marks_cap ? p->marks_cap * 2 : 64;
		struct persist_mark *n = realloc(p->marks, cap * sizeof(*n));

		if (!n)
			goto nomem;
		p->marks = n;
		p->marks_cap = cap;
	}
	copy = malloc(klen);
	if (!copy)
		goto nomem;
	memcpy(copy, key, klen);
	m = &p->marks[p->nmarks++];
	*m = (struct persist_mark){
	        .origin = o, .src = (uint16_t)src, .klen = (uint16_t)klen, .key = copy};
	return;
nomem:
	/* The record is in the log: only a snapshot taken before the next restart loses it. */
	log_msg(&p->w->log, LOG_T_ERROR, "Persistence: out of memory keeping a share-mark.");
}

static void mark_append(struct persist *p, unsigned src, uint64_t o, const uint8_t *key,
                        size_t klen, struct session *s)
{
	persist_append_rec(p,
	                   &(struct store_rec){.type = STORE_REC_SHARE_MARK,
	                                       .source = (uint16_t)src,
	                                       .origin = o,
	                                       .filter = {key, (uint32_t)klen}},
	                   s);
}

void persist_share_mark(struct session *s, const struct msg *m, const struct share_group *g)
{
	struct persist *p = s->ps;

	if (!p || !m->origin || m->osrc >= p->w->nworkers)
		return;
	mark_append(p, m->osrc, m->origin, g->key, g->key_len, s);
	marks_keep(p, m->osrc, m->origin, g->key, g->key_len);
}

void persist_marks_replayed(struct worker *w, const struct store_rec *r)
{
	if (w->ps && r->source < w->nworkers && r->filter.len <= UINT16_MAX)
		marks_keep(w->ps, r->source, r->origin, r->filter.ptr, r->filter.len);
}

void persist_marks_report(struct worker *w)
{
	struct persist *p = w->ps;

	if (p && p->nmarks)
		log_msg(&w->log, LOG_T_NOTICE,
		        "Persistence: worker %u restored %u share-marks (shared groups' copies of "
		        "QoS 2 messages whose PUBLISH may be resent), told to their groups.",
		        w->index, p->nmarks);

	for (uint32_t i = 0; p && i < p->nmarks; i++) {
		const struct persist_mark *m = &p->marks[i];
		unsigned owner = xw_home(w->nworkers, m->key, m->klen);
		uint64_t kh = XXH3_64bits(m->key, m->klen);

		if (owner == w->index)
			seen_put(p, m->src, m->origin, kh);
		else
			xw_share_mark(w, owner, m->src, m->origin, kh);
	}
}

void persist_seen_add(struct worker *w, unsigned src, uint64_t o, uint64_t kh)
{
	if (w->ps && src < w->nworkers)
		seen_put(w->ps, src, o, kh);
}

bool persist_origin_old(const struct worker *w, unsigned src, uint64_t o)
{
	const struct persist *p = w->ps;

	return p && o && src < w->nworkers && o <= p->sess[src].start;
}

bool persist_seen_take(struct worker *w, unsigned src, uint64_t o, const struct share_group *g)
{
	if (!persist_origin_old(w, src, o))
		return false;
	return seen_put(w->ps, src, o, XXH3_64bits(g->key, g->key_len));
}

void persist_marks_snapshot(struct persist *p)
{
	for (uint32_t i = 0; i < p->nmarks; i++)
		mark_append(p, p->marks[i].src, p->marks[i].origin, p->marks[i].key,
		            p->marks[i].klen, NULL);
}

/* The lowest origin number this worker's sessions still hold awaiting PUBREL. */
static uint64_t marks_low(struct worker *w)
{
	uint64_t low = w->ps->origin_next + 1;

	for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions);
	     i = hmap_next(&w->sessions, i + 1)) {
		const struct session *s = w->sessions.slots[i].val;
		const struct hmap *o = &s->in_origin;

		for (size_t k = o->count ? hmap_next(o, 0) : hmap_cap(o); k < hmap_cap(o);
		     k = hmap_next(o, k + 1)) {
			uint64_t origin = (uint64_t)(uintptr_t)o->slots[k].val >> 16;

			if (origin < low)
				low = origin;
		}
	}
	return low;
}

/* Drops the seen entries below their source's origin_low (collected first: a removal moves
 * entries and may shrink the table). */
static void seen_prune(struct persist *p, struct broker_shared *sh)
{
	struct persist_seen **gone;
	size_t n = 0, k = 0;

	for (size_t i = hmap_next(&p->seen, 0); i < hmap_cap(&p->seen);
	     i = hmap_next(&p->seen, i + 1)) {
		const struct persist_seen *e = p->seen.slots[i].val;

		n += e->origin <
		     atomic_load_explicit(&sh->origin_low[e->src].v, memory_order_acquire);
	}
	if (!n || !(gone = malloc(n * sizeof(*gone))))
		return;
	for (size_t i = hmap_next(&p->seen, 0); i < hmap_cap(&p->seen) && k < n;
	     i = hmap_next(&p->seen, i + 1)) {
		struct persist_seen *e = p->seen.slots[i].val;

		if (e->origin <
		    atomic_load_explicit(&sh->origin_low[e->src].v, memory_order_acquire))
			gone[k++] = e;
	}
	for (size_t i = 0; i < k; i++) {
		hmap_remove(&p->seen, seen_hash(gone[i]->src, gone[i]->origin, gone[i]->khash),
		            gone[i]);
		free(gone[i]);
	}
	free(gone);
}

void persist_marks_housekeeping(struct worker *w)
{
	struct persist *p = w->ps;
	struct broker_shared *sh = &w->b->shared;
	uint32_t kept = 0;

	if (!p || w->nworkers < 2 || !p->sync || w->now_ms < p->marks_scan_ms)
		return;
	p->marks_scan_ms = w->now_ms + PERSIST_MARKS_SCAN_MS;
	atomic_store_explicit(&sh->origin_low[w->index].v, marks_low(w), memory_order_release);
	for (uint32_t i = 0; i < p->nmarks; i++) {
		struct persist_mark *m = &p->marks[i];

		if (m->origin <
		    atomic_load_explicit(&sh->origin_low[m->src].v, memory_order_acquire)) {
			free(m->key);
			continue;
		}
		p->marks[kept++] = *m;
	}
	/* The log holds marks the state no longer has: a change for the next compaction. */
	p->since_compact += p->nmarks - kept;
	p->nmarks = kept;
	seen_prune(p, sh);
}

void persist_marks_fini(struct persist *p)
{
	for (uint32_t i = 0; i < p->nmarks; i++)
		free(p->marks[i].key);
	free(p->marks);
	p->marks = NULL;
	p->nmarks = p->marks_cap = 0;
	for (size_t i = hmap_next(&p->seen, 0); i < hmap_cap(&p->seen);
	     i = hmap_next(&p->seen, i + 1))
		free(p->seen.slots[i].val);
	hmap_fini(&p->seen);
}
