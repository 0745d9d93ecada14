/*
 * A small blocking MQTT client for starling-pub and starling-sub: the protocol half (the
 * transport half, socket, buffers and framing, is client_io.c).
 *
 * Protocol state: a byte per packet identifier for outgoing QoS 1/2 (awaiting PUBACK, PUBREC
 * or PUBCOMP) and a bit per identifier for incoming QoS 2 messages between PUBREC and
 * PUBREL. Incoming QoS 2 messages are delivered when the PUBLISH arrives and duplicates are
 * suppressed until the PUBREL [MQTT-4.3.3-10], so no message is copied or held back.
 *
 * MQTT 5: property blocks come encoded from the caller and go out as they are, except that
 * CONNECT gets a Receive Maximum when the caller gave none (as libmosquitto does) and a Topic
 * Alias the broker does not accept is taken out of the PUBLISH properties. The broker's
 * CONNACK properties set the limits this client then keeps: Receive Maximum, Maximum QoS,
 * Retain Available, Maximum Packet Size, Topic Alias Maximum, Server Keep Alive; an Assigned
 * Client Identifier replaces an empty one. Topic aliases from the broker are kept in a table
 * of owned copies, one slot per alias up to the maximum we announced (none unless the user
 * asked with -D connect topic-alias-maximum N). A protocol error from the broker is answered
 * with DISCONNECT and its reason code before the connection closes (section 4.13).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "starling/codec.h"
#include "starling/error.h"
#include "starling/props.h"
#include "client_int.h"

static bool is_v5(const struct client *c)
{
	return c->cfg.level == ST_MQTT_5;
}

int client_new(struct client **out, const struct client_config *cfg)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return ST_ERR_NOMEM;
	c->cfg = *cfg;
	if (c->cfg.inflight_max == 0 || c->cfg.inflight_max > CLIENT_INFLIGHT_MAX)
		c->cfg.inflight_max = CLIENT_INFLIGHT_DEFAULT;
	c->fd = -1;
	c->broker_reason = -1;
	c->id_shown = cfg->client_id;
	c->keepalive_s = cfg->keepalive_s;
	c->inflight_max = c->cfg.inflight_max;
	c->max_qos = 2;
	c->retain_ok = true;
	c->publish_props = cfg->publish_props;
	*out = c;
	return ST_OK;
}

static void free_aliases(struct client *c)
{
	if (!c->aliases)
		return;
	for (uint32_t a = 0; a <= c->alias_max_in; a++)
		free(c->aliases[a].topic);
	free(c->aliases);
	c->aliases = NULL;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	client_close_socket(c);
	free_aliases(c);
	free(c->assigned_id);
	free(c->props_buf);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

uint32_t client_inflight(const struct client *c)
{
	return c->inflight;
}

uint32_t client_inflight_max(const struct client *c)
{
	return c->inflight_max;
}

int client_broker_reason(const struct client *c)
{
	return c->broker_reason;
}

uint32_t client_incoming_pending(const struct client *c)
{
	return c->in_pending;
}

void client_refuse_messages(struct client *c)
{
	c->refusing = true;
}

/* --- packet identifiers ----------------------------------------------------------------- */

/*
 * The next identifier no outgoing flow uses [MQTT-2.2.1-3]; 0 is never used. Returns 0 when
 * every identifier is taken.
 */
static uint16_t next_id(struct client *c)
{
	for (uint32_t tries = 0; tries < CLIENT_IDS; tries++) {
		c->last_id = (uint16_t)(c->last_id + 1);
		if (c->last_id != 0 && c->out[c->last_id] == OUT_FREE)
			return c->last_id;
	}
	return 0;
}

static bool in_qos2_test(const struct client *c, uint16_t id)
{
	return c->in_qos2[id / 8] & (1u << (id % 8));
}

