/*
 * The epoll back-end of the event loop (ring.h), for where io_uring cannot be used: the same
 * operations and completions as ring_uring.c, made of readiness and plain system calls.
 *
 * - Every descriptor with something armed is in the epoll set edge-triggered (registered once,
 *   removed when nothing is armed on it any more): a socket for EPOLLIN|EPOLLOUT|EPOLLRDHUP, a
 *   listener, a signalfd and the ring's eventfd for EPOLLIN. Edge-triggered means no
 *   epoll_ctl per send or per wait; the price is that an operation armed on a descriptor
 *   already in the set is tried once (the ready list), since no new edge may come.
 * - Multishot accept and recv are loops of accept4/recv run when the descriptor is reported,
 *   each result delivered at once to the same handler as on io_uring (more set while armed).
 *   Receives land in one buffer of the ring, the handler sees the bytes only during its call,
 *   and the next recv reuses it: idle sockets own no buffer, and since no received data waits
 *   for its handler (unlike io_uring's completion queue), the pool cannot run dry and -ENOBUFS
 *   never happens here. A socket read EP_RECV_ROUNDS times in one batch waits for the next
 *   batch (fairness, as io_uring's per-completion cap).
 * - Sends are made where io_uring submits them, at the next wait (the owner submits at the end
 *   of its batch, one per connection): sendmsg non-blocking, each completion (bytes sent, a
 *   short count when the socket filled, or -errno) queued for the next reap. EAGAIN, or a
 *   previous send that was short, leaves it waiting for EPOLLOUT, then it is made and
 *   completes. Doorbells rung during the batch thus leave before its sends, as on io_uring:
 *   another worker is woken before a client can answer what this one sent.
 * - Cancellation removes the armed operations and queues their -ECANCELED completions, so that
 *   every pending count balances as it does on io_uring.
 * - Doorbells from other threads: the target's eventfd, written only by the doorbell that
 *   finds its flag down (those rung before the target looks arrive as one completion).
 * - File writes and syncs run on a small I/O thread per ring (ring_epoll_file.c), the results
 *   returned through the eventfd. The worker thread never blocks on a file.
 *
 * Completions never run recursively: what a handler submits completes in a later reap.
 */
#include "ring.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ring_epoll_file.h"
#include "ring_impl.h"
#include "starling/error.h"

#define EP_EVENTS        256 /* events taken per epoll_wait */
#define EP_RECV_ROUNDS   8   /* recv calls per socket per batch */
#define EP_ACCEPT_ROUNDS 64  /* accept4 calls per listener per batch */
#define EP_SOCK          (EPOLLIN | EPOLLOUT | EPOLLRDHUP)

/* What is armed on one descriptor (indexed by fd). */
struct ep_fd {
	struct ring_io *recv_io;       /* multishot receive, or NULL */
	struct ring_io *accept_io;     /* multishot accept, or NULL */
	struct ring_io *read_io;       /* one read, or NULL */
	struct ring_io *send_io;       /* a send waiting for EPOLLOUT, or NULL */
	struct ring_io *connect_io;    /* a connect in progress (EINPROGRESS), or NULL */
	const struct msghdr *send_msg; /* its message (borrowed) */
	void *read_buf;                /* the read's target (borrowed) */
	uint32_t read_len;             /* its length */
	uint32_t mask;                 /* events registered with epoll; 0: not in the set */
	bool ready;                    /* on the ready list */
	bool wfull;                    /* the last send was short: the next waits for EPOLLOUT */
};

/* A completion waiting for the next reap (sends made at submission, cancellations). */
struct ep_cqe {
	struct ring_io *io; /* owner */
	int32_t res;        /* result */
	uint8_t op;         /* enum ring_op */
};

