/*
 * Connections of a metrics listener: HTTP/1.1 on the worker's own ring (metrics.h).
 *
 * A connection reads requests with a multishot receive into the worker's provided buffers;
 * what arrives is copied into `in`, at most METRICS_HEAD_MAX bytes (a head that does not end
 * within them is answered 431 and the connection closed). A complete head is answered at
 * once: GET or HEAD /metrics with the exposition (rendered into one buffer, sent with one
 * sendmsg, a short send resumed), another path 404, another method 405, a malformed head
 * 400, a version other than 1.x 505. HTTP/1.1 connections stay open for the next request
 * (Prometheus keeps one per target) unless the client says `Connection: close`; HTTP/1.0 ones
 * close after the response, as do a malformed request and one carrying a body. One request is
 * answered at a time; pipelined ones wait in `in` for the response before them to leave.
 *
 * Bounds: METRICS_CONNS_MAX connections per worker; at the bound a new one takes the place of
 * the oldest that is not sending a response, so clients holding connections open cannot lock
 * a scraper out. A request head must be complete within METRICS_HEAD_MS of its first byte,
 * and a connection with no request is closed after METRICS_IDLE_MS; deadlines are checked by
 * housekeeping (250 ms).
 * Closing: the response leaves, the sending side is shut (FIN), and what the client still
 * sends is read and dropped until its EOF, for at most METRICS_LINGER_MS and
 * METRICS_DISCARD_MAX bytes, so that the client reads the response rather than a reset; then
 * the socket is shut down, its operations cancelled, and the struct freed with the last
 * completion. None of this can disturb an MQTT connection: it shares only the ring and its
 * receive buffers, which it returns at once.
 */
#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "http/metrics_text.h"
#include "http/request.h"
#include "http/response.h"
#include "worker.h"

#define METRICS_CONNS_MAX   16          /* connections per worker */
#define METRICS_HEAD_MAX    8192        /* bytes of a request head */
#define METRICS_HEAD_MS     10000       /* a head must be complete this long after its first byte */
#define METRICS_IDLE_MS     120000      /* a connection waits this long for a request */
#define METRICS_LINGER_MS   2000        /* a closing connection waits this long for the EOF */
#define METRICS_DISCARD_MAX (64u << 10) /* bytes read and dropped while closing, at most */

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

struct mconn {
	struct ring_io io;    /* completions of this socket's operations */
	struct worker *w;     /* owner */
	int fd;               /* the socket */
	uint8_t *in;          /* request bytes not yet answered (METRICS_HEAD_MAX), or NULL */
	uint32_t in_len;      /* bytes in `in` */
	char *out;            /* the response being sent, or NULL */
	size_t out_len;       /* its bytes */
	size_t out_sent;      /* of which sent */
	struct iovec iov;     /* the send in flight */
	struct msghdr mh;     /* its header */
	uint64_t deadline_ms; /* monotonic time past which housekeeping closes it */
	uint64_t discarded;   /* bytes dropped while closing */
	bool recv_armed;      /* a multishot receive is pending */
	bool recv_starved;    /* it stopped on -ENOBUFS: housekeeping re-arms it */
	bool closing;         /* no more requests: the response leaves, then the close */
	bool wr_shut;         /* closing: response out, FIN sent; reading until EOF */
	bool rx_done;         /* the client's EOF (or an error) was seen */
	bool eof;             /* shut down and cancelled: waiting for the last completion */
	struct mconn *prev;   /* in w->mconns */
	struct mconn *next;   /* in w->mconns */
};

static void mconn_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe);

static void mconn_free(struct mconn *m)
{
	struct worker *w = m->w;

	if (m->prev)
		m->prev->next = m->next;
	else
		w->mconns = m->next;
	if (m->next)
		m->next->prev = m->prev;
	w->nmconns--;
	close(m->fd);
	free(m->in);
	free(m->out);
	free(m);
}

/*
 * Shuts the socket down and cancels what is pending. The struct lives on until its last
 * completion (mconn_reap): callers may still look at it.
 */
static void mconn_abort(struct mconn *m)
{
	if (m->eof)
		return;
	m->eof = true;
	shutdown(m->fd, SHUT_RDWR);
	if (m->io.pending)
		ring_cancel_fd(&m->w->ring, m->fd);
}

/* Frees an aborted connection whose last completion has arrived. */
static void mconn_reap(struct mconn *m)
{
	if (m->eof && m->io.pending == 0)
		mconn_free(m);
}

