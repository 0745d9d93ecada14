"""starling-pub and starling-sub, Mosquitto's mosquitto_pub/mosquitto_sub counterparts, driven
as their users drive them: against the broker under test, with real peers on the other side
(paho clients, mosquitto_pub, mosquitto_sub), flag by flag. Output, exit codes and error
messages are compared with what Mosquitto's clients print, since scripts depend on them.

A small fake broker (FakeBroker, a thread on its own port) answers CONNECT with a chosen
CONNACK code and records the CONNECT it got: that checks -u/-P, -k, -c, -V, -I and the
refusal messages exactly, whatever the broker under test supports.
"""

import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (MOSQUITTO_PUB, MOSQUITTO_SUB, SANITIZER_MARKERS, BrokerError,
                     BrokerTestCase, client_cmd, free_port, tool, unique_id)

PUB = tool("starling-pub")
SUB = tool("starling-sub")
RUN_TIMEOUT_S = 15


def tool_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def cmd_for(program, broker, *args):
    """argv aimed at `broker`. Our tools flush stdout per message, so they need no stdbuf
    (whose LD_PRELOAD would upset the ASan runtime); Mosquitto's clients get it."""
    if program in (PUB, SUB):
        return [program, "-h", broker.host, "-p", str(broker.port)] + [str(a) for a in args]
    return client_cmd(program, broker, *args)


def is_debug(line):
    """A line of -d output (or the SUBACK summary) rather than a printed message."""
    return line.startswith("Client ") or line.startswith("Subscribed (mid:")


class ToolsTestCase(BrokerTestCase):
    """Helpers to run the tools against self.broker and check their output."""

    def assert_clean(self, text):
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, text, "sanitizer report:\n" + text)

    def run_tool(self, program, *args, stdin=None, broker=None, connect=True):
        """Runs a tool to completion (bounded); returns (rc, stdout bytes, stderr text)."""
        if connect:
            cmd = cmd_for(program, broker or self.broker, *args)
        else:
            cmd = [program] + [str(a) for a in args]
        try:
            res = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S, env=tool_env(),
                                 stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            self.fail("%s hung: %s" % (os.path.basename(program), e))
        err = res.stderr.decode("utf-8", "replace")
        self.assert_clean(err)
        return res.returncode, res.stdout, err

    def spub(self, *args, stdin=None):
        """starling-pub that must succeed; returns its stdout (the -d lines, if any)."""
        rc, out, err = self.run_tool(PUB, *args, stdin=stdin)
        self.assertEqual(rc, 0, "starling-pub %r failed (%d): %s" % (args, rc, err))
        return out.decode("utf-8", "replace")

    def mpub(self, *args, stdin=None):
        rc, out, err = self.run_tool(MOSQUITTO_PUB, *args, stdin=stdin)
        self.assertEqual(rc, 0, "mosquitto_pub %r failed: %s %s" % (args, out, err))

    def ssub(self, *args, program=SUB):
        """A running starling-sub (or mosquitto_sub) that has its SUBACK (-d is added)."""
        p = self.spawn(cmd_for(program, self.broker, "-d", *args), env=tool_env())
        line = p.wait_line(lambda l: "received SUBACK" in l)
        self.assertIsNotNone(line, "%s never subscribed:\n%s" % (program, p.output()))
        return p

    def printed(self, proc):
        """The message lines a -d subscriber printed so far."""
        return [l for l in proc.lines() if not is_debug(l)]

    def wait_printed(self, proc, n, timeout=5.0):
        self.wait_for(lambda: len(self.printed(proc)) >= n, timeout,
                      "expected %d printed lines:\n%s" % (n, proc.output()))
        return self.printed(proc)[:n]

    def finish(self, proc, expect_rc=0, timeout=5.0):
        rc = proc.wait(timeout)
        self.assertEqual(rc, expect_rc, "exit status %r, output:\n%s" % (rc, proc.output()))
        self.assert_clean(proc.output())


