/*
 * The cluster's NATS side (cluster.h has the threads): the link thread, which owns the NATS
 * connection's set-up, the node's subscriptions and every publish, and the callbacks libnats
 * runs on its own threads (messages on the single delivery thread; connection events).
 *
 * Why libnats on threads of its own and not on a worker's ring: kernel-notes/cluster.md
 * ("libnats' threads") measured both; the external event loop saves one thread and costs more
 * CPU per message, since delivery still goes through the subscription's thread. Here no worker
 * ever takes a libnats lock or waits for a connect or a reconnect.
 */
#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>
#include <xxhash.h>

#include <nats/nats.h>

#include "broker.h"
#include "cluster.h"
#include "cluster/hello.h"
#include "cluster_impl.h"
#include "xw.h"

#define CL_ORIGINS_MAX 4096 /* origin epochs remembered before the table is cleared */

/* The last message number seen from one origin worker (delivery thread only). */
struct cl_origin {
	uint32_t epoch;
	uint64_t seq;
	uint8_t len;
	uint8_t id[];
};

struct cl_origin_key {
	const uint8_t *id;
	size_t len;
	uint32_t epoch;
};

static bool cl_origin_eq(const void *val, const void *key)
{
	const struct cl_origin *o = val;
	const struct cl_origin_key *k = key;

	return o->epoch == k->epoch && o->len == k->len && memcmp(o->id, k->id, k->len) == 0;
}

static void cl_origins_clear(struct hmap *h)
{
	for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1))
		free(h->slots[i].val);
	hmap_fini(h);
}

/*
 * Whether this copy is the first: NATS gives a connection one copy per matching subscription,
 * and copies of one origin's message arrive before any copy of its next (one origin publishes
 * on one connection; servers forward in order), so a number not above the last is a copy.
 */
static bool cl_first_copy(struct cluster *cl, const struct cluster_msg *m)
{
	struct cl_origin_key k = {m->origin.ptr, m->origin.len, m->epoch};
	uint64_t hash = XXH3_64bits_withSeed(m->origin.ptr, m->origin.len, cl->seed ^ m->epoch);
	struct cl_origin *o = hmap_find(&cl->origins, hash, cl_origin_eq, &k);

	if (o) {
		if (m->seq <= o->seq)
			return false;
		o->seq = m->seq;
		return true;
	}
	if (cl->origins.count >= CL_ORIGINS_MAX)
		cl_origins_clear(&cl->origins);
	o = malloc(sizeof(*o) + m->origin.len);
	if (!o || hmap_insert(&cl->origins, hash, o) != ST_OK) {
		free(o);
		return true; /* out of memory: a copy may go through, nothing is lost */
	}
	o->epoch = m->epoch;
	o->seq = m->seq;
	o->len = (uint8_t)m->origin.len;
	memcpy(o->id, m->origin.ptr, m->origin.len);
	return true;
}

/* A callback that hands messages to workers begins: false (message destroyed) at shutdown. */
bool cluster_cb_enter(struct cluster *cl, void *nm)
{
	atomic_fetch_add_explicit(&cl->in_cb, 1, memory_order_seq_cst);
	if (!atomic_load_explicit(&cl->closing, memory_order_seq_cst))
		return true;
	atomic_fetch_sub_explicit(&cl->in_cb, 1, memory_order_release);
	natsMsg_Destroy(nm);
	return false;
}

void cluster_cb_leave(struct cluster *cl)
{
	atomic_fetch_sub_explicit(&cl->in_cb, 1, memory_order_release);
}

/* libnats's delivery thread: every subscription's messages, in the order they were read. */
static void cl_on_msg_body(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;
	struct cluster_msg m;
	struct cluster_lane *l;
	struct chan_entry e = {.kind = CL_E_MSG, .p1 = nm};

	(void)nc;
	(void)sub;
	if (cluster_env_decode((const uint8_t *)natsMsg_GetData(nm),
	                       (size_t)natsMsg_GetDataLength(nm), &m) != ST_OK) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
		return;
	}
	if (!cl_first_copy(cl, &m)) {
		atomic_fetch_add_explicit(&cl->duplicates, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
		return;
	}
	l = &cl->lanes[m.lane % cl->nworkers];
	if (!chan_push(&l->in, &e)) {
		atomic_fetch_add_explicit(&cl->dropped_in, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
		return;
	}
	chan_publish(&l->in);
	atomic_fetch_add_explicit(&cl->received, 1, memory_order_relaxed);
	cluster_wake(&l->idle, l->efd);
}

static void cl_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;

	if (!cluster_cb_enter(cl, nm))
		return;
	cl_on_msg_body(nc, sub, nm, closure);
	cluster_cb_leave(cl);
}

