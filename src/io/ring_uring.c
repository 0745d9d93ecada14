/*
 * The io_uring back-end of the event loop (ring.h): setup with a clear diagnosis when io_uring is
 * unavailable, a provided-buffer ring mapped by hand (liburing 2.3 lacks io_uring_setup_buf_ring),
 * submission helpers that tag user_data with the operation, and the completion batch loop.
 *
 * Receive buffers are returned to the kernel right after each handler; the tail is advanced
 * once per batch, separately from the CQ (liburing 2.3's combined helper lacks a release
 * barrier on the buffer tail).
 */
#include "ring.h"

#include <liburing.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ring_impl.h"
#include "starling/error.h"

/*
 * user_data is the owner's struct ring_io pointer with the operation in its top byte: user
 * space pointers leave it zero (x86-64 and arm64 user addresses are below 2^56; a tagged
 * pointer scheme such as HWASan's would need another encoding), and the low bits would give
 * room for only seven operations.
 */
#define RING_OP_SHIFT 56
#define RING_PTR_MASK ((UINT64_C(1) << RING_OP_SHIFT) - 1)
#define RING_BGID     0

/* Newer than liburing 2.3's headers (Linux 6.12). */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/* A ring's io_uring state (struct ring's be). */
struct ring_uring {
	struct io_uring uring;        /* the liburing ring */
	struct io_uring_buf_ring *br; /* provided-buffer ring shared by all receives */
	uint8_t *bufs;                /* buf_count * buf_size bytes of receive buffers */
	size_t br_map_len;            /* mmap length of br */
	uint32_t buf_count;           /* number of receive buffers */
	uint32_t buf_size;            /* size of each */
	uint32_t recv_max;            /* length asked of each recv */
	uint16_t bgid;                /* buffer group id */
	uint16_t bufs_returned;       /* buffers added since the last tail advance */
	bool inc;                     /* buffers consumed incrementally (IOU_PBUF_RING_INC) */
	uint32_t *buf_off;            /* inc: bytes of each buffer already received into */
	struct ring_stats *stats;     /* the owning struct ring's counters */
};

static struct ring_uring *U(struct ring *r)
{
	return r->be;
}

static uint64_t ring_tag(struct ring_io *io, enum ring_op op)
{
	assert(((uint64_t)(uintptr_t)io & ~RING_PTR_MASK) == 0);
	return (uint64_t)(uintptr_t)io | (uint64_t)op << RING_OP_SHIFT;
}

size_t ring_memlock_bytes(const struct ring_params *p)
{
	/* SQ ring + SQEs + CQ ring, rounded the way the kernel accounts pages, + buffer ring. */
	size_t sq = (size_t)p->sq_entries * (64 + 4) + 4096;
	size_t cq = (size_t)p->cq_entries * 16 + 4096;
	size_t br = (size_t)p->buf_count * sizeof(struct io_uring_buf);
	return sq + cq + br + 3 * 4096;
}

/* Names the reason io_uring_queue_init failed: seccomp, the sysctl, or memory limits. */
static void ring_explain(int ret, const struct ring_params *p, char *err, size_t errlen)
{
	int disabled = -1;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	if (f) {
		if (fscanf(f, "%d", &disabled) != 1)
			disabled = -1;
		fclose(f);
	}
	if (ret == -ENOSYS)
		snprintf(
		        err, errlen,
		        "io_uring_setup: %s: io_uring is blocked, most likely by a seccomp profile "
		        "(Docker's default blocks it; run with --security-opt seccomp=unconfined "
		        "or "
		        "a profile allowing io_uring_setup/io_uring_enter/io_uring_register)",
		        strerror(-ret));
	else if (ret == -EPERM && disabled > 0)
		snprintf(err, errlen,
		         "io_uring_setup: %s: kernel.io_uring_disabled=%d; set it to 0 "
		         "(sysctl -w kernel.io_uring_disabled=0)%s",
		         strerror(-ret), disabled,
		         disabled == 1 ? " or run as a member of kernel.io_uring_group" : "");
	else if (ret == -EPERM)
		snprintf(err, errlen, "io_uring_setup: %s: io_uring is not permitted here",
		         strerror(-ret));
	else if (ret == -ENOMEM)
		snprintf(err, errlen,
		         "io_uring_setup: %s: the ring needs about %zu KiB of locked memory; raise "
		         "RLIMIT_MEMLOCK (ulimit -l, or LimitMEMLOCK= in a systemd unit)",
		         strerror(-ret), ring_memlock_bytes(p) / 1024);
	else
		snprintf(err, errlen, "io_uring_setup: %s", strerror(-ret));
}

