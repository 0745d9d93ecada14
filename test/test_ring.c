/*
 * Tests of the event loop's interface (src/io/ring.h) on both back-ends, io_uring and epoll,
 * without the broker: the same operations must give the same completions, in the shapes the
 * broker relies on. Accept and receive stay armed (more) until a cancel or an end, whose
 * final completion balances the pending count; a cancelled send completes with -ECANCELED; a
 * send larger than the socket's buffer completes short and the rest goes on once the peer
 * reads; doorbells land in the target; a write linked to a sync completes write first, and a
 * failed write cancels the sync; completions of what a handler submits never run inside the
 * reap that ran the handler. Then the epoll module's own edge cases: many sockets with data in
 * one batch all read through its one receive buffer (no -ENOBUFS), a short send's successor
 * waiting for EPOLLOUT, and an operation armed again on a descriptor already in its set.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "io/ring.h"
#include "testutil.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static enum ring_backend backend;

static const struct ring_params params = {
        .sq_entries = 256,
        .cq_entries = 1024,
        .buf_count = 64,
        .buf_size = 4096,
};

static bool ring_up(struct ring *r)
{
	struct ring_params p = params;
	char err[256];

	p.backend = backend;
	if (ring_init(r, &p, err, sizeof(err)) != 0) {
		CU_FAIL("ring_init");
		return false;
	}
	return true;
}

/* What an owner saw: completions per op, the last result, the bytes received. */
struct owner {
	struct ring_io io;
	unsigned n[16];        /* completions by op */
	unsigned finals;       /* of which final (more unset) */
	int32_t last[16];      /* last res by op */
	int fds[64];           /* accepted descriptors */
	unsigned nfds;         /* how many */
	uint8_t got[1 << 16];  /* bytes received */
	size_t got_len;        /* how many */
	bool in_reap;          /* set by the test around ring_reap */
	struct ring *resubmit; /* if set: the handler sends again from inside the reap */
	int send_fd;           /* its socket */
	struct msghdr mh;      /* its message */
	struct iovec iov;      /* its bytes */
};

static void owner_fn(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct owner *o = container_of(io, struct owner, io);

	(void)r;
	o->n[cqe->op]++;
	o->last[cqe->op] = cqe->res;
	if (!cqe->more)
		o->finals++;
	if (cqe->op == RING_OP_ACCEPT && cqe->res >= 0 && o->nfds < 64)
		o->fds[o->nfds++] = cqe->res;
	if (cqe->op == RING_OP_RECV && cqe->res > 0) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(cqe->buf);
		if (o->got_len + (size_t)cqe->res <= sizeof(o->got)) {
			memcpy(o->got + o->got_len, cqe->buf, (size_t)cqe->res);
			o->got_len += (size_t)cqe->res;
		}
	}
	if (cqe->op == RING_OP_SEND && o->resubmit) {
		struct ring *rr = o->resubmit;

		o->resubmit = NULL;
		ring_sendmsg(rr, &o->io, o->send_fd, &o->mh);
	}
}

static void owner_init(struct owner *o)
{
	memset(o, 0, sizeof(*o));
	o->io.fn = owner_fn;
}

/* Polls until pred(o) or about two seconds. */
static void poll_until(struct ring *r, struct owner *o, bool (*pred)(const struct owner *))
{
	for (int i = 0; i < 200 && !pred(o); i++)
		ring_poll(r, 10);
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		abort();
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		abort();
	return fd;
}

/* A connected TCP pair: *srv accepted (non-blocking, as the broker's), *cli the peer. */
static void tcp_pair(int *srv, int *cli)
{
	uint16_t port;
	int l = listen_any(&port);

	*cli = connect_to(port);
	*srv = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (*srv < 0)
		abort();
	close(l);
}

static bool three_accepted(const struct owner *o)
{
	return o->nfds >= 3;
}

static bool has_final(const struct owner *o)
{
	return o->io.pending == 0;
}

