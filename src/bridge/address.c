/*
 * The address choice of a bridge (address.h): a cursor over the addresses and one deadline.
 */
#include "address.h"

#include <assert.h>

void bridge_addr_init(struct bridge_addr_sel *s, const struct config_bridge *b)
{
	assert(b->addr_count >= 1 && b->addr_count <= CONFIG_BRIDGE_ADDRS_MAX);
	s->count = b->addr_count;
	s->cur = 0;
	s->round_robin = b->round_robin;
	s->main_retry_at_ms = 0;
}

void bridge_addr_failed(struct bridge_addr_sel *s)
{
	s->cur = (s->cur + 1) % s->count;
	s->main_retry_at_ms = 0;
}

void bridge_addr_connected(struct bridge_addr_sel *s, uint64_t now_ms)
{
	s->main_retry_at_ms = !s->round_robin && s->cur != 0 ? now_ms + BRIDGE_MAIN_RETRY_MS : 0;
}

bool bridge_addr_main_due(const struct bridge_addr_sel *s, uint64_t now_ms)
{
	return s->main_retry_at_ms != 0 && now_ms >= s->main_retry_at_ms;
}

void bridge_addr_main_down(struct bridge_addr_sel *s, uint64_t now_ms)
{
	if (s->main_retry_at_ms != 0)
		s->main_retry_at_ms = now_ms + BRIDGE_MAIN_RETRY_MS;
}

void bridge_addr_main_up(struct bridge_addr_sel *s)
{
	s->cur = 0;
	s->main_retry_at_ms = 0;
}
