"""Starling nodes joined through NATS (issue 14), for the cluster tests.

    class MyTest(ClusterCase):           # a 3-server NATS cluster, 3 fresh nodes per test
        def test_x(self):
            sub = self.client(broker=self.node(1))
            got = self.collect(sub, "a/#", 1)
            pub = self.client(broker=self.node(0))
            self.wait_interest(pub, "a/probe", got)   # node 1's NATS interest reached node 0
            self.publish(pub, "a/b", b"x", 1)

- ClusterCase(BrokerTestCase): setUpClass starts a natslib.NatsCluster of NATS_SERVERS
  nats-server processes (routes; JetStream if NATS_JETSTREAM), shared by the module's classes
  that ask for the same one (the module's tearDownModule calls stop_shared_clusters(); a class
  with NATS_SHARED = False has its own); setUp brings back servers a test killed, then starts
  NODES starlingd nodes (harness Brokers: ports of the run's slice, temp dir, log, stopped by
  PID with the harness's clean-exit and sanitizer checks), node i connected to NATS server i mod
  NATS_SERVERS (its cluster_nats_url lists that server first, then the others, for
  libnats to reconnect through), cluster_node_id "node<i>", a cluster_name of its own per test
  (so nothing a previous test's nodes published can reach this test's), sys_interval 1, and a
  metrics listener each (node.metrics_port). setUp returns once every node logged "Cluster:
  node ... connected to NATS at ...". self.broker is node 0, so the harness's helpers
  (client(), raw()...) default to it.
  Class attributes: NODES (3), NATS_SERVERS (3), NATS_CONFIG (extra nats-server lines),
  node_config (extra starlingd lines for every node), cluster_name (None: a fresh one per
  test; "" leaves the option out, so the default "starling" applies).
- self.node(i), self.nats (the NatsCluster), self.nats_client(i) (a raw NATS client on server
  i), self.start_node(i, ...) (one more node, or a node again after kill_node),
  self.kill_node(i) (SIGKILL by PID: a crash).
- self.wait_interest(pub, topic, *lists): publishes numbered probes on `topic` through the
  paho client `pub` until the last one sent is in every list (collected by subscribers on
  other nodes), then clears the lists: the subscribers' NATS interest has crossed the NATS
  routes to the publisher's node (SUB propagation is asynchronous), and no probe can still
  arrive (a node delivers one publisher's messages in order, so the last probe's arrival
  settles every earlier one). wait_crossing(pub_node, sub_node, topic) does the same with a
  subscriber and a publisher of its own (the link is up and carries `topic`).
- node_sys(i, topic) / wait_node_sys(i, pred, topic): a $SYS value of node i;
  node_metric(i, name) / wait_node_metric(i, pred, name): a Prometheus sample of node i.
- wait_node_log(i, pattern): a log line of node i matching a regular expression.
- exactly(messages, payloads): each payload arrived once and nothing else did (probes
  excepted); raw5_on(i): an MQTT 5 RawClient on node i; sys_int(i, leaf): a
  $SYS/broker/cluster/<leaf> figure. cluster_only: the class decorator the cluster modules use.
- nats_subjects(i): the subjects node i holds plain NATS subscriptions on for its clients'
  filters; nats_queue_subs(i): its queue subscriptions (shared groups), (subject, queue);
  nats_connections(i): all of it by connection (nats-server's /connz?subs=detail on every
  server up: a node's connections carry its node id as their name).
Every wait is bounded.
"""

import json
import re
import socket
import sys
import time
import urllib.request

from harness import (MQTT5, Broker, BrokerTestCase, RawClient, _tail, free_port, starling_only,
                     unique_id)
from natslib import NatsClient, NatsCluster, skip_without_nats  # noqa: F401 (re-exported)

CONNECTED_RX = r"Cluster: node (\S+) of cluster (\S+) connected to NATS at (\S+)\."
# The CONNACK of the $SYS readers: CI twice saw a node take more than 5 s to answer one right
# after every NATS server was killed (full suite, ASan; never reproduced alone or under load
# here): 15 s keeps that test about what it checks, and the stall is in the note.
SYS_CONNACK_S = 15.0
# The interface announced "Cluster: disconnected from NATS."; the broker says more after a ';'.
DISCONNECTED_RX = r"Cluster: disconnected from NATS[.;]"
RECONNECTED_RX = r"Cluster: reconnected to NATS at (\S+)\."
NODE_START_TIMEOUT_S = 10.0
QUIET_S = 0.5  # after the last expected message, for a duplicate or a stray one to show
CLUSTER_SYS = "$SYS/broker/cluster/"


