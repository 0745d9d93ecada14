"""WebSocket listeners (`listener PORT` + `protocol websockets`, with certfile/keyfile: wss).

Real clients: MQTT.js (Debian's node-mqtt, through mqttjs_client.js) over ws:// and wss://,
paho-mqtt with transport="websockets", and a browser (headless Chromium running MQTT.js, in
test_websockets_browser.py). The raw client of wsclient.py sends what no real client would:
frames split anywhere, several packets in a frame, unmasked frames, reserved bits and opcodes,
oversized and fragmented control frames, broken handshakes; each must close that connection
only, with the close code of RFC 6455 or the HTTP error of the upgrade, and leave the others
alone. On 4 workers a CONNECT usually lands on another worker than its client id's home, so
these tests also cover the hand-off of a WebSocket connection (its framing state) between
workers.
"""

import collections
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest


from harness import (KIND, PINGRESP, PUBLISH, SUBACK, Broker, BrokerError, BrokerTestCase,
                     encode_connect, encode_pingreq, encode_publish,
                     encode_subscribe, free_port, tool, unique_id)
from tlscerts import Certs
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      WsRawClient, WsSocket, connect, frame_bytes)

Endpoint = collections.namedtuple("Endpoint", "host port")
HERE = os.path.dirname(os.path.abspath(__file__))
NODE = shutil.which("node") or "/usr/bin/node"
NODE_ENV = dict(os.environ, NODE_PATH="/usr/share/nodejs")
CONNECT_TIMEOUT_S = 10  # src/broker/timers.c: the upgrade and the CONNECT must come by then


def have_mqttjs():
    return os.path.exists(NODE) and os.path.isdir("/usr/share/nodejs/mqtt")


@unittest.skipIf(KIND == "mosquitto", "Starling's WebSocket listener (mosquitto's needs its own config)")
class WsCase(BrokerTestCase):
    """A broker with its usual MQTT listener (self.broker.port) and a WebSocket one (self.ws)."""

    ws_lines = ()  # lines after `protocol websockets` (TLS options for wss)
    extra_lines = ()

    def setUp(self):
        self.ws = Endpoint("127.0.0.1", free_port())
        self.config_lines = (["listener %d 127.0.0.1" % self.ws.port, "protocol websockets"]
                             + list(self.ws_lines) + list(self.extra_lines))
        super().setUp()

    # --- helpers ---------------------------------------------------------------------------
    def wsraw(self, **kw):
        c = WsRawClient(self.ws.port, **kw)
        self.defer(c.close)
        return c

    def wssock(self, tls_ca=None):
        """A connected, not yet upgraded WsSocket."""
        s = WsSocket(connect(self.ws.port, tls_ca=tls_ca))
        self.defer(s.close)
        return s

    def upgraded(self, tls_ca=None):
        s = self.wssock(tls_ca)
        s.handshake()
        return s

    def assert_close(self, s, code, timeout=5.0):
        """The broker sends a close frame with `code` and then closes the TCP connection."""
        frames = []
        while True:
            f = s.recv_frame(timeout)
            if f is None:
                break
            frames.append(f)
        closes = [f for f in frames if f.opcode == OP_CLOSE]
        self.assertTrue(closes, "no close frame before EOF (frames: %r)" % frames)
        self.assertFalse(closes[0].masked, "server frames are never masked")
        self.assertEqual(struct.unpack(">H", closes[0].payload[:2])[0], code)
        self.assertIs(frames[-1], closes[0], "nothing may follow the close frame")

    def assert_broker_fine(self):
        """Another client still gets through after a bad one was closed."""
        c = self.wsraw()
        self.assertEqual(c.connect(unique_id()).rc, 0)
        self.assertEqual(c.subscribe(("fine/t", 1)), [1])
        pub = self.raw_connected()
        pub.publish_acked("fine/t", b"still here", qos=1)
        p = c.expect(PUBLISH)
        self.assertEqual(p.payload, b"still here")

    def mqttjs(self, url, mode, topic, qos, count, ca=None):
        args = [NODE, os.path.join(HERE, "mqttjs_client.js"), url, mode, topic, str(qos),
                str(count)] + ([ca] if ca else [])
        return self.spawn(args, env=NODE_ENV)


