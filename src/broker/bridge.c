/*
 * The bridge client (bridge.h): its life cycle on the home worker's ring, the handshake it
 * drives (CONNECT, CONNACK, SUBSCRIBE, SUBACK), keep alive, back-off, notifications, and the
 * topic mapping both ways.
 */
#include "bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "broker.h"
#include "conn.h"
#include "base/log.h"
#include "out.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "starling/props.h"
#include "starling/topic.h"
#include "subdata.h"
#include "worker.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define BRIDGE_TOPIC_BUF     (2u * 65536u + 16u) /* a mapped topic: prefix + topic, bounded below */
#define BRIDGE_SYS_TOPIC_MAX 1024                /* $SYS/broker/bridges/NAME/... */
#define BRIDGE_SUBOPTS       (ST_SUBOPT_NO_LOCAL | ST_SUBOPT_RETAIN_AS_PUB)

static void bridge_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe);

/* "NAME" for the log. */
static const char *bname(const struct bridge *b)
{
	return b->cfg->name;
}

/* A DISCONNECT to the remote (a graceful end: it does not publish the bridge's will). */
static void bridge_disconnect(struct conn *c)
{
	static const uint8_t disc[2] = {ST_DISCONNECT << 4, 0};

	if (c->state != CONN_ACTIVE)
		return;
	if (c->level < ST_MQTT_5)
		conn_queue_bytes(c, disc, sizeof(disc));
	else
		out_disconnect(c, ST_RC_SUCCESS, NULL);
}

/* ---- topics ---- */

static char *cat(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = malloc(na + nb + 1);

	if (s) {
		memcpy(s, a, na);
		memcpy(s + na, b, nb + 1);
	}
	return s;
}

/*
 * The topic a rule maps `topic` to, from the side whose prefix is `from` (filter
 * from + pattern) to the side whose prefix is `to`: written into buf. -1: the rule does not
 * map it. An empty pattern maps the one topic `from` to `to` (mosquitto.conf(5)'s table).
 */
static int map_one(const struct config_bridge_topic *t, bool out, struct st_bytes topic,
                   uint8_t *buf, size_t cap)
{
	const char *from = out ? t->local_prefix : t->remote_prefix;
	const char *to = out ? t->remote_prefix : t->local_prefix;
	size_t nf = strlen(from), nt = strlen(to), np = strlen(t->pattern);

	if (np == 0) {
		if (topic.len != nf || memcmp(topic.ptr, from, nf) != 0 || nt > cap)
			return -1;
		memcpy(buf, to, nt);
		return (int)nt;
	}
	if (topic.len < nf || memcmp(topic.ptr, from, nf) != 0)
		return -1;
	if (!st_topic_matches((const uint8_t *)t->pattern, np, topic.ptr + nf, topic.len - nf))
		return -1;
	if (nt + topic.len - nf > cap || nt + topic.len - nf > 65535)
		return -1;
	memcpy(buf, to, nt);
	memcpy(buf + nt, topic.ptr + nf, topic.len - nf);
	return (int)(nt + topic.len - nf);
}

static int map_topic(const struct config_bridge *cfg, bool out, struct st_bytes topic, uint8_t *buf,
                     size_t cap)
{
	uint8_t want = out ? CONFIG_BRIDGE_OUT : CONFIG_BRIDGE_IN;

	for (unsigned i = 0; i < cfg->topic_count; i++) {
		const struct config_bridge_topic *t = &cfg->topics[i];
		int n;

		if (!(t->dir & want))
			continue;
		n = map_one(t, out, topic, buf, cap);
		if (n >= 0)
			return n;
	}
	return -1;
}

bool bridge_topic_out(const struct conn *c, struct st_bytes *topic)
{
	struct worker *w = c->w;
	int n = map_topic(c->bridge->cfg, true, *topic, w->bridge_buf, BRIDGE_TOPIC_BUF);

	if (n < 0)
		return false;
	*topic = (struct st_bytes){w->bridge_buf, (uint32_t)n};
	return true;
}

int bridge_topic_in(const struct conn *c, struct st_bytes *topic)
{
	struct worker *w = c->w;
	int n = map_topic(c->bridge->cfg, false, *topic, w->bridge_buf, BRIDGE_TOPIC_BUF);

	c->bridge->stats.msgs_in++;
	if (n <= 0)
		return 0;
	*topic = (struct st_bytes){w->bridge_buf, (uint32_t)n};
	return 1;
}

