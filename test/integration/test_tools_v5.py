"""starling-pub and starling-sub speaking MQTT 5 (-V 5, -V mqttv5, or any -D property), checked
three ways:

  - against the broker under test, with paho's MQTT 5 client and mosquitto_pub/mosquitto_sub on
    the other side: properties arrive intact and in order, sessions outlive the connection for
    the session expiry interval, subscription identifiers and will delays take effect;
  - side by side with mosquitto_pub/mosquitto_sub 2.0.11, whose output, exit status and bytes
    on the wire the tools copy: the same command line is run through both and compared (errors
    for bad -D combinations, refused connections, the CONNECT/SUBSCRIBE/PUBLISH bytes, -d);
  - against a scripted fake broker (Fake5, a thread on its own port) for what a real broker is
    not asked to do on demand: CONNACK limits (Receive Maximum, Maximum QoS, Retain Available,
    Maximum Packet Size, Server Keep Alive, Assigned Client Identifier), topic aliases sent to
    the client, and a DISCONNECT from the server.

Where the tools deliberately differ from mosquitto 2.0.11 (an exit status, a check that later
Mosquitto releases added) the test says so and checks Starling's behaviour.
"""

import os
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness import (MOSQUITTO_PUB, MOSQUITTO_SUB, SANITIZER_MARKERS, BrokerTestCase,
                     client_cmd, starling_only, tool, unique_id, varint)

PUB = tool("starling-pub")
SUB = tool("starling-sub")
RUN_TIMEOUT_S = 15
MOSQUITTO_OF = {PUB: MOSQUITTO_PUB, SUB: MOSQUITTO_SUB}


def tool_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def cmd_for(program, host, port, *args):
    """argv aimed at host:port (our tools flush per line and need no stdbuf)."""
    if program in (PUB, SUB):
        return [program, "-h", host, "-p", str(port)] + [str(a) for a in args]
    return ["/usr/bin/stdbuf", "-oL", program, "-h", host, "-p", str(port)] + [
        str(a) for a in args]


def normalise(text, program):
    """Output with the tool's name replaced, so Starling's and Mosquitto's compare."""
    name = os.path.basename(program)
    return text.replace(name, "TOOL")


# --- packets for the fake broker --------------------------------------------------------------
def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def pkt(first, body):
    return bytes([first]) + varint(len(body)) + body


def props_block(raw=b""):
    return varint(len(raw)) + raw


def connack(code=0, props=b"", session_present=False):
    return pkt(0x20, bytes([1 if session_present else 0, code]) + props_block(props))


def suback(pid, codes):
    return pkt(0x90, struct.pack("!H", pid) + props_block() + bytes(codes))


def puback(pid, reason=0, props=b""):
    return pkt(0x40, struct.pack("!H", pid) + bytes([reason]) + props_block(props))


def publish(topic, payload, props=b"", qos=0, pid=1):
    body = mqtt_str(topic) + (struct.pack("!H", pid) if qos else b"") + props_block(props)
    return pkt(0x30 | (qos << 1), body + payload)


def disconnect(reason, props=b""):
    return pkt(0xE0, bytes([reason]) + props_block(props))


def u8(pid, v):
    return bytes([pid, v])


def u16(pid, v):
    return bytes([pid]) + struct.pack("!H", v)


def u32(pid, v):
    return bytes([pid]) + struct.pack("!I", v)


def utf8(pid, s):
    return bytes([pid]) + mqtt_str(s)


