/*
 * A worker: one thread's share of the broker, with its own ring, listening sockets,
 * connections, sessions, subscription index and retained messages. Nothing here is shared
 * with another worker, so nothing here is locked.
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

#include "base/hmap.h"
#include "io/ring.h"
#include "share.h"
#include "starling/codec.h"
#include "sys.h"

struct broker;
struct conn;
struct session;
struct subidx;
struct retain;
struct msg;
struct share_group;

/* A further subscription identifier of a session matched by the publish being routed. */
struct route_id {
	uint32_t id;   /* subscription identifier */
	uint32_t next; /* index + 1 of the session's next entry, 0 at the end */
};

#define ROUTE_IDS_MAX 256 /* subscription identifiers carried by one delivery, at most */

struct listener {
	struct ring_io io; /* accept completions */
	struct worker *w;  /* owner */
	int fd;            /* listening socket */
	uint16_t port;     /* bound port (resolved when 0 was asked) */
	bool armed;        /* a multishot accept is pending */
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
};

struct worker {
	struct broker *b;                 /* configuration and log, borrowed */
	unsigned index;                   /* worker number */
	struct ring ring;                 /* this worker's io_uring */
	struct listener *listeners;       /* one per configured listener */
	unsigned nlisteners;              /* entries in listeners */
	struct ring_io sig_io;            /* signalfd reads */
	int sig_fd;                       /* SIGINT/SIGTERM, or -1 */
	struct signalfd_siginfo sig_info; /* read target */
	bool stopping;                    /* a signal asked to stop */

	struct conn *conns;       /* every connection, newest first */
	uint32_t nconns;          /* connections in the list (any state) */
	uint32_t nclients;        /* connections counted against max_connections */
	struct conn *flush_list;  /* connections with output to send at batch end */
	struct conn *dead;        /* closed connections to free at batch end */
	uint64_t next_conn_id;    /* for logs */
	uint64_t next_client_num; /* generated client identifiers */

	struct hmap sessions;     /* client id -> struct session */
	uint64_t sess_seed;       /* hash seed for client ids */
	struct subidx *subs;      /* subscription index */
	struct retain *retained;  /* retained messages */
	uint32_t nretained_bytes; /* payload bytes retained (for $SYS) */

	uint64_t now_ms;               /* monotonic clock, read once per batch */
	uint64_t next_housekeeping_ms; /* when the keepalive pass runs next */
	uint64_t next_sessions_ms;     /* when offline sessions are checked next */
	uint64_t route_gen;            /* generation of the publish being routed */
	struct session **matches;      /* scratch: sessions matched by the publish being routed */
	uint32_t nmatches;             /* entries used */
	uint32_t matches_cap;          /* entries allocated */
	struct session *route_origin;  /* publisher of the message being routed (No Local) */
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
	uint8_t *scratch;              /* per-packet scratch (filtered MQTT 5 properties) */
	uint32_t scratch_cap;          /* bytes allocated */
	struct worker_stats stats;     /* counters */
	struct sys_state sys;          /* $SYS publication state */
};

/* Sets the worker up: ring, listeners (sockets already bound by the broker), index, stores. */
int worker_init(struct worker *w, struct broker *b, unsigned index, const int *listen_fds,
                const uint16_t *ports, unsigned nlisteners, int sig_fd);

/* Runs the loop until a signal asks to stop; then closes every connection. */
int worker_run(struct worker *w);

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

/* Removes s's subscription to filter from the index (or its shared group). */
void worker_unsubscribe(struct worker *w, struct session *s, const uint8_t *filter, size_t len);

/*
 * log_dest topic: queues a log line (struct log's topic_fn, ctx the worker). Lines are
 * published at the end of the batch, never from inside the code that logged them.
 */
void worker_log_topic(void *ctx, uint32_t type, const char *line, unsigned len);

/* Worker scratch memory of at least n bytes (valid until the next call), NULL if none. */
uint8_t *worker_scratch(struct worker *w, size_t n);

#endif
