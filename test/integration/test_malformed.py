"""Malformed and illegal packets from a connected client: each must close that connection and
only that one. A witness subscriber connected before the bad client must still get a message
published afterwards, and a message carried by a bad packet must reach nobody.
Statement ids are MQTT 3.1.1's ([MQTT-4.8.0-1]: a protocol violation closes the connection).
"""

import unittest

from harness import (CONNACK, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBREL, SUBACK, UNSUBACK,
                     UNSUBSCRIBE, DISCONNECT, PUBLISH, SUBSCRIBE, BrokerTestCase, encode_ack,
                     encode_publish, encode_subscribe, encode_unsubscribe, mqtt_bytes, packet,
                     starling_only, unique_id)


class MalformedTest(BrokerTestCase):
    def setUp(self):
        super().setUp()
        # A witness on every topic the bad packets might carry a message to.
        self.witness = self.client()
        self.seen = self.collect(self.witness, "#", 1)
        self.poster = self.client()

    def assert_closes(self, data, connect=True):
        """Sends `data` (after a valid CONNECT unless connect=False): the broker closes
        that connection, delivers nothing from it, and keeps serving the witness."""
        before = len(self.seen)
        r = self.raw_connected() if connect else self.raw()
        r.send(data)
        got = self.assert_closed(r)
        self.assertFalse([p for p in got if p.type not in (PUBLISH,)],
                         "broker answered instead of closing: %r" % got)
        # The witness still works: a message published now arrives, and nothing else did.
        topic = "witness/" + unique_id()
        self.publish(self.poster, topic, b"still-here", 1)
        self.wait_for(lambda: any(m.topic == topic for m in self.seen.snapshot()[before:]),
                      msg="witness got nothing after the bad client was closed")
        strays = [m for m in self.seen.snapshot()[before:] if m.topic != topic]
        self.assertEqual(strays, [], "a malformed packet's message was delivered")

    def test_remaining_length_of_five_bytes(self):
        # The Remaining Length field is at most four bytes (2.2.3); a fifth is malformed.
        self.assert_closes(b"\x30\xff\xff\xff\xff\x01")
        self.assert_closes(b"\xc0\x80\x80\x80\x80\x00")

    def test_reserved_flags(self):
        # [MQTT-2.2.2-1]/[MQTT-2.2.2-2]; PUBREL [MQTT-3.6.1-1], SUBSCRIBE [MQTT-3.8.1-1],
        # UNSUBSCRIBE [MQTT-3.10.1-1] must have flags 0010; PUBLISH QoS 3 [MQTT-3.3.1-4].
        cases = {
            "PUBREL flags 0": encode_ack(PUBREL, 1, flags=0),
            "PUBREL flags 3": encode_ack(PUBREL, 1, flags=3),
            "SUBSCRIBE flags 0": encode_subscribe(1, [("rf/a", 0)], flags=0),
            "SUBSCRIBE flags 3": encode_subscribe(1, [("rf/a", 0)], flags=3),
            "UNSUBSCRIBE flags 0": encode_unsubscribe(1, ["rf/a"], flags=0),
            "PUBLISH QoS 3": packet(PUBLISH, 0x06, mqtt_bytes("rf/q3") + b"\x00\x01payload"),
            "PUBLISH QoS 3 retain": packet(PUBLISH, 0x07, mqtt_bytes("rf/q3") + b"\x00\x01x"),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_closes(data)

    @starling_only("Mosquitto 2.0.11 ignores the reserved flags of PINGREQ and PUBACK, and "
                   "DUP on QoS 0 ([MQTT-2.2.2-2], [MQTT-3.3.1-2])")
    def test_reserved_flags_mosquitto_ignores(self):
        cases = {
            "PINGREQ flags 1": packet(PINGREQ, 1, b""),
            "PUBACK flags 2": packet(PUBACK, 2, b"\x00\x01"),
            "PUBCOMP flags 1": packet(PUBCOMP, 1, b"\x00\x01"),
            "DUP on QoS 0": encode_publish("rf/dup0", b"x", 0, dup=True),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_closes(data)

    @starling_only("Mosquitto 2.0.11 accepts a PINGREQ with a body")
    def test_pingreq_with_body(self):
        # PINGREQ has no variable header and no payload (3.12): a body is malformed.
        self.assert_closes(packet(PINGREQ, 0, b"\x00"))

    def test_disconnect_with_flags(self):
        self.assert_closes(packet(DISCONNECT, 1, b""))

    def test_reserved_packet_types(self):
        # Types 0 and 15 are reserved in MQTT 3.1.1 (15 is AUTH only in MQTT 5).
        for ptype in (0, 15):
            with self.subTest(type=ptype):
                self.assert_closes(packet(ptype, 0, b""))

    def test_invalid_utf8_in_topic(self):
        # [MQTT-1.5.3-1]: ill-formed UTF-8, including encoded surrogates and overlong forms.
        bad = {"ff fe": b"a/\xff\xfe", "surrogate": b"a/\xed\xa0\x80",
               "overlong nul": b"a/\xc0\x80", "overlong slash": b"a\xc0\xafb",
               "truncated": b"a/\xe2\x82", "beyond U+10FFFF": b"a/\xf4\x90\x80\x80"}
        for name, topic in bad.items():
            with self.subTest(where="PUBLISH", case=name):
                self.assert_closes(packet(PUBLISH, 0, mqtt_bytes(topic) + b"payload"))
            with self.subTest(where="SUBSCRIBE", case=name):
                self.assert_closes(packet(SUBSCRIBE, 2, b"\x00\x01" + mqtt_bytes(topic) + b"\x00"))
            with self.subTest(where="UNSUBSCRIBE", case=name):
                self.assert_closes(packet(UNSUBSCRIBE, 2, b"\x00\x01" + mqtt_bytes(topic)))

    def test_nul_in_topic(self):
        # [MQTT-1.5.3-2]: U+0000 in a UTF-8 string closes the connection.
        self.assert_closes(packet(PUBLISH, 0, mqtt_bytes(b"a\x00b") + b"payload"))
        self.assert_closes(packet(PUBLISH, 2, mqtt_bytes(b"a\x00") + b"\x00\x05payload"))
        self.assert_closes(packet(SUBSCRIBE, 2, b"\x00\x01" + mqtt_bytes(b"a/\x00") + b"\x00"))

    def test_wildcards_in_publish_topic(self):
        # [MQTT-3.3.2-2]: the Topic Name in a PUBLISH must not contain wildcards.
        for topic in ("a/+", "a/#", "+", "#", "a/+/b", "sport/ten#"):
            with self.subTest(topic=topic):
                self.assert_closes(encode_publish(topic, b"wild"))

    def test_empty_topic(self):
        # [MQTT-4.7.3-1]: a Topic Name is at least one character long.
        self.assert_closes(packet(PUBLISH, 0, b"\x00\x00payload"))
        self.assert_closes(packet(PUBLISH, 2, b"\x00\x00\x00\x01payload"))

    def test_packet_id_zero(self):
        # [MQTT-2.3.1-1]: QoS > 0 PUBLISH, SUBSCRIBE and UNSUBSCRIBE need a non-zero id.
        cases = {"PUBLISH QoS 1": encode_publish("pid0/a", b"x", 1, pid=0),
                 "PUBLISH QoS 2": encode_publish("pid0/b", b"x", 2, pid=0),
                 "SUBSCRIBE": encode_subscribe(0, [("pid0/#", 0)]),
                 "UNSUBSCRIBE": encode_unsubscribe(0, ["pid0/#"])}
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_closes(data)

    def test_subscribe_without_filters(self):
        # [MQTT-3.8.3-3] at least one filter; [MQTT-3.10.3-2] likewise for UNSUBSCRIBE.
        self.assert_closes(packet(SUBSCRIBE, 2, b"\x00\x01"))
        self.assert_closes(packet(UNSUBSCRIBE, 2, b"\x00\x01"))

    def test_subscribe_invalid_qos(self):
        # [MQTT-3.8.3-4]: requested QoS 3, or reserved bits set in the options byte.
        for opts in (3, 0x04, 0x81):
            with self.subTest(options=opts):
                self.assert_closes(encode_subscribe(1, [("iq/a", opts)]))

    def test_truncated_fields(self):
        # Lengths inside the packet that run past its end are malformed.
        cases = {"topic past end": packet(PUBLISH, 0, b"\x00\x10ab"),
                 "QoS 1 without id": packet(PUBLISH, 2, mqtt_bytes("tf/a")),
                 "short PUBACK": packet(PUBACK, 0, b"\x00"),
                 "filter without QoS": packet(SUBSCRIBE, 2, b"\x00\x01" + mqtt_bytes("tf/#")),
                 "filter past end": packet(SUBSCRIBE, 2, b"\x00\x01\x00\x09tf\x00")}
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_closes(data)

    def test_connack_from_client(self):
        # A packet of the server-to-client direction is a protocol violation [MQTT-4.8.0-1].
        self.assert_closes(packet(CONNACK, 0, b"\x00\x00"))

    @starling_only("Mosquitto 2.0.11 ignores SUBACK, UNSUBACK and PINGRESP sent by a "
                   "client that is not a bridge ([MQTT-4.8.0-1])")
    def test_server_packets_from_client(self):
        cases = {"SUBACK": packet(SUBACK, 0, b"\x00\x01\x00"),
                 "UNSUBACK": packet(UNSUBACK, 0, b"\x00\x01"),
                 "PINGRESP": packet(PINGRESP, 0, b"")}
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_closes(data)

    def test_bad_packet_after_valid_traffic(self):
        # A client that has been behaving is closed all the same, and its subscription dies
        # with its (clean) session.
        r = self.raw_connected()
        self.assertEqual(r.subscribe([("late/#", 1)]), [1])
        r.publish_acked("late/x", b"ok", 1)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.payload, b"ok")
        r.send(encode_publish("late/+", b"bad"))
        self.assert_closed(r)
        self.assert_broker_works()


class MessageSizeLimitTest(BrokerTestCase):
    config_lines = ("message_size_limit 100",)

    def test_payload_at_limit_is_delivered(self):
        sub = self.client()
        got = self.collect(sub, "msl/#", 1)
        pub = self.raw_connected()
        pub.publish_acked("msl/ok", b"x" * 100, 1)
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"x" * 100)

    def test_payload_over_limit_is_not_delivered(self):
        # MQTT 3.1.1 has no way to refuse a PUBLISH: [MQTT-3.3.5-2] lets the server either
        # acknowledge it as usual or close the connection. Either way nobody receives it.
        sub = self.client()
        got = self.collect(sub, "msl/#", 1)
        pub = self.raw_connected()
        pub.publish("msl/big", b"x" * 101, qos=1)
        try:
            ack = pub.recv(1.0)
            self.assertEqual((ack.type, ack.pid), (PUBACK, 1))
        except Exception:
            pass  # closed: also allowed
        other = self.client()
        self.publish(other, "msl/after", b"small", 1)
        msgs = self.wait_messages(got, 1)
        self.assertEqual([m.topic for m in msgs], ["msl/after"])

    @starling_only("Mosquitto acknowledges and drops a PUBLISH over message_size_limit "
                   "(allowed by [MQTT-3.3.5-2]); Starling closes the connection, as MQTT 5 does")
    def test_payload_over_limit_closes_connection(self):
        sub = self.client()
        got = self.collect(sub, "msl/#", 1)
        pub = self.raw_connected()
        pub.publish("msl/big", b"x" * 101, qos=1)
        self.assert_closed(pub)
        other = self.client()
        self.publish(other, "msl/after", b"small", 1)
        self.assertEqual([m.topic for m in self.wait_messages(got, 1)], ["msl/after"])


if __name__ == "__main__":
    unittest.main()
