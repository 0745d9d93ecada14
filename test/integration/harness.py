"""Integration-test harness: starts a real broker, connects real clients, speaks raw MQTT.

Every test module in this directory imports this file. It holds:
  - BIN / KIND: which broker binary the suite drives (env STARLING_BIN / STARLING_BROKER, or the
    --bin / --broker command-line options, which are removed from sys.argv so unittest never sees
    them). KIND 'mosquitto' runs the same tests against /usr/sbin/mosquitto, the reference
    Starling replaces; a test of behaviour where Mosquitto deviates from the MQTT specification is
    decorated with @starling_only("reason").
  - Broker: one broker process on a free 127.0.0.1 port with its own temp dir, config file and
    log; stop() fails the test if a Starling broker exits non-zero or its log holds a sanitizer
    report.
  - BrokerTestCase: a fresh broker per test, paho clients, message collectors, raw clients and
    subprocesses that are all stopped (by PID / socket) before the broker is.
  - RawClient, Packet, the encode_* functions and the MQTT 5 property codec (prop, props, Props,
    property identifiers as mqtt5.NAME), re-exported from rawmqtt.py: a small MQTT 3.1 / 3.1.1 /
    5.0 client over a plain socket, for bulk runs and for bytes no real client would send.
  - MQTT 5 paho clients: client(protocol=paho.MQTTv5, ...) with clean_start, connect and will
    properties; their messages are Msg5 (with the PUBLISH properties), their CONNACK, SUBACK,
    UNSUBACK and DISCONNECT reason codes and properties are kept on the client.
Every wait is bounded: each helper takes a timeout and fails instead of hanging.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections import namedtuple

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

# The raw client is part of the harness API: tests import all of it from here.
from rawmqtt import (  # noqa: E402,F401
    CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE,
    UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH, PACKET_NAMES, MQTT31, MQTT311, MQTT5,
    ConnectionClosed, Packet, Props, RawClient, decode_props, encode_ack, encode_auth,
    encode_connect, encode_disconnect, encode_pingreq, encode_publish, encode_subscribe,
    encode_unsubscribe, mqtt_bytes, packet, prop, props, sub_options, varint)
import rawmqtt as mqtt5  # noqa: E402  (property identifiers: mqtt5.TOPIC_ALIAS...)
from paho.mqtt.packettypes import PacketTypes  # noqa: E402,F401
from paho.mqtt.properties import Properties  # noqa: E402,F401
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402,F401

REPO = os.path.dirname(os.path.dirname(HERE))
MOSQUITTO = "/usr/sbin/mosquitto"
PYTHON = "/usr/bin/python3"


def _take_option(name):
    """Removes `--name VALUE` or `--name=VALUE` from sys.argv and returns VALUE (or None)."""
    value = None
    argv = sys.argv
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--" + name and i + 1 < len(argv):
            value = argv[i + 1]
            del argv[i : i + 2]
            continue
        if arg.startswith("--" + name + "="):
            value = arg.split("=", 1)[1]
            del argv[i]
            continue
        i += 1
    return value


def _configure():
    """Reads --bin/--broker (they win over the environment) and exports them for children."""
    bin_arg = _take_option("bin")
    kind_arg = _take_option("broker")
    bin_dir = bin_arg or os.environ.get("STARLING_BIN") or "build/asan"
    if not os.path.isabs(bin_dir):
        # Relative paths are the Makefile's ($(B)/asan): relative to the repository root when
        # they do not exist relative to the current directory.
        bin_dir = bin_dir if os.path.isdir(bin_dir) else os.path.join(REPO, bin_dir)
    kind = kind_arg or os.environ.get("STARLING_BROKER") or "starling"
    if kind not in ("starling", "mosquitto"):
        raise SystemExit("harness: --broker must be starling or mosquitto, not %r" % kind)
    os.environ["STARLING_BIN"] = os.path.abspath(bin_dir)
    os.environ["STARLING_BROKER"] = kind
    return os.path.abspath(bin_dir), kind


BIN, KIND = _configure()
# The ThreadSanitizer build (make tsan): its shadow memory is several times what the broker
# allocates, so tests that bound the broker's RSS only check what it counts itself there.
TSAN = os.path.basename(os.path.normpath(BIN)) == "tsan"
# Worker threads of every Starling broker the tests start (0: the broker's default).
WORKERS = int(_take_option("workers") or os.environ.get("STARLING_WORKERS") or 0)
os.environ["STARLING_WORKERS"] = str(WORKERS)
# The event loop every Starling broker runs on (event_backend): "" leaves the broker's default
# (auto: io_uring here); STARLING_TEST_BACKEND=epoll is make test-epoll.
BACKEND = os.environ.get("STARLING_TEST_BACKEND", "")


def io_uring_only(reason):
    """Skips a test that is about io_uring itself when the suite runs on another back-end."""
    return unittest.skipIf(BACKEND not in ("", "auto", "io_uring"), "io_uring only: " + reason)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def tool(name):
    """Path of a Starling command-line tool (starling-pub, starling-sub, starling-bench...)."""
    return os.path.join(BIN, name)


MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"


def client_cmd(program, broker, *args):
    """argv for a command-line client (mosquitto_sub, starling-pub...) aimed at `broker`,
    with stdout line-buffered (stdbuf) so its lines can be waited for through a pipe."""
    return ["/usr/bin/stdbuf", "-oL", program, "-h", broker.host, "-p", str(broker.port)] + [
        str(a) for a in args]


def starling_only(reason):
    """Skips a test for Mosquitto only: it checks the specification where Mosquitto deviates,
    or a documented Starling choice Mosquitto does not make. `reason` says which."""
    # STARLING_NO_SKIP=1 runs them against Mosquitto anyway, to see each one fail there.
    skip = KIND == "mosquitto" and not os.environ.get("STARLING_NO_SKIP")
    return unittest.skipIf(skip, "starling only: " + reason)


# Broker ports come from below the kernel's ephemeral range (32768+), so client sockets never
# take them, and from a slice of PORT_SLICE ports per process: run.py gives each child its own
# slice (STARLING_PORT_BASE), so brokers of parallel modules cannot meet on one port even if
# they bind with SO_REUSEPORT.
PORT_LOW, PORT_HIGH, PORT_SLICE = 20000, 32000, 500
PORT_SLICES = (PORT_HIGH - PORT_LOW) // PORT_SLICE
_port_lock = threading.Lock()
_port_next = [None]


def free_port():
    """A port of this process's slice that is free on 127.0.0.1 (bind-tested)."""
    with _port_lock:
        if _port_next[0] is None:
            base = os.environ.get("STARLING_PORT_BASE")
            if base is None:
                base = random.randrange(PORT_LOW, PORT_HIGH - PORT_SLICE, PORT_SLICE)
            _port_next[0] = int(base)
        base = _port_next[0] - (_port_next[0] - PORT_LOW) % PORT_SLICE
        for _ in range(PORT_SLICE):
            port = _port_next[0]
            _port_next[0] = base + (port + 1 - base) % PORT_SLICE
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise BrokerError("no free port in %d..%d" % (base, base + PORT_SLICE - 1))


