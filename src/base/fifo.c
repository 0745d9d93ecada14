/*
 * Ring FIFO growth (see fifo.h): two copies, the run from head to the end of the old array and
 * the run that wrapped to its start.
 */
#include "fifo.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "starling/error.h"

int fifo_grow(void **items, uint32_t *head, uint32_t len, uint32_t *cap, size_t elem,
              uint32_t first)
{
	uint32_t ncap = *cap ? *cap * 2 : first, tail_run;
	uint8_t *n, *old = *items;

	assert(len <= *cap && (ncap & (ncap - 1)) == 0 && ncap > len);
	n = malloc((size_t)ncap * elem);
	if (!n)
		return ST_ERR_NOMEM;
	tail_run = len < *cap - *head ? len : *cap - *head;
	if (len) {
		memcpy(n, old + (size_t)*head * elem, (size_t)tail_run * elem);
		memcpy(n + (size_t)tail_run * elem, old, (size_t)(len - tail_run) * elem);
	}
	free(old);
	*items = n;
	*head = 0;
	*cap = ncap;
	return ST_OK;
}
