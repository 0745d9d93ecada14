"""A raw-socket MQTT client for the integration tests: packet encoders, a decoder, RawClient.

Real clients never send a malformed packet, a packet of the wrong direction or a QoS 2 PUBLISH
they then abandon; this module does. It speaks MQTT 3.1, 3.1.1 and 5.0. For MQTT 5, prop() and
props() encode properties (any identifier on any packet, duplicates included, so validation can
be tested), every encoder takes a property block and a reason code where its packet has one, and
Packet decodes the reason code and properties (a Props list, in wire order) of every packet the
server sends. It imports nothing from the harness: harness.py re-exports it.
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


# --- MQTT 5 properties (MQTT 5.0 section 2.2.2.2) ---------------------------------------------
PAYLOAD_FORMAT, MESSAGE_EXPIRY, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA = 1, 2, 3, 8, 9
SUBSCRIPTION_ID, SESSION_EXPIRY, ASSIGNED_CLIENT_ID, SERVER_KEEP_ALIVE = 0x0B, 0x11, 0x12, 0x13
AUTH_METHOD, AUTH_DATA, REQUEST_PROBLEM_INFO, WILL_DELAY = 0x15, 0x16, 0x17, 0x18
REQUEST_RESPONSE_INFO, RESPONSE_INFO, SERVER_REFERENCE, REASON_STRING = 0x19, 0x1A, 0x1C, 0x1F
RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS, MAXIMUM_QOS = 0x21, 0x22, 0x23, 0x24
RETAIN_AVAILABLE, USER_PROPERTY, MAXIMUM_PACKET_SIZE, WILDCARD_SUB_AVAILABLE = 0x25, 0x26, 0x27, 0x28
SUB_ID_AVAILABLE, SHARED_SUB_AVAILABLE = 0x29, 0x2A

# Each identifier's data type (section 2.2.2.2, table 2-4).
PROP_TYPES = {
    PAYLOAD_FORMAT: "byte", MESSAGE_EXPIRY: "u32", CONTENT_TYPE: "str", RESPONSE_TOPIC: "str",
    CORRELATION_DATA: "bin", SUBSCRIPTION_ID: "varint", SESSION_EXPIRY: "u32",
    ASSIGNED_CLIENT_ID: "str", SERVER_KEEP_ALIVE: "u16", AUTH_METHOD: "str", AUTH_DATA: "bin",
    REQUEST_PROBLEM_INFO: "byte", WILL_DELAY: "u32", REQUEST_RESPONSE_INFO: "byte",
    RESPONSE_INFO: "str", SERVER_REFERENCE: "str", REASON_STRING: "str",
    RECEIVE_MAXIMUM: "u16", TOPIC_ALIAS_MAXIMUM: "u16", TOPIC_ALIAS: "u16", MAXIMUM_QOS: "byte",
    RETAIN_AVAILABLE: "byte", USER_PROPERTY: "pair", MAXIMUM_PACKET_SIZE: "u32",
    WILDCARD_SUB_AVAILABLE: "byte", SUB_ID_AVAILABLE: "byte", SHARED_SUB_AVAILABLE: "byte",
}


def prop(pid, value):
    """One encoded property: identifier, then the value in the identifier's type. A user
    property's value is a (name, value) pair. Any identifier may be put on any packet."""
    kind = PROP_TYPES[pid]
    head = varint(pid)
    if kind == "byte":
        return head + bytes([value])
    if kind == "u16":
        return head + struct.pack("!H", value)
    if kind == "u32":
        return head + struct.pack("!I", value)
    if kind == "varint":
        return head + varint(value)
    if kind == "pair":
        return head + mqtt_bytes(value[0]) + mqtt_bytes(value[1])
    return head + mqtt_bytes(value)  # "str" and "bin"


def props(*pairs):
    """A property block (without its length) from (identifier, value) pairs, in that order."""
    return b"".join(prop(pid, value) for pid, value in pairs)


class Props:
    """A decoded property block: (identifier, value) pairs in wire order. Strings are str,
    binary data bytes, user properties (name, value) pairs of str."""

    def __init__(self, items=()):
        self.items = list(items)

    def get(self, pid, default=None):
        """The first value of `pid`, or default."""
        for i, v in self.items:
            if i == pid:
                return v
        return default

    def all(self, pid):
        """Every value of `pid`, in order (user properties, subscription identifiers)."""
        return [v for i, v in self.items if i == pid]

    def ids(self):
        return [i for i, _ in self.items]

    def __contains__(self, pid):
        return any(i == pid for i, _ in self.items)

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return "Props(%r)" % self.items


def _read_str(buf, pos, text):
    (n,) = struct.unpack_from("!H", buf, pos)
    if pos + 2 + n > len(buf):
        raise ValueError("string runs past the property block")
    raw = bytes(buf[pos + 2 : pos + 2 + n])
    return (raw.decode("utf-8") if text else raw), pos + 2 + n


