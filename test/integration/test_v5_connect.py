"""MQTT 5 CONNECT and CONNACK: the broker's limits and answers in CONNACK (Receive Maximum,
Topic Alias Maximum, Maximum QoS, Retain Available, Maximum Packet Size, wildcard, shared and
subscription-identifier availability, Server Keep Alive, Assigned Client Identifier), refused
CONNECT properties, AUTH without a configured method, request/response and problem information,
and the DISCONNECT the server sends when it ends a connection (session taken over, keep alive
timeout, a second CONNECT). Statement ids are MQTT 5.0's.
"""

import time
import unittest

import harness
from harness import (CONNACK, MQTT5, BrokerTestCase, PacketTypes, encode_auth, encode_connect,
                     mqtt5, pprops, props, starling_only, unique_id)

# The Receive Maximum is Mosquitto's default, 20, in both brokers (Starling's outbound window
# is wider, 65535: README, "max_inflight_messages"). Both default max_topic_alias to 10
# (Topic Alias Maximum).
RECEIVE_MAXIMUM_DEFAULT = 20
TOPIC_ALIAS_MAXIMUM_DEFAULT = 10


def is_utf8_text(value):
    """A str that came from a well-formed UTF-8 string without U+0000 [MQTT-1.5.4-1/2]."""
    return isinstance(value, str) and "\x00" not in value