# --- starling-pub ------------------------------------------------------------------------------
class PubTest(ToolsTestCase):
    def test_each_qos_to_paho(self):
        sub = self.client()
        got = self.collect(sub, "tools/qos/#", 2)
        for qos in (0, 1, 2):
            self.spub("-t", "tools/qos/%d" % qos, "-q", qos, "-m", "m%d" % qos)
        msgs = self.wait_messages(got, 3)
        self.assertEqual(sorted((m.topic, m.payload, m.qos, m.retain) for m in msgs),
                         [("tools/qos/%d" % q, b"m%d" % q, q, False) for q in (0, 1, 2)])

    def test_debug_output_of_each_flow(self):
        # -d prints each packet as mosquitto_pub -d does.
        out = self.spub("-d", "-i", "dbg", "-t", "tools/d", "-q", 2, "-m", "hello")
        self.assertEqual(out.splitlines(), [
            "Client dbg sending CONNECT",
            "Client dbg received CONNACK (0)",
            "Client dbg sending PUBLISH (d0, q2, r0, m1, 'tools/d', ... (5 bytes))",
            "Client dbg received PUBREC (Mid: 1)",
            "Client dbg sending PUBREL (m1)",
            "Client dbg received PUBCOMP (Mid: 1, RC:0)",
            "Client dbg sending DISCONNECT"])
        out = self.spub("-d", "-i", "dbg1", "-t", "tools/d", "-q", 1, "-m", "x")
        self.assertIn("Client dbg1 received PUBACK (Mid: 1, RC:0)", out.splitlines())

    def test_to_mosquitto_sub_with_lines(self):
        s = self.ssub("-F", "%t|%q|%r|%p", "-t", "tools/l", "-q", 2, "-C", 4,
                      program=MOSQUITTO_SUB)
        # -l: one message per line, '\n' stripped (a '\r' stays, as in mosquitto_pub), empty
        # lines are empty messages, the last line needs no newline.
        self.spub("-t", "tools/l", "-q", 1, "-l", stdin=b"one\n\nthree\r\nlast")
        self.assertEqual(self.wait_printed(s, 4), ["tools/l|1|0|one", "tools/l|1|0|",
                                                   "tools/l|1|0|three\r", "tools/l|1|0|last"])
        self.finish(s)

    def test_lines_are_sent_as_they_arrive(self):
        sub = self.client()
        got = self.collect(sub, "tools/stream", 1)
        p = subprocess.Popen(cmd_for(PUB, self.broker, "-t", "tools/stream", "-q", 1, "-l"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=tool_env())
        self.defer(lambda: (p.poll() is None and p.kill(), p.wait(5)))
        p.stdin.write(b"first\n")
        p.stdin.flush()
        # Published before stdin ends: -l streams.
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"first")
        self.assertIsNone(p.poll(), "starling-pub -l exited before end of input")
        p.stdin.write(b"second")
        p.stdin.close()
        self.assertEqual(p.wait(RUN_TIMEOUT_S), 0)
        out = p.stdout.read().decode(errors="replace")
        p.stdout.close()
        self.assert_clean(out)
        self.assertEqual([m.payload for m in self.wait_messages(got, 2)], [b"first", b"second"])

    def test_lines_in_order_through_the_inflight_window(self):
        sub = self.client()
        got = self.collect(sub, "tools/many", 1)
        lines = b"".join(b"%d\n" % i for i in range(300))
        # -M 5 keeps at most five QoS 1 messages unacknowledged; all 300 still arrive in order.
        self.spub("-t", "tools/many", "-q", 1, "-M", 5, "-l", stdin=lines)
        msgs = self.wait_messages(got, 300, timeout=15)
        self.assertEqual([m.payload for m in msgs], [b"%d" % i for i in range(300)])

    def test_file_and_stdin_messages(self):
        sub = self.client()
        got = self.collect(sub, "tools/f/#", 1)
        blob = bytes(range(256)) * 400 + b"\n\x00tail"
        with tempfile.NamedTemporaryFile(prefix="starling-tools-") as f:
            f.write(blob)
            f.flush()
            self.spub("-t", "tools/f/file", "-q", 1, "-f", f.name)
        self.spub("-t", "tools/f/stdin", "-q", 1, "-s", stdin=b"line 1\nline 2\n")
        msgs = {m.topic: m.payload for m in self.wait_messages(got, 2)}
        self.assertEqual(msgs["tools/f/file"], blob)
        self.assertEqual(msgs["tools/f/stdin"], b"line 1\nline 2\n")
        rc, _, err = self.run_tool(PUB, "-t", "tools/f/none", "-f", "/nonexistent/starling")
        self.assertEqual(rc, 1)
        self.assertIn('Error: Unable to open file "/nonexistent/starling".', err)

    def test_retain_and_clear_with_null_message(self):
        self.spub("-t", "tools/ret", "-r", "-q", 1, "-m", "kept")
        late = self.client()
        got = self.collect(late, "tools/ret", 1)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.payload, m.retain), (b"kept", True))
        # -n sends a zero-length message; retained, it removes the retained one.
        self.spub("-t", "tools/ret", "-r", "-n")
        self.wait_messages(got, 2)
        self.assertEqual(got[1].payload, b"")
        later = self.client()
        self.assert_no_messages(self.collect(later, "tools/ret", 1), 0.5)

    def test_repeat(self):
        sub = self.client()
        got = self.collect(sub, "tools/rep", 1)
        start = time.monotonic()
        self.spub("-t", "tools/rep", "-q", 1, "-m", "again", "--repeat", 3,
                  "--repeat-delay", "0.2")
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.assertEqual([m.payload for m in self.wait_messages(got, 3)], [b"again"] * 3)
        self.assert_no_messages(got, 0.3, expected=3)

    def test_protocol_31(self):
        sub = self.client()
        got = self.collect(sub, "tools/v31", 1)
        self.spub("-V", "mqttv31", "-t", "tools/v31", "-q", 1, "-m", "old")
        self.spub("-V", "31", "-t", "tools/v31", "-m", "older")
        self.assertEqual([m.payload for m in self.wait_messages(got, 2)], [b"old", b"older"])

    def test_no_will_after_clean_exit(self):
        watch = self.client()
        got = self.collect(watch, "tools/pw/#", 1)
        # starling-pub ends with DISCONNECT, so the broker drops its will [MQTT-3.14.4-3].
        self.spub("-t", "tools/pw/msg", "-q", 1, "-m", "m", "--will-topic", "tools/pw/will",
                  "--will-payload", "must-not-appear")
        self.spub("-t", "tools/pw/end", "-q", 1, "-m", "end")
        self.wait_for(lambda: any(m.topic == "tools/pw/end" for m in got))
        self.assertEqual([m.topic for m in got], ["tools/pw/msg", "tools/pw/end"])


