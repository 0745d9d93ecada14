"""Worker threads (`worker_threads N`, `-t N`): what must hold whichever worker a connection
lands on. Every test here starts its own broker with `worker_threads 4` (which run.py's
--workers does not override) and checks, through real clients, a path that crosses workers:
session takeover and persistent sessions reached through different accepting workers,
retained messages replicated to every worker, wills and shared subscription groups across
workers, per-publisher ordering at QoS 0 and 1 through the cross-worker channels, shutdown with
traffic in flight, max_connections counted broker-wide, $SYS values summed over workers; and
`worker_threads 1` / `-t 1` keeping the single-threaded log format.

Which worker serves what is read from the broker's notice log: with N > 1 each accepted
CONNECT logs "New client connected as ID (...) on connection C, worker HOME (accepted by worker
A)." A client id's home is fixed (a hash of the id), so homed_ids() finds ids homed on each
worker by connecting candidates once; the accepting worker is the kernel's choice
(SO_REUSEPORT), so tests that need two different acceptors retry new connections, a bounded
number of times. Starling only: Mosquitto has no worker threads.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import (MOSQUITTO_SUB, MQTT311, MQTT5, PUBLISH, SANITIZER_MARKERS, BrokerTestCase,
                     ConnectionClosed, RawClient, client_cmd, encode_connect, encode_publish,
                     mqtt5, props, starling_only, tool, unique_id)

NWORKERS = 4
WORKERS_LINE = "worker_threads %d" % NWORKERS
STARLING_PUB = tool("starling-pub")
STARLING_SUB = tool("starling-sub")
ONLY = "Mosquitto has no worker threads"

# The notice line of an accepted CONNECT when the broker runs several workers.
CONNECT_RE = re.compile(r"New client connected as (?P<id>\S+) \(p(?P<level>\d+), c(?P<clean>\d), "
                        r"k(?P<keepalive>\d+)\) on connection (?P<conn>\d+), worker (?P<home>\d+) "
                        r"\(accepted by worker (?P<acceptor>\d+)\)\.$", re.M)
# ... and with one worker: unchanged from the single-threaded broker.
PLAIN_CONNECT_RE = re.compile(r"New client connected as (?P<id>\S+) \(p(?P<level>\d+), "
                              r"c(?P<clean>\d), k(?P<keepalive>\d+)\) on connection "
                              r"(?P<conn>\d+)\.$", re.M)
HOME_PROBES_MAX = 200  # candidate ids tried before homed_ids() gives up
ACCEPTOR_TRIES = 40    # new connections tried to land on a different accepting worker
SESSION_60 = props((mqtt5.SESSION_EXPIRY, 60))


def tool_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


class WorkersTestCase(BrokerTestCase):
    """A broker on NWORKERS workers, and helpers that read which worker did what."""

    config_lines = (WORKERS_LINE,)

    def setUp(self):
        super().setUp()
        self.assertRegex(self.broker.log_text().splitlines()[0],
                         r"starlingd starting with %d worker threads$" % NWORKERS)

    # --- where clients live -----------------------------------------------------------------
    def connect_lines(self, cid):
        """Every "New client connected as cid" line so far, in log order (re match objects)."""
        return [m for m in CONNECT_RE.finditer(self.broker.log_text()) if m.group("id") == cid]

    def nth_connect(self, cid, n):
        """(home, acceptor) of the n-th (1-based) accepted CONNECT of cid. The line is logged
        before the CONNACK is sent, so a caller that has its CONNACK finds it at once."""
        lines = self.wait_for(lambda: self.connect_lines(cid)[n - 1:], 3.0,
                              "no CONNECT line #%d for %s in the log" % (n, cid))
        return int(lines[0].group("home")), int(lines[0].group("acceptor"))

    def homed_ids(self, prefix, per_worker=1):
        """{worker: [ids]}: per_worker client ids homed on each worker, found by connecting
        candidates "<prefix>-<i>" once (clean session, DISCONNECT) and reading their home."""
        prefix = unique_id(prefix)
        found = {k: [] for k in range(NWORKERS)}
        for i in range(HOME_PROBES_MAX):
            if all(len(v) >= per_worker for v in found.values()):
                return found
            cid = "%s-%d" % (prefix, i)
            r = RawClient(self.broker.port)
            try:
                self.assertEqual(r.connect(cid).rc, 0)
                home, _ = self.nth_connect(cid, 1)
                r.disconnect()
            finally:
                r.close()
            if len(found[home]) < per_worker:
                found[home].append(cid)
        self.fail("no %d ids per worker among %d candidates: %r"
                  % (per_worker, HOME_PROBES_MAX, found))

    def one_per_worker(self, prefix):
        """[id homed on worker 0, ..., id homed on worker NWORKERS-1]."""
        ids = self.homed_ids(prefix)
        return [ids[k][0] for k in range(NWORKERS)]

    # --- processes ---------------------------------------------------------------------------
    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="starling-workers-")
        self.defer(lambda: shutil.rmtree(d, ignore_errors=True))
        return d

    def spawn_to(self, args, out_path=None):
        """A process with stdout and stderr to out_path (or /dev/null), killed by PID in
        tearDown if still running."""
        out = open(out_path, "wb") if out_path else subprocess.DEVNULL
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=tool_env())
        if out_path:
            out.close()

        def stop():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.defer(stop)
        return p

    def wait_until(self, predicate, timeout):
        """wait_for that returns False instead of failing, so the caller's message can say
        what the state was at the deadline."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def wait_log(self, text, count=1, timeout=5.0):
        self.wait_for(lambda: self.broker.log_text().count(text) >= count, timeout,
                      "%r not %d times in the broker log" % (text, count))


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# --- 1. takeover --------------------------------------------------------------------------
@starling_only(ONLY)
class TakeoverAcrossWorkersTest(WorkersTestCase):
    def takeover(self, version):
        """Connects one client id again and again until two of its connections were accepted by
        different workers; each older connection must be taken over, the newest must work."""
        cid = unique_id("take")
        old = self.raw(version=version)
        self.assertEqual(old.connect(cid).rc, 0)
        _, old_acceptor = self.nth_connect(cid, 1)
        for n in range(2, ACCEPTOR_TRIES + 2):
            new = self.raw(version=version)
            self.assertEqual(new.connect(cid).rc, 0)
            _, acceptor = self.nth_connect(cid, n)
            if version == MQTT5:
                self.assert_disconnect(old, 0x8E)  # Session taken over
            else:
                self.assertEqual(self.assert_closed(old), [])
            if acceptor != old_acceptor:
                break
            old = new
        else:
            self.fail("%d connections of %s all accepted by worker %d"
                      % (ACCEPTOR_TRIES + 1, cid, old_acceptor))
        # The newest connection works both ways: it subscribes and receives...
        self.assertEqual(new.subscribe([("take/in", 1)]), [1])
        peer = self.client()
        self.publish(peer, "take/in", b"to-new", 1)
        (p,) = new.recv_publishes(1)
        self.assertEqual(p.payload, b"to-new")
        # ... and publishes.
        got = self.collect(peer, "take/out", 1)
        new.publish_acked("take/out", b"from-new", 1)
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"from-new")
        self.assertTrue(new.silent_for(0.2), "the newest connection was disturbed")

    def test_takeover_311_across_accepting_workers(self):
        self.takeover(MQTT311)

    def test_takeover_v5_across_accepting_workers(self):
        self.takeover(MQTT5)


