/*
 * CONNECT: client identifier rules, authentication, keep alive limits, the will, session
 * takeover and resumption, CONNACK; for MQTT 5 also the CONNECT and will properties and the
 * limits the broker announces in CONNACK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "auth/auth.h"
#include "broker.h"
#include "cluster.h"
#include "conn.h"
#include "conn_tls.h"
#include "handlers.h"
#include "base/log.h"
#include "mount.h"
#include "out.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "starling/props.h"
#include "worker.h"

/* The MQTT 5 reason code for a 3.x CONNACK return code. */
static uint8_t connect_v5_code(uint8_t v3)
{
	switch (v3) {
	case ST_CONNACK_BAD_PROTOCOL:
		return ST_RC_UNSUPPORTED_VERSION;
	case ST_CONNACK_ID_REJECTED:
		return ST_RC_CLIENT_ID_INVALID;
	case ST_CONNACK_UNAVAILABLE:
		return ST_RC_SERVER_UNAVAILABLE;
	case ST_CONNACK_BAD_CREDENTIALS:
		return ST_RC_BAD_USER_PASSWORD;
	default:
		return ST_RC_NOT_AUTHORIZED;
	}
}

/*
 * Refuses the connection with `code` (MQTT 5 reason code for 5.0 clients, else the 3.x one),
 * naming the client id the CONNECT gave and whether it is a bridge (a bridge refused its
 * credentials retries for ever: the line says who to look for).
 */
static int connect_refuse_code(struct conn *c, const struct st_connect *ck, uint8_t code,
                               const char *why)
{
	struct worker *w = c->w;

	if (log_enabled(&w->log, LOG_T_NOTICE))
		log_msg(&w->log, LOG_T_NOTICE, "Connection %llu refused: %s (%s %.*s).",
		        (unsigned long long)c->id, why, ck->bridge ? "bridge" : "client",
		        ck->client_id.len ? (int)ck->client_id.len : 10,
		        ck->client_id.len ? (const char *)ck->client_id.ptr : "without id");
	if (c->level >= ST_MQTT_5) {
		/* A refusal may say why, even without Request Problem Information. */
		struct connack5 a = {
		        .reason_string = {(const uint8_t *)why, (uint32_t)strlen(why)}};

		out_connack5(c, false, code, &a);
	} else {
		out_connack(c, false, code);
	}
	conn_close(c, true, why);
	return ST_OK;
}

/* Refuses with a 3.x return code, translated for MQTT 5 clients. */
static int connect_refuse(struct conn *c, const struct st_connect *ck, uint8_t v3_code,
                          const char *why)
{
	return connect_refuse_code(c, ck,
	                           c->level >= ST_MQTT_5 ? connect_v5_code(v3_code) : v3_code, why);
}

/*
 * A unique identifier for a client that sent none [MQTT-3.1.3-6]. It must have this worker as
 * its home, since the session is made here and a client reconnecting with it (MQTT 5 returns
 * it) is sent to its home: numbers are tried until one hashes here (nworkers tries on average).
 */
static size_t connect_generate_id(struct worker *w, const char *prefix, uint8_t *buf, size_t cap)
{
	int n;

	do {
		n = snprintf((char *)buf, cap, "%s%08x-%04x-%012llx", prefix[0] ? prefix : "auto-",
		             (unsigned)(w->b->instance_salt >> 32), w->index & 0xffff,
		             (unsigned long long)++w->next_client_num);
	} while (worker_home(w, buf, (size_t)n) != w->index ||
	         worker_session_find(w, buf, (size_t)n));
	return (size_t)n;
}

