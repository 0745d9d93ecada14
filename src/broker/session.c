/*
 * Session state machines (see session.h). Memory grows with use and is bounded by the window
 * and the queue limit: a session with nothing inflight and nothing queued holds only its
 * struct, its client id and its subscription list.
 *
 * Free packet ids are a FIFO ring (free_ids, free_head, nfree) of capacity slots_cap: ids are
 * reused oldest-freed first, so a client sees ids cycle through the window instead of the same
 * id reused at once.
 */
#include "access.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "base/fifo.h"
#include "persist.h"
#include "share.h"
#include "starling/error.h"

/* Keeps the worker's count of queued deliveries (q_acct) in step with q_len. */
static inline void queue_count(struct session *s, int64_t d)
{
	if (s->q_acct)
		*s->q_acct += (uint64_t)d;
}

struct session *session_new(const uint8_t *client_id, size_t len, uint16_t inflight_max,
                            uint32_t queue_max)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->client_id = malloc(len ? len : 1);
	if (!s->client_id) {
		free(s);
		return NULL;
	}
	memcpy(s->client_id, client_id, len);
	s->client_id_len = (uint16_t)len;
	s->inflight_max = inflight_max ? inflight_max : 1;
	s->q_max = queue_max;
	s->expiry_s = UINT32_MAX;
	return s;
}

void sess_delivery_release_extras(struct sess_delivery *d)
{
	free(d->more);
	if (d->group)
		share_group_unref(d->group);
	d->more = NULL;
	d->nmore = 0;
	d->group = NULL;
}

/* A copy of d holding its own references, or false when out of memory. */
static bool sess_delivery_copy(struct sess_delivery *dst, const struct sess_delivery *d)
{
	*dst = *d;
	msg_ref(d->m);
	if (!(d->nmore | (uintptr_t)d->group))
		return true; /* the common case: nothing else to own */
	if (d->nmore) {
		dst->more = malloc(d->nmore * sizeof(*d->more));
		if (!dst->more) {
			msg_unref(d->m);
			return false;
		}
		memcpy(dst->more, d->more, d->nmore * sizeof(*d->more));
	}
	if (d->group)
		share_group_ref(d->group);
	return true;
}

void session_clear_messages(struct session *s)
{
	for (uint32_t i = 0; i < s->slots_cap; i++) {
		if (s->slots[i].state != SLOT_FREE)
			sess_delivery_release(&s->slots[i].d);
	}
	free(s->slots);
	free(s->free_ids);
	s->slots = NULL;
	s->free_ids = NULL;
	s->slots_cap = 0;
	s->nfree = 0;
	s->inflight = 0;
	s->inflight_bytes = 0;
	s->q_bytes = 0;
	for (uint32_t i = 0; i < s->q_len; i++)
		sess_delivery_release(&s->q[(s->q_head + i) & (s->q_cap - 1)]);
	queue_count(s, -(int64_t)s->q_len);
	free(s->q);
	s->q = NULL;
	s->q_head = s->q_len = s->q_cap = 0;
	free(s->in_qos2);
	s->in_qos2 = NULL;
	s->in_qos2_count = 0;
	hmap_fini(&s->in_origin);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	if (s->will)
		msg_unref(s->will);
	session_clear_messages(s);
	for (uint32_t i = 0; i < s->nsubs; i++)
		free(s->subs[i].filter);
	free(s->subs);
	free(s->client_id);
	free(s->auth_user);
	access_free(s->acl);
	free(s);
}

static void free_id_push(struct session *s, uint16_t pid)
{
	assert(s->nfree < s->slots_cap);
	s->free_ids[(uint32_t)(s->free_head + s->nfree) % s->slots_cap] = pid;
	s->nfree++;
}

static uint16_t free_id_pop(struct session *s)
{
	uint16_t pid;

	assert(s->nfree > 0);
	pid = s->free_ids[s->free_head];
	s->free_head = (uint16_t)((s->free_head + 1u) % s->slots_cap);
	s->nfree--;
	return pid;
}

