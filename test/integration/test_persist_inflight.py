"""Persistence (issue 10), the QoS state machines across a restart: the outbound in-flight
window (QoS 1 resent with DUP, QoS 2 in each stage), inbound QoS 2 ids awaiting PUBREL, and a
pending delayed will, after SIGTERM and SIGKILL, with 3.1.1 and 5.0 clients. (Split from
test_persist so the two run side by side.)
"""

import time
import unittest

from harness import (MQTT311, MQTT5, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, encode_ack, mqtt5,
                     props, starling_only, unique_id)
from persistlib import KILL, KILL_REASON, TERM, PersistCase


class InflightTest(PersistCase):
    """The outbound in-flight window and the inbound QoS 2 packet ids, with raw clients."""

    def rawsession(self, version, cid):
        if version == MQTT5:
            return self.raw5(cid, clean_start=False,
                             properties=props((mqtt5.SESSION_EXPIRY, 300)))
        return self.raw_connected(cid, clean_session=False)

    def _sub_and_get(self, version, qos):
        cid = unique_id("pi")
        s = self.rawsession(version, cid)
        topic = "pi/" + cid
        self.assertEqual(s.subscribe([(topic, qos)]), [qos])
        pub = self.client()
        self.publish(pub, topic, b"m1", qos)
        p = s.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup), (b"m1", qos, False))
        return cid, s, p

    def _reconnect(self, version, cid, old):
        old.close()
        s = self.rawsession(version, cid)
        self.assertTrue(s.connack.session_present, "session present is 0 after the restart")
        return s

    def _qos1(self, version, sig):
        cid, s, p = self._sub_and_get(version, 1)
        self.restart(sig)
        s = self._reconnect(version, cid, s)
        q = s.expect(PUBLISH)
        self.assertEqual((q.payload, q.qos, q.dup, q.pid), (b"m1", 1, True, p.pid))
        s.send(encode_ack(PUBACK, q.pid))
        self.assertTrue(s.silent_for(0.5), "more after the PUBACK")

    def _window(self, version, sig):
        """A connected subscriber that acknowledges nothing: the broker fills the in-flight
        window and queues the rest; all of it is delivered after the restart."""
        cid = unique_id("pwin")
        s = self.rawsession(version, cid)
        topic = "pwin/" + cid
        self.assertEqual(s.subscribe([(topic, 1)]), [1])
        pub = self.client()
        for i in range(60):
            self.publish(pub, topic, b"w%02d" % i, 1 + i % 2)
        first = s.expect(PUBLISH)
        self.assertEqual(first.payload, b"w00")
        self.restart(sig)
        s = self._reconnect(version, cid, s)
        got = s.recv_publishes(60, timeout=10)
        self.assertEqual([p.payload for p in got], [b"w%02d" % i for i in range(60)])
        self.assertTrue(got[0].dup)
        self.assertTrue(s.silent_for(0.5), "more after the 60")

    def _qos2_publish(self, version, sig):
        """PUBLISH sent, no PUBREC: resent with DUP, then the flow completes once."""
        cid, s, p = self._sub_and_get(version, 2)
        self.restart(sig)
        s = self._reconnect(version, cid, s)
        q = s.expect(PUBLISH)
        self.assertEqual((q.payload, q.qos, q.dup, q.pid), (b"m1", 2, True, p.pid))
        s.send(encode_ack(PUBREC, q.pid))
        rel = s.expect(PUBREL)
        self.assertEqual(rel.pid, q.pid)
        s.send(encode_ack(PUBCOMP, q.pid))
        self.assertTrue(s.silent_for(0.5), "more after the PUBCOMP")

    def _qos2_pubrel(self, version, sig):
        """PUBREC received (PUBREL sent): the PUBREL is resent, never the PUBLISH."""
        cid, s, p = self._sub_and_get(version, 2)
        s.send(encode_ack(PUBREC, p.pid))
        rel = s.expect(PUBREL)
        self.assertEqual(rel.pid, p.pid)
        self.restart(sig)
        s = self._reconnect(version, cid, s)
        q = s.recv()
        self.assertEqual((q.type, q.pid), (PUBREL, p.pid), "expected the PUBREL again, got %r" % q)
        s.send(encode_ack(PUBCOMP, q.pid))
        self.assertTrue(s.silent_for(0.5), "more after the PUBCOMP")

    def _inbound(self, version, sig):
        """Publisher: QoS 2 PUBLISH, PUBREC, restart, reconnect, PUBREL -> PUBCOMP; the message
        reaches the (persistent) subscriber exactly once."""
        sub_id = unique_id("pis")
        sub = self.session311(sub_id)
        topic = "pin/" + sub_id
        self.subscribe(sub, topic, 2)
        cid = unique_id("pip")
        pub = self.rawsession(version, cid)
        pub.publish(topic, b"once", qos=2, pid=77)
        rec = pub.expect(PUBREC)
        self.assertEqual(rec.pid, 77)
        self.assertLess(rec.rc or 0, 0x80)
        self.restart(sig)
        # The same paho object: a QoS 2 message it received before the restart is delivered
        # on the PUBREL, which may come after the restart.
        self.assertEqual(self.reconnect(sub), (True, 0))
        pub = self._reconnect(version, cid, pub)
        pub.send(encode_ack(PUBREL, 77))
        comp = pub.expect(PUBCOMP)
        self.assertEqual(comp.pid, 77)
        if version == MQTT5:
            self.assertEqual(comp.rc, 0, "PUBCOMP 0x%02x: the packet id was forgotten" % comp.rc)
        count = lambda: sum(m.payload == b"once" for m in sub.messages)  # noqa: E731
        self.wait_for(lambda: count() >= 1, 5, "the message never reached the subscriber")
        time.sleep(0.7)
        self.assertEqual(count(), 1, "delivered more than once")

    for _kind in ("qos1", "window", "qos2_publish", "qos2_pubrel", "inbound"):
        for _v, _vname in ((MQTT311, "311"), (MQTT5, "v5")):
            locals()["test_%s_%s_term" % (_kind, _vname)] = (
                lambda k, v: lambda self: getattr(self, "_" + k)(v, TERM))(_kind, _v)
            locals()["test_%s_%s_kill" % (_kind, _vname)] = starling_only(KILL_REASON)(
                (lambda k, v: lambda self: getattr(self, "_" + k)(v, KILL))(_kind, _v))
    del _kind, _v, _vname


