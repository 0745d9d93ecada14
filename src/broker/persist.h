/*
 * A worker's side of persistence (issue 10; kernel-notes/persistence.md): the records its
 * state changes make, the group commit that puts them on disk from its own ring, and the
 * acknowledgements held until they are there.
 *
 * Who writes what: a session's records go to its home worker's log (the session lives there);
 * retained messages go to worker 0's log, in the order worker 0's replica applies them (every
 * retained write reaches every replica), so one log holds one linear history of the store.
 *
 * Group commit: records are encoded into the filling buffer as handlers run; at the end of a
 * loop iteration, if no commit is in flight, the buffer is sealed as commit N and handed to
 * the ring as one write with RWF_DSYNC (persistence_sync always: the data is on disk when it
 * completes, as after an fdatasync) or a plain write (never). Records made meanwhile fill
 * another buffer, the next commit.
 *
 * Holds (persistence_sync always): a connection whose output depends on records (a PUBACK or
 * PUBREC to a publisher, a SUBACK, a QoS 1/2 PUBLISH or PUBREL to a subscriber of a durable
 * session) is held: at the seal of commit N its output so far is marked as needing N, and the
 * mark's bytes leave only once N is released. Output appended later waits for a later commit;
 * what came before the mark is never held back by records made after it.
 *
 * Several workers: a QoS 1/2 publish forwarded to other workers may make records there (a
 * queued message for a session homed elsewhere, the retained store on worker 0). Each worker
 * counts the channel entries it queued for each other worker and the entries it handled from
 * each; once its own commit covering what it handled is on disk, it publishes the count
 * (broker_shared.persist_acks[from * n + to]). A commit of the publisher's worker is released
 * when its own records are on disk and every other worker acknowledged the entries queued for
 * it up to the seal. Acknowledgements follow local syncs only, never other workers' releases,
 * so no cycle of waits can form.
 *
 * Shared groups add a hop: the group's worker G hands a message it got from A to a member's
 * worker C. So each worker publishes two counts per source: the plain one above (its own
 * sync), and a full one (broker_shared.persist_full), which for a commit that relayed QoS 1/2
 * shared deliveries also waits until every worker it relayed to published a plain count
 * covering them. A publisher's commit waits for full counts; a full count waits for plain
 * ones only, which wait for nothing: still no cycle.
 *
 * The other way round: a QoS 2 publish from a durable session records its packet id on the
 * publisher's worker A (the duplicate check across a restart) and its deliveries on others.
 * Both logs must agree after a crash, so (kernel-notes/persistence.md, "Several workers"):
 * - the forwarded entry carries A's filling commit number, and the receiving worker applies
 *   it (and everything after it from A) only once that commit is on disk
 *   (broker_shared.persist_synced): a receiver never holds a message A may have lost;
 * - A numbers the message (its origin) and keeps the number with the packet id; a receiver
 *   remembers, per source worker, the highest number it applied (the mark, in its log with
 *   each commit that raised it). A PUBLISH resent for a packet id A holds goes out again with
 *   its number, and every receiver whose mark covers it ignores it: one that lost the message
 *   in the crash delivers it, one that has it (or delivered it already) does not.
 * Each commit ends with a commit record and recovery keeps whole commits only, so a mark and
 * the records it covers are on disk together or not at all.
 */
#ifndef STARLING_PERSIST_H
#define STARLING_PERSIST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/hmap.h"
#include "base/ivset.h"
#include "io/ring.h"
#include "starling/codec.h"
#include "store/dir.h"
#include "store/record.h"

struct worker;
struct conn;
struct session;
struct sess_delivery;
struct msg;
struct share_group;
struct store_chain;

#define PERSIST_SLOTS        5 /* buffers: one filling, the others' commits in flight */
#define PERSIST_INFLIGHT     2 /* commits in flight at once, buffered */
#define PERSIST_INFLIGHT_DIO 4 /* ... direct */

