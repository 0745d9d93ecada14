/*
 * memory_limit (limits.h): worker 0 measures, every worker follows a flag. The transitions
 * are logged once each, so a broker hovering at its limit says so without flooding the log.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "auth/auth.h"
#include "base/alloc.h"
#include "base/log.h"
#include "broker.h"
#include "index/msg.h"
#include "limits.h"
#include "session.h"
#include "worker.h"

void limits_housekeeping(struct worker *w)
{
	struct broker *b = w->b;
	uint64_t limit = b->cfg.limits.memory_limit;

	if (!limit)
		return;
	if (w->index == 0) {
		uint64_t used = alloc_heap_bytes();
		bool over = used > limit;

		if (over != atomic_load_explicit(&b->shared.mem_over, memory_order_relaxed)) {
			log_msg(&w->log, over ? LOG_T_WARNING : LOG_T_NOTICE,
			        over ? "memory_limit reached: %llu bytes in use (limit %llu); "
			               "PUBLISHes are refused."
			             : "Back under memory_limit: %llu bytes in use (limit %llu).",
			        (unsigned long long)used, (unsigned long long)limit);
			atomic_store_explicit(&b->shared.mem_over, over, memory_order_relaxed);
		}
	}
	w->mem_over = atomic_load_explicit(&b->shared.mem_over, memory_order_relaxed);
}

/*
 * check_retain_source: a retained message keeps who set it, and a new subscriber gets it only
 * if that client may still write its topic (mosquitto.conf(5)). Rules change only on a reload,
 * so the check matters after one; it costs a resolution of the source's rules per distinct
 * source met in a SUBSCRIBE's walk of the store, never anything per live message.
 */
void limits_retain_source(struct msg *m, const struct session *s)
{
	limits_retain_source_of(m, s->auth_has_user, s->auth_has_user ? s->auth_user : NULL,
	                        s->auth_has_user ? s->auth_user_len : 0, s->auth_listener,
	                        s->client_id, s->client_id_len);
}

void limits_retain_source_of(struct msg *m, bool has_user, const uint8_t *user, size_t ulen,
                             unsigned listener, const uint8_t *id, size_t idlen)
{
	struct msg_source *src = malloc(sizeof(*src) + ulen + idlen);

	if (!src)
		return;
	src->listener = (uint16_t)listener;
	src->has_user = has_user;
	src->user_len = (uint16_t)ulen;
	src->id_len = (uint16_t)idlen;
	if (ulen)
		memcpy(src->data, user, ulen);
	if (idlen)
		memcpy(src->data + ulen, id, idlen);
	free(m->src);
	m->src = src;
}

static bool same_source(const struct msg_source *a, const struct msg_source *b)
{
	return a->listener == b->listener && a->has_user == b->has_user &&
	       a->user_len == b->user_len && a->id_len == b->id_len &&
	       memcmp(a->data, b->data, (size_t)a->user_len + a->id_len) == 0;
}

bool limits_source_may_write(struct worker *w, const struct msg *m, struct limits_src_cache *cache)
{
	const struct msg_source *src = m->src;

	if (!src || !w->b->cfg.limits.check_retain_source)
		return true;
	if (!cache->src || !same_source(cache->src, src)) {
		const struct auth_domain *d = auth_domain_of(w->auth, src->listener);

		acl_client_free(cache->client);
		cache->client = NULL;
		cache->src = NULL;
		if (d->acl) {
			cache->client = acl_client_new(d->acl, src->has_user ? src->data : NULL,
			                               src->user_len, src->data + src->user_len,
			                               src->id_len);
			if (!cache->client)
				return false; /* out of memory: not sent rather than sent unchecked
				               */
		}
		cache->src = src;
	}
	return !cache->client || acl_check(cache->client, msg_topic(m), m->topic_len, ACL_WRITE);
}

void limits_src_cache_fini(struct limits_src_cache *cache)
{
	acl_client_free(cache->client);
	cache->client = NULL;
	cache->src = NULL;
}
