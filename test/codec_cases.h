/*
 * Helpers shared by the codec's unit tests (test/test_codec.c, test/test_codec_malformed.c,
 * test/test_codec_encode.c), each its own CUnit binary: byte views of C strings, their
 * comparison, a decode from a guard-page copy (see testutil.h), hex to bytes, and a filler
 * payload. Everything is static inline so a binary that does not use a helper does not warn.
 */
#ifndef STARLING_TEST_CODEC_CASES_H
#define STARLING_TEST_CODEC_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "starling/codec.h"
#include "testutil.h"

#define PKT_MAX 70000 /* larger than any packet built here */

/* B("text") and BN(ptr, n): views of a C string's bytes (no NUL) and of n bytes at ptr. */
static inline struct st_bytes B(const char *s) {
	return (struct st_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static inline struct st_bytes
BN(const void *p, size_t n) {
	return (struct st_bytes){p, (uint32_t)n};
}

/* True if both views hold the same bytes; absent and empty are the same. */
static inline bool
bytes_eq(struct st_bytes a, struct st_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The decoder's view of an absent or empty field is any view of length 0. */
#define ASSERT_BYTES(a, b) CU_ASSERT(bytes_eq((a), (b)))
#define NONE               ((struct st_bytes){NULL, 0})

/* Decodes a guarded copy of in[0..len) at level; *pkt borrows from g's copy. */
static inline int decode_guarded(struct tu_guard *g, const uint8_t *in, size_t len, uint8_t level,
                                 struct st_packet *pkt, size_t *consumed)
{
	const uint8_t *copy = tu_guard_copy(g, in, len);

	return st_decode_packet(copy, len, level, 0, pkt, consumed);
}

/* Hex digits to bytes (at most cap); returns the number of bytes. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; hex[0] && hex[1] && n < cap; hex += 2) {
		unsigned v;

		CU_ASSERT_FATAL(sscanf(hex, "%2x", &v) == 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* A pattern of at least n bytes (n <= PKT_MAX) in one static buffer, rewritten by each call. */
static inline const uint8_t *filler(size_t n)
{
	static uint8_t buf[PKT_MAX];

	for (size_t i = 0; i < n && i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	return buf;
}

#endif
