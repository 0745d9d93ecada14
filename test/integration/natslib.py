"""A NATS cluster for the cluster tests (issue 14), and a small NATS client on a raw socket.

- NatsCluster(n): n nats-server processes (Debian's nats-server 2.9) on 127.0.0.1, each with a
  client, a cluster (route) and a monitoring port from the harness's port slice (free_port), a
  full mesh of routes, JetStream on with its store in the cluster's temp dir (n >= 3: replicated
  streams are possible; jetstream=False leaves it off). start() returns when every server's /routez shows its n - 1 routes and
  /healthz says JetStream is current; kill(i) / restart(i) take one server down and back on the
  same ports and store; stop() ends them all by PID. The temp dir (configs, logs, stores) is
  removed unless STARLING_KEEP_LOGS is set.
- NatsClient: the NATS text protocol over a socket (INFO, CONNECT, PUB/HPUB, SUB/UNSUB, MSG/HMSG,
  PING/PONG, -ERR): no library the project does not already have. It is enough to publish,
  subscribe, make requests, and drive JetStream's API ($JS.API.*), whose requests and answers
  are JSON messages. Debian 12 packages no NATS command-line tool (natscli is not in bookworm)
  and libnats-dev ships no example programs, so the tests speak the protocol themselves.
- NATS_SERVER is the binary or None; skip_without_nats says why a test skips.

Not a test module itself (no test_ prefix).
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import free_port

NATS_SERVER = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.access(p, os.X_OK)), None)

skip_without_nats = unittest.skipIf(
    NATS_SERVER is None, "nats-server is not installed (Debian package nats-server; make deps)")


class NatsError(AssertionError):
    pass


def _http_json(port, path, timeout=1.0):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return json.loads(r.read().decode())


class NatsServer:
    """One nats-server of a NatsCluster: ports, config, log and JetStream store."""

    STOP_TIMEOUT_S = 10.0

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = "n%d" % index
        self.port = free_port()
        self.cluster_port = free_port()
        self.http_port = free_port()
        self.dir = os.path.join(cluster.dir, self.name)
        os.makedirs(self.dir)
        self.config_path = os.path.join(self.dir, "nats.conf")
        self.log_path = os.path.join(self.dir, "nats.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def write_config(self, peers):
        lines = [
            "server_name: %s" % self.name,
            "listen: 127.0.0.1:%d" % self.port,
            "http: 127.0.0.1:%d" % self.http_port,
        ]
        if self.cluster.jetstream:
            lines.append('jetstream { store_dir: "%s" }' % os.path.join(self.dir, "js"))
        if peers:
            routes = ", ".join("nats-route://127.0.0.1:%d" % p.cluster_port for p in peers)
            lines.append("cluster { name: %s, listen: 127.0.0.1:%d, routes: [%s] }"
                         % (self.cluster.name, self.cluster_port, routes))
        lines += self.cluster.extra_config
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        assert self.proc is None
        self.proc = subprocess.Popen([NATS_SERVER, "-c", self.config_path, "-l", self.log_path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Ends the process by its PID (SIGKILL: as a crash) and reaps it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=self.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=self.STOP_TIMEOUT_S)
        self.proc = None

    def stop(self):
        self.kill(signal.SIGTERM)

    def server_id(self):
        """The server's id (new at every start), or None while it does not answer."""
        try:
            return _http_json(self.http_port, "/varz").get("server_id")
        except (OSError, ValueError):
            return None

    def routes(self):
        """Ids of the servers this one has a route to (2.9's /routez names none), sorted, or
        None while it does not answer."""
        try:
            z = _http_json(self.http_port, "/routez")
        except (OSError, ValueError):
            return None
        return sorted(r.get("remote_id") for r in z.get("routes") or [])

    def jsz(self):
        """/jsz: JetStream's state on this server (meta_cluster.leader names the meta leader)."""
        return _http_json(self.http_port, "/jsz")

    def healthy(self):
        """/healthz: the server is up and, with JetStream, current with its meta group."""
        try:
            return _http_json(self.http_port, "/healthz").get("status") == "ok"
        except (OSError, ValueError):
            return False

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class NatsCluster:
    """n nats-server processes with routes between them and JetStream on."""

    START_TIMEOUT_S = 20.0
    # Every server down, then up again: JetStream elects a meta leader and brings each stream
    # current before the servers report healthy. A loaded CI run took 19 s for the election
    # alone, with the streams of the module's earlier tests still behind.
    RESTART_ALL_TIMEOUT_S = 60.0

    def __init__(self, n=3, name="starling-test", extra_config=(), jetstream=True):
        if NATS_SERVER is None:
            raise unittest.SkipTest("nats-server is not installed")
        self.name = name
        # Without JetStream a cluster forms, and re-forms after servers come back, at once:
        # no meta leader to elect (tests that need no stream or bucket turn it off).
        self.jetstream = jetstream
        self.extra_config = list(extra_config)
        self.dir = tempfile.mkdtemp(prefix="starling-nats-")
        self.servers = [NatsServer(self, i) for i in range(n)]

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __getitem__(self, i):
        return self.servers[i]

    def urls(self):
        return ",".join(s.url for s in self.servers)

    def start(self):
        for s in self.servers:
            s.write_config([p for p in self.servers if p is not s])
            s.start()
        try:
            self.wait_formed()
        except BaseException:
            self.stop()
            raise

    def wait_formed(self, timeout=START_TIMEOUT_S):
        """Until every server is up with routes to all the others and JetStream is current."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [s for s in self.servers if s.proc is not None and not s.alive()]
            if dead:
                raise NatsError("nats-server %s exited (status %s); log:\n%s"
                                % (dead[0].name, dead[0].proc.returncode,
                                   _tail(dead[0].log_text())))
            if self.formed():
                return
            time.sleep(0.05)
        raise NatsError("the NATS cluster did not form within %.0f s: %s\n%s"
                        % (timeout, {s.name: (s.server_id(), s.routes()) for s in self.servers},
                           "\n".join("--- %s\n%s" % (s.name, _tail(s.log_text(), 15))
                                     for s in self.servers)))

    def formed(self):
        """Every server answers, has a route to each other one, and is healthy."""
        ids = [s.server_id() for s in self.servers]
        if None in ids:
            return False
        for s, me in zip(self.servers, ids):
            if s.routes() != sorted(i for i in ids if i != me) or not s.healthy():
                return False
        return True

    def kill(self, i, sig=signal.SIGKILL):
        self.servers[i].kill(sig)

    def restart(self, i, wait=True):
        """Starts server i again on its ports, config and store; waits for the whole mesh."""
        self.servers[i].start()
        if wait:
            self.wait_formed()

    def restart_all(self):
        """Starts every server again after all were down; waits for the whole mesh."""
        for s in self.servers:
            s.start()
        self.wait_formed(timeout=self.RESTART_ALL_TIMEOUT_S)

    def stop(self):
        """Every server by its PID (SIGTERM, then SIGKILL past the timeout); the temp dir goes
        unless STARLING_KEEP_LOGS is set."""
        for s in self.servers:
            s.stop()
        if not os.environ.get("STARLING_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def _tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


# --- a raw NATS client ---------------------------------------------------------------------

class Msg:
    """A delivered message: subject, sid, reply, headers (raw block or None), data."""

    def __init__(self, subject, sid, reply, headers, data):
        self.subject, self.sid, self.reply, self.headers, self.data = (subject, sid, reply,
                                                                       headers, data)

    def status(self):
        """The status of a header block's first line ("NATS/1.0 503" -> 503), or None."""
        if not self.headers:
            return None
        first = self.headers.split(b"\r\n", 1)[0].split()
        return int(first[1]) if len(first) > 1 and first[1].isdigit() else None

    def json(self):
        if self.status() == 503:
            raise NatsError("no responders on %s (503)" % self.subject)
        return json.loads(self.data.decode())

    def __repr__(self):
        return "Msg(%r, sid=%s, reply=%r, headers=%r, data=%r)" % (
            self.subject, self.sid, self.reply, self.headers, self.data[:80])


