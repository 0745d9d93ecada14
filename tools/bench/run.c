/*
 * The phases of a starling-bench run and the publishers (bench.h).
 *
 * setup     connect every client (at most connect_parallel handshakes at once, at most
 *           connect_rate per second), subscribe, until all are ready or setup_timeout passes;
 * warmup    publishers publish, nothing is measured;
 * measure   the window: messages stamped now are counted, the broker's CPU is sampled at both
 *           edges (connections: the idle connections are held);
 * drain     publishers stop; wait until every expected delivery and acknowledgement arrived,
 *           at most drain_ms;
 * teardown  DISCONNECT everyone and wait (at most BENCH_TEARDOWN_MS) for the broker to close.
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

#include "procstat.h"
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
static uint16_t take_packet_id(struct bench_pub *pub)
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
		rate = b->o->rate_total / (double)b->plan.pubs;
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
	const struct bench_plan_pub *pp = &b->plan.pub[pub->plan_index];
	uint64_t due = publisher_due(b, pub, now);
	uint32_t bytes = 0;
	bool in_window = b->phase == BENCH_PH_MEASURE;

	uint32_t room = bench_flow_room(b, pub, now);
	if (room < due)
		due = room;
	while (due > 0 && bytes < b->o->batch_bytes) {
		uint32_t t = pp->first_topic + pub->topic_next;
		const struct bench_tmpl *tp = &b->tmpl[t];
		uint16_t id = 0;
		if (b->o->qos > 0 && (id = take_packet_id(pub)) == 0)
			break;
		bench_flow_sent(pub, pub->seq_next, b->plan.topics[t].fan, now);
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
			b->n.expected_win += b->plan.topics[t].fan;
		}
	}
	if (bytes > 0)
		bench_mark_dirty(b, c);
}

static void run_publishers(struct bench *b, uint64_t now)
{
	if (b->phase != BENCH_PH_WARMUP && b->phase != BENCH_PH_MEASURE)
		return;
	for (uint32_t i = 0; i < b->plan.pubs; i++) {
		struct bench_conn *c = &b->conns[b->plan.subs + i];
		/* Only after the previous send completed: the batch covers all that is due. */
		if (!c->send_busy && c->state == BENCH_CONN_READY)
			generate(b, c, now);
	}
}

