/*
 * Persistent sessions across the cluster's nodes (issue 14; cluster/session.h has the bucket's
 * layout, kernel-notes/cluster.md the reasoning).
 *
 * Who owns a session: a JetStream key-value bucket, one entry per persistent session (owner
 * node id and the session without its messages), claimed with compare-and-set.
 *
 * Threads; workers never call libnats and never wait:
 * - A worker that gets a CONNECT resuming a session it does not hold parks the connection
 *   (conn.h: a hand-off to itself that waits for an answer) and gives the sessions thread
 *   (starling-ss, of this file; its calls block, which is why it is not the link thread) a job
 *   through its channel. The thread reads the entry; when another node owns it, asks that node
 *   (a NATS request, CL_SS_ASK_MS at most); claims the entry; and hands the answer (the
 *   session's records, or none) to the worker through a second channel. The worker makes the
 *   session and handles the CONNECT again, which now finds it: session present.
 * - The owner's side: the request arrives on libnats's delivery thread, which hands it to the
 *   client id's home worker; that worker closes the client's connection (0x8E), writes the
 *   session out as records (persist_export_session), forgets it, and gives the answer to the
 *   sessions thread, which sends it after every bucket write the worker asked before: the
 *   asking node's claim cannot be overwritten by an older write of the owner.
 * - An owner that does not answer (gone, cut off): the asking node logs it and starts from the
 *   bucket's copy (subscriptions, no messages), and remembers the node as gone for a while so
 *   that the next clients do not wait for it too.
 * - The owner keeps its entry current: after a persistent connect and after each SUBSCRIBE or
 *   UNSUBSCRIBE that changed the session, a put (skipped when nothing changed); an expired
 *   session's entry is deleted, and a node that drops its copy because the client connected
 *   elsewhere (cluster.c's hello) deletes the entry if it still names this node.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "cluster.h"
#include "cluster/session.h"
#include "cluster_impl.h"
#include "cluster_session_impl.h"
#include "xw.h"

static uint64_t ss_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cluster_ss_free_job(struct cl_sjob *j)
{
	free(j->subject);
	free(j->payload);
	free(j);
}

/* ---- The sessions thread ---- */

static bool ss_is_self(const struct cl_sess *ss, struct st_bytes node)
{
	return node.len == ss->cl->node_id_len && memcmp(node.ptr, ss->cl->node_id, node.len) == 0;
}

static bool ss_gone_recently(struct cl_sess *ss, struct st_bytes node)
{
	uint64_t now = ss_now_ms();

	for (unsigned i = 0; i < CL_SS_GONE_SLOTS; i++)
		if (ss->gone[i].until_ms > now && strlen(ss->gone[i].node) == node.len &&
		    memcmp(ss->gone[i].node, node.ptr, node.len) == 0)
			return true;
	return false;
}

static void ss_mark_gone(struct cl_sess *ss, struct st_bytes node)
{
	unsigned i = ss->gone_next++ % CL_SS_GONE_SLOTS;

	snprintf(ss->gone[i].node, sizeof(ss->gone[i].node), "%.*s", (int)node.len,
	         (const char *)node.ptr);
	ss->gone[i].until_ms = ss_now_ms() + CL_SS_GONE_MS;
}

/* A failure of the bucket, logged at most every 10 s (NATS down makes many). */
static void ss_warn(struct cl_sess *ss, const char *what, natsStatus s)
{
	uint64_t now = ss_now_ms();
	const char *err = nats_GetLastError(NULL);

	atomic_fetch_add_explicit(&ss->failed, 1, memory_order_relaxed);
	if (now < ss->warned_ms + 10000)
		return;
	ss->warned_ms = now;
	log_msg(&ss->cl->log, LOG_T_WARNING, "Cluster: sessions' bucket %s: %s failed (%s).",
	        ss->bucket, what, err ? err : natsStatus_GetText(s));
}

static int ss_servers(struct cluster *cl)
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

