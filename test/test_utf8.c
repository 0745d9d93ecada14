/*
 * Unit tests of st_utf8_check (src/utf8.c).
 *
 * Every input is placed right before a guard page, so a read past len faults. Besides the
 * RFC 3629 edge cases (overlongs, surrogates, > U+10FFFF, truncation, U+0000) the checker is
 * compared with a naive reference decoder on every two-byte string, every three-byte string
 * with a three-byte lead, and random strings; and a defect is moved across every offset of a
 * long ASCII string so each lane of the eight-byte fast path is exercised.
 */
#include <stdio.h>
#include <string.h>

#include "starling/error.h"
#include "starling/utf8.h"
#include "testutil.h"

/* The plain reading of RFC 3629: decode a code point, then check its range. */
static int ref_check(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		uint32_t c = s[i], cp;
		size_t n;

		if (c < 0x80) {
			if (c == 0)
				return ST_ERR_UTF8_NUL;
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			n = 2, cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 3, cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 4, cp = c & 0x07;
		} else {
			return ST_ERR_UTF8;
		}
		if (len - i < n)
			return ST_ERR_UTF8;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return ST_ERR_UTF8;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;

		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return ST_ERR_UTF8;
		i += n;
	}
	return ST_OK;
}

/* st_utf8_check on a guarded copy of s[0..len). */
static int check(const void *s, size_t len)
{
	struct tu_guard g = {0};
	int rc = st_utf8_check(tu_guard_copy(&g, s, len), len);

	tu_guard_release(&g);
	return rc;
}

#define CHECK_STR(lit, want) CU_ASSERT_EQUAL(check(lit, sizeof(lit) - 1), want)

static void test_ascii(void)
{
	char s[80];

	CU_ASSERT_EQUAL(check("", 0), ST_OK);
	for (size_t len = 1; len < sizeof(s); len++) {
		for (size_t i = 0; i < len; i++)
			s[i] = (char)(1 + (i * 7) % 127); /* every ASCII byte but 0 */
		CU_ASSERT_EQUAL(check(s, len), ST_OK);
	}
	CHECK_STR("sport/tennis/player1", ST_OK);
	CHECK_STR("\x01\x1f\x7f", ST_OK); /* controls are allowed (section 1.5.4 SHOULD NOT) */
}

static void test_valid_multibyte(void)
{
	CHECK_STR("\xc2\x80", ST_OK);          /* U+0080, smallest two-byte */
	CHECK_STR("\xdf\xbf", ST_OK);          /* U+07FF */
	CHECK_STR("\xe0\xa0\x80", ST_OK);      /* U+0800, smallest three-byte */
	CHECK_STR("\xed\x9f\xbf", ST_OK);      /* U+D7FF, just below the surrogates */
	CHECK_STR("\xee\x80\x80", ST_OK);      /* U+E000, just above */
	CHECK_STR("\xef\xbb\xbf", ST_OK);      /* U+FEFF BOM [MQTT-1.5.4-3] */
	CHECK_STR("\xef\xbf\xbf", ST_OK);      /* U+FFFF */
	CHECK_STR("\xf0\x90\x80\x80", ST_OK);  /* U+10000, smallest four-byte */
	CHECK_STR("\xf0\x9f\x98\x80", ST_OK);  /* U+1F600 */
	CHECK_STR("\xf4\x8f\xbf\xbf", ST_OK);  /* U+10FFFF, the largest */
	CHECK_STR("A\xf0\xaa\x9b\x94", ST_OK); /* [MQTT-1.5.4] example U+2A6D4 */
	CHECK_STR("t\xc3\xabst/\xe2\x82\xac/\xf0\x9f\x98\x80/x", ST_OK);
}