static int connect_will(struct conn *c, const struct st_connect *ck, const struct st_props *wp)
{
	struct st_bytes fwd = {0};
	struct msg *m;

	if (!ck->will_flag)
		return ST_OK;
	if (c->v5) {
		int ret = handle_forward_props(c->w, ck->will_props, wp, &fwd);

		if (ret < 0)
			return ret;
		c->v5->will_delay_s = wp->will_delay_s;
		c->v5->will_expiry_s = wp->message_expiry_s;
	}
	if (c->mount_len) {
		/* The will is published under the listener's prefix (mount.h). */
		struct st_bytes topic = ck->will_topic;
		int ret = mount_conn_name(c, &topic);

		if (ret != ST_OK)
			return ret;
		m = msg_new(topic, fwd, ck->will_payload, ck->will_qos, ck->will_retain);
	} else {
		m = msg_new(ck->will_topic, fwd, ck->will_payload, ck->will_qos, ck->will_retain);
	}
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
		/* What the old connection sent before this CONNECT counts first (a PUBACK, a
		 * DISCONNECT that ends a clean session). */
		conn_drain_input(s->conn);
		s = worker_session_find(w, id, len);
	}
	if (s && s->conn) {
		/* [MQTT-3.1.4-3]: the existing connection is closed (MQTT 5: DISCONNECT 0x8E). */
		out_disconnect(s->conn, ST_RC_SESSION_TAKEN_OVER,
		               "another connection took the session");
		conn_close(s->conn, false, "session taken over");
		s = worker_session_find(w, id, len); /* a session that ended with it is gone */
	}
	/* Past its expiry, even if the timer (250 ms steps) has not run yet: a restart with
	 * persistence counts the downtime, and a client connecting at once must not resume it. */
	if (s && !s->conn && s->expire_at_ms && s->expire_at_ms <= w->now_ms) {
		worker_session_destroy(w, s);
		s = NULL;
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
	s->q_bytes_max = w->b->cfg.limits.max_queued_bytes;
	s->inflight_bytes_max = w->b->cfg.limits.max_inflight_bytes;
	if (worker_session_add(w, s) != ST_OK) {
		session_free(s);
		return NULL;
	}
	return s;
}

/* Parses the MQTT 5 CONNECT and will properties into c->v5. Negative: refuse with its code. */
static int connect_v5(struct conn *c, const struct st_connect *ck, struct st_props *cp,
                      struct st_props *wp)
{
	int ret = st_props_parse(ck->props, ST_PCTX_CONNECT, cp);

	if (ret == ST_OK && ck->will_flag)
		ret = st_props_parse(ck->will_props, ST_PCTX_WILL, wp);
	if (ret < 0)
		return ret;
	c->v5 = calloc(1, sizeof(*c->v5));
	if (!c->v5)
		return ST_ERR_NOMEM;
	c->v5->alias_in.max = c->w->b->cfg.max_topic_alias;
	c->v5->alias_out.max = cp->topic_alias_maximum;
	c->v5->max_packet_out = cp->maximum_packet_size;
	c->v5->receive_max_in = c->w->b->receive_max;
	c->v5->problem_info =
	        !st_props_has(cp, ST_PROP_REQUEST_PROBLEM_INFO) || cp->request_problem_info;
	c->v5->had_session_expiry = cp->session_expiry_s != 0;
	return ST_OK;
}

/*
 * User name and password (auth/auth.c has the rules). 3.x has one code for every refusal,
 * 0x05; MQTT 5 tells bad credentials (0x86) from a client that may not connect (0x87).
 * Returns non-zero when c was refused.
 */
static int connect_auth(struct conn *c, const struct st_connect *ck)
{
	const struct auth_domain *d = auth_domain_of(c->w->auth, c->listener);

	switch (auth_connect(d, ck->username_flag ? ck->username.ptr : NULL, ck->username.len,
	                     ck->password.ptr, ck->password.len, ck->password_flag)) {
	case AUTH_ACCEPT:
		/* A reload closes c if this entry changes or goes (reload.c). */
		if (ck->username_flag)
			c->pw_tag = auth_pw_tag(d, ck->username.ptr, ck->username.len);
		return 0;
	case AUTH_BAD_CREDENTIALS:
		return connect_refuse_code(
		               c, ck, c->v5 ? ST_RC_BAD_USER_PASSWORD : ST_CONNACK_NOT_AUTHORIZED,
		               "bad user name or password"),
		       1;
	default:
		return connect_refuse(c, ck, ST_CONNACK_NOT_AUTHORIZED, "not authorised"), 1;
	}
}

/*
 * Keeps the client's username on c: with use_identity_as_username or use_subject_as_username
 * on its TLS listener, the certificate's (the CONNECT's username and password are then
 * ignored, and a client without a usable name is refused with "bad user name or password",
 * as Mosquitto does); otherwise the CONNECT's, if any. Returns non-zero when c was refused;
 * *from_cert says the name came from a verified certificate.
 */
