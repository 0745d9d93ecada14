/*
 * A small blocking MQTT client for the command-line tools (starling-pub, starling-sub).
 *
 * One TCP connection, one thread, poll(2) with deadlines: no io_uring here, the tools move a
 * few messages, not millions. Packets are framed and parsed with the broker's codec
 * (include/starling/codec.h); this file adds only the client's side of the protocol state:
 * the CONNECT/CONNACK handshake, keep alive, packet identifiers, and the QoS 1 and QoS 2
 * flows in both directions. Acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP, PINGRESP) are
 * handled inside; the caller sees only what it needs to act on, as events from client_wait().
 *
 * Ownership and lifetime: strings in struct client_config are borrowed for the life of the
 * client. A received message (CLIENT_EV_MESSAGE) is a view into the client's read buffer,
 * valid until the next call on the client.
 *
 * Bounds: at most `inflight_max` outgoing QoS 1/2 messages await acknowledgement (callers
 * wait for CLIENT_EV_PUBLISHED when client_publish() says ST_ERR_LIMIT); incoming QoS 2
 * state is one bit per packet identifier; the read buffer grows to the largest packet the
 * broker sends, at most what MQTT can frame.
 *
 * MQTT 5 (level 5) adds, inside the same flow: property blocks the caller encoded (from -D)
 * sent with CONNECT, the will, PUBLISH, SUBSCRIBE and DISCONNECT; the broker's limits from
 * CONNACK obeyed (Receive Maximum narrows the outgoing window, Maximum QoS, Retain Available,
 * Maximum Packet Size, Topic Alias Maximum, Server Keep Alive, Assigned Client Identifier);
 * topic aliases the broker sends resolved (only as many as the caller announced); reason
 * codes and reason strings handed to the caller; a DISCONNECT from the broker reported as an
 * event; and a DISCONNECT with a reason code sent before closing on a protocol error.
 */
#ifndef STARLING_TOOLS_CLIENT_H
#define STARLING_TOOLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

/* Mosquitto's clients keep 20 QoS 1/2 messages in flight by default (-M). */
#define CLIENT_INFLIGHT_DEFAULT 20u
#define CLIENT_INFLIGHT_MAX     65535u
/* Extra file descriptors client_wait() can watch besides the socket (stdin, a signalfd). */
#define CLIENT_WATCH_MAX 2u

struct client_config {
	const char *host;            /* name or address, resolved with getaddrinfo */
	uint16_t port;               /* TCP port */
	const char *client_id;       /* UTF-8, NUL-terminated */
	uint8_t level;               /* enum st_protocol_level */
	uint16_t keepalive_s;        /* keep alive; 0 disables PINGREQ */
	bool clean_session;          /* CONNECT clean session flag */
	const char *username;        /* NULL for none */
	const char *password;        /* NULL for none; needs a username in MQTT 3.x */
	const char *will_topic;      /* NULL for no will */
	const uint8_t *will_payload; /* will message, may be NULL when will_payload_len is 0 */
	size_t will_payload_len;     /* bytes of will_payload */
	uint8_t will_qos;            /* 0..2 */
	bool will_retain;            /* will is retained */
	bool debug;                  /* print each packet sent and received on stdout */
	uint32_t inflight_max;       /* outgoing QoS 1/2 window, 1..CLIENT_INFLIGHT_MAX */
	/* MQTT 5 only. Property blocks are encoded (without their length) and borrowed. */
	struct st_bytes connect_props;    /* CONNECT properties */
	struct st_bytes will_props;       /* will properties, sent with a will only */
	struct st_bytes publish_props;    /* every PUBLISH (a Topic Alias in it is honoured) */
	struct st_bytes subscribe_props;  /* SUBSCRIBE properties */
	struct st_bytes disconnect_props; /* DISCONNECT properties */
	uint16_t receive_max;             /* Receive Maximum sent unless connect_props has one */
	uint8_t sub_options;              /* subscription options above the QoS bits */
	/* TLS, as mosquitto's clients: on when cafile or capath is set. */
	const char *cafile;   /* PEM CAs that verify the broker, or NULL */
	const char *capath;   /* directory of hashed PEM CAs, or NULL */
	const char *certfile; /* client certificate (with keyfile), or NULL */
	const char *keyfile;  /* its private key */
	bool insecure;        /* do not check the certificate's host name */
	uint8_t tls_version;  /* lowest version: 12 (default) or 13 */
};

enum client_event_type {
	CLIENT_EV_TIMEOUT = 0,  /* the deadline passed */
	CLIENT_EV_MESSAGE,      /* a PUBLISH from the broker (already acknowledged) */
	CLIENT_EV_PUBLISHED,    /* an outgoing QoS 1/2 message completed its flow */
	CLIENT_EV_SUBACK,       /* the broker answered a SUBSCRIBE */
	CLIENT_EV_WATCH,        /* a watched descriptor is readable (or at EOF/error) */
	CLIENT_EV_RELEASED,     /* an incoming QoS 2 flow completed (PUBREL answered) */
	CLIENT_EV_DISCONNECTED, /* MQTT 5: the broker sent DISCONNECT; the connection is closed */
};

