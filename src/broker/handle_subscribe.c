/*
 * SUBSCRIBE and UNSUBSCRIBE: the index (or a shared group) and the session's own list change
 * together; SUBACK is queued before the retained messages the new subscriptions bring.
 * MQTT 5 adds a Subscription Identifier, the No Local / Retain As Published / Retain Handling
 * options, shared subscriptions, and per-filter reason codes in UNSUBACK.
 */
#include "access.h"
#include "broker.h"
#include "cluster.h"
#include "conn.h"
#include "handlers.h"
#include "base/log.h"
#include "mount.h"
#include "out.h"
#include "route.h"
#include "session.h"
#include "share.h"
#include "subdata.h"
#include "index/subidx.h"
#include "worker.h"

/* Adds one subscription; returns the SUBACK code, *fresh if it did not exist before. */
static uint8_t subscribe_one(struct conn *c, const struct st_sub_entry *e, uint32_t sub_id,
                             bool *fresh, bool *shared)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	uint8_t qos = e->options & ST_SUBOPT_QOS_MASK;
	uint8_t max_qos = w->b->cfg.listeners[c->listener].lim.max_qos;
	uint64_t data;
	struct st_bytes inner;
	int added = share_parse(e->filter.ptr, e->filter.len, &inner);
	uint8_t options = e->options & ~ST_SUBOPT_QOS_MASK;
	int64_t acl;

	/* max_qos: granted at most the listener's (Mosquitto; MQTT 5 3.2.2.3.4 allows it). */
	if (qos > max_qos)
		qos = max_qos;
	if (c->peer_bridge)
		options = subdata_bridge_options(options, added == 1);
	data = subdata_make((uint8_t)(options | qos), sub_id);

	*shared = added == 1;
	if (added < 0)
		return c->v5 ? ST_RC_FILTER_INVALID : ST_SUBACK_FAILURE;
	/* A filter the ACL lets the client read no topic of is refused (access.h). */
	acl = s->acl ? access_sub_flag(s, e->filter.ptr, e->filter.len) : 0;
	if (acl < 0) {
		if (log_enabled(&w->log, LOG_T_NOTICE))
			log_msg(&w->log, LOG_T_NOTICE, "Denied SUBSCRIBE from %.*s to %.*s (ACL).",
			        (int)s->client_id_len, (const char *)s->client_id,
			        (int)e->filter.len, (const char *)e->filter.ptr);
		return c->v5 ? ST_RC_NOT_AUTHORIZED : ST_SUBACK_FAILURE;
	}
	data |= (uint64_t)acl;
	if (*shared) {
		bool is_new;

		added = worker_share_add(w, s, c, e->filter.ptr, e->filter.len, data, &is_new) ==
		                        ST_OK
		                ? (int)is_new
		                : -1;
	} else {
		added = worker_sub_add(w, s, e->filter.ptr, e->filter.len, data);
	}
	if (added < 0)
		return c->v5 ? ST_RC_UNSPECIFIED : ST_SUBACK_FAILURE;
	if (session_sub_add(s, e->filter.ptr, e->filter.len, data) != ST_OK) {
		worker_unsubscribe(w, s, c, e->filter.ptr, e->filter.len);
		return c->v5 ? ST_RC_UNSPECIFIED : ST_SUBACK_FAILURE;
	}
	*fresh = added == 1;
	if (log_enabled(&w->log, LOG_T_SUBSCRIBE))
		log_msg(&w->log, LOG_T_SUBSCRIBE, "%.*s %u %.*s", (int)s->client_id_len,
		        (const char *)s->client_id, qos, (int)e->filter.len,
		        (const char *)e->filter.ptr);
	return qos;
}

/* Whether the retained messages of a new subscription are sent [MQTT-3.3.1-9..11]. */
static bool subscribe_wants_retained(const struct st_sub_entry *e, bool fresh, bool shared)
{
	uint8_t rh = (e->options & ST_SUBOPT_RETAIN_HANDLING) >> ST_SUBOPT_RETAIN_HANDLING_SHIFT;

	/* Shared subscriptions get no retained messages (MQTT 5 section 4.8.2). */
	if (shared)
		return false;
	return rh == 0 || (rh == 1 && fresh);
}

/* The SUBACK (UNSUBACK) queued from byte `hold` of the output on waits, if this packet asked a
 * group's owner for an answer and nothing earlier already holds the output (conn.h). */
