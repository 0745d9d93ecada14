"""A Starling cluster on NATS (issue 14): three starlingd nodes joined through a three-server
NATS cluster (clusterlib.ClusterCase: nats-server processes with routes on loopback ports,
node i connected to NATS server i first), real clients on different nodes: what crosses.

Every local PUBLISH goes once to NATS; a node subscribes on NATS to the subjects of the
distinct filters its own clients hold (`a/#` takes two: `a.>` and `a`) and delivers what
arrives to its matching subscribers once, at min(publish QoS, granted QoS), in publisher
order, MQTT 5 properties kept, 3.1.1 and 5.0 mixed: `+`, `#` and the parent-level rule,
`$`-topics (but not for filters starting with a wildcard), topics whose levels need escaping
in NATS subjects; `$SYS` stays per node. The nodes' `$SYS/broker/cluster/...` topics and
`starling_cluster_*` metrics count it; a node with no subscriber receives nothing; interest
follows the clients (refcounted over workers, sessions and their expiry). `$share/GROUP/FILTER`
is cluster-wide (NATS queue groups), and a client id is connected once over the cluster.
test_cluster_faults.py has what fails (NATS servers, nodes, limits, configuration);
test_cluster_retained.py and test_cluster_later.py the retained messages' bucket,
test_cluster_sessions.py persistent sessions moving with their client between nodes.

Subscription interest crosses NATS routes asynchronously: each test waits for it with probes
(ClusterCase.wait_interest) before it counts. Skipped, saying why, without nats-server, and
against Mosquitto (which has no cluster).
"""

import os
import socket
import subprocess
import time
import unittest

from clusterlib import (CLUSTER_SYS, QUIET_S, ClusterCase, by_payload, cluster_only,
                        stop_shared_clusters)
from harness import (CONNACK, MOSQUITTO_PUB, MOSQUITTO_SUB, MQTT5, PUBLISH, PacketTypes,
                     RawClient, SubscribeOptions, client_cmd, encode_connect, mqtt5, pprops,
                     prop, props, sub_options, unique_id)


def tearDownModule():
    stop_shared_clusters()


