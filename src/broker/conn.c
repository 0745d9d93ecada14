/*
 * Connection I/O: receive framing with the bounded reassembly buffer, the single send in
 * flight with short-send resumption, and the close sequence (see conn.h for the invariants).
 */
#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "cluster.h"
#include "conn_tls.h"
#include "conn_ws.h"
#include "handlers.h"
#include "persist.h"
#include "base/log.h"
#include "route.h"
#include "session.h"
#include "starling/codec.h"
#include "worker.h"

#define CONN_IOV_MAX      1024       /* IOV_MAX on Linux */
#define CONN_HANDOFF_MAX  (1u << 20) /* bytes kept past the CONNECT while a hand-off waits */
#define CONN_STALL_MS     20         /* a send waiting this long: the reader is not keeping up */
#define CONN_OUTPUT_SLACK (1u << 20) /* control packets allowed past max_output_bytes */
#define CONN_DRAIN_CHUNK  16384      /* bytes per read when draining before a takeover */
#define CONN_DRAIN_MAX    (1u << 20) /* at most this much is drained: a flood is not awaited */
#define CONN_DISCARD_MAX  (4u << 20) /* bytes read and dropped while closing, at most */

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static void conn_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe);

struct conn *conn_new(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->io.fn = conn_on_cqe;
	c->w = w;
	c->out.acct = c->sending.acct = &w->output_memory;
	c->fd = fd;
	c->state = CONN_NEW;
	c->level = ST_MQTT_311;
	/* Numbered across workers, so that log lines name one connection each. */
	c->id = w->nworkers > 1 ? atomic_fetch_add_explicit(&w->b->shared.next_conn_id, 1,
	                                                    memory_order_relaxed) +
	                                  1
	                        : ++w->next_conn_id;
	c->opened_ms = w->now_ms;
	c->last_rx_ms = worker_now_up_ms(w);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	ring_recv(&w->ring, &c->io, fd);
	c->recv_armed = true;
	worker_conn_timer(w, c);
	return c;
}

bool conn_output_full(const struct conn *c, uint64_t n)
{
	const struct worker *w = c->w;
	uint64_t before = obuf_memory(&c->out), after = obuf_memory_after(&c->out, n);

	if (conn_output_bytes(c) + n > w->b->cfg.max_output_bytes)
		return true;
	/* What this delivery adds: its bytes, or the buffer's doubling, which may be far more
	 * (counting only the bytes let every connection double past the bound at once). */
	if (w->output_memory + (after - before > n ? after - before : n) <= w->output_max)
		return false;
	/* Over the worker's share of max_output_memory, no connection's buffers grow past an
	 * even share of the bound (a burst would otherwise let every one double at once, each
	 * keeping up at that moment), and the connections that do not keep up lose QoS 0 past
	 * it, not those that do: a socket found full (a short send), or a send waiting for room
	 * for a while. */
	if (after + obuf_memory(&c->sending) <= w->output_max / (w->nconns ? w->nconns : 1))
		return false;
	return after > before || c->behind ||
	       (c->send_busy && w->now_ms - c->send_since_ms >= CONN_STALL_MS);
}

bool conn_qos_room(const struct conn *c)
{
	return conn_output_bytes(c) < c->w->b->cfg.max_output_bytes / 2;
}

void conn_want_flush(struct conn *c)
{
	if (c->on_flush_list)
		return;
	c->on_flush_list = true;
	c->flush_next = c->w->flush_list;
	c->w->flush_list = c;
}

uint8_t *conn_reserve(struct conn *c, size_t n)
{
	uint8_t *p;

	if (c->eof)
		return NULL;
	/*
	 * Acknowledgements cannot be dropped like QoS 0 messages: a client that keeps sending
	 * but never reads would grow its output without limit, so past the bound (with room for
	 * the window's own traffic) it is disconnected.
	 */
	if (conn_output_bytes(c) > (uint64_t)c->w->b->cfg.max_output_bytes + CONN_OUTPUT_SLACK) {
		conn_close(c, false, "not reading its output");
		return NULL;
	}
	p = obuf_reserve(&c->out, n);
	if (!p)
		conn_close(c, false, "out of memory");
	return p;
}

void conn_commit(struct conn *c, size_t n)
{
	c->w->batch_bytes += n;
	obuf_commit(&c->out, n);
	c->w->stats.packets_sent++;
	conn_want_flush(c);
}

