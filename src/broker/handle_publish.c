/*
 * PUBLISH from a client and the acknowledgements of both QoS flows. Inbound QoS 2 is
 * delivered on the first PUBLISH and deduplicated by packet id until PUBREL (session.c).
 *
 * MQTT 5 PUBLISHes also carry properties: the topic alias is resolved (or set), the message
 * expiry becomes a deadline, the payload format is checked, and the properties that travel
 * to subscribers are kept as one block. A 3.1.1 PUBLISH takes none of these branches.
 */
#include <string.h>

#include "access.h"
#include "broker.h"
#include "base/log.h"
#include "bridge.h"
#include "conn.h"
#include "handlers.h"
#include "mount.h"
#include "out.h"
#include "persist.h"
#include "route.h"
#include "session.h"
#include "starling/utf8.h"
#include "worker.h"

/* Properties the broker rewrites per delivery instead of forwarding. */
#define PROPS_NOT_FORWARDED                                                                        \
	((1ull << ST_PROP_TOPIC_ALIAS) | (1ull << ST_PROP_MESSAGE_EXPIRY) |                        \
	 (1ull << ST_PROP_WILL_DELAY) | (1ull << ST_PROP_SUBSCRIPTION_ID))

int handle_forward_props(struct worker *w, struct st_bytes raw, const struct st_props *parsed,
                         struct st_bytes *out)
{
	struct st_prop_iter it;
	struct st_prop prop;
	uint8_t *p, *dst;

	if (!(parsed->present & PROPS_NOT_FORWARDED)) {
		*out = raw;
		return ST_OK;
	}
	p = dst = worker_scratch(w, raw.len ? raw.len : 1);
	if (!p)
		return ST_ERR_NOMEM;
	st_prop_iter_init(&it, raw);
	while (st_prop_iter_next(&it, &prop)) {
		if ((PROPS_NOT_FORWARDED >> prop.id) & 1)
			continue;
		memcpy(dst, prop.raw.ptr, prop.raw.len);
		dst += prop.raw.len;
	}
	*out = (struct st_bytes){p, (uint32_t)(dst - p)};
	return ST_OK;
}

/* The MQTT 5 part of an inbound PUBLISH: aliases, expiry, payload format, forwarding. */
static int publish_v5(struct conn *c, const struct st_publish *p, struct pub_view *v,
                      bool *bad_format)
{
	struct st_props pp;
	int ret = st_props_parse(p->props, ST_PCTX_PUBLISH, &pp);

	if (ret < 0)
		return ret;
	/* Only a server sends Subscription Identifiers [MQTT-3.3.4-6]. */
	if (st_props_has(&pp, ST_PROP_SUBSCRIPTION_ID))
		return ST_ERR_PROTOCOL;
	if (st_props_has(&pp, ST_PROP_TOPIC_ALIAS)) {
		ret = p->topic.len ? alias_in_set(&c->v5->alias_in, pp.topic_alias, p->topic)
		                   : alias_in_get(&c->v5->alias_in, pp.topic_alias, &v->topic);
		if (ret < 0)
			return ret;
	} else if (p->topic.len == 0) {
		return ST_ERR_PROTOCOL; /* no topic and no alias: a Protocol Error (3.3.2.1) */
	}
	if (pp.message_expiry_s)
		v->expiry_ms = c->w->now_ms + (uint64_t)pp.message_expiry_s * 1000;
	/* Payload Format Indicator 1 promises UTF-8; the broker checks it [MQTT-3.3.2-4]. */
	*bad_format =
	        pp.payload_format == 1 && st_utf8_check(p->payload.ptr, p->payload.len) != ST_OK;
	return handle_forward_props(c->w, p->props, &pp, &v->props);
}

static void publish_ack(struct conn *c, uint8_t type, uint16_t pid, bool bad_format, bool nobody);
static int publish_refused(struct conn *c, const struct st_publish *p);
static int publish_over_memory(struct conn *c, const struct st_publish *p);

/*
 * A PUBLISH the ACL does not let the client write: dropped. 3.x has no way to say so, so it is
 * acknowledged as if delivered (Mosquitto does the same); MQTT 5 answers PUBACK or PUBREC
 * 0x87, which ends a QoS 2 flow at once: no PUBREL follows a failed PUBREC [MQTT-4.3.3-4].
 */