# --- 2. persistent sessions ---------------------------------------------------------------
@starling_only(ONLY)
class SessionAcrossWorkersTest(WorkersTestCase):
    config_lines = WorkersTestCase.config_lines + ("max_inflight_messages 20",)
    N_QUEUED = 40  # past the inflight window of 20

    def setUp(self):
        super().setUp()
        self.left = self.collect(self.client(), "left/#", 0)

    def session_connect(self, cid, version, first):
        r = self.raw(version=version)
        kw = {"will": ("left/" + cid, b"", 0, False)}
        if version == MQTT5:
            kw["properties"] = SESSION_60
        ca = r.connect(cid, clean_session=first and version == MQTT5, **kw)
        self.assertEqual(ca.rc, 0)
        self.assertEqual(ca.session_present, not first, "session present %d on the %s connection"
                         % (ca.session_present, "first" if first else "second"))
        return r

    def one_round(self, version):
        """Subscribe, leave, have N_QUEUED QoS 1/2 messages queued, come back: they arrive
        once and in order. Returns whether the two connections had different acceptors."""
        cid = unique_id("sess")
        topic = "sess/" + cid
        r = self.session_connect(cid, version, first=True)
        self.assertEqual(r.subscribe([(topic, 2)]), [2])
        _, first_acceptor = self.nth_connect(cid, 1)
        r.close()  # no DISCONNECT: the will says when the broker is done with it
        self.wait_for(lambda: any(m.topic == "left/" + cid for m in self.left),
                      msg="the broker did not notice %s leave" % cid)
        pub = self.client()
        want = []
        for i in range(self.N_QUEUED):
            qos = 1 + i % 2
            self.publish(pub, topic, b"%03d" % i, qos)
            want.append((b"%03d" % i, qos))
        r = self.session_connect(cid, version, first=False)
        _, acceptor = self.nth_connect(cid, 2)
        got = [(p.payload, p.qos) for p in r.recv_publishes(self.N_QUEUED, timeout=10)]
        self.assertEqual(got, want, "queued messages lost, repeated or reordered "
                         "(accepted by %d, then %d)" % (first_acceptor, acceptor))
        self.assertTrue(r.silent_for(0.3), "more than the queued messages arrived")
        pub.disconnect()
        return acceptor != first_acceptor

    def across_acceptors(self, version):
        for _ in range(12):
            if self.one_round(version):
                return
        self.fail("12 reconnects all accepted by the same worker as their first connection")

    def test_clean_session_0_queue_through_another_acceptor(self):
        self.across_acceptors(MQTT311)

    def test_v5_session_expiry_queue_through_another_acceptor(self):
        self.across_acceptors(MQTT5)


