/*
 * Between ring.c and the back-end modules: each module's function table. Only files of this
 * folder include it.
 */
#ifndef STARLING_RING_IMPL_H
#define STARLING_RING_IMPL_H

#include "ring.h"

extern const struct ring_ops ring_uring_ops; /* ring_uring.c */
extern const struct ring_ops ring_epoll_ops; /* ring_epoll.c */

#endif
