"""MQTT 5 flow limits in both directions: Topic Aliases (client to server up to the broker's
Topic Alias Maximum, server to client only when and as far as the client allows), Receive
Maximum (the broker never has more unacknowledged QoS 1/2 PUBLISHes towards a client than the
client's, and disconnects a client that exceeds the broker's with 0x93), and Maximum Packet
Size (a packet too large for a client is dropped for that client; one too large for the broker
gets DISCONNECT 0x95). Statement ids are MQTT 5.0's.
"""

import unittest

from harness import (MQTT5, PUBCOMP, PUBLISH, PUBREC, PUBREL, BrokerTestCase, PacketTypes,
                     encode_ack, encode_publish, mqtt5, pprops, props, starling_only, unique_id,
                     varint)

TOPIC_ALIAS_MAXIMUM = 10  # max_topic_alias's default, as Mosquitto's
RECEIVE_MAXIMUM = 20  # max_inflight_messages in ReceiveMaximumTest's broker


def wire_size(p):
    """The size of a received packet on the wire: fixed header and body."""
    return 1 + len(varint(len(p.body))) + len(p.body)


def alias(n):
    return props((mqtt5.TOPIC_ALIAS, n))


class AliasResolver:
    """The client side of server-to-client Topic Aliases (3.3.2.3.4): resolves each PUBLISH's
    topic, failing on an alias above the client's maximum [MQTT-3.3.2-11] or an empty topic
    with an alias never set."""

    def __init__(self, test, maximum):
        self.test, self.maximum, self.map = test, maximum, {}
        self.aliased = 0  # PUBLISHes that arrived as an empty topic plus an alias

    def topic(self, p):
        a = p.topic_alias
        if a is None:
            self.test.assertNotEqual(p.topic, "", "empty topic without a Topic Alias: %r" % p)
            return p.topic
        self.test.assertTrue(1 <= a <= self.maximum, "Topic Alias %d above %d: %r"
                             % (a, self.maximum, p))
        if p.topic:
            self.map[a] = p.topic
            return p.topic
        self.test.assertIn(a, self.map, "Topic Alias %d used before it was set: %r" % (a, p))
        self.aliased += 1
        return self.map[a]


class InboundTopicAliasTest(BrokerTestCase):
    def setUp(self):
        super().setUp()
        self.sub = self.raw5()
        self.sub.subscribe([("al/#", 1)])

    def test_alias_set_then_used_alone(self):
        # 3.3.2.3.4: a topic with an alias sets the mapping; an empty topic with that alias
        # uses it [MQTT-3.3.2-12]; a new topic with the same alias replaces it.
        pub = self.raw5()
        self.assertEqual(pub.connack.props.get(mqtt5.TOPIC_ALIAS_MAXIMUM), TOPIC_ALIAS_MAXIMUM)
        pub.publish_acked("al/one", b"1", 1, properties=alias(1))
        pub.publish_acked("", b"2", 1, properties=alias(1))
        pub.publish("", b"3", properties=alias(1))
        pub.publish_acked("al/two", b"4", 1, properties=alias(1))
        pub.publish_acked("", b"5", 2, properties=alias(1))
        pub.publish_acked("al/max", b"6", 1, properties=alias(TOPIC_ALIAS_MAXIMUM))
        pub.publish_acked("", b"7", 1, properties=alias(TOPIC_ALIAS_MAXIMUM))
        got = self.sub.recv_publishes(7)
        self.assertEqual([(p.topic, p.payload) for p in got],
                         [("al/one", b"1"), ("al/one", b"2"), ("al/one", b"3"), ("al/two", b"4"),
                          ("al/two", b"5"), ("al/max", b"6"), ("al/max", b"7")])
        # The subscriber allowed no aliases: it gets full topics and no Topic Alias.
        self.assertFalse([p for p in got if mqtt5.TOPIC_ALIAS in p.props])

    def test_aliases_are_per_connection(self):
        # Two publishers' alias 1 name different topics.
        a, b = self.raw5(), self.raw5()
        a.publish_acked("al/a", b"a1", 1, properties=alias(1))
        b.publish_acked("al/b", b"b1", 1, properties=alias(1))
        a.publish_acked("", b"a2", 1, properties=alias(1))
        b.publish_acked("", b"b2", 1, properties=alias(1))
        got = sorted((p.topic, p.payload) for p in self.sub.recv_publishes(4))
        self.assertEqual(got, [("al/a", b"a1"), ("al/a", b"a2"), ("al/b", b"b1"), ("al/b", b"b2")])

    def test_alias_above_maximum_gets_0x94(self):
        # [MQTT-3.2.2-17], [MQTT-3.3.2-9]: above the Topic Alias Maximum -> DISCONNECT 0x94
        # (Topic Alias invalid); the message goes nowhere.
        pub = self.raw5()
        pub.publish("al/over", b"x", 1, properties=alias(TOPIC_ALIAS_MAXIMUM + 1))
        self.assert_disconnect(pub, 0x94)
        self.assertTrue(self.sub.silent_for(0.3))

    def test_unknown_alias_is_a_protocol_error(self):
        # 3.3.2.3.4: an empty topic with an alias that has no mapping is a Protocol Error.
        pub = self.raw5()
        pub.publish("", b"x", 1, properties=alias(3))
        self.assert_disconnect(pub, 0x82)

    def test_empty_topic_without_alias_is_a_protocol_error(self):
        pub = self.raw5()
        pub.send(encode_publish("", b"x", 0, version=MQTT5))
        self.assert_disconnect(pub, 0x82)

    def test_aliases_do_not_survive_the_connection(self):
        # [MQTT-3.3.2-7]: a new connection (same ClientID, same session) starts with none.
        cid = unique_id()
        pub = self.raw5(cid, properties=props((mqtt5.SESSION_EXPIRY, 60)))
        pub.publish_acked("al/old", b"x", 1, properties=alias(2))
        pub.disconnect()
        pub = self.raw5(cid, clean_start=False, properties=props((mqtt5.SESSION_EXPIRY, 60)))
        pub.publish("", b"y", 1, properties=alias(2))
        self.assert_disconnect(pub, 0x82)
        self.assertEqual([p.payload for p in self.sub.recv_publishes(1)], [b"x"])
        self.assertTrue(self.sub.silent_for(0.3))


