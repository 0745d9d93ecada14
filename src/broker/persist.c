/*
 * The worker's group commit (persist.h): sealing the records of a loop iteration into one
 * write + fdatasync on the worker's ring, the connections held for it, the acknowledgements
 * between workers, retries after a failed write.
 */
#include "persist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fifo.h"
#include "broker.h"
#include "conn.h"
#include "store/dir.h"
#include "worker.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define PERSIST_RETRY_MS 1000 /* after a failed write or sync */
#define PERSIST_WRITE_MAX                                                                          \
	(1u << 30) /* bytes per write submission (the SQE's length is 32 bits)                     \
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

static size_t persist_pending_bytes(const struct persist *p);

bool persist_refusing(const struct worker *w)
{
	const struct persist *p = w->ps;

	return p && (p->failing || persist_pending_bytes(p) > PERSIST_PENDING_MAX ||
	             atomic_load_explicit(&w->b->shared.persist_failing, memory_order_relaxed));
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

static _Atomic uint64_t *full_slot(struct worker *w, unsigned from, unsigned to)
{
	return &w->b->shared.persist_full[from * w->nworkers + to];
}

/* Every other worker's count in `slots` covers what this one had queued for it (fwd). */
static bool counts_cover(struct worker *w,
                         _Atomic uint64_t *(*slot)(struct worker *, unsigned, unsigned),
                         const uint64_t *fwd)
{
	for (unsigned k = 0; k < w->nworkers; k++) {
		if (k == w->index)
			continue;
		if (fwd &&
		    atomic_load_explicit(slot(w, w->index, k), memory_order_seq_cst) < fwd[k])
			return false;
	}
	return true;
}

/* A publisher's commit: what it forwarded is on disk where it went, relays included. */
static bool token_ready(struct worker *w, const struct persist_token *t)
{
	return counts_cover(w, full_slot, t->fwd);
}

/* The full counts (persist.h), as persist_publish_acks the plain ones. */
static void persist_publish_full(struct worker *w, const uint64_t *handled)
{
	struct persist *p = w->ps;

	for (unsigned from = 0; from < w->nworkers; from++) {
		if (from == w->index || handled[from] == p->full_acked[from])
			continue;
		p->full_acked[from] = handled[from];
		atomic_store_explicit(full_slot(w, from, w->index), handled[from],
		                      memory_order_seq_cst);
		if (atomic_load_explicit(&w->b->shared.persist_waiting[from].v,
		                         memory_order_seq_cst))
			ring_msg(&w->ring, &w->b->workers[from].ring, &w->b->workers[from].xw.io,
			         0);
	}
}

uint64_t persist_stamp(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p->sync)
		return 0;
	p->stamped = true;
	return p->sealed + 1;
}

bool persist_synced_reached(const struct worker *w, unsigned from, uint64_t commit)
{
	return atomic_load_explicit(&w->b->shared.persist_synced[from].v, memory_order_seq_cst) >=
	       commit;
}

uint64_t persist_origin_new(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p || !p->sync || w->nworkers < 2 || p->origin_next + 1 >= STORE_ORIGIN_MAX)
		return 0;
	p->origin_dirty |= 1ull << w->index;
	return ++p->origin_next;
}

static bool origin_handled(const struct persist_origins *po, uint64_t o)
{
	return o > po->start ? o <= po->wm : ivset_has(&po->done, o);
}

/* Marks o handled; durable: the record that says so goes into the filling commit. */
static void origin_mark(struct persist *p, struct persist_origins *po, unsigned from, uint64_t o,
                        bool durable)
{
	if (o > po->start) {
		po->wm = o; /* in order: the interval [start + 1, wm] goes out at the seal */
		if (durable)
			p->origin_dirty |= 1ull << from;
		return;
	}
	/* A resend of an older number: the set keeps it, and so does the log, at once. */
	if (ivset_add(&po->done, o, o) != ST_OK)
		log_msg(&p->w->log, LOG_T_ERROR,
		        "Persistence: out of memory for an origin number.");
	if (durable)
		persist_origin_record(p, from, o, o);
}

