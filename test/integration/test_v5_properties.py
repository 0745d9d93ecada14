"""MQTT 5 properties: validation of what clients send, and forwarding of what PUBLISH carries.

Validation (2.2.2.2, 4.13): a property not allowed on its packet, a value that cannot be read,
ill-formed UTF-8 and other unparsable packets are Malformed Packets (0x81); a property given
twice where it is allowed once, or a value the specification forbids, is a Protocol Error
(0x82). The server ends the connection [MQTT-4.13.1-1] and sends a DISCONNECT with that reason
code first (4.13.1: it SHOULD; Starling always does). A witness subscribed to everything checks
that no message of a refused packet is delivered and that the broker keeps serving.

Forwarding: Payload Format Indicator, Content Type, Response Topic, Correlation Data and User
Properties reach subscribers unaltered and, for User Properties, in order ([MQTT-3.3.2-4],
[MQTT-3.3.2-15] to [MQTT-3.3.2-18], [MQTT-3.3.2-20]). Statement ids are MQTT 5.0's.
"""

import unittest

from harness import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBSCRIBE, AUTH, DISCONNECT,
                     BrokerTestCase, PacketTypes, encode_ack, encode_disconnect, encode_publish,
                     encode_subscribe, encode_unsubscribe, mqtt5, mqtt_bytes, packet, pprops,
                     props, starling_only, sub_options, unique_id, MQTT5)


def v5_publish(properties, topic="bad/t", qos=1, payload=b"never"):
    return encode_publish(topic, payload, qos, pid=7 if qos else None, version=MQTT5,
                          properties=properties)


def v5_subscribe(properties=b"", filters=(("bad/#", 1),)):
    return encode_subscribe(3, list(filters), version=MQTT5, properties=properties)


# Properties a duplicate of which is a Protocol Error (3.3.2.3, 3.8.2.1): only User Property
# may repeat in a client's packet.
DUPLICATES = {
    "Payload Format Indicator twice": v5_publish(props((mqtt5.PAYLOAD_FORMAT, 1),
                                                       (mqtt5.PAYLOAD_FORMAT, 1))),
    "Message Expiry twice": v5_publish(props((mqtt5.MESSAGE_EXPIRY, 5), (mqtt5.MESSAGE_EXPIRY, 9))),
    "Content Type twice": v5_publish(props((mqtt5.CONTENT_TYPE, "a"), (mqtt5.CONTENT_TYPE, "b"))),
    "Response Topic twice": v5_publish(props((mqtt5.RESPONSE_TOPIC, "r/1"),
                                             (mqtt5.RESPONSE_TOPIC, "r/2"))),
    "Correlation Data twice": v5_publish(props((mqtt5.CORRELATION_DATA, b"1"),
                                               (mqtt5.CORRELATION_DATA, b"2"))),
    "Topic Alias twice": v5_publish(props((mqtt5.TOPIC_ALIAS, 1), (mqtt5.TOPIC_ALIAS, 2))),
    "Subscription Identifier twice in SUBSCRIBE": v5_subscribe(
        props((mqtt5.SUBSCRIPTION_ID, 1), (mqtt5.SUBSCRIPTION_ID, 2))),
}

# Identifiers not valid for the packet type: a Malformed Packet (2.2.2.2, table 2-4).
NOT_ALLOWED = {
    "Session Expiry in PUBLISH": v5_publish(props((mqtt5.SESSION_EXPIRY, 1))),
    "Receive Maximum in PUBLISH": v5_publish(props((mqtt5.RECEIVE_MAXIMUM, 5))),
    "Will Delay in PUBLISH": v5_publish(props((mqtt5.WILL_DELAY, 5))),
    "Reason String in PUBLISH": v5_publish(props((mqtt5.REASON_STRING, "why"))),
    "Assigned Client Identifier in PUBLISH": v5_publish(props((mqtt5.ASSIGNED_CLIENT_ID, "x"))),
    "Reason String in SUBSCRIBE": v5_subscribe(props((mqtt5.REASON_STRING, "why"))),
    "Topic Alias in SUBSCRIBE": v5_subscribe(props((mqtt5.TOPIC_ALIAS, 1))),
    "Subscription Identifier in UNSUBSCRIBE": encode_unsubscribe(
        4, ["bad/#"], version=MQTT5, properties=props((mqtt5.SUBSCRIPTION_ID, 3))),
}

