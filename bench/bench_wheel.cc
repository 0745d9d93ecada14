/*
 * What one second of keep-alive housekeeping costs a worker holding N idle connections: the
 * walk over every connection that Starling did before the timing wheel, against the wheel
 * (src/base/wheel.h) with lazy keep-alive timers. Each iteration is one second of housekeeping,
 * done at once, so its time is the stall an active client's message may wait behind.
 *
 * The connections are objects of a connection's size (struct conn is about 600 bytes),
 * allocated one by one and linked in a shuffled order, as a long-running broker's would be.
 * Each idle client sends PINGREQ every 60 s (its keep alive), which only moves its last_rx
 * (the timer is not touched); the timer, set 1.5 keep alives ahead, fires, finds the real
 * deadline ahead and adds itself again. So in steady state the wheel fires N / 60 timers a
 * second, spread over the second's four 250 ms slots, while the walk reads all N connections.
 */
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

extern "C" {
#include "base/wheel.h"
}

namespace
{

constexpr uint64_t kKeepaliveMs = 60000;
constexpr uint64_t kGraceMs = kKeepaliveMs * 3 / 2;

struct Conn {
	wheel_node timer;
	Conn *next;
	uint64_t last_rx_ms;
	uint64_t keepalive_ms;
	unsigned char rest[560]; /* the rest of a connection: what a walk drags through the cache */
};

struct Idle {
	std::vector<Conn *> conns;
	Conn *head = nullptr;
	wheel wh{};
	uint64_t now_ms = 0;
	uint64_t expired = 0;

	explicit Idle(size_t n)
	{
		std::mt19937_64 rng(42);

		wheel_init(&wh, 1024, 250, 0);
		for (size_t i = 0; i < n; i++) {
			Conn *c = new Conn();
			/* Pings spread evenly over the keep-alive period. */
			c->last_rx_ms = 1 + rng() % (kKeepaliveMs - 1);
			c->keepalive_ms = kKeepaliveMs;
			wheel_add(&wh, &c->timer, c->last_rx_ms + kGraceMs);
			conns.push_back(c);
		}
		std::shuffle(conns.begin(), conns.end(), rng);
		for (Conn *c : conns) {
			c->next = head;
			head = c;
		}
		now_ms = kKeepaliveMs;
	}

	~Idle()
	{
		wheel_fini(&wh);
		for (Conn *c : conns)
			delete c;
	}

	/* The idle clients' PINGREQs in the last second: each only moves last_rx. */
	void pings(uint64_t from_ms, uint64_t to_ms)
	{
		for (Conn *c = head; c; c = c->next) {
			uint64_t next = c->last_rx_ms + kKeepaliveMs;

			if (next > from_ms && next <= to_ms)
				c->last_rx_ms = next;
		}
	}

	static void fire(void *ctx, wheel_node *n)
	{
		Idle *self = static_cast<Idle *>(ctx);
		Conn *c = reinterpret_cast<Conn *>(reinterpret_cast<char *>(n) -
		                                   offsetof(Conn, timer));
		uint64_t due = c->last_rx_ms + c->keepalive_ms * 3 / 2;

		if (due > self->now_ms)
			wheel_add(&self->wh, n, due);
		else
			self->expired++;
	}
};

/* Before the wheel: once a second, every connection is read for its keep alive. */
void BM_HousekeepingWalk(benchmark::State &state)
{
	Idle idle(static_cast<size_t>(state.range(0)));

	for (auto _ : state) {
		uint64_t due = 0;

		state.PauseTiming();
		idle.pings(idle.now_ms, idle.now_ms + 1000);
		idle.now_ms += 1000;
		state.ResumeTiming();
		for (Conn *c = idle.head; c; c = c->next)
			if (c->last_rx_ms + c->keepalive_ms * 3 / 2 <= idle.now_ms)
				due++;
		benchmark::DoNotOptimize(due);
	}
	state.counters["connections"] = static_cast<double>(state.range(0));
}

/* The wheel: one second of ticks fires only the timers due in it. */
void BM_HousekeepingWheel(benchmark::State &state)
{
	Idle idle(static_cast<size_t>(state.range(0)));
	size_t fired = 0;

	for (auto _ : state) {
		state.PauseTiming();
		idle.pings(idle.now_ms, idle.now_ms + 1000);
		idle.now_ms += 1000;
		state.ResumeTiming();
		fired += wheel_advance(&idle.wh, idle.now_ms, Idle::fire, &idle);
	}
	state.counters["connections"] = static_cast<double>(state.range(0));
	state.counters["fired/s"] =
	        static_cast<double>(fired) / static_cast<double>(state.iterations());
	if (idle.expired)
		state.SkipWithError("an idle connection that pinged was found expired");
}

BENCHMARK(BM_HousekeepingWalk)->Arg(1000)->Arg(18000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HousekeepingWheel)->Arg(1000)->Arg(18000)->Arg(100000)->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
