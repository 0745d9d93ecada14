/*
 * UTF-8 validation for MQTT strings (MQTT 3.1.1 section 1.5.3, MQTT 5 section 1.5.4).
 *
 * Almost every string MQTT carries (topics, client identifiers, user names) is ASCII, so the
 * loop tests eight bytes at a time for a byte with its high bit set or a zero byte and only
 * drops to the per-sequence check of RFC 3629 section 4 when it finds one. Words are loaded
 * with memcpy (any alignment) and only ever from inside [s, s + len): the tail shorter than a
 * word is checked byte by byte, so the function never reads past len.
 *
 * Code points U+0001..U+001F, U+007F..U+009F and the non-characters are accepted: section 1.5.4
 * says senders SHOULD NOT use them and receivers MAY treat them as malformed; we do not (the
 * broker forwards what it was given). A BOM U+FEFF is an ordinary character [MQTT-1.5.4-3].
 */
#include "starling/utf8.h"

#include <string.h>

#include "starling/error.h"

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define to_le64(x) __builtin_bswap64(x)
#else
#define to_le64(x) (x)
#endif

/* The eight bytes at p as a little-endian word: byte i is bits 8i..8i+7. */
static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return to_le64(w);
}

/*
 * High bit of each byte that is non-ASCII or zero. The zero test (w - 1s) & ~w & 0x80s can
 * mark a 0x01 byte sitting above a zero byte, but never below the lowest zero, so the lowest
 * set bit is exact: it is all the caller uses.
 */
static inline uint64_t ascii_stop_mask(uint64_t w)
{
	return (w & HIGHS) | ((w - ONES) & ~w & HIGHS);
}

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

int st_utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	/* Each pass consumes at least one byte, so the loop runs at most len times. */
	while (i < len) {
		if (len - i >= sizeof(uint64_t)) {
			uint64_t stop = ascii_stop_mask(load_le64(s + i));

			if (stop == 0) {
				i += sizeof(uint64_t);
				continue;
			}
			i += (size_t)__builtin_ctzll(stop) >> 3; /* skip the ASCII prefix */
		}
		uint8_t c = s[i];

		if (c < 0x80) {
			if (c == 0)
				return ST_ERR_UTF8_NUL; /* [MQTT-1.5.4-2] */
			i++;
			continue;
		}
		size_t n = utf8_seq_len(s + i, len - i);

		if (n == 0)
			return ST_ERR_UTF8; /* [MQTT-1.5.4-1] */
		i += n;
	}
	return ST_OK;
}
