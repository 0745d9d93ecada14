/*
 * Tests of the cross-worker channel (src/io/chan.c) and of what the workers build on it with
 * the ring (src/io/ring.c): doorbells between rings, and a socket handed from one thread's
 * ring to another's with the bytes the first had read.
 *
 * The queue is checked against a plain FIFO model: random pushes, publishes, pops and releases
 * on one thread, from counters starting just below 2^32 so that every run crosses the wrap,
 * with the queue's answers (full, empty, the entry popped) compared at each step. Then two
 * threads: a producer and a consumer passing a million numbered entries through a small
 * channel, each woken by the other's doorbell; the consumer must see every number once, in
 * order (run under ThreadSanitizer by `make tsan`). The ring tests run on both back-ends
 * (io_uring, epoll): the epoll back-end's doorbells are its eventfd.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "io/chan.h"
#include "io/ring.h"
#include "starling/error.h"
#include "testutil.h"

#define MODEL_CAP 64u

/* The model: a FIFO of published and unpublished values, and a count of popped ones. */
struct model {
	uint64_t vals[1u << 16]; /* every value pushed, in order */
	uint32_t pushed;         /* values pushed */
	uint32_t published;      /* of which the consumer may see */
	uint32_t popped;         /* values popped */
	uint32_t released;       /* of which released back to the producer */
};

static void model_run(uint32_t start, unsigned seed)
{
	static struct model m;
	struct chan ch;
	struct chan_entry e;

	memset(&m, 0, sizeof(m));
	srand(seed);
	CU_ASSERT_EQUAL_FATAL(chan_init(&ch, MODEL_CAP, start), ST_OK);
	for (unsigned step = 0; step < 40000 && m.pushed < (1u << 16) - 1; step++) {
		switch (tu_rand(4)) {
		case 0: { /* push: full exactly when the producer's view says so */
			bool full = m.pushed - m.released >= MODEL_CAP;
			bool ok;

			e = (struct chan_entry){.kind = 1, .u64 = m.pushed + 1000ull};
			ok = chan_push(&ch, &e);
			CU_ASSERT_EQUAL(ok, !full);
			if (ok) {
				m.vals[m.pushed] = m.pushed + 1000ull;
				m.pushed++;
			}
			/* The producer's view lags the consumer's releases: an upper bound. */
			CU_ASSERT(chan_fill(&ch) >= m.pushed - m.released);
			CU_ASSERT(chan_fill(&ch) <= MODEL_CAP);
			break;
		}
		case 1: /* publish */
			CU_ASSERT_EQUAL(chan_publish(&ch), m.published != m.pushed);
			m.published = m.pushed;
			break;
		case 2: { /* pop: only what was published, in order */
			bool ok = chan_pop(&ch, &e);

			CU_ASSERT_EQUAL(ok, m.popped < m.published);
			if (ok) {
				CU_ASSERT_EQUAL(e.u64, m.vals[m.popped]);
				m.popped++;
			}
			break;
		}
		default: /* release */
			chan_release(&ch);
			m.released = m.popped;
			break;
		}
	}
	/* Drain: everything published comes out, in order, and then nothing. */
	chan_publish(&ch);
	while (chan_pop(&ch, &e))
		CU_ASSERT_EQUAL(e.u64, m.vals[m.popped++]);
	CU_ASSERT_EQUAL(m.popped, m.pushed);
	CU_ASSERT_FALSE(chan_pop(&ch, &e));
	chan_fini(&ch);
}

static void test_model(void)
{
	model_run(0, 1);
	model_run(12345, 2);
}

static void test_model_wrap(void)
{
	/* Counters a few entries below 2^32: the fill level must survive the wrap. */
	model_run(UINT32_MAX - 5, 3);
	model_run(UINT32_MAX - MODEL_CAP, 4);
}