/* The delivery thread again: a message a shared group's queue subscription got. */
static void cl_on_qmsg_body(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cl_qgroup *g = closure;
	struct cluster *cl = g->cl;
	struct cluster_msg m;
	struct cluster_lane *l = &cl->lanes[g->owner];
	struct chan_entry e = {.kind = CL_E_QMSG, .p1 = nm, .p2 = g};

	(void)nc;
	(void)sub;
	if (cluster_env_decode((const uint8_t *)natsMsg_GetData(nm),
	                       (size_t)natsMsg_GetDataLength(nm), &m) != ST_OK) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
		return;
	}
	if (!chan_push(&l->in, &e)) {
		atomic_fetch_add_explicit(&cl->dropped_in, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
		return;
	}
	chan_publish(&l->in);
	atomic_fetch_add_explicit(&cl->received, 1, memory_order_relaxed);
	cluster_wake(&l->idle, l->efd);
}

static void cl_on_qmsg(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = ((struct cl_qgroup *)closure)->cl;

	if (!cluster_cb_enter(cl, nm))
		return;
	cl_on_qmsg_body(nc, sub, nm, closure);
	cluster_cb_leave(cl);
}

/* The delivery thread: another node's client connected; the client id's home worker looks. */
static void cl_on_hello_body(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;
	struct cluster_hello h;
	struct cluster_lane *l;
	struct chan_entry e = {.kind = CL_E_HELLO, .p1 = nm};

	(void)nc;
	(void)sub;
	if (cluster_hello_decode((const uint8_t *)natsMsg_GetData(nm),
	                         (size_t)natsMsg_GetDataLength(nm), &h) != ST_OK) {
		atomic_fetch_add_explicit(&cl->invalid, 1, memory_order_relaxed);
		natsMsg_Destroy(nm);
		return;
	}
	l = &cl->lanes[xw_home(cl->nworkers, h.client.ptr, h.client.len)];
	if (!chan_push(&l->in, &e)) {
		/* Rare (a control message behind a full queue of messages): logged, not counted. */
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: a connect of client %.*s on node %.*s was not checked here "
		        "(queue "
		        "full).",
		        (int)h.client.len, (const char *)h.client.ptr, (int)h.node.len,
		        (const char *)h.node.ptr);
		natsMsg_Destroy(nm);
		return;
	}
	chan_publish(&l->in);
	cluster_wake(&l->idle, l->efd);
}

static void cl_on_hello(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;

	if (!cluster_cb_enter(cl, nm))
		return;
	cl_on_hello_body(nc, sub, nm, closure);
	cluster_cb_leave(cl);
}

void cluster_msg_view(void *nm, const char **subject, const uint8_t **data, uint32_t *len)
{
	*subject = natsMsg_GetSubject(nm);
	*data = (const uint8_t *)natsMsg_GetData(nm);
	*len = (uint32_t)natsMsg_GetDataLength(nm);
}

void cluster_msg_free(void *nm)
{
	natsMsg_Destroy(nm);
}

static void cl_log_url(struct cluster *cl, natsConnection *nc, const char *what)
{
	char url[256] = "";

	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	log_msg(&cl->log, LOG_T_INFORMATION, "Cluster: %s %s.", what, url);
}

static void cl_on_connected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;
	char what[CLUSTER_NODE_ID_MAX + 128];

	atomic_store_explicit(&cl->connected, true, memory_order_relaxed);
	snprintf(what, sizeof(what), "node %s of cluster %.*s connected to NATS at", cl->node_id,
	         (int)cl->prefix.len - 1, cl->prefix.str);
	cl_log_url(cl, nc, what);
}

/*
 * The shared groups' connection came up in the background. Its callback must exist: without
 * one, a connect that cannot be made at once blocks until it can (libnats's rule), and the
 * broker would not serve while NATS is away.
 */
static void cl_on_qconnected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;

	cl_log_url(cl, nc, "shared subscriptions' connection up at");
}

static void cl_on_disconnected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;

	(void)nc;
	if (!atomic_exchange_explicit(&cl->connected, false, memory_order_relaxed) ||
	    atomic_load_explicit(&cl->stop, memory_order_acquire))
		return;
	log_msg(&cl->log, LOG_T_WARNING,
	        "Cluster: disconnected from NATS; messages to and from other nodes are lost until "
	        "it reconnects.");
}

