"""starling-passwd: mosquitto_passwd's flags (-c -b -D -U -H -I and the prompt), and files that
Debian's Mosquitto and starlingd both accept."""

import os
import subprocess
import tempfile
import unittest

from harness import Broker, KIND, RawClient, tool, unique_id


def passwd(*args, stdin=None):
    return subprocess.run([tool("starling-passwd")] + [str(a) for a in args], input=stdin,
                          capture_output=True, timeout=20)


class StarlingPasswdTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-passwd-")
        self.addCleanup(self.tmp.cleanup)
        os.chmod(self.tmp.name, 0o755)
        self.path = os.path.join(self.tmp.name, "pw")

    def lines(self):
        with open(self.path) as f:
            return f.read().splitlines()

    def connack(self, broker, user, pw):
        r = RawClient(broker.port)
        try:
            return r.connect(unique_id("p"), True, 60, username=user, password=pw).rc
        finally:
            r.close()

    def check_brokers(self, good, bad):
        kinds = ["mosquitto", "starling"] if KIND == "starling" else ["mosquitto"]
        for kind in kinds:
            with self.subTest(broker=kind), Broker(["allow_anonymous false",
                                                    "password_file " + self.path],
                                                   kind=kind) as b:
                for user, pw in good:
                    self.assertEqual(self.connack(b, user, pw), 0, (kind, user))
                for user, pw in bad:
                    self.assertEqual(self.connack(b, user, pw), 5, (kind, user))

    def test_batch_both_hashes_accepted_by_mosquitto_and_starling(self):
        self.assertEqual(passwd("-c", "-b", self.path, "alice", "secret").returncode, 0)
        self.assertEqual(passwd("-H", "sha512", "-b", self.path, "bob", "pw2").returncode, 0)
        self.assertEqual(passwd("-I", 1000, "-b", self.path, "carol", "c3").returncode, 0)
        lines = self.lines()
        self.assertTrue(lines[0].startswith("alice:$7$101$"), lines)
        self.assertTrue(lines[1].startswith("bob:$6$"), lines)
        self.assertTrue(lines[2].startswith("carol:$7$1000$"), lines)
        os.chmod(self.path, 0o644)
        self.check_brokers([("alice", b"secret"), ("bob", b"pw2"), ("carol", b"c3")],
                           [("alice", b"pw2"), ("dave", b"x")])

    def test_update_delete_and_upgrade(self):
        with open(self.path, "w") as f:
            f.write("# people\nalice:plain\nbob:other\n")
        self.assertEqual(passwd("-U", self.path).returncode, 0)
        self.assertEqual(passwd("-b", self.path, "bob", "new").returncode, 0)
        self.assertEqual(passwd("-D", self.path, "alice").returncode, 0)
        r = passwd("-D", self.path, "nobody")
        self.assertNotEqual(r.returncode, 0)
        lines = self.lines()
        self.assertEqual(lines[0], "# people")
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[1].startswith("bob:$7$"), lines)
        self.check_brokers([("bob", b"new")], [("bob", b"other"), ("alice", b"plain")])

    def test_prompt_twice(self):
        r = passwd("-c", self.path, "eve", stdin=b"s3cret\ns3cret\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = passwd(self.path, "eve", stdin=b"one\ntwo\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"do not match", r.stderr)
        self.check_brokers([("eve", b"s3cret")], [("eve", b"one")])

    def test_bad_arguments(self):
        for args in ((), ("-c",), ("-H", "md5", "-b", self.path, "a", "b"),
                     ("-I", 0, "-b", self.path, "a", "b"), ("-c", "-D", self.path, "a"),
                     ("-b", self.path, "a:b", "c"), (self.path + ".none", "a")):
            with self.subTest(args=args):
                self.assertNotEqual(passwd(*args, stdin=b"x\nx\n").returncode, 0)


if __name__ == "__main__":
    unittest.main()
