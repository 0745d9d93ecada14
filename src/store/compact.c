/*
 * Rewriting logs as base segments (dir.h): compaction of a chain prefix, and resharding a
 * directory written by a broker with another worker count. Both replay records into a
 * store_state (copies of the live records, nothing more), then stream it out through a .tmp
 * file that is synced before it is renamed into place; only then are the old files removed,
 * so a crash at any point leaves either the old chain or the new base (recovery removes a
 * .tmp and the segments a newer base supersedes). Memory: the state plus one segment read at
 * a time plus a 1 MiB write buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirio.h"
#include "segment.h"

/* Applies every record of data[0 .. len) (a whole segment) to st. */
static int apply_segment(const struct store_dir *d, const char *name, const uint8_t *data,
                         size_t len, uint16_t workers, bool want_base, struct store_state *st,
                         uint64_t *records, char *err, size_t errlen)
{
	struct store_seg seg;
	struct store_rec r;
	int e = store_seg_open(&seg, data, len, workers);

	if (e == 0 && want_base && !(seg.hdr.flags & STORE_FLAG_BASE))
		e = STORE_E_HEADER;
	if (e) {
		sd_err(err, errlen, "%s/%s: %s%s", d->path, name, store_strerror(e),
		       e == STORE_E_HEADER && want_base ? " (not a base segment)" : "");
		return e;
	}
	while (store_seg_next(&seg, &r) > 0) {
		e = store_state_apply(st, &r);
		if (e) {
			sd_err(err, errlen, "%s/%s: %s", d->path, name, store_strerror(e));
			return e == STORE_E_NOMEM ? -ENOMEM : e;
		}
	}
	if (seg.stop) {
		sd_err(err, errlen, "%s/%s: %s at offset %zu", d->path, name,
		       store_strerror(seg.stop), seg.valid_end);
		return seg.stop;
	}
	*records += seg.records;
	return 0;
}

static bool is_base(const uint8_t *data, size_t len)
{
	struct store_header h;
	size_t hl;

	return store_header_decode(data, len, &h, &hl) == 0 && (h.flags & STORE_FLAG_BASE);
}

/* Replays segments first .. last of worker into *stp: a new state (NULL if none could be
 * made), the caller's to free. */
static int compact_read(const struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                        struct store_state **stp, struct store_compact_stats *s, char *err,
                        size_t errlen)
{
	char name[SD_NAME_MAX];
	int e = 0;

	*stp = store_state_new();
	for (uint64_t q = first; *stp && e == 0 && q <= last; q++) {
		uint8_t *data;
		size_t len;

		sd_name(d, name, worker, q, "");
		e = sd_read_all(d, name, &data, &len);
		if (e) {
			sd_err(err, errlen, "%s/%s: %s", d->path, name, strerror(-e));
			break;
		}
		s->bytes_in += len;
		if (q > first && is_base(data, len)) {
			/* A base is a complete state: what came before it is superseded. */
			store_state_free(*stp);
			*stp = store_state_new();
		}
		if (*stp)
			e = apply_segment(d, name, data, len, (uint16_t)d->workers, q == first,
			                  *stp, &s->records_in, err, errlen);
		free(data);
	}
	if (!*stp) {
		sd_err(err, errlen, "compaction: out of memory");
		return -ENOMEM;
	}
	return e;
}

static int compact_write(struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                         struct store_state *st, int e, struct store_compact_stats *sp,
                         struct store_compact_stats *stats, char *err, size_t errlen);

int store_dir_compact(struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                      struct store_compact_stats *stats, char *err, size_t errlen)
{
	struct store_compact_stats s = {0};
	struct store_state *st = NULL;
	int e;

	if (worker >= d->workers || first > last) {
		sd_err(err, errlen,
		       "compaction of worker %u segments %" PRIu64 "..%" PRIu64 ": out of range",
		       worker, first, last);
		return -EINVAL;
	}
	e = compact_read(d, worker, first, last, &st, &s, err, errlen);
	return compact_write(d, worker, first, last, st, e, &s, stats, err, errlen);
}