static void cl_on_reconnected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;

	atomic_store_explicit(&cl->connected, true, memory_order_relaxed);
	cl_log_url(cl, nc, "reconnected to NATS at");
}

static void cl_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	struct cluster *cl = closure;

	struct timespec ts;
	uint64_t now, last;

	(void)nc;
	(void)sub;
	/* Slow consumers are counted from the subscriptions' own counts (cl_count_slow). */
	if (err == NATS_SLOW_CONSUMER)
		return;
	/* With NATS gone, libnats reports the same errors several times a second (a missed
	 * heartbeat per consumer, a timeout per request): one line per 10 s, and how many more. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	last = atomic_load_explicit(&cl->error_logged_ms, memory_order_relaxed);
	if ((last && now < last + CL_ERROR_LOG_MS) ||
	    !atomic_compare_exchange_strong_explicit(&cl->error_logged_ms, &last, now,
	                                             memory_order_relaxed, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&cl->errors_unlogged, 1, memory_order_relaxed);
		return;
	}
	uint64_t more = atomic_exchange_explicit(&cl->errors_unlogged, 0, memory_order_relaxed);

	if (more)
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: NATS error: %s (and %" PRIu64 " more in the last %d s).",
		        natsStatus_GetText(err), more, CL_ERROR_LOG_MS / 1000);
	else
		log_msg(&cl->log, LOG_T_WARNING, "Cluster: NATS error: %s",
		        natsStatus_GetText(err));
}

/*
 * The options of both connections; `queue`: the shared groups' one, which gets this node's own
 * messages too (echo) and says nothing of the node's state (the data connection's callbacks).
 */
static natsOptions *cl_options(struct cluster *cl, bool queue)
{
	const struct config_cluster *c = &cl->b->cfg.cluster;
	const char *urls[CONFIG_CLUSTER_URLS_MAX];
	char store[CONFIG_CLUSTER_URLS_MAX][sizeof(c->urls)];
	char name[CLUSTER_NODE_ID_MAX + 8];
	natsOptions *o = NULL;
	natsStatus s;

	for (unsigned i = 0; i < c->nurls; i++) {
		config_cluster_url(c, i, store[i], sizeof(store[i]));
		urls[i] = store[i];
	}
	snprintf(name, sizeof(name), "%s%s", cl->node_id, queue ? "/shared" : "");
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, urls, (int)c->nurls);
	/* Each node names its own server first: spread over the servers, not all on one. */
	if (s == NATS_OK)
		s = natsOptions_SetNoRandomize(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, name);
	if (s == NATS_OK && c->user[0])
		s = natsOptions_SetUserInfo(o, c->user, c->password);
	if (s == NATS_OK && (c->cafile[0] || c->certfile[0]))
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && c->cafile[0])
		s = natsOptions_LoadCATrustedCertificates(o, c->cafile);
	if (s == NATS_OK && c->certfile[0])
		s = natsOptions_LoadCertificatesChain(o, c->certfile, c->keyfile);
	/* This node delivers its own messages locally: NATS must not send them back. */
	if (s == NATS_OK)
		s = natsOptions_SetNoEcho(o, !queue);
	/* One delivery thread for every subscription: copies of a message stay adjacent. */
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 250);
	/* A dead server is noticed in seconds, not the two minutes of NATS's default. */
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(o, 2);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, cl_on_error, cl);
	if (s == NATS_OK && !queue)
		s = natsOptions_SetDisconnectedCB(o, cl_on_disconnected, cl);
	if (s == NATS_OK && !queue)
		s = natsOptions_SetReconnectedCB(o, cl_on_reconnected, cl);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(
		        o, true, queue ? cl_on_qconnected : cl_on_connected, cl);
	if (s != NATS_OK) {
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: NATS options: %s",
		        nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
		natsOptions_Destroy(o);
		return NULL;
	}
	return o;
}

int cluster_link_connect(struct cluster *cl)
{
	natsConnection *nc = NULL, *qc = NULL;
	natsSubscription *hello = NULL;
	natsStatus s;

	cl->opts = cl_options(cl, false);
	cl->qopts = cl_options(cl, true);
	if (!cl->opts || !cl->qopts)
		return ST_ERR_CONFIG;
	s = natsConnection_Connect(&nc, cl->opts);
	if (s == NATS_OK) {
		cl_on_connected(nc, cl);
	} else if (s == NATS_NOT_YET_CONNECTED) {
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: no NATS server answers yet (%s); trying in the background.",
		        cl->b->cfg.cluster.urls);
	} else {
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: cannot connect to NATS: %s",
		        natsStatus_GetText(s));
		return ST_ERR_SYS;
	}
	cl->nc = nc;
	snprintf(cl->hello_subject, sizeof(cl->hello_subject), "%ss.c", cl->prefix.str);
	s = natsConnection_Subscribe(&hello, nc, cl->hello_subject, cl_on_hello, cl);
	cl->hello_sub = hello;
	if (s != NATS_OK) {
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: cannot subscribe to %s: %s",
		        cl->hello_subject, natsStatus_GetText(s));
		return ST_ERR_SYS;
	}
	s = natsConnection_Connect(&qc, cl->qopts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: cannot connect to NATS: %s",
		        natsStatus_GetText(s));
		return ST_ERR_SYS;
	}
	cl->qc = qc;
	return ST_OK;
}

