/*
 * Topic names and filters (MQTT 3.1.1 section 4.7, MQTT 5 section 4.7): validation and the
 * reference matcher.
 *
 * Everything works on (pointer, length) strings and looks only at the bytes '/', '+', '#' and
 * '$'; UTF-8 validity is st_utf8_check's job. Those four bytes never occur inside a multi-byte
 * UTF-8 sequence, so scanning bytes is also scanning characters. st_topic_matches walks both
 * strings level by level, once, with no allocation; the subscription index must agree with it
 * and its tests compare the two.
 */
#include "starling/topic.h"

#include <string.h>

bool st_topic_name_is_valid(const uint8_t *name, size_t len)
{
	/* [MQTT-4.7.3-1] at least one character; [MQTT-4.7.1-1] no wildcard in a name. */
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '+' || name[i] == '#')
			return false;
	return true;
}

bool st_topic_filter_is_valid(const uint8_t *filter, size_t len)
{
	if (len == 0) /* [MQTT-4.7.3-1] */
		return false;
	/* One pass over the levels; each iteration consumes one level and its '/'. */
	for (size_t pos = 0;;) {
		size_t level = st_topic_level_len(filter + pos, len - pos);
		const uint8_t *l = filter + pos;

		for (size_t i = 0; i < level; i++) {
			if (l[i] != '+' && l[i] != '#')
				continue;
			if (level != 1) /* [MQTT-4.7.1-2], [MQTT-4.7.1-3]: a whole level or nothing */
				return false;
			/* [MQTT-4.7.1-2] '#' must be the last character. */
			if (l[i] == '#' && pos + level != len)
				return false;
		}
		pos += level;
		if (pos == len)
			return true;
		pos++; /* the '/' */
	}
}

bool st_topic_filter_has_wildcard(const uint8_t *filter, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (filter[i] == '+' || filter[i] == '#')
			return true;
	return false;
}

size_t st_topic_level_len(const uint8_t *s, size_t len)
{
	const uint8_t *slash = len ? memchr(s, '/', len) : NULL;

	return slash ? (size_t)(slash - s) : len;
}

bool st_topic_matches(const uint8_t *filter, size_t filter_len, const uint8_t *name,
		      size_t name_len)
{
	const uint8_t *f = filter, *fend = filter + filter_len;
	const uint8_t *n = name, *nend = name + name_len;

	/* [MQTT-4.7.2-1] '$' topics are not matched by a filter that starts with a wildcard. */
	if (name_len > 0 && name[0] == '$' && filter_len > 0 && (filter[0] == '+' || filter[0] == '#'))
		return false;
	/*
	 * Both cursors sit at the start of a level. Each iteration consumes one level of each, so
	 * the loop runs at most once per level of the name (plus one).
	 */
	for (;;) {
		size_t flen = (size_t)(fend - f);

		/* A '#' level (necessarily the last) matches this level and all below it. */
		if (flen == 1 && f[0] == '#')
			return true;
		size_t fl = st_topic_level_len(f, flen);
		size_t nl = st_topic_level_len(n, (size_t)(nend - n));

		/* '+' matches any one level, the empty one included. */
		if (!(fl == 1 && f[0] == '+') && (fl != nl || (fl && memcmp(f, n, fl) != 0)))
			return false;
		f += fl;
		n += nl;
		if (f == fend)
			return n == nend;
		if (n == nend)
			/* "sport/#" also matches "sport": '#' includes the parent level. */
			return fend - f == 2 && f[1] == '#';
		f++; /* both now sit on a '/' */
		n++;
	}
}
