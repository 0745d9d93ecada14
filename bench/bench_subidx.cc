/*
 * Micro-benchmarks of the subscription index (src/index/subidx.c): PUBLISH lookups per second with
 * 1, 1k, 100k and 1M filters, for exact filters, wildcard filters and a 90/10 mix; fan-out of
 * one topic to many subscribers (deliveries per second); and subscribe/unsubscribe churn.
 *
 * Filters look like telemetry: "site<a>/dev<b>/temp" and wildcard shapes over the same
 * levels ("site<a>/dev<b>/+", "site<a>/dev<b>/#", "site<a>/+/temp<b>", "+/dev<b>/temp<a>"), so
 * that the trie has wide levels and a topic matches about one filter. Lookups cycle through
 * 65,536 topics drawn at random from the filter space, so the big indexes are measured cold
 * in cache, as a broker sees them.
 *
 * Setup is outside the timed loops: one index is built per (kind, size) and kept while the
 * benchmarks of that size run, then freed, so at most one big index is alive (about 0.2 GB at
 * 1M filters). The memory counter `bytes_per_sub` is jemalloc's allocated bytes for the index
 * divided by its subscriptions (the bench links jemalloc, as the release broker does).
 */
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "starling/error.h"
#include "index/subidx.h"

extern "C" int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

namespace
{

enum Kind { kExact = 0, kWildcard = 1, kMixed = 2 };

constexpr unsigned kSitesMax = 1000; /* distinct "site<a>" levels */
constexpr size_t kTopics = 1 << 16;  /* topics a lookup benchmark cycles through */
constexpr size_t kTopicStride = 32;  /* bytes per topic slot */

/* Bytes jemalloc has handed out and not taken back; 0 if stats are unavailable. */
size_t allocated_bytes()
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch), allocated = 0;

	mallctl("epoch", &epoch, &sz, &epoch, sz);
	sz = sizeof(allocated);
	if (mallctl("stats.allocated", &allocated, &sz, nullptr, 0) != 0)
		return 0;
	return allocated;
}

/* The i-th filter of a kind: (a, b) = (i % sites, i / sites) so every i is distinct. */
std::string filter_of(Kind kind, size_t i, unsigned sites)
{
	unsigned a = (unsigned)(i % sites), b = (unsigned)(i / sites);
	char buf[64];
	unsigned shape = (unsigned)((i * 0x9e3779b97f4a7c15ull) >> 61) % 4;

	if (kind == kExact || (kind == kMixed && i % 10 != 9))
		snprintf(buf, sizeof(buf), "site%u/dev%u/temp", a, b);
	else if (shape == 0)
		snprintf(buf, sizeof(buf), "site%u/dev%u/+", a, b);
	else if (shape == 1)
		snprintf(buf, sizeof(buf), "site%u/dev%u/#", a, b);
	else if (shape == 2)
		snprintf(buf, sizeof(buf), "site%u/+/temp%u", a, b);
	else
		snprintf(buf, sizeof(buf), "+/dev%u/temp%u", b, a);
	return buf;
}

/* One built index and the topics to look up in it. */
struct Fixture {
	Kind kind;          /* which filters */
	size_t n;           /* how many */
	struct subidx *idx; /* the index; owned */
	size_t bytes;       /* allocated for the index */
	/* kTopics lookup topics, each in a kTopicStride slot of one array, as a receive buffer
	 * holds them: the bench measures the index, not the scattered strings of a vector. */
	std::vector<char> topics;
	std::vector<uint8_t> topic_lens; /* length of each topic */

	Fixture(Kind k, size_t count) : kind(k), n(count)
	{
		unsigned sites = (unsigned)std::min<size_t>(kSitesMax, count);
		size_t before = allocated_bytes();
		std::mt19937_64 rng(42);

		idx = subidx_new();
		for (size_t i = 0; i < n; i++) {
			std::string f = filter_of(kind, i, sites);
			int rc = subidx_add(idx, (const uint8_t *)f.data(), f.size(),
			                    (void *)(uintptr_t)(16 * (i + 1)), i);
			if (rc != 1) {
				fprintf(stderr, "subidx_add(%s) = %d\n", f.c_str(), rc);
				abort();
			}
		}
		bytes = allocated_bytes() - before;
		/* Topics from the same space: (a, b) of an existing filter, a "temp<c>" tail for
		 * the wildcard shapes to hit about one filter each. */
		topics.resize(kTopics * kTopicStride);
		topic_lens.resize(kTopics);
		for (size_t t = 0; t < kTopics; t++) {
			size_t i = rng() % n;
			unsigned a = (unsigned)(i % sites), b = (unsigned)(i / sites);
			char *buf = &topics[t * kTopicStride];
			int len;

			if (kind == kExact || rng() % 2)
				len = snprintf(buf, kTopicStride, "site%u/dev%u/temp", a, b);
			else
				len = snprintf(buf, kTopicStride, "site%u/dev%u/temp%u", a, b,
				               (unsigned)(rng() % std::max<size_t>(1, n / sites)));
			topic_lens[t] = (uint8_t)len;
		}
	}
	~Fixture()
	{
		subidx_free(idx);
	}
};