class ConnackTest(BrokerTestCase):
    def connack(self, **kw):
        r = self.raw5(**kw)
        return r, r.connack

    def test_connack_properties_with_default_config(self):
        _, ca = self.connack()
        self.assertEqual((ca.rc, ca.session_present), (0, False))
        p = ca.props
        # Each property at most once (a duplicate is a Protocol Error, 2.2.2.2).
        dups = {i for i in p.ids() if p.ids().count(i) > 1 and i != mqtt5.USER_PROPERTY}
        self.assertEqual(dups, set(), "duplicate CONNACK properties: %r" % p)
        # 3.2.2.3.3: the broker's own Receive Maximum (max_inflight_messages).
        self.assertEqual(p.get(mqtt5.RECEIVE_MAXIMUM, 65535), RECEIVE_MAXIMUM_DEFAULT)
        if RECEIVE_MAXIMUM_DEFAULT == 65535:
            self.assertNotIn(mqtt5.RECEIVE_MAXIMUM, p)
        # 3.2.2.3.8: inbound aliases up to max_topic_alias.
        self.assertEqual(p.get(mqtt5.TOPIC_ALIAS_MAXIMUM), TOPIC_ALIAS_MAXIMUM_DEFAULT)
        # 3.2.2.3.4: QoS 2 is supported, so Maximum QoS is absent [MQTT-3.2.2-9].
        self.assertNotIn(mqtt5.MAXIMUM_QOS, p)
        # Absent means available; if sent, each must say 1 (retain, wildcards, subscription
        # identifiers and shared subscriptions are all supported).
        for pid in (mqtt5.RETAIN_AVAILABLE, mqtt5.WILDCARD_SUB_AVAILABLE,
                    mqtt5.SUB_ID_AVAILABLE, mqtt5.SHARED_SUB_AVAILABLE):
            self.assertIn(p.get(pid, 1), (1,), "property 0x%02x: %r" % (pid, p))
        # The client gave an id and a keepalive under the maximum: nothing to assign or cap
        # (a Server Keep Alive, if sent anyway, must be the client's 60 [MQTT-3.2.2-21]).
        self.assertNotIn(mqtt5.ASSIGNED_CLIENT_ID, p)
        self.assertEqual(p.get(mqtt5.SERVER_KEEP_ALIVE, 60), 60)
        # No authentication method was sent, so none comes back [MQTT-4.12.0-6].
        self.assertNotIn(mqtt5.AUTH_METHOD, p)
        # Response Information only when asked for [MQTT-3.1.2-28].
        self.assertNotIn(mqtt5.RESPONSE_INFO, p)

    def test_paho_v5_client_connects(self):
        c = self.client5(properties=pprops(PacketTypes.CONNECT, SessionExpiryInterval=0))
        self.assertEqual(c.connack, (False, 0))
        self.assertEqual(getattr(c.connack_props, "ReceiveMaximum", 65535),
                         RECEIVE_MAXIMUM_DEFAULT)

    def test_assigned_client_identifier(self):
        # [MQTT-3.1.3-6], [MQTT-3.2.2-16]: an empty ClientID gets a new, unique one in CONNACK.
        _, a = self.connack(client_id="")
        _, b = self.connack(client_id="")
        ida, idb = a.props.get(mqtt5.ASSIGNED_CLIENT_ID), b.props.get(mqtt5.ASSIGNED_CLIENT_ID)
        self.assertTrue(ida and is_utf8_text(ida), a)
        self.assertTrue(idb and is_utf8_text(idb), b)
        self.assertNotEqual(ida, idb)

    def test_assigned_client_identifier_names_the_session(self):
        # [MQTT-3.1.3-7]: the CONNECT is processed as if the client had sent that ClientID, so
        # connecting with it takes the first connection over [MQTT-3.1.4-3].
        first, ca = self.connack(client_id="")
        assigned = ca.props.get(mqtt5.ASSIGNED_CLIENT_ID)
        self.raw5(assigned)
        self.assert_disconnect(first, 0x8E, allow_close=True)

    def test_paho_empty_client_id(self):
        c = self.client5(client_id="")
        self.assertTrue(c.connack_props.AssignedClientIdentifier)

    def test_request_response_information(self):
        # 3.1.2.11.7: with Request Response Information 1 the server MAY return Response
        # Information; Starling returns a response topic prefix. If present it is a UTF-8
        # string usable as the start of a topic (no wildcards, [MQTT-3.3.2-14]).
        _, ca = self.connack(properties=props((mqtt5.REQUEST_RESPONSE_INFO, 1)))
        self.assertEqual(ca.rc, 0)
        info = ca.props.all(mqtt5.RESPONSE_INFO)
        self.assertLessEqual(len(info), 1)
        if info:
            self.assertTrue(is_utf8_text(info[0]) and info[0], ca)
            self.assertFalse(set(info[0]) & set("+#"), ca)

    def test_no_response_information_when_not_requested(self):
        # [MQTT-3.1.2-28]: Request Response Information 0 -> no Response Information.
        _, ca = self.connack(properties=props((mqtt5.REQUEST_RESPONSE_INFO, 0)))
        self.assertNotIn(mqtt5.RESPONSE_INFO, ca.props)

    def test_connect_with_every_connect_property(self):
        # A CONNECT carrying each CONNECT property (3.1.2.11) and a will with each will
        # property (3.1.3.2) is accepted.
        cprops = props((mqtt5.SESSION_EXPIRY, 10), (mqtt5.RECEIVE_MAXIMUM, 5),
                       (mqtt5.MAXIMUM_PACKET_SIZE, 10000), (mqtt5.TOPIC_ALIAS_MAXIMUM, 3),
                       (mqtt5.REQUEST_RESPONSE_INFO, 0), (mqtt5.REQUEST_PROBLEM_INFO, 1),
                       (mqtt5.USER_PROPERTY, ("k", "v")), (mqtt5.USER_PROPERTY, ("k", "w")))
        wprops = props((mqtt5.WILL_DELAY, 0), (mqtt5.PAYLOAD_FORMAT, 1),
                       (mqtt5.MESSAGE_EXPIRY, 60), (mqtt5.CONTENT_TYPE, "text/plain"),
                       (mqtt5.RESPONSE_TOPIC, "will/answer"), (mqtt5.CORRELATION_DATA, b"\x00\x01"),
                       (mqtt5.USER_PROPERTY, ("w", "1")))
        r = self.raw5(properties=cprops, will=("will/all", b"bye", 1, False),
                      will_properties=wprops)
        r.ping()


