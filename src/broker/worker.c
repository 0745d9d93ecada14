/*
 * The worker loop and what hangs off it: accepting, the end-of-batch flush (the one send per
 * connection per batch that batches fan-out), housekeeping (keep alive, CONNECT timeout,
 * lingering closes) and the session table.
 */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "broker.h"
#include "conn.h"
#include "handlers.h"
#include "base/log.h"
#include "out.h"
#include "index/retain.h"
#include "route.h"
#include "session.h"
#include "index/subidx.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define HOUSEKEEPING_MS    250   /* keep alive resolution */
#define CONNECT_TIMEOUT_MS 10000 /* a socket that sends no CONNECT is closed after this */
#define LINGER_TIMEOUT_MS  5000  /* final packets of a closing connection get this long */
#define SESSIONS_TICK_MS   500   /* resolution of will delays and session expiry */

static uint64_t worker_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void worker_accepted(struct worker *w, int fd)
{
	const struct config *cfg = &w->b->cfg;
	int one = 1;
	struct conn *c;

	w->stats.connections_total++;
	if (cfg->max_connections && w->nclients >= cfg->max_connections) {
		if (log_enabled(&w->b->log, LOG_T_NOTICE))
			log_msg(&w->b->log, LOG_T_NOTICE,
			        "Client connection refused: max_connections (%u) reached.",
			        cfg->max_connections);
		close(fd);
		return;
	}
	if (cfg->set_tcp_nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(w, fd);
	if (!c) {
		log_msg(&w->b->log, LOG_T_ERROR, "Out of memory accepting a connection.");
		close(fd);
		return;
	}
	w->nclients++;
}

static void worker_on_accept(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct listener *l = container_of(io, struct listener, io);
	struct worker *w = l->w;

	(void)r;
	if (cqe->res >= 0) {
		worker_accepted(w, cqe->res);
	} else if (cqe->res != -ECANCELED && log_enabled(&w->b->log, LOG_T_WARNING)) {
		/* EMFILE and ENFILE end up here: the listener is re-armed by housekeeping. */
		log_msg(&w->b->log, LOG_T_WARNING, "accept on port %u: %s", l->port,
		        strerror(-cqe->res));
	}
	if (!cqe->more)
		l->armed = false;
}

static void worker_on_signal(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct worker *w = container_of(io, struct worker, sig_io);

	(void)r;
	if (cqe->res == (int)sizeof(w->sig_info)) {
		log_msg(&w->b->log, LOG_T_NOTICE, "Received signal %u, shutting down.",
		        w->sig_info.ssi_signo);
		w->stopping = true;
	} else if (cqe->res != -ECANCELED) {
		log_msg(&w->b->log, LOG_T_ERROR, "read of signalfd: %s",
		        cqe->res < 0 ? strerror(-cqe->res) : "short read");
		w->stopping = true;
	}
}

static bool sess_eq(const void *val, const void *key)
{
	const struct session *s = val;
	const struct st_bytes *k = key;

	return s->client_id_len == k->len && memcmp(s->client_id, k->ptr, k->len) == 0;
}

static uint64_t sess_hash(const struct worker *w, const uint8_t *id, size_t len)
{
	return XXH3_64bits_withSeed(id, len, w->sess_seed);
}

struct session *worker_session_find(struct worker *w, const uint8_t *id, size_t len)
{
	struct st_bytes key = {id, (uint32_t)len};

	return hmap_find(&w->sessions, sess_hash(w, id, len), sess_eq, &key);
}

int worker_session_add(struct worker *w, struct session *s)
{
	return hmap_insert(&w->sessions, sess_hash(w, s->client_id, s->client_id_len), s);
}

/* Removes one of s's subscriptions from the index or its shared group. */
void worker_unsubscribe(struct worker *w, struct session *s, const uint8_t *filter, size_t len)
{
	struct st_bytes inner;

	if (share_parse(filter, len, &inner) == 1)
		share_unsubscribe(&w->shares, w->subs, filter, len, s);
	else
		subidx_remove(w->subs, filter, len, s);
}

void worker_session_destroy(struct worker *w, struct session *s)
{
	/* The session ends: a will still waiting for its delay goes out now [MQTT-3.1.3-9]. */
	if (s->will) {
		struct msg *will = s->will;
		struct pub_view v = pub_view_of(will);

		s->will = NULL;
		route_publish(w, NULL, &v, will->qos, will->retain);
		msg_unref(will);
	}
	for (uint32_t i = 0; i < s->nsubs; i++)
		worker_unsubscribe(w, s, s->subs[i].filter, s->subs[i].filter_len);
	hmap_remove(&w->sessions, sess_hash(w, s->client_id, s->client_id_len), s);
	session_free(s);
}

uint8_t *worker_scratch(struct worker *w, size_t n)
{
	if (n > w->scratch_cap) {
		uint8_t *p = realloc(w->scratch, n);

		if (!p)
			return NULL;
		w->scratch = p;
		w->scratch_cap = (uint32_t)n;
	}
	return w->scratch;
}

void worker_conn_dead(struct worker *w, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	c->prev = NULL;
	c->next = w->dead;
	w->dead = c;
}

int worker_init(struct worker *w, struct broker *b, unsigned index, const int *listen_fds,
                const uint16_t *ports, unsigned nlisteners, int sig_fd)
{
	struct ring_params rp = {
	        .sq_entries = 4096,
	        .cq_entries = 65536,
	        .buf_count = 1024,
	        .buf_size = 16384,
	};
	char err[512];
	int ret;

	memset(w, 0, sizeof(*w));
	w->b = b;
	w->index = index;
	w->sig_fd = sig_fd;
	w->sess_seed = hmap_seed_new();
	w->shares.seed = hmap_seed_new();
	w->idbuf_cap = ROUTE_IDS_MAX;
	w->now_ms = worker_clock_ms();
	w->subs = subidx_new();
	w->retained = retain_new();
	w->listeners = calloc(nlisteners ? nlisteners : 1, sizeof(*w->listeners));
	if (!w->subs || !w->retained || !w->listeners) {
		log_msg(&b->log, LOG_T_ERROR, "Out of memory starting worker %u.", index);
		return ST_ERR_NOMEM;
	}
	ret = ring_init(&w->ring, &rp, err, sizeof(err));
	if (ret < 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: %s", err);
		return ST_ERR_SYS;
	}
	w->nlisteners = nlisteners;
	for (unsigned i = 0; i < nlisteners; i++) {
		struct listener *l = &w->listeners[i];

		l->io.fn = worker_on_accept;
		l->w = w;
		l->fd = listen_fds[i];
		l->port = ports[i];
		ring_accept(&w->ring, &l->io, l->fd);
		l->armed = true;
	}
	w->sig_io.fn = worker_on_signal;
	if (sig_fd >= 0)
		ring_read(&w->ring, &w->sig_io, sig_fd, &w->sig_info, sizeof(w->sig_info));
	return ST_OK;
}

/*
 * Offline sessions: delayed wills that are due, sessions whose expiry passed (MQTT 5 Session
 * Expiry Interval). Expired sessions are collected first and ended after the walk, since
 * ending one changes the table being walked.
 */
static void worker_sessions_tick(struct worker *w)
{
	struct session *expired[64];
	unsigned n;

	do {
		n = 0;
		for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions);
		     i = hmap_next(&w->sessions, i + 1)) {
			struct session *s = w->sessions.slots[i].val;

			if (s->conn)
				continue;
			if (s->will && s->will_at_ms <= w->now_ms)
				handle_session_will_due(w, s);
			if (s->expire_at_ms && s->expire_at_ms <= w->now_ms && n < 64)
				expired[n++] = s;
		}
		for (unsigned i = 0; i < n; i++)
			worker_session_destroy(w, expired[i]);
	} while (n == 64);
}