int store_dir_compact_from(struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                           const uint8_t *recs, size_t len, struct store_compact_stats *stats,
                           char *err, size_t errlen)
{
	struct store_compact_stats s = {.bytes_in = len};
	struct store_state *st;
	struct store_rec r;
	size_t used;
	int e = 0;

	if (worker >= d->workers || first > last) {
		sd_err(err, errlen,
		       "compaction of worker %u segments %" PRIu64 "..%" PRIu64 ": out of range",
		       worker, first, last);
		return -EINVAL;
	}
	st = store_state_new();
	if (!st) {
		sd_err(err, errlen, "out of memory");
		return STORE_E_NOMEM;
	}
	for (size_t off = 0; e == 0 && off < len; off += used) {
		e = store_rec_decode(recs + off, len - off, &r, &used);
		if (e == 0)
			e = store_state_apply(st, &r);
		s.records_in++;
	}
	if (e)
		sd_err(err, errlen, "a snapshot record: %s", store_strerror(e));
	return compact_write(d, worker, first, last, st, e, &s, stats, err, errlen);
}

/* Writes st (when e is 0) as base segment `last`, then retires first .. last - 1. */
static int compact_write(struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                         struct store_state *st, int e, struct store_compact_stats *sp,
                         struct store_compact_stats *stats, char *err, size_t errlen)
{
	struct store_compact_stats s = *sp;
	char name[SD_NAME_MAX];

	if (e == 0)
		e = sd_write_tmp(d, worker, (uint16_t)d->workers, last, STORE_FLAG_BASE, st, NULL,
		                 NULL, true, NULL, &s.bytes_out, &s.records_out, err, errlen);
	store_state_free(st);
	if (e == 0)
		e = sd_commit(d, worker, last, err, errlen);
	if (e) {
		/* The .tmp may survive a failed rename; nothing else was touched. */
		sd_name(d, name, worker, last, ".tmp");
		unlinkat(d->dfd, name, 0);
		return e;
	}
	/*
	 * From the rename on, the new base is segment `last`: the older segments are superseded
	 * and recovery would remove them even if the steps below do not happen.
	 */
	e = sd_sync_dir(d, err, errlen);
	for (uint64_t q = first; e == 0 && q < last; q++) {
		sd_name(d, name, worker, q, "");
		if (unlinkat(d->dfd, name, 0) != 0 && errno != ENOENT) {
			e = -errno;
			sd_err(err, errlen, "%s/%s: unlink: %s", d->path, name, strerror(-e));
		}
	}
	if (e == 0)
		e = sd_sync_dir(d, err, errlen);
	if (stats)
		*stats = s;
	return e;
}

/* Replays every old worker's chain into st; fills *maxseq with the highest seq seen. */
static int reshard_read(struct store_dir *d, struct log *lg, struct sd_file *files, unsigned nfiles,
                        struct store_state *st, uint64_t *maxseq, char *err, size_t errlen)
{
	uint16_t old = files[0].workers;
	uint64_t records = 0;
	int e = 0;

	*maxseq = 0;
	for (unsigned i = 0; i < nfiles; i++)
		if (files[i].seq > *maxseq)
			*maxseq = files[i].seq;
	for (unsigned w = 0; e == 0 && w < old; w++) {
		unsigned first, n = sd_files_of(files, nfiles, w, &first);
		struct store_chain c;
		char name[SD_NAME_MAX];

		if (n == 0) {
			sd_log(lg, LOG_T_WARNING,
			       "Warning: resharding: worker %u's log (of %u) was missing from %s: "
			       "its "
			       "sessions are lost",
			       w, old, d->path);
			continue;
		}
		e = sd_chain_recover(d, lg, w, old, files + first, n, &c, err, errlen);
		if (e)
			break;
		for (unsigned k = 0; e == 0 && k < c.nsegs; k++) {
			sd_name(d, name, w, c.segs[k].seq, "");
			e = apply_segment(d, name, c.segs[k].data, c.segs[k].len, old, false, st,
			                  &records, err, errlen);
		}
		/* What is left of the old chain: the files to remove once the new logs are in. */
		for (unsigned k = 0; e == 0 && k < n; k++) {
			bool kept = false;

			for (unsigned j = 0; j < c.nsegs; j++)
				kept |= c.segs[j].seq == files[first + k].seq;
			if (!kept)
				files[first + k].workers = 0; /* gone: unlinked or moved aside */
		}
		store_chains_free(&c, 1);
	}
	return e;
}

