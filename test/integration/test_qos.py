"""QoS 0, 1 and 2 in both directions: the acknowledgement flows, the delivered QoS, the
outbound inflight window, redelivery with DUP after a reconnect, and exactly-once delivery of a
QoS 2 message whose publisher reconnects half-way. Raw clients watch every packet; paho checks
the QoS matrix. Statement ids are MQTT 3.1.1's.
"""

import unittest

from harness import (PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, BrokerTestCase,
                     encode_ack, starling_only, unique_id)


class QosFlowTest(BrokerTestCase):
    def test_qos0_both_directions(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("q0/t", 0)]), [0])
        pub = self.raw_connected()
        pub.publish("q0/t", b"zero", 0)
        # QoS 0 is never acknowledged: the next packet is the PINGRESP.
        self.assertEqual(pub.ping().type, PINGRESP)
        p = sub.expect(PUBLISH)
        self.assertEqual((p.topic, p.payload, p.qos, p.dup, p.pid), ("q0/t", b"zero", 0, False, None))

    def test_qos1_both_directions(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("q1/t", 1)]), [1])
        pub = self.raw_connected()
        pid = pub.publish("q1/t", b"one", 1, pid=1234)
        ack = pub.expect(PUBACK)  # [MQTT-2.3.1-6] same packet id
        self.assertEqual((ack.pid, ack.flags, len(ack.body)), (pid, 0, 2))
        p = sub.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup), (b"one", 1, False))
        self.assertNotEqual(p.pid, 0)  # [MQTT-2.3.1-1]
        sub.send(encode_ack(PUBACK, p.pid))
        self.assertEqual(sub.ping().type, PINGRESP)  # acked: nothing is resent

    def test_qos2_both_directions(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("q2/t", 2)]), [2])
        pub = self.raw_connected()
        pub.publish("q2/t", b"two", 2, pid=77)
        rec = pub.expect(PUBREC)
        self.assertEqual((rec.pid, rec.flags), (77, 0))
        pub.send(encode_ack(PUBREL, 77))
        comp = pub.expect(PUBCOMP)
        self.assertEqual((comp.pid, comp.flags), (77, 0))
        p = sub.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup), (b"two", 2, False))
        sub.send(encode_ack(PUBREC, p.pid))
        rel = sub.expect(PUBREL)
        self.assertEqual((rel.pid, rel.flags), (p.pid, 0x02))  # [MQTT-3.6.1-1]
        sub.send(encode_ack(PUBCOMP, p.pid))
        self.assertEqual(sub.ping().type, PINGRESP)
        self.assertTrue(sub.silent_for(0.2))

    def repeat_qos2_publish(self, topic, copies):
        sub = self.client()
        got = self.collect(sub, topic, 2)
        pub = self.raw_connected()
        pub.publish(topic, b"once", 2, pid=9)
        self.assertEqual(pub.expect(PUBREC).pid, 9)
        for _ in range(copies):
            pub.publish(topic, b"once", 2, pid=9, dup=True)
            self.assertEqual(pub.expect(PUBREC).pid, 9)
        pub.send(encode_ack(PUBREL, 9))
        self.assertEqual(pub.expect(PUBCOMP).pid, 9)
        self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.3, expected=1)

    def test_qos2_repeated_publish_delivered_once(self):
        # [MQTT-4.3.3-2]: until the PUBREL the receiver answers a PUBLISH with the same id
        # with PUBREC and must not deliver it again.
        self.repeat_qos2_publish("q2dup/t", 1)

    @starling_only("Mosquitto 2.0.11 closes the connection at the second re-sent QoS 2 PUBLISH "
                   "before PUBREL ([MQTT-4.3.3-2] requires a PUBREC for each)")
    def test_qos2_publish_repeated_many_times_delivered_once(self):
        self.repeat_qos2_publish("q2dup3/t", 3)

    def test_qos1_repeated_publish_is_acked_each_time(self):
        # QoS 1 is at-least-once: each copy is acknowledged (and may be delivered again).
        sub = self.client()
        got = self.collect(sub, "q1dup/t", 1)
        pub = self.raw_connected()
        pub.publish("q1dup/t", b"again", 1, pid=5)
        pub.publish("q1dup/t", b"again", 1, pid=5, dup=True)
        self.assertEqual([pub.expect(PUBACK).pid for _ in range(2)], [5, 5])
        self.assertGreaterEqual(len(self.wait_messages(got, 1)), 1)

    def test_delivered_qos_is_min_of_published_and_granted(self):
        # [MQTT-3.8.4-6]: publish at 2 to a QoS 1 subscription and the reverse, and the rest.
        subs = {}
        for granted in (0, 1, 2):
            c = self.client()
            subs[granted] = self.collect(c, "min/t", granted)
        pub = self.client()
        for published in (0, 1, 2):
            self.publish(pub, "min/t", b"p%d" % published, published)
        for granted, got in subs.items():
            msgs = self.wait_messages(got, 3)
            by_payload = {m.payload: m.qos for m in msgs}
            self.assertEqual(by_payload, {b"p%d" % q: min(q, granted) for q in (0, 1, 2)},
                             "subscription at QoS %d" % granted)

    def test_raw_qos_downgrade(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("down/t", 1)]), [1])
        pub = self.raw_connected()
        pub.publish_acked("down/t", b"from2", 2)
        (p,) = sub.recv_publishes(1)
        self.assertEqual((p.qos, p.payload), (1, b"from2"))
        sub2 = self.raw_connected()
        self.assertEqual(sub2.subscribe([("up/t", 2)]), [2])
        pub.publish_acked("up/t", b"from1", 1)
        (p,) = sub2.recv_publishes(1)
        self.assertEqual((p.qos, p.payload), (1, b"from1"))

    def test_inflight_ids_are_distinct_and_order_is_kept(self):
        # [MQTT-2.3.1-1]/[MQTT-2.3.1-4]: unacknowledged messages to one client carry distinct
        # non-zero ids; [MQTT-4.6.0-6]: a publisher's messages arrive in order.
        sub = self.raw_connected()
        sub.subscribe([("order/t", 1)])
        pub = self.client()
        for i in range(10):
            pub.publish("order/t", b"%d" % i, 1)
        got = sub.recv_publishes(10, ack=False)
        self.assertEqual([p.payload for p in got], [b"%d" % i for i in range(10)])
        pids = [p.pid for p in got]
        self.assertEqual(len(set(pids)), 10)
        self.assertNotIn(0, pids)
        for p in got:
            sub.ack(p)
        # Many more, acknowledged as they come, still in order.
        for i in range(200):
            pub.publish("order/t", b"m%d" % i, 1)
        got = sub.recv_publishes(200)
        self.assertEqual([p.payload for p in got], [b"m%d" % i for i in range(200)])