@cluster_only
class CrossNode(ClusterCase):
    """Pub/sub between nodes."""

    def test_connected_log_and_sys(self):
        for i in range(self.NODES):
            node_id, cluster, url = self.wait_connected(i)
            self.assertEqual((node_id, cluster), ("node%d" % i, self.cname))
            self.assertEqual(url, self.nats[i].url, "node%d connects to its own server first" % i)
            self.assertEqual(self.node_sys(i, CLUSTER_SYS + "connected"), "1")
            self.wait_node_metric(i, lambda v: v == 1, "starling_cluster_connected")

    def test_qos_matrix(self):
        """Each publish QoS to each granted QoS, between nodes: delivered at the minimum,
        exactly once, retain 0; publishers on node 0 and on node 2."""
        for pub_node, sub_nodes in ((0, (1, 2)), (2, (0, 1))):
            topic = "qm%d" % pub_node
            subs = {}
            for n in sub_nodes:
                for sq in range(3):
                    c = self.client(broker=self.node(n))
                    subs[(n, sq)] = self.collect(c, topic + "/#", sq)
            pub = self.client(broker=self.node(pub_node))
            self.wait_interest(pub, topic + "/probe", *subs.values())
            for pq in range(3):
                self.publish(pub, "%s/%d" % (topic, pq), b"p%d" % pq, pq)
            for (n, sq), got in subs.items():
                with self.subTest(pub=pub_node, sub=n, granted=sq):
                    msgs = self.exactly(got, [b"p0", b"p1", b"p2"], quiet=0.1)
                    for m in msgs:
                        pq = int(m.payload[1:])
                        self.assertEqual(m.qos, min(pq, sq), m)
                        self.assertEqual(m.topic, "%s/%d" % (topic, pq))
                        self.assertFalse(m.retain, m)
                        self.assertFalse(m.dup, m)

    def test_publisher_and_subscriber_on_the_same_node_get_one_copy(self):
        """A node that publishes on NATS a topic it is itself subscribed to must not deliver
        its own message a second time when NATS echoes it back."""
        here = self.client(broker=self.node(0))
        got_here = self.collect(here, "echo/#", 2)
        there = self.client(broker=self.node(1))
        got_there = self.collect(there, "echo/#", 2)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "echo/probe", got_there, got_here)
        for q in range(3):
            self.publish(pub, "echo/%d" % q, b"e%d" % q, q)
        self.exactly(got_there, [b"e0", b"e1", b"e2"])
        self.exactly(got_here, [b"e0", b"e1", b"e2"], quiet=0)

    def test_wildcards(self):
        """+, #, the parent level of `#`, on the receiving node, against a set of topics
        published on another node."""
        filters = {
            "w/+/x": {"w/a/x", "w/b/x", "w//x"},
            "w/#": {"w", "w/a/x", "w/b/x", "w//x", "w/a", "w/a/b/c", "w/a/x/y", "w/"},
            "w/a/#": {"w/a/x", "w/a", "w/a/b/c", "w/a/x/y"},
            "+/a": {"w/a", "v/a"},
            "w/+": {"w/a", "w/"},
            "+": {"w", "v"},
            "+/+/x/#": {"w/a/x", "w/b/x", "w//x", "w/a/x/y", "wx/a/x"},
        }
        topics = sorted(set().union(*filters.values()) | {"v/a", "v", "wx/a/x", "v/w/a"})
        pub = self.client(broker=self.node(0))
        got = {}
        for n, (flt, expect) in enumerate(sorted(filters.items())):
            c = self.client(broker=self.node(1 + n % 2))
            got[flt] = self.collect(c, flt, 1)
        # Probe each filter with a topic it matches (probes reach the others too: every list
        # is cleared once the last probe of all has arrived where it was aimed).
        for flt, lst in got.items():
            self.wait_interest(pub, sorted(filters[flt])[0], lst)
        for lst in got.values():
            lst.clear()
        for t in topics:
            self.publish(pub, t, t.encode(), 1)
        for flt, lst in got.items():
            with self.subTest(filter=flt):
                msgs = self.exactly(lst, [t.encode() for t in filters[flt]], quiet=0.1)
                self.assertTrue(all(m.topic == m.payload.decode() for m in msgs))

    def test_dollar_topics(self):
        """`$`-topics other than $SYS cross; a filter starting with + or # does not match
        them on the receiving node either [MQTT-4.7.2-1]."""
        subs = {}
        for n, flt in enumerate(("#", "+/x", "$app/#", "$app/+", "+/+")):
            c = self.client(broker=self.node(1 + n % 2))
            subs[flt] = self.collect(c, flt, 1)
        pub = self.client(broker=self.node(0))
        for flt, topic in (("#", "app/x"), ("+/x", "app/x"), ("$app/#", "$app/x"),
                           ("$app/+", "$app/x"), ("+/+", "app/x")):
            self.wait_interest(pub, topic, subs[flt])
        for lst in subs.values():
            lst.clear()
        self.publish(pub, "$app/x", b"dollar", 1)
        self.publish(pub, "app/x", b"plain", 1)
        self.exactly(subs["$app/#"], [b"dollar"])
        self.exactly(subs["$app/+"], [b"dollar"], quiet=0)
        for flt in ("#", "+/x", "+/+"):
            self.exactly(subs[flt], [b"plain"], quiet=0)

    def test_sys_stays_per_node(self):
        """Nothing of $SYS goes on NATS: a NATS subscriber to the whole cluster prefix sees
        the nodes' traffic but none of their $SYS (published every second), and a $SYS
        subscriber on one node hears only that node's (one uptime a second, not three)."""
        nc = self.nats_client(1)
        sid = nc.sub(self.cname + ".>")
        nc.flush()
        for i in range(self.NODES):  # every node wants $SYS: nothing of it crosses anyway
            c = self.client(broker=self.node(i))
            self.collect(c, "$SYS/#", 0)
        c = self.client(broker=self.node(2))
        uptimes = self.collect(c, "$SYS/broker/uptime", 0)
        since = time.monotonic()
        pub = self.client(broker=self.node(0))
        deadline = time.monotonic() + 5
        seen = []
        while time.monotonic() < deadline:  # until a publish of ours is seen on NATS
            self.publish(pub, "sys/witness", b"w", 0)
            try:
                seen.append(nc.next_msg(timeout=0.2, sid=sid).subject)
            except socket.timeout:
                continue
            break
        self.assertTrue(seen, "no node publishes on NATS")
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            try:
                seen.append(nc.next_msg(timeout=0.2, sid=sid).subject)
            except socket.timeout:
                pass
        self.assertEqual([s for s in seen if "SYS" in s], [], "$SYS on NATS")
        # (The cluster's own control subjects, "<cluster>.s...", carry no topic.)
        self.assertEqual({s for s in seen if not s.startswith(self.cname + ".s.")},
                         {self.cname + ".m.sys.witness"})
        elapsed = time.monotonic() - since
        self.assertLessEqual(len(uptimes), int(elapsed) + 2,
                             "more uptimes than one node publishes in %.1f s: %r"
                             % (elapsed, uptimes.payloads()))
        self.assertGreaterEqual(len(uptimes), 1)

    def test_escaped_levels(self):
        """Levels NATS subjects cannot hold as they are (spaces, dots, '*', '>', empty levels,
        non-ASCII UTF-8, the escape character itself) cross unchanged, each matched exactly by
        its own filter and by wildcards as in MQTT."""
        topics = ["esc/sp ace", "esc/dot.ted", "esc/st*r", "esc/gt>", "esc/*", "esc/>",
                  "esc/.", "esc/..", "esc//b", "esc/", "/lead", "esc/\u00fc/\u65e5\u672c",
                  "esc/=24", "esc/=", "esc/=2E", "esc/a.b/c", "esc/a/b.c", "esc/tab\there",
                  "esc/$y", "esc/\U0001F600"]
        pub = self.client(broker=self.node(0))
        every = self.client(broker=self.node(1))
        got_all = self.collect(every, "#", 1)
        plus = self.client(broker=self.node(1))
        got_plus = self.collect(plus, "esc/+", 1)
        exact = {}
        for n, t in enumerate(topics):
            c = self.client(broker=self.node(2))
            exact[t] = self.collect(c, t, 1)
        for t in topics:
            self.wait_interest(pub, t, exact[t])
        self.wait_interest(pub, "esc/probe", got_all, got_plus)
        for lst in list(exact.values()):
            lst.clear()
        for n, t in enumerate(topics):
            self.publish(pub, t, b"%d" % n, 1)
        msgs = self.exactly(got_all, [b"%d" % n for n in range(len(topics))])
        self.assertEqual(sorted((int(m.payload), m.topic) for m in msgs), list(enumerate(topics)))
        one_level = [t for t in topics if t.startswith("esc/") and t.count("/") == 1]
        msgs = self.exactly(got_plus, [b"%d" % topics.index(t) for t in one_level], quiet=0)
        for t in topics:
            with self.subTest(topic=t):
                msgs = self.exactly(exact[t], [b"%d" % topics.index(t)], quiet=0)
                self.assertEqual(msgs[0].topic, t)

    def test_overlapping_filters_once(self):
        """A node holding several filters that match one message (NATS sends it once per
        matching NATS subscription) delivers it once to each of its clients, at the highest
        QoS granted to that client; its NATS subscriptions are one per distinct filter."""
        x = self.client(broker=self.node(1))
        for flt, q in (("ov/#", 0), ("ov/+/c", 2), ("ov/b/c", 1), ("#", 1), ("+/b/#", 0)):
            self.subscribe(x, flt, q)
        y = self.client(broker=self.node(1))
        self.subscribe(y, "ov/b/c", 1)
        z = self.client(broker=self.node(2))
        self.subscribe(z, "ov/#", 1)
        self.subscribe(z, "ov/b/+", 2)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "ov/b/c", x.messages, y.messages, z.messages)
        self.publish(pub, "ov/b/c", b"q1", 1)
        self.publish(pub, "ov/b/c", b"q2", 2)
        self.publish(pub, "ov/b/c", b"q0", 0)
        mx = self.exactly(x.messages, [b"q0", b"q1", b"q2"])
        my = self.exactly(y.messages, [b"q0", b"q1", b"q2"], quiet=0)
        mz = self.exactly(z.messages, [b"q0", b"q1", b"q2"], quiet=0)
        self.assertEqual(sorted((m.payload, m.qos) for m in mx),
                         [(b"q0", 0), (b"q1", 1), (b"q2", 2)])
        self.assertEqual(sorted((m.payload, m.qos) for m in my),
                         [(b"q0", 0), (b"q1", 1), (b"q2", 1)])
        self.assertEqual(sorted((m.payload, m.qos) for m in mz),
                         [(b"q0", 0), (b"q1", 1), (b"q2", 2)])
        c = self.cname
        want1 = sorted(["%s.m.ov.>" % c, "%s.m.ov" % c, "%s.m.ov.*.c" % c, "%s.m.ov.b.c" % c,
                        "%s.m.>" % c, "%s.m.*.b.>" % c, "%s.m.*.b" % c])
        want2 = sorted(["%s.m.ov.>" % c, "%s.m.ov" % c, "%s.m.ov.b.*" % c])
        for i, want in ((1, want1), (2, want2)):  # SUBs reach the servers at their pace
            self.wait_for(lambda i=i, want=want: self.nats_subjects(i) == want, 5,
                          lambda i=i: "node%d holds %r" % (i, self.nats_subjects(i)))
        self.assertEqual(self.nats_subjects(0), [])
        self.wait_node_sys(1, lambda v: v == 7, CLUSTER_SYS + "subscriptions")
        self.wait_node_metric(1, lambda v: v == 7, "starling_cluster_subscriptions")
        self.wait_node_metric(2, lambda v: v == 3, "starling_cluster_subscriptions")
        self.wait_node_metric(0, lambda v: v == 0, "starling_cluster_subscriptions")
        # NATS sent node 1 a copy per matching subscription (5 of its 7), node 2 two: the
        # copies beyond the first are counted as duplicates.
        self.wait_node_metric(1, lambda v: v >= 3 * 4, "starling_cluster_duplicates_total")
        self.wait_node_metric(2, lambda v: v >= 3 * 1, "starling_cluster_duplicates_total")
        # Interest follows the clients: x leaves, y's filter stays; then y unsubscribes.
        x.disconnect()
        self.wait_for(lambda: self.nats_subjects(1) == ["%s.m.ov.b.c" % c], 5,
                      lambda: "node1 still holds %r" % self.nats_subjects(1))
        self.wait_node_metric(1, lambda v: v == 1, "starling_cluster_subscriptions")
        self.unsubscribe(y, "ov/b/c")
        self.wait_for(lambda: self.nats_subjects(1) == [], 5,
                      lambda: "node1 still holds %r" % self.nats_subjects(1))
        self.wait_node_sys(1, lambda v: v == 0, CLUSTER_SYS + "subscriptions")

    def test_interest_refcounted_over_clients_and_workers(self):
        """Many clients of one node (spread over its workers) holding one filter, and filters
        of their own, leaving in every way (UNSUBSCRIBE, DISCONNECT, a dropped socket): the
        node holds one NATS subscription per distinct filter still held, and none at the
        end."""
        c = self.cname
        clients = []
        for i in range(12):
            cl = self.client(broker=self.node(1))
            self.subscribe(cl, "rc/#", i % 3)
            self.subscribe(cl, "rc/own/%d" % (i % 4), 1)
            clients.append(cl)
        shared = self.client(broker=self.node(1))
        self.subscribe(shared, "$share/g/rc/#", 1)
        raw = RawClient(self.node(1).port, timeout=5.0)
        self.defer(raw.close)
        raw.connect(unique_id("rc"), True, 60)
        raw.subscribe([("rc/raw", 0)])

        def want(owns, rc=True, rawsub=True):
            subjects = ["%s.m.rc.own.%d" % (c, k) for k in owns]
            if rc:
                subjects += ["%s.m.rc.>" % c, "%s.m.rc" % c]
            if rawsub:
                subjects.append("%s.m.rc.raw" % c)
            return sorted(subjects)

        def settle(expected, group=True):
            """Plain subscriptions `expected`; the shared group's queue subscriptions (its
            filter's two subjects, one queue name) while `group`."""
            queues = sorted(["%s.m.rc" % c, "%s.m.rc.>" % c]) if group else []

            def now():
                q = self.nats_queue_subs(1)
                return (self.nats_subjects(1), [subj for subj, _ in q],
                        len({name for _, name in q}) <= 1)

            self.wait_for(lambda: now() == (expected, queues, True), 5,
                          lambda: "node1 holds %r and queues %r, not %r and %r"
                          % (self.nats_subjects(1), self.nats_queue_subs(1), expected, queues))
            self.wait_node_metric(1, lambda v: v == len(expected) + len(queues),
                                  "starling_cluster_subscriptions")

        settle(want(range(4)))
        self.assertTrue(self.nats_queue_subs(1)[0][1].startswith("g."), self.nats_queue_subs(1))
        for i in range(0, 12, 4):  # own/0 loses all its holders, rc/# some
            self.unsubscribe(clients[i], "rc/own/0")
        settle(want([1, 2, 3]))
        for i in (1, 5, 9):  # own/1's holders go away with their connections
            clients[i].disconnect()
        settle(want([2, 3]))
        raw.abort()
        settle(want([2, 3], rawsub=False))
        for i in (2, 3, 6, 7, 10, 11, 0, 4, 8):
            self.unsubscribe(clients[i], ["rc/#"] + (["rc/own/%d" % (i % 4)] if i % 4 else []))
        settle([])  # the shared group's queue subscriptions remain
        self.unsubscribe(shared, "$share/g/rc/#")
        settle([], group=False)
        # And it comes back when wanted again, across nodes.
        self.wait_crossing(0, 1, "rc/again")

    def test_session_expiry_releases_interest(self):
        """An MQTT 5 session that expires on its node, and a persistent 3.1.1 session
        discarded by a clean reconnect, give up their NATS subscriptions."""
        c5 = self.client5(unique_id("se"), broker=self.node(1),
                          properties=pprops(PacketTypes.CONNECT, SessionExpiryInterval=1))
        self.subscribe(c5, "se5/#", 1)
        cid = unique_id("se3")
        c3 = self.client(cid, clean_session=False, broker=self.node(1))
        self.subscribe(c3, "se3/x", 1)
        self.wait_for(lambda: len(self.nats_subjects(1)) == 3, 5)
        c5.disconnect()
        c3.disconnect()
        time.sleep(0.3)
        self.assertEqual(len(self.nats_subjects(1)), 3, "offline sessions keep their filters")
        self.wait_for(lambda: self.nats_subjects(1) == ["%s.m.se3.x" % self.cname], 5,
                      lambda: "after the expiry node1 holds %r" % self.nats_subjects(1))
        self.client(cid, clean_session=True, broker=self.node(1)).disconnect()
        self.wait_for(lambda: self.nats_subjects(1) == [], 5,
                      lambda: "after the clean start node1 holds %r" % self.nats_subjects(1))

    def test_burst_everything_delivered_or_counted(self):
        """20,000 QoS 0 messages as fast as one publisher sends them: the subscriber on
        another node gets them in order, and whatever it misses is counted as dropped."""
        sub = self.client(broker=self.node(1))
        got = self.collect(sub, "burst/#", 0)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "burst/probe", got)
        n = 20000
        for i in range(n):
            pub.publish("burst/x", b"%d" % i, 0)
        info = pub.publish("burst/end", b"end", 1)
        info.wait_for_publish(30)

        def settled():
            if len(got) and got[-1].payload == b"end":
                return True
            dropped = sum(self.node_metric(k, "starling_cluster_messages_dropped_total",
                                           direction=d) or 0
                          for k, d in ((0, "out"), (1, "in")))
            return dropped and len(got) + dropped >= n + 1

        self.wait_for(settled, 30, lambda: "got %d of %d" % (len(got), n))
        time.sleep(QUIET_S)
        seq = [int(m.payload) for m in got if m.payload != b"end"]
        self.assertEqual(seq, sorted(set(seq)), "out of order or duplicated")
        sent = self.wait_node_metric(0, lambda v: v >= n + 1,
                                     "starling_cluster_messages_sent_total")
        dropped_out = self.node_metric(0, "starling_cluster_messages_dropped_total",
                                       direction="out")
        dropped_in = self.node_metric(1, "starling_cluster_messages_dropped_total",
                                      direction="in")
        self.assertEqual(len(seq) + dropped_out + dropped_in, n,
                         "delivered %d, dropped out %d, in %d of %d (sent %d)"
                         % (len(seq), dropped_out, dropped_in, n, sent))

    def test_publisher_order(self):
        """500 QoS 1 messages (and 300 QoS 0, 200 QoS 2) from one publisher arrive in order
        on two other nodes."""
        subs = []
        for n in (1, 2):
            c = self.client(broker=self.node(n))
            subs.append(self.collect(c, "ord/#", 2))
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "ord/probe", *subs)
        for q, count in ((1, 500), (0, 300), (2, 200)):
            for lst in subs:
                lst.clear()
            infos = [pub.publish("ord/%d" % q, b"%d" % i, q) for i in range(count)]
            for info in infos:
                info.wait_for_publish(10)
            for n, lst in zip((1, 2), subs):
                with self.subTest(qos=q, node=n):
                    msgs = self.wait_messages(lst, count, timeout=20)
                    self.assertEqual([int(m.payload) for m in msgs], list(range(count)))
                    self.assertTrue(all(m.qos == q for m in msgs))
            time.sleep(0.2)
            self.assertEqual([len(lst) for lst in subs], [count, count], "duplicates")

    def test_publishers_on_several_workers_keep_their_order(self):
        """Eight publishers on node 0 (spread over its workers), interleaved, QoS 1: each
        one's messages arrive in its order on node 1 and node 2."""
        subs = []
        for n in (1, 2):
            c = self.client(broker=self.node(n))
            subs.append(self.collect(c, "mp/#", 1))
        pubs = [self.client(broker=self.node(0)) for _ in range(8)]
        self.wait_interest(pubs[0], "mp/probe", *subs)
        per = 100
        infos = []
        for i in range(per):
            for k, p in enumerate(pubs):
                infos.append(p.publish("mp/%d" % k, b"%d:%d" % (k, i), 1))
        for info in infos:
            info.wait_for_publish(10)
        for n, lst in zip((1, 2), subs):
            msgs = self.exactly(lst, [b"%d:%d" % (k, i) for k in range(8) for i in range(per)],
                                timeout=20, quiet=0.2)
            for k in range(8):
                seq = [int(m.payload.split(b":")[1]) for m in msgs
                       if m.payload.startswith(b"%d:" % k)]
                self.assertEqual(seq, list(range(per)), "publisher %d on node %d" % (k, n))

    def test_mosquitto_clients(self):
        """mosquitto_sub on one node, mosquitto_pub on another, at QoS 2."""
        sub = self.spawn(client_cmd(MOSQUITTO_SUB, self.node(2), "-v", "-q", "2", "-t", "mc/#",
                                    "-d"))
        self.assertIsNotNone(sub.wait_line(lambda l: "suback" in l.lower()), sub.output())
        pub = self.client(broker=self.node(0))
        deadline = time.monotonic() + 10
        while not sub.wait_line(lambda l: l.startswith("mc/probe "), 0.2):
            self.assertLess(time.monotonic(), deadline, "no probe crossed:\n" + sub.output())
            self.publish(pub, "mc/probe", b"p")
        for i in range(5):
            r = subprocess.run(client_cmd(MOSQUITTO_PUB, self.node(0), "-q", "2", "-t",
                                          "mc/t%d" % i, "-m", "hello %d" % i),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            self.assertEqual(r.returncode, 0, r.stdout)
        for i in range(5):
            self.assertIsNotNone(sub.wait_line(lambda l, i=i: l == "mc/t%d hello %d" % (i, i), 5),
                                 sub.output())
        time.sleep(QUIET_S)
        lines = [l for l in sub.lines() if l.startswith("mc/t")]
        self.assertEqual(len(lines), 5, lines)


@cluster_only
class CrossNodeV5(ClusterCase):
    """MQTT 5 properties and 3.1.1 / 5.0 interop between nodes."""

    def full_props(self, expiry=None):
        p = pprops(PacketTypes.PUBLISH, PayloadFormatIndicator=1, ContentType="text/plain",
                   ResponseTopic="reply/to", CorrelationData=b"\x00corr\xff",
                   UserProperty=[("a", "1"), ("b", "2"), ("a", "3"), ("\u00fc", "\u65e5")])
        if expiry is not None:
            p.MessageExpiryInterval = expiry
        return p

    def test_properties_cross(self):
        v5 = self.client5(broker=self.node(1))
        got5 = self.collect(v5, "p5/#", 2)
        v3 = self.client(broker=self.node(2))
        got3 = self.collect(v3, "p5/#", 1)
        pub = self.client5(broker=self.node(0))
        self.wait_interest(pub, "p5/probe", got5, got3)
        self.publish(pub, "p5/full", b"F", 2, properties=self.full_props(expiry=3600))
        self.publish(pub, "p5/none", b"N", 1)
        m5 = {m.payload: m for m in self.exactly(got5, [b"F", b"N"])}
        m3 = {m.payload: m for m in self.exactly(got3, [b"F", b"N"], quiet=0)}
        p = m5[b"F"].props
        self.assertEqual(m5[b"F"].qos, 2)
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertEqual(p.ContentType, "text/plain")
        self.assertEqual(p.ResponseTopic, "reply/to")
        self.assertEqual(p.CorrelationData, b"\x00corr\xff")
        self.assertEqual(p.UserProperty, [("a", "1"), ("b", "2"), ("a", "3"),
                                          ("\u00fc", "\u65e5")])
        self.assertTrue(3590 <= p.MessageExpiryInterval <= 3600, p.MessageExpiryInterval)
        none = m5[b"N"].props
        for attr in ("ContentType", "ResponseTopic", "CorrelationData", "UserProperty",
                     "MessageExpiryInterval", "PayloadFormatIndicator"):
            self.assertFalse(hasattr(none, attr), "%s on a message published without" % attr)
        self.assertEqual((m3[b"F"].topic, m3[b"F"].qos), ("p5/full", 1))
        self.assertEqual((m3[b"N"].topic, m3[b"N"].qos), ("p5/none", 1))

    def test_311_publisher_to_v5_subscriber(self):
        v5 = self.client5(broker=self.node(2))
        got = self.collect(v5, "p3/#", 2)
        pub = self.client(broker=self.node(1))
        self.wait_interest(pub, "p3/probe", got)
        self.publish(pub, "p3/x", b"from 3.1.1", 2)
        m = self.exactly(got, [b"from 3.1.1"])[0]
        self.assertEqual((m.topic, m.qos), ("p3/x", 2))
        self.assertFalse(hasattr(m.props, "UserProperty"))

    def test_topic_alias_and_subscription_identifier(self):
        """A publisher's Topic Alias belongs to its connection: the other node delivers the
        full topic. A Subscription Identifier is the receiving subscriber's own."""
        r = self.raw5_on(1)
        self.assertEqual(r.subscribe([("ta/#", sub_options(1))],
                                     properties=props((mqtt5.SUBSCRIPTION_ID, 77))), [1])
        p = self.raw5_on(0, properties=b"")
        deadline = time.monotonic() + 10
        while True:  # probes: the alias-free topic until node 1's interest reached node 0
            p.publish_acked("ta/probe", b"probe", 1)
            try:
                got = r.expect(PUBLISH, timeout=0.2)
                break
            except (AssertionError, TimeoutError):
                self.assertLess(time.monotonic(), deadline, "no probe crossed")
        r.ack(got)
        r.drain(quiet=0.3, ack=True)
        p.publish_acked("ta/aliased", b"A1", 1, properties=prop(mqtt5.TOPIC_ALIAS, 3))
        p.publish_acked("", b"A2", 1, properties=prop(mqtt5.TOPIC_ALIAS, 3))
        msgs = r.recv_publishes(2)
        self.assertEqual([(m.topic, m.payload) for m in msgs],
                         [("ta/aliased", b"A1"), ("ta/aliased", b"A2")])
        for m in msgs:
            self.assertEqual(m.props.all(mqtt5.SUBSCRIPTION_ID), [77], m)
            self.assertIsNone(m.topic_alias, m)

    def test_no_local_in_a_cluster(self):
        """No Local: a client does not get its own messages back through the cluster, while
        a subscriber beside it and one on another node do."""
        me = self.client5(broker=self.node(1))
        got_me = self.collect(me, "nl/#", options=SubscribeOptions(qos=1, noLocal=True))
        beside = self.client5(broker=self.node(1))
        got_beside = self.collect(beside, "nl/#", 1)
        far = self.client5(broker=self.node(2))
        got_far = self.collect(far, "nl/#", 1)
        self.wait_interest(me, "nl/probe", got_beside, got_far)
        for k in range(5):
            self.publish(me, "nl/x", b"%d" % k, 1)
        want = [b"%d" % k for k in range(5)]
        self.exactly(got_far, want)
        self.exactly(got_beside, want, quiet=0)
        self.assertEqual(got_me.snapshot(), [], "its own messages, probes included")

    def test_retain_flag_of_live_messages(self):
        """A retained message published on one node reaches live subscribers of another with
        retain 0, or 1 with Retain As Published [MQTT-3.3.1-9, -3.3.1-12, -3.3.1-13]."""
        plain = self.client5(broker=self.node(1))
        got_plain = self.collect(plain, "rt/#", 1)
        rap = self.client5(broker=self.node(2))
        got_rap = self.collect(rap, "rt/#", options=SubscribeOptions(
            qos=1, retainAsPublished=True))
        pub = self.client5(broker=self.node(0))
        self.wait_interest(pub, "rt/probe", got_plain, got_rap)
        self.publish(pub, "rt/live", b"R", 1, retain=True)
        self.assertFalse(self.exactly(got_plain, [b"R"])[0].retain)
        self.assertTrue(self.exactly(got_rap, [b"R"], quiet=0)[0].retain)
        self.publish(pub, "rt/live", b"", 1, retain=True)  # leave nothing retained

    def test_mosquitto_v5_clients(self):
        """mosquitto_pub -V mqttv5 -D publish ... on one node, mosquitto_sub -V mqttv5 -F on
        another: the properties printed are the ones sent."""
        fmt = "MSG %t|%q|%F|%C|%R|%D|%E|%P|%p"
        sub = self.spawn(client_cmd(MOSQUITTO_SUB, self.node(1), "-V", "mqttv5", "-q", "1",
                                    "-t", "mv/#", "-F", fmt, "-d"))
        self.assertIsNotNone(sub.wait_line(lambda l: "suback" in l.lower()), sub.output())
        pub = self.client(broker=self.node(2))
        deadline = time.monotonic() + 10
        while not sub.wait_line(lambda l: l.startswith("MSG mv/probe|"), 0.2):
            self.assertLess(time.monotonic(), deadline, "no probe crossed:\n" + sub.output())
            self.publish(pub, "mv/probe", b"p")
        r = subprocess.run(client_cmd(
            MOSQUITTO_PUB, self.node(2), "-V", "mqttv5", "-q", "1", "-t", "mv/x", "-m", "body",
            "-D", "publish", "content-type", "app/x", "-D", "publish", "response-topic", "mv/r",
            "-D", "publish", "correlation-data", "cd", "-D", "publish", "user-property", "k",
            "v", "-D", "publish", "payload-format-indicator", "1", "-D", "publish",
            "message-expiry-interval", "600"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout)
        line = sub.wait_line(lambda l: l.startswith("MSG mv/x|"), 5)
        self.assertIsNotNone(line, sub.output())
        f = line[4:].split("|")
        self.assertEqual(f[:7], ["mv/x", "1", "1", "app/x", "mv/r", "cd", f[6]])
        self.assertTrue(590 <= int(f[6]) <= 600, line)
        self.assertEqual(f[7:], ["k:v", "body"])


@cluster_only
class SharedAcrossNodes(ClusterCase):
    """$share/GROUP/FILTER cluster-wide: NATS queue groups pick one node per message, the
    node one of its members."""

    def test_one_member_in_the_cluster_per_message(self):
        members = []
        for i in range(3):
            for _ in range(2):
                c = self.client(broker=self.node(i))
                members.append((i, self.collect(c, "$share/g/sh/#", 1)))
        time.sleep(1.0)  # queue subscriptions cross the routes
        pub = self.client(broker=self.node(0))
        n = 90
        for k in range(n):
            self.publish(pub, "sh/x", b"%d" % k, 1)
        self.wait_for(lambda: sum(len(lst) for _, lst in members) >= n, 10)
        time.sleep(0.5)
        counts = by_payload(m for _, lst in members for m in lst)
        self.assertEqual(counts, {b"%d" % k: 1 for k in range(n)})
        nodes = {i for i, lst in members if len(lst)}
        self.assertGreater(len(nodes), 1, "every message stayed on one node")

    def test_two_groups_and_overlapping_filters(self):
        """Each group gets every message once; $share/g/a/# and $share/g/a/b are two shared
        subscriptions (kernel-notes/cluster.md: one queue name per group and filter)."""
        lists = {}
        for name, flt in (("g1", "$share/g1/ov/#"), ("g2", "$share/g2/ov/#"),
                          ("g1b", "$share/g1/ov/b")):
            lists[name] = []
            for i in range(3):
                c = self.client(broker=self.node(i))
                lists[name].append(self.collect(c, flt, 1))
        time.sleep(1.0)
        pub = self.client(broker=self.node(1))
        for k in range(30):
            self.publish(pub, "ov/b", b"%d" % k, 1)
        for name in lists:
            self.wait_for(lambda name=name: sum(len(l) for l in lists[name]) >= 30, 10, name)
        time.sleep(0.5)
        for name, ls in lists.items():
            self.assertEqual(by_payload(m for l in ls for m in l),
                             {b"%d" % k: 1 for k in range(30)}, name)

    def test_group_and_plain_subscribers_on_one_node(self):
        """A node with a plain subscriber and a group member on one filter gets a message
        twice from NATS (its own subscription, the queue group's): each of them must still
        get it once, on the publishing node as on another."""
        for sub_node in (1, 0):
            with self.subTest(node=sub_node):
                topic = "mix%d" % sub_node
                plain = self.client(broker=self.node(sub_node))
                got_plain = self.collect(plain, topic + "/#", 1)
                member = self.client(broker=self.node(sub_node))
                got_member = self.collect(member, "$share/g/%s/#" % topic, 1)
                pub = self.client(broker=self.node(0))
                # The group's queue subscription (another connection) and the plain one cross
                # the routes each at its pace: probes until both have one.
                self.wait_interest(pub, topic + "/probe", got_plain, got_member)
                for k in range(20):
                    self.publish(pub, topic + "/x", b"%d" % k, 1)
                want = [b"%d" % k for k in range(20)]
                self.exactly(got_plain, want)
                self.exactly(got_member, want, quiet=0)

    def test_a_node_whose_members_left_gets_no_more(self):
        """Members on two nodes; those of node 2 unsubscribe: node 2 leaves the queue group,
        and every message reaches a member on node 1, none lost."""
        m1 = self.client(broker=self.node(1))
        got1 = self.collect(m1, "$share/g/lv/#", 1)
        m2 = self.client(broker=self.node(2))
        got2 = self.collect(m2, "$share/g/lv/#", 1)
        self.wait_for(lambda: len(self.nats_queue_subs(2)) == 2, 5)
        self.unsubscribe(m2, "$share/g/lv/#")
        self.wait_for(lambda: self.nats_queue_subs(2) == [], 5,
                      lambda: "node 2 still in the queue: %r" % self.nats_queue_subs(2))
        # The queue group's change crosses the routes at its pace: ten probes in a row reach
        # node 1's member first (one picked for node 2 after its leave would be lost).
        pub = self.client(broker=self.node(0))
        deadline = time.monotonic() + 10
        streak = 0
        while streak < 10:
            self.assertLess(time.monotonic(), deadline, "probes kept going astray")
            before = len(got1)
            self.publish(pub, "lv/probe", b"probe-lv", 1)
            arrived = self._arrives(got1, before, 0.5)
            streak = streak + 1 if arrived else 0
        for k in range(40):
            self.publish(pub, "lv/x", b"%d" % k, 1)
        self.exactly(got1, [b"%d" % k for k in range(40)])
        self.assertEqual(len(got2), 0)

    def _arrives(self, lst, before, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(lst) > before:
                return True
            time.sleep(0.005)
        return False

    def test_members_on_the_publishing_node_only(self):
        """A group's messages go through NATS's queue group even when publisher and members
        share a node: each still reaches one member, once."""
        members = []
        for _ in range(3):
            c = self.client(broker=self.node(1))
            members.append(self.collect(c, "$share/solo/one/#", 1))
        pub = self.client(broker=self.node(1))
        self.wait_for(lambda: len(self.nats_queue_subs(1)) == 2, 5,
                      lambda: "queue subscriptions: %r" % self.nats_queue_subs(1))
        time.sleep(0.3)
        for k in range(30):
            self.publish(pub, "one/x", b"%d" % k, 1)
        self.wait_for(lambda: sum(len(l) for l in members) >= 30, 10)
        time.sleep(QUIET_S)
        self.assertEqual(by_payload(m for l in members for m in l),
                         {b"%d" % k: 1 for k in range(30)})


@cluster_only
class ClientIds(ClusterCase):
    """A client id is connected once over the cluster."""

    def test_second_connection_on_another_node_takes_over(self):
        cid = unique_id("twice")
        first = self.client5(cid, broker=self.node(0))
        second = self.client5(cid, broker=self.node(1))
        self.assertFalse(second.connack[0], "a clean start makes a new session")
        self.wait_for(lambda: first.disconnected.is_set(), 5,
                      "the first connection, on node 0, is still open")
        self.assertEqual(first.disconnect_rc, 0x8E, "Session taken over")
        time.sleep(QUIET_S)
        self.assertFalse(second.disconnected.is_set(), "the later connection was closed")
        # 3.1.1: the earlier connection is closed.
        cid3 = unique_id("twice3")
        old = self.client(cid3, broker=self.node(2))
        new = self.client(cid3, broker=self.node(0))
        self.wait_for(lambda: old.disconnected.is_set(), 5)
        time.sleep(QUIET_S)
        self.assertFalse(new.disconnected.is_set())

    def test_simultaneous_connects_one_stays(self):
        """One client id connecting on three nodes at once, five times: exactly one of the
        three connections stays open each time."""
        for round_ in range(5):
            cid = unique_id("race")
            raws = []
            for i in range(3):
                r = RawClient(self.node(i).port, timeout=5.0)
                self.defer(r.close)
                raws.append(r)
            for r in raws:
                r.send(encode_connect(cid, True, 60))
            for r in raws:
                self.assertEqual(r.expect(CONNACK).rc, 0)
            time.sleep(0.5)
            open_ = [i for i, r in enumerate(raws) if not r.wait_closed(0.05)[0]]
            self.assertEqual(len(open_), 1, "round %d: open on nodes %r" % (round_, open_))
            for r in raws:
                r.close()

    def test_offline_session_follows_its_client_there_and_back(self):
        """A persistent session's client connecting on another node finds its session there
        (session present 1, what was queued for it on the first node), and again when it
        comes back to the first node: the session moves each time, nothing is left behind."""
        cid = unique_id("home")
        c = self.client(cid, clean_session=False, broker=self.node(0))
        got = self.collect(c, "home/#", 1)
        pub = self.client(broker=self.node(2))
        self.wait_interest(pub, "home/probe", got)
        self.leave(c)
        self.publish(pub, "home/q", b"queued", 1)
        # Queued on node 0 before the client moves (one on its way would be lost in flight).
        self.wait_node_metric(0, lambda v: v == 1, "starling_queued_messages")
        away = self.client(cid, clean_session=False, broker=self.node(1))
        self.assertTrue(away.connack[0], "the session came to node 1")
        self.exactly(away.messages, [b"queued"])
        self.leave(away)
        self.publish(pub, "home/q2", b"queued2", 1)
        self.wait_node_metric(1, lambda v: v == 1, "starling_queued_messages")
        back = self.client(cid, clean_session=False, broker=self.node(0))
        self.assertTrue(back.connack[0], "the session came back to node 0")
        self.exactly(back.messages, [b"queued2"])
        for i in (0, 1):
            for leaf in ("received", "sent"):
                self.wait_node_sys(i, lambda v: v == 1, CLUSTER_SYS + "sessions/" + leaf)


@cluster_only
class Sessions(ClusterCase):
    """What reaches a session from other nodes follows the local rules (test_cluster_sessions
    has sessions moving between nodes)."""

    def test_offline_session_keeps_interest_and_queues(self):
        """A persistent session's filters keep their NATS subscriptions while its client is
        away: QoS 1 and 2 messages from another node are queued and delivered on return; QoS
        0 are not queued (Starling's default, as Mosquitto's)."""
        cid = unique_id("off")
        c = self.client(cid, clean_session=False, broker=self.node(1))
        got = self.collect(c, "off/#", 2)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "off/probe", got)
        c.disconnect()
        self.wait_for(lambda: c.disconnected.is_set(), 5)
        time.sleep(0.2)
        want = sorted(["%s.m.off.>" % self.cname, "%s.m.off" % self.cname])
        self.wait_for(lambda: self.nats_subjects(1) == want, 5,
                      lambda: "node1 holds %r" % self.nats_subjects(1))
        for q in (1, 2):
            for i in range(5):
                self.publish(pub, "off/%d" % q, b"q%d-%d" % (q, i), q)
        time.sleep(0.5)  # the messages are on node 1 before its client comes back
        back = self.client(cid, clean_session=False, broker=self.node(1))
        self.assertTrue(back.connack[0], "session present")
        msgs = self.exactly(back.messages, [b"q%d-%d" % (q, i) for q in (1, 2)
                                            for i in range(5)])
        for q in (1, 2):
            self.assertEqual([m.payload for m in msgs if m.qos == q],
                             [b"q%d-%d" % (q, i) for i in range(5)])
        back.disconnect()
        self.client(cid, clean_session=True, broker=self.node(1)).disconnect()

    def test_message_expiry_across_nodes(self):
        """The Message Expiry Interval keeps running across nodes: a message queued for an
        offline session on another node expires there [MQTT-3.3.2-5], and one delivered late
        carries what is left of it [MQTT-3.3.2-6]."""
        cid = unique_id("exp")
        props5 = pprops(PacketTypes.CONNECT, SessionExpiryInterval=300)
        c = self.client5(cid, broker=self.node(2), properties=props5)
        got = self.collect(c, "exp/#", 1)
        pub = self.client5(broker=self.node(0))
        self.wait_interest(pub, "exp/probe", got)
        c.disconnect()
        self.wait_for(lambda: c.disconnected.is_set(), 5)
        time.sleep(0.2)
        self.publish(pub, "exp/short", b"short", 1,
                     properties=pprops(PacketTypes.PUBLISH, MessageExpiryInterval=1))
        self.publish(pub, "exp/long", b"long", 1,
                     properties=pprops(PacketTypes.PUBLISH, MessageExpiryInterval=100))
        time.sleep(2.5)
        back = self.client5(cid, broker=self.node(2), clean_start=False, properties=props5)
        self.assertTrue(back.connack[0], "session present")
        msgs = self.exactly(back.messages, [b"long"])
        self.assertTrue(95 <= msgs[0].props.MessageExpiryInterval <= 98,
                        msgs[0].props.MessageExpiryInterval)
        back.disconnect()

    def test_will_crosses(self):
        """A will published by node 0 when its client vanishes reaches node 1 (3.1.1 and
        MQTT 5 with properties)."""
        sub = self.client5(broker=self.node(1))
        got = self.collect(sub, "will/#", 1)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "will/probe", got)
        r = RawClient(self.node(0).port, timeout=5.0)
        self.defer(r.close)
        self.assertEqual(r.connect(unique_id("w"), True, 60,
                                   will=("will/a", b"gone", 1, False)).rc, 0)
        r5 = RawClient(self.node(0).port, timeout=5.0, version=MQTT5)
        self.defer(r5.close)
        self.assertEqual(r5.connect(unique_id("w5"), True, 60,
                                    will=("will/b", b"gone5", 1, False),
                                    will_properties=props((mqtt5.CONTENT_TYPE, "text/x"))).rc,
                         0)
        r.abort()
        r5.abort()
        msgs = {m.payload: m for m in self.exactly(got, [b"gone", b"gone5"])}
        self.assertEqual(msgs[b"gone"].topic, "will/a")
        self.assertEqual(msgs[b"gone5"].props.ContentType, "text/x")

    def test_shared_subscription_on_one_node(self):
        """A shared group whose members are all on node 1 gets messages published on node 0,
        each to one member."""
        members = []
        for _ in range(3):
            c = self.client(broker=self.node(1))
            members.append(self.collect(c, "$share/g/sh/#", 1))
        witness = self.client(broker=self.node(1))
        got_w = self.collect(witness, "sh/#", 1)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "sh/probe", got_w)
        time.sleep(0.3)
        for lst in members:
            lst.clear()
        for i in range(30):
            self.publish(pub, "sh/x", b"%d" % i, 1)
        self.exactly(got_w, [b"%d" % i for i in range(30)])
        counts = by_payload([m for lst in members for m in lst
                             if not m.payload.startswith(b"probe")])
        self.assertEqual(counts, {b"%d" % i: 1 for i in range(30)})


