"""Per-listener options of mosquitto.conf(5), each with real clients against a real broker:

- mount_point: a listener's clients publish, subscribe, unsubscribe and leave wills under its
  prefix, which is taken off what they receive; retained messages and shared subscriptions
  too; $SYS and the other listeners are unaffected (mosquitto_pub/sub and paho).
- max_connections per listener, held across every worker.
- socket_domain, IPv6 addresses (::1) and local-only mode on both loopback addresses.
- bind_interface (SO_BINDTODEVICE): lo takes loopback connections, another interface does not.
- psk_file / psk_hint: TLS-PSK with mosquitto_pub/mosquitto_sub --psk-identity --psk.
- http_dir: static files over HTTP on a WebSocket listener (urllib, http.client), while MQTT
  over WebSockets goes on working on the same listener.
Bad values stop the start with the file and line named.
"""

import collections
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import (BIN, KIND, MOSQUITTO_PUB, MOSQUITTO_SUB, Broker, BrokerTestCase, free_port,
                     starling_only, unique_id)

Endpoint = collections.namedtuple("Endpoint", "host port")


def connects(host, port, timeout=1.0):
    """Whether a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_opened(broker, port, timeout=5.0):
    """Waits until the broker's log says it listens on `port` (its listeners open one after
    another: the harness only waits for the first)."""
    deadline = time.monotonic() + timeout
    needle = "listen socket on port %d" % port
    while needle not in broker.log_text():
        if time.monotonic() >= deadline:
            raise AssertionError("broker never opened port %d:\n%s" % (port, broker.log_text()))
        time.sleep(0.01)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def other_interface():
    """A network interface other than lo, or None."""
    names = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
    for n in names:
        if n != "lo":
            return n
    return None


IPV6 = have_ipv6_loopback()


# --- mount_point ------------------------------------------------------------------------------
class MountPointTest(BrokerTestCase):
    """The harness's listener (plain) and a second one with mount_point tenant/."""

    def setUp(self):
        self.mounted = Endpoint("127.0.0.1", free_port())
        self.config_lines = ["listener %d 127.0.0.1" % self.mounted.port, "mount_point tenant/",
                             "sys_interval 1"]
        super().setUp()
        wait_opened(self.broker, self.mounted.port)

    def mclient(self, **kw):
        return self.client(broker=self.mounted, **kw)

    def test_publish_is_prefixed(self):
        plain = self.client()
        got = self.collect(plain, "#", 1)
        self.publish(self.mclient(), "a/b", b"from-mount", 1)
        msgs = self.wait_messages(got, 1)
        self.assertEqual((msgs[0].topic, msgs[0].payload), ("tenant/a/b", b"from-mount"))

    @starling_only("Mosquitto 2.0.11 leaves the mount point on delivered topics "
                   "(eclipse/mosquitto#2244, fixed in 2.0.12)")
    def test_subscription_sees_only_its_prefix_without_it(self):
        sub = self.mclient()
        got = self.collect(sub, "a/#", 1)
        plain = self.client()
        self.publish(plain, "tenant/a/x", b"in", 1)
        self.publish(plain, "a/x", b"outside", 1)
        self.publish(plain, "other/a/x", b"outside", 1)
        msgs = self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.3, expected=1)
        self.assertEqual((msgs[0].topic, msgs[0].payload), ("a/x", b"in"))

    @starling_only("Mosquitto 2.0.11 leaves the mount point on delivered topics")
    def test_mosquitto_clients_between_mounted_clients(self):
        m = self.mounted
        sub = self.spawn(harness.client_cmd(MOSQUITTO_SUB, m, "-t", "t/#", "-v", "-q", "1",
                                            "-C", "2", "-d"))
        self.assertTrue(sub.wait_line(lambda l: "SUBACK" in l, 5), sub.output())
        for i in range(2):
            r = subprocess.run(harness.client_cmd(MOSQUITTO_PUB, m, "-t", "t/%d" % i, "-m",
                                                  "m%d" % i, "-q", "1"), timeout=10)
            self.assertEqual(r.returncode, 0)
        self.assertEqual(sub.wait(10), 0, sub.output())
        self.assertEqual([l for l in sub.lines() if l.startswith("t/")], ["t/0 m0", "t/1 m1"])
        self.assertIn("PUBLISH (d0, q1, r0, m1, 't/0'", sub.output())

    @starling_only("Mosquitto 2.0.11 leaves the mount point on delivered topics")
    def test_retained_under_the_prefix(self):
        self.publish(self.mclient(), "r/1", b"kept", 1, retain=True)
        plain = self.client()
        got = self.collect(plain, "tenant/r/#", 1)
        msgs = self.wait_messages(got, 1)
        self.assertEqual((msgs[0].topic, msgs[0].retain), ("tenant/r/1", True))
        late = self.mclient()
        got2 = self.collect(late, "r/#", 1)
        msgs = self.wait_messages(got2, 1)
        self.assertEqual((msgs[0].topic, msgs[0].payload, msgs[0].retain), ("r/1", b"kept", True))

    def test_will_is_prefixed(self):
        plain = self.client()
        got = self.collect(plain, "tenant/will/#", 1)
        r = harness.RawClient(self.mounted.port, "127.0.0.1")
        self.defer(r.close)
        ca = r.connect(unique_id("w"), True, 60, will=("will/x", b"gone", 1, False))
        self.assertEqual(ca.rc, 0)
        r.close()  # no DISCONNECT: the will goes
        msgs = self.wait_messages(got, 1)
        self.assertEqual((msgs[0].topic, msgs[0].payload), ("tenant/will/x", b"gone"))

    def test_sys_is_out_of_sight(self):
        sub = self.mclient()
        got = self.collect(sub, "$SYS/#", 0)
        plain = self.client()
        sys_got = self.collect(plain, "$SYS/broker/uptime", 0)
        self.wait_messages(sys_got, 1, 5)
        self.assert_no_messages(got, 1.5)

    @starling_only("Mosquitto 2.0 does not prefix UNSUBSCRIBE filters")
    def test_unsubscribe_is_prefixed(self):
        sub = self.mclient()
        got = self.collect(sub, "u/1", 1)
        self.unsubscribe(sub, ["u/1"])
        self.publish(self.client(), "tenant/u/1", b"after", 1)
        self.assert_no_messages(got, 0.5)

    @starling_only("Mosquitto 2.0 prefixes the whole $share filter, which then is no shared "
                   "subscription")
    def test_shared_subscription(self):
        a = self.client5(broker=self.mounted)
        got = self.collect(a, "$share/g/s/#", 1)
        self.publish(self.client(), "tenant/s/1", b"shared", 1)
        msgs = self.wait_messages(got, 1)
        self.assertEqual(msgs[0].topic, "s/1")

    @starling_only("Mosquitto 2.0.11 leaves the mount point on delivered topics")
    def test_mqtt5_subscriber_and_publisher(self):
        sub = self.client5(broker=self.mounted)
        got = self.collect(sub, "v5/+", 2)
        pub = self.client5(broker=self.mounted)
        for i in range(5):
            self.publish(pub, "v5/%d" % i, b"%d" % i, 2)
        msgs = self.wait_messages(got, 5)
        self.assertEqual([m.topic for m in msgs], ["v5/%d" % i for i in range(5)])

    @starling_only("Mosquitto 2.0.11 leaves the mount point on delivered topics")
    def test_mqtt5_topic_aliases_both_ways(self):
        """Aliases the broker assigns name the topic without the prefix; an alias a mounted
        publisher sets stands for its topic, which is then mounted."""
        sub = harness.RawClient(self.mounted.port, "127.0.0.1", version=harness.MQTT5)
        self.defer(sub.close)
        ca = sub.connect(unique_id("s"), True, 60,
                         properties=harness.props((harness.mqtt5.TOPIC_ALIAS_MAXIMUM, 10)))
        self.assertEqual(ca.rc, 0)
        self.assertLess(sub.subscribe([("al/#", 0)])[0], 0x80)
        plain = self.client()
        for i in range(2):
            self.publish(plain, "tenant/al/x", b"%d" % i, 1)
        got = sub.recv_publishes(2)
        self.assertEqual([(p.topic, p.payload) for p in got], [("al/x", b"0"), ("", b"1")])
        self.assertEqual(got[0].topic_alias, got[1].topic_alias)
        self.assertIsNotNone(got[0].topic_alias)
        # A raw mounted publisher sets alias 1 for "al/y", then publishes through it alone.
        pub = harness.RawClient(self.mounted.port, "127.0.0.1", version=harness.MQTT5)
        self.defer(pub.close)
        self.assertEqual(pub.connect(unique_id("a"), True, 60).rc, 0)
        alias = harness.props((harness.mqtt5.TOPIC_ALIAS, 1))
        pub.send(harness.encode_publish("al/y", b"set", version=harness.MQTT5, properties=alias))
        pub.send(harness.encode_publish("", b"used", version=harness.MQTT5, properties=alias))
        got = sub.recv_publishes(2)
        self.assertEqual([(p.topic, p.payload) for p in got], [("al/y", b"set"), ("", b"used")])
        seen = self.collect(self.client(), "tenant/al/y", 0)
        pub.send(harness.encode_publish("", b"again", version=harness.MQTT5, properties=alias))
        self.assertEqual(self.wait_messages(seen, 1)[0].topic, "tenant/al/y")

    def test_other_listener_unaffected(self):
        plain = self.client()
        got = self.collect(plain, "p/#", 1)
        self.publish(self.client(), "p/1", b"plain", 1)
        msgs = self.wait_messages(got, 1)
        self.assertEqual(msgs[0].topic, "p/1")


