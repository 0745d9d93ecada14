"""Persistent sessions (CleanSession 0): subscriptions kept across reconnects, QoS 1 and 2
messages queued while the client is away (QoS 0 is not, as in Mosquitto's default), the
Session Present flag, `max_queued_messages`, and CleanSession 1 discarding it all.
Statement ids are MQTT 3.1.1's ([MQTT-3.1.2-4] to [MQTT-3.1.2-6], [MQTT-3.2.2-1] to -3).
"""

import socket
import threading
import unittest

from harness import BrokerTestCase, encode_disconnect, encode_publish, unique_id


class OfflineMixin:
    """Takes persistent-session clients offline in a way the test can wait for.

    A client that merely closes its socket may still count as connected for a moment, and a
    message routed to it then is sent on the dying connection (and later resent) instead of
    queued. So each client carries a will on "left/<id>" and drops its connection without
    DISCONNECT; once the will arrives, the broker has finished with the connection."""

    def setUp(self):
        super().setUp()
        self.left = self.collect(self.client(), "left/#", 0)

    def persistent(self, cid, subscriptions=()):
        r = self.raw()
        ca = r.connect(cid, clean_session=False, will=("left/" + cid, b"", 0, False))
        self.assertEqual(ca.rc, 0)
        if subscriptions:
            self.assertEqual(r.subscribe(list(subscriptions)), [q for _, q in subscriptions])
        r.session_present = ca.session_present
        return r

    def go_offline(self, r, cid):
        before = len([m for m in self.left if m.topic == "left/" + cid])
        r.close()
        self.wait_for(lambda: len([m for m in self.left if m.topic == "left/" + cid]) > before,
                      msg="the broker did not notice %s leave" % cid)


class SessionTest(OfflineMixin, BrokerTestCase):
    def reconnect(self, cid, clean_session=False):
        r = self.raw()
        ca = r.connect(cid, clean_session=clean_session, will=("left/" + cid, b"", 0, False))
        self.assertEqual(ca.rc, 0)
        return r, ca.session_present

    def away_with_subscription(self, topic, qos):
        """A persistent-session client that subscribed to `topic` and left; returns its id."""
        cid = unique_id("sess")
        r = self.persistent(cid, [(topic, qos)])
        self.assertFalse(r.session_present)  # [MQTT-3.2.2-3]: no stored session yet
        self.go_offline(r, cid)
        return cid

    def test_subscriptions_kept_across_reconnect(self):
        # [MQTT-3.1.2-4]: the session (and its subscriptions) is resumed.
        cid = self.away_with_subscription("keep/t", 1)
        r, present = self.reconnect(cid)
        self.assertTrue(present)  # [MQTT-3.2.2-2]
        pub = self.client()
        self.publish(pub, "keep/t", b"no-resubscribe", 1)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.payload, b"no-resubscribe")

    def test_qos1_and_qos2_queued_while_away(self):
        # [MQTT-3.1.2-5]: QoS 1 and 2 messages matching the subscriptions are stored.
        cid = self.away_with_subscription("queue/t", 2)
        pub = self.client()
        self.publish(pub, "queue/t", b"q1", 1)
        self.publish(pub, "queue/t", b"q2", 2)
        self.publish(pub, "queue/t", b"q1-again", 1)
        r, present = self.reconnect(cid)
        self.assertTrue(present)
        got = [(p.payload, p.qos) for p in r.recv_publishes(3)]
        self.assertEqual(sorted(got), [(b"q1", 1), (b"q1-again", 1), (b"q2", 2)])
        # Same topic and QoS keep their order [MQTT-4.6.0-6].
        self.assertEqual([m for m in got if m[1] == 1], [(b"q1", 1), (b"q1-again", 1)])
        self.assertTrue(r.silent_for(0.2))

    def test_paho_persistent_session(self):
        cid = unique_id("paho")
        c = self.client(cid, clean_session=False)
        self.assertEqual(c.connack, (False, 0))
        self.subscribe(c, "paho/sess", 1)
        c.disconnect()
        self.wait_for(c.disconnected.is_set)
        pub = self.client()
        for i in range(3):
            self.publish(pub, "paho/sess", b"m%d" % i, 1)
        c2 = self.client(cid, clean_session=False)
        self.assertEqual(c2.connack, (True, 0))
        msgs = self.wait_messages(c2.messages, 3)
        self.assertEqual([m.payload for m in msgs], [b"m0", b"m1", b"m2"])

    def test_qos0_not_queued_for_offline_client(self):
        cid = self.away_with_subscription("q0off/t", 1)
        pub = self.client()
        self.publish(pub, "q0off/t", b"dropped", 0)
        self.publish(pub, "q0off/t", b"kept", 1)
        r, present = self.reconnect(cid)
        self.assertTrue(present)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.payload, b"kept")
        self.assertTrue(r.silent_for(0.3))

    def test_queued_message_delivered_at_granted_qos(self):
        # A QoS 2 message for a QoS 1 subscription is queued and delivered at QoS 1.
        cid = self.away_with_subscription("qg/t", 1)
        pub = self.client()
        self.publish(pub, "qg/t", b"two", 2)
        r, _ = self.reconnect(cid)
        (p,) = r.recv_publishes(1)
        self.assertEqual((p.payload, p.qos, p.dup), (b"two", 1, False))

    def test_clean_session_discards_old_session(self):
        # [MQTT-3.1.2-6]: CleanSession 1 discards the stored session; [MQTT-3.2.2-1] session
        # present 0. Nothing queued before arrives, no subscription survives.
        cid = self.away_with_subscription("clean/t", 1)
        pub = self.client()
        self.publish(pub, "clean/t", b"queued", 1)
        r, present = self.reconnect(cid, clean_session=True)
        self.assertFalse(present)
        self.publish(pub, "clean/t", b"after", 1)
        self.assertTrue(r.silent_for(0.3))
        self.go_offline(r, cid)
        # The clean session ended with the connection: a CleanSession 0 login finds nothing.
        r, present = self.reconnect(cid, clean_session=False)
        self.assertFalse(present)
        self.publish(pub, "clean/t", b"later", 1)
        self.assertTrue(r.silent_for(0.3))

    def test_session_present_after_clean_session_0_without_subscriptions(self):
        # A session with no subscriptions is still a stored session.
        cid = unique_id("bare")
        r = self.persistent(cid)
        self.assertFalse(r.session_present)
        self.go_offline(r, cid)
        r, present = self.reconnect(cid)
        self.assertTrue(present)

    def test_unsubscribe_persists_in_session(self):
        cid = unique_id("unsub")
        r = self.persistent(cid, [("us/a", 1), ("us/b", 1)])
        r.unsubscribe(["us/a"])
        self.go_offline(r, cid)
        pub = self.client()
        self.publish(pub, "us/a", b"a", 1)
        self.publish(pub, "us/b", b"b", 1)
        r, _ = self.reconnect(cid)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.topic, "us/b")
        self.assertTrue(r.silent_for(0.3))

    def test_offline_queue_survives_several_reconnects(self):
        cid = self.away_with_subscription("multi/t", 1)
        pub = self.client()
        for round_ in range(3):
            self.publish(pub, "multi/t", b"r%d" % round_, 1)
            r = self.persistent(cid)
            self.assertTrue(r.session_present)
            (p,) = r.recv_publishes(1)
            self.assertEqual(p.payload, b"r%d" % round_)
            self.go_offline(r, cid)


