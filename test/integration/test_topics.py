"""Topic filters: '+' and '#' matching, '$' topics, overlapping subscriptions of one client,
SUBACK return codes, re-subscription and UNSUBSCRIBE. Each test publishes a fixed set of topics
and compares what a filter received with what MQTT 3.1.1 section 4.7 says it must match.
"""

import unittest

from harness import SUBACK, BrokerTestCase, encode_subscribe, starling_only, unique_id

TOPICS = ["sport", "sport/", "sport/tennis", "sport/tennis/player1",
          "sport/tennis/player1/ranking", "sport/football", "/sport", "a//c", "a/b/c", "a/b/d",
          "A/b/c", "$test/x", "$test/x/y"]
MARKER = "zz/done/x/y"  # matched by none of the filters below except "#"


class TopicFilterTest(BrokerTestCase):
    def matched(self, filters_and_expectations):
        """Subscribes one client per filter, publishes every topic in TOPICS once, and checks
        each filter received exactly the expected topics, each once."""
        got = {}
        for flt in filters_and_expectations:
            c = self.client()
            got[flt] = self.collect(c, flt, 0)
        pub = self.client()
        for t in TOPICS:
            self.publish(pub, t, t.encode(), 1)
        # The marker closes the run: each filter above also matches it or is checked after it.
        marker = self.client()
        done = self.collect(marker, "#", 0)
        self.publish(pub, MARKER, b"end", 1)
        self.wait_for(lambda: any(m.topic == MARKER for m in done))
        for flt, expected in filters_and_expectations.items():
            with self.subTest(filter=flt):
                self.wait_for(lambda: len(got[flt]) >= len(expected), 3,
                              "%r got %r" % (flt, [m.topic for m in got[flt]]))
                self.assert_no_messages(got[flt], 0.05, expected=len(expected))
                self.assertEqual(sorted(m.topic for m in got[flt]), sorted(expected))

    def test_single_level_wildcard(self):
        # 4.7.1.3: '+' matches exactly one level, including an empty one.
        self.matched({
            "sport/+": ["sport/", "sport/tennis", "sport/football"],
            "sport/+/player1": ["sport/tennis/player1"],
            "+/tennis/#": ["sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking"],
            "a/+/c": ["a//c", "a/b/c"],
            "+/+": ["sport/", "sport/tennis", "sport/football", "/sport"],
            "/+": ["/sport"],
            "+": ["sport"],
        })

    def test_multi_level_wildcard(self):
        # 4.7.1.2: '#' matches the parent level and any number of child levels.
        self.matched({
            "sport/#": ["sport", "sport/", "sport/tennis", "sport/tennis/player1",
                        "sport/tennis/player1/ranking", "sport/football"],
            "sport/tennis/player1/#": ["sport/tennis/player1", "sport/tennis/player1/ranking"],
            "a/#": ["a//c", "a/b/c", "a/b/d"],
            "#": [t for t in TOPICS if not t.startswith("$")] + [MARKER],
        })

    def test_exact_filters_are_case_and_slash_sensitive(self):
        self.matched({"a/b/c": ["a/b/c"], "A/b/c": ["A/b/c"], "sport": ["sport"],
                      "sport/": ["sport/"], "/sport": ["/sport"], "a//c": ["a//c"]})

    def test_dollar_topics_not_matched_by_leading_wildcards(self):
        # [MQTT-4.7.2-1]: filters starting with '#' or '+' do not match topics starting
        # with '$'; filters that name the '$' level do.
        self.matched({
            "+/x": [],
            "+/x/y": [],
            "+/+": ["sport/", "sport/tennis", "sport/football", "/sport"],
            "$test/#": ["$test/x", "$test/x/y"],
            "$test/+": ["$test/x"],
            "$test/x": ["$test/x"],
        })

    @starling_only("Mosquitto 2.0.11 delivers one copy at the QoS of one matching "
                   "subscription, not the highest ([MQTT-3.3.5-1])")
    def test_overlapping_subscriptions_use_highest_qos(self):
        # [MQTT-3.3.5-1]: one client, overlapping filters: the message is delivered at the
        # maximum granted QoS of the matching subscriptions (further copies are allowed).
        c = self.client()
        self.assertEqual(self.subscribe(c, "ov/#", 0), [0])
        self.assertEqual(self.subscribe(c, "ov/+/c", 2), [2])
        self.assertEqual(self.subscribe(c, "ov/b/c", 1), [1])
        pub = self.client()
        self.publish(pub, "ov/b/c", b"x", 2)
        self.wait_messages(c.messages, 1)
        self.assert_no_messages(c.messages, 0.3, expected=len(c.messages))
        self.assertEqual(max(m.qos for m in c.messages), 2)

    @starling_only("Mosquitto 2.0.11 delivers one copy at the QoS of one matching "
                   "subscription, not the highest ([MQTT-3.3.5-1])")
    def test_overlapping_subscriptions_deliver_once(self):
        # Starling delivers one copy per client (3.1.1 allows more, [MQTT-3.3.5-1]).
        c = self.client()
        for flt, q in (("ov1/#", 1), ("ov1/+/c", 2), ("ov1/b/c", 0), ("#", 1)):
            self.subscribe(c, flt, q)
        pub = self.client()
        self.publish(pub, "ov1/b/c", b"once", 1)
        self.publish(pub, "ov1/b/c", b"twice", 2)
        msgs = self.wait_messages(c.messages, 2)
        self.assert_no_messages(c.messages, 0.3, expected=2)
        self.assertEqual(sorted((m.payload, m.qos) for m in msgs), [(b"once", 1), (b"twice", 2)])

    def test_overlapping_subscriptions_deliver_at_least_once(self):
        # Whatever the QoS, a client with overlapping filters gets the message, with the
        # topic name it was published to [MQTT-3.3.2-3].
        c = self.client()
        for flt, q in (("ovl/#", 1), ("ovl/+/c", 2), ("ovl/b/c", 0)):
            self.subscribe(c, flt, q)
        pub = self.client()
        self.publish(pub, "ovl/b/c", b"x", 1)
        self.publish(pub, "ovl/b/d", b"y", 1)
        self.wait_for(lambda: {m.payload for m in c.messages} == {b"x", b"y"})
        self.assertEqual({m.topic for m in c.messages}, {"ovl/b/c", "ovl/b/d"})

    def test_suback_granted_qos(self):
        # [MQTT-3.8.4-1] SUBACK, [MQTT-3.8.4-2] same id, [MQTT-3.8.4-4]/[MQTT-3.8.4-5] one
        # code per filter, in order.
        r = self.raw_connected()
        codes = r.subscribe([("g/0", 0), ("g/1", 1), ("g/2", 2), ("g/+/#", 1)], pid=513)
        self.assertEqual(codes, [0, 1, 2, 1])
        pub = self.client()
        self.publish(pub, "g/2", b"two", 2)
        (p,) = r.recv_publishes(1)
        self.assertEqual((p.topic, p.qos), ("g/2", 2))

    def test_invalid_filters_refused_or_closed(self):
        # 4.7.1: '#' last and alone in its level, '+' alone in its level. The server either
        # returns 0x80 for that filter or closes the connection; valid filters still work.
        for flt in ("a/#/b", "a#", "a/b+", "+a/b", "#/a", "", "a/##"):
            with self.subTest(filter=flt):
                r = self.raw_connected()
                r.send(encode_subscribe(7, [(flt, 0)]))
                closed, got = r.wait_closed(1.0)
                if not closed:
                    self.assertEqual(len(got), 1, got)
                    self.assertEqual((got[0].type, got[0].pid, got[0].codes), (SUBACK, 7, [0x80]))
        self.assert_broker_works()

    def test_resubscribe_replaces_qos(self):
        # [MQTT-3.8.4-3]: a subscription with an identical filter replaces the old one.
        c = self.client()
        got = self.collect(c, "re/t", 2)
        self.assertEqual(self.subscribe(c, "re/t", 0), [0])
        pub = self.client()
        self.publish(pub, "re/t", b"x", 2)
        msgs = self.wait_messages(got, 1)
        self.assert_no_messages(got, 0.2, expected=1)
        self.assertEqual(msgs[0].qos, 0)

    def test_unsubscribe_stops_delivery(self):
        # [MQTT-3.10.4-1] UNSUBACK with the same id; [MQTT-3.10.4-5] no new messages after.
        r = self.raw_connected()
        r.subscribe([("un/a", 1), ("un/b", 1)])
        pub = self.client()
        self.publish(pub, "un/a", b"1", 1)
        self.assertEqual(r.recv_publishes(1)[0].payload, b"1")
        ack = r.unsubscribe(["un/a"], pid=300)
        self.assertEqual((ack.pid, ack.flags, ack.body), (300, 0, b"\x01\x2c"))
        self.publish(pub, "un/a", b"2", 1)
        self.publish(pub, "un/b", b"3", 1)
        (p,) = r.recv_publishes(1)
        self.assertEqual((p.topic, p.payload), ("un/b", b"3"))
        self.assertTrue(r.silent_for(0.2))

    def test_unsubscribe_unknown_filter_still_acked(self):
        # [MQTT-3.10.4-2]: UNSUBACK even if nothing matched; [MQTT-3.10.4-4] filters are
        # compared character by character, so "un/+" does not remove "un/x".
        r = self.raw_connected()
        r.subscribe([("un/x", 0)])
        r.unsubscribe(["never/subscribed", "un/+"])
        pub = self.client()
        self.publish(pub, "un/x", b"still", 0)
        self.assertEqual(r.recv_publishes(1)[0].payload, b"still")

    def test_unsubscribe_several_filters(self):
        # [MQTT-3.10.4-3]: several filters in one UNSUBSCRIBE, one UNSUBACK.
        c = self.client()
        got = self.collect(c, "many/#", 0)
        self.subscribe(c, "many/a", 0)
        self.subscribe(c, "many/+", 0)
        self.unsubscribe(c, ["many/#", "many/a", "many/+"])
        pub = self.client()
        self.publish(pub, "many/a", b"x", 1)
        self.publish(pub, "other", b"y", 1)
        self.assert_no_messages(got, 0.3)

    def test_publish_to_topic_without_subscribers(self):
        # Still acknowledged at every QoS.
        pub = self.raw_connected()
        pub.publish("nobody/" + unique_id(), b"void", 0)
        pub.publish_acked("nobody/" + unique_id(), b"void", 1)
        pub.publish_acked("nobody/" + unique_id(), b"void", 2)
        pub.ping()


if __name__ == "__main__":
    unittest.main()