class RefusedConnectTest(BrokerTestCase):
    def assert_refused(self, data, rcs, allow_close=True):
        """The CONNECT is refused: a CONNACK with a code in rcs and a close [MQTT-4.13.2-1],
        or (allow_close: the CONNACK is optional, 4.13.1) a close without one. Never a
        CONNACK 0x00."""
        r = self.raw(version=MQTT5)
        r.send(data)
        got = self.assert_closed(r)
        if not got and allow_close:
            return None
        self.assertEqual([p.type for p in got], [CONNACK], got)
        self.assertIn(got[0].rc, rcs, got[0])
        self.assertFalse(got[0].session_present, "[MQTT-3.2.2-6]")
        return got[0]

    def test_bad_connect_property_values(self):
        # Each is a Protocol Error (0x82) or, for a property not allowed on CONNECT or a
        # value of the wrong form, a Malformed Packet (0x81): CONNACK with it, or just a close.
        cases = {
            # 3.1.2.11.3: "a Protocol Error ... for it to have the value 0".
            "Receive Maximum 0": props((mqtt5.RECEIVE_MAXIMUM, 0)),
            "Receive Maximum twice": props((mqtt5.RECEIVE_MAXIMUM, 5), (mqtt5.RECEIVE_MAXIMUM, 5)),
            # 3.1.2.11.4: Maximum Packet Size 0 is a Protocol Error.
            "Maximum Packet Size 0": props((mqtt5.MAXIMUM_PACKET_SIZE, 0)),
            "Session Expiry twice": props((mqtt5.SESSION_EXPIRY, 1), (mqtt5.SESSION_EXPIRY, 1)),
            # 3.1.2.11.6/7: only 0 or 1.
            "Request Problem Information 2": props((mqtt5.REQUEST_PROBLEM_INFO, 2)),
            "Request Response Information 2": props((mqtt5.REQUEST_RESPONSE_INFO, 2)),
            # 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
            "Topic Alias in CONNECT": props((mqtt5.TOPIC_ALIAS, 1)),
            "Payload Format in CONNECT": props((mqtt5.PAYLOAD_FORMAT, 1)),
            "unknown identifier": b"\x7f\x00",
            "value past the block": b"\x11\x00\x00",
        }
        for name, cprops in cases.items():
            with self.subTest(case=name):
                self.assert_refused(encode_connect(unique_id(), version=MQTT5, properties=cprops),
                                    (0x81, 0x82))
        self.assert_broker_works()

    def test_will_property_not_allowed(self):
        # A Session Expiry Interval among the will properties is not a will property (3.1.3.2).
        data = encode_connect(unique_id(), version=MQTT5, will=("w/t", b"x", 0, False),
                              will_properties=props((mqtt5.SESSION_EXPIRY, 5)))
        self.assert_refused(data, (0x81, 0x82))

    def test_authentication_method_gets_bad_authentication_method(self):
        # [MQTT-4.12.0-1]: no authentication method is configured, so CONNACK 0x8C (Bad
        # authentication method) and the connection is closed [MQTT-3.2.2-7].
        data = encode_connect(unique_id(), version=MQTT5,
                              properties=props((mqtt5.AUTH_METHOD, "SCRAM-SHA-1"),
                                               (mqtt5.AUTH_DATA, b"client-first")))
        ca = self.assert_refused(data, (0x8C,), allow_close=False)
        # [MQTT-4.12.0-5] only binds a successful CONNACK; a refusal need not echo the method.
        self.assertFalse(ca.session_present)

    def test_paho_authentication_method_refused(self):
        c = self.client5(properties=pprops(PacketTypes.CONNECT, AuthenticationMethod="PLAIN"),
                         expect_rc=0x8C)
        self.assertTrue(c.disconnected.wait(3))

    def test_protocol_version_6_refused(self):
        # [MQTT-3.1.2-2]: CONNACK 0x84 (Unsupported Protocol Version) and a close, or a close.
        data = encode_connect(unique_id(), version=MQTT5)
        data = data.replace(b"MQTT\x05", b"MQTT\x06", 1)
        self.assert_refused(data, (0x84, 0x01))