static int connect_username(struct conn *c, const struct st_connect *ck, bool *from_cert)
{
	char name[1024];
	const uint8_t *p = ck->username.ptr;
	size_t n = ck->username.len;
	int len = conn_tls_username(c, name, sizeof(name), from_cert);

	if (*from_cert) {
		if (len < 0)
			return connect_refuse(c, ck, ST_CONNACK_BAD_CREDENTIALS,
			                      "no username in its certificate"),
			       1;
		p = (const uint8_t *)name;
		n = (size_t)len;
	} else if (!ck->username_flag) {
		return 0;
	}
	c->username = malloc(n + 1);
	if (!c->username)
		return connect_refuse(c, ck, ST_CONNACK_UNAVAILABLE, "out of memory"), 1;
	memcpy(c->username, p, n);
	c->username[n] = '\0';
	c->username_len = (uint16_t)n;
	return 0;
}

/* Checks made before any session is touched; returns non-zero when c was refused. */
static int connect_checks(struct conn *c, const struct st_connect *ck, const struct st_props *cp,
                          uint16_t *keepalive, bool *server_keepalive)
{
	const struct config *cfg = &c->w->b->cfg;
	bool from_cert;

	if (c->v5 && st_props_has(cp, ST_PROP_AUTH_METHOD))
		return connect_refuse_code(c, ck, ST_RC_BAD_AUTH_METHOD,
		                           "no authentication method"),
		       1;
	if (connect_username(c, ck, &from_cert))
		return 1;
	/* A certificate the listener verified authenticates its client (mosquitto.conf(5)):
	 * no password and no anonymous rule then. */
	if (!from_cert && connect_auth(c, ck))
		return 1;
	*keepalive = ck->keepalive_s;
	*server_keepalive = false;
	if (cfg->max_keepalive < UINT16_MAX &&
	    (ck->keepalive_s > cfg->max_keepalive || ck->keepalive_s == 0)) {
		/* 3.x clients cannot be told a shorter keep alive: refuse, as Mosquitto does;
		 * MQTT 5 ones get the broker's in Server Keep Alive [MQTT-3.2.2-21]. */
		if (!c->v5)
			return connect_refuse(c, ck, ST_CONNACK_ID_REJECTED, "keepalive too long"),
			       1;
		*keepalive = cfg->max_keepalive;
		*server_keepalive = true;
	}
	/* A will above max_qos: MQTT 5 CONNACK 0x9B [MQTT-3.2.2-12]; a 3.x client is closed
	 * without a CONNACK, as Mosquitto does (3.x has no code for it). */
	if (ck->will_flag && ck->will_qos > cfg->listeners[c->listener].lim.max_qos) {
		if (c->v5)
			return connect_refuse_code(c, ck, ST_RC_QOS_NOT_SUPPORTED,
			                           "will QoS above max_qos"),
			       1;
		log_msg(&c->w->log, LOG_T_NOTICE,
		        "Connection %llu refused: will QoS above max_qos.",
		        (unsigned long long)c->id);
		return conn_close(c, false, "will QoS above max_qos"), 1;
	}
	if (ck->will_flag && ck->will_retain && !cfg->retain_available) {
		if (c->v5)
			return connect_refuse_code(c, ck, ST_RC_RETAIN_NOT_SUPPORTED, "retain"), 1;
		return connect_refuse(c, ck, ST_CONNACK_NOT_AUTHORIZED, "retained will"), 1;
	}
	return 0;
}

static void connect_ack5(struct conn *c, bool present, const struct st_props *cp,
                         struct st_bytes assigned, uint16_t keepalive, bool server_keepalive)
{
	const struct broker *b = c->w->b;
	char *info = NULL;
	struct connack5 a = {
	        .assigned_id = assigned,
	        .server_keepalive_s = keepalive,
	        .send_server_keepalive = server_keepalive,
	        .receive_max = b->receive_max,
	        .topic_alias_max = b->cfg.max_topic_alias,
	        .max_packet = b->cfg.max_packet_size,
	        .retain_unavailable = !b->cfg.retain_available,
	        .send_max_qos = b->cfg.listeners[c->listener].lim.max_qos < 2,
	        .max_qos = b->cfg.listeners[c->listener].lim.max_qos,
	};

