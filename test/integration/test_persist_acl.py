"""Persistence with an acl_file: a session restored from the log is checked against the ACL as
its client would be (its user name, its listener) from the first message after the restart,
not only once its client is back. Messages published while it is offline are queued only if
its user may read them. A session restored from a log written before the log kept user names
reads nothing until its client reconnects.
"""

import os
import re
import struct
import tempfile
import time

from harness import BACKEND, WORKERS, Broker, free_port, starling_only, unique_id
from persistlib import KILL, TERM, PersistCase, all_segments, crc32c

ACL = """# anonymous clients
topic read public/#

user writer
topic write #

user alice
topic read sensors/+/temp
topic deny sensors/lab/temp

pattern read users/%u/#
"""

SESSION_AUTH = 19
PAD = 18

# What each subscriber may read of what the writer publishes while it is away.
PUBLISHED = ["sensors/roof/temp", "sensors/lab/temp", "sensors/roof/hum", "users/alice/x",
             "users/bob/x", "public/news", "private/x"]
READS = {
    "alice": ["sensors/roof/temp", "users/alice/x"],
    None: ["public/news"],
}


class AclPersistCase(PersistCase):
    """Persistence on, the ACL above (allow_anonymous true)."""

    def setUp(self):
        self.acl_tmp = tempfile.TemporaryDirectory(prefix="starling-pacl-")
        self.addCleanup(self.acl_tmp.cleanup)
        os.chmod(self.acl_tmp.name, 0o755)
        path = os.path.join(self.acl_tmp.name, "acl")
        with open(path, "w") as f:
            f.write(ACL)
        os.chmod(path, 0o644)
        self.persist_extra = ("allow_anonymous true", "acl_file " + path)
        super().setUp()

    def subscriber(self, version, user, cid=None, broker=None):
        """A persistent session of `user` (None: anonymous) subscribed to everything at QoS 1
        (the ACL lets it read some topics: each message is checked)."""
        cid = cid or unique_id("pacl")
        kw = {"username": user} if user else {}
        if broker is not None:
            kw["broker"] = broker
        c = self.persistent(version, cid, **kw)
        granted = self.subscribe(c, "#", 1)
        self.assertLess(granted[0], 0x80)
        return c, cid

    def publish_all(self):
        w = self.client(username="writer")
        for t in PUBLISHED:
            self.publish(w, t, t.encode(), 1)
        w.disconnect()

    def received(self, c, start, n, quiet=1.0):
        """The topics c got after its first `start` messages: n of them, then nothing more
        for `quiet` seconds."""
        self.wait_messages(c.messages, start + n)
        time.sleep(quiet)
        return sorted(m.topic for m in c.messages.snapshot()[start:])

    def check_restored(self, version, user, sig):
        c, _cid = self.subscriber(version, user)
        self.leave(c)
        self.restart(sig)
        self.publish_all()
        self.reconnect(c)
        want = sorted(READS[user])
        self.assertEqual(self.received(c, 0, len(want)), want)



@starling_only("the restored identity is read from Starling's log")
class PersistAclTest(AclPersistCase):
    def test_user_311_after_sigterm(self):
        self.check_restored(4, "alice", TERM)

    def test_user_5_after_sigkill(self):
        self.check_restored(5, "alice", KILL)

    def test_anonymous_after_sigkill(self):
        self.check_restored(4, None, KILL)

    def test_online_through_restart_then_offline(self):
        """A session whose client was online when the broker stopped is restored offline with
        the identity of that connection."""
        c, cid = self.subscriber(5, "alice")
        self.restart(KILL)
        self.wait_for(c.disconnected.is_set, 5.0, "client never saw the broker go")
        c.loop_stop()
        self.publish_all()
        again = self.session5(cid, username="alice")
        want = sorted(READS["alice"])
        self.assertEqual(self.received(again, 0, len(want)), want)

    def test_identity_survives_compaction(self):
        """The identity is part of the state a compaction writes out."""
        self.restart(TERM, config_lines=list(self.config_lines) + ["autosave_interval 1"])
        c, cid = self.subscriber(4, "alice")
        self.leave(c)
        since = len(self.broker.log_text())
        m = None
        for line in self.broker.log_text().splitlines():
            if "connected as %s " % cid in line:
                m = re.search(r", worker (\d+) ", line)
        home = int(m.group(1)) if m else 0
        self.wait_for(lambda: "worker %d's log compacted" % home in
                      self.broker.log_text()[since:], 10.0, "worker %d compacted nothing" % home)
        self.restart(KILL)
        self.publish_all()
        self.reconnect(c)
        want = sorted(READS["alice"])
        self.assertEqual(self.received(c, 0, len(want)), want)

    def test_log_without_identity_reads_nothing_until_reconnect(self):
        """A log written before session-auth records (made here by overwriting them with pad
        records): the session is restored, reads nothing while its client is away, says so in
        the broker's log, and reads as its user again once its client is back."""
        c, _cid = self.subscriber(4, "alice")
        self.leave(c)
        self.broker.halt(TERM)
        n = 0
        for _w, _seq, path, _header, recs in all_segments(self.pdir):
            with open(path, "r+b") as f:
                for r in recs:
                    if r.type != SESSION_AUTH:
                        continue
                    body = bytes([PAD]) + b"\0" * (r.end - r.start - 9)
                    f.seek(r.start)
                    f.write(struct.pack("<II", len(body), crc32c(body)) + body)
                    n += 1
        self.assertGreater(n, 0, "no session-auth record in the log")
        self.broker.resume()
        self.wait_for(lambda: "without their client's user name" in self.broker.log_text(),
                      5.0, "no log line about sessions restored without their user name")
        self.publish_all()
        self.reconnect(c)
        self.assertEqual(self.received(c, 0, 0), [])
        self.publish_all()
        want = sorted(READS["alice"])
        self.assertEqual(self.received(c, 0, len(want)), want)


