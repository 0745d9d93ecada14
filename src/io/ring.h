/*
 * The event loop of a worker thread, and nothing about MQTT: one interface, two back-ends
 * (one module each, as nginx's src/event/modules): io_uring (ring_uring.c) where the kernel
 * lets us use it, epoll (ring_epoll.c) where it does not (a seccomp profile, the
 * kernel.io_uring_disabled sysctl, an old kernel). The owner sees the same semantics on both;
 * the back-end is picked once per process (ring_select) and nothing above this layer knows
 * which one runs.
 *
 * Completions are produced in batches: ring_wait_us waits, ring_reap runs the handler of every
 * completion available (never recursively: a completion of something submitted by a handler
 * arrives in a later batch), and then the owner's end-of-batch work runs once, which is where
 * it submits its sends (one per connection per batch: that is what lets a fan-out put many
 * messages in one send).
 *
 * Receives use memory shared by every socket of the worker: an idle socket owns no buffer. A
 * receive handler sees the data only for the duration of the call. On io_uring that is a
 * provided-buffer ring, consumed incrementally where the kernel has it (6.12+): successive
 * receives, of any socket, fill one buffer one after the other. On epoll it is one buffer the
 * loop receives into right before it calls the handler.
 *
 * Each submission carries a pointer to a struct ring_io embedded in the caller's object. The
 * caller must keep that object alive until the last completion of every operation it
 * submitted (ring_io.pending counts them).
 */
#ifndef STARLING_RING_H
#define STARLING_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum ring_op {
	RING_OP_ACCEPT = 1,  /* multishot accept */
	RING_OP_RECV = 2,    /* multishot recv into a provided buffer */
	RING_OP_SEND = 3,    /* sendmsg */
	RING_OP_READ = 4,    /* plain read into a caller buffer (signalfd) */
	RING_OP_CANCEL = 5,  /* cancellation request; its completion is ignored by owners */
	RING_OP_MSG = 6,     /* cross-ring doorbell */
	RING_OP_FILE = 7,    /* a file write or sync (the owner's ring_io says which) */
	RING_OP_CONNECT = 8, /* an outgoing connection (ring_connect) */
};

struct ring;
struct ring_io;

/*
 * A completion: res is bytes, a new fd, or -errno; more says that the multishot operation
 * stays armed (IORING_CQE_F_MORE); buf is the received data for RING_OP_RECV.
 */
struct ring_cqe {
	uint8_t op;         /* enum ring_op */
	bool more;          /* the multishot operation continues */
	int32_t res;        /* result as the kernel gave it */
	const uint8_t *buf; /* RECV data, valid only during the handler; NULL otherwise */
};

typedef void (*ring_handler_fn)(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe);

/* Embedded in whatever owns a file descriptor's operations; 8-byte aligned. */
struct ring_io {
	ring_handler_fn fn; /* called for each completion of this object's operations */
	uint32_t pending;   /* submitted operations whose final completion has not arrived */
	int32_t recv_fd;    /* the back-end's: the socket of its last ring_recv (in the padding) */
} __attribute__((aligned(8)));

/* Which loop runs (ring_select picks one for the process; every worker's ring uses it). */
enum ring_backend {
	RING_BACKEND_IO_URING = 0, /* ring_uring.c */
	RING_BACKEND_EPOLL,        /* ring_epoll.c */
	RING_BACKEND_AUTO,         /* ring_select only: io_uring if a ring can be set up */
};

struct ring_params {
	uint32_t sq_entries; /* submission queue size */
	uint32_t cq_entries; /* completion queue size: all buffers + sends + accepts in flight */
	uint32_t buf_count;  /* provided receive buffers (power of two, <= 32768) */
	uint32_t buf_size;   /* bytes per receive buffer */
	uint32_t recv_max;   /* cap on bytes one recv completion carries (0: buf_size) */
	enum ring_backend backend; /* IO_URING or EPOLL (0: io_uring) */
};

struct ring_stats {
	uint64_t enobufs;       /* receives that stopped for lack of provided buffers (io_uring) */
	uint64_t batches;       /* calls of ring_poll that reaped completions */
	uint64_t cqes;          /* completions handled */
	uint64_t sqe_full;      /* times the SQ was full and had to be submitted early (io_uring) */
	uint64_t bufs_recycled; /* receive buffers given back to the kernel */
	uint64_t msgs_sent;     /* doorbells rung on other rings */
	uint64_t msg_errors;    /* doorbells the kernel refused */
	uint64_t syscalls;      /* epoll: system calls made for the loop (waits, reads, sends) */
};

struct ring_ops;

/*
 * Called by the back-end before it hands over input (ring_set_before_input), with `arg`.
 * May run any handler-level work (queue submissions, close connections), never wait.
 */
typedef void (*ring_before_input_fn)(struct ring *r, void *arg);

