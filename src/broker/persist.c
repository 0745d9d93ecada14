/*
 * The worker's group commit (persist.h): sealing the records of a loop iteration into one
 * write + fdatasync on the worker's ring, the connections held for it, the acknowledgements
 * between workers, retries after a failed write.
 */
#include "persist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/fifo.h"
#include "broker.h"
#include "conn.h"
#include "store/dir.h"
#include "worker.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define PERSIST_RETRY_MS  1000       /* after a failed write or sync */
#define PERSIST_WRITE_MAX (1u << 30) /* bytes per write submission (the SQE's length is 32 bits)   \
	                              */

static uint64_t wall_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- hold lists ------------------------------------------------------------------------- */

static void fill_add(struct persist *p, struct conn *c)
{
	c->hold_fill_prev = NULL;
	c->hold_fill_next = p->fill_list;
	if (p->fill_list)
		p->fill_list->hold_fill_prev = c;
	p->fill_list = c;
	c->on_fill = true;
}

static void fill_del(struct persist *p, struct conn *c)
{
	if (c->hold_fill_prev)
		c->hold_fill_prev->hold_fill_next = c->hold_fill_next;
	else
		p->fill_list = c->hold_fill_next;
	if (c->hold_fill_next)
		c->hold_fill_next->hold_fill_prev = c->hold_fill_prev;
	c->hold_fill_prev = c->hold_fill_next = NULL;
	c->on_fill = false;
}

static void wait_add(struct persist *p, struct conn *c)
{
	c->hold_wait_prev = NULL;
	c->hold_wait_next = p->wait_list;
	if (p->wait_list)
		p->wait_list->hold_wait_prev = c;
	p->wait_list = c;
	c->on_wait = true;
}

static void wait_del(struct persist *p, struct conn *c)
{
	if (c->hold_wait_prev)
		c->hold_wait_prev->hold_wait_next = c->hold_wait_next;
	else
		p->wait_list = c->hold_wait_next;
	if (c->hold_wait_next)
		c->hold_wait_next->hold_wait_prev = c->hold_wait_prev;
	c->hold_wait_prev = c->hold_wait_next = NULL;
	c->on_wait = false;
}

void persist_hold(struct worker *w, struct conn *c, bool remote)
{
	struct persist *p = w->ps;

	if (!p || !p->sync)
		return;
	if (remote)
		p->remote_in_fill = true;
	c->hold_commit = p->sealed + 1;
	if (!c->on_fill)
		fill_add(p, c);
}

void persist_conn_gone(struct worker *w, struct conn *c)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	if (c->on_fill)
		fill_del(p, c);
	if (c->on_wait)
		wait_del(p, c);
}

uint64_t persist_sendable(const struct worker *w, const struct conn *c)
{
	const struct persist *p = w->ps;

	if (!p || c->hold_commit <= p->released)
		return UINT64_MAX;
	if (c->mark_commit && c->mark_commit <= p->released)
		return c->mark;
	return 0;
}

void persist_sent(struct conn *c, uint64_t n)
{
	if (n >= c->mark) {
		c->mark = 0;
		c->mark_commit = 0;
	} else {
		c->mark -= n;
	}
}

bool persist_refusing(const struct worker *w)
{
	const struct persist *p = w->ps;

	return p && (p->failing || p->buf[0].len + p->buf[1].len > PERSIST_PENDING_MAX);
}

/* --- acknowledgements between workers ---------------------------------------------------- */

static _Atomic uint64_t *ack_slot(struct worker *w, unsigned from, unsigned to)
{
	return &w->b->shared.persist_acks[from * w->nworkers + to];
}