class InflightWindowTest(BrokerTestCase):
    config_lines = ("max_inflight_messages 2",)

    def test_unacked_subscriber_gets_only_window(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("win/t", 1)]), [1])
        pub = self.raw_connected()
        for i in range(6):
            pub.publish_acked("win/t", b"%d" % i, 1)
        first = sub.recv_publishes(2, ack=False)
        self.assertEqual([p.payload for p in first], [b"0", b"1"])
        self.assertTrue(sub.silent_for(0.4), "more than 2 unacknowledged QoS 1 messages sent")
        # Acknowledging releases the rest, in order.
        for p in first:
            sub.ack(p)
        rest = sub.recv_publishes(4)
        self.assertEqual([p.payload for p in rest], [b"2", b"3", b"4", b"5"])

    @starling_only("Mosquitto 2.0.11 sends two more messages after the first PUBACK, leaving "
                   "3 unacknowledged with max_inflight_messages 2")
    def test_each_ack_releases_one_message(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("win1/t", 1)]), [1])
        pub = self.raw_connected()
        for i in range(6):
            pub.publish_acked("win1/t", b"%d" % i, 1)
        first = sub.recv_publishes(2, ack=False)
        self.assertTrue(sub.silent_for(0.3))
        sub.ack(first[0])
        (third,) = sub.recv_publishes(1, ack=False)
        self.assertEqual(third.payload, b"2")
        self.assertTrue(sub.silent_for(0.3), "window exceeded after one PUBACK")
        sub.ack(first[1])
        sub.ack(third)
        rest = sub.recv_publishes(3)
        self.assertEqual([p.payload for p in rest], [b"3", b"4", b"5"])

    def test_qos2_window(self):
        sub = self.raw_connected()
        self.assertEqual(sub.subscribe([("win2/t", 2)]), [2])
        pub = self.client()
        for i in range(4):
            self.publish(pub, "win2/t", b"%d" % i, 2)
        first = sub.recv_publishes(2, ack=False)
        self.assertTrue(sub.silent_for(0.3))
        # A QoS 2 message stays inflight until PUBCOMP, not just PUBREC.
        sub.send(encode_ack(PUBREC, first[0].pid))
        self.assertEqual(sub.expect(PUBREL).pid, first[0].pid)
        self.assertTrue(sub.silent_for(0.3))
        sub.send(encode_ack(PUBCOMP, first[0].pid))
        (third,) = sub.recv_publishes(1, ack=False)
        self.assertEqual(third.payload, b"2")

    def test_qos0_not_limited_by_window(self):
        sub = self.raw_connected()
        sub.subscribe([("win0/t", 1)])
        pub = self.client()
        for i in range(3):
            self.publish(pub, "win0/t", b"q1-%d" % i, 1)
        sub.recv_publishes(2, ack=False)
        for i in range(5):
            self.publish(pub, "win0/t", b"q0-%d" % i, 0)
        got = sub.recv_publishes(5, ack=False)
        self.assertEqual([p.payload for p in got], [b"q0-%d" % i for i in range(5)])


