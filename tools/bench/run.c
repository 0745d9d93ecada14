/*
 * One thread's loop and its publishers (bench.h). The phases, which thread 0 leads (phase.c):
 *
 * setup     connect every client (at most connect_parallel handshakes at once, shared out over
 *           the threads, at most connect_rate per second), subscribe, until all are ready or
 *           setup_timeout passes;
 * warmup    publishers publish, nothing is measured;
 * measure   the window: messages stamped now are counted, the broker's CPU is sampled at both
 *           edges (connections: the idle connections are held);
 * drain     publishers stop; wait until every expected delivery and acknowledgement arrived,
 *           at most drain_ms;
 * teardown  DISCONNECT everyone and wait (at most BENCH_TEARDOWN_MS) for the broker to close.
 *
 * Every thread follows the leader's phase, read once per iteration, and acts on a change: it
 * copies the window's edges when setup ends, and disconnects its clients at teardown. The
 * window's edges are fixed when setup ends, before publishing starts, so each thread classifies
 * what it sends and receives by timestamp and no message is counted on one side and not the
 * other whenever a thread notices a phase change.
 *
 * Each loop iteration waits once (bounded by the tick or the next deadline), handles every
 * completion, then generates publishes and flushes all output, so one iteration's work goes
 * out as one send per connection. A publisher generates only when its previous send has
 * completed, so the batch it builds covers everything due since.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "starling/codec.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ms_ns(uint64_t ms)
{
	return ms * 1000000u;
}

/* Takes a free packet identifier, or 0 when the window is full. */
static uint16_t take_packet_id(struct bench *b, struct bench_pub *pub)
{
	if (pub->inflight >= pub->inflight_max)
		return 0;
	/* inflight_max <= 32768 ids are taken of 65535: a free one is found within the scan. */
	for (uint32_t tries = 0; tries < 65535u; tries++) {
		uint16_t id = pub->pid_next;
		pub->pid_next = (uint16_t)(id == 65535u ? 1u : id + 1u);
		if (pub->pid_state[id] == 0) {
			pub->pid_state[id] = 1;
			pub->inflight++;
			b->inflight++;
			return id;
		}
	}
	return 0;
}

/* How many messages this publisher may generate now. */
static uint64_t publisher_due(const struct bench *b, const struct bench_pub *pub, uint64_t now)
{
	double rate = b->o->rate_per_client;
	if (b->o->rate_total > 0)
		rate = b->o->rate_total / (double)b->plan->pubs;
	if (rate <= 0)
		return UINT64_MAX;
	double elapsed_s = (double)(now - b->t_pub_start_ns) / 1e9;
	/* The first message goes at once; then one every 1/rate seconds. */
	uint64_t allowed = (uint64_t)(elapsed_s * rate) + 1u;
	return allowed > pub->rate_sent ? allowed - pub->rate_sent : 0;
}

/* Fills a publisher's output with the messages due, up to batch_bytes. */
static void generate(struct bench *b, struct bench_conn *c, uint64_t now)
{
	struct bench_pub *pub = c->pub;
	const struct bench_plan_pub *pp = &b->plan->pub[pub->plan_index];
	const struct bench_tmpl *tmpl = b->sh->tmpl;
	const struct bench_topic *topics = b->plan->topics;
	uint64_t due = publisher_due(b, pub, now);
	uint32_t bytes = 0;
	bool in_window = now >= b->win_start_ns; /* and before its end: see run_publishers */

	uint32_t room = bench_flow_room(b, pub, now);
	if (room < due)
		due = room;
	while (due > 0 && bytes < b->o->batch_bytes) {
		uint32_t t = pp->first_topic + pub->topic_next;
		const struct bench_tmpl *tp = &tmpl[t];
		uint16_t id = 0;
		if (b->o->qos > 0 && (id = take_packet_id(b, pub)) == 0)
			break;
		bench_flow_sent(pub, pub->seq_next, topics[t].fan, now);
		uint8_t *out = bench_out_reserve(b, c, tp->len);
		memcpy(out, tp->bytes, tp->len);
		if (id != 0) {
			out[tp->pid_off] = (uint8_t)(id >> 8);
			out[tp->pid_off + 1] = (uint8_t)id;
		}
		memcpy(out + tp->payload_off, &now, 8);
		memcpy(out + tp->payload_off + 8, &pub->pub_id, 4);
		memcpy(out + tp->payload_off + 12, &pub->seq_next, 4);
		bench_out_commit(c, tp->len);
		pub->seq_next++;
		pub->rate_sent++;
		pub->topic_next = pub->topic_next + 1 == pp->topic_count ? 0 : pub->topic_next + 1;
		bytes += tp->len;
		due--;
		b->n.sent_total++;
		if (in_window) {
			b->n.sent_win++;
			b->n.expected_win += topics[t].fan;
		}
	}
	if (bytes > 0)
		bench_mark_dirty(b, c);
}

static void run_publishers(struct bench *b, uint64_t now)
{
	/* The leader may not have closed the window yet: the time says it is closed. */
	if ((b->phase != BENCH_PH_WARMUP && b->phase != BENCH_PH_MEASURE) || now >= b->win_end_ns)
		return;
	for (uint32_t i = 0; i < b->npubs; i++) {
		struct bench_conn *c = &b->conns[b->pub_conns[i]];
		/* Only after the previous send completed: the batch covers all that is due. */
		if (!c->send_busy && c->state == BENCH_CONN_READY)
			generate(b, c, now);
	}
}