# --- starling-sub ------------------------------------------------------------------------------
class SubTest(ToolsTestCase):
    def test_from_mosquitto_pub_each_qos(self):
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = "tools/s/%d" % qos
                s = self.ssub("-t", topic, "-q", qos, "-C", 2)
                self.mpub("-t", topic, "-q", qos, "-m", "first")
                self.mpub("-t", topic, "-q", qos, "-m", "second")
                self.assertEqual(self.wait_printed(s, 2), ["first", "second"])
                self.finish(s)
                lines = s.lines()
                if qos == 1:
                    self.assertIn("sending PUBACK (m1, rc0)", "\n".join(lines))
                if qos == 2:
                    text = "\n".join(lines)
                    # -C ends the run only after the started QoS 2 flows complete.
                    for frag in ("sending PUBREC (m1, rc0)", "received PUBREL (Mid: 1)",
                                 "sending PUBCOMP (m1)", "sending PUBREC (m2, rc0)",
                                 "received PUBREL (Mid: 2)", "sending PUBCOMP (m2)"):
                        self.assertIn(frag, text)

    def test_verbose_and_empty_payloads(self):
        s = self.ssub("-t", "tools/v/#", "-v", "-C", 3)
        self.mpub("-t", "tools/v/a", "-m", "with space")
        self.mpub("-t", "tools/v/b", "-n")
        self.spub("-t", "tools/v/c", "-m", "x")
        # As mosquitto_sub: an empty payload prints "topic (null)" with -v.
        self.assertEqual(self.wait_printed(s, 3),
                         ["tools/v/a with space", "tools/v/b (null)", "tools/v/c x"])
        self.finish(s)
        # Without -v an empty payload prints nothing at all.
        s = self.ssub("-t", "tools/v/plain", "-C", 2)
        self.mpub("-t", "tools/v/plain", "-n")
        self.mpub("-t", "tools/v/plain", "-m", "after")
        self.finish(s)
        self.assertEqual(self.printed(s), ["after"])

    def test_no_newline(self):
        pubc = self.client()
        self.publish(pubc, "tools/n/1", b"AB", 1, retain=True)
        self.publish(pubc, "tools/n/2", b"CD", 1, retain=True)
        rc, out, err = self.run_tool(SUB, "-t", "tools/n/+", "-N", "-C", 2)
        self.assertEqual(rc, 0, err)
        self.assertIn(out, (b"ABCD", b"CDAB"))
        rc, out, err = self.run_tool(SUB, "-t", "tools/n/1", "-N", "-v", "-C", 1)
        self.assertEqual((rc, out), (0, b"tools/n/1 AB"), err)

    def test_large_binary_message(self):
        blob = os.urandom(1 << 20)
        pubc = self.client()
        self.publish(pubc, "tools/big", blob, 1, retain=True)
        rc, out, err = self.run_tool(SUB, "-t", "tools/big", "-N", "-q", 1, "-C", 1)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, blob)

    def test_count_exits_after_exactly_c_messages(self):
        s = self.ssub("-t", "tools/c", "-q", 1, "-C", 3)
        self.spub("-t", "tools/c", "-q", 1, "-l", stdin=b"1\n2\n3\n4\n5\n")
        self.finish(s)
        self.assertEqual(self.printed(s), ["1", "2", "3"])

    def test_skip_retained_with_R(self):
        pubc = self.client()
        self.publish(pubc, "tools/R", b"stale", 1, retain=True)
        s = self.ssub("-t", "tools/R", "-R", "-C", 1)
        # The stale message was received (r1 in the debug line) but not printed.
        self.assertIsNotNone(s.wait_line(lambda l: "received PUBLISH (d0, q0, r1" in l),
                             s.output())
        self.publish(pubc, "tools/R", b"fresh", 1)
        self.finish(s)
        self.assertEqual(self.printed(s), ["fresh"])

    def test_retained_only(self):
        pubc = self.client()
        self.publish(pubc, "tools/ro/1", b"old", 1, retain=True)
        s = self.ssub("-t", "tools/ro/#", "-v", "--retained-only")
        self.wait_printed(s, 1)
        # The first fresh message ends the run without being printed.
        self.publish(pubc, "tools/ro/2", b"new", 1)
        self.finish(s)
        self.assertEqual(self.printed(s), ["tools/ro/1 old"])

    def test_filter_out_with_T(self):
        s = self.ssub("-t", "tools/T/#", "-T", "tools/T/skip/#", "-v", "-C", 1)
        self.mpub("-t", "tools/T/skip/x", "-m", "hidden")
        self.mpub("-t", "tools/T/keep", "-m", "shown")
        self.finish(s)
        self.assertEqual(self.printed(s), ["tools/T/keep shown"])

    def test_exit_after_suback_with_E(self):
        rc, out, err = self.run_tool(SUB, "-t", "tools/E/a", "-t", "tools/E/b", "-q", 1, "-E",
                                     "-d", "-i", "eee")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.decode().splitlines(), [
            "Client eee sending CONNECT",
            "Client eee received CONNACK (0)",
            "Client eee sending SUBSCRIBE (Mid: 1, Topic: tools/E/a, QoS: 1, Options: 0x00)",
            "Client eee sending SUBSCRIBE (Mid: 1, Topic: tools/E/b, QoS: 1, Options: 0x00)",
            "Client eee received SUBACK",
            "Subscribed (mid: 1): 1, 1",
            "Client eee sending DISCONNECT"])

    def test_timeout_W_exits_27(self):
        start = time.monotonic()
        rc, out, err = self.run_tool(SUB, "-t", "tools/W", "-W", 1)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 27, err)
        self.assertEqual(err, "Timed out\n")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)

    def test_keepalive_pings(self):
        # -k 5 (the smallest Mosquitto's clients accept): an idle client sends PINGREQ after
        # five seconds without sending anything [MQTT-3.1.2-23] and the broker answers.
        rc, out, err = self.run_tool(SUB, "-t", "tools/k", "-k", 5, "-W", 7, "-d")
        self.assertEqual(rc, 27, err)
        text = out.decode()
        self.assertIn("sending PINGREQ", text)
        self.assertIn("received PINGRESP", text)

    def test_persistent_session_with_c(self):
        cid = unique_id("tools")
        # -E with -c creates the session and leaves at once, as with mosquitto_sub.
        rc, _, err = self.run_tool(SUB, "-c", "-i", cid, "-t", "tools/sess", "-q", 1, "-E")
        self.assertEqual(rc, 0, err)
        self.spub("-t", "tools/sess", "-q", 1, "-l", stdin=b"a\nb\n")
        self.spub("-t", "tools/sess", "-q", 0, "-m", "qos0-not-queued")
        self.spub("-t", "tools/sess", "-q", 2, "-m", "c")
        rc, out, err = self.run_tool(SUB, "-c", "-i", cid, "-t", "tools/sess", "-q", 1, "-C",
                                     3)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"a\nb\nc\n")
        # Without -c the session is gone on the next connection.
        rc, _, err = self.run_tool(SUB, "-i", cid, "-t", "tools/sess", "-q", 1, "-E")
        self.assertEqual(rc, 0, err)
        self.spub("-t", "tools/sess", "-q", 1, "-m", "lost")
        rc, out, err = self.run_tool(SUB, "-c", "-i", cid, "-t", "tools/x", "-W", 1)
        self.assertEqual((rc, out), (27, b""), err)

    def test_will_when_killed_not_when_signalled(self):
        watch = self.client()
        got = self.collect(watch, "tools/will/#", 2)
        victim = self.ssub("-t", "tools/other", "--will-topic", "tools/will/k",
                           "--will-payload", "gone", "--will-qos", 1, "--will-retain")
        victim.signal(signal.SIGKILL)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.topic, m.payload, m.qos), ("tools/will/k", b"gone", 1))
        late = self.client()
        (r,) = self.wait_messages(self.collect(late, "tools/will/k", 1), 1)
        self.assertEqual((r.payload, r.retain), (b"gone", True))
        # SIGINT and SIGTERM end with DISCONNECT: exit 0 and no will.
        for sig in (signal.SIGINT, signal.SIGTERM):
            polite = self.ssub("-t", "tools/other", "--will-topic", "tools/will/polite",
                               "--will-payload", "no")
            polite.signal(sig)
            self.finish(polite)
        self.assert_no_messages(got, 0.5, expected=1)

    def test_id_defaults_and_prefix(self):
        p = self.ssub("-t", "tools/id", "-E")
        self.finish(p)
        self.assertIn("Client starling-sub-%d sending CONNECT" % p.pid, p.lines())
        p = self.ssub("-t", "tools/id", "-E", "-I", "pre-")
        self.finish(p)
        self.assertIn("Client pre-%d sending CONNECT" % p.pid, p.lines())

    def test_multiple_filters_and_protocol_31(self):
        s = self.ssub("-V", "mqttv31", "-t", "tools/m/a", "-t", "tools/m/b", "-q", 2, "-v",
                      "-C", 2)
        self.spub("-t", "tools/m/b", "-q", 2, "-m", "bee")
        self.mpub("-t", "tools/m/a", "-q", 1, "-m", "ay")
        self.finish(s)
        self.assertEqual(self.printed(s), ["tools/m/b bee", "tools/m/a ay"])


