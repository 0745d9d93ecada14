/*
 * The broker: configuration, log and the workers. Built once by main(); workers borrow it
 * read-only (the log's writes are whole lines in one write(2)), except the fields of struct
 * broker_shared, which are everything workers share: each is named there with how it is
 * accessed, and `make tsan` runs the integration suite on 4 workers to check it.
 *
 * Workers: one thread each (worker 0 is the main thread, so -t 1 runs as a single-threaded
 * program), started together and released into their loops by one barrier once every ring
 * exists, since workers ring each other's doorbells.
 */
#ifndef STARLING_BROKER_H
#define STARLING_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>

#include "base/config.h"
#include "base/log.h"
#include "base/privdrop.h"
#include "index/interest.h"
#include "io/chan.h"
#include "metrics.h"
#include "io/ring.h"

#define BROKER_WORKERS_MAX INTEREST_HOLDERS_MAX
/* Listening addresses per worker, at most: each MQTT or metrics listener may resolve to an
 * IPv4 and an IPv6 address. */
#define BROKER_ADDRS_MAX (2 * (CONFIG_LISTENERS_MAX + CONFIG_METRICS_MAX))

struct worker;
struct auth_set;
struct store_dir;
struct store_chain;
struct tls_server;

/* A worker's counters as the others may read them ($SYS sums them); refreshed by their owner
 * once per housekeeping pass with relaxed atomic stores. */
struct worker_snapshot {
	_Atomic uint64_t clients;  /* connections counted on the worker */
	_Atomic uint64_t sessions; /* sessions homed there, online or not */
	_Atomic uint64_t msgs_received;
	_Atomic uint64_t msgs_sent;
	_Atomic uint64_t msgs_dropped;
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t packets_received;
	_Atomic uint64_t packets_sent;
	_Atomic uint64_t connections_total;
	_Atomic uint64_t protocol_errors;
	_Atomic uint64_t subscriptions;
	_Atomic uint64_t output_memory;          /* memory held by output to clients */
	_Atomic uint64_t output_dropped;         /* QoS 0 dropped: output bounds */
	_Atomic uint64_t queue_dropped;          /* QoS 1/2 dropped: session queue full */
	_Atomic uint64_t tls_handshakes;         /* TLS handshakes completed */
	_Atomic uint64_t tls_handshake_failures; /* TLS connections refused */
	_Atomic uint64_t persist_commits;        /* persistence: commits completed */
	_Atomic uint64_t persist_records;        /* records appended */
	_Atomic uint64_t persist_bytes;          /* bytes appended */
	_Atomic uint64_t persist_refused;        /* QoS 1/2 publishes refused (log failing) */
	/* For the metrics (metrics.h says how they are read). */
	_Atomic uint64_t pub_in[3];       /* PUBLISH received by QoS */
	_Atomic uint64_t pub_in_bytes[3]; /* their payload bytes */
	_Atomic uint64_t pub_out[3];      /* PUBLISH queued to clients by QoS */
	_Atomic uint64_t pub_out_bytes[3];
	_Atomic uint64_t channel_dropped;   /* QoS 0 not handed to a worker: channel full */
	_Atomic uint64_t expired_dropped;   /* deliveries of expired messages not made */
	_Atomic uint64_t too_large_dropped; /* deliveries over a Maximum Packet Size */
	_Atomic uint64_t other_dropped;     /* the rest of msgs_dropped (memory, no member) */
	_Atomic uint64_t accepted[CONFIG_LISTENERS_MAX]; /* connections per configured listener */
	_Atomic uint64_t queued;                         /* QoS 1/2 deliveries queued */
	_Atomic uint64_t retained;                       /* retained messages in its replica */
	_Atomic uint64_t loop_iterations; /* loop iterations that handled completions */
	_Atomic uint64_t cqes;            /* completions handled */
	_Atomic uint64_t sends;           /* send operations completed */
	_Atomic uint64_t enobufs;         /* receives stopped for lack of provided buffers */
	_Atomic uint64_t http_requests;   /* metrics requests answered */
	_Atomic uint64_t loop_counts[METRICS_LOOP_BUCKETS + 1]; /* loop-time histogram */
	_Atomic uint64_t loop_sum_ns;
	_Atomic uint64_t persist_syncs;       /* persistence: syncs completed */
	_Atomic uint64_t persist_errors;      /* writes or syncs that failed */
	_Atomic uint64_t persist_compactions; /* compactions completed */
} __attribute__((aligned(64)));

