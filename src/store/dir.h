/*
 * The persistence directory (issue 10): the files of every worker's log, as the broker finds
 * them at start-up and as compaction rewrites them. Blocking file calls live here and only
 * here: the broker calls these before its workers loop (start-up) or from a compaction
 * thread, never from a worker's loop (whose appends go through its ring).
 *
 * Files, in persistence_location:
 *   NAME.lock            flock()ed by the broker using the directory: a second broker on the
 *                        same directory is refused, never two writers on one log
 *   NAME.<w>.<seq>       segment <seq> (16 lower-case hex digits) of worker <w>'s log (decimal)
 *   NAME.<w>.<seq>.tmp   a segment being written (a compaction's or resharding's base, or a
 *                        new segment before its header is synced): removed at start-up
 *   NAME.<w>.<seq>.dropped-<unix time>
 *                        a segment that followed a damaged or missing one, moved aside (never
 *                        deleted: it may hold what an operator wants back)
 * A worker's log is a chain: a base segment (header flag STORE_FLAG_BASE: a complete state,
 * everything before it is superseded), then segments seq + 1, seq + 2, ... each continuing the
 * one before. The broker appends to the chain's last segment. A file named NAME itself
 * (Mosquitto's mosquitto.db) is never read (a warning says Starling does not import it);
 * other files in the directory are left alone.
 *
 * State: what the records of a chain leave, applying them in order (the rules of the
 * kernel-notes/persistence.md table): retained messages by topic, sessions by client id with
 * their subscriptions by filter, queued messages by msg_id, in-flight packet ids, inbound QoS 2
 * packet ids and will. store_state holds it as the records themselves (copies), which is what
 * compaction writes back out and what resharding routes.
 *
 * Built in: dir.c (open, lock, file helpers, new segments), recover.c (start-up), compact.c
 * (compaction, resharding), state.c (store_state); dirio.h is their private interface.
 */
#ifndef STARLING_STORE_DIR_H
#define STARLING_STORE_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "record.h"

/* The shard function: the worker (0 .. n - 1) that is home to a client id (xw_home). */
typedef unsigned (*store_home_fn)(unsigned n, const uint8_t *client, size_t len);

struct store_dir {
	int dfd;     /* the directory (O_DIRECTORY | O_PATH is not enough: fsync needs O_RDONLY) */
	int lock_fd; /* NAME.lock, held with flock(LOCK_EX) */
	char *path;  /* persistence_location as configured (for messages), owned */
	char *name;  /* persistence_file, owned */
	unsigned workers; /* the broker's worker count */
};

/* One segment of a chain, read into memory at start-up. */
struct store_loaded {
	uint64_t seq;  /* its sequence number */
	uint8_t *data; /* the file's valid prefix (header included), owned */
	size_t len;    /* bytes */
};

/* A worker's chain as recovered: base first. The last segment is where appends go. */
struct store_chain {
	struct store_loaded *segs; /* owned array */
	unsigned nsegs;            /* >= 1 after store_dir_recover */
};

/*
 * Opens (creating it if missing, one level, mode 0700) the directory `path` and takes
 * NAME.lock. Errors: a negative errno, with err saying what and where (not a directory, no
 * permission, another process holds the lock).
 */
int store_dir_open(struct store_dir *d, const char *path, const char *name, unsigned workers,
                   char *err, size_t errlen);
void store_dir_close(struct store_dir *d);

/*
 * Start-up, one thread, before the workers run. Reads every worker's chain (plain read(2) of
 * whole files), checks every header (its worker and segment must be its file name's), removes
 * .tmp files and the segments older than a worker's newest base (a compaction stopped after
 * its rename), cuts a torn or corrupt tail at the last valid record (ftruncate + fsync) and
 * logs at warning level the file, the bytes and the records dropped; a segment after a
 * damaged or missing one is moved aside (.dropped-*) and logged at error level. Files all of
 * another worker count are resharded: every session's records go to home(workers, client)'s
 * log, retained messages to worker 0's, each new log written as a base numbered above every
 * old segment; the old files are removed only once the new ones are synced (a resharding cut
 * short is finished, or redone, at the next start). home may be NULL only for 1 worker. A
 * worker with no file gets a new empty base segment (seq 1), logged at warning level when
 * other workers' logs exist (its log went missing). lg may be NULL (nothing logged). On
 * success chains[0 .. workers) hold each worker's chain (free with store_chains_free).
 * Errors (a negative errno or store_err, err saying which file and why; chains then hold
 * nothing): an unreadable file or directory, a file with our name that is not a Starling log
 * (STORE_E_NOT_LOG), a damaged header (STORE_E_HEADER), a newer format (STORE_E_NEWER),
 * segments without a base (-ENOENT), two worker counts in one directory (STORE_E_FOREIGN).
 * Never a silent empty start.
 */
int store_dir_recover(struct store_dir *d, store_home_fn home, struct log *lg,
                      struct store_chain *chains, char *err, size_t errlen);
void store_chains_free(struct store_chain *chains, unsigned n);

/*
 * Opens segment `seq` of `worker` for the worker's appends: O_RDWR | O_CLOEXEC (writes go at
 * explicit offsets through the ring; the last partial block is read back from it), with
 * O_DIRECT when `direct` and the file system takes it (store_dio_align then says so). A
 * negative errno on failure.
 */
int store_dir_open_append(struct store_dir *d, unsigned worker, uint64_t seq, bool direct);

