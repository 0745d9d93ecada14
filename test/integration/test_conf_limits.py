"""The limits, queues and client-identity options of mosquitto.conf(5) (issue 16, part B), each
with real clients against a real broker: max_qos, upgrade_outgoing_qos, queue_qos0_messages,
max_queued_bytes, max_inflight_bytes, persistent_client_expiration (also with persistence on:
an expired session's records are gone after a restart), memory_limit, allow_zero_length_clientid,
auto_id_prefix, clientid_prefixes, use_username_as_clientid; and a bad value stopping the start
with the file and line named.
"""

import os
import signal
import tempfile
import time
import unittest

from harness import (CONNACK, DISCONNECT, MQTT5, PUBACK, PUBLISH, Broker, BrokerTestCase,
                     ConnectionClosed, encode_ack, encode_connect, paho, props, prop,
                     starling_only, unique_id)
import rawmqtt as mqtt5
from persistlib import PersistCase, TERM, KILL


class MaxQosTest(BrokerTestCase):
    config_lines = ("max_qos 1",)

    def test_connack_announces_maximum_qos(self):
        r = self.raw5()
        self.assertEqual(r.connack.props.get(mqtt5.MAXIMUM_QOS), 1)

    def test_subscription_granted_at_most_max_qos(self):
        sub = self.client()
        self.assertEqual(list(self.subscribe(sub, "mq/a", 2)), [1])
        r = self.raw_connected()
        self.assertEqual(r.subscribe([("mq/b", 2), ("mq/c", 0)]), [1, 0])

    def test_qos1_flows(self):
        sub = self.client()
        got = self.collect(sub, "mq/ok", 1)
        pub = self.raw5()
        pub.publish_acked("mq/ok", b"fine", 1)
        self.assertEqual(pub.last_ack.rc, 0)
        self.assertEqual(self.wait_messages(got, 1)[0].qos, 1)

    def test_v5_publish_above_is_disconnected_0x9b(self):
        r = self.raw5()
        r.publish("mq/x", b"too high", 2)
        self.assert_disconnect(r, 0x9B)

    def test_311_publish_above_is_closed(self):
        sub = self.client()
        got = self.collect(sub, "mq/y", 2)
        r = self.raw_connected()
        r.publish("mq/y", b"too high", 2)
        got_packets = self.assert_closed(r)
        self.assertFalse([p for p in got_packets if p.type != PUBLISH])
        self.assert_no_messages(got, 0.3)

    def test_will_above_is_refused(self):
        r = self.raw(version=MQTT5)
        ca = r.connect(unique_id("w"), will=("w/t", b"bye", 2, False))
        self.assertEqual(ca.rc, 0x9B)
        self.assert_closed(r)
        r3 = self.raw()
        r3.send(encode_connect(unique_id("w"), will=("w/t", b"bye", 2, False)))
        got = self.assert_closed(r3)
        self.assertFalse([p for p in got if p.type == CONNACK])
        # A will at max_qos is fine.
        r = self.raw(version=MQTT5)
        self.assertEqual(r.connect(unique_id("w"), will=("w/t", b"bye", 1, False)).rc, 0)


class MaxQosZeroTest(BrokerTestCase):
    config_lines = ("max_qos 0",)

    def test_qos0_only(self):
        r = self.raw5()
        self.assertEqual(r.connack.props.get(mqtt5.MAXIMUM_QOS), 0)
        self.assertEqual(r.subscribe([("z/a", 2)]), [0])
        r.publish("z/a", b"q0")
        self.assertEqual(r.recv_publishes(1)[0].qos, 0)
        r.publish("z/a", b"q1", 1)
        self.assert_disconnect(r, 0x9B)


class DefaultMaxQosTest(BrokerTestCase):
    def test_no_maximum_qos_property(self):
        r = self.raw5()
        self.assertNotIn(mqtt5.MAXIMUM_QOS, r.connack.props)


