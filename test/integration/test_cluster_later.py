"""Retained messages across nodes (issue 14's milestone 2), written ahead of the broker and
kept as a second look at what test_cluster_retained.py checks in depth: a retained message set
on one node is served by every node, replaced and deleted from any node, loaded by a node
started later, with its MQTT 5 properties. Same harness as test_cluster.py
(clusterlib.ClusterCase), with JetStream on in the NATS cluster. The other milestones landed:
cross-node pub/sub and cluster-wide $share in test_cluster.py, sessions moving across nodes in
test_cluster_sessions.py.
"""

import time
import unittest

from clusterlib import ClusterCase, cluster_only, stop_shared_clusters
from harness import PacketTypes, pprops


def tearDownModule():
    stop_shared_clusters()


class LaterCase(ClusterCase):
    NATS_JETSTREAM = True

    def retained_of(self, i, flt, n, quiet=0.5):
        """{topic: payload} a fresh subscriber to `flt` on node i gets as retained messages
        (waits for n, then `quiet` s). A message without the retain flag shows as "(live)
        TOPIC": it was on its way (NATS's data plane) when the subscriber came, before the
        bucket's entry reached this node; a poll asks again."""
        c = self.client(broker=self.node(i))
        got = self.collect(c, flt, 1)
        if n:
            self.wait_messages(got, n, timeout=10)
        time.sleep(quiet)
        msgs = got.snapshot()
        c.disconnect()
        return {(m.topic if m.retain else "(live) " + m.topic): m.payload for m in msgs}


@cluster_only
class RetainedAcrossNodes(LaterCase):
    """Milestone 2 (test_cluster_retained.py has the rest)."""

    def test_set_on_one_node_seen_on_all(self):
        pub = self.client(broker=self.node(0))
        self.publish(pub, "ret/a", b"A", 1, retain=True)
        self.publish(pub, "ret/b/c", b"BC", 1, retain=True)
        for i in range(3):
            self.wait_for(lambda i=i: self.retained_of(i, "ret/#", 0, quiet=0.2) ==
                          {"ret/a": b"A", "ret/b/c": b"BC"}, 10,
                          "node%d never had both retained messages" % i)

    def test_replaced_and_deleted_from_another_node(self):
        self.publish(self.client(broker=self.node(0)), "ret/x", b"first", 1, retain=True)
        self.wait_for(lambda: self.retained_of(2, "ret/x", 0, quiet=0.1) == {"ret/x": b"first"},
                      10)
        self.publish(self.client(broker=self.node(1)), "ret/x", b"second", 1, retain=True)
        self.wait_for(lambda: self.retained_of(0, "ret/x", 0, quiet=0.1) ==
                      {"ret/x": b"second"}, 10)
        self.publish(self.client(broker=self.node(2)), "ret/x", b"", 1, retain=True)
        for i in range(3):
            self.wait_for(lambda i=i: self.retained_of(i, "ret/x", 0, quiet=0.2) == {}, 10,
                          "node%d still has ret/x" % i)

    def test_node_started_later_has_them(self):
        self.publish(self.client(broker=self.node(0)), "ret/early", b"E", 1, retain=True)
        self.wait_for(lambda: self.retained_of(1, "ret/early", 0, quiet=0.1) ==
                      {"ret/early": b"E"}, 10)
        self.start_node(3)
        self.assertEqual(self.retained_of(3, "ret/#", 1), {"ret/early": b"E"})

    def test_properties_of_retained_messages(self):
        pub = self.client5(broker=self.node(0))
        self.publish(pub, "ret/p", b"P", 1, retain=True, properties=pprops(
            PacketTypes.PUBLISH, ContentType="text/plain", UserProperty=[("k", "v")]))
        c = self.client5(broker=self.node(2))
        deadline = time.monotonic() + 10
        while True:
            got = self.collect(c, "ret/p", 1)
            time.sleep(0.3)
            if len(got):
                break
            self.assertLess(time.monotonic(), deadline, "ret/p never reached node 2")
            self.unsubscribe(c, "ret/p")
        m = got[0]
        self.assertTrue(m.retain)
        self.assertEqual(m.props.ContentType, "text/plain")
        self.assertEqual(m.props.UserProperty, [("k", "v")])


if __name__ == "__main__":
    unittest.main()
