/*
 * The MQTT side of starling-bench's connections: CONNECT and SUBSCRIBE on the way up, the
 * per-packet handling of what the broker sends, QoS 1 and 2 acknowledgements in both roles, and
 * the pre-encoded PUBLISH templates the publishers copy.
 *
 * Received bytes are parsed where they lie in the provided buffer. A PUBLISH is read by a short
 * fast path (fixed header by the codec, then topic length, packet id, MQTT 5 property length,
 * payload) because it is the packet counted tens of millions of times per second; everything
 * else goes through the codec's full st_decode_body. Property blocks are skipped, except the
 * CONNACK properties that bound what the bench may send (Receive Maximum, Maximum QoS, Server
 * Keep Alive).
 *
 * Everything here runs on the thread that owns the connection and counts into that thread's
 * counters; what other threads see goes through atomics: the setup counts in bench_shared,
 * and flow control (flow.c), which a delivery may settle for a publisher on another thread.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/codec.h"

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static const char *role_name(const struct bench_conn *c)
{
	static const char *const names[] = {"subscriber", "publisher", "idle client"};
	return names[c->role];
}

void bench_mqtt_client_id(const struct bench *b, const struct bench_conn *c, char *out, size_t cap)
{
	static const char roles[] = "spi";
	uint32_t role_index = c->index;
	if (c->role == BENCH_ROLE_PUB)
		role_index -= b->plan->subs;
	else if (c->role == BENCH_ROLE_IDLE)
		role_index -= b->plan->subs + b->plan->pubs;
	snprintf(out, cap, "%s-%c%u", b->o->id_prefix, roles[c->role], role_index);
}

/* Encodes a packet at the end of the connection's output and schedules a flush. */
static void queue_packet(struct bench *b, struct bench_conn *c, const struct st_packet *pkt)
{
	size_t size = st_packet_size(pkt, b->o->level);
	if (size == 0)
		bench_fail(b, "cannot encode %s", st_packet_name(pkt->type));
	uint8_t *out = bench_out_reserve(b, c, (uint32_t)size);
	int rc = st_encode_packet(pkt, b->o->level, out, size);
	if (rc < 0)
		bench_fail(b, "encoding %s: %s", st_packet_name(pkt->type), st_strerror(rc));
	bench_out_commit(c, (uint32_t)rc);
	bench_mark_dirty(b, c);
}

static void queue_ack(struct bench *b, struct bench_conn *c, uint8_t type, uint16_t packet_id)
{
	struct st_packet pkt = {.type = type};
	pkt.ack.packet_id = packet_id;
	queue_packet(b, c, &pkt);
}

void bench_mqtt_queue_simple(struct bench *b, struct bench_conn *c, uint8_t type)
{
	struct st_packet pkt = {.type = type};
	queue_packet(b, c, &pkt);
}

void bench_mqtt_connected(struct bench *b, struct bench_conn *c)
{
	char id[96];
	bench_mqtt_client_id(b, c, id, sizeof(id));
	struct st_packet pkt = {.type = ST_CONNECT};
	pkt.connect.protocol_name = (struct st_bytes){(const uint8_t *)"MQTT", 4};
	pkt.connect.level = b->o->level;
	pkt.connect.clean_start = true;
	pkt.connect.keepalive_s = b->o->keepalive_s;
	/*
	 * --persistent: a session that outlives the connection. 3.1.1: clean session 0 (the id
	 * was connected clean just before, so nothing is inherited); 5.0: clean start with a
	 * Session Expiry Interval. Otherwise, in MQTT 5, an empty property block.
	 */
	static const uint8_t expiry_prop[5] = {0x11, (uint8_t)(BENCH_SESSION_EXPIRY_S >> 24),
	                                       (uint8_t)(BENCH_SESSION_EXPIRY_S >> 16),
	                                       (uint8_t)(BENCH_SESSION_EXPIRY_S >> 8),
	                                       (uint8_t)BENCH_SESSION_EXPIRY_S};
	if (b->o->persistent && b->o->level == ST_MQTT_5)
		pkt.connect.props = (struct st_bytes){expiry_prop, sizeof(expiry_prop)};
	else if (b->o->persistent)
		pkt.connect.clean_start = false;
	pkt.connect.client_id = (struct st_bytes){(const uint8_t *)id, (uint32_t)strlen(id)};
	if (b->o->username) {
		pkt.connect.username_flag = true;
		pkt.connect.username = (struct st_bytes){(const uint8_t *)b->o->username,
		                                         (uint32_t)strlen(b->o->username)};
	}
	if (b->o->password) {
		pkt.connect.password_flag = true;
		pkt.connect.password = (struct st_bytes){(const uint8_t *)b->o->password,
		                                         (uint32_t)strlen(b->o->password)};
	}
	queue_packet(b, c, &pkt);
	c->state = BENCH_CONN_CONNACK;
}