@cluster_only
class Counters(ClusterCase):
    """$SYS/broker/cluster/* and the starling_cluster_* metrics."""

    def test_idle_node_receives_nothing(self):
        """Nodes 0 and 1 exchange messages; node 2 has no subscriber: it holds no NATS
        subscription and receives nothing, while the others count what they sent and got."""
        sub = self.client(broker=self.node(1))
        got = self.collect(sub, "cnt/#", 1)
        pub = self.client(broker=self.node(0))
        probes = self.wait_interest(pub, "cnt/probe", got)
        n = 100
        for i in range(n):
            self.publish(pub, "cnt/%d" % (i % 7), b"%d" % i, i % 3)
        self.exactly(got, [b"%d" % i for i in range(n)])
        self.assertEqual(self.nats_subjects(2), [])
        sent0 = self.wait_node_sys(0, lambda v: v == n + probes, CLUSTER_SYS + "messages/sent")
        recv1 = self.wait_node_sys(1, lambda v: n < v <= n + probes,
                                   CLUSTER_SYS + "messages/received")
        for i, leaf, want in ((0, "received", 0), (1, "sent", 0), (2, "sent", 0),
                              (2, "received", 0), (0, "dropped", 0), (1, "dropped", 0),
                              (2, "dropped", 0)):
            with self.subTest(node=i, counter=leaf):
                self.assertEqual(self.sys_int(i, "messages/" + leaf), want)
        self.assertEqual(self.sys_int(1, "subscriptions"), 2)  # cnt.> and cnt
        self.assertEqual(self.sys_int(2, "subscriptions"), 0)
        # The metrics say the same.
        m = [self.node_metrics(i) for i in range(3)]

        def val(i, name):
            return m[i].get((name, frozenset()))

        self.assertEqual(val(0, "starling_cluster_messages_sent_total"), sent0)
        self.assertEqual(val(1, "starling_cluster_messages_received_total"), recv1)
        self.assertEqual(val(2, "starling_cluster_messages_received_total"), 0)
        self.assertEqual(val(2, "starling_cluster_messages_sent_total"), 0)
        for i in range(3):
            self.assertEqual(val(i, "starling_cluster_connected"), 1)
            for direction in ("in", "out"):
                self.assertEqual(m[i].get(("starling_cluster_messages_dropped_total",
                                           frozenset({("direction", direction)}))), 0)
        self.assertEqual(val(1, "starling_cluster_subscriptions"), 2)
        self.assertEqual(val(2, "starling_cluster_subscriptions"), 0)

    def test_sys_not_counted_and_foreign_messages_refused(self):
        """$SYS publications are never sent; a message on a cluster subject without the
        cluster's head (a foreign NATS publisher) is delivered to nobody and the node goes
        on."""
        sub = self.client(broker=self.node(1))
        got = self.collect(sub, "fx/#", 1)
        pub = self.client(broker=self.node(0))
        probes = self.wait_interest(pub, "fx/probe", got)
        nc = self.nats_client(1)

        def tail():  # epoch, lane, sequence, expiry
            return os.urandom(4) + bytes(4) + (1).to_bytes(8, "big") + bytes(4)

        junk = [b"", b"hello", b"\xc0", b"\xc0\x53", b"\xc0\x53\x01", b"\xc0\x53\x09\xff\xff",
                b"\xc0\x53\x01\x00\x05\xff\xff\xff\xff\xff\xff",   # node id past the end
                b"\xc0\x53\x01\x00\x04\x01x\x00",                     # no epoch... after the head
                b"\xc0\x53\x01\x03\x04\x01x\x00" + tail() + b"junk",    # QoS 3
                b"\xc0\x53\x01\x08\x04\x01x\x00" + tail() + b"junk",    # a reserved flag
                b"\xc0\x53\x01\x00\x07\x01x\x00" + tail() + b"junk",    # protocol level 7
                b"\xc0\x53\x01\x00\x04\x01 \x00" + tail() + b"junk",    # a node id with a space
                b"\xc0\x53\x02\x00\x04\x01x\x00" + tail() + b"junk",    # version 2
                b"\xc0\x53\x01\x00\x04\x01x\x02\x01\x01" + tail() + b"junk",  # props at 3.1.1
                b"\xc0\x53\x01\x00\x05\x01x\x03\x23\x00\x01" + tail() + b"junk",  # Topic Alias
                b"\xc0\x53\x01\x00\x05\x01x\x05\x03\x00\x09ab" + tail() + b"junk",  # string
                b"\xc0\x53\x01\x00\x05\x01x\xff\xff\xff\xff\xff" + tail() + b"junk"]  # varint
        for data in junk:
            nc.pub(self.cname + ".m.fx.junk", data)
        # A well-formed head on a subject that is no topic's (=zz is no escape).
        nc.pub(self.cname + ".m.fx.bad=zz", b"\xc0\x53\x01\x00\x04\x01x\x00" + tail() + b"bad")
        # Then a well-formed head from the same connection: NATS keeps one connection's order,
        # so once it is delivered every message before it was handled.
        nc.pub(self.cname + ".m.fx.fence", b"\xc0\x53\x01\x00\x04\x07foreign\x00"
               + os.urandom(4) + bytes(4) + (1).to_bytes(8, "big") + bytes(4) + b"fence")
        nc.flush()
        msgs = self.exactly(got, [b"fence"])
        self.assertEqual((msgs[0].topic, msgs[0].qos), ("fx/fence", 0))
        self.publish(pub, "fx/after", b"after", 1)
        self.exactly(got, [b"fence", b"after"])
        self.assertTrue(self.node(1).alive())
        self.wait_node_metric(1, lambda v: v == len(junk) + 1, "starling_cluster_invalid_total")
        # Over two sys_intervals node 0 sent only what its client published.
        time.sleep(2.2)
        self.assertEqual(self.sys_int(0, "messages/sent"), probes + 1)


