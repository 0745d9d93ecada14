"""Shared by the persistence tests (issue 10): a test case whose broker keeps its state in a
per-test data directory and can be restarted on it, and a reader of the log files' framing
(kernel-notes/persistence.md) so the corruption tests can cut, flip and split real files.

Not a test module itself (no test_ prefix): test_persist*.py import it.
"""

import os
import re
import shutil
import signal
import struct
import tempfile
import time

from harness import (KIND, WORKERS, BrokerTestCase, Broker, Messages, PacketTypes, paho, pprops,
                     unique_id)

TERM, KILL = signal.SIGTERM, signal.SIGKILL
KILL_REASON = ("Mosquitto writes its database only on shutdown and every autosave_interval: "
               "after a SIGKILL it restarts from the last save")
DB_NAME = "mosquitto.db" if KIND == "mosquitto" else "starling.db"


def _keep_pubrel_on_every_reconnect_attempt():
    """paho-mqtt 1.6.1's reconnect() resets the state of its in-flight messages on every
    attempt, failed ones included (a broker still down): the first reset turns a QoS 2 message
    whose PUBREL was sent into "resend PUBREL", the second into "publish", and the client then
    sends the message again as a new PUBLISH after the broker acknowledged the first one's
    PUBREL, which any broker must deliver again (the packet id was released). Seen as QoS 2
    duplicates in the crash test; this makes the reset idempotent for that state, so the
    tests judge the broker, not that client bug."""
    reset = paho.Client._messages_reconnect_reset_out
    if getattr(reset, "keeps_pubrel", False):
        return

    def reset_out(self):
        with self._out_message_mutex:
            pubrel = [m for m in self._out_messages.values()
                      if m.qos == 2 and m.state == paho.mqtt_ms_resend_pubrel]
        reset(self)
        with self._out_message_mutex:
            for m in pubrel:
                m.state = paho.mqtt_ms_resend_pubrel
    reset_out.keeps_pubrel = True
    paho.Client._messages_reconnect_reset_out = reset_out


_keep_pubrel_on_every_reconnect_attempt()


def persist_lines(pdir, on=True):
    """Config lines for a data directory. The trailing slash is what Mosquitto's
    persistence_location needs (it concatenates), so Starling must accept it too."""
    if not on:
        return ["persistence false"]
    return ["persistence true", "persistence_location %s/" % pdir]


class PersistCase(BrokerTestCase):
    """A broker with persistence on, its data in self.pdir (removed after the test unless
    STARLING_KEEP_LOGS). `persist_extra` are more config lines; persistence = False turns it
    off (the control: the same restart tests must then fail)."""

    persistence = True
    persist_extra = ()

    def setUp(self):
        self.pdir = tempfile.mkdtemp(prefix="starling-pdata-")
        if KIND == "mosquitto" and os.geteuid() == 0:
            # Mosquitto started as root runs as the `mosquitto` user.
            import pwd
            pw = pwd.getpwnam("mosquitto")
            os.chown(self.pdir, pw.pw_uid, pw.pw_gid)
        self.addCleanup(self._remove_pdir)
        self.prepare_pdir()
        self.config_lines = persist_lines(self.pdir, self.persistence) + list(self.persist_extra)
        super().setUp()

    def prepare_pdir(self):
        """Runs before the broker starts (a subclass mounts a filesystem there)."""

    def _remove_pdir(self):
        if not os.environ.get("STARLING_KEEP_LOGS"):
            shutil.rmtree(self.pdir, ignore_errors=True)

    def restart(self, sig=TERM, down=0.0, config_lines=None):
        self.broker.restart(sig, down, config_lines)

    def other_broker(self, lines, start=True):
        """A second broker (its own port and temp dir) stopped in tearDown."""
        b = Broker(lines)
        self.defer(b.stop)
        if start:
            b.start()
        return b

    # --- clients ------------------------------------------------------------------------------
    def home(self, cid):
        """The worker a client id lives on, from the broker's log (a clean probe connection)."""
        c = self.raw_connected(cid)
        c.disconnect()
        line = ""
        for _ in range(50):
            lines = [l for l in self.broker.log_text().splitlines()
                     if "connected as %s " % cid in l]
            if lines:
                line = lines[-1]
                break
            time.sleep(0.02)
        m = re.search(r", worker (\d+) ", line)
        return int(m.group(1)) if m else 0

    def two_ids(self, a, b, same_worker):
        """Two client ids (prefixes a and b) whose sessions live on one worker, or on two."""
        for _ in range(40):
            x, y = unique_id(a), unique_id(b)
            if KIND != "starling" or WORKERS <= 1:
                return x, y
            if (self.home(x) == self.home(y)) == same_worker:
                return x, y
        self.fail("no client ids with the homes asked for")

    def session311(self, cid, **kw):
        """A 3.1.1 paho client with clean session 0."""
        return self.client(cid, clean_session=False, **kw)

    def session5(self, cid, expiry=300, **kw):
        """An MQTT 5 paho client with Clean Start 0 and a Session Expiry Interval."""
        return self.client5(cid, clean_start=False,
                            properties=pprops(PacketTypes.CONNECT, SessionExpiryInterval=expiry),
                            **kw)

    def persistent(self, version, cid, **kw):
        return self.session5(cid, **kw) if version == 5 else self.session311(cid, **kw)

    def reconnect(self, c, timeout=5.0):
        """Reconnects the same paho client object after a restart, so it keeps its own state
        (a QoS 2 message it holds until the PUBREL); returns its CONNACK (session present, rc)."""
        self.wait_for(c.disconnected.is_set, timeout, "client never saw the broker go")
        c.loop_stop()
        c.connack = None
        c.disconnected.clear()
        c.reconnect()
        c.loop_start()
        self.wait_for(lambda: c.connack is not None, timeout, "no CONNACK on reconnect")
        return c.connack

    def leave(self, c, timeout=5.0):
        """A clean DISCONNECT, waited for."""
        c.disconnect()
        self.wait_for(c.disconnected.is_set, timeout, "client did not disconnect")
        c.loop_stop()

    def read_retained(self, flt, n, v5=False, quiet=0.5, timeout=5.0):
        """A fresh subscriber's retained messages on `flt`: waits for n, then `quiet` s more
        for extras. Returns {topic: message}; fails on a topic delivered twice or not retained."""
        c = self.client5() if v5 else self.client()
        got = self.collect(c, flt, 1)
        if n:
            self.wait_messages(got, n, timeout)
        time.sleep(quiet)
        msgs = got.snapshot()
        c.disconnect()
        out = {}
        for m in msgs:
            self.assertTrue(m.retain, "not a retained message: %r" % (m,))
            self.assertNotIn(m.topic, out, "retained %r delivered twice: %r" % (m.topic, msgs))
            out[m.topic] = m
        return out