struct cl_filter_key {
	const uint8_t *f;
	size_t len;
};

static bool cl_filter_eq(const void *val, const void *key)
{
	const struct cl_filter *f = val;
	const struct cl_filter_key *k = key;

	return f->len == k->len && memcmp(f->filter, k->f, k->len) == 0;
}

static bool cl_subscribe(struct cluster *cl, struct cl_filter *f, const char *subject)
{
	natsSubscription *sub = NULL;
	natsStatus s = natsConnection_Subscribe(&sub, cl->nc, subject, cl_on_msg, cl);

	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, CL_PENDING_MSGS, CL_PENDING_BYTES);
	if (s != NATS_OK) {
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: cannot subscribe to %s: %s", subject,
		        natsStatus_GetText(s));
		natsSubscription_Destroy(sub);
		return false;
	}
	f->subs[f->nsubs++] = sub;
	atomic_fetch_add_explicit(&cl->nsubs, 1, memory_order_relaxed);
	return true;
}

/* The node's first session with this filter: its NATS subscriptions. */
static void cl_filter_open(struct cluster *cl, struct cl_filter *f)
{
	char subj[CLUSTER_SUBJECT_MAX + 1], parent[CLUSTER_SUBJECT_MAX + 1];
	size_t parent_len = 0;
	long n = cluster_subjects_of_filter(&cl->prefix, f->filter, f->len, subj, sizeof(subj),
	                                    &parent_len);

	if (n == CLUSTER_MAP_LOCAL)
		return; /* $SYS/...: this node's own */
	if (n < 0) {
		atomic_fetch_add_explicit(&cl->too_long, 1, memory_order_relaxed);
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: the filter %.*s has no NATS subject (too long once escaped): it "
		        "gets this node's messages only.",
		        f->len > 200 ? 200 : (int)f->len, (const char *)f->filter);
		return;
	}
	if (!cl_subscribe(cl, f, subj))
		return;
	if (parent_len) {
		memcpy(parent, subj, parent_len);
		parent[parent_len] = '\0';
		cl_subscribe(cl, f, parent);
	}
}

static void cl_filter_close(struct cluster *cl, struct cl_filter *f)
{
	for (unsigned i = 0; i < f->nsubs; i++) {
		natsSubscription_Unsubscribe(f->subs[i]);
		natsSubscription_Destroy(f->subs[i]);
		atomic_fetch_sub_explicit(&cl->nsubs, 1, memory_order_relaxed);
	}
	f->nsubs = 0;
}

static void cl_interest(struct cluster *cl, const uint8_t *filter, size_t len, bool add)
{
	struct cl_filter_key k = {filter, len};
	uint64_t hash = XXH3_64bits_withSeed(filter, len, cl->seed);
	struct cl_filter *f = hmap_find(&cl->filters, hash, cl_filter_eq, &k);

	if (!add) {
		if (!f || --f->count > 0)
			return;
		cl_filter_close(cl, f);
		hmap_remove(&cl->filters, hash, f);
		free(f);
		return;
	}
	if (f) {
		f->count++;
		return;
	}
	f = calloc(1, sizeof(*f) + len);
	if (!f || hmap_insert(&cl->filters, hash, f) != ST_OK) {
		free(f);
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: out of memory subscribing.");
		return;
	}
	f->count = 1;
	f->len = (uint16_t)len;
	memcpy(f->filter, filter, len);
	cl_filter_open(cl, f);
}

static bool cl_qgroup_eq(const void *val, const void *key)
{
	const struct cl_qgroup *g = val;
	const struct cl_filter_key *k = key;

	return g->len == k->len && memcmp(g->key, k->f, k->len) == 0;
}

