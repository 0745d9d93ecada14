/*
 * Retained messages cluster-wide (issue 14): a JetStream key-value bucket holds every retained
 * message of the cluster, and each node keeps its local replicas (one per worker, as without a
 * cluster) by watching the bucket, so a SUBSCRIBE on any node is answered from local memory.
 *
 * The bucket: "retained-<cluster_name escaped>" (cluster/retained.h), history 1, replicas as
 * many as the NATS servers the connection knows, at most 3 (fewer if JetStream refuses); key =
 * the topic's subject without the cluster prefix ("m.a.b"), value = the envelope a PUBLISH
 * carries between nodes (QoS, properties, payload, expiry left when written); an empty
 * retained PUBLISH is a KV delete. $SYS never gets there: its subject mapping is LOCAL.
 *
 * Threads; no worker ever calls libnats:
 * - Writes: a worker's retained PUBLISH is a CL_REC_PUB_RETAIN record in its bulk buffer; the
 *   link thread publishes it on the cluster subject as any message (live delivery) and puts it
 *   in the bucket with an asynchronous JetStream publish (no round trip per write). Until the
 *   bucket is open, writes wait in a held list, in order. Every acknowledgement comes back on
 *   libnats's delivery thread (cl_rt_on_ack): a refused or unanswered write is counted in
 *   $SYS/broker/cluster/retained/failed and logged, never silent.
 * - Reads: a thread of this file opens (or creates) the bucket and watches all of it
 *   (kvStore_WatchAll, blocking calls that are harmless here). Each entry becomes a struct msg
 *   numbered from the broker's retained sequence (route.c's rseq) and goes to every worker
 *   through a channel of its own (this thread is its single producer), where the worker
 *   applies it to its replica only: it is never delivered to subscribers as a live message,
 *   the data plane did that already.
 * - Start-up: cluster_start waits (up to CL_RT_LOAD_WAIT_MS) until the watcher has read every
 *   current key; those entries wait in a vector that each worker applies in
 *   cluster_retain_worker_init, before it serves its first client. A node that cannot reach
 *   NATS in time starts serving and loads the bucket through the channels once it can.
 *
 * Which entry wins against this node's own writes: cluster_retain_keys.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "broker.h"
#include "cluster.h"
#include "cluster/retained.h"
#include "cluster_impl.h"
#include "cluster_retain_impl.h"
#include "index/msg.h"
#include "index/retain.h"
#include "persist.h"
#include "route.h"
#include "worker.h"

#define CL_RT_LOAD_WAIT_MS 10000       /* cluster_start waits this long for the first load */
#define CL_RT_CHAN         4096u       /* entries in flight from the watcher to a worker */
#define CL_RT_HELD_MAX     (64u << 20) /* bytes of writes held while the bucket is not open */
#define CL_RT_ACK_WAIT_MS  10000       /* a write unacknowledged this long has failed */
#define CL_RT_MAX_PENDING  65536       /* asynchronous writes in flight before a put stalls */
#define CL_RT_API_WAIT_MS  3000        /* JetStream API requests (bucket, reads) */
#define CL_RT_REPLICAS_MAX 3
#define CL_RT_LOG_FAILURES 10 /* failures logged one by one; then one line per 1000 */

/* On the watcher's own channels (rt->chans): p1 a struct msg (the worker unrefs it). */
enum { CL_E_RETAIN = 5 };

static void cl_rt_count_failure(struct cl_retain *rt, const char *key, const char *why)
{
	uint64_t n = atomic_fetch_add_explicit(&rt->failed, 1, memory_order_relaxed) + 1;

	if (n <= CL_RT_LOG_FAILURES || n % 1000 == 0)
		log_msg(&rt->cl->log, LOG_T_WARNING,
		        "Cluster: a retained write (key %.200s) did not reach the bucket %s: %s; "
		        "%" PRIu64 " so far ($SYS/broker/cluster/retained/failed).",
		        key, rt->bucket, why, n);
}