/* A flag one worker sets and others read, alone on its cache line. */
struct persist_flag {
	_Atomic bool v;
} __attribute__((aligned(64)));

/* A counter one worker advances and others read, alone on its cache line. */
struct persist_count {
	_Atomic uint64_t v;
} __attribute__((aligned(64)));

/* One bridge's figures for the metrics (bridge.h), written by its home worker only. */
struct bridge_snapshot {
	_Atomic uint64_t connected; /* 1 while forwarding */
	_Atomic uint64_t msgs_out;  /* PUBLISHes sent to the remote */
	_Atomic uint64_t msgs_in;   /* PUBLISHes received from it */
	_Atomic uint64_t queued;    /* messages waiting for it (its local session's queue) */
	_Atomic uint64_t dropped;   /* messages for it dropped */
	_Atomic uint64_t connects;  /* connections accepted by the remote */
	_Atomic uint64_t failures;  /* attempts that failed */
} __attribute__((aligned(64)));

/* Everything workers share. */
struct broker_shared {
	_Atomic uint32_t clients; /* connections open, all listeners (admit.h) */
	/* Connections open per configured listener, counted against its max_connections. */
	_Atomic uint32_t listener_clients[CONFIG_LISTENERS_MAX];
	_Atomic uint64_t retain_seq;   /* last retained write number handed out (fetch_add) */
	_Atomic uint64_t next_conn_id; /* connection numbers for logs (fetch_add per accept) */
	_Atomic bool stopping;         /* set once by the worker that read SIGINT/SIGTERM */
	_Atomic unsigned quiesced;     /* workers that closed their connections at shutdown */
	struct interest interest;      /* which workers hold which filters (atomics inside) */
	struct chan *chans;            /* nworkers^2 SPSC channels, chans[from * n + to] */
	struct worker_snapshot *snap;  /* per worker, written by its owner only */
	struct bridge_snapshot *bridge_snap; /* per configured bridge; NULL without bridges */
	pthread_barrier_t start;             /* every ring exists before any loop starts */
	bool barrier_ready;                  /* start was initialised */
	_Atomic bool start_failed;           /* a worker could not start: every worker exits */
	/* The security in force (passwords, ACLs), read-only once published; SIGHUP publishes a
	 * new one (reload.c says how the old one is retired). */
	struct auth_set *_Atomic auth;
	_Atomic unsigned auth_pending; /* workers yet to adopt `auth` (reload.h) */
	/* Persistence (persist.h): persist_acks[from * n + to], written by `to` only: entries
	 * from `from` it handled whose records are on disk; persist_waiting[i], written by i
	 * only: i waits for acknowledgements (others ring it after advancing one). Both
	 * sequentially consistent (a store then a load on each side). NULL when off. */
	_Atomic uint64_t *persist_acks;
	_Atomic uint64_t *persist_full; /* the same, and what `to` relayed for them (persist.h) */
	struct persist_flag *persist_waiting;
	struct persist_count *persist_synced; /* [i], written by i: its last commit on disk */
	/* [i], written by i before its replay ends (replay_left), read after: its origin counter
	 * as restored (persist.h, origins). */
	uint64_t *origin_start;
	/* [i], written by i from housekeeping: the lowest origin number of i's that may still
	 * come again in a resent PUBLISH (a QoS 2 packet id awaiting PUBREL), 0 until known
	 * (persist_marks.c); read by the others to forget share-marks below it. */
	struct persist_count *origin_low;
	/* Workers whose log is failing (disk full, I/O error): while any is, every worker refuses
	 * QoS 1/2 publishes (their records may be bound for the failing one's log). */
	_Atomic unsigned persist_failing;
	_Atomic bool mem_over;         /* memory_limit reached; worker 0 writes it (limits.h) */
	struct auth_set *auth_retired; /* the set they are leaving; worker 0's alone */
};