# --- the log's files ------------------------------------------------------------------------------
def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as the log uses: init ~0, final xor ~0."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value

HEADER_LEN = 32
MAGIC = b"\x89STLOG\r\n"
RETAIN_SET, RETAIN_DEL = 1, 2


def segment_files(pdir, name="starling.db"):
    """{worker: [(seq, path)...] in seq order} of the segments in pdir (no .tmp, .dropped)."""
    out = {}
    for f in os.listdir(pdir):
        parts = f[len(name) + 1:].split(".") if f.startswith(name + ".") else []
        if len(parts) == 2 and parts[0].isdigit() and len(parts[1]) == 16:
            try:
                seq = int(parts[1], 16)
            except ValueError:
                continue
            out.setdefault(int(parts[0]), []).append((seq, os.path.join(pdir, f)))
    for segs in out.values():
        segs.sort()
    return out


def fix_header_crc(header):
    """The 32-byte header with its CRC32C (bytes 28..31, over 0..27) recomputed."""
    header = bytearray(header[:HEADER_LEN])
    struct.pack_into("<I", header, 28, crc32c(bytes(header[:28])))
    return bytes(header)


class Record:
    """One record's framing: where it starts and ends in its file, its type and body."""

    def __init__(self, start, end, rtype, body):
        self.start, self.end, self.type, self.body = start, end, rtype, body

    def topic(self):
        """The topic of a retain-set / retain-del record (None for other types)."""
        if self.type == RETAIN_SET:
            pos = 8 + 1  # u64 expiry_ms, u8 qos
        elif self.type == RETAIN_DEL:
            pos = 0
        else:
            return None
        (n,) = struct.unpack_from("<H", self.body, pos)
        return self.body[pos + 2:pos + 2 + n].decode()

    def payload(self):
        """The payload of a retain-set record."""
        pos = 9
        (n,) = struct.unpack_from("<H", self.body, pos)
        pos += 2 + n
        (plen,) = struct.unpack_from("<I", self.body, pos)  # props blob
        pos += 4 + plen
        (plen,) = struct.unpack_from("<I", self.body, pos)
        return self.body[pos + 4:pos + 4 + plen]


PAD = 18  # filler before a commit record (direct writes): not returned


def read_segment(path):
    """(header bytes, [Record...]) of a whole, valid segment (asserts on anything else). Zeros
    after the last record are space the broker wrote ahead: the end."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == MAGIC, "%s: no log magic" % path
    (hlen,) = struct.unpack_from("<H", data, 10)
    assert crc32c(data[:hlen - 4]) == struct.unpack_from("<I", data, hlen - 4)[0], path
    recs, pos = [], hlen
    while pos < len(data):
        if not any(data[pos:]):
            break
        blen, crc = struct.unpack_from("<II", data, pos)
        body = data[pos + 8:pos + 8 + blen]
        assert len(body) == blen and crc32c(body) == crc, "%s: bad record at %d" % (path, pos)
        if body[0] != PAD:
            recs.append(Record(pos, pos + 8 + blen, body[0], body[1:]))
        pos += 8 + blen
    return data[:hlen], recs


def header_fields(header):
    version, hlen, flags, worker, workers, seq = struct.unpack_from("<HHIHHQ", header, 8)
    return {"version": version, "hlen": hlen, "flags": flags, "worker": worker,
            "workers": workers, "seq": seq}


def retained_after(records):
    """{topic: payload} the retain-set / retain-del records leave, applied in order."""
    state = {}
    for r in records:
        if r.type == RETAIN_SET:
            state[r.topic()] = r.payload()
        elif r.type == RETAIN_DEL:
            state.pop(r.topic(), None)
    return state


def all_segments(pdir, name="starling.db"):
    """[(worker, seq, path, header, records)] of every segment, worker then seq order."""
    out = []
    for w, segs in sorted(segment_files(pdir, name).items()):
        for seq, path in segs:
            header, recs = read_segment(path)
            out.append((w, seq, path, header, recs))
    return out


__all__ = ["TERM", "KILL", "KILL_REASON", "DB_NAME", "persist_lines", "PersistCase", "crc32c",
           "segment_files", "fix_header_crc", "read_segment", "header_fields", "retained_after",
           "all_segments", "Record", "HEADER_LEN", "Messages", "paho", "unique_id"]
