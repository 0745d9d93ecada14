/*
 * A worker: one thread's share of the broker, with its own ring, listening sockets,
 * connections, sessions, subscription index and replica of the retained messages. Nothing
 * here is shared with another worker, so nothing here is locked: other workers reach it only
 * through its channels (xw.h), and read only what is fixed before the loops start (the ring's
 * descriptor, the doorbell's address).
 *
 * Sessions are sharded: a session lives on the home worker of its client id (xw_home), and a
 * connection accepted elsewhere moves there with its CONNECT, so session state, takeover and
 * timers never cross threads.
 *
 * The loop: wait for a batch of completions; the handlers parse packets and route messages,
 * appending output to connections; at the end of the batch every connection with output gets
 * one send, starved receives are re-armed, closed connections whose last completion arrived
 * are freed, and once a second the housekeeping pass enforces keep alives.
 */
#ifndef STARLING_WORKER_H
#define STARLING_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include "base/config.h"
#include "base/hmap.h"
#include "base/wheel.h"
#include "base/log.h"
#include "index/interest.h"
#include "io/ring.h"
#include "metrics.h"
#include "share.h"
#include "starling/codec.h"
#include "sys.h"
#include "xw.h"

struct broker;
struct conn;
struct session;
struct subidx;
struct retain;
struct msg;
struct share_group;
struct pub_view;
struct tls_server;
struct conn_tls;
struct conn_ws;
struct persist;
struct bridge;

/* A further subscription identifier of a session matched by the publish being routed. */
struct route_id {
	uint32_t id;   /* subscription identifier */
	uint32_t next; /* index + 1 of the session's next entry, 0 at the end */
};

#define ROUTE_IDS_MAX 256 /* subscription identifiers carried by one delivery, at most */

/* A retained delete stored as a tombstone, and when it may leave the store. */
struct worker_tomb {
	struct msg *m;      /* the empty message (reference) */
	uint64_t expire_ms; /* monotonic time after which no older write can still arrive */
};

struct listener {
	struct ring_io io;      /* accept completions */
	struct worker *w;       /* owner */
	struct tls_server *tls; /* the TLS listener's context (broker's), or NULL: plaintext */
	bool ws;                /* `protocol websockets`: clients upgrade from HTTP first */
	int fd;                 /* listening socket */
	uint16_t port;          /* bound port (resolved when 0 was asked) */
	uint16_t cfg_index;     /* the configured listener this address belongs to */
	bool metrics;           /* a metrics_listener (cfg_index indexes cfg.metrics) */
	bool armed;             /* a multishot accept is pending */
};

struct worker_stats {
	uint64_t msgs_received;     /* PUBLISH packets received */
	uint64_t msgs_sent;         /* PUBLISH packets queued to clients */
	uint64_t msgs_dropped;      /* deliveries dropped (slow QoS 0 reader, full queue) */
	uint64_t bytes_received;    /* bytes read from sockets */
	uint64_t bytes_sent;        /* bytes written to sockets */
	uint64_t sends;             /* send operations completed */
	uint64_t connections_total; /* connections accepted */
	uint64_t protocol_errors;   /* connections closed for malformed or illegal packets */
	uint64_t packets_received;  /* MQTT packets of any type received */
	uint64_t packets_sent;      /* MQTT packets of any type queued */
	uint64_t clients_max;       /* most clients connected at once */
	uint64_t paused;            /* times a publisher's reading was paused (xw backlog) */
	uint64_t output_dropped; /* QoS 0 deliveries dropped: a connection's or all output full */
	uint64_t queue_dropped;  /* QoS 1/2 deliveries dropped: a session's queue full */
	uint64_t tls_handshakes; /* TLS handshakes completed */
	uint64_t tls_handshake_failures; /* TLS connections refused: bad handshake, certificate */
	/* For the metrics: PUBLISH packets and their payload bytes by QoS, received from
	 * clients and queued to them (a message at QoS 1 to a subscriber granted 0 counts at 0). */
	uint64_t pub_in[3];
	uint64_t pub_in_bytes[3];
	uint64_t pub_out[3];
	uint64_t pub_out_bytes[3];
	uint64_t expired_dropped;   /* deliveries not made: the message expired (MQTT 5) */
	uint64_t too_large_dropped; /* deliveries over the client's Maximum Packet Size */
	uint64_t accepted[CONFIG_LISTENERS_MAX]; /* connections accepted per configured listener */
	uint64_t http_requests;                  /* metrics requests answered (any status) */
};

