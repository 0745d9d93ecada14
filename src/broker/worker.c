/*
 * The worker loop and what hangs off it: accepting, the end-of-batch flush (the one send per
 * connection per batch that batches fan-out), housekeeping (keep alive, CONNECT timeout,
 * lingering closes), and the worker's side of cross-worker traffic: channels drained at the
 * start of each batch end and flushed at its close, connections handed to their home worker,
 * publishers paused while a channel's backlog drains, retained tombstones.
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "bridge.h"
#include "cluster.h"
#include "broker.h"
#include "conn.h"
#include "limits.h"
#include "conn_tls.h"
#include "conn_ws.h"
#include "handlers.h"
#include "base/fifo.h"
#include "base/log.h"
#include "metrics.h"
#include "mount.h"
#include "out.h"
#include "persist.h"
#include "index/retain.h"
#include "reload.h"
#include "service.h"
#include "route.h"
#include "session.h"
#include "index/subidx.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define HOUSEKEEPING_MS 250  /* keep alive resolution */
#define TIMER_SLOTS     1024 /* wheel slots of HOUSEKEEPING_MS: a turn is 256 s */
#define BATCH_INPUT_MIN 64   /* completions past the sends that end a budgeted wait */
/* How long a retained delete stays as a tombstone: far longer than any entry waits in a
 * channel or overflow queue, so no older write of the topic can still arrive after it. */
#define TOMBSTONE_MS 5000

static uint64_t worker_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* The clock, read once per batch. */
static void worker_tick_clock(struct worker *w)
{
	uint64_t ns = worker_clock_ns();

	w->loop_start_ns = ns;
	w->now_us = ns / 1000;
	w->now_ms = w->now_us / 1000;
}

static void worker_accepted(struct worker *w, const struct listener *l, int fd)
{
	const struct config *cfg = &w->b->cfg;
	int one = 1;
	struct conn *c;

	w->stats.connections_total++;
	w->stats.accepted[l->cfg_index]++;
	/* max_connections counts every worker's connections of the listener (admit.h). */
	if (!admit_take(w->b, l->cfg_index)) {
		if (log_enabled(&w->log, LOG_T_NOTICE))
			log_msg(&w->log, LOG_T_NOTICE,
			        "Client connection refused: max_connections (%u) reached on port "
			        "%u.",
			        cfg->listeners[l->cfg_index].opts.max_connections, l->port);
		close(fd);
		return;
	}
	if (cfg->set_tcp_nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* What the kernel keeps for a client that does not read: autotuned up to tcp_wmem's
	 * maximum (4 MiB by default) per socket unless capped. */
	if (cfg->client_send_buffer)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg->client_send_buffer,
		           sizeof(cfg->client_send_buffer));
	c = conn_new(w, fd);
	if (!c) {
		log_msg(&w->log, LOG_T_ERROR, "Out of memory accepting a connection.");
		admit_release(w->b, l->cfg_index);
		close(fd);
		return;
	}
	c->accepted_by = (uint16_t)w->index;
	c->listener = l->cfg_index;
	mount_attach(c);
	w->nclients++;
	/* Its receive is armed: a connection that cannot have TLS closes the normal way. */
	if ((l->tls && conn_tls_attach(c, l->tls) != ST_OK) ||
	    (l->ws && conn_ws_attach(c) != ST_OK))
		conn_close(c, false, "out of memory");
}

void worker_conn_handoff(struct worker *w, struct conn *c)
{
	uint8_t *bytes = c->rbuf;
	uint32_t len = c->rlen;
	unsigned to = c->handoff_to;
	int fd = c->fd;

	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
	c->fd = -1; /* the socket goes on living on the home worker */
	if (w->nclients > 0)
		w->nclients--;
	worker_conn_dead(w, c);
	xw_handoff(w, to, fd, c->listener, bytes, len, conn_tls_detach(c), conn_ws_detach(c));
}

static void worker_conn_adopt_as(struct worker *w, int fd, unsigned listener, uint8_t *bytes,
                                 uint32_t len, unsigned from, struct conn_tls *tls,
                                 struct conn_ws *ws, bool resolved);