void persist_origin_apply(struct worker *w, unsigned from, uint64_t o, bool *sess, bool *ret)
{
	struct persist *p = w->ps;
	struct persist_origins *s = &p->sess[from], *r = &p->ret[from];

	/* This worker's own sessions took the message with its packet id (one commit). */
	*sess = from != w->index && !origin_handled(s, o);
	*ret = !origin_handled(r, o);
	if (*sess)
		origin_mark(p, s, from, o, true);
	if (*ret && (r != s || !*sess))
		origin_mark(p, r, from, o, false);
}

void persist_origin_begin(struct worker *w)
{
	struct persist *p = w->ps;

	for (unsigned k = 0; k < w->nworkers; k++) {
		uint64_t start = w->b->shared.origin_start[k];

		p->sess[k].start = p->sess[k].wm = start;
		p->ret[k].start = p->ret[k].wm = start;
	}
	/* Worker 0's replica took its own publishes with their packet ids (one commit). */
	if (w->index == 0 && p->origin_next)
		ivset_add(&p->ret[0].done, 1, p->origin_next);
}

/* Tells the workers that wait for this one's commits that one more is on disk. */
static void persist_publish_synced(struct worker *w)
{
	struct broker_shared *sh = &w->b->shared;

	atomic_store_explicit(&sh->persist_synced[w->index].v, w->ps->synced, memory_order_seq_cst);
	for (unsigned k = 0; k < w->nworkers; k++)
		if (k != w->index &&
		    atomic_load_explicit(&sh->persist_waiting[k].v, memory_order_seq_cst))
			ring_msg(&w->ring, &w->b->workers[k].ring, &w->b->workers[k].xw.io, 0);
}

/* Asks the others to ring this worker when a token waits or the channel drain is parked. */
static void persist_set_waiting(struct worker *w)
{
	struct persist *p = w->ps;
	bool on = p->wait_tok || p->wait_full || p->parked;

	if (p->waiting == on)
		return;
	p->waiting = on;
	atomic_store_explicit(&w->b->shared.persist_waiting[w->index].v, on, memory_order_seq_cst);
}

void persist_park(struct worker *w, bool on)
{
	w->ps->parked = on;
	persist_set_waiting(w);
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
			p->wait_tok = true;
			persist_set_waiting(w);
			/* Checked again after the flag: an acknowledgement stored before it was
			 * set rang no doorbell. */
			if (!token_ready(w, t))
				return t->commit - 1;
		}
		free(t->fwd);
		p->tok_head = (p->tok_head + 1) & (p->tok_cap - 1);
		p->tok_len--;
	}
	p->wait_tok = false;
	persist_set_waiting(w);
	return p->synced;
}

static void persist_release(struct worker *w)
{
	struct persist *p = w->ps;
	uint64_t r = persist_releasable(w);

	if (r <= p->released)
		return;
	p->released = r;
	p->released_ms = 0;
	p->stall_logged = false;
	for (struct conn *c = p->wait_list, *next; c; c = next) {
		next = c->hold_wait_next;
		if (c->mark_commit > r && c->hold_commit > r)
			continue;
		wait_del(p, c);
		conn_want_flush(c);
	}
}

/* --- the commit ------------------------------------------------------------------------- */

/* The slot of the filling buffer. */
static struct persist_commit *fill_slot(struct persist *p)
{
	return &p->slot[p->fill];
}

static void persist_failed(struct worker *w, struct persist_commit *k, int err, const char *what);

static void persist_submit(struct worker *w, struct persist_commit *k)
{
	struct persist *p = w->ps;
	size_t len;

	/* Direct writes come from aligned memory (a buffer that grew before dio: moved once). */
	if (p->dio && k->fd == p->fd && store_buf_align(&k->buf, p->dio) != 0) {
		persist_failed(w, k, -ENOMEM, "a write");
		return;
	}
	len = k->buf.len - k->done;
	if (len > PERSIST_WRITE_MAX)
		len = PERSIST_WRITE_MAX;
	k->write_res = 0;
	k->failed = false;
	ring_write(&w->ring, &k->wio, k->fd, k->buf.data + k->done, len, k->off + k->done, p->sync);
}

static uint64_t align_up(uint64_t v, unsigned a)
{
	return (v + a - 1) & ~(uint64_t)(a - 1);
}

/*
 * Full counts in commit order, each once the plain counts of the workers its commit relayed to
 * cover what it relayed (persist.h: they wait for nothing, so this cannot wait in a cycle).
 */