@cluster_only
class DefaultName(ClusterCase):
    """No cluster_name: subjects start with "starling"; what goes on NATS, seen by a raw
    NATS subscriber."""

    cluster_name = ""
    NODES = 2

    def test_subjects_on_the_wire(self):
        nc = self.nats_client(2)
        sid = nc.sub("starling.m.>")
        sid_d = nc.sub("starling.d.>")
        nc.flush()
        pub = self.client(broker=self.node(0))
        deadline = time.monotonic() + 5
        while True:
            self.publish(pub, "wire/probe", b"p", 0)
            try:
                nc.next_msg(timeout=0.2, sid=sid)
                break
            except socket.timeout:
                self.assertLess(time.monotonic(), deadline, "nothing on NATS")
        time.sleep(0.3)
        try:
            while True:
                nc.next_msg(timeout=0.2, sid=sid)
        except socket.timeout:
            pass
        cases = [("wire/a.b", "starling.m.wire.a=2Eb"), ("$app/x y", "starling.d.=24app.x=20y"),
                 ("wire//", "starling.m.wire.=.="), ("wire/\u00e9", "starling.m.wire.=C3=A9")]
        for topic, _ in cases:
            self.publish(pub, topic, b"payload", 1)
        self.publish(pub, "$SYS/not", b"x", 0)
        got = []
        for _ in cases:
            got.append(nc.next_msg(timeout=2))
        self.assertEqual([m.subject for m in got], [s for _, s in cases])
        for m in got:
            self.assertTrue(m.data.startswith(b"\xc0\x53"), m)
            self.assertTrue(m.data.endswith(b"payload"), m)
        with self.assertRaises(socket.timeout):
            extra = nc.next_msg(timeout=0.5)
            self.fail("one more message on NATS: %r" % extra)
        self.assertEqual([m.sid for m in got], [sid, sid_d, sid, sid])

    def test_default_node_id(self):
        """Without cluster_node_id the node calls itself HOSTNAME:PORT (its first
        listener)."""
        lines = [l for l in self.node_lines(1) if not l.startswith("cluster_node_id")]
        node = self.start_node(2, wait=False, lines=lines)
        node_id, cluster, _ = self.wait_connected(2)
        self.assertEqual(node_id, "%s:%d" % (socket.gethostname(), node.port))
        self.assertEqual(cluster, "starling")
        self.wait_crossing(2, 0)