class Fake5:
    """A one-connection fake broker running a script in a thread. Steps: "r" reads one packet;
    bytes are sent; ("wait", s) records what arrives for s seconds; ("mark", x) records x;
    "close" closes. Afterwards every packet is recorded until the client closes (3 s at
    most). `got` is the record: raw packets (bytes) and marks, in order."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.got = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.host, self.port = self.sock.getsockname()
        self._buf = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _packet(self, conn, deadline):
        """One whole packet, or None at end of stream or the deadline."""
        while True:
            if len(self._buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self._buf) and i < 5:
                    b = self._buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(self._buf) >= i + n:
                            p, self._buf = self._buf[:i + n], self._buf[i + n:]
                            return p
                        break
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            conn.settimeout(left)
            try:
                data = conn.recv(65536)
            except socket.timeout:
                return None
            if not data:
                return None
            self._buf += data

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                for st in self.steps:
                    if st == "r":
                        self.got.append(self._packet(conn, time.monotonic() + 5))
                    elif st == "close":
                        return
                    elif isinstance(st, bytes):
                        conn.sendall(st)
                    elif st[0] == "mark":
                        self.got.append(st[1])
                    elif st[0] == "wait":
                        end = time.monotonic() + st[1]
                        while time.monotonic() < end:
                            p = self._packet(conn, end)
                            if p is not None:
                                self.got.append(p)
                end = time.monotonic() + 3
                while True:
                    p = self._packet(conn, end)
                    if p is None:
                        return
                    self.got.append(p)
            except OSError:
                return

    def packets(self):
        return [p for p in self.got if isinstance(p, bytes)]

    def close(self):
        self.sock.close()
        self.thread.join(timeout=6)


class V5TestCase(BrokerTestCase):
    """Helpers: run a tool (ours or Mosquitto's) against the broker or a fake, compare."""

    def assert_clean(self, text):
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, text, "sanitizer report:\n" + text)

    def run_tool(self, program, *args, target=None, stdin=None):
        """Runs a tool to completion (bounded); returns (rc, stdout text, stderr text)."""
        target = target or self.broker
        cmd = cmd_for(program, target.host, target.port, *args)
        try:
            res = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S, env=tool_env(),
                                 stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            self.fail("%s hung: %s" % (os.path.basename(program), e))
        out = res.stdout.decode("utf-8", "replace")
        err = res.stderr.decode("utf-8", "replace")
        self.assert_clean(err)
        return res.returncode, out, err

    def spub(self, *args, stdin=None):
        rc, out, err = self.run_tool(PUB, *args, stdin=stdin)
        self.assertEqual(rc, 0, "starling-pub %r failed (%d): %s" % (args, rc, err))
        return out

    def spawn_tool(self, program, *args):
        p = self.spawn(cmd_for(program, self.broker.host, self.broker.port, *args),
                       env=tool_env())
        return p

    def fake(self, steps):
        f = Fake5(steps)
        self.defer(f.close)
        return f

    def run_on_fake(self, program, steps, *args):
        """Runs `program` against a fresh Fake5; returns (rc, out, err, packets recorded)."""
        f = self.fake(steps)
        rc, out, err = self.run_tool(program, *args, target=f)
        f.thread.join(timeout=6)
        return rc, out, err, f.got

    def compare_on_fake(self, program, steps, *args):
        """Runs Mosquitto's tool and ours against the same script; asserts the same exit
        status, output and bytes on the wire. Returns Starling's (rc, out, err, got)."""
        theirs = self.run_on_fake(MOSQUITTO_OF[program], steps, *args)
        ours = self.run_on_fake(program, steps, *args)
        self.assertEqual(
            (ours[0], normalise(ours[1], program), normalise(ours[2], program), ours[3]),
            (theirs[0], normalise(theirs[1], MOSQUITTO_OF[program]),
             normalise(theirs[2], MOSQUITTO_OF[program]), theirs[3]),
            "starling vs mosquitto for %r" % (args,))
        return ours


