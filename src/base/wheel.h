/*
 * A hashed timing wheel: timers whose cost follows the timers that fire, not the timers that
 * exist. A worker holding 100,000 idle connections checks, on each tick, only the slot of that
 * tick, instead of walking every connection for keep alives.
 *
 * Layout: nslots (a power of two) list heads; a timer due at at_ms hangs in slot
 * (at_ms / tick_ms) & (nslots - 1), in an intrusive doubly linked node inside its owner, so
 * adding and removing are O(1) and allocate nothing. A timer further away than one turn of the
 * wheel stays in its slot and is passed over (not fired) until its turn comes.
 *
 * Timers may be lazy: an owner whose deadline moves often (a keep alive pushed back by every
 * packet) leaves its timer where it is and, when it fires, computes the real deadline and adds
 * itself again if that is still ahead. So the per-packet cost is zero.
 */
#ifndef STARLING_WHEEL_H
#define STARLING_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wheel_node {
	struct wheel_node *next; /* in the slot's list; NULL when not linked */
	struct wheel_node *prev; /* in the slot's list */
	uint64_t at_ms;          /* when it is due */
};

struct wheel {
	struct wheel_node *slots; /* nslots list heads (circular, sentinel nodes) */
	uint32_t mask;            /* nslots - 1 */
	uint32_t tick_ms;         /* granularity */
	uint64_t tick;            /* ticks handled: every slot up to this tick has been walked */
	size_t count;             /* linked timers */
};

/* Callback of a due timer: the node is already unlinked; it may be added again. */
typedef void (*wheel_fire_fn)(void *ctx, struct wheel_node *n);

/* Sets up an empty wheel of nslots (a power of two) slots of tick_ms, at time now_ms. */
int wheel_init(struct wheel *wh, uint32_t nslots, uint32_t tick_ms, uint64_t now_ms);
void wheel_fini(struct wheel *wh);

/* Adds n (not linked) due at at_ms; a time already past fires at the next advance. */
void wheel_add(struct wheel *wh, struct wheel_node *n, uint64_t at_ms);

/* Removes n if it is linked. */
void wheel_del(struct wheel *wh, struct wheel_node *n);

static inline bool wheel_linked(const struct wheel_node *n)
{
	return n->next != NULL;
}

/*
 * Fires every timer whose tick (at_ms / tick_ms) has come by now_ms, walking each slot whose
 * tick has come (at most one turn of the wheel): a timer fires up to tick_ms before at_ms, and
 * an owner that needs the exact time checks it and adds itself again. Returns the number fired.
 */
size_t wheel_advance(struct wheel *wh, uint64_t now_ms, wheel_fire_fn fn, void *ctx);

#endif