static void in_qos2_set(struct client *c, uint16_t id, bool on)
{
	uint8_t bit = (uint8_t)(1u << (id % 8));

	if (on && !(c->in_qos2[id / 8] & bit)) {
		c->in_qos2[id / 8] |= bit;
		c->in_pending++;
	} else if (!on && (c->in_qos2[id / 8] & bit)) {
		c->in_qos2[id / 8] &= (uint8_t)~bit;
		c->in_pending--;
	}
}

/* --- MQTT 5 property blocks ------------------------------------------------------------- */

static int props_reserve(struct client *c, size_t need)
{
	uint8_t *p;

	if (need <= c->props_cap)
		return ST_OK;
	p = realloc(c->props_buf, need);
	if (!p)
		return client_fail(c, ST_ERR_NOMEM, NULL);
	c->props_buf = p;
	c->props_cap = need;
	return ST_OK;
}

/*
 * Learns from our own CONNECT and PUBLISH properties what we asked for (Topic Alias Maximum,
 * Maximum Packet Size) and what we will send (a Topic Alias); builds the CONNECT block, with
 * the Receive Maximum appended unless the user gave one, in *out.
 */
static int prepare_v5(struct client *c, struct st_bytes *out)
{
	struct st_props own, pub;
	struct st_prop_writer w;
	int rc;

	if (st_props_parse(c->cfg.connect_props, ST_PCTX_CONNECT, &own) != ST_OK ||
	    st_props_parse(c->cfg.publish_props, ST_PCTX_PUBLISH, &pub) != ST_OK)
		return client_fail(c, ST_ERR_PROPERTY, "Invalid MQTT 5 properties.");
	c->alias_max_in = own.topic_alias_maximum;
	if (st_props_has(&own, ST_PROP_MAXIMUM_PACKET_SIZE))
		c->packet_max_in = own.maximum_packet_size;
	c->publish_alias = pub.topic_alias;
	if (c->alias_max_in) {
		c->aliases = calloc((size_t)c->alias_max_in + 1, sizeof(*c->aliases));
		if (!c->aliases)
			return client_fail(c, ST_ERR_NOMEM, NULL);
	}
	rc = props_reserve(c, c->cfg.connect_props.len + 3);
	if (rc < 0)
		return rc;
	st_pw_init(&w, c->props_buf, c->props_cap);
	st_pw_raw(&w, c->cfg.connect_props);
	if (!st_props_has(&own, ST_PROP_RECEIVE_MAXIMUM) && c->cfg.receive_max)
		st_pw_u16(&w, ST_PROP_RECEIVE_MAXIMUM, c->cfg.receive_max);
	*out = (struct st_bytes){c->props_buf, (uint32_t)st_pw_len(&w)};
	return ST_OK;
}

/*
 * The PUBLISH properties to send: the user's, without the Topic Alias when the broker takes
 * no alias that high [MQTT-3.2.2-17] [MQTT-3.2.2-18] (the full topic then goes every time).
 * Runs after CONNACK, when the CONNECT block in props_buf is no longer needed.
 */
static int choose_publish_props(struct client *c)
{
	struct st_prop_iter it;
	struct st_prop prop;
	struct st_prop_writer w;
	int rc;

	if (!c->publish_alias || c->publish_alias <= c->alias_max_out)
		return ST_OK;
	c->publish_alias = 0;
	rc = props_reserve(c, c->cfg.publish_props.len);
	if (rc < 0)
		return rc;
	st_pw_init(&w, c->props_buf, c->props_cap);
	st_prop_iter_init(&it, c->cfg.publish_props);
	while (st_prop_iter_next(&it, &prop)) {
		if (prop.id != ST_PROP_TOPIC_ALIAS)
			st_pw_raw(&w, prop.raw);
	}
	c->publish_props = (struct st_bytes){c->props_buf, (uint32_t)st_pw_len(&w)};
	return ST_OK;
}