# --- 3. retained ----------------------------------------------------------------------------
@starling_only(ONLY)
class RetainedAcrossWorkersTest(WorkersTestCase):
    def retained_on_each_worker(self, ids, topic):
        """Fresh subscribers homed on every worker; returns the retained messages each got."""
        subs = []
        for k in range(NWORKERS):
            r = self.raw_connected(ids[k].pop())
            self.assertEqual(r.subscribe([(topic, 1)]), [1])
            subs.append(r)
        out = []
        for i, r in enumerate(subs):
            # Retained messages follow the SUBACK at once; the first wait covers the others.
            got = [p for p in r.drain(0.05 if i else 0.3, ack=True) if p.type == PUBLISH]
            out.append([(p.payload, p.retain) for p in got])
            r.disconnect()
        return out

    def test_set_read_delete_replace_across_workers(self):
        pubs = self.one_per_worker("rpub")
        subs = self.homed_ids("rsub", per_worker=8)
        topic = "ret/" + unique_id("t")
        a, b, c = 0, 1, 2
        # Set on worker a, read at once from worker b (after the PUBACK: nothing may be
        # missing), and from every worker.
        pa = self.client(pubs[a])
        self.publish(pa, topic, b"v1", 1, retain=True)
        r = self.raw_connected(subs[b].pop())
        self.assertEqual(r.subscribe([(topic, 1)]), [1])
        (p,) = r.recv_publishes(1, timeout=3)
        self.assertEqual((p.payload, p.retain), (b"v1", True))
        self.assertTrue(r.silent_for(0.2))
        self.assertEqual(self.retained_on_each_worker(subs, topic), [[(b"v1", True)]] * NWORKERS)
        # Replace from worker c: every worker has the newer value only.
        pc = self.client(pubs[c])
        self.publish(pc, topic, b"v2", 1, retain=True)
        self.assertEqual(self.retained_on_each_worker(subs, topic), [[(b"v2", True)]] * NWORKERS)
        # Delete from worker a (not the last writer): nothing anywhere.
        self.publish(pa, topic, b"", 1, retain=True)
        self.assertEqual(self.retained_on_each_worker(subs, topic), [[]] * NWORKERS)
        # Set again from a third publisher's worker: it is back everywhere.
        pd = self.client(pubs[3])
        self.publish(pd, topic, b"v3", 1, retain=True)
        self.assertEqual(self.retained_on_each_worker(subs, topic), [[(b"v3", True)]] * NWORKERS)

    def test_quick_succession_of_writers_on_different_workers(self):
        # Four publishers on four workers overwrite one topic in turn. Each write, once
        # acknowledged, is what a subscriber on the next worker reads at once; after the last
        # one, every replica holds the last value.
        pubs = [self.client(cid) for cid in self.one_per_worker("rseq")]
        readers = self.homed_ids("rseqsub", per_worker=6)
        topic = "ret/" + unique_id("seq")
        for i in range(20):
            self.publish(pubs[i % NWORKERS], topic, b"w%02d" % i, 1, retain=True)
            k = (i + 1) % NWORKERS
            r = self.raw_connected(readers[k].pop())
            self.assertEqual(r.subscribe([(topic, 1)]), [1])
            got = [(p.payload, p.retain) for p in r.drain(0.1, ack=True) if p.type == PUBLISH]
            self.assertEqual(got, [(b"w%02d" % i, True)], "written on worker %d, read on %d"
                             % (i % NWORKERS, k))
            r.disconnect()
        self.assertEqual(self.retained_on_each_worker(readers, topic),
                         [[(b"w19", True)]] * NWORKERS)


