#!/usr/bin/python3
"""Fan-in to one real collector at QoS 1, against max_inflight_messages.

    bench/collector.py [--windows 20,100,1000,0] [--collectors mosquitto_sub,paho]
                       [--duration S] [--repeats R] [--bin DIR] [--payload B]

50 publishers (starling-bench fanin -S 0, QoS 1, --rate publishes/s in all, 100k by default:
more than either collector takes, and little enough that the generator leaves the collector,
on the same CPU, most of it) publish to one collector subscribed to '#' at QoS 1: mosquitto_sub (libmosquitto,
printing each message's topic) or a paho-mqtt client (counting in its callback). For each
window (the broker's max_inflight_messages; 0: as many as MQTT allows), alternating within each
repeat, one fresh starlingd on CPU 0 (one worker), collector and publishers on CPU 1. Reports
what the collector received per second over the window, the broker's CPU per delivery, and the
broker's count of deliveries dropped at max_queued_messages ($SYS/broker/queue/dropped).
JSON lines go to bench/results/collector-DATE.jsonl.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PAHO = r'''
import sys, threading, time
import paho.mqtt.client as mqtt
count = [0]
def on_message(c, u, m):
    count[0] += 1
def on_connect(c, u, f, rc, *a):
    c.subscribe("#", 1)
try:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, "collector", clean_session=True)
except AttributeError:
    c = mqtt.Client("collector", clean_session=True)
c.on_message = on_message
c.on_connect = on_connect
c.connect("127.0.0.1", int(sys.argv[1]), 60)
c.loop_start()
while True:
    time.sleep(0.1)
    print(count[0], flush=True)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("collector.py: broker did not start on port %d" % port)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Counter:
    """Reads a collector's stdout: lines (mosquitto_sub) or running totals (paho)."""

    def __init__(self, proc, totals):
        self.proc, self.totals, self.count = proc, totals, 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        for line in self.proc.stdout:
            if self.totals:
                try:
                    self.count = int(line)
                except ValueError:
                    pass
            else:
                self.count += 1


def sys_value(port, topic):
    try:
        out = subprocess.run(["mosquitto_sub", "-p", str(port), "-t", topic, "-C", "1", "-W", "3"],
                             capture_output=True, timeout=5).stdout
        return int(out.split()[0]) if out.strip() else -1
    except (subprocess.TimeoutExpired, ValueError):
        return -1


def run_one(args, window, collector, rep):
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="collector-")
    conf = os.path.join(tmp, "starling.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                "max_inflight_messages %d\nmax_queued_messages 100000\nworker_threads 1\n"
                "sys_interval 1\n" % (port, window))
    broker = subprocess.Popen(["taskset", "-c", "0", os.path.join(args.bin, "starlingd"), "-c",
                               conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        wait_port(port)
        if collector == "mosquitto_sub":
            cmd = ["taskset", "-c", "1", "mosquitto_sub", "-p", str(port), "-q", "1", "-t", "#",
                   "-i", "collector", "-F", "%t"]
        else:
            cmd = ["taskset", "-c", "1", "/usr/bin/python3", "-c", PAHO, str(port)]
        col = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(col)
        counter = Counter(col, collector == "paho")
        time.sleep(1)
        pub = subprocess.Popen(["taskset", "-c", "1", os.path.join(args.bin, "starling-bench"),
                                "fanin", "-p", str(port), "-S", "0", "-q", "1", "-s",
                                str(args.payload), "-d", str(args.duration + 2), "-w", "0",
                                "-r", str(args.rate), "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
        procs.append(pub)
        time.sleep(1)  # warm-up
        c0, t0, n0 = cpu_s(broker.pid), time.monotonic(), counter.count
        time.sleep(args.duration)
        c1, t1, n1 = cpu_s(broker.pid), time.monotonic(), counter.count
        dropped = sys_value(port, "$SYS/broker/queue/dropped")
        rss_kb = 0
        with open("/proc/%d/status" % broker.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        pub.wait(timeout=args.duration + 30)
        sent = json.loads(pub.stdout.read() or "{}").get("sent_per_s", 0)
        got = (n1 - n0) / (t1 - t0)
        return {"window": window, "collector": collector, "rep": rep, "payload": args.payload,
                "rate": args.rate,
                "delivered_per_s": got, "published_per_s": sent,
                "cpu_us_per_delivery": (c1 - c0) / max(n1 - n0, 1) * 1e6,
                "broker_cpu_pct": (c1 - c0) / (t1 - t0) * 100, "queue_dropped": dropped,
                "rss_kb": rss_kb}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        broker.terminate()
        try:
            broker.wait(timeout=5)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", default="20,100,1000,0")
    ap.add_argument("--collectors", default="mosquitto_sub,paho")
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--payload", type=int, default=16)
    ap.add_argument("--rate", type=int, default=100000, help="publishes/s over all publishers")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build"))
    args = ap.parse_args()
    out = os.path.join(HERE, "results", time.strftime("collector-%Y%m%d-%H%M%S.jsonl",
                                                        time.gmtime()))
    rows = []
    with open(out, "w") as f:
        f.write(json.dumps({"meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                     "load": open("/proc/loadavg").read().split()[:3]}}) + "\n")
        for rep in range(1, args.repeats + 1):
            for collector in args.collectors.split(","):
                for window in (int(w) for w in args.windows.split(",")):
                    r = run_one(args, window, collector, rep)
                    rows.append(r)
                    f.write(json.dumps(r) + "\n")
                    f.flush()
                    print("%-13s window %5d rep %d: %9.0f/s delivered, %9.0f/s published, "
                          "%.2f us CPU per delivery (%3.0f%%), %d dropped at the queue bound, "
                          "RSS %.1f MiB" % (collector, window, rep, r["delivered_per_s"],
                                            r["published_per_s"], r["cpu_us_per_delivery"],
                                            r["broker_cpu_pct"], r["queue_dropped"],
                                            r["rss_kb"] / 1024), flush=True)
    print("results: %s" % out)


if __name__ == "__main__":
    sys.exit(main())
