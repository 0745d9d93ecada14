/*
 * `starling-bench selftest`: checks the bench's own bookkeeping against plain reference models,
 * since a load generator that miscounts would make every figure it reports wrong. The
 * integration smoke test (test/integration/test_bench_smoke.py) runs it.
 *
 *   histogram  every value lands in a bucket whose top is at most 1/128 above it, buckets grow
 *              with values, and quantiles of a known distribution come out within that error;
 *   sequences  a scripted arrival order gets the expected in-order / duplicate / late verdicts;
 *   filters    the generalising filter index agrees with a linear scan using st_topic_matches
 *              (the reference matcher) on random filters and topics, wildcards included;
 *   plans      every wildcard-plan topic's fan and subscriber list equal a brute-force count,
 *              and no subscriber matches a topic twice;
 *   flow       a publisher thread and four subscriber threads run flow control (flow.c) over
 *              a ring far smaller than the run, one subscriber missing some messages: every
 *              message must end settled, each miss counted once as a gap, none presumed
 *              lost, the window never exceeded (run under ThreadSanitizer too).
 * Deterministic (fixed seeds) but for the threads' interleaving, which the checks do not
 * depend on; prints one line per failure and exits non-zero if any.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "fidx.h"
#include "hist.h"
#include "plan.h"
#include "selftest.h"
#include "seq.h"
#include "starling/topic.h"

/* Counts of a self-test run. */
struct check {
	uint64_t passed; /* checks that held */
	uint64_t failed; /* checks that did not (each printed) */
};