void worker_conn_adopt(struct worker *w, int fd, unsigned listener, uint8_t *bytes, uint32_t len,
                       unsigned from, struct conn_tls *tls, struct conn_ws *ws)
{
	worker_conn_adopt_as(w, fd, listener, bytes, len, from, tls, ws, false);
}

void worker_conn_resume(struct worker *w, struct conn *c)
{
	uint8_t *bytes = c->rbuf;
	uint32_t len = c->rlen;
	int fd = c->fd;
	struct conn_tls *tls;
	struct conn_ws *ws;

	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
	c->fd = -1;
	if (w->nclients > 0)
		w->nclients--;
	worker_conn_dead(w, c);
	tls = conn_tls_detach(c);
	ws = conn_ws_detach(c);
	worker_conn_adopt_as(w, fd, c->listener, bytes, len, c->accepted_by, tls, ws, true);
	free(bytes);
}

static void worker_conn_adopt_as(struct worker *w, int fd, unsigned listener, uint8_t *bytes,
                                 uint32_t len, unsigned from, struct conn_tls *tls,
                                 struct conn_ws *ws, bool resolved)
{
	struct conn *c = w->stopping ? NULL : conn_new(w, fd);

	if (!c) {
		if (w->stopping) {
			admit_release(w->b, listener);
			close(fd);
			conn_tls_destroy(tls);
			conn_ws_destroy(ws);
			return;
		}
		log_msg(&w->log, LOG_T_ERROR, "Out of memory adopting a connection.");
		admit_release(w->b, listener);
		close(fd);
		conn_tls_destroy(tls);
		conn_ws_destroy(ws);
		return;
	}
	if (tls)
		conn_tls_adopt(c, tls);
	if (ws)
		conn_ws_adopt(c, ws);
	c->accepted_by = (uint16_t)from;
	c->listener = (uint16_t)listener;
	mount_attach(c);
	c->adopted = true;
	c->cl_resolved = resolved;
	w->nclients++;
	conn_input_bytes(c, bytes, len);
}

void worker_conn_pause(struct worker *w, struct conn *c)
{
	if (c->paused || c->state != CONN_ACTIVE)
		return;
	c->paused = true;
	c->pause_next = w->paused;
	w->paused = c;
	w->stats.paused++;
	if (c->recv_armed)
		ring_cancel_recv(&w->ring, &c->io);
}

/* The backlog drained: paused publishers are read again. */
static void worker_resume_paused(struct worker *w)
{
	while (w->paused) {
		struct conn *c = w->paused;

		w->paused = c->pause_next;
		c->pause_next = NULL;
		c->paused = false;
		if (c->dead)
			continue;
		c->recv_starved = true; /* re-armed by the batch end, as after -ENOBUFS */
		c->last_rx_ms = worker_now_up_ms(w);
		conn_want_flush(c);
	}
}

void worker_tombstone(struct worker *w, struct msg *m)
{
	/* Out of memory: it stays in the store until a later write replaces it. */
	if (w->tomb_len == w->tomb_cap && fifo_grow((void **)&w->tombs, &w->tomb_head, w->tomb_len,
	                                            &w->tomb_cap, sizeof(*w->tombs), 64) != ST_OK)
		return;
	w->tombs[(w->tomb_head + w->tomb_len++) & (w->tomb_cap - 1)] =
	        (struct worker_tomb){.m = msg_ref(m), .expire_ms = w->now_ms + TOMBSTONE_MS};
}

/* Removes tombstones old enough that no write they must beat can still be in flight. */
static void worker_tombs_expire(struct worker *w)
{
	while (w->tomb_len) {
		struct worker_tomb *t = &w->tombs[w->tomb_head];
		void *old = NULL;

		if (t->expire_ms > w->now_ms)
			break;
		if (retain_get(w->retained, msg_topic(t->m), t->m->topic_len) == t->m &&
		    retain_set(w->retained, msg_topic(t->m), t->m->topic_len, NULL, &old) ==
		            ST_OK &&
		    old) {
			w->tombs_stored--;
			msg_unref(old);
		}
		msg_unref(t->m);
		w->tomb_head = (w->tomb_head + 1) & (w->tomb_cap - 1);
		w->tomb_len--;
	}
}

