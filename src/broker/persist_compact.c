/*
 * Compaction of a worker's log (persist.h): every autosave_interval seconds (or records, with
 * autosave_on_changes), or when the segment appended to has grown well past the last base, a
 * thread of its own creates the next segment; the worker switches its appends to it at the end
 * of an iteration; once the commits still in flight to the old segment are done, a thread
 * rewrites the chain up to the old segment as one base
 * (store_dir_compact) while the worker goes on. The loop never waits for a file: it only
 * looks at the thread's state from housekeeping and at the end of its iterations.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "persist.h"
#include "store/dir.h"
#include "worker.h"

/* Bytes past the last base's size after which the log is compacted whatever the interval. */
#define COMPACT_GROWTH_MIN (64ull << 20)
#define COMPACT_RETRY_MS   60000 /* after a failed compaction */
/* Largest state taken from memory for a compaction (a few milliseconds of encoding at most);
 * a larger one is rebuilt from the segments by the thread. */
#define COMPACT_SNAPSHOT_MAX (4u << 20)

static void compact_run(struct worker *w);

static void *compact_create_main(void *arg)
{
	struct persist *p = arg;
	struct worker *w = p->w;

	/* As far ahead as the segment it follows grew (persist.h); the worker adds more. */
	p->new_fd = store_dir_create_segment(w->b->store, w->index, p->new_seq, p->dio != 0,
	                                     p->dio ? persist_zero_ahead(p->new_grown, p->dio) : 0,
	                                     p->compact_msg, sizeof(p->compact_msg));
	p->new_off = STORE_HEADER_LEN;
	p->new_size = 0;
	p->new_dio = p->new_fd >= 0 ? persist_dio_open(p->new_fd, STORE_HEADER_LEN, &p->new_off,
	                                               &p->new_size)
	                            : 0;
	atomic_store_explicit(&p->cstate, PC_CREATED, memory_order_release);
	return NULL;
}

static void *compact_run_main(void *arg)
{
	struct persist *p = arg;
	struct worker *w = p->w;

	if (p->use_snap)
		p->compact_err = store_dir_compact_from(
		        w->b->store, w->index, p->base_seq, p->new_seq - 1, p->snap.data,
		        p->snap.len, &p->compact_stats, p->compact_msg, sizeof(p->compact_msg));
	else
		p->compact_err = store_dir_compact(w->b->store, w->index, p->base_seq,
		                                   p->new_seq - 1, &p->compact_stats,
		                                   p->compact_msg, sizeof(p->compact_msg));
	atomic_store_explicit(&p->cstate, PC_DONE, memory_order_release);
	return NULL;
}

static bool compact_due(const struct worker *w)
{
	const struct persist *p = w->ps;
	const struct config *cfg = &w->b->cfg;

	if (p->seq == p->base_seq && p->seg_bytes <= STORE_HEADER_LEN + p->base_bytes)
		return false; /* nothing since the base */
	if (p->since_compact == 0)
		return false;
	if (p->seg_bytes > COMPACT_GROWTH_MIN + 2 * p->base_bytes)
		return true;
	if (!cfg->autosave_interval)
		return false;
	if (cfg->autosave_on_changes)
		return p->since_compact >= cfg->autosave_interval;
	return w->now_ms >= p->compact_at_ms;
}

static void compact_start(struct worker *w)
{
	struct persist *p = w->ps;

	p->new_seq = p->seq + 1;
	p->new_fd = -1;
	p->new_grown = p->off - p->seg_first;
	atomic_store_explicit(&p->cstate, PC_CREATING, memory_order_relaxed);
	if (pthread_create(&p->thread, NULL, compact_create_main, p) != 0) {
		atomic_store_explicit(&p->cstate, PC_IDLE, memory_order_relaxed);
		p->compact_at_ms = w->now_ms + COMPACT_RETRY_MS;
		log_msg(&w->log, LOG_T_WARNING, "Persistence: cannot start a compaction thread.");
		return;
	}
	p->thread_live = true;
}

/* Between two commits: appends go to the new segment, the old ones become a base. */
static void compact_switch(struct worker *w)
{
	struct persist *p = w->ps;

	p->old_fd = p->fd;
	p->fd = p->new_fd;
	p->new_fd = -1;
	p->seq = p->new_seq;
	p->off = p->new_off;
	p->seg_first = p->off;
	persist_set_dio(p, p->new_dio);
	p->zero_end = p->new_size;
	p->zero_stopped = false;
	p->seg_bytes = STORE_HEADER_LEN;
	p->since_compact = 0;
	atomic_store_explicit(&p->cstate, PC_SWITCHED, memory_order_relaxed);
	compact_run(w);
}