struct ring_epoll {
	int epfd;                   /* the epoll instance */
	int evfd;                   /* doorbells and the I/O thread's results */
	struct ep_fd *fds;          /* per descriptor, nfds entries */
	uint32_t nfds;              /* entries in fds */
	struct epoll_event *events; /* the last wait's events */
	int nevents;                /* how many */
	int *ready, *ready_spare;   /* descriptors to try in the next reap, and the list in use */
	uint32_t nready, ready_cap, spare_cap; /* lengths and capacities */
	int *sendq;                            /* sockets with a send to make at the wait */
	uint32_t nsendq, sendq_cap;            /* its length and capacity */
	struct ep_cqe *cq, *cq_spare;          /* queued completions, and those being run */
	uint32_t cq_len, cq_cap, cq_spare_cap; /* lengths and capacities */
	uint8_t *rbuf;                         /* the receive buffer */
	uint32_t recv_max;                     /* its size: bytes per recv */
	bool no_pwait2;                        /* epoll_pwait2 is missing: ms waits */
	struct ring_stats *stats;              /* the owning ring's counters */
	_Atomic(struct ring_io *) bell_io;     /* where doorbells land */
	atomic_int bell_res;                   /* the last doorbell's res */
	atomic_bool bell_rung;                 /* a doorbell waits to be delivered */
	struct ep_files files;                 /* the file I/O thread (ring_epoll_file.c) */
};

static struct ring_epoll *E(struct ring *r)
{
	return r->be;
}

