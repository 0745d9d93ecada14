"""Retained messages: stored, replaced, deleted by an empty payload, sent to new subscriptions
with RETAIN set (through exact filters, '+' and '#'), RETAIN cleared on live deliveries, and
the broker with `retain_available false`. Statement ids are MQTT 3.1.1's ([MQTT-3.3.1-5] to
[MQTT-3.3.1-12]).
"""

import unittest

from harness import CONNACK, BrokerTestCase, encode_connect, unique_id


class RetainTest(BrokerTestCase):
    def retained_for(self, flt, n, qos=1):
        """Subscribes a new client to `flt`; returns the n messages that arrive for it."""
        c = self.client()
        got = self.collect(c, flt, qos)
        msgs = self.wait_messages(got, n) if n else []
        self.assert_no_messages(got, 0.2, expected=n)
        return msgs

    def test_stored_and_sent_on_subscribe_with_retain_flag(self):
        # [MQTT-3.3.1-5] stored; [MQTT-3.3.1-6] sent to a new subscription; [MQTT-3.3.1-8]
        # with RETAIN 1.
        pub = self.client()
        self.publish(pub, "ret/a", b"kept", 1, retain=True)
        pub.disconnect()  # the retained message outlives its publisher [MQTT-3.1.2-7]
        (m,) = self.retained_for("ret/a", 1)
        self.assertEqual((m.topic, m.payload, m.retain), ("ret/a", b"kept", True))

    def test_replaced(self):
        pub = self.client()
        self.publish(pub, "ret/r", b"first", 1, retain=True)
        self.publish(pub, "ret/r", b"second", 1, retain=True)
        (m,) = self.retained_for("ret/r", 1)
        self.assertEqual(m.payload, b"second")

    def test_qos0_retained_replaces(self):
        # [MQTT-3.3.1-7]: a QoS 0 retained message replaces the stored one too.
        pub = self.client()
        self.publish(pub, "ret/q0", b"q1-version", 1, retain=True)
        self.publish(pub, "ret/q0", b"q0-version", 0, retain=True)
        # A connection's packets are handled in order: once this PUBACK is back, the QoS 0
        # message before it has been handled too.
        self.publish(pub, "ret/q0-sync", b"", 1)
        (m,) = self.retained_for("ret/q0", 1)
        self.assertEqual((m.payload, m.qos), (b"q0-version", 0))

    def test_non_retained_publish_leaves_retained_alone(self):
        # [MQTT-3.3.1-12]: RETAIN 0 neither stores nor replaces nor removes.
        pub = self.client()
        self.publish(pub, "ret/n", b"kept", 1, retain=True)
        self.publish(pub, "ret/n", b"live", 1, retain=False)
        self.publish(pub, "ret/n", b"", 1, retain=False)
        (m,) = self.retained_for("ret/n", 1)
        self.assertEqual(m.payload, b"kept")
        self.retained_for("ret/never", 0)

    def test_deleted_by_empty_retained_payload(self):
        # [MQTT-3.3.1-10]: a zero-byte retained PUBLISH removes the retained message and is
        # delivered as normal; [MQTT-3.3.1-11] it is not stored itself.
        live = self.client()
        live_got = self.collect(live, "ret/d", 1)
        pub = self.client()
        self.publish(pub, "ret/d", b"doomed", 1, retain=True)
        self.publish(pub, "ret/d", b"", 1, retain=True)
        msgs = self.wait_messages(live_got, 2)
        self.assertEqual([(m.payload, m.retain) for m in msgs], [(b"doomed", False), (b"", False)])
        self.retained_for("ret/d", 0)
        self.retained_for("ret/#", 0)

    def test_deleting_unknown_retained_is_harmless(self):
        pub = self.client()
        self.publish(pub, "ret/none", b"", 2, retain=True)
        self.retained_for("ret/none", 0)
        self.assert_broker_works()

    def test_live_delivery_clears_retain_flag(self):
        # [MQTT-3.3.1-9]: established subscriptions get RETAIN 0.
        r = self.raw_connected()
        r.subscribe([("ret/live", 2)])
        pub = self.client()
        self.publish(pub, "ret/live", b"now", 2, retain=True)
        (p,) = r.recv_publishes(1)
        self.assertEqual((p.payload, p.retain), (b"now", False))
        # A new subscription of the same filter re-sends it with RETAIN 1 [MQTT-3.8.4-3].
        r.subscribe([("ret/live", 2)])
        (p,) = r.recv_publishes(1)
        self.assertEqual((p.payload, p.retain), (b"now", True))

    def test_through_wildcards(self):
        pub = self.client()
        topics = {"ret/w/a": b"A", "ret/w/b": b"B", "ret/w/b/deep": b"deep", "ret/x": b"X"}
        for t, payload in topics.items():
            self.publish(pub, t, payload, 1, retain=True)
        self.publish(pub, "ret/w/b", b"B2", 0, retain=True)
        self.publish(pub, "ret/sync", b"", 1)  # in-order: the QoS 0 message is handled
        expected = {"ret/w/a": b"A", "ret/w/b": b"B2", "ret/w/b/deep": b"deep"}
        msgs = self.retained_for("ret/w/#", 3)
        self.assertEqual({m.topic: m.payload for m in msgs}, expected)
        self.assertTrue(all(m.retain for m in msgs))
        msgs = self.retained_for("ret/w/+", 2)
        self.assertEqual({m.topic: m.payload for m in msgs},
                         {"ret/w/a": b"A", "ret/w/b": b"B2"})
        self.assertTrue(all(m.retain for m in msgs))
        msgs = self.retained_for("+/+/b/#", 2)
        self.assertEqual({m.topic for m in msgs}, {"ret/w/b", "ret/w/b/deep"})
        # '#' matches all of them (and nothing starting with '$').
        self.publish(pub, "$ret/hidden", b"h", 1, retain=True)
        msgs = self.retained_for("#", 4)
        self.assertEqual({m.topic for m in msgs}, set(topics))

    def test_retained_qos_is_min_of_stored_and_granted(self):
        # The server stores the QoS with the message [MQTT-3.3.1-5] and sends it at
        # min(stored, granted) [MQTT-3.8.4-6].
        pub = self.client()
        self.publish(pub, "ret/q/1", b"one", 1, retain=True)
        self.publish(pub, "ret/q/2", b"two", 2, retain=True)
        for granted in (0, 1, 2):
            with self.subTest(granted=granted):
                msgs = self.retained_for("ret/q/+", 2, qos=granted)
                self.assertEqual({m.payload: m.qos for m in msgs},
                                 {b"one": min(1, granted), b"two": min(2, granted)})

    def test_raw_subscriber_sees_retain_bit(self):
        pub = self.raw_connected()
        pub.publish_acked("ret/raw", b"bits", 1, retain=True)
        sub = self.raw_connected()
        sub.subscribe([("ret/raw", 1)])
        (p,) = sub.recv_publishes(1)
        self.assertEqual((p.retain, p.dup, p.qos, p.payload), (True, False, 1, b"bits"))

    def test_survives_clean_session_end(self):
        # [MQTT-3.1.2-7]: retained messages are not session state.
        cid = unique_id()
        pub = self.client(cid, clean_session=False)
        self.publish(pub, "ret/sess", b"stays", 1, retain=True)
        pub.disconnect()
        self.wait_for(pub.disconnected.is_set)
        again = self.client(cid, clean_session=True)
        again.disconnect()
        (m,) = self.retained_for("ret/sess", 1)
        self.assertEqual(m.payload, b"stays")


