"""MQTT 5 wills: the Will Delay Interval (published after the delay, or when the session ends
first, and not at all if the client comes back in time), will properties forwarded like a
PUBLISH's, and the DISCONNECT reason codes that keep (0x04) or drop (0x00) the will.
Statement ids are MQTT 5.0's ([MQTT-3.1.2-8], [MQTT-3.1.2-10], [MQTT-3.1.3-9],
[MQTT-3.1.3-10], [MQTT-3.14.4-3]).

Timing: delays of 1-2 s; Mosquitto acts on them up to a second late, so lower bounds are exact
and upper bounds leave SLACK_S.
"""

import signal
import time
import unittest

from harness import (MOSQUITTO_SUB, BrokerTestCase, client_cmd, mqtt5, props, starling_only,
                     unique_id)

SLACK_S = 1.5


class WillDelayTest(BrokerTestCase):
    def watch(self, topic):
        """A raw v5 subscriber (QoS 2) on topic."""
        w = self.raw5()
        w.subscribe([(topic, 2)])
        return w

    def will_client(self, topic, payload=b"gone", delay_s=None, expiry_s=None, cid=None,
                    qos=1, retain=False, extra_will_props=b""):
        wprops = extra_will_props
        if delay_s is not None:
            wprops = props((mqtt5.WILL_DELAY, delay_s)) + wprops
        cprops = props((mqtt5.SESSION_EXPIRY, expiry_s)) if expiry_s is not None else b""
        return self.raw5(cid or unique_id(), will=(topic, payload, qos, retain),
                         will_properties=wprops, properties=cprops)

    def test_no_delay_publishes_at_once(self):
        # Will Delay absent: published when the connection closes without DISCONNECT.
        w = self.watch("wd/now")
        r = self.will_client("wd/now", b"now")
        r.close()
        (p,) = w.recv_publishes(1, timeout=3)
        self.assertEqual((p.topic, p.payload, p.qos), ("wd/now", b"now", 1))
        # The Will Delay Interval is the broker's, not part of the message.
        self.assertNotIn(mqtt5.WILL_DELAY, p.props)

    def test_published_after_the_delay(self):
        # [MQTT-3.1.2-8]: after the Will Delay Interval (2 s; the session lasts 10).
        w = self.watch("wd/late")
        r = self.will_client("wd/late", b"late", delay_s=2, expiry_s=10)
        r.close()
        start = time.monotonic()
        self.assertTrue(w.silent_for(1.7), "will published before its 2 s delay")
        (p,) = w.recv_publishes(1, timeout=0.3 + SLACK_S)
        self.assertGreaterEqual(time.monotonic() - start, 1.9)
        self.assertEqual(p.payload, b"late")

    def test_not_published_if_the_client_reconnects_in_time(self):
        # [MQTT-3.1.3-9]: a new connection to the session within the delay cancels the will.
        w = self.watch("wd/back")
        cid = unique_id()
        r = self.will_client("wd/back", delay_s=1, expiry_s=30, cid=cid)
        r.close()
        time.sleep(0.3)
        back = self.raw5(cid, clean_start=False, properties=props((mqtt5.SESSION_EXPIRY, 30)))
        self.assertTrue(back.connack.session_present)
        self.assertTrue(w.silent_for(1.0 + SLACK_S), "will published although the client came back")

    def test_published_when_the_session_ends_first(self):
        # [MQTT-3.1.2-8]: "either the Will Delay Interval has elapsed or the Session ends":
        # a 1 s session with a 30 s will delay publishes when the session expires.
        w = self.watch("wd/expired")
        r = self.will_client("wd/expired", b"session-over", delay_s=30, expiry_s=1)
        r.close()
        (p,) = w.recv_publishes(1, timeout=1.0 + SLACK_S)
        self.assertEqual(p.payload, b"session-over")

    @starling_only("Mosquitto 2.0.11 waits out the Will Delay Interval of a session with "
                   "Session Expiry 0, which ends at the close ([MQTT-3.1.2-8], 3.1.3.2.2)")
    def test_session_expiry_0_publishes_at_once(self):
        # No session outlives the connection, so the session ends at the close and the will
        # goes out then, whatever the delay.
        w = self.watch("wd/zero")
        r = self.will_client("wd/zero", b"no-session", delay_s=30, expiry_s=0)
        r.close()
        (p,) = w.recv_publishes(1, timeout=SLACK_S)
        self.assertEqual(p.payload, b"no-session")

    def test_disconnect_with_will_message(self):
        # 3.14.2.1: DISCONNECT 0x04 (Disconnect with Will Message) publishes the will.
        w = self.watch("wd/04")
        r = self.will_client("wd/04", b"asked-for")
        r.disconnect(0x04)
        (p,) = w.recv_publishes(1, timeout=3)
        self.assertEqual(p.payload, b"asked-for")

    def test_normal_disconnect_drops_the_will(self):
        # [MQTT-3.1.2-10], [MQTT-3.14.4-3]: DISCONNECT 0x00 deletes the will, even a delayed
        # one whose session lives on.
        w = self.watch("wd/00")
        self.will_client("wd/00").disconnect(0x00)
        self.will_client("wd/00", delay_s=1, expiry_s=30).disconnect()
        self.assertTrue(w.silent_for(1.0 + SLACK_S), "a will was published after DISCONNECT 0x00")

    def test_paho_will_with_delay(self):
        # A paho v5 client process with a 1 s will delay, killed: the will follows after it.
        w = self.watch("wd/paho")
        proc = self.spawn_paho_will("wd/paho", "WillDelayInterval=1")
        proc.signal(signal.SIGKILL)
        start = time.monotonic()
        (p,) = w.recv_publishes(1, timeout=1.0 + SLACK_S + 1)
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        self.assertEqual(p.payload, b"paho-will")

    def spawn_paho_will(self, topic, will_props):
        return spawn_paho_will(self, topic, will_props)


