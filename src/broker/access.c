/*
 * Per-session access decisions and their cache (access.h explains the design). The cache is
 * direct-mapped by the topic's XXH3 (computed once per publish and shared with the outbound
 * alias code) and exact: a slot holds the topic's bytes, so two topics never share an answer.
 */
#include "access.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "auth/auth.h"
#include "out.h"
#include "session.h"
#include "share.h"
#include "subdata.h"
#include "worker.h"

void access_free(struct access *a)
{
	if (!a)
		return;
	acl_client_free(a->client);
	free(a->cache);
	free(a);
}

/* Re-classifies every subscription of s under its current rules (or none), in the session's
 * list and in the index, so that routing checks exactly the ones that need it. */
static void access_reclassify(struct worker *w, struct session *s)
{
	for (uint32_t i = 0; i < s->nsubs; i++) {
		struct sess_sub *sub = &s->subs[i];
		struct st_bytes inner;
		int64_t flag = access_sub_flag(s, sub->filter, sub->filter_len);
		/* Readable by no topic under the new rules: kept, and checked (so denied). */
		uint64_t data = (sub->data & ~SUBDATA_ACL) | (flag != 0 ? SUBDATA_ACL : 0);

		if (data == sub->data || share_parse(sub->filter, sub->filter_len, &inner) == 1)
			continue;
		sub->data = data;
		worker_sub_add(w, s, sub->filter, sub->filter_len, data);
	}
}

int access_refresh(struct worker *w, struct session *s)
{
	const struct auth_domain *d = auth_domain_of(w->auth, s->auth_listener);
	struct access *a = NULL;

	if (d->acl) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return ST_ERR_NOMEM;
		/* No identity (access.h): no rules, every read denied until the client is back. */
		if (s->auth_known)
			a->client =
			        acl_client_new(d->acl, s->auth_has_user ? s->auth_user : NULL,
			                       s->auth_user_len, s->client_id, s->client_id_len);
		if (s->auth_known && !a->client) {
			free(a);
			return ST_ERR_NOMEM;
		}
	}
	access_free(s->acl);
	s->acl = a;
	access_reclassify(w, s);
	return ST_OK;
}

int access_attach(struct worker *w, struct session *s, const uint8_t *user, size_t ulen,
                  unsigned listener)
{
	uint8_t *copy = NULL;

	if (user) {
		copy = malloc(ulen ? ulen : 1);
		if (!copy)
			return ST_ERR_NOMEM;
		memcpy(copy, user, ulen);
	}
	free(s->auth_user);
	s->auth_user = copy;
	s->auth_user_len = (uint16_t)ulen;
	s->auth_has_user = user != NULL;
	s->auth_listener = (uint16_t)listener;
	s->auth_known = true;
	/* Nothing to resolve, nothing to undo: the common case costs nothing more. */
	if (!w->auth->any_acl && !s->acl)
		return ST_OK;
	return access_refresh(w, s);
}

static bool access_cached(struct access *a, uint64_t hash, const uint8_t *t, size_t len,
                          unsigned access)
{
	struct access_slot *slot;
	uint8_t *answer;
	bool ok;

	if (!a->client)
		return false;
	if (len > ACCESS_CACHE_TOPIC_MAX || len == 0)
		return acl_check(a->client, t, len, access);
	if (!a->cache && !(a->cache = calloc(ACCESS_CACHE_SLOTS, sizeof(*a->cache))))
		return acl_check(a->client, t, len, access);
	slot = &a->cache[hash & (ACCESS_CACHE_SLOTS - 1)];
	if (slot->len != len || memcmp(slot->topic, t, len) != 0) {
		slot->len = (uint8_t)len;
		memcpy(slot->topic, t, len);
		slot->read = slot->write = 0;
	}
	answer = access == ACL_READ ? &slot->read : &slot->write;
	if (*answer)
		return *answer == 2;
	ok = acl_check(a->client, t, len, access);
	*answer = ok ? 2 : 1;
	return ok;
}

bool access_can(struct session *s, struct pub_view *v, unsigned access)
{
	if (!v->hashed) {
		v->topic_hash = XXH3_64bits(v->topic.ptr, v->topic.len);
		v->hashed = true;
	}
	return access_cached(s->acl, v->topic_hash, v->topic.ptr, v->topic.len, access);
}

bool access_can_topic(struct session *s, const uint8_t *t, size_t len, unsigned access)
{
	return access_cached(s->acl, XXH3_64bits(t, len), t, len, access);
}

int64_t access_sub_flag(const struct session *s, const uint8_t *filter, size_t len)
{
	struct st_bytes inner;
	int shared;

	if (!s->acl)
		return 0;
	shared = share_parse(filter, len, &inner);
	if (shared < 0)
		return 0; /* an invalid filter is refused on its own account */
	if (shared == 0)
		inner = (struct st_bytes){filter, (uint32_t)len};
	if (!s->acl->client)
		return -1;
	switch (acl_classify(s->acl->client, inner.ptr, inner.len)) {
	case ACL_NONE:
		return -1;
	case ACL_ALL:
		return 0;
	default:
		return (int64_t)SUBDATA_ACL;
	}
}
