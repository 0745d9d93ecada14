/*
 * Name resolution off the loop (resolve.h): a numeric address through getaddrinfo's
 * AI_NUMERICHOST (no I/O, answered in the call), a name on a detached thread whose answer
 * comes back through an eventfd that the ring reads.
 *
 * A job has two references, the thread's and the ring read's, and whichever is dropped last
 * closes the eventfd and frees the job: the thread may still be writing the eventfd after
 * the owner gave up, and the read may still be in the ring after the thread finished. Only
 * the loop's thread touches job->owner; the thread writes the answer into the job and
 * publishes it with `done` (release) before it writes the eventfd.
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct resolve_job {
	struct ring_io io;     /* the read of efd (its handler: resolve_on_read) */
	atomic_int refs;       /* the thread's and the read's */
	int efd;               /* written by the thread when the answer is in */
	uint64_t efd_val;      /* the read's buffer */
	struct resolve *owner; /* NULL once abandoned (loop thread only) */
	char host[RESOLVE_HOST_MAX];
	uint16_t port;
	atomic_bool done; /* the fields below are written (release) */
	int status;       /* getaddrinfo's */
	int sys_errno;    /* errno with EAI_SYSTEM */
	unsigned count;   /* addresses in addrs */
	struct resolve_addr addrs[RESOLVE_ADDRS_MAX];
};

/* Copies getaddrinfo's TCP answers (at most RESOLVE_ADDRS_MAX) into addrs. */
static unsigned resolve_copy(const struct addrinfo *ai, struct resolve_addr *addrs)
{
	unsigned n = 0;

	for (; ai && n < RESOLVE_ADDRS_MAX; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(addrs[n].sa))
			continue;
		memcpy(&addrs[n].sa, ai->ai_addr, ai->ai_addrlen);
		addrs[n].len = ai->ai_addrlen;
		addrs[n].family = ai->ai_family;
		n++;
	}
	return n;
}

/* getaddrinfo for a TCP connection to host:port; numeric: no lookup, EAI_NONAME for a name. */
static int resolve_now(const char *host, uint16_t port, bool numeric, struct resolve_addr *addrs,
                       unsigned *count)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_protocol = IPPROTO_TCP,
	                         .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char serv[8];
	int ret;

	if (numeric)
		hints.ai_flags |= AI_NUMERICHOST;
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	ret = getaddrinfo(host, serv, &hints, &res);
	if (ret != 0)
		return ret;
	*count = resolve_copy(res, addrs);
	freeaddrinfo(res);
	return *count ? 0 : EAI_NODATA;
}

static void resolve_unref(struct resolve_job *j)
{
	if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
		return;
	close(j->efd);
	free(j);
}

static void *resolve_thread(void *arg)
{
	struct resolve_job *j = arg;
	uint64_t one = 1;

	j->status = resolve_now(j->host, j->port, false, j->addrs, &j->count);
	j->sys_errno = j->status == EAI_SYSTEM ? errno : 0;
	atomic_store_explicit(&j->done, true, memory_order_release);
	/* An eventfd write of 1 cannot fail short of a bad descriptor, which ours is not. */
	if (write(j->efd, &one, sizeof(one)) != sizeof(one))
		abort();
	resolve_unref(j);
	return NULL;
}

/* The eventfd read completed: the answer is in (or the read failed, or was cancelled). */
static void resolve_on_read(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct resolve_job *j =
	        (struct resolve_job *)((char *)io - offsetof(struct resolve_job, io));
	struct resolve *rs = j->owner;
	int status;

	(void)r;
	if (!rs) {
		resolve_unref(j);
		return;
	}
	j->owner = NULL;
	rs->job = NULL;
	if (cqe->res == (int32_t)sizeof(uint64_t) &&
	    atomic_load_explicit(&j->done, memory_order_acquire)) {
		status = j->status;
		rs->count = j->count;
		memcpy(rs->addrs, j->addrs, sizeof(rs->addrs[0]) * j->count);
		rs->sys_errno = j->sys_errno;
	} else {
		/* The loop could not wait for the answer (out of memory): a system error. */
		status = EAI_SYSTEM;
		rs->sys_errno = cqe->res < 0 ? -cqe->res : EIO;
	}
	resolve_unref(j);
	rs->fn(rs, status);
}

int resolve_start(struct resolve *rs, struct ring *r, const char *host, uint16_t port,
                  resolve_fn fn, void *arg)
{
	struct resolve_job *j;
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	if (rs->job)
		abort(); /* one lookup per struct resolve at a time (a programmer error) */
	rs->fn = fn;
	rs->arg = arg;
	rs->count = 0;
	rs->sys_errno = 0;
	if (strlen(host) >= RESOLVE_HOST_MAX)
		return EAI_OVERFLOW;
	ret = resolve_now(host, port, true, rs->addrs, &rs->count);
	if (ret == EAI_SYSTEM)
		rs->sys_errno = errno;
	if (ret != EAI_NONAME)
		return ret;
	j = calloc(1, sizeof(*j));
	if (!j)
		return EAI_MEMORY;
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0) {
		rs->sys_errno = errno;
		free(j);
		return EAI_SYSTEM;
	}
	snprintf(j->host, sizeof(j->host), "%s", host);
	j->port = port;
	j->io.fn = resolve_on_read;
	atomic_init(&j->refs, 2);
	if ((ret = pthread_attr_init(&attr)) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&th, &attr, resolve_thread, j);
		pthread_attr_destroy(&attr);
	}
	if (ret != 0) {
		close(j->efd);
		free(j);
		rs->sys_errno = ret;
		return EAI_SYSTEM;
	}
	j->owner = rs;
	rs->job = j;
	ring_read(r, &j->io, j->efd, &j->efd_val, sizeof(j->efd_val));
	return RESOLVE_PENDING;
}

void resolve_cancel(struct resolve *rs, struct ring *r)
{
	struct resolve_job *j = rs->job;

	if (!j)
		return;
	j->owner = NULL;
	rs->job = NULL;
	/* The read completes now (-ECANCELED) rather than when getaddrinfo returns. The job
	 * keeps its eventfd open until both references are gone, so the number is still its. */
	ring_cancel_fd(r, j->efd);
}

const char *resolve_strerror(const struct resolve *rs, int status)
{
	if (status == EAI_SYSTEM)
		return strerror(rs->sys_errno);
	return gai_strerror(status);
}

const char *resolve_addr_str(const struct resolve_addr *a, char *out, size_t cap)
{
	const void *p = a->family == AF_INET6
	                        ? (const void *)&((const struct sockaddr_in6 *)&a->sa)->sin6_addr
	                        : (const void *)&((const struct sockaddr_in *)&a->sa)->sin_addr;

	if (!inet_ntop(a->family, p, out, (socklen_t)cap))
		snprintf(out, cap, "?");
	return out;
}
