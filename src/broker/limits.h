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

#include <stdint.h>

#include "base/config.h"

struct worker;

/* memory_limit's sampling; each housekeeping pass of every worker. */
void limits_housekeeping(struct worker *w);

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