/* Queues the subscriber's filters, BENCH_SUB_CHUNK per SUBSCRIBE, packet ids 1, 2, ... */
static void queue_subscribes(struct bench *b, struct bench_conn *c)
{
	const struct bench_plan_sub *sub = &b->plan->sub[c->index];
	struct st_sub_entry entries[BENCH_SUB_CHUNK];
	static __thread char shared[BENCH_SUB_CHUNK][256];
	uint32_t done = 0, chunk = 0;

	while (done < sub->filter_count) {
		uint32_t n = sub->filter_count - done;
		if (n > BENCH_SUB_CHUNK)
			n = BENCH_SUB_CHUNK;
		for (uint32_t i = 0; i < n; i++) {
			size_t len;
			const char *f =
			        bench_plan_filter(b->plan, sub->first_filter + done + i, &len);
			if (b->o->share != NULL) {
				/* Set-up only: the shared form is built here, not kept in the plan.
				 */
				int w = snprintf(shared[i], sizeof(shared[i]), "$share/%s/%s",
				                 b->o->share, f);
				if (w < 0 || (size_t)w >= sizeof(shared[i]))
					bench_fail(b, "shared filter for '%s' too long", f);
				f = shared[i];
				len = (size_t)w;
			}
			entries[i].filter = (struct st_bytes){(const uint8_t *)f, (uint32_t)len};
			entries[i].options = b->o->qos;
		}
		struct st_packet pkt = {.type = ST_SUBSCRIBE};
		pkt.subscribe.packet_id = (uint16_t)(++chunk);
		pkt.subscribe.count = n;
		pkt.subscribe.entries = entries;
		queue_packet(b, c, &pkt);
		done += n;
	}
	c->subacks_pending = chunk;
}

static void set_ready(struct bench *b, struct bench_conn *c)
{
	if (c->state == BENCH_CONN_SUBSCRIBING)
		atomic_fetch_sub_explicit(&b->sh->subscribing, 1, memory_order_relaxed);
	c->state = BENCH_CONN_READY;
	atomic_fetch_add_explicit(&b->sh->ready, 1, memory_order_relaxed);
}

/* Size of a property value of identifier id at p[0..len), or -1 if unknown or truncated. */
static int prop_value_len(uint8_t id, const uint8_t *p, uint32_t len)
{
	switch (id) {
	case 0x01:
	case 0x17:
	case 0x19:
	case 0x24:
	case 0x25:
	case 0x28:
	case 0x29:
	case 0x2A:
		return 1;
	case 0x13:
	case 0x21:
	case 0x22:
	case 0x23:
		return 2;
	case 0x02:
	case 0x11:
	case 0x18:
	case 0x27:
		return 4;
	case 0x0B: {
		uint32_t v;
		int n = st_varint_decode(p, len, &v);
		return n > 0 ? n : -1;
	}
	case 0x03:
	case 0x08:
	case 0x09:
	case 0x12:
	case 0x15:
	case 0x16:
	case 0x1A:
	case 0x1C:
	case 0x1F:
		return len < 2 ? -1 : 2 + get_be16(p);
	case 0x26:
		if (len < 2 || len < 4u + get_be16(p))
			return -1;
		return 4 + get_be16(p) + get_be16(p + 2 + get_be16(p));
	default:
		return -1;
	}
}

/* Applies the MQTT 5 CONNACK properties that bound what this client may send. */
static void apply_connack_props(struct bench *b, struct bench_conn *c, struct st_bytes props)
{
	const uint8_t *p = props.ptr;
	uint32_t left = props.len;
	while (left > 0) {
		uint8_t id = p[0];
		int n = prop_value_len(id, p + 1, left - 1);
		if (n < 0 || (uint32_t)n > left - 1)
			bench_fail(b, "client %u: malformed CONNACK property 0x%02x", c->index, id);
		if (id == 0x21 && c->pub != NULL && get_be16(p + 1) < c->pub->inflight_max)
			c->pub->inflight_max = get_be16(p + 1); /* Receive Maximum [MQTT-3.3.4-9] */
		if (id == 0x24 && p[1] < b->o->qos && c->role == BENCH_ROLE_PUB)
			bench_fail(b, "the broker's Maximum QoS is %u, below --qos %u", p[1],
			           b->o->qos);
		if (id == 0x13)
			b->server_keepalive_s =
			        get_be16(p + 1); /* Server Keep Alive [MQTT-3.1.2-21] */
		p += 1 + n;
		left -= 1u + (uint32_t)n;
	}
}