static void worker_on_accept(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct listener *l = container_of(io, struct listener, io);
	struct worker *w = l->w;

	(void)r;
	if (cqe->res >= 0 && l->metrics) {
		metrics_accepted(w, cqe->res);
	} else if (cqe->res >= 0) {
		worker_accepted(w, l, cqe->res);
	} else if (cqe->res != -ECANCELED && log_enabled(&w->log, LOG_T_WARNING)) {
		/* EMFILE and ENFILE end up here: the listener is re-armed by housekeeping. */
		log_msg(&w->log, LOG_T_WARNING, "accept on port %u: %s", l->port,
		        strerror(-cqe->res));
	}
	if (!cqe->more)
		l->armed = false;
}

static void worker_on_signal(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct worker *w = container_of(io, struct worker, sig_io);

	(void)r;
	if (cqe->res == (int)sizeof(w->sig_info) && w->sig_info.ssi_signo == SIGHUP) {
		service_reloading(w);
		reload_run(w);
		service_reloaded(w);
		if (!w->stopping)
			ring_read(&w->ring, &w->sig_io, w->sig_fd, &w->sig_info,
			          sizeof(w->sig_info));
		return;
	}
	if (cqe->res == (int)sizeof(w->sig_info)) {
		log_msg(&w->log, LOG_T_NOTICE, "Received signal %u, shutting down.",
		        w->sig_info.ssi_signo);
	} else if (cqe->res != -ECANCELED) {
		log_msg(&w->log, LOG_T_ERROR, "read of signalfd: %s",
		        cqe->res < 0 ? strerror(-cqe->res) : "short read");
	} else {
		return;
	}
	service_stopping(w);
	/* Every worker stops: the flag, then a doorbell so that sleeping ones look at it. */
	atomic_store_explicit(&w->b->shared.stopping, true, memory_order_release);
	w->stopping = true;
	if (w->nworkers > 1)
		xw_wake_all(w);
}

