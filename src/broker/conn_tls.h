/*
 * A connection of a TLS listener: the glue between conn.c's receive and send path and the
 * io layer's TLS engine (src/io/tls.h).
 *
 * Receive: each ciphertext the ring's multishot receive delivers goes through tls_input(),
 * which advances the handshake and hands the plaintext, gathered in the worker's TLS buffer,
 * to conn_stream_bytes() exactly as a plaintext connection's bytes (through the WebSocket
 * layer for wss; in HANDOFF, to the bytes kept for the home worker).
 *
 * Send: handlers append plaintext packets to `out` as for any connection. At the end of the
 * loop iteration conn_flush() comes here: `out` is encrypted into `wire` (few 16 KiB records
 * for a whole batch), `wire` becomes `sending`, and one sendmsg carries it: still one send per
 * connection per iteration, and short sends resume as for plaintext. Ciphertext the engine
 * makes by itself (handshake flights, alerts, close_notify) also lands in `wire` and leaves
 * with the next send. `wire` and `sending` count in the worker's output memory.
 *
 * Connections the broker makes (bridges) are TLS clients: conn_tls_init_client starts the
 * handshake on a connected socket, the ClientHello leaving with the first flush. What the
 * bridge queues in `out` before the handshake is done (its CONNECT) waits there, unencrypted
 * and unsent, until the handshake completes, and then leaves as any output; a connection that
 * closes before that never sends it. After the handshake nothing differs from the server side.
 *
 * Hand-off to the session's home worker: the SSL moves with the socket. The accepting
 * worker decrypts everything its receive delivered (the plaintext goes with the connection,
 * as for plaintext connections), waits until nothing of its own is in flight and `wire` has
 * been sent (so no ciphertext is ever written out of order by two workers), and then passes
 * the struct conn_tls pointer through the channel; from then on only the home worker touches
 * the SSL (the channel's release/acquire ordering is the happens-before OpenSSL asks for
 * when an SSL changes threads). OpenSSL keeps any partial record it had read inside the SSL.
 */
#ifndef STARLING_CONN_TLS_H
#define STARLING_CONN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "obuf.h"
#include "io/tls.h"

#define CONN_TLS_PLAIN_BUF (4 * TLS_RECORD_MAX) /* plaintext gathered per conn_input_bytes */

struct config_bridge;

struct conn_tls {
	struct tls_conn t; /* the engine's state (its address is the BIO's: never moves) */
	struct obuf wire;  /* ciphertext made and not yet being sent */
	bool logged;       /* the handshake's outcome was logged */
	/* A graceful close: close_notify leaves after the last of `out`, which persistence or a
	 * $share SUBACK may still hold (OpenSSL writes nothing after it). */
	bool close_pending;
};

/* Makes c a TLS connection of listener srv (before its first receive). ST_OK / NOMEM. */
int conn_tls_attach(struct conn *c, struct tls_server *srv);

/*
 * Makes c, a connection the broker opened to a remote broker, a TLS client of cl for host
 * (the name or address it connected to: SNI and the name the certificate must carry; copied).
 * The ClientHello is queued and leaves at the end of the batch; arm c's receive as for any
 * connection. ST_OK; otherwise the failure is logged and counted as a failed handshake, and
 * c is closing (conn_close, reason "TLS handshake failed"), as when a handshake fails later.
 * cl is borrowed and must outlive c.
 */
int conn_tls_init_client(struct conn *c, struct tls_client *cl, const char *host);

/*
 * Builds the TLS client context of bridge b (its bridge_cafile, bridge_capath,
 * bridge_certfile, bridge_keyfile, bridge_insecure, bridge_tls_version, bridge_alpn,
 * bridge_identity and bridge_psk, the key decoded as psk_file keys are, and
 * bridge_require_ocsp). ST_OK, or ST_ERR_CONFIG with err saying why.
 */
int conn_tls_client_new(struct tls_client *cl, const struct config_bridge *b, char *err,
                        size_t errlen);

/* A connection the broker made closes: its output still waiting for the handshake goes. */
void conn_tls_drop_unsent(struct conn *c);

/* Ciphertext received (borrowed for the call). */
void conn_tls_input(struct conn *c, const uint8_t *p, size_t n);

/* Ciphertext read synchronously by conn_drain_input: decrypted with a buffer of its own. */
void conn_tls_drain(struct conn *c, const uint8_t *p, size_t n);

/* conn_flush for a TLS connection (no send in flight, not at EOF); close_notify follows the
 * records (after a WebSocket close frame; or `out` is whole and a graceful close waits). */
void conn_tls_flush(struct conn *c, bool close_notify);

/* Whether ciphertext waits in `wire` to be sent, or close_notify to be made. */
static inline bool conn_tls_pending(const struct conn *c)
{
	return c->tls && (c->tls->wire.total || c->tls->close_pending);
}

/* A connection the broker made whose handshake is under way: `out` waits for it. */
static inline bool conn_tls_holds_output(const struct conn *c)
{
	return c->tls && c->tls->t.cli && !c->tls->t.established;
}

/* The CONNECT timeout fired: a handshake still unfinished is counted and logged as failed. */
void conn_tls_timeout(struct conn *c);

/* A graceful close: close_notify follows the rest of the output (conn_tls_flush). */
void conn_tls_closing(struct conn *c);

/* Takes the TLS state off c for a hand-off (c is then a plain dead connection). */
struct conn_tls *conn_tls_detach(struct conn *c);

/* Gives a handed-over TLS state (taken over) to c, the home worker's new connection. */
void conn_tls_adopt(struct conn *c, struct conn_tls *ct);

/* Frees a TLS state (a connection's, or one whose hand-off failed). */
void conn_tls_destroy(struct conn_tls *ct);

/*
 * use_identity_as_username / use_subject_as_username. *applies: c's listener has one of them,
 * so the certificate's name replaces the CONNECT's username. Then returns the name's length,
 * written NUL-terminated into out (cap bytes), or -1 when the certificate gives none (no
 * certificate, no CN, a CN with a NUL byte, too long). Without them returns -1.
 */
int conn_tls_username(const struct conn *c, char *out, size_t cap, bool *applies);

/* The TLS-PSK key of `identity` from the psk_file in force for conn's listener (io/tls.h,
 * tls_psk_fn); 0 when unknown, which fails the handshake. */
unsigned conn_tls_psk(void *conn, const char *identity, uint8_t *key, unsigned cap);

#endif