static void subscribe_hold(struct conn *c, uint64_t hold, uint32_t waits_before)
{
	if (c->share_wait > waits_before && waits_before == 0)
		c->share_hold = hold;
}

int handle_subscribe(struct conn *c, const struct st_packet *pkt)
{
	const struct st_subscribe *sub = &pkt->subscribe;
	struct st_props sp = {0};
	struct st_sub_iter it;
	struct st_sub_entry e;
	uint64_t hold;
	uint32_t waits;
	int64_t off;
	uint32_t i = 0;
	int ret;

	if (c->v5 && (ret = st_props_parse(sub->props, ST_PCTX_SUBSCRIBE, &sp)) < 0)
		return ret;
	/* No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]: check before
	 * anything is answered. */
	st_sub_iter_init(&it, pkt);
	while (st_sub_iter_next(&it, &e)) {
		struct st_bytes inner;

		if ((e.options & ST_SUBOPT_NO_LOCAL) &&
		    share_parse(e.filter.ptr, e.filter.len, &inner) == 1)
			return ST_ERR_PROTOCOL;
	}
	hold = c->out.total;
	waits = c->share_wait;
	off = out_suback_begin(c, ST_SUBACK, sub->packet_id, sub->count);
	if (off < 0)
		return (int)off;
	st_sub_iter_init(&it, pkt);
	while (st_sub_iter_next(&it, &e)) {
		bool fresh = false, shared = false;
		int code;

		/* A mounted client's filter, under its listener's prefix (mount.h). */
		if (c->mount_len && mount_conn_filter(c, &e.filter) != ST_OK) {
			out_code_set(c, off, i++, c->v5 ? ST_RC_FILTER_INVALID : ST_SUBACK_FAILURE);
			continue;
		}
		code = subscribe_one(c, &e, sp.subscription_id, &fresh, &shared);

		out_code_set(c, off, i++, (uint8_t)code);
		/* Retained messages follow the SUBACK [MQTT-3.3.1-6]. */
		if (code <= 2 && c->w->b->cfg.retain_available &&
		    subscribe_wants_retained(&e, fresh, shared))
			route_retained(c->w, c->session, e.filter.ptr, e.filter.len,
			               subdata_make((uint8_t)code, sp.subscription_id) |
			                       (c->session->acl ? SUBDATA_ACL : 0));
	}
	subscribe_hold(c, hold, waits);
	if (c->w->cl)
		cluster_session_update(c->w, c->session);
	return ST_OK;
}

int handle_unsubscribe(struct conn *c, const struct st_packet *pkt)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	struct st_props up;
	struct st_sub_iter it;
	struct st_sub_entry e;
	uint64_t hold = c->out.total;
	uint32_t waits = c->share_wait;
	int64_t off = -1;
	uint32_t i = 0;
	int ret;

	if (c->v5) {
		ret = st_props_parse(pkt->subscribe.props, ST_PCTX_UNSUBSCRIBE, &up);
		if (ret < 0)
			return ret;
		off = out_suback_begin(c, ST_UNSUBACK, pkt->subscribe.packet_id,
		                       pkt->subscribe.count);
		if (off < 0)
			return (int)off;
	}
	st_sub_iter_init(&it, pkt);
	while (st_sub_iter_next(&it, &e)) {
		bool existed;

		/* Too long once mounted: no such subscription can exist. */
		if (c->mount_len && mount_conn_filter(c, &e.filter) != ST_OK)
			e.filter.len = 0;
		existed = e.filter.len && session_sub_remove(s, e.filter.ptr, e.filter.len);

		if (existed)
			worker_unsubscribe(w, s, c, e.filter.ptr, e.filter.len);
		if (off >= 0)
			out_code_set(c, off, i++,
			             existed ? ST_RC_SUCCESS : ST_RC_NO_SUBSCRIPTION_EXISTED);
		if (log_enabled(&w->log, LOG_T_UNSUBSCRIBE))
			log_msg(&w->log, LOG_T_UNSUBSCRIBE, "%.*s %.*s", (int)s->client_id_len,
			        (const char *)s->client_id, (int)e.filter.len,
			        (const char *)e.filter.ptr);
	}
	if (!c->v5)
		out_unsuback(c, pkt->subscribe.packet_id);
	subscribe_hold(c, hold, waits);
	if (w->cl)
		cluster_session_update(w, s);
	return ST_OK;
}