/* Opens the bucket, creating it if missing (as many replicas as JetStream takes, up to 3). */
static bool ss_open(struct cl_sess *ss)
{
	struct cluster *cl = ss->cl;
	natsStatus s;

	if (ss->kv)
		return true;
	if (ss_now_ms() < ss->open_retry_ms)
		return false;
	if (!ss->js) {
		jsOptions jo;

		jsOptions_Init(&jo);
		jo.Wait = CL_SS_API_MS;
		if (natsConnection_JetStream(&ss->js, cl->nc, &jo) != NATS_OK)
			return false;
	}
	s = js_KeyValue(&ss->kv, ss->js, ss->bucket);
	if (s == NATS_NOT_FOUND) {
		int replicas = ss_servers(cl);

		for (replicas = replicas > CL_SS_REPLICAS ? CL_SS_REPLICAS : replicas;
		     replicas >= 1; replicas--) {
			kvConfig kc;
			const char *err;

			kvConfig_Init(&kc);
			kc.Bucket = ss->bucket;
			kc.Description = "Starling: which node owns each persistent session";
			kc.History = 1;
			kc.Replicas = replicas;
			kc.StorageType = js_FileStorage;
			s = js_CreateKeyValue(&ss->kv, ss->js, &kc);
			if (s == NATS_OK) {
				log_msg(&cl->log, LOG_T_INFORMATION,
				        "Cluster: created the sessions' bucket %s (%d replica%s).",
				        ss->bucket, replicas, replicas > 1 ? "s" : "");
				break;
			}
			err = nats_GetLastError(NULL);
			if (!err ||
			    (!strstr(err, "insufficient resources") && !strstr(err, "replicas")))
				break;
		}
		if (s != NATS_OK)
			s = js_KeyValue(&ss->kv, ss->js, ss->bucket); /* another node made it */
	}
	if (s != NATS_OK) {
		ss->kv = NULL;
		ss->open_retry_ms = ss_now_ms() + 5000;
		if (!ss->open_logged)
			log_msg(&cl->log, LOG_T_WARNING,
			        "Cluster: cannot open the sessions' bucket %s (%s); sessions stay "
			        "on "
			        "their node until it opens.",
			        ss->bucket,
			        nats_GetLastError(NULL) ? nats_GetLastError(NULL)
			                                : natsStatus_GetText(s));
		ss->open_logged = true;
		return false;
	}
	{
		int64_t mp = natsConnection_GetMaxPayload(cl->nc);

		if (mp > 64 * 1024)
			atomic_store_explicit(&ss->move_max, (uint32_t)(mp - 16 * 1024),
			                      memory_order_relaxed);
	}
	return true;
}

static void ss_answer(struct cl_sess *ss, struct cl_sjob *j, uint8_t how, const char *from,
                      size_t from_len, uint32_t dropped, const uint8_t *recs, size_t rlen)
{
	struct cl_sslane *l = &ss->lanes[j->worker];
	struct cl_sans *a = malloc(sizeof(*a) + j->idlen);
	struct chan_entry e = {.kind = CL_E_SANSWER};

	if (!a) {
		log_msg(&ss->cl->log, LOG_T_ERROR, "Cluster: out of memory answering a connect.");
		return;
	}
	*a = (struct cl_sans){
	        .conn_id = j->conn_id, .how = how, .dropped = dropped, .idlen = j->idlen};
	memcpy(a->id, j->id, j->idlen);
	snprintf(a->from, sizeof(a->from), "%.*s", (int)from_len, from ? from : "");
	if (rlen) {
		a->records = malloc(rlen);
		if (a->records) {
			memcpy(a->records, recs, rlen);
			a->len = (uint32_t)rlen;
		} else {
			a->how = SA_NONE;
		}
	}
	e.p1 = a;
	/* The channel holds as many answers as jobs: never full while the job was taken. */
	if (!chan_push(&l->answers, &e)) {
		free(a->records);
		free(a);
		return;
	}
	chan_publish(&l->answers);
	cluster_wake(&ss->cl->lanes[j->worker].idle, ss->cl->lanes[j->worker].efd);
}

/* Asks the owner; true with *reply (its answer) when it answered. */
static bool ss_ask(struct cl_sess *ss, struct cl_sjob *j, struct st_bytes owner, natsMsg **reply)
{
	struct cluster *cl = ss->cl;
	char subj[CLUSTER_SESS_SUBJECT_MAX];
	uint8_t *req = malloc(4 + CLUSTER_NODE_ID_MAX + j->idlen);
	long n;
	natsStatus s = NATS_ERR;

	*reply = NULL;
	if (!req)
		return false;
	n = cluster_sess_request_head((const uint8_t *)cl->node_id, cl->node_id_len, req,
	                              4 + CLUSTER_NODE_ID_MAX);
	if (n > 0 && cluster_session_subject(cl->prefix.str, cl->prefix.len, owner.ptr, owner.len,
	                                     subj, sizeof(subj)) > 0) {
		memcpy(req + n, j->id, j->idlen);
		s = natsConnection_Request(reply, cl->nc, subj, req, (int)(n + j->idlen),
		                           CL_SS_ASK_MS);
	}
	free(req);
	if (s == NATS_OK)
		return true;
	*reply = NULL;
	ss_mark_gone(ss, owner);
	log_msg(&cl->log, LOG_T_WARNING,
	        "Cluster: node %.*s, which owns the session of client %.*s, does not answer (%s): "
	        "its session starts from the cluster's bucket.",
	        (int)owner.len, (const char *)owner.ptr, (int)j->idlen, (const char *)j->id,
	        natsStatus_GetText(s));
	return false;
}