/*
 * Makes room for a new connection at the bound: the oldest one not sending a response goes
 * (the list is newest first), so that clients which hold connections without finishing a
 * request cannot lock a scraper out; a scrape takes milliseconds. False if none can go.
 */
static bool mconn_evict(struct worker *w)
{
	struct mconn *m = w->mconns, *victim = NULL;
	unsigned live = 0;

	for (; m; m = m->next) {
		if (m->eof)
			continue;
		live++;
		if (!m->out)
			victim = m;
	}
	if (live < METRICS_CONNS_MAX)
		return true;
	if (!victim)
		return false;
	mconn_abort(victim);
	mconn_reap(victim);
	return true;
}

void metrics_accepted(struct worker *w, int fd)
{
	struct mconn *m = NULL;

	/* Aborted ones still waiting for their last completion count against a wider bound. */
	if (w->nmconns < 2 * METRICS_CONNS_MAX && mconn_evict(w))
		m = calloc(1, sizeof(*m));
	if (!m) {
		if (log_enabled(&w->log, LOG_T_NOTICE))
			log_msg(&w->log, LOG_T_NOTICE, "Metrics connection refused: %s.",
			        w->nmconns < 2 * METRICS_CONNS_MAX ? "out of memory"
			                                           : "too many on this worker");
		close(fd);
		return;
	}
	m->io.fn = mconn_on_cqe;
	m->w = w;
	m->fd = fd;
	m->deadline_ms = w->now_ms + METRICS_IDLE_MS;
	m->next = w->mconns;
	if (w->mconns)
		w->mconns->prev = m;
	w->mconns = m;
	w->nmconns++;
	ring_recv(&w->ring, &m->io, fd);
	m->recv_armed = true;
}

static void mconn_submit(struct mconn *m)
{
	m->iov = (struct iovec){m->out + m->out_sent, m->out_len - m->out_sent};
	m->mh = (struct msghdr){.msg_iov = &m->iov, .msg_iovlen = 1};
	ring_sendmsg(&m->w->ring, &m->io, m->fd, &m->mh);
}

/*
 * Queues a response: the head, then body[0..body_len) unless head_only. keep: the connection
 * serves another request after it; otherwise it closes once the response is out.
 */
static void mconn_respond(struct mconn *m, unsigned status, const char *type, const char *body,
                          size_t body_len, bool head_only, bool keep, const char *extra)
{
	char head[HTTP_RESPONSE_HEAD_MAX];
	size_t hlen = http_response_head(head, sizeof(head), status, type, body_len, keep, extra);
	size_t blen = head_only ? 0 : body_len;

	m->w->stats.http_requests++;
	m->closing |= !keep;
	m->out = hlen ? malloc(hlen + blen) : NULL;
	if (!m->out) {
		mconn_abort(m);
		return;
	}
	memcpy(m->out, head, hlen);
	if (blen)
		memcpy(m->out + hlen, body, blen);
	m->out_len = hlen + blen;
	m->out_sent = 0;
	mconn_submit(m);
}

/* A plain-text error response; keep: the request was well-formed, the connection stays. */
static void mconn_error(struct mconn *m, unsigned status, bool head_only, bool keep,
                        const char *extra)
{
	char body[64];
	size_t n = (size_t)snprintf(body, sizeof(body), "%u %s\n", status, http_reason(status));

	mconn_respond(m, status, "text/plain; charset=utf-8", body, n, head_only, keep, extra);
}

/* The answer to one complete request head. */
static void mconn_answer(struct mconn *m, const struct http_request *req)
{
	bool head = http_slice_is(req->method, "HEAD");
	bool keep = req->keep_alive && req->minor >= 1 && !req->has_body;
	struct mtext t;

	if (!head && !http_slice_is(req->method, "GET")) {
		mconn_error(m, 405, false, keep, "Allow: GET, HEAD\r\n");
		return;
	}
	if (!http_slice_is(req->path, "/metrics")) {
		mconn_error(m, 404, head, keep, NULL);
		return;
	}
	mtext_init(&t);
	metrics_render(m->w, &t);
	if (t.failed)
		mconn_error(m, 500, head, false, NULL);
	else
		mconn_respond(m, 200, MTEXT_CONTENT_TYPE, t.buf, t.len, head, keep, NULL);
	mtext_free(&t);
}

