/*
 * The state of one starling-bench run, shared by its files: the io_uring loop (loop.c), the
 * MQTT side of each connection (mqtt.c), the per-thread loop and publishers (run.c), the phases
 * (phase.c), flow control (flow.c) and the report (report.c).
 *
 * A run has --threads N threads, each with a struct bench: its own ring (SINGLE_ISSUER |
 * DEFER_TASKRUN), its own provided buffer ring, its own connections (client index i belongs to
 * thread i mod N, at local index i / N) and its own counters and latency histogram, merged by
 * the report. What they share hangs off one struct bench_shared: the options, the plan, the
 * publishers, the templates (read-only once the threads start), the phase, and a few atomics.
 * On the per-message path a thread touches only its own state, except flow control without a
 * rate: a delivery settles its message in the publisher's slot ring (flow.c), and may wake the
 * publisher's thread with IORING_OP_MSG_RING. Thread 0, the main thread, also leads: it moves
 * the shared phase (phase.c) from the other threads' published figures (struct bench_pulse),
 * and reads the broker's /proc once for all.
 *
 * Within a thread each connection has exactly one send in flight at a time
 * (../shared/IO_URING.md: overlapping sends on a TCP socket reorder bytes) and two output
 * buffers: the one being sent and the one being filled; when a send completes, everything
 * queued since goes out as one send. A publisher fills its buffer with up to batch_bytes of
 * PUBLISH packets per send. Receiving is one multishot recv per connection into the thread's
 * provided buffer ring; packets are counted in place in the ring buffer, which goes back to the
 * ring in the same loop iteration, and only a packet that spans two reads is copied (into the
 * connection's carry buffer).
 */
#ifndef STARLING_BENCH_H
#define STARLING_BENCH_H

#include <liburing.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"
#include "opts.h"
#include "plan.h"
#include "seq.h"

#define BENCH_RX_BUF_BYTES  (32u * 1024u) /* one provided receive buffer */
#define BENCH_RX_BUF_COUNT  2048u         /* buffers in the ring: a power of two, <= 32768 */
#define BENCH_RX_GROUP      0             /* buffer group id of the ring */
#define BENCH_SQ_ENTRIES    4096u
#define BENCH_CQ_ENTRIES    32768u
#define BENCH_OUT_MAX_BYTES (64u << 20) /* bound on one connection's queued output */
#define BENCH_SUB_CHUNK     100u        /* filters per SUBSCRIBE packet */
#define BENCH_TEARDOWN_MS   2000u       /* wait for the broker to close after DISCONNECT */
#define BENCH_COALESCE_CQES                                                                        \
	(BENCH_CQ_ENTRIES / 2) /* --coalesce-us: wait for the time, not a count */

enum bench_role {
	BENCH_ROLE_SUB = 0,  /* subscribes, counts deliveries */
	BENCH_ROLE_PUB = 1,  /* publishes */
	BENCH_ROLE_IDLE = 2, /* connects and holds (connections scenario) */
};

enum bench_conn_state {
	BENCH_CONN_WAITING = 0,     /* not started */
	BENCH_CONN_CONNECTING = 1,  /* TCP connect submitted */
	BENCH_CONN_CONNACK = 2,     /* CONNECT queued, waiting for CONNACK */
	BENCH_CONN_SUBSCRIBING = 3, /* SUBSCRIBEs queued, waiting for SUBACKs */
	BENCH_CONN_READY = 4,       /* set up */
	BENCH_CONN_CLOSING = 5,     /* DISCONNECT queued, waiting for the broker's close */
	BENCH_CONN_CLOSED = 6,      /* the broker closed it after our DISCONNECT */
};

enum bench_phase {
	BENCH_PH_SETUP = 0,    /* connecting and subscribing */
	BENCH_PH_WARMUP = 1,   /* publishing, not measuring */
	BENCH_PH_MEASURE = 2,  /* the measurement window (connections: holding) */
	BENCH_PH_DRAIN = 3,    /* publishers stopped, waiting for in-flight messages */
	BENCH_PH_TEARDOWN = 4, /* DISCONNECT sent, waiting for the broker to close */
	BENCH_PH_DONE = 5,
};

/* Operation kinds in the low byte of user_data; the local connection index is above. */
enum bench_op {
	BENCH_OP_CONNECT = 1,
	BENCH_OP_RECV = 2,
	BENCH_OP_SEND = 3,
	BENCH_OP_WAKE = 4, /* a doorbell from another thread (res >= 0), or our failed one */
};