/* Writes and syncs one base .tmp per new worker; on failure none is left. */
static int reshard_write(const struct store_dir *d, const struct store_state *st,
                         store_home_fn home, uint64_t seq, uint64_t *bytes, uint64_t *records,
                         char *err, size_t errlen)
{
	char name[SD_NAME_MAX];
	unsigned w;
	int e = 0;

	for (w = 0; e == 0 && w < d->workers; w++) {
		struct sd_home h = {.home = home, .n = d->workers, .w = w};
		uint64_t b = 0, r = 0;

		e = sd_write_tmp(d, w, (uint16_t)d->workers, seq, STORE_FLAG_BASE, st,
		                 home ? sd_keep_home : NULL, &h, w == 0, NULL, &b, &r, err, errlen);
		*bytes += b;
		*records += r;
	}
	for (unsigned k = 0; e && k < w; k++) {
		sd_name(d, name, k, seq, ".tmp");
		unlinkat(d->dfd, name, 0);
	}
	return e;
}

/* Removes the old files still listed (workers != 0), then syncs the directory. */
static int remove_old(const struct store_dir *d, const struct sd_file *files, unsigned nfiles,
                      char *err, size_t errlen)
{
	char name[SD_NAME_MAX];

	for (unsigned i = 0; i < nfiles; i++) {
		if (files[i].workers == 0)
			continue;
		sd_name(d, name, files[i].worker, files[i].seq, "");
		if (unlinkat(d->dfd, name, 0) != 0 && errno != ENOENT) {
			int e = errno;

			sd_err(err, errlen, "%s/%s: unlink: %s", d->path, name, strerror(e));
			return -e;
		}
	}
	return sd_sync_dir(d, err, errlen);
}

int sd_reshard(struct store_dir *d, store_home_fn home, struct log *lg, struct sd_file *files,
               unsigned nfiles, struct store_chain *chains, char *err, size_t errlen)
{
	unsigned old = files[0].workers, w;
	uint64_t seq = 0, bytes = 0, records = 0;
	struct store_state *st;
	int e;

	if (!home && d->workers > 1) {
		sd_err(err, errlen, "%s: resharding from %u workers needs the home function",
		       d->path, old);
		return -EINVAL;
	}
	st = store_state_new();
	if (!st) {
		sd_err(err, errlen, "resharding: out of memory");
		return -ENOMEM;
	}
	e = reshard_read(d, lg, files, nfiles, st, &seq, err, errlen);
	/* Above every old segment's number: no new name can be an old one's. */
	seq++;
	if (e == 0)
		e = reshard_write(d, st, home, seq, &bytes, &records, err, errlen);
	/*
	 * The renames, then the directory synced, then the old files removed. A crash in between
	 * leaves both counts; the new bases' segment number, above every old one, tells recovery
	 * which set is whole (finish_reshard in recover.c).
	 */
	for (w = 0; e == 0 && w < d->workers; w++)
		e = sd_commit(d, w, seq, err, errlen);
	if (e == 0)
		e = sd_sync_dir(d, err, errlen);
	if (e == 0)
		e = remove_old(d, files, nfiles, err, errlen);
	if (e == 0)
		sd_log(lg, LOG_T_NOTICE,
		       "Resharded the persistent log in %s from %u to %u workers: %" PRIu64
		       " sessions, %" PRIu64 " retained messages, %" PRIu64 " records, %" PRIu64
		       " bytes, in base segments %016" PRIx64,
		       d->path, old, d->workers, store_state_sessions(st), store_state_retained(st),
		       records, bytes, seq);
	store_state_free(st);
	for (w = 0; e == 0 && w < d->workers; w++) {
		struct sd_file f = {.worker = w,
		                    .seq = seq,
		                    .workers = (uint16_t)d->workers,
		                    .flags = STORE_FLAG_BASE};

		e = sd_chain_recover(d, lg, w, (uint16_t)d->workers, &f, 1, &chains[w], err,
		                     errlen);
	}
	if (e)
		store_chains_free(chains, d->workers);
	return e;
}
