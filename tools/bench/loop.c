/*
 * starling-bench's io_uring loop (bench.h), one per thread: ring and provided-buffer setup,
 * connects, the one multishot recv per connection, the one send in flight per connection, the
 * wake-ups of other threads, and the dispatch of completions. It knows nothing of MQTT beyond
 * handing received bytes to mqtt.c.
 *
 * The ring is SINGLE_ISSUER | DEFER_TASKRUN (completion work runs when this thread waits), so
 * run.c submits and waits once per iteration and everything queued in between rides along.
 * SINGLE_ISSUER binds the ring to the thread that creates it: each thread sets up its own, and
 * another thread reaches it only through IORING_OP_MSG_RING, a CQE posted into it, which
 * wakes it (flow.c: a blocked publisher whose subscribers are elsewhere).
 * liburing 2.3 has no io_uring_setup_buf_ring: the buffer ring is mmap'd and registered here.
 */
#include "bench.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static uint64_t user_data(uint32_t conn, enum bench_op op)
{
	return ((uint64_t)conn << 8) | (uint64_t)op;
}

static struct io_uring_sqe *get_sqe(struct bench *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (sqe == NULL) {
		/* SQ full: push what is queued to the kernel (no waiting) and take a fresh one. */
		int rc = io_uring_submit(&b->ring);
		if (rc < 0)
			bench_fail(b, "io_uring_submit: %s", strerror(-rc));
		sqe = io_uring_get_sqe(&b->ring);
		if (sqe == NULL)
			bench_fail(b, "io_uring: no submission queue entry after submit");
	}
	return sqe;
}

/* Raises RLIMIT_NOFILE and RLIMIT_MEMLOCK to their hard limits; checks the descriptors. */
static int raise_limits(struct bench_shared *sh, char *err, size_t err_len)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MEMLOCK, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, err_len, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -1;
	}
	rlim_t need = (rlim_t)sh->nconns + 64u + 2u * sh->nthreads; /* + rings */
	if (rl.rlim_cur < need) {
		rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need) {
		snprintf(err, err_len,
		         "%u connections need %lu file descriptors; the hard limit is %lu "
		         "(raise it: ulimit -Hn, or LimitNOFILE)",
		         sh->nconns, (unsigned long)need, (unsigned long)rl.rlim_max);
		return -1;
	}
	return 0;
}

static int resolve(struct bench_shared *sh, char *err, size_t err_len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", sh->o->port);
	int rc = getaddrinfo(sh->o->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_len, "cannot resolve %s: %s", sh->o->host, gai_strerror(rc));
		return -1;
	}
	memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
	sh->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Names the usual reasons io_uring is unavailable (../shared/IO_URING.md). */
static const char *ring_error_hint(int err)
{
	switch (err) {
	case ENOSYS:
		return " (io_uring blocked, likely by a seccomp profile such as Docker's)";
	case EPERM:
		return " (io_uring disabled: sysctl kernel.io_uring_disabled)";
	case ENOMEM:
		return " (RLIMIT_MEMLOCK too low for the ring: raise ulimit -l)";
	default:
		return "";
	}
}