class OutboundTopicAliasTest(BrokerTestCase):
    TOPICS = ["ta/a", "ta/b", "ta/c", "ta/d", "ta/a", "ta/a", "ta/b", "ta/e", "ta/a", "ta/c"] * 3

    def deliver(self, client_maximum):
        sub = self.raw5(properties=props((mqtt5.TOPIC_ALIAS_MAXIMUM, client_maximum))
                        if client_maximum is not None else b"")
        sub.subscribe([("ta/#", 1)])
        pub = self.raw5()
        for i, t in enumerate(self.TOPICS):
            pub.publish_acked(t, b"%d" % i, 1)
        return sub.recv_publishes(len(self.TOPICS))

    def test_aliases_within_the_clients_maximum(self):
        # [MQTT-3.1.2-26], [MQTT-3.3.2-11]: never above the client's maximum (2 here, fewer
        # than the topics); every topic resolves to what was published [MQTT-3.3.2-10].
        got = self.deliver(2)
        res = AliasResolver(self, 2)
        self.assertEqual([(res.topic(p), p.payload) for p in got],
                         [(t, b"%d" % i) for i, t in enumerate(self.TOPICS)])

    @starling_only("Mosquitto 2.0.11 never sends Topic Aliases to clients (allowed: the "
                   "server MAY); Starling aliases a repeated topic")
    def test_repeated_topic_sent_as_alias(self):
        # Starling's policy: with aliases to spare (10 for 5 topics), a topic sent again on
        # the same connection goes as an empty topic plus its alias. Whether the alias is
        # set on the first or the second sending is the policy's choice; from the third on,
        # every one is an alias alone.
        got = self.deliver(TOPIC_ALIAS_MAXIMUM)
        res = AliasResolver(self, TOPIC_ALIAS_MAXIMUM)
        seen, topics = {}, []
        for p in got:
            topic = res.topic(p)
            topics.append(topic)
            seen[topic] = seen.get(topic, 0) + 1
            if seen[topic] >= 3:
                self.assertEqual((p.topic, p.topic_alias is not None), ("", True),
                                 "sending %d of %r came with its topic" % (seen[topic], topic))
        self.assertEqual(topics, self.TOPICS)

    def test_no_aliases_when_the_client_allows_none(self):
        # [MQTT-3.1.2-27]: Topic Alias Maximum absent or 0 -> no Topic Alias at all.
        for maximum in (None, 0):
            with self.subTest(client_maximum=maximum):
                got = self.deliver(maximum)
                self.assertEqual([p.topic for p in got], self.TOPICS)
                self.assertFalse([p for p in got if mqtt5.TOPIC_ALIAS in p.props])

    def test_retained_and_queued_messages_resolve(self):
        # Aliases on a resumed session's queued and retained messages still resolve (they
        # start from nothing on the new connection [MQTT-3.3.2-7]).
        cid = unique_id()
        cprops = props((mqtt5.TOPIC_ALIAS_MAXIMUM, 3), (mqtt5.SESSION_EXPIRY, 60))
        sub = self.raw5(cid, properties=cprops)
        sub.subscribe([("tq/#", 1)])
        pub = self.raw5()
        for i in range(3):
            pub.publish_acked("tq/x", b"live%d" % i, 1)
        res = AliasResolver(self, 3)
        self.assertEqual([res.topic(p) for p in sub.recv_publishes(3)], ["tq/x"] * 3)
        sub.close()
        for i in range(3):
            pub.publish_acked("tq/x", b"queued%d" % i, 1, retain=i == 2)
        sub = self.raw5(cid, clean_start=False, properties=cprops)
        res = AliasResolver(self, 3)  # a new connection: the old mappings are gone
        got = sub.recv_publishes(3)
        self.assertEqual([(res.topic(p), p.payload) for p in got],
                         [("tq/x", b"queued%d" % i) for i in range(3)])
        sub.subscribe([("tq/#", 1)])  # the retained copy comes again (Retain Handling 0)
        (p,) = sub.recv_publishes(1)
        self.assertEqual((res.topic(p), p.payload, p.retain), ("tq/x", b"queued2", True))

    def test_paho_publisher_with_aliases(self):
        # A paho v5 client setting and reusing an alias by hand.
        sub = self.client5()
        got = self.collect(sub, "tp/#", 1)
        pub = self.client5()
        self.publish(pub, "tp/x", b"1", 1, properties=pprops(PacketTypes.PUBLISH, TopicAlias=4))
        self.publish(pub, "", b"2", 1, properties=pprops(PacketTypes.PUBLISH, TopicAlias=4))
        self.assertEqual([(m.topic, m.payload) for m in self.wait_messages(got, 2)],
                         [("tp/x", b"1"), ("tp/x", b"2")])


