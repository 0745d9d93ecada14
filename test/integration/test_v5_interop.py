"""MQTT 3.1.1 and 5.0 clients on the same topics: a 3.1.1 subscriber receives a 5.0 publisher's
message (without its properties, which 3.1.1 cannot carry), a 5.0 subscriber receives a 3.1.1
publisher's message (with no properties), both ways with paho and with mosquitto_pub/
mosquitto_sub (-V mqttv5, -D properties, -F to print them), and retained messages and wills
cross the versions too.
"""

import subprocess
import unittest

import paho.mqtt.client as paho

from harness import (MOSQUITTO_PUB, MOSQUITTO_SUB, MQTT311, BrokerTestCase, PacketTypes,
                     client_cmd, mqtt5, pprops, props, sub_options)

# -F format: topic, QoS, retain, payload format, content type, response topic, correlation
# data, message expiry, user properties (%P prints each as key:value), payload.
FMT5 = "MSG %t|%q|%r|%F|%C|%R|%D|%E|%P|%p"


def full_props():
    return pprops(PacketTypes.PUBLISH, PayloadFormatIndicator=1, ContentType="text/plain",
                  ResponseTopic="io/reply", CorrelationData=b"corr",
                  UserProperty=[("a", "1"), ("b", "2"), ("a", "3")])