/* The filters each side subscribes to, made once. */
static int bridge_filters(struct bridge *b)
{
	const struct config_bridge *cfg = b->cfg;
	unsigned n = cfg->topic_count;

	b->rfilters = calloc(n, sizeof(char *));
	b->lfilters = calloc(n, sizeof(char *));
	b->unsub = calloc(n, sizeof(char *));
	b->rqos = calloc(n, 1);
	b->lqos = calloc(n, 1);
	if (!b->rfilters || !b->lfilters || !b->unsub || !b->rqos || !b->lqos)
		return ST_ERR_NOMEM;
	for (unsigned i = 0; i < n; i++) {
		const struct config_bridge_topic *t = &cfg->topics[i];
		char *r = cat(t->remote_prefix, t->pattern), *l = cat(t->local_prefix, t->pattern);

		if (!r || !l) {
			free(r);
			free(l);
			return ST_ERR_NOMEM;
		}
		if (t->dir & CONFIG_BRIDGE_IN) {
			b->rqos[b->nrfilters] = t->qos;
			b->rfilters[b->nrfilters++] = r;
			r = NULL;
		} else if (cfg->attempt_unsubscribe) {
			b->unsub[b->nunsub++] = r;
			r = NULL;
		}
		if (t->dir & CONFIG_BRIDGE_OUT) {
			b->lqos[b->nlfilters] = t->qos;
			b->lfilters[b->nlfilters++] = l;
			l = NULL;
		}
		free(r);
		free(l);
	}
	return ST_OK;
}

/* ---- the local session ---- */

/* The local subscriptions of the out topics (No Local, Retain As Published); with
 * `retained`, the local retained messages they match follow, as on a client's SUBSCRIBE. */
static void bridge_subscribe_local(struct bridge *b, bool retained)
{
	struct worker *w = b->w;
	struct session *s = b->s;

	for (unsigned i = 0; i < b->nlfilters; i++) {
		const uint8_t *f = (const uint8_t *)b->lfilters[i];
		size_t len = strlen(b->lfilters[i]);
		uint64_t data = subdata_make((uint8_t)(BRIDGE_SUBOPTS | b->lqos[i]), 0);
		int added;

		if (session_sub_find(s, f, len) < 0) {
			added = worker_sub_add(w, s, f, len, data);
			if (added < 0 || session_sub_add(s, f, len, data) != ST_OK) {
				if (added >= 0)
					worker_unsubscribe(w, s, f, len);
				log_msg(&w->log, LOG_T_ERROR,
				        "Bridge %s: out of memory subscribing to %s.", bname(b),
				        b->lfilters[i]);
				continue;
			}
		}
		if (retained && w->b->cfg.retain_available)
			route_retained(w, s, f, len, data);
	}
	/* What an earlier configuration subscribed to (a restored session) goes. */
	for (uint32_t i = 0; i < s->nsubs;) {
		const struct sess_sub *sub = &s->subs[i];
		bool keep = false;

		for (unsigned j = 0; j < b->nlfilters && !keep; j++)
			keep = strlen(b->lfilters[j]) == sub->filter_len &&
			       memcmp(b->lfilters[j], sub->filter, sub->filter_len) == 0;
		if (keep) {
			i++;
			continue;
		}
		worker_unsubscribe(w, s, sub->filter, sub->filter_len);
		session_sub_remove(s, sub->filter, sub->filter_len);
	}
}

