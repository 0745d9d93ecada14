#!/usr/bin/python3
"""How many TCP segments a broker sends its subscribers (a proxy for its messages per send),
and its CPU time to the nanosecond, sampled through a fixed-rate run.

A broker's own count of send calls is not visible from outside in the same way for all of them
(Starling sends through io_uring, FlashMQ and Mosquitto call write()), but the kernel counts,
per socket, the segments carrying data that it sent (tcp_info's data_segs_out, as `ss -ti`
shows it). With TCP_NODELAY on loopback a send of up to 64 KiB leaves as one segment, so
segments per second are close to sends per second; with Nagle, several sends may share one.

  tcp_segs.py --port PORT --pid PID --out FILE [--interval-s 0.1] [--max-s 300]

samples tcp_info of the established IPv4 sockets whose local port is PORT (the broker's side
of every client connection; one sock_diag netlink dump, what `ss -ti` does), and the CPU time of every thread of PID (/proc/PID/task/*/schedstat,
nanoseconds), every interval, until SIGTERM/SIGINT or --max-s, then writes one JSON object to
FILE:

  sockets          the most sockets seen at once
  delivery_sockets those whose broker sent more bytes than it received at the last sample:
                   subscribers (publishers' sockets carry only CONNACK and PUBACKs out)
  segs_per_s       median over the sampling intervals in which all those sockets existed and
                   segments went out, of the data segments per second sent on delivery sockets
  bytes_per_seg    the same intervals' bytes sent / data segments, median
  cpu_per_s        the same intervals' broker CPU seconds per second, median
  intervals        how many intervals those medians are taken over

The rates' medians, not totals, are used because the last sample can precede the sockets'
close by up to an interval, and because at a fixed rate every interval of the window is alike.
aggregate.py divides starling-bench's delivered/s by segs_per_s (deliveries per segment) and
cpu_per_s by delivered/s (CPU per delivery: /proc/PID/stat, which starling-bench reads, counts
in 10 ms ticks, coarse at 20k deliveries/s). Run pinned to the generator's CPU. The netlink dump
is made here rather than by running `ss`: spawning `ss` ten times a second cost about 13% of a
CPU on the 2-vCPU VM, taken from the generator; this costs about 3% (0.08 s to start).
"""
import argparse
import glob
import json
import signal
import socket
import statistics
import struct
import sys
import time

# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h, linux/tcp.h
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
INET_DIAG_INFO = 2
TCP_ESTABLISHED = 1
INET_DIAG_MSG_BYTES = 72  # struct inet_diag_msg, before its attributes
# Offsets in struct tcp_info (stable ABI; bytes_sent since Linux 4.19).
TCPI_BYTES_ACKED, TCPI_BYTES_RECEIVED, TCPI_DATA_SEGS_OUT, TCPI_BYTES_SENT = 120, 128, 156, 200
stop = False


def on_signal(_signum, _frame):
    global stop
    stop = True


def diag_request():
    """A sock_diag dump request for established IPv4 TCP sockets, with tcp_info."""
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1),
                      0, 1 << TCP_ESTABLISHED)
    # inet_diag_sockid: ports, addresses and interface left zero (the kernel then dumps all
    # established sockets; the port is filtered here), cookie INET_DIAG_NOCOOKIE.
    req += bytes(4 + 32 + 4) + struct.pack("=II", 0xFFFFFFFF, 0xFFFFFFFF)
    return struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                       NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req


def tcp_info_fields(info):
    sent_off = TCPI_BYTES_SENT if len(info) >= TCPI_BYTES_SENT + 8 else TCPI_BYTES_ACKED
    return (struct.unpack_from("=Q", info, sent_off)[0],
            struct.unpack_from("=Q", info, TCPI_BYTES_RECEIVED)[0],
            struct.unpack_from("=I", info, TCPI_DATA_SEGS_OUT)[0])


def sample(port, request):
    """{peer (address, port): (bytes_sent, bytes_received, data_segs_out)} of PORT's sockets."""
    socks = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(2)
        nl.sendto(request, (0, 0))
        while True:
            data, off = nl.recv(1 << 20), 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == NLMSG_DONE:
                    return socks
                if kind == NLMSG_ERROR or length < 16:
                    raise OSError("sock_diag: netlink error")
                body = off + 16
                sport, dport = struct.unpack_from(">HH", data, body + 4)
                if sport == port:
                    peer = (data[body + 24:body + 28], dport)
                    attr = body + INET_DIAG_MSG_BYTES
                    while attr + 4 <= off + length:
                        alen, atype = struct.unpack_from("=HH", data, attr)
                        if alen < 4:
                            break
                        if atype == INET_DIAG_INFO:
                            socks[peer] = tcp_info_fields(data[attr + 4:attr + alen])
                        attr += (alen + 3) & ~3
                off += (length + 3) & ~3


def cpu_ns(pid):
    """CPU time of every thread of pid so far, in ns (the first field of schedstat)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path, encoding="ascii") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just exited
    return total


def summarise(samples):
    if not samples:
        return {"sockets": 0, "delivery_sockets": 0, "segs_per_s": None,
                "bytes_per_seg": None, "cpu_per_s": None, "intervals": 0}
    full = max(len(s) for _, _, s in samples)
    last = next(s for _, _, s in reversed(samples) if len(s) == full)
    delivery = {p for p, (sent, received, _) in last.items() if sent > received}
    rates, sizes, cpus = [], [], []
    for (t0, c0, s0), (t1, c1, s1) in zip(samples, samples[1:]):
        if len(s0) != full or len(s1) != full or not delivery <= s0.keys() <= s1.keys():
            continue
        segs = sum(s1[p][2] - s0[p][2] for p in delivery)
        sent = sum(s1[p][0] - s0[p][0] for p in delivery)
        if segs > 0 and t1 > t0:
            rates.append(segs / (t1 - t0))
            sizes.append(sent / segs)
            cpus.append((c1 - c0) / 1e9 / (t1 - t0))
    return {"sockets": full, "delivery_sockets": len(delivery),
            "segs_per_s": statistics.median(rates) if rates else None,
            "bytes_per_seg": statistics.median(sizes) if sizes else None,
            "cpu_per_s": statistics.median(cpus) if cpus else None,
            "intervals": len(rates)}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--max-s", type=float, default=300)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    samples = []
    request = diag_request()
    start = time.monotonic()
    while not stop and time.monotonic() - start < args.max_s:
        t = time.monotonic()
        try:
            socks = sample(args.port, request)
        except (OSError, struct.error):
            socks = {}
        cpu = cpu_ns(args.pid)
        if socks:
            # The time between the two readings: the socket sample's and the CPU's midpoint.
            samples.append(((t + time.monotonic()) / 2, cpu, socks))
        time.sleep(max(0.0, args.interval_s - (time.monotonic() - t)))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(summarise(samples), f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
