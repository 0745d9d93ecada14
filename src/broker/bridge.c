/*
 * A bridge's life cycle on its home worker's ring (bridge.h): the attempts (name lookup off
 * the loop, non-blocking connect, TLS), the retries with back-off and the address choice
 * (the bridge layer's, bridge/backoff.h and bridge/address.h), start_type, keep alive, the
 * main address's probe, its figures for $SYS and the metrics, and the end at shutdown. What
 * it says on the connection is bridge_proto.c's.
 */
#include "bridge.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "conn.h"
#include "conn_tls.h"
#include "base/log.h"
#include "io/tls.h"
#include "route.h"
#include "session.h"
#include "worker.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define BRIDGE_SYS_TOPIC_MAX 1024 /* $SYS/broker/bridges/NAME/... */

static void bridge_attempt(struct bridge *b);

static const struct config_bridge_addr *bridge_addr(const struct bridge *b)
{
	return &b->cfg->addrs[bridge_addr_current(&b->sel)];
}

/* ---- retries ---- */

/* The connection ended or an attempt failed: when (and whether) to try again. */
static void bridge_schedule(struct bridge *b, bool failed)
{
	struct worker *w = b->w;

	if (b->stopping) {
		b->state = BRIDGE_STOPPED;
		return;
	}
	if (b->cfg->start_type == CONFIG_BRIDGE_ONCE) {
		b->state = BRIDGE_STOPPED;
		log_msg(&w->log, LOG_T_NOTICE, "Bridge %s stopped (start_type once).",
		        bridge_name(b));
		return;
	}
	if (b->cfg->start_type == CONFIG_BRIDGE_LAZY && !failed) {
		b->state = BRIDGE_IDLE;
		return;
	}
	b->delay_ms = bridge_backoff_next_ms(&b->bo);
	if (b->to_main || b->retry_now) {
		/* The main address answers again, or the same one is tried another way: now. */
		b->to_main = false;
		b->retry_now = false;
		b->delay_ms = 0;
	} else if (failed) {
		bridge_addr_failed(&b->sel);
	}
	b->next_ms = w->now_ms + b->delay_ms;
	b->state = BRIDGE_WAITING;
}

static void bridge_fail(struct bridge *b, const char *why)
{
	struct worker *w = b->w;
	const struct config_bridge_addr *a = bridge_addr(b);

	b->stats.failures++;
	if (b->fd >= 0) {
		close(b->fd);
		b->fd = -1;
	}
	log_msg(&w->log, LOG_T_WARNING, "Bridge %s: connecting to %s port %u failed: %s.",
	        bridge_name(b), a->host, a->port, why);
	bridge_schedule(b, true);
	if (b->state == BRIDGE_WAITING)
		log_msg(&w->log, LOG_T_INFORMATION, "Bridge %s: next attempt in %llu ms.",
		        bridge_name(b), (unsigned long long)b->delay_ms);
}

/* ---- an attempt ---- */

