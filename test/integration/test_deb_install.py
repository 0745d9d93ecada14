"""The Debian package installed for real (issue 11): `make deb`, then `apt-get install` of the
.deb on this Debian 12 machine, the service run as its unit says, and a purge.

It changes the machine (packages, the `starling` system user, /etc, /var/lib), so it runs only
under `make test-deb` (STARLING_TEST_DEB=1, as root), which CI runs on its throwaway machine.
Where systemd is not PID 1 (a container, a microVM), the unit's command runs as systemd would
start it: ExecStart as root, its LimitNOFILE and LimitMEMLOCK, NOTIFY_SOCKET for Type=notify,
ExecReload's SIGHUP, a SIGTERM to stop; with systemd running, systemctl starts it."""

import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import REPO, starling_only
from test_install import NotifySocket, run_make

UNIT = "/lib/systemd/system/starlingd.service"
CONF = "/etc/starling/starling.conf"


def unit_values(path):
    """{key: value} of a unit file's [Service] lines (the last one of a key wins)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k] = v
    return out


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def apt(*args):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["apt-get", "-y", "-q"] + list(args), env=env, capture_output=True,
                          text=True, timeout=600)


@starling_only("Starling's Debian package")
@unittest.skipUnless(os.environ.get("STARLING_TEST_DEB") == "1",
                     "installs a package on this machine: make test-deb")
@unittest.skipUnless(os.geteuid() == 0, "installing a package needs root")
class DebInstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for prog in ("dpkg-deb", "dpkg-shlibdeps", "apt-get", "mosquitto_pub", "mosquitto_sub"):
            if not shutil.which(prog):
                raise unittest.SkipTest(prog + " is not installed")
        if subprocess.run(["dpkg", "-s", "starling"], capture_output=True).returncode == 0:
            raise unittest.SkipTest("a starling package is installed already: not touched")
        if not port_free(1883):
            raise unittest.SkipTest("port 1883 (the packaged configuration's) is in use")
        # The postinst makes the system user `starling`, which a purge keeps (as Debian does).
        # A broker started as root without `user` becomes it when it exists, so a user this
        # test made is removed again: the rest of the suite runs its brokers as root.
        try:
            pwd.getpwnam("starling")
            cls.made_user = False
        except KeyError:
            cls.made_user = True
        cls.tmp = tempfile.mkdtemp(prefix="starling-debi-")
        p = run_make("deb", "DEB_STAGE=" + os.path.join(cls.tmp, "stage"),
                     "DEB_OUT=" + os.path.join(cls.tmp, "out"))
        if p.returncode != 0:
            raise AssertionError("make deb failed:\n" + p.stdout + p.stderr)
        cls.deb = p.stdout.strip().splitlines()[-1]

    @classmethod
    def tearDownClass(cls):
        if subprocess.run(["dpkg", "-s", "starling"], capture_output=True).returncode == 0:
            apt("purge", "starling")
        if cls.made_user:
            subprocess.run(["userdel", "starling"], capture_output=True)
            subprocess.run(["groupdel", "starling"], capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_service(self, notify):
        """The unit's ExecStart, started as systemd starts a Type=notify service."""
        u = unit_values(UNIT)
        self.assertEqual(u["Type"], "notify")
        argv = u["ExecStart"].split()
        nofile = int(u["LimitNOFILE"])
        memlock = int(re.match(r"(\d+)M$", u["LimitMEMLOCK"]).group(1)) << 20

        def limits():
            # As far as this process may raise them (systemd, PID 1, may go further; a
            # sandbox without CAP_SYS_RESOURCE keeps its hard limits).
            for res, want in ((resource.RLIMIT_NOFILE, nofile),
                              (resource.RLIMIT_MEMLOCK, memlock)):
                hard = resource.getrlimit(res)[1]
                v = want if hard == resource.RLIM_INFINITY or want <= hard else hard
                resource.setrlimit(res, (v, v))
            os.umask(int(u.get("UMask", "0022"), 8))

        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": notify.path}
        log = open(os.path.join(self.tmp, "service.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=limits, cwd="/")
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        return p, u

    def service_log(self):
        with open(os.path.join(self.tmp, "service.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def test_install_run_reload_stop_purge(self):
        p = apt("install", "--no-install-recommends", self.deb)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # What the package put in place.
        for path in ("/usr/sbin/starlingd", "/usr/bin/starling-pub", "/usr/bin/starling-sub",
                     "/usr/bin/starling-passwd", CONF, UNIT):
            self.assertTrue(os.path.exists(path), path)
        user = pwd.getpwnam("starling")
        st = os.stat("/var/lib/starling")
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (user.pw_uid, 0o750))
        # Enabled for the next boot (deb-systemd-helper), whether or not systemd runs now.
        self.assertTrue(os.path.islink(
            "/etc/systemd/system/multi-user.target.wants/starlingd.service"))
        if os.path.isdir("/run/systemd/system"):
            self.skipTest("systemd runs here: the postinst started the service itself")

        notify = NotifySocket(self.tmp)
        os.chmod(self.tmp, 0o755)
        broker, unit = self.start_service(notify)
        self.assertIn("READY=1", notify.wait("READY=1", 15), self.service_log())
        # Root only to bind and lock memory: the workers run as the package's user.
        with open("/proc/%d/status" % broker.pid) as f:
            uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", f.read(), re.M).groups()
        self.assertEqual({int(x) for x in uids}, {user.pw_uid})
        # A real client through it, with a retained message that persistence keeps.
        pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-q", "1",
                              "-r", "-t", "deb/t", "-m", "kept"], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(pub.returncode, 0, pub.stderr)
        sub = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-t", "deb/#",
                              "-C", "1", "-W", "5"], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(sub.stdout.strip(), "kept", sub.stderr)
        self.assertTrue(any(f.startswith("starling.db.") for f in os.listdir("/var/lib/starling")))
        # ExecReload: SIGHUP, announced to the service manager, connections kept.
        self.assertIn("kill -HUP", unit["ExecReload"])
        os.kill(broker.pid, signal.SIGHUP)
        notify.wait("RELOADING=1")
        notify.wait("READY=1")
        self.assertIsNone(broker.poll())
        # A stop, then a start that finds the retained message on disk.
        broker.send_signal(signal.SIGTERM)
        notify.wait("STOPPING=1")
        self.assertEqual(broker.wait(15), 0, self.service_log())
        broker, _ = self.start_service(notify)
        notify.wait("READY=1", 15)
        sub = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-t", "deb/#",
                              "-C", "1", "-W", "5"], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(sub.stdout.strip(), "kept", sub.stderr)
        broker.send_signal(signal.SIGTERM)
        self.assertEqual(broker.wait(15), 0, self.service_log())

        # Remove keeps the configuration; purge takes it and the data with it.
        p = apt("remove", "starling")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists("/usr/sbin/starlingd"))
        self.assertTrue(os.path.exists(CONF))
        p = apt("purge", "starling")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(CONF))
        self.assertFalse(os.path.exists("/var/lib/starling"))
        self.assertFalse(os.path.exists(
            "/etc/systemd/system/multi-user.target.wants/starlingd.service"))


if __name__ == "__main__":
    unittest.main()
