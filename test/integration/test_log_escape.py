"""Client-controlled strings in the broker's log: a client id, a user name, a topic filter and a
will topic holding a newline and other control characters (MQTT 3.1.1 and 5.0 allow every
character but U+0000 in a UTF-8 string, 1.5.3 / 1.5.4, and Starling's codec accepts them) end up
escaped on one log line each, so a client cannot write a line of its own. U+0000 itself is a
malformed string: the connection is refused and nothing of the id reaches the log.
"""

import unittest

from harness import MQTT311, MQTT5, BrokerTestCase, RawClient, encode_connect, starling_only

ONLY = "Mosquitto writes client strings to its log as they are"

# A client id that would forge a whole log line, a terminal escape (ESC, and the C1 CSI
# U+009B), a bell, a tab, DEL and a backslash that must not read as an escape.
FORGED = "1700000000: Client admin disconnected."
EVIL_ID = "evil\n" + FORGED + "\r\x1b[2J\u009b\x07\tx\x7f\\n"
EVIL_ID_LOGGED = ("evil\\n" + FORGED + "\\r\\x1b[2J\\xc2\\x9b\\x07\\tx\\x7f\\\\n")
EVIL_USER = "user\nroot\x01"
EVIL_USER_LOGGED = "user\\nroot\\x01"
EVIL_FILTER = "f/\n" + FORGED + "\x02"
EVIL_FILTER_LOGGED = "f/\\n" + FORGED + "\\x02"
EVIL_WILL = "w/\nwill\x03"


@starling_only(ONLY)
class LogEscapeTest(BrokerTestCase):
    config_lines = ("log_type all",)

    def lines(self):
        return self.broker.log_text().split("\n")

    def session(self, version):
        r = RawClient(self.broker.port, version=version)
        self.defer(r.close)
        ack = r.connect(EVIL_ID, username=EVIL_USER, will=(EVIL_WILL, b"gone", 1, False))
        self.assertEqual(ack.rc, 0)
        self.assertEqual(r.subscribe([(EVIL_FILTER, 1)]), [1])
        r.close()  # no DISCONNECT: the will goes and a notice says why the client left
        self.wait_for(lambda: any("evil" in l and "closed by client" in l
                                  for l in self.lines()), 5, "no disconnect line")

    def check_lines(self, level):
        lines = self.lines()
        # Every line the broker wrote starts with its time stamp, and the forged text never
        # starts one.
        for line in lines:
            if line:
                self.assertRegex(line, r"^\d+: ", "a line the broker did not start")
        self.assertFalse(any(l.startswith(FORGED) for l in lines))
        with_id = [l for l in lines if "evil" in l]
        connected = [l for l in with_id if "New client connected as" in l]
        self.assertEqual(len(connected), 1, with_id)
        self.assertIn("New client connected as %s (p%d, c1, k60, u'%s')"
                      % (EVIL_ID_LOGGED, level, EVIL_USER_LOGGED), connected[0])
        subscribed = [l for l in with_id if EVIL_FILTER_LOGGED in l]
        self.assertEqual(len(subscribed), 1, with_id)
        self.assertTrue(subscribed[0].endswith(": %s 1 %s" % (EVIL_ID_LOGGED, EVIL_FILTER_LOGGED)),
                        subscribed[0])
        gone = [l for l in with_id if "closed by client" in l]
        self.assertEqual(gone, [gone[0]])
        self.assertTrue(gone[0].endswith(": Client %s closed by client." % EVIL_ID_LOGGED), gone)
        # Nothing of the will topic, raw or split, starts a line.
        self.assertFalse(any(l.startswith("will") for l in lines))
        # The id never appears unescaped.
        self.assertNotIn(EVIL_ID, self.broker.log_text())

    def test_v311_strings_are_escaped(self):
        self.session(MQTT311)
        self.check_lines(4)

    def test_v5_strings_are_escaped(self):
        self.session(MQTT5)
        self.check_lines(5)

    def test_nul_in_client_id_is_malformed(self):
        for version in (MQTT311, MQTT5):
            r = RawClient(self.broker.port, version=version)
            self.defer(r.close)
            r.send(encode_connect("nul\x00" + FORGED, version=version))
            closed, _ = r.wait_closed(3)
            self.assertTrue(closed)
        self.assertNotIn(FORGED, self.broker.log_text())


if __name__ == "__main__":
    unittest.main()