class RedeliveryTest(BrokerTestCase):
    config_lines = ("max_inflight_messages 3",)

    def reconnect(self, cid):
        r = self.raw()
        ca = r.connect(cid, clean_session=False)
        self.assertEqual((ca.rc, ca.session_present), (0, True))
        return r

    def test_unacked_qos1_resent_with_dup_on_reconnect(self):
        # [MQTT-4.4.0-1]: on reconnect with CleanSession 0 the server re-sends unacknowledged
        # PUBLISH packets with their original ids, DUP set [MQTT-3.3.1-1], in order.
        cid = unique_id("redeliver")
        sub = self.raw_connected(cid, clean_session=False)
        sub.subscribe([("redo/t", 1)])
        pub = self.raw_connected()
        for i in range(3):
            pub.publish_acked("redo/t", b"%d" % i, 1)
        first = sub.recv_publishes(3, ack=False)
        sub.ack(first[0])
        sub.ping()  # the PUBACK is processed before the connection drops
        sub.close()
        sub = self.reconnect(cid)
        again = sub.recv_publishes(2, ack=False)
        self.assertEqual([(p.payload, p.pid, p.dup, p.qos) for p in again],
                         [(p.payload, p.pid, True, 1) for p in first[1:]])
        for p in again:
            sub.ack(p)
        self.assertTrue(sub.silent_for(0.3))

    def test_unacked_qos2_resent_on_reconnect(self):
        # Without PUBREC the PUBLISH is re-sent with DUP; after PUBREC the PUBREL is re-sent.
        cid = unique_id("redeliver2")
        sub = self.raw_connected(cid, clean_session=False)
        sub.subscribe([("redo2/t", 2)])
        pub = self.client()
        self.publish(pub, "redo2/t", b"a", 2)
        self.publish(pub, "redo2/t", b"b", 2)
        a, b = sub.recv_publishes(2, ack=False)
        sub.send(encode_ack(PUBREC, a.pid))
        self.assertEqual(sub.expect(PUBREL).pid, a.pid)
        sub.close()
        sub = self.reconnect(cid)
        got = {p.type: p for p in (sub.recv(), sub.recv())}
        self.assertEqual(sorted(got), [PUBLISH, PUBREL], got)
        rel, pb = got[PUBREL], got[PUBLISH]
        self.assertEqual((rel.type, rel.pid, rel.flags), (PUBREL, a.pid, 0x02))
        self.assertEqual((pb.type, pb.pid, pb.payload, pb.dup, pb.qos), (PUBLISH, b.pid, b"b", True, 2))
        sub.send(encode_ack(PUBCOMP, a.pid))
        sub.send(encode_ack(PUBREC, b.pid))
        self.assertEqual(sub.expect(PUBREL).pid, b.pid)
        sub.send(encode_ack(PUBCOMP, b.pid))
        self.assertTrue(sub.silent_for(0.3))

    def test_first_transmission_after_reconnect_has_no_dup(self):
        # [MQTT-3.3.1-3]: DUP marks a retransmission only; queued messages never sent before
        # go out with DUP 0 after the resent ones.
        cid = unique_id("firstsend")
        sub = self.raw_connected(cid, clean_session=False)
        sub.subscribe([("fresh/t", 1)])
        pub = self.raw_connected()
        for i in range(5):  # 3 go out (the window), 2 wait in the queue
            pub.publish_acked("fresh/t", b"%d" % i, 1)
        sent = sub.recv_publishes(3, ack=False)
        sub.close()
        sub = self.reconnect(cid)
        got = sub.recv_publishes(5)
        self.assertEqual([p.payload for p in got], [b"0", b"1", b"2", b"3", b"4"])
        self.assertEqual([p.dup for p in got], [True, True, True, False, False])
        self.assertEqual([p.pid for p in got[:3]], [p.pid for p in sent])


