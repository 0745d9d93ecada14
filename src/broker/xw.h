/*
 * Cross-worker traffic: what one worker hands another, over the channels of src/io/chan.h
 * (one single-producer single-consumer queue per ordered pair of workers) with at most one
 * doorbell (ring_msg) per target worker per loop iteration.
 *
 * What travels:
 * - a published message, to every worker whose interest summary (src/index/interest.h) says
 *   it may hold a matching filter, as one reference to the one message; retained messages go
 *   to every worker, each of which keeps a full replica of the retained store. A small QoS 0
 *   message that no one here had to promote is not made a struct msg at all: its bytes are
 *   appended to a bulk buffer per target, handed over once full or at the end of the loop
 *   iteration, and routed there from the buffer as from a receive buffer (one allocation per
 *   few hundred messages instead of one per message, and no reference counting);
 * - a connection whose CONNECT named a client id that lives on another worker (the session's
 *   home is xw_home(client id)), with the bytes already read;
 * - shared subscription traffic: a group lives on the home worker of its "$share/name/filter"
 *   key; members on other workers join, leave and report being on- or offline by message, and
 *   the group hands each message to its chosen member's worker.
 *
 * Bounds. A channel is bounded; when it is full, a QoS 0 message is dropped (counted) and
 * everything else waits, in order, in the sending worker's overflow queue for that target.
 * While overflow queues hold more than XW_BACKLOG_HIGH entries, publishers on the sending
 * worker stop being read (conn_pause) until they drain below XW_BACKLOG_LOW: their
 * acknowledgements wait, and memory stays bounded.
 *
 * Order: entries from one worker to another are handled in the order they were pushed, so a
 * publisher's messages reach every subscriber in the order published.
 */
#ifndef STARLING_XW_H
#define STARLING_XW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/chan.h"
#include "io/ring.h"

struct worker;
struct broker;
struct msg;
struct pub_view;
struct share_group;
struct conn_tls;
struct conn_ws;

#define XW_BACKLOG_HIGH 65536u /* overflow entries past which publishers are paused */
#define XW_BACKLOG_LOW  16384u /* ... and below which they are read again */

struct xw_bulk;

/* This worker's side of the channel to one other worker. */
struct xw_out {
	struct chan *ch;         /* the channel, borrowed from the broker */
	struct xw_bulk *bulk;    /* small QoS 0 messages being gathered for it, or NULL */
	struct chan_entry *over; /* overflow FIFO (ring of over_cap entries), or NULL */
	uint32_t over_head;      /* index of the oldest overflow entry */
	uint32_t over_len;       /* entries in the overflow */
	uint32_t over_cap;       /* entries allocated (power of two) */
	bool pushed;             /* entries pushed since the last doorbell */
};

struct xw_stats {
	uint64_t forwarded; /* messages handed to other workers (one per target) */
	uint64_t received;  /* entries handled from other workers */
	uint64_t dropped;   /* QoS 0 messages not handed over: channel full */
	uint64_t held;      /* entries that waited in an overflow queue */
	uint64_t handoffs;  /* connections handed to their session's home worker */
	uint64_t doorbells; /* wake-ups sent */
};

struct xw {
	struct ring_io io;     /* doorbells from other workers land here */
	struct xw_out *out;    /* one per worker (the own entry is unused) */
	uint64_t others;       /* bit mask of the other workers */
	uint64_t backlog;      /* entries in all overflow queues */
	bool paused;           /* publishers are paused until the backlog drains */
	struct xw_stats stats; /* counters */
};

/* The home worker of a client id or shared group key among n workers: the shard function. */
unsigned xw_home(unsigned n, const uint8_t *key, size_t len);

/* Sets up the worker's side (its thread, before the loop). ST_OK or ST_ERR_NOMEM. */
int xw_init(struct worker *w);
/* Releases what the overflow queues hold. */
void xw_fini(struct worker *w);

/* Workers other than w that may hold a filter matching topic (interest summary). */
uint64_t xw_targets(struct worker *w, const uint8_t *topic, size_t len);

