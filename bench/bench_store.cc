/*
 * Micro-benchmarks of the persistence log's codec (src/store/): encoding the records a loop
 * iteration appends (a retained message and a queued QoS 1 message with a 256 B payload, a
 * session's in-flight packet id), reading back a segment of 10,000 retained messages as replay
 * at start-up will (header, then every record's length, CRC32C and fields), and CRC32C alone.
 * Items are records; bytes are the log's bytes. Topics look like telemetry (34 bytes).
 */
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "store/record.h"
#include "store/segment.h"
}

namespace
{

const char kTopic[] = "sensors/site42/dev1234/temperature";
const char kClient[] = "client-000042";

st_bytes bytes_of(const void *p, size_t n)
{
	return st_bytes{static_cast<const uint8_t *>(p), static_cast<uint32_t>(n)};
}

store_rec retained(const std::vector<uint8_t> &payload)
{
	store_rec r{};

	r.type = STORE_REC_RETAIN_SET;
	r.qos = 1;
	r.topic = bytes_of(kTopic, sizeof(kTopic) - 1);
	r.payload = bytes_of(payload.data(), payload.size());
	return r;
}

void encode_loop(benchmark::State &state, const store_rec &r)
{
	store_buf b{};
	size_t bytes = 0;

	for (auto _ : state) {
		b.len = 0;
		for (int i = 0; i < 64; i++)
			if (store_rec_encode(&b, &r) != 0)
				abort();
		bytes += b.len;
		benchmark::DoNotOptimize(b.data);
	}
	state.SetItemsProcessed(state.iterations() * 64);
	state.SetBytesProcessed(static_cast<int64_t>(bytes));
	store_buf_free(&b);
}

void BM_EncodeRetainSet256(benchmark::State &state)
{
	std::vector<uint8_t> payload(256, 0x5a);

	encode_loop(state, retained(payload));
}
BENCHMARK(BM_EncodeRetainSet256);

void BM_EncodeQueueAdd256(benchmark::State &state)
{
	std::vector<uint8_t> payload(256, 0x5a);
	store_rec r = retained(payload);

	r.type = STORE_REC_QUEUE_ADD;
	r.msg_id = 123456789;
	r.client = bytes_of(kClient, sizeof(kClient) - 1);
	encode_loop(state, r);
}
BENCHMARK(BM_EncodeQueueAdd256);

void BM_EncodeInflightSet(benchmark::State &state)
{
	store_rec r{};

	r.type = STORE_REC_INFLIGHT_SET;
	r.msg_id = 123456789;
	r.packet_id = 4242;
	r.stage = STORE_STAGE_PUBLISH;
	r.client = bytes_of(kClient, sizeof(kClient) - 1);
	encode_loop(state, r);
}
BENCHMARK(BM_EncodeInflightSet);

void BM_ReplaySegment(benchmark::State &state)
{
	std::vector<uint8_t> payload(static_cast<size_t>(state.range(0)), 0x5a);
	store_rec r = retained(payload);
	store_header h{};
	store_buf b{};
	const int records = 10000;

	h.workers = 1;
	if (store_header_encode(&b, &h) != 0)
		abort();
	for (int i = 0; i < records; i++)
		if (store_rec_encode(&b, &r) != 0)
			abort();
	for (auto _ : state) {
		store_seg seg;
		store_rec out;
		uint64_t sum = 0;

		if (store_seg_open(&seg, b.data, b.len, 1) != 0)
			abort();
		while (store_seg_next(&seg, &out) > 0)
			sum += out.payload.len;
		if (seg.stop != 0 || seg.records != records)
			abort();
		benchmark::DoNotOptimize(sum);
	}
	state.SetItemsProcessed(state.iterations() * records);
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.len));
	store_buf_free(&b);
}
BENCHMARK(BM_ReplaySegment)->Arg(16)->Arg(256)->Arg(4096);

void BM_Crc32c(benchmark::State &state)
{
	std::vector<uint8_t> data(static_cast<size_t>(state.range(0)), 0xa5);

	for (auto _ : state)
		benchmark::DoNotOptimize(store_crc32c(0, data.data(), data.size()));
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_Crc32c)->Arg(64)->Arg(4096)->Arg(1 << 20);

} // namespace

BENCHMARK_MAIN();