class InteropTest(BrokerTestCase):
    def run_pub(self, *args, stdin=None):
        cmd = client_cmd(MOSQUITTO_PUB, self.broker, *args)
        try:
            res = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=10)
        except subprocess.TimeoutExpired as e:
            self.fail("mosquitto_pub hung: %s" % e)
        self.assertEqual(res.returncode, 0, res.stdout.decode(errors="replace"))

    def sub_proc(self, *args):
        p = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-d", *args))
        self.assertIsNotNone(p.wait_line(lambda l: "suback" in l.lower()),
                             "mosquitto_sub never subscribed:\n" + p.output())
        return p

    def msg_lines(self, proc, n, timeout=5.0):
        self.wait_for(lambda: len([l for l in proc.lines() if l.startswith("MSG ")]) >= n,
                      timeout, "expected %d messages:\n%s" % (n, proc.output()))
        return [l[4:] for l in proc.lines() if l.startswith("MSG ")][:n]

    def test_paho_v5_publisher_to_v311_subscriber(self):
        old = self.client(protocol=paho.MQTTv311)
        got = self.collect(old, "io/#", 2)
        new = self.client5()
        for qos in (0, 1, 2):
            self.publish(new, "io/q%d" % qos, b"v5-%d" % qos, qos, properties=full_props())
        msgs = self.wait_messages(got, 3)
        self.assertEqual(sorted((m.topic, m.payload, m.qos) for m in msgs),
                         [("io/q%d" % q, b"v5-%d" % q, q) for q in (0, 1, 2)])

    def test_v5_publish_reaches_v311_raw_without_properties(self):
        # On the wire: a 3.1.1 PUBLISH is topic, packet id and payload; the properties must not
        # leak into the payload.
        old = self.raw_connected()
        old.subscribe([("io/raw", 1)])
        new = self.raw5()
        new.publish_acked("io/raw", b"exact", 1,
                          properties=props((mqtt5.USER_PROPERTY, ("k", "v")),
                                           (mqtt5.CONTENT_TYPE, "c")))
        (p,) = old.recv_publishes(1)
        self.assertEqual((p.topic, p.payload), ("io/raw", b"exact"))
        self.assertEqual(len(p.body), 2 + len("io/raw") + 2 + len(b"exact"))

    def test_v311_publisher_to_paho_v5_subscriber(self):
        new = self.client5()
        got = self.collect(new, "iv/#", 2)
        old = self.client(protocol=paho.MQTTv311)
        for qos in (0, 1, 2):
            self.publish(old, "iv/q%d" % qos, b"v3-%d" % qos, qos)
        msgs = sorted(self.wait_messages(got, 3), key=lambda m: m.topic)
        self.assertEqual([(m.topic, m.payload, m.qos) for m in msgs],
                         [("iv/q%d" % q, b"v3-%d" % q, q) for q in (0, 1, 2)])
        for m in msgs:
            self.assertTrue(m.props.isEmpty(), "properties invented: %s" % m.props)

    def test_v311_publish_reaches_v5_raw_with_empty_properties(self):
        new = self.raw5()
        new.subscribe([("iw/#", 2)])
        self.raw_connected().publish_acked("iw/t", b"plain", 2)
        (p,) = new.recv_publishes(1)
        self.assertEqual((p.payload, len(p.props)), (b"plain", 0))

    def test_mosquitto_pub_v5_properties_to_mosquitto_sub_v5(self):
        s = self.sub_proc("-V", "mqttv5", "-t", "im/#", "-q", "1", "-C", "1", "-F", FMT5)
        self.run_pub("-V", "mqttv5", "-t", "im/t", "-q", "1", "-m", "with-props",
                     "-D", "PUBLISH", "payload-format-indicator", "1",
                     "-D", "PUBLISH", "content-type", "text/plain",
                     "-D", "PUBLISH", "response-topic", "im/reply",
                     "-D", "PUBLISH", "correlation-data", "c0rr",
                     "-D", "PUBLISH", "message-expiry-interval", "300",
                     "-D", "PUBLISH", "user-property", "k", "v1",
                     "-D", "PUBLISH", "user-property", "k", "v2")
        (line,) = self.msg_lines(s, 1)
        topic, qos, retain, pfi, ct, rt, cd, exp, up, payload = line.split("|")
        self.assertEqual((topic, qos, retain, pfi, ct, rt, cd, payload),
                         ("im/t", "1", "0", "1", "text/plain", "im/reply", "c0rr", "with-props"))
        self.assertIn(exp, ("299", "300"))
        self.assertEqual(up, "k:v1 k:v2")

    def test_mosquitto_pub_v5_to_mosquitto_sub_v311(self):
        s = self.sub_proc("-V", "mqttv311", "-t", "in/#", "-q", "2", "-C", "1",
                          "-F", "MSG %t|%q|%p")
        self.run_pub("-V", "mqttv5", "-t", "in/t", "-q", "2", "-m", "to-old",
                     "-D", "PUBLISH", "user-property", "k", "v")
        self.assertEqual(self.msg_lines(s, 1), ["in/t|2|to-old"])

    def test_mosquitto_pub_v311_to_mosquitto_sub_v5(self):
        s = self.sub_proc("-V", "mqttv5", "-t", "io3/#", "-q", "1", "-C", "1", "-F", FMT5)
        self.run_pub("-V", "mqttv311", "-t", "io3/t", "-q", "1", "-m", "from-old")
        (line,) = self.msg_lines(s, 1)
        # No property to print: the property fields are empty.
        self.assertEqual(line, "|".join(["io3/t", "1", "0"] + [""] * 6 + ["from-old"]))

    def test_mosquitto_pub_v5_to_paho_v311_and_v5(self):
        old = self.client(protocol=paho.MQTTv311)
        got_old = self.collect(old, "ip/#", 1)
        new = self.client5()
        got_new = self.collect(new, "ip/#", 1)
        self.run_pub("-V", "mqttv5", "-t", "ip/t", "-q", "1", "-m", "both",
                     "-D", "PUBLISH", "content-type", "x/y")
        self.assertEqual(self.wait_messages(got_old, 1)[0].payload, b"both")
        (m,) = self.wait_messages(got_new, 1)
        self.assertEqual((m.payload, m.props.ContentType), (b"both", "x/y"))

    def test_retained_v5_message_to_v311_and_back(self):
        # A retained message with properties, stored by a v5 client: a 3.1.1 subscriber gets
        # it (RETAIN 1, no properties); a later v5 subscriber gets its properties.
        new = self.client5()
        self.publish(new, "ir/t", b"stored", 1, retain=True, properties=full_props())
        old = self.raw_connected()
        old.subscribe([("ir/t", 1)])
        (p,) = old.recv_publishes(1)
        self.assertEqual((p.payload, p.retain), (b"stored", True))
        r = self.raw5()
        r.subscribe([("ir/t", sub_options(1))])
        (q,) = r.recv_publishes(1)
        self.assertEqual(q.props.all(mqtt5.USER_PROPERTY), [("a", "1"), ("b", "2"), ("a", "3")])
        # And a retained message stored by 3.1.1 reaches v5 without properties.
        self.raw_connected().publish_acked("ir/old", b"from-311", 1, retain=True)
        r.subscribe([("ir/old", 1)])
        (q,) = r.recv_publishes(1)
        self.assertEqual((q.payload, q.retain, len(q.props)), (b"from-311", True, 0))

    def test_v5_will_to_v311_subscriber(self):
        old = self.raw_connected()
        old.subscribe([("iwill/#", 1)])
        w = self.raw5(will=("iwill/t", b"v5-will", 1, False),
                      will_properties=props((mqtt5.CONTENT_TYPE, "c"),
                                            (mqtt5.USER_PROPERTY, ("k", "v"))))
        w.close()
        (p,) = old.recv_publishes(1)
        self.assertEqual(p.payload, b"v5-will")

    def test_v311_will_to_v5_subscriber(self):
        new = self.raw5()
        new.subscribe([("iwill3/#", 1)])
        w = self.raw_connected(will=("iwill3/t", b"v3-will", 1, False))
        w.close()
        (p,) = new.recv_publishes(1)
        self.assertEqual((p.payload, len(p.props)), (b"v3-will", 0))

    def test_session_expiry_with_mosquitto_sub_v5(self):
        # mosquitto_sub -V mqttv5 -c -x 60: a persistent v5 session; a QoS 1 message published
        # while it is away is delivered when it comes back.
        cid = "io-persist"
        s = self.sub_proc("-V", "mqttv5", "-i", cid, "-c", "-x", "60", "-t", "ix/#", "-q", "1",
                          "-F", "MSG %p")
        s.stop()
        self.run_pub("-V", "mqttv311", "-t", "ix/t", "-q", "1", "-m", "while-away")
        # The queued message may come before the SUBACK: wait for the exit (-C 1) instead.
        s = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-V", "mqttv5", "-i", cid, "-c",
                                  "-x", "60", "-t", "ix/#", "-q", "1", "-C", "1", "-F", "MSG %p"))
        self.assertEqual(s.wait(5), 0, s.output())
        self.assertEqual(self.msg_lines(s, 1), ["while-away"])

    def test_v311_raw_and_v5_raw_share_a_topic_tree(self):
        # Both versions' subscriptions, wildcards included, match the same topics.
        old, new = self.raw(version=MQTT311), self.raw5()
        old.connect("old-" + self.id()[-20:])
        old.subscribe([("tree/+/x", 1)])
        new.subscribe([("tree/#", 1)])
        self.raw5().publish_acked("tree/a/x", b"1", 1)
        self.raw_connected().publish_acked("tree/b/x", b"2", 1)
        self.assertEqual(sorted(p.payload for p in old.recv_publishes(2)), [b"1", b"2"])
        self.assertEqual(sorted(p.payload for p in new.recv_publishes(2)), [b"1", b"2"])


if __name__ == "__main__":
    unittest.main()