void conn_queue_bytes(struct conn *c, const void *p, size_t n)
{
	uint8_t *dst = conn_reserve(c, n);

	if (!dst)
		return;
	memcpy(dst, p, n);
	conn_commit(c, n);
}

void conn_submit_send(struct conn *c)
{
	unsigned need = obuf_iov_count(&c->sending), n;

	if (need > CONN_IOV_MAX)
		need = CONN_IOV_MAX;
	if (need > c->iov_cap) {
		struct iovec *iov = realloc(c->iov, need * sizeof(*iov));

		if (!iov) {
			conn_close(c, false, "out of memory");
			return;
		}
		c->iov = iov;
		c->iov_cap = need;
	}
	n = obuf_iov(&c->sending, c->sent, c->iov, need);
	c->mh = (struct msghdr){.msg_iov = c->iov, .msg_iovlen = n};
	ring_sendmsg(&c->w->ring, &c->io, c->fd, &c->mh);
	c->send_busy = true;
	c->w->sends_inflight++;
}

static void conn_flush_now(struct conn *c, bool whole);

/*
 * Sends what persistence lets leave (persist_sendable): the rest of the output is set aside
 * while the allowed prefix goes the usual way, then put back.
 */
static void conn_flush_held(struct conn *c, uint64_t limit)
{
	struct obuf rest = {.acct = c->out.acct};

	if (limit && obuf_split(&c->out, limit, &rest) != ST_OK) {
		obuf_release(&rest);
		return; /* out of memory: it leaves once its commit is released */
	}
	if (!limit) {
		rest = c->out;
		c->out = (struct obuf){.acct = rest.acct};
	}
	conn_flush_now(c, false);
	obuf_release(&c->out);
	c->out = rest;
	persist_sent(c, limit);
	if (c->share_wait)
		c->share_hold -= limit;
}

void conn_flush(struct conn *c)
{
	uint64_t limit;

	if (c->send_busy || c->eof)
		return;
	/* A bridge's handshake under way: only its records leave, `out` waits (conn_tls.h). */
	if (conn_tls_holds_output(c)) {
		conn_tls_flush(c, false);
		return;
	}
	limit = c->w->ps ? persist_sendable(c->w, c) : UINT64_MAX;
	if (c->share_wait && c->share_hold < limit)
		limit = c->share_hold;
	if (limit < c->out.total) {
		conn_flush_held(c, limit);
		return;
	}
	if (c->mark)
		persist_sent(c, UINT64_MAX);
	if (c->share_wait)
		c->share_hold = c->share_hold > c->out.total ? c->share_hold - c->out.total : 0;
	conn_flush_now(c, true);
}

/* Sends `out`; whole: nothing of it stays held for persistence (a WebSocket close frame may
 * then follow it). */
static void conn_flush_now(struct conn *c, bool whole)
{
	bool ws_closed = c->ws && conn_ws_frame(c, whole);
	struct obuf tmp;

	if (c->tls) {
		conn_tls_flush(c, c->ws ? ws_closed : whole && c->tls->close_pending);
		return;
	}
	if (c->out.total == 0)
		return;
	tmp = c->sending;
	c->sending = c->out;
	c->out = tmp;
	c->sent = 0;
	/* A short send's remainder is resent without moving this: it dates the whole send. */
	c->send_since_ms = c->w->now_ms;
	conn_submit_send(c);
}

/*
 * Hands a CLOSING connection whose operations have all completed to the worker to free, and
 * a HANDOFF one whose receive has ended to its home worker.
 */
static void conn_check_dead(struct conn *c)
{
	if (c->io.pending || c->dead)
		return;
	if (c->state == CONN_CLOSING && c->eof) {
		c->dead = true;
		worker_conn_dead(c->w, c);
	} else if (c->state == CONN_HANDOFF && c->cl_parked) {
		if (!c->cl_rx_ended && !conn_tls_pending(c) && !conn_ws_pending(c) && !c->send_busy)
			cluster_session_rx_ended(c);
	} else if (c->state == CONN_HANDOFF && !conn_tls_pending(c) && !conn_ws_pending(c) &&
	           !c->send_busy) {
		/* A TLS connection's own ciphertext leaves from here first (conn_tls.h), and a
		 * WebSocket connection's own frames (conn_ws.h). */
		c->dead = true;
		worker_conn_handoff(c->w, c);
	}
}

