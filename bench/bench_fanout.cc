// Fan-out: one PUBLISH routed to N subscribers on one topic, each connection's output written
// and its send's iovecs built (the broker's per-delivery user-space work; the kernel's send is
// measured by starling-bench, not here). Items are deliveries.
#include <benchmark/benchmark.h>

#include "fanout_shim.h"

static void run(benchmark::State &state, uint8_t qos, uint8_t level)
{
	unsigned n = (unsigned)state.range(0);
	size_t payload = (size_t)state.range(1);
	struct fanout_bench *fb = fanout_bench_new(n, qos, level, payload);
	uint64_t deliveries = 0;

	if (!fb) {
		state.SkipWithError("setup failed");
		return;
	}
	for (auto _ : state) {
		unsigned d = fanout_bench_run(fb);
		benchmark::DoNotOptimize(d);
		deliveries += d;
	}
	state.SetItemsProcessed((int64_t)deliveries);
	state.SetBytesProcessed((int64_t)(deliveries * payload));
	fanout_bench_free(fb);
}

static void BM_fanout_qos0_v311(benchmark::State &s) { run(s, 0, 4); }
static void BM_fanout_qos1_v311(benchmark::State &s) { run(s, 1, 4); }
static void BM_fanout_qos0_v5(benchmark::State &s) { run(s, 0, 5); }

BENCHMARK(BM_fanout_qos0_v311)->Args({1000, 16})->Args({1000, 256})->Args({50, 16});
BENCHMARK(BM_fanout_qos1_v311)->Args({1000, 16});
BENCHMARK(BM_fanout_qos0_v5)->Args({1000, 16});

BENCHMARK_MAIN();
