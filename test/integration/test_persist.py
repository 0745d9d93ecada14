"""Persistence (issue 10): every kind of durable state survives a restart on the same data
directory, after SIGTERM (graceful) and after SIGKILL (a crash: with persistence_sync always,
everything acknowledged is on disk), with 3.1.1 and 5.0 clients.

Mosquitto saves its database on shutdown, so the SIGTERM tests run against it too (they
validate the tests); the SIGKILL ones are Starling's guarantee. PersistOffTest runs the same
kind of check with `persistence false` and expects the state gone: the restarts are real.
"""

import os
import time
import unittest

from harness import KIND, PacketTypes, SubscribeOptions, pprops, starling_only, unique_id
from persistlib import KILL, KILL_REASON, TERM, PersistCase


def expiry5(seconds):
    return pprops(PacketTypes.PUBLISH, MessageExpiryInterval=seconds)


class RetainedTest(PersistCase):
    def _set_replace_delete(self, sig):
        pub = self.client()
        self.publish(pub, "pr/a", b"a1", 1, retain=True)
        self.publish(pub, "pr/b", b"b1", 2, retain=True)
        self.publish(pub, "pr/b", b"b2", 1, retain=True)  # replaced
        self.publish(pub, "pr/c", b"c1", 1, retain=True)
        self.publish(pub, "pr/c", b"", 2, retain=True)  # deleted
        want = {"pr/a": b"a1", "pr/b": b"b2"}
        if sig == TERM:
            # A retained QoS 0 message has no acknowledgement to wait for, so only a graceful
            # stop is sure to keep it.
            self.publish(pub, "pr/z", b"z0", 0, retain=True)
            # paho has only written it: a QoS 1 publish acknowledged after it says the broker
            # read it (one connection's packets are handled in order) before the SIGTERM.
            self.publish(pub, "pr-barrier", b"", 1)
            pub.disconnect()
            want["pr/z"] = b"z0"
        self.restart(sig)
        got = self.read_retained("pr/#", len(want))
        self.assertEqual({t: m.payload for t, m in got.items()}, want)
        # Changes made after a restart are kept by the next one.
        pub = self.client()
        self.publish(pub, "pr/a", b"", 1, retain=True)
        self.publish(pub, "pr/d", b"d1", 1, retain=True)
        self.restart(sig)
        want = {"pr/b": b"b2", "pr/d": b"d1"} if sig == KILL else {
            "pr/b": b"b2", "pr/d": b"d1", "pr/z": b"z0"}
        got = self.read_retained("pr/#", len(want))
        self.assertEqual({t: m.payload for t, m in got.items()}, want)
        self.assertEqual({t: m.qos for t, m in got.items()}["pr/b"], 1)

    def test_retained_set_replaced_deleted_term(self):
        self._set_replace_delete(TERM)

    @starling_only(KILL_REASON)
    def test_retained_set_replaced_deleted_kill(self):
        self._set_replace_delete(KILL)

    def _expiry(self, sig):
        """A retained message with a 10 s expiry, the broker down 3 s: after the restart its
        Message Expiry Interval is at most 7, and it is gone once the 10 s have elapsed."""
        pub = self.client5()
        t0 = time.monotonic()
        self.publish(pub, "px/e", b"expires", 1, retain=True, properties=expiry5(10))
        self.publish(pub, "px/k", b"keeps", 1, retain=True)
        pub.disconnect()
        self.restart(sig, down=3.0)
        got = self.read_retained("px/#", 2, v5=True, quiet=0.2)
        self.assertEqual(got["px/e"].payload, b"expires")
        left = got["px/e"].props.MessageExpiryInterval
        self.assertLessEqual(left, 7, "the 3 s the broker was down did not count")
        self.assertGreaterEqual(left, 1)
        self.assertFalse(hasattr(got["px/k"].props, "MessageExpiryInterval"))
        time.sleep(max(0.0, t0 + 10.5 - time.monotonic()))
        got = self.read_retained("px/#", 1, v5=True)
        self.assertEqual(sorted(got), ["px/k"], "the expired message is still retained")

    def test_retained_expiry_counts_downtime_term(self):
        self._expiry(TERM)

    @starling_only(KILL_REASON)
    def test_retained_expiry_counts_downtime_kill(self):
        self._expiry(KILL)