/* Shuts the socket and cancels what is pending; completions then drain to io.pending == 0. */
static void conn_shutdown(struct conn *c)
{
	if (c->eof)
		return;
	c->eof = true;
	shutdown(c->fd, SHUT_RDWR);
	if (c->io.pending)
		ring_cancel_fd(&c->w->ring, c->fd);
	conn_check_dead(c);
}

/* Output memory of a connection that will send nothing more. */
static void conn_release_output(struct conn *c)
{
	obuf_release(&c->sending);
	obuf_release(&c->out);
	if (c->tls)
		obuf_release(&c->tls->wire);
	if (c->ws)
		conn_ws_release_output(c);
	free(c->iov);
	c->iov = NULL;
	c->iov_cap = 0;
}

/*
 * A closing connection's final packets (CONNACK, DISCONNECT) leave first; then its sending
 * side shuts (a FIN after them) and it is read, and what arrives dropped, until the client
 * closes too (or the bounds of conn_on_recv_closing and the linger timer). Closing a socket
 * whose receive queue holds bytes makes the kernel answer with a reset, and a reset may
 * destroy the DISCONNECT before the client reads it: in the broker's send queue, not yet
 * sent, or in the client's receive queue on some stacks. A client still sending when the
 * broker gives up on it is the usual case (it exceeded a limit by sending too much).
 */
static void conn_maybe_finish(struct conn *c)
{
	if (c->state != CONN_CLOSING || c->send_busy || c->eof)
		return;
	if (c->out.total || conn_tls_pending(c) || conn_ws_pending(c)) {
		conn_want_flush(c);
		return;
	}
	if (!c->wr_shut) {
		conn_release_output(c);
		c->wr_shut = true;
		c->wr_shut_ms = c->w->now_ms;
		if (!c->rx_done && shutdown(c->fd, SHUT_WR) == 0) {
			worker_conn_timer(c->w, c);
			return;
		}
		conn_shutdown(c); /* the client has closed too, or the socket is gone */
		return;
	}
	if (c->rx_done)
		conn_shutdown(c);
}

static void conn_on_send(struct conn *c, const struct ring_cqe *cqe)
{
	c->send_busy = false;
	c->w->sends_inflight--;
	/* A stream send that moved nothing would be resubmitted for ever: the peer is gone. */
	if (cqe->res < 0 || (cqe->res == 0 && c->sending.total > c->sent)) {
		obuf_reset(&c->sending);
		c->sent = 0;
		if (c->state != CONN_CLOSING)
			conn_close(c, false,
			           cqe->res == -EPIPE ? "connection lost" : "send failed");
		conn_shutdown(c);
		return;
	}
	c->sent += (uint64_t)cqe->res;
	c->w->stats.bytes_sent += (uint64_t)cqe->res;
	c->w->stats.sends++;
	if (c->sent < c->sending.total && !c->eof) {
		/* Short: the socket's buffer is full, the reader is behind. */
		c->behind = true;
		conn_submit_send(c);
		return;
	}
	c->behind = false;
	obuf_reset(&c->sending);
	c->sent = 0;
	if (c->state == CONN_CLOSING) {
		/* A lingering close: the final packets (CONNACK, DISCONNECT) are out. */
		conn_maybe_finish(c);
		return;
	}
	/* QoS 1/2 deliveries that waited for the output to drain (conn_qos_room) go now. */
	if (c->session && c->session->q_len && c->state == CONN_ACTIVE)
		route_pump(c->session);
	if (c->out.total || conn_tls_pending(c) || conn_ws_pending(c)) {
		conn_want_flush(c);
		return;
	}
	/* Nothing more to send: an idle connection keeps no output memory. */
	conn_release_output(c);
}

/* HANDOFF: keeps bytes for the home worker (bounded: a client may keep sending). */
void conn_keep(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->rlen + n > c->rcap) {
		size_t cap = (size_t)c->rcap * 2 > c->rlen + n ? (size_t)c->rcap * 2 : c->rlen + n;
		uint8_t *nb;

		if (c->rlen + n > (size_t)c->w->b->max_packet + CONN_HANDOFF_MAX) {
			conn_close(c, false, "sent too much before its CONNACK");
			return;
		}
		nb = realloc(c->rbuf, cap);
		if (!nb) {
			conn_close(c, false, "out of memory");
			return;
		}
		c->rbuf = nb;
		c->rcap = (uint32_t)cap;
	}
	memcpy(c->rbuf + c->rlen, p, n);
	c->rlen += (uint32_t)n;
}

