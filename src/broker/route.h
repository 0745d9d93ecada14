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
struct share_group;
struct share_member;

/*
 * Routes a message published by `origin` (NULL for none). v holds views into the receive
 * buffer (v->m NULL) or a message (a will). qos and retain are as published. Returns the
 * number of sessions it was delivered or queued to, or ST_ERR_NOMEM.
 */
int route_publish(struct worker *w, struct session *origin, struct pub_view *v, uint8_t qos,
                  bool retain);

/*
 * A QoS 2 PUBLISH resent for a packet id restored from the log with its origin number
 * (v->origin): forwarded again to the other workers, each of which ignores it if it has it
 * (persist.h, origins). 0 or ST_ERR_NOMEM.
 */
int route_resend(struct worker *w, struct pub_view *v, bool retain);

/*
 * Routes a message to this worker's own subscribers only (no retained store, no other
 * worker): route_publish's local part, and what a worker does with a message another one
 * handed over. Returns the number of sessions it was delivered or queued to.
 */
/*
 * A resend (v->origin from worker v->osrc) that the sessions here handled before a restart:
 * the shared groups here may still lack it, if the member's worker lost its copy; they take it
 * unless their copy is known (persist_seen_take).
 */
void route_resend_groups(struct worker *w, struct pub_view *v, uint8_t qos, bool retain);

int route_local(struct worker *w, struct session *origin, struct pub_view *v, uint8_t qos,
                bool retain);

/* Applies a retained write numbered m->rseq to this worker's replica (m: borrowed). */
void route_retain_apply(struct worker *w, struct msg *m);

/* Removes m (borrowed) from the retained store if the store still holds exactly m. */
void route_retain_drop(struct worker *w, struct msg *m);

/* Sends s the retained messages matching filter, at most at the subscription's QoS. */
void route_retained(struct worker *w, struct session *s, const uint8_t *filter, size_t len,
                    uint64_t subdata);

/* Fills the client's window from the session queue. */
void route_pump(struct session *s);

/* After a reconnect: resends inflight messages (DUP) and PUBRELs, then fills the window. */
void route_resume(struct session *s);

/* s's connection ended: its unacknowledged shared-subscription messages go to other members. */
void route_rehome_shared(struct worker *w, struct session *s);

/* On the owner of group g: a message another worker's member `leaving` gave back (m and g are
 * borrowed) goes to another member; after `hops` such returns, more than the group has
 * members, it is dropped. */
void route_rehome_remote(struct worker *w, struct msg *m, struct share_group *g,
                         const struct share_member *leaving, uint8_t qos, bool retain,
                         unsigned hops);

/* A message for shared group g (on its owner w) alone: one member gets it, if any may. */
bool route_group(struct worker *w, struct share_group *g, struct pub_view *v, uint8_t qos,
                 bool retain);

/* Whether session s's ACL lets it read m's topic (true without an ACL). */
bool route_member_may_read(struct session *s, struct msg *m);

/* A shared delivery the group's owner chose session s (on w) for; m and g are borrowed. */
bool route_deliver_member(struct worker *w, struct session *s, struct msg *m, struct share_group *g,
                          uint8_t qos, bool retain, uint32_t sub_id);

#endif
