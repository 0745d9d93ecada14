/*
 * What a bridge says and does as an MQTT client (bridge.h): the CONNECT it sends, the CONNACK,
 * SUBACK and UNSUBACK it reads, its own SUBSCRIBE and UNSUBSCRIBE, the notifications, the local
 * session and its subscriptions, and the topic mapping both ways (the rules themselves are the
 * bridge layer's, bridge/topicmap.h). Its life cycle (connecting, retrying) is bridge.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "bridge.h"
#include "broker.h"
#include "conn.h"
#include "base/log.h"
#include "out.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "starling/props.h"
#include "subdata.h"
#include "worker.h"

#define BRIDGE_SUBOPTS (ST_SUBOPT_NO_LOCAL | ST_SUBOPT_RETAIN_AS_PUB)
#define BRIDGE_BATCH   64 /* filters per SUBSCRIBE or UNSUBSCRIBE */

void bridge_disconnect(struct conn *c)
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

bool bridge_topic_out(const struct conn *c, struct st_bytes *topic)
{
	struct worker *w = c->w;
	long n = bridge_map_out(c->bridge->cfg, topic->ptr, topic->len, w->bridge_buf,
	                        BRIDGE_TOPIC_BUF);

	/* No rule renames it (a rule without prefixes), or the new name cannot be had: the
	 * topic goes as it is. */
	if (n < 0)
		return false;
	*topic = (struct st_bytes){w->bridge_buf, (uint32_t)n};
	return true;
}

int bridge_topic_in(const struct conn *c, struct st_bytes *topic)
{
	struct worker *w = c->w;
	long n = bridge_map_in(c->bridge->cfg, topic->ptr, topic->len, w->bridge_buf,
	                       BRIDGE_TOPIC_BUF);

	c->bridge->stats.msgs_in++;
	/* A topic no rule names (a subscription an older configuration left in a persistent
	 * remote session) keeps its name, as in Mosquitto; one renamed to nothing is dropped. */
	if (n == BRIDGE_MAP_NONE)
		return 1;
	if (n < 0)
		return 0;
	*topic = (struct st_bytes){w->bridge_buf, (uint32_t)n};
	return 1;
}

/* ---- the local session ---- */

/* The local subscriptions of the out topics (No Local, Retain As Published); with
 * `retained`, the local retained messages they match follow, as on a client's SUBSCRIBE. */