static void on_connack(struct bench *b, struct bench_conn *c, const struct st_connack *ack)
{
	if (c->state != BENCH_CONN_CONNACK)
		bench_fail(b, "client %u: unexpected CONNACK", c->index);
	if (ack->code != 0)
		bench_fail(b, "%s %u: connection refused by the broker: CONNACK code 0x%02x",
		           role_name(c), c->index, ack->code);
	/* A session the clean connect before the run should have removed: not ours to use. */
	if (b->o->persistent && ack->session_present)
		bench_fail(b,
		           "%s %u: the broker resumed an existing session (CONNACK session "
		           "present)",
		           role_name(c), c->index);
	b->handshakes--;
	atomic_fetch_sub_explicit(&b->sh->handshakes, 1, memory_order_relaxed);
	if (b->o->level == ST_MQTT_5)
		apply_connack_props(b, c, ack->props);
	if (c->role == BENCH_ROLE_SUB && b->plan->sub[c->index].filter_count > 0) {
		c->state = BENCH_CONN_SUBSCRIBING;
		atomic_fetch_add_explicit(&b->sh->subscribing, 1, memory_order_relaxed);
		queue_subscribes(b, c);
	} else {
		set_ready(b, c);
	}
}

static void on_suback(struct bench *b, struct bench_conn *c, const struct st_suback *ack)
{
	const struct bench_plan_sub *sub = &b->plan->sub[c->index];
	uint32_t chunks = (sub->filter_count + BENCH_SUB_CHUNK - 1) / BENCH_SUB_CHUNK;
	if (c->state != BENCH_CONN_SUBSCRIBING || ack->packet_id == 0 || ack->packet_id > chunks)
		bench_fail(b, "subscriber %u: unexpected SUBACK %u", c->index, ack->packet_id);
	uint32_t first = (ack->packet_id - 1u) * BENCH_SUB_CHUNK;
	uint32_t expect = sub->filter_count - first < BENCH_SUB_CHUNK ? sub->filter_count - first
	                                                              : BENCH_SUB_CHUNK;
	if (ack->codes.len != expect)
		bench_fail(b, "subscriber %u: SUBACK %u has %u codes for %u filters", c->index,
		           ack->packet_id, ack->codes.len, expect);
	for (uint32_t i = 0; i < expect; i++) {
		uint8_t code = ack->codes.ptr[i];
		size_t len;
		const char *f = bench_plan_filter(b->plan, sub->first_filter + first + i, &len);
		/* 0x80 and above refuse the subscription [MQTT-3.9.3-1] (5.0: reason codes). */
		if (code >= 0x80)
			bench_fail(b, "subscriber %u: subscription to '%s' refused: code 0x%02x",
			           c->index, f, code);
		if (code < b->granted_qos_min)
			b->granted_qos_min = code;
	}
	if (--c->subacks_pending == 0)
		set_ready(b, c);
}

/* PUBACK, PUBREC, PUBCOMP to a publisher; PUBREL to a subscriber. */
static void on_ack(struct bench *b, struct bench_conn *c, uint8_t type, const struct st_ack *ack)
{
	uint16_t id = ack->packet_id;
	if (type == ST_PUBREL) {
		if (c->role != BENCH_ROLE_SUB)
			bench_fail(b, "client %u: unexpected PUBREL", c->index);
		queue_ack(b, c, ST_PUBCOMP, id); /* [MQTT-4.3.3-11] */
		return;
	}
	struct bench_pub *pub = c->pub;
	uint8_t want = type == ST_PUBCOMP ? 2 : 1;
	if (pub == NULL || pub->pid_state == NULL || pub->pid_state[id] != want ||
	    (type == ST_PUBACK) != (b->o->qos == 1))
		bench_fail(b, "client %u: unexpected %s for packet id %u", c->index,
		           st_packet_name(type), id);
	/* MQTT 5: a reason code of 0x80 or above means the broker refused the message. */
	if (ack->reason >= 0x80)
		bench_fail(b, "publisher %u: %s reason code 0x%02x", c->index, st_packet_name(type),
		           ack->reason);
	if (type == ST_PUBREC) {
		pub->pid_state[id] = 2;
		queue_ack(b, c, ST_PUBREL, id); /* [MQTT-4.3.3-3] */
		return;
	}
	pub->pid_state[id] = 0;
	pub->inflight--;
	b->inflight--;
	b->n.acked++;
}