def spawn_paho_will(test, topic, will_props):
    """A paho MQTT 5 client process (session expiry 10 s) whose will on `topic` has the
    WILLMESSAGE properties `will_props` (Python assignments to `w.`), connected."""
    code = ("import paho.mqtt.client as m\n"
            "from paho.mqtt.properties import Properties\n"
            "from paho.mqtt.packettypes import PacketTypes\n"
            "w = Properties(PacketTypes.WILLMESSAGE)\n"
            "%s\n"
            "cp = Properties(PacketTypes.CONNECT)\n"
            "cp.SessionExpiryInterval = 10\n"
            "c = m.Client('%s', protocol=m.MQTTv5)\n"
            "c.will_set('%s', b'paho-will', 1, properties=w)\n"
            "c.on_connect = lambda *a: print('connected', flush=True)\n"
            "c.connect('%s', %d, properties=cp)\n"
            "c.loop_forever()\n" % ("\n".join("w." + p for p in will_props.split(";")),
                                     unique_id(), topic, test.broker.host, test.broker.port))
    proc = test.spawn(["/usr/bin/python3", "-c", code])
    test.assertIsNotNone(proc.wait_line(lambda l: "connected" in l), proc.output())
    return proc


WILL_USER_PROPS = [("origin", "sensor-7"), ("k", "1"), ("k", "2"), ("origin", "again")]


class WillPropertiesTest(BrokerTestCase):
    def test_will_properties_forwarded(self):
        # 3.1.3.2: the will's Payload Format Indicator, Message Expiry Interval, Content Type,
        # Response Topic, Correlation Data and User Properties go out with it, user properties
        # in order [MQTT-3.1.3-10].
        w = self.raw5()
        w.subscribe([("wp/#", 1)])
        wprops = props((mqtt5.PAYLOAD_FORMAT, 1), (mqtt5.MESSAGE_EXPIRY, 60),
                       (mqtt5.CONTENT_TYPE, "text/plain"), (mqtt5.RESPONSE_TOPIC, "wp/ask"),
                       (mqtt5.CORRELATION_DATA, b"\x00will\xff"),
                       *[(mqtt5.USER_PROPERTY, up) for up in WILL_USER_PROPS])
        r = self.raw5(will=("wp/t", b"last words", 1, False), will_properties=wprops)
        r.close()
        (p,) = w.recv_publishes(1, timeout=3)
        self.assertEqual(p.payload, b"last words")
        self.assertEqual(p.props.get(mqtt5.PAYLOAD_FORMAT), 1)
        self.assertIn(p.props.get(mqtt5.MESSAGE_EXPIRY), (59, 60))
        self.assertEqual(p.props.get(mqtt5.CONTENT_TYPE), "text/plain")
        self.assertEqual(p.props.get(mqtt5.RESPONSE_TOPIC), "wp/ask")
        self.assertEqual(p.props.get(mqtt5.CORRELATION_DATA), b"\x00will\xff")
        self.assertEqual(p.props.all(mqtt5.USER_PROPERTY), WILL_USER_PROPS)

    def test_paho_will_properties_reach_paho(self):
        sub = self.client5()
        got = self.collect(sub, "wpp/#", 1)
        proc = spawn_paho_will(self, "wpp/t", "ContentType='x/y';UserProperty=[('a', '1'), ('a', '2')]")
        proc.signal(signal.SIGKILL)
        (m,) = self.wait_messages(got, 1)
        self.assertEqual((m.payload, m.props.ContentType, m.props.UserProperty),
                         (b"paho-will", "x/y", [("a", "1"), ("a", "2")]))

    def test_retained_will_keeps_its_properties(self):
        # [MQTT-3.1.2-15]: Will Retain 1 stores it; a later subscriber gets it with its
        # properties and RETAIN 1.
        live = self.raw5()
        live.subscribe([("wr/t", 1)])
        r = self.raw5(will=("wr/t", b"stored", 1, True),
                      will_properties=props((mqtt5.CONTENT_TYPE, "kept"),
                                            (mqtt5.USER_PROPERTY, ("r", "1"))))
        r.close()
        live.recv_publishes(1, timeout=3)
        late = self.raw5()
        late.subscribe([("wr/t", 1)])
        (p,) = late.recv_publishes(1)
        self.assertEqual((p.payload, p.retain), (b"stored", True))
        self.assertEqual(p.props.get(mqtt5.CONTENT_TYPE), "kept")
        self.assertEqual(p.props.all(mqtt5.USER_PROPERTY), [("r", "1")])

    def test_mosquitto_sub_will_with_properties(self):
        # mosquitto_sub -V mqttv5 with a will and -D WILL properties, killed: the will goes out
        # with them.
        w = self.raw5()
        w.subscribe([("wm/#", 1)])
        sub = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-V", "mqttv5", "-d",
                                    "-t", "wm/ignored", "--will-topic", "wm/t",
                                    "--will-payload", "killed", "--will-qos", "1",
                                    "-D", "WILL", "content-type", "text/x",
                                    "-D", "WILL", "user-property", "who", "mosquitto_sub"))
        self.assertIsNotNone(sub.wait_line(lambda l: "SUBACK" in l), sub.output())
        sub.signal(signal.SIGKILL)
        (p,) = w.recv_publishes(1, timeout=3)
        self.assertEqual(p.payload, b"killed")
        self.assertEqual(p.props.get(mqtt5.CONTENT_TYPE), "text/x")
        self.assertEqual(p.props.all(mqtt5.USER_PROPERTY), [("who", "mosquitto_sub")])


if __name__ == "__main__":
    unittest.main()