/* Takes the broker's limits and our identity from a successful CONNACK. */
static int apply_connack(struct client *c, struct st_bytes raw)
{
	struct st_props p;
	int rc = st_props_parse(raw, ST_PCTX_CONNACK, &p);

	if (rc != ST_OK)
		return client_fail(c, rc, NULL);
	if (p.assigned_client_id.len) {
		/* Ours from now on [MQTT-3.2.2-16]; debug lines show it as libmosquitto does. */
		c->assigned_id =
		        strndup((const char *)p.assigned_client_id.ptr, p.assigned_client_id.len);
		if (!c->assigned_id)
			return client_fail(c, ST_ERR_NOMEM, NULL);
		c->id_shown = c->assigned_id;
	}
	if (st_props_has(&p, ST_PROP_SERVER_KEEP_ALIVE))
		c->keepalive_s = p.server_keep_alive_s; /* [MQTT-3.2.2-21] */
	if (st_props_has(&p, ST_PROP_RECEIVE_MAXIMUM) && p.receive_maximum < c->inflight_max)
		c->inflight_max = p.receive_maximum; /* [MQTT-3.3.4-7] [MQTT-4.9.0-1] */
	if (st_props_has(&p, ST_PROP_MAXIMUM_QOS))
		c->max_qos = p.maximum_qos; /* [MQTT-3.2.2-11] */
	if (st_props_has(&p, ST_PROP_RETAIN_AVAILABLE))
		c->retain_ok = p.retain_available != 0; /* [MQTT-3.2.2-14] */
	if (st_props_has(&p, ST_PROP_MAXIMUM_PACKET_SIZE))
		c->packet_max_out = p.maximum_packet_size; /* [MQTT-3.2.2-15] */
	c->alias_max_out = p.topic_alias_maximum;
	return choose_publish_props(c);
}

/* --- connecting ----------------------------------------------------------------------- */

