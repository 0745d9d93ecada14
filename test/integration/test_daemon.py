"""The broker process as an administrator runs it: -d with pid_file and log_dest file, the
loopback-only default without a configuration, configuration errors naming file and line.

These start the broker binary directly (daemon mode forks away from any Popen), and stop it by
the PID it wrote. Mosquitto has the same options, so they run against both brokers."""

import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import BIN, KIND, MOSQUITTO, free_port, starling_only


def broker_binary():
    return MOSQUITTO if KIND == "mosquitto" else os.path.join(BIN, "starlingd")


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours would still answer; daemons are reparented, so this is the real state.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="starling-daemon-")
        self.port = free_port()
        self.pid_file = os.path.join(self.dir, "broker.pid")
        self.log_file = os.path.join(self.dir, "broker.log")
        self.asan_prefix = os.path.join(self.dir, "asan")
        self.pid = None

    def tearDown(self):
        if self.pid and alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)

    def env(self):
        env = dict(os.environ)
        # After -d, stderr is /dev/null: sanitizer reports go to files we can look at.
        env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1:log_path=" + self.asan_prefix
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:log_path=" + self.asan_prefix
        return env

    def write_config(self, lines):
        path = os.path.join(self.dir, "broker.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def sanitizer_reports(self):
        return [n for n in os.listdir(self.dir) if n.startswith("asan")]

    def test_daemon_pid_file_and_log_file(self):
        conf = self.write_config([
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous true",
            "pid_file %s" % self.pid_file,
            "log_dest file %s" % self.log_file,
            "log_type all",
        ] + (["user root"] if os.getuid() == 0 else []))
        # (Started as root, Mosquitto switches to its own user and Starling to `starling` where
        # it exists; neither could write into our private temp dir.)
        # -d returns at once, leaving the daemon running.
        r = subprocess.run([broker_binary(), "-c", conf, "-d"], env=self.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_for(lambda: os.path.exists(self.pid_file)), "no pid file")
        self.assertTrue(wait_for(lambda: open(self.pid_file).read().strip().isdigit()))
        self.pid = int(open(self.pid_file).read().strip())
        self.assertTrue(alive(self.pid))
        self.assertTrue(wait_for(lambda: accepts("127.0.0.1", self.port)))

        # It works as a broker: a message goes through.
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(self.port), "-t", "d/#", "-C", "1"],
                               stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            subprocess.run(["mosquitto_pub", "-p", str(self.port), "-t", "d/x", "-m", "daemon"],
                           check=True, timeout=5)
            out, _ = sub.communicate(timeout=5)
        finally:
            if sub.poll() is None:
                sub.kill()
        self.assertEqual(out.strip(), "daemon")

        # Its log went to the file, not to the terminal it left.
        self.assertTrue(wait_for(lambda: os.path.getsize(self.log_file) > 0))
        self.assertEqual(r.stdout, b"")

        # SIGTERM by the PID it wrote: it exits and removes the pid file.
        os.kill(self.pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not alive(self.pid), 10), "daemon did not exit")
        if KIND == "starling":
            self.assertFalse(os.path.exists(self.pid_file), "pid file left behind")
            self.assertEqual(self.sanitizer_reports(), [])

    @starling_only("tests Starling's own error text")
    def test_config_error_names_file_and_line(self):
        conf = self.write_config(["listener %d 127.0.0.1" % self.port, "",
                                  "no_such_option 1"])
        r = subprocess.run([broker_binary(), "-c", conf], env=self.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:3" % conf, r.stderr)
        conf = self.write_config(["max_inflight_messages lots"])
        r = subprocess.run([broker_binary(), "-c", conf], env=self.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:1" % conf, r.stderr)

    def test_without_configuration_only_loopback(self):
        # No configuration: 127.0.0.1 only (Mosquitto 2's local-only mode).
        p = subprocess.Popen([broker_binary(), "-p", str(self.port)], env=self.env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=self.dir)
        self.pid = p.pid
        try:
            self.assertTrue(wait_for(lambda: accepts("127.0.0.1", self.port)))
            # 127.0.0.2 is a loopback address too, but not the one bound.
            self.assertFalse(accepts("127.0.0.2", self.port))
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 0)
        if KIND == "starling":
            self.assertEqual(self.sanitizer_reports(), [])


class LogTopicTest(harness.BrokerTestCase):
    config_lines = ("log_dest topic", "log_type all")

    def test_log_lines_are_published(self):
        # log_dest topic: lines go to $SYS/broker/log/<E|W|N|I|M/...>, as Mosquitto names them.
        sub = self.client()
        got = self.collect(sub, "$SYS/broker/log/#", 0)
        other = self.client(client_id="logme-" + harness.unique_id())
        other.subscribe("lt/x", 0)
        self.wait_for(lambda: any(m.topic == "$SYS/broker/log/N" and b"logme" in m.payload
                                  for m in got.snapshot()))
        self.wait_for(lambda: any(m.topic == "$SYS/broker/log/M/subscribe" and
                                  b"lt/x" in m.payload for m in got.snapshot()))


if __name__ == "__main__":
    unittest.main()
