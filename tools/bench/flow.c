/*
 * End-to-end flow control for runs without a rate (bench.h, struct bench_flow).
 *
 * "As fast as possible" cannot mean "as fast as the sockets take": a publisher would fill
 * megabytes of socket buffer ahead of a broker that drains them at a tenth of the speed, then
 * sit blocked through the whole window while the broker works off the backlog, and the
 * latency measured would be that of the backlog. So the generator keeps a bounded number of
 * messages in flight: each publisher may have `window` messages not yet delivered to all their
 * subscribers, with window = min(outstanding / sum of publishers' fans,
 * queue_max / most publishers feeding one subscriber), so that no more than --outstanding
 * deliveries are in flight in all and no more than --queue-max wait for any one subscriber
 * (below Mosquitto's max_queued_messages, 1000 by default, so neither broker has to drop).
 * The broker then runs saturated with a bounded queue: its throughput is the figure.
 *
 * A message stops being outstanding when every delivery has arrived, or is known lost. A
 * publisher's messages reach each subscriber in order, and message `seq` went to topic
 * seq mod topic_count of the publisher's topics, so when a subscriber's sequence from a
 * publisher jumps, each skipped message on a topic the subscriber matches is lost for it.
 * A message still outstanding after --lost-after (a loss at the tail, with nothing after it
 * to reveal the gap) is presumed lost. In a shared group (--share) a gap is no evidence, so
 * only that timeout finds a loss.
 *
 * Threads. A publisher and its subscribers may live on different threads. Each slot of the
 * ring holds seq << 32 | deliveries left, one 64-bit atomic: the publisher's thread stores it
 * when it generates seq, subscribers' threads decrement it by compare-and-swap only while its
 * tag is still seq, so a very late delivery of a message presumed lost cannot decrement the
 * message that reused its slot. Only the publisher's thread moves `head` (past slots at zero,
 * or presumed lost). When it finds no room it sets `blocked` and looks again; a subscriber that
 * brings a slot to zero then reads `blocked` and, if it takes it, wakes the publisher's thread
 * (IORING_OP_MSG_RING, loop.c). Store-then-load on both sides, all sequentially consistent:
 * either the publisher's second look sees the zero, or the subscriber sees the flag, so a
 * blocked publisher is never left waiting for its own timeout. With one thread the slots take
 * plain loads and stores and nobody blocks, so the single-thread path costs what it did.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define FLOW_RING_MAX 65536u /* most messages one publisher may have outstanding */

static uint64_t slot_value(uint32_t seq, uint32_t left)
{
	return (uint64_t)seq << 32 | left;
}

int bench_flow_init(struct bench_shared *sh)
{
	const struct bench_opts *o = sh->o;
	const struct bench_plan *plan = &sh->plan;
	if (o->rate_total > 0 || o->rate_per_client > 0 || plan->pubs == 0)
		return 0;
	uint64_t fans = 0;
	for (uint32_t i = 0; i < plan->pubs; i++)
		fans += plan->pub[i].fan_max;
	uint64_t window = FLOW_RING_MAX;
	if (o->outstanding_max > 0 && fans > 0 && o->outstanding_max / fans < window)
		window = o->outstanding_max / fans;
	if (o->queue_max > 0 && plan->feeders_max > 0 && o->queue_max / plan->feeders_max < window)
		window = o->queue_max / plan->feeders_max;
	if (window == 0)
		window = 1;
	uint32_t slots = 1;
	while (slots < window)
		slots <<= 1;
	for (uint32_t i = 0; i < plan->pubs; i++) {
		struct bench_flow *f = &sh->pubs[i].flow;
		/* Each ring on its own cache lines: publishers on different threads. */
		size_t bytes = ((size_t)slots * sizeof(*f->slots) + 63u) & ~(size_t)63u;
		f->slots = aligned_alloc(64, bytes);
		f->sent_ns = calloc(slots, sizeof(*f->sent_ns));
		if (f->slots == NULL || f->sent_ns == NULL)
			return -1;
		for (uint32_t s = 0; s < slots; s++)
			atomic_init(&f->slots[s], 0);
		f->mask = slots - 1;
		f->window = (uint32_t)window;
	}
	return 0;
}