void conn_handoff(struct conn *c, unsigned to)
{
	c->state = CONN_HANDOFF;
	c->handoff_to = (uint16_t)to;
	worker_conn_timer(c->w, c);
	if (c->recv_armed)
		ring_cancel_recv(&c->w->ring, &c->io);
}

/* Handles one whole packet at p (fixed header decoded into fh). */
static void conn_packet(struct conn *c, const struct st_fixed_header *fh, const uint8_t *p)
{
	struct persist *ps = c->w->ps;
	struct st_packet pkt;
	uint64_t recs = 0;
	int ret;

	if (c->state == CONN_NEW && fh->type != (c->bridge ? ST_CONNACK : ST_CONNECT)) {
		conn_close(c, false,
		           c->bridge ? "first packet is not CONNACK"
		                     : "first packet is not CONNECT");
		return;
	}
	c->w->stats.packets_received++;
	ret = st_decode_body(fh, p + fh->header_len, c->level, &pkt);
	if (ret < 0) {
		handle_decode_error(c, fh, ret);
		return;
	}
	if (ps) {
		recs = ps->stats.records;
		ps->pub_remote = false;
	}
	ret = handle_packet(c, &pkt);
	/* What this packet changed must be on disk before what it answered leaves. */
	if (ps && (ps->stats.records != recs || ps->pub_remote) && c->state != CONN_HANDOFF)
		persist_hold(c->w, c, ps->pub_remote);
	if (c->state == CONN_HANDOFF)
		conn_keep(c, p, (size_t)fh->header_len + fh->remaining_len);
	else if (ret < 0 && c->state != CONN_CLOSING)
		handle_protocol_error(c, ret);
}

/*
 * Copies the start of a packet that continues in the next receive into rbuf. The buffer grows
 * with the bytes that arrive (conn_reassemble), not with the length the header announces: a
 * client announcing a huge packet and sending it slowly holds only what it sent.
 */
static void conn_stash(struct conn *c, const uint8_t *p, size_t n)
{
	size_t cap = n < ST_FIXED_HEADER_MAX ? ST_FIXED_HEADER_MAX : n;
	c->rbuf = malloc(cap);
	if (!c->rbuf) {
		conn_close(c, false, "out of memory");
		return;
	}
	memcpy(c->rbuf, p, n);
	c->rlen = (uint32_t)n;
	c->rcap = (uint32_t)cap;
}

static void conn_drop_rbuf(struct conn *c)
{
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
}

/*
 * Feeds bytes to a packet pending in rbuf. Returns how many bytes of p it took; the packet is
 * handled (and rbuf freed) once complete.
 */
static size_t conn_reassemble(struct conn *c, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;
	struct st_fixed_header fh;
	size_t took = 0, total, want;
	int ret;

	for (;;) {
		ret = st_decode_fixed_header(c->rbuf, c->rlen, w->b->max_packet, &fh);
		if (ret == ST_OK)
			break;
		if (ret != ST_ERR_NEED_MORE) {
			handle_framing_error(c, ret);
			return n;
		}
		if (took == n)
			return took;
		/* Header still incomplete: rbuf holds at least ST_FIXED_HEADER_MAX bytes. */
		c->rbuf[c->rlen++] = p[took++];
	}
	total = (size_t)fh.header_len + fh.remaining_len;
	want = total - c->rlen;
	if (want > n - took)
		want = n - took;
	if (c->rlen + want > c->rcap) {
		/* Doubling, capped at the packet's size: a few copies for a large packet. */
		size_t cap = (size_t)c->rcap * 2;
		uint8_t *nb;

		if (cap < c->rlen + want)
			cap = c->rlen + want;
		if (cap > total)
			cap = total;
		nb = realloc(c->rbuf, cap);
		if (!nb) {
			conn_close(c, false, "out of memory");
			return n;
		}
		c->rbuf = nb;
		c->rcap = (uint32_t)cap;
	}
	memcpy(c->rbuf + c->rlen, p + took, want);
	c->rlen += (uint32_t)want;
	took += want;
	if (c->rlen == total) {
		uint8_t *pkt = c->rbuf;

		/* Detach first: the handler may close the connection, which frees rbuf. */
		c->rbuf = NULL;
		c->rlen = c->rcap = 0;
		conn_packet(c, &fh, pkt);
		free(pkt);
	}
	return took;
}