/* Another worker's entries wait in a channel: xw_drain takes them at the batch end. */
static void worker_on_doorbell(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	(void)r;
	(void)io;
	(void)cqe;
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
	if (c->cl_parked)
		cluster_session_unpark(w, c);
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

void worker_ring_params(unsigned nworkers, enum ring_backend be, struct ring_params *p)
{
	uint32_t cq = 65536;

	/* Room for everything that can complete between two reaps: a worker's share of the
	 * connections shrinks as workers multiply, and so does the locked memory it costs. */
	while (cq > 8192 && nworkers > 1) {
		cq /= 2;
		nworkers /= 2;
	}
	/* 256 receive buffers of 16 KiB: with incremental consumption they fill one after the
	 * other, so under traffic all of them are touched; 1,024 cost 12 MiB more RSS per worker
	 * for no measured throughput (fanin50 and pairs50 at 256 B, 2 runs each). */
	*p = (struct ring_params){
	        .sq_entries = 4096,
	        .cq_entries = cq,
	        .buf_count = 256,
	        .buf_size = 16384,
	        .backend = be,
	};
}

/* What only several workers need: the channels' side, the interest summary, sessions by
 * generation, shared groups that know their owner. */
static int worker_init_xw(struct worker *w)
{
	int ret;

	w->xw.io.fn = worker_on_doorbell;
	if (w->nworkers == 1)
		return ST_OK;
	ret = xw_init(w);
	if (ret == ST_OK)
		ret = interest_local_init(&w->interest, &w->b->shared.interest, w->index);
	if (ret == ST_OK)
		w->shares.interest = &w->interest;
	return ret;
}

int worker_init(struct worker *w, struct broker *b, unsigned index, int sig_fd)
{
	unsigned nlisteners = b->nlisten;
	struct ring_params rp;
	char err[512];
	int ret;

	memset(w, 0, sizeof(*w));
	w->b = b;
	w->index = index;
	w->nworkers = b->nworkers;
	w->log = b->log;
	w->log.topic_fn = worker_log_topic;
	w->log.topic_ctx = w;
	w->sig_fd = sig_fd;
	w->auth = atomic_load_explicit(&b->shared.auth, memory_order_acquire);
	w->sess_seed = hmap_seed_new();
	w->shares.seed = hmap_seed_new();
	w->shares.owner = (uint16_t)index;
	w->idbuf_cap = ROUTE_IDS_MAX;
	w->output_max = b->output_memory / b->nworkers;
	w->qos_upgrade = b->cfg.limits.upgrade_outgoing_qos ? 3 : 0;
	/* A message crossing workers waits in two loops: each gets half the budget. */
	w->batch_delay_us = b->cfg.max_batch_delay_us / (b->nworkers > 1 ? 2 : 1);
	worker_tick_clock(w);
	w->subs = subidx_new();
	w->retained = retain_new();
	w->listeners = calloc(nlisteners ? nlisteners : 1, sizeof(*w->listeners));
	if (!w->subs || !w->retained || !w->listeners || worker_init_xw(w) != ST_OK ||
	    wheel_init(&w->conn_timers, TIMER_SLOTS, HOUSEKEEPING_MS, w->now_ms) != ST_OK ||
	    wheel_init(&w->sess_timers, TIMER_SLOTS, HOUSEKEEPING_MS, w->now_ms) != ST_OK) {
		log_msg(&w->log, LOG_T_ERROR, "Out of memory starting worker %u.", index);
		return ST_ERR_NOMEM;
	}
	worker_ring_params(w->nworkers, b->backend, &rp);
	ret = ring_init(&w->ring, &rp, err, sizeof(err));
	if (ret < 0) {
		log_msg(&w->log, LOG_T_ERROR, "Error: %s", err);
		return ST_ERR_SYS;
	}
	if (w->nworkers > 1)
		ring_set_before_input(&w->ring, xw_drain_early, w);
	if (cluster_worker_init(w) != ST_OK) {
		log_msg(&w->log, LOG_T_ERROR, "Out of memory starting worker %u.", index);
		return ST_ERR_NOMEM;
	}
	if (w->cl)
		w->shares.cluster = w;
	w->nlisteners = nlisteners;
	w->loop_timing = b->cfg.metrics_count > 0;
	for (unsigned i = 0; i < nlisteners; i++) {
		struct listener *l = &w->listeners[i];

		l->io.fn = worker_on_accept;
		l->w = w;
		l->fd = b->listen_fds[index * nlisteners + i];
		l->port = b->listen_ports[i];
		l->cfg_index = b->listen_cfg[i];
		l->metrics = b->listen_metrics[i];
		l->tls = l->metrics ? NULL : b->tls[b->listen_cfg[i]];
		l->ws = !l->metrics &&
		        b->cfg.listeners[b->listen_cfg[i]].protocol == CONFIG_PROTO_WEBSOCKETS;
		ring_accept(&w->ring, &l->io, l->fd);
		l->armed = true;
	}
	w->sig_io.fn = worker_on_signal;
	if (sig_fd >= 0) {
		ring_set_urgent(&w->ring, &w->sig_io);
		ring_read(&w->ring, &w->sig_io, sig_fd, &w->sig_info, sizeof(w->sig_info));
	}
	if (b->chains)
		return persist_init(w, &b->chains[index]);
	return ST_OK;
}

/* QoS 0 deliveries dropped for another cause than the output, the queue or a full channel. */
static uint64_t worker_other_dropped(const struct worker *w)
{
	uint64_t known = w->stats.output_dropped + w->stats.queue_dropped + w->xw.stats.dropped;

	return w->stats.msgs_dropped > known ? w->stats.msgs_dropped - known : 0;
}

void worker_snapshot_fill(const struct worker *w, struct worker_snapshot *sn)
{
	const struct worker_stats *st = &w->stats;

#define SNAP(field, value) atomic_store_explicit(&sn->field, (value), memory_order_relaxed)
	SNAP(clients, w->nclients);
	SNAP(sessions, w->sessions.count);
	SNAP(msgs_received, st->msgs_received);
	SNAP(msgs_sent, st->msgs_sent);
	SNAP(msgs_dropped, st->msgs_dropped);
	SNAP(bytes_received, st->bytes_received);
	SNAP(bytes_sent, st->bytes_sent);
	SNAP(packets_received, st->packets_received);
	SNAP(packets_sent, st->packets_sent);
	SNAP(connections_total, st->connections_total);
	SNAP(protocol_errors, st->protocol_errors);
	SNAP(subscriptions, subidx_count(w->subs));
	SNAP(output_memory, w->output_memory);
	SNAP(output_dropped, st->output_dropped);
	SNAP(queue_dropped, st->queue_dropped);
	SNAP(tls_handshakes, st->tls_handshakes);
	SNAP(tls_handshake_failures, st->tls_handshake_failures);
	if (w->ps) {
		SNAP(persist_commits, w->ps->stats.commits);
		SNAP(persist_records, w->ps->stats.records);
		SNAP(persist_bytes, w->ps->stats.bytes);
		SNAP(persist_refused, w->ps->stats.refused);
		SNAP(persist_syncs, w->ps->stats.syncs);
		SNAP(persist_errors, w->ps->stats.errors);
		SNAP(persist_compactions, w->ps->stats.compactions);
	}
	for (unsigned q = 0; q < 3; q++) {
		SNAP(pub_in[q], st->pub_in[q]);
		SNAP(pub_in_bytes[q], st->pub_in_bytes[q]);
		SNAP(pub_out[q], st->pub_out[q]);
		SNAP(pub_out_bytes[q], st->pub_out_bytes[q]);
	}
	SNAP(channel_dropped, w->xw.stats.dropped);
	SNAP(expired_dropped, st->expired_dropped);
	SNAP(too_large_dropped, st->too_large_dropped);
	SNAP(other_dropped, worker_other_dropped(w));
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX; i++)
		SNAP(accepted[i], st->accepted[i]);
	SNAP(queued, w->queued);
	SNAP(retained, retain_count(w->retained) - w->tombs_stored);
	SNAP(loop_iterations, w->ring.stats.batches);
	SNAP(cqes, w->ring.stats.cqes);
	SNAP(sends, st->sends);
	SNAP(enobufs, w->ring.stats.enobufs);
	SNAP(http_requests, st->http_requests);
	for (unsigned i = 0; i <= METRICS_LOOP_BUCKETS; i++)
		SNAP(loop_counts[i], w->loop.counts[i]);
	SNAP(loop_sum_ns, w->loop.sum_ns);
#undef SNAP
}

