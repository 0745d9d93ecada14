"""Starling as the remote broker of a Mosquitto bridge (issue 12): Debian's mosquitto 2.0.11,
a `connection` block aimed at the broker under test, bridging to it as users do today.

A Mosquitto bridge with try_private (its default) connects with protocol level 0x83 (3.1) or
0x84 (3.1.1), the high bit saying "I am a bridge"; its subscriptions then get what MQTT 5 calls
No Local (what it published is not sent back to it, so two brokers bridged both ways on `#`
do not ping-pong) and Retain As Published (retained state crosses the bridge). An MQTT 5
bridge asks for both in its SUBSCRIBE options. The tests count deliveries: every message
arrives exactly once on each side, in both directions, at each QoS, with prefixes, with
retained messages (set before the bridge connects, live, deleted), with the three
bridge_protocol_versions, through a restart of the broker under test mid-stream, and the
bridge's notifications and a refusal of its credentials.

Run with --broker mosquitto the same tests check Mosquitto as the remote (the reference): the
behaviour is the same. BridgeControl shows what an echo looks like to these counts (try_private
false: the bridge is an ordinary client, and the remote sends its messages back).
Everything is on 127.0.0.1, ports from the harness's slice; the peer Mosquitto is started and
stopped by PID (bridgelib.py).
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import KIND, PUBLISH, BrokerTestCase, starling_only, unique_id
from bridgelib import by_payload, connection_block, start_peer, wait_crossing, wait_log
from persistlib import PersistCase

QUIET_S = 1.0  # after the last expected message: long enough for a ping-pong to show
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def connected_rx(cid, bridge=True):
    """The remote's log line for a bridge (or an MQTT 5 bridge: a client) connecting: Starling's
    "New bridge connected as ID (p4, ..." and Mosquitto's "New bridge connected from A:P as ID"."""
    return r"New %s connected (from \S+ )?as %s \(" % ("bridge" if bridge else "client",
                                                      re.escape(cid))


class BridgeCase(BrokerTestCase):
    """The test's broker is the remote; self.bridge() starts a Mosquitto bridging to it."""

    def bridge(self, topics, **options):
        """Starts a peer Mosquitto with one connection block to self.broker (remote_clientid a
        fresh id unless given, restart_timeout 1 s unless given); returns the peer, with
        .cid the bridge's client id on the remote."""
        cid = options.pop("remote_clientid", None) or unique_id("bridge")
        options.setdefault("restart_timeout", 1)
        peer = start_peer(self, connection_block("b", self.broker, topics, remote_clientid=cid,
                                                 **options))
        peer.cid = cid
        return peer

    def exactly_once(self, got, expected, timeout=10.0):
        """Waits for every payload of `expected` in `got`, then QUIET_S more: each must have
        arrived exactly once, and nothing else."""
        want = set(expected)
        self.wait_for(lambda: want <= set(got.payloads()), timeout,
                      lambda: "missing %r" % sorted(want - set(got.payloads()))[:10])
        time.sleep(QUIET_S)
        counts = by_payload(got)
        self.assertEqual({p: n for p, n in counts.items() if n != 1}, {},
                         "delivered more than once (an echo, a ping-pong?)")
        self.assertEqual(set(counts), want, "unexpected messages")

    def retained_of(self, broker, flt, n, quiet=0.5):
        """{topic: payload} of the retained messages a fresh subscriber to `flt` on `broker`
        gets (waits for n of them, then `quiet` s). A message without its retain flag is a live
        one: it shows as "(live) TOPIC", so no expected store equals the answer and a poll asks
        again (a message still crossing the bridge when the subscriber came reaches it live,
        and is in the store the next time)."""
        c = self.client(broker=broker)
        got = self.collect(c, flt, 1)
        if n:
            self.wait_messages(got, n)
        time.sleep(quiet)
        msgs = got.snapshot()
        c.disconnect()
        return {(m.topic if m.retain else "(live) " + m.topic): m.payload for m in msgs}


