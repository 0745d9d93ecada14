/*
 * What cluster_retain.c (the retained messages' bucket) and cluster_retain_keys.c (which entry
 * wins against this node's own writes) share. Not for other files.
 */
#ifndef STARLING_CLUSTER_RETAIN_IMPL_H
#define STARLING_CLUSTER_RETAIN_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "base/hmap.h"
#include "cluster/retained.h"
#include "io/chan.h"

struct cluster;
struct msg;

/* A key with writes of this node in flight or not yet seen back from the bucket. */
struct cl_rkey {
	uint32_t pending; /* writes put, not yet acknowledged */
	uint64_t own_rev; /* revision of the last acknowledged write */
	uint64_t seen;    /* highest revision the watcher met for the key */
	kvEntry *held;    /* the latest entry met while writes were in flight, or NULL */
	bool queued;      /* on the release list: nothing in flight, held or need_get to do */
	bool need_get;    /* a write failed: read the key back from the bucket */
	uint16_t len;
	char key[];
};

/* A write held while the bucket is not open, in order. */
struct cl_rheld {
	struct cl_rheld *next;
	uint32_t klen, dlen;
	uint8_t bytes[]; /* key, NUL, data */
};

/* A key whose writes are all answered, for this file's thread to settle (cl_rt_release). */
struct cl_rrepair {
	struct cl_rrepair *next;
	char key[];
};

/*
 * One worker's retained writes: committed to its buffer (the worker), and taken by the link
 * thread, which counts them in flight (pending) for their keys. The watcher decides about an
 * entry only once every write committed before it has been taken (cl_rt_fence).
 */
struct cl_rt_lane {
	_Alignas(64) _Atomic uint64_t committed;
	_Atomic uint64_t taken;
};

struct cl_retain {
	struct cluster *cl;
	struct cl_rt_lane *lanes; /* one per worker */
	uint64_t rseq;            /* the write number of the entry being applied (thread) */
	char bucket[CLUSTER_BUCKET_MAX];
	char kv_prefix[CLUSTER_BUCKET_MAX + 8]; /* "$KV.<bucket>." */
	size_t kv_prefix_len;
	struct chan *chans; /* one per worker, this file's thread -> the worker */

	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;
	_Atomic bool reopen; /* a write found no bucket: open (create) it again */
	uint64_t reopened;   /* monotonic ms of the last reopen (thread only) */
	jsCtx *js;
	kvStore *kv;
	kvWatcher *watcher;
	uint64_t seed;
	char *subject; /* "<cluster prefix><key>" being decoded (thread only) */
	uint8_t *topic;
	uint64_t loaded; /* entries of the current watch's first pass (thread only) */
	bool initial;    /* the current watch is in its first pass */

	/* Under mu: shared by the link thread (puts), the delivery thread (acknowledgements),
	 * this file's thread and cluster_start. Nobody calls libnats while holding it. */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool ready;           /* the bucket is open: writes go straight to it */
	bool loaded_once;     /* the first load is complete */
	bool open_failed;     /* the bucket could not be opened (no JetStream?): do not wait */
	bool workers_started; /* entries go through the channels, no longer to snap */
	struct hmap keys;     /* struct cl_rkey by XXH3 of the key */
	struct cl_rheld *held_head, *held_tail;
	uint64_t held_bytes;
	struct cl_rrepair *repairs, *repairs_tail; /* keys to settle, in order */
	uint64_t repair_after; /* monotonic ms: a read back failed, try again then (thread) */
	struct msg **snap;     /* the first load, for cluster_retain_worker_init */
	size_t nsnap, snap_cap;

	/* Counters: each written by one thread, read by $SYS and the metrics. */
	_Atomic uint64_t stored;   /* delivery thread: writes the bucket acknowledged */
	_Atomic uint64_t failed;   /* link and delivery threads: writes refused or lost */
	_Atomic uint64_t received; /* this file's thread: entries applied to the replicas */
	_Atomic uint64_t invalid;  /* this file's thread: entries that are no retained message */
};

/* The key's bookkeeping, or NULL; *hash is set either way (under mu). */
struct cl_rkey *cl_rkey_find(struct cl_retain *rt, const char *key, size_t len, uint64_t *hash);

/* Forgets k (freed) once nothing of this node is in flight, unseen or to settle (under mu). */
void cl_rkey_settle(struct cl_retain *rt, struct cl_rkey *k, uint64_t hash);

/* One more write of this node in flight for key (under mu). */
void cl_rkey_put(struct cl_retain *rt, const char *key, size_t len);

/* Puts k on the release list, once (under mu). */
void cl_rkey_queue(struct cl_retain *rt, struct cl_rkey *k);

/* A write of key ended: acknowledged at revision rev, or failed (rev 0) (under mu). */
void cl_rkey_done(struct cl_retain *rt, const char *key, size_t len, uint64_t rev);

/* What the watcher does with an entry. */
enum { CL_RT_APPLY, CL_RT_DROP, CL_RT_KEPT };

/* The decision about entry e of key (under mu); CL_RT_KEPT: e is taken over (kept back). */
int cl_rt_decide(struct cl_retain *rt, const char *key, size_t len, kvEntry *e);

#endif
