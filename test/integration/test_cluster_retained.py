"""Retained messages cluster-wide (issue 14): a JetStream key-value bucket holds them and every
node keeps a replica by watching it (src/broker/cluster_retain.c).

A NATS cluster of three servers (natslib.NatsCluster, JetStream on) per class, and two or three
starlingd nodes per test, each with a cluster_name of its own (so a bucket of its own:
"retained-<cluster_name>"). Node i names NATS server i first.

Checked: a retained message set on node A is served by node B to a fresh subscriber, with the
retain flag, once A is gone, and with every NATS server down (from B's memory); a delete on B
clears A; the last write wins on every node and in the bucket; a node started later loads the
bucket before it serves; Message Expiry keeps counting across nodes; MQTT 5 properties travel;
the subscription's QoS caps a retained message's; 500 topics set on A are all on C; $SYS never
reaches the bucket, other $ topics do; the bucket has three replicas.
"""

import re
import threading
import time
import unittest

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness import Broker, BrokerTestCase, _tail, unique_id
from natslib import NatsClient, NatsCluster, skip_without_nats

LOADED_RX = r"Cluster: (\d+) retained messages? loaded from the bucket (\S+)\."
CONNECTED_RX = r"Cluster: node \S+ of cluster \S+ connected to NATS at"