/* libnats's delivery thread: the bucket's answer to one asynchronous write. */
static void cl_rt_on_ack(jsCtx *js, natsMsg *nm, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct cl_retain *rt = closure;
	const char *subj = natsMsg_GetSubject(nm);
	const char *key = subj ? subj : "";
	size_t len;

	(void)js;
	if (strncmp(key, rt->kv_prefix, rt->kv_prefix_len) == 0)
		key += rt->kv_prefix_len;
	len = strlen(key);
	pthread_mutex_lock(&rt->mu);
	cl_rkey_done(rt, key, len, pa ? pa->Sequence : 0);
	pthread_mutex_unlock(&rt->mu);
	/* No stream answers: the bucket was deleted (or lost); the watch sees nothing of it. */
	if (pae && (pae->Err == NATS_NO_RESPONDERS || pae->ErrCode == JSStreamNotFoundErr))
		atomic_store_explicit(&rt->reopen, true, memory_order_relaxed);
	if (pa)
		atomic_fetch_add_explicit(&rt->stored, 1, memory_order_relaxed);
	else
		cl_rt_count_failure(rt, key,
		                    pae && pae->ErrText
		                            ? pae->ErrText
		                            : natsStatus_GetText(pae ? pae->Err : NATS_ERR));
	natsMsg_Destroy(nm);
}

/*
 * Puts one write in the bucket, without waiting for its acknowledgement (link thread, or this
 * file's thread for the held writes). data is the envelope; del: its payload is empty, a
 * delete.
 */
static void cl_rt_publish(struct cl_retain *rt, const char *key, size_t klen, const uint8_t *data,
                          uint32_t dlen, bool del)
{
	char subj[CLUSTER_BUCKET_MAX + 8 + CLUSTER_SUBJECT_MAX + 1];
	natsMsg *nm = NULL;
	jsPubOptions po;
	natsStatus s;

	memcpy(subj, rt->kv_prefix, rt->kv_prefix_len);
	memcpy(subj + rt->kv_prefix_len, key, klen);
	subj[rt->kv_prefix_len + klen] = '\0';
	/* A delete is KV's marker: an empty message with its operation in a header. */
	s = natsMsg_Create(&nm, subj, NULL, del ? NULL : (const char *)data, del ? 0 : (int)dlen);
	if (s == NATS_OK && del)
		s = natsMsgHeader_Set(nm, "KV-Operation", "DEL");
	if (s == NATS_OK) {
		jsPubOptions_Init(&po);
		po.MaxWait = CL_RT_ACK_WAIT_MS;
		s = js_PublishMsgAsync(rt->js, &nm, &po);
	}
	natsMsg_Destroy(nm);
	if (s != NATS_OK) {
		pthread_mutex_lock(&rt->mu);
		cl_rkey_done(rt, key, klen, 0);
		pthread_mutex_unlock(&rt->mu);
		cl_rt_count_failure(rt, key, natsStatus_GetText(s));
	}
}

void cluster_retain_put(struct cluster *cl, const char *subject, const uint8_t *data, uint32_t len)
{
	struct cl_retain *rt = cl->rt;
	const char *key = subject + cl->prefix.len;
	size_t klen = strlen(key);
	struct cluster_msg m;
	_Atomic uint64_t *taken = NULL;
	bool ready;

	/* The worker wrote it: the envelope is valid. Its epoch says the worker (the cluster's
	 * epoch plus its index), whose writes the watcher may wait for (cl_rt_fence). */
	if (cluster_env_decode(data, len, &m) != ST_OK)
		return;
	if (m.epoch - cl->epoch < cl->nworkers)
		taken = &rt->lanes[m.epoch - cl->epoch].taken;
	pthread_mutex_lock(&rt->mu);
	ready = rt->ready;
	if (!ready) {
		struct cl_rheld *h = NULL;

		/* Held while the bucket opens; refused (counted) once it could not be opened. */
		if (!rt->open_failed && rt->held_bytes + klen + len <= CL_RT_HELD_MAX)
			h = malloc(sizeof(*h) + klen + 1 + len);
		if (!h) {
			pthread_mutex_unlock(&rt->mu);
			if (taken)
				atomic_fetch_add_explicit(taken, 1, memory_order_release);
			cl_rt_count_failure(rt, key, "the bucket is not open");
			return;
		}
		h->next = NULL;
		h->klen = (uint32_t)klen;
		h->dlen = len;
		memcpy(h->bytes, key, klen + 1);
		memcpy(h->bytes + klen + 1, data, len);
		if (rt->held_tail)
			rt->held_tail->next = h;
		else
			rt->held_head = h;
		rt->held_tail = h;
		rt->held_bytes += klen + len;
	}
	cl_rkey_put(rt, key, klen);
	pthread_mutex_unlock(&rt->mu);
	/* Counted in flight: the watcher may decide about this key now. */
	if (taken)
		atomic_fetch_add_explicit(taken, 1, memory_order_release);
	if (ready)
		cl_rt_publish(rt, key, klen, data, len, m.payload.len == 0);
}

