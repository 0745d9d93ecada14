/*
 * Micro-benchmarks of the MQTT 5 property codec (src/codec/props.c) through the C header.
 *
 * The block that matters is a PUBLISH's: the broker parses it for every MQTT 5 message it
 * receives. The typical one here is what telemetry publishers send (a content type and two user
 * properties, 52 bytes), next to a bigger request/response block (response topic, correlation
 * data, expiry, payload format, topic alias; 100 bytes), an empty block (the usual case, which must
 * cost next to nothing), walking a block with the iterator (what forwarding does), and writing the
 * typical block. Items are blocks; bytes are block bytes.
 */
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "starling/props.h"

namespace
{

st_bytes B(const char *s)
{
	return st_bytes{reinterpret_cast<const uint8_t *>(s), static_cast<uint32_t>(strlen(s))};
}

/* Content Type and two User Properties, as a sensor gateway would send them. */
std::vector<uint8_t> TypicalBlock()
{
	uint8_t buf[256];
	st_prop_writer w;

	st_pw_init(&w, buf, sizeof(buf));
	st_pw_str(&w, ST_PROP_CONTENT_TYPE, B("application/json"));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, B("site"), B("plant-42"));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, B("unit"), B("celsius"));
	return std::vector<uint8_t>(buf, buf + st_pw_len(&w));
}

/* A request of request/response: everything a PUBLISH carries but subscription ids. */
std::vector<uint8_t> RequestBlock()
{
	uint8_t buf[256];
	st_prop_writer w;

	st_pw_init(&w, buf, sizeof(buf));
	st_pw_byte(&w, ST_PROP_PAYLOAD_FORMAT, 1);
	st_pw_u32(&w, ST_PROP_MESSAGE_EXPIRY, 60);
	st_pw_u16(&w, ST_PROP_TOPIC_ALIAS, 7);
	st_pw_str(&w, ST_PROP_CONTENT_TYPE, B("application/json"));
	st_pw_str(&w, ST_PROP_RESPONSE_TOPIC, B("replies/client-0042/req"));
	st_pw_str(&w, ST_PROP_CORRELATION_DATA, B("0123456789abcdef"));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, B("trace"), B("4bf92f3577b34da6"));
	return std::vector<uint8_t>(buf, buf + st_pw_len(&w));
}

void Parse(benchmark::State &state, const std::vector<uint8_t> &blk)
{
	st_bytes raw{blk.data(), static_cast<uint32_t>(blk.size())};
	st_props out;

	for (auto _ : state) {
		int rc = st_props_parse(raw, ST_PCTX_PUBLISH, &out);

		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(out.user_count);
	}
	if (st_props_parse(raw, ST_PCTX_PUBLISH, &out) != ST_OK)
		state.SkipWithError("block does not parse");
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(blk.size()));
}

void BM_ParsePublishTypical(benchmark::State &state)
{
	Parse(state, TypicalBlock());
}
BENCHMARK(BM_ParsePublishTypical);

void BM_ParsePublishRequest(benchmark::State &state)
{
	Parse(state, RequestBlock());
}
BENCHMARK(BM_ParsePublishRequest);

void BM_ParseEmpty(benchmark::State &state)
{
	Parse(state, std::vector<uint8_t>());
}
BENCHMARK(BM_ParseEmpty);

/* Walks the typical block as forwarding does: every property, its raw bytes summed. */
void BM_IterateTypical(benchmark::State &state)
{
	std::vector<uint8_t> blk = TypicalBlock();
	st_bytes raw{blk.data(), static_cast<uint32_t>(blk.size())};

	for (auto _ : state) {
		st_prop_iter it;
		st_prop p;
		uint32_t n = 0;

		st_prop_iter_init(&it, raw);
		while (st_prop_iter_next(&it, &p))
			n += p.raw.len;
		benchmark::DoNotOptimize(n);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(blk.size()));
}
BENCHMARK(BM_IterateTypical);

void BM_WriteTypical(benchmark::State &state)
{
	uint8_t buf[256];
	size_t len = 0;

	for (auto _ : state) {
		st_prop_writer w;

		st_pw_init(&w, buf, sizeof(buf));
		st_pw_str(&w, ST_PROP_CONTENT_TYPE, B("application/json"));
		st_pw_pair(&w, ST_PROP_USER_PROPERTY, B("site"), B("plant-42"));
		st_pw_pair(&w, ST_PROP_USER_PROPERTY, B("unit"), B("celsius"));
		len = st_pw_len(&w);
		benchmark::DoNotOptimize(buf);
		benchmark::DoNotOptimize(len);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
}
BENCHMARK(BM_WriteTypical);

} // namespace

BENCHMARK_MAIN();