/* Finds (a restored one) or makes the local session. */
static int bridge_session(struct bridge *b)
{
	struct worker *w = b->w;
	const char *id = b->cfg->local_clientid;
	size_t len = strlen(id);
	struct session *s = worker_session_find(w, (const uint8_t *)id, len);
	uint16_t window = w->b->inflight_max;

	if (!s) {
		s = session_new((const uint8_t *)id, len, window, w->b->cfg.max_queued_messages);
		if (!s)
			return ST_ERR_NOMEM;
		s->q_bytes_max = w->b->cfg.limits.max_queued_bytes;
		s->inflight_bytes_max = w->b->cfg.limits.max_inflight_bytes;
		if (worker_session_add(w, s) != ST_OK) {
			session_free(s);
			return ST_ERR_NOMEM;
		}
	}
	if (window > BRIDGE_INFLIGHT_MAX)
		window = BRIDGE_INFLIGHT_MAX;
	session_set_inflight_max(s, window);
	s->bridge = b;
	s->protocol = b->level;
	s->clean = b->cfg->local_cleansession;
	s->expiry_s = s->clean ? 0 : UINT32_MAX;
	s->had_expiry = !s->clean;
	s->expire_at_ms = 0;
	b->s = s;
	if (access_attach(w, s, (const uint8_t *)b->cfg->local_username,
	                  b->cfg->local_username ? strlen(b->cfg->local_username) : 0, 0) != ST_OK)
		return ST_ERR_NOMEM;
	persist_session_attach(w, s);
	bridge_subscribe_local(b, false);
	return ST_OK;
}

/* ---- notifications ---- */

/* Publishes the bridge's state ("1" up, "0" down) locally, retained. */
static void bridge_notify_local(struct bridge *b, bool up)
{
	const char *topic = b->cfg->notification_topic;
	struct pub_view v = {
	        .topic = {(const uint8_t *)topic, (uint32_t)strlen(topic)},
	        .payload = {(const uint8_t *)(up ? "1" : "0"), 1},
	};

	if (!b->cfg->notifications)
		return;
	/* As the bridge's session: its own No Local subscriptions do not send it back out. */
	route_publish(b->w, b->s, &v, 1, true);
}

/* ---- attempts ---- */

/* Decorrelated jitter (mosquitto.conf(5) restart_timeout): base..min(cap, 3 x the last). */
static uint32_t bridge_next_delay(struct bridge *b)
{
	uint32_t base = b->cfg->restart_base_s * 1000, cap = b->cfg->restart_cap_s * 1000;
	uint32_t hi, d;

	if (cap <= base)
		return base;
	hi = b->delay_ms ? b->delay_ms * 3 : base;
	if (hi < base)
		hi = base;
	if (hi > cap)
		hi = cap;
	d = base + (hi > base ? (uint32_t)(random() % (hi - base + 1)) : 0);
	return d;
}

static void bridge_schedule(struct bridge *b, bool failed)
{
	struct worker *w = b->w;

	if (b->stopping) {
		b->state = BRIDGE_STOPPED;
		return;
	}
	if (b->cfg->start_type == CONFIG_BRIDGE_ONCE) {
		b->state = BRIDGE_STOPPED;
		log_msg(&w->log, LOG_T_NOTICE, "Bridge %s stopped (start_type once).", bname(b));
		return;
	}
	if (b->cfg->start_type == CONFIG_BRIDGE_LAZY && !failed) {
		b->state = BRIDGE_IDLE;
		return;
	}
	b->delay_ms = failed ? bridge_next_delay(b) : b->cfg->restart_base_s * 1000;
	if (b->to_main) {
		/* The probe found the main address back: go there now. */
		b->to_main = false;
		b->delay_ms = 0;
	}
	b->next_ms = w->now_ms + b->delay_ms;
	b->state = BRIDGE_WAITING;
	/* round_robin false: the first address is the main one, tried again first. */
	if (failed && b->cfg->addr_count > 1)
		b->addr = (b->addr + 1) % b->cfg->addr_count;
	else if (!b->cfg->round_robin)
		b->addr = 0;
}

static void bridge_fail(struct bridge *b, const char *why)
{
	struct worker *w = b->w;
	const struct config_bridge_addr *a = &b->cfg->addrs[b->addr];

	b->stats.failures++;
	if (b->fd >= 0) {
		close(b->fd);
		b->fd = -1;
	}
	bridge_schedule(b, true);
	log_msg(&w->log, LOG_T_WARNING,
	        "Bridge %s: connecting to %s port %u failed: %s; next attempt in %u ms.", bname(b),
	        a->host, a->port, why, b->state == BRIDGE_WAITING ? b->delay_ms : 0);
}

/* Resolves address i into sa without waiting: numeric addresses only here (a name goes to
 * the resolver). 0, or -errno. */
