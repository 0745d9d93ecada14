"""The NATS cluster the cluster tests stand on (issue 14), checked on its own: three nats-server
processes form a full mesh of routes with JetStream; a message published on one server reaches
subscribers on the others (plain, with a NATS header block, and through a queue group, once per
message); a JetStream key-value bucket replicated on all three is written through one server and
read through another; a server killed with SIGKILL leaves the other two working and rejoins on
restart with the bucket intact. The client is natslib.NatsClient (the raw NATS protocol).

Skips, saying why, where nats-server is not installed.
"""

import socket
import time
import unittest

from natslib import NatsClient, NatsCluster, skip_without_nats


def wait_interest(pub, sub, subject, sid, timeout=5.0):
    """Publishes probes on `pub` until `sub` gets one: subscription interest crosses a route
    asynchronously (RS+), so a message sent right after SUB on another server may find none.
    Drains the probes, so the next message on sid is the test's own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.pub(subject, b"probe")
        pub.flush()
        try:
            sub.next_msg(timeout=0.1, sid=sid)
        except socket.timeout:
            continue
        sub.flush()
        while True:
            try:
                sub.next_msg(timeout=0.2, sid=sid)
            except socket.timeout:
                return
    raise AssertionError("no interest in %s crossed the routes within %.0f s" % (subject, timeout))


@skip_without_nats
class NatsHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nats = NatsCluster(3)
        cls.nats.start()

    @classmethod
    def tearDownClass(cls):
        cls.nats.stop()

    def client(self, i):
        c = NatsClient(self.nats[i].port)
        self.addCleanup(c.close)
        return c

    def test_1_mesh_and_jetstream(self):
        ids = [s.server_id() for s in self.nats.servers]
        self.assertEqual(len(set(ids)), 3)
        for s, me in zip(self.nats.servers, ids):
            self.assertEqual(s.routes(), sorted(i for i in ids if i != me))
            self.assertTrue(s.healthy())
        c = self.client(0)
        self.assertTrue(c.info.get("headers"))
        self.assertEqual(c.info.get("max_payload"), 1024 * 1024)
        self.assertTrue(c.js_api("INFO").get("streams") is not None)

    def test_2_publish_reaches_another_server(self):
        a, b = self.client(0), self.client(2)
        # Subjects as src/cluster/subject.c writes them, escapes included.
        sid = b.sub("starling.m.host=2Eexample.>")
        b.flush()
        wait_interest(a, b, "starling.m.host=2Eexample.probe", sid)
        a.pub("starling.m.host=2Eexample.t", b"\xc0\x53payload")
        a.pub("starling.m.host=2Eexample.h", b"x", headers={"Starling-Test": "1"})
        a.pub("starling.m.other.t", b"not for b")
        a.flush()
        m = b.next_msg(sid=sid)
        self.assertEqual((m.subject, m.data, m.headers), ("starling.m.host=2Eexample.t",
                                                          b"\xc0\x53payload", None))
        m = b.next_msg(sid=sid)
        self.assertEqual((m.subject, m.data), ("starling.m.host=2Eexample.h", b"x"))
        self.assertTrue(m.headers.startswith(b"NATS/1.0\r\n"))
        self.assertIn(b"Starling-Test: 1\r\n", m.headers)
        with self.assertRaises(socket.timeout):
            b.next_msg(timeout=0.3, sid=sid)

    def test_3_queue_group_once_per_message(self):
        pub, s1, s2 = self.client(0), self.client(1), self.client(2)
        subject = "starling.m.shared.x"
        q1 = s1.sub(subject, queue="g.m.shared.x")
        q2 = s2.sub(subject, queue="g.m.shared.x")
        # A route carries subscription interest in order: once a plain subscription made
        # after the queue subscription is known on the publishing server, so is the latter.
        for i, c in ((1, s1), (2, s2)):
            wait_interest(pub, c, "starling.m.probe%d" % i, c.sub("starling.m.probe%d" % i))
        probe = pub.sub(subject)  # a plain subscriber on the publishing server as witness
        pub.flush()
        n = 40
        for i in range(n):
            pub.pub(subject, b"%d" % i)
        pub.flush()
        got = []
        for c, sid in ((s1, q1), (s2, q2)):
            while True:
                try:
                    got.append(int(c.next_msg(timeout=0.5, sid=sid).data))
                except socket.timeout:
                    break
        witness = [int(pub.next_msg(timeout=1, sid=probe).data) for _ in range(n)]
        self.assertEqual(witness, list(range(n)))
        self.assertEqual(sorted(got), list(range(n)), "each message once to the queue group")

    def test_4_key_value_across_servers(self):
        w, r = self.client(1), self.client(2)
        w.kv_create("retain_t4", replicas=3)
        # Keys in the cluster layer's tokens: valid JetStream KV keys as they are.
        ack = w.kv_put("retain_t4", "m.sensors.t=2E1", b"\xc0\x53retained")
        self.assertEqual(ack["stream"], "KV_retain_t4")
        self.assertEqual(r.kv_get("retain_t4", "m.sensors.t=2E1"), b"\xc0\x53retained")
        self.assertIsNone(r.kv_get("retain_t4", "m.absent"))
        w.kv_put("retain_t4", "m.sensors.t=2E1", b"second")
        self.assertEqual(self.client(0).kv_get("retain_t4", "m.sensors.t=2E1"), b"second")

    def test_5_server_killed_and_restarted(self):
        w = self.client(0)
        w.kv_create("retain_t5", replicas=3)
        w.kv_put("retain_t5", "k", b"before")
        # Kill a server that leads neither the bucket's stream nor JetStream's meta group, so
        # that no leader election (seconds of RAFT timeouts) slows the test; the others keep
        # a quorum of the three replicas.
        info = w.js_api("STREAM.INFO.KV_retain_t5")
        meta = self.nats[0].jsz().get("meta_cluster", {}).get("leader")
        victim = next(i for i, s in enumerate(self.nats.servers)
                      if s.name not in (info["cluster"].get("leader"), meta))
        up = [i for i in range(3) if i != victim]
        self.nats.kill(victim)
        self.assertFalse(self.nats[victim].alive())
        a, b = self.client(up[0]), self.client(up[1])
        sid = b.sub("starling.m.after")
        b.flush()
        wait_interest(a, b, "starling.m.after", sid)
        a.pub("starling.m.after", b"through two")
        a.flush()
        self.assertEqual(b.next_msg(sid=sid).data, b"through two")
        a.kv_put("retain_t5", "k", b"during")
        self.assertEqual(b.kv_get("retain_t5", "k"), b"during")
        self.nats.restart(victim)
        back = self.client(victim)
        # The restarted server answers the stream's API through the leader; its own replica
        # catches up from the others.
        self.assertEqual(back.kv_get("retain_t5", "k"), b"during")
        info = back.js_api("STREAM.INFO.KV_retain_t5")
        deadline = time.monotonic() + 10
        while not all(r.get("current") for r in info["cluster"].get("replicas", [])):
            self.assertLess(time.monotonic(), deadline, "the restarted replica never caught up")
            time.sleep(0.1)
            info = back.js_api("STREAM.INFO.KV_retain_t5")
        self.assertEqual(len(info["cluster"]["replicas"]), 2)

if __name__ == "__main__":
    unittest.main()
