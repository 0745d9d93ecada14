"""Passwords: password_file in Mosquitto's format (files made by Debian's mosquitto_passwd and by
starling-passwd), allow_anonymous, per_listener_settings, and the CONNACK codes of refusals
(3.1.1: 0x05; MQTT 5: 0x86 for a bad user name or password, 0x87 for an anonymous client that
may not connect)."""

import os
import subprocess
import tempfile
import unittest

from harness import (MQTT311, MQTT5, Broker, BrokerError, BrokerTestCase, KIND, free_port,
                     paho, starling_only, tool, unique_id)

MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def make_pwfile(path, users, maker="mosquitto", hash_kind=None):
    """Writes a password file of users {name: password} with mosquitto_passwd or
    starling-passwd; readable by Mosquitto once it has dropped root."""
    prog = MOSQUITTO_PASSWD if maker == "mosquitto" else tool("starling-passwd")
    first = True
    for user, pw in users.items():
        args = [prog] + (["-H", hash_kind] if hash_kind else []) + (["-c"] if first else [])
        subprocess.run(args + ["-b", path, user, pw], check=True, timeout=20,
                       stdout=subprocess.DEVNULL)
        first = False
    os.chmod(os.path.dirname(path), 0o755)
    os.chmod(path, 0o644)


class PasswordCase(BrokerTestCase):
    maker = "mosquitto"
    hash_kind = None
    extra = ("allow_anonymous false",)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-auth-")
        self.addCleanup(self.tmp.cleanup)
        self.pwfile = os.path.join(self.tmp.name, "passwd")
        make_pwfile(self.pwfile, {"alice": "secret", "bob": "b0b pass"}, self.maker,
                    self.hash_kind)
        self.config_lines = tuple(self.extra) + ("password_file " + self.pwfile,)
        super().setUp()

    def connack(self, version, **kw):
        r = self.raw(version=version)
        return r.connect(unique_id("a"), True, 60, **kw).rc


class MosquittoFileTest(PasswordCase):
    def test_right_password_connects(self):
        for version in (MQTT311, MQTT5):
            self.assertEqual(self.connack(version, username="alice", password=b"secret"), 0)
            self.assertEqual(self.connack(version, username="bob", password=b"b0b pass"), 0)

    def test_refusals_311(self):
        for kw in ({"username": "alice", "password": b"wrong"},
                   {"username": "nobody", "password": b"secret"},
                   {"username": "alice"}, {}):
            with self.subTest(kw=kw):
                self.assertEqual(self.connack(MQTT311, **kw), 5)

    @starling_only("Mosquitto answers 0x87 for bad credentials too; the spec names 0x86")
    def test_refusals_v5(self):
        self.assertEqual(self.connack(MQTT5, username="alice", password=b"wrong"), 0x86)
        self.assertEqual(self.connack(MQTT5, username="nobody", password=b"x"), 0x86)
        self.assertEqual(self.connack(MQTT5), 0x87)
        # MQTT 5 allows a password without a user name: an anonymous client.
        self.assertEqual(self.connack(MQTT5, password=b"secret"), 0x87)

    def test_real_clients(self):
        sub = self.client(username="alice", password="secret")
        got = self.collect(sub, "auth/t")
        pub = self.client(protocol=paho.MQTTv5, username="bob", password="b0b pass")
        self.publish(pub, "auth/t", b"hello")
        self.wait_messages(got, 1)
        rc = subprocess.run(["/usr/bin/mosquitto_pub", "-p", str(self.broker.port), "-t", "x",
                             "-m", "y", "-u", "alice", "-P", "nope"],
                            capture_output=True, timeout=10)
        self.assertEqual(rc.returncode, 5, rc.stderr)


class Sha512FileTest(MosquittoFileTest):
    hash_kind = "sha512"


class StarlingPasswdFileTest(MosquittoFileTest):
    maker = "starling"


class AnonymousAllowedTest(PasswordCase):
    extra = ("allow_anonymous true",)

    def test_anonymous_and_users(self):
        self.assertEqual(self.connack(MQTT311), 0)
        self.assertEqual(self.connack(MQTT311, username="alice", password=b"secret"), 0)
        # A user name is checked even where anonymous clients are welcome (Mosquitto too).
        self.assertEqual(self.connack(MQTT311, username="alice", password=b"bad"), 5)
        self.assertEqual(self.connack(MQTT311, username="zed", password=b"bad"), 5)


class NoPasswordFileTest(BrokerTestCase):
    config_lines = ("allow_anonymous false",)

    def test_username_without_password_file_is_refused(self):
        r = self.raw()
        self.assertEqual(r.connect("x", True, 60, username="u", password=b"p").rc, 5)


@unittest.skipIf(KIND == "mosquitto", "starlingd's start-up errors")
class BadFileTest(unittest.TestCase):
    def start_fails(self, text, expect):
        with tempfile.TemporaryDirectory(prefix="starling-auth-") as d:
            path = os.path.join(d, "pw")
            if text is not None:
                with open(path, "w") as f:
                    f.write(text)
            b = Broker(["password_file " + path])
            with self.assertRaises(BrokerError) as cm:
                b.start()
            self.assertIn(expect % {"path": path}, str(cm.exception))

    def test_missing_file(self):
        self.start_fails(None, "%(path)s: cannot open")

    def test_bad_line_names_file_and_line(self):
        self.start_fails("# users\nalice:$7$101$AAAA$notbase64\n", "%(path)s:2: bad hash")
        self.start_fails("alice\n", "%(path)s:1: expected user:hash")
        self.start_fails("a:$8$x$y\n", "%(path)s:1: the hash does not start")


class TwoListenerBroker(Broker):
    """per_listener_settings true: the first listener wants passwords, the second is open."""

    def __init__(self, pwfile):
        super().__init__()
        self.pwfile = pwfile
        self.port2 = None

    def _write_config(self):
        self.port2 = free_port()
        lines = ["per_listener_settings true",
                 "listener %d 127.0.0.1" % self.port, "allow_anonymous false",
                 "password_file " + self.pwfile,
                 "listener %d 127.0.0.1" % self.port2, "allow_anonymous true"]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")


class PerListenerTest(BrokerTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-auth-")
        self.addCleanup(self.tmp.cleanup)
        self.pwfile = os.path.join(self.tmp.name, "passwd")
        make_pwfile(self.pwfile, {"alice": "secret"})
        self._teardowns = []
        self.broker = TwoListenerBroker(self.pwfile)
        self.addCleanup(self._shutdown)
        self.broker.start()

    def test_each_listener_has_its_own_settings(self):
        from harness import RawClient
        for port, kw, rc in ((self.broker.port, {}, 5),
                             (self.broker.port, {"username": "alice", "password": b"secret"}, 0),
                             (self.broker.port2, {}, 0),
                             # No password_file on the second listener: any user is anonymous.
                             (self.broker.port2, {"username": "x", "password": b"y"}, 0)):
            with self.subTest(port=port, kw=kw):
                r = RawClient(port)
                self.defer(r.close)
                self.assertEqual(r.connect(unique_id("l"), True, 60, **kw).rc, rc)


if __name__ == "__main__":
    unittest.main()