/*
 * Direct writes (persistence_sync always, a file system with O_DIRECT and a segment with
 * STORE_FLAG_PADDED): each commit ends with a pad record and its commit record on a block
 * boundary, so the next one starts on one and no two commits share a block. A commit then
 * goes from the ring to the device with RWF_DSYNC and nothing else (no kernel thread, no page
 * cache, no write of an older commit's block again), and several can be in flight: their
 * flushes overlap. The segment is kept zeroed ahead of the appends so that a commit
 * overwrites allocated blocks and its sync writes no metadata (kernel-notes/persistence.md,
 * "Direct writes"): as far ahead as the segment has grown since this run began appending to
 * it, between PERSIST_ZERO_MIN and PERSIST_ZERO_MAX, topped up once half of that is left. An
 * idle broker so keeps a small file (start-up reads it whole) and a busy one 16 MiB ahead.
 */
#define PERSIST_ZERO_MIN   (64u << 10)
#define PERSIST_ZERO_MAX   (16u << 20)
#define PERSIST_ZERO_CHUNK (1u << 20)  /* bytes per zero write */
#define PERSIST_DIO_MAX    (64u << 10) /* larger alignments: buffered writes */

struct persist;

/*
 * The origin numbers a worker handled from one source worker: those of earlier runs (from its
 * log), and in this run, the source's new numbers (above `start`, the source's counter when the
 * run began), which arrive in order, so one number says how far; resends of older numbers come
 * in any order and go into `done` one by one.
 */
struct persist_origins {
	struct ivset done; /* numbers handled in earlier runs, and resends handled in this one */
	uint64_t start;    /* the source's counter when this run began */
	uint64_t wm;       /* highest new number handled in this run (start: none) */
};

/* One commit: its buffer, where it goes, how its write and sync went. */
struct persist_commit {
	struct ring_io wio;   /* its write */
	struct persist *p;    /* owner */
	struct store_buf buf; /* the records */
	uint64_t n;           /* commit number while sealed (in flight or done), 0: free */
	int fd;               /* segment it is written to */
	uint64_t off;         /* at this offset */
	size_t done;          /* bytes of wdata written so far */
	int write_res;        /* the write's error (-errno), 0 if none */
	bool failed;          /* the last attempt failed: retried from housekeeping */
	bool done_ok;         /* written and synced, waiting for older commits */
	uint64_t *in_sealed;  /* in_handled at its seal (nworkers) */
	uint64_t *relay_fwd;  /* out_queued at its seal if it relayed shared deliveries, or NULL */
};

#define PERSIST_STALL_MS 5000 /* held output not released for this long is logged */

/* Past this many bytes waiting for the disk, QoS 1/2 publishes are refused (0x97). */
#define PERSIST_PENDING_MAX (64u << 20)

/* A sealed commit whose release waits for other workers. */
struct persist_token {
	uint64_t commit; /* its number */
	uint64_t *fwd;   /* entries queued for each worker at its seal (nworkers), or NULL */
};

/* A full acknowledgement waiting for what its commit relayed (persist_full_progress). */
struct persist_fullack {
	uint64_t *handled; /* in_sealed of the commit (nworkers) */
	uint64_t *fwd;     /* out_queued at its seal, or NULL: nothing relayed */
};

struct persist_stats {
	uint64_t commits;     /* commits whose write (and sync) completed */
	uint64_t syncs;       /* synced writes (RWF_DSYNC: an fdatasync each) completed */
	uint64_t records;     /* records appended */
	uint64_t bytes;       /* bytes appended */
	uint64_t errors;      /* writes or syncs that failed (each retried) */
	uint64_t refused;     /* QoS 1/2 publishes refused because the log could not keep up */
	uint64_t compactions; /* compactions completed */
};