static void start_connects(struct bench *b, uint64_t now)
{
	while (b->next_connect < b->nconns && b->handshakes < b->o->connect_parallel) {
		if (b->o->connect_rate > 0) {
			uint64_t allowed =
			        (now - b->t_start_ns) * b->o->connect_rate / 1000000000u + 1u;
			if (b->next_connect >= allowed)
				break;
		}
		b->handshakes++;
		bench_loop_start_connect(b, &b->conns[b->next_connect++]);
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

static void sample_broker_cpu(struct bench *b, uint64_t *cpu_ns)
{
	if (b->o->broker_pid == 0)
		return;
	int rc = bench_proc_cpu_ns(b->o->broker_pid, cpu_ns);
	if (rc != 0)
		bench_fail(b, "reading /proc/%ld/stat: %s", (long)b->o->broker_pid, strerror(-rc));
}

static void sample_broker_rss(struct bench *b, uint64_t *rss_kb)
{
	if (b->o->broker_pid == 0)
		return;
	int rc = bench_proc_rss_kb(b->o->broker_pid, rss_kb);
	if (rc != 0)
		bench_fail(b, "reading /proc/%ld/status: %s", (long)b->o->broker_pid,
		           strerror(-rc));
}

static void enter(struct bench *b, enum bench_phase ph, uint64_t now)
{
	b->phase = ph;
	b->t_phase_ns = now;
}

static void open_window(struct bench *b, uint64_t now)
{
	sample_broker_cpu(b, &b->s.broker_cpu0_ns);
	b->s.self_cpu0_ns = bench_self_cpu_ns();
	b->win_start_ns = now;
	enter(b, BENCH_PH_MEASURE, now);
}

static void close_window(struct bench *b, uint64_t now)
{
	sample_broker_cpu(b, &b->s.broker_cpu1_ns);
	sample_broker_rss(b, &b->s.broker_rss1_kb);
	b->s.self_cpu1_ns = bench_self_cpu_ns();
	b->s.broker_ok = b->o->broker_pid != 0;
	b->win_end_ns = now;
	enter(b, BENCH_PH_DRAIN, now);
}

static bool drained(const struct bench *b)
{
	if (b->n.delivered_win < b->n.expected_win)
		return false;
	for (uint32_t i = 0; i < b->plan.pubs; i++)
		if (b->pubs[i].inflight > 0)
			return false;
	return true;
}

static void start_teardown(struct bench *b, uint64_t now)
{
	for (uint32_t i = 0; i < b->nconns; i++) {
		struct bench_conn *c = &b->conns[i];
		if (c->fd < 0 || c->state == BENCH_CONN_CLOSED)
			continue;
		bench_mqtt_queue_simple(b, c, ST_DISCONNECT);
		c->state = BENCH_CONN_CLOSING;
	}
	enter(b, BENCH_PH_TEARDOWN, now);
}

static void setup_progress(struct bench *b, uint64_t now)
{
	if (b->ready == b->nconns) {
		if (b->plan.idle > 0) {
			open_window(b, now); /* connections: the window is the hold */
		} else {
			b->t_pub_start_ns = now;
			enter(b, BENCH_PH_WARMUP, now);
		}
		return;
	}
	if (now - b->t_phase_ns > ms_ns(b->o->setup_timeout_ms)) {
		uint32_t subscribing = 0;
		for (uint32_t i = 0; i < b->nconns; i++)
			subscribing += b->conns[i].state == BENCH_CONN_SUBSCRIBING;
		bench_fail(b,
		           "setup timed out after %.1f s: %u of %u clients ready, %u connecting, "
		           "%u waiting for SUBACKs",
		           (double)b->o->setup_timeout_ms / 1000.0, b->ready, b->nconns,
		           b->handshakes, subscribing);
	}
	start_connects(b, now);
}

/* Moves through the phases; returns the nanoseconds until the next deadline. */
static uint64_t advance(struct bench *b, uint64_t now)
{
	uint64_t left;
	switch (b->phase) {
	case BENCH_PH_SETUP:
		setup_progress(b, now);
		return ms_ns(10);
	case BENCH_PH_WARMUP:
		if (now - b->t_phase_ns >= ms_ns(b->o->warmup_ms))
			open_window(b, now);
		return ms_ns(1);
	case BENCH_PH_MEASURE:
		if (now - b->t_phase_ns >= ms_ns(b->o->duration_ms))
			close_window(b, now);
		left = ms_ns(b->o->duration_ms) - (now - b->t_phase_ns);
		return left < ms_ns(10) ? left : ms_ns(10);
	case BENCH_PH_DRAIN:
		if (drained(b) || now - b->t_phase_ns >= ms_ns(b->o->drain_ms))
			start_teardown(b, now);
		return ms_ns(5);
	case BENCH_PH_TEARDOWN:
		if (b->closed == b->nconns || now - b->t_phase_ns >= ms_ns(BENCH_TEARDOWN_MS))
			enter(b, BENCH_PH_DONE, now);
		return ms_ns(5);
	default:
		return 0;
	}
}

int bench_run(struct bench *b)
{
	b->t_start_ns = bench_now_ns();
	b->t_phase_ns = b->t_start_ns;
	b->win_start_ns = UINT64_MAX;
	b->win_end_ns = UINT64_MAX;
	sample_broker_rss(b, &b->s.broker_rss0_kb);
	uint64_t wait_ns = 0;
	while (b->phase != BENCH_PH_DONE) {
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
		uint64_t now = bench_now_ns();
		bench_loop_reap(b, now);
		bench_loop_rearm(b);
		now = bench_now_ns();
		wait_ns = advance(b, now);
		run_publishers(b, now);
		keepalive(b, now);
		bench_loop_flush(b);
	}
	return 0;
}
