/*
 * The timing wheel (see wheel.h). A slot's list is detached before it is walked, so a callback
 * may add timers anywhere, this slot included, without being called again in the same advance.
 */
#include "wheel.h"

#include <assert.h>
#include <stdlib.h>

#include "starling/error.h"

int wheel_init(struct wheel *wh, uint32_t nslots, uint32_t tick_ms, uint64_t now_ms)
{
	assert(nslots && (nslots & (nslots - 1)) == 0 && tick_ms > 0);
	wh->slots = malloc(nslots * sizeof(*wh->slots));
	if (!wh->slots)
		return ST_ERR_NOMEM;
	for (uint32_t i = 0; i < nslots; i++)
		wh->slots[i].next = wh->slots[i].prev = &wh->slots[i];
	wh->mask = nslots - 1;
	wh->tick_ms = tick_ms;
	wh->tick = now_ms / tick_ms;
	wh->count = 0;
	return ST_OK;
}

void wheel_fini(struct wheel *wh)
{
	/* Nodes belong to their owners; they are simply forgotten. */
	free(wh->slots);
	wh->slots = NULL;
	wh->count = 0;
}

static void wheel_link(struct wheel_node *head, struct wheel_node *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

void wheel_add(struct wheel *wh, struct wheel_node *n, uint64_t at_ms)
{
	uint64_t t = at_ms / wh->tick_ms;

	assert(!wheel_linked(n));
	/* A deadline already past goes to the next slot walked, not to one behind the hand. */
	if (t <= wh->tick)
		t = wh->tick + 1;
	n->at_ms = at_ms;
	wheel_link(&wh->slots[t & wh->mask], n);
	wh->count++;
}

void wheel_del(struct wheel *wh, struct wheel_node *n)
{
	if (!wheel_linked(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
	wh->count--;
}

/* Walks one slot: nodes whose tick has come fire, later turns go back in. */
static size_t wheel_walk(struct wheel *wh, struct wheel_node *head, wheel_fire_fn fn, void *ctx)
{
	struct wheel_node list, *n;
	size_t fired = 0;

	if (head->next == head)
		return 0;
	/* Detach the whole list. */
	list.next = head->next;
	list.prev = head->prev;
	list.next->prev = &list;
	list.prev->next = &list;
	head->next = head->prev = head;
	while ((n = list.next) != &list) {
		n->prev->next = n->next;
		n->next->prev = n->prev;
		if (n->at_ms / wh->tick_ms > wh->tick) {
			wheel_link(head, n);
			continue;
		}
		n->next = n->prev = NULL;
		wh->count--;
		fn(ctx, n);
		fired++;
	}
	return fired;
}

size_t wheel_advance(struct wheel *wh, uint64_t now_ms, wheel_fire_fn fn, void *ctx)
{
	uint64_t target = now_ms / wh->tick_ms, steps;
	size_t fired = 0;

	if (target <= wh->tick)
		return 0;
	/* After a long stall one turn visits every slot: no need to go round twice. */
	steps = target - wh->tick;
	if (steps > (uint64_t)wh->mask + 1)
		steps = (uint64_t)wh->mask + 1;
	/* The hand moves first: what a callback adds for this tick or before goes to the next
	 * tick's slot, which this advance does not walk again. */
	wh->tick = target;
	for (uint64_t t = target - steps + 1; t <= target; t++)
		fired += wheel_walk(wh, &wh->slots[t & wh->mask], fn, ctx);
	return fired;
}
