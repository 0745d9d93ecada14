"""event_backend: which event loop the broker runs, and the fallback where io_uring is blocked.

The broker is started through tools/no-io-uring, a launcher that installs a seccomp filter
making io_uring_setup/enter/register fail with ENOSYS (what Docker's default profile does)
and then execs starlingd. With event_backend auto the broker says why io_uring cannot be
used, runs on epoll and serves real clients (mosquitto_sub, paho, starling-pub) on every
worker; with event_backend io_uring it refuses to start and says why. The rest of the suite
runs on epoll under `make test-epoll`; these are the tests of the choice itself."""

import os
import subprocess
import tempfile
import unittest

from harness import (BIN, MOSQUITTO_SUB, WORKERS, Broker, BrokerTestCase, client_cmd, free_port,
                     starling_only, tool, unique_id)

ONLY = "event_backend and the epoll fallback are Starling's"
LAUNCHER = tool("no-io-uring")


def launcher_works():
    """The launcher runs here (a known architecture, seccomp available)."""
    try:
        return subprocess.run([LAUNCHER, "true"], timeout=10).returncode == 0
    except OSError:
        return False


class NoIoUringBroker(Broker):
    """A broker whose process cannot use io_uring."""

    def command(self):
        return [LAUNCHER] + super().command()


@starling_only(ONLY)
class FallbackTest(BrokerTestCase):
    config_lines = ("event_backend auto", "sys_interval 1")

    def setUp(self):
        if not launcher_works():
            self.skipTest("no-io-uring cannot install its seccomp filter here")
        self._teardowns = []
        self.broker = NoIoUringBroker(self.config_lines)
        self.addCleanup(self._shutdown)
        self.broker.start()

    def test_auto_says_why_and_runs_on_epoll(self):
        log = self.broker.log_text()
        self.assertIn("Warning: io_uring cannot be used, running on epoll: io_uring_setup: "
                      "Function not implemented: io_uring is blocked, most likely by a seccomp "
                      "profile", log)
        self.assertIn("Event loop: epoll.", log)
        self.assertNotIn("Event loop: io_uring.", log)

    def test_real_clients_on_every_worker(self):
        # Enough connections that every worker accepts some (SO_REUSEPORT spreads them).
        n = max(4, 4 * (WORKERS or 1))
        sub = self.spawn(client_cmd(MOSQUITTO_SUB, self.broker, "-t", "fb/#", "-q", "1",
                                    "-v", "-C", str(n + 1), "-d"))
        self.assertIsNotNone(sub.wait_line(lambda l: "SUBACK" in l), sub.output())
        for i in range(n):
            out = subprocess.run([tool("starling-pub"), "-h", "127.0.0.1", "-p",
                                  str(self.broker.port), "-q", "1", "-t", "fb/%d" % i, "-m",
                                  "m%d" % i], capture_output=True, timeout=10)
            self.assertEqual(out.returncode, 0, out.stderr)
        pub = self.client(unique_id("fbpaho"))
        self.publish(pub, "fb/paho", b"x" * 100000, 2)
        self.assertEqual(sub.wait(10), 0, sub.output())
        got = [l for l in sub.lines() if l.startswith("fb/")]
        self.assertEqual(sorted(got[:n]), sorted("fb/%d m%d" % (i, i) for i in range(n)))
        self.assertEqual(got[n], "fb/paho " + "x" * 100000)
        self.assert_broker_works()

    def test_retained_and_sys(self):
        pub = self.client(unique_id("fbret"))
        self.publish(pub, "fb/kept", b"here", 1, retain=True)
        later = self.client(unique_id("fblate"))
        got = self.collect(later, "fb/kept", 1)
        self.wait_for(lambda: got, 5, "retained message not delivered")
        self.assertEqual(got[0].payload, b"here")
        # $SYS sums every worker's counters, published each sys_interval.
        self.wait_for(lambda: self.sys_value("$SYS/broker/clients/connected") >= 2, 8,
                      "$SYS never counted the clients")