/* The bucket just opened: the held writes go first, then the link thread's go straight. */
static void cl_rt_flush_held(struct cl_retain *rt)
{
	for (;;) {
		struct cl_rheld *h;

		pthread_mutex_lock(&rt->mu);
		h = rt->held_head;
		if (!h)
			rt->ready = true;
		rt->held_head = rt->held_tail = NULL;
		rt->held_bytes = 0;
		pthread_mutex_unlock(&rt->mu);
		if (!h)
			return;
		while (h) {
			struct cl_rheld *next = h->next;
			const uint8_t *data = h->bytes + h->klen + 1;
			struct cluster_msg m;

			if (cluster_env_decode(data, h->dlen, &m) == ST_OK)
				cl_rt_publish(rt, (const char *)h->bytes, h->klen, data, h->dlen,
				              m.payload.len == 0);
			free(h);
			h = next;
		}
	}
}

static uint64_t cl_rt_clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool cl_rt_stopping(struct cl_retain *rt)
{
	return atomic_load_explicit(&rt->stop, memory_order_acquire);
}

/* Sleeps ms in short steps, returning early when asked to stop. */
static void cl_rt_nap(struct cl_retain *rt, unsigned ms)
{
	for (unsigned t = 0; t < ms && !cl_rt_stopping(rt); t += 50)
		usleep(50000);
}

/*
 * Numbers the entry about to be decided and applied, then waits until the link thread has
 * taken every retained write the workers committed before that number was drawn. A local
 * write numbered before it is then counted in flight (so the entry is kept back, not applied
 * over it); one numbered after it wins in the replicas (route_retain_apply). Without the wait,
 * an entry decided before the link took a local write could replace it, its own older write's
 * echo included. The worker commits the record before it numbers its own write (route.c:
 * cluster_publish comes first), and both are sequentially consistent here and there.
 */
static void cl_rt_fence(struct cl_retain *rt)
{
	struct cluster *cl = rt->cl;

	rt->rseq =
	        atomic_fetch_add_explicit(&cl->b->shared.retain_seq, 1, memory_order_seq_cst) + 1;
	for (unsigned i = 0; i < cl->nworkers; i++) {
		uint64_t c = atomic_load_explicit(&rt->lanes[i].committed, memory_order_seq_cst);

		/* Bounded: a worker hands its buffer at each batch end, the link takes it at once;
		 * a stopping broker does not wait. */
		for (unsigned n = 0;
		     atomic_load_explicit(&rt->lanes[i].taken, memory_order_acquire) < c &&
		     n < 2000 && !cl_rt_stopping(rt);
		     n++)
			usleep(500);
	}
}

/* Hands a retained write (one reference, taken over) to every worker's replica. */
static void cl_rt_deliver(struct cl_retain *rt, struct msg *m)
{
	struct cluster *cl = rt->cl;

	m->rseq = rt->rseq;
	pthread_mutex_lock(&rt->mu);
	if (!rt->workers_started) {
		if (rt->nsnap == rt->snap_cap) {
			size_t cap = rt->snap_cap ? rt->snap_cap * 2 : 256;
			struct msg **p = realloc(rt->snap, cap * sizeof(*p));

			if (!p) {
				pthread_mutex_unlock(&rt->mu);
				log_msg(&cl->log, LOG_T_ERROR,
				        "Cluster: out of memory loading retained messages.");
				msg_unref(m);
				return;
			}
			rt->snap = p;
			rt->snap_cap = cap;
		}
		rt->snap[rt->nsnap++] = m;
		pthread_mutex_unlock(&rt->mu);
		atomic_fetch_add_explicit(&rt->received, 1, memory_order_relaxed);
		return;
	}
	pthread_mutex_unlock(&rt->mu);
	for (unsigned i = 0; i < cl->nworkers; i++) {
		struct cluster_lane *l = &cl->lanes[i];
		struct chan_entry e = {.kind = CL_E_RETAIN, .p1 = msg_ref(m)};

		/* State, never dropped: this thread waits for room (the worker drains each
		 * batch end). */
		while (!chan_push(&rt->chans[i], &e)) {
			if (cl_rt_stopping(rt)) {
				msg_unref(m);
				break;
			}
			chan_publish(&rt->chans[i]);
			cluster_wake(&l->idle, l->efd);
			usleep(1000);
		}
		chan_publish(&rt->chans[i]);
		cluster_wake(&l->idle, l->efd);
	}
	atomic_fetch_add_explicit(&rt->received, 1, memory_order_relaxed);
	msg_unref(m);
}

