"""MQTT 5 sessions and expiry: Clean Start, the Session Expiry Interval (from CONNECT, changed
by DISCONNECT), the Session Present flag, and the Message Expiry Interval of queued, in-flight
and retained messages. Statement ids are MQTT 5.0's.

Timing: intervals are 1-2 s and every check leaves a second of slack, because Mosquitto (the
reference the suite also runs against) checks expiry once a second; Starling is exact.
"""

import time
import unittest

from harness import (PUBACK, BrokerTestCase, PacketTypes, encode_disconnect, mqtt5, pprops,
                     props, starling_only, unique_id)

SLACK_S = 1.2  # past an interval, how long the broker may take to act on it


def session_props(expiry_s):
    return props((mqtt5.SESSION_EXPIRY, expiry_s))


class CleanStartTest(BrokerTestCase):
    def offline_session(self, cid, expiry_s=60, topic="cs/#"):
        """A session holding a QoS 1 subscription, left by a client that disconnected."""
        r = self.raw5(cid, properties=session_props(expiry_s))
        self.assertFalse(r.connack.session_present)
        r.subscribe([(topic, 1)])
        r.disconnect()

    def test_clean_start_0_resumes_the_session(self):
        # [MQTT-3.1.2-5], [MQTT-3.2.2-3]: Session Present 1, and the subscription and the
        # messages queued meanwhile are there.
        cid = unique_id()
        self.offline_session(cid)
        pub = self.raw5()
        pub.publish_acked("cs/t", b"queued", 1)
        r = self.raw5(cid, clean_start=False, properties=session_props(60))
        self.assertTrue(r.connack.session_present)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.payload, b"queued")

    def test_clean_start_1_discards_the_session(self):
        # [MQTT-3.1.2-4], [MQTT-3.2.2-2]: Session Present 0, subscriptions and queue gone.
        cid = unique_id()
        self.offline_session(cid)
        pub = self.raw5()
        pub.publish_acked("cs/t", b"dropped", 1)
        r = self.raw5(cid, clean_start=True, properties=session_props(60))
        self.assertFalse(r.connack.session_present)
        pub.publish_acked("cs/t", b"after", 1)
        self.assertTrue(r.silent_for(0.4), "a discarded subscription still delivers")

    def test_clean_start_0_without_a_session(self):
        # [MQTT-3.1.2-6]: a new session, Session Present 0 [MQTT-3.2.2-3].
        r = self.raw5(unique_id(), clean_start=False)
        self.assertFalse(r.connack.session_present)

    def test_paho_session_present(self):
        cid = unique_id()
        cp = pprops(PacketTypes.CONNECT, SessionExpiryInterval=60)
        c = self.client5(cid, clean_start=True, properties=cp)
        self.assertEqual(c.connack, (False, 0))
        self.subscribe(c, "pcs/#", 1)
        c.disconnect()
        self.assertTrue(c.disconnected.wait(3))
        c = self.client5(cid, clean_start=False, properties=cp)
        self.assertEqual(c.connack, (True, 0))