class ServerDisconnectTest(BrokerTestCase):
    """DISCONNECT packets the server sends before closing a v5 connection (3.14, 4.13)."""

    def test_session_taken_over_closes_the_old_connection(self):
        # [MQTT-3.1.4-3]: the existing connection is closed (DISCONNECT 0x8E checked below).
        cid = unique_id()
        old = self.raw5(cid)
        self.raw5(cid)
        self.assert_disconnect(old, 0x8E, allow_close=True)

    @starling_only("Mosquitto 2.0.11 closes the taken-over MQTT 5 connection without a "
                   "DISCONNECT 0x8E ([MQTT-3.1.4-3])")
    def test_session_taken_over_gets_0x8e(self):
        cid = unique_id()
        old = self.raw5(cid)
        old.ping()
        new = self.raw5(cid)
        self.assert_disconnect(old, 0x8E)
        new.ping()

    def test_paho_sees_session_taken_over(self):
        cid = unique_id()
        old = self.client5(cid)
        self.client5(cid)
        self.assertTrue(old.disconnected.wait(3), "the old paho client stayed connected")

    def test_keep_alive_timeout(self):
        # [MQTT-3.1.2-22]: silent for 1.5 x Keep Alive -> closed "as if the network had
        # failed"; a DISCONNECT 0x8D (Keep Alive timeout) first is allowed, not required.
        # Mosquitto's timer needs up to ~6 s for a keepalive of 1.
        r = self.raw5(keepalive=1)
        start = time.monotonic()
        d = self.assert_disconnect(r, 0x8D, timeout=8.0, allow_close=True)
        self.assertGreaterEqual(time.monotonic() - start, 1.0, d)

    @starling_only("Mosquitto 2.0.11 closes at a second CONNECT without a DISCONNECT 0x82 "
                   "(4.13.1: SHOULD send it)")
    def test_second_connect_is_a_protocol_error(self):
        # [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error: DISCONNECT 0x82, close.
        r = self.raw5()
        r.send(encode_connect(unique_id(), version=MQTT5))
        self.assert_disconnect(r, 0x82)

    def test_second_connect_closes(self):
        r = self.raw5()
        r.send(encode_connect(unique_id(), version=MQTT5))
        self.assert_disconnect(r, 0x82, allow_close=True)

    @starling_only("Mosquitto 2.0.11 closes at an AUTH from a client that sent no "
                   "Authentication Method without a DISCONNECT 0x82 ([MQTT-4.12.0-7], 4.13.1)")
    def test_auth_without_authentication_method(self):
        # [MQTT-4.12.0-7]: no Authentication Method in CONNECT, so an AUTH is a Protocol Error.
        r = self.raw5()
        r.send(encode_auth(0x19, props((mqtt5.AUTH_METHOD, "PLAIN"))))
        self.assert_disconnect(r, 0x82)
        self.assert_broker_works()

    def test_disconnect_from_server_has_no_session_expiry(self):
        # [MQTT-3.14.2-2]: the Session Expiry Interval is never sent by the server. A protocol
        # error gets a DISCONNECT; whatever it carries, not that.
        r = self.raw5(properties=props((mqtt5.SESSION_EXPIRY, 30)))
        r.send(b"\x30\x03\x00\x00\x00")  # a PUBLISH with an empty topic and no alias
        d = self.assert_disconnect(r, 0x82, allow_close=True)
        if d is not None:
            self.assertNotIn(mqtt5.SESSION_EXPIRY, d.props)


class ServerKeepAliveTest(BrokerTestCase):
    config_lines = ("max_keepalive 10",)

    def test_keep_alive_above_maximum_is_capped(self):
        # 3.2.2.3.14 and [MQTT-3.2.2-21]: the broker answers with the keep alive it uses.
        r = self.raw5(keepalive=60)
        self.assertEqual(r.connack.props.get(mqtt5.SERVER_KEEP_ALIVE), 10)

    def test_keep_alive_zero_gets_the_maximum(self):
        # A client asking for no keep alive gets max_keepalive too (as Mosquitto does for v5).
        r = self.raw5(keepalive=0)
        self.assertEqual(r.connack.props.get(mqtt5.SERVER_KEEP_ALIVE), 10)

    def test_keep_alive_within_maximum(self):
        # [MQTT-3.2.2-22]: without Server Keep Alive the client's value is used; if the
        # broker sends one anyway it must be the client's.
        r = self.raw5(keepalive=5)
        self.assertIn(r.connack.props.get(mqtt5.SERVER_KEEP_ALIVE, 5), (5,))

    def test_paho_reads_server_keep_alive(self):
        c = self.client5(keepalive=30)
        self.assertEqual(c.connack_props.ServerKeepAlive, 10)