/* Publishes what this worker handled from each other worker up to the commit on disk. */
static void persist_publish_acks(struct worker *w, const uint64_t *handled)
{
	struct persist *p = w->ps;

	for (unsigned from = 0; from < w->nworkers; from++) {
		if (from == w->index || handled[from] == p->in_acked[from])
			continue;
		p->in_acked[from] = handled[from];
		atomic_store_explicit(ack_slot(w, from, w->index), handled[from],
		                      memory_order_seq_cst);
		/* Dekker with the waiter's flag-then-check: one of the two sees the other. */
		if (atomic_load_explicit(&w->b->shared.persist_waiting[from].v,
		                         memory_order_seq_cst))
			ring_msg(&w->ring, &w->b->workers[from].ring, &w->b->workers[from].xw.io,
			         0);
	}
}

static bool token_ready(struct worker *w, const struct persist_token *t)
{
	for (unsigned to = 0; to < w->nworkers; to++) {
		if (to == w->index)
			continue;
		if (atomic_load_explicit(ack_slot(w, w->index, to), memory_order_seq_cst) <
		    t->fwd[to])
			return false;
	}
	return true;
}

static void persist_set_waiting(struct worker *w, bool on)
{
	struct persist *p = w->ps;

	if (p->waiting == on)
		return;
	p->waiting = on;
	atomic_store_explicit(&w->b->shared.persist_waiting[w->index].v, on, memory_order_seq_cst);
}

/* The last commit whose held output may leave: on disk, and acknowledged where it must be. */
static uint64_t persist_releasable(struct worker *w)
{
	struct persist *p = w->ps;

	while (p->tok_len) {
		struct persist_token *t = &p->tokens[p->tok_head];

		if (t->commit > p->synced)
			break;
		if (!token_ready(w, t)) {
			persist_set_waiting(w, true);
			/* Checked again after the flag: an acknowledgement stored before it was
			 * set rang no doorbell. */
			if (!token_ready(w, t))
				return t->commit - 1;
		}
		free(t->fwd);
		p->tok_head = (p->tok_head + 1) & (p->tok_cap - 1);
		p->tok_len--;
	}
	persist_set_waiting(w, false);
	return p->synced;
}

static void persist_release(struct worker *w)
{
	struct persist *p = w->ps;
	uint64_t r = persist_releasable(w);

	if (r <= p->released)
		return;
	p->released = r;
	for (struct conn *c = p->wait_list, *next; c; c = next) {
		next = c->hold_wait_next;
		if (c->mark_commit > r && c->hold_commit > r)
			continue;
		wait_del(p, c);
		conn_want_flush(c);
	}
}

/* --- the commit ------------------------------------------------------------------------- */

static struct store_buf *inflight_buf(struct persist *p)
{
	return &p->buf[p->fill ^ 1];
}

static void persist_submit(struct worker *w)
{
	struct persist *p = w->ps;
	struct store_buf *b = inflight_buf(p);
	size_t len = b->len - p->done;

	if (len > PERSIST_WRITE_MAX)
		len = PERSIST_WRITE_MAX;
	p->write_res = 0;
	p->sync_res = 0;
	ring_write_sync(&w->ring, &p->wio, p->fd, b->data + p->done, len, p->off + p->done,
	                p->sync ? &p->sio : NULL, true);
}

static void persist_synced(struct worker *w)
{
	struct persist *p = w->ps;

	p->synced = p->sealed;
	if (w->nworkers > 1 && p->sync)
		persist_publish_acks(w, p->in_sealed);
	persist_release(w);
}