static int publish_denied(struct conn *c, const struct st_publish *p, const struct pub_view *v)
{
	struct worker *w = c->w;
	int ret;

	if (log_enabled(&w->log, LOG_T_DEBUG))
		log_msg(&w->log, LOG_T_DEBUG, "Denied PUBLISH from %.*s to %.*s (ACL).",
		        (int)c->session->client_id_len, (const char *)c->session->client_id,
		        (int)v->topic.len, (const char *)v->topic.ptr);
	if (p->qos == 0)
		return ST_OK;
	if (c->v5) {
		out_ack(c, p->qos == 1 ? ST_PUBACK : ST_PUBREC, p->packet_id, ST_RC_NOT_AUTHORIZED);
		return ST_OK;
	}
	if (p->qos == 1) {
		out_ack(c, ST_PUBACK, p->packet_id, 0);
		return ST_OK;
	}
	/* 3.x QoS 2: the flow runs as for a delivered message, PUBREL and PUBCOMP included. */
	ret = session_in_qos2_begin(c->session, p->packet_id, 0);
	if (ret < 0)
		return ret;
	out_ack(c, ST_PUBREC, p->packet_id, 0);
	return ST_OK;
}

int handle_publish(struct conn *c, const struct st_publish *p)
{
	struct worker *w = c->w;
	struct session *s = c->session;
	struct pub_view v = {.topic = p->topic, .payload = p->payload};
	bool bad_format = false, drop = false;
	int ret;

	/* Above the listener's max_qos: the client is disconnected (MQTT 5: DISCONNECT 0x9B
	 * [MQTT-3.2.2-11]; 3.x as Mosquitto does). QoS 0 never pays for the look-up. */
	if (p->qos && p->qos > w->b->cfg.listeners[c->listener].lim.max_qos)
		return ST_ERR_QOS_UNSUPPORTED;
	if (c->v5) {
		ret = publish_v5(c, p, &v, &bad_format);
		if (ret < 0)
			return ret;
	} else if (p->topic.len == 0) {
		return ST_ERR_TOPIC;
	}
	/* A mounted client's topic lives under its listener's prefix (mount.h). */
	if (c->mount_len && (ret = mount_conn_name(c, &v.topic)) != ST_OK)
		return ret;
	/* From a bridge's remote: its local topic, or acknowledged and dropped (bridge.h). */
	if (c->bridge)
		drop = bridge_topic_in(c, &v.topic) == 0;
	/* A retained PUBLISH where retain is off: MQTT 5 says 0x9A [MQTT-3.3.1-?]. */
	if (p->retain && !w->b->cfg.retain_available)
		return ST_ERR_RETAIN;
	if (w->b->max_payload && p->payload.len > w->b->max_payload)
		return ST_ERR_TOO_LARGE;
	w->stats.msgs_received++;
	w->stats.pub_in[p->qos]++;
	w->stats.pub_in_bytes[p->qos] += p->payload.len;
	/* One predictable branch without an acl_file. */
	if (s->acl && !access_can(s, &v, ACL_WRITE))
		return publish_denied(c, p, &v);
	/* The log cannot take it (disk full, I/O error, too far behind): not accepted, so not
	 * acknowledged as accepted. A resent QoS 2 PUBLISH already stored is answered below. */
	if (p->qos && persist_refusing(w) &&
	    !(p->qos == 2 && session_in_qos2_pending(s, p->packet_id)))
		return publish_refused(c, p);
	/* memory_limit reached (limits.h): one worker-local byte per PUBLISH. Deleting a
	 * retained message frees memory, so it is let through. */
	if (w->mem_over && !(p->retain && p->payload.len == 0) &&
	    !(p->qos == 2 && session_in_qos2_pending(s, p->packet_id)))
		return publish_over_memory(c, p);

	if (p->qos == 2) {
		/* The broker's Receive Maximum bounds QoS 2 flows awaiting PUBREL [MQTT-3.3.4-8].
		 */
		if (c->v5 && s->in_qos2_count >= c->v5->receive_max_in &&
		    !session_in_qos2_pending(s, p->packet_id))
			return ST_ERR_RECEIVE_MAX;
		if (session_in_qos2_pending(s, p->packet_id)) {
			/* A resend: other workers that lost it in a crash take it again (persist.h,
			 * origins); it is acknowledged as it was the first time. */
			v.origin = s->ps ? session_in_qos2_origin(s, p->packet_id) : 0;
			v.osrc = (uint16_t)w->index;
			ret = v.origin && !bad_format && !drop ? route_resend(w, &v, p->retain) : 0;
		} else {
			v.origin = s->ps ? persist_origin_new(w) : 0;
			v.osrc = (uint16_t)w->index;
			ret = session_in_qos2_begin(s, p->packet_id, v.origin);
			if (ret == 1 && !bad_format && !drop)
				ret = route_publish(w, s, &v, 2, p->retain);
			else if (ret == 1)
				ret = 0;
		}
		if (ret < 0)
			return ret;
		publish_ack(c, ST_PUBREC, p->packet_id, bad_format, ret == 0);
		if (w->xw.backlog > XW_BACKLOG_HIGH)
			worker_conn_pause(w, c);
		return ST_OK;
	}
	ret = bad_format || drop ? 0 : route_publish(w, s, &v, p->qos, p->retain);
	if (ret < 0)
		return ret;
	/* Other workers are behind: this publisher waits, its acknowledgements with it. */
	if (w->xw.backlog > XW_BACKLOG_HIGH)
		worker_conn_pause(w, c);
	if (p->qos == 1)
		publish_ack(c, ST_PUBACK, p->packet_id, bad_format, ret == 0);
	return ST_OK;
}

