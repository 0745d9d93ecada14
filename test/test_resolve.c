/*
 * Tests of name resolution off the loop (src/io/resolve.c), on both ring back-ends: numeric
 * IPv4 and IPv6 addresses answered in the call with no thread; "localhost" answered through
 * the ring (from /etc/hosts, no network needed) as a completion, never inside the call; a
 * reserved .invalid name failing with getaddrinfo's reason; a lookup abandoned while its
 * thread runs, and one abandoned after the thread answered but before the ring delivered it,
 * both with the owner's struct freed at once (ASan would see a write into it, LeakSanitizer
 * a job never freed); several lookups in flight at once.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "io/resolve.h"
#include "io/ring.h"
#include "testutil.h"

static enum ring_backend backend;

static bool ring_up(struct ring *r)
{
	struct ring_params p = {.sq_entries = 64,
	                        .cq_entries = 256,
	                        .buf_count = 16,
	                        .buf_size = 4096,
	                        .backend = backend};
	char err[256];

	if (ring_init(r, &p, err, sizeof(err)) != 0) {
		CU_FAIL("ring_init");
		return false;
	}
	return true;
}

struct waiter {
	struct resolve rs;
	unsigned calls; /* callbacks */
	int status;     /* the last one's */
};

static void on_done(struct resolve *rs, int status)
{
	struct waiter *w = rs->arg;

	w->calls++;
	w->status = status;
	CU_ASSERT_FALSE(resolve_is_pending(rs));
}

static void poll_for(struct ring *r, const struct waiter *w)
{
	for (int i = 0; i < 500 && w->calls == 0; i++)
		ring_poll(r, 10);
}

static void test_numeric(void)
{
	struct ring r;
	struct waiter w = {0};
	char buf[64];
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&w.rs.addrs[0].sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&w.rs.addrs[0].sa;

	if (!ring_up(&r))
		return;
	CU_ASSERT_EQUAL(resolve_start(&w.rs, &r, "127.0.0.1", 1883, on_done, &w), 0);
	CU_ASSERT_FALSE(resolve_is_pending(&w.rs));
	CU_ASSERT_EQUAL(w.rs.count, 1);
	CU_ASSERT_EQUAL(w.rs.addrs[0].family, AF_INET);
	CU_ASSERT_EQUAL(w.rs.addrs[0].len, sizeof(struct sockaddr_in));
	CU_ASSERT_EQUAL(ntohs(v4->sin_port), 1883);
	CU_ASSERT_STRING_EQUAL(resolve_addr_str(&w.rs.addrs[0], buf, sizeof(buf)), "127.0.0.1");

	CU_ASSERT_EQUAL(resolve_start(&w.rs, &r, "::1", 8883, on_done, &w), 0);
	CU_ASSERT_EQUAL(w.rs.count, 1);
	CU_ASSERT_EQUAL(w.rs.addrs[0].family, AF_INET6);
	CU_ASSERT_EQUAL(w.rs.addrs[0].len, sizeof(struct sockaddr_in6));
	CU_ASSERT_EQUAL(ntohs(v6->sin6_port), 8883);
	CU_ASSERT_STRING_EQUAL(resolve_addr_str(&w.rs.addrs[0], buf, sizeof(buf)), "::1");

	CU_ASSERT_EQUAL(resolve_start(&w.rs, &r, "2001:db8::7", 1, on_done, &w), 0);
	CU_ASSERT_STRING_EQUAL(resolve_addr_str(&w.rs.addrs[0], buf, sizeof(buf)), "2001:db8::7");
	/* Nothing went through the ring. */
	ring_poll(&r, 10);
	CU_ASSERT_EQUAL(w.calls, 0);
	ring_exit(&r);
}

static void test_localhost(void)
{
	struct ring r;
	struct waiter w = {0};
	bool loop = false;

	if (!ring_up(&r))
		return;
	CU_ASSERT_EQUAL_FATAL(resolve_start(&w.rs, &r, "localhost", 1883, on_done, &w),
	                      RESOLVE_PENDING);
	CU_ASSERT_TRUE(resolve_is_pending(&w.rs));
	CU_ASSERT_EQUAL(w.calls, 0); /* never inside the call */
	poll_for(&r, &w);
	CU_ASSERT_EQUAL(w.calls, 1);
	CU_ASSERT_EQUAL(w.status, 0);
	CU_ASSERT(w.rs.count >= 1);
	for (unsigned i = 0; i < w.rs.count; i++) {
		const struct resolve_addr *a = &w.rs.addrs[i];

		if (a->family == AF_INET) {
			const struct sockaddr_in *s = (const struct sockaddr_in *)&a->sa;

			loop |= ntohl(s->sin_addr.s_addr) == INADDR_LOOPBACK;
			CU_ASSERT_EQUAL(ntohs(s->sin_port), 1883);
		} else {
			const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->sa;

			CU_ASSERT_EQUAL(a->family, AF_INET6);
			loop |= IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
			CU_ASSERT_EQUAL(ntohs(s->sin6_port), 1883);
		}
	}
	CU_ASSERT_TRUE(loop);
	/* The struct is free for another lookup, from the callback's point on. */
	CU_ASSERT_EQUAL(resolve_start(&w.rs, &r, "localhost", 1, on_done, &w), RESOLVE_PENDING);
	w.calls = 0;
	poll_for(&r, &w);
	CU_ASSERT_EQUAL(w.calls, 1);
	ring_exit(&r);
}

