/*
 * A connection of a `protocol websockets` listener: the glue between conn.c's byte streams and
 * the HTTP upgrade (src/http/) and WebSocket framing (src/io/ws.h) below MQTT. It sits where
 * conn_tls.c sits, one step further up: socket -> TLS (wss) -> WebSocket -> MQTT.
 *
 * Receive: the upgrade request is parsed where the receive put it; only a request cut by a
 * receive's end is gathered in `head` (at most websockets_headers_size; the CONNECT timeout
 * bounds the time). A valid request gets 101 and
 * the subprotocol `mqtt` (or `mqttv3.1`), anything else an HTTP error and a close. From then
 * on received bytes are frames: their payloads, unmasked into the worker's buffer, go to
 * conn_input_bytes() (in HANDOFF, to the bytes kept for the home worker) exactly as a plain
 * connection's bytes, so MQTT packets split across frames, or several in one frame, parse as
 * on TCP. Pings are answered, a close frame is answered and closes the connection, a framing
 * error closes it with the close code RFC 6455 asks for.
 *
 * Send: handlers append packets to `out` as for any connection. At the end of the loop
 * iteration conn_flush() frames everything queued as one binary frame (after the WebSocket
 * layer's own bytes in `ctl`: the 101, pongs), so one send still carries everything due to
 * the client; for wss the framed bytes then go through the TLS engine. Payloads spliced by
 * reference stay spliced: a large message is not copied. A close frame, once queued, is the
 * last thing sent.
 *
 * Hand-off: the WebSocket state (a frame may be half read) moves with the connection, like the
 * TLS state; `ctl` is sent before the move (conn_check_dead waits for it).
 */
#ifndef STARLING_CONN_WS_H
#define STARLING_CONN_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "obuf.h"
#include "io/ws.h"

#define CONN_WS_BUF (64u << 10) /* unmasked payload gathered per conn_input_bytes */

struct conn_ws {
	struct ws_rx rx;     /* incoming frames */
	struct obuf ctl;     /* the WebSocket layer's own bytes, ready to send (101, pongs) */
	struct obuf spare;   /* what `out` swaps with when framed (keeps its memory) */
	uint8_t *head;       /* the start of an upgrade request cut by a receive's end, or NULL */
	uint32_t head_len;   /* bytes in head */
	uint32_t head_cap;   /* bytes allocated (grows with what arrives) */
	bool open;           /* the upgrade was answered: frames from here on */
	bool refused;        /* the upgrade was refused: its HTTP answer, then the close */
	bool close_pending;  /* a close frame leaves after the data at the next flush */
	bool close_sent;     /* the close frame is framed: nothing more goes out */
	uint16_t close_code; /* the code it carries */
};

/* Makes c a WebSocket connection (before its first receive). ST_OK / NOMEM. */
int conn_ws_attach(struct conn *c);

/* Bytes below MQTT (from the socket, or TLS plaintext): the handshake, then frames. */
void conn_ws_input(struct conn *c, const uint8_t *p, size_t n);

/*
 * Frames `out` (after `ctl`, and before a pending close frame when `whole`: no output of the
 * connection is held back for persistence) for conn_flush: `out` then holds the bytes for the
 * wire. Returns true when the close frame went in just now (a wss connection then follows it
 * with TLS close_notify).
 */
bool conn_ws_frame(struct conn *c, bool whole);

/* Whether WebSocket bytes wait to be framed or sent. */
static inline bool conn_ws_pending(const struct conn *c)
{
	return c->ws && (c->ws->ctl.total || c->ws->close_pending);
}

/* conn_close: an open WebSocket gets a close frame after the final packets. */
void conn_ws_closing(struct conn *c);

/* An idle connection's output memory goes. */
void conn_ws_release_output(struct conn *c);

/* Takes the WebSocket state off c for a hand-off; gives it to the home worker's connection. */
struct conn_ws *conn_ws_detach(struct conn *c);
void conn_ws_adopt(struct conn *c, struct conn_ws *ws);

/* Frees a WebSocket state (a connection's, or one whose hand-off failed). */
void conn_ws_destroy(struct conn_ws *ws);

#endif