class BridgeDirections(BridgeCase):
    """`out`, `in` and `both`, each QoS, prefixes."""

    def test_out_each_qos(self):
        """Mosquitto's clients publish, the bridge forwards at min(message QoS, topic QoS)."""
        peer = self.bridge(["q%d/# out %d" % (q, q) for q in range(3)])
        for q in range(3):
            wait_crossing(self, peer, self.broker, "q%d/probe" % q)
        sub = self.client()
        got = self.collect(sub, "+/data/#", 2)
        pub = self.client(broker=peer)
        for tq in range(3):
            for pq in range(3):
                self.publish(pub, "q%d/data/%d" % (tq, pq), b"%d%d" % (tq, pq), pq)
        self.exactly_once(got, [b"%d%d" % (tq, pq) for tq in range(3) for pq in range(3)])
        for m in got:
            tq, pq = int(m.payload[:1]), int(m.payload[1:])
            self.assertEqual(m.qos, min(tq, pq), m)
            self.assertFalse(m.retain, m)

    def test_in_each_qos(self):
        """The bridge subscribes on the remote at the topic's QoS; the remote's clients
        publish."""
        peer = self.bridge(["q%d/# in %d" % (q, q) for q in range(3)])
        for q in range(3):
            wait_crossing(self, self.broker, peer, "q%d/probe" % q)
        sub = self.client(broker=peer)
        got = self.collect(sub, "+/data/#", 2)
        pub = self.client()
        for tq in range(3):
            for pq in range(3):
                self.publish(pub, "q%d/data/%d" % (tq, pq), b"%d%d" % (tq, pq), pq)
        self.exactly_once(got, [b"%d%d" % (tq, pq) for tq in range(3) for pq in range(3)])
        for m in got:
            tq, pq = int(m.payload[:1]), int(m.payload[1:])
            self.assertEqual(m.qos, min(tq, pq), m)
            self.assertFalse(m.retain, m)

    def test_both_on_hash_without_loops(self):
        """`# both 2`: what either side publishes reaches each side's subscriber exactly once,
        and nothing comes back (a remote that echoed to the bridge would double every message
        published on the Mosquitto side, see BridgeControl)."""
        peer = self.bridge(["# both 2"])
        wait_crossing(self, peer, self.broker)
        wait_crossing(self, self.broker, peer)
        here = self.client()
        got_here = self.collect(here, "t/data/#", 2)
        there = self.client(broker=peer)
        got_there = self.collect(there, "t/data/#", 2)
        pub_here, pub_there = self.client(), self.client(broker=peer)
        expected = []
        for i in range(30):
            self.publish(pub_here, "t/data/s/%d" % i, b"s%d" % i, i % 3)
            self.publish(pub_there, "t/data/m/%d" % i, b"m%d" % i, i % 3)
            expected += [b"s%d" % i, b"m%d" % i]
        self.exactly_once(got_here, expected)
        self.exactly_once(got_there, expected)
        # The publishers are subscribed to nothing, the bridge's own subscription on the remote
        # is `#`: the remote's counters must not keep climbing once the stream has stopped.
        self.assert_no_ping_pong()

    def assert_no_ping_pong(self):
        """Once the stream has stopped, nothing more circulates: a loop would go on."""
        sub = self.client()
        got = self.collect(sub, "t/data/#", 0)
        time.sleep(QUIET_S)
        self.assertEqual(len(got), 0, "messages still circulating: %r" % got.snapshot()[:5])

    def test_prefixes(self):
        """local and remote prefixes: `x/# both 1 loc/ rem/` maps loc/x/... here to rem/x/...
        there and back; `y/# out 1 "" far/` and `w/# in 1 near/ ""` one way each."""
        peer = self.bridge(["x/# both 1 loc/ rem/", 'y/# out 1 "" far/', 'w/# in 1 near/ ""'])
        wait_crossing(self, peer, self.broker, "loc/x/probe-out", dst_topic="rem/x/probe-out")
        remote = self.client()
        got_remote = self.collect(remote, "#", 1)
        local = self.client(broker=peer)
        got_local = self.collect(local, "#", 1)
        # The `in` lines need the bridge's SUBSCRIBEs on the remote: probe them too.
        wait_crossing(self, self.broker, peer, "rem/x/probe-in", dst_topic="loc/x/probe-in")
        wait_crossing(self, self.broker, peer, "w/probe-in", dst_topic="near/w/probe-in")
        got_remote.clear()
        got_local.clear()
        pub_remote, pub_local = self.client(), self.client(broker=peer)
        self.publish(pub_local, "loc/x/1", b"L1", 1)
        self.publish(pub_remote, "rem/x/2", b"R2", 1)
        self.publish(pub_local, "y/3", b"L3", 1)
        self.publish(pub_remote, "w/4", b"R4", 1)
        # Not bridged: the prefixes are part of the mapping.
        self.publish(pub_local, "x/5", b"L5", 1)
        self.publish(pub_remote, "x/6", b"R6", 1)
        self.publish(pub_remote, "far/y/7", b"R7", 1)
        self.publish(pub_local, "near/w/8", b"L8", 1)
        self.exactly_once(got_remote, [b"L1", b"R2", b"L3", b"R4", b"R6", b"R7"])
        self.exactly_once(got_local, [b"L1", b"R2", b"L3", b"R4", b"L5", b"L8"])
        topics_remote = {m.payload: m.topic for m in got_remote}
        topics_local = {m.payload: m.topic for m in got_local}
        self.assertEqual(topics_remote[b"L1"], "rem/x/1")
        self.assertEqual(topics_remote[b"L3"], "far/y/3")
        self.assertEqual(topics_local[b"R2"], "loc/x/2")
        self.assertEqual(topics_local[b"R4"], "near/w/4")


