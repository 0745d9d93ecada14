/*
 * PUBLISH from a client and the acknowledgements of both QoS flows. Inbound QoS 2 is
 * delivered on the first PUBLISH and deduplicated by packet id until PUBREL (session.c).
 */
#include "broker.h"
#include "conn.h"
#include "handlers.h"
#include "out.h"
#include "route.h"
#include "session.h"
#include "worker.h"

int handle_publish(struct conn *c, const struct st_publish *p)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	struct pub_view v = {.topic = p->topic, .props = {0}, .payload = p->payload};
	int ret;

	if (p->topic.len == 0)
		return ST_ERR_TOPIC;
	/* A retained PUBLISH where retain is off is refused like MQTT 5 does (0x9A). */
	if (p->retain && !w->b->cfg.retain_available)
		return ST_ERR_PROTOCOL;
	if (w->b->max_payload && p->payload.len > w->b->max_payload)
		return ST_ERR_TOO_LARGE;
	w->stats.msgs_received++;

	switch (p->qos) {
	case 0:
		return route_publish(w, s, &v, 0, p->retain);
	case 1:
		ret = route_publish(w, s, &v, 1, p->retain);
		if (ret == ST_OK)
			out_ack(c, ST_PUBACK, p->packet_id, 0);
		return ret;
	default:
		ret = session_in_qos2_begin(s, p->packet_id);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			ret = route_publish(w, s, &v, 2, p->retain);
			if (ret < 0)
				return ret;
		}
		out_ack(c, ST_PUBREC, p->packet_id, 0);
		return ST_OK;
	}
}

int handle_ack(struct conn *c, uint8_t type, const struct st_ack *ack)
{
	struct session *s = c->session;

	switch (type) {
	case ST_PUBACK:
		if (session_out_puback(s, ack->packet_id))
			route_pump(s);
		return ST_OK;
	case ST_PUBREC:
		/* An unknown id still gets its PUBREL so the client's flow can finish. */
		session_out_pubrec(s, ack->packet_id);
		out_ack(c, ST_PUBREL, ack->packet_id, 0);
		return ST_OK;
	case ST_PUBREL:
		session_in_qos2_release(s, ack->packet_id);
		out_ack(c, ST_PUBCOMP, ack->packet_id, 0);
		return ST_OK;
	default:
		if (session_out_pubcomp(s, ack->packet_id))
			route_pump(s);
		return ST_OK;
	}
}