@starling_only("Mosquitto 2.0 sends upgraded QoS 0 messages with packet id 0")
class UpgradeOutgoingQosTest(BrokerTestCase):
    config_lines = ("upgrade_outgoing_qos true",)

    def test_delivered_at_subscription_qos(self):
        sub = self.raw_connected()
        sub.subscribe([("up/2", 2), ("up/1", 1), ("up/0", 0)])
        sub5 = self.raw5()
        sub5.subscribe([("up/2", 1)])
        pub = self.client()
        self.publish(pub, "up/2", b"a", 0)
        self.publish(pub, "up/1", b"b", 0)
        self.publish(pub, "up/0", b"c", 1)
        got = sub.recv_publishes(3)
        self.assertEqual(sorted((p.payload, p.qos) for p in got),
                         [(b"a", 2), (b"b", 1), (b"c", 0)])
        for p in got:
            if p.qos:
                self.assertTrue(p.pid)
        p5 = sub5.recv_publishes(1)[0]
        self.assertEqual((p5.payload, p5.qos), (b"a", 1))

    def test_retained_at_subscription_qos(self):
        pub = self.client()
        self.publish(pub, "up/r", b"kept", 0, retain=True)
        sub = self.raw_connected()
        sub.subscribe([("up/r", 2)])
        p = sub.recv_publishes(1)[0]
        self.assertEqual((p.payload, p.qos, p.retain), (b"kept", 2, True))


class NoUpgradeTest(BrokerTestCase):
    def test_default_takes_the_lower_qos(self):
        sub = self.raw_connected()
        sub.subscribe([("up/2", 2)])
        pub = self.client()
        self.publish(pub, "up/2", b"a", 0)
        self.assertEqual(sub.recv_publishes(1)[0].qos, 0)


def offline_session(case, cid, topic, qos=1, version=4):
    """A persistent session subscribed to topic, then disconnected."""
    if version == 5:
        s = case.client5(cid, clean_start=False, properties=session_props(3600))
    else:
        s = case.client(cid, clean_session=False)
    case.subscribe(s, topic, qos)
    s.disconnect()
    case.wait_for(s.disconnected.is_set)
    return s


def session_props(expiry):
    from harness import Properties, PacketTypes
    p = Properties(PacketTypes.CONNECT)
    p.SessionExpiryInterval = expiry
    return p


class QueueQos0Test(BrokerTestCase):
    config_lines = ("queue_qos0_messages true", "max_queued_messages 5")

    def test_qos0_queued_while_offline(self):
        cid = unique_id("q0")
        offline_session(self, cid, "q0/t", 1)
        pub = self.client()
        for i in range(3):
            self.publish(pub, "q0/t", b"m%d" % i, 0)
        self.publish(pub, "q0/t", b"one", 1)
        r = self.raw()
        self.assertTrue(r.connect(cid, clean_session=False).session_present)
        got = r.recv_publishes(4)
        self.assertEqual([(p.payload, p.qos) for p in got],
                         [(b"m0", 0), (b"m1", 0), (b"m2", 0), (b"one", 1)])
        self.assertIsNone(got[0].pid)
        self.assertTrue(r.silent_for(0.3))
        # Online, QoS 0 goes straight out and the session keeps working.
        self.publish(pub, "q0/t", b"live", 0)
        self.assertEqual(r.recv_publishes(1)[0].payload, b"live")

    def test_counted_in_max_queued_messages(self):
        cid = unique_id("q0")
        offline_session(self, cid, "q0/n", 1)
        pub = self.raw_connected()
        for i in range(8):
            pub.publish("q0/n", b"%d" % i, 0)
        pub.ping()  # the broker has handled them all
        r = self.raw()
        r.connect(cid, clean_session=False)
        got = r.recv_publishes(5)
        self.assertEqual([p.payload for p in got], [b"0", b"1", b"2", b"3", b"4"])
        extra = r.drain(0.3)
        self.assertFalse(extra)


class NoQueueQos0Test(BrokerTestCase):
    def test_default_drops_qos0_for_offline(self):
        cid = unique_id("q0")
        offline_session(self, cid, "q0/d", 1)
        pub = self.client()
        self.publish(pub, "q0/d", b"lost", 0)
        self.publish(pub, "q0/d", b"kept", 1)
        r = self.raw()
        r.connect(cid, clean_session=False)
        self.assertEqual([p.payload for p in r.recv_publishes(1)], [b"kept"])
        self.assertTrue(r.silent_for(0.3))