/* Once per HOUSEKEEPING_MS: keep alive [MQTT-3.1.2-24], CONNECT timeout, stuck closes. */
static void worker_housekeeping(struct worker *w)
{
	uint64_t now = w->now_ms;

	w->next_housekeeping_ms = now + HOUSEKEEPING_MS;
	if (now >= w->next_sessions_ms) {
		w->next_sessions_ms = now + SESSIONS_TICK_MS;
		worker_sessions_tick(w);
	}
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == CONN_ACTIVE && c->keepalive_s &&
		    now - c->last_rx_ms > (uint64_t)c->keepalive_s * 1500) {
			out_disconnect(c, ST_RC_KEEP_ALIVE_TIMEOUT,
			               "nothing received for 1.5 keep alives");
			conn_close(c, false, "exceeded timeout");
		} else if (c->state == CONN_NEW && now - c->opened_ms > CONNECT_TIMEOUT_MS)
			conn_close(c, false, "sent no CONNECT");
		else if (c->state == CONN_CLOSING && !c->eof &&
		         now - c->closing_ms > LINGER_TIMEOUT_MS)
			conn_abort(c);
	}
	for (unsigned i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];

		if (!l->armed && !w->stopping) {
			ring_accept(&w->ring, &l->io, l->fd);
			l->armed = true;
		}
	}
	sys_tick(w);
}