/* Publishes this worker's counters for $SYS and the metrics, which sum every worker's. */
void worker_snapshot(struct worker *w)
{
	worker_snapshot_fill(w, &w->b->shared.snap[w->index]);
}

/*
 * Once per HOUSEKEEPING_MS: the timers that are due (keep alive, CONNECT timeout, stuck closes,
 * delayed wills, session expiry), listeners to re-arm, $SYS. Nothing here walks every
 * connection or session.
 */
static void worker_housekeeping(struct worker *w)
{
	uint64_t now = w->now_ms;

	w->next_housekeeping_ms = now + HOUSEKEEPING_MS;
	worker_timers_advance(w);
	if (w->mconns)
		metrics_housekeeping(w);
	for (unsigned i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];

		if (!l->armed && !w->stopping) {
			ring_accept(&w->ring, &l->io, l->fd);
			l->armed = true;
		}
	}
	/* Tombstones: kept with several workers, and in a cluster (route_retain_store). */
	if (w->nworkers > 1 || w->cl)
		worker_tombs_expire(w);
	if (w->nworkers > 1) {
		worker_snapshot(w);
		if (w->index == 0)
			reload_housekeeping(w);
	}
	if (w->index == 0)
		service_tick(w);
	persist_housekeeping(w);
	limits_housekeeping(w);
	if (w->nbridges)
		bridge_tick(w);
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

#define BATCH_BYTES_MAX (256u << 10) /* output gathered past which a budget waits no longer */

/*
 * Whether the output gathered leaves at this batch end. Without a budget, always (as soon as
 * possible: the batch itself is the batching). With max_batch_delay_us, output waits for more
 * to join it until the oldest of it has waited the budget, or enough has gathered that a send
 * carries many messages anyway: fewer, fuller sends at moderate rates, no message held longer
 * than the budget, and the input is never delayed, only the output.
 */