# Packets that cannot be parsed: a Malformed Packet (1.2, 2.2.2.2).
MALFORMED = {
    "property value past the block": v5_publish(b"\x02\x00\x00"),
    "property length past the packet": packet(PUBLISH, 0, mqtt_bytes("bad/t") + b"\x10\x01\x01"),
    "property length of five bytes": packet(PUBLISH, 0, mqtt_bytes("bad/t") + b"\x80\x80\x80\x80\x01"),
    "unknown identifier 0x7f": v5_publish(b"\x7f\x00"),
    "User Property without its value": v5_publish(b"\x26\x00\x01k"),
    # [MQTT-3.8.3-5]: reserved bits of the Subscription Options.
    "Subscription Options reserved bits": v5_subscribe(filters=(("bad/#", 0xC1),)),
    # [MQTT-3.8.1-1], [MQTT-3.3.1-4].
    "SUBSCRIBE fixed-header flags 0": encode_subscribe(3, [("bad/#", 1)], version=MQTT5, flags=0),
    "PUBLISH QoS 3": packet(PUBLISH, 0x06, mqtt_bytes("bad/t") + b"\x00\x07\x00never"),
    }

# Closed silently by Mosquitto 2.0.11 (no DISCONNECT): ill-formed UTF-8 [MQTT-1.5.4-1] and
# U+0000 [MQTT-1.5.4-2] in properties, reserved flags of PUBREL [MQTT-3.6.1-1], AUTH
# [MQTT-3.15.1-1] and DISCONNECT [MQTT-3.14.1-1].
MALFORMED_SILENT_IN_MOSQUITTO = {
    "ill-formed UTF-8 in Content Type": v5_publish(b"\x03\x00\x02\xc3\x28"),
    "ill-formed UTF-8 in a User Property name": v5_publish(b"\x26\x00\x01\xff\x00\x01v"),
    "U+0000 in Response Topic": v5_publish(b"\x08\x00\x03r\x00x"),
    "PUBREL flags 0": encode_ack(PUBREL, 7, flags=0),
    "AUTH flags 1": packet(AUTH, 1, b"\x00\x00"),
    "DISCONNECT flags 1": packet(DISCONNECT, 1, b""),
}

# Values the specification forbids, and what Starling answers (0x82 Protocol Error, or for a
# Topic Alias of 0 also 0x94 Topic Alias invalid).
BAD_VALUES = {
    # [MQTT-3.3.2-8].
    "Topic Alias 0": (v5_publish(props((mqtt5.TOPIC_ALIAS, 0))), (0x82, 0x94)),
    # 3.8.2.1.2: "a Protocol Error if the Subscription Identifier has a value of 0".
    "Subscription Identifier 0": (v5_subscribe(props((mqtt5.SUBSCRIPTION_ID, 0))), (0x82,)),
    # 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3".
    "Retain Handling 3": (v5_subscribe(filters=(("bad/#", 0x31),)), (0x82,)),
    # 3.8.3: "A SUBSCRIBE packet with no Payload is a Protocol Error" (Mosquitto: 0x81).
    "SUBSCRIBE without filters": (packet(SUBSCRIBE, 2, b"\x00\x03\x00"), (0x82,)),
}