static int setup_ring(struct bench *b, char *err, size_t err_len)
{
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = BENCH_CQ_ENTRIES;
	int rc = io_uring_queue_init_params(BENCH_SQ_ENTRIES, &b->ring, &p);
	if (rc == -EINVAL) {
		/* Kernels before 6.1 lack DEFER_TASKRUN: fall back to the plain ring. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = BENCH_CQ_ENTRIES;
		rc = io_uring_queue_init_params(BENCH_SQ_ENTRIES, &b->ring, &p);
	}
	if (rc < 0) {
		snprintf(err, err_len, "io_uring_queue_init: %s%s", strerror(-rc),
		         ring_error_hint(-rc));
		return -1;
	}
	return 0;
}

static int setup_buffers(struct bench *b, char *err, size_t err_len)
{
	size_t ring_bytes = BENCH_RX_BUF_COUNT * sizeof(struct io_uring_buf);
	void *mem =
	        mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED) {
		snprintf(err, err_len, "mmap of the buffer ring: %s", strerror(errno));
		return -1;
	}
	b->br = mem;
	io_uring_buf_ring_init(b->br);
	struct io_uring_buf_reg reg = {
	        .ring_addr = (unsigned long)mem,
	        .ring_entries = BENCH_RX_BUF_COUNT,
	        .bgid = BENCH_RX_GROUP,
	};
	int rc = io_uring_register_buf_ring(&b->ring, &reg, 0);
	if (rc < 0) {
		snprintf(err, err_len, "io_uring_register_buf_ring: %s%s", strerror(-rc),
		         ring_error_hint(-rc));
		return -1;
	}
	b->rx_mem = aligned_alloc(4096, (size_t)BENCH_RX_BUF_COUNT * BENCH_RX_BUF_BYTES);
	if (b->rx_mem == NULL) {
		snprintf(err, err_len, "out of memory for receive buffers");
		return -1;
	}
	int mask = io_uring_buf_ring_mask(BENCH_RX_BUF_COUNT);
	for (uint32_t i = 0; i < BENCH_RX_BUF_COUNT; i++)
		io_uring_buf_ring_add(b->br, b->rx_mem + (size_t)i * BENCH_RX_BUF_BYTES,
		                      BENCH_RX_BUF_BYTES, (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(b->br, BENCH_RX_BUF_COUNT);
	return 0;
}

int bench_loop_prepare(struct bench_shared *sh, char *err, size_t err_len)
{
	return raise_limits(sh, err, err_len) != 0 || resolve(sh, err, err_len) != 0 ? -1 : 0;
}

int bench_loop_init(struct bench *b, char *err, size_t err_len)
{
	if (setup_ring(b, err, err_len) != 0 || setup_buffers(b, err, err_len) != 0)
		return -1;
	b->dirty = calloc(b->nconns ? b->nconns : 1, sizeof(*b->dirty));
	b->rearm = calloc(b->nconns ? b->nconns : 1, sizeof(*b->rearm));
	if (b->dirty == NULL || b->rearm == NULL) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	return 0;
}

void bench_loop_exit(struct bench *b)
{
	if (b->ring.ring_fd > 0)
		io_uring_queue_exit(&b->ring); /* cancels what is still pending */
	if (b->br != NULL)
		munmap(b->br, BENCH_RX_BUF_COUNT * sizeof(struct io_uring_buf));
	free(b->rx_mem);
	free(b->dirty);
	free(b->rearm);
}

void bench_mark_dirty(struct bench *b, struct bench_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		b->dirty[b->ndirty++] = c->local;
	}
}

uint8_t *bench_out_reserve(struct bench *b, struct bench_conn *c, uint32_t n)
{
	struct bench_outbuf *ob = &c->out[c->send_idx ^ 1u];
	if (ob->cap - ob->len < n) {
		uint64_t need = (uint64_t)ob->len + n;
		if (need > BENCH_OUT_MAX_BYTES)
			bench_fail(b, "client %u: over %u bytes of output queued", c->index,
			           BENCH_OUT_MAX_BYTES);
		uint32_t cap = ob->cap ? ob->cap : 256u;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(ob->data, cap);
		if (p == NULL)
			bench_fail(b, "out of memory for output");
		ob->data = p;
		ob->cap = cap;
	}
	return ob->data + ob->len;
}