class QueueQos0PersistTest(PersistCase):
    persist_extra = ("queue_qos0_messages true",)

    def test_survives_restart(self):
        cid = unique_id("q0p")
        offline_session(self, cid, "q0p/t", 1)
        pub = self.client()
        self.publish(pub, "q0p/t", b"zero", 0)
        self.publish(pub, "q0p/t", b"one", 1)
        pub.disconnect()
        self.restart(TERM)
        r = self.raw()
        self.assertTrue(r.connect(cid, clean_session=False).session_present)
        got = r.recv_publishes(2)
        self.assertEqual([(p.payload, p.qos) for p in got], [(b"zero", 0), (b"one", 1)])
        r.ping()  # the PUBACK was handled before the restart
        r.disconnect()
        # Sent once: not again after another restart.
        self.restart(TERM)
        r = self.raw()
        r.connect(cid, clean_session=False)
        self.assertEqual(r.drain(0.5), [])


class MaxQueuedBytesTest(BrokerTestCase):
    config_lines = ("max_queued_bytes 1000",)

    def test_queue_bounded_by_payload_bytes(self):
        cid = unique_id("qb")
        offline_session(self, cid, "qb/t", 1)
        pub = self.client()
        for i in range(10):
            self.publish(pub, "qb/t", bytes([65 + i]) * 300, 1)
        r = self.raw()
        r.connect(cid, clean_session=False)
        # 0, 300, 600 and 900 bytes queued are under the bound: four are taken, as in Mosquitto.
        got = r.recv_publishes(4)
        self.assertEqual([p.payload[:1] for p in got], [b"A", b"B", b"C", b"D"])
        self.assertTrue(r.silent_for(0.3))


class MaxInflightBytesTest(BrokerTestCase):
    config_lines = ("max_inflight_bytes 100",)

    def test_window_in_bytes(self):
        sub = self.raw_connected()
        sub.subscribe([("ib/t", 1)])
        pub = self.client()
        for i in range(4):
            self.publish(pub, "ib/t", bytes([65 + i]) * 60, 0 if i == 3 else 1)
        # QoS 0 does not wait for the window.
        first = sub.recv_publishes(3, ack=False)
        self.assertEqual(sorted(p.payload[:1] for p in first), [b"A", b"B", b"D"])
        self.assertTrue(sub.silent_for(0.3), "a third QoS 1 message left past 100 bytes")
        a = [p for p in first if p.payload[:1] == b"A"][0]
        sub.send(encode_ack(PUBACK, a.pid))
        self.assertEqual(sub.recv_publishes(1, ack=False)[0].payload[:1], b"C")

    def test_large_message_alone(self):
        sub = self.raw_connected()
        sub.subscribe([("ib/big", 1)])
        pub = self.client()
        self.publish(pub, "ib/big", b"x" * 500, 1)
        self.publish(pub, "ib/big", b"y" * 10, 1)
        p = sub.recv_publishes(1, ack=False)[0]
        self.assertEqual(len(p.payload), 500)
        self.assertTrue(sub.silent_for(0.3))
        sub.send(encode_ack(PUBACK, p.pid))
        self.assertEqual(sub.recv_publishes(1)[0].payload, b"y" * 10)


@starling_only("the unit s (seconds) is a Starling extension; Mosquitto's smallest is 1h")
class PersistentClientExpirationTest(BrokerTestCase):
    config_lines = ("persistent_client_expiration 2s",)

    def test_311_session_expires(self):
        cid = unique_id("pe")
        offline_session(self, cid, "pe/t", 1)
        r = self.raw()
        self.assertTrue(r.connect(cid, clean_session=False).session_present)
        r.disconnect()
        time.sleep(3.0)
        r = self.raw()
        self.assertFalse(r.connect(cid, clean_session=False).session_present)

    def test_v5_expiry_bounded(self):
        cid = unique_id("pe5")
        offline_session(self, cid, "pe/t", 1, version=5)
        time.sleep(3.0)
        r = self.raw(version=MQTT5)
        ca = r.connect(cid, clean_session=False, properties=props((mqtt5.SESSION_EXPIRY, 60)))
        self.assertFalse(ca.session_present)