class SessionTest(PersistCase):
    def _subs_and_queue(self, version, sig):
        """Subscriptions of a persistent session and the QoS 1/2 messages queued for it while
        it was offline survive; QoS 0 messages are not kept."""
        cid = unique_id("ps")
        s = self.persistent(version, cid)
        for topic, qos in (("pq/1", 1), ("pq/2", 2), ("pq/0", 0)):
            self.subscribe(s, topic, qos)
        self.leave(s)
        pub = self.client()
        self.publish(pub, "pq/1", b"a", 1)
        self.publish(pub, "pq/2", b"b", 2)
        self.publish(pub, "pq/1", b"c", 2)  # granted QoS 1
        self.publish(pub, "pq/2", b"q0", 0)  # QoS 0: not queued
        self.publish(pub, "pq/0", b"d", 2)  # granted QoS 0: not queued
        self.publish(pub, "pq/2", b"e", 1)
        pub.disconnect()
        self.restart(sig)
        s = self.persistent(version, cid)
        self.assertTrue(s.connack[0], "session present is 0 after the restart")
        got = self.wait_messages(s.messages, 4)
        # Mosquitto sends a topic's queued QoS 1 messages before its QoS 2 ones, so only the
        # order within one topic and QoS is checked.
        self.assertEqual(sorted((m.topic, m.payload, m.qos) for m in got),
                         [("pq/1", b"a", 1), ("pq/1", b"c", 1), ("pq/2", b"b", 2),
                          ("pq/2", b"e", 1)])
        self.assertEqual([m.payload for m in got if m.topic == "pq/1"], [b"a", b"c"])
        self.assert_no_messages(s.messages, 0.5, expected=4)
        # The subscriptions themselves are still there.
        pub = self.client()
        self.publish(pub, "pq/2", b"live2", 2)
        self.publish(pub, "pq/0", b"live0", 1)
        got = self.wait_messages(s.messages, 6)
        self.assertEqual(sorted((m.payload, m.qos) for m in got[4:]),
                         [(b"live0", 0), (b"live2", 2)])

    def test_subscriptions_and_queue_311_term(self):
        self._subs_and_queue(4, TERM)

    def test_subscriptions_and_queue_v5_term(self):
        self._subs_and_queue(5, TERM)

    @starling_only(KILL_REASON)
    def test_subscriptions_and_queue_311_kill(self):
        self._subs_and_queue(4, KILL)

    @starling_only(KILL_REASON)
    def test_subscriptions_and_queue_v5_kill(self):
        self._subs_and_queue(5, KILL)

    def _online_subscriber(self, version, sig):
        """A persistent subscriber connected when the broker stops reconnects to its session."""
        cid = unique_id("po")
        s = self.persistent(version, cid)
        self.subscribe(s, "pon/#", 2)
        self.restart(sig)
        s = self.persistent(version, cid)
        self.assertTrue(s.connack[0], "session present is 0 after the restart")
        pub = self.client()
        self.publish(pub, "pon/x", b"after", 2)
        got = self.wait_messages(s.messages, 1)
        self.assertEqual((got[0].payload, got[0].qos), (b"after", 2))

    @starling_only(KILL_REASON)
    def test_online_subscriber_311_kill(self):
        self._online_subscriber(4, KILL)

    def test_online_subscriber_v5_term(self):
        self._online_subscriber(5, TERM)

    def _options_and_ids(self, sig):
        """MQTT 5 subscription options (QoS, no local, retain as published, retain handling)
        and subscription identifiers survive."""
        cid = unique_id("pso")
        s = self.session5(cid)
        sid = lambda n: pprops(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=n)  # noqa: E731
        self.subscribe(s, "so/nl", options=SubscribeOptions(qos=1, noLocal=True),
                       properties=sid(7))
        self.subscribe(s, "so/rap", options=SubscribeOptions(qos=2, retainAsPublished=True),
                       properties=sid(8))
        self.subscribe(s, "so/q0", options=SubscribeOptions(qos=0))
        self.subscribe(s, "so/rh", options=SubscribeOptions(qos=1, retainHandling=1),
                       properties=sid(9))
        self.leave(s)
        pub = self.client5()
        self.publish(pub, "so/rh", b"kept", 1, retain=True)
        self.restart(sig)
        s = self.session5(cid)
        self.assertTrue(s.connack[0], "session present is 0 after the restart")
        # Queued while offline (before the restart): the retained publish to so/rh, with
        # retain 0 (not retain-as-published) and subscription identifier 9.
        got = self.wait_messages(s.messages, 1)
        self.assertEqual((got[0].topic, got[0].payload, got[0].retain), ("so/rh", b"kept", False))
        self.assertEqual(got[0].props.SubscriptionIdentifier, [9])
        # Retain handling 1: re-subscribing to an existing subscription sends no retained
        # message; a subscription lost in the restart would be new, and get it.
        self.subscribe(s, "so/rh", options=SubscribeOptions(qos=1, retainHandling=1),
                       properties=sid(9))
        self.assert_no_messages(s.messages, 0.5, expected=1)
        s.messages.clear()
        self.publish(s, "so/nl", b"own", 1)  # no local: not back to s
        pub = self.client5()
        self.publish(pub, "so/nl", b"nl", 2)
        self.publish(pub, "so/rap", b"rap", 2, retain=True)
        self.publish(pub, "so/q0", b"q0", 2)
        got = self.wait_messages(s.messages, 3)
        self.assert_no_messages(s.messages, 0.5, expected=3)
        by = {m.payload: m for m in got}
        self.assertEqual(sorted(by), [b"nl", b"q0", b"rap"], "no local lost: %r" % got)
        self.assertEqual((by[b"nl"].qos, by[b"nl"].props.SubscriptionIdentifier), (1, [7]))
        self.assertEqual((by[b"rap"].qos, by[b"rap"].retain), (2, True))
        self.assertEqual(by[b"rap"].props.SubscriptionIdentifier, [8])
        self.assertEqual(by[b"q0"].qos, 0)
        self.assertFalse(hasattr(by[b"q0"].props, "SubscriptionIdentifier"))

    def test_subscription_options_and_ids_term(self):
        self._options_and_ids(TERM)

    @starling_only(KILL_REASON)
    def test_subscription_options_and_ids_kill(self):
        self._options_and_ids(KILL)

    def _expiry(self, sig, downtime=False):
        """An expired session is gone after a restart; a clean session is never kept; with
        `downtime`, a 5.0 session's expiry counts the time the broker was down."""
        gone, short, longer, clean = (unique_id(p) for p in ("pe-gone", "pe-s", "pe-l", "pe-c"))
        for cid, expiry in ((gone, 1), (short, 4), (longer, 300)):
            if cid == short and not downtime:
                continue
            s = self.session5(cid, expiry=expiry)
            self.subscribe(s, "pe/x", 1)
            self.leave(s)
            if cid == gone:
                time.sleep(3.0)  # expires while the broker runs (Mosquitto purges once a second)
        t0 = time.monotonic()
        c = self.client(clean, clean_session=True)
        self.subscribe(c, "pe/x", 1)
        self.restart(sig, down=2.5)
        time.sleep(max(0.0, t0 + 5.0 - time.monotonic()))
        # `short` expired at t0 + 4 counting the downtime; at t0 + 7 or later if not.
        self.assertFalse(self.session5(gone).connack[0], "an expired session came back")
        if downtime:
            self.assertFalse(self.session5(short).connack[0],
                             "the session expiry did not count the time the broker was down")
        self.assertTrue(self.session5(longer).connack[0], "a live session was lost")
        self.assertFalse(self.session311(clean).connack[0], "a clean session was kept")

    def test_session_expiry_term(self):
        self._expiry(TERM)

    @starling_only("Mosquitto restarts a session's expiry when it starts (2.0.11 checked)")
    def test_session_expiry_counts_downtime_term(self):
        self._expiry(TERM, downtime=True)

    @starling_only(KILL_REASON)
    def test_session_expiry_counts_downtime_kill(self):
        self._expiry(KILL, downtime=True)