def envelope_payload(value):
    """The payload inside a bucket value (cluster/envelope.h), and its QoS and properties."""
    assert value[:3] == b"\xc0\x53\x01", value[:8]
    flags, n = value[3], value[5]
    pos = 6 + n
    length, shift = 0, 0
    while True:
        b = value[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    props = value[pos:pos + length]
    pos += length + 20
    return value[pos:], flags & 3, props


class ClusterBase(BrokerTestCase):
    """A NATS cluster per class, NODES nodes per test with a cluster_name (a bucket) of their
    own."""
    NODES = 2

    @classmethod
    def setUpClass(cls):
        cls.nats = NatsCluster(3)
        cls.nats.start()

    @classmethod
    def tearDownClass(cls):
        cls.nats.stop()

    # --- nodes ------------------------------------------------------------------------------
    def setUp(self):
        self._teardowns = []
        self.nodes = []
        self.cname = unique_id("rt")
        self.bucket = "retained-" + self.cname
        self.addCleanup(self._shutdown)
        for i in range(self.NODES):
            self.start_node(i)
        self.broker = self.nodes[0]

    def _shutdown(self):
        errors = []
        while self._teardowns:
            try:
                self._teardowns.pop()()
            except Exception as e:
                errors.append(e)
        for n in self.nodes:
            if n is not None and n.proc is not None:
                if self._test_failed():
                    print("\n--- node log (%s) ---\n%s\n---" % (n.config_path,
                                                              _tail(n.log_text(), 30)))
                try:
                    n.stop()
                except Exception as e:
                    errors.append(e)
        self.nodes = []
        if errors:
            raise errors[0]

    def start_node(self, i, wait_loaded=True):
        s = i % 3
        order = [s] + [k for k in range(3) if k != s]
        lines = ["cluster_nats_url %s" % ",".join(self.nats[k].url for k in order),
                 "cluster_node_id node%d" % i, "cluster_name %s" % self.cname,
                 "sys_interval 1"]
        node = Broker(lines)
        while len(self.nodes) <= i:
            self.nodes.append(None)
        self.nodes[i] = node
        node.start()
        if wait_loaded:
            self.wait_log(node, LOADED_RX, 15)
        return node

    def wait_log(self, node, rx, timeout=10.0):
        return self.wait_for(lambda: re.search(rx, node.log_text()), timeout,
                             lambda: "no %r in the log:\n%s" % (rx, _tail(node.log_text())))

    # --- what nodes and the bucket hold ---------------------------------------------------
    def retained_of(self, node, flt, n=1, wait=1.0, qos=1, v5=False):
        """The retained messages a fresh subscriber to flt on node gets (waits for n, or
        `wait` seconds)."""
        c = self.client(broker=node, protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
        got = self.collect(c, flt, qos)
        deadline = time.monotonic() + wait
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        c.disconnect()
        return got.snapshot()

    def wait_retained(self, node, topic, payload, timeout=10.0):
        """Until a fresh subscriber on node gets exactly payload (None: nothing) on topic."""
        def check():
            got = self.retained_of(node, topic, wait=0.3 if payload is None else 0.5)
            if payload is None:
                return not got
            return len(got) == 1 and got[0].payload == payload and got[0].retain
        self.wait_for(check, timeout, lambda: "node %d (%s): retained %r is %r, expected %r" % (
            self.nodes.index(node), node.dir, topic, self.retained_of(node, topic), payload))

    def nats_client(self, i=0):
        c = NatsClient(self.nats[i].port)
        self.defer(c.close)
        return c

    def bucket_get(self, key, i=0):
        return self.nats_client(i).kv_get(self.bucket, key)

    def bucket_keys(self):
        info = self.nats_client().js_api("STREAM.INFO.KV_%s" % self.bucket,
                                         {"subjects_filter": "$KV.%s.>" % self.bucket})
        return sorted(s[len("$KV.%s." % self.bucket):]
                      for s in (info["state"].get("subjects") or {}))

    def sys_of(self, node, topic):
        got = self.retained_of(node, topic, wait=3.0, qos=0)
        self.assertTrue(got, "no %s on node %s" % (topic, node.port))
        return int(got[-1].payload)


@skip_without_nats
class ClusterRetained(ClusterBase):
    def test_set_on_a_served_by_b(self):
        a, b = self.nodes
        live = self.collect(self.client(broker=b), "r/x", 1)
        pub = self.client(broker=a)
        # The live subscriber's interest has crossed to A when a probe does.
        self.wait_for(lambda: (self.publish(pub, "r/x", b"probe", 1) and False) or
                      any(m.payload == b"probe" for m in live), 10)
        time.sleep(0.3)
        live.clear()
        self.publish(pub, "r/x", b"kept", 1, retain=True)
        # In the bucket: key = the subject without the cluster prefix, value = the envelope.
        self.wait_for(lambda: self.bucket_get("m.r.x"), 10)
        payload, qos, _ = envelope_payload(self.bucket_get("m.r.x", i=2))
        self.assertEqual((payload, qos), (b"kept", 1))
        self.wait_retained(b, "r/x", b"kept")
        # Live, it came once, through the data plane (retain cleared), never again from the
        # bucket's watcher.
        time.sleep(0.5)
        self.assertEqual([(m.payload, m.retain) for m in live], [(b"kept", False)])
        # A is gone: B answers from its replica.
        a.stop()
        got = self.retained_of(b, "r/#")
        self.assertEqual([(m.topic, m.payload, m.retain, m.qos) for m in got],
                         [("r/x", b"kept", True, 1)])
        self.assertEqual(self.sys_of(b, "$SYS/broker/cluster/retained/failed"), 0)

    def test_answered_from_memory_with_nats_down(self):
        a, b = self.nodes
        self.publish(self.client(broker=a), "mem/x", b"here", 1, retain=True)
        self.wait_retained(b, "mem/x", b"here")
        try:
            for i in range(3):
                self.nats.kill(i)
            self.wait_log(b, r"Cluster: disconnected from NATS")
            got = self.retained_of(b, "mem/#")
            self.assertEqual([(m.topic, m.payload, m.retain) for m in got],
                             [("mem/x", b"here", True)])
        finally:
            self.nats.restart_all()
        # Back: the nodes reconnect and the bucket takes writes again.
        self.wait_log(b, r"Cluster: reconnected to NATS")
        self.wait_log(a, r"Cluster: reconnected to NATS")
        pub = self.client(broker=b)

        def again():
            self.publish(pub, "mem/y", b"after", 1, retain=True)
            got = self.retained_of(a, "mem/y", wait=0.5)
            return got and got[0].payload == b"after"
        self.wait_for(again, 30, "no retained write through the bucket after NATS came back")

    def test_delete_on_b_clears_a(self):
        a, b = self.nodes
        self.publish(self.client(broker=a), "del/x", b"v", 1, retain=True)
        self.wait_retained(b, "del/x", b"v")
        self.publish(self.client(broker=b), "del/x", b"", 1, retain=True)
        self.wait_retained(a, "del/x", None)
        # The key's last entry is KV's delete marker: an empty message.
        self.wait_for(lambda: self.bucket_get("m.del.x") in (None, b""), 5)
        self.assertEqual(self.retained_of(b, "del/x", wait=0.3), [])
        # And set again after the delete.
        self.publish(self.client(broker=b), "del/x", b"w", 0, retain=True)
        self.wait_retained(a, "del/x", b"w")

    def test_last_write_wins_everywhere(self):
        a, b = self.nodes
        c = self.start_node(2)
        pa, pb = self.client(broker=a), self.client(broker=b)
        # Replacement in turn: each write seen on the other node before the next.
        for i, (pub, other) in enumerate([(pa, b), (pb, a), (pa, c), (pb, c)]):
            self.publish(pub, "lww/t", b"v%d" % i, 1, retain=True)
            self.wait_retained(other, "lww/t", b"v%d" % i)
        for node in (a, b, c):
            self.wait_retained(node, "lww/t", b"v3")
        # Racing writers on two nodes: whatever the bucket ends with, every node shows.
        for i in range(40):
            pa.publish("lww/r", b"a%d" % i, 1, retain=True)
            pb.publish("lww/r", b"b%d" % i, 1, retain=True)
        self.publish(pa, "lww/done", b"1", 1)
        self.publish(pb, "lww/done", b"1", 1)

        def settled():
            value = self.bucket_get("m.lww.r")
            if value is None:
                return False
            last = envelope_payload(value)[0]
            return all([(m.payload, m.retain) for m in self.retained_of(n, "lww/r", wait=0.5)]
                       == [(last, True)] for n in (a, b, c)) and last
        last = self.wait_for(settled, 15, lambda: "the nodes do not agree with the bucket: %r" % (
            [envelope_payload(self.bucket_get("m.lww.r"))[0]] +
            [[(m.payload, m.retain) for m in self.retained_of(n, "lww/r")] for n in (a, b, c)]))
        self.assertIn(last, (b"a39", b"b39"))
        for n in (a, b, c):
            self.assertEqual(self.sys_of(n, "$SYS/broker/cluster/retained/failed"), 0)

    def test_own_writes_never_go_back(self):
        """While one client rewrites a topic on A, A's replica never shows an older value than
        one it showed before: the bucket's echoes of A's own earlier writes never replace a
        later local write (cluster_retain.c: cl_rt_fence and the writes in flight)."""
        a, b = self.nodes
        pub = self.client(broker=a)
        chk = self.client(broker=a)
        seen = []
        stop = threading.Event()

        def write():
            for i in range(400):
                pub.publish("mono/t", b"%d" % i, 0, retain=True)
                if i % 50 == 0:
                    time.sleep(0.01)
            stop.set()
        t = threading.Thread(target=write)
        t.start()
        try:
            while not stop.is_set() or len(seen) < 5:
                got = self.collect(chk, "mono/t", 0)
                deadline = time.monotonic() + 1
                while not len(got) and time.monotonic() < deadline:
                    time.sleep(0.001)
                chk.collectors.clear()
                self.unsubscribe(chk, "mono/t")
                if len(got):
                    seen.append(int(got[0].payload))
        finally:
            t.join()
        self.assertEqual(seen, sorted(seen), "A went back to an older value: %r" % seen)
        for node in (a, b):
            self.wait_retained(node, "mono/t", b"399")

    def test_node_started_later_loads_the_bucket(self):
        a = self.nodes[0]
        pub = self.client(broker=a)
        for i in range(50):
            pub.publish("late/%d" % i, b"p%d" % i, 1, retain=True)
        self.publish(pub, "late/last", b"end", 1, retain=True)
        self.wait_for(lambda: len(self.bucket_keys()) == 51, 10)
        # Started now, asked at once: the load came before the first client was served.
        c = self.start_node(2, wait_loaded=False)
        got = self.retained_of(c, "late/#", n=51, wait=10)
        self.assertEqual(sorted((m.topic, m.payload) for m in got),
                         sorted([("late/%d" % i, b"p%d" % i) for i in range(50)] +
                                [("late/last", b"end")]))
        self.assertTrue(all(m.retain for m in got))
        m = re.search(LOADED_RX, c.log_text())
        self.assertTrue(m, c.log_text())
        self.assertEqual((int(m.group(1)), m.group(2)), (51, self.bucket))
        self.assertEqual(self.sys_of(c, "$SYS/broker/cluster/retained/received"), 51)

    def test_expiry_keeps_counting(self):
        a, b = self.nodes
        pub = self.client5(broker=a)
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = 8
        t0 = time.monotonic()
        self.publish(pub, "exp/x", b"soon", 1, retain=True, properties=props)
        self.wait_retained(b, "exp/x", b"soon")
        time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))
        # A node that loads it now sees what is left, not the full interval.
        c = self.start_node(2)
        for node in (b, c):
            got = self.retained_of(node, "exp/x", v5=True)
            self.assertEqual(len(got), 1)
            left = got[0].props.MessageExpiryInterval
            self.assertTrue(1 <= left <= 7, "expiry left %r on node %s" % (left, node.port))
        time.sleep(max(0.0, t0 + 8.3 - time.monotonic()))
        for node in (a, b, c):
            self.assertEqual(self.retained_of(node, "exp/x", wait=0.3), [])
        # A node started after it expired does not load it.
        c.stop()
        self.nodes[2] = None
        d = self.start_node(3)
        self.assertEqual(self.retained_of(d, "exp/#", wait=0.3), [])

    def test_v5_properties_preserved(self):
        a, b = self.nodes
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("k", "v1"), ("k", "v2"), ("z", "")]
        props.ContentType = "application/x-test"
        props.ResponseTopic = "reply/here"
        props.CorrelationData = b"\x00\r\n\xff"
        props.PayloadFormatIndicator = 1
        self.publish(self.client5(broker=a), "props/x", b"{}", 1, retain=True, properties=props)
        self.wait_retained(b, "props/x", b"{}")
        got = self.retained_of(b, "props/x", v5=True)
        self.assertEqual(len(got), 1)
        p = got[0].props
        self.assertEqual(p.UserProperty, [("k", "v1"), ("k", "v2"), ("z", "")])
        self.assertEqual(p.ContentType, "application/x-test")
        self.assertEqual(p.ResponseTopic, "reply/here")
        self.assertEqual(p.CorrelationData, b"\x00\r\n\xff")
        self.assertEqual(p.PayloadFormatIndicator, 1)
        # A 3.1.1 subscriber gets the message without properties.
        got = self.retained_of(b, "props/x")
        self.assertEqual([(m.payload, m.retain) for m in got], [(b"{}", True)])

    def test_qos_capped_by_subscription(self):
        a, b = self.nodes
        self.publish(self.client(broker=a), "q/two", b"2", 2, retain=True)
        self.publish(self.client(broker=a), "q/zero", b"0", 0, retain=True)
        self.wait_retained(b, "q/two", b"2")
        self.wait_retained(b, "q/zero", b"0")
        for sub_qos, want in ((0, {"q/two": 0, "q/zero": 0}), (1, {"q/two": 1, "q/zero": 0}),
                              (2, {"q/two": 2, "q/zero": 0})):
            got = self.retained_of(b, "q/#", n=2, qos=sub_qos)
            self.assertEqual({m.topic: m.qos for m in got}, want, "subscription QoS %d" % sub_qos)

    def test_500_topics_set_on_a_visible_on_c(self):
        a, b = self.nodes
        c = self.start_node(2)
        pub = self.client(broker=a)
        t0 = time.monotonic()
        for i in range(500):
            pub.publish("many/%03d" % i, b"m%d" % i, 1, retain=True)
        self.publish(pub, "many/sync", b"", 1)
        self.wait_for(lambda: self.sys_of(a, "$SYS/broker/cluster/retained/stored") >= 500, 20)
        elapsed = time.monotonic() - t0
        got = self.retained_of(c, "many/#", n=500, wait=15)
        self.assertEqual(sorted(m.topic for m in got), ["many/%03d" % i for i in range(500)])
        self.assertTrue(all(m.retain for m in got))
        self.assertEqual({m.topic: m.payload for m in got},
                         {"many/%03d" % i: b"m%d" % i for i in range(500)})
        self.assertEqual(self.sys_of(a, "$SYS/broker/cluster/retained/failed"), 0)
        print("(500 retained writes stored in %.2f s) " % elapsed, end="")

    def test_sys_not_in_bucket(self):
        a, b = self.nodes
        pub = self.client(broker=a)
        self.publish(pub, "$other/x", b"d", 1, retain=True)
        self.publish(pub, "plain", b"p", 1, retain=True)
        self.wait_retained(b, "$other/x", b"d")
        self.wait_retained(b, "plain", b"p")
        # Node A publishes its $SYS tree retained every second: none of it is in the bucket.
        self.assertTrue(self.retained_of(a, "$SYS/broker/uptime", wait=3, qos=0))
        self.assertEqual(self.bucket_keys(), ["d.=24other.x", "m.plain"])

    def test_bucket_replicated_three_times(self):
        info = self.nats_client(1).js_api("STREAM.INFO.KV_%s" % self.bucket)
        self.assertEqual(info["config"]["num_replicas"], 3)
        self.assertEqual(info["config"]["max_msgs_per_subject"], 1)
        self.assertIn("created the retained messages' bucket %s (3 replicas)" % self.bucket,
                      self.nodes[0].log_text() + self.nodes[1].log_text())