static void test_overlong(void)
{
	CHECK_STR("\xc0\x80", ST_ERR_UTF8); /* overlong U+0000 (modified UTF-8) */
	CHECK_STR("\xc0\xaf", ST_ERR_UTF8);
	CHECK_STR("\xc1\xbf", ST_ERR_UTF8);
	CHECK_STR("\xe0\x80\x80", ST_ERR_UTF8);
	CHECK_STR("\xe0\x9f\xbf", ST_ERR_UTF8);
	CHECK_STR("\xf0\x80\x80\x80", ST_ERR_UTF8);
	CHECK_STR("\xf0\x8f\xbf\xbf", ST_ERR_UTF8);
}

static void test_surrogates(void)
{
	CHECK_STR("\xed\xa0\x80", ST_ERR_UTF8);             /* U+D800 */
	CHECK_STR("\xed\xaf\xbf", ST_ERR_UTF8);             /* U+DBFF */
	CHECK_STR("\xed\xb0\x80", ST_ERR_UTF8);             /* U+DC00 */
	CHECK_STR("\xed\xbf\xbf", ST_ERR_UTF8);             /* U+DFFF */
	CHECK_STR("\xed\xa0\xbd\xed\xb8\x80", ST_ERR_UTF8); /* CESU-8 pair */
}

static void test_above_max(void)
{
	CHECK_STR("\xf4\x90\x80\x80", ST_ERR_UTF8); /* U+110000 */
	CHECK_STR("\xf5\x80\x80\x80", ST_ERR_UTF8);
	CHECK_STR("\xf7\xbf\xbf\xbf", ST_ERR_UTF8);
	CHECK_STR("\xf8\x88\x80\x80\x80", ST_ERR_UTF8); /* old five-byte form */
	CHECK_STR("\xfc\x84\x80\x80\x80\x80", ST_ERR_UTF8);
	CHECK_STR("\xfe", ST_ERR_UTF8);
	CHECK_STR("\xff", ST_ERR_UTF8);
}

static void test_truncated_and_stray(void)
{
	CHECK_STR("\xc3", ST_ERR_UTF8);
	CHECK_STR("\xe2\x82", ST_ERR_UTF8);
	CHECK_STR("\xf0\x9f\x98", ST_ERR_UTF8);
	CHECK_STR("abc\xe2\x82", ST_ERR_UTF8);
	CHECK_STR("\xe2\x82"
	          "abc",
	          ST_ERR_UTF8);         /* a sequence cut short mid-string */
	CHECK_STR("\x80", ST_ERR_UTF8); /* lone continuation bytes */
	CHECK_STR("a\xbf", ST_ERR_UTF8);
	CHECK_STR("\xc3\x28", ST_ERR_UTF8);
	CHECK_STR("\xe2\x28\xa1", ST_ERR_UTF8);
	CHECK_STR("\xe2\x82\x28", ST_ERR_UTF8);
	CHECK_STR("\xf0\x28\x8c\xbc", ST_ERR_UTF8);
	CHECK_STR("\xf0\x90\x28\xbc", ST_ERR_UTF8);
	CHECK_STR("\xf0\x90\x8c\x28", ST_ERR_UTF8);
}

static void test_nul(void)
{
	CHECK_STR("\0", ST_ERR_UTF8_NUL);
	CHECK_STR("ab\0", ST_ERR_UTF8_NUL);
	CHECK_STR("\xc3\xa9\0", ST_ERR_UTF8_NUL);
	CHECK_STR("\xf0\x9f\x98\x80"
	          "abcdefgh\0",
	          ST_ERR_UTF8_NUL);
}

/*
 * A defect at every offset of ASCII strings of every length up to 48: every lane of the
 * 16-byte blocks, the overlapping last block, the word and the byte-wise tail.
 */
