/*
 * Scenario plans (plan.h). The topic trees:
 *   fanout    bench/fanout/<t>          subscriber s holds bench/fanout/<s mod T>
 *   fanin     bench/fanin/<p>           every subscriber holds bench/fanin/+
 *   pairs     bench/pairs/<i>           subscriber i holds bench/pairs/<i>
 *   wildcard  bench/w/<a>/<b>/<c>, levels 0..999. Filter g belongs to subscriber g mod S and
 *             has shape g mod 10: 0-5 exact, 6 +/b/c, 7 a/+/c, 8 a/b/+, 9 a/b/#, its numbers
 *             drawn from a bijection of g so that all filters are distinct strings. Publisher p
 *             cycles over T topics, each built from one filter (wildcards filled in) so that it
 *             matches at least one subscriber; a topic that some subscriber matches twice is
 *             replaced by the next candidate.
 */
#include "plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fidx.h"

#define WILD_LEVEL_VALUES 1000u /* values per level of the wildcard tree */
#define WILD_ATTEMPTS_MAX 64u   /* candidates tried per wildcard topic */
#define NAME_MAX_BYTES    64u   /* longest topic or filter the plans generate */

const char *bench_plan_filter(const struct bench_plan *plan, uint32_t i, size_t *len)
{
	const char *s = plan->filter_text + plan->filter_off[i];
	*len = strlen(s);
	return s;
}

static const char *filter_text_cb(const void *ctx, uint32_t filter, size_t *len)
{
	return bench_plan_filter(ctx, filter, len);
}

static int add_filter(struct bench_plan *plan, const char *text)
{
	size_t len = strlen(text) + 1;
	if (plan->filter_count == plan->filter_cap)
		return -ENOMEM; /* sized in advance: a bug, reported as such */
	if (plan->filter_text_len + len > plan->filter_text_cap) {
		size_t cap = plan->filter_text_cap ? plan->filter_text_cap * 2 : 4096;
		char *p = realloc(plan->filter_text, cap);
		if (p == NULL)
			return -ENOMEM;
		plan->filter_text = p;
		plan->filter_text_cap = cap;
	}
	memcpy(plan->filter_text + plan->filter_text_len, text, len);
	plan->filter_off[plan->filter_count++] = (uint32_t)plan->filter_text_len;
	plan->filter_text_len += len;
	return 0;
}

static int set_topic(struct bench_plan *plan, uint32_t i, const char *name)
{
	free(plan->topics[i].name);
	plan->topics[i].name = strdup(name);
	if (plan->topics[i].name == NULL)
		return -ENOMEM;
	plan->topics[i].len = (uint16_t)strlen(name);
	return 0;
}

static int alloc_plan(struct bench_plan *plan, const struct bench_opts *o, uint32_t topics,
                      uint32_t filters)
{
	plan->pub_ids = o->ext_publishers + plan->pubs;
	plan->topic_count = topics;
	plan->filter_cap = filters;
	plan->pub = calloc(plan->pubs ? plan->pubs : 1, sizeof(*plan->pub));
	plan->sub = calloc(plan->subs ? plan->subs : 1, sizeof(*plan->sub));
	plan->topics = calloc(topics ? topics : 1, sizeof(*plan->topics));
	plan->filter_off = calloc(filters ? filters : 1, sizeof(*plan->filter_off));
	if (!plan->pub || !plan->sub || !plan->topics || !plan->filter_off)
		return -ENOMEM;
	for (uint32_t p = 0; p < plan->pubs; p++)
		plan->pub[p].pub_id = o->ext_publishers + p;
	return 0;
}

