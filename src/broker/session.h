/*
 * An MQTT session: what outlives a connection when the client asked for it (clean session 0,
 * or an MQTT 5 session expiry interval), and the QoS 1/2 state machines of both directions.
 *
 * Outbound (broker -> client): an inflight table indexed by packet id - 1, grown on demand up
 * to the window (max_inflight_messages, or the client's receive maximum), with a stack of free
 * packet ids, so that an acknowledgement is one array access and a packet id is found in O(1).
 * Each slot carries a sequence number: redelivery after a reconnect follows the original
 * order [MQTT-4.6.0-1]. Messages beyond the window, or for an offline client, wait in a FIFO
 * bounded by max_queued_messages; past it they are dropped and counted.
 *
 * Inbound QoS 2 (client -> broker): a bitmap of the 65,535 packet ids (8 KiB, allocated on the
 * first QoS 2 PUBLISH) marks ids whose PUBREC was sent and whose PUBREL has not arrived. The
 * message is delivered on the first PUBLISH; a resent PUBLISH with a marked id is acknowledged
 * but not delivered again: exactly once, also across reconnects of a persistent session.
 *
 * The session knows nothing of sockets or encoding: callers act on what these functions
 * return. One session belongs to one worker.
 */
#ifndef STARLING_SESSION_H
#define STARLING_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hmap.h"
#include "base/wheel.h"
#include "index/msg.h"

struct conn;
struct share_group;

enum sess_slot_state {
	SLOT_FREE = 0,
	SLOT_WAIT_PUBACK = 1,  /* QoS 1 PUBLISH sent */
	SLOT_WAIT_PUBREC = 2,  /* QoS 2 PUBLISH sent */
	SLOT_WAIT_PUBCOMP = 3, /* PUBREL sent; the message itself is released */
};

/*
 * One delivery: a message with the per-subscriber parts of its PUBLISH. The holder owns the
 * message reference, the extra identifiers and the group reference (sess_delivery_release).
 */
struct sess_delivery {
	struct msg *m;             /* message reference */
	uint8_t qos;               /* delivered QoS: min(published, granted) */
	bool retain;               /* retain flag to send */
	uint16_t nmore;            /* further identifiers (overlapping subscriptions) */
	uint32_t sub_id;           /* MQTT 5 subscription identifier, 0 if none */
	uint32_t *more;            /* nmore identifiers, owned; NULL if none */
	struct share_group *group; /* shared subscription it came through (a reference), or NULL */
	uint64_t sid;              /* durable session: its msg_id in the log (persist.h), else 0 */
};

void sess_delivery_release_extras(struct sess_delivery *d);

/* Drops what a delivery holds: the message, the extra identifiers, the group reference. */
static inline void sess_delivery_release(struct sess_delivery *d)
{
	if (d->m)
		msg_unref(d->m);
	d->m = NULL;
	if (d->more || d->group)
		sess_delivery_release_extras(d);
}

struct sess_slot {
	struct sess_delivery d; /* d.m is NULL in SLOT_WAIT_PUBCOMP */
	uint64_t seq;           /* order of first transmission */
	uint32_t bytes;         /* payload bytes counted in inflight_bytes */
	uint8_t state;          /* enum sess_slot_state */
};

/* A subscription as the session remembers it, to remove it from the index later. */
struct sess_sub {
	uint8_t *filter;     /* owned copy */
	uint16_t filter_len; /* bytes */
	uint64_t data;       /* what the index holds for it */
};

struct access;
struct persist;
struct bridge;

struct session {
	uint8_t *client_id;      /* owned, not NUL-terminated */
	uint16_t client_id_len;  /* bytes */
	struct conn *conn;       /* the connection using the session, NULL when offline */
	bool clean;              /* ends with its connection (clean session 1 / expiry 0) */
	uint32_t expiry_s;       /* MQTT 5 session expiry; UINT32_MAX: never */
	uint64_t expire_at_ms;   /* monotonic deadline while offline; 0: none */
	struct msg *will;        /* MQTT 5 will waiting for its delay (reference), or NULL */
	uint64_t will_at_ms;     /* monotonic time to publish it */
	uint32_t will_expiry_s;  /* its Message Expiry Interval, counted from publication */
	bool had_expiry;         /* the last CONNECT asked for a non-zero session expiry */
	struct wheel_node timer; /* offline: the worker's timer for the will or the expiry */