enum persist_compact_state {
	PC_IDLE = 0,       /* none running */
	PC_CREATING = 1,   /* the thread creates the next segment */
	PC_CREATED = 2,    /* ... done (new_fd set, or error): the worker switches to it */
	PC_COMPACTING = 3, /* the thread rewrites the old segments as a base */
	PC_DONE = 4,       /* ... done: the worker joins the thread */
	PC_SWITCHED = 5,   /* appends go to the new segment; the old one's commits finish */
};

struct persist {
	struct worker *w;      /* owner */
	int fd;                /* the segment appended to */
	int old_fd;            /* the one before a switch, until its commits are done */
	uint64_t seq;          /* its sequence number */
	uint64_t base_seq;     /* sequence number of the chain's base */
	uint64_t off;          /* file offset where the next commit goes */
	bool sync;             /* persistence_sync always */
	unsigned dio;          /* direct writes: their alignment (store_dio_align); 0: buffered */
	unsigned max_inflight; /* commits in flight at once (PERSIST_INFLIGHT, _DIO) */

	/* Zeros written ahead (dio): the segment's size, and the write in flight if any. */
	uint64_t zero_end;         /* file size of the segment appended to */
	uint64_t seg_first;        /* where this run's first commit to that segment went */
	bool zeroing;              /* zero writes in flight, on zfd over [zfrom, zto) */
	bool zero_stopped;         /* a zero write failed: none more in this segment */
	int zfd;                   /* the segment they extend */
	uint64_t zfrom, zoff, zto; /* first byte, next write, end */
	int zres;                  /* first error of the run (-errno) */
	struct ring_io zio;        /* the zero write in flight */
	struct persist_commit slot[PERSIST_SLOTS]; /* filling, in flight, done out of order */
	unsigned fill;                             /* index of the filling one */
	unsigned inflight;                         /* sealed and not yet retired */
	bool failing;         /* a write or sync failed: retried every PERSIST_RETRY_MS */
	uint64_t retry_ms;    /* monotonic time of the next attempt */
	int last_err;         /* errno of the last failure (logged once per episode) */
	uint64_t sealed;      /* last commit number sealed */
	uint64_t synced;      /* last commit number on disk, with all before it */
	uint64_t released;    /* last commit whose held output may leave */
	uint64_t released_ms; /* since when output waits, seen from housekeeping; 0: none */
	bool stall_logged;    /* this stall was logged */
	bool remote_in_fill;  /* the filling commit has publishes forwarded elsewhere */
	bool relay_in_fill;   /* ... or relayed a shared group's QoS 1/2 delivery elsewhere */
	bool pub_remote;      /* the packet being handled was forwarded (conn.c reads it) */

	/* Connections whose output waits: `fill` marked during the filling commit, `wait`
	 * marked at a seal and not yet released (intrusive lists through struct conn). */
	struct conn *fill_list;
	struct conn *wait_list;

	/* Several workers. */
	uint64_t *out_queued; /* per worker: channel entries queued for it (xw.c counts) */
	uint64_t *in_handled; /* per worker: channel entries handled from it (xw.c counts) */
	uint64_t *in_acked;   /* what was last published for each */
	bool stamped;         /* an entry carries the filling commit's number: seal it */
	bool wait_tok;        /* a token waits for other workers */
	bool wait_full;       /* a full acknowledgement waits for other workers */
	uint64_t *full_acked; /* what was last published as full acknowledgements for each */
	struct persist_fullack *fullq; /* FIFO of full acknowledgements not yet published */
	uint32_t fq_head, fq_len, fq_cap;
	bool parked; /* the channel drain waits for another worker's sync */