/* Parses everything in p[0..n): whole packets in place, a trailing partial one stashed. */
void conn_input_bytes(struct conn *c, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;

	if (c->rbuf) {
		size_t took = conn_reassemble(c, p, n);

		p += took;
		n -= took;
	}
	while (n > 0 && c->state < CONN_CLOSING && !c->rbuf) {
		struct st_fixed_header fh;
		size_t total;
		int ret = st_decode_fixed_header(p, n, w->b->max_packet, &fh);

		if (ret == ST_ERR_NEED_MORE) {
			conn_stash(c, p, n);
			return;
		}
		if (ret < 0) {
			handle_framing_error(c, ret);
			return;
		}
		total = (size_t)fh.header_len + fh.remaining_len;
		if (total > n) {
			conn_stash(c, p, n);
			return;
		}
		conn_packet(c, &fh, p);
		p += total;
		n -= total;
	}
	/* What followed a CONNECT that moves elsewhere goes with it, unparsed. */
	if (c->state == CONN_HANDOFF && n > 0)
		conn_keep(c, p, n);
}

void conn_stream_bytes(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->ws)
		conn_ws_input(c, p, n);
	else if (c->state == CONN_HANDOFF)
		conn_keep(c, p, n);
	else
		conn_input_bytes(c, p, n);
}

/* HANDOFF: bytes that arrived before the cancelled receive ended go with the connection. */
static void conn_on_recv_handoff(struct conn *c, const struct ring_cqe *cqe)
{
	if (cqe->res > 0) {
		c->w->stats.bytes_received += (uint64_t)cqe->res;
		if (c->tls)
			conn_tls_input(c, cqe->buf, (size_t)cqe->res);
		else
			conn_stream_bytes(c, cqe->buf, (size_t)cqe->res);
	} else if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -ENOBUFS) {
		/* A reset: nobody left to hand over. An EOF, though, is the home's to see. */
		conn_close(c, false, "connection reset");
		c->rx_done = true;
		conn_maybe_finish(c);
	}
}

/*
 * CLOSING: what arrives is dropped unread, and counted: a client that keeps sending is cut
 * (with a reset: it was told) once it has sent CONN_DISCARD_MAX bytes after the close.
 */
static void conn_on_recv_closing(struct conn *c, const struct ring_cqe *cqe)
{
	if (cqe->res > 0) {
		c->w->stats.bytes_received += (uint64_t)cqe->res;
		c->discarded += (uint64_t)cqe->res;
		if (c->discarded > CONN_DISCARD_MAX)
			conn_abort(c);
		return;
	}
	if (cqe->res == -ENOBUFS) {
		c->recv_starved = true;
		conn_want_flush(c);
		return;
	}
	if (cqe->res == -ECANCELED && !c->eof)
		return; /* a receive cancelled before the close (a hand-off, a pause): re-armed */
	/* EOF, or an error: the client is gone; once the final output is out, so is this. */
	c->rx_done = true;
	conn_maybe_finish(c);
}

/*
 * A stop was asked (this worker read the signal, or another did): input that arrives from now
 * on is not handled. One relaxed load per receive: a flood already in the ring's buffers must
 * not hold the stop back until all of it is handled (seconds, on a loaded machine).
 */
static bool conn_stop_asked(const struct worker *w)
{
	return w->stopping || (w->nworkers > 1 &&
	                       atomic_load_explicit(&w->b->shared.stopping, memory_order_relaxed));
}

static void conn_on_recv(struct conn *c, const struct ring_cqe *cqe)
{
	if (!cqe->more)
		c->recv_armed = false;
	if (c->state == CONN_HANDOFF) {
		conn_on_recv_handoff(c, cqe);
	} else if (c->state == CONN_CLOSING) {
		conn_on_recv_closing(c, cqe);
	} else if (cqe->res > 0 && !c->bridge && conn_stop_asked(c->w)) {
		/* What a client sends once the stop is asked is not acknowledged: it sends it
		 * again to the next broker, QoS 0 aside, as after any disconnection. */
		worker_conn_shut(c);
		conn_on_recv_closing(c, cqe);
	} else if (cqe->res > 0) {
		c->w->stats.bytes_received += (uint64_t)cqe->res;
		c->last_rx_ms = worker_now_up_ms(c->w);
		if (c->tls)
			conn_tls_input(c, cqe->buf, (size_t)cqe->res);
		else
			conn_stream_bytes(c, cqe->buf, (size_t)cqe->res);
	} else if (cqe->res == 0) {
		conn_close(c, false, "closed by client");
		c->rx_done = true;
		conn_maybe_finish(c);
	} else if (cqe->res == -ENOBUFS) {
		/* Back-pressure, not an error: the bytes wait in the socket for a re-arm. */
		c->recv_starved = true;
		conn_want_flush(c);
	} else if (cqe->res != -ECANCELED) {
		conn_close(c, false,
		           cqe->res == -ECONNRESET ? "connection reset" : "receive failed");
		c->rx_done = true;
		conn_maybe_finish(c);
	}
	if (!c->recv_armed && !c->recv_starved && conn_reading(c)) {
		ring_recv(&c->w->ring, &c->io, c->fd);
		c->recv_armed = true;
	}
}