static bool worker_flush_now(struct worker *w)
{
	if (!w->batch_delay_us || w->stopping || !w->flush_list) {
		w->flush_due_us = 0;
		w->batch_bytes = 0;
		return true;
	}
	if (!w->flush_due_us)
		w->flush_due_us = w->now_us + w->batch_delay_us;
	if (w->now_us < w->flush_due_us && w->batch_bytes < BATCH_BYTES_MAX)
		return false;
	w->flush_due_us = 0;
	w->batch_bytes = 0;
	return true;
}

/*
 * Walks the connections with something to do at the batch end: closes asked for during the
 * batch, receives re-armed, and (when `send`) one send per connection with output. Those that
 * keep output back stay on the list.
 */
static void worker_flush(struct worker *w, bool send)
{
	struct conn *kept = NULL;

	while (w->flush_list) {
		struct conn *c = w->flush_list;

		w->flush_list = NULL;
		while (c) {
			struct conn *next = c->flush_next;

			c->on_flush_list = false;
			c->flush_next = NULL;
			if (c->close_later)
				conn_close(c, false, c->close_later);
			if (c->recv_starved && conn_reading(c)) {
				c->recv_starved = false;
				ring_recv(&w->ring, &c->io, c->fd);
				c->recv_armed = true;
			}
			/* A closing connection's last packets never wait. */
			if (send || c->state == CONN_CLOSING) {
				conn_flush(c);
			} else if (!c->on_flush_list) {
				c->on_flush_list = true;
				c->flush_next = kept;
				kept = c;
			}
			c = next;
		}
	}
	w->flush_list = kept;
}

/* End of a completion batch: one send per connection with output; re-arm starved recvs. */
static void worker_batch_end(struct worker *w)
{
	/* Also while stopping: what other workers handed over before they stopped (a retained
	 * write, a message for a durable session) is state to keep. */
	if (w->nworkers > 1) {
		xw_drain(w);
		if (w->paused && w->xw.backlog < XW_BACKLOG_LOW && !w->stopping)
			worker_resume_paused(w);
	}
	if (w->cl)
		cluster_drain(w);
	worker_log_flush(w);
	/* What the handlers forwarded is published to the other workers before any reply
	 * leaves: a client that got its PUBACK or SUBACK and acts on it at another worker finds
	 * it there (xw_drain_early). */
	if (w->nworkers > 1)
		xw_flush(w);
	if (w->cl)
		cluster_flush(w);
	/* Before the flush: what a commit released (an empty one, others' acknowledgements)
	 * leaves in this batch, not after the next wait. */
	persist_batch_end(w);
	worker_flush(w, worker_flush_now(w));
	while (w->dead) {
		struct conn *c = w->dead;

		w->dead = c->next;
		conn_free(c);
	}
	if (w->nworkers > 1)
		xw_flush(w);
}

void worker_conn_shut(struct conn *c)
{
	if (c->state == CONN_ACTIVE && !c->bridge)
		out_disconnect(c, ST_RC_SERVER_SHUTTING_DOWN, NULL);
	if (c->ws && !c->ws->close_code)
		c->ws->close_code = WS_CLOSE_GOING_AWAY; /* RFC 6455 7.4.1 */
	conn_close(c, true, "broker shutting down");
}

static void worker_close_all(struct worker *w)
{
	metrics_close_all(w);
	bridge_stop_all(w); /* its connections say DISCONNECT as clients do */
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		worker_conn_shut(c);
	}
	if (w->sig_fd >= 0)
		ring_cancel_fd(&w->ring, w->sig_fd);
	for (unsigned i = 0; i < w->nlisteners; i++)
		ring_cancel_fd(&w->ring, w->listeners[i].fd);
	worker_batch_end(w);
}

/* Every other worker has stopped handing things over (shutdown), and what it did is handled. */
static bool worker_others_quiet(struct worker *w)
{
	if (w->nworkers == 1)
		return true;
	if (atomic_load_explicit(&w->b->shared.quiesced, memory_order_acquire) < w->nworkers)
		return false;
	xw_drain(w);
	return true;
}