static int publish_refused(struct conn *c, const struct st_publish *p)
{
	c->w->ps->stats.refused++;
	/* MQTT 5: Quota exceeded; 3.x has no way to refuse, so no acknowledgement: the client
	 * sends it again when it reconnects. */
	if (c->v5)
		out_ack(c, p->qos == 1 ? ST_PUBACK : ST_PUBREC, p->packet_id, ST_RC_QUOTA_EXCEEDED);
	return ST_OK;
}

/*
 * Over memory_limit. Mosquitto drops the message and disconnects the client when an
 * allocation is refused; here an MQTT 5 client is told instead (PUBACK/PUBREC 0x97 Quota
 * exceeded, QoS 0 dropped), while a 3.x client sending QoS 1/2, which has no way to be told,
 * is disconnected as in Mosquitto, so that it sends the message again when it reconnects.
 */
static int publish_over_memory(struct conn *c, const struct st_publish *p)
{
	c->w->stats.msgs_dropped++;
	if (p->qos == 0)
		return ST_OK;
	if (c->v5) {
		out_ack(c, p->qos == 1 ? ST_PUBACK : ST_PUBREC, p->packet_id, ST_RC_QUOTA_EXCEEDED);
		return ST_OK;
	}
	conn_close(c, false, "memory_limit reached");
	return ST_OK;
}

/* PUBACK or PUBREC for an accepted PUBLISH (MQTT 5: with the reason, and why if it failed). */
static void publish_ack(struct conn *c, uint8_t type, uint16_t pid, bool bad_format, bool nobody)
{
	if (bad_format)
		out_ack_why(c, type, pid, ST_RC_PAYLOAD_FORMAT_INVALID,
		            "payload format indicator 1 but the payload is not UTF-8");
	else
		out_ack(c, type, pid, nobody ? ST_RC_NO_MATCHING_SUBSCRIBERS : 0);
}

/* Checks an MQTT 5 acknowledgement's properties. */
static int ack_v5(struct conn *c, const struct st_ack *ack)
{
	struct st_props ap;

	if (!c->v5)
		return ST_OK;
	return st_props_parse(ack->props, ST_PCTX_ACK, &ap);
}

int handle_ack(struct conn *c, uint8_t type, const struct st_ack *ack)
{
	struct session *s = c->session;
	int ret = ack_v5(c, ack);
	bool known;

	if (ret < 0)
		return ret;
	/* An acknowledgement of the other QoS's kind for a message in flight (PUBREC or PUBCOMP
	 * for QoS 1, PUBACK for QoS 2): the client and the broker disagree on the flow, which
	 * neither can repair (3.1.1 4.3, MQTT 5 4.3 and 4.13). An unused id is not an error. */
	if (type != ST_PUBREL && session_out_qos(s, ack->packet_id) == (type == ST_PUBACK ? 2 : 1))
		return ST_ERR_PROTOCOL;
	switch (type) {
	case ST_PUBACK:
		if (session_out_puback(s, ack->packet_id))
			route_pump(s);
		return ST_OK;
	case ST_PUBREC:
		/* A failure code ends the QoS 2 flow: no PUBREL [MQTT-4.3.3-?]. */
		if (ack->reason >= 0x80) {
			if (session_out_pubrec(s, ack->packet_id) &&
			    session_out_pubcomp(s, ack->packet_id))
				route_pump(s);
			return ST_OK;
		}
		/* An unknown id still gets its PUBREL so the client's flow can finish; a PUBREC
		 * repeated for a message already awaiting PUBCOMP gets it again, as known. */
		known = session_out_pubrec(s, ack->packet_id) ||
		        session_out_qos(s, ack->packet_id) == 2;
		out_ack(c, ST_PUBREL, ack->packet_id, known ? 0 : ST_RC_PACKET_ID_NOT_FOUND);
		return ST_OK;
	case ST_PUBREL:
		known = session_in_qos2_release(s, ack->packet_id);
		out_ack(c, ST_PUBCOMP, ack->packet_id, known ? 0 : ST_RC_PACKET_ID_NOT_FOUND);
		return ST_OK;
	default:
		if (session_out_pubcomp(s, ack->packet_id))
			route_pump(s);
		return ST_OK;
	}
}