static int bridge_resolve_into(struct bridge *b, unsigned i, struct sockaddr_storage *sa,
                               socklen_t *len)
{
	const struct config_bridge_addr *a = &b->cfg->addrs[i];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", a->port);
	rc = getaddrinfo(a->host, port, &hints, &res);
	if (rc != 0 || !res)
		return -EINVAL;
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int bridge_resolve(struct bridge *b)
{
	return bridge_resolve_into(b, b->addr, &b->sa, &b->sa_len);
}

static void bridge_attempt(struct bridge *b)
{
	struct worker *w = b->w;
	int rc = bridge_resolve(b);

	if (rc < 0) {
		bridge_fail(b, "not a numeric address");
		return;
	}
	b->fd = socket(b->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (b->fd < 0) {
		bridge_fail(b, strerror(errno));
		return;
	}
	if (b->cfg->bind_address[0]) {
		struct addrinfo hints = {.ai_family = b->sa.ss_family,
		                         .ai_socktype = SOCK_STREAM,
		                         .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
		struct addrinfo *res = NULL;

		if (getaddrinfo(b->cfg->bind_address, NULL, &hints, &res) != 0 || !res ||
		    bind(b->fd, res->ai_addr, res->ai_addrlen) != 0) {
			if (res)
				freeaddrinfo(res);
			bridge_fail(b, "bridge_bind_address cannot be bound");
			return;
		}
		freeaddrinfo(res);
	}
	b->state = BRIDGE_CONNECTING;
	ring_connect(&w->ring, &b->io, b->fd, (const struct sockaddr *)&b->sa, b->sa_len);
}

/* Puts the CONNECT in the new connection's output. */
static int bridge_send_connect(struct bridge *b, struct conn *c)
{
	const struct config_bridge *cfg = b->cfg;
	struct st_packet pkt = {.type = ST_CONNECT};
	struct st_connect *ck = &pkt.connect;
	uint8_t props[16];
	struct st_prop_writer pw;
	size_t n;
	uint8_t *p;
	int len;

	ck->level = b->level;
	ck->clean_start = cfg->cleansession;
	ck->keepalive_s = cfg->keepalive_s;
	ck->client_id = (struct st_bytes){(const uint8_t *)cfg->remote_clientid,
	                                  (uint32_t)strlen(cfg->remote_clientid)};
	if (cfg->remote_username) {
		ck->username_flag = true;
		ck->username = (struct st_bytes){(const uint8_t *)cfg->remote_username,
		                                 (uint32_t)strlen(cfg->remote_username)};
		if (cfg->remote_password) {
			ck->password_flag = true;
			ck->password = (struct st_bytes){(const uint8_t *)cfg->remote_password,
			                                 (uint32_t)strlen(cfg->remote_password)};
		}
	}
	/* The remote publishes "0" on the notification topic if the bridge vanishes. */
	if (cfg->notifications && !cfg->notifications_local_only) {
		ck->will_flag = true;
		ck->will_qos = 1;
		ck->will_retain = true;
		ck->will_topic = (struct st_bytes){(const uint8_t *)cfg->notification_topic,
		                                   (uint32_t)strlen(cfg->notification_topic)};
		ck->will_payload = (struct st_bytes){(const uint8_t *)"0", 1};
	}
	if (b->level == ST_MQTT_5) {
		st_pw_init(&pw, props, sizeof(props));
		/* A persistent remote session must outlive the connection in MQTT 5. */
		if (!cfg->cleansession)
			st_pw_u32(&pw, ST_PROP_SESSION_EXPIRY, UINT32_MAX);
		st_pw_u16(&pw, ST_PROP_RECEIVE_MAXIMUM, b->w->b->inflight_max);
		ck->props = (struct st_bytes){props, (uint32_t)st_pw_len(&pw)};
	}
	n = st_packet_size(&pkt, b->level);
	if (n == 0)
		return ST_ERR_LENGTH;
	p = conn_reserve(c, n);
	if (!p)
		return ST_ERR_NOMEM;
	len = st_encode_packet(&pkt, b->level, p, n);
	if (len < 0)
		return len;
	/* try_private: the protocol level byte, after the fixed header and the protocol name,
	 * carries 0x80 to say "a bridge" (3.x only: MQTT 5 has No Local). */
	if (cfg->try_private && b->level < ST_MQTT_5) {
		struct st_fixed_header fh;

		if (st_decode_fixed_header(p, (size_t)len, 0, &fh) == ST_OK) {
			size_t at = fh.header_len + 2 +
			            ((size_t)p[fh.header_len] << 8 | p[fh.header_len + 1]);

			p[at] |= 0x80;
		}
	}
	conn_commit(c, (size_t)len);
	return ST_OK;
}

static void bridge_connected(struct bridge *b)
{
	struct worker *w = b->w;
	const struct config *cfg = &w->b->cfg;
	int one = 1, fd = b->fd;
	struct conn *c;

	b->fd = -1;
	if (cfg->set_tcp_nodelay)
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
	c->adopted = true; /* never handed to another worker */
	if (b->level == ST_MQTT_5) {
		c->v5 = calloc(1, sizeof(*c->v5));
		if (!c->v5) {
			conn_close(c, false, "out of memory");
			return;
		}
		c->v5->receive_max_in = w->b->inflight_max;
		c->v5->max_packet_out = b->cfg->max_packet_size;
	}
	b->c = c;
	b->state = BRIDGE_CONNACK;
	if (bridge_send_connect(b, c) != ST_OK)
		conn_close(c, false, "CONNECT cannot be encoded");
}

static void bridge_on_cqe(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct bridge *b = container_of(io, struct bridge, io);

	(void)r;
	if (cqe->op != RING_OP_CONNECT || b->state != BRIDGE_CONNECTING)
		return;
	if (b->stopping) {
		if (b->fd >= 0)
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

/*
 * round_robin false: while connected to a secondary address, the main one (the first) is
 * probed with a TCP connect every restart_timeout cap; once it answers, the bridge leaves
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
	if (cqe->res < 0 || b->stopping || b->state != BRIDGE_UP || !b->c || b->addr == 0)
		return;
	log_msg(&b->w->log, LOG_T_NOTICE,
	        "Bridge %s: its main address %s port %u answers again: moving back to it.",
	        bname(b), b->cfg->addrs[0].host, b->cfg->addrs[0].port);
	b->to_main = true;
	bridge_disconnect(b->c);
	conn_close(b->c, true, "moving back to the main address");
}

static void bridge_probe_main(struct bridge *b)
{
	struct worker *w = b->w;

	b->probe_next_ms = w->now_ms + (uint64_t)b->cfg->restart_cap_s * 1000;
	if (b->probe_fd >= 0 || bridge_resolve_into(b, 0, &b->probe_sa, &b->probe_len) < 0)
		return;
	b->probe_fd = socket(b->probe_sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                     IPPROTO_TCP);
	if (b->probe_fd < 0)
		return;
	ring_connect(&w->ring, &b->probe_io, b->probe_fd, (const struct sockaddr *)&b->probe_sa,
	             b->probe_len);
}

/* ---- the handshake ---- */

static void bridge_send_subscribe(struct bridge *b, struct conn *c)
{
	struct st_sub_entry e[64];
	struct st_packet pkt = {.type = ST_SUBSCRIBE};
	unsigned done = 0;

	/* Several packets when there are many topics; each reuses the id once answered...
	 * the remote answers them in order, so one id serves for all. */
	while (done < b->nrfilters) {
		unsigned k = 0;
		size_t n;
		uint8_t *p;
		int len;

		for (; k < 64 && done + k < b->nrfilters; k++) {
			uint8_t opts = b->rqos[done + k];

			if (b->level == ST_MQTT_5)
				opts |= BRIDGE_SUBOPTS;
			e[k] = (struct st_sub_entry){
			        .filter = {(const uint8_t *)b->rfilters[done + k],
			                   (uint32_t)strlen(b->rfilters[done + k])},
			        .options = opts};
		}
		pkt.subscribe = (struct st_subscribe){
		        .packet_id = BRIDGE_PID_SUBSCRIBE, .count = k, .entries = e};
		n = st_packet_size(&pkt, b->level);
		p = n ? conn_reserve(c, n) : NULL;
		if (!p || (len = st_encode_packet(&pkt, b->level, p, n)) < 0) {
			conn_close(c, false, "SUBSCRIBE cannot be encoded");
			return;
		}
		conn_commit(c, (size_t)len);
		done += k;
	}
	done = 0;
	while (done < b->nunsub) {
		unsigned k = 0;
		size_t n;
		uint8_t *p;
		int len;

		for (; k < 64 && done + k < b->nunsub; k++)
			e[k] = (struct st_sub_entry){
			        .filter = {(const uint8_t *)b->unsub[done + k],
			                   (uint32_t)strlen(b->unsub[done + k])}};
		pkt = (struct st_packet){.type = ST_UNSUBSCRIBE};
		pkt.subscribe = (struct st_subscribe){
		        .packet_id = BRIDGE_PID_UNSUBSCRIBE, .count = k, .entries = e};
		n = st_packet_size(&pkt, b->level);
		p = n ? conn_reserve(c, n) : NULL;
		if (!p || (len = st_encode_packet(&pkt, b->level, p, n)) < 0) {
			conn_close(c, false, "UNSUBSCRIBE cannot be encoded");
			return;
		}
		conn_commit(c, (size_t)len);
		done += k;
	}
}

/* Publishes the bridge's "1" on the remote (its will says "0"), retained. */
static void bridge_notify_remote(struct bridge *b, struct conn *c)
{
	const char *topic = b->cfg->notification_topic;
	struct st_packet pkt = {.type = ST_PUBLISH};
	size_t n;
	uint8_t *p;
	int len;

	if (!b->cfg->notifications || b->cfg->notifications_local_only)
		return;
	/* QoS 0: no packet id to take from the session's window. */
	pkt.publish = (struct st_publish){
	        .retain = true,
	        .topic = {(const uint8_t *)topic, (uint32_t)strlen(topic)},
	        .payload = {(const uint8_t *)"1", 1},
	};
	n = st_packet_size(&pkt, b->level);
	p = n ? conn_reserve(c, n) : NULL;
	if (!p || (len = st_encode_packet(&pkt, b->level, p, n)) < 0)
		return;
	conn_commit(c, (size_t)len);
}

static const char *connack_why(uint8_t level, uint8_t code)
{
	if (level >= ST_MQTT_5)
		return st_reason_name(code);
	switch (code) {
	case ST_CONNACK_BAD_PROTOCOL:
		return "unacceptable protocol version";
	case ST_CONNACK_ID_REJECTED:
		return "identifier rejected";
	case ST_CONNACK_UNAVAILABLE:
		return "server unavailable";
	case ST_CONNACK_BAD_CREDENTIALS:
		return "bad user name or password";
	case ST_CONNACK_NOT_AUTHORIZED:
		return "not authorised";
	default:
		return "refused";
	}
}

static int bridge_connack(struct bridge *b, struct conn *c, const struct st_connack *ck)
{
	struct worker *w = b->w;
	struct st_props cp = {0};
	uint16_t keepalive = b->cfg->keepalive_s;
	struct session *s;

	if (b->level >= ST_MQTT_5) {
		int ret = st_props_parse(ck->props, ST_PCTX_CONNACK, &cp);

		if (ret < 0)
			return ret;
	}
	if (ck->code != 0) {
		log_msg(&w->log, LOG_T_WARNING, "Bridge %s: the remote refused the connection: %s.",
		        bname(b), connack_why(b->level, ck->code));
		b->stats.failures++;
		conn_close(c, true, "connection refused by the remote");
		return ST_OK;
	}
	if (!b->s && bridge_session(b) != ST_OK) {
		conn_close(c, false, "out of memory");
		return ST_OK;
	}
	s = b->s;
	if (s->conn) {
		conn_close(c, false, "its session is in use");
		return ST_OK;
	}
	if (b->level >= ST_MQTT_5) {
		uint16_t window = w->b->inflight_max;

		if (st_props_has(&cp, ST_PROP_RECEIVE_MAXIMUM) && cp.receive_maximum < window)
			window = cp.receive_maximum;
		if (window > BRIDGE_INFLIGHT_MAX)
			window = BRIDGE_INFLIGHT_MAX;
		session_set_inflight_max(s, window);
		if (st_props_has(&cp, ST_PROP_MAXIMUM_PACKET_SIZE) &&
		    (!c->v5->max_packet_out || cp.maximum_packet_size < c->v5->max_packet_out))
			c->v5->max_packet_out = cp.maximum_packet_size;
		c->v5->alias_out.max = cp.topic_alias_maximum;
		if (st_props_has(&cp, ST_PROP_SERVER_KEEP_ALIVE))
			keepalive = cp.server_keep_alive_s;
	}
	s->conn = c;
	c->session = s;
	c->state = CONN_ACTIVE;
	c->keepalive_s = keepalive;
	persist_session_attach(w, s);
	worker_conn_timer(w, c);
	worker_session_timer(w, s);
	b->state = BRIDGE_UP;
	b->delay_ms = 0;
	b->ping_ms = w->now_ms;
	b->active_ms = w->now_ms;
	b->seen_msgs = b->stats.msgs_in + b->stats.msgs_out;
	b->stats.connects++;
	b->probe_next_ms = w->now_ms + (uint64_t)b->cfg->restart_cap_s * 1000;
	log_msg(&w->log, LOG_T_NOTICE, "Bridge %s connected to %s port %u%s.", bname(b),
	        b->cfg->addrs[b->addr].host, b->cfg->addrs[b->addr].port,
	        ck->session_present ? " (session present)" : "");
	bridge_send_subscribe(b, c);
	bridge_notify_remote(b, c);
	bridge_subscribe_local(b, true);
	bridge_notify_local(b, true);
	/* Deliveries in flight before go again, then the queue (MQTT-4.4.0-1). */
	route_resume(s);
	return ST_OK;
}

static int bridge_suback(struct bridge *b, const struct st_packet *pkt)
{
	const struct st_suback *sa = &pkt->suback;

	if (sa->packet_id !=
	    (pkt->type == ST_SUBACK ? BRIDGE_PID_SUBSCRIBE : BRIDGE_PID_UNSUBSCRIBE))
		return ST_ERR_PROTOCOL;
	if (pkt->type != ST_SUBACK)
		return ST_OK;
	for (uint32_t i = 0; i < sa->codes.len; i++)
		if (sa->codes.ptr[i] >= 0x80)
			log_msg(&b->w->log, LOG_T_WARNING,
			        "Bridge %s: the remote refused a subscription (code 0x%02x).",
			        bname(b), sa->codes.ptr[i]);
	return ST_OK;
}

int bridge_packet(struct conn *c, const struct st_packet *pkt)
{
	struct bridge *b = c->bridge;

	switch (pkt->type) {
	case ST_CONNACK:
		if (c->state != CONN_NEW)
			return ST_ERR_PROTOCOL;
		return bridge_connack(b, c, &pkt->connack);
	case ST_SUBACK:
	case ST_UNSUBACK:
		return bridge_suback(b, pkt);
	case ST_PINGRESP:
		return ST_OK;
	case ST_DISCONNECT:
		if (c->v5)
			log_msg(&b->w->log, LOG_T_NOTICE, "Bridge %s: the remote disconnected: %s.",
			        bname(b), st_reason_name(pkt->disconnect.reason));
		conn_close(c, false, "disconnected by the remote");
		return ST_OK;
	default:
		return ST_ERR_PROTOCOL;
	}
}

void bridge_conn_closing(struct conn *c, bool graceful, const char *reason)
{
	struct bridge *b = c->bridge;
	struct worker *w = b->w;
	bool was_up = b->state == BRIDGE_UP;

	(void)graceful;
	if (b->c != c)
		return;
	b->c = NULL;
	if (was_up) {
		log_msg(&w->log, LOG_T_NOTICE, "Bridge %s disconnected: %s.", bname(b), reason);
		bridge_notify_local(b, false);
		/* A clean local session ends with the connection (handle_conn_closing). */
		if (b->s && b->s->clean) {
			b->s->bridge = NULL;
			b->s = NULL;
		}
		bridge_schedule(b, false);
	} else if (b->stopping) {
		b->state = BRIDGE_STOPPED;
	} else {
		bridge_fail(b, reason);
	}
}

/* ---- the worker's side ---- */

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
		struct bridge *b;

		if (worker_home(w, (const uint8_t *)bc->local_clientid,
		                strlen(bc->local_clientid)) != w->index)
			continue;
		b = &w->bridges[w->nbridges++];
		b->io.fn = bridge_on_cqe;
		b->probe_io.fn = bridge_on_probe;
		b->probe_fd = -1;
		b->w = w;
		b->cfg = bc;
		b->snap = &w->b->shared.bridge_snap[bc - cfg->bridges];
		b->fd = -1;
		b->level = bc->protocol_version;
		if (bridge_filters(b) != ST_OK)
			return ST_ERR_NOMEM;
		if (!bc->local_cleansession && bridge_session(b) != ST_OK)
			return ST_ERR_NOMEM;
		b->next_ms = w->now_ms;
		b->state = bc->start_type == CONFIG_BRIDGE_LAZY ? BRIDGE_IDLE : BRIDGE_WAITING;
		if (b->state == BRIDGE_WAITING)
			bridge_attempt(b);
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
	                 b->s ? b->s->q_len : 0, b->stats.dropped + (b->s ? b->s->dropped : 0)};
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
		snprintf(topic, sizeof(topic), "$SYS/broker/bridges/%s/%s", bname(b), names[i]);
		snprintf(val, sizeof(val), "%llu", (unsigned long long)v[i]);
		pv = (struct pub_view){
		        .topic = {(const uint8_t *)topic, (uint32_t)strlen(topic)},
		        .payload = {(const uint8_t *)val, (uint32_t)strlen(val)},
		};
		route_publish(w, NULL, &pv, 0, true);
	}
	b->sys_sent = true;
}

/* Lazy: the messages waiting for the remote. */
static uint32_t bridge_waiting(const struct bridge *b)
{
	return b->s ? b->s->q_len : 0;
}

void bridge_tick(struct worker *w)
{
	for (unsigned i = 0; i < w->nbridges; i++) {
		struct bridge *b = &w->bridges[i];
		uint64_t msgs;

		bridge_figures(b);
		switch (b->state) {
		case BRIDGE_WAITING:
			if (w->now_ms >= b->next_ms)
				bridge_attempt(b);
			break;
		case BRIDGE_IDLE:
			if (bridge_waiting(b) >= b->cfg->threshold && b->cfg->threshold)
				bridge_attempt(b);
			break;
		case BRIDGE_UP:
			/* A PINGREQ each keep alive; the remote's silence for 1.5 of them closes
			 * the connection (timers.c). */
			if (b->c && b->c->keepalive_s &&
			    w->now_ms - b->ping_ms >= (uint64_t)b->c->keepalive_s * 1000) {
				static const uint8_t ping[2] = {ST_PINGREQ << 4, 0};

				conn_queue_bytes(b->c, ping, sizeof(ping));
				b->ping_ms = w->now_ms;
			}
			if (!b->cfg->round_robin && b->addr != 0 && w->now_ms >= b->probe_next_ms)
				bridge_probe_main(b);
			msgs = b->stats.msgs_in + b->stats.msgs_out;
			if (msgs != b->seen_msgs) {
				b->seen_msgs = msgs;
				b->active_ms = w->now_ms;
			} else if (b->cfg->start_type == CONFIG_BRIDGE_LAZY && b->c &&
			           w->now_ms - b->active_ms >=
			                   (uint64_t)b->cfg->idle_timeout_s * 1000) {
				log_msg(&w->log, LOG_T_NOTICE,
				        "Bridge %s idle for %u s: stopping it (start_type lazy).",
				        bname(b), b->cfg->idle_timeout_s);
				bridge_disconnect(b->c);
				conn_close(b->c, true, "idle (start_type lazy)");
				break;
			}
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
		if (b->state == BRIDGE_CONNECTING && b->fd >= 0) {
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
		if (b->state != BRIDGE_CONNECTING && b->state != BRIDGE_UP &&
		    b->state != BRIDGE_CONNACK)
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
		for (unsigned j = 0; j < b->nrfilters; j++)
			free(b->rfilters[j]);
		for (unsigned j = 0; j < b->nlfilters; j++)
			free(b->lfilters[j]);
		for (unsigned j = 0; j < b->nunsub; j++)
			free(b->unsub[j]);
		free(b->rfilters);
		free(b->lfilters);
		free(b->unsub);
		free(b->rqos);
		free(b->lqos);
		if (b->s)
			b->s->bridge = NULL;
	}
	free(w->bridges);
	free(w->bridge_buf);
	w->bridges = NULL;
	w->bridge_buf = NULL;
	w->nbridges = 0;
}