static void bridge_connect_to(struct bridge *b, const struct resolve_addr *a)
{
	struct worker *w = b->w;

	b->dest = *a;
	b->fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (b->fd < 0) {
		bridge_fail(b, strerror(errno));
		return;
	}
	if (b->cfg->bind_address[0]) {
		struct addrinfo hints = {.ai_family = a->family,
		                         .ai_socktype = SOCK_STREAM,
		                         .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
		struct addrinfo *res = NULL;
		bool bound = getaddrinfo(b->cfg->bind_address, NULL, &hints, &res) == 0 && res &&
		             bind(b->fd, res->ai_addr, res->ai_addrlen) == 0;

		if (res)
			freeaddrinfo(res);
		if (!bound) {
			bridge_fail(b, "bridge_bind_address cannot be bound");
			return;
		}
	}
	b->state = BRIDGE_CONNECTING;
	ring_connect(&w->ring, &b->io, b->fd, (const struct sockaddr *)&b->dest.sa, b->dest.len);
}

static void bridge_resolved(struct resolve *rs, int status)
{
	struct bridge *b = rs->arg;

	if (b->stopping) {
		b->state = BRIDGE_STOPPED;
		return;
	}
	if (status != 0 || rs->count == 0) {
		bridge_fail(b, resolve_strerror(rs, status));
		return;
	}
	bridge_connect_to(b, &rs->addrs[0]);
}

static void bridge_attempt(struct bridge *b)
{
	struct worker *w = b->w;
	const struct config_bridge_addr *a = bridge_addr(b);
	int rc;

	b->state = BRIDGE_CONNECTING;
	rc = resolve_start(&b->rs, &w->ring, a->host, a->port, bridge_resolved, b);
	if (rc == RESOLVE_PENDING)
		return; /* bridge_resolved goes on */
	bridge_resolved(&b->rs, rc);
}

/* The TCP connection is there: the MQTT connection starts (through TLS if configured). */
static void bridge_connected(struct bridge *b)
{
	struct worker *w = b->w;
	int one = 1, fd = b->fd;
	struct conn *c;

	b->fd = -1;
	if (w->b->cfg.set_tcp_nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(w, fd);
	if (!c) {
		close(fd);
		bridge_fail(b, "out of memory");
		return;
	}
	c->bridge = b;
	c->level = b->level;
	c->listener = 0;
	c->accepted_by = (uint16_t)w->index;
	c->adopted = true; /* made on its home worker: never handed over */
	b->c = c;
	b->state = BRIDGE_CONNACK;
	if (b->level == ST_MQTT_5) {
		c->v5 = calloc(1, sizeof(*c->v5));
		if (!c->v5) {
			conn_close(c, false, "out of memory");
			return;
		}
		c->v5->receive_max_in = w->b->inflight_max;
		c->v5->max_packet_out = b->cfg->max_packet_size;
	}
	if (b->tls && conn_tls_init_client(c, b->tls, bridge_addr(b)->host) != ST_OK)
		return; /* closing, logged */
	if (bridge_send_connect(b, c) != ST_OK)
		conn_close(c, false, "CONNECT cannot be encoded");
}

static void bridge_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct bridge *b = container_of(io, struct bridge, io);

	(void)r;
	if (cqe->op != RING_OP_CONNECT || b->state != BRIDGE_CONNECTING || b->fd < 0)
		return;
	if (b->stopping) {
		close(b->fd);
		b->fd = -1;
		b->state = BRIDGE_STOPPED;
		return;
	}
	if (cqe->res < 0) {
		bridge_fail(b, strerror(-cqe->res));
		return;
	}
	bridge_connected(b);
}

void bridge_up(struct bridge *b)
{
	struct worker *w = b->w;

	b->state = BRIDGE_UP;
	bridge_backoff_reset(&b->bo);
	bridge_addr_connected(&b->sel, w->now_ms);
	b->ping_ms = w->now_ms;
	b->active_ms = w->now_ms;
	b->seen_msgs = b->stats.msgs_in + b->stats.msgs_out;
	b->stats.connects++;
}

void bridge_conn_closing(struct conn *c, bool graceful, const char *reason)
{
	struct bridge *b = c->bridge;
	struct worker *w = b->w;

	(void)graceful;
	if (b->c != c)
		return;
	b->c = NULL;
	if (b->state == BRIDGE_UP) {
		log_msg(&w->log, LOG_T_NOTICE, "Bridge %s disconnected: %s.", bridge_name(b),
		        reason);
		bridge_notify_local(b, false);
		/* A clean local session ends with the connection (handle_conn_closing). */
		if (b->s && b->s->clean) {
			b->s->bridge = NULL;
			b->s = NULL;
		}
		/* A lost connection moves on as a failed attempt would (Mosquitto's address
		 * rotation), except the bridge's own ends: idle, back to the main address. */
		bridge_schedule(b, !graceful && !b->to_main);
	} else if (b->stopping) {
		b->state = BRIDGE_STOPPED;
	} else {
		bridge_fail(b, reason);
	}
}

/* ---- the main address's probe ---- */

/*
 * round_robin false: while connected to a secondary address, the main one (the first) is
 * probed with a TCP connect every BRIDGE_MAIN_RETRY_MS; once it answers, the bridge leaves
 * the secondary (DISCONNECT) and connects to the main one (mosquitto.conf(5)).
 */
static void bridge_on_probe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct bridge *b = container_of(io, struct bridge, probe_io);

	(void)r;
	if (cqe->op != RING_OP_CONNECT || b->probe_fd < 0)
		return;
	close(b->probe_fd);
	b->probe_fd = -1;
	if (b->stopping || b->state != BRIDGE_UP || !b->c)
		return;
	if (cqe->res < 0) {
		bridge_addr_main_down(&b->sel, b->w->now_ms);
		return;
	}
	log_msg(&b->w->log, LOG_T_NOTICE,
	        "Bridge %s: its main address %s port %u answers again: moving back to it.",
	        bridge_name(b), b->cfg->addrs[0].host, b->cfg->addrs[0].port);
	bridge_addr_main_up(&b->sel);
	b->to_main = true;
	bridge_disconnect(b->c);
	conn_close(b->c, true, "moving back to the main address");
}