	/* Origins (store/record.h): QoS 2 from durable sessions across workers. */
	uint64_t origin_next;         /* the last origin number this worker gave out */
	struct persist_origins *sess; /* per source worker: handled for the sessions here */
	struct persist_origins *ret;  /* ... for the retained replica (worker 0: sess itself) */
	uint64_t origin_dirty;        /* bit per worker: its interval (own: the counter) grew */
	/* Share-marks (store/record.h, persist_marks.c): the copies of shared groups' messages
	 * with an origin stored in sessions here (for snapshots and the start-up report), and
	 * on a group's worker the (source, origin, group) copies its groups are known to have. */
	struct persist_mark *marks;
	uint32_t nmarks, marks_cap;
	struct hmap seen;             /* struct persist_seen by (source, origin, key hash) */
	uint64_t marks_scan_ms;       /* next origin_low scan and pruning */
	struct persist_token *tokens; /* FIFO of commits waiting for acknowledgements */
	uint32_t tok_head, tok_len, tok_cap;
	bool waiting; /* this worker asked others to ring it (persist_waiting) */

	/* Compaction. */
	uint64_t since_compact; /* seconds (ms deadline) or records, by autosave_on_changes */
	uint64_t compact_at_ms; /* next periodic compaction (autosave_interval seconds) */
	uint64_t seg_bytes;     /* bytes in the segment appended to */
	uint64_t base_bytes;    /* bytes of the last base written */
	_Atomic int cstate;     /* enum persist_compact_state, written by both sides */
	pthread_t thread;       /* the compaction thread while cstate != PC_IDLE */
	int new_fd;             /* PC_CREATED: the new segment, or -errno */
	unsigned new_dio;       /* ... its store_dio_align */
	uint64_t new_size;      /* ... its size (header and zeros) */
	uint64_t new_off;       /* ... where its first commit goes (after its first pad) */
	uint64_t new_grown;     /* bytes the segment before it grew this run (zeros ahead) */
	uint64_t new_seq;       /* its sequence number */
	int compact_err;        /* PC_DONE: 0 or -errno */
	bool thread_live;       /* thread started and not joined */
	struct store_compact_stats compact_stats; /* PC_DONE: what it did */
	char compact_msg[256];                    /* PC_CREATED/PC_DONE: what failed */

	struct store_buf *snap_to;  /* persist_snapshot: records go here instead, unheld */
	size_t snap_max;            /* ... at most this many bytes */
	bool snap_over;             /* ... which it went past (or ran out of memory) */
	bool snap_no_auth;          /* ... without session-auth records (a cluster hand-over) */
	struct store_buf snap;      /* the snapshot handed to the compaction thread */
	bool use_snap;              /* the thread compacts from snap, not from the files */
	uint64_t wall_off_ms;       /* wall clock minus the worker's monotonic clock, in ms */
	struct persist_stats stats; /* counters ($SYS) */
};

/*
 * Direct writes to segment fd (open with O_DIRECT or not), whose valid bytes end at off:
 * readies it (store_seg_pad: *start is where the first commit goes) and says the file's size
 * (*size); returns the alignment (store_dio_align), or 0 with O_DIRECT taken off fd when
 * anything is missing (buffered writes then, *start and *size untouched). Blocking: start-up
 * and the compaction thread.
 */
unsigned persist_dio_open(int fd, uint64_t off, uint64_t *start, uint64_t *size);
/* How far ahead of the appends a segment that grew `grown` bytes is kept zeroed. */
uint64_t persist_zero_ahead(uint64_t grown, unsigned align);
/* Direct writes (alignment dio) or buffered ones (0), and how many commits fly at once. */
void persist_set_dio(struct persist *p, unsigned dio);

/* Sets up w's writer for its recovered chain (store_dir_recover): ST_OK or an error. */
int persist_init(struct worker *w, const struct store_chain *own);

/*
 * Replays the records of chains into w's state (worker thread, before its loop): w's own
 * chain's sessions; worker 0's chain's retained messages (every worker keeps a replica).
 */
int persist_replay(struct worker *w, const struct store_chain *own, const struct store_chain *w0);

/* At the end of each loop iteration: seal and submit a commit, release what can go. */
void persist_batch_end(struct worker *w);

/* Housekeeping: retries after a failure, starts and finishes compactions. */
void persist_housekeeping(struct worker *w);

/* Compaction (persist_compact.c): started and finished from housekeeping; stop waits for a
 * running one (shutdown). */
