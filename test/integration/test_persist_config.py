"""Persistence (issue 10): the options (persistence, persistence_location, persistence_file,
autosave_interval, autosave_on_changes, persistence_sync) with their defaults and bad values,
the $SYS/broker/persistence counters, and resharding: a data directory written with one
worker count opened with another. Starling only (Mosquitto's file and options differ).
"""

import os
import shutil
import tempfile
import unittest

from harness import Broker, BrokerTestCase, starling_only, unique_id
from persistlib import (KILL, TERM, PersistCase, header_fields, persist_lines, read_segment,
                        segment_files)


@starling_only("Starling's option values and file names")
class OptionsTest(BrokerTestCase):
    def refused(self, lines, bad):
        """A broker with config `lines` refuses to start, naming the line that holds `bad`."""
        b = Broker(lines)
        self.defer(b.stop)
        rc = b.start_fails()
        self.assertIsNotNone(rc, "started with %r" % bad)
        self.assertNotEqual(rc, 0)
        with open(b.config_path) as f:
            n = [l.rstrip("\n") for l in f].index(bad) + 1
        self.assertIn("broker.conf:%d:" % n, b.log_text(), "no error naming line %d (%r)" % (n, bad))

    def test_bad_values_refused(self):
        pdir = tempfile.mkdtemp(prefix="starling-pdata-")
        self.addCleanup(shutil.rmtree, pdir, True)
        for bad in ("persistence maybe", "persistence", "persistence_location",
                    "persistence_file", "autosave_interval -5", "autosave_interval ten",
                    "autosave_interval 10s", "autosave_on_changes sometimes",
                    "persistence_sync often", "persistence_sync"):
            with self.subTest(bad=bad):
                self.refused(["persistence true", "persistence_location %s" % pdir, bad], bad)

    def test_defaults(self):
        """persistence alone: the working directory, starling.db; off by default."""
        if os.environ.get("STARLING_TEST_PERSIST") == "1":
            self.skipTest("STARLING_TEST_PERSIST turns persistence on: the default is not seen")
        pub = self.client()
        self.publish(pub, "pd/r", b"r", 1, retain=True)
        self.broker.halt(TERM)
        self.assertEqual([f for f in os.listdir(self.broker.dir) if f.startswith("starling.db")],
                         [], "files written with persistence off (the default)")
        self.broker.resume(["persistence true"])
        self.publish(self.client(), "pd/r", b"r", 1, retain=True)
        self.broker.restart(KILL)
        self.assertTrue(os.path.exists(os.path.join(self.broker.dir, "starling.db.lock")))
        segs = segment_files(self.broker.dir)
        self.assertTrue(segs, os.listdir(self.broker.dir))
        workers = set()
        for w, files in segs.items():
            for _seq, path in files:
                h = header_fields(read_segment(path)[0])
                self.assertEqual((h["version"], h["worker"]), (1, w), path)
                workers.add(h["workers"])
        self.assertEqual(len(workers), 1)
        self.assertEqual(sorted(segs), list(range(workers.pop())), "a log per worker")
        got = self.client()
        msgs = self.collect(got, "pd/r", 1)
        self.wait_messages(msgs, 1)

    def test_file_name_and_new_location(self):
        base = tempfile.mkdtemp(prefix="starling-pdata-")
        self.addCleanup(shutil.rmtree, base, True)
        pdir = os.path.join(base, "new")  # created by the broker
        b = Broker(["persistence true", "persistence_location %s" % pdir,
                    "persistence_file my.log", "autosave_interval 0",
                    "autosave_on_changes false", "persistence_sync always"])
        self.defer(b.stop)
        b.start()
        self.publish(self.client(broker=b), "pf/r", b"r", 1, retain=True)
        b.restart(KILL)
        names = os.listdir(pdir)
        self.assertIn("my.log.lock", names)
        self.assertTrue(segment_files(pdir, "my.log"), names)
        self.assertFalse([n for n in names if n.startswith("starling.db")], names)
        c = self.client(broker=b)
        msgs = self.collect(c, "pf/r", 1)
        self.assertEqual(self.wait_messages(msgs, 1)[0].payload, b"r")


@starling_only("Starling's $SYS/broker/persistence counters")
class SysCountersTest(PersistCase):
    persist_extra = ("sys_interval 1",)

    def test_counters_grow(self):
        names = ("commits", "records", "bytes")
        before = {n: self.sys_value("$SYS/broker/persistence/" + n) for n in names}
        pub = self.client()
        for i in range(5):
            self.publish(pub, "psys/%d" % i, b"x", 1, retain=True)
        s = self.session311(unique_id("psys"))
        self.subscribe(s, "psys/q", 1)
        for n in names:
            self.wait_for(lambda: self.sys_value("$SYS/broker/persistence/" + n) > before[n], 5,
                          "$SYS/broker/persistence/%s stayed at %d" % (n, before[n]))
        after = {n: self.sys_value("$SYS/broker/persistence/" + n) for n in names}
        self.assertGreaterEqual(after["records"] - before["records"], 6)
        self.assertGreater(after["bytes"] - before["bytes"], 6 * 9)


@starling_only("resharding Starling's per-worker logs")
class ReshardTest(PersistCase):
    persist_extra = ("worker_threads 1",)

    def state(self, cids, n_queued):
        """Each session in cids got its queued messages; the retained ones are all there."""
        for cid in cids:
            s = self.session5(cid)
            self.assertTrue(s.connack[0], "session %s lost" % cid)
            got = self.wait_messages(s.messages, n_queued)
            self.assert_no_messages(s.messages, 0.2, expected=n_queued)
            # The order per QoS (as test_persist's SessionTest): queue() alternates QoS 1, 2.
            for qos in (1, 2):
                self.assertEqual([m.payload for m in got if m.qos == qos],
                                 [b"%s-%d" % (cid.encode(), k) for k in range(n_queued)
                                  if 1 + k % 2 == qos])
            self.leave(s)
        got = self.read_retained("prs/r/#", 12)
        self.assertEqual({t: m.payload for t, m in got.items()},
                         {"prs/r/%d" % i: b"%d" % i for i in range(12)})

    def queue(self, cids, k):
        pub = self.client()
        for cid in cids:
            self.publish(pub, "prs/q/" + cid, b"%s-%d" % (cid.encode(), k), 1 + k % 2)
        pub.disconnect()

    def test_one_to_four_and_back(self):
        cids = [unique_id("prs") for _ in range(12)]
        pub = self.client()
        for i in range(12):
            self.publish(pub, "prs/r/%d" % i, b"%d" % i, 1, retain=True)
        for cid in cids:
            s = self.session5(cid)
            self.subscribe(s, "prs/q/" + cid, 2)
            self.leave(s)
        self.queue(cids, 0)
        lines = persist_lines(self.pdir)
        self.broker.restart(TERM, config_lines=lines + ["worker_threads 4"])
        self.assertEqual(sorted(segment_files(self.pdir)), [0, 1, 2, 3])
        self.queue(cids, 1)
        # Reading the sessions empties their queues: check after a second hop instead.
        self.broker.restart(KILL, config_lines=lines + ["worker_threads 1"])
        self.assertEqual(sorted(segment_files(self.pdir)), [0])
        self.queue(cids, 2)
        self.broker.restart(KILL, config_lines=lines + ["worker_threads 4"])
        self.state(cids, 3)


if __name__ == "__main__":
    unittest.main()