/* Moves head past messages delivered everywhere, known lost, or outstanding too long. */
static void advance_head(struct bench *b, struct bench_pub *pub, uint64_t now_ns)
{
	struct bench_flow *f = &pub->flow;
	uint64_t lost_ns = b->o->lost_after_ms * 1000000u;
	uint32_t head = atomic_load_explicit(&pub->head, memory_order_relaxed); /* ours */
	while (head != pub->seq_next) {
		_Atomic uint64_t *slot = &f->slots[head & f->mask];
		/* Sequentially consistent: the second look of bench_flow_room (see the top). */
		if ((uint32_t)atomic_load(slot) != 0) {
			if (now_ns - f->sent_ns[head & f->mask] < lost_ns)
				break;
			atomic_store(slot, slot_value(head, 0));
			b->n.presumed_lost++;
		}
		head++;
	}
	atomic_store_explicit(&pub->head, head, memory_order_relaxed);
}

static uint32_t room(struct bench *b, struct bench_pub *pub, uint64_t now_ns)
{
	advance_head(b, pub, now_ns);
	uint32_t used = pub->seq_next - atomic_load_explicit(&pub->head, memory_order_relaxed);
	return used < pub->flow.window ? pub->flow.window - used : 0;
}

uint32_t bench_flow_room(struct bench *b, struct bench_pub *pub, uint64_t now_ns)
{
	if (pub->flow.mask == 0)
		return UINT32_MAX;
	uint32_t n = room(b, pub, now_ns);
	if (n > 0 || !b->flow_shared)
		return n;
	/* Full: ask to be woken, then look again for a delivery that came in between. */
	atomic_store(&pub->blocked, true);
	return room(b, pub, now_ns);
}

void bench_flow_sent(struct bench_pub *pub, uint32_t seq, uint32_t fan, uint64_t now_ns)
{
	struct bench_flow *f = &pub->flow;
	if (f->mask == 0)
		return;
	/* The slot's previous message is behind head: no subscriber decrements it any more. */
	atomic_store_explicit(&f->slots[seq & f->mask], slot_value(seq, fan), memory_order_relaxed);
	f->sent_ns[seq & f->mask] = now_ns;
	if (fan == 0 && atomic_load_explicit(&pub->head, memory_order_relaxed) == seq)
		atomic_store_explicit(&pub->head, seq + 1,
		                      memory_order_relaxed); /* none to wait for */
}

/* One fewer delivery expected for seq, if it is still outstanding; true if it was the last. */
static bool settle(const struct bench *b, struct bench_flow *f, uint32_t seq)
{
	_Atomic uint64_t *slot = &f->slots[seq & f->mask];
	uint64_t v = atomic_load_explicit(slot, memory_order_relaxed);
	if (!b->flow_shared) {
		if ((uint32_t)(v >> 32) != seq || (uint32_t)v == 0)
			return false; /* settled already, presumed lost, or its slot reused */
		atomic_store_explicit(slot, v - 1, memory_order_relaxed);
		return (uint32_t)v == 1;
	}
	do {
		if ((uint32_t)(v >> 32) != seq || (uint32_t)v == 0)
			return false;
	} while (!atomic_compare_exchange_weak(slot, &v, v - 1));
	return (uint32_t)v == 1;
}

void bench_flow_received(struct bench *b, struct bench_pub *pub, uint32_t sub, uint32_t seq,
                         enum bench_seq_verdict v, bool first, uint32_t prev_high)
{
	struct bench_flow *f = &pub->flow;
	/* A duplicate was counted already; a late one was settled, as lost, at its gap. */
	if (f->mask == 0 || v != BENCH_SEQ_IN_ORDER)
		return;
	uint32_t from = first ? 0 : prev_high + 1;
	bool emptied = false;
	/* A shared group's member sees some of the sequence: a gap is other members' share. */
	if (from != seq && !b->plan->shared) {
		/* A gap: head only moves forward, so a stale one is merely conservative. */
		uint32_t head = atomic_load_explicit(&pub->head, memory_order_relaxed);
		const struct bench_plan_pub *pp = &b->plan->pub[pub->plan_index];
		if (seq - head < seq - from)
			from = head; /* older ones are settled already */
		if (seq - from > f->mask + 1u)
			from = seq - f->mask - 1u; /* older ones left the ring: settled already */
		for (uint32_t s = from; s != seq; s++) {
			uint32_t topic = pp->first_topic + s % pp->topic_count;
			if (bench_plan_topic_has_sub(b->plan, topic, sub)) {
				emptied |= settle(b, f, s);
				b->n.gap_lost++;
			}
		}
	}
	emptied |= settle(b, f, seq);
	/* Sequentially consistent after the compare-and-swap: see the top of the file. */
	if (emptied && b->flow_shared && atomic_load(&pub->blocked) &&
	    atomic_exchange(&pub->blocked, false))
		b->wake |= 1ull << pub->thread;
}