static void persist_full_progress(struct worker *w)
{
	struct persist *p = w->ps;

	while (p->fq_len) {
		struct persist_fullack *f = &p->fullq[p->fq_head];

		if (!counts_cover(w, ack_slot, f->fwd)) {
			p->wait_full = true;
			persist_set_waiting(w);
			/* Again after the flag: a count stored before it rang no doorbell. */
			if (!counts_cover(w, ack_slot, f->fwd))
				return;
		}
		persist_publish_full(w, f->handled);
		free(f->handled);
		free(f->fwd);
		p->fq_head = (p->fq_head + 1) & (p->fq_cap - 1);
		p->fq_len--;
	}
	if (p->wait_full) {
		p->wait_full = false;
		persist_set_waiting(w);
	}
}

/* A synced commit's full counts: at once, or behind what waits, in order. */
static void persist_full_add(struct worker *w, struct persist_commit *k)
{
	struct persist *p = w->ps;
	struct persist_fullack f = {.fwd = k->relay_fwd};

	k->relay_fwd = NULL;
	if (!f.fwd && !p->fq_len) {
		persist_publish_full(w, k->in_sealed);
		return;
	}
	f.handled = malloc(w->nworkers * sizeof(uint64_t));
	if (!f.handled ||
	    (p->fq_len == p->fq_cap && fifo_grow((void **)&p->fullq, &p->fq_head, p->fq_len,
	                                         &p->fq_cap, sizeof(*p->fullq), 16) != ST_OK)) {
		/* Out of memory: the plain count stands for the full one, as before relays. */
		log_msg(&w->log, LOG_T_ERROR,
		        "Persistence: out of memory; an acknowledgement does not wait for relays.");
		free(f.handled);
		free(f.fwd);
		persist_publish_full(w, k->in_sealed);
		return;
	}
	memcpy(f.handled, k->in_sealed, w->nworkers * sizeof(uint64_t));
	p->fullq[(p->fq_head + p->fq_len) & (p->fq_cap - 1)] = f;
	p->fq_len++;
}

/*
 * Commits complete in any order (two may be in flight); they count as on disk in order:
 * commit n is synced once it and every older one completed (each has its own sync, and an
 * older write is covered by nothing but its own).
 */
static void persist_retire(struct worker *w)
{
	struct persist *p = w->ps;
	bool advanced = false;

	for (;;) {
		struct persist_commit *k = NULL;

		for (unsigned i = 0; i < PERSIST_SLOTS; i++)
			if (p->slot[i].n == p->synced + 1 && p->slot[i].done_ok)
				k = &p->slot[i];
		if (!k)
			break;
		p->synced = k->n;
		if (w->nworkers > 1 && p->sync) {
			persist_publish_acks(w, k->in_sealed);
			persist_full_add(w, k);
		}
		k->n = 0;
		k->done_ok = false;
		k->buf.len = 0;
		p->inflight--;
		advanced = true;
	}
	if (!advanced)
		return;
	if (p->fq_len)
		persist_full_progress(w);
	if (w->nworkers > 1 && p->sync)
		persist_publish_synced(w);
	persist_release(w);
}

static uint64_t *persist_vec_dup(const struct worker *w, const uint64_t *v)
{
	uint64_t *c = malloc(w->nworkers * sizeof(*c));

	if (c)
		memcpy(c, v, w->nworkers * sizeof(*c));
	return c;
}

/* Commit n waits for other workers' acknowledgements of what this one queued for them. */
static void persist_token_add(struct worker *w, uint64_t n)
{
	struct persist *p = w->ps;
	struct persist_token t = {.commit = n};

	t.fwd = persist_vec_dup(w, p->out_queued);
	if (!t.fwd ||
	    (p->tok_len == p->tok_cap && fifo_grow((void **)&p->tokens, &p->tok_head, p->tok_len,
	                                           &p->tok_cap, sizeof(*p->tokens), 16) != ST_OK)) {
		/* Out of memory: the held output waits for this worker's own sync only. */
		log_msg(&w->log, LOG_T_ERROR,
		        "Persistence: out of memory; a commit does not wait for other workers.");
		free(t.fwd);
		return;
	}
	p->tokens[(p->tok_head + p->tok_len) & (p->tok_cap - 1)] = t;
	p->tok_len++;
}

/*
 * Seals the filling buffer as the next commit and starts writing it at the segment's end (an
 * empty one completes at once, in its turn); another free buffer becomes the filling one.
 */