class ReceiveMaximumTest(BrokerTestCase):
    # Mosquitto's default window, set explicitly (Starling's default is 65535, announced by
    # leaving Receive Maximum out of the CONNACK).
    config_lines = ("max_inflight_messages %d" % RECEIVE_MAXIMUM,)
    def receive_maximum_2(self):
        """A client with Receive Maximum 2 subscribed to rm/#, and 6 QoS 1 messages for it."""
        sub = self.raw5(properties=props((mqtt5.RECEIVE_MAXIMUM, 2)))
        sub.subscribe([("rm/#", 1)])
        pub = self.raw5()
        for i in range(6):
            pub.publish_acked("rm/t", b"%d" % i, 1)
        return sub

    def test_broker_respects_the_clients_receive_maximum(self):
        # [MQTT-3.3.4-9]: at most Receive Maximum (2) unacknowledged QoS 1 PUBLISHes; the rest
        # follows as they are acknowledged.
        sub = self.receive_maximum_2()
        first = sub.drain(0.5)
        self.assertEqual([p.payload for p in first], [b"0", b"1"])
        for p in first:
            sub.ack(p)
        self.assertEqual([p.payload for p in sub.recv_publishes(4)], [b"2", b"3", b"4", b"5"])

    @starling_only("Mosquitto 2.0.11 sends two more messages after the first PUBACK, leaving "
                   "3 unacknowledged with a Receive Maximum of 2 ([MQTT-3.3.4-9])")
    def test_each_puback_releases_one(self):
        # 4.9: the send quota goes up by one per PUBACK.
        sub = self.receive_maximum_2()
        first = sub.drain(0.5)
        sub.ack(first[0])
        nxt = sub.drain(0.5)
        self.assertEqual([p.payload for p in nxt], [b"2"], "one PUBACK must release exactly one")
        for p in first[1:] + nxt:
            sub.ack(p)
        self.assertEqual([p.payload for p in sub.recv_publishes(3)], [b"3", b"4", b"5"])

    def test_qos2_counts_until_pubcomp(self):
        # 4.9: a QoS 2 PUBLISH holds its place in the quota until the PUBCOMP, not the PUBREC.
        sub = self.raw5(properties=props((mqtt5.RECEIVE_MAXIMUM, 1)))
        sub.subscribe([("rq/#", 2)])
        pub = self.raw5()
        for i in range(3):
            pub.publish_acked("rq/t", b"%d" % i, 2)
        p = sub.recv(3)
        self.assertEqual((p.type, p.payload), (PUBLISH, b"0"))
        sub.send(encode_ack(PUBREC, p.pid))
        got = sub.drain(0.5)
        self.assertEqual([(q.type, q.pid) for q in got], [(PUBREL, p.pid)],
                         "a second PUBLISH was sent before the first's PUBCOMP")
        sub.send(encode_ack(PUBCOMP, p.pid))
        self.assertEqual([q.payload for q in sub.recv_publishes(2)], [b"1", b"2"])

    def test_connack_receive_maximum(self):
        r = self.raw5()
        self.assertEqual(r.connack.props.get(mqtt5.RECEIVE_MAXIMUM), RECEIVE_MAXIMUM)

    def unreleased_qos2(self, r, n, first_pid=1):
        """Sends n QoS 2 PUBLISHes and never a PUBREL; returns their PUBRECs (or fewer)."""
        for i in range(n):
            r.publish("rx/t", b"%d" % i, qos=2, pid=first_pid + i)
        return [p for p in r.drain(0.5) if p.type == PUBREC]

    def test_within_the_brokers_receive_maximum(self):
        # 20 QoS 2 messages awaiting PUBREL are within the broker's quota: all get a
        # successful PUBREC (0x00, or 0x10 No matching subscribers, which 3.5.2.1 allows).
        r = self.raw5()
        recs = self.unreleased_qos2(r, RECEIVE_MAXIMUM)
        self.assertEqual([p.pid for p in recs], [i + 1 for i in range(RECEIVE_MAXIMUM)])
        self.assertTrue(all(p.rc in (0x00, 0x10) for p in recs), [p.rc for p in recs])
        for p in recs:
            r.send(encode_ack(PUBREL, p.pid))
        self.assertEqual(len([p for p in r.drain(0.5) if p.type == PUBCOMP]), RECEIVE_MAXIMUM)

    @starling_only("Mosquitto 2.0.11 answers a QoS 2 PUBLISH beyond its Receive Maximum with "
                   "PUBREC 0x97 (Quota exceeded) instead of DISCONNECT 0x93 (3.3.4, 4.9)")
    def test_exceeding_the_brokers_receive_maximum_gets_0x93(self):
        self.exceed_receive_maximum()

    def exceed_receive_maximum(self):
        # 3.3.4: more than Receive Maximum QoS 1/2 PUBLISHes without PUBACK/PUBCOMP from the
        # server -> DISCONNECT 0x93 (Receive Maximum exceeded).
        sub = self.client()
        got = self.collect(sub, "rx/#", 2)
        r = self.raw5()
        for i in range(RECEIVE_MAXIMUM + 1):
            r.publish("rx/t", b"%d" % i, qos=2, pid=i + 1)
        self.assert_disconnect(r, 0x93)
        # None was released (no PUBREL), so none may be delivered... the broker may deliver at
        # PUBLISH time (method A of 4.3.3) or at PUBREL (method B): allow either, but never
        # the 21st.
        self.assertNotIn(b"%d" % RECEIVE_MAXIMUM, [m.payload for m in got.snapshot()])