class PersistOffTest(PersistCase):
    """The control: with `persistence false` a restart forgets everything."""

    persistence = False

    def test_restart_forgets_without_persistence(self):
        pub = self.client()
        self.publish(pub, "poff/r", b"r", 1, retain=True)
        cid = unique_id("poff")
        s = self.session311(cid)
        self.subscribe(s, "poff/q", 1)
        self.leave(s)
        self.publish(pub, "poff/q", b"q", 1)
        self.restart(TERM)
        self.assertEqual(self.read_retained("poff/#", 0), {})
        self.assertFalse(self.session311(cid).connack[0])
        if KIND == "starling":
            self.assertEqual([f for f in os.listdir(self.broker.dir) if "starling.db" in f], [],
                             "files written with persistence off")


@starling_only("persistence_sync is a Starling option")
class SyncNeverTest(PersistCase):
    """persistence_sync never: no fsync, but a graceful stop still keeps everything."""

    persist_extra = ("persistence_sync never",)

    def test_graceful_restart_keeps_everything(self):
        pub = self.client()
        for i in range(20):
            self.publish(pub, "psn/r%d" % i, b"v%d" % i, i % 3, retain=True)
        cid = unique_id("psn")
        s = self.session5(cid)
        self.subscribe(s, "psn/q", 2)
        self.leave(s)
        for i in range(10):
            self.publish(pub, "psn/q", b"q%d" % i, 1 + i % 2)
        pub.disconnect()
        self.restart(TERM)
        got = self.read_retained("psn/+", 20)
        self.assertEqual({t: m.payload for t, m in got.items()},
                         {"psn/r%d" % i: b"v%d" % i for i in range(20)})
        s = self.session5(cid)
        self.assertTrue(s.connack[0])
        msgs = self.wait_messages(s.messages, 10)
        # The order within each QoS (as in SessionTest; MQTT orders a topic per QoS).
        for qos in (1, 2):
            self.assertEqual([m.payload for m in msgs if m.qos == qos],
                             [b"q%d" % i for i in range(10) if 1 + i % 2 == qos])


if __name__ == "__main__":
    unittest.main()
