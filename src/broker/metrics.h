/*
 * Prometheus metrics: `metrics_listener` connections served from a worker's own io_uring loop
 * (metrics_conn.c), and the figures they expose (metrics.c).
 *
 * Serving: a metrics listener is bound once per worker with SO_REUSEPORT like an MQTT
 * listener, so a scrape lands on any worker, which answers it from its own loop: accept, a
 * multishot receive into the worker's provided buffers (the request head is copied into a
 * bounded buffer of the connection), one sendmsg of the whole response. Nothing blocks and
 * nothing waits for another worker.
 *
 * Figures: with one worker, its own counters. With several, every worker's snapshot (struct
 * worker_snapshot in broker.h: relaxed atomic stores by its owner once per housekeeping pass,
 * 250 ms; relaxed loads by the serving worker, which refreshes its own first), summed where a
 * metric is broker-wide and labelled worker="N" where it is per worker. Snapshots only ever
 * move forward, so whichever worker serves a scrape, no counter goes back; a figure may be up
 * to 250 ms old. A snapshot is read field by field while its owner may be writing it: figures
 * of one worker may come from two neighbouring passes, never torn within one field.
 *
 * The loop-time histogram: each worker times every loop iteration (from the end of its wait
 * for completions to the start of the next wait: handlers, housekeeping, the batch end) with
 * one clock read more per iteration, only when a metrics listener is configured, into plain
 * per-worker bucket counters (struct metrics_loop) that the snapshot carries.
 */
#ifndef STARLING_METRICS_H
#define STARLING_METRICS_H

#include <stdbool.h>
#include <stdint.h>

struct worker;
struct mtext;

/* Upper bounds of the loop-time buckets, in nanoseconds (the +Inf bucket follows). */
#define METRICS_LOOP_BOUNDS_NS                                                                     \
	{                                                                                          \
		5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,      \
		        10000000, 25000000, 100000000                                              \
	}
#define METRICS_LOOP_BUCKETS 13 /* bounds; counts have one more (+Inf) */

/* One worker's loop-time histogram: per-bucket counts (not cumulative) and the sum. */
struct metrics_loop {
	uint64_t counts[METRICS_LOOP_BUCKETS + 1]; /* iterations per bucket; last: above all */
	uint64_t sum_ns;                           /* time of all iterations counted */
};

/* Counts one loop iteration that took ns nanoseconds. */
static inline void metrics_loop_observe(struct metrics_loop *h, uint64_t ns)
{
	static const uint64_t bounds[METRICS_LOOP_BUCKETS] = METRICS_LOOP_BOUNDS_NS;
	unsigned i = 0;

	while (i < METRICS_LOOP_BUCKETS && ns > bounds[i])
		i++;
	h->counts[i]++;
	h->sum_ns += ns;
}

/* A connection of a metrics listener (metrics_conn.c); w->mconns lists them. */
struct mconn;

/* Takes a socket accepted on a metrics listener (closed at once past the per-worker bound). */
void metrics_accepted(struct worker *w, int fd);

/* Housekeeping: connections past their deadline are closed, starved receives re-armed. */
void metrics_housekeeping(struct worker *w);

/* Shutdown: closes every metrics connection (they are freed as their completions arrive). */
void metrics_close_all(struct worker *w);

/* After the ring is gone: frees what is left. */
void metrics_fini(struct worker *w);

/* Writes every metric, as the serving worker w sees them, into t (metrics.c). */
void metrics_render(struct worker *w, struct mtext *t);

#endif