/* The kernel charges ring memory to RLIMIT_MEMLOCK only without CAP_IPC_LOCK. */
static bool ring_memlock_exempt(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data) != 0)
		return false;
	return (data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK)) != 0;
}

unsigned ring_memlock_rings(const struct ring_params *p)
{
	struct rlimit rl;

	if (ring_memlock_exempt() || getrlimit(RLIMIT_MEMLOCK, &rl) != 0 ||
	    rl.rlim_max == RLIM_INFINITY)
		return UINT_MAX;
	return (unsigned)(rl.rlim_max / ring_memlock_bytes(p));
}

int ring_memlock_reserve(const struct ring_params *p, unsigned nrings, char *err, size_t errlen)
{
	struct rlimit rl;
	size_t need = ring_memlock_bytes(p) * (nrings ? nrings : 1);

	if (ring_memlock_exempt() || getrlimit(RLIMIT_MEMLOCK, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			return 0;
	}
	snprintf(err, errlen,
	         "RLIMIT_MEMLOCK is %llu KiB (hard %llu KiB) but the io_uring rings need about "
	         "%zu KiB: raise it (ulimit -l %zu, or LimitMEMLOCK= in a systemd unit)",
	         (unsigned long long)rl.rlim_cur / 1024, (unsigned long long)rl.rlim_max / 1024,
	         need / 1024, need / 1024);
	return -ENOMEM;
}

static int ring_setup_buffers(struct ring_uring *r, const struct ring_params *p, char *err,
                              size_t errlen)
{
	struct io_uring_buf_reg reg = {0};
	int ret;

	r->br_map_len = (size_t)p->buf_count * sizeof(struct io_uring_buf);
	r->br = mmap(NULL, r->br_map_len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
	             0);
	if (r->br == MAP_FAILED) {
		r->br = NULL;
		snprintf(err, errlen, "mmap of the buffer ring: %s", strerror(errno));
		return -errno;
	}
	/* Buffers are not pinned: pages are touched only as receives use them. */
	r->bufs = mmap(NULL, (size_t)p->buf_count * p->buf_size, PROT_READ | PROT_WRITE,
	               MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (r->bufs == MAP_FAILED) {
		r->bufs = NULL;
		snprintf(err, errlen, "mmap of receive buffers: %s", strerror(errno));
		return -errno;
	}
	io_uring_buf_ring_init(r->br);
	reg.ring_addr = (uint64_t)(uintptr_t)r->br;
	reg.ring_entries = p->buf_count;
	reg.bgid = RING_BGID;
	/* Probe for incremental consumption: older kernels reject the flag with EINVAL. */
	reg.pad = IOU_PBUF_RING_INC;
	ret = io_uring_register_buf_ring(&r->uring, &reg, 0);
	if (ret == -EINVAL) {
		reg.pad = 0;
		ret = io_uring_register_buf_ring(&r->uring, &reg, 0);
	} else if (ret == 0) {
		r->buf_off = calloc(p->buf_count, sizeof(*r->buf_off));
		if (!r->buf_off) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		r->inc = true;
	}
	if (ret < 0) {
		if (ret == -EINVAL)
			snprintf(err, errlen,
			         "io_uring_register_buf_ring: %s: provided buffer rings need "
			         "Linux 5.19 or later",
			         strerror(-ret));
		else
			ring_explain(ret, p, err, errlen);
		return ret;
	}
	for (uint32_t i = 0; i < p->buf_count; i++)
		io_uring_buf_ring_add(r->br, r->bufs + (size_t)i * p->buf_size, p->buf_size,
		                      (unsigned short)i, io_uring_buf_ring_mask(p->buf_count),
		                      (int)i);
	io_uring_buf_ring_advance(r->br, (int)p->buf_count);
	return 0;
}

static void uring_exit(struct ring *ring);

static int uring_init(struct ring *ring, const struct ring_params *p, char *err, size_t errlen)
{
	struct io_uring_params up;
	unsigned int iowq_max[2] = {2, 2};
	struct ring_uring *r;
	int ret;

	assert(p->buf_count > 0 && p->buf_count <= 32768 &&
	       (p->buf_count & (p->buf_count - 1)) == 0);
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ring->be = r;
	r->stats = &ring->stats;
	r->uring.ring_fd = -1;
	r->buf_count = p->buf_count;
	r->buf_size = p->buf_size;
	r->recv_max = p->recv_max ? p->recv_max : p->buf_size;
	r->bgid = RING_BGID;

	ret = ring_memlock_reserve(p, 1, err, errlen);
	if (ret < 0)
		goto fail;
	memset(&up, 0, sizeof(up));
	up.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
	           IORING_SETUP_SUBMIT_ALL;
	up.cq_entries = p->cq_entries;
	ret = io_uring_queue_init_params(p->sq_entries, &r->uring, &up);
	if (ret < 0)
		r->uring.ring_fd = -1;
	if (ret == -EINVAL) {
		snprintf(err, errlen,
		         "io_uring_setup: %s: SINGLE_ISSUER|DEFER_TASKRUN need Linux 6.1 or later",
		         strerror(-ret));
		goto fail;
	}
	if (ret < 0) {
		ring_explain(ret, p, err, errlen);
		goto fail;
	}
	/* Sockets never need io-wq; keep stray punts from spawning a worker per request. */
	io_uring_register_iowq_max_workers(&r->uring, iowq_max);
	ret = ring_setup_buffers(r, p, err, errlen);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	uring_exit(ring);
	return ret;
}

static void uring_exit(struct ring *ring)
{
	struct ring_uring *r = U(ring);

	if (!r)
		return;
	if (r->uring.ring_fd >= 0) {
		if (r->br)
			io_uring_unregister_buf_ring(&r->uring, r->bgid);
		io_uring_queue_exit(&r->uring);
		r->uring.ring_fd = -1;
	}
	if (r->br)
		munmap(r->br, r->br_map_len);
	if (r->bufs)
		munmap(r->bufs, (size_t)r->buf_count * r->buf_size);
	free(r->buf_off);
	free(r);
	ring->be = NULL;
}

/* An SQE, submitting what is queued first if the SQ is full. */
static struct io_uring_sqe *ring_sqe(struct ring_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

	while (!sqe) {
		r->stats->sqe_full++;
		io_uring_submit(&r->uring);
		sqe = io_uring_get_sqe(&r->uring);
	}
	return sqe;
}

static void uring_accept(struct ring *ring, struct ring_io *io, int listen_fd)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	io_uring_sqe_set_data64(sqe, ring_tag(io, RING_OP_ACCEPT));
	io->pending++;
}

static void uring_recv(struct ring *ring, struct ring_io *io, int fd)
{
	struct ring_uring *r = U(ring);
	struct io_uring_sqe *sqe = ring_sqe(r);

	io_uring_prep_recv_multishot(sqe, fd, NULL, r->recv_max, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = r->bgid;
	io_uring_sqe_set_data64(sqe, ring_tag(io, RING_OP_RECV));
	io->pending++;
}

static void uring_sendmsg(struct ring *ring, struct ring_io *io, int fd, const struct msghdr *msg)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ring_tag(io, RING_OP_SEND));
	io->pending++;
}