# --- 4. wills -------------------------------------------------------------------------------
@starling_only(ONLY)
class WillAcrossWorkersTest(WorkersTestCase):
    def test_will_reaches_subscribers_on_every_worker(self):
        topic = "will/" + unique_id("w")
        watchers = [self.collect(self.client(cid), topic + "/#", 1)
                    for cid in self.one_per_worker("wsub")]
        for k, cid in enumerate(self.one_per_worker("wcl")):
            with self.subTest(will_client_home=k):
                r = self.raw_connected(cid, will=(topic + "/%d" % k, b"bye%d" % k, 1, False))
                r.ping()
                r.abort()  # a reset, no DISCONNECT
                for j, w in enumerate(watchers):
                    if not self.wait_until(lambda: b"bye%d" % k in w.payloads(), 5.0):
                        self.fail("the will of a client on worker %d did not reach the "
                                  "subscriber on worker %d: %r" % (k, j, w.payloads()))
        time.sleep(0.3)
        for k, w in enumerate(watchers):
            self.assertEqual(sorted(w.payloads()), [b"bye%d" % i for i in range(NWORKERS)],
                             "subscriber on worker %d" % k)


# --- 5. shared subscriptions --------------------------------------------------------------
@starling_only(ONLY)
class SharedAcrossWorkersTest(WorkersTestCase):
    config_lines = (WORKERS_LINE, "cpu_affinity true")

    def test_group_members_on_every_worker(self):
        members = {}
        for cid in self.one_per_worker("shm"):
            c = self.client5(cid)
            members[cid] = (c, self.collect(c, "$share/g/sh/#", 1))
        pub = self.client5()
        sent = [0]

        def publish(n):
            """Queues n QoS 1 messages in paho; returns (their numbers, a wait for PUBACKs)."""
            first = sent[0]
            infos = [pub.publish("sh/t/%d" % i, b"%d" % i, 1) for i in range(first, first + n)]
            sent[0] += n

            def acked():
                for info in infos:
                    info.wait_for_publish(10)
                    self.assertTrue(info.is_published(), "publisher not acknowledged")
            return set(range(first, first + n)), acked

        def numbers(lst):
            return [int(m.payload) for m in lst.snapshot()]

        def received(lists):
            return [x for lst in lists for x in numbers(lst)]

        want, acked = publish(200)
        acked()
        lists = [lst for _, lst in members.values()]
        self.wait_for(lambda: len(received(lists)) >= len(want), 10,
                      "the group got %d of %d" % (len(received(lists)), len(want)))
        time.sleep(0.3)
        self.assertEqual(sorted(received(lists)), sorted(want), "lost or duplicated in the group")
        self.assertTrue(all(len(lst) for lst in lists),
                        "a member got nothing: %r" % [len(x) for x in lists])
        # Members leave one by one (the group's own worker's among them) while messages flow:
        # what the leaver did not get goes to the others. A message the leaver got but whose
        # PUBACK did not make it may come again to another member (QoS 1 is at least once).
        for cid in list(members)[:-1]:
            leaver, leaver_got = members.pop(cid)
            lists = [lst for _, lst in members.values()]
            for lst in lists + [leaver_got]:
                lst.clear()
            want, acked = publish(120)
            self.wait_for(lambda: len(received(lists + [leaver_got])) >= 20, 10)
            leaver.disconnect()
            self.wait_for(leaver.disconnected.is_set)
            acked()
            got_by_leaver = set(numbers(leaver_got))
            self.wait_for(lambda: set(received(lists)) | got_by_leaver >= want, 10,
                          "after %s left, missing %r" % (
                              cid, sorted(want - set(received(lists)) - got_by_leaver)))
            time.sleep(0.3)
            rest = received(lists)
            self.assertEqual(set(rest) | got_by_leaver, want)
            twice = sorted(x for x in set(rest) if rest.count(x) > 1)
            self.assertEqual(twice, [], "after %s left: delivered twice to the rest" % cid)
            if len(lists) > 1:
                self.assertTrue(all(len(lst) for lst in lists),
                                "a member got nothing: %r" % [len(x) for x in lists])