static void test_accept_and_cancel(void)
{
	struct ring r;
	struct owner o;
	uint16_t port;
	int l = listen_any(&port), c[3];

	owner_init(&o);
	if (!ring_up(&r))
		return;
	ring_accept(&r, &o.io, l);
	for (int i = 0; i < 3; i++)
		c[i] = connect_to(port);
	poll_until(&r, &o, three_accepted);
	CU_ASSERT_EQUAL(o.nfds, 3);
	CU_ASSERT_EQUAL(o.finals, 0);
	CU_ASSERT_EQUAL(o.io.pending, 1);
	ring_cancel_fd(&r, l);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	CU_ASSERT_EQUAL(o.finals, 1);
	CU_ASSERT_EQUAL(o.last[RING_OP_ACCEPT], -ECANCELED);
	for (unsigned i = 0; i < o.nfds; i++)
		close(o.fds[i]);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	ring_exit(&r);
	close(l);
}

static bool got_all(const struct owner *o)
{
	return o->got_len >= 5000 || o->finals;
}

static void test_recv_then_eof(void)
{
	struct ring r;
	struct owner o;
	uint8_t data[5000];
	int s, c;

	owner_init(&o);
	tcp_pair(&s, &c);
	if (!ring_up(&r))
		return;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	ring_recv(&r, &o.io, s);
	CU_ASSERT_EQUAL(write(c, data, sizeof(data)), (ssize_t)sizeof(data));
	poll_until(&r, &o, got_all);
	CU_ASSERT_EQUAL(o.got_len, sizeof(data));
	CU_ASSERT_EQUAL(memcmp(o.got, data, sizeof(data)), 0);
	CU_ASSERT_EQUAL(o.finals, 0);
	shutdown(c, SHUT_WR);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.finals, 1);
	CU_ASSERT_EQUAL(o.last[RING_OP_RECV], 0);
	ring_exit(&r);
	close(s);
	close(c);
}

/* A receive cancelled alone ends with -ECANCELED; armed again, it reads what came since. */
static void test_cancel_recv_rearm(void)
{
	struct ring r;
	struct owner o;
	int s, c;

	owner_init(&o);
	tcp_pair(&s, &c);
	if (!ring_up(&r))
		return;
	ring_recv(&r, &o.io, s);
	ring_poll(&r, 0);
	ring_cancel_recv(&r, &o.io);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.last[RING_OP_RECV], -ECANCELED);
	CU_ASSERT_EQUAL(o.got_len, 0);
	/* Data arrives while nothing is armed: no edge will come for it after the re-arm. */
	CU_ASSERT_EQUAL(write(c, "abc", 3), 3);
	ring_poll(&r, 50);
	CU_ASSERT_EQUAL(o.got_len, 0);
	ring_recv(&r, &o.io, s);
	poll_until(&r, &o, got_all);
	for (int i = 0; i < 20 && o.got_len < 3; i++)
		ring_poll(&r, 10);
	CU_ASSERT_EQUAL(o.got_len, 3);
	CU_ASSERT_EQUAL(memcmp(o.got, "abc", 3), 0);
	ring_cancel_fd(&r, s);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	ring_exit(&r);
	close(s);
	close(c);
}

static bool send_done(const struct owner *o)
{
	return o->n[RING_OP_SEND] > 0 && o->io.pending == 0;
}

/* The peer of a send test: reads everything, blocking, on its own thread. */
struct reader {
	int fd;       /* its socket */
	uint8_t *buf; /* where the bytes go */
	size_t want;  /* how many to read */
	size_t got;   /* read so far */
};

static void *reader_run(void *arg)
{
	struct reader *rd = arg;

	while (rd->got < rd->want) {
		ssize_t n = read(rd->fd, rd->buf + rd->got, rd->want - rd->got);

		if (n <= 0)
			break;
		rd->got += (size_t)n;
	}
	return NULL;
}

/*
 * A send of more than the socket holds completes short and never blocks the loop; the rest,
 * sent again, completes as the peer reads; the peer gets every byte in order.
 */