struct bench_outbuf {
	uint8_t *data; /* bytes queued; malloc'd, grows up to BENCH_OUT_MAX_BYTES */
	uint32_t len;  /* bytes queued */
	uint32_t cap;  /* bytes allocated */
};

/*
 * End-to-end flow control of one publisher when no rate is given (flow.c): messages generated
 * but not yet delivered to every subscriber that should get them. Subscribers on any thread
 * read these fields, written once before the threads start.
 */
struct bench_flow {
	_Atomic uint64_t *slots; /* ring by sequence: seq << 32 | deliveries still expected */
	uint64_t *sent_ns;       /* ring by sequence: generation time (publisher's thread only) */
	uint32_t mask;           /* ring size - 1; 0 when not bounded */
	uint32_t window;         /* messages that may be outstanding */
};

/*
 * A publisher. The first cache line is read by every thread (subscribers settle flow there),
 * the second is written per message by the publisher's own thread, the third holds the two
 * fields both sides write, so that neither side's writes evict what the other reads per message.
 */
struct bench_pub {
	/* Read-only once the threads start. */
	struct bench_flow flow; /* bound on messages not yet delivered (no rate given) */
	uint32_t plan_index;    /* index in plan->pub */
	uint32_t pub_id;        /* id in payloads */
	uint32_t thread;        /* the thread owning its connection: the one to wake */
	/* The publisher's thread only. */
	alignas(64) uint32_t seq_next; /* sequence of the next message */
	uint32_t topic_next;           /* which of its topics the next message goes to */
	uint64_t rate_sent;            /* messages generated since publishing started */
	uint16_t pid_next;             /* next packet identifier to try (QoS > 0) */
	uint32_t inflight;             /* QoS 1/2 publishes not yet fully acknowledged */
	uint32_t inflight_max; /* window: --inflight, lowered to the broker's Receive Maximum */
	uint8_t *pid_state;    /* QoS > 0: per packet id, 0 free, 1 sent, 2 PUBREL sent */
	/* Written by the publisher's thread, read by subscribers' threads (flow.c). */
	alignas(64) _Atomic uint32_t head; /* oldest sequence still outstanding */
	_Atomic bool blocked; /* the publisher waits for room: whoever makes some wakes it */
};

struct bench_conn {
	int fd;                     /* socket, -1 before connect */
	uint32_t index;             /* client index (plan.h) */
	uint32_t local;             /* index in its thread's conns (index / threads) */
	uint8_t role;               /* enum bench_role */
	uint8_t state;              /* enum bench_conn_state */
	bool recv_armed;            /* a multishot recv is outstanding */
	bool send_busy;             /* a send is in flight: out[send_idx] from send_off */
	bool dirty;                 /* listed in bench.dirty for the next flush */
	bool rearm;                 /* listed in bench.rearm: recv ended, re-arm it */
	uint8_t send_idx;           /* which out[] buffer the in-flight send covers */
	uint32_t send_off;          /* bytes of out[send_idx] already sent */
	struct bench_outbuf out[2]; /* in flight and being filled */
	uint8_t *carry;             /* a packet that spans two reads, being reassembled */
	uint32_t carry_len;         /* bytes in carry */
	uint32_t carry_cap;         /* bytes allocated for carry */
	uint32_t subacks_pending;   /* SUBSCRIBE packets not yet acknowledged */
	uint64_t last_tx_ns;        /* last time a send was submitted, for keep alive */
	struct bench_seq *seq;      /* subscriber: tracking per publisher id */
	uint64_t delivered_win;     /* subscriber: its deliveries counted in delivered_win */
	struct bench_pub *pub;      /* publisher: its state */
	struct ssl_st *ssl;         /* --tls: the client SSL over memory BIOs (tls.c), or NULL */
	struct bench_ws *ws;        /* --ws: the WebSocket state (ws.c), or NULL */
};

/* A pre-encoded PUBLISH per topic: copied per message, then patched. */
struct bench_tmpl {
	uint8_t *bytes;       /* the whole packet */
	uint32_t len;         /* packet size */
	uint32_t payload_off; /* where the payload (timestamp, id, sequence) starts */
	uint32_t pid_off;     /* where the packet identifier goes (QoS > 0) */
};

