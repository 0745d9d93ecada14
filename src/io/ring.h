/*
 * The io_uring event loop: one ring per worker thread, and nothing about MQTT.
 *
 * The ring is created SINGLE_ISSUER | DEFER_TASKRUN, so completions are produced only while
 * the owning thread waits in ring_poll(): everything that completed since the last wait
 * arrives as one batch, its handlers run from the CQ (never recursively), and then the owner's
 * end-of-batch hook runs once, which is where the caller submits its sends (one per
 * connection per batch: that is what lets a fan-out put many messages in one send).
 *
 * Receives use one provided-buffer ring shared by every socket of the worker: an idle socket
 * owns no buffer. A receive handler sees the data only for the duration of the call. Where the
 * kernel has it (6.12+), buffers are consumed incrementally: successive receives, of any
 * socket, fill one buffer one after the other, so small packets share pages instead of each
 * touching a buffer of its own; a buffer goes back to the kernel once it is full and handled.
 * Without it, each receive takes a whole buffer, returned right after its handler.
 *
 * Each submission carries a pointer to a struct ring_io embedded in the caller's object, with
 * the operation in the pointer's low 3 bits. The caller must keep that object alive until the
 * last completion of every operation it submitted (ring_io.pending counts them).
 */
#ifndef STARLING_RING_H
#define STARLING_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum ring_op {
	RING_OP_ACCEPT = 1, /* multishot accept */
	RING_OP_RECV = 2,   /* multishot recv into a provided buffer */
	RING_OP_SEND = 3,   /* sendmsg */
	RING_OP_READ = 4,   /* plain read into a caller buffer (signalfd) */
	RING_OP_CANCEL = 5, /* cancellation request; its completion is ignored by owners */
	RING_OP_MSG = 6,    /* cross-ring doorbell (IORING_OP_MSG_RING) */
	RING_OP_FILE = 7,   /* a file write or sync (the owner's ring_io says which) */
};

struct ring;
struct ring_io;

/*
 * A completion: res is cqe->res (bytes, a new fd, or -errno); more is IORING_CQE_F_MORE (the
 * multishot operation stays armed); buf/len is the received data for RING_OP_RECV.
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
} __attribute__((aligned(8)));

struct ring_params {
	uint32_t sq_entries; /* submission queue size */
	uint32_t cq_entries; /* completion queue size: all buffers + sends + accepts in flight */
	uint32_t buf_count;  /* provided receive buffers (power of two, <= 32768) */
	uint32_t buf_size;   /* bytes per receive buffer */
	uint32_t recv_max;   /* cap on bytes one recv completion carries (0: buf_size) */
};

struct ring_stats {
	uint64_t enobufs;       /* receives that stopped for lack of provided buffers */
	uint64_t batches;       /* calls of ring_poll that reaped completions */
	uint64_t cqes;          /* completions handled */
	uint64_t sqe_full;      /* times the SQ was full and had to be submitted early */
	uint64_t bufs_recycled; /* receive buffers given back to the kernel */
	uint64_t msgs_sent;     /* doorbells rung on other rings */
	uint64_t msg_errors;    /* doorbells the kernel refused */
};

struct ring {
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
	struct ring_stats stats;      /* counters for $SYS and kernel-notes */
};

/*
 * Creates the ring and its buffer ring. When io_uring cannot be used, returns a negative errno
 * and writes into err[0..errlen) why (seccomp, kernel.io_uring_disabled, RLIMIT_MEMLOCK).
 */
int ring_init(struct ring *r, const struct ring_params *p, char *err, size_t errlen);
void ring_exit(struct ring *r);

/* Bytes of locked memory ring_init needs with these parameters (for the RLIMIT_MEMLOCK check). */
size_t ring_memlock_bytes(const struct ring_params *p);

/*
 * The kernel counts locked ring memory per user (unless the process has CAP_IPC_LOCK): raises the
 * soft RLIMIT_MEMLOCK to what nrings rings need, if the hard limit allows. 0, or -ENOMEM with err
 * saying what to raise.
 */
int ring_memlock_reserve(const struct ring_params *p, unsigned nrings, char *err, size_t errlen);

/* How many such rings the hard RLIMIT_MEMLOCK allows (UINT_MAX: no limit applies). */
unsigned ring_memlock_rings(const struct ring_params *p);

/*
 * Each prep function queues one submission for io (incrementing io->pending) and returns 0;
 * they submit early when the SQ is full. Submissions go to the kernel at the next ring_poll.
 */
void ring_accept(struct ring *r, struct ring_io *io, int listen_fd);
void ring_recv(struct ring *r, struct ring_io *io, int fd);
/* msg (and what it points to) is borrowed until the send completes. */
void ring_sendmsg(struct ring *r, struct ring_io *io, int fd, const struct msghdr *msg);
/* buf is borrowed until the read completes. */
void ring_read(struct ring *r, struct ring_io *io, int fd, void *buf, size_t len);
/*
 * A write of buf[0..len) at file offset off, linked to a sync of the file (fdatasync when
 * datasync, else fsync) that starts only once the write completed in full: a failed or short
 * write cancels the sync (-ECANCELED). The two submissions are queued together, never split
 * across an early submit. Completions: one for wio (bytes written or -errno), then one for sio
 * (0 or -errno). sio NULL: the write alone. buf is borrowed until wio's completion.
 */
void ring_write_sync(struct ring *r, struct ring_io *wio, int fd, const void *buf, size_t len,
                     uint64_t off, struct ring_io *sio, bool datasync);

/* Cancels every operation on fd; their completions still arrive (with -ECANCELED). */
void ring_cancel_fd(struct ring *r, int fd);

/* Cancels io's receive only (its sends go on); its final completion still arrives. */
void ring_cancel_recv(struct ring *r, struct ring_io *io);

/*
 * Rings another thread's doorbell: once this submission reaches the kernel, a completion with
 * op RING_OP_MSG and res `res` arrives for target_io in `target` (IORING_OP_MSG_RING). The
 * doorbell carries no payload (the caller's own queue does) and is not counted in
 * target_io->pending; nothing completes in r unless the kernel refuses it (counted).
 * target's ring must exist until this ring has submitted the request.
 */
void ring_msg(struct ring *r, const struct ring *target, struct ring_io *target_io, int32_t res);

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
int ring_wait_us(struct ring *r, int64_t timeout_us);
int ring_reap(struct ring *r);

#endif