class QueueLimitTest(OfflineMixin, BrokerTestCase):
    config_lines = ("max_queued_messages 5",)

    def test_max_queued_messages_bounds_offline_queue(self):
        cid = unique_id("bounded")
        self.go_offline(self.persistent(cid, [("bound/t", 1)]), cid)
        pub = self.raw_connected()
        for i in range(12):
            pub.publish_acked("bound/t", b"%02d" % i, 1)
        r = self.raw()
        self.assertTrue(r.connect(cid, clean_session=False).session_present)
        got = r.recv_publishes(5)
        self.assertTrue(r.silent_for(0.5), "more than max_queued_messages were queued")
        payloads = [p.payload for p in got]
        self.assertEqual(payloads, sorted(payloads), "queued messages out of order")
        self.assertEqual(len(set(payloads)), 5)
        # The session still works after the overflow.
        pub.publish_acked("bound/t", b"fresh", 1)
        self.assertEqual(r.recv_publishes(1)[0].payload, b"fresh")


class TakeoverOrderTest(BrokerTestCase):
    """A client that acknowledges, or disconnects, and reconnects at once: what it sent on the
    old connection counts before the new CONNECT takes the session over. On several workers
    the CONNECT comes through another worker's channel while the old connection's last bytes
    still wait in the kernel; a busy target worker (a QoS 0 flood through every worker here)
    widens that window. Without the ordering, acknowledged messages came again and a clean
    DISCONNECT still sent the will."""

    ROUNDS = 100

    def setUp(self):
        super().setUp()
        stop = threading.Event()
        readers = [self.raw_connected() for _ in range(8)]
        for r in readers:
            r.subscribe([("flood/#", 0)])
        flooder = self.raw_connected()
        burst = encode_publish("flood/x", b"y" * 200, 0) * 50

        def flood():
            while not stop.is_set():
                try:
                    flooder.sock.sendall(burst)
                    for r in readers:
                        try:
                            r.sock.recv(1 << 20, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            pass
                except OSError:
                    return

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        self.defer(lambda: (stop.set(), thread.join(5)))

    def test_acknowledgements_count_before_the_takeover(self):
        pub = self.raw_connected()
        resent = []
        for i in range(self.ROUNDS):
            cid, topic = unique_id("tk"), "tk/%d" % i
            sub = self.raw_connected(cid, clean_session=False)
            sub.subscribe([(topic, 1)])
            for k in range(3):
                pub.publish_acked(topic, b"a%d" % k, 1)
            sub.recv_publishes(3)  # and acknowledged
            sub.close()
            sub = self.raw_connected(cid, clean_session=False)
            pub.publish_acked(topic, b"marker", 1)
            (p,) = sub.recv_publishes(1)
            if p.payload != b"marker":
                resent.append((i, p.payload))
            sub.close()
        self.assertEqual(resent, [], "acknowledged messages delivered again")

    def test_disconnect_counts_before_the_takeover(self):
        # [MQTT-3.14.4-3]: after DISCONNECT the will is discarded, not published.
        watcher = self.raw_connected()
        watcher.subscribe([("will/#", 0)])
        for i in range(self.ROUNDS):
            cid = unique_id("tw")
            sub = self.raw_connected(cid, clean_session=False,
                                     will=("will/%d" % i, b"x", 0, False))
            sub.send(encode_disconnect())
            sub.close()
            self.raw_connected(cid, clean_session=False).close()
        self.assertEqual([p.topic for p in watcher.drain(1.0)], [], "wills published")


if __name__ == "__main__":
    unittest.main()
