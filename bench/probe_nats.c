/*
 * Probe: what does libnats (the NATS C client, Debian's libnats-dev 3.4) cost per message, and
 * what does driving it from an external event loop change? (kernel-notes/cluster.md, "libnats'
 * threads".) Issue 14 must choose between libnats on a thread of its own, libnats attached to a
 * worker's loop, and speaking the NATS protocol itself; this gives the library's side of that.
 *
 * Each mode connects to URL, makes one asynchronous subscription, publishes MESSAGES of BYTES
 * on its subject and waits until the server has delivered all of them back (NATS echoes a
 * connection's own messages to its subscriptions), then prints messages/s, the process's CPU
 * per message (publish and receive together) and its thread count:
 *   threads  libnats as it comes: read loop, flusher and delivery threads
 *   evloop   natsOptions_SetEventLoop with a minimal epoll adapter run by this thread
 *            (attach/read/write/detach as nats/adapters/libuv.h does them, without the hop
 *            through uv_async_t: epoll_ctl may be called from any thread)
 * Nothing here is part of the broker; it needs a running nats-server (make probes builds it).
 *
 *   probe_nats URL [MESSAGES [BYTES]]     defaults 200000 16
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The external loop: one epoll set, one connection. */
struct evloop {
	int epfd;           /* the epoll set this thread waits on */
	natsConnection *nc; /* the attached connection */
	int fd;             /* its socket */
	uint32_t events;    /* the interest registered for fd */
	pthread_mutex_t mu; /* write(add) may come from libnats' flusher thread */
};

static atomic_long received;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc, (void)sub, (void)closure;
	atomic_fetch_add_explicit(&received, 1, memory_order_relaxed);
	natsMsg_Destroy(msg);
}

static natsStatus ev_set(struct evloop *el, uint32_t bit, bool add)
{
	struct epoll_event ev;

	pthread_mutex_lock(&el->mu);
	el->events = add ? el->events | bit : el->events & ~bit;
	ev = (struct epoll_event){.events = el->events, .data.ptr = el};
	/* A socket already closed by a reconnect fails here; libnats attaches the new one. */
	(void)epoll_ctl(el->epfd, EPOLL_CTL_MOD, el->fd, &ev);
	pthread_mutex_unlock(&el->mu);
	return NATS_OK;
}

static natsStatus ev_attach(void **user, void *loop, natsConnection *nc, natsSock fd)
{
	struct evloop *el = loop;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = el};

	pthread_mutex_lock(&el->mu);
	el->nc = nc;
	el->fd = fd;
	el->events = EPOLLIN;
	if (epoll_ctl(el->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 &&
	    epoll_ctl(el->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
		pthread_mutex_unlock(&el->mu);
		return NATS_SYS_ERROR;
	}
	pthread_mutex_unlock(&el->mu);
	*user = el;
	return NATS_OK;
}

static natsStatus ev_read(void *user, bool add)
{
	return ev_set(user, EPOLLIN, add);
}

static natsStatus ev_write(void *user, bool add)
{
	return ev_set(user, EPOLLOUT, add);
}

static natsStatus ev_detach(void *user)
{
	struct evloop *el = user;

	(void)epoll_ctl(el->epfd, EPOLL_CTL_DEL, el->fd, NULL);
	return NATS_OK;
}

/* Runs the loop once, waiting up to timeout_ms. */
static void ev_poll(struct evloop *el, int timeout_ms)
{
	struct epoll_event evs[4];
	int n = epoll_wait(el->epfd, evs, 4, timeout_ms);

	for (int i = 0; i < n; i++) {
		if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			natsConnection_ProcessReadEvent(el->nc);
		if (evs[i].events & EPOLLOUT)
			natsConnection_ProcessWriteEvent(el->nc);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int threads(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static int run(const char *url, bool evloop, long count, int bytes)
{
	struct evloop el = {.epfd = epoll_create1(EPOLL_CLOEXEC)};
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	char *payload = calloc(1, (size_t)bytes + 1);
	double t0, c0, t1, c1;
	natsStatus s;

	pthread_mutex_init(&el.mu, NULL);
	atomic_store(&received, 0);
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, url);
	if (s == NATS_OK && evloop)
		s = natsOptions_SetEventLoop(opts, &el, ev_attach, ev_read, ev_write, ev_detach);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	if (s == NATS_OK)
		s = natsConnection_Subscribe(&sub, nc, "probe.nats", on_msg, NULL);
	/* Unbounded pending: the probe measures cost, not the slow-consumer limit. */
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (s == NATS_OK && !evloop)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK) {
		fprintf(stderr, "probe_nats: %s: %s\n", url, natsStatus_GetText(s));
		return 1;
	}
	if (evloop) /* the SUB must reach the server before the first PUB comes back */
		for (int i = 0; i < 10; i++)
			ev_poll(&el, 1);
	t0 = now_s();
	c0 = cpu_s();
	for (long i = 0; i < count && s == NATS_OK; i++) {
		s = natsConnection_Publish(nc, "probe.nats", payload, bytes);
		if (evloop && (i & 255) == 255)
			ev_poll(&el, 0);
	}
	if (evloop)
		natsConnection_ProcessWriteEvent(nc); /* what is left in the write buffer */
	while (s == NATS_OK && atomic_load(&received) < count && now_s() - t0 < 60) {
		if (evloop)
			ev_poll(&el, 10);
		else
			usleep(1000);
	}
	t1 = now_s();
	c1 = cpu_s();
	printf("%-8s %ld of %ld messages of %d B in %.3f s: %.0f msg/s, %.2f us CPU per message "
	       "(publish + receive), %d threads\n",
	       evloop ? "evloop" : "threads", atomic_load(&received), count, bytes, t1 - t0,
	       (double)atomic_load(&received) / (t1 - t0),
	       (c1 - c0) * 1e6 / (double)(atomic_load(&received) ? atomic_load(&received) : 1),
	       threads());
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	close(el.epfd);
	free(payload);
	return s == NATS_OK && atomic_load(&received) == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	long count = argc > 2 ? atol(argv[2]) : 200000;
	int bytes = argc > 3 ? atoi(argv[3]) : 16, rc = 0;

	if (argc < 2 || count <= 0 || bytes < 0) {
		fprintf(stderr, "usage: probe_nats URL [MESSAGES [BYTES]]\n");
		return 2;
	}
	printf("libnats %s\n", nats_GetVersion());
	rc |= run(argv[1], false, count, bytes);
	rc |= run(argv[1], true, count, bytes);
	nats_Close();
	return rc;
}