#define LOGQ_MAX (64u << 10) /* queued log bytes per batch for log_dest topic */

void worker_log_topic(void *ctx, uint32_t type, const char *line, unsigned len)
{
	struct worker *w = ctx;
	uint16_t n = len > 2048 ? 2048 : (uint16_t)len;

	if (!w->logq && !(w->logq = malloc(LOGQ_MAX)))
		return;
	if (w->logq_len + 6 + n > LOGQ_MAX) {
		w->logq_dropped++;
		return;
	}
	memcpy(w->logq + w->logq_len, &type, 4);
	memcpy(w->logq + w->logq_len + 4, &n, 2);
	memcpy(w->logq + w->logq_len + 6, line, n);
	w->logq_len += 6 + n;
}

/* Mosquitto's topic for a log line of this type. */
static const char *worker_log_topic_name(uint32_t type)
{
	if (type & LOG_T_ERROR)
		return "$SYS/broker/log/E";
	if (type & LOG_T_WARNING)
		return "$SYS/broker/log/W";
	if (type & LOG_T_NOTICE)
		return "$SYS/broker/log/N";
	if (type & LOG_T_INFORMATION)
		return "$SYS/broker/log/I";
	if (type & LOG_T_SUBSCRIBE)
		return "$SYS/broker/log/M/subscribe";
	if (type & LOG_T_UNSUBSCRIBE)
		return "$SYS/broker/log/M/unsubscribe";
	return "$SYS/broker/log/D";
}

/*
 * Publishes the queued log lines. Only those queued before the call: a line logged while
 * publishing waits for the next batch, so logging can never feed on itself.
 */
static void worker_log_flush(struct worker *w)
{
	uint32_t end = w->logq_len, off = 0;
	uint8_t *q = w->logq;

	if (!end)
		return;
	w->logq = NULL;
	w->logq_len = 0;
	while (off < end) {
		uint32_t type;
		uint16_t n;
		const char *topic;
		struct pub_view v = {0};

		memcpy(&type, q + off, 4);
		memcpy(&n, q + off + 4, 2);
		topic = worker_log_topic_name(type);
		v.topic = (struct st_bytes){(const uint8_t *)topic, (uint32_t)strlen(topic)};
		v.payload = (struct st_bytes){q + off + 6, n};
		route_publish(w, NULL, &v, 0, false);
		off += 6 + (uint32_t)n;
	}
	free(q);
}

