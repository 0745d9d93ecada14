/*
 * Topic names and topic filters (MQTT 3.1.1 section 4.7, MQTT 5 section 4.7): validation,
 * level splitting and matching of one name against one filter. This is the reference
 * matcher; the broker's subscription index (src/index/subidx.c) must agree with it.
 *
 * Strings are (pointer, length) and need not be NUL-terminated. UTF-8 validity is checked
 * separately (starling/utf8.h); these functions look only at '/', '+', '#' and '$'.
 */
#ifndef STARLING_TOPIC_H
#define STARLING_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A topic name to publish on: non-empty, no '+' or '#'. */
bool st_topic_name_is_valid(const uint8_t *name, size_t len);

/*
 * A topic filter: non-empty; '+' only as a whole level; '#' only as the whole last level.
 * A shared subscription ($share/group/filter) is checked by the broker, not here.
 */
bool st_topic_filter_is_valid(const uint8_t *filter, size_t len);

/* True if the filter contains '+' or '#'. */
bool st_topic_filter_has_wildcard(const uint8_t *filter, size_t len);

/*
 * True if topic name `name` matches `filter`. Both must be valid. A name starting with '$'
 * is not matched by a filter whose first level is '+' or '#' [MQTT-4.7.2-1].
 */
bool st_topic_matches(const uint8_t *filter, size_t filter_len, const uint8_t *name,
                      size_t name_len);

/*
 * Returns the length of the level starting at s[0..len): the bytes up to the next '/' or the
 * end. Callers step past the '/' themselves.
 */
size_t st_topic_level_len(const uint8_t *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif
