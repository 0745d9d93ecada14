/*
 * MQTT topics <-> NATS subjects (subject.h has the layout and why). One pass over the topic,
 * one table lookup per byte; the reverse pass checks that the subject is in the canonical form
 * the forward pass writes, so that a subject from the network either is the image of exactly
 * one topic or is refused.
 */
#include "subject.h"

#include <string.h>

#include "starling/topic.h"
#include "starling/utf8.h"

/* Bytes a token keeps as they are; every other byte is escaped. */
static const bool literal[256] = {
        ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true,
        ['_'] = true,         ['-'] = true,
};

static const char hex_digits[16] = "0123456789ABCDEF";

#define ESC '=' /* the escape byte, and the whole token of an empty level */

/* A bounded writer into the caller's buffer; a write past the end sets `over`. */
struct out {
	char *p;   /* next byte */
	char *end; /* one past the last byte usable (the NUL's place is kept apart) */
	bool over; /* something did not fit */
};

static void out_init(struct out *o, char *buf, size_t cap)
{
	size_t usable = cap > 0 ? cap - 1 : 0; /* room for the NUL */

	if (usable > CLUSTER_SUBJECT_MAX)
		usable = CLUSTER_SUBJECT_MAX;
	o->p = buf;
	o->end = buf + usable;
	o->over = cap == 0;
}

static void out_bytes(struct out *o, const void *s, size_t n)
{
	if (o->over || (size_t)(o->end - o->p) < n) {
		o->over = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

static void out_byte(struct out *o, char c)
{
	out_bytes(o, &c, 1);
}

/* Writes one level as a token. */
static void out_level(struct out *o, const uint8_t *s, size_t n)
{
	if (n == 0) {
		out_byte(o, ESC);
		return;
	}
	for (size_t i = 0; i < n && !o->over; i++) {
		uint8_t c = s[i];

		if (literal[c]) {
			out_byte(o, (char)c);
		} else {
			char e[3] = {ESC, hex_digits[c >> 4], hex_digits[c & 15]};

			out_bytes(o, e, 3);
		}
	}
}

/* Ends the output: the NUL, and the length or CLUSTER_MAP_TOO_LONG. */
static long out_finish(struct out *o, char *buf)
{
	if (o->over)
		return CLUSTER_MAP_TOO_LONG;
	*o->p = '\0';
	return (long)(o->p - buf);
}

bool cluster_name_is_valid(const char *name, size_t len)
{
	if (len == 0 || len > CLUSTER_NAME_MAX || name[0] == '_')
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)name[i];

		if (c == '.') {
			/* no empty token: not first, not last, not twice */
			if (i == 0 || i + 1 == len || name[i - 1] == '.')
				return false;
		} else if (!literal[c]) {
			return false;
		}
	}
	return true;
}

int cluster_prefix_init(struct cluster_prefix *p, const char *name, size_t len)
{
	if (!cluster_name_is_valid(name, len))
		return CLUSTER_MAP_INVALID;
	memcpy(p->str, name, len);
	p->str[len] = '.';
	p->str[len + 1] = '\0';
	p->len = (uint8_t)(len + 1);
	return 0;
}

static bool first_level_is_sys(const uint8_t *s, size_t len)
{
	return len >= 4 && memcmp(s, "$SYS", 4) == 0 && (len == 4 || s[4] == '/');
}

/*
 * Writes "<prefix><kind>" and then ".<token>" per level of s (a valid topic or filter), with
 * '+' as '*' and '#' as '>' when `filter`.
 */
static void out_levels(struct out *o, const struct cluster_prefix *p, const uint8_t *s, size_t len,
                       bool filter)
{
	out_bytes(o, p->str, p->len);
	out_byte(o, s[0] == '$' ? 'd' : 'm');
	for (size_t i = 0;;) {
		size_t n = st_topic_level_len(s + i, len - i);

		out_byte(o, '.');
		if (filter && n == 1 && s[i] == '+')
			out_byte(o, '*');
		else if (filter && n == 1 && s[i] == '#')
			out_byte(o, '>');
		else
			out_level(o, s + i, n);
		i += n;
		if (i == len || o->over)
			break;
		i++; /* the '/' */
	}
}

long cluster_subject_of_topic(const struct cluster_prefix *p, const uint8_t *topic, size_t len,
                              char *buf, size_t cap)
{
	struct out o;

	if (!st_topic_name_is_valid(topic, len))
		return CLUSTER_MAP_INVALID;
	if (first_level_is_sys(topic, len))
		return CLUSTER_MAP_LOCAL;
	out_init(&o, buf, cap);
	out_levels(&o, p, topic, len, false);
	return out_finish(&o, buf);
}