/* A delete, or a message that expired before it was read: an empty retained write. */
static void cl_rt_deliver_delete(struct cl_retain *rt, const uint8_t *topic, size_t len)
{
	struct msg *m = msg_new((struct st_bytes){topic, (uint32_t)len}, (struct st_bytes){0},
	                        (struct st_bytes){0}, 0, true);

	if (m)
		cl_rt_deliver(rt, m);
}

/* One entry of the bucket (a watched one, or one read back), applied to every replica. */
static void cl_rt_apply(struct cl_retain *rt, kvEntry *e)
{
	struct cluster *cl = rt->cl;
	const char *key = kvEntry_Key(e);
	size_t klen = strlen(key);
	struct cluster_msg cm;
	struct msg *m;
	int64_t left;
	long tl;

	if (klen + cl->prefix.len > CLUSTER_SUBJECT_MAX) {
		atomic_fetch_add_explicit(&rt->invalid, 1, memory_order_relaxed);
		return;
	}
	memcpy(rt->subject + cl->prefix.len, key, klen);
	tl = cluster_topic_of_subject(&cl->prefix, rt->subject, cl->prefix.len + klen, rt->topic,
	                              CLUSTER_SUBJECT_MAX);
	if (tl <= 0) {
		atomic_fetch_add_explicit(&rt->invalid, 1, memory_order_relaxed);
		return;
	}
	if (kvEntry_Operation(e) != kvOp_Put) {
		cl_rt_deliver_delete(rt, rt->topic, (size_t)tl);
		return;
	}
	if (cluster_env_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &cm) != ST_OK) {
		atomic_fetch_add_explicit(&rt->invalid, 1, memory_order_relaxed);
		return;
	}
	left = cluster_retained_left_ms(cm.expiry_s, kvEntry_Created(e),
	                                (int64_t)cl_rt_clock_ms(CLOCK_REALTIME) * 1000000);
	if (left < 0 || cm.payload.len == 0) {
		cl_rt_deliver_delete(rt, rt->topic, (size_t)tl);
		return;
	}
	m = msg_new((struct st_bytes){rt->topic, (uint32_t)tl}, cm.props, cm.payload, cm.qos, true);
	if (!m) {
		log_msg(&cl->log, LOG_T_ERROR,
		        "Cluster: out of memory reading a retained message.");
		return;
	}
	if (left > 0)
		m->expiry_ms = cl_rt_clock_ms(CLOCK_MONOTONIC) + (uint64_t)left;
	cl_rt_deliver(rt, m);
}

/* One watched entry (taken over). */
static void cl_rt_entry(struct cl_retain *rt, kvEntry *e)
{
	const char *key = kvEntry_Key(e);
	int what;

	cl_rt_fence(rt);
	pthread_mutex_lock(&rt->mu);
	what = cl_rt_decide(rt, key, strlen(key), e);
	pthread_mutex_unlock(&rt->mu);
	if (what == CL_RT_KEPT)
		return;
	if (what == CL_RT_APPLY)
		cl_rt_apply(rt, e);
	kvEntry_Destroy(e);
}

/*
 * After a failed write: the bucket's value now (later than anything the watcher gave so far)
 * replaces this node's. NATS unreachable: tried again in a second.
 */
