/*
 * The leader's side of a run's phases (bench.h, run.c for the phases themselves). Thread 0
 * calls bench_phase_lead once per loop iteration; it alone writes the shared phase, and
 * before each release store of it, whatever the other threads will read once they see it.
 *
 * It decides from shared atomics that are touched once per connection (ready, closed) and
 * from the other threads' pulses once they have stopped publishing (drained), never from
 * their counters, which only the report reads, after the threads are joined. The window's
 * edges are planned when setup ends — warm-up after the last client is ready, then the
 * window — so that every thread classifies messages by their timestamps alone; the leader
 * samples the broker's CPU and its own process's when it reaches each edge, which its loop
 * wakes up for (within a millisecond at the start, at the deadline at the end).
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#include "procstat.h"

static uint64_t ms_ns(uint64_t ms)
{
	return ms * 1000000u;
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

/* Publishes the phase: everything written before is visible to whoever reads it. */
static void enter(struct bench_shared *sh, enum bench_phase ph, uint64_t now)
{
	sh->t_phase_ns = now;
	atomic_store_explicit(&sh->phase, ph, memory_order_release);
}

void bench_phase_start(struct bench_shared *sh, uint64_t now_ns)
{
	sh->t_start_ns = now_ns;
	sh->t_phase_ns = now_ns;
	sh->win_start_ns = UINT64_MAX;
	sh->win_end_ns = UINT64_MAX;
	sample_broker_rss(sh->threads[0], &sh->s.broker_rss0_kb);
	sample_broker_cpu(sh->threads[0], &sh->s.broker_cpu_setup0_ns);
}

static void open_window(struct bench *b, uint64_t now)
{
	sample_broker_cpu(b, &b->sh->s.broker_cpu0_ns);
	b->sh->s.self_cpu0_ns = bench_self_cpu_ns();
	enter(b->sh, BENCH_PH_MEASURE, now);
}

static void close_window(struct bench *b, uint64_t now)
{
	struct bench_shared *sh = b->sh;
	sample_broker_cpu(b, &sh->s.broker_cpu1_ns);
	sample_broker_rss(b, &sh->s.broker_rss1_kb);
	sh->s.self_cpu1_ns = bench_self_cpu_ns();
	sh->s.broker_ok = b->o->broker_pid != 0;
	enter(sh, BENCH_PH_DRAIN, now);
}

/* Every window message delivered and acknowledged, by the pulses of threads done publishing. */
static bool drained(const struct bench_shared *sh)
{
	uint64_t expected = 0, delivered = 0, inflight = 0;
	for (uint32_t t = 0; t < sh->nthreads; t++) {
		struct bench_pulse *p = &sh->threads[t]->pulse;
		if (!atomic_load_explicit(&p->stopped, memory_order_acquire))
			return false;
		expected += atomic_load_explicit(&p->expected_win, memory_order_relaxed);
		delivered += atomic_load_explicit(&p->delivered_win, memory_order_relaxed);
		inflight += atomic_load_explicit(&p->inflight, memory_order_relaxed);
	}
	return delivered >= expected && inflight == 0;
}

/* Everyone ready: plans the window and starts publishing (or holding, for connections). */
static void setup_done(struct bench *b, uint64_t now)
{
	struct bench_shared *sh = b->sh;
	/* What setting every connection up cost (TLS: the handshakes), for the report. */
	sh->s.setup_done_ns = now;
	sample_broker_cpu(b, &sh->s.broker_cpu_setup1_ns);
	if (sh->plan.idle > 0) {
		sh->win_start_ns = now; /* connections: the window is the hold */
		sh->win_end_ns = now + ms_ns(b->o->duration_ms);
		open_window(b, now);
		return;
	}
	sh->t_pub_start_ns = now;
	sh->win_start_ns = now + ms_ns(b->o->warmup_ms);
	sh->win_end_ns = sh->win_start_ns + ms_ns(b->o->duration_ms);
	enter(sh, BENCH_PH_WARMUP, now);
}

static void setup_progress(struct bench *b, uint64_t now)
{
	struct bench_shared *sh = b->sh;
	uint32_t ready = atomic_load_explicit(&sh->ready, memory_order_relaxed);
	if (ready == sh->nconns) {
		setup_done(b, now);
		return;
	}
	if (now - sh->t_phase_ns > ms_ns(b->o->setup_timeout_ms))
		bench_fail(b,
		           "setup timed out after %.1f s: %u of %u clients ready, %u connecting, "
		           "%u waiting for SUBACKs",
		           (double)b->o->setup_timeout_ms / 1000.0, ready, sh->nconns,
		           atomic_load_explicit(&sh->handshakes, memory_order_relaxed),
		           atomic_load_explicit(&sh->subscribing, memory_order_relaxed));
}

uint64_t bench_phase_lead(struct bench *b, uint64_t now)
{
	struct bench_shared *sh = b->sh;
	uint64_t left;
	switch (atomic_load_explicit(&sh->phase, memory_order_relaxed)) {
	case BENCH_PH_SETUP:
		setup_progress(b, now);
		return ms_ns(10);
	case BENCH_PH_WARMUP:
		if (now >= sh->win_start_ns)
			open_window(b, now);
		return ms_ns(1);
	case BENCH_PH_MEASURE:
		if (now >= sh->win_end_ns) {
			close_window(b, now);
			return ms_ns(5);
		}
		left = sh->win_end_ns - now;
		return left < ms_ns(10) ? left : ms_ns(10);
	case BENCH_PH_DRAIN:
		if (drained(sh) || now - sh->t_phase_ns >= ms_ns(b->o->drain_ms))
			enter(sh, BENCH_PH_TEARDOWN, now);
		return ms_ns(5);
	case BENCH_PH_TEARDOWN:
		if (atomic_load_explicit(&sh->closed, memory_order_relaxed) == sh->nconns ||
		    now - sh->t_phase_ns >= ms_ns(BENCH_TEARDOWN_MS))
			enter(sh, BENCH_PH_DONE, now);
		return ms_ns(5);
	default:
		return 0;
	}
}
