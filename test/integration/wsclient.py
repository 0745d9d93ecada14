"""A small WebSocket client (RFC 6455) on the socket module, for the integration tests.

WsSocket wraps a connected socket (plain or ssl-wrapped) and speaks the opening handshake and
frames; it can send anything, valid or not (unmasked frames, reserved bits, bad opcodes, split
headers), and reads frames back as the broker sent them. Used as a socket (sendall() sends one
masked binary frame, recv() returns binary payload bytes), it lets rawmqtt's RawClient speak MQTT
over WebSockets unchanged: WsRawClient.
"""

import base64
import collections
import hashlib
import os
import socket
import ssl
import struct
import time

from rawmqtt import RawClient

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

Frame = collections.namedtuple("Frame", "fin opcode payload masked rsv")


class HandshakeFailed(AssertionError):
    def __init__(self, status, headers, body):
        super().__init__("WebSocket upgrade refused: HTTP %s %r" % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame_bytes(opcode, payload, fin=True, mask=True, rsv=0, key=None, length=None):
    """One frame's bytes; `length` overrides the length field (a lie about the payload)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WsSocket:
    """A WebSocket connection over sock; see the module's docstring."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.close_frame = None  # (code, reason) of the close frame received, if any
        self.pongs = []  # payloads of pongs received
        self.eof = False
        self.mask = True  # frames sent through sendall() are masked

    # --- handshake ---------------------------------------------------------------------------
    def request(self, host="127.0.0.1", path="/mqtt", protocols=("mqtt",), key=None,
                version="13", extra=(), method="GET"):
        key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key]
        if version is not None:
            lines.append("Sec-WebSocket-Version: %s" % version)
        if protocols:
            lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(protocols))
        lines += list(extra)
        return ("\r\n".join(lines) + "\r\n\r\n").encode(), key

    def read_response(self, timeout=5.0):
        """(status, headers {lower name: value}, body) of the HTTP answer; body only for errors."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise HandshakeFailed(None, {}, bytes(self.buf))
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n and self._fill(deadline):
                pass
            body = bytes(self.buf[:n])
            del self.buf[:n]
        return status, headers, body

    def handshake(self, timeout=5.0, **kw):
        """Upgrades; returns the 101's headers, raises HandshakeFailed otherwise."""
        data, key = self.request(**kw)
        self.sock.sendall(data)
        status, headers, body = self.read_response(timeout)
        if status != 101:
            raise HandshakeFailed(status, headers, body)
        if headers.get("sec-websocket-accept") != accept_key(key):
            raise AssertionError("bad Sec-WebSocket-Accept %r" % headers)
        return headers

    # --- frames ------------------------------------------------------------------------------
    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame_bytes(opcode, payload, **kw))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _frame_from_buf(self):
        b = self.buf
        if len(b) < 2:
            return None
        n, at = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, at = struct.unpack(">H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, at = struct.unpack(">Q", b[2:10])[0], 10
        masked = bool(b[1] & 0x80)
        key = b""
        if masked:
            if len(b) < at + 4:
                return None
            key, at = bytes(b[at:at + 4]), at + 4
        if len(b) < at + n:
            return None
        payload = bytes(b[at:at + n])
        if masked:
            payload = bytes(x ^ key[i % 4] for i, x in enumerate(payload))
        f = Frame(bool(b[0] & 0x80), b[0] & 0x0F, payload, masked, (b[0] >> 4) & 7)
        del b[:at + n]
        return f

    def recv_frame(self, timeout=5.0):
        """The next frame; None on EOF; TimeoutError when none arrives in time."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._frame_from_buf()
            if f is not None:
                return f
            if self.eof:
                return None
            if not self._fill(deadline) and not self.eof:
                raise TimeoutError("no frame within %.2f s" % timeout)

    # --- the socket interface RawClient uses -------------------------------------------------
    def sendall(self, data):
        self.send_frame(OP_BINARY, bytes(data), mask=self.mask)

    def recv(self, _n):
        """Binary payload bytes; b"" at EOF or after a close frame. Pings are answered."""
        while True:
            f = self.recv_frame(self.sock.gettimeout() or 5.0)
            if f is None:
                return b""
            if f.opcode == OP_CLOSE:
                code = struct.unpack(">H", f.payload[:2])[0] if len(f.payload) >= 2 else None
                self.close_frame = (code, f.payload[2:])
                return b""
            if f.opcode == OP_PING:
                self.send_frame(OP_PONG, f.payload)
            elif f.opcode == OP_PONG:
                self.pongs.append(f.payload)
            elif f.payload:
                return f.payload

    def settimeout(self, t):
        self.sock.settimeout(t)

    def gettimeout(self):
        return self.sock.gettimeout()

    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def close(self):
        self.sock.close()


def connect(port, host="127.0.0.1", tls_ca=None, timeout=5.0):
    """A TCP (or, with tls_ca, TLS) socket to the broker, not yet upgraded. The harness waits
    for the broker's first listener only; under load a second one may still be retrying its
    bind ("Port busy, trying again"), so a refused connection is tried again for 5 s."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            s = socket.create_connection((host, port), timeout=timeout)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_ca:
        ctx = ssl.create_default_context(cafile=tls_ca)
        s = ctx.wrap_socket(s, server_hostname=host)
    return s


class WsRawClient(RawClient):
    """rawmqtt's RawClient over a WebSocket (ws://, or wss:// with tls_ca)."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, tls_ca=None, protocols=("mqtt",),
                 **kw):
        super().__init__(port, host, timeout, **kw)
        sock = self.sock
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            sock = ctx.wrap_socket(sock, server_hostname=host)
        self.ws = WsSocket(sock)
        self.ws.handshake(timeout, host=host, protocols=protocols)
        self.sock = self.ws