class RetainUnavailableTest(BrokerTestCase):
    config_lines = ("retain_available false",)

    def test_retained_publish_closes_connection(self):
        # MQTT 5 (3.3.1.3): a retained PUBLISH to a server without retain support is a
        # protocol error; Starling and Mosquitto close the connection at any protocol level.
        sub = self.client()
        got = self.collect(sub, "nr/#", 1)
        r = self.raw_connected()
        r.publish("nr/t", b"retained", 1, retain=True)
        packets = self.assert_closed(r)
        self.assertEqual(packets, [])
        # Nothing was delivered or stored.
        late = self.client()
        late_got = self.collect(late, "nr/#", 1)
        self.assert_no_messages(got, 0.2)
        self.assert_no_messages(late_got, 0.0)

    def test_non_retained_publish_still_works(self):
        sub = self.client()
        got = self.collect(sub, "nr/#", 1)
        pub = self.client()
        self.publish(pub, "nr/t", b"plain", 1)
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"plain")

    def test_retained_will_is_refused(self):
        # A will that would have to be retained cannot be accepted (MQTT 5 3.1.2.7); at 3.1.1
        # the server closes without accepting (or after a refusing CONNACK).
        r = self.raw()
        r.send(encode_connect(unique_id(), will=("nr/will", b"w", 0, True)))
        got = self.assert_closed(r)
        self.assertFalse([p for p in got if p.type == CONNACK and p.rc == 0], got)


if __name__ == "__main__":
    unittest.main()