	uint64_t gen;          /* number unique on its worker, for deliveries from others */
	uint64_t cl_since_ns;  /* cluster: when its connection came (wall clock, cluster.h) */
	uint64_t cl_meta_hash; /* cluster: what the sessions' bucket was last told (a hash) */
	struct persist *ps;    /* the worker's log while the session is durable, else NULL */
	uint64_t next_sid;     /* msg_id of the last delivery logged (persist.h) */
	uint8_t protocol;      /* protocol level of its last CONNECT (3, 4, 5) */

	struct sess_sub *subs; /* subscriptions, unordered */
	uint32_t nsubs;        /* entries used */
	uint32_t subs_cap;     /* entries allocated */
	uint32_t nshared;      /* of which shared ("$share/...") */

	struct sess_slot *slots;     /* outbound inflight table, index = packet id - 1 */
	uint16_t slots_cap;          /* slots allocated (<= inflight_max) */
	uint16_t inflight_max;       /* window: most slots in use at once (1..65535) */
	uint16_t inflight;           /* slots in use */
	uint16_t *free_ids;          /* FIFO ring of unused packet ids among the allocated slots */
	uint16_t free_head;          /* index of the oldest free id in free_ids */
	uint16_t nfree;              /* free ids in the ring */
	uint64_t seq;                /* sequence number of the next transmission */
	uint64_t inflight_bytes;     /* payload bytes of the slots in use */
	uint64_t inflight_bytes_max; /* max_inflight_bytes: no slot taken at or past it; 0: none */

	struct sess_delivery *q; /* FIFO of deliveries waiting for the window or the client */
	uint32_t q_head;         /* index of the oldest */
	uint32_t q_len;          /* entries queued */
	uint32_t q_cap;          /* entries allocated (power of two) */
	uint32_t q_max;          /* bound (max_queued_messages); 0: unbounded */
	uint64_t q_bytes;        /* payload bytes queued */
	uint64_t q_bytes_max;    /* max_queued_bytes: nothing queued at or past it; 0: none */
	uint64_t dropped;        /* deliveries dropped because the queue was full */
	bool q_full_logged;      /* a drop was logged; cleared once the queue has drained */
	uint64_t *q_acct;        /* the worker's count of queued deliveries (metrics), or NULL */

	uint64_t *in_qos2;      /* bitmap of inbound QoS 2 ids awaiting PUBREL, or NULL */
	uint32_t in_qos2_count; /* bits set */
	struct hmap
	        in_origin; /* origin numbers of inbound ids (persist.h), as origin << 16 | pid */

	/* Who the client said it was at its last CONNECT, for the ACL (access.h). */
	uint8_t *auth_user;     /* user name (owned), or NULL */
	uint16_t auth_user_len; /* bytes */
	bool auth_has_user;     /* CONNECT gave a user name */
	uint16_t auth_listener; /* configured listener it came in on (its security domain) */
	bool auth_known;        /* the identity above is its client's (false: a session restored
	                           from a log without it: under an ACL it reads nothing) */
	struct access *acl;     /* resolved rules and cached answers; NULL: no acl_file */

	struct bridge *bridge; /* the bridge whose local session this is (bridge.h), or NULL */
	uint64_t match_gen;    /* routing: generation of the publish last matched */
	uint64_t match_data;   /* routing: merged subscription data for that publish */
	uint32_t match_ids;    /* routing: further subscription ids (worker list index + 1) */
};

enum sess_out_result {
	SESS_OUT_SEND = 0,    /* in the window: send it now with *pid */
	SESS_OUT_QUEUED = 1,  /* waits in the queue */
	SESS_OUT_DROPPED = 2, /* queue full: not taken */
};

/* Returns a new session (NULL when out of memory); copies the client id. */
struct session *session_new(const uint8_t *client_id, size_t len, uint16_t inflight_max,
                            uint32_t queue_max);

/* Frees the session: every held message reference, the subscription list, the bitmap. */
void session_free(struct session *s);

/*
 * Offers a QoS 1/2 delivery (d->m referenced by the caller; the session takes its own
 * reference when it keeps it). SESS_OUT_SEND: the delivery is inflight with packet id *pid
 * and must be sent now. The window is always respected: a delivery is SEND only if the
 * client is connected (online) and a slot is free.
 */
enum sess_out_result session_out_offer(struct session *s, const struct sess_delivery *d,
                                       bool online, uint16_t *pid);

/*
 * Takes the oldest queued delivery into the window if a slot is free. Returns true with *d
 * (whose reference now belongs to the inflight slot: do not drop it) and *pid set. A QoS 0
 * delivery (queue_qos0_messages) takes no slot: *pid is 0 and the caller owns d's references.
 */