# --- starling-pub to the broker -------------------------------------------------------------------
class PubV5Test(V5TestCase):
    def test_properties_reach_a_paho_v5_subscriber(self):
        sub = self.client5()
        got = self.collect(sub, "v5/props", 1)
        self.spub("-V", "5", "-t", "v5/props", "-q", 1, "-m", "payload",
                  "-D", "publish", "user-property", "k1", "v1",
                  "-D", "publish", "content-type", "text/plain",
                  "-D", "publish", "user-property", "k2", "v2",
                  "-D", "publish", "response-topic", "v5/reply",
                  "-D", "publish", "correlation-data", "corr-42",
                  "-D", "publish", "message-expiry-interval", 120,
                  "-D", "publish", "payload-format-indicator", 1,
                  "-D", "publish", "user-property", "k1", "again")
        (m,) = self.wait_messages(got, 1)
        p = m.props
        self.assertEqual((m.topic, m.payload, m.qos), ("v5/props", b"payload", 1))
        # User properties unaltered and in order [MQTT-3.3.2-17] [MQTT-3.3.2-18].
        self.assertEqual(p.UserProperty, [("k1", "v1"), ("k2", "v2"), ("k1", "again")])
        self.assertEqual(p.ContentType, "text/plain")
        self.assertEqual(p.ResponseTopic, "v5/reply")
        self.assertEqual(p.CorrelationData, b"corr-42")
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertTrue(100 <= p.MessageExpiryInterval <= 120, p.MessageExpiryInterval)

    def test_version_spellings_and_d_alone(self):
        sub = self.client5()
        got = self.collect(sub, "v5/spell/#", 0)
        self.spub("-V", "mqttv5", "-t", "v5/spell/a", "-m", "a")
        # -D makes the connection MQTT 5 by itself, as with mosquitto_pub.
        self.spub("-t", "v5/spell/b", "-m", "b", "-D", "publish", "user-property", "x", "y")
        self.spub("-V", "mqttv311", "-t", "v5/spell/c", "-m", "c")
        self.spub("-V", "311", "-t", "v5/spell/d", "-m", "d")
        msgs = {m.topic: m for m in self.wait_messages(got, 4)}
        self.assertEqual(msgs["v5/spell/b"].props.UserProperty, [("x", "y")])
        self.assertEqual(sorted(msgs), ["v5/spell/a", "v5/spell/b", "v5/spell/c", "v5/spell/d"])

    def test_debug_output_matches_mosquitto_pub(self):
        for qos in (0, 1, 2):
            args = ("-V", "5", "-d", "-i", "dbg5", "-t", "v5/d", "-q", qos, "-m", "hello",
                    "--repeat", 2, "-D", "publish", "user-property", "a", "b")
            rc, ours, err = self.run_tool(PUB, *args)
            self.assertEqual(rc, 0, err)
            rc, theirs, err = self.run_tool(MOSQUITTO_PUB, *args)
            self.assertEqual(rc, 0, err)
            self.assertEqual(ours.splitlines(), theirs.splitlines(), "QoS %d" % qos)

    def test_topic_alias_after_the_first_message(self):
        sub = self.client5()
        got = self.collect(sub, "v5/alias", 1)
        args = ("-V", "5", "-d", "-i", "al5", "-t", "v5/alias", "-q", 1, "-m", "m",
                "--repeat", 3, "-D", "publish", "topic-alias", 1)
        out = self.spub(*args)
        # The first PUBLISH binds the alias; the next ones send only the alias, which
        # libmosquitto's -d prints as a NULL topic.
        sends = [l for l in out.splitlines() if "sending PUBLISH" in l]
        self.assertEqual(len(sends), 3, out)
        self.assertIn("'v5/alias'", sends[0])
        self.assertTrue(all("'(null)'" in l for l in sends[1:]), sends)
        msgs = self.wait_messages(got, 3)
        self.assertEqual([(m.topic, m.payload) for m in msgs], [("v5/alias", b"m")] * 3)
        _, theirs, _ = self.run_tool(MOSQUITTO_PUB, *args)
        self.assertEqual(out.splitlines(), theirs.splitlines())

    def test_assigned_client_identifier_is_used(self):
        # No -i: an empty id, and the broker's Assigned Client Identifier from CONNACK on
        # [MQTT-3.2.2-16], as mosquitto_pub -V 5 does.
        out = self.spub("-V", "5", "-d", "-t", "v5/assigned", "-m", "x").splitlines()
        self.assertEqual(out[0], "Client (null) sending CONNECT")
        self.assertRegex(out[1], r"^Client \S+ received CONNACK \(0\)$")
        self.assertNotIn("(null)", out[1])
        assigned = out[1].split()[1]
        self.assertTrue(all(l.startswith("Client %s " % assigned) for l in out[1:]), out)



class RefusedV5Test(V5TestCase):
    config_lines = ["allow_anonymous false"]

    def test_v5_connection_refused(self):
        for program in (PUB, SUB):
            args = ("-V", "5", "-t", "v5/refused") + (("-m", "x") if program == PUB else ())
            rc, out, err = self.run_tool(program, *args)
            mrc, mout, merr = self.run_tool(MOSQUITTO_OF[program], *args)
            self.assertEqual((rc, normalise(err, program)),
                             (mrc, normalise(merr, MOSQUITTO_OF[program])))
            self.assertEqual(rc, 0x87)
            self.assertTrue(err.startswith("Connection error: Not authorized\n"), err)