#define CHECK(ck, cond, ...)                                                                       \
	do {                                                                                       \
		if (cond) {                                                                        \
			(ck)->passed++;                                                            \
		} else {                                                                           \
			(ck)->failed++;                                                            \
			fprintf(stderr, "selftest: %s:%d: ", __FILE__, __LINE__);                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* xorshift64*: a small deterministic generator for test inputs. */
static uint64_t next_rand(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ull;
}

static void test_hist_buckets(struct check *ck)
{
	uint64_t rng = 42;
	uint32_t prev_bucket = 0;
	for (uint64_t v = 0; v < 5000; v++) {
		uint32_t b = bench_hist_bucket(v);
		CHECK(ck, b >= prev_bucket && bench_hist_bucket_top_ns(b) >= v,
		      "value %" PRIu64 ": bucket %u after %u, top %" PRIu64, v, b, prev_bucket,
		      bench_hist_bucket_top_ns(b));
		prev_bucket = b;
	}
	for (int i = 0; i < 100000; i++) {
		uint64_t v = next_rand(&rng) >> (24 + next_rand(&rng) % 40);
		uint32_t b = bench_hist_bucket(v);
		uint64_t top = bench_hist_bucket_top_ns(b);
		CHECK(ck, b < BENCH_HIST_BUCKETS && top >= v && top - v <= v / 128,
		      "value %" PRIu64 ": bucket %u top %" PRIu64, v, b, top);
	}
}

static void test_hist_quantiles(struct check *ck)
{
	static struct bench_hist h; /* 35 KiB: not on the stack */
	static const double q[] = {0.5, 0.9, 0.99, 0.999};
	bench_hist_init(&h);
	for (uint64_t v = 1; v <= 1000000; v++)
		bench_hist_record(&h, v * 10); /* 10 ns .. 10 ms, uniform */
	for (unsigned i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		double want = q[i] * 1e7, got = (double)bench_hist_quantile_ns(&h, q[i]);
		CHECK(ck, got >= want && got <= want * (1.0 + 1.0 / 128) + 10,
		      "quantile %.3f: %.0f, want %.0f", q[i], got, want);
	}
	CHECK(ck, h.max_ns == 10000000 && h.min_ns == 10 && h.total == 1000000,
	      "max %" PRIu64 " min %" PRIu64, h.max_ns, h.min_ns);
	CHECK(ck, bench_hist_quantile_ns(&h, 1.0) == h.max_ns, "q=1 is not the maximum");
}

static void test_seq(struct check *ck)
{
	static const struct {
		uint32_t seq;                   /* arriving sequence */
		enum bench_seq_verdict verdict; /* expected verdict */
	} script[] = {
	        {0, BENCH_SEQ_IN_ORDER},   {1, BENCH_SEQ_IN_ORDER},   {2, BENCH_SEQ_IN_ORDER},
	        {2, BENCH_SEQ_DUPLICATE},  {5, BENCH_SEQ_IN_ORDER},   {3, BENCH_SEQ_LATE},
	        {3, BENCH_SEQ_DUPLICATE},  {4, BENCH_SEQ_LATE},       {1, BENCH_SEQ_DUPLICATE},
	        {100, BENCH_SEQ_IN_ORDER}, {37, BENCH_SEQ_LATE},      {99, BENCH_SEQ_LATE},
	        {99, BENCH_SEQ_DUPLICATE}, {101, BENCH_SEQ_IN_ORDER},
	};
	struct bench_seq s = {0};
	for (unsigned i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		enum bench_seq_verdict v = bench_seq_record(&s, script[i].seq);
		CHECK(ck, v == script[i].verdict, "step %u (seq %u): verdict %d, want %d", i,
		      script[i].seq, v, script[i].verdict);
	}
}

/* Random filters over a small alphabet, so that wildcards overlap often. */
struct filter_set {
	char text[400][24];  /* filters */
	uint32_t owner[400]; /* subscriber of each filter */
	uint32_t count;      /* filters in use */
};

static void random_name(uint64_t *rng, char *out, size_t cap, bool filter)
{
	static const char *const words[] = {"a", "b", "c", ""};
	uint32_t levels = 1 + next_rand(rng) % 4;
	size_t len = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < levels && len + 3 < cap; i++) {
		uint64_t r = next_rand(rng) % 10;
		const char *w = words[next_rand(rng) % 4];
		if (filter && r == 0)
			w = "+";
		if (filter && r == 1) {
			len += (size_t)snprintf(out + len, cap - len, "%s#", i ? "/" : "");
			return;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "/" : "", w);
	}
}

static const char *set_text(const void *ctx, uint32_t filter, size_t *len)
{
	const struct filter_set *fs = ctx;
	*len = strlen(fs->text[filter]);
	return fs->text[filter];
}

static void test_fidx(struct check *ck)
{
	static struct filter_set fs;
	enum { SUBS = 13, TOPICS = 3000 };
	uint64_t rng = 7;
	struct bench_fidx ix;
	fs.count = 400;
	if (bench_fidx_init(&ix, fs.count, SUBS) != 0) {
		CHECK(ck, false, "bench_fidx_init failed");
		return;
	}
	for (uint32_t i = 0; i < fs.count; i++) {
		random_name(&rng, fs.text[i], sizeof(fs.text[i]), true);
		fs.owner[i] = (uint32_t)(next_rand(&rng) % SUBS);
		bench_fidx_add(&ix, fs.text[i], strlen(fs.text[i]), fs.owner[i], i);
	}
	for (int t = 0; t < TOPICS; t++) {
		char topic[24];
		bool seen[SUBS] = {false};
		uint32_t want_filters = 0, want_subs = 0, subs[SUBS];
		struct bench_fidx_result res;
		random_name(&rng, topic, sizeof(topic), false);
		for (uint32_t i = 0; i < fs.count; i++) {
			if (!st_topic_matches((const uint8_t *)fs.text[i], strlen(fs.text[i]),
			                      (const uint8_t *)topic, strlen(topic)))
				continue;
			want_filters++;
			want_subs += !seen[fs.owner[i]];
			seen[fs.owner[i]] = true;
		}
		int rc = bench_fidx_match(&ix, topic, set_text, &fs, &res, subs);
		CHECK(ck, rc == 0 && res.filters == want_filters && res.subscribers == want_subs,
		      "topic '%s': rc %d, %u filters %u subscribers, want %u and %u", topic, rc,
		      res.filters, res.subscribers, want_filters, want_subs);
		for (uint32_t i = 0; rc == 0 && i < res.subscribers && i < SUBS; i++)
			CHECK(ck, subs[i] < SUBS && seen[subs[i]],
			      "topic '%s': subscriber %u listed", topic, subs[i]);
	}
	bench_fidx_free(&ix);
}

/* Checks one topic of a plan against a scan of every filter. */
static void check_plan_topic(struct check *ck, const struct bench_plan *plan, uint32_t t,
                             uint32_t *hits)
{
	const struct bench_topic *topic = &plan->topics[t];
	uint32_t fan = 0, twice = 0;
	memset(hits, 0, plan->subs * sizeof(*hits));
	for (uint32_t s = 0; s < plan->subs; s++) {
		const struct bench_plan_sub *sub = &plan->sub[s];
		for (uint32_t i = sub->first_filter; i < sub->first_filter + sub->filter_count;
		     i++) {
			size_t len;
			const char *f = bench_plan_filter(plan, i, &len);
			hits[s] += st_topic_matches((const uint8_t *)f, len,
			                            (const uint8_t *)topic->name, topic->len);
		}
		fan += hits[s] > 0;
		twice += hits[s] > 1;
		CHECK(ck, (hits[s] > 0) == bench_plan_topic_has_sub(plan, t, s),
		      "topic %s: subscriber %u matches %u filters but has_sub says %d", topic->name,
		      s, hits[s], bench_plan_topic_has_sub(plan, t, s));
	}
	CHECK(ck, fan == topic->fan && twice == 0 && fan > 0,
	      "topic %s: fan %u, planned %u, %u subscribers match twice", topic->name, fan,
	      topic->fan, twice);
}

static void test_plan(struct check *ck)
{
	struct bench_opts o;
	struct bench_plan plan;
	char err[256];
	memset(&o, 0, sizeof(o));
	o.scenario = BENCH_WILDCARD;
	o.publishers = 3;
	o.subscribers = 17;
	o.subscriptions = 5000;
	o.topics = 10;
	int rc = bench_plan_build(&plan, &o, err, sizeof(err));
	CHECK(ck, rc == 0, "wildcard plan: %s", err);
	if (rc != 0)
		return;
	CHECK(ck, plan.filter_count == 5000 && plan.topic_count == 30, "%u filters, %u topics",
	      plan.filter_count, plan.topic_count);
	uint32_t *hits = calloc(plan.subs, sizeof(*hits));
	for (uint32_t t = 0; hits != NULL && t < plan.topic_count; t++)
		check_plan_topic(ck, &plan, t, hits);
	free(hits);
	bench_plan_free(&plan);
}

/* --share: every topic goes to one group, whatever the number of its members. */
static void test_plan_shared(struct check *ck)
{
	static const enum bench_scenario scenarios[] = {BENCH_FANIN, BENCH_FANOUT};
	for (unsigned k = 0; k < 2; k++) {
		struct bench_opts o;
		struct bench_plan plan;
		char err[256];
		memset(&o, 0, sizeof(o));
		o.scenario = scenarios[k];
		o.publishers = scenarios[k] == BENCH_FANIN ? 50 : 3;
		o.subscribers = 7;
		o.topics = 3;
		o.share = "collectors";
		int rc = bench_plan_build(&plan, &o, err, sizeof(err));
		CHECK(ck, rc == 0, "shared plan: %s", err);
		if (rc != 0)
			continue;
		CHECK(ck, plan.shared, "shared plan not marked shared");
		for (uint32_t t = 0; t < plan.topic_count; t++) {
			uint32_t members = 0;
			for (uint32_t sub = 0; sub < plan.subs; sub++)
				members += bench_plan_topic_has_sub(&plan, t, sub);
			CHECK(ck, plan.topics[t].fan == 1 && members > 0,
			      "shared topic %s: fan %u, %u members", plan.topics[t].name,
			      plan.topics[t].fan, members);
		}
		for (uint32_t p = 0; p < plan.pubs; p++)
			CHECK(ck, plan.pub[p].fan_max == 1, "shared publisher %u: fan_max %u", p,
			      plan.pub[p].fan_max);
		bench_plan_free(&plan);
	}
}

enum {
	FLOW_SUBS = 4,          /* subscriber threads */
	FLOW_MESSAGES = 20000,  /* messages published */
	FLOW_MISS_EVERY = 13,   /* subscriber 0 misses messages with seq % this == 0 ... */
	FLOW_OUTSTANDING = 100, /* ... and the window is 100 / fan 2 = 50 messages */
	FLOW_STUCK_S = 10,      /* a publisher without room this long: a bug, not a wait */
};

/* The flow test's world: the plan, the publisher, and a stand-in for the broker. */
struct flow_world {
	struct bench_shared sh;         /* opts, plan, the one publisher */
	struct bench *t[1 + FLOW_SUBS]; /* the publisher's thread, then each subscriber's */
	_Atomic uint32_t published;     /* messages handed to "the broker": seq < published */
	_Atomic bool stuck;             /* the publisher gave up: subscribers stop waiting */
	uint32_t over_window;           /* times the publisher had more than window outstanding */
};

/* Subscriber s of fanout with 2 topics gets seq with seq % 2 == s % 2; 0 misses some. */
static bool flow_misses(uint32_t s, uint32_t seq)
{
	return s == 0 && seq % FLOW_MISS_EVERY == 0 && seq + 2 < FLOW_MESSAGES;
}

static void *flow_subscriber(void *arg)
{
	struct bench *b = arg;
	struct flow_world *w = (struct flow_world *)b->sh;
	uint32_t s = b->id - 1;
	struct bench_seq sq = {0};
	for (uint32_t seq = s % 2; seq < FLOW_MESSAGES; seq += 2) {
		while (atomic_load_explicit(&w->published, memory_order_acquire) <= seq) {
			if (atomic_load(&w->stuck))
				return NULL;
			sched_yield();
		}
		if (flow_misses(s, seq))
			continue;
		bool first = sq.window == 0;
		uint32_t prev_high = sq.high;
		enum bench_seq_verdict v = bench_seq_record(&sq, seq);
		bench_flow_received(b, &b->pubs[0], s, seq, v, first, prev_high);
	}
	return NULL;
}

static void flow_publish(struct flow_world *w)
{
	struct bench *b = w->t[0];
	struct bench_pub *pub = &b->pubs[0];
	for (uint32_t seq = 0; seq < FLOW_MESSAGES; seq++) {
		uint64_t since = bench_now_ns();
		while (bench_flow_room(b, pub, bench_now_ns()) == 0) {
			if (bench_now_ns() - since > FLOW_STUCK_S * 1000000000ull) {
				atomic_store(&w->stuck, true); /* deliveries went unsettled */
				return;
			}
			sched_yield();
		}
		w->over_window += pub->seq_next - atomic_load(&pub->head) >= pub->flow.window;
		bench_flow_sent(pub, seq, b->plan->topics[seq % 2].fan, bench_now_ns());
		pub->seq_next++;
		atomic_store_explicit(&w->published, seq + 1, memory_order_release);
	}
}

static int flow_setup(struct flow_world *w, struct bench_opts *o)
{
	char err[256];
	memset(o, 0, sizeof(*o));
	o->scenario = BENCH_FANOUT;
	o->publishers = 1;
	o->subscribers = FLOW_SUBS;
	o->topics = 2;
	o->outstanding_max = FLOW_OUTSTANDING;
	o->lost_after_ms = 3600000; /* nothing is presumed lost: every miss shows as a gap */
	w->sh.o = o;
	w->sh.nthreads = 1 + FLOW_SUBS;
	if (bench_plan_build(&w->sh.plan, o, err, sizeof(err)) != 0)
		return -1;
	/*
	 * A fanout publisher keeps to one topic; this one cycles over both, so that seq goes to
	 * topic seq % 2 (subscribers 0 and 2, or 1 and 3) and a gap scan must skip the topic a
	 * subscriber does not hold. Both fans are 2, as the plan's fan_max already says.
	 */
	w->sh.plan.pub[0].topic_count = 2;
	w->sh.pubs = aligned_alloc(alignof(struct bench_pub), sizeof(*w->sh.pubs));
	if (w->sh.pubs == NULL)
		return -1;
	memset(w->sh.pubs, 0, sizeof(*w->sh.pubs));
	for (uint32_t i = 0; i < 1 + FLOW_SUBS; i++) {
		struct bench *b = aligned_alloc(alignof(struct bench), sizeof(*b));
		if ((w->t[i] = b) == NULL)
			return -1;
		memset(b, 0, sizeof(*b));
		*b = (struct bench){.sh = &w->sh, .o = o, .plan = &w->sh.plan, .id = i};
		b->pubs = w->sh.pubs;
		b->flow_shared = true;
	}
	return bench_flow_init(&w->sh);
}

static void test_flow(struct check *ck)
{
	static struct flow_world w; /* sh is its first member: a subscriber finds w from b->sh */
	struct bench_opts o;
	pthread_t tids[FLOW_SUBS];
	int rc = flow_setup(&w, &o);
	CHECK(ck, rc == 0, "flow test setup failed");
	for (uint32_t s = 0; rc == 0 && s < FLOW_SUBS; s++)
		rc = pthread_create(&tids[s], NULL, flow_subscriber, w.t[1 + s]);
	CHECK(ck, rc == 0, "pthread_create: %d", rc);
	if (rc == 0) {
		flow_publish(&w);
		for (uint32_t s = 0; s < FLOW_SUBS; s++)
			pthread_join(tids[s], NULL);
		struct bench_pub *pub = &w.sh.pubs[0];
		uint64_t gaps = 0, misses = 0;
		for (uint32_t s = 0; s < FLOW_SUBS; s++)
			gaps += w.t[1 + s]->n.gap_lost;
		for (uint32_t seq = 0; seq < FLOW_MESSAGES; seq += 2)
			misses += flow_misses(0, seq);
		uint32_t room = bench_flow_room(w.t[0], pub, bench_now_ns());
		CHECK(ck, !atomic_load(&w.stuck), "flow: the publisher found no room for %u s",
		      FLOW_STUCK_S);
		CHECK(ck, atomic_load(&pub->head) == FLOW_MESSAGES && room == pub->flow.window,
		      "flow: head %u of %u, room %u of %u", atomic_load(&pub->head), FLOW_MESSAGES,
		      room, pub->flow.window);
		CHECK(ck, gaps == misses && w.t[0]->n.presumed_lost == 0,
		      "flow: %" PRIu64 " gaps for %" PRIu64 " misses, %" PRIu64 " presumed lost",
		      gaps, misses, w.t[0]->n.presumed_lost);
		CHECK(ck, w.over_window == 0 && pub->flow.window == FLOW_OUTSTANDING / 2,
		      "flow: window %u exceeded %u times", pub->flow.window, w.over_window);
	}
	for (uint32_t i = 0; i < 1 + FLOW_SUBS; i++)
		free(w.t[i]);
	if (w.sh.pubs != NULL) {
		free(w.sh.pubs[0].flow.slots);
		free(w.sh.pubs[0].flow.sent_ns);
	}
	free(w.sh.pubs);
	bench_plan_free(&w.sh.plan);
}

int bench_selftest(void)
{
	struct check ck = {0, 0};
	test_hist_buckets(&ck);
	test_hist_quantiles(&ck);
	test_seq(&ck);
	test_fidx(&ck);
	test_plan(&ck);
	test_plan_shared(&ck);
	test_flow(&ck);
	printf("selftest: %" PRIu64 " checks passed, %" PRIu64 " failed\n", ck.passed, ck.failed);
	return ck.failed == 0 ? 0 : 1;
}
