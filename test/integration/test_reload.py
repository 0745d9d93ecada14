"""SIGHUP: the password file, the ACL file and the log file are read again while clients stay
connected, except those whose password-file entry changed or went, who are closed (MQTT 5:
DISCONNECT 0x87), as Mosquitto 2 closes clients whose password no longer matches; the new rules
judge everyone from then on (existing subscriptions too); a broken new file keeps the old one
in force and says why in the log."""

import os
import signal
import tempfile
import time
import unittest

from harness import MQTT311, MQTT5, PUBLISH, BrokerTestCase, KIND, starling_only, unique_id
from test_auth import make_pwfile


@starling_only("Mosquitto re-reads its whole configuration on SIGHUP (a test's own config "
               "lines would be read again with it)")
class ReloadTest(BrokerTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-reload-")
        self.addCleanup(self.tmp.cleanup)
        os.chmod(self.tmp.name, 0o755)
        self.pwfile = os.path.join(self.tmp.name, "passwd")
        self.aclfile = os.path.join(self.tmp.name, "acl")
        self.logfile = os.path.join(self.tmp.name, "broker-file.log")
        make_pwfile(self.pwfile, {"alice": "secret", "bob": "bpw"}, "starling")
        self.write_acl("user alice\ntopic read open/#\ntopic deny open/secret\n"
                       "user bob\ntopic write open/#\n")
        self.config_lines = ("allow_anonymous false", "password_file " + self.pwfile,
                             "acl_file " + self.aclfile, "log_dest file " + self.logfile,
                             "log_dest stderr")
        super().setUp()

    def write_acl(self, text):
        tmp = self.aclfile + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.aclfile)

    def hup(self):
        """SIGHUP, then wait until the broker says it reloaded (or refused to)."""
        before = self.broker.log_text().count("Reloading on SIGHUP")
        os.kill(self.broker.pid, signal.SIGHUP)
        self.wait_for(lambda: self.broker.log_text().count("Reloading on SIGHUP") > before,
                      msg="no reload in the log")
        time.sleep(0.2)  # the other workers adopt the new rules at their next iteration

    def connect(self, user, pw, version=MQTT311, expect=0):
        r = self.raw(version=version)
        ca = r.connect(unique_id("h"), True, 60, username=user, password=pw)
        self.assertEqual(ca.rc, expect, (user, pw))
        return r

    def test_password_file_reload(self):
        alice = self.connect("alice", b"secret")
        make_pwfile(self.pwfile, {"carol": "cpw"}, "starling")
        self.hup()
        self.connect("alice", b"secret", expect=5)
        self.connect("carol", b"cpw")
        # Her entry went: her connection too, as Mosquitto 2 does.
        self.assert_closed(alice)

    def test_reload_closes_only_clients_whose_entry_changed(self):
        # alice's password changes, bob's line stays as it was, carol comes and goes: every
        # client lives on its home worker, so with several workers each one's worker judges
        # it when it adopts the new file.
        with open(self.pwfile) as f:
            lines = {l.split(":", 1)[0]: l for l in f.read().splitlines() if l}
        alices = [self.connect("alice", b"secret") for _ in range(4)]
        alice5 = self.connect("alice", b"secret", version=MQTT5)
        bobs = [self.connect("bob", b"bpw") for _ in range(4)]
        bob5 = self.connect("bob", b"bpw", version=MQTT5)
        make_pwfile(self.pwfile, {"alice": "new", "carol": "cpw"}, "starling")
        with open(self.pwfile) as f:
            new = f.read()
        with open(self.pwfile, "w") as f:
            f.write(new + lines["bob"] + "\n")  # bob's line as it was (same salt and hash)
        self.hup()
        for a in alices:
            self.assert_closed(a)
        self.assert_disconnect(alice5, 0x87)  # Not authorized
        for b in bobs + [bob5]:
            b.ping()
        self.assertIn("its password file entry changed on reload", self.broker.log_text())
        self.connect("alice", b"new").ping()
        self.connect("alice", b"secret", expect=5)
        # A file written again with the same lines keeps everyone.
        bob = self.connect("bob", b"bpw")
        self.hup()
        bob.ping()
        bob5.ping()

    def test_acl_reload_applies_to_existing_subscriptions(self):
        alice = self.connect("alice", b"secret")
        bob = self.connect("bob", b"bpw")
        self.assertEqual(alice.subscribe(("open/#", 0)), [0])
        bob.publish("open/secret", b"1")
        bob.publish("open/a", b"2")
        self.assertEqual(alice.expect(PUBLISH).topic, "open/a")
        # New rules: open/secret readable, open/a no longer.
        self.write_acl("user alice\ntopic read open/#\ntopic deny open/a\n"
                       "user bob\ntopic write open/#\n")
        self.hup()
        bob.publish("open/a", b"3")
        bob.publish("open/secret", b"4")
        self.assertEqual(alice.expect(PUBLISH).topic, "open/secret")
        self.assertTrue(alice.silent_for(0.3))
        # Subscriptions made afterwards follow the new rules too.
        self.assertEqual(alice.subscribe(("open/a", 0)), [0x80])

    def test_broken_file_keeps_the_old_rules(self):
        alice = self.connect("alice", b"secret")
        self.assertEqual(alice.subscribe(("open/#", 0)), [0])
        self.write_acl("user alice\ntopic sometimes open/#\n")
        self.hup()
        self.wait_for(lambda: "acl:2: invalid access type" in self.broker.log_text(),
                      msg="the broken ACL's error was not logged")
        self.assertIn("the old rules stay in force", self.broker.log_text())
        bob = self.connect("bob", b"bpw")
        bob.publish("open/secret", b"x")
        bob.publish("open/b", b"y")
        self.assertEqual(alice.expect(PUBLISH).topic, "open/b")
        with open(self.pwfile, "w") as f:
            f.write("alice:nothash\n")
        self.hup()
        self.connect("alice", b"secret")  # the old password file too

    def test_log_file_reopened(self):
        os.rename(self.logfile, self.logfile + ".1")
        self.hup()
        self.wait_for(lambda: os.path.exists(self.logfile), msg="log file not reopened")
        self.connect("alice", b"secret")
        self.wait_for(lambda: "New client connected" in open(self.logfile).read(),
                      msg="nothing logged to the new file")

    def test_repeated_reloads_with_traffic(self):
        alice = self.connect("alice", b"secret", version=MQTT5)
        self.assertEqual(alice.subscribe(("open/#", 0)), [0])
        bob = self.connect("bob", b"bpw")
        for i in range(5):
            os.kill(self.broker.pid, signal.SIGHUP)
            bob.publish("open/t%d" % i, b"x")
            self.assertEqual(alice.expect(PUBLISH).topic, "open/t%d" % i)
        # Signals sent close together may merge into one: at least one reload ran, and the
        # broker still answers the next one.
        self.wait_for(lambda: "Reloading on SIGHUP" in self.broker.log_text())
        self.hup()
        bob.publish("open/last", b"x")
        self.assertEqual(alice.expect(PUBLISH).topic, "open/last")


if __name__ == "__main__":
    unittest.main()