class BridgeRetained(BridgeCase):
    """Retained messages cross in both directions, as retained, and so do their deletions."""

    def test_retained_both_ways(self):
        # Set on the remote before the bridge exists: the bridge's SUBSCRIBE brings it.
        pub_remote = self.client()
        self.publish(pub_remote, "t/data/pre-remote", b"PR", 1, retain=True)
        peer = self.bridge(["t/# both 1"])
        wait_crossing(self, peer, self.broker, "t/probe-out")
        wait_crossing(self, self.broker, peer, "t/probe-in")
        pub_local = self.client(broker=peer)
        # Live: the bridge gets the remote's retained PUBLISH with its retain flag (Retain As
        # Published) and the peer stores it; Mosquitto's bridge forwards its own retained
        # (bridge_outgoing_retain) and the remote stores it.
        self.publish(pub_remote, "t/data/live-remote", b"LR", 1, retain=True)
        self.publish(pub_local, "t/data/live-local", b"LL", 1, retain=True)
        want = {"t/data/pre-remote": b"PR", "t/data/live-remote": b"LR",
                "t/data/live-local": b"LL"}
        self.wait_for(lambda: self.retained_of(peer, "t/data/#", 3, 0) == want, 10,
                      lambda: "peer holds %r" % self.retained_of(peer, "t/data/#", 0, 0.3))
        self.wait_for(lambda: self.retained_of(self.broker, "t/data/#", 3, 0) == want, 10,
                      lambda: "remote holds %r" % self.retained_of(self.broker, "t/data/#", 0,
                                                                   0.3))
        # A live subscriber on either side sees each once, retain flag cleared (3.1.1).
        here = self.client()
        got_here = self.collect(here, "t/data/x/#", 1)
        there = self.client(broker=peer)
        got_there = self.collect(there, "t/data/x/#", 1)
        self.publish(pub_remote, "t/data/x/1", b"X1", 1, retain=True)
        self.publish(pub_local, "t/data/x/2", b"X2", 1, retain=True)
        self.exactly_once(got_here, [b"X1", b"X2"])
        self.exactly_once(got_there, [b"X1", b"X2"])
        self.assertFalse(any(m.retain for m in got_here.snapshot() + got_there.snapshot()))
        # Deletions cross too: an empty retained PUBLISH on either side clears both stores.
        self.publish(pub_remote, "t/data/live-local", b"", 1, retain=True)
        self.publish(pub_local, "t/data/pre-remote", b"", 1, retain=True)
        want = {"t/data/live-remote": b"LR", "t/data/x/1": b"X1", "t/data/x/2": b"X2"}
        self.wait_for(lambda: self.retained_of(peer, "t/data/#", 3, 0) == want, 10,
                      lambda: "peer holds %r" % self.retained_of(peer, "t/data/#", 0, 0.3))
        self.wait_for(lambda: self.retained_of(self.broker, "t/data/#", 3, 0) == want, 10,
                      lambda: "remote holds %r" % self.retained_of(self.broker, "t/data/#", 0,
                                                                   0.3))

    def test_retained_set_before_the_bridge_connects(self):
        """A retained message published on the Mosquitto side while the remote is down reaches
        the remote's store when the bridge connects (Mosquitto sends its local retained
        messages of `out` topics then)."""
        self.broker.halt()
        peer = self.bridge(["t/# both 1"])
        pub_local = self.client(broker=peer)
        self.publish(pub_local, "t/data/early", b"E", 1, retain=True)
        self.broker.resume()
        wait_crossing(self, peer, self.broker, "t/probe", timeout=20)
        # Polled: Mosquitto may also send it once more live (its queued copy) around then.
        want = {"t/data/early": b"E"}
        self.wait_for(lambda: self.retained_of(self.broker, "t/data/#", 1, 0.2) == want, 10,
                      lambda: "remote holds %r" % self.retained_of(self.broker, "t/data/#", 0,
                                                                   0.3))


