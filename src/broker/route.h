/*
 * Routing: a PUBLISH (or a will) goes to the retained store and to every matching session,
 * once per session at the highest QoS its matching subscriptions granted; and the delivery
 * side of sessions: the window refilled after an acknowledgement, inflight messages resent
 * after a reconnect, retained messages sent after a SUBSCRIBE.
 */
#ifndef STARLING_ROUTE_H
#define STARLING_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "out.h"

struct worker;
struct session;

/*
 * Routes a message published by `origin` (NULL for none). v holds views into the receive
 * buffer (v->m NULL) or a message (a will). qos and retain are as published. Returns the
 * number of sessions it was delivered or queued to, or ST_ERR_NOMEM.
 */
int route_publish(struct worker *w, struct session *origin, struct pub_view *v, uint8_t qos,
                  bool retain);

/* Sends s the retained messages matching filter, at most at the subscription's QoS. */
void route_retained(struct worker *w, struct session *s, const uint8_t *filter, size_t len,
                    uint64_t subdata);

/* Fills the client's window from the session queue. */
void route_pump(struct session *s);

/* After a reconnect: resends inflight messages (DUP) and PUBRELs, then fills the window. */
void route_resume(struct session *s);

/* s's connection ended: its unacknowledged shared-subscription messages go to other members. */
void route_rehome_shared(struct session *s);

#endif
