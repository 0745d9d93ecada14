#!/usr/bin/python3
"""Reads a broker's retained $SYS counters once, as JSON (bench/compare.sh, bench/persist-load.sh).

  sysread.py PORT [FILTER] [--wait SEC]

Connects to 127.0.0.1:PORT (MQTT 3.1.1, clean session), subscribes to FILTER
($SYS/broker/persistence/# by default), collects the retained messages that arrive within
--wait seconds after the SUBACK (0.3), and prints {"<last topic level>": value, ...} with
numeric payloads as numbers. A broker that publishes none of them prints {}: the caller treats
that as "this broker has no such counters", not as an error. Exit status 1 only when the
broker cannot be reached. Plain sockets: no client library needed.
"""
import json
import socket
import struct
import sys
import time


def encode_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def remaining(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + remaining(len(body)) + body


def read_packets(sock, buf):
    """Yields (first byte, body) for every whole packet in buf, keeping the rest."""
    while len(buf) >= 2:
        mult, n, i = 1, 0, 1
        while True:
            if i >= len(buf):
                return
            n += (buf[i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not buf[i - 1] & 0x80:
                break
        if len(buf) < i + n:
            return
        first, body = buf[0], bytes(buf[i:i + n])
        del buf[:i + n]
        yield first, body


def main():
    args = [a for a in sys.argv[1:]]
    wait = 0.3
    if "--wait" in args:
        k = args.index("--wait")
        wait = float(args[k + 1])
        del args[k:k + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    port = int(args[0])
    filt = args[1] if len(args) > 1 else "$SYS/broker/persistence/#"
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    except OSError as e:
        print(f"sysread.py: cannot connect to port {port}: {e}", file=sys.stderr)
        return 1
    cid = f"sysread-{port}-{int(time.time() * 1000) % 100000000}"
    sock.sendall(packet(0x10, encode_str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 30)
                        + encode_str(cid)))
    sock.sendall(packet(0x82, struct.pack("!H", 1) + encode_str(filt) + b"\x00"))
    values, buf, deadline = {}, bytearray(), None
    end = time.monotonic() + 5
    try:
        while time.monotonic() < (deadline or end):
            sock.settimeout(max(0.01, (deadline or end) - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            buf += data
            for first, body in read_packets(sock, buf):
                kind = first >> 4
                if kind == 9:  # SUBACK: the retained messages follow it
                    deadline = time.monotonic() + wait
                elif kind == 3:
                    tlen = struct.unpack("!H", body[:2])[0]
                    topic = body[2:2 + tlen].decode("utf-8", "replace")
                    off = 2 + tlen + (2 if (first >> 1) & 3 else 0)
                    text = body[off:].decode("utf-8", "replace").strip()
                    try:
                        value = int(text)
                    except ValueError:
                        try:
                            value = float(text)
                        except ValueError:
                            value = text
                    values[topic.rsplit("/", 1)[-1]] = value
        sock.sendall(b"\xe0\x00")
    except OSError:
        pass
    finally:
        sock.close()
    print(json.dumps(values, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