class PropertyValidationTest(BrokerTestCase):
    def setUp(self):
        super().setUp()
        self.witness = self.client()
        self.seen = self.collect(self.witness, "#", 1)
        self.poster = self.client()

    def refuse(self, data, rcs, allow_close=False):
        """A v5 client sends `data`: DISCONNECT with a code in rcs and a close (or, with
        allow_close, a bare close), nothing delivered, the witness still served."""
        before = len(self.seen)
        r = self.raw5()
        r.send(data)
        self.assert_disconnect(r, rcs, allow_close=allow_close)
        topic = "witness/" + unique_id()
        self.publish(self.poster, topic, b"still-here", 1)
        self.wait_for(lambda: any(m.topic == topic for m in self.seen.snapshot()[before:]),
                      msg="witness got nothing after the bad client was closed")
        strays = [m for m in self.seen.snapshot()[before:] if m.topic != topic]
        self.assertEqual(strays, [], "a refused packet's message was delivered")

    def cases(self, table, rcs, allow_close=False):
        for name, data in table.items():
            with self.subTest(case=name):
                self.refuse(data, rcs, allow_close)

    def test_duplicate_property_closes(self):
        self.cases(DUPLICATES, 0x82, allow_close=True)

    @starling_only("Mosquitto 2.0.11 closes at a duplicate property without a DISCONNECT 0x82 "
                   "(4.13.1: SHOULD send it)")
    def test_duplicate_property_gets_0x82(self):
        self.cases(DUPLICATES, 0x82)

    def test_property_not_allowed_on_packet_gets_0x81(self):
        self.cases(NOT_ALLOWED, 0x81)

    def test_malformed_packet_gets_0x81(self):
        self.cases(MALFORMED, 0x81)

    def test_malformed_utf8_and_flags_close(self):
        self.cases(MALFORMED_SILENT_IN_MOSQUITTO, 0x81, allow_close=True)

    @starling_only("Mosquitto 2.0.11 closes at ill-formed UTF-8 in a property and at reserved "
                   "flags of PUBREL, AUTH and DISCONNECT without a DISCONNECT 0x81 (4.13.1)")
    def test_malformed_utf8_and_flags_get_0x81(self):
        self.cases(MALFORMED_SILENT_IN_MOSQUITTO, 0x81)

    def test_forbidden_values_close(self):
        for name, (data, rcs) in BAD_VALUES.items():
            with self.subTest(case=name):
                # Mosquitto answers these with 0x81; Starling's exact code is checked below.
                self.refuse(data, set(rcs) | {0x81})

    @starling_only("Mosquitto 2.0.11 answers a Topic Alias 0, a Subscription Identifier 0, "
                   "Retain Handling 3 and a SUBSCRIBE without filters with 0x81 (Malformed "
                   "Packet); they parse, so they are Protocol Errors (0x82, [MQTT-3.3.2-8], "
                   "3.8.2.1.2, 3.8.3.1, 3.8.3)")
    def test_forbidden_values_get_protocol_error(self):
        for name, (data, rcs) in BAD_VALUES.items():
            with self.subTest(case=name):
                self.refuse(data, rcs)

    @starling_only("Mosquitto 2.0.11 accepts a Subscription Identifier in a client's PUBLISH "
                   "([MQTT-3.3.4-6])")
    def test_subscription_identifier_from_client_is_a_protocol_error(self):
        self.refuse(v5_publish(props((mqtt5.SUBSCRIPTION_ID, 5))), 0x82)

    @starling_only("Mosquitto 2.0.11 forwards a Response Topic holding wildcards "
                   "([MQTT-3.3.2-14])")
    def test_response_topic_with_wildcards_is_a_protocol_error(self):
        for rt in ("reply/+", "reply/#"):
            with self.subTest(response_topic=rt):
                self.refuse(v5_publish(props((mqtt5.RESPONSE_TOPIC, rt))), 0x82)

    @starling_only("Mosquitto 2.0.11 closes at a property not allowed on PUBACK or PUBREL "
                   "without a DISCONNECT 0x81 (2.2.2.2, 4.13.1)")
    def test_property_not_allowed_on_ack_gets_0x81(self):
        # The client acknowledges a real delivery (PUBACK) or completes a real inbound QoS 2
        # flow (PUBREL), with a property those packets do not allow.
        sub = self.raw5()
        sub.subscribe([("ack/#", 1)])
        self.publish(self.poster, "ack/t", b"for-sub", 1)
        (p,) = sub.recv_publishes(1, ack=False)
        sub.send(encode_ack(PUBACK, p.pid, rc=0, properties=props((mqtt5.TOPIC_ALIAS, 1))))
        self.assert_disconnect(sub, 0x81)
        pub = self.raw5()
        pid = pub.publish("ack/q2", b"two", qos=2)
        self.assertEqual(pub.expect(PUBREC).pid, pid)
        pub.send(encode_ack(PUBREL, pid, rc=0, properties=props((mqtt5.CONTENT_TYPE, "x"))))
        self.assert_disconnect(pub, 0x81)

    def test_disconnect_with_reason_from_client_is_accepted(self):
        # 3.14.2.1: a client's DISCONNECT may carry a reason code, a Reason String and User
        # Properties; the broker just closes (no answer: [MQTT-3.14.4-1] binds the sender).
        r = self.raw5()
        r.send(encode_disconnect(0x00, props((mqtt5.REASON_STRING, "done"),
                                             (mqtt5.USER_PROPERTY, ("why", "test")))))
        self.assertEqual(self.assert_closed(r), [])


