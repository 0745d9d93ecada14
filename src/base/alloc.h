/*
 * Allocator binding. The release build links jemalloc (malloc itself is jemalloc's) and gives
 * each worker thread its own arena, so workers never contend on an allocator lock. The
 * sanitizer build has no jemalloc (ASan brings its own allocator); the binding is then empty.
 *
 * alloc_heap_bytes() is what memory_limit measures: the bytes the program holds allocated
 * (jemalloc's stats.allocated after an epoch refresh; the sanitizer allocator's count; glibc's
 * mallinfo2 otherwise). It takes locks and walks arenas, so it is for a periodic sample,
 * never per message; 0 means it cannot tell.
 */
#ifndef STARLING_ALLOC_H
#define STARLING_ALLOC_H

#if defined(ST_JEMALLOC) && ST_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <stddef.h>
#include <stdint.h>

/* Creates an arena and binds the calling thread to it; failure leaves the default arena. */
static inline void alloc_bind_thread_arena(void)
{
	unsigned arena;
	size_t sz = sizeof(arena);

	if (mallctl("arenas.create", &arena, &sz, NULL, 0) == 0)
		mallctl("thread.arena", NULL, NULL, &arena, sizeof(arena));
}

static inline uint64_t alloc_heap_bytes(void)
{
	uint64_t epoch = 1;
	size_t allocated = 0, sz = sizeof(epoch);

	mallctl("epoch", &epoch, &sz, &epoch, sz);
	sz = sizeof(allocated);
	if (mallctl("stats.allocated", &allocated, &sz, NULL, 0) != 0)
		return 0;
	return allocated;
}
#elif defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <stddef.h>
#include <stdint.h>

/* The sanitizers' allocator interface (sanitizer/allocator_interface.h, which gcc 12 lacks). */
size_t __sanitizer_get_current_allocated_bytes(void);

static inline void alloc_bind_thread_arena(void)
{
}

static inline uint64_t alloc_heap_bytes(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
#include <stdint.h>
static inline void alloc_bind_thread_arena(void)
{
}

static inline uint64_t alloc_heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}
#endif

#endif
