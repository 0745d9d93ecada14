/*
 * A bounded single-producer single-consumer queue of fixed-size entries: the channel from one
 * worker thread to another. There is one channel per ordered pair of workers, so every channel
 * has exactly one writer thread and one reader thread and needs no lock.
 *
 * Layout: a power-of-two array of 32-byte entries and two free-running 32-bit counters, `tail`
 * (entries written) and `head` (entries read), each on its own cache line with the other side's
 * cached copy beside it, so that the two threads touch a shared line only when the cached copy
 * says the queue is full (producer) or empty (consumer). Indices wrap at 2^32: `tail - head`
 * is the fill level in modular arithmetic, whatever the wrap.
 *
 * Batching: chan_push() writes an entry that the consumer cannot see yet; chan_publish() makes
 * everything pushed visible with one release store. The consumer's chan_pop() reads entries
 * and chan_release() gives their slots back with one release store. A worker publishes once
 * per loop iteration, then rings the consumer's doorbell (ring_msg), so a burst of deliveries
 * costs one store and one wake-up, not one per entry.
 *
 * Memory ordering: the producer writes the entry, then release-stores `tail`; the consumer
 * acquire-loads `tail` before reading entries. The consumer reads entries, then release-stores
 * `head`; the producer acquire-loads `head` before reusing their slots.
 *
 * The queue carries words; what an entry means (a message reference, a descriptor) is the
 * caller's business, as is ownership of what its pointers point to.
 */
#ifndef STARLING_CHAN_H
#define STARLING_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One queue entry: a kind and what the caller packs into the other words. */
struct chan_entry {
	uint32_t kind; /* caller-defined */
	uint32_t arg;  /* caller-defined */
	uint64_t u64;  /* caller-defined */
	void *p1;      /* caller-defined; ownership travels with the entry */
	void *p2;      /* caller-defined */
};

#define CHAN_CACHELINE 64

struct chan {
	/* Producer's line. */
	_Alignas(CHAN_CACHELINE) _Atomic uint32_t tail; /* entries published */
	uint32_t tail_local;                            /* entries pushed (>= tail) */
	uint32_t head_cache;                            /* last head the producer read */
	/* Consumer's line. */
	_Alignas(CHAN_CACHELINE) _Atomic uint32_t head; /* slots released */
	uint32_t head_local;                            /* entries popped (>= head) */
	uint32_t tail_cache;                            /* last tail the consumer read */
	/* Read-only after chan_init. */
	_Alignas(CHAN_CACHELINE) struct chan_entry *slots; /* cap entries */
	uint32_t mask;                                     /* cap - 1 */
};

/*
 * Sets up an empty channel of cap entries (a power of two, at least 2) whose counters start at
 * `start` (0 normally; tests start near 2^32 to cross the wrap). ST_OK or ST_ERR_NOMEM.
 */
int chan_init(struct chan *ch, uint32_t cap, uint32_t start);

/* Frees the slots; entries still queued are the caller's to drain first (chan_pop). */
void chan_fini(struct chan *ch);

/* Producer: queues e (invisible until chan_publish). False when the channel is full. */
bool chan_push(struct chan *ch, const struct chan_entry *e);

/* Producer: makes every pushed entry visible. True if there was anything new. */
bool chan_publish(struct chan *ch);

/* Producer: entries pushed and not yet released by the consumer (as last seen). */
static inline uint32_t chan_fill(const struct chan *ch)
{
	return ch->tail_local - ch->head_cache;
}

/* Consumer: takes the oldest published entry into *e. False when none is visible. */
bool chan_pop(struct chan *ch, struct chan_entry *e);

/* Consumer: the oldest published entry, left in place (valid until popped), or NULL. */
const struct chan_entry *chan_peek(struct chan *ch);

/* Consumer: gives the slots of every popped entry back to the producer. */
void chan_release(struct chan *ch);

#endif