static void cl_qgroup_close(struct cluster *cl, struct cl_qgroup *g)
{
	for (unsigned i = 0; i < g->nsubs; i++) {
		natsSubscription_Unsubscribe(g->subs[i]);
		natsSubscription_Destroy(g->subs[i]);
		atomic_fetch_sub_explicit(&cl->nsubs, 1, memory_order_relaxed);
	}
	g->nsubs = 0;
}

/* A cluster-wide shared group: the node joins its queue group on NATS, or leaves it. */
static void cl_qgroup(struct cluster *cl, const uint8_t *key, size_t len, bool add)
{
	char queue[CLUSTER_SUBJECT_MAX + 1], subj[CLUSTER_SUBJECT_MAX + 1];
	struct cl_filter_key k = {key, len};
	uint64_t hash = XXH3_64bits_withSeed(key, len, cl->seed);
	struct cl_qgroup *g = hmap_find(&cl->qgroups, hash, cl_qgroup_eq, &k);
	size_t qlen, parent = 0;

	if (!add) {
		if (!g)
			return;
		cl_qgroup_close(cl, g);
		hmap_remove(&cl->qgroups, hash, g);
		g->next_retired = cl->retired;
		cl->retired = g;
		return;
	}
	if (g || cluster_subjects_of_share(&cl->prefix, key, len, queue, sizeof(queue), &qlen, subj,
	                                   sizeof(subj), &parent) < 0)
		return; /* one group per key and node; the worker checked the mapping */
	g = calloc(1, sizeof(*g) + len);
	if (!g || hmap_insert(&cl->qgroups, hash, g) != ST_OK) {
		free(g);
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: out of memory joining a shared group.");
		return;
	}
	g->cl = cl;
	g->owner = (uint16_t)xw_home(cl->nworkers, key, len);
	g->len = (uint16_t)len;
	memcpy(g->key, key, len);
	for (int i = 0; i < (parent ? 2 : 1); i++) {
		natsSubscription *sub = NULL;
		natsStatus s;

		if (i == 1)
			subj[parent] = '\0';
		s = natsConnection_QueueSubscribe(&sub, cl->qc, subj, queue, cl_on_qmsg, g);
		if (s == NATS_OK)
			s = natsSubscription_SetPendingLimits(sub, CL_PENDING_MSGS,
			                                      CL_PENDING_BYTES);
		if (s != NATS_OK) {
			log_msg(&cl->log, LOG_T_ERROR, "Cluster: cannot join queue %s on %s: %s",
			        queue, subj, natsStatus_GetText(s));
			natsSubscription_Destroy(sub);
			continue;
		}
		g->subs[g->nsubs++] = sub;
		atomic_fetch_add_explicit(&cl->nsubs, 1, memory_order_relaxed);
	}
}

/* Tells the other nodes that a client connected here (cluster/hello.h). */
static void cl_announce(struct cluster *cl, const uint8_t *id, size_t len, const uint8_t *ns)
{
	struct cluster_hello h = {
	        .node = {(const uint8_t *)cl->node_id, (uint32_t)cl->node_id_len},
	        .epoch = cl->epoch,
	        .client = {id, (uint32_t)len},
	};
	uint8_t buf[4 + CLUSTER_NODE_ID_MAX + 14 + 65536];
	long n;

	memcpy(&h.since_ns, ns, sizeof(h.since_ns));
	n = cluster_hello_encode(&h, buf, sizeof(buf));
	if (n < 0 || natsConnection_Publish(cl->nc, cl->hello_subject, buf, (int)n) != NATS_OK)
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: the connect of client %.*s could not be announced.", (int)len,
		        (const char *)id);
}

/* One worker's buffer: its records in order. */
static void cl_records(struct cluster *cl, uint8_t *buf, uint32_t len)
{
	uint32_t off = CL_BUF_HEAD;
	/* libnats's write buffer grows without a bound of its own while the server reads
	 * slowly: past CL_NATS_BUFFERED_MAX this buffer's messages are dropped, and counted. */
	bool full = natsConnection_Buffered(cl->nc) > CL_NATS_BUFFERED_MAX;

	while (off + sizeof(struct cl_rec) <= len) {
		const struct cl_rec *r = (const struct cl_rec *)(buf + off);
		const uint8_t *a = buf + off + sizeof(*r);

		switch (r->type) {
		case CL_REC_PUB:
		case CL_REC_PUB_RETAIN: {
			/* A retained write still goes to the bucket when the live copy is dropped:
			 * it is state, rarer, and the watcher's fence counts it as taken. */
			natsStatus s = full ? NATS_INSUFFICIENT_BUFFER
			                    : natsConnection_Publish(cl->nc, (const char *)a,
			                                             a + r->a, (int)r->b);

			if (s == NATS_OK)
				atomic_fetch_add_explicit(&cl->sent, 1, memory_order_relaxed);
			else
				atomic_fetch_add_explicit(&cl->dropped_out, 1,
				                          memory_order_relaxed);
			if (r->type == CL_REC_PUB_RETAIN)
				cluster_retain_put(cl, (const char *)a, a + r->a, r->b);
			break;
		}
		case CL_REC_SUB:
		case CL_REC_UNSUB:
			cl_interest(cl, a, r->a, r->type == CL_REC_SUB);
			break;
		case CL_REC_HELLO:
			cl_announce(cl, a, r->a, a + r->a);
			break;
		case CL_REC_QSUB:
		case CL_REC_QUNSUB:
			cl_qgroup(cl, a, r->a, r->type == CL_REC_QSUB);
			break;
		}
		off += (uint32_t)((sizeof(*r) + r->a + r->b + 7u) & ~7u);
	}
	free(buf);
}

