/*
 * The single-producer single-consumer channel (see chan.h for the layout and the ordering).
 * Each side reads the other side's counter only when its cached copy says it must, so a
 * channel in steady use costs a shared cache line transfer per batch, not per entry.
 */
#include "chan.h"

#include <assert.h>
#include <stdlib.h>

#include "starling/error.h"

int chan_init(struct chan *ch, uint32_t cap, uint32_t start)
{
	assert(cap >= 2 && (cap & (cap - 1)) == 0);
	ch->slots = calloc(cap, sizeof(*ch->slots));
	if (!ch->slots)
		return ST_ERR_NOMEM;
	ch->mask = cap - 1;
	atomic_init(&ch->tail, start);
	atomic_init(&ch->head, start);
	ch->tail_local = ch->head_cache = start;
	ch->head_local = ch->tail_cache = start;
	return ST_OK;
}

void chan_fini(struct chan *ch)
{
	free(ch->slots);
	ch->slots = NULL;
}

bool chan_push(struct chan *ch, const struct chan_entry *e)
{
	if (ch->tail_local - ch->head_cache > ch->mask) {
		/* Full as last seen: the consumer may have released slots since. */
		ch->head_cache = atomic_load_explicit(&ch->head, memory_order_acquire);
		if (ch->tail_local - ch->head_cache > ch->mask)
			return false;
	}
	ch->slots[ch->tail_local & ch->mask] = *e;
	ch->tail_local++;
	return true;
}

bool chan_publish(struct chan *ch)
{
	if (atomic_load_explicit(&ch->tail, memory_order_relaxed) == ch->tail_local)
		return false;
	atomic_store_explicit(&ch->tail, ch->tail_local, memory_order_release);
	return true;
}

const struct chan_entry *chan_peek(struct chan *ch)
{
	if (ch->head_local == ch->tail_cache) {
		ch->tail_cache = atomic_load_explicit(&ch->tail, memory_order_acquire);
		if (ch->head_local == ch->tail_cache)
			return NULL;
	}
	return &ch->slots[ch->head_local & ch->mask];
}

bool chan_pop(struct chan *ch, struct chan_entry *e)
{
	const struct chan_entry *p = chan_peek(ch);

	if (!p)
		return false;
	*e = *p;
	ch->head_local++;
	return true;
}

void chan_release(struct chan *ch)
{
	if (atomic_load_explicit(&ch->head, memory_order_relaxed) != ch->head_local)
		atomic_store_explicit(&ch->head, ch->head_local, memory_order_release);
}
