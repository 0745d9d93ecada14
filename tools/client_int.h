/*
 * The inside of the tools' MQTT client, shared by its two halves: client_io.c (the socket, the
 * read buffer, framing, sending, keep alive timing, debug lines) and client.c (the protocol:
 * CONNECT/CONNACK, the QoS flows, MQTT 5 properties and limits, topic aliases). Nothing here is
 * for the tools themselves; they use client.h.
 */
#ifndef STARLING_TOOLS_CLIENT_INT_H
#define STARLING_TOOLS_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"
#include "client.h"

#define CLIENT_IDS      65536u
#define PING_FAIL_MS(c) ((int64_t)(c)->keepalive_s * 1000)

/* What an outgoing packet identifier is waiting for. */
enum out_state {
	OUT_FREE = 0,
	OUT_WAIT_PUBACK,
	OUT_WAIT_PUBREC,
	OUT_WAIT_PUBCOMP,
	OUT_WAIT_SUBACK,
};

/* A topic the broker bound to an alias [MQTT-3.3.2-10]; owned copy. */
struct client_alias {
	uint8_t *topic; /* the topic name, NULL while unbound */
	uint16_t len;   /* bytes of topic */
};

struct ssl_st;

struct client {
	struct client_config cfg; /* copy of the caller's config; strings borrowed */
	int fd;                   /* the socket, -1 when closed */
	struct ssl_st *ssl;       /* TLS over fd (client_tls.c), NULL for plain MQTT */
	char tls_why[256];        /* why TLS failed, for client_error() */
	uint8_t *rbuf;            /* received bytes */
	size_t rcap;              /* allocated bytes of rbuf */
	size_t rstart;            /* first byte not yet consumed */
	size_t rend;              /* end of received bytes */
	size_t consumed;          /* bytes of the packet last handed out, dropped next call */
	uint8_t *wbuf;            /* scratch buffer for encoding one packet */
	size_t wcap;              /* allocated bytes of wbuf */
	int64_t last_send_ms;     /* when the last packet went out, for keep alive */
	int64_t ping_sent_ms;     /* when the outstanding PINGREQ went out, 0 if none */
	uint16_t keepalive_s;     /* keep alive in force: ours, or the broker's [MQTT-3.2.2-21] */
	uint16_t last_id;         /* last packet identifier handed out */
	uint32_t inflight;        /* identifiers in a QoS 1/2 publish state */
	uint32_t inflight_max;    /* cfg.inflight_max, narrowed by the broker's Receive Maximum */
	uint32_t in_pending;      /* bits set in in_qos2 */
	bool eof;                 /* the broker closed its end */
	bool refusing;            /* incoming PUBLISH packets are ignored */
	bool connected;           /* CONNACK 0 arrived and the socket is open (MQTT 5 errors
	                           * are then answered with DISCONNECT) */
	int broker_reason;        /* reason code of the broker's DISCONNECT, -1 before one */
	const char *fail_text;    /* why the last call failed, when errno does not say */
	int sys_errno;            /* errno of the last failed system call */
	const char *id_shown;     /* the client id debug lines print */
	char *assigned_id;        /* MQTT 5 Assigned Client Identifier (owned), or NULL */
	/* MQTT 5 limits: the broker's from CONNACK, ours from our CONNECT properties. */
	uint8_t max_qos;               /* the broker's Maximum QoS (2 when absent) */
	bool retain_ok;                /* the broker's Retain Available (true when absent) */
	uint32_t packet_max_out;       /* the broker's Maximum Packet Size, 0 for none */
	uint16_t alias_max_out;        /* the broker's Topic Alias Maximum (0: no aliases to it) */
	uint32_t packet_max_in;        /* Maximum Packet Size we announced, 0 for none */
	uint16_t alias_max_in;         /* Topic Alias Maximum we announced */
	struct client_alias *aliases;  /* alias_max_in + 1 entries, index = alias */
	struct st_bytes publish_props; /* cfg.publish_props, less a Topic Alias the broker
	                                * does not take [MQTT-3.2.2-17] (may view props_buf) */
	uint16_t publish_alias;        /* Topic Alias in publish_props, 0 for none */
	bool alias_bound;              /* the broker has seen publish_alias with its topic */
	uint8_t *props_buf;            /* CONNECT or PUBLISH properties rewritten (owned) */
	size_t props_cap;              /* allocated bytes of props_buf */
	uint8_t out[CLIENT_IDS];       /* enum out_state per packet identifier */
	uint8_t in_qos2[CLIENT_IDS / 8]; /* incoming QoS 2 identifiers awaiting PUBREL */
};

/* --- client_io.c ------------------------------------------------------------------------ */

/* Records why a call failed (a static sentence, or NULL for st_strerror(err)); returns err. */
int client_fail(struct client *c, int err, const char *text);
int client_fail_sys(struct client *c, int err_no);

/* A debug line "Client <id> <text>" when -d is on, as libmosquitto's log prints it. */
void client_debug(const struct client *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void client_debug_publish(const struct client *c, const char *dir, const struct st_publish *p);

int client_open_socket(struct client *c);
void client_close_socket(struct client *c);

/* Encodes *pkt at the session's level and sends it whole. MQTT 5: ST_ERR_TOO_LARGE, sending
 * nothing, when it exceeds the broker's Maximum Packet Size [MQTT-3.2.2-15]. */
int client_send_packet(struct client *c, const struct st_packet *pkt);

/* PUBACK, PUBREC, PUBREL, PUBCOMP with a reason code (MQTT 5; 0 is left out). */
int client_send_ack(struct client *c, uint8_t type, uint16_t packet_id, uint8_t reason);
int client_send_simple(struct client *c, uint8_t type);

/*
 * Waits for the next packet until deadline_ms (-1: none), keeping the connection alive.
 * Returns 1 with *pkt, 0 at the deadline, a negative error if the connection failed. With
 * watch descriptors, returns 2 when one of them is readable (index in *watch_hit).
 */
int client_next_packet(struct client *c, int64_t deadline_ms, const int *watch_fds, size_t nwatch,
                       struct st_packet *pkt, unsigned *watch_hit);

/* TLS (client_tls.c): the handshake over the connected socket, made non-blocking. */
int client_tls_start(struct client *c);
/* recv/send over TLS: bytes, 0 at EOF, or -1 with errno (EAGAIN: retry when poll says). */
ssize_t client_tls_recv(struct client *c, uint8_t *buf, size_t len);
ssize_t client_tls_send(struct client *c, const uint8_t *buf, size_t len);
/* Decrypted bytes wait inside OpenSSL (poll cannot see them). */
bool client_tls_pending(const struct client *c);
/* Frees the SSL, after a close_notify when `notify`. */
void client_tls_close(struct client *c, bool notify);

#endif