/*
 * The alignment (file offset, length and memory address) of direct writes to fd, a power of
 * two of at least 4096; 0 if fd is not open with O_DIRECT or its file system does not say.
 */
unsigned store_dio_align(int fd);

/*
 * Readies segment fd, whose valid bytes end at off, for commits that start on `align`
 * boundaries (direct writes): sets STORE_FLAG_PADDED in its header if it lacks it (the
 * header's block rewritten in place), and if off is not on a boundary writes an empty commit
 * padded up to the next one (STORE_REC_PAD then STORE_REC_COMMIT), then fdatasyncs. *start:
 * where the next commit goes. Blocking (start-up, the compaction thread); fd may be O_DIRECT
 * (every transfer is whole aligned blocks from aligned memory). 0 or a negative errno.
 */
int store_seg_pad(int fd, uint64_t off, unsigned align, uint64_t *start);

/*
 * Writes zeros over fd's bytes [from, to) and fdatasyncs it (blocking: start-up and the
 * compaction thread). Space written ahead of the appends makes a later commit an overwrite
 * of allocated blocks: its fdatasync writes no size and no allocation. 0 or a negative errno.
 */
int store_zero_ahead(int fd, uint64_t from, uint64_t to);

/*
 * Creates segment `seq` of `worker` (header without STORE_FLAG_BASE, then zeros up to byte
 * `zeros` when it is larger, as far as the disk takes them): written as .tmp, synced, renamed
 * into place, directory synced, so the name never holds a partial header. Returns its
 * descriptor opened as store_dir_open_append(direct) does (a negative errno on failure,
 * -EEXIST if the segment exists: nothing is left behind). For compaction: the worker
 * switches its appends to it.
 */
int store_dir_create_segment(struct store_dir *d, unsigned worker, uint64_t seq, bool direct,
                             uint64_t zeros, char *err, size_t errlen);

struct store_compact_stats {
	uint64_t bytes_in;    /* bytes of the segments read */
	uint64_t records_in;  /* records read */
	uint64_t bytes_out;   /* bytes of the base written (its file size) */
	uint64_t records_out; /* records written */
};

/*
 * Compaction (a thread of its own; blocking): replaces segments first .. last of `worker`
 * (a chain prefix: first is its base) by one base segment `last` holding their state: written
 * to NAME.<w>.<last>.tmp, synced, renamed over segment `last`, directory synced, then
 * segments first .. last - 1 unlinked. Segments after `last` are untouched (the worker is
 * appending to one of them). On failure (ENOSPC, EIO; a segment first that is not a base:
 * STORE_E_HEADER; a damaged record in one: its store_err) nothing changes but the .tmp, which
 * is removed; returns a negative errno or store_err, err saying why. Memory: the state, one
 * segment at a time, a 1 MiB write buffer.
 */
int store_dir_compact(struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                      struct store_compact_stats *st, char *err, size_t errlen);

/*
 * The same, from the live state given as records (recs[0..len), a snapshot the broker
 * encoded from memory at the switch to segment last + 1) instead of segments first .. last:
 * no segment is read. The snapshot must be of a moment after every record of segments up to
 * `last` and before every record of the later ones (which replay applies on top of it).
 */
int store_dir_compact_from(struct store_dir *d, unsigned worker, uint64_t first, uint64_t last,
                           const uint8_t *recs, size_t len, struct store_compact_stats *st,
                           char *err, size_t errlen);

/* The live state of a chain (compaction, resharding, tests). */
struct store_state;

struct store_state *store_state_new(void);
void store_state_free(struct store_state *st);
/*
 * Applies one record (r borrowed; what it keeps is copied), by the rules of
 * kernel-notes/persistence.md: a record about a client without a session (no session-put
 * yet) is an orphan, counted and ignored. 0, STORE_E_FIELD (a record the codec would not
 * encode, or an unknown type) or STORE_E_NOMEM.
 */
int store_state_apply(struct store_state *st, const struct store_rec *r);
/*
 * Encodes the state as records appended to b: per session its session-put, will, subscriptions,
 * queued messages (msg_id order, which is the order the broker queued them), in-flight ids
 * and inbound ids (packet id order); then the retained messages; then (keep NULL: origin
 * numbers name workers by index, which a resharding changes) the origin intervals and the
 * share-marks. keep(ctx, client) selects sessions (NULL: all); retained: whether to emit
 * them. 0 or STORE_E_NOMEM.
 */
int store_state_encode(const struct store_state *st, struct store_buf *b,
                       bool (*keep)(void *ctx, const uint8_t *client, size_t len), void *ctx,
                       bool retained);
/*
 * As store_state_encode, streaming: whenever b holds 1 MiB or more, and once at the end,
 * flush(fctx, b) takes b's bytes (and sets b->len to 0), so the output never sits whole in
 * memory; flush returns 0 or a negative errno, which ends the walk and is returned. flush
 * NULL: everything stays in b. *records (if not NULL) gets the records encoded.
 */
int store_state_write(const struct store_state *st, struct store_buf *b,
                      bool (*keep)(void *ctx, const uint8_t *client, size_t len), void *ctx,
                      bool retained, int (*flush)(void *fctx, struct store_buf *b), void *fctx,
                      uint64_t *records);
/* Counts, for tests and logs. */
uint64_t store_state_sessions(const struct store_state *st);
uint64_t store_state_retained(const struct store_state *st);
uint64_t store_state_orphans(const struct store_state *st);
uint64_t store_state_marks(const struct store_state *st);

#endif