/* Grows the slot table (doubling, up to the window); new ids join the free ring. */
static int slots_grow(struct session *s)
{
	uint32_t old = s->slots_cap;
	uint32_t cap = old ? old * 2 : 8;
	struct sess_slot *slots;
	uint16_t *ids;

	if (cap > s->inflight_max)
		cap = s->inflight_max;
	if (cap > UINT16_MAX)
		cap = UINT16_MAX;
	if (cap <= old)
		return ST_ERR_LIMIT;
	slots = realloc(s->slots, cap * sizeof(*slots));
	if (!slots)
		return ST_ERR_NOMEM;
	s->slots = slots;
	memset(slots + old, 0, (cap - old) * sizeof(*slots));
	ids = malloc(cap * sizeof(*ids));
	if (!ids)
		return ST_ERR_NOMEM;
	/* Linearise the old ring into the new one, then append the new ids in order. */
	for (uint32_t i = 0; i < s->nfree; i++)
		ids[i] = s->free_ids[(s->free_head + i) % old];
	free(s->free_ids);
	s->free_ids = ids;
	s->free_head = 0;
	s->slots_cap = (uint16_t)cap;
	for (uint32_t id = old + 1; id <= cap; id++)
		free_id_push(s, (uint16_t)id);
	return ST_OK;
}

/* Payload bytes a delivery counts for max_queued_bytes and max_inflight_bytes (Mosquitto's). */
static inline uint32_t delivery_bytes(const struct sess_delivery *d)
{
	return d->m ? d->m->payload_len : 0;
}

/* Puts d into a free slot; returns its packet id, or 0 if the window is full. */
static uint16_t slot_take(struct session *s, const struct sess_delivery *d)
{
	struct sess_slot *slot;
	uint16_t pid;

	if (s->inflight >= s->inflight_max)
		return 0;
	/* max_inflight_bytes: as Mosquitto, one message of any size may always be in flight. */
	if (s->inflight_bytes_max && s->inflight_bytes >= s->inflight_bytes_max)
		return 0;
	if (s->nfree == 0 && slots_grow(s) != ST_OK)
		return 0;
	if (s->nfree == 0)
		return 0;
	pid = free_id_pop(s);
	slot = &s->slots[pid - 1];
	assert(slot->state == SLOT_FREE);
	slot->d = *d;
	slot->seq = s->seq++;
	slot->state = d->qos == 1 ? SLOT_WAIT_PUBACK : SLOT_WAIT_PUBREC;
	slot->bytes = delivery_bytes(d);
	s->inflight_bytes += slot->bytes;
	s->inflight++;
	return pid;
}

static void slot_release(struct session *s, uint16_t pid)
{
	struct sess_slot *slot = &s->slots[pid - 1];

	/* The id first: a log cut between the two never has a slot whose message is gone. */
	if (s->ps) {
		persist_inflight_clear(s, pid);
		if (slot->d.m)
			persist_queue_del(s, slot->d.sid);
	}

	sess_delivery_release(&slot->d);
	slot->state = SLOT_FREE;
	s->inflight_bytes -= slot->bytes;
	slot->bytes = 0;
	assert(s->inflight > 0);
	s->inflight--;
	free_id_push(s, pid);
}

static int queue_push(struct session *s, const struct sess_delivery *d)
{
	if (s->q_len == s->q_cap &&
	    fifo_grow((void **)&s->q, &s->q_head, s->q_len, &s->q_cap, sizeof(*s->q), 8) != ST_OK)
		return ST_ERR_NOMEM;
	s->q[(s->q_head + s->q_len) & (s->q_cap - 1)] = *d;
	s->q_len++;
	s->q_bytes += delivery_bytes(d);
	queue_count(s, 1);
	return ST_OK;
}