@starling_only("the unit s (seconds) is a Starling extension; Mosquitto's smallest is 1h")
class PersistentClientExpirationPersistTest(PersistCase):
    persist_extra = ("persistent_client_expiration 3s",)

    def test_expired_records_deleted(self):
        keep, gone = unique_id("pk"), unique_id("pg")
        offline_session(self, gone, "pp/t", 1)
        pub = self.client()
        self.publish(pub, "pp/t", b"queued", 1)
        pub.disconnect()
        # Expires while the broker is down: its deadline is on disk and the downtime counts.
        self.restart(KILL, down=3.5)
        r = self.raw()
        self.assertFalse(r.connect(gone, clean_session=False).session_present)
        self.assertTrue(r.silent_for(0.3))
        r.disconnect()
        # Expires while the broker runs; then a restart finds no trace of it.
        offline_session(self, keep, "pp/t", 1)
        time.sleep(3.5)
        self.restart(TERM, config_lines=self.config_lines[:2])
        r = self.raw()
        self.assertFalse(r.connect(keep, clean_session=False).session_present)


class PersistentSessionKeptTest(PersistCase):
    def test_without_option_session_survives(self):
        cid = unique_id("pk")
        offline_session(self, cid, "pp/t", 1)
        self.restart(TERM)
        r = self.raw()
        self.assertTrue(r.connect(cid, clean_session=False).session_present)


class MemoryLimitReachedTest(BrokerTestCase):
    # Any heap is over one byte: every PUBLISH is refused once worker 0 has sampled it.
    config_lines = ("memory_limit 1",)

    def refused(self):
        r = self.raw5()
        r.publish_acked("ml/t", b"x", 1)
        return r.last_ack.rc == 0x97

    def test_publishes_refused(self):
        self.wait_for(self.refused, 3, "QoS 1 not refused with 0x97")
        # Every worker follows worker 0's sample within two housekeeping passes (limits.h).
        time.sleep(0.6)
        sub = self.client()
        got = self.collect(sub, "ml/#", 0)
        r = self.raw5()
        r.publish_acked("ml/q2", b"x", 2)
        self.assertEqual(r.last_ack.rc, 0x97)
        r.publish("ml/q0", b"dropped")
        self.assert_no_messages(got, 0.3)
        # A 3.1.1 client cannot be told: it is disconnected, as Mosquitto does.
        r3 = self.raw_connected()
        r3.publish("ml/q1", b"x", 1)
        got3 = self.assert_closed(r3)
        self.assertFalse([p for p in got3 if p.type == PUBACK])
        self.assertIn("memory_limit reached", self.broker.log_text())

    def test_retained_delete_allowed(self):
        self.wait_for(self.refused, 3, "QoS 1 not refused with 0x97")
        r = self.raw5()
        r.publish_acked("ml/r", b"", 1, retain=True)
        self.assertIn(r.last_ack.rc, (0, 0x10))


class MemoryLimitTest(BrokerTestCase):
    config_lines = ("memory_limit 1073741824",)

    def test_under_the_limit_works(self):
        time.sleep(0.6)  # a few samples
        self.assert_broker_works()
        r = self.raw5()
        r.publish_acked("ml/t", b"x", 1)
        self.assertIn(r.last_ack.rc, (0, 0x10))


@starling_only("Starling's heap figure (ASan's or jemalloc's count) moves with retained data")
class MemoryLimitDynamicTest(BrokerTestCase):
    """The limit follows what the broker holds: retained messages fill it, deleting them frees
    it. The limit is set from the heap the idle broker holds, read from its log at -v."""
    asan_options = "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    config_lines = ("memory_limit 1",)

    def test_fill_then_free(self):
        self.wait_for(lambda: "memory_limit reached:" in self.broker.log_text(), 3)
        line = [l for l in self.broker.log_text().splitlines() if "memory_limit reached:" in l][0]
        idle = int(line.split("memory_limit reached:")[1].split()[0])
        limit = idle + (24 << 20)
        self.broker.restart(TERM, config_lines=["memory_limit %d" % limit])
        r = self.raw5()
        big = b"z" * (1 << 20)
        stored = 0
        for i in range(80):
            r.publish_acked("fill/%d" % i, big, 1, retain=True)
            if r.last_ack.rc == 0x97:
                break
            stored += 1
            time.sleep(0.03)
        self.assertLess(stored, 80, "never refused")
        self.assertGreater(stored, 10, "refused too early")
        for i in range(stored):
            r.publish_acked("fill/%d" % i, b"", 1, retain=True)

        def accepted():
            r.publish_acked("fill/again", b"ok", 1)
            return r.last_ack.rc in (0, 0x10)
        self.wait_for(accepted, 5, "still refused after the retained messages were deleted")
        self.assertIn("Back under memory_limit", self.broker.log_text())