struct worker {
	struct broker *b;                 /* configuration, borrowed; shared state in b->shared */
	struct cluster_lane *cl;          /* this worker's side of the cluster, or NULL */
	bool cl_inbound;                  /* routing a message that came from the cluster */
	unsigned index;                   /* worker number, 0 .. b->nworkers - 1 */
	unsigned nworkers;                /* b->nworkers, at hand */
	struct log log;                   /* the broker's log, with this worker as topic_ctx */
	struct ring ring;                 /* this worker's event loop (io_uring or epoll) */
	struct xw xw;                     /* channels to the other workers (nworkers > 1) */
	struct interest_local interest;   /* this worker's side of the interest summary */
	struct listener *listeners;       /* one per configured listener */
	unsigned nlisteners;              /* entries in listeners */
	struct ring_io sig_io;            /* signalfd reads */
	int sig_fd;                       /* SIGINT/SIGTERM, or -1 */
	struct signalfd_siginfo sig_info; /* read target */
	bool stopping;                    /* a signal asked to stop */
	const struct auth_set *auth;      /* the security this worker applies (reload.h) */
	bool reload_waiting;              /* worker 0: a SIGHUP waits for the last hand-over */
	struct {
		uint64_t next_ms; /* worker 0: when STATUS= may be refreshed (service.h) */
		uint32_t clients; /* the client count the last STATUS= gave */
		bool failed;      /* an sd_notify failure was logged */
	} service;

	struct conn *conns;       /* every connection, newest first */
	uint32_t nconns;          /* connections in the list (any state) */
	uint32_t nclients;        /* connections counted against max_connections */
	struct conn *flush_list;  /* connections with output to send at batch end */
	uint32_t sends_inflight;  /* sends submitted whose completion has not arrived */
	uint64_t output_memory;   /* memory held by all connections' output (obuf acct) */
	uint64_t output_max;      /* this worker's share of max_output_memory */
	uint8_t qos_upgrade;      /* 3 with upgrade_outgoing_qos, else 0 (route.c, route_qos) */
	bool mem_over;            /* memory_limit reached: PUBLISHes refused (limits.c) */
	uint32_t batch_delay_us;  /* how long output may wait for more to join it */
	struct conn *dead;        /* closed connections to free at batch end */
	uint64_t next_conn_id;    /* for logs */
	uint64_t next_client_num; /* generated client identifiers */

	struct hmap sessions;        /* client id -> struct session */
	uint64_t sess_seed;          /* hash seed for client ids */
	struct hmap sessions_by_gen; /* session generation -> session (nworkers > 1) */
	uint64_t next_sess_gen;      /* generations handed out */
	struct conn *paused;         /* publishers not read until the xw backlog drains */
	struct subidx *subs;         /* subscription index */
	struct retain *retained;     /* retained messages (with several workers: a full replica) */
	uint32_t nretained_bytes;    /* payload bytes retained (for $SYS) */
	struct worker_tomb *tombs;   /* retained deletes kept as tombstones, oldest first (ring) */
	uint32_t tomb_head;          /* index of the oldest */
	uint32_t tomb_len;           /* entries */
	uint32_t tomb_cap;           /* entries allocated (power of two) */
	uint32_t tombs_stored;       /* tombstones in the retained store now */