/* Fanout, fanin and pairs: one or a few topics, one filter per subscriber. */
static int build_simple(struct bench_plan *plan, const struct bench_opts *o)
{
	char name[NAME_MAX_BYTES];
	uint32_t topics = o->scenario == BENCH_FANOUT ? o->topics : plan->pubs;
	int rc = alloc_plan(plan, o, topics, plan->subs);
	if (rc != 0)
		return rc;
	const char *base = o->scenario == BENCH_FANOUT  ? "bench/fanout"
	                   : o->scenario == BENCH_FANIN ? "bench/fanin"
	                                                : "bench/pairs";
	for (uint32_t t = 0; t < topics; t++) {
		snprintf(name, sizeof(name), "%s/%u", base, t);
		if ((rc = set_topic(plan, t, name)) != 0)
			return rc;
	}
	for (uint32_t p = 0; p < plan->pubs; p++) {
		plan->pub[p].first_topic = o->scenario == BENCH_FANOUT ? p % topics : p;
		plan->pub[p].topic_count = 1;
	}
	for (uint32_t s = 0; s < plan->subs; s++) {
		if (o->scenario == BENCH_FANIN)
			snprintf(name, sizeof(name), "%s/+", base);
		else
			snprintf(name, sizeof(name), "%s/%u", base,
			         o->scenario == BENCH_FANOUT ? s % topics : s);
		plan->sub[s].first_filter = plan->filter_count;
		plan->sub[s].filter_count = 1;
		if ((rc = add_filter(plan, name)) != 0)
			return rc;
	}
	return 0;
}

/* The shape of wildcard filter g and its numbers (see the top of the file). */
struct wild_filter {
	uint32_t shape; /* g mod 10 */
	uint32_t a;     /* first level value (unused for shape 6) */
	uint32_t b;     /* second level value (unused for shape 7) */
	uint32_t c;     /* third level value (unused for shapes 8 and 9) */
};

static struct wild_filter wild_decode(uint32_t g)
{
	const uint64_t v = WILD_LEVEL_VALUES;
	struct wild_filter f = {.shape = g % 10u};
	uint64_t j = g / 10u;
	if (f.shape < 6) {
		/* 6 exact filters per 10: index j * 6 + shape, spread by a multiplier prime to 10.
		 */
		uint64_t x = ((j * 6u + f.shape) * 999983u + 12345u) % (v * v * v);
		f.a = (uint32_t)(x / (v * v));
		f.b = (uint32_t)(x / v % v);
		f.c = (uint32_t)(x % v);
		return f;
	}
	uint64_t y = (j * 7919u + 17u * f.shape) % (v * v);
	uint32_t hi = (uint32_t)(y / v), lo = (uint32_t)(y % v);
	switch (f.shape) {
	case 6:
		f.b = hi;
		f.c = lo;
		break;
	case 7:
		f.a = hi;
		f.c = lo;
		break;
	default:
		f.a = hi;
		f.b = lo;
		break; /* 8: a/b/+, 9: a/b/# */
	}
	return f;
}

static void wild_filter_text(uint32_t g, char *out, size_t cap)
{
	struct wild_filter f = wild_decode(g);
	switch (f.shape) {
	case 6:
		snprintf(out, cap, "bench/w/+/%u/%u", f.b, f.c);
		break;
	case 7:
		snprintf(out, cap, "bench/w/%u/+/%u", f.a, f.c);
		break;
	case 8:
		snprintf(out, cap, "bench/w/%u/%u/+", f.a, f.b);
		break;
	case 9:
		snprintf(out, cap, "bench/w/%u/%u/#", f.a, f.b);
		break;
	default:
		snprintf(out, cap, "bench/w/%u/%u/%u", f.a, f.b, f.c);
		break;
	}
}

/* A topic matched by filter g, its wildcard levels filled with `fill`. */
static void wild_topic_text(uint32_t g, uint32_t fill, char *out, size_t cap)
{
	struct wild_filter f = wild_decode(g);
	fill %= WILD_LEVEL_VALUES;
	if (f.shape == 6)
		f.a = fill;
	else if (f.shape == 7)
		f.b = fill;
	else if (f.shape >= 8)
		f.c = fill;
	snprintf(out, cap, "bench/w/%u/%u/%u", f.a, f.b, f.c);
}

static int index_filters(struct bench_plan *plan, struct bench_fidx *ix)
{
	int rc = bench_fidx_init(ix, plan->filter_count, plan->subs);
	if (rc != 0)
		return rc;
	for (uint32_t s = 0; s < plan->subs; s++) {
		const struct bench_plan_sub *sub = &plan->sub[s];
		for (uint32_t i = sub->first_filter; i < sub->first_filter + sub->filter_count;
		     i++) {
			size_t len;
			const char *f = bench_plan_filter(plan, i, &len);
			bench_fidx_add(ix, f, len, s, i);
		}
	}
	return 0;
}

