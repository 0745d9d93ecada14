/*
 * SUBSCRIBE and UNSUBSCRIBE: the index and the session's own list change together; SUBACK is
 * queued before the retained messages the new subscriptions bring.
 */
#include "broker.h"
#include "conn.h"
#include "handlers.h"
#include "log.h"
#include "out.h"
#include "route.h"
#include "session.h"
#include "subdata.h"
#include "subidx.h"
#include "worker.h"

/* Adds one subscription; returns the SUBACK code. */
static uint8_t subscribe_one(struct conn *c, const struct st_sub_entry *e)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	uint8_t qos = e->options & ST_SUBOPT_QOS_MASK;
	uint64_t data = subdata_make((uint8_t)((e->options & ~ST_SUBOPT_QOS_MASK) | qos), 0);
	int added = subidx_add(w->subs, e->filter.ptr, e->filter.len, s, data);

	if (added < 0)
		return ST_SUBACK_FAILURE;
	if (session_sub_add(s, e->filter.ptr, e->filter.len, data) != ST_OK) {
		subidx_remove(w->subs, e->filter.ptr, e->filter.len, s);
		return ST_SUBACK_FAILURE;
	}
	if (log_enabled(&w->b->log, LOG_T_SUBSCRIBE))
		log_msg(&w->b->log, LOG_T_SUBSCRIBE, "%.*s %u %.*s", (int)s->client_id_len,
		        (const char *)s->client_id, qos, (int)e->filter.len,
		        (const char *)e->filter.ptr);
	return qos;
}

int handle_subscribe(struct conn *c, const struct st_packet *pkt)
{
	const struct st_subscribe *sub = &pkt->subscribe;
	struct st_sub_iter it;
	struct st_sub_entry e;
	int64_t off = out_suback_begin(c, ST_SUBACK, sub->packet_id, sub->count);
	uint32_t i = 0;

	if (off < 0)
		return (int)off;
	st_sub_iter_init(&it, pkt);
	while (st_sub_iter_next(&it, &e)) {
		uint8_t code = subscribe_one(c, &e);

		out_code_set(c, off, i++, code);
		/* Retained messages follow the SUBACK [MQTT-3.3.1-6]. */
		if (code != ST_SUBACK_FAILURE && c->w->b->cfg.retain_available)
			route_retained(c->w, c->session, e.filter.ptr, e.filter.len,
			               subdata_make(code, 0));
	}
	return ST_OK;
}

int handle_unsubscribe(struct conn *c, const struct st_packet *pkt)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	struct st_sub_iter it;
	struct st_sub_entry e;

	st_sub_iter_init(&it, pkt);
	while (st_sub_iter_next(&it, &e)) {
		if (subidx_remove(w->subs, e.filter.ptr, e.filter.len, s) == ST_OK)
			session_sub_remove(s, e.filter.ptr, e.filter.len);
		if (log_enabled(&w->b->log, LOG_T_UNSUBSCRIBE))
			log_msg(&w->b->log, LOG_T_UNSUBSCRIBE, "%.*s %.*s", (int)s->client_id_len,
			        (const char *)s->client_id, (int)e.filter.len,
			        (const char *)e.filter.ptr);
	}
	out_unsuback(c, pkt->subscribe.packet_id);
	return ST_OK;
}
