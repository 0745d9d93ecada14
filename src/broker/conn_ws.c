/*
 * WebSocket connections: the upgrade, frames in through the decoder to the MQTT input path,
 * batched packets out as one frame per flush, pings, close frames and framing errors (see
 * conn_ws.h for the invariants).
 */
#include "conn_ws.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker.h"
#include "conn_http.h"
#include "http/upgrade.h"
#include "worker.h"

/* Pongs a client makes the broker owe while it does not read may wait up to this much. */
#define CONN_WS_CTL_MAX  (64u << 10)
#define CONN_WS_HTTP_MAX 512 /* an answer to the upgrade request */

/* The subprotocols of MQTT over WebSockets (MQTT 5.0 section 6; 3.1's older name). */
static const char *const conn_ws_protocols[] = {"mqtt", "mqttv3.1", NULL};

int conn_ws_attach(struct conn *c)
{
	struct conn_ws *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return ST_ERR_NOMEM;
	ws_rx_init(&ws->rx, true, c->w->b->max_packet);
	ws->ctl.acct = ws->spare.acct = &c->w->output_memory;
	c->ws = ws;
	return ST_OK;
}

void conn_ws_destroy(struct conn_ws *ws)
{
	if (!ws)
		return;
	obuf_release(&ws->ctl);
	obuf_release(&ws->spare);
	free(ws->head);
	free(ws);
}

struct conn_ws *conn_ws_detach(struct conn *c)
{
	struct conn_ws *ws = c->ws;

	c->ws = NULL;
	if (ws) {
		/* ctl was sent before the hand-off (conn_check_dead waits for it). */
		obuf_release(&ws->ctl);
		obuf_release(&ws->spare);
		ws->ctl.acct = ws->spare.acct = NULL;
	}
	return ws;
}

void conn_ws_adopt(struct conn *c, struct conn_ws *ws)
{
	ws->ctl.acct = ws->spare.acct = &c->w->output_memory;
	c->ws = ws;
}

void conn_ws_release_output(struct conn *c)
{
	obuf_release(&c->ws->spare);
	if (!c->ws->ctl.total)
		obuf_release(&c->ws->ctl);
}

/* Queues a control frame (pong, close) of the WebSocket layer itself. */
static void conn_ws_control_out(struct conn *c, unsigned op, const uint8_t *p, size_t n)
{
	struct conn_ws *ws = c->ws;
	uint8_t hdr[WS_HEADER_MAX];
	size_t h = ws_frame_header(hdr, op, n, NULL);

	if (obuf_append(&ws->ctl, hdr, h) != ST_OK || obuf_append(&ws->ctl, p, n) != ST_OK) {
		conn_close(c, false, "out of memory");
		return;
	}
	conn_want_flush(c);
}

/* A framing error: the connection closes with the RFC's code (after what was decoded). */
static void conn_ws_fail(struct conn *c, uint16_t code, const char *why)
{
	struct worker *w = c->w;

	if (c->state == CONN_CLOSING)
		return;
	if (log_enabled(&w->log, LOG_T_NOTICE))
		log_msg(&w->log, LOG_T_NOTICE,
		        "WebSocket error on connection %llu: %s (closing with %u).",
		        (unsigned long long)c->id, why, code);
	c->ws->close_code = code;
	conn_close(c, false, "WebSocket protocol error");
}

static void conn_ws_control(struct conn *c)
{
	struct conn_ws *ws = c->ws;
	uint16_t code;
	int bad;

	switch (ws->rx.ctl_op) {
	case WS_OP_PING:
		if (ws->close_sent || ws->close_pending)
			return;
		if (ws->ctl.total > CONN_WS_CTL_MAX && c->send_busy) {
			conn_close(c, false, "not reading its output");
			return;
		}
		conn_ws_control_out(c, WS_OP_PONG, ws->rx.ctl, ws->rx.ctl_len);
		return;
	case WS_OP_CLOSE:
		bad = ws_close_parse(ws->rx.ctl, ws->rx.ctl_len, &code);
		if (bad) {
			conn_ws_fail(c, (uint16_t)bad, "malformed close frame");
			return;
		}
		/* Answered with its own code (7.4.1: 1005 is never sent; then 1000). */
		ws->close_code = code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code;
		conn_close(c, false, "WebSocket closed by client");
		return;
	default: /* a pong: nothing to do */
		return;
	}
}

/* Gives decoded MQTT bytes to the input path, or keeps them while the connection moves. */
static void conn_ws_mqtt(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->state == CONN_HANDOFF)
		conn_keep(c, p, n);
	else
		conn_input_bytes(c, p, n);
}