def _socket_inodes(pid):
    """Inodes of the sockets process `pid` holds open."""
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def _is_listening(port, pid):
    """True when process `pid` holds a socket listening on `port` (per /proc/net/tcp).

    Reading the tables instead of connecting keeps probe connections out of the broker's log
    and counters, and checking the owner means another process on the port cannot fool us."""
    want = ":%04X" % port
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1].endswith(want) and fields[3] == "0A":
                    inodes.add(fields[9])
    except OSError:
        return False
    return bool(inodes & _socket_inodes(pid)) if inodes else False


def _user_exists(name):
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class BrokerError(AssertionError):
    """The broker failed to start or did not stop cleanly (a test failure, not an error)."""


class Broker:
    """One broker process: its own port, temp dir, config file and log.

    Use as a context manager or call start()/stop(). `config_lines` are appended to the generated
    `listener PORT 127.0.0.1` / `allow_anonymous true` lines (allow_anonymous is left out when
    config_lines set it)."""

    START_TIMEOUT_S = 5.0
    STOP_TIMEOUT_S = 10.0

    def __init__(self, config_lines=(), kind=None, args=(), asan_options=""):
        self.asan_options = asan_options
        self.config_lines = list(config_lines)
        self.kind = kind or KIND
        self.args = list(args)
        self.host = "127.0.0.1"
        self.port = None
        self.pid = None
        self.proc = None
        self.dir = None
        self.log_path = None
        self.config_path = None
        self._log_file = None
        self.returncode = None
        self._killed = False

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def command(self):
        if self.kind == "mosquitto":
            return [MOSQUITTO, "-c", self.config_path] + self.args
        return [os.path.join(BIN, "starlingd"), "-c", self.config_path] + self.args

    def _write_config(self):
        lines = ["listener %d 127.0.0.1" % self.port]
        if not any(l.split()[:1] == ["allow_anonymous"] for l in self.config_lines if l.strip()):
            lines.append("allow_anonymous true")
        # The suite runs on 1 and on 4 workers (run.py --workers); a test that sets its own
        # worker_threads keeps it.
        if (self.kind == "starling" and WORKERS
                and not any(l.split()[:1] == ["worker_threads"] for l in self.config_lines)):
            lines.append("worker_threads %d" % WORKERS)
        # STARLING_TEST_PERSIST=1 (make test-persist) runs every test with persistence on,
        # its log in the broker's temp dir: every hook on every path the suite covers. Not
        # for a broker that becomes another user (`user`), who may not write that dir.
        if (self.kind == "starling" and os.environ.get("STARLING_TEST_PERSIST") == "1"
                and not any(l.split()[:1] in (["persistence"], ["user"])
                            for l in self.config_lines)):
            lines.append("persistence true")
        # A root start without `user` becomes `starling` where that user exists (a machine
        # with the package installed), which could not use the test's temp dir: tests that
        # check the drop say `user` themselves.
        if (self.kind == "starling" and os.geteuid() == 0 and _user_exists("starling")
                and not any(l.split()[:1] == ["user"] for l in self.config_lines)):
            lines.append("user root")
        # STARLING_TEST_BACKEND=epoll (make test-epoll) runs every test on that event loop; a
        # test that sets event_backend itself keeps it.
        if (self.kind == "starling" and BACKEND
                and not any(l.split()[:1] == ["event_backend"] for l in self.config_lines)):
            lines.append("event_backend %s" % BACKEND)
        lines += self.config_lines
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _env(self):
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1" + (
            ":" + self.asan_options if self.asan_options else "")
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        return env

    def start(self):
        if self.kind == "starling" and not os.access(os.path.join(BIN, "starlingd"), os.X_OK):
            raise BrokerError("no broker binary %s (build it, or pass --bin DIR)"
                              % os.path.join(BIN, "starlingd"))
        self.dir = tempfile.mkdtemp(prefix="starling-it-")
        self.config_path = os.path.join(self.dir, "broker.conf")
        self.log_path = os.path.join(self.dir, "broker.log")
        last = ""
        for _attempt in range(3):  # another process may take the free port before we bind it
            self.port = free_port()
            self._write_config()
            if self._spawn_and_wait():
                return self
            last = self.log_text()
        self.proc = None  # killed and reaped; the dir is kept for its log
        raise BrokerError("broker did not start listening on 127.0.0.1 (log in %s):\n%s"
                          % (self.dir, _tail(last)))

    def _more_ports(self):
        """The ports of the test's own `listener PORT 127.0.0.1` lines (an address-less one may
        be IPv6 only, socket_domain): a broker
        binds them one after the other, and a test may connect to one as soon as start()
        returns (a WebSocket listener was refused once in CI, bound a moment later)."""
        ports = []
        for line in self.config_lines:
            parts = line.split()
            if (len(parts) == 3 and parts[0] == "listener" and parts[1].isdigit()
                    and int(parts[1]) > 0 and int(parts[1]) != self.port
                    and parts[2] == "127.0.0.1"):
                ports.append(int(parts[1]))
        return ports

    def _spawn_and_wait(self):
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=self._env(), cwd=self.dir)
        self.pid = self.proc.pid
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _is_listening(self.port, self.pid) and all(
                    _is_listening(p, self.pid) for p in self._more_ports()):
                return True
            time.sleep(0.01)
        self.kill()
        self._log_file.close()
        self._log_file = None
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL by PID (no clean-exit checks; stop() afterwards only reaps)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=self.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
            self.returncode = self.proc.returncode
            self._killed = True

    def restart(self, sig=signal.SIGTERM, down=0.0, config_lines=None):
        """halt(sig), `down` seconds, resume(config_lines): the same broker again on the same
        port, temp dir and log (persistence tests: the data directory is in the config)."""
        self.halt(sig)
        if down:
            time.sleep(down)
        return self.resume(config_lines)

    def halt(self, sig=signal.SIGTERM):
        """Stops the process but keeps the port, temp dir, config and log for resume().
        SIGTERM: checked as stop() does; SIGKILL: a crash."""
        if sig == signal.SIGKILL:
            self.kill()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        elif self.proc is not None:
            self._halt()
        self.proc = None
        self._killed = False
        self._halted = True

    def resume(self, config_lines=None):
        """Starts a halted broker again (with `config_lines` instead of its own, if given)."""
        self._halted = False
        if config_lines is not None:
            self.config_lines = list(config_lines)
        self._write_config()
        if not self._spawn_and_wait():
            self.proc = None
            raise BrokerError("broker did not restart on 127.0.0.1:%d (log in %s):\n%s"
                              % (self.port, self.dir, _tail(self.log_text())))
        return self

    def start_fails(self, timeout=START_TIMEOUT_S):
        """Starts the broker expecting it to refuse (bad config, unusable data directory):
        returns its exit status, or None if it was still running after `timeout` (then it is
        killed). The log stays readable (log_text()) until stop(), which only cleans up."""
        self.dir = tempfile.mkdtemp(prefix="starling-it-")
        self.config_path = os.path.join(self.dir, "broker.conf")
        self.log_path = os.path.join(self.dir, "broker.log")
        self.port = free_port()
        return self.resume_fails(timeout)

    def resume_fails(self, timeout=START_TIMEOUT_S):
        """resume() expecting a refusal: start_fails() on a halted broker's port and dir."""
        self._halted = False
        self._write_config()
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=self._env(), cwd=self.dir)
        self.pid = self.proc.pid
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._killed = True  # an expected exit: stop() only reaps and cleans up
        return self.returncode

    def stop(self):
        """SIGTERM, bounded wait; for Starling, a non-zero exit or a sanitizer report fails."""
        if self.proc is None:
            if getattr(self, "_halted", False):  # halted and never resumed: the log was checked
                self._cleanup_dir(force=True)
            return
        self._halt()
        self.proc = None
        self._cleanup_dir(force=True)

    def _halt(self):
        """stop() without removing the temp dir: raises BrokerError (the dir kept) on a
        problem; the process is reaped either way."""
        problems = []
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self._wait_after_sigterm()
            except subprocess.TimeoutExpired:
                stacks = self.stacks()
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=self.STOP_TIMEOUT_S)
                problems.append("did not exit within %.0f s of SIGTERM (killed); its threads "
                                "were at:\n%s" % (self.STOP_TIMEOUT_S, stacks))
            self.returncode = self.proc.returncode
            if self.kind == "starling" and self.returncode != 0 and not problems:
                problems.append("exited with status %d after SIGTERM" % self.returncode)
        else:
            self.returncode = self.proc.returncode
            if not self._killed:
                problems.append("had already exited with status %s" % self.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        text = self.log_text()
        if self.kind == "starling":
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    problems.append("log holds a sanitizer report (%r)" % marker)
                    break
        if problems:
            self.proc = None
            raise BrokerError("%s broker (pid %s, port %s) %s; log %s:\n%s"
                              % (self.kind, self.pid, self.port, "; ".join(problems),
                                 self.log_path, _tail(text)))

    def _wait_after_sigterm(self):
        """Waits STOP_TIMEOUT_S for the exit. Mosquitto 2.0.11 installs its SIGTERM handler
        before starting its bridges and only then sets `run = 1` (src/mosquitto.c), so a
        SIGTERM that lands in between, right after a (re)start whose port already listens, is
        lost: it gets the signal again every second."""
        if self.kind != "mosquitto":
            self.proc.wait(timeout=self.STOP_TIMEOUT_S)
            return
        deadline = time.monotonic() + self.STOP_TIMEOUT_S
        while True:
            try:
                self.proc.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                return
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
                os.kill(self.pid, signal.SIGTERM)

    def stacks(self):
        """Where every thread of the running broker is (gdb's backtraces), for a test that
        finds it stuck: the one clue a CI log can carry."""
        if not self.alive() or not shutil.which("gdb"):
            return "(no stacks: the broker is gone or gdb is missing)"
        try:
            out = subprocess.run(["gdb", "-p", str(self.pid), "-batch", "-nx", "-q",
                                  "-ex", "thread apply all bt 25"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return "(no stacks: %s)" % e
        text = out.stdout.decode("utf-8", "replace")
        return "\n".join(line for line in text.splitlines()
                         if line.startswith(("Thread ", "#")))

    def _cleanup_dir(self, force):
        if self.dir and (force and not os.environ.get("STARLING_KEEP_LOGS")):
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""


def _tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


# --- collected messages --------------------------------------------------------------------
Msg = namedtuple("Msg", "topic payload qos retain dup mid")


class Messages:
    """A thread-safe list of received messages, appended to from paho's network thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def append(self, msg):
        with self._lock:
            self._items.append(msg)

    def snapshot(self):
        with self._lock:
            return list(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()

    def __len__(self):
        with self._lock:
            return len(self._items)

    def __getitem__(self, i):
        with self._lock:
            return self._items[i]

    def __iter__(self):
        return iter(self.snapshot())

    def payloads(self):
        return [m.payload for m in self.snapshot()]


# An MQTT 5 message: props is paho's Properties of the PUBLISH (attributes such as
# props.UserProperty, a list of (name, value) pairs in wire order).
Msg5 = namedtuple("Msg5", "topic payload qos retain dup mid props")


def _msg_from_paho(m, v5=False):
    if v5:
        return Msg5(m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup), m.mid,
                    m.properties)
    return Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup), m.mid)


def _code(rc):
    """An int from paho's ReasonCodes (MQTT 5) or an int."""
    return getattr(rc, "value", rc)


def rss_bytes(pid):
    """Resident memory of process pid, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


# --- subprocesses ----------------------------------------------------------------------------
class Proc:
    """A child process whose stdout lines are collected by a reader thread."""

    def __init__(self, args, env=None, stdin=subprocess.DEVNULL):
        self.args = list(args)
        self.proc = subprocess.Popen(self.args, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self._lock = threading.Lock()
        self._lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self._lock:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def lines(self):
        with self._lock:
            return list(self._lines)

    def output(self):
        return "\n".join(self.lines())

    def wait_line(self, pred, timeout=5.0):
        """The first output line for which pred(line) holds, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines():
                if pred(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def wait(self, timeout=5.0):
        """The exit status, or None if still running after `timeout`."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=2)
        return rc

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self):
        """SIGKILL by PID if still running, then reap (bounded)."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(timeout=2)
        if self.proc.stdout:
            self.proc.stdout.close()


# --- test case --------------------------------------------------------------------------------
_ids = iter(range(1, 1 << 30))
_ids_lock = threading.Lock()


def unique_id(prefix="c"):
    with _ids_lock:
        n = next(_ids)
    return "%s%d-%d" % (prefix, os.getpid(), n)


class BrokerTestCase(unittest.TestCase):
    """A fresh broker for every test (config from the class attribute `config_lines`).

    Clients, raw sockets and processes made through the helpers are closed in tearDown before
    the broker is stopped; stopping it asserts a clean exit (and no sanitizer report)."""

    config_lines = ()
    broker_args = ()
    asan_options = ""  # appended to the broker's ASAN_OPTIONS (memory measurements)

    def setUp(self):
        self._teardowns = []
        self.broker = Broker(self.config_lines, args=self.broker_args,
                             asan_options=self.asan_options)
        # Cleanups run even when a subclass's setUp fails after this point, and tearDown does
        # not: the broker must never outlive its test.
        self.addCleanup(self._shutdown)
        self.broker.start()

    def tearDown(self):
        self._shutdown()

    def _shutdown(self):
        """Closes what the test opened, then stops the broker (asserting a clean exit).
        Runs once: from tearDown, or from the cleanup if setUp failed."""
        errors = []
        while self._teardowns:
            fn = self._teardowns.pop()
            try:
                fn()
            except Exception as e:  # keep going: the broker must still be stopped
                errors.append(e)
        if self.broker.proc is not None:
            if self._test_failed():
                sys.stderr.write("\n--- broker log (%s) ---\n%s\n---\n"
                                 % (self.id(), _tail(self.broker.log_text(), 30)))
            self.broker.stop()
        if errors:
            raise errors[0]

    def _test_failed(self):
        """Whether this test (or one of its sub-tests) has failed so far. unittest marks the
        tearDown itself as a fresh part, so ask the result object instead."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        for test, _ in getattr(result, "failures", []) + getattr(result, "errors", []):
            if test is self or getattr(test, "test_case", None) is self:
                return True
        return False

    def defer(self, fn):
        """Runs fn in tearDown, before the broker stops (last registered runs first)."""
        self._teardowns.append(fn)

    # --- waiting ----------------------------------------------------------------------------
    def sys_value(self, topic):
        """The latest value of a numeric $SYS topic (published every sys_interval)."""
        sub = self.client()
        got = self.collect(sub, topic, 0)
        self.wait_for(lambda: len(got) > 0, 5, "no %s" % topic)
        value = int(got[-1].payload)
        sub.disconnect()
        return value

    def wait_for(self, predicate, timeout=5.0, msg=None):
        """Polls predicate until it returns a true value (returned) or fails after timeout
        (with msg, or what msg() says when it is a function)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                self.fail((msg() if callable(msg) else msg)
                          or "condition not met within %.1f s" % timeout)
            time.sleep(0.005)

    def assert_stays(self, predicate, duration, msg=None):
        """Fails if predicate ever turns false during `duration` seconds."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            if not predicate():
                self.fail(msg or "condition broke within %.1f s" % duration)
            time.sleep(0.01)

    # --- paho clients -------------------------------------------------------------------------
    def client(self, client_id=None, clean_session=True, protocol=paho.MQTTv311, *,
               keepalive=60, will=None, username=None, password=None, broker=None,
               timeout=5.0, clean_start=True, properties=None, will_properties=None,
               expect_rc=0, tls=None, **kw):
        """A connected paho client (network loop running), disconnected in tearDown.

        client_id None picks a unique id; "" sends an empty one. will = (topic, payload, qos,
        retain). The client never reconnects by itself. Attributes added: connack =
        (session_present, rc), messages (every message received, a Messages list),
        disconnected (threading.Event), disconnect_rc.
        With protocol=paho.MQTTv5: clean_start replaces clean_session, `properties` and
        `will_properties` are paho Properties of the CONNECT and the will, and the client also
        has connack_props, disconnect_props, suback_props {mid: props}, unsuback_codes
        {mid: [codes]}; messages are Msg5. expect_rc is the CONNACK code the test wants.
        tls: keyword arguments of paho's tls_set (ca_certs, certfile, keyfile...) for a TLS
        listener."""
        broker = broker or self.broker
        v5 = protocol == paho.MQTTv5
        if client_id is None:
            client_id = unique_id()
        c = paho.Client(client_id=client_id, clean_session=None if v5 else clean_session,
                        protocol=protocol, reconnect_on_failure=False, **kw)
        c.connack = None
        c.connack_props = None
        c.messages = Messages()
        c.collectors = []
        c.subacks = {}
        c.suback_props = {}
        c.unsubacks = set()
        c.unsuback_codes = {}
        c.disconnected = threading.Event()
        c.disconnect_rc = None
        c.disconnect_props = None
        connected = threading.Event()

        def on_connect(client, userdata, flags, rc, properties=None):
            c.connack_props = properties
            c.connack = (bool(flags.get("session present")), _code(rc))
            connected.set()

        def on_disconnect(client, userdata, rc, properties=None):
            c.disconnect_props = properties
            c.disconnect_rc = _code(rc)
            c.disconnected.set()

        def on_message(client, userdata, m):
            msg = _msg_from_paho(m, v5)
            c.messages.append(msg)
            for flt, lst in list(c.collectors):
                if paho.topic_matches_sub(flt, msg.topic):
                    lst.append(msg)

        def on_subscribe(client, userdata, mid, granted, properties=None):
            c.suback_props[mid] = properties
            c.subacks[mid] = [_code(g) for g in granted]

        def on_unsubscribe(client, userdata, mid, properties=None, codes=None):
            if codes is not None:
                c.unsuback_codes[mid] = [_code(x) for x in codes] if isinstance(
                    codes, list) else [_code(codes)]
            c.unsubacks.add(mid)

        c.on_connect, c.on_disconnect = on_connect, on_disconnect
        c.on_message, c.on_subscribe = on_message, on_subscribe
        c.on_unsubscribe = on_unsubscribe
        if will is not None and v5:
            c.will_set(*will, properties=will_properties)
        elif will is not None:
            c.will_set(*will)
        if username is not None:
            c.username_pw_set(username, password)
        if tls is not None:
            c.tls_set(**tls)
        if v5:
            c.connect(broker.host, broker.port, keepalive=keepalive, clean_start=clean_start,
                      properties=properties)
        else:
            c.connect(broker.host, broker.port, keepalive=keepalive)
        c.loop_start()
        self.defer(lambda: _stop_paho(c))
        if not connected.wait(timeout):
            # A broker that does not answer a CONNECT is stuck somewhere: say where.
            stacks = broker.stacks() if broker.kind == "starling" else ""
            self.fail("paho client %r: no CONNACK within %.1f s%s"
                      % (client_id, timeout, "; the broker's threads:\n" + stacks
                         if stacks else ""))
        if c.connack[1] != expect_rc:
            self.fail("paho client %r: CONNACK rc 0x%02x, expected 0x%02x"
                      % (client_id, c.connack[1], expect_rc))
        return c

    def client5(self, client_id=None, **kw):
        """client() with protocol MQTT 5."""
        return self.client(client_id, protocol=paho.MQTTv5, **kw)

    def subscribe(self, client, topic, qos=0, timeout=5.0, options=None, properties=None):
        """Subscribes a paho client and waits for the SUBACK; returns the granted QoS list
        (the reason codes, in MQTT 5). options: a paho SubscribeOptions (MQTT 5)."""
        if options is not None or properties is not None:
            rc, mid = client.subscribe(topic, options=options, properties=properties) if (
                options is not None) else client.subscribe(topic, qos, properties=properties)
        else:
            rc, mid = client.subscribe(topic, qos)
        self.assertEqual(rc, paho.MQTT_ERR_SUCCESS, "subscribe(%r) failed to send" % (topic,))
        self.wait_for(lambda: mid in client.subacks, timeout, "no SUBACK for %r" % (topic,))
        return client.subacks[mid]

    def unsubscribe(self, client, topics, timeout=5.0):
        """Unsubscribes a paho client from a filter (or list of filters); waits for UNSUBACK.
        Returns the UNSUBACK's reason codes for an MQTT 5 client (None before MQTT 5)."""
        rc, mid = client.unsubscribe(topics)
        self.assertEqual(rc, paho.MQTT_ERR_SUCCESS, "unsubscribe(%r) failed to send" % (topics,))
        self.wait_for(lambda: mid in client.unsubacks, timeout, "no UNSUBACK for %r" % (topics,))
        return client.unsuback_codes.get(mid)

    def collect(self, client, topic, qos=0, options=None, properties=None):
        """Subscribes `client` to `topic` (waits for the SUBACK) and returns a thread-safe
        Messages list receiving every message that matches it."""
        lst = Messages()
        flt = topic.split("/", 2)[2] if topic.startswith("$share/") else topic
        client.collectors.append((flt, lst))
        granted = self.subscribe(client, topic, qos, options=options, properties=properties)
        self.assertLess(granted[0], 0x80, "subscription to %r refused" % topic)
        return lst

    def publish(self, client, topic, payload=b"", qos=0, retain=False, timeout=5.0,
                properties=None):
        """Publishes through paho and waits until the QoS flow completes (sent, for QoS 0).
        properties: paho Properties(PacketTypes.PUBLISH), for an MQTT 5 client."""
        if properties is not None:
            info = client.publish(topic, payload, qos, retain, properties=properties)
        else:
            info = client.publish(topic, payload, qos, retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            self.fail("publish to %r (QoS %d) not completed within %.1f s" % (topic, qos, timeout))
        return info

    def wait_messages(self, messages, n, timeout=5.0):
        """Waits until `messages` holds at least n entries; returns the snapshot."""
        self.wait_for(lambda: len(messages) >= n, timeout,
                      "expected %d messages, got %d: %r" % (n, len(messages), messages.snapshot()[:10]))
        return messages.snapshot()

    def assert_no_messages(self, messages, duration=0.3, expected=0):
        """Fails if `messages` grows past `expected` entries within `duration` seconds."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            if len(messages) > expected:
                break
            time.sleep(0.01)
        self.assertEqual(len(messages), expected, "unexpected messages: %r" % messages.snapshot())

    # --- raw clients and processes --------------------------------------------------------------
    def raw(self, broker=None, timeout=5.0, version=MQTT311):
        """A RawClient connected (TCP only) to the broker, closed in tearDown."""
        broker = broker or self.broker
        r = RawClient(broker.port, broker.host, timeout=timeout, version=version)
        self.defer(r.close)
        return r

    def raw_connected(self, client_id=None, clean_session=True, keepalive=60, version=MQTT311,
                      **kw):
        """A RawClient that has sent CONNECT and received CONNACK 0 (r.connack)."""
        r = self.raw(version=version)
        ca = r.connect(unique_id("r") if client_id is None else client_id, clean_session,
                       keepalive, **kw)
        self.assertEqual(ca.rc, 0, "CONNACK rc %d" % ca.rc)
        r.connack = ca
        return r

    def raw5(self, client_id=None, clean_start=True, keepalive=60, **kw):
        """An MQTT 5 RawClient that has received CONNACK 0 (r.connack, with its properties).
        kw: properties=props(...), will=..., will_properties=props(...)."""
        return self.raw_connected(client_id, clean_start, keepalive, version=MQTT5, **kw)

    def assert_disconnect(self, raw, rcs, timeout=3.0, allow_close=False):
        """The broker sends `raw` a DISCONNECT with a reason code in `rcs` (an int or a
        collection) and closes the connection [MQTT-4.13.2-1]. With allow_close, a close
        without DISCONNECT is accepted too (where the spec makes the DISCONNECT optional).
        Returns the DISCONNECT, or None. PUBLISH packets before it are ignored."""
        rcs = {rcs} if isinstance(rcs, int) else set(rcs)
        got = self.assert_closed(raw, timeout)
        others = [p for p in got if p.type != PUBLISH]
        if not others and allow_close:
            return None
        self.assertTrue(others and others[-1].type == DISCONNECT,
                        "expected DISCONNECT %s before the close, got %r"
                        % ("/".join("0x%02x" % c for c in sorted(rcs)), got))
        d = others[-1]
        self.assertIn(d.rc, rcs, "DISCONNECT reason 0x%02x, expected %s (%r)"
                      % (d.rc, "/".join("0x%02x" % c for c in sorted(rcs)), d))
        return d

    def spawn(self, args, **kw):
        """A Proc (stdout lines collected), SIGKILLed by PID in tearDown if still running."""
        p = Proc(args, **kw)
        self.defer(p.stop)
        return p

    def assert_closed(self, raw, timeout=3.0, msg=None):
        """The broker closes `raw` within timeout; returns the packets it sent first."""
        closed, got = raw.wait_closed(timeout)
        self.assertTrue(closed, msg or "broker kept the connection open (got %r)" % got)
        return got

    def assert_broker_works(self):
        """A fresh subscriber receives a fresh publisher's QoS 1 message: the broker serves."""
        self.assertTrue(self.broker.alive(), "broker process died")
        topic = "health/" + unique_id("h")
        sub = self.client()
        got = self.collect(sub, topic, 1)
        pub = self.client()
        self.publish(pub, topic, b"alive", 1)
        self.wait_messages(got, 1)
        self.assertEqual(got[0].payload, b"alive")
        sub.disconnect()
        pub.disconnect()


def pprops(packet_type, **values):
    """paho Properties for packet_type (a PacketTypes value) with the given attributes, e.g.
    pprops(PacketTypes.PUBLISH, ContentType="text/plain", UserProperty=[("a", "1")])."""
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def _stop_paho(c):
    try:
        c.disconnect()
    except Exception:
        pass
    c.loop_stop()


def seeded_random(default_seed):
    """A random.Random seeded from STARLING_SEED (or the default), and the seed."""
    seed = int(os.environ.get("STARLING_SEED", default_seed))
    return random.Random(seed), seed