static void test_partial_send(void)
{
	enum { TOTAL = 1 << 20 };
	struct ring r;
	struct owner o;
	uint8_t *data = malloc(TOTAL), *back = malloc(TOTAL);
	struct reader rd = {.buf = back, .want = TOTAL};
	pthread_t th;
	size_t sent = 0;
	int s, c, small = 16384;
	unsigned sends = 0;

	owner_init(&o);
	tcp_pair(&s, &c);
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	rd.fd = c;
	if (!data || !back || !ring_up(&r))
		goto out;
	for (size_t i = 0; i < TOTAL; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 13));
	/* The first send before the reader runs: the socket fills, the send comes back short. */
	o.iov = (struct iovec){data, TOTAL};
	o.mh = (struct msghdr){.msg_iov = &o.iov, .msg_iovlen = 1};
	ring_sendmsg(&r, &o.io, s, &o.mh);
	poll_until(&r, &o, send_done);
	CU_ASSERT_FATAL(o.last[RING_OP_SEND] > 0 && o.last[RING_OP_SEND] < TOTAL);
	sent = (size_t)o.last[RING_OP_SEND];
	sends = 1;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, reader_run, &rd), 0);
	while (sent < TOTAL && sends < 100000) {
		o.iov = (struct iovec){data + sent, TOTAL - sent};
		o.mh = (struct msghdr){.msg_iov = &o.iov, .msg_iovlen = 1};
		o.n[RING_OP_SEND] = 0;
		ring_sendmsg(&r, &o.io, s, &o.mh);
		sends++;
		while (!send_done(&o))
			ring_poll(&r, 100);
		CU_ASSERT_FATAL(o.last[RING_OP_SEND] > 0);
		sent += (size_t)o.last[RING_OP_SEND];
	}
	CU_ASSERT_EQUAL(sent, TOTAL);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(rd.got, TOTAL);
	CU_ASSERT_EQUAL(memcmp(back, data, TOTAL), 0);
	ring_exit(&r);
out:
	free(data);
	free(back);
	close(s);
	close(c);
}

/*
 * A send waiting on a full socket and the socket's receive, both cancelled by ring_cancel_fd:
 * two final completions, -ECANCELED (or, for a send the kernel had finished, its count), and
 * the pending count back at zero: what the broker waits for before freeing a connection.
 */
static void test_cancel_fd_send_and_recv(void)
{
	enum { TOTAL = 4 << 20 };
	struct ring r;
	struct owner o;
	uint8_t *data = calloc(1, TOTAL);
	int s, c, small = 4096;

	owner_init(&o);
	tcp_pair(&s, &c);
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (!data || !ring_up(&r))
		goto out;
	ring_recv(&r, &o.io, s);
	/* Fill the socket: sends until one completes short. */
	for (int i = 0; i < 64; i++) {
		o.iov = (struct iovec){data, TOTAL};
		o.mh = (struct msghdr){.msg_iov = &o.iov, .msg_iovlen = 1};
		o.n[RING_OP_SEND] = 0;
		ring_sendmsg(&r, &o.io, s, &o.mh);
		for (int k = 0; k < 5 && !o.n[RING_OP_SEND]; k++)
			ring_poll(&r, 10);
		if (!o.n[RING_OP_SEND])
			break; /* this one waits for room */
	}
	CU_ASSERT_EQUAL(o.n[RING_OP_SEND], 0);
	CU_ASSERT_EQUAL(o.io.pending, 2);
	ring_cancel_fd(&r, s);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	CU_ASSERT_EQUAL(o.last[RING_OP_RECV], -ECANCELED);
	CU_ASSERT_EQUAL(o.n[RING_OP_SEND], 1);
	CU_ASSERT(o.last[RING_OP_SEND] == -ECANCELED || o.last[RING_OP_SEND] > 0);
	ring_exit(&r);
out:
	free(data);
	close(s);
	close(c);
}

