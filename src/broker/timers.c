/*
 * A worker's timers, on two timing wheels (src/base/wheel.h): one for connections (the CONNECT
 * timeout, keep alive [MQTT-3.1.2-24], a lingering close: its final packets leaving, then the
 * client's close awaited), one for offline sessions (a delayed
 * will, the session expiry). The housekeeping pass advances them, so its cost follows the
 * timers that come due, not the connections and sessions that exist.
 *
 * Connection timers are lazy: a packet received only stores last_rx_ms; the keep-alive timer,
 * when it fires, computes the real deadline from it and sets itself again if that is ahead.
 */
#include <stddef.h>

#include "cluster.h"
#include "conn.h"
#include "conn_tls.h"
#include "handlers.h"
#include "out.h"
#include "session.h"
#include "worker.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define CONNECT_TIMEOUT_MS 10000 /* a socket that sends no CONNECT is closed after this */
#define LINGER_TIMEOUT_MS  5000  /* final packets of a closing connection get this long */
#define DRAIN_TIMEOUT_MS   2000  /* then its client this long to close too (conn_maybe_finish) */

/* When c's state next needs looking at; 0: never (no keep alive, or moving elsewhere). */
static uint64_t conn_deadline(const struct conn *c)
{
	switch (c->state) {
	case CONN_NEW:
		return c->opened_ms + CONNECT_TIMEOUT_MS;
	case CONN_ACTIVE:
		/* 1.5 keep alives without a packet [MQTT-3.1.2-24]. */
		return c->keepalive_s ? c->last_rx_ms + (uint64_t)c->keepalive_s * 1500 : 0;
	case CONN_CLOSING:
		if (c->eof)
			return 0;
		return c->wr_shut ? c->wr_shut_ms + DRAIN_TIMEOUT_MS
		                  : c->closing_ms + LINGER_TIMEOUT_MS;
	default:
		return 0;
	}
}

void worker_conn_timer(struct worker *w, struct conn *c)
{
	uint64_t at = conn_deadline(c);

	wheel_del(&w->conn_timers, &c->timer);
	if (at)
		wheel_add(&w->conn_timers, &c->timer, at);
}

static void conn_timer_fire(void *ctx, struct wheel_node *n)
{
	struct worker *w = ctx;
	struct conn *c = container_of(n, struct conn, timer);
	uint64_t at = conn_deadline(c);

	if (!at)
		return;
	/* A paused publisher is not read, so its silence is ours: it counts from the resume. */
	if (at > w->now_ms || (c->paused && c->state == CONN_ACTIVE)) {
		wheel_add(&w->conn_timers, &c->timer, at > w->now_ms ? at : w->now_ms + 1000);
		return;
	}
	switch (c->state) {
	case CONN_NEW:
		/* A TLS handshake that never finished is one of these too. */
		if (c->tls)
			conn_tls_timeout(c);
		conn_close(c, false, c->bridge ? "no CONNACK from the remote" : "sent no CONNECT");
		break;
	case CONN_ACTIVE:
		out_disconnect(c, ST_RC_KEEP_ALIVE_TIMEOUT, "nothing received for 1.5 keep alives");
		conn_close(c, false, "exceeded timeout");
		break;
	default:
		conn_abort(c);
		break;
	}
}

/* When an offline session next needs looking at: its delayed will or its expiry, 0: never. */
static uint64_t session_deadline(const struct session *s)
{
	uint64_t at = s->expire_at_ms;

	if (s->conn)
		return 0;
	if (s->will && (!at || s->will_at_ms < at))
		at = s->will_at_ms;
	return at;
}

void worker_session_timer(struct worker *w, struct session *s)
{
	uint64_t at = session_deadline(s);

	wheel_del(&w->sess_timers, &s->timer);
	if (at)
		wheel_add(&w->sess_timers, &s->timer, at);
}

static void session_timer_fire(void *ctx, struct wheel_node *n)
{
	struct worker *w = ctx;
	struct session *s = container_of(n, struct session, timer);

	if (s->conn)
		return;
	if (s->will && s->will_at_ms <= w->now_ms)
		handle_session_will_due(w, s);
	/* MQTT 5 Session Expiry Interval: the session ends (its delayed will, if any, first). */
	if (s->expire_at_ms && s->expire_at_ms <= w->now_ms) {
		if (w->cl)
			cluster_session_ended(w, s);
		worker_session_destroy(w, s);
		return;
	}
	worker_session_timer(w, s);
}

void worker_timers_advance(struct worker *w)
{
	wheel_advance(&w->conn_timers, w->now_ms, conn_timer_fire, w);
	wheel_advance(&w->sess_timers, w->now_ms, session_timer_fire, w);
}