def cluster_only(cls):
    """Skips a class where nats-server is missing, and against Mosquitto (no cluster)."""
    return skip_without_nats(starling_only("Mosquitto has no cluster")(cls))


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition (no label parsing
    beyond name="value" pairs, enough for the cluster's series)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        labels = {}
        name = series
        if "{" in series:
            name, rest = series.split("{", 1)
            for part in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest):
                labels[part[0]] = part[1]
        try:
            out[(name, frozenset(labels.items()))] = float(value)
        except ValueError:
            continue
    return out


# NATS clusters shared by the classes of a module that ask for the same one (servers, config,
# JetStream): a module's tearDownModule calls stop_shared_clusters().
_shared = {}


def stop_shared_clusters():
    while _shared:
        _shared.popitem()[1].stop()


class ClusterCase(BrokerTestCase):
    NODES = 3
    NATS_SERVERS = 3
    NATS_CONFIG = ()
    NATS_JETSTREAM = True  # the retained messages' bucket (each test its own cluster_name)
    NATS_SHARED = True  # False: a cluster of the class's own, stopped with it
    node_config = ()
    cluster_name = None
    nats = None

    # --- the NATS cluster: once per class, or per module ----------------------------------
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        key = (cls.NATS_SERVERS, tuple(cls.NATS_CONFIG), cls.NATS_JETSTREAM)
        if cls.NATS_SHARED and key in _shared:
            cls.nats = _shared[key]
            return
        cls.nats = NatsCluster(cls.NATS_SERVERS, extra_config=cls.NATS_CONFIG,
                               jetstream=cls.NATS_JETSTREAM)
        cls.nats.start()
        if cls.NATS_SHARED:
            _shared[key] = cls.nats

    @classmethod
    def tearDownClass(cls):
        if cls.nats is not None and not cls.NATS_SHARED:
            cls.nats.stop()
        cls.nats = None
        super().tearDownClass()

    # --- the nodes: fresh ones per test ---------------------------------------------------
    def setUp(self):
        self._teardowns = []
        self.nodes = []
        self.addCleanup(self._shutdown)
        # Servers a previous test of the class killed come back first.
        down = [i for i, s in enumerate(self.nats.servers) if not s.alive()]
        for i in down:
            self.nats.restart(i, wait=False)
        if down:
            self.nats.wait_formed()
        self.cname = (unique_id("st").replace("-", "x") if self.cluster_name is None
                      else self.cluster_name)
        for i in range(self.NODES):
            self.start_node(i, wait=False)
        self.broker = self.nodes[0] if self.nodes else None
        for i in range(self.NODES):
            self.wait_connected(i)

    def node_lines(self, i, urls=None):
        """The cluster's config lines of node i."""
        s = i % len(self.nats.servers)
        order = [s] + [k for k in range(len(self.nats.servers)) if k != s]
        urls = urls or ",".join(self.nats[k].url for k in order)
        lines = ["cluster_nats_url %s" % urls, "cluster_node_id node%d" % i, "sys_interval 1"]
        if self.cname:
            lines.append("cluster_name %s" % self.cname)
        return lines

    def start_node(self, i, wait=True, extra=(), lines=None):
        """Starts node i (a Broker; self.nodes[i]) with the cluster lines, its metrics
        listener, node_config and `extra`; `lines` replaces the cluster lines. Stopped in
        tearDown after the test's clients."""
        mport = free_port()
        config = ((self.node_lines(i) if lines is None else list(lines))
                  + ["metrics_listener %d 127.0.0.1" % mport]
                  + list(self.node_config) + list(extra))
        node = Broker(config)
        node.metrics_port = mport
        ids = [l.split(None, 1)[1] for l in config if l.startswith("cluster_node_id ")]
        node.node_id = ids[-1] if ids else None  # None: HOSTNAME:PORT, known once started
        node.index = i
        node.start()
        if node.node_id is None:
            node.node_id = "%s:%d" % (socket.gethostname(), node.port)
        if i < len(self.nodes):
            # The new node is registered first: if stopping the old one raises (its log holds
            # a sanitizer report), tearDown still stops the new one (CI once left it running).
            old, self.nodes[i] = self.nodes[i], node
            old.stop()  # a node killed before: reaped, its temp dir removed
        else:
            assert i == len(self.nodes), "nodes start in order"
            self.nodes.append(node)
        if i == 0:
            self.broker = node
        if wait:
            self.wait_connected(i)
        return node

    def node(self, i):
        return self.nodes[i]

    def wait_connected(self, i, timeout=NODE_START_TIMEOUT_S):
        """Waits for node i's "connected to NATS" line; returns (node id, cluster, url)."""
        line = self.wait_node_log(i, CONNECTED_RX, timeout)[0]
        return re.search(CONNECTED_RX, line).groups()

    def kill_node(self, i):
        """SIGKILL by PID, as a crash (stop() in tearDown only reaps it)."""
        self.nodes[i].kill()

    def _shutdown(self):
        errors = []
        while self._teardowns:
            fn = self._teardowns.pop()
            try:
                fn()
            except Exception as e:
                errors.append(e)
        failed = self._test_failed()
        for node in getattr(self, "nodes", []):
            if node.proc is None:
                continue
            if failed:
                sys.stderr.write("\n--- node%d log (%s, port %s) ---\n%s\n---\n"
                                 % (node.index, self.id(), node.port, _tail(node.log_text(), 30)))
            try:
                node.stop()
            except Exception as e:
                errors.append(e)
        self.nodes = []
        if failed and self.nats is not None:
            for s in self.nats.servers:
                sys.stderr.write("\n--- nats %s log tail ---\n%s\n"
                                 % (s.name, _tail(s.log_text(), 10)))
        if errors:
            raise errors[0]

    # --- NATS -----------------------------------------------------------------------------
    def nats_client(self, i):
        c = NatsClient(self.nats[i].port)
        self.defer(c.close)
        return c

    def nats_connections(self, i):
        """{connection name: [(subject, queue or None)...]} of node i's NATS connections, from
        nats-server's /connz on every server that is up (a node's connections are named after
        its cluster_node_id; the shared groups' one has "/shared" after it)."""
        nid = self.node(i).node_id
        found = {}
        for srv in self.nats.servers:
            if not srv.alive():
                continue
            with urllib.request.urlopen("http://127.0.0.1:%d/connz?subs=detail&limit=1024"
                                        % srv.http_port, timeout=2) as r:
                z = json.loads(r.read().decode())
            for c in z.get("connections") or []:
                if c.get("name") in (nid, nid + "/shared"):
                    found.setdefault(c["name"], []).extend(
                        (d["subject"], d.get("qgroup") or None)
                        for d in c.get("subscriptions_list_detail") or [])
        return found

    def nats_subjects(self, i):
        """Sorted subjects of node i's plain NATS subscriptions for its clients' filters (the
        kinds "m" and "d"; the cluster's own control subjects, "<cluster>.s...", left out)."""
        prefix = (self.cname or "starling") + "."
        return sorted(subj for subs in self.nats_connections(i).values() for subj, q in subs
                      if q is None and subj.startswith(prefix)
                      and not subj.startswith(prefix + "s."))

    def nats_queue_subs(self, i):
        """Sorted (subject, queue) of node i's NATS queue subscriptions (cluster-wide shared
        groups)."""
        return sorted((subj, q) for subs in self.nats_connections(i).values() for subj, q in subs
                      if q is not None)

    # --- probes ---------------------------------------------------------------------------
    def wait_interest(self, pub, topic, *lists, qos=0, timeout=10.0):
        """Publishes probes "probe-<n>" on `topic` through `pub` until every list holds the
        last one sent; then clears the lists. Returns the number of probes sent."""
        tag = unique_id("probe").encode()
        deadline = time.monotonic() + timeout
        sent = 0

        def has(lst, n):
            want = b"%s-%d" % (tag, n)
            return any(m.payload == want for m in lst)

        while True:
            self.publish(pub, topic, b"%s-%d" % (tag, sent), qos)
            sent += 1
            t = time.monotonic() + 0.2
            while time.monotonic() < t and not all(has(lst, sent - 1) for lst in lists):
                time.sleep(0.005)
            if all(has(lst, sent - 1) for lst in lists):
                break
            if time.monotonic() >= deadline:
                self.fail("probes on %r never reached every subscriber within %.0f s: %r"
                          % (topic, timeout, [len(l) for l in lists]))
        for lst in lists:
            lst.clear()
        return sent

    def wait_crossing(self, pub_node, sub_node, topic=None, qos=0, timeout=10.0):
        """A subscriber of its own on node sub_node receives what a publisher of its own on
        node pub_node publishes on `topic` (probes until one arrives)."""
        topic = topic or "probe/" + unique_id("x")
        sub = self.client(broker=self.node(sub_node))
        got = self.collect(sub, topic, qos)
        pub = self.client(broker=self.node(pub_node))
        n = self.wait_interest(pub, topic, got, qos=qos, timeout=timeout)
        sub.disconnect()
        pub.disconnect()
        return n

    # --- counting ------------------------------------------------------------------------
    def exactly(self, got, expected, timeout=10.0, quiet=QUIET_S):
        """Waits until `got` holds every payload of `expected`, then `quiet` s more: each
        arrived exactly once and nothing else did. Returns the messages."""
        want = set(expected)
        self.wait_for(lambda: want <= set(got.payloads()), timeout,
                      lambda: "missing %r (got %r)" % (sorted(want - set(got.payloads()))[:10],
                                                        got.snapshot()[:10]))
        time.sleep(quiet)
        # Probes (wait_interest) aimed at other subscribers may reach this one late.
        msgs = [m for m in got if not m.payload.startswith(b"probe")]
        counts = by_payload(msgs)
        self.assertEqual({p: n for p, n in counts.items() if n != 1}, {},
                         "delivered more than once")
        self.assertEqual(set(counts), want, "unexpected messages")
        return msgs

    def raw5_on(self, i, client_id=None, **kw):
        """An MQTT 5 RawClient connected to node i (CONNACK 0)."""
        r = RawClient(self.node(i).port, timeout=5.0, version=MQTT5)
        self.defer(r.close)
        ca = r.connect(client_id or unique_id("r"), True, 60, **kw)
        self.assertEqual(ca.rc, 0)
        return r

    def sys_int(self, i, leaf):
        """An integer of node i's $SYS/broker/cluster/<leaf>."""
        return int(self.node_sys(i, CLUSTER_SYS + leaf))

    # --- $SYS, metrics, logs ----------------------------------------------------------------
    def node_sys(self, i, topic, timeout=5.0):
        """The next value node i publishes on a $SYS topic (every sys_interval), as text."""
        c = self.client(broker=self.node(i), timeout=SYS_CONNACK_S)
        got = self.collect(c, topic, 0)
        self.wait_for(lambda: len(got) > 0, timeout, "node%d: no %s" % (i, topic))
        value = got[-1].payload.decode()
        c.disconnect()
        return value

    def wait_node_sys(self, i, pred, topic, timeout=8.0):
        """Waits until pred(int value) holds for node i's $SYS topic; returns the value. One
        subscriber for the whole wait: each sys_interval brings a fresh value."""
        c = self.client(broker=self.node(i), timeout=SYS_CONNACK_S)
        got = self.collect(c, topic, 0)
        last = [None]

        def ok():
            snap = got.snapshot()
            if not snap:
                return False
            last[0] = snap[-1].payload.decode()
            try:
                return pred(int(last[0]))
            except ValueError:
                return False

        self.wait_for(ok, timeout, lambda: "node%d %s never satisfied the condition (last %r)"
                      % (i, topic, last[0]))
        c.disconnect()
        return int(last[0])

    def node_metrics(self, i):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.node(i).metrics_port,
                                    timeout=5) as r:
            return parse_metrics(r.read().decode())

    def node_metric(self, i, name, **labels):
        return self.node_metrics(i).get((name, frozenset(labels.items())))

    def wait_node_metric(self, i, pred, name, timeout=5.0, **labels):
        last = [None]

        def ok():
            last[0] = self.node_metric(i, name, **labels)
            return last[0] is not None and pred(last[0])

        self.wait_for(ok, timeout, lambda: "node%d %s%r never satisfied the condition (last %r)"
                      % (i, name, labels, last[0]))
        return last[0]

    def leave(self, c):
        """A clean DISCONNECT (the session stays), waited for, and seen by the client's node:
        a message published right after must find the session offline and be queued, not
        written to the closing connection's window (4 workers under load, CI)."""
        i = next((k for k, n in enumerate(self.nodes) if n is not None and n.port == c._port),
                 None)
        m = re.search(r"[A-Za-z0-9_-]{1,16}$", c._client_id.decode("utf-8", "replace"))
        tail = m.group(0) if m else None
        rx = r"Client .*%s disconnected\.$" % re.escape(tail)
        before = len([l for l in self.node(i).log_text().splitlines()
                      if re.search(rx, l)]) if i is not None and tail else None
        c.disconnect()
        self.wait_for(lambda: c.disconnected.is_set(), 5, "the client never disconnected")
        if before is not None:
            self.wait_node_log(i, rx, count=before + 1)

    def wait_node_log(self, i, pattern, timeout=10.0, count=1):
        """Waits until node i's log has `count` lines matching the regular expression; returns
        them. Fails at once if the node exited."""
        rx = re.compile(pattern)
        node = self.node(i)

        def lines():
            found = [l for l in node.log_text().splitlines() if rx.search(l)]
            if len(found) >= count:
                return found
            if node.proc is not None and not node.alive():
                self.fail("node%d exited (status %s) waiting for %r; log:\n%s"
                          % (i, node.proc.returncode, pattern, _tail(node.log_text(), 20)))
            return None

        return self.wait_for(lines, timeout, lambda: "node%d log: no %d line(s) matching %r:\n%s"
                             % (i, count, pattern, _tail(node.log_text(), 20)))


def by_payload(messages):
    """{payload: how many times it arrived}."""
    counts = {}
    for m in messages:
        counts[m.payload] = counts.get(m.payload, 0) + 1
    return counts