/*
 * Asks `owner` for the session, and the nodes it says the session went to, in turn (a client
 * connecting on several nodes at once). 1: *reply holds the session (ans, and from names the
 * node it came from); 0: nobody has it, or the owner does not answer; -1: it moved on between
 * the nodes asked.
 */
static int ss_follow(struct cl_sess *ss, struct cl_sjob *j, struct st_bytes owner, natsMsg **reply,
                     struct cluster_sess_answer *ans, char *from, size_t *from_len)
{
	char next[CLUSTER_NODE_ID_MAX + 1];
	bool redirected = false;

	for (unsigned hop = 0; hop < CL_SS_ATTEMPTS; hop++) {
		natsMsg_Destroy(*reply);
		*reply = NULL;
		if (ss_is_self(ss, owner) || ss_gone_recently(ss, owner) ||
		    !ss_ask(ss, j, owner, reply))
			return redirected ? -1 : 0;
		if (cluster_sess_answer_decode((const uint8_t *)natsMsg_GetData(*reply),
		                               (size_t)natsMsg_GetDataLength(*reply), ans) != ST_OK)
			return 0;
		if (ans->status == CLUSTER_SESS_HERE) {
			*from_len = owner.len;
			memmove(from, owner.ptr, owner.len);
			return 1;
		}
		if (ans->status != CLUSTER_SESS_ELSEWHERE)
			return redirected ? -1 : 0;
		memcpy(next, ans->records.ptr, ans->records.len);
		owner = (struct st_bytes){(const uint8_t *)next, ans->records.len};
		redirected = true;
	}
	return -1;
}