# --- starling-sub from the broker ---------------------------------------------------------------
class SubV5Test(V5TestCase):
    def wait_subscribed(self, proc):
        line = proc.wait_line(lambda l: "received SUBACK" in l)
        self.assertIsNotNone(line, "never subscribed:\n%s" % proc.output())

    def test_prints_what_mosquitto_sub_prints(self):
        subs = {}
        for program in (SUB, MOSQUITTO_SUB):
            p = self.spawn_tool(program, "-V", "5", "-d", "-v", "-q", 2, "-t", "v5/s/#",
                                "-C", 4)
            self.wait_subscribed(p)
            subs[program] = p
        base = ("-V", "5", "-D", "publish", "user-property", "k", "v",
                "-D", "publish", "content-type", "ct", "-D", "publish", "correlation-data", "c")
        # QoS 2 last: mosquitto_sub prints a QoS 2 message at the PUBREL, starling-sub at
        # the PUBLISH (duplicates suppressed until the PUBREL), so only the last one
        # prints in the same place.
        self.run_tool(MOSQUITTO_PUB, *base, "-t", "v5/s/0", "-m", "zero")
        self.run_tool(MOSQUITTO_PUB, *base, "-t", "v5/s/1", "-q", 1, "-m", "one")
        self.run_tool(MOSQUITTO_PUB, *base, "-t", "v5/s/2", "-q", 1, "-m", "two",
                      "-D", "publish", "topic-alias", 1)
        self.run_tool(MOSQUITTO_PUB, *base, "-t", "v5/s/3", "-q", 2, "-n")
        printed = {}
        for program, p in subs.items():
            self.assertEqual(p.wait(10), 0, p.output())
            printed[program] = [l for l in p.lines() if not l.startswith(("Client ",
                                                                           "Subscribed"))]
        self.assertEqual(printed[SUB], ["v5/s/0 zero", "v5/s/1 one", "v5/s/2 two",
                                        "v5/s/3 (null)"])
        self.assertEqual(printed[SUB], printed[MOSQUITTO_SUB])

    def test_session_expiry_interval_keeps_the_session(self):
        cid = unique_id("se")
        topic = "v5/session/" + cid
        # Clean start, but the session outlives the connection for 60 s.
        rc, _, err = self.run_tool(SUB, "-V", "5", "-i", cid, "-q", 1, "-t", topic, "-E",
                                   "-D", "connect", "session-expiry-interval", 60)
        self.assertEqual(rc, 0, err)
        pub = self.client5()
        self.publish(pub, topic, b"while away", 1)
        # -c resumes it (-x 60 so it need not live for ever); the queued message arrives.
        rc, out, err = self.run_tool(SUB, "-V", "5", "-i", cid, "-c", "-x", 60, "-q", 1,
                                     "-t", topic, "-C", 1, "-v", "-W", 5)
        self.assertEqual((rc, out), (0, topic + " while away\n"), err)
        # Without the property the session ends with the connection: nothing is kept.
        cid2 = unique_id("se0")
        rc, _, err = self.run_tool(SUB, "-V", "5", "-i", cid2, "-q", 1, "-t", topic + "/0",
                                   "-E")
        self.assertEqual(rc, 0, err)
        self.publish(pub, topic + "/0", b"lost", 1)
        rc, out, err = self.run_tool(SUB, "-V", "5", "-i", cid2, "-c", "-x", 60, "-q", 1,
                                     "-t", "v5/other", "-C", 1, "-W", 1)
        self.assertEqual((rc, out, err), (27, "", "Timed out\n"))

    def test_subscription_identifier(self):
        cid = unique_id("sid")
        topic = "v5/sid/" + cid
        rc, _, err = self.run_tool(SUB, "-V", "5", "-i", cid, "-c", "-x", 60, "-q", 1,
                                   "-t", topic, "-E",
                                   "-D", "subscribe", "subscription-identifier", 4242,
                                   "-D", "subscribe", "user-property", "k", "v")
        self.assertEqual(rc, 0, err)
        # The broker kept the subscription with its identifier: a paho client resuming the
        # session gets it on every matching message [MQTT-3.3.4-3].
        resumed = self.client5(cid, clean_start=False)
        self.assertTrue(resumed.connack[0], "session not present")
        pub = self.client5()
        self.publish(pub, topic, b"hello", 1)
        (m,) = self.wait_messages(resumed.messages, 1)
        self.assertEqual((m.topic, m.payload), (topic, b"hello"))
        self.assertEqual(m.props.SubscriptionIdentifier, [4242])

    def test_will_delay_interval_and_will_properties(self):
        watcher = self.client5()
        wills = self.collect(watcher, "v5/will/#", 1)
        cid = unique_id("wd")
        p = self.spawn_tool(SUB, "-V", "5", "-d", "-i", cid, "-x", 30, "-t", "v5/none",
                            "--will-topic", "v5/will/" + cid, "--will-payload", "gone",
                            "--will-qos", 1, "-D", "will", "will-delay-interval", 2,
                            "-D", "will", "user-property", "why", "test",
                            "-D", "will", "content-type", "text/plain")
        self.wait_subscribed(p)
        killed = time.monotonic()
        p.signal(signal.SIGKILL)
        p.wait(5)
        # Not at once: after the will delay (section 3.1.3.2.2; the session outlives it).
        self.assert_no_messages(wills, 1.0)
        (m,) = self.wait_messages(wills, 1, timeout=6)
        self.assertGreaterEqual(time.monotonic() - killed, 1.5)
        self.assertEqual(m.payload, b"gone")
        self.assertEqual(m.props.UserProperty, [("why", "test")])
        self.assertEqual(m.props.ContentType, "text/plain")

    def test_sigterm_sends_disconnect_with_will(self):
        # mosquitto_sub -V 5 ends on SIGINT/SIGTERM with reason 0x04: the broker publishes
        # the will (section 3.14.2.1). Under MQTT 3.1.1 the same signal drops it.
        watcher = self.client5()
        wills = self.collect(watcher, "v5/sigwill/#", 0)
        for version in ("5", "311"):
            p = self.spawn_tool(SUB, "-V", version, "-d", "-t", "v5/none",
                                "--will-topic", "v5/sigwill/" + version, "--will-payload", "bye")
            self.wait_subscribed(p)
            p.signal(signal.SIGTERM)
            self.assertEqual(p.wait(5), 0, p.output())
            self.assertIn("sending DISCONNECT", p.output())
            if version == "5":
                self.wait_messages(wills, 1)
        self.assert_no_messages(wills, 0.7, expected=1)
        self.assertEqual([(m.topic, m.payload) for m in wills], [("v5/sigwill/5", b"bye")])

    @starling_only("Mosquitto 2.0.11 closes a taken-over MQTT 5 connection without the "
                   "DISCONNECT 0x8E of [MQTT-3.1.4-3]")
    def test_session_taken_over(self):
        cid = unique_id("take")
        p = self.spawn_tool(SUB, "-V", "5", "-d", "-i", cid, "-t", "v5/take")
        self.wait_subscribed(p)
        self.client5(cid)
        self.assertEqual(p.wait(5), 0x8E, p.output())
        self.assertIn("Received DISCONNECT (142)", p.lines())
        self.assertIn("Error: The broker disconnected: Session taken over", p.output())


