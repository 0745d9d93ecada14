/*
 * C shim for bench_fanout.cc: sets up a worker with N subscribers (connections without
 * sockets) on one topic and routes one PUBLISH to them through the broker's real routing and
 * output code, then builds each connection's send (iovecs) as the end of a batch would.
 */
#ifndef STARLING_BENCH_FANOUT_SHIM_H
#define STARLING_BENCH_FANOUT_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fanout_bench;

/* N subscribers at `qos` (0 or 1), protocol level 4 or 5, payload bytes. NULL on failure. */
struct fanout_bench *fanout_bench_new(unsigned subscribers, uint8_t qos, uint8_t level,
                                      size_t payload);

/* One PUBLISH routed to every subscriber and every send built; returns deliveries made. */
unsigned fanout_bench_run(struct fanout_bench *fb);

void fanout_bench_free(struct fanout_bench *fb);

#ifdef __cplusplus
}
#endif
#endif