/* How long the loop may wait: until housekeeping, or until output kept back is due. */
static int64_t worker_wait_us(const struct worker *w, int timeout_ms)
{
	int64_t us = (int64_t)timeout_ms * 1000;

	if (w->flush_due_us) {
		int64_t left =
		        w->flush_due_us > w->now_us ? (int64_t)(w->flush_due_us - w->now_us) : 0;

		if (left < us)
			us = left;
	}
	return us;
}

/* Start-up with persistence: until every worker is past a step (the slowest bounds it). */
static void worker_replay_wait(struct worker *w, _Atomic unsigned *left)
{
	while (atomic_load_explicit(left, memory_order_acquire) != 0 &&
	       !atomic_load_explicit(&w->b->shared.start_failed, memory_order_relaxed))
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
}

int worker_run(struct worker *w)
{
	uint64_t deadline;
	int ret;

	if (w->ps && w->b->chains) {
		persist_replay(w, &w->b->chains[w->index], &w->b->chains[0]);
		/* No worker routes before every worker restored its sessions: a message published
		 * on one whose subscriber's worker has not yet put its subscriptions back in the
		 * interest summary would reach nobody, and be acknowledged (a resent QoS 2 message
		 * was seen lost so). Start-up only; the slowest replay bounds the wait. */
		worker_replay_wait(w, &w->b->replay_left);
		persist_origin_begin(w);
		/* What replay queued for other workers (a shared group's member joins the group
		 * on the group's worker) is in place everywhere before anyone routes: otherwise the
		 * join waited for its worker's first batch end, and messages published meanwhile
		 * reached no group and were acknowledged (seen: dozens after each crash). */
		if (w->nworkers > 1) {
			xw_flush(w);
			atomic_fetch_sub_explicit(&w->b->replay_flush_left, 1,
			                          memory_order_acq_rel);
			worker_replay_wait(w, &w->b->replay_flush_left);
			xw_drain(w);
			atomic_fetch_sub_explicit(&w->b->replay_drain_left, 1,
			                          memory_order_acq_rel);
			worker_replay_wait(w, &w->b->replay_drain_left);
		}
	}
	if (bridge_start_all(w) != ST_OK) {
		log_msg(&w->log, LOG_T_ERROR, "Out of memory starting the bridges.");
		return ST_ERR_NOMEM;
	}
	w->next_housekeeping_ms = w->now_ms + HOUSEKEEPING_MS;
	/* Worker 0 is the main thread, the one that talks to the service manager. */
	if (w->index == 0)
		service_ready(w);
	while (!w->stopping) {
		int timeout = (int)(w->next_housekeeping_ms > w->now_ms
		                            ? w->next_housekeeping_ms - w->now_ms
		                            : 0);

		/* Entries waiting for room in a channel: look again soon, since nothing else
		 * may wake this worker while its publishers are paused. */
		if (w->xw.backlog && timeout > 1)
			timeout = 1;
		/* Messages from the cluster waiting already: look, do not sleep. */
		if (w->cl && !cluster_before_wait(w))
			timeout = 0;
		ret = ring_wait_us(&w->ring, worker_wait_us(w, timeout));
		if (w->cl)
			cluster_after_wait(w);
		if (ret < 0) {
			log_msg(&w->log, LOG_T_ERROR, "%s wait: %s",
			        ring_backend_name(w->ring.backend), strerror(-ret));
			return ST_ERR_SYS;
		}
		/* Before the handlers run: a connection lost during a wait of up to
		 * HOUSEKEEPING_MS must not date its will delay or session expiry from the
		 * wait's start (a 3 s will delay was seen cut to 2.9 s), nor a packet its
		 * keep alive. */
		worker_tick_clock(w);
		ring_reap(&w->ring);
		if (w->nworkers > 1 &&
		    atomic_load_explicit(&w->b->shared.stopping, memory_order_acquire))
			w->stopping = true;
		if (w->nworkers > 1)
			reload_adopt(w);
		if (w->now_ms >= w->next_housekeeping_ms)
			worker_housekeeping(w);
		worker_batch_end(w);
		if (w->loop_timing)
			metrics_loop_observe(&w->loop, worker_clock_ns() - w->loop_start_ns);
	}
	/* Drain: let closing connections and cancelled operations complete (bounded). */
	worker_close_all(w);
	/* This worker hands nothing more over: the others may finish once all have said so. */
	if (w->nworkers > 1) {
		atomic_fetch_add_explicit(&w->b->shared.quiesced, 1, memory_order_acq_rel);
		xw_wake_all(w);
	}
	deadline = w->now_ms + 2000;
	while ((w->conns || w->mconns || w->sig_io.pending || w->nlisteners) &&
	       w->now_ms < deadline) {
		bool listening = false;

		for (unsigned i = 0; i < w->nlisteners; i++)
			listening |= w->listeners[i].io.pending > 0;
		if (!w->conns && !w->mconns && !w->sig_io.pending && !listening &&
		    worker_others_quiet(w))
			break;
		if (ring_wait_us(&w->ring, 100000) < 0)
			break;
		worker_tick_clock(w);
		ring_reap(&w->ring);
		for (struct conn *c = w->conns; c; c = c->next)
			if (c->state == CONN_CLOSING && !c->eof && w->now_ms - c->closing_ms > 500)
				conn_abort(c);
		worker_batch_end(w);
	}
	persist_shutdown(w);
	if (log_enabled(&w->log, LOG_T_DEBUG))
		log_msg(&w->log, LOG_T_DEBUG,
		        "Worker %u: %" PRIu64 " PUBLISH packets in %" PRIu64 " sends, %" PRIu64
		        " loop iterations, %" PRIu64 " completions.",
		        w->index, w->stats.msgs_sent, w->stats.sends, w->ring.stats.batches,
		        w->ring.stats.cqes);
	/* Only the epoll loop counts them (io_uring: one io_uring_enter per iteration). */
	if (w->ring.stats.syscalls && log_enabled(&w->log, LOG_T_DEBUG))
		log_msg(&w->log, LOG_T_DEBUG, "Worker %u: %" PRIu64 " system calls of the %s loop.",
		        w->index, w->ring.stats.syscalls, ring_backend_name(w->ring.backend));
	if (w->nworkers > 1 && log_enabled(&w->log, LOG_T_DEBUG)) {
		const struct xw_stats *x = &w->xw.stats;

		log_msg(&w->log, LOG_T_DEBUG,
		        "Worker %u: %" PRIu64 " loop iterations, %" PRIu64
		        " messages to other workers, "
		        "%" PRIu64 " entries from them, %" PRIu64 " doorbells, %" PRIu64
		        " dropped, %" PRIu64 " held, %" PRIu64 " connections handed over, %" PRIu64
		        " publishers paused.",
		        w->index, w->ring.stats.batches, x->forwarded, x->received, x->doorbells,
		        x->dropped, x->held, x->handoffs, w->stats.paused);
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
	persist_fini(w);
	metrics_fini(w);
	/* Connections still open (the drain timed out) are freed with their sockets. */
	while (w->conns) {
		struct conn *c = w->conns;

		w->conns = c->next;
		if (c->session)
			c->session->conn = NULL;
		conn_free(c);
	}
	bridge_free_all(w);
	for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions);
	     i = hmap_next(&w->sessions, i + 1))
		session_free(w->sessions.slots[i].val);
	hmap_fini(&w->sessions);
	hmap_fini(&w->sessions_by_gen);
	if (w->subs)
		share_registry_fini(&w->shares, w->subs);
	while (w->tomb_len) {
		msg_unref(w->tombs[w->tomb_head].m);
		w->tomb_head = (w->tomb_head + 1) & (w->tomb_cap - 1);
		w->tomb_len--;
	}
	free(w->tombs);
	wheel_fini(&w->conn_timers);
	wheel_fini(&w->sess_timers);
	xw_fini(w);
	interest_local_fini(&w->interest);
	if (w->subs)
		subidx_free(w->subs);
	if (w->retained)
		retain_free(w->retained, worker_release_retained, NULL);
	free(w->listeners);
	free(w->matches);
	free(w->shared);
	free(w->ids);
	free(w->logq);
	free(w->tls_buf);
	free(w->tls_stage);
	free(w->ws_buf);
	free(w->scratch);
	free(w->mount_buf);
}