# --- side by side with Mosquitto's tools, against a fake broker ------------------------------------
class FakeBrokerV5Test(V5TestCase):
    OK = connack(0)

    def test_connect_and_subscribe_bytes_match_mosquitto(self):
        steps = ["r", self.OK, "r", suback(1, [1, 1]), ("wait", 0.3)]
        cases = [
            ("-V", "5", "-E", "-t", "a", "-t", "b/#", "-q", 1, "-i", "fixed"),
            ("-E", "-t", "a", "-q", 1, "-i", "fixed", "-D", "connect", "receive-maximum", 5,
             "-D", "connect", "user-property", "k", "v", "-D", "connect",
             "topic-alias-maximum", 10, "-D", "connect", "maximum-packet-size", 4096,
             "-D", "connect", "request-problem-information", 0,
             "-D", "connect", "request-response-information", 1),
            ("-V", "5", "-E", "-t", "a", "-i", "fixed", "-c", "-R", "--retain-as-published",
             "-D", "subscribe", "subscription-identifier", 300,
             "-D", "subscribe", "user-property", "sk", "sv"),
            ("-V", "5", "-E", "-t", "a", "-i", "fixed", "-x", 30, "-C", 3, "-u", "user",
             "-P", "pw", "-D", "disconnect", "user-property", "dk", "dv",
             "-D", "disconnect", "session-expiry-interval", 0),
            ("-V", "5", "-E", "-t", "a", "-i", "fixed", "--will-topic", "w/t",
             "--will-payload", "wp", "--will-qos", 2, "--will-retain",
             "-D", "will", "will-delay-interval", 7, "-D", "will", "content-type", "ct",
             "-D", "will", "user-property", "k", "v", "-D", "will",
             "message-expiry-interval", 9, "-D", "will", "payload-format-indicator", 1,
             "-D", "will", "response-topic", "rt", "-D", "will", "correlation-data", "cd"),
            ("-V", "5", "-E", "-t", "a", "-P", "password-alone", "-d",
             "-D", "connect", "authentication-method", "m",
             "-D", "connect", "authentication-data", "d"),
        ]
        for args in cases:
            with self.subTest(args=args):
                self.compare_on_fake(SUB, steps, *args)

    def test_publish_bytes_match_mosquitto(self):
        steps = ["r", self.OK, "r", puback(1), "r", puback(2), ("wait", 0.3)]
        args = ("-V", "5", "-d", "-i", "fixed", "-t", "p/t", "-q", 1, "-m", "msg",
                "--repeat", 2, "-D", "publish", "content-type", "ct",
                "-D", "publish", "user-property", "a", "1", "-D", "publish", "user-property",
                "a", "2", "-D", "publish", "message-expiry-interval", 60,
                "-D", "publish", "correlation-data", "c", "-D", "publish", "response-topic",
                "r/t")
        self.compare_on_fake(PUB, steps, *args)

    def test_refused_connection_reasons(self):
        # Every CONNACK reason code of MQTT 5 table 3-1 that refuses: the same words and
        # the code as exit status, from both tools.
        codes = [0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
                 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F]
        for code in codes:
            for program, args in ((PUB, ("-t", "t", "-m", "m")), (SUB, ("-t", "t", "-d"))):
                with self.subTest(code=hex(code), tool=os.path.basename(program)):
                    rc, _, err, _ = self.compare_on_fake(program, ["r", connack(code)],
                                                         "-V", "5", *args)
                    self.assertEqual(rc, code)
                    self.assertTrue(err.startswith("Connection error: "), err)

    def test_refused_by_a_3x_broker(self):
        # A 3.1.1 broker answers an MQTT 5 CONNECT with a 3.1.1 CONNACK 0x01: reported as
        # 0x84, with mosquitto's advice.
        for program, args in ((PUB, ("-t", "t", "-m", "m")), (SUB, ("-t", "t"))):
            rc, _, err, _ = self.compare_on_fake(program, ["r", bytes([0x20, 2, 0, 1])],
                                                 "-V", "5", *args)
            self.assertEqual(rc, 0x84)
            self.assertIn("Unsupported Protocol Version. Try connecting to an MQTT v5 "
                          "broker, or use MQTT v3.x mode.", err)

    def test_refused_publish_is_a_warning(self):
        # PUBACK 0x87 with a Reason String: mosquitto_pub's warning, and still exit 0.
        steps = ["r", self.OK, "r", puback(1, 0x87, utf8(0x1F, "no write access"))]
        rc, _, err, _ = self.compare_on_fake(PUB, steps, "-V", "5", "-d", "-t", "t", "-q", 1,
                                             "-m", "m")
        self.assertEqual((rc, err), (0, "Warning: Publish 1 failed: Not authorized.\n"
                                        "no write access\n"))

    def test_broker_limits_from_connack(self):
        # Retain Available 0: the retain flag is dropped [MQTT-3.2.2-14], as libmosquitto
        # drops it.
        steps = ["r", connack(0, u8(0x25, 0)), "r", ("wait", 0.2)]
        _, _, _, got = self.compare_on_fake(PUB, steps, "-V", "5", "-t", "t", "-r", "-m", "m")
        self.assertEqual(got[1][0], 0x30)
        # Maximum QoS 0: a QoS 1 message is not sent [MQTT-3.2.2-11]; mosquitto_pub's words,
        # but exit 1 where mosquitto_pub exits 0.
        steps = ["r", connack(0, u8(0x24, 0)), ("wait", 0.3)]
        rc, _, err, got = self.run_on_fake(PUB, steps, "-V", "5", "-t", "t", "-q", 1, "-m", "m")
        self.assertEqual((rc, err), (1, "Error: Message QoS not supported on broker, try a "
                                        "lower QoS.\n"))
        self.assertEqual(got[1:], [b"\xe0\x00"])  # only a clean DISCONNECT followed
        # Maximum Packet Size 10: a larger PUBLISH is not sent [MQTT-3.2.2-15].
        steps = ["r", connack(0, u32(0x27, 10)), ("wait", 0.3)]
        rc, _, err, got = self.run_on_fake(PUB, steps, "-V", "5", "-t", "t", "-m", "too long")
        self.assertEqual(rc, 1)
        self.assertIn("maximum packet size", err)
        self.assertEqual(got[1:], [b"\xe0\x00"])
        # Topic Alias Maximum absent: no alias goes to the broker [MQTT-3.2.2-18].
        steps = ["r", self.OK, "r", ("wait", 0.2)]
        _, _, _, got = self.run_on_fake(PUB, steps, "-V", "5", "-t", "t", "-m", "m",
                                        "-D", "publish", "topic-alias", 1)
        self.assertEqual(got[1], publish("t", b"m"))

    def test_receive_maximum_limits_messages_in_flight(self):
        # The broker takes two unacknowledged QoS 1 messages [MQTT-3.3.4-7]: the third
        # waits for a PUBACK although -M allows 20.
        steps = ["r", connack(0, u16(0x21, 2)), ("wait", 0.6), ("mark", "acked 1"),
                 puback(1), ("wait", 0.4), ("mark", "acked 2"), puback(2), puback(3),
                 ("wait", 0.4), puback(4), ("wait", 0.3)]
        f = self.fake(steps)
        rc, _, err = self.run_tool(PUB, "-V", "5", "-t", "t", "-q", 1, "-l", target=f,
                                   stdin=b"1\n2\n3\n4\n")
        f.thread.join(timeout=6)
        self.assertEqual(rc, 0, err)
        kinds = [p if isinstance(p, str) else p[0] >> 4 for p in f.got[1:]]
        self.assertEqual(kinds, [3, 3, "acked 1", 3, "acked 2", 3, 14])

    def test_server_keep_alive_is_honoured(self):
        # -k 60, but the broker says 1 s [MQTT-3.2.2-21]: a PINGREQ well before 60 s (the
        # fake waits 5 s at most for it).
        steps = ["r", connack(0, u16(0x13, 1)), "r", suback(1, [0]), "r", b"\xd0\x00",
                 disconnect(0x8B)]
        rc, out, err, got = self.run_on_fake(SUB, steps, "-V", "5", "-d", "-k", 60, "-t", "t")
        self.assertEqual(got[2], b"\xc0\x00", out)
        self.assertIn("Client (null) sending PINGREQ", out.splitlines())
        self.assertEqual(rc, 0x8B, err)

    def test_assigned_client_identifier_in_debug_lines(self):
        steps = ["r", connack(0, utf8(0x12, "given-id")), "r", ("wait", 0.2)]
        rc, out, err, got = self.compare_on_fake(PUB, steps, "-V", "5", "-d", "-t", "t",
                                                 "-m", "m")
        self.assertEqual(out.splitlines()[:3], [
            "Client (null) sending CONNECT", "Client given-id received CONNACK (0)",
            "Client given-id sending PUBLISH (d0, q0, r0, m1, 't', ... (1 bytes))"])

    def test_topic_aliases_from_the_broker(self):
        steps = ["r", self.OK, "r", suback(1, [0]),
                 publish("t/a", b"p1", u16(0x23, 1)), publish("", b"p2", u16(0x23, 1)),
                 publish("t/b", b"p3", u16(0x23, 1)), publish("", b"p4", u16(0x23, 1))]
        rc, out, err, _ = self.run_on_fake(SUB, steps, "-V", "5", "-t", "#", "-v", "-C", 4,
                                           "-D", "connect", "topic-alias-maximum", 2)
        self.assertEqual((rc, out), (0, "t/a p1\nt/a p2\nt/b p3\nt/b p4\n"), err)
        # Without -D connect topic-alias-maximum the client takes none [MQTT-3.3.2-10]: an
        # alias is the broker's protocol error, answered with DISCONNECT 0x94.
        rc, out, err, got = self.run_on_fake(SUB, steps, "-V", "5", "-t", "#", "-v", "-C", 4)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("topic alias", err)
        self.assertEqual(got[-1], b"\xe0\x01\x94")
        # An alias never bound: Protocol Error 0x82.
        steps = ["r", self.OK, "r", suback(1, [0]), publish("", b"p", u16(0x23, 1))]
        rc, _, err, got = self.run_on_fake(SUB, steps, "-V", "5", "-t", "#", "-D", "connect",
                                           "topic-alias-maximum", 2)
        self.assertEqual(rc, 1)
        self.assertEqual(got[-1], b"\xe0\x01\x82")

    def test_disconnect_from_the_broker(self):
        reason = utf8(0x1F, "maintenance")
        for program, args in ((SUB, ("-t", "t")), (PUB, ("-t", "t", "-l"))):
            steps = ["r", self.OK] + (["r", suback(1, [0])] if program == SUB else []) + [
                disconnect(0x8B, reason), "close"]
            f = self.fake(steps)
            # stdin stays open: starling-pub -l ends only because the broker ends it.
            p = subprocess.Popen(cmd_for(program, f.host, f.port, "-V", "5", "-d", *args),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=tool_env())
            try:
                p.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            out, err = p.stdout.read().decode(), p.stderr.read().decode()
            for stream in (p.stdin, p.stdout, p.stderr):
                stream.close()
            self.assert_clean(err)
            # The -d line is libmosquitto's; the error line and exit status are ours
            # (mosquitto's clients print nothing else and exit 0 or reconnect).
            self.assertIn("Received DISCONNECT (139)", out.splitlines())
            self.assertEqual((p.returncode, err),
                             (0x8B, "Error: The broker disconnected: Server shutting down "
                                    "(maintenance).\n"))