static void uring_connect(struct ring *ring, struct ring_io *io, int fd, const struct sockaddr *sa,
                          socklen_t len)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_connect(sqe, fd, sa, len);
	io_uring_sqe_set_data64(sqe, ring_tag(io, RING_OP_CONNECT));
	io->pending++;
}

static void uring_read(struct ring *ring, struct ring_io *io, int fd, void *buf, size_t len)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)-1);
	io_uring_sqe_set_data64(sqe, ring_tag(io, RING_OP_READ));
	io->pending++;
}

static void uring_write(struct ring *ring, struct ring_io *io, int fd, const void *buf, size_t len,
                        uint64_t off, bool dsync)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
	if (dsync)
		sqe->rw_flags = RWF_DSYNC;
	io_uring_sqe_set_data64(sqe, ring_tag(io, RING_OP_FILE));
	io->pending++;
}

static void uring_cancel_fd(struct ring *ring, int fd)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	/* Nobody waits for the cancel itself; the cancelled operations complete on their own. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ring_tag(NULL, RING_OP_CANCEL));
}

static void uring_cancel_recv(struct ring *ring, struct ring_io *io)
{
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_cancel64(sqe, ring_tag(io, RING_OP_RECV), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ring_tag(NULL, RING_OP_CANCEL));
}

static void uring_msg(struct ring *ring, const struct ring *target, struct ring_io *target_io,
                      int32_t res)
{
	const struct ring_uring *t = target->be;
	struct io_uring_sqe *sqe = ring_sqe(U(ring));

	io_uring_prep_msg_ring(sqe, t->uring.ring_fd, (unsigned)res,
	                       ring_tag(target_io, RING_OP_MSG), 0);
	/* Only a failure completes here; it carries no owner (RING_OP_MSG with a NULL io). */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, ring_tag(NULL, RING_OP_MSG));
	ring->stats.msgs_sent++;
}

