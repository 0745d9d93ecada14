/*
 * Word-at-a-time byte scanning, shared by the decoder, the UTF-8 check and the topic code:
 * eight bytes loaded as one little-endian word, and the classic bit tricks that find a byte
 * value in it without a branch per byte. Loads are unaligned memcpy()s, so callers only need
 * eight readable bytes at p.
 */
#ifndef STARLING_WORDSCAN_H
#define STARLING_WORDSCAN_H

#include <stdint.h>
#include <string.h>

#define WS_ONES  0x0101010101010101ull /* 0x01 in every byte */
#define WS_HIGHS 0x8080808080808080ull /* 0x80 in every byte */

/* The eight bytes at p as a little-endian word: byte i is bits 8i..8i+7. */
static inline uint64_t ws_load(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/*
 * High bit of each zero byte. (w - 1s) & ~w & 0x80s can also mark a 0x01 byte sitting above a
 * zero byte, but never below the lowest zero: the lowest set bit is exact, and it is all that
 * callers use.
 */
static inline uint64_t ws_zero_bytes(uint64_t w)
{
	return (w - WS_ONES) & ~w & WS_HIGHS;
}

/* Index of the byte whose high bit is the lowest set bit of a non-zero mask. */
static inline unsigned ws_first(uint64_t mask)
{
	return (unsigned)__builtin_ctzll(mask) >> 3;
}

#endif
