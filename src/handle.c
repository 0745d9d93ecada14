/*
 * Packet dispatch by type and connection state, the answers to errors, and the end of a
 * connection (will, session detach).
 */
#include "handlers.h"

#include "broker.h"
#include "conn.h"
#include "log.h"
#include "out.h"
#include "route.h"
#include "session.h"
#include "worker.h"

int handle_packet(struct conn *c, const struct st_packet *pkt)
{
	if (pkt->type == ST_CONNECT) {
		/* A second CONNECT is a protocol violation [MQTT-3.1.0-2]. */
		if (c->state != CONN_NEW)
			return ST_ERR_PROTOCOL;
		return handle_connect(c, &pkt->connect);
	}
	if (c->state != CONN_ACTIVE)
		return ST_ERR_PROTOCOL;
	switch (pkt->type) {
	case ST_PUBLISH:
		return handle_publish(c, &pkt->publish);
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		return handle_ack(c, pkt->type, &pkt->ack);
	case ST_SUBSCRIBE:
		return handle_subscribe(c, pkt);
	case ST_UNSUBSCRIBE:
		return handle_unsubscribe(c, pkt);
	case ST_PINGREQ:
		out_pingresp(c);
		return ST_OK;
	case ST_DISCONNECT:
		conn_close(c, true, "disconnected");
		return ST_OK;
	default:
		/* CONNACK, SUBACK, UNSUBACK, PINGRESP only travel server to client; AUTH needs an
		 * MQTT 5 authentication method, and none is configured. */
		return ST_ERR_PROTOCOL;
	}
}

static void handle_log_error(struct conn *c, const char *what, int err)
{
	struct worker *w = c->w;

	w->stats.protocol_errors++;
	if (log_enabled(&w->b->log, LOG_T_NOTICE))
		log_msg(&w->b->log, LOG_T_NOTICE, "Client %.*s %s: %s, disconnecting.",
		        c->session ? (int)c->session->client_id_len : 7,
		        c->session ? (const char *)c->session->client_id : "<unknown>", what,
		        st_strerror(err));
}

void handle_decode_error(struct conn *c, const struct st_fixed_header *fh, int err)
{
	handle_log_error(c, "sent a malformed packet", err);
	/* An unsupported level in an otherwise good CONNECT is answered [MQTT-3.1.2-2]. */
	if (fh->type == ST_CONNECT && c->state == CONN_NEW && err == ST_ERR_PROTOCOL_LEVEL)
		out_connack(c, false, ST_CONNACK_BAD_PROTOCOL);
	conn_close(c, false, "malformed packet");
}

void handle_framing_error(struct conn *c, int err)
{
	handle_log_error(c, "sent an oversized or malformed packet", err);
	conn_close(c, false, "malformed packet");
}

void handle_protocol_error(struct conn *c, int err)
{
	handle_log_error(c, "violated the protocol", err);
	conn_close(c, false, "protocol error");
}

void handle_conn_closing(struct conn *c, bool graceful, const char *reason)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	struct msg *will = c->will;

	if (w->nclients > 0)
		w->nclients--;
	if (s && log_enabled(&w->b->log, LOG_T_NOTICE))
		log_msg(&w->b->log, LOG_T_NOTICE, "Client %.*s %s.", (int)s->client_id_len,
		        (const char *)s->client_id, graceful ? "disconnected" : reason);
	c->will = NULL;
	if (will && !graceful && c->state == CONN_ACTIVE) {
		/* [MQTT-3.1.2-8]: the will is published when the connection ends without
		 * DISCONNECT, whatever the reason. */
		struct pub_view v = pub_view_of(will);

		route_publish(w, s, &v, will->qos, will->retain);
	}
	if (will)
		msg_unref(will);
	if (!s)
		return;
	s->conn = NULL;
	c->session = NULL;
	if (s->clean)
		worker_session_destroy(w, s);
}
