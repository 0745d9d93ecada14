/*
 * The bench's filter multimap and its generalising lookup (fidx.h). Entries with the same
 * filter string (500 subscribers of one fan-out topic) share a hash and sit in one probe run;
 * a lookup walks the run until an empty slot, so it costs the number of entries with that
 * filter, which is exactly the number of matches it reports.
 */
#include "fidx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "starling/topic.h"

static uint64_t filter_hash(const char *text, size_t len)
{
	uint64_t h = XXH3_64bits(text, len);
	return h == 0 ? 1 : h; /* 0 marks an empty slot */
}

int bench_fidx_init(struct bench_fidx *ix, uint32_t capacity, uint32_t subscribers)
{
	memset(ix, 0, sizeof(*ix));
	uint32_t slots = 16;
	while (slots < 2u * capacity)
		slots <<= 1;
	ix->slots = calloc(slots, sizeof(*ix->slots));
	ix->stamp = calloc(subscribers ? subscribers : 1, sizeof(*ix->stamp));
	if (ix->slots == NULL || ix->stamp == NULL) {
		bench_fidx_free(ix);
		return -ENOMEM;
	}
	ix->mask = slots - 1;
	ix->subscribers = subscribers;
	return 0;
}

void bench_fidx_free(struct bench_fidx *ix)
{
	free(ix->slots);
	free(ix->stamp);
	memset(ix, 0, sizeof(*ix));
}

void bench_fidx_add(struct bench_fidx *ix, const char *text, size_t len, uint32_t subscriber,
                    uint32_t filter)
{
	uint64_t h = filter_hash(text, len);
	uint32_t i = (uint32_t)h & ix->mask;
	/* Capacity was sized at init to keep the load under one half, so a free slot exists. */
	while (ix->slots[i].hash != 0)
		i = (i + 1) & ix->mask;
	ix->slots[i] =
	        (struct bench_fidx_entry){.hash = h, .subscriber = subscriber, .filter = filter};
	ix->count++;
}

/* State of one lookup: the topic's levels and what has matched so far. */
struct lookup {
	const char *topic;                         /* the topic name */
	const char *level[BENCH_FIDX_LEVELS_MAX];  /* start of each level */
	uint32_t level_len[BENCH_FIDX_LEVELS_MAX]; /* length of each level */
	uint32_t levels;                           /* number of levels */
	bench_fidx_text_fn text;                   /* resolves filter indexes */
	const void *ctx;                           /* for text */
	struct bench_fidx_result res;              /* counts so far */
	uint32_t *subs;                            /* distinct matching subscribers, or NULL */
	int err;                                   /* first error */
};

/* Looks up one candidate filter and counts its entries. */
static void probe(struct bench_fidx *ix, struct lookup *lk, const char *cand, size_t len)
{
	uint64_t h = filter_hash(cand, len);
	for (uint32_t i = (uint32_t)h & ix->mask; ix->slots[i].hash != 0; i = (i + 1) & ix->mask) {
		const struct bench_fidx_entry *e = &ix->slots[i];
		size_t flen = 0;
		if (e->hash != h)
			continue;
		const char *f = lk->text(lk->ctx, e->filter, &flen);
		if (flen != len || memcmp(f, cand, len) != 0)
			continue;
		if (!st_topic_matches((const uint8_t *)f, flen, (const uint8_t *)lk->topic,
		                      strlen(lk->topic)))
			lk->err = -EPROTO;
		lk->res.filters++;
		if (ix->stamp[e->subscriber] != ix->lookup_id) {
			ix->stamp[e->subscriber] = ix->lookup_id;
			if (lk->subs != NULL)
				lk->subs[lk->res.subscribers] = e->subscriber;
			lk->res.subscribers++;
		}
	}
}

/*
 * Builds the filter made of the first `n` levels, level i replaced by '+' when bit i of mask
 * is set, followed by "/#" (or just "#" when n is 0) if `hash` is true.
 */
static size_t build_candidate(const struct lookup *lk, uint32_t n, uint32_t mask, bool hash,
                              char *out)
{
	size_t len = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0)
			out[len++] = '/';
		if (mask & (1u << i)) {
			out[len++] = '+';
		} else {
			memcpy(out + len, lk->level[i], lk->level_len[i]);
			len += lk->level_len[i];
		}
	}
	if (hash) {
		if (n > 0)
			out[len++] = '/';
		out[len++] = '#';
	}
	return len;
}

int bench_fidx_match(struct bench_fidx *ix, const char *topic, bench_fidx_text_fn text,
                     const void *ctx, struct bench_fidx_result *res, uint32_t *subs)
{
	struct lookup lk = {.topic = topic, .text = text, .ctx = ctx, .subs = subs};
	size_t tlen = strlen(topic);
	const char *p = topic;
	for (;;) {
		if (lk.levels == BENCH_FIDX_LEVELS_MAX)
			return -E2BIG;
		const char *slash = memchr(p, '/', tlen - (size_t)(p - topic));
		lk.level[lk.levels] = p;
		lk.level_len[lk.levels] = (uint32_t)(slash ? slash - p : topic + tlen - p);
		lk.levels++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	ix->lookup_id++;
	/* Room for every level, a separator each, and the trailing "/#". */
	char *cand = malloc(tlen + 2u * BENCH_FIDX_LEVELS_MAX + 3u);
	if (cand == NULL)
		return -ENOMEM;
	for (uint32_t mask = 0; mask < (1u << lk.levels); mask++)
		probe(ix, &lk, cand, build_candidate(&lk, lk.levels, mask, false, cand));
	/* '#' also matches its parent level [MQTT-4.7.1-2], hence prefixes up to all levels. */
	for (uint32_t n = 0; n <= lk.levels; n++)
		for (uint32_t mask = 0; mask < (1u << n); mask++)
			probe(ix, &lk, cand, build_candidate(&lk, n, mask, true, cand));
	free(cand);
	*res = lk.res;
	return lk.err;
}