/* Gives buffer bid back to the kernel (made visible at the end of the batch). */
static void ring_recycle(struct ring_uring *r, int bid)
{
	io_uring_buf_ring_add(r->br, r->bufs + (size_t)bid * r->buf_size, r->buf_size,
	                      (unsigned short)bid, io_uring_buf_ring_mask(r->buf_count),
	                      r->bufs_returned);
	r->bufs_returned++;
	r->stats->bufs_recycled++;
}

/*
 * Where a completion's data is, and whether its buffer is now free. With incremental
 * consumption the data continues where the buffer's previous completion stopped, and the
 * buffer is done only when it is full. A 0-byte completion (EOF) names a buffer without
 * consuming it, so fullness is tracked here rather than trusted to IORING_CQE_F_BUF_MORE.
 */
static const uint8_t *ring_data(struct ring_uring *r, const struct io_uring_cqe *cqe, int bid,
                                bool *done)
{
	uint8_t *base = r->bufs + (size_t)bid * r->buf_size;
	uint32_t off;

	if (!r->inc) {
		*done = true;
		return base;
	}
	off = r->buf_off[bid];
	if (cqe->res > 0)
		r->buf_off[bid] += (uint32_t)cqe->res;
	assert(r->buf_off[bid] <= r->buf_size);
	*done = r->buf_off[bid] == r->buf_size;
	assert(cqe->res <= 0 || *done == !(cqe->flags & IORING_CQE_F_BUF_MORE));
	if (*done)
		r->buf_off[bid] = 0;
	return base + off;
}

