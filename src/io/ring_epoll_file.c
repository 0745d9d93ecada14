/*
 * The epoll back-end's file I/O thread: epoll cannot wait for a file, so the persistence
 * log's writes (ring_write) run here, one job after the other in submission order, with
 * pwritev2's RWF_DSYNC as io_uring's write does. A finished job goes to the `done` array and the
 * worker's eventfd is written once until the worker takes them (the `rung` flag). Started at
 * the first job: most brokers never write a file. Both result arrays have room for every job
 * out, reserved at submission, so the thread never allocates.
 */
#include "ring_epoll_file.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/fifo.h"
#include "starling/error.h"

void ep_files_init(struct ep_files *fs, int evfd)
{
	fs->evfd = evfd;
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->cv, NULL);
}

void ep_files_fini(struct ep_files *fs)
{
	if (fs->thread_on) {
		pthread_mutex_lock(&fs->mu);
		fs->stop = true;
		pthread_cond_signal(&fs->cv);
		pthread_mutex_unlock(&fs->mu);
		pthread_join(fs->thread, NULL);
		fs->thread_on = false;
	}
	pthread_mutex_destroy(&fs->mu);
	pthread_cond_destroy(&fs->cv);
	free(fs->todo);
	free(fs->done);
	free(fs->taken);
}

static void ep_job_run(struct ep_job *j)
{
	struct iovec v = {.iov_base = (void *)(uintptr_t)j->buf, .iov_len = j->len};
	ssize_t n;

	do
		n = pwritev2(j->fd, &v, 1, (off_t)j->off, j->dsync ? RWF_DSYNC : 0);
	while (n < 0 && errno == EINTR);
	j->res = n >= 0 ? (int32_t)n : -errno;
}

static void *ep_files_run(void *arg)
{
	struct ep_files *fs = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&fs->mu);
	for (;;) {
		struct ep_job j;
		bool wake;

		while (!fs->stop && !fs->todo_len)
			pthread_cond_wait(&fs->cv, &fs->mu);
		if (fs->stop)
			break;
		j = fs->todo[fs->todo_head];
		fs->todo_head = (fs->todo_head + 1) & (fs->todo_cap - 1);
		fs->todo_len--;
		pthread_mutex_unlock(&fs->mu);
		ep_job_run(&j);
		pthread_mutex_lock(&fs->mu);
		assert(fs->done_len < fs->done_cap);
		fs->done[fs->done_len++] = j;
		wake = !atomic_exchange(&fs->rung, true);
		pthread_mutex_unlock(&fs->mu);
		if (wake && write(fs->evfd, &one, sizeof(one)) != sizeof(one))
			abort(); /* an eventfd write fails only when its counter is full */
		pthread_mutex_lock(&fs->mu);
	}
	pthread_mutex_unlock(&fs->mu);
	return NULL;
}

/* Grows *v to hold at least need entries of `size` bytes; false when out of memory. */
static bool ep_files_reserve(void **v, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t n = *cap ? *cap : 16;
	void *nv;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	nv = realloc(*v, (size_t)n * size);
	if (!nv)
		return false;
	*v = nv;
	*cap = n;
	return true;
}

int ep_files_submit(struct ep_files *fs, const struct ep_job *j)
{
	bool ok;

	if (!fs->thread_on) {
		if (pthread_create(&fs->thread, NULL, ep_files_run, fs) != 0)
			return -EAGAIN;
		fs->thread_on = true;
	}
	pthread_mutex_lock(&fs->mu);
	ok = (fs->todo_len < fs->todo_cap ||
	      fifo_grow((void **)&fs->todo, &fs->todo_head, fs->todo_len, &fs->todo_cap,
	                sizeof(*fs->todo), 16) == ST_OK) &&
	     ep_files_reserve((void **)&fs->done, &fs->done_cap, fs->jobs_out + 1,
	                      sizeof(*fs->done)) &&
	     ep_files_reserve((void **)&fs->taken, &fs->taken_cap, fs->jobs_out + 1,
	                      sizeof(*fs->taken));
	if (ok) {
		fs->todo[(fs->todo_head + fs->todo_len++) & (fs->todo_cap - 1)] = *j;
		fs->jobs_out++;
		pthread_cond_signal(&fs->cv);
	}
	pthread_mutex_unlock(&fs->mu);
	return ok ? 0 : -ENOMEM;
}

uint32_t ep_files_take(struct ep_files *fs)
{
	struct ep_job *t;
	uint32_t n, cap;

	if (!atomic_exchange(&fs->rung, false))
		return 0;
	pthread_mutex_lock(&fs->mu);
	t = fs->taken;
	cap = fs->taken_cap;
	fs->taken = fs->done;
	fs->taken_cap = fs->done_cap;
	fs->done = t;
	fs->done_cap = cap;
	n = fs->done_len;
	fs->done_len = 0;
	fs->jobs_out -= n;
	pthread_mutex_unlock(&fs->mu);
	return n;
}