/* Computes each topic's fan; a subscriber matching one topic twice is a plan error. */
static int compute_fans(struct bench_plan *plan, struct bench_fidx *ix, char *err, size_t err_len)
{
	for (uint32_t t = 0; t < plan->topic_count; t++) {
		struct bench_fidx_result res;
		int rc = bench_fidx_match(ix, plan->topics[t].name, filter_text_cb, plan, &res,
		                          NULL);
		if (rc != 0 || res.filters != res.subscribers) {
			snprintf(err, err_len, "topic %s: %s", plan->topics[t].name,
			         rc != 0 ? strerror(-rc)
			                 : "a subscriber holds two matching filters");
			return rc != 0 ? rc : -EINVAL;
		}
		/* One group per filter string, and here each topic matches one filter string. */
		plan->topics[t].members = res.subscribers;
		plan->topics[t].fan = plan->shared ? res.subscribers > 0 : res.subscribers;
	}
	return 0;
}

static int build_wildcard(struct bench_plan *plan, const struct bench_opts *o,
                          struct bench_fidx *ix, char *err, size_t err_len)
{
	char text[NAME_MAX_BYTES];
	uint32_t n = o->subscriptions, per_pub = o->topics;
	uint64_t topics = (uint64_t)plan->pubs * per_pub;
	if (topics > 10000000u)
		return -E2BIG;
	int rc = alloc_plan(plan, o, (uint32_t)topics, n);
	for (uint32_t s = 0; rc == 0 && s < plan->subs; s++) {
		plan->sub[s].first_filter = plan->filter_count;
		for (uint32_t g = s; rc == 0 && g < n; g += plan->subs) {
			wild_filter_text(g, text, sizeof(text));
			rc = add_filter(plan, text);
		}
		plan->sub[s].filter_count = plan->filter_count - plan->sub[s].first_filter;
	}
	if (rc != 0 || (rc = index_filters(plan, ix)) != 0)
		return rc;
	for (uint32_t idx = 0; idx < topics; idx++) {
		uint64_t base = (uint64_t)idx * n / topics;
		uint32_t attempt = 0;
		for (; attempt < WILD_ATTEMPTS_MAX; attempt++) {
			struct bench_fidx_result res;
			uint32_t g = (uint32_t)((base + (uint64_t)attempt * 7919u) % n);
			wild_topic_text(g, idx * 31u + attempt, text, sizeof(text));
			if ((rc = bench_fidx_match(ix, text, filter_text_cb, plan, &res, NULL)) !=
			    0)
				return rc;
			if (res.subscribers > 0 && res.subscribers == res.filters) {
				plan->topics[idx].fan = plan->topics[idx].members = res.subscribers;
				break;
			}
		}
		if (attempt == WILD_ATTEMPTS_MAX) {
			snprintf(err, err_len, "no unambiguous wildcard topic near filter %lu",
			         (unsigned long)base);
			return -EINVAL;
		}
		if ((rc = set_topic(plan, idx, text)) != 0)
			return rc;
	}
	for (uint32_t p = 0; p < plan->pubs; p++) {
		plan->pub[p].first_topic = p * per_pub;
		plan->pub[p].topic_count = per_pub;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Stores each topic's matching subscribers, sorted, in topic_subs (see plan.h). */
static int compute_topic_subs(struct bench_plan *plan, struct bench_fidx *ix)
{
	uint64_t total = 0;
	for (uint32_t t = 0; t < plan->topic_count; t++)
		total += plan->topics[t].members;
	if (total > (256u << 20))
		return -E2BIG;
	plan->topic_sub_off = calloc((size_t)plan->topic_count + 1, sizeof(uint32_t));
	plan->topic_subs = calloc(total ? total : 1, sizeof(uint32_t));
	if (plan->topic_sub_off == NULL || plan->topic_subs == NULL)
		return -ENOMEM;
	uint32_t off = 0;
	for (uint32_t t = 0; t < plan->topic_count; t++) {
		struct bench_fidx_result res;
		uint32_t *subs = plan->topic_subs + off;
		int rc = bench_fidx_match(ix, plan->topics[t].name, filter_text_cb, plan, &res,
		                          subs);
		if (rc != 0)
			return rc;
		qsort(subs, res.subscribers, sizeof(*subs), cmp_u32);
		plan->topic_sub_off[t] = off;
		off += res.subscribers;
	}
	plan->topic_sub_off[plan->topic_count] = off;
	return 0;
}

/*
 * For flow control: each publisher's largest fan, and per subscriber how many publishers
 * feed it (hold a topic it matches), with the maximum over subscribers.
 */
static int compute_feeders(struct bench_plan *plan)
{
	uint32_t *last = calloc(plan->subs ? plan->subs : 1, sizeof(*last));
	plan->feeders = calloc(plan->subs ? plan->subs : 1, sizeof(*plan->feeders));
	if (last == NULL || plan->feeders == NULL) {
		free(last);
		return -ENOMEM;
	}
	for (uint32_t p = 0; p < plan->pubs; p++) {
		struct bench_plan_pub *pp = &plan->pub[p];
		for (uint32_t t = pp->first_topic; t < pp->first_topic + pp->topic_count; t++) {
			uint32_t first = plan->topic_sub_off[t], end = plan->topic_sub_off[t + 1];
			if (plan->topics[t].fan > pp->fan_max)
				pp->fan_max = plan->topics[t].fan;
			for (uint32_t i = first; i < end; i++) {
				uint32_t s = plan->topic_subs[i];
				if (last[s] == p + 1)
					continue;
				last[s] = p + 1;
				if (++plan->feeders[s] > plan->feeders_max)
					plan->feeders_max = plan->feeders[s];
			}
		}
	}
	free(last);
	return 0;
}

bool bench_plan_topic_has_sub(const struct bench_plan *plan, uint32_t topic, uint32_t sub)
{
	const uint32_t *lo = plan->topic_subs + plan->topic_sub_off[topic];
	const uint32_t *hi = plan->topic_subs + plan->topic_sub_off[topic + 1];
	while (lo < hi) {
		const uint32_t *mid = lo + (hi - lo) / 2;
		if (*mid == sub)
			return true;
		if (*mid < sub)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int bench_plan_build(struct bench_plan *plan, const struct bench_opts *o, char *err, size_t err_len)
{
	struct bench_fidx ix = {0};
	int rc;

	memset(plan, 0, sizeof(*plan));
	snprintf(err, err_len, "out of memory");
	if (o->scenario == BENCH_CONNECTIONS) {
		plan->idle = o->clients;
		return alloc_plan(plan, o, 0, 0);
	}
	plan->pubs = o->publishers;
	plan->subs = o->subscribers;
	plan->shared = o->share != NULL;
	if ((uint64_t)plan->subs * (o->ext_publishers + plan->pubs) > (64u << 20)) {
		snprintf(err, err_len, "%u subscribers x %u publishers: too many pairs to track",
		         plan->subs, o->ext_publishers + plan->pubs);
		return -E2BIG;
	}
	if (o->scenario == BENCH_WILDCARD) {
		rc = build_wildcard(plan, o, &ix, err, err_len);
	} else {
		rc = build_simple(plan, o);
		if (rc == 0)
			rc = index_filters(plan, &ix);
		if (rc == 0)
			rc = compute_fans(plan, &ix, err, err_len);
	}
	if (rc == 0)
		rc = compute_topic_subs(plan, &ix);
	if (rc == 0)
		rc = compute_feeders(plan);
	bench_fidx_free(&ix);
	return rc;
}

void bench_plan_free(struct bench_plan *plan)
{
	for (uint32_t t = 0; plan->topics && t < plan->topic_count; t++)
		free(plan->topics[t].name);
	free(plan->topics);
	free(plan->pub);
	free(plan->sub);
	free(plan->filter_text);
	free(plan->filter_off);
	free(plan->feeders);
	free(plan->topic_sub_off);
	free(plan->topic_subs);
	memset(plan, 0, sizeof(*plan));
}