/* Takes every buffer the workers handed over; true if there was any. */
static bool cl_take(struct cluster *cl)
{
	bool any = false;

	for (unsigned i = 0; i < cl->nworkers; i++) {
		struct cluster_lane *l = &cl->lanes[i];
		struct chan_entry e;
		bool got = false;

		while (chan_pop(&l->out, &e)) {
			cl_records(cl, e.p1, e.arg);
			got = true;
		}
		if (got)
			chan_release(&l->out);
		any |= got;
	}
	return any;
}

static bool cl_pending(struct cluster *cl)
{
	for (unsigned i = 0; i < cl->nworkers; i++)
		if (chan_peek(&cl->lanes[i].out))
			return true;
	return false;
}

/* libnats counts what each subscription dropped as a slow consumer; summed once a second. */
static void cl_count_slow(struct cluster *cl, uint64_t *seen)
{
	uint64_t total = 0;
	struct hmap *h = &cl->filters;

	for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1)) {
		struct cl_filter *f = h->slots[i].val;

		for (unsigned j = 0; j < f->nsubs; j++) {
			int64_t d = 0;

			if (natsSubscription_GetDropped(f->subs[j], &d) == NATS_OK && d > 0)
				total += (uint64_t)d;
		}
	}
	h = &cl->qgroups;
	for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1)) {
		struct cl_qgroup *g = h->slots[i].val;

		for (unsigned j = 0; j < g->nsubs; j++) {
			int64_t d = 0;

			if (natsSubscription_GetDropped(g->subs[j], &d) == NATS_OK && d > 0)
				total += (uint64_t)d;
		}
	}
	/* A subscription closed takes its count with it: only growth is added. */
	if (total > *seen)
		atomic_fetch_add_explicit(&cl->dropped_in, total - *seen, memory_order_relaxed);
	*seen = total;
}

