"""A raw-socket MQTT client for the integration tests: packet encoders, a decoder, RawClient.

Real clients never send a malformed packet, a packet of the wrong direction or a QoS 2 PUBLISH
they then abandon; this module does. It speaks MQTT 3.1 and 3.1.1 and knows MQTT 5's header
layout (the property lists are sent empty and skipped when read), so version 5 tests can be
added without a new client. It imports nothing from the harness: harness.py re-exports it.
Reads are bounded: every receive takes a timeout and raises instead of blocking.
"""

import socket
import struct
import time

# --- packet types and encoders --------------------------------------------------------------
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
                7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
                12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

MQTT31, MQTT311, MQTT5 = 3, 4, 5


def varint(n):
    """MQTT Variable Byte Integer (the Remaining Length encoding)."""
    if not 0 <= n <= 268435455:
        raise ValueError("varint out of range: %d" % n)
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def mqtt_bytes(data):
    """A 2-byte length prefix and the bytes (UTF-8 encoded first if given a str)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def packet(ptype, flags, body):
    """A whole packet: fixed header (type, flags, remaining length) and body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + body


def encode_connect(client_id="", clean_session=True, keepalive=60, will=None, username=None,
                   password=None, version=MQTT311, protocol_name=None, flags_extra=0,
                   properties=b""):
    """CONNECT. will = (topic, payload, qos, retain). version 3 sends "MQIsdp", 4 and 5 "MQTT";
    protocol_name overrides the name, flags_extra is OR-ed into the connect flags (for the
    reserved bit and inconsistent flag tests). For version 5 an empty property list is sent
    for the CONNECT and the will unless `properties` gives the CONNECT's encoded properties."""
    if protocol_name is None:
        protocol_name = "MQIsdp" if version == MQTT31 else "MQTT"
    flags = 0x02 if clean_session else 0
    payload = mqtt_bytes(client_id)
    if will is not None:
        wtopic, wpayload, wqos, wretain = will
        flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        if version == MQTT5:
            payload += varint(0)
        payload += mqtt_bytes(wtopic) + mqtt_bytes(wpayload)
    if username is not None:
        flags |= 0x80
        payload += mqtt_bytes(username)
    if password is not None:
        flags |= 0x40
        payload += mqtt_bytes(password)
    flags |= flags_extra
    body = mqtt_bytes(protocol_name) + bytes([version & 0xFF, flags]) + struct.pack("!H", keepalive)
    if version == MQTT5:
        body += varint(len(properties)) + properties
    return packet(CONNECT, 0, body + payload)


def encode_publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, version=MQTT311,
                   properties=b""):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = mqtt_bytes(topic)
    if qos:
        body += struct.pack("!H", 1 if pid is None else pid)
    if version == MQTT5:
        body += varint(len(properties)) + properties
    return packet(PUBLISH, flags, body + payload)


def encode_subscribe(pid, filters, version=MQTT311, flags=0x02):
    """filters: [(filter, qos_or_options), ...]; flags are the fixed-header flags (0x02)."""
    body = struct.pack("!H", pid)
    if version == MQTT5:
        body += varint(0)
    for f, opts in filters:
        body += mqtt_bytes(f) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def encode_unsubscribe(pid, filters, version=MQTT311, flags=0x02):
    body = struct.pack("!H", pid)
    if version == MQTT5:
        body += varint(0)
    for f in filters:
        body += mqtt_bytes(f)
    return packet(UNSUBSCRIBE, flags, body)


def encode_ack(ptype, pid, flags=None):
    """PUBACK, PUBREC, PUBREL (flags 0x02 by default, as required) or PUBCOMP."""
    if flags is None:
        flags = 0x02 if ptype == PUBREL else 0
    return packet(ptype, flags, struct.pack("!H", pid))


def encode_pingreq():
    return packet(PINGREQ, 0, b"")


def encode_disconnect():
    return packet(DISCONNECT, 0, b"")