static void bridge_subscribe_local(struct bridge *b, bool retained)
{
	struct worker *w = b->w;
	struct session *s = b->s;

	for (unsigned i = 0; i < b->nlsubs; i++) {
		const uint8_t *f = (const uint8_t *)b->lsubs[i].filter;
		size_t len = b->lsubs[i].len;
		uint64_t data = subdata_make((uint8_t)(BRIDGE_SUBOPTS | b->lsubs[i].qos), 0);
		int64_t acl = s->acl ? access_sub_flag(s, f, len) : 0;
		int at, added;

		/* local_username's ACL: a filter it may read nothing of is not subscribed, one it
		 * may read in part is checked per message (access.h). */
		if (acl < 0) {
			log_msg(&w->log, LOG_T_WARNING,
			        "Bridge %s: the ACL lets it read nothing of %s: not forwarded.",
			        bridge_name(b), b->lsubs[i].filter);
			continue;
		}
		data |= (uint64_t)acl;
		at = session_sub_find(s, f, len);

		if (at >= 0 && s->subs[at].data != data) {
			worker_unsubscribe(w, s, NULL, f, len);
			session_sub_remove(s, f, len);
			at = -1;
		}
		if (at < 0) {
			added = worker_sub_add(w, s, f, len, data);
			if (added < 0 || session_sub_add(s, f, len, data) != ST_OK) {
				if (added >= 0)
					worker_unsubscribe(w, s, NULL, f, len);
				log_msg(&w->log, LOG_T_ERROR,
				        "Bridge %s: out of memory subscribing to %s.",
				        bridge_name(b), b->lsubs[i].filter);
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

		for (unsigned j = 0; j < b->nlsubs && !keep; j++)
			keep = b->lsubs[j].len == sub->filter_len &&
			       memcmp(b->lsubs[j].filter, sub->filter, sub->filter_len) == 0;
		if (keep) {
			i++;
			continue;
		}
		worker_unsubscribe(w, s, NULL, sub->filter, sub->filter_len);
		session_sub_remove(s, sub->filter, sub->filter_len);
	}
}

int bridge_session(struct bridge *b)
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
	/* Its window stays below the ids of the bridge's own SUBSCRIBE and UNSUBSCRIBE. */
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
	/* local_username: whose ACL rules the bridge's local side follows (mosquitto.conf(5)). */
	if (access_attach(w, s, (const uint8_t *)b->cfg->local_username,
	                  b->cfg->local_username ? strlen(b->cfg->local_username) : 0, 0) != ST_OK)
		return ST_ERR_NOMEM;
	persist_session_attach(w, s);
	bridge_subscribe_local(b, false);
	return ST_OK;
}

/* ---- notifications ---- */

void bridge_notify_local(struct bridge *b, bool up)
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

/* The bridge's "1" on the remote (its will there says "0"), retained, at QoS 0: no packet id
 * taken from the session's window. */
static void bridge_notify_remote(struct bridge *b, struct conn *c)
{
	const char *topic = b->cfg->notification_topic;
	struct st_packet pkt = {.type = ST_PUBLISH};
	size_t n;
	uint8_t *p;
	int len;

	if (!b->cfg->notifications || b->cfg->notifications_local_only)
		return;
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

/* ---- packets ---- */

/* Encodes pkt into c's output. */
static int bridge_queue(struct bridge *b, struct conn *c, const struct st_packet *pkt)
{
	size_t n = st_packet_size(pkt, b->level);
	uint8_t *p;
	int len;

	if (n == 0)
		return ST_ERR_LENGTH;
	p = conn_reserve(c, n);
	if (!p)
		return ST_ERR_NOMEM;
	len = st_encode_packet(pkt, b->level, p, n);
	if (len < 0)
		return len;
	conn_commit(c, (size_t)len);
	return ST_OK;
}

int bridge_send_connect(struct bridge *b, struct conn *c)
{
	const struct config_bridge *cfg = b->cfg;
	struct st_packet pkt = {.type = ST_CONNECT};
	struct st_connect *ck = &pkt.connect;
	uint8_t props[16];
	struct st_prop_writer pw;

	ck->level = b->level;
	/* 3.x: "a bridge" in the level's high bit, unless this remote refused it. */
	ck->bridge = cfg->try_private && !b->no_private;
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
	return bridge_queue(b, c, &pkt);
}

/* SUBSCRIBE for the in/both topics, then UNSUBSCRIBE for the out-only ones; each a fixed
 * packet id above the session's window, answered in order. */
static int bridge_send_subscribe(struct bridge *b, struct conn *c)
{
	struct st_sub_entry e[BRIDGE_BATCH];

	for (unsigned done = 0; done < b->nrsubs;) {
		struct st_packet pkt = {.type = ST_SUBSCRIBE};
		unsigned k = 0;
		int ret;

		for (; k < BRIDGE_BATCH && done + k < b->nrsubs; k++) {
			const struct bridge_sub *s = &b->rsubs[done + k];
			uint8_t opts = s->qos;

			if (b->level == ST_MQTT_5)
				opts |= BRIDGE_SUBOPTS;
			e[k] = (struct st_sub_entry){
			        .filter = {(const uint8_t *)s->filter, (uint32_t)s->len},
			        .options = opts};
		}
		pkt.subscribe = (struct st_subscribe){
		        .packet_id = BRIDGE_PID_SUBSCRIBE, .count = k, .entries = e};
		if ((ret = bridge_queue(b, c, &pkt)) != ST_OK)
			return ret;
		done += k;
	}
	for (unsigned done = 0; done < b->nunsubs;) {
		struct st_packet pkt = {.type = ST_UNSUBSCRIBE};
		unsigned k = 0;
		int ret;

		for (; k < BRIDGE_BATCH && done + k < b->nunsubs; k++)
			e[k] = (struct st_sub_entry){
			        .filter = {(const uint8_t *)b->unsubs[done + k].filter,
			                   (uint32_t)b->unsubs[done + k].len}};
		pkt.subscribe = (struct st_subscribe){
		        .packet_id = BRIDGE_PID_UNSUBSCRIBE, .count = k, .entries = e};
		if ((ret = bridge_queue(b, c, &pkt)) != ST_OK)
			return ret;
		done += k;
	}
	return ST_OK;
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

int bridge_connack(struct bridge *b, struct conn *c, const struct st_connack *ck)
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
	if (ck->code == ST_CONNACK_BAD_PROTOCOL && b->level < ST_MQTT_5 && b->cfg->try_private &&
	    !b->no_private) {
		/* A remote that does not know try_private's level: as Mosquitto does, the bridge
		 * connects again at once as a plain client (loops then rest on No Local here). */
		log_msg(&w->log, LOG_T_NOTICE,
		        "Bridge %s: the remote refused try_private's protocol level; connecting "
		        "again without it.",
		        bridge_name(b));
		b->no_private = true;
		b->retry_now = true;
		conn_close(c, true, "try_private refused by the remote");
		return ST_OK;
	}
	if (ck->code != 0) {
		log_msg(&w->log, LOG_T_WARNING, "Bridge %s: the remote refused the connection: %s.",
		        bridge_name(b), connack_why(b->level, ck->code));
		conn_close(c, true, "connection refused by the remote");
		return ST_OK;
	}
	if (!b->s && bridge_session(b) != ST_OK) {
		conn_close(c, false, "out of memory");
		return ST_OK;
	}
	s = b->s;
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
	log_msg(&w->log, LOG_T_NOTICE, "Bridge %s connected to %s port %u%s.", bridge_name(b),
	        b->cfg->addrs[bridge_addr_current(&b->sel)].host,
	        b->cfg->addrs[bridge_addr_current(&b->sel)].port,
	        ck->session_present ? " (session present)" : "");
	bridge_up(b);
	if (bridge_send_subscribe(b, c) != ST_OK) {
		conn_close(c, false, "SUBSCRIBE cannot be encoded");
		return ST_OK;
	}
	bridge_notify_remote(b, c);
	bridge_subscribe_local(b, true);
	bridge_notify_local(b, true);
	/* Deliveries in flight before go again, then the queue [MQTT-4.4.0-1]. */
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
			        bridge_name(b), sa->codes.ptr[i]);
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
			        bridge_name(b), st_reason_name(pkt->disconnect.reason));
		conn_close(c, false, "disconnected by the remote");
		return ST_OK;
	default:
		return ST_ERR_PROTOCOL;
	}
}