def decode_props(buf, pos):
    """Reads a property block (length varint first) at buf[pos:]; returns (Props, next pos).
    Raises ValueError on an unknown identifier or a value past the block's end."""
    length, used = _read_varint(buf, pos)
    pos += used
    end = pos + length
    if end > len(buf):
        raise ValueError("property length %d past the packet's end" % length)
    items = []
    while pos < end:
        pid, used = _read_varint(buf, pos)
        pos += used
        kind = PROP_TYPES.get(pid)
        if kind is None:
            raise ValueError("unknown property identifier 0x%02x" % pid)
        if kind == "byte":
            value, pos = buf[pos], pos + 1
        elif kind == "u16":
            (value,), pos = struct.unpack_from("!H", buf, pos), pos + 2
        elif kind == "u32":
            (value,), pos = struct.unpack_from("!I", buf, pos), pos + 4
        elif kind == "varint":
            value, used = _read_varint(buf, pos)
            pos += used
        elif kind == "pair":
            name, pos = _read_str(buf, pos, True)
            val, pos = _read_str(buf, pos, True)
            value = (name, val)
        else:
            value, pos = _read_str(buf, pos, kind == "str")
        items.append((pid, value))
    if pos != end:
        raise ValueError("a property runs past the property block")
    return Props(items), end