bool session_out_next(struct session *s, struct sess_delivery *d, uint16_t *pid);

/* Frees the inflight slot pid without an acknowledgement (an expired message not sent). */
void session_out_drop(struct session *s, uint16_t pid);

/* PUBACK: true if pid was a QoS 1 inflight message (now freed). */
bool session_out_puback(struct session *s, uint16_t pid);

/* PUBREC: true if pid was a QoS 2 PUBLISH awaiting it (now awaiting PUBCOMP). */
bool session_out_pubrec(struct session *s, uint16_t pid);

/* PUBCOMP: true if pid was awaiting it (now freed). */
bool session_out_pubcomp(struct session *s, uint16_t pid);

/*
 * The QoS of the outbound message pid stands for: 1 awaiting PUBACK, 2 awaiting PUBREC or
 * PUBCOMP, 0 if pid is not in use (free, 0, beyond the table). An acknowledgement of the
 * other QoS's kind for it is a protocol error; one for an unused id is not (a PUBREC then
 * gets PUBREL 0x92 in MQTT 5; a PUBACK or PUBCOMP is ignored).
 */
uint8_t session_out_qos(const struct session *s, uint16_t pid);

typedef void (*session_resend_fn)(void *ctx, uint16_t pid, const struct sess_slot *slot);

/* Calls fn for every inflight slot in original transmission order (for redelivery). */
void session_out_each_inflight(struct session *s, session_resend_fn fn, void *ctx);

/*
 * Changes the window (a reconnecting MQTT 5 client may bring a different receive maximum).
 * Slots already in use above the new window stay until acknowledged.
 */
void session_set_inflight_max(struct session *s, uint16_t inflight_max);

/*
 * Inbound QoS 2 PUBLISH with pid: returns 1 if new (deliver it), 0 if already awaiting PUBREL
 * (a duplicate: acknowledge, do not deliver), ST_ERR_NOMEM. origin: the message's number
 * (persist.h) kept with the id until PUBREL, or 0.
 */
int session_in_qos2_begin(struct session *s, uint16_t pid, uint64_t origin);

/* The origin number kept with inbound pid, or 0. */
uint64_t session_in_qos2_origin(const struct session *s, uint16_t pid);

/* True if inbound QoS 2 pid is awaiting PUBREL. */
bool session_in_qos2_pending(const struct session *s, uint16_t pid);

/* PUBREL: true if pid was awaiting it (now released). */
bool session_in_qos2_release(struct session *s, uint16_t pid);

/* Remembers a subscription (copying the filter). ST_OK or ST_ERR_NOMEM. */
int session_sub_add(struct session *s, const uint8_t *filter, size_t len, uint64_t data);

/* Index in s->subs of the subscription to filter, or -1. */
int session_sub_find(const struct session *s, const uint8_t *filter, size_t len);

/* Forgets a subscription; false if it was not remembered. */
bool session_sub_remove(struct session *s, const uint8_t *filter, size_t len);

/* Returns true if it took over d's references (d then leaves the session). */
typedef bool (*session_take_fn)(void *ctx, struct sess_delivery *d);

/*
 * Offers fn every delivery that came through a shared subscription and is not yet accepted
 * by the client (queued, or inflight before PUBREC), oldest first; those fn takes leave the
 * session. For a member that leaves its group (MQTT 5.0 section 4.8.2).
 */
void session_take_shared(struct session *s, session_take_fn fn, void *ctx);

/*
 * Replay (persist_replay.c): rebuilds a session from its log records, with no hooks (s->ps is
 * NULL meanwhile). restore_queued appends d (its reference taken over) to the queue;
 * restore_unqueue drops the message with msg_id sid, queued or in a slot; restore_inflight
 * puts the queued message sid into slot pid at stage 1 (false if it is not queued or pid is
 * beyond the window: it stays queued and is sent as new), or turns slot pid to stage 2;
 * restore_clear frees slot pid.
 */
int session_restore_queued(struct session *s, const struct sess_delivery *d);
void session_restore_unqueue(struct session *s, uint64_t sid);
bool session_restore_inflight(struct session *s, uint16_t pid, uint64_t sid, uint8_t stage);
void session_restore_clear(struct session *s, uint16_t pid);
/* Whether msg_id sid is queued or in a slot (a record replayed twice: after a snapshot). */
bool session_holds_sid(const struct session *s, uint64_t sid);

/* Drops every queued delivery and inflight message (clean start over an old session). */
void session_clear_messages(struct session *s);

#endif
