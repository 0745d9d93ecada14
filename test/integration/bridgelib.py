"""Peer brokers for bridge tests: a second broker beside the test's own, and the lines of a
Mosquitto `connection` block.

Used by test_bridge_mosquitto.py (Mosquitto bridging to Starling) and meant for tests of
Starling's own bridge client as well (Starling bridging to Mosquitto, or to another Starling):
nothing here assumes which side is which.

    peer = start_peer(self, connection_block("b1", self.broker, ["t/# both 1"],
                                             restart_timeout=1))
    wait_crossing(self, peer, self.broker, "t/probe")   # the bridge is up and carries t/#

  - start_peer(test, config, kind="mosquitto"): a harness Broker (a port of the test's slice,
    127.0.0.1, its own temp dir and log, kept with STARLING_KEEP_LOGS) started with the
    config text (or lines) after its `listener` line; stopped by PID in the test's tearDown,
    before the test's own broker, and its log tail printed when the test failed.
  - connection_block(name, remote, topics, **options): the lines of a `connection` block
    aimed at `remote` (a Broker, or "host:port"); options in mosquitto.conf(5)'s names
    (True/False become true/false, a list repeats the option).
  - wait_crossing(test, src, dst, topic): publishes probes on `src` until one arrives on
    `dst`: the bridge is connected and subscribed, whichever side holds the subscription
    (dst_topic= where prefixes map the topic).
  - wait_log(test, broker, pattern): waits for a log line matching a regular expression.
  - by_payload(messages): {payload: count}, to count exactly-once deliveries.
Every wait is bounded.
"""
import re
import sys
import time

from harness import Broker, _tail, unique_id

MOSQUITTO_LOG = ("log_type all",)  # a peer Mosquitto says what its bridge does


def start_peer(test, config="", kind="mosquitto", args=(), verbose=True):
    """Starts a peer broker of `kind` with `config` (text or lines, written after the
    harness's `listener PORT 127.0.0.1` and `allow_anonymous true` lines: a `connection` block
    goes last, since Mosquitto gives every later line to the bridge). Returns the Broker, which
    test.defer() stops (before the test's own broker, so that it sees the bridge go)."""
    lines = config.splitlines() if isinstance(config, str) else list(config)
    if kind == "mosquitto" and verbose:
        lines = list(MOSQUITTO_LOG) + lines
    peer = Broker(lines, kind=kind, args=args)
    peer.start()

    def stop():
        if test._test_failed():
            sys.stderr.write("\n--- peer %s log (%s, port %s) ---\n%s\n---\n"
                             % (kind, test.id(), peer.port, _tail(peer.log_text(), 40)))
        peer.stop()

    test.defer(stop)
    return peer


def _value(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)


def connection_block(name, remote, topics, **options):
    """Lines of a Mosquitto `connection NAME` block to `remote` (a Broker or "host:port").
    topics: `topic` line values ("t/# both 1", "x in 2 local/ remote/"); options: each
    `key=value` becomes a line in that order (a list value repeats the key)."""
    address = remote if isinstance(remote, str) else "%s:%d" % (remote.host, remote.port)
    lines = ["connection %s" % name, "address %s" % address]
    lines += ["topic %s" % t for t in topics]
    for key, value in options.items():
        for v in value if isinstance(value, (list, tuple)) else (value,):
            lines.append("%s %s" % (key, _value(v)))
    return lines


def wait_crossing(test, src, dst, topic=None, qos=0, timeout=15.0, payload=b"probe",
                  dst_topic=None):
    """Publishes `payload` on `topic` at `src` every 0.2 s until a subscriber on `dst` gets
    it (on `dst_topic`, where the bridge maps topics with prefixes); fails after `timeout`.
    Returns the number of probes sent (each may still arrive)."""
    topic = topic or "probe/" + unique_id("p")
    sub = test.client(broker=dst)
    got = test.collect(sub, dst_topic or topic, qos)
    pub = test.client(broker=src)
    deadline = time.monotonic() + timeout
    sent = 0
    while not len(got):
        if time.monotonic() >= deadline:
            test.fail("nothing published on %s:%d (%s) reached %s:%d within %.0f s"
                      % (src.host, src.port, topic, dst.host, dst.port, timeout))
        pub.publish(topic, payload, qos)
        sent += 1
        t = time.monotonic() + 0.2
        while time.monotonic() < t and not len(got):
            time.sleep(0.005)
    sub.disconnect()
    pub.disconnect()
    return sent


def wait_log(test, broker, pattern, timeout=10.0, count=1):
    """Waits until `broker`'s log has `count` lines matching the regular expression; returns
    the matching lines."""
    rx = re.compile(pattern)

    def lines():
        found = [l for l in broker.log_text().splitlines() if rx.search(l)]
        return found if len(found) >= count else None

    return test.wait_for(lines, timeout, lambda: "%s log: %d line(s) matching %r, wanted %d:\n%s"
                         % (broker.kind, len([l for l in broker.log_text().splitlines()
                                              if rx.search(l)]), pattern, count,
                            _tail(broker.log_text(), 20)))


def by_payload(messages):
    """{payload: how many times it arrived} of a Messages list (or any iterable of Msg)."""
    counts = {}
    for m in messages:
        counts[m.payload] = counts.get(m.payload, 0) + 1
    return counts