/* Answers the request waiting in `in`, if its head is complete and nothing is being sent. */
static void mconn_serve(struct mconn *m)
{
	struct http_request req;
	long ret;

	if (m->out || m->closing || m->eof || m->in_len == 0)
		return;
	ret = http_request_parse(m->in, m->in_len, METRICS_HEAD_MAX, &req);
	if (ret == 0)
		return;
	if (ret < 0) {
		mconn_error(m, (unsigned)-ret, false, false, NULL);
		return;
	}
	mconn_answer(m, &req);
	/* What follows the head (a pipelined request) waits for this response to leave. */
	m->in_len -= (uint32_t)ret;
	memmove(m->in, m->in + ret, m->in_len);
}

static void mconn_input(struct mconn *m, const uint8_t *p, size_t n)
{
	struct worker *w = m->w;

	if (m->closing) {
		m->discarded += n;
		if (m->discarded > METRICS_DISCARD_MAX)
			mconn_abort(m);
		return;
	}
	if (!m->in && !(m->in = malloc(METRICS_HEAD_MAX))) {
		mconn_abort(m);
		return;
	}
	if (m->in_len == 0)
		m->deadline_ms = w->now_ms + METRICS_HEAD_MS;
	if (n > METRICS_HEAD_MAX - m->in_len) {
		/* Pipelined requests past the bound are refused the same way. */
		m->in_len = METRICS_HEAD_MAX;
		if (!m->out)
			mconn_error(m, 431, false, false, NULL);
		else
			m->closing = true;
		return;
	}
	memcpy(m->in + m->in_len, p, n);
	m->in_len += (uint32_t)n;
	mconn_serve(m);
}

/* The response is out: the next request, or the closing sequence. */
static void mconn_sent(struct mconn *m)
{
	free(m->out);
	m->out = NULL;
	if (!m->closing) {
		m->deadline_ms = m->w->now_ms + (m->in_len ? METRICS_HEAD_MS : METRICS_IDLE_MS);
		mconn_serve(m);
		return;
	}
	m->wr_shut = true;
	m->deadline_ms = m->w->now_ms + METRICS_LINGER_MS;
	if (m->rx_done || shutdown(m->fd, SHUT_WR) != 0)
		mconn_abort(m);
}

static void mconn_on_send(struct mconn *m, const struct ring_cqe *cqe)
{
	if (m->eof)
		return;
	if (cqe->res <= 0) {
		mconn_abort(m);
		return;
	}
	m->out_sent += (size_t)cqe->res;
	if (m->out_sent < m->out_len)
		mconn_submit(m);
	else
		mconn_sent(m);
}

static void mconn_on_recv(struct mconn *m, const struct ring_cqe *cqe)
{
	if (!cqe->more)
		m->recv_armed = false;
	if (m->eof)
		return;
	if (cqe->res > 0) {
		mconn_input(m, cqe->buf, (size_t)cqe->res);
	} else if (cqe->res == -ENOBUFS) {
		m->recv_starved = true;
	} else if (cqe->res != -ECANCELED) {
		/* EOF or an error: what is being sent still leaves, then the close. */
		m->rx_done = true;
		m->closing = true;
		if (!m->out || cqe->res < 0)
			mconn_abort(m);
		return;
	}
	if (!m->recv_armed && !m->recv_starved && !m->eof) {
		ring_recv(&m->w->ring, &m->io, m->fd);
		m->recv_armed = true;
	}
}

static void mconn_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct mconn *m = container_of(io, struct mconn, io);

	(void)r;
	if (cqe->op == RING_OP_RECV)
		mconn_on_recv(m, cqe);
	else if (cqe->op == RING_OP_SEND)
		mconn_on_send(m, cqe);
	/* Freed here, with its last completion (nothing touches it after the handler). */
	mconn_reap(m);
}

void metrics_housekeeping(struct worker *w)
{
	for (struct mconn *m = w->mconns, *next; m; m = next) {
		next = m->next;
		if (m->eof)
			continue;
		if (w->now_ms >= m->deadline_ms) {
			mconn_abort(m);
			mconn_reap(m);
			continue;
		}
		if (m->recv_starved && !m->recv_armed) {
			m->recv_starved = false;
			ring_recv(&w->ring, &m->io, m->fd);
			m->recv_armed = true;
		}
	}
}

void metrics_close_all(struct worker *w)
{
	for (struct mconn *m = w->mconns, *next; m; m = next) {
		next = m->next;
		mconn_abort(m);
		mconn_reap(m);
	}
}

void metrics_fini(struct worker *w)
{
	while (w->mconns)
		mconn_free(w->mconns);
}