/* Counts one delivered message whose payload starts at p. */
static void record_delivery(struct bench *b, struct bench_conn *c, const uint8_t *p, uint32_t len,
                            uint64_t now_ns)
{
	uint64_t ts;
	uint32_t id, seq;
	if (len < BENCH_PAYLOAD_MIN) {
		b->n.invalid++;
		return;
	}
	memcpy(&ts, p, 8);
	memcpy(&id, p + 8, 4);
	memcpy(&seq, p + 12, 4);
	if (id >= b->plan->pub_ids || (id >= b->o->ext_publishers && len != b->o->payload_bytes)) {
		b->n.invalid++;
		return;
	}
	b->n.delivered_total++;
	/* By times, not by phase: every thread agrees on the window without asking the leader. */
	if (now_ns >= b->win_start_ns && now_ns < b->win_end_ns)
		b->n.arrived_win++;
	if (ts >= b->win_start_ns && ts < b->win_end_ns) {
		if (id >= b->o->ext_publishers) {
			b->n.delivered_win++;
			c->delivered_win++;
		} else
			b->n.delivered_ext_win++;
		bench_hist_record(&b->hist, now_ns > ts ? now_ns - ts : 0);
	}
	struct bench_seq *sq = &c->seq[id];
	bool first = sq->window == 0;
	uint32_t prev_high = sq->high;
	enum bench_seq_verdict v = bench_seq_record(sq, seq);
	if (id >= b->o->ext_publishers)
		bench_flow_received(b, &b->pubs[id - b->o->ext_publishers], c->index, seq, v, first,
		                    prev_high);
	if (v == BENCH_SEQ_DUPLICATE) {
		b->n.duplicates++;
	} else if (v == BENCH_SEQ_LATE) {
		b->n.out_of_order++;
		b->ooo_per_pub[id]++;
	}
}

/* The PUBLISH fast path: no copy, no UTF-8 check of the topic. */
static void on_publish(struct bench *b, struct bench_conn *c, const struct st_fixed_header *fh,
                       const uint8_t *body, uint64_t now_ns)
{
	uint8_t qos = (uint8_t)((fh->flags >> 1) & 3u);
	uint32_t rem = fh->remaining_len, off;
	uint16_t id = 0;
	if (c->role != BENCH_ROLE_SUB || qos == 3 || rem < 2)
		bench_fail(b, "client %u: unexpected or malformed PUBLISH", c->index);
	off = 2u + get_be16(body);
	if (qos > 0) {
		if (off + 2 > rem || (id = get_be16(body + off)) == 0)
			bench_fail(b, "client %u: malformed PUBLISH", c->index);
		off += 2;
	}
	if (b->o->level == ST_MQTT_5) {
		uint32_t plen;
		int n = off < rem ? st_varint_decode(body + off, rem - off, &plen) : -1;
		if (n < 0)
			bench_fail(b, "client %u: malformed PUBLISH properties", c->index);
		off += (uint32_t)n + plen;
	}
	if (off > rem)
		bench_fail(b, "client %u: malformed PUBLISH", c->index);
	record_delivery(b, c, body + off, rem - off, now_ns);
	if (qos == 1)
		queue_ack(b, c, ST_PUBACK, id); /* [MQTT-4.3.2-4] */
	else if (qos == 2)
		queue_ack(b, c, ST_PUBREC, id); /* [MQTT-4.3.3-9] */
}

static void on_packet(struct bench *b, struct bench_conn *c, const struct st_fixed_header *fh,
                      const uint8_t *body, uint64_t now_ns)
{
	if (fh->type == ST_PUBLISH) {
		on_publish(b, c, fh, body, now_ns);
		return;
	}
	struct st_packet pkt;
	int rc = st_decode_body(fh, body, b->o->level, &pkt);
	if (rc != ST_OK)
		bench_fail(b, "client %u: malformed %s from the broker: %s", c->index,
		           st_packet_name(fh->type), st_strerror(rc));
	switch (fh->type) {
	case ST_CONNACK:
		on_connack(b, c, &pkt.connack);
		break;
	case ST_SUBACK:
		on_suback(b, c, &pkt.suback);
		break;
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		on_ack(b, c, fh->type, &pkt.ack);
		break;
	case ST_PINGRESP:
		break;
	case ST_DISCONNECT:
		bench_fail(b, "%s %u: the broker sent DISCONNECT, reason 0x%02x", role_name(c),
		           c->index, pkt.disconnect.reason);
	default:
		bench_fail(b, "client %u: unexpected %s from the broker", c->index,
		           st_packet_name(fh->type));
	}
}