struct ring {
	const struct ring_ops *ops; /* the back-end's functions; NULL: not set up */
	void *be;                   /* the back-end's state (struct ring_uring, ring_epoll) */
	enum ring_backend backend;  /* which one */
	struct ring_stats stats;    /* counters for $SYS and kernel-notes */
	ring_before_input_fn before_input; /* NULL: none (ring_set_before_input) */
	void *before_arg;
	struct ring_io *urgent; /* NULL: none (ring_set_urgent) */
};

/* One back-end (ring_uring.c, ring_epoll.c); the functions below call through it. */
struct ring_ops {
	const char *name; /* "io_uring", "epoll" */
	int (*init)(struct ring *r, const struct ring_params *p, char *err, size_t errlen);
	void (*exit)(struct ring *r);
	void (*accept)(struct ring *r, struct ring_io *io, int listen_fd);
	void (*recv)(struct ring *r, struct ring_io *io, int fd);
	void (*sendmsg)(struct ring *r, struct ring_io *io, int fd, const struct msghdr *msg);
	void (*connect)(struct ring *r, struct ring_io *io, int fd, const struct sockaddr *sa,
	                socklen_t len);
	void (*read)(struct ring *r, struct ring_io *io, int fd, void *buf, size_t len);
	void (*write)(struct ring *r, struct ring_io *io, int fd, const void *buf, size_t len,
	              uint64_t off, bool dsync);
	void (*cancel_fd)(struct ring *r, int fd);
	void (*cancel_recv)(struct ring *r, struct ring_io *io);
	void (*msg)(struct ring *r, const struct ring *target, struct ring_io *target_io,
	            int32_t res);
	int (*wait_us)(struct ring *r, int64_t timeout_us);
	int (*reap)(struct ring *r);
};

/*
 * Creates the ring (of back-end p->backend) and its receive memory. When it cannot, returns a
 * negative errno and writes into err[0..errlen) why (for io_uring: seccomp,
 * kernel.io_uring_disabled, RLIMIT_MEMLOCK, the kernel's version).
 */
int ring_init(struct ring *r, const struct ring_params *p, char *err, size_t errlen);
void ring_exit(struct ring *r);

/*
 * Picks the back-end for nrings rings of parameters p: *be is IO_URING, EPOLL or AUTO on
 * entry and IO_URING or EPOLL on success. io_uring is tried by reserving the locked memory
 * the rings need and setting one up. 0 on success; with AUTO, an io_uring that cannot be used
 * leaves EPOLL and why it could not in err (empty otherwise). A negative errno, and err, when
 * io_uring was asked for and cannot be used.
 */
int ring_select(enum ring_backend *be, const struct ring_params *p, unsigned nrings, char *err,
                size_t errlen);

/* "io_uring" or "epoll". */
const char *ring_backend_name(enum ring_backend be);

/* ring_init succeeded and ring_exit has not run. */
static inline bool ring_is_open(const struct ring *r)
{
	return r->ops != NULL;
}

/* Bytes of locked memory an io_uring ring needs with these parameters (RLIMIT_MEMLOCK). */
size_t ring_memlock_bytes(const struct ring_params *p);

/*
 * io_uring only. The kernel counts locked ring memory per user (unless the process has
 * CAP_IPC_LOCK): raises the
 * soft RLIMIT_MEMLOCK to what nrings rings need, if the hard limit allows. 0, or -ENOMEM with err
 * saying what to raise.
 */
int ring_memlock_reserve(const struct ring_params *p, unsigned nrings, char *err, size_t errlen);

/* How many such io_uring rings the hard RLIMIT_MEMLOCK allows (UINT_MAX: no limit applies). */
unsigned ring_memlock_rings(const struct ring_params *p);

/*
 * Each of these queues one operation for io (incrementing io->pending). Its completions arrive
 * in a later batch, never from within the call. On io_uring, submissions go to the kernel at
 * the next wait (early when the SQ is full); epoll makes the system call (a send) at once or
 * when the descriptor is ready.
 */
/* Multishot: a completion per connection (res: its fd, SOCK_NONBLOCK|SOCK_CLOEXEC). */
static inline void ring_accept(struct ring *r, struct ring_io *io, int listen_fd)
{
	r->ops->accept(r, io, listen_fd);
}

/*
 * Multishot: a completion per chunk received (more set), until EOF (res 0), an error,
 * -ENOBUFS (io_uring: no receive buffer was free; the bytes wait in the socket) or a cancel.
 */
static inline void ring_recv(struct ring *r, struct ring_io *io, int fd)
{
	r->ops->recv(r, io, fd);
}

/* One send of the whole msghdr, or of a prefix (res: bytes sent); msg is borrowed until it
 * completes. At most one per socket at a time. */
static inline void ring_sendmsg(struct ring *r, struct ring_io *io, int fd,
                                const struct msghdr *msg)
{
	r->ops->sendmsg(r, io, fd, msg);
}

