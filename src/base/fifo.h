/*
 * Growth of a FIFO kept as a ring: an array whose capacity is a power of two, the index of the
 * oldest entry, and a length; entry i (from the oldest) is at (head + i) & (cap - 1). The session
 * queue, the cross-worker overflow queues and the retained tombstones are such rings; they grow
 * here and never shrink while in use.
 */
#ifndef STARLING_FIFO_H
#define STARLING_FIFO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Doubles the ring *items of *cap entries of `elem` bytes holding len entries from *head (or
 * allocates `first` entries when *cap is 0), copying them in order to the start of the new array
 * (*head becomes 0). ST_OK, or ST_ERR_NOMEM with the ring unchanged.
 */
int fifo_grow(void **items, uint32_t *head, uint32_t len, uint32_t *cap, size_t elem,
              uint32_t first);

#endif