# --- credentials and refusals: a broker with a password file, and a fake one ---------------------
class PasswordTest(ToolsTestCase):
    def setUp(self):
        self.pwdir = tempfile.TemporaryDirectory(prefix="starling-tools-pw-")
        path = os.path.join(self.pwdir.name, "passwd")
        subprocess.run(["/usr/bin/mosquitto_passwd", "-c", "-b", path, "alice", "secret"],
                       check=True, timeout=10, stdout=subprocess.DEVNULL)
        # Mosquitto drops root for its own user, who must be able to read the file.
        os.chmod(self.pwdir.name, 0o755)
        os.chmod(path, 0o644)
        self.config_lines = ("allow_anonymous false", "password_file " + path)
        try:
            super().setUp()
        except BrokerError:
            self.pwdir.cleanup()
            raise

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.pwdir.cleanup()

    def test_user_and_password(self):
        s = self.ssub("-u", "alice", "-P", "secret", "-t", "tools/pw", "-C", 1)
        self.spub("-u", "alice", "-P", "secret", "-t", "tools/pw", "-m", "authorised")
        self.finish(s)
        self.assertEqual(self.printed(s), ["authorised"])
        for args in ((), ("-u", "alice", "-P", "wrong")):
            with self.subTest(args=args):
                rc, _, err = self.run_tool(PUB, "-t", "tools/pw", "-m", "x", *args)
                self.assertIn(rc, (4, 5), err)
                self.assertTrue(err.startswith("Connection error: Connection Refused: "), err)
                rc2, _, err2 = self.run_tool(SUB, "-t", "tools/pw", *args)
                self.assertIn(rc2, (4, 5), err2)


