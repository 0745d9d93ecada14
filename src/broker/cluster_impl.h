/*
 * What cluster.c (the workers' side) and cluster_link.c (the link thread and libnats's
 * delivery thread) share. Not for other files: cluster.h is the interface.
 */
#ifndef STARLING_CLUSTER_IMPL_H
#define STARLING_CLUSTER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/hmap.h"
#include "base/log.h"
#include "cluster/envelope.h"
#include "cluster/subject.h"
#include "io/chan.h"
#include "io/ring.h"

/*
 * A bulk buffer: a head of CL_BUF_HEAD bytes (struct cl_held: how buffers that wait for room
 * in the channel are linked), then records one after the other, each 8-byte aligned:
 *   u8 type, u8 0, u16 a (bytes of the first field with its NUL: the subject or filter),
 *   u32 b (bytes of the second: the NATS payload), then a bytes, then b bytes.
 */
enum {
	CL_REC_PUB = 1,        /* subject, NATS payload (envelope head + payload) */
	CL_REC_SUB = 2,        /* an MQTT filter a session gained */
	CL_REC_UNSUB = 3,      /* an MQTT filter a session lost */
	CL_REC_QSUB = 4,       /* a cluster-wide shared group made: "$share/GROUP/FILTER" */
	CL_REC_QUNSUB = 5,     /* and dropped */
	CL_REC_HELLO = 6,      /* a client connected: its id, then 8 bytes of wall-clock ns */
	CL_REC_PUB_RETAIN = 7, /* as CL_REC_PUB, and a retained write for the bucket */
};

struct cl_rec {
	uint8_t type;
	uint8_t zero;
	uint16_t a;
	uint32_t b;
};

struct cl_held {
	uint8_t *next; /* the next held buffer, or NULL */
	uint32_t len;  /* bytes used in this one */
};

#define CL_BUF_HEAD          16u
#define CL_BUF_SIZE          65536u      /* a bulk buffer, unless one record needs more */
#define CL_BACKLOG_MAX       (16u << 20) /* bytes a worker keeps when its channel is full */
#define CL_CHAN_OUT          256u        /* buffers in flight from a worker to the link */
#define CL_CHAN_IN           16384u      /* messages in flight from NATS to a worker */
#define CL_NATS_BUFFERED_MAX (64 << 20)  /* bytes libnats may hold unsent */
#define CL_PENDING_MSGS      (1 << 20)   /* libnats's queue per subscription, messages */
#define CL_PENDING_BYTES     (256 << 20) /* and bytes, before it drops (a slow consumer) */
#define CL_ERROR_LOG_MS      10000       /* libnats's errors: a line per this long at most */

/* Channel entry kinds. */
enum {
	CL_E_BUF = 1,   /* out: p1 a bulk buffer of arg bytes (the link frees it) */
	CL_E_MSG = 2,   /* in: p1 a natsMsg (the worker destroys it) */
	CL_E_QMSG = 3,  /* in: p1 a natsMsg for the shared group p2 (a struct cl_qgroup) */
	CL_E_HELLO = 4, /* in: p1 a natsMsg announcing a client's connect on another node */
	CL_E_TAKE = 5,  /* in: p1 a natsMsg, another node's request for a session (its reply) */
	/* cluster_session.c's own channels: a job for the sessions thread, an answer from it. */
	CL_E_SJOB = 6,
	CL_E_SANSWER = 7,
};

/* One worker's side; 64-byte aligned (the array is aligned_alloc'd). */
struct cluster_lane {
	struct chan out;                /* worker -> link thread: bulk buffers */
	struct chan in;                 /* delivery thread -> worker: messages */
	_Alignas(64) _Atomic bool idle; /* the worker waits, or is about to */
	int efd;                        /* its doorbell, read on its ring */
	/* Worker-owned from here. */
	_Alignas(64) struct ring_io efd_io; /* the eventfd's read */
	uint64_t efd_val;                   /* its target */
	bool efd_armed;                     /* a read is submitted */
	struct worker *w;
	uint8_t *buf;      /* the buffer being filled, or NULL */
	uint32_t len, cap; /* bytes used, allocated */
	/* Buffers the channel had no room for, oldest first (singly linked through their first
	 * 8 bytes, which a record never uses: the first record starts at 8). */
	uint8_t *held_head, *held_tail;
	uint64_t held_bytes;
	uint32_t epoch;           /* the cluster's epoch + this worker's index: its own sequence */
	uint64_t seq;             /* this worker's last message number */
	uint8_t *topic;           /* a topic decoded from a subject (CLUSTER_SUBJECT_MAX bytes) */
	_Atomic uint64_t dropped; /* records lost here (backlog), written by the worker */
};

/* A distinct filter of the node and its NATS subscriptions (link thread only). */
struct cl_filter {
	uint32_t count;   /* sessions holding it, over all workers */
	uint16_t len;     /* bytes of filter */
	uint8_t nsubs;    /* NATS subscriptions: 0 ($SYS, too long), 1, or 2 ("a/#") */
	void *subs[2];    /* natsSubscription * */
	uint8_t filter[]; /* the MQTT filter */
};

/*
 * A cluster-wide shared group's NATS queue subscriptions (link thread). The delivery thread
 * reads key and owner through the subscriptions' closure, and a message in a worker's channel
 * still names it after the group is gone: dropped groups are kept until cluster_fini.
 */
struct cl_qgroup {
	struct cluster *cl;
	struct cl_qgroup *next_retired; /* on cl->retired once dropped */
	uint16_t owner;                 /* the worker that holds the group (xw_home of the key) */
	uint16_t len;                   /* bytes of key */
	uint8_t nsubs;
	void *subs[2]; /* natsSubscription * */
	uint8_t key[]; /* "$share/GROUP/FILTER" */
};

