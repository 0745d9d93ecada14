"""Will messages: published when the connection ends without DISCONNECT (keepalive timeout,
socket closed or reset, a killed client process, a protocol violation, a session taken over),
never after DISCONNECT, with the will's QoS and retain flag honoured. Statement ids are
MQTT 3.1.1's ([MQTT-3.1.2-8] to [MQTT-3.1.2-17], [MQTT-3.14.4-3]).
"""

import signal
import time
import unittest

from harness import (MOSQUITTO_SUB, BrokerTestCase, client_cmd, encode_publish, starling_only,
                     unique_id)


class WillTest(BrokerTestCase):
    def watch(self, topic, qos=2):
        c = self.client()
        return self.collect(c, topic, qos)

    def will_client(self, topic, payload=b"gone", qos=0, retain=False, keepalive=60):
        r = self.raw_connected(will=(topic, payload, qos, retain), keepalive=keepalive)
        return r

    def test_published_on_socket_close_without_disconnect(self):
        got = self.watch("will/close")
        r = self.will_client("will/close", b"closed")
        r.ping()
        r.close()
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.topic, m.payload, m.retain), ("will/close", b"closed", False))

    def test_published_on_connection_reset(self):
        got = self.watch("will/reset")
        r = self.will_client("will/reset", b"reset")
        r.ping()
        r.abort()
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"reset")

    def test_published_on_protocol_violation(self):
        # 3.1.2.5: closing the connection for a protocol error publishes the will.
        got = self.watch("will/violation")
        r = self.will_client("will/violation", b"violated")
        r.send(encode_publish("will/+", b"wildcard topic"))
        self.assert_closed(r)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual(m.payload, b"violated")

    def test_published_when_process_killed(self):
        got = self.watch("will/killed")
        sub = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-t", "will/ignored", "-d",
                                    "--will-topic", "will/killed", "--will-payload", "sigkill",
                                    "--will-qos", "1"))
        self.assertIsNotNone(sub.wait_line(lambda l: "SUBACK" in l), sub.output())
        sub.signal(signal.SIGKILL)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.payload, m.qos), (b"sigkill", 1))

    def test_published_when_paho_process_killed(self):
        got = self.watch("will/paho")
        code = ("import paho.mqtt.client as m, sys, time\n"
                "c = m.Client('%s')\n"
                "c.will_set('will/paho', b'paho-died', 2)\n"
                "c.on_connect = lambda *a: print('connected', flush=True)\n"
                "c.connect('%s', %d)\n"
                "c.loop_forever()\n" % (unique_id(), self.broker.host, self.broker.port))
        proc = self.spawn(["/usr/bin/python3", "-c", code])
        self.assertIsNotNone(proc.wait_line(lambda l: "connected" in l), proc.output())
        proc.signal(signal.SIGKILL)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.payload, m.qos), (b"paho-died", 2))

    def test_not_published_after_disconnect(self):
        # [MQTT-3.14.4-3]: DISCONNECT discards the will.
        got = self.watch("will/none")
        r = self.will_client("will/none")
        r.disconnect()
        c = self.client(will=("will/none", b"paho", 1, False))
        c.disconnect()
        self.wait_for(c.disconnected.is_set)
        # A message published afterwards arrives alone: no will went out before it.
        self.publish(self.client(), "will/none", b"after", 1)
        msgs = self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.5, expected=1)
        self.assertEqual(msgs[0].payload, b"after")

    def test_no_will_without_will_flag(self):
        # [MQTT-3.1.2-12]: no will flag, nothing published on an abrupt close.
        got = self.watch("#")
        r = self.raw_connected()
        r.abort()
        self.assert_no_messages(got, 0.5)

    def test_will_qos_honoured(self):
        # The will is published at its QoS: delivered at min(will QoS, granted) [MQTT-3.8.4-6].
        for will_qos in (0, 1, 2):
            with self.subTest(will_qos=will_qos):
                topic = "will/qos%d" % will_qos
                at2 = self.watch(topic, 2)
                at1 = self.watch(topic, 1)
                r = self.will_client(topic, b"q", qos=will_qos)
                r.close()
                self.assertEqual(self.wait_messages(at2, 1)[0].qos, will_qos)
                self.assertEqual(self.wait_messages(at1, 1)[0].qos, min(1, will_qos))

    def test_will_retain_honoured(self):
        # [MQTT-3.1.2-17]: Will Retain 1 publishes a retained message; live subscribers get
        # RETAIN 0 [MQTT-3.3.1-9], later ones RETAIN 1 [MQTT-3.3.1-8].
        live = self.watch("will/ret", 1)
        r = self.will_client("will/ret", b"last-words", qos=1, retain=True)
        r.close()
        (m,) = self.wait_messages(live, 1)
        self.assertEqual((m.payload, m.retain), (b"last-words", False))
        late = self.watch("will/ret", 2)
        (m,) = self.wait_messages(late, 1)
        self.assertEqual((m.payload, m.retain, m.qos), (b"last-words", True, 1))

    def test_will_without_retain_not_stored(self):
        # [MQTT-3.1.2-16]: Will Retain 0 publishes a non-retained message.
        live = self.watch("will/noret", 1)
        r = self.will_client("will/noret", b"x", qos=1, retain=False)
        r.close()
        self.wait_messages(live, 1)
        late = self.watch("will/noret", 1)
        self.assert_no_messages(late, 0.3)

    def test_will_published_once(self):
        # [MQTT-3.1.2-10]: after publication the will is gone, even if the session persists.
        got = self.watch("will/once", 1)
        cid = unique_id()
        r = self.raw_connected(cid, clean_session=False, will=("will/once", b"w", 1, False))
        r.close()
        self.wait_messages(got, 1)
        r = self.raw()
        self.assertEqual(r.connect(cid, clean_session=False).rc, 0)
        r.close()
        self.assert_no_messages(got, 0.5, expected=1)

    def test_empty_will_payload(self):
        got = self.watch("will/empty")
        r = self.will_client("will/empty", b"")
        r.close()
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"")

    def test_will_on_session_takeover(self):
        # The taken-over connection ends without DISCONNECT, so its will is published.
        got = self.watch("will/takeover")
        cid = unique_id()
        self.raw_connected(cid, will=("will/takeover", b"taken", 0, False))
        self.raw_connected(cid)
        self.assertEqual(self.wait_messages(got, 1)[0].payload, b"taken")

    def keepalive_will_delay(self, limit_s):
        got = self.watch("will/ka")
        self.will_client("will/ka", b"timeout", keepalive=1)
        start = time.monotonic()
        # The client now says nothing at all; the server must give up on it.
        self.wait_messages(got, 1, timeout=limit_s)
        return time.monotonic() - start

    @starling_only("Mosquitto 2.0.11 checks keepalives about every 5 s: a keepalive-1 client "
                   "is dropped after ~6 s instead of 1.5 s ([MQTT-3.1.2-24])")
    def test_published_on_keepalive_timeout(self):
        # [MQTT-3.1.2-24]: nothing received within 1.5 x keepalive -> disconnect, will goes
        # out. Not before one keepalive period; a timer tick of slack after 1.5 s.
        delay = self.keepalive_will_delay(3.5)
        self.assertGreaterEqual(delay, 1.0)
        self.assertLessEqual(delay, 2.75)

    def test_published_on_keepalive_timeout_eventually(self):
        # The same with Mosquitto's coarse keepalive timer: within 8 s, never before 1 s.
        delay = self.keepalive_will_delay(8.0)
        self.assertGreaterEqual(delay, 1.0)


if __name__ == "__main__":
    unittest.main()
