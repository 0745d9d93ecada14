/*
 * starling-bench over WebSockets (--ws): after the TCP connection (or the TLS handshake, for
 * wss) each connection sends the HTTP upgrade request, waits for 101, and from then on its
 * MQTT bytes travel in binary frames. Framing uses the broker's own src/io/ws.h, the layer a
 * client of the broker would also need: the frames it receives are decoded into the thread's
 * buffer and handed to mqtt.c as if received plain; at each flush the bytes queued for a
 * connection become one masked frame (one send per connection per iteration, as without
 * WebSockets), its header written in front of them. Masking costs one pass over the bytes, as
 * it does for every WebSocket client.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ws.h"

#define BENCH_WS_PLAIN    (64u << 10) /* payload gathered per bench_mqtt_input call */
#define BENCH_WS_HEAD_MAX 1024u       /* the broker's 101 answer */

struct bench_ws {
	struct ws_rx rx;                  /* frames from the broker */
	bool open;                        /* 101 received */
	uint32_t head_len;                /* bytes of the answer gathered */
	char head[BENCH_WS_HEAD_MAX + 1]; /* the answer, until its blank line */
};

void bench_stream_connected(struct bench *b, struct bench_conn *c)
{
	if (b->o->ws)
		bench_ws_start(b, c);
	else
		bench_mqtt_connected(b, c);
}

void bench_stream_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                        uint64_t now_ns)
{
	if (c->ws)
		bench_ws_input(b, c, data, len, now_ns);
	else
		bench_mqtt_input(b, c, data, len, now_ns);
}

void bench_ws_free(struct bench_conn *c)
{
	free(c->ws);
	c->ws = NULL;
}

/* The TCP (or TLS) connection is up: the upgrade request goes first, unframed. */
void bench_ws_start(struct bench *b, struct bench_conn *c)
{
	char req[512];
	int n;

	c->ws = calloc(1, sizeof(*c->ws));
	if (!c->ws)
		bench_fail(b, "client %u: out of memory for WebSocket", c->index);
	/* Server frames are never masked; nothing bounds their size but the MQTT packets. */
	ws_rx_init(&c->ws->rx, false, UINT64_MAX >> 1);
	/* A fixed key: the bench does not check the accept value's freshness, only the status. */
	n = snprintf(req, sizeof(req),
	             "GET /mqtt HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Key: c3RhcmxpbmctYmVuY2gtaw==\r\n"
	             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
	             b->o->host, b->o->port);
	memcpy(bench_out_reserve(b, c, (uint32_t)n), req, (size_t)n);
	bench_out_commit(c, (uint32_t)n);
	bench_mark_dirty(b, c);
}

/* Frames from the broker: payloads to mqtt.c, pings answered. */
static void ws_frames(struct bench *b, struct bench_conn *c, const uint8_t *p, size_t n,
                      uint64_t now_ns)
{
	size_t got = 0;

	if (!b->ws_buf && !(b->ws_buf = malloc(BENCH_WS_PLAIN)))
		bench_fail(b, "out of memory for WebSocket");
	for (;;) {
		size_t used;
		int r = ws_rx_feed(&c->ws->rx, p, n, &used, b->ws_buf, BENCH_WS_PLAIN, &got);

		p += used;
		n -= used;
		if (r < 0)
			bench_fail(b, "client %u: WebSocket: %s", c->index, c->ws->rx.why);
		if (got && (r != WS_RX_MORE || n == 0 || got == BENCH_WS_PLAIN)) {
			bench_mqtt_input(b, c, b->ws_buf, (uint32_t)got, now_ns);
			got = 0;
		}
		/* The broker never pings (MQTT has its own keep alive); its close frame
		 * during teardown needs no answer: the broker closes the socket after it. */
		if (r == WS_RX_CONTROL && c->ws->rx.ctl_op == WS_OP_PING)
			bench_fail(b, "client %u: WebSocket ping from the broker", c->index);
		if (r == WS_RX_MORE && n == 0)
			return;
	}
}

void bench_ws_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                    uint64_t now_ns)
{
	struct bench_ws *ws = c->ws;

	if (!ws->open) {
		uint32_t take = len < BENCH_WS_HEAD_MAX - ws->head_len
		                        ? len
		                        : BENCH_WS_HEAD_MAX - ws->head_len;
		char *end;

		memcpy(ws->head + ws->head_len, data, take);
		ws->head_len += take;
		ws->head[ws->head_len] = '\0';
		end = strstr(ws->head, "\r\n\r\n");
		if (!end) {
			if (ws->head_len == BENCH_WS_HEAD_MAX)
				bench_fail(b, "client %u: WebSocket upgrade answer too long",
				           c->index);
			return;
		}
		if (strncmp(ws->head, "HTTP/1.1 101 ", 13) != 0)
			bench_fail(b, "client %u: WebSocket upgrade refused: %.40s", c->index,
			           ws->head);
		ws->open = true;
		take -= (uint32_t)(ws->head_len - (uint32_t)(end + 4 - ws->head));
		data += take;
		len -= take;
		bench_mqtt_connected(b, c);
	}
	if (len)
		ws_frames(b, c, data, len, now_ns);
}

/* Cheap per-thread randomness for masking keys (RFC 6455 wants them unpredictable to
 * intermediaries; a load generator on loopback has none). */
static uint32_t ws_key(struct bench *b)
{
	uint64_t x = b->ws_rng ? b->ws_rng : 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)b;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->ws_rng = x;
	return (uint32_t)x;
}

void bench_ws_seal(struct bench *b, struct bench_conn *c)
{
	struct bench_outbuf *ob = &c->out[c->send_idx ^ 1u];
	uint8_t hdr[WS_HEADER_MAX], key[4];
	uint32_t k = ws_key(b), len = ob->len;
	size_t h;

	if (!c->ws->open || len == 0)
		return; /* the upgrade request leaves as it is */
	memcpy(key, &k, 4);
	h = ws_frame_header(hdr, WS_OP_BINARY, len, key);
	bench_out_reserve(b, c, (uint32_t)h);
	memmove(ob->data + h, ob->data, len);
	memcpy(ob->data, hdr, h);
	ws_mask(ob->data + h, len, key, 0);
	ob->len = len + (uint32_t)h;
}
