"""The broker with Mosquitto's own command-line clients, as its users drive it:
mosquitto_sub/mosquitto_pub at each QoS and protocol version, retained messages (-r) and their
removal (-r -n), wills (--will-*), persistent sessions (-c -i) and credentials (-u -P).
Every process is started by the harness and killed by PID if a test leaves it running.
"""

import signal
import subprocess
import unittest

from harness import MOSQUITTO_PUB, MOSQUITTO_SUB, BrokerTestCase, client_cmd, unique_id

FMT = "MSG %t|%q|%r|%p"  # the lines a test reads; -d debug lines never start with "MSG "


class RealClientsTest(BrokerTestCase):
    def sub(self, *args):
        """A running mosquitto_sub that has its SUBACK (-d prints it)."""
        p = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-d", "-F", FMT, *args))
        line = p.wait_line(lambda l: "received suback" in l.lower())
        self.assertIsNotNone(line, "mosquitto_sub never subscribed:\n" + p.output())
        return p

    def pub(self, *args, stdin=None):
        """Runs mosquitto_pub to completion (bounded) and checks it succeeded."""
        cmd = client_cmd(MOSQUITTO_PUB, self.broker, *args)
        try:
            res = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=10)
        except subprocess.TimeoutExpired as e:
            self.fail("mosquitto_pub hung: %s" % e)
        self.assertEqual(res.returncode, 0, res.stdout.decode(errors="replace"))

    def messages(self, proc, n, timeout=5.0):
        """The first n message lines of a mosquitto_sub as (topic, qos, retain, payload)."""
        self.wait_for(lambda: len(self._msg_lines(proc)) >= n, timeout,
                      "expected %d messages:\n%s" % (n, proc.output()))
        return self._msg_lines(proc)[:n]

    @staticmethod
    def _msg_lines(proc):
        out = []
        for line in proc.lines():
            if line.startswith("MSG "):
                topic, qos, retain, payload = line[4:].split("|", 3)
                out.append((topic, int(qos), int(retain), payload))
        return out

    def test_publish_subscribe_each_qos(self):
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = "cli/qos%d" % qos
                s = self.sub("-t", topic, "-q", qos, "-C", 3)
                self.pub("-t", topic, "-q", qos, "-l", stdin=b"one\ntwo\nthree\n")
                self.assertEqual(self.messages(s, 3),
                                 [(topic, qos, 0, p) for p in ("one", "two", "three")])
                self.assertEqual(s.wait(5), 0, s.output())

    def test_qos_downgrade_between_tools(self):
        s = self.sub("-t", "cli/down", "-q", 1, "-C", 1)
        self.pub("-t", "cli/down", "-q", 2, "-m", "from-two")
        self.assertEqual(self.messages(s, 1), [("cli/down", 1, 0, "from-two")])

    def test_protocol_versions(self):
        for sub_v, pub_v in (("mqttv31", "mqttv311"), ("mqttv311", "mqttv31"),
                             ("mqttv31", "mqttv31")):
            with self.subTest(sub=sub_v, pub=pub_v):
                topic = "cli/%s/%s" % (sub_v, pub_v)
                s = self.sub("-V", sub_v, "-t", topic, "-q", 1, "-C", 1)
                self.pub("-V", pub_v, "-t", topic, "-q", 1, "-m", "v")
                self.assertEqual(self.messages(s, 1), [(topic, 1, 0, "v")])

    def test_retained_with_r(self):
        self.pub("-t", "cli/ret", "-r", "-q", 1, "-m", "kept")
        s = self.sub("-t", "cli/ret", "-C", 1)
        self.assertEqual(self.messages(s, 1), [("cli/ret", 0, 1, "kept")])
        self.assertEqual(s.wait(5), 0)
        # Through a wildcard, at the QoS it was stored with.
        s = self.sub("-t", "cli/+", "-q", 2, "-C", 1)
        self.assertEqual(self.messages(s, 1), [("cli/ret", 1, 1, "kept")])

    def test_clear_retained_with_r_n(self):
        self.pub("-t", "cli/clear", "-r", "-m", "old")
        self.pub("-t", "cli/clear", "-r", "-n")
        # --retained-only exits at the first live message: anything retained comes before it.
        s = self.sub("-t", "cli/clear", "--retained-only")
        self.pub("-t", "cli/clear", "-m", "live")
        self.assertEqual(s.wait(5), 0, s.output())
        self.assertEqual(self._msg_lines(s), [], "retained message not cleared")

    def test_will_on_kill(self):
        watcher = self.sub("-t", "cli/will", "-q", 1, "-C", 1)
        victim = self.sub("-t", "cli/other", "--will-topic", "cli/will", "--will-payload",
                          "bye", "--will-qos", 1, "--will-retain")
        victim.signal(signal.SIGKILL)
        self.assertEqual(self.messages(watcher, 1), [("cli/will", 1, 0, "bye")])
        late = self.sub("-t", "cli/will", "-C", 1)
        self.assertEqual(self.messages(late, 1), [("cli/will", 0, 1, "bye")])

    def test_no_will_after_clean_exit(self):
        # mosquitto_pub ends with DISCONNECT, so its will is discarded [MQTT-3.14.4-3].
        watcher = self.sub("-t", "cli/pubwill/#", "-q", 1)
        self.pub("-t", "cli/pubwill/msg", "-q", 1, "-m", "m", "--will-topic", "cli/pubwill/w",
                 "--will-payload", "should-not-appear")
        self.pub("-t", "cli/pubwill/end", "-q", 1, "-m", "end")
        self.wait_for(lambda: any(m[0] == "cli/pubwill/end" for m in self._msg_lines(watcher)))
        self.assertEqual([m[0] for m in self._msg_lines(watcher)],
                         ["cli/pubwill/msg", "cli/pubwill/end"])

    def test_persistent_session_with_c_and_i(self):
        cid = unique_id("cli")
        s = self.sub("-c", "-i", cid, "-t", "cli/sess", "-q", 1)
        s.signal(signal.SIGTERM)  # mosquitto_sub disconnects cleanly; the session stays
        self.assertIsNotNone(s.wait(5), "mosquitto_sub ignored SIGTERM")
        self.pub("-t", "cli/sess", "-q", 1, "-l", stdin=b"a\nb\nc\n")
        self.pub("-t", "cli/sess", "-q", 0, "-m", "qos0-dropped")
        again = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-F", FMT, "-c", "-i", cid,
                                      "-t", "cli/sess", "-q", 1, "-C", 3))
        self.assertEqual(self.messages(again, 3),
                         [("cli/sess", 1, 0, p) for p in ("a", "b", "c")])
        self.assertEqual(again.wait(5), 0)

    def test_credentials(self):
        s = self.sub("-u", "user", "-P", "pass", "-t", "cli/auth", "-C", 1)
        self.pub("-u", "user", "-P", "pass", "-t", "cli/auth", "-m", "ok")
        self.assertEqual(self.messages(s, 1), [("cli/auth", 0, 0, "ok")])

    def test_many_messages_in_order(self):
        s = self.sub("-t", "cli/many", "-q", 1, "-C", 500)
        lines = b"".join(b"%d\n" % i for i in range(500))
        self.pub("-t", "cli/many", "-q", 1, "-l", stdin=lines)
        msgs = self.messages(s, 500, timeout=15)
        self.assertEqual([m[3] for m in msgs], [str(i) for i in range(500)])


class RealClientsRefusedTest(BrokerTestCase):
    config_lines = ("allow_anonymous false",)

    def test_mosquitto_pub_refused(self):
        cmd = client_cmd(MOSQUITTO_PUB, self.broker, "-t", "x", "-m", "y")
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(b"not authori", res.stdout.lower())


if __name__ == "__main__":
    unittest.main()