class BridgeVersions(BridgeCase):
    """bridge_protocol_version mqttv311, mqttv31 (a private level: 0x84, 0x83) and mqttv50
    (an ordinary MQTT 5 client asking for No Local and Retain As Published itself)."""

    def check_version(self, version, level, bridge_flag):
        root = "v%s" % level
        peer = self.bridge(["%s/# both 2" % root], bridge_protocol_version=version)
        wait_crossing(self, peer, self.broker, root + "/probe")
        wait_crossing(self, self.broker, peer, root + "/probe")
        line = wait_log(self, self.broker, connected_rx(peer.cid, bridge_flag))[0]
        if KIND == "starling":
            self.assertIn("(p%d, c0, k60)" % level, line)
        here, there = self.client(), self.client(broker=peer)
        got_here = self.collect(here, root + "/data/#", 2)
        got_there = self.collect(there, root + "/data/#", 2)
        pub_here, pub_there = self.client(), self.client(broker=peer)
        expected = []
        for i in range(9):
            self.publish(pub_here, root + "/data/s%d" % i, b"s%d" % i, i % 3)
            self.publish(pub_there, root + "/data/m%d" % i, b"m%d" % i, i % 3)
            expected += [b"s%d" % i, b"m%d" % i]
        self.exactly_once(got_here, expected)
        self.exactly_once(got_there, expected)
        # Retain As Published, whichever way the bridge asked for it.
        self.publish(pub_here, root + "/data/r", b"kept", 1, retain=True)
        self.wait_for(lambda: self.retained_of(peer, root + "/data/r", 1, 0) ==
                      {root + "/data/r": b"kept"}, 10, "retained message not on the peer")

    def test_mqttv311(self):
        self.check_version("mqttv311", 4, True)

    def test_mqttv31(self):
        self.check_version("mqttv31", 3, True)

    def test_mqttv50(self):
        self.check_version("mqttv50", 5, False)