static void test_defect_at_every_offset(void)
{
	static const struct {
		const char *bytes;
		size_t len;
		int want;
	} defects[] = {
	        {"\0", 1, ST_ERR_UTF8_NUL},
	        {"\x80", 1, ST_ERR_UTF8},
	        {"\xff", 1, ST_ERR_UTF8},
	        {"\xc3", 1, ST_ERR_UTF8},
	        {"\xc3\xa9", 2, ST_OK},
	        {"\xe2\x82\xac", 3, ST_OK},
	        {"\xed\xa0\x80", 3, ST_ERR_UTF8},
	        {"\x01", 1, ST_OK},
	        {"\xc3\xa9\0", 3, ST_ERR_UTF8_NUL},
	};
	struct tu_guard g = {0};
	uint8_t s[48];
	unsigned wrong = 0;

	for (size_t d = 0; d < sizeof(defects) / sizeof(defects[0]); d++) {
		for (size_t len = defects[d].len; len <= sizeof(s); len++) {
			for (size_t off = 0; off + defects[d].len <= len; off++) {
				memset(s, 'a', len);
				memcpy(s + off, defects[d].bytes, defects[d].len);
				int rc = st_utf8_check(tu_guard_copy(&g, s, len), len);

				if (rc != defects[d].want) {
					fprintf(stderr, "defect %zu at %zu of %zu: %d\n", d, off,
					        len, rc);
					wrong++;
				}
			}
		}
	}
	tu_guard_release(&g);
	CU_ASSERT_EQUAL(wrong, 0);
}

/* Every two-byte string, and every three-byte string led by 0xE0..0xEF, against ref_check. */
static void test_exhaustive_against_reference(void)
{
	uint8_t s[3];
	unsigned mismatches = 0;

	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			s[0] = (uint8_t)a, s[1] = (uint8_t)b;
			mismatches += st_utf8_check(s, 2) != ref_check(s, 2);
		}
	}
	for (unsigned a = 0xE0; a < 0xF0; a++) {
		for (unsigned b = 0; b < 256; b++) {
			for (unsigned c = 0; c < 256; c++) {
				s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = (uint8_t)c;
				mismatches += st_utf8_check(s, 3) != ref_check(s, 3);
			}
		}
	}
	CU_ASSERT_EQUAL(mismatches, 0);
}

static uint64_t next_rand(uint64_t *state)
{
	uint64_t x = *state; /* xorshift64 */

	x ^= x << 13, x ^= x >> 7, x ^= x << 17;
	return *state = x;
}

/* Random strings built from ASCII, valid sequences and random bytes, against ref_check. */
static void test_random_against_reference(void)
{
	static const char *const pieces[] = {"a",
	                                     "/",
	                                     "\xc3\xa9",
	                                     "\xe2\x82\xac",
	                                     "\xf0\x9f\x98\x80",
	                                     "\xf4\x8f\xbf\xbf",
	                                     "\xed\x9f\xbf",
	                                     "0123456789abcdef"};
	uint64_t rng = 0x9E3779B97F4A7C15ull;
	struct tu_guard g = {0};
	uint8_t s[96];
	unsigned mismatches = 0;

	for (int iter = 0; iter < 20000; iter++) {
		size_t len = 0;

		while (len < sizeof(s) - 16) {
			uint64_t r = next_rand(&rng);

			if (r % 16 == 0) { /* a random byte now and then */
				s[len++] = (uint8_t)(r >> 8);
				continue;
			}
			const char *p = pieces[(r >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];

			memcpy(s + len, p, strlen(p));
			len += strlen(p);
			if ((r >> 16) % 8 == 0)
				break;
		}
		const uint8_t *copy = tu_guard_copy(&g, s, len);

		mismatches += st_utf8_check(copy, len) != ref_check(s, len);
	}
	tu_guard_release(&g);
	CU_ASSERT_EQUAL(mismatches, 0);
}

static const struct tu_test tests[] = {
        {"ascii", test_ascii},
        {"valid multi-byte", test_valid_multibyte},
        {"overlong forms", test_overlong},
        {"surrogates", test_surrogates},
        {"above U+10FFFF", test_above_max},
        {"truncated and stray bytes", test_truncated_and_stray},
        {"U+0000", test_nul},
        {"defect at every offset", test_defect_at_every_offset},
        {"exhaustive 2 and 3 bytes vs reference", test_exhaustive_against_reference},
        {"random strings vs reference", test_random_against_reference},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("utf8", tests);
	return tu_run_registry();
}