class UpgradeTest(WsCase):
    def test_upgrade_answers_101_with_mqtt(self):
        s = self.wssock()
        h = s.handshake(protocols=("foo", "mqtt"))
        self.assertEqual(h["sec-websocket-protocol"], "mqtt")
        self.assertEqual(h["upgrade"].lower(), "websocket")

    def test_mqttv31_subprotocol(self):
        s = self.wssock()
        self.assertEqual(s.handshake(protocols=("mqttv3.1",))["sec-websocket-protocol"],
                         "mqttv3.1")

    def refused(self, status, timeout=5.0, **kw):
        s = self.wssock()
        data, _key = s.request(**kw)
        s.sock.sendall(data)
        got, headers, body = s.read_response(timeout)
        self.assertEqual(got, status, body)
        self.assertEqual(headers.get("connection"), "close")
        self.assertIsNone(s.recv_frame(timeout), "the connection closes after the answer")
        return headers

    def test_not_an_upgrade_is_426(self):
        s = self.wssock()
        s.sock.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = s.read_response()
        self.assertEqual(status, 426)
        self.assertEqual(headers.get("upgrade"), "websocket")

    def test_wrong_version_is_426_naming_13(self):
        h = self.refused(426, version="8")
        self.assertEqual(h.get("sec-websocket-version"), "13")

    def test_missing_key_and_bad_key_are_400(self):
        s = self.wssock()
        s.sock.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")
        self.assertEqual(s.read_response()[0], 400)
        self.refused(400, key="c2hvcnQ=")  # base64 of 5 bytes, not 16

    def test_no_mqtt_subprotocol_is_400(self):
        self.refused(400, protocols=("chat",))
        self.refused(400, protocols=())

    def test_post_is_405(self):
        self.assertEqual(self.refused(405, method="POST").get("allow"), "GET")

    def test_mqtt_bytes_on_a_websocket_listener_are_400(self):
        s = self.wssock()
        s.sock.sendall(encode_connect("plain", True, 60))
        self.assertEqual(s.read_response()[0], 400)
        self.assertIsNone(s.recv_frame())

    def test_upgrade_split_byte_by_byte(self):
        s = self.wssock()
        data, key = s.request()
        for i in range(len(data)):
            s.sock.sendall(data[i:i + 1])
            if i % 40 == 0:
                time.sleep(0.002)
        status, _h, _b = s.read_response()
        self.assertEqual(status, 101)

    def test_frames_right_after_the_request(self):
        """A client that sends its CONNECT in the same segment as the upgrade request."""
        s = self.wssock()
        data, _key = s.request()
        s.sock.sendall(data + frame_bytes(OP_BINARY, encode_connect("eager", True, 60)))
        self.assertEqual(s.read_response()[0], 101)
        f = s.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_BINARY, b"\x20\x02\x00\x00"))


    def test_request_cut_in_two_with_frames_behind_it(self):
        """The head gathered across receives; the frame after it, in the same segment as the
        head's end, is taken as a frame."""
        s = self.wssock()
        data, _key = s.request()
        s.sock.sendall(data[:30])
        time.sleep(0.05)
        s.sock.sendall(data[30:] + frame_bytes(OP_BINARY, encode_connect("cut", True, 60)))
        self.assertEqual(s.read_response()[0], 101)
        self.assertEqual(s.recv_frame().payload, b"\x20\x02\x00\x00")


class HandshakeLimitTest(WsCase):
    extra_lines = ("websockets_headers_size 1024",)

    def test_head_over_the_limit_is_431(self):
        s = self.wssock()
        data, _key = s.request(extra=("Cookie: " + "x" * 2000,))
        s.sock.sendall(data)
        self.assertEqual(s.read_response()[0], 431)
        self.assertIsNone(s.recv_frame())
        self.assert_broker_fine()

    def test_head_under_the_limit_passes(self):
        s = self.wssock()
        s.handshake(extra=("Cookie: " + "x" * 700,))

    def test_unfinished_handshake_is_closed_by_the_connect_timeout(self):
        s = self.wssock()
        s.sock.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        s.sock.settimeout(CONNECT_TIMEOUT_S + 5)
        data = s.sock.recv(100)
        self.assertEqual(data, b"")
        self.assertGreater(time.monotonic() - start, CONNECT_TIMEOUT_S - 2)