static void test_full_exactly(void)
{
	struct chan ch;
	struct chan_entry e = {.kind = 7};

	CU_ASSERT_EQUAL_FATAL(chan_init(&ch, 4, UINT32_MAX - 1), ST_OK);
	for (unsigned i = 0; i < 4; i++) {
		e.u64 = i;
		CU_ASSERT_TRUE(chan_push(&ch, &e));
	}
	CU_ASSERT_FALSE(chan_push(&ch, &e));
	/* Nothing visible until published; popped slots return only once released. */
	CU_ASSERT_FALSE(chan_pop(&ch, &e));
	CU_ASSERT_TRUE(chan_publish(&ch));
	CU_ASSERT_FALSE(chan_publish(&ch));
	CU_ASSERT_TRUE(chan_pop(&ch, &e));
	CU_ASSERT_EQUAL(e.u64, 0);
	CU_ASSERT_FALSE(chan_push(&ch, &e));
	chan_release(&ch);
	e.u64 = 4;
	CU_ASSERT_TRUE(chan_push(&ch, &e));
	chan_publish(&ch);
	for (unsigned i = 1; i <= 4; i++) {
		CU_ASSERT_TRUE(chan_pop(&ch, &e));
		CU_ASSERT_EQUAL(e.u64, i);
		CU_ASSERT_EQUAL(e.kind, 7);
	}
	CU_ASSERT_FALSE(chan_pop(&ch, &e));
	chan_fini(&ch);
}

/* Peek shows the oldest published entry and leaves it; a pop after it takes that one. */
static void test_peek(void)
{
	struct chan ch;
	struct chan_entry e = {.kind = 3};
	const struct chan_entry *p;

	CU_ASSERT_EQUAL_FATAL(chan_init(&ch, 4, UINT32_MAX - 1), ST_OK);
	CU_ASSERT_PTR_NULL(chan_peek(&ch));
	for (unsigned i = 0; i < 3; i++) {
		e.u64 = 10 + i;
		CU_ASSERT_TRUE(chan_push(&ch, &e));
	}
	CU_ASSERT_PTR_NULL(chan_peek(&ch)); /* not published yet */
	chan_publish(&ch);
	for (unsigned i = 0; i < 3; i++) {
		p = chan_peek(&ch);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_EQUAL(p->u64, 10 + i);
		CU_ASSERT_EQUAL(chan_peek(&ch), p); /* twice: the same entry */
		CU_ASSERT_TRUE(chan_pop(&ch, &e));
		CU_ASSERT_EQUAL(e.u64, 10 + i);
	}
	CU_ASSERT_PTR_NULL(chan_peek(&ch));
	chan_release(&ch);
	/* Across the counters' wrap. */
	e.u64 = 99;
	CU_ASSERT_TRUE(chan_push(&ch, &e));
	chan_publish(&ch);
	p = chan_peek(&ch);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->u64, 99);
	chan_fini(&ch);
}

/* --- two threads, two rings ---------------------------------------------------------------- */

#define PASS_COUNT 1000000u

static struct ring_params test_ring = {
        .sq_entries = 64,
        .cq_entries = 1024,
        .buf_count = 16,
        .buf_size = 4096,
};

/* One side of the two-thread tests: its ring and its doorbell. */
struct side {
	struct ring ring;      /* created by the side's own thread */
	struct ring_io bell;   /* the other side's doorbells land here */
	uint64_t rung;         /* doorbells received */
	pthread_barrier_t *go; /* both rings exist */
	struct side *peer;     /* the other side */
	struct chan *ch;       /* producer -> consumer */
	struct chan *back;     /* consumer -> producer (hand-off test: unused) */
	bool ok;               /* the side's own checks passed */
	int fd;                /* hand-off test: the socket */
	char got[64];          /* hand-off test: everything the consumer read */
	size_t got_len;        /* bytes in got */
};

static void on_bell(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct side *s = (struct side *)((char *)io - offsetof(struct side, bell));

	(void)r;
	CU_ASSERT_EQUAL(cqe->op, RING_OP_MSG);
	s->rung++;
}

static bool side_init(struct side *s)
{
	char err[256];

	s->bell.fn = on_bell;
	if (ring_init(&s->ring, &test_ring, err, sizeof(err)) < 0)
		return false;
	return true;
}