class RetainUnavailableTest(BrokerTestCase):
    config_lines = ("retain_available false",)

    def test_connack_says_retain_unavailable(self):
        # 3.2.2.3.5: Retain Available 0.
        r = self.raw5()
        self.assertEqual(r.connack.props.get(mqtt5.RETAIN_AVAILABLE), 0)

    def test_retained_publish_gets_0x9a(self):
        # 3.3.1.3: a PUBLISH with RETAIN 1 then gets DISCONNECT 0x9A (Retain not supported)
        # [MQTT-3.2.2-14]; nothing is delivered.
        sub = self.client5()
        got = self.collect(sub, "ru/#", 1)
        r = self.raw5()
        r.publish("ru/t", b"kept?", qos=1, retain=True)
        self.assert_disconnect(r, 0x9A)
        pub = self.client5()
        self.publish(pub, "ru/after", b"plain", 1)
        self.assertEqual([m.topic for m in self.wait_messages(got, 1)], ["ru/after"])

    def test_will_retain_refused(self):
        # [MQTT-3.2.2-13]: a will with Will Retain 1 -> CONNACK 0x9A and close.
        r = self.raw(version=MQTT5)
        ca = r.connect(unique_id(), will=("ru/will", b"x", 0, True))
        self.assertEqual(ca.rc, 0x9A)
        self.assert_closed(r)


class ProblemInformationTest(BrokerTestCase):
    def test_request_problem_information_0(self):
        # [MQTT-3.1.2-29]: no Reason String or User Property on packets other than PUBLISH,
        # CONNACK and DISCONNECT. Gather acks that are likely to carry one: PUBACK 0x10,
        # PUBREC, SUBACK with a failure, UNSUBACK 0x11.
        r = self.raw5(properties=props((mqtt5.REQUEST_PROBLEM_INFO, 0)))
        r.publish_acked("rpi/nobody", b"x", 1)
        acks = [r.last_ack]
        r.publish_acked("rpi/nobody", b"x", 2)
        acks.append(r.last_ack)
        r.subscribe([("rpi/ok", 1)])
        acks.append(r.last_ack)
        acks.append(r.unsubscribe(["rpi/none", "rpi/ok"]))
        for p in acks:
            self.assertNotIn(mqtt5.REASON_STRING, p.props, p)
            self.assertNotIn(mqtt5.USER_PROPERTY, p.props, p)
        self.assertEqual(acks[-1].codes, [0x11, 0x00])

    def test_reason_strings_are_utf8_when_sent(self):
        # With Request Problem Information 1 (the default) a Reason String is optional; when
        # present it is a UTF-8 string (3.4.2.2.2 and the other acks).
        r = self.raw5()
        r.publish_acked("rps/nobody", b"x", 1)
        acks = [r.last_ack, r.unsubscribe(["rps/none"])]
        for p in acks:
            for s in p.props.all(mqtt5.REASON_STRING):
                self.assertTrue(is_utf8_text(s), p)
            self.assertLessEqual(len(p.props.all(mqtt5.REASON_STRING)), 1, p)


class PahoRawAgreementTest(BrokerTestCase):
    def test_paho_v5_and_raw_v5_see_the_same_limits(self):
        c = self.client5()
        r = self.raw5()
        self.assertEqual(c.connack_props.TopicAliasMaximum,
                         r.connack.props.get(mqtt5.TOPIC_ALIAS_MAXIMUM))
        self.assertEqual(getattr(c.connack_props, "ReceiveMaximum", 65535),
                         r.connack.props.get(mqtt5.RECEIVE_MAXIMUM, 65535))

    def test_v5_and_v311_clients_share_the_client_id_space(self):
        # A 3.1.1 connection with the same ClientID takes a v5 session over, and the reverse.
        cid = unique_id()
        v5 = self.raw5(cid)
        v3 = self.raw_connected(cid)
        self.assert_disconnect(v5, 0x8E, allow_close=True)
        self.raw5(cid)
        # A 3.1.1 connection is closed without a DISCONNECT: 3.1.1 has no server DISCONNECT.
        self.assertEqual(self.assert_closed(v3), [])


if __name__ == "__main__":
    unittest.main()