/* A handler that submits: that completion waits for a later reap, never runs inside this one. */
static void test_no_recursion(void)
{
	struct ring r;
	struct owner o;
	int s, c, first;

	owner_init(&o);
	tcp_pair(&s, &c);
	if (!ring_up(&r))
		return;
	o.iov = (struct iovec){(void *)"x", 1};
	o.mh = (struct msghdr){.msg_iov = &o.iov, .msg_iovlen = 1};
	o.send_fd = s;
	o.resubmit = &r;
	ring_sendmsg(&r, &o.io, s, &o.mh);
	first = 0;
	for (int i = 0; i < 100 && !first; i++) {
		ring_wait_us(&r, 10000);
		first = ring_reap(&r);
	}
	CU_ASSERT_EQUAL(first, 1); /* the first send only: the second is submitted, not run */
	CU_ASSERT_EQUAL(o.n[RING_OP_SEND], 1);
	CU_ASSERT_EQUAL(o.io.pending, 1);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.n[RING_OP_SEND], 2);
	ring_exit(&r);
	close(s);
	close(c);
}

static bool rung(const struct owner *o)
{
	return o->n[RING_OP_MSG] > 0;
}

/* A doorbell rung on one's own ring: it arrives, res intact, outside pending. */
static void test_doorbell(void)
{
	struct ring r, t;
	struct owner o;

	owner_init(&o);
	if (!ring_up(&r))
		return;
	if (!ring_up(&t)) {
		ring_exit(&r);
		return;
	}
	ring_msg(&r, &t, &o.io, 42);
	ring_msg(&r, &t, &o.io, 42);
	ring_poll(&r, 0); /* io_uring: submits it */
	poll_until(&t, &o, rung);
	CU_ASSERT(o.n[RING_OP_MSG] >= 1 && o.n[RING_OP_MSG] <= 2);
	CU_ASSERT_EQUAL(o.last[RING_OP_MSG], 42);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	CU_ASSERT_EQUAL(r.stats.msgs_sent, 2);
	CU_ASSERT_EQUAL(r.stats.msg_errors, 0);
	ring_exit(&r);
	ring_exit(&t);
}

struct file_owner {
	struct ring_io wio; /* the write */
	int32_t res;        /* its result */
	unsigned n;         /* completions */
};

static void on_write(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct file_owner *f = container_of(io, struct file_owner, wio);

	(void)r;
	CU_ASSERT_EQUAL(cqe->op, RING_OP_FILE);
	f->res = cqe->res;
	f->n++;
}

/* A plain write and a synced one (RWF_DSYNC) land where they were asked to; a failing one
 * completes with its error. */
static void test_write_sync(void)
{
	char path[] = "/tmp/test_ring_XXXXXX";
	struct file_owner f = {.wio.fn = on_write};
	struct ring r;
	char back[16] = {0};
	int fd = mkstemp(path), ro;

	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	if (!ring_up(&r))
		return;
	ring_write(&r, &f.wio, fd, "0123456789", 10, 100, true);
	for (int i = 0; i < 200 && f.wio.pending; i++)
		ring_poll(&r, 10);
	CU_ASSERT_EQUAL(f.n, 1);
	CU_ASSERT_EQUAL(f.res, 10);
	CU_ASSERT_EQUAL(pread(fd, back, 10, 100), 10);
	CU_ASSERT_EQUAL(memcmp(back, "0123456789", 10), 0);
	ring_write(&r, &f.wio, fd, "abc", 3, 102, false);
	for (int i = 0; i < 200 && f.wio.pending; i++)
		ring_poll(&r, 10);
	CU_ASSERT_EQUAL(f.n, 2);
	CU_ASSERT_EQUAL(f.res, 3);
	CU_ASSERT_EQUAL(pread(fd, back, 10, 100), 10);
	CU_ASSERT_EQUAL(memcmp(back, "01abc56789", 10), 0);
	ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ring_write(&r, &f.wio, ro, "x", 1, 0, true);
	for (int i = 0; i < 200 && f.wio.pending; i++)
		ring_poll(&r, 10);
	CU_ASSERT_EQUAL(f.n, 3);
	CU_ASSERT_EQUAL(f.res, -EBADF);
	ring_exit(&r);
	close(ro);
	close(fd);
}

/* --- the epoll module's own cases --------------------------------------------------------- */