class FakeBroker:
    """Accepts one connection on its own port, records the CONNECT, answers CONNACK `code`,
    then (code 0) answers PINGREQ and closes on DISCONNECT."""

    def __init__(self, code, after_suback=b""):
        self.code = code
        self.after_suback = after_suback  # bytes sent right after the SUBACK
        self.connect = None
        self.received = []  # (first byte, body) of every packet after CONNECT
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.host, self.port = self.sock.getsockname()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_packet(self, conn):
        head = conn.recv(1)
        if not head:
            return None, b""
        length, mult = 0, 1
        while True:
            b = conn.recv(1)[0]
            length += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        body = b""
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                break
            body += chunk
        return head[0], body

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                first, body = self._read_packet(conn)
                if first is None:
                    return
                self.connect = (first, body)
                conn.sendall(bytes([0x20, 2, 0, self.code]))
                while self.code == 0:
                    first, body = self._read_packet(conn)
                    if first is None:
                        return
                    self.received.append((first, body))
                    if first >> 4 == 14:
                        return
                    if first >> 4 == 8:  # SUBSCRIBE: grant what was asked
                        codes, pos = b"", 2
                        while pos < len(body):
                            (n,) = struct.unpack_from("!H", body, pos)
                            codes += body[pos + 2 + n: pos + 3 + n]
                            pos += 3 + n
                        conn.sendall(bytes([0x90, 2 + len(codes)]) + body[:2] + codes +
                                     self.after_suback)
                    elif first >> 4 == 12:  # PINGREQ
                        conn.sendall(bytes([0xD0, 0]))
            except (OSError, IndexError):
                return

    def parsed(self):
        """(protocol name, level, flags, keepalive, [payload strings])."""
        first, body = self.connect
        assert first == 0x10, first
        pos = 0

        def field():
            nonlocal pos
            (n,) = struct.unpack_from("!H", body, pos)
            value = body[pos + 2: pos + 2 + n]
            pos += 2 + n
            return value

        name = field()
        level, flags = body[pos], body[pos + 1]
        (keepalive,) = struct.unpack_from("!H", body, pos + 2)
        pos += 4
        strings = []
        while pos < len(body):
            strings.append(field())
        return name, level, flags, keepalive, strings

    def close(self):
        self.sock.close()
        self.thread.join(timeout=5)


