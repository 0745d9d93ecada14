"""Prometheus metrics: `metrics_listener PORT [ADDR]` answers GET /metrics in the text format
0.0.4, served from the workers' own loops.

Real traffic (mosquitto_pub, paho) moves the counters; Python's urllib and raw sockets scrape;
`promtool check metrics` (Debian's prometheus package) checks the output; Debian's Prometheus
server scrapes a running starlingd and a counter is read back through its HTTP API. HTTP
clients that are malformed, slow or too many get their answer (or the close) without
disturbing MQTT clients. On 1 and on 4 workers (run.py --workers).
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import (MOSQUITTO_PUB, WORKERS, BrokerTestCase, PacketTypes, Properties,
                     client_cmd, encode_publish, free_port, starling_only, unique_id)

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEAD_TIMEOUT_S = 10  # src/broker/metrics_conn.c: METRICS_HEAD_MS


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value} of a text exposition, and {name: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        labels = {}
        if "{" in series:
            name, rest = series.split("{", 1)
            rest = rest[:-1]
            while rest:
                key, rest = rest.split("=", 1)
                assert rest[0] == '"', line
                i, val = 1, ""
                while rest[i] != '"':
                    if rest[i] == "\\":
                        val += {"n": "\n", "\\": "\\", '"': '"'}[rest[i + 1]]
                        i += 2
                    else:
                        val += rest[i]
                        i += 1
                labels[key] = val
                rest = rest[i + 1:].lstrip(",")
        else:
            name = series
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples, types


@starling_only("Mosquitto has no Prometheus metrics")
class MetricsCase(BrokerTestCase):
    extra_lines = ()

    def setUp(self):
        self.mport = free_port()
        self.config_lines = ["metrics_listener %d 127.0.0.1" % self.mport] + list(
            self.extra_lines)
        super().setUp()
        self.url = "http://127.0.0.1:%d/metrics" % self.mport

    # --- helpers ---------------------------------------------------------------------------
    def scrape(self):
        """(body text, response) of GET /metrics through urllib."""
        with urllib.request.urlopen(self.url, timeout=5) as r:
            return r.read().decode("utf-8"), r

    def metrics(self):
        return parse_exposition(self.scrape()[0])[0]

    def value(self, name, **labels):
        return self.metrics().get((name, frozenset(labels.items())))

    def wait_value(self, pred, name, timeout=5.0, **labels):
        """Scrapes until pred(value of name{labels}) holds (snapshots lag up to 250 ms)."""
        last = [None]

        def check():
            last[0] = self.value(name, **labels)
            return last[0] is not None and pred(last[0])

        self.wait_for(check, timeout, "%s%r never satisfied the condition (last %r)"
                      % (name, labels, last[0]))
        return last[0]

    def raw_http(self, data, timeout=5.0):
        """Sends bytes to the metrics port; returns everything received until the close."""
        s = socket.create_connection(("127.0.0.1", self.mport), timeout=timeout)
        self.defer(s.close)
        s.sendall(data)
        return self.read_until_close(s, timeout)

    def read_until_close(self, s, timeout):
        got = b""
        deadline = time.monotonic() + timeout
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return got  # closed with unread bytes: a reset is a close too
            if not chunk:
                return got
            got += chunk
        self.fail("metrics connection still open after %.1f s (got %r)" % (timeout, got[:200]))

    def promtool(self, text):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.returncode, r.stdout.decode("utf-8", "replace")


class TestScrape(MetricsCase):
    def test_counters_move_with_traffic(self):
        """QoS 0, 1 and 2 from mosquitto_pub to a paho subscriber: the by-QoS counters, bytes,
        connections and subscriptions move, and the output passes promtool."""
        base = self.metrics()
        topic = "m/" + unique_id()
        sub = self.client()
        got = self.collect(sub, topic + "/#", 2)
        for qos in (0, 1, 2):
            for i in range(3):
                r = subprocess.run(client_cmd(MOSQUITTO_PUB, self.broker, "-t",
                                              "%s/%d" % (topic, qos), "-m", "x" * (10 + qos),
                                              "-q", qos), timeout=10)
                self.assertEqual(r.returncode, 0)
        self.wait_messages(got, 9)

        def grown(name, by, **labels):
            before = base.get((name, frozenset(labels.items())), 0)
            self.wait_value(lambda v: v >= before + by, name, **labels)

        for qos in (0, 1, 2):
            grown("starling_publish_received_total", 3, qos=str(qos))
            grown("starling_publish_received_payload_bytes_total", 3 * (10 + qos), qos=str(qos))
            grown("starling_publish_sent_total", 3, qos=str(qos))
            grown("starling_publish_sent_payload_bytes_total", 3 * (10 + qos), qos=str(qos))
        listener = "127.0.0.1:%d" % self.broker.port
        grown("starling_connections_accepted_total", 10, listener=listener)
        grown("starling_received_bytes_total", 100)
        grown("starling_sent_bytes_total", 50)
        self.wait_value(lambda v: v >= 1, "starling_subscriptions")
        self.wait_value(lambda v: v >= 1, "starling_connections")
        self.wait_value(lambda v: v >= 1, "starling_metrics_requests_total")
        text, resp = self.scrape()
        self.assertEqual(resp.headers["Content-Type"], CONTENT_TYPE)
        rc, out = self.promtool(text)
        self.assertEqual(rc, 0, "promtool check metrics:\n%s" % out)
        self.assertEqual(out.strip(), "", "promtool lint output:\n%s" % out)

    def test_format_and_workers(self):
        """HELP and TYPE for every family, counters end in _total, one series per worker, a
        cumulative loop histogram whose +Inf bucket is its _count."""
        self.assert_broker_works()
        # Every worker has published a snapshot (its first housekeeping pass, 250 ms).
        self.wait_for(lambda: all(
            v > 0 for k_, v in self.metrics().items()
            if k_[0] == "starling_worker_loop_seconds_count"), 5, "a worker never counted")
        text, _ = self.scrape()
        samples, types = parse_exposition(text)
        helps = {l.split(" ", 3)[2] for l in text.splitlines() if l.startswith("# HELP ")}
        self.assertEqual(set(types), helps)
        for name, kind in types.items():
            self.assertTrue(name.startswith("starling_"), name)
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)
        workers = int(samples[("starling_workers", frozenset())])
        if WORKERS:
            self.assertEqual(workers, WORKERS)
        for k in range(workers):
            w = str(k)
            for name in ("starling_worker_loop_iterations_total",
                         "starling_worker_completions_total", "starling_worker_sends_total",
                         "starling_worker_recv_enobufs_total",
                         "starling_worker_publish_sent_total", "starling_worker_connections"):
                self.assertIn((name, frozenset({"worker": w}.items())), samples, name)
            buckets = sorted(
                (float(dict(k_[1])["le"]), v) for k_, v in samples.items()
                if k_[0] == "starling_worker_loop_seconds_bucket" and dict(k_[1])["worker"] == w)
            self.assertEqual(buckets[-1][0], float("inf"))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "buckets not cumulative")
            count = samples[("starling_worker_loop_seconds_count", frozenset({"worker": w}.items()))]
            self.assertEqual(counts[-1], count)
            self.assertGreater(count, 0)
            self.assertGreater(
                samples[("starling_worker_loop_seconds_sum", frozenset({"worker": w}.items()))], 0)
        # The worker that served the scrape counted iterations with completions.
        self.assertGreater(sum(v for k_, v in samples.items()
                               if k_[0] == "starling_worker_loop_iterations_total"), 0)

    def test_counters_never_go_back(self):
        """Scrapes land on any worker (SO_REUSEPORT); each reads every worker's snapshot, so a
        counter seen once is never seen smaller."""
        pub = self.client()
        seen = {}
        for i in range(30):
            self.publish(pub, "m/back", b"x", 1)
            samples, types = parse_exposition(self.scrape()[0])
            for key, v in samples.items():
                if types.get(key[0]) == "counter" or key[0].endswith(("_bucket", "_count")):
                    self.assertGreaterEqual(v, seen.get(key, 0), "%s went back" % (key,))
                    seen[key] = v


class TestDrops(MetricsCase):
    extra_lines = ("max_queued_messages 3",)

    def test_queue_full_and_queued(self):
        """An offline persistent session at QoS 1: 3 deliveries queued (the gauge), the other 7
        dropped for queue_full."""
        cid = unique_id("q")
        sub = self.client(cid, clean_session=False)
        self.subscribe(sub, "m/q", 1)
        sub.disconnect()
        self.wait_for(lambda: sub.disconnected.is_set(), 5)
        pub = self.client()
        for i in range(10):
            self.publish(pub, "m/q", b"%d" % i, 1)
        self.wait_value(lambda v: v == 3, "starling_queued_messages")
        self.wait_value(lambda v: v == 7, "starling_dropped_messages_total", cause="queue_full")
        back = self.client(cid, clean_session=False)
        self.wait_messages(back.messages, 3)
        self.wait_value(lambda v: v == 0, "starling_queued_messages")

    def test_expired(self):
        """MQTT 5 message expiry: a message that expired while its subscriber was offline is
        not delivered, and counted."""
        cid = unique_id("e")
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 60
        sub = self.client5(cid, clean_start=True, properties=props)
        self.subscribe(sub, "m/e", 1)
        sub.disconnect()
        self.wait_for(lambda: sub.disconnected.is_set(), 5)
        pub = self.client5()
        pp = Properties(PacketTypes.PUBLISH)
        pp.MessageExpiryInterval = 1
        self.publish(pub, "m/e", b"soon gone", 1, properties=pp)
        time.sleep(1.6)
        back = self.client5(cid, clean_start=False, properties=props)
        self.wait_value(lambda v: v >= 1, "starling_dropped_messages_total", cause="expired")
        self.assertEqual(len(back.messages), 0)


    def test_too_large(self):
        """An MQTT 5 subscriber's Maximum Packet Size: a larger message is not sent to it
        [MQTT-3.1.2-25], and counted as too_large."""
        props = Properties(PacketTypes.CONNECT)
        props.MaximumPacketSize = 100
        sub = self.client5(properties=props)
        got = self.collect(sub, "m/big", 0)
        pub = self.client()
        self.publish(pub, "m/big", b"x" * 500, 0)
        self.publish(pub, "m/big", b"small", 0)
        self.wait_messages(got, 1)
        self.assertEqual(got[0].payload, b"small")
        self.wait_value(lambda v: v == 1, "starling_dropped_messages_total", cause="too_large")


class TestOutputDrops(MetricsCase):
    extra_lines = ("max_output_bytes 65536", "client_send_buffer 4096")

    def test_output_full(self):
        """A QoS 0 subscriber that never reads: past max_output_bytes its deliveries are
        dropped for output_full, and the output memory gauge shows what it holds."""
        from test_output_bounds import stuck_subscriber
        s = stuck_subscriber(self.broker.port, unique_id("stuck"), "m/out")
        self.defer(s.close)
        pub = self.raw_connected()
        for i in range(2000):
            pub.send(encode_publish("m/out", b"%06d" % i + b"x" * 506, 0))
        self.wait_value(lambda v: v >= 500, "starling_dropped_messages_total",
                        cause="output_full", timeout=10)
        self.wait_value(lambda v: v > 0, "starling_output_memory_bytes")


class TestPersistence(MetricsCase):
    extra_lines = ("persistence true",)

    def setUp(self):
        self.extra_lines = ("persistence true",
                            "persistence_location " + tempfile.mkdtemp(prefix="starling-mp-"))
        self.addCleanup(shutil.rmtree, self.extra_lines[1].split(" ", 1)[1], True)
        super().setUp()

    def test_persistence_figures(self):
        pub = self.client()
        self.publish(pub, "m/p", b"kept", 1, retain=True)
        self.wait_value(lambda v: v >= 1, "starling_persistence_records_total")
        self.wait_value(lambda v: v >= 1, "starling_persistence_commits_total")
        self.wait_value(lambda v: v > 0, "starling_persistence_written_bytes_total")
        self.wait_value(lambda v: v >= 1, "starling_retained_messages")
        rc, out = self.promtool(self.scrape()[0])
        self.assertEqual(rc, 0, out)


class TestHttp(MetricsCase):
    def test_paths_methods_versions(self):
        for path, code in (("/", 404), ("/metrics/", 404), ("/metricsx", 404)):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.mport, path), timeout=5)
            self.assertEqual(e.exception.code, code, path)
        req = urllib.request.Request(self.url, data=b"x=1", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 405)
        self.assertEqual(e.exception.headers["Allow"], "GET, HEAD")
        # A query string is the path's business only.
        with urllib.request.urlopen(self.url + "?x=1", timeout=5) as r:
            self.assertEqual(r.status, 200)
        # HEAD: the GET's headers, no body.
        c = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=5)
        self.defer(c.close)
        c.request("HEAD", "/metrics")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.read(), b"")
        self.assertGreater(int(r.headers["Content-Length"]), 1000)
        for line, code in ((b"GET /metrics HTTP/2.0\r\nHost: h\r\n\r\n", b"505"),
                           (b"GET /metrics HTTP/1.1\r\n\r\n", b"400"),
                           (b"GET /metrics\r\n\r\n", b"400"),
                           (b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\n\n", b"400")):
            got = self.raw_http(line)
            self.assertTrue(got.startswith(b"HTTP/1.1 " + code), (line, got[:80]))
            self.assertIn(b"Connection: close\r\n", got)

    def test_keep_alive_and_pipelining(self):
        """HTTP/1.1 keeps the connection for the next request (several on one socket, also
        pipelined in one send); HTTP/1.0 and `Connection: close` close after the response."""
        c = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=5)
        self.defer(c.close)
        for _ in range(3):
            c.request("GET", "/metrics")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn(b"starling_workers", r.read())
        sock = c.sock
        c.request("GET", "/metrics")
        c.getresponse().read()
        self.assertIs(c.sock, sock, "the connection was not kept")
        got = self.raw_http(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                            b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                            b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertEqual(got.count(b"HTTP/1.1 200 OK\r\n"), 2)
        self.assertEqual(got.count(b"HTTP/1.1 404 Not Found\r\n"), 1)
        got = self.raw_http(b"GET /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"))
        head, body = got.split(b"\r\n\r\n", 1)
        length = int([l for l in head.split(b"\r\n") if l.startswith(b"Content-Length:")][0]
                     .split(b":")[1])
        self.assertEqual(len(body), length)

    def test_oversized_head(self):
        got = self.raw_http(b"GET /metrics HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 9000)
        self.assertTrue(got.startswith(b"HTTP/1.1 431 "), got[:80])

    def test_bad_clients_do_not_disturb_mqtt(self):
        """Slow, half-sent, garbage and surplus HTTP clients on the metrics port while MQTT
        traffic flows: every MQTT message arrives in order, scrapes are still answered (at the
        per-worker bound the oldest idle connection makes room), and every one of them is
        closed within the head bound."""
        topic = "m/" + unique_id()
        sub = self.client()
        got = self.collect(sub, topic, 1)
        pub = self.client()
        bad = []
        start = time.monotonic()
        for i in range(40):  # more than the per-worker bound of 16
            s = socket.create_connection(("127.0.0.1", self.mport), timeout=5)
            self.defer(s.close)
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHo" if i % 2 else
                          os.urandom(100).replace(b"\n", b"x"))
            except OSError:
                pass
            bad.append(s)
        for i in range(200):
            self.publish(pub, topic, b"%d" % i, 1)
            if i % 20 == 0:
                try:
                    bad[-1].send(b"s")  # a trickle: the head never ends
                except OSError:
                    pass
        self.wait_messages(got, 200)
        self.assertEqual([int(m.payload) for m in got.snapshot()], list(range(200)))
        for _ in range(10):
            text, _ = self.scrape()
            self.assertIn("starling_workers", text)
        for s in bad:
            left = HEAD_TIMEOUT_S + 3 - (time.monotonic() - start)
            self.read_until_close(s, max(left, 0.5))
        self.assertLess(time.monotonic() - start, HEAD_TIMEOUT_S + 3)
        self.assert_broker_works()


def _http_get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK),
                     "no %s (tools/deps.sh installs Debian's prometheus)" % PROMETHEUS)
class TestPrometheusServer(MetricsCase):
    def start_prometheus(self):
        tmp = tempfile.mkdtemp(prefix="starling-prom-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: starling\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % self.mport)
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([PROMETHEUS, "--config.file=" + conf,
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port,
                                 "--log.level=warn"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=tmp)

        def stop():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)

        self.defer(stop)
        base = "http://127.0.0.1:%d" % port

        def ready():
            if proc.poll() is not None:
                with open(os.path.join(tmp, "prometheus.log"), "rb") as f:
                    self.fail("prometheus exited: %s" % f.read().decode()[-2000:])
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
                    return r.status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        self.wait_for(ready, 30, "prometheus never became ready")
        return base

    def query(self, base, expr):
        out = _http_get_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        self.assertEqual(out["status"], "success", out)
        return out["data"]["result"]

    def test_prometheus_scrapes_starling(self):
        base = self.start_prometheus()
        pub = self.client()
        for i in range(25):
            self.publish(pub, "m/prom", b"x", 1)

        last = [None]

        def scraped():
            res = self.query(base, 'sum(starling_publish_received_total{qos="1"})')
            last[0] = res
            return res and float(res[0]["value"][1]) >= 25

        self.wait_for(scraped, 30, "Prometheus never saw 25 QoS 1 publishes (last %r)" % last)
        up = self.query(base, 'up{job="starling"}')
        self.assertEqual(float(up[0]["value"][1]), 1.0)
        # The per-worker histogram arrives as such: a quantile can be computed from it.
        self.wait_for(lambda: self.query(
            base, "histogram_quantile(0.5, sum by (le) (rate(starling_worker_loop_seconds_bucket"
                  "[5s])))"), 30, "no loop-time quantile")
        targets = _http_get_json(base + "/api/v1/targets")["data"]["activeTargets"]
        self.assertEqual([t["health"] for t in targets], ["up"], targets)


if __name__ == "__main__":
    unittest.main()
