"""Persistence (issue 10): what starlingd does with the files of its data directory when they
are damaged, foreign, locked or cannot grow (Starling only: the file format is Starling's).

The damage is done to the broker's own files, stopped: the tests read the records' framing
(persistlib, kernel-notes/persistence.md) to cut, flip or split them at record boundaries and
to know which retained messages the valid prefix holds.
"""

import errno
import os
import subprocess
import time
import unittest

from harness import PUBACK, Broker, starling_only, unique_id
from persistlib import (HEADER_LEN, KILL, TERM, PersistCase, all_segments, fix_header_crc,
                        header_fields, persist_lines, retained_after, segment_files)

N_RETAINED = 20


def topic(i):
    return "cr/%02d" % i


@starling_only("Starling's log files")
class DamageTest(PersistCase):
    def setUp(self):
        super().setUp()
        pub = self.client()
        for i in range(N_RETAINED):
            self.publish(pub, topic(i), b"v%d" % i, 1, retain=True)
        pub.disconnect()
        self.broker.halt(TERM)
        self.segs = all_segments(self.pdir)
        self.assertTrue(self.segs, "no log segment in %s: %r" % (self.pdir, os.listdir(self.pdir)))

    def locate(self, t):
        """(index in self.segs, record index) of the retain-set of topic t."""
        for si, (_w, _seq, _path, _h, recs) in enumerate(self.segs):
            for ri, r in enumerate(recs):
                if r.type == 1 and r.topic() == t:
                    return si, ri
        self.fail("no retain-set record for %r in %r" % (t, [s[2] for s in self.segs]))

    def expected(self, cut):
        """The retained state when segment cut[0] ends before record cut[1] and the segments
        after it in the same worker's chain are gone. {topic: payload} of cr/ topics."""
        si, ri = cut
        worker = self.segs[si][0]
        state = {}
        for k, (w, _seq, _path, _h, recs) in enumerate(self.segs):
            if w == worker and k > si:
                continue
            state.update(retained_after(recs[:ri] if k == si else recs))
        return {t: p for t, p in state.items() if t.startswith("cr/")}

    def check_retained(self, want):
        got = self.read_retained("cr/#", len(want))
        self.assertEqual({t: m.payload for t, m in got.items()}, want)

    def log_line(self, *words):
        """A line of the broker's log holding every word (case-insensitive), or a failure."""
        for line in self.broker.log_text().splitlines():
            if all(w.lower() in line.lower() for w in words):
                return line
        self.fail("no log line with %r in:\n%s" % (words, self.broker.log_text()[-3000:]))

    def is_last_of_worker(self, si):
        return si + 1 == len(self.segs) or self.segs[si + 1][0] != self.segs[si][0]

    # --- the last segment: cut at the damage, the rest kept -------------------------------------
    def test_truncated_last_segment(self):
        si, ri = self.locate(topic(10))
        self.assertTrue(self.is_last_of_worker(si))
        path, r = self.segs[si][2], self.segs[si][4][ri]
        with open(path, "r+b") as f:
            f.truncate(r.start + (r.end - r.start) // 2)
        self.broker.resume()
        self.log_line(os.path.basename(path), "warning")
        self.check_retained(self.expected((si, ri)))
        self.assertEqual(self.expected((si, ri)), {topic(i): b"v%d" % i for i in range(10)})
        self.assert_broker_works()

    def test_flipped_byte_in_last_segment(self):
        si, ri = self.locate(topic(10))
        self.assertTrue(self.is_last_of_worker(si))
        path, r = self.segs[si][2], self.segs[si][4][ri]
        with open(path, "r+b") as f:
            f.seek(r.end - 1)  # the payload's last byte
            b = f.read(1)
            f.seek(r.end - 1)
            f.write(bytes([b[0] ^ 0x40]))
        self.broker.resume()
        self.log_line(os.path.basename(path), "warning")
        self.check_retained(self.expected((si, ri)))
        # The tail was cut: what is appended now lands after the valid prefix and survives.
        pub = self.client()
        self.publish(pub, "cr/new", b"new", 1, retain=True)
        self.broker.restart(KILL)
        got = self.read_retained("cr/#", len(self.expected((si, ri))) + 1)
        self.assertEqual(got["cr/new"].payload, b"new")
        self.assertNotIn(topic(10), got)

    # --- a chain of several segments ----------------------------------------------------------
    def split(self):
        """Splits the segment holding the cr/ records into three of one chain: the base
        (records before cr/07), seq + 1 (cr/07 .. cr/13), seq + 2 (the rest). Returns
        (paths, first record index of each part, the segment's index)."""
        si, r7 = self.locate(topic(7))
        si14, r14 = self.locate(topic(14))
        self.assertEqual(si, si14, "cr/ records in two segments already")
        self.assertTrue(self.is_last_of_worker(si))
        w, seq, path, header, recs = self.segs[si]
        with open(path, "rb") as f:
            data = f.read()
        parts = [(seq, 0, recs[r7].start), (seq + 1, recs[r7].start, recs[r14].start),
                 (seq + 2, recs[r14].start, len(data))]
        paths = []
        for k, (s, a, b) in enumerate(parts):
            h = bytearray(header)
            if k:
                flags = header_fields(header)["flags"] & ~1  # not a base
                h[12:16] = flags.to_bytes(4, "little")
                h[20:28] = s.to_bytes(8, "little")
            p = path[:-16] + "%016x" % s
            with open(p, "wb") as f:
                f.write(fix_header_crc(h) + data[max(a, HEADER_LEN):b])
            paths.append(p)
        return paths, (r7, r14), si

    def test_split_chain_reads_whole(self):
        """The control for the two tests below: the split chain itself is read whole."""
        self.split()
        self.broker.resume()
        self.check_retained({topic(i): b"v%d" % i for i in range(N_RETAINED)})
        self.assertFalse([f for f in os.listdir(self.pdir) if ".dropped-" in f])

    def test_missing_middle_segment(self):
        paths, (r7, _r14), si = self.split()
        os.unlink(paths[1])
        self.broker.resume()
        self.log_line("error", os.path.basename(paths[2]))
        dropped = [f for f in os.listdir(self.pdir)
                   if f.startswith(os.path.basename(paths[2]) + ".dropped-")]
        self.assertEqual(len(dropped), 1, os.listdir(self.pdir))
        self.check_retained(self.expected((si, r7)))
        self.assertEqual(self.expected((si, r7)), {topic(i): b"v%d" % i for i in range(7)})

    def test_damaged_record_in_earlier_segment(self):
        paths, (r7, _r14), si = self.split()
        si10, r10 = self.locate(topic(10))
        rec = self.segs[si10][4][r10]
        # The record's offset in the middle part: the part starts with a header, then cr/07.
        off = HEADER_LEN + rec.end - 1 - self.segs[si][4][r7].start
        with open(paths[1], "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x01]))
        self.broker.resume()
        self.log_line("error", os.path.basename(paths[2]))
        self.assertTrue([f for f in os.listdir(self.pdir)
                         if f.startswith(os.path.basename(paths[2]) + ".dropped-")])
        self.check_retained(self.expected((si, r10)))
        self.assertEqual(self.expected((si, r10)), {topic(i): b"v%d" % i for i in range(10)})

    # --- refusals -----------------------------------------------------------------------------
    def refused(self, name):
        rc = self.broker.resume_fails()
        self.assertIsNotNone(rc, "the broker started:\n" + self.broker.log_text()[-2000:])
        self.assertNotEqual(rc, 0)
        self.log_line(name)

    def test_not_a_log_refused(self):
        w = self.segs[-1][0]
        name = "starling.db.%d.%016x" % (w, self.segs[-1][1] + 1)
        with open(os.path.join(self.pdir, name), "wb") as f:
            f.write(b"this is not a log, but has its name\n" * 4)
        self.refused(name)

    def test_newer_version_refused(self):
        path, header = self.segs[0][2], bytearray(self.segs[0][3])
        self.assertEqual(header_fields(header)["version"], 1)
        header[8:10] = (2).to_bytes(2, "little")
        with open(path, "r+b") as f:
            f.write(fix_header_crc(header))
        self.refused(os.path.basename(path))

    def test_damaged_header_refused(self):
        path, header = self.segs[0][2], bytearray(self.segs[0][3])
        header[20] ^= 0x80  # the sequence number, CRC left as it was
        with open(path, "r+b") as f:
            f.write(bytes(header))
        self.refused(os.path.basename(path))

    def test_unreadable_directory_refused(self):
        if os.geteuid() == 0:
            self.skipTest("running as root, which ignores the directory's mode 000")
        os.chmod(self.pdir, 0)
        self.addCleanup(os.chmod, self.pdir, 0o700)
        self.refused(self.pdir)


@starling_only("Mosquitto does not lock its data directory")
class LockTest(PersistCase):
    def test_second_broker_on_the_directory_refused(self):
        other = Broker(persist_lines(self.pdir))
        self.defer(other.stop)
        rc = other.start_fails()
        self.assertIsNotNone(rc, "a second broker runs on the same directory")
        self.assertNotEqual(rc, 0)
        self.assertIn(self.pdir.rstrip("/"), other.log_text())
        self.assert_broker_works()
        # Once the first is gone (even killed), the directory is free again.
        self.broker.halt(KILL)
        other2 = Broker(persist_lines(self.pdir))
        self.defer(other2.stop)
        other2.start()


@starling_only("Starling's autosave_interval compacts a log")
class CompactionTest(PersistCase):
    persist_extra = ("autosave_interval 10", "autosave_on_changes true")

    def test_state_survives_compactions(self):
        """Compaction every 10 changes, hundreds of changes: the state is exact after a crash,
        and new segments were made."""
        pub = self.client()
        want = {}
        for i in range(300):
            t = "cp/%d" % (i % 25)
            if i % 7 == 3:
                self.publish(pub, t, b"", 1, retain=True)
                want.pop(t, None)
            else:
                self.publish(pub, t, b"p%d" % i, 1, retain=True)
                want[t] = b"p%d" % i
        cid = unique_id("cp")
        s = self.session5(cid)
        self.subscribe(s, "cpq/#", 1)
        self.leave(s)
        for i in range(30):
            self.publish(pub, "cpq/x", b"q%d" % i, 1)
        # Names only: a compaction may remove a segment while it would be read.
        seqs = [seq for segs in segment_files(self.pdir).values() for seq, _path in segs]
        self.assertGreater(max(seqs), 1, "no new segment after 330 changes")
        self.broker.restart(KILL)
        got = self.read_retained("cp/#", len(want))
        self.assertEqual({t: m.payload for t, m in got.items()}, want)
        s = self.session5(cid)
        self.assertTrue(s.connack[0])
        msgs = self.wait_messages(s.messages, 30)
        self.assertEqual([m.payload for m in msgs], [b"q%d" % i for i in range(30)])
        self.leave(s)
        self.broker.halt(TERM)
        self.assertFalse([f for f in os.listdir(self.pdir) if f.endswith(".tmp")])


@starling_only("Starling's autosave_interval compacts a log")
class CompactionTimerTest(PersistCase):
    persist_extra = ("autosave_interval 1",)

    def test_compaction_by_time(self):
        pub = self.client()
        for i in range(5):
            self.publish(pub, "ct/%d" % i, b"x", 1, retain=True)
        self.wait_for(lambda: max(seq for segs in segment_files(self.pdir).values()
                                  for seq, _path in segs) > 1, 6,
                      "no compaction within 6 s with autosave_interval 1")
        self.broker.restart(KILL)
        self.assertEqual(len(self.read_retained("ct/#", 5)), 5)


@starling_only("Starling's answer to a full disk (issue 10)")
class DiskFullTest(PersistCase):
    """A 2 MiB tmpfs as the data directory, filled by the test."""

    def setUp(self):
        self.mounted = None
        super().setUp()

    def _remove_pdir(self):
        if self.mounted:
            subprocess.run(["umount", self.mounted], timeout=20)
        super()._remove_pdir()

    def prepare_pdir(self):
        if os.geteuid() != 0:
            self.skipTest("not root: cannot mount a small tmpfs")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", self.pdir],
                           capture_output=True, timeout=20)
        if r.returncode != 0:
            self.skipTest("mount -t tmpfs failed: %s" % r.stderr.decode().strip())
        self.mounted = self.pdir

    def fill(self):
        path = os.path.join(self.pdir, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        return path

    def test_full_disk_refuses_then_recovers(self):
        sub_id = unique_id("dfs")
        sub = self.session311(sub_id)
        got = self.collect(sub, "df/#", 1)
        p5 = self.raw5(unique_id("df5"))
        p3 = self.raw_connected(unique_id("df3"))
        p5.publish_acked("df/r/before", b"before", 1, retain=True)
        self.assertEqual(p5.last_ack.rc, 0)
        self.wait_messages(got, 1)
        filler = self.fill()
        # 8 KiB messages: more than the room the log's last page may still have (tmpfs
        # allocates whole pages).
        payloads = {}
        for i in range(6):
            payloads[p5.publish("df/x", b"full%d-" % i + b"x" * 8192, 1)] = b"full%d-" % i
            time.sleep(0.2)
        p3.publish("df/x", b"full311", 1)
        early = p5.drain(quiet=1.0)
        self.assertTrue(p3.silent_for(0.5), "a 3.1.1 publisher got an answer on a full disk")
        self.assertTrue(self.broker.alive())
        log = self.broker.log_text()
        self.assertTrue(any(w in log for w in ("No space left", "ENOSPC")), log[-2000:])
        # Space returns. PUBACKs keep the order of the PUBLISHes [MQTT-4.6.0-2], so the
        # refusals (0x97) may wait behind the first, held until the write succeeds.
        os.unlink(filler)
        acks = early + p5.drain(quiet=2.0)
        self.assertEqual([(p.type, p.pid) for p in acks], [(PUBACK, pid) for pid in payloads],
                         "one PUBACK per PUBLISH, in order: %r" % acks)
        codes = [p.rc for p in acks]
        self.assertTrue(set(codes) <= {0, 0x97}, codes)
        self.assertGreaterEqual(codes.count(0x97), 4, "refusals on a full disk: %r" % codes)
        stored = {payloads[p.pid] for p in acks if p.rc == 0}
        refused = {payloads[p.pid] for p in acks if p.rc == 0x97}
        # Acknowledged (0x00) again within a few seconds, and delivered.
        deadline = time.monotonic() + 8
        ok = None
        while ok is None and time.monotonic() < deadline:
            pid = p5.publish("df/r/after", b"after", 1, retain=True)
            try:
                p = p5.expect(PUBACK, 1.0)
            except TimeoutError:
                continue
            self.assertEqual(p.pid, pid)
            if p.rc == 0:
                ok = pid
        self.assertIsNotNone(ok, "no PUBACK 0x00 within 8 s of freeing the disk")
        prefix = lambda m: m.split(b"-")[0] + b"-"  # noqa: E731
        self.wait_for(lambda: b"after" in got.payloads(), 5, "the message after was lost")
        self.wait_for(lambda: stored <= {prefix(m) for m in got.payloads()}, 5,
                      "messages acknowledged 0x00 on the full disk were not delivered")
        self.assertFalse(refused & {prefix(m) for m in got.payloads()},
                         "refused messages were delivered")
        self.broker.restart(KILL)
        got = self.read_retained("df/r/#", 2)
        self.assertEqual({t: m.payload for t, m in got.items()},
                         {"df/r/before": b"before", "df/r/after": b"after"})


if __name__ == "__main__":
    unittest.main()