	uint64_t now_ms;               /* monotonic clock, read once per batch */
	uint64_t now_us;               /* the same in microseconds */
	uint64_t flush_due_us;         /* budget: when the output kept back must leave; 0: none */
	uint64_t batch_bytes;          /* budget: output bytes gathered while kept back */
	uint64_t next_housekeeping_ms; /* when the housekeeping pass runs next */
	struct wheel conn_timers;      /* CONNECT timeout, keep alive, lingering close */
	struct wheel sess_timers;      /* offline sessions: delayed will, expiry */
	uint64_t route_gen;            /* generation of the publish being routed */
	struct session **matches;      /* scratch: sessions matched by the publish being routed */
	uint32_t nmatches;             /* entries used */
	uint32_t matches_cap;          /* entries allocated */
	struct session *route_origin;  /* publisher of the message being routed (No Local) */
	struct pub_view *route_view;   /* the message being routed (per-topic ACL checks) */
	struct share_group **shared;   /* scratch: shared groups matched */
	uint32_t nshared;              /* entries used */
	uint32_t shared_cap;           /* entries allocated */
	struct route_id *ids;          /* scratch: further subscription identifiers per session */
	uint32_t nids;                 /* entries used */
	uint32_t ids_cap;              /* entries allocated */
	uint32_t idbuf[ROUTE_IDS_MAX]; /* one delivery's further identifiers */
	uint32_t idbuf_cap;            /* ROUTE_IDS_MAX */
	struct share_registry shares;  /* shared subscription groups */
	uint8_t *logq;                 /* log lines for `log_dest topic`, published at batch end */
	uint32_t logq_len;             /* bytes queued: [u32 type][u16 len][line] records */
	uint64_t logq_dropped;         /* lines lost because the queue was full */
	uint8_t *tls_buf;              /* TLS plaintext gathered for the input path, or NULL */
	uint8_t *tls_stage;            /* TLS plaintext gathered into records at flush, or NULL */
	uint8_t *ws_buf;               /* WebSocket payload unmasked for the input path, or NULL */
	bool ws_buf_busy;              /* ws_buf is being parsed (a nested decode takes its own) */
	uint8_t *scratch;              /* per-packet scratch (filtered MQTT 5 properties) */
	uint8_t *mount_buf;            /* a mounted client's topic or filter, prefixed (mount.h) */
	uint32_t scratch_cap;          /* bytes allocated */
	struct worker_stats stats;     /* counters */
	struct sys_state sys;          /* $SYS publication state */
	struct persist *ps;            /* persistence (persist.h), NULL when off */
	uint64_t queued;               /* QoS 1/2 deliveries in its sessions' queues (metrics) */
	struct mconn *mconns;          /* metrics listener connections (metrics_conn.c) */
	uint32_t nmconns;              /* entries in mconns */
	bool loop_timing;              /* a metrics listener exists: time every loop iteration */
	uint64_t loop_start_ns;        /* loop_timing: when this iteration's wait ended */
	struct metrics_loop loop;      /* loop_timing: iteration times (metrics.h) */
	struct bridge *bridges;        /* the bridges homed here (bridge.h) */
	unsigned nbridges;             /* entries in bridges */
	uint8_t *bridge_buf;           /* a bridge's remapped topic (bridge_topic_in/out) */
};

/* The ring each of nworkers workers creates (the broker reserves locked memory for all), on
 * back-end be. */
void worker_ring_params(unsigned nworkers, enum ring_backend be, struct ring_params *p);

/*
 * Sets the worker up in its own thread: ring, listeners (sockets already bound by the broker),
 * index, stores, channels. sig_fd: the signalfd this worker reads, or -1.
 */
int worker_init(struct worker *w, struct broker *b, unsigned index, int sig_fd);

/* Runs the loop until a signal asks to stop; then closes every connection. */
int worker_run(struct worker *w);

/* The worker that is home to client id `id`: where its session lives. */
unsigned worker_home(const struct worker *w, const uint8_t *id, size_t len);

/* Takes connection c (state CONN_HANDOFF, last completion arrived) off this worker and hands
 * its socket and bytes to its home worker. */
void worker_conn_handoff(struct worker *w, struct conn *c);

/* Adopts a socket another worker handed over with the bytes it had read and, for TLS and
 * WebSocket connections, their state (all taken over). */
void worker_conn_adopt(struct worker *w, int fd, unsigned listener, uint8_t *bytes, uint32_t len,
                       unsigned from, struct conn_tls *tls, struct conn_ws *ws);
