/*
 * Micro-benchmarks of the packet codec (src/codec/codec_decode.c, src/codec/codec_encode.c) through the C
 * header: decode and encode of PUBLISH with 16 B and 256 B payloads (QoS 0 and 1, MQTT 3.1.1
 * and 5), a stream of back-to-back PUBLISHes as a receive buffer holds them, the PUBLISH head
 * the broker writes per delivery, CONNECT, SUBSCRIBE (decode plus walking its entries), and
 * PUBACK. Items are packets; bytes are the packets' wire bytes.
 *
 * Topics look like telemetry ("sensors/site42/dev1234/temperature", 34 bytes). Inputs are
 * encoded once outside the timed loop; the decoders read them in place, as the broker does.
 */
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "starling/codec.h"

namespace
{

const char kTopic[] = "sensors/site42/dev1234/temperature";

st_bytes bytes_of(const char *s)
{
	return st_bytes{reinterpret_cast<const uint8_t *>(s), static_cast<uint32_t>(strlen(s))};
}

st_bytes bytes_of(const std::vector<uint8_t> &v)
{
	return st_bytes{v.data(), static_cast<uint32_t>(v.size())};
}

std::vector<uint8_t> encode(const st_packet &p, uint8_t level)
{
	std::vector<uint8_t> out(st_packet_size(&p, level));
	int n = st_encode_packet(&p, level, out.data(), out.size());

	if (n < 0 || static_cast<size_t>(n) != out.size())
		abort();
	return out;
}

/* A PUBLISH with the telemetry topic; payload bytes and props must outlive the packet. */
st_packet publish_of(const std::vector<uint8_t> &payload, uint8_t qos, const uint8_t *props,
                     size_t props_len)
{
	st_packet p{};

	p.type = ST_PUBLISH;
	p.publish.qos = qos;
	p.publish.packet_id = qos ? 4242 : 0;
	p.publish.topic = bytes_of(kTopic);
	p.publish.props = st_bytes{props, static_cast<uint32_t>(props_len)};
	p.publish.payload = bytes_of(payload);
	return p;
}

const uint8_t kExpiryProps[] = {0x02, 0x00, 0x00, 0x00, 0x3c}; /* message expiry 60 s */

/* Args: payload bytes, QoS, protocol level. */
void BM_DecodePublish(benchmark::State &state)
{
	std::vector<uint8_t> payload(state.range(0), 0x5a);
	uint8_t qos = static_cast<uint8_t>(state.range(1));
	uint8_t level = static_cast<uint8_t>(state.range(2));
	std::vector<uint8_t> wire =
	        encode(publish_of(payload, qos, kExpiryProps, sizeof(kExpiryProps)), level);
	st_packet p;
	size_t used = 0;

	for (auto _ : state) {
		int rc = st_decode_packet(wire.data(), wire.size(), level, 0, &p, &used);

		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(p.publish.payload.ptr);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * wire.size());
}
BENCHMARK(BM_DecodePublish)
        ->ArgNames({"payload", "qos", "level"})
        ->Args({16, 0, 4})
        ->Args({256, 0, 4})
        ->Args({16, 1, 4})
        ->Args({16, 0, 5})
        ->Args({256, 1, 5});

/* A 64 KiB receive buffer of back-to-back PUBLISHes, decoded packet after packet. */
void BM_DecodePublishStream(benchmark::State &state)
{
	std::vector<uint8_t> payload(state.range(0), 0x5a);
	std::vector<uint8_t> one = encode(publish_of(payload, 0, nullptr, 0), ST_MQTT_311);
	std::vector<uint8_t> buf;
	size_t packets = 0;

	while (buf.size() + one.size() <= 65536) {
		buf.insert(buf.end(), one.begin(), one.end());
		packets++;
	}
	for (auto _ : state) {
		size_t off = 0, used = 0;
		st_packet p;

		while (off < buf.size()) {
			if (st_decode_packet(buf.data() + off, buf.size() - off, ST_MQTT_311, 0, &p,
			                     &used) != ST_OK)
				abort();
			benchmark::DoNotOptimize(p.publish.payload.ptr);
			off += used;
		}
	}
	state.SetItemsProcessed(state.iterations() * packets);
	state.SetBytesProcessed(state.iterations() * buf.size());
}
BENCHMARK(BM_DecodePublishStream)->ArgName("payload")->Arg(16)->Arg(256);

/* Args: payload bytes, QoS, protocol level. */
void BM_EncodePublish(benchmark::State &state)
{
	std::vector<uint8_t> payload(state.range(0), 0x5a);
	uint8_t level = static_cast<uint8_t>(state.range(2));
	st_packet p = publish_of(payload, static_cast<uint8_t>(state.range(1)), kExpiryProps,
	                         sizeof(kExpiryProps));
	std::vector<uint8_t> out(st_packet_size(&p, level));

	for (auto _ : state) {
		int n = st_encode_packet(&p, level, out.data(), out.size());

		benchmark::DoNotOptimize(n);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * out.size());
}
BENCHMARK(BM_EncodePublish)
        ->ArgNames({"payload", "qos", "level"})
        ->Args({16, 0, 4})
        ->Args({256, 0, 4})
        ->Args({16, 1, 5})
        ->Args({256, 1, 5});

/* The per-delivery head the broker writes in front of a shared topic and payload. */
void BM_EncodePublishHead(benchmark::State &state)
{
	uint8_t flags = static_cast<uint8_t>(state.range(0) << 1);
	uint8_t out[ST_PUBLISH_HEAD_MAX + sizeof(kTopic)];
	uint16_t id = 1;

	for (auto _ : state) {
		size_t n = st_encode_publish_head(out, flags, bytes_of(kTopic), id, 16);

		benchmark::DoNotOptimize(n);
		benchmark::ClobberMemory();
		id = static_cast<uint16_t>(id + 1) | 1;
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodePublishHead)->ArgName("qos")->Arg(0)->Arg(1);

st_packet connect_of(const uint8_t *props, size_t props_len)
{
	st_packet p{};

	p.type = ST_CONNECT;
	p.connect.clean_start = true;
	p.connect.keepalive_s = 60;
	p.connect.props = st_bytes{props, static_cast<uint32_t>(props_len)};
	p.connect.client_id = bytes_of("sensor-site42-dev1234");
	p.connect.will_flag = true;
	p.connect.will_qos = 1;
	p.connect.will_topic = bytes_of("sensors/site42/dev1234/status");
	p.connect.will_payload = bytes_of("offline");
	p.connect.username_flag = p.connect.password_flag = true;
	p.connect.username = bytes_of("site42");
	p.connect.password = bytes_of("correct horse battery staple");
	return p;
}

const uint8_t kConnectProps[] = {0x11, 0x00, 0x00, 0x0e, 0x10, 0x21, 0x00, 0x14};

/* Arg: protocol level. */
void BM_DecodeConnect(benchmark::State &state)
{
	uint8_t level = static_cast<uint8_t>(state.range(0));
	std::vector<uint8_t> wire = encode(connect_of(kConnectProps, sizeof(kConnectProps)), level);
	st_packet p;
	size_t used;

	for (auto _ : state) {
		int rc = st_decode_packet(wire.data(), wire.size(), ST_MQTT_311, 0, &p, &used);

		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(p.connect.password.ptr);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * wire.size());
}
BENCHMARK(BM_DecodeConnect)->ArgName("level")->Arg(4)->Arg(5);

void BM_EncodeConnect(benchmark::State &state)
{
	uint8_t level = static_cast<uint8_t>(state.range(0));
	st_packet p = connect_of(kConnectProps, sizeof(kConnectProps));
	std::vector<uint8_t> out(st_packet_size(&p, level));

	for (auto _ : state) {
		int n = st_encode_packet(&p, level, out.data(), out.size());

		benchmark::DoNotOptimize(n);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * out.size());
}
BENCHMARK(BM_EncodeConnect)->ArgName("level")->Arg(4)->Arg(5);

const st_sub_entry kEntries[] = {
        {{reinterpret_cast<const uint8_t *>("sensors/+/+/temperature"), 23}, 1},
        {{reinterpret_cast<const uint8_t *>("sensors/site42/#"), 16}, 0},
        {{reinterpret_cast<const uint8_t *>("$SYS/broker/clients/connected"), 29}, 0},
};

st_packet subscribe_of()
{
	st_packet p{};

	p.type = ST_SUBSCRIBE;
	p.subscribe.packet_id = 17;
	p.subscribe.count = 3;
	p.subscribe.entries = kEntries;
	return p;
}

/* Decodes (which validates every filter) and walks the entries. Arg: protocol level. */
void BM_DecodeSubscribe(benchmark::State &state)
{
	uint8_t level = static_cast<uint8_t>(state.range(0));
	std::vector<uint8_t> wire = encode(subscribe_of(), level);
	st_packet p;
	size_t used;

	for (auto _ : state) {
		if (st_decode_packet(wire.data(), wire.size(), level, 0, &p, &used) != ST_OK)
			abort();
		st_sub_iter it;
		st_sub_entry e;

		st_sub_iter_init(&it, &p);
		while (st_sub_iter_next(&it, &e))
			benchmark::DoNotOptimize(e.filter.ptr);
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * wire.size());
}
BENCHMARK(BM_DecodeSubscribe)->ArgName("level")->Arg(4)->Arg(5);

void BM_EncodeSubscribe(benchmark::State &state)
{
	uint8_t level = static_cast<uint8_t>(state.range(0));
	st_packet p = subscribe_of();
	std::vector<uint8_t> out(st_packet_size(&p, level));

	for (auto _ : state) {
		int n = st_encode_packet(&p, level, out.data(), out.size());

		benchmark::DoNotOptimize(n);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
	state.SetBytesProcessed(state.iterations() * out.size());
}
BENCHMARK(BM_EncodeSubscribe)->ArgName("level")->Arg(4)->Arg(5);

/* The QoS 1 acknowledgement, both directions' hot packet after PUBLISH. */
void BM_DecodePuback(benchmark::State &state)
{
	uint8_t level = static_cast<uint8_t>(state.range(0));
	st_packet a{};

	a.type = ST_PUBACK;
	a.ack.packet_id = 4242;
	std::vector<uint8_t> wire = encode(a, level);
	st_packet p;
	size_t used;

	for (auto _ : state) {
		int rc = st_decode_packet(wire.data(), wire.size(), level, 0, &p, &used);

		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(p.ack.packet_id);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodePuback)->ArgName("level")->Arg(4)->Arg(5);

} // namespace

BENCHMARK_MAIN();