void persist_compact_tick(struct worker *w);
/* End of an iteration: starts a compaction that is due by size or by changes (cheap). */
void persist_compact_poll(struct worker *w);
/* End of an iteration: a new segment is ready and no commit is in flight: switch to it. */
void persist_compact_switch(struct worker *w);
void persist_compact_stop(struct worker *w);

/*
 * Encodes w's durable state (its durable sessions; worker 0: the retained messages) into b as
 * the records a base holds. 0, or -1 if it went past max bytes (b then holds a part).
 */
int persist_snapshot(struct worker *w, struct store_buf *b, size_t max);
/* Every record of one session, as a compaction writes them, to its log (s->ps). */
void persist_snap_session(struct session *s);

/*
 * A session for another node of the cluster (cluster_session.c): its records appended to b,
 * persistence on or off. meta_only: the session and its subscriptions; otherwise its will,
 * inbound QoS 2 ids, in-flight and queued messages too, messages past `max` bytes of b left
 * out and counted in *dropped. 0, or -1 (out of memory: b holds part of it).
 */
int persist_export_session(struct worker *w, struct session *s, struct store_buf *b, size_t max,
                           bool meta_only, uint32_t *dropped);
/*
 * The session of client id handed over by another node (records of persist_export_session
 * about that id; others are ignored) made here, offline, and logged if persistence is on.
 * Its subscriptions and messages restored are counted. 0, or -1 if the records were cut
 * (what came before is kept) or no session record came.
 */
int persist_import_session(struct worker *w, const uint8_t *recs, size_t len, const uint8_t *id,
                           size_t idlen, uint64_t *nsubs, uint64_t *nmsgs);

/* At shutdown (worker thread, loop ended): writes and syncs everything still pending. */
void persist_shutdown(struct worker *w);

/* Frees what persist holds (after persist_shutdown). */
void persist_fini(struct worker *w);

/* QoS 1/2 publishes cannot be stored now (a failed write, or too much waiting for the disk). */
bool persist_refusing(const struct worker *w);

/* A connection is going away: takes it off the hold lists. */
void persist_conn_gone(struct worker *w, struct conn *c);

/* Output of c that may leave now: all of it (UINT64_MAX), a prefix, or 0. */
uint64_t persist_sendable(const struct worker *w, const struct conn *c);
/* c sent `n` bytes from the front of its output. */
void persist_sent(struct conn *c, uint64_t n);

/*
 * Hooks, called where the state changes; each appends the record(s) and holds the output of
 * the session's connection (if any) for the commit they go into. No-ops for sessions that are
 * not durable (s->ps NULL) and with persistence off.
 */
/* A connection attached s: it becomes durable (session-put) or stops being so (session-del). */
void persist_session_attach(struct worker *w, struct session *s);
void persist_session_put(struct session *s, uint8_t protocol);
void persist_session_del(struct session *s);
void persist_sub_add(struct session *s, const uint8_t *filter, size_t len, uint64_t data);
void persist_sub_del(struct session *s, const uint8_t *filter, size_t len);
void persist_queue_add(struct session *s, const struct sess_delivery *d);
void persist_queue_del(struct session *s, uint64_t sid);
void persist_inflight_set(struct session *s, uint16_t pid, uint64_t sid, uint8_t stage);
void persist_inflight_clear(struct session *s, uint16_t pid);
/* origin: the message's number (store/record.h), or 0. */
void persist_inbound(struct session *s, uint16_t pid, bool add, uint64_t origin);
void persist_will_set(struct session *s);
void persist_will_clear(struct session *s);
/* Worker 0: a retained write its replica applied (m: the message; NULL or empty: a delete). */
void persist_retain(struct worker *w, struct st_bytes topic, const struct msg *m);