class Packet:
    """A decoded packet from the broker. Always: type, flags, body. Per type: CONNACK
    session_present, rc; PUBLISH topic, payload, qos, retain, dup, pid; acks and UNSUBACK pid;
    SUBACK pid, codes."""

    def __init__(self, ptype, flags, body, version=MQTT311):
        self.type, self.flags, self.body = ptype, flags, body
        self.pid = None
        if ptype == CONNACK and len(body) >= 2:
            self.session_present = bool(body[0] & 1)
            self.rc = body[1]
        elif ptype == PUBLISH:
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            self.dup = bool(flags & 8)
            (tlen,) = struct.unpack_from("!H", body)
            self.topic = body[2 : 2 + tlen].decode("utf-8", "replace")
            pos = 2 + tlen
            if self.qos:
                (self.pid,) = struct.unpack_from("!H", body, pos)
                pos += 2
            if version == MQTT5:
                plen, used = _read_varint(body, pos)
                pos += used + plen
            self.payload = body[pos:]
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK) and len(body) >= 2:
            (self.pid,) = struct.unpack_from("!H", body)
        elif ptype == SUBACK and len(body) >= 2:
            (self.pid,) = struct.unpack_from("!H", body)
            pos = 2
            if version == MQTT5:
                plen, used = _read_varint(body, pos)
                pos += used + plen
            self.codes = list(body[pos:])

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, "type%d" % self.type)

    def __repr__(self):
        if self.type == PUBLISH:
            return "<PUBLISH %r q%d r%d d%d pid=%s %r>" % (
                self.topic, self.qos, self.retain, self.dup, self.pid, self.payload[:40])
        return "<%s flags=%x %r>" % (self.name, self.flags, self.body[:40])


