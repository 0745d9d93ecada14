/*
 * The broker side of the limits options (base/config_limits.h) that are not a comparison at
 * the place they act: memory_limit's sampling of the heap, persistent_client_expiration's
 * bound on an offline session's life.
 *
 * memory_limit: worker 0 samples the allocator's figure (base/alloc.h) once per housekeeping
 * pass (250 ms) and publishes "over" in a shared flag; every worker copies the flag into its
 * own w->mem_over in the same pass. The PUBLISH path then reads one worker-local byte: no
 * syscall, atomic or shared cache line per message, at the price of up to two passes of lag,
 * which the limit absorbs.
 */
#ifndef STARLING_LIMITS_H
#define STARLING_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"

struct worker;
struct session;
struct msg;
struct msg_source;
struct acl_client;

/* memory_limit's sampling; each housekeeping pass of every worker. */
void limits_housekeeping(struct worker *w);

/*
 * check_retain_source: records s (the publisher) as the source of retained message m, which
 * nobody else holds yet. Out of memory leaves m without a source (then it is not checked).
 */
void limits_retain_source(struct msg *m, const struct session *s);
/* The same from its parts (a retain-source record read at start-up), replacing any source. */
void limits_retain_source_of(struct msg *m, bool has_user, const uint8_t *user, size_t ulen,
                             unsigned listener, const uint8_t *id, size_t idlen);

/* The rules of the last source checked during one walk of the retained store. */
struct limits_src_cache {
	const struct msg_source *src; /* whose rules `client` holds; NULL: none yet */
	struct acl_client *client;    /* resolved rules (owned), NULL: no acl_file */
};

/*
 * Whether retained message m may still be delivered under check_retain_source: its source may
 * write its topic under the access rules in force now (after a reload, perhaps not). True for
 * a message without a source (a will, one restored from a log without its retain-source
 * record) or without an acl_file.
 */
bool limits_source_may_write(struct worker *w, const struct msg *m, struct limits_src_cache *cache);

/* Frees what the walk's cache holds. */
void limits_src_cache_fini(struct limits_src_cache *cache);

/*
 * How long an offline session lives, in seconds (UINT32_MAX: for ever): its own expiry
 * (3.x persistent sessions: for ever; MQTT 5: Session Expiry Interval), bounded by
 * persistent_client_expiration when set, as Mosquitto bounds both.
 */
static inline uint32_t limits_session_expiry_s(const struct config *cfg, uint32_t expiry_s)
{
	uint32_t cap = cfg->limits.persistent_expiry_s;

	return cap && cap < expiry_s ? cap : expiry_s;
}

#endif