#define MANY 100

/*
 * Many sockets with data in one batch: every one is read through the one receive buffer, each
 * handler seeing its own bytes, and nothing runs out (io_uring would answer -ENOBUFS once its
 * provided buffers are all filled before they are handled; the epoll loop hands each buffer
 * to its handler before it reads the next socket).
 */
static void test_epoll_many_sockets_one_buffer(void)
{
	static struct owner o[MANY];
	struct ring r;
	int s[MANY], c[MANY];
	char msg[64];
	unsigned done = 0;

	if (!ring_up(&r))
		return;
	for (int i = 0; i < MANY; i++) {
		owner_init(&o[i]);
		tcp_pair(&s[i], &c[i]);
		ring_recv(&r, &o[i].io, s[i]);
	}
	ring_poll(&r, 0);
	for (int i = 0; i < MANY; i++) {
		int n = snprintf(msg, sizeof(msg), "socket %d says hello", i);

		CU_ASSERT_EQUAL(write(c[i], msg, (size_t)n), n);
	}
	for (int k = 0; k < 100 && done < MANY; k++) {
		ring_poll(&r, 10);
		done = 0;
		for (int i = 0; i < MANY; i++)
			done += o[i].got_len > 0;
	}
	CU_ASSERT_EQUAL(done, MANY);
	for (int i = 0; i < MANY; i++) {
		int n = snprintf(msg, sizeof(msg), "socket %d says hello", i);

		CU_ASSERT_EQUAL(o[i].got_len, (size_t)n);
		CU_ASSERT_EQUAL(memcmp(o[i].got, msg, (size_t)n), 0);
		CU_ASSERT_EQUAL(o[i].finals, 0);
		ring_cancel_fd(&r, s[i]);
	}
	ring_poll(&r, 0);
	for (int i = 0; i < MANY; i++) {
		CU_ASSERT_EQUAL(o[i].io.pending, 0);
		CU_ASSERT_EQUAL(o[i].last[RING_OP_RECV], -ECANCELED);
		close(s[i]);
		close(c[i]);
	}
	CU_ASSERT_EQUAL(r.stats.enobufs, 0);
	ring_exit(&r);
}

/*
 * After a short send the next one waits for EPOLLOUT without a sendmsg that could only say
 * EAGAIN: the syscall count shows it; it completes once the peer reads.
 */
static void test_epoll_short_send_waits(void)
{
	enum { TOTAL = 4 << 20 };
	struct ring r;
	struct owner o;
	uint8_t *data = calloc(1, TOTAL), *sink = malloc(TOTAL);
	uint64_t calls;
	int s, c, small = 4096;

	owner_init(&o);
	tcp_pair(&s, &c);
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (!data || !sink || !ring_up(&r))
		goto out;
	o.iov = (struct iovec){data, TOTAL};
	o.mh = (struct msghdr){.msg_iov = &o.iov, .msg_iovlen = 1};
	ring_sendmsg(&r, &o.io, s, &o.mh);
	poll_until(&r, &o, send_done);
	CU_ASSERT(o.last[RING_OP_SEND] > 0 && o.last[RING_OP_SEND] < TOTAL);
	o.n[RING_OP_SEND] = 0;
	calls = r.stats.syscalls;
	ring_sendmsg(&r, &o.io, s, &o.mh);
	/* Only the registration for EPOLLOUT, no sendmsg; nothing completes before a reap. */
	CU_ASSERT(r.stats.syscalls - calls <= 1);
	CU_ASSERT_EQUAL(o.n[RING_OP_SEND], 0);
	CU_ASSERT_EQUAL(o.io.pending, 1);
	{
		struct reader rd = {.fd = c, .buf = sink, .want = TOTAL};
		pthread_t th;

		CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, reader_run, &rd), 0);
		while (!send_done(&o))
			ring_poll(&r, 100);
		shutdown(c, SHUT_RD);
		shutdown(s, SHUT_WR);
		pthread_join(th, NULL);
	}
	CU_ASSERT(o.last[RING_OP_SEND] > 0);
	ring_exit(&r);
