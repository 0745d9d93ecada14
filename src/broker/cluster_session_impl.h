/*
 * What cluster_session.c (the sessions thread, set-up) and cluster_session_worker.c (the
 * workers' side) share. Not for other files: cluster.h is the interface.
 */
#ifndef STARLING_CLUSTER_SESSION_IMPL_H
#define STARLING_CLUSTER_SESSION_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "base/hmap.h"
#include "cluster/envelope.h"
#include "cluster/session.h"
#include "io/chan.h"

struct cluster;

#define CL_SS_CHAN       4096u /* jobs or answers in flight per worker */
#define CL_SS_API_MS     1000  /* a bucket call */
#define CL_SS_ASK_MS     1500  /* the owner's answer */
#define CL_SS_GONE_MS    10000 /* a node that did not answer is not asked again for this long */
#define CL_SS_GONE_SLOTS 8
#define CL_SS_ATTEMPTS   5 /* claims lost to another node's write before giving up */
#define CL_SS_REPLICAS   3
/* A hand-over's records at most, under NATS's default max_payload of 1 MiB. */
#define CL_SS_MOVE_DEFAULT (900u << 10)

enum {
	SJ_TAKE = 1, /* a parked CONNECT: find the session, claim it, answer the worker */
	SJ_PUT,      /* payload: the entry naming this node */
	SJ_DEL,      /* delete the entry if it names this node */
	SJ_REPLY,    /* publish payload on subject (an owner's answer) */
};

struct cl_sjob {
	uint8_t kind;
	uint16_t worker;
	uint64_t conn_id;
	char *subject;
	uint8_t *payload;
	uint32_t len;
	uint32_t idlen;
	uint8_t id[];
};

enum {
	SA_NONE = 0,   /* nothing found: a new session, or what this node holds */
	SA_MOVED,      /* from its owner */
	SA_FROM_BUCKET /* the owner did not answer: from the bucket's copy */
};

struct cl_sans {
	uint64_t conn_id;
	uint8_t how;
	uint32_t dropped;
	char from[CLUSTER_NODE_ID_MAX + 1];
	uint32_t idlen;
	uint32_t len; /* records */
	uint8_t *records;
	uint8_t id[];
};

/* A session that left this worker moments ago, and for which node (cluster_session_worker.c). */
#define CL_SS_MOVED_SLOTS 64
#define CL_SS_MOVED_MS    10000
struct cl_moved {
	uint64_t id_hash; /* XXH3 of the client id */
	uint64_t until_ms;
	char node[CLUSTER_NODE_ID_MAX + 1];
};

struct cl_sslane {
	struct chan jobs;                         /* worker -> sessions thread */
	struct chan answers;                      /* sessions thread -> worker */
	struct hmap parked;                       /* the worker's parked connections by id */
	struct cl_moved moved[CL_SS_MOVED_SLOTS]; /* the worker's, a ring */
	unsigned moved_next;
};

struct cl_sess {
	struct cluster *cl;
	struct cl_sslane *lanes;
	pthread_t thread;
	bool thread_started;
	int efd;
	_Atomic bool idle;
	_Atomic bool stop;
	jsCtx *js;
	kvStore *kv;
	bool open_logged;
	uint64_t open_retry_ms; /* after a failed open, not before this (no JetStream: no wait) */
	uint64_t seed;
	_Atomic uint32_t move_max; /* bytes a hand-over may carry (from the server's max_payload) */
	natsSubscription *sub;
	char bucket[CLUSTER_SESS_BUCKET_MAX];
	char subject[CLUSTER_SESS_SUBJECT_MAX];
	struct {
		char node[CLUSTER_NODE_ID_MAX + 1];
		uint64_t until_ms;
	} gone[CL_SS_GONE_SLOTS];
	unsigned gone_next;
	uint64_t warned_ms;
	_Atomic uint64_t received, sent, from_bucket, msgs_dropped, failed;
};

/* Frees a job and what it owns (either side). */
void cluster_ss_free_job(struct cl_sjob *j);

#endif