@starling_only(ONLY)
class RefusalTest(unittest.TestCase):
    """Configuration errors and event_backend io_uring where io_uring is blocked."""

    def run_broker(self, lines, launcher=False, timeout=20):
        d = tempfile.mkdtemp(prefix="starling-backend-")
        conf = os.path.join(d, "broker.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % free_port())
            f.write("".join(l + "\n" for l in lines))
        cmd = ([LAUNCHER] if launcher else []) + [os.path.join(BIN, "starlingd"), "-c", conf]
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=d)
        return res, conf

    def test_io_uring_blocked_refuses_to_start(self):
        if not launcher_works():
            self.skipTest("no-io-uring cannot install its seccomp filter here")
        res, _ = self.run_broker(["event_backend io_uring"], launcher=True)
        err = res.stdout.decode() + res.stderr.decode()
        self.assertNotEqual(res.returncode, 0, err)
        self.assertIn("Error: io_uring_setup: Function not implemented: io_uring is blocked, "
                      "most likely by a seccomp profile", err)
        self.assertIn("(event_backend io_uring)", err)
        self.assertNotIn("Opening ipv4 listen socket", err)

    def test_sysctl_disabled_is_named(self):
        """kernel.io_uring_disabled=2, as the broker sees it: io_uring_setup fails with EPERM
        (the launcher's --eperm) and the sysctl's file says 2 (a file bind-mounted over it in
        a mount namespace of the broker's own: the machine's sysctl is never touched)."""
        if not launcher_works():
            self.skipTest("no-io-uring cannot install its seccomp filter here")
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            self.skipTest("no mount namespace here (needs CAP_SYS_ADMIN)")
        d = tempfile.mkdtemp(prefix="st-sysctl-")
        fake = os.path.join(d, "io_uring_disabled")
        with open(fake, "w") as f:
            f.write("2\n")
        conf = os.path.join(d, "b.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nevent_backend auto\n"
                    % free_port())
        cmd = ["unshare", "-m", "sh", "-c",
               'mount --bind "$0" /proc/sys/kernel/io_uring_disabled && exec "$@"', fake,
               LAUNCHER, "--eperm", os.path.join(BIN, "starlingd"), "-c", conf, "-t", "1"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=d)
        try:
            out = b""
            for _ in range(100):
                line = p.stdout.readline()
                out += line
                if b"Event loop:" in line or not line:
                    break
        finally:
            p.terminate()
            out += p.communicate(timeout=10)[0]
        text = out.decode(errors="replace")
        self.assertIn("io_uring cannot be used, running on epoll: io_uring_setup: Operation not "
                      "permitted: kernel.io_uring_disabled=2; set it to 0 (sysctl -w "
                      "kernel.io_uring_disabled=0)", text)
        self.assertIn("Event loop: epoll.", text)
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            self.assertNotEqual(f.read().strip(), "2", "the real sysctl was changed")

    def test_unknown_value_names_file_and_line(self):
        res, conf = self.run_broker(["allow_anonymous true", "event_backend kqueue"])
        err = res.stderr.decode()
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("%s:3: event_backend: 'auto', 'io_uring' or 'epoll' expected, not "
                      "'kqueue'" % conf, err)

    def test_missing_value_is_an_error(self):
        res, conf = self.run_broker(["event_backend"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("%s:2:" % conf, res.stderr.decode())


@starling_only(ONLY)
class ChosenBackendTest(BrokerTestCase):
    """Where io_uring works, event_backend io_uring runs on it and the log says so."""

    config_lines = ("event_backend io_uring",)

    def test_log_names_io_uring(self):
        log = self.broker.log_text()
        self.assertIn("Event loop: io_uring.", log)
        self.assertNotIn("cannot be used", log)
        self.assert_broker_works()


@starling_only(ONLY)
class EpollChosenTest(BrokerTestCase):
    config_lines = ("event_backend epoll",)

    def test_log_names_epoll_without_a_warning(self):
        log = self.broker.log_text()
        self.assertIn("Event loop: epoll.", log)
        self.assertNotIn("cannot be used", log)
        self.assert_broker_works()


if __name__ == "__main__":
    unittest.main()
