"""starling-store-gen: the persistence directories bench/persist-load.sh measures start-up with.

The files are read back two ways: by the tool's --check (the store layer's record decoder, CRCs,
each session on its home worker by the broker's shard function) and by an independent walk
here (header fields, record lengths and types), so the tool's own reader is not the only
witness.
"""

import glob
import json
import os
import struct
import subprocess
import tempfile
import unittest

from harness import SANITIZER_MARKERS, WORKERS, Broker, starling_only, tool
from rawmqtt import PUBLISH, RawClient

GEN = tool("starling-store-gen")
MAGIC = b"\x89STLOG\r\n"


def gen(*args):
    res = subprocess.run([GEN] + [str(a) for a in args], capture_output=True, timeout=60)
    err = res.stderr.decode("utf-8", "replace")
    for marker in SANITIZER_MARKERS:
        assert marker not in err, "sanitizer report:\n" + err
    return res.returncode, res.stdout.decode(), err


def walk(path):
    """(header fields, {record type: count}) of one segment, read with struct alone."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == MAGIC, path
    version, hdr_len, flags, worker, workers, seq = struct.unpack_from("<HHIHHQ", data, 8)
    counts, off = {}, hdr_len
    while off < len(data):
        body_len, _crc = struct.unpack_from("<II", data, off)
        kind = data[off + 8]
        counts[kind] = counts.get(kind, 0) + 1
        off += 8 + body_len
    assert off == len(data), "%s: the last record overruns the file" % path
    return (version, hdr_len, flags, worker, workers, seq), counts


class StoreGenTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-store-gen-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = os.path.join(self.tmp.name, "db")

    def test_one_worker_base(self):
        rc, out, err = gen(self.dir, "--retained", 2000, "--sessions", 50, "--subs", 4,
                           "--queued", 2, "--payload", 100)
        self.assertEqual(rc, 0, err)
        info = json.loads(out)
        self.assertEqual(info["records"], 2000 + 50 * (1 + 4 + 2))
        files = sorted(glob.glob(os.path.join(self.dir, "*")))
        self.assertEqual([os.path.basename(f) for f in files],
                         ["starling.db.0.0000000000000001"])
        self.assertEqual(os.path.getsize(files[0]), info["bytes"])
        hdr, counts = walk(files[0])
        self.assertEqual(hdr, (1, 32, 1, 0, 1, 1))  # version 1, base flag, worker 0 of 1, seq 1
        self.assertEqual(counts, {1: 2000, 3: 50, 5: 200, 7: 100})
        self.assertEqual(info["probe_topic"], "sensors/site0/dev199/status")
        with open(files[0], "rb") as f:
            self.assertIn(b"retained 1999 ", f.read())
        rc, out, err = gen(self.dir, "--check")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"retain_set": 2000, "session_put": 50,
                                           "sub_add": 200, "queue_add": 100, "misplaced": 0})

    def test_sessions_sharded_over_workers(self):
        rc, out, err = gen(self.dir, "--workers", 3, "--retained", 300, "--sessions", 600,
                           "--name", "x.db")
        self.assertEqual(rc, 0, err)
        puts = 0
        for w in range(3):
            hdr, counts = walk(os.path.join(self.dir, "x.db.%d.0000000000000001" % w))
            self.assertEqual(hdr[2:], (1, w, 3, 1))
            # Retained messages live in worker 0's log only; every worker homes some sessions.
            self.assertEqual(counts.get(1, 0), 300 if w == 0 else 0)
            self.assertGreater(counts.get(3, 0), 100, (w, counts))
            puts += counts.get(3, 0)
        self.assertEqual(puts, 600)
        rc, out, err = gen(self.dir, "--check", "--workers", 3, "--name", "x.db")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["misplaced"], 0)
        # Read as if the broker had 2 workers: the headers say 3, refused.
        rc, out, err = gen(self.dir, "--check", "--workers", 2, "--name", "x.db")
        self.assertEqual(rc, 1)

    def test_refuses_to_overwrite_and_bad_arguments(self):
        self.assertEqual(gen(self.dir, "--retained", 10, "--sessions", 1)[0], 0)
        rc, _, err = gen(self.dir, "--retained", 10, "--sessions", 1)
        self.assertEqual(rc, 1)
        self.assertIn("File exists", err)
        for args in (["--workers", 0], ["--payload", 8], ["--name", "a/b"], []):
            with self.subTest(args=args):
                rc, _, err = gen(*([self.dir] if args else []) + args)
                self.assertEqual(rc, 2, err)
                self.assertIn("usage:", err)

    def test_check_finds_a_flipped_byte(self):
        self.assertEqual(gen(self.dir, "--retained", 100, "--sessions", 5)[0], 0)
        path = os.path.join(self.dir, "starling.db.0.0000000000000001")
        with open(path, "r+b") as f:
            f.seek(5000)
            b = f.read(1)
            f.seek(5000)
            f.write(bytes([b[0] ^ 0x20]))
        rc, _, err = gen(self.dir, "--check")
        self.assertEqual(rc, 1)
        self.assertIn("CRC", err)


    def loaded_broker(self, gen_workers):
        """A starlingd started on a generated directory; returns (broker, generator's JSON)."""
        rc, out, err = gen(self.dir, "--workers", gen_workers, "--retained", 3000,
                           "--sessions", 40, "--queued", 3)
        self.assertEqual(rc, 0, err)
        broker = Broker(["persistence true", "persistence_location " + self.dir])
        broker.start()
        self.addCleanup(broker.stop)
        return broker, json.loads(out)

    def check_loaded(self, broker, info):
        r = RawClient(broker.port)
        self.addCleanup(r.close)
        self.assertEqual(r.connect("probe", True, 60).rc, 0)
        r.subscribe([(info["probe_topic"], 0)])
        got = r.expect(PUBLISH)
        self.assertEqual(got.topic, info["probe_topic"])
        self.assertTrue(got.payload.startswith(info["probe_payload"].encode()), got)
        self.assertTrue(got.retain)
        # A stored session: present, with its three queued QoS 1 messages.
        s = RawClient(broker.port)
        self.addCleanup(s.close)
        ca = s.connect("gen-7", False, 60)
        self.assertEqual((ca.rc, ca.session_present), (0, True))
        msgs = [s.expect(PUBLISH) for _ in range(3)]
        for m in msgs:
            s.ack(m)
        self.assertEqual([m.payload[:len("queued 7/0 ")] for m in msgs],
                         [b"queued 7/%d " % k for k in range(3)])

    @starling_only("reads Starling's own persistence format")
    def test_broker_loads_it(self):
        """starlingd with the worker count the files were written for replays them as they
        are: the last retained message and a session with its queue are back."""
        broker, info = self.loaded_broker(WORKERS or 1)
        self.check_loaded(broker, info)

    @starling_only("reads Starling's own persistence format")
    def test_broker_reshards_another_worker_count(self):
        broker, info = self.loaded_broker(3)
        self.check_loaded(broker, info)


if __name__ == "__main__":
    unittest.main()