class Qos2PublisherReconnectTest(BrokerTestCase):
    def test_exactly_once_across_publisher_reconnect(self):
        # The publisher gets PUBREC, drops the connection before PUBREL, reconnects with
        # CleanSession 0, re-sends the PUBLISH with DUP and then the PUBREL: the message
        # stays "received" in the session [MQTT-3.1.2-4], [MQTT-4.3.3-2], so it arrives once.
        sub = self.client()
        got = self.collect(sub, "eo/t", 2)
        cid = unique_id("eopub")
        pub = self.raw_connected(cid, clean_session=False)
        pub.publish("eo/t", b"exactly-once", 2, pid=42)
        self.assertEqual(pub.expect(PUBREC).pid, 42)
        pub.close()
        pub = self.raw()
        ca = pub.connect(cid, clean_session=False)
        self.assertEqual((ca.rc, ca.session_present), (0, True))
        pub.publish("eo/t", b"exactly-once", 2, pid=42, dup=True)
        self.assertEqual(pub.expect(PUBREC).pid, 42)
        pub.send(encode_ack(PUBREL, 42))
        self.assertEqual(pub.expect(PUBCOMP).pid, 42)
        msgs = self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.5, expected=1)
        self.assertEqual((msgs[0].payload, msgs[0].qos), (b"exactly-once", 2))

    def test_pubrel_after_reconnect_completes(self):
        # The same without re-sending the PUBLISH: the PUBREL alone completes the flow.
        sub = self.client()
        got = self.collect(sub, "eo2/t", 2)
        cid = unique_id("eopub2")
        pub = self.raw_connected(cid, clean_session=False)
        pub.publish("eo2/t", b"rel-only", 2, pid=43)
        self.assertEqual(pub.expect(PUBREC).pid, 43)
        pub.close()
        pub = self.raw()
        self.assertEqual(pub.connect(cid, clean_session=False).session_present, True)
        pub.send(encode_ack(PUBREL, 43))
        self.assertEqual(pub.expect(PUBCOMP).pid, 43)
        self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.3, expected=1)


if __name__ == "__main__":
    unittest.main()