# --- 6. ordering --------------------------------------------------------------------------
@starling_only(ONLY)
class OrderAcrossWorkersTest(WorkersTestCase):
    # Room for 100,000 QoS 1 messages per subscriber (max_queued_messages drops past it),
    # and $SYS every second for the dropped count.
    config_lines = (WORKERS_LINE, "max_queued_messages 200000", "sys_interval 1",
                    "cpu_affinity true")
    N = 100000

    def stream(self, qos):
        """One publisher (starling-pub -l) sends N numbered messages at `qos` to subscribers
        homed on every worker (starling-sub and mosquitto_sub); returns each subscriber's
        numbers, after an end marker sent at QoS 1 by the same client id has arrived."""
        d = self.tmpdir()
        topic = "ord/" + unique_id("t")
        paths = []
        for k, cid in enumerate(self.one_per_worker("ordsub")):
            path = os.path.join(d, "sub%d.out" % k)
            args = ("-i", cid, "-t", topic, "-q", 1)
            if k % 2:
                self.spawn_to(client_cmd(MOSQUITTO_SUB, self.broker, *args), path)
            else:
                self.spawn_to([STARLING_SUB, "-h", self.broker.host, "-p",
                               str(self.broker.port)] + [str(a) for a in args], path)
            paths.append(path)
        # Ready when every subscriber prints a message sent now.
        ready_pub = self.client()
        deadline = time.monotonic() + 10
        while not all(b"ready\n" in _read(p) for p in paths):
            self.assertLess(time.monotonic(), deadline, "subscribers never got ready")
            self.publish(ready_pub, topic, b"ready", 1)
            time.sleep(0.1)
        ready_pub.disconnect()
        pub_id = unique_id("ordpub")
        data = b"".join(b"%06d\n" % i for i in range(self.N))
        start = time.monotonic()
        res = subprocess.run([STARLING_PUB, "-h", self.broker.host, "-p", str(self.broker.port),
                              "-i", pub_id, "-t", topic, "-q", str(qos), "-l"], input=data,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                             env=tool_env())
        self.assertEqual(res.returncode, 0, res.stdout[-2000:])
        # The marker comes from the same client id once its first connection is over, so it
        # follows every message through the same worker.
        self.wait_log("Client %s disconnected." % pub_id)
        res = subprocess.run([STARLING_PUB, "-h", self.broker.host, "-p", str(self.broker.port),
                              "-i", pub_id, "-t", topic, "-q", "1", "-m", "end"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15,
                             env=tool_env())
        self.assertEqual(res.returncode, 0, res.stdout)
        self.wait_for(lambda: all(_read(p).endswith(b"end\n") for p in paths), 40,
                      "the end marker did not reach every subscriber")
        elapsed = time.monotonic() - start
        out = []
        for path in paths:
            text = _read(path)
            for marker in SANITIZER_MARKERS:
                self.assertNotIn(marker.encode(), text)
            lines = text.split(b"\n")
            self.assertEqual(lines.count(b"end"), 1)
            out.append([int(l) for l in lines if len(l) == 6 and l.isdigit()])
        home, _ = self.nth_connect(pub_id, 1)
        sys.stderr.write("\n  QoS %d: %d messages to %d subscribers in %.1f s "
                         "(publisher on worker %d)\n" % (qos, self.N, len(paths), elapsed, home))
        return out

    def assert_in_order(self, got):
        for k, numbers in enumerate(got):
            bad = [(a, b) for a, b in zip(numbers, numbers[1:]) if b <= a]
            self.assertEqual(bad[:10], [], "subscriber on worker %d: out of order or repeated"
                             % k)

    def sys_dropped(self):
        sub = self.client()
        got = self.collect(sub, "$SYS/broker/publish/messages/dropped", 0)
        return lambda: int(got[-1].payload) if len(got) else 0

    def test_qos0_in_order_and_losses_counted(self):
        got = self.stream(0)
        self.assert_in_order(got)
        lost = [self.N - len(numbers) for numbers in got]
        if any(lost):
            # A full channel between workers drops QoS 0 (counted); nothing may vanish
            # uncounted. One subscriber per worker: each lost message is one drop at least.
            dropped = self.sys_dropped()
            if not self.wait_until(lambda: dropped() >= sum(lost), 5):
                self.fail("lost %r (subscribers on workers 0..3) but $SYS counts %d dropped"
                          % (lost, dropped()))
            sys.stderr.write("  QoS 0: lost %r, counted as dropped\n" % lost)

    def test_qos1_in_order_and_complete(self):
        got = self.stream(1)
        self.assert_in_order(got)
        for k, numbers in enumerate(got):
            self.assertEqual(len(numbers), self.N, "subscriber on worker %d lost %d"
                             % (k, self.N - len(numbers)))


@starling_only(ONLY)
class OrderThroughFullChannelsTest(OrderAcrossWorkersTest):
    # Channels of 4 entries between workers: they are full most of the time, so QoS 1 messages
    # wait in the overflow queues (and past 65,536 waiting the publisher is paused) while QoS 0
    # ones are dropped and counted. Order and completeness must hold all the same.
    config_lines = OrderAcrossWorkersTest.config_lines + ("worker_channel_size 4",)


# --- 7. shutdown ----------------------------------------------------------------------------
@starling_only(ONLY)
class ShutdownWithTrafficTest(WorkersTestCase):
    config_lines = (WORKERS_LINE, "cpu_affinity false")
    # SIGTERM to the workers' end (freeing and ASan's leak scan come after): the drain is
    # bounded at 2 s, the rest is finishing the receive under way. Input that arrives after the
    # stop was asked is not handled, and the signal's completion is handed over ahead of the
    # burst's: before that, a worker handled the whole burst first, 7-9 s under ASan with both
    # suites running (0.5-2.1 s since, 14 runs under the same load). A CI run of 2026-12-07
    # still took more than 10 s: the whole broker logged nothing for 4 s in the middle of the
    # burst (one worker deep in ASan's quarantine recycling, 240 MB, which others wait for)
    # and saw the signal late; here it stops in 2-4 s, two busy loops beside it too. 20 s
    # still catches a shutdown that hangs.
    STOP_PROMPT_S = 20.0

    def test_sigterm_while_streaming(self):
        topic = "st/" + unique_id("t")
        pub_ids = self.one_per_worker("stpub")
        sub_ids = self.one_per_worker("stsub")
        # Subscribers on every worker: mosquitto_sub (QoS 2), a raw one that never reads (its
        # output backs up), a shared group, an offline persistent session with a queue.
        for cid in sub_ids:
            self.spawn_to(client_cmd(MOSQUITTO_SUB, self.broker, "-i", cid, "-t", topic + "/#",
                                     "-q", 2))
        stuck = self.raw_connected()
        stuck.subscribe([(topic + "/#", 1)])
        for cid in self.one_per_worker("stsh")[:2]:
            self.collect(self.client5(cid), "$share/g/%s/#" % topic, 1)
        away = unique_id("away")
        r = self.raw_connected(away, clean_session=False)
        r.subscribe([(topic + "/#", 1)])
        r.disconnect()
        counter = self.collect(self.client(), topic + "/#", 0)
        # Publishers on every worker at QoS 0, 1, 2, each up to 1000 messages/s (unpaced, four
        # ASan publishers starve this 2-core machine).
        for k, cid in enumerate(pub_ids):
            self.spawn_to([STARLING_PUB, "-h", self.broker.host, "-p", str(self.broker.port),
                           "-i", cid, "-t", "%s/%d" % (topic, k), "-q", str(k % 3),
                           "-m", "payload-%d" % k, "--repeat", "100000000",
                           "--repeat-delay", "0.001", "--quiet"])
            self.nth_connect(cid, 1)
        # Connections arriving and leaving (handed between workers) all the while.
        stop = threading.Event()

        def churn():
            i = 0
            while not stop.is_set():
                try:
                    c = RawClient(self.broker.port, timeout=1)
                    c.send(encode_connect("churn-%d" % i))
                    i += 1
                    c.recv(1)
                    c.close()
                except (OSError, ConnectionClosed, AssertionError):
                    time.sleep(0.01)
        t = threading.Thread(target=churn, daemon=True)
        t.start()
        self.defer(lambda: (stop.set(), t.join(5)))
        self.wait_for(lambda: len({m.topic for m in counter.snapshot()}) == NWORKERS, 10,
                      "not every publisher's messages flow")
        self.wait_for(lambda: len(counter) > 2000, 10, "too little traffic")
        # And a burst in the socket as the signal comes, so that the channels between workers
        # hold entries when the workers stop.
        burst = self.raw_connected()
        burst.send(b"".join(encode_publish("%s/burst" % topic, b"b%d" % i, i % 2, pid=1 + i)
                            for i in range(20000)))
        start = time.monotonic()
        os.kill(self.broker.pid, signal.SIGTERM)
        # Timed to the line logged once every worker has stopped: what follows is freeing and
        # ASan's leak scan, whose time follows the machine's load, not the broker's shutdown.
        self.wait_for(lambda: "starlingd terminating." in self.broker.log_text(),
                      self.STOP_PROMPT_S,
                      lambda: "the workers did not stop within %.0f s of SIGTERM (%s); threads:\n%s"
                      % (self.STOP_PROMPT_S, "signal seen" if "Received signal 15"
                         in self.broker.log_text() else "signal not yet seen",
                         self.broker.stacks()))
        elapsed = time.monotonic() - start
        # It exits on the test's own SIGTERM, maybe before stop() looks: an expected exit,
        # whose status and log stop() still checks (a sanitizer report fails it).
        self.broker.proc.wait(timeout=self.broker.STOP_TIMEOUT_S + 20)
        self.broker._killed = True
        self.broker.stop()
        sys.stderr.write("\n  stopped in %.2f s after %d messages seen\n" % (elapsed, len(counter)))
        self.assertEqual(self.broker.returncode, 0)


# --- 8. max_connections ---------------------------------------------------------------------
@starling_only(ONLY)
class MaxConnectionsAcrossWorkersTest(WorkersTestCase):
    config_lines = (WORKERS_LINE, "max_connections 6")
    REFUSED_TRIES = 20

    def refused(self):
        r = RawClient(self.broker.port)
        self.defer(r.close)
        r.try_send(encode_connect(unique_id("over")))
        self.assertEqual(self.assert_closed(r), [], "a connection past the limit was served")

    def test_limit_counts_every_worker(self):
        # Connections handed between workers and closed must leave the count as it was.
        for i in range(12):
            cid = unique_id("cyc")
            r = self.raw_connected(cid)
            if i % 2:
                r.disconnect()
            else:
                r.abort()
            self.wait_log("Client %s " % cid)
        held = []
        for i in range(6):
            cid = unique_id("held")
            held.append((cid, self.raw_connected(cid)))
        acceptors = {self.nth_connect(cid, 1)[1] for cid, _ in held}
        # The 7th is refused whichever worker accepts it (the kernel spreads these tries).
        for _ in range(self.REFUSED_TRIES):
            self.refused()
        self.wait_log("max_connections (6) reached", self.REFUSED_TRIES)
        # A place freed anywhere is a place to take, and only one.
        cid, r = held.pop(0)
        r.disconnect()
        self.wait_log("Client %s disconnected." % cid)
        self.raw_connected(unique_id("again"))
        self.refused()
        for _, r in held:
            self.assertTrue(r.ping(), "a held connection was dropped")
        sys.stderr.write("\n  held connections accepted by workers %s\n" % sorted(acceptors))


# --- 9. $SYS ------------------------------------------------------------------------------
@starling_only(ONLY)
class SysSummedTest(WorkersTestCase):
    config_lines = (WORKERS_LINE, "sys_interval 1")

    def test_clients_counted_over_every_worker(self):
        ids = self.homed_ids("sys", per_worker=3)
        # $SYS readers on worker 0 (which publishes $SYS) and on worker 3.
        readers = [self.collect(self.client(ids[k].pop()), "$SYS/broker/clients/#", 0)
                   for k in (0, 3)]

        def value(values, name):
            for m in reversed(values.snapshot()):
                if m.topic == "$SYS/broker/clients/" + name:
                    return int(m.payload)
            return None

        def wait_value(name, want):
            for k, values in zip((0, 3), readers):
                if not self.wait_until(lambda: value(values, name) == want, 6):
                    self.fail("$SYS/broker/clients/%s on worker %d: %r, expected %d"
                              % (name, k, value(values, name), want))

        # An offline persistent session on some worker: total counts it, connected does not.
        away = self.raw_connected(unique_id("sysaway"), clean_session=False)
        away.disconnect()
        clients = {k: [self.raw_connected(cid) for cid in ids[k]] for k in range(NWORKERS)}
        connected = sum(len(v) for v in clients.values()) + len(readers)
        wait_value("connected", connected)
        wait_value("total", connected + 1)
        wait_value("disconnected", 1)
        # Only the sum is published: it does not flap between per-worker values.
        for values in readers:
            values.clear()
        time.sleep(2.2)
        for values in readers:
            self.assertEqual({int(m.payload) for m in values.snapshot()
                              if m.topic == "$SYS/broker/clients/connected"} - {connected},
                             set())
        # Three leave (from three workers): the total follows.
        for k in range(3):
            clients[k][0].disconnect()
        wait_value("connected", connected - 3)


# --- 10. one worker -------------------------------------------------------------------------
@starling_only(ONLY)
class OneWorkerTest(BrokerTestCase):
    config_lines = ("worker_threads 1",)

    def check_one_worker(self):
        log = self.broker.log_text()
        self.assertRegex(log.splitlines()[0], r"starlingd starting with 1 worker thread$")
        cid = unique_id("one")
        self.raw_connected(cid)
        self.assert_broker_works()
        log = self.broker.log_text()
        lines = [m for m in PLAIN_CONNECT_RE.finditer(log) if m.group("id") == cid]
        self.assertEqual(len(lines), 1, log)
        self.assertEqual((lines[0].group("level"), lines[0].group("clean")), ("4", "1"))
        self.assertNotIn("accepted by worker", log)
        self.assertIsNone(CONNECT_RE.search(log))
        # Plain pub/sub through mosquitto_sub and paho, a retained message too.
        sub = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-t", "one/#", "-q", 1,
                                    "-C", 2, "-v", "-d"))
        self.assertIsNotNone(sub.wait_line(lambda l: "SUBACK" in l), sub.output())
        pub = self.client()
        self.publish(pub, "one/r", b"kept", 1, retain=True)
        self.publish(pub, "one/a", b"live", 1)
        self.assertEqual(sub.wait(5), 0, sub.output())
        self.assertEqual([l for l in sub.lines() if l.startswith("one/")],
                         ["one/r kept", "one/a live"])
        late = self.collect(self.client(), "one/#", 1)
        self.assertEqual([(m.payload, m.retain) for m in self.wait_messages(late, 1)],
                         [(b"kept", True)])

    def test_worker_threads_1(self):
        self.check_one_worker()


