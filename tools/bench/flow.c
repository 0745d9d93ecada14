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
 * to reveal the gap) is presumed lost.
 */
#include "bench.h"

#include <stdlib.h>

#define FLOW_RING_MAX 65536u /* most messages one publisher may have outstanding */

int bench_flow_init(struct bench *b)
{
	const struct bench_opts *o = b->o;
	if (o->rate_total > 0 || o->rate_per_client > 0 || b->plan.pubs == 0)
		return 0;
	uint64_t fans = 0;
	for (uint32_t i = 0; i < b->plan.pubs; i++)
		fans += b->plan.pub[i].fan_max;
	uint64_t window = FLOW_RING_MAX;
	if (o->outstanding_max > 0 && fans > 0 && o->outstanding_max / fans < window)
		window = o->outstanding_max / fans;
	if (o->queue_max > 0 && b->plan.feeders_max > 0 &&
	    o->queue_max / b->plan.feeders_max < window)
		window = o->queue_max / b->plan.feeders_max;
	if (window == 0)
		window = 1;
	uint32_t slots = 1;
	while (slots < window)
		slots <<= 1;
	for (uint32_t i = 0; i < b->plan.pubs; i++) {
		struct bench_flow *f = &b->pubs[i].flow;
		f->left = calloc(slots, sizeof(*f->left));
		f->sent_ns = calloc(slots, sizeof(*f->sent_ns));
		if (f->left == NULL || f->sent_ns == NULL)
			return -1;
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
	while (f->head != pub->seq_next) {
		uint32_t slot = f->head & f->mask;
		if (f->left[slot] != 0) {
			if (now_ns - f->sent_ns[slot] < lost_ns)
				return;
			f->left[slot] = 0;
			b->n.presumed_lost++;
		}
		f->head++;
	}
}

uint32_t bench_flow_room(struct bench *b, struct bench_pub *pub, uint64_t now_ns)
{
	struct bench_flow *f = &pub->flow;
	if (f->mask == 0)
		return UINT32_MAX;
	advance_head(b, pub, now_ns);
	uint32_t used = pub->seq_next - f->head;
	return used < f->window ? f->window - used : 0;
}

void bench_flow_sent(struct bench_pub *pub, uint32_t seq, uint32_t fan, uint64_t now_ns)
{
	struct bench_flow *f = &pub->flow;
	if (f->mask == 0)
		return;
	f->left[seq & f->mask] = fan;
	f->sent_ns[seq & f->mask] = now_ns;
	if (fan == 0 && f->head == seq)
		f->head++; /* nobody to wait for */
}

/* One fewer delivery expected for seq, if it is still outstanding. */
static void settle(struct bench_flow *f, uint32_t seq_next, uint32_t seq)
{
	if (seq - f->head >= seq_next - f->head)
		return; /* already settled, or presumed lost */
	if (f->left[seq & f->mask] > 0)
		f->left[seq & f->mask]--;
}

void bench_flow_received(struct bench *b, struct bench_pub *pub, uint32_t sub, uint32_t seq,
                         enum bench_seq_verdict v, bool first, uint32_t prev_high)
{
	struct bench_flow *f = &pub->flow;
	/* A duplicate was counted already; a late one was settled, as lost, at its gap. */
	if (f->mask == 0 || v != BENCH_SEQ_IN_ORDER)
		return;
	const struct bench_plan_pub *pp = &b->plan.pub[pub->plan_index];
	uint32_t from = first ? 0 : prev_high + 1;
	if (seq - f->head < seq - from)
		from = f->head; /* older ones are settled already */
	if (seq - from > f->mask + 1u)
		from = seq - f->mask - 1u; /* older ones left the ring: settled already */
	for (uint32_t s = from; s != seq; s++) {
		uint32_t topic = pp->first_topic + s % pp->topic_count;
		if (bench_plan_topic_has_sub(&b->plan, topic, sub)) {
			settle(f, pub->seq_next, s);
			b->n.gap_lost++;
		}
	}
	settle(f, pub->seq_next, seq);
	while (f->head != pub->seq_next && f->left[f->head & f->mask] == 0)
		f->head++;
}