struct broker {
	struct config cfg;            /* effective configuration */
	struct cluster *cluster;      /* the cluster through NATS, or NULL (cluster.h) */
	struct log log;               /* log destinations */
	struct privdrop priv;         /* whom a root start becomes (`user`, base/privdrop.h) */
	uint32_t max_packet;          /* largest packet accepted from a client, header included */
	uint32_t max_payload;         /* largest PUBLISH payload accepted (message_size_limit) */
	uint16_t inflight_max;        /* outbound QoS 1/2 window per client */
	uint16_t receive_max;         /* the MQTT 5 Receive Maximum announced and enforced */
	uint64_t output_memory;       /* max_output_memory in effect (bytes) */
	uint64_t start_s;             /* wall-clock start time, for $SYS uptime */
	struct worker *workers;       /* nworkers workers */
	unsigned nworkers;            /* worker_threads (-t), 1 to BROKER_WORKERS_MAX */
	int cpus[BROKER_WORKERS_MAX]; /* cpu_affinity: worker i runs on cpus[i] */
	unsigned memlock_capped;      /* CPUs, when RLIMIT_MEMLOCK held the default below them */
	enum ring_backend backend;    /* the event loop every worker runs (event_backend) */
	/* Listening sockets: each address of each listener is bound once per worker with
	 * SO_REUSEPORT, so the kernel spreads connections; worker i owns listen_fds[i * nlisten
	 * .. (i + 1) * nlisten), nworkers * nlisten in all. */
	int *listen_fds;
	uint16_t listen_ports[BROKER_ADDRS_MAX]; /* port of each address */
	uint16_t listen_cfg[BROKER_ADDRS_MAX];   /* configured listener of each address */
	/* The address is a metrics_listener's (listen_cfg then indexes cfg.metrics). */
	bool listen_metrics[BROKER_ADDRS_MAX];
	/* TLS context of each configured listener (cfg.listeners index), NULL: plaintext. Shared
	 * by every worker; swapped only inside tls_server_reload (broker_tls_reload). */
	struct tls_server *tls[CONFIG_LISTENERS_MAX];
	int http_dir_fd[CONFIG_LISTENERS_MAX]; /* each listener's http_dir (O_PATH), or -1 */
	unsigned nlisten;                      /* addresses per worker */
	int sig_fd;                            /* signalfd: SIGINT/SIGTERM, SIGHUP */
	bool pid_file_written;                 /* remove cfg.pid_file at exit */
	uint64_t instance_salt;                /* random bits for generated client identifiers */
	struct broker_shared shared;           /* what workers share */
	/* Persistence: the directory (lock held), and each worker's log as read at start-up
	 * (chains[nworkers], freed by the last worker to finish its replay). NULL when off. */
	struct store_dir *store;
	struct store_chain *chains;
	_Atomic unsigned replay_left; /* workers still replaying */
	/* Then: workers yet to publish what their replay queued for others (a member's join to
	 * its shared group's worker), and yet to take in what others queued for them. */
	_Atomic unsigned replay_flush_left, replay_drain_left;
};

/* Opens and recovers the persistence directory (persist_replay.c); ST_OK when off. */
int persist_broker_init(struct broker *b);
void persist_broker_fini(struct broker *b);

/* Validates the configuration, opens the log, binds the listeners, blocks signals. */
int broker_init(struct broker *b, const struct config *cfg);

/* Runs the broker until SIGINT/SIGTERM; returns the process exit status. */
int broker_run(struct broker *b);

/*
 * Re-reads every TLS listener's certificate, key, CAs and CRL (tls_server_reload): new
 * connections use the new files, existing ones keep theirs; a listener whose files are
 * broken keeps its old context, and the failure is logged. Any thread; returns ST_OK when
 * every listener reloaded, else the last error. (For the SIGHUP path.)
 */
int broker_tls_reload(struct broker *b);

/* Releases everything broker_init acquired. */
void broker_fini(struct broker *b);

#endif