out:
	free(data);
	free(sink);
	close(s);
	close(c);
}

/* The accept: EMFILE ends it (final completion), as io_uring's multishot accept does. */
static void test_epoll_accept_emfile(void)
{
	struct ring r;
	struct owner o;
	uint16_t port;
	int l = listen_any(&port), c;
	int spare[256], nspare = 0;
	struct rlimit old, low;

	owner_init(&o);
	if (!ring_up(&r))
		return;
	c = connect_to(port);
	/* Take every free descriptor under a low limit. */
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nspare < 256 && (spare[nspare] = dup(0)) >= 0)
		nspare++;
	ring_accept(&r, &o.io, l);
	poll_until(&r, &o, has_final);
	setrlimit(RLIMIT_NOFILE, &old);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	CU_ASSERT_EQUAL(o.last[RING_OP_ACCEPT], -EMFILE);
	while (nspare > 0)
		close(spare[--nspare]);
	/* Armed again, it takes the connection that waited. */
	ring_accept(&r, &o.io, l);
	poll_until(&r, &o, three_accepted);
	CU_ASSERT_EQUAL(o.nfds, 1);
	ring_cancel_fd(&r, l);
	poll_until(&r, &o, has_final);
	for (unsigned i = 0; i < o.nfds; i++)
		close(o.fds[i]);
	close(c);
	ring_exit(&r);
	close(l);
}

/* --- outgoing connections ----------------------------------------------------------------- */

static int socket_nb(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		abort();
	return fd;
}

static struct sockaddr_in loopback(uint16_t port)
{
	return (struct sockaddr_in){.sin_family = AF_INET,
	                            .sin_port = htons(port),
	                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static bool got_hello(const struct owner *o)
{
	return o->got_len >= 5;
}

/* Connected, the socket receives and sends through the ring as an accepted one does. */
static void test_connect(void)
{
	struct ring r;
	struct owner o;
	uint16_t port;
	int l = listen_any(&port), c = socket_nb(), s;
	struct sockaddr_in a = loopback(port);
	char buf[8] = {0};

	owner_init(&o);
	if (!ring_up(&r))
		return;
	ring_connect(&r, &o.io, c, (struct sockaddr *)&a, sizeof(a));
	CU_ASSERT_EQUAL(o.io.pending, 1);
	CU_ASSERT_EQUAL(o.n[RING_OP_CONNECT], 0); /* never inside the call */
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.n[RING_OP_CONNECT], 1);
	CU_ASSERT_EQUAL(o.last[RING_OP_CONNECT], 0);
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CU_ASSERT_FATAL(s >= 0);
	CU_ASSERT_EQUAL(write(s, "hello", 5), 5);
	ring_recv(&r, &o.io, c);
	poll_until(&r, &o, got_hello);
	CU_ASSERT_EQUAL(o.got_len, 5);
	CU_ASSERT(memcmp(o.got, "hello", 5) == 0);
	o.iov = (struct iovec){(void *)"world", 5};
	o.mh = (struct msghdr){.msg_iov = &o.iov, .msg_iovlen = 1};
	ring_sendmsg(&r, &o.io, c, &o.mh);
	poll_until(&r, &o, send_done);
	CU_ASSERT_EQUAL(o.last[RING_OP_SEND], 5);
	CU_ASSERT_EQUAL(read(s, buf, sizeof(buf)), 5);
	CU_ASSERT(memcmp(buf, "world", 5) == 0);
	ring_cancel_fd(&r, c);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	ring_exit(&r);
	close(s);
	close(c);
	close(l);
}

/* A port nobody listens on: -ECONNREFUSED, the pending count balanced. */
static void test_connect_refused(void)
{
	struct ring r;
	struct owner o;
	uint16_t port;
	int l = listen_any(&port), c = socket_nb();
	struct sockaddr_in a = loopback(port);

	close(l);
	owner_init(&o);
	if (!ring_up(&r))
		return;
	ring_connect(&r, &o.io, c, (struct sockaddr *)&a, sizeof(a));
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.n[RING_OP_CONNECT], 1);
	CU_ASSERT_EQUAL(o.last[RING_OP_CONNECT], -ECONNREFUSED);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	ring_exit(&r);
	close(c);
}

