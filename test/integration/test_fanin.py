"""Fan-in at QoS 1 to one collector: many publishers, one subscriber on '#'.

A collector that cannot keep up (mosquitto_sub whose output is not read, so it stops reading
its socket) loses nothing it was sent or queued: what the broker could not queue for it
(max_queued_messages) is counted in $SYS/broker/queue/dropped and logged once per episode, and
everything else arrives once the collector reads again. The broker's memory stays bounded.
A collector that keeps up gets every message, in order per publisher, through a window wider
than Mosquitto's 20 (Starling's default max_inflight_messages is 65535).
"""

import json
import subprocess
import threading
import time
import unittest

import harness
from harness import (MOSQUITTO_SUB, BrokerTestCase, client_cmd, encode_publish, rss_bytes,
                     starling_only, tool)

QUEUE_MAX = 200
PUBLISHERS = 50
DROP_LINE = "Outgoing messages are being dropped for client collector"


class Collector:
    """mosquitto_sub -q 1 on '#', printing each message's topic; its stdout is read by a thread
    that can be paused, and then mosquitto_sub blocks on its output and stops reading."""

    def __init__(self, broker, client_id="collector"):
        self.proc = subprocess.Popen(
            client_cmd(MOSQUITTO_SUB, broker, "-i", client_id, "-q", 1, "-t", "#", "-F", "%t"),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.count = 0
        self.reading = threading.Event()
        self.reading.set()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            self.reading.wait()
            line = self.proc.stdout.readline()
            if not line:
                return
            if line.startswith(b"bench/"):
                self.count += 1

    def stop(self):
        self.reading.set()
        self.proc.kill()
        self.proc.wait()


@starling_only("Starling's $SYS/broker/queue/dropped and its log line")
class SlowCollectorTest(BrokerTestCase):
    config_lines = ("max_queued_messages %d" % QUEUE_MAX, "sys_interval 1",
                    "max_output_bytes 65536", "client_send_buffer 16384")
    # ASan's quarantine would keep every freed message and hide what the broker itself holds.
    asan_options = "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"

    def flood(self, rate, seconds, payload):
        """50 publishers at QoS 1 (starling-bench); returns how many the broker acknowledged."""
        out = subprocess.run([tool("starling-bench"), "fanin", "-p", str(self.broker.port),
                              "-S", "0", "-P", str(PUBLISHERS), "-q", "1", "-s", str(payload),
                              "-r", str(rate), "-d", str(seconds), "-w", "0", "--drain", "1",
                              "--json"], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)["acked"]

    def settle(self, collector):
        """Waits until the collector has received everything on its way to it."""
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 1.5:
            if collector.count != last:
                last, since = collector.count, time.monotonic()
            time.sleep(0.1)
        return collector.count

    def test_slow_collector_loses_only_what_is_counted(self):
        col = Collector(self.broker)
        self.defer(col.stop)
        self.wait_for(lambda: "collector" in self.broker.log_text(), 5, "collector not connected")
        time.sleep(0.3)
        before = rss_bytes(self.broker.pid)
        acked, lines = 0, 0
        for episode in (1, 2):
            # The collector stops reading: its output pipe is filled first (QoS 0 messages on
            # another topic), so that mosquitto_sub is already blocked when the flood starts.
            col.reading.clear()
            fill = self.raw_connected()
            for i in range(200):
                fill.send(b"".join(encode_publish("fill/%d" % i, b"x", 0) for _ in range(50)))
            fill.disconnect()
            time.sleep(0.5)
            acked += self.flood(rate=20000, seconds=2, payload=1024)
            grown = rss_bytes(self.broker.pid) - before
            # 80,000 messages of 1 KiB went by (80 MB): the broker holds at most the queue, the
            # output bound and the window's share of the socket, whatever the flood; with several
            # workers also what waits in the channels between them (bounded, but a loaded
            # machine fills them: 24.8 MiB was seen on 4 workers with both suites running).
            bound = (24 if harness.WORKERS <= 1 else 40) << 20
            if not harness.TSAN:
                self.assertLess(grown, bound, "broker grew %d MiB" % (grown >> 20))
            col.reading.set()
            received = self.settle(col)
            dropped = self.sys_value("$SYS/broker/queue/dropped")
            self.assertGreater(dropped, 0, "the collector kept up: nothing was tested")
            # Nothing the broker took for the collector is lost: every acknowledged message
            # was either delivered or counted as dropped at the queue bound.
            self.assertEqual(received + dropped, acked,
                             "episode %d: %d received + %d dropped != %d acknowledged"
                             % (episode, received, dropped, acked))
            # A line per episode (the queue filling after it had drained), not per message:
            # thousands dropped, one line, or a few if the collector caught up in between (a
            # CI run under both suites' load saw three in one episode, 37,664 dropped).
            now = self.broker.log_text().count(DROP_LINE)
            self.assertTrue(lines < now <= lines + 4, "episode %d: %d drop lines after %d, "
                            "%d dropped" % (episode, now, lines, dropped))
            lines = now
        self.assert_broker_works()


class FastCollectorTest(BrokerTestCase):
    def test_collector_gets_every_message_in_order(self):
        # 50 publishers, 10,000 QoS 1 messages: starling-bench's own subscriber checks order
        # and counts loss and duplicates per publisher.
        out = subprocess.run([tool("starling-bench"), "fanin", "-p", str(self.broker.port),
                              "-P", str(PUBLISHERS), "-S", "1", "-q", "1", "-r", "5000",
                              "-d", "2", "-w", "0", "--json"], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        r = json.loads(out.stdout)
        self.assertGreater(r["delivered"], 9000)
        self.assertEqual((r["loss"], r["duplicates"], r["out_of_order"]), (0, 0, 0), r)


if __name__ == "__main__":
    unittest.main()
