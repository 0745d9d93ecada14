/*
 * Which of a bridge's addresses to connect to (mosquitto.conf(5), address and round_robin).
 * A refused or lost connection moves on to the next address, in file order, wrapping around.
 * With round_robin true that is all: every address is an equal, and the bridge stays where it
 * connected until that connection fails. With round_robin false (the default) the first
 * address is the main one: while connected to another, the bridge checks every
 * BRIDGE_MAIN_RETRY_MS whether the main one answers again (Mosquitto tries a TCP connection to
 * it every 5 seconds), and when it does, drops the secondary connection and goes back.
 * The caller owns the sockets and the clock; this only keeps the choice.
 */
#ifndef STARLING_BRIDGE_ADDRESS_H
#define STARLING_BRIDGE_ADDRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config_bridge.h"

#define BRIDGE_MAIN_RETRY_MS 5000 /* between checks of the main address (Mosquitto: 5 s) */

struct bridge_addr_sel {
	unsigned count;            /* addresses of the bridge, at least 1 */
	unsigned cur;              /* the one being tried or connected to */
	bool round_robin;          /* false: addrs[0] is the main address */
	uint64_t main_retry_at_ms; /* when to check the main address again; 0: not on a secondary */
};

/* Starts at the first address. */
void bridge_addr_init(struct bridge_addr_sel *s, const struct config_bridge *b);

/* The index (into b->addrs) to connect to now. */
static inline unsigned bridge_addr_current(const struct bridge_addr_sel *s)
{
	return s->cur;
}

/* The connection to the current address was refused, failed or was lost: the next one. */
void bridge_addr_failed(struct bridge_addr_sel *s);

/* Connected to the current address at now_ms: on a secondary address without round_robin, the
 * first check of the main one is due BRIDGE_MAIN_RETRY_MS later. */
void bridge_addr_connected(struct bridge_addr_sel *s, uint64_t now_ms);

/* Whether it is time to check that the main address answers (a TCP connection to it). */
bool bridge_addr_main_due(const struct bridge_addr_sel *s, uint64_t now_ms);

/* The check of the main address failed at now_ms: the next one BRIDGE_MAIN_RETRY_MS later. */
void bridge_addr_main_down(struct bridge_addr_sel *s, uint64_t now_ms);

/* The main address answered: the caller drops the secondary connection and connects to
 * bridge_addr_current(), which is now 0. */
void bridge_addr_main_up(struct bridge_addr_sel *s);

#endif