/*
 * Connects fd, a non-blocking stream socket the caller made (and bound, if it wants a source
 * address), to sa: the broker's outgoing connections (bridges) wait in the loop like
 * everything else rather than in a blocking connect(). One completion: res 0 once connected,
 * or -errno (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH..., -ECANCELED after ring_cancel_fd,
 * which a caller closing a connection still being made uses as for any socket). sa is
 * borrowed until then. Once connected, fd takes ring_recv and ring_sendmsg as an accepted
 * socket does; nothing else may be armed on fd while the connect is pending.
 */
static inline void ring_connect(struct ring *r, struct ring_io *io, int fd,
                                const struct sockaddr *sa, socklen_t len)
{
	r->ops->connect(r, io, fd, sa, len);
}

/* buf is borrowed until the read completes. */
static inline void ring_read(struct ring *r, struct ring_io *io, int fd, void *buf, size_t len)
{
	r->ops->read(r, io, fd, buf, len);
}
/*
 * A write of buf[0..len) at file offset off; with dsync, what it wrote is on stable storage
 * when it completes, with what reading it back needs (the file's size, its allocation), as
 * after an fdatasync of that range: one operation, so no second trip through the loop between
 * the write and its sync (io_uring: RWF_DSYNC; a direct write's cache flush then runs from
 * the device's completion, a buffered one's in the kernel thread that writes it). Completion:
 * bytes written (only those are durable: a short write is resubmitted for the rest) or -errno.
 * buf is borrowed until then. The worker thread never blocks on the file: io_uring runs it in
 * the kernel, epoll on a small I/O thread of the ring.
 */
static inline void ring_write(struct ring *r, struct ring_io *io, int fd, const void *buf,
                              size_t len, uint64_t off, bool dsync)
{
	r->ops->write(r, io, fd, buf, len, off, dsync);
}

/* Cancels every socket operation on fd; their completions still arrive (with -ECANCELED). */
static inline void ring_cancel_fd(struct ring *r, int fd)
{
	r->ops->cancel_fd(r, fd);
}

/* Cancels io's receive only (its sends go on); its final completion still arrives. */
static inline void ring_cancel_recv(struct ring *r, struct ring_io *io)
{
	r->ops->cancel_recv(r, io);
}

/*
 * Rings another thread's doorbell: a completion with op RING_OP_MSG and res `res` arrives for
 * target_io in `target` (io_uring: IORING_OP_MSG_RING once this submission reaches the
 * kernel; epoll: the target's eventfd, at once). The doorbell carries no payload (the
 * caller's own queue does) and is not counted in target_io->pending; nothing completes in r
 * unless the kernel refuses it (counted). Doorbells rung before the target looks may arrive
 * as one (epoll), so the handler must not count them. target's ring must exist until this
 * ring has submitted the request; on epoll, one target_io per target ring.
 */
static inline void ring_msg(struct ring *r, const struct ring *target, struct ring_io *target_io,
                            int32_t res)
{
	r->ops->msg(r, target, target_io, res);
}

/*
 * Submits what is queued, waits up to timeout_ms for at least one completion, and runs the
 * handler of every completion available. Returns the number handled (0 on timeout) or a
 * negative errno.
 */
int ring_poll(struct ring *r, int timeout_ms);

/* ring_poll with a timeout in microseconds (negative: none). */
int ring_poll_us(struct ring *r, int64_t timeout_us);

/*
 * ring_poll_us in its two halves, for a caller that must act between them (read the clock
 * after the wait, so that the handlers see the time their completions arrived, not the time
 * the wait began): ring_wait_us submits and waits (0 or a negative errno; a timeout is 0),
 * ring_reap runs the handlers of every completion available and returns how many.
 */
/*
 * fn runs after the back-end took a batch of completions from the kernel and before it hands
 * the first one over, and again before every later piece of received data (epoll reads
 * sockets while it hands completions over): whatever another thread made visible before some
 * input reached this ring's sockets is visible to fn before that input's handler runs. The
 * owner drains its queues from other threads there, so a reply one thread sent after
 * queueing work for another cannot be overtaken, at the other, by what its recipient did
 * next (the workers' channels: xw.c).
 */
static inline void ring_set_before_input(struct ring *r, ring_before_input_fn fn, void *arg)
{
	r->before_input = fn;
	r->before_arg = arg;
}

/*
 * io's completions are handed over ahead of the others taken from the kernel with them. A
 * multishot receive fills every provided buffer a flooding socket can take in one wait, and
 * handling all of that can take seconds on a loaded machine: a signal's read queued behind it
 * would wait as long. epoll needs nothing: it reads each socket a bounded number of times per
 * reap.
 */
static inline void ring_set_urgent(struct ring *r, struct ring_io *io)
{
	r->urgent = io;
}

static inline int ring_wait_us(struct ring *r, int64_t timeout_us)
{
	return r->ops->wait_us(r, timeout_us);
}

static inline int ring_reap(struct ring *r)
{
	return r->ops->reap(r);
}

#endif