class BridgeControl(BridgeCase):
    """What an echo looks like: with try_private false the bridge is an ordinary 3.1.1 client,
    nothing tells the remote not to send it back what it published, and every message
    published on the Mosquitto side reaches its subscribers twice. The exactly-once counts of
    the tests above would fail the same way on a remote that did not honour the private
    level."""

    def test_try_private_false_echoes(self):
        peer = self.bridge(["t/# both 1"], try_private=False)
        wait_crossing(self, peer, self.broker, "t/probe")
        wait_crossing(self, self.broker, peer, "t/probe")
        wait_log(self, self.broker, connected_rx(peer.cid, bridge=False))
        there = self.client(broker=peer)
        got = self.collect(there, "t/data/#", 1)
        pub = self.client(broker=peer)
        for i in range(5):
            self.publish(pub, "t/data/%d" % i, b"m%d" % i, 1)
        self.wait_for(lambda: all(n == 2 for n in by_payload(got).values())
                      and len(by_payload(got)) == 5, 10,
                      lambda: "expected each message twice (the echo), got %r" % by_payload(got))


class BridgeNotifications(BridgeCase):
    """The bridge publishes its state on the remote, retained: $SYS/broker/connection/ID/state
    1 when it connects; 0 from its will when it goes (killed, or stopped)."""

    def state(self, topic):
        return self.retained_of(self.broker, topic, 1).get(topic)

    def test_state_topic(self):
        peer = self.bridge(["t/# both 1"])
        topic = "$SYS/broker/connection/%s/state" % peer.cid
        wait_crossing(self, peer, self.broker, "t/probe")
        watch = self.client()
        live = self.collect(watch, topic, 1)
        self.assertEqual(self.state(topic), b"1")
        peer.halt(signal.SIGKILL)
        self.wait_for(lambda: b"0" in live.payloads(), 10, "no state 0 after the bridge died")
        self.assertEqual(self.state(topic), b"0")
        peer.resume()
        self.wait_for(lambda: live.payloads()[-1:] == [b"1"], 15, "no state 1 on reconnection")
        self.assertEqual(self.state(topic), b"1")
        peer.halt()  # SIGTERM: Mosquitto closes without DISCONNECT, the will says 0
        self.wait_for(lambda: live.payloads()[-1:] == [b"0"], 10, "no state 0 after a stop")
        self.assertEqual(self.state(topic), b"0")
        peer.resume()  # stopped in tearDown

    def test_notification_topic(self):
        peer = self.bridge(["t/# both 1"], notification_topic="bridges/edge1")
        wait_crossing(self, peer, self.broker, "t/probe")
        self.assertEqual(self.state("bridges/edge1"), b"1")
        self.assertEqual(self.retained_of(self.broker, "$SYS/broker/connection/#", 0), {})