/* Counters of the run; "window" ones count messages stamped inside the window. */
struct bench_counters {
	uint64_t sent_total;        /* PUBLISH packets generated */
	uint64_t sent_win;          /* generated during the window */
	uint64_t expected_win;      /* deliveries those should produce */
	uint64_t delivered_total;   /* PUBLISH packets received */
	uint64_t delivered_win;     /* received, stamped in the window, from our publishers */
	uint64_t delivered_ext_win; /* received, stamped in the window, from an outside source */
	uint64_t arrived_win;       /* received while the window was open (any stamp) */
	uint64_t duplicates;        /* seen twice by the same subscriber */
	uint64_t out_of_order;      /* older than one already seen from the same publisher */
	uint64_t invalid;           /* payloads not from this run */
	uint64_t acked;             /* QoS 1/2 publishes fully acknowledged */
	uint64_t sends;             /* send operations submitted */
	uint64_t send_bytes;        /* bytes handed to those sends */
	uint64_t recv_cqes;         /* receive completions with data */
	uint64_t recv_bytes;        /* bytes received */
	uint64_t nobufs;            /* receives stopped for lack of provided buffers */
	uint64_t short_sends;       /* sends that completed partially */
	uint64_t presumed_lost;     /* outstanding messages given up after lost_after_ms */
	uint64_t gap_lost;          /* deliveries missing from a subscriber's sequence */
};

/* Broker and bench readings at the edges of the window, taken by the leader. */
struct bench_samples {
	uint64_t broker_cpu0_ns;       /* broker CPU time when the window opened */
	uint64_t broker_cpu1_ns;       /* ... when it closed */
	uint64_t broker_rss0_kb;       /* broker RSS before the first connection */
	uint64_t broker_cpu_setup0_ns; /* broker CPU time before the first connection */
	uint64_t broker_cpu_setup1_ns; /* ... when every connection was set up */
	uint64_t setup_done_ns;        /* when every connection was set up (0: never) */
	uint64_t broker_rss1_kb;       /* ... when the window closed */
	uint64_t self_cpu0_ns;         /* our CPU time (all threads) when the window opened */
	uint64_t self_cpu1_ns;         /* ... when it closed */
	bool broker_ok;                /* every broker reading succeeded */
};

/*
 * What a thread tells the leader once it has stopped publishing for good (phase drain and on),
 * stored every loop iteration from then on: enough to decide that the run has drained without
 * reading its counters. The counts are stored relaxed, then `stopped` with release on the first
 * time, after which expected_win no longer changes; a stale delivered_win or inflight only errs
 * towards waiting longer.
 */
struct bench_pulse {
	_Atomic uint64_t expected_win;  /* n.expected_win, final */
	_Atomic uint64_t delivered_win; /* n.delivered_win */
	_Atomic uint64_t inflight;      /* QoS 1/2 publishes of its publishers not acknowledged */
	_Atomic bool stopped;           /* the figures above are being published */
};

/*
 * The run, shared by all threads. Everything but the atomics is written before the threads
 * start, or by the leader before the release store of `phase` that makes it visible.
 */
struct bench_shared {
	const struct bench_opts *o;   /* options, borrowed */
	struct bench_plan plan;       /* what to run */
	struct bench_pub *pubs;       /* publisher states, plan.pubs entries, 64-byte aligned */
	struct bench_tmpl *tmpl;      /* per topic of the plan */
	struct sockaddr_storage addr; /* broker address; stays valid for every connect */
	socklen_t addr_len;           /* its length */
	uint32_t nconns;              /* subs + pubs + idle, over all threads */
	uint32_t max_packet;          /* largest packet accepted from the broker */
	uint32_t nthreads;            /* --threads */
	struct bench **threads;       /* nthreads entries; threads[0] is the leader */
	int *ring_fds;                /* each thread's ring, for MSG_RING wake-ups */
	pthread_barrier_t barrier;    /* rings set up before any loop; loops over before exits */
	uint64_t t_start_ns;          /* run start */
	uint64_t t_pub_start_ns;      /* publishing starts (rate epoch) */
	uint64_t win_start_ns;        /* the window opens: planned when setup ends */
	uint64_t win_end_ns;          /* the window closes */
	uint64_t t_phase_ns;          /* leader only: when the current phase began */
	struct bench_samples s;       /* leader only: /proc readings */
	_Atomic uint32_t phase;       /* enum bench_phase; written by the leader (release) */
	_Atomic uint32_t ready;       /* connections set up */
	_Atomic uint32_t handshakes;  /* connects started, CONNACK not yet received */
	_Atomic uint32_t subscribing; /* connections waiting for SUBACKs */
	_Atomic uint32_t closed;      /* connections closed by the broker after DISCONNECT */
	_Atomic bool failing;         /* a thread is in bench_fail: the others keep quiet */
	struct ssl_ctx_st *tls_ctx;   /* --tls: the client context all connections share */
};

