/*
 * Micro-benchmarks of topic matching and validation (src/codec/topic.c) and of UTF-8 validation
 * (src/utf8.c) through the C headers.
 *
 * st_topic_matches is the reference matcher (the index uses hashing), but the broker also runs
 * it for shared and retained lookups, so each shape is measured: an exact match, '+' and '#'
 * matches, an early and a late mismatch, and the '$' rule. UTF-8 runs over ASCII topics of
 * 16 B to 1 KiB (the common case and its fast path), then text with 2-, 3- and 4-byte
 * characters. Items are calls; bytes are the bytes examined.
 */
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "starling/topic.h"
#include "starling/utf8.h"

namespace
{

const uint8_t *u8(const char *s)
{
	return reinterpret_cast<const uint8_t *>(s);
}

struct MatchCase {
	const char *label;
	const char *filter;
	const char *name;
};

const MatchCase kMatchCases[] = {
        {"exact", "sensors/site42/dev1234/temperature", "sensors/site42/dev1234/temperature"},
        {"plus", "sensors/+/+/temperature", "sensors/site42/dev1234/temperature"},
        {"hash", "sensors/site42/#", "sensors/site42/dev1234/temperature"},
        {"hash_all", "#", "sensors/site42/dev1234/temperature"},
        {"miss_first", "alarms/site42/dev1234/temperature", "sensors/site42/dev1234/temperature"},
        {"miss_last", "sensors/site42/dev1234/humidity", "sensors/site42/dev1234/temperature"},
        {"dollar", "#", "$SYS/broker/clients/connected"},
};

/* Arg: index into kMatchCases. */
void BM_TopicMatches(benchmark::State &state)
{
	const MatchCase &c = kMatchCases[state.range(0)];
	size_t fl = strlen(c.filter), nl = strlen(c.name);

	for (auto _ : state) {
		bool m = st_topic_matches(u8(c.filter), fl, u8(c.name), nl);

		benchmark::DoNotOptimize(m);
	}
	state.SetLabel(c.label);
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * nl);
}
BENCHMARK(BM_TopicMatches)->DenseRange(0, sizeof(kMatchCases) / sizeof(kMatchCases[0]) - 1);

void BM_TopicFilterIsValid(benchmark::State &state)
{
	const char *f = "sensors/+/dev1234/#";
	size_t n = strlen(f);

	for (auto _ : state) {
		bool ok = st_topic_filter_is_valid(u8(f), n);

		benchmark::DoNotOptimize(ok);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * n);
}
BENCHMARK(BM_TopicFilterIsValid);

void BM_TopicNameIsValid(benchmark::State &state)
{
	const char *t = "sensors/site42/dev1234/temperature";
	size_t n = strlen(t);

	for (auto _ : state) {
		bool ok = st_topic_name_is_valid(u8(t), n);

		benchmark::DoNotOptimize(ok);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * n);
}
BENCHMARK(BM_TopicNameIsValid);

/* ASCII text of range(0) bytes. */
void BM_Utf8CheckAscii(benchmark::State &state)
{
	std::string s;

	while (s.size() < static_cast<size_t>(state.range(0)))
		s += "sensors/site42/dev1234/temperature/";
	s.resize(state.range(0));
	for (auto _ : state) {
		int rc = st_utf8_check(u8(s.data()), s.size());

		benchmark::DoNotOptimize(rc);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * s.size());
}
BENCHMARK(BM_Utf8CheckAscii)->ArgName("bytes")->Arg(16)->Arg(34)->Arg(64)->Arg(256)->Arg(1024);

struct TextCase {
	const char *label;
	const char *unit; /* repeated to fill 256 bytes (or just under) */
};

const TextCase kTextCases[] = {
        {"latin1_mixed", "capteurs/s\xc3\xa9jour/temp\xc3\xa9rature/"}, /* mostly ASCII */
        {"cjk_3byte", "\xe6\xb8\xa9\xe5\xba\xa6/\xe4\xbc\xa0\xe6\x84\x9f\xe5\x99\xa8/"},
        {"emoji_4byte", "\xf0\x9f\x8c\xa1\xf0\x9f\x93\xa1\xf0\x9f\x8f\xa0/"},
};

/* Arg: index into kTextCases. */
void BM_Utf8CheckText(benchmark::State &state)
{
	const TextCase &c = kTextCases[state.range(0)];
	std::string s;

	while (s.size() + strlen(c.unit) <= 256)
		s += c.unit;
	for (auto _ : state) {
		int rc = st_utf8_check(u8(s.data()), s.size());

		benchmark::DoNotOptimize(rc);
	}
	state.SetLabel(c.label);
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * s.size());
}
BENCHMARK(BM_Utf8CheckText)->DenseRange(0, sizeof(kTextCases) / sizeof(kTextCases[0]) - 1);

} // namespace

BENCHMARK_MAIN();