static struct st_bytes cstr(const char *s)
{
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void fill_connect(const struct client *c, struct st_packet *pkt, struct st_bytes props)
{
	const struct client_config *k = &c->cfg;
	struct st_connect *cn = &pkt->connect;

	pkt->type = ST_CONNECT;
	cn->protocol_name = cstr(k->level == ST_MQTT_31 ? "MQIsdp" : "MQTT");
	cn->level = k->level;
	cn->clean_start = k->clean_session;
	cn->keepalive_s = k->keepalive_s;
	cn->props = props;
	cn->client_id = cstr(k->client_id);
	if (k->will_topic) {
		cn->will_flag = true;
		cn->will_qos = k->will_qos;
		cn->will_retain = k->will_retain;
		cn->will_props = k->will_props;
		cn->will_topic = cstr(k->will_topic);
		cn->will_payload =
		        (struct st_bytes){k->will_payload, (uint32_t)k->will_payload_len};
	}
	/* MQTT 3.x has no password without a user name [MQTT-3.1.2-22] (cli.c refuses -P
	 * alone there); MQTT 5 allows one (section 3.1.2.9). */
	if (k->username) {
		cn->username_flag = true;
		cn->username = cstr(k->username);
	}
	if (k->password && (k->username || k->level == ST_MQTT_5)) {
		cn->password_flag = true;
		cn->password = cstr(k->password);
	}
}

/*
 * A 3.x broker answers an MQTT 5 CONNECT with a 3.x CONNACK (no property length: remaining
 * length 2), usually "unacceptable protocol version" (0x01): libmosquitto reports that as
 * 0x84, and so do we; any other 3.x CONNACK is a protocol error. The packet is still at the
 * front of the read buffer (consumed bytes go on the next read).
 */
static int check_v3_connack(struct client *c, struct st_packet *pkt)
{
	if (!is_v5(c) || c->rend - c->rstart < 4 || c->rbuf[c->rstart + 1] != 2)
		return ST_OK;
	if (c->rbuf[c->rstart + 3] != ST_CONNACK_BAD_PROTOCOL)
		return client_fail(c, ST_ERR_PROTOCOL,
		                   "A network protocol error occurred when "
		                   "communicating with the broker.");
	pkt->connack = (struct st_connack){.code = ST_RC_UNSUPPORTED_VERSION};
	return ST_OK;
}

static int await_connack(struct client *c, struct st_packet *pkt)
{
	int64_t deadline = client_now_ms() + (c->keepalive_s ? PING_FAIL_MS(c) : 60000);
	unsigned unused;
	int rc = client_next_packet(c, deadline, NULL, 0, pkt, &unused);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return client_fail(c, ST_ERR_SYS, "Timed out waiting for CONNACK.");
	if (pkt->type != ST_CONNACK)
		return client_fail(c, ST_ERR_PROTOCOL,
		                   "Protocol error: the broker did not send CONNACK.");
	return check_v3_connack(c, pkt);
}

int client_connect(struct client *c, uint8_t *connack_code, bool *session_present)
{
	struct st_packet pkt = {0};
	struct st_bytes props = {0};
	int rc;

	c->fail_text = NULL;
	*connack_code = 0;
	*session_present = false;
	if (is_v5(c) && (rc = prepare_v5(c, &props)) < 0)
		return rc;
	rc = client_open_socket(c);
	if (rc < 0)
		return rc;
	/* CONNECT is the first packet on the connection [MQTT-3.1.0-1]. */
	fill_connect(c, &pkt, props);
	client_debug(c, "sending CONNECT");
	rc = client_send_packet(c, &pkt);
	if (rc == ST_OK)
		rc = await_connack(c, &pkt);
	if (rc == ST_OK && is_v5(c) && pkt.connack.code == 0)
		rc = apply_connack(c, pkt.connack.props);
	if (rc < 0)
		return rc;
	client_debug(c, "received CONNACK (%u)", pkt.connack.code);
	*connack_code = pkt.connack.code;
	*session_present = pkt.connack.session_present;
	/* After a refusal the broker closes the connection [MQTT-3.2.2-7]; the socket stays
	 * open for the caller's DISCONNECT, as mosquitto_sub sends one. */
	c->connected = pkt.connack.code == 0;
	return ST_OK;
}

/* --- publishing and subscribing ---------------------------------------------------------- */

int client_publish(struct client *c, const char *topic, const uint8_t *payload, size_t len,
                   uint8_t qos, bool retain, uint16_t *packet_id)
{
	struct st_packet pkt = {.type = ST_PUBLISH};
	struct st_publish *p = &pkt.publish;
	int rc;

	c->fail_text = NULL;
	if (len > ST_REMLEN_MAX)
		return client_fail(c, ST_ERR_TOO_LARGE, "Message payload is too large.");
	if (qos > c->max_qos) /* [MQTT-3.2.2-11] */
		return client_fail(c, ST_ERR_QOS_UNSUPPORTED,
		                   "Message QoS not supported on broker, try a lower QoS.");
	if (qos > 0 && c->inflight >= c->inflight_max)
		return ST_ERR_LIMIT; /* the send quota is spent [MQTT-4.9.0-2] */
	p->qos = qos;
	p->retain = retain && c->retain_ok; /* [MQTT-3.2.2-14], as libmosquitto drops it */
	p->topic = cstr(topic);
	p->payload = (struct st_bytes){payload, (uint32_t)len};
	if (is_v5(c)) {
		p->props = c->publish_props;
		/* Once the alias is bound, an empty topic stands for it (section 3.3.2.3.4). */
		if (c->publish_alias && c->alias_bound)
			p->topic = (struct st_bytes){0};
	}
	p->packet_id = qos > 0 ? 1 : 0; /* sized now; the real one is taken below */
	if (c->packet_max_out && st_packet_size(&pkt, c->cfg.level) > c->packet_max_out)
		return client_fail(c, ST_ERR_TOO_LARGE,
		                   "Message too large for the broker's maximum packet size.");
	if (qos > 0) {
		/* Unacknowledged until PUBACK (QoS 1) or PUBREC then PUBCOMP (QoS 2)
		 * [MQTT-4.3.2-3] [MQTT-4.3.3-3]. */
		p->packet_id = next_id(c);
		if (p->packet_id == 0)
			return ST_ERR_LIMIT; /* every identifier is in use (SUBSCRIBEs included) */
		c->out[p->packet_id] = qos == 1 ? OUT_WAIT_PUBACK : OUT_WAIT_PUBREC;
		c->inflight++;
	} else {
		/* Not sent (a QoS 0 PUBLISH has none), but libmosquitto numbers every message and
		 * -d shows the number: take the next one without holding it. */
		c->last_id = (uint16_t)(c->last_id + 1);
		if (c->last_id == 0)
			c->last_id = 1;
		p->packet_id = c->last_id;
	}
	if (packet_id)
		*packet_id = p->packet_id;
	client_debug_publish(c, "sending", p);
	rc = client_send_packet(c, &pkt);
	if (rc == ST_OK && c->publish_alias)
		c->alias_bound = true;
	return rc;
}

int client_subscribe(struct client *c, const char *const *filters, size_t n, uint8_t qos,
                     uint16_t *packet_id)
{
	struct st_packet pkt = {.type = ST_SUBSCRIBE};
	struct st_sub_entry *entries;
	uint8_t options = (uint8_t)(qos | (is_v5(c) ? c->cfg.sub_options : 0));
	int rc;

	c->fail_text = NULL;
	if (n == 0 || n > UINT16_MAX)
		return ST_ERR_NO_FILTERS;
	pkt.subscribe.packet_id = next_id(c);
	if (pkt.subscribe.packet_id == 0)
		return ST_ERR_LIMIT;
	entries = calloc(n, sizeof(*entries));
	if (!entries)
		return ST_ERR_NOMEM;
	for (size_t k = 0; k < n; k++) {
		entries[k].filter = cstr(filters[k]);
		entries[k].options = options;
		client_debug(c, "sending SUBSCRIBE (Mid: %u, Topic: %s, QoS: %u, Options: 0x%02x)",
		             pkt.subscribe.packet_id, filters[k], qos,
		             options & ~ST_SUBOPT_QOS_MASK);
	}
	pkt.subscribe.entries = entries;
	pkt.subscribe.count = (uint32_t)n;
	if (is_v5(c))
		pkt.subscribe.props = c->cfg.subscribe_props;
	c->out[pkt.subscribe.packet_id] = OUT_WAIT_SUBACK;
	if (packet_id)
		*packet_id = pkt.subscribe.packet_id;
	rc = client_send_packet(c, &pkt);
	free(entries);
	return rc;
}

/* --- receiving ------------------------------------------------------------------------- */

/*
 * Resolves an MQTT 5 topic alias in an incoming PUBLISH (section 3.3.2.3.4): a topic with an
 * alias binds it, an empty topic uses it. Aliases above what we announced, or 0, are the
 * broker's error [MQTT-3.3.2-11] [MQTT-3.3.2-8]; so is an empty topic with no alias or an
 * unbound one.
 */
static int resolve_alias(struct client *c, struct st_publish *p)
{
	struct st_props props;
	struct client_alias *a;
	int rc = st_props_parse(p->props, ST_PCTX_PUBLISH, &props);

	if (rc != ST_OK)
		return client_fail(c, rc, NULL);
	if (!st_props_has(&props, ST_PROP_TOPIC_ALIAS)) {
		if (p->topic.len == 0)
			return client_fail(
			        c, ST_ERR_PROTOCOL,
			        "Protocol error: a PUBLISH without topic or topic alias.");
		return ST_OK;
	}
	if (props.topic_alias == 0 || props.topic_alias > c->alias_max_in)
		return client_fail(c, ST_ERR_TOPIC_ALIAS,
		                   "Protocol error: the broker sent a topic alias above our "
		                   "Topic Alias Maximum.");
	a = &c->aliases[props.topic_alias];
	if (p->topic.len == 0) {
		if (!a->topic)
			return client_fail(
			        c, ST_ERR_PROTOCOL,
			        "Protocol error: the broker used a topic alias it had not "
			        "set.");
		p->topic = (struct st_bytes){a->topic, a->len};
		return ST_OK;
	}
	if (a->len < p->topic.len) {
		uint8_t *t = realloc(a->topic, p->topic.len);
		if (!t)
			return client_fail(c, ST_ERR_NOMEM, NULL);
		a->topic = t;
	}
	memcpy(a->topic, p->topic.ptr, p->topic.len);
	a->len = (uint16_t)p->topic.len;
	return ST_OK;
}

/* An incoming PUBLISH: acknowledge it, then hand it to the caller unless it repeats a QoS 2
 * message already delivered. Returns 1 to deliver, 0 to drop, or a negative error. */
static int on_publish(struct client *c, struct st_publish *p)
{
	int rc;

	if (is_v5(c) && (rc = resolve_alias(c, p)) < 0)
		return rc;
	client_debug_publish(c, "received", p);
	if (c->refusing)
		return 0; /* unacknowledged: a persistent session keeps it for next time */
	switch (p->qos) {
	case 0:
		return 1;
	case 1:
		/* PUBACK once we own the message [MQTT-4.3.2-4], in arrival order
		 * [MQTT-4.6.0-2]. */
		client_debug(c, "sending PUBACK (m%u, rc0)", p->packet_id);
		rc = client_send_ack(c, ST_PUBACK, p->packet_id, ST_RC_SUCCESS);
		return rc < 0 ? rc : 1;
	default:
		/* PUBREC for every copy until the PUBREL, but deliver only the first
		 * [MQTT-4.3.3-10]. */
		client_debug(c, "sending PUBREC (m%u, rc0)", p->packet_id);
		rc = client_send_ack(c, ST_PUBREC, p->packet_id, ST_RC_SUCCESS);
		if (rc < 0)
			return rc;
		if (in_qos2_test(c, p->packet_id))
			return 0;
		in_qos2_set(c, p->packet_id, true);
		return 1;
	}
}

/* The Reason String of an MQTT 5 ack or DISCONNECT, or an empty view. */
static int reason_string(struct client *c, struct st_bytes raw, enum st_prop_ctx ctx,
                         struct st_bytes *out)
{
	struct st_props p;
	int rc;

