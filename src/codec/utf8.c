/*
 * UTF-8 validation for MQTT strings (MQTT 3.1.1 section 1.5.3, MQTT 5 section 1.5.4).
 *
 * Almost every string MQTT carries (topics, client identifiers, user names) is ASCII, so the
 * loop tests sixteen bytes at a time (SSE2, or two 64-bit words without it) for a byte with
 * its high bit set or a zero byte, and only drops to the per-sequence check of RFC 3629
 * section 4 when it finds one. Blocks are loaded unaligned and only ever from inside
 * [s, s + len): the tail shorter than a block is checked by one word and then byte by byte,
 * so the function never reads past len.
 *
 * Code points U+0001..U+001F, U+007F..U+009F and the non-characters are accepted: section 1.5.4
 * says senders SHOULD NOT use them and receivers MAY treat them as malformed; we do not (the
 * broker forwards what it was given). A BOM U+FEFF is an ordinary character [MQTT-1.5.4-3].
 */
#include "starling/utf8.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "starling/error.h"
#include "wordscan.h"

/* High bit of each byte that is non-ASCII or zero (exact for the lowest, see wordscan.h). */
static inline uint64_t ascii_stop_mask(uint64_t w)
{
	return (w & WS_HIGHS) | ws_zero_bytes(w);
}

#if defined(__SSE2__)
/* Index of the first non-ASCII or zero byte of p[0..16), or 16: one SSE2 pass. */
static inline unsigned ascii_stop16(const uint8_t *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)p);
	/* movemask takes each byte's high bit: set for a zero byte and for a non-ASCII one. */
	unsigned m = (unsigned)_mm_movemask_epi8(
	        _mm_or_si128(v, _mm_cmpeq_epi8(v, _mm_setzero_si128())));

	return m ? (unsigned)__builtin_ctz(m) : 16;
}
#else
/* Index of the first non-ASCII or zero byte of p[0..16), or 16: two words. */
static inline unsigned ascii_stop16(const uint8_t *p)
{
	uint64_t m = ascii_stop_mask(ws_load(p));

	if (m)
		return ws_first(m);
	m = ascii_stop_mask(ws_load(p + 8));
	return m ? 8 + ws_first(m) : 16;
}
#endif

/*
 * Length of the well-formed multi-byte sequence at s[0..avail) (RFC 3629 section 4 table),
 * or 0 if it is ill-formed or truncated. s[0] >= 0x80.
 */
static size_t utf8_seq_len(const uint8_t *s, size_t avail)
{
	uint8_t c = s[0];
	uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	size_t n;

	if (c < 0xC2) /* continuation byte, or C0/C1 which only start overlong forms */
		return 0;
	if (c < 0xE0) {
		n = 2;
	} else if (c < 0xF0) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates U+D800..U+DFFF */
	} else if (c < 0xF5) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/*
 * End of the ASCII run starting at i: the index of the first zero or non-ASCII byte, or len.
 * Blocks of 16; when at least 16 bytes of the run are behind, the tail is one more block
 * that overlaps them (they are clean, so any stop it finds is new), else a word, then bytes.
 */
static inline size_t ascii_run_end(const uint8_t *s, size_t len, size_t i)
{
	size_t start = i;

	while (len - i >= 16) {
		unsigned k = ascii_stop16(s + i);

		if (k < 16)
			return i + k;
		i += 16;
	}
	if (i == len)
		return len;
	if (len - start >= 16) {
		unsigned k = ascii_stop16(s + len - 16);

		return k < 16 ? len - 16 + k : len;
	}
	if (len - i >= sizeof(uint64_t)) {
		uint64_t stop = ascii_stop_mask(ws_load(s + i));

		if (stop)
			return i + ws_first(stop);
		i += sizeof(uint64_t);
	}
	while (i < len && s[i] != 0 && s[i] < 0x80)
		i++;
	return i;
}

int st_utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	/* Alternate ASCII runs and non-ASCII runs; each round consumes at least one byte. */
	for (;;) {
		i = ascii_run_end(s, len, i);
		if (i == len)
			return ST_OK;
		if (s[i] == 0)
			return ST_ERR_UTF8_NUL; /* [MQTT-1.5.4-2] */
		/* Multi-byte sequences back to back (non-Latin text) stay in this loop. */
		do {
			size_t n = utf8_seq_len(s + i, len - i);

			if (n == 0)
				return ST_ERR_UTF8; /* [MQTT-1.5.4-1] */
			i += n;
		} while (i < len && s[i] >= 0x80);
	}
}