/*
 * A connect that cannot finish soon: the listener's accept queue is full, so the kernel drops
 * the SYN and the client would retry it a second later. ring_cancel_fd ends it with
 * -ECANCELED, and the socket can be closed.
 */
static void test_connect_cancel(void)
{
	struct ring r;
	struct owner o;
	struct sockaddr_in a;
	uint16_t port;
	int l = listen_any(&port), fill[8], nfill = 0, c;

	if (listen(l, 0) != 0)
		abort();
	a = loopback(port);
	/* Fill the queue (backlog 0 holds one) with connections nobody accepts. */
	for (; nfill < 8; nfill++) {
		fill[nfill] = socket_nb();
		if (connect(fill[nfill], (struct sockaddr *)&a, sizeof(a)) != 0) {
			nfill++;
			break;
		}
	}
	usleep(20000);
	c = socket_nb();
	owner_init(&o);
	if (!ring_up(&r))
		return;
	ring_connect(&r, &o.io, c, (struct sockaddr *)&a, sizeof(a));
	ring_poll(&r, 50);
	CU_ASSERT_EQUAL(o.n[RING_OP_CONNECT], 0);
	CU_ASSERT_EQUAL(o.io.pending, 1);
	ring_cancel_fd(&r, c);
	poll_until(&r, &o, has_final);
	CU_ASSERT_EQUAL(o.n[RING_OP_CONNECT], 1);
	CU_ASSERT_EQUAL(o.last[RING_OP_CONNECT], -ECANCELED);
	CU_ASSERT_EQUAL(o.io.pending, 0);
	close(c);
	ring_exit(&r);
	while (nfill > 0)
		close(fill[--nfill]);
	close(l);
}

/* The order completions were handed over in, across owners. */
static unsigned handed;

struct seq_owner {
	struct owner o;
	unsigned first_seq; /* 1 + the rank of its first completion; 0: none yet */
	unsigned count;
	char rbuf[8];
};

static void seq_fn(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct seq_owner *so = container_of(io, struct seq_owner, o.io);

	if (!so->first_seq)
		so->first_seq = ++handed;
	else
		handed++;
	so->count++;
	owner_fn(r, io, cqe);
}

static bool flood_read(const struct owner *o)
{
	return o->got_len >= 40000;
}

/*
 * An urgent io's completion is handed over ahead of those taken from the kernel with it, and
 * no completion twice: a socket's 40,000 bytes fill ten receive buffers in one wait, ahead of a
 * pipe's read armed after them (the stop signal behind a flood, in the broker).
 */
static void test_urgent_first(void)
{
	static struct seq_owner flood, sig;
	static uint8_t data[40000];
	struct ring r;
	int s, c, p[2];

	memset(&flood, 0, sizeof(flood));
	memset(&sig, 0, sizeof(sig));
	owner_init(&flood.o);
	owner_init(&sig.o);
	flood.o.io.fn = seq_fn;
	sig.o.io.fn = seq_fn;
	handed = 0;
	tcp_pair(&s, &c);
	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	CU_ASSERT_EQUAL(write(c, data, sizeof(data)), (ssize_t)sizeof(data));
	CU_ASSERT_EQUAL(write(p[1], "S", 1), 1);
	usleep(20000); /* every byte in the socket before the receive is armed */
	if (!ring_up(&r))
		return;
	ring_set_urgent(&r, &sig.o.io);
	ring_recv(&r, &flood.o.io, s);
	ring_read(&r, &sig.o.io, p[0], sig.rbuf, sizeof(sig.rbuf));
	ring_wait_us(&r, 100000);
	ring_reap(&r);
	CU_ASSERT_EQUAL(sig.count, 1);
	CU_ASSERT_EQUAL(sig.o.last[RING_OP_READ], 1);
	CU_ASSERT_EQUAL(sig.first_seq, 1);
	CU_ASSERT(flood.count >= 2);
	poll_until(&r, &flood.o, flood_read);
	CU_ASSERT_EQUAL(flood.o.got_len, sizeof(data));
	CU_ASSERT_EQUAL(memcmp(flood.o.got, data, sizeof(data)), 0);
	CU_ASSERT_EQUAL(sig.count, 1);
	CU_ASSERT_EQUAL(sig.o.io.pending, 0);
	ring_exit(&r);
	close(s);
	close(c);
	close(p[0]);
	close(p[1]);
}