/* One thread's loop: its ring, its connections and its counters. */
struct bench {
	struct bench_shared *sh;       /* the run */
	const struct bench_opts *o;    /* sh->o, for brevity */
	const struct bench_plan *plan; /* &sh->plan */
	struct bench_pub *pubs;        /* sh->pubs */
	uint32_t id;                   /* thread index; 0 leads */
	bool flow_shared;              /* more than one thread: flow slots need atomic RMW */
	struct io_uring ring;          /* this thread's ring */
	struct io_uring_buf_ring *br;  /* provided receive buffers' ring (mmap'd) */
	uint8_t *rx_mem;               /* the receive buffers */
	uint32_t rx_returned;          /* buffers given back since the last advance */
	struct bench_conn *conns;      /* this thread's connections, by local index */
	uint32_t nconns;               /* entries in conns */
	uint32_t *pub_conns;           /* local indexes of its publishers */
	uint32_t npubs;                /* entries in pub_conns */
	uint32_t *dirty;               /* connections with output to flush */
	uint32_t ndirty;               /* entries in dirty */
	uint32_t *rearm;               /* connections whose recv must be re-armed */
	uint32_t nrearm;               /* entries in rearm */
	uint64_t wake;                 /* threads to wake at the next flush, a bit each */
	enum bench_phase phase;        /* the phase this thread has acted on */
	uint64_t t_pub_start_ns;       /* copies of the leader's, taken on phase changes */
	uint64_t win_start_ns;         /* ... UINT64_MAX before the window is planned */
	uint64_t win_end_ns;           /* ... */
	uint64_t last_ping_check_ns;   /* last keep-alive scan */
	uint32_t next_connect;         /* next local index to connect */
	uint32_t handshakes;           /* this thread's connects awaiting CONNACK */
	uint8_t granted_qos_min;       /* lowest QoS granted in any SUBACK */
	uint16_t server_keepalive_s;   /* keep alive in use (the broker may lower it in MQTT 5) */
	uint64_t inflight;             /* sum of its publishers' inflight */
	struct bench_counters n;       /* counters */
	uint64_t *ooo_per_pub;         /* out-of-order deliveries per publisher id */
	struct bench_hist hist;        /* latency of window messages, ns */
	uint8_t *tls_buf;              /* --tls: plaintext gathered for mqtt.c, or NULL */
	uint8_t *ws_buf;               /* --ws: frame payloads gathered for mqtt.c, or NULL */
	uint64_t ws_rng;               /* --ws: state of the masking keys' generator */
	alignas(64) struct bench_pulse pulse; /* read by the leader */
};

/* loop.c: ring, buffers and sockets. */
/* Resolves the broker's address and raises the descriptor limit, once for all threads. */
int bench_loop_prepare(struct bench_shared *sh, char *err, size_t err_len);
/* Sets up the calling thread's ring and buffers: call it from the thread that will use them. */
int bench_loop_init(struct bench *b, char *err, size_t err_len);
void bench_loop_exit(struct bench *b);
void bench_loop_reap(struct bench *b, uint64_t now_ns);
void bench_loop_start_connect(struct bench *b, struct bench_conn *c);
void bench_loop_flush(struct bench *b);
void bench_loop_rearm(struct bench *b);
void bench_mark_dirty(struct bench *b, struct bench_conn *c);
/* Room for n more bytes in the buffer being filled; bench_out_commit makes them queued. */
uint8_t *bench_out_reserve(struct bench *b, struct bench_conn *c, uint32_t n);

static inline void bench_out_commit(struct bench_conn *c, uint32_t n)
{
	c->out[c->send_idx ^ 1u].len += n;
}