static void bridge_probe_resolved(struct resolve *rs, int status)
{
	struct bridge *b = rs->arg;

	if (b->stopping || b->state != BRIDGE_UP || status != 0 || rs->count == 0) {
		bridge_addr_main_down(&b->sel, b->w->now_ms);
		return;
	}
	b->probe_dest = rs->addrs[0];
	b->probe_fd = socket(b->probe_dest.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                     IPPROTO_TCP);
	if (b->probe_fd < 0) {
		bridge_addr_main_down(&b->sel, b->w->now_ms);
		return;
	}
	ring_connect(&b->w->ring, &b->probe_io, b->probe_fd,
	             (const struct sockaddr *)&b->probe_dest.sa, b->probe_dest.len);
}

static void bridge_probe_main(struct bridge *b)
{
	const struct config_bridge_addr *a = &b->cfg->addrs[0];
	int rc;

	if (b->probe_fd >= 0 || resolve_is_pending(&b->probe_rs))
		return;
	/* Not due again until this one has answered (main_down or main_up). */
	bridge_addr_main_down(&b->sel, b->w->now_ms);
	rc = resolve_start(&b->probe_rs, &b->w->ring, a->host, a->port, bridge_probe_resolved, b);
	if (rc != RESOLVE_PENDING)
		bridge_probe_resolved(&b->probe_rs, rc);
}

/* ---- the worker's side ---- */

static int bridge_init(struct bridge *b, struct worker *w, const struct config_bridge *bc,
                       struct bridge_snapshot *snap)
{
	char err[256];

	b->io.fn = bridge_on_cqe;
	b->probe_io.fn = bridge_on_probe;
	b->w = w;
	b->cfg = bc;
	b->snap = snap;
	b->fd = -1;
	b->probe_fd = -1;
	b->level = bc->protocol_version;
	if (getrandom(&b->rnd, sizeof(b->rnd), GRND_NONBLOCK) != sizeof(b->rnd))
		b->rnd = w->now_us ^ (uint64_t)(uintptr_t)b;
	bridge_backoff_init(&b->bo, bc->restart_base_s, bc->restart_cap_s, bridge_rand_splitmix64,
	                    &b->rnd);
	bridge_addr_init(&b->sel, bc);
	b->lsubs = calloc(bc->topic_count, sizeof(*b->lsubs));
	b->rsubs = calloc(bc->topic_count, sizeof(*b->rsubs));
	b->unsubs = calloc(bc->topic_count, sizeof(*b->unsubs));
	if (!b->lsubs || !b->rsubs || !b->unsubs)
		return ST_ERR_NOMEM;
	b->nlsubs = bridge_local_subs(bc, b->lsubs, bc->topic_count);
	b->nrsubs = bridge_remote_subs(bc, b->rsubs, bc->topic_count);
	b->nunsubs =
	        bc->attempt_unsubscribe ? bridge_remote_unsubs(bc, b->unsubs, bc->topic_count) : 0;
	if (bc->tls) {
		b->tls = calloc(1, sizeof(*b->tls));
		if (!b->tls)
			return ST_ERR_NOMEM;
		if (conn_tls_client_new(b->tls, bc, err, sizeof(err)) != ST_OK) {
			/* Its files are unusable: this bridge stays down, the broker runs on. */
			log_msg(&w->log, LOG_T_ERROR, "Bridge %s: TLS cannot be set up: %s.",
			        bridge_name(b), err);
			free(b->tls);
			b->tls = NULL;
			b->state = BRIDGE_STOPPED;
			return ST_OK;
		}
	}
	if (!bc->local_cleansession && bridge_session(b) != ST_OK)
		return ST_ERR_NOMEM;
	b->next_ms = w->now_ms;
	b->state = bc->start_type == CONFIG_BRIDGE_LAZY ? BRIDGE_IDLE : BRIDGE_WAITING;
	if (b->state == BRIDGE_WAITING)
		bridge_attempt(b);
	return ST_OK;
}