class TwoListenerBroker(Broker):
    """per_listener_settings true, persistence on: the ACL on the first listener, none on the
    second; both ports kept across restarts."""

    def __init__(self, aclfile, pdir):
        super().__init__()
        self.aclfile, self.pdir = aclfile, pdir
        self.port2 = free_port()

    def _write_config(self):
        lines = ["per_listener_settings true",
                 "persistence true", "persistence_location %s/" % self.pdir,
                 "listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                 "acl_file " + self.aclfile,
                 "listener %d 127.0.0.1" % self.port2, "allow_anonymous true"]
        if WORKERS:
            lines.append("worker_threads %d" % WORKERS)
        if BACKEND:
            lines.append("event_backend %s" % BACKEND)
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")


class Port2:
    """The second listener of a TwoListenerBroker, as client() takes a broker."""

    def __init__(self, b):
        self.host, self.port, self.kind = b.host, b.port2, b.kind

    def stacks(self):
        return ""


@starling_only("the restored listener is read from Starling's log")
class PersistPerListenerAclTest(AclPersistCase):
    """A session keeps the listener it came in on: one from the listener without an ACL still
    reads everything after a restart, one from the listener with the ACL only what it allows."""

    def setUp(self):
        super().setUp()
        self.broker.stop()
        self.broker = TwoListenerBroker(self.persist_extra[1].split(" ", 1)[1], self.pdir)
        self.defer(self.broker.stop)
        self.broker.start()

    def test_each_session_keeps_its_listener(self):
        free, _ = self.subscriber(4, "alice", broker=Port2(self.broker))
        ruled, _ = self.subscriber(4, "alice")
        self.leave(free)
        self.leave(ruled)
        self.restart(KILL)
        self.publish_all()
        self.reconnect(free)
        self.reconnect(ruled)
        self.assertEqual(self.received(free, 0, len(PUBLISHED)), sorted(PUBLISHED))
        want = sorted(READS["alice"])
        self.assertEqual(self.received(ruled, 0, len(want)), want)


RS_ACL = """user writer
topic readwrite rs/#

user reader
topic read rs/#
"""

RS_REVOKED = """user writer
topic read rs/#

user reader
topic read rs/#
"""


@starling_only("the source of a retained message is read from Starling's log")
class PersistRetainSourceTest(PersistCase):
    """check_retain_source (on by default): a retained message restored at start-up still
    remembers who published it, so once that user has lost the right to write its topic (the
    ACL changed while the broker was down) it is no longer sent, as without a restart."""

    def setUp(self):
        self.acl_tmp = tempfile.TemporaryDirectory(prefix="starling-prs-")
        self.addCleanup(self.acl_tmp.cleanup)
        os.chmod(self.acl_tmp.name, 0o755)
        self.aclpath = os.path.join(self.acl_tmp.name, "acl")
        self.write_acl(RS_ACL)
        self.persist_extra = ("allow_anonymous true", "acl_file " + self.aclpath)
        super().setUp()

    def write_acl(self, text):
        with open(self.aclpath, "w") as f:
            f.write(text)
        os.chmod(self.aclpath, 0o644)

    def retained_seen(self):
        c = self.client(username="reader")
        got = self.collect(c, "rs/#", 1)
        time.sleep(0.7)
        return sorted((m.topic, m.payload) for m in got.snapshot())

    def set_retained(self):
        w = self.client(username="writer")
        self.publish(w, "rs/a", b"one", 1, retain=True)
        self.publish(w, "rs/b", b"two", 1, retain=True)
        self.publish(w, "rs/b", b"three", 1, retain=True)  # replaces: its source too
        w.disconnect()
        self.assertEqual(self.retained_seen(), [("rs/a", b"one"), ("rs/b", b"three")])

    def test_kept_while_the_source_may_write(self):
        self.set_retained()
        self.restart(KILL)
        self.assertEqual(self.retained_seen(), [("rs/a", b"one"), ("rs/b", b"three")])

    def test_withheld_once_the_source_lost_the_right(self):
        self.set_retained()
        self.broker.halt(KILL)
        self.write_acl(RS_REVOKED)
        self.broker.resume()
        self.assertEqual(self.retained_seen(), [])

    def test_source_survives_compaction(self):
        self.restart(TERM, config_lines=list(self.config_lines) + ["autosave_interval 1"])
        since = len(self.broker.log_text())
        self.set_retained()
        self.wait_for(lambda: "worker 0's log compacted" in self.broker.log_text()[since:],
                      10.0, "worker 0 compacted nothing")
        self.broker.halt(TERM)
        self.write_acl(RS_REVOKED)
        self.broker.resume()
        self.assertEqual(self.retained_seen(), [])