class ZeroLengthClientIdTest(BrokerTestCase):
    config_lines = ("allow_zero_length_clientid false",)

    def test_refused(self):
        r = self.raw()
        self.assertEqual(r.connect("", clean_session=True).rc, 2)
        r5 = self.raw(version=MQTT5)
        self.assertEqual(r5.connect("").rc, 0x85)
        self.assertEqual(self.raw_connected("named").connack.rc, 0)


class AutoIdPrefixTest(BrokerTestCase):
    config_lines = ("auto_id_prefix dev-",)

    def test_assigned_id_has_prefix(self):
        r = self.raw(version=MQTT5)
        ca = r.connect("")
        self.assertEqual(ca.rc, 0)
        assigned = ca.props.get(mqtt5.ASSIGNED_CLIENT_ID)
        self.assertTrue(assigned.startswith("dev-"), assigned)
        # The assigned id resumes its session (on its home worker).
        r.disconnect()
        r = self.raw(version=MQTT5)
        self.assertEqual(r.connect(assigned, clean_session=False,
                                   properties=props((mqtt5.SESSION_EXPIRY, 60))).rc, 0)


class ClientIdPrefixesTest(BrokerTestCase):
    config_lines = ("clientid_prefixes secure-",)

    def test_only_prefixed_ids(self):
        self.raw_connected("secure-1")
        self.assertEqual(self.raw().connect("mqtt-1").rc, 5)
        self.assertEqual(self.raw(version=MQTT5).connect("sec").rc, 0x87)
        # A generated id does not have the prefix either (Mosquitto checks it too).
        self.assertEqual(self.raw(version=MQTT5).connect("").rc, 0x87)
        sub = self.client("secure-sub")
        got = self.collect(sub, "cp/t", 1)
        pub = self.client("secure-pub")
        self.publish(pub, "cp/t", b"hi", 1)
        self.wait_messages(got, 1)


class UseUsernameAsClientIdTest(BrokerTestCase):
    config_lines = ("use_username_as_clientid true",)

    def test_username_is_the_session(self):
        a = self.client("first-id", clean_session=False, username="alice")
        self.subscribe(a, "uu/t", 1)
        # Another id with the same user name takes the session over.
        b = self.raw()
        ca = b.connect("other-id", clean_session=False, username="alice")
        self.assertEqual(ca.rc, 0)
        self.assertTrue(ca.session_present)
        self.wait_for(a.disconnected.is_set, 5, "first connection not taken over")
        pub = self.client("p", username="bob")
        self.publish(pub, "uu/t", b"to alice", 1)
        self.assertEqual(b.recv_publishes(1)[0].payload, b"to alice")
        self.assertIn("connected as alice ", self.broker.log_text())

    def test_no_username_not_authorised(self):
        self.assertEqual(self.raw().connect("x").rc, 5)
        self.assertEqual(self.raw(version=MQTT5).connect("x").rc, 0x87)
        self.assertEqual(self.raw().connect("x", username="").rc, 5)


class RetainSourceCase(BrokerTestCase):
    """bob may write ret/#; alice may read it. After a reload takes bob's write access away,
    what bob retained is (check_retain_source true, the default) or is not (false) withheld."""
    extra = ()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-retsrc-")
        self.addCleanup(self.tmp.cleanup)
        os.chmod(self.tmp.name, 0o755)
        self.aclfile = os.path.join(self.tmp.name, "acl")
        self.write_acl("user alice\ntopic read ret/#\nuser bob\ntopic write ret/#\n"
                       "user carol\ntopic write ret/#\n")
        self.config_lines = ("acl_file " + self.aclfile,) + tuple(self.extra)
        super().setUp()

    def write_acl(self, text):
        with open(self.aclfile + ".new", "w") as f:
            f.write(text)
        os.rename(self.aclfile + ".new", self.aclfile)

    def hup(self):
        before = self.broker.log_text().count("Reloading on SIGHUP")
        os.kill(self.broker.pid, signal.SIGHUP)
        self.wait_for(lambda: self.broker.log_text().count("Reloading on SIGHUP") > before,
                      msg="no reload in the log")
        time.sleep(0.3)  # the other workers adopt the new rules at their next iteration

    def retained_after_reload(self):
        bob = self.raw()
        bob.connect(unique_id("b"), username="bob")
        bob.publish_acked("ret/bob", b"from bob", 1, retain=True)
        carol = self.raw()
        carol.connect(unique_id("c"), username="carol")
        carol.publish_acked("ret/carol", b"from carol", 1, retain=True)
        # Before any reload both are delivered.
        a = self.raw()
        a.connect(unique_id("a"), username="alice")
        a.subscribe([("ret/#", 1)])
        self.assertEqual(sorted(p.payload for p in a.recv_publishes(2)),
                         [b"from bob", b"from carol"])
        self.write_acl("user alice\ntopic read ret/#\nuser carol\ntopic write ret/#\n")
        self.hup()
        a = self.raw()
        a.connect(unique_id("a"), username="alice")
        a.subscribe([("ret/#", 1)])
        return sorted(p.payload for p in a.drain(0.5, ack=True))


