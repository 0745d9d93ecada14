/*
 * A client connection: framing of received bytes into packets, the output buffers and the one
 * send in flight, and the connection's life cycle. Packet semantics live in the handlers
 * (handle_*.c); this file only moves bytes.
 *
 * Receive: packets are decoded in place in the provided buffer the kernel filled. Only a
 * packet that spans two receives is copied, into `rbuf`, which grows with the bytes received
 * (never past the packet, which the maximum packet size bounds); it is freed as soon as the
 * packet is complete, so idle connections hold no receive memory.
 *
 * Send: handlers append packets to `out`. At the end of each completion batch the worker
 * flushes every connection that has output and no send in flight: `out` and `sending` swap and
 * one sendmsg carries everything queued since the last send. A short send resumes from where
 * it stopped. At most one send is in flight per socket, so bytes never reorder.
 *
 * Life cycle: NEW (awaiting CONNECT) -> ACTIVE -> CLOSING. Closing detaches the session and
 * frees what only handling input needs at once; the final packets (CONNACK, DISCONNECT) are
 * sent, then the sending side is shut (FIN) and input is read and dropped until the client's
 * EOF, within bounds of time (timers.c) and bytes, so that the client can read those packets
 * instead of a reset. Then the socket is shut down and its operations cancelled; the struct is
 * freed only when the last completion has arrived (io.pending == 0), at the end of a batch.
 *
 * Hand-off: a CONNECT whose client id lives on another worker puts the connection in HANDOFF:
 * its receive is cancelled, and the CONNECT with every byte after it is kept in `rbuf` until
 * the receive's last completion; then the socket and the bytes move to the home worker
 * (worker_conn_handoff), which parses them as if it had read them itself. A TLS connection's
 * SSL moves with it, its bytes kept as plaintext (conn_tls.h says how); so does a WebSocket
 * connection's framing state, its bytes kept unframed (conn_ws.h).
 *
 * Layers of the byte stream: socket -> TLS (conn_tls) -> WebSocket (conn_ws) -> MQTT
 * (conn_input_bytes); each is optional and each hands the next plain bytes.
 */
#ifndef STARLING_CONN_H
#define STARLING_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "alias.h"
#include "obuf.h"
#include "base/wheel.h"
#include "io/ring.h"

struct worker;
struct session;
struct msg;
struct conn_tls;
struct conn_ws;
struct bridge;

enum conn_state {
	CONN_NEW = 0,     /* connected, no CONNECT yet */
	CONN_ACTIVE = 1,  /* CONNECT accepted */
	CONN_CLOSING = 2, /* final output leaving, then input dropped until the client closes */
	CONN_HANDOFF = 3, /* moving to the session's home worker, waiting for the last recv */
};

/* What only an MQTT 5 connection needs; allocated with the CONNECT of a 5.0 client. */
struct conn5 {
	struct alias_in alias_in;   /* topic aliases the client uses */
	struct alias_out alias_out; /* topic aliases the broker uses towards the client */
	uint32_t max_packet_out;    /* largest packet the client accepts; 0: no limit */
	uint16_t receive_max_in;    /* QoS 2 PUBLISHes the client may have awaiting PUBREL */
	bool problem_info;          /* Request Problem Information (default 1) */
	bool had_session_expiry;    /* CONNECT carried a non-zero Session Expiry Interval */
	uint32_t will_expiry_s;     /* the will's Message Expiry Interval, 0: none */
	uint32_t will_delay_s;      /* the will's Will Delay Interval */
};

