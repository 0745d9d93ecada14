/*
 * Bridges (issue 12): Starling as a client of another broker, one per `connection` block,
 * driven from the ring of the worker that is the home of its local client id.
 *
 * A bridge is two things that Mosquitto users know as one: a local session (local_clientid)
 * whose subscriptions are the `out` topics, under the local prefix, and an outgoing connection
 * to the remote broker that carries that session's deliveries as PUBLISHes (topics remapped)
 * and brings the `in` topics' messages, which are published locally as if that session had
 * published them. So everything a session does for a client it does for a bridge: QoS 1/2
 * windows and redelivery, the queue bounded by max_queued_messages while the remote is away,
 * persistence across restarts when local_cleansession is false. Loops are cut the way
 * Mosquitto cuts them: the local subscriptions have No Local (what came in over the bridge
 * does not go back out), and the remote is asked for the same, with MQTT 5's No Local or with
 * try_private's bridge flag (protocol level | 0x80) for 3.x.
 *
 * The connection is a struct conn like a client's, with conn->bridge set: the framing, the
 * output, TLS and persistence holds are the same; only the handshake runs the other way
 * (the bridge sends CONNECT and SUBSCRIBE and reads CONNACK and SUBACK), keep alive is the
 * bridge's PINGREQs, and topics are remapped on the way out (out.c) and in (handle_publish.c).
 */
#ifndef STARLING_BRIDGE_H
#define STARLING_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/config.h"
#include "bridge/address.h"
#include "bridge/backoff.h"
#include "bridge/topicmap.h"
#include "io/resolve.h"
#include "io/ring.h"
#include "starling/codec.h"

struct worker;
struct conn;
struct session;
struct bridge_snapshot;
struct tls_client;

enum bridge_state {
	BRIDGE_WAITING = 0, /* until next_ms: the first attempt, or a retry after its back-off */
	BRIDGE_CONNECTING,  /* the TCP connect is in flight */
	BRIDGE_CONNACK,     /* CONNECT sent, CONNACK awaited */
	BRIDGE_UP,          /* forwarding */
	BRIDGE_IDLE,        /* start_type lazy: down until `threshold` messages wait */
	BRIDGE_STOPPED,     /* start_type once, after its connection ended; or shutting down */
};

struct bridge_stats {
	uint64_t connects; /* CONNACKs accepted */
	uint64_t failures; /* attempts that failed: connect, TLS, CONNACK refused, lost */
	uint64_t msgs_out; /* PUBLISHes sent to the remote (resends included) */
	uint64_t msgs_in;  /* PUBLISHes received from the remote */
	uint64_t dropped;  /* messages for the remote dropped: QoS 0 while down, queue full */
};

struct bridge {
	struct ring_io io;               /* the connect's completion */
	struct worker *w;                /* home worker */
	const struct config_bridge *cfg; /* borrowed from the broker's configuration */
	uint8_t state;                   /* enum bridge_state */
	uint8_t level;                   /* protocol level spoken (3, 4, 5) */
	bool stopping;                   /* the broker is stopping: no more attempts */
	bool to_main;                    /* the main address answers again: go there at once */
	bool retry_now;                  /* try again at once (try_private refused: without it) */
	bool no_private;                 /* the remote refused try_private: plain 3.x from now on */
	int fd;                          /* socket while connecting; -1 otherwise */
	struct bridge_addr_sel sel;      /* which address to use (bridge/address.h) */
	struct bridge_backoff bo;        /* the delay before the next attempt (bridge/backoff.h) */
	uint64_t rnd;                    /* the back-off's random state */
	struct resolve rs;               /* the address being looked up (io/resolve.h) */
	struct resolve_addr dest;        /* the address connected to (borrowed by the connect) */
	struct ring_io probe_io;         /* round_robin false, on a secondary: the main's probe */
	int probe_fd;                    /* the probe's socket, -1 */
	struct resolve probe_rs;         /* the main address looked up for the probe */
	struct resolve_addr probe_dest;  /* and connected to */
	struct tls_client *tls;          /* TLS to the remote (bridge_cafile...), or NULL */
	struct conn *c;                  /* the connection, from CONNECT sent to its close */
	struct session *s;               /* the local session, or NULL while it has none */
	uint64_t next_ms;                /* WAITING: when the next attempt starts */
	uint64_t delay_ms;               /* the last back-off delay */
	uint64_t ping_ms;                /* UP: when the last PINGREQ left */
	uint64_t active_ms;              /* UP: when a message last crossed (lazy's idle_timeout) */
	uint64_t seen_msgs;              /* msgs_in + msgs_out at active_ms */
	struct bridge_sub *lsubs;        /* local subscriptions (out/both topics) */
	struct bridge_sub *rsubs;        /* remote subscriptions (in/both topics) */
	struct bridge_sub *unsubs;       /* remote unsubscriptions (bridge_attempt_unsubscribe) */
	unsigned nlsubs, nrsubs, nunsubs;
	struct bridge_stats stats;
	struct bridge_snapshot *snap; /* its figures for the metrics (broker.h) */
	uint64_t sys_next_ms;         /* when its $SYS topics are published next */
	uint64_t sys_last[5];         /* the values last published there */
	bool sys_sent;                /* published at least once */
};