class FakeBrokerTest(ToolsTestCase):
    def fake(self, code, after_suback=b""):
        f = FakeBroker(code, after_suback)
        self.defer(f.close)
        return f

    def test_connect_fields(self):
        f = self.fake(0)
        rc, _, err = self.run_tool(PUB, "-i", "fid", "-k", 17, "-c", "-u", "bob", "-P", "pw",
                                   "-t", "t", "-m", "m", "--will-topic", "w/t",
                                   "--will-payload", "wp", "--will-qos", 2, "--will-retain",
                                   "-V", "mqttv31", broker=f)
        self.assertEqual(rc, 0, err)
        f.thread.join(timeout=5)
        name, level, flags, keepalive, strings = f.parsed()
        self.assertEqual((name, level, keepalive), (b"MQIsdp", 3, 17))
        # user, password, will retain, will QoS 2, will flag; clean session off (-c).
        self.assertEqual(flags, 0x80 | 0x40 | 0x20 | 0x10 | 0x04)
        self.assertEqual(strings, [b"fid", b"w/t", b"wp", b"bob", b"pw"])

    def test_default_connect(self):
        f = self.fake(0)
        rc, _, err = self.run_tool(SUB, "-t", "t", "-E", broker=f)
        self.assertEqual(rc, 0, err)
        f.thread.join(timeout=5)
        name, level, flags, keepalive, strings = f.parsed()
        self.assertEqual((name, level, flags, keepalive), (b"MQTT", 4, 0x02, 60))
        self.assertTrue(strings[0].startswith(b"starling-sub-"), strings)

    def test_qos2_duplicate_delivered_once(self):
        def publish(topic, payload, qos, pid, dup=False):
            body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", pid) + payload
            flags = (qos << 1) | (0x08 if dup else 0)
            return bytes([0x30 | flags, len(body)]) + body

        # A QoS 2 message, its redelivery (DUP) before the PUBREL, the PUBREL, then a QoS 1
        # one: the duplicate is acknowledged again but not printed [MQTT-4.3.3-2].
        script = (publish(b"t", b"once", 2, 7) + publish(b"t", b"once", 2, 7, dup=True) +
                  bytes([0x62, 2, 0, 7]) + publish(b"t", b"end", 1, 8))
        f = self.fake(0, script)
        rc, out, err = self.run_tool(SUB, "-t", "t", "-q", 2, "-v", "-C", 2, broker=f)
        self.assertEqual((rc, out), (0, b"t once\nt end\n"), err)
        f.thread.join(timeout=5)
        sent = [(first, body) for first, body in f.received]
        self.assertEqual(sent[1:], [(0x50, b"\x00\x07"), (0x50, b"\x00\x07"),
                                    (0x70, b"\x00\x07"), (0x40, b"\x00\x08"), (0xE0, b"")])

    def test_refusal_messages_and_exit_codes(self):
        texts = {1: "unacceptable protocol version.", 2: "identifier rejected.",
                 3: "broker unavailable.", 4: "bad user name or password.",
                 5: "not authorised."}
        for code, text in texts.items():
            with self.subTest(code=code):
                f = self.fake(code)
                rc, _, err = self.run_tool(PUB, "-t", "t", "-m", "m", broker=f)
                self.assertEqual(rc, code)
                self.assertEqual(err, "Connection error: Connection Refused: %s\n"
                                      "Error: The connection was refused.\n" % text)
                f = self.fake(code)
                rc, _, err = self.run_tool(SUB, "-t", "t", broker=f)
                self.assertEqual(rc, code)
                self.assertEqual(err, "Connection error: Connection Refused: %s\n" % text)

    def test_nothing_listening(self):
        port = free_port()
        for program, extra in ((PUB, ("-m", "x")), (SUB, ("-v",))):
            rc, _, err = self.run_tool(program, "-h", "127.0.0.1", "-p", port, "-t", "t",
                                       *extra, connect=False)
            self.assertEqual((rc, err), (1, "Error: Connection refused\n"))


