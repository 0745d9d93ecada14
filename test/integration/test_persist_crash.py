"""Persistence (issue 10): the crash test. A paho publisher (clean session 0) sends numbered
QoS 1 and QoS 2 messages on several topics, some retained, and records every acknowledgement;
a persistent paho subscriber (clean session 0, QoS 2) reads slowly; starlingd is killed with
SIGKILL at seeded random moments and restarted, and both clients reconnect by themselves. At
the end every acknowledged message reached the subscriber (QoS 2 exactly once, QoS 1 at least
once) and the retained store equals the last acknowledged retained message of each topic.

The seed is printed; STARLING_SEED=N reruns one. The same run with SIGTERM restarts, and one
with none (the bookkeeping's control, which passes on Mosquitto too).

With several workers the publisher's and the subscriber's sessions are put on one worker (ids
chosen by their home), and a further run puts them on two: a QoS 2 message then has records in
two workers' logs (the packet id in the publisher's, the delivery in the subscriber's, a
retained one in worker 0's), which must agree after every crash (kernel-notes/persistence.md,
"Several workers").
"""

import random
import sys
import threading
import time
import unittest
from collections import Counter

from harness import KIND, WORKERS, paho, seeded_random, starling_only, unique_id
from persistlib import KILL, KILL_REASON, TERM, PersistCase

TOPICS = ["ck/a", "ck/b", "ck/c/d"]
RETAINED = ["ck/r/%d" % i for i in range(5)]