static void *producer(void *arg)
{
	struct side *s = arg;
	struct chan_entry e = {.kind = 1};
	uint32_t next = 0;

	s->ok = side_init(s);
	pthread_barrier_wait(s->go);
	if (!s->ok)
		return NULL;
	while (next < PASS_COUNT) {
		bool full = false;

		/* A batch per loop: push what fits, publish once, ring once. */
		for (unsigned i = 0; i < 100 && next < PASS_COUNT && !full; i++) {
			e.u64 = next;
			full = !chan_push(s->ch, &e);
			next += !full;
		}
		if (chan_publish(s->ch))
			ring_msg(&s->ring, &s->peer->ring, &s->peer->bell, 0);
		/* Submits the doorbell; when full, gives the consumer a moment. */
		ring_poll(&s->ring, full ? 1 : 0);
	}
	ring_poll(&s->ring, 0); /* submit the last doorbell */
	return NULL;
}

static void *consumer(void *arg)
{
	struct side *s = arg;
	struct chan_entry e;
	uint32_t expect = 0;

	s->ok = side_init(s);
	pthread_barrier_wait(s->go);
	if (!s->ok)
		return NULL;
	while (expect < PASS_COUNT) {
		if (ring_poll(&s->ring, 1000) < 0)
			break;
		while (chan_pop(s->ch, &e)) {
			if (e.u64 != expect)
				s->ok = false;
			expect++;
		}
		chan_release(s->ch);
	}
	if (expect != PASS_COUNT)
		s->ok = false;
	return NULL;
}

static void run_pair(void *(*a)(void *), void *(*b)(void *), struct side *sa, struct side *sb)
{
	pthread_barrier_t go;
	pthread_t ta, tb;

	pthread_barrier_init(&go, NULL, 2);
	sa->go = sb->go = &go;
	sa->peer = sb;
	sb->peer = sa;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, a, sa), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, b, sb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&go);
}

static void test_two_threads(void)
{
	static struct side p, c;
	struct chan ch;

	memset(&p, 0, sizeof(p));
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(chan_init(&ch, 256, UINT32_MAX - 1000), ST_OK);
	p.ch = c.ch = &ch;
	run_pair(producer, consumer, &p, &c);
	CU_ASSERT_TRUE(p.ok);
	CU_ASSERT_TRUE(c.ok);
	/* Every doorbell the consumer got was one the producer rang; at least one arrived. */
	CU_ASSERT(c.rung > 0 && c.rung <= p.ring.stats.msgs_sent);
	CU_ASSERT_EQUAL(p.ring.stats.msg_errors, 0);
	ring_exit(&p.ring);
	ring_exit(&c.ring);
	chan_fini(&ch);
}

/* --- descriptor hand-off ------------------------------------------------------------------- */

static const char stream[] = "CONNECT-then-the-rest-of-the-stream";
#define FIRST_BYTES 7 /* what the first thread reads before it hands the socket on */

struct recv_ctx {
	struct ring_io io; /* the receive */
	struct side *s;    /* its side */
	bool done;         /* EOF or an error ended it */
};

static void on_recv(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct recv_ctx *rc = (struct recv_ctx *)io;
	struct side *s = rc->s;

	(void)r;
	if (cqe->res > 0 && s->got_len + (size_t)cqe->res <= sizeof(s->got)) {
		memcpy(s->got + s->got_len, cqe->buf, (size_t)cqe->res);
		s->got_len += (size_t)cqe->res;
	}
	if (!cqe->more)
		rc->done = true;
}