/* End of a completion batch: one send per connection with output; re-arm starved recvs. */
static void worker_batch_end(struct worker *w)
{
	worker_log_flush(w);
	while (w->flush_list) {
		struct conn *c = w->flush_list;

		w->flush_list = NULL;
		while (c) {
			struct conn *next = c->flush_next;

			c->on_flush_list = false;
			c->flush_next = NULL;
			if (c->close_later)
				conn_close(c, false, c->close_later);
			if (c->recv_starved && !c->eof && c->state != CONN_CLOSING) {
				c->recv_starved = false;
				ring_recv(&w->ring, &c->io, c->fd);
				c->recv_armed = true;
			}
			conn_flush(c);
			c = next;
		}
	}
	while (w->dead) {
		struct conn *c = w->dead;

		w->dead = c->next;
		conn_free(c);
	}
}

static void worker_close_all(struct worker *w)
{
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == CONN_ACTIVE)
			out_disconnect(c, ST_RC_SERVER_SHUTTING_DOWN, NULL);
		conn_close(c, true, "broker shutting down");
	}
	if (w->sig_fd >= 0)
		ring_cancel_fd(&w->ring, w->sig_fd);
	for (unsigned i = 0; i < w->nlisteners; i++)
		ring_cancel_fd(&w->ring, w->listeners[i].fd);
	worker_batch_end(w);
}

int worker_run(struct worker *w)
{
	uint64_t deadline;
	int ret;

	w->next_housekeeping_ms = w->now_ms + HOUSEKEEPING_MS;
	while (!w->stopping) {
		int timeout = (int)(w->next_housekeeping_ms > w->now_ms
		                            ? w->next_housekeeping_ms - w->now_ms
		                            : 0);

		ret = ring_poll(&w->ring, timeout);
		if (ret < 0) {
			log_msg(&w->b->log, LOG_T_ERROR, "io_uring_enter: %s", strerror(-ret));
			return ST_ERR_SYS;
		}
		w->now_ms = worker_clock_ms();
		if (w->now_ms >= w->next_housekeeping_ms)
			worker_housekeeping(w);
		worker_batch_end(w);
	}
	/* Drain: let closing connections and cancelled operations complete (bounded). */
	worker_close_all(w);
	deadline = w->now_ms + 2000;
	while ((w->conns || w->sig_io.pending || w->nlisteners) && w->now_ms < deadline) {
		bool listening = false;

		for (unsigned i = 0; i < w->nlisteners; i++)
			listening |= w->listeners[i].io.pending > 0;
		if (!w->conns && !w->sig_io.pending && !listening)
			break;
		if (ring_poll(&w->ring, 100) < 0)
			break;
		w->now_ms = worker_clock_ms();
		for (struct conn *c = w->conns; c; c = c->next)
			if (c->state == CONN_CLOSING && !c->eof && w->now_ms - c->closing_ms > 500)
				conn_abort(c);
		worker_batch_end(w);
	}
	return ST_OK;
}

static void worker_release_retained(void *ctx, void *value)
{
	(void)ctx;
	msg_unref(value);
}

void worker_fini(struct worker *w)
{
	/* Tearing the ring down first cancels whatever is still in flight, so nothing the
	 * kernel may still touch is freed below. */
	ring_exit(&w->ring);
	/* Connections still open (the drain timed out) are freed with their sockets. */
	while (w->conns) {
		struct conn *c = w->conns;

		w->conns = c->next;
		if (c->session)
			c->session->conn = NULL;
		conn_free(c);
	}
	for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions);
	     i = hmap_next(&w->sessions, i + 1))
		session_free(w->sessions.slots[i].val);
	hmap_fini(&w->sessions);
	if (w->subs)
		share_registry_fini(&w->shares, w->subs);
	if (w->subs)
		subidx_free(w->subs);
	if (w->retained)
		retain_free(w->retained, worker_release_retained, NULL);
	free(w->listeners);
	free(w->matches);
	free(w->shared);
	free(w->ids);
	free(w->logq);
	free(w->scratch);
}
