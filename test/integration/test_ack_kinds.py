"""Acknowledgements of outbound QoS 1/2 PUBLISHes (MQTT 3.1.1 and 5.0 section 4.3): one of the
wrong kind for a message in flight (PUBREC or PUBCOMP for QoS 1, PUBACK for QoS 2, whether or
not its PUBREC came) means the client and the broker disagree on the flow: a protocol error,
closed on 3.1.1 and DISCONNECT 0x82 on 5.0 [MQTT-4.13.1-1] [MQTT-4.8.0-1]. One for an id that
is not in use is not an error: a PUBACK or PUBCOMP is ignored, a PUBREC gets its PUBREL (0x92
Packet Identifier not found in 5.0, 3.6.2.1) and a PUBREL its PUBCOMP (0x92 in 5.0, 3.7.2.1).
"""

import unittest

import harness
from harness import (MQTT311, MQTT5, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, BrokerTestCase,
                     encode_ack, starling_only, unique_id)

ONLY = "Mosquitto 2.0.11 ignores an acknowledgement of the wrong kind"


class AckKindTest(BrokerTestCase):
    def delivery(self, version, qos, pubrec_first=False):
        """A subscriber holding one outbound PUBLISH at qos (after its PUBREC with
        pubrec_first), and the PUBLISH."""
        topic = "ak/%s" % unique_id()
        sub = self.raw_connected(version=version)
        sub.subscribe([(topic, qos)])
        pub = self.raw_connected(version=version)
        pub.publish_acked(topic, b"m", qos)
        p = sub.recv()
        self.assertEqual((p.type, p.qos), (PUBLISH, qos))
        if pubrec_first:
            sub.send(encode_ack(PUBREC, p.pid))
            rel = sub.recv()
            self.assertEqual((rel.type, rel.pid), (PUBREL, p.pid))
        return sub, p

    def assert_protocol_error(self, sub, version):
        if version == MQTT5:
            self.assert_disconnect(sub, 0x82)
        else:
            closed, got = sub.wait_closed(3)
            self.assertTrue(closed, "still open after %r" % got)
            self.assertEqual(got, [])

    def wrong(self, version, qos, kind, pubrec_first=False):
        sub, p = self.delivery(version, qos, pubrec_first)
        sub.send(encode_ack(kind, p.pid))
        self.assert_protocol_error(sub, version)
        # Nobody else is disturbed.
        self.raw_connected(version=version).ping()

    @starling_only(ONLY)
    def test_pubrec_for_qos1(self):
        for version in (MQTT311, MQTT5):
            with self.subTest(version=version):
                self.wrong(version, 1, PUBREC)

    @starling_only(ONLY)
    def test_pubcomp_for_qos1(self):
        for version in (MQTT311, MQTT5):
            with self.subTest(version=version):
                self.wrong(version, 1, PUBCOMP)

    @starling_only(ONLY)
    def test_puback_for_qos2(self):
        for version in (MQTT311, MQTT5):
            with self.subTest(version=version):
                self.wrong(version, 2, PUBACK)

    @starling_only(ONLY)
    def test_puback_for_qos2_after_its_pubrec(self):
        for version in (MQTT311, MQTT5):
            with self.subTest(version=version):
                self.wrong(version, 2, PUBACK, pubrec_first=True)

    def test_repeated_pubrec_gets_pubrel_again(self):
        # A PUBREC for a message already awaiting PUBCOMP is of the right kind: its PUBREL is
        # sent again (with 0x00 in 5.0: the id is known), and the PUBCOMP ends the flow.
        for version in (MQTT311, MQTT5):
            with self.subTest(version=version):
                sub, p = self.delivery(version, 2, pubrec_first=True)
                sub.send(encode_ack(PUBREC, p.pid))
                rel = sub.recv()
                self.assertEqual((rel.type, rel.pid), (PUBREL, p.pid))
                if version == MQTT5 and harness.KIND == "starling":
                    self.assertEqual(rel.rc, 0)
                sub.send(encode_ack(PUBCOMP, p.pid))
                sub.ping()

    def test_unknown_ids_are_not_errors(self):
        for version in (MQTT311, MQTT5):
            with self.subTest(version=version):
                sub, p = self.delivery(version, 1)
                unknown = p.pid + 100
                sub.send(encode_ack(PUBACK, unknown))
                sub.send(encode_ack(PUBCOMP, unknown))
                sub.send(encode_ack(PUBREC, unknown))
                rel = sub.recv()
                self.assertEqual((rel.type, rel.pid), (PUBREL, unknown))
                sub.send(encode_ack(PUBREL, unknown))
                comp = sub.recv()
                self.assertEqual((comp.type, comp.pid), (PUBCOMP, unknown))
                if version == MQTT5 and harness.KIND == "starling":
                    # Mosquitto 2.0.11 answers both with 0x00.
                    self.assertEqual((rel.rc, comp.rc), (0x92, 0x92))
                # Still connected, and the right acknowledgement still completes the flow.
                sub.ping()
                sub.send(encode_ack(PUBACK, p.pid))
                sub.ping()


if __name__ == "__main__":
    unittest.main()