/* Reads FIRST_BYTES on its own ring, cancels its receive, hands fd and bytes on. */
static void *handoff_from(void *arg)
{
	struct side *s = arg;
	struct recv_ctx rc = {.io.fn = on_recv, .s = s};
	uint8_t *bytes;
	struct chan_entry e = {.kind = 2};

	s->ok = side_init(s);
	pthread_barrier_wait(s->go);
	if (!s->ok)
		return NULL;
	ring_recv(&s->ring, &rc.io, s->fd);
	while (s->got_len < FIRST_BYTES)
		ring_poll(&s->ring, 1000);
	ring_cancel_recv(&s->ring, &rc.io);
	while (rc.io.pending)
		ring_poll(&s->ring, 1000);
	bytes = malloc(s->got_len);
	memcpy(bytes, s->got, s->got_len);
	e.arg = (uint32_t)s->fd;
	e.u64 = s->got_len;
	e.p1 = bytes;
	s->ok = chan_push(s->ch, &e) && chan_publish(s->ch);
	ring_msg(&s->ring, &s->peer->ring, &s->peer->bell, 0);
	ring_poll(&s->ring, 0);
	return NULL;
}

/* Takes the socket with the bytes read so far and reads the rest on its own ring. */
static void *handoff_to(void *arg)
{
	struct side *s = arg;
	struct recv_ctx rc = {.io.fn = on_recv, .s = s};
	struct chan_entry e;

	s->ok = side_init(s);
	pthread_barrier_wait(s->go);
	if (!s->ok)
		return NULL;
	while (!chan_pop(s->ch, &e))
		ring_poll(&s->ring, 1000);
	chan_release(s->ch);
	memcpy(s->got, e.p1, e.u64);
	s->got_len = e.u64;
	free(e.p1);
	ring_recv(&s->ring, &rc.io, (int)e.arg);
	while (!rc.done)
		ring_poll(&s->ring, 1000);
	return NULL;
}

static void *writer(void *arg)
{
	int fd = *(int *)arg;

	/* The first bytes alone, then the rest once the first side has certainly read them. */
	if (write(fd, stream, FIRST_BYTES) != FIRST_BYTES)
		return NULL;
	usleep(100000);
	if (write(fd, stream + FIRST_BYTES, sizeof(stream) - FIRST_BYTES) < 0)
		return NULL;
	usleep(100000);
	shutdown(fd, SHUT_WR);
	return NULL;
}

static void test_handoff(void)
{
	static struct side a, b;
	struct chan ch;
	pthread_t tw;
	int sv[2];

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CU_ASSERT_EQUAL_FATAL(chan_init(&ch, 4, 0), ST_OK);
	a.ch = b.ch = &ch;
	a.fd = sv[0];
	CU_ASSERT_EQUAL_FATAL(pthread_create(&tw, NULL, writer, &sv[1]), 0);
	run_pair(handoff_from, handoff_to, &a, &b);
	pthread_join(tw, NULL);
	CU_ASSERT_TRUE(a.ok);
	CU_ASSERT_TRUE(b.ok);
	/* Not a byte lost, duplicated or reordered across the move. */
	CU_ASSERT_EQUAL(b.got_len, sizeof(stream));
	CU_ASSERT_EQUAL(memcmp(b.got, stream, sizeof(stream)), 0);
	ring_exit(&a.ring);
	ring_exit(&b.ring);
	chan_fini(&ch);
	close(sv[0]);
	close(sv[1]);
}

static void test_two_threads_epoll(void)
{
	test_ring.backend = RING_BACKEND_EPOLL;
	test_two_threads();
	test_ring.backend = RING_BACKEND_IO_URING;
}

static void test_handoff_epoll(void)
{
	test_ring.backend = RING_BACKEND_EPOLL;
	test_handoff();
	test_ring.backend = RING_BACKEND_IO_URING;
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"model", test_model},
	        {"model across the 2^32 wrap", test_model_wrap},
	        {"full, publish, release", test_full_exactly},
	        {"peek leaves the entry", test_peek},
	        {"two threads, doorbells, order", test_two_threads},
	        {"socket hand-off between rings", test_handoff},
	        {"two threads, doorbells, order (epoll)", test_two_threads_epoll},
	        {"socket hand-off between rings (epoll)", test_handoff_epoll},
	        {NULL, NULL},
	};

	tu_add_suite("chan", tests);
	return tu_run_registry();
}