int bridge_start_all(struct worker *w)
{
	const struct config *cfg = &w->b->cfg;
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->bridge_count; i++) {
		const char *id = cfg->bridges[i].local_clientid;

		if (worker_home(w, (const uint8_t *)id, strlen(id)) == w->index)
			n++;
	}
	if (n == 0)
		return ST_OK;
	w->bridges = calloc(n, sizeof(*w->bridges));
	w->bridge_buf = malloc(BRIDGE_TOPIC_BUF);
	if (!w->bridges || !w->bridge_buf)
		return ST_ERR_NOMEM;
	for (unsigned i = 0; i < cfg->bridge_count; i++) {
		const struct config_bridge *bc = &cfg->bridges[i];

		if (worker_home(w, (const uint8_t *)bc->local_clientid,
		                strlen(bc->local_clientid)) != w->index)
			continue;
		if (bridge_init(&w->bridges[w->nbridges++], w, bc, &w->b->shared.bridge_snap[i]) !=
		    ST_OK)
			return ST_ERR_NOMEM;
	}
	return ST_OK;
}

/* Its figures for the metrics, and every sys_interval its $SYS topics
 * ($SYS/broker/bridges/NAME/...), published as the broker's others are: retained, only what
 * changed. */
static void bridge_figures(struct bridge *b)
{
	static const char *const names[5] = {"connected", "messages/sent", "messages/received",
	                                     "queued", "dropped"};
	struct worker *w = b->w;
	uint64_t v[5] = {b->state == BRIDGE_UP, b->stats.msgs_out, b->stats.msgs_in,
	                 b->s ? b->s->q_len : 0, b->stats.dropped};
	uint32_t every = w->b->cfg.sys_interval_s;

	atomic_store_explicit(&b->snap->connected, v[0], memory_order_relaxed);
	atomic_store_explicit(&b->snap->msgs_out, v[1], memory_order_relaxed);
	atomic_store_explicit(&b->snap->msgs_in, v[2], memory_order_relaxed);
	atomic_store_explicit(&b->snap->queued, v[3], memory_order_relaxed);
	atomic_store_explicit(&b->snap->dropped, v[4], memory_order_relaxed);
	atomic_store_explicit(&b->snap->connects, b->stats.connects, memory_order_relaxed);
	atomic_store_explicit(&b->snap->failures, b->stats.failures, memory_order_relaxed);
	if (!every || w->now_ms < b->sys_next_ms)
		return;
	b->sys_next_ms = w->now_ms + (uint64_t)every * 1000;
	for (unsigned i = 0; i < 5; i++) {
		char topic[BRIDGE_SYS_TOPIC_MAX], val[24];
		struct pub_view pv;

		if (b->sys_sent && b->sys_last[i] == v[i])
			continue;
		b->sys_last[i] = v[i];
		snprintf(topic, sizeof(topic), "$SYS/broker/bridges/%s/%s", bridge_name(b),
		         names[i]);
		snprintf(val, sizeof(val), "%llu", (unsigned long long)v[i]);
		pv = (struct pub_view){
		        .topic = {(const uint8_t *)topic, (uint32_t)strlen(topic)},
		        .payload = {(const uint8_t *)val, (uint32_t)strlen(val)},
		};
		route_publish(w, NULL, &pv, 0, true);
	}
	b->sys_sent = true;
}

