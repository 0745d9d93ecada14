/*
 * The state of one starling-bench run, shared by its files: the io_uring loop (loop.c), the
 * MQTT side of each connection (mqtt.c), the phases and publishers (run.c) and the report
 * (report.c). Everything hangs off one struct bench, owned by main() and passed first.
 *
 * One thread drives every connection through one ring. Each connection has exactly one send
 * in flight at a time (../shared/IO_URING.md: overlapping sends on a TCP socket reorder bytes)
 * and two output buffers: the one being sent and the one being filled; when a send completes,
 * everything queued since goes out as one send. A publisher fills its buffer with up to
 * batch_bytes of PUBLISH packets per send. Receiving is one multishot recv per connection into
 * a provided buffer ring shared by all of them; packets are counted in place in the ring
 * buffer, which goes back to the ring in the same loop iteration, and only a packet that
 * spans two reads is copied (into the connection's carry buffer).
 */
#ifndef STARLING_BENCH_H
#define STARLING_BENCH_H

#include <liburing.h>
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

/* Operation kinds in the low byte of user_data; the connection index is above. */
enum bench_op {
	BENCH_OP_CONNECT = 1,
	BENCH_OP_RECV = 2,
	BENCH_OP_SEND = 3,
};

struct bench_outbuf {
	uint8_t *data; /* bytes queued; malloc'd, grows up to BENCH_OUT_MAX_BYTES */
	uint32_t len;  /* bytes queued */
	uint32_t cap;  /* bytes allocated */
};

/*
 * End-to-end flow control of one publisher when no rate is given (flow.c): messages generated
 * but not yet delivered to every subscriber that should get them, by sequence number.
 */
struct bench_flow {
	uint32_t *left;    /* ring by sequence: deliveries still expected */
	uint64_t *sent_ns; /* ring by sequence: when the message was generated */
	uint32_t mask;     /* ring size - 1; 0 when not bounded */
	uint32_t head;     /* oldest sequence still outstanding */
	uint32_t window;   /* messages that may be outstanding */
};

/* A publisher's side of its connection. */
struct bench_pub {
	uint32_t plan_index;    /* index in plan->pub */
	uint32_t pub_id;        /* id in payloads */
	uint32_t seq_next;      /* sequence of the next message */
	uint32_t topic_next;    /* which of its topics the next message goes to */
	uint64_t rate_sent;     /* messages generated since publishing started */
	uint16_t pid_next;      /* next packet identifier to try (QoS > 0) */
	uint32_t inflight;      /* QoS 1/2 publishes not yet fully acknowledged */
	uint32_t inflight_max;  /* window: --inflight, lowered to the broker's Receive Maximum */
	uint8_t *pid_state;     /* QoS > 0: per packet id, 0 free, 1 sent, 2 PUBREL sent */
	struct bench_flow flow; /* bound on messages not yet delivered (no rate given) */
};

struct bench_conn {
	int fd;                     /* socket, -1 before connect */
	uint32_t index;             /* client index (plan.h) */
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
	struct bench_pub *pub;      /* publisher: its state */
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

/* Broker and bench readings at the edges of the window. */
struct bench_samples {
	uint64_t broker_cpu0_ns; /* broker CPU time when the window opened */
	uint64_t broker_cpu1_ns; /* ... when it closed */
	uint64_t broker_rss0_kb; /* broker RSS before the first connection */
	uint64_t broker_rss1_kb; /* ... when the window closed */
	uint64_t self_cpu0_ns;   /* our CPU time when the window opened */
	uint64_t self_cpu1_ns;   /* ... when it closed */
	bool broker_ok;          /* every broker reading succeeded */
};

struct bench {
	const struct bench_opts *o;   /* options, borrowed */
	struct bench_plan plan;       /* what to run */
	struct io_uring ring;         /* the one ring */
	struct io_uring_buf_ring *br; /* provided receive buffers' ring (mmap'd) */
	uint8_t *rx_mem;              /* the receive buffers */
	uint32_t rx_returned;         /* buffers given back since the last advance */
	struct sockaddr_storage addr; /* broker address; stays valid for every connect */
	socklen_t addr_len;           /* its length */
	struct bench_conn *conns;     /* all connections, by client index */
	uint32_t nconns;              /* subs + pubs + idle */
	struct bench_pub *pubs;       /* publisher states, plan->pubs entries */
	struct bench_tmpl *tmpl;      /* per topic of the plan */
	uint32_t *dirty;              /* connections with output to flush */
	uint32_t ndirty;              /* entries in dirty */
	uint32_t *rearm;              /* connections whose recv must be re-armed */
	uint32_t nrearm;              /* entries in rearm */
	uint32_t max_packet;          /* largest packet accepted from the broker */
	enum bench_phase phase;       /* where the run is */
	uint64_t t_start_ns;          /* run start */
	uint64_t t_phase_ns;          /* current phase start */
	uint64_t t_pub_start_ns;      /* publishing started (rate epoch) */
	uint64_t win_start_ns;        /* window opened; UINT64_MAX before */
	uint64_t win_end_ns;          /* window closed; UINT64_MAX before */
	uint64_t last_ping_check_ns;  /* last keep-alive scan */
	uint32_t next_connect;        /* next client index to connect */
	uint32_t handshakes;          /* connects started, CONNACK not yet received */
	uint32_t ready;               /* connections set up */
	uint32_t closed;              /* connections closed by the broker after DISCONNECT */
	uint8_t granted_qos_min;      /* lowest QoS granted in any SUBACK */
	uint16_t server_keepalive_s;  /* keep alive in use (the broker may lower it in MQTT 5) */
	struct bench_counters n;      /* counters */
	uint64_t *ooo_per_pub;        /* out-of-order deliveries per publisher id */
	struct bench_hist hist;       /* latency of window messages, ns */
	struct bench_samples s;       /* /proc readings */
};

/* loop.c: ring, buffers and sockets. */
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

/* mqtt.c: packets in and out of one connection. */
void bench_mqtt_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                      uint64_t now_ns);
void bench_mqtt_connected(struct bench *b, struct bench_conn *c);
void bench_mqtt_queue_simple(struct bench *b, struct bench_conn *c, uint8_t type);
void bench_mqtt_client_id(const struct bench *b, const struct bench_conn *c, char *out, size_t cap);
int bench_mqtt_build_templates(struct bench *b);

/* flow.c: end-to-end flow control without a rate. */
int bench_flow_init(struct bench *b);
uint32_t bench_flow_room(struct bench *b, struct bench_pub *pub, uint64_t now_ns);
void bench_flow_sent(struct bench_pub *pub, uint32_t seq, uint32_t fan, uint64_t now_ns);
void bench_flow_received(struct bench *b, struct bench_pub *pub, uint32_t sub, uint32_t seq,
                         enum bench_seq_verdict v, bool first, uint32_t prev_high);

/* run.c: the phases and the publishers. */
int bench_run(struct bench *b);
uint64_t bench_now_ns(void);

/* report.c. */
/* Prints the summary and the JSON line. Returns 0, or -1 (reason printed) for a failed run. */
int bench_report(const struct bench *b);

/*
 * Ends the run: prints the reason on stderr and a JSON line with "ok":false on stdout, then
 * exits with status 1. Every failure of a connection or subscription goes through here.
 */
__attribute__((noreturn, format(printf, 2, 3))) void bench_fail(const struct bench *b,
                                                                const char *fmt, ...);

#endif