/* The number of the filling commit, for an entry to other workers that depends on it. */
uint64_t persist_stamp(struct worker *w);
/* Whether worker `from`'s commit `commit` is on disk (an entry stamped with it may apply). */
bool persist_synced_reached(const struct worker *w, unsigned from, uint64_t commit);
/* The channel drain waits (or no longer waits) for another worker's sync: ring me. */
void persist_park(struct worker *w, bool on);

/*
 * A new origin number for a QoS 2 message from a durable session that other workers may
 * store, or 0 where none is needed (one worker, persistence off or persistence_sync never).
 */
uint64_t persist_origin_new(struct worker *w);
/*
 * An entry from worker `from` carries origin o: whether the sessions here (*sess) and the
 * retained replica (*ret) have not applied it yet; marks it applied.
 */
void persist_origin_apply(struct worker *w, unsigned from, uint64_t o, bool *sess, bool *ret);
/* Appends the origin intervals that grew (all of them: snapshot) as origin records. */
void persist_origin_marks(struct persist *p, bool all);
/* Once every worker's replay is done: where each source's new numbers start. */
void persist_origin_begin(struct worker *w);
/* Appends an origin record: [lo, hi] from worker `from` handled here. */
void persist_origin_record(struct persist *p, unsigned from, uint64_t lo, uint64_t hi);
/* Ends the filling commit's records: the marks that rose, then a commit record. */
int persist_commit_close(struct persist *p);

/*
 * Share-marks (kernel-notes/persistence.md, "Several workers"): a group's copy of a QoS 2
 * message that carries an origin is stored in a member's session on some worker, while the
 * group lives on its own worker G, which picked the member. A crash may lose the copy and
 * keep G's mark of the origin, or keep the copy and lose G's: so the worker that stores the
 * copy writes a share-mark with it (one commit), tells G at start-up, and G routes a message
 * whose origin predates the restart to a group only if no copy of it is known to the group.
 */
struct persist_mark {
	uint64_t origin; /* origin number */
	uint16_t src;    /* its worker */
	uint16_t klen;   /* bytes of key */
	uint8_t *key;    /* the group's "$share/name/filter", owned */
};
struct persist_seen {
	uint64_t origin;
	uint64_t khash; /* XXH3 of the group's key */
	uint16_t src;
};
/* Appends r to p's filling commit (or the snapshot being taken), holding s's connection. */
void persist_append_rec(struct persist *p, const struct store_rec *r, struct session *s);
/* s (durable) stored a copy of m (with an origin) for group g: the record and the entry. */
void persist_share_mark(struct session *s, const struct msg *m, const struct share_group *g);
/* Replay: a share-mark of w's own log. */
void persist_marks_replayed(struct worker *w, const struct store_rec *r);
/* End of w's replay: every mark to its group's worker (itself included). */
void persist_marks_report(struct worker *w);
/* A report from another worker (xw.c): group key hash kh has origin o of worker src. */
void persist_seen_add(struct worker *w, unsigned src, uint64_t o, uint64_t kh);
/*
 * Routing message m (v's origin o from worker src) to group g here: true if g already has a
 * copy of it (a resend after a restart: skip the group); else records that it now has one.
 * Only origins from before this run are looked up; newer ones are always false.
 */
bool persist_seen_take(struct worker *w, unsigned src, uint64_t o, const struct share_group *g);
/* Whether origin o of worker src predates this run (a resend after a restart). */
bool persist_origin_old(const struct worker *w, unsigned src, uint64_t o);
/* Snapshot: the marks still needed, as records. */
void persist_marks_snapshot(struct persist *p);
/* Housekeeping: publishes this worker's origin_low, forgets marks no resend can need. */
void persist_marks_housekeeping(struct worker *w);
void persist_marks_fini(struct persist *p);

/* A commit in flight writes to fd (compaction waits for the old segment's). */
bool persist_fd_busy(const struct persist *p, int fd);

/* Holds c's output for the filling commit (its packet made records, or `remote`: it made a
 * publish that other workers handle). */
void persist_hold(struct worker *w, struct conn *c, bool remote);

#endif
