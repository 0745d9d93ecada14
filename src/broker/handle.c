/*
 * Packet dispatch by type and connection state, the answers to errors (MQTT 5 clients get a
 * DISCONNECT with the reason code before the close [MQTT-4.13.1-1]), DISCONNECT from the
 * client, and the end of a connection: the will (now, or after its delay), the hand-off of
 * shared-subscription messages, the session's end or its expiry deadline.
 */
#include "handlers.h"

#include <stdatomic.h>

#include "access.h"
#include "admit.h"
#include "bridge.h"
#include "broker.h"
#include "conn.h"
#include "limits.h"
#include "base/log.h"
#include "out.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "starling/props.h"
#include "worker.h"

static int handle_disconnect(struct conn *c, const struct st_disconnect *d)
{
	struct session *s = c->session;
	struct st_props dp;
	int ret;

	if (c->v5) {
		ret = st_props_parse(d->props, ST_PCTX_DISCONNECT, &dp);
		if (ret < 0)
			return ret;
		if (st_props_has(&dp, ST_PROP_SESSION_EXPIRY)) {
			/* Zero at CONNECT cannot become non-zero [MQTT-3.14.2-2]. */
			if (!s->had_expiry && dp.session_expiry_s)
				return ST_ERR_PROTOCOL;
			s->expiry_s = dp.session_expiry_s;
			s->clean = s->expiry_s == 0;
		}
		/* 0x04: the client wants its will published [MQTT-3.14.4-3]. */
		if (d->reason == ST_RC_DISCONNECT_WITH_WILL) {
			conn_close(c, false, "disconnected with will");
			return ST_OK;
		}
	}
	conn_close(c, true, "disconnected");
	return ST_OK;
}

int handle_packet(struct conn *c, const struct st_packet *pkt)
{
	if (c->state != CONN_ACTIVE) {
		if (c->state != CONN_NEW)
			return ST_ERR_PROTOCOL;
		/* A bridge's connection starts with the remote's CONNACK (bridge.h). */
		if (c->bridge)
			return bridge_packet(c, pkt);
		return pkt->type == ST_CONNECT ? handle_connect(c, &pkt->connect) : ST_ERR_PROTOCOL;
	}
	switch (pkt->type) {
	case ST_PUBLISH:
		return handle_publish(c, &pkt->publish);
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		return handle_ack(c, pkt->type, &pkt->ack);
	case ST_SUBSCRIBE:
		return c->bridge ? ST_ERR_PROTOCOL : handle_subscribe(c, pkt);
	case ST_UNSUBSCRIBE:
		return c->bridge ? ST_ERR_PROTOCOL : handle_unsubscribe(c, pkt);
	case ST_PINGREQ:
		if (c->bridge)
			return ST_ERR_PROTOCOL;
		out_pingresp(c);
		return ST_OK;
	case ST_DISCONNECT:
		return c->bridge ? bridge_packet(c, pkt) : handle_disconnect(c, &pkt->disconnect);
	default:
		/* CONNACK, SUBACK, UNSUBACK, PINGRESP only travel server to client (a bridge's
		 * remote sends them); AUTH needs an authentication method, and CONNECT with one
		 * was refused; a second CONNECT is a protocol violation [MQTT-3.1.0-2]. */
		return c->bridge ? bridge_packet(c, pkt) : ST_ERR_PROTOCOL;
	}
}

static void handle_log_error(struct conn *c, const char *what, int err)
{
	struct worker *w = c->w;

	w->stats.protocol_errors++;
	if (log_enabled(&w->log, LOG_T_NOTICE))
		log_msg(&w->log, LOG_T_NOTICE, "Client %.*s %s: %s, disconnecting.",
		        c->session ? (int)c->session->client_id_len : 9,
		        c->session ? (const char *)c->session->client_id : "<unknown>", what,
		        st_strerror(err));
}

/* Closes c after an error; an MQTT 5 client is told why first. */
static void handle_error_close(struct conn *c, int err, const char *reason)
{
	if (c->state == CONN_ACTIVE)
		out_disconnect(c, st_err_reason_code(err), st_strerror(err));
	conn_close(c, false, reason);
}