/* Grows *v (of elements of `size` bytes) to hold at least need; false when out of memory. */
static bool ep_reserve(void **v, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t n = *cap ? *cap : 64;
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

/* Queues a completion for the next reap. Out of memory here would unbalance a pending count. */
static void ep_queue(struct ring_epoll *e, struct ring_io *io, uint8_t op, int32_t res)
{
	if (!ep_reserve((void **)&e->cq, &e->cq_cap, e->cq_len + 1, sizeof(*e->cq))) {
		fprintf(stderr, "epoll loop: out of memory queueing a completion\n");
		abort();
	}
	e->cq[e->cq_len++] = (struct ep_cqe){.io = io, .res = res, .op = op};
}

/* The entry of fd, the table grown to hold it; NULL when out of memory. */
static struct ep_fd *ep_fd(struct ring_epoll *e, int fd)
{
	uint32_t n = e->nfds ? e->nfds : 1024;
	struct ep_fd *nf;

	assert(fd >= 0);
	if ((uint32_t)fd < e->nfds)
		return &e->fds[fd];
	while (n <= (uint32_t)fd)
		n *= 2;
	nf = realloc(e->fds, (size_t)n * sizeof(*nf));
	if (!nf)
		return NULL;
	memset(nf + e->nfds, 0, (size_t)(n - e->nfds) * sizeof(*nf));
	e->fds = nf;
	e->nfds = n;
	return &e->fds[fd];
}

/* Puts fd on the list tried in the next reap (an operation armed with no edge to come). */
static void ep_ready(struct ring_epoll *e, int fd)
{
	if (e->fds[fd].ready)
		return;
	if (!ep_reserve((void **)&e->ready, &e->ready_cap, e->nready + 1, sizeof(*e->ready))) {
		fprintf(stderr, "epoll loop: out of memory\n");
		abort();
	}
	e->fds[fd].ready = true;
	e->ready[e->nready++] = fd;
}

/*
 * Makes sure fd is in the set for `mask`: 0, or -errno. A descriptor added (or modified) is
 * reported if already ready; one that was in the set already goes on the ready list.
 */
static int ep_watch(struct ring_epoll *e, int fd, uint32_t mask)
{
	struct ep_fd *f = &e->fds[fd];
	struct epoll_event ev = {.events = f->mask | mask | EPOLLET, .data.fd = fd};
	int op = f->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if ((f->mask & mask) == mask) {
		ep_ready(e, fd);
		return 0;
	}
	e->stats->syscalls++;
	if (epoll_ctl(e->epfd, op, fd, &ev) != 0)
		return -errno;
	f->mask |= mask;
	return 0;
}

/* Nothing is armed on fd any more: out of the set, so that a closed and reused number starts
 * afresh and a descriptor handed to another thread's ring is not reported here. */
static void ep_maybe_idle(struct ring_epoll *e, int fd)
{
	struct ep_fd *f = &e->fds[fd];

	if (f->recv_io || f->accept_io || f->read_io || f->send_io || f->connect_io || !f->mask)
		return;
	e->stats->syscalls++;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
	f->mask = 0;
	f->wfull = false;
}

static void ep_deliver(struct ring *ring, struct ring_io *io, uint8_t op, int32_t res, bool more,
                       const uint8_t *buf)
{
	struct ring_cqe ev = {.op = op, .more = more, .res = res, .buf = buf};

	if (!more && op != RING_OP_MSG) {
		assert(io->pending > 0);
		io->pending--;
	}
	ring->stats.cqes++;
	io->fn(ring, io, &ev);
}

static size_t ep_msg_bytes(const struct msghdr *msg)
{
	size_t n = 0;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		n += msg->msg_iov[i].iov_len;
	return n;
}

/* One non-blocking sendmsg: bytes, or -errno (-EAGAIN: the socket is full). */
static ssize_t ep_send(struct ring_epoll *e, int fd, const struct msghdr *msg)
{
	ssize_t n;

	do {
		e->stats->syscalls++;
		n = sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if ((size_t)n < ep_msg_bytes(msg))
		e->fds[fd].wfull = true;
	return n;
}

/* --- submissions -------------------------------------------------------------------------- */

/* Readiness is a hint: an accept or read that would block must not block the loop (io_uring
 * takes blocking descriptors, so the owner's may be). */
static void ep_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void ep_accept(struct ring *ring, struct ring_io *io, int listen_fd)
{
	struct ring_epoll *e = E(ring);
	struct ep_fd *f = ep_fd(e, listen_fd);
	int ret;

	io->pending++;
	if (!f) {
		ep_queue(e, io, RING_OP_ACCEPT, -ENOMEM);
		return;
	}
	assert(!f->accept_io);
	ep_nonblock(listen_fd);
	f->accept_io = io;
	ret = ep_watch(e, listen_fd, EPOLLIN);
	if (ret < 0) {
		f->accept_io = NULL;
		ep_queue(e, io, RING_OP_ACCEPT, ret);
	}
}

static void ep_recv(struct ring *ring, struct ring_io *io, int fd)
{
	struct ring_epoll *e = E(ring);
	struct ep_fd *f = ep_fd(e, fd);
	int ret;

	io->pending++;
	io->recv_fd = fd;
	if (!f) {
		ep_queue(e, io, RING_OP_RECV, -ENOMEM);
		return;
	}
	assert(!f->recv_io);
	f->recv_io = io;
	ret = ep_watch(e, fd, EP_SOCK);
	if (ret < 0) {
		f->recv_io = NULL;
		ep_queue(e, io, RING_OP_RECV, ret);
	}
}

static void ep_sendmsg(struct ring *ring, struct ring_io *io, int fd, const struct msghdr *msg)
{
	struct ring_epoll *e = E(ring);
	struct ep_fd *f = ep_fd(e, fd);
	int ret;

	io->pending++;
	if (!f || !ep_reserve((void **)&e->sendq, &e->sendq_cap, e->nsendq + 1, sizeof(int))) {
		ep_queue(e, io, RING_OP_SEND, -ENOMEM);
		return;
	}
	assert(!f->send_io);
	f->send_io = io;
	f->send_msg = msg;
	if (!f->wfull) {
		e->sendq[e->nsendq++] = fd;
		return;
	}
	/* After a short send the socket is full: this one waits for room without trying. */
	if (!(f->mask & EPOLLOUT)) {
		ret = ep_watch(e, fd, EP_SOCK);
		if (ret < 0) {
			f->send_io = NULL;
			ep_queue(e, io, RING_OP_SEND, ret);
		}
	}
}

/* The sends submitted since the last wait; those that find the socket full wait for room. */
static void ep_flush_sends(struct ring_epoll *e)
{
	for (uint32_t i = 0; i < e->nsendq; i++) {
		int fd = e->sendq[i];
		struct ep_fd *f = &e->fds[fd];
		struct ring_io *io = f->send_io;
		ssize_t n;
		int ret;

		if (!io || f->wfull)
			continue; /* cancelled since */
		n = ep_send(e, fd, f->send_msg);
		if (n == -EAGAIN) {
			if (f->mask & EPOLLOUT)
				continue;
			ret = ep_watch(e, fd, EP_SOCK);
			if (ret == 0)
				continue;
			n = ret;
		}
		f->send_io = NULL;
		f->send_msg = NULL;
		ep_queue(e, io, RING_OP_SEND, (int32_t)n);
		ep_maybe_idle(e, fd);
	}
	e->nsendq = 0;
}

/*
 * connect() at once: a loopback or local connect may finish (or fail) here, and then
 * completes in the next reap; EINPROGRESS waits for the socket to become writable (EPOLLOUT,
 * or EPOLLERR|EPOLLHUP on a failure), when SO_ERROR gives the result.
 */
static void ep_connect(struct ring *ring, struct ring_io *io, int fd, const struct sockaddr *sa,
                       socklen_t len)
{
	struct ring_epoll *e = E(ring);
	struct ep_fd *f = ep_fd(e, fd);
	int ret;

	io->pending++;
	if (!f) {
		ep_queue(e, io, RING_OP_CONNECT, -ENOMEM);
		return;
	}
	assert(!f->connect_io && !f->send_io && !f->recv_io);
	ep_nonblock(fd);
	e->stats->syscalls++;
	/* Interrupted, a non-blocking connect goes on in the kernel, as EINPROGRESS. */
	if (connect(fd, sa, len) == 0 || errno == EISCONN) {
		ep_queue(e, io, RING_OP_CONNECT, 0);
		return;
	}
	if (errno != EINPROGRESS && errno != EINTR) {
		ep_queue(e, io, RING_OP_CONNECT, -errno);
		return;
	}
	f->connect_io = io;
	ret = ep_watch(e, fd, EP_SOCK);
	if (ret < 0) {
		f->connect_io = NULL;
		ep_queue(e, io, RING_OP_CONNECT, ret);
	}
}

static void ep_read(struct ring *ring, struct ring_io *io, int fd, void *buf, size_t len)
{
	struct ring_epoll *e = E(ring);
	struct ep_fd *f = ep_fd(e, fd);
	int ret;

	io->pending++;
	if (!f) {
		ep_queue(e, io, RING_OP_READ, -ENOMEM);
		return;
	}
	assert(!f->read_io);
	ep_nonblock(fd);
	f->read_io = io;
	f->read_buf = buf;
	f->read_len = (uint32_t)len;
	ret = ep_watch(e, fd, EPOLLIN);
	if (ret < 0) {
		f->read_io = NULL;
		ep_queue(e, io, RING_OP_READ, ret);
	}
}

static void ep_write(struct ring *ring, struct ring_io *io, int fd, const void *buf, size_t len,
                     uint64_t off, bool dsync)
{
	struct ring_epoll *e = E(ring);
	struct ep_job j = {.io = io, .buf = buf, .len = len, .off = off, .fd = fd, .dsync = dsync};
	int ret;

	io->pending++;
	ret = ep_files_submit(&e->files, &j);
	if (ret != 0)
		ep_queue(e, io, RING_OP_FILE, ret);
}

/* Queues -ECANCELED for the operation in *slot, if any. */
static void ep_cancel_slot(struct ring_epoll *e, struct ring_io **slot, uint8_t op)
{
	if (!*slot)
		return;
	ep_queue(e, *slot, op, -ECANCELED);
	*slot = NULL;
}

static void ep_cancel_fd(struct ring *ring, int fd)
{
	struct ring_epoll *e = E(ring);
	struct ep_fd *f;

	if (fd < 0 || (uint32_t)fd >= e->nfds)
		return;
	f = &e->fds[fd];
	ep_cancel_slot(e, &f->accept_io, RING_OP_ACCEPT);
	ep_cancel_slot(e, &f->recv_io, RING_OP_RECV);
	ep_cancel_slot(e, &f->read_io, RING_OP_READ);
	ep_cancel_slot(e, &f->send_io, RING_OP_SEND);
	ep_cancel_slot(e, &f->connect_io, RING_OP_CONNECT);
	f->send_msg = NULL;
	ep_maybe_idle(e, fd);
}

static void ep_cancel_recv(struct ring *ring, struct ring_io *io)
{
	struct ring_epoll *e = E(ring);
	int fd = io->recv_fd;

	if (fd < 0 || (uint32_t)fd >= e->nfds || e->fds[fd].recv_io != io)
		return;
	ep_cancel_slot(e, &e->fds[fd].recv_io, RING_OP_RECV);
	ep_maybe_idle(e, fd);
}

static void ep_msg(struct ring *ring, const struct ring *target, struct ring_io *target_io,
                   int32_t res)
{
	struct ring_epoll *t = target->be;
	uint64_t one = 1;

	atomic_store(&t->bell_io, target_io);
	atomic_store(&t->bell_res, res);
	ring->stats.msgs_sent++;
	/* Whoever raises the flag writes; the target lowers it after reading the eventfd. */
	if (atomic_exchange(&t->bell_rung, true))
		return;
	ring->stats.syscalls++;
	if (write(t->evfd, &one, sizeof(one)) != sizeof(one))
		ring->stats.msg_errors++;
}

/* Delivers the writes the I/O thread finished. */
static void ep_take_done(struct ring *ring, struct ring_epoll *e)
{
	uint32_t n = ep_files_take(&e->files);

	for (uint32_t i = 0; i < n; i++) {
		struct ep_job j = e->files.taken[i];

		ep_deliver(ring, j.io, RING_OP_FILE, j.res, false, NULL);
	}
}

/* --- readiness ---------------------------------------------------------------------------- */

/* The eventfd: doorbells from other threads, results of the I/O thread. */
static void ep_on_wake(struct ring *ring, struct ring_epoll *e)
{
	uint64_t v;

	ring->stats.syscalls++;
	if (read(e->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (atomic_exchange(&e->bell_rung, false)) {
		struct ring_io *io = atomic_load(&e->bell_io);

		if (io)
			ep_deliver(ring, io, RING_OP_MSG, atomic_load(&e->bell_res), false, NULL);
	}
	ep_take_done(ring, e);
}

/* A final completion of the operation in the fd's slot: disarmed first, then delivered. */
static void ep_finish(struct ring *ring, struct ring_epoll *e, int fd, struct ring_io **slot,
                      uint8_t op, int32_t res)
{
	struct ring_io *io = *slot;

	*slot = NULL;
	ep_maybe_idle(e, fd);
	ep_deliver(ring, io, op, res, false, NULL);
}

/*
 * Receives until the socket is empty, an end, or the round limit. `shortcut`: a short read
 * means the socket was emptied (a reported EPOLLIN without EPOLLRDHUP: a later arrival is a
 * new edge); otherwise the loop goes on to EAGAIN, so that an EOF behind the data is seen.
 */
static void ep_try_recv(struct ring *ring, struct ring_epoll *e, int fd, bool shortcut)
{
	for (unsigned i = 0; i < EP_RECV_ROUNDS; i++) {
		struct ring_io *io = e->fds[fd].recv_io;
		ssize_t n;

		if (!io)
			return;
		ring->stats.syscalls++;
		n = recv(fd, e->rbuf, e->recv_max, MSG_DONTWAIT);
		if (n > 0) {
			/* After the read, before its handler (ring_set_before_input). What that
			 * runs may close this socket's owner: its bytes then go nowhere. */
			if (ring->before_input) {
				ring->before_input(ring, ring->before_arg);
				if (e->fds[fd].recv_io != io)
					return;
			}
			ep_deliver(ring, io, RING_OP_RECV, (int32_t)n, true, e->rbuf);
			if (shortcut && (size_t)n < e->recv_max)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		ep_finish(ring, e, fd, &e->fds[fd].recv_io, RING_OP_RECV, n == 0 ? 0 : -errno);
		return;
	}
	if (e->fds[fd].recv_io)
		ep_ready(e, fd);
}

static void ep_try_accept(struct ring *ring, struct ring_epoll *e, int fd)
{
	for (unsigned i = 0; i < EP_ACCEPT_ROUNDS; i++) {
		struct ring_io *io = e->fds[fd].accept_io;
		int nfd;

		if (!io)
			return;
		ring->stats.syscalls++;
		nfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (nfd >= 0) {
			ep_deliver(ring, io, RING_OP_ACCEPT, nfd, true, NULL);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		/* EMFILE, ENFILE...: the accept ends, as io_uring's does; the owner re-arms. */
		ep_finish(ring, e, fd, &e->fds[fd].accept_io, RING_OP_ACCEPT, -errno);
		return;
	}
	if (e->fds[fd].accept_io)
		ep_ready(e, fd);
}

static void ep_try_read(struct ring *ring, struct ring_epoll *e, int fd)
{
	struct ep_fd *f = &e->fds[fd];
	ssize_t n;

	if (!f->read_io)
		return;
	do {
		ring->stats.syscalls++;
		n = read(fd, f->read_buf, f->read_len);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	ep_finish(ring, e, fd, &f->read_io, RING_OP_READ, n >= 0 ? (int32_t)n : -errno);
}

static void ep_try_send(struct ring *ring, struct ring_epoll *e, int fd)
{
	struct ep_fd *f = &e->fds[fd];
	ssize_t n;

	f->wfull = false;
	if (!f->send_io)
		return;
	n = ep_send(e, fd, f->send_msg);
	if (n == -EAGAIN)
		return;
	f->send_msg = NULL;
	ep_finish(ring, e, fd, &f->send_io, RING_OP_SEND, (int32_t)n);
}

/*
 * A connect in progress: done when the socket is writable or in error (ev), which on the
 * ready list (ev 0, no edge seen) a poll() asks; SO_ERROR is its result.
 */
static void ep_try_connect(struct ring *ring, struct ring_epoll *e, int fd, uint32_t ev)
{
	struct ep_fd *f = &e->fds[fd];
	int err = 0;
	socklen_t len = sizeof(err);

	if (!ev) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		ring->stats.syscalls++;
		if (poll(&p, 1, 0) <= 0)
			return;
	} else if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		return;
	}
	ring->stats.syscalls++;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	ep_finish(ring, e, fd, &f->connect_io, RING_OP_CONNECT, -err);
}

/* What fd's events (or its place on the ready list, ev 0) let run. */
static void ep_on_fd(struct ring *ring, struct ring_epoll *e, int fd, uint32_t ev)
{
	if (fd == e->evfd) {
		ep_on_wake(ring, e);
		return;
	}
	if ((uint32_t)fd >= e->nfds)
		return;
	/* Nothing else is armed during a connect; what its handler arms waits for its edge. */
	if (e->fds[fd].connect_io) {
		ep_try_connect(ring, e, fd, ev);
		return;
	}
	if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		ep_try_send(ring, e, fd);
	if (ev && !(ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
		return;
	if (e->fds[fd].accept_io)
		ep_try_accept(ring, e, fd);
	if (e->fds[fd].recv_io)
		ep_try_recv(ring, e, fd, ev && !(ev & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)));
	if (e->fds[fd].read_io)
		ep_try_read(ring, e, fd);
}

/* --- the loop ----------------------------------------------------------------------------- */

static int ep_wait_us(struct ring *ring, int64_t timeout_us)
{
	struct ring_epoll *e = E(ring);
	struct timespec ts;
	int n = -1;

	ep_flush_sends(e);
	/* Completions queued, descriptors to try: look at the kernel without sleeping. */
	if (e->cq_len || e->nready)
		timeout_us = 0;
	ts.tv_sec = timeout_us >= 0 ? timeout_us / 1000000 : 0;
	ts.tv_nsec = timeout_us >= 0 ? (timeout_us % 1000000) * 1000 : 0;
	ring->stats.syscalls++;
	if (!e->no_pwait2) {
		n = epoll_pwait2(e->epfd, e->events, EP_EVENTS, timeout_us >= 0 ? &ts : NULL, NULL);
		if (n < 0 && errno == ENOSYS)
			e->no_pwait2 = true;
	}
	if (e->no_pwait2)
		n = epoll_wait(e->epfd, e->events, EP_EVENTS,
		               timeout_us >= 0 ? (int)((timeout_us + 999) / 1000) : -1);
	if (n < 0) {
		e->nevents = 0;
		return errno == EINTR ? 0 : -errno;
	}
	e->nevents = n;
	return 0;
}

static int ep_reap(struct ring *ring)
{
	struct ring_epoll *e = E(ring);
	uint64_t before = ring->stats.cqes;
	uint32_t n;

	if (ring->before_input && (e->cq_len || e->nevents || e->nready))
		ring->before_input(ring, ring->before_arg);
	/* What was queued before this reap; what its handlers queue waits for the next. */
	n = e->cq_len;
	if (n) {
		struct ep_cqe *q = e->cq;
		uint32_t cap = e->cq_cap;

		e->cq = e->cq_spare;
		e->cq_cap = e->cq_spare_cap;
		e->cq_spare = q;
		e->cq_spare_cap = cap;
		e->cq_len = 0;
		for (uint32_t i = 0; i < n; i++)
			ep_deliver(ring, q[i].io, q[i].op, q[i].res, false, NULL);
	}
	for (int i = 0; i < e->nevents; i++)
		ep_on_fd(ring, e, e->events[i].data.fd, e->events[i].events);
	e->nevents = 0;
	n = e->nready;
	if (n) {
		int *list = e->ready;
		uint32_t cap = e->ready_cap;

		e->ready = e->ready_spare;
		e->ready_cap = e->spare_cap;
		e->ready_spare = list;
		e->spare_cap = cap;
		e->nready = 0;
		for (uint32_t i = 0; i < n; i++) {
			if ((uint32_t)list[i] < e->nfds)
				e->fds[list[i]].ready = false;
			ep_on_fd(ring, e, list[i], 0);
		}
	}
	n = (uint32_t)(ring->stats.cqes - before);
	if (n)
		ring->stats.batches++;
	return (int)n;
}

/* --- setup -------------------------------------------------------------------------------- */

static void ep_exit(struct ring *ring)
{
	struct ring_epoll *e = E(ring);

	if (!e)
		return;
	ep_files_fini(&e->files);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->evfd >= 0)
		close(e->evfd);
	free(e->fds);
	free(e->events);
	free(e->ready);
	free(e->ready_spare);
	free(e->sendq);
	free(e->cq);
	free(e->cq_spare);
	free(e->rbuf);
	free(e);
	ring->be = NULL;
}

static int ep_init(struct ring *ring, const struct ring_params *p, char *err, size_t errlen)
{
	struct ring_epoll *e = calloc(1, sizeof(*e));
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
	int ret;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ring->be = e;
	e->stats = &ring->stats;
	e->evfd = -1;
	ep_files_init(&e->files, -1);
	e->recv_max = p->recv_max ? p->recv_max : p->buf_size;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	e->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->files.evfd = e->evfd;
	if (e->evfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	ev.data.fd = e->evfd;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) != 0) {
		ret = -errno;
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	e->events = calloc(EP_EVENTS, sizeof(*e->events));
	e->rbuf = malloc(e->recv_max);
	if (!e->events || !e->rbuf || !ep_fd(e, e->evfd)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	ep_exit(ring);
	return ret;
}

const struct ring_ops ring_epoll_ops = {
        .name = "epoll",
        .init = ep_init,
        .exit = ep_exit,
        .accept = ep_accept,
        .recv = ep_recv,
        .sendmsg = ep_sendmsg,
        .connect = ep_connect,
        .read = ep_read,
        .write = ep_write,
        .cancel_fd = ep_cancel_fd,
        .cancel_recv = ep_cancel_recv,
        .msg = ep_msg,
        .wait_us = ep_wait_us,
        .reap = ep_reap,
};