class MountPointAclTest(BrokerTestCase):
    """The ACL judges a mounted client's full topics (as Mosquitto's does): it may write
    tenant/ok/#, so its "ok/1" passes and its "no/1" (tenant/no/1) does not."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-macl-")
        os.chmod(cls.tmp, 0o755)
        cls.acl = os.path.join(cls.tmp, "acl")
        with open(cls.acl, "w") as f:
            f.write("topic readwrite tenant/ok/#\ntopic read tenant/#\n")
        os.chmod(cls.acl, 0o644)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.mounted = Endpoint("127.0.0.1", free_port())
        self.config_lines = ["acl_file " + self.acl,
                             "listener %d 127.0.0.1" % self.mounted.port, "mount_point tenant/"]
        super().setUp()
        wait_opened(self.broker, self.mounted.port)

    def test_acl_sees_the_full_topic(self):
        plain = self.client()
        got = self.collect(plain, "tenant/#", 1)
        m = self.client(broker=self.mounted)
        self.publish(m, "no/1", b"denied", 1)
        self.publish(m, "ok/1", b"allowed", 1)
        msgs = self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.3, expected=1)
        self.assertEqual((msgs[0].topic, msgs[0].payload), ("tenant/ok/1", b"allowed"))


class MountPointConfigTest(unittest.TestCase):
    """A mount_point before any listener, or with a wildcard, stops the start (file:line)."""

    def check_refused(self, lines, needle):
        b = Broker(lines)
        self.addCleanup(b.stop)
        rc = b.start_fails()
        self.assertNotEqual(rc, 0)
        self.assertNotEqual(rc, None)
        self.assertIn(needle, b.log_text())

    @starling_only("Starling's error text")
    def test_wildcard_refused(self):
        self.check_refused(["listener %d 127.0.0.1" % free_port(), "mount_point a/+/"],
                           "broker.conf:")
        self.check_refused(["listener %d 127.0.0.1" % free_port(), "mount_point a/#"],
                           "is not a valid topic name")


# --- max_connections per listener --------------------------------------------------------------
class MaxConnectionsPerListenerTest(BrokerTestCase):
    """max_connections 2 on a second listener; the harness's listener has none. Connections are
    spread over every worker, the count is the listener's."""

    def setUp(self):
        self.limited = Endpoint("127.0.0.1", free_port())
        self.config_lines = ["listener %d 127.0.0.1" % self.limited.port, "max_connections 2"]
        super().setUp()
        wait_opened(self.broker, self.limited.port)

    def raw_on(self, ep):
        r = harness.RawClient(ep.port, ep.host)
        self.defer(r.close)
        return r

    def test_limit_is_per_listener(self):
        held = []
        for i in range(2):
            r = self.raw_on(self.limited)
            self.assertEqual(r.connect(unique_id("l"), True, 60).rc, 0)
            held.append(r)
        # The third on the limited listener is closed without CONNACK, whatever its worker.
        for _ in range(4):
            r = self.raw_on(self.limited)
            try:
                r.send(harness.encode_connect(unique_id("x"), True, 60))
            except OSError:
                pass
            self.assert_closed(r)
        # The other listener is not limited by it.
        others = [self.raw_connected() for _ in range(6)]
        self.assertEqual(len(others), 6)
        # A slot freed on the limited listener is taken again.
        held[0].close()
        self.wait_for(lambda: self.try_connect(self.limited), 5, "slot not freed")

    def try_connect(self, ep):
        r = self.raw_on(ep)
        try:
            return r.connect(unique_id("f"), True, 60).rc == 0
        except Exception:
            return False