/*
 * Hands message m (the caller keeps its reference; each target takes one) to every worker in
 * `targets`, to be routed there at (qos, retain) as published. store: it is also a retained
 * write (m->rseq set) for each target's replica. commit: the sender's log commit that holds
 * records the deliveries depend on (persist.h), 0 if none; a target applies the entry only
 * once that commit is on disk. origin: the message's origin number (persist.h), 0 if none.
 */
void xw_forward(struct worker *w, struct msg *m, uint64_t targets, uint8_t qos, bool retain,
                bool store, uint64_t commit, uint64_t origin);

/* An expired retained message m (borrowed) leaves every other worker's replica too. */
void xw_retain_drop(struct worker *w, struct msg *m);

/*
 * True if the message of v (not promoted, QoS 0, not retained) is small enough to travel in a
 * bulk buffer rather than as a struct msg.
 */
bool xw_bulk_fits(const struct pub_view *v);

/* Hands the small QoS 0 message of v (copied) to every worker in `targets`, in bulk; retain is
 * its flag as published. */
void xw_forward_small(struct worker *w, const struct pub_view *v, uint64_t targets, bool retain);

/*
 * Hands socket fd (accepted on configured listener `listener`) with the bytes read so far and
 * its TLS and WebSocket states, or NULL (all taken over: freed by the target), to worker to.
 */
void xw_handoff(struct worker *w, unsigned to, int fd, unsigned listener, uint8_t *bytes,
                uint32_t len, struct conn_tls *tls, struct conn_ws *ws);

/*
 * Shared subscriptions: a member session (gen) on w joins, leaves, goes on- or offline.
 * reply: a connection id the owner answers once the join (leave) is applied, so that its
 * SUBACK (UNSUBACK) can leave (worker_share_answered), or 0. Join and leave return whether
 * the request was queued (false: out of memory, no answer will come).
 */
bool xw_share_join(struct worker *w, unsigned owner, const uint8_t *key, size_t len, uint64_t gen,
                   uint64_t data, bool online, uint64_t reply);
bool xw_share_leave(struct worker *w, unsigned owner, const uint8_t *key, size_t len, uint64_t gen,
                    uint64_t reply);
/* Start-up: the group whose key hashes to kh has a copy of origin `origin` of worker src
 * (persist_marks.c), told to the group's worker `owner`. */
void xw_share_mark(struct worker *w, unsigned owner, unsigned src, uint64_t origin, uint64_t kh);
void xw_share_online(struct worker *w, unsigned owner, const uint8_t *key, size_t len, uint64_t gen,
                     bool online);

/*
 * The group's owner hands one delivery to member session gen on worker `to`: m and g are
 * references taken here. sub_id is the member's subscription identifier (28 bits); hops, how
 * many members the message was already given back by (XW_HOPS_MAX at most), travels with it.
 */
void xw_share_deliver(struct worker *w, unsigned to, uint64_t gen, struct msg *m,
                      struct share_group *g, uint8_t qos, bool retain, uint32_t sub_id,
                      unsigned hops);

/*
 * A member's shared delivery goes back to the group's owner to be given to another member
 * than session `gen` of worker w (the references of m and g are taken over): the member's
 * connection ended before it acknowledged it, or its ACL does not let it read the topic.
 */
void xw_share_rehome(struct worker *w, uint64_t gen, struct msg *m, struct share_group *g,
                     uint8_t qos, bool retain, unsigned hops);

/* Hops a shared delivery may make between members before it is dropped (the owner also stops
 * when the hops exceed the group's members); they ride in the top bits of the generation. */
#define XW_HOPS_MAX 255u

/* Handles everything the other workers published to w (at the end of each batch). */
void xw_drain(struct worker *w);
/* The same but handoffs, before the ring hands input over (ring_before_input_fn; arg: w). */
struct ring;
void xw_drain_early(struct ring *r, void *arg);

/* Moves overflow into channels, publishes what was pushed, rings the targets' doorbells. */
void xw_flush(struct worker *w);

/* Rings every other worker's doorbell (to make them look at the stop flag). */
void xw_wake_all(struct worker *w);

/* After every worker stopped (one thread left): releases what entries still in channels hold. */
void xw_discard(struct broker *b);

#endif
