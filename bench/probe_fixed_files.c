/*
 * Probe: what do registered (fixed) descriptors save per send? (kernel-notes, "Registered
 * descriptors".) The broker's question is whether IOSQE_FIXED_FILE on its sends (and
 * multishot accept into direct descriptors) is worth the bookkeeping: direct descriptors live
 * in one ring's table, so a connection moving to its home worker, setsockopt and shutdown would
 * all need io_uring forms.
 *
 * S loopback TCP connections; the sending thread submits one small send per connection per
 * round (the broker's shape at moderate rates: one send per subscriber per loop iteration) and
 * waits for the S completions; a reader thread drains the other ends. Rounds alternate between
 * plain descriptors and the same sockets registered in a fixed file table, and the sender's
 * thread CPU time per send is compared. Nothing here is part of the broker.
 *
 *   probe_fixed_files [CONNECTIONS [ROUNDS [BYTES]]]     defaults 50 20000 30
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024

static int srv[MAX_CONNS], cli[MAX_CONNS];
static unsigned nconns;
static atomic_bool done;

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drains every client end so the sender never meets a full socket. */
static void *reader(void *arg)
{
	int ep = epoll_create1(0);
	char buf[65536];

	(void)arg;
	for (unsigned i = 0; i < nconns; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

		epoll_ctl(ep, EPOLL_CTL_ADD, cli[i], &ev);
	}
	while (!atomic_load(&done)) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);

		for (int k = 0; k < n; k++)
			while (recv(cli[evs[k].data.u32], buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
	}
	close(ep);
	return NULL;
}

static int connect_pairs(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, MAX_CONNS) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		return -1;
	for (unsigned i = 0; i < nconns; i++) {
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (cli[i] < 0 || connect(cli[i], (struct sockaddr *)&a, sizeof(a)))
			return -1;
		srv[i] = accept(l, NULL, NULL);
		if (srv[i] < 0)
			return -1;
		setsockopt(srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	close(l);
	return 0;
}

/* One round: a send per connection, then every completion. Returns the sender's CPU time. */
static double round_once(struct io_uring *ring, bool fixed, const char *msg, size_t len)
{
	double t0 = thread_cpu_s();
	struct io_uring_cqe *cqe;

	for (unsigned i = 0; i < nconns; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		io_uring_prep_send(sqe, fixed ? (int)i : srv[i], msg, len, MSG_NOSIGNAL);
		if (fixed)
			sqe->flags |= IOSQE_FIXED_FILE;
	}
	io_uring_submit_and_wait(ring, nconns);
	for (unsigned seen = 0; seen < nconns;) {
		unsigned head, n = 0;

		io_uring_for_each_cqe(ring, head, cqe)
		{
			if (cqe->res != (int)len) {
				fprintf(stderr, "send: %d\n", cqe->res);
				exit(1);
			}
			n++;
		}
		io_uring_cq_advance(ring, n);
		seen += n;
		if (seen < nconns)
			io_uring_wait_cqe(ring, &cqe);
	}
	return thread_cpu_s() - t0;
}

int main(int argc, char **argv)
{
	unsigned rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 20000;
	size_t len = argc > 3 ? (size_t)atoi(argv[3]) : 30;
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
	                                     IORING_SETUP_DEFER_TASKRUN};
	double cpu[2] = {0, 0};
	struct io_uring ring;
	pthread_t rt;
	char msg[65536];

	nconns = argc > 1 ? (unsigned)atoi(argv[1]) : 50;
	if (nconns == 0 || nconns > MAX_CONNS || len == 0 || len > sizeof(msg)) {
		fprintf(stderr, "usage: probe_fixed_files [CONNECTIONS<=%d [ROUNDS [BYTES]]]\n",
		        MAX_CONNS);
		return 2;
	}
	memset(msg, 'x', sizeof(msg));
	if (connect_pairs() || io_uring_queue_init_params(2 * MAX_CONNS, &ring, &p) ||
	    io_uring_register_files(&ring, srv, nconns)) {
		perror("setup");
		return 1;
	}
	pthread_create(&rt, NULL, reader, NULL);
	/* Alternate in blocks of 100 rounds, so drift in the machine hits both alike. */
	for (unsigned r = 0; r < rounds; r++)
		cpu[(r / 100) % 2] += round_once(&ring, (r / 100) % 2, msg, len);
	atomic_store(&done, true);
	pthread_join(rt, NULL);
	printf("{\"connections\":%u,\"rounds\":%u,\"bytes\":%zu,"
	       "\"plain_us_per_send\":%.3f,\"fixed_us_per_send\":%.3f}\n",
	       nconns, rounds, len, cpu[0] * 1e6 / (rounds / 2.0 * nconns),
	       cpu[1] * 1e6 / (rounds / 2.0 * nconns));
	io_uring_queue_exit(&ring);
	return 0;
}
