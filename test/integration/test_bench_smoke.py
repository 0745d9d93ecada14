"""starling-bench smoke runs: short, rate-limited runs of a few thousand messages against the
broker under test, checking counts exactly and timing never.

Each run is checked from its JSON line: every message stamped in the window is delivered to
every subscriber that should get it (delivered == expected == sent x fan), nothing is lost,
duplicated, out of order or foreign, and every latency sample is accounted for. One test also
counts with an independent paho subscriber, so the bench's own bookkeeping is not the only
witness. Benchmarks proper (bench/compare.sh) never run here.
"""

import json
import os
import re
import subprocess

import paho.mqtt.client as paho

from harness import (SANITIZER_MARKERS, BrokerTestCase, free_port, starling_only, tool,
                     unique_id)

BENCH = tool("starling-bench")
RUN_TIMEOUT_S = 60  # the bench bounds itself far below this; this is the backstop


def bench_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


class BenchSmokeTest(BrokerTestCase):
    def bench(self, *args, expect_rc=0, port=None):
        """Runs starling-bench against the broker; returns its parsed JSON line."""
        cmd = [BENCH] + [str(a) for a in args] + [
            "-p", str(port or self.broker.port), "--json", "--setup-timeout", "20"]
        try:
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT_S, env=bench_env())
        except subprocess.TimeoutExpired:
            self.fail("starling-bench hung: %r" % cmd)
        err = res.stderr.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, err, "sanitizer report:\n" + err)
        self.assertEqual(res.returncode, expect_rc, "starling-bench %r: rc %d\n%s\n%s"
                         % (args, res.returncode, res.stdout.decode(), err))
        lines = res.stdout.decode().strip().splitlines()
        self.assertTrue(lines, "starling-bench printed nothing")
        out = json.loads(lines[-1])
        out["_stderr"] = err
        return out

    def assert_exact(self, r, fan=None):
        """Every window message delivered exactly once to every subscriber it should reach."""
        self.assertTrue(r["ok"], r)
        self.assertGreater(r["sent"], 0, "nothing was published in the window: %r" % r)
        if fan is not None:
            self.assertEqual(r["expected"], r["sent"] * fan, r)
        self.assertEqual(r["delivered"], r["expected"], r)
        self.assertEqual((r["loss"], r["duplicates"], r["out_of_order"], r["invalid"]),
                         (0, 0, 0, 0), r)
        self.assertEqual(r["latency_us"]["count"], r["delivered"], r)

    def test_fanout_qos0(self):
        r = self.bench("fanout", "-S", 5, "-r", 2000, "-d", 1, "-w", 0.2)
        self.assert_exact(r, fan=5)
        self.assertEqual((r["publishers"], r["subscribers"]), (1, 5))
        self.assertNotIn("threads", r)  # one thread: the line reads as it always has

    def test_fanin_qos2_mqtt5(self):
        r = self.bench("fanin", "-P", 4, "-q", 2, "-V", 5, "-r", 1000, "-d", 1, "-w", 0.2)
        self.assert_exact(r, fan=1)
        # Every QoS 2 publish completed its PUBREC/PUBREL/PUBCOMP flow before teardown.
        self.assertEqual(r["acked"], r["sent_total"], r)

    def test_pairs_qos1_against_an_independent_subscriber(self):
        """A paho subscriber on every pair's topic counts what the publishers sent in all."""
        watcher = self.client()
        got = self.collect(watcher, "bench/pairs/+", 1)
        r = self.bench("pairs", "-c", 3, "-q", 1, "-R", 500, "-d", 1, "-w", 0.2, "-s", 64)
        self.assert_exact(r, fan=1)
        self.assertEqual(r["acked"], r["sent_total"], r)
        self.wait_messages(got, r["sent_total"], timeout=10)
        self.assert_no_messages(got, duration=0.2, expected=r["sent_total"])
        self.assertTrue(all(len(m.payload) == 64 for m in got.snapshot()))

    def test_wildcard_filters(self):
        """Exact, '+' and '#' filters: the broker's matching agrees with the bench's count."""
        r = self.bench("wildcard", "-S", 10, "-n", 2000, "-P", 3, "-t", 20, "-r", 1500, "-d", 1,
                       "-w", 0.2)
        self.assert_exact(r)
        self.assertEqual(r["subscriptions"], 2000)
        self.assertGreaterEqual(r["fan"], 1.0)

    def test_shared_group_of_collectors(self):
        """--share: fanin into $share/collectors/...: each message reaches one of the members
        (fan 1), all of them get a share, and an independent paho subscriber (not in the group)
        sees every message once more."""
        watcher = self.client()
        got = self.collect(watcher, "bench/fanin/+", 1)
        r = self.bench("fanin", "-P", 6, "-S", 3, "-q", 1, "-r", 1800, "-d", 1, "-w", 0.2,
                       "--share", "collectors")
        self.assert_exact(r, fan=1)
        self.assertEqual(r["share"], "collectors")
        self.assertGreater(r["per_subscriber_min"], 0, r)
        self.assertLessEqual(r["per_subscriber_max"], r["delivered"], r)
        self.wait_messages(got, r["sent_total"], timeout=10)

    @starling_only("Mosquitto 2.0.11 left 2 to 200 of about 12,000 QoS 1 messages to a shared "
                   "group undelivered, past a 2 s drain, in three saturating runs here")
    def test_shared_group_without_a_rate(self):
        """The flow control of an unlimited run, where a member's gaps are the other members'
        messages, not losses: nothing presumed lost, nothing missing."""
        r = self.bench("fanin", "-P", 4, "-S", 2, "-q", 1, "-d", 0.5, "-w", 0.2,
                       "--outstanding", 400, "--share", "collectors")
        self.assert_exact(r, fan=1)
        self.assertEqual((r["bench"]["gap_lost"], r["bench"]["presumed_lost"]), (0, 0), r)

    def test_share_needs_a_group_name_and_a_scenario_that_has_one(self):
        for args in (["fanin", "--share", "a/b"], ["pairs", "--share", "g"]):
            res = subprocess.run([BENCH] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT_S, env=bench_env())
            self.assertEqual(res.returncode, 2, args)
            self.assertIn(b"--share", res.stderr)

    def test_persistent_sessions_start_clean_and_leave_nothing(self):
        """--persistent (3.1.1): every client connects with clean session 0, after a clean
        connect that discards what an earlier run with the same id left (here a stale session
        with a subscription and queued messages, which would arrive as foreign payloads or a
        session present flag); after the run no session of those ids is left."""
        prefix = unique_id("pers")
        stale = self.client(prefix + "-s0", clean_session=False)
        self.subscribe(stale, "bench/pairs/#", 1)
        stale.disconnect()
        self.wait_for(lambda: stale.disconnected.is_set(), 5, "stale client not disconnected")
        pub = self.client()
        for i in range(5):
            self.publish(pub, "bench/pairs/0", b"stale %d" % i, qos=1)
        r = self.bench("pairs", "-c", 2, "-q", 1, "-R", 300, "-d", 0.5, "-w", 0.2,
                       "--persistent", "--id-prefix", prefix)
        self.assert_exact(r, fan=1)
        self.assertIs(r["persistent"], True, r)
        self.assertEqual(r["acked"], r["sent_total"], r)
        log = self.broker.log_text()
        if "New client connected" in log:  # Starling's and Mosquitto's connection line
            for role in ("s0", "s1", "p0", "p1"):
                self.assertRegex(log, r"as %s \(p\d, c0" % re.escape("%s-%s" % (prefix, role)))
        for role in ("s0", "p1"):
            after = self.client("%s-%s" % (prefix, role), clean_session=False)
            self.assertEqual(after.connack[0], 0, "session %s-%s left behind" % (prefix, role))

    def test_persistent_sessions_mqtt5(self):
        """--persistent with MQTT 5: clean start with a session expiry; QoS 2 in both roles
        (the publishers' inbound QoS 2 state is part of their sessions); nothing left after."""
        prefix = unique_id("pers5")
        r = self.bench("fanin", "-P", 3, "-q", 2, "-V", 5, "-r", 600, "-d", 0.5, "-w", 0.2,
                       "--persistent", "--id-prefix", prefix)
        self.assert_exact(r, fan=1)
        self.assertEqual(r["acked"], r["sent_total"], r)
        for role in ("s0", "p2"):
            after = self.client("%s-%s" % (prefix, role), protocol=paho.MQTTv5,
                                clean_start=False)
            self.assertEqual(after.connack[0], 0, "session %s-%s left behind" % (prefix, role))

    def test_persistent_is_refused_with_tls(self):
        res = subprocess.run([BENCH, "pairs", "--persistent", "--tls"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             timeout=RUN_TIMEOUT_S, env=bench_env())
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"--persistent", res.stderr)

    def test_unlimited_rate_is_bounded(self):
        """Without a rate the bench keeps a bounded number in flight and still loses nothing."""
        r = self.bench("fanout", "-S", 3, "-d", 0.5, "-w", 0.2, "--outstanding", 300)
        self.assert_exact(r, fan=3)

    def test_threads_merge_exact_counts(self):
        """--threads 2: clients alternate between two io_uring loops, so a publisher and its
        subscribers sit on different threads; the merged counts must still be exact, at a fixed
        rate with QoS 2 and under the no-rate flow control that settles across threads."""
        r = self.bench("fanout", "-S", 4, "-q", 2, "-r", 2000, "-d", 1, "-w", 0.2,
                       "--threads", 2)
        self.assert_exact(r, fan=4)
        self.assertEqual(r["threads"], 2)
        self.assertEqual(r["acked"], r["sent_total"], r)
        r = self.bench("pairs", "-c", 3, "-d", 0.5, "-w", 0.2, "--outstanding", 300,
                       "--threads", 2, "--broker-pid", self.broker.pid)
        self.assert_exact(r, fan=1)
        self.assertEqual(r["bench"]["presumed_lost"], 0, r)
        self.assertGreater(r["broker"]["cpu_s"], 0, r)

    def test_connections_and_broker_readings(self):
        r = self.bench("connections", "-c", 200, "-d", 0.3, "--broker-pid", self.broker.pid)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["connections"], 200)
        self.assertGreater(r["broker"]["rss_kb"], 0, r)
        # Set-up is timed and costed (bench/tls.sh reads the handshakes' cost from it).
        self.assertGreater(r["setup_s"], 0, r)
        self.assertAlmostEqual(r["connects_per_s"] * r["setup_s"], 200, delta=2, msg=r)
        self.assertGreaterEqual(r["broker"]["setup_cpu_us_per_conn"], 0, r)
        self.assertGreaterEqual(r["broker"]["cpu_s"], 0, r)

    def test_failures_exit_non_zero_with_a_reason(self):
        closed = free_port()
        r = self.bench("fanout", "-S", 1, "-d", 0.2, expect_rc=1, port=closed)
        self.assertFalse(r["ok"])
        self.assertIn("Connection refused", r["error"])
        self.assertIn("starling-bench: error:", r["_stderr"])

    def test_selftest(self):
        """The bench's histogram, sequence tracking, filter index and plans against reference
        models (tools/bench/selftest.c)."""
        res = subprocess.run([BENCH, "selftest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=RUN_TIMEOUT_S, env=bench_env())
        self.assertEqual(res.returncode, 0, res.stdout.decode() + res.stderr.decode())
        self.assertIn(b" 0 failed", res.stdout)

    def test_usage_error(self):
        res = subprocess.run([BENCH, "fanout", "--qos", "3"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S, env=bench_env())
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"--qos", res.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
