"""MQTT 5 acknowledgements and subscriptions: reason codes on PUBACK, PUBREC, SUBACK and
UNSUBACK, the subscription options No Local, Retain As Published and Retain Handling, and
Subscription Identifiers on the messages they match. Statement ids are MQTT 5.0's.
"""

import unittest

from harness import (MOSQUITTO_PUB, MOSQUITTO_SUB, MQTT5, PUBACK, PUBCOMP, PUBLISH, PUBREC,
                     PUBREL, BrokerTestCase, PacketTypes, SubscribeOptions, client_cmd,
                     encode_ack, encode_subscribe, mqtt5, pprops, props, starling_only,
                     sub_options, unique_id)


def sub_id(n):
    return props((mqtt5.SUBSCRIPTION_ID, n))


class AckReasonCodeTest(BrokerTestCase):
    def test_puback_no_matching_subscribers(self):
        # 3.4.2.1: PUBACK 0x10 (No matching subscribers) when nobody subscribes; 0x00 once
        # somebody does.
        pub = self.raw5()
        pub.publish_acked("ack/none", b"x", 1)
        self.assertEqual(pub.last_ack.rc, 0x10)
        sub = self.raw5()
        sub.subscribe([("ack/#", 0)])
        pub.publish_acked("ack/none", b"x", 1)
        self.assertEqual(pub.last_ack.rc, 0x00)

    def test_pubrec_no_matching_subscribers(self):
        # 3.5.2.1: PUBREC may say 0x10 too, or 0x00; the flow completes either way.
        pub = self.raw5()
        pub.publish_acked("ack/none2", b"x", 2)
        self.assertIn(pub.last_ack.rc, (0x00, 0x10))

    def test_paho_puback_reason(self):
        # paho completes a publish whatever the reason code; the message is still accepted.
        pub = self.client5()
        self.publish(pub, "ack/paho", b"x", 1)

    def test_pubcomp_for_unknown_packet_identifier(self):
        # 3.7.2.1: a PUBREL for an id the server does not hold gets PUBCOMP 0x92 (Packet
        # Identifier not found) or, as in MQTT 3.1.1, 0x00.
        r = self.raw5()
        r.send(encode_ack(PUBREL, 77))
        p = r.expect(PUBCOMP)
        self.assertEqual(p.pid, 77)
        self.assertIn(p.rc, (0x00, 0x92))

    def test_error_acks_from_the_client_end_the_flow(self):
        # [MQTT-4.3.3-4]: no PUBREL after a PUBREC of 0x80 or more; [MQTT-4.4.0-2]: a PUBLISH
        # answered with such a PUBACK or PUBREC counts as acknowledged and is not re-sent,
        # not even to the resumed session.
        cid = unique_id()
        cprops = props((mqtt5.SESSION_EXPIRY, 60))
        sub = self.raw5(cid, properties=cprops)
        sub.subscribe([("ea/1", 1), ("ea/2", 2)])
        pub = self.raw5()
        pub.publish_acked("ea/1", b"one", 1)
        pub.publish_acked("ea/2", b"two", 2)
        for p in sub.recv_publishes(2, ack=False):
            sub.send(encode_ack(PUBACK if p.qos == 1 else PUBREC, p.pid, rc=0x80))
        self.assertEqual(sub.drain(0.4), [], "the server went on after an error ack")
        sub.ping()
        sub.close()
        sub = self.raw5(cid, clean_start=False, properties=cprops)
        self.assertTrue(sub.connack.session_present)
        self.assertTrue(sub.silent_for(0.4), "a refused message was sent again")

    def test_suback_grants_requested_qos_in_order(self):
        # [MQTT-3.8.4-7], [MQTT-3.9.3-1]: one code per filter, in order, the granted QoS.
        r = self.raw5()
        codes = r.subscribe([("s/0", 0), ("s/1", 1), ("s/2", 2), ("s/+/x", sub_options(1)),
                             ("#", 2), ("$share/g/s/#", 1)])
        # A shared subscription is granted like any other: no 0x9E (Shared Subscriptions not
        # supported), Starling supports them.
        self.assertEqual(codes, [0, 1, 2, 1, 2, 1])

    def test_suback_for_an_invalid_filter(self):
        # An invalid filter ([MQTT-4.7.1-1], [MQTT-4.7.1-2]): SUBACK 0x8F (Topic Filter
        # invalid) for that filter alone, or the whole SUBSCRIBE treated as a Malformed Packet
        # or Protocol Error (DISCONNECT 0x81/0x82).
        for flt in ("a/#/b", "a+", "a/b#", ""):
            with self.subTest(filter=flt):
                r = self.raw5()
                r.send(encode_subscribe(5, [("ok/t", 1), (flt, 1)], version=MQTT5))
                p = r.recv(3)
                if p.type == PUBLISH:
                    self.fail("unexpected %r" % p)
                if p.name == "SUBACK":
                    self.assertEqual(p.codes, [1, 0x8F])
                else:
                    self.assertEqual(p.name, "DISCONNECT", p)
                    self.assertIn(p.rc, (0x81, 0x82), p)
                    self.assert_closed(r)

    def test_unsuback_reason_codes(self):
        # 3.11.3: 0x00 for a subscription that existed, 0x11 (No subscription existed)
        # otherwise, in the order of the filters [MQTT-3.11.3-1].
        r = self.raw5()
        r.subscribe([("u/a", 1), ("u/+", 0)])
        p = r.unsubscribe(["u/b", "u/a", "u/+", "u/a"])
        self.assertEqual(p.codes, [0x11, 0x00, 0x00, 0x11])

    def test_paho_unsuback_reason_codes(self):
        c = self.client5()
        self.subscribe(c, "pu/a", 1)
        self.assertEqual(self.unsubscribe(c, ["pu/a", "pu/none"]), [0x00, 0x11])

    def test_paho_suback_reason_codes(self):
        c = self.client5()
        self.assertEqual(self.subscribe(c, [("ps/a", 2), ("ps/b", 0)]), [2, 0])


