/*
 * $SYS/broker/... topics, as Mosquitto names them: every sys_interval seconds the worker
 * publishes its counters as retained messages, only those whose value changed since the last
 * round. Subscribers see them like any retained message; '#' and '+' at the first level do not
 * match them [MQTT-4.7.2-1].
 */
#ifndef STARLING_SYS_H
#define STARLING_SYS_H

#include <stdint.h>

struct worker;

#define STARLING_VERSION "0.1.0" /* $SYS/broker/version, starling_build_info */

#define SYS_TOPICS_MAX 48

struct sys_state {
	uint64_t next_ms;                  /* monotonic time of the next round; 0: not started */
	uint64_t last[SYS_TOPICS_MAX];     /* value last published per topic */
	uint8_t published[SYS_TOPICS_MAX]; /* topic has been published at least once */
};

/* Publishes what changed if the interval has passed (call from housekeeping). */
void sys_tick(struct worker *w);

#endif