class NatsClient:
    """One connection speaking the NATS client protocol (docs: nats-protocol): after INFO it
    sends CONNECT with headers on and pedantic checks, and every call is synchronous."""

    def __init__(self, port, name="starling-test", timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.pending = []  # messages read while waiting for something else
        self.next_sid = 1
        line = self._line()
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line)
        self.info = json.loads(line[5:])
        self._send(b"CONNECT " + json.dumps({
            "verbose": False, "pedantic": True, "headers": True, "no_responders": True,
            "protocol": 1, "name": name, "lang": "python-raw", "version": "0"}).encode() + b"\r\n")
        self.flush()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- wire ---
    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no answer from nats-server")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise NatsError("nats-server closed the connection")
        self.buf += chunk

    def _line(self, deadline=None):
        deadline = deadline or time.monotonic() + self.timeout
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read_op(self, deadline):
        """The next server operation: a Msg, b"PONG", b"+OK"; answers PING; raises on -ERR."""
        while True:
            line = self._line(deadline)
            if line == b"PING":
                self._send(b"PONG\r\n")
                continue
            if line.startswith(b"-ERR"):
                raise NatsError("nats-server: %s" % line.decode(errors="replace"))
            if line.startswith(b"INFO "):
                continue
            if line.startswith(b"MSG "):
                a = line.split()[1:]
                subject, sid, reply, size = (a[0], a[1], a[2], a[3]) if len(a) == 4 else (
                    a[0], a[1], None, a[2])
                return Msg(subject.decode(), int(sid), reply and reply.decode(), None,
                           self._bytes(int(size), deadline))
            if line.startswith(b"HMSG "):
                a = line.split()[1:]
                subject, sid, reply, hlen, size = (a if len(a) == 5 else
                                                   (a[0], a[1], None, a[2], a[3]))
                raw = self._bytes(int(size), deadline)
                return Msg(subject.decode(), int(sid), reply and reply.decode(),
                           raw[:int(hlen)], raw[int(hlen):])
            return line

    # --- operations ---
    def flush(self, timeout=None):
        """PING and wait for PONG: everything sent before was processed by the server."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self._send(b"PING\r\n")
        while True:
            op = self._read_op(deadline)
            if isinstance(op, Msg):
                self.pending.append(op)
            elif op == b"PONG":
                return

    def sub(self, subject, queue=None):
        sid = self.next_sid
        self.next_sid += 1
        self._send(("SUB %s %s%d\r\n" % (subject, queue + " " if queue else "", sid)).encode())
        return sid

    def unsub(self, sid):
        self._send(b"UNSUB %d\r\n" % sid)

    def pub(self, subject, data=b"", reply=None, headers=None):
        """PUB, or HPUB when headers (a dict) are given."""
        r = (reply + " ") if reply else ""
        if headers is None:
            self._send(("PUB %s %s%d\r\n" % (subject, r, len(data))).encode() + data + b"\r\n")
            return
        h = b"NATS/1.0\r\n" + b"".join(("%s: %s\r\n" % kv).encode() for kv in headers.items())
        h += b"\r\n"
        self._send(("HPUB %s %s%d %d\r\n" % (subject, r, len(h), len(h) + len(data))).encode()
                   + h + data + b"\r\n")

    def next_msg(self, timeout=None, sid=None):
        """The next message (of subscription sid, if given); socket.timeout when none comes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        for i, m in enumerate(self.pending):
            if sid is None or m.sid == sid:
                return self.pending.pop(i)
        while True:
            op = self._read_op(deadline)
            if isinstance(op, Msg):
                if sid is None or op.sid == sid:
                    return op
                self.pending.append(op)

    def request(self, subject, data=b"", timeout=None):
        """Publishes with a fresh inbox as reply subject and returns the first answer."""
        inbox = "_INBOX.%s" % base64.b32encode(os.urandom(10)).decode().rstrip("=")
        sid = self.sub(inbox)
        self.pub(subject, data, reply=inbox)
        try:
            return self.next_msg(timeout, sid=sid)
        finally:
            self.unsub(sid)

    # --- JetStream's API: JSON requests on $JS.API.* ---
    def js_api(self, what, body=None, timeout=None):
        answer = self.request("$JS.API." + what, json.dumps(body or {}).encode(), timeout).json()
        if "error" in answer:
            raise NatsError("JetStream API %s: %s" % (what, answer["error"]))
        return answer

    def kv_create(self, bucket, replicas=1, history=1):
        """A key-value bucket as the NATS clients create one: stream KV_<bucket> on
        $KV.<bucket>.>, one message per subject kept (history), rollups allowed."""
        return self.js_api("STREAM.CREATE.KV_%s" % bucket, {
            "name": "KV_%s" % bucket, "subjects": ["$KV.%s.>" % bucket],
            "max_msgs_per_subject": history, "discard": "new", "deny_delete": True,
            "deny_purge": False, "allow_rollup_hdrs": True, "allow_direct": True,
            "num_replicas": replicas, "storage": "file", "max_age": 0,
            "duplicate_window": 120 * 10**9})

    def kv_put(self, bucket, key, value, timeout=None):
        """Publishes the value and returns JetStream's acknowledgement (stream, seq)."""
        inbox = "_INBOX.%s" % base64.b32encode(os.urandom(10)).decode().rstrip("=")
        sid = self.sub(inbox)
        self.pub("$KV.%s.%s" % (bucket, key), value, reply=inbox)
        try:
            ack = self.next_msg(timeout, sid=sid).json()
        finally:
            self.unsub(sid)
        if "error" in ack:
            raise NatsError("put %s: %s" % (key, ack["error"]))
        return ack

    def kv_get(self, bucket, key, timeout=None):
        """The last value of a key (None when the key has none), through the stream's
        message-get API, which any server of the cluster answers."""
        try:
            m = self.js_api("STREAM.MSG.GET.KV_%s" % bucket,
                            {"last_by_subj": "$KV.%s.%s" % (bucket, key)}, timeout)
        except NatsError as e:
            if "no message found" in str(e):
                return None
            raise
        return base64.b64decode(m["message"].get("data", ""))