class MaximumPacketSizeTest(BrokerTestCase):
    def test_packet_too_large_for_the_client_is_not_sent(self):
        # [MQTT-3.1.2-24]: a client with Maximum Packet Size 100 never gets a 500-byte message;
        # [MQTT-3.1.2-25]: it is dropped as if sent, so the next message still flows. Other
        # subscribers get it.
        small = self.raw5(properties=props((mqtt5.MAXIMUM_PACKET_SIZE, 100)))
        small.subscribe([("mp/#", 1)])
        big = self.client5()
        got = self.collect(big, "mp/#", 1)
        pub = self.raw5()
        pub.publish_acked("mp/t", b"x" * 500, 1)
        pub.publish_acked("mp/t", b"small", 1)
        (p,) = small.recv_publishes(1)
        self.assertEqual(p.payload, b"small")
        self.assertTrue(small.silent_for(0.3))
        self.assertEqual([m.payload for m in self.wait_messages(got, 2)], [b"x" * 500, b"small"])

    @starling_only("Mosquitto 2.0.11 sends a client one byte more than its Maximum Packet "
                   "Size ([MQTT-3.1.2-24])")
    def test_exact_limit_towards_the_client(self):
        # The packet size is the whole packet, fixed header included (3.1.2.11.4).
        sub = self.raw5(properties=props((mqtt5.MAXIMUM_PACKET_SIZE, 20)))
        sub.subscribe([("a/#", 0)])
        pub = self.raw5()
        for n in range(10, 15):  # PUBLISH "a/b" with n payload bytes is 8 + n bytes long
            pub.publish("a/b", b"y" * n)
        got = sub.drain(0.5)
        self.assertEqual([len(p.payload) for p in got], [10, 11, 12])
        self.assertEqual([wire_size(p) for p in got], [18, 19, 20])