enum sess_out_result session_out_offer(struct session *s, const struct sess_delivery *d,
                                       bool online, uint16_t *pid)
{
	struct sess_delivery mine;

	/* QoS 0 only for an offline session (queue_qos0_messages): it takes no slot. */
	assert(d->qos == 1 || d->qos == 2 || (d->qos == 0 && !online));
	if (!sess_delivery_copy(&mine, d)) {
		s->dropped++;
		return SESS_OUT_DROPPED;
	}
	mine.sid = 0;
	/* Queued deliveries go first, or order would break [MQTT-4.6.0-6]. */
	if (online && s->q_len == 0) {
		*pid = slot_take(s, &mine);
		if (*pid) {
			if (s->ps) {
				s->slots[*pid - 1].d.sid = ++s->next_sid;
				persist_queue_add(s, &s->slots[*pid - 1].d);
				persist_inflight_set(s, *pid, s->next_sid, STORE_STAGE_PUBLISH);
			}
			return SESS_OUT_SEND;
		}
	}
	if ((s->q_max && s->q_len >= s->q_max) ||
	    (s->q_bytes_max && s->q_bytes >= s->q_bytes_max) || queue_push(s, &mine) != ST_OK) {
		sess_delivery_release(&mine);
		s->dropped++;
		return SESS_OUT_DROPPED;
	}
	if (s->ps) {
		struct sess_delivery *q = &s->q[(s->q_head + s->q_len - 1) & (s->q_cap - 1)];

		q->sid = ++s->next_sid;
		persist_queue_add(s, q);
	}
	return SESS_OUT_QUEUED;
}

bool session_out_next(struct session *s, struct sess_delivery *d, uint16_t *pid)
{
	struct sess_delivery *head;

	if (s->q_len == 0)
		return false;
	head = &s->q[s->q_head];
	/* A QoS 0 message queued while offline (queue_qos0_messages) leaves without a slot:
	 * sent once, its record goes with it. */
	*pid = head->qos ? slot_take(s, head) : 0;
	if (head->qos && !*pid)
		return false;
	*d = *head;
	if (s->ps && *pid)
		persist_inflight_set(s, *pid, d->sid, STORE_STAGE_PUBLISH);
	else if (s->ps)
		persist_queue_del(s, d->sid);
	s->q_head = (s->q_head + 1) & (s->q_cap - 1);
	s->q_len--;
	s->q_bytes -= delivery_bytes(d);
	queue_count(s, -1);
	if (s->q_len == 0)
		s->q_full_logged = false;
	return true;
}

static struct sess_slot *slot_of(struct session *s, uint16_t pid, uint8_t state)
{
	if (pid == 0 || pid > s->slots_cap || s->slots[pid - 1].state != state)
		return NULL;
	return &s->slots[pid - 1];
}

bool session_out_puback(struct session *s, uint16_t pid)
{
	if (!slot_of(s, pid, SLOT_WAIT_PUBACK))
		return false;
	slot_release(s, pid);
	return true;
}

bool session_out_pubrec(struct session *s, uint16_t pid)
{
	struct sess_slot *slot = slot_of(s, pid, SLOT_WAIT_PUBREC);

	if (!slot)
		return false;
	/* After PUBREC the client owns the message; only the id stays until PUBCOMP. PUBRELs
	 * are resent in the order their PUBRECs arrived [MQTT-4.6.0-4]. */
	if (s->ps) {
		persist_inflight_set(s, pid, slot->d.sid, STORE_STAGE_PUBREL);
		persist_queue_del(s, slot->d.sid);
	}
	sess_delivery_release(&slot->d);
	slot->state = SLOT_WAIT_PUBCOMP;
	slot->seq = s->seq++;
	return true;
}

bool session_out_pubcomp(struct session *s, uint16_t pid)
{
	if (!slot_of(s, pid, SLOT_WAIT_PUBCOMP))
		return false;
	slot_release(s, pid);
	return true;
}

uint8_t session_out_qos(const struct session *s, uint16_t pid)
{
	if (pid == 0 || pid > s->slots_cap)
		return 0;
	switch (s->slots[pid - 1].state) {
	case SLOT_WAIT_PUBACK:
		return 1;
	case SLOT_WAIT_PUBREC:
	case SLOT_WAIT_PUBCOMP:
		return 2;
	default:
		return 0;
	}
}