static void ss_take(struct cl_sess *ss, struct cl_sjob *j)
{
	struct cluster *cl = ss->cl;
	char key[CLUSTER_SESS_KEY_MAX];
	natsMsg *reply = NULL;
	uint8_t *bucket_copy = NULL, *value = NULL;
	size_t bucket_len = 0, vlen = 0;
	struct cluster_sess_answer ans = {0};
	char from[CLUSTER_NODE_ID_MAX + 1] = "";
	size_t from_len = 0;
	uint8_t how = SA_NONE;

	if (!atomic_load_explicit(&cl->connected, memory_order_relaxed) || !ss_open(ss) ||
	    cluster_session_key(j->id, j->idlen, key, sizeof(key)) < 0) {
		atomic_fetch_add_explicit(&ss->failed, 1, memory_order_relaxed);
		ss_answer(ss, j, SA_NONE, NULL, 0, 0, NULL, 0);
		return;
	}
	for (unsigned attempt = 0; attempt < CL_SS_ATTEMPTS; attempt++) {
		kvEntry *e = NULL;
		struct cluster_sess_entry ent = {0};
		bool have = false;
		uint64_t rev = 0, nrev = 0;
		natsStatus s = kvStore_Get(&e, ss->kv, key);
		long h;

		if (s == NATS_OK) {
			rev = kvEntry_Revision(e);
			have = cluster_sess_entry_decode(kvEntry_Value(e),
			                                 (size_t)kvEntry_ValueLen(e),
			                                 &ent) == ST_OK;
		} else if (s != NATS_NOT_FOUND) {
			ss_warn(ss, "reading an owner", s);
			break;
		}
		if (have && how == SA_NONE) {
			int r = ss_follow(ss, j, ent.node, &reply, &ans, from, &from_len);

			if (r > 0) {
				how = SA_MOVED;
			} else if (r < 0 && attempt + 1 < CL_SS_ATTEMPTS) {
				/* It moved on while we followed it: read the owner again. */
				kvEntry_Destroy(e);
				continue;
			}
			/* Gone, or without it (restarted without persistence), or this node's
			 * and not here: what the bucket holds is the session. */
			if (how == SA_NONE && ent.records.len) {
				free(bucket_copy);
				bucket_copy = malloc(ent.records.len);
				if (bucket_copy) {
					memcpy(bucket_copy, ent.records.ptr, ent.records.len);
					bucket_len = ent.records.len;
					how = SA_FROM_BUCKET;
					from_len = ent.node.len;
					memcpy(from, ent.node.ptr, from_len);
				}
			}
		}
		/* The claim keeps the entry's subscriptions until the worker's own put. */
		free(value);
		vlen = 4 + cl->node_id_len + (have ? ent.records.len : 0);
		value = malloc(vlen);
		h = value ? cluster_sess_entry_head((const uint8_t *)cl->node_id, cl->node_id_len,
		                                    value, vlen)
		          : -1;
		if (h < 0) {
			kvEntry_Destroy(e);
			break;
		}
		if (have)
			memcpy(value + h, ent.records.ptr, ent.records.len);
		kvEntry_Destroy(e);
		s = rev ? kvStore_Update(&nrev, ss->kv, key, value, (int)vlen, rev)
		        : kvStore_Create(&nrev, ss->kv, key, value, (int)vlen);
		if (s == NATS_OK)
			break;
		/* Another node wrote meanwhile: it claimed the session (the same client connecting
		 * there at once). Read again and ask it, as one broker hands a session from each
		 * connection to the next; the bucket's copy is no longer the session, an answer
		 * with the session still is (its old owner forgot it). */
		if (how == SA_FROM_BUCKET) {
			how = SA_NONE;
			free(bucket_copy);
			bucket_copy = NULL;
			bucket_len = 0;
		}
		if (attempt + 1 == CL_SS_ATTEMPTS)
			ss_warn(ss, "claiming a session", s);
	}
	if (how == SA_MOVED) {
		atomic_fetch_add_explicit(&ss->received, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&ss->msgs_dropped, ans.dropped, memory_order_relaxed);
		ss_answer(ss, j, how, from, from_len, ans.dropped, ans.records.ptr,
		          ans.records.len);
	} else if (how == SA_FROM_BUCKET) {
		atomic_fetch_add_explicit(&ss->from_bucket, 1, memory_order_relaxed);
		ss_answer(ss, j, how, from, from_len, 0, bucket_copy, bucket_len);
	} else {
		ss_answer(ss, j, SA_NONE, NULL, 0, 0, NULL, 0);
	}
	natsMsg_Destroy(reply);
	free(bucket_copy);
	free(value);
}

static void ss_put(struct cl_sess *ss, struct cl_sjob *j)
{
	char key[CLUSTER_SESS_KEY_MAX];
	uint64_t rev = 0;
	natsStatus s;

	if (!atomic_load_explicit(&ss->cl->connected, memory_order_relaxed) || !ss_open(ss) ||
	    cluster_session_key(j->id, j->idlen, key, sizeof(key)) < 0) {
		atomic_fetch_add_explicit(&ss->failed, 1, memory_order_relaxed);
		return;
	}
	s = kvStore_Put(&rev, ss->kv, key, j->payload, (int)j->len);
	if (s != NATS_OK)
		ss_warn(ss, "writing a session", s);
}

/*
 * Deletes the entry only if it is still the revision read (a KV delete is a JetStream publish
 * with a header, and JetStream checks the subject's last sequence): another node that claimed
 * the session meanwhile keeps its entry. A mismatch is that case, not a failure.
 */
static void ss_del_if(struct cl_sess *ss, const char *key, uint64_t rev)
{
	char subj[sizeof("$KV.") + CLUSTER_SESS_BUCKET_MAX + CLUSTER_SESS_KEY_MAX];
	natsMsg *m = NULL;
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	snprintf(subj, sizeof(subj), "$KV.%s.%s", ss->bucket, key);
	s = natsMsg_Create(&m, subj, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "KV-Operation", "DEL");
	if (s == NATS_OK) {
		jsPubOptions_Init(&po);
		po.ExpectLastSubjectSeq = rev;
		po.MaxWait = CL_SS_API_MS;
		s = js_PublishMsg(&pa, ss->js, m, &po, &jerr);
	}
	if (s != NATS_OK && jerr != JSStreamWrongLastSequenceErr)
		ss_warn(ss, "deleting a session", s);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
}