# --- bad command lines: exit 1 and Mosquitto's message ----------------------------------------------
class BadArgumentsTest(ToolsTestCase):
    CASES = [
        (PUB, ["-t", "a"], "Error: Both topic and message must be supplied."),
        (PUB, ["-m", "x"], "Error: Both topic and message must be supplied."),
        (PUB, ["-t", "a", "-m", "x", "-n"], "Error: Only one type of message can be sent at once."),
        (PUB, ["-t", "a", "-l", "-s"], "Error: Only one type of message can be sent at once."),
        (PUB, ["-t", "a", "-m"], "Error: -m argument given but no message specified."),
        (PUB, ["-t", "a/+", "-m", "x"],
         "Error: Invalid publish topic 'a/+', does it contain '+' or '#'?"),
        (PUB, ["-t", "a", "-m", "x", "-q", "3"], "Error: Invalid QoS given: 3"),
        (PUB, ["-t", "a", "-m", "x", "-k", "3"],
         "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive."),
        (PUB, ["-t", "a", "-m", "x", "-p", "70000"], "Error: Invalid port given: 70000"),
        (PUB, ["-t", "a", "-m", "x", "-c"],
         "Error: You must provide a client id if you are using the -c option."),
        (PUB, ["-t", "a", "-m", "x", "-i", "a", "-I", "b"],
         "Error: -i and -I argument cannot be used together."),
        (PUB, ["-t", "a", "-m", "x", "-V", "7"], "Error: Invalid protocol version argument given."),
        (PUB, ["-t", "a", "-m", "x", "--will-payload", "p"],
         "Error: Will payload given, but no will topic given."),
        (PUB, ["-t", "a", "-m", "x", "--will-topic", "w/#"],
         "Error: Invalid will topic 'w/#', does it contain '+' or '#'?"),
        (PUB, ["-t", "a", "-m", "x", "--will-qos", "5"], "Error: Invalid will QoS 5."),
        (PUB, ["-t", "a", "-m", "x", "-P", "pw"],
         "Error: Problem setting username and/or password."),
        (PUB, ["-t", "a", "-m", "x", "--repeat", "0"], "Error: --repeat argument must be >0."),
        (PUB, ["-t", "a", "-m", "x", "-C", "1"], "Error: Unknown option '-C'."),
        (PUB, ["-t", "a", "-m", "x", "--bogus"], "Error: Unknown option '--bogus'."),
        (SUB, [], "Error: You must specify a topic to subscribe to."),
        (SUB, ["-t", "a/#/b"],
         "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?"),
        (SUB, ["-t", "a", "-T", "x+"],
         "Error: Invalid filter topic 'x+', are all '+' and '#' wildcards correct?"),
        (SUB, ["-t", "a", "-C", "0"], 'Error: Invalid message count "0".'),
        (SUB, ["-t", "a", "-W", "0"], 'Error: Invalid timeout "0".'),
        (SUB, ["-t", "a", "-W"], "Error: -W argument given but no timeout specified."),
        (SUB, ["-t", "a", "-R", "--retained-only"],
         "Error: Combining '-R' and '--retained-only' makes no sense."),
        (SUB, ["-t", "a", "-c", "-I", "p"],
         "Error: You must provide a client id if you are using the -c option."),
        (SUB, ["-t", "a", "-m", "x"], "Error: Unknown option '-m'."),
        (SUB, ["-t", "a", "-V"], "Error: --protocol-version argument given but no version "
                                 "specified."),
    ]

    def test_each_bad_command_line(self):
        for program, args, message in self.CASES:
            with self.subTest(program=os.path.basename(program), args=args):
                rc, _, err = self.run_tool(program, *args)
                self.assertEqual(rc, 1, err)
                self.assertIn(message, err)

    def test_help(self):
        for program in (PUB, SUB):
            rc, out, err = self.run_tool(program, "--help", connect=False)
            self.assertEqual((rc, err), (1, ""))
            name = os.path.basename(program)
            self.assertIn("Usage: %s" % name, out.decode())
            self.assertIn("--will-topic", out.decode())


if __name__ == "__main__":
    unittest.main()