@starling_only("Starling's reload keeps retained messages; Mosquitto's reloads them the same "
               "way, but the test reads Starling's log")
class CheckRetainSourceTest(RetainSourceCase):
    def test_source_without_write_access_withheld(self):
        self.assertEqual(self.retained_after_reload(), [b"from carol"])


@starling_only("reads Starling's reload log line")
class NoCheckRetainSourceTest(RetainSourceCase):
    extra = ("check_retain_source false",)

    def test_always_delivered(self):
        self.assertEqual(self.retained_after_reload(), [b"from bob", b"from carol"])


class TwoListenerBroker(Broker):
    """per_listener_settings true: the listener options of the first listener are not the
    second's (per_listener_settings must come before the harness's own listener line)."""

    def _write_config(self):
        from harness import WORKERS, free_port
        self.port2 = free_port()
        lines = ["per_listener_settings true",
                 "listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                 "max_qos 1", "allow_zero_length_clientid false", "use_username_as_clientid true",
                 "listener %d 127.0.0.1" % self.port2, "allow_anonymous true",
                 "auto_id_prefix two-"]
        if self.kind == "starling" and WORKERS:
            lines.append("worker_threads %d" % WORKERS)
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")


@starling_only("the broker's config is written by hand, with Starling's worker_threads")
class PerListenerTest(BrokerTestCase):
    def setUp(self):
        self._teardowns = []
        self.broker = TwoListenerBroker()
        self.addCleanup(self._shutdown)
        self.broker.start()

    def connect5(self, port, cid, **kw):
        from harness import RawClient
        r = RawClient(port, version=MQTT5)
        self.defer(r.close)
        return r.connect(cid, **kw)

    def test_each_listener_its_own(self):
        one, two = self.broker.port, self.broker.port2
        ca = self.connect5(one, "", username="u1")
        self.assertEqual((ca.rc, ca.props.get(mqtt5.MAXIMUM_QOS)), (0, 1))
        self.assertEqual(self.connect5(one, "x").rc, 0x87)  # no user name
        ca = self.connect5(two, "")
        self.assertEqual(ca.rc, 0)
        self.assertNotIn(mqtt5.MAXIMUM_QOS, ca.props)
        self.assertTrue(ca.props.get(mqtt5.ASSIGNED_CLIENT_ID).startswith("two-"))
        self.assertIn("connected as u1 ", self.broker.log_text())


class BadValuesTest(unittest.TestCase):
    def test_start_refused_naming_the_line(self):
        for bad, reason in (("persistent_client_expiration 10", "is not a duration"),
                            ("max_qos 3", "expected 0, 1 or 2"),
                            ("memory_limit 1G", "is not a decimal integer"),
                            ("queue_qos0_messages yes", "expected true or false")):
            with self.subTest(bad=bad):
                if harness_kind() != "starling":
                    self.skipTest("Starling's messages")
                b = Broker([bad])
                try:
                    rc = b.start_fails()
                    self.assertNotEqual(rc, 0)
                    text = b.log_text()
                    self.assertIn("broker.conf:", text)
                    self.assertIn(reason, text)
                finally:
                    b.stop()


def harness_kind():
    import harness
    return harness.KIND


if __name__ == "__main__":
    unittest.main()
