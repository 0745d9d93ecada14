/*
 * Topic names and filters (MQTT 3.1.1 section 4.7, MQTT 5 section 4.7): validation and the
 * reference matcher.
 *
 * Everything works on (pointer, length) strings and looks only at the bytes '/', '+', '#' and
 * '$'; UTF-8 validity is st_utf8_check's job. Those four bytes never occur inside a multi-byte
 * UTF-8 sequence, so scanning bytes is also scanning characters.
 *
 * st_topic_matches relies on one fact: '+' and '#' never occur in a valid name. So the first
 * byte where a filter and a name differ is either a wildcard of the filter or the end of the
 * match. The matcher compares eight bytes at a time up to that byte, handles the wildcard,
 * and goes on; an exact filter costs one word-wise comparison. The subscription index must
 * agree with this matcher, and its tests compare the two.
 */
#include "starling/topic.h"

#include <string.h>

#include "wordscan.h"

/* Does the word hold a '+' (0x2B) or '#' (0x23)? They differ only in bit 3. */
static inline bool word_has_wildcard(uint64_t w)
{
	return ws_zero_bytes((w | (WS_ONES * 0x08)) ^ (WS_ONES * '+')) != 0;
}

bool st_topic_filter_has_wildcard(const uint8_t *filter, size_t len)
{
	size_t i = 0;

	for (; len - i >= sizeof(uint64_t); i += sizeof(uint64_t))
		if (word_has_wildcard(ws_load(filter + i)))
			return true;
	for (; i < len; i++)
		if (filter[i] == '+' || filter[i] == '#')
			return true;
	return false;
}

bool st_topic_name_is_valid(const uint8_t *name, size_t len)
{
	/* [MQTT-4.7.3-1] at least one character; [MQTT-4.7.1-1] no wildcard in a name. */
	return len > 0 && !st_topic_filter_has_wildcard(name, len);
}

bool st_topic_filter_is_valid(const uint8_t *filter, size_t len)
{
	if (len == 0) /* [MQTT-4.7.3-1] */
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = filter[i];

		if (c != '+' && c != '#')
			continue;
		/* [MQTT-4.7.1-2], [MQTT-4.7.1-3]: a wildcard is a whole level... */
		if (i > 0 && filter[i - 1] != '/')
			return false;
		/* ...and '#' the last one [MQTT-4.7.1-2]. */
		if (c == '#')
			return i + 1 == len;
		if (i + 1 < len && filter[i + 1] != '/')
			return false;
	}
	return true;
}

size_t st_topic_level_len(const uint8_t *s, size_t len)
{
	size_t i = 0;

	/* Levels are short; a word-wise search beats a call to memchr. */
	for (; len - i >= sizeof(uint64_t); i += sizeof(uint64_t)) {
		uint64_t x = ws_load(s + i) ^ (WS_ONES * '/');
		uint64_t zero = ws_zero_bytes(x);

		if (zero) /* the lowest marked byte is exactly the first '/' */
			return i + ws_first(zero);
	}
	while (i < len && s[i] != '/')
		i++;
	return i;
}

/* Length of the common prefix of a[0..alen) and b[0..blen), eight bytes at a time. */
static size_t common_prefix_len(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen, i = 0;

	for (; n - i >= sizeof(uint64_t); i += sizeof(uint64_t)) {
		uint64_t x = ws_load(a + i) ^ ws_load(b + i);

		if (x)
			return i + ws_first(x);
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

bool st_topic_matches(const uint8_t *filter, size_t filter_len, const uint8_t *name,
                      size_t name_len)
{
	size_t f = 0, n = 0;

	/* [MQTT-4.7.2-1] '$' topics are not matched by a filter that starts with a wildcard. */
	if (name_len > 0 && name[0] == '$' && filter_len > 0 &&
	    (filter[0] == '+' || filter[0] == '#'))
		return false;
	/*
	 * Invariant: filter[0..f) matches name[0..n). Each round either returns or consumes a
	 * '+' of the filter, so there are at most filter_len + 1 rounds.
	 */
	for (;;) {
		size_t k = common_prefix_len(filter + f, filter_len - f, name + n, name_len - n);

		f += k;
		n += k;
		if (f == filter_len)
			return n == name_len;
		/*
		 * A valid filter has a wildcard only at the start of a level, and the name agreed
		 * up to here, so the name is at the start of a level too.
		 */
		switch (filter[f]) {
		case '+': /* any one level, the empty one included */
			n += st_topic_level_len(name + n, name_len - n);
			f++;
			break;
		case '#': /* this level and everything below it */
			return true;
		case '/': /* "sport/#" also matches "sport": '#' includes the parent level */
			return n == name_len && filter_len - f == 2 && filter[f + 1] == '#';
		default:
			return false;
		}
	}
}
