/*
 * memory_limit (limits.h): worker 0 measures, every worker follows a flag. The transitions
 * are logged once each, so a broker hovering at its limit says so without flooding the log.
 */
#include <stdatomic.h>

#include "base/alloc.h"
#include "base/log.h"
#include "broker.h"
#include "limits.h"
#include "worker.h"

void limits_housekeeping(struct worker *w)
{
	struct broker *b = w->b;
	uint64_t limit = b->cfg.limits.memory_limit;

	if (!limit)
		return;
	if (w->index == 0) {
		uint64_t used = alloc_heap_bytes();
		bool over = used > limit;

		if (over != atomic_load_explicit(&b->shared.mem_over, memory_order_relaxed)) {
			log_msg(&w->log, over ? LOG_T_WARNING : LOG_T_NOTICE,
			        over ? "memory_limit reached: %llu bytes in use (limit %llu); "
			               "PUBLISHes are refused."
			             : "Back under memory_limit: %llu bytes in use (limit %llu).",
			        (unsigned long long)used, (unsigned long long)limit);
			atomic_store_explicit(&b->shared.mem_over, over, memory_order_relaxed);
		}
	}
	w->mem_over = atomic_load_explicit(&b->shared.mem_over, memory_order_relaxed);
}