class FramingTest(WsCase):
    extra_lines = ("max_packet_size 100000",)

    def test_pubsub_over_websockets(self):
        sub = self.wsraw()
        self.assertEqual(sub.connect(unique_id()).rc, 0)
        self.assertEqual(sub.subscribe(("ws/t", 1)), [1])
        pub = self.raw_connected()
        pub.send(encode_publish("ws/t", b"from tcp", qos=1, pid=7))
        p = sub.expect(PUBLISH)
        self.assertEqual((p.topic, p.payload, p.qos), ("ws/t", b"from tcp", 1))

    def test_packet_split_across_frames_and_receives(self):
        s = self.upgraded()
        connect_pkt = encode_connect("splitter", True, 60)
        # A fragmented message (binary + continuations), each frame's header cut in two.
        parts = [connect_pkt[:3], connect_pkt[3:9], connect_pkt[9:]]
        ops = [(OP_BINARY, False), (OP_CONT, False), (OP_CONT, True)]
        for part, (op, fin) in zip(parts, ops):
            fb = frame_bytes(op, part, fin=fin)
            s.sock.sendall(fb[:1])
            time.sleep(0.01)
            s.sock.sendall(fb[1:])
        f = s.recv_frame()
        self.assertEqual(f.payload, b"\x20\x02\x00\x00")
        # A SUBSCRIBE spread over three separate (unfragmented) frames.
        sub = encode_subscribe(1, [("split/t", 0)])
        for i in range(len(sub)):
            s.send_frame(OP_BINARY, sub[i:i + 1])
        f = s.recv_frame()
        self.assertEqual(f.payload[0], SUBACK << 4)

    def test_several_packets_in_one_frame(self):
        s = self.upgraded()
        s.sock.sendall(frame_bytes(OP_BINARY, encode_connect("many", True, 60)
                                   + encode_subscribe(1, [("many/t", 0)])
                                   + encode_publish("many/t", b"x" * 300)
                                   + encode_pingreq()))
        got = b""
        deadline = time.monotonic() + 5
        kinds = []
        while len(kinds) < 4 and time.monotonic() < deadline:
            f = s.recv_frame()
            self.assertEqual(f.opcode, OP_BINARY)
            got += f.payload
            while len(got) >= 2:
                n, mult, i = 0, 1, 1
                while got[i] & 0x80:
                    n += (got[i] & 0x7F) * mult
                    mult *= 128
                    i += 1
                n += got[i] * mult
                if len(got) < i + 1 + n:
                    break
                kinds.append(got[0] >> 4)
                got = got[i + 1 + n:]
        self.assertEqual(kinds, [2, SUBACK, PUBLISH, PINGRESP])

    def test_ping_is_answered_with_its_payload(self):
        s = self.upgraded()
        s.send_frame(OP_PING, b"are you there")
        f = s.recv_frame()
        self.assertEqual((f.opcode, f.payload, f.masked), (OP_PONG, b"are you there", False))
        s.send_frame(OP_PONG, b"unsolicited")  # ignored, as RFC 6455 5.5.3 allows
        s.sendall(encode_connect("pinger", True, 60))
        self.assertEqual(s.recv_frame().payload, b"\x20\x02\x00\x00")

    def test_close_frame_is_answered_and_publishes_the_will(self):
        watcher = self.raw_connected()
        self.assertEqual(watcher.subscribe(("will/t", 0)), [0])
        c = self.wsraw()
        self.assertEqual(c.connect("willer", will=("will/t", b"gone", 0, False)).rc, 0)
        c.ws.send_frame(OP_CLOSE, struct.pack(">H", 1001) + b"bye")
        self.assert_close(c.ws, 1001)
        self.assertEqual(watcher.expect(PUBLISH).payload, b"gone")

    def test_disconnect_then_close_frame_from_the_broker(self):
        c = self.wsraw()
        self.assertEqual(c.connect("polite").rc, 0)
        c.send(b"\xe0\x00")  # DISCONNECT
        self.assert_close(c.ws, 1000)

    def test_broker_shutdown_closes_with_1001(self):
        c = self.wsraw()
        self.assertEqual(c.connect("leaving").rc, 0)
        self.broker.stop()
        self.assert_close(c.ws, 1001)

    def bad_frame(self, data, code):
        s = self.upgraded()
        s.sendall(encode_connect(unique_id(), True, 60))
        self.assertEqual(s.recv_frame().payload, b"\x20\x02\x00\x00")
        s.sock.sendall(data)
        self.assert_close(s, code)

    def test_unmasked_frame_closes_with_1002(self):
        self.bad_frame(frame_bytes(OP_BINARY, encode_pingreq(), mask=False), 1002)
        self.assert_broker_fine()

    def test_reserved_bits_close_with_1002(self):
        self.bad_frame(frame_bytes(OP_BINARY, encode_pingreq(), rsv=4), 1002)

    def test_reserved_opcodes_close_with_1002(self):
        self.bad_frame(frame_bytes(3, b"x"), 1002)
        self.bad_frame(frame_bytes(0xB, b"x"), 1002)

    def test_text_frame_closes_with_1003(self):
        self.bad_frame(frame_bytes(OP_TEXT, b"\xc0\x00"), 1003)

    def test_control_frame_over_125_bytes_closes_with_1002(self):
        self.bad_frame(frame_bytes(OP_PING, b"p" * 126), 1002)

    def test_fragmented_control_frame_closes_with_1002(self):
        self.bad_frame(frame_bytes(OP_PING, b"p", fin=False), 1002)

    def test_continuation_without_a_message_closes_with_1002(self):
        self.bad_frame(frame_bytes(OP_CONT, encode_pingreq()), 1002)

    def test_new_message_inside_a_fragmented_one_closes_with_1002(self):
        self.bad_frame(frame_bytes(OP_BINARY, b"\xc0", fin=False)
                       + frame_bytes(OP_BINARY, b"\x00"), 1002)

    def test_oversize_frame_closes_with_1009(self):
        # Only the header: the broker refuses the length before any payload arrives.
        self.bad_frame(frame_bytes(OP_BINARY, b"", length=1 << 40)[:14], 1009)
        self.assert_broker_fine()

    def test_bad_close_frames(self):
        self.bad_frame(frame_bytes(OP_CLOSE, b"\x03"), 1002)  # one byte
        self.bad_frame(frame_bytes(OP_CLOSE, struct.pack(">H", 1005)), 1002)  # reserved code
        self.bad_frame(frame_bytes(OP_CLOSE, struct.pack(">H", 1000) + b"\xff"), 1007)

    def test_large_message_both_ways(self):
        """A 90 kB PUBLISH sent in 1 kB frames, received whole (one frame per flush)."""
        sub = self.wsraw()
        self.assertEqual(sub.connect(unique_id()).rc, 0)
        self.assertEqual(sub.subscribe(("big/t", 0)), [0])
        s = self.upgraded()
        s.sendall(encode_connect(unique_id(), True, 60))
        self.assertEqual(s.recv_frame().payload, b"\x20\x02\x00\x00")
        payload = os.urandom(90000)
        pkt = encode_publish("big/t", payload)
        for i in range(0, len(pkt), 1000):
            s.send_frame(OP_BINARY, pkt[i:i + 1000])
        p = sub.expect(PUBLISH, timeout=10)
        self.assertEqual(p.payload, payload)

    def test_mqtt_packet_over_max_packet_size_is_refused(self):
        s = self.upgraded()
        s.sendall(encode_connect(unique_id(), True, 60))
        self.assertEqual(s.recv_frame().payload, b"\x20\x02\x00\x00")
        pkt = encode_publish("big/t", b"x" * 200000)
        for i in range(0, len(pkt), 10000):  # frames under the limit, the packet over it
            s.send_frame(OP_BINARY, pkt[i:i + 10000])
        self.assert_close(s, 1000)

    def test_batching_many_packets_per_frame(self):
        """Messages due to a WebSocket subscriber in one loop iteration leave as one frame."""
        s = self.upgraded()
        s.sendall(encode_connect(unique_id(), True, 60) + encode_subscribe(1, [("b/t", 0)]))
        got = b""
        while len(got) < 9:
            got += s.recv_frame().payload
        pub = self.raw_connected()
        n = 2000
        pub.send(b"".join(encode_publish("b/t", b"%06d" % i) for i in range(n)))
        frames, pubs, buf = 0, 0, b""
        one = len(encode_publish("b/t", b"000000"))
        while pubs < n:
            f = s.recv_frame(10)
            self.assertIsNotNone(f)
            frames += 1
            buf += f.payload
            pubs += len(buf) // one
            buf = buf[len(buf) // one * one:]
        self.assertLess(frames, n / 10, "%d frames for %d messages" % (frames, n))


@unittest.skipUnless(have_mqttjs(), "MQTT.js (node-mqtt) is not installed")
class MqttJsTest(WsCase):
    def test_echo_qos_0_1_2(self):
        for qos in (0, 1, 2):
            p = self.mqttjs("ws://127.0.0.1:%d/mqtt" % self.ws.port, "echo", "js/%d" % qos, qos,
                            50)
            self.assertEqual(p.wait(30), 0, p.output())
            self.assertIn("ok 50", p.output())

    def test_mqttjs_gets_starling_pub_and_publishes_to_tcp(self):
        sub = self.mqttjs("ws://127.0.0.1:%d/mqtt" % self.ws.port, "sub", "js/x", 1, 1)
        sub.wait_line(lambda l: l == "ready", 15)
        subprocess.run([tool("starling-pub"), "-h", "127.0.0.1", "-p", str(self.broker.port),
                        "-t", "js/x", "-q", "1", "-m", "from starling-pub"], check=True,
                       timeout=10)
        self.assertEqual(sub.wait(15), 0, sub.output())
        self.assertIn("from starling-pub", sub.lines())
        tcp = self.client()
        got = self.collect(tcp, "js/y", 2)
        pub = self.mqttjs("ws://127.0.0.1:%d/mqtt" % self.ws.port, "pub", "js/y", 2, 5)
        self.assertEqual(pub.wait(20), 0, pub.output())
        self.wait_messages(got, 5)
        self.assertEqual([m.payload for m in got], [b"m%d" % i for i in range(5)])


class PahoWebsocketsTest(WsCase):
    def test_paho_qos_0_1_2(self):
        sub = self.client(broker=self.ws, transport="websockets")
        tcp = self.client()
        for qos in (0, 1, 2):
            got = self.collect(sub, "paho/%d" % qos, qos)
            for i in range(20):
                self.publish(tcp, "paho/%d" % qos, b"p%d" % i, qos)
            self.wait_messages(got, 20)
            self.assertEqual([m.payload for m in got], [b"p%d" % i for i in range(20)])
        pub = self.client(broker=self.ws, transport="websockets")
        got = self.collect(tcp, "paho/back", 2)
        self.publish(pub, "paho/back", b"x" * 70000, 2)
        self.wait_messages(got, 1)
        self.assertEqual(got[0].payload, b"x" * 70000)


@unittest.skipIf(KIND == "mosquitto", "Starling's WebSocket listener")
class WssTest(WsCase):
    """certfile/keyfile on the WebSocket listener: wss://."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-wss-")
        cls.certs = Certs(os.path.join(cls.tmp, "ca"))
        cls.certs.make_server("IP:127.0.0.1,DNS:localhost")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.ws_lines = ("certfile " + self.certs.server, "keyfile " + self.certs.server_key)
        super().setUp()

    def test_raw_client_over_wss(self):
        c = WsRawClient(self.ws.port, tls_ca=self.certs.ca)
        self.defer(c.close)
        self.assertEqual(c.connect(unique_id()).rc, 0)
        self.assertEqual(c.subscribe(("wss/t", 2)), [2])
        pub = self.raw_connected()
        pub.send(encode_publish("wss/t", b"secret" * 5000, qos=1, pid=3))
        self.assertEqual(c.expect(PUBLISH).payload, b"secret" * 5000)
        c.ws.send_frame(OP_PING, b"tls ping")
        c.send(b"\xe0\x00")
        frames = []
        while True:
            f = c.ws.recv_frame()
            if f is None:
                break
            frames.append(f)
        self.assertEqual([(f.opcode, f.payload[:8]) for f in frames if f.opcode != OP_BINARY],
                         [(OP_PONG, b"tls ping"), (OP_CLOSE, b"\x03\xe8")])

    def test_bad_frame_over_wss_closes_with_1002(self):
        s = self.upgraded(tls_ca=self.certs.ca)
        s.sock.sendall(frame_bytes(OP_BINARY, b"\xc0\x00", mask=False))
        self.assert_close(s, 1002)

    def test_plain_http_on_wss_port_fails_tls_only(self):
        s = socket.create_connection(("127.0.0.1", self.ws.port), timeout=5)
        self.defer(s.close)
        s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(1000)
        except ConnectionResetError:
            data = b""
        self.assertNotIn(b"HTTP/1.1", data)

    def test_paho_over_wss(self):
        sub = self.client(broker=self.ws, transport="websockets", tls={"ca_certs": self.certs.ca})
        got = self.collect(sub, "wss/paho", 1)
        tcp = self.client()
        for i in range(10):
            self.publish(tcp, "wss/paho", b"w%d" % i, 1)
        self.wait_messages(got, 10)

    def test_bench_over_wss(self):
        args = (tool("starling-bench"), "fanout", "-S", 3, "-q", 1, "-r", 1000, "-d", 1, "-w",
                0.2, "-p", self.ws.port, "--ws", "--cafile", self.certs.ca, "--json")
        res = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        r = json.loads(res.stdout.decode().strip().splitlines()[-1])
        self.assertEqual((r["ok"], r["loss"]), (True, 0), r)
        self.assertEqual(r["delivered"], r["sent"] * 3, r)

    @unittest.skipUnless(have_mqttjs(), "MQTT.js (node-mqtt) is not installed")
    def test_mqttjs_over_wss_qos_0_1_2(self):
        for qos in (0, 1, 2):
            p = self.mqttjs("wss://localhost:%d/mqtt" % self.ws.port, "echo", "wss/%d" % qos,
                            qos, 30, ca=self.certs.ca)
            self.assertEqual(p.wait(30), 0, p.output())
            self.assertIn("ok 30", p.output())


class BenchWsTest(WsCase):
    """starling-bench --ws: short, rate-limited runs with exact counts (test_bench_smoke's rule)."""

    def bench(self, *args):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        cmd = [tool("starling-bench")] + [str(a) for a in args] + [
            "-p", str(self.ws.port), "--ws", "--json", "--setup-timeout", "20"]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=60, env=env)
        self.assertEqual(res.returncode, 0, "%r\n%s\n%s" % (cmd, res.stdout.decode(),
                                                         res.stderr.decode()))
        r = json.loads(res.stdout.decode().strip().splitlines()[-1])
        self.assertTrue(r["ok"], r)
        self.assertGreater(r["sent"], 0, r)
        self.assertEqual(r["delivered"], r["expected"], r)
        self.assertEqual((r["loss"], r["duplicates"], r["out_of_order"], r["invalid"]),
                         (0, 0, 0, 0), r)
        return r

    def test_fanout_qos0_over_ws(self):
        r = self.bench("fanout", "-S", 5, "-r", 2000, "-d", 1, "-w", 0.2)
        self.assertEqual(r["expected"], r["sent"] * 5, r)

    def test_fanin_qos2_mqtt5_over_ws(self):
        r = self.bench("fanin", "-P", 4, "-q", 2, "-V", 5, "-r", 1000, "-d", 1, "-w", 0.2)
        self.assertEqual(r["acked"], r["sent_total"], r)

    def test_persistent_is_refused_with_ws(self):
        res = subprocess.run([tool("starling-bench"), "fanout", "--ws", "--persistent"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"--ws", res.stderr)


@unittest.skipIf(KIND == "mosquitto", "starlingd's configuration errors")
class ConfigTest(unittest.TestCase):
    def test_bad_protocol_names_file_and_line(self):
        b = Broker(["listener %d 127.0.0.1" % free_port(), "protocol http"])
        with self.assertRaises(BrokerError) as cm:
            b.start()
        self.assertRegex(str(cm.exception), r"broker\.conf:\d+: protocol: expected mqtt or "
                                            r"websockets, got \"http\"")


if __name__ == "__main__":
    unittest.main()