struct conn {
	struct ring_io io;  /* completions of this socket's operations */
	struct worker *w;   /* owning worker, borrowed */
	int fd;             /* the socket */
	uint8_t state;      /* enum conn_state */
	uint8_t level;      /* protocol level from CONNECT (4 before it) */
	bool recv_armed;    /* a multishot recv is pending */
	bool recv_starved;  /* the recv stopped on -ENOBUFS; re-arm at batch end */
	bool send_busy;     /* a send is in flight */
	bool on_flush_list; /* linked into the worker's flush list */
	bool eof;           /* the socket is shut down: nothing more goes in or out */
	bool dead;          /* handed to the worker to free */
	bool adopted;       /* handed over by another worker: never handed on again */
	/* Cluster (cluster.h): a CONNECT parked in HANDOFF to this very worker while the cluster
	 * finds its session; its receive over; the answer in; the CONNECT handled again. */
	bool cl_parked, cl_rx_ended, cl_answered, cl_resolved;
	bool paused;             /* not read until the cross-worker backlog drains */
	bool behind;             /* the last send was short: the socket's buffer is full */
	bool wr_shut;            /* CLOSING: final output out, sending side shut (FIN sent) */
	bool rx_done;            /* the receive saw the client's EOF or an error */
	bool peer_bridge;        /* a Mosquitto bridge (try_private): its subscriptions are
	                         No Local and Retain As Published (subdata.h) */
	uint16_t accepted_by;    /* worker whose listener accepted the socket */
	uint16_t handoff_to;     /* HANDOFF: the home worker */
	uint16_t listener;       /* configured listener it came in on (its security domain) */
	uint16_t mount_len;      /* bytes of mount: its listener's mount_point (mount.h), 0: none */
	const uint8_t *mount;    /* the mount_point, borrowed from the configuration */
	const char *close_later; /* close at the end of the batch, for this reason (static text) */
	uint16_t keepalive_s;    /* negotiated keep alive, 0: none */
	uint64_t id;             /* connection number, for logs */
	uint64_t last_rx_ms;     /* monotonic time of the last received bytes */
	uint64_t opened_ms;      /* monotonic time of accept */
	uint64_t closing_ms;     /* monotonic time conn_close ran (bounds a lingering close) */
	uint64_t send_since_ms;  /* monotonic time the send in flight was submitted */
	uint64_t wr_shut_ms;     /* monotonic time the sending side was shut (wr_shut) */
	uint64_t discarded;      /* CLOSING: bytes received and dropped unread */
	struct wheel_node timer; /* the worker's timer for this state (timers.c) */
	struct session *session; /* attached session (ACTIVE), borrowed from the worker */
	struct msg *will;        /* will message (reference), or NULL */
	struct conn5 *v5;        /* MQTT 5 state, NULL for 3.x clients */
	struct conn_tls *tls;    /* TLS state (conn_tls.h), NULL on a plaintext listener */
	struct conn_ws *ws;      /* WebSocket state (conn_ws.h), NULL on an MQTT listener */
	struct bridge *bridge;   /* a bridge's connection to its remote (bridge.h), else NULL */
	char *username;          /* the client's username (CONNECT's, or its certificate's with
	                            use_identity/subject_as_username), NUL-terminated; or NULL */
	uint16_t username_len;   /* bytes of username */
	uint64_t pw_tag;         /* its password-file entry's tag (auth_pw_tag), 0: not by file */

	uint8_t *rbuf; /* partial packet spanning receives, or NULL */
	uint32_t rlen; /* bytes held in rbuf */
	uint32_t rcap; /* bytes allocated (grows with the bytes received) */

	struct obuf out;     /* packets queued since the last send */
	struct obuf sending; /* packets of the send in flight */
	uint64_t sent;       /* bytes of `sending` already sent */
	struct iovec *iov;   /* iovecs of the send in flight */
	uint32_t iov_cap;    /* entries allocated */
	struct msghdr mh;    /* header of the send in flight */
	uint64_t dropped;    /* QoS 0 deliveries dropped: output over max_output_bytes */

	/* Shared subscriptions whose group lives on another worker: the SUBACK (UNSUBACK) and
	 * everything after it wait until the group's worker has the join (leave), so that a
	 * message published once the client has its SUBACK finds the new member. share_wait:
	 * answers still due; the first share_hold bytes of `out` may leave meanwhile. */
	uint32_t share_wait;
	uint64_t share_hold;

	/* Persistence holds (persist.h): all of `out` waits for commit hold_commit, except its
	 * first `mark` bytes, which wait only for mark_commit. */
	uint64_t hold_commit;
	uint64_t mark;
	uint64_t mark_commit;
	struct conn *hold_fill_prev, *hold_fill_next; /* marked during the filling commit */
	struct conn *hold_wait_prev, *hold_wait_next; /* marked at a seal, not yet released */
	bool on_fill;
	bool on_wait;