void *cluster_link_main(void *arg)
{
	struct cluster *cl = arg;
	uint64_t slow_seen = 0;

	while (!atomic_load_explicit(&cl->stop, memory_order_acquire)) {
		struct pollfd pfd = {.fd = cl->efd, .events = POLLIN};
		uint64_t v;

		if (cl_take(cl))
			continue;
		atomic_store_explicit(&cl->idle, true, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst);
		if (cl_pending(cl) || atomic_load_explicit(&cl->stop, memory_order_acquire)) {
			atomic_store_explicit(&cl->idle, false, memory_order_relaxed);
			continue;
		}
		if (poll(&pfd, 1, 1000) > 0 && read(cl->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_msg(&cl->log, LOG_T_ERROR, "Cluster: eventfd: %s", strerror(errno));
		atomic_store_explicit(&cl->idle, false, memory_order_relaxed);
		cl_count_slow(cl, &slow_seen);
	}
	cl_take(cl);
	return NULL;
}

int cluster_init(struct broker *b)
{
	const struct config_cluster *c = &b->cfg.cluster;
	const char *name = c->name[0] ? c->name : CLUSTER_NAME_DEFAULT;
	struct cluster *cl;
	size_t bytes;

	if (!c->urls[0])
		return ST_OK;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return ST_ERR_NOMEM;
	b->cluster = cl;
	cl->b = b;
	cl->log = b->log;
	cl->efd = -1;
	cl->nworkers = b->nworkers;
	if (cluster_prefix_init(&cl->prefix, name, strlen(name)) != ST_OK) {
		log_msg(&b->log, LOG_T_ERROR,
		        "Error: cluster_name \"%s\": tokens of A-Z a-z 0-9 _ - joined by single "
		        "dots, "
		        "at most %d bytes, not starting with _",
		        name, CLUSTER_NAME_MAX);
		return ST_ERR_CONFIG;
	}
	if (c->node_id[0]) {
		snprintf(cl->node_id, sizeof(cl->node_id), "%s", c->node_id);
	} else {
		char host[200] = "localhost";

		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		snprintf(cl->node_id, sizeof(cl->node_id), "%s:%u", host,
		         b->nlisten ? b->listen_ports[0] : 0);
	}
	cl->node_id_len = strlen(cl->node_id);
	if (!cluster_node_id_is_valid((const uint8_t *)cl->node_id, cl->node_id_len)) {
		log_msg(&b->log, LOG_T_ERROR,
		        "Error: cluster_node_id \"%s\": 1 to %d printable ASCII characters without "
		        "spaces",
		        cl->node_id, CLUSTER_NODE_ID_MAX);
		return ST_ERR_CONFIG;
	}
	if (getrandom(&cl->epoch, sizeof(cl->epoch), 0) != sizeof(cl->epoch))
		cl->epoch = (uint32_t)time(NULL);
	cl->epoch &= ~1023u;
	cl->seed = hmap_seed_new();
	bytes = ((b->nworkers * sizeof(*cl->lanes)) + 63) & ~(size_t)63;
	cl->lanes = aligned_alloc(64, bytes);
	if (!cl->lanes)
		return ST_ERR_NOMEM;
	memset(cl->lanes, 0, bytes);
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct cluster_lane *l = &cl->lanes[i];

		l->efd = -1;
		l->epoch = cl->epoch + i;
		if (chan_init(&l->out, CL_CHAN_OUT, 0) != ST_OK ||
		    chan_init(&l->in, CL_CHAN_IN, 0) != ST_OK)
			return ST_ERR_NOMEM;
		l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (l->efd < 0)
			return ST_ERR_SYS;
	}
	cl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cl->efd < 0)
		return ST_ERR_SYS;
	int ret = cluster_retain_init(cl);

	return ret != ST_OK ? ret : cluster_session_init(cl);
}

int cluster_start(struct broker *b)
{
	struct cluster *cl = b->cluster;

	if (!cl)
		return ST_OK;
	/* Every subscription delivers on one thread: the order the connection read them in. */
	if (nats_SetMessageDeliveryPoolSize(1) != NATS_OK) {
		log_msg(&b->log, LOG_T_ERROR, "Error: cannot start the NATS library.");
		return ST_ERR_SYS;
	}
	if (cluster_link_connect(cl) != ST_OK)
		return ST_ERR_CONFIG;
	if (pthread_create(&cl->thread, NULL, cluster_link_main, cl) != 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: cannot start the cluster thread: %s",
		        strerror(errno));
		return ST_ERR_SYS;
	}
	pthread_setname_np(cl->thread, "st-cluster");
	cl->thread_started = true;
	if (cluster_session_start(cl) != ST_OK)
		return ST_ERR_SYS;
	return cluster_retain_start(cl);
}

/*
 * No callback hands anything to a worker from now on, and what the workers' channels still
 * hold is destroyed while the library can still take it back (the workers have stopped).
 */
static void cl_quiesce(struct cluster *cl)
{
	atomic_store_explicit(&cl->closing, true, memory_order_seq_cst);
	while (atomic_load_explicit(&cl->in_cb, memory_order_seq_cst) != 0)
		sched_yield();
	for (unsigned i = 0; cl->lanes && i < cl->nworkers; i++) {
		struct cluster_lane *l = &cl->lanes[i];
		struct chan_entry e;

		if (!l->in.slots)
			continue;
		chan_publish(&l->in);
		while (chan_pop(&l->in, &e))
			natsMsg_Destroy(e.p1);
		chan_release(&l->in);
	}
}

