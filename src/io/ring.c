/*
 * The back-end independent part of the event loop: which module a ring runs on (ring_init),
 * the choice for the process (ring_select), and ring_poll built from wait and reap. Every
 * operation goes through the ring's function table (ring.h's inline wrappers): one indirect
 * call, the same for both back-ends.
 */
#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ring_impl.h"

const char *ring_backend_name(enum ring_backend be)
{
	switch (be) {
	case RING_BACKEND_IO_URING:
		return "io_uring";
	case RING_BACKEND_EPOLL:
		return "epoll";
	case RING_BACKEND_AUTO:
		break;
	}
	return "auto";
}

int ring_init(struct ring *r, const struct ring_params *p, char *err, size_t errlen)
{
	const struct ring_ops *ops =
	        p->backend == RING_BACKEND_EPOLL ? &ring_epoll_ops : &ring_uring_ops;
	int ret;

	memset(r, 0, sizeof(*r));
	r->backend = p->backend == RING_BACKEND_EPOLL ? RING_BACKEND_EPOLL : RING_BACKEND_IO_URING;
	ret = ops->init(r, p, err, errlen);
	if (ret < 0)
		return ret;
	r->ops = ops;
	return 0;
}

void ring_exit(struct ring *r)
{
	if (!r->ops)
		return;
	r->ops->exit(r);
	r->ops = NULL;
}

int ring_select(enum ring_backend *be, const struct ring_params *p, unsigned nrings, char *err,
                size_t errlen)
{
	struct ring_params up = *p;
	struct ring probe;
	int ret;

	if (errlen)
		err[0] = '\0';
	if (*be == RING_BACKEND_EPOLL)
		return 0;
	/* A ring set up and torn down costs a millisecond and tells what no probe of the
	 * syscalls alone would: memory limits, the flags and buffer rings the loop needs. */
	up.backend = RING_BACKEND_IO_URING;
	ret = ring_memlock_reserve(&up, nrings, err, errlen);
	if (ret == 0)
		ret = ring_init(&probe, &up, err, errlen);
	if (ret == 0) {
		ring_exit(&probe);
		*be = RING_BACKEND_IO_URING;
		return 0;
	}
	if (*be == RING_BACKEND_AUTO) {
		*be = RING_BACKEND_EPOLL;
		return 0;
	}
	return ret;
}

int ring_poll(struct ring *r, int timeout_ms)
{
	return ring_poll_us(r, timeout_ms >= 0 ? (int64_t)timeout_ms * 1000 : -1);
}

int ring_poll_us(struct ring *r, int64_t timeout_us)
{
	int ret = ring_wait_us(r, timeout_us);

	return ret < 0 ? ret : ring_reap(r);
}