if __name__ == "__main__":
    unittest.main()


@skip_without_nats
class ClusterRetainedLost(ClusterBase):
    """A bucket that goes away: writes fail, are counted, and the nodes make it again."""

    def test_bucket_deleted(self):
        a, b = self.nodes
        pub = self.client(broker=a)
        self.publish(pub, "gone/x", b"1", 1, retain=True)
        self.wait_retained(b, "gone/x", b"1")
        self.nats_client().js_api("STREAM.DELETE.KV_%s" % self.bucket)
        self.publish(pub, "gone/y", b"2", 1, retain=True)
        self.wait_for(lambda: self.sys_of(a, "$SYS/broker/cluster/retained/failed") >= 1, 15)
        self.wait_log(a, r"a retained write \(key m\.gone\.y\) did not reach the bucket")
        # The nodes open (create) the bucket again, and writes reach every node through it.
        def again():
            self.publish(pub, "gone/z", b"3", 1, retain=True)
            got = self.retained_of(b, "gone/z", wait=0.5)
            return got and got[0].payload == b"3"
        self.wait_for(again, 30, "no retained write through a new bucket")
        self.assertEqual(envelope_payload(self.bucket_get("m.gone.z"))[0], b"3")


@skip_without_nats
class ClusterRetainedNoJetStream(BrokerTestCase):
    """A NATS server without JetStream: no bucket. Nodes serve at once, retained messages stay
    per node, and every retained write that could not reach a bucket is counted."""

    def setUp(self):
        import subprocess
        from harness import free_port
        from natslib import NATS_SERVER
        self._teardowns = []
        self.addCleanup(self._shutdown)
        self.nats_port = free_port()
        self.nats = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.nats_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop_nats():
            self.nats.terminate()
            self.nats.wait(10)
        self.defer(stop_nats)
        self.nodes = []
        cname = unique_id("nojs")
        for i in range(2):
            node = Broker(["cluster_nats_url nats://127.0.0.1:%d" % self.nats_port,
                           "cluster_node_id node%d" % i, "cluster_name %s" % cname,
                           "sys_interval 1"])
            node.start()
            self.nodes.append(node)
        self.broker = self.nodes[0]

    def _shutdown(self):
        errors = []
        while self._teardowns:
            try:
                self._teardowns.pop()()
            except Exception as e:
                errors.append(e)
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:
                errors.append(e)
        self.nodes = []
        if errors:
            raise errors[0]

    def test_retained_stay_local_and_failures_count(self):
        a, b = self.nodes
        for n in (a, b):
            self.wait_for(lambda: "cannot open the retained messages' bucket" in n.log_text(),
                          10, lambda: _tail(n.log_text()))
            self.assertNotIn("loaded from the bucket", n.log_text())
        sub = self.client(broker=b)
        live = self.collect(sub, "nojs/x", 1)
        pub = self.client(broker=a)
        # Live messages still cross (core NATS); the retained store does not.
        self.wait_for(lambda: (self.publish(pub, "nojs/x", b"p", 1) and False) or len(live), 10)
        self.publish(pub, "nojs/x", b"kept", 1, retain=True)
        self.wait_for(lambda: any(m.payload == b"kept" for m in live), 5)
        c = self.client(broker=a)
        here = self.collect(c, "nojs/x", 1)
        self.wait_messages(here, 1)
        self.assertEqual((here[0].payload, here[0].retain), (b"kept", True))
        c2 = self.client(broker=b)
        there = self.collect(c2, "nojs/x", 1)
        self.assert_no_messages(there, 0.5)
        got = self.collect(self.client(broker=a), "$SYS/broker/cluster/retained/failed")
        self.wait_for(lambda: any(int(m.payload) >= 1 for m in got), 5)
        self.assertIn("did not reach the bucket", a.log_text())