static void persist_seal(struct worker *w)
{
	struct persist *p = w->ps;
	struct persist_commit *k = fill_slot(p);
	uint64_t n = p->sealed + 1;

	if (persist_commit_close(p) != 0) {
		/* Out of memory for the pad: sealed at a later iteration, held output waits. */
		if (!p->failing)
			log_msg(&w->log, LOG_T_ERROR,
			        "Persistence: out of memory closing a commit.");
		return;
	}
	p->sealed = n;
	while (p->fill_list) {
		struct conn *c = p->fill_list;

		fill_del(p, c);
		c->mark = c->out.total;
		c->mark_commit = n;
		if (!c->on_wait)
			wait_add(p, c);
	}
	if (w->nworkers > 1 && p->sync) {
		memcpy(k->in_sealed, p->in_handled, w->nworkers * sizeof(*k->in_sealed));
		if (p->remote_in_fill)
			persist_token_add(w, n);
		if (p->relay_in_fill)
			k->relay_fwd = persist_vec_dup(w, p->out_queued);
	}
	p->remote_in_fill = false;
	p->relay_in_fill = false;
	p->stamped = false;
	k->n = n;
	k->fd = p->fd;
	k->off = p->off;
	k->done = 0;
	p->off += k->buf.len;
	if (k->fd == p->fd && p->off > p->zero_end)
		p->zero_end = p->off;
	p->seg_bytes += k->buf.len;
	p->inflight++;
	for (unsigned i = 0; i < PERSIST_SLOTS; i++)
		if (p->slot[i].n == 0) {
			p->fill = i;
			break;
		}
	if (k->buf.len == 0) {
		k->done_ok = true;
		persist_retire(w);
		return;
	}
	persist_submit(w, k);
}

static void persist_failed(struct worker *w, struct persist_commit *k, int err, const char *what)
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
	k->failed = true;
	if (!p->failing)
		atomic_fetch_add_explicit(&w->b->shared.persist_failing, 1, memory_order_relaxed);
	p->failing = true;
	p->last_err = err;
	p->retry_ms = w->now_ms + PERSIST_RETRY_MS;
}

/* A commit's write completed: done, go on, or fail and retry later. */
static void persist_io_done(struct worker *w, struct persist_commit *k)
{
	struct persist *p = w->ps;

	if (k->write_res < 0) {
		/* With persistence_sync always the failure may be the sync's: what it should
		 * have covered may have left the page cache unwritten, so the whole commit is
		 * written again before it is trusted. */
		k->done = 0;
		persist_failed(w, k, k->write_res, p->sync ? "a synced write" : "a write");
		return;
	}
	if (k->done < k->buf.len) {
		persist_submit(w, k); /* a short write: the rest (itself synced) */
		return;
	}
	p->stats.commits++;
	p->stats.syncs += p->sync;
	k->done_ok = true;
	if (p->failing) {
		bool any = false;

		for (unsigned i = 0; i < PERSIST_SLOTS; i++)
			any |= p->slot[i].failed;
		if (!any) {
			log_msg(&w->log, LOG_T_NOTICE,
			        "Persistence: writing %s.%u.%016" PRIx64
			        " succeeds again; publishes are accepted.",
			        w->b->cfg.persistence_file, w->index, p->seq);
			p->failing = false;
			atomic_fetch_sub_explicit(&w->b->shared.persist_failing, 1,
			                          memory_order_relaxed);
		}
	}
	persist_retire(w);
}

/* Retries the commits whose write or sync failed (housekeeping, shutdown). */
static void persist_retry(struct worker *w)
{
	struct persist *p = w->ps;

	for (unsigned i = 0; i < PERSIST_SLOTS; i++) {
		struct persist_commit *k = &p->slot[i];

		if (k->failed && !k->wio.pending)
			persist_submit(w, k);
	}
}

static void persist_on_write(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct persist_commit *k = container_of(io, struct persist_commit, wio);

	(void)r;
	if (cqe->res < 0)
		k->write_res = cqe->res;
	else
		k->done += (size_t)cqe->res;
	if (cqe->res == 0 && k->done < k->buf.len)
		k->write_res = -ENOSPC; /* a write that makes no progress is a full disk */
	persist_io_done(k->p->w, k);
}