static void test_invalid(void)
{
	struct ring r;
	struct waiter w = {0};

	if (!ring_up(&r))
		return;
	CU_ASSERT_EQUAL_FATAL(
	        resolve_start(&w.rs, &r, "no-such-host.starling.invalid", 1883, on_done, &w),
	        RESOLVE_PENDING);
	poll_for(&r, &w);
	CU_ASSERT_EQUAL(w.calls, 1);
	/* NXDOMAIN, or no resolver to ask here: a failure with a reason either way. */
	CU_ASSERT_NOT_EQUAL(w.status, 0);
	CU_ASSERT_EQUAL(w.rs.count, 0);
	CU_ASSERT_PTR_NOT_NULL(resolve_strerror(&w.rs, w.status));
	/* Bad numeric-looking input is a name to getaddrinfo; too long a name is refused. */
	{
		char big[RESOLVE_HOST_MAX + 8];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		CU_ASSERT_EQUAL(resolve_start(&w.rs, &r, big, 1, on_done, &w), EAI_OVERFLOW);
	}
	ring_exit(&r);
}

/* Abandoned while the thread runs, and after it answered but before the ring delivered. */
static void test_abandon(void)
{
	struct ring r;
	struct waiter *w = calloc(1, sizeof(*w)), *w2 = calloc(1, sizeof(*w2));

	if (!w || !w2 || !ring_up(&r))
		return;
	CU_ASSERT_EQUAL(resolve_start(&w->rs, &r, "localhost", 1, on_done, w), RESOLVE_PENDING);
	resolve_cancel(&w->rs, &r);
	CU_ASSERT_FALSE(resolve_is_pending(&w->rs));
	free(w);
	CU_ASSERT_EQUAL(resolve_start(&w2->rs, &r, "localhost", 1, on_done, w2), RESOLVE_PENDING);
	usleep(200000); /* the thread has written its answer */
	resolve_cancel(&w2->rs, &r);
	free(w2);
	for (int i = 0; i < 20; i++)
		ring_poll(&r, 10);
	resolve_cancel(&(struct resolve){0}, &r); /* nothing pending: nothing to do */
	ring_exit(&r);
	usleep(200000); /* LeakSanitizer at exit: the first job is freed by its thread */
}

static void test_many(void)
{
	enum { N = 6 };
	struct ring r;
	struct waiter w[N];
	unsigned done = 0;

	memset(w, 0, sizeof(w));
	if (!ring_up(&r))
		return;
	for (unsigned i = 0; i < N; i++)
		CU_ASSERT_EQUAL(resolve_start(&w[i].rs, &r,
		                              i % 2 ? "localhost" : "ip6-none.invalid",
		                              (uint16_t)(100 + i), on_done, &w[i]),
		                RESOLVE_PENDING);
	for (int k = 0; k < 500 && done < N; k++) {
		ring_poll(&r, 10);
		done = 0;
		for (unsigned i = 0; i < N; i++)
			done += w[i].calls;
	}
	CU_ASSERT_EQUAL(done, N);
	for (unsigned i = 0; i < N; i++)
		CU_ASSERT_EQUAL(w[i].status == 0, i % 2 == 1);
	ring_exit(&r);
}

#define BOTH(fn)                                                                                   \
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

BOTH(test_numeric)
BOTH(test_localhost)
BOTH(test_invalid)
BOTH(test_abandon)
BOTH(test_many)

int main(void)
{
	static const struct tu_test uring[] = {
	        {"numeric addresses, no thread", test_numeric_uring},
	        {"localhost through the ring", test_localhost_uring},
	        {"a .invalid name fails", test_invalid_uring},
	        {"abandoned while pending", test_abandon_uring},
	        {"several at once", test_many_uring},
	        {NULL, NULL},
	};
	static const struct tu_test epoll[] = {
	        {"numeric addresses, no thread", test_numeric_epoll},
	        {"localhost through the ring", test_localhost_epoll},
	        {"a .invalid name fails", test_invalid_epoll},
	        {"abandoned while pending", test_abandon_epoll},
	        {"several at once", test_many_epoll},
	        {NULL, NULL},
	};

	tu_add_suite("resolve (io_uring)", uring);
	tu_add_suite("resolve (epoll)", epoll);
	return tu_run_registry();
}
