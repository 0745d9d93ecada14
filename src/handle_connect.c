/*
 * CONNECT: client identifier rules, authentication, keep alive limits, the will, session
 * takeover and resumption, CONNACK.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "conn.h"
#include "handlers.h"
#include "log.h"
#include "out.h"
#include "route.h"
#include "session.h"
#include "worker.h"

/* Refuses the connection with a CONNACK return code, then closes it once that is sent. */
static int connect_refuse(struct conn *c, uint8_t code, const char *why)
{
	struct worker *w = c->w;

	if (log_enabled(&w->b->log, LOG_T_NOTICE))
		log_msg(&w->b->log, LOG_T_NOTICE, "Connection %llu refused: %s.",
		        (unsigned long long)c->id, why);
	out_connack(c, false, code);
	conn_close(c, true, why);
	return ST_OK;
}

/* A unique identifier for a client that sent none [MQTT-3.1.3-6]. */
static size_t connect_generate_id(struct worker *w, uint8_t *buf, size_t cap)
{
	int n;

	do {
		n = snprintf((char *)buf, cap, "auto-%08x-%04x-%012llx",
		             (unsigned)(w->b->instance_salt >> 32), w->index & 0xffff,
		             (unsigned long long)++w->next_client_num);
	} while (worker_session_find(w, buf, (size_t)n));
	return (size_t)n;
}

static int connect_will(struct conn *c, const struct st_connect *ck)
{
	struct msg *m;

	if (!ck->will_flag)
		return ST_OK;
	m = msg_new(ck->will_topic, (struct st_bytes){0}, ck->will_payload, ck->will_qos,
	            ck->will_retain);
	if (!m)
		return ST_ERR_NOMEM;
	c->will = m;
	return ST_OK;
}

/* Finds or creates the session for id; takes an online session over. */
static struct session *connect_session(struct conn *c, const uint8_t *id, size_t len, bool clean,
                                       bool *present)
{
	struct worker *w = c->w;
	struct session *s = worker_session_find(w, id, len);

	if (s && s->conn) {
		/* [MQTT-3.1.4-2]: the existing connection is closed; its will is published. */
		conn_close(s->conn, false, "session taken over");
		s = worker_session_find(w, id, len); /* a clean session ended with it */
	}
	if (s && clean) {
		worker_session_destroy(w, s);
		s = NULL;
	}
	*present = s != NULL;
	if (s)
		return s;
	s = session_new(id, len, w->b->inflight_max, w->b->cfg.max_queued_messages);
	if (!s)
		return NULL;
	if (worker_session_add(w, s) != ST_OK) {
		session_free(s);
		return NULL;
	}
	return s;
}

int handle_connect(struct conn *c, const struct st_connect *ck)
{
	struct worker *w = c->w;
	const struct config *cfg = &w->b->cfg;
	uint8_t idbuf[64];
	const uint8_t *id = ck->client_id.ptr;
	size_t idlen = ck->client_id.len;
	struct session *s;
	bool present;

	c->level = ck->level;
	if (idlen == 0) {
		/* 3.1 requires an identifier; 3.1.1 allows none only with clean session
		 * [MQTT-3.1.3-7], [MQTT-3.1.3-8]. */
		if (ck->level == ST_MQTT_31 || !ck->clean_start)
			return connect_refuse(c, ST_CONNACK_ID_REJECTED, "empty client id");
		idlen = connect_generate_id(w, idbuf, sizeof(idbuf));
		id = idbuf;
	}
	if (!cfg->allow_anonymous)
		return connect_refuse(c, ST_CONNACK_NOT_AUTHORIZED, "not authorised");
	/* 3.x clients cannot be told a shorter keep alive: refuse, as Mosquitto does. */
	if (cfg->max_keepalive < UINT16_MAX &&
	    (ck->keepalive_s > cfg->max_keepalive || ck->keepalive_s == 0))
		return connect_refuse(c, ST_CONNACK_ID_REJECTED, "keepalive over max_keepalive");
	if (ck->will_flag && ck->will_retain && !cfg->retain_available)
		return connect_refuse(c, ST_CONNACK_NOT_AUTHORIZED, "retained will not available");
	if (connect_will(c, ck) != ST_OK)
		return ST_ERR_NOMEM;

	s = connect_session(c, id, idlen, ck->clean_start, &present);
	if (!s)
		return ST_ERR_NOMEM;
	s->clean = ck->clean_start;
	s->conn = c;
	c->session = s;
	c->state = CONN_ACTIVE;
	c->keepalive_s = ck->keepalive_s;
	if (log_enabled(&w->b->log, LOG_T_NOTICE))
		log_msg(&w->b->log, LOG_T_NOTICE,
		        "New client connected as %.*s (p%u, c%u, k%u) on connection %llu.",
		        (int)idlen, (const char *)id, ck->level, ck->clean_start ? 1 : 0,
		        ck->keepalive_s, (unsigned long long)c->id);
	/* 3.1 has no session-present flag: its acknowledge flags byte is reserved. */
	out_connack(c, present && ck->level >= ST_MQTT_311, ST_CONNACK_ACCEPTED);
	if (present)
		route_resume(s);
	return ST_OK;
}