static void cl_rt_read_back(struct cl_retain *rt, const char *key, size_t klen)
{
	struct cluster *cl = rt->cl;
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, rt->kv, key);
	uint64_t hash;
	struct cl_rkey *k;
	bool busy;
	long tl;

	if (s == NATS_OK || s == NATS_NOT_FOUND) {
		/* A write of ours in flight again: it settles the key, the value read is older. */
		cl_rt_fence(rt);
		pthread_mutex_lock(&rt->mu);
		k = cl_rkey_find(rt, key, klen, &hash);
		busy = k && k->pending;
		pthread_mutex_unlock(&rt->mu);
		if (busy) {
			kvEntry_Destroy(e);
			return;
		}
	}
	if (s == NATS_OK) {
		cl_rt_apply(rt, e);
		kvEntry_Destroy(e);
		return;
	}
	if (s == NATS_NOT_FOUND) {
		memcpy(rt->subject + cl->prefix.len, key, klen);
		tl = cluster_topic_of_subject(&cl->prefix, rt->subject, cl->prefix.len + klen,
		                              rt->topic, CLUSTER_SUBJECT_MAX);
		if (tl > 0)
			cl_rt_deliver_delete(rt, rt->topic, (size_t)tl);
		return;
	}
	rt->repair_after = cl_rt_clock_ms(CLOCK_MONOTONIC) + 1000;
	pthread_mutex_lock(&rt->mu);
	k = cl_rkey_find(rt, key, klen, &hash);
	if (!k) {
		k = calloc(1, sizeof(*k) + klen);
		if (k && hmap_insert(&rt->keys, hash, k) != ST_OK) {
			free(k);
			k = NULL;
		}
		if (k) {
			k->len = (uint16_t)klen;
			memcpy(k->key, key, klen);
		}
	}
	if (k) {
		k->need_get = true;
		if (k->pending == 0)
			cl_rkey_queue(rt, k);
	}
	pthread_mutex_unlock(&rt->mu);
}

/*
 * Keys whose writes are all answered: the entry kept while they were in flight is applied if
 * it is not older than our last write (in flight was not "after": a write may be stored
 * before the entry), and after a failed write the bucket's value replaces ours.
 */
static void cl_rt_release(struct cl_retain *rt)
{
	struct cl_rrepair *r;

	pthread_mutex_lock(&rt->mu);
	r = rt->repairs;
	rt->repairs = rt->repairs_tail = NULL;
	pthread_mutex_unlock(&rt->mu);
	while (r) {
		struct cl_rrepair *next = r->next;
		size_t klen = strlen(r->key);
		uint64_t hash;
		struct cl_rkey *k;
		kvEntry *e = NULL;
		bool get = false;

		cl_rt_fence(rt);
		pthread_mutex_lock(&rt->mu);
		k = cl_rkey_find(rt, r->key, klen, &hash);
		if (k) {
			k->queued = false;
			if (k->pending == 0) {
				/* Otherwise writes are in flight again: their answers settle it. */
				if (k->held && kvEntry_Revision(k->held) >= k->own_rev)
					e = k->held;
				else
					kvEntry_Destroy(k->held);
				k->held = NULL;
				get = k->need_get;
				k->need_get = false;
			}
			cl_rkey_settle(rt, k, hash);
		}
		pthread_mutex_unlock(&rt->mu);
		if (e) {
			cl_rt_apply(rt, e);
			kvEntry_Destroy(e);
		}
		if (get)
			cl_rt_read_back(rt, r->key, klen);
		free(r);
		r = next;
	}
}

/* How many servers the connection knows (the NATS cluster's size, seen from here). */
static int cl_rt_servers(struct cluster *cl)
{
	char **servers = NULL;
	int n = 0;

	if (natsConnection_GetServers(cl->nc, &servers, &n) != NATS_OK)
		return 1;
	for (int i = 0; i < n; i++)
		free(servers[i]);
	free(servers);
	return n > 0 ? n : 1;
}