class BrokerMaximumPacketSizeTest(BrokerTestCase):
    config_lines = ("max_packet_size 200",)

    def publish_of_size(self, size):
        head = len(encode_publish("a", b"", 0, version=MQTT5))
        data = encode_publish("a", b"z" * (size - head), 0, version=MQTT5)
        if len(data) != size:  # the Remaining Length grew a byte
            data = encode_publish("a", b"z" * (size - head - 1), 0, version=MQTT5)
        self.assertEqual(len(data), size)
        return data

    def test_connack_maximum_packet_size(self):
        # 3.2.2.3.6: the broker's limit is announced.
        r = self.raw5()
        self.assertEqual(r.connack.props.get(mqtt5.MAXIMUM_PACKET_SIZE), 200)

    def test_larger_packet_gets_0x95(self):
        # 3.2.2.3.6: a larger packet is a Protocol Error: DISCONNECT 0x95 (Packet too large).
        sub = self.raw5()
        sub.subscribe([("a", 0)])
        r = self.raw5()
        r.send(self.publish_of_size(300))
        self.assert_disconnect(r, 0x95)
        self.assertTrue(sub.silent_for(0.3))

    @starling_only("Mosquitto 2.0.11 compares its max_packet_size with less than the whole "
                   "packet: it accepts 202 bytes with a limit of 200 (3.2.2.3.6)")
    def test_exact_limit_from_the_client(self):
        sub = self.raw5()
        sub.subscribe([("a", 0)])
        r = self.raw5()
        r.send(self.publish_of_size(200))
        (p,) = sub.recv_publishes(1)
        r.send(self.publish_of_size(201))
        self.assert_disconnect(r, 0x95)
        self.assertTrue(sub.silent_for(0.3))


if __name__ == "__main__":
    unittest.main()


class DefaultReceiveMaximumTest(BrokerTestCase):
    """No max_inflight_messages line: the Receive Maximum is Mosquitto's 20 (so a client that
    tests the limit, such as the Eclipse Paho interoperability suite's flow-control test,
    reaches it), while the window toward a subscriber stays 65535 (README)."""

    test_connack_receive_maximum = ReceiveMaximumTest.test_connack_receive_maximum
    test_within_the_brokers_receive_maximum = (
        ReceiveMaximumTest.test_within_the_brokers_receive_maximum)
    unreleased_qos2 = ReceiveMaximumTest.unreleased_qos2
    exceed_receive_maximum = ReceiveMaximumTest.exceed_receive_maximum

    @starling_only("Mosquitto 2.0.11 answers a QoS 2 PUBLISH beyond its Receive Maximum with "
                   "PUBREC 0x97 (Quota exceeded) instead of DISCONNECT 0x93 (3.3.4, 4.9)")
    def test_exceeding_the_brokers_receive_maximum_gets_0x93(self):
        self.exceed_receive_maximum()

    @starling_only("Mosquitto's outbound window is its max_inflight_messages, 20")
    def test_the_window_toward_a_subscriber_stays_wide(self):
        # 100 QoS 1 messages reach a subscriber that acknowledges none of them: the outbound
        # window is max_inflight_messages' 65535, not the Receive Maximum announced.
        sub = self.raw5()
        sub.subscribe([("rw/#", 1)])
        pub = self.raw5()
        for i in range(100):
            pub.publish_acked("rw/t", b"%d" % i, 1)
        got = [p.payload for p in sub.drain(1.0) if p.type == PUBLISH]
        self.assertEqual(got, [b"%d" % i for i in range(100)])
