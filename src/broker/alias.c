/*
 * Topic alias tables (see alias.h). Both are bounded by a negotiated maximum; both free
 * everything with the connection.
 */
#include "alias.h"

#include <stdlib.h>
#include <string.h>

struct alias_entry {
	uint16_t alias;  /* 1..max */
	uint16_t len;    /* topic bytes */
	uint8_t topic[]; /* the topic */
};

int alias_in_set(struct alias_in *a, uint16_t alias, struct st_bytes topic)
{
	uint8_t *copy;

	if (alias == 0 || alias > a->max)
		return ST_ERR_TOPIC_ALIAS;
	if (!a->topics) {
		a->topics = calloc(a->max, sizeof(*a->topics));
		a->lens = calloc(a->max, sizeof(*a->lens));
		if (!a->topics || !a->lens) {
			alias_in_free(a);
			return ST_ERR_NOMEM;
		}
	}
	copy = malloc(topic.len ? topic.len : 1);
	if (!copy)
		return ST_ERR_NOMEM;
	memcpy(copy, topic.ptr, topic.len);
	free(a->topics[alias - 1]);
	a->topics[alias - 1] = copy;
	a->lens[alias - 1] = (uint16_t)topic.len;
	return ST_OK;
}

int alias_in_get(const struct alias_in *a, uint16_t alias, struct st_bytes *topic)
{
	if (alias == 0 || alias > a->max)
		return ST_ERR_TOPIC_ALIAS;
	if (!a->topics || !a->topics[alias - 1])
		return ST_ERR_PROTOCOL; /* [MQTT-3.3.4-?]: an alias never set is a protocol error */
	topic->ptr = a->topics[alias - 1];
	topic->len = a->lens[alias - 1];
	return ST_OK;
}

void alias_in_free(struct alias_in *a)
{
	if (a->topics)
		for (uint32_t i = 0; i < a->max; i++)
			free(a->topics[i]);
	free(a->topics);
	free(a->lens);
	a->topics = NULL;
	a->lens = NULL;
}

static bool alias_eq(const void *val, const void *key)
{
	const struct alias_entry *e = val;
	const struct st_bytes *t = key;

	return e->len == t->len && memcmp(e->topic, t->ptr, t->len) == 0;
}

uint16_t alias_out_get(struct alias_out *a, struct st_bytes topic, uint64_t hash, bool *fresh)
{
	uint16_t alias = alias_out_peek(a, topic, hash, fresh);
	struct alias_entry *e;

	if (!*fresh)
		return alias;
	*fresh = false;
	e = malloc(sizeof(*e) + topic.len);
	if (!e)
		return 0;
	e->alias = alias;
	e->len = (uint16_t)topic.len;
	memcpy(e->topic, topic.ptr, topic.len);
	if (hmap_insert(&a->map, hash, e) != ST_OK) {
		free(e);
		return 0;
	}
	a->used++;
	*fresh = true;
	return e->alias;
}

uint16_t alias_out_peek(const struct alias_out *a, struct st_bytes topic, uint64_t hash,
                        bool *fresh)
{
	const struct alias_entry *e;

	*fresh = false;
	if (a->max == 0)
		return 0;
	e = hmap_find(&a->map, hash, alias_eq, &topic);
	if (e)
		return e->alias;
	if (a->used >= a->max)
		return 0;
	*fresh = true;
	return (uint16_t)(a->used + 1);
}

void alias_out_free(struct alias_out *a)
{
	for (size_t i = hmap_next(&a->map, 0); i < hmap_cap(&a->map); i = hmap_next(&a->map, i + 1))
		free(a->map.slots[i].val);
	hmap_fini(&a->map);
	a->used = 0;
}