# --- bad command lines ------------------------------------------------------------------------------
class BadPropertiesTest(V5TestCase):
    # Each is refused before connecting, with mosquitto_pub/mosquitto_sub's words and status.
    SAME_AS_MOSQUITTO = [
        (PUB, ["-D", "connect", "bogus", "1"]),
        (PUB, ["-D", "bogus", "content-type", "1"]),
        (PUB, ["-D", "suback", "reason-string", "x"]),
        (PUB, ["-D", "connect", "content-type", "x"]),
        (PUB, ["-D", "connect", "maximum-qos", "1"]),
        (PUB, ["-D", "publish", "will-delay-interval", "5"]),
        (PUB, ["-D", "subscribe", "topic-alias", "5"]),
        (PUB, ["-D", "publish", "subscription-identifier", "3"]),
        (PUB, ["-D", "auth", "authentication-method", "x"]),
        (PUB, ["-D", "puback", "user-property", "a", "b"]),
        (PUB, ["-D", "connack", "maximum-qos", "1"]),
        (PUB, ["-D", "connect", "user-property", "a"]),
        (PUB, ["-D", "connect", "receive-maximum"]),
        (PUB, ["-D"]),
        (PUB, ["-D", "connect", "receive-maximum", "70000"]),
        (PUB, ["-D", "connect", "receive-maximum", "-1"]),
        (PUB, ["-D", "connect", "receive-maximum", "0"]),
        (PUB, ["-D", "connect", "receive-maximum", "abc"]),
        (PUB, ["-D", "connect", "maximum-packet-size", "0"]),
        (PUB, ["-D", "publish", "topic-alias", "0"]),
        (PUB, ["-D", "connect", "session-expiry-interval", "4294967296"]),
        (PUB, ["-D", "publish", "payload-format-indicator", "256"]),
        (PUB, ["-D", "subscribe", "subscription-identifier", "268435456"]),
        (PUB, ["-D", "publish", "content-type", "bad\x01"]),
        (PUB, ["-D", "publish", "content-type", "x", "-D", "publish", "content-type", "y"]),
        (PUB, ["-D", "connect", "session-expiry-interval", "5", "-c", "-i", "x"]),
        (PUB, ["-V", "5", "-c"]),
        (PUB, ["-c", "-V", "mqttv5", "-I", "prefix"]),
        (PUB, ["-V", "5", "-x", "abc"]),
        (PUB, ["-V", "5", "-x", "-2"]),
        (PUB, ["-V", "5", "-x"]),
        (PUB, ["-V", "5", "-x", "-1"]),
        (PUB, ["-D", "connect", "user-property", "a", "b", "-V", "311"]),
        (PUB, ["-D", "will", "user-property", "a", "b", "-V", "31", "--will-topic", "w"]),
        (PUB, ["-V", "6"]),
        (PUB, ["--property", "CONNECT", "Receive-Maximum", "70000"]),
        (PUB, ["--quiet", "-D", "publish", "topic-alias", "0"]),
        (SUB, ["-D", "publish", "subscription-identifier", "x"]),
        (SUB, ["-D", "subscribe", "subscription-identifier", "1",
               "-D", "subscribe", "subscription-identifier", "2"]),
        (SUB, ["-D", "will", "will-delay-interval", "1", "-D", "will", "will-delay-interval",
               "2"]),
        (SUB, ["-D", "disconnect", "server-reference", "x", "-D", "unsubscribe",
               "reason-string", "x"]),
    ]

    def test_same_as_mosquitto(self):
        for program, args in self.SAME_AS_MOSQUITTO:
            full = ["-t", "t"] + (["-m", "m"] if program == PUB else []) + args
            with self.subTest(tool=os.path.basename(program), args=args):
                ours = self.run_tool(program, *full, target=self.unreachable())
                theirs = self.run_tool(MOSQUITTO_OF[program], *full,
                                       target=self.unreachable())
                self.assertEqual((ours[0], normalise(ours[2], program)),
                                 (theirs[0], normalise(theirs[2], MOSQUITTO_OF[program])))
                self.assertEqual(ours[0], 1)

    def unreachable(self):
        """A port nothing listens on: a command line that parses fails to connect."""

        class Nowhere:
            host = "127.0.0.1"
            port = 1

        return Nowhere

    def test_stricter_than_mosquitto_2_0_11(self):
        # Values the spec forbids that mosquitto 2.0.11 sends anyway (later releases refuse
        # them as we do): a Payload Format Indicator above 1, a Response Topic with a
        # wildcard [MQTT-3.3.2-14], Authentication Data without a method (3.1.2.11.10), a
        # Subscription Identifier of 0 (3.8.2.1.2).
        cases = [(PUB, ["-D", "publish", "payload-format-indicator", "2"], "PUBLISH"),
                 (PUB, ["-D", "publish", "response-topic", "r/#"], "PUBLISH"),
                 (PUB, ["-D", "will", "payload-format-indicator", "3"], "Will"),
                 (PUB, ["-D", "connect", "authentication-data", "d"], "CONNECT"),
                 (SUB, ["-D", "subscribe", "subscription-identifier", "0"], "SUBSCRIBE")]
        for program, args, packet in cases:
            with self.subTest(args=args):
                full = ["-t", "t"] + (["-m", "m"] if program == PUB else []) + args
                rc, _, err = self.run_tool(program, *full, target=self.unreachable())
                self.assertEqual((rc, err), (1, "Error in %s properties: A network protocol "
                                                "error occurred when communicating with the "
                                                "broker.\n\nUse '%s --help' to see usage.\n"
                                             % (packet, os.path.basename(program))))


if __name__ == "__main__":
    unittest.main()