struct cluster {
	struct broker *b;
	struct log log;               /* the broker's, borrowed */
	struct cluster_prefix prefix; /* "<cluster_name>." */
	char node_id[CLUSTER_NODE_ID_MAX + 1];
	size_t node_id_len;
	uint32_t epoch; /* this run's incarnation: random, low 10 bits 0 */
	unsigned nworkers;
	struct cluster_lane *lanes; /* one per worker */

	/* The link thread. */
	pthread_t thread;
	bool thread_started;
	int efd;           /* its doorbell */
	_Atomic bool idle; /* it waits, or is about to */
	_Atomic bool stop; /* cluster_stop asked it to finish */
	/* Shutdown: once `closing` is set and `in_cb` seen at 0, no callback hands a message to
	 * a worker any more (they destroy it themselves), so what the channels hold can be
	 * destroyed while libnats still lives: natsMsg_Destroy after nats_CloseAndWait crashes
	 * in libnats's garbage collector. */
	_Atomic bool closing;
	_Atomic int in_cb;
	void *nc; /* natsConnection *: publishes, plain subscriptions */
	/* natsConnection *: the shared groups' queue subscriptions. A connection of its own
	 * because it must receive this node's own messages too (the queue group may pick this
	 * node), which the no-echo connection never does. */
	void *qc;
	struct hmap qgroups;                      /* struct cl_qgroup by XXH3 of the key */
	char hello_subject[CLUSTER_NAME_MAX + 8]; /* "<cluster_name>.s.c": connects announced */
	void *hello_sub;                          /* natsSubscription * of it */
	struct cl_qgroup *retired;                /* dropped groups, freed by cluster_fini */
	void *opts;                               /* natsOptions * of nc */
	void *qopts;                              /* natsOptions * of qc */
	struct hmap filters;                      /* struct cl_filter by XXH3 of the filter */
	uint64_t seed;

	/* The delivery thread's (libnats's): the last message number seen per origin. */
	struct hmap origins;

	/* Counters: each written by one thread (relaxed), read by anyone. */
	_Atomic bool connected;
	_Atomic uint64_t nsubs;       /* link thread */
	_Atomic uint64_t sent;        /* link thread */
	_Atomic uint64_t dropped_out; /* link thread: NATS refused a publish */
	_Atomic uint64_t too_long;    /* link thread (filters) and workers (topics) */
	_Atomic uint64_t received;    /* delivery thread */
	_Atomic uint64_t duplicates;  /* delivery thread */
	_Atomic uint64_t dropped_in;  /* delivery thread, and libnats's slow consumer */
	_Atomic uint64_t invalid;     /* delivery thread and workers */

	struct cl_retain *rt; /* the retained messages' bucket (cluster_retain.c) */
	struct cl_sess *ss;   /* the sessions' bucket and thread (cluster_session.c) */
	/* libnats's error callback, on any of its threads: the last line's time, lines held. */
	_Atomic uint64_t error_logged_ms;
	_Atomic uint64_t errors_unlogged;
};

/* A message from NATS, read (subject NUL-terminated) and destroyed (cluster_link.c). */
void cluster_msg_view(void *nm, const char **subject, const uint8_t **data, uint32_t *len);
void cluster_msg_free(void *nm);

/* The link thread's body (cluster_link.c). */
void *cluster_link_main(void *arg);

/* Connects (or starts connecting in the background); called by the link thread first. */
int cluster_link_connect(struct cluster *cl);

/* Closes NATS and waits for its threads (the link thread, last). */
void cluster_link_close(struct cluster *cl);

/*
 * The retained messages' bucket (cluster_retain.c): set up in cluster_init, its thread started
 * after the connect (waiting for the first load), stopped before the connection closes.
 */
int cluster_retain_init(struct cluster *cl);
int cluster_retain_start(struct cluster *cl);
void cluster_retain_stop(struct cluster *cl);
void cluster_retain_fini(struct cluster *cl);

/* The link thread: a retained write (subject and envelope of a CL_REC_PUB_RETAIN) to put. */
void cluster_retain_put(struct cluster *cl, const char *subject, const uint8_t *data, uint32_t len);

/* A worker committed a CL_REC_PUB_RETAIN record (before it numbers the local write). */
void cluster_retain_committed(struct worker *w);

/* A worker's side: the first load into its replica (init), entries since (batch end). */
void cluster_retain_worker_init(struct worker *w);
void cluster_retain_drain(struct worker *w);
bool cluster_retain_waiting(struct worker *w);

struct cluster_figures;
void cluster_retain_figures(const struct cluster *cl, struct cluster_figures *f);

/*
 * Sessions across nodes (cluster_session.c): set up in cluster_init, started once connected
 * (its request subscription and thread), stopped before the connection closes.
 */
int cluster_session_init(struct cluster *cl);
int cluster_session_start(struct cluster *cl);
void cluster_session_stop(struct cluster *cl);
void cluster_session_fini(struct cluster *cl);
void cluster_session_figures(const struct cluster *cl, struct cluster_figures *f);
/* A worker's side: answers to its parked connects (batch end), another node's request. */
void cluster_session_drain(struct worker *w);
bool cluster_session_waiting(struct worker *w);
void cluster_session_take(struct worker *w, void *nm);

/* A libnats callback that hands messages to workers begins (false: shutting down, nm
 * destroyed) and ends (cluster_link.c). */
bool cluster_cb_enter(struct cluster *cl, void *nm);
void cluster_cb_leave(struct cluster *cl);

/* A worker's eventfd write, when the flag says it sleeps (any thread). */
void cluster_wake(_Atomic bool *idle, int efd);

#endif