/* The one index alive: rebuilt when a benchmark asks for another (kind, size). */
std::unique_ptr<Fixture> &current()
{
	static std::unique_ptr<Fixture> f;
	return f;
}

Fixture &fixture(Kind kind, size_t n)
{
	std::unique_ptr<Fixture> &f = current();

	if (!f || f->kind != kind || f->n != n) {
		f.reset();
		f.reset(new Fixture(kind, n));
	}
	return *f;
}

void count_match(void *ctx, void *subscriber, uint64_t data)
{
	(void)subscriber;
	(void)data;
	++*(uint64_t *)ctx;
}

void BM_match(benchmark::State &state, Kind kind)
{
	Fixture &f = fixture(kind, (size_t)state.range(0));
	uint64_t matched = 0;
	size_t t = 0;

	for (auto _ : state) {
		size_t i = t++ & (kTopics - 1);

		subidx_match(f.idx, (const uint8_t *)&f.topics[i * kTopicStride], f.topic_lens[i],
		             count_match, &matched);
	}
	benchmark::DoNotOptimize(matched);
	state.SetItemsProcessed((int64_t)state.iterations());
	state.counters["matches_per_lookup"] =
	        state.iterations() ? (double)matched / (double)state.iterations() : 0;
	/* jemalloc's thread cache blurs the count of a few small allocations. */
	if (f.n >= 1000)
		state.counters["bytes_per_sub"] = (double)f.bytes / (double)f.n;
	state.counters["trie_nodes"] = (double)subidx_node_count(f.idx);
}

void BM_match_exact(benchmark::State &state)
{
	BM_match(state, kExact);
}
void BM_match_wildcard(benchmark::State &state)
{
	BM_match(state, kWildcard);
}
void BM_match_mixed(benchmark::State &state)
{
	BM_match(state, kMixed);
}

/* One exact topic with range(0) subscribers: items are deliveries (match callbacks). */
void BM_fanout(benchmark::State &state)
{
	size_t subs = (size_t)state.range(0);
	struct subidx *idx = subidx_new();
	static const char topic[] = "fleet/broadcast";
	uint64_t matched = 0;

	for (size_t i = 0; i < subs; i++)
		subidx_add(idx, (const uint8_t *)topic, sizeof(topic) - 1,
		           (void *)(uintptr_t)(16 * (i + 1)), i);
	for (auto _ : state)
		subidx_match(idx, (const uint8_t *)topic, sizeof(topic) - 1, count_match, &matched);
	benchmark::DoNotOptimize(matched);
	state.SetItemsProcessed((int64_t)(state.iterations() * subs));
	subidx_free(idx);
}

/* Subscribe then unsubscribe range(0) filters of a kind: items are add or remove calls. */
void BM_churn(benchmark::State &state, Kind kind)
{
	size_t n = (size_t)state.range(0);
	unsigned sites = (unsigned)std::min<size_t>(kSitesMax, n);
	std::vector<std::string> filters;

	for (size_t i = 0; i < n; i++)
		filters.push_back(filter_of(kind, i, sites));
	for (auto _ : state) {
		struct subidx *idx = subidx_new();

		for (size_t i = 0; i < n; i++)
			subidx_add(idx, (const uint8_t *)filters[i].data(), filters[i].size(),
			           (void *)(uintptr_t)(16 * (i + 1)), i);
		for (size_t i = 0; i < n; i++)
			subidx_remove(idx, (const uint8_t *)filters[i].data(), filters[i].size(),
			              (void *)(uintptr_t)(16 * (i + 1)));
		subidx_free(idx);
	}
	state.SetItemsProcessed((int64_t)(state.iterations() * 2 * n));
}

void BM_churn_exact(benchmark::State &state)
{
	BM_churn(state, kExact);
}
void BM_churn_wildcard(benchmark::State &state)
{
	BM_churn(state, kWildcard);
}

} // namespace

BENCHMARK(BM_match_exact)->Arg(1)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_match_wildcard)->Arg(1)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_match_mixed)->Arg(1)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_fanout)->Arg(1)->Arg(50)->Arg(1000)->Arg(5000);
BENCHMARK(BM_churn_exact)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_churn_wildcard)->Arg(100000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