class OrderedClient(paho.Client):
    """paho 1.6 sends a message published between its reconnect() and the CONNACK at once,
    ahead of the resends of older unacknowledged messages, which it queues only when the
    CONNACK comes: a retained message published just after a restart then reaches the broker
    before an older one's resend, which rightly replaces it there (seen: ck/r/2 held 000679
    where 000738 was acknowledged). Here publish() waits out that window, so that the wire
    order is the publishing order and the last acknowledged retained message is the last
    written."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._gate = threading.Condition()
        self._connecting = False

    def _open(self):
        with self._gate:
            self._connecting = False
            self._gate.notify_all()

    def reconnect(self):
        with self._gate:
            self._connecting = True
        try:
            return super().reconnect()
        except BaseException:
            self._open()
            raise

    def _handle_connack(self):
        try:
            return super()._handle_connack()
        finally:
            self._open()  # the resends are queued ahead of anything published from now

    def _do_on_disconnect(self, *args, **kwargs):
        self._open()  # closed before its CONNACK: the next reconnect() closes the gate again
        return super()._do_on_disconnect(*args, **kwargs)

    def publish(self, *args, **kwargs):
        with self._gate:
            self._gate.wait_for(lambda: not self._connecting, timeout=10)
            return super().publish(*args, **kwargs)


class CrashTest(PersistCase):
    # The slow subscriber may fall behind by thousands: the default limit (1000) would drop
    # acknowledged messages by design, which is not what this test is about.
    persist_extra = ("max_queued_messages 100000",)

    def _paho(self, cid, on_message=None):
        c = OrderedClient(client_id=cid, clean_session=False, protocol=paho.MQTTv311)
        c.reconnect_delay_set(0.1, 0.5)
        # Mosquitto 2.0.11 acknowledges but drops a 3.1.1 publisher's QoS 1/2 messages beyond
        # its max_inflight_messages (20): the control keeps to that there.
        c.max_inflight_messages_set(20 if KIND == "mosquitto" else 100)
        c.connected_flag = threading.Event()

        def on_connect(client, userdata, flags, rc):
            if rc == 0:
                c.connected_flag.set()

        def on_disconnect(client, userdata, rc):
            c.connected_flag.clear()

        c.on_connect, c.on_disconnect = on_connect, on_disconnect
        if on_message:
            c.on_message = on_message
        c.connect(self.broker.host, self.broker.port, keepalive=30)
        c.loop_start()

        def stop():
            try:
                c.disconnect()
            except Exception:
                pass
            c.loop_stop()
        self.defer(stop)
        self.wait_for(c.connected_flag.is_set, 5, "%s did not connect" % cid)
        return c

    def _run(self, sig, n_msgs, n_restarts, timeout, same_worker=True, qos_choice=(1, 2),
             ids=None, sub_filter="ck/#", retained_share=0.2):
        rnd, seed = seeded_random(random.SystemRandom().randrange(1 << 31))
        sys.stderr.write("\n%s: seed %d (STARLING_SEED=%d reruns it)\n" % (self.id(), seed, seed))
        received = []  # (topic, payload, qos), appended by the subscriber's network thread

        def on_message(client, userdata, m):
            received.append((m.topic, bytes(m.payload), m.qos))
            if len(received) % 4 == 0:
                time.sleep(0.002)  # a slow reader: the broker queues for it

        sub_id, pub_id = ids or self.two_ids("cks", "ckp", same_worker)
        sub = self._paho(sub_id, on_message)
        subacked = threading.Event()
        sub.on_subscribe = lambda *a: subacked.set()
        rc, _mid = sub.subscribe(sub_filter, 2)
        self.assertEqual(rc, paho.MQTT_ERR_SUCCESS)
        self.wait_for(subacked.is_set, 5, "no SUBACK")

        acked_mids = []  # appended by the publisher's network thread
        pub = self._paho(pub_id)
        pub.on_publish = lambda client, userdata, mid: acked_mids.append(mid)

        sent = {}  # mid -> (seq, topic, qos, retain)
        kills = sorted(rnd.sample(range(n_msgs // 10, n_msgs * 9 // 10), n_restarts))
        kills_at = list(kills)
        deadline = time.monotonic() + timeout
        for seq in range(n_msgs):
            while seq - len(acked_mids) > 150:  # bounded outstanding work
                self.assertLess(time.monotonic(), deadline,
                                "publishing stalled at %d of %d (%d acknowledged)"
                                % (seq, n_msgs, len(acked_mids)))
                time.sleep(0.005)
            if kills and seq == kills[0]:
                kills.pop(0)
                self.broker.restart(sig, down=rnd.uniform(0, 0.3))
            retained = rnd.random() < retained_share
            topic = rnd.choice(RETAINED if retained else TOPICS)
            qos = rnd.choice(qos_choice)
            info = pub.publish(topic, b"%06d" % seq, qos, retained)
            self.assertIn(info.rc, (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN))
            sent[info.mid] = (seq, topic, qos, retained)
        self.wait_for(lambda: len(set(acked_mids)) >= n_msgs, max(1, deadline - time.monotonic()),
                      "acknowledged %d of %d" % (len(set(acked_mids)), n_msgs))
        acked = [sent[m] for m in set(acked_mids)]
        want = {b"%06d" % seq: (topic, qos) for seq, topic, qos, _r in acked}

        def have_all():
            got = {p for _t, p, _q in list(received)}
            return all(p in got for p in want)

        def missing():
            got = {p for _t, p, _q in list(received)}
            miss = sorted((p, want[p]) for p in want if p not in got)
            return "the subscriber got %d distinct of %d acknowledged (seed %d, restarts at " \
                   "%r); missing: %r" % (len(want) - len(miss), len(want), seed, kills_at,
                                         miss[:30])
        self.wait_for(have_all, max(5, deadline - time.monotonic()), missing)
        time.sleep(0.5)  # duplicates that would still come
        counts = Counter(p for _t, p, _q in received)
        extra = [p for p in counts if p not in want]
        self.assertFalse(extra, "received messages never published: %r" % extra[:10])
        twice = sorted(p for p, (_t, q) in want.items() if q == 2 and counts[p] != 1)
        self.assertFalse(twice, "QoS 2 messages not received exactly once (seed %d): %r"
                         % (seed, [(p, counts[p]) for p in twice[:10]]))
        for t, p, q in received:
            self.assertEqual((t, q), want[p], "message %r arrived on %r at QoS %d" % (p, t, q))
        # The retained store: the last message published on each retained topic (all were
        # acknowledged, and one connection publishes in order).
        last = {}
        for seq, topic, _q, retained in sorted(acked):
            if retained:
                last[topic] = b"%06d" % seq
        got = self.read_retained("ck/r/#", len(last))
        self.assertEqual({t: m.payload for t, m in got.items()}, last, "seed %d" % seed)

    @starling_only(KILL_REASON)
    def test_sigkill_loses_nothing_acknowledged(self):
        """QoS 1 and 2, publisher and subscriber sessions on one worker."""
        self._run(KILL, n_msgs=3000, n_restarts=5, timeout=50)

    @starling_only(KILL_REASON)
    def test_sigkill_across_workers(self):
        """Publisher and subscriber sessions on two workers, QoS 1 and 2: the PUBACK/PUBREC
        waits for the subscriber's worker's sync, the subscriber's worker stores a QoS 2
        message only once the packet id is on disk, and a PUBLISH resent after a crash reaches
        only the workers that had not handled it (kernel-notes/persistence.md, "Several
        workers")."""
        if WORKERS <= 1:
            self.skipTest("one worker: nothing crosses workers")
        self._run(KILL, n_msgs=2000, n_restarts=4, timeout=40, same_worker=False)

    def _shared_group_on_a_third_worker(self, qos_choice):
        if WORKERS < 3:
            self.skipTest("fewer than 3 workers: no third worker for the group")
        sub_id, pub_id = self.two_ids("cks", "ckp", False)
        homes = {self.home(sub_id), self.home(pub_id)}
        for i in range(60):
            flt = "$share/g%d/ck/#" % i
            if self.home(flt) not in homes:
                break
        else:
            self.fail("no shared group homed away from %r" % homes)
        self._run(KILL, n_msgs=1500, n_restarts=4, timeout=40, ids=(sub_id, pub_id),
                  sub_filter=flt, qos_choice=qos_choice)

    @starling_only(KILL_REASON)
    def test_sigkill_shared_group_across_three_workers(self):
        """QoS 1 to a subscriber in a shared group whose group lives on a third worker: the
        group's worker hands each message on to the member's worker, and the publisher's
        PUBACK waits for that worker's sync too (the group's worker's full count); after a
        restart the member is back in its group before anyone routes (kernel-notes/
        persistence.md, "Several workers")."""
        self._shared_group_on_a_third_worker((1,))

    @starling_only(KILL_REASON)
    def test_sigkill_shared_group_qos2_across_three_workers(self):
        """The same with QoS 2, exactly once: the member's worker writes a share-mark with
        each copy it stores, and at start-up tells the group's worker, which routes a PUBLISH
        resent after the crash to the group only if the group's copy was lost (before, the
        group's worker, which had relayed it, ignored the resend: 25-60 of 1,500 lost)."""
        self._shared_group_on_a_third_worker((1, 2))

    @starling_only("Mosquitto 2.0.11 fails it: ~60 of 800 acknowledged messages, published "
                   "around a graceful restart, never reach the subscriber (cause not pinned "
                   "down; the run without restart passes there)")
    def test_sigterm_restarts(self):
        self._run(TERM, n_msgs=800, n_restarts=2, timeout=30)

    def test_no_restart_control(self):
        self._run(TERM, n_msgs=800, n_restarts=0, timeout=20)


class ShareMarkTest(PersistCase):
    """The share-marks a group's copies leave (persist_marks.c) are written with each copy, told
    to the group's worker at start-up, and forgotten once no PUBLISH can come again: the
    publisher's worker holds no packet id for them, housekeeping's scan (every 2 s) says so,
    and the next compaction (autosave_interval 2 here) leaves them out."""
    persist_extra = ("autosave_interval 2",)

    def marks_lines(self):
        return [l for l in self.broker.log_text().splitlines() if "share-marks" in l]

    @starling_only(KILL_REASON)
    def test_marks_written_then_forgotten(self):
        if WORKERS < 3:
            self.skipTest("fewer than 3 workers: no third worker for the group")
        sub_id, pub_id = self.two_ids("smk", "smp", False)
        homes = {self.home(sub_id), self.home(pub_id)}
        flt = next(("$share/m%d/mk/#" % i for i in range(60)
                    if self.home("$share/m%d/mk/#" % i) not in homes), None)
        self.assertIsNotNone(flt, "no shared group homed away from %r" % homes)
        sub = self.raw_connected(sub_id, clean_session=False)
        self.assertEqual(sub.subscribe([(flt, 2)]), [2])
        pub = self.raw_connected(pub_id, clean_session=False)
        for i in range(20):
            pub.publish_acked("mk/t", b"%d" % i, 2)
        self.assertEqual(sorted(p.payload for p in sub.recv_publishes(20)),
                         sorted(b"%d" % i for i in range(20)))
        sub.disconnect()
        pub.disconnect()
        # At once: every copy's mark is in the member's worker's log.
        self.restart(KILL)
        self.wait_for(lambda: self.marks_lines(), 5, "no share-marks restored")
        self.assertIn("restored 20 share-marks", self.marks_lines()[-1])
        # No packet id awaits PUBREL: after a scan (2 s) the marks are dropped; the member's
        # reconnection writes records (a compaction only follows new ones) and the next
        # compaction (2 s) leaves the marks out.
        time.sleep(3)
        self.raw_connected(sub_id, clean_session=False)
        time.sleep(4)
        before = len(self.marks_lines())
        self.restart(KILL)
        self.raw_connected(unique_id("probe")).disconnect()  # started and serving
        self.assertEqual(len(self.marks_lines()), before, self.marks_lines())


if __name__ == "__main__":
    unittest.main()