static void ss_del(struct cl_sess *ss, struct cl_sjob *j)
{
	char key[CLUSTER_SESS_KEY_MAX];
	kvEntry *e = NULL;
	struct cluster_sess_entry ent;
	natsStatus s;

	if (!atomic_load_explicit(&ss->cl->connected, memory_order_relaxed) || !ss_open(ss) ||
	    cluster_session_key(j->id, j->idlen, key, sizeof(key)) < 0)
		return;
	s = kvStore_Get(&e, ss->kv, key);
	if (s != NATS_OK)
		return;
	if (cluster_sess_entry_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &ent) ==
	            ST_OK &&
	    ss_is_self(ss, ent.node))
		ss_del_if(ss, key, kvEntry_Revision(e));
	kvEntry_Destroy(e);
}

static void ss_job(struct cl_sess *ss, struct cl_sjob *j)
{
	switch (j->kind) {
	case SJ_TAKE:
		ss_take(ss, j);
		break;
	case SJ_PUT:
		ss_put(ss, j);
		break;
	case SJ_DEL:
		ss_del(ss, j);
		break;
	case SJ_REPLY:
		if (natsConnection_Publish(ss->cl->nc, j->subject, j->payload, (int)j->len) !=
		    NATS_OK)
			log_msg(&ss->cl->log, LOG_T_WARNING,
			        "Cluster: the session of client %.*s could not be sent to the node "
			        "that asked for it.",
			        (int)j->idlen, (const char *)j->id);
		break;
	}
	cluster_ss_free_job(j);
}

static bool ss_take_jobs(struct cl_sess *ss)
{
	bool any = false;

	for (unsigned i = 0; i < ss->cl->nworkers; i++) {
		struct cl_sslane *l = &ss->lanes[i];
		struct chan_entry e;
		bool got = false;

		while (!atomic_load_explicit(&ss->stop, memory_order_acquire) &&
		       chan_pop(&l->jobs, &e)) {
			ss_job(ss, e.p1);
			got = true;
		}
		if (got)
			chan_release(&l->jobs);
		any |= got;
	}
	return any;
}

static bool ss_pending(struct cl_sess *ss)
{
	for (unsigned i = 0; i < ss->cl->nworkers; i++)
		if (chan_peek(&ss->lanes[i].jobs))
			return true;
	return false;
}

static void *ss_main(void *arg)
{
	struct cl_sess *ss = arg;

	pthread_setname_np(pthread_self(), "starling-ss");
	while (!atomic_load_explicit(&ss->stop, memory_order_acquire)) {
		struct pollfd pfd = {.fd = ss->efd, .events = POLLIN};
		uint64_t v;

		if (ss_take_jobs(ss))
			continue;
		atomic_store_explicit(&ss->idle, true, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst);
		if (ss_pending(ss) || atomic_load_explicit(&ss->stop, memory_order_acquire)) {
			atomic_store_explicit(&ss->idle, false, memory_order_relaxed);
			continue;
		}
		if (poll(&pfd, 1, 1000) > 0 && read(ss->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_msg(&ss->cl->log, LOG_T_ERROR, "Cluster: eventfd: %s", strerror(errno));
		atomic_store_explicit(&ss->idle, false, memory_order_relaxed);
		/* The bucket is opened early, so that the first connect does not wait for it. */
		if (!ss->kv && atomic_load_explicit(&ss->cl->connected, memory_order_relaxed))
			ss_open(ss);
	}
	return NULL;
}

/* ---- libnats's delivery thread: another node asks for a session ---- */

static void ss_on_request(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;
	struct cluster_sess_request rq;
	struct chan_entry e = {.kind = CL_E_TAKE, .p1 = nm};
	struct cluster_lane *l;

	(void)nc;
	(void)sub;
	if (!cluster_cb_enter(cl, nm))
		return;
	if (!natsMsg_GetReply(nm) ||
	    cluster_sess_request_decode((const uint8_t *)natsMsg_GetData(nm),
	                                (size_t)natsMsg_GetDataLength(nm), &rq) != ST_OK) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
	} else {
		l = &cl->lanes[xw_home(cl->nworkers, rq.client.ptr, rq.client.len)];
		if (chan_push(&l->in, &e)) {
			chan_publish(&l->in);
			cluster_wake(&l->idle, l->efd);
		} else {
			/* The asking node times out and starts from the bucket: logged there. */
			natsMsg_Destroy(nm);
		}
	}
	cluster_cb_leave(cl);
}

/* ---- Set-up and shutdown ---- */

int cluster_session_init(struct cluster *cl)
{
	struct cl_sess *ss = calloc(1, sizeof(*ss));
	size_t bytes;

	if (!ss)
		return ST_ERR_NOMEM;
	cl->ss = ss;
	ss->cl = cl;
	ss->efd = -1;
	ss->seed = hmap_seed_new();
	atomic_store_explicit(&ss->move_max, CL_SS_MOVE_DEFAULT, memory_order_relaxed);
	if (cluster_sessions_bucket(cl->prefix.str, cl->prefix.len - 1u, ss->bucket,
	                            sizeof(ss->bucket)) < 0 ||
	    cluster_session_subject(cl->prefix.str, cl->prefix.len, (const uint8_t *)cl->node_id,
	                            cl->node_id_len, ss->subject, sizeof(ss->subject)) < 0)
		return ST_ERR_CONFIG;
	bytes = cl->nworkers * sizeof(*ss->lanes);
	ss->lanes = calloc(1, bytes);
	if (!ss->lanes)
		return ST_ERR_NOMEM;
	for (unsigned i = 0; i < cl->nworkers; i++)
		if (chan_init(&ss->lanes[i].jobs, CL_SS_CHAN, 0) != ST_OK ||
		    chan_init(&ss->lanes[i].answers, CL_SS_CHAN, 0) != ST_OK)
			return ST_ERR_NOMEM;
	ss->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return ss->efd < 0 ? ST_ERR_SYS : ST_OK;
}

int cluster_session_start(struct cluster *cl)
{
	struct cl_sess *ss = cl->ss;
	natsStatus s = natsConnection_Subscribe(&ss->sub, cl->nc, ss->subject, ss_on_request, cl);

	if (s != NATS_OK) {
		ss->sub = NULL;
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: cannot subscribe to %s: %s", ss->subject,
		        natsStatus_GetText(s));
		return ST_ERR_SYS;
	}
	if (pthread_create(&ss->thread, NULL, ss_main, ss) != 0) {
		log_msg(&cl->log, LOG_T_ERROR,
		        "Error: cannot start the cluster's sessions thread: %s", strerror(errno));
		return ST_ERR_SYS;
	}
	ss->thread_started = true;
	return ST_OK;
}