/* Seals the filling buffer as the next commit and starts writing it (or, empty, completes it). */
static void persist_seal(struct worker *w)
{
	struct persist *p = w->ps;
	uint64_t n = ++p->sealed;

	while (p->fill_list) {
		struct conn *c = p->fill_list;

		fill_del(p, c);
		c->mark = c->out.total;
		c->mark_commit = n;
		if (!c->on_wait)
			wait_add(p, c);
	}
	if (w->nworkers > 1 && p->sync) {
		memcpy(p->in_sealed, p->in_handled, w->nworkers * sizeof(*p->in_sealed));
		if (p->remote_in_fill) {
			uint64_t *fwd = malloc(w->nworkers * sizeof(*fwd));

			/* Out of memory: the held output waits for this worker's own sync only. */
			if (fwd && (p->tok_len < p->tok_cap ||
			            fifo_grow((void **)&p->tokens, &p->tok_head, p->tok_len,
			                      &p->tok_cap, sizeof(*p->tokens), 16) == ST_OK)) {
				memcpy(fwd, p->out_queued, w->nworkers * sizeof(*fwd));
				p->tokens[(p->tok_head + p->tok_len) & (p->tok_cap - 1)] =
				        (struct persist_token){.commit = n, .fwd = fwd};
				p->tok_len++;
			} else {
				free(fwd);
			}
		}
	}
	p->remote_in_fill = false;
	if (p->buf[p->fill].len == 0) {
		persist_synced(w);
		return;
	}
	p->fill ^= 1;
	p->busy = true;
	p->done = 0;
	persist_submit(w);
}

static void persist_failed(struct worker *w, int err, const char *what)
{
	struct persist *p = w->ps;

	p->stats.errors++;
	if (!p->failing || p->last_err != err)
		log_msg(&w->log, LOG_T_ERROR,
		        "Persistence: %s of %s.%u.%016" PRIx64
		        " failed: %s. QoS 1/2 publishes are refused and held acknowledgements wait "
		        "until it succeeds; retrying every %u ms.",
		        what, w->b->cfg.persistence_file, w->index, p->seq, strerror(-err),
		        PERSIST_RETRY_MS);
	p->failing = true;
	p->last_err = err;
	p->retry_ms = w->now_ms + PERSIST_RETRY_MS;
}

/* Both completions of the commit's attempt are in: done, go on, or fail and retry later. */
static void persist_io_done(struct worker *w)
{
	struct persist *p = w->ps;
	struct store_buf *b = inflight_buf(p);

	if (p->wio.pending || p->sio.pending)
		return;
	if (p->write_res < 0) {
		persist_failed(w, p->write_res, "a write");
		return;
	}
	if (p->done < b->len) {
		persist_submit(w); /* a short write: the rest, then the sync */
		return;
	}
	if (p->sync_res < 0) {
		/* The sync failed: what it should have covered may have left the page cache
		 * unwritten, so the whole commit is written again before it is trusted. */
		p->done = 0;
		persist_failed(w, p->sync_res, "fdatasync");
		return;
	}
	if (p->failing) {
		log_msg(&w->log, LOG_T_NOTICE,
		        "Persistence: writing %s.%u.%016" PRIx64 " succeeds again; publishes are "
		        "accepted.",
		        w->b->cfg.persistence_file, w->index, p->seq);
		p->failing = false;
	}
	p->stats.commits++;
	p->stats.syncs += p->sync;
	p->off += b->len;
	p->seg_bytes += b->len;
	b->len = 0;
	p->busy = false;
	persist_synced(w);
}

static void persist_on_write(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct persist *p = container_of(io, struct persist, wio);

	(void)r;
	if (cqe->res < 0)
		p->write_res = cqe->res;
	else
		p->done += (size_t)cqe->res;
	if (cqe->res == 0 && p->done < inflight_buf(p)->len)
		p->write_res = -ENOSPC; /* a write that makes no progress is a full disk */
	persist_io_done(p->w);
}

static void persist_on_sync(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct persist *p = container_of(io, struct persist, sio);

	(void)r;
	/* -ECANCELED: the write failed or was short, which the write's completion says. */
	if (cqe->res < 0 && cqe->res != -ECANCELED)
		p->sync_res = cqe->res;
	persist_io_done(p->w);
}