/* A connection parked for the cluster (cluster.h), answered: its CONNECT is read again on a
 * connection of its own, which does not ask the cluster twice. */
void worker_conn_resume(struct worker *w, struct conn *c);

/* The session with generation gen, or NULL (for deliveries from other workers). */
struct session *worker_session_by_gen(struct worker *w, uint64_t gen);

/* Adds (filter, s) to the index and the interest summary. Returns subidx_add's result. */
int worker_sub_add(struct worker *w, struct session *s, const uint8_t *filter, size_t len,
                   uint64_t data);

/*
 * Adds s to the shared group `key` with subscription data `data`: here, or by message to the
 * group's owner. *added: s was not a member before. waiter: a connection whose output from
 * its share_hold on waits for the owner's answer (conn.h), or NULL. ST_OK or ST_ERR_NOMEM.
 */
int worker_share_add(struct worker *w, struct session *s, struct conn *waiter, const uint8_t *key,
                     size_t len, uint64_t data, bool *added);

/* A session's connection came or went: tells the owners of its remote shared groups. */
void worker_session_online(struct worker *w, struct session *s, bool online);

/* Remembers a retained tombstone (m, borrowed) stored in the replica, to remove it later. */
void worker_tombstone(struct worker *w, struct msg *m);

/* (Re)sets c's timer for its state (timers.c). */
void worker_conn_timer(struct worker *w, struct conn *c);

/* (Re)sets the timer of session s: its delayed will or expiry while offline, none online. */
void worker_session_timer(struct worker *w, struct session *s);

/* Fires the connection and session timers that are due (each housekeeping pass). */
void worker_timers_advance(struct worker *w);

/* Stops reading c until the cross-worker backlog drains (a publisher feeding it). */
void worker_conn_pause(struct worker *w, struct conn *c);

struct worker_snapshot;

/* Writes w's counters into sn (relaxed atomic stores; sn may be another thread's to read). */
void worker_snapshot_fill(const struct worker *w, struct worker_snapshot *sn);

/* Refreshes w's own entry of the shared snapshots (several workers only). */
void worker_snapshot(struct worker *w);

/* Frees everything the worker holds. */
void worker_fini(struct worker *w);

/* Takes a connection whose last completion arrived; it is freed at the end of the batch. */
void worker_conn_dead(struct worker *w, struct conn *c);

/* Looks a session up by client id. */
struct session *worker_session_find(struct worker *w, const uint8_t *id, size_t len);
int worker_session_add(struct worker *w, struct session *s);
/*
 * Ends a session: publishes its delayed will if one is pending, removes it from the table and
 * its subscriptions from the index, frees it.
 */
void worker_session_destroy(struct worker *w, struct session *s);

/* Removes s's subscription to filter from the index (or its shared group; waiter: as for
 * worker_share_add). */
void worker_unsubscribe(struct worker *w, struct session *s, struct conn *waiter,
                        const uint8_t *filter, size_t len);

/* The owner of a shared group answered a join or leave of session gen asked for by
 * connection conn_id (xw.c): its held output may leave once nothing else is due. */
void worker_share_answered(struct worker *w, uint64_t gen, uint64_t conn_id);

/*
 * log_dest topic: queues a log line (struct log's topic_fn, ctx the worker). Lines are
 * published at the end of the batch, never from inside the code that logged them.
 */
void worker_log_topic(void *ctx, uint32_t type, const char *line, unsigned len);

/* Closes c as the broker stops: MQTT 5's 0x8B, a WebSocket's 1001, then the close. */
void worker_conn_shut(struct conn *c);

/* Worker scratch memory of at least n bytes (valid until the next call), NULL if none. */
uint8_t *worker_scratch(struct worker *w, size_t n);

/*
 * The clock rounded up to the millisecond: the base of a deadline that must never come early
 * (a will delay, a session expiry, a keep alive counted from a packet). now_ms is rounded
 * down, and a deadline counted from it could fall up to 1 ms before the full delay; timers
 * fire once now_ms has reached their deadline, so they are never early either.
 */
static inline uint64_t worker_now_up_ms(const struct worker *w)
{
	return (w->now_us + 999) / 1000;
}

#endif
