"""Bridges' configuration (issue 12): mosquitto.conf's `connection` blocks are read. A broken
block stops the start naming the file and the line (Mosquitto says "Error found at FILE:LINE"
too: the same cases run against it); a complete block is accepted and the broker serves its
clients while the bridge's remote does not answer; SIGHUP with bridges configured keeps the
broker up and clean. Forwarding itself is tested with the bridge client."""

import os
import signal
import time
import unittest

from harness import KIND, Broker, BrokerTestCase, free_port, starling_only

BLOCK = ("connection edge", "address 127.0.0.1:%d")


def block(*lines):
    """A bridge block to a port where nothing listens, then `lines`."""
    return [BLOCK[0], BLOCK[1] % free_port()] + list(lines)


class ConfigErrorTest(unittest.TestCase):
    def fails(self, lines):
        """Starts a broker with `lines` after the harness's own: returns (log, the number of
        the last line, the config path); the start must fail."""
        b = Broker(lines)
        self.addCleanup(b.stop)
        rc = b.start_fails(timeout=20)  # a loaded machine starts ASan builds slowly
        self.assertIsNotNone(rc, "the broker kept running")
        self.assertNotEqual(rc, 0)
        with open(b.config_path) as f:
            n = len(f.read().splitlines())
        return b.log_text(), n, b.config_path

    def check(self, lines, back, reason):
        """The error is on the line `back` lines above the last, with `reason` (Starling's
        words; Mosquitto's "Error found at" names the line only)."""
        text, n, path = self.fails(lines)
        where = "%s:%d" % (path, n - back)
        if KIND == "mosquitto":
            self.assertIn("Error found at %s." % where, text)
        else:
            self.assertIn("%s: %s" % (where, reason), text)

    def test_topic_outside_a_connection_block(self):
        self.check(["max_queued_messages 100", "topic sensors/# out 1"], 0,
                   "topic: a bridge option outside a connection block")

    def test_bad_direction(self):
        self.check(block("topic sensors/# sideways 1", "cleansession true"), 1,
                   "topic: bad direction \"sideways\" (expected in, out or both)")

    def test_bad_qos(self):
        self.check(block("topic sensors/# in 3"), 0, "topic: bad QoS \"3\" (expected 0, 1 or 2)")

    def test_invalid_prefix_combination(self):
        self.check(block('topic "" both 0 local ""'), 0,
                   'topic: an empty pattern ("") needs a local and a remote prefix')

    def test_duplicate_connection_name(self):
        self.check(block("topic #") + ["connection edge"], 0,
                   "connection: a second bridge named \"edge\"")

    def test_port_out_of_range(self):
        self.check(["connection edge", "address 127.0.0.1:70000", "topic #"], 1,
                   "address: bad port \"70000\" (1..65535)")

    def test_duplicate_address_line(self):
        self.check(block("addresses 127.0.0.1:1", "topic #"), 1,
                   "addresses: a second address line in this connection block")

    @starling_only("Mosquitto reads ::1 as host ':' port 1 and fails at run time")
    def test_ipv6_needs_a_port(self):
        self.check(["connection edge", "address ::1", "topic #"], 1,
                   "address: the IPv6 address \"::1\" needs a port")

    @starling_only("Mosquitto's end-of-file check names no line")
    def test_block_without_topic_names_its_connection_line(self):
        self.check(block("remote_username u", "max_keepalive 100"), 3,
                   "connection edge: no topic line (Mosquitto requires one)")

    @starling_only("Mosquitto sends no password without a user name, silently")
    def test_password_without_username(self):
        self.check(block("topic #", "remote_password p"), 3,
                   "connection edge: remote_password without remote_username")

    @starling_only("Mosquitto takes bridge_require_ocsp true with PSK (and never asks)")
    def test_require_ocsp_with_psk_refused(self):
        self.check(block("topic #", "bridge_identity me", "bridge_psk 00",
                         "bridge_require_ocsp true"), 5,
                   "connection edge: bridge_require_ocsp needs certificates, not "
                   "bridge_identity/bridge_psk")


COMPLETE = ("connection edge-to-cloud",
            "address 127.0.0.1:%d 127.0.0.1:%d",
            "round_robin false",
            "topic sensors/# out 1 site1/ sites/site1/",
            "topic commands/# in 2 site1/ sites/site1/",
            'topic "" both 0 local/status remote/status',
            "topic alerts/# both",
            "remote_clientid site1-bridge",
            "local_clientid site1-bridge-local",
            "remote_username site1",
            "remote_password secret word",
            "cleansession false",
            "local_cleansession true",
            "keepalive_interval 30",
            "start_type automatic",
            "restart_timeout 2 10",
            "bridge_protocol_version mqttv311",
            "try_private true",
            "notifications true",
            "notifications_local_only false",
            "notification_topic bridges/site1/state",
            "bridge_max_packet_size 65536",
            "bridge_outgoing_retain true",
            "bridge_attempt_unsubscribe true",
            "max_queued_messages 500",  # a general option between two blocks stays general
            "connection second",
            "addresses 127.0.0.1:%d",
            "clientid second-bridge",
            "username u",
            "password p",
            "start_type lazy",
            "threshold 5",
            "idle_timeout 30",
            "topic # in")


class CompleteBlockTest(BrokerTestCase):
    """Two complete blocks, every option that needs no TLS files: the broker starts (the
    remote does not answer: that is the bridge's business, not the start's) and serves."""

    config_lines = tuple(l % tuple(free_port() for _ in range(l.count("%d"))) for l in COMPLETE)

    def test_starts_and_serves(self):
        self.assertTrue(self.broker.alive())
        sub = self.client()
        got = self.collect(sub, "sensors/#", 1)
        pub = self.client()
        pub.publish("sensors/t", b"21.5", qos=1).wait_for_publish(5)
        self.wait_for(lambda: len(got) == 1)
        self.assertEqual(got[0].payload, b"21.5")

    @starling_only("Starling's notices")
    def test_no_notice_for_good_values(self):
        self.assertNotIn("Notice: %s" % self.broker.config_path, self.broker.log_text())


@starling_only("Starling's notice wording")
class RaisedValueTest(BrokerTestCase):
    """Values Mosquitto raises (keepalive_interval under 5) are raised too, with a notice."""

    config_lines = tuple(block("topic #", "keepalive_interval 2"))

    def test_notice_names_the_line(self):
        with open(self.broker.config_path) as f:
            n = len(f.read().splitlines())
        self.wait_for(lambda: "%s:%d: keepalive_interval 2 is under 5: using 5"
                      % (self.broker.config_path, n) in self.broker.log_text())


@starling_only("waits for Starling's reload message")
class ReloadWithBridgesTest(BrokerTestCase):
    """SIGHUP does not change bridges (Mosquitto's neither): with blocks configured, a reload
    leaves the broker up, serving, and its exit clean (no leak: ASan's check at exit)."""

    config_lines = tuple(block("topic a/# both 1 l/ r/", "notifications false"))

    def test_sighup(self):
        for i in range(3):
            before = self.broker.log_text().count("Reloading on SIGHUP")
            os.kill(self.broker.pid, signal.SIGHUP)
            self.wait_for(lambda: self.broker.log_text().count("Reloading on SIGHUP") > before,
                          msg="no reload in the log")
        time.sleep(0.2)
        self.assertTrue(self.broker.alive())
        c = self.client()
        got = self.collect(c, "x", 0)
        c.publish("x", b"1")
        self.wait_for(lambda: len(got) == 1)


if __name__ == "__main__":
    unittest.main()
