"""Scale and robustness: 1 MB payloads intact at every QoS, 1,000 subscribers of one topic
each receiving a burst exactly once and in order, and a malformed-input run (random bytes,
truncated packets, absurd lengths, mutated CONNECTs, abrupt closes) from 200 sockets after
which the broker still serves clients. The harness fails a Starling broker whose log then holds
a sanitizer report. Set STARLING_SEED to replay a different malformed-input run.
"""

import os
import socket
import struct
import time
import unittest

from harness import (CONNACK, PINGRESP, SUBACK, BrokerTestCase, RawClient, encode_connect,
                     encode_pingreq, encode_publish, encode_subscribe, encode_unsubscribe, packet,
                     seeded_random, starling_only, unique_id, varint)

MB = 1 << 20


class LargePayloadTest(BrokerTestCase):
    def test_one_megabyte_paho(self):
        payload = os.urandom(MB)
        sub = self.client()
        got = self.collect(sub, "big/paho", 2)
        pub = self.client()
        for qos in (0, 1, 2):
            self.publish(pub, "big/paho", payload, qos, timeout=15)
        msgs = self.wait_messages(got, 3, timeout=15)
        for qos, m in zip((0, 1, 2), msgs):
            self.assertEqual((m.qos, len(m.payload)), (qos, MB))
            self.assertTrue(m.payload == payload, "payload corrupted at QoS %d" % qos)

    def test_one_megabyte_raw_to_many(self):
        # One large message fanned out to several subscribers, one of them via '#'.
        payload = bytes(range(256)) * (MB // 256) + b"tail"
        subs = [self.raw_connected() for _ in range(4)]
        for i, s in enumerate(subs):
            s.subscribe([("big/raw" if i else "#", 1)])
        pub = self.raw_connected()
        pub.publish_acked("big/raw", payload, 1, timeout=15)
        pub.publish("big/raw", payload, 0)
        for s in subs:
            got = s.recv_publishes(2, timeout=15)
            self.assertEqual([p.qos for p in got], [1, 0])
            self.assertTrue(all(p.payload == payload for p in got), "payload corrupted")

    def test_large_retained_message(self):
        payload = os.urandom(MB)
        pub = self.client()
        self.publish(pub, "big/retained", payload, 1, retain=True, timeout=15)
        sub = self.client()
        got = self.collect(sub, "big/#", 1)
        (m,) = self.wait_messages(got, 1, timeout=15)
        self.assertTrue(m.retain and m.payload == payload)


class FanOutTest(BrokerTestCase):
    SUBSCRIBERS = 1000
    BATCH = 100
    BURST = 20

    def connect_subscribers(self, topic):
        """SUBSCRIBERS raw clients subscribed to `topic` at QoS 1. CONNECT and SUBSCRIBE are
        pipelined per batch (3.1.4 lets a client send before CONNACK), so the broker's
        accept backlog never holds more than a batch."""
        subs = []
        for start in range(0, self.SUBSCRIBERS, self.BATCH):
            batch = [self.raw(timeout=20) for _ in range(self.BATCH)]
            for r in batch:
                r.send(encode_connect(unique_id("fan")) + encode_subscribe(1, [(topic, 1)]))
            for r in batch:
                ca = r.expect(CONNACK)
                self.assertEqual(ca.rc, 0)
                self.assertEqual(r.expect(SUBACK).codes, [1])
            subs += batch
        return subs

    def test_thousand_subscribers_each_get_burst_once(self):
        t0 = time.monotonic()
        subs = self.connect_subscribers("fan/t")
        connected_s = time.monotonic() - t0
        pub = self.raw_connected(timeout=20)
        expected = []
        for i in range(self.BURST):
            qos = i % 2  # alternate QoS 0 and QoS 1
            payload = b"msg-%02d" % i
            expected.append((payload, qos))
            if qos:
                pub.publish_acked("fan/t", payload, 1, timeout=20)
            else:
                pub.publish("fan/t", payload, 0)
        for n, r in enumerate(subs):
            got = [(p.payload, p.qos) for p in r.recv_publishes(self.BURST, timeout=20)]
            # Every message once; [MQTT-4.6.0-6] orders messages of the same topic and QoS.
            self.assertEqual(sorted(got), sorted(expected), "subscriber %d" % n)
            for qos in (0, 1):
                self.assertEqual([m for m in got if m[1] == qos],
                                 [m for m in expected if m[1] == qos], "subscriber %d" % n)
        # Exactly once: after the burst each subscriber's next packet is its PINGRESP.
        for r in subs:
            r.send(encode_pingreq())
        for n, r in enumerate(subs):
            p = r.recv(20)
            self.assertEqual(p.type, PINGRESP, "subscriber %d got an extra %r" % (n, p))
        # Closing them all at once leaves the broker serving.
        for r in subs:
            r.abort()
        self.assert_broker_works()
        self.assertLess(connected_s, 60)


class MalformedFloodTest(BrokerTestCase):
    SOCKETS = 200

    def valid_connect(self):
        return encode_connect(unique_id("fz"), keepalive=30)

    def garbage(self, rnd):
        kind = rnd.randrange(9)
        if kind == 0:  # random bytes, no CONNECT
            return "random", rnd.randbytes(rnd.randrange(1, 300))
        if kind == 1:  # CONNECT, then random bytes
            return "connect+random", self.valid_connect() + rnd.randbytes(rnd.randrange(1, 300))
        if kind == 2:  # CONNECT, then a valid packet cut short
            whole = encode_publish("fz/" + "x" * rnd.randrange(50), rnd.randbytes(200),
                                   rnd.randrange(3), pid=rnd.randrange(1, 65536))
            return "truncated", self.valid_connect() + whole[: rnd.randrange(1, len(whole))]
        if kind == 3:  # an absurd remaining length (maximum or past 4 bytes)
            head = bytes([rnd.choice([0x10, 0x30, 0x32, 0x82, 0xC0])])
            length = varint(268435455) if rnd.random() < 0.5 else b"\xff" * rnd.randrange(4, 8)
            first = b"" if head[0] == 0x10 else self.valid_connect()
            return "oversized", first + head + length + rnd.randbytes(rnd.randrange(100))
        if kind == 4:  # a CONNECT with a few bytes flipped
            c = bytearray(encode_connect(unique_id("fz"), will=("fz/will", b"w", 1, False),
                                         username="u", password="p"))
            for _ in range(rnd.randrange(1, 4)):
                c[rnd.randrange(len(c))] = rnd.randrange(256)
            return "mutated-connect", bytes(c)
        if kind == 5:  # structurally plausible packets with random types, flags and bodies
            out = self.valid_connect()
            for _ in range(rnd.randrange(1, 6)):
                out += packet(rnd.randrange(16), rnd.randrange(16),
                              rnd.randbytes(rnd.randrange(20)))
            return "random-packets", out
        if kind == 6:  # valid traffic, then a mutated packet
            good = (self.valid_connect() + encode_subscribe(1, [("fz/#", rnd.randrange(3))])
                    + encode_publish("fz/ok", b"fine", 1, pid=2))
            bad = bytearray(encode_unsubscribe(3, ["fz/#"]) + encode_publish("fz/a", b"b", 2, pid=4))
            bad[rnd.randrange(len(bad))] ^= 1 << rnd.randrange(8)
            return "valid-then-mutated", good + bytes(bad)
        if kind == 7:  # lengths inside the packet that lie
            body = struct.pack("!H", rnd.randrange(1, 65536)) + b"fz"
            return "lying-length", self.valid_connect() + packet(3, 0, body)
        # a byte at a time: a CONNECT dribbled out, then dropped
        return "partial-connect", self.valid_connect()[: rnd.randrange(1, 20)]

    def test_malformed_flood_leaves_broker_serving(self):
        rnd, seed = seeded_random(20240611)
        witness = self.client()
        seen = self.collect(witness, "fz/#", 1)
        socks, kinds = [], []
        for _ in range(self.SOCKETS):
            s = socket.create_connection((self.broker.host, self.broker.port), timeout=5)
            self.defer(s.close)
            socks.append(s)
        for s in socks:
            kind, data = self.garbage(rnd)
            kinds.append(kind)
            try:
                s.sendall(data)
            except OSError:
                pass  # already closed by the broker: fine
        # Half close at once (half of those with a reset), the rest stay open meanwhile.
        order = list(range(len(socks)))
        rnd.shuffle(order)
        lingering = order[: len(order) // 2]
        for i in order[len(order) // 2:]:
            if rnd.random() < 0.5:
                socks[i].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            socks[i].close()
        msg = "seed %d (set STARLING_SEED to replay)" % seed
        self.assertTrue(self.broker.alive(), "broker died: " + msg)
        # Connections holding partial packets must not stall anyone else.
        self.assert_broker_works()
        pub = self.client()
        self.publish(pub, "fz/after", b"after-flood", 1)
        self.wait_for(lambda: any(m.payload == b"after-flood" for m in seen), msg=msg)
        for i in lingering:
            socks[i].close()
        self.assert_broker_works()
        self.assertTrue(self.broker.alive(), "broker died: " + msg)

    def test_slowloris_partial_packets_do_not_block(self):
        # Fifty connections each sitting on half a packet while normal clients work.
        held = []
        for i in range(50):
            r = RawClient(self.broker.port)
            self.defer(r.close)
            connect = self.valid_connect()
            whole = connect + encode_publish("fz/slow", b"x" * 100, 1, pid=1)
            r.send(whole[: len(connect) + 10 + i])
            held.append(r)
        sub = self.client()
        got = self.collect(sub, "fz/slow", 1)
        self.assert_broker_works()
        for r in held:
            r.abort()
        self.assert_no_messages(got, 0.2)
        self.assert_broker_works()

    @starling_only("Mosquitto allocates a packet's announced length as soon as it reads the "
                   "remaining length")
    def test_announced_length_is_not_allocated_up_front(self):
        # Fifty connections announce a PUBLISH of 200 MB each and send 64 bytes of it: the
        # broker must hold what arrived, not what was announced (10 GB), or a few slow
        # clients could take its memory.
        def vm_kb(field):
            with open("/proc/%d/status" % self.broker.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
            return 0

        before = vm_kb("VmSize")
        head = bytes([0x30]) + varint(200 * MB) + b"\x00\x07fz/huge"
        held = []
        for _ in range(50):
            r = RawClient(self.broker.port)
            self.defer(r.close)
            r.send(self.valid_connect())
            r.send(head + b"x" * 64)
            held.append(r)
        self.assert_broker_works()
        grown_mb = (vm_kb("VmSize") - before) / 1024
        self.assertLess(grown_mb, 1000, "broker address space grew by %.0f MiB" % grown_mb)
        for r in held:
            r.abort()
        self.assert_broker_works()


if __name__ == "__main__":
    unittest.main()