static void carry_reserve(struct bench *b, struct bench_conn *c, uint32_t need)
{
	if (need <= c->carry_cap)
		return;
	if (need > b->sh->max_packet)
		bench_fail(b, "client %u: packet of %u bytes from the broker exceeds %u", c->index,
		           need, b->sh->max_packet);
	uint32_t cap = c->carry_cap ? c->carry_cap : 64u;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(c->carry, cap);
	if (p == NULL)
		bench_fail(b, "out of memory for reassembly");
	c->carry = p;
	c->carry_cap = cap;
}

/*
 * Moves bytes into the carry buffer until it holds one whole packet or data runs out.
 * Returns the bytes taken; *fh is the packet's header once it is whole (*whole set).
 */
static uint32_t carry_fill(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                           struct st_fixed_header *fh, bool *whole)
{
	uint32_t used = 0;
	int rc;
	*whole = false;
	/* Byte by byte until the header decodes: a packet may be shorter than 5 bytes. */
	while ((rc = st_decode_fixed_header(c->carry, c->carry_len, b->sh->max_packet, fh)) ==
	       ST_ERR_NEED_MORE) {
		if (used == len)
			return used;
		carry_reserve(b, c, c->carry_len + 1);
		c->carry[c->carry_len++] = data[used++];
	}
	if (rc != ST_OK)
		bench_fail(b, "client %u: bad packet header from the broker: %s", c->index,
		           st_strerror(rc));
	uint32_t total = fh->header_len + fh->remaining_len;
	uint32_t n = total - c->carry_len;
	if (n > len - used)
		n = len - used;
	carry_reserve(b, c, total);
	memcpy(c->carry + c->carry_len, data + used, n);
	c->carry_len += n;
	*whole = c->carry_len == total;
	return used + n;
}

void bench_mqtt_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                      uint64_t now_ns)
{
	struct st_fixed_header fh;
	if (c->carry_len > 0) {
		bool whole;
		uint32_t used = carry_fill(b, c, data, len, &fh, &whole);
		if (!whole)
			return;
		on_packet(b, c, &fh, c->carry + fh.header_len, now_ns);
		c->carry_len = 0;
		data += used;
		len -= used;
	}
	while (len > 0) {
		int rc = st_decode_fixed_header(data, len, b->sh->max_packet, &fh);
		if (rc == ST_ERR_NEED_MORE ||
		    (rc == ST_OK && fh.header_len + fh.remaining_len > len)) {
			carry_reserve(b, c, len);
			memcpy(c->carry, data, len);
			c->carry_len = len;
			return;
		}
		if (rc != ST_OK)
			bench_fail(b, "client %u: bad packet header from the broker: %s", c->index,
			           st_strerror(rc));
		on_packet(b, c, &fh, data + fh.header_len, now_ns);
		data += fh.header_len + fh.remaining_len;
		len -= fh.header_len + fh.remaining_len;
	}
}

int bench_mqtt_build_templates(struct bench_shared *sh)
{
	const struct bench_opts *o = sh->o;
	uint32_t props = o->level == ST_MQTT_5 ? 1u : 0u; /* an empty property block */
	uint8_t flags = (uint8_t)(o->qos << 1);
	for (uint32_t t = 0; t < sh->plan.topic_count; t++) {
		const struct bench_topic *topic = &sh->plan.topics[t];
		struct bench_tmpl *tp = &sh->tmpl[t];
		uint8_t *p = malloc(ST_PUBLISH_HEAD_MAX + topic->len + props + o->payload_bytes);
		if (p == NULL)
			return -1;
		struct st_bytes name = {(const uint8_t *)topic->name, topic->len};
		size_t head = st_encode_publish_head(p, flags, name, o->qos ? 1 : 0,
		                                     props + o->payload_bytes);
		if (head == 0) {
			free(p);
			return -1;
		}
		if (props)
			p[head] = 0;
		tp->bytes = p;
		tp->pid_off = (uint32_t)head - 2u; /* the head ends with the packet id */
		tp->payload_off = (uint32_t)head + props;
		tp->len = tp->payload_off + o->payload_bytes;
		/* A recognisable filler after the 16-byte header of every payload. */
		for (uint32_t i = BENCH_PAYLOAD_MIN; i < o->payload_bytes; i++)
			p[tp->payload_off + i] = (uint8_t)('a' + i % 26u);
		memset(p + tp->payload_off, 0, BENCH_PAYLOAD_MIN);
	}
	return 0;
}