/*
 * The ring's receive and the cross-worker channel are separate streams: a CONNECT handed
 * over through the channel can be seen before this connection's last bytes, which the
 * kernel holds until the worker next runs its deferred task work. Bytes the client sent
 * before it reconnected (acknowledgements, a DISCONNECT) must count first, so they are
 * read here, synchronously; the armed receive later finds the socket empty or at EOF.
 */
void conn_drain_input(struct conn *c)
{
	size_t budget = CONN_DRAIN_MAX;
	uint8_t *buf = NULL;

	/* Not the worker's scratch: the handlers below use it. Takeovers are rare. */
	while (c->state == CONN_ACTIVE && !c->eof && budget > 0) {
		ssize_t n;

		if (!buf && !(buf = malloc(CONN_DRAIN_CHUNK)))
			return;
		n = recv(c->fd, buf, CONN_DRAIN_CHUNK, MSG_DONTWAIT);
		if (n > 0) {
			c->w->stats.bytes_received += (uint64_t)n;
			c->last_rx_ms = worker_now_up_ms(c->w);
			if (c->tls)
				conn_tls_drain(c, buf, (size_t)n);
			else
				conn_stream_bytes(c, buf, (size_t)n);
			budget = (size_t)n < budget ? budget - (size_t)n : 0;
		} else if (n == 0) {
			conn_close(c, false, "closed by client");
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c, false,
				           errno == ECONNRESET ? "connection reset"
				                               : "receive failed");
			break;
		}
	}
	free(buf);
}

static void conn_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct conn *c = container_of(io, struct conn, io);

	(void)r;
	if (cqe->op == RING_OP_RECV)
		conn_on_recv(c, cqe);
	else if (cqe->op == RING_OP_SEND)
		conn_on_send(c, cqe);
	conn_check_dead(c);
}

void conn_close(struct conn *c, bool graceful, const char *reason)
{
	if (c->state == CONN_CLOSING)
		return;
	handle_conn_closing(c, graceful, reason);
	if (c->ws)
		conn_ws_closing(c); /* its close frame, then (wss) close_notify, at the flush */
	else if (c->tls && graceful)
		conn_tls_closing(c);
	c->state = CONN_CLOSING;
	c->closing_ms = c->w->now_ms;
	worker_conn_timer(c->w, c);
	/* Nothing read from now on is handled: what the connection held for it goes now. */
	conn_drop_rbuf(c);
	if (c->tls)
		conn_tls_drop_unsent(c); /* a bridge's CONNECT that its handshake still held */
	if (c->v5) {
		alias_in_free(&c->v5->alias_in);
		alias_out_free(&c->v5->alias_out);
	}
	/* A receive stopped for a hand-off or a pause reads again, to drop what comes. */
	if (!c->recv_armed && !c->eof && !c->paused) {
		c->recv_starved = true;
		conn_want_flush(c);
	}
	conn_maybe_finish(c);
}

void conn_close_later(struct conn *c, const char *reason)
{
	if (c->state == CONN_CLOSING || c->close_later)
		return;
	c->close_later = reason;
	conn_want_flush(c);
}

void conn_abort(struct conn *c)
{
	if (c->state != CONN_CLOSING)
		conn_close(c, false, "aborted");
	conn_shutdown(c);
}

void conn_free(struct conn *c)
{
	persist_conn_gone(c->w, c);
	wheel_del(&c->w->conn_timers, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	conn_drop_rbuf(c);
	obuf_release(&c->out);
	obuf_release(&c->sending);
	free(c->iov);
	if (c->will)
		msg_unref(c->will);
	if (c->v5) {
		alias_in_free(&c->v5->alias_in);
		alias_out_free(&c->v5->alias_out);
		free(c->v5);
	}
	conn_tls_destroy(c->tls);
	conn_ws_destroy(c->ws);
	free(c->username);
	free(c);
}
