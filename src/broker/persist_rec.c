/*
 * The records that state changes make (persist.h's hooks): each builds one store_rec from the
 * broker's structures, appends it to the worker's filling buffer and holds the output of the
 * connection it concerns. Times go to disk as wall-clock milliseconds, so that expiries keep
 * counting across a restart.
 */
#include <inttypes.h>
#include <string.h>

#include "base/log.h"
#include "conn.h"
#include "persist.h"
#include "session.h"
#include "starling/props.h"
#include "subdata.h"
#include "worker.h"

/* A monotonic deadline (the worker's clock) as wall-clock milliseconds; 0 stays 0. */
static uint64_t persist_wall(const struct persist *p, uint64_t mono_ms)
{
	return mono_ms ? mono_ms + p->wall_off_ms : 0;
}

static void persist_append(struct persist *p, const struct store_rec *r, struct session *s)
{
	struct store_buf *b = &p->slot[p->fill].buf;
	size_t before = b->len;
	int err;

	if (p->snap_to) {
		/* A snapshot being taken (persist_snapshot): into its buffer, nothing held. */
		if (!p->snap_over &&
		    (store_rec_encode(p->snap_to, r) != 0 || p->snap_to->len > p->snap_max))
			p->snap_over = true;
		return;
	}
	err = store_rec_encode(b, r);

	if (err) {
		/* Out of memory, or a field the format cannot hold: that change is not durable. */
		log_msg(&p->w->log, LOG_T_ERROR, "Persistence: a %s record was not stored: %s.",
		        store_rec_type_name(r->type), store_strerror(err));
		return;
	}
	p->stats.records++;
	p->stats.bytes += b->len - before;
	p->since_compact++;
	if (s && s->conn)
		persist_hold(p->w, s->conn, false);
}

void persist_append_rec(struct persist *p, const struct store_rec *r, struct session *s)
{
	persist_append(p, r, s);
}

static struct st_bytes sess_client(const struct session *s)
{
	return (struct st_bytes){s->client_id, s->client_id_len};
}

void persist_session_put(struct session *s, uint8_t protocol)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_SESSION_PUT,
	                       .expiry_ms = s->conn ? 0 : persist_wall(p, s->expire_at_ms),
	                       .expiry_interval_s = s->expiry_s,
	                       .protocol = protocol,
	                       .client = sess_client(s),
	               },
	               s);
	/* Who the session is, for the ACL at start-up (record.h, session-auth). */
	if (s->auth_known && !(p->snap_to && p->snap_no_auth))
		persist_append(p,
		               &(struct store_rec){
		                       .type = STORE_REC_SESSION_AUTH,
		                       .has_user = s->auth_has_user,
		                       .listener = s->auth_listener,
		                       .client = sess_client(s),
		                       .user = {s->auth_has_user ? s->auth_user : NULL,
		                                s->auth_has_user ? s->auth_user_len : 0},
		               },
		               s);
}

void persist_session_attach(struct worker *w, struct session *s)
{
	if (!w->ps)
		return;
	if (!s->clean) {
		s->ps = w->ps;
		persist_session_put(s, s->protocol);
	} else if (s->ps) {
		/* A durable session resumed with expiry 0 ends with this connection: its
		 * records go now, so a crash cannot bring it back. */
		persist_session_del(s);
	}
}

void persist_session_del(struct session *s)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(
	        p, &(struct store_rec){.type = STORE_REC_SESSION_DEL, .client = sess_client(s)}, s);
	s->ps = NULL;
}

void persist_sub_add(struct session *s, const uint8_t *filter, size_t len, uint64_t data)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_SUB_ADD,
	                       .sub_id = subdata_sub_id(data),
	                       .options = subdata_options(data),
	                       .client = sess_client(s),
	                       .filter = {filter, (uint32_t)len},
	               },
	               s);
}

void persist_sub_del(struct session *s, const uint8_t *filter, size_t len)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_SUB_DEL,
	                       .client = sess_client(s),
	                       .filter = {filter, (uint32_t)len},
	               },
	               s);
}

void persist_queue_add(struct session *s, const struct sess_delivery *d)
{
	struct persist *p = s->ps;
	const struct msg *m = d->m;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_QUEUE_ADD,
	                       .msg_id = d->sid,
	                       .expiry_ms = persist_wall(p, m->expiry_ms),
	                       .qos = d->qos,
	                       .retain = d->retain,
	                       .client = sess_client(s),
	                       .topic = {msg_topic(m), m->topic_len},
	                       .props = {msg_props(m), m->props_len},
	                       .payload = {msg_payload(m), m->payload_len},
	               },
	               s);
}

void persist_queue_del(struct session *s, uint64_t sid)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){.type = STORE_REC_QUEUE_DEL,
	                                   .msg_id = sid,
	                                   .client = sess_client(s)},
	               s);
}

void persist_inflight_set(struct session *s, uint16_t pid, uint64_t sid, uint8_t stage)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_INFLIGHT_SET,
	                       .msg_id = sid,
	                       .packet_id = pid,
	                       .stage = stage,
	                       .client = sess_client(s),
	               },
	               s);
}

void persist_inflight_clear(struct session *s, uint16_t pid)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){.type = STORE_REC_INFLIGHT_CLEAR,
	                                   .packet_id = pid,
	                                   .client = sess_client(s)},
	               s);
}