class BridgeCredentials(BridgeCase):
    """A remote with a password file: a bridge with the wrong password is refused, logged as
    such, and retried by Mosquitto; the right one connects."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="starling-bpw-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)  # a Mosquitto remote reads it after dropping root
        self.pwfile = os.path.join(self.tmp, "passwd")
        subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", self.pwfile, "edge", "right"],
                       check=True, timeout=20, stdout=subprocess.DEVNULL)
        os.chmod(self.pwfile, 0o644)
        self.config_lines = ("allow_anonymous false", "password_file " + self.pwfile)
        super().setUp()

    def test_wrong_password_refused_and_logged(self):
        peer = self.bridge(["t/# both 1"], remote_username="edge", remote_password="wrong")
        if KIND == "starling":
            rx = r"Connection \d+ refused: bad user name or password \(bridge %s\)\." % (
                re.escape(peer.cid))
        else:
            rx = r"Client <unknown> disconnected, not authorised\."
        # Refused, then tried again (Mosquitto waits some seconds between attempts).
        wait_log(self, self.broker, rx, timeout=25, count=2)
        self.assertNotRegex(self.broker.log_text(), connected_rx(peer.cid))
        good = self.bridge(["u/# both 1"], remote_username="edge", remote_password="right")
        line = wait_log(self, self.broker, connected_rx(good.cid))[0]
        if KIND == "starling":
            self.assertIn("(p4, c0, k60, u'edge')", line)
        sub = self.client(username="edge", password="right")
        got = self.collect(sub, "+/data", 1)
        pub = self.client(broker=good)
        pub_refused = self.client(broker=peer)
        deadline = time.monotonic() + 15
        while b"u" not in got.payloads() and time.monotonic() < deadline:
            self.publish(pub, "u/data", b"u", 1)
            self.publish(pub_refused, "t/data", b"t", 1)
            time.sleep(0.2)
        self.assertIn(b"u", got.payloads())
        self.assertNotIn(b"t", got.payloads())


class BridgeRestart(PersistCase, BridgeCase):
    """cleansession false at QoS 1, the remote restarted mid-stream (killed: a crash): what
    Mosquitto's clients published while it was down is queued by the bridge and reaches the
    remote's persistent subscriber once the bridge has reconnected; nothing acknowledged is
    lost."""

    N = 300

    def test_restart_mid_stream(self):
        sig = signal.SIGKILL if KIND == "starling" else signal.SIGTERM  # persistlib.KILL_REASON
        sub_id = unique_id("keeper")
        sub = self.session311(sub_id)
        self.collect(sub, "t/data/#", 1)
        peer = self.bridge(["t/# out 1"], cleansession=False)
        wait_crossing(self, peer, self.broker, "t/probe")
        pub = self.client(broker=peer)
        acked = []
        for i in range(self.N):
            if i == self.N // 3:
                self.broker.halt(sig)
            if i == 2 * self.N // 3:
                self.broker.resume()
                self.reconnect(sub, timeout=10)
            self.publish(pub, "t/data/%d" % i, b"%d" % i, 1, timeout=10)
            acked.append(b"%d" % i)
            time.sleep(0.005)
        want = set(acked)
        self.wait_for(lambda: want <= set(sub.messages.payloads()), 30,
                      lambda: "lost %d of %d, e.g. %r" % (
                          len(want - set(sub.messages.payloads())), len(want),
                          sorted(want - set(sub.messages.payloads()))[:10]))


class BridgeFlagRaw(BrokerTestCase):
    """The private level itself, with a raw client speaking as a bridge (no Mosquitto)."""

    def bridge_raw(self, cid=None, level=0x84, clean=True):
        r = self.raw()
        ca = r.connect(cid or unique_id("rb"), clean, 60, version=level,
                       protocol_name="MQIsdp" if level & 0x7F == 3 else "MQTT")
        self.assertEqual(ca.rc, 0, "CONNACK rc %d for level 0x%02x" % (ca.rc, level))
        return r

    def check_no_echo(self, level):
        """Overlapping subscriptions, all No Local; a plain subscriber sees everything."""
        b = self.bridge_raw(level=level)
        self.assertEqual(b.subscribe([("t/#", 1), ("t/+", 0), ("t/own", 2)]), [1, 0, 2])
        watcher = self.client()
        seen = self.collect(watcher, "t/#", 1)
        b.publish_acked("t/own", b"from-bridge", 1)
        b.publish_acked("t/own", b"from-bridge-2", 2)
        b.publish("t/own", b"from-bridge-0", 0)
        other = self.client()
        self.publish(other, "t/other", b"kept", 1, retain=True)
        self.publish(other, "t/own", b"from-other", 1)
        self.exactly_once(seen, [b"from-bridge", b"from-bridge-2", b"from-bridge-0", b"kept",
                                 b"from-other"])
        self.assertFalse(any(m.retain for m in seen), "a plain 3.1.1 subscriber keeps retain")
        got = [(p.payload, p.retain) for p in b.drain(ack=True) if p.type == PUBLISH]
        want = [(b"from-other", False), (b"kept", True)]
        self.assertEqual(sorted(set(got)), want,
                         "a bridge must get neither its own messages nor a cleared retain")
        # Once however many of its subscriptions match, as for any client. Mosquitto 2.0.11
        # sends a message it delivers as retained once per matching subscription (its
        # duplicate check skips retained deliveries).
        if KIND == "starling":
            self.assertEqual(sorted(got), want)

    def exactly_once(self, got, expected):
        BridgeCase.exactly_once(self, got, expected, 5.0)

    def test_level_0x84_no_echo_retain_as_published(self):
        self.check_no_echo(0x84)

    def test_level_0x83_no_echo_retain_as_published(self):
        self.check_no_echo(0x83)

    def test_logged_as_bridge(self):
        cid = unique_id("rb")
        self.bridge_raw(cid)
        wait_log(self, self.broker, connected_rx(cid))

    def test_shared_subscription_of_a_bridge(self):
        """No Local does not apply to a shared subscription (MQTT 5 forbids it there, and
        Mosquitto does not apply it): a bridge's shared subscription is granted and gets its
        own messages, with their retain flag."""
        b = self.bridge_raw()
        self.assertEqual(b.subscribe([("$share/g/s/#", 1)]), [1])
        b.publish_acked("s/1", b"own", 1, retain=True)
        got = [(p.payload, p.retain) for p in b.drain(ack=True) if p.type == PUBLISH]
        self.assertEqual(got, [(b"own", True)])

    def test_wrong_name_for_the_level(self):
        """The private bit goes with the level its protocol name goes with: MQIsdp 0x84 and
        MQTT 0x83 are refused (CONNACK 0x01), as Mosquitto does."""
        for name, level in (("MQIsdp", 0x84), ("MQTT", 0x83), ("MQTT", 0x80)):
            with self.subTest(name=name, level=level):
                r = self.raw()
                ca = r.connect(unique_id("rb"), True, 60, version=level, protocol_name=name)
                self.assertEqual(ca.rc, 1)
                self.assert_closed(r)

    @starling_only("Mosquitto 2.0.11 masks the bit off any level and takes 0x85 as MQTT 5")
    def test_level_0x85_refused(self):
        """MQTT 5 bridges use subscription options, there is no private 5.0 level: 0x85 is an
        unsupported level (CONNACK 0x01, the answer a 3.x broker gives)."""
        r = self.raw()
        ca = r.connect(unique_id("rb"), True, 60, version=0x85, protocol_name="MQTT")
        self.assertEqual(ca.rc, 1)
        self.assert_closed(r)


class BridgeFlagPersisted(PersistCase):
    """A bridge's persistent session keeps its subscriptions' options across a restart: the
    same client coming back (as a bridge, or even as a plain client) is not sent its own
    messages and gets retained flags as published, before it subscribes again."""

    def test_options_survive_a_restart(self):
        cid = unique_id("pb")
        b = self.raw()
        self.assertEqual(b.connect(cid, False, 60, version=0x84).rc, 0)
        self.assertEqual(b.subscribe([("t/#", 1)]), [1])
        b.disconnect()
        self.restart()
        for level in (0x84, 0x04):
            with self.subTest(level=level):
                r = self.raw()
                ca = r.connect(cid, False, 60, version=level)
                self.assertEqual((ca.rc, ca.session_present), (0, True))
                r.publish_acked("t/own", b"own-%d" % level, 1)
                other = self.client()
                self.publish(other, "t/r", b"r-%d" % level, 1, retain=True)
                got = [(p.payload, p.retain) for p in r.drain(ack=True) if p.type == PUBLISH]
                self.assertEqual(got, [(b"r-%d" % level, True)])
                r.disconnect()


if __name__ == "__main__":
    unittest.main()