void bench_loop_start_connect(struct bench *b, struct bench_conn *c)
{
	int fd = socket(b->sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		bench_fail(b, "socket: %s", strerror(errno));
	int one = 1;
	if (b->o->nodelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		bench_fail(b, "setsockopt(TCP_NODELAY): %s", strerror(errno));
	c->fd = fd;
	c->state = BENCH_CONN_CONNECTING;
	struct io_uring_sqe *sqe = get_sqe(b);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&b->sh->addr, b->sh->addr_len);
	io_uring_sqe_set_data64(sqe, user_data(c->local, BENCH_OP_CONNECT));
}

static void arm_recv(struct bench *b, struct bench_conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BENCH_RX_GROUP;
	io_uring_sqe_set_data64(sqe, user_data(c->local, BENCH_OP_RECV));
	c->recv_armed = true;
}

/* Submits a send of out[send_idx] from send_off. */
static void submit_send(struct bench *b, struct bench_conn *c, uint64_t now_ns)
{
	struct bench_outbuf *ob = &c->out[c->send_idx];
	struct io_uring_sqe *sqe = get_sqe(b);
	io_uring_prep_send(sqe, c->fd, ob->data + c->send_off, ob->len - c->send_off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, user_data(c->local, BENCH_OP_SEND));
	c->send_busy = true;
	c->last_tx_ns = now_ns;
	b->n.sends++;
	b->n.send_bytes += ob->len - c->send_off;
}

/*
 * Rings the other threads' doorbells: a CQE in each target ring wakes it. Our own CQE comes
 * only on failure (CQE_SKIP_SUCCESS). Its own bit is dropped: this thread runs its publishers
 * in the same iteration.
 */
static void wake_threads(struct bench *b)
{
	uint64_t wake = b->wake & ~(1ull << b->id);
	b->wake = 0;
	while (wake != 0) {
		uint32_t t = (uint32_t)__builtin_ctzll(wake);
		wake &= wake - 1;
		struct io_uring_sqe *sqe = get_sqe(b);
		io_uring_prep_msg_ring(sqe, b->sh->ring_fds[t], 0, user_data(0, BENCH_OP_WAKE), 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, user_data(t, BENCH_OP_WAKE));
	}
}

void bench_loop_flush(struct bench *b)
{
	if (b->wake != 0)
		wake_threads(b);
	uint64_t now = bench_now_ns();
	for (uint32_t i = 0; i < b->ndirty; i++) {
		struct bench_conn *c = &b->conns[b->dirty[i]];
		c->dirty = false;
		if (c->send_busy || c->fd < 0)
			continue;
		/* Framed (and encrypted) only when it leaves: bytes queued while a send is in
		 * flight join the same frame. */
		if (c->ws)
			bench_ws_seal(b, c);
		if ((c->ssl && !bench_tls_seal(b, c)) || c->out[c->send_idx ^ 1u].len == 0)
			continue;
		/* The buffer just sent is empty; the one filled since becomes the one in flight. */
		c->send_idx ^= 1u;
		c->send_off = 0;
		submit_send(b, c, now);
	}
	b->ndirty = 0;
}

void bench_loop_rearm(struct bench *b)
{
	for (uint32_t i = 0; i < b->nrearm; i++) {
		struct bench_conn *c = &b->conns[b->rearm[i]];
		c->rearm = false;
		if (!c->recv_armed && c->fd >= 0 && c->state != BENCH_CONN_CLOSED)
			arm_recv(b, c);
	}
	b->nrearm = 0;
}

static void on_connect(struct bench *b, struct bench_conn *c, int res)
{
	if (res < 0)
		bench_fail(b, "client %u: connect to %s port %u: %s", c->index, b->o->host,
		           b->o->port, strerror(-res));
	arm_recv(b, c);
	if (b->sh->tls_ctx)
		bench_tls_start(b, c);
	else
		bench_stream_connected(b, c);
}

static void on_send(struct bench *b, struct bench_conn *c, int res, uint64_t now_ns)
{
	struct bench_outbuf *ob = &c->out[c->send_idx];
	c->send_busy = false;
	if (res < 0) {
		if (c->state == BENCH_CONN_CLOSING || c->state == BENCH_CONN_CLOSED)
			return; /* the broker closed first; nothing left to say */
		bench_fail(b, "client %u: send: %s", c->index, strerror(-res));
	}
	c->send_off += (uint32_t)res;
	if (c->send_off < ob->len) {
		/* A short send is not an error: the remainder goes first, keeping the order. */
		b->n.short_sends++;
		b->n.sends--; /* counted again by submit_send; the bytes too */
		b->n.send_bytes -= ob->len - c->send_off;
		submit_send(b, c, now_ns);
		return;
	}
	ob->len = 0;
	c->send_off = 0;
	bench_mark_dirty(b, c);
}

/* Hands a provided buffer back to the ring; made visible by the advance after the batch. */
static void return_buffer(struct bench *b, uint16_t bid)
{
	io_uring_buf_ring_add(b->br, b->rx_mem + (size_t)bid * BENCH_RX_BUF_BYTES,
	                      BENCH_RX_BUF_BYTES, bid, io_uring_buf_ring_mask(BENCH_RX_BUF_COUNT),
	                      (int)b->rx_returned);
	b->rx_returned++;
}

/* After our DISCONNECT: the broker's close ends the connection. */
static void closed_by_broker(struct bench *b, struct bench_conn *c)
{
	c->state = BENCH_CONN_CLOSED;
	atomic_fetch_add_explicit(&b->sh->closed, 1, memory_order_relaxed);
	close(c->fd);
	c->fd = -1;
}

static void on_recv(struct bench *b, struct bench_conn *c, const struct io_uring_cqe *cqe)
{
	int res = cqe->res;
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		if (res > 0) {
			b->n.recv_cqes++;
			b->n.recv_bytes += (uint64_t)res;
			if (c->ssl)
				bench_tls_input(b, c, b->rx_mem + (size_t)bid * BENCH_RX_BUF_BYTES,
				                (uint32_t)res, bench_now_ns());
			else
				bench_stream_input(b, c,
				                   b->rx_mem + (size_t)bid * BENCH_RX_BUF_BYTES,
				                   (uint32_t)res, bench_now_ns());
		}
		return_buffer(b, bid);
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	c->recv_armed = false;
	if (res == 0) {
		if (c->state != BENCH_CONN_CLOSING)
			bench_fail(b, "client %u: the broker closed the connection", c->index);
		closed_by_broker(b, c);
		return;
	}
	if (res < 0 && res != -ENOBUFS) {
		if (c->state == BENCH_CONN_CLOSING && (res == -ECONNRESET || res == -EPIPE)) {
			closed_by_broker(b, c);
			return;
		}
		bench_fail(b, "client %u: recv: %s", c->index, strerror(-res));
	}
	/* -ENOBUFS is back-pressure: the data waits in the socket until buffers come back. */
	if (res == -ENOBUFS)
		b->n.nobufs++;
	if (!c->rearm) {
		c->rearm = true;
		b->rearm[b->nrearm++] = c->local;
	}
}

void bench_loop_reap(struct bench *b, uint64_t now_ns)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_for_each_cqe(&b->ring, head, cqe)
	{
		uint32_t idx = (uint32_t)(cqe->user_data >> 8);
		enum bench_op op = (enum bench_op)(cqe->user_data & 0xffu);
		if (op == BENCH_OP_WAKE) {
			/* A doorbell woke us: done. A failure of one of ours is a bug. */
			if (cqe->res < 0)
				bench_fail(b, "waking thread %u: %s", idx, strerror(-cqe->res));
			seen++;
			continue;
		}
		struct bench_conn *c = &b->conns[idx];
		switch (op) {
		case BENCH_OP_CONNECT:
			on_connect(b, c, cqe->res);
			break;
		case BENCH_OP_RECV:
			on_recv(b, c, cqe);
			break;
		case BENCH_OP_SEND:
			on_send(b, c, cqe->res, now_ns);
			break;
		default:
			bench_fail(b, "unknown completion %llx",
			           (unsigned long long)cqe->user_data);
		}
		seen++;
	}
	io_uring_cq_advance(&b->ring, seen);
	/* Buffers and CQ advanced separately: liburing 2.3's combined helper lacks a barrier. */
	if (b->rx_returned > 0) {
		io_uring_buf_ring_advance(b->br, (int)b->rx_returned);
		b->rx_returned = 0;
	}
}