bool persist_fd_busy(const struct persist *p, int fd)
{
	if (p->zeroing && p->zfd == fd)
		return true;
	for (unsigned i = 0; i < PERSIST_SLOTS; i++)
		if (p->slot[i].n && !p->slot[i].done_ok && p->slot[i].fd == fd)
			return true;
	return false;
}

static size_t persist_pending_bytes(const struct persist *p)
{
	size_t n = 0;

	for (unsigned i = 0; i < PERSIST_SLOTS; i++)
		n += p->slot[i].buf.len;
	return n;
}

/* --- zeros written ahead (dio) ---------------------------------------------------------- */

/* Read by the kernel only, by every worker's ring: never written, so shared safely. */
static uint8_t persist_zeros[PERSIST_ZERO_CHUNK] __attribute__((aligned(PERSIST_DIO_MAX)));

static void persist_zero_next(struct worker *w)
{
	struct persist *p = w->ps;
	size_t len = p->zto - p->zoff > PERSIST_ZERO_CHUNK ? PERSIST_ZERO_CHUNK
	                                                   : (size_t)(p->zto - p->zoff);
	bool last = p->zoff + len == p->zto;

	/* The last one synced: the size and allocation of all of them reach the disk. */
	ring_write(&w->ring, &p->zio, p->zfd, persist_zeros, len, p->zoff, last);
}

static void persist_zero_done(struct worker *w)
{
	struct persist *p = w->ps;

	if (p->zio.pending)
		return;
	if (p->zres == 0 && p->zoff < p->zto) {
		persist_zero_next(w);
		return;
	}
	p->zeroing = false;
	if (p->zfd != p->fd)
		return; /* a segment left behind meanwhile */
	if (p->zres == 0) {
		p->zero_end = p->zto;
		return;
	}
	/* A full disk, say: what was written is harmless (zeros are a clean end), and the
	 * commits extend the file themselves, as without dio. */
	p->zero_stopped = true;
	if (log_enabled(&w->log, LOG_T_DEBUG))
		log_msg(&w->log, LOG_T_DEBUG,
		        "Persistence: worker %u stops writing zeros ahead in this segment: %s.",
		        w->index, strerror(-p->zres));
}

static void persist_on_zero(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct persist *p = container_of(io, struct persist, zio);

	(void)r;
	if (cqe->res <= 0 && p->zres == 0)
		p->zres = cqe->res < 0 ? cqe->res : -ENOSPC;
	else if (cqe->res > 0)
		p->zoff += (uint64_t)cqe->res;
	persist_zero_done(p->w);
}

uint64_t persist_zero_ahead(uint64_t grown, unsigned align)
{
	uint64_t a = grown < PERSIST_ZERO_MIN   ? PERSIST_ZERO_MIN
	             : grown > PERSIST_ZERO_MAX ? PERSIST_ZERO_MAX
	                                        : grown;

	return align_up(a, align);
}

/* Starts the next zeros once the appends come within half the distance of the file's end. */
static void persist_zero_tick(struct worker *w)
{
	struct persist *p = w->ps;
	uint64_t ahead;

	if (!p->dio || p->zeroing || p->zero_stopped || w->stopping || p->failing)
		return;
	ahead = persist_zero_ahead(p->off - p->seg_first, p->dio);
	if (p->off + ahead / 2 <= p->zero_end)
		return;
	p->zeroing = true;
	p->zfd = p->fd;
	p->zres = 0;
	p->zfrom = p->zoff = align_up(p->zero_end > p->off ? p->zero_end : p->off, p->dio);
	p->zto = align_up(p->off, p->dio) + ahead;
	if (p->zto <= p->zfrom)
		p->zto = p->zfrom + ahead / 2;
	persist_zero_next(w);
}

/* Whether the filling commit may be sealed: its write must stay clear of zeros in flight. */
static bool persist_clear_of_zeros(const struct persist *p)
{
	/* (The seal adds a commit record and origin marks: a few hundred bytes.) */
	return !p->zeroing || p->zfd != p->fd ||
	       align_up(p->off + fill_slot((struct persist *)p)->buf.len, p->dio) + (1u << 20) <=
	               p->zfrom;
}

