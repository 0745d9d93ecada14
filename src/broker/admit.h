/*
 * max_connections, per listener as in Mosquitto: every worker accepts on every listener, so
 * each configured listener has one connection counter that all workers share (struct
 * broker_shared, listener_clients). It is touched at accept and at close only, never per
 * message; relaxed atomics suffice since the counters order nothing else. The broker-wide
 * total (shared.clients: $SYS, metrics, the service status) moves with them.
 */
#ifndef STARLING_ADMIT_H
#define STARLING_ADMIT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "broker.h"

/* Counts a new connection of configured listener `listener`; false (nothing counted) when
 * the listener's max_connections is reached. */
static inline bool admit_take(struct broker *b, unsigned listener)
{
	uint32_t max = b->cfg.listeners[listener].opts.max_connections;
	_Atomic uint32_t *n = &b->shared.listener_clients[listener];

	if (atomic_fetch_add_explicit(n, 1, memory_order_relaxed) >= max && max) {
		atomic_fetch_sub_explicit(n, 1, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&b->shared.clients, 1, memory_order_relaxed);
	return true;
}

/* A connection admit_take counted has ended (or its hand-off failed). */
static inline void admit_release(struct broker *b, unsigned listener)
{
	atomic_fetch_sub_explicit(&b->shared.listener_clients[listener], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&b->shared.clients, 1, memory_order_relaxed);
}

#endif