long cluster_subjects_of_filter(const struct cluster_prefix *p, const uint8_t *filter, size_t len,
                                char *buf, size_t cap, size_t *parent_len)
{
	struct out o;
	long n;

	*parent_len = 0;
	if (!st_topic_filter_is_valid(filter, len))
		return CLUSTER_MAP_INVALID;
	if (first_level_is_sys(filter, len))
		return CLUSTER_MAP_LOCAL;
	out_init(&o, buf, cap);
	out_levels(&o, p, filter, len, true);
	n = out_finish(&o, buf);
	/* "x/#": the parent level "x" is the same subject without ".>". */
	if (n > 0 && len >= 2 && filter[len - 1] == '#')
		*parent_len = (size_t)n - 2;
	return n;
}

static int hex_value(char c)
{
	/* Upper case only: one spelling per byte keeps the reverse mapping injective. */
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes one token s[0..n) (n > 0) into levels at *w, bounded by end. Returns false if the
 * token is not canonical or does not fit (*too_long then).
 */
static bool decode_token(const char *s, size_t n, uint8_t **w, uint8_t *end, bool *too_long)
{
	if (n == 1 && s[0] == ESC)
		return true; /* the empty level */
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c == ESC) {
			int hi, lo;

			if (n - i < 3)
				return false;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (uint8_t)(hi << 4 | lo);
			/* An escape that need not be, or a '/' that would split the level
			 * (two subjects would then give one topic). */
			if (literal[c] || c == '/')
				return false;
			i += 2;
		} else if (!literal[c]) {
			return false;
		}
		if (*w == end) {
			*too_long = true;
			return false;
		}
		*(*w)++ = c;
	}
	return true;
}

long cluster_topic_of_subject(const struct cluster_prefix *p, const char *subject, size_t len,
                              uint8_t *buf, size_t cap)
{
	uint8_t *w = buf, *end = buf + cap;
	bool too_long = false;
	size_t i;
	char kind;

	if (len > CLUSTER_SUBJECT_MAX || len < (size_t)p->len + 3 ||
	    memcmp(subject, p->str, p->len) != 0)
		return CLUSTER_MAP_INVALID;
	kind = subject[p->len];
	if ((kind != 'm' && kind != 'd') || subject[p->len + 1] != '.')
		return CLUSTER_MAP_INVALID;
	for (i = p->len + 2;;) {
		const char *t = subject + i;
		const char *dot = memchr(t, '.', len - i);
		size_t n = dot ? (size_t)(dot - t) : len - i;

		if (n == 0 || !decode_token(t, n, &w, end, &too_long))
			return too_long ? CLUSTER_MAP_TOO_LONG : CLUSTER_MAP_INVALID;
		i += n;
		if (i == len)
			break;
		if (w == end)
			return CLUSTER_MAP_TOO_LONG;
		*w++ = '/';
		i++;
	}
	len = (size_t)(w - buf);
	/* The kind must be the one the first level implies: one subject per topic. */
	if ((kind == 'd') != (len > 0 && buf[0] == '$'))
		return CLUSTER_MAP_INVALID;
	if (!st_topic_name_is_valid(buf, len) || first_level_is_sys(buf, len) ||
	    st_utf8_check(buf, len) != 0)
		return CLUSTER_MAP_INVALID;
	return (long)len;
}

long cluster_subjects_of_share(const struct cluster_prefix *p, const uint8_t *share, size_t len,
                               char *queue, size_t queue_cap, size_t *queue_len, char *buf,
                               size_t cap, size_t *parent_len)
{
	static const char tag[] = "$share/";
	const size_t tag_len = sizeof(tag) - 1;
	const uint8_t *group, *filter;
	size_t group_len;
	struct out o;
	long n, q;

	*queue_len = 0;
	*parent_len = 0;
	if (len <= tag_len || memcmp(share, tag, tag_len) != 0)
		return CLUSTER_MAP_INVALID;
	group = share + tag_len;
	group_len = st_topic_level_len(group, len - tag_len);
	/* [MQTT-4.8.2-1], [MQTT-4.8.2-2]: a non-empty share name without wildcards, then '/'. */
	if (group_len == 0 || group_len == len - tag_len ||
	    st_topic_filter_has_wildcard(group, group_len))
		return CLUSTER_MAP_INVALID;
	filter = group + group_len + 1;
	n = cluster_subjects_of_filter(p, filter, len - tag_len - group_len - 1, buf, cap,
	                               parent_len);
	if (n < 0)
		return n;
	out_init(&o, queue, queue_cap);
	out_level(&o, group, group_len);
	out_byte(&o, '.');
	out_bytes(&o, buf + p->len, (size_t)n - p->len);
	q = out_finish(&o, queue);
	if (q < 0) {
		*parent_len = 0;
		return q;
	}
	*queue_len = (size_t)q;
	return n;
}