USER_PROPS = [("k", "1"), ("a", "x"), ("k", "2"), ("empty", ""), ("k", "1"), ("ü", "värde"),
              ("", "nameless"), ("a", "y")]


class ForwardingTest(BrokerTestCase):
    def all_props(self):
        return props((mqtt5.USER_PROPERTY, USER_PROPS[0]), (mqtt5.PAYLOAD_FORMAT, 1),
                     (mqtt5.USER_PROPERTY, USER_PROPS[1]), (mqtt5.CONTENT_TYPE, "text/plain; x=1"),
                     (mqtt5.USER_PROPERTY, USER_PROPS[2]), (mqtt5.RESPONSE_TOPIC, "reply/to/me"),
                     (mqtt5.CORRELATION_DATA, b"\x00\xffcorr\x00"),
                     *[(mqtt5.USER_PROPERTY, up) for up in USER_PROPS[3:]])

    def check_forwarded(self, p):
        self.assertEqual(p.props.get(mqtt5.PAYLOAD_FORMAT), 1)  # [MQTT-3.3.2-4]
        self.assertEqual(p.props.get(mqtt5.CONTENT_TYPE), "text/plain; x=1")  # [MQTT-3.3.2-20]
        self.assertEqual(p.props.get(mqtt5.RESPONSE_TOPIC), "reply/to/me")  # [MQTT-3.3.2-15]
        self.assertEqual(p.props.get(mqtt5.CORRELATION_DATA), b"\x00\xffcorr\x00")  # [MQTT-3.3.2-16]
        # [MQTT-3.3.2-17], [MQTT-3.3.2-18]: all of them, in order, repeats and empties kept.
        self.assertEqual(p.props.all(mqtt5.USER_PROPERTY), USER_PROPS)
        self.assertNotIn(mqtt5.MESSAGE_EXPIRY, p.props)
        self.assertNotIn(mqtt5.SUBSCRIPTION_ID, p.props)

    def test_publish_properties_forwarded_unchanged(self):
        sub = self.raw5()
        sub.subscribe([("fw/#", 2)])
        pub = self.raw5()
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                if qos:
                    pub.publish_acked("fw/q%d" % qos, b"payload", qos, properties=self.all_props())
                else:
                    pub.publish("fw/q0", b"payload", properties=self.all_props())
                (p,) = sub.recv_publishes(1)
                self.assertEqual((p.topic, p.payload, p.qos), ("fw/q%d" % qos, b"payload", qos))
                self.check_forwarded(p)

    def test_properties_reach_every_subscriber(self):
        # Each subscriber gets its own copy with the same properties, at its own QoS.
        subs = [self.raw5() for _ in range(3)]
        for i, s in enumerate(subs):
            s.subscribe([("fan/#" if i % 2 else "fan/t", i)])
        pub = self.raw5()
        pub.publish_acked("fan/t", b"x", 2, properties=self.all_props())
        for i, s in enumerate(subs):
            (p,) = s.recv_publishes(1)
            self.assertEqual(p.qos, i)
            self.check_forwarded(p)

    def test_payload_format_indicator_zero_kept(self):
        # Unaltered [MQTT-3.3.2-4]: an explicit 0 stays, an absent one stays absent.
        sub = self.raw5()
        sub.subscribe([("pfi/#", 1)])
        pub = self.raw5()
        pub.publish_acked("pfi/zero", b"\x00\x01", 1, properties=props((mqtt5.PAYLOAD_FORMAT, 0)))
        pub.publish_acked("pfi/none", b"\x00\x01", 1)
        a, b = sub.recv_publishes(2)
        self.assertEqual(a.props.all(mqtt5.PAYLOAD_FORMAT), [0])
        self.assertEqual(len(b.props), 0, b)

    def test_no_properties_invented(self):
        # A PUBLISH without properties reaches a subscriber (without a Topic Alias Maximum or a
        # Subscription Identifier) without any.
        sub = self.raw5()
        sub.subscribe([("bare/#", 2)])
        pub = self.raw5()
        pub.publish("bare/t", b"b")
        pub.publish_acked("bare/t", b"b", 1)
        pub.publish_acked("bare/t", b"b", 2)
        for p in sub.recv_publishes(3):
            self.assertEqual(len(p.props), 0, p)

    def test_paho_to_paho(self):
        sub = self.client5()
        got = self.collect(sub, "pp/#", 2)
        pub = self.client5()
        pp = pprops(PacketTypes.PUBLISH, PayloadFormatIndicator=1, ContentType="application/json",
                    ResponseTopic="pp/reply", CorrelationData=b"\x01\x02",
                    UserProperty=[("a", "1"), ("b", "2"), ("a", "3")])
        self.publish(pub, "pp/t", b'{"v": 1}', 2, properties=pp)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.payload, m.qos), (b'{"v": 1}', 2))
        self.assertEqual(m.props.PayloadFormatIndicator, 1)
        self.assertEqual(m.props.ContentType, "application/json")
        self.assertEqual(m.props.ResponseTopic, "pp/reply")
        self.assertEqual(m.props.CorrelationData, b"\x01\x02")
        self.assertEqual(m.props.UserProperty, [("a", "1"), ("b", "2"), ("a", "3")])

    def test_request_response_round_trip(self):
        # The request/response pattern of 4.10: a responder answers on the Response Topic
        # with the Correlation Data it was given, and the requester matches them.
        rid = unique_id()
        requester, responder = self.client5(rid), self.client5()
        reply_to = "rr/reply/" + rid
        answers = self.collect(requester, reply_to, 1)
        requests = self.collect(responder, "rr/service", 1)
        for i in range(3):
            self.publish(requester, "rr/service", b"q%d" % i, 1,
                         properties=pprops(PacketTypes.PUBLISH, ResponseTopic=reply_to,
                                           CorrelationData=b"id-%d" % i))
        for m in self.wait_messages(requests, 3):
            self.publish(responder, m.props.ResponseTopic, b"answer-to-" + m.payload, 1,
                         properties=pprops(PacketTypes.PUBLISH,
                                           CorrelationData=m.props.CorrelationData))
        got = {m.props.CorrelationData: m.payload for m in self.wait_messages(answers, 3)}
        self.assertEqual(got, {b"id-%d" % i: b"answer-to-q%d" % i for i in range(3)})

    def test_retained_message_keeps_its_properties(self):
        pub = self.raw5()
        pub.publish_acked("rp/t", b"kept", 1, retain=True, properties=self.all_props())
        sub = self.raw5()
        sub.subscribe([("rp/#", 1)])
        (p,) = sub.recv_publishes(1)
        self.assertTrue(p.retain)
        self.check_forwarded(p)

    def test_properties_on_every_client_packet(self):
        # Every packet a client sends, with the properties it allows (table 2-4): the broker
        # accepts them all and every flow completes.
        up = (mqtt5.USER_PROPERTY, ("trace", "1"))
        rs = (mqtt5.REASON_STRING, "fine")
        sub = self.raw5(properties=props((mqtt5.SESSION_EXPIRY, 0), up))
        sub.subscribe([("all/#", sub_options(2))], properties=props((mqtt5.SUBSCRIPTION_ID, 9), up))
        self.assertEqual(sub.last_ack.codes, [2])
        pub = self.raw5()
        pid = pub.publish("all/t", b"two", 2, properties=props(up))
        self.assertEqual(pub.expect(PUBREC).pid, pid)
        pub.send(encode_ack(PUBREL, pid, rc=0, properties=props(rs, up)))
        self.assertEqual(pub.expect(PUBCOMP).pid, pid)
        pub.publish("all/one", b"one", 1, properties=props(up))
        self.assertEqual(pub.expect(PUBACK).rc, 0)
        p = sub.recv(3)
        self.assertEqual((p.type, p.payload, p.props.all(mqtt5.SUBSCRIPTION_ID)), (PUBLISH, b"two", [9]))
        sub.send(encode_ack(PUBREC, p.pid, rc=0, properties=props(rs, up)))
        rel = sub.expect(PUBREL)
        self.assertEqual(rel.pid, p.pid)
        sub.send(encode_ack(PUBCOMP, p.pid, rc=0, properties=props(rs, up)))
        q = sub.recv(3)
        self.assertEqual((q.type, q.payload), (PUBLISH, b"one"))
        sub.send(encode_ack(PUBACK, q.pid, rc=0, properties=props(rs, up)))
        unsub = sub.unsubscribe(["all/#"], properties=props(up))
        self.assertEqual(unsub.codes, [0])
        sub.ping()
        sub.send(encode_disconnect(0, props(rs, up)))
        self.assertEqual(self.assert_closed(sub), [])


if __name__ == "__main__":
    unittest.main()