void persist_batch_end(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	if (atomic_load_explicit(&p->cstate, memory_order_relaxed) == PC_CREATED)
		persist_compact_switch(w);
	else if (p->since_compact)
		persist_compact_poll(w);
	persist_zero_tick(w);
	if (!p->failing && p->inflight < p->max_inflight && persist_clear_of_zeros(p)) {
		bool acks = false;

		if (w->nworkers > 1 && p->sync)
			acks = memcmp(p->in_handled, p->in_acked, w->nworkers * sizeof(uint64_t)) !=
			       0;
		if (fill_slot(p)->buf.len || p->fill_list || p->remote_in_fill ||
		    p->relay_in_fill || acks || p->stamped || p->origin_dirty)
			persist_seal(w);
	}
	if (p->fq_len)
		persist_full_progress(w);
	if (p->tok_len)
		persist_release(w);
}
unsigned persist_dio_open(int fd, uint64_t off, uint64_t *start, uint64_t *size)
{
	unsigned a = store_dio_align(fd);
	struct stat sb;
	int fl;

	if (a && a <= PERSIST_DIO_MAX && store_seg_pad(fd, off, a, start) == 0 &&
	    fstat(fd, &sb) == 0) {
		*size = (uint64_t)sb.st_size;
		/* Pages cached by recovery's reads would turn direct writes into queued ones. */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		return a;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_DIRECT))
		(void)fcntl(fd, F_SETFL, fl & ~O_DIRECT);
	return 0;
}

void persist_set_dio(struct persist *p, unsigned dio)
{
	p->dio = dio;
	p->max_inflight = dio ? PERSIST_INFLIGHT_DIO : PERSIST_INFLIGHT;
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
	p->sync = b->cfg.persistence_sync;
	p->seq = last->seq;
	p->base_seq = own->segs[0].seq;
	p->off = last->len;
	p->seg_bytes = last->len;
	for (unsigned i = 0; i < own->nsegs; i++)
		p->base_bytes += i == 0 ? own->segs[i].len : 0;
	p->new_fd = -1;
	p->old_fd = -1;
	p->out_queued = calloc(n, sizeof(uint64_t));
	p->in_handled = calloc(n, sizeof(uint64_t));
	p->in_acked = calloc(n, sizeof(uint64_t));
	p->full_acked = calloc(n, sizeof(uint64_t));
	p->sess = calloc(n, sizeof(*p->sess));
	p->ret = w->index == 0 ? p->sess : calloc(n, sizeof(*p->ret));
	if (!p->out_queued || !p->in_handled || !p->in_acked || !p->full_acked || !p->sess ||
	    !p->ret)
		return ST_ERR_NOMEM;
	for (unsigned i = 0; i < PERSIST_SLOTS; i++) {
		struct persist_commit *k = &p->slot[i];

		k->p = p;
		k->wio.fn = persist_on_write;
		k->in_sealed = calloc(n, sizeof(uint64_t));
		if (!k->in_sealed)
			return ST_ERR_NOMEM;
	}
	p->zio.fn = persist_on_zero;
	p->max_inflight = PERSIST_INFLIGHT;
	p->fd = store_dir_open_append(b->store, w->index, p->seq, p->sync);
	if (p->fd < 0) {
		log_msg(&w->log, LOG_T_ERROR, "Persistence: cannot open %s.%u.%016" PRIx64 ": %s.",
		        b->cfg.persistence_file, w->index, p->seq, strerror(-p->fd));
		return ST_ERR_SYS;
	}
	p->dio = persist_dio_open(p->fd, p->off, &p->off, &p->zero_end);
	p->seg_first = p->off;
	persist_set_dio(p, p->dio);
	p->wall_off_ms = wall_now_ms() - w->now_ms;
	p->compact_at_ms = w->now_ms + (uint64_t)b->cfg.autosave_interval * 1000;
	return ST_OK;
}

/*
 * Held output that has not moved for seconds while the disk works is a bug or a stuck peer:
 * what each side of the wait says goes to the log, once per stall.
 */