class SessionExpiryTest(BrokerTestCase):
    def connect(self, cid, expiry_s=None, clean_start=False):
        return self.raw5(cid, clean_start=clean_start,
                         properties=b"" if expiry_s is None else session_props(expiry_s))

    def present(self, cid):
        """Connects with Clean Start 0 (and Session Expiry 0) and says whether a session was
        found; the connection then ends the session (expiry 0), so ask only once."""
        r = self.connect(cid)
        r.disconnect()
        return r.connack.session_present

    def assert_gone(self, cid, after_s=0.3, msg=None):
        """After `after_s` (time for the broker to see the close), no session for cid."""
        time.sleep(after_s)
        self.assertFalse(self.present(cid), msg or "the session outlived its end")

    def test_expiry_0_ends_the_session_at_disconnect(self):
        # 3.1.2.11.2: absent or 0, the session ends when the connection closes.
        cid = unique_id()
        r = self.connect(cid, clean_start=True)
        r.subscribe([("se/#", 1)])
        r.disconnect()
        self.assert_gone(cid)
        # Closed without DISCONNECT: the same.
        r = self.connect(cid, 0, clean_start=True)
        r.subscribe([("se/#", 1)])
        r.close()
        self.assert_gone(cid)

    def test_session_kept_for_the_interval_then_discarded(self):
        # [MQTT-3.1.2-23]: kept while the interval runs; [MQTT-4.1.0-2]: discarded after it.
        cid = unique_id()
        r = self.connect(cid, 1, clean_start=True)
        r.subscribe([("se/#", 1)])
        r.close()
        time.sleep(0.3)
        r = self.connect(cid, 1)  # within the second: found, and the timer starts again
        self.assertTrue(r.connack.session_present)
        pub = self.raw5()
        r.close()
        pub.publish_acked("se/t", b"while-away", 1)
        time.sleep(1.0 + SLACK_S)
        self.assertFalse(self.present(cid), "session outlived its 1 s expiry")

    def test_queued_message_delivered_within_the_interval(self):
        cid = unique_id()
        r = self.connect(cid, 2, clean_start=True)
        r.subscribe([("sq/#", 1)])
        r.disconnect()
        self.raw5().publish_acked("sq/t", b"waiting", 1)
        time.sleep(0.5)
        r = self.connect(cid, 2)
        self.assertTrue(r.connack.session_present)
        self.assertEqual(r.recv_publishes(1)[0].payload, b"waiting")

    def test_disconnect_with_expiry_0_ends_the_session_now(self):
        # 3.14.2.2.2: the DISCONNECT's Session Expiry Interval replaces the CONNECT's.
        cid = unique_id()
        r = self.connect(cid, 60, clean_start=True)
        r.subscribe([("sd/#", 1)])
        r.disconnect(0, session_props(0))
        self.assert_gone(cid, msg="session kept after DISCONNECT expiry 0")

    def test_disconnect_changes_the_expiry(self):
        # 3.14.2.2.2: the DISCONNECT's Session Expiry Interval replaces the CONNECT's, both
        # ways: 1 -> 60 keeps the session past the second, 3600 -> 1 ends it after one.
        longer, shorter = unique_id(), unique_id()
        r = self.connect(longer, 1, clean_start=True)
        r.subscribe([("sl/#", 1)])
        r.disconnect(0, session_props(60))
        r = self.connect(shorter, 3600, clean_start=True)
        r.subscribe([("ss/#", 1)])
        r.disconnect(0, session_props(1))
        time.sleep(1.0 + SLACK_S)
        self.assertTrue(self.present(longer), "DISCONNECT's Session Expiry 60 was ignored")
        self.assertFalse(self.present(shorter), "DISCONNECT's Session Expiry 1 was ignored")

    def test_disconnect_expiry_from_0_to_nonzero_is_a_protocol_error(self):
        # 3.14.2.2.2: "If the Session Expiry Interval in the CONNECT packet was zero, then it is
        # a Protocol Error to set a non-zero Session Expiry Interval in the DISCONNECT": the
        # server answers DISCONNECT 0x82 (4.13) and the session (expiry 0) ends.
        cid = unique_id()
        r = self.connect(cid, clean_start=True)
        r.subscribe([("sz/#", 1)])
        r.send(encode_disconnect(0, session_props(30)))
        self.assert_disconnect(r, 0x82)
        self.assert_gone(cid)

    def test_paho_session_expiry_on_disconnect(self):
        cid = unique_id()
        c = self.client5(cid, properties=pprops(PacketTypes.CONNECT, SessionExpiryInterval=60))
        self.subscribe(c, "ps/#", 1)
        c.disconnect(properties=pprops(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
        self.assertTrue(c.disconnected.wait(3))
        self.assert_gone(cid)

    def test_session_resumed_by_a_v311_client(self):
        # The session belongs to the ClientID, whatever the protocol version: a 3.1.1
        # clean_session 0 connection resumes a v5 session that has not expired.
        cid = unique_id()
        r = self.connect(cid, 60, clean_start=True)
        r.subscribe([("sv/#", 1)])
        r.disconnect()
        self.raw5().publish_acked("sv/t", b"for-311", 1)
        v3 = self.raw()
        ca = v3.connect(cid, clean_session=False)
        self.assertTrue(ca.session_present)
        self.assertEqual(v3.recv_publishes(1)[0].payload, b"for-311")


class MessageExpiryTest(BrokerTestCase):
    def test_live_delivery_carries_the_interval(self):
        # [MQTT-3.3.2-6]: at most the value received (no time has passed worth a second).
        sub = self.raw5()
        sub.subscribe([("me/#", 1)])
        self.raw5().publish_acked("me/t", b"x", 1, properties=props((mqtt5.MESSAGE_EXPIRY, 30)))
        (p,) = sub.recv_publishes(1)
        self.assertIn(p.props.get(mqtt5.MESSAGE_EXPIRY), (29, 30))

    def test_messages_expire_while_waiting(self):
        # Three kinds of waiting message, one wait of 2.2 s:
        # - queued for an offline session: one whose interval passed is not delivered
        #   [MQTT-3.3.2-5]; one still valid carries the received value minus the time it
        #   waited [MQTT-3.3.2-6]; one without an interval keeps none;
        # - sent but unacknowledged, re-sent on reconnect [MQTT-4.4.0-1] with DUP 1 and the
        #   interval still counting down;
        # - retained (3.3.2.3.3 applies to the retained copy too): an expired one is not sent
        #   to a new subscriber, a valid one carries what is left.
        queued, unacked = unique_id(), unique_id()
        r = self.raw5(queued, properties=session_props(60))
        r.subscribe([("mq/#", 1)])
        # Offline for certain before anything is published: the broker closes after the
        # DISCONNECT (with 4 workers a publish routed from another worker could otherwise be
        # sent to this connection, in flight, and then resent whatever its expiry).
        r.try_send(encode_disconnect(None, b""))
        self.assertTrue(r.wait_closed()[0], "the broker did not close after DISCONNECT")
        r.close()
        unacked_sub = self.raw5(unacked, properties=session_props(60))
        unacked_sub.subscribe([("mu/#", 1)])
        pub = self.raw5()

        def expiring(interval_s):
            return props((mqtt5.MESSAGE_EXPIRY, interval_s))

        pub.publish_acked("mq/short", b"gone", 1, properties=expiring(1))
        pub.publish_acked("mq/long", b"kept", 1, properties=expiring(30))
        pub.publish_acked("mq/none", b"forever", 1)
        pub.publish_acked("mu/t", b"unacked", 1, properties=expiring(30))
        pub.publish_acked("mr/short", b"gone", 1, retain=True, properties=expiring(1))
        pub.publish_acked("mr/long", b"kept", 1, retain=True, properties=expiring(30))
        (first,) = unacked_sub.recv_publishes(1, ack=False)
        unacked_sub.close()
        waited = 2.2
        time.sleep(waited)

        with self.subTest(kind="queued"):
            sub = self.raw5(queued, clean_start=False, properties=session_props(60))
            self.assertTrue(sub.connack.session_present)
            got = sub.recv_publishes(2)
            self.assertEqual([p.payload for p in got], [b"kept", b"forever"])
            left = got[0].props.get(mqtt5.MESSAGE_EXPIRY)
            self.assertIsNotNone(left)
            self.assertLess(left, 30, "the interval did not count down")
            self.assertGreaterEqual(left, 30 - waited - 2)
            self.assertNotIn(mqtt5.MESSAGE_EXPIRY, got[1].props)
            self.assertTrue(sub.silent_for(0.3))
        with self.subTest(kind="unacknowledged"):
            sub = self.raw5(unacked, clean_start=False, properties=session_props(60))
            (again,) = sub.recv_publishes(1)
            self.assertEqual((again.payload, again.dup), (b"unacked", True))
            self.assertLess(again.props.get(mqtt5.MESSAGE_EXPIRY),
                            first.props.get(mqtt5.MESSAGE_EXPIRY))
        with self.subTest(kind="retained"):
            sub = self.raw5()
            sub.subscribe([("mr/#", 1)])
            got = sub.drain(0.5, ack=True)
            self.assertEqual([(p.topic, p.retain) for p in got], [("mr/long", True)])
            self.assertLess(got[0].props.get(mqtt5.MESSAGE_EXPIRY), 30)

    def test_paho_sees_message_expiry(self):
        sub = self.client5()
        got = self.collect(sub, "mp/#", 1)
        pub = self.client5()
        self.publish(pub, "mp/t", b"x", 1,
                     properties=pprops(PacketTypes.PUBLISH, MessageExpiryInterval=120))
        (m,) = self.wait_messages(got, 1)
        self.assertIn(m.props.MessageExpiryInterval, (119, 120))

    def test_puback_for_publish_with_expiry(self):
        # The interval changes nothing about the acknowledgement: PUBACK 0x00 to a subscriber.
        sub = self.raw5()
        sub.subscribe([("ma/#", 0)])
        pub = self.raw5()
        pub.publish_acked("ma/t", b"x", 1, properties=props((mqtt5.MESSAGE_EXPIRY, 1)))
        self.assertEqual((pub.last_ack.type, pub.last_ack.rc), (PUBACK, 0))


if __name__ == "__main__":
    unittest.main()


class RetainedExpiryStoreTest(BrokerTestCase):
    config_lines = ("sys_interval 1",)

    def retained_count(self):
        r = self.raw5()
        r.subscribe([("$SYS/broker/retained messages/count", 0)])
        (p,) = r.recv_publishes(1)
        r.close()
        return int(p.payload)

    @starling_only("observes Starling's store through its $SYS count, which counts its own "
                   "retained $SYS topics too")
    def test_expired_retained_message_leaves_the_store(self):
        # 3.3.2.3.3: an expired retained message is not sent, and it need not be kept: the
        # subscription that meets it removes it from the store.
        pub = self.raw5()
        pub.publish_acked("mx/a", b"short", 1, retain=True,
                          properties=props((mqtt5.MESSAGE_EXPIRY, 1)))
        # The count is taken at the start of a round, before the round's own $SYS topics are
        # stored: two rounds give a settled value.
        time.sleep(2.3)
        with_it = self.retained_count()
        sub = self.raw5()
        sub.subscribe([("mx/#", 1)])
        self.assertTrue(sub.silent_for(0.3))
        time.sleep(2.3)
        self.assertEqual(self.retained_count(), with_it - 1)
