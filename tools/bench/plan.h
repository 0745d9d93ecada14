/*
 * The plan of a run: which clients exist, what each publishes and subscribes to, and how many
 * deliveries each published message should produce. It is computed once from the options
 * before any connection is opened, so the hot path only indexes arrays.
 *
 * Client indexes: subscribers first [0, subs), then publishers [subs, subs + pubs), then idle
 * connections. Publisher ids in payloads are ext_publishers + publisher index, so ids below
 * ext_publishers belong to an outside source. A topic's `fan` is the number of subscribers
 * holding a matching filter; topics are chosen so that no subscriber holds two filters matching
 * the same topic, which makes one delivery per matching subscriber the only correct count
 * whatever a broker does with overlapping subscriptions [MQTT-3.3.4-2, MQTT 5 3.3.4].
 * With --share the subscribers holding one filter form one shared group, which gets each
 * matching message once [MQTT-4.8.2]: fan is then the number of groups, 1 in fanin and fanout,
 * and a member's sequence from a publisher has gaps that are other members' messages.
 */
#ifndef STARLING_BENCH_PLAN_H
#define STARLING_BENCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opts.h"

struct bench_topic {
	char *name;       /* topic name, NUL-terminated, owned by the plan */
	uint16_t len;     /* strlen(name) */
	uint32_t fan;     /* subscribers that should receive each message on it */
	uint32_t members; /* subscribers matching it: fan, or more with --share */
};

struct bench_plan_pub {
	uint32_t pub_id;      /* publisher id carried in payloads */
	uint32_t first_topic; /* first of this publisher's topics in plan->topics */
	uint32_t topic_count; /* topics it cycles through, one message each in turn */
	uint32_t fan_max;     /* largest fan of its topics */
};

struct bench_plan_sub {
	uint32_t first_filter; /* first of its filters in the plan's filter table */
	uint32_t filter_count; /* filters it subscribes to */
};

struct bench_plan {
	uint32_t subs;              /* subscribing clients */
	uint32_t pubs;              /* publishing clients */
	uint32_t idle;              /* idle clients (connections scenario) */
	uint32_t pub_ids;           /* ext_publishers + pubs: size of per-subscriber tracking */
	struct bench_plan_pub *pub; /* pubs entries */
	struct bench_plan_sub *sub; /* subs entries */
	struct bench_topic *topics; /* topic_count entries */
	uint32_t topic_count;       /* topics in use */
	char *filter_text;          /* all filter strings, each NUL-terminated */
	size_t filter_text_len;     /* bytes used in filter_text */
	size_t filter_text_cap;     /* bytes allocated */
	uint32_t *filter_off;       /* offset of each filter in filter_text */
	uint32_t filter_count;      /* filters over all subscribers */
	uint32_t filter_cap;        /* entries allocated in filter_off */
	bool shared;                /* --share: subscribers holding one filter are one group */
	uint32_t *feeders;          /* per subscriber: publishers with a topic it matches */
	uint32_t feeders_max;       /* largest entry of feeders */
	uint32_t *topic_sub_off;    /* topic t's subscribers are topic_subs[off[t]..off[t+1]) */
	uint32_t *topic_subs;       /* subscriber indexes, sorted per topic */
};

/*
 * Builds the plan for the options. Returns 0, or a negative errno with a sentence in err
 * (a scenario too large for memory, or no unambiguous topic found).
 */
int bench_plan_build(struct bench_plan *plan, const struct bench_opts *o, char *err,
                     size_t err_len);
void bench_plan_free(struct bench_plan *plan);

/* True if subscriber `sub` should receive messages published on topic `topic`. */
bool bench_plan_topic_has_sub(const struct bench_plan *plan, uint32_t topic, uint32_t sub);

/* Filter i as a string and its length; borrowed from the plan. */
const char *bench_plan_filter(const struct bench_plan *plan, uint32_t i, size_t *len);

#endif