/* Opens the bucket, creating it if missing. ST_OK, or an error to retry later. */
static int cl_rt_open(struct cl_retain *rt, bool *logged)
{
	struct cluster *cl = rt->cl;
	const char *err;
	natsStatus s;
	int replicas;

	if (!rt->js) {
		jsOptions jo;

		jsOptions_Init(&jo);
		jo.Wait = CL_RT_API_WAIT_MS;
		jo.PublishAsync.MaxPending = CL_RT_MAX_PENDING;
		jo.PublishAsync.AckHandler = cl_rt_on_ack;
		jo.PublishAsync.AckHandlerClosure = rt;
		s = natsConnection_JetStream(&rt->js, cl->nc, &jo);
		if (s != NATS_OK)
			return ST_ERR_SYS;
	}
	s = js_KeyValue(&rt->kv, rt->js, rt->bucket);
	if (s == NATS_OK)
		return ST_OK;
	if (s != NATS_NOT_FOUND) {
		if (!*logged)
			log_msg(&cl->log, LOG_T_WARNING,
			        "Cluster: cannot open the retained messages' bucket %s yet (%s); "
			        "retrying.",
			        rt->bucket,
			        nats_GetLastError(NULL) ? nats_GetLastError(NULL)
			                                : natsStatus_GetText(s));
		*logged = true;
		return ST_ERR_SYS;
	}
	replicas = cl_rt_servers(cl);
	if (replicas > CL_RT_REPLICAS_MAX)
		replicas = CL_RT_REPLICAS_MAX;
	/* JetStream refuses more replicas than it has servers: try fewer. */
	for (; replicas >= 1; replicas--) {
		kvConfig kc;

		kvConfig_Init(&kc);
		kc.Bucket = rt->bucket;
		kc.Description = "Starling: the cluster's retained messages";
		kc.History = 1;
		kc.Replicas = replicas;
		kc.StorageType = js_FileStorage;
		s = js_CreateKeyValue(&rt->kv, rt->js, &kc);
		if (s == NATS_OK) {
			log_msg(&cl->log, LOG_T_INFORMATION,
			        "Cluster: created the retained messages' bucket %s (%d replica%s).",
			        rt->bucket, replicas, replicas > 1 ? "s" : "");
			return ST_OK;
		}
		/* Only JetStream's "not that many servers" takes a replica away; another error
		 * (no leader yet, a timeout) is tried again later with as many. */
		err = nats_GetLastError(NULL);
		if (!err || (!strstr(err, "insufficient resources") && !strstr(err, "replicas")))
			break;
	}
	/* Another node may have created it meanwhile. */
	s = js_KeyValue(&rt->kv, rt->js, rt->bucket);
	if (s == NATS_OK)
		return ST_OK;
	if (!*logged)
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: cannot create the retained messages' bucket %s yet (%s); "
		        "retrying.",
		        rt->bucket,
		        nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
	*logged = true;
	return ST_ERR_SYS;
}

static void cl_rt_loaded(struct cl_retain *rt)
{
	rt->initial = false;
	log_msg(&rt->cl->log, LOG_T_INFORMATION,
	        "Cluster: %" PRIu64 " retained message%s loaded from the bucket %s.", rt->loaded,
	        rt->loaded == 1 ? "" : "s", rt->bucket);
	pthread_mutex_lock(&rt->mu);
	rt->loaded_once = true;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->mu);
}

static void *cl_rt_main(void *arg)
{
	struct cl_retain *rt = arg;
	bool logged = false;

	pthread_setname_np(pthread_self(), "starling-kv");
	while (!cl_rt_stopping(rt)) {
		kvEntry *e = NULL;
		natsStatus s;

		if (rt->kv && atomic_load_explicit(&rt->reopen, memory_order_relaxed) &&
		    cl_rt_clock_ms(CLOCK_MONOTONIC) - rt->reopened >= 2000) {
			atomic_store_explicit(&rt->reopen, false, memory_order_relaxed);
			rt->reopened = cl_rt_clock_ms(CLOCK_MONOTONIC);
			log_msg(&rt->cl->log, LOG_T_WARNING,
			        "Cluster: the retained messages' bucket %s does not answer writes; "
			        "opening it again.",
			        rt->bucket);
			if (rt->watcher)
				kvWatcher_Destroy(rt->watcher);
			rt->watcher = NULL;
			kvStore_Destroy(rt->kv);
			rt->kv = NULL;
		}
		if (!rt->kv && cl_rt_open(rt, &logged) != ST_OK) {
			pthread_mutex_lock(&rt->mu);
			rt->open_failed = true;
			pthread_cond_broadcast(&rt->cond);
			pthread_mutex_unlock(&rt->mu);
			cl_rt_nap(rt, 500);
			continue;
		}
		if (!rt->watcher) {
			s = kvStore_WatchAll(&rt->watcher, rt->kv, NULL);
			if (s != NATS_OK) {
				rt->watcher = NULL;
				cl_rt_nap(rt, 500);
				continue;
			}
			rt->initial = true;
			rt->loaded = 0;
		}
		cl_rt_flush_held(rt);
		if (cl_rt_clock_ms(CLOCK_MONOTONIC) >= rt->repair_after)
			cl_rt_release(rt);
		s = kvWatcher_Next(&e, rt->watcher, 200);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			log_msg(&rt->cl->log, LOG_T_WARNING,
			        "Cluster: the retained messages' watch ended (%s); watching again.",
			        natsStatus_GetText(s));
			kvWatcher_Destroy(rt->watcher);
			rt->watcher = NULL;
			cl_rt_nap(rt, 250);
			continue;
		}
		if (!e) {
			if (rt->initial)
				cl_rt_loaded(rt);
			continue;
		}
		if (rt->initial)
			rt->loaded++;
		cl_rt_entry(rt, e);
	}
	return NULL;
}

