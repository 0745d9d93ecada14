/*
 * A Starling cluster through NATS (issue 14): the broker's side. Every node stays a full
 * broker; what crosses nodes travels on NATS, which carries a message only to the nodes whose
 * clients' filters want it. kernel-notes/cluster.md has the facts this stands on.
 *
 * Threads. libnats runs on threads of its own (its read loop, flusher, timers, reconnects), and
 * the cluster adds one, the link thread. Workers never call libnats, never block on it:
 * - Out: each worker appends what it sends (a PUBLISH with its subject and envelope already
 *   written, a filter gained or lost) to a bulk buffer of its own, and hands the buffer over
 *   at the end of its loop iteration through its channel to the link thread (src/io/chan.h),
 *   which publishes the records on NATS and keeps one NATS subscription per distinct filter
 *   of the node, counted over every worker's sessions.
 * - In: every NATS subscription delivers on one libnats thread (the global delivery pool of
 *   size 1, so that messages reach us in the order the connection read them); that thread
 *   keeps the first copy of each message (overlapping filters each get one: the envelope's
 *   origin sequence tells) and hands it to the worker of its lane through that worker's
 *   inbound channel. The worker routes it as a local publish that is not sent out again.
 * Doorbells: a side that waits says so in an idle flag; the other writes an eventfd only when
 * it finds the flag set (one write per wake-up, never one per message).
 *
 * What is shared between threads, and only this: the channels (single producer, single
 * consumer each), the idle flags and eventfds, and the counters (each written by one thread,
 * read by $SYS and the metrics). ThreadSanitizer runs over it in make tsan.
 */
#ifndef STARLING_CLUSTER_H
#define STARLING_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct worker;
struct session;
struct pub_view;

/* The cluster's figures for $SYS and the metrics (relaxed loads of their counters). */
struct cluster_figures {
	bool connected;           /* the NATS connection is up */
	uint64_t subscriptions;   /* NATS subscriptions held */
	uint64_t sent;            /* messages published on NATS */
	uint64_t received;        /* messages from NATS handed to a worker */
	uint64_t duplicates;      /* second copies of a message (overlapping filters), dropped */
	uint64_t dropped;         /* messages lost on the way out or in (sum of the reasons) */
	uint64_t dropped_out;     /* not published: backlog over its bound, NATS refused them */
	uint64_t dropped_in;      /* received and lost: a worker's channel full, a slow consumer */
	uint64_t invalid;         /* received and refused: not a message of this cluster */
	uint64_t too_long;        /* kept on their node: subject or filter beyond NATS's limits */
	uint64_t retained_stored; /* retained writes the bucket acknowledged */
	uint64_t retained_failed; /* retained writes refused, unanswered or not sent */
	uint64_t retained_received;    /* entries of the bucket applied to this node's replicas */
	uint64_t retained_invalid;     /* entries of the bucket that are no retained message */
	uint64_t sessions_received;    /* persistent sessions handed over to this node */
	uint64_t sessions_sent;        /* and by this node to another */
	uint64_t sessions_from_bucket; /* started from the bucket: their owner did not answer */
	uint64_t sessions_messages_dropped; /* queued messages a hand-over could not carry */
	uint64_t sessions_failed; /* bucket calls that failed (NATS down, no JetStream...) */
};

/*
 * Sets the cluster up from b->cfg.cluster (nothing when cluster_nats_url is unset): the node
 * id, the subject prefix, the channels. Logs and returns ST_ERR_CONFIG for a bad cluster_name
 * or node id, ST_ERR_NOMEM, ST_ERR_SYS.
 */
int cluster_init(struct broker *b);

/* Starts the link thread, which connects to NATS (retrying in the background). */
int cluster_start(struct broker *b);

/* After every worker stopped: flushes, closes NATS, joins the threads. */
void cluster_stop(struct broker *b);

/* Frees what cluster_init made (after cluster_stop). */
void cluster_fini(struct broker *b);

/* A worker's side: its doorbell read armed on its ring (w->cl set). ST_OK or an error. */
int cluster_worker_init(struct worker *w);

/*
 * A message published on this node (by a client, a will, a bridge) goes to the cluster once:
 * its record is appended to the worker's buffer. Not for messages that came from NATS, nor
 * $SYS. origin may be NULL.
 */
void cluster_publish(struct worker *w, struct session *origin, const struct pub_view *v,
                     uint8_t qos, bool retain);

/* A session on w gained (add) or lost a filter: the node's NATS interest follows. */
void cluster_interest(struct worker *w, const uint8_t *filter, size_t len, bool add);

/*
 * The shared group `key` ("$share/GROUP/FILTER") was made (add) or dropped on w, its owner.
 * Returns whether it is cluster-wide: its filter has NATS subjects (not $SYS, not too long),
 * so the node joins the group's NATS queue group and the group gets its messages from there.
 */
bool cluster_share(struct worker *w, const uint8_t *key, size_t len, bool add);

/*
 * s's client connected here (CONNACK accepted): the other nodes are told, and one holding the
 * same client id connected since earlier closes that connection (cluster/hello.h).
 */
void cluster_connected(struct worker *w, struct session *s);

/* Routes what NATS delivered for w (at the end of each batch). */
void cluster_drain(struct worker *w);

/* Hands the worker's buffer over and wakes the link thread if it sleeps (batch end). */
void cluster_flush(struct worker *w);

/* Around the worker's wait: false if input waits already (then the wait must not block). */
bool cluster_before_wait(struct worker *w);
void cluster_after_wait(struct worker *w);

/* The figures (any thread). False when there is no cluster. */
bool cluster_figures(const struct broker *b, struct cluster_figures *f);

/*
 * Persistent sessions across nodes (cluster_session.c). A CONNECT resuming a session this
 * node does not hold: parks the connection while the cluster finds the session (true), or
 * false to go on here (no cluster, not connected to NATS, already asked).
 */
struct conn;
bool cluster_session_park(struct conn *c, const uint8_t *id, size_t len);
/* The parked connection's receive ended / it is freed (worker.c, conn.c). */
void cluster_session_rx_ended(struct conn *c);
void cluster_session_unpark(struct worker *w, struct conn *c);
/* A persistent session connected or changed its subscriptions: the bucket learns it. */
void cluster_session_update(struct worker *w, struct session *s);
/* A session of this worker was dropped for client id's connect on `node` (cluster.c's
 * hello): another node asking for it is sent there. */
void cluster_session_dropped(struct worker *w, const uint8_t *id, size_t idlen, const uint8_t *node,
                             size_t node_len);
/* A persistent session ended here (expired, or its client went to another node). */
void cluster_session_ended(struct worker *w, struct session *s);

#endif
