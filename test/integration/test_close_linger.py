"""A close the broker starts (a DISCONNECT with a reason code, a protocol error) while the client
is still sending: the client must be able to read what the broker sent last. Closing a socket
whose receive queue holds unread bytes makes the kernel send a reset instead of a FIN, and a
reset can destroy the DISCONNECT in the client's receive queue before the client reads it. So
the broker shuts down its sending side once its last packets are out and reads (and discards)
until the client closes, for a bounded time and a bounded number of bytes.

MQTT 5 Receive Maximum exceeded (0x93, 3.3.4) is the case that shows it: a client sending more
unreleased QoS 2 PUBLISHes than the broker's Receive Maximum in one burst has the rest of its
burst in the broker's receive queue when the broker closes.
"""

import socket
import time
import unittest

from harness import (CONNACK, DISCONNECT, MQTT311, MQTT5, BrokerTestCase, Packet, encode_connect,
                     encode_pingreq, encode_publish, starling_only, unique_id)
from rawmqtt import _read_varint

RECEIVE_MAXIMUM = 20
ROUNDS = 20
ONLY = ("Mosquitto 2.0.11 answers a QoS 2 PUBLISH past its Receive Maximum with PUBREC 0x97 "
        "instead of DISCONNECT 0x93")

RESETS = "Mosquitto 2.0.11 closes at once: a client still sending gets a reset"


def parse(buf, version):
    """The whole packets at the start of buf."""
    out, pos = [], 0
    while pos + 2 <= len(buf):
        try:
            length, used = _read_varint(buf, pos + 1)
        except IndexError:
            break
        end = pos + 1 + used + length
        if end > len(buf):
            break
        first = buf[pos]
        out.append(Packet(first >> 4, first & 0x0F, bytes(buf[pos + 1 + used:end]), version))
        pos = end
    return out


class Peer:
    """A plain socket that sends without reading, then reads until the broker's FIN or a
    reset: what a conformance suite's client does."""

    def __init__(self, port, version):
        self.version = version
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connect(self, cid):
        self.sock.sendall(encode_connect(cid, version=self.version))
        buf = b""
        while not parse(buf, self.version):
            data = self.sock.recv(4096)
            assert data, "closed before CONNACK"
            buf += data
        (ack,) = parse(buf, self.version)
        assert ack.type == CONNACK and ack.rc == 0, ack

    def send_all(self, data, times):
        """Sends data `times` times; returns how many went before the broker stopped taking."""
        for i in range(times):
            try:
                self.sock.sendall(data)
            except OSError:
                return i
        return times

    def send_for(self, data, duration):
        """Keeps sending data (with short pauses) for `duration` s; returns the error that
        stopped it (a reset: EPIPE, ECONNRESET), or None."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            try:
                self.sock.sendall(data)
            except OSError as e:
                return e
            time.sleep(0.01)
        return None

    def read_to_end(self, timeout=5.0):
        """(packets, how the stream ended: 'fin', 'reset' or 'timeout', seconds taken)."""
        start = time.monotonic()
        buf, end = bytearray(), "timeout"
        self.sock.settimeout(0.2)
        while time.monotonic() - start < timeout:
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                end = "reset"
                break
            if not data:
                end = "fin"
                break
            buf += data
        return parse(buf, self.version), end, time.monotonic() - start

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class CloseLingerTest(BrokerTestCase):
    config_lines = ("max_inflight_messages %d" % RECEIVE_MAXIMUM,)

    def peer(self, version):
        p = Peer(self.broker.port, version)
        self.defer(p.close)
        p.connect(unique_id("lg"))
        return p

    @starling_only(ONLY)
    def test_receive_maximum_exceeded_is_read_every_time(self):
        # Each round: a burst of 60 unreleased QoS 2 PUBLISHes (the 21st exceeds the broker's
        # Receive Maximum of 20) sent twice without reading, then read to the end: the
        # DISCONNECT 0x93 is there, followed by a FIN, and no reset came while the client
        # was still sending (a reset can destroy the DISCONNECT before the client reads it:
        # on a real network it purges the broker's unsent output, and some stacks drop what
        # the client has received but not read).
        burst = b"".join(encode_publish("lg/t", b"p" * 200, qos=2, pid=i + 1, version=MQTT5)
                         for i in range(60))
        for rnd in range(ROUNDS):
            p = self.peer(MQTT5)
            p.send_all(burst, 1)
            err = p.send_for(burst, 0.3)
            got, end, _ = p.read_to_end()
            p.close()
            discs = [q for q in got if q.type == DISCONNECT]
            self.assertIsNone(err, "round %d: reset while the client was sending" % rnd)
            self.assertEqual(end, "fin", "round %d: the stream ended with a %s after %r"
                             % (rnd, end, got[-3:]))
            self.assertEqual([q.rc for q in discs], [0x93], "round %d: %r" % (rnd, got[-3:]))
            self.assertIs(got[-1], discs[0])

    @starling_only(RESETS)
    def test_v311_protocol_error_with_a_client_still_sending(self):
        # A second CONNECT is a protocol error [MQTT-3.1.0-2]; the client keeps sending
        # PINGREQs and PUBLISHes behind it. It reads its PINGRESPs and then a FIN, no reset.
        tail = (encode_pingreq() + encode_publish("lg/t", b"q" * 300, qos=0)) * 50
        for rnd in range(ROUNDS):
            p = self.peer(MQTT311)
            p.send_all(encode_pingreq() + encode_connect("again") + tail, 1)
            err = p.send_for(tail, 0.3)
            got, end, _ = p.read_to_end()
            p.close()
            self.assertIsNone(err, "round %d: reset while the client was sending" % rnd)
            self.assertEqual(end, "fin", "round %d: %r" % (rnd, got))
            self.assertEqual(len(got), 1, "round %d: only the first PINGREQ is answered" % rnd)

    def test_a_client_that_keeps_sending_is_cut_at_the_bound(self):
        # After the protocol error the client sends without pause and never reads: the broker
        # stops reading at its bound (bytes or time) and the connection ends within seconds.
        p = self.peer(MQTT311)
        p.send_all(encode_connect("again"), 1)
        chunk = encode_publish("lg/t", b"z" * 60000, qos=0) * 16
        start = time.monotonic()
        sent = 0
        p.sock.settimeout(1.0)
        while time.monotonic() - start < 10:
            try:
                sent += p.sock.send(chunk)
            except socket.timeout:
                continue
            except OSError:
                break
        took = time.monotonic() - start
        self.assertLess(took, 5, "still accepted %d bytes after %.1f s" % (sent, took))
        self.assertTrue(self.broker.alive())

    @starling_only(RESETS)
    def test_a_slow_sender_is_cut_at_the_time_bound(self):
        # A client that trickles a byte now and then after the protocol error (and never
        # closes) is not waited for beyond the bound: it reads the FIN and then, still
        # sending, finds the connection gone within a few seconds.
        p = self.peer(MQTT311)
        p.send_all(encode_connect("again"), 1)
        start = time.monotonic()
        gone = None
        while time.monotonic() - start < 10:
            try:
                p.sock.sendall(encode_pingreq())
            except OSError:
                gone = time.monotonic() - start
                break
            time.sleep(0.05)
        self.assertIsNotNone(gone, "the broker waited more than 10 s for the client to close")
        self.assertGreater(gone, 1.0, "cut before the client had time to read and close")
        self.assertLess(gone, 5)


if __name__ == "__main__":
    unittest.main()
