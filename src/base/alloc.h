/*
 * Allocator binding. The release build links jemalloc (malloc itself is jemalloc's) and gives
 * each worker thread its own arena, so workers never contend on an allocator lock. The
 * sanitizer build has no jemalloc (ASan brings its own allocator); the binding is then empty.
 */
#ifndef STARLING_ALLOC_H
#define STARLING_ALLOC_H

#if defined(ST_JEMALLOC) && ST_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <stddef.h>

/* Creates an arena and binds the calling thread to it; failure leaves the default arena. */
static inline void alloc_bind_thread_arena(void)
{
	unsigned arena;
	size_t sz = sizeof(arena);

	if (mallctl("arenas.create", &arena, &sz, NULL, 0) == 0)
		mallctl("thread.arena", NULL, NULL, &arena, sizeof(arena));
}
#else
static inline void alloc_bind_thread_arena(void)
{
}
#endif

#endif