	*out = (struct st_bytes){0};
	if (!is_v5(c))
		return ST_OK;
	rc = st_props_parse(raw, ctx, &p);
	if (rc != ST_OK)
		return client_fail(c, rc, NULL);
	*out = p.reason_string;
	return ST_OK;
}

/* Completes an outgoing publish flow for `id` if it is in one of the states in `want`. */
static int complete_out(struct client *c, const struct st_ack *ack, uint8_t want, uint8_t want2,
                        struct client_event *ev)
{
	uint8_t state = c->out[ack->packet_id];
	int rc;

	if (state != want && state != want2)
		return 0; /* a late duplicate: nothing waits for it */
	c->out[ack->packet_id] = OUT_FREE;
	c->inflight--;
	ev->type = CLIENT_EV_PUBLISHED;
	ev->packet_id = ack->packet_id;
	ev->reason = ack->reason;
	rc = reason_string(c, ack->props, ST_PCTX_ACK, &ev->reason_string);
	return rc < 0 ? rc : 1;
}

/* Acknowledgements of our own packets. Returns 1 with an event, 0 without, or an error. */
static int on_ack(struct client *c, const struct st_packet *pkt, struct client_event *ev)
{
	uint16_t id = pkt->ack.packet_id;
	int rc;

	switch (pkt->type) {
	case ST_PUBACK:
		client_debug(c, "received PUBACK (Mid: %u, RC:%u)", id, pkt->ack.reason);
		return complete_out(c, &pkt->ack, OUT_WAIT_PUBACK, OUT_WAIT_PUBACK, ev);
	case ST_PUBREC:
		client_debug(c, "received PUBREC (Mid: %u)", id);
		/* A refusal (0x80 or more) ends the flow: no PUBREL [MQTT-4.3.3-4], the
		 * identifier is free again [MQTT-4.4.0-2]. */
		if (pkt->ack.reason >= ST_RC_UNSPECIFIED)
			return complete_out(c, &pkt->ack, OUT_WAIT_PUBREC, OUT_WAIT_PUBREC, ev);
		if (c->out[id] != OUT_WAIT_PUBREC && c->out[id] != OUT_WAIT_PUBCOMP)
			return 0;
		/* PUBREL with the same identifier; PUBREL is now what awaits an answer
		 * [MQTT-4.3.3-4] [MQTT-4.3.3-5]. */
		c->out[id] = OUT_WAIT_PUBCOMP;
		client_debug(c, "sending PUBREL (m%u)", id);
		return client_send_ack(c, ST_PUBREL, id, ST_RC_SUCCESS);
	case ST_PUBCOMP:
		client_debug(c, "received PUBCOMP (Mid: %u, RC:%u)", id, pkt->ack.reason);
		return complete_out(c, &pkt->ack, OUT_WAIT_PUBCOMP, OUT_WAIT_PUBCOMP, ev);
	default: /* ST_PUBREL: the broker releases a QoS 2 message it sent us */
		client_debug(c, "received PUBREL (Mid: %u)", id);
		in_qos2_set(c, id, false);
		client_debug(c, "sending PUBCOMP (m%u)", id);
		/* [MQTT-4.3.3-11]; 0x92 would say we never saw it, but we forget nothing
		 * while connected, so a late PUBREL is answered as a success. */
		rc = client_send_ack(c, ST_PUBCOMP, id, ST_RC_SUCCESS);
		if (rc < 0)
			return rc;
		ev->type = CLIENT_EV_RELEASED;
		ev->packet_id = id;
		return 1;
	}
}

/* The broker's MQTT 5 DISCONNECT: the connection is over (section 3.14). */
static int on_disconnect(struct client *c, const struct st_packet *pkt, struct client_event *ev)
{
	int rc;

	if (!is_v5(c))
		return client_fail(c, ST_ERR_PROTOCOL, "The broker closed the connection.");
	if (c->cfg.debug) {
		/* libmosquitto logs this one line without the "Client <id>" prefix. */
		printf("Received DISCONNECT (%u)\n", pkt->disconnect.reason);
		fflush(stdout);
	}
	rc = reason_string(c, pkt->disconnect.props, ST_PCTX_DISCONNECT, &ev->reason_string);
	if (rc < 0)
		return rc;
	ev->type = CLIENT_EV_DISCONNECTED;
	ev->reason = pkt->disconnect.reason;
	c->broker_reason = pkt->disconnect.reason;
	return 1;
}

/* Handles one packet from the broker. Returns 1 with an event for the caller, 0 without. */
static int on_packet(struct client *c, struct st_packet *pkt, struct client_event *ev)
{
	int rc;

	switch (pkt->type) {
	case ST_PUBLISH:
		rc = on_publish(c, &pkt->publish);
		if (rc == 1) {
			ev->type = CLIENT_EV_MESSAGE;
			ev->msg = pkt->publish;
		}
		return rc;
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		return on_ack(c, pkt, ev);
	case ST_SUBACK:
		client_debug(c, "received SUBACK");
		if (c->out[pkt->suback.packet_id] != OUT_WAIT_SUBACK)
			return 0;
		c->out[pkt->suback.packet_id] = OUT_FREE;
		ev->type = CLIENT_EV_SUBACK;
		ev->packet_id = pkt->suback.packet_id;
		ev->codes = pkt->suback.codes;
		return 1;
	case ST_UNSUBACK:
		client_debug(c, "received UNSUBACK");
		return 0;
	case ST_PINGRESP:
		client_debug(c, "received PINGRESP");
		c->ping_sent_ms = 0;
		return 0;
	case ST_DISCONNECT:
		return on_disconnect(c, pkt, ev);
	default:
		/* CONNECT, SUBSCRIBE, PINGREQ... travel the other way, and we start no AUTH
		 * exchange: a protocol violation closes the connection [MQTT-4.8.0-1]. */
		return client_fail(c, ST_ERR_PROTOCOL,
		                   "Protocol error: unexpected packet from the broker.");
	}
}

/*
 * Ends the connection after an error. In MQTT 5 a protocol error the broker made is first
 * named in a DISCONNECT (section 4.13.2): 0x81 malformed, 0x82 protocol error, 0x94 topic
 * alias, 0x95 packet too large. A lost connection gets none.
 */
static void abort_connection(struct client *c, int err)
{
	const char *text = c->fail_text;
	int sys_errno = c->sys_errno;

	if (is_v5(c) && c->connected && err != ST_ERR_SYS && !c->eof) {
		struct st_packet pkt = {.type = ST_DISCONNECT};

		pkt.disconnect.reason = st_err_reason_code(err);
		client_debug(c, "sending DISCONNECT");
		client_send_packet(c, &pkt); /* best effort: the connection ends either way */
		c->fail_text = text;
		c->sys_errno = sys_errno;
	}
	client_close_socket(c);
}

int client_wait(struct client *c, int64_t deadline_ms, const int *watch_fds, size_t nwatch,
                struct client_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	c->fail_text = NULL;
	if (c->fd < 0)
		return client_fail(c, ST_ERR_SYS, "The client is not currently connected.");
	/* Each pass handles one packet; acknowledgements and pings loop back for more, so
	 * the loop ends at an event, the deadline or an error. */
	for (;;) {
		struct st_packet pkt;
		unsigned hit = 0;
		int rc = client_next_packet(c, deadline_ms, watch_fds, nwatch, &pkt, &hit);

		if (rc == 0) {
			ev->type = CLIENT_EV_TIMEOUT;
			return ST_OK;
		}
		if (rc == 2) {
			ev->type = CLIENT_EV_WATCH;
			ev->watch_index = hit;
			return ST_OK;
		}
		if (rc == 1)
			rc = on_packet(c, &pkt, ev);
		if (rc < 0) {
			abort_connection(c, rc);
			return rc;
		}
		if (rc == 1) {
			if (ev->type == CLIENT_EV_DISCONNECTED)
				client_close_socket(c); /* the broker closes too [MQTT-3.14.4-2] */
			return ST_OK;
		}
	}
}

int client_disconnect(struct client *c, uint8_t reason, int linger_ms)
{
	int64_t deadline = client_now_ms() + linger_ms;
	struct st_packet pkt = {.type = ST_DISCONNECT};
	uint8_t sink[4096];
	int rc;

	c->fail_text = NULL;
	if (c->fd < 0)
		return client_fail(c, ST_ERR_SYS, "The client is not currently connected.");
	if (!c->connected) {
		/* After a refused CONNACK the broker has closed the connection [MQTT-3.2.2-7]:
		 * mosquitto_sub logs its DISCONNECT, which never reaches the wire. */
		client_debug(c, "sending DISCONNECT");
		client_close_socket(c);
		return ST_OK;
	}
	if (is_v5(c)) {
		pkt.disconnect.reason = reason;
		pkt.disconnect.props = c->cfg.disconnect_props;
	}
	client_debug(c, "sending DISCONNECT");
	/* A DISCONNECT with reason 0 makes the broker drop the will [MQTT-3.14.4-3]; then the
	 * client closes the connection and sends nothing more [MQTT-3.14.4-1]
	 * [MQTT-3.14.4-2]. */
	rc = client_send_packet(c, &pkt);
	if (rc < 0) {
		client_close_socket(c);
		return rc;
	}
	client_tls_close(c, true); /* close_notify, then what follows is drained unread */
	shutdown(c->fd, SHUT_WR);
	/* Closing with unread bytes would send a reset that can overtake the DISCONNECT;
	 * read until the broker closes its side (it does on DISCONNECT), within the linger. */
	for (int64_t now = client_now_ms(); now < deadline; now = client_now_ms()) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			continue;
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
	client_close_socket(c);
	return ST_OK;
}