	/* Response Information: a topic prefix reserved for this client's responses. */
	if (cp->request_response_info) {
		const struct session *s = c->session;
		size_t cap = sizeof("response//") + s->client_id_len;

		info = malloc(cap);
		if (info) {
			int n = snprintf(info, cap, "response/%.*s/", (int)s->client_id_len,
			                 (const char *)s->client_id);

			a.response_info = (struct st_bytes){(const uint8_t *)info, (uint32_t)n};
		}
	}
	out_connack5(c, present, ST_RC_SUCCESS, &a);
	free(info);
}

/*
 * "New client connected as ID (p5, c1, k60, u'NAME')", Mosquitto's line (without the
 * address), and where the connection lives when there are several workers. The id and the
 * user name are the client's bytes; log_msg escapes what could forge a line.
 */
/* The username as Mosquitto shows it, ", u'NAME'" inside the parentheses: the CONNECT's, or
 * the certificate's (use_identity_as_username); the log escapes it like the rest. */
static void connect_log(struct conn *c, const struct session *s, const struct st_connect *ck,
                        uint16_t keepalive)
{
	struct worker *w = c->w;
	char where[64] = "";

	if (w->nworkers > 1)
		snprintf(where, sizeof(where), ", worker %u (accepted by worker %u)", w->index,
		         c->accepted_by);
	log_msg(&w->log, LOG_T_NOTICE,
	        "New %s connected as %.*s (p%u, c%u, k%u%s%.*s%s) on connection %llu%s.",
	        c->peer_bridge ? "bridge" : "client", (int)s->client_id_len,
	        (const char *)s->client_id, ck->level, ck->clean_start ? 1 : 0, keepalive,
	        c->username ? ", u'" : "", (int)c->username_len, c->username ? c->username : "",
	        c->username ? "'" : "", (unsigned long long)c->id, where);
}

/* Attaches session s to c and answers CONNACK. */
static void connect_attach(struct conn *c, struct session *s, const struct st_connect *ck,
                           const struct st_props *cp, bool present, bool assigned,
                           uint16_t keepalive, bool server_keepalive)
{
	struct worker *w = c->w;

	/* Session lifetime: 3.x clean session 1 ends with the connection, 0 never expires;
	 * MQTT 5 says how long in Session Expiry Interval [MQTT-3.1.2-23]. */
	s->expiry_s = c->v5 ? cp->session_expiry_s : (ck->clean_start ? 0 : UINT32_MAX);
	s->clean = s->expiry_s == 0;
	s->had_expiry = s->expiry_s != 0;
	s->expire_at_ms = 0;
	s->protocol = ck->level;
	if (s->will) {
		/* Reconnected within the will delay: the will is not sent [MQTT-3.1.3-10]. */
		persist_will_clear(s);
		msg_unref(s->will);
		s->will = NULL;
	}
	session_set_inflight_max(s, c->v5 && cp->receive_maximum &&
	                                            cp->receive_maximum < w->b->inflight_max
	                                    ? cp->receive_maximum
	                                    : w->b->inflight_max);
	s->conn = c;
	c->session = s;
	c->state = CONN_ACTIVE;
	persist_session_attach(w, s);
	c->keepalive_s = keepalive;
	worker_conn_timer(w, c);
	worker_session_timer(w, s); /* online: its will delay and expiry stop */
	if (present)
		worker_session_online(w, s, true);
	if (log_connections(&w->log))
		connect_log(c, s, ck, keepalive);
	if (c->v5)
		connect_ack5(c, present, cp,
		             assigned ? (struct st_bytes){s->client_id, s->client_id_len}
		                      : (struct st_bytes){0},
		             keepalive, server_keepalive);
	else /* 3.1 has no session-present flag: its acknowledge flags byte is reserved. */
		out_connack(c, present && ck->level >= ST_MQTT_311, ST_CONNACK_ACCEPTED);
	if (present)
		route_resume(s);
}

/*
 * use_username_as_clientid: the client id is the user name (its certificate's with
 * use_identity_as_username), known before the hand-off so that the session's home is the
 * name's. Returns false when there is none (the client is then not authorised, as in
 * Mosquitto); an empty name counts as none, an empty id being no id.
 */
static bool connect_name_as_id(struct conn *c, const struct st_connect *ck, char *buf, size_t cap,
                               const uint8_t **id, size_t *idlen)
{
	bool from_cert;
	int len = conn_tls_username(c, buf, cap, &from_cert);

	if (from_cert) {
		if (len <= 0)
			return false;
		*id = (const uint8_t *)buf;
		*idlen = (size_t)len;
		return true;
	}
	if (!ck->username_flag || ck->username.len == 0)
		return false;
	*id = ck->username.ptr;
	*idlen = ck->username.len;
	return true;
}