/* tls.c: --tls over memory BIOs. */
struct ssl_st;
struct ssl_ctx_st;
/* Builds the shared client context from the options (nothing without --tls). */
int bench_tls_prepare(struct bench_shared *sh, char *err, size_t err_len);
void bench_tls_fini(struct bench_shared *sh);
/* The TCP connection is up: starts the handshake (CONNECT follows when it is done). */
void bench_tls_start(struct bench *b, struct bench_conn *c);
/* Ciphertext received: the handshake, then plaintext to bench_mqtt_input. */
void bench_tls_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                     uint64_t now_ns);
/* Encrypts the buffer about to be sent in place (with pending handshake bytes); false: empty. */
bool bench_tls_seal(struct bench *b, struct bench_conn *c);
void bench_tls_free(struct bench_conn *c);

/* ws.c: --ws, MQTT over WebSockets. */
struct bench_ws;
/* The TCP (or TLS) connection is up: sends the upgrade request (CONNECT follows the 101). */
void bench_ws_start(struct bench *b, struct bench_conn *c);
/* Bytes from below (socket or TLS): the 101, then frames to bench_mqtt_input. */
void bench_ws_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                    uint64_t now_ns);
/* Frames (masked) the buffer about to be sent, in place. */
void bench_ws_seal(struct bench *b, struct bench_conn *c);
void bench_ws_free(struct bench_conn *c);
/* The connection's transport is up (TCP, or TLS after its handshake): WebSocket or MQTT. */
void bench_stream_connected(struct bench *b, struct bench_conn *c);
/* Plain bytes received (from the socket or TLS): through WebSocket if any, to mqtt.c. */
void bench_stream_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                        uint64_t now_ns);

/* mqtt.c: packets in and out of one connection. */
void bench_mqtt_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                      uint64_t now_ns);
void bench_mqtt_connected(struct bench *b, struct bench_conn *c);
void bench_mqtt_queue_simple(struct bench *b, struct bench_conn *c, uint8_t type);
void bench_mqtt_client_id(const struct bench *b, const struct bench_conn *c, char *out, size_t cap);
int bench_mqtt_build_templates(struct bench_shared *sh);

/* flow.c: end-to-end flow control without a rate. */
int bench_flow_init(struct bench_shared *sh);
/* Publisher's thread: how many more messages pub may generate now. */
uint32_t bench_flow_room(struct bench *b, struct bench_pub *pub, uint64_t now_ns);
/* Publisher's thread: message seq was generated, for fan subscribers. */
void bench_flow_sent(struct bench_pub *pub, uint32_t seq, uint32_t fan, uint64_t now_ns);
/* Subscriber's thread: subscriber sub got seq from pub, with its sequence verdict. */
void bench_flow_received(struct bench *b, struct bench_pub *pub, uint32_t sub, uint32_t seq,
                         enum bench_seq_verdict v, bool first, uint32_t prev_high);

/* session.c: --persistent. */
/*
 * Connects every client id of the run once with a clean session and disconnects it, waiting
 * for the broker's close: whatever the broker held for those ids is gone. Blocking; call it
 * before the threads start and after they end. 0, or -1 with err saying which client and why.
 */
int bench_sessions_clean(const struct bench_shared *sh, char *err, size_t errlen);

/* run.c: one thread's loop and its publishers. */
/* Runs the thread's loop until the leader ends the run; b->id 0 leads (phase.c). */
int bench_run(struct bench *b);
uint64_t bench_now_ns(void);

/* phase.c: the leader's side of the phases, run by thread 0 once per loop iteration. */
/* Samples what must be read before the first connection (the broker's RSS). */
void bench_phase_start(struct bench_shared *sh, uint64_t now_ns);
/* Moves the shared phase on; returns the nanoseconds until the leader's next deadline. */
uint64_t bench_phase_lead(struct bench *b, uint64_t now_ns);

/* report.c. */
/* Prints the summary and the JSON line. Returns 0, or -1 (reason printed) for a failed run. */
int bench_report(const struct bench_shared *sh);

/*
 * Ends the run: prints the reason on stderr and a JSON line with "ok":false on stdout, then
 * exits with status 1. Every failure of a connection or subscription goes through here; when
 * two threads fail at once, the first one's reason is the one printed.
 */
__attribute__((noreturn, format(printf, 2, 3))) void bench_fail(const struct bench *b,
                                                                const char *fmt, ...);

#endif