int cluster_retain_init(struct cluster *cl)
{
	struct cl_retain *rt = calloc(1, sizeof(*rt));
	long n;

	if (!rt)
		return ST_ERR_NOMEM;
	cl->rt = rt;
	rt->cl = cl;
	rt->seed = hmap_seed_new();
	pthread_mutex_init(&rt->mu, NULL);
	pthread_cond_init(&rt->cond, NULL);
	n = cluster_retained_bucket(cl->prefix.str, cl->prefix.len - 1u, rt->bucket,
	                            sizeof(rt->bucket));
	if (n < 0)
		return ST_ERR_CONFIG;
	rt->kv_prefix_len =
	        (size_t)snprintf(rt->kv_prefix, sizeof(rt->kv_prefix), "$KV.%s.", rt->bucket);
	rt->subject = malloc(CLUSTER_SUBJECT_MAX + 1);
	rt->topic = malloc(CLUSTER_SUBJECT_MAX + 1);
	rt->chans = calloc(cl->nworkers, sizeof(*rt->chans));
	rt->lanes = aligned_alloc(64, sizeof(*rt->lanes) * cl->nworkers);
	if (!rt->subject || !rt->topic || !rt->chans || !rt->lanes)
		return ST_ERR_NOMEM;
	memset(rt->lanes, 0, sizeof(*rt->lanes) * cl->nworkers);
	memcpy(rt->subject, cl->prefix.str, cl->prefix.len);
	for (unsigned i = 0; i < cl->nworkers; i++)
		if (chan_init(&rt->chans[i], CL_RT_CHAN, 0) != ST_OK)
			return ST_ERR_NOMEM;
	return ST_OK;
}

int cluster_retain_start(struct cluster *cl)
{
	struct cl_retain *rt = cl->rt;
	struct timespec until;

	if (pthread_create(&rt->thread, NULL, cl_rt_main, rt) != 0) {
		log_msg(&cl->log, LOG_T_ERROR,
		        "Error: cannot start the cluster's retained thread: %s", strerror(errno));
		return ST_ERR_SYS;
	}
	rt->thread_started = true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CL_RT_LOAD_WAIT_MS / 1000;
	pthread_mutex_lock(&rt->mu);
	/* Connected: the bucket's retained messages are in place before any client is served. */
	while (atomic_load_explicit(&cl->connected, memory_order_relaxed) && !rt->loaded_once &&
	       !rt->open_failed && pthread_cond_timedwait(&rt->cond, &rt->mu, &until) != ETIMEDOUT)
		;
	if (!rt->loaded_once)
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: serving before the retained messages' bucket %s is loaded; they "
		        "arrive as it loads.",
		        rt->bucket);
	rt->workers_started = true;
	pthread_mutex_unlock(&rt->mu);
	return ST_OK;
}