#define BOTH(name, fn)                                                                             \
	static void fn##_uring(void)                                                               \
	{                                                                                          \
		backend = RING_BACKEND_IO_URING;                                                   \
		fn();                                                                              \
	}                                                                                          \
	static void fn##_epoll(void)                                                               \
	{                                                                                          \
		backend = RING_BACKEND_EPOLL;                                                      \
		fn();                                                                              \
	}

BOTH("accept", test_accept_and_cancel)
BOTH("recv", test_recv_then_eof)
BOTH("cancel recv", test_cancel_recv_rearm)
BOTH("partial", test_partial_send)
BOTH("cancel fd", test_cancel_fd_send_and_recv)
BOTH("recursion", test_no_recursion)
BOTH("doorbell", test_doorbell)
BOTH("file", test_write_sync)
BOTH("connect", test_connect)
BOTH("connect refused", test_connect_refused)
BOTH("connect cancelled", test_connect_cancel)

static void epoll_only(void (*fn)(void))
{
	backend = RING_BACKEND_EPOLL;
	fn();
}

static void test_many_epoll(void)
{
	epoll_only(test_epoll_many_sockets_one_buffer);
}

static void test_short_epoll(void)
{
	epoll_only(test_epoll_short_send_waits);
}

static void test_emfile_epoll(void)
{
	epoll_only(test_epoll_accept_emfile);
}

static void test_urgent_uring(void)
{
	backend = RING_BACKEND_IO_URING;
	test_urgent_first();
}

int main(void)
{
	static const struct tu_test uring[] = {
	        {"accept, then cancel", test_accept_and_cancel_uring},
	        {"recv, then EOF", test_recv_then_eof_uring},
	        {"recv cancelled, armed again", test_cancel_recv_rearm_uring},
	        {"partial sends", test_partial_send_uring},
	        {"cancel a socket's send and recv", test_cancel_fd_send_and_recv_uring},
	        {"no completion inside its submitter's reap", test_no_recursion_uring},
	        {"doorbell", test_doorbell_uring},
	        {"write, synced write, failed write", test_write_sync_uring},
	        {"connect, then receive and send", test_connect_uring},
	        {"connect refused", test_connect_refused_uring},
	        {"connect cancelled while pending", test_connect_cancel_uring},
	        {"an urgent completion first", test_urgent_uring},
	        {NULL, NULL},
	};
	static const struct tu_test epoll[] = {
	        {"accept, then cancel", test_accept_and_cancel_epoll},
	        {"recv, then EOF", test_recv_then_eof_epoll},
	        {"recv cancelled, armed again", test_cancel_recv_rearm_epoll},
	        {"partial sends", test_partial_send_epoll},
	        {"cancel a socket's send and recv", test_cancel_fd_send_and_recv_epoll},
	        {"no completion inside its submitter's reap", test_no_recursion_epoll},
	        {"doorbell", test_doorbell_epoll},
	        {"writes on the I/O thread", test_write_sync_epoll},
	        {"connect, then receive and send", test_connect_epoll},
	        {"connect refused", test_connect_refused_epoll},
	        {"connect cancelled while pending", test_connect_cancel_epoll},
	        {"many sockets, one receive buffer", test_many_epoll},
	        {"a short send's successor waits for EPOLLOUT", test_short_epoll},
	        {"EMFILE ends the accept", test_emfile_epoll},
	        {NULL, NULL},
	};

	tu_add_suite("ring (io_uring)", uring);
	tu_add_suite("ring (epoll)", epoll);
	return tu_run_registry();
}