void cluster_session_stop(struct cluster *cl)
{
	struct cl_sess *ss = cl->ss;
	static const uint64_t one = 1;

	if (!ss)
		return;
	if (ss->thread_started) {
		atomic_store_explicit(&ss->stop, true, memory_order_release);
		if (write(ss->efd, &one, sizeof(one)) < 0)
			log_msg(&cl->log, LOG_T_ERROR, "Cluster: eventfd: %s", strerror(errno));
		pthread_join(ss->thread, NULL);
		ss->thread_started = false;
	}
	if (ss->sub) {
		natsSubscription_Unsubscribe(ss->sub);
		natsSubscription_Destroy(ss->sub);
		ss->sub = NULL;
	}
	kvStore_Destroy(ss->kv);
	ss->kv = NULL;
	jsCtx_Destroy(ss->js);
	ss->js = NULL;
}

void cluster_session_fini(struct cluster *cl)
{
	struct cl_sess *ss = cl->ss;

	if (!ss)
		return;
	for (unsigned i = 0; ss->lanes && i < cl->nworkers; i++) {
		struct cl_sslane *l = &ss->lanes[i];
		struct chan_entry e;

		if (l->jobs.slots) {
			chan_publish(&l->jobs);
			while (chan_pop(&l->jobs, &e))
				cluster_ss_free_job(e.p1);
			chan_fini(&l->jobs);
		}
		if (l->answers.slots) {
			chan_publish(&l->answers);
			while (chan_pop(&l->answers, &e)) {
				struct cl_sans *a = e.p1;

				free(a->records);
				free(a);
			}
			chan_fini(&l->answers);
		}
		hmap_fini(&l->parked);
	}
	free(ss->lanes);
	if (ss->efd >= 0)
		close(ss->efd);
	free(ss);
	cl->ss = NULL;
}

void cluster_session_figures(const struct cluster *cl, struct cluster_figures *f)
{
	const struct cl_sess *ss = cl->ss;

	f->sessions_received = atomic_load_explicit(&ss->received, memory_order_relaxed);
	f->sessions_sent = atomic_load_explicit(&ss->sent, memory_order_relaxed);
	f->sessions_from_bucket = atomic_load_explicit(&ss->from_bucket, memory_order_relaxed);
	f->sessions_messages_dropped =
	        atomic_load_explicit(&ss->msgs_dropped, memory_order_relaxed);
	f->sessions_failed = atomic_load_explicit(&ss->failed, memory_order_relaxed);
}