/*
 * Starts this thread's next connects. The bounds are the run's, shared out: connect_parallel
 * divided over the threads, and connect_rate applied to client indexes, which the threads hold
 * in turn, so together they still open clients in about index order.
 */
static void start_connects(struct bench *b, uint64_t now)
{
	const struct bench_opts *o = b->o;
	uint32_t parallel = (o->connect_parallel + b->sh->nthreads - 1) / b->sh->nthreads;
	while (b->next_connect < b->nconns && b->handshakes < parallel) {
		struct bench_conn *c = &b->conns[b->next_connect];
		if (o->connect_rate > 0) {
			uint64_t allowed =
			        (now - b->sh->t_start_ns) * o->connect_rate / 1000000000u + 1u;
			if (c->index >= allowed)
				break;
		}
		b->handshakes++;
		atomic_fetch_add_explicit(&b->sh->handshakes, 1, memory_order_relaxed);
		b->next_connect++;
		bench_loop_start_connect(b, c);
	}
}

/* Sends PINGREQ on connections quiet for half the keep alive [MQTT-3.1.2-23]. */
static void keepalive(struct bench *b, uint64_t now)
{
	uint64_t ka = b->server_keepalive_s;
	if (ka == 0 || now - b->last_ping_check_ns < 1000000000u)
		return;
	b->last_ping_check_ns = now;
	for (uint32_t i = 0; i < b->nconns; i++) {
		struct bench_conn *c = &b->conns[i];
		if (c->state == BENCH_CONN_READY && !c->send_busy &&
		    now - c->last_tx_ns >= ka * 500000000u)
			bench_mqtt_queue_simple(b, c, ST_PINGREQ);
	}
}

static void start_teardown(struct bench *b)
{
	for (uint32_t i = 0; i < b->nconns; i++) {
		struct bench_conn *c = &b->conns[i];
		if (c->fd < 0 || c->state == BENCH_CONN_CLOSED)
			continue;
		bench_mqtt_queue_simple(b, c, ST_DISCONNECT);
		c->state = BENCH_CONN_CLOSING;
	}
}

/* Acts on the leader's phase; a thread may see several changes at once. */
static void follow_phase(struct bench *b)
{
	enum bench_phase ph = atomic_load_explicit(&b->sh->phase, memory_order_acquire);
	if (ph == b->phase)
		return;
	if (b->phase == BENCH_PH_SETUP) {
		/* Written by the leader before the release store of the phase. */
		b->t_pub_start_ns = b->sh->t_pub_start_ns;
		b->win_start_ns = b->sh->win_start_ns;
		b->win_end_ns = b->sh->win_end_ns;
	}
	if (ph >= BENCH_PH_TEARDOWN && b->phase < BENCH_PH_TEARDOWN)
		start_teardown(b);
	b->phase = ph;
}

/* Publishing is over for this thread: tells the leader what it is still waiting for. */
static void publish_pulse(struct bench *b)
{
	struct bench_pulse *p = &b->pulse;
	atomic_store_explicit(&p->expected_win, b->n.expected_win, memory_order_relaxed);
	atomic_store_explicit(&p->delivered_win, b->n.delivered_win, memory_order_relaxed);
	atomic_store_explicit(&p->inflight, b->inflight, memory_order_relaxed);
	if (!atomic_load_explicit(&p->stopped, memory_order_relaxed))
		atomic_store_explicit(&p->stopped, true, memory_order_release);
}

/* How long a thread that does not lead may sleep: it must notice the leader's phase changes. */
static uint64_t follower_wait_ns(const struct bench *b, uint64_t now)
{
	if (b->phase == BENCH_PH_MEASURE && b->win_end_ns > now && b->win_end_ns - now < ms_ns(10))
		return b->win_end_ns - now;
	return ms_ns(10);
}

/* Waits once for completions: bounded by the tick, the deadline, and --coalesce-us. */
static void wait_completions(struct bench *b, uint64_t wait_ns)
{
	bool rated = b->o->rate_total > 0 || b->o->rate_per_client > 0;
	uint64_t tick = rated ? (uint64_t)b->o->tick_us * 1000u : ms_ns(10);
	if (wait_ns > tick || wait_ns == 0)
		wait_ns = tick;
	/* Coalescing: sleep until many completions are ready, or a short while passed. */
	unsigned wait_nr = 1;
	if (b->o->coalesce_us > 0) {
		wait_nr = BENCH_COALESCE_CQES;
		if (wait_ns > (uint64_t)b->o->coalesce_us * 1000u)
			wait_ns = (uint64_t)b->o->coalesce_us * 1000u;
	}
	struct __kernel_timespec ts = {.tv_sec = (long long)(wait_ns / 1000000000u),
	                               .tv_nsec = (long long)(wait_ns % 1000000000u)};
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(&b->ring, &cqe, wait_nr, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
		bench_fail(b, "io_uring_submit_and_wait_timeout: %s", strerror(-rc));
}

int bench_run(struct bench *b)
{
	uint64_t wait_ns = 0;
	while (b->phase != BENCH_PH_DONE) {
		wait_completions(b, wait_ns);
		uint64_t now = bench_now_ns();
		bench_loop_reap(b, now);
		bench_loop_rearm(b);
		now = bench_now_ns();
		wait_ns = b->id == 0 ? bench_phase_lead(b, now) : follower_wait_ns(b, now);
		follow_phase(b);
		if (b->phase == BENCH_PH_SETUP)
			start_connects(b, now);
		run_publishers(b, now);
		keepalive(b, now);
		bench_loop_flush(b);
		if (b->phase >= BENCH_PH_DRAIN)
			publish_pulse(b);
	}
	return 0;
}