def packet(ptype, flags, body):
    """A whole packet: fixed header (type, flags, remaining length) and body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + body


def encode_connect(client_id="", clean_session=True, keepalive=60, will=None, username=None,
                   password=None, version=MQTT311, protocol_name=None, flags_extra=0,
                   properties=b"", will_properties=b""):
    """CONNECT. will = (topic, payload, qos, retain). version 3 sends "MQIsdp", 4 and 5 "MQTT";
    protocol_name overrides the name, flags_extra is OR-ed into the connect flags (for the
    reserved bit and inconsistent flag tests). For version 5, `properties` and
    `will_properties` are the encoded property blocks (props()) of the CONNECT and of the will;
    clean_session is then the Clean Start flag."""
    if protocol_name is None:
        protocol_name = "MQIsdp" if version == MQTT31 else "MQTT"
    flags = 0x02 if clean_session else 0
    payload = mqtt_bytes(client_id)
    if will is not None:
        wtopic, wpayload, wqos, wretain = will
        flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        if version == MQTT5:
            payload += varint(len(will_properties)) + will_properties
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


def encode_subscribe(pid, filters, version=MQTT311, flags=0x02, properties=b""):
    """filters: [(filter, qos_or_options), ...]; flags are the fixed-header flags (0x02). For
    version 5 the options byte also holds No Local (0x04), Retain As Published (0x08) and
    Retain Handling (0x10, 0x20), see sub_options()."""
    body = struct.pack("!H", pid)
    if version == MQTT5:
        body += varint(len(properties)) + properties
    for f, opts in filters:
        body += mqtt_bytes(f) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    """An MQTT 5 Subscription Options byte (section 3.8.3.1)."""
    return (qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0)
            | (retain_handling << 4))


def encode_unsubscribe(pid, filters, version=MQTT311, flags=0x02, properties=b""):
    body = struct.pack("!H", pid)
    if version == MQTT5:
        body += varint(len(properties)) + properties
    for f in filters:
        body += mqtt_bytes(f)
    return packet(UNSUBSCRIBE, flags, body)


def encode_ack(ptype, pid, flags=None, rc=None, properties=b""):
    """PUBACK, PUBREC, PUBREL (flags 0x02 by default, as required) or PUBCOMP. With rc (MQTT 5)
    the Reason Code follows the packet id, then the property block if one is given."""
    if flags is None:
        flags = 0x02 if ptype == PUBREL else 0
    body = struct.pack("!H", pid)
    if rc is not None or properties:
        body += bytes([rc or 0])
        if properties:
            body += varint(len(properties)) + properties
    return packet(ptype, flags, body)


def encode_pingreq():
    return packet(PINGREQ, 0, b"")


def encode_disconnect(rc=None, properties=b""):
    """DISCONNECT; with rc (MQTT 5) a Reason Code and a property block (empty if not given)."""
    if rc is None and not properties:
        return packet(DISCONNECT, 0, b"")
    return packet(DISCONNECT, 0, bytes([rc or 0]) + varint(len(properties)) + properties)


def encode_auth(rc=0, properties=b""):
    """MQTT 5 AUTH with a Reason Code and a property block."""
    return packet(AUTH, 0, bytes([rc]) + varint(len(properties)) + properties)


class Packet:
    """A decoded packet from the broker. Always: type, flags, body, props (a Props, empty before
    MQTT 5). Per type: CONNACK session_present, rc; PUBLISH topic, payload, qos, retain, dup,
    pid; PUBACK/PUBREC/PUBREL/PUBCOMP pid and (MQTT 5) rc; SUBACK and UNSUBACK pid, codes
    (UNSUBACK codes only in MQTT 5); MQTT 5 DISCONNECT and AUTH rc. A Reason Code left out
    (allowed when it is 0x00 and there are no properties) reads as 0."""

    def __init__(self, ptype, flags, body, version=MQTT311):
        self.type, self.flags, self.body = ptype, flags, body
        self.pid = None
        self.rc = None
        self.props = Props()
        v5 = version == MQTT5
        if ptype == CONNACK and len(body) >= 2:
            self.session_present = bool(body[0] & 1)
            self.rc = body[1]
            if v5 and len(body) > 2:
                self.props, _ = decode_props(body, 2)
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
            if v5:
                self.props, pos = decode_props(body, pos)
            self.payload = body[pos:]
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP) and len(body) >= 2:
            (self.pid,) = struct.unpack_from("!H", body)
            if v5:
                self.rc = body[2] if len(body) > 2 else 0
                if len(body) > 3:
                    self.props, _ = decode_props(body, 3)
        elif ptype in (SUBACK, UNSUBACK) and len(body) >= 2:
            (self.pid,) = struct.unpack_from("!H", body)
            pos = 2
            if v5:
                self.props, pos = decode_props(body, pos)
            if ptype == SUBACK or v5:
                self.codes = list(body[pos:])
        elif ptype in (DISCONNECT, AUTH) and v5:
            self.rc = body[0] if body else 0
            if len(body) > 1:
                self.props, _ = decode_props(body, 1)

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, "type%d" % self.type)

    @property
    def topic_alias(self):
        return self.props.get(TOPIC_ALIAS)

    def __repr__(self):
        extra = " %r" % self.props if len(self.props) else ""
        if self.type == PUBLISH:
            return "<PUBLISH %r q%d r%d d%d pid=%s %r%s>" % (
                self.topic, self.qos, self.retain, self.dup, self.pid, self.payload[:40], extra)
        if self.rc is not None:
            return "<%s rc=0x%02x pid=%s%s>" % (self.name, self.rc, self.pid, extra)
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
        self.last_ack = None  # the last SUBACK, PUBACK or PUBREC awaited (publish_acked...)
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

    def subscribe(self, filters, pid=None, timeout=None, properties=b""):
        """SUBSCRIBE [(filter, qos)] (or one filter string and qos pair) and return SUBACK codes.
        The SUBACK itself (its properties, in MQTT 5) is kept in self.last_ack."""
        if isinstance(filters, tuple):
            filters = [filters]
        pid = pid or self.next_pid()
        self.send(encode_subscribe(pid, filters, version=self.version, properties=properties))
        p = self.expect(SUBACK, timeout)
        if p.pid != pid:
            raise AssertionError("SUBACK for pid %d, expected %d" % (p.pid, pid))
        self.last_ack = p
        return p.codes

    def unsubscribe(self, filters, pid=None, timeout=None, properties=b""):
        """UNSUBSCRIBE; returns the UNSUBACK (with codes in MQTT 5)."""
        pid = pid or self.next_pid()
        self.send(encode_unsubscribe(pid, filters, version=self.version, properties=properties))
        p = self.expect(UNSUBACK, timeout)
        if p.pid != pid:
            raise AssertionError("UNSUBACK for pid %d, expected %d" % (p.pid, pid))
        return p

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
                properties=b""):
        """Sends PUBLISH (no wait); returns the packet id used (None at QoS 0)."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send(encode_publish(topic, payload, qos, retain, dup, pid, version=self.version,
                                 properties=properties))
        return pid if qos else None

    def publish_acked(self, topic, payload=b"", qos=1, retain=False, timeout=None,
                      properties=b""):
        """Publishes at QoS 1 or 2 and completes the flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
        Returns the packet id; the PUBACK or PUBREC (its MQTT 5 reason code) is self.last_ack."""
        pid = self.publish(topic, payload, qos, retain, properties=properties)
        if qos == 1:
            self.last_ack = self._expect_pid(PUBACK, pid, timeout)
        elif qos == 2:
            self.last_ack = self._expect_pid(PUBREC, pid, timeout)
            if self.last_ack.rc is not None and self.last_ack.rc >= 0x80:
                return pid  # a refused QoS 2 message ends with the PUBREC [MQTT-4.3.3-4]
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

    def disconnect(self, rc=None, properties=b""):
        """DISCONNECT (with an MQTT 5 reason code and properties if given), then close."""
        self.try_send(encode_disconnect(rc, properties))
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

    def drain(self, quiet=0.5, ack=False, limit=1000):
        """Every packet that arrives until none has for `quiet` s (or the connection closes, or
        `limit` packets). With `ack`, PUBLISH packets are acknowledged as their QoS requires
        and QoS 2 flows completed (a PUBREL is answered with PUBCOMP and left out)."""
        out = []
        while len(out) < limit:
            try:
                p = self.recv(quiet)
            except (TimeoutError, ConnectionClosed):
                break
            if ack and p.type == PUBREL:
                self.send(encode_ack(PUBCOMP, p.pid))
                continue
            out.append(p)
            if ack:
                self.ack(p)
        return out

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