void persist_inbound(struct session *s, uint16_t pid, bool add, uint64_t origin)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(p,
	               &(struct store_rec){.type = !add     ? STORE_REC_INBOUND_DEL
	                                           : origin ? STORE_REC_INBOUND_ORIGIN
	                                                    : STORE_REC_INBOUND_ADD,
	                                   .packet_id = pid,
	                                   .origin = origin,
	                                   .client = sess_client(s)},
	               s);
}

void persist_origin_record(struct persist *p, unsigned from, uint64_t lo, uint64_t hi)
{
	persist_append(p,
	               &(struct store_rec){.type = STORE_REC_ORIGIN,
	                                   .source = (uint16_t)from,
	                                   .origin_lo = lo,
	                                   .origin = hi},
	               NULL);
}

void persist_origin_marks(struct persist *p, bool all)
{
	const struct worker *w = p->w;

	for (unsigned src = 0; src < w->nworkers; src++) {
		const struct persist_origins *po = &p->sess[src];

		if (src == w->index) {
			if (p->origin_next && (all || (p->origin_dirty >> src & 1)))
				persist_origin_record(p, src, 1, p->origin_next);
			continue;
		}
		if (po->wm > po->start && (all || (p->origin_dirty >> src & 1)))
			persist_origin_record(p, src, po->start + 1, po->wm);
		for (uint32_t i = 0; all && i < po->done.n; i++)
			persist_origin_record(p, src, po->done.v[i].lo, po->done.v[i].hi);
	}
	if (!all)
		p->origin_dirty = 0;
}

int persist_commit_close(struct persist *p)
{
	struct store_buf *b = &p->slot[p->fill].buf;

	if (p->origin_dirty)
		persist_origin_marks(p, false);
	if (!b->len)
		return 0;
	if (p->dio) {
		/* A pad so that the commit record ends on a block boundary (persist.h). */
		uint64_t end = p->off + b->len + STORE_PAD_MIN + STORE_COMMIT_LEN;
		size_t pad = (size_t)(((end + p->dio - 1) & ~(uint64_t)(p->dio - 1)) - end) +
		             STORE_PAD_MIN;

		/* Room for the pad and the commit first: the commit is then whole or not made. */
		if (store_buf_reserve(b, pad + STORE_COMMIT_LEN) != 0)
			return ST_ERR_NOMEM;
		store_pad_encode(b, pad);
		p->stats.bytes += pad;
	}
	persist_append(p, &(struct store_rec){.type = STORE_REC_COMMIT}, NULL);
	return 0;
}

/*
 * The will's Message Expiry Interval is counted from its publication, so it is not a deadline:
 * it travels as the MQTT 5 property itself (0x02, four bytes) in front of the will's
 * properties, which replay takes off again.
 */
void persist_will_set(struct session *s)
{
	struct persist *p = s->ps;
	const struct msg *m = s->will;
	uint8_t *props = NULL;
	uint32_t plen = m ? m->props_len : 0;

	if (!p || !m)
		return;
	if (s->will_expiry_s) {
		props = worker_scratch(p->w, 5 + (size_t)m->props_len);
		if (!props)
			return;
		props[0] = ST_PROP_MESSAGE_EXPIRY;
		props[1] = (uint8_t)(s->will_expiry_s >> 24);
		props[2] = (uint8_t)(s->will_expiry_s >> 16);
		props[3] = (uint8_t)(s->will_expiry_s >> 8);
		props[4] = (uint8_t)s->will_expiry_s;
		if (m->props_len)
			memcpy(props + 5, msg_props(m), m->props_len);
		plen += 5;
	}
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_WILL_SET,
	                       .expiry_ms = persist_wall(p, s->will_at_ms),
	                       .qos = m->qos,
	                       .retain = m->retain,
	                       .client = sess_client(s),
	                       .topic = {msg_topic(m), m->topic_len},
	                       .props = {props ? props : msg_props(m), plen},
	                       .payload = {msg_payload(m), m->payload_len},
	               },
	               s);
}

void persist_will_clear(struct session *s)
{
	struct persist *p = s->ps;

	if (!p)
		return;
	persist_append(
	        p, &(struct store_rec){.type = STORE_REC_WILL_CLEAR, .client = sess_client(s)}, s);
}

void persist_retain(struct worker *w, struct st_bytes topic, const struct msg *m)
{
	struct persist *p = w->ps;

	if (!p || w->index != 0)
		return;
	/* $SYS is the broker's own state, published again once it runs. */
	if (topic.len >= 5 && memcmp(topic.ptr, "$SYS/", 5) == 0)
		return;
	if (!m || m->payload_len == 0) {
		persist_append(p, &(struct store_rec){.type = STORE_REC_RETAIN_DEL, .topic = topic},
		               NULL);
		return;
	}
	persist_append(p,
	               &(struct store_rec){
	                       .type = STORE_REC_RETAIN_SET,
	                       .expiry_ms = persist_wall(p, m->expiry_ms),
	                       .qos = m->qos,
	                       .topic = {msg_topic(m), m->topic_len},
	                       .props = {msg_props(m), m->props_len},
	                       .payload = {msg_payload(m), m->payload_len},
	               },
	               NULL);
	/* check_retain_source: who set it, so that a restart does not forget (record.h). */
	if (m->src) {
		const struct msg_source *src = m->src;

		persist_append(p,
		               &(struct store_rec){
		                       .type = STORE_REC_RETAIN_SOURCE,
		                       .has_user = src->has_user,
		                       .listener = src->listener,
		                       .topic = {msg_topic(m), m->topic_len},
		                       .client = {src->data + src->user_len, src->id_len},
		                       .user = {src->user_len ? src->data : NULL, src->user_len},
		               },
		               NULL);
	}
}