struct client_event {
	enum client_event_type type;   /* what happened */
	struct st_publish msg;         /* CLIENT_EV_MESSAGE: views into the read buffer (the topic
	                                * of an aliased message into the alias table) */
	uint16_t packet_id;            /* PUBLISHED and SUBACK: the packet identifier */
	struct st_bytes codes;         /* SUBACK: one return code per filter */
	uint8_t reason;                /* PUBLISHED, DISCONNECTED: MQTT 5 reason code, 0 for 3.x */
	struct st_bytes reason_string; /* PUBLISHED, DISCONNECTED: MQTT 5 Reason String or empty */
	unsigned watch_index;          /* WATCH: index into the watched descriptors */
};

struct client;

/* Allocates a client for `cfg` (borrowed). Returns ST_OK or ST_ERR_NOMEM. */
int client_new(struct client **out, const struct client_config *cfg);

/* Closes the socket if open and frees the client. NULL is allowed. */
void client_free(struct client *c);

/*
 * Opens the TCP connection, sends CONNECT and waits for CONNACK. Returns ST_OK with
 * *connack_code 0 on success; ST_OK with a non-zero *connack_code when the broker refused
 * (for MQTT 5 an MQTT 5 reason code, 0x84 when a 3.x broker answered "unacceptable protocol
 * version"; the broker closes the connection, client_disconnect() only logs a DISCONNECT, as
 * mosquitto_sub does); or a negative error (see client_error()).
 */
int client_connect(struct client *c, uint8_t *connack_code, bool *session_present);

/*
 * Sends one PUBLISH. For QoS 1/2 stores the packet identifier in *packet_id (may be NULL)
 * and returns ST_ERR_LIMIT, sending nothing, when client_inflight_max() messages already wait
 * for acknowledgement: the caller then waits for CLIENT_EV_PUBLISHED. Topic and payload are
 * borrowed for the call only. MQTT 5: ST_ERR_QOS_UNSUPPORTED above the broker's Maximum QoS,
 * ST_ERR_TOO_LARGE above its Maximum Packet Size (nothing sent); the retain flag is dropped
 * when the broker has no retained messages.
 */
int client_publish(struct client *c, const char *topic, const uint8_t *payload, size_t len,
                   uint8_t qos, bool retain, uint16_t *packet_id);

/* Sends one SUBSCRIBE for `n` filters at `qos`; the SUBACK arrives as CLIENT_EV_SUBACK. */
int client_subscribe(struct client *c, const char *const *filters, size_t n, uint8_t qos,
                     uint16_t *packet_id);

/*
 * Runs the connection until something happens: reads and handles packets, sends PINGREQ
 * when the connection has been idle for the keep alive, and watches up to CLIENT_WATCH_MAX
 * extra descriptors (a negative fd is skipped). `deadline_ms` is on client_now_ms()'s clock;
 * -1 waits without a deadline. Returns ST_OK with *ev filled in, or a negative error when
 * the connection failed (closed by the broker, keep alive timeout, malformed packet).
 */
int client_wait(struct client *c, int64_t deadline_ms, const int *watch_fds, size_t nwatch,
                struct client_event *ev);

/* Outgoing QoS 1/2 messages not yet acknowledged. */
uint32_t client_inflight(const struct client *c);

/* How many may be: inflight_max, narrowed by the broker's MQTT 5 Receive Maximum. */
uint32_t client_inflight_max(const struct client *c);

/* The reason code of the DISCONNECT the broker sent (MQTT 5), or -1 if it sent none. */
int client_broker_reason(const struct client *c);

/* Incoming QoS 2 messages whose PUBREL has not arrived yet. */
uint32_t client_incoming_pending(const struct client *c);

/*
 * From now on incoming PUBLISH packets are neither acknowledged nor delivered, while the
 * flows already under way still complete. For a deliberate end (mosquitto_sub's -C): the
 * broker keeps what we did not take for a persistent session instead of it being lost here.
 */
void client_refuse_messages(struct client *c);

/*
 * Sends DISCONNECT and closes the connection after the broker has read it (waits for its end
 * of stream, at most `linger_ms`). The broker discards the will, except that MQTT 5 reason
 * 0x04 (Disconnect with Will Message) asks it to publish it; `reason` is ignored before
 * MQTT 5.
 */
int client_disconnect(struct client *c, uint8_t reason, int linger_ms);

/* A sentence describing the last error this client returned. Never NULL. */
const char *client_error(const struct client *c, int err);

/* Milliseconds on CLOCK_MONOTONIC, the clock of client_wait()'s deadline. */
int64_t client_now_ms(void);

#endif