class SubscriptionOptionsTest(BrokerTestCase):
    def test_no_local(self):
        # [MQTT-3.8.3-3]: No Local 1 -> the connection's own messages are not forwarded to it;
        # another connection's are, and other subscribers get the own messages.
        me = self.raw5()
        me.subscribe([("nl/#", sub_options(1, no_local=True))])
        other = self.raw5()
        other.subscribe([("nl/#", 1)])
        me.publish_acked("nl/mine", b"from-me", 1)
        other.publish_acked("nl/theirs", b"from-other", 1)
        self.assertEqual([p.payload for p in me.recv_publishes(1)], [b"from-other"])
        self.assertTrue(me.silent_for(0.3))
        self.assertEqual(sorted(p.payload for p in other.recv_publishes(2)),
                         [b"from-me", b"from-other"])

    def test_no_local_with_overlapping_subscription(self):
        # No Local is per subscription: a second, ordinary subscription matching the same
        # topic still delivers the own message (once).
        me = self.raw5()
        me.subscribe([("nlo/#", sub_options(1, no_local=True)), ("nlo/t", 1)])
        me.publish_acked("nlo/t", b"own", 1)
        self.assertEqual([p.payload for p in me.recv_publishes(1)], [b"own"])

    def test_no_local_paho(self):
        c = self.client5()
        got = self.collect(c, "nlp/#", options=SubscribeOptions(qos=1, noLocal=True))
        self.publish(c, "nlp/t", b"own", 1)
        other = self.client5()
        self.publish(other, "nlp/t", b"theirs", 1)
        self.assertEqual([m.payload for m in self.wait_messages(got, 1)], [b"theirs"])
        self.assert_no_messages(got, 0.3, expected=1)

    def test_retain_as_published(self):
        # [MQTT-3.3.1-12]: RAP 0 -> RETAIN 0 on forwarded messages; [MQTT-3.3.1-13]: RAP 1 ->
        # RETAIN as published.
        plain, rap = self.raw5(), self.raw5()
        plain.subscribe([("rap/#", 1)])
        rap.subscribe([("rap/#", sub_options(1, retain_as_published=True))])
        pub = self.raw5()
        pub.publish_acked("rap/t", b"r", 1, retain=True)
        pub.publish_acked("rap/t", b"n", 1, retain=False)
        self.assertEqual([(p.payload, p.retain) for p in plain.recv_publishes(2)],
                         [(b"r", False), (b"n", False)])
        self.assertEqual([(p.payload, p.retain) for p in rap.recv_publishes(2)],
                         [(b"r", True), (b"n", False)])

    def test_retained_sent_on_subscribe_has_retain_1_whatever_rap(self):
        # 3.3.1.3: retained messages sent because of a new subscription have RETAIN 1.
        self.raw5().publish_acked("rr/t", b"stored", 1, retain=True)
        for rap in (False, True):
            with self.subTest(retain_as_published=rap):
                r = self.raw5()
                r.subscribe([("rr/#", sub_options(1, retain_as_published=rap))])
                (p,) = r.recv_publishes(1)
                self.assertEqual((p.payload, p.retain), (b"stored", True))

    def retain_handling(self, handling):
        """Payloads of retained messages sent on a first and on a repeated SUBSCRIBE."""
        r = self.raw5()
        opts = sub_options(1, retain_handling=handling)
        r.subscribe([("rh/#", opts)])
        first = [p.payload for p in r.drain(0.4, ack=True)]
        r.subscribe([("rh/#", opts)])
        again = [p.payload for p in r.drain(0.4, ack=True)]
        return first, again

    def test_retain_handling(self):
        # [MQTT-3.3.1-9]: 0 -> sent on every SUBSCRIBE (also re-sent on a replacing one,
        # [MQTT-3.8.4-4]); [MQTT-3.3.1-10]: 1 -> only if the subscription did not exist;
        # [MQTT-3.3.1-11]: 2 -> never.
        self.raw5().publish_acked("rh/t", b"kept", 1, retain=True)
        self.assertEqual(self.retain_handling(0), ([b"kept"], [b"kept"]))
        self.assertEqual(self.retain_handling(1), ([b"kept"], []))
        self.assertEqual(self.retain_handling(2), ([], []))

    def test_retain_handling_1_after_unsubscribe(self):
        # After UNSUBSCRIBE the subscription no longer exists: a new one gets the retained.
        self.raw5().publish_acked("rhu/t", b"kept", 1, retain=True)
        r = self.raw5()
        opts = sub_options(1, retain_handling=1)
        r.subscribe([("rhu/#", opts)])
        self.assertEqual(len(r.drain(0.3, ack=True)), 1)
        r.unsubscribe(["rhu/#"])
        r.subscribe([("rhu/#", opts)])
        self.assertEqual([p.payload for p in r.drain(0.3, ack=True)], [b"kept"])

    def test_retain_handling_2_still_gets_live_messages(self):
        r = self.raw5()
        self.raw5().publish_acked("rh2/t", b"old", 1, retain=True)
        r.subscribe([("rh2/#", sub_options(1, retain_handling=2))])
        self.raw5().publish_acked("rh2/t", b"new", 1, retain=True)
        self.assertEqual([p.payload for p in r.recv_publishes(1)], [b"new"])
        self.assertTrue(r.silent_for(0.3))