/* clientid_prefixes (deprecated in Mosquitto): only ids starting with the prefix connect. */
static bool connect_id_allowed(const struct config *cfg, const uint8_t *id, size_t len)
{
	const char *prefix = cfg->limits.clientid_prefixes;
	size_t n = strlen(prefix);

	return n == 0 || (len >= n && memcmp(id, prefix, n) == 0);
}

int handle_connect(struct conn *c, const struct st_connect *ck)
{
	const struct config *cfg = &c->w->b->cfg;
	const struct config_listener_limits *lim = &cfg->listeners[c->listener].lim;
	struct st_props cp = {0}, wp = {0};
	uint8_t idbuf[CONFIG_AUTO_ID_PREFIX_MAX + 64];
	char namebuf[1024];
	const uint8_t *id = ck->client_id.ptr;
	size_t idlen = ck->client_id.len;
	uint16_t keepalive;
	bool present, server_keepalive, assigned = false;
	struct session *s;
	int ret;

	c->level = ck->level;
	c->peer_bridge = ck->bridge;
	if (lim->use_username_as_clientid &&
	    !connect_name_as_id(c, ck, namebuf, sizeof(namebuf), &id, &idlen))
		return connect_refuse(c, ck, ST_CONNACK_NOT_AUTHORIZED,
		                      "no user name (use_username_as_clientid)");
	/* The session lives on its client id's home worker: the connection moves there. */
	if (idlen && c->w->nworkers > 1 && !c->adopted) {
		unsigned home = worker_home(c->w, id, idlen);

		if (home != c->w->index) {
			conn_handoff(c, home);
			return ST_OK;
		}
	}
	if (ck->level >= ST_MQTT_5 && (ret = connect_v5(c, ck, &cp, &wp)) < 0)
		return connect_refuse_code(c, ck, st_err_reason_code(ret), st_strerror(ret));
	if (idlen == 0) {
		/* 3.1 requires an identifier; 3.1.1 allows none only with clean session
		 * [MQTT-3.1.3-7], [MQTT-3.1.3-8]; MQTT 5 always assigns one [MQTT-3.2.2-16]. */
		if (ck->level == ST_MQTT_31 || (!ck->clean_start && ck->level == ST_MQTT_311) ||
		    lim->refuse_zero_length_clientid)
			return connect_refuse(c, ck, ST_CONNACK_ID_REJECTED, "empty client id");
		idlen = connect_generate_id(c->w, lim->auto_id_prefix, idbuf, sizeof(idbuf));
		id = idbuf;
		assigned = true;
	}
	if (!connect_id_allowed(cfg, id, idlen))
		return connect_refuse(c, ck, ST_CONNACK_NOT_AUTHORIZED,
		                      "client id without the prefix of clientid_prefixes");
	if (connect_checks(c, ck, &cp, &keepalive, &server_keepalive))
		return ST_OK;
	/* A bridge's local session (local_clientid) is the broker's own: no client takes it. */
	s = worker_session_find(c->w, id, idlen);
	if (s && s->bridge)
		return connect_refuse(c, ck, ST_CONNACK_ID_REJECTED, "client id of a bridge");
	/* A session to resume that is not here may be on another node of the cluster: the
	 * CONNECT waits for it, then comes here again (cluster.h). */
	if (!s && !ck->clean_start && !assigned && c->w->cl && cluster_session_park(c, id, idlen))
		return ST_OK;
	if (connect_will(c, ck, &wp) != ST_OK)
		return ST_ERR_NOMEM;
	s = connect_session(c, id, idlen, ck->clean_start, &present);
	if (!s)
		return ST_ERR_NOMEM;
	/* c->username: the CONNECT's, or the certificate's with use_identity_as_username. */
	if (access_attach(c->w, s, (const uint8_t *)c->username, c->username_len, c->listener) !=
	    ST_OK)
		return ST_ERR_NOMEM;
	connect_attach(c, s, ck, &cp, present, assigned, keepalive, server_keepalive);
	if (c->w->cl && c->state == CONN_ACTIVE) {
		cluster_connected(c->w, s);
		cluster_session_update(c->w, s);
	}
	return ST_OK;
}