void cluster_link_close(struct cluster *cl)
{
	struct hmap *h = &cl->filters;

	if (cl->nc) {
		/* What the workers handed over last leaves before the connection closes. */
		natsConnection_FlushTimeout(cl->nc, 1000);
		for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1))
			cl_filter_close(cl, h->slots[i].val);
		if (cl->hello_sub) {
			natsSubscription_Unsubscribe(cl->hello_sub);
			natsSubscription_Destroy(cl->hello_sub);
			cl->hello_sub = NULL;
		}
		natsConnection_Destroy(cl->nc);
		cl->nc = NULL;
	}
	if (cl->qc) {
		h = &cl->qgroups;
		for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1))
			cl_qgroup_close(cl, h->slots[i].val);
		natsConnection_Destroy(cl->qc);
		cl->qc = NULL;
	}
	natsOptions_Destroy(cl->opts);
	natsOptions_Destroy(cl->qopts);
	cl->opts = cl->qopts = NULL;
	cl_quiesce(cl);
	/*
	 * Closing a subscription queues a control message for libnats's delivery thread, which
	 * frees it through the library's garbage collector; nats_CloseAndWait stops both threads
	 * at once, and a message handed to the collector after it exited is never freed (seen as
	 * one 106-byte natsMsg leaked at exit, about one stop in ten). Let the delivery thread
	 * take them first: it does in microseconds.
	 */
	nats_Sleep(50);
	/* libnats's threads are gone after this: no callback runs any more. */
	if (nats_CloseAndWait(2000) != NATS_OK)
		log_msg(&cl->log, LOG_T_WARNING,
		        "Cluster: the NATS library's threads did not end within 2 s.");
}

void cluster_stop(struct broker *b)
{
	struct cluster *cl = b->cluster;
	static const uint64_t one = 1;

	if (!cl || !cl->thread_started)
		return;
	atomic_store_explicit(&cl->stop, true, memory_order_release);
	if (write(cl->efd, &one, sizeof(one)) < 0)
		log_msg(&cl->log, LOG_T_ERROR, "Cluster: eventfd: %s", strerror(errno));
	pthread_join(cl->thread, NULL);
	cl->thread_started = false;
	cluster_retain_stop(cl);
	cluster_session_stop(cl);
	cluster_link_close(cl);
}

void cluster_fini(struct broker *b)
{
	struct cluster *cl = b->cluster;
	struct hmap *h;

	if (!cl)
		return;
	h = &cl->filters;
	for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1))
		free(h->slots[i].val);
	hmap_fini(h);
	h = &cl->qgroups;
	for (size_t i = hmap_next(h, 0); i < hmap_cap(h); i = hmap_next(h, i + 1))
		free(h->slots[i].val);
	hmap_fini(h);
	while (cl->retired) {
		struct cl_qgroup *g = cl->retired;

		cl->retired = g->next_retired;
		free(g);
	}
	cl_origins_clear(&cl->origins);
	cluster_retain_fini(cl);
	cluster_session_fini(cl);
	for (unsigned i = 0; cl->lanes && i < cl->nworkers; i++) {
		struct cluster_lane *l = &cl->lanes[i];
		struct chan_entry e;

		if (l->out.slots) {
			chan_publish(&l->out);
			while (chan_pop(&l->out, &e))
				free(e.p1);
			chan_fini(&l->out);
		}
		/* Emptied by cl_quiesce before libnats closed. */
		if (l->in.slots)
			chan_fini(&l->in);
		while (l->held_head) {
			struct cl_held hd;

			memcpy(&hd, l->held_head, sizeof(hd));
			free(l->held_head);
			l->held_head = hd.next;
		}
		free(l->buf);
		free(l->topic);
		if (l->efd >= 0)
			close(l->efd);
	}
	free(cl->lanes);
	if (cl->efd >= 0)
		close(cl->efd);
	free(cl);
	b->cluster = NULL;
}

bool cluster_figures(const struct broker *b, struct cluster_figures *f)
{
	const struct cluster *cl = b->cluster;
	uint64_t local_dropped = 0;

	if (!cl)
		return false;
	for (unsigned i = 0; i < cl->nworkers; i++)
		local_dropped += atomic_load_explicit(&cl->lanes[i].dropped, memory_order_relaxed);
	*f = (struct cluster_figures){
	        .connected = atomic_load_explicit(&cl->connected, memory_order_relaxed),
	        .subscriptions = atomic_load_explicit(&cl->nsubs, memory_order_relaxed),
	        .sent = atomic_load_explicit(&cl->sent, memory_order_relaxed),
	        .received = atomic_load_explicit(&cl->received, memory_order_relaxed),
	        .duplicates = atomic_load_explicit(&cl->duplicates, memory_order_relaxed),
	        .dropped_out = local_dropped +
	                       atomic_load_explicit(&cl->dropped_out, memory_order_relaxed),
	        .dropped_in = atomic_load_explicit(&cl->dropped_in, memory_order_relaxed),
	        .invalid = atomic_load_explicit(&cl->invalid, memory_order_relaxed),
	        .too_long = atomic_load_explicit(&cl->too_long, memory_order_relaxed),
	};
	f->dropped = f->dropped_out + f->dropped_in;
	cluster_retain_figures(cl, f);
	cluster_session_figures(cl, f);
	return true;
}