/* Frames received: payloads gathered in buf (CONN_WS_BUF bytes) for the MQTT input path. */
static void conn_ws_frames(struct conn *c, const uint8_t *p, size_t n, uint8_t *buf)
{
	struct conn_ws *ws = c->ws;
	size_t got = 0;

	while (c->state != CONN_CLOSING) {
		size_t used;
		int ret = ws_rx_feed(&ws->rx, p, n, &used, buf, CONN_WS_BUF, &got);

		p += used;
		n -= used;
		if (got && (ret != WS_RX_MORE || n == 0 || got == CONN_WS_BUF)) {
			conn_ws_mqtt(c, buf, got);
			got = 0;
			if (c->state == CONN_CLOSING)
				break;
		}
		if (ret < 0) {
			conn_ws_fail(c, ws->rx.close_code, ws->rx.why);
			break;
		}
		if (ret == WS_RX_CONTROL)
			conn_ws_control(c);
		else if (n == 0)
			break;
	}
}

/* Frames with the worker's buffer, or one of their own while it is in use further up the
 * stack (a takeover drains another connection from inside a handler). */
static void conn_ws_decode(struct conn *c, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;
	uint8_t *buf;

	if (w->ws_buf_busy || (!w->ws_buf && !(w->ws_buf = malloc(CONN_WS_BUF)))) {
		if (!(buf = malloc(CONN_WS_BUF))) {
			conn_close(c, false, "out of memory");
			return;
		}
		conn_ws_frames(c, p, n, buf);
		free(buf);
		return;
	}
	w->ws_buf_busy = true;
	conn_ws_frames(c, p, n, w->ws_buf);
	w->ws_buf_busy = false;
}

/* The upgrade refused: the HTTP answer, then the close. */
static void conn_ws_refuse(struct conn *c, int status, const char *why)
{
	struct conn_ws *ws = c->ws;
	struct worker *w = c->w;
	char resp[CONN_WS_HTTP_MAX];
	size_t n = http_error_response(status, why, resp, sizeof(resp));

	ws->refused = true;
	free(ws->head);
	ws->head = NULL;
	ws->head_len = ws->head_cap = 0;
	if (log_enabled(&w->log, LOG_T_NOTICE))
		log_msg(&w->log, LOG_T_NOTICE,
		        "WebSocket upgrade refused on connection %llu: %s (HTTP %d).",
		        (unsigned long long)c->id, why, status);
	if (n && obuf_append(&ws->ctl, resp, n) == ST_OK)
		conn_want_flush(c);
	conn_close(c, false, "WebSocket upgrade refused");
}

/* A whole request head: answered (its slices are valid during the call only). */
static void conn_ws_upgrade(struct conn *c, const struct http_request *req)
{
	struct conn_ws *ws = c->ws;
	struct worker *w = c->w;
	struct http_ws_upgrade u;
	char resp[CONN_WS_HTTP_MAX];
	size_t n;
	int ret;

	/* A page's files, from http_dir, on the same listener (conn_http.h). */
	if (conn_http_wanted(c, req)) {
		conn_http_serve(c, req); /* req may point into head: freed after */
		free(ws->head);
		ws->head = NULL;
		ws->head_len = ws->head_cap = 0;
		return;
	}
	ret = http_ws_check(req, conn_ws_protocols, &u);
	if (ret < 0) {
		conn_ws_refuse(c, -ret, u.why);
		return;
	}
	n = http_ws_accept_response(&u, resp, sizeof(resp));
	if (!n || obuf_append(&ws->ctl, resp, n) != ST_OK) {
		conn_close(c, false, "out of memory");
		return;
	}
	conn_want_flush(c);
	ws->open = true;
	free(ws->head);
	ws->head = NULL;
	ws->head_len = ws->head_cap = 0;
	if (log_enabled(&w->log, LOG_T_WEBSOCKETS))
		log_msg(&w->log, LOG_T_WEBSOCKETS,
		        "WebSocket upgrade on connection %llu: subprotocol %s.",
		        (unsigned long long)c->id, u.protocol);
}