# --- socket_domain, IPv6, local-only mode ------------------------------------------------------
@unittest.skipUnless(IPV6, "no IPv6 on the loopback interface")
class Ipv6ListenerTest(BrokerTestCase):
    """`listener PORT ::1`: an IPv6 address; MQTT over it with paho and mosquitto clients."""

    def setUp(self):
        self.v6 = Endpoint("::1", free_port())
        self.config_lines = ["listener %d ::1" % self.v6.port]
        super().setUp()
        wait_opened(self.broker, self.v6.port)

    def test_mqtt_over_ipv6(self):
        sub = self.client(broker=self.v6)
        got = self.collect(sub, "six/#", 1)
        self.publish(self.client(), "six/1", b"v4 to v6", 1)
        self.wait_messages(got, 1)
        r = subprocess.run([MOSQUITTO_PUB, "-h", "::1", "-p", str(self.v6.port), "-t", "six/2",
                            "-m", "cli", "-q", "1"], timeout=10)
        self.assertEqual(r.returncode, 0)
        self.wait_messages(got, 2)
        self.assertFalse(connects("127.0.0.1", self.v6.port))


@unittest.skipUnless(IPV6, "no IPv6 on the loopback interface")
class SocketDomainTest(unittest.TestCase):
    """socket_domain on a wildcard listener kept to lo (bind_interface lo): ipv4 opens
    0.0.0.0 only, ipv6 :: only, neither both."""

    def run_broker(self, lines):
        port = free_port()
        b = Broker(["listener %d" % port, "bind_interface lo"] + lines)
        self.addCleanup(b.stop)
        b.start()
        wait_opened(b, port)
        return b, port

    def test_ipv4(self):
        _, port = self.run_broker(["socket_domain ipv4"])
        self.assertTrue(connects("127.0.0.1", port))
        self.assertFalse(connects("::1", port))

    def test_ipv6(self):
        _, port = self.run_broker(["socket_domain ipv6"])
        self.assertTrue(connects("::1", port))
        self.assertFalse(connects("127.0.0.1", port))

    def test_both_by_default(self):
        _, port = self.run_broker([])
        self.assertTrue(connects("::1", port))
        self.assertTrue(connects("127.0.0.1", port))

    @starling_only("Starling's error text")
    def test_bad_value_names_file_and_line(self):
        b = Broker(["listener %d 127.0.0.1" % free_port(), "socket_domain ipx"])
        self.addCleanup(b.stop)
        self.assertNotEqual(b.start_fails(), 0)
        self.assertRegex(b.log_text(), r"broker\.conf:\d+: socket_domain: expected ipv4 or ipv6")


