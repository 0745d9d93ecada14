#!/usr/bin/python3
"""Time to deliver one large message to a WebSocket subscriber (bench/ws.sh runs it).

    ws_large.py --ws-port P --tcp-port Q [--size BYTES] [--repeats N] [--qos 0|1]

A subscriber on the broker's WebSocket listener (the raw RFC 6455 client of the integration
tests, reading with 1 MiB receives) subscribes; a publisher on the TCP listener sends one
message of --size bytes; the time from the publisher's send to the last byte of the PUBLISH
at the subscriber is printed, with the rate, once per repeat, then the median as JSON.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))

from rawmqtt import PUBLISH, RawClient, encode_publish  # noqa: E402
from wsclient import WsRawClient  # noqa: E402


def one(args, i):
    sub = WsRawClient(args.ws_port, timeout=args.timeout)
    sub.connect("wslarge-sub-%d-%d" % (os.getpid(), i))
    sub.subscribe(("wslarge/t", args.qos))
    pub = RawClient(args.tcp_port, timeout=args.timeout)
    pub.connect("wslarge-pub-%d-%d" % (os.getpid(), i))
    payload = os.urandom(args.size)
    pkt = encode_publish("wslarge/t", payload, qos=args.qos, pid=1 if args.qos else None)
    t0 = time.monotonic()
    pub.send(pkt)
    p = sub.expect(PUBLISH, timeout=args.timeout)
    dt = time.monotonic() - t0
    if p.payload != payload:
        raise SystemExit("payload mismatch")
    sub.close()
    pub.close()
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ws-port", type=int, required=True)
    ap.add_argument("--tcp-port", type=int, required=True)
    ap.add_argument("--size", type=int, default=2 << 20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--qos", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    times = []
    for i in range(args.repeats):
        dt = one(args, i)
        times.append(dt)
        print("%s: %d bytes in %.3f s (%.1f MB/s)" % (args.label, args.size, dt,
                                                     args.size / dt / 1e6), flush=True)
    med = statistics.median(times)
    print(json.dumps({"label": args.label, "size": args.size, "qos": args.qos,
                      "seconds": [round(t, 4) for t in times], "median_s": round(med, 4),
                      "mb_per_s": round(args.size / med / 1e6, 2)}))


if __name__ == "__main__":
    main()