def _read_varint(buf, pos):
    """(value, bytes used); raises ValueError past 4 bytes."""
    value, mult = 0, 1
    for i in range(4):
        if pos + i >= len(buf):
            raise IndexError("truncated varint")
        b = buf[pos + i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, i + 1
        mult *= 128
    raise ValueError("varint longer than 4 bytes")


class ConnectionClosed(Exception):
    """The broker closed (or reset) the connection."""


class RawClient:
    """A plain-socket MQTT client: sends whatever bytes it is told, reads whole packets.

    recv() returns one Packet, raising TimeoutError when none arrives in time and
    ConnectionClosed on EOF or reset."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, version=MQTT311):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.stash = []  # PUBLISH packets read while expect() looked for another type
        self.closed = False  # the peer closed
        self._next_pid = 0

    # --- sending ----------------------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send() that reports instead of raising when the broker already closed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def next_pid(self):
        self._next_pid = self._next_pid % 65535 + 1
        return self._next_pid

    def connect(self, client_id="", clean_session=True, keepalive=60, timeout=None, **kw):
        """Sends CONNECT and returns the CONNACK packet (any return code)."""
        kw.setdefault("version", self.version)
        self.send(encode_connect(client_id, clean_session, keepalive, **kw))
        p = self.recv(timeout)
        if p.type != CONNACK:
            raise AssertionError("expected CONNACK, got %r" % p)
        return p

    def subscribe(self, filters, pid=None, timeout=None):
        """SUBSCRIBE [(filter, qos)] (or one filter string and qos pair) and return SUBACK codes."""
        if isinstance(filters, tuple):
            filters = [filters]
        pid = pid or self.next_pid()
        self.send(encode_subscribe(pid, filters, version=self.version))
        p = self.expect(SUBACK, timeout)
        if p.pid != pid:
            raise AssertionError("SUBACK for pid %d, expected %d" % (p.pid, pid))
        return p.codes

    def unsubscribe(self, filters, pid=None, timeout=None):
        pid = pid or self.next_pid()
        self.send(encode_unsubscribe(pid, filters, version=self.version))
        p = self.expect(UNSUBACK, timeout)
        if p.pid != pid:
            raise AssertionError("UNSUBACK for pid %d, expected %d" % (p.pid, pid))
        return p

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None):
        """Sends PUBLISH (no wait); returns the packet id used (None at QoS 0)."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send(encode_publish(topic, payload, qos, retain, dup, pid, version=self.version))
        return pid if qos else None

    def publish_acked(self, topic, payload=b"", qos=1, retain=False, timeout=None):
        """Publishes at QoS 1 or 2 and completes the flow (PUBACK, or PUBREC/PUBREL/PUBCOMP)."""
        pid = self.publish(topic, payload, qos, retain)
        if qos == 1:
            self._expect_pid(PUBACK, pid, timeout)
        elif qos == 2:
            self._expect_pid(PUBREC, pid, timeout)
            self.send(encode_ack(PUBREL, pid))
            self._expect_pid(PUBCOMP, pid, timeout)
        return pid

    def _expect_pid(self, ptype, pid, timeout):
        p = self.expect(ptype, timeout)
        if p.pid != pid:
            raise AssertionError("%s for pid %s, expected %s" % (p.name, p.pid, pid))
        return p

    def ack(self, p):
        """Acknowledges a received PUBLISH as its QoS requires (QoS 2: PUBREC only)."""
        if p.type != PUBLISH:
            return
        if p.qos == 1:
            self.send(encode_ack(PUBACK, p.pid))
        elif p.qos == 2:
            self.send(encode_ack(PUBREC, p.pid))

    def ping(self, timeout=None):
        self.send(encode_pingreq())
        return self.expect(PINGRESP, timeout)

    def disconnect(self):
        self.try_send(encode_disconnect())
        self.close()

    # --- receiving --------------------------------------------------------------------------
    def _packet_from_buf(self):
        """Pops one whole packet off the buffer, or returns None if it is incomplete."""
        if len(self.buf) < 2:
            return None
        try:
            length, used = _read_varint(self.buf, 1)
        except IndexError:
            return None
        total = 1 + used + length
        if len(self.buf) < total:
            return None
        first = self.buf[0]
        body = bytes(self.buf[1 + used : total])
        del self.buf[:total]
        return Packet(first >> 4, first & 0x0F, body, self.version)

    def recv(self, timeout=None):
        """The next packet; TimeoutError after `timeout` s, ConnectionClosed on EOF/reset."""
        timeout = self.timeout if timeout is None else timeout
        if self.stash:
            return self.stash.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            p = self._packet_from_buf()
            if p is not None:
                return p
            if self.closed:
                raise ConnectionClosed("closed by the broker")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no packet within %.2f s" % timeout)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.closed = True
                continue
            self.buf += data

    def expect(self, ptype, timeout=None):
        """The next packet of type `ptype`. PUBLISH packets that arrive first (a client
        receiving its own messages) are kept for the next recv(); any other type fails."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        stashed = []
        try:
            while True:
                p = self.recv(max(0.0, deadline - time.monotonic()))
                if p.type == ptype:
                    return p
                if p.type != PUBLISH:
                    raise AssertionError("expected %s, got %r" % (PACKET_NAMES[ptype], p))
                stashed.append(p)
        finally:
            self.stash[:0] = stashed

    def recv_publishes(self, n, timeout=None, ack=True):
        """n PUBLISH packets. With `ack`, each is acknowledged as its QoS requires and QoS 2
        flows are completed (PUBREC, then PUBCOMP for the PUBREL) before returning; PUBLISH
        packets that arrive meanwhile are kept for the next recv(). Other packets fail."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        out, extra, awaiting_rel = [], [], set()
        try:
            while len(out) < n or awaiting_rel:
                left = max(0.0, deadline - time.monotonic())
                try:
                    p = self.recv(left)
                except TimeoutError:
                    raise AssertionError("got %d of %d PUBLISH (PUBREL pending for %r) within "
                                         "%.1f s: %r" % (len(out), n, sorted(awaiting_rel),
                                                         timeout, out)) from None
                if p.type == PUBREL and p.pid in awaiting_rel:
                    self.send(encode_ack(PUBCOMP, p.pid))
                    awaiting_rel.discard(p.pid)
                    continue
                if p.type != PUBLISH:
                    raise AssertionError("expected PUBLISH, got %r" % p)
                if len(out) >= n:
                    extra.append(p)
                    continue
                if ack:
                    self.ack(p)
                    if p.qos == 2:
                        awaiting_rel.add(p.pid)
                out.append(p)
        finally:
            self.stash[:0] = extra
        return out

    def wait_closed(self, timeout=None):
        """Reads until the broker closes the connection; returns (closed, packets read)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, got
            try:
                got.append(self.recv(left))
            except ConnectionClosed:
                return True, got
            except TimeoutError:
                return False, got

    def silent_for(self, duration):
        """True if nothing arrives (and the connection stays open) for `duration` s."""
        try:
            self.recv(duration)
        except TimeoutError:
            return True
        except ConnectionClosed:
            return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP reset (SO_LINGER 0) instead of a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()