/* UP: a PINGREQ each keep alive (the remote's silence for 1.5 of them closes the connection,
 * timers.c), the main address's probe, lazy's idle stop. */
static void bridge_tick_up(struct bridge *b)
{
	static const uint8_t ping[2] = {ST_PINGREQ << 4, 0};
	struct worker *w = b->w;
	uint64_t msgs = b->stats.msgs_in + b->stats.msgs_out;

	if (!b->c)
		return;
	if (b->c->keepalive_s && w->now_ms - b->ping_ms >= (uint64_t)b->c->keepalive_s * 1000) {
		conn_queue_bytes(b->c, ping, sizeof(ping));
		b->ping_ms = w->now_ms;
	}
	if (bridge_addr_main_due(&b->sel, w->now_ms))
		bridge_probe_main(b);
	if (msgs != b->seen_msgs) {
		b->seen_msgs = msgs;
		b->active_ms = w->now_ms;
	} else if (b->cfg->start_type == CONFIG_BRIDGE_LAZY &&
	           w->now_ms - b->active_ms >= (uint64_t)b->cfg->idle_timeout_s * 1000) {
		log_msg(&w->log, LOG_T_NOTICE,
		        "Bridge %s idle for %u s: stopping it (start_type lazy).", bridge_name(b),
		        b->cfg->idle_timeout_s);
		bridge_disconnect(b->c);
		conn_close(b->c, true, "idle (start_type lazy)");
	}
}

void bridge_tick(struct worker *w)
{
	for (unsigned i = 0; i < w->nbridges; i++) {
		struct bridge *b = &w->bridges[i];

		bridge_figures(b);
		switch (b->state) {
		case BRIDGE_WAITING:
			if (w->now_ms >= b->next_ms)
				bridge_attempt(b);
			break;
		case BRIDGE_IDLE:
			/* Lazy: started once `threshold` messages wait for the remote. */
			if (b->s && b->s->q_len >= b->cfg->threshold)
				bridge_attempt(b);
			break;
		case BRIDGE_UP:
			bridge_tick_up(b);
			break;
		default:
			break;
		}
	}
}

void bridge_stop_all(struct worker *w)
{
	for (unsigned i = 0; i < w->nbridges; i++) {
		struct bridge *b = &w->bridges[i];

		b->stopping = true;
		resolve_cancel(&b->rs, &w->ring);
		resolve_cancel(&b->probe_rs, &w->ring);
		if (b->fd >= 0) {
			shutdown(b->fd, SHUT_RDWR);
			ring_cancel_fd(&w->ring, b->fd);
		}
		if (b->probe_fd >= 0) {
			shutdown(b->probe_fd, SHUT_RDWR);
			ring_cancel_fd(&w->ring, b->probe_fd);
		}
		if (b->c)
			bridge_disconnect(b->c);
		/* An open connection ends through bridge_conn_closing; a connect in flight
		 * through its cancelled completion. */
		if (!b->c && b->fd < 0)
			b->state = BRIDGE_STOPPED;
	}
}

void bridge_free_all(struct worker *w)
{
	for (unsigned i = 0; i < w->nbridges; i++) {
		struct bridge *b = &w->bridges[i];

		if (b->fd >= 0)
			close(b->fd);
		if (b->probe_fd >= 0)
			close(b->probe_fd);
		free(b->lsubs);
		free(b->rsubs);
		free(b->unsubs);
		if (b->tls) {
			tls_client_fini(b->tls);
			free(b->tls);
		}
		if (b->s)
			b->s->bridge = NULL;
	}
	free(w->bridges);
	free(w->bridge_buf);
	w->bridges = NULL;
	w->bridge_buf = NULL;
	w->nbridges = 0;
}