void handle_decode_error(struct conn *c, const struct st_fixed_header *fh, int err)
{
	handle_log_error(c, "sent a malformed packet", err);
	/* An unsupported level in an otherwise good CONNECT is answered [MQTT-3.1.2-2]. */
	if (fh->type == ST_CONNECT && c->state == CONN_NEW && err == ST_ERR_PROTOCOL_LEVEL)
		out_connack(c, false, ST_CONNACK_BAD_PROTOCOL);
	handle_error_close(c, err, "malformed packet");
}

void handle_framing_error(struct conn *c, int err)
{
	handle_log_error(c, "sent an oversized or malformed packet", err);
	handle_error_close(c, err, "malformed packet");
}

void handle_protocol_error(struct conn *c, int err)
{
	handle_log_error(c, "violated the protocol", err);
	handle_error_close(c, err, "protocol error");
}

/*
 * Publishes will now, with its MQTT 5 Message Expiry Interval counted from now. As Mosquitto
 * 2.0 does, the ACL is asked when the will is published (under the rules then in force), not
 * when it is set: a will the client may not write is dropped.
 */
static void handle_publish_will(struct worker *w, struct session *s, struct msg *will,
                                uint32_t expiry_s)
{
	struct pub_view v = pub_view_of(will);

	if (s && s->acl && !access_can(s, &v, ACL_WRITE)) {
		if (log_enabled(&w->log, LOG_T_NOTICE))
			log_msg(&w->log, LOG_T_NOTICE, "Denied will of %.*s to %.*s (ACL).",
			        (int)s->client_id_len, (const char *)s->client_id, (int)v.topic.len,
			        (const char *)v.topic.ptr);
		return;
	}

	will->expiry_ms = expiry_s ? w->now_ms + (uint64_t)expiry_s * 1000 : 0;
	v.expiry_ms = will->expiry_ms;
	route_publish(w, NULL, &v, will->qos, will->retain);
}

/* The will of a connection that ended without DISCONNECT [MQTT-3.1.2-8]. */
static void handle_will(struct conn *c, struct session *s)
{
	struct worker *w = c->w;
	struct msg *will = c->will;
	uint32_t delay_s = c->v5 ? c->v5->will_delay_s : 0;

	c->will = NULL;
	if (delay_s && s && s->expiry_s) {
		/* Sent after the delay, or when the session ends if sooner [MQTT-3.1.3-9]. */
		if (delay_s > s->expiry_s)
			delay_s = s->expiry_s;
		if (s->will)
			msg_unref(s->will);
		s->will = will;
		s->will_expiry_s = c->v5->will_expiry_s;
		s->will_at_ms = worker_now_up_ms(w) + (uint64_t)delay_s * 1000;
		return;
	}
	handle_publish_will(w, s, will, c->v5 ? c->v5->will_expiry_s : 0);
	msg_unref(will);
}

void handle_session_will_due(struct worker *w, struct session *s)
{
	struct msg *will = s->will;

	persist_will_clear(s);
	s->will = NULL;
	handle_publish_will(w, s, will, s->will_expiry_s);
	msg_unref(will);
}

void handle_conn_closing(struct conn *c, bool graceful, const char *reason)
{
	struct worker *w = c->w;
	struct session *s = c->session;

	if (c->bridge) {
		bridge_conn_closing(c, graceful, reason);
	} else {
		if (w->nclients > 0)
			w->nclients--;
		admit_release(w->b, c->listener);
	}
	if (s && log_connections(&w->log))
		log_msg(&w->log, LOG_T_NOTICE, "Client %.*s %s.", (int)s->client_id_len,
		        (const char *)s->client_id, graceful ? "disconnected" : reason);
	if (s) {
		s->conn = NULL;
		c->session = NULL;
	}
	if (c->will && !graceful && c->state == CONN_ACTIVE)
		handle_will(c, s);
	if (c->will) {
		msg_unref(c->will);
		c->will = NULL;
	}
	if (!s)
		return;
	worker_session_online(w, s, false);
	route_rehome_shared(w, s);
	if (s->clean) {
		worker_session_destroy(w, s);
		return;
	}
	/* A bridge's session is the broker's own: persistent_client_expiration spares it. */
	if (!s->bridge && limits_session_expiry_s(&w->b->cfg, s->expiry_s) != UINT32_MAX)
		s->expire_at_ms = worker_now_up_ms(w) +
		                  (uint64_t)limits_session_expiry_s(&w->b->cfg, s->expiry_s) * 1000;
	if (s->ps) {
		persist_session_put(s, s->protocol);
		persist_will_set(s);
	}
	worker_session_timer(w, s);
}