void persist_batch_end(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	if (!p->busy && atomic_load_explicit(&p->cstate, memory_order_relaxed) == PC_CREATED)
		persist_compact_switch(w);
	if (!p->busy) {
		bool acks = false;

		if (w->nworkers > 1 && p->sync)
			acks = memcmp(p->in_handled, p->in_acked, w->nworkers * sizeof(uint64_t)) !=
			       0;
		if (p->buf[p->fill].len || p->fill_list || p->remote_in_fill || acks)
			persist_seal(w);
	}
	if (p->tok_len)
		persist_release(w);
}

int persist_init(struct worker *w, const struct store_chain *own)
{
	struct broker *b = w->b;
	struct persist *p = calloc(1, sizeof(*p));
	const struct store_loaded *last = &own->segs[own->nsegs - 1];
	unsigned n = w->nworkers;

	if (!p)
		return ST_ERR_NOMEM;
	w->ps = p;
	p->w = w;
	p->wio.fn = persist_on_write;
	p->sio.fn = persist_on_sync;
	p->sync = b->cfg.persistence_sync;
	p->seq = last->seq;
	p->base_seq = own->segs[0].seq;
	p->off = last->len;
	p->seg_bytes = last->len;
	for (unsigned i = 0; i < own->nsegs; i++)
		p->base_bytes += i == 0 ? own->segs[i].len : 0;
	p->new_fd = -1;
	p->out_queued = calloc(n, sizeof(uint64_t));
	p->in_handled = calloc(n, sizeof(uint64_t));
	p->in_sealed = calloc(n, sizeof(uint64_t));
	p->in_acked = calloc(n, sizeof(uint64_t));
	if (!p->out_queued || !p->in_handled || !p->in_sealed || !p->in_acked)
		return ST_ERR_NOMEM;
	p->fd = store_dir_open_append(b->store, w->index, p->seq);
	if (p->fd < 0) {
		log_msg(&w->log, LOG_T_ERROR, "Persistence: cannot open %s.%u.%016" PRIx64 ": %s.",
		        b->cfg.persistence_file, w->index, p->seq, strerror(-p->fd));
		return ST_ERR_SYS;
	}
	p->wall_off_ms = wall_now_ms() - w->now_ms;
	p->compact_at_ms = w->now_ms + (uint64_t)b->cfg.autosave_interval * 1000;
	return ST_OK;
}

void persist_housekeeping(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	p->wall_off_ms = wall_now_ms() - w->now_ms;
	if (p->failing && p->busy && !p->wio.pending && !p->sio.pending && w->now_ms >= p->retry_ms)
		persist_submit(w);
	persist_compact_tick(w);
}

void persist_shutdown(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	persist_compact_stop(w);
	/* The loop has ended: what is still to write goes through the ring as before, waited
	 * for here (a failing disk gets a few more seconds, then what is left is reported). */
	for (unsigned round = 0; round < 50; round++) {
		if (!p->busy && p->buf[p->fill].len == 0)
			break;
		if (!p->busy)
			persist_seal(w);
		else if (p->failing && p->wio.pending == 0 && p->sio.pending == 0 &&
		         round % 10 == 9)
			persist_submit(w);
		if (ring_wait_us(&w->ring, 100000) < 0)
			break;
		ring_reap(&w->ring);
	}
	if (p->busy || p->buf[p->fill].len)
		log_msg(&w->log, LOG_T_ERROR,
		        "Persistence: %zu bytes of records could not be written at shutdown (%s).",
		        p->buf[0].len + p->buf[1].len,
		        p->failing ? strerror(-p->last_err) : "timeout");
}

void persist_fini(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	store_buf_free(&p->buf[0]);
	store_buf_free(&p->buf[1]);
	while (p->tok_len) {
		free(p->tokens[p->tok_head].fwd);
		p->tok_head = (p->tok_head + 1) & (p->tok_cap - 1);
		p->tok_len--;
	}
	free(p->tokens);
	free(p->out_queued);
	free(p->in_handled);
	free(p->in_sealed);
	free(p->in_acked);
	free(p);
	w->ps = NULL;
}
