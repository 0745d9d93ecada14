"""CONNECT handling: protocol levels, client identifiers, authentication, session takeover and
the rules about which packet may come first. Raw sockets send the CONNECT variants no real
client would; paho covers the ordinary MQTT 3.1 and 3.1.1 logins. Statement ids are MQTT 3.1.1's.
"""

import unittest

import paho.mqtt.client as paho

from harness import (CONNACK, MQTT31, PINGRESP, BrokerTestCase, encode_connect, encode_pingreq,
                     encode_publish, encode_subscribe, mqtt_bytes, packet, unique_id)


class ConnectTest(BrokerTestCase):
    def assert_refused(self, connect_bytes, rc=None):
        """The broker sends no accepting CONNACK and closes; with `rc`, it first sends
        exactly that CONNACK (session present 0 [MQTT-3.2.2-4], then close [MQTT-3.2.2-5])."""
        r = self.raw()
        r.send(connect_bytes)
        got = self.assert_closed(r)
        if rc is None:
            self.assertFalse([p for p in got if p.type == CONNACK and p.rc == 0],
                             "connection accepted: %r" % got)
        else:
            self.assertEqual(len(got), 1, got)
            self.assertEqual(got[0].type, CONNACK)
            self.assertEqual(got[0].body, bytes([0, rc]), got)
        return got

    def test_unsupported_protocol_level_gets_connack_1_then_close(self):
        # [MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol level), then disconnect.
        for level in (0, 1, 2, 6, 9, 0x7F):
            with self.subTest(level=level):
                self.assert_refused(encode_connect(unique_id(), version=level,
                                                   protocol_name="MQTT"), rc=1)
        self.assert_broker_works()

    def test_protocol_name_not_matching_level_is_refused(self):
        # "MQTT" is level 4 (and 5), "MQIsdp" level 3. A mismatch is either an unsupported
        # level (CONNACK 0x01) or an unknown protocol ([MQTT-3.1.2-1]: the server MAY close).
        for name, level in (("MQIsdp", 4), ("MQTT", 3), ("MQTX", 4), ("", 4)):
            with self.subTest(name=name, level=level):
                got = self.assert_refused(encode_connect(unique_id(), version=level,
                                                         protocol_name=name))
                for p in got:
                    self.assertEqual(p.body, b"\x00\x01", got)

    def test_empty_client_id_with_clean_session_is_accepted(self):
        # [MQTT-3.1.3-6]: the server assigns a unique id; two such clients coexist.
        a = self.raw()
        ca = a.connect("", clean_session=True)
        self.assertEqual((ca.rc, ca.session_present), (0, False))
        b = self.raw()
        self.assertEqual(b.connect("", clean_session=True).rc, 0)
        self.assertEqual(a.subscribe([("empty/id", 1)]), [1])
        b.publish_acked("empty/id", b"hello", 1)
        (p,) = a.recv_publishes(1)
        self.assertEqual(p.payload, b"hello")
        # Neither took the other's session over: both are still connected.
        a.ping()
        b.ping()

    def test_empty_client_id_paho(self):
        c = self.client(client_id="")
        got = self.collect(c, "empty/paho", 1)
        self.publish(c, "empty/paho", b"x", 1)
        self.wait_messages(got, 1)

    def test_empty_client_id_without_clean_session_gets_0x02(self):
        # [MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), then close.
        self.assert_refused(encode_connect("", clean_session=False), rc=2)

    def test_mqtt31_client_connects(self):
        # MQTT 3.1: protocol name "MQIsdp", level 3.
        r = self.raw(version=MQTT31)
        ca = r.connect(unique_id(), version=MQTT31)
        self.assertEqual(ca.rc, 0)
        self.assertEqual(r.subscribe([("v31/raw", 1)]), [1])
        r.publish_acked("v31/raw", b"raw31", 1)
        (p,) = r.recv_publishes(1)
        self.assertEqual(p.payload, b"raw31")

    def test_mqtt31_and_311_paho_clients_interoperate(self):
        old = self.client(protocol=paho.MQTTv31)
        new = self.client(protocol=paho.MQTTv311)
        at_old = self.collect(old, "mix/#", 2)
        at_new = self.collect(new, "mix/#", 2)
        self.publish(old, "mix/from31", b"a", 2)
        self.publish(new, "mix/from311", b"b", 1)
        for got in (at_old, at_new):
            msgs = self.wait_messages(got, 2)
            self.assertEqual(sorted((m.topic, m.payload, m.qos) for m in msgs),
                             [("mix/from31", b"a", 2), ("mix/from311", b"b", 1)])

    def test_username_and_password_accepted_when_anonymous_allowed(self):
        c = self.client(username="alice", password="secret")
        got = self.collect(c, "auth/ok", 0)
        self.publish(c, "auth/ok", b"hi")
        self.wait_messages(got, 1)
        # A user name without a password is valid too ([MQTT-3.1.2-22] only forbids the reverse).
        r = self.raw()
        self.assertEqual(r.connect(unique_id(), username="bob").rc, 0)

    def test_same_client_id_takes_over_and_closes_first(self):
        # [MQTT-3.1.4-2]: the existing client is disconnected.
        cid = unique_id("dup")
        first = self.raw()
        self.assertEqual(first.connect(cid, clean_session=False).rc, 0)
        self.assertEqual(first.subscribe([("takeover/t", 1)]), [1])
        second = self.raw()
        ca = second.connect(cid, clean_session=False)
        self.assertEqual(ca.rc, 0)
        # The session (with its subscription) moved to the new connection [MQTT-3.2.2-2].
        self.assertTrue(ca.session_present)
        self.assert_closed(first)
        pub = self.raw_connected()
        pub.publish_acked("takeover/t", b"to-second", 1)
        (p,) = second.recv_publishes(1)
        self.assertEqual(p.payload, b"to-second")
        second.ping()

    def test_takeover_with_clean_session(self):
        cid = unique_id("dup")
        first = self.raw()
        self.assertEqual(first.connect(cid).rc, 0)
        second = self.raw()
        ca = second.connect(cid)
        self.assertEqual((ca.rc, ca.session_present), (0, False))
        self.assert_closed(first)
        second.ping()

    def test_second_connect_closes_connection(self):
        # [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
        r = self.raw_connected()
        r.send(encode_connect(unique_id()))
        self.assert_closed(r)
        self.assert_broker_works()

    def test_packet_before_connect_closes_connection(self):
        # [MQTT-3.1.0-1]: the first packet must be CONNECT.
        sub = self.client()
        got = self.collect(sub, "early/#", 0)
        for name, data in (("PUBLISH", encode_publish("early/pub", b"sneaky")),
                           ("PINGREQ", encode_pingreq()),
                           ("SUBSCRIBE", encode_subscribe(1, [("early/#", 0)]))):
            with self.subTest(first=name):
                r = self.raw()
                r.send(data)
                got_packets = self.assert_closed(r)
                self.assertFalse([p for p in got_packets if p.type == PINGRESP], got_packets)
        self.assert_no_messages(got, 0.2)

    def test_reserved_connect_flag_closes_without_connack(self):
        # [MQTT-3.1.2-3]: the reserved flag (bit 0) must be zero.
        self.assert_refused(encode_connect(unique_id(), flags_extra=0x01))

    def test_inconsistent_will_flags_close_without_connack(self):
        # [MQTT-3.1.2-13] Will QoS and [MQTT-3.1.2-15] Will Retain must be 0 without the
        # Will Flag; [MQTT-3.1.2-14] Will QoS 3 is invalid; [MQTT-3.1.4-1] close, no CONNACK.
        cases = {"qos-without-will": encode_connect(unique_id(), flags_extra=0x08),
                 "retain-without-will": encode_connect(unique_id(), flags_extra=0x20),
                 "will-qos-3": encode_connect(unique_id(), will=("w/t", b"x", 3, False))}
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_refused(data)

    def test_password_without_username_is_refused(self):
        # [MQTT-3.1.2-22]: without the User Name Flag the Password Flag must be 0.
        data = encode_connect(unique_id(), flags_extra=0x40)
        # The flag promises a password field, so append one to keep the length consistent.
        data = data[:1] + bytes([data[1] + 3]) + data[2:] + mqtt_bytes("pw")
        self.assert_refused(data)

    def test_malformed_client_id_is_refused(self):
        # [MQTT-3.1.3-4] the id is a UTF-8 string: ill-formed UTF-8 [MQTT-1.5.3-1] or U+0000
        # [MQTT-1.5.3-2] close the connection (a CONNACK 0x02 first is also acceptable).
        for name, cid in (("ill-formed", b"\xff\xfe"), ("nul", b"a\x00b"),
                          ("surrogate", b"\xed\xa0\x80")):
            with self.subTest(case=name):
                body = (mqtt_bytes("MQTT") + b"\x04\x02\x00\x3c" + mqtt_bytes(cid))
                got = self.assert_refused(packet(1, 0, body))
                for p in got:
                    self.assertEqual(p.body, b"\x00\x02", got)


class AnonymousRefusedTest(BrokerTestCase):
    # No password file: with anonymous logins disallowed, nobody gets in.
    config_lines = ("allow_anonymous false",)

    def assert_not_authorized(self, **kw):
        r = self.raw()
        r.send(encode_connect(unique_id(), **kw))
        got = self.assert_closed(r)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0].type, CONNACK)
        self.assertEqual(got[0].body, b"\x00\x05")  # 0x05 not authorized, session present 0

    def test_anonymous_client_refused_with_0x05(self):
        self.assert_not_authorized()

    def test_client_with_credentials_refused_with_0x05(self):
        self.assert_not_authorized(username="alice", password="secret")

    def test_mqtt31_client_refused_with_0x05(self):
        self.assert_not_authorized(version=MQTT31)

    def test_paho_sees_refusal(self):
        c = paho.Client(client_id=unique_id(), reconnect_on_failure=False)
        result = []
        c.on_connect = lambda client, userdata, flags, rc: result.append(rc)
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        self.defer(c.loop_stop)
        self.wait_for(lambda: result)
        self.assertEqual(result, [paho.CONNACK_REFUSED_NOT_AUTHORIZED])


if __name__ == "__main__":
    unittest.main()