/* Bytes of the worker's bridge buffer: a renamed topic is at most an MQTT string. */
#define BRIDGE_TOPIC_BUF 65536u

/* Packet ids the bridge's own SUBSCRIBE and UNSUBSCRIBE use: above the session's window. */
#define BRIDGE_PID_SUBSCRIBE   65535
#define BRIDGE_PID_UNSUBSCRIBE 65534
#define BRIDGE_INFLIGHT_MAX    65533

/*
 * Makes the bridges whose local client id has this worker as home, their sessions (or picks
 * up those persistence restored) and starts those that start at once. After the replay.
 */
int bridge_start_all(struct worker *w);

/* Once per housekeeping pass: attempts that are due, keep alive, lazy start and stop. */
void bridge_tick(struct worker *w);

/* The broker is stopping: connections get a DISCONNECT, attempts stop. */
void bridge_stop_all(struct worker *w);

/* Frees what the bridges hold (after the loop, no operation in flight). */
void bridge_free_all(struct worker *w);

/* bridge_proto.c, for bridge.c: the connection is up (CONNECT queued) and its CONNACK came. */
int bridge_send_connect(struct bridge *b, struct conn *c);
int bridge_connack(struct bridge *b, struct conn *c, const struct st_connack *ck);
/* Finds (a restored one) or makes the local session. */
int bridge_session(struct bridge *b);
/* A DISCONNECT to the remote (a graceful end: it does not publish the bridge's will). */
void bridge_disconnect(struct conn *c);
/* The "0" of the notification topic, locally (the connection ended). */
void bridge_notify_local(struct bridge *b, bool up);
/* bridge.c, for bridge_proto.c: a connection reached the remote broker and was accepted. */
void bridge_up(struct bridge *b);
/* "NAME" for the log. */
static inline const char *bridge_name(const struct bridge *b)
{
	return b->cfg->name;
}

/* A packet only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP, DISCONNECT) on a bridge
 * connection; anything else a server may not send is a protocol error. */
int bridge_packet(struct conn *c, const struct st_packet *pkt);

/* A bridge connection is closing (handle_conn_closing): notification, retry schedule. */
void bridge_conn_closing(struct conn *c, bool graceful, const char *reason);

/*
 * The remote topic of an outgoing message's local topic, written into the worker's bridge
 * buffer (valid until the next call); false when no out/both topic maps it (not sent).
 */
bool bridge_topic_out(const struct conn *c, struct st_bytes *topic);

/*
 * The local topic of a message the remote sent: 1 with *topic rewritten (into the worker's
 * bridge buffer), 0 when no in/both topic maps it (it is acknowledged and dropped).
 */
int bridge_topic_in(const struct conn *c, struct st_bytes *topic);

#endif