/* Once no commit is in flight to the old segment, its chain is rewritten as a base. */
static void compact_run(struct worker *w)
{
	struct persist *p = w->ps;

	if (persist_fd_busy(p, p->old_fd))
		return;
	close(p->old_fd);
	p->old_fd = -1;
	atomic_store_explicit(&p->cstate, PC_COMPACTING, memory_order_relaxed);
	if (pthread_create(&p->thread, NULL, compact_run_main, p) != 0) {
		atomic_store_explicit(&p->cstate, PC_IDLE, memory_order_relaxed);
		p->compact_at_ms = w->now_ms + COMPACT_RETRY_MS;
		log_msg(&w->log, LOG_T_WARNING, "Persistence: cannot start a compaction thread.");
		return;
	}
	p->thread_live = true;
}
void persist_compact_switch(struct worker *w)
{
	struct persist *p = w->ps;

	if (atomic_load_explicit(&p->cstate, memory_order_acquire) != PC_CREATED)
		return;
	if (p->thread_live) {
		pthread_join(p->thread, NULL);
		p->thread_live = false;
	}
	if (p->new_fd < 0) {
		log_msg(&w->log, LOG_T_WARNING,
		        "Persistence: compaction of worker %u's log postponed: %s.", w->index,
		        p->compact_msg);
		atomic_store_explicit(&p->cstate, PC_IDLE, memory_order_relaxed);
		p->compact_at_ms = w->now_ms + COMPACT_RETRY_MS;
		return;
	}
	/* A small state is taken from memory now, between two iterations: the thread then
	 * needs no segment read back. */
	p->snap.len = 0;
	p->use_snap = persist_snapshot(w, &p->snap, COMPACT_SNAPSHOT_MAX) == 0;
	if (!p->use_snap)
		store_buf_free(&p->snap);
	compact_switch(w);
}

static void compact_done(struct worker *w)
{
	struct persist *p = w->ps;
	const struct store_compact_stats *st = &p->compact_stats;

	pthread_join(p->thread, NULL);
	p->thread_live = false;
	store_buf_free(&p->snap);
	atomic_store_explicit(&p->cstate, PC_IDLE, memory_order_relaxed);
	p->compact_at_ms = w->now_ms + (uint64_t)w->b->cfg.autosave_interval * 1000;
	if (p->compact_err < 0) {
		/* The chain is whole (base .. old segment, new segment): the next one covers it. */
		log_msg(&w->log, LOG_T_WARNING,
		        "Persistence: compaction of worker %u's log failed: %s.", w->index,
		        p->compact_msg);
		p->compact_at_ms = w->now_ms + COMPACT_RETRY_MS;
		return;
	}
	p->base_seq = p->new_seq - 1;
	p->base_bytes = st->bytes_out;
	p->stats.compactions++;
	log_msg(&w->log, LOG_T_INFORMATION,
	        "Persistence: worker %u's log compacted%s: %" PRIu64 " records in %" PRIu64
	        " bytes became %" PRIu64 " records in %" PRIu64 " bytes.",
	        w->index, p->use_snap ? " from a snapshot" : "", st->records_in, st->bytes_in,
	        st->records_out, st->bytes_out);
}

void persist_compact_poll(struct worker *w)
{
	struct persist *p = w->ps;

	if (atomic_load_explicit(&p->cstate, memory_order_relaxed) == PC_IDLE && !w->stopping &&
	    compact_due(w))
		compact_start(w);
}

void persist_compact_tick(struct worker *w)
{
	struct persist *p = w->ps;

	switch (atomic_load_explicit(&p->cstate, memory_order_acquire)) {
	case PC_IDLE:
		if (!w->stopping && compact_due(w))
			compact_start(w);
		break;
	case PC_CREATED:
		persist_compact_switch(w);
		break;
	case PC_SWITCHED:
		compact_run(w);
		break;
	case PC_DONE:
		compact_done(w);
		break;
	default:
		break;
	}
}

void persist_compact_stop(struct worker *w)
{
	struct persist *p = w->ps;

	if (p->thread_live) {
		pthread_join(p->thread, NULL);
		p->thread_live = false;
	}
	if (atomic_load_explicit(&p->cstate, memory_order_acquire) == PC_SWITCHED) {
		/* Its chain stays as it is: base .. old segment, new segment. */
		atomic_store_explicit(&p->cstate, PC_IDLE, memory_order_relaxed);
		return;
	}
	if (atomic_load_explicit(&p->cstate, memory_order_acquire) == PC_CREATED &&
	    p->new_fd >= 0) {
		/* Never appended to: an empty segment that continues the chain. */
		close(p->new_fd);
		p->new_fd = -1;
	}
	atomic_store_explicit(&p->cstate, PC_IDLE, memory_order_relaxed);
}