@starling_only(ONLY)
class OneWorkerFlagTest(OneWorkerTest):
    # -t on the command line wins over worker_threads in the file.
    config_lines = (WORKERS_LINE,)
    broker_args = ("-t", "1")

    def test_worker_threads_1(self):
        self.check_one_worker()


# --- 11. threads, names and CPU affinity -----------------------------------------------------
def _threads(pid):
    """{"main" or a worker thread's name: allowed CPU list} of process pid (the sanitizer's
    own threads left out)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        with open(base + "comm") as f:
            name = f.read().strip()
        if int(tid) == pid:
            name = "main"
        elif not name.startswith("starling-w"):
            continue
        with open(base + "status") as f:
            cpus = [l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list")]
        out[name] = cpus[0]
    return out


def _cpu_list(text):
    cpus = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


@starling_only(ONLY)
class PortTakenTest(WorkersTestCase):
    def test_second_broker_on_the_port_fails(self):
        # The workers' listening sockets share the port with SO_REUSEPORT, which the kernel
        # would let any process of the same user join: a second starlingd started on the port
        # by mistake must fail, as Mosquitto does, not silently take half of the connections.
        conf = os.path.join(self.broker.dir, "second.conf")
        with open(conf, "w") as f:
            f.write("listener %d %s\nworker_threads %d\n"
                    % (self.broker.port, self.broker.host, NWORKERS))
        r = subprocess.run([tool("starlingd"), "-c", conf],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        out = (r.stdout + r.stderr).decode(errors="replace")
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn("cannot listen on %s port %d: Address already in use"
                      % (self.broker.host, self.broker.port), out)
        # And every connection still reaches the first broker.
        for _ in range(20):
            self.raw_connected(unique_id("still")).disconnect()
        self.assert_broker_works()


@starling_only(ONLY)
class CpuAffinityTest(WorkersTestCase):
    config_lines = (WORKERS_LINE, "cpu_affinity true")

    def test_each_worker_pinned_to_the_next_allowed_cpu(self):
        allowed = sorted(os.sched_getaffinity(0))
        # Worker 0 is the main thread, which keeps the process's name; 1..3 are starling-w1..3.
        # Each pins and names itself as it starts, which may follow the listening socket's
        # opening: wait for all four.
        want = {("main" if i == 0 else "starling-w%d" % i): [allowed[i % len(allowed)]]
                for i in range(4)}

        def pinned():
            return {name: _cpu_list(cpus) for name, cpus in _threads(self.broker.pid).items()}
        self.wait_for(lambda: pinned() == want, 5, "threads not named and pinned as %r" % want)
        with open("/proc/%d/comm" % self.broker.pid) as f:
            self.assertEqual(f.read().strip(), "starlingd")
        self.assert_broker_works()


@starling_only(ONLY)
class NoAffinityTest(WorkersTestCase):
    config_lines = (WORKERS_LINE, "cpu_affinity false")

    def test_workers_run_on_every_allowed_cpu(self):
        allowed = sorted(os.sched_getaffinity(0))
        for name, cpus in _threads(self.broker.pid).items():
            self.assertEqual(_cpu_list(cpus), allowed, name)


if __name__ == "__main__":
    unittest.main()