void cluster_retain_stop(struct cluster *cl)
{
	struct cl_retain *rt = cl->rt;

	if (!rt || !rt->thread_started)
		return;
	atomic_store_explicit(&rt->stop, true, memory_order_release);
	pthread_join(rt->thread, NULL);
	rt->thread_started = false;
	if (rt->watcher) {
		kvWatcher_Stop(rt->watcher);
		kvWatcher_Destroy(rt->watcher);
		rt->watcher = NULL;
	}
	/* What the bucket has yet to acknowledge is waited for a little, then counted lost by
	 * the acknowledgement handler (or lost with the connection). */
	if (rt->js && cl->nc) {
		jsPubOptions po;

		jsPubOptions_Init(&po);
		po.MaxWait = 1000;
		js_PublishAsyncComplete(rt->js, &po);
	}
	/* Before nats_CloseAndWait: nothing of libnats may be destroyed after it. The entries
	 * kept go now; the acknowledgement handler may still run, and finds none. */
	pthread_mutex_lock(&rt->mu);
	for (size_t i = hmap_next(&rt->keys, 0); i < hmap_cap(&rt->keys);
	     i = hmap_next(&rt->keys, i + 1)) {
		struct cl_rkey *k = rt->keys.slots[i].val;

		kvEntry_Destroy(k->held);
		k->held = NULL;
	}
	pthread_mutex_unlock(&rt->mu);
	kvStore_Destroy(rt->kv);
	rt->kv = NULL;
	jsCtx_Destroy(rt->js);
	rt->js = NULL;
}

void cluster_retain_fini(struct cluster *cl)
{
	struct cl_retain *rt = cl->rt;
	struct hmap *h;

	if (!rt)
		return;
	h = &rt->keys;
	for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1)) {
		struct cl_rkey *k = h->slots[i].val;

		free(k);
	}
	hmap_fini(h);
	while (rt->held_head) {
		struct cl_rheld *next = rt->held_head->next;

		free(rt->held_head);
		rt->held_head = next;
	}
	while (rt->repairs) {
		struct cl_rrepair *next = rt->repairs->next;

		free(rt->repairs);
		rt->repairs = next;
	}
	for (size_t i = 0; i < rt->nsnap; i++)
		msg_unref(rt->snap[i]);
	free(rt->snap);
	for (unsigned i = 0; rt->chans && i < cl->nworkers; i++) {
		struct chan_entry e;

		if (!rt->chans[i].slots)
			continue;
		chan_publish(&rt->chans[i]);
		while (chan_pop(&rt->chans[i], &e))
			msg_unref(e.p1);
		chan_fini(&rt->chans[i]);
	}
	free(rt->chans);
	free(rt->lanes);
	free(rt->subject);
	free(rt->topic);
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
	cl->rt = NULL;
}

/*
 * One retained write from the bucket into this worker's replica, never to subscribers. Its
 * number decides against local writes (route.c numbers those too in a cluster, one worker or
 * several, and keeps deletes as tombstones for that).
 */
static void cl_rt_store(struct worker *w, struct msg *m)
{
	route_retain_apply(w, m);
}

void cluster_retain_committed(struct worker *w)
{
	atomic_fetch_add_explicit(&w->b->cluster->rt->lanes[w->index].committed, 1,
	                          memory_order_seq_cst);
	/* route.c numbers the local write next (relaxed): a watcher that draws a later number
	 * sees this count (cl_rt_fence). */
	atomic_thread_fence(memory_order_release);
}

void cluster_retain_worker_init(struct worker *w)
{
	struct cl_retain *rt = w->b->cluster->rt;

	/* cluster_start is over: snap no longer changes. */
	for (size_t i = 0; i < rt->nsnap; i++)
		cl_rt_store(w, rt->snap[i]);
}

void cluster_retain_drain(struct worker *w)
{
	struct cl_retain *rt = w->b->cluster->rt;
	struct chan *ch = &rt->chans[w->index];
	struct chan_entry e;
	bool any = false;

	/* Bounded per batch end: the watcher may refill the channel meanwhile. */
	for (unsigned n = 0; n < CL_RT_CHAN && chan_pop(ch, &e); n++) {
		cl_rt_store(w, e.p1);
		msg_unref(e.p1);
		any = true;
	}
	if (any)
		chan_release(ch);
}

bool cluster_retain_waiting(struct worker *w)
{
	return chan_peek(&w->b->cluster->rt->chans[w->index]) != NULL;
}

void cluster_retain_figures(const struct cluster *cl, struct cluster_figures *f)
{
	const struct cl_retain *rt = cl->rt;

	f->retained_stored = atomic_load_explicit(&rt->stored, memory_order_relaxed);
	f->retained_failed = atomic_load_explicit(&rt->failed, memory_order_relaxed);
	f->retained_received = atomic_load_explicit(&rt->received, memory_order_relaxed);
	f->retained_invalid = atomic_load_explicit(&rt->invalid, memory_order_relaxed);
}