class ResendTest(PersistCase):
    """A QoS 2 PUBLISH sent again for a packet id the broker holds (before the PUBREL) is a
    duplicate: with the publisher's and the subscriber's sessions on two workers, it is
    forwarded again with its origin number and the subscriber's worker, which has it, ignores
    it; after a restart it knows so from its log (kernel-notes/persistence.md, "Several
    workers"). A retained one is stored once."""

    def _setup(self, version):
        sub_id, pub_id = self.two_ids("prs", "prp", same_worker=False)
        sub = self.rawsession(MQTT311, sub_id)
        topic = "prs/" + sub_id
        self.assertEqual(sub.subscribe([(topic + "/#", 2)]), [2])
        pub = self.rawsession(version, pub_id)
        return sub_id, sub, pub_id, pub, topic

    rawsession = InflightTest.rawsession
    _reconnect = InflightTest._reconnect

    def _only_once(self, sub, payload):
        p = sub.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos), (payload, 2))
        sub.send(encode_ack(PUBREC, p.pid))
        self.assertEqual(sub.expect(PUBREL).pid, p.pid)
        sub.send(encode_ack(PUBCOMP, p.pid))
        try:
            more = sub.recv(0.7)
        except TimeoutError:
            more = None
        self.assertIsNone(more, "the subscriber got more: %r" % (more,))

    def _resend_at_once(self, version):
        sub_id, sub, pub_id, pub, topic = self._setup(version)
        for retain in (False, True):
            pl = b"twice-%d" % retain
            pub.publish(topic + "/r", pl, qos=2, pid=5, retain=retain)
            pub.publish(topic + "/r", pl, qos=2, pid=5, retain=retain, dup=True)
            self.assertEqual([pub.expect(PUBREC).pid for _ in range(2)], [5, 5])
            pub.send(encode_ack(PUBREL, 5))
            self.assertEqual(pub.expect(PUBCOMP).pid, 5)
            self._only_once(sub, pl)
        got = self.read_retained(topic + "/#", 1)
        self.assertEqual({t: m.payload for t, m in got.items()}, {topic + "/r": b"twice-1"})

    def _resend_after_restart(self, version, sig):
        """PUBREC received, the subscriber has the message; after the restart the publisher
        (as if the PUBREC had been lost) sends the PUBLISH again before its PUBREL."""
        sub_id, sub, pub_id, pub, topic = self._setup(version)
        pub.publish(topic + "/x", b"after", qos=2, pid=9, retain=True)
        self.assertEqual(pub.expect(PUBREC).pid, 9)
        self._only_once(sub, b"after")
        self.restart(sig)
        sub = self._reconnect(MQTT311, sub_id, sub)
        pub = self._reconnect(version, pub_id, pub)
        pub.publish(topic + "/x", b"after", qos=2, pid=9, retain=True, dup=True)
        self.assertEqual(pub.expect(PUBREC).pid, 9)
        pub.send(encode_ack(PUBREL, 9))
        self.assertEqual(pub.expect(PUBCOMP).pid, 9)
        self.assertTrue(sub.silent_for(1.0), "the subscriber got the message again")
        got = self.read_retained(topic + "/#", 1)
        self.assertEqual({t: m.payload for t, m in got.items()}, {topic + "/x": b"after"})

    def test_resend_at_once_311(self):
        self._resend_at_once(MQTT311)

    def test_resend_at_once_v5(self):
        self._resend_at_once(MQTT5)

    def test_resend_after_restart_term(self):
        self._resend_after_restart(MQTT5, TERM)

    @starling_only(KILL_REASON)
    def test_resend_after_restart_kill(self):
        self._resend_after_restart(MQTT311, KILL)