class SubscriptionIdentifierTest(BrokerTestCase):
    def test_identifier_on_matching_messages(self):
        # 3.8.2.1.2 and [MQTT-3.3.4-3]: a message matching a subscription made with an
        # identifier carries it; one matching only a subscription without does not.
        r = self.raw5()
        r.subscribe([("sid/a/#", 1)], properties=sub_id(7))
        r.subscribe([("sid/b/#", 1)])
        pub = self.raw5()
        pub.publish_acked("sid/a/x", b"a", 1)
        pub.publish_acked("sid/b/x", b"b", 1)
        a, b = r.recv_publishes(2)
        self.assertEqual((a.payload, a.props.all(mqtt5.SUBSCRIPTION_ID)), (b"a", [7]))
        self.assertEqual((b.payload, b.props.all(mqtt5.SUBSCRIPTION_ID)), (b"b", []))

    def test_large_identifier(self):
        # The identifier is a Variable Byte Integer up to 268,435,455.
        r = self.raw5()
        r.subscribe([("sidl/#", 1)], properties=sub_id(268435455))
        self.raw5().publish_acked("sidl/t", b"x", 1)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.props.all(mqtt5.SUBSCRIPTION_ID), [268435455])

    def overlapping(self):
        r = self.raw5()
        r.subscribe([("sio/#", 1)], properties=sub_id(1))
        r.subscribe([("sio/+", 2)], properties=sub_id(2))
        r.subscribe([("sio/x", 0)])
        self.raw5().publish_acked("sio/x", b"both", 2)
        return r.drain(0.5, ack=True)

    def test_overlapping_subscriptions_carry_their_identifiers(self):
        # [MQTT-3.3.4-3]: the identifiers of every matching subscription reach the client, in
        # one copy [MQTT-3.3.4-4] or one per subscription [MQTT-3.3.4-5].
        got = self.overlapping()
        self.assertTrue(got)
        ids = [i for p in got for i in p.props.all(mqtt5.SUBSCRIPTION_ID)]
        self.assertEqual(sorted(ids), [1, 2])
        self.assertEqual({p.payload for p in got}, {b"both"})

    @starling_only("Mosquitto 2.0.11 sends one copy per matching subscription (allowed by "
                   "[MQTT-3.3.4-5]); Starling sends one copy per session")
    def test_one_copy_carries_every_identifier(self):
        # [MQTT-3.3.4-4]: a single copy holds the identifiers of all matching subscriptions
        # (in any order), at the highest QoS of them [MQTT-3.3.4-2].
        (p,) = self.overlapping()
        self.assertEqual(sorted(p.props.all(mqtt5.SUBSCRIPTION_ID)), [1, 2])
        self.assertEqual(p.qos, 2)

    def test_resubscribe_replaces_the_identifier(self):
        # [MQTT-3.8.4-3]: a SUBSCRIBE for an existing filter replaces the subscription, its
        # identifier included; without one, the identifier is gone.
        r = self.raw5()
        pub = self.raw5()
        r.subscribe([("sir/#", 1)], properties=sub_id(3))
        r.subscribe([("sir/#", 1)], properties=sub_id(4))
        pub.publish_acked("sir/t", b"4", 1)
        r.subscribe([("sir/#", 1)])
        pub.publish_acked("sir/t", b"none", 1)
        a, b = r.recv_publishes(2)
        self.assertEqual(a.props.all(mqtt5.SUBSCRIPTION_ID), [4])
        self.assertEqual(b.props.all(mqtt5.SUBSCRIPTION_ID), [])

    def test_identifier_on_retained_messages(self):
        self.raw5().publish_acked("sirt/t", b"kept", 1, retain=True)
        r = self.raw5()
        r.subscribe([("sirt/#", 1)], properties=sub_id(11))
        (p,) = r.recv_publishes(1)
        self.assertEqual((p.retain, p.props.all(mqtt5.SUBSCRIPTION_ID)), (True, [11]))

    def test_identifier_kept_with_the_session(self):
        # Subscription identifiers are part of the session state: queued messages for a
        # resumed session carry them.
        cid = unique_id()
        cprops = props((mqtt5.SESSION_EXPIRY, 60))
        r = self.raw5(cid, properties=cprops)
        r.subscribe([("sis/#", 1)], properties=sub_id(21))
        r.disconnect()
        self.raw5().publish_acked("sis/t", b"queued", 1)
        r = self.raw5(cid, clean_start=False, properties=cprops)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.props.all(mqtt5.SUBSCRIPTION_ID), [21])

    def test_paho_subscription_identifier(self):
        c = self.client5()
        got = self.collect(c, "sip/#", 1,
                           properties=pprops(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=99))
        self.publish(self.client5(), "sip/t", b"x", 1)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual(m.props.SubscriptionIdentifier, [99])

    def test_mosquitto_sub_subscription_identifier(self):
        # mosquitto_sub -D SUBSCRIBE subscription-identifier, printed with %S.
        s = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-V", "mqttv5", "-t", "sim/#",
                                  "-D", "SUBSCRIBE", "subscription-identifier", "42",
                                  "-C", "1", "-d", "-F", "MSG %t|%S|%p"))
        self.assertIsNotNone(s.wait_line(lambda l: "SUBACK" in l), s.output())
        self.spawn(client_cmd(MOSQUITTO_PUB, self.broker, "-V", "mqttv5", "-t", "sim/t",
                              "-m", "hello", "-q", "1"))
        self.assertIsNotNone(s.wait_line(lambda l: l.startswith("MSG ")), s.output())
        self.assertIn("MSG sim/t|42|hello", s.lines())


if __name__ == "__main__":
    unittest.main()
