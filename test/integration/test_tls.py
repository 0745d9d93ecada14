"""TLS listeners (certfile/keyfile, cafile, require_certificate, crlfile, tls_version,
use_identity_as_username, use_subject_as_username) with real clients: mosquitto_pub/sub with
--cafile/--cert/--key, paho with tls_set, `openssl s_client` for protocol versions. The
certificates (a CA, the server's, clients' valid, expired and revoked ones, a CRL, a foreign
CA) are made at test time by the `openssl` command, in a temporary directory per class.

Every broker also has a plaintext listener, through which $SYS is read. On 4 workers a
CONNECT usually lands on another worker than its client id's home, so the tests that connect
several clients cover the hand-off of a TLS connection (its SSL) to another worker.
"""

import collections
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (BIN, KIND, MOSQUITTO_PUB, MOSQUITTO_SUB, BrokerTestCase, Proc, client_cmd,
                     encode_connect, free_port, tool, unique_id)
from rawmqtt import encode_disconnect, encode_subscribe
import tlscerts
from tlscerts import OPENSSL, Certs

Endpoint = collections.namedtuple("Endpoint", "host port")
CONNECT_TIMEOUT_S = 10  # src/broker/timers.c: a connection without CONNECT is closed then


class TlsCase(BrokerTestCase):
    """A broker whose first listener is TLS (the class's tls_lines) and whose second is
    plaintext. Certificates are made once per class."""

    tls_lines = ()
    extra_lines = ("sys_interval 1",)
    server_san = "IP:127.0.0.1,DNS:localhost"
    with_cafile = True  # the listener's cafile is the test CA

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-tls-")
        cls.certs = Certs(os.path.join(cls.tmp, "ca"))
        cls.certs.make_server(cls.server_san)
        cls.other = Certs(os.path.join(cls.tmp, "other"), name="other", cn="Other CA")
        cls.make_certs()

    @classmethod
    def make_certs(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.plain = Endpoint("127.0.0.1", free_port())
        c = self.certs
        self.config_lines = (
            ["certfile " + c.server, "keyfile " + c.server_key]
            + (["cafile " + c.ca] if self.with_cafile else [])
            + [line.format(crl=c.crl) for line in self.tls_lines] + list(self.extra_lines)
            + ["listener %d 127.0.0.1" % self.plain.port])
        super().setUp()

    # --- helpers ---------------------------------------------------------------------------
    def tls(self, cert=None, key=None, ca=None):
        """paho tls_set arguments."""
        kw = {"ca_certs": ca or self.certs.ca}
        if cert:
            kw.update(certfile=cert, keyfile=key)
        return kw

    def cmd(self, program, *args):
        """argv of a client aimed at the TLS listener: Starling's tools flush per message and
        run without stdbuf, whose LD_PRELOAD would upset their ASan runtime."""
        if program.startswith(BIN):
            return [program, "-h", self.broker.host, "-p", str(self.broker.port)] + [
                str(a) for a in args]
        return client_cmd(program, self.broker, *args)

    def mosquitto(self, program, *args, timeout=20):
        """Runs a client (mosquitto_pub, starling-pub...) to completion: (status, output)."""
        r = subprocess.run(self.cmd(program, *args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def sys(self, topic, pred=lambda v: True, timeout=5.0):
        """A $SYS value read through the plaintext listener, once pred holds (or fails)."""
        sub = self.client(broker=self.plain)
        got = self.collect(sub, topic, 0)
        self.wait_for(lambda: got and pred(int(got[-1].payload)), timeout,
                      "%s never satisfied the condition (last %s)"
                      % (topic, got[-1].payload if got else None))
        value = int(got[-1].payload)
        sub.disconnect()
        return value

    def raw_tcp(self):
        s = socket.create_connection((self.broker.host, self.broker.port), timeout=5)
        self.defer(s.close)
        return s

    def assert_closed(self, s, timeout):
        """The broker closes socket s within timeout seconds, having sent no MQTT packet."""
        s.settimeout(timeout)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("the broker kept the connection open for %.1f s" % timeout)
        # A TLS alert (content type 21) at most, never an MQTT packet such as CONNACK (0x20).
        self.assertTrue(not data or data[0] == 0x15, "unexpected bytes %r" % data[:16])

    def exchange(self, sub, pub, topic, n, qos=1, payload=lambda i: b"m%d" % i, timeout=10):
        got = self.collect(sub, topic, qos)
        for i in range(n):
            pub.publish(topic, payload(i), qos=qos)
        self.wait_messages(got, n, timeout)
        self.assertEqual([m.payload for m in got], [payload(i) for i in range(n)])


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsServer(TlsCase):
    """Server authentication only: the client checks the broker's certificate."""

    def test_mosquitto_clients_with_cafile(self):
        topic = unique_id("tls/")
        sub = Proc(client_cmd(MOSQUITTO_SUB, self.broker, "--cafile", self.certs.ca, "-t", topic,
                              "-C", "3", "-v", "-i", unique_id("s")))
        self.defer(sub.stop)
        self.wait_for(lambda: "New client connected" in self.broker.log_text(), 5)
        time.sleep(0.3)  # the SUBSCRIBE follows the CONNACK
        for i in range(3):  # distinct client ids: on 4 workers most are handed over
            rc, out = self.mosquitto(MOSQUITTO_PUB, "--cafile", self.certs.ca, "-t", topic,
                                     "-m", "hello %d" % i, "-q", "1", "-i", unique_id("p"))
            self.assertEqual(rc, 0, out)
        self.assertEqual(sub.wait(5), 0, sub.output())
        self.assertEqual(sub.lines(), ["%s hello %d" % (topic, i) for i in range(3)])
        self.assertGreaterEqual(self.sys("$SYS/broker/tls/handshakes", lambda v: v >= 4), 4)

    def test_session_takeover(self):
        """A second TLS connection with the same client id takes the session over: the old
        connection's pending input is read and decrypted first (conn_drain_input)."""
        cid = unique_id("take")
        topic = unique_id("take/")
        a = self.client(cid, clean_session=False, tls=self.tls())
        self.subscribe(a, topic, 1)
        p = self.client(tls=self.tls())
        for i in range(20):
            p.publish(topic, b"a%d" % i, qos=1)
        self.wait_for(lambda: len(a.messages) == 20, 10)
        b = self.client(cid, clean_session=False, tls=self.tls())
        self.assertTrue(b.connack[0], "the session was not resumed")
        self.assertTrue(a.disconnected.wait(5), "the old connection stayed open")
        got = self.collect(b, topic, 1)
        p.publish(topic, b"to b", qos=1)
        self.wait_for(lambda: b"to b" in got.payloads(), 5)

    def test_wrong_ca_refuses_the_server(self):
        rc, out = self.mosquitto(MOSQUITTO_PUB, "--cafile", self.other.ca, "-t", "t", "-m", "x")
        self.assertNotEqual(rc, 0, out)
        # The client hung up during the handshake: the broker counts it and goes on.
        self.sys("$SYS/broker/tls/handshake_failures", lambda v: v >= 1)
        c = self.client(tls=self.tls())
        self.exchange(c, c, unique_id("t/"), 3)

    def test_paho_large_and_many_small_messages_both_ways(self):
        a = self.client(tls=self.tls())
        b = self.client(tls=self.tls())
        big = os.urandom(1 << 20)
        for src, dst in ((a, b), (b, a)):
            self.exchange(dst, src, unique_id("big/"), 2, qos=1,
                          payload=lambda i: big[i:] + big[:i], timeout=20)
            self.exchange(dst, src, unique_id("small/"), 2000, qos=0,
                          payload=lambda i: b"%06d" % i, timeout=20)
            self.exchange(dst, src, unique_id("q1/"), 500, qos=1, timeout=20)

    def test_plaintext_client_on_tls_port(self):
        s = self.raw_tcp()
        s.sendall(encode_connect(unique_id("plain")))
        self.assert_closed(s, 5)
        self.wait_for(lambda: "TLS handshake failed" in self.broker.log_text(), 5)
        self.sys("$SYS/broker/tls/handshake_failures", lambda v: v >= 1)
        c = self.client(tls=self.tls())
        self.exchange(c, c, unique_id("t/"), 5)

    def test_garbage_handshake(self):
        c = self.client(tls=self.tls())
        got = self.collect(c, "g/#", 1)
        # Random bytes, but not a record header OpenSSL would wait on: a first byte with its
        # high bit set can read as an SSLv2 ClientHello of up to 32 KiB (a flake, 1 run in
        # a few hundred), so the first byte is an invalid content type.
        for junk in (b"\x00" + os.urandom(1999), b"\x16\x03\x01\x00\x05hello",
                     b"\x16\x03\x01\xff\xff" + os.urandom(300)):
            s = self.raw_tcp()
            s.sendall(junk)
            if junk[3:5] != b"\xff\xff":
                self.assert_closed(s, 5)
        c.publish("g/1", b"still here", qos=1)
        self.wait_messages(got, 1)
        self.sys("$SYS/broker/tls/handshake_failures", lambda v: v >= 2)

    def test_stalled_handshakes_time_out(self):
        """A connection that never finishes its handshake is closed with those that never send
        CONNECT: one silent, one with half a ClientHello."""
        silent = self.raw_tcp()
        half = self.raw_tcp()
        hello = _client_hello(self.broker, self.certs.ca)
        half.sendall(hello[: len(hello) // 2])
        start = time.monotonic()
        self.assert_closed(silent, CONNECT_TIMEOUT_S + 3)
        self.assert_closed(half, 2)
        self.assertGreaterEqual(time.monotonic() - start, CONNECT_TIMEOUT_S - 1.5)
        log = self.broker.log_text()
        self.assertIn("TLS handshake failed on connection", log)
        self.assertIn("not finished in time", log)
        self.assertIn("no handshake started in time", log)
        self.sys("$SYS/broker/tls/handshake_failures", lambda v: v >= 2)

    def test_half_open_handshakes_do_not_delay_others(self):
        hello = _client_hello(self.broker, self.certs.ca)
        a = self.client(tls=self.tls())
        b = self.client(tls=self.tls())
        topic = unique_id("flood/")
        self.subscribe(b, topic, 0)
        stamps = {}
        lock = threading.Lock()

        def on_message(client, userdata, m):
            with lock:
                stamps[bytes(m.payload)] = time.monotonic()
        b.message_callback_add(topic, on_message)
        flood = []
        # The 1,000 half-open handshakes: this process needs a descriptor for each.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2048 <= hard or (soft < 2048 and hard == resource.RLIM_INFINITY):
            resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        count = 1000 if resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2048 else 200
        for i in range(count):
            s = socket.create_connection((self.broker.host, self.broker.port), timeout=5)
            flood.append(s)
            if i % 2:
                s.sendall(hello[: len(hello) // 2])
        self.defer(lambda: [s.close() for s in flood])
        sent = {}
        for i in range(100):
            p = b"%d" % i
            sent[p] = time.monotonic()
            a.publish(topic, p, qos=0)
            time.sleep(0.005)
        self.wait_for(lambda: len(stamps) == 100, 10, "got %d of 100" % len(stamps))
        worst = max(stamps[p] - sent[p] for p in sent)
        # A loop blocked by handshakes would hold messages for seconds (the CONNECT timeout
        # is 10 s); the bound leaves room for a loaded test machine under ASan.
        self.assertLess(worst, 1.0, "a message took %.3f s" % worst)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsBench(TlsCase):
    """starling-bench --tls: short rate-limited runs, every message delivered exactly once."""

    tls_lines = ("require_certificate true",)

    @classmethod
    def make_certs(cls):
        cls.bench_cert = cls.certs.client("bench")

    def bench(self, *args):
        cmd = [tool("starling-bench")] + [str(a) for a in args] + [
            "-p", str(self.broker.port), "--json", "--setup-timeout", "20", "-d", "1", "-w",
            "0.2", "--drain", "0.5", "--cafile", self.certs.ca, "--cert", self.bench_cert[0],
            "--key", self.bench_cert[1]]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode("utf-8", "replace"))
        out = json.loads(r.stdout.decode().strip().splitlines()[-1])
        self.assertTrue(out["ok"], out)
        self.assertGreater(out["sent"], 0, out)
        self.assertEqual(out["delivered"], out["expected"], out)
        self.assertEqual((out["loss"], out["duplicates"], out["out_of_order"]), (0, 0, 0), out)
        return out

    def test_fanout_and_pairs(self):
        r = self.bench("fanout", "-S", 5, "-r", 2000)
        self.assertEqual(r["expected"], r["sent"] * 5)
        self.bench("pairs", "-c", 4, "-q", 1, "-s", 4000, "-r", 1000, "--tls-version", "tlsv1.3")


def _client_hello(broker, ca):
    """The first flight of a real TLS client (OpenSSL's ClientHello), captured by a fake
    server socket: a valid start of a handshake that the tests then leave unfinished."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    p = subprocess.Popen([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", ca],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        srv.settimeout(5)
        conn, _ = srv.accept()
        conn.settimeout(5)
        data = conn.recv(65536)
        conn.close()
    finally:
        srv.close()
        p.kill()
        p.wait()
    assert data[:1] == b"\x16", data[:8]
    return data


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsClientCertificates(TlsCase):
    """require_certificate with a CRL; the certificate's CN is the username."""

    tls_lines = ("require_certificate true", "use_identity_as_username true", "crlfile {crl}")
    @classmethod
    def make_certs(cls):
        c = cls.certs
        cls.alice = c.client("alice")
        cls.carol = c.client("carol")
        cls.expired = c.client("expired", expired=True)
        cls.revoked = c.client("revoked")
        c.revoke(cls.revoked[0])
        cls.foreign = cls.other.client("mallory")

    def pub(self, cert, *args):
        return self.mosquitto(MOSQUITTO_PUB, "--cafile", self.certs.ca, "--cert", cert[0],
                              "--key", cert[1], *args)

    def test_identity_is_the_username(self):
        ids = [unique_id("id") for _ in range(4)]
        for cid in ids:  # CONNECT's username and password are ignored
            rc, out = self.pub(self.alice, "-t", "t", "-m", "x", "-i", cid, "-u", "someone",
                               "-P", "secret")
            self.assertEqual(rc, 0, out)
        log = self.broker.log_text()
        for cid in ids:
            self.assertRegex(log, r"New client connected as %s \(p4, c1, k60, u'alice'\)" % cid)
        self.assertNotIn("someone", log)

    def test_clients_with_certificates_exchange_messages(self):
        a = self.client(tls=self.tls(*self.alice))
        b = self.client(tls=self.tls(*self.carol), protocol=5)
        self.exchange(b, a, unique_id("t/"), 50, qos=1)
        self.exchange(a, b, unique_id("t/"), 50, qos=2)

    def test_refused_certificates(self):
        c = self.client(tls=self.tls(*self.alice))
        topic = unique_id("ok/")
        got = self.collect(c, topic, 1)
        cases = [
            ("expired", self.expired, "certificate has expired"),
            ("revoked", self.revoked, "certificate revoked"),
            ("unknown CA", self.foreign, "unable to get local issuer certificate"),
        ]
        for name, cert, why in cases:
            with self.subTest(name):
                rc, out = self.pub(cert, "-t", topic, "-m", name, "-q", "1")
                self.assertNotEqual(rc, 0, out)
                self.wait_for(lambda: why in self.broker.log_text(), 5, "no log of " + why)
        rc, out = self.mosquitto(MOSQUITTO_PUB, "--cafile", self.certs.ca, "-t", topic, "-m",
                                 "none", "-q", "1")
        self.assertNotEqual(rc, 0, out)
        self.sys("$SYS/broker/tls/handshake_failures", lambda v: v >= 4)
        c.publish(topic, b"after", qos=1)
        self.wait_messages(got, 1)
        self.assertEqual(got.payloads(), [b"after"])


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsIdentityWithoutAnonymous(TlsCase):
    """allow_anonymous false: a verified certificate's identity authenticates its client,
    while an anonymous client (the plaintext listener) is refused."""

    tls_lines = ("require_certificate true", "use_identity_as_username true")
    extra_lines = ("allow_anonymous false",)

    @classmethod
    def make_certs(cls):
        cls.alice = cls.certs.client("alice")

    def test_certificate_authenticates(self):
        a = self.client(tls=self.tls(*self.alice), protocol=5)
        self.exchange(a, a, unique_id("t/"), 3)
        self.client(broker=self.plain, expect_rc=0x05)
        self.client(broker=self.plain, protocol=5, expect_rc=0x87)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsReload(TlsCase):
    """SIGHUP reads the certificate, key and CRL again for the handshakes that follow, while
    established TLS clients stay connected; a file that cannot be used keeps the old ones."""

    tls_lines = ("require_certificate true", "crlfile {crl}")

    @classmethod
    def make_certs(cls):
        c = cls.certs
        cls.alice = c.client("alice")
        cls.bob = c.client("bob")
        c.gencrl()  # nothing revoked yet
        cls.other.make_server()

    def pub(self, cert, ca, topic, payload):
        return self.mosquitto(MOSQUITTO_PUB, "--cafile", ca, "--cert", cert[0], "--key",
                              cert[1], "-t", topic, "-m", payload, "-q", "1")

    def hup(self):
        before = self.broker.log_text().count("Reloading on SIGHUP")
        os.kill(self.broker.pid, signal.SIGHUP)
        self.wait_for(lambda: self.broker.log_text().count("Reload complete") +
                      self.broker.log_text().count("step failed") > before
                      and self.broker.log_text().count("Reloading on SIGHUP") > before,
                      msg="no reload in the log")

    def replace(self, path, source=None, text=None):
        tmp = path + ".new"
        if source:
            shutil.copyfile(source, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(text)
        os.rename(tmp, path)

    def test_certificate_and_crl_reload(self):
        c = self.certs
        saved = {p: open(p, "rb").read() for p in (c.server, c.server_key, c.crl)}
        self.addCleanup(lambda: [open(p, "wb").write(b) for p, b in saved.items()])
        old = self.client(tls=self.tls(*self.bob))
        topic = unique_id("rl/")
        got = self.collect(old, topic, 1)
        # A new server certificate, from another CA, and bob revoked.
        self.replace(c.server, self.other.server)
        self.replace(c.server_key, self.other.server_key)
        c.revoke(self.bob[0])
        self.hup()
        self.assertIn("Reloaded the certificates", self.broker.log_text())
        rc, out = self.pub(self.alice, c.ca, topic, "old-ca")
        self.assertNotEqual(rc, 0, "the old server certificate is still served: " + out)
        rc, out = self.pub(self.alice, self.other.ca, topic, "new-ca")
        self.assertEqual(rc, 0, out)
        rc, out = self.pub(self.bob, self.other.ca, topic, "revoked")
        self.assertNotEqual(rc, 0, "bob's revocation was not read: " + out)
        # bob's established connection is untouched and still gets what alice sends.
        self.wait_messages(got, 1)
        self.assertEqual(got.payloads(), [b"new-ca"])

    def test_broken_key_keeps_the_old_context(self):
        c = self.certs
        saved = open(c.server_key, "rb").read()
        self.addCleanup(lambda: open(c.server_key, "wb").write(saved))
        self.replace(c.server_key, text="-----BEGIN PRIVATE KEY-----\ngarbage\n")
        self.hup()
        self.assertIn("keeps its certificates", self.broker.log_text())
        rc, out = self.pub(self.alice, c.ca, unique_id("rl/"), "still")
        self.assertEqual(rc, 0, out)
        self.assertTrue(self.broker.alive())


@unittest.skipIf(KIND != "starling", "Starling's TLS listener and persistence")
class TestTlsCloseAfterHeldOutput(TlsCase):
    """A client's DISCONNECT right behind packets whose answers wait for a commit (persistence
    with sync always): the answers leave first, then close_notify. Before, close_notify left at
    once and OpenSSL refused the held answers after it."""

    def setUp(self):
        pdir = tempfile.mkdtemp(prefix="starling-tlsp-")
        self.addCleanup(shutil.rmtree, pdir, True)
        self.extra_lines = tuple(TlsCase.extra_lines) + (
            "persistence true", "persistence_location %s/" % pdir, "persistence_sync always")
        super().setUp()

    def test_answers_then_close_notify(self):
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        raw = socket.create_connection((self.broker.host, self.broker.port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
        self.defer(s.close)
        # A durable session (session-put), a subscription (sub-add): CONNACK and SUBACK wait
        # for the commit that holds them, and the DISCONNECT arrives before it completes.
        s.sendall(encode_connect(unique_id("tc-"), clean_session=False)
                  + encode_subscribe(7, [(unique_id("tc/"), 1)]) + encode_disconnect())
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ssl.SSLEOFError:
                self.fail("the broker closed without close_notify after %r" % data)
            if not chunk:
                break  # close_notify
            data += chunk
        self.assertEqual(data, b"\x20\x02\x00\x00" + b"\x90\x03\x00\x07\x01")


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsCapath(TlsCase):
    """capath: the CAs of a hashed directory (openssl rehash) verify client certificates."""

    with_cafile = False

    @classmethod
    def make_certs(cls):
        cls.alice = cls.certs.client("alice")
        cls.foreign = cls.other.client("mallory")
        cls.capath = os.path.join(cls.tmp, "capath")
        os.makedirs(cls.capath)
        shutil.copy(cls.certs.ca, os.path.join(cls.capath, "ca.pem"))
        tlscerts.run("rehash", cls.capath)
        cls.tls_lines = ("capath " + cls.capath, "require_certificate true",
                         "use_identity_as_username true")

    def test_capath(self):
        c = self.client(tls=self.tls(*self.alice))
        self.exchange(c, c, unique_id("t/"), 3)
        self.assertIn("u'alice'", self.broker.log_text())
        rc, out = self.mosquitto(MOSQUITTO_PUB, "--cafile", self.certs.ca, "--cert",
                                 self.foreign[0], "--key", self.foreign[1], "-t", "t", "-m", "x")
        self.assertNotEqual(rc, 0, out)
        for program in (MOSQUITTO_PUB, tool("starling-pub")):  # --capath on the client side
            rc, out = self.mosquitto(program, "--capath", self.capath, "--cert", self.alice[0],
                                     "--key", self.alice[1], "-t", "t", "-m", "x")
            self.assertEqual(rc, 0, out)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsSubjectAsUsername(TlsCase):
    tls_lines = ("require_certificate true", "use_subject_as_username true")

    @classmethod
    def make_certs(cls):
        cls.bob = cls.certs.client("bob", subject="/C=GB/O=Starling/OU=Production/CN=bob x")

    def test_subject_is_the_username(self):
        cid = unique_id("subj")
        rc, out = self.mosquitto(MOSQUITTO_PUB, "--cafile", self.certs.ca, "--cert", self.bob[0],
                                 "--key", self.bob[1], "-t", "t", "-m", "x", "-i", cid)
        self.assertEqual(rc, 0, out)
        self.assertIn("%s (p4, c1, k60, u'CN=bob x,OU=Production,O=Starling,C=GB')" % cid,
                      self.broker.log_text())


def _s_client(broker, ca, version):
    r = subprocess.run([OPENSSL, "s_client", "-connect", "%s:%d" % (broker.host, broker.port),
                        "-CAfile", ca, "-verify_return_error", "-brief", version],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return r.returncode, r.stdout.decode("utf-8", "replace")


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsVersions(TlsCase):
    """tls_version is the lowest version accepted (Mosquitto 2's meaning)."""

    def test_default_accepts_12_and_13(self):
        for v, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = _s_client(self.broker, self.certs.ca, v)
            self.assertEqual(rc, 0, out)
            self.assertIn("Protocol version: " + name, out)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsVersion13(TlsCase):
    tls_lines = ("tls_version tlsv1.3", "ciphers_tls1.3 TLS_CHACHA20_POLY1305_SHA256")

    def test_12_refused_13_accepted(self):
        rc, out = _s_client(self.broker, self.certs.ca, "-tls1_2")
        self.assertNotEqual(rc, 0, out)
        rc, out = _s_client(self.broker, self.certs.ca, "-tls1_3")
        self.assertEqual(rc, 0, out)
        self.assertIn("Ciphersuite: TLS_CHACHA20_POLY1305_SHA256", out)
        c = self.client(tls=self.tls())
        self.exchange(c, c, unique_id("t/"), 3)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsVersion12Ciphers(TlsCase):
    tls_lines = ("tls_version tlsv1.2", "ciphers ECDHE-ECDSA-CHACHA20-POLY1305")

    def test_cipher_list_applies_to_12(self):
        rc, out = _s_client(self.broker, self.certs.ca, "-tls1_2")
        self.assertEqual(rc, 0, out)
        self.assertIn("Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305", out)
        rc, out = _s_client(self.broker, self.certs.ca, "-tls1_3")
        self.assertEqual(rc, 0, out)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsTools(TlsCase):
    """starling-pub and starling-sub with mosquitto_pub's TLS options."""

    tls_lines = ("require_certificate true", "use_identity_as_username true")

    @classmethod
    def make_certs(cls):
        cls.alice = cls.certs.client("alice")

    def tool_args(self, *extra):
        return ["--cafile", self.certs.ca, "--cert", self.alice[0], "--key", self.alice[1]] + list(
            extra)

    def test_pub_sub_over_tls(self):
        topic = unique_id("tools/")
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(b"0123456789abcdef" * 65536)
        sub = Proc(self.cmd(tool("starling-sub"), *self.tool_args(
            "-t", topic + "/#", "-C", "3", "-i", unique_id("s"), "-q", "1", "-N")))
        self.defer(sub.stop)
        self.wait_for(lambda: "New client connected" in self.broker.log_text(), 5)
        time.sleep(0.3)
        for args in (["-m", "small", "-q", "1"], ["-f", big, "-q", "2"],
                     ["-m", "five", "-V", "5", "--tls-version", "tlsv1.3"]):
            rc, out = self.mosquitto(tool("starling-pub"), *self.tool_args(
                "-t", topic + "/x", "-i", unique_id("p"), *args))
            self.assertEqual(rc, 0, out)
        self.assertEqual(sub.wait(10), 0, sub.output()[:300])
        got = "".join(sub.lines())
        self.assertEqual(len(got), 5 + (1 << 20) + 4)
        self.assertEqual(got, "small" + "0123456789abcdef" * 65536 + "five")
        self.assertRegex(self.broker.log_text(), r"u'alice'")

    def test_refusals(self):
        cases = [
            (["--cafile", self.other.ca, "--cert", self.alice[0], "--key", self.alice[1]],
             "certificate verify failed"),
            (["--cafile", self.certs.ca], "certificate required"),
            (["--cert", self.alice[0], "--key", self.alice[1]], "need --cafile"),
            (["--cafile", self.certs.ca, "--cert", self.alice[0]], "Both certfile and keyfile"),
            (["--cafile", self.certs.ca, "--tls-version", "tlsv1.0"], "Unsupported TLS"),
        ]
        for args, want in cases:
            with self.subTest(want):
                rc, out = self.mosquitto(tool("starling-pub"), *args, "-t", "t", "-m", "x")
                self.assertNotEqual(rc, 0)
                self.assertIn(want, out)


@unittest.skipIf(KIND != "starling", "Starling's TLS listener")
class TestTlsHostName(TlsCase):
    """A certificate that does not name the host: refused unless --insecure."""

    server_san = "DNS:elsewhere.example"

    def test_insecure(self):
        for program in (MOSQUITTO_PUB, tool("starling-pub")):
            with self.subTest(program):
                rc, out = self.mosquitto(program, "--cafile", self.certs.ca, "-t", "t", "-m", "x")
                self.assertNotEqual(rc, 0, out)
                rc, out = self.mosquitto(program, "--cafile", self.certs.ca, "--insecure",
                                         "-t", "t", "-m", "x")
                self.assertEqual(rc, 0, out)


@unittest.skipIf(KIND != "starling", "Starling's start-up checks")
class TestTlsStartupErrors(unittest.TestCase):
    """A certificate or key that cannot be used stops the broker at start-up, naming it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-tls-")
        cls.certs = Certs(os.path.join(cls.tmp, "ca"))
        cls.certs.make_server()
        cls.other = cls.certs.client("other")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, *lines):
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % free_port() + "\n".join(lines) + "\n")
        r = subprocess.run([os.path.join(BIN, "starlingd"), "-c", conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def test_bad_files(self):
        c = self.certs
        missing = os.path.join(self.tmp, "missing.pem")
        cases = [
            (("certfile " + missing, "keyfile " + c.server_key), "certfile " + missing),
            (("certfile " + c.server, "keyfile " + missing), "keyfile " + missing),
            (("certfile " + c.server, "keyfile " + self.other[1]), "key values mismatch"),
            (("certfile " + c.server_key, "keyfile " + c.server_key), "certfile"),
            (("certfile " + c.server,), "both certfile and keyfile"),
            (("certfile " + c.server, "keyfile " + c.server_key, "require_certificate true"),
             "require_certificate needs cafile"),
            (("certfile " + c.server, "keyfile " + c.server_key, "cafile " + missing),
             "cafile " + missing),
            (("certfile " + c.server, "keyfile " + c.server_key, "crlfile " + c.ca),
             "crlfile " + c.ca),
            (("certfile " + c.server, "keyfile " + c.server_key, "ciphers NOPE"), "ciphers NOPE"),
            (("tls_version tlsv1.1",), "tlsv1.1 is not supported"),
        ]
        for lines, want in cases:
            with self.subTest(want):
                rc, out = self.start(*lines)
                self.assertNotEqual(rc, 0, out)
                self.assertIn(want, out)


if __name__ == "__main__":
    unittest.main()