class DelayedWillTest(PersistCase):
    def _delayed_will(self, sig):
        """A will with a 5 s delay (session expiry 60): the client vanishes, the broker is
        down 2 s; the will is published 5 s after the client vanished, not 5 s after the
        restart, and not at the restart."""
        cid = unique_id("pw")
        topic = "pw/" + cid
        w = self.raw5(cid, clean_start=False, properties=props((mqtt5.SESSION_EXPIRY, 60)),
                      will=(topic, b"gone", 1, False),
                      will_properties=props((mqtt5.WILL_DELAY, 5)))
        w.abort()
        t0 = time.monotonic()
        time.sleep(0.3)
        self.restart(sig, down=2.0)
        sub = self.client5()
        got = self.collect(sub, topic, 1)
        self.wait_for(lambda: len(got) >= 1, max(0.5, t0 + 8.0 - time.monotonic()),
                      "the delayed will was never published")
        at = time.monotonic() - t0
        self.assertEqual(got[0].payload, b"gone")
        self.assertGreaterEqual(at, 4.5, "the will came early (%.1f s)" % at)
        self.assertLessEqual(at, 6.3, "the will came %.1f s after the client vanished: the "
                             "downtime did not count" % at)
        self.assert_no_messages(got, 0.5, expected=1)

    @starling_only("Mosquitto does not save pending delayed wills (checked: 2.0.11 loses it)")
    def test_delayed_will_term(self):
        self._delayed_will(TERM)

    @starling_only(KILL_REASON)
    def test_delayed_will_kill(self):
        self._delayed_will(KILL)


if __name__ == "__main__":
    unittest.main()