	struct conn *flush_next;  /* worker's flush list */
	struct conn *pause_next;  /* worker's list of paused connections */
	struct conn *prev, *next; /* worker's list of all connections */
};

/* True while the connection's receive should be armed (whether it is or not): not while it
 * moves to another worker, nor once a closing connection's client has closed. */
static inline bool conn_reading(const struct conn *c)
{
	if (c->eof || c->paused || c->state == CONN_HANDOFF)
		return false;
	return c->state != CONN_CLOSING || !c->rx_done;
}

/* Creates a connection for an accepted socket, arms its receive. NULL if out of memory. */
struct conn *conn_new(struct worker *w, int fd);

/*
 * Closes the connection: publishes the will unless `graceful` (DISCONNECT received), detaches
 * the session (ending it if clean), shuts the socket down. Idempotent. The struct lives on
 * until its operations complete.
 */
void conn_close(struct conn *c, bool graceful, const char *reason);

/*
 * Closes the connection at the end of the batch. For failures in the middle of routing a
 * message: closing at once would publish the will, routing a second message while the first is
 * still being routed.
 */
void conn_close_later(struct conn *c, const char *reason);

/* Closes at once, without waiting for queued output (a lingering close that takes too long). */
void conn_abort(struct conn *c);

/*
 * Moves a NEW connection whose CONNECT was just decoded to worker `to` (its client id's home):
 * the CONNECT and what follows are kept, the receive is cancelled, and once its last
 * completion has arrived the worker hands socket and bytes over.
 */
void conn_handoff(struct conn *c, unsigned to);

/* HANDOFF: keeps plaintext bytes for the home worker (for conn_tls.c). */
void conn_keep(struct conn *c, const uint8_t *p, size_t n);

/* Submits `sending` from offset `sent` as one sendmsg (for conn_tls.c's flush). */
void conn_submit_send(struct conn *c);

/* Bytes from below the WebSocket layer (the socket, or TLS plaintext): through the WebSocket
 * layer if c has one, then to the MQTT input path (or kept, in HANDOFF). */
void conn_stream_bytes(struct conn *c, const uint8_t *p, size_t n);

/* Parses bytes as if received (those a handed-over connection had read elsewhere). */
void conn_input_bytes(struct conn *c, const uint8_t *p, size_t n);
/* Reads and handles what the socket holds now, before the connection is taken over. */
void conn_drain_input(struct conn *c);

/* Frees a dead connection (unlinked by the worker); closes its socket if it still has one. */
void conn_free(struct conn *c);

/* Marks the connection as having output, so the worker flushes it at the end of the batch. */
void conn_want_flush(struct conn *c);

/* Starts a send of everything queued, if any and none is in flight. */
void conn_flush(struct conn *c);

/*
 * Room for n bytes of one control packet at the end of the output, or NULL when the
 * connection is closed (already, out of memory, or a client that does not read). Commit
 * with conn_commit(), which counts the packet and schedules the flush.
 */
uint8_t *conn_reserve(struct conn *c, size_t n);
void conn_commit(struct conn *c, size_t n);

/* Queues bytes (a control packet) for sending. Closes the connection when out of memory. */
void conn_queue_bytes(struct conn *c, const void *p, size_t n);

/* Unsent bytes queued and in flight: what max_output_bytes bounds. */
static inline uint64_t conn_output_bytes(const struct conn *c)
{
	return c->out.total + (c->sending.total - c->sent);
}

/*
 * Whether a QoS 1/2 delivery may go into c's output now: the window says how many may be
 * unacknowledged, this says how much may wait unsent. Past half of max_output_bytes they wait
 * in the session's queue (bounded by max_queued_messages, never dropped for the output's sake)
 * and leave as the output drains, so a wide window costs no more memory than a narrow one and
 * a slow reader is never closed for what the broker itself chose to send it.
 */
bool conn_qos_room(const struct conn *c);

/*
 * Whether a QoS 0 delivery of n bytes to c is dropped: past the connection's own bound
 * (max_output_bytes), or while the worker's output memory is over its share of
 * max_output_memory, for a connection that is not keeping up (its socket was found full, or its
 * send has waited for room in it for a while) and holds more than an even share of the bound:
 * the slow readers pay, not those that keep up.
 */
bool conn_output_full(const struct conn *c, uint64_t n);

#endif