@unittest.skipUnless(IPV6, "no IPv6 on the loopback interface")
class LocalOnlyBothFamiliesTest(unittest.TestCase):
    """No configuration: 127.0.0.1 and ::1, as Mosquitto 2's local-only mode."""

    def test_both_loopbacks(self):
        port = free_port()
        d = tempfile.mkdtemp(prefix="starling-lo-")
        self.addCleanup(shutil.rmtree, d, True)
        cmd = ([os.path.join(BIN, "starlingd")] if KIND == "starling"
               else [harness.MOSQUITTO]) + ["-p", str(port)]
        log = open(os.path.join(d, "log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             cwd=d)
        try:
            deadline = time.monotonic() + 5
            while not connects("127.0.0.1", port) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(connects("127.0.0.1", port))
            # The listeners open one after the other: ::1 may come a moment later.
            while not connects("::1", port) and time.monotonic() < deadline + 5:
                time.sleep(0.02)
            self.assertTrue(connects("::1", port))
            r = subprocess.run([MOSQUITTO_PUB, "-h", "::1", "-p", str(port), "-t", "lo",
                                "-m", "x", "-q", "1"], timeout=10)
            self.assertEqual(r.returncode, 0)
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 0)
        with open(os.path.join(d, "log"), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for marker in harness.SANITIZER_MARKERS:
            self.assertNotIn(marker, text)


# --- bind_interface ----------------------------------------------------------------------------
class BindInterfaceTest(unittest.TestCase):

    def test_lo_takes_loopback_connections(self):
        b = Broker(["bind_interface lo"])  # on the harness's listener 127.0.0.1
        self.addCleanup(b.stop)
        b.start()
        r = subprocess.run(harness.client_cmd(MOSQUITTO_PUB, b, "-t", "bi", "-m", "x", "-q", "1"),
                           timeout=10)
        self.assertEqual(r.returncode, 0)

    @unittest.skipUnless(other_interface(), "no network interface but lo")
    @starling_only("Mosquitto 2.0 binds the interface's first address instead of "
                   "SO_BINDTODEVICE, and refuses a listener address that differs")
    def test_other_interface_refuses_loopback_connections(self):
        # 127.0.0.1 on another device: nothing that comes through lo reaches it.
        port = free_port()
        b = Broker(["listener %d 127.0.0.1" % port, "bind_interface %s" % other_interface()])
        self.addCleanup(b.stop)
        b.start()
        wait_opened(b, port)
        self.assertTrue(connects("127.0.0.1", b.port))
        self.assertFalse(connects("127.0.0.1", port))

    @starling_only("Starling checks the interface when it reads the file")
    def test_unknown_interface_names_file_and_line(self):
        b = Broker(["bind_interface nosuchif9"])
        self.addCleanup(b.stop)
        self.assertNotEqual(b.start_fails(), 0)
        self.assertRegex(b.log_text(),
                         r"broker\.conf:\d+: bind_interface: no network interface \"nosuchif9\"")


# --- TLS-PSK -----------------------------------------------------------------------------------
KEY_ALICE = "00a1b2c3d4e5f60718293a4b5c6d7e8f"
KEY_BOB = "deadbeef"


class PskCase(BrokerTestCase):
    """A TLS-PSK listener (no certificate) beside the harness's plain one."""

    psk_lines = ("psk_hint starling-tests",)
    top_lines = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-psk-")
        os.chmod(cls.tmp, 0o755)  # Mosquitto started as root reads it as user mosquitto
        cls.psk_file = os.path.join(cls.tmp, "psk")
        with open(cls.psk_file, "w") as f:
            f.write("# identity:key\nalice:%s\n\nbob : %s \n" % (KEY_ALICE, KEY_BOB))
        os.chmod(cls.psk_file, 0o644)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.psk = Endpoint("127.0.0.1", free_port())
        self.config_lines = (list(self.top_lines) + ["psk_file " + self.psk_file,
                                                      "listener %d 127.0.0.1" % self.psk.port]
                             + list(self.psk_lines))
        super().setUp()
        wait_opened(self.broker, self.psk.port)

    def pub(self, identity, key, topic, msg, *extra):
        return subprocess.run(harness.client_cmd(MOSQUITTO_PUB, self.psk, "--psk-identity",
                                                 identity, "--psk", key, "-t", topic, "-m", msg,
                                                 "-q", "1", *extra),
                              timeout=10, capture_output=True, text=True)


class PskTest(PskCase):

    def test_mosquitto_clients_over_psk(self):
        sub = self.spawn(harness.client_cmd(MOSQUITTO_SUB, self.psk, "--psk-identity", "bob",
                                            "--psk", KEY_BOB, "-t", "psk/#", "-v", "-q", "1",
                                            "-C", "1", "-d"))
        self.assertTrue(sub.wait_line(lambda l: "SUBACK" in l, 5), sub.output())
        plain = self.client()
        seen = self.collect(plain, "psk/#", 1)
        r = self.pub("alice", KEY_ALICE, "psk/a", "hello")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(sub.wait(10), 0, sub.output())
        self.assertIn("psk/a hello", sub.lines())
        self.wait_for(lambda: any(m.payload == b"hello" for m in seen.snapshot()))

    def test_wrong_key_or_identity_refused(self):
        plain = self.client()
        seen = self.collect(plain, "psk/#", 1)
        self.assertNotEqual(self.pub("alice", KEY_BOB, "psk/bad", "x").returncode, 0)
        self.assertNotEqual(self.pub("carol", KEY_ALICE, "psk/bad", "x").returncode, 0)
        self.assert_no_messages(seen, 0.3)
        self.assertEqual(self.pub("alice", KEY_ALICE, "psk/good", "y").returncode, 0)
        self.wait_messages(seen, 1)

    def test_plain_tcp_is_refused_on_the_psk_listener(self):
        r = subprocess.run(harness.client_cmd(MOSQUITTO_PUB, self.psk, "-t", "x", "-m", "y"),
                           timeout=10, capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        self.assert_broker_works()


class PskIdentityAsUsernameTest(PskCase):
    """use_identity_as_username: the PSK identity is the client's username."""

    psk_lines = ("psk_hint h", "use_identity_as_username true")

    def test_identity_is_the_username(self):
        r = self.pub("alice", KEY_ALICE, "alice/1", "ok", "-u", "mallory")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_for(lambda: "u'alice'" in self.broker.log_text(), 5,
                      "no connection logged with username alice")
        self.assertNotIn("u'mallory'", self.broker.log_text())


class PskReloadTest(PskCase):
    """SIGHUP reads psk_file again (mosquitto.conf(5): "Reloaded on reload signal")."""

    def setUp(self):
        super().setUp()
        self.orig = open(self.psk_file).read()
        self.addCleanup(self.restore)

    def restore(self):
        with open(self.psk_file, "w") as f:
            f.write(self.orig)

    @starling_only("waits for Starling's reload line in the log")
    def test_new_keys_after_sighup(self):
        self.assertEqual(self.pub("alice", KEY_ALICE, "r/1", "a").returncode, 0)
        with open(self.psk_file, "w") as f:
            f.write("carol:%s\n" % KEY_BOB)
        before = self.broker.log_text().count("Reloaded the password")
        os.kill(self.broker.pid, signal.SIGHUP)
        self.wait_for(lambda: self.broker.log_text().count("Reloaded the password") > before,
                      5, "no reload in the log")
        time.sleep(0.2)  # every worker adopts the new set at its next iteration
        self.assertNotEqual(self.pub("alice", KEY_ALICE, "r/2", "a").returncode, 0)
        self.assertEqual(self.pub("carol", KEY_BOB, "r/3", "c").returncode, 0)


class PskConfigErrorsTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="starling-psk-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def refused(self, lines, pattern):
        b = Broker(lines)
        self.addCleanup(b.stop)
        self.assertNotEqual(b.start_fails(), 0)
        self.assertRegex(b.log_text(), pattern)

    @starling_only("Starling has no plugin to give keys: a hint needs a psk_file")
    def test_hint_without_file(self):
        self.refused(["listener %d 127.0.0.1" % free_port(), "psk_hint h"],
                     "psk_hint needs a psk_file")

    @starling_only("Starling's error text names the file and line")
    def test_bad_key_names_line(self):
        path = os.path.join(self.tmp, "psk")
        with open(path, "w") as f:
            f.write("a:0011\nb:00zz\n")
        self.refused(["psk_file " + path, "listener %d 127.0.0.1" % free_port(), "psk_hint h"],
                     r"psk:2: key is not hexadecimal")


# --- http_dir ----------------------------------------------------------------------------------
@unittest.skipIf(KIND == "mosquitto", "Debian's mosquitto has no websockets listener here")
class HttpDirTest(BrokerTestCase):
    """http_dir on a WebSocket listener: files over HTTP, MQTT over WebSockets beside them."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-http-")
        cls.root = os.path.join(cls.tmp, "www")
        os.makedirs(os.path.join(cls.root, "js"))
        cls.files = {"index.html": b"<!doctype html><title>t</title>\n",
                     "js/app.js": b"console.log('x');\n",
                     "style.css": b"body{}\n", "logo.png": b"\x89PNG\r\n\x1a\n",
                     "data.bin": bytes(range(256)), "two words.txt": b"space\n"}
        for name, data in cls.files.items():
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        with open(os.path.join(cls.tmp, "secret"), "wb") as f:
            f.write(b"outside\n")
        os.symlink(os.path.join(cls.tmp, "secret"), os.path.join(cls.root, "abs-link"))
        os.symlink("../secret", os.path.join(cls.root, "rel-link"))
        os.mkfifo(os.path.join(cls.root, "fifo"))
        with open(os.path.join(cls.root, "big.bin"), "wb") as f:
            f.truncate((4 << 20) + 1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.ws = Endpoint("127.0.0.1", free_port())
        self.config_lines = ["listener %d 127.0.0.1" % self.ws.port, "protocol websockets",
                             "http_dir " + self.root]
        super().setUp()
        wait_opened(self.broker, self.ws.port)

    def get(self, path, method="GET"):
        """(status, headers, body) of a request sent with the path exactly as given."""
        c = http.client.HTTPConnection("127.0.0.1", self.ws.port, timeout=5)
        self.defer(c.close)
        c.putrequest(method, path, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body

    def test_files_with_types(self):
        for path, name, ctype in (("/", "index.html", "text/html"),
                                  ("/index.html", "index.html", "text/html"),
                                  ("/js/app.js", "js/app.js", "text/javascript"),
                                  ("/style.css", "style.css", "text/css"),
                                  ("/logo.png", "logo.png", "image/png"),
                                  ("/data.bin", "data.bin", "application/octet-stream"),
                                  ("/two%20words.txt", "two words.txt", "text/plain")):
            status, headers, body = self.get(path)
            self.assertEqual(status, 200, path)
            self.assertEqual(body, self.files[name], path)
            self.assertTrue(headers["content-type"].startswith(ctype), (path, headers))

    def test_urllib_client(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/js/app.js?v=3" % self.ws.port,
                                    timeout=5) as r:
            self.assertEqual(r.read(), self.files["js/app.js"])

    def test_missing_and_refused(self):
        self.assertEqual(self.get("/nope.html")[0], 404)
        self.assertEqual(self.get("/js")[0], 302)
        self.assertEqual(self.get("/js")[1]["location"], "/js/")
        self.assertEqual(self.get("/js/")[0], 404)  # no index.html there
        self.assertEqual(self.get("/fifo")[0], 403)
        self.assertEqual(self.get("/big.bin")[0], 500)
        self.assertEqual(self.get("/", "POST")[0], 405)
        status, headers, body = self.get("/index.html", "HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(headers["content-length"]), len(self.files["index.html"]))

    def test_no_escape_from_the_directory(self):
        for path in ("/../secret", "/js/../../secret", "/%2e%2e/secret", "/%2E%2E%2Fsecret",
                     "/abs-link", "/rel-link", "/js/%2e%2e/%2e%2e/secret"):
            status, _, body = self.get(path)
            self.assertIn(status, (403, 404), path)
            self.assertNotIn(b"outside", body, path)
        self.assertEqual(self.get("/bad%zzescape")[0], 400)
        self.assertEqual(self.get("/nul%00byte")[0], 400)

    def test_mqtt_over_websockets_still_works(self):
        sub = self.client(broker=self.ws, transport="websockets")
        got = self.collect(sub, "ws/#", 1)
        self.publish(self.client(), "ws/1", b"through", 1)
        self.wait_messages(got, 1)
        self.assertEqual(self.get("/style.css")[0], 200)
        pub = self.client(broker=self.ws, transport="websockets")
        self.publish(pub, "ws/2", b"back", 1)
        self.wait_messages(got, 2)


class HttpDirConfigTest(unittest.TestCase):

    @starling_only("Starling refuses what it would otherwise ignore")
    def test_http_dir_needs_websockets(self):
        d = tempfile.mkdtemp(prefix="starling-http-")
        self.addCleanup(shutil.rmtree, d, True)
        b = Broker(["listener %d 127.0.0.1" % free_port(), "http_dir " + d])
        self.addCleanup(b.stop)
        self.assertNotEqual(b.start_fails(), 0)
        self.assertIn("http_dir needs protocol websockets", b.log_text())

    @starling_only("Starling checks the directory when it reads the file")
    def test_missing_directory_names_file_and_line(self):
        b = Broker(["listener %d 127.0.0.1" % free_port(), "protocol websockets",
                    "http_dir /nonexistent/www"])
        self.addCleanup(b.stop)
        self.assertNotEqual(b.start_fails(), 0)
        self.assertRegex(b.log_text(), r"broker\.conf:\d+: http_dir: /nonexistent/www: No such")


if __name__ == "__main__":
    unittest.main()