static void ring_dispatch(struct ring *ring, struct ring_uring *r, const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	struct ring_io *io = (struct ring_io *)(uintptr_t)(ud & RING_PTR_MASK);
	struct ring_cqe ev = {
	        .op = (uint8_t)(ud >> RING_OP_SHIFT),
	        .more = (cqe->flags & IORING_CQE_F_MORE) != 0,
	        .res = cqe->res,
	        .buf = NULL,
	};
	bool done = false;
	int bid = -1;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		assert((uint32_t)bid < r->buf_count);
		ev.buf = ring_data(r, cqe, bid, &done);
	}
	if (ev.op == RING_OP_RECV && ev.res == -ENOBUFS)
		r->stats->enobufs++;
	if (ev.op == RING_OP_MSG) {
		/* A doorbell from another ring, or our own doorbell that failed. */
		if (io)
			io->fn(ring, io, &ev);
		else
			r->stats->msg_errors++;
		return;
	}
	if (io) {
		if (!ev.more) {
			assert(io->pending > 0);
			io->pending--;
		}
		io->fn(ring, io, &ev);
	}
	if (done)
		ring_recycle(r, bid);
}

static void ring_ts(struct __kernel_timespec *ts, int64_t us)
{
	ts->tv_sec = us / 1000000;
	ts->tv_nsec = (us % 1000000) * 1000;
}

static int uring_wait_us(struct ring *ring, int64_t timeout_us)
{
	struct ring_uring *r = U(ring);
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	ring_ts(&ts, timeout_us >= 0 ? timeout_us : 0);
	ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, timeout_us >= 0 ? &ts : NULL,
	                                       NULL);
	if (ret < 0 && ret != -ETIME && ret != -EINTR)
		return ret;
	return 0;
}

/* A completion already handed over, left in the CQ for the walk to step over. */
#define RING_UD_TAKEN UINT64_MAX

/* The urgent io's completion, if one waits among several: handed over first, marked taken. */
static void uring_reap_urgent(struct ring *ring, struct ring_uring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head;

	io_uring_for_each_cqe(&r->uring, head, cqe)
	{
		if ((cqe->user_data & RING_PTR_MASK) == (uintptr_t)ring->urgent &&
		    cqe->user_data != RING_UD_TAKEN) {
			ring_dispatch(ring, r, cqe);
			cqe->user_data = RING_UD_TAKEN;
			return;
		}
	}
}

static int uring_reap(struct ring *ring)
{
	struct ring_uring *r = U(ring);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0, total = 0;

	/*
	 * Handlers may queue submissions but never wait, so the CQ only grows while we walk it;
	 * walk until it is empty, advancing as we go so the kernel can post more.
	 */
	for (;;) {
		n = 0;
		if (ring->before_input && io_uring_cq_ready(&r->uring))
			ring->before_input(ring, ring->before_arg);
		if (ring->urgent && ring->urgent->pending && io_uring_cq_ready(&r->uring) > 1)
			uring_reap_urgent(ring, r);
		io_uring_for_each_cqe(&r->uring, head, cqe)
		{
			if (cqe->user_data != RING_UD_TAKEN)
				ring_dispatch(ring, r, cqe);
			n++;
		}
		if (n == 0)
			break;
		io_uring_cq_advance(&r->uring, n);
		total += n;
	}
	if (r->bufs_returned) {
		io_uring_buf_ring_advance(r->br, r->bufs_returned);
		r->bufs_returned = 0;
	}
	if (total) {
		r->stats->batches++;
		r->stats->cqes += total;
	}
	return (int)total;
}

const struct ring_ops ring_uring_ops = {
        .name = "io_uring",
        .init = uring_init,
        .exit = uring_exit,
        .accept = uring_accept,
        .recv = uring_recv,
        .sendmsg = uring_sendmsg,
        .connect = uring_connect,
        .read = uring_read,
        .write = uring_write,
        .cancel_fd = uring_cancel_fd,
        .cancel_recv = uring_cancel_recv,
        .msg = uring_msg,
        .wait_us = uring_wait_us,
        .reap = uring_reap,
};
