/*
 * The epoll back-end's file I/O thread (ring_epoll_file.c): writes and syncs of the
 * persistence log off the worker thread, results back through the worker's eventfd. Only
 * ring_epoll.c uses it.
 */
#ifndef STARLING_RING_EPOLL_FILE_H
#define STARLING_RING_EPOLL_FILE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* A file write for the I/O thread. */
struct ep_job {
	struct ring_io *io; /* the write's owner */
	const void *buf;    /* bytes to write (borrowed until it completes) */
	size_t len;         /* their count */
	uint64_t off;       /* file offset */
	int fd;             /* the file */
	bool dsync;         /* RWF_DSYNC (ring_write) */
	int32_t res;        /* bytes written or -errno */
};

/* One ring's I/O thread, its queues and its wake-up. */
struct ep_files {
	int evfd;                               /* the ring's eventfd (borrowed) */
	atomic_bool rung;                       /* finished jobs wait for the worker */
	pthread_t thread;                       /* the I/O thread */
	bool thread_on;                         /* started (at the first job) */
	pthread_mutex_t mu;                     /* guards what follows, to `taken` */
	pthread_cond_t cv;                      /* jobs to do, or stop */
	bool stop;                              /* the thread ends */
	struct ep_job *todo;                    /* FIFO of jobs to run */
	uint32_t todo_head, todo_len, todo_cap; /* its ring */
	struct ep_job *done;                    /* jobs run, for the worker */
	uint32_t done_len, done_cap;            /* its length and capacity */
	uint32_t jobs_out;                      /* jobs submitted and not yet taken back */
	struct ep_job *taken;                   /* worker's: the done jobs being delivered */
	uint32_t taken_cap;                     /* its capacity */
};

void ep_files_init(struct ep_files *fs, int evfd);

/* Stops the thread after the job it runs (queued ones are dropped) and frees everything. */
void ep_files_fini(struct ep_files *fs);

/* Queues j (copied), starting the thread if needed: 0, or -errno (then nothing is queued). */
int ep_files_submit(struct ep_files *fs, const struct ep_job *j);

/*
 * The jobs finished since the last call, after the eventfd was read: their count n, the jobs
 * in fs->taken[0..n). A submission may move `taken`: copy each job out before acting on it.
 */
uint32_t ep_files_take(struct ep_files *fs);

#endif