@cluster_only
class Names(ClusterCase):
    """A dotted cluster_name; two clusters on one NATS cluster are apart."""

    cluster_name = "acme.prod-1"

    def test_dotted_name_and_isolation(self):
        self.assertEqual(self.wait_connected(0)[1], "acme.prod-1")
        other = [l if not l.startswith("cluster_name ") else "cluster_name acme.test"
                 for l in self.node_lines(2)]
        stranger = self.start_node(2, lines=other)  # node 2 again, in cluster acme.test
        self.assertEqual(self.wait_connected(2)[1], "acme.test")
        lonely = self.client(broker=stranger)
        got_lonely = self.collect(lonely, "iso/#", 1)
        sub = self.client(broker=self.node(1))
        got = self.collect(sub, "iso/#", 1)
        pub = self.client(broker=self.node(0))
        self.wait_interest(pub, "iso/probe", got)
        self.publish(pub, "iso/x", b"x", 1)
        self.exactly(got, [b"x"])
        self.assertEqual(len(got_lonely), 0, "a message crossed into another cluster")
        self.wait_for(lambda: self.nats_subjects(1) == ["acme.prod-1.m.iso",
                                                        "acme.prod-1.m.iso.>"], 5,
                      lambda: "node1 holds %r" % self.nats_subjects(1))
        # ...and the stranger's own messages stay in its cluster.
        pub2 = self.client(broker=stranger)
        self.publish(pub2, "iso/y", b"y", 1)
        self.exactly(got_lonely, [b"y"])
        self.assert_no_messages(got, 0.3, expected=1)


if __name__ == "__main__":
    unittest.main()