/* Keeps the start of a request head that continues in a later receive; false: no memory. */
static bool conn_ws_keep_head(struct conn_ws *ws, const uint8_t *p, size_t n, uint32_t max)
{
	if (ws->head_len + n > ws->head_cap) {
		/* Grows with what arrives, as rbuf does: a slow client holds only what it sent. */
		size_t cap = ws->head_cap ? (size_t)ws->head_cap * 2 : 512;
		uint8_t *nb;

		while (cap < ws->head_len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		nb = realloc(ws->head, cap);
		if (!nb)
			return false;
		ws->head = nb;
		ws->head_cap = (uint32_t)cap;
	}
	memcpy(ws->head + ws->head_len, p, n);
	ws->head_len += (uint32_t)n;
	return true;
}

/*
 * Bytes of the upgrade request. Returns how many of p[0..n) belong to it: once it is answered,
 * what follows is frames. The usual request arrives in one receive and is parsed where it
 * lies; only one cut by a receive's end is gathered in `head` (websockets_headers_size at
 * most).
 */
static size_t conn_ws_handshake(struct conn *c, const uint8_t *p, size_t n)
{
	struct conn_ws *ws = c->ws;
	uint32_t max = c->w->b->cfg.websockets_headers_size, had = ws->head_len;
	size_t take = n < max - had ? n : max - had;
	struct http_request req;
	long ret;

	if (had == 0) {
		ret = http_request_parse(p, take, max, &req);
		if (ret > 0) {
			conn_ws_upgrade(c, &req);
			return (size_t)ret;
		}
	} else {
		if (!conn_ws_keep_head(ws, p, take, max)) {
			conn_close(c, false, "out of memory");
			return n;
		}
		ret = http_request_parse(ws->head, ws->head_len, max, &req);
		if (ret > 0) {
			conn_ws_upgrade(c, &req);
			return (size_t)ret - had; /* the head ended inside p */
		}
	}
	if (ret < 0)
		conn_ws_refuse(c, (int)-ret, "malformed HTTP request");
	else if (had + take == max)
		conn_ws_refuse(c, 431, "request head over websockets_headers_size");
	else if (had == 0 && !conn_ws_keep_head(ws, p, take, max))
		conn_close(c, false, "out of memory");
	return n;
}

void conn_ws_input(struct conn *c, const uint8_t *p, size_t n)
{
	struct conn_ws *ws = c->ws;

	if (ws->refused)
		return;
	if (!ws->open) {
		size_t took = conn_ws_handshake(c, p, n);

		if (!ws->open || c->state == CONN_CLOSING)
			return;
		p += took;
		n -= took;
	}
	if (n)
		conn_ws_decode(c, p, n);
}

void conn_ws_closing(struct conn *c)
{
	struct conn_ws *ws = c->ws;

	if (!ws->open || ws->close_sent || ws->close_pending)
		return;
	ws->close_pending = true;
	if (!ws->close_code)
		ws->close_code = WS_CLOSE_NORMAL;
	conn_want_flush(c);
}

/* Failure to frame (out of memory): nothing more leaves, the connection closes. */
static bool conn_ws_frame_failed(struct conn *c)
{
	obuf_reset(&c->ws->spare);
	obuf_reset(&c->out);
	c->ws->close_sent = true;
	c->ws->close_pending = false;
	conn_close(c, false, "out of memory");
	return false;
}

bool conn_ws_frame(struct conn *c, bool whole)
{
	struct conn_ws *ws = c->ws;
	struct obuf *f = &ws->spare;
	uint8_t hdr[WS_HEADER_MAX + 2];
	bool closed = false;
	struct obuf tmp;

	if (ws->close_sent) {
		obuf_reset(&c->out); /* nothing follows a close frame (RFC 6455 5.5.1) */
		return false;
	}
	if (!ws->ctl.total && !(ws->close_pending && whole) && (!c->out.total || !ws->open))
		return false;
	if (ws->ctl.total) {
		if (obuf_append_obuf(f, &ws->ctl) != ST_OK)
			return conn_ws_frame_failed(c);
		obuf_reset(&ws->ctl);
	}
	if (c->out.total && ws->open) {
		size_t h = ws_frame_header(hdr, WS_OP_BINARY, c->out.total, NULL);

		if (obuf_append(f, hdr, h) != ST_OK || obuf_append_obuf(f, &c->out) != ST_OK)
			return conn_ws_frame_failed(c);
	}
	if (ws->close_pending && whole) {
		size_t h = ws_frame_header(hdr, WS_OP_CLOSE, 2, NULL);

		hdr[h] = (uint8_t)(ws->close_code >> 8);
		hdr[h + 1] = (uint8_t)ws->close_code;
		if (obuf_append(f, hdr, h + 2) != ST_OK)
			return conn_ws_frame_failed(c);
		ws->close_pending = false;
		ws->close_sent = true;
		closed = true;
	}
	obuf_reset(&c->out);
	tmp = c->out;
	c->out = *f;
	*f = tmp;
	return closed;
}