static int slot_seq_cmp(const void *a, const void *b)
{
	const struct sess_slot *x = *(const struct sess_slot *const *)a;
	const struct sess_slot *y = *(const struct sess_slot *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void session_out_each_inflight(struct session *s, session_resend_fn fn, void *ctx)
{
	const struct sess_slot **order;
	uint32_t n = 0;

	if (s->inflight == 0)
		return;
	order = malloc(s->inflight * sizeof(*order));
	if (!order) {
		/* Out of memory: resend in id order rather than not at all. */
		for (uint32_t i = 0; i < s->slots_cap; i++)
			if (s->slots[i].state != SLOT_FREE)
				fn(ctx, (uint16_t)(i + 1), &s->slots[i]);
		return;
	}
	for (uint32_t i = 0; i < s->slots_cap; i++)
		if (s->slots[i].state != SLOT_FREE)
			order[n++] = &s->slots[i];
	assert(n == s->inflight);
	qsort(order, n, sizeof(*order), slot_seq_cmp);
	for (uint32_t i = 0; i < n; i++)
		fn(ctx, (uint16_t)(order[i] - s->slots + 1), order[i]);
	free(order);
}

void session_set_inflight_max(struct session *s, uint16_t inflight_max)
{
	s->inflight_max = inflight_max ? inflight_max : 1;
}

/* An in_origin value is origin << 16 | pid: the key lies in the value. */
static bool in_origin_eq(const void *val, const void *key)
{
	return (uint16_t)(uintptr_t)val == *(const uint16_t *)key;
}

uint64_t session_in_qos2_origin(const struct session *s, uint16_t pid)
{
	void *v = s->in_origin.count ? hmap_find(&s->in_origin, pid, in_origin_eq, &pid) : NULL;

	return (uint64_t)(uintptr_t)v >> 16;
}

int session_in_qos2_begin(struct session *s, uint16_t pid, uint64_t origin)
{
	uint64_t bit = 1ull << (pid & 63);

	assert(pid != 0);
	if (!s->in_qos2) {
		s->in_qos2 = calloc(65536 / 64, sizeof(uint64_t));
		if (!s->in_qos2)
			return ST_ERR_NOMEM;
	}
	if (s->in_qos2[pid >> 6] & bit)
		return 0;
	/* Without room for its number the message is stored as before: held, never resent. */
	if (origin && hmap_insert(&s->in_origin, pid, (void *)(uintptr_t)(origin << 16 | pid)))
		origin = 0;
	s->in_qos2[pid >> 6] |= bit;
	s->in_qos2_count++;
	if (s->ps)
		persist_inbound(s, pid, true, origin);
	return 1;
}

bool session_in_qos2_pending(const struct session *s, uint16_t pid)
{
	return s->in_qos2 && (s->in_qos2[pid >> 6] >> (pid & 63) & 1);
}

bool session_in_qos2_release(struct session *s, uint16_t pid)
{
	uint64_t bit = 1ull << (pid & 63);

	if (!s->in_qos2 || !(s->in_qos2[pid >> 6] & bit))
		return false;
	s->in_qos2[pid >> 6] &= ~bit;
	if (s->in_origin.count) {
		void *v = hmap_find(&s->in_origin, pid, in_origin_eq, &pid);

		if (v)
			hmap_remove(&s->in_origin, pid, v);
	}
	if (s->ps)
		persist_inbound(s, pid, false, 0);
	if (--s->in_qos2_count == 0) {
		free(s->in_qos2);
		s->in_qos2 = NULL;
	}
	return true;
}

int session_sub_find(const struct session *s, const uint8_t *filter, size_t len)
{
	for (uint32_t i = 0; i < s->nsubs; i++)
		if (s->subs[i].filter_len == len && memcmp(s->subs[i].filter, filter, len) == 0)
			return (int)i;
	return -1;
}

/* Shared subscriptions are counted so that a session without any skips looking for them. */
static bool session_filter_is_shared(const uint8_t *filter, size_t len)
{
	return len > 7 && memcmp(filter, "$share/", 7) == 0;
}

int session_sub_add(struct session *s, const uint8_t *filter, size_t len, uint64_t data)
{
	int i = session_sub_find(s, filter, len);
	uint8_t *copy;

	if (i >= 0) {
		s->subs[i].data = data;
		if (s->ps)
			persist_sub_add(s, filter, len, data);
		return ST_OK;
	}
	if (s->nsubs == s->subs_cap) {
		uint32_t cap = s->subs_cap ? s->subs_cap * 2 : 4;
		struct sess_sub *subs = realloc(s->subs, cap * sizeof(*subs));

		if (!subs)
			return ST_ERR_NOMEM;
		s->subs = subs;
		s->subs_cap = cap;
	}
	copy = malloc(len ? len : 1);
	if (!copy)
		return ST_ERR_NOMEM;
	memcpy(copy, filter, len);
	s->nshared += session_filter_is_shared(filter, len);
	s->subs[s->nsubs++] =
	        (struct sess_sub){.filter = copy, .filter_len = (uint16_t)len, .data = data};
	if (s->ps)
		persist_sub_add(s, filter, len, data);
	return ST_OK;
}

bool session_sub_remove(struct session *s, const uint8_t *filter, size_t len)
{
	int i = session_sub_find(s, filter, len);

	if (i < 0)
		return false;
	if (s->ps)
		persist_sub_del(s, filter, len);
	s->nshared -= session_filter_is_shared(filter, len);
	free(s->subs[i].filter);
	s->subs[i] = s->subs[--s->nsubs];
	return true;
}

void session_out_drop(struct session *s, uint16_t pid)
{
	assert(pid && pid <= s->slots_cap && s->slots[pid - 1].state != SLOT_FREE);
	slot_release(s, pid);
}

void session_take_shared(struct session *s, session_take_fn fn, void *ctx)
{
	const struct sess_slot **order = NULL;
	uint32_t n = 0, kept = 0;

	if (s->inflight)
		order = malloc(s->inflight * sizeof(*order));
	for (uint32_t i = 0; order && i < s->slots_cap; i++) {
		const struct sess_slot *slot = &s->slots[i];

		if ((slot->state == SLOT_WAIT_PUBACK || slot->state == SLOT_WAIT_PUBREC) &&
		    slot->d.group)
			order[n++] = slot;
	}
	if (order)
		qsort(order, n, sizeof(*order), slot_seq_cmp);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t pid = (uint16_t)(order[i] - s->slots + 1);
		struct sess_slot *slot = &s->slots[pid - 1];

		uint64_t sid = slot->d.sid;

		if (fn(ctx, &slot->d)) {
			/* fn took the references: empty the slot without releasing them. */
			slot->d = (struct sess_delivery){0};
			if (s->ps)
				persist_queue_del(s, sid);
			slot_release(s, pid);
		}
	}
	free(order);
	for (uint32_t i = 0; i < s->q_len; i++) {
		struct sess_delivery *d = &s->q[(s->q_head + i) & (s->q_cap - 1)];

		uint64_t sid = d->sid;
		uint32_t bytes = delivery_bytes(d); /* fn may drop the message it takes */

		if (d->group && fn(ctx, d)) {
			s->q_bytes -= bytes;
			if (s->ps)
				persist_queue_del(s, sid);
			continue;
		}
		s->q[(s->q_head + kept) & (s->q_cap - 1)] = *d;
		kept++;
	}
	queue_count(s, (int64_t)kept - (int64_t)s->q_len);
	s->q_len = kept;
}

int session_restore_queued(struct session *s, const struct sess_delivery *d)
{
	return queue_push(s, d);
}

/* Index in the queue of the delivery with msg_id sid, or -1 (usually the head: FIFO). */
static long queue_find(const struct session *s, uint64_t sid)
{
	for (uint32_t i = 0; i < s->q_len; i++)
		if (s->q[(s->q_head + i) & (s->q_cap - 1)].sid == sid)
			return (long)i;
	return -1;
}

/* Removes queue entry i (its references move to *out). */
static void queue_remove(struct session *s, uint32_t i, struct sess_delivery *out)
{
	*out = s->q[(s->q_head + i) & (s->q_cap - 1)];
	s->q_bytes -= delivery_bytes(out);
	for (; i + 1 < s->q_len; i++)
		s->q[(s->q_head + i) & (s->q_cap - 1)] = s->q[(s->q_head + i + 1) & (s->q_cap - 1)];
	s->q_len--;
	queue_count(s, -1);
}

void session_restore_unqueue(struct session *s, uint64_t sid)
{
	long i = queue_find(s, sid);
	struct sess_delivery d;

	if (i >= 0) {
		queue_remove(s, (uint32_t)i, &d);
		sess_delivery_release(&d);
		return;
	}
	for (uint32_t k = 0; k < s->slots_cap; k++)
		if (s->slots[k].state != SLOT_FREE && s->slots[k].d.m && s->slots[k].d.sid == sid)
			sess_delivery_release(&s->slots[k].d);
}

/* Takes packet id pid out of the free ring (replay only: linear). */
static bool free_id_take(struct session *s, uint16_t pid)
{
	for (uint32_t i = 0; i < s->nfree; i++) {
		uint32_t at = (s->free_head + i) % s->slots_cap;

		if (s->free_ids[at] != pid)
			continue;
		for (; i + 1 < s->nfree; i++)
			s->free_ids[(s->free_head + i) % s->slots_cap] =
			        s->free_ids[(s->free_head + i + 1) % s->slots_cap];
		s->nfree--;
		return true;
	}
	return false;
}

bool session_restore_inflight(struct session *s, uint16_t pid, uint64_t sid, uint8_t stage)
{
	struct sess_slot *slot;
	long i;

	if (pid == 0)
		return false;
	if (stage == STORE_STAGE_PUBREL) {
		/* A compacted log has the stage-2 record alone: the slot is made here. */
		while (pid > s->slots_cap)
			if (slots_grow(s) != ST_OK)
				return false;
		slot = &s->slots[pid - 1];
		if (slot->state == SLOT_FREE) {
			if (!free_id_take(s, pid))
				return false;
			slot->d = (struct sess_delivery){0};
			s->inflight++;
		}
		sess_delivery_release(&slot->d);
		slot->d.sid = sid;
		slot->state = SLOT_WAIT_PUBCOMP;
		slot->seq = s->seq++;
		return true;
	}
	i = queue_find(s, sid);
	if (i < 0)
		return false;
	while (pid > s->slots_cap)
		if (slots_grow(s) != ST_OK)
			return false;
	if (s->slots[pid - 1].state != SLOT_FREE || !free_id_take(s, pid))
		return false;
	slot = &s->slots[pid - 1];
	queue_remove(s, (uint32_t)i, &slot->d);
	slot->seq = s->seq++;
	slot->state = slot->d.qos == 1 ? SLOT_WAIT_PUBACK : SLOT_WAIT_PUBREC;
	slot->bytes = delivery_bytes(&slot->d);
	s->inflight_bytes += slot->bytes;
	s->inflight++;
	return true;
}

void session_restore_clear(struct session *s, uint16_t pid)
{
	if (pid && pid <= s->slots_cap && s->slots[pid - 1].state != SLOT_FREE)
		slot_release(s, pid);
}

bool session_holds_sid(const struct session *s, uint64_t sid)
{
	if (queue_find(s, sid) >= 0)
		return true;
	for (uint32_t k = 0; k < s->slots_cap; k++)
		if (s->slots[k].state != SLOT_FREE && s->slots[k].d.sid == sid)
			return true;
	return false;
}