static void persist_log_stall(struct worker *w)
{
	struct persist *p = w->ps;
	const struct broker_shared *sh = &w->b->shared;
	char deps[512] = "";
	size_t n = 0;

	p->stall_logged = true;
	if (p->tok_len) {
		const struct persist_token *t = &p->tokens[p->tok_head];

		for (unsigned k = 0; k < w->nworkers && n < sizeof(deps) - 64; k++) {
			if (k == w->index)
				continue;
			n += (size_t)snprintf(
			        deps + n, sizeof(deps) - n,
			        " [worker %u: acked %" PRIu64 "/%" PRIu64 ", synced %" PRIu64 "]",
			        k, atomic_load(ack_slot(w, w->index, k)), t->fwd ? t->fwd[k] : 0,
			        atomic_load(&sh->persist_synced[k].v));
		}
	}
	log_msg(&w->log, LOG_T_WARNING,
	        "Persistence: worker %u has held output for %" PRIu64 " ms: sealed %" PRIu64
	        ", synced %" PRIu64 ", released %" PRIu64 ", %u in flight%s, %u waiting for "
	        "other workers (first: commit %" PRIu64 ")%s.",
	        w->index, w->now_ms - p->released_ms, p->sealed, p->synced, p->released,
	        p->inflight, p->failing ? " (failing)" : "", p->tok_len,
	        p->tok_len ? p->tokens[p->tok_head].commit : 0, deps);
}

void persist_housekeeping(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	p->wall_off_ms = wall_now_ms() - w->now_ms;
	if (p->failing && w->now_ms >= p->retry_ms) {
		p->retry_ms = w->now_ms + PERSIST_RETRY_MS;
		persist_retry(w);
	}
	persist_compact_tick(w);
	persist_marks_housekeeping(w);
	/* Something waits (sealed and not released, or marked and not sealed): since when. */
	if (p->sealed == p->released && !p->fill_list) {
		p->released_ms = 0;
		p->stall_logged = false;
	} else if (!p->released_ms) {
		p->released_ms = w->now_ms;
	} else if (w->now_ms - p->released_ms > PERSIST_STALL_MS && !p->stall_logged) {
		persist_log_stall(w);
	}
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
		if (!p->inflight && fill_slot(p)->buf.len == 0 && !p->zeroing)
			break;
		if (!p->failing && p->inflight < p->max_inflight && persist_clear_of_zeros(p) &&
		    (fill_slot(p)->buf.len || p->origin_dirty))
			persist_seal(w);
		else if (p->failing && round % 10 == 9)
			persist_retry(w);
		if (ring_wait_us(&w->ring, 100000) < 0)
			break;
		ring_reap(&w->ring);
	}
	if (log_enabled(&w->log, LOG_T_DEBUG))
		log_msg(&w->log, LOG_T_DEBUG,
		        "Persistence: worker %u appended %" PRIu64 " records, %" PRIu64
		        " bytes in %" PRIu64 " commits (%" PRIu64 " synced), %" PRIu64
		        " compactions, %" PRIu64 " errors, %" PRIu64 " publishes refused.",
		        w->index, p->stats.records, p->stats.bytes, p->stats.commits,
		        p->stats.syncs, p->stats.compactions, p->stats.errors, p->stats.refused);
	if (p->inflight || fill_slot(p)->buf.len)
		log_msg(&w->log, LOG_T_ERROR,
		        "Persistence: %zu bytes of records could not be written at shutdown (%s).",
		        persist_pending_bytes(p), p->failing ? strerror(-p->last_err) : "timeout");
}
void persist_fini(struct worker *w)
{
	struct persist *p = w->ps;

	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	if (p->old_fd >= 0)
		close(p->old_fd);
	store_buf_free(&p->snap);
	persist_marks_fini(p);
	for (unsigned i = 0; i < PERSIST_SLOTS; i++) {
		store_buf_free(&p->slot[i].buf);
		free(p->slot[i].in_sealed);
		free(p->slot[i].relay_fwd);
	}
	while (p->fq_len) {
		free(p->fullq[p->fq_head].handled);
		free(p->fullq[p->fq_head].fwd);
		p->fq_head = (p->fq_head + 1) & (p->fq_cap - 1);
		p->fq_len--;
	}
	free(p->fullq);
	free(p->full_acked);
	while (p->tok_len) {
		free(p->tokens[p->tok_head].fwd);
		p->tok_head = (p->tok_head + 1) & (p->tok_cap - 1);
		p->tok_len--;
	}
	free(p->tokens);
	free(p->out_queued);
	free(p->in_handled);
	free(p->in_acked);
	for (unsigned k = 0; p->sess && k < w->nworkers; k++) {
		ivset_free(&p->sess[k].done);
		if (p->ret && p->ret != p->sess)
			ivset_free(&p->ret[k].done);
	}
	if (p->ret != p->sess)
		free(p->ret);
	free(p->sess);
	free(p);
	w->ps = NULL;
}
